//! Login names: UserNameRule and the magic-user syntax `user@host[:port]`.
//!
//! INTERFACE (keep signatures):
//! - `compile_rule(pattern: &str) -> Result<regex::bytes::Regex, String>`: POSIX ERE with %xx
//!   escapes (shared with the filter's pattern translation), size-limited.
//! - `DEFAULT_RULE`: ftp-proxy's default `^[[:alnum:]]+([%20@/\._-][[:alnum:]]+)*$`.
//! - `split_magic(arg: &[u8], magic: u8) -> Result<Login, UserError>`: splits at the LAST
//!   `magic` byte into user and destination; destination is `host`, `host:port`,
//!   `[v6addr]`, `[v6addr]:port`, or a bare IPv6 address (more than one ':' and no brackets
//!   = no port). Port is a decimal 1..=65535. Without `magic` byte: `Login { user: arg, host: None, port: None }`.
//!   Errors: empty user, empty host after magic char, bad port.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login<'a> {
    pub user: &'a [u8],
    pub host: Option<&'a [u8]>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserError {
    EmptyUser,
    EmptyHost,
    BadPort,
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UserError::EmptyUser => "empty user name",
            UserError::EmptyHost => "empty host name",
            UserError::BadPort => "bad port number",
        })
    }
}

pub const DEFAULT_RULE: &str = r"^[[:alnum:]]+([%20@/\._-][[:alnum:]]+)*$";

pub fn compile_rule(pattern: &str) -> Result<regex::bytes::Regex, String> {
    regex::bytes::Regex::new(pattern).map_err(|e| e.to_string())
}

pub fn split_magic(arg: &[u8], _magic: u8) -> Result<Login<'_>, UserError> {
    Ok(Login {
        user: arg,
        host: None,
        port: None,
    })
}

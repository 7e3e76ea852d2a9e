//! A client command line -> `Command { verb, arg }`.
//!
//! INTERFACE (keep signatures):
//! - `Command::parse(line: &[u8]) -> Result<Command<'_>, CommandError>`.
//!   Grammar (RFC 959 §5.3): verb = 1*4 ALPHA, case-insensitive, stored upper-case;
//!   then end of line, or one SP followed by the argument (rest of the line, may be empty).
//!   Leading spaces are not allowed. Errors: empty line, bad verb (non-alpha, > 4 chars,
//!   missing SP), NUL byte anywhere.
//! - `Verb::as_bytes`, `Verb::as_str` (always ASCII upper-case), `Verb::from_str_lossy` not needed.
//! - `kind(verb: &[u8]) -> Option<Kind>`: the table of known commands (RFC 959, 2228, 2389,
//!   2428, 3659, X* aliases, APSV, RCMD, SITE, HOST, CLNT, LANG, AVBL...). None = unknown.

use std::fmt;

/// A command verb: 1 to 4 ASCII upper-case letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verb {
    bytes: [u8; 4],
    len: u8,
}

impl Verb {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }
}

impl fmt::Debug for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed command line; the argument borrows from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    pub verb: Verb,
    pub arg: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    Empty,
    BadVerb,
    Nul,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommandError::Empty => "empty command line",
            CommandError::BadVerb => "malformed command",
            CommandError::Nul => "NUL byte in command line",
        })
    }
}

/// What a known command does, as far as the proxy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// USER
    User,
    /// PASS
    Pass,
    /// PASV, EPSV, APSV (client asks the proxy to listen)
    Passive,
    /// PORT, EPRT (client names its own data address)
    Active,
    /// LIST, NLST, RETR, STOR, STOU, APPE, MLSD: needs a data connection
    Data,
    /// AUTH, PBSZ, PROT, CCC, ADAT, MIC, CONF, ENC: TLS/security, not proxied
    Security,
    /// FEAT
    Feat,
    /// QUIT
    Quit,
    /// ABOR
    Abort,
    /// REIN
    Reinit,
    /// Every other known command: relayed as is
    Plain,
}

impl<'a> Command<'a> {
    pub fn parse(_line: &'a [u8]) -> Result<Command<'a>, CommandError> {
        Err(CommandError::Empty)
    }
}

pub fn kind(_verb: &[u8]) -> Option<Kind> {
    None
}

//! Login names: UserNameRule and the magic-user syntax `user@host[:port]`.
//!
//! Owns the compilation of UserNameRule (through the shared pattern
//! translation [`crate::policy::filter::compile_pattern`]) and the split of
//! a USER argument into login name and client-chosen destination. It never
//! resolves host names and never judges a destination (that is
//! `policy::dest`).
//!
//! Magic-user grammar (ftp-proxy.conf(5) AllowMagicUser, UserMagicChar):
//!
//! ```text
//! user-arg = user [ magic dest ]            ; split at the LAST magic byte
//! user     = 1*byte                         ; may itself hold magic bytes
//! dest     = host [ ":" port ]              ; host without ':'
//!          / "[" v6addr "]" [ ":" port ]    ; v6addr as std::net parses it
//!          / v6addr                         ; two or more ':', no port
//! port     = 1*5DIGIT                       ; 1..=65535
//! ```
//!
//! Decisions: splitting at the last magic byte lets login names hold the
//! magic byte themselves (`user@example.com@ftp.example.org`). A host is
//! returned as given (bytes); only a bracketed host is checked here (it must
//! be an IPv6 address). Never panics, for any input.

use crate::policy::filter::compile_pattern;

/// A USER argument split into login name and optional destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login<'a> {
    pub user: &'a [u8],
    /// The host, without brackets.
    pub host: Option<&'a [u8]>,
    pub port: Option<u16>,
}

/// Why a USER argument cannot be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserError {
    EmptyUser,
    EmptyHost,
    BadPort,
    /// `[...]` that is not an IPv6 address, or no closing `]`.
    BadHost,
    /// UserAuthMagic is on but USER holds no `@` (no proxy login).
    NoAuthUser,
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UserError::EmptyUser => "empty user name",
            UserError::EmptyHost => "empty host name",
            UserError::BadPort => "bad port number",
            UserError::BadHost => "bad host name",
            UserError::NoAuthUser => "no proxy login name (UserAuthMagic)",
        })
    }
}

/// The default UserNameRule: letters and digits, with single inner space,
/// `@`, `/`, `.`, `_` or `-` between them (SPEC 3). ftp-proxy writes it
/// `[%20@/\._-]`, which under POSIX rules also lets a backslash through;
/// ftpgate's default leaves it out.
pub const DEFAULT_RULE: &str = r"^[[:alnum:]]+([%20@/._-][[:alnum:]]+)*$";

/// Compiles a UserNameRule with the same translation as ValidCommands
/// patterns (`%xx` bytes, POSIX ERE, bytes, size-limited).
pub fn compile_rule(pattern: &str) -> Result<regex::bytes::Regex, String> {
    compile_pattern(pattern)
}

/// A decimal port 1..=65535 of 1 to 5 digits.
fn port(text: &[u8]) -> Result<u16, UserError> {
    if text.is_empty() || text.len() > 5 || !text.iter().all(u8::is_ascii_digit) {
        return Err(UserError::BadPort);
    }
    let n = text.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n)
        .ok()
        .filter(|&p| p != 0)
        .ok_or(UserError::BadPort)
}

/// Splits a USER argument at the last `magic` byte (see the module grammar).
/// Without a `magic` byte the whole argument is the user.
/// Never panics, for any input.
pub fn split_magic(arg: &[u8], magic: u8) -> Result<Login<'_>, UserError> {
    let Some(at) = arg.iter().rposition(|&b| b == magic) else {
        return Ok(Login {
            user: arg,
            host: None,
            port: None,
        });
    };
    let (user, dest) = (&arg[..at], &arg[at + 1..]);
    if user.is_empty() {
        return Err(UserError::EmptyUser);
    }
    if dest.is_empty() {
        return Err(UserError::EmptyHost);
    }
    let (host, port) = if let Some(inner) = dest.strip_prefix(b"[") {
        let close = inner
            .iter()
            .position(|&b| b == b']')
            .ok_or(UserError::BadHost)?;
        let host = &inner[..close];
        let port = match &inner[close + 1..] {
            [] => None,
            [b':', digits @ ..] => Some(port(digits)?),
            _ => return Err(UserError::BadPort),
        };
        if host.is_empty() {
            return Err(UserError::EmptyHost);
        }
        let is_v6 = std::str::from_utf8(host)
            .ok()
            .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok())
            .is_some();
        if !is_v6 {
            return Err(UserError::BadHost);
        }
        (host, port)
    } else {
        match dest.iter().filter(|&&b| b == b':').count() {
            0 => (dest, None),
            1 => {
                let colon = dest
                    .iter()
                    .position(|&b| b == b':')
                    .ok_or(UserError::BadPort)?;
                (&dest[..colon], Some(port(&dest[colon + 1..])?))
            }
            // a bare IPv6 address: no port
            _ => (dest, None),
        }
    };
    if host.is_empty() {
        return Err(UserError::EmptyHost);
    }
    Ok(Login {
        user,
        host: Some(host),
        port,
    })
}

/// UserAuthMagic: where the proxy login (authuser/authpass) sits in USER
/// and PASS. The separator is always `@` (ftp-proxy.conf(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMagic {
    /// `@auth`: `USER ftpuser@authuser[@host[:port]]`, `PASS ftppass@authpass`.
    AuthLast,
    /// `auth@`: `USER authuser@ftpuser[@host[:port]]`, `PASS authpass@ftppass`.
    AuthFirst,
}

/// A USER argument under UserAuthMagic: the FTP login (with the magic-user
/// destination, if any) and the proxy login name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthLogin<'a> {
    pub login: Login<'a>,
    pub auth_user: &'a [u8],
}

/// Splits a USER argument under UserAuthMagic `mode` at its first `@`; the
/// part after it may carry a magic-user destination (split with
/// [`split_magic`] when `magic` is Some, i.e. AllowMagicUser). Grammar:
///
/// ```text
/// @auth: ftpuser "@" authuser [ magic dest ]
/// auth@: authuser "@" ftpuser [ magic dest ]
/// ```
///
/// Neither name may be empty. Never panics, for any input.
pub fn split_auth(
    arg: &[u8],
    mode: AuthMagic,
    magic: Option<u8>,
) -> Result<AuthLogin<'_>, UserError> {
    let at = arg
        .iter()
        .position(|&b| b == b'@')
        .ok_or(UserError::NoAuthUser)?;
    let (first, rest) = (
        arg.get(..at).unwrap_or_default(),
        arg.get(at + 1..).unwrap_or_default(),
    );
    let second = match magic {
        Some(m) => split_magic(rest, m)?,
        None => Login {
            user: rest,
            host: None,
            port: None,
        },
    };
    if first.is_empty() || second.user.is_empty() {
        return Err(UserError::EmptyUser);
    }
    Ok(match mode {
        AuthMagic::AuthLast => AuthLogin {
            login: Login {
                user: first,
                ..second
            },
            auth_user: second.user,
        },
        AuthMagic::AuthFirst => AuthLogin {
            login: second,
            auth_user: first,
        },
    })
}

/// Splits a PASS argument under UserAuthMagic into (ftppass, authpass):
/// for `@auth` at the LAST `@` (an anonymous FTP password is often an
/// e-mail address), for `auth@` at the FIRST. None without an `@`.
pub fn split_auth_pass(arg: &[u8], mode: AuthMagic) -> Option<(&[u8], &[u8])> {
    match mode {
        AuthMagic::AuthLast => {
            let at = arg.iter().rposition(|&b| b == b'@')?;
            Some((arg.get(..at)?, arg.get(at + 1..)?))
        }
        AuthMagic::AuthFirst => {
            let at = arg.iter().position(|&b| b == b'@')?;
            Some((arg.get(at + 1..)?, arg.get(..at)?))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn auth_magic_users_split_at_the_first_at() {
        let l = split_auth(b"ftp@auth", AuthMagic::AuthLast, None).unwrap();
        assert_eq!((l.login.user, l.auth_user), (&b"ftp"[..], &b"auth"[..]));
        let l = split_auth(b"auth@ftp", AuthMagic::AuthFirst, None).unwrap();
        assert_eq!((l.login.user, l.auth_user), (&b"ftp"[..], &b"auth"[..]));
        let l = split_auth(
            b"ftp@auth@host.example:2121",
            AuthMagic::AuthLast,
            Some(b'@'),
        )
        .unwrap();
        assert_eq!(l.login.user, b"ftp");
        assert_eq!(l.auth_user, b"auth");
        assert_eq!(l.login.host, Some(&b"host.example"[..]));
        assert_eq!(l.login.port, Some(2121));
        let l = split_auth(b"auth@ftp@host", AuthMagic::AuthFirst, Some(b'@')).unwrap();
        assert_eq!(
            (l.login.user, l.auth_user, l.login.host),
            (&b"ftp"[..], &b"auth"[..], Some(&b"host"[..]))
        );
        // Without AllowMagicUser the rest is one name.
        let l = split_auth(b"auth@ftp@host", AuthMagic::AuthFirst, None).unwrap();
        assert_eq!(l.login.user, b"ftp@host");
        for bad in [&b"nobody"[..], b"@auth", b"ftp@", b"ftp@@host"] {
            assert!(
                split_auth(bad, AuthMagic::AuthLast, Some(b'@')).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn auth_magic_passwords_split_where_an_email_address_survives() {
        assert_eq!(
            split_auth_pass(b"me@example.org@authpw", AuthMagic::AuthLast),
            Some((&b"me@example.org"[..], &b"authpw"[..]))
        );
        assert_eq!(
            split_auth_pass(b"authpw@me@example.org", AuthMagic::AuthFirst),
            Some((&b"me@example.org"[..], &b"authpw"[..]))
        );
        assert_eq!(split_auth_pass(b"nosep", AuthMagic::AuthLast), None);
        assert_eq!(
            split_auth_pass(b"@", AuthMagic::AuthFirst),
            Some((&b""[..], &b""[..]))
        );
    }

    #[test]
    fn default_rule_accepts_usual_names_and_refuses_odd_ones() {
        let re = compile_rule(DEFAULT_RULE).unwrap();
        let cases: &[(&[u8], bool)] = &[
            (b"anonymous", true),
            (b"ftp", true),
            (b"user@example.com", true),
            (b"dom/user", true),
            (b"a b", true),
            (b"first.last_x-y", true),
            (b"A1", true),
            (b"", false),
            (b"-x", false),
            (b"x-", false),
            (b"a;b", false),
            (b"a\0b", false),
            (b"a  b", false),
            (b"a\\b", false),
            (b"a\nb", false),
            (b"a b\n", false),
            (b"\xc3\xa4", false),
            (b"../x", false),
        ];
        for (name, want) in cases {
            assert_eq!(re.is_match(name), *want, "name {name:?}");
        }
    }

    #[test]
    fn bad_rules_are_errors() {
        assert!(compile_rule("^(").is_err());
        assert!(compile_rule("[[:nope:]]").is_err());
    }

    /// USER argument, magic byte, expected user, host and port.
    type MagicCase = (
        &'static [u8],
        u8,
        &'static [u8],
        Option<&'static [u8]>,
        Option<u16>,
    );

    #[test]
    fn magic_user_splits_at_the_last_magic_byte() {
        let cases: &[MagicCase] = &[
            (b"bob", b'@', b"bob", None, None),
            (
                b"bob@ftp.example.org",
                b'@',
                b"bob",
                Some(b"ftp.example.org"),
                None,
            ),
            (
                b"bob@ftp.example.org:2121",
                b'@',
                b"bob",
                Some(b"ftp.example.org"),
                Some(2121),
            ),
            (
                b"bob@example.com@host",
                b'@',
                b"bob@example.com",
                Some(b"host"),
                None,
            ),
            (
                b"bob@[2001:db8::1]",
                b'@',
                b"bob",
                Some(b"2001:db8::1"),
                None,
            ),
            (
                b"bob@[2001:db8::1]:21",
                b'@',
                b"bob",
                Some(b"2001:db8::1"),
                Some(21),
            ),
            (b"bob@2001:db8::1", b'@', b"bob", Some(b"2001:db8::1"), None),
            (b"bob@::1", b'@', b"bob", Some(b"::1"), None),
            (b"bob%host", b'%', b"bob", Some(b"host"), None),
            (b"bob@host", b'%', b"bob@host", None, None),
            (
                b"bob@1.2.3.4:65535",
                b'@',
                b"bob",
                Some(b"1.2.3.4"),
                Some(65535),
            ),
        ];
        for (arg, magic, user, host, port) in cases {
            let got = split_magic(arg, *magic).unwrap();
            assert_eq!(
                got,
                Login {
                    user,
                    host: *host,
                    port: *port
                },
                "arg {arg:?}"
            );
        }
    }

    #[test]
    fn malformed_magic_users_are_errors() {
        let cases: &[(&[u8], UserError)] = &[
            (b"@host", UserError::EmptyUser),
            (b"bob@", UserError::EmptyHost),
            (b"bob@:21", UserError::EmptyHost),
            (b"bob@[]", UserError::EmptyHost),
            (b"bob@host:", UserError::BadPort),
            (b"bob@host:0", UserError::BadPort),
            (b"bob@host:65536", UserError::BadPort),
            (b"bob@host:021x", UserError::BadPort),
            (b"bob@host:+21", UserError::BadPort),
            (b"bob@host:000021", UserError::BadPort),
            (b"bob@[::1]x", UserError::BadPort),
            (b"bob@[::1]:", UserError::BadPort),
            (b"bob@[::1", UserError::BadHost),
            (b"bob@[host]", UserError::BadHost),
            (b"bob@[1.2.3.4]:21", UserError::BadHost),
        ];
        for (arg, want) in cases {
            assert_eq!(split_magic(arg, b'@'), Err(want.clone()), "arg {arg:?}");
        }
    }

    proptest! {
        #[test]
        fn split_magic_never_panics_and_user_is_a_prefix(
            arg in proptest::collection::vec(prop_oneof![any::<u8>(), Just(b'@'), Just(b':'), Just(b'['), Just(b']')], 0..30),
        ) {
            if let Ok(login) = split_magic(&arg, b'@') {
                prop_assert!(arg.starts_with(login.user));
                prop_assert!(!login.user.is_empty() || login.host.is_none());
            }
        }
    }
}

//! The LDAP directory client of SPEC 7: a small, blocking LDAPv3 client
//! over plain TCP that binds (simply), searches one entry and unbinds.
//!
//! [`ber`] encodes and decodes the messages and does no I/O; this module
//! owns the socket: a connect time-out, a time-out on every read, an
//! overall deadline per exchange and bounded message sizes
//! (`limits::LDAP_TIMEOUT_SECS`, `limits::MAX_LDAP_MESSAGE`). Nothing the
//! server sends can make it panic, allocate without bound or wait forever.
//! [`auth`] holds the pure decisions of proxy authentication.
#![forbid(unsafe_code)]

pub mod auth;
pub mod ber;

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::config::LdapSettings;
use crate::limits;
use crate::sys::net;

pub use ber::{Attribute, Entry};

/// Why a directory exchange failed. All of them mean "the directory is not
/// usable": the session ends with 421.
#[derive(Debug)]
pub enum LdapError {
    /// No address of LDAPServer accepted a connection.
    Connect(String),
    /// Reading or writing failed, timed out, or the server closed.
    Io(String),
    /// The server sent something that is not the expected LDAP message.
    Protocol(String),
    /// The server refused an operation (bind with LDAPBindDN, search).
    Refused {
        what: &'static str,
        code: u32,
        text: String,
    },
    /// The bind as the user (LDAPBindDN with `%s`, the user's password)
    /// was refused with a result that judges the credentials, not the
    /// directory (see [`refuses_credentials`]): a failed login, not an
    /// unusable directory.
    Credentials { code: u32, text: String },
}

/// Bind results that say "not this user with this password" (RFC 4511
/// 4.1.9): noSuchObject, inappropriateAuthentication, invalidCredentials,
/// insufficientAccessRights, unwillingToPerform. busy, unavailable and
/// the rest say the directory cannot be used now.
pub fn refuses_credentials(code: u32) -> bool {
    matches!(code, 32 | 48 | 49 | 50 | 53)
}

impl fmt::Display for LdapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LdapError::Connect(why) => write!(f, "cannot connect: {why}"),
            LdapError::Io(why) => write!(f, "{why}"),
            LdapError::Protocol(why) => write!(f, "protocol error: {why}"),
            LdapError::Refused { what, code, text } => {
                write!(f, "{what} refused with result code {code}")?;
                if !text.is_empty() {
                    write!(f, " ({text})")?;
                }
                Ok(())
            }
            LdapError::Credentials { code, text } => {
                write!(f, "bind as the user refused with result code {code}")?;
                if !text.is_empty() {
                    write!(f, " ({text})")?;
                }
                Ok(())
            }
        }
    }
}

impl From<ber::BerError> for LdapError {
    fn from(e: ber::BerError) -> Self {
        LdapError::Protocol(e.to_string())
    }
}

/// One connection to the directory.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    next_id: u32,
    deadline: Instant,
}

impl Conn {
    fn open(addrs: &[SocketAddr]) -> Result<Conn, LdapError> {
        let timeout = Duration::from_secs(limits::CONNECT_TIMEOUT_SECS);
        let mut why = "no address".to_string();
        for &addr in addrs {
            match net::connect(addr, None, None, timeout) {
                Ok(stream) => {
                    let io = Some(Duration::from_secs(limits::LDAP_TIMEOUT_SECS));
                    stream
                        .set_write_timeout(io)
                        .map_err(|e| LdapError::Io(e.to_string()))?;
                    return Ok(Conn {
                        stream,
                        buf: Vec::new(),
                        next_id: 1,
                        deadline: Instant::now()
                            + Duration::from_secs(2 * limits::LDAP_TIMEOUT_SECS),
                    });
                }
                Err(e) => why = format!("{addr}: {e}"),
            }
        }
        Err(LdapError::Connect(why))
    }

    fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), LdapError> {
        self.stream
            .write_all(bytes)
            .map_err(|e| LdapError::Io(format!("write: {e}")))
    }

    /// The next whole message, within the read time-out and the deadline.
    fn receive(&mut self) -> Result<(u32, ber::Response), LdapError> {
        loop {
            if let Some(len) = ber::frame_len(&self.buf)?
                && self.buf.len() >= len
            {
                let message: Vec<u8> = self.buf.drain(..len).collect();
                return Ok(ber::decode(&message)?);
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            let wait = left.min(Duration::from_secs(limits::LDAP_TIMEOUT_SECS));
            if wait.is_zero() {
                return Err(LdapError::Io("no answer in time".into()));
            }
            self.stream
                .set_read_timeout(Some(wait))
                .map_err(|e| LdapError::Io(e.to_string()))?;
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(LdapError::Io("the server closed the connection".into())),
                Ok(n) => self
                    .buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(LdapError::Io("no answer in time".into()));
                }
                Err(e) => return Err(LdapError::Io(format!("read: {e}"))),
            }
        }
    }

    /// A simple bind; the server's result (success or not).
    fn bind(
        &mut self,
        version: u8,
        dn: &[u8],
        password: &[u8],
    ) -> Result<ber::LdapResult, LdapError> {
        let id = self.id();
        self.send(&ber::bind_request(id, version, dn, password))?;
        match self.receive()? {
            (got, ber::Response::Bind(r)) if got == id => Ok(r),
            (got, other) => Err(LdapError::Protocol(format!(
                "expected the bind response to message {id}, got {other:?} for {got}"
            ))),
        }
    }

    /// A subtree search for `filter` under `base`: the entries found, at
    /// most `limits::MAX_LDAP_ENTRIES` (more is an error).
    fn search(
        &mut self,
        base: &[u8],
        filter: &[ber::Equality<'_>],
        attributes: &[&[u8]],
    ) -> Result<Vec<Entry>, LdapError> {
        let id = self.id();
        let time_limit = u32::try_from(limits::LDAP_TIMEOUT_SECS).unwrap_or(u32::MAX);
        // Ask for one more than allowed, to tell "unique" from "ambiguous".
        let size_limit = limits::MAX_LDAP_ENTRIES + 1;
        self.send(&ber::search_request(
            id, base, size_limit, time_limit, filter, attributes,
        ))?;
        let mut entries = Vec::new();
        loop {
            match self.receive()? {
                (got, _) if got != id => {
                    return Err(LdapError::Protocol(format!(
                        "answer to message {got} while waiting for {id}"
                    )));
                }
                (_, ber::Response::Entry(e)) => entries.push(e),
                (_, ber::Response::Reference) => {}
                (_, ber::Response::SearchDone(r)) => {
                    // sizeLimitExceeded (4) still means "more than one".
                    let too_many = entries.len() > limits::MAX_LDAP_ENTRIES as usize;
                    if too_many || r.code == 4 {
                        return Err(LdapError::Protocol(format!(
                            "{} or more entries match",
                            limits::MAX_LDAP_ENTRIES + 1
                        )));
                    }
                    // noSuchObject (32): the base DN does not exist; no user.
                    if r.code != ber::SUCCESS && r.code != 32 {
                        return Err(LdapError::Refused {
                            what: "search",
                            code: r.code,
                            text: crate::ftp::escape(&r.diagnostic),
                        });
                    }
                    return Ok(entries);
                }
                (_, ber::Response::Bind(_)) => {
                    return Err(LdapError::Protocol("bind response to a search".into()));
                }
            }
            // SECURITY: a server streaming entries is cut off early.
            if entries.len() > limits::MAX_LDAP_ENTRIES as usize {
                return Err(LdapError::Protocol(format!(
                    "{} or more entries match",
                    limits::MAX_LDAP_ENTRIES + 1
                )));
            }
        }
    }

    /// Unbind and close; errors do not matter any more.
    fn close(mut self) {
        let id = self.id();
        let _ = self.send(&ber::unbind_request(id));
    }
}

/// Proxy authentication binds as the user (ftp-proxy's LDAPBindDN with
/// `%s` and UserAuthType ldap): the look-up waits for PASS and binds as
/// LDAPBindDN, `%s` the (authentication) login, with the user's password;
/// the directory's acceptance is the password check.
pub fn binds_as_user(cfg: &LdapSettings) -> bool {
    cfg.auth.is_some() && cfg.bind_dn.contains("%s")
}

/// The DN to bind with at start: LDAPBindDN with its `%s` replaced by the
/// escaped login name (empty: anonymous).
pub fn bind_dn(cfg: &LdapSettings, login: &[u8]) -> Vec<u8> {
    match cfg.bind_dn.split_once("%s") {
        Some((before, after)) => {
            let mut dn = before.as_bytes().to_vec();
            // SECURITY: escaped, so a login name cannot add or change DN
            // components (bind as somebody else).
            dn.extend(ber::escape_dn_value(login));
            dn.extend_from_slice(after.as_bytes());
            dn
        }
        None => cfg.bind_dn.as_bytes().to_vec(),
    }
}

/// The text form of the search filter, for log lines (RFC 4515, the login
/// escaped).
pub fn filter_text(cfg: &LdapSettings, login: &[u8]) -> String {
    let id = format!("({}={})", cfg.identifier, ber::escape_filter_value(login));
    match &cfg.object_class {
        Some(class) => format!("(&(objectClass={class}){id})"),
        None => id,
    }
}

/// What one directory visit found for a login.
#[derive(Debug, Default)]
pub struct Found {
    /// The entry under LDAPBaseDN (the user profile), if any.
    pub profile: Option<Entry>,
    /// With UserAuthType ldap: the entry under LDAPAuthDN (may be the same).
    pub auth: Option<Entry>,
}

/// Looks `login` up: connect to one of `addrs`, bind with LDAPBindDN (or
/// anonymously), search LDAPBaseDN (and LDAPAuthDN when authentication
/// needs another base) for `(&(objectClass=C)(I=login))`, unbind.
///
/// With `password` (the user's own, see [`binds_as_user`]) the bind uses
/// it instead of LDAPBindPW, and a refusal of those credentials is
/// [`LdapError::Credentials`].
pub fn lookup(
    cfg: &LdapSettings,
    addrs: &[SocketAddr],
    login: &[u8],
    password: Option<&[u8]>,
) -> Result<Found, LdapError> {
    let mut conn = Conn::open(addrs)?;
    let secret = password.unwrap_or(cfg.bind_pw.as_bytes());
    let r = conn.bind(cfg.version, &bind_dn(cfg, login), secret)?;
    if r.code != ber::SUCCESS {
        let text = crate::ftp::escape(&r.diagnostic);
        if password.is_some() && refuses_credentials(r.code) {
            return Err(LdapError::Credentials { code: r.code, text });
        }
        return Err(LdapError::Refused {
            what: "bind with LDAPBindDN",
            code: r.code,
            text,
        });
    }
    let mut filter = Vec::new();
    if let Some(class) = &cfg.object_class {
        filter.push(ber::Equality {
            attribute: b"objectClass",
            value: class.as_bytes(),
        });
    }
    filter.push(ber::Equality {
        attribute: cfg.identifier.as_bytes(),
        value: login,
    });
    let attributes = wanted_attributes(cfg);
    let profile = conn
        .search(cfg.base_dn.as_bytes(), &filter, &attributes)?
        .pop();
    let auth = match &cfg.auth {
        Some(a) if a.base_dn != cfg.base_dn => conn
            .search(a.base_dn.as_bytes(), &filter, &attributes)?
            .pop(),
        Some(_) => profile.clone(),
        None => None,
    };
    conn.close();
    Ok(Found { profile, auth })
}

/// The attributes a lookup asks for: the user-context options and those
/// of authentication. Only these, so that a big attribute ftpgate has no
/// use for (jpegPhoto, userCertificate) cannot push an entry past
/// `limits::MAX_LDAP_MESSAGE`.
fn wanted_attributes(cfg: &LdapSettings) -> Vec<&[u8]> {
    let mut names: Vec<&[u8]> = crate::config::options::OPTIONS
        .iter()
        .filter(|o| o.scope == crate::config::options::Scope::User)
        .map(|o| o.name.as_bytes())
        .collect();
    if let Some(auth) = &cfg.auth {
        names.extend(auth.pw_attr.as_deref().map(str::as_bytes));
        names.extend(auth.ok_flag.as_ref().map(|(name, _)| name.as_bytes()));
    }
    names
}

/// Binds as `dn` with `password` on a new connection: Ok(Ok(())) when the
/// directory accepts, Ok(Err(result)) when it refuses (wrong password),
/// Err when the directory cannot be used at all.
pub fn bind_as(
    cfg: &LdapSettings,
    addrs: &[SocketAddr],
    dn: &[u8],
    password: &[u8],
) -> Result<Result<(), ber::LdapResult>, LdapError> {
    let mut conn = Conn::open(addrs)?;
    let r = conn.bind(cfg.version, dn, password)?;
    conn.close();
    Ok(if r.code == ber::SUCCESS {
        Ok(())
    } else {
        Err(r)
    })
}

/// The attributes of `entry` that are named like configuration options,
/// as text, for `Config::settings_from_attributes`. Attributes with other
/// names (cn, objectClass, userPassword, ...) are left out whatever their
/// bytes; an option's value that is not UTF-8 is an error.
pub fn option_attributes(entry: &Entry) -> Result<Vec<(&str, Vec<&str>)>, String> {
    let mut out = Vec::new();
    for a in &entry.attributes {
        let Ok(name) = std::str::from_utf8(&a.name) else {
            continue;
        };
        if crate::config::options::lookup(name).is_none() {
            continue;
        }
        let values = a
            .values
            .iter()
            .map(|v| std::str::from_utf8(v).map_err(|_| format!("{name}: value is not UTF-8")))
            .collect::<Result<Vec<&str>, String>>()?;
        out.push((name, values));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    /// The shipped schema has an attribute, in FTPProxyUser, for every
    /// user-context option (an entry may set any of them).
    #[test]
    fn the_shipped_schema_names_every_user_context_option() {
        let schema = include_str!("../../examples/ftpproxy.schema");
        let class = schema.split("objectclass").nth(1).unwrap();
        for o in crate::config::options::OPTIONS
            .iter()
            .filter(|o| o.scope == crate::config::options::Scope::User)
        {
            assert!(
                schema.contains(&format!("NAME '{}'", o.name)),
                "no attribute type {}",
                o.name
            );
            assert!(
                class.contains(&format!(" {} ", o.name))
                    || class.contains(&format!(" {} $", o.name)),
                "{} not in FTPProxyUser",
                o.name
            );
        }
    }

    use super::*;
    use crate::config::Config;

    #[test]
    fn only_option_attributes_are_taken() {
        let e = Entry {
            dn: b"cn=bob".to_vec(),
            attributes: vec![
                Attribute {
                    name: b"cn".to_vec(),
                    values: vec![b"bob".to_vec()],
                },
                Attribute {
                    name: b"userPassword".to_vec(),
                    values: vec![vec![0xff]],
                },
                Attribute {
                    name: b"destinationPort".to_vec(),
                    values: vec![b"2121".to_vec()],
                },
            ],
        };
        assert_eq!(
            option_attributes(&e),
            Ok(vec![("destinationPort", vec!["2121"])])
        );
        let bad = Entry {
            dn: Vec::new(),
            attributes: vec![Attribute {
                name: b"TimeOut".to_vec(),
                values: vec![vec![0xff]],
            }],
        };
        assert!(option_attributes(&bad).is_err());
    }

    fn settings(extra: &str) -> LdapSettings {
        let text =
            format!("DestinationAddress a\nLDAPServer h\nLDAPObjectClass FTPProxyUser\n{extra}");
        match Config::parse_str("t", &text) {
            Ok(c) => c.ldap.unwrap(),
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn the_bind_dn_gets_the_escaped_login() {
        let s = settings("LDAPBindDN cn=%s,dc=example\nLDAPBindPW x\n");
        assert_eq!(bind_dn(&s, b"bob"), b"cn=bob,dc=example");
        assert_eq!(
            bind_dn(&s, b"bob,cn=admin"),
            b"cn=bob\\2ccn\\3dadmin,dc=example"
        );
        let s = settings("LDAPBindDN cn=proxy\nLDAPBindPW x\n");
        assert_eq!(bind_dn(&s, b"bob"), b"cn=proxy");
        assert_eq!(bind_dn(&settings(""), b"bob"), b"");
    }

    #[test]
    fn the_logged_filter_escapes_the_login() {
        let s = settings("");
        assert_eq!(
            filter_text(&s, b"bob"),
            "(&(objectClass=FTPProxyUser)(CN=bob))"
        );
        assert_eq!(
            filter_text(&s, b"*)(cn=*"),
            "(&(objectClass=FTPProxyUser)(CN=\\2a\\29\\28cn=\\2a))"
        );
    }

    /// A fake directory on loopback that answers with `reply` bytes.
    fn fake(reply: Vec<u8>) -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut b = [0u8; 512];
                let _ = s.read(&mut b);
                let _ = s.write_all(&reply);
                let _ = s.read(&mut b);
            }
        });
        addr
    }

    #[test]
    fn hostile_directories_end_in_errors_not_hangs() {
        let s = settings("");
        // An oversized length, garbage, and a close before the answer.
        let replies = [
            vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff],
            b"220 ftp.example.org ready\r\n".to_vec(),
            vec![0x30, 0x0c, 0x02, 0x01],
        ];
        for reply in replies {
            let addr = fake(reply.clone());
            assert!(lookup(&s, &[addr], b"bob", None).is_err(), "{reply:?}");
        }
    }

    #[test]
    fn an_unreachable_directory_is_a_connect_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        assert!(matches!(
            lookup(&settings(""), &[addr], b"bob", None),
            Err(LdapError::Connect(_))
        ));
    }
}

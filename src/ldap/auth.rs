//! Proxy authentication decisions (UserAuthType ldap), pure: given the
//! user's directory entry and the password from PASS, may the user in?
//!
//! The bind method is carried out by the caller (`ldap::bind_as`); this
//! module decides everything that does not need the network: the
//! LDAPAuthOKFlag check and the compare method (LDAPAuthPWAttr with
//! LDAPAuthPWType plain, crypt or {crypt}). crypt(3) hashes (DES, MD5
//! `$1$`, bcrypt `$2y$`, SHA-256 `$5$`, SHA-512 `$6$`, ...) are verified
//! by the `pwhash` crate. Never panics on any password from the client.
#![forbid(unsafe_code)]

use std::fmt;

use super::Entry;
use crate::config::options::PwScheme;

/// Why authentication failed; logged, never shown to the client (which
/// gets one 530 whatever the reason, so that it learns nothing about
/// which names exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No entry for the login name under LDAPAuthDN.
    NoEntry,
    /// UserAuthMagic, but PASS holds no `@` between the two passwords.
    NoAuthPassword,
    /// PASS was empty (an empty simple bind is an unauthenticated bind
    /// that many servers accept: never sent).
    EmptyPassword,
    /// The entry lacks LDAPAuthOKFlag's attribute=value.
    FlagMissing,
    /// The entry has no (single) LDAPAuthPWAttr value.
    NoPassword,
    /// The stored password is `*` or `!` (a crypt hash: starts with one):
    /// the account is disabled.
    Disabled,
    /// The stored (plain) or given (crypt) password is shorter than
    /// LDAPAuthPWType's minimum.
    TooShort,
    /// LDAPAuthPWType {crypt} but the value has no `{crypt}` prefix.
    NotCrypt,
    /// The password does not match.
    WrongPassword,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Denied::NoEntry => "no such user in the directory",
            Denied::NoAuthPassword => "no proxy password in PASS (UserAuthMagic)",
            Denied::EmptyPassword => "empty password",
            Denied::FlagMissing => "LDAPAuthOKFlag not set in the entry",
            Denied::NoPassword => "no single password attribute in the entry",
            Denied::Disabled => "account disabled in the directory",
            Denied::TooShort => "password shorter than LDAPAuthPWType's minimum",
            Denied::NotCrypt => "stored password has no {crypt} prefix",
            Denied::WrongPassword => "wrong password",
        })
    }
}

fn values<'e>(entry: &'e Entry, attribute: &str) -> impl Iterator<Item = &'e [u8]> {
    entry
        .attributes
        .iter()
        .filter(move |a| a.name.eq_ignore_ascii_case(attribute.as_bytes()))
        .flat_map(|a| a.values.iter().map(Vec::as_slice))
}

/// LDAPAuthOKFlag: the entry must hold `attribute` with `value` (the
/// attribute name and the value compared ASCII case-insensitively, as
/// LDAP's usual caseIgnoreMatch does).
pub fn check_flag(entry: &Entry, flag: Option<&(String, String)>) -> Result<(), Denied> {
    let Some((attribute, value)) = flag else {
        return Ok(());
    };
    if values(entry, attribute).any(|v| v.eq_ignore_ascii_case(value.as_bytes())) {
        Ok(())
    } else {
        Err(Denied::FlagMissing)
    }
}

/// The compare method with a plain stored password: exactly one value of
/// `attribute`, not `*` or `!` (disabled), at least `min_len` bytes, equal
/// to `password`.
pub fn check_plain(
    entry: &Entry,
    attribute: &str,
    min_len: usize,
    password: &[u8],
) -> Result<(), Denied> {
    let mut stored = values(entry, attribute);
    let (Some(stored), None) = (stored.next(), stored.next()) else {
        return Err(Denied::NoPassword);
    };
    // SECURITY: ftp-proxy's convention for disabled accounts.
    if stored == b"*" || stored == b"!" {
        return Err(Denied::Disabled);
    }
    // SECURITY: an empty or short stored password would let anybody in
    // with an equally short guess.
    if stored.len() < min_len.max(1) {
        return Err(Denied::TooShort);
    }
    if equal_in_constant_time(stored, password) {
        Ok(())
    } else {
        Err(Denied::WrongPassword)
    }
}

/// The compare method for any LDAPAuthPWType: plain goes to
/// [`check_plain`]; crypt and {crypt} verify `password` against the stored
/// crypt(3) hash (after the `{crypt}` prefix, any case, for {crypt}). For
/// crypt the minimum length applies to the given password, since the
/// stored hash's length says nothing about it.
pub fn check_password(
    entry: &Entry,
    attribute: &str,
    scheme: PwScheme,
    min_len: usize,
    password: &[u8],
) -> Result<(), Denied> {
    if scheme == PwScheme::Plain {
        return check_plain(entry, attribute, min_len, password);
    }
    let mut stored = values(entry, attribute);
    let (Some(stored), None) = (stored.next(), stored.next()) else {
        return Err(Denied::NoPassword);
    };
    let hash = if scheme == PwScheme::PrefixedCrypt {
        match stored.get(..7) {
            Some(p) if p.eq_ignore_ascii_case(b"{crypt}") => stored.get(7..).unwrap_or_default(),
            _ => return Err(Denied::NotCrypt),
        }
    } else {
        stored
    };
    // SECURITY: `*` and `!` (also as a prefix: a locked shadow-style
    // hash) disable the account; an empty hash would match nothing sane.
    if hash.is_empty() || hash.starts_with(b"*") || hash.starts_with(b"!") {
        return Err(Denied::Disabled);
    }
    if password.len() < min_len.max(1) {
        return Err(Denied::TooShort);
    }
    let Ok(hash) = std::str::from_utf8(hash) else {
        return Err(Denied::WrongPassword);
    };
    if pwhash::unix::verify(password, hash) {
        Ok(())
    } else {
        Err(Denied::WrongPassword)
    }
}

/// Compares without an early exit on the first differing byte, so the
/// time taken does not tell how much of a guess was right.
fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ldap::Attribute;

    fn entry(attrs: &[(&str, &[&str])]) -> Entry {
        Entry {
            dn: b"cn=bob,dc=example".to_vec(),
            attributes: attrs
                .iter()
                .map(|(n, vs)| Attribute {
                    name: n.as_bytes().to_vec(),
                    values: vs.iter().map(|v| v.as_bytes().to_vec()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_ok_flag_must_be_present() {
        let flag = ("ftpEnabled".to_string(), "yes".to_string());
        let e = entry(&[("FTPENABLED", &["YES"])]);
        assert_eq!(check_flag(&e, Some(&flag)), Ok(()));
        assert_eq!(check_flag(&e, None), Ok(()));
        let e = entry(&[("ftpEnabled", &["no"])]);
        assert_eq!(check_flag(&e, Some(&flag)), Err(Denied::FlagMissing));
        assert_eq!(
            check_flag(&entry(&[]), Some(&flag)),
            Err(Denied::FlagMissing)
        );
    }

    #[test]
    fn plain_passwords_are_compared() {
        let e = entry(&[("userPassword", &["s3cret!"])]);
        assert_eq!(check_plain(&e, "userpassword", 5, b"s3cret!"), Ok(()));
        let cases: [(&Entry, usize, &[u8], Denied); 6] = [
            (&e, 5, b"s3cret", Denied::WrongPassword),
            (&e, 5, b"S3CRET!", Denied::WrongPassword),
            (&e, 5, b"", Denied::WrongPassword),
            (&e, 8, b"s3cret!", Denied::TooShort),
            (
                &entry(&[("userPassword", &["*"])]),
                0,
                b"*",
                Denied::Disabled,
            ),
            (
                &entry(&[("userPassword", &["a", "b"])]),
                0,
                b"a",
                Denied::NoPassword,
            ),
        ];
        for (e, min, pw, want) in cases {
            assert_eq!(check_plain(e, "userPassword", min, pw), Err(want));
        }
        assert_eq!(
            check_plain(&entry(&[("userPassword", &[""])]), "userPassword", 0, b""),
            Err(Denied::TooShort)
        );
        assert_eq!(
            check_plain(&entry(&[]), "userPassword", 0, b"x"),
            Err(Denied::NoPassword)
        );
    }

    #[test]
    fn crypt_hashes_are_verified() {
        // `openssl passwd -6 -salt saltsalt secret` and `-1 -salt abc`.
        let sha512 = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
        let md5 = "$1$abc$iCQ2D3nhptRYi27fDYv2s1";
        let prefixed = format!("{{CRYPT}}{sha512}");
        let cases: [(&str, PwScheme); 3] = [
            (sha512, PwScheme::Crypt),
            (md5, PwScheme::Crypt),
            (&prefixed, PwScheme::PrefixedCrypt),
        ];
        for (stored, scheme) in cases {
            let e = entry(&[("userPassword", &[stored])]);
            assert_eq!(
                check_password(&e, "userPassword", scheme, 5, b"secret"),
                Ok(()),
                "{stored}"
            );
            assert_eq!(
                check_password(&e, "userPassword", scheme, 5, b"secreT"),
                Err(Denied::WrongPassword)
            );
            assert_eq!(
                check_password(&e, "userPassword", scheme, 7, b"secret"),
                Err(Denied::TooShort)
            );
        }
        let e = entry(&[("userPassword", &[sha512])]);
        assert_eq!(
            check_password(&e, "userPassword", PwScheme::PrefixedCrypt, 5, b"secret"),
            Err(Denied::NotCrypt)
        );
        let locked = format!("!{sha512}");
        let e = entry(&[("userPassword", &[&locked])]);
        assert_eq!(
            check_password(&e, "userPassword", PwScheme::Crypt, 5, b"secret"),
            Err(Denied::Disabled)
        );
        let e = entry(&[("userPassword", &["{crypt}*"])]);
        assert_eq!(
            check_password(&e, "userPassword", PwScheme::PrefixedCrypt, 0, b"*"),
            Err(Denied::Disabled)
        );
        // A plain stored value is still compared as plain text.
        let e = entry(&[("userPassword", &["secret"])]);
        assert_eq!(
            check_password(&e, "userPassword", PwScheme::Plain, 5, b"secret"),
            Ok(())
        );
        // Garbage instead of a hash and odd passwords are refusals, not panics.
        for stored in ["$6$", "$1$", "$2y$04$x", "x", "$", "$5$rounds=1000$"] {
            let e = entry(&[("userPassword", &[stored])]);
            for pw in [&b"secret"[..], b"\xff\x00abc", b"$6$$"] {
                assert!(check_password(&e, "userPassword", PwScheme::Crypt, 0, pw).is_err());
            }
        }
    }
}

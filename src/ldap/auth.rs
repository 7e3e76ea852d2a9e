//! Proxy authentication decisions (UserAuthType ldap), pure: given the
//! user's directory entry and the password from PASS, may the user in?
//!
//! The bind method is carried out by the caller (`ldap::bind_as`); this
//! module decides everything that does not need the network: the
//! LDAPAuthOKFlag check and the compare method (LDAPAuthPWAttr with
//! LDAPAuthPWType plain). Never panics, for any input.
#![forbid(unsafe_code)]

use std::fmt;

use super::Entry;

/// Why authentication failed; logged, never shown to the client (which
/// gets one 530 whatever the reason, so that it learns nothing about
/// which names exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No entry for the login name under LDAPAuthDN.
    NoEntry,
    /// PASS was empty (an empty simple bind is an unauthenticated bind
    /// that many servers accept: never sent).
    EmptyPassword,
    /// The entry lacks LDAPAuthOKFlag's attribute=value.
    FlagMissing,
    /// The entry has no (single) LDAPAuthPWAttr value.
    NoPassword,
    /// The stored password is `*` or `!`: the account is disabled.
    Disabled,
    /// The stored password is shorter than LDAPAuthPWType's minimum.
    TooShort,
    /// The password does not match.
    WrongPassword,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Denied::NoEntry => "no such user in the directory",
            Denied::EmptyPassword => "empty password",
            Denied::FlagMissing => "LDAPAuthOKFlag not set in the entry",
            Denied::NoPassword => "no single password attribute in the entry",
            Denied::Disabled => "account disabled in the directory",
            Denied::TooShort => "stored password shorter than LDAPAuthPWType's minimum",
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
}

//! The LDAPv3 messages ftpgate sends and reads, as BER bytes (RFC 4511,
//! with the BER subset of X.690 that RFC 4511 section 5.1 allows).
//!
//! Owns encoding of BindRequest, SearchRequest and UnbindRequest and
//! decoding of BindResponse, SearchResultEntry, SearchResultReference and
//! SearchResultDone. It does no I/O. Every decoder takes untrusted bytes
//! from the directory server: each one never panics, for any input, and
//! rejects indefinite lengths, lengths longer than the input and messages
//! larger than [`crate::limits::MAX_LDAP_MESSAGE`].
//!
//! Grammar (definite-length BER only):
//!
//! ```text
//! TLV      = tag length contents
//! tag      = one byte (low tag numbers < 31 only; a high-tag-number byte is an error)
//! length   = %x00-7F | %x81-84 1*4OCTET (the long form, at most 4 length bytes)
//! message  = SEQUENCE { INTEGER messageID, protocolOp, [0] controls OPTIONAL }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

use std::fmt;

use crate::limits;

/// Universal and application tags used here.
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const ENUMERATED: u8 = 0x0a;
const BOOLEAN: u8 = 0x01;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const BIND_REQUEST: u8 = 0x60;
const BIND_RESPONSE: u8 = 0x61;
const UNBIND_REQUEST: u8 = 0x42;
const SEARCH_REQUEST: u8 = 0x63;
const SEARCH_ENTRY: u8 = 0x64;
const SEARCH_DONE: u8 = 0x65;
const SEARCH_REFERENCE: u8 = 0x73;
/// Context tag [0] primitive: simple authentication in BindRequest.
const AUTH_SIMPLE: u8 = 0x80;
/// Filter `and` [0] (constructed SET OF Filter).
const FILTER_AND: u8 = 0xa0;
/// Filter `equalityMatch` [3] (constructed AttributeValueAssertion).
const FILTER_EQUALITY: u8 = 0xa3;

/// LDAP result code `success` (RFC 4511 section 4.1.9).
pub const SUCCESS: u32 = 0;
/// LDAP result code `invalidCredentials`.
pub const INVALID_CREDENTIALS: u32 = 49;

/// Why bytes from the server are not an LDAP message we understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BerError {
    /// The input ends inside a TLV.
    Truncated,
    /// Indefinite length, more than 4 length bytes, or a high tag number.
    BadLength,
    /// The message is larger than `limits::MAX_LDAP_MESSAGE`.
    TooLarge(usize),
    /// An element has a tag other than the one the grammar requires.
    UnexpectedTag { want: u8, got: u8 },
    /// An INTEGER or ENUMERATED that does not fit or is empty.
    BadInteger,
    /// A protocol operation we never asked for.
    UnexpectedOp(u8),
}

impl fmt::Display for BerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BerError::Truncated => f.write_str("truncated LDAP message"),
            BerError::BadLength => f.write_str("bad BER length"),
            BerError::TooLarge(n) => write!(f, "LDAP message of {n} bytes is too large"),
            BerError::UnexpectedTag { want, got } => {
                write!(f, "unexpected BER tag 0x{got:02x} (expected 0x{want:02x})")
            }
            BerError::BadInteger => f.write_str("bad BER integer"),
            BerError::UnexpectedOp(t) => write!(f, "unexpected LDAP operation 0x{t:02x}"),
        }
    }
}

// ----- encoding ---------------------------------------------------------

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let used = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | used.len() as u8);
        out.extend_from_slice(used);
    }
}

fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 6);
    out.push(tag);
    push_len(&mut out, contents.len());
    out.extend_from_slice(contents);
    out
}

fn integer(tag: u8, n: u32) -> Vec<u8> {
    // A leading zero byte keeps large values positive; then the minimal
    // two's complement: drop leading zero bytes while the next byte's top
    // bit is clear.
    let bytes = u64::from(n).to_be_bytes();
    let mut start = 3;
    while start < 7
        && bytes.get(start) == Some(&0)
        && bytes.get(start + 1).is_some_and(|b| b & 0x80 == 0)
    {
        start += 1;
    }
    tlv(tag, bytes.get(start..).unwrap_or_default())
}

fn message(id: u32, op: &[u8]) -> Vec<u8> {
    let mut body = integer(INTEGER, id);
    body.extend_from_slice(op);
    tlv(SEQUENCE, &body)
}

/// BindRequest with simple authentication (RFC 4511 section 4.2). An empty
/// `dn` and `password` is the anonymous bind.
pub fn bind_request(id: u32, version: u8, dn: &[u8], password: &[u8]) -> Vec<u8> {
    let mut body = integer(INTEGER, u32::from(version));
    body.extend(tlv(OCTET_STRING, dn));
    body.extend(tlv(AUTH_SIMPLE, password));
    message(id, &tlv(BIND_REQUEST, &body))
}

/// UnbindRequest (RFC 4511 section 4.3).
pub fn unbind_request(id: u32) -> Vec<u8> {
    message(id, &tlv(UNBIND_REQUEST, &[]))
}

/// One `(attribute=value)` equality assertion of a filter.
pub struct Equality<'a> {
    pub attribute: &'a [u8],
    pub value: &'a [u8],
}

/// SearchRequest (RFC 4511 section 4.5.1) for a whole-subtree search under
/// `base`, aliases never dereferenced, at most `size_limit` entries and
/// `time_limit` seconds, all user attributes, with the filter the AND of
/// `filter` (a single assertion is sent as it is).
///
/// The filter is built as BER structure, never parsed from RFC 4515 text:
/// an assertion value is an OCTET STRING, so `*`, `(`, `)` and `\` in a
/// login name are plain bytes there and cannot change the filter.
pub fn search_request(
    id: u32,
    base: &[u8],
    size_limit: u32,
    time_limit: u32,
    filter: &[Equality<'_>],
    attributes: &[&[u8]],
) -> Vec<u8> {
    let mut body = tlv(OCTET_STRING, base);
    body.extend(integer(ENUMERATED, 2)); // wholeSubtree
    body.extend(integer(ENUMERATED, 0)); // neverDerefAliases
    body.extend(integer(INTEGER, size_limit));
    body.extend(integer(INTEGER, time_limit));
    body.extend(tlv(BOOLEAN, &[0x00])); // typesOnly FALSE
    let assertions: Vec<Vec<u8>> = filter
        .iter()
        .map(|e| {
            let mut ava = tlv(OCTET_STRING, e.attribute);
            ava.extend(tlv(OCTET_STRING, e.value));
            tlv(FILTER_EQUALITY, &ava)
        })
        .collect();
    match assertions.as_slice() {
        [one] => body.extend_from_slice(one),
        many => body.extend(tlv(FILTER_AND, &many.concat())),
    }
    // An empty list would mean "all user attributes".
    let wanted: Vec<u8> = attributes
        .iter()
        .flat_map(|a| tlv(OCTET_STRING, a))
        .collect();
    body.extend(tlv(SEQUENCE, &wanted));
    message(id, &tlv(SEARCH_REQUEST, &body))
}

// ----- decoding ---------------------------------------------------------

/// One TLV: its tag, its contents, and what follows it.
fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), BerError> {
    let (tag, len, header) = header(input)?.ok_or(BerError::Truncated)?;
    let rest = input.get(header..).ok_or(BerError::Truncated)?;
    if rest.len() < len {
        return Err(BerError::Truncated);
    }
    let (contents, after) = rest.split_at(len);
    Ok((tag, contents, after))
}

/// Tag, contents length and header length of the TLV at the start of
/// `input`; `None` when the header itself is not complete yet.
fn header(input: &[u8]) -> Result<Option<(u8, usize, usize)>, BerError> {
    let (Some(&tag), Some(&first)) = (input.first(), input.get(1)) else {
        return Ok(None);
    };
    if tag & 0x1f == 0x1f {
        return Err(BerError::BadLength);
    }
    if first < 0x80 {
        return Ok(Some((tag, usize::from(first), 2)));
    }
    let count = usize::from(first & 0x7f);
    // SECURITY: 0x80 (indefinite) is forbidden by RFC 4511; more than 4
    // length bytes cannot be a message we would accept anyway.
    if count == 0 || count > 4 {
        return Err(BerError::BadLength);
    }
    let Some(bytes) = input.get(2..2 + count) else {
        return Ok(None);
    };
    let len = bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Ok(Some((tag, len, 2 + count)))
}

/// The total size of the LDAP message at the start of `input` once its
/// header has arrived (`None`: read more). Refuses a message larger than
/// `limits::MAX_LDAP_MESSAGE` before any of it is buffered.
pub fn frame_len(input: &[u8]) -> Result<Option<usize>, BerError> {
    let Some((tag, len, header)) = header(input)? else {
        return Ok(None);
    };
    if tag != SEQUENCE {
        return Err(BerError::UnexpectedTag {
            want: SEQUENCE,
            got: tag,
        });
    }
    let total = len.saturating_add(header);
    // SECURITY: a hostile directory cannot make the session buffer more.
    if total > limits::MAX_LDAP_MESSAGE {
        return Err(BerError::TooLarge(total));
    }
    Ok(Some(total))
}

fn expect(input: &[u8], want: u8) -> Result<(&[u8], &[u8]), BerError> {
    let (got, contents, rest) = read_tlv(input)?;
    if got == want {
        Ok((contents, rest))
    } else {
        Err(BerError::UnexpectedTag { want, got })
    }
}

fn read_uint(contents: &[u8]) -> Result<u32, BerError> {
    // Negative numbers (top bit set) and more than 4 value bytes are refused.
    if contents.is_empty() || contents.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(BerError::BadInteger);
    }
    let trimmed: &[u8] = match contents {
        [0, rest @ ..] if !rest.is_empty() => rest,
        all => all,
    };
    if trimmed.len() > 4 {
        return Err(BerError::BadInteger);
    }
    Ok(trimmed
        .iter()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

/// An LDAPResult (RFC 4511 section 4.1.9): the code and the server's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapResult {
    pub code: u32,
    pub diagnostic: Vec<u8>,
}

fn read_result(contents: &[u8]) -> Result<LdapResult, BerError> {
    let (code, rest) = expect(contents, ENUMERATED)?;
    let (_matched, rest) = expect(rest, OCTET_STRING)?;
    let (diagnostic, _referral_and_more) = expect(rest, OCTET_STRING)?;
    Ok(LdapResult {
        code: read_uint(code)?,
        diagnostic: diagnostic.to_vec(),
    })
}

/// One attribute of an entry: its description and values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: Vec<u8>,
    pub values: Vec<Vec<u8>>,
}

/// A SearchResultEntry: the entry's DN and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dn: Vec<u8>,
    pub attributes: Vec<Attribute>,
}

/// A server message we understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Bind(LdapResult),
    Entry(Entry),
    /// A continuation reference to another server; not followed.
    Reference,
    SearchDone(LdapResult),
}

/// Decodes one whole LDAP message (exactly the bytes [`frame_len`] said):
/// its message ID and operation. Never panics, for any input.
pub fn decode(input: &[u8]) -> Result<(u32, Response), BerError> {
    if input.len() > limits::MAX_LDAP_MESSAGE {
        return Err(BerError::TooLarge(input.len()));
    }
    let (body, _trailing) = expect(input, SEQUENCE)?;
    let (id, rest) = expect(body, INTEGER)?;
    let id = read_uint(id)?;
    let (op, contents, _controls) = read_tlv(rest)?;
    let response = match op {
        BIND_RESPONSE => Response::Bind(read_result(contents)?),
        SEARCH_DONE => Response::SearchDone(read_result(contents)?),
        SEARCH_REFERENCE => Response::Reference,
        SEARCH_ENTRY => {
            let (dn, rest) = expect(contents, OCTET_STRING)?;
            let (mut list, _) = expect(rest, SEQUENCE)?;
            let mut attributes = Vec::new();
            while !list.is_empty() {
                let (partial, after) = expect(list, SEQUENCE)?;
                list = after;
                let (name, rest) = expect(partial, OCTET_STRING)?;
                let (mut set, _) = expect(rest, SET)?;
                let mut values = Vec::new();
                while !set.is_empty() {
                    let (value, after) = expect(set, OCTET_STRING)?;
                    set = after;
                    values.push(value.to_vec());
                }
                attributes.push(Attribute {
                    name: name.to_vec(),
                    values,
                });
            }
            Response::Entry(Entry {
                dn: dn.to_vec(),
                attributes,
            })
        }
        other => return Err(BerError::UnexpectedOp(other)),
    };
    Ok((id, response))
}

/// Fuzz and property-test entry point: `frame_len` and `decode` never
/// panic; what `frame_len` frames decodes the same as the whole input
/// when it is exactly one message; a decoded entry keeps its sizes within
/// the input. Panics only when a check fails.
#[doc(hidden)]
pub fn check_decode(data: &[u8]) {
    let whole = decode(data);
    if let Ok(Some(len)) = frame_len(data) {
        assert!(len <= limits::MAX_LDAP_MESSAGE, "frame within the limit");
        if let Some(frame) = data.get(..len) {
            let framed = decode(frame);
            if len == data.len() {
                assert!(framed == whole, "framing does not change the result");
            }
        }
    }
    if let Ok((_, Response::Entry(e))) = whole {
        let total: usize = e.dn.len()
            + e.attributes
                .iter()
                .map(|a| a.name.len() + a.values.iter().map(Vec::len).sum::<usize>())
                .sum::<usize>();
        assert!(total <= data.len(), "decoded bytes come from the input");
    }
}

// ----- text forms -------------------------------------------------------

/// RFC 4515 section 3 escaping of an assertion value for the text form of
/// a filter (used in log lines): `*`, `(`, `)`, `\`, NUL and every byte
/// outside printable ASCII become `\XX`.
pub fn escape_filter_value(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value {
        if matches!(b, b'*' | b'(' | b')' | b'\\') || !(0x20..0x7f).contains(&b) {
            out.push_str(&format!("\\{b:02x}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// RFC 4514 section 2.4 escaping of a value put into a DN (the `%s` of
/// LDAPBindDN): the special characters `"+,;<>\=` and `#`, NUL, a leading
/// or trailing space and every byte outside printable ASCII become `\XX`,
/// so a login name can never add a DN component.
pub fn escape_dn_value(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let last = value.len().saturating_sub(1);
    for (i, &b) in value.iter().enumerate() {
        let edge_space = b == b' ' && (i == 0 || i == last);
        if edge_space
            || matches!(
                b,
                b'"' | b'+' | b',' | b';' | b'<' | b'>' | b'\\' | b'=' | b'#'
            )
            || !(0x20..0x7f).contains(&b)
        {
            out.extend_from_slice(format!("\\{b:02x}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn search_done(id: u32, code: u32) -> Vec<u8> {
        let mut r = integer(ENUMERATED, code);
        r.extend(tlv(OCTET_STRING, b""));
        r.extend(tlv(OCTET_STRING, b"diag"));
        message(id, &tlv(SEARCH_DONE, &r))
    }

    fn entry(id: u32, dn: &[u8], attrs: &[(&[u8], &[&[u8]])]) -> Vec<u8> {
        let mut list = Vec::new();
        for (name, values) in attrs {
            let mut p = tlv(OCTET_STRING, name);
            let set: Vec<u8> = values.iter().flat_map(|v| tlv(OCTET_STRING, v)).collect();
            p.extend(tlv(SET, &set));
            list.extend(tlv(SEQUENCE, &p));
        }
        let mut body = tlv(OCTET_STRING, dn);
        body.extend(tlv(SEQUENCE, &list));
        message(id, &tlv(SEARCH_ENTRY, &body))
    }

    #[test]
    fn anonymous_bind_request_matches_the_rfc_bytes() {
        // What ldapsearch -x sends: 30 0c 02 01 01 60 07 02 01 03 04 00 80 00
        assert_eq!(
            bind_request(1, 3, b"", b""),
            [
                0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00
            ]
        );
        assert_eq!(
            unbind_request(3),
            [0x30, 0x05, 0x02, 0x01, 0x03, 0x42, 0x00]
        );
    }

    #[test]
    fn integers_are_minimal_twos_complement() {
        assert_eq!(integer(INTEGER, 0), [0x02, 0x01, 0x00]);
        assert_eq!(integer(INTEGER, 127), [0x02, 0x01, 0x7f]);
        assert_eq!(integer(INTEGER, 128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(INTEGER, 256), [0x02, 0x02, 0x01, 0x00]);
        for n in [0, 1, 127, 128, 255, 256, 65535, 1 << 24, u32::MAX] {
            let encoded = integer(INTEGER, n);
            let (c, rest) = expect(&encoded, INTEGER).unwrap();
            assert!(rest.is_empty());
            assert_eq!(read_uint(c), Ok(n));
        }
    }

    #[test]
    fn long_lengths_use_the_long_form() {
        let t = tlv(OCTET_STRING, &[7u8; 300]);
        assert_eq!(&t[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (c, rest) = expect(&t, OCTET_STRING).unwrap();
        assert_eq!(c.len(), 300);
        assert!(rest.is_empty());
    }

    #[test]
    fn a_search_with_metacharacters_carries_them_as_plain_bytes() {
        let login = b"*)(uid=*";
        let req = search_request(
            2,
            b"dc=example",
            2,
            10,
            &[
                Equality {
                    attribute: b"objectClass",
                    value: b"FTPProxyUser",
                },
                Equality {
                    attribute: b"cn",
                    value: login,
                },
            ],
            &[b"TimeOut"],
        );
        // The login appears once, as the contents of an OCTET STRING.
        let mut want = vec![OCTET_STRING, login.len() as u8];
        want.extend_from_slice(login);
        assert!(req.windows(want.len()).any(|w| w == want.as_slice()));
        assert_eq!(frame_len(&req), Ok(Some(req.len())));
    }

    #[test]
    fn responses_decode() {
        let e = entry(
            2,
            b"cn=bob,dc=example",
            &[(b"DestinationPort", &[b"2121"]), (b"cn", &[b"bob", b"Bob"])],
        );
        let (id, r) = decode(&e).unwrap();
        assert_eq!(id, 2);
        let Response::Entry(entry) = r else {
            panic!("{r:?}")
        };
        assert_eq!(entry.dn, b"cn=bob,dc=example");
        assert_eq!(entry.attributes.len(), 2);
        assert_eq!(
            entry.attributes[1].values,
            vec![b"bob".to_vec(), b"Bob".to_vec()]
        );
        assert_eq!(
            decode(&search_done(2, 32)).unwrap().1,
            Response::SearchDone(LdapResult {
                code: 32,
                diagnostic: b"diag".to_vec()
            })
        );
        let mut bind = integer(ENUMERATED, 49);
        bind.extend(tlv(OCTET_STRING, b""));
        bind.extend(tlv(OCTET_STRING, b""));
        let bind = message(1, &tlv(BIND_RESPONSE, &bind));
        assert!(matches!(
            decode(&bind),
            Ok((1, Response::Bind(LdapResult { code: 49, .. })))
        ));
    }

    #[test]
    fn hostile_framing_is_refused() {
        assert_eq!(frame_len(&[]), Ok(None));
        assert_eq!(frame_len(&[0x30]), Ok(None));
        assert_eq!(frame_len(&[0x30, 0x82, 0x01]), Ok(None));
        assert_eq!(frame_len(&[0x30, 0x80]), Err(BerError::BadLength));
        assert_eq!(
            frame_len(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            Err(BerError::BadLength)
        );
        assert!(matches!(
            frame_len(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            Err(BerError::TooLarge(_))
        ));
        assert!(matches!(
            frame_len(&[0x04, 0x00]),
            Err(BerError::UnexpectedTag { .. })
        ));
        assert!(matches!(
            decode(&[0x30, 0x03, 0x02, 0x01]),
            Err(BerError::Truncated)
        ));
        // An operation we never asked for.
        assert_eq!(
            decode(&message(1, &tlv(0x78, b""))),
            Err(BerError::UnexpectedOp(0x78))
        );
        // A negative message ID.
        assert_eq!(
            decode(&[0x30, 0x05, 0x02, 0x01, 0xff, 0x42, 0x00]),
            Err(BerError::BadInteger)
        );
    }

    #[test]
    fn every_truncation_of_a_valid_message_is_an_error_not_a_panic() {
        let e = entry(7, b"cn=x", &[(b"ValidCommands", &[b"USER,PASS,QUIT"])]);
        for cut in 0..e.len() {
            assert!(decode(&e[..cut]).is_err(), "cut at {cut}");
            let framed = frame_len(&e[..cut]);
            assert!(matches!(framed, Ok(None) | Ok(Some(_))), "{framed:?}");
        }
    }

    #[test]
    fn filter_values_are_escaped_per_rfc_4515() {
        assert_eq!(escape_filter_value(b"bob"), "bob");
        assert_eq!(escape_filter_value(b"*)(cn=*"), "\\2a\\29\\28cn=\\2a");
        assert_eq!(escape_filter_value(b"a\\b\0"), "a\\5cb\\00");
    }

    #[test]
    fn dn_values_are_escaped_per_rfc_4514() {
        assert_eq!(escape_dn_value(b"bob"), b"bob");
        assert_eq!(
            escape_dn_value(b"bob,dc=evil"),
            b"bob\\2cdc\\3devil".to_vec()
        );
        assert_eq!(escape_dn_value(b" a b "), b"\\20a b\\20".to_vec());
        assert_eq!(escape_dn_value(b"#x+y"), b"\\23x\\2by".to_vec());
    }

    proptest! {
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            check_decode(&data);
        }

        #[test]
        fn decode_never_panics_on_message_like_bytes(
            body in proptest::collection::vec(any::<u8>(), 0..200),
            op in prop::sample::select(vec![BIND_RESPONSE, SEARCH_ENTRY, SEARCH_DONE, SEARCH_REFERENCE]),
        ) {
            check_decode(&message(1, &tlv(op, &body)));
        }

        #[test]
        fn entries_round_trip(
            dn in proptest::collection::vec(any::<u8>(), 0..300),
            name in proptest::collection::vec(any::<u8>(), 1..40),
            values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..4),
        ) {
            let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            let e = entry(9, &dn, &[(&name, &refs)]);
            prop_assert_eq!(frame_len(&e), Ok(Some(e.len())));
            let (id, r) = decode(&e).unwrap();
            prop_assert_eq!(id, 9);
            prop_assert_eq!(r, Response::Entry(Entry {
                dn: dn.clone(),
                attributes: vec![Attribute { name: name.clone(), values: values.clone() }],
            }));
        }

        #[test]
        fn escaped_filter_values_hold_no_metacharacters(v in proptest::collection::vec(any::<u8>(), 0..64)) {
            let e = escape_filter_value(&v);
            prop_assert!(!e.contains(['*', '(', ')']));
            prop_assert!(e.is_ascii());
        }

        #[test]
        fn escaped_dn_values_hold_no_separators(v in proptest::collection::vec(any::<u8>(), 0..64)) {
            let e = escape_dn_value(&v);
            prop_assert!(!e.iter().any(|b| matches!(b, b',' | b'+' | b'=' | b';' | 0)));
        }
    }
}

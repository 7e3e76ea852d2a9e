//! Wire bytes -> text for logs (STYLE principle 5: bytes on the wire, text in
//! the logs).
//!
//! Owns the one escaping rule used for every piece of peer data that reaches a
//! log line. Never used for bytes sent on the wire. Never panics, for any
//! input.

use std::fmt::Write;

/// Turns bytes into printable ASCII text for a log line.
///
/// Printable ASCII (0x20..=0x7E) is kept, except the backslash, which becomes
/// `\\` so the output is unambiguous; every other byte (control bytes, DEL,
/// anything >= 0x80, so also UTF-8 sequences) becomes `\xNN` (lower-case
/// hex). The result never contains CR, LF or NUL, so a peer cannot forge a
/// log line.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escape_keeps_printable_ascii_and_escapes_the_rest() {
        let cases: &[(&[u8], &str)] = &[
            (b"", ""),
            (b"RETR file.txt", "RETR file.txt"),
            (b"a\r\nb", "a\\x0d\\x0ab"),
            (b"nul\0", "nul\\x00"),
            (b"back\\slash", "back\\\\slash"),
            (b"\xff\x7f", "\\xff\\x7f"),
            ("ä".as_bytes(), "\\xc3\\xa4"),
        ];
        for (input, want) in cases {
            assert_eq!(escape(input), *want, "input {input:?}");
        }
    }

    proptest! {
        #[test]
        fn escaped_text_is_always_printable_ascii(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let text = escape(&bytes);
            prop_assert!(text.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        }
    }
}

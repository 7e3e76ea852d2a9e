//! Server reply lines -> `Reply`, reply builders, and the named reply codes.
//!
//! Owns the reply grammar and every reply code the proxy names (call sites
//! never use bare numbers). It never does I/O: lines come from `ftp::line`.
//!
//! Grammar (RFC 959 §4.2):
//!
//! ```text
//! reply  = single / multi
//! single = code [ SP text ]                    ; "code" alone is accepted too
//! multi  = code "-" text *( inner ) last
//! inner  = any line that is not a "last" line  ; may even start with digits
//! last   = same-code [ SP text ]
//! code   = %x31-36 2DIGIT                      ; 1yz..5yz (RFC 959), 6yz (RFC 2228)
//! ```
//!
//! Decisions:
//! - A multi-line reply ends at the first line that is its own code followed
//!   by SP, or its own code alone (the same form a single-line reply may take).
//! - A reply has at most `limits::MAX_REPLY_LINES` lines, first and last
//!   included; one more is `ReplyError::TooManyLines` and the parser starts
//!   afresh. The session treats either error as fatal (421), since the
//!   server is no longer speaking FTP.
//! - Lines are kept raw (bytes as received, without CR LF) so a reply is
//!   relayed as the server sent it.
//! - The builders [`line`] and [`multi`] replace CR, LF and NUL in their text
//!   by spaces, and prefix every non-final line with `ddd-`: text the proxy
//!   puts in a reply can never end it early, split it, or add a line.
//!
//! Never panics, for any input.

use crate::limits::MAX_REPLY_LINES;

pub const RESTART_MARKER: u16 = 110;
pub const DATA_OPEN_STARTING: u16 = 125;
pub const FILE_STATUS_OK: u16 = 150;
pub const COMMAND_OK: u16 = 200;
pub const NOT_IMPLEMENTED_SUPERFLUOUS: u16 = 202;
pub const SYSTEM_STATUS: u16 = 211;
pub const HELP: u16 = 214;
pub const SERVICE_READY: u16 = 220;
pub const CLOSING: u16 = 221;
pub const TRANSFER_COMPLETE: u16 = 226;
pub const ENTERING_PASSIVE: u16 = 227;
pub const ENTERING_EXT_PASSIVE: u16 = 229;
pub const LOGGED_IN: u16 = 230;
/// RFC 4217: "User logged in, authorized by security data exchange."
pub const LOGGED_IN_BY_SECURITY: u16 = 232;
pub const FILE_ACTION_OK: u16 = 250;
pub const NEED_PASSWORD: u16 = 331;
pub const SERVICE_NOT_AVAILABLE: u16 = 421;
pub const CANT_OPEN_DATA: u16 = 425;
pub const TRANSFER_ABORTED: u16 = 426;
pub const SYNTAX_ERROR: u16 = 500;
pub const ARG_SYNTAX_ERROR: u16 = 501;
pub const NOT_IMPLEMENTED: u16 = 502;
pub const BAD_SEQUENCE: u16 = 503;
pub const NOT_IMPLEMENTED_FOR_ARG: u16 = 504;
pub const NOT_LOGGED_IN: u16 = 530;
pub const LOCAL_ERROR: u16 = 451;
pub const UNAVAILABLE: u16 = 550;
/// RFC 4217: AUTH accepted, the TLS handshake follows.
pub const AUTH_OK: u16 = 234;
/// RFC 2228: the data connection must be protected (PROT P).
pub const PROTECTION_DENIED: u16 = 521;
/// RFC 2228: request denied for policy reasons (CCC).
pub const PROTECTION_DENIED_POLICY: u16 = 534;
/// RFC 2228: protection level not supported (PROT S/E).
pub const PROTECTION_NOT_SUPPORTED: u16 = 536;
pub const EXT_PROTO_NOT_SUPPORTED: u16 = 522;

/// A complete reply as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<Vec<u8>>,
}

/// Why server lines are not a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    Malformed,
    TooManyLines,
}

impl ReplyError {
    /// The reply to the client when the server's replies break: 421, and the
    /// session closes.
    pub fn reply_code(&self) -> u16 {
        SERVICE_NOT_AVAILABLE
    }
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReplyError::Malformed => "malformed reply",
            ReplyError::TooManyLines => "reply has too many lines",
        })
    }
}

/// The reply code a line starts with: three digits, the first 1..=6,
/// followed by SP, `-` or the end of the line. `None` otherwise.
pub fn code_of(line: &[u8]) -> Option<u16> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'1'..=b'6').contains(&digits[0]) {
        return None;
    }
    match line.get(3) {
        None | Some(b' ') | Some(b'-') => {}
        Some(_) => return None,
    }
    Some(
        digits
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0')),
    )
}

/// Collects server lines into complete replies.
#[derive(Debug, Default)]
pub struct ReplyParser {
    /// Lines of a multi-line reply still open, and its code.
    open: Option<Reply>,
}

impl ReplyParser {
    /// A parser waiting for the first line of a reply.
    pub fn new() -> Self {
        ReplyParser::default()
    }

    /// True while a multi-line reply is open (more lines are needed).
    pub fn in_reply(&self) -> bool {
        self.open.is_some()
    }

    /// Feeds one line (without CR LF); returns the reply it completes, if
    /// any. See the module grammar. Never panics, for any input.
    pub fn feed(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let Some(mut reply) = self.open.take() else {
            let code = code_of(line).ok_or(ReplyError::Malformed)?;
            let reply = Reply {
                code,
                lines: vec![line.to_vec()],
            };
            if line.get(3) == Some(&b'-') {
                self.open = Some(reply);
                return Ok(None);
            }
            return Ok(Some(reply));
        };
        // SECURITY: a server that never ends its reply cannot make us hold
        // unbounded memory.
        if reply.lines.len() >= MAX_REPLY_LINES {
            return Err(ReplyError::TooManyLines);
        }
        reply.lines.push(line.to_vec());
        if ends_reply(line, reply.code) {
            Ok(Some(reply))
        } else {
            self.open = Some(reply);
            Ok(None)
        }
    }
}

/// Whether `line` is the last line of a multi-line reply with `code`.
fn ends_reply(line: &[u8], code: u16) -> bool {
    code_of(line) == Some(code) && line.get(3) != Some(&b'-')
}

impl Reply {
    /// The reply as sent on the wire: every line followed by CR LF.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.lines.iter().map(|l| l.len() + 2).sum());
        for l in &self.lines {
            push_telnet(&mut out, l);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// The text of the first line after the code and its separator.
    pub fn text(&self) -> &[u8] {
        self.lines.first().and_then(|l| l.get(4..)).unwrap_or(&[])
    }

    pub fn is_preliminary(&self) -> bool {
        self.code / 100 == 1
    }
    pub fn is_positive(&self) -> bool {
        self.code / 100 == 2
    }
    pub fn is_intermediate(&self) -> bool {
        self.code / 100 == 3
    }
}

/// Appends `line` as Telnet data: a data byte 0xFF goes out as IAC IAC
/// (RFC 854; RFC 2640 §3.1), the way `ftp::line` decoded it, so a client
/// (or our own parser) reads back exactly the line the server meant.
fn push_telnet(out: &mut Vec<u8>, line: &[u8]) {
    for &b in line {
        if b == 0xff {
            out.push(0xff);
        }
        out.push(b);
    }
}

/// Appends `text` with CR, LF and NUL replaced by spaces, 0xFF doubled.
fn push_safe(out: &mut Vec<u8>, text: &[u8]) {
    // SECURITY: text we put in a reply (file names, server text, messages)
    // can never end the line early and inject a reply of its own.
    for &b in text {
        match b {
            b'\r' | b'\n' | 0 => out.push(b' '),
            0xff => out.extend_from_slice(&[0xff, 0xff]),
            other => out.push(other),
        }
    }
}

/// Appends the code as three digits (`code % 1000`) and the separator.
fn push_code(out: &mut Vec<u8>, code: u16, sep: u8) {
    let code = code % 1000;
    out.extend_from_slice(&[
        b'0' + (code / 100) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
        sep,
    ]);
}

/// A single-line reply: `ddd text\r\n` (CR, LF, NUL in text -> spaces).
pub fn line(code: u16, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 6);
    push_code(&mut out, code, b' ');
    push_safe(&mut out, text);
    out.extend_from_slice(b"\r\n");
    out
}

/// A multi-line reply: `ddd-first[0]\r\n ... ddd-first[n]\r\nddd last\r\n`
/// (CR, LF, NUL in any text -> spaces). With no `first` lines it is a
/// single-line reply.
pub fn multi(code: u16, first: &[&[u8]], last: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in first {
        push_code(&mut out, code, b'-');
        push_safe(&mut out, l);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&line(code, last));
    out
}

/// A listing reply in the layout of RFC 2389 §3.2 (FEAT) and RFC 3659:
/// `ddd-first\r\n`, then every item as ` item\r\n` (one leading space and
/// no code, so an item can never look like the last line), then
/// `ddd last\r\n`. CR, LF and NUL in any text become spaces.
pub fn listing(code: u16, first: &[u8], items: &[&[u8]], last: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_code(&mut out, code, b'-');
    push_safe(&mut out, first);
    out.extend_from_slice(b"\r\n");
    for item in items {
        out.push(b' ');
        push_safe(&mut out, item);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&line(code, last));
    out
}

/// Fuzz and property-test entry point: splits `data` into lines with
/// `ftp::line`, feeds them to a [`ReplyParser`], and checks that every
/// complete reply written back by [`Reply::to_wire`] parses to the same
/// reply; also that [`line`] and [`multi`] build one reply with the code
/// asked for. Panics only when one of those checks fails.
#[doc(hidden)]
pub fn check_round_trip(data: &[u8]) {
    use crate::ftp::line::{Line, LineBuffer};
    fn replies(wire: &[u8]) -> Vec<Result<Reply, ReplyError>> {
        let mut lines = LineBuffer::new();
        lines.push(wire);
        let mut parser = ReplyParser::new();
        let mut out = Vec::new();
        while let Some(l) = lines.next_line() {
            let Line::Complete(l) = l else { continue };
            match parser.feed(&l) {
                Ok(Some(r)) => out.push(Ok(r)),
                Ok(None) => {}
                Err(e) => out.push(Err(e)),
            }
        }
        out
    }
    for reply in replies(data).into_iter().flatten() {
        let _ = (reply.text(), reply.is_positive(), reply.is_preliminary());
        let again = replies(&reply.to_wire());
        assert!(again == vec![Ok(reply.clone())], "reply round trip");
    }
    let code = 100 + data.first().map_or(0, |&b| u16::from(b)) % 500;
    // The builders' output is bounded by what the caller gives them; the
    // proxy never builds a reply near the parser's limits (line length,
    // line count), so only texts well inside them are checked.
    let text = data.get(1..).unwrap_or(&[]);
    let text = &text[..text.len().min(crate::limits::MAX_LINE / 4)];
    let built = replies(&line(code, text));
    assert!(
        built.len() == 1 && built[0].as_ref().map(|r| r.code) == Ok(code),
        "line() builds one reply"
    );
    let firsts: Vec<&[u8]> = text
        .split(|&b| b == b'|')
        .take(MAX_REPLY_LINES / 2)
        .collect();
    let built = replies(&multi(code, &firsts, b"end"));
    assert!(
        built.len() == 1
            && built[0].as_ref().map(|r| (r.code, r.lines.len())) == Ok((code, firsts.len() + 1)),
        "multi() builds one reply"
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed_all(lines: &[&[u8]]) -> Vec<Result<Option<Reply>, ReplyError>> {
        let mut p = ReplyParser::new();
        lines.iter().map(|l| p.feed(l)).collect()
    }

    #[test]
    fn code_of_accepts_three_digits_then_space_dash_or_end() {
        let cases: &[(&[u8], Option<u16>)] = &[
            (b"220 ready", Some(220)),
            (b"220-ready", Some(220)),
            (b"220", Some(220)),
            (b"631 protected", Some(631)),
            (b"22 x", None),
            (b"2200 x", None),
            (b"220x", None),
            (b"020 x", None),
            (b"720 x", None),
            (b"", None),
            (b" 220 x", None),
        ];
        for (l, want) in cases {
            assert_eq!(code_of(l), *want, "line {l:?}");
        }
    }

    #[test]
    fn single_line_replies_complete_at_once() {
        for l in [&b"220 ready"[..], b"200", b"200 "] {
            let r = ReplyParser::new().feed(l).unwrap().unwrap();
            assert_eq!(r.code, code_of(l).unwrap());
            assert_eq!(r.lines, vec![l.to_vec()]);
        }
    }

    #[test]
    fn multi_line_reply_ends_only_at_its_own_code_and_space() {
        let lines: &[&[u8]] = &[
            b"211-Features:",
            b" MDTM",
            b"211-still inside",
            b"212 other code inside",
            b"211x not the end",
            b"",
            b"211 End",
        ];
        let results = feed_all(lines);
        assert!(results[..6].iter().all(|r| r == &Ok(None)));
        let reply = results[6].clone().unwrap().unwrap();
        assert_eq!(reply.code, 211);
        assert_eq!(reply.lines.len(), 7);
        assert_eq!(reply.text(), b"Features:");
        assert_eq!(
            reply.to_wire(),
            b"211-Features:\r\n MDTM\r\n211-still inside\r\n212 other code inside\r\n211x not the end\r\n\r\n211 End\r\n"
        );
    }

    #[test]
    fn multi_line_reply_may_end_with_the_bare_code() {
        let results = feed_all(&[b"214-help", b"214"]);
        assert_eq!(results[1].clone().unwrap().unwrap().lines.len(), 2);
    }

    #[test]
    fn reply_errors_map_to_421() {
        assert_eq!(ReplyError::Malformed.reply_code(), 421);
        assert_eq!(ReplyError::TooManyLines.reply_code(), 421);
    }

    #[test]
    fn malformed_first_lines_are_errors() {
        for l in [
            &b""[..],
            b"hello",
            b"22 x",
            b"2200",
            b"999 x",
            b"\xff\xff\xff",
        ] {
            assert_eq!(
                ReplyParser::new().feed(l),
                Err(ReplyError::Malformed),
                "line {l:?}"
            );
        }
    }

    #[test]
    fn a_reply_with_too_many_lines_is_cut_off() {
        let mut p = ReplyParser::new();
        assert_eq!(p.feed(b"211-start"), Ok(None));
        for _ in 1..MAX_REPLY_LINES - 1 {
            assert_eq!(p.feed(b" x"), Ok(None));
        }
        // The last allowed line still completes the reply ...
        let mut q = ReplyParser::new();
        q.feed(b"211-start").unwrap();
        for _ in 1..MAX_REPLY_LINES - 1 {
            q.feed(b" x").unwrap();
        }
        assert_eq!(
            q.feed(b"211 end").unwrap().unwrap().lines.len(),
            MAX_REPLY_LINES
        );
        // ... one more is an error, and the parser starts afresh.
        assert_eq!(p.feed(b" x"), Ok(None));
        assert_eq!(p.feed(b"211 end"), Err(ReplyError::TooManyLines));
        assert!(!p.in_reply());
        assert_eq!(p.feed(b"200 ok").unwrap().unwrap().code, 200);
    }

    #[test]
    fn builders_make_well_formed_replies_that_text_cannot_break() {
        let cases: &[(Vec<u8>, &[u8])] = &[
            (line(200, b"OK"), b"200 OK\r\n"),
            (line(500, b"bad\r\n200 fake"), b"500 bad  200 fake\r\n"),
            (line(550, b"a\0b"), b"550 a b\r\n"),
            (line(421, b""), b"421 \r\n"),
            (
                multi(220, &[b"one", b"220 two"], b"ready"),
                b"220-one\r\n220-220 two\r\n220 ready\r\n",
            ),
            (multi(211, &[], b"End"), b"211 End\r\n"),
        ];
        for (got, want) in cases {
            assert_eq!(got.as_slice(), *want);
        }
    }

    #[test]
    fn built_replies_parse_back_to_one_reply() {
        let wire = multi(214, &[b"a\nb", b"214 c"], b"d\r\n214 e");
        let mut p = ReplyParser::new();
        let mut replies = Vec::new();
        for l in wire.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let Some(r) = p.feed(l.strip_suffix(b"\r").unwrap()).unwrap() {
                replies.push(r);
            }
        }
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].to_wire(), wire);
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_arbitrary_lines(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 0..20)) {
            let mut p = ReplyParser::new();
            for l in &lines {
                let _ = p.feed(l);
            }
        }

        #[test]
        fn a_built_line_is_exactly_one_crlf_terminated_line(code in 100u16..700, text in proptest::collection::vec(any::<u8>(), 0..50)) {
            let wire = line(code, &text);
            prop_assert!(wire.ends_with(b"\r\n"));
            prop_assert_eq!(wire.iter().filter(|&&b| b == b'\n' || b == b'\r' || b == 0).count(), 2);
            let r = ReplyParser::new().feed(&wire[..wire.len() - 2]).unwrap().unwrap();
            prop_assert_eq!(r.code, code);
        }
    }

    #[test]
    fn a_data_byte_0xff_is_relayed_as_iac_iac() {
        let mut lines = crate::ftp::line::LineBuffer::new();
        lines.push(b"250 caf\xff\xff.txt\r\n");
        let Some(crate::ftp::line::Line::Complete(l)) = lines.next_line() else {
            panic!("no line");
        };
        let r = ReplyParser::new().feed(&l).unwrap().unwrap();
        assert_eq!(r.to_wire(), b"250 caf\xff\xff.txt\r\n");
        assert_eq!(line(250, b"\xff"), b"250 \xff\xff\r\n");
    }

    #[test]
    fn fuzz_crash_reply_with_0xff_round_trips() {
        // fuzz/artifacts/reply/crash-bf31b70c: a reply holding a decoded
        // IAC IAC did not read back the same after to_wire.
        check_round_trip(b"\xff\xfc\xf1\xff\xff\xff\xab\xaa\x0a\x0a\x31\x36\x7c\x0a\x0a\x32\x33\x30\x2d\x0a\x0a\x10\x0a\x88\x00\x7c\x0a\x0a\x32\x33\xd8\x0a\x01\x00\x00\x00\x26\x00\x00\x00\x00\x7c\xff\xff\xfc\xff\xf1\xff\x2a\xee\xee\x30\xff\xff\xf1\x00\xef\xff\xff\xfc\xff\xf1\xff\xff\xff\xfc\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0a\x32\x33\x30\x2d\x0a\x0a\x10\x0a\x88\x00\x7c\x0a\x0a\x32\x33\x30\x0a\x01\x00\x00\x00\x26\x00\x00\x00\x00\x7c\xff\xff\xfc\xff\xf1\xff\x2a\xee\xee\x30\xff\xff\xf1\x00\xef\xff\xff\xfc\xff\xf1\xff\xff\xff\xfc\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf1\xff\xff\xff\xfc\xff\x00\x00\xf1\xff\xff\xff\xfc\xff\x00\x00\x00\x00\xef\xf5\x0a\x0a\x35\x0a\x26\xd8\x26\x0a\x26\x3b\x7c\x0a\x0a\x0a\x36\x31\x35\xff\xfc\x78\x0a\x0a");
    }

    proptest! {
        #[test]
        fn replies_round_trip_for_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            check_round_trip(&data);
        }
    }

    #[test]
    fn fuzz_crash_multi_with_more_lines_than_the_parser_allows() {
        // fuzz/artifacts/reply/crash-32559449: the check built a reply of
        // over MAX_REPLY_LINES lines, which the parser rightly refuses; the
        // check now stays inside the limits.
        check_round_trip(b"\xab\xaa\x0a\x0a\x31\x36\x7c\x0a\x0a\x32\x33\x30\x2d\xff\xff\xff\xee\xee\x0a\x0a\x0a\x0a\x0a\x30\x0a\x0a\x0a\x0a\xab\xaa\xda\x0a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\xf6\xef\x0a\x0a\x30\x0a\x0a\x5d\x7c\x0a\x0a\x0a\x0a\x0a\x0a\x32\x33\x7c\x0a\x0a\x32\x33\x30\x2d\x0a\x0a\x10\x2a\x70\x70\xff\xff\xff\xff\x8a\x8f\x72\x70\x70\x33\x36\x32\x70\x70\x70\x70\x7c\x7c\x7c\xe9\x10\x00\x36\x2d\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x01\x00\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\xa4\xee\x0a\x1f\x0a\x26\x7c\x0a\x0a\x26\x7c\x0a\x0a\x32\x33\x30\x00\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\x0a\x0a\x0a\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x0a\x32\x33\x30\x2d\xff\xff\xff\xee\xee\x0a\x0a\x0a\x0a\x0a\x30\x0a\x0a\x0a\x0a\xab\xaa\x0a\x0a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x33\x32\xab\xaa\x0a\x7c\xee\xee\x0a\xf6\xef\x0a\x0a\x30\x0a\x0a\x5d\x7c\x0a\x0a\x0a\x0a\x0a\x0a\x32\x33\x7c\x0a\x0a\x32\x33\x30\x2d\x0a\x0a\x10\x00\x36\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x01\x00\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x30\x2d\xff\xff\xff\xee\xee\x0a\x0a\x0a\x0a\x0a\x30\x0a\x0a\x0a\x0a\xab\xaa\x0a\x0a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\xf6\xef\x0a\x0a\x30\x0a\x0a\x5d\x7c\x0a\x0a\x0a\x0a\x0a\x0a\x32\x33\x7c\x0a\x0a\x32\x33\x30\x2d\x0a\x0a\x10\x00\x36\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x01\x00\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\xa4\xee\x0a\x1f\x0a\x26\x7c\x0a\x0a\x26\x7c\x0a\x0a\x32\x33\x30\x00\x31\x00\x00\xaa\x0a\x7c\xee\xee\x0a\x0a\x0a\x0a\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x81\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\xa4\xee\x0a\x1f\x0a\x26\x7c\x0a\x0a\x26\x7c\x0a\x0a\x32\x33\x30\x00\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\x0a\x0a\x0a\x0a\x30\x0a\x0a\x5d\x7c\x0a\x0a\x0a\x0a\x0a\x0a\x32\x33\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\xa4\xee\x0a\x1f\x0a\x26\x7c\x0a\x0a\x26\x7c\x0a\x0a\x32\x33\x30\x00\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\x0a\x0a\x0a\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x81\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\xa4\xee\x0a\x1f\x0a\x26\x7c\x0a\x0a\x26\x7c\x0a\x0a\x32\x33\x30\x00\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\x0a\x0a\x0a\x0a\x30\x0a\x0a\x5d\x7c\x0a\x0a\x0a\x0a\x0a\x0a\x32\x33\x7c\x0a\x0a\x32\x33\x30\x2d\x0a\x0a\x0a\x0a\x32\x33\x30\x2d\x0a\x0a\x10\x00\x36\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x01\x00\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x30\x2d\xff\xff\xff\xee\xee\x0a\x0a\x0a\x0a\x0a\x30\x0a\x0a\x0a\x0a\xab\xaa\x0a\x0a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\xf6\xef\x0a\x0a\x30\x0a\x0a\x5d\x7c\x0a\x0a\x0a\x0a\x0a\x0a\x32\x33\x7c\x0a\x0a\x32\x33\x30\x2d\x0a\x0a\x10\x00\x36\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x10\x00\x36\x7c\x7c\x7c\xff\xff\xff\xff\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x78\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7d\x7c\x7c\x7c\x7c\x4a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x97\x7c\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\x0a\x0a\x0a\x0a\x7c\x7c\x7c\x7c\x7c\xee\xee\x0a\x0a\x0a\x0a\x0a\x30\x0a\x0a\x0a\x0a\xab\xaa\xda\x0a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\xf6\xef\x0a\x0a\x30\x0a\x0a\x5d\x7c\x0a\x0a\x0a\x0a\x0a\x0a\x32\x33\x7c\x0a\x0a\x32\x33\x30\x2d\x0a\x0a\x10\x2a\x70\x70\xff\xff\xff\xff\x8a\x8f\x72\x70\x70\x33\x36\x32\x70\x70\x70\x70\x7c\x7c\x7c\xe9\x10\x00\x36\x2d\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x01\x00\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\xa4\xee\x0a\x1f\x0a\x26\x7c\x0a\x0a\x26\x7c\x0a\x0a\x32\x33\x30\x00\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\x0a\x0a\x0a\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x0a\x32\x33\x30\x2d\xff\xff\xff\xee\xee\x0a\x0a\x0a\x0a\x0a\x30\x0a\x0a\x0a\x0a\xab\xaa\x0a\x0a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x33\x32\xab\xaa\x0a\x7c\xee\xee\x0a\xf6\xef\x0a\x0a\x30\x0a\x0a\x5d\x7c\x0a\x0a\x0a\x0a\x0a\x0a\x32\x33\x7c\x0a\x0a\x32\x33\x30\x2d\x0a\x0a\x10\x00\x36\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x01\x00\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x30\x2d\xff\xff\xff\xee\xee\x0a\x0a\x0a\x0a\x0a\x30\x0a\x0a\x0a\x0a\xab\xaa\x0a\x0a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\xf6\xef\x0a\x0a\x30\x0a\x0a\x5d\x7c\x0a\x0a\x0a\x0a\x0a\x0a\x32\x33\x7c\x0a\x0a\x32\x33\x30\x2d\x0a\x0a\x10\x00\x36\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x01\x00\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\xa4\xee\x0a\x1f\x0a\x26\x7c\x0a\x0a\x26\x7c\x0a\x0a\x32\x33\x30\x00\x31\x00\x00\xaa\x0a\x7c\xee\xee\x0a\x0a\x0a\x0a\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x81\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\xa4\xee\x0a\x1f\x0a\x26\x7c\x0a\x0a\x26\x7c\x0a\x0a\x32\x33\x30\x00\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\x0a\x0a\x0a\x0a\x30\x0a\x0a\x5d\x7c\x0a\x0a\x0a\x0a\x0a\x0a\x32\x33\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\xa4\xee\x0a\x1f\x0a\x26\x7c\x0a\x0a\x26\x7c\x0a\x0a\x32\x33\x30\x00\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\x0a\x0a\x0a\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x81\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\xa4\xee\x0a\x1f\x0a\x26\x7c\x0a\x0a\x26\x7c\x0a\x0a\x32\x33\x30\x00\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\x0a\x0a\x0a\x0a\x30\x0a\x0a\x5d\x7c\x0a\x0a\x0a\x0a\x0a\x0a\x32\x33\x7c\x0a\x0a\x32\x33\x30\x2d\x0a\x0a\x0a\x0a\x32\x33\x30\x2d\x0a\x0a\x10\x00\x36\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x01\x00\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x30\x2d\xff\xff\xff\xee\xee\x0a\x0a\x0a\x0a\x0a\x30\x0a\x0a\x0a\x0a\xab\xaa\x0a\x0a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\xf6\xef\x0a\x0a\x30\x0a\x0a\x5d\x7c\x0a\x0a\x0a\x0a\x0a\x0a\x32\x33\x7c\x0a\x0a\x32\x33\x30\x2d\x0a\x0a\x10\x00\x36\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x10\x00\x36\x7c\x7c\x7c\xff\xff\xff\xff\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x78\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7d\x7c\x7c\x7c\x7c\x4a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x97\x7c\x31\x36\xab\xaa\x0a\x7c\xee\xee\x0a\x0a\x0a\x0a\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x4a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\x0a\xc8\x00\x0a\x00\x0a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7a\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x7c\x4a\xa4\xee\x0a\x1f\x0a\x26\x7c\x0a\x0a\x26\x7c\x0a\x0a\x32\x33\x30\x0a\x26\xd8\x26\x0a\x26");
    }
}

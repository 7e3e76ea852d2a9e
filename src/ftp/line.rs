//! Control-connection bytes -> bounded lines.
//!
//! Owns the splitting of a control-connection byte stream (either direction)
//! into lines and the removal of Telnet command sequences. It never reads a
//! socket: the caller pushes whatever it received and then takes lines out.
//!
//! Grammar (RFC 959 §4.1 and §2.3, Telnet NVT of RFC 854):
//!
//! ```text
//! stream  = *( line ) [ partial ]
//! line    = *( data / telnet ) [ CR ] LF
//! telnet  = IAC IAC                      ; one data byte 0xFF
//!         / IAC ( WILL / WONT / DO / DONT ) option  ; removed
//!         / IAC other                    ; removed (NOP, IP, DM, AYT, ...)
//! IAC = 0xFF  WILL = 0xFB  WONT = 0xFC  DO = 0xFD  DONT = 0xFE
//! ```
//!
//! Decisions:
//! - A bare LF ends a line, like CR LF (many clients send LF only). A CR that
//!   is not right before the LF stays in the line as data (`Command::parse`
//!   then refuses the line; a server reply line is relayed as it is).
//! - An LF always ends a line, even where a Telnet sequence would take the
//!   next byte (`IAC LF`, `IAC DO LF`): no Telnet sequence can join two
//!   command lines into one.
//! - Telnet sequences are removed wherever they occur, also when split across
//!   `push` calls; the Telnet state carries over from one push to the next.
//!   Subnegotiation (`IAC SB ... IAC SE`) is not understood: `IAC SB` and
//!   `IAC SE` are removed as two-byte sequences and the bytes between them
//!   stay data. FTP clients do not negotiate options.
//! - Telnet IP and DM (the "Synch" before ABOR) are removed like any other
//!   command; urgent data is the relay's business, not this module's.
//! - A line whose content (without CR LF, after Telnet removal) is longer
//!   than `limits::MAX_LINE - 2` bytes, i.e. longer than `MAX_LINE` with its
//!   CR LF, yields one `Line::TooLong` as soon as that is known, and
//!   everything up to and including the next LF is discarded.
//! - Memory: the line being assembled never exceeds `MAX_LINE - 1` bytes.
//!   Bytes pushed but not yet looked at are kept until `next_line` reaches
//!   them; the caller bounds them by taking all lines out before pushing the
//!   next read.
//!
//! Guarantee: never panics, for any input; any split of a byte stream into
//! pushes yields the same lines.

use crate::limits::MAX_LINE;

const IAC: u8 = 0xff;
const WILL: u8 = 0xfb;
const DONT: u8 = 0xfe;
const CR: u8 = b'\r';
const LF: u8 = b'\n';

/// Longest line content, without CR LF.
const MAX_CONTENT: usize = MAX_LINE - 2;

/// One result of splitting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A complete line without its CR LF, Telnet sequences removed.
    Complete(Vec<u8>),
    /// A line longer than the limit was cut off and discarded.
    TooLong,
}

/// Where the Telnet decoder stands between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Telnet {
    /// Plain data.
    #[default]
    Data,
    /// Saw IAC; the next byte says what it is.
    Iac,
    /// Saw IAC WILL/WONT/DO/DONT; the next byte is the option, dropped.
    Option,
}

/// Accumulates received bytes and hands out complete lines.
#[derive(Debug, Default)]
pub struct LineBuffer {
    /// Bytes pushed and not yet examined, from `pos` on.
    input: Vec<u8>,
    pos: usize,
    /// The line being assembled (may end with a CR that an LF would drop).
    current: Vec<u8>,
    telnet: Telnet,
    /// The current line was too long: drop everything up to the next LF.
    discarding: bool,
}

impl LineBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        LineBuffer::default()
    }

    /// Adds received bytes. Lines are cut out of them by `next_line`.
    pub fn push(&mut self, data: &[u8]) {
        if self.pos >= self.input.len() {
            self.input.clear();
            self.pos = 0;
        } else if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        self.input.extend_from_slice(data);
    }

    /// The next complete line, or `None` when more bytes are needed.
    pub fn next_line(&mut self) -> Option<Line> {
        while let Some(&b) = self.input.get(self.pos) {
            self.pos += 1;
            if b == LF {
                // An LF ends the line whatever the Telnet state.
                self.telnet = Telnet::Data;
                if self.discarding {
                    self.discarding = false;
                    continue;
                }
                let mut line = std::mem::take(&mut self.current);
                if line.last() == Some(&CR) {
                    line.pop();
                }
                if line.len() > MAX_CONTENT {
                    return Some(Line::TooLong);
                }
                return Some(Line::Complete(line));
            }
            let data = match self.telnet {
                Telnet::Data if b == IAC => {
                    self.telnet = Telnet::Iac;
                    None
                }
                Telnet::Data => Some(b),
                Telnet::Iac if b == IAC => {
                    self.telnet = Telnet::Data;
                    Some(IAC)
                }
                Telnet::Iac if (WILL..=DONT).contains(&b) => {
                    self.telnet = Telnet::Option;
                    None
                }
                Telnet::Iac | Telnet::Option => {
                    self.telnet = Telnet::Data;
                    None
                }
            };
            let Some(byte) = data else { continue };
            if self.discarding {
                continue;
            }
            self.current.push(byte);
            // Content plus a final CR may reach MAX_CONTENT + 1; one more
            // byte and the line is too long whatever follows.
            if self.current.len() > MAX_CONTENT + 1 {
                self.current = Vec::new();
                self.discarding = true;
                return Some(Line::TooLong);
            }
        }
        None
    }

    /// Bytes received but not yet handed out as a line: the partial line
    /// being assembled plus pushed bytes not yet examined. Non-zero at end of
    /// stream means the peer closed in the middle of a line.
    pub fn pending(&self) -> usize {
        self.current.len() + self.input.len().saturating_sub(self.pos)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lines_of(pushes: &[&[u8]]) -> Vec<Line> {
        let mut buf = LineBuffer::new();
        let mut out = Vec::new();
        for p in pushes {
            buf.push(p);
            while let Some(l) = buf.next_line() {
                out.push(l);
            }
        }
        out
    }

    fn complete(s: &[u8]) -> Line {
        Line::Complete(s.to_vec())
    }

    #[test]
    fn lines_are_split_at_lf_and_a_cr_before_lf_is_dropped() {
        let cases: &[(&[u8], Vec<Line>)] = &[
            (b"", vec![]),
            (b"USER a\r\n", vec![complete(b"USER a")]),
            (b"USER a\n", vec![complete(b"USER a")]),
            (
                b"USER a\r\nPASS b\r\n",
                vec![complete(b"USER a"), complete(b"PASS b")],
            ),
            (b"\r\n\n", vec![complete(b""), complete(b"")]),
            (b"a\rb\r\n", vec![complete(b"a\rb")]),
            (b"a\r\r\n", vec![complete(b"a\r")]),
            (b"no end", vec![]),
        ];
        for (input, want) in cases {
            assert_eq!(&lines_of(&[input]), want, "input {input:?}");
        }
    }

    #[test]
    fn telnet_sequences_are_removed_and_iac_iac_is_one_ff_byte() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"RETR \xff\xffx\r\n", b"RETR \xffx"),
            (b"\xff\xfb\x01NOOP\r\n", b"NOOP"),
            (b"\xff\xfc\x01\xff\xfd\x03\xff\xfe\x18NOOP\r\n", b"NOOP"),
            (b"\xff\xf4\xff\xf2ABOR\r\n", b"ABOR"),
            (b"NO\xff\xf1OP\r\n", b"NOOP"),
            (b"a\r\xff\xf1\n", b"a"),
            (b"\xff\xff\xff\xff\r\n", b"\xff\xff"),
        ];
        for (input, want) in cases {
            assert_eq!(lines_of(&[input]), vec![complete(want)], "input {input:?}");
        }
    }

    #[test]
    fn an_lf_ends_the_line_even_inside_a_telnet_sequence() {
        let cases: &[(&[u8], Vec<Line>)] = &[
            (b"a\xff\nb\n", vec![complete(b"a"), complete(b"b")]),
            (b"a\xff\xfd\nb\n", vec![complete(b"a"), complete(b"b")]),
        ];
        for (input, want) in cases {
            assert_eq!(&lines_of(&[input]), want, "input {input:?}");
        }
    }

    #[test]
    fn telnet_sequences_split_across_pushes_are_removed() {
        let pushes: &[&[u8]] = &[b"NO", b"\xff", b"\xfd", b"\x01OP\r", b"\nX\xff", b"\xff\n"];
        assert_eq!(
            lines_of(pushes),
            vec![complete(b"NOOP"), complete(b"X\xff")]
        );
    }

    #[test]
    fn a_line_of_exactly_the_limit_passes_and_one_byte_more_is_too_long() {
        let mut ok = vec![b'a'; MAX_LINE - 2];
        ok.extend_from_slice(b"\r\n");
        assert_eq!(
            lines_of(&[&ok]),
            vec![Line::Complete(vec![b'a'; MAX_LINE - 2])]
        );

        let mut ok_lf = vec![b'a'; MAX_LINE - 2];
        ok_lf.push(b'\n');
        assert_eq!(
            lines_of(&[&ok_lf]),
            vec![Line::Complete(vec![b'a'; MAX_LINE - 2])]
        );

        for end in [&b"\r\n"[..], b"\n"] {
            let mut long = vec![b'a'; MAX_LINE - 1];
            long.extend_from_slice(end);
            long.extend_from_slice(b"NOOP\r\n");
            assert_eq!(lines_of(&[&long]), vec![Line::TooLong, complete(b"NOOP")]);
        }
    }

    #[test]
    fn a_very_long_line_yields_too_long_once_and_memory_stays_bounded() {
        let mut buf = LineBuffer::new();
        let chunk = vec![b'x'; 1000];
        let mut out = Vec::new();
        for _ in 0..100 {
            buf.push(&chunk);
            while let Some(l) = buf.next_line() {
                out.push(l);
            }
            assert!(buf.pending() < MAX_LINE);
        }
        buf.push(b"\r\nQUIT\r\n");
        while let Some(l) = buf.next_line() {
            out.push(l);
        }
        assert_eq!(out, vec![Line::TooLong, complete(b"QUIT")]);
        assert_eq!(buf.pending(), 0);
    }

    #[test]
    fn pending_counts_the_bytes_of_an_unfinished_line() {
        let mut buf = LineBuffer::new();
        buf.push(b"NOOP\r\nRET");
        assert_eq!(buf.pending(), 9);
        assert_eq!(buf.next_line(), Some(complete(b"NOOP")));
        assert_eq!(buf.pending(), 3);
        assert_eq!(buf.next_line(), None);
        assert_eq!(buf.pending(), 3);
        buf.push(b"R x\n");
        assert_eq!(buf.next_line(), Some(complete(b"RETR x")));
        assert_eq!(buf.pending(), 0);
    }

    /// Bytes biased towards the interesting ones: IAC, Telnet verbs, CR, LF.
    fn stream() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            4 => any::<u8>(),
            2 => Just(IAC),
            1 => Just(WILL),
            1 => Just(DONT),
            2 => Just(CR),
            2 => Just(LF),
            4 => Just(b'a'),
        ];
        proptest::collection::vec(byte, 0..400)
    }

    proptest! {
        #[test]
        fn any_split_into_pushes_yields_the_same_lines(
            data in stream(),
            cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..10),
        ) {
            let whole = lines_of(&[&data]);
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
            points.sort_unstable();
            let mut pushes: Vec<&[u8]> = Vec::new();
            let mut start = 0;
            for p in points {
                pushes.push(&data[start..p]);
                start = p;
            }
            pushes.push(&data[start..]);
            prop_assert_eq!(lines_of(&pushes), whole);
        }

        #[test]
        fn complete_lines_never_hold_lf_or_exceed_the_limit(data in proptest::collection::vec(any::<u8>(), 0..5000)) {
            for l in lines_of(&[&data]) {
                if let Line::Complete(bytes) = l {
                    prop_assert!(!bytes.contains(&LF));
                    prop_assert!(bytes.len() <= MAX_LINE - 2);
                }
            }
        }
    }
}

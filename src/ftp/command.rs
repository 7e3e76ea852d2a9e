//! A client command line -> `Command { verb, arg }`, and the table of known
//! commands.
//!
//! Owns the syntax of one command line and what each known verb means to the
//! proxy (its [`Kind`]). It never decides whether a command may pass (that is
//! `policy::filter`) and never does I/O.
//!
//! Grammar (RFC 959 §5.3, §5.3.1):
//!
//! ```text
//! command = verb [ SP arg ]        ; the line as given by ftp::line, no CR LF
//! verb    = 1*4 ALPHA              ; case-insensitive, stored upper-case
//! arg     = *( any byte but NUL )  ; may be empty ("RETR " gives arg "")
//! ```
//!
//! No leading spaces, no TAB instead of SP, no verb longer than four letters
//! (so `XMD5`, `XSHA1` are not verbs at all). The filter must judge exactly
//! what the server will execute, so bytes a server could read differently
//! are errors:
//! - NUL anywhere (`Nul`): C servers would cut the line there.
//! - CR or LF anywhere (`AmbiguousByte`): `ftp::line` leaves a bare CR in the
//!   line, and a server that ends lines at CR would see two commands where
//!   the filter saw one (`RETR a<CR>DELE b`).
//! - 0xFF anywhere (`AmbiguousByte` too): it only gets here from the client's
//!   `IAC IAC`; a server that decodes Telnet would read what follows it as a
//!   Telnet command, one that does not would read a single 0xFF. No UTF-8
//!   text holds 0xFF, so only Latin-1 names with `ÿ` are affected.
//!
//! [`Command::to_wire`] writes a command back as `VERB[ SP arg] CR LF`.
//!
//! The known-command table ([`kind`]) holds RFC 959, RFC 2228 (AUTH ADAT PROT
//! PBSZ CCC MIC CONF ENC), RFC 2389 (FEAT OPTS), RFC 2428 (EPRT EPSV),
//! RFC 3659 (SIZE MDTM MLST MLSD; REST STREAM is REST), RFC 7151 (HOST),
//! RFC 2640 (LANG), the X* aliases of RFC 775/1123 (XCWD XCUP XMKD XRMD XPWD),
//! APSV, RCMD, the RFC 765 mail commands (MLFL MAIL MSND MSOM MSAM MRSQ MRCP),
//! and the common extensions CLNT, AVBL, MFMT, MFCT, MFF. Decisions:
//! - MLFL ("mail file", RFC 765) sends its data over the data connection, so
//!   it is `Kind::Data`, not `Plain`: relayed as `Plain`, the server would
//!   open a data connection the proxy does not own.
//! - LPRT and LPSV (RFC 1639) are not known: they carry data addresses the
//!   proxy would have to check and rewrite, and RFC 2428 replaced them.
//! - The hash extensions (XCRC, XMD5, XSHA1, HASH) are not known: XMD5 and
//!   XSHA1 are not even verbs under RFC 959's grammar, and a family half
//!   known would be more surprising than none.
//!
//! Never panics, for any input.

use std::fmt;

use crate::ftp::reply::SYNTAX_ERROR;
use crate::ftp::text::escape;

/// A command verb: 1 to 4 ASCII upper-case letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verb {
    bytes: [u8; 4],
    len: u8,
}

impl Verb {
    /// A verb from 1 to 4 ASCII letters in any case (stored upper-case);
    /// `None` for anything else.
    pub fn new(letters: &[u8]) -> Option<Verb> {
        if letters.is_empty() || letters.len() > 4 {
            return None;
        }
        let mut bytes = [0u8; 4];
        for (slot, &b) in bytes.iter_mut().zip(letters) {
            if !b.is_ascii_alphabetic() {
                return None;
            }
            *slot = b.to_ascii_uppercase();
        }
        Some(Verb {
            bytes,
            len: letters.len() as u8,
        })
    }

    /// The verb's letters, upper-case.
    pub fn as_bytes(&self) -> &[u8] {
        let len = usize::from(self.len).min(self.bytes.len());
        &self.bytes[..len]
    }

    /// The verb's letters, upper-case (always ASCII).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }
}

impl fmt::Debug for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Verb {
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

/// Why a line is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    Empty,
    BadVerb,
    Nul,
    /// CR, LF or 0xFF inside the line: see the module docs.
    AmbiguousByte,
}

impl CommandError {
    /// The reply for a line that is not a command: 500 for all.
    pub fn reply_code(&self) -> u16 {
        SYNTAX_ERROR
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommandError::Empty => "empty command line",
            CommandError::BadVerb => "malformed command",
            CommandError::Nul => "NUL byte in command line",
            CommandError::AmbiguousByte => "CR, LF or 0xFF byte in command line",
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
    /// LIST, NLST, RETR, STOR, STOU, APPE, MLSD, MLFL: needs a data connection
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

/// Every known command with its kind, grouped by where it comes from.
pub const KNOWN: &[(&str, Kind)] = &[
    // RFC 959 §4.1
    ("USER", Kind::User),
    ("PASS", Kind::Pass),
    ("ACCT", Kind::Plain),
    ("CWD", Kind::Plain),
    ("CDUP", Kind::Plain),
    ("SMNT", Kind::Plain),
    ("QUIT", Kind::Quit),
    ("REIN", Kind::Reinit),
    ("PORT", Kind::Active),
    ("PASV", Kind::Passive),
    ("TYPE", Kind::Plain),
    ("STRU", Kind::Plain),
    ("MODE", Kind::Plain),
    ("RETR", Kind::Data),
    ("STOR", Kind::Data),
    ("STOU", Kind::Data),
    ("APPE", Kind::Data),
    ("ALLO", Kind::Plain),
    ("REST", Kind::Plain),
    ("RNFR", Kind::Plain),
    ("RNTO", Kind::Plain),
    ("ABOR", Kind::Abort),
    ("DELE", Kind::Plain),
    ("RMD", Kind::Plain),
    ("MKD", Kind::Plain),
    ("PWD", Kind::Plain),
    ("LIST", Kind::Data),
    ("NLST", Kind::Data),
    ("SITE", Kind::Plain),
    ("SYST", Kind::Plain),
    ("STAT", Kind::Plain),
    ("HELP", Kind::Plain),
    ("NOOP", Kind::Plain),
    // RFC 2228
    ("AUTH", Kind::Security),
    ("ADAT", Kind::Security),
    ("PROT", Kind::Security),
    ("PBSZ", Kind::Security),
    ("CCC", Kind::Security),
    ("MIC", Kind::Security),
    ("CONF", Kind::Security),
    ("ENC", Kind::Security),
    // RFC 2389
    ("FEAT", Kind::Feat),
    ("OPTS", Kind::Plain),
    // RFC 2428
    ("EPRT", Kind::Active),
    ("EPSV", Kind::Passive),
    // RFC 3659
    ("SIZE", Kind::Plain),
    ("MDTM", Kind::Plain),
    ("MLST", Kind::Plain),
    ("MLSD", Kind::Data),
    // RFC 7151
    ("HOST", Kind::Plain),
    // RFC 2640
    ("LANG", Kind::Plain),
    // RFC 775 / RFC 1123 §4.1.3.1 aliases
    ("XCWD", Kind::Plain),
    ("XCUP", Kind::Plain),
    ("XMKD", Kind::Plain),
    ("XRMD", Kind::Plain),
    ("XPWD", Kind::Plain),
    // "all passive", the pre-RFC-2428 spelling of EPSV ALL
    ("APSV", Kind::Passive),
    ("RCMD", Kind::Plain),
    // RFC 765 mail commands; MLFL moves the mail over the data connection
    ("MLFL", Kind::Data),
    ("MAIL", Kind::Plain),
    ("MSND", Kind::Plain),
    ("MSOM", Kind::Plain),
    ("MSAM", Kind::Plain),
    ("MRSQ", Kind::Plain),
    ("MRCP", Kind::Plain),
    // Common extensions (draft-somers-ftp-mfxx, draft-peterson-streamlined-ftp-command-extensions, CLNT)
    ("CLNT", Kind::Plain),
    ("AVBL", Kind::Plain),
    ("MFMT", Kind::Plain),
    ("MFCT", Kind::Plain),
    ("MFF", Kind::Plain),
];

impl<'a> Command<'a> {
    /// Parses one command line (without CR LF). See the module grammar.
    /// Never panics, for any input.
    pub fn parse(line: &'a [u8]) -> Result<Command<'a>, CommandError> {
        if line.is_empty() {
            return Err(CommandError::Empty);
        }
        // SECURITY: a NUL would end the line early for a C server, so the
        // server could act on something the filter never saw.
        if line.contains(&0) {
            return Err(CommandError::Nul);
        }
        // SECURITY: a server that splits lines at a bare CR, or decodes Telnet
        // after an 0xFF, would execute something the filter never saw.
        if line.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0xff)) {
            return Err(CommandError::AmbiguousByte);
        }
        let verb_len = line
            .iter()
            .position(|b| !b.is_ascii_alphabetic())
            .unwrap_or(line.len());
        let verb = Verb::new(&line[..verb_len]).ok_or(CommandError::BadVerb)?;
        let arg = match line.get(verb_len) {
            None => &[][..],
            Some(b' ') => &line[verb_len + 1..],
            Some(_) => return Err(CommandError::BadVerb),
        };
        Ok(Command { verb, arg })
    }

    /// The command as sent to a server: `VERB CR LF` or `VERB SP arg CR LF`.
    /// An argument that was empty after its SP is written without the SP.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.arg.len() + 7);
        out.extend_from_slice(self.verb.as_bytes());
        if !self.arg.is_empty() {
            out.push(b' ');
            out.extend_from_slice(self.arg);
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// The verb's kind, `None` for an unknown verb.
    pub fn kind(&self) -> Option<Kind> {
        kind(self.verb.as_bytes())
    }

    /// The command as text for a log line: `PASS ****` for PASS, ACCT and
    /// ADAT (passwords, accounts, security tokens), otherwise `VERB arg` with
    /// the argument escaped by [`escape`]; just `VERB` without an argument.
    pub fn log_text(&self) -> String {
        let verb = self.verb.as_str();
        // SECURITY: secrets never reach the logs (SPEC §6).
        if matches!(verb, "PASS" | "ACCT" | "ADAT") {
            return format!("{verb} ****");
        }
        if self.arg.is_empty() {
            verb.to_string()
        } else {
            format!("{verb} {}", escape(self.arg))
        }
    }
}

/// A line that did not parse, as text for a log line: escaped, except that
/// a line that starts like PASS, ACCT or ADAT (any case, after white
/// space) shows only that word and `****`. Never panics, for any input.
pub fn malformed_log_text(line: &[u8]) -> String {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let head = line.get(start..start + 4).unwrap_or_default();
    // SECURITY: a password with a NUL, a bare CR or an 0xFF byte, or sent
    // after a tab, makes the line malformed; it must not reach the log
    // either (SPEC §6).
    if [&b"PASS"[..], b"ACCT", b"ADAT"]
        .iter()
        .any(|secret| head.eq_ignore_ascii_case(secret))
    {
        return format!("{} ****", escape(line.get(..start + 4).unwrap_or_default()));
    }
    escape(line)
}

/// A line sent while a password is expected that is not a well-formed
/// command the proxy knows, as text for a log line: what comes before the
/// first space, tab or NUL when its letters spell a known verb (`PA\xffSS`,
/// a byte order mark before `PASS`), then `****`; otherwise the whole line
/// is `****` (a password typed as a line, with or without spaces). Never
/// panics, for any input.
pub fn masked_log_text(line: &[u8]) -> String {
    // SECURITY: after USER, a line that is not a clean PASS (a mangled
    // verb, a byte order mark, a NUL) may still carry the password.
    let end = line
        .iter()
        .position(|b| matches!(b, b' ' | b'\t' | 0))
        .unwrap_or(line.len());
    let head = &line[..end];
    let letters: Vec<u8> = head
        .iter()
        .copied()
        .filter(u8::is_ascii_alphabetic)
        .collect();
    if end < line.len() && kind(&letters).is_some() {
        format!("{} ****", escape(head))
    } else {
        "****".to_string()
    }
}

/// The kind of a known verb (any case), `None` for an unknown one.
pub fn kind(verb: &[u8]) -> Option<Kind> {
    KNOWN
        .iter()
        .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(verb))
        .map(|&(_, k)| k)
}

/// Fuzz and property-test entry point: splits `data` into lines with
/// `ftp::line` (whole, and again in two reads at an offset taken from the
/// data, which must give the same lines), parses every line, and checks
/// that a parsed command written back by [`Command::to_wire`] parses to the
/// same verb and argument. Panics only when one of those checks fails.
#[doc(hidden)]
pub fn check_round_trip(data: &[u8]) {
    use crate::ftp::line::{Line, LineBuffer};
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let mut whole = LineBuffer::new();
    whole.push(data);
    let mut parts = LineBuffer::new();
    parts.push(&data[..split]);
    let mut lines_parts = Vec::new();
    while let Some(l) = parts.next_line() {
        lines_parts.push(l);
    }
    parts.push(&data[split..]);
    while let Some(l) = parts.next_line() {
        lines_parts.push(l);
    }
    let mut lines_whole = Vec::new();
    while let Some(l) = whole.next_line() {
        lines_whole.push(l);
    }
    assert!(lines_whole == lines_parts, "split changes the lines");
    assert!(whole.pending() == parts.pending(), "split changes pending");
    for line in lines_whole {
        let Line::Complete(line) = line else { continue };
        let Ok(cmd) = Command::parse(&line) else {
            continue;
        };
        let _ = cmd.log_text();
        let wire = cmd.to_wire();
        assert!(wire.ends_with(b"\r\n"), "to_wire ends with CR LF");
        match Command::parse(&wire[..wire.len() - 2]) {
            Ok(back) => assert!(
                back.verb == cmd.verb && back.arg == cmd.arg,
                "command round trip"
            ),
            Err(e) => unreachable!("to_wire output does not parse: {e:?}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn well_formed_lines_parse_into_upper_case_verb_and_raw_argument() {
        let cases: &[(&[u8], &str, &[u8])] = &[
            (b"USER anonymous", "USER", b"anonymous"),
            (b"user anonymous", "USER", b"anonymous"),
            (b"QUIT", "QUIT", b""),
            (b"RETR ", "RETR", b""),
            (b"RETR  two spaces", "RETR", b" two spaces"),
            (b"cWd /a b/\xfe", "CWD", b"/a b/\xfe"),
            (b"A", "A", b""),
            (b"REST STREAM", "REST", b"STREAM"),
        ];
        for (line, verb, arg) in cases {
            let c = Command::parse(line).unwrap();
            assert_eq!(c.verb.as_str(), *verb, "line {line:?}");
            assert_eq!(c.arg, *arg, "line {line:?}");
        }
    }

    #[test]
    fn malformed_lines_are_rejected_with_the_right_error() {
        let cases: &[(&[u8], CommandError)] = &[
            (b"", CommandError::Empty),
            (b" USER a", CommandError::BadVerb),
            (b"USERS a", CommandError::BadVerb),
            (b"XMD5 file", CommandError::BadVerb),
            (b"RETR\tfile", CommandError::BadVerb),
            (b"RE-TR", CommandError::BadVerb),
            (b"\xfeRETR", CommandError::BadVerb),
            (b"RETR a\0b", CommandError::Nul),
            (b"\0", CommandError::Nul),
            (b"RETR a\rDELE b", CommandError::AmbiguousByte),
            (b"RETR a\nDELE b", CommandError::AmbiguousByte),
            (b"RETR a\r", CommandError::AmbiguousByte),
            (b"RETR \xff\xf4x", CommandError::AmbiguousByte),
        ];
        for (line, want) in cases {
            assert_eq!(Command::parse(line), Err(want.clone()), "line {line:?}");
        }
    }

    #[test]
    fn known_verbs_have_the_documented_kind() {
        let cases: &[(&[u8], Option<Kind>)] = &[
            (b"USER", Some(Kind::User)),
            (b"PASS", Some(Kind::Pass)),
            (b"PASV", Some(Kind::Passive)),
            (b"EPSV", Some(Kind::Passive)),
            (b"APSV", Some(Kind::Passive)),
            (b"PORT", Some(Kind::Active)),
            (b"EPRT", Some(Kind::Active)),
            (b"MLSD", Some(Kind::Data)),
            (b"STOU", Some(Kind::Data)),
            (b"MLFL", Some(Kind::Data)),
            (b"AUTH", Some(Kind::Security)),
            (b"CCC", Some(Kind::Security)),
            (b"FEAT", Some(Kind::Feat)),
            (b"QUIT", Some(Kind::Quit)),
            (b"ABOR", Some(Kind::Abort)),
            (b"REIN", Some(Kind::Reinit)),
            (b"MLST", Some(Kind::Plain)),
            (b"HOST", Some(Kind::Plain)),
            (b"xcup", Some(Kind::Plain)),
            (b"LPRT", None),
            (b"LPSV", None),
            (b"XCRC", None),
            (b"", None),
            (b"FOO", None),
        ];
        for (verb, want) in cases {
            assert_eq!(kind(verb), *want, "verb {verb:?}");
        }
    }

    #[test]
    fn every_known_verb_is_a_valid_verb_and_listed_once() {
        for (i, (name, _)) in KNOWN.iter().enumerate() {
            let v = Verb::new(name.as_bytes()).unwrap();
            assert_eq!(v.as_str(), *name);
            assert!(
                KNOWN[i + 1..].iter().all(|(n, _)| n != name),
                "{name} twice"
            );
        }
    }

    #[test]
    fn log_text_masks_secrets_and_escapes_arguments() {
        let cases: &[(&[u8], &str)] = &[
            (b"PASS secret", "PASS ****"),
            (b"pass secret", "PASS ****"),
            (b"PASS", "PASS ****"),
            (b"ACCT acc", "ACCT ****"),
            (b"ADAT token", "ADAT ****"),
            (b"USER bob", "USER bob"),
            (b"NOOP", "NOOP"),
            (b"RETR a\tb\xfe", "RETR a\\x09b\\xfe"),
        ];
        for (line, want) in cases {
            assert_eq!(Command::parse(line).unwrap().log_text(), *want);
        }
    }

    #[test]
    fn malformed_lines_hide_what_follows_a_secret_verb() {
        let cases: &[(&[u8], &str)] = &[
            (b" PASS secret", " PASS ****"),
            (b"PASS\tsecret", "PASS ****"),
            (b"pass secret\x00x", "pass ****"),
            (b"PASS se\rcret", "PASS ****"),
            (b"PASSsecret", "PASS ****"),
            (b"acct a\xff", "acct ****"),
            (b"ADAT", "ADAT ****"),
            (b"PAS", "PAS"),
            (b"RETR a\x00b", "RETR a\\x00b"),
            (b"", ""),
        ];
        for (line, want) in cases {
            assert_eq!(malformed_log_text(line), *want, "{line:?}");
        }
    }

    #[test]
    fn masked_lines_show_only_what_comes_before_the_first_separator() {
        let cases: &[(&[u8], &str)] = &[
            (b"PA\xffSS secret", "PA\\xffSS ****"),
            (b"\xef\xbb\xbfPASS secret", "\\xef\\xbb\\xbfPASS ****"),
            (b"PASS\x00secret", "PASS ****"),
            (b"PASS\tsecret", "PASS ****"),
            (b"XPASS secret", "****"),
            (b"my secret", "****"),
            (b"hunter2", "****"),
            (b"", "****"),
        ];
        for (line, want) in cases {
            assert_eq!(masked_log_text(line), *want, "{line:?}");
        }
    }

    #[test]
    fn to_wire_writes_verb_and_argument_with_crlf() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"retr a b", b"RETR a b\r\n"),
            (b"QUIT", b"QUIT\r\n"),
            (b"LIST ", b"LIST\r\n"),
        ];
        for (line, want) in cases {
            assert_eq!(Command::parse(line).unwrap().to_wire(), *want);
        }
    }

    #[test]
    fn every_command_error_is_answered_with_500() {
        for e in [
            CommandError::Empty,
            CommandError::BadVerb,
            CommandError::Nul,
            CommandError::AmbiguousByte,
        ] {
            assert_eq!(e.reply_code(), 500, "{e}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_keeps_the_argument(line in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(c) = Command::parse(&line) {
                prop_assert!(line.ends_with(c.arg));
                prop_assert!(c.verb.as_bytes().iter().all(u8::is_ascii_uppercase));
                prop_assert!(!c.arg.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n' | 0xff)));
                let wire = c.to_wire();
                let reparsed = Command::parse(&wire[..wire.len() - 2]).unwrap();
                prop_assert_eq!(reparsed.verb, c.verb);
                prop_assert_eq!(reparsed.arg, c.arg);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn check_round_trip_holds_for_any_bytes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            super::check_round_trip(&data);
        }
    }
}

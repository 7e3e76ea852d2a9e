//! ValidCommands: which commands, with which arguments, a user may send
//! (SPEC §4, ftp-proxy.conf(5) `ValidCommands`).
//!
//! Owns the parsing of a ValidCommands value into compiled rules, the
//! verdict for one command, and the translation of ftp-proxy's regular
//! expressions ([`compile_pattern`], also used by `policy::user`). It never
//! sends a reply or logs: the session maps a [`Verdict`] to a reply.
//!
//! Value grammar:
//!
//! ```text
//! value   = *sep [ entry *( 1*sep entry ) ] *sep
//! sep     = SP / HTAB / ","
//! entry   = verb [ "=" pattern ]
//! verb    = 1*4 ALPHA           ; any case; must be a known command (ftp::command::KNOWN)
//! pattern = 1*( any but SP/HTAB ) ; POSIX ERE, see compile_pattern
//! ```
//!
//! Decisions:
//! - A comma ends an entry, except inside a pattern where it stands within
//!   `()`, `[]` or `{}` or after a backslash: `RETR=^[a-z]{1,8}$,QUIT` is
//!   two entries, the first with pattern `^[a-z]{1,8}$`. A literal comma at
//!   the top level of a pattern is written `%2c`.
//! - A verb listed several times is allowed if any of its entries allows the
//!   argument (an entry without pattern allows every argument).
//! - An unknown verb, a verb longer than four letters, `VERB=` with an empty
//!   pattern, and a pattern that does not compile are errors naming the
//!   entry: a typo must not silently refuse (or allow) a command.
//! - A verb not listed is `CommandRefused`; a listed verb whose patterns all
//!   fail is `ArgumentRefused`.
//! - Patterns match the raw argument bytes (never assumed UTF-8), unanchored
//!   unless the pattern uses `^`/`$`, like POSIX `regexec`.
//!
//! Never panics, for any input.

use regex::bytes::{Regex, RegexBuilder};

use crate::ftp::command::{Verb, kind};
use crate::ftp::reply::{NOT_IMPLEMENTED, NOT_IMPLEMENTED_FOR_ARG};
use crate::limits::MAX_REGEX_SIZE;

/// The decision for one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it on.
    Allow,
    /// The verb is not in ValidCommands.
    CommandRefused,
    /// The verb is listed, but no pattern of it matches the argument.
    ArgumentRefused,
}

impl Verdict {
    /// The reply for a refused command: 502 (not implemented) for a command
    /// not listed, 504 (not implemented for that parameter) for a refused
    /// argument; `None` for `Allow`.
    pub fn reply_code(&self) -> Option<u16> {
        match self {
            Verdict::Allow => None,
            Verdict::CommandRefused => Some(NOT_IMPLEMENTED),
            Verdict::ArgumentRefused => Some(NOT_IMPLEMENTED_FOR_ARG),
        }
    }
}

/// A ValidCommands entry that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub entry: String,
    pub reason: String,
    /// The bad entries after this one, so that one look at the error (as
    /// `-c` prints it) shows them all.
    pub also: Vec<FilterError>,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValidCommands entry '{}': {}", self.entry, self.reason)?;
        for e in &self.also {
            write!(f, "; entry '{}': {}", e.entry, e.reason)?;
        }
        Ok(())
    }
}

/// One entry: a verb and, optionally, the pattern its argument must match.
#[derive(Debug, Clone)]
struct Rule {
    verb: Verb,
    pattern: Option<Regex>,
}

/// A compiled ValidCommands value.
#[derive(Debug, Clone)]
pub struct CommandFilter {
    rules: Vec<Rule>,
}

impl CommandFilter {
    /// Parses and compiles a ValidCommands value (see the module grammar).
    /// The error is the first bad entry, carrying every later one.
    pub fn parse(value: &str) -> Result<CommandFilter, FilterError> {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        for entry in split_entries(value) {
            match parse_rule(entry) {
                Ok(rule) => rules.push(rule),
                Err(reason) => errors.push(FilterError {
                    entry: entry.to_string(),
                    reason,
                    also: Vec::new(),
                }),
            }
        }
        if errors.is_empty() {
            return Ok(CommandFilter { rules });
        }
        let mut first = errors.remove(0);
        first.also = errors;
        Err(first)
    }

    /// The verdict for `verb` (any case) with argument `arg`.
    pub fn check(&self, verb: &[u8], arg: &[u8]) -> Verdict {
        let mut listed = false;
        for rule in self
            .rules
            .iter()
            .filter(|r| r.verb.as_bytes().eq_ignore_ascii_case(verb))
        {
            listed = true;
            match &rule.pattern {
                None => return Verdict::Allow,
                Some(re) if re.is_match(arg) => return Verdict::Allow,
                Some(_) => {}
            }
        }
        // SECURITY: only what ValidCommands lists reaches the server, but
        // for USER and QUIT when not listed at all: as in ftp-proxy, a list
        // without them still lets a session log in (USER still meets
        // UserNameRule) and end. Listed with a pattern, they must match it.
        if listed {
            Verdict::ArgumentRefused
        } else if verb.eq_ignore_ascii_case(b"USER") || verb.eq_ignore_ascii_case(b"QUIT") {
            Verdict::Allow
        } else {
            Verdict::CommandRefused
        }
    }

    /// Whether `verb` (any case) is listed at all, with whatever pattern
    /// (for filtering FEAT replies).
    pub fn allows(&self, verb: &[u8]) -> bool {
        self.rules
            .iter()
            .any(|r| r.verb.as_bytes().eq_ignore_ascii_case(verb))
    }
}

/// One ValidCommands entry as a rule; the error is the reason.
fn parse_rule(entry: &str) -> Result<Rule, String> {
    let (name, pattern) = match entry.split_once('=') {
        Some((name, pattern)) => (name, Some(pattern)),
        None => (entry, None),
    };
    if name.is_empty() {
        return Err("missing command name before '='".to_string());
    }
    let verb =
        Verb::new(name.as_bytes()).ok_or_else(|| "a command name is 1 to 4 letters".to_string())?;
    if kind(verb.as_bytes()).is_none() {
        return Err(format!("unknown command {verb}"));
    }
    let pattern = match pattern {
        None => None,
        Some("") => {
            return Err(
                "empty pattern (write the command alone to allow any argument, \
                 or VERB=^$ to allow none)"
                    .to_string(),
            );
        }
        Some(p) => Some(compile_pattern(p)?),
    };
    Ok(Rule { verb, pattern })
}

/// Splits a ValidCommands value into entries (see the module docs for how a
/// comma inside a pattern is treated).
fn split_entries(value: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    for word in value.split([' ', '\t']) {
        let bytes = word.as_bytes();
        let mut start = 0;
        let mut in_pattern = false;
        let mut depth = 0usize; // () and {}
        let mut in_bracket = false;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if !in_pattern {
                match b {
                    b'=' => in_pattern = true,
                    b',' => {
                        entries.push(&word[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            } else if b == b'\\' && !in_bracket {
                i += 1; // the next byte is escaped (in brackets a member)
            } else if in_bracket {
                match b {
                    // "[:alpha:]" and friends inside a bracket expression
                    b'[' if matches!(bytes.get(i + 1), Some(b':' | b'.' | b'=')) => {
                        let delim = bytes[i + 1];
                        let close = bytes[i + 2..]
                            .windows(2)
                            .position(|w| w[0] == delim && w[1] == b']');
                        if let Some(p) = close {
                            i += 2 + p + 1;
                        }
                    }
                    b']' => in_bracket = false,
                    _ => {}
                }
            } else {
                match b {
                    b'[' => {
                        in_bracket = true;
                        // "[]...]" and "[^]...]": that first ']' is a member
                        if bytes.get(i + 1) == Some(&b'^') {
                            i += 1;
                        }
                        if bytes.get(i + 1) == Some(&b']') {
                            i += 1;
                        }
                    }
                    b'(' | b'{' => depth += 1,
                    b')' | b'}' => depth = depth.saturating_sub(1),
                    b',' if depth == 0 => {
                        entries.push(&word[start..i]);
                        start = i + 1;
                        in_pattern = false;
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        entries.push(&word[start..]);
    }
    entries.retain(|e| !e.is_empty());
    entries
}

/// Compiles one of ftp-proxy's regular expressions (ValidCommands patterns,
/// UserNameRule) into a regex that matches raw bytes.
///
/// Steps, each documented for administrators:
/// 1. `%xx` (two hex digits, any case) is replaced by the byte 0xXX, as in
///    ftp-proxy, *before* the pattern is read as a regex: the byte keeps its
///    regex meaning. `%20` is a space; `%5c` is a backslash that escapes what
///    follows (`%5c%2e` is a literal dot, `%2e` alone is "any byte"). A `%`
///    not followed by two hex digits stays a `%`.
/// 2. The bytes are read as a POSIX extended regular expression and written
///    in the `regex` crate's syntax: bytes that are not printable ASCII
///    become `\xNN` (so they match exactly that byte); inside a bracket
///    expression POSIX rules apply (`]` first is a member, `[` and `&`, `~`
///    are plain members, `-` first or last is a member, `[:class:]` is kept,
///    `[.c.]` and `[=c=]` of one byte are that byte).
///    Inside brackets a backslash is a member, as in POSIX and ftp-proxy
///    (`[\w/]` is backslash, `w` and slash; `[^\]` is "not a backslash").
///    Outside brackets the `regex` crate's extensions (`\d`, `(?i)`, ...)
///    are accepted; back-references are not.
/// 3. It is compiled for bytes (no Unicode: `.` is any byte but LF,
///    `[[:alpha:]]` is ASCII letters) with size limit
///    `limits::MAX_REGEX_SIZE`.
///
/// The error text is one line, fit for `file:line: message`.
pub fn compile_pattern(p: &str) -> Result<Regex, String> {
    let bytes = substitute_hex(p.as_bytes());
    let translated = translate(&bytes)?;
    RegexBuilder::new(&translated)
        .unicode(false)
        .size_limit(MAX_REGEX_SIZE)
        .dfa_size_limit(MAX_REGEX_SIZE)
        .build()
        .map_err(|e| format!("invalid regular expression: {}", one_line(&e.to_string())))
}

/// The regex crate's multi-line error text reduced to its "error:" line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(
            || message.split_whitespace().collect::<Vec<_>>().join(" "),
            str::to_string,
        )
}

/// Step 1 of [`compile_pattern`]: `%xx` -> byte 0xXX.
fn substitute_hex(p: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        if p[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                p.get(i + 1).and_then(|&b| hex(b)),
                p.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(p[i]);
        i += 1;
    }
    out
}

/// Appends one byte as a literal or as `\xNN` when it is not printable.
fn push_byte(out: &mut String, b: u8) {
    if (0x20..=0x7e).contains(&b) {
        out.push(char::from(b));
    } else {
        out.push_str(&format!("\\x{b:02x}"));
    }
}

/// Appends one byte as a bracket-expression member, escaped as needed.
fn push_member(out: &mut String, b: u8) {
    if matches!(b, b'[' | b']' | b'\\' | b'-' | b'^' | b'&' | b'~') {
        out.push('\\');
        out.push(char::from(b));
    } else {
        push_byte(out, b);
    }
}

/// POSIX character class names the regex crate also knows.
const CLASSES: &[&[u8]] = &[
    b"alnum", b"alpha", b"blank", b"cntrl", b"digit", b"graph", b"lower", b"print", b"punct",
    b"space", b"upper", b"xdigit",
];

/// Step 2 of [`compile_pattern`]: POSIX ERE bytes -> regex crate syntax.
fn translate(p: &[u8]) -> Result<String, String> {
    let mut out = String::with_capacity(p.len() * 2);
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' => match p.get(i + 1) {
                None => return Err("pattern ends with a backslash".to_string()),
                Some(&next) => {
                    if (0x21..=0x7e).contains(&next) {
                        out.push('\\');
                        out.push(char::from(next));
                    } else {
                        // "\" before a space or a raw byte: that byte, literally
                        out.push_str(&format!("\\x{next:02x}"));
                    }
                    i += 2;
                }
            },
            b'[' => i = translate_bracket(p, i, &mut out)?,
            b => {
                push_byte(&mut out, b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Translates the bracket expression starting at `p[start] == '['`;
/// returns the index after its closing `]`.
fn translate_bracket(p: &[u8], start: usize, out: &mut String) -> Result<usize, String> {
    let unclosed = || "unclosed bracket expression '['".to_string();
    let mut i = start + 1;
    out.push('[');
    if p.get(i) == Some(&b'^') {
        out.push('^');
        i += 1;
    }
    let first = i;
    loop {
        let b = *p.get(i).ok_or_else(unclosed)?;
        match b {
            b']' if i != first => {
                out.push(']');
                return Ok(i + 1);
            }
            b'[' if matches!(p.get(i + 1), Some(b':' | b'.' | b'=')) => {
                let delim = p[i + 1];
                let body_start = i + 2;
                let len = p[body_start..]
                    .windows(2)
                    .position(|w| w[0] == delim && w[1] == b']')
                    .ok_or_else(unclosed)?;
                let body = &p[body_start..body_start + len];
                if delim == b':' {
                    if !CLASSES.contains(&body) {
                        return Err(format!(
                            "unknown character class [:{}:]",
                            crate::ftp::escape(body)
                        ));
                    }
                    out.push_str("[:");
                    out.push_str(&String::from_utf8_lossy(body));
                    out.push_str(":]");
                } else if let [single] = body {
                    push_member(out, *single);
                } else {
                    return Err(
                        "collating elements of more than one byte are not supported".to_string()
                    );
                }
                i = body_start + len + 2;
            }
            // POSIX (and ftp-proxy, through regcomp): a backslash inside
            // brackets is a member like any other byte; `[\w/]` is
            // backslash, w and slash, never the regex crate's word class.
            b'\\' => {
                push_member(out, b);
                i += 1;
            }
            b'-' => {
                // A range dash, unless first or last: then a member.
                if i == first || p.get(i + 1) == Some(&b']') {
                    out.push_str("\\-");
                } else {
                    out.push('-');
                }
                i += 1;
            }
            _ => {
                push_member(out, b);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn filter(value: &str) -> CommandFilter {
        CommandFilter::parse(value).unwrap()
    }

    #[test]
    fn verdicts_follow_the_listed_commands_and_patterns() {
        use Verdict::*;
        let cases: &[(&str, &[u8], &[u8], Verdict)] = &[
            ("USER PASS QUIT", b"USER", b"bob", Allow),
            ("USER PASS QUIT", b"RETR", b"x", CommandRefused),
            ("QUIT=^$", b"QUIT", b"", Allow),
            ("QUIT=^$", b"QUIT", b"now", ArgumentRefused),
            (r"RETR=^[a-z]+\.txt$", b"RETR", b"readme.txt", Allow),
            (
                r"RETR=^[a-z]+\.txt$",
                b"RETR",
                b"readme.txt.exe",
                ArgumentRefused,
            ),
            (
                r"RETR=^[a-z]+\.txt$",
                b"RETR",
                b"../etc.txt",
                ArgumentRefused,
            ),
            (
                r"RETR=^[a-z]+\.txt$",
                b"RETR",
                b"readmeXtxt",
                ArgumentRefused,
            ),
            ("CWD=^a%20b$", b"CWD", b"a b", Allow),
            ("CWD=^a%20b$", b"CWD", b"a_b", ArgumentRefused),
            ("SITE=^a%5c.b$", b"SITE", b"a.b", Allow),
            ("SITE=^a%5c.b$", b"SITE", b"axb", ArgumentRefused),
            ("SITE=^%FF$", b"SITE", b"\xff", Allow),
            ("SITE=^%ff$", b"SITE", b"\xfe", ArgumentRefused),
            ("SITE=^.$", b"SITE", b"\xfe", Allow),
            ("retr stor", b"STOR", b"f", Allow),
            ("USER,PASS, QUIT ,,NOOP", b"NOOP", b"", Allow),
            ("USER,PASS, QUIT ,,NOOP", b"QUIT", b"", Allow),
            ("RETR=^[a-z]{1,3}$,QUIT", b"RETR", b"abc", Allow),
            ("RETR=^[a-z]{1,3}$,QUIT", b"RETR", b"abcd", ArgumentRefused),
            ("RETR=^[a-z]{1,3}$,QUIT", b"QUIT", b"", Allow),
            ("RETR=^(a,b)$", b"RETR", b"a,b", Allow),
            ("RETR=^a%2cb$", b"RETR", b"a,b", Allow),
            ("RETR=^[,]$", b"RETR", b",", Allow),
            // a verb listed twice: any of its patterns
            ("RETR=^a$ RETR=^b$", b"RETR", b"b", Allow),
            ("RETR=^a$ RETR=^b$", b"RETR", b"c", ArgumentRefused),
            ("RETR=^a$ RETR", b"RETR", b"c", Allow),
            // unanchored patterns match anywhere, like regexec
            ("RETR=txt", b"RETR", b"a.txt.gz", Allow),
            ("", b"NOOP", b"", CommandRefused),
            // USER and QUIT unlisted pass (as in ftp-proxy); listed, their
            // patterns hold; PASS is not exempt
            ("PWD", b"USER", b"bob", Allow),
            ("PWD", b"quit", b"", Allow),
            ("PWD", b"PASS", b"x", CommandRefused),
            ("USER=^anonymous$", b"USER", b"bob", ArgumentRefused),
        ];
        for (value, verb, arg, want) in cases {
            assert_eq!(
                filter(value).check(verb, arg),
                *want,
                "{value} / {verb:?} {arg:?}"
            );
        }
    }

    #[test]
    fn refusals_map_to_502_and_504() {
        assert_eq!(Verdict::Allow.reply_code(), None);
        assert_eq!(Verdict::CommandRefused.reply_code(), Some(502));
        assert_eq!(Verdict::ArgumentRefused.reply_code(), Some(504));
    }

    #[test]
    fn allows_reports_listed_verbs_in_any_case() {
        let f = filter("retr=^x$ STOR");
        assert!(f.allows(b"RETR"));
        assert!(f.allows(b"stor"));
        assert!(!f.allows(b"LIST"));
    }

    #[test]
    fn every_bad_entry_is_named_in_one_error() {
        let e = CommandFilter::parse("USER XSEM RETR=( QUIT FOO").unwrap_err();
        assert_eq!(e.entry, "XSEM");
        let also: Vec<&str> = e.also.iter().map(|a| a.entry.as_str()).collect();
        assert_eq!(also, ["RETR=(", "FOO"]);
        let text = e.to_string();
        assert!(
            text.contains("'RETR=('") && text.ends_with("unknown command FOO"),
            "{text}"
        );
    }

    #[test]
    fn bad_entries_are_errors_that_name_the_entry() {
        let cases: &[(&str, &str, &str)] = &[
            ("USER RETR=(", "RETR=(", "unclosed group"),
            ("RETR=", "RETR=", "empty pattern"),
            ("=^$", "=^$", "missing command name"),
            ("RETRIEVE", "RETRIEVE", "1 to 4 letters"),
            ("XMD5", "XMD5", "1 to 4 letters"),
            ("FOO", "FOO", "unknown command"),
            ("RETR=[a", "RETR=[a", "unclosed bracket"),
            (
                "RETR=[[:foo:]]",
                "RETR=[[:foo:]]",
                "unknown character class",
            ),
            (
                "RETR=a{99999}",
                "RETR=a{99999}",
                "invalid regular expression",
            ),
            ("RETR=^a\\", "RETR=^a\\", "ends with a backslash"),
        ];
        for (value, entry, reason) in cases {
            let e = CommandFilter::parse(value).unwrap_err();
            assert_eq!(e.entry, *entry, "value {value}");
            assert!(e.reason.contains(reason), "value {value}: {}", e.reason);
            assert!(!e.to_string().contains('\n'), "value {value}: {e}");
        }
    }

    #[test]
    fn huge_patterns_hit_the_size_limit() {
        let e = compile_pattern("(((a{100}){100}){100})").unwrap_err();
        assert!(e.contains("invalid regular expression"), "{e}");
    }

    #[test]
    fn posix_bracket_expressions_keep_their_posix_meaning() {
        let cases: &[(&str, &[u8], bool)] = &[
            ("^[[:alnum:]]+$", b"abc123", true),
            ("^[[:alnum:]]+$", b"abc-1", false),
            ("^[]a]+$", b"]a]", true),
            ("^[^]a]+$", b"bc", true),
            ("^[^]a]+$", b"b]", false),
            ("^[a-]+$", b"a-a", true),
            ("^[-a]+$", b"-", true),
            ("^[a&&b]$", b"&", true),
            ("^[a[b]$", b"[", true),
            ("^[a~~b]$", b"~", true),
            ("^[[.-.]a]$", b"-", true),
            ("^[%5c%5c]$", b"\\", true),
            // A backslash in brackets is a member (POSIX, ftp-proxy).
            (r"^[\.]$", b".", true),
            (r"^[\.]$", b"\\", true),
            (r"^[\w/]+$", b"pub", false),
            (r"^[\w/]+$", b"w/w", true),
            (r"^[a\d]+$", b"5", false),
            (r"^[a\d]+$", b"d", true),
            (r"^[^\]+$", b"a\\b", false),
            (r"^[^\]+$", b"ab", true),
            ("^[%80-%ff]$", b"\xc3", true),
            ("^[%80-%ff]$", b"a", false),
            ("^a%00b$", b"a\0b", true),
        ];
        for (pattern, input, want) in cases {
            let re = compile_pattern(pattern).unwrap();
            assert_eq!(re.is_match(input), *want, "{pattern} on {input:?}");
        }
    }

    #[test]
    fn a_backslash_in_brackets_does_not_hide_the_closing_bracket_from_the_list() {
        let f = filter(r"CWD=^[^\]+$,MKD=^[a\d]+$ QUIT");
        assert_eq!(f.check(b"CWD", b"pub"), Verdict::Allow);
        assert_eq!(f.check(b"CWD", b"a\\b"), Verdict::ArgumentRefused);
        assert_eq!(f.check(b"MKD", b"5"), Verdict::ArgumentRefused);
        assert_eq!(f.check(b"MKD", b"d"), Verdict::Allow);
        assert_eq!(f.check(b"QUIT", b""), Verdict::Allow);
    }

    proptest! {
        #[test]
        fn verdicts_do_not_depend_on_verb_case(
            verb in "(?i)(retr|stor|list|quit|noop|user)",
            arg in proptest::collection::vec(any::<u8>(), 0..10),
        ) {
            let f = filter("RETR=^[a-z]+$ stor QUIT=^$ user=^[[:alnum:]]+$");
            let upper = verb.to_ascii_uppercase();
            let lower = verb.to_ascii_lowercase();
            let v = f.check(verb.as_bytes(), &arg);
            prop_assert_eq!(v, f.check(upper.as_bytes(), &arg));
            prop_assert_eq!(v, f.check(lower.as_bytes(), &arg));
        }

        #[test]
        fn compile_pattern_never_panics(p in "[a-z%0-9\\[\\]\\\\:^$.*+?(){}|,=-]{0,20}") {
            let _ = compile_pattern(&p);
        }

        #[test]
        fn parse_never_panics(v in "\\PC{0,40}") {
            let _ = CommandFilter::parse(&v);
        }
    }
}

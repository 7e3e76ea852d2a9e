//! Configuration syntax: text in, entries with line numbers out.
//!
//! Owns the grammar of ftp-proxy.conf(5) and nothing else: it does not know
//! which options exist or what their values mean (that is `options.rs`), and
//! it never touches a file, the clock or the network. It never panics, for
//! any input, and it reports every error it finds rather than the first.
//!
//! Grammar (one logical line per entry):
//!
//! ```text
//! physical   = *CHAR [CR] LF             ; CRLF and LF both end a line
//! logical    = physical *( "\" continued ) ; a trailing "\" joins the next line,
//!                                           ; whose leading white space is dropped
//! comment    = *WSP "#" *CHAR             ; only at the start of a line
//! blank      = *WSP
//! section    = *WSP "[" name ["*"] "]" *WSP ; "[-Global-]" (any case) = global,
//!                                             ; "[-Class-NAME-]" = a client class
//! option     = *WSP Name (1*WSP / *WSP "=" *WSP) Value *WSP
//! ```
//!
//! A `#` after the start of a line is part of the value (regular expressions
//! may contain it). The line number of an entry is the first physical line
//! of its logical line.
#![forbid(unsafe_code)]

/// What a logical line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `[-Global-]`: back to the global context.
    Global,
    /// `[name]` or `[name*]`; `name` as written, without the `*`.
    Section { name: String, wildcard: bool },
    /// `[-Class-NAME-]`: a client class context (SPEC 11).
    Class { name: String },
    /// `Name Value`; both as written, value trimmed and continuations joined.
    Setting { name: String, value: String },
}

/// One entry of the file, with the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub item: Item,
}

/// A syntax error: the line (1-based) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// The name of the global context in section brackets (case-insensitive).
pub const GLOBAL_SECTION: &str = "-Global-";

/// How a class context's name starts: `[-Class-NAME-]`.
pub const CLASS_PREFIX: &str = "-Class-";

/// Splits `text` into entries and collects every syntax error.
///
/// Never panics, for any input.
pub fn parse(text: &str) -> (Vec<Entry>, Vec<SyntaxError>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (line, logical) in logical_lines(text) {
        match parse_line(&logical) {
            Ok(Some(item)) => entries.push(Entry { line, item }),
            Ok(None) => {}
            Err(message) => errors.push(SyntaxError { line, message }),
        }
    }
    (entries, errors)
}

/// Turns the file's bytes into text. Comment lines may be in any
/// encoding (old ftp-proxy files carry Latin-1 comments, which ftp-proxy
/// never looks at); their undecodable bytes become U+FFFD. Every other
/// line must be UTF-8, since its value reaches the wire or a regular
/// expression and a guessed encoding would change what it means: each such
/// line is an error. A line continuing a previous one is content, as in
/// [`parse`]. A leading UTF-8 byte order mark is dropped.
///
/// Never panics, for any input.
pub fn decode(bytes: &[u8]) -> Result<String, Vec<SyntaxError>> {
    // A byte order mark (Windows editors write one) is not part of the
    // first option's name.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut text = String::with_capacity(bytes.len());
    let mut errors = Vec::new();
    let mut continued = false;
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        if index > 0 {
            text.push('\n');
        }
        let comment = !continued && raw.trim_ascii_start().starts_with(b"#");
        continued = !comment && raw.trim_ascii_end().ends_with(b"\\");
        match std::str::from_utf8(raw) {
            Ok(line) => text.push_str(line),
            Err(_) if comment => text.push_str(&String::from_utf8_lossy(raw)),
            Err(_) => errors.push(SyntaxError {
                line: index + 1,
                message: "not valid UTF-8 (only comment lines may use another encoding)"
                    .to_string(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(text)
    } else {
        Err(errors)
    }
}

/// Joins continued lines. Comment lines are dropped here, before joining,
/// so a comment ending in `\` does not swallow the next line; a line that
/// continues a previous one is content even if it starts with `#`.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let physical = raw.strip_suffix('\r').unwrap_or(raw);
        let (start, mut acc) = match pending.take() {
            Some((start, acc)) => (start, acc),
            None => {
                if physical.trim_start().starts_with('#') {
                    continue;
                }
                (number, String::new())
            }
        };
        let piece = if acc.is_empty() {
            physical
        } else {
            physical.trim_start()
        };
        // Trailing white space after the backslash is forgiven: it is
        // invisible in an editor.
        let trimmed = piece.trim_end();
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                acc.push_str(head);
                pending = Some((start, acc));
            }
            None => {
                acc.push_str(piece);
                out.push((start, acc));
            }
        }
    }
    if let Some(last) = pending {
        // A continuation at the very end of the file: keep what we have.
        out.push(last);
    }
    out
}

fn parse_line(logical: &str) -> Result<Option<Item>, String> {
    let line = logical.trim();
    if line.is_empty() {
        return Ok(None);
    }
    if let Some(rest) = line.strip_prefix('[') {
        let Some(inner) = rest.strip_suffix(']') else {
            return Err(format!("malformed context line '{line}': missing ']'"));
        };
        let inner = inner.trim();
        if inner.eq_ignore_ascii_case(GLOBAL_SECTION) {
            return Ok(Some(Item::Global));
        }
        if inner.len() > CLASS_PREFIX.len()
            && inner.is_char_boundary(CLASS_PREFIX.len())
            && inner[..CLASS_PREFIX.len()].eq_ignore_ascii_case(CLASS_PREFIX)
        {
            let name = inner[CLASS_PREFIX.len()..]
                .strip_suffix('-')
                .ok_or_else(|| format!("bad class context '[{inner}]': write [-Class-NAME-]"))?;
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                return Err(format!(
                    "bad class name in '[{inner}]': letters, digits, '_', '-', '.'"
                ));
            }
            return Ok(Some(Item::Class {
                name: name.to_ascii_lowercase(),
            }));
        }
        let (name, wildcard) = match inner.strip_suffix('*') {
            Some(prefix) => (prefix, true),
            None => (inner, false),
        };
        if name.is_empty() && !wildcard {
            return Err("empty context name '[]'".to_string());
        }
        if name.contains(['*', '[', ']']) {
            return Err(format!(
                "bad context name '[{inner}]': '*' is allowed only at the end"
            ));
        }
        return Ok(Some(Item::Section {
            name: name.to_string(),
            wildcard,
        }));
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (name, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let value = rest.strip_prefix('=').unwrap_or(rest).trim();
    if name.is_empty() {
        return Err(format!("missing option name in '{line}'"));
    }
    if value.is_empty() {
        return Err(format!("{name}: missing value"));
    }
    Ok(Some(Item::Setting {
        name: name.to_string(),
        value: value.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(line: usize, name: &str, value: &str) -> Entry {
        Entry {
            line,
            item: Item::Setting {
                name: name.into(),
                value: value.into(),
            },
        }
    }

    fn only_entry(text: &str) -> Entry {
        let (entries, errors) = parse(text);
        assert!(errors.is_empty(), "{text:?}: {errors:?}");
        assert_eq!(entries.len(), 1, "{text:?}: {entries:?}");
        entries[0].clone()
    }

    #[test]
    fn every_option_syntax_form_gives_name_and_value() {
        let cases = [
            ("Port 2121", "Port", "2121"),
            ("Port\t\t2121", "Port", "2121"),
            ("   Port 2121   ", "Port", "2121"),
            ("Port = 2121", "Port", "2121"),
            ("Port=2121", "Port", "2121"),
            ("Port =2121", "Port", "2121"),
            ("Port 2121\r", "Port", "2121"),
            (
                "WelcomeString %h FTP  server",
                "WelcomeString",
                "%h FTP  server",
            ),
            (
                "ValidCommands USER,QUIT=^$",
                "ValidCommands",
                "USER,QUIT=^$",
            ),
            ("UserNameRule ^a#b$", "UserNameRule", "^a#b$"),
            ("WelcomeString a # b", "WelcomeString", "a # b"),
        ];
        for (text, name, value) in cases {
            assert_eq!(only_entry(text), setting(1, name, value), "{text:?}");
        }
    }

    #[test]
    fn comments_and_blank_lines_are_ignored_but_keep_line_numbers() {
        let text = "# comment\n\n   # indented comment\n \t \nPort 21\r\n#x\\\nUser nobody\n";
        let (entries, errors) = parse(text);
        assert!(errors.is_empty());
        assert_eq!(
            entries,
            vec![setting(5, "Port", "21"), setting(7, "User", "nobody")]
        );
    }

    #[test]
    fn a_trailing_backslash_continues_onto_the_next_line() {
        let cases = [
            ("ValidCommands USER,\\\n   PASS\n", "USER,PASS"),
            (
                "ValidCommands USER,\\  \r\n\tPASS,\\\n QUIT\r\n",
                "USER,PASS,QUIT",
            ),
            ("ValidCommands USER,\\\n#PASS\n", "USER,#PASS"),
            ("ValidCommands USER\\", "USER"),
        ];
        for (text, value) in cases {
            assert_eq!(
                only_entry(text),
                setting(1, "ValidCommands", value),
                "{text:?}"
            );
        }
        let (entries, _) = parse("\nA b\\\nc\nD e\n");
        assert_eq!(entries, vec![setting(2, "A", "bc"), setting(4, "D", "e")]);
    }

    #[test]
    fn context_lines_are_recognised() {
        let cases = [
            ("[-Global-]", Item::Global),
            ("[-global-]", Item::Global),
            ("  [ -GLOBAL- ]  ", Item::Global),
            (
                "[Bob]",
                Item::Section {
                    name: "Bob".into(),
                    wildcard: false,
                },
            ),
            (
                "[anon*]",
                Item::Section {
                    name: "anon".into(),
                    wildcard: true,
                },
            ),
            (
                "[global]",
                Item::Section {
                    name: "global".into(),
                    wildcard: false,
                },
            ),
            (
                "[*]",
                Item::Section {
                    name: String::new(),
                    wildcard: true,
                },
            ),
        ];
        for (text, item) in cases {
            assert_eq!(only_entry(text), Entry { line: 1, item }, "{text:?}");
        }
    }

    #[test]
    fn comment_lines_in_latin1_are_accepted_and_other_lines_are_errors() {
        let text = decode(b"# f\xfcr den Proxy\n  #\xe9\r\nPort 21\n").expect("decodes");
        assert_eq!(parse(&text).0, vec![setting(3, "Port", "21")]);
        let errors = decode(b"# ok \xfc\nWelcomeString Gr\xfc\xdf\nA b\\\n#\xfc\n").unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 4], "{errors:?}");
        assert_eq!(decode(b"Port 21\r\n").as_deref(), Ok("Port 21\r\n"));
        assert_eq!(decode(b"\xef\xbb\xbfPort 21\n").as_deref(), Ok("Port 21\n"));
    }

    #[test]
    fn every_syntax_error_is_collected_with_its_line() {
        let text = "Port\n[bob\n[]\n[a*b]\nUser nobody\n= 5\nGroup =\n";
        let (entries, errors) = parse(text);
        assert_eq!(entries, vec![setting(5, "User", "nobody")]);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 6, 7]);
        assert_eq!(errors[0].message, "Port: missing value");
    }
}

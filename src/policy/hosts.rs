//! TCP-wrapper style client access control (hosts_access(5) semantics),
//! natively: no libwrap, no name lookups, no I/O. The caller reads
//! /etc/hosts.allow and /etc/hosts.deny (bounded) and passes their text.
//!
//! Grammar of one rule (after joining `\`-continued lines; `#` lines and
//! blank lines are skipped):
//!
//! ```text
//! rule        = daemon_list ":" client_list [ ":" option { ":" option } ]
//! list        = pattern { ( "," | whitespace ) pattern } [ "EXCEPT" list ]
//! daemon pat  = "ALL" | name                 (case-insensitive)
//! client pat  = "ALL" | "LOCAL" | a.b.c.d | "a.b." prefix
//!             | a.b.c.d/m.m.m.m | a.b.c.d/len | "[" v6 "]" [ "/" len ]
//! option      = "allow" | "deny" | anything else (ignored, reported)
//! ```
//!
//! Decision, as hosts_access(5): the first rule of hosts.allow that matches
//! (daemon and client) grants access (or denies it with `: deny`); else the
//! first matching rule of hosts.deny denies it (or grants it with `: allow`);
//! else access is granted. A missing file is an empty file.
//!
//! Patterns that need a host name (`.example.com`, `host.name`, `KNOWN`,
//! `UNKNOWN`, `PARANOID`, `@netgroup`, `/file`, wildcards, `user@host`) or
//! that do not parse cannot be evaluated without DNS. Such a pattern makes
//! the outcome unknown, and a rule whose outcome is unknown denies access
//! (fail closed), with the file and line in the reason. `LOCAL` (in libwrap:
//! "host name without a dot") matches loopback clients, since ftpgate looks
//! up no names.
//!
//! Never panics, for any input.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The result of matching a pattern or list: three-valued, because some
/// patterns need information ftpgate does not gather (host names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Yes,
    No,
    /// Needs a host name or does not parse; the string is the pattern.
    Unknown,
}

/// The answer for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// Why, for the log: `FILE:LINE ...` or "no rule matched".
    pub reason: String,
}

/// One file's text and the name to report it by.
#[derive(Debug, Clone, Copy)]
pub struct Table<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// Decide whether `client` may use the service `daemon`.
pub fn decide(allow: Table<'_>, deny: Table<'_>, daemon: &str, client: IpAddr) -> Verdict {
    // IPv4-mapped IPv6 (from a dual-stack listener) is the IPv4 client it is.
    let client = client.to_canonical();
    for (table, grants) in [(allow, true), (deny, false)] {
        for (line, rule) in rules(table.text) {
            let where_ = format!("{}:{}", table.name, line);
            let Some((daemons, clients, options)) = split_rule(&rule) else {
                return Verdict {
                    allowed: false,
                    reason: format!("{where_}: malformed rule (fail closed)"),
                };
            };
            let m = and(
                list_match(&daemons, &|p| daemon_match(p, daemon)),
                list_match(&clients, &|p| client_match(p, client)),
            );
            match m {
                Match::No => continue,
                Match::Unknown => {
                    return Verdict {
                        allowed: false,
                        reason: format!(
                            "{where_}: rule needs host names or has a pattern ftpgate cannot evaluate (fail closed)"
                        ),
                    };
                }
                Match::Yes => {
                    let mut allowed = grants;
                    // SECURITY: `twist` replaces the service with a command
                    // (libwrap): the client never reaches it. Not run here,
                    // but never a grant either.
                    let twist = |o: &str| {
                        o.split_whitespace()
                            .next()
                            .is_some_and(|w| w.eq_ignore_ascii_case("twist"))
                    };
                    if options.iter().any(|o| twist(o)) {
                        return Verdict {
                            allowed: false,
                            reason: format!(
                                "{where_}: rule matched, denied (twist: the client never reaches the service; its command is not run)"
                            ),
                        };
                    }
                    for o in &options {
                        if o.eq_ignore_ascii_case("allow") {
                            allowed = true;
                        } else if o.eq_ignore_ascii_case("deny") {
                            allowed = false;
                        }
                    }
                    let ignored: Vec<&str> = options
                        .iter()
                        .map(String::as_str)
                        .filter(|o| {
                            !o.eq_ignore_ascii_case("allow") && !o.eq_ignore_ascii_case("deny")
                        })
                        .collect();

                    let mut reason = format!(
                        "{where_}: rule matched, {}",
                        if allowed { "allowed" } else { "denied" }
                    );
                    if !ignored.is_empty() {
                        reason.push_str(&format!(" (options ignored: {})", ignored.join(" : ")));
                    }
                    return Verdict { allowed, reason };
                }
            }
        }
    }
    Verdict {
        allowed: true,
        reason: "no rule matched".to_string(),
    }
}

/// Logical rules with the line number where each starts: comments and
/// blank lines skipped, `\` continuations joined.
fn rules(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (start, mut acc) = current.take().unwrap_or_else(|| (i + 1, String::new()));
        let line = raw.trim_end();
        if acc.is_empty() && (line.trim_start().starts_with('#') || line.trim().is_empty()) {
            continue;
        }
        if let Some(body) = line.strip_suffix('\\') {
            acc.push_str(body);
            acc.push(' ');
            current = Some((start, acc));
        } else {
            acc.push_str(line);
            out.push((start, acc));
        }
    }
    if let Some((start, acc)) = current
        && !acc.trim().is_empty()
    {
        out.push((start, acc));
    }
    out
}

/// `daemons : clients [: options]` -> word lists and options.
fn split_rule(rule: &str) -> Option<(Vec<String>, Vec<String>, Vec<String>)> {
    let mut parts = rule.split(':');
    let daemons = words(parts.next()?);
    let clients_raw = parts.next()?;
    // IPv6 patterns are bracketed and contain colons: re-join the pieces
    // of the client field while a bracket is open.
    let mut clients_text = clients_raw.to_string();
    let mut rest: Vec<&str> = parts.collect();
    while clients_text.matches('[').count() > clients_text.matches(']').count() && !rest.is_empty()
    {
        clients_text.push(':');
        clients_text.push_str(rest.remove(0));
    }
    let clients = words(&clients_text);
    let options = rest
        .iter()
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty())
        .collect();
    if daemons.is_empty() || clients.is_empty() {
        return None;
    }
    Some((daemons, clients, options))
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn and(a: Match, b: Match) -> Match {
    match (a, b) {
        (Match::No, _) | (_, Match::No) => Match::No,
        (Match::Yes, Match::Yes) => Match::Yes,
        _ => Match::Unknown,
    }
}

fn not(a: Match) -> Match {
    match a {
        Match::Yes => Match::No,
        Match::No => Match::Yes,
        Match::Unknown => Match::Unknown,
    }
}

/// `p1 p2 ... [EXCEPT list]`: any pattern before EXCEPT matches, and the
/// list after it (itself possibly with EXCEPT) does not.
fn list_match(words: &[String], one: &dyn Fn(&str) -> Match) -> Match {
    let split = words.iter().position(|w| w.eq_ignore_ascii_case("EXCEPT"));
    let (head, tail) = match split {
        Some(i) => (&words[..i], Some(&words[i + 1..])),
        None => (words, None),
    };
    let mut m = Match::No;
    for w in head {
        match one(w) {
            Match::Yes => {
                m = Match::Yes;
                break;
            }
            Match::Unknown => m = Match::Unknown,
            Match::No => {}
        }
    }
    match tail {
        Some(t) if m != Match::No => {
            if t.is_empty() {
                return Match::Unknown;
            }
            and(m, not(list_match(t, one)))
        }
        _ => m,
    }
}

fn daemon_match(pattern: &str, daemon: &str) -> Match {
    if pattern.eq_ignore_ascii_case("ALL") || pattern.eq_ignore_ascii_case(daemon) {
        Match::Yes
    } else if pattern.contains('@') {
        // daemon@host: depends on the local address name.
        Match::Unknown
    } else {
        Match::No
    }
}

fn client_match(pattern: &str, client: IpAddr) -> Match {
    if pattern.eq_ignore_ascii_case("ALL") {
        return Match::Yes;
    }
    if pattern.eq_ignore_ascii_case("LOCAL") {
        return yes_if(client.is_loopback());
    }
    if let Some(inner) = pattern.strip_prefix('[') {
        return v6_match(inner, client);
    }
    if let Some((net, mask)) = pattern.split_once('/') {
        let Ok(net) = net.parse::<Ipv4Addr>() else {
            return Match::Unknown;
        };
        let mask = if let Ok(m) = mask.parse::<Ipv4Addr>() {
            u32::from(m)
        } else {
            match mask.parse::<u32>() {
                Ok(0) => 0,
                Ok(len @ 1..=32) => u32::MAX << (32 - len),
                _ => return Match::Unknown,
            }
        };
        return match client {
            IpAddr::V4(c) => yes_if(u32::from(c) & mask == u32::from(net) & mask),
            IpAddr::V6(_) => Match::No,
        };
    }
    if let Ok(ip) = pattern.parse::<Ipv4Addr>() {
        return yes_if(client == IpAddr::V4(ip));
    }
    if pattern.ends_with('.') && pattern.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return match client {
            IpAddr::V4(c) => yes_if(c.to_string().starts_with(pattern)),
            IpAddr::V6(_) => Match::No,
        };
    }
    // Host names, domains, KNOWN/UNKNOWN/PARANOID, @netgroup, /file,
    // wildcards, user@host: need name lookups.
    Match::Unknown
}

/// `v6]` or `v6]/len` (the leading `[` already removed).
fn v6_match(inner: &str, client: IpAddr) -> Match {
    let Some((addr, rest)) = inner.split_once(']') else {
        return Match::Unknown;
    };
    let Ok(net) = addr.parse::<Ipv6Addr>() else {
        return Match::Unknown;
    };
    let len = match rest.strip_prefix('/') {
        None if rest.is_empty() => 128,
        Some(l) => match l.parse::<u32>() {
            Ok(l) if l <= 128 => l,
            _ => return Match::Unknown,
        },
        None => return Match::Unknown,
    };
    let IpAddr::V6(c) = client else {
        return Match::No;
    };
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    yes_if(u128::from(c) & mask == u128::from(net) & mask)
}

fn yes_if(b: bool) -> Match {
    if b { Match::Yes } else { Match::No }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {

    #[test]
    fn twist_is_a_refusal_never_a_grant() {
        let allow = Table {
            name: "hosts.allow",
            text: "ftpgate: 127.0.0.1 : spawn /bin/echo hi : twist /bin/false\n",
        };
        let deny = Table {
            name: "hosts.deny",
            text: "",
        };
        let v = decide(allow, deny, "ftpgate", "127.0.0.1".parse().unwrap());
        assert!(!v.allowed, "{}", v.reason);
        assert!(v.reason.contains("twist"), "{}", v.reason);
    }

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn check(allow: &str, deny: &str, client: &str) -> Verdict {
        decide(
            Table {
                name: "hosts.allow",
                text: allow,
            },
            Table {
                name: "hosts.deny",
                text: deny,
            },
            "ftpgate",
            ip(client),
        )
    }

    #[test]
    fn empty_files_allow_everyone() {
        let v = check("", "", "192.0.2.1");
        assert!(v.allowed);
        assert_eq!(v.reason, "no rule matched");
    }

    #[test]
    fn allow_wins_over_deny_and_deny_all_refuses_the_rest() {
        let allow = "# comment\n\nftpgate: 192.0.2.\n";
        let deny = "ALL: ALL\n";
        assert!(check(allow, deny, "192.0.2.7").allowed);
        let v = check(allow, deny, "198.51.100.1");
        assert!(!v.allowed);
        assert_eq!(v.reason, "hosts.deny:1: rule matched, denied");
        assert!(
            check(allow, deny, "192.0.2.7")
                .reason
                .starts_with("hosts.allow:3:")
        );
    }

    #[test]
    fn other_daemons_rules_do_not_apply() {
        assert!(check("", "sshd: ALL\nin.ftpd, vsftpd: ALL", "192.0.2.1").allowed);
        assert!(!check("", "sshd FTPGATE: ALL", "192.0.2.1").allowed);
    }

    #[test]
    fn client_patterns_match_as_documented() {
        let cases = [
            ("ALL", "203.0.113.9", true),
            ("192.0.2.1", "192.0.2.1", true),
            ("192.0.2.1", "192.0.2.10", false),
            ("192.0.2.", "192.0.2.10", true),
            ("192.0.2.", "192.0.20.1", false),
            ("10.", "10.1.2.3", true),
            ("192.0.2.0/255.255.255.0", "192.0.2.200", true),
            ("192.0.2.0/255.255.255.0", "192.0.3.1", false),
            ("192.0.2.0/24", "192.0.2.200", true),
            ("192.0.2.128/25", "192.0.2.1", false),
            ("0.0.0.0/0", "198.51.100.1", true),
            ("[2001:db8::]/32", "2001:db8:1::5", true),
            ("[2001:db8::]/32", "2001:db9::5", false),
            ("[::1]", "::1", true),
            ("[2001:db8::]/32", "192.0.2.1", false),
            ("192.0.2.", "2001:db8::1", false),
            ("LOCAL", "127.0.0.1", true),
            ("LOCAL", "::1", true),
            ("LOCAL", "192.0.2.1", false),
            // A dual-stack listener reports IPv4 clients as mapped addresses.
            ("192.0.2.0/24", "::ffff:192.0.2.9", true),
        ];
        for (pattern, client, want) in cases {
            let v = check("", &format!("ftpgate: {pattern}"), client);
            assert_eq!(!v.allowed, want, "{pattern} vs {client}: {v:?}");
        }
    }

    #[test]
    fn except_excludes_and_nests() {
        let deny = "ALL: 192.0.2.0/24 EXCEPT 192.0.2.5, 192.0.2.6";
        assert!(!check("", deny, "192.0.2.1").allowed);
        assert!(check("", deny, "192.0.2.5").allowed);
        assert!(check("", deny, "192.0.2.6").allowed);
        let nested = "ALL: 10. EXCEPT 10.1. EXCEPT 10.1.1.1";
        assert!(!check("", nested, "10.2.0.1").allowed);
        assert!(check("", nested, "10.1.0.1").allowed);
        assert!(!check("", nested, "10.1.1.1").allowed);
        let daemons = "ALL EXCEPT ftpgate: ALL";
        assert!(check("", daemons, "192.0.2.1").allowed);
    }

    #[test]
    fn allow_and_deny_options_override_the_file() {
        assert!(!check("ftpgate: 192.0.2.1 : deny", "", "192.0.2.1").allowed);
        assert!(check("", "ftpgate: ALL : allow", "192.0.2.1").allowed);
        let v = check("ftpgate: ALL : severity auth.info : allow", "", "192.0.2.1");
        assert!(v.allowed);
        assert!(
            v.reason.contains("options ignored: severity auth.info"),
            "{v:?}"
        );
    }

    #[test]
    fn ipv6_patterns_with_colons_survive_the_field_split() {
        assert!(!check("ftpgate: [2001:db8::1] : deny", "", "2001:db8::1").allowed);
        assert!(check("ftpgate: [2001:db8::1] : deny", "", "2001:db8::2").allowed);
    }

    #[test]
    fn continued_lines_are_one_rule_reported_at_their_first_line() {
        let deny = "\n ftpgate: 192.0.2.1 \\\n  192.0.2.2\n";
        let v = check("", deny, "192.0.2.2");
        assert!(!v.allowed);
        assert!(v.reason.starts_with("hosts.deny:2:"), "{v:?}");
    }

    #[test]
    fn patterns_that_need_names_fail_closed() {
        for p in [
            ".example.com",
            "host.example.com",
            "KNOWN",
            "PARANOID",
            "@group",
            "/etc/x",
            "192.0.2.*",
        ] {
            let v = check(&format!("ftpgate: {p}"), "", "192.0.2.1");
            assert!(!v.allowed, "{p}");
            assert!(v.reason.contains("fail closed"), "{v:?}");
        }
        // A definite match earlier in the file still decides.
        assert!(check("ftpgate: 192.0.2.1\nftpgate: .example.com", "", "192.0.2.1").allowed);
        // An unknown pattern after EXCEPT of a non-matching list is irrelevant.
        assert!(check("", "ftpgate: 10. EXCEPT .example.com", "192.0.2.1").allowed);
    }

    #[test]
    fn malformed_rules_fail_closed() {
        for deny in ["ftpgate", "ftpgate:", ": ALL", "ALL: 192.0.2.0/33"] {
            let v = check("", deny, "198.51.100.1");
            assert!(!v.allowed, "{deny}: {v:?}");
        }
    }

    #[test]
    fn arbitrary_text_never_panics() {
        let samples = [
            "[",
            "[:",
            "a:[b:c",
            "\\",
            "x: y EXCEPT",
            ":::::",
            "ALL: [::1]/",
            "ALL:[]/-1",
        ];
        for s in samples {
            let _ = check(s, s, "192.0.2.1");
            let _ = check(s, s, "::1");
        }
    }
}

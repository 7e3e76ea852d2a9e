//! `%` substitutions in configured texts (WelcomeString and friends).
//!
//! Owns the meaning of the `%` codes of ftp-proxy.conf(5). It never reads
//! the clock, the host name or anything else: the caller fills [`Vars`]
//! (before the jail, if it needs files to do so). Never panics.
#![forbid(unsafe_code)]

/// The values substituted for each code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    /// `%h`: host name.
    pub host: String,
    /// `%n`: domain name.
    pub domain: String,
    /// `%d`: date, YYYY/MM/DD.
    pub date: String,
    /// `%t`: time, HH:MM:SS.
    pub time: String,
    /// `%v`: version.
    pub version: String,
    /// `%b`: build date.
    pub build: String,
}

/// Replaces `%h %n %d %t %v %b %%` in `template`. An unknown code, and a
/// `%` at the very end, are kept as written.
pub fn expand(template: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(&vars.host),
            Some('n') => out.push_str(&vars.domain),
            Some('d') => out.push_str(&vars.date),
            Some('t') => out.push_str(&vars.time),
            Some('v') => out.push_str(&vars.version),
            Some('b') => out.push_str(&vars.build),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            host: "gate".into(),
            domain: "example.org".into(),
            date: "2026/11/24".into(),
            time: "17:20:30".into(),
            version: "0.1.0".into(),
            build: "2026/11/01".into(),
        }
    }

    #[test]
    fn every_code_is_replaced_and_unknown_codes_are_kept() {
        let cases = [
            (
                "%h FTP server (%v - %b) ready",
                "gate FTP server (0.1.0 - 2026/11/01) ready",
            ),
            ("%h.%n", "gate.example.org"),
            ("%d %t", "2026/11/24 17:20:30"),
            ("100%%", "100%"),
            ("%%h", "%h"),
            ("%x %Z", "%x %Z"),
            ("trailing %", "trailing %"),
            ("%", "%"),
            ("", ""),
            ("é%hé", "égateé"),
            ("%é", "%é"),
        ];
        for (template, want) in cases {
            assert_eq!(expand(template, &vars()), want, "{template:?}");
        }
    }

    #[test]
    fn substituted_values_are_not_expanded_again() {
        let v = Vars {
            host: "%d".into(),
            ..vars()
        };
        assert_eq!(expand("%h", &v), "%d");
    }
}

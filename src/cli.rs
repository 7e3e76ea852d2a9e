//! Command line -> [`Options`], compatible with ftp-proxy(8):
//! `ftpgate [-c] [-d|-i] [-f FILE] [-n] [-v LEVEL] [-V]`, plus long forms.
//! Pure: no I/O.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;

/// Where the configuration lives unless `-f` says otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/ftpgate/ftpgate.conf";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `-i`: client on stdin/stdout.
    Inetd,
    /// `-d`: listen and fork.
    Daemon,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Serve (the normal case).
    Run,
    /// `-c`: print the normalised configuration.
    Check,
    /// `-V`
    Version,
    /// `--help`
    Help,
    /// `--explain CLIENT USER [COMMAND...]`: the policy simulator (SPEC 13).
    Explain {
        client: String,
        user: String,
        commands: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub action: Action,
    /// None: ServerType decides.
    pub mode: Option<Mode>,
    pub config: PathBuf,
    pub foreground: bool,
    /// 0..=4
    pub verbosity: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    UnknownFlag(String),
    /// An argument that is not an option (ftpgate takes none).
    Operand(String),
    MissingValue(&'static str),
    BadLevel(String),
    Conflict,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::UnknownFlag(s) => write!(f, "unknown option '{s}' (try --help)"),
            CliError::Operand(s) => write!(f, "unexpected argument '{s}' (try --help)"),
            CliError::MissingValue(flag) => write!(f, "option {flag} needs a value"),
            CliError::BadLevel(s) => write!(f, "debug level '{s}' is not a number from 0 to 4"),
            CliError::Conflict => f.write_str("-d and -i exclude each other"),
        }
    }
}

pub const USAGE: &str = "\
usage: ftpgate [-c] [-d|-i] [-f FILE] [-n] [-v LEVEL] [-V]

  -c, --check        parse the configuration, print it normalised, exit
  -d, --daemon       standalone mode: listen and fork per connection
  -i, --inetd        inetd mode: the client is on stdin/stdout
  -f, --config FILE  configuration file (default /etc/ftpgate/ftpgate.conf)
  -n, --foreground   do not detach in daemon mode
  -v, --verbose N    debug verbosity 0-4 to the log
  -V, --version      print the version and exit
  -h, --help         this text
  --explain CLIENT USER [COMMAND...]
                     what the configuration does with this client, login
                     and commands, without any network traffic; exit 0
                     if all is allowed, 1 if something is refused
";

/// Parse the arguments after the program name. Short flags may be grouped
/// (`-ic`), and `-f`/`-v` take the rest of their group or the next argument.
pub fn parse<I, S>(args: I) -> Result<Options, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut o = Options {
        action: Action::Run,
        mode: None,
        config: PathBuf::from(DEFAULT_CONFIG),
        foreground: false,
        verbosity: 0,
    };
    let mut args = args.into_iter().map(Into::into);
    let set_mode = |o: &mut Options, m: Mode| -> Result<(), CliError> {
        if o.mode.is_some_and(|old| old != m) {
            return Err(CliError::Conflict);
        }
        o.mode = Some(m);
        Ok(())
    };
    while let Some(arg) = args.next() {
        // getopt's end of options; nothing may follow, as ftpgate takes
        // no operands.
        if arg == "--" {
            if let Some(extra) = args.next() {
                return Err(CliError::Operand(extra));
            }
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            match name {
                "check" => o.action = Action::Check,
                "daemon" => set_mode(&mut o, Mode::Daemon)?,
                "inetd" => set_mode(&mut o, Mode::Inetd)?,
                "foreground" => o.foreground = true,
                // As ftp-proxy (getopt, then exit): the first -V or -h
                // answers, whatever else the line says.
                "version" => {
                    return Ok(Options {
                        action: Action::Version,
                        ..o
                    });
                }
                "help" => {
                    return Ok(Options {
                        action: Action::Help,
                        ..o
                    });
                }
                "explain" => {
                    // Everything after it is the question: CLIENT USER
                    // [COMMAND...] (commands may start with '-' too).
                    let client = inline
                        .or_else(|| args.next())
                        .ok_or(CliError::MissingValue("--explain (CLIENT USER)"))?;
                    let user = args
                        .next()
                        .ok_or(CliError::MissingValue("--explain CLIENT (USER)"))?;
                    o.action = Action::Explain {
                        client,
                        user,
                        commands: args.by_ref().collect(),
                    };
                }
                "config" => {
                    o.config = PathBuf::from(
                        inline
                            .or_else(|| args.next())
                            .ok_or(CliError::MissingValue("--config"))?,
                    )
                }
                "verbose" => {
                    let v = inline
                        .or_else(|| args.next())
                        .ok_or(CliError::MissingValue("--verbose"))?;
                    o.verbosity = level(&v)?;
                }
                _ => return Err(CliError::UnknownFlag(arg)),
            }
            continue;
        }
        let Some(group) = arg.strip_prefix('-').filter(|g| !g.is_empty()) else {
            return Err(CliError::Operand(arg));
        };
        let chars = group.char_indices();
        for (i, c) in chars {
            match c {
                'c' => o.action = Action::Check,
                'd' => set_mode(&mut o, Mode::Daemon)?,
                'i' => set_mode(&mut o, Mode::Inetd)?,
                'n' => o.foreground = true,
                'V' => {
                    return Ok(Options {
                        action: Action::Version,
                        ..o
                    });
                }
                'h' => {
                    return Ok(Options {
                        action: Action::Help,
                        ..o
                    });
                }
                'f' | 'v' => {
                    let rest = &group[i + c.len_utf8()..];
                    let value = if rest.is_empty() {
                        args.next().ok_or(CliError::MissingValue(if c == 'f' {
                            "-f"
                        } else {
                            "-v"
                        }))?
                    } else {
                        rest.to_string()
                    };
                    if c == 'f' {
                        o.config = PathBuf::from(value);
                    } else {
                        o.verbosity = level(&value)?;
                    }
                    break;
                }
                _ => return Err(CliError::UnknownFlag(format!("-{c}"))),
            }
        }
    }
    Ok(o)
}

fn level(s: &str) -> Result<u8, CliError> {
    match s.parse::<u8>() {
        Ok(n) if n <= 4 => Ok(n),
        _ => Err(CliError::BadLevel(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, CliError> {
        parse(args.iter().copied())
    }

    #[test]
    fn no_arguments_mean_run_with_the_default_file() {
        let o = p(&[]).unwrap();
        assert_eq!(o.action, Action::Run);
        assert_eq!(o.mode, None);
        assert_eq!(o.config, PathBuf::from(DEFAULT_CONFIG));
    }

    #[test]
    fn ftp_proxy_flags_are_understood() {
        let o = p(&["-i", "-f", "/x.conf", "-v", "3"]).unwrap();
        assert_eq!(o.mode, Some(Mode::Inetd));
        assert_eq!(o.config, PathBuf::from("/x.conf"));
        assert_eq!(o.verbosity, 3);
        assert_eq!(p(&["-c"]).unwrap().action, Action::Check);
        assert_eq!(p(&["-V"]).unwrap().action, Action::Version);
        // The first -V or -h answers, whatever comes before or after.
        assert_eq!(p(&["-V", "-c", "-f", "x"]).unwrap().action, Action::Version);
        assert_eq!(p(&["-c", "-V"]).unwrap().action, Action::Version);
        assert_eq!(p(&["-cV"]).unwrap().action, Action::Version);
        assert_eq!(p(&["-V", "-q"]).unwrap().action, Action::Version);
        assert_eq!(p(&["-h", "-V"]).unwrap().action, Action::Help);
        assert!(p(&["-d", "-n"]).unwrap().foreground);
    }

    #[test]
    fn grouped_and_attached_short_flags_work() {
        let o = p(&["-icf/y.conf"]).unwrap();
        assert_eq!(o.mode, Some(Mode::Inetd));
        assert_eq!(o.action, Action::Check);
        assert_eq!(o.config, PathBuf::from("/y.conf"));
        assert_eq!(p(&["-v4"]).unwrap().verbosity, 4);
    }

    #[test]
    fn long_forms_work() {
        let o = p(&["--inetd", "--config=/z", "--check"]).unwrap();
        assert_eq!(
            (o.mode, o.config, o.action),
            (Some(Mode::Inetd), PathBuf::from("/z"), Action::Check)
        );
        assert_eq!(p(&["--config", "/w"]).unwrap().config, PathBuf::from("/w"));
        assert_eq!(p(&["--help"]).unwrap().action, Action::Help);
    }

    #[test]
    fn bad_command_lines_are_errors() {
        assert_eq!(p(&["-x"]), Err(CliError::UnknownFlag("-x".into())));
        assert_eq!(p(&["-f"]), Err(CliError::MissingValue("-f")));
        assert_eq!(p(&["-v", "5"]), Err(CliError::BadLevel("5".into())));
        assert_eq!(p(&["-d", "-i"]), Err(CliError::Conflict));
        assert_eq!(p(&["stray"]), Err(CliError::Operand("stray".into())));
        assert_eq!(p(&["-c", "--", "-i"]), Err(CliError::Operand("-i".into())));
        assert_eq!(p(&["-c", "--"]).unwrap().action, Action::Check);
    }
}

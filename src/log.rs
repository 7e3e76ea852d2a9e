//! Log sinks: syslog, a file, or a pipe to a command, all opened before the
//! jail so they keep working inside an empty chroot. One line per event, led
//! by the session id; wire bytes are escaped before they reach a log.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Context, Result, bail};
use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

use crate::config::{Level, LogDestination};

enum Sink {
    Syslog(Logger<LoggerBackend, Formatter3164>),
    File(File),
    Pipe { child: Child, stdin: ChildStdin },
    Stderr,
    Null,
}

/// Whether an existing log file may be written (see [`check_meta`]); a
/// file that does not exist yet is fine. For `-c`.
pub fn check_file(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => check_meta(path, &other),
    }
}

fn check_meta(path: &Path, meta: &std::io::Result<std::fs::Metadata>) -> Result<()> {
    let meta = match meta {
        Ok(m) => m,
        Err(e) => bail!("examining log file {}: {e}", path.display()),
    };
    let mode = meta.permissions().mode();
    // SECURITY: anyone may write to a world-writable log file: forge
    // lines, or empty it to hide a session. Refused, like a log file that
    // cannot be opened (/dev/null, not a file, is fine).
    if meta.is_file() && mode & 0o002 != 0 {
        bail!(
            "log file {} is world-writable (mode {:o}); remove write permission for others",
            path.display(),
            mode & 0o7777
        );
    }
    // SECURITY: the same for a file another user owns (say one planted in
    // a shared directory before the first start): only root or the
    // account ftpgate runs as may own it.
    let euid = crate::sys::effective_uid();
    if meta.is_file() && meta.uid() != 0 && meta.uid() != euid {
        bail!(
            "log file {} belongs to user id {}, not to root or user id {euid}",
            path.display(),
            meta.uid()
        );
    }
    Ok(())
}

/// The session's log: a sink, a level, and the session id that leads every line.
pub struct Log {
    sink: Sink,
    level: Level,
    id: u32,
}

impl Level {
    fn tag(self) -> &'static str {
        match self {
            Level::Flt => "FLT",
            Level::Err => "ERR",
            Level::Wrn => "WRN",
            Level::Inf => "INF",
            Level::Dbg => "DBG",
        }
    }
}

/// A log line for a file or pipe sink, with its newline.
fn file_line(id: u32, level: Level, msg: &str) -> String {
    let now = crate::sys::now();
    format!(
        "{} {} ftpgate[{id}]: {} {msg}\n",
        now.date(),
        now.time(),
        level.tag()
    )
}

impl Log {
    /// Open the configured destination. Syslog connects to /dev/log now; a
    /// file is opened for appending (created 0640); a pipe starts its command.
    pub fn open(dest: &LogDestination, level: Level) -> Result<Log> {
        let id = std::process::id();
        let sink = match dest {
            LogDestination::Syslog(facility) => {
                let facility: Facility = facility.parse().unwrap_or(Facility::LOG_DAEMON);
                let formatter = Formatter3164 {
                    facility,
                    hostname: None,
                    process: "ftpgate".into(),
                    pid: id,
                };
                match syslog::unix(formatter) {
                    Ok(logger) => Sink::Syslog(logger),
                    // No syslog daemon: losing log lines beats refusing service,
                    // and stderr may be the client socket under inetd.
                    Err(_) => Sink::Null,
                }
            }
            LogDestination::File(path) => {
                let file = OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o640)
                    .open(path)
                    .with_context(|| format!("opening log file {}", path.display()))?;
                check_meta(path, &file.metadata())?;
                Sink::File(file)
            }
            LogDestination::Pipe(command) => {
                let mut child = Command::new("/bin/sh")
                    .arg("-c")
                    .arg(command)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .with_context(|| format!("starting log command '{command}'"))?;
                let stdin = child.stdin.take().context("log command has no stdin")?;
                Sink::Pipe { child, stdin }
            }
        };
        Ok(Log { sink, level, id })
    }

    /// A log on standard error, for start-up before the configuration is read.
    pub fn stderr(level: Level) -> Log {
        Log {
            sink: Sink::Stderr,
            level,
            id: std::process::id(),
        }
    }

    /// The most detailed level written.
    pub fn level(&self) -> Level {
        self.level
    }

    pub fn enabled(&self, level: Level) -> bool {
        level <= self.level
    }

    /// Write one line at `level`, if the configured LogLevel lets it through.
    pub fn write(&mut self, level: Level, msg: &str) {
        if !self.enabled(level) {
            return;
        }
        let id = self.id;
        match &mut self.sink {
            Sink::Syslog(logger) => {
                let line = format!("#{id} {msg}");
                let _ = match level {
                    Level::Flt => logger.crit(line),
                    Level::Err => logger.err(line),
                    Level::Wrn => logger.warning(line),
                    Level::Inf => logger.info(line),
                    Level::Dbg => logger.debug(line),
                };
            }
            // One write(2) per line: every inetd session appends to the same
            // file or pipe, and a line written in pieces interleaves with
            // other sessions' lines (O_APPEND and PIPE_BUF make one write
            // atomic).
            Sink::File(f) => {
                let _ = f.write_all(file_line(id, level, msg).as_bytes());
            }
            Sink::Pipe { stdin, .. } => {
                let _ = stdin.write_all(file_line(id, level, msg).as_bytes());
                let _ = stdin.flush();
            }
            Sink::Stderr => eprintln!("ftpgate: {msg}"),
            Sink::Null => {}
        }
    }

    pub fn err(&mut self, msg: &str) {
        self.write(Level::Err, msg)
    }
    pub fn wrn(&mut self, msg: &str) {
        self.write(Level::Wrn, msg)
    }
    pub fn inf(&mut self, msg: &str) {
        self.write(Level::Inf, msg)
    }
    pub fn dbg(&mut self, msg: &str) {
        self.write(Level::Dbg, msg)
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        if let Sink::Pipe { .. } = self.sink {
            // Close the pipe first so the command sees end of input, then reap it.
            if let Sink::Pipe { child, stdin } = std::mem::replace(&mut self.sink, Sink::Null) {
                drop(stdin);
                let mut child = child;
                let _ = child.wait();
            }
        }
    }
}

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
use crate::session::{AuditEvent, AuditRecord, Direction, RefusalKind, Side, TransferRecord};

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
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Ok(m) if m.file_type().is_symlink() => {
            bail!("log file {} is a symbolic link", path.display())
        }
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
    id: String,
}

/// An id no other session of this host has had: the process id (which the
/// kernel hands out again within minutes on a busy host) and the start
/// time in milliseconds, base 36: `12282-mipq2f0b`.
pub fn session_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!("{}-{}", std::process::id(), base36(ms))
}

fn base36(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
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
fn file_line(id: &str, level: Level, msg: &str) -> String {
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
        let id = session_id();
        let sink = match dest {
            LogDestination::Syslog(facility) => {
                let facility: Facility = facility.parse().unwrap_or(Facility::LOG_DAEMON);
                let formatter = Formatter3164 {
                    facility,
                    hostname: None,
                    process: "ftpgate".into(),
                    pid: std::process::id(),
                };
                match syslog::unix(formatter) {
                    Ok(logger) => Sink::Syslog(logger),
                    // No syslog daemon: losing log lines beats refusing service,
                    // and stderr may be the client socket under inetd.
                    Err(_) => Sink::Null,
                }
            }
            LogDestination::File(path) => {
                // SECURITY: never through a symbolic link (one planted in
                // the log directory would aim root's appends at any file);
                // check_meta then judges what was really opened.
                let file = OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o640)
                    .custom_flags(libc::O_NOFOLLOW)
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
            id: session_id(),
        }
    }

    /// The session id that leads every line (also the audit trail's).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// In a process forked after the log was opened (the daemon once it
    /// has detached): its own id from now on, and syslog's pid.
    pub fn forked(&mut self) {
        self.id = session_id();
        if let Sink::Syslog(logger) = &mut self.sink {
            logger.formatter.pid = std::process::id();
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
        let id = &self.id;
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

/// The audit trail (SPEC 12): AuditLog, JSON Lines with one object per
/// event, and XferLog, one xferlog(5) line per file transfer. Both files
/// are opened before the jail, for appending, without following a
/// symbolic link, under the log file's safety rules; every line is one
/// write(2), so concurrent sessions never interleave or lose lines.
pub struct Trail {
    json: Option<File>,
    xfer: Option<File>,
    /// The session id, as at the head of the session's log lines.
    session: String,
}

impl Trail {
    /// Open what the configuration names; `id` is the session id.
    pub fn open(audit_log: Option<&Path>, xfer_log: Option<&Path>, id: &str) -> Result<Trail> {
        Ok(Trail {
            json: audit_log.map(open_append).transpose()?,
            xfer: xfer_log.map(open_append).transpose()?,
            session: id.to_string(),
        })
    }

    /// Write one record: an AuditLog line, and an XferLog line for a
    /// RETR/STOR/STOU/APPE. A failed write loses that line only.
    pub fn record(&mut self, r: &AuditRecord) {
        if let Some(file) = self.json.as_mut() {
            let mut line = audit_json(r, &self.session).to_string();
            line.push('\n');
            let _ = file.write(line.as_bytes());
        }
        if let (Some(file), AuditEvent::Transfer(t)) = (self.xfer.as_mut(), &r.event)
            && matches!(t.command.as_str(), "RETR" | "STOR" | "STOU" | "APPE")
        {
            let line = xferlog_line(&crate::sys::now(), r, t);
            let _ = file.write(line.as_bytes());
        }
    }
}

/// A trail file: appended to, created 0640, never through a symbolic link,
/// checked like a log file.
fn open_append(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    check_meta(path, &file.metadata())?;
    Ok(file)
}

/// The AuditLog object of a record (SPEC 12's fields).
fn audit_json(r: &AuditRecord, session: &str) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut o = Map::new();
    o.insert("time".into(), Value::String(rfc3339_utc(now)));
    let event = match &r.event {
        AuditEvent::SessionStart => "session_start",
        AuditEvent::Login => "login",
        AuditEvent::Refused {
            what: RefusalKind::Command,
            ..
        } => "command_refused",
        AuditEvent::Refused {
            what: RefusalKind::Destination,
            ..
        } => "destination_refused",
        AuditEvent::Refused {
            what: RefusalKind::Data,
            ..
        } => "data_refused",
        AuditEvent::Transfer(_) => "transfer",
        AuditEvent::SessionEnd { .. } => "session_end",
    };
    o.insert("event".into(), json!(event));
    o.insert("session".into(), json!(session));
    o.insert("client".into(), json!(r.client.to_string()));
    if let Some(s) = r.server {
        o.insert("server".into(), json!(s.to_string()));
    }
    if let Some(u) = &r.user {
        o.insert("user".into(), json!(u));
    }
    // Known from the start: a session without a class says so (null).
    o.insert("class".into(), json!(r.class));
    o.insert(
        "tls".into(),
        json!({ "client": r.tls.0, "server": r.tls.1 }),
    );
    let secs = |ms: u64| ms as f64 / 1000.0;
    match &r.event {
        AuditEvent::SessionStart | AuditEvent::Login => {}
        AuditEvent::Refused {
            subject,
            reply,
            rule,
            ..
        } => {
            o.insert("subject".into(), json!(subject));
            o.insert(
                "reply".into(),
                reply
                    .as_ref()
                    .map_or(Value::Null, |(code, text)| json!(format!("{code} {text}"))),
            );
            o.insert("rule".into(), json!(rule.at));
            o.insert("option".into(), json!(rule.option));
            o.insert("context".into(), json!(rule.context));
        }
        AuditEvent::Transfer(t) => {
            let mode = |s: Side| match s {
                Side::Passive => "passive",
                Side::Active => "active",
            };
            o.insert("command".into(), json!(t.command));
            o.insert("path".into(), json!(String::from_utf8_lossy(&t.path)));
            o.insert(
                "direction".into(),
                json!(match t.direction {
                    Direction::Download => "download",
                    Direction::Upload => "upload",
                }),
            );
            o.insert("bytes".into(), json!(t.bytes));
            o.insert("seconds".into(), json!(secs(t.millis)));
            o.insert("result".into(), json!(t.result));
            o.insert("client_mode".into(), json!(mode(t.client_mode)));
            o.insert("server_mode".into(), json!(mode(t.server_mode)));
        }
        AuditEvent::SessionEnd {
            reason,
            millis,
            transfers,
            bytes_down,
            bytes_up,
        } => {
            o.insert("reason".into(), json!(reason));
            o.insert("seconds".into(), json!(secs(*millis)));
            o.insert("transfers".into(), json!(transfers));
            o.insert("bytes_down".into(), json!(bytes_down));
            o.insert("bytes_up".into(), json!(bytes_up));
        }
    }
    Value::Object(o)
}

/// `2026-12-02T10:00:00.123Z` for a time since the epoch.
fn rfc3339_utc(since_epoch: std::time::Duration) -> String {
    let secs = since_epoch.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since_epoch.subsec_millis()
    )
}

/// One xferlog(5) line (the 14-field wu-ftpd/ProFTPD layout), with its
/// newline.
fn xferlog_line(now: &crate::sys::LocalTime, r: &AuditRecord, t: &TransferRecord) -> String {
    // The file name as the client gave it; white space and control bytes
    // would break the fields.
    let name: String = String::from_utf8_lossy(&t.path)
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let name = if name.is_empty() {
        "_".to_string()
    } else {
        name
    };
    let user: String = r
        .user
        .as_deref()
        .unwrap_or("*")
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!(
        "{} {} {} {} {} {} _ {} r {} ftp 0 * {}\n",
        now.ctime(),
        t.millis.div_ceil(1000).max(1),
        r.client.ip(),
        t.bytes,
        name,
        if t.binary { 'b' } else { 'a' },
        match t.direction {
            Direction::Download => 'o',
            Direction::Upload => 'i',
        },
        user,
        if t.result == "complete" { 'c' } else { 'i' },
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_session_id_is_the_pid_and_the_start_time_in_base_36() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        // 2026-12-02T16:26:11.123Z
        assert_eq!(base36(1_764_692_771_123), "miosigqb");
        let id = session_id();
        let (pid, stamp) = id.split_once('-').unwrap();
        assert_eq!(pid, std::process::id().to_string());
        assert!(
            stamp.len() == 8 && stamp.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{id}"
        );
        std::thread::sleep(Duration::from_millis(2));
        assert_ne!(
            session_id(),
            id,
            "the same process a moment later is another id"
        );
    }

    #[test]
    fn rfc3339_times_are_utc_with_milliseconds() {
        assert_eq!(
            rfc3339_utc(Duration::from_millis(0)),
            "1970-01-01T00:00:00.000Z"
        );
        // 2026-12-02 10:00:00.123 UTC
        assert_eq!(
            rfc3339_utc(Duration::from_millis(1_796_205_600_123)),
            "2026-12-02T10:00:00.123Z"
        );
        assert_eq!(
            rfc3339_utc(Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }

    fn record(t: TransferRecord) -> AuditRecord {
        AuditRecord {
            event: AuditEvent::Transfer(t),
            client: "192.0.2.10:40000".parse().unwrap(),
            server: None,
            user: Some("anna".into()),
            class: Some("internal".into()),
            tls: (true, false),
        }
    }

    #[test]
    fn an_xferlog_line_has_the_fourteen_fields() {
        let t = TransferRecord {
            command: "STOR".into(),
            path: b"my file\x01.txt".to_vec(),
            direction: Direction::Upload,
            bytes: 1234,
            millis: 10,
            result: "complete",
            client_mode: Side::Passive,
            server_mode: Side::Active,
            binary: true,
        };
        let now = crate::sys::LocalTime {
            weekday: 3,
            year: 2026,
            month: 12,
            day: 2,
            hour: 10,
            minute: 0,
            second: 0,
        };
        let line = xferlog_line(&now, &record(t.clone()), &t);
        assert_eq!(
            line,
            "Wed Dec  2 10:00:00 2026 1 192.0.2.10 1234 my_file_.txt b _ i r anna ftp 0 * c\n"
        );
        assert_eq!(line.split_whitespace().count(), 18); // ctime is 5 words
    }

    #[test]
    fn an_audit_object_carries_the_common_and_the_transfer_fields() {
        let t = TransferRecord {
            command: "RETR".into(),
            path: b"a \"quoted\" name".to_vec(),
            direction: Direction::Download,
            bytes: 7,
            millis: 1500,
            result: "aborted",
            client_mode: Side::Active,
            server_mode: Side::Passive,
            binary: false,
        };
        let v = audit_json(&record(t), "4242");
        let text = v.to_string();
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["event"], "transfer");
        assert_eq!(back["session"], "4242");
        assert_eq!(back["class"], "internal");
        assert_eq!(back["path"], "a \"quoted\" name");
        assert_eq!(back["direction"], "download");
        assert_eq!(back["seconds"], 1.5);
        assert_eq!(back["client_mode"], "active");
        assert_eq!(back["tls"]["client"], true);
        assert!(back["time"].as_str().unwrap().ends_with('Z'));
    }
}

//! Standalone mode (`-d`, or `ServerType standalone`): listen, admit or
//! refuse each connection, fork one child per session, and handle signals.
//!
//! The child makes the accepted socket its standard input and output and
//! then runs exactly the inetd session code ([`crate::serve_session`]) with
//! the configuration the daemon holds, so the two modes cannot drift apart.
//! The daemon itself never chroots nor drops privileges: each child does
//! that, as in inetd mode.
//!
//! One single-threaded loop sleeps in poll(2) on the listening socket and a
//! signalfd; nothing runs in a signal handler. Every check on a new
//! connection (TCPWrapper, MaxClients, ForkLimit) happens in the daemon
//! before the fork; a refused client gets one `421` reply and a log line.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cli::Options;
use crate::config::subst;
use crate::config::{Config, Level, LogDestination};
use crate::ftp::reply;
use crate::log::Log;
use crate::policy::hosts;
use crate::sys::daemon::{self as os, Forked};
use crate::sys::net;
use crate::sys::signals::{self, Event, Signals};
use crate::{ExitStatus, message_lines, multiline, vars};

/// hosts_access(5) tables read when TCPWrapper is on.
const HOSTS_ALLOW: &str = "/etc/hosts.allow";
const HOSTS_DENY: &str = "/etc/hosts.deny";
/// Environment variables that point the daemon at other tables (tests,
/// or a jail-style layout); read once at start-up.
const HOSTS_ALLOW_ENV: &str = "FTPGATE_HOSTS_ALLOW";
const HOSTS_DENY_ENV: &str = "FTPGATE_HOSTS_DENY";
/// TCPWrapperName when not given.
pub const DEFAULT_WRAPPER_NAME: &str = "ftpgate";
/// Largest hosts.allow/hosts.deny read, bytes; the daemon reads them for
/// every connection, so a runaway file must not stall it.
const MAX_HOSTS_SIZE: u64 = 256 * 1024;
/// The window ForkLimit counts new sessions in.
const FORK_WINDOW: Duration = Duration::from_secs(60);
/// How long sessions get to end after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed accept (EMFILE, ENOBUFS, ...), so a persistent
/// error cannot make the daemon spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(200);

/// ForkLimit: at most `limit` sessions started in any 60 seconds.
/// Pure: the caller passes the time.
#[derive(Debug)]
pub struct ForkRate {
    limit: usize,
    starts: VecDeque<Instant>,
}

impl ForkRate {
    pub fn new(limit: u32) -> ForkRate {
        ForkRate {
            limit: limit.max(1) as usize,
            starts: VecDeque::new(),
        }
    }

    /// True (and counted) if a session may start at `now`.
    pub fn admit(&mut self, now: Instant) -> bool {
        while self
            .starts
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= FORK_WINDOW)
        {
            self.starts.pop_front();
        }
        if self.starts.len() >= self.limit {
            return false;
        }
        self.starts.push_back(now);
        true
    }

    pub fn set_limit(&mut self, limit: u32) {
        self.limit = limit.max(1) as usize;
    }
}

/// The address Listen names: an IPv4 or IPv6 address (brackets allowed),
/// or a host name resolved once at start-up; 0.0.0.0 when not given.
pub fn listen_address(listen: Option<&str>) -> Result<IpAddr> {
    let Some(raw) = listen.map(str::trim) else {
        return Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    };
    let bare = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(raw);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip);
    }
    // ftpgate's own resolver, not glibc's (see sys/accounts.rs).
    crate::sys::resolve::Resolver::load()
        .lookup(bare)
        .map_err(|e| anyhow::anyhow!("resolving Listen '{raw}': {e}"))?
        .into_iter()
        .next()
        .with_context(|| format!("Listen '{raw}' has no address"))
}

/// Standalone mode. Returns in the daemon when it stops, and in each forked
/// child after its session (with the session's exit status).
pub fn run(opts: &Options, cfg: Config) -> Result<ExitStatus> {
    let mut opts = opts.clone();
    // Sessions know that the daemon has done the TCPWrapper check.
    opts.mode = Some(crate::cli::Mode::Daemon);
    // SIGHUP re-reads the file after the daemon changed to /.
    opts.config = std::path::absolute(&opts.config)
        .with_context(|| format!("locating {}", opts.config.display()))?;
    let ip = listen_address(cfg.listen.as_deref())?;
    let listener = os::listen(ip, cfg.port)
        .with_context(|| format!("listening on {}", SocketAddr::new(ip, cfg.port)))?;
    serve(&opts, cfg, listener)
}

/// Standalone mode on a listening socket a launcher handed over as
/// standard input (inetd "wait" style): in the foreground, on that socket
/// instead of Listen/Port, otherwise exactly like `-d -n`.
pub fn run_inherited(opts: &Options, cfg: Config, listener: TcpListener) -> Result<ExitStatus> {
    let mut opts = opts.clone();
    opts.mode = Some(crate::cli::Mode::Daemon);
    opts.foreground = true;
    opts.config = std::path::absolute(&opts.config)
        .with_context(|| format!("locating {}", opts.config.display()))?;
    serve(&opts, cfg, listener)
}

fn serve(opts: &Options, cfg: Config, listener: TcpListener) -> Result<ExitStatus> {
    let opts = opts.clone();
    let local = listener
        .local_addr()
        .context("reading the listening address")?;
    if let Some(p) = &cfg.pid_file {
        refuse_if_running(p)?;
    }
    os::close_inherited(&listener);
    crate::sys::load_timezone();
    let mut log = open_log(&cfg, &opts)?;
    if !opts.foreground {
        // A PidFile that cannot be written must fail the start while the
        // starter still waits for our exit status, not after the detach
        // (when it has seen 0). Rewritten below with the daemon's PID.
        if let Some(p) = &cfg.pid_file {
            write_pid_file(p).with_context(|| format!("cannot write PidFile {}", p.display()))?;
        }
        os::detach().context("detaching from the terminal")?;
        // The log was opened before the detach, in the starter's process.
        log.forked();
    }
    let signals = Signals::block().context("setting up signal handling")?;
    let pid_file = cfg.pid_file.clone();
    let mut d = Daemon {
        forks: ForkRate::new(cfg.fork_limit),
        opts,
        cfg,
        log,
        listener,
        signals,
        children: Vec::new(),
        hosts_allow: env_path(HOSTS_ALLOW_ENV, HOSTS_ALLOW),
        hosts_deny: env_path(HOSTS_DENY_ENV, HOSTS_DENY),
        pending: None,
    };
    if let Some(p) = &pid_file
        && let Err(e) = write_pid_file(p)
    {
        d.log
            .err(&format!("cannot write PidFile {}: {e}", p.display()));
        bail!("cannot write PidFile {}: {e}", p.display());
    }
    d.log.inf(&format!(
        "daemon start: listening on {}, MaxClients {}, ForkLimit {}/min{}",
        net::canonical(local),
        d.cfg.max_clients,
        d.cfg.fork_limit,
        if d.cfg.tcp_wrapper {
            ", TCPWrapper on"
        } else {
            ""
        }
    ));
    let outcome = d.serve();
    match outcome {
        Ok(Outcome::Child(stream)) => {
            let Daemon {
                opts,
                cfg,
                log,
                listener,
                signals,
                ..
            } = d;
            drop(listener);
            drop(log);
            signals.restore().context("restoring the signal mask")?;
            os::become_inetd_child(stream).context("handing the client socket over")?;
            crate::serve_session(&opts, cfg)
        }
        Ok(Outcome::Stopped) => {
            if let Some(p) = &pid_file {
                let _ = fs::remove_file(p);
            }
            Ok(0)
        }
        Err(e) => {
            d.log.err(&format!("daemon failed: {e:#}"));
            d.stop_children();
            if let Some(p) = &pid_file {
                let _ = fs::remove_file(p);
            }
            Err(e)
        }
    }
}

/// A PidFile naming a live ftpgate process (another daemon with the same
/// PidFile) stops this start: overwriting it, and removing it when we
/// stop, would leave the other daemon without one. A stale file (no such
/// process, or another program by now) is simply replaced.
fn refuse_if_running(path: &Path) -> Result<()> {
    let Ok(text) = fs::read_to_string(path) else {
        return Ok(());
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return Ok(());
    };
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if pid != std::process::id() && comm.trim_end() == "ftpgate" {
        bail!(
            "PidFile {} names ftpgate process {pid}, which is still running",
            path.display()
        );
    }
    Ok(())
}

/// Write PidFile as a new file, mode 0644. A stale file is removed first,
/// so that neither its mode (a world-writable PID file lets anyone aim an
/// administrator's `kill $(cat ...)` at another process) nor a symbolic
/// link left in its place carries over.
fn write_pid_file(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = os::create_pid_file(path)?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())
}

fn env_path(var: &str, default: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(default),
    }
}

fn open_log(cfg: &Config, opts: &Options) -> Result<Log> {
    let level = if opts.verbosity > 0 {
        Level::Dbg
    } else {
        cfg.log_level
    };
    Log::open(&cfg.log_destination, level)
}

enum Outcome {
    /// A signal ended the daemon; children are gone.
    Stopped,
    /// We are a freshly forked child with its client.
    Child(TcpStream),
}

struct Daemon {
    opts: Options,
    cfg: Config,
    log: Log,
    listener: TcpListener,
    signals: Signals,
    /// PIDs of live session children.
    children: Vec<i32>,
    forks: ForkRate,
    hosts_allow: PathBuf,
    hosts_deny: PathBuf,
    /// In a freshly forked child: its client connection.
    pending: Option<TcpStream>,
}

impl Daemon {
    fn serve(&mut self) -> Result<Outcome> {
        loop {
            let (conn, sig) = os::wait(self.listener.as_fd(), self.signals.as_fd())
                .context("waiting for connections")?;
            if sig {
                for ev in self.signals.pending().context("reading signals")? {
                    match ev {
                        Event::Stop(n) => {
                            self.log.inf(&format!(
                                "{}: stopping, ending {} session(s)",
                                signals::name(n),
                                self.children.len()
                            ));
                            self.stop_children();
                            self.log.inf("daemon stopped");
                            return Ok(Outcome::Stopped);
                        }
                        Event::Reload => self.reload(),
                        Event::Rotate => self.rotate(),
                        Event::Child => self.reap(),
                    }
                }
            }
            if conn {
                // Drain what is queued; accept returns None when empty.
                loop {
                    let (stream, peer) = match os::accept(&self.listener) {
                        Ok(Some(c)) => c,
                        Ok(None) => break,
                        Err(e) => {
                            // Out of descriptors or memory: a transient
                            // state. Log it, and pause briefly (still
                            // woken by signals) instead of spinning.
                            self.log.err(&format!("cannot accept a connection: {e}"));
                            let _ = os::wait_readable(self.signals.as_fd(), ACCEPT_PAUSE);
                            break;
                        }
                    };
                    if self.admit(stream, net::canonical(peer)) {
                        // Only the child gets here (admit forked).
                        return Ok(Outcome::Child(self.take_pending()?));
                    }
                }
            }
        }
    }

    /// Check a new connection and fork its session. Returns true in the
    /// child (the stream is parked in `pending`), false in the daemon.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) -> bool {
        let who = format!("client {peer}");
        // SECURITY: access control before any resource is spent on the client.
        if self.cfg.tcp_wrapper {
            let verdict = self.wrapper_verdict(peer.ip());
            if !verdict.allowed {
                self.log
                    .wrn(&format!("{who} refused by TCPWrapper: {}", verdict.reason));
                os::refuse(
                    stream,
                    &reply::line(reply::SERVICE_NOT_AVAILABLE, b"Access denied."),
                );
                return false;
            }
            self.log
                .dbg(&format!("{who} allowed by TCPWrapper: {}", verdict.reason));
        }
        // An accurate count: a session that just ended must not be counted.
        self.reap();
        // SECURITY: bounded number of concurrent sessions (MaxClients).
        if self.children.len() >= self.cfg.max_clients as usize {
            self.log.wrn(&format!(
                "{who} refused: MaxClients {} reached",
                self.cfg.max_clients
            ));
            let v = vars();
            let lines = self
                .cfg
                .max_clients_message
                .as_deref()
                .and_then(|p| message_lines(p, &v, &mut self.log))
                .unwrap_or_default();
            let text = subst::expand(&self.cfg.max_clients_string, &v);
            os::refuse(
                stream,
                &multiline(reply::SERVICE_NOT_AVAILABLE, &lines, &text),
            );
            return false;
        }
        // SECURITY: bounded rate of new sessions (ForkLimit per minute).
        if !self.forks.admit(Instant::now()) {
            self.log.wrn(&format!(
                "{who} refused: ForkLimit {} sessions per minute reached",
                self.cfg.fork_limit
            ));
            os::refuse(
                stream,
                &reply::line(
                    reply::SERVICE_NOT_AVAILABLE,
                    b"Too many new connections, try again later.",
                ),
            );
            return false;
        }
        match os::fork() {
            Ok(Forked::Parent(pid)) => {
                self.children.push(pid);
                self.log.inf(&format!(
                    "{who}: session process {pid} ({} active)",
                    self.children.len()
                ));
                false
            }
            Ok(Forked::Child) => {
                self.pending = Some(stream);
                true
            }
            Err(e) => {
                self.log.err(&format!("{who}: cannot fork: {e}"));
                os::refuse(
                    stream,
                    &reply::line(
                        reply::SERVICE_NOT_AVAILABLE,
                        b"Service not available, try again later.",
                    ),
                );
                false
            }
        }
    }

    fn take_pending(&mut self) -> Result<TcpStream> {
        self.pending
            .take()
            .context("forked child without its connection")
    }

    /// Read hosts.allow/hosts.deny (bounded) and decide for `ip`.
    fn wrapper_verdict(&self, ip: IpAddr) -> hosts::Verdict {
        wrapper_verdict(&self.cfg, &self.hosts_allow, &self.hosts_deny, ip)
    }

    fn reap(&mut self) {
        for r in os::reap() {
            if let Some(i) = self.children.iter().position(|&p| p == r.pid) {
                self.children.swap_remove(i);
                self.log.dbg(&format!(
                    "session process {} ended with status {}",
                    r.pid, r.status
                ));
            }
        }
    }

    /// SIGHUP: new sessions get the new configuration; a broken file is
    /// logged error by error and the old configuration stays.
    fn reload(&mut self) {
        let new = match Config::load(&self.opts.config) {
            Ok(c) => c,
            Err(errors) => {
                for e in &errors {
                    self.log.err(&format!("SIGHUP: configuration error: {e}"));
                }
                if errors.is_empty() {
                    self.log.err(&format!(
                        "SIGHUP: cannot read {}",
                        self.opts.config.display()
                    ));
                }
                self.log.wrn("SIGHUP: keeping the previous configuration");
                return;
            }
        };
        if new.listen != self.cfg.listen || new.port != self.cfg.port {
            self.log
                .wrn("SIGHUP: Listen and Port changes take effect only after a restart");
        }
        match open_log(&new, &self.opts) {
            Ok(l) => self.log = l,
            Err(e) => self.log.err(&format!(
                "SIGHUP: cannot open the new log destination, keeping the old one: {e:#}"
            )),
        }
        self.forks.set_limit(new.fork_limit);
        self.cfg = new;
        self.log.inf(&format!(
            "SIGHUP: configuration {} reloaded",
            self.opts.config.display()
        ));
    }

    /// SIGUSR1: rename a log file to a date-time suffix and open a new one.
    fn rotate(&mut self) {
        let LogDestination::File(path) = &self.cfg.log_destination else {
            self.log
                .inf("SIGUSR1: the log is not a file, nothing to rotate");
            return;
        };
        let path = path.clone();
        let target = rotated_name(&path, |p| p.exists());
        self.log.inf(&format!(
            "SIGUSR1: rotating the log to {}",
            target.display()
        ));
        if let Err(e) = fs::rename(&path, &target) {
            self.log.err(&format!(
                "SIGUSR1: cannot rename {} to {}: {e}",
                path.display(),
                target.display()
            ));
            return;
        }
        match open_log(&self.cfg, &self.opts) {
            Ok(l) => {
                self.log = l;
                self.log.inf(&format!(
                    "SIGUSR1: log rotated, the previous one is {}",
                    target.display()
                ));
            }
            Err(e) => self
                .log
                .err(&format!("SIGUSR1: cannot reopen the log: {e:#}")),
        }
    }

    /// SIGTERM every session, give them STOP_GRACE to end, then SIGKILL.
    fn stop_children(&mut self) {
        for &pid in &self.children {
            os::terminate(pid);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while !self.children.is_empty() {
            self.reap();
            let left = deadline.saturating_duration_since(Instant::now());
            if self.children.is_empty() || left.is_zero() {
                break;
            }
            // Sleep until a SIGCHLD arrives (or the grace period ends).
            if os::wait_readable(self.signals.as_fd(), left).unwrap_or(false) {
                let _ = self.signals.pending();
            }
        }
        for &pid in &self.children {
            self.log
                .wrn(&format!("session process {pid} did not end, killing it"));
            os::kill(pid);
        }
        let stubborn = std::mem::take(&mut self.children);
        if !stubborn.is_empty() {
            let deadline = Instant::now() + Duration::from_secs(1);
            let mut left = stubborn;
            while !left.is_empty() && Instant::now() < deadline {
                let _ = os::wait_readable(self.signals.as_fd(), Duration::from_millis(100));
                let _ = self.signals.pending();
                for r in os::reap() {
                    left.retain(|&p| p != r.pid);
                }
            }
        }
    }
}

/// The TCPWrapper decision for `ip` under TCPWrapperName, from the tables
/// `FTPGATE_HOSTS_ALLOW` / `FTPGATE_HOSTS_DENY` name (default
/// /etc/hosts.allow and /etc/hosts.deny); read now, bounded.
pub fn tcp_wrapper_verdict(cfg: &Config, ip: IpAddr) -> hosts::Verdict {
    let allow = env_path(HOSTS_ALLOW_ENV, HOSTS_ALLOW);
    let deny = env_path(HOSTS_DENY_ENV, HOSTS_DENY);
    wrapper_verdict(cfg, &allow, &deny, ip)
}

fn wrapper_verdict(
    cfg: &Config,
    allow_path: &Path,
    deny_path: &Path,
    ip: IpAddr,
) -> hosts::Verdict {
    let name = cfg
        .tcp_wrapper_name
        .as_deref()
        .unwrap_or(DEFAULT_WRAPPER_NAME);
    let allow = match read_table(allow_path) {
        Ok(t) => t,
        Err(why) => return unreadable(why),
    };
    let deny = match read_table(deny_path) {
        Ok(t) => t,
        Err(why) => return unreadable(why),
    };
    let allow_name = allow_path.display().to_string();
    let deny_name = deny_path.display().to_string();
    hosts::decide(
        hosts::Table {
            name: &allow_name,
            text: &allow,
        },
        hosts::Table {
            name: &deny_name,
            text: &deny,
        },
        name,
        ip,
    )
}

fn unreadable(why: String) -> hosts::Verdict {
    // SECURITY: fail closed when the access tables cannot be read.
    hosts::Verdict {
        allowed: false,
        reason: why,
    }
}

/// A hosts table as text: a missing file is empty (hosts_access(5)); a
/// file that exists but cannot be read is an error.
fn read_table(path: &Path) -> std::result::Result<String, String> {
    match fs::File::open(path) {
        Ok(f) => {
            let mut bytes = Vec::new();
            f.take(MAX_HOSTS_SIZE)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read {}: {e} (fail closed)", path.display()))?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!("cannot open {}: {e} (fail closed)", path.display())),
    }
}

/// `PATH.YYYYMMDD-HHMMSS`, with `.N` added while such a file exists.
fn rotated_name(path: &Path, exists: impl Fn(&Path) -> bool) -> PathBuf {
    let t = crate::sys::now();
    let base = format!(
        "{}.{:04}{:02}{:02}-{:02}{:02}{:02}",
        path.display(),
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second
    );
    let mut candidate = PathBuf::from(&base);
    let mut n = 1;
    while exists(&candidate) && n < 1000 {
        candidate = PathBuf::from(format!("{base}.{n}"));
        n += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_limit_counts_sessions_in_a_sliding_minute() {
        let t0 = Instant::now();
        let mut r = ForkRate::new(3);
        assert!(r.admit(t0));
        assert!(r.admit(t0 + Duration::from_secs(10)));
        assert!(r.admit(t0 + Duration::from_secs(20)));
        assert!(!r.admit(t0 + Duration::from_secs(30)));
        assert!(!r.admit(t0 + Duration::from_secs(59)));
        // The first start left the window.
        assert!(r.admit(t0 + Duration::from_secs(60)));
        assert!(!r.admit(t0 + Duration::from_secs(61)));
        assert!(r.admit(t0 + Duration::from_secs(71)));
    }

    #[test]
    fn refused_attempts_do_not_use_up_the_limit() {
        let t0 = Instant::now();
        let mut r = ForkRate::new(1);
        assert!(r.admit(t0));
        for s in 1..50 {
            assert!(!r.admit(t0 + Duration::from_secs(s)));
        }
        assert!(r.admit(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn listen_accepts_ipv4_ipv6_brackets_and_defaults_to_any() {
        let cases = [
            (None, "0.0.0.0"),
            (Some("127.0.0.1"), "127.0.0.1"),
            (Some("::"), "::"),
            (Some("[::1]"), "::1"),
            (Some(" 192.0.2.1 "), "192.0.2.1"),
        ];
        for (given, want) in cases {
            let got = listen_address(given).unwrap();
            assert_eq!(got, want.parse::<IpAddr>().unwrap(), "{given:?}");
        }
    }

    #[test]
    fn rotated_names_get_a_date_suffix_and_never_overwrite() {
        let p = Path::new("/var/log/ftpgate.log");
        let first = rotated_name(p, |_| false);
        let s = first.display().to_string();
        assert!(s.starts_with("/var/log/ftpgate.log."), "{s}");
        let suffix = &s["/var/log/ftpgate.log.".len()..];
        assert_eq!(suffix.len(), 15, "{suffix}");
        assert_eq!(&suffix[8..9], "-");
        let taken = first.clone();
        let second = rotated_name(p, |c| c == taken);
        assert_eq!(second, PathBuf::from(format!("{s}.1")));
    }
}

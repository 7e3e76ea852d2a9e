//! Helpers for ftpgate's integration tests: real FTP servers (pyftpdlib,
//! vsftpd), the proxy under test behind socat, real clients (curl, lftp,
//! Python ftplib) and a raw control-connection client.
//!
//! Every process started here is owned by a guard that kills it (and the
//! processes it forked, found through /proc, each by its PID) on drop.
//! Every wait is bounded. All traffic stays on 127.0.0.1.
//!
//! The proxy binary under test is `FTPGATE_TEST_BIN` when set (for example
//! `/usr/sbin/ftp-proxy`, to run the compatibility suite against Debian's
//! ftp-proxy), else the `ftpgate` binary built by cargo.

// Tests may call libc directly (kill, umask, ...), each block with a
// `// SAFETY:` comment; the crate-wide deny is for src/.
#![allow(unsafe_code)]
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Upper bound for any client command (curl, lftp, python).
pub const CLIENT_SECS: u64 = 120;
/// Upper bound for a daemon to start listening.
pub const START_SECS: u64 = 20;
/// Upper bound for one reply on a raw control connection.
pub const REPLY_SECS: u64 = 20;

// ---------------------------------------------------------------------------
// The binary under test

/// Path of the proxy binary under test.
pub fn proxy_bin() -> PathBuf {
    match std::env::var_os("FTPGATE_TEST_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_ftpgate")),
    }
}

/// True when the binary under test is Debian's ftp-proxy, not ftpgate.
pub fn testing_ftp_proxy() -> bool {
    proxy_bin()
        .file_name()
        .map(|n| n.to_string_lossy().contains("ftp-proxy"))
        .unwrap_or(false)
}

/// Call at the top of a test of ftpgate-only behaviour: returns true (and
/// says so) when the test must be skipped because the binary under test is
/// ftp-proxy. `FTPGATE_TEST_STRICT=1` runs such tests anyway.
pub fn skip_unless_ftpgate(test: &str) -> bool {
    if testing_ftp_proxy() && std::env::var_os("FTPGATE_TEST_STRICT").is_none() {
        eprintln!("SKIP {test}: ftpgate-only behaviour, binary under test is ftp-proxy");
        return true;
    }
    false
}

/// Call at the top of a test where Debian's ftp-proxy 1.9 is known to
/// behave differently (`why` says how): skipped, with a note, when the
/// binary under test is ftp-proxy, unless `FTPGATE_TEST_STRICT=1`.
pub fn skip_known_ftp_proxy_difference(test: &str, why: &str) -> bool {
    if testing_ftp_proxy() && std::env::var_os("FTPGATE_TEST_STRICT").is_none() {
        eprintln!("SKIP {test}: known ftp-proxy difference: {why}");
        return true;
    }
    false
}

// ---------------------------------------------------------------------------
// Temporary directories

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "ftpgate-test-{}-{}-{}-{}",
            tag,
            std::process::id(),
            n,
            nanos
        ));
        fs::create_dir_all(&path).expect("create temp dir");
        set_mode(&path, 0o755);
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("FTPGATE_TEST_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.path);
        } else {
            eprintln!("kept {}", self.path.display());
        }
    }
}

pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
}

// ---------------------------------------------------------------------------
// Processes

/// A free TCP port on 127.0.0.1 (bound to port 0, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A port on 127.0.0.1 where nothing listens (a connection is refused).
/// Another test may take a port the moment `free_port` lets it go, so a
/// port found listening is passed over rather than failing the test.
pub fn dead_port() -> u16 {
    loop {
        let p = free_port();
        if !is_listening(p) {
            return p;
        }
    }
}

/// Parent PID of `pid`, from /proc.
fn ppid_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Process state letter of `pid` ('Z' for a zombie), from /proc.
pub fn state_of(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.chars().next()
}

/// All live (non-zombie) descendants of `root`, found through /proc.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut all: Vec<(u32, u32)> = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let pid = e.file_name().to_string_lossy().parse::<u32>();
            if let Some((pid, pp)) = pid.ok().and_then(|p| Some((p, ppid_of(p)?))) {
                all.push((pid, pp));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(c, pp) in &all {
            if pp == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out.retain(|&p| !matches!(state_of(p), Some('Z') | None));
    out
}

/// A started daemon: killed, with everything it forked, on drop.
pub struct Daemon {
    pub name: String,
    pub child: Child,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Daemon {
    /// Start `cmd` with stdout/stderr going to files in `dir`.
    pub fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Daemon {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(&stderr).unwrap());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Daemon {
            name: name.to_string(),
            child,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn output(&self) -> String {
        format!(
            "--- {} stdout ---\n{}\n--- {} stderr ---\n{}",
            self.name,
            fs::read_to_string(&self.stdout).unwrap_or_default(),
            self.name,
            fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// Wait (bounded) until the daemon itself listens on 127.0.0.1:port;
    /// panics with the daemon's output if it exits or never listens.
    pub fn wait_listening(&mut self, port: u16) {
        if !self.try_wait_listening(port) {
            panic!(
                "{} exited before listening on 127.0.0.1:{port}\n{}",
                self.name,
                self.output()
            );
        }
    }

    /// Like `wait_listening`, but false when the daemon exited first (for
    /// example because another test took the port in the meantime). Only a
    /// listening socket that this daemon holds counts, never another
    /// process's on the same port.
    pub fn try_wait_listening(&mut self, port: u16) -> bool {
        let deadline = Instant::now() + Duration::from_secs(START_SECS);
        loop {
            if listening_in(self.child.id(), port) {
                return true;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} not listening on 127.0.0.1:{port} after {START_SECS}s\n{}",
                    self.name,
                    self.output()
                );
            }
            sleep(Duration::from_millis(50));
        }
    }
}

/// Start the daemon that `command(port)` builds on a free port of
/// 127.0.0.1 and wait until it listens there. A port that another test
/// takes between `free_port` and the daemon's bind makes the daemon exit:
/// then it is started again on another port (three tries).
pub fn spawn_on_free_port(
    name: &str,
    dir: &Path,
    mut command: impl FnMut(u16) -> Command,
) -> (u16, Daemon) {
    for _ in 0..3 {
        let port = free_port();
        let mut daemon = Daemon::spawn(name, command(port), dir);
        if daemon.try_wait_listening(port) {
            return (port, daemon);
        }
    }
    let port = free_port();
    let mut daemon = Daemon::spawn(name, command(port), dir);
    daemon.wait_listening(port);
    (port, daemon)
}

/// Whether process `pid` (or one of its descendants) holds a socket in
/// LISTEN state on 127.0.0.1:port or 0.0.0.0:port.
fn listening_in(pid: u32, port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    let want_any = format!("00000000:{port:04X}");
    let inodes: Vec<String> = fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && (f[1] == want || f[1] == want_any) && f[3] == "0A")
                .then(|| format!("socket:[{}]", f[9]))
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    std::iter::once(pid).chain(descendants(pid)).any(|p| {
        fs::read_dir(format!("/proc/{p}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| fs::read_link(e.path()).ok())
            .any(|link| inodes.iter().any(|i| link.as_os_str() == i.as_str()))
    })
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id();
        let kids = descendants(pid);
        let _ = self.child.kill();
        for k in kids {
            // SAFETY: kill(2) of a PID we started (directly or via fork).
            unsafe {
                libc::kill(k as libc::pid_t, libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}

/// True if a socket is in LISTEN state on 127.0.0.1:port (from /proc/net/tcp).
pub fn is_listening(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    let want_any = format!("00000000:{port:04X}");
    fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && (f[1] == want || f[1] == want_any) && f[3] == "0A"
        })
}

/// Connections from 127.0.0.1 to 127.0.0.1:port in ESTABLISHED state, seen
/// from the connecting side (from /proc/net/tcp).
pub fn connections_to(port: u16) -> usize {
    let want = format!("0100007F:{port:04X}");
    fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2] == want && f[3] == "01"
        })
        .count()
}

/// Result of a bounded client command.
pub struct Ran {
    /// None when the command was killed at its time limit.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.status.map(|s| s.success()).unwrap_or(false)
    }
    pub fn describe(&self) -> String {
        format!(
            "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Run a client command, killed (by PID) after `secs` seconds.
pub fn run_bounded(mut cmd: Command, secs: u64) -> Ran {
    let dir = TempDir::new("run");
    let out = dir.join("stdout");
    let err = dir.join("stderr");
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            _ => sleep(Duration::from_millis(20)),
        }
    };
    Ran {
        status,
        stdout: String::from_utf8_lossy(&fs::read(&out).unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&fs::read(&err).unwrap_or_default()).into_owned(),
    }
}

/// Poll `f` every 50 ms until it returns true or `secs` pass.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// FTP servers

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    Pyftpdlib,
    Vsftpd,
}

/// A real FTP server on 127.0.0.1, serving `root`.
pub struct FtpServer {
    pub kind: ServerKind,
    pub port: u16,
    /// The writable directory the tests use (the login directory for
    /// pyftpdlib, `pub/` below it for vsftpd, whose anonymous root must not
    /// be writable).
    pub root: PathBuf,
    /// Path of `root` as the client sees it, relative to the login
    /// directory: "" or "pub/".
    pub sub: &'static str,
    daemon: Daemon,
    _dir: TempDir,
}

pub fn python() -> String {
    std::env::var("FTPGATE_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

impl FtpServer {
    pub fn start(kind: ServerKind) -> FtpServer {
        match kind {
            ServerKind::Pyftpdlib => Self::pyftpdlib(),
            ServerKind::Vsftpd => Self::vsftpd(),
        }
    }

    pub fn pyftpdlib() -> FtpServer {
        Self::pyftpdlib_with_idle_timeout(None)
    }

    /// pyftpdlib that closes control connections idle for `secs` (with a
    /// 421), before and after login.
    pub fn pyftpdlib_with_idle_timeout(secs: Option<u32>) -> FtpServer {
        let dir = TempDir::new("pyftpd");
        let root = dir.join("root");
        fs::create_dir_all(&root).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyftpd.py");
        let (port, daemon) = spawn_on_free_port("pyftpdlib", dir.path(), |port| {
            let mut cmd = Command::new(python());
            cmd.arg(&script).arg(port.to_string()).arg(&root);
            if let Some(secs) = secs {
                cmd.env("PYFTPD_IDLE_TIMEOUT", secs.to_string());
            }
            cmd
        });
        FtpServer {
            kind: ServerKind::Pyftpdlib,
            port,
            root,
            sub: "",
            daemon,
            _dir: dir,
        }
    }

    pub fn vsftpd() -> FtpServer {
        let dir = TempDir::new("vsftpd");
        let top = dir.join("root");
        fs::create_dir_all(&top).unwrap();
        let root = top.join("pub");
        fs::create_dir_all(&root).unwrap();
        set_mode(&root, 0o777);
        let _ = fs::create_dir_all("/var/run/vsftpd/empty");
        let port = free_port();
        let conf = dir.join("vsftpd.conf");
        let body = vsftpd_conf(
            port,
            &top,
            dir.path(),
            "xferlog_enable=NO\nftpd_banner=vsftpd test server ready.\n",
        );
        fs::write(&conf, body).unwrap();
        set_mode(&conf, 0o600);
        let mut cmd = Command::new(vsftpd_bin());
        cmd.arg(&conf);
        let mut daemon = Daemon::spawn("vsftpd", cmd, dir.path());
        daemon.wait_listening(port);
        FtpServer {
            kind: ServerKind::Vsftpd,
            port,
            root,
            sub: "pub/",
            daemon,
            _dir: dir,
        }
    }

    pub fn user(&self) -> &'static str {
        match self.kind {
            ServerKind::Pyftpdlib => "test",
            ServerKind::Vsftpd => "anonymous",
        }
    }

    pub fn pass(&self) -> &'static str {
        match self.kind {
            ServerKind::Pyftpdlib => "secret",
            ServerKind::Vsftpd => "ftpgate@example.org",
        }
    }

    /// Put a file with `data` into the served directory.
    pub fn put(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.root.join(name);
        fs::write(&p, data).unwrap();
        set_mode(&p, 0o666);
        p
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn output(&self) -> String {
        self.daemon.output()
    }
}

// ---------------------------------------------------------------------------
// The proxy under test, behind socat

/// The proxy under test, launched per connection by
/// `socat TCP-LISTEN:port,bind=127.0.0.1,reuseaddr,fork EXEC:"BIN -i -f CONF",nofork`.
pub struct Proxy {
    pub port: u16,
    pub conf: PathBuf,
    pub log: PathBuf,
    daemon: Daemon,
    dir: TempDir,
}

impl Proxy {
    /// Start the proxy in front of `dest_port` with the base configuration
    /// (DestinationAddress 127.0.0.1, DestinationPort, LogDestination) plus
    /// `extra` lines appended (global options first, user contexts last).
    pub fn start(dest_port: u16, extra: &str) -> Proxy {
        let dir = TempDir::new("proxy");
        let log = dir.join("proxy.log");
        let body = format!(
            "# written by ftpgate's integration tests\n\
             DestinationAddress 127.0.0.1\n\
             DestinationPort {dest_port}\n\
             LogDestination {}\n\
             {extra}\n",
            log.display()
        );
        Self::start_with_conf(&proxy_bin(), dir, &body, log)
    }

    /// Start the proxy with a complete configuration `body` (its log, if
    /// any, is wherever `body` says).
    pub fn start_raw(body: &str) -> Proxy {
        Self::start_raw_with_bin(&proxy_bin(), body)
    }

    /// Like `start_raw`, with an explicit proxy binary.
    pub fn start_raw_with_bin(bin: &Path, body: &str) -> Proxy {
        let dir = TempDir::new("proxy");
        let log = dir.join("proxy.log");
        Self::start_with_conf(bin, dir, body, log)
    }

    fn start_with_conf(bin: &Path, dir: TempDir, body: &str, log: PathBuf) -> Proxy {
        let conf = dir.join("proxy.conf");
        fs::write(&conf, body).unwrap();
        let (port, daemon) = spawn_on_free_port("socat", dir.path(), |port| {
            let mut cmd = Command::new("socat");
            cmd.arg(format!(
                "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,backlog=64"
            ))
            .arg(format!(
                "EXEC:\"{} -i -f {}\",nofork",
                bin.display(),
                conf.display()
            ));
            cmd
        });
        Proxy {
            port,
            conf,
            log,
            daemon,
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Contents of the proxy's log file ("" if absent).
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Live proxy session processes (children of socat).
    pub fn sessions(&self) -> Vec<u32> {
        descendants(self.daemon.pid())
    }

    pub fn output(&self) -> String {
        format!(
            "{}\n--- proxy log ---\n{}",
            self.daemon.output(),
            self.log_text()
        )
    }

    /// Base URL with credentials, e.g. `ftp://test:secret@127.0.0.1:PORT`.
    pub fn url(&self, user: &str, pass: &str) -> String {
        format!(
            "ftp://{}:{}@127.0.0.1:{}",
            url_escape(user),
            url_escape(pass),
            self.port
        )
    }
}

pub fn url_escape(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

// ---------------------------------------------------------------------------
// Clients

/// Client data-connection mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMode {
    /// PASV (EPSV disabled).
    Passive,
    /// PORT 127.0.0.1 (EPRT disabled).
    Active,
}

/// curl with `--max-time`, plain PASV/PORT (no EPSV/EPRT) and `args`.
pub fn curl(mode: ClientMode, args: &[&str]) -> Ran {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-S",
        "--max-time",
        "100",
        "--disable-epsv",
        "--disable-eprt",
    ]);
    if mode == ClientMode::Active {
        cmd.args(["--ftp-port", "127.0.0.1"]);
    }
    cmd.args(args);
    run_bounded(cmd, CLIENT_SECS)
}

/// lftp running `script` (commands separated by `;`) logged in as user/pass.
pub fn lftp(port: u16, user: &str, pass: &str, mode: ClientMode, script: &str) -> Ran {
    let passive = if mode == ClientMode::Passive {
        "on"
    } else {
        "off"
    };
    let full = format!(
        "set ftp:passive-mode {passive}; set ftp:ssl-allow no; set ftp:prefer-epsv no; \
         set net:max-retries 1; set net:timeout 20; set net:reconnect-interval-base 1; \
         set cmd:fail-exit yes; {script}; bye"
    );
    let mut cmd = Command::new("lftp");
    cmd.arg("-u")
        .arg(format!("{user},{pass}"))
        .arg("-e")
        .arg(full)
        .arg(format!("ftp://127.0.0.1:{port}"));
    run_bounded(cmd, CLIENT_SECS)
}

/// Run a Python (ftplib) script with arguments.
pub fn python_script(script: &str, args: &[&str]) -> Ran {
    let mut cmd = Command::new(python());
    cmd.arg("-c").arg(script).args(args);
    run_bounded(cmd, CLIENT_SECS)
}

/// Deterministic pseudo-random bytes (xorshift64*), so no crate is needed.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Assert two byte strings are equal without printing megabytes.
pub fn assert_same_bytes(what: &str, got: &[u8], want: &[u8]) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {} bytes, first difference at {:?}",
            got.len(),
            want.len(),
            first
        );
    }
}

/// Wait (bounded) until `path` holds exactly `len` bytes; returns its bytes.
pub fn wait_for_file(path: &Path, len: usize) -> Vec<u8> {
    wait_until(15, || {
        fs::metadata(path)
            .map(|m| m.len() as usize == len)
            .unwrap_or(false)
    });
    fs::read(path).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Raw control connection

/// One FTP reply: its code and every line (without CRLF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// A raw control connection for exact reply checks.
pub struct Ctrl {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Ctrl {
    pub fn connect(port: u16) -> Ctrl {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to proxy");
        s.set_read_timeout(Some(Duration::from_secs(REPLY_SECS)))
            .unwrap();
        s.set_write_timeout(Some(Duration::from_secs(REPLY_SECS)))
            .unwrap();
        Ctrl {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }

    pub fn set_read_timeout(&self, secs: u64) {
        self.w
            .set_read_timeout(Some(Duration::from_secs(secs)))
            .unwrap();
    }

    /// Read one line; None on EOF, Err on timeout or error.
    pub fn read_line(&mut self) -> std::io::Result<Option<String>> {
        let mut buf = Vec::new();
        let n = self.r.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        while matches!(buf.last(), Some(b'\n') | Some(b'\r')) {
            buf.pop();
        }
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }

    /// Read one complete (possibly multi-line) reply; None on EOF.
    pub fn try_reply(&mut self) -> std::io::Result<Option<Reply>> {
        let first = match self.read_line()? {
            Some(l) => l,
            None => return Ok(None),
        };
        let code: u16 = first
            .get(..3)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("not an FTP reply line: {first:?}"));
        let mut lines = vec![first.clone()];
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            loop {
                match self.read_line()? {
                    Some(l) => {
                        let done = l.starts_with(&end) || l == end.trim_end();
                        lines.push(l);
                        if done {
                            break;
                        }
                    }
                    None => panic!("EOF inside multi-line reply: {lines:?}"),
                }
                if lines.len() > 10_000 {
                    panic!("endless multi-line reply");
                }
            }
        }
        Ok(Some(Reply { code, lines }))
    }

    /// Read one reply; panics on EOF or timeout.
    pub fn reply(&mut self) -> Reply {
        match self.try_reply() {
            Ok(Some(r)) => r,
            Ok(None) => panic!("connection closed while waiting for a reply"),
            Err(e) => panic!("no reply within {REPLY_SECS}s: {e}"),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.w
            .write_all(bytes)
            .expect("write to control connection");
    }

    /// Send one command line (CRLF added) and read its reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send_raw(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Read the greeting, then USER/PASS; panics unless logged in (230).
    pub fn login(port: u16, user: &str, pass: &str) -> Ctrl {
        let mut c = Ctrl::connect(port);
        let g = c.reply();
        assert_eq!(g.code, 220, "greeting: {g:?}");
        let u = c.cmd(&format!("USER {user}"));
        assert_eq!(u.code, 331, "USER reply: {u:?}");
        let p = c.cmd(&format!("PASS {pass}"));
        assert_eq!(p.code, 230, "PASS reply: {p:?}");
        c
    }

    /// Wait (bounded by `secs`) for the peer to close: returns every reply
    /// received before EOF, or None if the connection stayed open.
    pub fn replies_until_eof(&mut self, secs: u64) -> Option<Vec<Reply>> {
        self.set_read_timeout(secs);
        let mut got = Vec::new();
        loop {
            match self.try_reply() {
                Ok(Some(r)) => got.push(r),
                Ok(None) => return Some(got),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(got),
                Err(_) => return None,
            }
        }
    }

    /// Read whatever arrives until EOF (bounded), as raw text.
    pub fn drain(&mut self, secs: u64) -> String {
        self.set_read_timeout(secs);
        let mut s = Vec::new();
        let _ = self.r.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    }

    pub fn close(self) {
        let _ = self.w.shutdown(Shutdown::Both);
    }
}

/// vsftpd's path: `FTPGATE_TEST_VSFTPD`, else /usr/sbin/vsftpd if present
/// (not on a normal user's PATH), else "vsftpd".
pub fn vsftpd_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FTPGATE_TEST_VSFTPD") {
        return PathBuf::from(p);
    }
    let sbin = Path::new("/usr/sbin/vsftpd");
    if sbin.exists() {
        sbin.to_path_buf()
    } else {
        PathBuf::from("vsftpd")
    }
}

// ---------------------------------------------------------------------------
// IPv6, fake servers, process accounting (issue 3 tests)

/// True if a socket is in LISTEN state on [::1]:port (from /proc/net/tcp6).
pub fn is_listening_v6(port: u16) -> bool {
    let want = format!("00000000000000000000000001000000:{port:04X}");
    fs::read_to_string("/proc/net/tcp6")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1] == want && f[3] == "0A"
        })
}

/// A free TCP port on [::1].
pub fn free_port_v6() -> u16 {
    let l = TcpListener::bind("[::1]:0").expect("bind [::1]:0");
    l.local_addr().unwrap().port()
}

fn wait_listening_v6(d: &mut Daemon, port: u16) {
    let ok = wait_until(START_SECS, || {
        is_listening_v6(port) || matches!(d.child.try_wait(), Ok(Some(_)))
    });
    assert!(
        ok && is_listening_v6(port),
        "{} not listening on [::1]:{port}\n{}",
        d.name,
        d.output()
    );
}

/// pyftpdlib serving on [::1] (same users as `FtpServer::pyftpdlib`).
pub fn pyftpdlib_v6() -> FtpServer {
    let dir = TempDir::new("pyftpd6");
    let root = dir.join("root");
    fs::create_dir_all(&root).unwrap();
    let port = free_port_v6();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyftpd.py");
    let mut cmd = Command::new(python());
    cmd.arg(script).arg(port.to_string()).arg(&root).arg("::1");
    let mut daemon = Daemon::spawn("pyftpdlib6", cmd, dir.path());
    wait_listening_v6(&mut daemon, port);
    FtpServer {
        kind: ServerKind::Pyftpdlib,
        port,
        root,
        sub: "",
        daemon,
        _dir: dir,
    }
}

impl Proxy {
    /// The proxy behind socat listening on [::1] (an IPv6 client side), with
    /// a complete configuration `body` whose log is `{LOG}` (replaced).
    pub fn start_v6(body: &str) -> Proxy {
        let dir = TempDir::new("proxy6");
        let log = dir.join("proxy.log");
        let conf = dir.join("proxy.conf");
        fs::write(&conf, body.replace("{LOG}", &log.display().to_string())).unwrap();
        let port = free_port_v6();
        let mut cmd = Command::new("socat");
        cmd.arg(format!("TCP6-LISTEN:{port},bind=[::1],reuseaddr,fork"))
            .arg(format!(
                "EXEC:\"{} -i -f {}\",nofork",
                proxy_bin().display(),
                conf.display()
            ));
        let mut daemon = Daemon::spawn("socat6", cmd, dir.path());
        wait_listening_v6(&mut daemon, port);
        Proxy {
            port,
            conf,
            log,
            daemon,
            dir,
        }
    }

    /// The PID of socat, the guard whose children are the sessions.
    pub fn guard_pid(&self) -> u32 {
        self.daemon.pid()
    }
}

/// CPU time (user + system, in clock ticks) a process has used, from
/// /proc/PID/stat; None once it is gone.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Wait (bounded) for exactly one live proxy session and return its PID.
pub fn one_session(proxy: &Proxy) -> u32 {
    let mut pid = None;
    wait_until(START_SECS, || {
        let s = proxy.sessions();
        pid = s.first().copied();
        s.len() == 1
    });
    pid.expect("a proxy session process")
}

/// A scripted FTP "server" for behaviour no real server can be made to show
/// (a malicious 227, an endless reply): listens on 127.0.0.1 and runs
/// `script` on the first connection in a thread. The thread ends when the
/// script returns; its result comes back from `join`.
pub struct FakeServer {
    pub port: u16,
    handle: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl FakeServer {
    /// `script` gets the accepted connection and returns lines it wants to
    /// report (e.g. the commands it saw).
    pub fn start(script: impl FnOnce(TcpStream) -> Vec<String> + Send + 'static) -> FakeServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            l.set_nonblocking(true).unwrap();
            let deadline = Instant::now() + Duration::from_secs(CLIENT_SECS);
            loop {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(REPLY_SECS)))
                            .unwrap();
                        s.set_write_timeout(Some(Duration::from_secs(REPLY_SECS)))
                            .unwrap();
                        return script(s);
                    }
                    Err(_) if Instant::now() < deadline => sleep(Duration::from_millis(20)),
                    Err(e) => return vec![format!("no connection: {e}")],
                }
            }
        });
        FakeServer {
            port,
            handle: Some(handle),
        }
    }

    /// What the script reported (bounded by the script's own time-outs).
    pub fn join(mut self) -> Vec<String> {
        self.handle
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

/// Read one CRLF line from a fake server's connection ("" on EOF/time-out).
pub fn fake_read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while let Ok(1) = s.read(&mut b) {
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
    }
    while line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// A Python ftplib script that transfers through one session with explicit
/// data-connection commands. Arguments: HOST PORT USER PASS DIR SIZE MODES,
/// where MODES is a comma list of PASV, EPSV, PORT, EPRT (each does a STOR
/// of SIZE pseudo-random bytes and a RETR back, compared byte for byte) and
/// DIR is the server path prefix. Prints "ok MODE" per mode, exits non-zero
/// with the failing reply otherwise.
pub const FTPLIB_MODES: &str = r#"
import ftplib, socket, sys, random
host, port, user, pw, sub, size, modes = sys.argv[1:8]
port, size = int(port), int(size)
fam = socket.AF_INET6 if ':' in host else socket.AF_INET
ftp = ftplib.FTP(timeout=30)
ftp.connect(host, port)
ftp.login(user, pw)
ftp.voidcmd('TYPE I')
def data_conn(mode, cmd):
    if mode in ('PASV', 'EPSV'):
        if mode == 'PASV':
            h, p = ftplib.parse227(ftp.sendcmd('PASV'))
        else:
            h, p = ftplib.parse229(ftp.sendcmd('EPSV'), ftp.sock.getpeername())
        c = socket.create_connection((h, p), 30)
        ftp.sendcmd(cmd)
        return c
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.bind((host, 0)); srv.listen(1); srv.settimeout(30)
    p = srv.getsockname()[1]
    if mode == 'PORT':
        ftp.sendport(host, p)
    else:
        ftp.sendeprt(host, p)
    ftp.sendcmd(cmd)
    c, _ = srv.accept(); srv.close()
    return c
for i, mode in enumerate(modes.split(',')):
    body = random.Random(i + size).randbytes(size)
    name = '%smodes-%d-%s.bin' % (sub, i, mode)
    c = data_conn(mode, 'STOR ' + name)
    c.sendall(body); c.close()
    ftp.voidresp()
    c = data_conn(mode, 'RETR ' + name)
    got = bytearray()
    while True:
        b = c.recv(65536)
        if not b: break
        got += b
    c.close()
    ftp.voidresp()
    if bytes(got) != body:
        print('mismatch', mode, len(got), len(body)); sys.exit(3)
    print('ok', mode, flush=True)
ftp.voidcmd('NOOP')
ftp.quit()
"#;

/// Run `FTPLIB_MODES` against HOST:PORT; panics with everything on failure.
pub fn ftplib_modes(host: &str, port: u16, server: &FtpServer, size: usize, modes: &str) -> Ran {
    python_script(
        FTPLIB_MODES,
        &[
            host,
            &port.to_string(),
            server.user(),
            server.pass(),
            server.sub,
            &size.to_string(),
            modes,
        ],
    )
}

impl Proxy {
    /// Like `start_raw`, listening on 127.0.0.1, with `{LOG}` in `body`
    /// replaced by the path `log_text` reads.
    pub fn start_template(body: &str) -> Proxy {
        let dir = TempDir::new("proxy");
        let log = dir.join("proxy.log");
        let body = body.replace("{LOG}", &log.display().to_string());
        Self::start_with_conf(&proxy_bin(), dir, &body, log)
    }
}

impl Ctrl {
    /// Another handle on the control socket (for a writer thread or a
    /// half-close).
    pub fn raw_stream(&self) -> TcpStream {
        self.w.try_clone().unwrap()
    }
}

/// A TCP listener on 127.0.0.1 that only counts the connections made to it
/// and never answers: the server of a test that proves something did NOT
/// contact the server.
pub struct CountingServer {
    listener: TcpListener,
    pub port: u16,
    seen: Vec<TcpStream>,
}

impl CountingServer {
    pub fn start() -> CountingServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a counting server");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("its address").port();
        CountingServer {
            listener,
            port,
            seen: Vec::new(),
        }
    }

    /// Connections made so far (what is queued is accepted, no waiting).
    pub fn connections(&mut self) -> usize {
        while let Ok((s, _)) = self.listener.accept() {
            self.seen.push(s);
        }
        self.seen.len()
    }
}

// ---------------------------------------------------------------------------
// FTPS (SPEC 10): a throw-away PKI, TLS servers and TLS clients

/// A throw-away PKI made with the openssl CLI in a temporary directory
/// (removed on drop): a test CA, a leaf for `localhost` / 127.0.0.1 signed
/// by it, a leaf for the same names signed by a different CA, and a leaf
/// for `other.example` signed by the test CA.
pub struct Pki {
    pub dir: PathBuf,
    /// The test CA (trust this one).
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    /// Leaf for DNS:localhost and IP:127.0.0.1, signed by `ca_cert`.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Another CA that nothing trusts.
    pub other_ca_cert: PathBuf,
    /// Leaf for DNS:localhost and IP:127.0.0.1 signed by `other_ca_cert`
    /// ("wrong CA").
    pub other_ca_leaf_cert: PathBuf,
    pub other_ca_leaf_key: PathBuf,
    /// Leaf for DNS:other.example only, signed by `ca_cert` ("wrong name").
    pub wrong_name_cert: PathBuf,
    pub wrong_name_key: PathBuf,
    _tmp: TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args);
    let r = run_bounded(cmd, 30);
    assert!(r.ok(), "openssl {args:?} failed: {}", r.describe());
}

impl Pki {
    /// Make a fresh PKI (a few RSA-2048 keys; each openssl call is bounded
    /// to 30 s).
    pub fn new() -> Pki {
        let tmp = TempDir::new("pki");
        let d = tmp.path().to_path_buf();
        let ca = |name: &str, cn: &str| {
            openssl(
                &d,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-sha256",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.pem"),
                    "-days",
                    "3",
                    "-subj",
                    &format!("/CN={cn}"),
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            );
        };
        let leaf = |name: &str, cn: &str, san: &str, by: &str| {
            fs::write(
                d.join(format!("{name}.ext")),
                format!(
                    "subjectAltName={san}\nbasicConstraints=CA:FALSE\n\
                     keyUsage=critical,digitalSignature,keyEncipherment\n\
                     extendedKeyUsage=serverAuth\n"
                ),
            )
            .unwrap();
            openssl(
                &d,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-sha256",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN={cn}"),
                ],
            );
            openssl(
                &d,
                &[
                    "x509",
                    "-req",
                    "-sha256",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    &format!("{by}.pem"),
                    "-CAkey",
                    &format!("{by}.key"),
                    "-CAcreateserial",
                    "-days",
                    "3",
                    "-extfile",
                    &format!("{name}.ext"),
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        };
        ca("ca", "ftpgate test CA");
        ca("otherca", "ftpgate untrusted test CA");
        leaf("localhost", "localhost", "DNS:localhost,IP:127.0.0.1", "ca");
        leaf(
            "otherca-leaf",
            "localhost",
            "DNS:localhost,IP:127.0.0.1",
            "otherca",
        );
        leaf("other-name", "other.example", "DNS:other.example", "ca");
        for f in [
            "ca.key",
            "otherca.key",
            "localhost.key",
            "otherca-leaf.key",
            "other-name.key",
        ] {
            set_mode(&d.join(f), 0o600);
        }
        Pki {
            dir: d.clone(),
            ca_cert: d.join("ca.pem"),
            ca_key: d.join("ca.key"),
            cert: d.join("localhost.pem"),
            key: d.join("localhost.key"),
            other_ca_cert: d.join("otherca.pem"),
            other_ca_leaf_cert: d.join("otherca-leaf.pem"),
            other_ca_leaf_key: d.join("otherca-leaf.key"),
            wrong_name_cert: d.join("other-name.pem"),
            wrong_name_key: d.join("other-name.key"),
            _tmp: tmp,
        }
    }

    /// Certificate and key of `which` leaf.
    pub fn leaf(&self, which: ServerCert) -> (&Path, &Path) {
        match which {
            ServerCert::Good => (&self.cert, &self.key),
            ServerCert::OtherCa => (&self.other_ca_leaf_cert, &self.other_ca_leaf_key),
            ServerCert::WrongName => (&self.wrong_name_cert, &self.wrong_name_key),
        }
    }

    /// Proxy configuration lines for a TLS client leg: `ClientTLS mode`
    /// with this PKI's `localhost` certificate and key.
    pub fn client_tls_conf(&self, mode: &str) -> String {
        format!(
            "ClientTLS {mode}\nTLSCertificateFile {}\nTLSKeyFile {}\n",
            self.cert.display(),
            self.key.display()
        )
    }

    /// Proxy configuration lines for a TLS server leg: `ServerTLS mode`,
    /// the test CA, and `ServerTLSName localhost` (the destination is
    /// 127.0.0.1).
    pub fn server_tls_conf(&self, mode: &str) -> String {
        format!(
            "ServerTLS {mode}\nServerTLSCAFile {}\nServerTLSName localhost\n",
            self.ca_cert.display()
        )
    }
}

/// Which certificate a TLS test server presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ServerCert {
    /// localhost / 127.0.0.1, signed by the test CA.
    #[default]
    Good,
    /// localhost / 127.0.0.1, signed by an untrusted CA.
    OtherCa,
    /// other.example, signed by the test CA.
    WrongName,
}

/// TLS protocol versions a client or server allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TlsVersion {
    /// 1.2 or 1.3 (1.3 is what is negotiated).
    #[default]
    Any,
    /// TLS 1.2 only.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl TlsVersion {
    /// The argument of the Python scripts: any, 1.2 or 1.3.
    pub fn arg(self) -> &'static str {
        match self {
            TlsVersion::Any => "any",
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }

    /// The name OpenSSL and Python report: "TLSv1.2" / "TLSv1.3" (None for
    /// Any).
    pub fn name(self) -> Option<&'static str> {
        match self {
            TlsVersion::Any => None,
            TlsVersion::Tls12 => Some("TLSv1.2"),
            TlsVersion::Tls13 => Some("TLSv1.3"),
        }
    }
}

/// Options of `FtpServer::vsftpd_tls`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TlsServerOpts {
    /// Versions the server accepts. Debian 12's vsftpd 3.0.3 has no TLS
    /// 1.2/1.3 switch (only ssl_tlsv1, which allows every TLS version);
    /// the limit is set through an OpenSSL configuration file
    /// (OPENSSL_CONF, MinProtocol/MaxProtocol).
    pub version: TlsVersion,
    /// implicit_ssl=YES: TLS from the first byte.
    pub implicit: bool,
    /// The certificate the server presents.
    pub cert: ServerCert,
}

impl FtpServer {
    /// vsftpd as an FTPS server (anonymous login, like `vsftpd()`):
    /// ssl_enable, allow_anon_ssl, TLS forced for logins and data of both
    /// anonymous and local users, require_ssl_reuse=YES (vsftpd's default,
    /// kept: every data connection must resume the control session).
    /// Its protocol log (with debug_ssl) is in `server_log()`.
    pub fn vsftpd_tls(pki: &Pki, opts: TlsServerOpts) -> FtpServer {
        let dir = TempDir::new("vsftpd-tls");
        let top = dir.join("root");
        fs::create_dir_all(&top).unwrap();
        let root = top.join("pub");
        fs::create_dir_all(&root).unwrap();
        set_mode(&root, 0o777);
        let _ = fs::create_dir_all("/var/run/vsftpd/empty");
        let (cert, key) = pki.leaf(opts.cert);
        let ossl_conf = dir.join("openssl.cnf");
        let (min, max) = match opts.version {
            TlsVersion::Any => ("TLSv1.2", "TLSv1.3"),
            TlsVersion::Tls12 => ("TLSv1.2", "TLSv1.2"),
            TlsVersion::Tls13 => ("TLSv1.3", "TLSv1.3"),
        };
        fs::write(
            &ossl_conf,
            format!(
                "openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n\
                 [ssl_sect]\nsystem_default = system_default_sect\n\
                 [system_default_sect]\nMinProtocol = {min}\nMaxProtocol = {max}\n"
            ),
        )
        .unwrap();
        let dpath = dir.path().to_path_buf();
        let (port, daemon) = spawn_on_free_port("vsftpd-tls", dir.path(), |port| {
            let conf = dpath.join(format!("vsftpd-{port}.conf"));
            let body = vsftpd_conf(
                port,
                &top,
                &dpath,
                &format!(
                    "xferlog_enable=YES\n\
                     xferlog_std_format=NO\n\
                     log_ftp_protocol=YES\n\
                     ftpd_banner=vsftpd TLS test server ready.\n\
                     ssl_enable=YES\n\
                     ssl_tlsv1=YES\n\
                     ssl_sslv2=NO\n\
                     ssl_sslv3=NO\n\
                     allow_anon_ssl=YES\n\
                     force_anon_logins_ssl=YES\n\
                     force_anon_data_ssl=YES\n\
                     force_local_logins_ssl=YES\n\
                     force_local_data_ssl=YES\n\
                     require_ssl_reuse=YES\n\
                     debug_ssl=YES\n\
                     implicit_ssl={implicit}\n\
                     rsa_cert_file={cert}\n\
                     rsa_private_key_file={key}\n",
                    implicit = if opts.implicit { "YES" } else { "NO" },
                    cert = cert.display(),
                    key = key.display(),
                ),
            );
            fs::write(&conf, body).unwrap();
            set_mode(&conf, 0o600);
            let mut cmd = Command::new(vsftpd_bin());
            cmd.arg(&conf).env("OPENSSL_CONF", &ossl_conf);
            cmd
        });
        FtpServer {
            kind: ServerKind::Vsftpd,
            port,
            root,
            sub: "pub/",
            daemon,
            _dir: dir,
        }
    }

    /// pyftpdlib's TLS_FTPHandler (explicit AUTH TLS; TLS required on the
    /// control and data connections; no session-reuse requirement) with the
    /// PKI's `localhost` certificate. Needs pyOpenSSL.
    pub fn pyftpdlib_tls(pki: &Pki) -> FtpServer {
        let dir = TempDir::new("pyftpd-tls");
        let root = dir.join("root");
        fs::create_dir_all(&root).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyftpd.py");
        let (port, daemon) = spawn_on_free_port("pyftpdlib-tls", dir.path(), |port| {
            let mut cmd = Command::new(python());
            cmd.arg(&script)
                .arg(port.to_string())
                .arg(&root)
                .env("PYFTPD_TLS_CERT", &pki.cert)
                .env("PYFTPD_TLS_KEY", &pki.key);
            cmd
        });
        FtpServer {
            kind: ServerKind::Pyftpdlib,
            port,
            root,
            sub: "",
            daemon,
            _dir: dir,
        }
    }

    /// The server's own log file, if it writes one (vsftpd: vsftpd.log,
    /// with the FTP protocol and, for `vsftpd_tls`, TLS debugging).
    pub fn server_log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self._dir.join("vsftpd.log")).unwrap_or_default())
            .into_owned()
    }
}

/// How a TLS client opens its data connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataCmd {
    Pasv,
    Epsv,
    Port,
    Eprt,
}

impl DataCmd {
    pub fn verb(self) -> &'static str {
        match self {
            DataCmd::Pasv => "PASV",
            DataCmd::Epsv => "EPSV",
            DataCmd::Port => "PORT",
            DataCmd::Eprt => "EPRT",
        }
    }
}

/// `ftp://user:pass@127.0.0.1:port` (explicit FTPS with curl's
/// `--ssl-reqd`) or, with `implicit`, `ftps://...` (TLS from the first
/// byte).
pub fn ftps_url(port: u16, user: &str, pass: &str, implicit: bool) -> String {
    format!(
        "{}://{}:{}@127.0.0.1:{port}",
        if implicit { "ftps" } else { "ftp" },
        url_escape(user),
        url_escape(pass)
    )
}

/// curl over FTPS: `--ssl-reqd --cacert CA` (the server must present a
/// certificate for 127.0.0.1 chaining to `ca`), data connections as
/// `data` says, and `args` (an `ftp://` URL for explicit FTPS, `ftps://`
/// for implicit; add `--tls-max 1.2` or `--tlsv1.3` to pin a version).
///
/// Debian 12's curl 7.88.1 cannot do active-mode FTPS (PORT/EPRT): it never
/// starts TLS on the accepted data connection and times out with "sa_addr
/// inet_ntop() failed" (curl issue 10666, fixed in curl 8.0). Tests of
/// active mode over TLS use lftp or ftplib.
pub fn curl_tls(data: DataCmd, ca: &Path, args: &[&str]) -> Ran {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-S", "--max-time", "100", "--ssl-reqd", "--cacert"])
        .arg(ca);
    match data {
        DataCmd::Pasv => {
            cmd.arg("--disable-epsv");
        }
        DataCmd::Epsv => {}
        DataCmd::Port => {
            cmd.args(["--disable-eprt", "--ftp-port", "127.0.0.1"]);
        }
        DataCmd::Eprt => {
            cmd.args(["--ftp-port", "127.0.0.1"]);
        }
    }
    cmd.args(args);
    run_bounded(cmd, CLIENT_SECS)
}

/// lftp over FTPS to 127.0.0.1:port: `ftp:ssl-force true`,
/// `ftp:ssl-protect-data true`, the certificate checked against `ca`
/// (and the name 127.0.0.1), PASV/EPSV or PORT (lftp sends EPRT only on
/// IPv6: `Eprt` means PORT here); `implicit` uses an `ftps://` URL. Runs
/// `script` (commands separated by `;`).
pub fn lftp_tls(
    port: u16,
    user: &str,
    pass: &str,
    ca: &Path,
    data: DataCmd,
    implicit: bool,
    script: &str,
) -> Ran {
    let passive = matches!(data, DataCmd::Pasv | DataCmd::Epsv);
    let full = format!(
        "set ftp:ssl-allow yes; set ftp:ssl-force true; set ftp:ssl-protect-data true; \
         set ftp:ssl-protect-list true; set ssl:ca-file {ca}; set ssl:verify-certificate yes; \
         set ssl:check-hostname yes; set ftp:passive-mode {pasv}; set ftp:prefer-epsv {epsv}; \
         set net:max-retries 1; set net:timeout 20; set net:reconnect-interval-base 1; \
         set cmd:fail-exit yes; {script}; bye",
        ca = ca.display(),
        pasv = if passive { "on" } else { "off" },
        epsv = if data == DataCmd::Epsv { "yes" } else { "no" },
    );
    let mut cmd = Command::new("lftp");
    cmd.arg("-u")
        .arg(format!("{user},{pass}"))
        .arg("-e")
        .arg(full)
        .arg(format!(
            "{}://127.0.0.1:{port}",
            if implicit { "ftps" } else { "ftp" }
        ));
    run_bounded(cmd, CLIENT_SECS)
}

/// Python ftplib.FTP_TLS with `prot_p()`, several transfers in one session.
/// Arguments: HOST PORT USER PASS DIR CAFILE NAME VERSION IMPLICIT REUSE
/// MODES SRC. The certificate is verified against CAFILE for the server
/// name NAME; VERSION is any, 1.2 or 1.3 (the context's minimum and
/// maximum); IMPLICIT 1 wraps the control connection from the first byte;
/// REUSE 1 resumes the control connection's TLS session on every data
/// connection (stock ftplib does not: REUSE 0). MODES is a comma list of
/// PASV, EPSV, PORT, EPRT: each does a STOR of SRC's bytes minus the first
/// i (file DIR/ftps-i-MODE.bin) and a RETR back, compared byte for byte;
/// then one LIST of DIR and one more RETR of the first file: 2 * modes + 2
/// data connections. Prints "control TLSvX CIPHER", "ok MODE", "list ok",
/// "data connections N", "data TLSvX reused BOOL" per data connection;
/// exits non-zero with the failing reply otherwise.
pub const FTPLIB_TLS: &str = r#"
import ftplib, socket, ssl, sys
(host, port, user, pw, sub, cafile, name, ver, implicit, reuse, modes, src) = sys.argv[1:13]
port = int(port)
data = open(src, 'rb').read()
ctx = ssl.create_default_context(cafile=cafile)
if ver == '1.2':
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
elif ver == '1.3':
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
cur = ['PASV']
count = [0]
class Client(ftplib.FTP_TLS):
    def connect(self, host, port, timeout=30):
        if implicit != '1':
            r = ftplib.FTP_TLS.connect(self, host, port, timeout)
            self.host = name
            return r
        self.host, self.port, self.timeout = name, port, timeout
        self.sock = socket.create_connection((host, port), timeout)
        self.af = self.sock.family
        self.sock = self.context.wrap_socket(self.sock, server_hostname=name)
        self.file = self.sock.makefile('r', encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome
    def makepasv(self):
        if cur[0] == 'EPSV':
            return ftplib.parse229(self.sendcmd('EPSV'), self.sock.getpeername())
        return ftplib.parse227(self.sendcmd('PASV'))
    def makeport(self):
        srv = socket.create_server(('127.0.0.1', 0), family=socket.AF_INET, backlog=1)
        srv.settimeout(30)
        p = srv.getsockname()[1]
        if cur[0] == 'EPRT':
            self.sendeprt('127.0.0.1', p)
        else:
            self.sendport('127.0.0.1', p)
        return srv
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            kw = {'session': self.sock.session} if reuse == '1' else {}
            conn = self.context.wrap_socket(conn, server_hostname=self.host, **kw)
            print('data', conn.version(), 'reused', conn.session_reused, flush=True)
        count[0] += 1
        return conn, size
ftp = Client(context=ctx, timeout=30)
ftp.connect(host, port, 30)
ftp.login(user, pw)
print('control', ftp.sock.version(), ftp.sock.cipher()[0], flush=True)
ftp.prot_p()
ftp.voidcmd('TYPE I')
names = []
for i, mode in enumerate(modes.split(',')):
    cur[0] = mode
    ftp.set_pasv(mode in ('PASV', 'EPSV'))
    body = data[i:]
    fname = 'ftps-%d-%s.bin' % (i, mode)
    names.append(fname)
    class R:
        def __init__(self, b): self.b, self.o = b, 0
        def read(self, n):
            c = self.b[self.o:self.o + n]; self.o += len(c); return c
    ftp.storbinary('STOR ' + sub + fname, R(body))
    got = bytearray()
    ftp.retrbinary('RETR ' + sub + fname, got.extend)
    if bytes(got) != body:
        print('mismatch', mode, len(got), len(body), flush=True); sys.exit(3)
    print('ok', mode, flush=True)
lines = []
ftp.retrlines('LIST ' + (sub or '.'), lines.append)
for n in names:
    if not any(n in l for l in lines):
        print('LIST lacks', n, lines, flush=True); sys.exit(4)
print('list ok', flush=True)
got = bytearray()
ftp.retrbinary('RETR ' + sub + names[0], got.extend)
if bytes(got) != data:
    print('mismatch again', len(got), len(data), flush=True); sys.exit(5)
print('data connections', count[0], flush=True)
ftp.voidcmd('NOOP')
ftp.quit()
"#;

/// Options of `ftplib_tls`.
#[derive(Clone, Copy, Debug)]
pub struct FtplibTls<'a> {
    /// CA file to verify the certificate against (for the name
    /// `localhost`).
    pub ca: &'a Path,
    pub version: TlsVersion,
    pub implicit: bool,
    /// Resume the control session on data connections (stock ftplib: no).
    pub reuse: bool,
    /// Comma list of PASV, EPSV, PORT, EPRT (see `FTPLIB_TLS`).
    pub modes: &'a str,
    /// The file whose bytes are uploaded (minus the first i for mode i).
    pub src: &'a Path,
}

/// Run `FTPLIB_TLS` against 127.0.0.1:port, logging in as `server`'s user
/// into `server`'s directory (the server may be behind the proxy).
pub fn ftplib_tls(port: u16, server: &FtpServer, o: &FtplibTls) -> Ran {
    python_script(
        FTPLIB_TLS,
        &[
            "127.0.0.1",
            &port.to_string(),
            server.user(),
            server.pass(),
            server.sub,
            o.ca.to_str().unwrap(),
            "localhost",
            o.version.arg(),
            if o.implicit { "1" } else { "0" },
            if o.reuse { "1" } else { "0" },
            o.modes,
            o.src.to_str().unwrap(),
        ],
    )
}

/// A raw FTP(S) command sequence in Python: arguments HOST PORT CAFILE
/// IMPLICIT CMD...; prints "reply 0 CODE TEXT" for the greeting and
/// "reply I CODE TEXT" (first line) for the I-th command. A command `AUTH
/// ...` answered with 234 wraps the control connection in TLS (verified
/// against CAFILE for `localhost`); IMPLICIT 1 wraps it from the first
/// byte. Stops at EOF ("eof I") or a time-out ("timeout I").
pub const FTPS_COMMANDS: &str = r#"
import socket, ssl, sys
host, port, cafile, implicit = sys.argv[1:5]
cmds = sys.argv[5:]
ctx = ssl.create_default_context(cafile=cafile)
s = socket.create_connection((host, int(port)), 20)
if implicit == '1':
    s = ctx.wrap_socket(s, server_hostname='localhost')
f = s.makefile('rb')
def reply(i):
    try:
        line = f.readline()
    except (socket.timeout, TimeoutError):
        print('timeout', i, flush=True); sys.exit(0)
    except (ConnectionError, ssl.SSLError) as e:
        print('eof', i, e, flush=True); sys.exit(0)
    if not line:
        print('eof', i, flush=True); sys.exit(0)
    first = line.decode('latin-1').rstrip('\r\n')
    if first[3:4] == '-':
        while True:
            l = f.readline()
            if not l: break
            l = l.decode('latin-1').rstrip('\r\n')
            print('line', i, l, flush=True)
            if l.startswith(first[:3] + ' '): break
    print('reply', i, first, flush=True)
    return first
reply(0)
for i, c in enumerate(cmds, 1):
    s.sendall(c.encode() + b'\r\n')
    r = reply(i)
    if c.upper().startswith('AUTH') and r.startswith('234'):
        s = ctx.wrap_socket(s, server_hostname='localhost')
        f = s.makefile('rb')
        print('tls', i, s.version(), flush=True)
"#;

/// Run `FTPS_COMMANDS` against 127.0.0.1:port.
pub fn ftps_commands(port: u16, ca: &Path, implicit: bool, cmds: &[&str]) -> Ran {
    let port = port.to_string();
    let mut args = vec![
        "127.0.0.1",
        &port,
        ca.to_str().unwrap(),
        if implicit { "1" } else { "0" },
    ];
    args.extend_from_slice(cmds);
    python_script(FTPS_COMMANDS, &args)
}

/// The replies `FTPS_COMMANDS` printed: (command index, code, first line);
/// index 0 is the greeting.
pub fn ftps_replies(r: &Ran) -> Vec<(usize, u16, String)> {
    r.stdout
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("reply ")?;
            let (i, text) = rest.split_once(' ')?;
            let code = text.get(..3)?.parse().ok()?;
            Some((i.parse().ok()?, code, text.to_string()))
        })
        .collect()
}

/// A vsftpd configuration for the fixtures: anonymous with uploads under
/// `top`, on 127.0.0.1:`port`, its log in `dir`; `extra` lines follow.
fn vsftpd_conf(port: u16, top: &Path, dir: &Path, extra: &str) -> String {
    format!(
        "listen=YES\n\
         listen_ipv6=NO\n\
         listen_address=127.0.0.1\n\
         listen_port={port}\n\
         background=NO\n\
         run_as_launching_user=NO\n\
         anonymous_enable=YES\n\
         local_enable=NO\n\
         anon_root={top}\n\
         no_anon_password=NO\n\
         write_enable=YES\n\
         anon_upload_enable=YES\n\
         anon_mkdir_write_enable=YES\n\
         anon_other_write_enable=YES\n\
         anon_world_readable_only=NO\n\
         anon_umask=022\n\
         allow_writeable_chroot=YES\n\
         secure_chroot_dir=/var/run/vsftpd/empty\n\
         seccomp_sandbox=NO\n\
         pasv_enable=YES\n\
         port_enable=YES\n\
         connect_from_port_20=NO\n\
         vsftpd_log_file={dir}/vsftpd.log\n\
         max_clients=64\n\
         max_per_ip=0\n\
         {extra}",
        top = top.display(),
        dir = dir.display(),
    )
}

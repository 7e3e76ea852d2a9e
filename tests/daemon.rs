//! Standalone mode: the real daemon (`ftpgate -d -n -f CONF`) in front of a
//! real pyftpdlib server, driven by curl and raw control connections. Each
//! test bounds its time, signals only PIDs it started (the daemon, and the
//! detached daemon from its PidFile) and stays on loopback.

// Tests may call libc directly (kill, umask, ...), each block with a
// `// SAFETY:` comment; the crate-wide deny is for src/.
#![allow(unsafe_code)]

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// A daemon under test with its own directory, configuration and log.
struct Standalone {
    port: u16,
    conf: PathBuf,
    log: PathBuf,
    daemon: Daemon,
    dir: TempDir,
}

impl Standalone {
    /// Start `ftpgate -d -n` listening on 127.0.0.1 in front of `server_port`,
    /// with `extra` configuration lines and environment variables `env`.
    fn start(server_port: u16, extra: &str, env: &[(&str, &Path)]) -> Standalone {
        let dir = TempDir::new("daemon");
        let port = free_port();
        let log = dir.join("proxy.log");
        let conf = dir.join("proxy.conf");
        fs::write(&conf, base_conf(server_port, port, &log, extra)).unwrap();
        let mut cmd = Command::new(proxy_bin());
        cmd.arg("-d").arg("-n").arg("-f").arg(&conf);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut daemon = Daemon::spawn("ftpgate", cmd, dir.path());
        daemon.wait_listening(port);
        Standalone {
            port,
            conf,
            log,
            daemon,
            dir,
        }
    }

    fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) of the daemon this test started, by its PID.
        unsafe {
            libc::kill(self.pid() as libc::pid_t, sig);
        }
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Wait (bounded) until the log contains `needle`; panics otherwise.
    fn wait_log(&self, needle: &str) {
        if !wait_until(15, || self.log_text().contains(needle)) {
            panic!(
                "log never said {needle:?}\n{}\n--- log ---\n{}",
                self.daemon.output(),
                self.log_text()
            );
        }
    }
}

fn base_conf(server_port: u16, port: u16, log: &Path, extra: &str) -> String {
    format!(
        "# written by ftpgate's daemon tests\n\
         DestinationAddress 127.0.0.1\n\
         DestinationPort {server_port}\n\
         LogDestination {}\n\
         Listen 127.0.0.1\n\
         Port {port}\n\
         {extra}\n",
        log.display()
    )
}

/// Session processes still alive below `pid`, and zombies among its children.
fn zombies_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        if f.len() > 1 && f[0] == "Z" && f[1] == pid.to_string() {
            out.push(p);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    matches!(state_of(pid), Some(s) if s != 'Z')
}

#[test]
fn sessions_run_through_the_daemon_like_under_inetd() {
    if skip_unless_ftpgate("sessions_run_through_the_daemon_like_under_inetd") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    server.put("hello.txt", b"hello through the daemon\n");
    let d = Standalone::start(server.port, "", &[]);
    let url = format!("ftp://test:secret@127.0.0.1:{}/hello.txt", d.port);
    let ran = curl(ClientMode::Passive, &[&url]);
    assert!(ran.ok(), "{}\n{}", ran.describe(), d.log_text());
    assert_eq!(ran.stdout, "hello through the daemon\n");
    let up = d.dir.join("up.bin");
    let data = random_bytes(300_000, 5);
    fs::write(&up, &data).unwrap();
    let ran = curl(
        ClientMode::Active,
        &[
            "-T",
            up.to_str().unwrap(),
            &format!("ftp://test:secret@127.0.0.1:{}/up.bin", d.port),
        ],
    );
    assert!(ran.ok(), "{}", ran.describe());
    assert_same_bytes(
        "upload",
        &wait_for_file(&server.file("up.bin"), data.len()),
        &data,
    );
    d.wait_log("session process");
    d.wait_log("session end");
}

#[test]
fn max_clients_refuses_with_the_message_file_and_string() {
    if skip_unless_ftpgate("max_clients_refuses_with_the_message_file_and_string") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("maxmsg");
    let msg = dir.join("full.txt");
    fs::write(&msg, "Sorry, we are full.\nVersion %v, 100%% busy\n").unwrap();
    let d = Standalone::start(
        server.port,
        &format!(
            "MaxClients 1\nMaxClientsMessage {}\nMaxClientsString Too many users on %h",
            msg.display()
        ),
        &[],
    );
    let first = Ctrl::login(d.port, "test", "secret");
    let mut second = Ctrl::connect(d.port);
    let got = second
        .replies_until_eof(REPLY_SECS)
        .expect("the refused connection is closed");
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert_eq!(r.code, 421);
    assert_eq!(r.lines[0], "421-Sorry, we are full.");
    assert_eq!(
        r.lines[1],
        format!("421-Version {}, 100% busy", env!("CARGO_PKG_VERSION"))
    );
    assert!(r.lines[2].starts_with("421 Too many users on "), "{r:?}");
    assert!(!r.lines[2].contains("%h"), "{r:?}");
    d.wait_log("refused: MaxClients 1 reached");
    // The slot frees when the first session ends.
    first.close();
    assert!(wait_until(15, || {
        let mut c = Ctrl::connect(d.port);
        c.reply().code == 220
    }));
}

/// Issue 5: a MaxClientsMessage that is a FIFO is skipped with a WRN line;
/// the daemon never blocks on it (the refused client gets its 421, the
/// next one is served).
#[test]
fn a_fifo_as_max_clients_message_does_not_hang_the_daemon() {
    if skip_unless_ftpgate("a_fifo_as_max_clients_message_does_not_hang_the_daemon") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("maxfifo");
    let msg = dir.join("full.fifo");
    let mut mk = Command::new("mkfifo");
    mk.arg(&msg);
    let r = run_bounded(mk, 10);
    assert!(r.ok(), "mkfifo: {}", r.describe());
    let d = Standalone::start(
        server.port,
        &format!(
            "MaxClients 1\nMaxClientsMessage {}\nMaxClientsString Too many users",
            msg.display()
        ),
        &[],
    );
    let first = Ctrl::login(d.port, "test", "secret");
    let mut second = Ctrl::connect(d.port);
    let got = second
        .replies_until_eof(REPLY_SECS)
        .expect("the refused connection is closed");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].lines, ["421 Too many users"], "{got:?}");
    d.wait_log(&format!(
        "message file {} skipped: not a regular file",
        msg.display()
    ));
    first.close();
    assert!(wait_until(15, || {
        let mut c = Ctrl::connect(d.port);
        c.reply().code == 220
    }));
}

/// A client refused for MaxClients never reaches the server: only the
/// first session's (early) connection arrives there.
#[test]
fn max_clients_refusal_never_contacts_the_server() {
    if skip_unless_ftpgate("max_clients_refusal_never_contacts_the_server") {
        return;
    }
    let mut server = CountingServer::start();
    let d = Standalone::start(server.port, "MaxClients 1", &[]);
    let mut first = Ctrl::connect(d.port);
    assert_eq!(first.reply().code, 220);
    assert!(
        wait_until(10, || server.connections() == 1),
        "the first session did not connect early"
    );
    let mut second = Ctrl::connect(d.port);
    let got = second
        .replies_until_eof(REPLY_SECS)
        .expect("the refused connection is closed");
    assert_eq!(got.first().map(|r| r.code), Some(421), "{got:?}");
    d.wait_log("refused: MaxClients 1 reached");
    assert_eq!(server.connections(), 1, "{}", d.log_text());
}

#[test]
fn fork_limit_refuses_sessions_over_the_rate() {
    if skip_unless_ftpgate("fork_limit_refuses_sessions_over_the_rate") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let d = Standalone::start(server.port, "ForkLimit 3", &[]);
    let mut codes = Vec::new();
    for _ in 0..5 {
        let mut c = Ctrl::connect(d.port);
        codes.push(c.reply().code);
        c.close();
    }
    // Five connections in far less than a minute: three sessions, two refusals.
    assert_eq!(codes, vec![220, 220, 220, 421, 421], "{}", d.log_text());
    d.wait_log("refused: ForkLimit 3 sessions per minute reached");
}

#[test]
fn sighup_reloads_for_new_sessions_and_keeps_the_old_config_when_broken() {
    if skip_unless_ftpgate("sighup_reloads_for_new_sessions_and_keeps_the_old_config_when_broken") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let d = Standalone::start(server.port, "WelcomeString first greeting", &[]);
    let greeting = |d: &Standalone| {
        let mut c = Ctrl::connect(d.port);
        let r = c.reply();
        c.close();
        r.text()
    };
    assert_eq!(greeting(&d), "220 first greeting");
    // A session that is open across the reload keeps its configuration.
    let mut open = Ctrl::login(d.port, "test", "secret");
    let body = base_conf(server.port, d.port, &d.log, "WelcomeString second greeting");
    fs::write(&d.conf, &body).unwrap();
    d.signal(libc::SIGHUP);
    d.wait_log("reloaded");
    assert_eq!(greeting(&d), "220 second greeting");
    assert_eq!(open.cmd("NOOP").code, 200);
    // A broken file: every error logged with file:line, the old one kept.
    let broken = format!("{body}NoSuchOption 1\nMaxClients 9999\n");
    fs::write(&d.conf, &broken).unwrap();
    let bad_line = broken.lines().count() - 1;
    d.signal(libc::SIGHUP);
    d.wait_log("keeping the previous configuration");
    let log = d.log_text();
    let conf = d.conf.display().to_string();
    assert!(log.contains(&format!("{conf}:{bad_line}:")), "{log}");
    assert!(log.contains(&format!("{conf}:{}:", bad_line + 1)), "{log}");
    assert_eq!(greeting(&d), "220 second greeting");
    assert!(alive(d.pid()));
}

#[test]
fn sigusr1_rotates_the_log_file() {
    if skip_unless_ftpgate("sigusr1_rotates_the_log_file") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let d = Standalone::start(server.port, "", &[]);
    d.wait_log("daemon start");
    d.signal(libc::SIGUSR1);
    let rotated = || {
        fs::read_dir(d.dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with("proxy.log."))
    };
    assert!(wait_until(15, || rotated().is_some()), "no rotated log");
    d.wait_log("log rotated, the previous one is");
    let old = fs::read_to_string(d.dir.join(&rotated().unwrap())).unwrap();
    assert!(old.contains("daemon start"), "{old}");
    assert!(!d.log_text().contains("daemon start"));
    // New sessions log to the new file.
    let mut c = Ctrl::connect(d.port);
    assert_eq!(c.reply().code, 220);
    c.close();
    d.wait_log("session start");
}

#[test]
fn sigterm_ends_the_daemon_and_its_sessions_and_removes_the_pid_file() {
    if skip_unless_ftpgate("sigterm_ends_the_daemon_and_its_sessions_and_removes_the_pid_file") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let piddir = TempDir::new("pid");
    let pidfile = piddir.join("ftpgate.pid");
    let mut d = Standalone::start(server.port, &format!("PidFile {}", pidfile.display()), &[]);
    assert_eq!(
        fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", d.pid())
    );
    let mut a = Ctrl::login(d.port, "test", "secret");
    let mut b = Ctrl::login(d.port, "test", "secret");
    assert!(wait_until(10, || descendants(d.pid()).len() >= 2));
    let kids = descendants(d.pid());
    d.signal(libc::SIGTERM);
    let mut status = None;
    assert!(wait_until(15, || {
        status = d.daemon.child.try_wait().unwrap();
        status.is_some()
    }));
    assert!(status.unwrap().success(), "{status:?}");
    for k in &kids {
        assert!(wait_until(10, || !alive(*k)), "session {k} survived");
    }
    assert!(a.replies_until_eof(10).is_some());
    assert!(b.replies_until_eof(10).is_some());
    assert!(!pidfile.exists());
    assert!(!is_listening(d.port));
}

#[test]
fn a_burst_of_short_sessions_leaves_no_zombies_or_children() {
    if skip_unless_ftpgate("a_burst_of_short_sessions_leaves_no_zombies_or_children") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let d = Standalone::start(server.port, "ForkLimit 1000\nMaxClients 64", &[]);
    let port = d.port;
    let workers: Vec<_> = (0..5)
        .map(|_| {
            std::thread::spawn(move || {
                let mut ok = 0;
                for _ in 0..10 {
                    let mut c = Ctrl::connect(port);
                    if c.reply().code == 220 && c.cmd("QUIT").code == 221 {
                        ok += 1;
                    }
                    c.close();
                }
                ok
            })
        })
        .collect();
    let ok: i32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(ok, 50, "{}", d.log_text());
    let clean = wait_until(20, || {
        descendants(d.pid()).is_empty() && zombies_of(d.pid()).is_empty()
    });
    assert!(
        clean,
        "left: {:?}, zombies: {:?}",
        descendants(d.pid()),
        zombies_of(d.pid())
    );
    assert_eq!(d.log_text().matches("session process").count(), 50);
    assert!(alive(d.pid()));
}

#[test]
fn tcp_wrapper_refuses_denied_clients_with_421() {
    if skip_unless_ftpgate("tcp_wrapper_refuses_denied_clients_with_421") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let tables = TempDir::new("hosts");
    let allow = tables.join("hosts.allow");
    let deny = tables.join("hosts.deny");
    fs::write(&allow, "# nothing allowed explicitly\n").unwrap();
    fs::write(
        &deny,
        "sshd: ALL\nftpgate-test: 127.0.0.0/255.0.0.0 EXCEPT 10.\n",
    )
    .unwrap();
    let d = Standalone::start(
        server.port,
        "TCPWrapper yes\nTCPWrapperName ftpgate-test",
        &[
            ("FTPGATE_HOSTS_ALLOW", allow.as_path()),
            ("FTPGATE_HOSTS_DENY", deny.as_path()),
        ],
    );
    let mut c = Ctrl::connect(d.port);
    let got = c.replies_until_eof(REPLY_SECS).expect("closed");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].code, 421);
    d.wait_log(&format!(
        "refused by TCPWrapper: {}:2: rule matched, denied",
        deny.display()
    ));
    assert!(
        descendants(d.pid()).is_empty(),
        "a refused client got a session"
    );
    // The tables are read per connection: an allow rule lets us in.
    fs::write(&allow, "ftpgate-test: LOCAL\n").unwrap();
    let c = Ctrl::login(d.port, "test", "secret");
    c.close();
}

#[test]
fn without_n_the_daemon_detaches_and_writes_its_pid_file() {
    if skip_unless_ftpgate("without_n_the_daemon_detaches_and_writes_its_pid_file") {
        return;
    }
    /// Ends the detached daemon (by the PID it wrote) if the test fails.
    struct Detached(PathBuf);
    impl Drop for Detached {
        fn drop(&mut self) {
            if let Some(pid) = fs::read_to_string(&self.0)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                // SAFETY: kill(2) of the daemon this test started.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
    }
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("detach");
    let port = free_port();
    let log = dir.join("proxy.log");
    let pidfile = dir.join("ftpgate.pid");
    let conf = dir.join("proxy.conf");
    fs::write(
        &conf,
        base_conf(
            server.port,
            port,
            &log,
            &format!("PidFile {}", pidfile.display()),
        ),
    )
    .unwrap();
    let guard = Detached(pidfile.clone());
    let mut cmd = Command::new(proxy_bin());
    cmd.arg("-d").arg("-f").arg(&conf);
    let ran = run_bounded(cmd, 20);
    assert!(ran.ok(), "{}", ran.describe());
    assert!(wait_until(10, || pidfile.exists() && is_listening(port)));
    let pid: u32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    // Detached: its own session, not the test's.
    let sid = |p: u32| -> String {
        let stat = fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let close = stat.rfind(')').unwrap_or(0);
        stat[close + 2..]
            .split_whitespace()
            .nth(3)
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(sid(pid), pid.to_string());
    // The daemon's log lines carry its own process id, not the starter's.
    assert!(wait_until(10, || fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("daemon start")));
    let text = fs::read_to_string(&log).unwrap_or_default();
    let start = text
        .lines()
        .find(|l| l.contains("daemon start"))
        .unwrap_or("");
    assert!(start.contains(&format!("ftpgate[{pid}-")), "{start}");
    let mut c = Ctrl::connect(port);
    assert_eq!(c.reply().code, 220);
    assert_eq!(c.cmd("QUIT").code, 221);
    drop(guard);
    assert!(
        wait_until(15, || !alive(pid)),
        "detached daemon did not stop"
    );
    assert!(wait_until(5, || !pidfile.exists()));
}

#[test]
fn the_daemon_listens_on_ipv6_loopback() {
    if skip_unless_ftpgate("the_daemon_listens_on_ipv6_loopback") {
        return;
    }
    if TcpStream::connect("[::1]:1").is_err_and(|e| e.raw_os_error() == Some(libc::EADDRNOTAVAIL)) {
        eprintln!("SKIP the_daemon_listens_on_ipv6_loopback: no ::1 here");
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("v6");
    let port = free_port();
    let log = dir.join("proxy.log");
    let conf = dir.join("proxy.conf");
    let body = base_conf(server.port, port, &log, "").replace("Listen 127.0.0.1", "Listen ::1");
    fs::write(&conf, body).unwrap();
    let mut cmd = Command::new(proxy_bin());
    cmd.arg("-d").arg("-n").arg("-f").arg(&conf);
    let _d = Daemon::spawn("ftpgate", cmd, dir.path());
    let mut stream = None;
    wait_until(START_SECS, || {
        stream = TcpStream::connect(("::1", port)).ok();
        stream.is_some()
    });
    let s = stream.expect("ftpgate listens on [::1]");
    s.set_read_timeout(Some(Duration::from_secs(REPLY_SECS)))
        .unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("220 "), "{line:?}");
    w.write_all(b"USER test\r\n").unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("331"), "{line:?}");
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("client [::1]:"), "{text}");
}

#[test]
fn deny_message_is_honoured_by_daemon_sessions() {
    if skip_unless_ftpgate("deny_message_is_honoured_by_daemon_sessions") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("deny");
    let nologin = dir.join("nologin");
    fs::write(&nologin, "Maintenance on %h\n").unwrap();
    let d = Standalone::start(
        server.port,
        &format!(
            "DenyMessage {}\nDenyString Come back later",
            nologin.display()
        ),
        &[],
    );
    let mut c = Ctrl::connect(d.port);
    let got = c.replies_until_eof(REPLY_SECS).expect("closed");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].code, 421);
    assert!(
        got[0].lines[0].starts_with("421-Maintenance on "),
        "{got:?}"
    );
    assert_eq!(got[0].lines.last().unwrap(), "421 Come back later");
    // Removing the file reopens the service without a reload.
    fs::remove_file(&nologin).unwrap();
    let mut c = Ctrl::connect(d.port);
    assert_eq!(c.reply().code, 220);
}

/// PidFile is a fresh file, mode 0644, whatever the umask and whatever was
/// left there: a stale world-writable file is replaced (not rewritten in
/// place), a symbolic link is replaced and its target left alone.
#[test]
fn the_pid_file_is_never_world_writable_and_never_follows_a_link() {
    let test = "the_pid_file_is_never_world_writable_and_never_follows_a_link";
    if skip_unless_ftpgate(test) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("pidfile");
    let pidfile = dir.join("ftpgate.pid");
    let target = dir.join("target");
    for stale in ["link", "world-writable"] {
        let _ = fs::remove_file(&pidfile);
        if stale == "link" {
            fs::write(&target, "keep\n").unwrap();
            std::os::unix::fs::symlink(&target, &pidfile).unwrap();
        } else {
            fs::write(&pidfile, "99999\n").unwrap();
            set_mode(&pidfile, 0o666);
        }
        let port = free_port();
        let log = dir.join("proxy.log");
        let conf = dir.join("proxy.conf");
        fs::write(
            &conf,
            base_conf(
                server.port,
                port,
                &log,
                &format!("PidFile {}", pidfile.display()),
            ),
        )
        .unwrap();
        let mut cmd = Command::new(proxy_bin());
        cmd.arg("-d").arg("-n").arg("-f").arg(&conf);
        // SAFETY: umask(2) in the child between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0);
                Ok(())
            });
        }
        let mut d = Daemon::spawn("ftpgate", cmd, dir.path());
        d.wait_listening(port);
        let meta = fs::symlink_metadata(&pidfile).unwrap();
        assert!(meta.is_file(), "{stale}: PidFile is not a plain file");
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o644,
            "{stale}: PidFile mode"
        );
        assert_eq!(
            fs::read_to_string(&pidfile).unwrap(),
            format!("{}\n", d.pid())
        );
        if stale == "link" {
            assert_eq!(fs::read_to_string(&target).unwrap(), "keep\n");
        }
        // SAFETY: kill(2) of the daemon this test started, by its PID.
        unsafe {
            libc::kill(d.pid() as libc::pid_t, libc::SIGTERM);
        }
        assert!(wait_until(15, || d.child.try_wait().unwrap().is_some()));
        assert!(!pidfile.exists(), "{stale}: PidFile not removed");
    }
}

/// A descriptor the daemon's starter left open (here a directory outside
/// any jail, a classic chroot escape) must not reach the sessions.
#[test]
fn descriptors_inherited_by_the_daemon_do_not_reach_its_sessions() {
    let test = "descriptors_inherited_by_the_daemon_do_not_reach_its_sessions";
    if skip_unless_ftpgate(test) {
        return;
    }
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("inherited-fd");
    let outside = fs::File::open(dir.path()).unwrap();
    let raw = outside.as_raw_fd();
    let port = free_port();
    let log = dir.join("proxy.log");
    let conf = dir.join("proxy.conf");
    fs::write(&conf, base_conf(server.port, port, &log, "")).unwrap();
    let mut cmd = Command::new(proxy_bin());
    cmd.arg("-d").arg("-n").arg("-f").arg(&conf);
    // SAFETY: dup2(2) in the child between fork and exec: fd 9 without
    // close-on-exec, as a careless starter would leave it.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut d = Daemon::spawn("ftpgate", cmd, dir.path());
    d.wait_listening(port);
    let mut c = Ctrl::connect(port);
    assert_eq!(c.reply().code, 220);
    assert!(wait_until(10, || !descendants(d.pid()).is_empty()));
    let here = fs::canonicalize(dir.path()).unwrap();
    for pid in std::iter::once(d.pid()).chain(descendants(d.pid())) {
        for e in fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
            let target = fs::read_link(e.path()).unwrap_or_default();
            assert_ne!(
                target,
                here,
                "process {pid} holds the inherited directory as fd {:?}",
                e.file_name()
            );
        }
    }
    assert_eq!(c.cmd("QUIT").code, 221);
    drop(outside);
}

/// `TCPWrapper yes` keeps protecting when the same file runs under a
/// super-server (here socat, as under xinetd): each session checks its
/// client itself, with the same tables and the same 421.
#[test]
fn tcp_wrapper_also_refuses_denied_clients_under_a_super_server() {
    let test = "tcp_wrapper_also_refuses_denied_clients_under_a_super_server";
    if skip_unless_ftpgate(test) {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("wrapper-inetd");
    let w = WrappedProxy::start(&dir, server.port);
    let (port, allow, deny, log) = (w.port, w.allow.clone(), w.deny.clone(), w.log.clone());
    let mut c = Ctrl::connect(port);
    let got = c.replies_until_eof(REPLY_SECS).expect("closed");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].code, 421);
    let refused = format!(
        "refused by TCPWrapper: {}:1: rule matched, denied",
        deny.display()
    );
    assert!(
        wait_until(10, || fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(&refused)),
        "{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    fs::write(&allow, "ftpgate-test: 127.0.0.1\n").unwrap();
    let c = Ctrl::login(port, "test", "secret");
    c.close();
}

/// Without `-n`, a PidFile that cannot be written fails the start with a
/// non-zero exit status and a message (an init script must not see 0 for
/// a daemon that then dies).
#[test]
fn an_unwritable_pid_file_fails_the_detaching_start_with_nonzero_status() {
    let test = "an_unwritable_pid_file_fails_the_detaching_start_with_nonzero_status";
    if skip_unless_ftpgate(test) {
        return;
    }
    let dir = TempDir::new("pidfile-nodir");
    let port = free_port();
    let log = dir.join("proxy.log");
    let conf = dir.join("proxy.conf");
    let pidfile = dir.join("no-such-dir/ftpgate.pid");
    fs::write(
        &conf,
        base_conf(
            dead_port(),
            port,
            &log,
            &format!("PidFile {}", pidfile.display()),
        ),
    )
    .unwrap();
    let mut cmd = Command::new(proxy_bin());
    cmd.arg("-d").arg("-f").arg(&conf);
    let ran = run_bounded(cmd, 20);
    assert!(
        ran.status.is_some_and(|s| !s.success()),
        "exit status: {}",
        ran.describe()
    );
    assert!(ran.stderr.contains("PidFile"), "{}", ran.describe());
    // It failed before listening on behalf of anyone: nothing detached.
    assert!(!is_listening(port), "a daemon is listening after all");
}

/// A second daemon given the PidFile of a running one refuses to start
/// (and leaves that file alone); a stale file is replaced (see above).
#[test]
fn a_pid_file_naming_a_running_daemon_stops_a_second_start() {
    let test = "a_pid_file_naming_a_running_daemon_stops_a_second_start";
    if skip_unless_ftpgate(test) {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let piddir = TempDir::new("pid-running");
    let pidfile = piddir.join("ftpgate.pid");
    let first = Standalone::start(server.port, &format!("PidFile {}", pidfile.display()), &[]);
    let dir = TempDir::new("pid-second");
    let port = free_port();
    let conf = dir.join("proxy.conf");
    fs::write(
        &conf,
        base_conf(
            server.port,
            port,
            &dir.join("proxy.log"),
            &format!("PidFile {}", pidfile.display()),
        ),
    )
    .unwrap();
    let mut cmd = Command::new(proxy_bin());
    cmd.arg("-d").arg("-n").arg("-f").arg(&conf);
    let ran = run_bounded(cmd, 20);
    assert!(
        ran.status.is_some_and(|s| !s.success()),
        "second daemon: {}",
        ran.describe()
    );
    assert!(ran.stderr.contains("still running"), "{}", ran.describe());
    assert_eq!(
        fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", first.pid())
    );
}

/// A client TCPWrapper refuses under a super-server never reaches the
/// server (the check comes before the early connection).
#[test]
fn tcp_wrapper_refusal_under_a_super_server_never_contacts_the_server() {
    let test = "tcp_wrapper_refusal_under_a_super_server_never_contacts_the_server";
    if skip_unless_ftpgate(test) {
        return;
    }
    let mut server = CountingServer::start();
    let dir = TempDir::new("wrapper-quiet");
    let w = WrappedProxy::start(&dir, server.port);
    let (port, log) = (w.port, w.log.clone());
    let mut c = Ctrl::connect(port);
    let got = c.replies_until_eof(REPLY_SECS).expect("closed");
    assert_eq!(got.first().map(|r| r.code), Some(421), "{got:?}");
    // SPEC 8: the refused session's start, reason and end.
    assert!(
        wait_until(10, || fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("session end: refused before relaying")),
        "{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("session start: client 127.0.0.1"), "{text}");
    assert!(text.contains("refused by TCPWrapper"), "{text}");
    assert_eq!(server.connections(), 0);
}

/// ftpgate under socat (as under xinetd) with `TCPWrapper yes` and tables
/// that deny 127.0.0.1, in front of `dest_port`.
struct WrappedProxy {
    port: u16,
    allow: PathBuf,
    deny: PathBuf,
    log: PathBuf,
    _socat: Daemon,
}

impl WrappedProxy {
    fn start(dir: &TempDir, dest_port: u16) -> WrappedProxy {
        let (allow, deny) = (dir.join("hosts.allow"), dir.join("hosts.deny"));
        let (log, conf) = (dir.join("proxy.log"), dir.join("proxy.conf"));
        fs::write(&allow, "").unwrap();
        fs::write(&deny, "ftpgate-test: 127.0.0.1\n").unwrap();
        fs::write(
            &conf,
            format!(
                "DestinationAddress 127.0.0.1\nDestinationPort {dest_port}\nLogDestination {}\n\
                 TCPWrapper yes\nTCPWrapperName ftpgate-test\n",
                log.display()
            ),
        )
        .unwrap();
        let (port, socat) = spawn_on_free_port("socat", dir.path(), |port| {
            let mut cmd = Command::new("socat");
            cmd.arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
                .arg(format!(
                    "EXEC:\"{} -i -f {}\",nofork",
                    proxy_bin().display(),
                    conf.display()
                ))
                .env("FTPGATE_HOSTS_ALLOW", &allow)
                .env("FTPGATE_HOSTS_DENY", &deny);
            cmd
        });
        WrappedProxy {
            port,
            allow,
            deny,
            log,
            _socat: socat,
        }
    }
}

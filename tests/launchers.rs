//! The launchers ftpgate ships with, each started for real (SPEC §1, §9):
//! xinetd with `xinetd.d/ftpgate`, systemd's `examples/ftpgate.socket` +
//! `examples/ftpgate@.service` (checked with `systemd-analyze verify`, run
//! with `systemd-socket-activate --inetd`), and the socat one-liner from
//! the README. Each test takes the SHIPPED text, changes only the port,
//! the binary path and the configuration path, binds to 127.0.0.1 only,
//! and fetches a file byte-exact through the launched proxy.

// Tests may call libc directly (kill, umask, ...), each block with a
// `// SAFETY:` comment; the crate-wide deny is for src/.
#![allow(unsafe_code)]

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const SHIPPED_BIN: &str = "/usr/sbin/ftpgate";
const SHIPPED_CONF: &str = "/etc/ftpgate/ftpgate.conf";

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn tool(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

fn have(test: &str, name: &str) -> bool {
    if tool(name).is_none() {
        eprintln!("SKIP {test}: {name} not installed (scripts/install-deps)");
        return false;
    }
    true
}

/// A configuration for the launched proxy: forward to `server`, log to a file.
fn write_conf(dir: &TempDir, server: &FtpServer) -> (PathBuf, PathBuf) {
    let conf = dir.join("ftpgate.conf");
    let log = dir.join("ftpgate.log");
    fs::write(
        &conf,
        format!(
            "DestinationAddress 127.0.0.1\nDestinationPort {}\nLogDestination {}\nLogLevel DBG\n",
            server.port,
            log.display()
        ),
    )
    .unwrap();
    (conf, log)
}

/// Fetch a file through the proxy on `port` (passive and active) and
/// compare it byte by byte; `what` names the launcher in messages.
fn fetch_through(
    what: &str,
    port: u16,
    server: &FtpServer,
    dir: &TempDir,
    log: &Path,
    extra: &str,
) {
    let data = random_bytes(250_000, port as u64);
    server.put("launched.bin", &data);
    for mode in [ClientMode::Passive, ClientMode::Active] {
        let out = dir.join("got.bin");
        let _ = fs::remove_file(&out);
        let url = format!(
            "ftp://{}:{}@127.0.0.1:{port}/launched.bin",
            server.user(),
            server.pass()
        );
        let r = curl(mode, &["-o", out.to_str().unwrap(), &url]);
        let log_text = fs::read_to_string(log).unwrap_or_default();
        assert!(
            r.ok(),
            "{what} {mode:?}: {}\n--- ftpgate log ---\n{log_text}\n{extra}",
            r.describe()
        );
        assert_same_bytes(
            &format!("{what} {mode:?}"),
            &fs::read(&out).unwrap_or_default(),
            &data,
        );
    }
    let log_text = fs::read_to_string(log).unwrap_or_default();
    assert!(
        log_text.contains("session start: client 127.0.0.1"),
        "{what}: ftpgate did not see the client socket on stdin:\n{log_text}"
    );
}

/// `server`/`server_args` (xinetd) or `ExecStart=` (systemd) with the
/// shipped paths replaced; panics if the shipped text does not use them.
fn retarget(text: &str, conf: &Path) -> String {
    assert!(
        text.contains(SHIPPED_BIN) && text.contains(SHIPPED_CONF),
        "shipped launcher no longer names {SHIPPED_BIN} / {SHIPPED_CONF}"
    );
    text.replace(SHIPPED_BIN, &proxy_bin().display().to_string())
        .replace(SHIPPED_CONF, &conf.display().to_string())
}

/// xinetd running the first service entry of the shipped file on a free
/// loopback port with `conf`; returns the port, the daemon and a text
/// with xinetd's configuration and log for failure messages.
fn start_shipped_xinetd(dir: &TempDir, conf: &Path) -> (u16, Daemon, String) {
    let entry = fs::read_to_string(repo("xinetd.d/ftpgate")).unwrap();
    // The first service block of the shipped file, body only.
    let open = entry.find("service ").expect("no service entry");
    let body_start = entry[open..].find('{').unwrap() + open + 1;
    let body_end = entry[body_start..].find('}').unwrap() + body_start;
    let body = retarget(&entry[body_start..body_end], conf);
    assert!(body.contains("wait") && body.contains("socket_type"));
    let port = free_port();
    let xconf = dir.join("xinetd.conf");
    fs::write(
        &xconf,
        format!(
            "defaults\n{{\n\tlog_type = FILE {}\n}}\n\n\
             # The shipped entry, with port, bind and paths for the test.\n\
             service ftpgate-test\n{{{body}\
             \ttype\t\t= UNLISTED\n\tport\t\t= {port}\n\tbind\t\t= 127.0.0.1\n}}\n",
            dir.join("xinetd.log").display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(tool("xinetd").unwrap());
    cmd.args(["-dontfork", "-pidfile"])
        .arg(dir.join("xinetd.pid"))
        .arg("-f")
        .arg(&xconf);
    let mut d = Daemon::spawn("xinetd", cmd, dir.path());
    d.wait_listening(port);
    let xlog = format!(
        "--- xinetd.conf ---\n{}\n--- xinetd log ---\n{}\n{}",
        fs::read_to_string(&xconf).unwrap_or_default(),
        fs::read_to_string(dir.join("xinetd.log")).unwrap_or_default(),
        d.output()
    );
    (port, d, xlog)
}

#[test]
fn xinetd_runs_the_shipped_service_entry() {
    let test = "xinetd_runs_the_shipped_service_entry";
    if !have(test, "xinetd") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("xinetd");
    let (conf, log) = write_conf(&dir, &server);
    let (port, _xinetd, xlog) = start_shipped_xinetd(&dir, &conf);
    fetch_through("xinetd", port, &server, &dir, &log, &xlog);
}

/// xinetd makes the client socket ftpgate's standard error too: a start-up
/// failure must reach the client as one 421 line, its details (paths,
/// errno) only the administrator.
#[test]
fn under_xinetd_a_start_up_failure_sends_the_client_only_a_421() {
    let test = "under_xinetd_a_start_up_failure_sends_the_client_only_a_421";
    if !have(test, "xinetd") || skip_unless_ftpgate(test) {
        return;
    }
    let dir = TempDir::new("xinetd-nolog");
    let conf = dir.join("ftpgate.conf");
    let missing = dir.join("no-such-dir/ftpgate.log");
    fs::write(
        &conf,
        format!(
            "DestinationAddress 127.0.0.1\nDestinationPort {}\nLogDestination {}\n",
            dead_port(),
            missing.display()
        ),
    )
    .unwrap();
    let (port, _xinetd, xlog) = start_shipped_xinetd(&dir, &conf);
    let mut ctrl = Ctrl::connect(port);
    let got = ctrl.drain(10);
    assert!(
        got.starts_with("421 "),
        "expected a 421, got {got:?}\n{xlog}"
    );
    assert_eq!(
        got.lines().count(),
        1,
        "the client got more than the 421 line: {got:?}"
    );
    assert!(
        !got.contains("no-such-dir") && !got.contains("os error"),
        "internal detail reached the client: {got:?}"
    );
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let test = "systemd_units_pass_systemd_analyze_verify";
    if !have(test, "systemd-analyze") {
        return;
    }
    let dir = TempDir::new("units");
    let conf = dir.join("ftpgate.conf");
    fs::write(&conf, "DestinationAddress 127.0.0.1\n").unwrap();
    let service = fs::read_to_string(repo("examples/ftpgate@.service")).unwrap();
    let socket = fs::read_to_string(repo("examples/ftpgate.socket")).unwrap();
    // The sandboxing the README promises is there.
    for key in [
        "StandardInput=socket",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=CAP_SYS_CHROOT CAP_SETUID CAP_SETGID CAP_NET_BIND_SERVICE",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    ] {
        assert!(service.contains(key), "ftpgate@.service lacks {key}");
    }
    assert!(
        socket.contains("Accept=yes"),
        "ftpgate.socket lacks Accept=yes"
    );
    // verify checks that ExecStart's binary exists: point it at ours.
    fs::write(dir.join("ftpgate@.service"), retarget(&service, &conf)).unwrap();
    fs::write(dir.join("ftpgate.socket"), &socket).unwrap();
    let mut cmd = Command::new(tool("systemd-analyze").unwrap());
    cmd.current_dir(dir.path())
        .args(["verify", "--man=no", "ftpgate.socket", "ftpgate@.service"]);
    let r = run_bounded(cmd, 60);
    assert!(r.ok(), "systemd-analyze verify: {}", r.describe());
    // Unknown keys and bad values are only warnings: refuse them too.
    let noise: Vec<&str> = r.stderr.lines().filter(|l| l.contains("ftpgate")).collect();
    assert!(noise.is_empty(), "systemd-analyze complains: {noise:#?}");

    // And a broken unit is caught (the check can fail).
    fs::write(
        dir.join("ftpgate@.service"),
        service.replace(SHIPPED_BIN, "/nonexistent/ftpgate"),
    )
    .unwrap();
    let mut cmd = Command::new(tool("systemd-analyze").unwrap());
    cmd.current_dir(dir.path())
        .args(["verify", "--man=no", "ftpgate.socket", "ftpgate@.service"]);
    let r = run_bounded(cmd, 60);
    assert!(!r.ok(), "verify accepted a unit with a missing binary");
}

#[test]
fn systemd_socket_activate_inetd_runs_the_units_exec_start() {
    let test = "systemd_socket_activate_inetd_runs_the_units_exec_start";
    if !have(test, "systemd-socket-activate") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("socket-activate");
    let (conf, log) = write_conf(&dir, &server);
    let service = fs::read_to_string(repo("examples/ftpgate@.service")).unwrap();
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("no ExecStart");
    let exec = retarget(exec, &conf);
    let port = free_port();
    let mut cmd = Command::new(tool("systemd-socket-activate").unwrap());
    // --accept --inetd: what Accept=yes + StandardInput=socket does.
    cmd.args(["--accept", "--inetd", "-l", &format!("127.0.0.1:{port}")])
        .args(exec.split_whitespace());
    let mut d = Daemon::spawn("systemd-socket-activate", cmd, dir.path());
    d.wait_listening(port);
    let out = d.output();
    fetch_through("systemd-socket-activate", port, &server, &dir, &log, &out);
}

/// `systemd-socket-activate --inetd` WITHOUT `--accept` (and a socket unit
/// with `Accept=no`) hands over the listening socket itself, once the first
/// client knocks: ftpgate serves it like `-d -n`, one child per session,
/// for every later client too, and stops on SIGTERM.
#[test]
fn systemd_socket_activate_inetd_without_accept_serves_every_client() {
    let test = "systemd_socket_activate_inetd_without_accept_serves_every_client";
    if !have(test, "systemd-socket-activate") || skip_unless_ftpgate(test) {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("socket-activate-wait");
    let (conf, log) = write_conf(&dir, &server);
    let port = free_port();
    let mut cmd = Command::new(tool("systemd-socket-activate").unwrap());
    cmd.args(["--inetd", "-l", &format!("127.0.0.1:{port}")])
        .arg(proxy_bin())
        .arg("-i")
        .arg("-f")
        .arg(&conf);
    let mut d = Daemon::spawn("systemd-socket-activate", cmd, dir.path());
    d.wait_listening(port);
    let out = d.output();
    // Two transfers and a raw session: three clients, one after another.
    fetch_through(
        "systemd-socket-activate (no --accept)",
        port,
        &server,
        &dir,
        &log,
        &out,
    );
    let mut c = Ctrl::connect(port);
    assert_eq!(c.reply().code, 220, "{}", d.output());
    assert_eq!(c.cmd("QUIT").code, 221);
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        text.matches("session start: client 127.0.0.1").count(),
        3,
        "{text}"
    );
    // SAFETY: kill(2) of the process this test started (the launcher
    // exec'd ftpgate, so it has the launcher's PID).
    unsafe {
        libc::kill(d.pid() as libc::pid_t, libc::SIGTERM);
    }
    assert!(
        wait_until(15, || d.child.try_wait().unwrap().is_some()),
        "ftpgate did not stop on SIGTERM"
    );
    assert!(!is_listening(port));
}

#[test]
fn the_readme_socat_one_liner_runs_ftpgate() {
    let test = "the_readme_socat_one_liner_runs_ftpgate";
    if !have(test, "socat") {
        return;
    }
    let readme = fs::read_to_string(repo("README.md")).unwrap();
    // The indented command after "The same by hand", with its `\` lines.
    let at = readme
        .find("The same by hand")
        .expect("README lost its socat one-liner");
    let mut line = String::new();
    for l in readme[at..]
        .lines()
        .skip(1)
        .skip_while(|l| l.trim().is_empty())
    {
        let l = l.trim();
        if let Some(part) = l.strip_suffix('\\') {
            line.push_str(part);
        } else {
            line.push_str(l);
            break;
        }
    }
    assert!(line.starts_with("socat "), "not a socat command: {line}");
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("socat-readme");
    let (conf, log) = write_conf(&dir, &server);
    let port = free_port();
    assert!(line.contains("2121") && line.contains("/path/to/ftpgate"));
    let line = line
        .replace("2121", &port.to_string())
        .replace("/path/to/ftpgate", &proxy_bin().display().to_string())
        .replace(SHIPPED_CONF, &conf.display().to_string());
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("exec {line}"));
    let mut d = Daemon::spawn("socat (README)", cmd, dir.path());
    d.wait_listening(port);
    let out = d.output();
    fetch_through("README socat one-liner", port, &server, &dir, &log, &out);
}

/// Issue 4: a launcher (here a wrapper shell under socat) that leaves a
/// descriptor open: the inetd-mode session closes it before the jail, so
/// no file or directory outside the jail reaches the session.
#[test]
fn descriptors_a_launcher_leaves_open_do_not_reach_an_inetd_session() {
    let test = "descriptors_a_launcher_leaves_open_do_not_reach_an_inetd_session";
    if skip_unless_ftpgate(test) || !have(test, "socat") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("inetd-fd");
    let outside = dir.join("outside.txt");
    fs::write(&outside, b"not for the session\n").unwrap();
    let log = dir.join("proxy.log");
    let conf = dir.join("proxy.conf");
    fs::write(
        &conf,
        format!(
            "DestinationAddress 127.0.0.1\nDestinationPort {}\nLogDestination {}\n",
            server.port,
            log.display()
        ),
    )
    .unwrap();
    let wrapper = dir.join("wrapper.sh");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec 7<{} 8<{}\nexec {} -i -f {}\n",
            outside.display(),
            dir.path().display(),
            proxy_bin().display(),
            conf.display()
        ),
    )
    .unwrap();
    set_mode(&wrapper, 0o755);
    let (port, d) = spawn_on_free_port("socat", dir.path(), |port| {
        let mut cmd = Command::new("socat");
        cmd.arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
            .arg(format!("EXEC:{},nofork", wrapper.display()));
        cmd
    });
    let mut c = Ctrl::connect(port);
    assert_eq!(c.reply().code, 220);
    let session = {
        let mut found = None;
        assert!(
            wait_until(10, || {
                found = descendants(d.pid()).into_iter().find(|&p| {
                    fs::read_link(format!("/proc/{p}/exe"))
                        .map(|e| e.file_name() == proxy_bin().file_name())
                        .unwrap_or(false)
                });
                found.is_some()
            }),
            "no session process"
        );
        found.unwrap()
    };
    let outside = fs::canonicalize(&outside).unwrap();
    let here = fs::canonicalize(dir.path()).unwrap();
    let fds: Vec<(String, PathBuf)> = fs::read_dir(format!("/proc/{session}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read_link(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    for (fd, target) in &fds {
        assert!(
            *target != outside && *target != here,
            "session {session} holds {} as fd {fd}: {fds:?}",
            target.display()
        );
    }
    assert_eq!(c.cmd("QUIT").code, 221);
}

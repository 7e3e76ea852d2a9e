//! Command line: -c, -V, and a broken configuration in inetd mode.

// Tests may call libc directly (kill, umask, ...), each block with a
// `// SAFETY:` comment; the crate-wide deny is for src/.
#![allow(unsafe_code)]

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

fn run_proxy(args: &[&str]) -> Ran {
    let mut cmd = Command::new(proxy_bin());
    cmd.args(args);
    run_bounded(cmd, 30)
}

#[test]
fn check_of_debians_ftp_proxy_conf_exits_0_and_prints_the_options() {
    let conf = "/etc/proxy-suite/ftp-proxy.conf";
    if !Path::new(conf).exists() {
        eprintln!("SKIP: {conf} not installed (package ftp-proxy)");
        return;
    }
    let r = run_proxy(&["-c", "-f", conf]);
    assert!(r.ok(), "-c failed: {}", r.describe());
    let out = format!("{}{}", r.stdout, r.stderr).to_ascii_lowercase();
    for opt in [
        "destinationaddress",
        "localhost",
        "port",
        "2121",
        "user",
        "nobody",
        "group",
        "nogroup",
    ] {
        assert!(
            out.contains(opt),
            "-c output lacks {opt:?}: {}",
            r.describe()
        );
    }
}

#[test]
fn check_of_the_shipped_example_configuration_exits_0() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ftpgate.conf");
    let r = run_proxy(&["-c", "-f", conf.to_str().unwrap()]);
    assert!(
        r.ok(),
        "-c on examples/ftpgate.conf failed: {}",
        r.describe()
    );
    assert!(
        format!("{}{}", r.stdout, r.stderr)
            .to_ascii_lowercase()
            .contains("destinationaddress"),
        "{}",
        r.describe()
    );
}

#[test]
fn check_of_a_file_with_an_unknown_option_exits_nonzero_naming_file_and_line() {
    if skip_known_ftp_proxy_difference(
        "check_of_a_file_with_an_unknown_option_exits_nonzero_naming_file_and_line",
        "ftp-proxy -c accepts and prints unknown options, exit 0",
    ) {
        return;
    }
    let dir = TempDir::new("cli");
    let conf = dir.join("bad.conf");
    fs::write(&conf, "DestinationAddress 127.0.0.1\nNoSuchOption 42\n").unwrap();
    let r = run_proxy(&["-c", "-f", conf.to_str().unwrap()]);
    assert!(!r.ok(), "-c accepted an unknown option: {}", r.describe());
    assert!(r.status.is_some(), "-c hung");
    let where_ = format!("{}:2", conf.display());
    assert!(
        r.stdout.contains(&where_) || r.stderr.contains(&where_),
        "error does not name {where_}: {}",
        r.describe()
    );
}

#[test]
fn check_of_a_file_with_a_bad_value_exits_nonzero_naming_file_and_line() {
    if skip_known_ftp_proxy_difference(
        "check_of_a_file_with_a_bad_value_exits_nonzero_naming_file_and_line",
        "ftp-proxy -c does not type-check values",
    ) {
        return;
    }
    let dir = TempDir::new("cli");
    let conf = dir.join("bad.conf");
    fs::write(
        &conf,
        "DestinationAddress 127.0.0.1\n# comment\nTimeOut soon\n",
    )
    .unwrap();
    let r = run_proxy(&["-c", "-f", conf.to_str().unwrap()]);
    assert!(!r.ok(), "-c accepted TimeOut soon: {}", r.describe());
    let where_ = format!("{}:3", conf.display());
    assert!(
        r.stdout.contains(&where_) || r.stderr.contains(&where_),
        "error does not name {where_}: {}",
        r.describe()
    );
}

#[test]
fn version_flag_exits_0_and_prints_a_version() {
    let r = run_proxy(&["-V"]);
    assert!(r.ok(), "-V failed: {}", r.describe());
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(
        out.chars().any(|c| c.is_ascii_digit()),
        "no version number: {out:?}"
    );
}

// Issue 14 item 10: User root (by name or number) keeps root in the
// session, which can escape the jail: -c warns, and so does each session.
#[test]
fn user_root_is_warned_about_by_check_and_at_session_start() {
    if skip_unless_ftpgate("user_root_is_warned_about_by_check_and_at_session_start") {
        return;
    }
    let dir = TempDir::new("cli");
    for user in ["root", "0"] {
        let conf = dir.join("root.conf");
        fs::write(
            &conf,
            format!("DestinationAddress 127.0.0.1\nUser {user}\n"),
        )
        .unwrap();
        let r = run_proxy(&["-c", "-f", conf.to_str().unwrap()]);
        assert!(r.ok(), "the file itself is fine: {}", r.describe());
        assert!(
            r.stderr.contains("warning") && r.stderr.contains("User is root"),
            "no warning for User {user}: {}",
            r.describe()
        );
    }
    // Without User: no such warning.
    let conf = dir.join("plain.conf");
    fs::write(&conf, "DestinationAddress 127.0.0.1\n").unwrap();
    let r = run_proxy(&["-c", "-f", conf.to_str().unwrap()]);
    assert!(!r.stderr.contains("User is root"), "{}", r.describe());
    // The session log says it at start.
    let proxy = Proxy::start(free_port(), "User root");
    let mut c = Ctrl::connect(proxy.port);
    let _ = c.drain(5);
    let warned = wait_until(START_SECS, || proxy.log_text().contains("User is root"));
    assert!(warned, "no WRN in the session log: {}", proxy.output());
}

#[test]
fn broken_configuration_in_inetd_mode_answers_421() {
    if skip_known_ftp_proxy_difference(
        "broken_configuration_in_inetd_mode_answers_421",
        "ftp-proxy ignores unknown options",
    ) {
        return;
    }
    let proxy = Proxy::start(free_port(), "NoSuchOption 42");
    let mut c = Ctrl::connect(proxy.port);
    let got = c.drain(15);
    assert!(
        got.starts_with("421"),
        "no 421 for a broken configuration: {got:?}"
    );
    assert!(got.ends_with("\r\n"), "reply not CRLF-terminated: {got:?}");
    // The reason goes to the LogDestination the file names (its line is
    // valid), with file and line.
    let named = wait_until(START_SECS, || proxy.log_text().contains("NoSuchOption"));
    let log = proxy.log_text();
    assert!(named, "reason not in the file's log: {log:?}");
    assert!(log.contains("proxy.conf:"), "no file and line: {log:?}");
}

/// SPEC 2: the log is never a world-writable file. An existing one is
/// refused like a log that cannot be opened (421), and nothing is
/// written to it; /dev/null (world-writable, not a file) stays usable.
#[test]
fn a_world_writable_log_file_is_refused_with_421_and_left_unwritten() {
    let test = "a_world_writable_log_file_is_refused_with_421_and_left_unwritten";
    if skip_unless_ftpgate(test) {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, "");
    fs::write(&proxy.log, "").unwrap();
    set_mode(&proxy.log, 0o666);
    let mut c = Ctrl::connect(proxy.port);
    let got = c.drain(15);
    assert!(got.starts_with("421 "), "no 421: {got:?}");
    assert_eq!(
        fs::read(&proxy.log).unwrap(),
        b"",
        "ftpgate wrote to a world-writable log file"
    );
    // -c says so (a warning: the file is about this host, exit status 0).
    let r = run_proxy(&["-c", "-f", proxy.conf.to_str().unwrap()]);
    assert!(
        r.ok() && r.stderr.contains("world-writable"),
        "-c: {}",
        r.describe()
    );
    set_mode(&proxy.log, 0o640);
    // A file another user owns (e.g. planted in a shared directory) is
    // refused the same way (needs root to give it away).
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::fs::chown;
        chown(&proxy.log, Some(65534), None).unwrap();
        let mut c = Ctrl::connect(proxy.port);
        let got = c.drain(15);
        chown(&proxy.log, Some(0), None).unwrap();
        assert!(
            got.starts_with("421 "),
            "log owned by another user: {got:?}"
        );
        assert_eq!(fs::read(&proxy.log).unwrap(), b"");
    }
    // Fixed by the administrator: sessions work again.
    let mut c = Ctrl::connect(proxy.port);
    let greeting = c.reply();
    assert_eq!(greeting.code, 220, "{}", proxy.output());
    let body = format!(
        "DestinationAddress 127.0.0.1\nDestinationPort {}\nLogDestination /dev/null\n",
        server.port
    );
    let devnull = Proxy::start_raw(&body);
    let mut c = Ctrl::connect(devnull.port);
    assert_eq!(c.reply().code, 220, "LogDestination /dev/null refused");
}

#[test]
fn check_accepts_latin1_comments_as_ftp_proxy_does_and_names_a_latin1_value_line() {
    let dir = TempDir::new("cli");
    let conf = dir.join("latin1.conf");
    fs::write(
        &conf,
        b"# Konfiguration f\xfcr den Proxy\nDestinationAddress 127.0.0.1\n   # Gr\xfc\xdfe\nTimeOut 60\n",
    )
    .unwrap();
    let r = run_proxy(&["-c", "-f", conf.to_str().unwrap()]);
    assert!(r.ok(), "-c refused a Latin-1 comment: {}", r.describe());
    assert!(r.stdout.contains("'60'"), "{}", r.describe());
    if skip_known_ftp_proxy_difference(
        "check_accepts_latin1_comments_as_ftp_proxy_does_and_names_a_latin1_value_line",
        "ftp-proxy takes a byte order mark as part of the first option's name",
    ) {
        return;
    }
    // A byte order mark and CRLF line ends, as a Windows editor writes.
    fs::write(
        &conf,
        b"\xef\xbb\xbfDestinationAddress 127.0.0.1\r\nTimeOut 60\r\n",
    )
    .unwrap();
    let r = run_proxy(&["-c", "-f", conf.to_str().unwrap()]);
    assert!(r.ok(), "-c refused a BOM: {}", r.describe());
    assert!(r.stdout.contains("'127.0.0.1'"), "{}", r.describe());
    if skip_known_ftp_proxy_difference(
        "check_accepts_latin1_comments_as_ftp_proxy_does_and_names_a_latin1_value_line",
        "ftp-proxy passes Latin-1 values on as bytes",
    ) {
        return;
    }
    fs::write(
        &conf,
        b"# f\xfcr\nDestinationAddress 127.0.0.1\nWelcomeString Gr\xfc\xdf Gott\n",
    )
    .unwrap();
    let r = run_proxy(&["-c", "-f", conf.to_str().unwrap()]);
    assert!(!r.ok(), "-c accepted a Latin-1 value: {}", r.describe());
    let where_ = format!("{}:3", conf.display());
    assert!(r.stderr.contains(&where_), "{}", r.describe());
}

#[test]
fn check_names_every_bad_valid_commands_entry() {
    if skip_known_ftp_proxy_difference(
        "check_names_every_bad_valid_commands_entry",
        "ftp-proxy -c does not check ValidCommands",
    ) {
        return;
    }
    let dir = TempDir::new("cli");
    let conf = dir.join("bad.conf");
    fs::write(
        &conf,
        "DestinationAddress 127.0.0.1\nValidCommands USER XYZ PASS RETR=( QUIT\n",
    )
    .unwrap();
    let r = run_proxy(&["-c", "-f", conf.to_str().unwrap()]);
    assert!(!r.ok(), "-c accepted bad entries: {}", r.describe());
    for entry in ["'XYZ'", "'RETR=('", &format!("{}:2", conf.display())] {
        assert!(r.stderr.contains(entry), "{entry}: {}", r.describe());
    }
}

#[test]
fn check_refuses_host_values_that_can_never_resolve() {
    if skip_known_ftp_proxy_difference(
        "check_refuses_host_values_that_can_never_resolve",
        "ftp-proxy -c does not check values",
    ) {
        return;
    }
    let dir = TempDir::new("cli");
    let conf = dir.join("bad.conf");
    fs::write(
        &conf,
        "DestinationAddress ftp example com\nTranslatedAddress 2001:db8::1\nListen 0.0.0.0:21\n",
    )
    .unwrap();
    let r = run_proxy(&["-c", "-f", conf.to_str().unwrap()]);
    assert!(!r.ok(), "-c accepted them: {}", r.describe());
    for line in 1..=3 {
        let where_ = format!("{}:{line}:", conf.display());
        assert!(r.stderr.contains(&where_), "{where_}: {}", r.describe());
    }
}

#[test]
fn check_warns_about_a_user_or_server_root_this_host_lacks_and_still_exits_0() {
    if skip_unless_ftpgate(
        "check_warns_about_a_user_or_server_root_this_host_lacks_and_still_exits_0",
    ) {
        return;
    }
    let dir = TempDir::new("cli");
    let conf = dir.join("env.conf");
    fs::write(
        &conf,
        "DestinationAddress 127.0.0.1\nUser nosuchuser-ftpgate\nServerRoot /nonexistent/ftpgate-jail\n",
    )
    .unwrap();
    let r = run_proxy(&["-c", "-f", conf.to_str().unwrap()]);
    assert!(r.ok(), "the file itself is fine: {}", r.describe());
    assert!(r.stdout.contains("nosuchuser-ftpgate"), "{}", r.describe());
    for what in ["nosuchuser-ftpgate", "/nonexistent/ftpgate-jail"] {
        assert!(
            r.stderr.contains("warning") && r.stderr.contains(what),
            "no warning about {what}: {}",
            r.describe()
        );
    }
}

#[test]
fn double_dash_ends_the_options_and_a_stray_argument_is_a_usage_error() {
    if skip_unless_ftpgate("double_dash_ends_the_options_and_a_stray_argument_is_a_usage_error") {
        return;
    }
    let dir = TempDir::new("cli");
    let conf = dir.join("ok.conf");
    fs::write(&conf, "DestinationAddress 127.0.0.1\n").unwrap();
    let r = run_proxy(&["-c", "-f", conf.to_str().unwrap(), "--"]);
    assert!(r.ok(), "{}", r.describe());
    for extra in [&["--", "-i"][..], &["stray"][..]] {
        let mut args = vec!["-c", "-f", conf.to_str().unwrap()];
        args.extend_from_slice(extra);
        let r = run_proxy(&args);
        assert_eq!(
            r.status.and_then(|s| s.code()),
            Some(2),
            "{extra:?}: {}",
            r.describe()
        );
        assert!(
            r.stderr.starts_with("ftpgate: ") && r.stderr.contains("unexpected argument"),
            "{extra:?}: {}",
            r.describe()
        );
    }
}

#[test]
fn check_takes_port_names_from_etc_services_like_getservbyname() {
    let services = fs::read_to_string("/etc/services").unwrap_or_default();
    if !services
        .lines()
        .any(|l| l.starts_with("http-alt\t8080/tcp"))
    {
        eprintln!("SKIP: /etc/services without http-alt (package netbase)");
        return;
    }
    let dir = TempDir::new("cli");
    let conf = dir.join("services.conf");
    fs::write(
        &conf,
        "DestinationAddress 127.0.0.1\nDestinationPort http-alt\nPort ftp\n[bob]\nDestinationPort http-alt\n",
    )
    .unwrap();
    let r = run_proxy(&["-c", "-f", conf.to_str().unwrap()]);
    assert!(r.ok(), "{}", r.describe());
    assert!(r.stdout.contains("'http-alt'"), "{}", r.describe());
    if skip_known_ftp_proxy_difference(
        "check_takes_port_names_from_etc_services_like_getservbyname",
        "ftp-proxy -c does not check values",
    ) {
        return;
    }
    fs::write(
        &conf,
        "DestinationAddress 127.0.0.1\nDestinationPort no-such-service-ftpgate\n",
    )
    .unwrap();
    let r = run_proxy(&["-c", "-f", conf.to_str().unwrap()]);
    assert!(!r.ok(), "{}", r.describe());
    assert!(
        r.stderr.contains(&format!("{}:2:", conf.display())),
        "{}",
        r.describe()
    );
}

/// SPEC 1: standard input that is not an accepted TCP connection (a pipe,
/// a terminal, a socketpair) is said clearly to the log and to the client.
#[test]
fn stdin_that_is_not_a_tcp_connection_is_named_in_the_log_and_to_the_client() {
    let test = "stdin_that_is_not_a_tcp_connection_is_named_in_the_log_and_to_the_client";
    if skip_unless_ftpgate(test) {
        return;
    }
    let dir = TempDir::new("stdin-kinds");
    let log = dir.join("proxy.log");
    let conf = dir.join("proxy.conf");
    fs::write(
        &conf,
        format!(
            "DestinationAddress 127.0.0.1\nDestinationPort {}\nLogDestination {}\n",
            dead_port(),
            log.display()
        ),
    )
    .unwrap();
    // Each launcher runs the proxy with stdin/stdout as its kind of file
    // and prints what the proxy wrote there, then "status N".
    let script = r#"
import os, pty, socket, subprocess, sys
kind, bin, conf = sys.argv[1:4]
if kind == "pipe":
    p = subprocess.Popen([bin, "-i", "-f", conf], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out, _ = p.communicate(timeout=10)
    got = out.decode()
elif kind == "terminal":
    m, s = pty.openpty()
    p = subprocess.Popen([bin, "-i", "-f", conf], stdin=s, stdout=s,
                         stderr=subprocess.DEVNULL)
    os.close(s)
    p.wait(timeout=10)
    got = os.read(m, 4096).decode()
else:
    a, b = socket.socketpair()
    p = subprocess.Popen([bin, "-i", "-f", conf], stdin=b, stdout=b,
                         stderr=subprocess.DEVNULL)
    b.close()
    p.wait(timeout=10)
    a.settimeout(5)
    got = a.recv(4096).decode()
print(got.strip())
print("status", p.returncode)
"#;
    let bin = proxy_bin();
    for (kind, says) in [
        ("pipe", "not a socket"),
        ("terminal", "not a socket"),
        ("socketpair", "without a TCP peer"),
    ] {
        let _ = fs::remove_file(&log);
        let r = python_script(
            script,
            &[kind, bin.to_str().unwrap(), conf.to_str().unwrap()],
        );
        assert!(r.ok(), "{kind}: {}", r.describe());
        assert!(
            r.stdout.starts_with("421 ") && r.stdout.contains(says),
            "{kind}: client saw {:?}",
            r.stdout
        );
        assert!(r.stdout.contains("status 1"), "{kind}: {}", r.stdout);
        let text = fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains("ERR") && text.contains(says),
            "{kind}: log says {text:?}"
        );
    }
}

/// SPEC 12: AuditLog and XferLog follow the log file's safety rules; `-c`
/// warns about an unsafe one as it does for LogDestination (a session
/// would be refused with 421).
#[test]
fn check_warns_about_a_world_writable_audit_log_or_xferlog() {
    if skip_unless_ftpgate("check_warns_about_a_world_writable_audit_log_or_xferlog") {
        return;
    }
    let dir = TempDir::new("trailcheck");
    let trail = dir.join("trail.log");
    fs::write(&trail, "").unwrap();
    set_mode(&trail, 0o666);
    for option in ["AuditLog", "XferLog"] {
        let conf = dir.join("ftpgate.conf");
        fs::write(
            &conf,
            format!(
                "DestinationAddress 127.0.0.1\n{option} {}\n",
                trail.display()
            ),
        )
        .unwrap();
        let r = run_proxy(&["-c", "-f", conf.to_str().unwrap()]);
        assert!(
            r.ok()
                && r.stderr.contains(&format!("{option}: "))
                && r.stderr.contains("world-writable"),
            "-c with a world-writable {option}: {}",
            r.describe()
        );
    }
}

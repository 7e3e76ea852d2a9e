//! SPEC 15: every session runs confined: seccomp (a forbidden system call
//! kills it) and Landlock, entered after the jail and the privilege drop.

mod common;

use common::*;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

/// A live session shows `Seccomp: 2` and `NoNewPrivs: 1`, and its log
/// says what the sandbox could do.
#[test]
fn a_running_session_is_under_seccomp_with_no_new_privs() {
    if skip_unless_ftpgate("a_running_session_is_under_seccomp") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, "LogLevel DBG");
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    let pids = proxy.sessions();
    assert_eq!(pids.len(), 1, "{pids:?}");
    let status = fs::read_to_string(format!("/proc/{}/status", pids[0])).unwrap();
    assert!(status.contains("Seccomp:\t2"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    // The session still works under the filter: a transfer, then QUIT.
    assert_eq!(c.cmd("PWD").code, 257);
    assert_eq!(c.cmd("QUIT").code, 221);
    let log = proxy.log_text();
    assert!(
        log.contains("sandbox: seccomp on, Landlock enforced"),
        "{log}"
    );
}

/// A debug build's self-test makes a system call the filter does not
/// allow (openat) right after entering the sandbox: the kernel kills the
/// session with SIGSYS.
#[test]
fn a_forbidden_system_call_kills_the_session() {
    if skip_unless_ftpgate("a_forbidden_system_call_kills_the_session") {
        return;
    }
    let bin = proxy_bin();
    if !bin.to_string_lossy().contains("/debug/") {
        eprintln!(
            "SKIP a_forbidden_system_call_kills_the_session: the hook is in debug builds only"
        );
        return;
    }
    let dir = TempDir::new("sandbox");
    let conf = dir.join("proxy.conf");
    fs::write(
        &conf,
        format!(
            "DestinationAddress 127.0.0.1\nDestinationPort {}\nLogDestination {}\n",
            dead_port(),
            dir.join("proxy.log").display()
        ),
    )
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (session, _) = listener.accept().unwrap();
    let stdin: std::os::fd::OwnedFd = session.try_clone().unwrap().into();
    let stdout: std::os::fd::OwnedFd = session.into();
    let mut child = Command::new(&bin)
        .arg("-i")
        .arg("-f")
        .arg(&conf)
        .env("FTPGATE_SANDBOX_SELFTEST", "1")
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the session did not end");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(libc_sigsys()), "{status:?}");
    drop(client);
    // Without the hook the same session greets the client.
    let proxy = Proxy::start(dead_port(), "");
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 220);
}

fn libc_sigsys() -> i32 {
    31
}

/// The sandbox holds with every kind of LogDestination: a pipe to a
/// command (written to after the jail) and syslog.
#[test]
fn sessions_log_through_a_pipe_and_to_syslog_under_the_sandbox() {
    if skip_unless_ftpgate("sessions_log_through_a_pipe_and_to_syslog") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    server.put("a.txt", b"hello\n");
    let dir = TempDir::new("sandbox-logs");
    let piped = dir.join("piped.log");
    for dest in [format!("|cat >> {}", piped.display()), "local0".to_string()] {
        let conf = dir.join("proxy.conf");
        fs::write(
            &conf,
            format!(
                "DestinationAddress 127.0.0.1\nDestinationPort {}\nLogDestination {dest}\n",
                server.port
            ),
        )
        .unwrap();
        let (port, _socat) = spawn_on_free_port("socat", dir.path(), |port| {
            let mut cmd = Command::new("socat");
            cmd.arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
                .arg(format!(
                    "EXEC:\"{} -i -f {}\",nofork",
                    proxy_bin().display(),
                    conf.display()
                ));
            cmd
        });
        let r = curl(
            ClientMode::Passive,
            &[&format!("ftp://test:secret@127.0.0.1:{port}/a.txt")],
        );
        assert!(r.ok(), "{dest}: {}", r.describe());
        assert_eq!(r.stdout, "hello\n", "{dest}");
    }
    assert!(
        wait_until(10, || fs::read_to_string(&piped)
            .unwrap_or_default()
            .contains("session end")),
        "{}",
        fs::read_to_string(&piped).unwrap_or_default()
    );
}

//! SPEC 13: the policy simulator, `ftpgate -f FILE --explain CLIENT USER
//! [COMMAND...]`: output, deciding rules, exit status; no traffic.

mod common;

use common::*;
use std::fs;
use std::process::Command;

const CONF: &str = "DestinationAddress 198.51.100.7
ClientClass internal 10.0.0.0/8 fd00::/8
ValidCommands USER,PASS,RETR,PASV,QUIT
[-Class-internal-]
ValidCommands USER,PASS,RETR,STOR,PASV,QUIT
AllowMagicUser yes
AllowedDestinations 203.0.113.0/24
[bob]
ValidCommands USER,PASS,RETR=^[a-z]+$,QUIT
";

fn explain(args: &[&str]) -> (i32, String) {
    let dir = TempDir::new("explain");
    let conf = dir.join("proxy.conf");
    fs::write(&conf, CONF).unwrap();
    let mut cmd = Command::new(proxy_bin());
    cmd.arg("-f").arg(&conf).arg("--explain").args(args);
    let r = run_bounded(cmd, 10);
    let out = r.stdout.replace(&conf.display().to_string(), "FILE");
    (r.status.and_then(|s| s.code()).unwrap_or(-1), out)
}

#[test]
fn an_internal_client_may_upload_and_choose_an_allowed_server() {
    if skip_unless_ftpgate("an_internal_client_may_upload") {
        return;
    }
    let (code, out) = explain(&["10.1.2.3", "anna@203.0.113.9", "STOR x", "RETR y"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("class internal (FILE:2)"), "{out}");
    assert!(
        out.contains("allowed (rule AllowedDestinations FILE:7, context class internal)"),
        "{out}"
    );
    assert!(
        out.contains(
            "command 'STOR x': allowed (rule ValidCommands FILE:5, context class internal)"
        ),
        "{out}"
    );
}

#[test]
fn an_external_client_is_refused_with_the_deciding_line() {
    if skip_unless_ftpgate("an_external_client_is_refused") {
        return;
    }
    let (code, out) = explain(&["192.0.2.1", "anna", "STOR x"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no class"), "{out}");
    assert!(out.contains("command 'STOR x': refused 502"), "{out}");
    assert!(
        out.contains("(rule ValidCommands FILE:3, context global)"),
        "{out}"
    );
}

#[test]
fn a_user_context_and_a_refused_destination_are_named() {
    if skip_unless_ftpgate("a_user_context_and_a_refused_destination") {
        return;
    }
    let (code, out) = explain(&["10.9.9.9", "bob@198.51.100.99", "RETR abc", "RETR ../x"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("user 'bob': context [bob] (FILE:8)"), "{out}");
    assert!(
        out.contains("refused: 198.51.100.99:21: destination is not in AllowedDestinations"),
        "{out}"
    );
    assert!(
        out.contains("command 'RETR abc': allowed (rule ValidCommands FILE:9, context user bob)"),
        "{out}"
    );
    assert!(out.contains("command 'RETR ../x': refused 504"), "{out}");
}

#[test]
fn a_bad_question_or_configuration_is_status_2() {
    if skip_unless_ftpgate("a_bad_question_or_configuration_is_status_2") {
        return;
    }
    assert_eq!(explain(&["not-an-address", "anna"]).0, 2);
    assert_eq!(explain(&["10.1.2.3"]).0, 2);
    let dir = TempDir::new("explain-bad");
    let conf = dir.join("bad.conf");
    fs::write(&conf, "NoSuchOption 1\n").unwrap();
    let mut cmd = Command::new(proxy_bin());
    cmd.arg("-f")
        .arg(&conf)
        .args(["--explain", "10.1.2.3", "anna"]);
    let r = run_bounded(cmd, 10);
    assert_eq!(r.status.and_then(|s| s.code()), Some(2), "{}", r.describe());
}

/// The simulator and a real session agree: the same configuration and
/// the same client address, login and commands, table-driven.
#[test]
fn the_simulator_says_what_a_real_session_does() {
    if skip_unless_ftpgate("the_simulator_says_what_a_real_session_does") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    server.put("gone.txt", b"x");
    let extra = "ClientClass internal 127.0.0.1/32\n\
                 ValidCommands USER,PASS,PWD,CWD,NOOP,SIZE,QUIT\n\
                 [-Class-internal-]\n\
                 ValidCommands USER,PASS,PWD,CWD,NOOP,SIZE,QUIT,MKD,DELE\n\
                 [test]\n\
                 ValidCommands USER,PASS,PWD,NOOP,SIZE=^[a-z]+\\.txt$,QUIT,MKD,PORT,EPRT,REIN\n";
    let proxy = Proxy::start(server.port, extra);
    let conf = proxy.conf.clone();
    // (client address, login, command)
    let cases = [
        ("127.0.0.1", "test", "MKD newdir"),
        ("127.0.0.1", "test", "DELE gone.txt"),
        ("127.0.0.1", "test", "SIZE gone.txt"),
        ("127.0.0.1", "test", "SIZE ../etc/passwd"),
        ("127.0.0.2", "test", "MKD otherdir"),
        ("127.0.0.2", "test", "CWD /"),
        ("127.0.0.2", "test", "SITE CHMOD 777 gone.txt"),
        ("127.0.0.2", "test", "NOOP"),
        // Refusals that are not ValidCommands': bounce protection, REIN,
        // another user.
        ("127.0.0.2", "test", "PORT 10,0,0,1,100,100"),
        ("127.0.0.2", "test", "EPRT |1|127.0.0.2|80|"),
        ("127.0.0.2", "test", "PORT 127,0,0,2,200,10"),
        ("127.0.0.2", "test", "REIN"),
        ("127.0.0.2", "test", "USER other"),
    ];
    const SESSION: &str = r#"
import ftplib, sys
port, source, login, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
f = ftplib.FTP(timeout=10, source_address=(source, 0))
f.connect('127.0.0.1', port)
f.login(login, 'secret')
try:
    print(f.sendcmd(cmd)[:3])
except ftplib.Error as e:
    print(str(e)[:3])
f.close()
"#;
    for (source, login, cmd) in cases {
        let mut explain = Command::new(proxy_bin());
        explain
            .arg("-f")
            .arg(&conf)
            .args(["--explain", source, login, cmd]);
        let said = run_bounded(explain, 10);
        let line = said
            .stdout
            .lines()
            .find(|l| l.starts_with("command "))
            .unwrap_or_default()
            .to_string();
        let real = python_script(SESSION, &[&proxy.port.to_string(), source, login, cmd]);
        assert!(real.ok(), "{}", real.describe());
        let code = real.stdout.trim().to_string();
        match line.split_once("': refused ") {
            Some((_, rest)) => assert_eq!(
                rest.get(..3),
                Some(code.as_str()),
                "{source} {login} {cmd}: simulator {line:?}, session {code}"
            ),
            None => {
                assert!(line.contains("': allowed"), "{line:?}\n{}", said.describe());
                assert!(
                    !["500", "502", "504", "521", "530"].contains(&code.as_str()),
                    "{source} {login} {cmd}: simulator {line:?}, session {code}"
                );
            }
        }
    }
}

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

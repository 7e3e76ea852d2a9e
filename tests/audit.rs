//! SPEC 12: the audit trail. AuditLog (JSON Lines) and XferLog (xferlog(5))
//! written by many sessions at once: every line whole, none missing.

mod common;

use common::*;
use std::fs;

/// 20 sessions at once, each: login, RETR, STOR, a refused DELE, QUIT.
const SCRIPT: &str = r#"
import ftplib, io, sys, threading
port = int(sys.argv[1])
errors = []
def one(i):
    try:
        f = ftplib.FTP(timeout=20)
        f.connect('127.0.0.1', port)
        f.login('test', 'secret')
        b = io.BytesIO()
        f.retrbinary('RETR data.bin', b.write)
        f.storbinary('STOR up%d.bin' % i, io.BytesIO(b.getvalue()))
        try:
            f.sendcmd('DELE data.bin')
            errors.append('DELE accepted')
        except ftplib.error_perm:
            pass
        f.quit()
    except Exception as e:
        errors.append(repr(e))
threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
for t in threads: t.start()
for t in threads: t.join()
print('errors', errors)
sys.exit(1 if errors else 0)
"#;

#[test]
fn twenty_concurrent_sessions_write_whole_parseable_lines_and_lose_none() {
    if skip_unless_ftpgate("twenty_concurrent_sessions_write_whole_parseable_lines") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    server.put("data.bin", &random_bytes(100_000, 3));
    let dir = TempDir::new("audit");
    let (audit, xfer) = (dir.join("audit.json"), dir.join("xferlog"));
    let proxy = Proxy::start(
        server.port,
        &format!(
            "AuditLog {}\nXferLog {}\nValidCommands USER,PASS,TYPE,PASV,EPSV,RETR,STOR,QUIT,PWD",
            audit.display(),
            xfer.display()
        ),
    );
    let r = python_script(SCRIPT, &[&proxy.port.to_string()]);
    assert!(r.ok(), "{}\n{}", r.describe(), proxy.output());
    assert!(
        wait_until(15, || proxy.sessions().is_empty()),
        "sessions did not end"
    );
    let check = r#"
import json, sys, collections
events = collections.Counter()
sessions = collections.defaultdict(set)
for n, line in enumerate(open(sys.argv[1]), 1):
    o = json.loads(line)
    for k in ('time', 'event', 'session', 'client'):
        assert k in o, (n, k, line)
    assert isinstance(o['session'], str)
    assert o['time'].endswith('Z') and '.' in o['time'], o['time']
    events[o['event']] += 1
    sessions[o['session']].add(o['event'])
    # Known from the start: the configured server, and no class (null).
    assert 'class' in o and o['class'] is None, o
    if o['event'] == 'session_start':
        assert o.get('server', '').startswith('127.0.0.1:'), o
    if o['event'] == 'command_refused':
        assert o['reply'].startswith('502'), o
        assert o['rule'].endswith(':3') or o['rule'].split(':')[-1].isdigit(), o
        assert o['context'] == 'global', o
    if o['event'] == 'transfer':
        assert o['result'] == 'complete' and o['bytes'] == 100000, o
        assert o['direction'] in ('download', 'upload') and o['client_mode'] == 'passive', o
print(dict(events), len(sessions))
assert events['session_start'] == 20 and events['session_end'] == 20, events
assert events['login'] == 20 and events['transfer'] == 40 and events['command_refused'] == 20, events
assert len(sessions) == 20 and all(len(s) == 5 for s in sessions.values()), sessions
xfer = open(sys.argv[2]).read().splitlines()
assert len(xfer) == 40, len(xfer)
for line in xfer:
    f = line.split()
    assert len(f) == 18, line          # ctime is five words, then 13 fields
    assert f[5].isdigit() and int(f[5]) >= 1 and f[6] == '127.0.0.1' and f[7] == '100000', line
    assert f[9] in 'ab' and f[10] == '_' and f[11] in 'oi' and f[12] == 'r', line
    assert f[13] == 'test' and f[14:] == ['ftp', '0', '*', 'c'], line
"#;
    let r = python_script(check, &[audit.to_str().unwrap(), xfer.to_str().unwrap()]);
    assert!(
        r.ok(),
        "{}\n--- audit ---\n{}\n--- xferlog ---\n{}",
        r.describe(),
        fs::read_to_string(&audit).unwrap_or_default(),
        fs::read_to_string(&xfer).unwrap_or_default()
    );
    // The session id of the JSON events heads the session's log lines.
    let log = proxy.log_text();
    let first = fs::read_to_string(&audit).unwrap();
    let id = first
        .lines()
        .next()
        .and_then(|l| l.split("\"session\":\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    assert!(
        log.contains(&format!("ftpgate[{id}]:")),
        "{id} not in the log"
    );
    // Passwords never appear.
    assert!(!first.contains("secret"));
}

#[test]
fn an_unsafe_audit_file_refuses_the_session() {
    if skip_unless_ftpgate("an_unsafe_audit_file_refuses_the_session") {
        return;
    }
    let dir = TempDir::new("audit-unsafe");
    let audit = dir.join("audit.json");
    fs::write(&audit, "").unwrap();
    set_mode(&audit, 0o666);
    let proxy = Proxy::start(dead_port(), &format!("AuditLog {}", audit.display()));
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 421);
    assert_eq!(fs::read_to_string(&audit).unwrap(), "");
    // A symbolic link is not followed.
    let target = dir.join("elsewhere");
    fs::write(&target, "").unwrap();
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let proxy = Proxy::start(dead_port(), &format!("AuditLog {}", link.display()));
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 421);
    assert_eq!(fs::read_to_string(&target).unwrap(), "");
}

/// SPEC 12: "one xferlog line per RETR/STOR/STOU/APPE (complete or not)":
/// a RETR of a missing file and a refused STOR (pyftpdlib's 550s) are on
/// the record with `i` and 0 bytes, and as `transfer` events `failed`.
#[test]
fn transfers_that_fail_before_any_data_are_recorded_too() {
    if skip_unless_ftpgate("transfers_that_fail_before_any_data_are_recorded_too") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("audit-fail");
    let (audit, xfer) = (dir.join("audit.json"), dir.join("xferlog"));
    let proxy = Proxy::start(
        server.port,
        &format!("AuditLog {}\nXferLog {}\n", audit.display(), xfer.display()),
    );
    let script = r#"
import ftplib, io, sys
f = ftplib.FTP(timeout=20)
f.connect('127.0.0.1', int(sys.argv[1]))
f.login('test', 'secret')
for cmd in ('RETR missing.bin', 'STOR /../outside.bin'):
    try:
        if cmd.startswith('RETR'):
            f.retrbinary(cmd, lambda b: None)
        else:
            f.storbinary(cmd, io.BytesIO(b'x'))
        print('accepted', cmd)
    except ftplib.error_perm as e:
        print('refused', cmd, e)
f.quit()
"#;
    let r = python_script(script, &[&proxy.port.to_string()]);
    assert!(r.ok(), "{}\n{}", r.describe(), proxy.output());
    assert!(r.stdout.contains("refused RETR"), "{}", r.describe());
    assert!(
        wait_until(15, || proxy.sessions().is_empty()),
        "session did not end"
    );
    let xfer_text = fs::read_to_string(&xfer).unwrap_or_default();
    let audit_text = fs::read_to_string(&audit).unwrap_or_default();
    let retr = xfer_text
        .lines()
        .find(|l| l.contains(" missing.bin "))
        .unwrap_or_else(|| panic!("no xferlog line for the failed RETR:\n{xfer_text}"));
    let f: Vec<&str> = retr.split_whitespace().collect();
    assert_eq!((f[7], f[11], f[17]), ("0", "o", "i"), "{retr}");
    let failed = audit_text
        .lines()
        .filter(|l| l.contains("\"event\":\"transfer\"") && l.contains("\"result\":\"failed\""))
        .count();
    let refused = r.stdout.matches("refused ").count();
    assert_eq!(failed, refused, "{audit_text}\n{}", r.describe());
}

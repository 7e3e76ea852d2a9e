//! The jail (SPEC §1, §6): run as root with `User nobody`, `Group nogroup`
//! and an EMPTY ServerRoot, and check from outside, while the session is
//! open, that the session process is really confined and unprivileged; that
//! transfers, logging (file and pipe) and a magic-user login naming a HOST
//! NAME (resolved from /etc/hosts data cached before the chroot) still work.
//!
//! Needs root (skipped otherwise) and the `nobody` user / `nogroup` group.

mod common;

use common::*;
use std::fs;
use std::path::Path;

fn root_and_nobody(test: &str) -> bool {
    if skip_unless_ftpgate(test) {
        return false;
    }
    if !nix_is_root() {
        eprintln!("SKIP {test}: needs root");
        return false;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    if !passwd.lines().any(|l| l.starts_with("nobody:x:65534:"))
        || !group.lines().any(|l| l.starts_with("nogroup:x:65534:"))
    {
        eprintln!("SKIP {test}: needs nobody/nogroup with id 65534");
        return false;
    }
    true
}

fn nix_is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// The value fields of a /proc/PID/status line.
fn status_field(pid: u32, name: &str) -> Vec<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The ftpgate session process among the proxy's descendants.
fn session_pid(proxy: &Proxy) -> u32 {
    let mut found = None;
    let ok = wait_until(10, || {
        found = proxy.sessions().into_iter().find(|&p| {
            fs::read_to_string(format!("/proc/{p}/comm"))
                .map(|c| c.trim() == "ftpgate")
                .unwrap_or(false)
        });
        found.is_some()
    });
    assert!(ok, "no ftpgate session process\n{}", proxy.output());
    found.unwrap()
}

fn check_confined(pid: u32, jail: &Path, proxy: &Proxy) {
    let all = |v: Vec<String>| v.len() == 4 && v.iter().all(|x| x == "65534");
    let uid = status_field(pid, "Uid");
    let gid = status_field(pid, "Gid");
    let groups = status_field(pid, "Groups");
    let nnp = status_field(pid, "NoNewPrivs");
    let ctx = format!(
        "pid {pid}: Uid {uid:?} Gid {gid:?} Groups {groups:?} NoNewPrivs {nnp:?}\n{}",
        proxy.output()
    );
    assert!(
        all(uid.clone()),
        "real/effective/saved/fs uid not all nobody: {ctx}"
    );
    assert!(all(gid.clone()), "gids not all nogroup: {ctx}");
    assert_eq!(
        groups,
        vec!["65534".to_string()],
        "supplementary groups: {ctx}"
    );
    assert_eq!(nnp, vec!["1".to_string()], "no_new_privs: {ctx}");
    // Capabilities: none left in any set that matters.
    for set in ["CapPrm", "CapEff"] {
        let v = status_field(pid, set);
        assert_eq!(v, vec!["0000000000000000".to_string()], "{set}: {ctx}");
    }
    let root = fs::read_link(format!("/proc/{pid}/root")).expect("readlink /proc/PID/root");
    assert_eq!(
        root,
        fs::canonicalize(jail).unwrap(),
        "session root is not the jail: {ctx}"
    );
}

/// A session in an empty jail, logging through `log_dest` (which writes to
/// `log_file`, read back at the end).
fn jailed_session_works(test: &str, pipe_log: bool) {
    if !root_and_nobody(test) {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let data = random_bytes(300_000, 4);
    server.put("jail.bin", &data);
    let jail = TempDir::new("jail");
    let logs = TempDir::new("jaillog");
    let log_file = logs.join("session.log");
    let log_dest = if pipe_log {
        format!("|cat >> {}", log_file.display())
    } else {
        log_file.display().to_string()
    };
    let proxy = Proxy::start_raw(&format!(
        "DestinationAddress 127.0.0.1\n\
         DestinationPort {}\n\
         LogDestination {log_dest}\n\
         LogLevel DBG\n\
         User nobody\n\
         Group nogroup\n\
         ServerRoot {}\n\
         AllowMagicUser yes\n\
         AllowedDestinations 127.0.0.0/8\n\
         PassiveMinDataPort 40000\n\
         PassiveMaxDataPort 40999\n",
        server.port,
        jail.path().display()
    ));

    // 1. An open session: inspect the process from outside.
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    let pid = session_pid(&proxy);
    check_confined(pid, jail.path(), &proxy);
    assert_eq!(c.cmd("TYPE I").code, 200);
    c.cmd("QUIT");
    c.close();

    // 2. A transfer through a jailed session is byte-exact.
    let out = logs.join("passive.bin");
    let url = format!("{}/jail.bin", proxy.url(server.user(), server.pass()));
    let got = curl(ClientMode::Passive, &["-o", out.to_str().unwrap(), &url]);
    assert!(got.ok(), "{}\n{}", got.describe(), proxy.output());
    assert_same_bytes("RETR through the jail", &fs::read(&out).unwrap(), &data);

    // 3. A magic-user login naming a HOST NAME from /etc/hosts resolves
    // inside the empty jail (no /etc there).
    let magic_user = format!("{}@localhost:{}", server.user(), server.port);
    let out = logs.join("magic.bin");
    let url = format!("{}/jail.bin", proxy.url(&magic_user, server.pass()));
    let got = curl(ClientMode::Active, &["-o", out.to_str().unwrap(), &url]);
    assert!(
        got.ok(),
        "magic user with host name: {}\n{}",
        got.describe(),
        proxy.output()
    );
    assert_same_bytes(
        "RETR via magic user host name",
        &fs::read(&out).unwrap(),
        &data,
    );

    // 4. The jail is still empty: nothing had to be copied into it.
    assert_eq!(
        fs::read_dir(jail.path()).unwrap().count(),
        0,
        "jail not empty"
    );

    // 5. The log kept working after the chroot: session-end lines (written
    // inside the jail, as nobody) for every session.
    let ok = wait_until(10, || {
        fs::read_to_string(&log_file)
            .map(|t| t.matches("session end").count() >= 3)
            .unwrap_or(false)
    });
    let text = fs::read_to_string(&log_file).unwrap_or_default();
    assert!(
        ok,
        "log lines after the chroot missing:\n{text}\n{}",
        proxy.output()
    );
    assert!(
        text.contains("localhost") || text.contains("127.0.0.1"),
        "{text}"
    );
}

#[test]
fn session_in_an_empty_jail_as_nobody_is_confined_and_logs_to_a_file() {
    jailed_session_works(
        "session_in_an_empty_jail_as_nobody_is_confined_and_logs_to_a_file",
        false,
    );
}

#[test]
fn session_in_an_empty_jail_as_nobody_logs_to_a_pipe() {
    jailed_session_works("session_in_an_empty_jail_as_nobody_logs_to_a_pipe", true);
}

#[test]
fn unknown_host_name_in_the_jail_is_refused_with_a_clear_reply() {
    let test = "unknown_host_name_in_the_jail_is_refused_with_a_clear_reply";
    if !root_and_nobody(test) {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let jail = TempDir::new("jail");
    let proxy = Proxy::start(
        server.port,
        &format!(
            "User nobody\nGroup nogroup\nServerRoot {}\nAllowMagicUser yes\nAllowedDestinations 127.0.0.0/8\n",
            jail.path().display()
        ),
    );
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 220);
    // .invalid never resolves (RFC 6761); the DNS part may time out.
    c.set_read_timeout(30);
    let r = c.cmd("USER test@no-such-host.invalid");
    assert!(
        r.code >= 400,
        "unresolvable magic host accepted: {r:?}\n{}",
        proxy.output()
    );
    assert!(
        wait_until(10, || proxy.log_text().contains("no-such-host.invalid")),
        "no log line for the refusal\n{}",
        proxy.output()
    );
}

/// Syslog in the jail: the session process runs in a private mount
/// namespace (unshare) where our test directory is bind-mounted on /run,
/// so the syslog socket the proxy finds (/dev/log is absent or dangling
/// there, /var/run/syslog is ours) is a datagram socket this test reads.
/// The socket is connected before the chroot; lines written inside the
/// empty jail must still arrive.
#[test]
fn session_in_an_empty_jail_as_nobody_logs_to_syslog() {
    use std::os::unix::net::UnixDatagram;
    use std::process::Command;
    let test = "session_in_an_empty_jail_as_nobody_logs_to_syslog";
    if !root_and_nobody(test) {
        return;
    }
    if !Path::new("/usr/bin/unshare").exists() || !Path::new("/run").is_dir() {
        eprintln!("SKIP {test}: needs unshare(1) and /run");
        return;
    }
    let server = FtpServer::pyftpdlib();
    let data = random_bytes(100_000, 9);
    server.put("jail.bin", &data);
    let jail = TempDir::new("jail");
    let run = TempDir::new("fakerun");
    let sock = UnixDatagram::bind(run.join("syslog")).expect("bind fake syslog socket");
    fs::set_permissions(
        run.join("syslog"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let conf_dir = TempDir::new("syslogconf");
    let conf = conf_dir.join("proxy.conf");
    fs::write(
        &conf,
        format!(
            "DestinationAddress 127.0.0.1\nDestinationPort {}\nLogDestination local3\nLogLevel INF\n\
             User nobody\nGroup nogroup\nServerRoot {}\n",
            server.port,
            jail.path().display()
        ),
    )
    .unwrap();
    let port = free_port();
    let mut cmd = Command::new("/usr/bin/unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind {} /run && exec socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork \
             EXEC:\"{} -i -f {}\",nofork",
            run.path().display(),
            proxy_bin().display(),
            conf.display()
        ));
    let mut d = Daemon::spawn("unshare+socat", cmd, conf_dir.path());
    d.wait_listening(port);
    let out = conf_dir.join("got.bin");
    let url = format!(
        "ftp://{}:{}@127.0.0.1:{port}/jail.bin",
        server.user(),
        server.pass()
    );
    let got = curl(ClientMode::Passive, &["-o", out.to_str().unwrap(), &url]);
    assert!(got.ok(), "{}\n{}", got.describe(), d.output());
    assert_same_bytes("RETR (syslog)", &fs::read(&out).unwrap(), &data);
    let mut lines = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::time::Instant::now() < deadline
        && !lines.iter().any(|l: &String| l.contains("session end"))
    {
        if let Ok(n) = sock.recv(&mut buf) {
            lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    assert!(
        lines.iter().any(|l| l.contains("session start")),
        "no syslog line before the jail: {lines:#?}\n{}",
        d.output()
    );
    let end = lines.iter().find(|l| l.contains("session end"));
    let end = end.unwrap_or_else(|| {
        panic!(
            "no syslog line from inside the jail: {lines:#?}\n{}",
            d.output()
        )
    });
    // <PRI> with facility local3 (19): 19*8 + severity 6 (info) = 158.
    assert!(end.starts_with("<158>"), "facility/severity: {end}");
    assert!(end.contains("ftpgate["), "tag: {end}");
}

/// A DNS answer for `fake_dns`: the query echoed as a response with one A
/// record 127.0.0.1 for A queries, none for others.
fn dns_answer(q: &[u8]) -> Vec<u8> {
    let qtype = u16::from_be_bytes([q[q.len() - 4], q[q.len() - 3]]);
    let mut p = q.to_vec();
    p[2] = 0x81;
    p[3] = 0x80;
    if qtype == 1 {
        p[7] = 1;
        p.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    p
}

/// A magic-user host name that only DNS knows, resolved inside the empty
/// jail: the session runs in a private mount namespace whose
/// /etc/resolv.conf names a fake nameserver this test runs on a loopback
/// address; ftpgate read that file before the chroot and asks the
/// nameserver from inside the jail.
#[test]
fn magic_user_host_name_resolves_by_dns_inside_the_empty_jail() {
    use std::net::UdpSocket;
    use std::process::Command;
    let test = "magic_user_host_name_resolves_by_dns_inside_the_empty_jail";
    if !root_and_nobody(test) {
        return;
    }
    if !Path::new("/usr/bin/unshare").exists() || !Path::new("/etc/resolv.conf").exists() {
        eprintln!("SKIP {test}: needs unshare(1) and /etc/resolv.conf");
        return;
    }
    let server = FtpServer::pyftpdlib();
    let data = random_bytes(50_000, 11);
    server.put("dns.bin", &data);
    let jail = TempDir::new("jail");
    let dir = TempDir::new("dnsjail");
    // The nameserver: 127.77.0.53:53 (any 127/8 address is on lo).
    let dns = match UdpSocket::bind("127.77.0.53:53") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("SKIP {test}: cannot bind the fake nameserver: {e}");
            return;
        }
    };
    dns.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let asked2 = asked.clone();
    let dns_thread = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        // Answer until the test has what it needs (or 30 s of silence).
        while let Ok((n, from)) = dns.recv_from(&mut buf) {
            if n < 17 {
                continue;
            }
            asked2
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[12..n - 4]).into_owned());
            let _ = dns.send_to(&dns_answer(&buf[..n]), from);
            if asked2.lock().unwrap().len() >= 2 {
                break;
            }
        }
    });
    let resolv = dir.join("resolv.conf");
    fs::write(&resolv, "nameserver 127.77.0.53\noptions timeout:2\n").unwrap();
    let log = dir.join("proxy.log");
    let conf = dir.join("proxy.conf");
    fs::write(
        &conf,
        format!(
            "DestinationAddress 127.0.0.1\nDestinationPort {}\nLogDestination {}\n\
             User nobody\nGroup nogroup\nServerRoot {}\nAllowMagicUser yes\n\
             AllowedDestinations 127.0.0.0/8\n",
            server.port,
            log.display(),
            jail.path().display()
        ),
    )
    .unwrap();
    let port = free_port();
    let mut cmd = Command::new("/usr/bin/unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind {} /etc/resolv.conf && exec socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork \
             EXEC:\"{} -i -f {}\",nofork",
            resolv.display(),
            proxy_bin().display(),
            conf.display()
        ));
    let mut d = Daemon::spawn("unshare+socat", cmd, dir.path());
    d.wait_listening(port);
    let out = dir.join("got.bin");
    let user = format!("{}@ftp.jail.test:{}", server.user(), server.port);
    let url = format!(
        "ftp://{}:{}@127.0.0.1:{port}/dns.bin",
        url_escape(&user),
        server.pass()
    );
    let got = curl(ClientMode::Passive, &["-o", out.to_str().unwrap(), &url]);
    let log_text = fs::read_to_string(&log).unwrap_or_default();
    assert!(got.ok(), "{}\n{log_text}\n{}", got.describe(), d.output());
    assert_same_bytes(
        "RETR via DNS-resolved magic host",
        &fs::read(&out).unwrap(),
        &data,
    );
    let asked = asked.lock().unwrap().clone();
    assert!(
        asked
            .iter()
            .any(|q| q.contains("jail") && q.contains("test")),
        "the fake nameserver was not asked: {asked:?}"
    );
    assert_eq!(
        fs::read_dir(jail.path()).unwrap().count(),
        0,
        "jail not empty"
    );
    drop(d);
    let _ = dns_thread.join();
}

/// DestinationAddress given as a host name is resolved after the chroot
/// too (per login, from the cached /etc/hosts data).
#[test]
fn destination_address_host_name_works_inside_the_empty_jail() {
    let test = "destination_address_host_name_works_inside_the_empty_jail";
    if !root_and_nobody(test) {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let data = random_bytes(30_000, 12);
    server.put("d.bin", &data);
    let jail = TempDir::new("jail");
    let proxy = Proxy::start_raw(&format!(
        "DestinationAddress localhost\nDestinationPort {}\nUser nobody\nGroup nogroup\nServerRoot {}\n",
        server.port,
        jail.path().display()
    ));
    let out = jail.path().with_extension("out");
    let url = format!("{}/d.bin", proxy.url(server.user(), server.pass()));
    let got = curl(ClientMode::Passive, &["-o", out.to_str().unwrap(), &url]);
    let bytes = fs::read(&out).unwrap_or_default();
    let _ = fs::remove_file(&out);
    assert!(got.ok(), "{}\n{}", got.describe(), proxy.output());
    assert_same_bytes("DestinationAddress localhost", &bytes, &data);
}

#[test]
fn user_and_group_missing_from_the_account_files_get_421_and_a_log_line() {
    if !root_and_nobody("user_and_group_missing_from_the_account_files_get_421_and_a_log_line") {
        return;
    }
    let jail = TempDir::new("jail");
    for (user, group, why) in [
        (
            "ftpgate-no-such-user",
            "nogroup",
            "no such user 'ftpgate-no-such-user'",
        ),
        (
            "nobody",
            "ftpgate-no-such-group",
            "no such group 'ftpgate-no-such-group'",
        ),
        // A user id /etc/passwd does not know has no primary group to
        // take: refused rather than left in root's group 0.
        (
            "4000000000",
            "",
            "user id 4000000000 has no entry in /etc/passwd",
        ),
    ] {
        if group.is_empty() && testing_ftp_proxy() {
            // ftp-proxy runs such a user in group 0 (README, Differences).
            continue;
        }
        let group = if group.is_empty() {
            String::new()
        } else {
            format!("Group {group}\n")
        };
        let logs = TempDir::new("jaillog");
        let log_file = logs.join("session.log");
        let proxy = Proxy::start_raw(&format!(
            "DestinationAddress 127.0.0.1\n\
             DestinationPort {}\n\
             LogDestination {}\n\
             User {user}\n\
             {group}\
             ServerRoot {}\n",
            free_port(),
            log_file.display(),
            jail.path().display()
        ));
        let mut c = Ctrl::connect(proxy.port);
        let r = c.reply();
        assert_eq!(r.code, 421, "{r:?}\n{}", proxy.output());
        assert!(
            matches!(c.try_reply(), Ok(None)),
            "session not closed after 421"
        );
        let log = fs::read_to_string(&log_file).unwrap_or_default();
        assert!(log.contains(why), "log lacks {why:?}:\n{log}");
    }
}

#[test]
fn a_user_without_group_runs_in_the_users_primary_group_not_root_s() {
    if !root_and_nobody("a_user_without_group_runs_in_the_users_primary_group_not_root_s") {
        return;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    if !passwd
        .lines()
        .any(|l| l.starts_with("nobody:x:65534:65534:"))
    {
        eprintln!("SKIP: nobody's primary group is not 65534 here");
        return;
    }
    let server = FtpServer::pyftpdlib();
    let jail = TempDir::new("jail");
    // By name and by number: both take nobody's primary group (65534).
    for user in ["nobody", "65534"] {
        let proxy = Proxy::start_raw(&format!(
            "DestinationAddress 127.0.0.1\n\
             DestinationPort {}\n\
             User {user}\n\
             ServerRoot {}\n",
            server.port,
            jail.path().display()
        ));
        let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
        let pid = session_pid(&proxy);
        check_confined(pid, jail.path(), &proxy);
        c.cmd("QUIT");
    }
}

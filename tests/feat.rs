//! FEAT tells the truth, TLS is refused so clients fall back to plain FTP,
//! MLSD is a data command, unknown verbs never reach the server, TCP
//! keepalive is on for both control connections, and TimeOut never fires
//! while a transfer is running.
//!
//! Two tests use a scripted fake server (`FakeServer`): no real server here
//! advertises AUTH TLS without being set up for TLS, and a fake server is the
//! simplest witness that a verb never arrived.

mod common;

use std::io::Write;

use common::*;

fn feat_lines(c: &mut Ctrl) -> Vec<String> {
    let r = c.cmd("FEAT");
    assert_eq!(r.code, 211, "{r:?}");
    r.lines[1..r.lines.len() - 1]
        .iter()
        .map(|l| l.trim().to_ascii_uppercase())
        .collect()
}

#[test]
fn feat_lists_server_features_plus_epsv_eprt_without_tls() {
    if skip_unless_ftpgate("feat_lists_server_features_plus_epsv_eprt_without_tls") {
        return;
    }
    let server = FtpServer::vsftpd();
    let proxy = Proxy::start(server.port, "");
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    let feats = feat_lines(&mut c);
    for want in ["EPSV", "EPRT", "SIZE", "MDTM", "PASV"] {
        assert!(feats.iter().any(|f| f == want), "{want} missing: {feats:?}");
    }
    for never in ["AUTH", "PBSZ", "PROT"] {
        assert!(
            !feats.iter().any(|f| f.starts_with(never)),
            "{never} listed: {feats:?}"
        );
    }
}

#[test]
fn feat_drops_what_valid_commands_refuses() {
    if skip_unless_ftpgate("feat_drops_what_valid_commands_refuses") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(
        server.port,
        "ValidCommands USER PASS QUIT FEAT TYPE PASV EPSV RETR LIST NOOP MDTM",
    );
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    let feats = feat_lines(&mut c);
    assert!(feats.iter().any(|f| f == "MDTM"), "{feats:?}");
    assert!(feats.iter().any(|f| f == "EPSV"), "{feats:?}");
    for gone in ["SIZE", "MLST", "EPRT", "REST STREAM"] {
        assert!(
            !feats.iter().any(|f| f.starts_with(gone)),
            "{gone}: {feats:?}"
        );
    }
}

/// lftp sends FEAT only before USER and uses MLSD only if that FEAT lists
/// MLST: before login ftpgate asks the server when the server is fixed.
#[test]
fn feat_before_login_lists_the_servers_features_and_lftp_uses_mlsd() {
    if skip_unless_ftpgate("feat_before_login_lists_the_servers_features_and_lftp_uses_mlsd") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    server.put("listed.txt", b"hello");
    let proxy = Proxy::start(server.port, "");
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 220);
    let feats = feat_lines(&mut c);
    for want in ["SIZE", "MDTM", "MLST", "EPRT", "EPSV"] {
        assert!(
            feats.iter().any(|f| f.starts_with(want)),
            "{want}: {feats:?}"
        );
    }
    assert_eq!(c.cmd(&format!("USER {}", server.user())).code, 331);
    assert_eq!(c.cmd(&format!("PASS {}", server.pass())).code, 230);
    assert_eq!(c.cmd("TYPE I").code, 200);
    assert_eq!(c.cmd("SIZE listed.txt").text(), "213 5");
    assert_eq!(c.cmd("QUIT").code, 221);

    let ran = lftp(
        proxy.port,
        server.user(),
        server.pass(),
        ClientMode::Passive,
        "cls -l",
    );
    assert!(ran.ok(), "{}\n{}", ran.describe(), proxy.output());
    assert!(ran.stdout.contains("listed.txt"), "{}", ran.describe());
    assert!(
        proxy.log_text().contains("command: MLSD"),
        "lftp did not use MLSD:\n{}",
        proxy.output()
    );
}

/// A fake server that logs in anyone, advertises TLS in FEAT, answers
/// everything else with 200 and reports every line it received.
fn recording_server() -> FakeServer {
    FakeServer::start(|mut s| {
        let mut seen = Vec::new();
        let _ = s.write_all(b"220 fake ready\r\n");
        loop {
            let line = fake_read_line(&mut s);
            if line.is_empty() {
                break;
            }
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            let answer: &[u8] = match verb.as_str() {
                "USER" => b"331 pass\r\n",
                "PASS" => b"230 in\r\n",
                "FEAT" => b"211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n SIZE\r\n211 End\r\n",
                "QUIT" => b"221 bye\r\n",
                _ => b"200 ok\r\n",
            };
            seen.push(line);
            let _ = s.write_all(answer);
            if verb == "QUIT" {
                break;
            }
        }
        seen
    })
}

#[test]
fn tls_is_hidden_and_refused_and_unknown_verbs_never_reach_the_server() {
    if skip_unless_ftpgate("tls_is_hidden_and_refused_and_unknown_verbs_never_reach_the_server") {
        return;
    }
    let server = recording_server();
    let proxy = Proxy::start(server.port, "");
    let mut c = Ctrl::login(proxy.port, "u", "p");
    let feats = feat_lines(&mut c);
    assert!(feats.iter().any(|f| f == "SIZE"), "{feats:?}");
    assert!(
        !feats
            .iter()
            .any(|f| f.starts_with("AUTH") || f == "PBSZ" || f == "PROT"),
        "{feats:?}"
    );
    for cmd in ["AUTH TLS", "AUTH SSL", "PBSZ 0", "PROT P"] {
        let r = c.cmd(cmd);
        assert!(r.code / 100 == 5, "{cmd}: {r:?}");
        assert!(r.text().contains("TLS"), "{cmd}: unclear reply {r:?}");
    }
    let r = c.cmd("XYZZ plugh");
    assert_eq!(r.code, 500, "{r:?}");
    assert_eq!(c.cmd("NOOP").code, 200);
    assert_eq!(c.cmd("QUIT").code, 221);
    let seen = server.join();
    assert!(seen.iter().any(|l| l == "NOOP"), "{seen:?}");
    for never in ["XYZZ", "AUTH", "PBSZ", "PROT"] {
        assert!(
            !seen
                .iter()
                .any(|l| l.to_ascii_uppercase().starts_with(never)),
            "{never} reached the server: {seen:?}"
        );
    }
}

#[test]
fn curl_with_opportunistic_tls_falls_back_to_plain_ftp() {
    let server = FtpServer::pyftpdlib();
    let data = random_bytes(100_000, 41);
    server.put("tls.bin", &data);
    let proxy = Proxy::start(server.port, "");
    let dir = TempDir::new("curl-ssl");
    let out = dir.join("tls.bin");
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-s", "-S", "--max-time", "60", "--ssl", "-o"])
        .arg(&out)
        .arg(format!(
            "{}/tls.bin",
            proxy.url(server.user(), server.pass())
        ));
    let ran = run_bounded(cmd, CLIENT_SECS);
    assert!(ran.ok(), "{}\n{}", ran.describe(), proxy.output());
    assert_same_bytes("after TLS fallback", &std::fs::read(&out).unwrap(), &data);
}

#[test]
fn mlsd_is_relayed_as_a_data_command() {
    let server = FtpServer::pyftpdlib();
    server.put("listed-file.txt", b"hello");
    let proxy = Proxy::start(server.port, "");
    let script = r#"
import ftplib, sys
ftp = ftplib.FTP(timeout=20)
ftp.connect('127.0.0.1', int(sys.argv[1]))
ftp.login('test', 'secret')
for name, facts in ftp.mlsd():
    print(name, facts.get('type'), facts.get('size'))
ftp.quit()
"#;
    let ran = python_script(script, &[&proxy.port.to_string()]);
    assert!(ran.ok(), "{}\n{}", ran.describe(), proxy.output());
    assert!(
        ran.stdout.contains("listed-file.txt file 5"),
        "{}",
        ran.describe()
    );
}

#[test]
fn both_control_connections_have_tcp_keepalive() {
    if skip_unless_ftpgate("both_control_connections_have_tcp_keepalive") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, "");
    let _c = Ctrl::login(proxy.port, server.user(), server.pass());
    let ss = || {
        let mut cmd = std::process::Command::new("ss");
        cmd.args(["-tnoe", "state", "established"]);
        run_bounded(cmd, 20).stdout
    };
    let mut out = String::new();
    let found = wait_until(10, || {
        out = ss();
        let client_side = out
            .lines()
            .any(|l| l.contains(&format!("127.0.0.1:{} ", proxy.port)) && l.contains("keepalive"));
        let server_side = out.lines().any(|l| {
            l.contains(&format!("127.0.0.1:{} ", server.port))
                && l.contains("keepalive")
                && !l.contains("users:((\"python")
        });
        client_side && server_side
    });
    assert!(
        found,
        "keepalive timers not found for ports {} and {}:\n{out}",
        proxy.port, server.port
    );
}

/// Prints "LOCALPORT PEERPORT NODELAY" for every TCP socket of process
/// argv[1], read through duplicates taken with pidfd_getfd(2) (root).
const SOCKETS_OF: &str = r#"
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
pid = int(sys.argv[1])
pidfd = libc.syscall(434, pid, 0)  # pidfd_open
assert pidfd >= 0, os.strerror(ctypes.get_errno())
for name in os.listdir('/proc/%d/fd' % pid):
    try:
        if not os.readlink('/proc/%d/fd/%s' % (pid, name)).startswith('socket:'):
            continue
    except OSError:
        continue
    fd = libc.syscall(438, pidfd, int(name), 0)  # pidfd_getfd
    if fd < 0:
        continue
    s = socket.socket(fileno=fd)
    try:
        if s.type == socket.SOCK_STREAM and s.family in (socket.AF_INET, socket.AF_INET6):
            nodelay = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            print(s.getsockname()[1], s.getpeername()[1], 1 if nodelay else 0)
    except OSError:
        pass
    finally:
        s.close()
"#;

/// A reply right after another (150 then 226) must not wait for the
/// client's delayed ACK (Nagle): about 40 ms per transfer otherwise.
#[test]
fn both_control_connections_have_tcp_nodelay() {
    if skip_unless_ftpgate("both_control_connections_have_tcp_nodelay") {
        return;
    }
    // pidfd_getfd(2) on the session needs ptrace rights over it.
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !root {
        eprintln!("SKIP both_control_connections_have_tcp_nodelay: needs root");
        return;
    }
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, "");
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    let pid = one_session(&proxy);
    let ran = python_script(SOCKETS_OF, &[&pid.to_string()]);
    assert!(ran.ok(), "{}", ran.describe());
    let sockets: Vec<(u16, u16, bool)> = ran
        .stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().map(|w| w.parse::<u16>().ok());
            Some((w.next()??, w.next()??, w.next()?? == 1))
        })
        .collect();
    let client_side = sockets.iter().find(|s| s.0 == proxy.port);
    let server_side = sockets.iter().find(|s| s.1 == server.port);
    assert!(
        matches!(client_side, Some((_, _, true))) && matches!(server_side, Some((_, _, true))),
        "control sockets (local, peer, nodelay) of session {pid}: {sockets:?}"
    );
    assert_eq!(c.cmd("QUIT").code, 221);
}

/// The client's data connection of a plain download has TCP_NODELAY on
/// ftpgate's side: each splice into it ends where the pipe ran dry, mostly
/// inside a segment, which Nagle would hold back until everything sent
/// before it is acknowledged (BENCHMARKS.md, "Bulk throughput").
#[test]
fn the_sink_of_a_spliced_download_has_tcp_nodelay() {
    if skip_unless_ftpgate("the_sink_of_a_spliced_download_has_tcp_nodelay") {
        return;
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !root {
        eprintln!("SKIP the_sink_of_a_spliced_download_has_tcp_nodelay: needs root");
        return;
    }
    let server = FtpServer::pyftpdlib();
    // More than the socket buffers and the pipe on the way can hold, so the
    // transfer stalls while this client reads nothing.
    server.put("big.bin", &random_bytes(32 << 20, 15));
    let proxy = Proxy::start(server.port, "");
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    assert_eq!(c.cmd("TYPE I").code, 200);
    let r = c.cmd("PASV");
    assert_eq!(r.code, 227, "{r:?}");
    let t = r.text();
    let inner = &t[t.find('(').unwrap() + 1..t.find(')').unwrap()];
    let n: Vec<u16> = inner.split(',').map(|x| x.parse().unwrap()).collect();
    let data = std::net::TcpStream::connect(("127.0.0.1", n[4] * 256 + n[5])).unwrap();
    let ours = data.local_addr().unwrap().port();
    let r = c.cmd("RETR big.bin");
    assert!(r.code == 150 || r.code == 125, "{r:?}");
    let pid = one_session(&proxy);
    let mut last = String::new();
    let found = wait_until(10, || {
        let ran = python_script(SOCKETS_OF, &[&pid.to_string()]);
        last = ran.stdout.clone();
        ran.stdout.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() == 3 && w[1] == ours.to_string() && w[2] == "1"
        })
    });
    assert!(
        found,
        "no TCP_NODELAY on session {pid}'s socket to port {ours} (local, peer, nodelay):\n{last}"
    );
    drop(data);
}

#[test]
fn timeout_does_not_fire_during_a_slow_transfer() {
    // curl 7.88's --limit-rate does not throttle FTP downloads here, so a
    // Python client reads slowly instead (about 3 MB/s, well past what the
    // socket buffers on the way can hold, so the proxy stays mid-transfer).
    let server = FtpServer::pyftpdlib();
    let data = random_bytes(30 << 20, 42);
    server.put("slow.bin", &data);
    let proxy = Proxy::start(server.port, "TimeOut 2");
    let script = r#"
import ftplib, sys, time, hashlib
ftp = ftplib.FTP(timeout=60)
ftp.connect('127.0.0.1', int(sys.argv[1]))
ftp.login('test', 'secret')
ftp.voidcmd('TYPE I')
h = hashlib.sha256(); n = 0
conn = ftp.transfercmd('RETR slow.bin')
start = time.time()
while True:
    b = conn.recv(65536)
    if not b: break
    h.update(b); n += len(b)
    time.sleep(0.02)
conn.close()
print('final', ftp.voidresp()[:3])
print('bytes', n, h.hexdigest())
print('secs', int(time.time() - start))
print('noop', ftp.sendcmd('NOOP')[:3])
ftp.quit()
"#;
    let ran = python_script(script, &[&proxy.port.to_string()]);
    assert!(ran.ok(), "{}\n{}", ran.describe(), proxy.output());
    let want = {
        let mut cmd = std::process::Command::new("sha256sum");
        cmd.arg(server.file("slow.bin"));
        run_bounded(cmd, 20).stdout
    };
    let want = want.split_whitespace().next().unwrap_or("?");
    assert!(
        ran.stdout.contains(&format!("bytes {} {want}", data.len())),
        "{}",
        ran.describe()
    );
    assert!(ran.stdout.contains("final 226"), "{}", ran.describe());
    assert!(ran.stdout.contains("noop 200"), "{}", ran.describe());
    // Not a timing pass condition: a check that the test exercised what it
    // claims (the transfer really outlasted TimeOut twice over).
    let secs: u64 = ran
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("secs "))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    assert!(secs >= 4, "transfer too fast to test TimeOut: {secs} s");
}

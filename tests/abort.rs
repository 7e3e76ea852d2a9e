//! ABOR during RETR and STOR, sent the way real clients send it: Telnet IP,
//! then IAC DM as TCP urgent data (RFC 959 §4.1.3), then `ABOR\r\n`; and
//! Python ftplib's `abort()`, which sends the whole `ABOR\r\n` as urgent
//! data (its last byte is the urgent byte). Either way the transfer stops,
//! the client gets 426 then 226 (or 225), and the session goes on:
//! NOOP and a directory listing work afterwards.

mod common;

use common::*;

const SCRIPT: &str = r#"
import ftplib, socket, sys
port, user, pw, sub, how, verb = sys.argv[1:7]
ftp = ftplib.FTP(timeout=30)
ftp.connect('127.0.0.1', int(port))
ftp.login(user, pw)
ftp.voidcmd('TYPE I')
if verb == 'RETR':
    conn = ftp.transfercmd('RETR ' + sub + 'big.bin')
    got = conn.recv(65536)
    assert got, 'no data before abort'
else:
    conn = ftp.transfercmd('STOR ' + sub + 'up.bin')
    conn.sendall(b'x' * (1 << 20))
if how == 'rfc':
    ftp.sock.sendall(b'\xff\xf4')
    ftp.sock.sendall(b'\xff\xf2', socket.MSG_OOB)
    ftp.sock.sendall(b'ABOR\r\n')
    first = ftp.getmultiline()
else:
    ftp.sock.sendall(b'ABOR\r\n', socket.MSG_OOB)
    first = ftp.getmultiline()
codes = [first[:3]]
conn.close()
# Two commands (the transfer and ABOR), two replies; tnftp counts the same.
codes.append(ftp.getmultiline()[:3])
print('codes', ' '.join(codes), flush=True)
print('noop', ftp.sendcmd('NOOP')[:3], flush=True)
print('list', len(ftp.nlst(sub or '.')), flush=True)
ftp.quit()
print('done')
"#;

fn run(kind: ServerKind, how: &str, verb: &str) {
    let server = FtpServer::start(kind);
    server.put("big.bin", &random_bytes(40 << 20, 7));
    let proxy = Proxy::start(server.port, "");
    let ran = python_script(
        SCRIPT,
        &[
            &proxy.port.to_string(),
            server.user(),
            server.pass(),
            server.sub,
            how,
            verb,
        ],
    );
    let what = format!("{kind:?} {how} {verb}");
    assert!(
        ran.ok(),
        "{what}: {}\n{}\n{}",
        ran.describe(),
        proxy.output(),
        server.output()
    );
    let codes = ran
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("codes "))
        .unwrap_or("")
        .to_string();
    assert!(
        // The client has read 64 KiB of 40 MiB, or sent 1 MiB of an
        // upload it has not finished: the transfer is cut whatever the
        // server says, so a lone 226/225 would claim a complete file.
        matches!(codes.as_str(), "426 226" | "426 225"),
        "{what}: replies {codes:?}\n{}",
        proxy.output()
    );
    assert!(
        ran.stdout.contains("noop 200"),
        "{what}: {}",
        ran.describe()
    );
    assert!(ran.stdout.contains("done"), "{what}: {}", ran.describe());
    // The session ended normally after QUIT.
    assert!(
        wait_until(START_SECS, || proxy.sessions().is_empty()),
        "{what}: session left behind"
    );
}

#[test]
fn rfc_abort_stops_a_download_from_vsftpd_and_the_session_goes_on() {
    run(ServerKind::Vsftpd, "rfc", "RETR");
}

#[test]
fn rfc_abort_stops_a_download_from_pyftpdlib_and_the_session_goes_on() {
    run(ServerKind::Pyftpdlib, "rfc", "RETR");
}

#[test]
fn rfc_abort_stops_an_upload_to_vsftpd_and_the_session_goes_on() {
    run(ServerKind::Vsftpd, "rfc", "STOR");
}

#[test]
fn rfc_abort_stops_an_upload_to_pyftpdlib_and_the_session_goes_on() {
    run(ServerKind::Pyftpdlib, "rfc", "STOR");
}

#[test]
fn ftplib_urgent_abor_stops_a_download_and_the_session_goes_on() {
    run(ServerKind::Vsftpd, "ftplib", "RETR");
}

#[test]
fn ftplib_urgent_abor_stops_an_upload_and_the_session_goes_on() {
    run(ServerKind::Pyftpdlib, "ftplib", "STOR");
}

/// The server has sent the whole file (and its 226) into the proxy's
/// buffers, but the client has read only a little when it aborts: the
/// client's transfer is cut, so it must hear 426, not the server's 226.
const SCRIPT_LATE: &str = r#"
import ftplib, re, socket, sys, time
port, user, pw, sub = sys.argv[1:5]
ftp = ftplib.FTP(timeout=30)
ftp.connect('127.0.0.1', int(port))
ftp.login(user, pw)
ftp.voidcmd('TYPE I')
p = int(re.search(r'\|\|\|(\d+)\|', ftp.sendcmd('EPSV')).group(1))
d = socket.socket()
d.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
d.connect(('127.0.0.1', p))
print('start', ftp.sendcmd('RETR ' + sub + 'mid.bin')[:3], flush=True)
assert d.recv(1000), 'no data before abort'
time.sleep(2)
ftp.sock.sendall(b'ABOR\r\n', socket.MSG_OOB)
first = ftp.getmultiline()
codes = [first[:3]]
if first[:3] == '426':
    codes.append(ftp.getmultiline()[:3])
d.close()
print('codes', ' '.join(codes), flush=True)
print('noop', ftp.sendcmd('NOOP')[:3], flush=True)
ftp.quit()
"#;

#[test]
fn abort_after_the_server_finished_but_before_the_client_got_the_data_is_426() {
    let server = FtpServer::pyftpdlib();
    // Far more than the proxy's socket buffers towards the client hold
    // (about 4 MiB), so the proxy cannot have passed it all on.
    server.put("mid.bin", &random_bytes(16 << 20, 11));
    let proxy = Proxy::start(server.port, "");
    let ran = python_script(
        SCRIPT_LATE,
        &[
            &proxy.port.to_string(),
            server.user(),
            server.pass(),
            server.sub,
        ],
    );
    assert!(ran.ok(), "{}\n{}", ran.describe(), proxy.output());
    assert!(
        ran.stdout.contains("start 150") || ran.stdout.contains("start 125"),
        "{}",
        ran.describe()
    );
    let codes = ran
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("codes "))
        .unwrap_or("")
        .to_string();
    assert!(
        matches!(codes.as_str(), "426 226" | "426 225"),
        "replies {codes:?}: a lone 2xx claims a file the client did not get\n{}",
        proxy.output()
    );
    assert!(ran.stdout.contains("noop 200"), "{}", ran.describe());
}

/// An ABOR that arrives in the same packet as RETR is read with it, before
/// the transfer starts: it must still stop the transfer, not wait for the
/// whole file (here a client that never reads, so forever, until TimeOut).
#[test]
fn abor_pipelined_with_retr_stops_the_transfer() {
    let server = FtpServer::pyftpdlib();
    server.put("big.bin", &random_bytes(40 << 20, 9));
    let proxy = Proxy::start(server.port, "TimeOut 60");
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    assert_eq!(c.cmd("TYPE I").code, 200);
    let r = c.cmd("PASV");
    assert_eq!(r.code, 227, "{r:?}");
    let t = r.text();
    let nums: Vec<u16> = t[t.find('(').unwrap() + 1..t.find(')').unwrap()]
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    // Connected but never read: the download stalls once buffers are full.
    let _data = std::net::TcpStream::connect(("127.0.0.1", nums[4] * 256 + nums[5])).unwrap();
    let started = std::time::Instant::now();
    c.send_raw(b"RETR big.bin\r\nABOR\r\n");
    let first = c.reply();
    assert!(matches!(first.code, 125 | 150), "{first:?}");
    let transfer = c.reply();
    let abor = c.reply();
    assert_eq!(
        (transfer.code, abor.code / 100),
        (426, 2),
        "{transfer:?} {abor:?}\n{}",
        proxy.output()
    );
    assert!(
        started.elapsed().as_secs() < 15,
        "ABOR took {:?}",
        started.elapsed()
    );
    assert_eq!(c.cmd("NOOP").code, 200);
}

/// ABOR while ftpgate still waits for the client's data connection (the
/// client never connects to its PASV port): 426 and 226 at once, not after
/// TimeOut, and the next transfer works.
#[test]
fn abor_before_the_client_connects_its_data_connection_acts_at_once() {
    use std::io::Read;
    let server = FtpServer::pyftpdlib();
    server.put("big.bin", &random_bytes(4 << 20, 13));
    server.put("small.txt", b"small\n");
    let proxy = Proxy::start(server.port, "TimeOut 60");
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    assert_eq!(c.cmd("TYPE I").code, 200);
    let pasv = |c: &mut Ctrl| {
        let r = c.cmd("PASV");
        assert_eq!(r.code, 227, "{r:?}");
        let t = r.text();
        let n: Vec<u16> = t[t.find('(').unwrap() + 1..t.find(')').unwrap()]
            .split(',')
            .map(|n| n.trim().parse().unwrap())
            .collect();
        n[4] * 256 + n[5]
    };
    pasv(&mut c);
    c.send_raw(b"RETR big.bin\r\n");
    let first = c.reply();
    assert!(matches!(first.code, 125 | 150), "{first:?}");
    let started = std::time::Instant::now();
    c.send_raw(b"ABOR\r\n");
    let (transfer, abor) = (c.reply(), c.reply());
    assert_eq!(
        (transfer.code, abor.code / 100),
        (426, 2),
        "{transfer:?} {abor:?}\n{}",
        proxy.output()
    );
    assert!(started.elapsed().as_secs() < 15, "{:?}", started.elapsed());
    assert_eq!(c.cmd("NOOP").code, 200);
    let p = pasv(&mut c);
    let mut d = std::net::TcpStream::connect(("127.0.0.1", p)).unwrap();
    c.send_raw(b"RETR small.txt\r\n");
    assert!(matches!(c.reply().code, 125 | 150));
    let mut got = Vec::new();
    d.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"small\n");
    assert_eq!(c.reply().code, 226, "{}", proxy.output());
}

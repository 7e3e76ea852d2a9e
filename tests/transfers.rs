//! Data transfers through the proxy: byte-exact RETR/STOR of an 8 MiB file
//! for every server x DestinationTransferMode x client mode, listings,
//! APPE, REST+RETR, and several transfers in one session.

mod common;

use common::*;
use std::fs;

const BIG: usize = 8 * 1024 * 1024;

/// RETR and STOR of an 8 MiB random file through the proxy with curl,
/// both compared byte for byte.
fn retr_and_stor_are_byte_exact(kind: ServerKind, dest_mode: &str, client: ClientMode) {
    let server = FtpServer::start(kind);
    let data = random_bytes(BIG, 0x5eed ^ BIG as u64);
    server.put("big.bin", &data);
    let proxy = Proxy::start(server.port, &format!("DestinationTransferMode {dest_mode}"));
    let tmp = TempDir::new("xfer");
    let url = format!("{}/{}", proxy.url(server.user(), server.pass()), server.sub);

    // RETR
    let down = tmp.join("down.bin");
    let r = curl(
        client,
        &[&format!("{url}big.bin"), "-o", down.to_str().unwrap()],
    );
    assert!(
        r.ok(),
        "download failed: {}\n{}",
        r.describe(),
        proxy.output()
    );
    assert_same_bytes("RETR through the proxy", &fs::read(&down).unwrap(), &data);

    // STOR
    let up_data = random_bytes(BIG + 12345, 0xfeed);
    let up = tmp.join("up.bin");
    fs::write(&up, &up_data).unwrap();
    let r = curl(
        client,
        &["-T", up.to_str().unwrap(), &format!("{url}up.bin")],
    );
    assert!(
        r.ok(),
        "upload failed: {}\n{}",
        r.describe(),
        proxy.output()
    );
    let stored = wait_for_file(&server.file("up.bin"), up_data.len());
    assert_same_bytes("STOR through the proxy", &stored, &up_data);
}

macro_rules! transfer_tests {
    ($($name:ident: $kind:expr, $mode:expr, $client:expr;)*) => {
        $(
            #[test]
            fn $name() {
                retr_and_stor_are_byte_exact($kind, $mode, $client);
            }
        )*
    };
}

use ClientMode::{Active, Passive};
use ServerKind::{Pyftpdlib, Vsftpd};

transfer_tests! {
    pyftpdlib_client_mode_passive_client_retr_and_stor_are_byte_exact: Pyftpdlib, "client", Passive;
    pyftpdlib_client_mode_active_client_retr_and_stor_are_byte_exact: Pyftpdlib, "client", Active;
    pyftpdlib_active_mode_passive_client_retr_and_stor_are_byte_exact: Pyftpdlib, "active", Passive;
    pyftpdlib_active_mode_active_client_retr_and_stor_are_byte_exact: Pyftpdlib, "active", Active;
    pyftpdlib_passive_mode_passive_client_retr_and_stor_are_byte_exact: Pyftpdlib, "passive", Passive;
    pyftpdlib_passive_mode_active_client_retr_and_stor_are_byte_exact: Pyftpdlib, "passive", Active;
    vsftpd_client_mode_passive_client_retr_and_stor_are_byte_exact: Vsftpd, "client", Passive;
    vsftpd_client_mode_active_client_retr_and_stor_are_byte_exact: Vsftpd, "client", Active;
    vsftpd_active_mode_passive_client_retr_and_stor_are_byte_exact: Vsftpd, "active", Passive;
    vsftpd_active_mode_active_client_retr_and_stor_are_byte_exact: Vsftpd, "active", Active;
    vsftpd_passive_mode_passive_client_retr_and_stor_are_byte_exact: Vsftpd, "passive", Passive;
    vsftpd_passive_mode_active_client_retr_and_stor_are_byte_exact: Vsftpd, "passive", Active;
}

fn listings_show_the_servers_files(kind: ServerKind, client: ClientMode) {
    let server = FtpServer::start(kind);
    server.put("alpha.txt", b"alpha\n");
    server.put("beta.bin", &random_bytes(1000, 7));
    fs::create_dir(server.file("gamma")).unwrap();
    let proxy = Proxy::start(server.port, "");
    let url = format!("{}/{}", proxy.url(server.user(), server.pass()), server.sub);

    let list = curl(client, &[&url]);
    assert!(
        list.ok(),
        "LIST failed: {}\n{}",
        list.describe(),
        proxy.output()
    );
    for name in ["alpha.txt", "beta.bin", "gamma"] {
        assert!(
            list.stdout.contains(name),
            "LIST lacks {name}:\n{}",
            list.stdout
        );
    }
    assert!(
        list.stdout
            .lines()
            .any(|l| l.contains("1000") && l.contains("beta.bin")),
        "LIST has no long format line with the size:\n{}",
        list.stdout
    );

    let nlst = curl(client, &["--list-only", &url]);
    assert!(
        nlst.ok(),
        "NLST failed: {}\n{}",
        nlst.describe(),
        proxy.output()
    );
    let mut names: Vec<&str> = nlst.stdout.lines().map(|l| l.trim_end()).collect();
    names.sort();
    assert_eq!(names, ["alpha.txt", "beta.bin", "gamma"], "NLST output");
}

#[test]
fn list_and_nlst_through_pyftpdlib_in_passive_mode_show_the_servers_files() {
    listings_show_the_servers_files(Pyftpdlib, Passive);
}

#[test]
fn list_and_nlst_through_pyftpdlib_in_active_mode_show_the_servers_files() {
    listings_show_the_servers_files(Pyftpdlib, Active);
}

#[test]
fn list_and_nlst_through_vsftpd_show_the_servers_files() {
    listings_show_the_servers_files(Vsftpd, Passive);
}

#[test]
fn lftp_in_active_mode_lists_and_fetches_through_the_proxy() {
    let server = FtpServer::start(Pyftpdlib);
    let data = random_bytes(3 * 1024 * 1024 + 7, 99);
    server.put("lftp.bin", &data);
    let proxy = Proxy::start(server.port, "");
    let tmp = TempDir::new("lftp");
    let local = tmp.join("got.bin");
    let r = lftp(
        proxy.port,
        server.user(),
        server.pass(),
        Active,
        &format!(
            "cls -1 {}; get {}lftp.bin -o {}",
            server.sub,
            server.sub,
            local.display()
        ),
    );
    assert!(r.ok(), "lftp failed: {}\n{}", r.describe(), proxy.output());
    assert!(r.stdout.contains("lftp.bin"), "cls output: {}", r.stdout);
    assert_same_bytes("lftp get", &fs::read(&local).unwrap_or_default(), &data);
}

#[test]
fn lftp_in_passive_mode_uploads_through_vsftpd() {
    let server = FtpServer::start(Vsftpd);
    let proxy = Proxy::start(server.port, "");
    let tmp = TempDir::new("lftp");
    let data = random_bytes(2 * 1024 * 1024 + 3, 42);
    let local = tmp.join("send.bin");
    fs::write(&local, &data).unwrap();
    let r = lftp(
        proxy.port,
        server.user(),
        server.pass(),
        Passive,
        &format!("put {} -o {}sent.bin", local.display(), server.sub),
    );
    assert!(r.ok(), "lftp failed: {}\n{}", r.describe(), proxy.output());
    let stored = wait_for_file(&server.file("sent.bin"), data.len());
    assert_same_bytes("lftp put", &stored, &data);
}

fn appe_appends(kind: ServerKind) {
    let server = FtpServer::start(kind);
    let first = random_bytes(100_000, 1);
    server.put("log.bin", &first);
    let proxy = Proxy::start(server.port, "");
    let tmp = TempDir::new("appe");
    let second = random_bytes(300_001, 2);
    let local = tmp.join("more.bin");
    fs::write(&local, &second).unwrap();
    let url = format!("{}/{}", proxy.url(server.user(), server.pass()), server.sub);
    let r = curl(
        Passive,
        &[
            "--append",
            "-T",
            local.to_str().unwrap(),
            &format!("{url}log.bin"),
        ],
    );
    assert!(r.ok(), "APPE failed: {}\n{}", r.describe(), proxy.output());
    let mut want = first.clone();
    want.extend_from_slice(&second);
    let got = wait_for_file(&server.file("log.bin"), want.len());
    assert_same_bytes("file after APPE", &got, &want);
}

#[test]
fn appe_through_pyftpdlib_appends_to_the_existing_file() {
    appe_appends(Pyftpdlib);
}

#[test]
fn appe_through_vsftpd_appends_to_the_existing_file() {
    appe_appends(Vsftpd);
}

fn rest_retr_resumes(kind: ServerKind, client: ClientMode) {
    let server = FtpServer::start(kind);
    let data = random_bytes(2 * 1024 * 1024, 3);
    server.put("resume.bin", &data);
    let proxy = Proxy::start(server.port, "");
    let tmp = TempDir::new("rest");
    let out = tmp.join("tail.bin");
    let offset = 1_234_567usize;
    let url = format!("{}/{}", proxy.url(server.user(), server.pass()), server.sub);
    let r = curl(
        client,
        &[
            "-r",
            &format!("{offset}-"),
            &format!("{url}resume.bin"),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        r.ok(),
        "REST+RETR failed: {}\n{}",
        r.describe(),
        proxy.output()
    );
    assert_same_bytes(
        "REST+RETR tail",
        &fs::read(&out).unwrap_or_default(),
        &data[offset..],
    );
}

#[test]
fn rest_then_retr_through_pyftpdlib_resumes_at_the_offset() {
    rest_retr_resumes(Pyftpdlib, Passive);
}

#[test]
fn rest_then_retr_through_vsftpd_in_active_mode_resumes_at_the_offset() {
    rest_retr_resumes(Vsftpd, Active);
}

/// ftplib: one login, then STOR, RETR, NLST, REST+RETR, LIST, DELE, in
/// passive and active mode alternately.
const SEVERAL: &str = r#"
import ftplib, io, sys
port, user, pw, local, outdir, sub = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
f = ftplib.FTP()
f.connect("127.0.0.1", port, timeout=30)
f.login(user, pw)
if sub:
    f.cwd(sub)
data = open(local, "rb").read()
f.set_pasv(True)
print(f.storbinary("STOR one.bin", io.BytesIO(data)))
f.set_pasv(False)
buf = io.BytesIO(); print(f.retrbinary("RETR one.bin", buf.write))
open(outdir + "/back1.bin", "wb").write(buf.getvalue())
f.set_pasv(True)
print("NLST", sorted(f.nlst()))
f.set_pasv(False)
buf = io.BytesIO(); print(f.retrbinary("RETR one.bin", buf.write, rest=1000))
open(outdir + "/back2.bin", "wb").write(buf.getvalue())
f.set_pasv(True)
lines = []; print(f.retrlines("LIST", lines.append)); print("LIST", len(lines))
f.set_pasv(False)
print(f.storbinary("STOR two.bin", io.BytesIO(data[:5000])))
print(f.delete("one.bin"))
print(f.quit())
"#;

fn several_transfers_in_one_session(kind: ServerKind) {
    let server = FtpServer::start(kind);
    let proxy = Proxy::start(server.port, "");
    let tmp = TempDir::new("several");
    let data = random_bytes(1024 * 1024 + 17, 11);
    let local = tmp.join("src.bin");
    fs::write(&local, &data).unwrap();
    let port = proxy.port.to_string();
    let r = python_script(
        SEVERAL,
        &[
            &port,
            server.user(),
            server.pass(),
            local.to_str().unwrap(),
            tmp.path().to_str().unwrap(),
            server.sub,
        ],
    );
    assert!(
        r.ok(),
        "ftplib session failed: {}\n{}",
        r.describe(),
        proxy.output()
    );
    assert_same_bytes(
        "first RETR",
        &fs::read(tmp.join("back1.bin")).unwrap(),
        &data,
    );
    assert_same_bytes(
        "REST 1000 RETR",
        &fs::read(tmp.join("back2.bin")).unwrap(),
        &data[1000..],
    );
    assert!(r.stdout.contains("NLST ['one.bin']"), "NLST: {}", r.stdout);
    assert!(r.stdout.contains("LIST 1"), "LIST: {}", r.stdout);
    assert!(
        !server.file("one.bin").exists(),
        "DELE did not remove one.bin"
    );
    let two = wait_for_file(&server.file("two.bin"), 5000);
    assert_same_bytes("second STOR", &two, &data[..5000]);
    let codes: Vec<&str> = r.stdout.lines().filter_map(|l| l.get(..3)).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "226").count(),
        5,
        "five transfers, five 226 replies: {}",
        r.stdout
    );
}

#[test]
fn several_transfers_in_one_ftplib_session_through_pyftpdlib_all_succeed() {
    several_transfers_in_one_session(Pyftpdlib);
}

#[test]
fn several_transfers_in_one_ftplib_session_through_vsftpd_all_succeed() {
    several_transfers_in_one_session(Vsftpd);
}

/// Two sessions at once with a small DestinationMinPort/MaxPort range:
/// each control and data connection to the server takes its own port of
/// the range. (SO_REUSEADDR let the second session bind the first one's
/// port and then fail to connect with "Cannot assign requested address".)
/// With the passive range of one port taken by the first session, the
/// second gets a 425 that says why.
const TWO_SESSIONS: &str = r#"
import ftplib, sys
port, user, pw, sub = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
a = ftplib.FTP(); a.connect("127.0.0.1", port, timeout=10); a.login(user, pw)
b = ftplib.FTP(); b.connect("127.0.0.1", port, timeout=10); b.login(user, pw)
print("A", a.nlst(sub))
print("B", b.nlst(sub))
print("PASV-A", a.sendcmd("PASV"))
try:
    print("PASV-B", b.sendcmd("PASV"))
except ftplib.all_errors as e:
    print("PASV-B", e)
a.quit(); b.quit()
"#;

#[test]
fn concurrent_sessions_share_small_destination_and_passive_port_ranges() {
    let server = FtpServer::pyftpdlib();
    server.put("x.txt", b"x\n");
    let dest = free_port();
    let pasv = free_port();
    let proxy = Proxy::start(
        server.port,
        &format!(
            "DestinationMinPort {dest}\nDestinationMaxPort {}\n\
             PassiveMinDataPort {pasv}\nPassiveMaxDataPort {pasv}\n\
             DestinationTransferMode passive",
            dest + 3
        ),
    );
    let port = proxy.port.to_string();
    let r = python_script(
        TWO_SESSIONS,
        &[&port, server.user(), server.pass(), server.sub],
    );
    assert!(r.ok(), "{}\n{}", r.describe(), proxy.output());
    assert!(r.stdout.contains("A ['"), "first session: {}", r.stdout);
    assert!(r.stdout.contains("B ['"), "second session: {}", r.stdout);
    assert!(
        r.stdout.contains("PASV-B 425") && r.stdout.contains("passive port range"),
        "exhausted passive range: {}",
        r.stdout
    );
}

/// A batch client sends RETR and QUIT and closes its side of the control
/// connection: the download still arrives whole, then 226 and 221.
#[test]
fn a_client_that_half_closes_after_retr_and_quit_still_gets_the_whole_file() {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpStream};
    let server = FtpServer::pyftpdlib();
    let data = random_bytes(BIG, 0x4a1f);
    server.put("big.bin", &data);
    let proxy = Proxy::start(server.port, "");
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    assert_eq!(c.cmd("TYPE I").code, 200);
    let r = c.cmd("PASV");
    assert_eq!(r.code, 227, "{r:?}");
    let t = r.text();
    let nums: Vec<u16> = t[t.find('(').unwrap() + 1..t.find(')').unwrap()]
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    let mut d = TcpStream::connect(("127.0.0.1", nums[4] * 256 + nums[5])).unwrap();
    d.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut w = c.raw_stream();
    w.write_all(b"RETR big.bin\r\nQUIT\r\n").unwrap();
    w.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    let _ = d.read_to_end(&mut got);
    assert_same_bytes("RETR before a half-close", &got, &data);
    let replies = c
        .replies_until_eof(20)
        .expect("proxy kept the connection open");
    let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
    assert!(
        codes.len() == 3 && matches!(codes[0], 125 | 150) && codes[1..] == [226, 221],
        "{replies:?}\n{}",
        proxy.output()
    );
}

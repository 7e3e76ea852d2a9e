//! FTPS (SPEC 10): TLS on the client leg, the server leg, or both, with
//! real programs: vsftpd (require_ssl_reuse=YES) and pyftpdlib's
//! TLS_FTPHandler as servers; curl, lftp and Python's ftplib.FTP_TLS as
//! clients; a throw-away PKI made with the openssl CLI per test.
//!
//! The `direct_` tests run the clients straight against the TLS servers,
//! without the proxy: they prove the fixtures work on this machine. The
//! others run through ftpgate with the options of SPEC 10.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

const SIZE: usize = 3 * 1024 * 1024 + 4321;

fn src_file(dir: &TempDir, len: usize, seed: u64) -> (std::path::PathBuf, Vec<u8>) {
    let data = random_bytes(len, seed);
    let p = dir.join("src.bin");
    fs::write(&p, &data).unwrap();
    (p, data)
}

/// The files FTPLIB_TLS stored for `modes` are on the server, byte exact.
fn assert_uploads_on_server(server: &FtpServer, modes: &str, data: &[u8]) {
    for (i, mode) in modes.split(',').enumerate() {
        let want = &data[i..];
        let got = wait_for_file(&server.file(&format!("ftps-{i}-{mode}.bin")), want.len());
        assert_same_bytes(&format!("upload {i} ({mode}) on the server"), &got, want);
    }
}

fn data_connections(r: &Ran) -> usize {
    r.stdout
        .lines()
        .find_map(|l| l.strip_prefix("data connections "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn openssl_verify(ca: &Path, cert: &Path, name: Option<&str>) -> Ran {
    let mut cmd = Command::new("openssl");
    cmd.arg("verify").arg("-CAfile").arg(ca);
    if let Some(n) = name {
        cmd.args(["-verify_hostname", n]);
    }
    cmd.arg(cert);
    run_bounded(cmd, 30)
}

// ---------------------------------------------------------------------------
// The fixtures, directly (no proxy)

#[test]
fn direct_pki_leaf_chains_to_the_ca_and_the_wrong_ones_do_not() {
    let pki = Pki::new();
    let r = openssl_verify(&pki.ca_cert, &pki.cert, Some("localhost"));
    assert!(r.ok(), "good leaf: {}", r.describe());
    let r = openssl_verify(&pki.ca_cert, &pki.other_ca_leaf_cert, None);
    assert!(!r.ok(), "leaf of the other CA verified: {}", r.describe());
    let r = openssl_verify(&pki.other_ca_cert, &pki.other_ca_leaf_cert, None);
    assert!(r.ok(), "other CA's leaf against the other CA: {}", r.describe());
    let r = openssl_verify(&pki.ca_cert, &pki.wrong_name_cert, None);
    assert!(r.ok(), "wrong-name leaf chains: {}", r.describe());
    let r = openssl_verify(&pki.ca_cert, &pki.wrong_name_cert, Some("localhost"));
    assert!(!r.ok(), "wrong-name leaf matched localhost: {}", r.describe());
}

#[test]
fn direct_curl_explicit_ftps_to_vsftpd_downloads_and_uploads_byte_exact() {
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(&pki, TlsServerOpts::default());
    let tmp = TempDir::new("ftps");
    let data = random_bytes(SIZE, 1);
    server.put("down.bin", &data);
    let url = format!("{}/{}", ftps_url(server.port, server.user(), server.pass(), false), server.sub);
    for data_cmd in [DataCmd::Pasv, DataCmd::Epsv] {
        let out = tmp.join("got.bin");
        let r = curl_tls(data_cmd, &pki.ca_cert, &[&format!("{url}down.bin"), "-o", out.to_str().unwrap()]);
        assert!(r.ok(), "{data_cmd:?} download: {}\n{}", r.describe(), server.server_log());
        assert_same_bytes("download", &fs::read(&out).unwrap(), &data);
        let name = format!("up-{}.bin", data_cmd.verb());
        let r = curl_tls(data_cmd, &pki.ca_cert, &["-T", out.to_str().unwrap(), &format!("{url}{name}")]);
        assert!(r.ok(), "{data_cmd:?} upload: {}\n{}", r.describe(), server.server_log());
        assert_same_bytes("upload", &wait_for_file(&server.file(&name), data.len()), &data);
    }
}

#[test]
fn direct_curl_implicit_ftps_to_vsftpd_downloads() {
    let pki = Pki::new();
    let opts = TlsServerOpts { implicit: true, ..Default::default() };
    let server = FtpServer::vsftpd_tls(&pki, opts);
    let data = random_bytes(100_000, 2);
    server.put("down.bin", &data);
    let tmp = TempDir::new("ftps");
    let out = tmp.join("got.bin");
    let url = format!("{}/{}down.bin", ftps_url(server.port, server.user(), server.pass(), true), server.sub);
    let r = curl_tls(DataCmd::Pasv, &pki.ca_cert, &[&url, "-o", out.to_str().unwrap()]);
    assert!(r.ok(), "implicit download: {}\n{}", r.describe(), server.server_log());
    assert_same_bytes("implicit download", &fs::read(&out).unwrap(), &data);
    // Explicit FTPS (plain greeting first) cannot talk to it.
    let url = format!("{}/{}down.bin", ftps_url(server.port, server.user(), server.pass(), false), server.sub);
    let r = curl_tls(DataCmd::Pasv, &pki.ca_cert, &["--max-time", "10", &url, "-o", out.to_str().unwrap()]);
    assert!(!r.ok(), "explicit FTPS to an implicit server worked: {}", r.describe());
}

#[test]
fn direct_curl_rejects_the_wrong_ca_and_the_wrong_name() {
    let pki = Pki::new();
    for cert in [ServerCert::OtherCa, ServerCert::WrongName] {
        let server = FtpServer::vsftpd_tls(&pki, TlsServerOpts { cert, ..Default::default() });
        let url = format!("{}/", ftps_url(server.port, server.user(), server.pass(), false));
        let r = curl_tls(DataCmd::Pasv, &pki.ca_cert, &[&url]);
        assert!(!r.ok(), "{cert:?} accepted: {}", r.describe());
        // curl: 60 = peer certificate cannot be authenticated.
        assert_eq!(r.status.and_then(|s| s.code()), Some(60), "{cert:?}: {}", r.describe());
        let r = curl_tls(DataCmd::Pasv, &pki.ca_cert, &["-k", &url]);
        assert!(r.ok(), "{cert:?} with -k: {}", r.describe());
    }
}

#[test]
fn direct_lftp_ftps_to_vsftpd_in_passive_and_active_mode() {
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(&pki, TlsServerOpts::default());
    let data = random_bytes(SIZE, 3);
    server.put("down.bin", &data);
    let tmp = TempDir::new("ftps");
    for data_cmd in [DataCmd::Pasv, DataCmd::Epsv, DataCmd::Port] {
        let local = tmp.join(&format!("got-{}.bin", data_cmd.verb()));
        let script = format!(
            "cd {sub}; get down.bin -o {l}; put {l} -o up-{v}.bin; ls",
            sub = if server.sub.is_empty() { "." } else { server.sub },
            l = local.display(),
            v = data_cmd.verb()
        );
        let r = lftp_tls(server.port, server.user(), server.pass(), &pki.ca_cert, data_cmd, false, &script);
        assert!(r.ok(), "lftp {data_cmd:?}: {}\n{}", r.describe(), server.server_log());
        assert_same_bytes("lftp get", &fs::read(&local).unwrap(), &data);
        let name = format!("up-{}.bin", data_cmd.verb());
        assert_same_bytes("lftp put", &wait_for_file(&server.file(&name), data.len()), &data);
        assert!(r.stdout.contains("down.bin"), "ls: {}", r.describe());
    }
}

fn direct_ftplib(version: TlsVersion) {
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(&pki, TlsServerOpts { version, ..Default::default() });
    let tmp = TempDir::new("ftps");
    let (src, data) = src_file(&tmp, SIZE, 4);
    let modes = "PASV,EPSV,PORT,EPRT";
    let o = FtplibTls { ca: &pki.ca_cert, version, implicit: false, reuse: true, modes, src: &src };
    let r = ftplib_tls(server.port, &server, &o);
    assert!(r.ok(), "ftplib: {}\n{}", r.describe(), server.server_log());
    assert!(data_connections(&r) >= 5, "{}", r.describe());
    if let Some(v) = version.name() {
        assert!(r.stdout.contains(&format!("control {v}")), "{}", r.describe());
        assert!(!r.stdout.lines().any(|l| l.starts_with("data TLS") && !l.contains(v)), "{}", r.describe());
    }
    assert!(!r.stdout.contains("reused False"), "{}", r.describe());
    assert_uploads_on_server(&server, modes, &data);
}

#[test]
fn direct_ftplib_prot_p_resuming_the_session_on_tls12() {
    direct_ftplib(TlsVersion::Tls12);
}

#[test]
fn direct_ftplib_prot_p_resuming_the_session_on_tls13() {
    direct_ftplib(TlsVersion::Tls13);
}

#[test]
fn direct_stock_ftplib_fails_on_vsftpd_that_requires_reuse() {
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(&pki, TlsServerOpts::default());
    let tmp = TempDir::new("ftps");
    let (src, _) = src_file(&tmp, 1000, 5);
    let o = FtplibTls { ca: &pki.ca_cert, version: TlsVersion::Any, implicit: false, reuse: false, modes: "PASV", src: &src };
    let r = ftplib_tls(server.port, &server, &o);
    assert!(!r.ok(), "vsftpd accepted a data connection without reuse: {}", r.describe());
    assert!(r.stdout.contains("control TLS"), "control TLS failed instead: {}", r.describe());
}

#[test]
fn direct_ftplib_implicit_to_vsftpd() {
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(&pki, TlsServerOpts { implicit: true, ..Default::default() });
    let tmp = TempDir::new("ftps");
    let (src, data) = src_file(&tmp, 200_000, 6);
    let modes = "PASV,PORT";
    let o = FtplibTls { ca: &pki.ca_cert, version: TlsVersion::Any, implicit: true, reuse: true, modes, src: &src };
    let r = ftplib_tls(server.port, &server, &o);
    assert!(r.ok(), "ftplib implicit: {}\n{}", r.describe(), server.server_log());
    assert_uploads_on_server(&server, modes, &data);
}

#[test]
fn direct_pyftpdlib_tls_serves_stock_ftplib_and_curl() {
    let pki = Pki::new();
    let server = FtpServer::pyftpdlib_tls(&pki);
    let tmp = TempDir::new("ftps");
    let (src, data) = src_file(&tmp, SIZE, 7);
    let modes = "PASV,EPSV,PORT";
    let o = FtplibTls { ca: &pki.ca_cert, version: TlsVersion::Any, implicit: false, reuse: false, modes, src: &src };
    let r = ftplib_tls(server.port, &server, &o);
    assert!(r.ok(), "ftplib: {}\n{}", r.describe(), server.output());
    assert_uploads_on_server(&server, modes, &data);
    let url = format!("{}/", ftps_url(server.port, server.user(), server.pass(), false));
    let r = curl_tls(DataCmd::Epsv, &pki.ca_cert, &[&url]);
    assert!(r.ok() && r.stdout.contains("ftps-0-PASV.bin"), "curl LIST: {}", r.describe());
}

#[test]
fn direct_vsftpd_tls_refuses_user_before_auth_and_lists_auth_in_feat() {
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(&pki, TlsServerOpts::default());
    // vsftpd closes the connection after its 530.
    let r = ftps_commands(server.port, &pki.ca_cert, false, &["FEAT", "USER anonymous"]);
    assert!(r.stdout.contains("AUTH TLS"), "FEAT: {}", r.describe());
    let codes: Vec<u16> = ftps_replies(&r).iter().map(|x| x.1).collect();
    assert_eq!(codes, [220, 211, 530], "{}", r.describe());
    let r = ftps_commands(server.port, &pki.ca_cert, false, &["AUTH TLS", "USER anonymous", "PBSZ 0", "PROT P"]);
    let codes: Vec<u16> = ftps_replies(&r).iter().map(|x| x.1).collect();
    assert_eq!(codes, [220, 234, 331, 200, 200], "{}", r.describe());
    assert!(r.stdout.contains("tls 1 TLSv1.3"), "{}", r.describe());
}

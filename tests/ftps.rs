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
    assert!(
        r.ok(),
        "other CA's leaf against the other CA: {}",
        r.describe()
    );
    let r = openssl_verify(&pki.ca_cert, &pki.wrong_name_cert, None);
    assert!(r.ok(), "wrong-name leaf chains: {}", r.describe());
    let r = openssl_verify(&pki.ca_cert, &pki.wrong_name_cert, Some("localhost"));
    assert!(
        !r.ok(),
        "wrong-name leaf matched localhost: {}",
        r.describe()
    );
}

#[test]
fn direct_curl_explicit_ftps_to_vsftpd_downloads_and_uploads_byte_exact() {
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(&pki, TlsServerOpts::default());
    let tmp = TempDir::new("ftps");
    let data = random_bytes(SIZE, 1);
    server.put("down.bin", &data);
    let url = format!(
        "{}/{}",
        ftps_url(server.port, server.user(), server.pass(), false),
        server.sub
    );
    for data_cmd in [DataCmd::Pasv, DataCmd::Epsv] {
        let out = tmp.join("got.bin");
        let r = curl_tls(
            data_cmd,
            &pki.ca_cert,
            &[&format!("{url}down.bin"), "-o", out.to_str().unwrap()],
        );
        assert!(
            r.ok(),
            "{data_cmd:?} download: {}\n{}",
            r.describe(),
            server.server_log()
        );
        assert_same_bytes("download", &fs::read(&out).unwrap(), &data);
        let name = format!("up-{}.bin", data_cmd.verb());
        let r = curl_tls(
            data_cmd,
            &pki.ca_cert,
            &["-T", out.to_str().unwrap(), &format!("{url}{name}")],
        );
        assert!(
            r.ok(),
            "{data_cmd:?} upload: {}\n{}",
            r.describe(),
            server.server_log()
        );
        assert_same_bytes(
            "upload",
            &wait_for_file(&server.file(&name), data.len()),
            &data,
        );
    }
}

#[test]
fn direct_curl_implicit_ftps_to_vsftpd_downloads() {
    let pki = Pki::new();
    let opts = TlsServerOpts {
        implicit: true,
        ..Default::default()
    };
    let server = FtpServer::vsftpd_tls(&pki, opts);
    let data = random_bytes(100_000, 2);
    server.put("down.bin", &data);
    let tmp = TempDir::new("ftps");
    let out = tmp.join("got.bin");
    let url = format!(
        "{}/{}down.bin",
        ftps_url(server.port, server.user(), server.pass(), true),
        server.sub
    );
    let r = curl_tls(
        DataCmd::Pasv,
        &pki.ca_cert,
        &[&url, "-o", out.to_str().unwrap()],
    );
    assert!(
        r.ok(),
        "implicit download: {}\n{}",
        r.describe(),
        server.server_log()
    );
    assert_same_bytes("implicit download", &fs::read(&out).unwrap(), &data);
    // Explicit FTPS (plain greeting first) cannot talk to it.
    let url = format!(
        "{}/{}down.bin",
        ftps_url(server.port, server.user(), server.pass(), false),
        server.sub
    );
    let r = curl_tls(
        DataCmd::Pasv,
        &pki.ca_cert,
        &["--max-time", "10", &url, "-o", out.to_str().unwrap()],
    );
    assert!(
        !r.ok(),
        "explicit FTPS to an implicit server worked: {}",
        r.describe()
    );
}

#[test]
fn direct_curl_rejects_the_wrong_ca_and_the_wrong_name() {
    let pki = Pki::new();
    for cert in [ServerCert::OtherCa, ServerCert::WrongName] {
        let server = FtpServer::vsftpd_tls(
            &pki,
            TlsServerOpts {
                cert,
                ..Default::default()
            },
        );
        let url = format!(
            "{}/",
            ftps_url(server.port, server.user(), server.pass(), false)
        );
        let r = curl_tls(DataCmd::Pasv, &pki.ca_cert, &[&url]);
        assert!(!r.ok(), "{cert:?} accepted: {}", r.describe());
        // curl: 60 = peer certificate cannot be authenticated.
        assert_eq!(
            r.status.and_then(|s| s.code()),
            Some(60),
            "{cert:?}: {}",
            r.describe()
        );
        let r = curl_tls(DataCmd::Pasv, &pki.ca_cert, &["-k", &url]);
        assert!(r.ok(), "{cert:?} with -k: {}", r.describe());
    }
}

#[test]
fn direct_lftp_ftps_to_vsftpd_in_passive_and_active_mode() {
    let pki = Pki::new();
    // TLS 1.2: over TLS 1.3, vsftpd sends session tickets on an upload's
    // data connection that lftp never reads, so lftp's close is a reset
    // that costs vsftpd the end of the file under load (the very failure
    // ftpgate avoids on its client leg; see README "FTPS"). This direct
    // test checks the fixtures, not that server/client pair.
    let server = FtpServer::vsftpd_tls(
        &pki,
        TlsServerOpts {
            version: TlsVersion::Tls12,
            ..Default::default()
        },
    );
    let data = random_bytes(SIZE, 3);
    server.put("down.bin", &data);
    let tmp = TempDir::new("ftps");
    for data_cmd in [DataCmd::Pasv, DataCmd::Epsv, DataCmd::Port] {
        let local = tmp.join(&format!("got-{}.bin", data_cmd.verb()));
        let script = format!(
            "cd {sub}; get down.bin -o {l}; put {l} -o up-{v}.bin; ls",
            sub = if server.sub.is_empty() {
                "."
            } else {
                server.sub
            },
            l = local.display(),
            v = data_cmd.verb()
        );
        let r = lftp_tls(
            server.port,
            server.user(),
            server.pass(),
            &pki.ca_cert,
            data_cmd,
            false,
            &script,
        );
        assert!(
            r.ok(),
            "lftp {data_cmd:?}: {}\n{}",
            r.describe(),
            server.server_log()
        );
        assert_same_bytes("lftp get", &fs::read(&local).unwrap(), &data);
        let name = format!("up-{}.bin", data_cmd.verb());
        assert_same_bytes(
            "lftp put",
            &wait_for_file(&server.file(&name), data.len()),
            &data,
        );
        assert!(r.stdout.contains("down.bin"), "ls: {}", r.describe());
    }
}

fn direct_ftplib(version: TlsVersion) {
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(
        &pki,
        TlsServerOpts {
            version,
            ..Default::default()
        },
    );
    let tmp = TempDir::new("ftps");
    let (src, data) = src_file(&tmp, SIZE, 4);
    let modes = "PASV,EPSV,PORT,EPRT";
    let o = FtplibTls {
        ca: &pki.ca_cert,
        version,
        implicit: false,
        reuse: true,
        modes,
        src: &src,
    };
    let r = ftplib_tls(server.port, &server, &o);
    assert!(r.ok(), "ftplib: {}\n{}", r.describe(), server.server_log());
    assert!(data_connections(&r) >= 5, "{}", r.describe());
    if let Some(v) = version.name() {
        assert!(
            r.stdout.contains(&format!("control {v}")),
            "{}",
            r.describe()
        );
        assert!(
            !r.stdout
                .lines()
                .any(|l| l.starts_with("data TLS") && !l.contains(v)),
            "{}",
            r.describe()
        );
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
    let o = FtplibTls {
        ca: &pki.ca_cert,
        version: TlsVersion::Any,
        implicit: false,
        reuse: false,
        modes: "PASV",
        src: &src,
    };
    let r = ftplib_tls(server.port, &server, &o);
    assert!(
        !r.ok(),
        "vsftpd accepted a data connection without reuse: {}",
        r.describe()
    );
    assert!(
        r.stdout.contains("control TLS"),
        "control TLS failed instead: {}",
        r.describe()
    );
}

#[test]
fn direct_ftplib_implicit_to_vsftpd() {
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(
        &pki,
        TlsServerOpts {
            implicit: true,
            ..Default::default()
        },
    );
    let tmp = TempDir::new("ftps");
    let (src, data) = src_file(&tmp, 200_000, 6);
    let modes = "PASV,PORT";
    let o = FtplibTls {
        ca: &pki.ca_cert,
        version: TlsVersion::Any,
        implicit: true,
        reuse: true,
        modes,
        src: &src,
    };
    let r = ftplib_tls(server.port, &server, &o);
    assert!(
        r.ok(),
        "ftplib implicit: {}\n{}",
        r.describe(),
        server.server_log()
    );
    assert_uploads_on_server(&server, modes, &data);
}

#[test]
fn direct_pyftpdlib_tls_serves_stock_ftplib_and_curl() {
    let pki = Pki::new();
    let server = FtpServer::pyftpdlib_tls(&pki);
    let tmp = TempDir::new("ftps");
    let (src, data) = src_file(&tmp, SIZE, 7);
    let modes = "PASV,EPSV,PORT";
    let o = FtplibTls {
        ca: &pki.ca_cert,
        version: TlsVersion::Any,
        implicit: false,
        reuse: false,
        modes,
        src: &src,
    };
    let r = ftplib_tls(server.port, &server, &o);
    assert!(r.ok(), "ftplib: {}\n{}", r.describe(), server.output());
    assert_uploads_on_server(&server, modes, &data);
    let url = format!(
        "{}/",
        ftps_url(server.port, server.user(), server.pass(), false)
    );
    let r = curl_tls(DataCmd::Epsv, &pki.ca_cert, &[&url]);
    assert!(
        r.ok() && r.stdout.contains("ftps-0-PASV.bin"),
        "curl LIST: {}",
        r.describe()
    );
}

#[test]
fn direct_vsftpd_tls_refuses_user_before_auth_and_lists_auth_in_feat() {
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(&pki, TlsServerOpts::default());
    // vsftpd closes the connection after its 530.
    let r = ftps_commands(
        server.port,
        &pki.ca_cert,
        false,
        &["FEAT", "USER anonymous"],
    );
    assert!(r.stdout.contains("AUTH TLS"), "FEAT: {}", r.describe());
    let codes: Vec<u16> = ftps_replies(&r).iter().map(|x| x.1).collect();
    assert_eq!(codes, [220, 211, 530], "{}", r.describe());
    let r = ftps_commands(
        server.port,
        &pki.ca_cert,
        false,
        &["AUTH TLS", "USER anonymous", "PBSZ 0", "PROT P"],
    );
    let codes: Vec<u16> = ftps_replies(&r).iter().map(|x| x.1).collect();
    assert_eq!(codes, [220, 234, 331, 200, 200], "{}", r.describe());
    assert!(r.stdout.contains("tls 1 TLSv1.3"), "{}", r.describe());
}

// ---------------------------------------------------------------------------
// Through the proxy (SPEC 10). These fail until ftpgate implements FTPS.

/// Wait (bounded) until the proxy log has at least `n` lines containing
/// "TLS" (one per TLS leg's handshake: version and cipher suite).
fn assert_tls_logged(proxy: &Proxy, n: usize) {
    let ok = wait_until(10, || {
        proxy
            .log_text()
            .lines()
            .filter(|l| l.contains("TLS"))
            .count()
            >= n
    });
    assert!(
        ok,
        "fewer than {n} TLS lines in the proxy log:\n{}",
        proxy.log_text()
    );
}

fn codes(r: &Ran) -> Vec<u16> {
    ftps_replies(r).iter().map(|x| x.1).collect()
}

/// curl with TLS to the proxy, plain from the proxy to pyftpdlib:
/// download and upload byte exact, PASV and EPSV.
#[test]
fn tls_client_to_plain_pyftpdlib_with_curl_explicit() {
    if skip_unless_ftpgate("tls_client_to_plain_pyftpdlib_with_curl_explicit") {
        return;
    }
    let pki = Pki::new();
    let server = FtpServer::pyftpdlib();
    let data = random_bytes(SIZE, 11);
    server.put("down.bin", &data);
    let proxy = Proxy::start(server.port, &pki.client_tls_conf("optional"));
    let tmp = TempDir::new("ftps");
    let url = format!(
        "{}/",
        ftps_url(proxy.port, server.user(), server.pass(), false)
    );
    for data_cmd in [DataCmd::Pasv, DataCmd::Epsv] {
        let out = tmp.join("got.bin");
        let r = curl_tls(
            data_cmd,
            &pki.ca_cert,
            &[&format!("{url}down.bin"), "-o", out.to_str().unwrap()],
        );
        assert!(
            r.ok(),
            "{data_cmd:?} download: {}\n{}",
            r.describe(),
            proxy.output()
        );
        assert_same_bytes("download", &fs::read(&out).unwrap(), &data);
        let name = format!("up-{}.bin", data_cmd.verb());
        let r = curl_tls(
            data_cmd,
            &pki.ca_cert,
            &["-T", out.to_str().unwrap(), &format!("{url}{name}")],
        );
        assert!(
            r.ok(),
            "{data_cmd:?} upload: {}\n{}",
            r.describe(),
            proxy.output()
        );
        assert_same_bytes(
            "upload",
            &wait_for_file(&server.file(&name), data.len()),
            &data,
        );
    }
    assert_tls_logged(&proxy, 1);
}

#[test]
fn tls_client_implicit_to_plain_pyftpdlib_with_curl() {
    if skip_unless_ftpgate("tls_client_implicit_to_plain_pyftpdlib_with_curl") {
        return;
    }
    let pki = Pki::new();
    let server = FtpServer::pyftpdlib();
    let data = random_bytes(SIZE, 12);
    server.put("down.bin", &data);
    let extra = format!("{}ClientTLSImplicit yes\n", pki.client_tls_conf("required"));
    let proxy = Proxy::start(server.port, &extra);
    let tmp = TempDir::new("ftps");
    let url = format!(
        "{}/",
        ftps_url(proxy.port, server.user(), server.pass(), true)
    );
    let out = tmp.join("got.bin");
    let r = curl_tls(
        DataCmd::Epsv,
        &pki.ca_cert,
        &[&format!("{url}down.bin"), "-o", out.to_str().unwrap()],
    );
    assert!(
        r.ok(),
        "implicit download: {}\n{}",
        r.describe(),
        proxy.output()
    );
    assert_same_bytes("implicit download", &fs::read(&out).unwrap(), &data);
    let r = curl_tls(
        DataCmd::Pasv,
        &pki.ca_cert,
        &["-T", out.to_str().unwrap(), &format!("{url}up.bin")],
    );
    assert!(
        r.ok(),
        "implicit upload: {}\n{}",
        r.describe(),
        proxy.output()
    );
    assert_same_bytes(
        "implicit upload",
        &wait_for_file(&server.file("up.bin"), data.len()),
        &data,
    );
    // A plain client gets no plain greeting.
    let r = ftps_commands(proxy.port, &pki.ca_cert, false, &["USER test"]);
    assert!(
        !codes(&r).contains(&220),
        "plain greeting on an implicit port: {}",
        r.describe()
    );
    assert_tls_logged(&proxy, 1);
}

/// A plain client (curl, every data command) through the proxy to vsftpd
/// that requires TLS and session reuse, in every DestinationTransferMode.
fn plain_client_to_vsftpd_tls(dest_mode: &str, client: ClientMode) {
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(&pki, TlsServerOpts::default());
    let data = random_bytes(SIZE, 13);
    server.put("down.bin", &data);
    let extra = format!(
        "{}DestinationTransferMode {dest_mode}\n",
        pki.server_tls_conf("required")
    );
    let proxy = Proxy::start(server.port, &extra);
    let tmp = TempDir::new("ftps");
    let url = format!("{}/{}", proxy.url(server.user(), server.pass()), server.sub);
    let out = tmp.join("got.bin");
    let r = curl(
        client,
        &[&format!("{url}down.bin"), "-o", out.to_str().unwrap()],
    );
    assert!(
        r.ok(),
        "download: {}\n{}\n{}",
        r.describe(),
        proxy.output(),
        server.server_log()
    );
    assert_same_bytes("download", &fs::read(&out).unwrap(), &data);
    let r = curl(
        client,
        &["-T", out.to_str().unwrap(), &format!("{url}up.bin")],
    );
    assert!(
        r.ok(),
        "upload: {}\n{}\n{}",
        r.describe(),
        proxy.output(),
        server.server_log()
    );
    assert_same_bytes(
        "upload on the server",
        &wait_for_file(&server.file("up.bin"), data.len()),
        &data,
    );
    let r = curl(client, &[&url]);
    assert!(
        r.ok() && r.stdout.contains("up.bin"),
        "LIST: {}\n{}",
        r.describe(),
        proxy.output()
    );
    assert_tls_logged(&proxy, 1);
}

#[test]
fn plain_client_to_vsftpd_tls_client_mode_passive_client() {
    if skip_unless_ftpgate("plain_client_to_vsftpd_tls") {
        return;
    }
    plain_client_to_vsftpd_tls("client", ClientMode::Passive);
}

#[test]
fn plain_client_to_vsftpd_tls_client_mode_active_client() {
    if skip_unless_ftpgate("plain_client_to_vsftpd_tls") {
        return;
    }
    plain_client_to_vsftpd_tls("client", ClientMode::Active);
}

#[test]
fn plain_client_to_vsftpd_tls_active_mode() {
    if skip_unless_ftpgate("plain_client_to_vsftpd_tls") {
        return;
    }
    plain_client_to_vsftpd_tls("active", ClientMode::Passive);
}

#[test]
fn plain_client_to_vsftpd_tls_passive_mode() {
    if skip_unless_ftpgate("plain_client_to_vsftpd_tls") {
        return;
    }
    plain_client_to_vsftpd_tls("passive", ClientMode::Active);
}

/// Plain on both legs is unchanged when nothing TLS is configured.
#[test]
fn plain_both_legs_unchanged() {
    let server = FtpServer::pyftpdlib();
    let data = random_bytes(SIZE, 14);
    server.put("down.bin", &data);
    let proxy = Proxy::start(server.port, "");
    let tmp = TempDir::new("ftps");
    let out = tmp.join("got.bin");
    let url = format!("{}/", proxy.url(server.user(), server.pass()));
    let r = curl(
        ClientMode::Passive,
        &[&format!("{url}down.bin"), "-o", out.to_str().unwrap()],
    );
    assert!(r.ok(), "{}\n{}", r.describe(), proxy.output());
    assert_same_bytes("download", &fs::read(&out).unwrap(), &data);
    // curl --ssl (try TLS, fall back) still works: AUTH is refused.
    let r = curl(
        ClientMode::Passive,
        &[
            "--ssl",
            &format!("{url}down.bin"),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        r.ok(),
        "--ssl fallback: {}\n{}",
        r.describe(),
        proxy.output()
    );
}

/// TLS on both legs with ftplib.FTP_TLS prot_p (session resumed on every
/// data connection), every data command, 10 data connections, on one TLS
/// version end to end; uploads compared on the server.
fn tls_both_ftplib(version: TlsVersion, dest_mode: &str) {
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(
        &pki,
        TlsServerOpts {
            version,
            ..Default::default()
        },
    );
    let extra = format!(
        "{}{}DestinationTransferMode {dest_mode}\n",
        pki.client_tls_conf("optional"),
        pki.server_tls_conf("required")
    );
    let proxy = Proxy::start(server.port, &extra);
    let tmp = TempDir::new("ftps");
    let (src, data) = src_file(&tmp, SIZE, 15);
    let modes = "PASV,EPSV,PORT,EPRT";
    let o = FtplibTls {
        ca: &pki.ca_cert,
        version,
        implicit: false,
        reuse: true,
        modes,
        src: &src,
    };
    let r = ftplib_tls(proxy.port, &server, &o);
    assert!(
        r.ok(),
        "ftplib: {}\n{}\n{}",
        r.describe(),
        proxy.output(),
        server.server_log()
    );
    assert!(data_connections(&r) >= 5, "{}", r.describe());
    let v = version.name().unwrap();
    assert!(
        r.stdout.contains(&format!("control {v}")),
        "{}",
        r.describe()
    );
    assert_uploads_on_server(&server, modes, &data);
    assert_tls_logged(&proxy, 2);
    let log = proxy.log_text();
    assert!(
        log.contains("1.2") || log.contains("1.3"),
        "no TLS version in the log:\n{log}"
    );
}

#[test]
fn tls_both_legs_ftplib_prot_p_tls12_passive_mode() {
    if skip_unless_ftpgate("tls_both") {
        return;
    }
    tls_both_ftplib(TlsVersion::Tls12, "passive");
}

#[test]
fn tls_both_legs_ftplib_prot_p_tls13_passive_mode() {
    if skip_unless_ftpgate("tls_both") {
        return;
    }
    tls_both_ftplib(TlsVersion::Tls13, "passive");
}

#[test]
fn tls_both_legs_ftplib_prot_p_tls12_active_mode() {
    if skip_unless_ftpgate("tls_both") {
        return;
    }
    tls_both_ftplib(TlsVersion::Tls12, "active");
}

#[test]
fn tls_both_legs_ftplib_prot_p_tls13_active_mode() {
    if skip_unless_ftpgate("tls_both") {
        return;
    }
    tls_both_ftplib(TlsVersion::Tls13, "active");
}

#[test]
fn tls_both_legs_curl_explicit_and_implicit() {
    if skip_unless_ftpgate("tls_both_legs_curl") {
        return;
    }
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(&pki, TlsServerOpts::default());
    let data = random_bytes(SIZE, 16);
    server.put("down.bin", &data);
    let tmp = TempDir::new("ftps");
    let out = tmp.join("got.bin");
    for implicit in [false, true] {
        let extra = format!(
            "{}{}ClientTLSImplicit {}\n",
            pki.client_tls_conf(if implicit { "required" } else { "optional" }),
            pki.server_tls_conf("required"),
            if implicit { "yes" } else { "no" }
        );
        let proxy = Proxy::start(server.port, &extra);
        let url = format!(
            "{}/{}",
            ftps_url(proxy.port, server.user(), server.pass(), implicit),
            server.sub
        );
        let r = curl_tls(
            DataCmd::Epsv,
            &pki.ca_cert,
            &[&format!("{url}down.bin"), "-o", out.to_str().unwrap()],
        );
        assert!(
            r.ok(),
            "implicit={implicit} download: {}\n{}",
            r.describe(),
            proxy.output()
        );
        assert_same_bytes("download", &fs::read(&out).unwrap(), &data);
        // TLS 1.2 on the client leg: curl uploads with reuse required work
        // there (on 1.3 they are a limit of curl, SPEC 10).
        let name = format!("up-{implicit}.bin");
        let r = curl_tls(
            DataCmd::Pasv,
            &pki.ca_cert,
            &[
                "--tls-max",
                "1.2",
                "-T",
                out.to_str().unwrap(),
                &format!("{url}{name}"),
            ],
        );
        assert!(
            r.ok(),
            "implicit={implicit} upload: {}\n{}",
            r.describe(),
            proxy.output()
        );
        assert_same_bytes(
            "upload on the server",
            &wait_for_file(&server.file(&name), data.len()),
            &data,
        );
        assert_tls_logged(&proxy, 2);
    }
}

#[test]
fn tls_both_legs_lftp_ssl_force_passive_and_active() {
    if skip_unless_ftpgate("tls_both_legs_lftp") {
        return;
    }
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(&pki, TlsServerOpts::default());
    let data = random_bytes(SIZE, 17);
    server.put("down.bin", &data);
    let extra = format!(
        "{}{}",
        pki.client_tls_conf("required"),
        pki.server_tls_conf("required")
    );
    let proxy = Proxy::start(server.port, &extra);
    let tmp = TempDir::new("ftps");
    for data_cmd in [DataCmd::Pasv, DataCmd::Epsv, DataCmd::Port] {
        let local = tmp.join(&format!("got-{}.bin", data_cmd.verb()));
        let script = format!(
            "cd {sub}; get down.bin -o {l}; put {l} -o up-{v}.bin; ls",
            sub = server.sub,
            l = local.display(),
            v = data_cmd.verb()
        );
        let r = lftp_tls(
            proxy.port,
            server.user(),
            server.pass(),
            &pki.ca_cert,
            data_cmd,
            false,
            &script,
        );
        assert!(
            r.ok(),
            "lftp {data_cmd:?}: {}\n{}",
            r.describe(),
            proxy.output()
        );
        assert_same_bytes("lftp get", &fs::read(&local).unwrap(), &data);
        let name = format!("up-{}.bin", data_cmd.verb());
        assert_same_bytes(
            "lftp put on the server",
            &wait_for_file(&server.file(&name), data.len()),
            &data,
        );
    }
}

/// ClientTLSRequireReuse yes (the default) refuses stock ftplib's data
/// connections (it never resumes the control session); ftplib that
/// resumes works; `no` lets stock ftplib through.
#[test]
fn client_tls_require_reuse_refuses_stock_ftplib_and_no_allows_it() {
    if skip_unless_ftpgate("client_tls_require_reuse") {
        return;
    }
    let pki = Pki::new();
    let server = FtpServer::pyftpdlib();
    let tmp = TempDir::new("ftps");
    let (src, data) = src_file(&tmp, 500_000, 18);
    let modes = "PASV,EPSV,PORT";
    let stock = FtplibTls {
        ca: &pki.ca_cert,
        version: TlsVersion::Any,
        implicit: false,
        reuse: false,
        modes,
        src: &src,
    };
    let resuming = FtplibTls {
        reuse: true,
        ..stock
    };

    let proxy = Proxy::start(server.port, &pki.client_tls_conf("optional"));
    let r = ftplib_tls(proxy.port, &server, &stock);
    assert!(
        !r.ok(),
        "data connection without reuse accepted: {}\n{}",
        r.describe(),
        proxy.output()
    );
    assert!(
        r.stdout.contains("control TLS"),
        "control TLS failed instead: {}",
        r.describe()
    );
    // A download's client reads the data connection's end, then the
    // 425; an upload's client is still sending when the proxy closes the
    // connection (as vsftpd does), so it may see the TLS error first.
    assert!(
        r.stderr.contains("error_temp: 42")
            || r.stderr.contains("error_perm: 52")
            || r.stderr.contains("EOF occurred")
            || r.stderr.contains("Connection reset"),
        "no 425/522-class reply or closed data connection: {}",
        r.describe()
    );
    assert!(
        wait_until(10, || proxy.log_text().contains("TLS session not resumed")),
        "no log line for the refused data connection:\n{}",
        proxy.log_text()
    );
    let r = ftplib_tls(proxy.port, &server, &resuming);
    assert!(
        r.ok(),
        "resuming ftplib: {}\n{}",
        r.describe(),
        proxy.output()
    );
    assert_uploads_on_server(&server, modes, &data);
    drop(proxy);

    let extra = format!(
        "{}ClientTLSRequireReuse no\n",
        pki.client_tls_conf("optional")
    );
    let proxy = Proxy::start(server.port, &extra);
    let r = ftplib_tls(proxy.port, &server, &stock);
    assert!(
        r.ok(),
        "stock ftplib with reuse not required: {}\n{}",
        r.describe(),
        proxy.output()
    );
    assert!(data_connections(&r) >= 5, "{}", r.describe());
}

/// ServerTLSVerify yes with a certificate of another CA or for another
/// name: the client gets 421 and the log says why.
#[test]
fn server_tls_verify_refuses_a_wrong_ca_and_a_wrong_name() {
    if skip_unless_ftpgate("server_tls_verify") {
        return;
    }
    let pki = Pki::new();
    // The same configuration with the right certificate logs in.
    let server = FtpServer::vsftpd_tls(&pki, TlsServerOpts::default());
    let extra = format!("{}ServerTLSVerify yes\n", pki.server_tls_conf("required"));
    let proxy = Proxy::start(server.port, &extra);
    let r = ftps_commands(
        proxy.port,
        &pki.ca_cert,
        false,
        &["USER anonymous", "PASS ftpgate@example.org", "PWD"],
    );
    assert_eq!(
        codes(&r),
        [220, 331, 230, 257],
        "good certificate: {}\n{}",
        r.describe(),
        proxy.output()
    );
    drop(proxy);
    for cert in [ServerCert::OtherCa, ServerCert::WrongName] {
        let server = FtpServer::vsftpd_tls(
            &pki,
            TlsServerOpts {
                cert,
                ..Default::default()
            },
        );
        let extra = format!("{}ServerTLSVerify yes\n", pki.server_tls_conf("required"));
        let proxy = Proxy::start(server.port, &extra);
        let r = ftps_commands(
            proxy.port,
            &pki.ca_cert,
            false,
            &["USER anonymous", "PASS ftpgate@example.org", "PWD"],
        );
        let c = codes(&r);
        assert!(
            c.contains(&421),
            "{cert:?}: no 421: {}\n{}",
            r.describe(),
            proxy.output()
        );
        assert!(
            !c.contains(&230) && !c.contains(&257),
            "{cert:?}: logged in: {}",
            r.describe()
        );
        let ok = wait_until(10, || {
            let l = proxy.log_text().to_ascii_lowercase();
            l.contains("certificat")
                || l.contains("verif")
                || l.contains("issuer")
                || l.contains("unknown ca")
        });
        assert!(
            ok,
            "{cert:?}: the log does not say why:\n{}",
            proxy.log_text()
        );
    }
}

#[test]
fn server_tls_verify_no_accepts_any_certificate_and_warns() {
    if skip_unless_ftpgate("server_tls_verify_no") {
        return;
    }
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(
        &pki,
        TlsServerOpts {
            cert: ServerCert::OtherCa,
            ..Default::default()
        },
    );
    server.put("x.txt", b"unverified\n");
    let extra = format!("{}ServerTLSVerify no\n", pki.server_tls_conf("required"));
    let proxy = Proxy::start(server.port, &extra);
    let url = format!(
        "{}/{}x.txt",
        proxy.url(server.user(), server.pass()),
        server.sub
    );
    let r = curl(ClientMode::Passive, &[&url]);
    assert!(
        r.ok() && r.stdout == "unverified\n",
        "{}\n{}",
        r.describe(),
        proxy.output()
    );
    let ok = wait_until(10, || proxy.log_text().lines().any(|l| l.contains("WRN")));
    assert!(ok, "no WRN line:\n{}", proxy.log_text());
}

/// ServerTLS auto: TLS when the server's FEAT lists AUTH TLS, else plain.
#[test]
fn server_tls_auto_uses_tls_when_offered_and_plain_otherwise() {
    if skip_unless_ftpgate("server_tls_auto") {
        return;
    }
    let pki = Pki::new();
    let tls = FtpServer::pyftpdlib_tls(&pki);
    tls.put("x.txt", b"over tls\n");
    let proxy = Proxy::start(tls.port, &pki.server_tls_conf("auto"));
    let r = curl(
        ClientMode::Passive,
        &[&format!("{}/x.txt", proxy.url(tls.user(), tls.pass()))],
    );
    assert!(
        r.ok() && r.stdout == "over tls\n",
        "{}\n{}",
        r.describe(),
        proxy.output()
    );
    assert_tls_logged(&proxy, 1);
    drop(proxy);
    let plain = FtpServer::pyftpdlib();
    plain.put("x.txt", b"plain\n");
    let proxy = Proxy::start(plain.port, &pki.server_tls_conf("auto"));
    let r = curl(
        ClientMode::Passive,
        &[&format!("{}/x.txt", proxy.url(plain.user(), plain.pass()))],
    );
    assert!(
        r.ok() && r.stdout == "plain\n",
        "{}\n{}",
        r.describe(),
        proxy.output()
    );
}

#[test]
fn server_tls_implicit_to_an_implicit_vsftpd() {
    if skip_unless_ftpgate("server_tls_implicit") {
        return;
    }
    let pki = Pki::new();
    let server = FtpServer::vsftpd_tls(
        &pki,
        TlsServerOpts {
            implicit: true,
            ..Default::default()
        },
    );
    let data = random_bytes(SIZE, 19);
    server.put("down.bin", &data);
    let proxy = Proxy::start(server.port, &pki.server_tls_conf("implicit"));
    let tmp = TempDir::new("ftps");
    let out = tmp.join("got.bin");
    let url = format!("{}/{}", proxy.url(server.user(), server.pass()), server.sub);
    let r = curl(
        ClientMode::Active,
        &[&format!("{url}down.bin"), "-o", out.to_str().unwrap()],
    );
    assert!(r.ok(), "{}\n{}", r.describe(), proxy.output());
    assert_same_bytes("download", &fs::read(&out).unwrap(), &data);
    let r = curl(
        ClientMode::Passive,
        &["-T", out.to_str().unwrap(), &format!("{url}up.bin")],
    );
    assert!(r.ok(), "{}\n{}", r.describe(), proxy.output());
    assert_same_bytes(
        "upload on the server",
        &wait_for_file(&server.file("up.bin"), data.len()),
        &data,
    );
}

#[test]
fn feat_lists_auth_pbsz_prot_with_client_tls_optional() {
    if skip_unless_ftpgate("feat_tls") {
        return;
    }
    let pki = Pki::new();
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, &pki.client_tls_conf("optional"));
    let r = ftps_commands(proxy.port, &pki.ca_cert, false, &["FEAT"]);
    for f in ["AUTH TLS", "PBSZ", "PROT"] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with("line 1 ") && l.contains(f)),
            "FEAT lacks {f}: {}\n{}",
            r.describe(),
            proxy.output()
        );
    }
    // AUTH SSL is accepted too, and after it the session works.
    let r = ftps_commands(
        proxy.port,
        &pki.ca_cert,
        false,
        &[
            "AUTH SSL",
            "USER test",
            "PASS secret",
            "PBSZ 0",
            "PROT P",
            "PWD",
        ],
    );
    assert_eq!(
        codes(&r),
        [220, 234, 331, 230, 200, 200, 257],
        "{}\n{}",
        r.describe(),
        proxy.output()
    );
}

#[test]
fn feat_lists_no_auth_and_auth_is_refused_with_client_tls_off() {
    let pki = Pki::new();
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, "ClientTLS off\n");
    let r = ftps_commands(
        proxy.port,
        &pki.ca_cert,
        false,
        &["FEAT", "AUTH TLS", "USER test", "PASS secret"],
    );
    assert!(
        !r.stdout
            .lines()
            .any(|l| l.starts_with("line 1 ") && l.contains("AUTH")),
        "FEAT offers AUTH: {}",
        r.describe()
    );
    let c = codes(&r);
    assert_eq!(c.len(), 5, "{}\n{}", r.describe(), proxy.output());
    assert_eq!(
        c[2] / 100,
        5,
        "AUTH TLS not refused with 5xx: {}",
        r.describe()
    );
    assert_eq!(
        c[4],
        230,
        "plain login after the refused AUTH: {}",
        r.describe()
    );
}

#[test]
fn ccc_is_refused() {
    if skip_unless_ftpgate("ccc_is_refused") {
        return;
    }
    let pki = Pki::new();
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, &pki.client_tls_conf("optional"));
    let r = ftps_commands(
        proxy.port,
        &pki.ca_cert,
        false,
        &["AUTH TLS", "USER test", "PASS secret", "CCC", "NOOP"],
    );
    let c = codes(&r);
    assert_eq!(c.len(), 6, "{}\n{}", r.describe(), proxy.output());
    assert_eq!(&c[..4], [220, 234, 331, 230], "{}", r.describe());
    assert_eq!(c[4] / 100, 5, "CCC not refused: {}", r.describe());
    assert_eq!(c[5], 200, "session did not go on in TLS: {}", r.describe());
}

#[test]
fn client_tls_required_refuses_user_before_auth_and_data_without_prot_p() {
    if skip_unless_ftpgate("client_tls_required") {
        return;
    }
    let pki = Pki::new();
    let server = FtpServer::pyftpdlib();
    server.put("x.txt", b"x\n");
    let proxy = Proxy::start(server.port, &pki.client_tls_conf("required"));
    let r = ftps_commands(proxy.port, &pki.ca_cert, false, &["USER test"]);
    let c = codes(&r);
    assert_eq!(
        c.get(1).map(|c| c / 10),
        Some(53),
        "USER before AUTH: {}\n{}",
        r.describe(),
        proxy.output()
    );
    let r = ftps_commands(
        proxy.port,
        &pki.ca_cert,
        false,
        &[
            "AUTH TLS",
            "USER test",
            "PASS secret",
            "PBSZ 0",
            "PROT C",
            "PASV",
            "RETR x.txt",
        ],
    );
    let c = codes(&r);
    assert!(c.len() == 8, "{}\n{}", r.describe(), proxy.output());
    assert_eq!(
        &c[..6],
        [220, 234, 331, 230, 200, 200],
        "{}\n{}",
        r.describe(),
        proxy.output()
    );
    assert_eq!(
        c.get(7).map(|c| c / 10),
        Some(52),
        "RETR with PROT C: {}\n{}",
        r.describe(),
        proxy.output()
    );
}

fn check(conf_body: &str) -> (Ran, std::path::PathBuf, TempDir) {
    let dir = TempDir::new("ftps-conf");
    let conf = dir.join("ftpgate.conf");
    fs::write(&conf, conf_body).unwrap();
    let mut cmd = Command::new(proxy_bin());
    cmd.arg("-c").arg("-f").arg(&conf);
    (run_bounded(cmd, 30), conf, dir)
}

#[test]
fn check_of_a_missing_certificate_file_names_file_and_line() {
    if skip_unless_ftpgate("check_missing_certificate") {
        return;
    }
    let pki = Pki::new();
    let body = format!(
        "DestinationAddress 127.0.0.1\nClientTLS optional\nTLSCertificateFile {}/missing.pem\nTLSKeyFile {}\n",
        pki.dir.display(),
        pki.key.display()
    );
    // With the file there, the same configuration passes -c.
    let (r, _conf, _d) = check(&body.replace(
        &format!("{}/missing.pem", pki.dir.display()),
        pki.cert.to_str().unwrap(),
    ));
    assert!(r.ok(), "-c with the certificate present: {}", r.describe());
    let (r, conf, _d) = check(&body);
    assert!(r.status.is_some(), "-c hung");
    assert!(
        !r.ok(),
        "-c accepted a missing certificate: {}",
        r.describe()
    );
    let where_ = format!("{}:3", conf.display());
    assert!(
        r.stdout.contains(&where_) || r.stderr.contains(&where_),
        "error does not name {where_}: {}",
        r.describe()
    );
}

/// A key that is not the certificate's (here the CA's) would make every
/// session end with 421: `-c` and the load refuse it at TLSKeyFile's line,
/// also when only a client class turns ClientTLS on.
#[test]
fn check_of_a_key_that_does_not_match_the_certificate_names_file_and_line() {
    if skip_unless_ftpgate("check_key_mismatch") {
        return;
    }
    let pki = Pki::new();
    for (tls, class) in [
        ("ClientTLS optional\n", ""),
        (
            "",
            "ClientClass lan 127.0.0.0/8\n[-Class-lan-]\nClientTLS required\n",
        ),
    ] {
        let body = format!(
            "DestinationAddress 127.0.0.1\n{tls}TLSCertificateFile {}\nTLSKeyFile {}\n{class}",
            pki.cert.display(),
            pki.key.display()
        );
        let (r, _conf, _d) = check(&body);
        assert!(r.ok(), "-c with the right key: {}", r.describe());
        let (r, conf, _d) =
            check(&body.replace(pki.key.to_str().unwrap(), pki.ca_key.to_str().unwrap()));
        assert!(!r.ok(), "-c accepted the wrong key: {}", r.describe());
        let line = if tls.is_empty() { 3 } else { 4 };
        let where_ = format!("{}:{line}", conf.display());
        let out = format!("{}{}", r.stdout, r.stderr);
        assert!(
            out.contains(&where_) && out.contains("not the key"),
            "error does not name {where_}: {}",
            r.describe()
        );
    }
}

#[test]
fn check_prints_the_tls_options() {
    if skip_unless_ftpgate("check_prints_tls") {
        return;
    }
    let pki = Pki::new();
    let body = format!(
        "DestinationAddress 127.0.0.1\n{}ClientTLSRequireReuse no\n{}ServerTLSVerify yes\nServerTLSProtection client\n",
        pki.client_tls_conf("optional"),
        pki.server_tls_conf("required")
    );
    let (r, _conf, _d) = check(&body);
    assert!(r.ok(), "-c: {}", r.describe());
    let out = format!("{}{}", r.stdout, r.stderr).to_ascii_lowercase();
    for opt in [
        "clienttls",
        "tlscertificatefile",
        "tlskeyfile",
        "clienttlsrequirereuse",
        "servertls",
        "servertlsverify",
        "servertlscafile",
        "servertlsname",
        "servertlsprotection",
        "localhost",
    ] {
        assert!(
            out.contains(opt),
            "-c does not print {opt}: {}",
            r.describe()
        );
    }
}

/// A TLS upload whose data connection ends without close_notify: the
/// client sends part of a file and closes the TCP connection (a crash, or
/// a FIN injected on the untrusted leg). Arguments: HOST PORT USER PASS
/// DIR CAFILE VERSION; prints the final reply to STOR.
const CUT_UPLOAD: &str = r#"
import ftplib, socket, ssl, sys
host, port, user, password, sub, cafile, version = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=cafile)
v = ssl.TLSVersion.TLSv1_3 if version == '1.3' else ssl.TLSVersion.TLSv1_2
ctx.minimum_version = v
ctx.maximum_version = v
f = ftplib.FTP_TLS(context=ctx, timeout=20)
f.connect(host, int(port))
f.auth()
f.login(user, password)
if sub:
    f.cwd(sub)
f.prot_p()
f.voidcmd('TYPE I')
conn, _ = ftplib.FTP.ntransfercmd(f, 'STOR cut.bin')
conn = ctx.wrap_socket(conn, server_hostname=host, session=f.sock.session)
conn.sendall(b'A' * 100000)
raw = socket.socket(fileno=conn.detach())
raw.shutdown(socket.SHUT_RDWR)
raw.close()
try:
    print('final', f.getresp())
except ftplib.all_errors as e:
    print('final', e)
"#;

/// The client's final reply to the cut STOR, which must be there and not
/// a 2xx.
fn assert_cut_upload_not_complete(r: &Ran, context: &str) {
    let last = r
        .stdout
        .lines()
        .find(|l| l.starts_with("final "))
        .unwrap_or("");
    assert!(
        !last.is_empty() && !last.starts_with("final 2"),
        "{}\n{context}",
        r.describe()
    );
}

fn cut_upload(proxy: &Proxy, server: &FtpServer, pki: &Pki, version: &str) -> Ran {
    python_script(
        CUT_UPLOAD,
        &[
            "127.0.0.1",
            &proxy.port.to_string(),
            server.user(),
            server.pass(),
            server.sub,
            pki.ca_cert.to_str().unwrap(),
            version,
        ],
    )
}

/// SPEC 10 (no upload is ever truncated) and RFC 4217 section 7: a client
/// data connection that ends without close_notify is a cut transfer. The
/// server's side is reset, not closed with close_notify, so vsftpd fails
/// the upload too, and the client never gets a 2xx for it.
#[test]
fn a_tls_upload_cut_without_close_notify_is_never_passed_on_as_complete() {
    if skip_unless_ftpgate("a_tls_upload_cut_without_close_notify") {
        return;
    }
    let pki = Pki::new();
    for version in ["1.3", "1.2"] {
        let server = FtpServer::vsftpd_tls(&pki, TlsServerOpts::default());
        let extra = format!(
            "{}{}",
            pki.client_tls_conf("required"),
            pki.server_tls_conf("required")
        );
        let proxy = Proxy::start(server.port, &extra);
        let r = cut_upload(&proxy, &server, &pki, version);
        let context = format!("TLS {version}: {}\n{}", proxy.output(), server.server_log());
        assert_cut_upload_not_complete(&r, &context);
        let log = proxy.log_text();
        assert!(log.contains("close_notify"), "TLS {version}: {log}");
        let vsftpd = server.server_log();
        assert!(
            !vsftpd.contains("OK UPLOAD"),
            "TLS {version}: the server took the cut file for whole: {vsftpd}"
        );
    }
    // A plain server behind a TLS client leg: reset, never a clean end.
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, &pki.client_tls_conf("required"));
    let r = cut_upload(&proxy, &server, &pki, "1.3");
    assert_cut_upload_not_complete(&r, &format!("plain server: {}", proxy.output()));
}

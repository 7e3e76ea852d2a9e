//! RFC 2428 (EPSV, EPRT, EPSV ALL) and IPv6 on each side independently,
//! with every DestinationTransferMode against every client data command.
//!
//! The matrix runs a Python ftplib session that uses PASV, EPSV, PORT and
//! EPRT explicitly (STOR then RETR, compared byte for byte) through the
//! proxy to real servers: vsftpd and pyftpdlib on 127.0.0.1, pyftpdlib on
//! [::1]; the IPv6 client side is socat listening on [::1].

mod common;

use common::*;

const MODES_V4: &str = "PASV,EPSV,PORT,EPRT";
const MODES_V6: &str = "EPSV,EPRT";
const SIZE: usize = 300_000;

fn body(dest: &str, port: u16, extra: &str) -> String {
    format!("DestinationAddress {dest}\nDestinationPort {port}\nLogDestination {{LOG}}\n{extra}\n")
}

fn check(ran: &Ran, modes: &str, what: &str, proxy: &Proxy) {
    assert!(ran.ok(), "{what}: {}\n{}", ran.describe(), proxy.output());
    for m in modes.split(',') {
        assert!(
            ran.stdout.contains(&format!("ok {m}")),
            "{what}: mode {m} missing\n{}",
            ran.describe()
        );
    }
}

#[test]
fn every_transfer_mode_works_with_every_client_command_v4_to_v4() {
    if skip_unless_ftpgate("every_transfer_mode_works_with_every_client_command_v4_to_v4") {
        return;
    }
    for kind in [ServerKind::Vsftpd, ServerKind::Pyftpdlib] {
        let server = FtpServer::start(kind);
        for mode in ["client", "active", "passive"] {
            let proxy = Proxy::start_template(&body(
                "127.0.0.1",
                server.port,
                &format!("DestinationTransferMode {mode}"),
            ));
            let ran = ftplib_modes("127.0.0.1", proxy.port, &server, SIZE, MODES_V4);
            check(&ran, MODES_V4, &format!("{kind:?} {mode}"), &proxy);
        }
    }
}

#[test]
fn ipv6_client_reaches_ipv4_server_in_every_transfer_mode() {
    if skip_unless_ftpgate("ipv6_client_reaches_ipv4_server_in_every_transfer_mode") {
        return;
    }
    let server = FtpServer::vsftpd();
    for mode in ["client", "active", "passive"] {
        let proxy = Proxy::start_v6(&body(
            "127.0.0.1",
            server.port,
            &format!("DestinationTransferMode {mode}"),
        ));
        let ran = ftplib_modes("::1", proxy.port, &server, SIZE, MODES_V6);
        check(&ran, MODES_V6, &format!("v6 client, {mode}"), &proxy);
    }
}

#[test]
fn ipv4_client_reaches_ipv6_server_in_every_transfer_mode() {
    if skip_unless_ftpgate("ipv4_client_reaches_ipv6_server_in_every_transfer_mode") {
        return;
    }
    let server = pyftpdlib_v6();
    for mode in ["client", "active", "passive"] {
        let proxy = Proxy::start_template(&body(
            "::1",
            server.port,
            &format!("DestinationTransferMode {mode}"),
        ));
        let ran = ftplib_modes("127.0.0.1", proxy.port, &server, SIZE, MODES_V4);
        check(&ran, MODES_V4, &format!("v6 server, {mode}"), &proxy);
    }
}

#[test]
fn ipv6_on_both_sides_works() {
    if skip_unless_ftpgate("ipv6_on_both_sides_works") {
        return;
    }
    let server = pyftpdlib_v6();
    for mode in ["client", "active", "passive"] {
        let proxy = Proxy::start_v6(&body(
            "::1",
            server.port,
            &format!("DestinationTransferMode {mode}"),
        ));
        let ran = ftplib_modes("::1", proxy.port, &server, SIZE, MODES_V6);
        check(&ran, MODES_V6, &format!("v6 both, {mode}"), &proxy);
    }
}

#[test]
fn curl_uses_epsv_and_eprt_by_default() {
    let server = FtpServer::pyftpdlib();
    let data = random_bytes(700_000, 31);
    server.put("down.bin", &data);
    let proxy = Proxy::start(server.port, "");
    let dir = TempDir::new("curl-ext");
    let out = dir.join("down.bin");
    let url = proxy.url(server.user(), server.pass());
    // EPSV (curl's default for passive).
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-s", "-S", "--max-time", "100", "-o"])
        .arg(&out)
        .arg(format!("{url}/down.bin"));
    let ran = run_bounded(cmd, CLIENT_SECS);
    assert!(
        ran.ok(),
        "EPSV download: {}\n{}",
        ran.describe(),
        proxy.output()
    );
    assert_same_bytes("EPSV download", &std::fs::read(&out).unwrap(), &data);
    // EPRT (curl's default for active).
    let up = dir.join("up.bin");
    std::fs::write(&up, &data).unwrap();
    let mut cmd = std::process::Command::new("curl");
    cmd.args([
        "-s",
        "-S",
        "--max-time",
        "100",
        "--ftp-port",
        "127.0.0.1",
        "-T",
    ])
    .arg(&up)
    .arg(format!("{url}/up.bin"));
    let ran = run_bounded(cmd, CLIENT_SECS);
    assert!(
        ran.ok(),
        "EPRT upload: {}\n{}",
        ran.describe(),
        proxy.output()
    );
    assert_same_bytes(
        "EPRT upload",
        &wait_for_file(&server.file("up.bin"), data.len()),
        &data,
    );
    if !testing_ftp_proxy() {
        let log = proxy.log_text();
        assert!(log.contains("EPSV"), "EPSV not logged:\n{log}");
        assert!(log.contains("EPRT"), "EPRT not logged:\n{log}");
    }
}

#[test]
fn curl_over_ipv6_client_side_downloads_with_epsv() {
    if skip_unless_ftpgate("curl_over_ipv6_client_side_downloads_with_epsv") {
        return;
    }
    let server = FtpServer::vsftpd();
    let data = random_bytes(500_000, 32);
    server.put("v6.bin", &data);
    let proxy = Proxy::start_v6(&body("127.0.0.1", server.port, ""));
    let dir = TempDir::new("curl6");
    let out = dir.join("v6.bin");
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-g", "-s", "-S", "--max-time", "100", "-o"])
        .arg(&out)
        .arg(format!(
            "ftp://{}:{}@[::1]:{}/{}v6.bin",
            server.user(),
            url_escape(server.pass()),
            proxy.port,
            server.sub
        ));
    let ran = run_bounded(cmd, CLIENT_SECS);
    assert!(ran.ok(), "{}\n{}", ran.describe(), proxy.output());
    assert_same_bytes("v6 download", &std::fs::read(&out).unwrap(), &data);
}

#[test]
fn epsv_all_refuses_other_data_commands_and_epsv_still_works() {
    if skip_unless_ftpgate("epsv_all_refuses_other_data_commands_and_epsv_still_works") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, "");
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    assert_eq!(c.cmd("EPSV ALL").code, 200);
    for refused in ["PASV", "PORT 127,0,0,1,200,1", "EPRT |1|127.0.0.1|51201|"] {
        let r = c.cmd(refused);
        assert_eq!(r.code, 503, "{refused} after EPSV ALL: {r:?}");
    }
    let r = c.cmd("EPSV");
    assert_eq!(r.code, 229, "{r:?}");
    let r = c.cmd("NOOP");
    assert_eq!(r.code, 200, "{r:?}");
}

#[test]
fn family_mismatches_are_refused_with_522() {
    if skip_unless_ftpgate("family_mismatches_are_refused_with_522") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, "");
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    for (cmd, code) in [
        ("EPSV 2", 522),
        ("EPSV 3", 522),
        ("EPRT |2|::1|50000|", 522),
        ("EPRT |3|x|50000|", 522),
        ("EPRT |1|127.0.0.1|0|", 501),
        ("EPRT garbage", 501),
    ] {
        let r = c.cmd(cmd);
        assert_eq!(r.code, code, "{cmd}: {r:?}");
        // RFC 2428: 522 lists what the client may use, and an IPv4
        // control connection carries IPv4 data connections only.
        if code == 522 {
            assert!(r.text().ends_with("use (1)."), "{cmd}: {r:?}");
        }
    }
    let r = c.cmd("EPSV 1");
    assert_eq!(r.code, 229, "{r:?}");
}

#[test]
fn ipv6_client_gets_a_refusal_for_pasv_and_port() {
    if skip_unless_ftpgate("ipv6_client_gets_a_refusal_for_pasv_and_port") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start_v6(&body("127.0.0.1", server.port, ""));
    let script = r#"
import ftplib, sys
ftp = ftplib.FTP(timeout=20)
ftp.connect('::1', int(sys.argv[1]))
ftp.login('test', 'secret')
for cmd in ['PASV', 'PORT 127,0,0,1,200,1', 'EPRT |1|127.0.0.1|51201|', 'EPSV 1']:
    try:
        r = ftp.sendcmd(cmd)
    except ftplib.Error as e:
        r = str(e)
    print(cmd.split()[0], r[:3], flush=True)
print('EPSV2', ftp.sendcmd('EPSV 2')[:3])
ftp.quit()
"#;
    let ran = python_script(script, &[&proxy.port.to_string()]);
    assert!(ran.ok(), "{}\n{}", ran.describe(), proxy.output());
    let out = &ran.stdout;
    assert!(out.contains("EPSV2 229"), "{out}");
    for line in out.lines().filter(|l| !l.starts_with("EPSV2")) {
        let code = &line[line.len() - 3..];
        assert!(
            code.starts_with('5') || code.starts_with('4'),
            "{line}: not refused\n{out}"
        );
    }
}

#[test]
fn translated_address_is_not_offered_to_an_ipv6_client() {
    if skip_unless_ftpgate("translated_address_is_not_offered_to_an_ipv6_client") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    // The passive listener is bound to [::1]: an IPv4 address in a 227
    // would send the client where nothing listens.
    let proxy = Proxy::start_v6(&body(
        "127.0.0.1",
        server.port,
        "TranslatedAddress 127.0.0.1",
    ));
    let script = r#"
import ftplib, sys
ftp = ftplib.FTP(timeout=20)
ftp.connect('::1', int(sys.argv[1]))
ftp.login('test', 'secret')
try:
    r = ftp.sendcmd('PASV')
except ftplib.Error as e:
    r = str(e)
print('PASV', r[:3], flush=True)
print('EPSV', ftp.sendcmd('EPSV')[:3], flush=True)
ftp.quit()
"#;
    let ran = python_script(script, &[&proxy.port.to_string()]);
    assert!(ran.ok(), "{}\n{}", ran.describe(), proxy.output());
    assert!(ran.stdout.contains("PASV 425"), "{}", ran.stdout);
    assert!(ran.stdout.contains("EPSV 229"), "{}", ran.stdout);
}

#[test]
fn a_bare_ipv6_address_in_allowed_destinations_admits_a_magic_user() {
    if skip_unless_ftpgate("a_bare_ipv6_address_in_allowed_destinations_admits_a_magic_user") {
        return;
    }
    let server = pyftpdlib_v6();
    // `::1` starts with ':' like a ports-alone entry (`:21`), but is an address.
    let proxy = Proxy::start(dead_port(), "AllowMagicUser yes\nAllowedDestinations ::1");
    let login = format!("{}@[::1]:{}", server.user(), server.port);
    let mut c = Ctrl::login(proxy.port, &login, server.pass());
    assert_eq!(c.cmd("PWD").code, 257, "{}", proxy.output());
    c.cmd("QUIT");
}

#[test]
fn an_ipv6_eprt_must_name_the_clients_address_and_an_unprivileged_port() {
    if skip_unless_ftpgate("an_ipv6_eprt_must_name_the_clients_address_and_an_unprivileged_port") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start_v6(&body("127.0.0.1", server.port, ""));
    let script = r#"
import ftplib, sys
ftp = ftplib.FTP(timeout=20)
ftp.connect('::1', int(sys.argv[1]))
ftp.login('test', 'secret')
for cmd in ['EPRT |2|::2|50000|', 'EPRT |2|::1|21|', 'EPRT |2|::1|50000|']:
    try:
        r = ftp.sendcmd(cmd)
    except ftplib.Error as e:
        r = str(e)
    print(cmd, r[:3], flush=True)
ftp.quit()
"#;
    let ran = python_script(script, &[&proxy.port.to_string()]);
    assert!(ran.ok(), "{}\n{}", ran.describe(), proxy.output());
    let out = &ran.stdout;
    assert!(out.contains("EPRT |2|::2|50000| 504"), "{out}");
    assert!(out.contains("EPRT |2|::1|21| 504"), "{out}");
    assert!(out.contains("EPRT |2|::1|50000| 200"), "{out}");
    let log = proxy.log_text();
    assert!(
        log.contains("EPRT [::2]:50000 refused: address is not the peer's own address"),
        "{log}"
    );
}

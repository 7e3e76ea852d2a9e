//! The command filter (ValidCommands) seen from a real client.

mod common;

use common::*;
use std::fs;

/// What curl needs for downloads and listings, without STOR and DELE.
/// Space separated, as ftp-proxy(5) documents.
const READ_ONLY: &str =
    "USER PASS PWD CWD TYPE PASV PORT SIZE MDTM REST RETR LIST NLST QUIT NOOP SYST FEAT";

fn refused(code: u16) -> bool {
    (500..600).contains(&code)
}

#[test]
fn refused_stor_leaves_no_file_on_the_server() {
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, &format!("ValidCommands {READ_ONLY}"));
    let tmp = TempDir::new("filter");
    let local = tmp.join("up.bin");
    fs::write(&local, random_bytes(100_000, 5)).unwrap();

    let r = curl(
        ClientMode::Passive,
        &[
            "-T",
            local.to_str().unwrap(),
            &format!("{}/up.bin", proxy.url("test", "secret")),
        ],
    );
    assert!(
        !r.ok(),
        "upload succeeded although STOR is not allowed: {}",
        r.describe()
    );

    let mut c = Ctrl::login(proxy.port, "test", "secret");
    let s = c.cmd("STOR raw.bin");
    assert!(
        refused(s.code),
        "STOR not refused: {s:?}\n{}",
        proxy.output()
    );
    assert_eq!(
        c.cmd("NOOP").code,
        200,
        "session out of step after a refusal"
    );
    assert_eq!(c.cmd("QUIT").code, 221);

    assert!(
        !server.file("up.bin").exists(),
        "curl's upload reached the server"
    );
    assert!(
        !server.file("raw.bin").exists(),
        "raw STOR reached the server"
    );
}

#[test]
fn refused_command_is_logged() {
    let server = FtpServer::pyftpdlib();
    server.put("keep.txt", b"keep\n");
    let proxy = Proxy::start(server.port, &format!("ValidCommands {READ_ONLY}"));
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    let r = c.cmd("DELE keep.txt");
    assert!(refused(r.code), "DELE not refused: {r:?}");
    assert_eq!(c.cmd("QUIT").code, 221);
    assert!(
        wait_until(10, || proxy.log_text().contains("DELE")),
        "refused DELE not logged:\n{}",
        proxy.log_text()
    );
    assert!(server.file("keep.txt").exists());
}

#[test]
fn regex_argument_pattern_allows_a_matching_name_and_refuses_another() {
    let server = FtpServer::pyftpdlib();
    server.put("a.txt", b"text file\n");
    server.put("b.bin", b"binary file\n");
    let proxy = Proxy::start(
        server.port,
        r"ValidCommands USER PASS PWD CWD TYPE PASV PORT SIZE MDTM REST QUIT NOOP RETR=^[a-z]+\.txt$",
    );
    let url = proxy.url("test", "secret");
    let ok = curl(ClientMode::Passive, &[&format!("{url}/a.txt")]);
    assert!(
        ok.ok(),
        "a.txt refused: {}\n{}",
        ok.describe(),
        proxy.output()
    );
    assert_eq!(ok.stdout, "text file\n");

    let no = curl(ClientMode::Passive, &[&format!("{url}/b.bin")]);
    assert!(!no.ok(), "b.bin allowed: {}", no.describe());
    assert!(!no.stdout.contains("binary file"));

    let mut c = Ctrl::login(proxy.port, "test", "secret");
    let r = c.cmd("RETR b.bin");
    assert!(refused(r.code), "RETR b.bin not refused: {r:?}");
    let r = c.cmd("RETR ../a.txt");
    assert!(refused(r.code), "RETR ../a.txt not refused: {r:?}");
}

#[test]
fn commas_and_spaces_both_separate_valid_commands() {
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, "ValidCommands USER,PASS, NOOP ,QUIT SYST");
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    assert_eq!(c.cmd("NOOP").code, 200);
    assert_eq!(c.cmd("SYST").code, 215);
    assert!(refused(c.cmd("PWD").code), "PWD allowed");
    assert_eq!(c.cmd("QUIT").code, 221);
}

#[test]
fn lowercase_verbs_are_filtered_like_uppercase() {
    let server = FtpServer::pyftpdlib();
    server.put("keep.txt", b"keep\n");
    let proxy = Proxy::start(server.port, &format!("ValidCommands {READ_ONLY}"));
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    assert_eq!(c.cmd("noop").code, 200, "allowed lowercase verb refused");
    assert_eq!(c.cmd("Noop").code, 200, "allowed mixed-case verb refused");
    for line in [
        "dele keep.txt",
        "Dele keep.txt",
        "DELE keep.txt",
        "stor x.bin",
        "mkd newdir",
    ] {
        let r = c.cmd(line);
        assert!(
            refused(r.code),
            "{line:?} not refused: {r:?}\n{}",
            proxy.output()
        );
    }
    assert_eq!(c.cmd("pwd").code, 257);
    assert_eq!(c.cmd("quit").code, 221);
    assert!(
        server.file("keep.txt").exists(),
        "lowercase DELE reached the server"
    );
    assert!(
        !server.file("newdir").exists(),
        "lowercase MKD reached the server"
    );
}

#[test]
fn pipelined_forbidden_command_is_refused_and_its_neighbours_answered() {
    if skip_known_ftp_proxy_difference(
        "pipelined_forbidden_command_is_refused_and_its_neighbours_answered",
        "ftp-proxy sends its 502 for DELE before the server's 200 for the NOOP in front of it",
    ) {
        return;
    }
    let server = FtpServer::pyftpdlib();
    server.put("x", b"still here\n");
    let proxy = Proxy::start(server.port, &format!("ValidCommands {READ_ONLY}"));
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    c.send_raw(b"NOOP\r\nDELE x\r\nNOOP\r\n");
    let a = c.reply();
    let b = c.reply();
    let d = c.reply();
    assert_eq!(a.code, 200, "first NOOP: {a:?}");
    assert!(
        refused(b.code),
        "pipelined DELE not refused: {b:?}\n{}",
        proxy.output()
    );
    assert_eq!(d.code, 200, "second NOOP: {d:?}");
    assert_eq!(c.cmd("QUIT").code, 221);
    assert_eq!(fs::read(server.file("x")).unwrap(), b"still here\n");
}

#[test]
fn without_valid_commands_everything_reaches_the_server() {
    let server = FtpServer::pyftpdlib();
    server.put("gone.txt", b"bye\n");
    let proxy = Proxy::start(server.port, "");
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    assert_eq!(c.cmd("MKD made").code, 257);
    assert_eq!(c.cmd("DELE gone.txt").code, 250);
    assert_eq!(c.cmd("QUIT").code, 221);
    assert!(server.file("made").is_dir());
    assert!(!server.file("gone.txt").exists());
}

#[test]
fn user_context_valid_commands_override_the_global_ones() {
    let server = FtpServer::pyftpdlib();
    server.put("keep.txt", b"keep\n");
    // Global: anything. User "test": read-only.
    let proxy = Proxy::start(server.port, &format!("[test]\nValidCommands {READ_ONLY}"));
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    let r = c.cmd("DELE keep.txt");
    assert!(
        refused(r.code),
        "DELE allowed for user test: {r:?}\n{}",
        proxy.output()
    );
    assert_eq!(c.cmd("QUIT").code, 221);
    assert!(server.file("keep.txt").exists());
}

/// A ValidCommands list without USER and QUIT still lets a session log in
/// and end (ftp-proxy never refuses them); PASS is filtered like any other
/// command, and what the list omits is still refused.
#[test]
fn user_and_quit_pass_even_when_valid_commands_omits_them() {
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, "ValidCommands PASS PWD");
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    assert_eq!(c.cmd("PWD").code, 257);
    assert!(refused(c.cmd("SYST").code), "SYST allowed");
    assert_eq!(c.cmd("QUIT").code, 221, "{}", proxy.output());
}

/// ABOR during a transfer is a command like any other: when ValidCommands
/// does not list it, it never reaches the server and the transfer goes on;
/// its refusal comes after the transfer's reply.
#[test]
fn abor_refused_by_valid_commands_does_not_stop_a_transfer() {
    use std::io::Read;
    if skip_unless_ftpgate("abor_refused_by_valid_commands_does_not_stop_a_transfer") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let data = random_bytes(8 << 20, 11);
    server.put("big.bin", &data);
    let proxy = Proxy::start(server.port, &format!("ValidCommands {READ_ONLY}"));
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    assert_eq!(c.cmd("TYPE I").code, 200);
    let r = c.cmd("PASV");
    assert_eq!(r.code, 227, "{r:?}");
    let t = r.text();
    let nums: Vec<u16> = t[t.find('(').unwrap() + 1..t.find(')').unwrap()]
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    let mut d = std::net::TcpStream::connect(("127.0.0.1", nums[4] * 256 + nums[5])).unwrap();
    d.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    c.send_raw(b"RETR big.bin\r\n");
    let first = c.reply();
    assert!(matches!(first.code, 125 | 150), "{first:?}");
    c.send_raw(b"ABOR\r\n");
    let mut got = Vec::new();
    let _ = d.read_to_end(&mut got);
    assert_same_bytes("RETR with a refused ABOR", &got, &data);
    let (transfer, abor) = (c.reply(), c.reply());
    assert_eq!(
        (transfer.code, abor.code),
        (226, 502),
        "{transfer:?} {abor:?}\n{}",
        proxy.output()
    );
    assert!(
        proxy
            .log_text()
            .contains("command refused by ValidCommands: ABOR")
    );
}

/// SPEC 4: patterns are POSIX extended regular expressions, as ftp-proxy
/// reads them: inside brackets a backslash is a member, not the start of
/// `\w` or `\d`. A filter copied from ftp-proxy refuses what it refused
/// there (ftp-proxy passes this test too).
#[test]
fn a_backslash_in_a_bracket_expression_is_a_member_as_in_posix() {
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(
        server.port,
        r"ValidCommands USER PASS QUIT PWD CWD=^[\w/]+$ MKD=^[a\d]+$",
    );
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    let r = c.cmd("CWD pub");
    assert!(refused(r.code), "CWD pub: {r:?}");
    let r = c.cmd("MKD 5");
    assert!(refused(r.code), "MKD 5: {r:?}");
    let r = c.cmd("MKD d");
    assert_eq!(r.code, 257, "MKD d: {r:?}");
    c.cmd("QUIT");
    assert!(
        server.file("d").is_dir() && !server.file("5").exists(),
        "what reached the server"
    );
}

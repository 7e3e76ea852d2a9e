//! Session behaviour through the proxy: greeting, deny message, magic user,
//! unreachable server, TimeOut, multi-line replies, logging.

mod common;

use common::*;
use std::fs;

#[test]
fn unreachable_destination_answers_421_to_user_and_the_session_ends() {
    if skip_known_ftp_proxy_difference(
        "unreachable_destination_answers_421_to_user_and_the_session_ends",
        "ftp-proxy closes the connection without any reply",
    ) {
        return;
    }
    let proxy = Proxy::start(dead_port(), "");
    let mut c = Ctrl::connect(proxy.port);
    let g = c.reply();
    assert_eq!(g.code, 220, "greeting: {g:?}");
    c.send_raw(b"USER test\r\n");
    let got = c
        .replies_until_eof(15)
        .unwrap_or_else(|| panic!("connection still open 15s after USER\n{}", proxy.output()));
    assert!(
        got.iter().any(|r| r.code == 421),
        "no 421 before close: {got:?}\n{}",
        proxy.output()
    );
    assert!(
        wait_until(10, || proxy.sessions().is_empty()),
        "proxy session process still alive: {:?}",
        proxy.sessions()
    );
}

fn idle_session_is_closed_with_421(login: bool) {
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, "TimeOut 2");
    let mut c = if login {
        Ctrl::login(proxy.port, server.user(), server.pass())
    } else {
        let mut c = Ctrl::connect(proxy.port);
        assert_eq!(c.reply().code, 220);
        c
    };
    // Idle: say nothing, wait (bounded) for the proxy to give up.
    let got = c.replies_until_eof(30).unwrap_or_else(|| {
        panic!(
            "idle session still open after 30s with TimeOut 2\n{}",
            proxy.output()
        )
    });
    assert!(
        got.iter().any(|r| r.code == 421),
        "closed without a 421 reply: {got:?}\n{}",
        proxy.output()
    );
    assert!(
        wait_until(10, || proxy.sessions().is_empty()),
        "proxy session process still alive after timeout"
    );
}

#[test]
fn idle_session_after_login_gets_421_and_is_closed_after_timeout() {
    if skip_known_ftp_proxy_difference(
        "idle_session_after_login_gets_421_and_is_closed_after_timeout",
        "ftp-proxy closes an idle session without a 421",
    ) {
        return;
    }
    idle_session_is_closed_with_421(true);
}

#[test]
fn idle_session_before_login_gets_421_and_is_closed_after_timeout() {
    if skip_known_ftp_proxy_difference(
        "idle_session_before_login_gets_421_and_is_closed_after_timeout",
        "ftp-proxy closes an idle session without a 421",
    ) {
        return;
    }
    idle_session_is_closed_with_421(false);
}

/// The multi-line HELP reply must reach the client exactly as the server
/// sent it (same code, same lines, same order).
fn multi_line_reply_is_relayed_intact(kind: ServerKind) {
    let server = FtpServer::start(kind);
    let proxy = Proxy::start(server.port, "");
    let mut direct = Ctrl::login(server.port, server.user(), server.pass());
    let want = direct.cmd("HELP");
    assert!(
        want.lines.len() > 2,
        "server's HELP is not multi-line: {want:?}"
    );
    let mut via = Ctrl::login(proxy.port, server.user(), server.pass());
    let got = via.cmd("HELP");
    assert_eq!(
        got, want,
        "HELP through the proxy differs from the server's"
    );
    // The session is still in step afterwards.
    assert_eq!(via.cmd("NOOP").code, 200);
    assert_eq!(via.cmd("QUIT").code, 221);
}

#[test]
fn multi_line_help_reply_from_pyftpdlib_is_relayed_intact() {
    multi_line_reply_is_relayed_intact(ServerKind::Pyftpdlib);
}

#[test]
fn multi_line_help_reply_from_vsftpd_is_relayed_intact() {
    multi_line_reply_is_relayed_intact(ServerKind::Vsftpd);
}

#[test]
fn welcome_string_substitutes_a_double_percent_with_one() {
    let proxy = Proxy::start(dead_port(), "WelcomeString Gate %% ready");
    let mut c = Ctrl::connect(proxy.port);
    let g = c.reply();
    // ftp-proxy appends a full stop to WelcomeString; ftpgate may too.
    assert!(
        g.lines == ["220 Gate % ready"] || g.lines == ["220 Gate % ready."],
        "greeting {:?}\n{}",
        g.lines,
        proxy.output()
    );
}

/// `%d` `%t` `%n` in WelcomeString: date YYYY/MM/DD, time HH:MM:SS and a
/// domain name; a host without a NIS domain (the kernel says "(none)")
/// gets a name, not "(none)" (ftp-proxy: "[unknown network]").
#[test]
fn welcome_string_substitutes_date_time_and_domain() {
    let proxy = Proxy::start(dead_port(), "WelcomeString <%d> <%t> <%n>");
    let mut c = Ctrl::connect(proxy.port);
    let g = c.reply().lines.join("\n");
    let parts: Vec<&str> = g.split(['<', '>']).collect();
    assert!(parts.len() >= 6, "greeting {g:?}");
    let shape = |s: &str, sep: u8, lens: &[usize]| {
        let f: Vec<&str> = s.split(sep as char).collect();
        f.len() == lens.len()
            && f.iter()
                .zip(lens)
                .all(|(x, &n)| x.len() == n && x.bytes().all(|b| b.is_ascii_digit()))
    };
    assert!(shape(parts[1], b'/', &[4, 2, 2]), "%d in {g:?}");
    assert!(shape(parts[3], b':', &[2, 2, 2]), "%t in {g:?}");
    assert!(!parts[5].is_empty() && parts[5] != "(none)", "%n in {g:?}");
}

#[test]
fn welcome_message_file_lines_come_as_220_continuation_lines() {
    let dir = TempDir::new("welcome");
    let msg = dir.join("welcome.txt");
    fs::write(&msg, "Authorised use only.\nSecond line.\n").unwrap();
    let proxy = Proxy::start(
        dead_port(),
        &format!("WelcomeMessage {}\nWelcomeString Hello", msg.display()),
    );
    let mut c = Ctrl::connect(proxy.port);
    let g = c.reply();
    assert_eq!(
        g.lines[..2],
        ["220-Authorised use only.", "220-Second line."],
        "{}",
        proxy.output()
    );
    // ftp-proxy appends a full stop to WelcomeString; ftpgate may too.
    assert!(
        g.lines[2..] == ["220 Hello"] || g.lines[2..] == ["220 Hello."],
        "greeting {:?}",
        g.lines
    );
}

#[test]
fn deny_message_file_present_sends_421_lines_and_closes() {
    if skip_known_ftp_proxy_difference(
        "deny_message_file_present_sends_421_lines_and_closes",
        "ftp-proxy ends the 421 line with a bare LF and sends a stray \".\\r\\n\"",
    ) {
        return;
    }
    let dir = TempDir::new("deny");
    let msg = dir.join("nologin");
    fs::write(&msg, "Down for maintenance.\nBack at noon.\n").unwrap();
    let proxy = Proxy::start(
        dead_port(),
        &format!("DenyMessage {}\nDenyString Service closed", msg.display()),
    );
    let mut c = Ctrl::connect(proxy.port);
    // drain() returns when the proxy closes (or after 15 s).
    let got = c.drain(15);
    assert_eq!(
        got,
        "421-Down for maintenance.\r\n421-Back at noon.\r\n421 Service closed\r\n",
        "{}",
        proxy.output()
    );
    assert!(
        wait_until(10, || proxy.sessions().is_empty()),
        "session still alive after the deny message"
    );
    // SPEC 8: a start line and an end line, as for every session.
    let log = proxy.log_text();
    assert!(log.contains("session start: "), "{log}");
    assert!(
        log.contains("session end: refused before relaying"),
        "{log}"
    );
}

/// A session refused before login (DenyMessage) never contacts the server,
/// not even with the early connection an address literal allows.
#[test]
fn deny_message_refusal_never_contacts_the_server() {
    if skip_unless_ftpgate("deny_message_refusal_never_contacts_the_server") {
        return;
    }
    let mut server = CountingServer::start();
    let dir = TempDir::new("deny-quiet");
    let msg = dir.join("nologin");
    fs::write(&msg, "Down for maintenance.\n").unwrap();
    let proxy = Proxy::start(
        server.port,
        &format!("DenyMessage {}\nDenyString Service closed", msg.display()),
    );
    let mut c = Ctrl::connect(proxy.port);
    let got = c.drain(15);
    assert!(got.ends_with("421 Service closed\r\n"), "{got:?}");
    assert!(
        wait_until(10, || proxy.sessions().is_empty()),
        "session still alive after the deny message"
    );
    assert_eq!(server.connections(), 0, "{}", proxy.output());
}

#[test]
fn deny_message_file_absent_lets_the_session_proceed() {
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("deny");
    let proxy = Proxy::start(
        server.port,
        &format!(
            "DenyMessage {}\nDenyString Service closed",
            dir.join("no-such-file").display()
        ),
    );
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    assert_eq!(c.cmd("QUIT").code, 221);
}

/// Log in with curl, fetch a file, return the proxy's log.
fn session_log() -> String {
    let server = FtpServer::pyftpdlib();
    server.put("a.txt", b"hello\n");
    let proxy = Proxy::start(server.port, "");
    let r = curl(
        ClientMode::Passive,
        &[&format!("{}/a.txt", proxy.url("test", "secret"))],
    );
    assert!(
        r.ok(),
        "download failed: {}\n{}",
        r.describe(),
        proxy.output()
    );
    assert_eq!(r.stdout, "hello\n");
    assert!(
        wait_until(10, || proxy.sessions().is_empty()),
        "session did not end"
    );
    proxy.log_text()
}

#[test]
fn log_file_has_a_session_start_line_with_the_client_address() {
    let log = session_log();
    let first = log.lines().find(|l| l.contains("127.0.0.1"));
    assert!(first.is_some(), "no line names the client address:\n{log}");
    assert!(
        log.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("127.0.0.1")
                && (l.contains("connect") || l.contains("session") || l.contains("start"))
        }),
        "no session start line:\n{log}"
    );
}

#[test]
fn session_start_line_names_client_and_server() {
    if skip_unless_ftpgate("session_start_line_names_client_and_server") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, "");
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    assert_eq!(c.cmd("QUIT").code, 221);
    assert!(
        wait_until(10, || proxy.sessions().is_empty()),
        "session did not end"
    );
    let log = proxy.log_text();
    let start = log
        .lines()
        .find(|l| l.contains("session start"))
        .unwrap_or_else(|| panic!("no session start line:\n{log}"));
    assert!(
        start.contains("client 127.0.0.1:")
            && start.contains(&format!("server 127.0.0.1:{}", server.port)),
        "session start line without client or server: {start}"
    );
}

/// SPEC 8: one line per transfer with command, file name, bytes each way,
/// seconds and rate; one at the end with duration, totals and reason.
#[test]
fn transfer_and_session_end_lines_carry_every_required_field() {
    if skip_unless_ftpgate("transfer_and_session_end_lines_carry_every_required_field") {
        return;
    }
    let log = session_log();
    let line = log
        .lines()
        .find(|l| l.contains("transfer: RETR"))
        .unwrap_or_else(|| panic!("no transfer line:\n{log}"));
    for field in ["a.txt", "6 bytes down", "0 bytes up", " s (", "KiB/s"] {
        assert!(
            line.contains(field),
            "transfer line without {field:?}: {line}"
        );
    }
    let end = log
        .lines()
        .find(|l| l.contains("session end"))
        .unwrap_or_else(|| panic!("no session end line:\n{log}"));
    for field in [
        "client quit",
        " s, ",
        "1 transfers",
        "6 bytes down",
        "0 bytes up",
    ] {
        assert!(
            end.contains(field),
            "session end line without {field:?}: {end}"
        );
    }
}

/// SPEC 3: every `%` code of WelcomeString is replaced (and an unknown one
/// kept as it is).
#[test]
fn welcome_string_substitutes_every_percent_code() {
    if skip_unless_ftpgate("welcome_string_substitutes_every_percent_code") {
        return;
    }
    let proxy = Proxy::start(
        dead_port(),
        "WelcomeString h=%h n=%n d=%d t=%t v=%v b=%b p=%%",
    );
    let mut c = Ctrl::connect(proxy.port);
    let g = c.reply();
    let text = &g.lines[0];
    assert_eq!(g.code, 220, "{text}");
    for code in ["%h", "%n", "%d", "%t", "%v", "%b"] {
        assert!(!text.contains(code), "{code} not substituted: {text}");
    }
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(text.contains(&format!("h={}", host.trim())), "{text}");
    assert!(text.ends_with("p=%"), "{text}");
    assert!(
        !text.contains("(none)"),
        "the kernel's 'no domain' marker: {text}"
    );
}

#[test]
fn log_file_never_contains_the_password() {
    let log = session_log();
    assert!(
        log.contains("PASS"),
        "PASS command not logged at all:\n{log}"
    );
    assert!(!log.contains("secret"), "password in the log:\n{log}");
}

#[test]
fn log_file_masks_the_password_as_four_stars() {
    if skip_unless_ftpgate("log_file_masks_the_password_as_four_stars") {
        return;
    }
    let log = session_log();
    assert!(log.contains("PASS ****"), "no 'PASS ****' line:\n{log}");
}

#[test]
fn magic_user_logs_into_the_server_named_in_user() {
    let server = FtpServer::pyftpdlib();
    server.put("magic.txt", b"via magic user\n");
    // DestinationPort leads nowhere: only the magic user can succeed.
    let proxy = Proxy::start(
        dead_port(),
        "AllowMagicUser yes\nAllowedDestinations 127.0.0.0/8",
    );
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 220);
    let u = c.cmd(&format!("USER test@127.0.0.1:{}", server.port));
    assert_eq!(u.code, 331, "USER reply: {u:?}\n{}", proxy.output());
    let p = c.cmd("PASS secret");
    assert_eq!(p.code, 230, "PASS reply: {p:?}\n{}", proxy.output());
    assert_eq!(c.cmd("QUIT").code, 221);

    let magic = format!("test@127.0.0.1:{}", server.port);
    let r = curl(
        ClientMode::Passive,
        &[&format!("{}/magic.txt", proxy.url(&magic, "secret"))],
    );
    assert!(
        r.ok(),
        "curl with magic user failed: {}\n{}",
        r.describe(),
        proxy.output()
    );
    assert_eq!(r.stdout, "via magic user\n");
}

#[test]
fn magic_user_to_loopback_is_refused_without_allowed_destinations() {
    if skip_unless_ftpgate("magic_user_to_loopback_is_refused_without_allowed_destinations") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(dead_port(), "AllowMagicUser yes");
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 220);
    c.send_raw(format!("USER test@127.0.0.1:{}\r\n", server.port).as_bytes());
    let r = match c.try_reply() {
        Ok(Some(r)) => r,
        other => panic!("no reply to a refused magic user: {other:?}"),
    };
    assert!(
        (400..600).contains(&r.code),
        "loopback destination not refused: {r:?}\n{}",
        proxy.output()
    );
}

#[test]
fn magic_user_naming_the_proxy_itself_is_refused() {
    if skip_unless_ftpgate("magic_user_naming_the_proxy_itself_is_refused") {
        return;
    }
    let proxy = Proxy::start(
        dead_port(),
        "AllowMagicUser yes\nAllowedDestinations 127.0.0.0/8",
    );
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 220);
    c.send_raw(format!("USER test@127.0.0.1:{}\r\n", proxy.port).as_bytes());
    let r = match c.try_reply() {
        Ok(Some(r)) => r,
        other => panic!("no reply to a magic user naming the proxy: {other:?}"),
    };
    assert!(
        (400..600).contains(&r.code),
        "loop to the proxy itself not refused: {r:?}\n{}",
        proxy.output()
    );
}

/// A proxy listening on 0.0.0.0 answers on every address of the host: a
/// magic user naming another of the host's addresses (here 127.0.0.2, also
/// local) at the proxy's port is the proxy itself, refused with 530 and a
/// log line, never connected to.
#[test]
fn magic_user_naming_another_own_address_at_the_proxy_port_is_refused() {
    if skip_unless_ftpgate("magic_user_naming_another_own_address_at_the_proxy_port_is_refused") {
        return;
    }
    let proxy = Proxy::start(
        dead_port(),
        "AllowMagicUser yes\nAllowedDestinations 127.0.0.0/8",
    );
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 220);
    c.send_raw(format!("USER test@127.0.0.2:{}\r\n", proxy.port).as_bytes());
    let r = match c.try_reply() {
        Ok(Some(r)) => r,
        other => panic!("no reply to a magic user naming the proxy: {other:?}"),
    };
    assert_eq!(r.code, 530, "{r:?}\n{}", proxy.output());
    assert!(r.text().contains("proxy itself"), "{r:?}");
    assert!(
        wait_until(5, || proxy
            .log_text()
            .contains("destination is the proxy itself")),
        "no log line:\n{}",
        proxy.log_text()
    );
}

/// Compatibility: the same scripted session through Debian's ftp-proxy and
/// through the binary under test gives the same reply codes.
#[test]
fn scripted_session_gets_the_same_reply_codes_as_through_ftp_proxy() {
    let reference = std::path::Path::new("/usr/sbin/ftp-proxy");
    if !reference.exists() {
        eprintln!("SKIP: /usr/sbin/ftp-proxy not installed");
        return;
    }
    let server = FtpServer::pyftpdlib();
    server.put("a.txt", b"a\n");
    let script = [
        "USER test",
        "PASS secret",
        "SYST",
        "PWD",
        "TYPE I",
        "SIZE a.txt",
        "CWD /",
        "MKD newdir",
        "RMD newdir",
        "NOOP",
        "QUIT",
    ];
    let run = |bin: &std::path::Path| -> Vec<u16> {
        let dir = TempDir::new("compat");
        let log = dir.join("log");
        let body = format!(
            "DestinationAddress 127.0.0.1\nDestinationPort {}\nLogDestination {}\n",
            server.port,
            log.display()
        );
        let proxy = Proxy::start_raw_with_bin(bin, &body);
        let mut c = Ctrl::connect(proxy.port);
        let mut codes = vec![c.reply().code];
        for line in script {
            codes.push(c.cmd(line).code);
        }
        codes
    };
    let want = run(reference);
    let got = run(&proxy_bin());
    assert_eq!(got, want, "reply codes for {script:?}");
}

#[test]
fn server_connection_is_opened_before_user_when_the_destination_is_fixed() {
    if skip_unless_ftpgate("server_connection_is_opened_before_user_when_the_destination_is_fixed")
    {
        return;
    }
    let server = FtpServer::pyftpdlib();
    // An address (connected before the greeting) and a name from
    // /etc/hosts (resolved and connected right after it).
    for host in ["127.0.0.1", "localhost"] {
        let proxy = Proxy::start_raw(&format!(
            "DestinationAddress {host}\nDestinationPort {}\n",
            server.port
        ));
        let mut c = Ctrl::connect(proxy.port);
        assert_eq!(c.reply().code, 220);
        assert!(
            wait_until(5, || connections_to(server.port) == 1),
            "no connection to the server before USER with {host}\n{}",
            proxy.output()
        );
        assert_eq!(c.cmd("USER test").code, 331);
        assert_eq!(c.cmd("PASS secret").code, 230, "{}", proxy.output());
        assert_eq!(c.cmd("PWD").code, 257);
        assert_eq!(c.cmd("QUIT").code, 221);
        drop(c);
        assert!(
            wait_until(5, || connections_to(server.port) == 0),
            "server connection left open after QUIT with {host}"
        );
    }
}

#[test]
fn no_server_connection_before_user_when_the_login_may_choose_the_server() {
    let server = FtpServer::pyftpdlib();
    for extra in [
        "AllowMagicUser yes\nAllowedDestinations 127.0.0.0/8".to_string(),
        format!("[special]\nDestinationPort {}", dead_port()),
    ] {
        let proxy = Proxy::start(server.port, &extra);
        let mut c = Ctrl::connect(proxy.port);
        assert_eq!(c.reply().code, 220);
        // The greeting went out after any early connect would have begun.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(
            connections_to(server.port),
            0,
            "server contacted before USER with {extra:?}\n{}",
            proxy.output()
        );
        assert_eq!(c.cmd("USER test").code, 331, "{}", proxy.output());
        assert_eq!(c.cmd("PASS secret").code, 230, "{}", proxy.output());
        assert_eq!(c.cmd("QUIT").code, 221);
    }
}

#[test]
fn login_works_after_the_server_dropped_the_early_connection() {
    let server = FtpServer::pyftpdlib_with_idle_timeout(Some(1));
    let proxy = Proxy::start(server.port, "LogLevel DBG");
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 220);
    // Longer than the server waits for a silent client.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let u = c.cmd("USER test");
    assert_eq!(u.code, 331, "USER reply: {u:?}\n{}", proxy.output());
    assert_eq!(c.cmd("PASS secret").code, 230, "{}", proxy.output());
    assert_eq!(c.cmd("PWD").code, 257, "{}", proxy.output());
    assert_eq!(c.cmd("QUIT").code, 221);
    if !testing_ftp_proxy() {
        let log = proxy.log_text();
        assert!(
            log.contains("early connection to server") && log.contains("connecting again"),
            "the dropped early connection was not noticed:\n{log}"
        );
    }
}

#[test]
fn a_second_user_after_a_magic_login_cannot_change_the_server() {
    if skip_unless_ftpgate("a_second_user_after_a_magic_login_cannot_change_the_server") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let other = FtpServer::pyftpdlib();
    let proxy = Proxy::start(
        dead_port(),
        "AllowMagicUser yes\nAllowedDestinations 127.0.0.1/32",
    );
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 220);
    assert_eq!(
        c.cmd(&format!("USER test@127.0.0.1:{}", server.port)).code,
        331
    );
    assert_eq!(c.cmd("PASS secret").code, 230);
    // Another server, allowed or not, while the first login stays.
    for dest in [
        format!("test@127.0.0.1:{}", other.port),
        format!("test@127.0.0.2:{}", other.port),
        format!("other@127.0.0.1:{}", server.port),
    ] {
        let r = c.cmd(&format!("USER {dest}"));
        assert_eq!(r.code, 530, "USER {dest}: {r:?}\n{}", proxy.output());
    }
    assert_eq!(connections_to(other.port), 0, "{}", proxy.output());
    // Still logged in to the first server; the same name is relayed there.
    assert_eq!(c.cmd("PWD").code, 257);
    assert_eq!(c.cmd("USER test").code, 331);
    assert_eq!(c.cmd("PASS secret").code, 230);
    assert_eq!(c.cmd("QUIT").code, 221);
}

/// Issue 5: a WelcomeMessage or DenyMessage that is a FIFO (or anything
/// but a regular file) is skipped with a WRN line; opening it must not
/// block the session.
#[test]
fn message_files_that_are_fifos_are_skipped_with_a_warning_and_never_block() {
    if skip_unless_ftpgate(
        "message_files_that_are_fifos_are_skipped_with_a_warning_and_never_block",
    ) {
        return;
    }
    let dir = TempDir::new("fifo-msg");
    let (welcome, deny) = (dir.join("welcome.fifo"), dir.join("deny.fifo"));
    for f in [&welcome, &deny] {
        let r = run_bounded(
            {
                let mut c = std::process::Command::new("mkfifo");
                c.arg(f);
                c
            },
            10,
        );
        assert!(r.ok(), "mkfifo: {}", r.describe());
    }
    let proxy = Proxy::start(
        dead_port(),
        &format!(
            "WelcomeMessage {}\nDenyMessage {}\nWelcomeString Hello",
            welcome.display(),
            deny.display()
        ),
    );
    let mut c = Ctrl::connect(proxy.port);
    c.set_read_timeout(REPLY_SECS);
    let g = c.try_reply().ok().flatten().unwrap_or_else(|| {
        panic!(
            "no greeting: a FIFO blocked the session\n{}",
            proxy.output()
        )
    });
    assert_eq!(g.code, 220, "{g:?}");
    assert_eq!(g.lines.len(), 1, "{g:?}");
    let log = proxy.log_text();
    for f in [&welcome, &deny] {
        assert!(
            log.contains(&format!(
                "WRN message file {} skipped: not a regular file",
                f.display()
            )),
            "no warning for {}:\n{log}",
            f.display()
        );
    }
}

/// Issue 5: LogDestination is never opened through a symbolic link: the
/// session is refused (421) and the link's target is untouched.
#[test]
fn a_symlinked_log_file_is_refused_and_its_target_untouched() {
    if skip_unless_ftpgate("a_symlinked_log_file_is_refused_and_its_target_untouched") {
        return;
    }
    let dir = TempDir::new("log-link");
    let target = dir.join("precious");
    fs::write(&target, "keep me\n").unwrap();
    let link = dir.join("proxy.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let proxy = Proxy::start_raw(&format!(
        "DestinationAddress 127.0.0.1\nDestinationPort {}\nLogDestination {}\n",
        dead_port(),
        link.display()
    ));
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 421, "{}", proxy.output());
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep me\n");
}

/// A client that changes its mind (PASV, PORT, PASV) before a transfer
/// command gets the server's own answer to it. pyftpdlib opens an active
/// data connection at PORT time and says 425 on its own when that is
/// dropped unused; a PORT sent to it ahead of the transfer command would
/// have made that 425 the answer to the proxy's next PASV.
#[test]
fn pasv_port_pasv_then_retr_gets_the_servers_answer() {
    if skip_unless_ftpgate("pasv_port_pasv_then_retr_gets_the_servers_answer") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    server.put("hello.txt", b"hello\n");
    let proxy = Proxy::start(server.port, "");
    for round in 0..3 {
        let mut c = Ctrl::login(proxy.port, "test", "secret");
        assert_eq!(c.cmd("TYPE I").code, 200);
        for _ in 0..4 {
            assert_eq!(c.cmd("PASV").code, 227);
        }
        assert_eq!(c.cmd("PORT 127,0,0,1,200,1").code, 200);
        assert_eq!(c.cmd("PASV").code, 227);
        let r = c.cmd("RETR nonexistent");
        assert_eq!(r.code, 550, "round {round}: {r:?}\n{}", proxy.output());
        let r = c.cmd("NOOP");
        assert_eq!(r.code, 200, "round {round}: {r:?}\n{}", proxy.output());
        c.cmd("QUIT");
    }
}

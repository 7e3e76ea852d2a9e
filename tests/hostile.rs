//! Hostile input on the control connections: none of it may crash the
//! proxy, make it spin, hang past TimeOut, or disturb the session.
//!
//! Real servers cannot be made to misbehave, so the tests of a server that
//! sends an endless reply or stops reading use a scripted fake server
//! (`FakeServer`); everything on the client side is a raw socket.

// Tests may call libc directly (kill, umask, ...), each block with a
// `// SAFETY:` comment; the crate-wide deny is for src/.
#![allow(unsafe_code)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// Send raw bytes, then expect the replies' codes in order.
fn expect_codes(c: &mut Ctrl, bytes: &[u8], codes: &[u16]) {
    c.send_raw(bytes);
    for &want in codes {
        let r = c.reply();
        assert_eq!(
            r.code,
            want,
            "after {:?}: {r:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
        );
    }
}

fn logged_in() -> (FtpServer, Proxy, Ctrl) {
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, "");
    let c = Ctrl::login(proxy.port, server.user(), server.pass());
    (server, proxy, c)
}

#[test]
fn a_100k_line_without_crlf_gets_500_and_the_session_survives() {
    let (_s, proxy, mut c) = logged_in();
    c.send_raw(&vec![b'A'; 100 * 1024]);
    std::thread::sleep(Duration::from_millis(200));
    expect_codes(&mut c, b"\r\nNOOP\r\n", &[500, 200]);
    if !testing_ftp_proxy() {
        assert!(proxy.log_text().contains("too long"), "{}", proxy.output());
    }
}

#[test]
fn nul_bytes_are_refused_and_the_session_survives() {
    let (_s, _p, mut c) = logged_in();
    expect_codes(&mut c, b"NO\0OP\r\nNOOP\r\n", &[500, 200]);
    expect_codes(&mut c, b"CWD a\0b\r\nNOOP\r\n", &[500, 200]);
}

#[test]
fn a_malformed_pass_line_keeps_the_password_out_of_the_log() {
    if skip_unless_ftpgate("a_malformed_pass_line_keeps_the_password_out_of_the_log") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, "");
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 220);
    c.send_raw(format!("USER {}\r\n", server.user()).as_bytes());
    assert_eq!(c.reply().code, 331);
    // A password with a NUL, a bare CR or an 0xFF byte, or after a tab or
    // a leading space: each line is malformed, and refused.
    let lines: [&[u8]; 5] = [
        b"PASS sEcReT1\0x\r\n",
        b"PASS sEcReT2\rx\r\n",
        b"pass sEcReT3\xff\xff\r\n",
        b"PASS\tsEcReT4\r\n",
        b" PASS sEcReT5\r\n",
    ];
    for line in lines {
        c.send_raw(line);
        assert_eq!(c.reply().code, 500, "{line:?}");
    }
    assert_eq!(c.cmd("QUIT").code, 221);
    assert!(
        wait_until(START_SECS, || proxy.sessions().is_empty()),
        "session left behind"
    );
    let log = proxy.log_text();
    assert!(log.contains("PASS ****"), "refusals not logged: {log}");
    assert!(!log.contains("sEcReT"), "password in the log: {log}");
}

/// Issue 6: a mangled PASS (a broken verb, a byte order mark, a NUL right
/// after the verb) or a password typed as a line is masked in the log.
#[test]
fn a_mangled_pass_verb_after_user_keeps_the_password_out_of_the_log() {
    if skip_unless_ftpgate("a_mangled_pass_verb_after_user_keeps_the_password_out_of_the_log") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(server.port, "");
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 220);
    c.send_raw(format!("USER {}\r\n", server.user()).as_bytes());
    assert_eq!(c.reply().code, 331);
    let lines: [&[u8]; 5] = [
        b"PA\xffSS sEcReT1\r\n",
        b"\xef\xbb\xbfPASS sEcReT2\r\n",
        b"PASS\x00sEcReT3\r\n",
        b"XPASS sEcReT4\r\n",
        b"sEcReT5\r\n",
    ];
    for line in lines {
        c.send_raw(line);
        assert_eq!(c.reply().code, 500, "{line:?}");
    }
    assert_eq!(c.cmd("QUIT").code, 221);
    assert!(
        wait_until(START_SECS, || proxy.sessions().is_empty()),
        "session left behind"
    );
    let log = proxy.log_text();
    assert!(log.contains("****"), "refusals not logged: {log}");
    assert!(!log.contains("sEcReT"), "password in the log: {log}");
}

#[test]
fn bare_lf_ends_a_line() {
    let (_s, _p, mut c) = logged_in();
    expect_codes(&mut c, b"NOOP\nNOOP\n", &[200, 200]);
}

#[test]
fn eight_bit_bytes_are_relayed_and_answered() {
    let (_s, _p, mut c) = logged_in();
    // Latin-1 and UTF-8 names that do not exist: the server's 550 comes back.
    expect_codes(
        &mut c,
        b"CWD caf\xe9\r\nCWD \xc3\xa9t\xc3\xa9\r\nNOOP\r\n",
        &[550, 550, 200],
    );
    // High bytes in the verb are not a verb at all.
    expect_codes(&mut c, b"\xe9\xe9\r\nNOOP\r\n", &[500, 200]);
}

#[test]
fn telnet_negotiation_bytes_are_removed() {
    let (_s, _p, mut c) = logged_in();
    expect_codes(
        &mut c,
        b"\xff\xfb\x01\xff\xfd\x03NO\xff\xf1OP\r\n\xff\xfe\x18\xff\xfc\x1fNOOP\r\n",
        &[200, 200],
    );
}

#[test]
fn thousands_of_lines_in_one_packet_are_all_answered_in_order() {
    let (_s, proxy, mut c) = logged_in();
    let n = 3000;
    let mut burst = Vec::new();
    for i in 0..n {
        burst.extend_from_slice(if i % 2 == 0 {
            b"TYPE I\r\n"
        } else {
            b"TYPE A\r\n"
        });
    }
    let pid = (!testing_ftp_proxy()).then(|| one_session(&proxy));
    // A writer thread: the proxy may stop reading while our replies queue up.
    let mut w = c_writer(&c);
    let t = std::thread::spawn(move || w.write_all(&burst));
    for i in 0..n {
        let r = c.reply();
        assert_eq!(r.code, 200, "reply {i}: {r:?}");
        let want = if i % 2 == 0 { "binary" } else { "ascii" };
        assert!(
            r.text().to_ascii_lowercase().contains(want),
            "reply {i} out of order: {r:?}"
        );
    }
    t.join().unwrap().unwrap();
    assert_eq!(c.cmd("NOOP").code, 200);
    if let Some(pid) = pid {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        assert!(rss_kb < 64 * 1024, "session peak memory {rss_kb} kB");
    }
}

/// A second handle on the control connection's socket for a writer thread.
fn c_writer(c: &Ctrl) -> TcpStream {
    c.raw_stream()
}

/// A fake server that logs in anyone and then answers `trigger` with an
/// endless multi-line reply (until the proxy hangs up).
fn endless_after(trigger: &'static str) -> FakeServer {
    FakeServer::start(move |mut s| {
        let _ = s.write_all(b"220 fake\r\n");
        loop {
            let line = fake_read_line(&mut s);
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            if line.is_empty() {
                return vec!["eof".into()];
            }
            if verb == trigger {
                break;
            }
            let _ = s.write_all(match verb.as_str() {
                "USER" => b"331 pass\r\n",
                "PASS" => b"230 in\r\n",
                _ => b"200 ok\r\n",
            });
        }
        let _ = s.write_all(b"200-start\r\n");
        for i in 0..1_000_000u32 {
            if s.write_all(format!("200-line {i}\r\n").as_bytes()).is_err() {
                return vec![format!("proxy hung up after {i} lines")];
            }
        }
        vec!["proxy never hung up".into()]
    })
}

#[test]
fn an_endless_multiline_reply_ends_the_session_with_421() {
    if skip_unless_ftpgate("an_endless_multiline_reply_ends_the_session_with_421") {
        return;
    }
    let server = endless_after("NOOP");
    let proxy = Proxy::start(server.port, "TimeOut 30");
    let mut c = Ctrl::login(proxy.port, "u", "p");
    c.send_raw(b"NOOP\r\n");
    let replies = c
        .replies_until_eof(60)
        .expect("proxy kept the connection open");
    assert!(
        replies.last().is_some_and(|r| r.code == 421),
        "{replies:?}\n{}",
        proxy.output()
    );
    assert!(
        wait_until(START_SECS, || proxy.sessions().is_empty()),
        "session left behind"
    );
    let said = server.join();
    assert!(
        said.iter().any(|l| l.starts_with("proxy hung up")),
        "{said:?}"
    );
}

#[test]
fn an_endless_greeting_ends_the_session_with_421() {
    if skip_unless_ftpgate("an_endless_greeting_ends_the_session_with_421") {
        return;
    }
    let server = FakeServer::start(|mut s| {
        for i in 0..1_000_000u32 {
            if s.write_all(format!("220-line {i}\r\n").as_bytes()).is_err() {
                return vec![format!("proxy hung up after {i} lines")];
            }
        }
        vec!["proxy never hung up".into()]
    });
    let proxy = Proxy::start(server.port, "TimeOut 30");
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 220);
    c.send_raw(b"USER u\r\n");
    let replies = c
        .replies_until_eof(60)
        .expect("proxy kept the connection open");
    assert!(
        replies.last().is_some_and(|r| r.code == 421),
        "{replies:?}\n{}",
        proxy.output()
    );
    assert!(
        wait_until(START_SECS, || proxy.sessions().is_empty()),
        "session left behind"
    );
    let said = server.join();
    assert!(
        said.iter().any(|l| l.starts_with("proxy hung up")),
        "{said:?}"
    );
}

#[test]
fn a_server_that_never_greets_gets_the_client_a_421_within_timeout() {
    if skip_unless_ftpgate("a_server_that_never_greets_gets_the_client_a_421_within_timeout") {
        return;
    }
    // Accepts, says nothing, waits for the proxy to hang up.
    let server = FakeServer::start(|mut s| {
        let mut b = [0u8; 64];
        while matches!(s.read(&mut b), Ok(n) if n > 0) {}
        vec!["closed".into()]
    });
    let proxy = Proxy::start(server.port, "TimeOut 3");
    let mut c = Ctrl::connect(proxy.port);
    assert_eq!(c.reply().code, 220);
    let started = Instant::now();
    c.send_raw(b"USER u\r\n");
    let replies = c
        .replies_until_eof(60)
        .expect("proxy kept the connection open");
    let waited = started.elapsed();
    assert!(
        replies.last().is_some_and(|r| r.code == 421),
        "{replies:?}\n{}",
        proxy.output()
    );
    // TimeOut bounds the wait for the greeting; before, the early
    // connection and a second one waited 10 s each.
    assert!(
        waited < Duration::from_secs(9),
        "421 after {waited:?}\n{}",
        proxy.output()
    );
}

/// A fake server that logs in anyone and answers PWD with `answer`, then
/// waits for the proxy to hang up.
fn answers_pwd_with(answer: Vec<u8>) -> FakeServer {
    FakeServer::start(move |mut s| {
        let _ = s.write_all(b"220 fake\r\n");
        loop {
            let line = fake_read_line(&mut s);
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            if line.is_empty() {
                return vec!["eof".into()];
            }
            if verb == "PWD" {
                let _ = s.write_all(&answer);
                let mut b = [0u8; 64];
                while matches!(s.read(&mut b), Ok(n) if n > 0) {}
                return vec!["proxy hung up".into()];
            }
            let _ = s.write_all(match verb.as_str() {
                "USER" => b"331 pass\r\n",
                "PASS" => b"230 in\r\n",
                _ => b"200 ok\r\n",
            });
        }
    })
}

#[test]
fn a_megabyte_reply_line_or_a_reply_without_line_end_gets_421_within_timeout() {
    if skip_unless_ftpgate(
        "a_megabyte_reply_line_or_a_reply_without_line_end_gets_421_within_timeout",
    ) {
        return;
    }
    let mut long = b"257 \"".to_vec();
    long.extend(std::iter::repeat_n(b'x', 1 << 20));
    long.extend_from_slice(b"\"\r\n");
    for answer in [long, b"257 \"/\"".to_vec()] {
        let server = answers_pwd_with(answer);
        let proxy = Proxy::start(server.port, "TimeOut 3");
        let mut c = Ctrl::login(proxy.port, "u", "p");
        c.send_raw(b"PWD\r\n");
        let replies = c
            .replies_until_eof(30)
            .expect("proxy kept the connection open");
        assert!(
            replies.len() == 1 && replies[0].code == 421,
            "{replies:?}\n{}",
            proxy.output()
        );
        assert_eq!(server.join(), ["proxy hung up"]);
    }
}

#[test]
fn a_server_that_says_150_and_then_nothing_is_ended_soon_after_timeout() {
    if skip_unless_ftpgate("a_server_that_says_150_and_then_nothing_is_ended_soon_after_timeout") {
        return;
    }
    // Offers a passive port (the kernel accepts the proxy's connection),
    // says 150 to RETR, then neither sends data nor replies.
    let server = FakeServer::start(|mut s| {
        let data = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = data.local_addr().unwrap().port();
        let _ = s.write_all(b"220 fake\r\n");
        loop {
            let line = fake_read_line(&mut s);
            if line.is_empty() {
                return vec!["eof".into()];
            }
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            let answer = match verb.as_str() {
                "USER" => "331 pass\r\n".to_string(),
                "PASS" => "230 in\r\n".to_string(),
                "PASV" => format!(
                    "227 Entering Passive Mode (127,0,0,1,{},{})\r\n",
                    port >> 8,
                    port & 255
                ),
                "RETR" => "150 here it comes\r\n".to_string(),
                _ => "200 ok\r\n".to_string(),
            };
            let _ = s.write_all(answer.as_bytes());
            if verb == "RETR" {
                let mut b = [0u8; 64];
                while matches!(s.read(&mut b), Ok(n) if n > 0) {}
                drop(data);
                return vec!["proxy hung up".into()];
            }
        }
    });
    let proxy = Proxy::start(server.port, "TimeOut 8\nDestinationTransferMode passive");
    let mut c = Ctrl::login(proxy.port, "u", "p");
    let _data = pasv_connect(&mut c);
    let started = Instant::now();
    c.send_raw(b"RETR x\r\n");
    let replies = c
        .replies_until_eof(60)
        .expect("proxy kept the connection open");
    let waited = started.elapsed();
    assert!(
        replies.first().is_some_and(|r| r.code == 150)
            && replies.last().is_some_and(|r| r.code == 421),
        "{replies:?}\n{}",
        proxy.output()
    );
    // TimeOut for the idle transfer, then a short wait for the server's
    // reply (limits::REPLY_AFTER_CUT_SECS), not a second TimeOut.
    assert!(
        waited < Duration::from_secs(14),
        "ended after {waited:?}\n{}",
        proxy.output()
    );
    assert_eq!(server.join(), ["proxy hung up"]);
}

#[test]
fn an_active_mode_server_that_says_150_and_never_connects_gets_425_soon_after_timeout() {
    if skip_unless_ftpgate(
        "an_active_mode_server_that_says_150_and_never_connects_gets_425_soon_after_timeout",
    ) {
        return;
    }
    // Takes PORT/EPRT, says 150 to RETR, then never connects nor replies.
    let server = FakeServer::start(|mut s| {
        let _ = s.write_all(b"220 fake\r\n");
        loop {
            let line = fake_read_line(&mut s);
            if line.is_empty() {
                return vec!["eof".into()];
            }
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            let _ = s.write_all(match verb.as_str() {
                "USER" => b"331 pass\r\n",
                "PASS" => b"230 in\r\n",
                "RETR" => b"150 here it comes\r\n",
                _ => b"200 ok\r\n",
            });
            if verb == "RETR" {
                let mut b = [0u8; 64];
                while matches!(s.read(&mut b), Ok(n) if n > 0) {}
                return vec!["proxy hung up".into()];
            }
        }
    });
    let proxy = Proxy::start(server.port, "TimeOut 8\nDestinationTransferMode active");
    let mut c = Ctrl::login(proxy.port, "u", "p");
    let _data = pasv_connect(&mut c);
    let started = Instant::now();
    c.send_raw(b"RETR x\r\n");
    assert_eq!(c.reply().code, 150);
    let r = c.reply();
    let waited = started.elapsed();
    assert_eq!(r.code, 425, "{r:?}\n{}", proxy.output());
    // TimeOut for the server's connection, then a short wait for its
    // reply to ABOR; before, 10 s twice more.
    assert!(
        waited < Duration::from_secs(14),
        "425 after {waited:?}\n{}",
        proxy.output()
    );
}

/// CPU ticks the session used over `secs` seconds.
fn cpu_over(pid: u32, secs: u64) -> u64 {
    let before = cpu_ticks(pid).unwrap_or(0);
    std::thread::sleep(Duration::from_secs(secs));
    cpu_ticks(pid).unwrap_or(before).saturating_sub(before)
}

#[test]
fn a_client_that_stops_reading_mid_download_does_not_make_the_proxy_spin() {
    if skip_unless_ftpgate("a_client_that_stops_reading_mid_download_does_not_make_the_proxy_spin")
    {
        return;
    }
    let server = FtpServer::pyftpdlib();
    server.put("big.bin", &random_bytes(64 << 20, 5));
    let proxy = Proxy::start(server.port, "TimeOut 4");
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    assert_eq!(c.cmd("TYPE I").code, 200);
    let data = pasv_connect(&mut c);
    c.send_raw(b"RETR big.bin\r\n");
    let r = c.reply();
    assert!(r.code == 150 || r.code == 125, "{r:?}");
    let pid = one_session(&proxy);
    std::thread::sleep(Duration::from_secs(1));
    // 3 s of a stuck transfer: a spinning proxy would use ~300 ticks.
    let used = cpu_over(pid, 3);
    assert!(
        used < 60,
        "proxy used {used} ticks while the client was not reading"
    );
    // The session ends by TimeOut (idle transfer, then idle control).
    assert!(
        wait_until(40, || cpu_ticks(pid).is_none()
            || state_of(pid) == Some('Z')),
        "session still alive long after TimeOut\n{}",
        proxy.output()
    );
    drop(data);
}

#[test]
fn a_download_cut_by_the_idle_timeout_is_426_even_if_the_server_says_226() {
    if skip_unless_ftpgate("a_download_cut_by_the_idle_timeout_is_426_even_if_the_server_says_226")
    {
        return;
    }
    // Small enough for the server to hand it all to the proxy's buffers
    // (and say 226), too big for the client's side, which never reads.
    let server = FtpServer::pyftpdlib();
    server.put("big.bin", &random_bytes(12 << 20, 6));
    let proxy = Proxy::start(server.port, "TimeOut 3");
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    assert_eq!(c.cmd("TYPE I").code, 200);
    let data = pasv_connect(&mut c);
    c.send_raw(b"RETR big.bin\r\n");
    let r = c.reply();
    assert!(r.code == 150 || r.code == 125, "{r:?}");
    let r = c.reply();
    assert_eq!(
        r.code,
        426,
        "a cut transfer was reported as {r:?}\n{}",
        proxy.output()
    );
    assert_eq!(c.cmd("NOOP").code, 200);
    drop(data);
}

#[test]
fn a_server_that_stops_reading_mid_upload_does_not_make_the_proxy_spin() {
    if skip_unless_ftpgate("a_server_that_stops_reading_mid_upload_does_not_make_the_proxy_spin") {
        return;
    }
    // A fake server whose data connection never reads what STOR sends.
    let server = FakeServer::start(|mut s| {
        let data = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = data.local_addr().unwrap().port();
        let _ = s.write_all(b"220 fake\r\n");
        let mut held = Vec::new();
        loop {
            let line = fake_read_line(&mut s);
            if line.is_empty() {
                return vec!["eof".into()];
            }
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            let answer = match verb.as_str() {
                "USER" => "331 pass\r\n".to_string(),
                "PASS" => "230 in\r\n".to_string(),
                "PASV" => format!(
                    "227 Entering Passive Mode (127,0,0,1,{},{})\r\n",
                    port >> 8,
                    port & 255
                ),
                "STOR" => {
                    let _ = s.write_all(b"150 go\r\n");
                    data.set_nonblocking(false).unwrap();
                    if let Ok((conn, _)) = data.accept() {
                        held.push(conn); // never read
                    }
                    continue;
                }
                _ => "200 ok\r\n".to_string(),
            };
            let _ = s.write_all(answer.as_bytes());
        }
    });
    let proxy = Proxy::start(server.port, "TimeOut 4\nDestinationTransferMode passive");
    let mut c = Ctrl::login(proxy.port, "u", "p");
    let mut data = pasv_connect(&mut c);
    c.send_raw(b"STOR x\r\n");
    assert_eq!(c.reply().code, 150);
    data.set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let chunk = vec![0u8; 1 << 16];
    for _ in 0..200 {
        if data.write_all(&chunk).is_err() {
            break;
        }
    }
    let pid = one_session(&proxy);
    let used = cpu_over(pid, 3);
    assert!(
        used < 60,
        "proxy used {used} ticks while the server was not reading"
    );
    assert!(
        wait_until(40, || cpu_ticks(pid).is_none()
            || state_of(pid) == Some('Z')),
        "session still alive long after TimeOut\n{}",
        proxy.output()
    );
    let _ = server.join();
}

/// PASV on `c` (must be 227) and a data connection to the port it names.
fn pasv_connect(c: &mut Ctrl) -> TcpStream {
    let r = c.cmd("PASV");
    assert_eq!(r.code, 227, "{r:?}");
    TcpStream::connect(("127.0.0.1", pasv_port(&r))).unwrap()
}

fn pasv_port(r: &Reply) -> u16 {
    let t = r.text();
    let inner = &t[t.find('(').unwrap() + 1..t.find(')').unwrap()];
    let n: Vec<u16> = inner.split(',').map(|x| x.parse().unwrap()).collect();
    n[4] * 256 + n[5]
}

#[test]
fn a_client_that_half_closes_gets_its_replies_and_the_session_ends() {
    let (_s, proxy, mut c) = logged_in();
    c.send_raw(b"NOOP\r\nPWD\r\n");
    c.raw_stream().shutdown(Shutdown::Write).unwrap();
    let replies = c
        .replies_until_eof(30)
        .expect("proxy kept the connection open");
    let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
    assert_eq!(&codes[..2], &[200, 257], "{replies:?}");
    assert!(
        wait_until(START_SECS, || proxy.sessions().is_empty()),
        "session left behind"
    );
}

#[test]
fn a_server_that_closes_its_control_connection_gets_the_client_a_421() {
    if skip_unless_ftpgate("a_server_that_closes_its_control_connection_gets_the_client_a_421") {
        return;
    }
    let server = FakeServer::start(|mut s| {
        let _ = s.write_all(b"220 fake\r\n");
        let _ = fake_read_line(&mut s);
        let _ = s.write_all(b"331 pass\r\n");
        let _ = fake_read_line(&mut s);
        let _ = s.write_all(b"230 in\r\n");
        // Half-close: no more replies, but keep reading.
        let _ = s.shutdown(Shutdown::Write);
        let mut rest = String::new();
        let _ = s.read_to_string(&mut rest);
        vec![rest]
    });
    let proxy = Proxy::start(server.port, "TimeOut 10");
    let mut c = Ctrl::login(proxy.port, "u", "p");
    c.send_raw(b"NOOP\r\n");
    let replies = c
        .replies_until_eof(30)
        .expect("proxy kept the connection open");
    assert!(
        replies.last().is_some_and(|r| r.code == 421),
        "{replies:?}\n{}",
        proxy.output()
    );
    assert!(
        wait_until(START_SECS, || proxy.sessions().is_empty()),
        "session left behind"
    );
}

// ---------------------------------------------------------------------------
// Bounce and theft (SameAddress), both sides

#[test]
fn port_naming_another_host_or_a_privileged_port_is_refused() {
    let (_s, _p, mut c) = logged_in();
    for cmd in [
        "PORT 127,0,0,2,200,1",
        "PORT 10,1,2,3,200,1",
        "PORT 127,0,0,1,0,21",
        "PORT 127,0,0,1,3,255",
        "EPRT |1|127.0.0.2|51201|",
        "EPRT |1|127.0.0.1|25|",
    ] {
        let r = c.cmd(cmd);
        assert!(r.code / 100 == 5, "{cmd} not refused: {r:?}");
    }
    assert_eq!(c.cmd("PORT 127,0,0,1,200,1").code, 200);
}

#[test]
fn a_thief_on_another_address_is_closed_and_the_client_still_gets_its_data() {
    let server = FtpServer::vsftpd();
    let data = random_bytes(2_000_000, 11);
    server.put("loot.bin", &data);
    let proxy = Proxy::start(server.port, "");
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    assert_eq!(c.cmd("TYPE I").code, 200);
    let r = c.cmd("PASV");
    assert_eq!(r.code, 227, "{r:?}");
    let port = pasv_port(&r);
    // The thief connects first, from 127.0.0.2.
    let thief = {
        let s = socket2_bind_connect("127.0.0.2", port);
        s.set_read_timeout(Some(Duration::from_secs(REPLY_SECS)))
            .unwrap();
        s
    };
    std::thread::sleep(Duration::from_millis(200));
    let mut real = TcpStream::connect(("127.0.0.1", port)).unwrap();
    real.set_read_timeout(Some(Duration::from_secs(REPLY_SECS)))
        .unwrap();
    c.send_raw(format!("RETR {}loot.bin\r\n", server.sub).as_bytes());
    let r = c.reply();
    assert!(r.code == 150 || r.code == 125, "{r:?}");
    let mut got = Vec::new();
    real.read_to_end(&mut got).unwrap();
    assert_same_bytes("client data after theft attempt", &got, &data);
    assert_eq!(c.reply().code, 226);
    let mut stolen = Vec::new();
    let _ = (&thief).read_to_end(&mut stolen);
    assert!(stolen.is_empty(), "thief got {} bytes", stolen.len());
    if !testing_ftp_proxy() {
        let log = proxy.log_text();
        assert!(
            log.contains("127.0.0.2") && log.contains("refused"),
            "theft not logged:\n{log}"
        );
    }
}

/// Issue 3: connections from another host to the passive port BEFORE the
/// transfer command (more than the listen backlog) are closed and logged
/// at once, so the real client still connects and gets its data.
#[test]
fn thieves_queued_before_the_transfer_command_do_not_lock_the_client_out() {
    let test = "thieves_queued_before_the_transfer_command_do_not_lock_the_client_out";
    if skip_unless_ftpgate(test) {
        return;
    }
    const THIEVES: usize = 300;
    let server = FtpServer::pyftpdlib();
    let data = random_bytes(200_000, 12);
    server.put("loot.bin", &data);
    let proxy = Proxy::start(server.port, "");
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    assert_eq!(c.cmd("TYPE I").code, 200);
    let r = c.cmd("PASV");
    assert_eq!(r.code, 227, "{r:?}");
    let port = pasv_port(&r);
    // Non-blocking connects from 127.0.0.2: far more than the backlog.
    let thieves: Vec<TcpStream> = (0..THIEVES)
        .map(|_| nonblocking_connect_from("127.0.0.2", port))
        .collect();
    let refused = || {
        proxy
            .log_text()
            .lines()
            .filter(|l| l.contains("data connection from 127.0.0.2:") && l.contains("refused"))
            .count()
    };
    // More than the backlog (8) closed and logged before RETR. (Not all
    // of them: with SYN cookies, a thief whose handshake overflowed the
    // queue believes it is connected and never retries.)
    assert!(
        wait_until(20, || refused() > 2 * 8),
        "only {} thieves closed and logged before RETR\n{}",
        refused(),
        proxy.output()
    );
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut real = TcpStream::connect_timeout(&to, Duration::from_secs(10))
        .expect("the real client cannot connect to its passive port");
    real.set_read_timeout(Some(Duration::from_secs(REPLY_SECS)))
        .unwrap();
    c.send_raw(format!("RETR {}loot.bin\r\n", server.sub).as_bytes());
    let r = c.reply();
    assert!(r.code == 150 || r.code == 125, "{r:?}");
    let mut got = Vec::new();
    real.read_to_end(&mut got).unwrap();
    assert_same_bytes("client data after queued thieves", &got, &data);
    assert_eq!(c.reply().code, 226);
    assert_eq!(c.cmd("QUIT").code, 221);
    drop(thieves);
}

/// A non-blocking TCP connection to 127.0.0.1:port from `from` (the
/// connect is under way when this returns).
fn nonblocking_connect_from(from: &str, port: u16) -> TcpStream {
    use std::os::fd::FromRawFd;
    let from: std::net::Ipv4Addr = from.parse().unwrap();
    // SAFETY: plain socket calls on a fresh descriptor owned by the result.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        assert!(fd >= 0);
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_addr.s_addr = u32::from_ne_bytes(from.octets());
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, &a as *const _ as *const libc::sockaddr, len),
            0,
            "bind {from}"
        );
        a.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        a.sin_port = port.to_be();
        let r = libc::connect(fd, &a as *const _ as *const libc::sockaddr, len);
        let err = std::io::Error::last_os_error();
        assert!(
            r == 0 || err.raw_os_error() == Some(libc::EINPROGRESS),
            "connect from {from}: {err}"
        );
        TcpStream::from_raw_fd(fd)
    }
}

/// A TCP connection to 127.0.0.1:port whose source is `from`.
fn socket2_bind_connect(from: &str, port: u16) -> TcpStream {
    // std cannot bind before connect; Python can, but a raw fd is simplest
    // through libc.
    use std::os::fd::FromRawFd;
    let from: std::net::Ipv4Addr = from.parse().unwrap();
    // SAFETY: plain socket calls on a fresh descriptor owned by the result.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_addr.s_addr = u32::from_ne_bytes(from.octets());
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, &a as *const _ as *const libc::sockaddr, len),
            0,
            "bind {from}"
        );
        a.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        a.sin_port = port.to_be();
        assert_eq!(
            libc::connect(fd, &a as *const _ as *const libc::sockaddr, len),
            0,
            "connect from {from}"
        );
        TcpStream::from_raw_fd(fd)
    }
}

/// A fake server whose 227 names `target` instead of itself.
fn malicious_pasv_server(target: std::net::SocketAddrV4) -> FakeServer {
    FakeServer::start(move |mut s| {
        let _ = s.write_all(b"220 fake\r\n");
        let mut seen = Vec::new();
        loop {
            let line = fake_read_line(&mut s);
            if line.is_empty() {
                return seen;
            }
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            seen.push(line.clone());
            let [a, b, c, d] = target.ip().octets();
            let answer = match verb.as_str() {
                "USER" => "331 pass\r\n".to_string(),
                "PASS" => "230 in\r\n".to_string(),
                "PASV" => format!(
                    "227 Entering Passive Mode ({a},{b},{c},{d},{},{})\r\n",
                    target.port() >> 8,
                    target.port() & 255
                ),
                "RETR" => "150 here it comes\r\n".to_string(),
                "ABOR" => "226 aborted\r\n".to_string(),
                "QUIT" => "221 bye\r\n".to_string(),
                _ => "200 ok\r\n".to_string(),
            };
            let _ = s.write_all(answer.as_bytes());
        }
    })
}

#[test]
fn a_server_227_naming_a_third_host_is_refused() {
    // A victim listening on 127.0.0.2: the proxy must never connect to it.
    let victim = TcpListener::bind("127.0.0.2:0").unwrap();
    victim.set_nonblocking(true).unwrap();
    let target = match victim.local_addr().unwrap() {
        std::net::SocketAddr::V4(v4) => v4,
        _ => unreachable!(),
    };
    let server = malicious_pasv_server(target);
    let proxy = Proxy::start(server.port, "DestinationTransferMode passive\nTimeOut 10");
    let mut c = Ctrl::login(proxy.port, "u", "p");
    let _data = pasv_connect(&mut c);
    c.send_raw(b"RETR secret\r\n");
    let r = c.reply();
    assert_eq!(r.code, 425, "{r:?}\n{}", proxy.output());
    assert_eq!(c.cmd("NOOP").code, 200);
    assert!(
        victim.accept().is_err(),
        "the proxy connected to the third host"
    );
    let _ = c.cmd("QUIT");
    let seen = server.join();
    assert!(
        !seen.iter().any(|l| l.starts_with("RETR")),
        "RETR reached the server: {seen:?}"
    );
    if !testing_ftp_proxy() {
        assert!(proxy.log_text().contains("refused"), "{}", proxy.output());
    }
}

// ftp-proxy connects to any third party; ftpgate (issue 14 item 7) never
// to loopback, link-local, multicast or its own host's addresses, so on one
// host a third party can only be refused. The transcript twin
// session::tests::with_same_address_no_a_third_party_port_is_connected_to
// shows a real third party served.
#[test]
fn with_same_address_no_a_third_party_port_works_but_not_on_loopback() {
    let server = FtpServer::pyftpdlib();
    let data = random_bytes(500_000, 12);
    server.put("third.bin", &data);
    let proxy = Proxy::start(server.port, "SameAddress no");
    let third = TcpListener::bind("127.0.0.2:0").unwrap();
    let port = third.local_addr().unwrap().port();
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    assert_eq!(c.cmd("TYPE I").code, 200);
    let r = c.cmd(&format!("PORT 127,0,0,2,{},{}", port >> 8, port & 255));
    if !testing_ftp_proxy() {
        assert_eq!(r.code, 504, "{r:?}");
        assert!(proxy.log_text().contains("loopback"), "{}", proxy.output());
        return;
    }
    assert_eq!(r.code, 200, "{r:?}");
    c.send_raw(b"RETR third.bin\r\n");
    let r = c.reply();
    assert!(r.code == 150 || r.code == 125, "{r:?}\n{}", proxy.output());
    let (mut conn, _) = third.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(REPLY_SECS)))
        .unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap();
    assert_same_bytes("third-party transfer", &got, &data);
    assert_eq!(c.reply().code, 226);
}

// ---------------------------------------------------------------------------
// Port ranges and NAT

fn in_range(p: u16, lo: u16, hi: u16) -> bool {
    (lo..=hi).contains(&p)
}

#[test]
fn passive_ports_stay_in_the_configured_range_with_and_without_randomness() {
    let server = FtpServer::pyftpdlib();
    let (lo, hi) = (free_port_block(), 0);
    let hi = if hi == 0 { lo + 9 } else { hi };
    for rand in ["no", "yes"] {
        let proxy = Proxy::start(
            server.port,
            &format!("PassiveMinDataPort {lo}\nPassiveMaxDataPort {hi}\nSockBindRand {rand}"),
        );
        let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
        for _ in 0..4 {
            let r = c.cmd("PASV");
            assert_eq!(r.code, 227, "{r:?}\n{}", proxy.output());
            let p = pasv_port(&r);
            assert!(
                in_range(p, lo, hi),
                "227 port {p} outside {lo}-{hi} (SockBindRand {rand})"
            );
            let r = c.cmd("EPSV");
            let p: u16 = r.text().split('|').nth(3).unwrap().parse().unwrap();
            assert!(in_range(p, lo, hi), "229 port {p} outside {lo}-{hi}");
        }
        // And a transfer through the range works.
        let ran = lftp(
            proxy.port,
            server.user(),
            server.pass(),
            ClientMode::Passive,
            "ls",
        );
        assert!(ran.ok(), "{}\n{}", ran.describe(), proxy.output());
    }
}

/// The first of ten consecutive free ports (best effort, above 20000).
fn free_port_block() -> u16 {
    for start in (21000..60000).step_by(37) {
        if (start..start + 10).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return start;
        }
    }
    panic!("no free block of ports");
}

#[test]
fn active_data_connections_come_from_the_configured_range() {
    let server = FtpServer::pyftpdlib();
    server.put("a.txt", b"active range\n");
    let lo = free_port_block();
    let hi = lo + 9;
    let proxy = Proxy::start(
        server.port,
        &format!("ActiveMinDataPort {lo}\nActiveMaxDataPort {hi}"),
    );
    let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
    assert_eq!(c.cmd("TYPE I").code, 200);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    assert_eq!(
        c.cmd(&format!("PORT 127,0,0,1,{},{}", p >> 8, p & 255))
            .code,
        200
    );
    c.send_raw(b"RETR a.txt\r\n");
    let r = c.reply();
    assert!(r.code == 150 || r.code == 125, "{r:?}\n{}", proxy.output());
    let (mut conn, from) = l.accept().unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"active range\n");
    assert_eq!(c.reply().code, 226);
    assert!(
        in_range(from.port(), lo, hi),
        "data came from port {} not {lo}-{hi}",
        from.port()
    );
}

#[test]
fn destination_ports_are_used_towards_the_server() {
    if skip_unless_ftpgate("destination_ports_are_used_towards_the_server") {
        return;
    }
    // A fake server records the control connection's source port and the
    // port the proxy names in PORT (DestinationTransferMode active).
    let server = FakeServer::start(|mut s| {
        let mut seen = vec![format!("peer {}", s.peer_addr().unwrap().port())];
        let _ = s.write_all(b"220 fake\r\n");
        loop {
            let line = fake_read_line(&mut s);
            if line.is_empty() {
                return seen;
            }
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            seen.push(line.clone());
            let answer: &[u8] = match verb.as_str() {
                "USER" => b"331 pass\r\n",
                "PASS" => b"230 in\r\n",
                "RETR" => b"550 no such file\r\n",
                "QUIT" => b"221 bye\r\n",
                _ => b"200 ok\r\n",
            };
            let _ = s.write_all(answer);
            if verb == "QUIT" {
                return seen;
            }
        }
    });
    let lo = free_port_block();
    let hi = lo + 9;
    let proxy = Proxy::start(
        server.port,
        &format!(
            "DestinationMinPort {lo}\nDestinationMaxPort {hi}\nDestinationTransferMode active"
        ),
    );
    let mut c = Ctrl::login(proxy.port, "u", "p");
    let _d = pasv_connect(&mut c);
    assert_eq!(c.cmd("RETR x").code, 550);
    assert_eq!(c.cmd("QUIT").code, 221);
    let seen = server.join();
    let port_line = seen
        .iter()
        .find(|l| l.starts_with("PORT "))
        .expect("PORT sent");
    let n: Vec<u16> = port_line[5..]
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    let data_port = n[4] * 256 + n[5];
    assert!(
        in_range(data_port, lo, hi),
        "PORT {data_port} outside {lo}-{hi}: {seen:?}"
    );
    let peer: u16 = seen[0][5..].parse().unwrap();
    assert!(
        in_range(peer, lo, hi),
        "control from port {peer} outside {lo}-{hi}"
    );
}

#[test]
fn translated_address_appears_in_227_as_address_name_or_file() {
    let server = FtpServer::pyftpdlib();
    let dir = TempDir::new("nat");
    let file = dir.join("nat-address");
    std::fs::write(&file, "127.0.0.8\n").unwrap();
    for (value, want) in [
        ("127.0.0.9".to_string(), "127,0,0,9"),
        ("localhost".to_string(), "127,0,0,1"),
        (file.display().to_string(), "127,0,0,8"),
    ] {
        let proxy = Proxy::start(server.port, &format!("TranslatedAddress {value}"));
        let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
        let r = c.cmd("PASV");
        assert_eq!(r.code, 227, "{value}: {r:?}\n{}", proxy.output());
        assert!(r.text().contains(&format!("({want},")), "{value}: {r:?}");
    }
}

#[test]
fn a_small_max_recv_buf_size_still_moves_files_byte_exact() {
    let server = FtpServer::vsftpd();
    let data = random_bytes(3_000_000, 13);
    server.put("small-buf.bin", &data);
    let proxy = Proxy::start(server.port, "MaxRecvBufSize 4096");
    let dir = TempDir::new("smallbuf");
    let out = dir.join("out.bin");
    let url = format!(
        "{}/{}small-buf.bin",
        proxy.url(server.user(), server.pass()),
        server.sub
    );
    let ran = curl(ClientMode::Passive, &["-o", out.to_str().unwrap(), &url]);
    assert!(ran.ok(), "{}\n{}", ran.describe(), proxy.output());
    assert_same_bytes("MaxRecvBufSize 4096", &std::fs::read(&out).unwrap(), &data);
}

#[test]
fn port_resets_pasv_closes_the_passive_listener() {
    for (option, open_after) in [("yes", false), ("no", true)] {
        let server = FtpServer::pyftpdlib();
        let proxy = Proxy::start(server.port, &format!("PortResetsPasv {option}"));
        let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
        let r = c.cmd("PASV");
        assert_eq!(r.code, 227);
        let p = pasv_port(&r);
        assert_eq!(c.cmd("PORT 127,0,0,1,200,1").code, 200);
        let open = TcpStream::connect(("127.0.0.1", p)).is_ok();
        assert_eq!(
            open, open_after,
            "PortResetsPasv {option}: listener open = {open}"
        );
    }
}

#[test]
fn fail_resets_pasv_decides_whether_a_failed_transfer_keeps_the_listener() {
    for (option, open_after) in [("yes", false), ("no", true)] {
        let server = FtpServer::pyftpdlib();
        server.put("there.txt", b"here\n");
        let proxy = Proxy::start(server.port, &format!("FailResetsPasv {option}"));
        let mut c = Ctrl::login(proxy.port, server.user(), server.pass());
        assert_eq!(c.cmd("TYPE I").code, 200);
        let r = c.cmd("PASV");
        assert_eq!(r.code, 227);
        let p = pasv_port(&r);
        let r = c.cmd("RETR not-there.txt");
        assert_eq!(r.code / 100, 5, "{r:?}");
        if open_after {
            // The same listener serves the next transfer.
            let mut d = TcpStream::connect(("127.0.0.1", p)).expect("listener kept");
            c.send_raw(b"RETR there.txt\r\n");
            let r = c.reply();
            assert!(r.code == 150 || r.code == 125, "{r:?}\n{}", proxy.output());
            let mut got = Vec::new();
            d.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"here\n");
            assert_eq!(c.reply().code, 226);
        } else {
            assert!(
                TcpStream::connect(("127.0.0.1", p)).is_err(),
                "FailResetsPasv yes: listener still open"
            );
        }
    }
}

#[test]
fn an_active_connection_from_another_host_than_the_server_is_refused() {
    if skip_unless_ftpgate("an_active_connection_from_another_host_than_the_server_is_refused") {
        return;
    }
    // The fake server answers the proxy's PORT by connecting first from
    // 127.0.0.2 (a thief, which must get nothing) and then from 127.0.0.1,
    // the server's own address, with the file.
    let server = FakeServer::start(|mut s| {
        let _ = s.write_all(b"220 fake\r\n");
        let mut target = None;
        let mut report = Vec::new();
        loop {
            let line = fake_read_line(&mut s);
            if line.is_empty() {
                return report;
            }
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "USER" => drop(s.write_all(b"331 pass\r\n")),
                "PASS" => drop(s.write_all(b"230 in\r\n")),
                "PORT" => {
                    let n: Vec<u16> = line[5..].split(',').map(|x| x.parse().unwrap()).collect();
                    target = Some(n[4] * 256 + n[5]);
                    let _ = s.write_all(b"200 ok\r\n");
                }
                "RETR" => {
                    let port = target.unwrap();
                    let _ = s.write_all(b"150 sending\r\n");
                    let mut thief = socket2_bind_connect("127.0.0.2", port);
                    let _ = thief.write_all(b"EVIL DATA");
                    let _ = thief.shutdown(Shutdown::Write);
                    thief
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    let mut buf = [0u8; 16];
                    report.push(format!(
                        "thief read {:?}",
                        thief.read(&mut buf).map_err(|e| e.kind())
                    ));
                    std::thread::sleep(Duration::from_millis(200));
                    let mut real = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    let _ = real.write_all(b"GOOD DATA");
                    drop(real);
                    let _ = s.write_all(b"226 done\r\n");
                }
                "QUIT" => {
                    let _ = s.write_all(b"221 bye\r\n");
                    return report;
                }
                _ => drop(s.write_all(b"200 ok\r\n")),
            }
        }
    });
    let proxy = Proxy::start(server.port, "DestinationTransferMode active\nTimeOut 20");
    let mut c = Ctrl::login(proxy.port, "u", "p");
    let mut d = pasv_connect(&mut c);
    d.set_read_timeout(Some(Duration::from_secs(REPLY_SECS)))
        .unwrap();
    c.send_raw(b"RETR f\r\n");
    assert_eq!(c.reply().code, 150);
    let mut got = Vec::new();
    d.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"GOOD DATA", "{}", proxy.output());
    assert_eq!(c.reply().code, 226);
    assert_eq!(c.cmd("QUIT").code, 221);
    let report = server.join();
    assert!(
        report
            .iter()
            .any(|l| l == "thief read Ok(0)" || l == "thief read Err(ConnectionReset)"),
        "thief was not closed: {report:?}"
    );
    assert!(proxy.log_text().contains("127.0.0.2"), "{}", proxy.output());
}

#[test]
fn endless_1xx_replies_end_the_session_with_421_after_timeout() {
    if skip_unless_ftpgate("endless_1xx_replies_end_the_session_with_421_after_timeout") {
        return;
    }
    // Logs in anyone, then answers NOOP with a 1xx line every 200 ms and
    // never with a final reply.
    let server = FakeServer::start(|mut s| {
        let _ = s.write_all(b"220 fake\r\n");
        loop {
            let line = fake_read_line(&mut s);
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "" => return vec!["eof".into()],
                "USER" => drop(s.write_all(b"331 pass\r\n")),
                "PASS" => drop(s.write_all(b"230 in\r\n")),
                "NOOP" => break,
                _ => drop(s.write_all(b"200 ok\r\n")),
            }
        }
        for i in 0..300u32 {
            if s.write_all(format!("110 still busy {i}\r\n").as_bytes())
                .is_err()
            {
                return vec![format!("proxy hung up after {i} lines")];
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        vec!["proxy never hung up".into()]
    });
    let proxy = Proxy::start(server.port, "TimeOut 3");
    let mut c = Ctrl::login(proxy.port, "u", "p");
    let started = Instant::now();
    c.send_raw(b"NOOP\r\n");
    let replies = c
        .replies_until_eof(20)
        .expect("proxy kept the connection open");
    assert!(
        replies.last().is_some_and(|r| r.code == 421),
        "{replies:?}\n{}",
        proxy.output()
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        wait_until(START_SECS, || proxy.sessions().is_empty()),
        "session left behind"
    );
}

/// A hostile server answers SYST with three replies, the last two a
/// passive-mode address of its choosing, and says another 227 while the
/// client is idle: none reaches the client, whose PASV gets the proxy's
/// own listener and whose next commands get their own answers.
#[test]
fn surplus_and_unsolicited_server_replies_never_reach_the_client() {
    if skip_unless_ftpgate("surplus_and_unsolicited_server_replies_never_reach_the_client") {
        return;
    }
    let server = FakeServer::start(|mut s| {
        let _ = s.write_all(b"220 fake\r\n");
        loop {
            let line = fake_read_line(&mut s);
            if line.is_empty() {
                return vec!["eof".into()];
            }
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            let answer: &[u8] = match verb.as_str() {
                "USER" => b"331 pass\r\n",
                "PASS" => b"230 in\r\n227 Entering Passive Mode (10,9,9,9,1,2)\r\n",
                "SYST" => {
                    b"215 UNIX\r\n227 Entering Passive Mode (10,9,9,9,1,2)\r\n\
                            229 Entering Extended Passive Mode (|||4444|)\r\n"
                }
                "QUIT" => b"221 bye\r\n",
                _ => b"200 ok\r\n",
            };
            let _ = s.write_all(answer);
        }
    });
    let proxy = Proxy::start(server.port, "");
    let mut c = Ctrl::login(proxy.port, "u", "p");
    assert_eq!(c.cmd("SYST").code, 215);
    let r = c.cmd("PASV");
    assert_eq!(r.code, 227, "{r:?}");
    assert!(r.text().contains("127,0,0,1"), "{r:?}");
    let r = c.cmd("NOOP");
    assert_eq!(r.code, 200, "{r:?}\n{}", proxy.output());
    assert_eq!(c.cmd("QUIT").code, 221);
    let log = proxy.log_text();
    assert!(log.contains("unsolicited server reply dropped"), "{log}");
}

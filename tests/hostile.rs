//! Hostile input on the control connections: none of it may crash the
//! proxy, make it spin, hang past TimeOut, or disturb the session.
//!
//! Real servers cannot be made to misbehave, so the tests of a server that
//! sends an endless reply or stops reading use a scripted fake server
//! (`FakeServer`); everything on the client side is a raw socket.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

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
    let r = c.cmd("PASV");
    assert_eq!(r.code, 227, "{r:?}");
    let port = pasv_port(&r);
    let data = TcpStream::connect(("127.0.0.1", port)).unwrap();
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
    let r = c.cmd("PASV");
    assert_eq!(r.code, 227, "{r:?}");
    let mut data = TcpStream::connect(("127.0.0.1", pasv_port(&r))).unwrap();
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

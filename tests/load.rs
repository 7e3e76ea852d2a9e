//! Load: 40 concurrent sessions, each moving a 5 MB file up and back down
//! byte-exact, in mixed modes (PASV, EPSV, PORT, EPRT; STOR and RETR),
//! against vsftpd through two proxies; afterwards no proxy process is left
//! behind under the socat guard. (pyftpdlib is single-threaded Python: under
//! this load on two cores it times out its own data channels after 30 s,
//! which says nothing about the proxy.)

mod common;

use std::thread;

use common::*;

const SESSIONS: usize = 40;
const SIZE: usize = 5 << 20;
const MODES: [&str; 4] = ["PASV", "PORT", "EPSV", "EPRT"];

#[test]
fn forty_concurrent_sessions_move_5mb_each_byte_exact() {
    let servers = [FtpServer::vsftpd(), FtpServer::vsftpd()];
    let proxies: Vec<Proxy> = servers
        .iter()
        .map(|s| Proxy::start(s.port, "TimeOut 120"))
        .collect();
    let jobs: Vec<(usize, u16, String, String, String)> = (0..SESSIONS)
        .map(|i| {
            let which = i % 2;
            let s = &servers[which];
            (
                i,
                proxies[which].port,
                s.user().to_string(),
                s.pass().to_string(),
                s.sub.to_string(),
            )
        })
        .collect();
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|(i, port, user, pass, sub)| {
            thread::spawn(move || {
                let mode = MODES[(i / 2) % MODES.len()];
                // A distinct name prefix per session: the script names its
                // file "modes-0-MODE.bin" under `sub`.
                let sub = format!("{sub}s{i}-");
                let ran = python_script(
                    FTPLIB_MODES,
                    &[
                        "127.0.0.1",
                        &port.to_string(),
                        &user,
                        &pass,
                        &sub,
                        &SIZE.to_string(),
                        mode,
                    ],
                );
                (i, mode, ran)
            })
        })
        .collect();
    let mut failures = Vec::new();
    for h in handles {
        let (i, mode, ran) = h.join().unwrap();
        if !ran.ok() || !ran.stdout.contains(&format!("ok {mode}")) {
            failures.push(format!("session {i} ({mode}): {}", ran.describe()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {SESSIONS} sessions failed:\n{}\n{}\n{}",
        failures.len(),
        failures.join("\n"),
        proxies[0].output(),
        proxies[1].output()
    );
    // Every upload landed whole on the servers too.
    for (i, s) in servers.iter().enumerate() {
        let n = std::fs::read_dir(&s.root)
            .unwrap()
            .flatten()
            .filter(|e| {
                e.metadata()
                    .map(|m| m.len() as usize == SIZE)
                    .unwrap_or(false)
            })
            .count();
        assert_eq!(n, SESSIONS / 2, "server {i}: {n} complete uploads");
    }
    for p in &proxies {
        assert!(
            wait_until(30, || p.sessions().is_empty()),
            "proxy processes left behind under socat {}: {:?}",
            p.guard_pid(),
            p.sessions()
        );
    }
}

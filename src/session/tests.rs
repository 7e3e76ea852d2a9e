//! Transcript tests: whole sessions as "client sends ... / server replies
//! ... / expect these actions", without sockets or clocks, in microseconds.
//! Grouped by what the session waits for. See [`T`] for the helper.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;

/// The client, the proxy's address towards it, and the server.
const CLIENT: &str = "192.0.2.10:40000";
const LOCAL: &str = "192.0.2.1:21";
const SERVER: &str = "198.51.100.7:21";
/// The proxy's address towards the server.
const SERVER_LOCAL: &str = "198.51.100.1:50000";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A configuration for the whole test run (sessions borrow it).
fn config(extra: &str) -> &'static Config {
    let text = format!("DestinationAddress 198.51.100.7\n{extra}\n");
    Box::leak(Box::new(
        Config::parse_str("test.conf", &text).unwrap_or_else(|e| panic!("{e:?}")),
    ))
}

/// One session under test: feed events, read the actions they caused.
struct T {
    s: Session<'static>,
    now: Instant,
    /// Actions not looked at yet.
    out: Vec<Action>,
}

impl T {
    /// A session with `extra` configuration lines; the greeting and the
    /// early-connection request are taken already.
    fn new(extra: &str) -> T {
        T::with(config(extra), None)
    }

    fn with(cfg: &'static Config, original_dst: Option<SocketAddr>) -> T {
        let now = Instant::now();
        let s = Session::new(
            Params {
                cfg,
                client_addr: sa(CLIENT),
                local_addr: sa(LOCAL),
                translated: None,
                greeting: b"220 ftpgate ready\r\n".to_vec(),
                original_dst,
                proxy_self: vec![sa(LOCAL)],
                early: None,
                log_level: Level::Dbg,
            },
            now,
        );
        let mut t = T {
            s,
            now,
            out: Vec::new(),
        };
        t.collect();
        assert_eq!(t.client_lines(), ["220 ftpgate ready"]);
        assert!(t.take(|a| matches!(a, Action::ConnectEarly)));
        t.event(Event::EarlyConnecting(None));
        t
    }

    fn collect(&mut self) {
        while let Some(a) = self.s.poll_action() {
            self.out.push(a);
        }
    }

    fn event(&mut self, e: Event<'_>) {
        self.s.handle(self.now, e);
        self.collect();
    }

    /// The client sends these lines (CRLF added to each), in one packet.
    fn client(&mut self, lines: &[&str]) {
        let mut bytes = Vec::new();
        for l in lines {
            bytes.extend_from_slice(l.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        self.event(Event::ClientBytes(&bytes));
    }

    /// The server sends these lines (CRLF added to each), in one packet.
    fn server(&mut self, lines: &[&str]) {
        let mut bytes = Vec::new();
        for l in lines {
            bytes.extend_from_slice(l.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        self.event(Event::ServerBytes(&bytes));
    }

    /// Time passes; the timer fires if a deadline is reached.
    fn wait(&mut self, d: Duration) {
        self.now += d;
        self.event(Event::Timer);
    }

    /// Remove the first action matching `f`; false if none.
    fn take(&mut self, f: impl Fn(&Action) -> bool) -> bool {
        match self.out.iter().position(f) {
            Some(i) => {
                self.out.remove(i);
                true
            }
            None => false,
        }
    }

    /// Remove and return every action of one kind, as text lines.
    fn lines(&mut self, client: bool) -> Vec<String> {
        let mut lines = Vec::new();
        self.out.retain(|a| match (a, client) {
            (Action::SendClient(b), true) | (Action::SendServer(b), false) => {
                let text = String::from_utf8_lossy(b);
                lines.extend(
                    text.split("\r\n")
                        .filter(|l| !l.is_empty())
                        .map(String::from),
                );
                false
            }
            _ => true,
        });
        lines
    }

    /// What went to the client since the last look, line by line.
    fn client_lines(&mut self) -> Vec<String> {
        self.lines(true)
    }

    /// What went to the server since the last look, line by line.
    fn server_lines(&mut self) -> Vec<String> {
        self.lines(false)
    }

    /// The reply codes the client got since the last look.
    fn codes(&mut self) -> Vec<String> {
        self.client_lines()
            .into_iter()
            .filter(|l| l.len() >= 4 && l.as_bytes()[3] == b' ')
            .map(|l| l[..3].to_string())
            .collect()
    }

    /// Every log line since the last look (removed).
    fn logs(&mut self) -> Vec<String> {
        let mut logs = Vec::new();
        self.out.retain(|a| match a {
            Action::Log(_, m) => {
                logs.push(m.clone());
                false
            }
            _ => true,
        });
        logs
    }

    /// The actions left once log lines are dropped.
    fn rest(&mut self) -> Vec<Action> {
        self.logs();
        std::mem::take(&mut self.out)
    }

    /// Answer the resolve and connect the login asks for, greet.
    fn connect(&mut self) {
        let dest = sa(SERVER);
        assert!(
            self.take(|a| matches!(a, Action::Resolve { .. })),
            "no resolve: {:?}",
            self.out
        );
        self.event(Event::Resolved(Ok(vec![dest])));
        assert!(
            self.take(|a| matches!(a, Action::ConnectServer { dest: d, .. } if *d == dest)),
            "no connect: {:?}",
            self.out
        );
        self.event(Event::ServerConnected {
            local: sa(SERVER_LOCAL),
        });
        self.server(&["220 server ready"]);
    }

    /// A whole login as `anon`: USER, PASS, 230.
    fn login(&mut self) {
        self.client(&["USER anon"]);
        self.connect();
        assert_eq!(self.server_lines(), ["USER anon"]);
        self.server(&["331 password please"]);
        assert_eq!(self.codes(), ["331"]);
        self.client(&["PASS secret"]);
        assert_eq!(self.server_lines(), ["PASS secret"]);
        self.server(&["230 logged in"]);
        assert_eq!(self.codes(), ["230"]);
        self.logs();
    }

    /// The action that ended the session, if it ended.
    fn end(&mut self) -> Option<End> {
        self.out.iter().find_map(|a| match a {
            Action::Close(e) => Some(e.clone()),
            _ => None,
        })
    }
}

// ----- login --------------------------------------------------------------------

#[test]
fn a_plain_login_connects_and_relays_user_and_pass() {
    let mut t = T::new("");
    t.login();
    assert!(t.rest().is_empty());
    t.client(&["PWD"]);
    assert_eq!(t.server_lines(), ["PWD"]);
    t.server(&["257 \"/\""]);
    assert_eq!(t.codes(), ["257"]);
}

#[test]
fn the_password_is_never_logged() {
    let mut t = T::new("");
    t.client(&["USER anon"]);
    t.connect();
    t.server(&["331 password please"]);
    t.client(&["PASS hunter2"]);
    let logs = t.logs();
    assert!(logs.iter().any(|l| l.contains("PASS ****")), "{logs:?}");
    assert!(!logs.iter().any(|l| l.contains("hunter2")), "{logs:?}");
}

#[test]
fn an_idle_logged_in_session_times_out_with_421_and_quits_the_server() {
    let mut t = T::new("TimeOut 60");
    t.login();
    t.wait(Duration::from_secs(59));
    assert!(t.rest().is_empty());
    t.wait(Duration::from_secs(1));
    assert_eq!(t.codes(), ["421"]);
    assert_eq!(t.server_lines(), ["QUIT"]);
    assert_eq!(t.end(), Some(End::Timeout));
}

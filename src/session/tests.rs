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
/// The proxy's passive listener offered to the client (227 ...,195,81).
const PASV_ADDR: &str = "192.0.2.1:50001";
/// The client's own data port, as its PORT names it, and where its data
/// connection comes from.
const CLIENT_PORT: &str = "PORT 192,0,2,10,156,65";
const CLIENT_DATA: &str = "192.0.2.10:40001";
/// The server's passive data port (227 ...,200,10) and its active source.
const SERVER_227: &str = "227 Entering Passive Mode (198,51,100,7,200,10)";
const SERVER_DATA: &str = "198.51.100.7:51210";
const SERVER_ACTIVE: &str = "198.51.100.7:20";
/// The proxy's listener announced to the server (PORT ...,195,180).
const SERVER_LISTEN: &str = "198.51.100.1:50100";
/// Somebody else.
const THIEF: &str = "203.0.113.66:4444";

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
    /// Actions not looked at yet (audit records aside).
    out: Vec<Action>,
    /// Audit records, in order (see the audit tests).
    audits: Vec<AuditRecord>,
    /// What CheckServerData finds (true unless a test says otherwise).
    server_data_open: bool,
    /// The proxy's own PASV/EPSV to the server, sent as soon as the
    /// client's PASV was answered (the server side prepared ahead), taken
    /// by `pasv()` for `server_pasv()`.
    server_pasv_sent: bool,
}

impl T {
    /// A session with `extra` configuration lines; the greeting and the
    /// early-connection request are taken already.
    fn new(extra: &str) -> T {
        T::with(config(extra), None)
    }

    fn with(cfg: &'static Config, original_dst: Option<SocketAddr>) -> T {
        T::with_params(|p| Params { original_dst, ..p }, cfg)
    }

    /// A session whose parameters `change` alters from the usual ones.
    fn with_params(change: impl FnOnce(Params) -> Params, cfg: &'static Config) -> T {
        let now = crate::sys::monotonic();
        let s = Session::new(
            change(Params {
                cfg,
                client_addr: sa(CLIENT),
                local_addr: sa(LOCAL),
                translated: None,
                greeting: b"220 ftpgate ready\r\n".to_vec(),
                original_dst: None,
                proxy_self: vec![sa(LOCAL)],
                own_addresses: Vec::new(),
                early: None,
                log_level: Level::Dbg,
                client_tls: false,
            }),
            now,
        );
        let mut t = T {
            s,
            now,
            out: Vec::new(),
            audits: Vec::new(),
            server_data_open: true,
            server_pasv_sent: false,
        };
        t.collect();
        assert_eq!(t.client_lines(), ["220 ftpgate ready"]);
        assert!(t.take(|a| matches!(a, Action::ConnectEarly)));
        t.event(Event::EarlyConnecting(None));
        t
    }

    fn collect(&mut self) {
        let mut check = false;
        while let Some(a) = self.s.poll_action() {
            match a {
                Action::Audit(r) => self.audits.push(*r),
                // A prepared server data connection is still open, as the
                // driver would find (tests of a closed one answer it
                // themselves with `check_open(false)`).
                Action::CheckServerData if self.server_data_open => check = true,
                a => self.out.push(a),
            }
        }
        if check {
            self.event(Event::ServerDataChecked { alive: true });
        }
    }

    /// The audit events since the last look (removed).
    fn audit_events(&mut self) -> Vec<AuditEvent> {
        std::mem::take(&mut self.audits)
            .into_iter()
            .map(|r| r.event)
            .collect()
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

    /// A logged-in session with `extra` configuration lines.
    fn logged_in(extra: &str) -> T {
        let mut t = T::new(extra);
        t.login();
        t
    }

    /// Time passes: `n` seconds.
    fn secs(&mut self, n: u64) {
        self.wait(Duration::from_secs(n));
    }

    /// The client sends raw bytes.
    fn client_raw(&mut self, bytes: &[u8]) {
        self.event(Event::ClientBytes(bytes));
    }

    /// The server sends raw bytes.
    fn server_raw(&mut self, bytes: &[u8]) {
        self.event(Event::ServerBytes(bytes));
    }

    /// Remove this exact action; false if it is not there.
    fn took(&mut self, a: Action) -> bool {
        self.take(|x| *x == a)
    }

    /// The client's PASV: the listener is opened on the control
    /// connection's address and offered in a 227.
    fn pasv(&mut self) {
        self.client(&["PASV"]);
        let listen = Action::Listen {
            listener: Listener::Client,
            ip: sa(LOCAL).ip(),
            ports: None,
        };
        assert!(self.took(listen), "no client listener: {:?}", self.out);
        self.event(Event::Listening {
            listener: Listener::Client,
            addr: sa(PASV_ADDR),
        });
        assert_eq!(
            self.client_lines(),
            ["227 Entering Passive Mode (192,0,2,1,195,81)."]
        );
        // Passive towards the server: the proxy asks it at once.
        self.server_pasv_sent =
            self.take(|a| matches!(a, Action::SendServer(l) if l.as_slice() == b"PASV\r\n"));
    }

    /// The server's side prepared after the client's PASV (passive towards
    /// the server): its 227 and the connect to it.
    fn complete_prefetch(&mut self) {
        assert!(
            std::mem::take(&mut self.server_pasv_sent),
            "no PASV to the server"
        );
        self.server(&[SERVER_227]);
        assert!(
            self.take(|a| matches!(
                a,
                Action::Connect {
                    peer: Peer::Server,
                    ..
                }
            )),
            "no connect to the server's data port: {:?}",
            self.out
        );
        self.event(Event::DataConnected(Peer::Server));
    }

    /// The client's PORT naming its own address: 200, nothing else.
    fn port(&mut self) {
        self.client(&[CLIENT_PORT]);
        assert_eq!(self.codes(), ["200"]);
    }

    /// The server answers the proxy's PASV with its own data port and the
    /// proxy connects there.
    fn server_pasv(&mut self) {
        if !std::mem::take(&mut self.server_pasv_sent) {
            assert_eq!(self.server_lines(), ["PASV"]);
        }
        self.server(&[SERVER_227]);
        assert!(
            self.take(
                |a| matches!(a, Action::Connect { peer: Peer::Server, target, .. }
                if *target == sa(SERVER_DATA))
            ),
            "no connect to the server's data port: {:?}",
            self.out
        );
        self.event(Event::DataConnected(Peer::Server));
    }

    /// The proxy announces its own listener to the server with PORT.
    fn server_port(&mut self) {
        let listen = Action::Listen {
            listener: Listener::Server,
            ip: sa(SERVER_LOCAL).ip(),
            ports: None,
        };
        assert!(self.took(listen), "no server listener: {:?}", self.out);
        self.event(Event::Listening {
            listener: Listener::Server,
            addr: sa(SERVER_LISTEN),
        });
        assert_eq!(self.server_lines(), ["PORT 198,51,100,1,195,180"]);
        self.server(&["200 PORT ok"]);
    }

    /// A second PASV: the old listener and a connection held from it are
    /// closed before the new listener opens.
    fn pasv_again_closes(&mut self) {
        self.complete_prefetch();
        self.client(&["PASV"]);
        assert!(self.took(Action::DropServerData), "{:?}", self.out);
        assert!(
            self.took(Action::CloseListener(Listener::Client)),
            "{:?}",
            self.out
        );
        assert!(self.took(Action::CloseData), "{:?}", self.out);
        self.event(Event::Listening {
            listener: Listener::Client,
            addr: sa(PASV_ADDR),
        });
        self.rest();
    }

    /// The client connects to the passive listener from its own address.
    fn client_connects(&mut self) {
        self.event(Event::Accepted {
            listener: Listener::Client,
            from: sa(CLIENT_DATA),
        });
        assert!(
            self.took(Action::KeepAccepted(Listener::Client)),
            "{:?}",
            self.out
        );
    }

    /// PASV, then `cmd` (default mode: PASV to the server), up to the 150
    /// relayed; the proxy then waits for the client's data connection.
    fn until_150(&mut self, cmd: &str) {
        self.pasv();
        self.client(&[cmd]);
        self.server_pasv();
        assert_eq!(self.server_lines(), [cmd]);
        self.server(&["150 here it comes"]);
        assert_eq!(self.codes(), ["150"]);
    }

    /// A whole transfer set-up in the default mode: PASV, `cmd`, 150, the
    /// client's data connection, the pump started.
    fn transfer(&mut self, cmd: &str, way: Direction) {
        self.until_150(cmd);
        self.client_connects();
        // The listener has served its one connection.
        assert!(self.took(Action::CloseListener(Listener::Client)));
        assert!(self.took(plain_pump(way, None)), "{:?}", self.out);
        self.logs();
        assert!(self.s.interest().pump);
    }

    /// The pump stopped.
    fn ended(&mut self, bytes: u64, finished: bool) {
        self.event(Event::TransferEnded {
            bytes,
            finished,
            note: None,
        });
    }

    /// The client sends NOOP, the server says 200, the client gets it: the
    /// session goes on.
    fn noop_works(&mut self) {
        self.client(&["NOOP"]);
        assert_eq!(self.server_lines(), ["NOOP"]);
        self.server(&["200 NOOP ok"]);
        assert_eq!(self.codes(), ["200"]);
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
fn a_malformed_or_unknown_line_while_the_password_is_expected_is_masked() {
    let lines: &[&[u8]] = &[
        b"PA\xffSS hunter2\r\n",
        b"\xef\xbb\xbfPASS hunter2\r\n",
        b"PASS\x00hunter2\r\n",
        b"XPASS hunter2\r\n",
        b"hunter2\r\n",
        b"hunter2 x\x00\r\n",
    ];
    for &line in lines {
        let mut t = T::new("");
        t.client(&["USER anon"]);
        t.connect();
        t.server(&["331 password please"]);
        assert_eq!(t.codes(), ["331"]);
        t.logs();
        t.client_raw(line);
        assert_eq!(t.codes(), ["500"], "{line:?}");
        let logs = t.logs();
        assert!(!logs.is_empty(), "{line:?}: not logged");
        assert!(
            !logs.iter().any(|l| l.contains("hunter2")),
            "{line:?}: {logs:?}"
        );
    }
    // After the login, a malformed line is shown as it was (escaped).
    let mut t = T::logged_in("");
    t.client_raw(b"CWD a\x00b\r\n");
    let logs = t.logs();
    assert!(logs.iter().any(|l| l.contains("CWD a\\x00b")), "{logs:?}");
}

#[test]
fn a_malformed_line_while_the_proxy_asks_for_the_password_is_masked() {
    let mut t = T::new(LDAP_AUTH);
    t.client(&["USER bob"]);
    assert!(t.take(|a| matches!(a, Action::LookUp { .. })));
    let bob = entry("cn=bob,dc=example", &[("userPassword", "s3cret-pw")]);
    t.event(found(None, Some(bob)));
    assert_eq!(t.codes(), ["331"]);
    t.logs();
    t.client_raw(b"PA\xffSS hunter2\r\n");
    assert_eq!(t.codes(), ["500"]);
    let logs = t.logs();
    assert!(!logs.iter().any(|l| l.contains("hunter2")), "{logs:?}");
}

// twin of tests/session.rs::idle_session_after_login_gets_421_and_is_closed_after_timeout
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

#[test]
fn a_magic_user_logs_into_the_server_it_names_and_the_server_sees_only_the_user() {
    let mut t = T::new("AllowMagicUser yes");
    t.client(&["USER anon@ftp.example.org:2121"]);
    assert!(
        t.took(Action::Resolve {
            host: "ftp.example.org".into(),
            port: 2121
        }),
        "{:?}",
        t.out
    );
    let dest = sa("198.51.100.9:2121");
    t.event(Event::Resolved(Ok(vec![dest])));
    assert!(
        t.take(|a| matches!(a, Action::ConnectServer { dest: d, early: false, .. } if *d == dest)),
        "{:?}",
        t.out
    );
    t.event(Event::ServerConnected {
        local: sa(SERVER_LOCAL),
    });
    assert!(t.server_lines().is_empty(), "USER before the greeting");
    t.server(&["220 other server ready"]);
    assert_eq!(t.server_lines(), ["USER anon"]);
    t.server(&["331 password please"]);
    assert_eq!(t.codes(), ["331"]);
}

#[test]
fn a_magic_user_is_an_ordinary_name_without_allow_magic_user() {
    let mut t = T::new("");
    t.client(&["USER anon@ftp.example.org"]);
    // The configured destination, and the whole name sent on.
    assert!(
        t.took(Action::Resolve {
            host: "198.51.100.7".into(),
            port: 21
        }),
        "{:?}",
        t.out
    );
    t.event(Event::Resolved(Ok(vec![sa(SERVER)])));
    t.event(Event::ServerConnected {
        local: sa(SERVER_LOCAL),
    });
    t.server(&["220 hi"]);
    assert_eq!(t.server_lines(), ["USER anon@ftp.example.org"]);
}

// twin of tests/session.rs::magic_user_to_loopback_is_refused_without_allowed_destinations
#[test]
fn a_magic_user_naming_loopback_is_refused_530_and_never_connected() {
    let mut t = T::new("AllowMagicUser yes");
    t.client(&["USER anon@127.0.0.1:2121"]);
    assert!(t.take(|a| matches!(a, Action::Resolve { .. })));
    t.event(Event::Resolved(Ok(vec![sa("127.0.0.1:2121")])));
    assert_eq!(t.codes(), ["530"]);
    let rest = t.rest();
    assert!(
        !rest
            .iter()
            .any(|a| matches!(a, Action::ConnectServer { .. } | Action::SendServer(_))),
        "{rest:?}"
    );
    assert_eq!(t.end(), None);
}

// Issue 14 item 8(c): destination look-ups per session are bounded like
// directory look-ups: over the bound, 421 and the end.
#[test]
fn too_many_destination_look_ups_in_one_session_end_it_with_421() {
    let mut t = T::new("AllowMagicUser yes");
    for i in 0..crate::limits::MAX_DESTINATION_LOOKUPS {
        t.client(&[&format!("USER anon@host{i}.example:2121")]);
        assert!(t.take(|a| matches!(a, Action::Resolve { .. })), "{i}");
        t.event(Event::Resolved(Err("no such host".into())));
        assert_eq!(t.end(), None);
        t.rest();
    }
    t.client(&["USER anon@one-more.example:2121"]);
    assert_eq!(t.codes(), ["421"]);
    assert!(!t.out.iter().any(|a| matches!(a, Action::Resolve { .. })));
    assert_eq!(t.end(), Some(End::TooManyResolves));
}

// twin of tests/session.rs::magic_user_naming_the_proxy_itself_is_refused
#[test]
fn a_magic_user_naming_the_proxy_itself_is_refused_even_when_allowed() {
    let mut t = T::new("AllowMagicUser yes\nAllowedDestinations 192.0.2.0/24");
    t.client(&["USER anon@192.0.2.1:21"]);
    assert!(t.take(|a| matches!(a, Action::Resolve { .. })));
    t.event(Event::Resolved(Ok(vec![sa(LOCAL)])));
    let lines = t.client_lines();
    assert!(
        lines.len() == 1 && lines[0].starts_with("530") && lines[0].contains("proxy itself"),
        "{lines:?}"
    );
    assert!(
        t.logs()
            .iter()
            .any(|l| l.contains("destination is the proxy itself")),
    );
    assert!(
        !t.rest()
            .iter()
            .any(|a| matches!(a, Action::ConnectServer { .. }))
    );
}

#[test]
fn allowed_destinations_refuses_a_magic_user_outside_the_list_and_admits_one_inside() {
    let mut t = T::new("AllowMagicUser yes\nAllowedDestinations 198.51.100.0/24");
    t.client(&["USER anon@203.0.113.5"]);
    assert!(t.take(|a| matches!(a, Action::Resolve { .. })));
    t.event(Event::Resolved(Ok(vec![sa("203.0.113.5:21")])));
    assert_eq!(t.codes(), ["530"]);
    assert!(
        !t.rest()
            .iter()
            .any(|a| matches!(a, Action::ConnectServer { .. }))
    );
    // The login may be tried again, inside the list.
    t.client(&["USER anon@198.51.100.9"]);
    assert!(t.take(|a| matches!(a, Action::Resolve { .. })));
    t.event(Event::Resolved(Ok(vec![sa("198.51.100.9:21")])));
    assert!(
        t.take(
            |a| matches!(a, Action::ConnectServer { dest, .. } if *dest == sa("198.51.100.9:21"))
        ),
        "{:?}",
        t.out
    );
}

// twin of tests/session.rs::a_second_user_after_a_magic_login_cannot_change_the_server
#[test]
fn a_second_user_with_the_same_name_is_relayed_and_another_is_refused_530_unsent() {
    let mut t = T::new("AllowMagicUser yes\nAllowedDestinations 198.51.100.0/24");
    t.client(&["USER anon@198.51.100.7"]);
    t.connect();
    assert_eq!(t.server_lines(), ["USER anon"]);
    t.server(&["331 password please"]);
    t.client(&["PASS secret"]);
    t.server(&["230 logged in"]);
    assert_eq!(t.codes(), ["331", "230"]);
    t.server_lines();
    t.rest();
    for other in [
        "USER anon@198.51.100.9",
        "USER anon@198.51.100.7:2121",
        "USER other",
        "USER other@198.51.100.7",
    ] {
        t.client(&[other]);
        assert_eq!(t.codes(), ["530"], "{other}");
        let rest = t.rest();
        assert!(
            !rest.iter().any(|a| matches!(
                a,
                Action::SendServer(_) | Action::Resolve { .. } | Action::ConnectServer { .. }
            )),
            "{other}: {rest:?}"
        );
    }
    t.client(&["USER anon"]);
    assert_eq!(t.server_lines(), ["USER anon"]);
    t.server(&["331 password please"]);
    assert_eq!(t.codes(), ["331"]);
}

#[test]
fn a_421_greeting_gets_the_client_421_and_nothing_is_sent_to_the_server() {
    let mut t = T::new("");
    t.client(&["USER anon"]);
    let dest = sa(SERVER);
    assert!(t.take(|a| matches!(a, Action::Resolve { .. })));
    t.event(Event::Resolved(Ok(vec![dest])));
    assert!(t.take(|a| matches!(a, Action::ConnectServer { .. })));
    t.event(Event::ServerConnected {
        local: sa(SERVER_LOCAL),
    });
    t.server(&["421 Too many users"]);
    assert_eq!(t.codes(), ["421"]);
    assert!(t.server_lines().is_empty());
    assert_eq!(t.end(), Some(End::Unreachable("greeting 421".into())));
}

// twin of tests/session.rs::unreachable_destination_answers_421_to_user_and_the_session_ends
#[test]
fn an_unreachable_destination_answers_421_to_user_and_the_session_ends() {
    let mut t = T::new("");
    t.client(&["USER anon"]);
    assert!(t.take(|a| matches!(a, Action::Resolve { .. })));
    t.event(Event::Resolved(Ok(vec![sa(SERVER)])));
    assert!(t.take(|a| matches!(a, Action::ConnectServer { .. })));
    t.event(Event::ServerConnectFailed("connection refused".into()));
    assert_eq!(t.codes(), ["421"]);
    assert!(matches!(t.end(), Some(End::Unreachable(_))), "{:?}", t.out);
}

// ----- login: the LDAP directory -------------------------------------------------

const LDAP: &str = "LDAPServer 127.0.0.1\nLDAPBaseDN dc=example";

fn entry(dn: &str, attributes: &[(&str, &str)]) -> crate::ldap::Entry {
    crate::ldap::Entry {
        dn: dn.as_bytes().to_vec(),
        attributes: attributes
            .iter()
            .map(|(n, v)| crate::ldap::Attribute {
                name: n.as_bytes().to_vec(),
                values: vec![v.as_bytes().to_vec()],
            })
            .collect(),
    }
}

fn found(profile: Option<crate::ldap::Entry>, auth: Option<crate::ldap::Entry>) -> Event<'static> {
    Event::LookedUp(Ok(crate::ldap::Found { profile, auth }))
}

#[test]
fn a_directory_profile_chooses_the_users_server() {
    let mut t = T::new(LDAP);
    t.client(&["USER bob"]);
    assert!(t.took(Action::LookUp {
        user: b"bob".to_vec(),
        password: None,
    }));
    assert!(t.rest().is_empty(), "nothing before the directory answers");
    let bob = entry(
        "cn=bob,dc=example",
        &[("cn", "bob"), ("DestinationAddress", "198.51.100.9")],
    );
    t.event(found(Some(bob), None));
    assert!(
        t.took(Action::Resolve {
            host: "198.51.100.9".into(),
            port: 21
        }),
        "{:?}",
        t.out
    );
}

#[test]
fn a_user_not_in_the_directory_gets_the_files_values() {
    let mut t = T::new(LDAP);
    t.client(&["USER nobody"]);
    assert!(t.take(|a| matches!(a, Action::LookUp { .. })));
    t.event(found(None, None));
    assert!(
        t.took(Action::Resolve {
            host: "198.51.100.7".into(),
            port: 21
        }),
        "{:?}",
        t.out
    );
}

#[test]
fn an_invalid_directory_profile_is_refused_530_and_not_replaced_by_the_files_values() {
    let mut t = T::new(LDAP);
    t.client(&["USER bob"]);
    assert!(t.take(|a| matches!(a, Action::LookUp { .. })));
    t.event(found(
        Some(entry("cn=bob,dc=example", &[("TimeOut", "soon")])),
        None,
    ));
    assert_eq!(t.codes(), ["530"]);
    assert!(!t.rest().iter().any(|a| matches!(a, Action::Resolve { .. })));
    assert_eq!(t.end(), None);
}

#[test]
fn an_unusable_directory_ends_the_session_with_421() {
    let mut t = T::new(LDAP);
    t.client(&["USER bob"]);
    assert!(t.take(|a| matches!(a, Action::LookUp { .. })));
    t.event(Event::LookedUp(Err(crate::ldap::LdapError::Connect(
        "refused".into(),
    ))));
    assert_eq!(t.codes(), ["421"]);
    assert!(matches!(t.end(), Some(End::Directory(_))), "{:?}", t.out);
}

const LDAP_AUTH: &str =
    "LDAPServer 127.0.0.1\nLDAPBaseDN dc=example\nUserAuthType ldap\nLDAPAuthPWAttr userPassword";

#[test]
fn proxy_authentication_by_compare_answers_user_itself_and_logs_in_after_a_good_pass() {
    let mut t = T::new(LDAP_AUTH);
    t.client(&["USER bob"]);
    assert!(t.take(|a| matches!(a, Action::LookUp { .. })));
    let bob = entry("cn=bob,dc=example", &[("userPassword", "s3cret-pw")]);
    t.event(found(None, Some(bob)));
    // The proxy's own 331; nothing towards the server yet.
    assert_eq!(t.codes(), ["331"]);
    assert!(
        !t.rest()
            .iter()
            .any(|a| matches!(a, Action::Resolve { .. } | Action::SendServer(_)))
    );
    t.client(&["PASS wrong-one"]);
    assert_eq!(t.codes(), ["530"]);
    assert!(
        !t.rest()
            .iter()
            .any(|a| matches!(a, Action::Resolve { .. } | Action::SendServer(_)))
    );
    // Back to USER after a failure.
    t.client(&["USER bob"]);
    assert!(t.take(|a| matches!(a, Action::LookUp { .. })));
    t.event(found(
        None,
        Some(entry("cn=bob,dc=example", &[("userPassword", "s3cret-pw")])),
    ));
    assert_eq!(t.codes(), ["331"]);
    t.client(&["PASS s3cret-pw"]);
    t.connect();
    assert_eq!(t.server_lines(), ["USER bob"]);
    t.server(&["331 password please"]);
    // The password goes to the server without the client being asked again.
    assert_eq!(t.server_lines(), ["PASS s3cret-pw"]);
    assert!(t.codes().is_empty());
    t.server(&["230 logged in"]);
    assert_eq!(t.codes(), ["230"]);
}

#[test]
fn proxy_authentication_by_bind_asks_the_directory_and_a_refused_bind_is_530() {
    let mut t = T::new("LDAPServer 127.0.0.1\nLDAPBaseDN dc=example\nUserAuthType ldap");
    t.client(&["USER bob"]);
    assert!(t.take(|a| matches!(a, Action::LookUp { .. })));
    t.event(found(None, Some(entry("cn=bob,dc=example", &[]))));
    assert_eq!(t.codes(), ["331"]);
    t.client(&["PASS guess"]);
    assert!(
        t.took(Action::Bind {
            dn: b"cn=bob,dc=example".to_vec(),
            password: b"guess".to_vec()
        }),
        "{:?}",
        t.out
    );
    t.event(Event::Bound(Ok(Err(49))));
    assert_eq!(t.codes(), ["530"]);
    assert!(!t.rest().iter().any(|a| matches!(a, Action::Resolve { .. })));
}

const LDAP_BIND_AS_USER: &str = "LDAPServer 127.0.0.1\nLDAPBaseDN dc=example\n\
    LDAPBindDN cn=%s,dc=example\nLDAPBindPW not-this\nUserAuthType ldap";

#[test]
fn binding_as_the_user_waits_for_pass_and_binds_with_the_users_password() {
    let mut t = T::new(LDAP_BIND_AS_USER);
    t.client(&["USER bob"]);
    // The proxy's own 331; the directory is not asked before PASS.
    assert_eq!(t.codes(), ["331"]);
    assert!(
        !t.rest()
            .iter()
            .any(|a| matches!(a, Action::LookUp { .. } | Action::Resolve { .. })),
        "{:?}",
        t.out
    );
    t.client(&["PASS s3cret-pw"]);
    assert!(
        t.took(Action::LookUp {
            user: b"bob".to_vec(),
            password: Some(b"s3cret-pw".to_vec()),
        }),
        "{:?}",
        t.out
    );
    let bob = entry(
        "cn=bob,dc=example",
        &[("cn", "bob"), ("DestinationAddress", "198.51.100.9")],
    );
    t.event(found(Some(bob.clone()), Some(bob)));
    assert!(
        t.took(Action::Resolve {
            host: "198.51.100.9".into(),
            port: 21
        }),
        "{:?}",
        t.out
    );
}

#[test]
fn binding_as_the_user_refused_for_the_credentials_is_530_and_the_directory_down_is_421() {
    let mut t = T::new(LDAP_BIND_AS_USER);
    t.client(&["USER bob", "PASS wrong-one"]);
    assert!(t.take(|a| matches!(a, Action::LookUp { .. })));
    t.event(Event::LookedUp(Err(crate::ldap::LdapError::Credentials {
        code: 49,
        text: String::new(),
    })));
    assert_eq!(t.codes(), ["331", "530"]);
    assert!(!t.rest().iter().any(|a| matches!(a, Action::Resolve { .. })));
    assert_eq!(t.end(), None);
    // An empty password is never sent as a bind.
    t.client(&["USER bob", "PASS"]);
    assert_eq!(t.codes(), ["331", "530"]);
    assert!(!t.rest().iter().any(|a| matches!(a, Action::LookUp { .. })));
    // A directory that cannot be used is not a wrong password.
    t.client(&["USER bob", "PASS right-one"]);
    assert!(t.take(|a| matches!(a, Action::LookUp { .. })));
    t.event(Event::LookedUp(Err(crate::ldap::LdapError::Refused {
        what: "bind with LDAPBindDN",
        code: 52,
        text: String::new(),
    })));
    assert_eq!(t.codes(), ["331", "421"]);
    assert!(matches!(t.end(), Some(End::Directory(_))), "{:?}", t.out);
}

#[test]
fn binding_as_the_user_still_checks_the_ok_flag() {
    let conf = format!("{LDAP_BIND_AS_USER}\nLDAPAuthOKFlag ftpEnabled=yes");
    let mut t = T::new(&conf);
    t.client(&["USER bob", "PASS s3cret-pw"]);
    assert!(t.take(|a| matches!(a, Action::LookUp { .. })));
    let bob = entry("cn=bob,dc=example", &[("ftpEnabled", "no")]);
    t.event(found(None, Some(bob)));
    assert_eq!(t.codes(), ["331", "530"]);
    assert!(!t.rest().iter().any(|a| matches!(a, Action::Resolve { .. })));
}

#[test]
fn binding_as_the_user_with_user_auth_magic_binds_as_the_proxy_login() {
    let conf = format!("{LDAP_BIND_AS_USER}\nUserAuthMagic @auth\nAllowMagicUser yes");
    let mut t = T::new(&conf);
    t.client(&["USER ftpuser@alice", "PASS ftppw@alicepw"]);
    assert!(
        t.took(Action::LookUp {
            user: b"alice".to_vec(),
            password: Some(b"alicepw".to_vec()),
        }),
        "{:?}",
        t.out
    );
    t.event(found(None, None));
    t.connect();
    assert_eq!(t.server_lines(), ["USER ftpuser"]);
    t.server(&["331 password please"]);
    assert_eq!(t.server_lines(), ["PASS ftppw"]);
}

#[test]
fn three_failed_proxy_authentications_end_the_session_with_421() {
    let mut t = T::new(LDAP_AUTH);
    for round in 1..=3 {
        t.client(&["USER bob"]);
        assert!(t.take(|a| matches!(a, Action::LookUp { .. })), "{round}");
        t.event(found(
            None,
            Some(entry("cn=bob,dc=example", &[("userPassword", "s3cret-pw")])),
        ));
        assert_eq!(t.codes(), ["331"]);
        t.client(&["PASS nope-nope"]);
        let want = if round < 3 { "530" } else { "421" };
        assert_eq!(t.codes(), [want], "round {round}");
    }
    assert_eq!(t.end(), Some(End::AuthFailures));
}

// ----- expecting USER: refusals that never reach the server ----------------------

#[test]
fn commands_before_login_are_refused_530_and_nothing_reaches_a_server() {
    let mut t = T::new("");
    for cmd in [
        "PWD",
        "CWD /",
        "RETR f",
        "PASV",
        "PORT 192,0,2,10,156,65",
        "NOOP",
    ] {
        t.client(&[cmd]);
        assert_eq!(t.codes(), ["530"], "{cmd}");
    }
    t.client(&["PASS secret"]);
    assert_eq!(t.codes(), ["503"]);
    let rest = t.rest();
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn an_unknown_verb_is_refused_500_before_and_after_login() {
    let mut t = T::new("");
    t.client(&["XYZZY plugh"]);
    assert_eq!(t.codes(), ["500"]);
    t.login();
    t.client(&["XYZZY plugh"]);
    assert_eq!(t.codes(), ["500"]);
    assert!(t.server_lines().is_empty());
}

#[test]
fn auth_tls_is_refused_502_before_and_after_login() {
    let mut t = T::new("");
    t.client(&["AUTH TLS"]);
    assert_eq!(t.codes(), ["502"]);
    t.login();
    for cmd in ["AUTH TLS", "AUTH SSL", "PBSZ 0", "PROT P"] {
        t.client(&[cmd]);
        assert_eq!(t.codes(), ["502"], "{cmd}");
    }
    assert!(t.server_lines().is_empty());
}

#[test]
fn quit_before_login_says_221_and_ends() {
    let mut t = T::new("");
    t.client(&["QUIT"]);
    assert_eq!(t.codes(), ["221"]);
    assert_eq!(t.end(), Some(End::Quit));
    assert!(t.server_lines().is_empty());
}

// twin of tests/session.rs::idle_session_before_login_gets_421_and_is_closed_after_timeout
#[test]
fn an_idle_session_before_login_gets_421_after_timeout() {
    let mut t = T::new("TimeOut 2");
    t.secs(1);
    assert!(t.rest().is_empty());
    assert_eq!(t.s.deadline(), Some(t.now + Duration::from_secs(1)));
    t.secs(1);
    assert_eq!(t.codes(), ["421"]);
    // No server to say QUIT to.
    assert!(t.server_lines().is_empty());
    assert_eq!(t.end(), Some(End::Timeout));
}

// Issue 14 item 8(a): TimeOut counts from the last complete command line;
// a byte every few seconds does not keep the session alive.
#[test]
fn a_byte_at_a_time_does_not_keep_an_idle_session_alive() {
    let mut t = T::logged_in("TimeOut 10");
    for b in b"NOO" {
        t.secs(3);
        t.client_raw(&[*b]);
        assert!(t.end().is_none());
    }
    // 10 s since the last complete line (the login's PASS).
    t.secs(1);
    assert_eq!(t.codes(), ["421"]);
    assert_eq!(t.end(), Some(End::Timeout));
}

// Issue 14 item 8(a): a complete line does reset the clock.
#[test]
fn a_complete_command_line_resets_the_idle_clock() {
    let mut t = T::logged_in("TimeOut 10");
    t.secs(8);
    t.client(&["NOOP"]);
    assert_eq!(t.server_lines(), ["NOOP"]);
    t.server(&["200 ok"]);
    assert_eq!(t.codes(), ["200"]);
    t.secs(8);
    assert!(t.end().is_none());
    t.secs(2);
    assert_eq!(t.codes(), ["421"]);
}

// Issue 14 item 8(d): unsolicited server replies do not reset the idle
// timer of a session waiting for the client.
#[test]
fn unsolicited_server_replies_do_not_keep_an_idle_session_alive() {
    let mut t = T::logged_in("TimeOut 10");
    for _ in 0..2 {
        t.secs(4);
        t.server(&["200 still here"]);
        assert!(t.codes().is_empty(), "unsolicited replies are dropped");
    }
    // 10 s since the client's last line.
    t.secs(2);
    assert_eq!(t.codes(), ["421"]);
    assert_eq!(t.end(), Some(End::Timeout));
}

// Issue 14 item 8(b): a session that has not logged in within the login
// deadline is closed with 421, however active it keeps itself.
#[test]
fn a_session_not_logged_in_within_the_login_deadline_gets_421() {
    let mut t = T::new("TimeOut 600");
    for _ in 0..2 {
        t.secs(50);
        t.client(&["FEAT"]);
        t.rest();
    }
    assert_eq!(t.end(), None);
    t.secs(crate::limits::LOGIN_DEADLINE_SECS - 100);
    assert_eq!(t.codes(), ["421"]);
    assert!(t.logs().iter().any(|l| l.contains("not logged in within")));
    assert_eq!(t.end(), Some(End::LoginTimeout));
}

// Issue 14 item 8(b): once logged in, only TimeOut applies.
#[test]
fn a_logged_in_session_is_not_subject_to_the_login_deadline() {
    let mut t = T::logged_in("TimeOut 600");
    t.secs(crate::limits::LOGIN_DEADLINE_SECS + 100);
    assert_eq!(t.end(), None);
    t.noop_works();
}

#[test]
fn feat_before_login_without_an_early_connection_lists_ftpgates_own_features() {
    let mut t = T::new("");
    t.client(&["FEAT"]);
    assert_eq!(
        t.client_lines(),
        ["211-Features:", " EPRT", " EPSV", "211 End"]
    );
    let rest = t.rest();
    assert!(rest.is_empty(), "the server was asked: {rest:?}");
}

#[test]
fn feat_before_login_leaves_out_what_valid_commands_refuse() {
    let mut t = T::new("ValidCommands USER PASS FEAT EPSV QUIT");
    t.client(&["FEAT"]);
    assert_eq!(t.client_lines(), ["211-Features:", " EPSV", "211 End"]);
}

// ----- logged in: refusals ---------------------------------------------------------

#[test]
fn valid_commands_refuses_a_verb_502_and_an_argument_504_without_reaching_the_server() {
    let mut t = T::logged_in("ValidCommands USER PASS QUIT PWD CWD=^/pub");
    t.client(&["DELE x", "CWD /etc", "MKD new"]);
    assert_eq!(t.codes(), ["502", "504", "502"]);
    assert!(t.server_lines().is_empty());
    let logs = t.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("command refused by ValidCommands: DELE x")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("argument refused by ValidCommands: CWD /etc")),
        "{logs:?}"
    );
    t.client(&["CWD /pub/x"]);
    assert_eq!(t.server_lines(), ["CWD /pub/x"]);
}

#[test]
fn lowercase_verbs_are_filtered_like_uppercase() {
    let mut t = T::logged_in("ValidCommands USER PASS QUIT PWD");
    t.client(&["dele x"]);
    assert_eq!(t.codes(), ["502"]);
    t.client(&["pwd"]);
    assert_eq!(t.server_lines(), ["pwd"]);
}

#[test]
fn rein_is_refused_502_and_the_session_stays_logged_in() {
    let mut t = T::logged_in("");
    t.client(&["REIN"]);
    assert_eq!(t.codes(), ["502"]);
    assert!(t.server_lines().is_empty());
    t.noop_works();
}

// ----- logged in: replies, the server's 421, timeouts -------------------------------

#[test]
fn commands_in_one_packet_go_to_the_server_one_at_a_time() {
    let mut t = T::logged_in("");
    t.client(&["NOOP", "PWD", "SYST"]);
    assert_eq!(t.server_lines(), ["NOOP"]);
    t.server(&["200 ok"]);
    assert_eq!(t.server_lines(), ["PWD"]);
    t.server(&["257 \"/\""]);
    assert_eq!(t.server_lines(), ["SYST"]);
    t.server(&["215 UNIX"]);
    assert_eq!(t.codes(), ["200", "257", "215"]);
}

// twin of tests/hostile.rs::thousands_of_lines_in_one_packet_are_all_answered_in_order
#[test]
fn hundreds_of_lines_in_one_packet_are_all_answered_in_order() {
    let mut t = T::logged_in("");
    let lines: Vec<String> = (0..300).map(|i| format!("SITE N{i}")).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    t.client(&refs);
    for i in 0..300 {
        assert_eq!(t.server_lines(), [format!("SITE N{i}")]);
        t.server(&[&format!("200 n{i}")]);
    }
    let got = t.client_lines();
    let want: Vec<String> = (0..300).map(|i| format!("200 n{i}")).collect();
    assert_eq!(got, want);
}

// twin of tests/hostile.rs::a_client_that_half_closes_gets_its_replies_and_the_session_ends
#[test]
fn a_client_that_half_closes_gets_its_replies_and_the_session_ends() {
    let mut t = T::logged_in("");
    t.client(&["NOOP", "PWD"]);
    t.event(Event::ClientEof);
    assert_eq!(t.server_lines(), ["NOOP"]);
    t.server(&["200 ok"]);
    assert_eq!(t.server_lines(), ["PWD"]);
    assert_eq!(t.end(), None, "ended before the last reply");
    t.server(&["257 \"/\""]);
    assert_eq!(t.codes(), ["200", "257"]);
    assert_eq!(t.end(), Some(End::ClientClosed));
    assert_eq!(t.server_lines(), ["QUIT"]);
}

#[test]
fn an_unsolicited_421_while_idle_is_relayed_once_and_ends_the_session() {
    let mut t = T::logged_in("");
    t.server(&["421 Timeout, closing control connection."]);
    assert_eq!(
        t.client_lines(),
        ["421 Timeout, closing control connection."]
    );
    assert_eq!(t.end(), Some(End::ServerClosed("server sent 421".into())));
}

// twin of tests/hostile.rs::a_server_that_closes_its_control_connection_gets_the_client_a_421
#[test]
fn a_server_that_closes_its_control_connection_gets_the_client_a_421() {
    let mut t = T::logged_in("TimeOut 10");
    t.client(&["NOOP"]);
    assert_eq!(t.server_lines(), ["NOOP"]);
    t.event(Event::ServerEof);
    assert_eq!(t.codes(), ["421"]);
    assert!(matches!(t.end(), Some(End::ServerClosed(_))));
}

#[test]
fn no_reply_from_the_server_within_timeout_is_421_and_ends_the_session() {
    let mut t = T::logged_in("TimeOut 60");
    t.client(&["PWD"]);
    t.server_lines();
    t.secs(59);
    assert!(t.codes().is_empty());
    t.secs(1);
    assert_eq!(t.codes(), ["421"]);
    assert_eq!(
        t.end(),
        Some(End::ServerClosed("no reply from server in time".into()))
    );
}

// twin of tests/hostile.rs::endless_1xx_replies_end_the_session_with_421_after_timeout
#[test]
fn endless_1xx_replies_end_the_session_with_421_after_timeout() {
    let mut t = T::logged_in("TimeOut 3");
    t.client(&["NOOP"]);
    t.server_lines();
    for i in 0..14 {
        t.now += Duration::from_millis(200);
        t.server(&[&format!("110 still busy {i}")]);
    }
    assert_eq!(t.end(), None);
    t.secs(1);
    let codes = t.codes();
    assert_eq!(codes.last().map(String::as_str), Some("421"), "{codes:?}");
    assert!(matches!(t.end(), Some(End::ServerClosed(_))));
}

// twin of tests/hostile.rs::an_endless_multiline_reply_ends_the_session_with_421
#[test]
fn an_endless_multiline_reply_ends_the_session_with_421() {
    let mut t = T::logged_in("TimeOut 30");
    t.client(&["NOOP"]);
    t.server_lines();
    t.server(&["200-start"]);
    let mut i = 0;
    while t.end().is_none() && i < 100_000 {
        t.server(&[&format!("200-line {i}")]);
        i += 1;
    }
    assert!(t.end().is_some(), "never ended");
    assert_eq!(t.codes(), ["421"]);
    assert!(matches!(t.end(), Some(End::ServerClosed(_))));
}

// twin of tests/hostile.rs::a_megabyte_reply_line_or_a_reply_without_line_end_gets_421_within_timeout
#[test]
fn a_megabyte_reply_line_or_a_reply_without_line_end_gets_421_within_timeout() {
    let mut long = b"257 \"".to_vec();
    long.extend(std::iter::repeat_n(b'x', 1 << 20));
    long.extend_from_slice(b"\"\r\n");
    let mut t = T::logged_in("TimeOut 3");
    t.client(&["PWD"]);
    t.server_raw(&long);
    assert_eq!(t.client_lines().len(), 1);
    assert!(matches!(t.end(), Some(End::ServerClosed(_))));

    let mut t = T::logged_in("TimeOut 3");
    t.client(&["PWD"]);
    t.server_raw(b"257 \"/\"");
    assert!(t.client_lines().is_empty());
    t.secs(3);
    assert_eq!(t.codes(), ["421"]);
    assert!(matches!(t.end(), Some(End::ServerClosed(_))));
}

// twin of tests/hostile.rs::a_server_that_never_greets_gets_the_client_a_421_within_timeout
#[test]
fn a_server_that_never_greets_gets_the_client_a_421_within_timeout() {
    let mut t = T::new("TimeOut 3");
    t.client(&["USER u"]);
    assert!(t.take(|a| matches!(a, Action::Resolve { .. })));
    t.event(Event::Resolved(Ok(vec![sa(SERVER)])));
    assert!(
        t.take(|a| matches!(a, Action::ConnectServer { timeout, .. }
            if *timeout == Duration::from_secs(3))),
        "{:?}",
        t.out
    );
    t.event(Event::ServerConnected {
        local: sa(SERVER_LOCAL),
    });
    t.secs(2);
    assert!(t.codes().is_empty());
    t.secs(1);
    assert_eq!(t.codes(), ["421"]);
    assert!(matches!(t.end(), Some(End::Unreachable(_))));
}

// twin of tests/hostile.rs::an_endless_greeting_ends_the_session_with_421
#[test]
fn an_endless_greeting_ends_the_session_with_421() {
    let mut t = T::new("TimeOut 30");
    t.client(&["USER u"]);
    assert!(t.take(|a| matches!(a, Action::Resolve { .. })));
    t.event(Event::Resolved(Ok(vec![sa(SERVER)])));
    assert!(t.take(|a| matches!(a, Action::ConnectServer { .. })));
    t.event(Event::ServerConnected {
        local: sa(SERVER_LOCAL),
    });
    let mut i = 0;
    while t.end().is_none() && i < 100_000 {
        t.server(&[&format!("220-line {i}")]);
        i += 1;
        if i % 100 == 0 {
            t.secs(1);
        }
    }
    assert_eq!(t.codes(), ["421"]);
    assert!(
        t.server_lines().is_empty(),
        "USER sent to an endless greeting"
    );
}

#[test]
fn feat_after_login_filters_the_servers_list_hides_auth_and_adds_epsv_eprt() {
    let mut t = T::logged_in("ValidCommands USER PASS QUIT FEAT MDTM SIZE PASV RETR");
    t.client(&["FEAT"]);
    assert_eq!(t.server_lines(), ["FEAT"]);
    t.server(&[
        "211-Features:",
        " MDTM",
        " SIZE",
        " MLST type*;size*;",
        " AUTH TLS",
        " PBSZ",
        " REST STREAM",
        " UTF8",
        "211 End",
    ]);
    let lines = t.client_lines();
    assert_eq!(lines, ["211-Features:", " MDTM", " SIZE", "211 End"]);

    let mut t = T::logged_in("");
    t.client(&["FEAT"]);
    t.server_lines();
    t.server(&["211-Features:", " MDTM", " AUTH TLS", " UTF8", "211 End"]);
    assert_eq!(
        t.client_lines(),
        [
            "211-Features:",
            " MDTM",
            " UTF8",
            " EPRT",
            " EPSV",
            "211 End"
        ]
    );
}

// ----- data set-up: the client's PASV/EPSV/PORT/EPRT -------------------------------

#[test]
fn pasv_and_epsv_are_answered_by_the_proxy_which_prepares_the_server_side() {
    let mut t = T::logged_in("");
    t.pasv();
    // Ahead of the transfer command, the proxy's own PASV to the server.
    t.complete_prefetch();
    assert!(t.rest().is_empty());
    t.client(&["EPSV"]);
    // The old listener and the prepared server side go, new ones come.
    assert!(t.took(Action::DropServerData));
    assert!(t.took(Action::CloseListener(Listener::Client)));
    assert!(t.take(|a| matches!(
        a,
        Action::Listen {
            listener: Listener::Client,
            ..
        }
    )));
    t.event(Event::Listening {
        listener: Listener::Client,
        addr: sa("192.0.2.1:50002"),
    });
    assert_eq!(
        t.client_lines(),
        ["229 Entering Extended Passive Mode (|||50002|)"]
    );
    assert_eq!(t.server_lines(), ["PASV"]);
}

#[test]
fn a_full_passive_port_range_is_425_saying_why() {
    let mut t = T::logged_in("");
    t.client(&["PASV"]);
    assert!(t.take(|a| matches!(a, Action::Listen { .. })));
    t.event(Event::ListenFailed {
        listener: Listener::Client,
        error: "in use".into(),
        in_use: true,
    });
    let lines = t.client_lines();
    assert!(
        lines.len() == 1 && lines[0].starts_with("425") && lines[0].contains("passive port range"),
        "{lines:?}"
    );
}

// twin of tests/hostile.rs::port_naming_another_host_or_a_privileged_port_is_refused
#[test]
fn port_naming_another_host_or_a_privileged_port_is_refused_504() {
    let mut t = T::logged_in("");
    for cmd in [
        "PORT 192,0,2,11,200,1",
        "PORT 10,1,2,3,200,1",
        "PORT 192,0,2,10,0,21",
        "PORT 192,0,2,10,3,255",
        "EPRT |1|192.0.2.11|51201|",
        "EPRT |1|192.0.2.10|25|",
    ] {
        t.client(&[cmd]);
        assert_eq!(t.codes(), ["504"], "{cmd}");
    }
    assert!(t.server_lines().is_empty());
    t.client(&["PORT 192,0,2,10,200,1"]);
    assert_eq!(t.codes(), ["200"]);
    t.client(&["EPRT |1|192.0.2.10|51201|"]);
    assert_eq!(t.codes(), ["200"]);
    // Active towards the server (client mode): nothing is sent ahead.
    assert!(t.rest().is_empty());
}

// twin of tests/extended.rs::epsv_all_refuses_other_data_commands_and_epsv_still_works
#[test]
fn epsv_all_refuses_other_data_commands_503_and_epsv_still_works() {
    let mut t = T::logged_in("");
    t.client(&["EPSV ALL"]);
    assert_eq!(t.codes(), ["200"]);
    for cmd in ["PASV", CLIENT_PORT, "EPRT |1|192.0.2.10|51201|"] {
        t.client(&[cmd]);
        assert_eq!(t.codes(), ["503"], "{cmd}");
    }
    t.client(&["EPSV"]);
    assert!(t.take(|a| matches!(a, Action::Listen { .. })));
    assert!(t.server_lines().is_empty());
}

#[test]
fn a_transfer_command_without_pasv_or_port_is_425_and_never_reaches_the_server() {
    let mut t = T::logged_in("");
    t.client(&["RETR f"]);
    assert_eq!(t.codes(), ["425"]);
    assert!(t.server_lines().is_empty());
}

// ----- data set-up: DestinationTransferMode ------------------------------------------

#[test]
fn client_mode_with_pasv_sends_pasv_to_the_server_and_connects_to_it() {
    let mut t = T::logged_in("DestinationTransferMode client");
    t.pasv();
    t.client(&["RETR f"]);
    t.server_pasv();
    assert_eq!(t.server_lines(), ["RETR f"]);
    t.server(&["150 ok"]);
    assert_eq!(t.codes(), ["150"]);
    assert_eq!(t.s.interest().accept, Some(Listener::Client));
    t.client_connects();
    assert!(t.took(Action::CloseListener(Listener::Client)));
    assert!(t.took(plain_pump(Direction::Download, None)));
}

#[test]
fn client_mode_with_port_sends_port_to_the_server_and_connects_to_the_client() {
    let mut t = T::logged_in("");
    t.port();
    t.client(&["STOR up"]);
    t.server_port();
    assert_eq!(t.server_lines(), ["STOR up"]);
    t.server(&["150 ok"]);
    assert_eq!(t.codes(), ["150"]);
    assert_eq!(t.s.interest().accept, Some(Listener::Server));
    t.event(Event::Accepted {
        listener: Listener::Server,
        from: sa(SERVER_ACTIVE),
    });
    assert!(t.took(Action::KeepAccepted(Listener::Server)));
    assert!(t.took(Action::CloseListener(Listener::Server)));
    assert!(
        t.take(
            |a| matches!(a, Action::Connect { peer: Peer::Client, target, bind, .. }
            if *target == sa(CLIENT_DATA) && *bind == sa(LOCAL).ip())
        ),
        "{:?}",
        t.out
    );
    t.event(Event::DataConnected(Peer::Client));
    assert!(t.took(plain_pump(Direction::Upload, None)));
}

#[test]
fn active_mode_turns_the_clients_pasv_into_port_towards_the_server() {
    let mut t = T::logged_in("DestinationTransferMode active");
    t.pasv();
    t.client(&["LIST"]);
    t.server_port();
    assert_eq!(t.server_lines(), ["LIST"]);
    t.server(&["150 listing"]);
    assert_eq!(t.codes(), ["150"]);
    t.event(Event::Accepted {
        listener: Listener::Server,
        from: sa(SERVER_ACTIVE),
    });
    assert!(t.took(Action::KeepAccepted(Listener::Server)));
    // Now the client's connection to the proxy's listener.
    assert_eq!(t.s.interest().accept, Some(Listener::Client));
    t.client_connects();
    assert!(t.took(plain_pump(Direction::Download, None)));
}

#[test]
fn passive_mode_turns_the_clients_port_into_pasv_towards_the_server() {
    let mut t = T::logged_in("DestinationTransferMode passive");
    t.port();
    t.client(&["RETR f"]);
    t.server_pasv();
    assert_eq!(t.server_lines(), ["RETR f"]);
    t.server(&["150 ok"]);
    assert!(
        t.take(
            |a| matches!(a, Action::Connect { peer: Peer::Client, target, .. }
            if *target == sa(CLIENT_DATA))
        ),
        "{:?}",
        t.out
    );
    t.event(Event::DataConnected(Peer::Client));
    assert!(t.took(plain_pump(Direction::Download, None)));
}

#[test]
fn the_server_refusing_pasv_is_425_and_the_command_never_reaches_it() {
    let mut t = T::logged_in("DestinationTransferMode passive");
    t.pasv();
    t.client(&["RETR f"]);
    assert!(t.server_pasv_sent, "PASV asked of the server ahead");
    t.server(&["500 PASV not understood"]);
    // The refusal of the server side prepared ahead answers RETR.
    assert_eq!(t.codes(), ["425"]);
    assert!(t.server_lines().is_empty());
    t.noop_works();
}

// ----- data set-up: bounce and theft -------------------------------------------------

// twin of tests/hostile.rs::a_server_227_naming_a_third_host_is_refused
#[test]
fn a_server_227_naming_a_third_host_is_refused_425_and_never_connected() {
    let mut t = T::logged_in("DestinationTransferMode passive\nTimeOut 10");
    t.pasv();
    t.client(&["RETR secret"]);
    assert!(t.server_pasv_sent, "PASV asked of the server ahead");
    t.server(&["227 Entering Passive Mode (198,51,100,99,200,10)"]);
    assert_eq!(t.codes(), ["425"]);
    let logs = t.logs();
    assert!(logs.iter().any(|l| l.contains("refused")), "{logs:?}");
    let rest = t.rest();
    assert!(
        !rest
            .iter()
            .any(|a| matches!(a, Action::Connect { .. } | Action::SendServer(_))),
        "{rest:?}"
    );
    t.noop_works();
}

#[test]
fn a_server_227_naming_its_own_privileged_port_is_refused_425() {
    let mut t = T::logged_in("DestinationTransferMode passive");
    t.pasv();
    t.client(&["RETR f"]);
    t.server_lines();
    t.server(&["227 Entering Passive Mode (198,51,100,7,0,25)"]);
    assert_eq!(t.codes(), ["425"]);
    assert!(!t.rest().iter().any(|a| matches!(a, Action::Connect { .. })));
}

// twin of tests/hostile.rs::a_thief_on_another_address_is_closed_and_the_client_still_gets_its_data
#[test]
fn a_thief_on_the_passive_listener_is_dropped_and_the_wait_goes_on() {
    let mut t = T::logged_in("");
    t.until_150("RETR loot.bin");
    t.event(Event::Accepted {
        listener: Listener::Client,
        from: sa(THIEF),
    });
    assert!(t.took(Action::DropAccepted(Listener::Client)));
    assert!(
        t.logs()
            .iter()
            .any(|l| l.contains("203.0.113.66") && l.contains("refused")),
    );
    assert!(t.rest().is_empty(), "the thief changed something");
    assert_eq!(t.s.interest().accept, Some(Listener::Client));
    t.client_connects();
    assert!(t.took(plain_pump(Direction::Download, None)));
    t.ended(2_000_000, true);
    t.server(&["226 done"]);
    assert_eq!(t.codes(), ["226"]);
}

#[test]
fn an_open_passive_listener_is_watched_before_the_transfer_command_and_a_thief_is_dropped() {
    let mut t = T::logged_in("");
    assert_eq!(t.s.interest().accept, None);
    t.pasv();
    t.audit_events();
    assert_eq!(t.s.interest().accept, Some(Listener::Client));
    for _ in 0..3 {
        t.event(Event::Accepted {
            listener: Listener::Client,
            from: sa(THIEF),
        });
        assert!(
            t.took(Action::DropAccepted(Listener::Client)),
            "{:?}",
            t.out
        );
        assert!(
            t.logs()
                .iter()
                .any(|l| l.contains("203.0.113.66") && l.contains("refused")),
        );
        assert!(matches!(
            t.audit_events().as_slice(),
            [AuditEvent::Refused {
                what: RefusalKind::Data,
                ..
            }]
        ));
        assert!(t.rest().is_empty(), "the thief changed something");
        assert_eq!(t.s.interest().accept, Some(Listener::Client));
    }
    // The real client still gets its transfer.
    t.client(&["RETR f"]);
    t.server_pasv();
    assert_eq!(t.server_lines(), ["RETR f"]);
    t.server(&["150 sending"]);
    assert_eq!(t.codes(), ["150"]);
    t.client_connects();
    assert!(t.took(plain_pump(Direction::Download, None)));
}

#[test]
fn the_clients_connection_before_its_transfer_command_is_held_and_used() {
    let mut t = T::logged_in("");
    t.pasv();
    t.client_connects();
    assert!(t.rest().is_empty());
    // Held: the listener is not watched any more, the wait is over.
    assert_eq!(t.s.interest().accept, None);
    t.client(&["RETR f"]);
    t.server_pasv();
    assert_eq!(t.server_lines(), ["RETR f"]);
    t.server(&["150 sending"]);
    assert_eq!(t.codes(), ["150"]);
    // No second accept: the held connection is the transfer's.
    assert!(
        t.took(Action::CloseListener(Listener::Client)),
        "{:?}",
        t.out
    );
    assert!(t.took(plain_pump(Direction::Download, None)), "{:?}", t.out);
    assert!(!t.rest().iter().any(|a| matches!(a, Action::CloseData)));
    t.ended(10, true);
    t.server(&["226 done"]);
    assert_eq!(t.codes(), ["226"]);
    // The listener served that one transfer.
    t.client(&["RETR f"]);
    assert_eq!(t.codes(), ["425"]);
}

#[test]
fn the_held_connection_is_used_when_the_server_connects_in_active_mode() {
    let mut t = T::logged_in("DestinationTransferMode active");
    t.pasv();
    t.client_connects();
    t.client(&["RETR f"]);
    t.server_port();
    assert_eq!(t.server_lines(), ["RETR f"]);
    t.server(&["150 sending"]);
    assert_eq!(t.codes(), ["150"]);
    assert_eq!(t.s.interest().accept, Some(Listener::Server));
    t.event(Event::Accepted {
        listener: Listener::Server,
        from: sa(SERVER_ACTIVE),
    });
    assert!(t.took(Action::KeepAccepted(Listener::Server)));
    assert!(t.took(plain_pump(Direction::Download, None)), "{:?}", t.out);
}

#[test]
fn a_new_pasv_or_port_closes_the_held_connection_with_the_listener() {
    // PASV after PASV: the old listener and the connection held from it go.
    let mut t = T::logged_in("");
    t.pasv();
    t.client_connects();
    t.pasv_again_closes();
    assert_eq!(t.s.interest().accept, Some(Listener::Client));
    // PORT with PortResetsPasv (the default): the same.
    let mut t = T::logged_in("PortResetsPasv yes");
    t.pasv();
    t.client_connects();
    t.complete_prefetch();
    t.client(&[CLIENT_PORT]);
    assert!(t.took(Action::DropServerData), "{:?}", t.out);
    assert!(
        t.took(Action::CloseListener(Listener::Client)),
        "{:?}",
        t.out
    );
    assert!(t.took(Action::CloseData), "{:?}", t.out);
    assert_eq!(t.codes(), ["200"]);
    assert_eq!(t.s.interest().accept, None);
    // PORT without PortResetsPasv: the listener and the held connection
    // stay until the active transfer's own connection replaces it.
    let mut t = T::logged_in("PortResetsPasv no");
    t.pasv();
    t.client_connects();
    t.complete_prefetch();
    t.client(&[CLIENT_PORT]);
    assert_eq!(t.codes(), ["200"]);
    // Only the prepared server side changes: dropped (active now, as the
    // client, which is not prepared ahead).
    assert!(t.took(Action::DropServerData), "{:?}", t.out);
    assert!(t.rest().is_empty());
}

#[test]
fn a_refused_transfer_drops_the_held_connection_and_fail_resets_pasv_decides_the_listener() {
    for (resets, open) in [("yes", false), ("no", true)] {
        let mut t = T::logged_in(&format!("FailResetsPasv {resets}"));
        t.pasv();
        t.client_connects();
        t.client(&["RETR missing"]);
        t.server_pasv();
        assert_eq!(t.server_lines(), ["RETR missing"]);
        t.server(&["550 no such file"]);
        assert_eq!(t.codes(), ["550"]);
        let rest = t.rest();
        assert!(rest.contains(&Action::CloseData), "{rest:?}");
        assert_eq!(
            rest.contains(&Action::CloseListener(Listener::Client)),
            !open,
            "FailResetsPasv {resets}: {rest:?}"
        );
        // With the listener kept, it is watched again for a new connection.
        let want = open.then_some(Listener::Client);
        assert_eq!(t.s.interest().accept, want, "FailResetsPasv {resets}");
    }
}

// twin of tests/hostile.rs::an_active_connection_from_another_host_than_the_server_is_refused
#[test]
fn an_active_connection_from_another_host_than_the_server_is_dropped_and_the_wait_goes_on() {
    let mut t = T::logged_in("DestinationTransferMode active\nTimeOut 20");
    t.pasv();
    t.client(&["RETR f"]);
    t.server_port();
    assert_eq!(t.server_lines(), ["RETR f"]);
    t.server(&["150 sending"]);
    assert_eq!(t.codes(), ["150"]);
    t.event(Event::Accepted {
        listener: Listener::Server,
        from: sa("127.0.0.2:5555"),
    });
    assert!(t.took(Action::DropAccepted(Listener::Server)));
    assert!(t.logs().iter().any(|l| l.contains("127.0.0.2")));
    assert!(t.rest().is_empty());
    assert_eq!(t.s.interest().accept, Some(Listener::Server));
    t.event(Event::Accepted {
        listener: Listener::Server,
        from: sa(SERVER_ACTIVE),
    });
    assert!(t.took(Action::KeepAccepted(Listener::Server)));
    t.client_connects();
    assert!(t.took(plain_pump(Direction::Download, None)));
    t.server(&["226 done"]);
    assert!(t.codes().is_empty());
    t.ended(9, true);
    assert_eq!(t.codes(), ["226"]);
}

// twin of tests/hostile.rs::with_same_address_no_a_third_party_port_works_but_not_on_loopback
#[test]
fn with_same_address_no_a_third_party_port_is_connected_to() {
    let mut t = T::logged_in("SameAddress no");
    t.client(&["PORT 192,0,2,99,200,1"]);
    assert_eq!(t.codes(), ["200"]);
    t.client(&["RETR third.bin"]);
    t.server_port();
    t.server(&["150 ok"]);
    t.event(Event::Accepted {
        listener: Listener::Server,
        from: sa(SERVER_ACTIVE),
    });
    assert!(
        t.take(
            |a| matches!(a, Action::Connect { peer: Peer::Client, target, .. }
            if *target == sa("192.0.2.99:51201"))
        ),
        "{:?}",
        t.out
    );
}

// Issue 14 item 7: SameAddress no is not a way to reach the firewall
// itself, special addresses or privileged ports, on either leg.
#[test]
fn with_same_address_no_special_own_and_privileged_targets_are_refused() {
    let mut t = T::logged_in("SameAddress no");
    for port in [
        "PORT 127,0,0,1,200,1",
        "PORT 169,254,169,254,200,1",
        "PORT 224,0,0,1,200,1",
        "PORT 0,0,0,0,200,1",
        "PORT 192,0,2,1,200,1",
        "PORT 192,0,2,99,0,25",
        "EPRT |1|127.0.0.1|51201|",
    ] {
        t.client(&[port]);
        assert_eq!(t.codes(), ["504"], "{port}");
    }
    // The server's side: a 227 naming loopback is refused too.
    t.pasv();
    t.client(&["RETR f"]);
    t.server(&["227 Entering Passive Mode (127,0,0,1,200,10)"]);
    assert!(
        !t.out.iter().any(|a| matches!(
            a,
            Action::Connect {
                peer: Peer::Server,
                ..
            }
        )),
        "{:?}",
        t.out
    );
    assert!(
        t.logs()
            .iter()
            .any(|l| l.contains("127.0.0.1:51210 refused"))
    );
}

// ----- transferring: reply order -----------------------------------------------------

#[test]
fn the_servers_226_waits_for_the_end_of_the_transfer() {
    let mut t = T::logged_in("");
    t.transfer("RETR f", Direction::Download);
    t.server(&["226 Transfer complete"]);
    assert!(t.client_lines().is_empty(), "226 before the data");
    t.event(Event::DataMoved);
    assert!(t.client_lines().is_empty(), "226 before the data");
    t.ended(1234, true);
    assert_eq!(t.client_lines(), ["226 Transfer complete"]);
    assert!(
        t.logs()
            .iter()
            .any(|l| l.contains("1234 bytes down") && l.contains("reply 226"))
    );
    t.noop_works();
}

#[test]
fn a_226_after_the_end_of_the_transfer_is_relayed() {
    let mut t = T::logged_in("");
    t.transfer("STOR up", Direction::Upload);
    t.ended(10, true);
    assert!(t.client_lines().is_empty());
    t.server(&["226 stored"]);
    assert_eq!(t.client_lines(), ["226 stored"]);
}

#[test]
fn a_226_that_arrives_before_the_clients_data_connection_still_waits_for_the_data() {
    let mut t = T::logged_in("");
    t.until_150("RETR tiny");
    // The server has sent the whole file into the proxy's data connection.
    t.server(&["226 done"]);
    assert!(t.client_lines().is_empty());
    t.client_connects();
    assert!(t.took(plain_pump(Direction::Download, None)));
    assert!(t.client_lines().is_empty());
    t.ended(5, true);
    assert_eq!(t.codes(), ["226"]);
}

#[test]
fn a_refused_transfer_command_is_relayed_and_the_data_set_up_closed() {
    let mut t = T::logged_in("");
    t.pasv();
    t.client(&["RETR missing"]);
    t.server_pasv();
    t.server_lines();
    t.server(&["550 No such file"]);
    assert_eq!(t.codes(), ["550"]);
    assert!(t.took(Action::CloseData));
    // FailResetsPasv no: the listener stays for the next command.
    assert!(!t.rest().contains(&Action::CloseListener(Listener::Client)));
}

#[test]
fn fail_resets_pasv_closes_the_listener_before_the_refusal_is_relayed() {
    let mut t = T::logged_in("FailResetsPasv yes");
    t.pasv();
    t.client(&["RETR missing"]);
    t.server_pasv();
    t.server_lines();
    t.server(&["550 No such file"]);
    let rest = t.rest();
    let close = rest
        .iter()
        .position(|a| *a == Action::CloseListener(Listener::Client));
    let reply = rest
        .iter()
        .position(|a| matches!(a, Action::SendClient(b) if b.starts_with(b"550")));
    assert!(close.is_some() && close < reply, "{rest:?}");
}

// twin of tests/transfers.rs::several_transfers_in_one_ftplib_session_through_pyftpdlib_all_succeed
#[test]
fn several_transfers_in_one_session_each_get_their_226() {
    let mut t = T::logged_in("");
    for (cmd, way) in [
        ("STOR one.bin", Direction::Upload),
        ("RETR one.bin", Direction::Download),
        ("NLST", Direction::Download),
        ("LIST", Direction::Download),
        ("APPE one.bin", Direction::Upload),
    ] {
        t.transfer(cmd, way);
        t.ended(100, true);
        t.server(&["226 ok"]);
        assert_eq!(t.codes(), ["226"], "{cmd}");
    }
    // The passive listener was used up by the last transfer.
    t.client(&["RETR again"]);
    assert_eq!(t.codes(), ["425"]);
}

// twin of tests/transfers.rs::a_client_that_half_closes_after_retr_and_quit_still_gets_the_whole_file
#[test]
fn a_client_that_half_closes_after_retr_and_quit_gets_150_226_221() {
    let mut t = T::logged_in("");
    t.pasv();
    t.client(&["RETR big.bin", "QUIT"]);
    t.event(Event::ClientEof);
    t.server_pasv();
    assert_eq!(t.server_lines(), ["RETR big.bin"]);
    t.server(&["150 here"]);
    t.client_connects();
    assert!(t.took(plain_pump(Direction::Download, None)));
    assert_eq!(t.end(), None, "ended during the transfer");
    t.ended(1 << 20, true);
    assert!(t.server_lines().is_empty(), "QUIT before the 226");
    t.server(&["226 done"]);
    assert_eq!(t.server_lines(), ["QUIT"]);
    t.server(&["221 bye"]);
    assert_eq!(t.codes(), ["150", "226", "221"]);
    assert_eq!(t.end(), Some(End::Quit));
}

// ----- transferring: timeouts --------------------------------------------------------

#[test]
fn an_idle_transfer_is_stopped_after_timeout_and_data_resets_the_clock() {
    let mut t = T::logged_in("TimeOut 4");
    t.transfer("RETR f", Direction::Download);
    t.secs(3);
    t.event(Event::DataMoved);
    t.secs(3);
    let rest = t.rest();
    assert!(rest.is_empty(), "stopped while data moved: {rest:?}");
    t.secs(1);
    assert!(t.took(Action::StopPump { abort: false }), "{:?}", t.out);
    assert!(t.logs().iter().any(|l| l.contains("transfer idle")));
}

// twin of tests/hostile.rs::a_download_cut_by_the_idle_timeout_is_426_even_if_the_server_says_226
#[test]
fn a_download_cut_by_the_idle_timeout_is_426_even_if_the_server_says_226() {
    let mut t = T::logged_in("TimeOut 3");
    t.transfer("RETR big.bin", Direction::Download);
    t.server(&["226 Transfer complete"]);
    t.secs(3);
    assert!(t.took(Action::StopPump { abort: false }));
    t.ended(4 << 20, false);
    assert_eq!(t.codes(), ["426"]);
    assert!(
        t.logs()
            .iter()
            .any(|l| l.contains("reply 426") && l.contains("idle timeout"))
    );
    t.noop_works();
}

#[test]
fn a_reply_after_a_cut_transfer_is_awaited_briefly_and_a_226_becomes_426() {
    let mut t = T::logged_in("TimeOut 60");
    t.transfer("RETR big.bin", Direction::Download);
    t.secs(60);
    assert!(t.took(Action::StopPump { abort: false }));
    t.ended(100, false);
    assert_eq!(t.s.deadline(), Some(t.now + Duration::from_secs(3)));
    t.secs(1);
    t.server(&["226 Transfer complete"]);
    assert_eq!(t.codes(), ["426"]);
}

// twin of tests/hostile.rs::a_server_that_says_150_and_then_nothing_is_ended_soon_after_timeout
#[test]
fn a_server_that_says_150_and_then_nothing_is_ended_soon_after_timeout() {
    let mut t = T::logged_in("TimeOut 8\nDestinationTransferMode passive");
    t.transfer("RETR x", Direction::Download);
    t.secs(8);
    assert!(t.took(Action::StopPump { abort: false }));
    t.ended(0, false);
    assert_eq!(t.end(), None);
    // REPLY_AFTER_CUT_SECS, not a second TimeOut.
    t.secs(3);
    assert_eq!(t.codes(), ["421"]);
    assert!(matches!(t.end(), Some(End::ServerClosed(_))));
}

// twin of tests/hostile.rs::a_client_that_stops_reading_mid_download_does_not_make_the_proxy_spin
#[test]
fn a_client_that_stops_reading_mid_download_gets_426_and_then_the_idle_421() {
    let mut t = T::logged_in("TimeOut 4");
    t.transfer("RETR big.bin", Direction::Download);
    t.secs(4);
    assert!(t.took(Action::StopPump { abort: false }));
    t.ended(8 << 20, false);
    t.server(&["426 Connection closed; transfer aborted"]);
    assert_eq!(t.codes(), ["426"]);
    // Then the control connection is idle too.
    t.secs(4);
    assert_eq!(t.codes(), ["421"]);
    assert_eq!(t.end(), Some(End::Timeout));
}

// twin of tests/hostile.rs::a_server_that_stops_reading_mid_upload_does_not_make_the_proxy_spin
#[test]
fn a_server_that_stops_reading_mid_upload_is_stopped_after_timeout_and_the_session_ends() {
    let mut t = T::logged_in("TimeOut 4\nDestinationTransferMode passive");
    t.transfer("STOR x", Direction::Upload);
    t.secs(4);
    assert!(t.took(Action::StopPump { abort: false }));
    t.ended(3 << 20, false);
    // The server says nothing more either.
    t.secs(3);
    assert_eq!(t.codes(), ["421"]);
    assert!(t.end().is_some());
}

// ----- expecting the data connection: timeouts ---------------------------------------

#[test]
fn no_client_data_connection_within_timeout_is_425_after_the_servers_abort_replies() {
    let mut t = T::logged_in("TimeOut 30");
    t.until_150("RETR f");
    t.secs(30);
    assert!(t.took(Action::CloseData));
    assert_eq!(t.server_lines(), ["ABOR"]);
    assert!(t.codes().is_empty());
    t.server(&["426 aborted"]);
    assert!(t.codes().is_empty());
    t.server(&["226 ABOR ok"]);
    assert_eq!(t.codes(), ["425"]);
    t.noop_works();
}

#[test]
fn no_client_data_connection_and_a_silent_server_is_425_soon_after() {
    let mut t = T::logged_in("TimeOut 30");
    t.until_150("RETR f");
    t.secs(30);
    assert_eq!(t.server_lines(), ["ABOR"]);
    t.secs(3);
    assert_eq!(t.codes(), ["425"]);
    assert_eq!(t.end(), None);
}

// twin of tests/hostile.rs::an_active_mode_server_that_says_150_and_never_connects_gets_425_soon_after_timeout
#[test]
fn an_active_mode_server_that_says_150_and_never_connects_gets_425_soon_after_timeout() {
    let mut t = T::logged_in("TimeOut 8\nDestinationTransferMode active");
    t.pasv();
    t.client(&["RETR x"]);
    t.server_port();
    assert_eq!(t.server_lines(), ["RETR x"]);
    t.server(&["150 here it comes"]);
    assert_eq!(t.codes(), ["150"]);
    t.secs(8);
    assert_eq!(t.server_lines(), ["ABOR"]);
    t.secs(3);
    assert_eq!(t.codes(), ["425"]);
}

#[test]
fn a_server_that_gives_up_before_the_data_connection_gets_the_client_425() {
    let mut t = T::logged_in("");
    t.until_150("RETR f");
    t.server(&["425 Can't open data connection"]);
    assert_eq!(t.codes(), ["425"]);
    assert!(t.took(Action::CloseData));
    assert!(
        t.server_lines().is_empty(),
        "ABOR after the server's own 425"
    );
    t.noop_works();
}

#[test]
fn the_server_closing_while_the_proxy_stops_a_failed_set_up_is_425_and_421_ends() {
    let mut t = T::logged_in("TimeOut 5");
    t.until_150("RETR f");
    t.secs(5);
    assert_eq!(t.server_lines(), ["ABOR"]);
    t.event(Event::ServerEof);
    assert_eq!(t.codes(), ["425", "421"]);
    assert!(matches!(t.end(), Some(End::ServerClosed(_))));
}

// ----- ABOR --------------------------------------------------------------------------

// twin of tests/abort.rs::rfc_abort_stops_a_download_from_vsftpd_and_the_session_goes_on
#[test]
fn rfc_abor_with_telnet_ip_and_synch_stops_a_download_426_then_226() {
    let mut t = T::logged_in("");
    t.transfer("RETR big.bin", Direction::Download);
    t.client_raw(b"\xff\xf4\xff\xf2ABOR\r\n");
    assert!(t.took(Action::StopPump { abort: true }), "{:?}", t.out);
    assert!(t.server_lines().is_empty(), "ABOR before the pump stopped");
    t.ended(65536, false);
    assert_eq!(t.server_lines(), ["ABOR", "NOOP"]);
    t.server(&["426 Transfer aborted", "226 ABOR successful", "200 NOOP ok"]);
    assert_eq!(t.codes(), ["426", "226"]);
    assert!(t.logs().iter().any(|l| l.contains("reply 426")));
    t.noop_works();
}

// twin of tests/abort.rs::rfc_abort_stops_a_download_from_pyftpdlib_and_the_session_goes_on
#[test]
fn abor_during_a_download_answered_225_alone_gives_the_client_426_then_225() {
    let mut t = T::logged_in("");
    t.transfer("RETR big.bin", Direction::Download);
    t.client(&["ABOR"]);
    t.ended(65536, false);
    t.server_lines();
    // pyftpdlib: the transfer is already gone when ABOR is read.
    t.server(&["225 No transfer to abort", "200 NOOP ok"]);
    assert_eq!(t.codes(), ["426", "225"]);
    t.noop_works();
}

// twin of tests/abort.rs::rfc_abort_stops_an_upload_to_vsftpd_and_the_session_goes_on
#[test]
fn abor_during_an_upload_that_the_server_calls_complete_is_still_426() {
    let mut t = T::logged_in("");
    t.transfer("STOR up.bin", Direction::Upload);
    t.client(&["ABOR"]);
    assert!(t.took(Action::StopPump { abort: true }));
    t.ended(1 << 20, false);
    assert_eq!(t.server_lines(), ["ABOR", "NOOP"]);
    t.server(&["226 Transfer complete", "225 ABOR ok", "200 NOOP ok"]);
    assert_eq!(t.codes(), ["426", "225"]);
    t.noop_works();
}

// twin of tests/abort.rs::rfc_abort_stops_an_upload_to_pyftpdlib_and_the_session_goes_on
#[test]
fn abor_during_an_upload_answered_426_226_relays_both() {
    let mut t = T::logged_in("");
    t.transfer("STOR up.bin", Direction::Upload);
    t.client_raw(b"\xff\xf4\xff\xf2ABOR\r\n");
    t.ended(1 << 20, false);
    t.server_lines();
    t.server(&["426 Connection closed", "226 ABOR ok"]);
    assert!(t.codes().is_empty(), "before NOOP's 200");
    t.server(&["200 NOOP ok"]);
    assert_eq!(t.codes(), ["426", "226"]);
}

// twin of tests/abort.rs::ftplib_urgent_abor_stops_a_download_and_the_session_goes_on
#[test]
fn ftplib_abor_without_telnet_bytes_stops_a_download_too() {
    let mut t = T::logged_in("");
    t.transfer("RETR big.bin", Direction::Download);
    t.client(&["ABOR"]);
    assert!(t.took(Action::StopPump { abort: true }));
    t.ended(1, false);
    t.server_lines();
    t.server(&["426 aborted", "226 ok", "200 ok"]);
    assert_eq!(t.codes(), ["426", "226"]);
    t.noop_works();
}

// twin of tests/abort.rs::ftplib_urgent_abor_stops_an_upload_and_the_session_goes_on
#[test]
fn ftplib_abor_stops_an_upload_whose_server_answers_only_the_noop() {
    let mut t = T::logged_in("");
    t.transfer("STOR up.bin", Direction::Upload);
    t.client(&["ABOR"]);
    t.ended(1, false);
    t.server_lines();
    // Both answers are made up: the client counts two.
    t.server(&["200 NOOP ok"]);
    assert_eq!(t.codes(), ["426", "226"]);
    t.noop_works();
}

// twin of tests/abort.rs::abort_after_the_server_finished_but_before_the_client_got_the_data_is_426
#[test]
fn abort_after_the_server_finished_but_before_the_client_got_the_data_is_426() {
    let mut t = T::logged_in("");
    t.transfer("RETR mid.bin", Direction::Download);
    // The whole file is in the proxy's buffers; the server is done.
    t.server(&["226 Transfer complete"]);
    t.secs(2);
    t.client(&["ABOR"]);
    assert!(t.took(Action::StopPump { abort: true }));
    assert!(t.codes().is_empty(), "the 226 went out before the data");
    t.ended(4 << 20, false);
    assert_eq!(t.server_lines(), ["ABOR", "NOOP"]);
    t.server(&["225 No transfer to abort", "200 NOOP ok"]);
    assert_eq!(t.codes(), ["426", "225"]);
    t.noop_works();
}

#[test]
fn abor_after_the_transfer_finished_in_the_pump_but_before_it_said_so_is_226_226() {
    let mut t = T::logged_in("");
    t.transfer("RETR small", Direction::Download);
    t.client(&["ABOR"]);
    assert!(t.took(Action::StopPump { abort: true }));
    // Every byte had gone through when the pump stopped.
    t.ended(10, true);
    t.server_lines();
    t.server(&["226 Transfer complete", "225 No transfer", "200 ok"]);
    assert_eq!(t.codes(), ["226", "225"]);
}

// twin of tests/abort.rs::abor_pipelined_with_retr_stops_the_transfer
#[test]
fn abor_pipelined_with_retr_stops_the_transfer() {
    let mut t = T::logged_in("TimeOut 60");
    t.pasv();
    t.client(&["RETR big.bin", "ABOR"]);
    t.server_pasv();
    assert_eq!(t.server_lines(), ["RETR big.bin"]);
    t.server(&["150 here it comes"]);
    assert_eq!(t.codes(), ["150"]);
    // Taken at once: no data connection, no pump.
    assert!(!t.out.iter().any(|a| matches!(a, Action::StartPump { .. })));
    assert!(t.took(Action::CloseData));
    assert_eq!(t.server_lines(), ["ABOR", "NOOP"]);
    t.server(&["426 aborted", "226 ABOR ok", "200 NOOP ok"]);
    assert_eq!(t.codes(), ["426", "226"]);
    t.noop_works();
}

// twin of tests/abort.rs::abor_before_the_client_connects_its_data_connection_acts_at_once
#[test]
fn abor_before_the_client_connects_its_data_connection_acts_at_once() {
    let mut t = T::logged_in("TimeOut 60");
    t.until_150("RETR big.bin");
    assert!(t.s.interest().client, "ABOR not watched for");
    t.client(&["ABOR"]);
    assert!(t.took(Action::CloseData));
    assert_eq!(t.server_lines(), ["ABOR", "NOOP"]);
    t.server(&["426 aborted", "226 ABOR ok", "200 NOOP ok"]);
    assert_eq!(t.codes(), ["426", "226"]);
    t.noop_works();
    // The next transfer works.
    t.transfer("RETR small.txt", Direction::Download);
    t.ended(6, true);
    t.server(&["226 done"]);
    assert_eq!(t.codes(), ["226"]);
}

#[test]
fn abor_after_the_final_reply_is_relayed_as_an_ordinary_command() {
    let mut t = T::logged_in("");
    t.transfer("RETR f", Direction::Download);
    t.ended(10, true);
    t.server(&["226 done"]);
    assert_eq!(t.codes(), ["226"]);
    t.client(&["ABOR"]);
    assert_eq!(t.server_lines(), ["ABOR"]);
    t.server(&["225 No transfer to abort"]);
    assert_eq!(t.codes(), ["225"]);
}

#[test]
fn abor_refused_by_valid_commands_does_not_stop_a_transfer_and_is_refused_after_it() {
    let mut t = T::logged_in("ValidCommands USER PASS QUIT PASV RETR NOOP");
    t.transfer("RETR f", Direction::Download);
    t.client(&["ABOR"]);
    assert!(!t.out.iter().any(|a| matches!(a, Action::StopPump { .. })));
    t.ended(10, true);
    t.server(&["226 done"]);
    assert_eq!(t.codes(), ["226", "502"]);
    assert!(t.server_lines().is_empty());
}

#[test]
fn commands_sent_during_a_transfer_wait_for_its_226() {
    let mut t = T::logged_in("");
    t.transfer("RETR f", Direction::Download);
    t.client(&["PWD"]);
    assert!(t.server_lines().is_empty());
    t.ended(10, true);
    t.server(&["226 done"]);
    assert_eq!(t.server_lines(), ["PWD"]);
    t.server(&["257 \"/\""]);
    assert_eq!(t.codes(), ["226", "257"]);
}

#[test]
fn no_reply_to_abor_within_timeout_is_421() {
    let mut t = T::logged_in("TimeOut 20");
    t.transfer("RETR f", Direction::Download);
    t.client(&["ABOR"]);
    t.ended(10, false);
    t.server_lines();
    t.secs(20);
    assert_eq!(t.codes(), ["421"]);
    assert!(matches!(t.end(), Some(End::ServerClosed(_))));
}

#[test]
fn abor_pipelined_with_a_refused_retr_is_relayed_after_the_refusal() {
    let mut t = T::logged_in("");
    t.pasv();
    t.client(&["RETR missing", "ABOR"]);
    t.server_pasv();
    assert_eq!(t.server_lines(), ["RETR missing"]);
    t.server(&["550 No such file"]);
    assert_eq!(t.server_lines(), ["ABOR"]);
    t.server(&["225 No transfer to abort"]);
    assert_eq!(t.codes(), ["550", "225"]);
}

#[test]
fn abor_while_the_server_has_not_connected_its_data_connection_acts_at_once() {
    let mut t = T::logged_in("TimeOut 60\nDestinationTransferMode active");
    t.pasv();
    t.client(&["RETR big.bin"]);
    t.server_port();
    assert_eq!(t.server_lines(), ["RETR big.bin"]);
    t.server(&["150 here it comes"]);
    assert_eq!(t.codes(), ["150"]);
    // Today interest().client is false here, so a driver does not even
    // read the ABOR; fed anyway, it stays unread until TimeOut (then 425,
    // and the ABOR is relayed as an ordinary command).
    t.client(&["ABOR"]);
    assert_eq!(t.server_lines(), ["ABOR", "NOOP"]);
    t.server(&["426 aborted", "226 ABOR ok", "200 NOOP ok"]);
    assert_eq!(t.codes(), ["426", "226"]);
}

// ----- logged in: the server's 421 ---------------------------------------------------

#[test]
fn a_421_reply_to_a_command_is_relayed_once_when_the_server_then_closes() {
    let mut t = T::logged_in("");
    t.client(&["PWD"]);
    t.server_lines();
    t.server(&["421 Service shutting down"]);
    t.event(Event::ServerEof);
    assert_eq!(t.client_lines(), ["421 Service shutting down"]);
    assert!(matches!(t.end(), Some(End::ServerClosed(_))));
}

#[test]
fn a_421_during_a_transfer_waits_for_its_end_and_is_relayed_once() {
    let mut t = T::logged_in("");
    t.transfer("RETR f", Direction::Download);
    t.server(&["421 Going down"]);
    t.event(Event::ServerEof);
    // The server is gone: the session ends with one 421, not two.
    let lines = t.client_lines();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("421")).count(),
        1,
        "{lines:?}"
    );
    assert!(t.end().is_some());
}

// ----- expecting USER: the early connection ---------------------------------------

// twin of tests/session.rs::login_works_after_the_server_dropped_the_early_connection
#[test]
fn login_works_after_the_server_dropped_the_early_connection() {
    let mut t = T::new("");
    t.event(Event::EarlyConnecting(Some(sa(SERVER))));
    t.client(&["USER anon"]);
    assert!(t.take(|a| matches!(a, Action::Resolve { .. })));
    t.event(Event::Resolved(Ok(vec![sa(SERVER)])));
    assert!(
        t.take(|a| matches!(a, Action::ConnectServer { early: true, .. })),
        "{:?}",
        t.out
    );
    t.event(Event::ServerConnected {
        local: sa(SERVER_LOCAL),
    });
    t.server(&["220 hi"]);
    assert!(t.took(Action::CheckServer), "{:?}", t.out);
    // The server gave up on the silent early connection long ago.
    t.server(&["421 Control connection timed out."]);
    t.event(Event::ServerChecked);
    assert!(
        t.client_lines().is_empty(),
        "the early 421 reached the client"
    );
    assert!(t.took(Action::CloseServer));
    assert!(
        t.take(|a| matches!(a, Action::ConnectServer { early: false, .. })),
        "{:?}",
        t.out
    );
    let logs = t.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("early connection to server") && l.contains("connecting again")),
        "{logs:?}"
    );
    t.event(Event::ServerConnected {
        local: sa(SERVER_LOCAL),
    });
    t.server(&["220 hi again"]);
    assert_eq!(t.server_lines(), ["USER anon"]);
    t.server(&["331 password please"]);
    assert_eq!(t.codes(), ["331"]);
}

#[test]
fn feat_before_login_with_an_early_connection_asks_the_server_and_keeps_it_for_user() {
    let mut t = T::new("");
    t.event(Event::EarlyConnecting(Some(sa(SERVER))));
    t.client(&["FEAT"]);
    assert!(t.take(|a| matches!(a, Action::ConnectServer { early: true, .. })));
    t.event(Event::ServerConnected {
        local: sa(SERVER_LOCAL),
    });
    t.server(&["220 hi"]);
    assert!(t.took(Action::CheckServer));
    t.event(Event::ServerChecked);
    assert_eq!(t.server_lines(), ["FEAT"]);
    t.server(&["211-Features:", " MLST type*;", " AUTH TLS", "211 End"]);
    assert_eq!(
        t.client_lines(),
        ["211-Features:", " MLST type*;", " EPRT", " EPSV", "211 End"]
    );
    t.client(&["USER anon"]);
    assert!(t.take(|a| matches!(a, Action::Resolve { .. })));
    t.event(Event::Resolved(Ok(vec![sa(SERVER)])));
    // The same connection: no new connect, USER at once.
    assert!(
        !t.out
            .iter()
            .any(|a| matches!(a, Action::ConnectServer { .. }))
    );
    assert_eq!(t.server_lines(), ["USER anon"]);
}

/// The pump of a transfer without TLS on either side, at most `rate`
/// bytes per second.
fn plain_pump(direction: Direction, rate: Option<u64>) -> Action {
    Action::StartPump {
        direction,
        client_tls: false,
        server_tls: false,
        client_reuse: false,
        rate,
    }
}

// ----- rate limits (SPEC 14) ----------------------------------------------------

#[test]
fn the_pump_carries_the_rate_of_the_users_context_for_its_direction() {
    let limits = "MaxDownloadRate 1m\nMaxUploadRate 2m\n[anon]\nMaxUploadRate 300k";
    let cases = [
        ("RETR f", Direction::Download, Some(1 << 20)),
        ("LIST", Direction::Download, Some(1 << 20)),
        ("STOR f", Direction::Upload, Some(300 << 10)),
        ("APPE f", Direction::Upload, Some(300 << 10)),
    ];
    for (cmd, way, rate) in cases {
        let mut t = T::logged_in(limits);
        t.until_150(cmd);
        t.client_connects();
        assert!(t.took(plain_pump(way, rate)), "{cmd}: {:?}", t.out);
    }
    // Another user's context, or none: the global values, or no limit.
    let mut t = T::logged_in("MaxDownloadRate 1m\n[bob]\nMaxDownloadRate 0");
    t.until_150("RETR f");
    t.client_connects();
    assert!(
        t.took(plain_pump(Direction::Download, Some(1 << 20))),
        "{:?}",
        t.out
    );
    let mut t = T::logged_in("MaxUploadRate 1m\n[anon]\nMaxUploadRate 0");
    t.until_150("STOR f");
    t.client_connects();
    assert!(t.took(plain_pump(Direction::Upload, None)), "{:?}", t.out);
}

// ----- TLS (SPEC 10) -------------------------------------------------------------

/// Lines that turn TLS on towards the client (the files are not read here).
const CLIENT_TLS: &str = "TLSCertificateFile /c.pem\nTLSKeyFile /k.pem\nClientTLS ";

impl T {
    /// AUTH TLS, the handshake done, PBSZ 0 and PROT P.
    fn secure_client(&mut self) {
        self.client(&["AUTH TLS"]);
        assert_eq!(self.codes(), ["234"]);
        assert!(self.take(|a| matches!(
            a,
            Action::StartTls {
                peer: Peer::Client,
                ..
            }
        )));
        self.event(Event::TlsReady {
            peer: Peer::Client,
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
        });
        self.client(&["PBSZ 0", "PROT P"]);
        assert_eq!(self.codes(), ["200", "200"]);
    }
}

#[test]
fn with_client_tls_off_auth_is_refused_and_feat_lists_no_auth() {
    let mut t = T::new("");
    t.client(&["AUTH TLS"]);
    assert_eq!(t.codes(), ["502"]);
    t.client(&["FEAT"]);
    let feat = t.client_lines().join("\n");
    assert!(!feat.contains("AUTH"), "{feat}");
    assert!(t.server_lines().is_empty());
}

#[test]
fn with_client_tls_optional_feat_lists_auth_pbsz_and_prot() {
    let mut t = T::new(&format!("{CLIENT_TLS}optional"));
    t.client(&["FEAT"]);
    let feat = t.client_lines().join("\n");
    for f in [" AUTH TLS", " PBSZ", " PROT"] {
        assert!(feat.contains(f), "{f} missing: {feat}");
    }
}

#[test]
fn auth_tls_answers_234_and_asks_the_driver_for_the_handshake() {
    let mut t = T::new(&format!("{CLIENT_TLS}optional"));
    t.client(&["AUTH TLS"]);
    assert_eq!(t.codes(), ["234"]);
    assert!(t.take(|a| matches!(
        a,
        Action::StartTls {
            peer: Peer::Client,
            ..
        }
    )));
    // Nothing is read from the client until the handshake is done.
    assert!(!t.s.interest().client);
}

#[test]
fn clear_text_pipelined_after_auth_is_dropped_not_obeyed() {
    let mut t = T::new(&format!("{CLIENT_TLS}optional"));
    // An attacker on the path appends a command to AUTH in clear text.
    t.client(&["AUTH TLS", "USER injected"]);
    assert_eq!(t.codes(), ["234"]);
    t.event(Event::TlsReady {
        peer: Peer::Client,
        version: "TLSv1.3".into(),
        cipher: "x".into(),
    });
    assert!(t.client_lines().is_empty());
    assert!(!t.out.iter().any(|a| matches!(a, Action::Resolve { .. })));
    t.client(&["NOOP"]);
    assert_eq!(t.codes(), ["530"]);
}

#[test]
fn pbsz_and_prot_need_auth_first_and_their_order() {
    let mut t = T::new(&format!("{CLIENT_TLS}optional"));
    t.client(&["PBSZ 0", "PROT P"]);
    assert_eq!(t.codes(), ["503", "503"]);
    t.client(&["AUTH TLS"]);
    t.take(|a| matches!(a, Action::StartTls { .. }));
    t.event(Event::TlsReady {
        peer: Peer::Client,
        version: "v".into(),
        cipher: "c".into(),
    });
    t.client(&["PROT P", "PBSZ 0", "PROT S", "PROT P", "AUTH TLS"]);
    assert_eq!(t.codes(), ["234", "503", "200", "536", "200", "503"]);
}

#[test]
fn ccc_is_refused_and_other_security_commands_are_not_relayed() {
    let mut t = T::logged_in(&format!("{CLIENT_TLS}optional"));
    t.client(&["CCC", "ADAT x", "MIC x"]);
    assert_eq!(t.codes(), ["534", "502", "502"]);
    assert!(t.server_lines().is_empty());
}

#[test]
fn security_commands_need_not_be_in_valid_commands() {
    let mut t = T::new(&format!(
        "{CLIENT_TLS}optional\nValidCommands USER,PASS,QUIT"
    ));
    t.client(&["AUTH TLS"]);
    assert_eq!(t.codes(), ["234"]);
}

#[test]
fn client_tls_required_refuses_user_in_clear_and_data_without_prot_p() {
    let mut t = T::new(&format!("{CLIENT_TLS}required"));
    t.client(&["USER anon"]);
    assert_eq!(t.codes(), ["530"]);
    assert!(!t.out.iter().any(|a| matches!(a, Action::Resolve { .. })));
    t.client(&["AUTH TLS"]);
    assert_eq!(t.codes(), ["234"]);
    t.take(|a| matches!(a, Action::StartTls { .. }));
    t.event(Event::TlsReady {
        peer: Peer::Client,
        version: "v".into(),
        cipher: "c".into(),
    });
    t.login();
    t.pasv();
    t.complete_prefetch();
    t.client(&["RETR f"]);
    assert_eq!(t.codes(), ["521"]);
    assert!(t.server_lines().is_empty());
}

#[test]
fn a_client_with_prot_p_gets_tls_data_connections() {
    let mut t = T::new(&format!("{CLIENT_TLS}optional"));
    t.secure_client();
    t.login();
    t.until_150("RETR f");
    t.client_connects();
    let pump = Action::StartPump {
        direction: Direction::Download,
        client_tls: true,
        server_tls: false,
        client_reuse: true,
        rate: None,
    };
    assert!(t.took(pump), "{:?}", t.out);
}

#[test]
fn client_tls_require_reuse_no_lets_the_driver_take_a_new_tls_session() {
    let mut t = T::new(&format!("{CLIENT_TLS}optional\nClientTLSRequireReuse no"));
    t.secure_client();
    t.login();
    t.until_150("RETR f");
    t.client_connects();
    let pump = Action::StartPump {
        direction: Direction::Download,
        client_tls: true,
        server_tls: false,
        client_reuse: false,
        rate: None,
    };
    assert!(t.took(pump), "{:?}", t.out);
}

#[test]
fn a_data_connection_that_does_not_resume_is_refused_425_and_logged() {
    let mut t = T::new(&format!("{CLIENT_TLS}optional"));
    t.secure_client();
    t.login();
    t.until_150("RETR f");
    t.client_connects();
    t.event(Event::DataTlsFailed {
        peer: Peer::Client,
        why: "the client made a new TLS session".into(),
        not_resumed: true,
    });
    assert!(
        t.logs()
            .iter()
            .any(|l| l.contains("TLS session not resumed"))
    );
    assert_eq!(t.server_lines(), ["ABOR"]);
    t.server(&["426 aborted", "226 abort ok"]);
    assert_eq!(t.codes(), ["425"]);
    t.client(&["NOOP"]);
    assert_eq!(t.server_lines(), ["NOOP"]);
}

#[test]
fn server_tls_required_secures_the_server_leg_before_user() {
    let mut t = T::new("ServerTLS required\nServerTLSName ftp.example");
    t.client(&["USER anon"]);
    t.connect();
    assert_eq!(t.server_lines(), ["AUTH TLS"]);
    t.server(&["234 go ahead"]);
    let started = t.take(|a| {
        matches!(a, Action::StartTls { peer: Peer::Server, name, verify: true }
            if name == "ftp.example")
    });
    assert!(started, "{:?}", t.out);
    t.event(Event::TlsReady {
        peer: Peer::Server,
        version: "TLSv1.3".into(),
        cipher: "c".into(),
    });
    assert_eq!(t.server_lines(), ["PBSZ 0"]);
    t.server(&["200 PBSZ=0"]);
    assert_eq!(t.server_lines(), ["USER anon"]);
}

// SPEC 10: ServerTLSName is the name for destinations given as addresses;
// a host name the user asked for is verified as itself.
#[test]
fn server_tls_name_never_replaces_a_host_name_the_login_gave() {
    let mut t = T::new(
        "ServerTLS required\nServerTLSName other.example\nAllowMagicUser yes\n\
         AllowedDestinations 198.51.100.0/24",
    );
    t.client(&["USER anon@ftp.example.org"]);
    t.connect();
    assert_eq!(t.server_lines(), ["AUTH TLS"]);
    t.server(&["234 go ahead"]);
    let started = t.take(|a| {
        matches!(a, Action::StartTls { peer: Peer::Server, name, .. } if name == "ftp.example.org")
    });
    assert!(started, "{:?}", t.out);
    // An address: ServerTLSName.
    let mut t = T::new(
        "ServerTLS required\nServerTLSName other.example\nAllowMagicUser yes\n\
         AllowedDestinations 198.51.100.0/24",
    );
    t.client(&["USER anon@198.51.100.7"]);
    t.connect();
    t.server(&["234 go ahead"]);
    let started = t.take(|a| {
        matches!(a, Action::StartTls { peer: Peer::Server, name, .. } if name == "other.example")
    });
    assert!(started, "{:?}", t.out);
}

#[test]
fn server_tls_required_refused_by_the_server_ends_with_421() {
    let mut t = T::new("ServerTLS required");
    t.client(&["USER anon"]);
    t.connect();
    assert_eq!(t.server_lines(), ["AUTH TLS"]);
    t.server(&["500 AUTH not understood"]);
    assert_eq!(t.codes(), ["421"]);
    assert!(matches!(t.end(), Some(End::Unreachable(_))));
}

#[test]
fn server_tls_auto_stays_plain_when_feat_offers_no_auth_and_says_so() {
    let mut t = T::new("ServerTLS auto");
    t.client(&["USER anon"]);
    t.connect();
    assert_eq!(t.server_lines(), ["FEAT"]);
    t.server(&["211-Features:", " MDTM", "211 End"]);
    assert!(t.logs().iter().any(|l| l.contains("downgrade")));
    assert_eq!(t.server_lines(), ["USER anon"]);
}

#[test]
fn a_failed_server_certificate_check_ends_the_session_with_421_and_the_reason() {
    let mut t = T::new("ServerTLS required");
    t.client(&["USER anon"]);
    t.connect();
    t.server(&["234 go ahead"]);
    t.take(|a| matches!(a, Action::StartTls { .. }));
    t.event(Event::TlsFailed {
        peer: Peer::Server,
        why: "invalid peer certificate: UnknownIssuer".into(),
    });
    assert_eq!(t.codes(), ["421"]);
    assert!(t.logs().iter().any(|l| l.contains("UnknownIssuer")));
}

#[test]
fn server_tls_protection_sends_prot_p_before_the_first_transfer_only() {
    let mut t = T::new("ServerTLS required");
    t.client(&["USER anon"]);
    t.connect();
    t.server(&["234 go ahead"]);
    t.take(|a| matches!(a, Action::StartTls { .. }));
    t.event(Event::TlsReady {
        peer: Peer::Server,
        version: "v".into(),
        cipher: "c".into(),
    });
    t.server(&["200 PBSZ=0"]);
    t.server_lines();
    t.server(&["331 pw"]);
    t.client(&["PASS x"]);
    t.server(&["230 ok"]);
    t.client_lines();
    t.server_lines();
    t.pasv();
    t.client(&["RETR f"]);
    assert_eq!(t.server_lines(), ["PROT P"]);
    t.server(&["200 PROT now Private"]);
    assert_eq!(t.server_lines(), ["PASV"]);
}

// ----- audit records (SPEC 12) ---------------------------------------------------

#[test]
fn a_session_is_audited_from_start_to_end() {
    let mut t = T::new("ValidCommands USER,PASS,PASV,RETR,QUIT");
    t.login();
    t.client(&["DELE x"]);
    assert_eq!(t.codes(), ["502"]);
    t.transfer("RETR f", Direction::Download);
    t.event(Event::TransferEnded {
        bytes: 5,
        finished: true,
        note: None,
    });
    t.server(&["226 done"]);
    t.client(&["QUIT"]);
    t.server(&["221 bye"]);
    let events = t.audit_events();
    assert!(matches!(events[0], AuditEvent::SessionStart));
    assert!(matches!(events[1], AuditEvent::Login));
    match &events[2] {
        AuditEvent::Refused {
            what: RefusalKind::Command,
            subject,
            reply: Some((502, _)),
            rule,
        } => {
            assert_eq!(subject, "DELE x");
            assert_eq!(rule.at, "test.conf:2");
            assert_eq!(rule.context, "global");
        }
        other => panic!("{other:?}"),
    }
    match &events[3] {
        AuditEvent::Transfer(t) => {
            assert_eq!(
                (t.command.as_str(), t.bytes, t.result),
                ("RETR", 5, "complete")
            );
            assert_eq!(
                (t.client_mode, t.server_mode),
                (Side::Passive, Side::Passive)
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        events[4],
        AuditEvent::SessionEnd { transfers: 1, .. }
    ));
    assert_eq!(events.len(), 5);
}

// SPEC 12: one record per transfer command, complete or not: also one the
// server refuses before any data moves.
#[test]
fn a_transfer_refused_by_the_server_is_audited_as_failed() {
    let mut t = T::logged_in("");
    t.pasv();
    t.client(&["RETR missing"]);
    t.server_pasv();
    assert_eq!(t.server_lines(), ["RETR missing"]);
    t.server(&["550 No such file"]);
    assert_eq!(t.codes(), ["550"]);
    let records: Vec<_> = t
        .audit_events()
        .into_iter()
        .filter_map(|e| match e {
            AuditEvent::Transfer(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        (
            records[0].command.as_str(),
            records[0].bytes,
            records[0].result
        ),
        ("RETR", 0, "failed")
    );
    t.noop_works();
}

// SPEC 4 and 12: every refusal is a WRN line and a command_refused record,
// also those no option in the file decides.
#[test]
fn rein_another_user_and_a_forced_magic_login_are_logged_and_audited_refusals() {
    let refused = |t: &mut T| -> Vec<(String, u16, String)> {
        t.audit_events()
            .into_iter()
            .filter_map(|e| match e {
                AuditEvent::Refused {
                    what: RefusalKind::Command,
                    subject,
                    reply: Some((code, _)),
                    rule,
                } => Some((subject, code, rule.at)),
                _ => None,
            })
            .collect()
    };
    let mut t = T::logged_in("");
    t.client(&["REIN"]);
    assert_eq!(t.codes(), ["502"]);
    t.client(&["USER other"]);
    assert_eq!(t.codes(), ["530"]);
    let logs = t.logs();
    assert!(
        logs.iter().any(|l| l.starts_with("REIN refused")),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.starts_with("USER refused")),
        "{logs:?}"
    );
    assert_eq!(
        refused(&mut t),
        [
            ("REIN".to_string(), 502, "default".to_string()),
            ("USER other".to_string(), 530, "default".to_string())
        ]
    );
    assert!(t.rest().is_empty(), "nothing relayed");
    let mut t = T::new("ForceMagicUser yes");
    t.client(&["USER anna"]);
    assert_eq!(t.codes(), ["530"]);
    assert!(t.logs().iter().any(|l| l.contains("ForceMagicUser")));
    assert_eq!(
        refused(&mut t),
        [("USER anna".to_string(), 530, "test.conf:2".to_string())]
    );
}

#[test]
fn pbsz_takes_a_number() {
    let mut t = T::new("TLSCertificateFile /c.pem\nTLSKeyFile /k.pem\nClientTLS optional");
    t.client(&["AUTH TLS"]);
    assert_eq!(t.codes(), ["234"]);
    t.rest();
    t.event(Event::TlsReady {
        peer: Peer::Client,
        version: "TLSv1.3".into(),
        cipher: "c".into(),
    });
    t.client(&["PBSZ abc", "PBSZ", "PBSZ 0"]);
    assert_eq!(t.codes(), ["501", "501", "200"]);
}

#[test]
fn ccc_is_a_logged_and_audited_refusal() {
    let mut t = T::new("TLSCertificateFile /c.pem\nTLSKeyFile /k.pem\nClientTLS optional");
    t.login();
    t.client(&["CCC"]);
    assert_eq!(t.codes(), ["534"]);
    assert!(t.logs().iter().any(|l| l.starts_with("CCC refused")));
    assert!(t.audit_events().iter().any(|e| matches!(
        e,
        AuditEvent::Refused {
            what: RefusalKind::Command,
            reply: Some((534, _)),
            ..
        }
    )));
}

#[test]
fn a_refused_destination_is_audited_with_the_login_name() {
    let mut t = T::new("AllowMagicUser yes");
    t.client(&["USER anna@127.0.0.1"]);
    assert!(t.take(|a| matches!(a, Action::Resolve { .. })));
    t.event(Event::Resolved(Ok(vec![sa("127.0.0.1:21")])));
    assert_eq!(t.codes(), ["530"]);
    let users: Vec<Option<String>> = std::mem::take(&mut t.audits)
        .into_iter()
        .filter(|r| {
            matches!(
                r.event,
                AuditEvent::Refused {
                    what: RefusalKind::Destination,
                    ..
                }
            )
        })
        .map(|r| r.user)
        .collect();
    assert_eq!(users, [Some("anna".to_string())]);
}

#[test]
fn a_bounce_is_audited_as_a_data_refusal_naming_same_address() {
    let mut t = T::logged_in("");
    t.audit_events();
    t.client(&["PORT 203,0,113,9,200,1"]);
    assert_eq!(t.codes(), ["504"]);
    match t.audit_events().as_slice() {
        [
            AuditEvent::Refused {
                what: RefusalKind::Data,
                rule,
                reply: Some((504, _)),
                ..
            },
        ] => {
            assert_eq!((rule.option, rule.at.as_str()), ("SameAddress", "default"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_noop_during_a_transfer_is_answered_at_once() {
    let mut t = T::logged_in("");
    t.transfer("RETR f", Direction::Download);
    t.client_lines();
    // Sent while the data moves: answered by the proxy, not relayed.
    t.client(&["NOOP"]);
    assert_eq!(t.codes(), ["200"]);
    assert!(t.server_lines().is_empty());
    t.event(Event::TransferEnded {
        bytes: 1,
        finished: true,
        note: None,
    });
    t.server(&["226 done"]);
    assert_eq!(t.codes(), ["226"]);
}

#[test]
fn a_noop_sent_with_the_transfer_command_waits_for_its_226() {
    let mut t = T::logged_in("");
    t.pasv();
    t.client(&["RETR f", "NOOP"]);
    t.server_pasv();
    assert_eq!(t.server_lines(), ["RETR f"]);
    t.server(&["150 here it comes"]);
    t.client_connects();
    // Behind the queued one, a later NOOP waits too: replies stay in order.
    t.client(&["NOOP"]);
    assert_eq!(t.codes(), ["150"]);
    t.event(Event::TransferEnded {
        bytes: 1,
        finished: true,
        note: None,
    });
    t.server(&["226 done"]);
    assert_eq!(t.codes(), ["226"]);
    assert_eq!(t.server_lines(), ["NOOP"]);
}

// ----- the server's side prepared ahead (issue 15) --------------------------------------

#[test]
fn after_pasv_the_transfer_command_costs_one_server_round_trip() {
    let mut t = T::logged_in("");
    t.pasv();
    t.complete_prefetch();
    assert!(t.rest().is_empty());
    t.client(&["RETR f"]);
    // No PASV and no connect now: the command goes to the server at once.
    assert_eq!(t.server_lines(), ["RETR f"]);
    t.server(&["150 sending"]);
    assert_eq!(t.codes(), ["150"]);
}

#[test]
fn a_prepared_connection_the_server_closed_is_replaced_at_the_transfer_command() {
    let mut t = T::logged_in("");
    t.pasv();
    t.complete_prefetch();
    t.server_data_open = false;
    t.client(&["RETR f"]);
    assert!(t.take(|a| matches!(a, Action::CheckServerData)));
    t.event(Event::ServerDataChecked { alive: false });
    // Asked again, as without preparation.
    assert_eq!(t.server_lines(), ["PASV"]);
    t.server(&[SERVER_227]);
    assert!(t.take(|a| matches!(
        a,
        Action::Connect {
            peer: Peer::Server,
            ..
        }
    )));
    t.event(Event::DataConnected(Peer::Server));
    assert_eq!(t.server_lines(), ["RETR f"]);
}

#[test]
fn rest_keeps_the_prepared_side_and_abor_drops_it() {
    let mut t = T::logged_in("");
    t.pasv();
    t.complete_prefetch();
    t.client(&["REST 100"]);
    assert_eq!(t.server_lines(), ["REST 100"]);
    t.server(&["350 restarting"]);
    assert_eq!(t.codes(), ["350"]);
    assert!(!t.out.iter().any(|a| matches!(a, Action::DropServerData)));
    t.client(&["ABOR"]);
    assert!(t.took(Action::DropServerData));
    assert_eq!(t.server_lines(), ["ABOR"]);
    t.server(&["225 no transfer"]);
    t.client_lines();
    // The transfer command asks the server anew.
    t.client(&["RETR f"]);
    assert_eq!(t.server_lines(), ["PASV"]);
}

// Found by a review against pyftpdlib, which connects at PORT time and
// answers 425 on its own when that connection is dropped unused: active
// towards the server, nothing is prepared ahead; PORT goes with the
// transfer command.
#[test]
fn in_active_mode_towards_the_server_nothing_is_sent_ahead() {
    let mut t = T::logged_in("DestinationTransferMode active");
    t.pasv();
    assert!(!t.server_pasv_sent);
    assert!(t.rest().is_empty(), "nothing towards the server yet");
    t.client(&["RETR f"]);
    t.server_port();
    assert_eq!(t.server_lines(), ["RETR f"]);
    t.server(&["150 sending"]);
    assert_eq!(t.codes(), ["150"]);
    assert_eq!(t.s.interest().accept, Some(Listener::Server));
}

// ----- several proxy hosts behind a load balancer ---------------------------

/// This host's own address, advertised as TranslatedAddress, while the
/// client's control connection came to the shared service address LOCAL.
const HOST_OWN: &str = "192.0.2.11";

/// A logged-in session on one of several proxy hosts: TranslatedAddress
/// `translated`, and the host's addresses `own` (read at start-up).
fn cluster_host(translated: &str, own: &[&str]) -> T {
    let mut t = T::with_params(
        |p| Params {
            translated: Some(translated.parse().unwrap()),
            own_addresses: own.iter().map(|a| a.parse().unwrap()).collect(),
            ..p
        },
        config(""),
    );
    t.login();
    t
}

#[test]
fn a_translated_address_of_this_host_is_advertised_and_the_listener_takes_every_address() {
    let mut t = cluster_host(HOST_OWN, &["192.0.2.1", HOST_OWN, "198.51.100.1"]);
    t.client(&["PASV"]);
    let any = "0.0.0.0".parse().unwrap();
    assert!(
        t.took(Action::Listen {
            listener: Listener::Client,
            ip: any,
            ports: None,
        }),
        "{:?}",
        t.out
    );
    t.event(Event::Listening {
        listener: Listener::Client,
        addr: SocketAddr::new(any, 50001),
    });
    assert_eq!(
        t.client_lines(),
        ["227 Entering Passive Mode (192,0,2,11,195,81)."]
    );
    t.client(&["RETR f"]);
    t.server_pasv();
    assert_eq!(t.server_lines(), ["RETR f"]);
    t.server(&["150 ok"]);
    assert_eq!(t.codes(), ["150"]);
    t.client_connects();
    assert!(t.took(plain_pump(Direction::Download, None)));
}

#[test]
fn a_translated_address_of_a_nat_in_front_leaves_the_listener_on_the_control_address() {
    // Not one of this host's addresses: the classic NAT case.
    let mut t = cluster_host("203.0.113.5", &["192.0.2.1", "198.51.100.1"]);
    t.client(&["PASV"]);
    assert!(
        t.took(Action::Listen {
            listener: Listener::Client,
            ip: sa(LOCAL).ip(),
            ports: None,
        }),
        "{:?}",
        t.out
    );
    t.event(Event::Listening {
        listener: Listener::Client,
        addr: sa(PASV_ADDR),
    });
    assert_eq!(
        t.client_lines(),
        ["227 Entering Passive Mode (203,0,113,5,195,81)."]
    );
    // EPSV stays available: the NAT forwards the passive range.
    let mut t = cluster_host("203.0.113.5", &["192.0.2.1", "198.51.100.1"]);
    t.client(&["EPSV"]);
    assert!(t.take(|a| matches!(a, Action::Listen { ip, .. } if *ip == sa(LOCAL).ip())));
}

#[test]
fn a_translated_address_equal_to_the_control_address_changes_nothing() {
    let mut t = cluster_host("192.0.2.1", &["192.0.2.1", "198.51.100.1"]);
    t.pasv();
    let mut t = cluster_host("192.0.2.1", &["192.0.2.1", "198.51.100.1"]);
    t.client(&["EPSV"]);
    assert!(t.take(|a| matches!(a, Action::Listen { ip, .. } if *ip == sa(LOCAL).ip())));
}

#[test]
fn with_a_translated_address_of_this_host_epsv_gets_the_listener_on_every_address_too() {
    let mut t = cluster_host(HOST_OWN, &["192.0.2.1", HOST_OWN]);
    t.client(&["EPSV"]);
    assert!(
        t.took(Action::Listen {
            listener: Listener::Client,
            ip: "0.0.0.0".parse().unwrap(),
            ports: None,
        }),
        "{:?}",
        t.out
    );
    t.event(Event::Listening {
        listener: Listener::Client,
        addr: "0.0.0.0:50001".parse().unwrap(),
    });
    assert_eq!(
        t.client_lines(),
        ["229 Entering Extended Passive Mode (|||50001|)"]
    );
}

#[test]
fn with_a_translated_address_of_this_host_active_connections_come_from_it() {
    let mut t = cluster_host(HOST_OWN, &["192.0.2.1", HOST_OWN]);
    t.port();
    t.client(&["RETR f"]);
    t.server_port();
    assert_eq!(t.server_lines(), ["RETR f"]);
    t.server(&["150 ok"]);
    assert_eq!(t.codes(), ["150"]);
    t.event(Event::Accepted {
        listener: Listener::Server,
        from: sa(SERVER_ACTIVE),
    });
    assert!(t.took(Action::KeepAccepted(Listener::Server)));
    assert!(
        t.take(
            |a| matches!(a, Action::Connect { peer: Peer::Client, target, bind, .. }
            if *target == sa(CLIENT_DATA) && *bind == HOST_OWN.parse::<IpAddr>().unwrap())
        ),
        "{:?}",
        t.out
    );
}

// A hostile server's surplus replies: relayed, they would answer the
// client's next commands (a server-chosen 227 for its PASV).
#[test]
fn surplus_and_unsolicited_server_replies_are_dropped_and_replies_stay_in_step() {
    let mut t = T::logged_in("");
    t.client(&["SYST"]);
    assert_eq!(t.server_lines(), ["SYST"]);
    t.server(&[
        "215 UNIX",
        "227 Entering Passive Mode (10,9,9,9,1,2)",
        "229 Entering Extended Passive Mode (|||4444|)",
    ]);
    assert_eq!(t.client_lines(), ["215 UNIX"]);
    assert!(
        t.logs()
            .iter()
            .any(|l| l.contains("passive-mode reply out of turn"))
    );
    // Later, while idle.
    t.server(&["227 Entering Passive Mode (10,9,9,9,1,2)"]);
    assert!(t.codes().is_empty());
    t.client(&["NOOP"]);
    assert_eq!(t.server_lines(), ["NOOP"]);
    t.server(&["200 NOOP ok"]);
    assert_eq!(t.client_lines(), ["200 NOOP ok"]);
    assert_eq!(t.end(), None);
}

#[test]
fn a_passive_mode_reply_to_a_relayed_command_is_not_relayed() {
    let mut t = T::logged_in("");
    t.client(&["SYST"]);
    t.server_lines();
    t.server(&["227 Entering Passive Mode (10,9,9,9,1,2)"]);
    assert_eq!(t.codes(), ["451"]);
    assert!(!t.client_lines().iter().any(|l| l.contains("10,9,9,9")));
}

#[test]
fn a_server_that_keeps_talking_out_of_turn_ends_the_session() {
    let mut t = T::logged_in("");
    let flood = vec!["200 hello"; crate::limits::MAX_UNSOLICITED_REPLIES as usize + 1];
    t.server(&flood);
    assert_eq!(t.codes(), ["421"]);
    assert!(matches!(t.end(), Some(End::ServerClosed(_))), "{:?}", t.out);
}

// Found by the session fuzzer: a 227 queued during a transfer was taken as
// the transfer's final reply and relayed.
#[test]
fn a_server_227_during_a_transfer_never_reaches_the_client() {
    let mut t = T::logged_in("");
    t.transfer("RETR f", Direction::Download);
    t.server(&["227 Entering Passive Mode (10,9,9,9,1,2)"]);
    t.ended(5, true);
    let lines = t.client_lines();
    assert!(!lines.iter().any(|l| l.contains("10,9,9,9")), "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("451"), "{lines:?}");
}

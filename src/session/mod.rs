//! THE session engine: the whole FTP protocol logic of one client session,
//! as a state machine that does no I/O.
//!
//! It takes [`Event`]s (bytes from the client or the server, the result of
//! a connect, a listen, an accept, a look-up, the end of a transfer, the
//! time) through [`Session::handle`] and answers with [`Action`]s (bytes to
//! send, connections to open or close, the data pump to start or stop, log
//! lines, the end) that the driver (`relay.rs`) takes with
//! [`Session::poll_action`] and performs. It never touches a socket, a file
//! or a clock: time comes in with every event, and [`Session::deadline`]
//! says when the driver must call back with [`Event::Timer`].
//! (rustls `State::handle`, quinn-proto `handle_event`/`poll_transmit`.)
//!
//! Blocking work (connect, listen, DNS, LDAP) is an action whose result the
//! driver hands back as the next event; the engine waits for it in a state
//! of its own, so a transcript of events and actions describes a session
//! completely (see `tests.rs`).
//!
//! States are named by what they wait for ([`State`]). Everything the
//! client sends is checked by the command filter here, before any byte of
//! it can become an action towards the server.
#![forbid(unsafe_code)]

pub mod check;
mod features;
mod login;
mod transfer;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

pub use features::{Direction, Side, direction, features, server_mode};
pub use login::{EarlyTarget, LoginRefusal, check_destination, early_target, parse_login};

use crate::config::{ClientTls, Config, Level, PortRange, UserSettings};
use crate::ftp::command::{self, Command, Kind};
use crate::ftp::escape;
use crate::ftp::line::{Line, LineBuffer};
use crate::ftp::reply::{self, Reply, ReplyParser};
use crate::ldap::{Found, LdapError};
use crate::limits;
use crate::policy::filter::{CommandFilter, Verdict};

use login::{Connecting, LookUp, Pending, Plan};
use transfer::{Abort, Prefetched, SetupAbort, Transfer};

/// Why a session ended; logged once, mapped to the exit status by the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The client said QUIT.
    Quit,
    /// The client closed its control connection.
    ClientClosed,
    /// The server closed its control connection or broke the protocol.
    ServerClosed(String),
    /// The server could not be reached.
    Unreachable(String),
    /// TimeOut seconds without activity.
    Timeout,
    /// No login within limits::LOGIN_DEADLINE_SECS.
    LoginTimeout,
    /// Reading from or writing to the client failed.
    ClientError(String),
    /// The LDAP directory (LDAPServer) could not be used.
    Directory(String),
    /// Too many failed proxy authentications (UserAuthType ldap).
    AuthFailures,
    /// Too many USER commands looked up in the directory.
    TooManyLookups,
    /// Too many logins whose destination was looked up.
    TooManyResolves,
}

impl End {
    /// An end worth a warning and exit status 1.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            End::Quit | End::ClientClosed | End::Timeout | End::LoginTimeout
        )
    }
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Quit => f.write_str("client quit"),
            End::ClientClosed => f.write_str("client closed the connection"),
            End::ServerClosed(why) => write!(f, "server connection lost: {why}"),
            End::Unreachable(why) => write!(f, "server unreachable: {why}"),
            End::Timeout => f.write_str("idle timeout"),
            End::LoginTimeout => f.write_str("login timeout"),
            End::ClientError(why) => write!(f, "client connection error: {why}"),
            End::Directory(why) => write!(f, "LDAP directory unusable: {why}"),
            End::AuthFailures => f.write_str("too many failed authentications"),
            End::TooManyLookups => f.write_str("too many directory look-ups"),
            End::TooManyResolves => f.write_str("too many destination look-ups"),
        }
    }
}

/// Why a session ended when the server said 421 itself (relayed as is).
const SERVER_SENT_421: &str = "server sent 421";

/// Which of the proxy's two kinds of data listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Offered to the client (its PASV/EPSV).
    Client,
    /// Announced to the server (PORT/EPRT when the proxy is active... to
    /// the server, i.e. the server connects to the proxy).
    Server,
}

/// One end of a transfer's data path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Client,
    Server,
}

/// What happened, as the driver tells it.
#[derive(Debug)]
pub enum Event<'b> {
    /// Bytes the client sent on the control connection.
    ClientBytes(&'b [u8]),
    /// The client closed its side of the control connection.
    ClientEof,
    /// Reading from or writing to the client failed.
    ClientError(String),
    /// Bytes the server sent on the control connection.
    ServerBytes(&'b [u8]),
    /// The server closed the control connection.
    ServerEof,
    /// Reading from or writing to the server failed.
    ServerError(String),
    /// Answer to [`Action::ConnectEarly`]: a connection begun, to this place.
    EarlyConnecting(Option<SocketAddr>),
    /// Answer to [`Action::ConnectServer`]: connected, from `local`.
    ServerConnected { local: SocketAddr },
    /// Answer to [`Action::ConnectServer`]: no connection.
    ServerConnectFailed(String),
    /// Answer to [`Action::CheckServer`]: what the server had sent came
    /// first as `ServerBytes`/`ServerEof`.
    ServerChecked,
    /// Answer to [`Action::Resolve`]: the addresses (never empty), or why not.
    Resolved(Result<Vec<SocketAddr>, String>),
    /// Answer to [`Action::LookUp`].
    LookedUp(Result<Found, LdapError>),
    /// Answer to [`Action::Bind`]: Ok(Ok) bound, Ok(Err(code)) refused.
    Bound(Result<Result<(), u32>, LdapError>),
    /// Answer to [`Action::Listen`].
    Listening {
        listener: Listener,
        addr: SocketAddr,
    },
    /// Answer to [`Action::Listen`]: `in_use` when the port range is full.
    ListenFailed {
        listener: Listener,
        error: String,
        in_use: bool,
    },
    /// Answer to [`Action::Connect`].
    DataConnected(Peer),
    /// Answer to [`Action::Connect`].
    DataConnectFailed { peer: Peer, error: String },
    /// A connection on a listener the engine asked to watch, from `from`;
    /// the engine answers with [`Action::KeepAccepted`] or
    /// [`Action::DropAccepted`] before anything else.
    Accepted {
        listener: Listener,
        from: SocketAddr,
    },
    /// accept(2) failed on a watched listener.
    AcceptFailed { listener: Listener, error: String },
    /// The data pump moved bytes or woke up (an idle transfer times out).
    DataMoved,
    /// The pump has stopped (by itself or after [`Action::StopPump`]):
    /// `finished` when the source ended and everything was delivered.
    TransferEnded {
        bytes: u64,
        finished: bool,
        note: Option<String>,
    },
    /// Answer to [`Action::StartTls`]: the handshake is done.
    TlsReady {
        peer: Peer,
        version: String,
        cipher: String,
    },
    /// Answer to [`Action::StartTls`]: the handshake failed.
    TlsFailed { peer: Peer, why: String },
    /// Answer to [`Action::StartPump`] instead of the transfer: a data
    /// connection's TLS handshake failed, or a client's did not resume the
    /// control session when ClientTLSRequireReuse says it must.
    DataTlsFailed {
        peer: Peer,
        why: String,
        not_resumed: bool,
    },
    /// Answer to [`Action::CheckServerData`].
    ServerDataChecked { alive: bool },
    /// The time has come (see [`Session::deadline`]).
    Timer,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the client's control connection.
    SendClient(Vec<u8>),
    /// Write this line (CRLF included) to the server's control connection.
    SendServer(Vec<u8>),
    /// One log line.
    Log(Level, String),
    /// Begin the early server connection if the configuration allows one
    /// (names resolved now); answer [`Event::EarlyConnecting`].
    ConnectEarly,
    /// Connect to the server's control port: finish the early connection
    /// when `early` (else drop it) or make a new one, within `timeout`.
    ConnectServer {
        dest: SocketAddr,
        ports: Option<PortRange>,
        early: bool,
        timeout: Duration,
    },
    /// Read once what the server has sent, if anything, without waiting;
    /// answer [`Event::ServerChecked`].
    CheckServer,
    /// Close the server control connection.
    CloseServer,
    /// Resolve a host name or address literal; answer [`Event::Resolved`].
    Resolve { host: String, port: u16 },
    /// Look the login up in the LDAP directory; answer [`Event::LookedUp`].
    /// With `password`, bind as the user with it (`ldap::binds_as_user`).
    LookUp {
        user: Vec<u8>,
        password: Option<Vec<u8>>,
    },
    /// Bind to the directory as `dn`; answer [`Event::Bound`].
    Bind { dn: Vec<u8>, password: Vec<u8> },
    /// Open a data listener; answer [`Event::Listening`] or `ListenFailed`.
    Listen {
        listener: Listener,
        ip: IpAddr,
        ports: Option<PortRange>,
    },
    /// Close a data listener (nothing if it is not open).
    CloseListener(Listener),
    /// Connect a data connection; answer `DataConnected`/`DataConnectFailed`.
    Connect {
        peer: Peer,
        target: SocketAddr,
        bind: IpAddr,
        ports: Option<PortRange>,
        timeout: Duration,
    },
    /// The connection just reported by `Accepted` is the transfer's.
    KeepAccepted(Listener),
    /// The connection just reported by `Accepted` is closed.
    DropAccepted(Listener),
    /// TLS on this leg's control connection, now: the client's after its
    /// 234, the server's after the server's 234 or at connect (implicit).
    /// Answer [`Event::TlsReady`] or [`Event::TlsFailed`].
    StartTls {
        peer: Peer,
        /// The server's name to verify (and to resume under).
        name: String,
        /// ServerTLSVerify.
        verify: bool,
    },
    /// Both data connections are there: secure those that are to be TLS
    /// (the proxy is the TLS server towards the client, the TLS client
    /// towards the server, resuming the control sessions), then move the
    /// bytes this way, at most `rate` bytes per second (MaxDownloadRate or
    /// MaxUploadRate; None: no limit). A failed handshake answers
    /// [`Event::DataTlsFailed`].
    StartPump {
        direction: Direction,
        client_tls: bool,
        server_tls: bool,
        /// The client's TLS data connection must resume the control
        /// connection's session (ClientTLSRequireReuse); one that does not
        /// answers [`Event::DataTlsFailed`] with `not_resumed`.
        client_reuse: bool,
        rate: Option<u64>,
    },
    /// Stop the pump now: `abort` drops both connections, else the sink is
    /// shut down cleanly. Answer [`Event::TransferEnded`].
    StopPump { abort: bool },
    /// Close the data connections of a transfer that did not start.
    CloseData,
    /// Close the server's side of a data connection prepared ahead (its
    /// connection, or the listener for it); the client's stays.
    DropServerData,
    /// Whether the server's data connection (prepared ahead) is still
    /// open, without waiting; answer [`Event::ServerDataChecked`].
    CheckServerData,
    /// One audit record (SPEC 12): AuditLog, and XferLog for transfers.
    Audit(Box<AuditRecord>),
    /// The session is over: close everything and exit.
    Close(End),
}

/// An audit record: the event and what the session knows when it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub event: AuditEvent,
    pub client: SocketAddr,
    pub server: Option<SocketAddr>,
    pub user: Option<String>,
    pub class: Option<String>,
    /// TLS on the client's and the server's control connection.
    pub tls: (bool, bool),
}

/// What an audit record is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditEvent {
    SessionStart,
    /// The server accepted the login (230).
    Login,
    /// A refusal: what was refused, the reply sent (if one was), and the
    /// deciding rule.
    Refused {
        what: RefusalKind,
        subject: String,
        reply: Option<(u16, String)>,
        rule: Rule,
    },
    Transfer(TransferRecord),
    SessionEnd {
        reason: String,
        millis: u64,
        transfers: u32,
        bytes_down: u64,
        bytes_up: u64,
    },
}

/// Which kind of refusal (the AuditLog event name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// `command_refused`
    Command,
    /// `destination_refused`
    Destination,
    /// `data_refused`: bounce, theft, a bad server address, TLS reuse
    Data,
}

/// One RETR/STOR/STOU/APPE/LIST/NLST/MLSD, complete or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    pub command: String,
    /// The argument as the client gave it.
    pub path: Vec<u8>,
    pub direction: Direction,
    pub bytes: u64,
    pub millis: u64,
    /// `complete`, `aborted` or `failed`.
    pub result: &'static str,
    pub client_mode: Side,
    pub server_mode: Side,
    /// TYPE I (else ASCII, the default).
    pub binary: bool,
}

/// What the driver should watch for the engine (see [`Session::interest`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    /// Read the client's control connection.
    pub client: bool,
    /// Read the server's control connection (when there is one).
    pub server: bool,
    /// Accept on this listener.
    pub accept: Option<Listener>,
    /// The data pump runs.
    pub pump: bool,
}

/// What the session knows when it starts.
pub struct Params<'a> {
    pub cfg: &'a Config,
    pub client_addr: SocketAddr,
    pub local_addr: SocketAddr,
    /// TranslatedAddress, resolved before the jail.
    pub translated: Option<Ipv4Addr>,
    /// Greeting lines (already substituted) sent before anything else.
    pub greeting: Vec<u8>,
    /// Where the client originally connected, when netfilter redirected it.
    pub original_dst: Option<SocketAddr>,
    /// What a client-chosen destination may not be: the proxy itself.
    pub proxy_self: Vec<SocketAddr>,
    /// Every address of the proxy's host, refused as a client-chosen
    /// destination unless AllowedDestinations names it.
    pub own_addresses: Vec<IpAddr>,
    /// Where a server connection begun before the session started goes.
    pub early: Option<SocketAddr>,
    /// Log lines below this level are not even formatted.
    pub log_level: Level,
    /// The client's control connection is TLS already (ClientTLSImplicit).
    pub client_tls: bool,
}

/// The server's control connection as the engine sees it.
#[derive(Debug, Clone, Copy)]
struct Server {
    addr: SocketAddr,
    local: SocketAddr,
}

/// What a final reply to a relayed command is for.
#[derive(Debug)]
enum Purpose {
    /// Relay the 1xx and the final reply to the client.
    Relay,
    /// QUIT: relay, then end the session (a missing reply is no error).
    Quit,
    /// FEAT: build the client's FEAT from it; `before_login` puts the
    /// connection back aside for USER.
    Feat { before_login: bool },
    /// USER sent after the proxy authenticated the user: the client has its
    /// 331 already; a 331 from the server gets PASS with this password.
    UserThenPass(Vec<u8>),
}

/// The session's state, named by what it waits for.
enum State<'a> {
    /// Not logged in: USER (FEAT, QUIT) from the client.
    ExpectUser,
    /// UserAuthType ldap: the 331 is sent, PASS comes next.
    ExpectPass(Box<Pending<'a>>),
    /// The addresses of the login's destination.
    ExpectResolved(Box<Plan<'a>>),
    /// The directory's entry for the login.
    ExpectLookUp(Box<LookUp>),
    /// The directory's answer to a bind as the user.
    ExpectBind(Box<(Pending<'a>, Vec<u8>)>),
    /// The control connection to the server.
    ExpectConnected(Box<Connecting>),
    /// The server's 220.
    ExpectGreeting(Box<Connecting>),
    /// Whether the early connection is still open after its 220.
    ExpectStillOpen(Box<Connecting>),
    /// TLS on the server's control connection (FEAT, AUTH, handshake, PBSZ).
    ExpectServerSecure(Box<Connecting>, Secure),
    /// The client's TLS handshake after AUTH; then back to the state kept.
    ExpectClientTls(Box<State<'a>>),
    /// The server's answer to PROT before a transfer.
    ExpectServerProt(Box<Transfer>, bool),
    /// Logged in: any command from the client, unsolicited server replies.
    Ready,
    /// The server's final reply to a command it was sent.
    ExpectReply { purpose: Purpose, deadline: Instant },
    /// The passive listener offered to the client.
    ExpectListening { extended: bool },
    /// The server's answer to PASV/EPSV, then the connect to it.
    ExpectServerPassive(Box<Transfer>),
    /// The listener the server will connect to.
    ExpectServerListening(Box<Transfer>),
    /// The server's answer to PORT/EPRT.
    ExpectServerPortReply(Box<Transfer>),
    /// The data connection to the server (its passive port).
    ExpectServerConnected(Box<Transfer>),
    /// Whether a prepared connection to the server's data port is open.
    ExpectServerDataCheck(Box<Transfer>),
    /// The server's first reply to the transfer command (1xx or a refusal).
    ExpectTransferStart(Box<Transfer>),
    /// The data connections: the server's, then the client's.
    ExpectData(Box<Transfer>),
    /// The pump moves the data.
    Transferring(Box<Transfer>),
    /// The server's final reply after the data ended.
    ExpectTransferReply(Box<Transfer>),
    /// The server's replies to ABOR and NOOP.
    ExpectAbortReplies(Box<Abort>),
    /// The server's replies after a data connection could not be made.
    ExpectSetupAbort(Box<SetupAbort>),
    /// Closed: nothing more happens.
    Ended,
}

/// Where TLS towards the server stands while the connection is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Secure {
    /// FEAT sent (ServerTLS auto): does the server offer AUTH TLS?
    Feat,
    /// AUTH TLS sent.
    Auth,
    /// The handshake runs.
    Handshake,
    /// PBSZ 0 sent.
    Pbsz,
}

/// TLS on each leg (SPEC 10).
#[derive(Debug, Default, Clone, Copy)]
struct Tls {
    /// The client's control connection is TLS.
    client: bool,
    /// The client said PBSZ.
    client_pbsz: bool,
    /// The client said PROT P: its data connections are TLS.
    client_private: bool,
    /// The server's control connection is TLS.
    server: bool,
    /// The server was told PROT P.
    server_private: bool,
}

/// Totals for the end-of-session line.
#[derive(Default)]
struct Totals {
    transfers: u32,
    bytes_down: u64,
    bytes_up: u64,
}

/// One client session. See the module documentation.
pub struct Session<'a> {
    cfg: &'a Config,
    /// The settings of the logged-in user: a context of the file, or
    /// built from the user's LDAP entry.
    settings: Cow<'a, UserSettings>,
    level: Level,
    client_addr: SocketAddr,
    local_addr: SocketAddr,
    translated: Option<Ipv4Addr>,
    original_dst: Option<SocketAddr>,
    proxy_self: Vec<SocketAddr>,
    own_addresses: Vec<IpAddr>,
    state: State<'a>,
    actions: VecDeque<Action>,
    client_in: LineBuffer,
    client_eof: bool,
    /// client lines read during a transfer, handled after it
    queued: VecDeque<Line>,
    /// the server connection of the logged-in session
    server: Option<Server>,
    /// the name the login gave the server (for TLS: ServerTLSName wins)
    server_host: Option<String>,
    /// the server connection made for FEAT before USER, kept for USER
    greeted: Option<Server>,
    /// where the early connection (held by the driver) goes
    early: Option<SocketAddr>,
    server_lines: LineBuffer,
    parser: ReplyParser,
    replies: VecDeque<Reply>,
    user: Option<Vec<u8>>,
    /// The user's settings came from an LDAP entry.
    from_directory: bool,
    /// The server said 230 (audited once).
    logged_in: bool,
    /// TYPE I was the client's last TYPE (xferlog's `b`).
    binary: bool,
    auth_failures: u32,
    /// Server replies dropped because nothing asked for them.
    unsolicited: u32,
    lookups: u32,
    /// Destination look-ups (Action::Resolve for logins) so far.
    resolves: u32,
    /// the port of the open passive listener offered to the client
    pasv: Option<u16>,
    /// the client's data connection to that listener came before the
    /// transfer command: the driver holds it (its client data slot)
    pasv_held: bool,
    /// the client's PORT/EPRT address, not used yet
    port: Option<SocketAddr>,
    /// which of `pasv`/`port` the client chose last
    client_side: Option<Side>,
    /// the server's side of the next data connection, prepared ahead
    prefetched: Option<Prefetched>,
    epsv_all: bool,
    tls: Tls,
    /// a 421 went to the client: the session is ending and it knows
    closing_sent: bool,
    totals: Totals,
    started: Instant,
    /// the last sign of life from either side (for TimeOut)
    last_io: Instant,
    now: Instant,
}

impl<'a> Session<'a> {
    /// A session that has just been accepted: the greeting is the first
    /// action.
    pub fn new(p: Params<'a>, now: Instant) -> Session<'a> {
        let mut s = Session {
            cfg: p.cfg,
            settings: Cow::Borrowed(&p.cfg.global),
            level: p.log_level,
            client_addr: canonical(p.client_addr),
            local_addr: canonical(p.local_addr),
            translated: p.translated,
            original_dst: p.original_dst,
            proxy_self: p.proxy_self,
            own_addresses: p.own_addresses,
            state: State::ExpectUser,
            actions: VecDeque::new(),
            client_in: LineBuffer::new(),
            client_eof: false,
            queued: VecDeque::new(),
            server: None,
            server_host: None,
            greeted: None,
            early: p.early,
            server_lines: LineBuffer::new(),
            parser: ReplyParser::new(),
            replies: VecDeque::new(),
            user: None,
            from_directory: false,
            logged_in: false,
            binary: false,
            auth_failures: 0,
            unsolicited: 0,
            lookups: 0,
            resolves: 0,
            pasv: None,
            pasv_held: false,
            port: None,
            client_side: None,
            prefetched: None,
            epsv_all: false,
            tls: Tls {
                client: p.client_tls,
                ..Tls::default()
            },
            closing_sent: false,
            totals: Totals::default(),
            started: now,
            last_io: now,
            now,
        };
        s.audit(AuditEvent::SessionStart);
        s.send_client(p.greeting);
        // A DestinationAddress name (not connected to before the jail): the
        // lookup may wait for DNS, so it comes after the greeting, and the
        // connection still overlaps the client's USER.
        if s.early.is_none() {
            s.actions.push_back(Action::ConnectEarly);
        }
        s
    }

    /// The next thing to do, in order; None when the engine waits.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// What the driver should watch now.
    pub fn interest(&self) -> Interest {
        let idle = matches!(
            self.state,
            State::ExpectUser | State::ExpectPass(_) | State::Ready
        );
        let abort_watch = !self.client_eof && self.queued.len() < limits::MAX_QUEUED_COMMANDS;
        let (client, accept, pump) = match &self.state {
            // SECURITY: an open passive listener is watched whenever the
            // engine does not wait on a listener itself (below), so that
            // connections from other hosts are closed at once and cannot
            // fill its backlog before the transfer command.
            _ if idle => (!self.client_eof, self.watch_pasv(), false),
            // The client's ABOR counts while either data connection is
            // awaited.
            State::ExpectData(t) => (abort_watch, t.accepting(), false),
            State::Transferring(_) => (abort_watch, self.watch_pasv(), true),
            _ => (false, self.watch_pasv(), false),
        };
        let greeting = matches!(
            self.state,
            State::ExpectGreeting(_) | State::ExpectServerSecure(..)
        );
        Interest {
            client,
            server: self.server.is_some() || self.greeted.is_some() || greeting,
            accept,
            pump,
        }
    }

    /// The passive listener to watch outside ExpectData: open, and no
    /// client connection held from it yet.
    fn watch_pasv(&self) -> Option<Listener> {
        (self.pasv.is_some() && !self.pasv_held).then_some(Listener::Client)
    }

    /// When the driver must send [`Event::Timer`] if nothing else happens.
    pub fn deadline(&self) -> Option<Instant> {
        let state = self.state_deadline();
        if self.logged_in {
            return state;
        }
        // SECURITY: the login deadline bounds every state before login.
        let login = self.login_deadline();
        Some(state.map_or(login, |d| d.min(login)))
    }

    /// When a session that has not logged in is closed.
    fn login_deadline(&self) -> Instant {
        self.started + Duration::from_secs(limits::LOGIN_DEADLINE_SECS)
    }

    /// The deadline of the current state alone.
    fn state_deadline(&self) -> Option<Instant> {
        let idle = self.last_io + self.timeout();
        match &self.state {
            State::ExpectUser | State::ExpectPass(_) | State::Ready => Some(idle),
            State::Transferring(_) => Some(idle),
            State::ExpectReply { deadline, .. } => Some(*deadline),
            State::ExpectGreeting(c) | State::ExpectStillOpen(c) => Some(c.deadline),
            State::ExpectServerSecure(c, _) => Some(c.deadline),
            State::ExpectServerProt(t, _) => Some(t.deadline),
            State::ExpectServerPassive(t)
            | State::ExpectServerPortReply(t)
            | State::ExpectTransferStart(t)
            | State::ExpectData(t)
            | State::ExpectTransferReply(t) => Some(t.deadline),
            State::ExpectAbortReplies(a) => Some(a.deadline),
            State::ExpectSetupAbort(a) => Some(a.deadline),
            _ => None,
        }
    }

    /// Where the client originally connected (transparent proxying).
    pub fn original_dst(&self) -> Option<SocketAddr> {
        self.original_dst
    }

    /// What a client-chosen destination may not be.
    pub fn proxy_self(&self) -> &[SocketAddr] {
        &self.proxy_self
    }

    /// The addresses of the proxy's host.
    pub fn own_addresses(&self) -> &[IpAddr] {
        &self.own_addresses
    }

    /// The session has ended ([`Action::Close`] was queued).
    pub fn is_ended(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    /// Take in one event at time `now`; the resulting actions wait in
    /// [`Session::poll_action`].
    pub fn handle(&mut self, now: Instant, event: Event<'_>) {
        if self.is_ended() {
            return;
        }
        self.now = now;
        let was_idle = self.is_idle();
        match event {
            Event::Timer => {
                if self.deadline().is_some_and(|d| now >= d) {
                    self.timer();
                }
            }
            // SECURITY: TimeOut counts from the last complete command line
            // (see step_client), not the last byte: a byte every few
            // seconds must not hold a session open.
            Event::ClientBytes(bytes) => self.client_in.push(bytes),
            Event::ClientEof => {
                self.last_io = now;
                self.client_eof = true;
            }
            Event::ClientError(why) => {
                // Nothing queued can reach a client that is gone.
                self.actions.retain(|a| !matches!(a, Action::SendClient(_)));
                self.end(End::ClientError(why));
            }
            Event::ServerBytes(bytes) => {
                // SECURITY: a server's unsolicited replies do not keep a
                // session that waits for its client alive.
                if !self.is_idle() {
                    self.last_io = now;
                }
                if let Err(why) = self.read_server(bytes) {
                    self.server_lost(why);
                }
            }
            Event::ServerEof => self.server_lost("server closed the control connection".into()),
            Event::ServerError(why) => self.server_lost(why),
            Event::DataMoved => self.last_io = now,
            // The open passive listener, watched outside ExpectData.
            Event::Accepted {
                listener: Listener::Client,
                from,
            } if !matches!(self.state, State::ExpectData(_)) => self.accepted_early(from),
            Event::AcceptFailed {
                listener: Listener::Client,
                error,
            } if !matches!(self.state, State::ExpectData(_)) => self.accept_early_failed(&error),
            other => self.answer(other),
        }
        self.progress();
        // TimeOut counts from the moment the session is idle again: a
        // client that waited for a slow answer was not idle meanwhile.
        if !was_idle && self.is_idle() {
            self.last_io = now;
        }
    }

    /// Waiting for the client's next command (TimeOut applies).
    fn is_idle(&self) -> bool {
        matches!(
            self.state,
            State::ExpectUser | State::ExpectPass(_) | State::Ready
        )
    }

    // ----- small tools -----------------------------------------------------

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout)
    }

    fn log(&mut self, level: Level, msg: String) {
        if level <= self.level {
            self.actions.push_back(Action::Log(level, msg));
        }
    }

    fn dbg(&mut self, msg: impl FnOnce() -> String) {
        if self.level >= Level::Dbg {
            self.actions.push_back(Action::Log(Level::Dbg, msg()));
        }
    }

    fn send_client(&mut self, bytes: Vec<u8>) {
        self.closing_sent |= bytes.starts_with(b"421");
        self.actions.push_back(Action::SendClient(bytes));
    }

    fn reply(&mut self, code: u16, text: &str) {
        self.dbg(|| format!("reply to client: {code} {text}"));
        self.send_client(reply::line(code, text.as_bytes()));
    }

    fn send_server(&mut self, line: &[u8]) {
        let mut out = Vec::with_capacity(line.len() + 2);
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        self.actions.push_back(Action::SendServer(out));
    }

    fn filter(&self) -> Option<&CommandFilter> {
        self.settings.valid_commands.as_ref()
    }

    /// Parse what the server sent into replies.
    fn read_server(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.server_lines.push(bytes);
        while let Some(line) = self.server_lines.next_line() {
            let line = match line {
                Line::Complete(l) => l,
                Line::TooLong => return Err("reply line too long".into()),
            };
            match self.parser.feed(&line) {
                Ok(Some(r)) => {
                    // SECURITY: a server that floods replies the session
                    // does not read (during a transfer) cannot grow memory
                    // without bound.
                    if self.replies.len() >= limits::MAX_QUEUED_REPLIES {
                        return Err("too many replies".into());
                    }
                    let r = self.passive_reply_in_turn(r);
                    self.replies.push_back(r);
                }
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }

    /// SECURITY: only the proxy's own PASV/EPSV answers give the client a
    /// data address. A server's passive-mode reply is taken only as the
    /// answer to the proxy's PASV/EPSV towards it (the first reply while
    /// waiting for that); anywhere else (a transfer's reply, a relayed
    /// command's, unsolicited) it becomes 451, so that whatever path a
    /// reply takes to the client, it is never one.
    fn passive_reply_in_turn(&mut self, r: Reply) -> Reply {
        let asked = matches!(self.state, State::ExpectServerPassive(_)) && self.replies.is_empty();
        if asked || !matches!(r.code, 227..=229) {
            return r;
        }
        self.log(
            Level::Wrn,
            format!(
                "server sent a passive-mode reply out of turn, not relayed: {}",
                escape(&r.to_wire())
            ),
        );
        Reply {
            code: reply::LOCAL_ERROR,
            lines: vec![b"451 Unexpected reply from the server.".to_vec()],
        }
    }

    /// The next reply the server sent, logged at DBG.
    fn next_reply(&mut self) -> Option<Reply> {
        let r = self.replies.pop_front()?;
        self.dbg(|| format!("server reply: {}", escape(&r.to_wire())));
        Some(r)
    }

    /// A fresh server connection: forget what the last one said.
    fn reset_server_input(&mut self) {
        self.server_lines = LineBuffer::new();
        self.parser = ReplyParser::new();
        self.replies.clear();
    }

    /// End the session: the end-of-session line, the last words to each
    /// side, then [`Action::Close`].
    fn end(&mut self, end: End) {
        if self.is_ended() {
            return;
        }
        let secs = self
            .now
            .saturating_duration_since(self.started)
            .as_secs_f64();
        let yes = |b: bool| if b { "yes" } else { "no" };
        let line = format!(
            "session end: {end}; {secs:.1} s, {} transfers, {} bytes down, {} bytes up, TLS client {} server {}",
            self.totals.transfers,
            self.totals.bytes_down,
            self.totals.bytes_up,
            yes(self.tls.client),
            yes(self.tls.server)
        );
        let level = if end.is_failure() {
            Level::Wrn
        } else {
            Level::Inf
        };
        self.log(level, line);
        let millis = self.now.saturating_duration_since(self.started).as_millis();
        self.audit(AuditEvent::SessionEnd {
            reason: end.to_string(),
            millis: u64::try_from(millis).unwrap_or(u64::MAX),
            transfers: self.totals.transfers,
            bytes_down: self.totals.bytes_down,
            bytes_up: self.totals.bytes_up,
        });
        if matches!(end, End::ServerClosed(_)) && !self.closing_sent {
            self.reply(
                reply::SERVICE_NOT_AVAILABLE,
                "Connection to the FTP server lost; closing control connection.",
            );
        }
        if self.server.is_some()
            && matches!(end, End::ClientClosed | End::Timeout | End::LoginTimeout)
        {
            self.send_server(b"QUIT");
        }
        self.actions.push_back(Action::Close(end));
        self.state = State::Ended;
    }

    /// The server's control connection broke (EOF, error, garbage). Most
    /// states end the session; some (greeting, QUIT, a connection kept
    /// aside) have a way on.
    fn server_lost(&mut self, why: String) {
        match std::mem::replace(&mut self.state, State::Ended) {
            State::ExpectGreeting(c)
            | State::ExpectStillOpen(c)
            | State::ExpectServerSecure(c, _) => {
                self.state = State::Ready; // replaced by greeting_failed
                self.greeting_failed(*c, login::Greeting::Silent(End::ServerClosed(why)));
            }
            State::ExpectReply {
                purpose: Purpose::Quit,
                ..
            } => {
                self.state = State::Ready;
                self.end(End::Quit);
            }
            State::ExpectSetupAbort(_) => {
                self.state = State::Ready;
                self.reply(reply::CANT_OPEN_DATA, "Cannot open data connection.");
                self.end(End::ServerClosed(why));
            }
            state @ (State::ExpectUser | State::ExpectPass(_)) if self.greeted.is_some() => {
                // The connection kept from FEAT before USER is gone; USER
                // makes a new one.
                self.state = state;
                self.dbg(|| format!("connection kept from FEAT closed ({why})"));
                self.greeted = None;
                self.reset_server_input();
                self.actions.push_back(Action::CloseServer);
            }
            state => {
                self.state = state;
                self.end(End::ServerClosed(why));
            }
        }
    }

    // ----- answers to the engine's own requests -----------------------------

    fn answer(&mut self, event: Event<'_>) {
        let state = std::mem::replace(&mut self.state, State::Ready);
        match (state, event) {
            (state, Event::EarlyConnecting(dest)) => {
                self.state = state;
                self.early = dest;
            }
            (State::ExpectResolved(plan), Event::Resolved(r)) => self.resolved(*plan, r),
            (State::ExpectLookUp(l), Event::LookedUp(r)) => self.looked_up(*l, r),
            (State::ExpectBind(b), Event::Bound(r)) => {
                let (pending, ftp_password) = *b;
                self.bound(pending, ftp_password, r)
            }
            (State::ExpectConnected(c), Event::ServerConnected { local }) => {
                self.server_connected(*c, local)
            }
            (State::ExpectConnected(c), Event::ServerConnectFailed(why)) => {
                self.server_connect_failed(*c, why)
            }
            (State::ExpectStillOpen(c), Event::ServerChecked) => self.still_open(*c),
            (
                State::ExpectServerSecure(c, Secure::Handshake),
                Event::TlsReady {
                    version, cipher, ..
                },
            ) => self.server_tls_ready(*c, &version, &cipher),
            (
                State::ExpectGreeting(c),
                Event::TlsReady {
                    version, cipher, ..
                },
            ) => {
                // Implicit TLS: the handshake came first, the 220 comes now.
                let dest = c.dest;
                self.log(
                    Level::Inf,
                    format!("TLS with server {dest}: {version}, {cipher}"),
                );
                self.tls.server = true;
                self.state = State::ExpectGreeting(c);
            }
            (
                State::ExpectServerSecure(c, _) | State::ExpectGreeting(c),
                Event::TlsFailed { why, .. },
            ) => self.server_tls_failed(*c, &why),
            (
                State::ExpectClientTls(previous),
                Event::TlsReady {
                    version, cipher, ..
                },
            ) => {
                self.log(Level::Inf, format!("TLS with client: {version}, {cipher}"));
                self.tls.client = true;
                // SECURITY: nothing the client sent in clear after AUTH
                // counts as a command of the protected session (RFC 4217
                // section 10.2: command injection before the handshake).
                self.client_in = LineBuffer::new();
                self.queued.clear();
                self.state = *previous;
            }
            (State::ExpectClientTls(_), Event::TlsFailed { why, .. }) => {
                self.log(
                    Level::Wrn,
                    format!("TLS handshake with client failed: {why}"),
                );
                self.end(End::ClientError(format!("TLS handshake failed: {why}")));
            }
            (
                State::Transferring(t),
                Event::DataTlsFailed {
                    peer,
                    why,
                    not_resumed,
                },
            ) => self.data_tls_failed(t, peer, &why, not_resumed),
            (State::ExpectListening { extended }, Event::Listening { addr, .. }) => {
                self.client_listening(extended, addr)
            }
            (State::ExpectListening { .. }, Event::ListenFailed { error, in_use, .. }) => {
                self.log(Level::Err, format!("cannot open passive listener: {error}"));
                let text = if in_use {
                    "Cannot open data connection: no free port in the passive port range."
                } else {
                    "Cannot open data connection."
                };
                self.reply(reply::CANT_OPEN_DATA, text);
            }
            (State::ExpectServerListening(t), Event::Listening { addr, .. }) => {
                self.server_listening(t, addr)
            }
            (State::ExpectServerListening(t), Event::ListenFailed { error, .. }) => {
                self.log(
                    Level::Err,
                    format!("cannot listen for the server's data connection: {error}"),
                );
                self.setup_refused(&t, reply::CANT_OPEN_DATA, "Cannot open data connection.");
            }
            (State::ExpectServerConnected(t), Event::DataConnected(Peer::Server)) => {
                self.send_transfer_command(t)
            }
            (State::ExpectServerDataCheck(t), Event::ServerDataChecked { alive }) => {
                self.server_data_checked(t, alive)
            }
            (State::ExpectServerConnected(t), Event::DataConnectFailed { error, .. }) => {
                let target = t.server_target;
                self.log(
                    Level::Err,
                    format!(
                        "cannot connect to server data port {}: {error}",
                        target.map(|a| a.to_string()).unwrap_or_default()
                    ),
                );
                self.setup_refused(&t, reply::CANT_OPEN_DATA, "Cannot open data connection.");
            }
            (State::ExpectData(t), Event::Accepted { listener, from }) => {
                self.accepted(t, listener, from)
            }
            (State::ExpectData(t), Event::AcceptFailed { listener, error }) => {
                let what = if listener == Listener::Client {
                    "client"
                } else {
                    "server"
                };
                self.log(
                    Level::Err,
                    format!("accept for {what} data connection: {error}"),
                );
                self.data_failed(t);
            }
            (State::ExpectData(t), Event::DataConnected(Peer::Client)) => self.client_data_ready(t),
            (State::ExpectData(t), Event::DataConnectFailed { error, .. }) => {
                let target = self.port.map(|a| a.to_string()).unwrap_or_default();
                self.log(
                    Level::Wrn,
                    format!("cannot connect to client data port {target}: {error}"),
                );
                self.data_failed(t);
            }
            (
                State::Transferring(t),
                Event::TransferEnded {
                    bytes,
                    finished,
                    note,
                },
            ) => self.transfer_ended(t, bytes, finished, note),
            (state, event) => {
                // An answer the engine did not ask for (a driver bug): say
                // so, and carry on waiting for the real one.
                self.state = state;
                self.log(Level::Err, format!("internal: unexpected event {event:?}"));
            }
        }
    }

    // ----- time -------------------------------------------------------------

    fn timer(&mut self) {
        if !self.logged_in && self.now >= self.login_deadline() {
            self.log(
                Level::Wrn,
                format!(
                    "not logged in within {} seconds",
                    limits::LOGIN_DEADLINE_SECS
                ),
            );
            self.reply(
                reply::SERVICE_NOT_AVAILABLE,
                "Login timeout: closing control connection.",
            );
            return self.end(End::LoginTimeout);
        }
        let state = std::mem::replace(&mut self.state, State::Ready);
        match state {
            s @ (State::ExpectUser | State::ExpectPass(_) | State::Ready) => {
                self.state = s;
                let secs = self.timeout().as_secs();
                self.log(Level::Wrn, format!("no activity for {secs} seconds"));
                self.reply(
                    reply::SERVICE_NOT_AVAILABLE,
                    "Timeout: closing control connection.",
                );
                self.end(End::Timeout);
            }
            State::ExpectReply {
                purpose: Purpose::Quit,
                ..
            } => self.end(End::Quit),
            State::ExpectServerSecure(c, _) => {
                self.server_tls_failed(*c, "no reply from server in time")
            }
            State::ExpectGreeting(c) | State::ExpectStillOpen(c) => self.greeting_failed(
                *c,
                login::Greeting::Silent(End::ServerClosed("no reply from server in time".into())),
            ),
            State::ExpectData(t) => self.data_failed(t),
            State::Transferring(t) => {
                let secs = self.timeout().as_secs();
                self.log(
                    Level::Wrn,
                    format!("transfer idle for {secs} seconds, aborted"),
                );
                self.state = State::Transferring(t);
                self.actions.push_back(Action::StopPump { abort: false });
                if let State::Transferring(t) = &mut self.state {
                    t.note = Some("idle timeout".into());
                }
            }
            State::ExpectSetupAbort(a) => self.setup_abort_done(*a),
            s => {
                self.state = s;
                self.end(End::ServerClosed("no reply from server in time".into()));
            }
        }
    }

    // ----- making progress --------------------------------------------------

    /// Handle what is waiting (server replies, client lines) until the
    /// engine needs something from outside.
    fn progress(&mut self) {
        loop {
            if self.is_ended() {
                return;
            }
            if self.step_server() {
                continue;
            }
            if self.step_client() {
                continue;
            }
            return;
        }
    }

    /// One server reply for the state that waits for it; true if one was
    /// taken.
    fn step_server(&mut self) -> bool {
        if self.replies.is_empty() {
            return false;
        }
        let state = std::mem::replace(&mut self.state, State::Ready);
        match state {
            State::Ready => {
                let Some(r) = self.next_reply() else {
                    return false;
                };
                self.unsolicited_reply(r);
            }
            s @ (State::ExpectUser | State::ExpectPass(_)) => {
                // The connection kept from FEAT spoke (a 421 for an idle
                // client): it cannot serve USER; a new one will.
                self.state = s;
                self.replies.clear();
                if self.greeted.take().is_some() {
                    self.dbg(|| "connection kept from FEAT unusable: the server spoke".into());
                    self.reset_server_input();
                    self.actions.push_back(Action::CloseServer);
                }
            }
            State::ExpectReply { purpose, deadline } => {
                let Some(r) = self.next_reply() else {
                    return false;
                };
                self.final_reply_for(purpose, deadline, r);
            }
            State::ExpectGreeting(c) => {
                let Some(r) = self.next_reply() else {
                    return false;
                };
                self.greeting_reply(*c, r);
            }
            State::ExpectServerSecure(c, step) if step != Secure::Handshake => {
                let Some(r) = self.next_reply() else {
                    return false;
                };
                self.server_secure_reply(*c, step, r);
            }
            State::ExpectServerProt(t, private) => {
                let Some(r) = self.next_reply() else {
                    return false;
                };
                self.server_prot_reply(t, private, r);
            }
            State::ExpectServerPassive(t) => {
                let Some(r) = self.next_reply() else {
                    return false;
                };
                self.server_passive_reply(t, r);
            }
            State::ExpectServerPortReply(t) => {
                let Some(r) = self.next_reply() else {
                    return false;
                };
                self.server_port_reply(t, r);
            }
            State::ExpectTransferStart(t) => {
                let Some(r) = self.next_reply() else {
                    return false;
                };
                self.transfer_start_reply(t, r);
            }
            State::ExpectTransferReply(t) => {
                let Some(r) = self.next_reply() else {
                    return false;
                };
                self.transfer_final_reply(t, r);
            }
            State::ExpectAbortReplies(a) => {
                let Some(r) = self.next_reply() else {
                    return false;
                };
                self.abort_reply(a, r);
            }
            State::ExpectSetupAbort(a) => {
                let Some(r) = self.next_reply() else {
                    return false;
                };
                self.setup_abort_reply(a, r);
            }
            State::ExpectData(t) => {
                // Replies wait for the transfer's end, unless the server
                // gave up on the transfer: then no data connection comes.
                let gave_up = self
                    .replies
                    .iter()
                    .any(|r| !r.is_preliminary() && !r.is_positive());
                if gave_up {
                    self.data_failed(t);
                    return true;
                }
                self.state = State::ExpectData(t);
                return false;
            }
            s => {
                // Transferring, connecting, looking up: replies wait.
                self.state = s;
                return false;
            }
        }
        true
    }

    /// One client line for the state that takes it; true if one was taken.
    fn step_client(&mut self) -> bool {
        match &self.state {
            State::ExpectUser | State::ExpectPass(_) | State::Ready => {
                let line = self
                    .queued
                    .pop_front()
                    .or_else(|| self.client_in.next_line());
                match line {
                    Some(line) => {
                        self.last_io = self.now;
                        self.handle_line(line);
                        true
                    }
                    None if self.client_eof => {
                        self.end(End::ClientClosed);
                        true
                    }
                    None => false,
                }
            }
            State::ExpectData(_) => {
                if self.client_lines_hold_abort(false) {
                    let State::ExpectData(t) = std::mem::replace(&mut self.state, State::Ready)
                    else {
                        return false;
                    };
                    self.aborted_before_data(t);
                    return true;
                }
                false
            }
            State::Transferring(t) if !t.abort_requested => {
                // Lines that came with the transfer command wait for its
                // end; a NOOP sent while the data moves is answered at once.
                let answer_noop = t.running();
                if let State::Transferring(t) = &mut self.state {
                    t.set_running();
                }
                if self.client_lines_hold_abort(answer_noop) {
                    self.actions.push_back(Action::StopPump { abort: true });
                    if let State::Transferring(t) = &mut self.state {
                        t.abort_requested = true;
                        t.note = Some("aborted by client".into());
                    }
                    // The pump answers with TransferEnded; nothing more to
                    // look at before that.
                }
                false
            }
            _ => false,
        }
    }

    /// Move the client's complete lines to the queue (while it has room)
    /// up to an ABOR, which is taken out: true if there was one.
    /// With `answer_noop`, a NOOP (that ValidCommands allows) is answered
    /// at once instead (SPEC 14: control connections are never slowed).
    fn client_lines_hold_abort(&mut self, answer_noop: bool) -> bool {
        // SECURITY: a client pipelining commands during a transfer cannot
        // grow the queue without bound; once it is full the client is not
        // read until the transfer ends (see `interest`).
        while self.queued.len() < limits::MAX_QUEUED_COMMANDS {
            let Some(line) = self.client_in.next_line() else {
                break;
            };
            self.last_io = self.now;
            if is_abort(&line, self.filter()) {
                return true;
            }
            if answer_noop && self.queued.is_empty() && is_verb(&line, b"NOOP", self.filter()) {
                self.log(Level::Inf, "command: NOOP (during the transfer)".into());
                self.reply(reply::COMMAND_OK, "NOOP ok; the transfer goes on.");
                continue;
            }
            self.queued.push_back(line);
        }
        false
    }

    // ----- one client command -------------------------------------------------

    /// One client line: parse, log, judge, dispatch.
    fn handle_line(&mut self, line: Line) {
        let line = match line {
            Line::Complete(l) => l,
            Line::TooLong => {
                self.log(Level::Wrn, "command line too long, refused".into());
                return self.reply(reply::SYNTAX_ERROR, "Command line too long.");
            }
        };
        let secret = self.expecting_password();
        let cmd = match Command::parse(&line) {
            Ok(c) => c,
            Err(e) => {
                // SECURITY: while a password is expected, a malformed line
                // may be the password with a stray byte: masked (SPEC 6).
                let text = if secret {
                    command::masked_log_text(&line)
                } else {
                    command::malformed_log_text(&line)
                };
                self.log(
                    Level::Wrn,
                    format!("malformed command refused: {e}: {text}"),
                );
                return self.reply(reply::SYNTAX_ERROR, &format!("Syntax error: {e}."));
            }
        };
        // SECURITY: an unknown verb while a password is expected may be the
        // password typed as a line (or a PASS with a mangled verb).
        let shown = if secret && command::kind(cmd.verb.as_bytes()).is_none() {
            command::masked_log_text(&line)
        } else {
            cmd.log_text()
        };
        self.log(Level::Inf, format!("command: {shown}"));
        let tls = ClientLeg {
            secure: self.tls.client,
            private: self.tls.client_private,
        };
        let kind = match judge(self.cfg, &self.settings, tls, &cmd) {
            Ok(Judged::Own) => return self.security(&cmd),
            Ok(Judged::Pass(kind)) => kind,
            Err(refusal) => return self.refuse_command(shown, &refusal),
        };
        if self.server.is_none() {
            return self.before_login(kind, cmd);
        }
        match kind {
            Kind::User => match second_user(self.user.as_deref().unwrap_or_default(), cmd.arg) {
                Ok(()) => {
                    self.send_server(&line);
                    self.expect_final(Purpose::Relay);
                }
                Err(refusal) => self.refuse_command(shown, &refusal),
            },
            Kind::Passive => self.client_passive(&cmd),
            Kind::Active => self.client_active(&cmd),
            Kind::Data => self.transfer(&line, &cmd),
            Kind::Feat => self.feat(false),
            Kind::Quit => {
                self.send_server(&line);
                self.expect_final(Purpose::Quit);
            }
            // judge refused it already.
            Kind::Reinit => self.reply(reply::NOT_IMPLEMENTED, REIN_REFUSED),
            Kind::Pass | Kind::Abort | Kind::Plain | Kind::Security => {
                if kind == Kind::Abort {
                    // The server may close its passive port on ABOR.
                    self.drop_prefetch();
                }
                if cmd.verb.as_bytes() == b"TYPE" {
                    // xferlog's transfer type: I (and L 8) are binary.
                    let arg = cmd.arg.to_ascii_uppercase();
                    self.binary = arg.starts_with(b"I") || arg.starts_with(b"L");
                }
                self.send_server(&line);
                self.expect_final(Purpose::Relay);
            }
        }
    }

    /// After USER and before the login completed: the client's next line
    /// may carry a password (the proxy's own 331 in ExpectPass, or the
    /// server's answer to a relayed USER).
    fn expecting_password(&self) -> bool {
        matches!(self.state, State::ExpectPass(_)) || (self.user.is_some() && !self.logged_in)
    }

    fn before_login(&mut self, kind: Kind, cmd: Command<'_>) {
        let state = std::mem::replace(&mut self.state, State::ExpectUser);
        match (kind, state) {
            (Kind::User, _) => self.login(cmd.arg),
            (Kind::Quit, _) => {
                self.reply(reply::CLOSING, "Goodbye.");
                self.end(End::Quit);
            }
            (Kind::Feat, state) => {
                self.state = state;
                self.feat_before_login();
            }
            (Kind::Pass, State::ExpectPass(pending)) => self.authenticate(*pending, cmd.arg),
            (Kind::Pass, state) => {
                self.state = state;
                self.reply(reply::BAD_SEQUENCE, "Login with USER first.");
            }
            (_, state) => {
                self.state = state;
                self.reply(reply::NOT_LOGGED_IN, "Please login with USER and PASS.");
            }
        }
    }

    /// Wait for the server's final reply to what was just sent, within one
    /// TimeOut. SECURITY: one deadline for all the 1xx before it, so that a
    /// server sending 1xx lines without end cannot hold the session.
    fn expect_final(&mut self, purpose: Purpose) {
        self.state = State::ExpectReply {
            purpose,
            deadline: self.now + self.timeout(),
        };
    }

    /// A server reply nothing asked for. A 421 (the server is closing) is
    /// relayed and ends the session; any other is dropped. SECURITY:
    /// relayed, a surplus reply would answer the client's next command
    /// (a server-chosen 227 for its PASV) and put every later reply one
    /// off.
    fn unsolicited_reply(&mut self, r: Reply) {
        if r.code == reply::SERVICE_NOT_AVAILABLE {
            self.send_client(r.to_wire());
            return self.end(End::ServerClosed(SERVER_SENT_421.into()));
        }
        self.unsolicited += 1;
        let text = escape(r.lines.first().map_or(&[][..], |l| &l[..]));
        if self.unsolicited == 1 {
            self.log(
                Level::Wrn,
                format!("unsolicited server reply dropped: {text}"),
            );
        } else {
            self.dbg(|| format!("unsolicited server reply dropped: {text}"));
        }
        if self.unsolicited > limits::MAX_UNSOLICITED_REPLIES {
            self.log(
                Level::Err,
                format!(
                    "more than {} unsolicited server replies",
                    limits::MAX_UNSOLICITED_REPLIES
                ),
            );
            self.reply(
                reply::SERVICE_NOT_AVAILABLE,
                "Server protocol error; closing connection.",
            );
            self.end(End::ServerClosed("unsolicited replies".into()));
        }
    }

    fn final_reply_for(&mut self, purpose: Purpose, deadline: Instant, r: Reply) {
        if r.is_preliminary() {
            if matches!(purpose, Purpose::Relay | Purpose::Quit) {
                self.send_client(r.to_wire());
            }
            self.state = State::ExpectReply { purpose, deadline };
            return;
        }
        self.state = State::Ready;
        if matches!(r.code, reply::LOGGED_IN | reply::LOGGED_IN_BY_SECURITY)
            && matches!(purpose, Purpose::Relay)
            && !self.logged_in
        {
            self.logged_in = true;
            self.audit(AuditEvent::Login);
        }
        match purpose {
            Purpose::Relay => self.send_client(r.to_wire()),
            Purpose::Quit => {
                self.send_client(r.to_wire());
                self.end(End::Quit);
            }
            Purpose::Feat { before_login } => {
                let out = features(Some(&r), self.filter(), self.tls_offered());
                self.send_client(out);
                if before_login {
                    self.greeted = self.server.take();
                    self.state = State::ExpectUser;
                }
            }
            Purpose::UserThenPass(password) => {
                if r.code != reply::NEED_PASSWORD {
                    return self.send_client(r.to_wire());
                }
                let mut line = b"PASS ".to_vec();
                line.extend_from_slice(&password);
                self.send_server(&line);
                self.expect_final(Purpose::Relay);
            }
        }
    }

    /// Queue an audit record with what the session knows now.
    fn audit(&mut self, event: AuditEvent) {
        let user = self.user.clone();
        self.audit_as(event, user.as_deref());
    }

    /// An audit record for `user` (a login not yet accepted).
    fn audit_as(&mut self, event: AuditEvent, user: Option<&[u8]>) {
        let record = AuditRecord {
            event,
            client: self.client_addr,
            // Known from the start when no login can change it (the
            // early connection's destination).
            server: self.server.map(|s| s.addr).or(self.early),
            user: user.map(|u| String::from_utf8_lossy(u).into_owned()),
            class: self.cfg.class.clone(),
            tls: (self.tls.client, self.tls.server),
        };
        self.actions.push_back(Action::Audit(Box::new(record)));
    }

    /// A refused command: WRN with the deciding rule, the audit record,
    /// the reply. Never relayed.
    fn refuse_command(&mut self, shown: String, refusal: &Refusal) {
        let rule = self.rule_text(refusal.rule);
        self.log(Level::Wrn, format!("{}: {shown} ({rule})", refusal.why));
        self.audit_refusal(
            RefusalKind::Command,
            shown,
            Some((refusal.code, &refusal.text)),
            refusal.rule,
        );
        self.reply(refusal.code, &refusal.text);
    }

    /// Audit a refusal of `what` (`subject`): the reply sent and the rule.
    fn audit_refusal(
        &mut self,
        what: RefusalKind,
        subject: String,
        reply: Option<(u16, &str)>,
        option: Option<&'static str>,
    ) {
        let rule = Rule::of(self.cfg, self.user.as_deref().unwrap_or_default(), option);
        self.audit(AuditEvent::Refused {
            what,
            subject,
            reply: reply.map(|(c, t)| (c, t.to_string())),
            rule,
        });
    }

    /// The deciding option of a refusal, for the log.
    fn rule_text(&self, option: Option<&'static str>) -> String {
        if self.from_directory && option.is_some() {
            return "rule: the user's LDAP entry or the file".into();
        }
        Rule::of(self.cfg, self.user.as_deref().unwrap_or_default(), option).to_string()
    }

    /// The client leg offers TLS (FEAT lists AUTH TLS, PBSZ, PROT).
    fn tls_offered(&self) -> bool {
        self.cfg.client_tls != ClientTls::Off
    }

    /// AUTH, PBSZ, PROT, CCC and friends, with ClientTLS optional or
    /// required (RFC 4217).
    fn security(&mut self, cmd: &Command<'_>) {
        let arg = cmd.arg.to_ascii_uppercase();
        match cmd.verb.as_bytes() {
            b"AUTH" if self.tls.client => self.reply(reply::BAD_SEQUENCE, "Already using TLS."),
            b"AUTH" if matches!(arg.as_slice(), b"TLS" | b"SSL" | b"TLS-C" | b"TLS-P") => {
                self.reply(reply::AUTH_OK, "AUTH TLS successful.");
                self.actions.push_back(Action::StartTls {
                    peer: Peer::Client,
                    name: String::new(),
                    verify: false,
                });
                let previous = std::mem::replace(&mut self.state, State::Ready);
                self.state = State::ExpectClientTls(Box::new(previous));
            }
            b"AUTH" => self.reply(
                reply::NOT_IMPLEMENTED_FOR_ARG,
                "AUTH: only TLS (or SSL) is supported.",
            ),
            b"PBSZ" if !self.tls.client => {
                self.reply(reply::BAD_SEQUENCE, "PBSZ needs AUTH TLS first.")
            }
            // RFC 4217 section 9: a decimal buffer size; with TLS the
            // answer is always 0.
            b"PBSZ" if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) => {
                self.reply(reply::ARG_SYNTAX_ERROR, "PBSZ takes a number: use PBSZ 0.")
            }
            b"PBSZ" => {
                self.tls.client_pbsz = true;
                self.reply(reply::COMMAND_OK, "PBSZ=0");
            }
            b"PROT" if !self.tls.client || !self.tls.client_pbsz => {
                self.reply(reply::BAD_SEQUENCE, "PROT needs AUTH TLS and PBSZ first.")
            }
            b"PROT" if arg == b"P" => {
                self.tls.client_private = true;
                self.reply(reply::COMMAND_OK, "Protection level set to Private.");
            }
            b"PROT" if arg == b"C" => {
                self.tls.client_private = false;
                self.reply(reply::COMMAND_OK, "Protection level set to Clear.");
            }
            b"PROT" => self.reply(
                reply::PROTECTION_NOT_SUPPORTED,
                "Protection level not supported: use C or P.",
            ),
            // SECURITY: after CCC the control connection would be clear
            // text that anyone on the path can change.
            // judge refused it already.
            b"CCC" => self.reply(reply::PROTECTION_DENIED_POLICY, CCC_REFUSED),
            _ => self.reply(
                reply::NOT_IMPLEMENTED,
                &format!("{}: not supported by this proxy.", cmd.verb.as_str()),
            ),
        }
    }

    /// FEAT after login (or before it, on the connection kept for USER).
    fn feat(&mut self, before_login: bool) {
        self.send_server(b"FEAT");
        self.expect_final(Purpose::Feat { before_login });
    }

    /// FEAT before USER. When no login can change the server (there is an
    /// early connection), the server is asked, as after login: lftp sends
    /// FEAT only before USER and uses MLSD, UTF8, ... only if listed. The
    /// greeted connection is kept for USER. Otherwise only ftpgate's own.
    fn feat_before_login(&mut self) {
        match (self.greeted.take(), self.early) {
            (Some(greeted), _) => {
                self.server = Some(greeted);
                self.feat(true);
            }
            (None, Some(dest)) => {
                self.server_host = match self.original_dst {
                    Some(_) if self.cfg.allow_trans_proxy => None,
                    _ => self.cfg.global.destination_address.clone(),
                };
                self.connect_server(dest, login::After::Feat)
            }
            (None, None) => {
                let r = features(None, self.filter(), self.tls_offered());
                self.send_client(r);
            }
        }
    }
}

/// Where a decision came from (SPEC 12, 13): the option's line as
/// `FILE:LINE` (or `default`) and its context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub option: &'static str,
    /// `FILE:LINE`, or `default` when a built-in default (or rule) decided.
    pub at: String,
    /// `global`, `class NAME`, `user NAME`, or `LDAP entry`.
    pub context: String,
}

impl Rule {
    /// The origin of `option`'s value for `login` in `cfg`; None: one of
    /// ftpgate's built-in rules decided.
    pub fn of(cfg: &Config, login: &[u8], option: Option<&'static str>) -> Rule {
        let Some(option) = option else {
            return Rule {
                option: "built-in",
                at: "default".into(),
                context: "global".into(),
            };
        };
        match cfg.origin(login, option) {
            Some(o) => Rule {
                option,
                at: o.line.map_or_else(
                    || "default".to_string(),
                    |l| format!("{}:{l}", cfg.file.display()),
                ),
                context: o.context.to_string(),
            },
            None => Rule {
                option,
                at: "default".into(),
                context: "global".into(),
            },
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rule {} {}, context {}",
            self.option, self.at, self.context
        )
    }
}

/// The client leg's TLS state, as far as judging a command needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientLeg {
    /// The control connection is TLS.
    pub secure: bool,
    /// PROT P: data connections are TLS.
    pub private: bool,
}

/// A command the proxy lets on (to the state that handles it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judged {
    /// Handled according to its kind (relayed, or acted on).
    Pass(Kind),
    /// AUTH, PBSZ, PROT, CCC with ClientTLS on: the proxy's own.
    Own,
}

/// A command the proxy refuses: one reply, one log line, and the option
/// that decided (None: ftpgate's built-in rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub text: String,
    /// For the log: what refused it.
    pub why: &'static str,
    pub rule: Option<&'static str>,
}

const CCC_REFUSED: &str = "CCC refused: the control connection stays encrypted.";
const REIN_REFUSED: &str = "REIN not supported by this proxy: reconnect instead.";

/// The address a PORT or EPRT names (the session and `--explain`).
pub fn active_target(cmd: &Command<'_>) -> Result<SocketAddr, crate::ftp::addr::AddrError> {
    let parsed = if cmd.verb.as_bytes() == b"EPRT" {
        crate::ftp::addr::parse_eprt(cmd.arg)
    } else {
        crate::ftp::addr::parse_port(cmd.arg).map(SocketAddr::V4)
    };
    parsed.map(canonical)
}

/// USER once logged in as `current` (the session and `--explain`): the
/// same name again is a retry and is relayed. SECURITY: another name would
/// need another context (other ValidCommands, another server): refused,
/// never relayed.
pub fn second_user(current: &[u8], arg: &[u8]) -> Result<(), Refusal> {
    if current == arg {
        return Ok(());
    }
    Err(Refusal {
        code: reply::NOT_LOGGED_IN,
        text: "Cannot change user in this session: reconnect to log in as another user.".into(),
        why: "USER refused: another user needs a new connection",
        rule: None,
    })
}

/// The policy on one client command, whatever the session's state: the
/// command filter (SPEC 4), TLS (SPEC 10), commands ftpgate does not
/// relay. The session and the policy simulator (`--explain`) both judge
/// with this function. Pure.
pub fn judge(
    cfg: &Config,
    settings: &UserSettings,
    tls: ClientLeg,
    cmd: &Command<'_>,
) -> Result<Judged, Refusal> {
    let verb = cmd.verb.as_str();
    let refuse = |code, text: String, why, rule| {
        Err(Refusal {
            code,
            text,
            why,
            rule,
        })
    };
    let known = command::kind(cmd.verb.as_bytes());
    // SPEC 10: with TLS offered, AUTH, PBSZ, PROT and CCC are the proxy's
    // own, whatever ValidCommands lists, and never relayed.
    if cfg.client_tls != ClientTls::Off && known == Some(Kind::Security) {
        // SECURITY: after CCC the control connection would be clear text
        // that anyone on the path can change.
        if verb == "CCC" {
            return refuse(
                reply::PROTECTION_DENIED_POLICY,
                CCC_REFUSED.into(),
                "CCC refused: the control connection stays encrypted",
                None,
            );
        }
        return Ok(Judged::Own);
    }
    // SECURITY: REIN would log the user out on the server while the proxy
    // keeps the first login's context and destination.
    if known == Some(Kind::Reinit) {
        return refuse(
            reply::NOT_IMPLEMENTED,
            REIN_REFUSED.into(),
            "REIN refused: a new login needs a new connection",
            None,
        );
    }
    let filter = settings.valid_commands.as_ref();
    let kind = match known {
        Some(k) => k,
        // An unknown verb reaches the server only if ValidCommands names it.
        None if filter.is_some_and(|f| f.allows(cmd.verb.as_bytes())) => Kind::Plain,
        None => {
            return refuse(
                reply::SYNTAX_ERROR,
                format!("{verb}: command not understood."),
                "unknown command refused",
                None,
            );
        }
    };
    // SECURITY: the command filter; a refused command never reaches the server.
    if let Some(f) = filter {
        match f.check(cmd.verb.as_bytes(), cmd.arg) {
            Verdict::Allow => {}
            Verdict::CommandRefused => {
                return refuse(
                    reply::NOT_IMPLEMENTED,
                    format!("{verb}: command not allowed."),
                    "command refused by ValidCommands",
                    Some("ValidCommands"),
                );
            }
            Verdict::ArgumentRefused => {
                return refuse(
                    reply::NOT_IMPLEMENTED_FOR_ARG,
                    format!("{verb}: argument not allowed."),
                    "argument refused by ValidCommands",
                    Some("ValidCommands"),
                );
            }
        }
    }
    if kind == Kind::Security {
        // ClientTLS off: a clear refusal makes clients fall back to
        // plain FTP instead of breaking.
        return refuse(
            reply::NOT_IMPLEMENTED,
            format!("{verb}: TLS is not offered by this proxy."),
            "TLS command refused (ClientTLS off)",
            Some("ClientTLS"),
        );
    }
    if cfg.client_tls == ClientTls::Required {
        // SECURITY: ClientTLS required: no password in clear, no data
        // connection in clear.
        if !tls.secure && matches!(kind, Kind::User | Kind::Pass) {
            return refuse(
                reply::NOT_LOGGED_IN,
                "TLS required: use AUTH TLS before logging in.".into(),
                "login refused: TLS required",
                Some("ClientTLS"),
            );
        }
        if !tls.private && kind == Kind::Data {
            return refuse(
                reply::PROTECTION_DENIED,
                "Data connections must be protected: use PBSZ 0 and PROT P.".into(),
                "data command refused: PROT P required",
                Some("ClientTLS"),
            );
        }
    }
    Ok(Judged::Pass(kind))
}

/// Is this client line an ABOR (after Telnet IP/Synch were stripped) that
/// ValidCommands allows? SECURITY: a refused one waits for its turn and
/// its refusal like any other command; it never reaches the server.
fn is_abort(line: &Line, filter: Option<&CommandFilter>) -> bool {
    is_verb(line, b"ABOR", filter)
}

/// Is this client line the command `verb`, allowed by ValidCommands?
fn is_verb(line: &Line, verb: &[u8], filter: Option<&CommandFilter>) -> bool {
    match line {
        Line::Complete(l) => Command::parse(l).is_ok_and(|c| {
            c.verb.as_bytes() == verb
                && filter.is_none_or(|f| f.check(c.verb.as_bytes(), c.arg) == Verdict::Allow)
        }),
        Line::TooLong => false,
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
pub fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

//! The session engine: owns the sockets and buffers of one client session
//! and runs the `poll(2)` loop over the control and data connections,
//! carrying out what the parsers, the policy and `session` decide.
//!
//! Blocking control sockets (with write time-outs), non-blocking data
//! sockets, one thread, no busy-waiting: every wait is a `poll` with a
//! time-out derived from TimeOut.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::config::{Config, LdapSettings, PortRange, UserSettings};
use crate::data::{self, Pump};
use crate::ftp::addr;
use crate::ftp::command::{self, Command, Kind};
use crate::ftp::escape;
use crate::ftp::line::{Line, LineBuffer};
use crate::ftp::reply::{self, Reply, ReplyParser};
use crate::ldap::{self, Entry};
use crate::limits;
use crate::log::Log;
use crate::policy::data::{check_client_port, check_data_peer, check_server_passive};
use crate::policy::dest;
use crate::policy::filter::{CommandFilter, Verdict};
use crate::policy::user::{AuthMagic, Login, split_auth, split_auth_pass, split_magic};
use crate::session::{self, Direction, Side};
use crate::sys::jail::Jailed;
use crate::sys::net::{self, Ports, canonical};
use crate::sys::resolve::Resolver;

/// Why a session ended; logged once, mapped to the exit status by `run`.
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
    /// Writing to the client failed.
    ClientError(String),
    /// The LDAP directory (LDAPServer) could not be used.
    Directory(String),
    /// Too many failed proxy authentications (UserAuthType ldap).
    AuthFailures,
    /// Too many USER commands looked up in the directory.
    TooManyLookups,
}

impl End {
    pub fn is_failure(&self) -> bool {
        !matches!(self, End::Quit | End::ClientClosed | End::Timeout)
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
            End::ClientError(why) => write!(f, "client connection error: {why}"),
            End::Directory(why) => write!(f, "LDAP directory unusable: {why}"),
            End::AuthFailures => f.write_str("too many failed authentications"),
            End::TooManyLookups => f.write_str("too many directory look-ups"),
        }
    }
}

type Step<T = ()> = Result<T, End>;

/// Why a session ended when the server said 421 itself (relayed as is).
const SERVER_SENT_421: &str = "server sent 421";

/// What the session knows when it starts.
pub struct Start<'a> {
    pub cfg: &'a Config,
    pub client: TcpStream,
    pub client_addr: SocketAddr,
    pub local_addr: SocketAddr,
    /// TranslatedAddress, resolved before the jail.
    pub translated: Option<Ipv4Addr>,
    /// Greeting lines (already substituted) sent before anything else.
    pub greeting: Vec<u8>,
    /// Where the client originally connected, when netfilter redirected it.
    pub original_dst: Option<SocketAddr>,
    /// What a client-chosen destination may not be: the proxy itself
    /// ([`crate::sys::transparent::proxy_self`]).
    pub proxy_self: Vec<SocketAddr>,
    /// A server connection begun by [`connect_early`], if any.
    pub early: Option<(SocketAddr, TcpStream)>,
}

/// The server side of the session, once connected.
struct Server {
    stream: TcpStream,
    addr: SocketAddr,
    local: SocketAddr,
    lines: LineBuffer,
    parser: ReplyParser,
    replies: VecDeque<Reply>,
}

/// The server side of one transfer before the command is sent.
enum ServerData {
    Connected(TcpStream),
    Listening(TcpListener),
}

/// Why the server's greeting did not open the session.
enum Greeting {
    /// no 220 in time, or the connection broke
    Silent(End),
    /// a final reply other than 220 (a 421 "too many users", say)
    Refused(Reply),
}

impl std::fmt::Display for Greeting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Greeting::Silent(e) => write!(f, "{e}"),
            Greeting::Refused(r) => write!(f, "greeting {}", r.code),
        }
    }
}

/// A login the proxy itself authenticates (UserAuthType ldap): what USER
/// said and the directory found, kept until PASS.
struct Pending {
    /// The FTP login name.
    user: Vec<u8>,
    /// The name the directory knows: the FTP login name, or the proxy
    /// login of UserAuthMagic.
    auth_user: Vec<u8>,
    host: Option<Vec<u8>>,
    port: Option<u16>,
    /// The user's settings (from the profile entry, or global).
    settings: UserSettings,
    /// The user's entry under LDAPAuthDN, if any.
    entry: Option<Entry>,
}

/// Totals for the end-of-session line.
#[derive(Default)]
struct Totals {
    transfers: u32,
    bytes_down: u64,
    bytes_up: u64,
}

pub struct Relay<'a> {
    cfg: &'a Config,
    /// Name resolution from data cached before the jail.
    resolver: &'a Resolver,
    /// The settings of the logged-in user: a context of the file, or
    /// built from the user's LDAP entry.
    settings: Cow<'a, UserSettings>,
    log: &'a mut Log,
    client: TcpStream,
    client_addr: SocketAddr,
    local_addr: SocketAddr,
    translated: Option<Ipv4Addr>,
    original_dst: Option<SocketAddr>,
    proxy_self: Vec<SocketAddr>,
    client_in: LineBuffer,
    client_eof: bool,
    /// client lines read during a transfer, handled after it
    queued: VecDeque<Line>,
    server: Option<Server>,
    /// a connection to the server begun before USER (see `connect_early`)
    early: Option<(SocketAddr, TcpStream)>,
    /// that connection after its greeting, when FEAT before USER used it
    greeted: Option<Server>,
    user: Option<Vec<u8>>,
    /// USER answered by the proxy, waiting for PASS (UserAuthType ldap).
    pending: Option<Pending>,
    /// Failed proxy authentications so far.
    auth_failures: u32,
    /// Directory look-ups so far.
    lookups: u32,
    pasv: Option<TcpListener>,
    port: Option<SocketAddr>,
    /// which of `pasv`/`port` the client chose last
    client_side: Option<Side>,
    epsv_all: bool,
    /// a 421 went to the client: the session is ending and it knows
    closing_sent: bool,
    /// ABOR during the transfer already relayed the transfer's final reply.
    abort_answered: bool,
    /// The client sent ABOR while ftpgate waited for its data connection.
    aborted_before_data: bool,
    pump: Pump,
    totals: Totals,
    started: Instant,
}

/// Run one session to its end. Requires proof that the jail was entered.
pub fn run(jailed: &Jailed, start: Start<'_>, log: &mut Log) -> End {
    let cfg = start.cfg;
    let mut relay = Relay {
        cfg,
        resolver: jailed.resolver(),
        settings: Cow::Borrowed(&cfg.global),
        log,
        client: start.client,
        client_addr: canonical(start.client_addr),
        local_addr: canonical(start.local_addr),
        translated: start.translated,
        original_dst: start.original_dst,
        proxy_self: start.proxy_self,
        client_in: LineBuffer::new(),
        client_eof: false,
        queued: VecDeque::new(),
        server: None,
        early: start.early,
        greeted: None,
        user: None,
        pending: None,
        auth_failures: 0,
        lookups: 0,
        pasv: None,
        port: None,
        client_side: None,
        epsv_all: false,
        closing_sent: false,
        abort_answered: false,
        aborted_before_data: false,
        pump: Pump::new(limits::DATA_BUFFER, cfg.max_recv_buf_size),
        totals: Totals::default(),
        started: Instant::now(),
    };
    let end = relay.serve(&start.greeting).err().unwrap_or(End::Quit);
    relay.finish(&end);
    end
}

/// Where a login goes: the magic-user host or the transparent original
/// destination (both checked against the destination policy), else the
/// configured DestinationAddress.
fn destination(
    cfg: &Config,
    resolver: &Resolver,
    settings: &UserSettings,
    login: &Login<'_>,
    original_dst: Option<SocketAddr>,
    proxy_self: &[SocketAddr],
) -> Result<SocketAddr, String> {
    let candidates = match (login.host, original_dst) {
        (Some(host), _) => {
            let host =
                std::str::from_utf8(host).map_err(|_| "host name is not text".to_string())?;
            resolve(
                resolver,
                host,
                login.port.unwrap_or(settings.destination_port),
            )?
        }
        (None, Some(orig)) if cfg.allow_trans_proxy => vec![orig],
        // SECURITY: without AllowTransProxy a redirected connection's
        // original destination is never used: DestinationAddress it is.
        _ => {
            let host = settings
                .destination_address
                .as_deref()
                .ok_or("no DestinationAddress")?;
            return resolve(resolver, host, settings.destination_port)?
                .into_iter()
                .next()
                .ok_or_else(|| format!("'{host}' has no address"));
        }
    };
    // SECURITY: a client-chosen destination must not be the proxy
    // itself, loopback, link-local, ... unless AllowedDestinations says
    // so. Every address a name resolves to is checked; the first one
    // that passes is used, never one that did not.
    let mut refusal = None;
    for addr in candidates {
        match dest::check(addr, settings.allowed_destinations.as_deref(), proxy_self) {
            Ok(()) => return Ok(addr),
            Err(r) => {
                refusal.get_or_insert(format!("{addr}: {r}"));
            }
        }
    }
    Err(refusal.unwrap_or_else(|| "no address".to_string()))
}

/// A connection to the server begun before the client has said who it is,
/// so that the handshake and the server's greeting overlap the proxy's own
/// start-up and the client's first round trip. Only when no login can
/// change where the session goes: no magic user, no user context with a
/// destination of its own. `resolver` may be empty (address literals
/// only). `None` when that does not hold or anything fails: the login
/// then connects and reports as usual.
pub fn connect_early(
    cfg: &Config,
    resolver: &Resolver,
    original_dst: Option<SocketAddr>,
    proxy_self: &[SocketAddr],
) -> Option<(SocketAddr, TcpStream)> {
    if cfg.allow_magic_user || cfg.force_magic_user || cfg.destination_varies_by_user() {
        return None;
    }
    let anyone = Login {
        user: b"",
        host: None,
        port: None,
    };
    let dest = destination(
        cfg,
        resolver,
        &cfg.global,
        &anyone,
        original_dst,
        proxy_self,
    )
    .ok()?;
    let ports = ports(cfg.global.destination_ports, cfg.sock_bind_rand);
    let stream = net::start_connect(dest, None, ports).ok()?;
    Some((dest, stream))
}

fn ports(range: Option<PortRange>, random: bool) -> Option<Ports> {
    range.map(|r| Ports {
        min: r.min,
        max: r.max,
        random,
    })
}

fn millis(d: Duration) -> PollTimeout {
    PollTimeout::try_from(i32::try_from(d.as_millis()).unwrap_or(i32::MAX))
        .unwrap_or(PollTimeout::MAX)
}

/// `flags` when `on`, else no events (the descriptor stays in the set).
fn interest(on: bool, flags: PollFlags) -> PollFlags {
    if on { flags } else { PollFlags::empty() }
}

fn ready(flags: Option<PollFlags>) -> bool {
    flags.is_some_and(|f| f.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR))
}

fn writable(flags: Option<PollFlags>) -> bool {
    flags
        .is_some_and(|f| f.intersects(PollFlags::POLLOUT | PollFlags::POLLHUP | PollFlags::POLLERR))
}

/// poll(2) that retries on EINTR; returns false on time-out.
fn wait(fds: &mut [PollFd<'_>], timeout: Duration) -> bool {
    loop {
        match poll(fds, millis(timeout)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

impl<'a> Relay<'a> {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout)
    }

    // ----- talking to the client -------------------------------------------

    fn send_client(&mut self, bytes: &[u8]) -> Step {
        self.closing_sent |= bytes.starts_with(b"421");
        self.client
            .write_all(bytes)
            .map_err(|e| End::ClientError(e.to_string()))
    }

    fn reply(&mut self, code: u16, text: &str) -> Step {
        self.log.dbg(&format!("reply to client: {code} {text}"));
        self.send_client(&reply::line(code, text.as_bytes()))
    }

    /// Read what the client sent into the line buffer; Ok(false) on EOF.
    fn read_client(&mut self) -> Step<bool> {
        let mut buf = [0u8; 4096];
        match self.client.read(&mut buf) {
            Ok(0) => {
                self.client_eof = true;
                Ok(false)
            }
            Ok(n) => {
                self.client_in.push(&buf[..n]);
                Ok(true)
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::Interrupted
                    || e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                Ok(true)
            }
            Err(e) => Err(End::ClientError(e.to_string())),
        }
    }

    // ----- talking to the server -------------------------------------------

    fn server(&mut self) -> Step<&mut Server> {
        self.server
            .as_mut()
            .ok_or_else(|| End::ServerClosed("not connected".into()))
    }

    fn send_server(&mut self, line: &[u8]) -> Step {
        let s = self.server()?;
        let mut out = Vec::with_capacity(line.len() + 2);
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        s.stream
            .write_all(&out)
            .map_err(|e| End::ServerClosed(e.to_string()))
    }

    /// Read from the server control connection once and parse what came.
    fn read_server(&mut self) -> Step {
        let mut buf = [0u8; 4096];
        let s = self.server()?;
        let n = match s.stream.read(&mut buf) {
            Ok(0) => {
                return Err(End::ServerClosed(
                    "server closed the control connection".into(),
                ));
            }
            Ok(n) => n,
            Err(e)
                if e.kind() == std::io::ErrorKind::Interrupted
                    || e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                return Ok(());
            }
            Err(e) => return Err(End::ServerClosed(e.to_string())),
        };
        s.lines.push(&buf[..n]);
        while let Some(line) = s.lines.next_line() {
            let line = match line {
                Line::Complete(l) => l,
                Line::TooLong => return Err(End::ServerClosed("reply line too long".into())),
            };
            match s.parser.feed(&line) {
                Ok(Some(r)) => s.replies.push_back(r),
                Ok(None) => {}
                Err(e) => return Err(End::ServerClosed(e.to_string())),
            }
        }
        Ok(())
    }

    /// The next complete reply from the server, waiting at most `limit`.
    fn server_reply(&mut self, limit: Duration) -> Step<Reply> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(r) = self.server()?.replies.pop_front() {
                self.log
                    .dbg(&format!("server reply: {}", escape(&r.to_wire())));
                return Ok(r);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let s = self.server()?;
            let mut fds = [PollFd::new(s.stream.as_fd(), PollFlags::POLLIN)];
            if left.is_zero() || !wait(&mut fds, left) {
                return Err(End::ServerClosed("no reply from server in time".into()));
            }
            self.read_server()?;
        }
    }

    /// Relay server replies to the client until a final (non-1xx) one.
    fn relay_replies(&mut self) -> Step<Reply> {
        let r = self.final_reply(true)?;
        self.send_client(&r.to_wire())?;
        Ok(r)
    }

    /// The server's next final (non-1xx) reply; the 1xx before it go to the
    /// client if `relay`. SECURITY: all within one TimeOut, so that a server
    /// sending 1xx lines without end cannot hold the session.
    fn final_reply(&mut self, relay: bool) -> Step<Reply> {
        let deadline = Instant::now() + self.timeout();
        loop {
            let r = self.server_reply(deadline.saturating_duration_since(Instant::now()))?;
            if !r.is_preliminary() {
                return Ok(r);
            }
            if relay {
                self.send_client(&r.to_wire())?;
            }
        }
    }

    // ----- the main loop ---------------------------------------------------

    fn serve(&mut self, greeting: &[u8]) -> Step {
        self.send_client(greeting)?;
        // A DestinationAddress name (not connected to before the jail): the
        // lookup may wait for DNS, so it comes after the greeting, and the
        // connection still overlaps the client's USER.
        if self.early.is_none() {
            self.early =
                connect_early(self.cfg, self.resolver, self.original_dst, &self.proxy_self);
        }
        loop {
            while let Some(line) = self.next_client_line() {
                self.handle(line)?;
            }
            if self.client_eof {
                return Err(End::ClientClosed);
            }
            self.wait_idle()?;
        }
    }

    fn next_client_line(&mut self) -> Option<Line> {
        self.queued
            .pop_front()
            .or_else(|| self.client_in.next_line())
    }

    /// Wait for the client or the server; relay unsolicited server replies.
    fn wait_idle(&mut self) -> Step {
        let timeout = self.timeout();
        let (client_ready, server_ready) = {
            let mut fds = vec![PollFd::new(self.client.as_fd(), PollFlags::POLLIN)];
            if let Some(s) = &self.server {
                fds.push(PollFd::new(s.stream.as_fd(), PollFlags::POLLIN));
            }
            if !wait(&mut fds, timeout) {
                (None, None)
            } else {
                (
                    Some(ready(fds[0].revents())),
                    fds.get(1).map(|f| ready(f.revents())),
                )
            }
        };
        if client_ready.is_none() {
            self.log
                .wrn(&format!("no activity for {} seconds", timeout.as_secs()));
            let _ = self.reply(
                reply::SERVICE_NOT_AVAILABLE,
                "Timeout: closing control connection.",
            );
            return Err(End::Timeout);
        }
        if server_ready == Some(true) {
            self.read_server()?;
            while let Some(r) = self.server()?.replies.pop_front() {
                self.send_client(&r.to_wire())?;
                if r.code == reply::SERVICE_NOT_AVAILABLE {
                    return Err(End::ServerClosed(SERVER_SENT_421.into()));
                }
            }
        }
        if client_ready == Some(true) {
            self.read_client()?;
        }
        Ok(())
    }

    /// One client line: parse, log, filter, dispatch.
    fn handle(&mut self, line: Line) -> Step {
        let line = match line {
            Line::Complete(l) => l,
            Line::TooLong => {
                self.log.wrn("command line too long, refused");
                return self.reply(reply::SYNTAX_ERROR, "Command line too long.");
            }
        };
        let cmd = match Command::parse(&line) {
            Ok(c) => c,
            Err(e) => {
                self.log.wrn(&format!(
                    "malformed command refused: {e}: {}",
                    command::malformed_log_text(&line)
                ));
                return self.reply(reply::SYNTAX_ERROR, &format!("Syntax error: {e}."));
            }
        };
        let verb = cmd.verb.as_str().to_string();
        let shown = cmd.log_text();
        self.log.inf(&format!("command: {shown}"));

        let filter = self.settings.valid_commands.as_ref();
        let kind = match command::kind(cmd.verb.as_bytes()) {
            Some(k) => k,
            // An unknown verb reaches the server only if ValidCommands names it.
            None if filter.is_some_and(|f| f.allows(cmd.verb.as_bytes())) => Kind::Plain,
            None => {
                self.log.wrn(&format!("unknown command refused: {shown}"));
                return self.reply(
                    reply::SYNTAX_ERROR,
                    &format!("{verb}: command not understood."),
                );
            }
        };
        // SECURITY: the command filter; a refused command never reaches the server.
        if let Some(f) = filter {
            match f.check(cmd.verb.as_bytes(), cmd.arg) {
                Verdict::Allow => {}
                Verdict::CommandRefused => {
                    self.log
                        .wrn(&format!("command refused by ValidCommands: {shown}"));
                    return self.reply(
                        reply::NOT_IMPLEMENTED,
                        &format!("{verb}: command not allowed."),
                    );
                }
                Verdict::ArgumentRefused => {
                    self.log
                        .wrn(&format!("argument refused by ValidCommands: {shown}"));
                    return self.reply(
                        reply::NOT_IMPLEMENTED_FOR_ARG,
                        &format!("{verb}: argument not allowed."),
                    );
                }
            }
        }
        if kind == Kind::Security {
            // TLS cannot be relayed by a proxy that reads the commands; a
            // clear refusal makes clients fall back to plain FTP.
            return self.reply(
                reply::NOT_IMPLEMENTED,
                &format!("{verb}: TLS/security extensions are not supported by this proxy."),
            );
        }
        if self.server.is_none() {
            return self.before_login(kind, cmd);
        }
        match kind {
            Kind::User => self.second_user(cmd),
            Kind::Passive => self.client_passive(cmd),
            Kind::Active => self.client_active(cmd),
            Kind::Data => self.transfer(&line, cmd),
            Kind::Feat => self.feat(),
            Kind::Quit => {
                self.send_server(&line)?;
                let _ = self.relay_replies();
                Err(End::Quit)
            }
            Kind::Reinit => self.reply(
                reply::NOT_IMPLEMENTED,
                "REIN not supported by this proxy: reconnect instead.",
            ),
            Kind::Pass | Kind::Abort | Kind::Plain | Kind::Security => {
                self.send_server(&line)?;
                self.relay_replies().map(|_| ())
            }
        }
    }

    fn before_login(&mut self, kind: Kind, cmd: Command<'_>) -> Step {
        match kind {
            Kind::User => self.login(cmd.arg),
            Kind::Quit => {
                let _ = self.reply(reply::CLOSING, "Goodbye.");
                Err(End::Quit)
            }
            Kind::Feat => self.feat_before_login(),
            Kind::Pass if self.pending.is_some() => self.authenticate(cmd.arg),
            Kind::Pass => self.reply(reply::BAD_SEQUENCE, "Login with USER first."),
            _ => self.reply(reply::NOT_LOGGED_IN, "Please login with USER and PASS."),
        }
    }

    // ----- login -------------------------------------------------------------

    fn login(&mut self, arg: &[u8]) -> Step {
        let cfg = self.cfg;
        let magic = cfg.allow_magic_user || cfg.force_magic_user;
        let auth_magic = cfg
            .ldap
            .as_ref()
            .and_then(|l| l.auth.as_ref())
            .and_then(|a| a.magic);
        let mut auth_user = None;
        let login = if let Some(mode) = auth_magic {
            match split_auth(arg, mode, magic.then_some(cfg.user_magic_char)) {
                Ok(a) => {
                    auth_user = Some(a.auth_user);
                    a.login
                }
                Err(e) => {
                    self.log
                        .wrn(&format!("bad proxy login '{}': {e}", escape(arg)));
                    let form = match mode {
                        AuthMagic::AuthLast => "ftpuser@authuser",
                        AuthMagic::AuthFirst => "authuser@ftpuser",
                    };
                    return self.reply(
                        reply::NOT_LOGGED_IN,
                        &format!("Bad login: {e}; log in as {form}."),
                    );
                }
            }
        } else if magic {
            match split_magic(arg, cfg.user_magic_char) {
                Ok(l) => l,
                Err(e) => {
                    self.log
                        .wrn(&format!("bad magic login '{}': {e}", escape(arg)));
                    return self.reply(reply::NOT_LOGGED_IN, &format!("Bad login: {e}."));
                }
            }
        } else {
            Login {
                user: arg,
                host: None,
                port: None,
            }
        };
        if cfg.force_magic_user && login.host.is_none() {
            return self.reply(
                reply::NOT_LOGGED_IN,
                &format!("Log in as user{}host[:port].", cfg.user_magic_char as char),
            );
        }
        // SECURITY: UserNameRule keeps odd names out of the context lookup and
        // away from the server.
        for name in [Some(login.user), auth_user].into_iter().flatten() {
            if !cfg.user_name_rule.is_match(name) {
                self.log.wrn(&format!(
                    "user name refused by UserNameRule: '{}'",
                    escape(name)
                ));
                return self.reply(reply::NOT_LOGGED_IN, "Invalid user name.");
            }
        }
        let settings = match &cfg.ldap {
            None => Cow::Borrowed(cfg.for_user(login.user)),
            Some(directory) => {
                // With UserAuthMagic the proxy login names the profile too.
                let directory_user = auth_user.unwrap_or(login.user);
                let (settings, entry) = match self.look_up(directory, directory_user)? {
                    Some(found) => found,
                    None => return Ok(()),
                };
                if directory.auth.is_some() {
                    // SECURITY: nothing reaches the server before the proxy
                    // has authenticated the user at PASS.
                    self.pending = Some(Pending {
                        user: login.user.to_vec(),
                        auth_user: directory_user.to_vec(),
                        host: login.host.map(<[u8]>::to_vec),
                        port: login.port,
                        settings,
                        entry,
                    });
                    return self.reply(
                        reply::NEED_PASSWORD,
                        "Password required for proxy authentication.",
                    );
                }
                Cow::Owned(settings)
            }
        };
        self.pending = None;
        self.open_session(settings, &login, None)
    }

    /// Connect to the login's server with `settings` and send USER; with
    /// `password` (the proxy has authenticated the user already), send
    /// PASS too when the server asks for it.
    fn open_session(
        &mut self,
        settings: Cow<'a, UserSettings>,
        login: &Login<'_>,
        password: Option<&[u8]>,
    ) -> Step {
        let dest = match self.destination(&settings, login) {
            Ok(d) => d,
            Err(why) => {
                self.log
                    .wrn(&format!("login '{}' refused: {why}", escape(login.user)));
                return self.reply(
                    reply::NOT_LOGGED_IN,
                    &format!("Destination refused: {why}."),
                );
            }
        };
        self.settings = settings;
        self.connect_server(dest)?;
        self.log
            .inf(&format!("user '{}' to server {dest}", escape(login.user)));
        let mut line = b"USER ".to_vec();
        line.extend_from_slice(login.user);
        self.send_server(&line)?;
        self.user = Some(login.user.to_vec());
        let Some(password) = password else {
            return self.relay_replies().map(|_| ());
        };
        // The client has had its 331 from the proxy already: only the
        // server's final answer to USER matters here.
        let r = self.final_reply(false)?;
        if r.code != reply::NEED_PASSWORD {
            return self.send_client(&r.to_wire());
        }
        let mut line = b"PASS ".to_vec();
        line.extend_from_slice(password);
        self.send_server(&line)?;
        self.relay_replies().map(|_| ())
    }

    /// SPEC 7: look the login up in the directory. Ok(Some) with the
    /// user's settings (the profile entry's attributes over the file's
    /// values for the login; the file's values alone for a user not in the
    /// directory) and
    /// the entry for authentication; Ok(None) when the profile is invalid
    /// (530 sent); Err with 421 sent when the directory is unusable.
    fn look_up(
        &mut self,
        directory: &LdapSettings,
        user: &[u8],
    ) -> Step<Option<(UserSettings, Option<Entry>)>> {
        self.lookups += 1;
        // SECURITY: one session cannot make the proxy query the directory
        // without end.
        if self.lookups > limits::MAX_DIRECTORY_LOOKUPS {
            self.log.wrn(&format!(
                "more than {} logins in one session",
                limits::MAX_DIRECTORY_LOOKUPS
            ));
            let _ = self.reply(
                reply::SERVICE_NOT_AVAILABLE,
                "Too many logins; closing connection.",
            );
            return Err(End::TooManyLookups);
        }
        let found = resolve(self.resolver, &directory.host, directory.port)
            .map_err(ldap::LdapError::Connect)
            .and_then(|addrs| ldap::lookup(directory, &addrs, user));
        let found = match found {
            Ok(f) => f,
            Err(e) => return Err(self.directory_unusable(directory, &e)),
        };
        let Some(entry) = found.profile else {
            self.log.inf(&format!(
                "user '{}' not in the directory ({}): the file's values apply",
                escape(user),
                ldap::filter_text(directory, user)
            ));
            return Ok(Some((self.cfg.for_user(user).clone(), found.auth)));
        };
        let settings = ldap::option_attributes(&entry)
            .and_then(|attrs| self.cfg.settings_from_attributes(user, &attrs));
        match settings {
            Ok(s) => {
                self.log.inf(&format!(
                    "user '{}' found in the directory: {}",
                    escape(user),
                    escape(&entry.dn)
                ));
                Ok(Some((s, found.auth)))
            }
            Err(why) => {
                // SECURITY: a profile that does not parse is refused, never
                // replaced by the (possibly wider) global values.
                self.log.err(&format!(
                    "user '{}': invalid profile in the directory entry {}: {why}",
                    escape(user),
                    escape(&entry.dn)
                ));
                self.reply(reply::NOT_LOGGED_IN, "Login refused: invalid user profile.")?;
                Ok(None)
            }
        }
    }

    /// Log why the directory cannot be used, say 421 and end the session.
    fn directory_unusable(&mut self, directory: &LdapSettings, e: &ldap::LdapError) -> End {
        // An IPv6 literal in brackets, as LDAPServer writes it.
        let host = if directory.host.contains(':') {
            format!("[{}]", directory.host)
        } else {
            directory.host.clone()
        };
        self.log.err(&format!(
            "LDAP directory {host}:{} unusable: {e}",
            directory.port
        ));
        let _ = self.reply(
            reply::SERVICE_NOT_AVAILABLE,
            "Directory service not available; closing connection.",
        );
        End::Directory(e.to_string())
    }

    /// PASS after a USER the proxy answered (UserAuthType ldap): check the
    /// password against the directory; only then connect to the server
    /// and log in there with the same USER and PASS.
    fn authenticate(&mut self, password: &[u8]) -> Step {
        let (Some(pending), Some(directory)) = (self.pending.take(), self.cfg.ldap.as_ref()) else {
            return self.reply(reply::BAD_SEQUENCE, "Login with USER first.");
        };
        let Some(auth) = directory.auth.as_ref() else {
            return self.reply(reply::BAD_SEQUENCE, "Login with USER first.");
        };
        // UserAuthMagic: PASS carries the FTP password and the proxy's.
        let (ftp_password, password) = match auth.magic {
            None => (Some(password), password),
            Some(mode) => match split_auth_pass(password, mode) {
                Some((ftp, proxy)) => (Some(ftp), proxy),
                None => (None, password),
            },
        };
        let verdict = match (&pending.entry, ftp_password) {
            (_, None) => Err(ldap::auth::Denied::NoAuthPassword),
            (None, _) => Err(ldap::auth::Denied::NoEntry),
            (Some(entry), Some(_)) => match ldap::auth::check_flag(entry, auth.ok_flag.as_ref()) {
                Err(d) => Err(d),
                Ok(()) => match &auth.pw_attr {
                    Some(attr) => ldap::auth::check_password(
                        entry,
                        attr,
                        auth.pw_scheme,
                        auth.pw_min_len,
                        password,
                    ),
                    // SECURITY: an empty simple bind is an unauthenticated
                    // bind, which many directories accept: never sent.
                    None if password.is_empty() => Err(ldap::auth::Denied::EmptyPassword),
                    None => {
                        let bound = resolve(self.resolver, &directory.host, directory.port)
                            .map_err(ldap::LdapError::Connect)
                            .and_then(|addrs| {
                                ldap::bind_as(directory, &addrs, &entry.dn, password)
                            });
                        match bound {
                            Ok(Ok(())) => Ok(()),
                            Ok(Err(r)) => {
                                self.log.dbg(&format!(
                                    "bind as {} refused: result {}",
                                    escape(&entry.dn),
                                    r.code
                                ));
                                Err(ldap::auth::Denied::WrongPassword)
                            }
                            Err(e) => return Err(self.directory_unusable(directory, &e)),
                        }
                    }
                },
            },
        };
        if let Err(why) = verdict {
            self.auth_failures += 1;
            // SECURITY: the password is never logged; the client learns
            // nothing about why (no user-name probing).
            self.log.wrn(&format!(
                "authentication failed for user '{}': {why}",
                escape(&pending.auth_user)
            ));
            if self.auth_failures >= limits::MAX_AUTH_FAILURES {
                let _ = self.reply(
                    reply::SERVICE_NOT_AVAILABLE,
                    "Login incorrect; too many failures, closing connection.",
                );
                return Err(End::AuthFailures);
            }
            return self.reply(reply::NOT_LOGGED_IN, "Login incorrect.");
        }
        self.log.inf(&format!(
            "user '{}' authenticated by the directory",
            escape(&pending.auth_user)
        ));
        let login = Login {
            user: &pending.user,
            host: pending.host.as_deref(),
            port: pending.port,
        };
        let ftp_password = ftp_password.unwrap_or_default();
        self.open_session(Cow::Owned(pending.settings), &login, Some(ftp_password))
    }

    /// Where this login goes (see [`destination`]).
    fn destination(
        &self,
        settings: &UserSettings,
        login: &Login<'_>,
    ) -> Result<SocketAddr, String> {
        destination(
            self.cfg,
            self.resolver,
            settings,
            login,
            self.original_dst,
            &self.proxy_self,
        )
    }

    /// Connect to the server and read its greeting. A connection begun by
    /// `connect_early` to the same place is used if it still works (the
    /// server may have given up on it while the client was silent);
    /// otherwise a new one is made.
    fn connect_server(&mut self, dest: SocketAddr) -> Step {
        // One deadline for the early connection and a new one together, and
        // never past TimeOut: a silent server must not hold the client for
        // twice the connect limit.
        let limit = Duration::from_secs(limits::CONNECT_TIMEOUT_SECS).min(self.timeout());
        let deadline = Instant::now() + limit;
        let left = move || deadline.saturating_duration_since(Instant::now());
        let same_ports = self.settings.destination_ports == self.cfg.global.destination_ports;
        if let Some(greeted) = self
            .greeted
            .take()
            .filter(|g| g.addr == canonical(dest) && same_ports)
        {
            self.server = Some(greeted);
            match self.server_still_open() {
                Ok(()) => return Ok(()),
                Err(why) => self.log.dbg(&format!(
                    "connection to server {dest} from FEAT unusable ({why}); connecting again"
                )),
            }
            self.server = None;
        }
        if let Some((_, stream)) = self.early.take().filter(|(a, _)| *a == dest && same_ports) {
            let greeted = net::finish_connect(stream, left())
                .map_err(|e| e.to_string())
                .and_then(|s| self.greeting(s, dest, left()).map_err(|e| e.to_string()))
                .and_then(|()| self.server_still_open());
            match greeted {
                Ok(()) => return Ok(()),
                Err(why) => self.log.dbg(&format!(
                    "early connection to server {dest} unusable ({why}); connecting again"
                )),
            }
            self.server = None;
        }
        let timeout = left();
        if timeout.is_zero() {
            self.log
                .err(&format!("no greeting from server {dest} in {limit:?}"));
            let _ = self.reply(
                reply::SERVICE_NOT_AVAILABLE,
                "The FTP server did not answer; closing connection.",
            );
            return Err(End::Unreachable("no greeting in time".into()));
        }
        let stream = match net::connect(
            dest,
            None,
            ports(self.settings.destination_ports, self.cfg.sock_bind_rand),
            timeout,
        ) {
            Ok(s) => s,
            Err(e) => {
                self.log
                    .err(&format!("cannot connect to server {dest}: {e}"));
                let _ = self.reply(
                    reply::SERVICE_NOT_AVAILABLE,
                    "Cannot connect to the FTP server; closing connection.",
                );
                return Err(End::Unreachable(format!("{dest}: {e}")));
            }
        };
        match self.greeting(stream, dest, left()) {
            Ok(()) => Ok(()),
            Err(Greeting::Silent(e)) => {
                self.log
                    .err(&format!("no greeting from server {dest}: {e}"));
                let _ = self.reply(
                    reply::SERVICE_NOT_AVAILABLE,
                    "The FTP server did not answer; closing connection.",
                );
                Err(End::Unreachable(e.to_string()))
            }
            Err(Greeting::Refused(r)) => {
                self.log.err(&format!(
                    "server {dest} refused the session: {}",
                    escape(&r.to_wire())
                ));
                let _ = self.reply(
                    reply::SERVICE_NOT_AVAILABLE,
                    "The FTP server refused the session; closing connection.",
                );
                Err(End::Unreachable(format!("greeting {}", r.code)))
            }
        }
    }

    /// After the greeting of an early connection: the server has said
    /// nothing more (a 421 for a client that took too long) and not closed.
    fn server_still_open(&mut self) -> Result<(), String> {
        let s = self.server().map_err(|e| e.to_string())?;
        let mut fds = [PollFd::new(s.stream.as_fd(), PollFlags::POLLIN)];
        if wait(&mut fds, Duration::ZERO) {
            self.read_server().map_err(|e| e.to_string())?;
        }
        match self.server().map_err(|e| e.to_string())?.replies.front() {
            Some(r) => Err(format!("server said {}", r.code)),
            None => Ok(()),
        }
    }

    /// Take `stream` as the server connection and wait for its 220. On
    /// failure the session has no server connection again.
    fn greeting(
        &mut self,
        stream: TcpStream,
        dest: SocketAddr,
        timeout: Duration,
    ) -> Result<(), Greeting> {
        let _ = net::set_keepalive(&stream);
        let _ = net::set_nodelay(&stream);
        let _ = stream.set_write_timeout(Some(self.timeout()));
        let local = stream
            .local_addr()
            .map(canonical)
            .unwrap_or(self.local_addr);
        self.server = Some(Server {
            stream,
            addr: canonical(dest),
            local,
            lines: LineBuffer::new(),
            parser: ReplyParser::new(),
            replies: VecDeque::new(),
        });
        let outcome = loop {
            match self.server_reply(timeout) {
                Ok(r) if r.is_preliminary() => continue,
                Ok(r) if r.code == reply::SERVICE_READY => break Ok(()),
                Ok(r) => break Err(Greeting::Refused(r)),
                Err(e) => break Err(Greeting::Silent(e)),
            }
        };
        if outcome.is_err() {
            self.server = None;
        }
        outcome
    }

    /// USER after login: the same name is relayed (a retry after a failed
    /// PASS); another name would need another context or server.
    fn second_user(&mut self, cmd: Command<'_>) -> Step {
        if self.user.as_deref() == Some(cmd.arg) {
            let mut line = b"USER ".to_vec();
            line.extend_from_slice(cmd.arg);
            self.send_server(&line)?;
            return self.relay_replies().map(|_| ());
        }
        self.reply(
            reply::NOT_LOGGED_IN,
            "Cannot change user in this session: reconnect to log in as another user.",
        )
    }

    /// FEAT before USER. When no login can change the server (there is an
    /// early connection), the server is asked, as after login: lftp sends
    /// FEAT only before USER and uses MLSD, UTF8, ... only if listed. The
    /// greeted connection is kept for USER. Otherwise only ftpgate's own.
    fn feat_before_login(&mut self) -> Step {
        match (self.greeted.take(), self.early.as_ref().map(|(a, _)| *a)) {
            (Some(greeted), _) => self.server = Some(greeted),
            (None, Some(dest)) => self.connect_server(dest)?,
            (None, None) => {
                let r = session::features(None, self.settings.valid_commands.as_ref());
                return self.send_client(&r);
            }
        }
        let result = self.feat();
        self.greeted = self.server.take();
        result
    }

    fn feat(&mut self) -> Step {
        self.send_server(b"FEAT")?;
        let r = self.final_reply(false)?;
        let out = session::features(Some(&r), self.settings.valid_commands.as_ref());
        self.send_client(&out)
    }

    // ----- data connection set-up ------------------------------------------

    fn client_passive(&mut self, cmd: Command<'_>) -> Step {
        let extended = cmd.verb.as_bytes() == b"EPSV";
        if extended {
            match addr::parse_epsv_arg(cmd.arg) {
                Ok(addr::EpsvArg::All) => {
                    self.epsv_all = true;
                    return self.reply(reply::COMMAND_OK, "EPSV ALL ok.");
                }
                Ok(addr::EpsvArg::V4) if !self.local_addr.is_ipv4() => {
                    return self.unsupported_family();
                }
                Ok(addr::EpsvArg::V6) if !self.local_addr.is_ipv6() => {
                    return self.unsupported_family();
                }
                Ok(_) => {}
                Err(_) => return self.unsupported_family(),
            }
        } else if self.epsv_all {
            return self.reply(reply::BAD_SEQUENCE, "Only EPSV is allowed after EPSV ALL.");
        }
        let ip = self.local_addr.ip();
        let advertised = match (extended, self.translated, ip) {
            (true, _, _) => None,
            // TranslatedAddress is the IPv4 address clients reach the
            // proxy at; an IPv6 control connection has no IPv4 path to the
            // listener, which is bound to the control connection's address.
            (false, Some(t), IpAddr::V4(_)) => Some(t),
            (false, None, IpAddr::V4(v4)) => Some(v4),
            (false, _, IpAddr::V6(_)) => {
                return self.reply(reply::CANT_OPEN_DATA, "PASV needs IPv4: use EPSV.");
            }
        };
        self.pasv = None;
        let listener = match net::listen(
            ip,
            ports(self.settings.passive_ports, self.cfg.sock_bind_rand),
        ) {
            Ok(l) => l,
            Err(e) => {
                self.log.err(&format!("cannot open passive listener: {e}"));
                let text = if e.kind() == std::io::ErrorKind::AddrInUse {
                    "Cannot open data connection: no free port in the passive port range."
                } else {
                    "Cannot open data connection."
                };
                return self.reply(reply::CANT_OPEN_DATA, text);
            }
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let _ = listener.set_nonblocking(true);
        self.pasv = Some(listener);
        self.port = None;
        self.client_side = Some(Side::Passive);
        match advertised {
            Some(v4) => self.send_client(&addr::format_227(SocketAddrV4::new(v4, port))),
            None => self.send_client(&addr::format_229(port)),
        }
    }

    /// RFC 2428 522: the reply lists the families the client may use, and
    /// ftpgate's data connections to the client use the control
    /// connection's family only.
    fn unsupported_family(&mut self) -> Step {
        let family = if self.local_addr.is_ipv4() { 1 } else { 2 };
        self.reply(
            reply::EXT_PROTO_NOT_SUPPORTED,
            &format!("Network protocol not supported, use ({family})."),
        )
    }

    fn client_active(&mut self, cmd: Command<'_>) -> Step {
        if self.epsv_all {
            return self.reply(reply::BAD_SEQUENCE, "Only EPSV is allowed after EPSV ALL.");
        }
        let parsed = if cmd.verb.as_bytes() == b"EPRT" {
            addr::parse_eprt(cmd.arg)
        } else {
            addr::parse_port(cmd.arg).map(SocketAddr::V4)
        };
        let target = match parsed {
            Ok(a) => canonical(a),
            Err(addr::AddrError::UnsupportedFamily) => return self.unsupported_family(),
            Err(e) => {
                return self.reply(
                    reply::ARG_SYNTAX_ERROR,
                    &format!("{}: {e}.", cmd.verb.as_str()),
                );
            }
        };
        // RFC 2428 §2: an address family the connection cannot carry is 522,
        // whatever the address; checked before SameAddress so the client
        // learns to switch families rather than being told it lied.
        if target.is_ipv4() != self.local_addr.is_ipv4() {
            return self.unsupported_family();
        }
        if let Err(why) =
            check_client_port(target, self.client_addr.ip(), self.settings.same_address)
        {
            self.log
                .wrn(&format!("{} {target} refused: {why}", cmd.verb.as_str()));
            return self.reply(
                reply::NOT_IMPLEMENTED_FOR_ARG,
                &format!("{} refused: {why}.", cmd.verb.as_str()),
            );
        }
        if self.cfg.port_resets_pasv {
            self.pasv = None;
        }
        self.port = Some(target);
        self.client_side = Some(Side::Active);
        self.reply(
            reply::COMMAND_OK,
            &format!("{} command successful.", cmd.verb.as_str()),
        )
    }

    /// Prepare the server side of a transfer as `side` says (server's view:
    /// Passive = we ask the server for an address and connect to it).
    /// Ok(None): refused, the client already has its reply.
    fn open_server_data(&mut self, side: Side) -> Step<Option<ServerData>> {
        let s = self.server()?;
        let (server_ip, local_ip) = (s.addr.ip(), s.local.ip());
        let same = self.settings.same_address;
        let dports = ports(self.settings.destination_ports, self.cfg.sock_bind_rand);
        match side {
            Side::Passive => {
                let v6 = server_ip.is_ipv6();
                self.send_server(if v6 { b"EPSV" } else { b"PASV" })?;
                let r = self.server_reply(self.timeout())?;
                let target = match (v6, r.code) {
                    (false, reply::ENTERING_PASSIVE) => {
                        addr::parse_227(r.text()).map(SocketAddr::V4)
                    }
                    (true, reply::ENTERING_EXT_PASSIVE) => {
                        addr::parse_229(r.text()).map(|p| SocketAddr::new(server_ip, p))
                    }
                    _ => {
                        self.log.wrn(&format!(
                            "server refused passive mode: {}",
                            escape(&r.to_wire())
                        ));
                        self.reply(
                            reply::CANT_OPEN_DATA,
                            "Cannot open data connection: the server refused passive mode.",
                        )?;
                        return Ok(None);
                    }
                };
                let target = match target {
                    Ok(t) => canonical(t),
                    Err(e) => {
                        self.log.wrn(&format!(
                            "bad passive reply from server ({e}): {}",
                            escape(&r.to_wire())
                        ));
                        self.reply(reply::CANT_OPEN_DATA, "Cannot open data connection.")?;
                        return Ok(None);
                    }
                };
                if let Err(why) = check_server_passive(target, server_ip, same) {
                    self.log
                        .wrn(&format!("server passive address {target} refused: {why}"));
                    self.reply(reply::CANT_OPEN_DATA, "Cannot open data connection.")?;
                    return Ok(None);
                }
                match net::connect(
                    target,
                    Some(local_ip),
                    dports,
                    Duration::from_secs(limits::CONNECT_TIMEOUT_SECS),
                ) {
                    Ok(stream) => Ok(Some(ServerData::Connected(stream))),
                    Err(e) => {
                        self.log
                            .err(&format!("cannot connect to server data port {target}: {e}"));
                        self.reply(reply::CANT_OPEN_DATA, "Cannot open data connection.")?;
                        Ok(None)
                    }
                }
            }
            Side::Active => {
                let listener = match net::listen(local_ip, dports) {
                    Ok(l) => l,
                    Err(e) => {
                        self.log.err(&format!(
                            "cannot listen for the server's data connection: {e}"
                        ));
                        self.reply(reply::CANT_OPEN_DATA, "Cannot open data connection.")?;
                        return Ok(None);
                    }
                };
                let _ = listener.set_nonblocking(true);
                let mine = listener
                    .local_addr()
                    .map(canonical)
                    .map_err(|e| End::ServerClosed(e.to_string()))?;
                let line = match mine {
                    SocketAddr::V4(v4) => format!("PORT {}", addr::format_port(v4)),
                    v6 => format!("EPRT {}", addr::format_eprt(v6)),
                };
                self.send_server(line.as_bytes())?;
                let r = self.server_reply(self.timeout())?;
                if !r.is_positive() {
                    self.log.wrn(&format!(
                        "server refused active mode: {}",
                        escape(&r.to_wire())
                    ));
                    self.reply(
                        reply::CANT_OPEN_DATA,
                        "Cannot open data connection: the server refused active mode.",
                    )?;
                    return Ok(None);
                }
                Ok(Some(ServerData::Listening(listener)))
            }
        }
    }

    /// Wait for a connection on `listener` from `expected`; connections from
    /// anyone else are closed and logged, and the wait goes on. Server replies
    /// arriving meanwhile are queued. None on time-out or when the server
    /// ended the transfer with a final reply first.
    fn accept_from(
        &mut self,
        listener: &TcpListener,
        expected: IpAddr,
        what: &str,
    ) -> Step<Option<TcpStream>> {
        let deadline = Instant::now() + self.timeout();
        loop {
            if self
                .server()?
                .replies
                .iter()
                .any(|r| !r.is_preliminary() && !r.is_positive())
            {
                return Ok(None);
            }
            match listener.accept() {
                Ok((stream, from)) => {
                    if let Err(why) =
                        check_data_peer(from.ip(), expected, self.settings.same_address)
                    {
                        self.log.wrn(&format!(
                            "{what} data connection from {from} refused: {why}"
                        ));
                        continue;
                    }
                    let _ = stream.set_nonblocking(false);
                    return Ok(Some(stream));
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.log
                        .err(&format!("accept for {what} data connection: {e}"));
                    return Ok(None);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            // Waiting for the client's own connection: its ABOR (or a
            // pipelined one already read) must not wait for the deadline.
            let watch_client = what == "client"
                && !self.client_eof
                && self.queued.len() < limits::MAX_QUEUED_COMMANDS;
            let (server_ready, client_ready) = {
                let s = self
                    .server
                    .as_ref()
                    .ok_or_else(|| End::ServerClosed("not connected".into()))?;
                let mut fds = [
                    PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                    PollFd::new(s.stream.as_fd(), PollFlags::POLLIN),
                    PollFd::new(
                        self.client.as_fd(),
                        interest(watch_client, PollFlags::POLLIN),
                    ),
                ];
                if left.is_zero() || !wait(&mut fds, left) {
                    return Ok(None);
                }
                (ready(fds[1].revents()), ready(fds[2].revents()))
            };
            if server_ready {
                self.read_server()?;
            }
            if watch_client && client_ready {
                self.read_client()?;
            }
            if what == "client" && self.client_lines_hold_abort() {
                self.aborted_before_data = true;
                return Ok(None);
            }
        }
    }

    /// The client side of a transfer: accept on our passive listener or
    /// connect to the client's PORT address.
    fn open_client_data(&mut self) -> Step<Option<TcpStream>> {
        match (self.client_side, self.pasv.take(), self.port) {
            (Some(Side::Passive), Some(listener), _) => {
                let r = self.accept_from(&listener, self.client_addr.ip(), "client");
                if self.cfg.fail_resets_pasv || matches!(r, Ok(Some(_))) {
                    drop(listener);
                } else {
                    self.pasv = Some(listener);
                }
                r
            }
            (Some(Side::Active), _, Some(target)) => {
                let bind = Some(self.local_addr.ip());
                let aports = ports(self.settings.active_ports, self.cfg.sock_bind_rand);
                match net::connect(
                    target,
                    bind,
                    aports,
                    Duration::from_secs(limits::CONNECT_TIMEOUT_SECS),
                ) {
                    Ok(s) => Ok(Some(s)),
                    Err(e) => {
                        self.log
                            .wrn(&format!("cannot connect to client data port {target}: {e}"));
                        Ok(None)
                    }
                }
            }
            _ => Ok(None),
        }
    }

    // ----- transfers -----------------------------------------------------------

    fn transfer(&mut self, line: &[u8], cmd: Command<'_>) -> Step {
        // A listener closed by FailResetsPasv or a used PORT address means
        // the client must choose again before the server is asked anything.
        let usable = |side: &Side| match side {
            Side::Passive => self.pasv.is_some(),
            Side::Active => self.port.is_some(),
        };
        let Some(client_side) = self.client_side.filter(usable) else {
            return self.reply(reply::CANT_OPEN_DATA, "Use PORT or PASV first.");
        };
        let side = session::server_mode(self.settings.destination_transfer_mode, client_side);
        let Some(server_data) = self.open_server_data(side)? else {
            return Ok(());
        };
        self.send_server(line)?;
        let first = self.server_reply(self.timeout())?;
        if !first.is_preliminary() {
            // Close the listener before the client hears of the failure, so
            // that it never finds it still open.
            if self.cfg.fail_resets_pasv {
                self.pasv = None;
            }
            return self.send_client(&first.to_wire());
        }
        self.send_client(&first.to_wire())?;
        let started = Instant::now();
        let server_ip = self.server()?.addr.ip();
        let server_stream = match server_data {
            ServerData::Connected(s) => Some(s),
            ServerData::Listening(l) => self.accept_from(&l, server_ip, "server")?,
        };
        let client_stream = match server_stream {
            Some(_) => self.open_client_data()?,
            None => None,
        };
        let (Some(server_stream), Some(client_stream)) = (server_stream, client_stream) else {
            if std::mem::take(&mut self.aborted_before_data) {
                // Two replies, as for an ABOR during the transfer: 426, 226.
                let r = self.abort_transfer(true);
                self.abort_answered = false;
                return r;
            }
            return self.abort_setup();
        };
        self.client_side = if self.pasv.is_some() {
            Some(Side::Passive)
        } else {
            None
        };
        self.port = None;
        let dir = session::direction(cmd.verb.as_bytes());
        let (src, dst) = match dir {
            Direction::Download => (server_stream, client_stream),
            Direction::Upload => (client_stream, server_stream),
        };
        let outcome = self.pump(src, dst)?;
        // The source did not end, or what came from it was not all
        // delivered (idle timeout, a sink that broke or went away).
        let cut = !self.pump.finished();
        let bytes = self.pump.bytes;
        let code = if std::mem::take(&mut self.abort_answered) {
            reply::TRANSFER_ABORTED
        } else {
            let limit = if cut {
                Duration::from_secs(limits::REPLY_AFTER_CUT_SECS).min(self.timeout())
            } else {
                self.timeout()
            };
            let final_reply = match self.take_final() {
                Some(r) => r,
                None => self.server_reply(limit)?,
            };
            if cut && final_reply.is_positive() {
                // The server may well have sent or stored everything; the
                // client's side of the transfer is incomplete all the same,
                // and a 226 would say otherwise.
                self.log.wrn(&format!(
                    "transfer cut short at the proxy, server said: {}",
                    escape(&final_reply.to_wire())
                ));
                self.reply_transfer_cut()?;
                reply::TRANSFER_ABORTED
            } else {
                self.send_client(&final_reply.to_wire())?;
                final_reply.code
            }
        };
        let secs = started.elapsed().as_secs_f64();
        match dir {
            Direction::Download => self.totals.bytes_down += bytes,
            Direction::Upload => self.totals.bytes_up += bytes,
        }
        self.totals.transfers += 1;
        // SPEC 8: bytes each way; a transfer moves data one way only.
        let (way, down, up) = match dir {
            Direction::Download => ("server->client", bytes, 0),
            Direction::Upload => ("client->server", 0, bytes),
        };
        self.log.inf(&format!(
            "transfer: {} {} {way}: {down} bytes down, {up} bytes up in {secs:.3} s ({:.1} KiB/s) reply {code}{}",
            cmd.verb.as_str(),
            escape(cmd.arg),
            bytes as f64 / 1024.0 / secs.max(0.001),
            outcome.map(|o| format!(" ({o})")).unwrap_or_default(),
        ));
        Ok(())
    }

    /// A final reply the server already sent during the transfer, if any.
    fn take_final(&mut self) -> Option<Reply> {
        let s = self.server.as_mut()?;
        let i = s.replies.iter().position(|r| !r.is_preliminary())?;
        let mut before: Vec<Reply> = s.replies.drain(..i).collect();
        let r = s.replies.pop_front();
        // 1xx marks (e.g. 110 restart markers) that arrived meanwhile go first.
        before.extend(r);
        let last = before.pop();
        for b in before {
            let _ = self.send_client(&b.to_wire());
        }
        last
    }

    /// A data connection could not be made after the server's 1xx: stop the
    /// server's side and tell the client.
    fn abort_setup(&mut self) -> Step {
        self.log.wrn("data connection could not be established");
        if self.take_final().is_none() {
            self.send_server(b"ABOR")?;
            // The accept or connect has already waited its limit.
            let limit = Duration::from_secs(limits::REPLY_AFTER_CUT_SECS).min(self.timeout());
            // The transfer's reply (426/425/226) and then ABOR's own reply.
            if let Ok(r) = self.server_reply(limit)
                && !r.is_positive()
            {
                let _ = self.server_reply(limit);
            }
        }
        self.reply(reply::CANT_OPEN_DATA, "Cannot open data connection.")
    }

    /// Copy `src` to `dst` until the source ends and everything is
    /// delivered, watching both control connections. Returns a note when the
    /// transfer ended abnormally.
    fn pump(&mut self, mut src: TcpStream, mut dst: TcpStream) -> Step<Option<String>> {
        self.pump.reset();
        let _ = src.set_nonblocking(true);
        let _ = dst.set_nonblocking(true);
        let timeout = self.timeout();
        let mut note = None;
        while !self.pump.finished() {
            // Lines read with the transfer command (an ABOR pipelined behind
            // RETR) count as much as those arriving during the transfer:
            // nothing else would look at them before the transfer ends.
            if self.client_lines_hold_abort() {
                let cut = !self.pump.finished();
                drop(src);
                drop(dst);
                return self
                    .abort_transfer(cut)
                    .map(|_| Some("aborted by client".to_string()));
            }
            let (want_r, want_w) = (self.pump.wants_read(), self.pump.wants_write());
            let client_room = self.queued.len() < limits::MAX_QUEUED_COMMANDS && !self.client_eof;
            let flags = {
                let s = self
                    .server
                    .as_ref()
                    .ok_or_else(|| End::ServerClosed("not connected".into()))?;
                let mut fds = [
                    // A source we do not read from is not polled at all: its
                    // POLLHUP/POLLERR (reported even with no events asked)
                    // would wake us in a loop while the sink is full. The
                    // sink's descriptor stands in (its events are in slot 1).
                    PollFd::new(
                        if want_r { src.as_fd() } else { dst.as_fd() },
                        interest(want_r, PollFlags::POLLIN),
                    ),
                    PollFd::new(dst.as_fd(), interest(want_w, PollFlags::POLLOUT)),
                    PollFd::new(s.stream.as_fd(), PollFlags::POLLIN),
                    PollFd::new(
                        self.client.as_fd(),
                        interest(client_room, PollFlags::POLLIN),
                    ),
                ];
                if !wait(&mut fds, timeout) {
                    None
                } else {
                    Some([
                        fds[0].revents(),
                        fds[1].revents(),
                        fds[2].revents(),
                        fds[3].revents(),
                    ])
                }
            };
            let Some([r_src, r_dst, r_srv, r_cli]) = flags else {
                self.log.wrn(&format!(
                    "transfer idle for {} seconds, aborted",
                    timeout.as_secs()
                ));
                note = Some("idle timeout".to_string());
                break;
            };
            self.pump.wakeups += 1;
            // The same for a sink we have nothing for: an error or hang-up
            // there would wake us in a loop while we wait for the source.
            // It cannot take the rest of the file, so the transfer ends.
            if !want_w
                && r_dst.is_some_and(|f| f.intersects(PollFlags::POLLERR | PollFlags::POLLHUP))
            {
                note = Some("sink closed".to_string());
                break;
            }
            if (want_r && ready(r_src)) || (want_w && writable(r_dst)) {
                match self.pump.step(&mut src, &mut dst) {
                    Ok(()) => {}
                    Err(data::Broken::Source(e)) => note = Some(format!("source error: {e}")),
                    Err(data::Broken::Sink(e)) => {
                        note = Some(format!("sink error: {e}"));
                        break;
                    }
                }
            }
            if ready(r_srv) {
                self.read_server()?;
            }
            if client_room && ready(r_cli) {
                // A client that closed its side after QUIT (or just after
                // the transfer command) still gets the data and the replies;
                // serve() ends the session once the queue is answered.
                self.read_client()?;
                if self.client_lines_hold_abort() {
                    let cut = !self.pump.finished();
                    drop(src);
                    drop(dst);
                    return self
                        .abort_transfer(cut)
                        .map(|_| Some("aborted by client".to_string()));
                }
            }
        }
        drop(src);
        data::finish(dst);
        let mib = self.pump.bytes as f64 / f64::from(1u32 << 20);
        self.log.dbg(&format!(
            "transfer: {} bytes by {}, {} wakeups ({:.2} per MiB)",
            self.pump.bytes,
            self.pump.method(),
            self.pump.wakeups,
            self.pump.wakeups as f64 / mib.max(1.0 / 1024.0),
        ));
        Ok(note)
    }

    /// Move the client's complete lines to the queue (while it has room)
    /// up to an ABOR, which is taken out: true if there was one.
    fn client_lines_hold_abort(&mut self) -> bool {
        while self.queued.len() < limits::MAX_QUEUED_COMMANDS {
            let Some(line) = self.client_in.next_line() else {
                break;
            };
            if is_abort(&line, self.settings.valid_commands.as_ref()) {
                return true;
            }
            self.queued.push_back(line);
        }
        false
    }

    /// `426` for a transfer ftpgate cut short on the client's side.
    fn reply_transfer_cut(&mut self) -> Step {
        self.reply(
            reply::TRANSFER_ABORTED,
            "Connection closed; transfer aborted.",
        )
    }

    /// ABOR during a transfer: data connections are closed already; tell the
    /// server and relay its replies so the client sees what RFC 959 §4.1.3
    /// promises: one final reply for the transfer command and one for ABOR,
    /// 426 then 226 (transfer cut) or 226 then 225/226 (the transfer had
    /// completed).
    ///
    /// Closing the data connections races with the server: an upload cut
    /// short looks complete to it, so it may send 226 for the transfer and
    /// then 225/226 for the ABOR; a download may have finished just before.
    /// Both replies go to the client, which sent two commands and counts two
    /// answers (tnftp, lftp); a server that gave fewer is made up for. A
    /// NOOP after the ABOR marks the end of the replies that belong to the
    /// transfer and the ABOR, so none is left over to answer a later command
    /// (its 200 is not relayed; a server that answers ABOR itself with 200
    /// ends the collection early).
    ///
    /// `cut`: ftpgate closed the data connections before every byte had
    /// gone through. The server may still call the transfer complete (it
    /// had sent or received everything it knew of); the client then gets
    /// 426 and the server's answer to the ABOR (or 226), never a 226
    /// claiming a complete transfer it did not get.
    fn abort_transfer(&mut self, cut: bool) -> Step {
        self.log.inf("command: ABOR (during transfer)");
        self.abort_answered = true;
        self.send_server(b"ABOR")?;
        self.send_server(b"NOOP")?;
        let mut finals: Vec<Reply> = Vec::new();
        loop {
            let r = self.final_reply(false)?;
            if r.code == reply::COMMAND_OK || finals.len() >= 3 {
                break;
            }
            finals.push(r);
        }
        let mut sent = 0;
        if cut && finals.first().is_none_or(Reply::is_positive) {
            self.log
                .dbg("ABOR: transfer cut short by the proxy, 426 to the client");
            self.reply_transfer_cut()?;
            sent = 1;
            // What answers the ABOR is the server's last positive reply.
            finals = finals
                .pop()
                .filter(Reply::is_positive)
                .into_iter()
                .collect();
        }
        for r in &finals {
            self.send_client(&r.to_wire())?;
        }
        for _ in sent + finals.len()..2 {
            self.reply(reply::TRANSFER_COMPLETE, "ABOR command successful.")?;
        }
        Ok(())
    }

    // ----- the end -------------------------------------------------------------

    fn finish(&mut self, end: &End) {
        let secs = self.started.elapsed().as_secs_f64();
        let line = format!(
            "session end: {end}; {secs:.1} s, {} transfers, {} bytes down, {} bytes up",
            self.totals.transfers, self.totals.bytes_down, self.totals.bytes_up
        );
        if end.is_failure() {
            self.log.wrn(&line)
        } else {
            self.log.inf(&line)
        }
        if matches!(end, End::ServerClosed(_)) && !self.closing_sent {
            let _ = self.reply(
                reply::SERVICE_NOT_AVAILABLE,
                "Connection to the FTP server lost; closing control connection.",
            );
        }
        if let (Some(_), End::ClientClosed | End::Timeout) = (&self.server, end) {
            let _ = self.send_server(b"QUIT");
        }
    }
}

/// Is this client line an ABOR (after Telnet IP/Synch were stripped) that
/// ValidCommands allows? SECURITY: a refused one waits for its turn and
/// its refusal like any other command; it never reaches the server.
fn is_abort(line: &Line, filter: Option<&CommandFilter>) -> bool {
    match line {
        Line::Complete(l) => Command::parse(l).is_ok_and(|c| {
            c.verb.as_bytes() == b"ABOR"
                && filter.is_none_or(|f| f.check(c.verb.as_bytes(), c.arg) == Verdict::Allow)
        }),
        Line::TooLong => false,
    }
}

/// Resolve a host name or address literal to its socket addresses (never
/// empty), from the data cached before the jail.
fn resolve(resolver: &Resolver, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let ips = resolver
        .lookup(host)
        .map_err(|e| format!("cannot resolve '{host}': {e}"))?;
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip.to_canonical(), port))
        .collect())
}

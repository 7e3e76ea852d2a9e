//! Data connections and transfers: the client's PASV/EPSV/PORT/EPRT, the
//! server side as DestinationTransferMode says, the bounce and theft
//! checks on both sides (SPEC 5), reply order, and ABOR in each state.
#![forbid(unsafe_code)]

use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::{
    Action, AuditEvent, Direction, End, Listener, Peer, RefusalKind, Session, Side, State,
    TransferRecord, canonical, direction,
};
use crate::config::{Level, Protection};
use crate::ftp::addr;
use crate::ftp::command::Command;
use crate::ftp::escape;
use crate::ftp::reply::{self, Reply};
use crate::limits;
use crate::policy::data::{check_client_port, check_data_peer, check_server_passive};

/// One transfer command on its way.
pub(super) struct Transfer {
    /// The command line as the client sent it.
    line: Vec<u8>,
    verb: String,
    arg: Vec<u8>,
    direction: Direction,
    /// The mode towards the server, as the server sees it.
    server_side: Side,
    /// The client's mode (its PASV/EPSV: passive; PORT/EPRT: active).
    client_side: Side,
    /// The server's passive address, once known.
    pub(super) server_target: Option<SocketAddr>,
    /// The server's data connection is there.
    server_ready: bool,
    /// The connection to the client's PORT address is being made.
    client_connecting: bool,
    /// When the server's 1xx came.
    started: Instant,
    /// When the current wait gives up.
    pub(super) deadline: Instant,
    /// Why the transfer ended abnormally, for the log.
    pub(super) note: Option<String>,
    /// The client's ABOR stopped the pump.
    pub(super) abort_requested: bool,
    /// The lines that came with the transfer command have been looked at.
    running: bool,
    /// Not every byte went through (set when the pump ends).
    cut: bool,
    /// The server side is prepared ahead of the transfer command (no
    /// command yet): on success it is kept for it, a failure is silent.
    pub(super) prefetch: bool,
    bytes: u64,
}

impl Transfer {
    /// Which data connection the transfer waits for.
    pub(super) fn waiting_for(&self) -> Peer {
        if self.server_ready {
            Peer::Client
        } else {
            Peer::Server
        }
    }

    /// The data moves and the lines sent with the command were queued:
    /// what the client sends now is sent during the transfer.
    pub(super) fn running(&self) -> bool {
        self.running
    }

    pub(super) fn set_running(&mut self) {
        self.running = true;
    }

    /// The listener to accept on, if the wait is an accept.
    pub(super) fn accepting(&self) -> Option<Listener> {
        match self.waiting_for() {
            Peer::Server => Some(Listener::Server),
            Peer::Client if self.client_connecting => None,
            Peer::Client => Some(Listener::Client),
        }
    }
}

/// The server's side of a data connection prepared as soon as the client
/// chose its own (PASV/EPSV/PORT/EPRT), so that the transfer command costs
/// one round trip to the server instead of three (issue 15).
#[derive(Debug, Clone, Copy)]
pub(super) struct Prefetched {
    client_side: Side,
    server_side: Side,
    target: Option<SocketAddr>,
    /// The preparation failed: the transfer command gets this reply (as it
    /// would have, asking then), without asking the server again.
    failed: Option<(u16, &'static str)>,
}

/// ABOR during a transfer (or while waiting for its data connection):
/// collecting the server's answers.
pub(super) struct Abort {
    /// ftpgate closed the data connections before every byte went through.
    cut: bool,
    /// The server's final replies so far (NOOP's 200 ends the collection).
    finals: Vec<Reply>,
    pub(super) deadline: Instant,
    /// The transfer to log afterwards (None: it never started).
    transfer: Option<Box<Transfer>>,
}

/// A data connection could not be made after the server's 1xx: the
/// server's side is being stopped.
pub(super) struct SetupAbort {
    /// The server's reply to the transfer has come (its ABOR's may follow).
    first_seen: bool,
    pub(super) deadline: Instant,
    /// What the client is told at the end.
    reply: (u16, &'static str),
}

impl<'a> Session<'a> {
    // ----- the client's choice ----------------------------------------------

    pub(super) fn client_passive(&mut self, cmd: &Command<'_>) {
        self.drop_prefetch();
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
        // TranslatedAddress is the IPv4 address clients reach the proxy
        // at; an IPv6 control connection has no IPv4 path to the listener,
        // which is bound to the control connection's address.
        if !extended && self.local_addr.is_ipv6() {
            return self.reply(reply::CANT_OPEN_DATA, "PASV needs IPv4: use EPSV.");
        }
        self.close_pasv();
        self.actions.push_back(Action::Listen {
            listener: Listener::Client,
            ip: self.passive_ip(),
            ports: self.settings.passive_ports,
        });
        self.state = State::ExpectListening { extended };
    }

    pub(super) fn client_listening(&mut self, extended: bool, addr: SocketAddr) {
        let port = addr.port();
        self.pasv = Some(port);
        self.port = None;
        self.client_side = Some(Side::Passive);
        let advertised = match (self.translated, self.local_addr.ip()) {
            (Some(t), _) => t,
            (None, IpAddr::V4(v4)) => v4,
            (None, IpAddr::V6(_)) => std::net::Ipv4Addr::UNSPECIFIED,
        };
        if extended {
            self.send_client(addr::format_229(port));
        } else {
            self.send_client(addr::format_227(SocketAddrV4::new(advertised, port)));
        }
        self.prefetch(Side::Passive);
    }

    /// Prepare the server's side now (issue 15): while the client's
    /// transfer command is on its way, PASV/EPSV and the connect (or
    /// PORT/EPRT) happen, under the same checks as at transfer time. Not
    /// when a PROT change would have to come first (FTPS).
    fn prefetch(&mut self, client_side: Side) {
        let Some(server) = self.server else {
            return;
        };
        if !matches!(self.state, State::Ready) || self.prot_change().is_some() {
            return;
        }
        let t = self.new_transfer(None, client_side);
        // Passive towards the server only. Some servers (pyftpdlib) open
        // an active data connection at PORT time and, when it is dropped
        // unused (the client chose again), send a reply of their own
        // (425) that cannot be told from the answer to the next command.
        if t.server_side == Side::Active {
            return;
        }
        self.dbg(|| "preparing the server's data connection ahead of the transfer command".into());
        self.server_data_side(t, server);
    }

    /// A transfer for the client's command, or (None) the preparation of
    /// the server's side ahead of one; the server's mode as configured.
    fn new_transfer(
        &self,
        command: Option<(&[u8], &Command<'_>)>,
        client_side: Side,
    ) -> Box<Transfer> {
        let (line, verb, arg, way) = match command {
            Some((line, cmd)) => (
                line.to_vec(),
                cmd.verb.as_str().to_string(),
                cmd.arg.to_vec(),
                direction(cmd.verb.as_bytes()),
            ),
            None => (Vec::new(), String::new(), Vec::new(), Direction::Download),
        };
        Box::new(Transfer {
            line,
            verb,
            arg,
            direction: way,
            server_side: super::server_mode(self.settings.destination_transfer_mode, client_side),
            client_side,
            server_target: None,
            server_ready: false,
            client_connecting: false,
            started: self.now,
            deadline: self.now + self.timeout(),
            note: None,
            abort_requested: false,
            running: false,
            cut: false,
            bytes: 0,
            prefetch: command.is_none(),
        })
    }

    /// Forget a prepared server side (the client chose anew, or ABOR).
    pub(super) fn drop_prefetch(&mut self) {
        if self.prefetched.take().is_some() {
            self.actions.push_back(Action::DropServerData);
        }
    }

    /// The PROT the server needs before a transfer, if it differs from
    /// what it has (ServerTLSProtection).
    fn prot_change(&self) -> Option<bool> {
        if !self.tls.server {
            return None;
        }
        let private = match self.settings.server_tls_protection {
            Protection::Private => true,
            Protection::Clear => false,
            Protection::Client => self.tls.client_private,
        };
        (private != self.tls.server_private).then_some(private)
    }

    /// A data set-up step failed: the client hears of it only when it was
    /// waiting for a transfer; a prepared side fails silently (the
    /// transfer command then asks the server again).
    pub(super) fn setup_refused(&mut self, t: &Transfer, code: u16, text: &'static str) {
        if t.prefetch {
            self.dbg(|| format!("preparing the server's data connection failed: {text}"));
            self.actions.push_back(Action::DropServerData);
            self.prefetched = Some(Prefetched {
                client_side: t.client_side,
                server_side: t.server_side,
                target: None,
                failed: Some((code, text)),
            });
            return;
        }
        self.reply(code, text);
        self.log_transfer(t, code);
    }

    /// Close the passive listener, and the client's connection to it that
    /// the driver holds, if any.
    fn close_pasv(&mut self) {
        if self.pasv.take().is_some() {
            self.actions
                .push_back(Action::CloseListener(Listener::Client));
        }
        if self.pasv_held {
            self.close_data();
        }
    }

    /// Close the data connections the driver holds (a transfer's that did
    /// not start, or one the client made before its transfer command).
    fn close_data(&mut self) {
        self.pasv_held = false;
        self.actions.push_back(Action::CloseData);
    }

    /// RFC 2428 522: the reply lists the families the client may use, and
    /// ftpgate's data connections to the client use the control
    /// connection's family only.
    fn unsupported_family(&mut self) {
        let family = if self.local_addr.is_ipv4() { 1 } else { 2 };
        self.reply(
            reply::EXT_PROTO_NOT_SUPPORTED,
            &format!("Network protocol not supported, use ({family})."),
        )
    }

    pub(super) fn client_active(&mut self, cmd: &Command<'_>) {
        self.drop_prefetch();
        if self.epsv_all {
            return self.reply(reply::BAD_SEQUENCE, "Only EPSV is allowed after EPSV ALL.");
        }
        let verb = cmd.verb.as_str();
        let target = match super::active_target(cmd) {
            Ok(a) => a,
            Err(addr::AddrError::UnsupportedFamily) => return self.unsupported_family(),
            Err(e) => {
                return self.reply(reply::ARG_SYNTAX_ERROR, &format!("{verb}: {e}."));
            }
        };
        // RFC 2428 §2: an address family the connection cannot carry is 522,
        // whatever the address; checked before SameAddress so the client
        // learns to switch families rather than being told it lied.
        if target.is_ipv4() != self.local_addr.is_ipv4() {
            return self.unsupported_family();
        }
        // SECURITY: bounce protection: PORT/EPRT names the client's own
        // address and an unprivileged port (SameAddress).
        if let Err(why) = check_client_port(
            target,
            self.client_addr.ip(),
            self.settings.same_address,
            &self.data_host(),
        ) {
            let rule = self.rule_text(Some("SameAddress"));
            self.log(
                Level::Wrn,
                format!("{verb} {target} refused: {why} ({rule})"),
            );
            let text = format!("{verb} refused: {why}.");
            self.audit_refusal(
                RefusalKind::Data,
                format!("{verb} {target}"),
                Some((reply::NOT_IMPLEMENTED_FOR_ARG, &text)),
                Some("SameAddress"),
            );
            return self.reply(reply::NOT_IMPLEMENTED_FOR_ARG, &text);
        }
        if self.cfg.port_resets_pasv {
            self.close_pasv();
        }
        self.port = Some(target);
        self.client_side = Some(Side::Active);
        self.reply(reply::COMMAND_OK, &format!("{verb} command successful."));
        self.prefetch(Side::Active);
    }

    // ----- the transfer command ---------------------------------------------

    pub(super) fn transfer(&mut self, line: &[u8], cmd: &Command<'_>) {
        // A listener closed by FailResetsPasv or a used PORT address means
        // the client must choose again before the server is asked anything.
        let usable = |side: &Side| match side {
            Side::Passive => self.pasv.is_some(),
            Side::Active => self.port.is_some(),
        };
        let Some(client_side) = self.client_side.filter(usable) else {
            return self.reply(reply::CANT_OPEN_DATA, "Use PORT or PASV first.");
        };
        let Some(server) = self.server else {
            return self.end(End::ServerClosed("not connected".into()));
        };
        let mut t = self.new_transfer(Some((line, cmd)), client_side);
        let side = t.server_side;
        // ServerTLSProtection: the server's data connections as configured
        // (or as the client's); PROT only when the level changes.
        if let Some(private) = self.prot_change() {
            self.drop_prefetch();
            self.send_server(if private { b"PROT P" } else { b"PROT C" });
            t.deadline = self.now + self.timeout();
            self.state = State::ExpectServerProt(t, private);
            return;
        }
        // The server's side prepared ahead (issue 15), if it fits.
        if let Some(p) = self.prefetched.take() {
            if p.client_side == client_side && p.server_side == side {
                if let Some((code, text)) = p.failed {
                    return self.reply(code, text);
                }
                t.server_target = p.target;
                if side == Side::Passive {
                    // The server may have closed an idle data connection.
                    self.actions.push_back(Action::CheckServerData);
                    self.state = State::ExpectServerDataCheck(t);
                    return;
                }
                return self.send_transfer_command(t);
            }
            self.actions.push_back(Action::DropServerData);
        }
        self.server_data_side(t, server);
    }

    /// Whether the prepared connection to the server's data port is still
    /// open: use it, or ask the server again.
    pub(super) fn server_data_checked(&mut self, t: Box<Transfer>, alive: bool) {
        if alive {
            return self.send_transfer_command(t);
        }
        self.dbg(|| "the prepared server data connection was closed; asking again".into());
        let Some(server) = self.server else {
            return self.end(End::ServerClosed("not connected".into()));
        };
        self.server_data_side(t, server);
    }

    /// The server's answer to PROT.
    pub(super) fn server_prot_reply(&mut self, t: Box<Transfer>, private: bool, r: Reply) {
        if r.is_preliminary() {
            self.state = State::ExpectServerProt(t, private);
            return;
        }
        if !r.is_positive() {
            self.log(
                Level::Wrn,
                format!("server refused PROT: {}", escape(&r.to_wire())),
            );
            return self.reply(
                reply::CANT_OPEN_DATA,
                "Cannot open data connection: the server refused the protection level.",
            );
        }
        self.tls.server_private = private;
        let Some(server) = self.server else {
            return self.end(End::ServerClosed("not connected".into()));
        };
        self.server_data_side(t, server);
    }

    /// Ask the server for its side of the data connection.
    pub(super) fn server_data_side(&mut self, t: Box<Transfer>, server: super::Server) {
        match t.server_side {
            Side::Passive => {
                self.send_server(if server.addr.is_ipv6() {
                    b"EPSV"
                } else {
                    b"PASV"
                });
                self.state = State::ExpectServerPassive(t);
            }
            Side::Active => {
                self.actions.push_back(Action::Listen {
                    listener: Listener::Server,
                    ip: server.local.ip(),
                    ports: self.settings.destination_ports,
                });
                self.state = State::ExpectServerListening(t);
            }
        }
    }

    /// The server's answer to PASV/EPSV: check the address, connect.
    pub(super) fn server_passive_reply(&mut self, mut t: Box<Transfer>, r: Reply) {
        let Some(server) = self.server else {
            return self.end(End::ServerClosed("not connected".into()));
        };
        let server_ip = server.addr.ip();
        let v6 = server_ip.is_ipv6();
        let target = match (v6, r.code) {
            (false, reply::ENTERING_PASSIVE) => addr::parse_227(r.text()).map(SocketAddr::V4),
            (true, reply::ENTERING_EXT_PASSIVE) => {
                addr::parse_229(r.text()).map(|p| SocketAddr::new(server_ip, p))
            }
            _ => {
                self.log(
                    Level::Wrn,
                    format!("server refused passive mode: {}", escape(&r.to_wire())),
                );
                return self.setup_refused(
                    &t,
                    reply::CANT_OPEN_DATA,
                    "Cannot open data connection: the server refused passive mode.",
                );
            }
        };
        let target = match target {
            Ok(t) => canonical(t),
            Err(e) => {
                self.log(
                    Level::Wrn,
                    format!(
                        "bad passive reply from server ({e}): {}",
                        escape(&r.to_wire())
                    ),
                );
                return self.setup_refused(
                    &t,
                    reply::CANT_OPEN_DATA,
                    "Cannot open data connection.",
                );
            }
        };
        // SECURITY: the server's 227/229 must name the server itself and
        // an unprivileged port: the proxy is not a bounce for the server.
        if let Err(why) = check_server_passive(
            target,
            server_ip,
            self.settings.same_address,
            &self.data_host(),
        ) {
            let rule = self.rule_text(Some("SameAddress"));
            self.log(
                Level::Wrn,
                format!("server passive address {target} refused: {why} ({rule})"),
            );
            let sent =
                (!t.prefetch).then_some((reply::CANT_OPEN_DATA, "Cannot open data connection."));
            self.audit_refusal(
                RefusalKind::Data,
                format!("server passive address {target}"),
                sent,
                Some("SameAddress"),
            );
            return self.setup_refused(&t, reply::CANT_OPEN_DATA, "Cannot open data connection.");
        }
        t.server_target = Some(target);
        self.actions.push_back(Action::Connect {
            peer: Peer::Server,
            target,
            bind: server.local.ip(),
            ports: self.settings.destination_ports,
            timeout: Duration::from_secs(limits::CONNECT_TIMEOUT_SECS),
        });
        self.state = State::ExpectServerConnected(t);
    }

    /// The listener for the server's data connection is open: PORT/EPRT.
    pub(super) fn server_listening(&mut self, mut t: Box<Transfer>, mine: SocketAddr) {
        let line = match canonical(mine) {
            SocketAddr::V4(v4) => format!("PORT {}", addr::format_port(v4)),
            v6 => format!("EPRT {}", addr::format_eprt(v6)),
        };
        self.send_server(line.as_bytes());
        t.deadline = self.now + self.timeout();
        self.state = State::ExpectServerPortReply(t);
    }

    pub(super) fn server_port_reply(&mut self, t: Box<Transfer>, r: Reply) {
        if !r.is_positive() {
            self.log(
                Level::Wrn,
                format!("server refused active mode: {}", escape(&r.to_wire())),
            );
            self.actions
                .push_back(Action::CloseListener(Listener::Server));
            return self.setup_refused(
                &t,
                reply::CANT_OPEN_DATA,
                "Cannot open data connection: the server refused active mode.",
            );
        }
        self.send_transfer_command(t);
    }

    /// The server's side is prepared: send the client's command.
    pub(super) fn send_transfer_command(&mut self, mut t: Box<Transfer>) {
        if t.prefetch {
            // Prepared: kept for the transfer command.
            self.prefetched = Some(Prefetched {
                client_side: t.client_side,
                server_side: t.server_side,
                target: t.server_target,
                failed: None,
            });
            self.state = State::Ready;
            return;
        }
        t.server_ready = t.server_side == Side::Passive;
        let line = t.line.clone();
        self.send_server(&line);
        t.deadline = self.now + self.timeout();
        self.state = State::ExpectTransferStart(t);
    }

    pub(super) fn transfer_start_reply(&mut self, mut t: Box<Transfer>, r: Reply) {
        if !r.is_preliminary() {
            // Close the listener before the client hears of the failure, so
            // that it never finds it still open.
            if self.cfg.fail_resets_pasv {
                self.close_pasv();
            }
            self.close_data();
            self.actions
                .push_back(Action::CloseListener(Listener::Server));
            self.send_client(r.to_wire());
            // SPEC 12: a transfer that failed before any data moved (550
            // no such file, 553 not allowed) is on the record too.
            return self.log_transfer(&t, r.code);
        }
        self.send_client(r.to_wire());
        t.started = self.now;
        if t.server_ready {
            return self.open_client_data(t);
        }
        t.deadline = self.now + self.timeout();
        self.state = State::ExpectData(t);
    }

    /// The client side of a transfer: accept on our passive listener or
    /// connect to the client's PORT address.
    fn open_client_data(&mut self, mut t: Box<Transfer>) {
        t.deadline = self.now + self.timeout();
        match (self.client_side, self.pasv, self.port) {
            (Some(Side::Passive), Some(_), _) if self.pasv_held => {
                // The client connected before its command: that connection
                // (judged when it came) is the transfer's; no second accept.
                self.pasv_held = false;
                self.close_pasv();
                self.client_data_ready(t);
            }
            (Some(Side::Passive), Some(_), _) => self.state = State::ExpectData(t),
            (Some(Side::Active), _, Some(target)) => {
                // The connection made now takes the client data slot: a
                // connection held from the passive listener is gone.
                self.pasv_held = false;
                t.client_connecting = true;
                self.actions.push_back(Action::Connect {
                    peer: Peer::Client,
                    target,
                    bind: self.active_ip(),
                    ports: self.settings.active_ports,
                    timeout: Duration::from_secs(limits::CONNECT_TIMEOUT_SECS),
                });
                self.state = State::ExpectData(t);
            }
            _ => self.data_failed(t),
        }
    }

    /// TranslatedAddress when it is another address of this host than the
    /// one the client's control connection came to (both IPv4): several
    /// proxy hosts share that service address behind a load balancer,
    /// which may send a connection from outside to it to another host
    /// (README "Several proxy hosts behind a load balancer"). None for the
    /// usual TranslatedAddress, the address of a NAT in front.
    fn host_data_address(&self) -> Option<std::net::Ipv4Addr> {
        let t = self.translated?;
        (self.local_addr.is_ipv4()
            && self.local_addr.ip() != IpAddr::V4(t)
            && self.own_addresses.contains(&IpAddr::V4(t)))
        .then_some(t)
    }

    /// Where the client's passive listener is bound: the control
    /// connection's address; on one of several proxy hosts every address
    /// (0.0.0.0), so that the client reaches it both at this host's own
    /// address (the one the 227 names) and at the shared service address
    /// (EPSV, clients that ignore the 227 address; this host only if the
    /// balancer keeps a client on one host).
    fn passive_ip(&self) -> IpAddr {
        match self.host_data_address() {
            Some(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            None => self.local_addr.ip(),
        }
    }

    /// Where active data connections to the client come from: the control
    /// connection's address; on one of several proxy hosts this host's own
    /// (the client's answers to the shared address could reach another).
    fn active_ip(&self) -> IpAddr {
        self.host_data_address()
            .map_or(self.local_addr.ip(), IpAddr::V4)
    }

    /// The proxy host's own addresses, which a third party of a data
    /// connection (SameAddress no) may not be: its interfaces (when read)
    /// and the addresses it is reached on by the client and the server.
    fn data_host(&self) -> Vec<IpAddr> {
        let mut host = self.own_addresses.clone();
        host.push(self.local_addr.ip());
        if let Some(server) = self.server {
            host.push(server.local.ip());
        }
        host
    }

    /// SECURITY: theft protection: a data connection comes from the peer's
    /// own address (SameAddress); others are closed (DropAccepted) and
    /// logged. True when `from` was refused.
    fn refuse_thief(&mut self, listener: Listener, from: SocketAddr, expected: IpAddr) -> bool {
        let what = match listener {
            Listener::Server => "server",
            Listener::Client => "client",
        };
        let Err(why) = check_data_peer(
            from.ip(),
            expected,
            self.settings.same_address,
            &self.data_host(),
        ) else {
            return false;
        };
        let rule = self.rule_text(Some("SameAddress"));
        self.log(
            Level::Wrn,
            format!("{what} data connection from {from} refused: {why} ({rule})"),
        );
        self.actions.push_back(Action::DropAccepted(listener));
        self.audit_refusal(
            RefusalKind::Data,
            format!("{what} data connection from {from}"),
            None,
            Some("SameAddress"),
        );
        true
    }

    /// A connection on the passive listener before the transfer command
    /// (or while another wait is on): a thief's is closed at once, so that
    /// such connections cannot fill the listener's backlog and lock the
    /// client out; the client's own is held for its transfer command.
    pub(super) fn accepted_early(&mut self, from: SocketAddr) {
        if self.pasv.is_none() || self.pasv_held {
            // Not asked for (a driver bug): never keep it.
            self.actions
                .push_back(Action::DropAccepted(Listener::Client));
            return;
        }
        if self.refuse_thief(Listener::Client, from, self.client_addr.ip()) {
            return;
        }
        self.dbg(|| format!("client data connection from {from} held for the transfer command"));
        self.actions
            .push_back(Action::KeepAccepted(Listener::Client));
        self.pasv_held = true;
    }

    /// accept(2) failed on the passive listener outside a transfer: it is
    /// closed (watching it again would fail the same way, at once); the
    /// client's transfer command then gets 425 and it asks again.
    pub(super) fn accept_early_failed(&mut self, error: &str) {
        self.log(
            Level::Err,
            format!("accept on the passive listener: {error}; listener closed"),
        );
        self.close_pasv();
    }

    /// A connection on a watched listener.
    pub(super) fn accepted(&mut self, mut t: Box<Transfer>, listener: Listener, from: SocketAddr) {
        let expected = match listener {
            Listener::Server => self.server.map(|s| s.addr.ip()),
            Listener::Client => Some(self.client_addr.ip()),
        };
        let Some(expected) = expected else {
            return self.end(End::ServerClosed("not connected".into()));
        };
        // SECURITY: theft protection; the wait goes on.
        if self.refuse_thief(listener, from, expected) {
            self.state = State::ExpectData(t);
            return;
        }
        self.actions.push_back(Action::KeepAccepted(listener));
        match listener {
            Listener::Server => {
                self.actions
                    .push_back(Action::CloseListener(Listener::Server));
                t.server_ready = true;
                self.open_client_data(t);
            }
            Listener::Client => {
                self.close_pasv();
                self.client_data_ready(t);
            }
        }
    }

    /// Both data connections are there: start the pump.
    pub(super) fn client_data_ready(&mut self, t: Box<Transfer>) {
        self.client_side = if self.pasv.is_some() {
            Some(Side::Passive)
        } else {
            None
        };
        self.port = None;
        let rate = match t.direction {
            Direction::Download => self.settings.max_download_rate,
            Direction::Upload => self.settings.max_upload_rate,
        };
        let client_tls = self.tls.client_private;
        self.actions.push_back(Action::StartPump {
            direction: t.direction,
            client_tls,
            server_tls: self.tls.server && self.tls.server_private,
            // SECURITY: ClientTLSRequireReuse: a data connection with a TLS
            // session of its own may come from someone else.
            client_reuse: client_tls && self.cfg.client_tls_require_reuse,
            rate,
        });
        self.last_io = self.now;
        self.state = State::Transferring(t);
    }

    /// After a failed wait for the client's passive connection the listener
    /// stays, unless FailResetsPasv.
    fn client_wait_over(&mut self, t: &Transfer) {
        let waited_for_client = t.server_ready && !t.client_connecting;
        if waited_for_client && self.cfg.fail_resets_pasv {
            self.close_pasv();
        }
        self.close_data();
        self.actions
            .push_back(Action::CloseListener(Listener::Server));
    }

    /// A data connection could not be made after the server's 1xx: stop the
    /// server's side and tell the client.
    pub(super) fn data_failed(&mut self, t: Box<Transfer>) {
        self.data_failed_with(t, reply::CANT_OPEN_DATA, "Cannot open data connection.");
    }

    fn data_failed_with(&mut self, t: Box<Transfer>, code: u16, text: &'static str) {
        self.client_wait_over(&t);
        self.log(
            Level::Wrn,
            "data connection could not be established".into(),
        );
        self.log_transfer(&t, code);
        if self.take_final().is_some() {
            return self.reply(code, text);
        }
        self.send_server(b"ABOR");
        self.state = State::ExpectSetupAbort(Box::new(SetupAbort {
            first_seen: false,
            deadline: self.now + self.after_cut(),
            reply: (code, text),
        }));
    }

    /// A data connection's TLS failed before the transfer could start.
    pub(super) fn data_tls_failed(
        &mut self,
        t: Box<Transfer>,
        peer: Peer,
        why: &str,
        not_resumed: bool,
    ) {
        let what = match peer {
            Peer::Client => "client",
            Peer::Server => "server",
        };
        if not_resumed {
            // SECURITY: ClientTLSRequireReuse: a data connection that does
            // not resume the control session may come from someone else.
            self.log(
                Level::Wrn,
                format!("client data connection refused: TLS session not resumed ({why})"),
            );
            self.audit_refusal(
                RefusalKind::Data,
                "client data connection: TLS session not resumed".into(),
                Some((
                    reply::CANT_OPEN_DATA,
                    "Cannot open data connection: TLS session reuse required.",
                )),
                Some("ClientTLSRequireReuse"),
            );
            return self.data_failed_with(
                t,
                reply::CANT_OPEN_DATA,
                "Cannot open data connection: TLS session reuse required.",
            );
        }
        self.log(
            Level::Wrn,
            format!("TLS on the {what} data connection failed: {why}"),
        );
        self.data_failed(t);
    }

    /// How long to wait for a reply once the proxy has cut a transfer.
    fn after_cut(&self) -> Duration {
        Duration::from_secs(limits::REPLY_AFTER_CUT_SECS).min(self.timeout())
    }

    /// The transfer's reply (426/425/226) and then ABOR's own reply.
    pub(super) fn setup_abort_reply(&mut self, mut a: Box<SetupAbort>, r: Reply) {
        if !a.first_seen && !r.is_positive() {
            a.first_seen = true;
            a.deadline = self.now + self.after_cut();
            self.state = State::ExpectSetupAbort(a);
            return;
        }
        self.setup_abort_done(*a);
    }

    pub(super) fn setup_abort_done(&mut self, a: SetupAbort) {
        self.state = State::Ready;
        let (code, text) = a.reply;
        self.reply(code, text);
    }

    /// A final reply the server already sent, if any; the 1xx before it go
    /// to the client (e.g. 110 restart markers that arrived meanwhile).
    fn take_final(&mut self) -> Option<Reply> {
        let i = self.replies.iter().position(|r| !r.is_preliminary())?;
        let before: Vec<Reply> = self.replies.drain(..i).collect();
        for b in before {
            self.send_client(b.to_wire());
        }
        self.replies.pop_front()
    }

    /// The client's ABOR while ftpgate waited for its data connection: two
    /// replies, as for an ABOR during the transfer (426, 226).
    pub(super) fn aborted_before_data(&mut self, t: Box<Transfer>) {
        self.client_wait_over(&t);
        self.abort_transfer(true, Some(t));
    }

    // ----- the transfer's end -----------------------------------------------

    pub(super) fn transfer_ended(
        &mut self,
        mut t: Box<Transfer>,
        bytes: u64,
        finished: bool,
        note: Option<String>,
    ) {
        t.bytes = bytes;
        // The source did not end, or what came from it was not all
        // delivered (idle timeout, a sink that broke or went away).
        t.cut = !finished;
        if t.note.is_none() {
            t.note = note;
        }
        if t.abort_requested {
            let cut = t.cut;
            return self.abort_transfer(cut, Some(t));
        }
        if let Some(r) = self.take_final() {
            return self.transfer_final_reply(t, r);
        }
        t.deadline = self.now
            + if t.cut {
                self.after_cut()
            } else {
                self.timeout()
            };
        self.state = State::ExpectTransferReply(t);
    }

    /// The server's reply after the data: relayed, unless the proxy cut
    /// the transfer and the server calls it complete.
    pub(super) fn transfer_final_reply(&mut self, t: Box<Transfer>, r: Reply) {
        if r.is_preliminary() {
            self.send_client(r.to_wire());
            self.state = State::ExpectTransferReply(t);
            return;
        }
        let code = if t.cut && r.is_positive() {
            // The server may well have sent or stored everything; the
            // client's side of the transfer is incomplete all the same,
            // and a 226 would say otherwise.
            self.log(
                Level::Wrn,
                format!(
                    "transfer cut short at the proxy, server said: {}",
                    escape(&r.to_wire())
                ),
            );
            self.reply_transfer_cut();
            reply::TRANSFER_ABORTED
        } else {
            self.send_client(r.to_wire());
            r.code
        };
        self.state = State::Ready;
        self.log_transfer(&t, code);
    }

    /// `426` for a transfer ftpgate cut short on the client's side.
    fn reply_transfer_cut(&mut self) {
        self.reply(
            reply::TRANSFER_ABORTED,
            "Connection closed; transfer aborted.",
        )
    }

    /// SPEC 8: one line per transfer, bytes each way.
    fn log_transfer(&mut self, t: &Transfer, code: u16) {
        let elapsed = self.now.saturating_duration_since(t.started);
        // SPEC 12: the transfer's audit record.
        let result = if t.abort_requested || code == reply::TRANSFER_ABORTED {
            "aborted"
        } else if (200..300).contains(&code) && !t.cut {
            "complete"
        } else {
            "failed"
        };
        self.audit(AuditEvent::Transfer(TransferRecord {
            command: t.verb.clone(),
            path: t.arg.clone(),
            direction: t.direction,
            bytes: t.bytes,
            millis: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            result,
            client_mode: t.client_side,
            server_mode: t.server_side,
            binary: self.binary,
        }));
        let secs = elapsed.as_secs_f64();
        let bytes = t.bytes;
        match t.direction {
            Direction::Download => self.totals.bytes_down += bytes,
            Direction::Upload => self.totals.bytes_up += bytes,
        }
        self.totals.transfers += 1;
        let (way, down, up) = match t.direction {
            Direction::Download => ("server->client", bytes, 0),
            Direction::Upload => ("client->server", 0, bytes),
        };
        self.log(
            Level::Inf,
            format!(
                "transfer: {} {} {way}: {down} bytes down, {up} bytes up in {secs:.3} s ({:.1} KiB/s) reply {code}{}",
                t.verb,
                escape(&t.arg),
                bytes as f64 / 1024.0 / secs.max(0.001),
                t.note
                    .as_ref()
                    .map(|o| format!(" ({o})"))
                    .unwrap_or_default(),
            ),
        );
    }

    // ----- ABOR -----------------------------------------------------------------

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
    pub(super) fn abort_transfer(&mut self, cut: bool, transfer: Option<Box<Transfer>>) {
        self.log(Level::Inf, "command: ABOR (during transfer)".into());
        self.send_server(b"ABOR");
        self.send_server(b"NOOP");
        self.state = State::ExpectAbortReplies(Box::new(Abort {
            cut,
            finals: Vec::new(),
            deadline: self.now + self.timeout(),
            transfer,
        }));
    }

    pub(super) fn abort_reply(&mut self, mut a: Box<Abort>, r: Reply) {
        if r.is_preliminary() {
            self.state = State::ExpectAbortReplies(a);
            return;
        }
        if r.code != reply::COMMAND_OK && a.finals.len() < 3 {
            a.finals.push(r);
            a.deadline = self.now + self.timeout();
            self.state = State::ExpectAbortReplies(a);
            return;
        }
        let Abort {
            cut,
            mut finals,
            transfer,
            ..
        } = *a;
        let mut sent = 0;
        if cut && finals.first().is_none_or(Reply::is_positive) {
            self.dbg(|| "ABOR: transfer cut short by the proxy, 426 to the client".into());
            self.reply_transfer_cut();
            sent = 1;
            // What answers the ABOR is the server's last positive reply.
            finals = finals
                .pop()
                .filter(Reply::is_positive)
                .into_iter()
                .collect();
        }
        for r in &finals {
            self.send_client(r.to_wire());
        }
        for _ in sent + finals.len()..2 {
            self.reply(reply::TRANSFER_COMPLETE, "ABOR command successful.");
        }
        self.state = State::Ready;
        if let Some(t) = transfer {
            self.log_transfer(&t, reply::TRANSFER_ABORTED);
        }
    }
}

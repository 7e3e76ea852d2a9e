//! The driver of one session: owns the sockets, the buffers and the data
//! pump, runs the one `poll(2)` loop, performs the engine's actions
//! ([`crate::session`]) and feeds back what happened as events.
//!
//! It decides nothing about FTP: every reply, every check and every
//! timeout is the engine's. Blocking control sockets (with write
//! time-outs), non-blocking data sockets, one thread, no busy-waiting.
//! Connects, listens, DNS and LDAP look-ups are blocking and bounded; their
//! results go back to the engine at once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::config::{Config, PortRange};
use crate::data::{self, Pump, TlsPump};
use crate::ldap;
use crate::limits;
use crate::log::{Log, Trail};
use crate::session::{self, Action, Direction, Event, Listener, Params, Peer, Session};
use crate::sys::jail::Jailed;
use crate::sys::net::{self, Ports, canonical};
use crate::sys::resolve::Resolver;
use crate::tls::{Channel, Tls};

pub use crate::session::End;

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
    /// Every address of the proxy's host
    /// ([`crate::sys::transparent::own_addresses`]).
    pub own_addresses: Vec<IpAddr>,
    /// A server connection begun by [`connect_to`], if any.
    pub early: Option<(SocketAddr, TcpStream)>,
    /// The TLS configurations, read before the jail.
    pub tls: Tls,
    /// AuditLog and XferLog, opened before the jail.
    pub trail: Trail,
}

/// The two data connections of a running transfer: source, sink.
enum Transfer {
    /// Both plain: spliced.
    Splice(TcpStream, TcpStream),
    /// TLS on one side or both.
    Tls(Channel, Channel),
}

/// The sockets of one session.
struct Driver<'a> {
    cfg: &'a Config,
    resolver: &'a Resolver,
    log: &'a mut Log,
    trail: Trail,
    tls: Tls,
    client: Channel,
    server: Option<Channel>,
    /// The server's TLS name and whether to verify it, for its data
    /// connections (set when the control connection turns to TLS).
    server_tls: Option<(String, bool)>,
    early: Option<(SocketAddr, TcpStream)>,
    /// The passive listener offered to the client, and the one the server
    /// connects to.
    client_listener: Option<TcpListener>,
    server_listener: Option<TcpListener>,
    /// A connection just accepted, waiting for the engine's verdict.
    accepted: Option<TcpStream>,
    client_data: Option<TcpStream>,
    server_data: Option<TcpStream>,
    /// source and sink of the running transfer
    transfer: Option<Transfer>,
    pump: Pump,
    tls_pump: TlsPump,
    /// finished TLS sinks, read until their peer closes (or a deadline)
    lingering: Vec<(Channel, Instant)>,
    /// the transfer's end found by the last poll, reported next
    pump_note: Option<String>,
    /// the running transfer's source broke (a reset, TLS without
    /// close_notify): its sink is reset, the transfer is not complete
    source_broke: bool,
}

/// TLS on a transfer's data connections, as the engine asks for it.
#[derive(Debug, Clone, Copy)]
struct DataTls {
    client: bool,
    server: bool,
    /// The client's must resume the control connection's TLS session.
    client_reuse: bool,
}

/// Run one session to its end. Requires proof that the jail was entered.
pub fn run(jailed: &Jailed, start: Start<'_>, log: &mut Log) -> End {
    let cfg = start.cfg;
    let params = Params {
        cfg,
        client_addr: start.client_addr,
        local_addr: start.local_addr,
        translated: start.translated,
        greeting: start.greeting,
        original_dst: start.original_dst,
        proxy_self: start.proxy_self,
        own_addresses: start.own_addresses,
        early: start.early.as_ref().map(|(a, _)| *a),
        log_level: log.level(),
        client_tls: cfg.client_tls_implicit,
    };
    let mut engine = Session::new(params, Instant::now());
    let mut d = Driver {
        cfg,
        resolver: jailed.resolver(),
        log,
        trail: start.trail,
        tls: start.tls,
        client: Channel::plain(start.client),
        server: None,
        server_tls: None,
        early: start.early,
        client_listener: None,
        server_listener: None,
        accepted: None,
        client_data: None,
        server_data: None,
        transfer: None,
        pump: Pump::new(limits::DATA_BUFFER, cfg.max_recv_buf_size),
        tls_pump: TlsPump::new(0, None),
        lingering: Vec::new(),
        pump_note: None,
        source_broke: false,
    };
    if cfg.client_tls_implicit {
        // ClientTLSImplicit: TLS from the first byte, before the greeting.
        match d.client_handshake() {
            Ok((version, suite)) => d.log.inf(&format!("TLS with client: {version}, {suite}")),
            Err(e) => {
                let why = format!("TLS handshake with client failed: {e}");
                d.log.wrn(&why);
                d.log
                    .wrn(&format!("session end: client connection error: {why}"));
                return End::ClientError(why);
            }
        }
    }
    loop {
        while let Some(action) = engine.poll_action() {
            if let Some(end) = d.perform(&mut engine, action) {
                return end;
            }
        }
        d.wait(&mut engine);
    }
}

impl Driver<'_> {
    /// Carry out one action; the results of blocking ones go straight back.
    fn perform(&mut self, e: &mut Session<'_>, action: Action) -> Option<End> {
        match action {
            Action::SendClient(bytes) => {
                if let Err(err) = self.client.write_all(&bytes) {
                    e.handle(Instant::now(), Event::ClientError(err.to_string()));
                }
            }
            Action::SendServer(line) => {
                let sent = match self.server.as_mut() {
                    Some(s) => s.write_all(&line).map_err(|err| err.to_string()),
                    None => Err("not connected".to_string()),
                };
                if let Err(why) = sent {
                    e.handle(Instant::now(), Event::ServerError(why));
                }
            }
            Action::Log(level, msg) => self.log.write(level, &msg),
            Action::Audit(record) => self.trail.record(&record),
            Action::ConnectEarly => {
                self.early = early_destination(
                    self.cfg,
                    self.resolver,
                    e.original_dst(),
                    (e.proxy_self(), e.own_addresses()),
                )
                .and_then(|dest| connect_to(self.cfg, dest));
                let dest = self.early.as_ref().map(|(a, _)| *a);
                e.handle(Instant::now(), Event::EarlyConnecting(dest));
            }
            Action::ConnectServer {
                dest,
                ports: range,
                early,
                timeout,
            } => {
                let early = self.early.take().filter(|_| early);
                self.server = None;
                let connected = match early {
                    Some((_, stream)) => net::finish_connect(stream, timeout),
                    None => net::connect(dest, None, self.ports(range), timeout),
                };
                let event = match connected.and_then(|s| self.adopt_server(s)) {
                    Ok(local) => Event::ServerConnected { local },
                    Err(err) => Event::ServerConnectFailed(err.to_string()),
                };
                e.handle(Instant::now(), event);
            }
            Action::CheckServer => {
                let open = self.server.as_ref().is_some_and(|s| {
                    let mut fds = [PollFd::new(s.sock.as_fd(), PollFlags::POLLIN)];
                    wait(&mut fds, Duration::ZERO)
                });
                if open {
                    self.read_server(e);
                }
                e.handle(Instant::now(), Event::ServerChecked);
            }
            Action::CloseServer => self.server = None,
            Action::Resolve { host, port } => {
                let r = resolve(self.resolver, &host, port);
                e.handle(Instant::now(), Event::Resolved(r));
            }
            Action::LookUp { user, password } => {
                let r = self
                    .directory()
                    .and_then(|(dir, addrs)| ldap::lookup(dir, &addrs, &user, password.as_deref()));
                e.handle(Instant::now(), Event::LookedUp(r));
            }
            Action::Bind { dn, password } => {
                let r = self
                    .directory()
                    .and_then(|(dir, addrs)| ldap::bind_as(dir, &addrs, &dn, &password))
                    .map(|r| r.map_err(|refused| refused.code));
                e.handle(Instant::now(), Event::Bound(r));
            }
            Action::Listen {
                listener,
                ip,
                ports: range,
            } => {
                let event = match net::listen(ip, self.ports(range)) {
                    Ok(l) => {
                        let _ = l.set_nonblocking(true);
                        let addr = l.local_addr().map(canonical);
                        *self.listener(listener) = Some(l);
                        match addr {
                            Ok(addr) => Event::Listening { listener, addr },
                            Err(err) => Event::ListenFailed {
                                listener,
                                error: err.to_string(),
                                in_use: false,
                            },
                        }
                    }
                    Err(err) => Event::ListenFailed {
                        listener,
                        in_use: err.kind() == std::io::ErrorKind::AddrInUse,
                        error: err.to_string(),
                    },
                };
                e.handle(Instant::now(), event);
            }
            Action::CloseListener(listener) => *self.listener(listener) = None,
            Action::Connect {
                peer,
                target,
                bind,
                ports: range,
                timeout,
            } => {
                let event = match net::connect(target, Some(bind), self.ports(range), timeout) {
                    Ok(s) => {
                        *self.data(peer) = Some(s);
                        Event::DataConnected(peer)
                    }
                    Err(err) => Event::DataConnectFailed {
                        peer,
                        error: err.to_string(),
                    },
                };
                e.handle(Instant::now(), event);
            }
            Action::KeepAccepted(listener) => {
                let peer = match listener {
                    Listener::Client => Peer::Client,
                    Listener::Server => Peer::Server,
                };
                *self.data(peer) = self.accepted.take();
            }
            Action::DropAccepted(_) => self.accepted = None,
            Action::StartTls { peer, name, verify } => {
                let event = match peer {
                    Peer::Client => match self.client_handshake() {
                        Ok((version, cipher)) => Event::TlsReady {
                            peer,
                            version,
                            cipher,
                        },
                        Err(e) => Event::TlsFailed {
                            peer,
                            why: e.to_string(),
                        },
                    },
                    Peer::Server => match self.server_handshake(&name, verify) {
                        Ok((version, cipher)) => {
                            self.server_tls = Some((name, verify));
                            Event::TlsReady {
                                peer,
                                version,
                                cipher,
                            }
                        }
                        Err(e) => Event::TlsFailed {
                            peer,
                            why: e.to_string(),
                        },
                    },
                };
                let ready = matches!(event, Event::TlsReady { .. });
                e.handle(Instant::now(), event);
                // What came with the handshake's last records is there
                // already: no poll would announce it.
                let early = match (ready, peer) {
                    (false, _) => Vec::new(),
                    (true, Peer::Client) => self.client.buffered(),
                    (true, Peer::Server) => self
                        .server
                        .as_mut()
                        .map(Channel::buffered)
                        .unwrap_or_default(),
                };
                if !early.is_empty() {
                    let event = match peer {
                        Peer::Client => Event::ClientBytes(&early),
                        Peer::Server => Event::ServerBytes(&early),
                    };
                    e.handle(Instant::now(), event);
                }
            }
            Action::StartPump {
                direction,
                client_tls,
                server_tls,
                client_reuse,
                rate,
            } => {
                let tls = DataTls {
                    client: client_tls,
                    server: server_tls,
                    client_reuse,
                };
                self.start_pump(e, direction, tls, rate);
                // Data that came with a TLS handshake is in TLS's buffer
                // already: move it now rather than wait for the socket.
                if matches!(self.transfer, Some(Transfer::Tls(..))) {
                    self.pump_wakeup(e, false, false, None, None);
                }
            }
            Action::StopPump { abort } => {
                let note = self.pump_note.take();
                self.stop_pump(e, abort, note);
            }
            Action::CloseData => {
                self.accepted = None;
                self.client_data = None;
                self.server_data = None;
            }
            Action::DropServerData => {
                self.server_data = None;
                self.server_listener = None;
            }
            Action::CheckServerData => {
                // Readable before the transfer command: the server closed
                // it (or broke the protocol); either way it is not usable.
                let alive = self.server_data.as_ref().is_some_and(|s| {
                    let mut fds = [PollFd::new(s.as_fd(), PollFlags::POLLIN)];
                    !wait(&mut fds, Duration::ZERO)
                });
                if !alive {
                    self.server_data = None;
                }
                e.handle(Instant::now(), Event::ServerDataChecked { alive });
            }
            Action::Close(end) => return Some(end),
        }
        None
    }

    fn ports(&self, range: Option<PortRange>) -> Option<Ports> {
        range.map(|r| Ports {
            min: r.min,
            max: r.max,
            random: self.cfg.sock_bind_rand,
        })
    }

    fn listener(&mut self, which: Listener) -> &mut Option<TcpListener> {
        match which {
            Listener::Client => &mut self.client_listener,
            Listener::Server => &mut self.server_listener,
        }
    }

    fn data(&mut self, peer: Peer) -> &mut Option<TcpStream> {
        match peer {
            Peer::Client => &mut self.client_data,
            Peer::Server => &mut self.server_data,
        }
    }

    /// Take `stream` as the server's control connection; its local address.
    fn adopt_server(&mut self, stream: TcpStream) -> std::io::Result<SocketAddr> {
        let _ = net::set_keepalive(&stream);
        let _ = net::set_nodelay(&stream);
        let _ = stream.set_write_timeout(Some(Duration::from_secs(self.cfg.global.timeout.max(1))));
        let local = stream.local_addr()?;
        self.server = Some(Channel::plain(stream));
        self.server_tls = None;
        Ok(local)
    }

    /// TLS on the client's control connection (the proxy is the server).
    fn client_handshake(&mut self) -> std::io::Result<(String, String)> {
        let conn = self.tls.accept(true)?;
        let deadline = handshake_deadline();
        self.client.handshake(conn, deadline)?;
        Ok(self.client.describe())
    }

    /// TLS on the server's control connection (the proxy is the client).
    fn server_handshake(&mut self, name: &str, verify: bool) -> std::io::Result<(String, String)> {
        let conn = self.tls.connect(name, verify)?;
        let deadline = handshake_deadline();
        let server = self
            .server
            .as_mut()
            .ok_or_else(|| std::io::Error::other("not connected"))?;
        server.handshake(conn, deadline)?;
        Ok(server.describe())
    }

    /// LDAPServer's settings and addresses.
    fn directory(
        &self,
    ) -> Result<(&crate::config::LdapSettings, Vec<SocketAddr>), ldap::LdapError> {
        let dir = self
            .cfg
            .ldap
            .as_ref()
            .ok_or_else(|| ldap::LdapError::Connect("no LDAPServer".into()))?;
        let addrs =
            resolve(self.resolver, &dir.host, dir.port).map_err(ldap::LdapError::Connect)?;
        Ok((dir, addrs))
    }

    // ----- the data pump -------------------------------------------------------

    /// Start the transfer: TLS handshakes on the data connections that
    /// are to be TLS (towards the client the proxy is the TLS server and,
    /// when the engine says so (ClientTLSRequireReuse), insists on a
    /// resumed session; towards
    /// the server it resumes the control connection's session), then the
    /// pump: splice when both are plain. `rate` paces the pump's reads
    /// from the source (see [`data::Bucket`] for why not kernel pacing).
    fn start_pump(
        &mut self,
        e: &mut Session<'_>,
        direction: Direction,
        tls: DataTls,
        rate: Option<u64>,
    ) {
        let DataTls {
            client: client_tls,
            server: server_tls,
            client_reuse,
        } = tls;
        let (Some(server), Some(client)) = (self.server_data.take(), self.client_data.take())
        else {
            return;
        };
        self.pump_note = None;
        self.source_broke = false;
        let way = match direction {
            Direction::Download => "download",
            Direction::Upload => "upload",
        };
        match rate {
            Some(r) => self.log.dbg(&format!("{way} limited to {r} bytes/s")),
            None => self.log.dbg(&format!("{way} not rate-limited")),
        }
        if !client_tls && !server_tls {
            let (src, dst) = match direction {
                Direction::Download => (server, client),
                Direction::Upload => (client, server),
            };
            let _ = src.set_nonblocking(true);
            let _ = dst.set_nonblocking(true);
            // Each splice into the sink ends wherever the pipe ran dry,
            // mostly in a part-filled segment that Nagle would hold back
            // until everything sent is acknowledged; the source already
            // chose the segments, so pass them on (BENCHMARKS.md, "Bulk
            // throughput": about 8% more on veth, no change on loopback).
            let _ = net::set_nodelay(&dst);
            self.pump.reset();
            self.pump.pace = data::Pace::new(rate, Instant::now());
            self.transfer = Some(Transfer::Splice(src, dst));
            return;
        }
        let server_name = match (&self.server_tls, server_tls) {
            (_, false) => None,
            (Some((name, verify)), true) => Some((name.as_str(), *verify)),
            (None, true) => {
                let event = Event::DataTlsFailed {
                    peer: Peer::Server,
                    why: "the server's control connection is not TLS".into(),
                    not_resumed: false,
                };
                return e.handle(Instant::now(), event);
            }
        };
        // Fresh tickets only on connections the client reads (downloads).
        let tickets = direction == Direction::Download;
        let secured = self.tls.secure_data(
            (Channel::plain(server), server_name),
            (Channel::plain(client), client_tls),
            (tickets, client_reuse),
            handshake_deadline,
        );
        let (server, client) = match secured {
            Ok(both) => both,
            Err(err) => {
                let event = Event::DataTlsFailed {
                    peer: if err.client {
                        Peer::Client
                    } else {
                        Peer::Server
                    },
                    why: err.why,
                    not_resumed: err.not_resumed,
                };
                return e.handle(Instant::now(), event);
            }
        };
        for (leg, on, ch) in [
            ("server", server_tls, &server),
            ("client", client_tls, &client),
        ] {
            if on {
                let resumed = ch.resumed();
                self.log
                    .dbg(&format!("{leg} data connection TLS: resumed {resumed}"));
            }
        }
        let (src, dst) = match direction {
            Direction::Download => (server, client),
            Direction::Upload => (client, server),
        };
        let _ = src.sock.set_nonblocking(true);
        let _ = dst.sock.set_nonblocking(true);
        self.tls_pump = TlsPump::new(limits::DATA_BUFFER, self.cfg.max_recv_buf_size);
        self.tls_pump.pace = data::Pace::new(rate, Instant::now());
        self.transfer = Some(Transfer::Tls(src, dst));
    }

    /// End the transfer: `abort` drops both connections, else the sink is
    /// told that no more data comes. Reports the end to the engine.
    fn stop_pump(&mut self, e: &mut Session<'_>, abort: bool, note: Option<String>) {
        let Some(transfer) = self.transfer.take() else {
            return;
        };
        // What the source sent was delivered, but the source broke: the
        // sink's peer must not see an orderly end either.
        let broke = self.source_broke;
        let (bytes, finished, method, wakeups) = match transfer {
            Transfer::Splice(src, dst) => {
                drop(src);
                if broke {
                    data::reset(&dst);
                } else if !abort {
                    data::finish(dst);
                }
                let p = &self.pump;
                (p.bytes, p.finished() && !broke, p.method(), p.wakeups)
            }
            Transfer::Tls(mut src, mut dst) => {
                let finished = self.tls_pump.finished(&dst) && !broke;
                if broke {
                    data::reset(&dst.sock);
                } else if !abort {
                    // Every TLS data connection ends with close_notify;
                    // the sink stays open, read, until its peer closes.
                    src.close_notify();
                    dst.close_notify();
                    let _ = dst.sock.shutdown(std::net::Shutdown::Write);
                    if self.lingering.len() >= limits::MAX_LINGERING {
                        self.lingering.remove(0);
                    }
                    let until = Instant::now() + Duration::from_secs(limits::TLS_LINGER_SECS);
                    self.lingering.push((dst, until));
                }
                let p = &self.tls_pump;
                (p.bytes, finished, "TLS", p.wakeups)
            }
        };
        let mib = bytes as f64 / f64::from(1u32 << 20);
        self.log.dbg(&format!(
            "transfer: {bytes} bytes by {method}, {wakeups} wakeups ({:.2} per MiB)",
            wakeups as f64 / mib.max(1.0 / 1024.0),
        ));
        e.handle(
            Instant::now(),
            Event::TransferEnded {
                bytes,
                finished,
                note,
            },
        );
    }

    // ----- waiting -------------------------------------------------------------

    /// One poll over what the engine wants watched (and the lingering TLS
    /// sinks); what happened goes to the engine as events.
    fn wait(&mut self, e: &mut Session<'_>) {
        let want = e.interest();
        let now = Instant::now();
        // A rate-limited source held back by its pace is not polled: the
        // poll's time-out is when the pace lets it be read again.
        let resume = if want.pump { self.pace(now) } else { None };
        let deadline = e
            .deadline()
            .into_iter()
            .chain(self.lingering.iter().map(|(_, until)| *until))
            .chain(resume)
            .min();
        let timeout = deadline
            .map(|d| d.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(limits::CONNECT_TIMEOUT_SECS));
        let (want_r, want_w) = (self.pump.wants_read(), self.pump.wants_write());
        let listener = want.accept.and_then(|l| match l {
            Listener::Client => self.client_listener.as_ref().map(|s| (l, s)),
            Listener::Server => self.server_listener.as_ref().map(|s| (l, s)),
        });
        let mut fds = Vec::with_capacity(6 + self.lingering.len());
        let client_slot = want.client.then(|| {
            fds.push(PollFd::new(self.client.sock.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let server_slot = match (&self.server, want.server) {
            (Some(s), true) => {
                fds.push(PollFd::new(s.sock.as_fd(), PollFlags::POLLIN));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let listen_slot = listener.map(|(which, l)| {
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
            (which, fds.len() - 1)
        });
        let pump_slots = match (&self.transfer, want.pump) {
            (Some(Transfer::Splice(src, dst)), true) => {
                // A source we do not read from is not polled at all: its
                // POLLHUP/POLLERR (reported even with no events asked)
                // would wake us in a loop while the sink is full. The
                // sink's descriptor stands in (its events are in the next slot).
                fds.push(PollFd::new(
                    if want_r { src.as_fd() } else { dst.as_fd() },
                    interest(want_r, PollFlags::POLLIN),
                ));
                fds.push(PollFd::new(
                    dst.as_fd(),
                    interest(want_w, PollFlags::POLLOUT),
                ));
                Some(fds.len() - 2)
            }
            (Some(Transfer::Tls(src, dst)), true) => {
                let (s, d) = self.tls_pump.flags(src, dst);
                // As above: a source with nothing to do is not polled.
                fds.push(PollFd::new(
                    if s.is_empty() {
                        dst.sock.as_fd()
                    } else {
                        src.sock.as_fd()
                    },
                    s,
                ));
                fds.push(PollFd::new(dst.sock.as_fd(), d));
                Some(fds.len() - 2)
            }
            _ => None,
        };
        let linger_base = fds.len();
        for (ch, _) in &self.lingering {
            fds.push(PollFd::new(ch.sock.as_fd(), PollFlags::POLLIN));
        }
        let woke = wait(&mut fds, timeout);
        let revents: Vec<Option<PollFlags>> = fds.iter().map(PollFd::revents).collect();
        drop(fds);
        let at = |slot: Option<usize>| slot.and_then(|i| revents.get(i).copied().flatten());
        self.linger(&revents[linger_base..], woke);
        if !woke {
            if resume.is_some_and(|at| Instant::now() >= at) {
                // The pace allows a read again. Step at once rather than
                // poll first: TLS may hold plaintext no poll announces.
                // An engine deadline due now comes at the next wait.
                let want_w = self.pump.wants_write();
                self.pump_wakeup(e, true, want_w, Some(PollFlags::POLLIN), None);
            } else {
                e.handle(Instant::now(), Event::Timer);
            }
            return;
        }
        if let Some(i) = pump_slots {
            self.pump_wakeup(e, want_r, want_w, at(Some(i)), at(Some(i + 1)));
        }
        if ready(at(server_slot)) {
            self.read_server(e);
        }
        if ready(at(client_slot)) {
            self.read_client(e);
        }
        if let Some((which, i)) = listen_slot
            && ready(at(Some(i)))
            && !e.is_ended()
        {
            self.accept(e, which);
        }
    }

    /// Bring the running transfer's pace up to `now`; when it holds the
    /// source back, the time it lets go.
    fn pace(&mut self, now: Instant) -> Option<Instant> {
        match self.transfer {
            Some(Transfer::Splice(..)) => {
                self.pump.pace.refill(now);
                self.pump.resume_at()
            }
            Some(Transfer::Tls(..)) => {
                self.tls_pump.pace.refill(now);
                self.tls_pump.resume_at()
            }
            None => None,
        }
    }

    /// Read and drop what lingering TLS sinks received; let go of those
    /// whose peer closed or whose time is up.
    fn linger(&mut self, revents: &[Option<PollFlags>], woke: bool) {
        let now = Instant::now();
        let mut i = 0;
        self.lingering.retain_mut(|(ch, until)| {
            let flags = revents.get(i).copied().flatten();
            i += 1;
            let done = woke && ready(flags) && data::absorb(ch).unwrap_or(true);
            !done && now < *until
        });
    }

    /// The pump's descriptors woke the poll: move what can move, and report
    /// the transfer's end when it comes.
    fn pump_wakeup(
        &mut self,
        e: &mut Session<'_>,
        want_r: bool,
        want_w: bool,
        r_src: Option<PollFlags>,
        r_dst: Option<PollFlags>,
    ) {
        let mut stop = false;
        self.pace(Instant::now());
        let done = match self.transfer.as_mut() {
            None => return,
            Some(Transfer::Splice(src, dst)) => {
                self.pump.wakeups += 1;
                // The same for a sink we have nothing for: an error or
                // hang-up there would wake us in a loop while we wait for
                // the source. It cannot take the rest of the file, so the
                // transfer ends.
                if !want_w
                    && r_dst.is_some_and(|f| f.intersects(PollFlags::POLLERR | PollFlags::POLLHUP))
                {
                    self.pump_note = Some("sink closed".to_string());
                    stop = true;
                } else if (want_r && ready(r_src)) || (want_w && writable(r_dst)) {
                    match self.pump.step(src, dst) {
                        Ok(()) => {}
                        Err(data::Broken::Source(err)) => {
                            self.pump_note = Some(format!("source error: {err}"));
                            self.source_broke = true;
                        }
                        Err(data::Broken::Sink(err)) => {
                            self.pump_note = Some(format!("sink error: {err}"));
                            stop = true;
                        }
                    }
                }
                self.pump.finished()
            }
            Some(Transfer::Tls(src, dst)) => {
                self.tls_pump.wakeups += 1;
                match self.tls_pump.step(src, dst) {
                    Ok(()) => {}
                    Err(data::Broken::Source(err)) => {
                        self.pump_note = Some(format!("source error: {err}"));
                        self.source_broke = true;
                    }
                    Err(data::Broken::Sink(err)) => {
                        self.pump_note = Some(format!("sink error: {err}"));
                        stop = true;
                    }
                }
                self.tls_pump.finished(dst)
            }
        };
        if stop || done {
            let note = self.pump_note.take();
            self.stop_pump(e, false, note);
        } else {
            e.handle(Instant::now(), Event::DataMoved);
        }
    }

    fn read_server(&mut self, e: &mut Session<'_>) {
        if let Some(s) = self.server.as_mut() {
            read_control(s, e, Peer::Server);
        }
    }

    fn read_client(&mut self, e: &mut Session<'_>) {
        read_control(&mut self.client, e, Peer::Client);
    }

    /// One connection from a watched listener, for the engine to judge.
    fn accept(&mut self, e: &mut Session<'_>, which: Listener) {
        let Some(l) = self.listener(which).as_ref() else {
            return;
        };
        let event = match l.accept() {
            Ok((stream, from)) => {
                let _ = stream.set_nonblocking(false);
                self.accepted = Some(stream);
                Event::Accepted {
                    listener: which,
                    from: canonical(from),
                }
            }
            Err(err) if would_wait(&err) => return,
            Err(err) => Event::AcceptFailed {
                listener: which,
                error: err.to_string(),
            },
        };
        e.handle(Instant::now(), event);
    }
}

/// Where a connection to the server begun before the client has said who
/// it is would go, so that the handshake and the server's greeting overlap
/// the proxy's own start-up and the client's first round trip. Only when
/// no login can change where the session goes: no magic user, no user
/// context with a destination of its own. None when that does not hold or
/// the destination cannot be found now: the login then connects and
/// reports as usual.
pub fn early_destination(
    cfg: &Config,
    resolver: &Resolver,
    original_dst: Option<SocketAddr>,
    (proxy_self, host): (&[SocketAddr], &[IpAddr]),
) -> Option<SocketAddr> {
    match session::early_target(cfg, original_dst, (proxy_self, host))? {
        session::EarlyTarget::Address(dest) => Some(dest),
        session::EarlyTarget::Name(name, port) => {
            resolve(resolver, &name, port).ok()?.first().copied()
        }
    }
}

/// Begin the early connection to `dest` (see [`early_destination`]); the
/// engine finishes it at USER.
pub fn connect_to(cfg: &Config, dest: SocketAddr) -> Option<(SocketAddr, TcpStream)> {
    let ports = cfg.global.destination_ports.map(|r| Ports {
        min: r.min,
        max: r.max,
        random: cfg.sock_bind_rand,
    });
    let stream = net::start_connect(dest, None, ports).ok()?;
    Some((dest, stream))
}

/// Read a control connection once (it is readable) and tell the engine.
fn read_control(ch: &mut Channel, e: &mut Session<'_>, peer: Peer) {
    let mut buf = [0u8; 4096];
    let now = Instant::now();
    let client = peer == Peer::Client;
    match ch.read_available(&mut buf) {
        Ok(Some(bytes)) if bytes.is_empty() => {}
        Ok(Some(bytes)) if client => e.handle(now, Event::ClientBytes(&bytes)),
        Ok(Some(bytes)) => e.handle(now, Event::ServerBytes(&bytes)),
        Ok(None) if client => e.handle(now, Event::ClientEof),
        Ok(None) => e.handle(now, Event::ServerEof),
        Err(err) if would_wait(&err) => {}
        Err(err) if client => e.handle(now, Event::ClientError(err.to_string())),
        Err(err) => e.handle(now, Event::ServerError(err.to_string())),
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

/// When a TLS handshake begun now must be done.
fn handshake_deadline() -> Instant {
    Instant::now() + Duration::from_secs(limits::TLS_HANDSHAKE_SECS)
}

fn would_wait(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

/// Milliseconds for poll(2), rounded up so that a wait never ends before
/// the engine's deadline (which would make it spin until then).
fn millis(d: Duration) -> PollTimeout {
    let ms = d.as_micros().div_ceil(1000);
    PollTimeout::try_from(i32::try_from(ms).unwrap_or(i32::MAX)).unwrap_or(PollTimeout::MAX)
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

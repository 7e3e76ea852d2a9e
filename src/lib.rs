//! ftpgate: an application-level FTP proxy for Linux firewalls.
//!
//! The library holds everything; `main.rs` only maps the outcome of [`run`]
//! to an exit status. [`serve_inetd`] follows the start-up order of SPEC §1
//! from top to bottom.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod data;
pub mod explain;
pub mod ftp;
pub mod ldap;
pub mod limits;
pub mod log;
pub mod policy;
pub mod relay;
pub mod session;
pub mod sys;
pub mod tls;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cli::{Action, Mode, Options};
use crate::config::subst::{self, Vars};
use crate::config::{Config, Level, LogDestination, ServerType};
use crate::ftp::reply;
use crate::log::Log;
use crate::sys::net;
use crate::sys::resolve::Resolver;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const BUILD_DATE: &str = env!("FTPGATE_BUILD_DATE");

/// What `main` should exit with.
pub type ExitStatus = i32;

/// Run the action the command line asks for.
pub fn run(opts: &Options) -> Result<ExitStatus> {
    match opts.action {
        Action::Version => {
            println!("ftpgate {VERSION} ({BUILD_DATE})");
            Ok(0)
        }
        Action::Help => {
            print!("{}", cli::USAGE);
            Ok(0)
        }
        Action::Check => Ok(check(&opts.config)),
        Action::Explain {
            ref client,
            ref user,
            ref commands,
        } => Ok(explain::run(&opts.config, client, user, commands)),
        Action::Run => {
            let mode = match opts.mode {
                Some(m) => m,
                // The file decides only when the command line does not; a
                // broken file in inetd mode still gets its 421 below.
                None => match Config::load(&opts.config) {
                    Ok(cfg) if cfg.server_type == ServerType::Standalone => Mode::Daemon,
                    _ => Mode::Inetd,
                },
            };
            match mode {
                Mode::Inetd => serve_inetd(opts),
                Mode::Daemon => match Config::load(&opts.config) {
                    Ok(cfg) => daemon::run(opts, cfg),
                    Err(errors) => {
                        for e in &errors {
                            eprintln!("ftpgate: {e}");
                        }
                        bail!(
                            "cannot start: configuration {} has errors",
                            opts.config.display()
                        )
                    }
                },
            }
        }
    }
}

/// `-c`: print the normalised configuration, or every error.
fn check(path: &Path) -> ExitStatus {
    match Config::load(path) {
        Ok(cfg) => {
            print!("{}", cfg.normalised());
            // What parses but would make every session on this host fail
            // at start-up: a warning, since the file may be meant for
            // another host (the exit status is about the file).
            match sys::jail::resolve(cfg.user.as_deref(), cfg.group.as_deref()) {
                Err(e) => eprintln!("ftpgate: warning: {}: User/Group: {e:#}", path.display()),
                Ok(id) if id.keeps_root() => eprintln!(
                    "ftpgate: warning: {}: {}",
                    path.display(),
                    sys::jail::ROOT_USER_WARNING
                ),
                Ok(_) => {}
            }
            let files = [
                (
                    "LogDestination",
                    match &cfg.log_destination {
                        LogDestination::File(log) => Some(log.as_path()),
                        _ => None,
                    },
                ),
                ("AuditLog", cfg.audit_log.as_deref()),
                ("XferLog", cfg.xfer_log.as_deref()),
            ];
            for (option, file) in files {
                if let Some(file) = file
                    && let Err(e) = log::check_file(file)
                {
                    eprintln!("ftpgate: warning: {}: {option}: {e}", path.display());
                }
            }
            if let Some(d) = cfg.ldap.as_ref()
                && ldap::binds_as_user(d)
                && !d.bind_pw.is_empty()
            {
                eprintln!(
                    "ftpgate: warning: {}: LDAPBindPW is not used: with UserAuthType ldap \
                     and %s in LDAPBindDN every user binds with the user's own password",
                    path.display()
                );
            }
            if let Some(root) = cfg.server_root.as_deref().filter(|r| !r.is_dir()) {
                eprintln!(
                    "ftpgate: warning: {}: ServerRoot {} is not a directory on this host",
                    path.display(),
                    root.display()
                );
            }
            0
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            if errors.is_empty() {
                eprintln!("{}: configuration could not be read", path.display());
            }
            1
        }
    }
}

/// Values for `%` substitutions, read now (before the jail).
pub(crate) fn vars() -> Vars {
    let (host, domain) = sys::host_and_domain();
    let now = sys::now();
    Vars {
        host,
        domain,
        date: now.date(),
        time: now.time(),
        version: VERSION.to_string(),
        build: BUILD_DATE.to_string(),
    }
}

/// Lines of a message file (WelcomeMessage, DenyMessage,
/// MaxClientsMessage), substituted; None when the file does not exist, and
/// None with a WRN line when it cannot be read or is not a regular file
/// (a FIFO would block: see [`sys::read_message_file`]).
pub(crate) fn message_lines(path: &Path, vars: &Vars, log: &mut Log) -> Option<Vec<String>> {
    let text = match sys::read_message_file(path, limits::MAX_MESSAGE_BYTES) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            log.wrn(&format!("message file {} skipped: {e}", path.display()));
            return None;
        }
    };
    let text = String::from_utf8_lossy(&text);
    Some(
        text.lines()
            .take(limits::MAX_MESSAGE_LINES)
            .map(|l| subst::expand(l, vars))
            .collect(),
    )
}

/// `code-line` for each line, then `code last`.
pub(crate) fn multiline(code: u16, lines: &[String], last: &str) -> Vec<u8> {
    let refs: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    if refs.is_empty() {
        reply::line(code, last.as_bytes())
    } else {
        reply::multi(code, &refs, last.as_bytes())
    }
}

/// Tell the client on stdout that the session cannot be served, and stop.
fn refuse_stdout(text: &str) {
    let mut out = std::io::stdout();
    let _ = out.write_all(&reply::line(reply::SERVICE_NOT_AVAILABLE, text.as_bytes()));
    let _ = out.flush();
}

/// TranslatedAddress: a name, an address, or a file whose first
/// non-comment line holds one. Resolved before the jail.
fn translated_address(value: &str, names: &Resolver) -> Result<Ipv4Addr> {
    let text;
    let value = if value.starts_with('/') {
        text = std::fs::read_to_string(value)
            .with_context(|| format!("reading TranslatedAddress file {value}"))?;
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .with_context(|| format!("TranslatedAddress file {value} holds no address"))?
    } else {
        value
    };
    if let Ok(ip) = value.parse::<Ipv4Addr>() {
        return Ok(ip);
    }
    // ftpgate's own resolver (/etc/hosts, then DNS), not glibc's: see
    // sys/accounts.rs for why a static ftpgate stays away from NSS.
    names
        .lookup(value)
        .map_err(|e| anyhow::anyhow!("resolving TranslatedAddress '{value}': {e}"))?
        .into_iter()
        .find_map(|ip| match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .with_context(|| format!("TranslatedAddress '{value}' has no IPv4 address"))
}

/// One session with the client on stdin/stdout, in the order of SPEC §1.
pub fn serve_inetd(opts: &Options) -> Result<ExitStatus> {
    net::keep_stderr_off_the_client();
    // SECURITY: nothing the launcher left open (a wrapper's file or
    // directory) may reach the session and its jail; ftpgate has opened
    // nothing yet.
    sys::daemon::close_all_inherited();
    // 1. Configuration. A broken file still gets the client a clear 421.
    let cfg = match Config::load(&opts.config) {
        Ok(c) => c,
        Err(errors) => {
            // The file's own LogDestination when that line is valid, so
            // the reason is where the administrator looks; else syslog.
            let syslog = LogDestination::Syslog("daemon".into());
            let mut log = Config::salvage_log_destination(&opts.config)
                .and_then(|d| Log::open(&d, Level::Err).ok())
                .or_else(|| Log::open(&syslog, Level::Err).ok())
                .unwrap_or_else(|| Log::stderr(Level::Err));
            for e in &errors {
                log.err(&format!("configuration error: {e}"));
            }
            if errors.is_empty() {
                log.err(&format!(
                    "cannot read configuration {}",
                    opts.config.display()
                ));
            }
            refuse_stdout("Service not available: proxy configuration error.");
            return Ok(1);
        }
    };
    // An inetd "wait" style launcher (systemd-socket-activate --inetd
    // without --accept, a socket unit with Accept=no) hands over the
    // listening socket itself: serve it as the standalone daemon would.
    if let Some(listener) = sys::daemon::inherited_listener() {
        return daemon::run_inherited(opts, cfg, listener);
    }
    serve_session(opts, cfg)
}

/// The session with an already loaded configuration: the rest of
/// [`serve_inetd`], also run by each standalone-mode child (with the
/// configuration the daemon holds, so SIGHUP decides what new sessions see).
///
/// The steps of SPEC §1, in order; each returns what the next needs, and a
/// step that refuses the session has told the client and the log why
/// ([`Stop`]). Nothing contacts the server before every refusal that needs
/// no login (TCPWrapper, the redirect loop, DenyMessage) has been decided.
pub fn serve_session(opts: &Options, cfg: Config) -> Result<ExitStatus> {
    let mut log = match open_log(opts, &cfg) {
        Ok(log) => log,
        Err(Stop(status)) => return Ok(status),
    };
    // 3. Who is talking to whom; the client's class decides the rest.
    let (client, local) = match net::client_addresses(std::io::stdin().as_fd()) {
        Ok(a) => a,
        Err(e) => {
            let Stop(status) = refuse(
                &mut log,
                &e.to_string(),
                &format!("Service not available: {e}."),
            );
            return Ok(status);
        }
    };
    let cfg = cfg.for_client(client.ip());
    match session_steps(opts, &cfg, (client, local), &mut log) {
        Ok(status) | Err(Stop(status)) => Ok(status),
    }
}

/// Start-up ended before the relay: the exit status.
struct Stop(ExitStatus);

/// Log `msg` at ERR, tell the client 421 `text`, stop with status 1.
fn refuse(log: &mut Log, msg: &str, text: &str) -> Stop {
    log.err(msg);
    refuse_stdout(text);
    Stop(1)
}

fn session_steps(
    opts: &Options,
    cfg: &Config,
    (client, local): (SocketAddr, SocketAddr),
    log: &mut Log,
) -> Result<ExitStatus, Stop> {
    // The checks that need the addresses and nothing more.
    let peers = addresses(opts, cfg, client, local, log)?;
    // 4. Everything that needs the file system or the resolver.
    let names = Resolver::load();
    // Address literals and transparent destinations only (an empty
    // resolver): a name may wait for DNS, so the engine looks it up after
    // the greeting.
    let early_dest = relay::early_destination(
        cfg,
        &Resolver::default(),
        peers.original_dst,
        (&peers.proxy_self, &peers.own_addresses),
    );
    log_start(cfg, &peers, early_dest, log);
    let began = std::time::Instant::now();
    let steps = started(cfg, peers, early_dest, names, log);
    if let Err(Stop(status)) = &steps {
        // SPEC 8: a session that logged its start logs its end.
        log_refused_end(log, began.elapsed(), *status);
    }
    steps
}

/// The end line of a session refused before the relay (the reason is on
/// the line before).
fn log_refused_end(log: &mut Log, took: Duration, status: ExitStatus) {
    let line = format!(
        "session end: refused before relaying; {:.1} s, 0 transfers, 0 bytes down, 0 bytes up, TLS client no server no",
        took.as_secs_f64()
    );
    if status == 0 {
        log.inf(&line);
    } else {
        log.wrn(&line);
    }
}

/// The steps once the session's start is logged: up to the relay's end.
fn started(
    cfg: &Config,
    peers: Peers,
    early_dest: Option<SocketAddr>,
    names: Resolver,
    log: &mut Log,
) -> Result<ExitStatus, Stop> {
    sys::load_timezone();
    let vars = vars();
    deny_message(cfg, &vars, log)?;
    let greeting = greeting(cfg, &vars, log);
    let translated = match cfg.translated_address.as_deref() {
        Some(value) => Some(translated_address(value, &names).map_err(|e| {
            refuse(
                log,
                &format!("{e:#}"),
                "Service not available: proxy configuration error.",
            )
        })?),
        None => None,
    };
    // Certificates and keys, read before the jail (SPEC 10).
    let tls = tls::Tls::load(cfg).map_err(|e| {
        refuse(
            log,
            &format!("TLS set-up failed: {e}"),
            "Service not available: proxy TLS configuration error.",
        )
    })?;
    // SPEC 12: the audit trail, opened before the jail.
    let trail = log::Trail::open(cfg.audit_log.as_deref(), cfg.xfer_log.as_deref(), log.id())
        .map_err(|e| {
            refuse(
                log,
                &format!("cannot open the audit trail: {e:#}"),
                "Service not available: proxy log cannot be opened.",
            )
        })?;
    let client = client_socket(cfg).map_err(|e| {
        refuse(
            log,
            &format!("taking the client socket: {e}"),
            "Service not available.",
        )
    })?;
    // The server connection starts here, so that its handshake and the
    // server's greeting overlap the jail and the client's first round trip.
    let early = early_dest.and_then(|dest| relay::connect_to(cfg, dest));
    // 5. The jail: chroot, drop privileges, verify. Fail closed.
    let jailed = enter_jail(cfg, names, log)?;
    // 6. The sandbox (SPEC 15), before the first relayed byte.
    let sandbox = sys::sandbox::enter(cfg);
    for warning in &sandbox.warnings {
        log.wrn(warning);
    }
    log.dbg(&format!(
        "sandbox: seccomp {}, Landlock {}",
        if sandbox.seccomp { "on" } else { "off" },
        sandbox.landlock
    ));
    #[cfg(debug_assertions)]
    sys::sandbox::self_test();
    // 7. The session.
    let start = relay::Start {
        cfg,
        client,
        client_addr: peers.client,
        local_addr: peers.local,
        translated,
        greeting,
        original_dst: peers.original_dst,
        proxy_self: peers.proxy_self,
        own_addresses: peers.own_addresses,
        early,
        tls,
        trail,
    };
    let end = relay::run(&jailed, start, log);
    Ok(if end.is_failure() { 1 } else { 0 })
}

/// Step 2: the log, before anything that may fail.
fn open_log(opts: &Options, cfg: &Config) -> Result<Log, Stop> {
    let level = if opts.verbosity > 0 {
        Level::Dbg
    } else {
        cfg.log_level
    };
    Log::open(&cfg.log_destination, level).map_err(|e| {
        // The reason goes where an administrator looks (syslog, and
        // stderr unless that is the client), never to the client.
        let msg = format!("cannot open the log: {e:#}");
        Log::open(&LogDestination::Syslog("daemon".into()), Level::Err)
            .unwrap_or_else(|_| Log::stderr(Level::Err))
            .err(&msg);
        eprintln!("ftpgate: {msg}");
        refuse_stdout("Service not available: proxy log cannot be opened.");
        Stop(1)
    })
}

/// The addresses of a session, and what they rule out.
struct Peers {
    client: SocketAddr,
    local: SocketAddr,
    /// Where netfilter's redirect was going, if it was one.
    original_dst: Option<SocketAddr>,
    /// What a client-chosen destination may not be (the proxy itself).
    proxy_self: Vec<SocketAddr>,
    /// What a client-chosen destination may not be unless
    /// AllowedDestinations names it: every address of this host.
    own_addresses: Vec<IpAddr>,
}

/// Step 3: with the client's and our address (getpeername, getsockname),
/// the original destination of a redirected connection; TCPWrapper and the
/// redirect loop refuse here.
fn addresses(
    opts: &Options,
    cfg: &Config,
    client_addr: SocketAddr,
    local_addr: SocketAddr,
    log: &mut Log,
) -> Result<Peers, Stop> {
    let client = net::canonical(client_addr);
    // SECURITY: TCPWrapper under a super-server too (the standalone daemon
    // has checked before the fork): a file that says "TCPWrapper yes" must
    // not stop protecting when the proxy moves to xinetd or systemd.
    if cfg.tcp_wrapper && opts.mode != Some(Mode::Daemon) {
        let verdict = daemon::tcp_wrapper_verdict(cfg, client.ip());
        if !verdict.allowed {
            log_bare_start(log, client, local_addr);
            log.wrn(&format!(
                "client {client} refused by TCPWrapper: {}",
                verdict.reason
            ));
            refuse_stdout("Access denied.");
            log_refused_end(log, Duration::ZERO, 1);
            return Err(Stop(1));
        }
        log.dbg(&format!(
            "client {client} allowed by TCPWrapper: {}",
            verdict.reason
        ));
    }
    let original_dst =
        sys::transparent::original_destination(&std::io::stdin().as_fd(), local_addr);
    if cfg.allow_trans_proxy
        && let SocketAddr::V6(v6) = local_addr
        && v6.ip().to_ipv4_mapped().is_some()
    {
        log.wrn(
            "IPv4 client on a dual-stack IPv6 socket: its original destination cannot be read; \
             use separate IPv4 and IPv6-only listeners for transparent proxying",
        );
    }
    // SECURITY: the original destination is this host at the port the
    // proxy answers on (e.g. a rule that also redirects the proxy's own
    // port): connecting there would start another session of ourselves,
    // and so on. Checked here, before the jail, because it needs the
    // interface list; the other destination checks run at login.
    if let Some(orig) = original_dst
        && cfg.allow_trans_proxy
        && sys::transparent::is_loop(orig, local_addr)
    {
        log_bare_start(log, client, local_addr);
        log.wrn(&format!(
            "session refused: client {client} on {}, redirected from {orig}: destination is the proxy itself (redirect loop)",
            net::canonical(local_addr)
        ));
        refuse_stdout("Service not available: destination is the proxy itself.");
        log_refused_end(log, Duration::ZERO, 1);
        return Err(Stop(1));
    }
    // SECURITY: a client-chosen destination (magic user, transparent) is
    // never the proxy itself; through a listener on 0.0.0.0 that is any of
    // this host's addresses at our port, so the interface list is read
    // here, before the jail.
    let chosen = cfg.allow_magic_user || cfg.force_magic_user || cfg.allow_trans_proxy;
    let proxy_self = if chosen {
        sys::transparent::proxy_self(local_addr)
    } else {
        vec![net::canonical(local_addr)]
    };
    // SECURITY: with SameAddress no, a data connection's third party may
    // not be this host either (policy::data); the list is read here too.
    // With TranslatedAddress too: when it is one of this host's addresses,
    // the client's data connections use it (several proxy hosts behind a
    // load balancer, see session::transfer).
    let own_addresses = if chosen || cfg.third_party_possible() || cfg.translated_address.is_some()
    {
        sys::transparent::own_addresses()
    } else {
        Vec::new()
    };
    Ok(Peers {
        client: client_addr,
        local: local_addr,
        original_dst,
        proxy_self,
        own_addresses,
    })
}

/// SPEC 8: the session start line names the destination as far as it is
/// known now; a login that chooses another one logs it at USER.
/// The start line of a session refused before its class and destination
/// are looked at.
fn log_bare_start(log: &mut Log, client: SocketAddr, local: SocketAddr) {
    log.inf(&format!(
        "session start: client {} on {}",
        net::canonical(client),
        net::canonical(local)
    ));
}

fn log_start(cfg: &Config, peers: &Peers, early: Option<SocketAddr>, log: &mut Log) {
    let choosable =
        cfg.allow_magic_user || cfg.force_magic_user || cfg.destination_varies_by_user();
    let server = match (early, &cfg.global.destination_address) {
        (Some(dest), _) => format!("server {dest}"),
        (None, Some(name)) => format!(
            "server {name} port {}{}",
            cfg.global.destination_port,
            if choosable {
                " unless the login chooses another"
            } else {
                ""
            }
        ),
        (None, None) => "server chosen at login".to_string(),
    };
    // SPEC 11: every session start line names the class.
    let class = cfg.class.as_deref().unwrap_or("none");
    let who = format!(
        "client {} on {}, class {class}, {server}",
        net::canonical(peers.client),
        net::canonical(peers.local)
    );
    match peers.original_dst {
        Some(orig) if cfg.allow_trans_proxy => {
            log.inf(&format!("session start: {who}, transparent for {orig}"))
        }
        // A redirect to the proxy from one of this host's own addresses
        // (port 21 -> 2121 in front of a protected server) is the normal
        // public-server set-up, not worth a warning.
        Some(orig) if sys::transparent::is_own_address(orig.ip()) => {
            log.inf(&format!("session start: {who}, redirected from {orig}"))
        }
        // SECURITY: a redirected connection goes to its original destination
        // only when the administrator allowed transparent proxying.
        Some(orig) => log.wrn(&format!(
            "session start: {who}, redirected from {orig} but AllowTransProxy is off: using DestinationAddress"
        )),
        None => log.inf(&format!("session start: {who}")),
    }
}

/// DenyMessage: when its file exists, the session is refused with its
/// lines (and DenyString), before any server is contacted.
fn deny_message(cfg: &Config, vars: &Vars, log: &mut Log) -> Result<(), Stop> {
    let Some(deny) = &cfg.deny_message else {
        return Ok(());
    };
    let Some(lines) = message_lines(deny, vars, log) else {
        return Ok(());
    };
    log.wrn(&format!(
        "session refused: DenyMessage {} exists",
        deny.display()
    ));
    let mut out = std::io::stdout();
    let _ = out.write_all(&multiline(
        reply::SERVICE_NOT_AVAILABLE,
        &lines,
        &subst::expand(&cfg.deny_string, vars),
    ));
    let _ = out.flush();
    Err(Stop(0))
}

/// The 220 greeting: WelcomeMessage's lines, then WelcomeString.
fn greeting(cfg: &Config, vars: &Vars, log: &mut Log) -> Vec<u8> {
    let welcome = cfg
        .welcome_message
        .as_deref()
        .and_then(|p| message_lines(p, vars, log))
        .unwrap_or_default();
    multiline(
        reply::SERVICE_READY,
        &welcome,
        &subst::expand(&cfg.welcome_string, vars),
    )
}

/// The client's control connection, set up for a long session.
fn client_socket(cfg: &Config) -> std::io::Result<std::net::TcpStream> {
    let client = net::stream_from_stdin()?;
    let _ = net::set_keepalive(&client);
    let _ = net::set_nodelay(&client);
    let _ = net::set_oobinline(&client);
    let timeout = cfg.global.timeout.max(1);
    let _ = client.set_write_timeout(Some(Duration::from_secs(timeout)));
    Ok(client)
}

/// Step 5: chroot, drop privileges, verify; the resolver's data goes along.
fn enter_jail(cfg: &Config, names: Resolver, log: &mut Log) -> Result<sys::jail::Jailed, Stop> {
    if cfg.server_root.is_some() && cfg.user.is_none() && sys::jail::running_as_root() {
        // A chroot alone does not hold root; say so rather than pretend.
        log.wrn("ServerRoot without User: the session keeps root, which can leave a chroot");
    }
    sys::jail::resolve(cfg.user.as_deref(), cfg.group.as_deref())
        .and_then(|id| {
            if id.keeps_root() {
                log.wrn(sys::jail::ROOT_USER_WARNING);
            }
            sys::jail::enter(cfg.server_root.as_deref(), &id, names)
        })
        .map_err(|e| {
            refuse(
                log,
                &format!("cannot drop privileges: {e:#}"),
                "Service not available: proxy start-up failed.",
            )
        })
}

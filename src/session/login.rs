//! Login: USER (plain, magic user, UserAuthMagic), the directory look-up
//! and proxy authentication (SPEC 7), the destination check (SPEC 6), and
//! the control connection to the server with its greeting.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::{Action, End, Peer, Purpose, Rule, Secure, Server, Session, State, canonical};
use crate::config::{Config, Level, ServerTls, UserSettings};
use crate::ftp::escape;
use crate::ftp::reply::{self, Reply};
use crate::ldap::{self, Entry, Found, LdapError};
use crate::limits;
use crate::policy::dest;
use crate::policy::user::{AuthMagic, Login, split_auth, split_auth_pass, split_magic};

/// A login the proxy itself authenticates (UserAuthType ldap): what USER
/// said and the directory found, kept until PASS.
pub(super) struct Pending<'a> {
    login: OwnedLogin,
    /// The name the directory knows: the FTP login name, or the proxy
    /// login of UserAuthMagic.
    auth_user: Vec<u8>,
    /// What the directory said at USER; None when it is asked at PASS,
    /// bound as the user (`ldap::binds_as_user`).
    profile: Option<Profile<'a>>,
}

/// A directory's answer for one login.
pub(super) struct Profile<'a> {
    /// The user's settings (from the profile entry, or global).
    settings: Cow<'a, UserSettings>,
    /// The user's entry under LDAPAuthDN, if any.
    entry: Option<Entry>,
}

/// A USER argument, split, owned.
#[derive(Debug, Clone)]
pub(super) struct OwnedLogin {
    user: Vec<u8>,
    host: Option<Vec<u8>>,
    port: Option<u16>,
}

impl OwnedLogin {
    fn of(l: &Login<'_>) -> OwnedLogin {
        OwnedLogin {
            user: l.user.to_vec(),
            host: l.host.map(<[u8]>::to_vec),
            port: l.port,
        }
    }
}

/// USER (or, bound as the user, PASS) waiting for the directory's answer.
pub(super) struct LookUp {
    login: OwnedLogin,
    /// The name looked up (see [`Pending::auth_user`]).
    directory_user: Vec<u8>,
    /// Bound as the user: the FTP password for the server once the
    /// directory has accepted the user's.
    ftp_password: Option<Vec<u8>>,
}

/// A login on its way to the server: waiting for its destination's
/// addresses.
pub(super) struct Plan<'a> {
    login: OwnedLogin,
    settings: Cow<'a, UserSettings>,
    /// The FTP password, when the proxy has authenticated the user.
    password: Option<Vec<u8>>,
    /// The administrator's DestinationAddress: its first address is used
    /// as it is, not checked as a client's choice.
    configured: bool,
}

/// What a new server connection is for, once greeted.
pub(super) enum After {
    /// Send USER (and, with a password, PASS) for this login.
    Login {
        login: OwnedLogin,
        password: Option<Vec<u8>>,
    },
    /// FEAT before login; the connection is kept aside for USER.
    Feat,
}

/// A control connection being made.
pub(super) struct Connecting {
    pub(super) dest: SocketAddr,
    /// It is the early connection (a failure falls back to a new one).
    early: bool,
    /// For the early connection and a new one together, never past
    /// TimeOut: a silent server must not hold the client for twice the
    /// connect limit.
    pub(super) deadline: Instant,
    limit: Duration,
    local: Option<SocketAddr>,
    then: After,
}

/// Why the server's greeting did not open the session.
pub(super) enum Greeting {
    /// no 220 in time, or the connection broke
    Silent(End),
    /// a final reply other than 220 (a 421 "too many users", say)
    Refused(Reply),
}

impl<'a> Session<'a> {
    pub(super) fn login(&mut self, arg: &[u8]) {
        let cfg = self.cfg;
        let (login, auth_user) = match parse_login(cfg, arg) {
            Ok(l) => l,
            Err(refused) => {
                let option = Some(refused.option);
                let rule = self.rule_text(option);
                self.log(Level::Wrn, format!("{} ({rule})", refused.log));
                let answer = Some((reply::NOT_LOGGED_IN, refused.text.as_str()));
                let subject = format!("USER {}", escape(arg));
                self.audit_refusal(super::RefusalKind::Command, subject, answer, option);
                return self.reply(reply::NOT_LOGGED_IN, &refused.text);
            }
        };
        if cfg.ldap.is_none() {
            let settings = Cow::Borrowed(cfg.for_user(login.user));
            return self.open_session(settings, OwnedLogin::of(&login), None);
        }
        // With UserAuthMagic the proxy login names the profile too.
        let directory_user = auth_user.unwrap_or(login.user).to_vec();
        if cfg.ldap.as_ref().is_some_and(ldap::binds_as_user) {
            // The directory is asked at PASS, with the user's password.
            self.state = State::ExpectPass(Box::new(Pending {
                login: OwnedLogin::of(&login),
                auth_user: directory_user,
                profile: None,
            }));
            return self.reply(
                reply::NEED_PASSWORD,
                "Password required for proxy authentication.",
            );
        }
        self.look_up(OwnedLogin::of(&login), directory_user, None);
    }

    /// Ask the directory about `directory_user` (bound as the user when
    /// `password` is the proxy password: (FTP password, proxy password)).
    fn look_up(
        &mut self,
        login: OwnedLogin,
        directory_user: Vec<u8>,
        password: Option<(Vec<u8>, Vec<u8>)>,
    ) {
        self.lookups += 1;
        // SECURITY: one session cannot make the proxy query the directory
        // without end.
        if self.lookups > limits::MAX_DIRECTORY_LOOKUPS {
            self.log(
                Level::Wrn,
                format!(
                    "more than {} logins in one session",
                    limits::MAX_DIRECTORY_LOOKUPS
                ),
            );
            self.reply(
                reply::SERVICE_NOT_AVAILABLE,
                "Too many logins; closing connection.",
            );
            return self.end(End::TooManyLookups);
        }
        let (ftp_password, password) = password.unzip();
        self.actions.push_back(Action::LookUp {
            user: directory_user.clone(),
            password,
        });
        self.state = State::ExpectLookUp(Box::new(LookUp {
            login,
            directory_user,
            ftp_password,
        }));
    }

    /// SPEC 7: the user's settings are the profile entry's attributes over
    /// the file's values for the login (the file's values alone for a user
    /// not in the directory).
    pub(super) fn looked_up(&mut self, l: LookUp, found: Result<Found, LdapError>) {
        let cfg = self.cfg;
        let LookUp {
            login,
            directory_user: user,
            ftp_password,
        } = l;
        let found = match (found, ftp_password.is_some()) {
            (Ok(f), _) => f,
            (Err(LdapError::Credentials { code, text }), true) => {
                self.dbg(|| {
                    let dn = cfg
                        .ldap
                        .as_ref()
                        .map(|d| escape(&ldap::bind_dn(d, &user)))
                        .unwrap_or_default();
                    format!("bind as {dn} refused: result {code} {text}")
                });
                return self.auth_failed(&user, ldap::auth::Denied::WrongPassword);
            }
            (Err(e), _) => return self.directory_unusable(&e),
        };
        let settings = match found.profile {
            None => {
                self.log(
                    Level::Inf,
                    format!(
                        "user '{}' not in the directory ({}): the file's values apply",
                        escape(&user),
                        cfg.ldap
                            .as_ref()
                            .map(|d| ldap::filter_text(d, &user))
                            .unwrap_or_default()
                    ),
                );
                cfg.for_user(&user).clone()
            }
            Some(entry) => {
                let settings = ldap::option_attributes(&entry)
                    .and_then(|attrs| cfg.settings_from_attributes(&user, &attrs));
                match settings {
                    Ok(s) => {
                        self.from_directory = true;
                        self.log(
                            Level::Inf,
                            format!(
                                "user '{}' found in the directory: {}",
                                escape(&user),
                                escape(&entry.dn)
                            ),
                        );
                        s
                    }
                    Err(why) => {
                        // SECURITY: a profile that does not parse is refused,
                        // never replaced by the (possibly wider) global values.
                        self.log(
                            Level::Err,
                            format!(
                                "user '{}': invalid profile in the directory entry {}: {why}",
                                escape(&user),
                                escape(&entry.dn)
                            ),
                        );
                        return self
                            .reply(reply::NOT_LOGGED_IN, "Login refused: invalid user profile.");
                    }
                }
            }
        };
        let auth = cfg.ldap.as_ref().and_then(|d| d.auth.as_ref());
        let Some(auth) = auth else {
            return self.open_session(Cow::Owned(settings), login, None);
        };
        let settings = Cow::Owned(settings);
        match ftp_password {
            // Bound as the user: the directory has checked the password;
            // LDAPAuthOKFlag still applies.
            Some(ftp_password) => {
                let verdict = match (found.auth, &auth.ok_flag) {
                    (_, None) => Ok(settings),
                    (Some(e), flag) => ldap::auth::check_flag(&e, flag.as_ref()).map(|()| settings),
                    (None, Some(_)) => Err(ldap::auth::Denied::NoEntry),
                };
                self.authenticated(login, &user, ftp_password, verdict)
            }
            None => {
                // SECURITY: nothing reaches the server before the proxy has
                // authenticated the user at PASS.
                self.state = State::ExpectPass(Box::new(Pending {
                    login,
                    auth_user: user,
                    profile: Some(Profile {
                        settings,
                        entry: found.auth,
                    }),
                }));
                self.reply(
                    reply::NEED_PASSWORD,
                    "Password required for proxy authentication.",
                )
            }
        }
    }

    /// Log why the directory cannot be used, say 421 and end the session.
    fn directory_unusable(&mut self, e: &LdapError) {
        let (host, port) = self
            .cfg
            .ldap
            .as_ref()
            .map(|d| (d.host.clone(), d.port))
            .unwrap_or_default();
        // An IPv6 literal in brackets, as LDAPServer writes it.
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        self.log(
            Level::Err,
            format!("LDAP directory {host}:{port} unusable: {e}"),
        );
        self.reply(
            reply::SERVICE_NOT_AVAILABLE,
            "Directory service not available; closing connection.",
        );
        self.end(End::Directory(e.to_string()));
    }

    /// PASS after a USER the proxy answered (UserAuthType ldap): check the
    /// password against the directory; only then connect to the server
    /// and log in there with the same USER and PASS.
    pub(super) fn authenticate(&mut self, pending: Pending<'a>, password: &[u8]) {
        use ldap::auth::Denied;
        let Some(auth) = self.cfg.ldap.as_ref().and_then(|d| d.auth.as_ref()) else {
            return self.reply(reply::BAD_SEQUENCE, "Login with USER first.");
        };
        let Pending {
            login,
            auth_user,
            profile,
        } = pending;
        // UserAuthMagic: PASS carries the FTP password and the proxy's.
        let (ftp_password, password) = match auth.magic {
            None => (password, password),
            Some(mode) => match split_auth_pass(password, mode) {
                Some(both) => both,
                None => return self.auth_failed(&auth_user, Denied::NoAuthPassword),
            },
        };
        let Some(Profile { settings, entry }) = profile else {
            // Bound as the user (`ldap::binds_as_user`): the directory is
            // asked now, with the password.
            // SECURITY: an empty simple bind is an unauthenticated bind,
            // which many directories accept: never sent.
            if password.is_empty() {
                return self.auth_failed(&auth_user, Denied::EmptyPassword);
            }
            let secrets = (ftp_password.to_vec(), password.to_vec());
            return self.look_up(login, auth_user, Some(secrets));
        };
        let Some(entry) = entry else {
            return self.auth_failed(&auth_user, Denied::NoEntry);
        };
        if let Err(why) = ldap::auth::check_flag(&entry, auth.ok_flag.as_ref()) {
            return self.auth_failed(&auth_user, why);
        }
        match &auth.pw_attr {
            Some(attr) => {
                let verdict = ldap::auth::check_password(
                    &entry,
                    attr,
                    auth.pw_scheme,
                    auth.pw_min_len,
                    password,
                );
                let verdict = verdict.map(|()| settings);
                self.authenticated(login, &auth_user, ftp_password.to_vec(), verdict);
            }
            // SECURITY: as above, no empty bind.
            None if password.is_empty() => self.auth_failed(&auth_user, Denied::EmptyPassword),
            None => {
                self.actions.push_back(Action::Bind {
                    dn: entry.dn.clone(),
                    password: password.to_vec(),
                });
                let pending = Pending {
                    login,
                    auth_user,
                    profile: Some(Profile {
                        settings,
                        entry: Some(entry),
                    }),
                };
                let ftp_password = ftp_password.to_vec();
                self.state = State::ExpectBind(Box::new((pending, ftp_password)));
            }
        }
    }

    /// The directory's answer to the bind as the user's entry.
    pub(super) fn bound(
        &mut self,
        pending: Pending<'a>,
        ftp_password: Vec<u8>,
        r: Result<Result<(), u32>, LdapError>,
    ) {
        let Pending {
            login,
            auth_user,
            profile,
        } = pending;
        let Some(Profile { settings, entry }) = profile else {
            return self.auth_failed(&auth_user, ldap::auth::Denied::NoEntry);
        };
        let verdict = match r {
            Ok(Ok(())) => Ok(settings),
            Ok(Err(code)) => {
                self.dbg(|| {
                    let dn = entry.as_ref().map(|e| escape(&e.dn)).unwrap_or_default();
                    format!("bind as {dn} refused: result {code}")
                });
                Err(ldap::auth::Denied::WrongPassword)
            }
            Err(e) => return self.directory_unusable(&e),
        };
        self.authenticated(login, &auth_user, ftp_password, verdict);
    }

    /// The proxy's verdict on a login: go on to the server with the
    /// user's settings, or refuse.
    fn authenticated(
        &mut self,
        login: OwnedLogin,
        auth_user: &[u8],
        ftp_password: Vec<u8>,
        verdict: Result<Cow<'a, UserSettings>, ldap::auth::Denied>,
    ) {
        let settings = match verdict {
            Ok(settings) => settings,
            Err(why) => return self.auth_failed(auth_user, why),
        };
        self.log(
            Level::Inf,
            format!(
                "user '{}' authenticated by the directory",
                escape(auth_user)
            ),
        );
        self.open_session(settings, login, Some(ftp_password))
    }

    /// A failed proxy authentication: 530, or 421 after too many.
    fn auth_failed(&mut self, auth_user: &[u8], why: ldap::auth::Denied) {
        self.auth_failures += 1;
        // SECURITY: the password is never logged; the client learns
        // nothing about why (no user-name probing).
        self.log(
            Level::Wrn,
            format!(
                "authentication failed for user '{}': {why}",
                escape(auth_user)
            ),
        );
        if self.auth_failures >= limits::MAX_AUTH_FAILURES {
            self.reply(
                reply::SERVICE_NOT_AVAILABLE,
                "Login incorrect; too many failures, closing connection.",
            );
            return self.end(End::AuthFailures);
        }
        self.reply(reply::NOT_LOGGED_IN, "Login incorrect.");
    }

    /// Find the login's destination, then connect and log in there with
    /// `settings`; with `password` (the proxy has authenticated the user
    /// already), send PASS too when the server asks for it.
    fn open_session(
        &mut self,
        settings: Cow<'a, UserSettings>,
        login: OwnedLogin,
        password: Option<Vec<u8>>,
    ) {
        let (host, port, configured) = match (&login.host, self.original_dst) {
            (Some(host), _) => {
                let Ok(host) = std::str::from_utf8(host) else {
                    return self.destination_refused(&login, "host name is not text");
                };
                let port = login.port.unwrap_or(settings.destination_port);
                (host.to_string(), port, false)
            }
            (None, Some(orig)) if self.cfg.allow_trans_proxy => {
                self.server_host = None;
                let plan = Plan {
                    login,
                    settings,
                    password,
                    configured: false,
                };
                return self.resolved(plan, Ok(vec![orig]));
            }
            // SECURITY: without AllowTransProxy a redirected connection's
            // original destination is never used: DestinationAddress it is.
            _ => match settings.destination_address.as_deref() {
                Some(host) => (host.to_string(), settings.destination_port, true),
                None => return self.destination_refused(&login, "no DestinationAddress"),
            },
        };
        self.resolves += 1;
        // SECURITY: one session cannot make the proxy look up destinations
        // (DNS queries on its behalf) without end.
        if self.resolves > limits::MAX_DESTINATION_LOOKUPS {
            self.log(
                Level::Wrn,
                format!(
                    "more than {} destination look-ups in one session",
                    limits::MAX_DESTINATION_LOOKUPS
                ),
            );
            self.reply(
                reply::SERVICE_NOT_AVAILABLE,
                "Too many logins; closing connection.",
            );
            return self.end(End::TooManyResolves);
        }
        self.server_host = Some(host.trim_matches(|c| c == '[' || c == ']').to_string());
        self.actions.push_back(Action::Resolve { host, port });
        self.state = State::ExpectResolved(Box::new(Plan {
            login,
            settings,
            password,
            configured,
        }));
    }

    fn destination_refused(&mut self, login: &OwnedLogin, why: &str) {
        self.log(
            Level::Wrn,
            format!("login '{}' refused: {why}", escape(&login.user)),
        );
        self.state = State::ExpectUser;
        self.reply(
            reply::NOT_LOGGED_IN,
            &format!("Destination refused: {why}."),
        );
    }

    /// The destination's addresses are known: check a client's choice,
    /// then connect.
    pub(super) fn resolved(&mut self, plan: Plan<'a>, addrs: Result<Vec<SocketAddr>, String>) {
        let addrs = match addrs {
            Ok(a) => a,
            Err(why) => return self.destination_refused(&plan.login, &why),
        };
        let dest = if plan.configured {
            addrs
                .first()
                .copied()
                .map(canonical)
                .ok_or("no address".to_string())
        } else {
            check_destination(
                &addrs,
                &plan.settings,
                &self.proxy_self,
                &self.own_addresses,
            )
        };
        let dest = match dest {
            Ok(d) => d,
            Err(why) => {
                let option = plan
                    .settings
                    .allowed_destinations
                    .is_some()
                    .then_some("AllowedDestinations");
                let rule = Rule::of(self.cfg, &plan.login.user, option);
                self.log(
                    Level::Wrn,
                    format!(
                        "login '{}' refused: {why} ({rule})",
                        escape(&plan.login.user)
                    ),
                );
                self.state = State::ExpectUser;
                let text = format!("Destination refused: {why}.");
                let subject = addrs.first().map_or_else(String::new, |a| a.to_string());
                let refused = super::AuditEvent::Refused {
                    what: super::RefusalKind::Destination,
                    subject,
                    reply: Some((reply::NOT_LOGGED_IN, text.clone())),
                    rule,
                };
                self.audit_as(refused, Some(&plan.login.user));
                return self.reply(reply::NOT_LOGGED_IN, &text);
            }
        };
        let Plan {
            login,
            settings,
            password,
            ..
        } = plan;
        self.settings = settings;
        self.connect_server(dest, After::Login { login, password });
    }

    /// Connect to the server: the connection kept from FEAT or the early
    /// one when they go to the same place, else a new one.
    pub(super) fn connect_server(&mut self, dest: SocketAddr, then: After) {
        let limit = Duration::from_secs(limits::CONNECT_TIMEOUT_SECS).min(self.timeout());
        let same_ports = self.settings.destination_ports == self.cfg.global.destination_ports;
        if let Some(greeted) = self.greeted.take() {
            if greeted.addr == canonical(dest) && same_ports {
                self.server = Some(greeted);
                return self.greeted_server(then);
            }
            self.reset_server_input();
            self.actions.push_back(Action::CloseServer);
        }
        let early = self.early.take().is_some_and(|a| a == dest && same_ports);
        let c = Connecting {
            dest,
            early,
            deadline: self.now + limit,
            limit,
            local: None,
            then,
        };
        self.connect(c);
    }

    fn connect(&mut self, c: Connecting) {
        let left = c.deadline.saturating_duration_since(self.now);
        if left.is_zero() {
            let (dest, limit) = (c.dest, c.limit);
            self.log(
                Level::Err,
                format!("no greeting from server {dest} in {limit:?}"),
            );
            self.reply(
                reply::SERVICE_NOT_AVAILABLE,
                "The FTP server did not answer; closing connection.",
            );
            return self.end(End::Unreachable("no greeting in time".into()));
        }
        self.actions.push_back(Action::ConnectServer {
            dest: c.dest,
            ports: self.settings.destination_ports,
            early: c.early,
            timeout: left,
        });
        self.state = State::ExpectConnected(Box::new(c));
    }

    pub(super) fn server_connected(&mut self, mut c: Connecting, local: SocketAddr) {
        self.reset_server_input();
        self.tls.server = false;
        self.tls.server_private = false;
        c.local = Some(canonical(local));
        if self.settings.server_tls == ServerTls::Implicit {
            // TLS from the first byte: the handshake, then the 220.
            self.start_server_tls(c.dest);
        }
        self.state = State::ExpectGreeting(Box::new(c));
    }

    pub(super) fn server_connect_failed(&mut self, c: Connecting, why: String) {
        if c.early {
            return self.early_unusable(c, &why);
        }
        let dest = c.dest;
        self.log(
            Level::Err,
            format!("cannot connect to server {dest}: {why}"),
        );
        self.reply(
            reply::SERVICE_NOT_AVAILABLE,
            "Cannot connect to the FTP server; closing connection.",
        );
        self.end(End::Unreachable(format!("{dest}: {why}")));
    }

    /// The early connection cannot be used: make a new one.
    fn early_unusable(&mut self, mut c: Connecting, why: &str) {
        let dest = c.dest;
        self.dbg(|| {
            format!("early connection to server {dest} unusable ({why}); connecting again")
        });
        self.reset_server_input();
        self.actions.push_back(Action::CloseServer);
        c.early = false;
        c.local = None;
        self.connect(c);
    }

    pub(super) fn greeting_reply(&mut self, c: Connecting, r: Reply) {
        if r.is_preliminary() {
            self.state = State::ExpectGreeting(Box::new(c));
        } else if r.code != reply::SERVICE_READY {
            self.greeting_failed(c, Greeting::Refused(r));
        } else if c.early {
            // The server may have given up on it while the client was
            // silent (a 421 after its idle limit, or a close).
            if !self.replies.is_empty() {
                let code = self.replies.front().map(|r| r.code).unwrap_or_default();
                return self.early_unusable(c, &format!("server said {code}"));
            }
            self.actions.push_back(Action::CheckServer);
            self.state = State::ExpectStillOpen(Box::new(c));
        } else {
            self.greeted_connection(c);
        }
    }

    pub(super) fn still_open(&mut self, c: Connecting) {
        match self.replies.front() {
            Some(r) => {
                let code = r.code;
                self.early_unusable(c, &format!("server said {code}"))
            }
            None => self.greeted_connection(c),
        }
    }

    pub(super) fn greeting_failed(&mut self, c: Connecting, why: Greeting) {
        if c.early {
            let text = match &why {
                Greeting::Silent(e) => e.to_string(),
                Greeting::Refused(r) => format!("greeting {}", r.code),
            };
            return self.early_unusable(c, &text);
        }
        let dest = c.dest;
        match why {
            Greeting::Silent(e) => {
                self.log(Level::Err, format!("no greeting from server {dest}: {e}"));
                self.reply(
                    reply::SERVICE_NOT_AVAILABLE,
                    "The FTP server did not answer; closing connection.",
                );
                self.end(End::Unreachable(e.to_string()));
            }
            Greeting::Refused(r) => {
                self.log(
                    Level::Err,
                    format!(
                        "server {dest} refused the session: {}",
                        escape(&r.to_wire())
                    ),
                );
                self.reply(
                    reply::SERVICE_NOT_AVAILABLE,
                    "The FTP server refused the session; closing connection.",
                );
                self.end(End::Unreachable(format!("greeting {}", r.code)));
            }
        }
    }

    /// The server said 220: the session has its server.
    fn greeted_connection(&mut self, mut c: Connecting) {
        self.server = Some(Server {
            addr: canonical(c.dest),
            local: c.local.unwrap_or(self.local_addr),
        });
        if self.tls.server {
            return self.greeted_server(c.then);
        }
        c.deadline = self.now + self.timeout();
        match self.settings.server_tls {
            ServerTls::Off | ServerTls::Implicit => self.greeted_server(c.then),
            ServerTls::Auto => {
                self.send_server(b"FEAT");
                self.state = State::ExpectServerSecure(Box::new(c), Secure::Feat);
            }
            ServerTls::Required => {
                self.send_server(b"AUTH TLS");
                self.state = State::ExpectServerSecure(Box::new(c), Secure::Auth);
            }
        }
    }

    /// The server's answers while TLS towards it is set up.
    pub(super) fn server_secure_reply(&mut self, mut c: Connecting, step: Secure, r: Reply) {
        if r.is_preliminary() {
            self.state = State::ExpectServerSecure(Box::new(c), step);
            return;
        }
        let dest = c.dest;
        c.deadline = self.now + self.timeout();
        match step {
            Secure::Feat => {
                let offers = r.lines.iter().any(|l| {
                    let l = l.to_ascii_uppercase();
                    let words: Vec<&[u8]> =
                        l.split(|&b| b == b' ').filter(|w| !w.is_empty()).collect();
                    words.first() == Some(&&b"AUTH"[..])
                        && words.iter().any(|w| w.starts_with(b"TLS"))
                });
                if offers {
                    self.send_server(b"AUTH TLS");
                    self.state = State::ExpectServerSecure(Box::new(c), Secure::Auth);
                } else {
                    self.log(
                        Level::Wrn,
                        format!("server {dest} offers no AUTH TLS: the server leg stays plain (downgrade)"),
                    );
                    self.greeted_server(c.then);
                }
            }
            Secure::Auth if r.code == reply::AUTH_OK => {
                // SECURITY: what the server sent in clear after its 234 is
                // not part of the protected session.
                self.reset_server_input();
                self.start_server_tls(dest);
                self.state = State::ExpectServerSecure(Box::new(c), Secure::Handshake);
            }
            Secure::Auth if self.settings.server_tls == ServerTls::Auto => {
                self.log(
                    Level::Wrn,
                    format!(
                        "server {dest} refused AUTH TLS ({}): the server leg stays plain (downgrade)",
                        r.code
                    ),
                );
                self.greeted_server(c.then);
            }
            Secure::Auth => {
                let why = format!("AUTH TLS refused: {}", escape(&r.to_wire()));
                self.server_tls_failed(c, &why);
            }
            Secure::Pbsz | Secure::Handshake => self.greeted_server(c.then),
        }
    }

    /// The handshake towards the server, under the name to verify: the
    /// host name the login or DestinationAddress gave, else (the
    /// destination is an address) ServerTLSName, else the address. SPEC
    /// 10: ServerTLSName is for destinations given as addresses; it never
    /// replaces a name the user asked for.
    fn start_server_tls(&mut self, dest: SocketAddr) {
        let verify = self.settings.server_tls_verify;
        if !verify {
            self.log(
                Level::Wrn,
                format!("ServerTLSVerify no: the certificate of server {dest} is not checked"),
            );
        }
        let asked = self
            .server_host
            .clone()
            .filter(|h| h.parse::<IpAddr>().is_err());
        let name = asked
            .or_else(|| self.settings.server_tls_name.clone())
            .unwrap_or_else(|| dest.ip().to_string());
        self.actions.push_back(Action::StartTls {
            peer: Peer::Server,
            name,
            verify,
        });
    }

    /// TLS towards the server is up: PBSZ 0 (RFC 4217 wants it before PROT).
    pub(super) fn server_tls_ready(&mut self, mut c: Connecting, version: &str, cipher: &str) {
        let dest = c.dest;
        self.log(
            Level::Inf,
            format!("TLS with server {dest}: {version}, {cipher}"),
        );
        self.tls.server = true;
        c.deadline = self.now + self.timeout();
        self.send_server(b"PBSZ 0");
        self.state = State::ExpectServerSecure(Box::new(c), Secure::Pbsz);
    }

    /// TLS towards the server failed (handshake, certificate, AUTH refused
    /// with ServerTLS required): the session ends.
    pub(super) fn server_tls_failed(&mut self, c: Connecting, why: &str) {
        let dest = c.dest;
        self.log(Level::Err, format!("TLS with server {dest} failed: {why}"));
        self.reply(
            reply::SERVICE_NOT_AVAILABLE,
            "TLS with the FTP server failed; closing connection.",
        );
        self.end(End::Unreachable(format!("TLS: {why}")));
    }

    /// Go on with what the connection was made for.
    fn greeted_server(&mut self, then: After) {
        let Some(server) = self.server else {
            return self.end(End::ServerClosed("not connected".into()));
        };
        match then {
            After::Feat => self.feat(true),
            After::Login { login, password } => {
                let dest = server.addr;
                self.log(
                    Level::Inf,
                    format!("user '{}' to server {dest}", escape(&login.user)),
                );
                let mut line = b"USER ".to_vec();
                line.extend_from_slice(&login.user);
                self.send_server(&line);
                self.user = Some(login.user);
                match password {
                    None => self.expect_final(Purpose::Relay),
                    // The client has had its 331 from the proxy already:
                    // only the server's final answer to USER matters here.
                    Some(password) => self.expect_final(Purpose::UserThenPass(password)),
                }
            }
        }
    }
}

/// Where a connection begun before the client has said who it is goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EarlyTarget {
    /// The transparent original destination, checked.
    Address(SocketAddr),
    /// DestinationAddress (a name or literal) and DestinationPort, to
    /// resolve.
    Name(String, u16),
}

/// Whether the server can be known before login, and where it is: only
/// when no login can change where the session goes (no magic user, no
/// user context with a destination of its own). A transparent original
/// destination passes the destination check (SPEC 6) first. Pure; the
/// driver resolves a name and starts the connection.
pub fn early_target(
    cfg: &Config,
    original_dst: Option<SocketAddr>,
    (proxy_self, host): (&[SocketAddr], &[IpAddr]),
) -> Option<EarlyTarget> {
    if cfg.allow_magic_user || cfg.force_magic_user || cfg.destination_varies_by_user() {
        return None;
    }
    match original_dst {
        Some(orig) if cfg.allow_trans_proxy => {
            check_destination(&[orig], &cfg.global, proxy_self, host)
                .ok()
                .map(EarlyTarget::Address)
        }
        _ => Some(EarlyTarget::Name(
            cfg.global.destination_address.clone()?,
            cfg.global.destination_port,
        )),
    }
}

/// A USER argument the proxy refuses: the 530 text and the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRefusal {
    pub text: String,
    /// For the log: why.
    pub log: String,
    /// The deciding option.
    pub option: &'static str,
}

/// Split a USER argument as the configuration says (magic user,
/// UserAuthMagic) and check the names against UserNameRule: the FTP login
/// and, with UserAuthMagic, the proxy login. The session and the policy
/// simulator both use it. Pure.
pub fn parse_login<'a>(
    cfg: &Config,
    arg: &'a [u8],
) -> Result<(Login<'a>, Option<&'a [u8]>), LoginRefusal> {
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
                let form = match mode {
                    AuthMagic::AuthLast => "ftpuser@authuser",
                    AuthMagic::AuthFirst => "authuser@ftpuser",
                };
                return Err(LoginRefusal {
                    text: format!("Bad login: {e}; log in as {form}."),
                    log: format!("bad proxy login '{}': {e}", escape(arg)),
                    option: "UserAuthMagic",
                });
            }
        }
    } else if magic {
        match split_magic(arg, cfg.user_magic_char) {
            Ok(l) => l,
            Err(e) => {
                return Err(LoginRefusal {
                    text: format!("Bad login: {e}."),
                    log: format!("bad magic login '{}': {e}", escape(arg)),
                    option: if cfg.force_magic_user {
                        "ForceMagicUser"
                    } else {
                        "AllowMagicUser"
                    },
                });
            }
        }
    } else {
        Login {
            user: arg,
            host: None,
            port: None,
        }
    };
    // SECURITY: ForceMagicUser: the client must name the server.
    if cfg.force_magic_user && login.host.is_none() {
        return Err(LoginRefusal {
            text: format!("Log in as user{}host[:port].", cfg.user_magic_char as char),
            log: format!(
                "login '{}' refused: ForceMagicUser wants user{}host",
                escape(login.user),
                cfg.user_magic_char as char
            ),
            option: "ForceMagicUser",
        });
    }
    // SECURITY: UserNameRule keeps odd names out of the context lookup and
    // away from the server.
    for name in [Some(login.user), auth_user].into_iter().flatten() {
        if !cfg.user_name_rule.is_match(name) {
            return Err(LoginRefusal {
                text: "Invalid user name.".into(),
                log: format!("user name refused by UserNameRule: '{}'", escape(name)),
                option: "UserNameRule",
            });
        }
    }
    Ok((login, auth_user))
}

/// SECURITY: a client-chosen destination must not be the proxy itself,
/// loopback, another address of the proxy's host (`host`), link-local, ... unless AllowedDestinations says so. Every
/// address a name resolves to is checked; the first one that passes is
/// used, never one that did not.
pub fn check_destination(
    candidates: &[SocketAddr],
    settings: &UserSettings,
    proxy_self: &[SocketAddr],
    host: &[IpAddr],
) -> Result<SocketAddr, String> {
    let mut refusal = None;
    for &addr in candidates {
        let addr = canonical(addr);
        match dest::check(
            addr,
            settings.allowed_destinations.as_deref(),
            proxy_self,
            host,
        ) {
            Ok(()) => return Ok(addr),
            Err(r) => {
                refusal.get_or_insert(format!("{addr}: {r}"));
            }
        }
    }
    Err(refusal.unwrap_or_else(|| "no address".to_string()))
}

//! The policy simulator (SPEC 13): `ftpgate -f FILE --explain CLIENT USER
//! [COMMAND...]` says what the configuration would do with this client,
//! this login and these commands, and why, without any network traffic.
//!
//! It decides nothing itself: the contexts come from
//! [`Config::for_client`] and [`Config::for_user`], the login from
//! [`session::parse_login`], the destination check from
//! [`session::check_destination`], each command from [`session::judge`],
//! and every rule from [`session::Rule::of`]: the same functions a session
//! uses. Names are looked up in the hosts file only; LDAP is not asked.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::config::{ClientTls, Config};
use crate::ftp::command::{Command, Kind};
use crate::ftp::escape;
use crate::policy::data::check_client_port;
use crate::session::{self, ClientLeg, Rule};
use crate::sys::resolve::Resolver;

/// Exit status: 0 everything allowed, 1 something refused, 2 a bad
/// configuration or question.
pub fn run(file: &Path, client: &str, user: &str, commands: &[String]) -> i32 {
    let Ok(client_ip) = client.trim_matches(['[', ']']).parse::<IpAddr>() else {
        eprintln!("ftpgate: --explain: CLIENT '{client}' is not an address");
        return 2;
    };
    let cfg = match Config::load(file) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            return 2;
        }
    };
    let mut refused = false;
    let file = cfg.file.display().to_string();
    let cfg = cfg.for_client(client_ip);
    match cfg.class_of(client_ip) {
        Some(class) => println!(
            "client {client_ip}: class {} ({file}:{})",
            class.name, class.line
        ),
        None => println!("client {client_ip}: no class"),
    }
    let (login, _auth_user) = match session::parse_login(&cfg, user.as_bytes()) {
        Ok(l) => l,
        Err(refusal) => {
            println!(
                "user '{user}': refused 530 {} ({})",
                refusal.text,
                Rule::of(&cfg, b"", Some(refusal.option))
            );
            return 1;
        }
    };
    match cfg.context_of(login.user) {
        Some((name, line)) => println!(
            "user '{}': context [{name}] ({file}:{line})",
            escape(login.user)
        ),
        None => println!(
            "user '{}': no user context (global values)",
            escape(login.user)
        ),
    }
    if cfg.ldap.is_some() {
        println!(
            "LDAP: not consulted (LDAPServer is set: an entry for the user would override these values)"
        );
    }
    let settings = cfg.for_user(login.user);
    refused |= !destination(&cfg, &login, settings);
    // A session reaches commands only after login; with TLS offered the
    // client is taken to have used it (AUTH TLS, PROT P).
    let tls = ClientLeg {
        secure: cfg.client_tls != ClientTls::Off,
        private: cfg.client_tls != ClientTls::Off,
    };
    if cfg.client_tls != ClientTls::Off {
        println!("TLS: the client is taken to use AUTH TLS and PROT P");
    }
    let client = Client {
        ip: client_ip,
        user: login.user,
        tls,
    };
    for line in commands {
        let verdict = match Command::parse(line.as_bytes()) {
            Ok(cmd) => {
                let shown = cmd.log_text();
                (shown, command(&cfg, settings, &client, &cmd))
            }
            Err(e) => (
                escape(line.as_bytes()),
                Err(Verdict {
                    code: 500,
                    text: format!("Syntax error: {e}."),
                    option: None,
                }),
            ),
        };
        match verdict {
            (shown, Ok(option)) => println!(
                "command '{shown}': allowed ({})",
                Rule::of(&cfg, login.user, option)
            ),
            (shown, Err(v)) => {
                println!(
                    "command '{shown}': refused {} {} ({})",
                    v.code,
                    v.text,
                    Rule::of(&cfg, login.user, v.option)
                );
                refused = true;
            }
        }
    }
    i32::from(refused)
}

/// Who sends the commands: the client's address, the login, its TLS.
struct Client<'a> {
    ip: IpAddr,
    user: &'a [u8],
    tls: ClientLeg,
}

/// A refusal as the session would send it.
struct Verdict {
    code: u16,
    text: String,
    option: Option<&'static str>,
}

/// One command after login, judged as a session judges it: the command
/// policy (`session::judge`), a second USER (`session::second_user`), and
/// PORT/EPRT's bounce check (`policy::data::check_client_port`). Ok: the
/// option that allowed it (None: nothing in the file decided).
fn command(
    cfg: &Config,
    settings: &crate::config::UserSettings,
    client: &Client<'_>,
    cmd: &Command<'_>,
) -> Result<Option<&'static str>, Verdict> {
    let refusal = |r: session::Refusal| Verdict {
        code: r.code,
        text: r.text,
        option: r.rule,
    };
    let kind = match session::judge(cfg, settings, client.tls, cmd).map_err(refusal)? {
        // AUTH, PBSZ, PROT: ClientTLS decides.
        session::Judged::Own => return Ok(Some("ClientTLS")),
        session::Judged::Pass(kind) => kind,
    };
    let filter = settings.valid_commands.as_ref().map(|_| "ValidCommands");
    match kind {
        Kind::User => session::second_user(client.user, cmd.arg).map_err(refusal)?,
        Kind::Active => {
            let verb = cmd.verb.as_str();
            let target = session::active_target(cmd).map_err(|e| Verdict {
                code: 501,
                text: format!("{verb}: {e}."),
                option: None,
            })?;
            let host = crate::sys::transparent::own_addresses();
            check_client_port(
                target,
                client.ip.to_canonical(),
                settings.same_address,
                &host,
            )
            .map_err(|why| Verdict {
                code: 504,
                text: format!("{verb} refused: {why}."),
                option: Some("SameAddress"),
            })?;
            return Ok(Some("SameAddress"));
        }
        _ => {}
    }
    Ok(filter)
}

/// Where the login goes and whether that is allowed; prints one line.
fn destination(
    cfg: &Config,
    login: &crate::policy::user::Login<'_>,
    settings: &crate::config::UserSettings,
) -> bool {
    let Some(host) = login.host else {
        match &settings.destination_address {
            Some(name) => println!(
                "destination {name} port {}: allowed (DestinationAddress, chosen by the administrator: not checked)",
                settings.destination_port
            ),
            None => {
                println!("destination: refused (no DestinationAddress)");
                return false;
            }
        }
        return true;
    };
    let port = login.port.unwrap_or(settings.destination_port);
    let Ok(host) = std::str::from_utf8(host) else {
        println!("destination: refused (host name is not text)");
        return false;
    };
    let option = settings
        .allowed_destinations
        .is_some()
        .then_some("AllowedDestinations");
    let rule = Rule::of(cfg, login.user, option);
    let addrs: Vec<SocketAddr> = match Resolver::hosts_only().lookup(host) {
        Ok(ips) => ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip.to_canonical(), port))
            .collect(),
        Err(e) => {
            println!(
                "destination {host} port {port}: refused (cannot resolve from the hosts file: {e})"
            );
            return false;
        }
    };
    // What a session would refuse as the proxy itself: its own addresses
    // at its listening port (Port, as in daemon mode).
    let own = crate::sys::transparent::proxy_self(SocketAddr::new(
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        cfg.port,
    ));
    match session::check_destination(
        &addrs,
        settings,
        &own,
        &crate::sys::transparent::own_addresses(),
    ) {
        Ok(addr) => {
            println!("destination {host} ({addr}): allowed ({rule})");
            true
        }
        Err(why) => {
            println!("destination {host} port {port}: refused: {why} ({rule})");
            false
        }
    }
}

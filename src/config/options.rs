//! The one table of configuration options: names, contexts, types, defaults.
//!
//! Owns the list of every option ftpgate recognises, each bound once to
//! its contexts, type, default and the field it sets, and the conversion
//! of a raw value (text from the file) to a typed [`Value`]. It never reads files,
//! the clock or the network: compiling a regular expression or a command
//! filter is the most it does. Conversion never panics, for any input.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use super::{
    ClientTls, Config, LdapAuth, LdapSettings, Level, LogDestination, PortRange, Protection,
    ServerTls, ServerType, TransferMode, UserSettings,
};
use crate::policy::dest::{self, DestRule};
use crate::policy::filter::CommandFilter;
use crate::policy::user;

/// Where an option may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `[-Global-]` only.
    Global,
    /// The global context and user contexts.
    User,
}

/// The type of an option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// yes/true/on or no/false/off, any case.
    Bool,
    /// A decimal integer in `min..=max`.
    Int { min: u64, max: u64 },
    /// A port 1..=65535, or a well-known service name.
    Port,
    /// Free text.
    Text,
    /// A host name or an address literal (stored as text, resolved later).
    Host,
    /// TranslatedAddress: an IPv4 address, a host name, or an absolute
    /// path to a file holding one (stored as text).
    Translated,
    /// An absolute path.
    Path,
    /// `inetd` or `standalone`.
    ServerType,
    /// `active`, `passive` or `client`.
    TransferMode,
    /// FLT ERR WRN INF DBG.
    Level,
    /// A syslog facility, `/path` or `|command`.
    LogDestination,
    /// A single byte.
    Char,
    /// UserNameRule: a regular expression.
    Regex,
    /// ValidCommands.
    Filter,
    /// AllowedDestinations.
    Destinations,
    /// LDAPServer: `host` or `host:port` (`v6`, `[v6]:port`).
    HostPort,
    /// An LDAP attribute or object class name (RFC 4512 `descr` or OID).
    LdapName,
    /// LDAPBindDN: a DN with at most one `%s`.
    BindDn,
    /// LDAPAuthOKFlag: `attribute=value`.
    AttrValue,
    /// LDAPVersion: 0 (library default, which is 3 here), 2 or 3.
    LdapVersion,
    /// LDAPAuthPWType: `plain` or `crypt` or `{crypt}`, then a digit.
    PwType,
    /// UserAuthType: `ldap`.
    AuthType,
    /// UserAuthMagic: `@auth` or `auth@`.
    AuthMagic,
    /// One word of a fixed list, any case (stored lower-case as Text).
    Choice(&'static [&'static str]),
    /// ClientClass: a class name, then address blocks.
    ClientClass,
    /// MaxDownloadRate/MaxUploadRate: bytes per second, a decimal number
    /// with an optional `k` (1024) or `m` (1048576) suffix, any case; 0 is
    /// no limit (stored as Int).
    Rate,
}

/// Where an option's value goes: the one place an option is bound to its
/// field. A setter takes the [`Value`] that [`convert`] makes for the
/// option's [`Kind`]; a default goes through the same setter as a value
/// from the file, so it is written once, in the table.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// A field of [`Config`].
    Config(fn(&mut Config, Value)),
    /// A field of [`UserSettings`], resolved per user context.
    User(fn(&mut UserSettings, Value)),
    /// The low end of a local port range: with the option named `high` it
    /// sets one range of [`UserSettings`] (both or neither, low <= high).
    RangeLow {
        high: &'static str,
        set: fn(&mut UserSettings, Option<PortRange>),
    },
    /// The high end of a port range, set with its [`Target::RangeLow`].
    RangeHigh,
    /// A field of [`LdapSettings`]; has effect only with LDAPServer.
    Ldap(fn(&mut LdapSettings, Value)),
    /// A field of [`LdapAuth`]; has effect only with UserAuthType.
    LdapAuth(fn(&mut LdapAuth, Value)),
    /// UserAuthType: no field of its own; given, it turns [`LdapAuth`] on.
    AuthSwitch,
    /// ClientClass: repeatable, collected in file order (not a field).
    Classes,
}

/// One option of the table.
#[derive(Debug, Clone, Copy)]
pub struct OptionDef {
    /// Canonical spelling, as ftp-proxy.conf(5) writes it.
    pub name: &'static str,
    pub scope: Scope,
    pub kind: Kind,
    /// Value used when the option is not given, as it would be written.
    pub default: Option<&'static str>,
    /// The field the value sets.
    pub target: Target,
}

const fn def(
    name: &'static str,
    scope: Scope,
    kind: Kind,
    default: Option<&'static str>,
    target: Target,
) -> OptionDef {
    OptionDef {
        name,
        scope,
        kind,
        default,
        target,
    }
}

use Kind as K;
use Scope::{Global as G, User as U};
use Target as T;

/// Every option ftpgate recognises: name, contexts, type, default, field.
/// Adding an option is one line here (and its field).
#[rustfmt::skip]
pub static OPTIONS: &[OptionDef] = &[
    def("ActiveMaxDataPort", U, K::Port, None, T::RangeHigh),
    def("ActiveMinDataPort", U, K::Port, None, T::RangeLow { high: "ActiveMaxDataPort", set: |u, r| u.active_ports = r }),
    def("AllowedDestinations", U, K::Destinations, None, T::User(|u, v| if let Value::Destinations(d) = v { u.allowed_destinations = Some(d) })),
    def("AllowMagicUser", G, K::Bool, Some("no"), T::Config(|c, v| set_bool(&mut c.allow_magic_user, v))),
    def("AllowTransProxy", G, K::Bool, Some("no"), T::Config(|c, v| set_bool(&mut c.allow_trans_proxy, v))),
    def("AuditLog", G, K::Path, None, T::Config(|c, v| set_some_path(&mut c.audit_log, v))),
    def("ClientClass", G, K::ClientClass, None, T::Classes),
    def("ClientTLS", G, K::Choice(&["off", "optional", "required"]), Some("off"), T::Config(|c, v| if let Value::Text(t) = v { c.client_tls = ClientTls::of(&t) })),
    def("ClientTLSImplicit", G, K::Bool, Some("no"), T::Config(|c, v| set_bool(&mut c.client_tls_implicit, v))),
    def("ClientTLSRequireReuse", G, K::Bool, Some("yes"), T::Config(|c, v| set_bool(&mut c.client_tls_require_reuse, v))),
    def("DenyMessage", G, K::Path, None, T::Config(|c, v| set_some_path(&mut c.deny_message, v))),
    def("DenyString", G, K::Text, Some("Service not available"), T::Config(|c, v| set_text(&mut c.deny_string, v))),
    def("DestinationAddress", U, K::Host, None, T::User(|u, v| set_some_text(&mut u.destination_address, v))),
    def("DestinationMaxPort", U, K::Port, None, T::RangeHigh),
    def("DestinationMinPort", U, K::Port, None, T::RangeLow { high: "DestinationMaxPort", set: |u, r| u.destination_ports = r }),
    def("DestinationPort", U, K::Port, Some("21"), T::User(|u, v| set_port(&mut u.destination_port, v))),
    def("DestinationTransferMode", U, K::TransferMode, Some("client"), T::User(|u, v| if let Value::TransferMode(m) = v { u.destination_transfer_mode = m })),
    def("FailResetsPasv", G, K::Bool, Some("no"), T::Config(|c, v| set_bool(&mut c.fail_resets_pasv, v))),
    def("ForceMagicUser", G, K::Bool, Some("no"), T::Config(|c, v| set_bool(&mut c.force_magic_user, v))),
    def("ForkLimit", G, K::Int { min: 1, max: 1_000_000 }, Some("40"), T::Config(|c, v| set_int(&mut c.fork_limit, v))),
    def("Group", G, K::Text, None, T::Config(|c, v| set_some_text(&mut c.group, v))),
    def("LDAPAuthDN", G, K::Text, None, T::LdapAuth(|a, v| set_text(&mut a.base_dn, v))),
    def("LDAPAuthOKFlag", G, K::AttrValue, None, T::LdapAuth(|a, v| if let Value::AttrValue(attr, value) = v { a.ok_flag = Some((attr, value)) })),
    def("LDAPAuthPWAttr", G, K::LdapName, None, T::LdapAuth(|a, v| set_some_text(&mut a.pw_attr, v))),
    def("LDAPAuthPWType", G, K::PwType, Some("plain"), T::LdapAuth(|a, v| if let Value::PwType(scheme, min) = v { (a.pw_scheme, a.pw_min_len) = (scheme, min) })),
    def("LDAPBaseDN", G, K::Text, None, T::Ldap(|l, v| set_text(&mut l.base_dn, v))),
    def("LDAPBindDN", G, K::BindDn, None, T::Ldap(|l, v| set_text(&mut l.bind_dn, v))),
    def("LDAPBindPW", G, K::Text, None, T::Ldap(|l, v| set_text(&mut l.bind_pw, v))),
    def("LDAPIdentifier", G, K::LdapName, Some("CN"), T::Ldap(|l, v| set_text(&mut l.identifier, v))),
    def("LDAPObjectClass", G, K::LdapName, None, T::Ldap(|l, v| set_some_text(&mut l.object_class, v))),
    def("LDAPServer", G, K::HostPort, None, T::Ldap(|l, v| if let Value::HostPort(host, port) = v { (l.host, l.port) = (host, port) })),
    def("LDAPVersion", G, K::LdapVersion, Some("3"), T::Ldap(|l, v| set_int(&mut l.version, v))),
    def("Listen", G, K::Host, None, T::Config(|c, v| set_some_text(&mut c.listen, v))),
    def("LogDestination", G, K::LogDestination, Some("daemon"), T::Config(|c, v| if let Value::LogDestination(d) = v { c.log_destination = d })),
    def("LogLevel", G, K::Level, Some("INF"), T::Config(|c, v| if let Value::Level(l) = v { c.log_level = l })),
    def("MaxClients", G, K::Int { min: 1, max: 512 }, Some("64"), T::Config(|c, v| set_int(&mut c.max_clients, v))),
    def("MaxClientsMessage", G, K::Path, None, T::Config(|c, v| set_some_path(&mut c.max_clients_message, v))),
    def("MaxClientsString", G, K::Text, Some("Service not available"), T::Config(|c, v| set_text(&mut c.max_clients_string, v))),
    def("MaxDownloadRate", U, K::Rate, Some("0"), T::User(|u, v| set_rate(&mut u.max_download_rate, v))),
    def("MaxRecvBufSize", G, K::Int { min: 512, max: 1 << 30 }, None, T::Config(|c, v| if let Value::Int(n) = v { c.max_recv_buf_size = usize::try_from(n).ok() })),
    def("MaxUploadRate", U, K::Rate, Some("0"), T::User(|u, v| set_rate(&mut u.max_upload_rate, v))),
    def("PassiveMaxDataPort", U, K::Port, None, T::RangeHigh),
    def("PassiveMinDataPort", U, K::Port, None, T::RangeLow { high: "PassiveMaxDataPort", set: |u, r| u.passive_ports = r }),
    def("PidFile", G, K::Path, None, T::Config(|c, v| set_some_path(&mut c.pid_file, v))),
    def("Port", G, K::Port, Some("21"), T::Config(|c, v| set_port(&mut c.port, v))),
    def("PortResetsPasv", G, K::Bool, Some("yes"), T::Config(|c, v| set_bool(&mut c.port_resets_pasv, v))),
    def("SameAddress", U, K::Bool, Some("yes"), T::User(|u, v| set_bool(&mut u.same_address, v))),
    def("ServerRoot", G, K::Path, None, T::Config(|c, v| set_some_path(&mut c.server_root, v))),
    def("ServerTLS", U, K::Choice(&["off", "auto", "required", "implicit"]), Some("off"), T::User(|u, v| if let Value::Text(t) = v { u.server_tls = ServerTls::of(&t) })),
    def("ServerTLSCAFile", G, K::Path, Some("/etc/ssl/certs/ca-certificates.crt"), T::Config(|c, v| if let Value::Path(p) = v { c.server_tls_ca_file = p })),
    def("ServerTLSName", U, K::Text, None, T::User(|u, v| set_some_text(&mut u.server_tls_name, v))),
    def("ServerTLSProtection", U, K::Choice(&["private", "client", "clear"]), Some("private"), T::User(|u, v| if let Value::Text(t) = v { u.server_tls_protection = Protection::of(&t) })),
    def("ServerTLSVerify", U, K::Bool, Some("yes"), T::User(|u, v| set_bool(&mut u.server_tls_verify, v))),
    def("ServerType", G, K::ServerType, Some("inetd"), T::Config(|c, v| if let Value::ServerType(t) = v { c.server_type = t })),
    def("SockBindRand", G, K::Bool, Some("no"), T::Config(|c, v| set_bool(&mut c.sock_bind_rand, v))),
    def("TCPWrapper", G, K::Bool, Some("no"), T::Config(|c, v| set_bool(&mut c.tcp_wrapper, v))),
    def("TCPWrapperName", G, K::Text, None, T::Config(|c, v| set_some_text(&mut c.tcp_wrapper_name, v))),
    def("TLSCertificateFile", G, K::Path, None, T::Config(|c, v| set_some_path(&mut c.tls_certificate_file, v))),
    def("TLSKeyFile", G, K::Path, None, T::Config(|c, v| set_some_path(&mut c.tls_key_file, v))),
    def("TimeOut", U, K::Int { min: 1, max: 1 << 31 }, Some("900"), T::User(|u, v| set_int(&mut u.timeout, v))),
    def("TranslatedAddress", G, K::Translated, None, T::Config(|c, v| set_some_text(&mut c.translated_address, v))),
    def("User", G, K::Text, None, T::Config(|c, v| set_some_text(&mut c.user, v))),
    def("UserAuthMagic", G, K::AuthMagic, None, T::LdapAuth(|a, v| if let Value::AuthMagic(m) = v { a.magic = Some(m) })),
    def("UserAuthType", G, K::AuthType, None, T::AuthSwitch),
    def("UserMagicChar", G, K::Char, Some("@"), T::Config(|c, v| if let Value::Char(b) = v { c.user_magic_char = b })),
    def("UserNameRule", G, K::Regex, Some(user::DEFAULT_RULE), T::Config(|c, v| if let Value::Regex(r) = v { c.user_name_rule = r })),
    def("ValidCommands", U, K::Filter, None, T::User(|u, v| if let Value::Filter(f) = v { u.valid_commands = Some(f) })),
    def("XferLog", G, K::Path, None, T::Config(|c, v| set_some_path(&mut c.xfer_log, v))),
    def("WelcomeMessage", G, K::Path, None, T::Config(|c, v| set_some_path(&mut c.welcome_message, v))),
    def("WelcomeString", G, K::Text, Some("%h FTP server (%v - %b) ready"), T::Config(|c, v| set_text(&mut c.welcome_string, v))),
];

// The setters the table shares. A value of another type than the field's
// leaves the field alone; the tests check that every option reaches its
// field, so such a mismatch cannot stay unnoticed.

fn set_bool(field: &mut bool, value: Value) {
    if let Value::Bool(b) = value {
        *field = b;
    }
}

/// Int kinds are range-checked by [`convert`]; each range fits its field.
fn set_int<N: TryFrom<u64>>(field: &mut N, value: Value) {
    if let Value::Int(n) = value
        && let Ok(n) = N::try_from(n)
    {
        *field = n;
    }
}

/// A rate of 0 is no limit.
fn set_rate(field: &mut Option<u64>, value: Value) {
    if let Value::Int(n) = value {
        *field = (n > 0).then_some(n);
    }
}

fn set_port(field: &mut u16, value: Value) {
    if let Value::Port(p) = value {
        *field = p;
    }
}

fn set_text(field: &mut String, value: Value) {
    if let Value::Text(t) = value {
        *field = t;
    }
}

fn set_some_text(field: &mut Option<String>, value: Value) {
    if let Value::Text(t) = value {
        *field = Some(t);
    }
}

fn set_some_path(field: &mut Option<PathBuf>, value: Value) {
    if let Value::Path(p) = value {
        *field = Some(p);
    }
}

/// Global options a `[-Class-NAME-]` context may set too (SPEC 11), besides
/// every user-context option.
pub const CLASS_OPTIONS: &[&str] = &[
    "AllowMagicUser",
    "ForceMagicUser",
    "AllowTransProxy",
    "ClientTLS",
    "ClientTLSRequireReuse",
    "MaxDownloadRate",
    "MaxUploadRate",
];

/// Other spellings accepted for an option: (alias, canonical name).
const ALIASES: &[(&str, &str)] = &[("UseMagicChar", "UserMagicChar")];

/// Finds an option by name, case-insensitively, aliases included.
pub fn lookup(name: &str) -> Option<&'static OptionDef> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
        .map_or(name, |(_, canonical)| canonical);
    OPTIONS.iter().find(|o| o.name.eq_ignore_ascii_case(name))
}

/// Well-known service names accepted where a port is expected, whatever
/// /etc/services says or whether it exists (other names come from it, see
/// [`parse_services`]).
const SERVICES: &[(&str, u16)] = &[
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("http", 80),
    ("https", 443),
    ("ftps-data", 989),
    ("ftps", 990),
];

/// Syslog facilities accepted by LogDestination.
const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

/// A typed option value.
#[derive(Debug, Clone)]
pub enum Value {
    Bool(bool),
    Int(u64),
    Port(u16),
    Text(String),
    Path(PathBuf),
    ServerType(ServerType),
    TransferMode(TransferMode),
    Level(Level),
    LogDestination(LogDestination),
    Char(u8),
    Regex(regex::bytes::Regex),
    Filter(CommandFilter),
    Destinations(Vec<DestRule>),
    /// LDAPServer: host and port (default 389).
    HostPort(String, u16),
    /// LDAPAuthPWType: scheme and minimum password length.
    PwType(PwScheme, usize),
    /// LDAPAuthOKFlag: attribute and value, trimmed.
    AttrValue(String, String),
    /// UserAuthMagic.
    AuthMagic(user::AuthMagic),
    /// ClientClass: lower-case name and its address blocks.
    ClientClass(String, Vec<DestRule>),
}

/// Converts `raw` to the option's type. The error says what is wrong,
/// without the file and line (the caller adds them).
pub fn convert(option: &OptionDef, raw: &str) -> Result<Value, String> {
    convert_with(option, raw, &[])
}

/// [`convert`], with `services` (from [`parse_services`]) consulted for a
/// port name the built-in table lacks, as ftp-proxy's getservbyname(3)
/// would.
pub fn convert_with(
    option: &OptionDef,
    raw: &str,
    services: &[(String, u16)],
) -> Result<Value, String> {
    let name = option.name;
    match option.kind {
        K::Bool => parse_bool(raw)
            .map(Value::Bool)
            .ok_or_else(|| format!("{name}: expected yes or no, not '{raw}'")),
        K::Int { min, max } => match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Value::Int(n)),
            _ => Err(format!(
                "{name}: expected a number from {min} to {max}, not '{raw}'"
            )),
        },
        K::Port => parse_port(raw)
            .or_else(|| {
                services
                    .iter()
                    .find(|(service, _)| service.eq_ignore_ascii_case(raw))
                    .map(|(_, port)| *port)
            })
            .map(Value::Port)
            .ok_or_else(|| {
            format!("{name}: expected a port number (1-65535) or service name, not '{raw}'")
        }),
        K::Text => Ok(Value::Text(raw.to_string())),
        K::Host if raw.parse::<std::net::IpAddr>().is_ok() || is_host_name(raw) => {
            Ok(Value::Text(raw.to_string()))
        }
        K::Host => Err(format!(
            "{name}: expected a host name or an IP address, not '{raw}'"
        )),
        K::Translated
            if raw.starts_with('/')
                || raw.parse::<std::net::Ipv4Addr>().is_ok()
                || (raw.parse::<std::net::IpAddr>().is_err() && is_host_name(raw)) =>
        {
            Ok(Value::Text(raw.to_string()))
        }
        K::Translated => Err(format!(
            "{name}: expected an IPv4 address, a host name or an absolute path, not '{raw}'"
        )),
        K::Path => {
            // SECURITY: relative paths would depend on the working directory,
            // which changes at the chroot; only absolute paths are predictable.
            if raw.starts_with('/') {
                Ok(Value::Path(PathBuf::from(raw)))
            } else {
                Err(format!("{name}: expected an absolute path, not '{raw}'"))
            }
        }
        K::ServerType => match raw.to_ascii_lowercase().as_str() {
            "inetd" => Ok(Value::ServerType(ServerType::Inetd)),
            "standalone" => Ok(Value::ServerType(ServerType::Standalone)),
            _ => Err(format!("{name}: expected inetd or standalone, not '{raw}'")),
        },
        K::TransferMode => match raw.to_ascii_lowercase().as_str() {
            "client" => Ok(Value::TransferMode(TransferMode::Client)),
            "active" => Ok(Value::TransferMode(TransferMode::Active)),
            "passive" => Ok(Value::TransferMode(TransferMode::Passive)),
            _ => Err(format!(
                "{name}: expected active, passive or client, not '{raw}'"
            )),
        },
        K::Level => match raw.to_ascii_uppercase().as_str() {
            "FLT" => Ok(Value::Level(Level::Flt)),
            "ERR" => Ok(Value::Level(Level::Err)),
            "WRN" => Ok(Value::Level(Level::Wrn)),
            "INF" => Ok(Value::Level(Level::Inf)),
            "DBG" => Ok(Value::Level(Level::Dbg)),
            _ => Err(format!(
                "{name}: expected FLT, ERR, WRN, INF or DBG, not '{raw}'"
            )),
        },
        K::LogDestination => parse_log_destination(raw)
            .map(Value::LogDestination)
            .map_err(|why| format!("{name}: {why}")),
        K::ClientClass => {
            let mut words = raw.split_whitespace();
            let class = words.next().unwrap_or_default().to_ascii_lowercase();
            if class.is_empty()
                || !class
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(format!(
                    "{name}: '{class}' is not a class name (letters, digits, '_', '-', '.')"
                ));
            }
            let blocks: Vec<&str> = words.collect();
            if blocks.is_empty() {
                return Err(format!("{name} {class}: no address block"));
            }
            // A block with no ports has the ports of a whole-range entry.
            let whole = dest::parse_allowed("0.0.0.0/0")
                .ok()
                .and_then(|r| r.first().map(|r| r.ports));
            let mut nets = Vec::new();
            for block in blocks {
                let rule = dest::parse_allowed(block)
                    .ok()
                    .and_then(|mut r| r.pop())
                    .filter(|r| !r.any_public && Some(r.ports) == whole)
                    .ok_or_else(|| {
                        format!("{name} {class}: '{block}' is not an address block (CIDR, no port)")
                    })?;
                nets.push(rule);
            }
            Ok(Value::ClientClass(class, nets))
        }
        K::Choice(words) => {
            let word = raw.trim().to_ascii_lowercase();
            if words.contains(&word.as_str()) {
                Ok(Value::Text(word))
            } else {
                Err(format!("{name}: '{raw}' is not one of {}", words.join(", ")))
            }
        }
        K::Char => match raw.as_bytes() {
            [byte] => Ok(Value::Char(*byte)),
            _ => Err(format!("{name}: expected a single character, not '{raw}'")),
        },
        K::Regex => user::compile_rule(raw)
            .map(Value::Regex)
            .map_err(|why| format!("{name}: bad regular expression: {why}")),
        K::Filter => CommandFilter::parse(raw)
            .map(Value::Filter)
            .map_err(|e| e.to_string()),
        K::Destinations => dest::parse_allowed(raw)
            .map(Value::Destinations)
            .map_err(|why| format!("{name}: {why}")),
        K::HostPort => parse_host_port(raw)
            .map(|(host, port)| Value::HostPort(host, port))
            .map_err(|why| format!("{name}: {why}")),
        K::LdapName => {
            if is_ldap_name(raw) {
                Ok(Value::Text(raw.to_string()))
            } else {
                Err(format!(
                    "{name}: expected an LDAP attribute name (letters, digits, '-') or OID, not '{raw}'"
                ))
            }
        }
        K::BindDn => {
            // SECURITY: only one %s, and no other % code, so the login name
            // lands in exactly one (escaped) place of the DN.
            let rest = raw.replacen("%s", "", 1);
            if rest.contains('%') {
                Err(format!(
                    "{name}: at most one %s and no other % code allowed, not '{raw}'"
                ))
            } else {
                Ok(Value::Text(raw.to_string()))
            }
        }
        K::AttrValue => match raw.split_once('=') {
            Some((attr, value)) if is_ldap_name(attr.trim()) && !value.trim().is_empty() => Ok(
                Value::AttrValue(attr.trim().to_string(), value.trim().to_string()),
            ),
            _ => Err(format!("{name}: expected attribute=value, not '{raw}'")),
        },
        K::LdapVersion => match raw {
            "0" | "3" => Ok(Value::Int(3)),
            "2" => Ok(Value::Int(2)),
            _ => Err(format!("{name}: expected 0, 2 or 3, not '{raw}'")),
        },
        K::PwType => parse_pw_type(raw)
            .map(|(scheme, min)| Value::PwType(scheme, min))
            .ok_or_else(|| {
                format!("{name}: expected plain, crypt or {{crypt}}, optionally followed by a digit (minimum length), not '{raw}'")
            }),
        K::AuthType => {
            if raw.eq_ignore_ascii_case("ldap") {
                Ok(Value::Text("ldap".to_string()))
            } else {
                Err(format!("{name}: expected ldap, not '{raw}'"))
            }
        }
        K::Rate => parse_rate(raw).map(Value::Int).ok_or_else(|| {
            format!("{name}: expected bytes per second, a number with an optional k or m suffix, not '{raw}'")
        }),
        K::AuthMagic => match raw {
            "@auth" => Ok(Value::AuthMagic(user::AuthMagic::AuthLast)),
            "auth@" => Ok(Value::AuthMagic(user::AuthMagic::AuthFirst)),
            _ => Err(format!("{name}: expected @auth or auth@, not '{raw}'")),
        },
    }
}

/// The largest rate accepted: 1 TiB/s, far above any link, so that a
/// typo with too many digits is an error rather than "no limit".
const MAX_RATE: u64 = 1 << 40;

/// MaxDownloadRate/MaxUploadRate: `DIGITS [k|K|m|M]`, bytes per second
/// (k = 1024, m = 1048576), at most [`MAX_RATE`]. Never panics, for any
/// input.
pub fn parse_rate(raw: &str) -> Option<u64> {
    let (digits, unit) = match raw.as_bytes().last() {
        Some(b'k' | b'K') => (&raw[..raw.len() - 1], 1 << 10),
        Some(b'm' | b'M') => (&raw[..raw.len() - 1], 1 << 20),
        _ => (raw, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|n| *n <= MAX_RATE)
}

/// How LDAPAuthPWAttr's value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PwScheme {
    /// The password itself.
    Plain,
    /// A crypt(3) hash, without a scheme prefix.
    Crypt,
    /// A crypt(3) hash after a `{crypt}` prefix (any case).
    PrefixedCrypt,
}

/// LDAPAuthPWType: the scheme and the minimum password length (default 5,
/// as ftp-proxy.conf(5) says).
pub fn parse_pw_type(raw: &str) -> Option<(PwScheme, usize)> {
    let lower = raw.to_ascii_lowercase();
    let (scheme, rest) = if let Some(rest) = lower.strip_prefix("plain") {
        (PwScheme::Plain, rest)
    } else if let Some(rest) = lower.strip_prefix("{crypt}") {
        (PwScheme::PrefixedCrypt, rest)
    } else if let Some(rest) = lower.strip_prefix("crypt") {
        (PwScheme::Crypt, rest)
    } else {
        return None;
    };
    match rest.as_bytes() {
        [] => Some((scheme, 5)),
        [d] if d.is_ascii_digit() => Some((scheme, usize::from(d - b'0'))),
        _ => None,
    }
}

/// LDAPServer: `host`, `host:port`, `v6`, `[v6]` or `[v6]:port`; port
/// default 389.
pub fn parse_host_port(raw: &str) -> Result<(String, u16), String> {
    let bad = || format!("expected host or host:port, not '{raw}'");
    let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if raw.parse::<std::net::Ipv6Addr>().is_ok() {
        // A bare IPv6 literal has colons but no port.
        (raw, None)
    } else {
        match raw.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (raw, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
    {
        return Err(bad());
    }
    let port = match port {
        None => 389,
        Some(p) => parse_port(p).ok_or_else(bad)?,
    };
    Ok((host.to_string(), port))
}

/// The TCP services of an /etc/services text: every name and alias with
/// its port (`name port/tcp [alias ...] [# comment]`); other lines are
/// skipped. Pure; never panics, for any input.
pub fn parse_services(text: &str) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let (Some(name), Some(port_proto)) = (words.next(), words.next()) else {
            continue;
        };
        let Some(port) = port_proto
            .strip_suffix("/tcp")
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p > 0)
        else {
            continue;
        };
        for n in std::iter::once(name).chain(words) {
            out.push((n.to_string(), port));
        }
    }
    out
}

/// A host name as ftpgate's resolver looks it up: at most 253 bytes
/// (one trailing dot aside), labels of 1 to 63 letters, digits, '-' or
/// '_'. Never panics, for any input.
pub fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// An RFC 4512 attribute description without options: `descr`
/// (letter, then letters, digits, '-') or a numeric OID.
pub fn is_ldap_name(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() => bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-'),
        Some(b) if b.is_ascii_digit() => {
            bytes.iter().all(|b| b.is_ascii_digit() || *b == b'.') && !raw.ends_with('.')
        }
        _ => false,
    }
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" => Some(true),
        "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

fn parse_port(raw: &str) -> Option<u16> {
    if raw.bytes().all(|b| b.is_ascii_digit()) {
        return match raw.parse::<u64>() {
            Ok(n) if (1..=65535).contains(&n) => u16::try_from(n).ok(),
            _ => None,
        };
    }
    SERVICES
        .iter()
        .find(|(service, _)| service.eq_ignore_ascii_case(raw))
        .map(|(_, port)| *port)
}

fn parse_log_destination(raw: &str) -> Result<LogDestination, String> {
    if raw.starts_with('/') {
        return Ok(LogDestination::File(PathBuf::from(raw)));
    }
    if let Some(command) = raw.strip_prefix('|') {
        let command = command.trim();
        if command.is_empty() {
            return Err("empty pipe command after '|'".to_string());
        }
        return Ok(LogDestination::Pipe(command.to_string()));
    }
    let facility = raw.to_ascii_lowercase();
    if FACILITIES.contains(&facility.as_str()) {
        Ok(LogDestination::Syslog(facility))
    } else {
        Err(format!(
            "'{raw}' is neither a syslog facility, an absolute path nor '|command'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(name: &str) -> &'static OptionDef {
        match lookup(name) {
            Some(o) => o,
            None => panic!("{name} is not in the table"),
        }
    }

    #[test]
    fn option_names_are_found_in_any_case_and_through_aliases() {
        let cases = [
            ("port", "Port"),
            ("VALIDCOMMANDS", "ValidCommands"),
            ("usemagicchar", "UserMagicChar"),
            ("UseMagicChar", "UserMagicChar"),
            ("ldapserver", "LDAPServer"),
        ];
        for (given, canonical) in cases {
            assert_eq!(opt(given).name, canonical);
        }
        assert!(lookup("Foo").is_none());
    }

    #[test]
    fn the_table_has_no_duplicates_and_every_default_converts() {
        for (i, a) in OPTIONS.iter().enumerate() {
            for b in &OPTIONS[i + 1..] {
                assert!(!a.name.eq_ignore_ascii_case(b.name), "{}", a.name);
            }
            if let Some(default) = a.default {
                assert!(convert(a, default).is_ok(), "{}", a.name);
            }
        }
    }

    #[test]
    fn user_context_options_set_user_settings_and_port_ranges_pair_up() {
        for o in OPTIONS {
            let per_user = matches!(o.target, T::User(_) | T::RangeLow { .. } | T::RangeHigh);
            assert_eq!(per_user, o.scope == Scope::User, "{}", o.name);
            if let T::RangeLow { high, .. } = o.target {
                assert!(matches!(opt(high).target, T::RangeHigh), "{}", o.name);
                assert_eq!((o.kind, opt(high).kind), (K::Port, K::Port), "{}", o.name);
            }
            if let T::RangeHigh = o.target {
                let lows = OPTIONS
                    .iter()
                    .filter(|l| matches!(l.target, T::RangeLow { high, .. } if high == o.name))
                    .count();
                assert_eq!(lows, 1, "{}", o.name);
            }
        }
    }

    #[test]
    fn good_values_convert() {
        let cases = [
            ("SameAddress", "YES"),
            ("SameAddress", "off"),
            ("SameAddress", "True"),
            ("MaxClients", "1"),
            ("MaxClients", "512"),
            ("Port", "ftp"),
            ("Port", "65535"),
            ("DestinationPort", "FTP-DATA"),
            ("ServerType", "Standalone"),
            ("DestinationTransferMode", "PASSIVE"),
            ("LogLevel", "dbg"),
            ("LogDestination", "LOCAL3"),
            ("LogDestination", "/var/log/ftpgate.log"),
            ("LogDestination", "| logger -t ftpgate"),
            ("UserMagicChar", "%"),
            ("TimeOut", "1"),
            ("MaxRecvBufSize", "512"),
            ("PidFile", "/run/ftpgate.pid"),
            ("UserNameRule", "^[a-z]+$"),
            ("LDAPServer", "ldap.example.com"),
            ("LDAPServer", "127.0.0.1:3389"),
            ("LDAPServer", "[::1]:389"),
            ("LDAPServer", "::1"),
            ("LDAPBindDN", "cn=%s,ou=people,dc=example"),
            ("LDAPIdentifier", "uid"),
            ("LDAPIdentifier", "2.5.4.3"),
            ("LDAPAuthOKFlag", "userEnabled=yes"),
            ("LDAPAuthPWType", "{crypt}7"),
            ("LDAPAuthPWType", "plain9"),
            ("LDAPVersion", "0"),
            ("UserAuthType", "LDAP"),
            ("UserAuthMagic", "@auth"),
            ("UserAuthMagic", "auth@"),
            ("DestinationAddress", "ftp.example.com"),
            ("DestinationAddress", "localhost."),
            ("DestinationAddress", "2001:db8::1"),
            ("DestinationAddress", "192.0.2.1"),
            ("Listen", "::"),
            ("TranslatedAddress", "192.0.2.1"),
            ("TranslatedAddress", "fw.example.com"),
            ("TranslatedAddress", "/etc/ftpgate/address"),
            ("MaxDownloadRate", "0"),
            ("MaxUploadRate", "64K"),
        ];
        for (name, raw) in cases {
            assert!(convert(opt(name), raw).is_ok(), "{name} {raw}");
        }
    }

    #[test]
    fn port_names_come_from_the_built_in_table_or_the_services_file() {
        let services = parse_services(
            "# comment\nhttp-alt\t8080/tcp\twebcache # WWW caching\n\
             tftp 69/udp\nbroken x/tcp\nzero 0/tcp\n\nzope-ftp 8021/tcp\n",
        );
        assert_eq!(
            services,
            [
                ("http-alt".to_string(), 8080),
                ("webcache".to_string(), 8080),
                ("zope-ftp".to_string(), 8021)
            ]
        );
        let port = |raw: &str, services: &[(String, u16)]| match convert_with(
            opt("DestinationPort"),
            raw,
            services,
        ) {
            Ok(Value::Port(p)) => Some(p),
            _ => None,
        };
        assert_eq!(port("WebCache", &services), Some(8080));
        assert_eq!(port("ftp", &services), Some(21));
        assert_eq!(port("ftp", &[]), Some(21));
        assert_eq!(port("webcache", &[]), None);
        assert_eq!(port("tftp", &services), None);
    }

    #[test]
    fn bad_values_are_refused_with_the_option_name() {
        let cases = [
            ("SameAddress", "maybe"),
            ("MaxClients", "0"),
            ("MaxClients", "513"),
            ("MaxClients", "-1"),
            ("MaxClients", "ten"),
            ("Port", "0"),
            ("Port", "65536"),
            ("Port", "gopherish"),
            ("ServerType", "xinetd"),
            ("DestinationTransferMode", "both"),
            ("LogLevel", "verbose"),
            ("LogDestination", "local8"),
            ("LogDestination", "var/log/x"),
            ("LogDestination", "|   "),
            ("UserMagicChar", "@@"),
            ("TimeOut", "0"),
            ("MaxRecvBufSize", "511"),
            ("PidFile", "ftpgate.pid"),
            ("UserNameRule", "(unclosed"),
            ("LDAPServer", "ldap://localhost"),
            ("LDAPServer", "host:0"),
            ("LDAPServer", ""),
            ("LDAPBindDN", "cn=%s,%s"),
            ("LDAPBindDN", "cn=%u"),
            ("LDAPIdentifier", "cn)(uid"),
            ("LDAPIdentifier", "1cn"),
            ("LDAPAuthOKFlag", "userEnabled"),
            ("LDAPAuthOKFlag", "=yes"),
            ("LDAPAuthPWType", "md5"),
            ("LDAPAuthPWType", "plain10"),
            ("LDAPVersion", "1"),
            ("UserAuthType", "pam"),
            ("UserAuthMagic", "auth"),
            // never resolvable: -c says so instead of every session failing
            ("DestinationAddress", "ftp example com"),
            ("DestinationAddress", "[192.0.2.1]"),
            ("DestinationAddress", "ftp.example.com:21"),
            ("DestinationAddress", "a..b"),
            ("Listen", "0.0.0.0:21"),
            ("TranslatedAddress", "2001:db8::1"),
            ("TranslatedAddress", "etc/address"),
            ("MaxDownloadRate", "fast"),
            ("MaxUploadRate", "-1"),
        ];
        for (name, raw) in cases {
            match convert(opt(name), raw) {
                Ok(v) => panic!("{name} {raw} was accepted as {v:?}"),
                Err(why) => assert!(why.starts_with(opt(name).name), "{why}"),
            }
        }
    }

    #[test]
    fn rates_take_k_and_m_suffixes_in_any_case() {
        let cases = [
            ("0", Some(0)),
            ("1", Some(1)),
            ("500000", Some(500_000)),
            ("500k", Some(500 << 10)),
            ("500K", Some(500 << 10)),
            ("1m", Some(1 << 20)),
            ("3M", Some(3 << 20)),
            ("0k", Some(0)),
            ("1099511627776", Some(1 << 40)),
            ("1048576m", Some(1 << 40)),
            ("1099511627777", None),
            ("1048577m", None),
            ("99999999999999999999", None),
            ("18014398509481984k", None),
            ("", None),
            ("k", None),
            ("1g", None),
            ("1kb", None),
            ("1 k", None),
            (" 1k", None),
            ("1.5m", None),
            ("+1", None),
            ("-1", None),
            ("0x10", None),
            ("１", None),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_rate(raw), want, "{raw:?}");
        }
    }

    fn settings(text: &str) -> super::super::Config {
        match super::super::Config::parse_str("r.conf", text) {
            Ok(c) => c,
            Err(e) => panic!("{text:?}: {e:?}"),
        }
    }

    #[test]
    fn rates_are_per_user_and_zero_or_absent_is_no_limit() {
        let c = settings(
            "DestinationAddress a\nMaxDownloadRate 1m\nMaxUploadRate 100k\n\
             [bob]\nMaxDownloadRate 2M\n[carol]\nMaxUploadRate 0\nMaxDownloadRate 0\n",
        );
        assert_eq!(c.global.max_download_rate, Some(1 << 20));
        assert_eq!(c.global.max_upload_rate, Some(100 << 10));
        let bob = c.for_user(b"bob");
        assert_eq!(bob.max_download_rate, Some(2 << 20));
        assert_eq!(bob.max_upload_rate, Some(100 << 10));
        let carol = c.for_user(b"carol");
        assert_eq!(
            (carol.max_download_rate, carol.max_upload_rate),
            (None, None)
        );
        let none = settings("DestinationAddress a\n");
        assert_eq!(
            (none.global.max_download_rate, none.global.max_upload_rate),
            (None, None)
        );
    }

    #[test]
    fn a_bad_rate_is_an_error_with_its_file_and_line() {
        let text = "DestinationAddress a\nMaxDownloadRate 1g\n[bob]\nMaxUploadRate ten\n";
        let Err(errors) = super::super::Config::parse_str("r.conf", text) else {
            panic!("accepted");
        };
        let got: Vec<(String, usize, bool)> = errors
            .iter()
            .map(|e| {
                (
                    e.file.clone(),
                    e.line,
                    e.to_string().contains("bytes per second"),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("r.conf".to_string(), 2, true),
                ("r.conf".to_string(), 4, true)
            ]
        );
        assert!(
            errors[0]
                .to_string()
                .starts_with("r.conf:2: MaxDownloadRate"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn log_destinations_are_classified() {
        let cases = [
            ("Daemon", LogDestination::Syslog("daemon".into())),
            ("/var/log/x", LogDestination::File("/var/log/x".into())),
            (
                "|  cat > /tmp/x ",
                LogDestination::Pipe("cat > /tmp/x".into()),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_log_destination(raw), Ok(want));
        }
    }

    #[test]
    fn a_bare_ipv6_literal_is_a_host_on_the_default_port() {
        assert_eq!(parse_host_port("::1"), Ok(("::1".to_string(), 389)));
        assert_eq!(parse_host_port("[::1]:3389"), Ok(("::1".to_string(), 3389)));
        assert!(parse_host_port("::1:22389").is_err());
    }
}

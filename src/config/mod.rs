//! The typed configuration: built once at start-up, then read-only.
//!
//! Owns the meaning of the configuration file: which context an option
//! belongs to, how user contexts inherit from the global one, and which
//! context a login name selects. [`Config::load`] is the only function here
//! that does I/O (it reads the file, bounded by `limits::MAX_CONFIG_SIZE`);
//! everything else is pure and never panics, for any input. A file with any
//! error yields no `Config` at all but the list of EVERY error, each with
//! file and line.
//!
//! - [`Config::load`] / [`Config::parse_str`]: read, parse, type-check.
//! - [`Config::for_user`]: exact context (case-insensitive), else the longest
//!   matching `[prefix*]`, else global.
//! - [`Config::normalised`]: the `-c` output in ftp-proxy's layout.
//! - [`subst::expand`]: the `%` codes; the caller supplies the values.
//!
//! Every option is bound to its field once, in [`options::OPTIONS`]:
//! resolution starts from blank values (empty, zero, false) and applies
//! each table entry's setter to the value given, else to its default.
//! [`Config::origin`] says which line (or the default) a value came from.
//!
//! Decisions: a context given twice is one context (its options merge, the
//! later value wins); `[bob]` and `[bob*]` are different contexts; min/max
//! port pairs are checked on the resolved (global + user) values. Unlike
//! ftp-proxy 1.9, an unknown option is an error (ftp-proxy accepts and
//! ignores it), and `Name=Value` is accepted (ftp-proxy crashes on it and
//! keeps `= Value` as the value of `Name = Value`).
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod options;
pub mod parse;
pub mod subst;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::policy::dest::DestRule;
use crate::policy::filter::CommandFilter;

/// A configuration error: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line; 0 when the error concerns the whole file.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerType {
    Inetd,
    Standalone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMode {
    Client,
    Active,
    Passive,
}

/// Log levels, most important first (ftp-proxy's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Flt,
    Err,
    Wrn,
    Inf,
    Dbg,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDestination {
    /// syslog facility name, lower-case as given (`daemon`, `local0`, ...), validated.
    Syslog(String),
    /// absolute path
    File(PathBuf),
    /// command line run by `/bin/sh -c`
    Pipe(String),
}

/// ClientTLS (SPEC 10): TLS towards the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientTls {
    Off,
    /// AUTH TLS offered.
    Optional,
    /// No login and no data command without TLS (and PROT P).
    Required,
}

impl ClientTls {
    /// From a word the table has checked already.
    fn of(word: &str) -> ClientTls {
        match word {
            "optional" => ClientTls::Optional,
            "required" => ClientTls::Required,
            _ => ClientTls::Off,
        }
    }
}

/// ServerTLS (SPEC 10): TLS towards the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTls {
    Off,
    /// AUTH TLS when the server's FEAT lists it, else plain.
    Auto,
    /// AUTH TLS must succeed.
    Required,
    /// TLS from the first byte.
    Implicit,
}

impl ServerTls {
    fn of(word: &str) -> ServerTls {
        match word {
            "auto" => ServerTls::Auto,
            "required" => ServerTls::Required,
            "implicit" => ServerTls::Implicit,
            _ => ServerTls::Off,
        }
    }
}

/// ServerTLSProtection: data channels towards a TLS server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// PROT P
    Private,
    /// as the client's PROT
    Client,
    /// PROT C
    Clear,
}

impl Protection {
    fn of(word: &str) -> Protection {
        match word {
            "client" => Protection::Client,
            "clear" => Protection::Clear,
            _ => Protection::Private,
        }
    }
}

/// An inclusive local port range (min <= max, both >= 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
}

/// The options that a user context may override (U in the SPEC table), fully resolved:
/// global values with the user context's values applied on top.
#[derive(Debug, Clone)]
pub struct UserSettings {
    pub destination_address: Option<String>,
    /// DestinationPort, already resolved from a service name; default 21.
    pub destination_port: u16,
    /// DestinationMinPort/MaxPort; None when either is missing.
    pub destination_ports: Option<PortRange>,
    pub destination_transfer_mode: TransferMode,
    pub allowed_destinations: Option<Vec<DestRule>>,
    pub valid_commands: Option<CommandFilter>,
    pub active_ports: Option<PortRange>,
    pub passive_ports: Option<PortRange>,
    /// default true
    pub same_address: bool,
    /// seconds, default 900
    pub timeout: u64,
    pub server_tls: ServerTls,
    /// default true
    pub server_tls_verify: bool,
    pub server_tls_name: Option<String>,
    pub server_tls_protection: Protection,
    /// MaxDownloadRate/MaxUploadRate, bytes per second; None: no limit.
    pub max_download_rate: Option<u64>,
    pub max_upload_rate: Option<u64>,
}

impl UserSettings {
    /// Every field empty, zero or false (an enum at its first variant):
    /// where resolution starts before the table (`options::OPTIONS`) sets
    /// each field, defaults included.
    fn blank() -> UserSettings {
        UserSettings {
            destination_address: None,
            destination_port: 0,
            destination_ports: None,
            destination_transfer_mode: TransferMode::Client,
            allowed_destinations: None,
            valid_commands: None,
            active_ports: None,
            passive_ports: None,
            same_address: false,
            timeout: 0,
            server_tls: ServerTls::Off,
            server_tls_verify: false,
            server_tls_name: None,
            server_tls_protection: Protection::Private,
            max_download_rate: None,
            max_upload_rate: None,
        }
    }
}

/// LDAP directory settings (SPEC 7), present when LDAPServer is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapSettings {
    /// LDAPServer's host (a name or an address literal) and port (default 389).
    pub host: String,
    pub port: u16,
    /// LDAPBaseDN; default empty.
    pub base_dn: String,
    /// LDAPBindDN (may hold one `%s`); empty means the anonymous bind.
    pub bind_dn: String,
    /// LDAPBindPW; empty with an empty bind_dn.
    pub bind_pw: String,
    /// LDAPIdentifier; default `CN`.
    pub identifier: String,
    /// LDAPObjectClass; without it the filter is the identifier alone.
    pub object_class: Option<String>,
    /// LDAPVersion as sent in the bind: 2 or 3 (0 means 3).
    pub version: u8,
    /// UserAuthType ldap.
    pub auth: Option<LdapAuth>,
}

/// How users authenticate to the proxy (UserAuthType ldap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapAuth {
    /// LDAPAuthDN, default LDAPBaseDN: where the user's entry is searched.
    pub base_dn: String,
    /// LDAPAuthPWAttr: compare the password with this attribute; without
    /// it the proxy binds as the user's entry with the password.
    pub pw_attr: Option<String>,
    /// LDAPAuthPWType: scheme and minimum length.
    pub pw_scheme: options::PwScheme,
    pub pw_min_len: usize,
    /// LDAPAuthOKFlag: (attribute, value) the entry must have.
    pub ok_flag: Option<(String, String)>,
    /// UserAuthMagic: a proxy login separate from the FTP login.
    pub magic: Option<crate::policy::user::AuthMagic>,
}

/// One `[name]` or `[name*]` context.
#[derive(Debug, Clone)]
pub struct UserContext {
    /// lower-case name without the `*`
    pub name: String,
    /// The line that opened the context first.
    pub line: usize,
    pub wildcard: bool,
    pub settings: UserSettings,
    /// the lines as given, for an LDAP entry layered on top
    context: Context,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub server_type: ServerType,
    pub user: Option<String>,
    pub group: Option<String>,
    pub server_root: Option<PathBuf>,
    pub log_destination: LogDestination,
    pub log_level: Level,
    pub pid_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub port: u16,
    pub max_clients: u32,
    pub max_clients_string: String,
    pub max_clients_message: Option<PathBuf>,
    pub fork_limit: u32,
    pub tcp_wrapper: bool,
    pub tcp_wrapper_name: Option<String>,
    pub welcome_string: String,
    pub welcome_message: Option<PathBuf>,
    pub deny_message: Option<PathBuf>,
    pub deny_string: String,
    pub allow_trans_proxy: bool,
    pub allow_magic_user: bool,
    pub force_magic_user: bool,
    pub user_magic_char: u8,
    pub user_name_rule: regex::bytes::Regex,
    pub sock_bind_rand: bool,
    pub translated_address: Option<String>,
    pub port_resets_pasv: bool,
    pub fail_resets_pasv: bool,
    pub max_recv_buf_size: Option<usize>,
    /// SPEC 10: TLS towards the client.
    pub client_tls: ClientTls,
    /// TLS from the first byte (implies ClientTLS required).
    pub client_tls_implicit: bool,
    /// A client's TLS data connection must resume the control session.
    pub client_tls_require_reuse: bool,
    /// PEM certificate chain and key for the client leg.
    pub tls_certificate_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA bundle for the server leg.
    pub server_tls_ca_file: PathBuf,
    /// SPEC 12: JSON Lines audit trail, and the xferlog(5) file.
    pub audit_log: Option<PathBuf>,
    pub xfer_log: Option<PathBuf>,
    pub global: UserSettings,
    pub users: Vec<UserContext>,
    /// LDAPServer and friends; None without LDAPServer.
    pub ldap: Option<LdapSettings>,
    /// The global context as given, for user settings built from LDAP
    /// attributes exactly as a `[user]` context would be.
    global_context: Context,
    /// (context display name, canonical option name, raw value) for `-c`, in file order.
    pub entries: Vec<(String, String, String)>,
    /// ClientClass lines, in file order (SPEC 11).
    pub client_classes: Vec<ClientClass>,
    /// `[-Class-NAME-]` contexts as given.
    class_contexts: Vec<Context>,
    /// The client class this configuration was resolved for
    /// ([`Config::for_client`]); None: no class matched, or not resolved.
    pub class: Option<String>,
    /// That class's context as given (for [`Config::origin`]).
    class_context: Option<Context>,
    /// TCP service names read with the file (see `options::parse_services`),
    /// for port values given by name in LDAP entries too.
    services: Vec<(String, u16)>,
}

/// Where a resolved option value came from, for the "rule FILE:LINE" and
/// "context ..." of audit records and `--explain` (SPEC 12, 13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The line of [`Config::file`] that gave the value; None when the
    /// built-in default did.
    pub line: Option<usize>,
    /// The context of that line; the global context for a default.
    pub context: ContextName,
}

/// A context, named as audit records name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextName {
    Global,
    /// A client class context (SPEC 11): its name.
    Class(String),
    /// A user context: lower-case name, with `*` for `[name*]`.
    User(String),
}

impl fmt::Display for ContextName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextName::Global => write!(f, "global"),
            ContextName::Class(name) => write!(f, "class {name}"),
            ContextName::User(name) => write!(f, "user {name}"),
        }
    }
}

/// The display name of the global context in `-c` output.
const GLOBAL_DISPLAY: &str = "(-global-)";

/// How `-c` and messages name a class context.
fn class_display(name: &str) -> String {
    format!("-Class-{name}-")
}

/// A copy of `base` with every setting of `top` put over it.
fn overlay(base: &Context, top: &Context) -> Context {
    let mut merged = base.clone();
    for s in &top.settings {
        merged.set(s.clone());
    }
    merged
}

/// One `ClientClass NAME CIDR...` line (SPEC 11).
#[derive(Debug, Clone)]
pub struct ClientClass {
    /// lower-case
    pub name: String,
    /// address blocks (no ports)
    pub nets: Vec<DestRule>,
    pub line: usize,
}

/// One option as given in one context (the last one given wins).
#[derive(Debug, Clone)]
struct Setting {
    name: &'static str,
    value: options::Value,
    line: usize,
}

/// The settings given in one context, before types are resolved.
#[derive(Debug, Clone, Default)]
struct Context {
    /// lower-case, without `*`; empty for the global context
    name: String,
    wildcard: bool,
    settings: Vec<Setting>,
}

impl Context {
    fn get(&self, name: &str) -> Option<&Setting> {
        self.settings.iter().find(|s| s.name == name)
    }

    fn set(&mut self, setting: Setting) {
        self.settings.retain(|s| s.name != setting.name);
        self.settings.push(setting);
    }

    fn display(&self) -> String {
        if self.wildcard {
            format!("{}*", self.name)
        } else {
            self.name.clone()
        }
    }
}

/// Lookup through a user context, then the global one, then the defaults.
struct Layers<'a> {
    layers: Vec<&'a Context>,
}

impl Layers<'_> {
    fn setting(&self, name: &str) -> Option<&Setting> {
        self.layers.iter().find_map(|c| c.get(name))
    }

    /// The innermost value given for `def`, else its default.
    fn value(&self, def: &options::OptionDef) -> Option<options::Value> {
        if let Some(s) = self.setting(def.name) {
            return Some(s.value.clone());
        }
        options::convert(def, def.default?).ok()
    }

    /// A Min/Max port pair, both or neither, min <= max. Errors are reported
    /// only when the innermost context sets one of the pair itself, so that
    /// a broken global pair is reported once, not again for every user.
    fn port_range(
        &self,
        min_name: &str,
        max_name: &str,
        errors: &mut Vec<(usize, String)>,
    ) -> Option<PortRange> {
        let report = self
            .layers
            .first()
            .is_some_and(|own| own.get(min_name).is_some() || own.get(max_name).is_some());
        let min = self.setting(min_name);
        let max = self.setting(max_name);
        let (min, max) = match (min, max) {
            (None, None) => return None,
            (Some(s), None) | (None, Some(s)) => {
                if report {
                    let (given, missing) = if s.name == min_name {
                        (min_name, max_name)
                    } else {
                        (max_name, min_name)
                    };
                    errors.push((s.line, format!("{given} is given but {missing} is not")));
                }
                return None;
            }
            (Some(min), Some(max)) => (min, max),
        };
        let (options::Value::Port(lo), options::Value::Port(hi)) = (&min.value, &max.value) else {
            return None;
        };
        if lo > hi {
            if report {
                errors.push((
                    min.line.max(max.line),
                    format!("{min_name} ({lo}) is greater than {max_name} ({hi})"),
                ));
            }
            return None;
        }
        Some(PortRange { min: *lo, max: *hi })
    }

    /// The user-context options, resolved: each set through its table
    /// entry, starting from [`UserSettings::blank`].
    fn user_settings(&self, errors: &mut Vec<(usize, String)>) -> UserSettings {
        let mut settings = UserSettings::blank();
        for def in options::OPTIONS {
            match def.target {
                options::Target::User(set) => {
                    if let Some(value) = self.value(def) {
                        set(&mut settings, value);
                    }
                }
                options::Target::RangeLow { high, set } => {
                    set(&mut settings, self.port_range(def.name, high, errors));
                }
                _ => {}
            }
        }
        settings
    }
}

/// Reads the file at `path` as text (see [`parse::decode`]), bounded by
/// `limits::MAX_CONFIG_SIZE`; with [`read_services`] the only I/O in this
/// module.
fn read_text(path: &Path) -> Result<String, Vec<ConfigError>> {
    use std::io::Read;
    let file = path.display().to_string();
    let whole = |message: String| {
        vec![ConfigError {
            file: file.clone(),
            line: 0,
            message,
        }]
    };
    let handle = std::fs::File::open(path).map_err(|e| whole(format!("cannot open: {e}")))?;
    let mut bytes = Vec::new();
    // SECURITY: bounded read, so a huge or endless file (a FIFO,
    // /dev/zero) cannot exhaust memory at start-up.
    handle
        .take(crate::limits::MAX_CONFIG_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| whole(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > crate::limits::MAX_CONFIG_SIZE {
        return Err(whole(format!(
            "file is larger than {} bytes",
            crate::limits::MAX_CONFIG_SIZE
        )));
    }
    let text = parse::decode(&bytes).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| ConfigError {
                file: file.clone(),
                line: e.line,
                message: e.message,
            })
            .collect::<Vec<_>>()
    })?;
    Ok(text)
}

/// /etc/services, as ftp-proxy's getservbyname(3) would read it for port
/// names; missing or unreadable, only the built-in names work. Bounded by
/// `limits::MAX_RESOLVER_FILE`.
fn read_services() -> Vec<(String, u16)> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = std::fs::File::open("/etc/services").and_then(|f| {
        f.take(crate::limits::MAX_RESOLVER_FILE as u64)
            .read_to_end(&mut bytes)
    });
    match read {
        Ok(_) => options::parse_services(&String::from_utf8_lossy(&bytes)),
        Err(_) => Vec::new(),
    }
}

/// The last valid LogDestination of the global context in `text`,
/// whatever else is wrong with it. Pure.
fn log_destination_of(text: &str) -> Option<LogDestination> {
    let mut global = true;
    let mut found = None;
    for entry in parse::parse(text).0 {
        match entry.item {
            parse::Item::Global => global = true,
            parse::Item::Section { .. } | parse::Item::Class { .. } => global = false,
            parse::Item::Setting { name, value } if global => {
                let def = options::lookup(&name).filter(|d| d.name == "LogDestination");
                if let Some(Ok(options::Value::LogDestination(d))) =
                    def.map(|d| options::convert(d, &value))
                {
                    found = Some(d);
                }
            }
            parse::Item::Setting { .. } => {}
        }
    }
    found
}

impl Config {
    /// Reads and parses the file at `path`, read whole before anything is
    /// decided.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let text = read_text(path)?;
        let file = path.display().to_string();
        // /etc/services (13 KB) is read only when the file needs it: a
        // port named beyond the built-in names, or an LDAP directory whose
        // entries may name ports after the chroot. Every session loads
        // the file, and most give numbers.
        let config = match Config::parse_str(&file, &text) {
            Ok(config) if config.ldap.is_none() => config,
            _ => Config::parse_str_with(&file, &text, read_services())?,
        };
        config.check_tls_files()?;
        Ok(config)
    }

    /// SPEC 10: the certificate, key and CA files TLS needs exist and hold
    /// what they must; else a configuration error at the option's line.
    fn check_tls_files(&self) -> Result<(), Vec<ConfigError>> {
        let mut files: Vec<(&str, &Path)> = Vec::new();
        // ClientTLS may be on for one class only.
        let class_tls = self.class_contexts.iter().any(|c| {
            c.get("ClientTLS")
                .is_some_and(|s| !matches!(&s.value, options::Value::Text(t) if t == "off"))
                || c.get("ClientTLSImplicit")
                    .is_some_and(|s| matches!(s.value, options::Value::Bool(true)))
        });
        let client_tls = self.client_tls != ClientTls::Off || class_tls;
        if client_tls {
            files.extend(
                self.tls_certificate_file
                    .as_deref()
                    .map(|p| ("TLSCertificateFile", p)),
            );
            files.extend(self.tls_key_file.as_deref().map(|p| ("TLSKeyFile", p)));
        }
        let server_tls = std::iter::once(&self.global)
            .chain(self.users.iter().map(|u| &u.settings))
            .any(|s| s.server_tls != ServerTls::Off && s.server_tls_verify);
        if server_tls {
            files.push(("ServerTLSCAFile", self.server_tls_ca_file.as_path()));
        }
        let error = |name: &str, message: String| ConfigError {
            file: self.file.display().to_string(),
            line: self.global_context.get(name).map_or(0, |s| s.line),
            message: format!("{name}: {message}"),
        };
        let mut errors: Vec<ConfigError> = files
            .into_iter()
            .filter_map(|(name, path)| {
                let message = crate::tls::check_file(name, path).err()?;
                Some(error(name, message))
            })
            .collect();
        if let (true, true, Some(cert), Some(key)) = (
            client_tls,
            errors.is_empty(),
            self.tls_certificate_file.as_deref(),
            self.tls_key_file.as_deref(),
        ) && let Err(message) = crate::tls::check_pair(cert, key)
        {
            errors.push(error("TLSKeyFile", message));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The global LogDestination of a file that does not load, when that
    /// line itself is valid: where the errors of the rest belong, so the
    /// administrator finds them in the log the file names.
    pub fn salvage_log_destination(path: &Path) -> Option<LogDestination> {
        log_destination_of(&read_text(path).ok()?)
    }

    /// Parses configuration text; `file` names it in errors and in `-c`.
    /// Pure; never panics, for any input. Returns every error, sorted by line.
    pub fn parse_str(file: &str, text: &str) -> Result<Config, Vec<ConfigError>> {
        Config::parse_str_with(file, text, Vec::new())
    }

    /// [`Config::parse_str`] with port names from `services` (the built-in
    /// names always work).
    pub fn parse_str_with(
        file: &str,
        text: &str,
        services: Vec<(String, u16)>,
    ) -> Result<Config, Vec<ConfigError>> {
        let mut errors: Vec<(usize, String)> = Vec::new();
        let (entries, syntax) = parse::parse(text);
        errors.extend(syntax.into_iter().map(|e| (e.line, e.message)));

        let mut global = Context::default();
        let mut users: Vec<Context> = Vec::new();
        let mut user_lines: Vec<usize> = Vec::new();
        // `[-Class-NAME-]` contexts (SPEC 11), each with the line that
        // opened it first, and the ClientClass lines in file order.
        let mut class_contexts: Vec<(Context, usize)> = Vec::new();
        let mut client_classes: Vec<ClientClass> = Vec::new();
        let mut current: Option<usize> = None;
        let mut in_class: Option<usize> = None;
        let mut raw_entries = Vec::new();
        // A DestinationAddress line in the global context, valid or not
        // (a bad one has its own error; "required" would mislead).
        let mut destination_given = false;
        for entry in entries {
            match entry.item {
                parse::Item::Global => {
                    current = None;
                    in_class = None;
                }
                parse::Item::Class { name } => {
                    current = None;
                    let index = match class_contexts.iter().position(|(c, _)| c.name == name) {
                        Some(index) => index,
                        None => {
                            class_contexts.push((
                                Context {
                                    name,
                                    wildcard: false,
                                    settings: Vec::new(),
                                },
                                entry.line,
                            ));
                            class_contexts.len() - 1
                        }
                    };
                    in_class = Some(index);
                }
                parse::Item::Section { name, wildcard } => {
                    let name = name.to_ascii_lowercase();
                    // A context given twice is the same context: merge.
                    let index = match users
                        .iter()
                        .position(|c| c.name == name && c.wildcard == wildcard)
                    {
                        Some(index) => index,
                        None => {
                            users.push(Context {
                                name,
                                wildcard,
                                settings: Vec::new(),
                            });
                            user_lines.push(entry.line);
                            users.len() - 1
                        }
                    };
                    current = Some(index);
                    in_class = None;
                }
                parse::Item::Setting { name, value } => {
                    let Some(def) = options::lookup(&name) else {
                        errors.push((entry.line, format!("unknown option '{name}'")));
                        continue;
                    };
                    let context = match (current, in_class) {
                        (Some(index), _) => match users.get_mut(index) {
                            Some(c) => c,
                            None => continue,
                        },
                        (None, Some(index)) => match class_contexts.get_mut(index) {
                            Some((c, _)) => c,
                            None => continue,
                        },
                        (None, None) => &mut global,
                    };
                    // SECURITY: an option in a context where it has no
                    // effect would look as if it restricted that class
                    // while doing nothing.
                    if in_class.is_some()
                        && def.scope == options::Scope::Global
                        && !options::CLASS_OPTIONS.contains(&def.name)
                    {
                        errors.push((
                            entry.line,
                            format!(
                                "{} is not allowed in a class context (only user-context options and {})",
                                def.name,
                                options::CLASS_OPTIONS.join(", ")
                            ),
                        ));
                        continue;
                    }
                    // SECURITY: global-only options (User, ServerRoot,
                    // AllowMagicUser, ...) in a user context would look as if
                    // they restricted that user while doing nothing.
                    if current.is_some() && def.scope == options::Scope::Global {
                        let only = if options::CLASS_OPTIONS.contains(&def.name) {
                            "the global and class contexts"
                        } else {
                            "the global context"
                        };
                        errors.push((
                            entry.line,
                            format!("{} is allowed in {only} only", def.name),
                        ));
                        continue;
                    }
                    let in_global = current.is_none() && in_class.is_none();
                    destination_given |= in_global && def.name == "DestinationAddress";
                    match options::convert_with(def, &value, &services) {
                        Ok(options::Value::ClientClass(name, nets)) => {
                            raw_entries.push((
                                GLOBAL_DISPLAY.to_string(),
                                def.name.to_string(),
                                value,
                            ));
                            client_classes.push(ClientClass {
                                name,
                                nets,
                                line: entry.line,
                            });
                        }
                        Ok(typed) => {
                            let display = match (current, in_class) {
                                (Some(_), _) => context.display(),
                                (None, Some(_)) => class_display(&context.name),
                                (None, None) => GLOBAL_DISPLAY.to_string(),
                            };
                            raw_entries.push((display, def.name.to_string(), value));
                            context.set(Setting {
                                name: def.name,
                                value: typed,
                                line: entry.line,
                            });
                        }
                        Err(message) => errors.push((entry.line, message)),
                    }
                }
            }
        }

        if !destination_given {
            errors.push((
                0,
                "DestinationAddress is required in the global context".to_string(),
            ));
        }

        // SPEC 11: a class context needs its ClientClass line, and a
        // ClientClass line its context.
        for (ctx, line) in &class_contexts {
            if !client_classes.iter().any(|c| c.name == ctx.name) {
                errors.push((
                    *line,
                    format!(
                        "class context [{}] has no ClientClass line",
                        class_display(&ctx.name)
                    ),
                ));
            }
        }
        for class in &client_classes {
            if !class_contexts.iter().any(|(c, _)| c.name == class.name) {
                errors.push((
                    class.line,
                    format!(
                        "ClientClass {} has no [{}] context",
                        class.name,
                        class_display(&class.name)
                    ),
                ));
            }
        }
        // Each class's settings must resolve (port pairs, TLS files) as
        // its sessions will see them.
        for (ctx, _) in &class_contexts {
            let merged = overlay(&global, ctx);
            Layers {
                layers: vec![&merged],
            }
            .user_settings(&mut errors);
            tls_prerequisites(&merged, &mut errors);
        }

        let ldap = ldap_settings(&global, &mut errors);
        let g = Layers {
            layers: vec![&global],
        };
        let global_settings = g.user_settings(&mut errors);
        let user_contexts: Vec<UserContext> = users
            .iter()
            .zip(&user_lines)
            .map(|(c, line)| UserContext {
                name: c.name.clone(),
                line: *line,
                wildcard: c.wildcard,
                settings: Layers {
                    layers: vec![c, &global],
                }
                .user_settings(&mut errors),
                context: c.clone(),
            })
            .collect();

        // Every global option resolved once (its line, else its default),
        // in table order.
        let values: Vec<_> = options::OPTIONS
            .iter()
            .filter_map(|def| match def.target {
                options::Target::Config(set) => g.value(def).map(|value| (set, value)),
                _ => None,
            })
            .collect();
        // A Regex has no empty value to start from: the blank Config takes
        // the resolved UserNameRule, which its own setter then sets again.
        let user_name_rule = values.iter().find_map(|(_, value)| match value {
            options::Value::Regex(r) => Some(r.clone()),
            _ => None,
        });
        if user_name_rule.is_none() {
            errors.push((
                0,
                "UserNameRule: the default rule does not compile".to_string(),
            ));
        }

        tls_prerequisites(&global, &mut errors);

        let Some(user_name_rule) = user_name_rule.filter(|_| errors.is_empty()) else {
            errors.sort_by_key(|(line, _)| *line);
            return Err(errors
                .into_iter()
                .map(|(line, message)| ConfigError {
                    file: file.to_string(),
                    line,
                    message,
                })
                .collect());
        };

        let mut config = Config {
            file: PathBuf::from(file),
            global: global_settings,
            users: user_contexts,
            ldap,
            global_context: global,
            entries: raw_entries,
            services,
            client_classes,
            class_contexts: class_contexts.into_iter().map(|(c, _)| c).collect(),
            class: None,
            class_context: None,
            // Set by the table below, defaults included; blank until then:
            // empty, zero, false, an enum at its first variant.
            user_name_rule,
            server_type: ServerType::Inetd,
            user: None,
            group: None,
            server_root: None,
            log_destination: LogDestination::Syslog(String::new()),
            log_level: Level::Flt,
            pid_file: None,
            listen: None,
            port: 0,
            max_clients: 0,
            max_clients_string: String::new(),
            max_clients_message: None,
            fork_limit: 0,
            tcp_wrapper: false,
            tcp_wrapper_name: None,
            welcome_string: String::new(),
            welcome_message: None,
            deny_message: None,
            deny_string: String::new(),
            allow_trans_proxy: false,
            allow_magic_user: false,
            force_magic_user: false,
            user_magic_char: 0,
            sock_bind_rand: false,
            translated_address: None,
            port_resets_pasv: false,
            fail_resets_pasv: false,
            max_recv_buf_size: None,
            client_tls: ClientTls::Off,
            client_tls_implicit: false,
            client_tls_require_reuse: false,
            tls_certificate_file: None,
            tls_key_file: None,
            server_tls_ca_file: PathBuf::new(),
            audit_log: None,
            xfer_log: None,
        };
        for (set, value) in values {
            set(&mut config, value);
        }
        if config.client_tls_implicit {
            config.client_tls = ClientTls::Required;
        }
        Ok(config)
    }

    /// The settings for a login name: the context named exactly so (ASCII
    /// case-insensitive), else the longest `[prefix*]` it starts with, else
    /// the global settings.
    pub fn for_user(&self, login: &[u8]) -> &UserSettings {
        self.user_context(login)
            .map_or(&self.global, |c| &c.settings)
    }

    /// Where the value of `option` (any spelling) that `login` gets came
    /// from: the line of its user context, else of the global context,
    /// else the default. None for an unknown option, or one neither given
    /// nor defaulted. An LDAP entry's values are not seen here.
    pub fn origin(&self, login: &[u8], option: &str) -> Option<Origin> {
        let def = options::lookup(option)?;
        if def.scope == options::Scope::User
            && let Some(user) = self.user_context(login)
            && let Some(s) = user.context.get(def.name)
        {
            return Some(Origin {
                line: Some(s.line),
                context: ContextName::User(user.context.display()),
            });
        }
        if let (Some(ctx), Some(class)) = (&self.class_context, &self.class)
            && let Some(s) = ctx.get(def.name)
        {
            return Some(Origin {
                line: Some(s.line),
                context: ContextName::Class(class.clone()),
            });
        }
        if let Some(s) = self.global_context.get(def.name) {
            return Some(Origin {
                line: Some(s.line),
                context: ContextName::Global,
            });
        }
        def.default.map(|_| Origin {
            line: None,
            context: ContextName::Global,
        })
    }

    /// The user context a login name falls in: its name as written
    /// (`bob`, `ftp*`) and its line; None for the global context.
    pub fn context_of(&self, login: &[u8]) -> Option<(String, usize)> {
        self.user_context(login)
            .map(|c| (c.context.display(), c.line))
    }

    /// The user context a login name falls in, if any (see [`Config::for_user`]).
    fn user_context(&self, login: &[u8]) -> Option<&UserContext> {
        // SECURITY: the most specific context wins, so that a restriction
        // written for one user is never overridden by a broader wildcard.
        if let Some(exact) = self
            .users
            .iter()
            .find(|c| !c.wildcard && c.name.as_bytes().eq_ignore_ascii_case(login))
        {
            return Some(exact);
        }
        self.users
            .iter()
            .filter(|c| c.wildcard && starts_with_ignore_case(login, c.name.as_bytes()))
            .max_by_key(|c| c.name.len())
    }

    /// The settings of `login` whose LDAP entry has `attributes`: as
    /// ftp-proxy does, the file's values for the login (its user context
    /// over the global context) with every attribute named like a
    /// user-context option (case-insensitively) applied on top, converted
    /// and checked exactly as the same lines in a `[user]` context would be. Other attributes
    /// (cn, objectClass, ...) are not options and are left alone; a
    /// multi-valued ValidCommands or AllowedDestinations is the values
    /// joined by spaces, any other option given more than once is an error.
    /// The error names the attribute and what is wrong with it.
    pub fn settings_from_attributes(
        &self,
        login: &[u8],
        attributes: &[(&str, Vec<&str>)],
    ) -> Result<UserSettings, String> {
        let mut own = Context::default();
        for (name, values) in attributes {
            let Some(def) = options::lookup(name) else {
                continue;
            };
            if def.scope != options::Scope::User {
                continue;
            }
            let raw = match (def.kind, values.as_slice()) {
                (_, []) => continue,
                (_, [one]) => (*one).to_string(),
                (options::Kind::Filter | options::Kind::Destinations, many) => many.join(" "),
                _ => return Err(format!("{}: more than one value", def.name)),
            };
            let value = options::convert_with(def, &raw, &self.services)?;
            own.set(Setting {
                name: def.name,
                value,
                line: 0,
            });
        }
        let mut errors = Vec::new();
        let mut layers = vec![&own];
        layers.extend(self.user_context(login).map(|c| &c.context));
        layers.push(&self.global_context);
        let settings = Layers { layers }.user_settings(&mut errors);
        match errors.into_iter().next() {
            Some((_, why)) => Err(why),
            None => Ok(settings),
        }
    }

    /// Whether some session may allow third-party data connections
    /// (SameAddress no globally, for a user, or possibly from LDAP): such
    /// sessions need the host's own addresses to refuse them as the third.
    pub fn third_party_possible(&self) -> bool {
        self.ldap.is_some()
            || !self.global.same_address
            || self.users.iter().any(|c| !c.settings.same_address)
    }

    /// Whether some user context sends its logins elsewhere than the global
    /// settings do (DestinationAddress, DestinationPort, DestinationMinPort
    /// and MaxPort, AllowedDestinations), or an LDAP entry may: then the
    /// server is known only once USER names the user.
    pub fn destination_varies_by_user(&self) -> bool {
        if self.ldap.is_some() {
            return true;
        }
        let g = &self.global;
        self.users.iter().any(|c| {
            let u = &c.settings;
            u.destination_address != g.destination_address
                || u.destination_port != g.destination_port
                || u.destination_ports != g.destination_ports
                || u.allowed_destinations != g.allowed_destinations
        })
    }

    /// The `-c` output, in ftp-proxy's layout: the global context first,
    /// then user contexts by name; in each, one line per option given (the
    /// last value), sorted by canonical name case-insensitively.
    /// The client class of an address: the first ClientClass line, in
    /// file order, one of whose blocks holds it (an IPv4-mapped IPv6
    /// address as the IPv4 address it is).
    pub fn class_of(&self, client: IpAddr) -> Option<&ClientClass> {
        let ip = client.to_canonical();
        self.client_classes
            .iter()
            .find(|c| c.nets.iter().any(|n| n.contains_ip(ip)))
    }

    /// This configuration as a session from `client` sees it: its class's
    /// context over the global one, under every user context (SPEC 11:
    /// global < class < `[user*]` < `[user]` < LDAP entry). The same
    /// configuration when no class matches.
    pub fn for_client(mut self, client: IpAddr) -> Config {
        let Some(class) = self.class_of(client).map(|c| c.name.clone()) else {
            return self;
        };
        let Some(ctx) = self
            .class_contexts
            .iter()
            .find(|c| c.name == class)
            .cloned()
        else {
            return self;
        };
        let merged = overlay(&self.global_context, &ctx);
        // The file was checked with these very layers at load: no errors.
        let mut ignored = Vec::new();
        self.global = Layers {
            layers: vec![&merged],
        }
        .user_settings(&mut ignored);
        for user in &mut self.users {
            user.settings = Layers {
                layers: vec![&user.context, &merged],
            }
            .user_settings(&mut ignored);
        }
        for def in options::OPTIONS {
            if let (options::Target::Config(set), Some(setting)) = (def.target, ctx.get(def.name)) {
                set(&mut self, setting.value.clone());
            }
        }
        if self.client_tls_implicit {
            self.client_tls = ClientTls::Required;
        }
        self.global_context = merged;
        self.class = Some(class);
        self.class_context = Some(ctx);
        self
    }

    pub fn normalised(&self) -> String {
        let mut out = format!("Config-File: '{}'\n", self.file.display());
        let mut sections = vec![GLOBAL_DISPLAY.to_string()];
        let mut names: Vec<String> = self
            .users
            .iter()
            .map(|c| {
                if c.wildcard {
                    format!("{}*", c.name)
                } else {
                    c.name.clone()
                }
            })
            .collect();
        names.sort();
        let mut classes: Vec<String> = self
            .class_contexts
            .iter()
            .map(|c| class_display(&c.name))
            .collect();
        classes.sort();
        sections.extend(classes);
        sections.extend(names);
        for section in sections {
            out.push_str(&format!("Config-Section ------ '{section}'\n"));
            let mut lines: Vec<(&str, &str)> = Vec::new();
            for (context, name, value) in &self.entries {
                if *context != section {
                    continue;
                }
                // ClientClass lines add up; any other option: the last counts.
                if name != "ClientClass" {
                    lines.retain(|(n, _)| n != name);
                }
                lines.push((name, value));
            }
            // Stable: ClientClass lines keep their file order.
            lines.sort_by_key(|(name, _)| name.to_ascii_lowercase());
            for (name, value) in lines {
                out.push_str(&format!("Config:        {name:<24} = '{value}'\n"));
            }
        }
        out
    }
}

/// SPEC 10: TLS towards clients needs a certificate and its key.
fn tls_prerequisites(global: &Context, errors: &mut Vec<(usize, String)>) {
    let on = |name: &str| {
        global.get(name).and_then(|s| match &s.value {
            options::Value::Text(t) if t != "off" => Some(s.line),
            options::Value::Bool(true) => Some(s.line),
            _ => None,
        })
    };
    // An explicit `ClientTLS off` with implicit TLS says two things.
    if let (Some(off), Some(_)) = (
        global
            .get("ClientTLS")
            .filter(|s| matches!(&s.value, options::Value::Text(t) if t == "off")),
        on("ClientTLSImplicit"),
    ) {
        errors.push((
            off.line,
            "ClientTLS off contradicts ClientTLSImplicit yes (which means ClientTLS required)"
                .into(),
        ));
    }
    let Some(line) = on("ClientTLS").or_else(|| on("ClientTLSImplicit")) else {
        return;
    };
    for needed in ["TLSCertificateFile", "TLSKeyFile"] {
        if global.get(needed).is_none() {
            errors.push((line, format!("TLS towards clients needs {needed}")));
        }
    }
}

/// The LDAP options, checked together: every one needs LDAPServer, and
/// the [`LdapAuth`] ones UserAuthType too. User contexts in the file still
/// apply, under a directory entry's values (as in ftp-proxy).
fn ldap_settings(global: &Context, errors: &mut Vec<(usize, String)>) -> Option<LdapSettings> {
    use options::Target;
    let given = |def: &options::OptionDef| global.get(def.name);
    if global.get("LDAPServer").is_none() {
        // SECURITY: UserAuthType ldap without a directory would be an
        // authentication requirement that is silently not enforced.
        for def in options::OPTIONS {
            if matches!(
                def.target,
                Target::Ldap(_) | Target::LdapAuth(_) | Target::AuthSwitch
            ) && let Some(s) = given(def)
            {
                errors.push((
                    s.line,
                    format!("{} has no effect without LDAPServer", def.name),
                ));
            }
        }
        return None;
    }
    let layers = Layers {
        layers: vec![global],
    };
    // Every field empty (version 0); the table sets them, defaults included.
    let mut ldap = LdapSettings {
        host: String::new(),
        port: 0,
        base_dn: String::new(),
        bind_dn: String::new(),
        bind_pw: String::new(),
        identifier: String::new(),
        object_class: None,
        version: 0,
        auth: None,
    };
    for def in options::OPTIONS {
        if let Target::Ldap(set) = def.target
            && let Some(value) = layers.value(def)
        {
            set(&mut ldap, value);
        }
    }
    if ldap.bind_dn.is_empty() && !ldap.bind_pw.is_empty() {
        let line = global.get("LDAPBindPW").map_or(0, |s| s.line);
        errors.push((
            line,
            "LDAPBindPW is given but LDAPBindDN is not".to_string(),
        ));
    }
    if global.get("UserAuthType").is_some() {
        // LDAPAuthDN's default is LDAPBaseDN; the rest start empty.
        let mut auth = LdapAuth {
            base_dn: ldap.base_dn.clone(),
            pw_attr: None,
            pw_scheme: options::PwScheme::Plain,
            pw_min_len: 0,
            ok_flag: None,
            magic: None,
        };
        for def in options::OPTIONS {
            if let Target::LdapAuth(set) = def.target
                && let Some(value) = layers.value(def)
            {
                set(&mut auth, value);
            }
        }
        ldap.auth = Some(auth);
    } else {
        for def in options::OPTIONS {
            if let Target::LdapAuth(_) = def.target
                && let Some(s) = given(def)
            {
                errors.push((
                    s.line,
                    format!("{} has no effect without UserAuthType ldap", def.name),
                ));
            }
        }
    }
    Some(ldap)
}

fn starts_with_ignore_case(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Fuzz and property-test entry point: parses `data` (lossily as UTF-8) as a
/// configuration file twice and checks both runs agree; a configuration
/// that parses gives its `-c` output and settings for any user. Panics only
/// when a check fails.
#[doc(hidden)]
pub fn check_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let first = Config::parse_str("fuzz.conf", &text);
    let second = Config::parse_str("fuzz.conf", &text);
    match (first, second) {
        (Ok(a), Ok(b)) => {
            assert!(a.normalised() == b.normalised(), "parse is deterministic");
            let _ = a.for_user(b"anonymous");
            let _ = a.for_user(data);
        }
        (Err(a), Err(b)) => {
            assert!(
                a.len() == b.len() && !a.is_empty(),
                "errors are deterministic"
            );
            for e in &a {
                let _ = e.to_string();
            }
        }
        _ => unreachable!("parse is not deterministic"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The non-comment text of Debian's /etc/proxy-suite/ftp-proxy.conf.
    const DEBIAN: &str = "[-Global-]\nDestinationAddress\tlocalhost\nGroup\t\t\tnogroup\nPort 2121\nUser\t\t\tnobody\n";

    fn ok(text: &str) -> Config {
        match Config::parse_str("test.conf", text) {
            Ok(c) => c,
            Err(e) => panic!("{text:?}: {e:?}"),
        }
    }

    fn errors(text: &str) -> Vec<(usize, String)> {
        match Config::parse_str("test.conf", text) {
            Ok(_) => panic!("{text:?} was accepted"),
            Err(e) => e.into_iter().map(|e| (e.line, e.message)).collect(),
        }
    }

    #[test]
    fn debians_configuration_parses_and_prints_like_ftp_proxy() {
        let c = ok(DEBIAN);
        assert_eq!(c.port, 2121);
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert_eq!(c.group.as_deref(), Some("nogroup"));
        assert_eq!(c.global.destination_address.as_deref(), Some("localhost"));
        let c = ok(&DEBIAN.replace('\n', "\r\n"));
        assert_eq!(c.port, 2121);
        // `ftp-proxy -c -f /etc/proxy-suite/ftp-proxy.conf`, with our file name.
        let want = "Config-File: 'test.conf'\n\
                    Config-Section ------ '(-global-)'\n\
                    Config:        DestinationAddress       = 'localhost'\n\
                    Config:        Group                    = 'nogroup'\n\
                    Config:        Port                     = '2121'\n\
                    Config:        User                     = 'nobody'\n";
        assert_eq!(ok(DEBIAN).normalised(), want);
    }

    #[test]
    fn defaults_are_those_of_the_spec() {
        let c = ok("DestinationAddress ftp.example.org");
        assert_eq!(c.server_type, ServerType::Inetd);
        assert_eq!(c.log_destination, LogDestination::Syslog("daemon".into()));
        assert_eq!(c.log_level, Level::Inf);
        assert_eq!(c.port, 21);
        assert_eq!(c.max_clients, 64);
        assert_eq!(c.max_clients_string, "Service not available");
        assert_eq!(c.fork_limit, 40);
        assert_eq!(c.welcome_string, "%h FTP server (%v - %b) ready");
        assert_eq!(c.deny_string, "Service not available");
        assert!(!c.allow_trans_proxy && !c.allow_magic_user && !c.force_magic_user);
        assert!(!c.tcp_wrapper && !c.sock_bind_rand);
        assert_eq!(c.user_magic_char, b'@');
        assert!(
            c.user_name_rule.is_match(b"anonymous") && c.user_name_rule.is_match(b"me@example.com")
        );
        assert!(!c.user_name_rule.is_match(b"a;b") && !c.user_name_rule.is_match(b"-x"));
        assert!(c.port_resets_pasv);
        assert!(!c.fail_resets_pasv);
        assert_eq!(c.max_recv_buf_size, None);
        assert_eq!(c.user, None);
        assert_eq!(c.server_root, None);
        let g = &c.global;
        assert_eq!(g.destination_port, 21);
        assert_eq!(g.destination_transfer_mode, TransferMode::Client);
        assert!(g.same_address);
        assert_eq!(g.timeout, 900);
        assert!(g.valid_commands.is_none() && g.allowed_destinations.is_none());
        assert!(g.active_ports.is_none() && g.passive_ports.is_none());
        assert!(g.destination_ports.is_none());
        assert!(c.users.is_empty());
        let l = ok(EVERY).ldap.unwrap();
        assert_eq!((l.identifier.as_str(), l.version), ("CN", 3));
        assert_eq!(l.base_dn, "");
        let a = l.auth.unwrap();
        assert_eq!((a.pw_scheme, a.pw_min_len), (options::PwScheme::Plain, 5));
        assert_eq!(a.base_dn, l.base_dn, "LDAPAuthDN defaults to LDAPBaseDN");
        let l = ok(&format!("{EVERY}LDAPBaseDN dc=x\n")).ldap.unwrap();
        assert_eq!(l.auth.unwrap().base_dn, "dc=x");
    }

    #[test]
    fn every_global_option_is_typed() {
        let c = ok(
            "DestinationAddress a\nServerType standalone\nUser u\nGroup g\n\
                    ServerRoot /var/empty\nLogDestination |logger\nLogLevel dbg\n\
                    PidFile /run/p\nListen 127.0.0.1\nPort ftp\nMaxClients 5\n\
                    MaxClientsString busy\nMaxClientsMessage /etc/busy\nForkLimit 7\n\
                    TCPWrapper on\nTCPWrapperName gate\nWelcomeString hi %h\n\
                    WelcomeMessage /etc/w\nDenyMessage /etc/d\nDenyString go\n\
                    AllowTransProxy true\nAllowMagicUser yes\nForceMagicUser YES\n\
                    UseMagicChar %\nUserNameRule ^[a-z]+$\nSockBindRand on\n\
                    TranslatedAddress 192.0.2.1\nPortResetsPasv no\nFailResetsPasv yes\n\
                    MaxRecvBufSize 4096\n",
        );
        assert_eq!(c.server_type, ServerType::Standalone);
        assert_eq!(c.server_root, Some(PathBuf::from("/var/empty")));
        assert_eq!(c.log_destination, LogDestination::Pipe("logger".into()));
        assert_eq!(c.log_level, Level::Dbg);
        assert_eq!(c.pid_file, Some(PathBuf::from("/run/p")));
        assert_eq!(c.listen.as_deref(), Some("127.0.0.1"));
        assert_eq!((c.port, c.max_clients, c.fork_limit), (21, 5, 7));
        assert_eq!(c.max_clients_string, "busy");
        assert_eq!(c.max_clients_message, Some(PathBuf::from("/etc/busy")));
        assert!(c.tcp_wrapper);
        assert_eq!(c.tcp_wrapper_name.as_deref(), Some("gate"));
        assert_eq!(c.welcome_string, "hi %h");
        assert_eq!(c.welcome_message, Some(PathBuf::from("/etc/w")));
        assert_eq!(c.deny_message, Some(PathBuf::from("/etc/d")));
        assert_eq!(c.deny_string, "go");
        assert!(c.allow_trans_proxy && c.allow_magic_user && c.force_magic_user);
        assert_eq!(c.user_magic_char, b'%');
        assert!(c.user_name_rule.is_match(b"abc") && !c.user_name_rule.is_match(b"A"));
        assert!(c.sock_bind_rand);
        assert_eq!(c.translated_address.as_deref(), Some("192.0.2.1"));
        assert!(!c.port_resets_pasv && c.fail_resets_pasv);
        assert_eq!(c.max_recv_buf_size, Some(4096));
    }

    #[test]
    fn option_and_section_names_are_case_insensitive() {
        let c = ok(
            "destinationaddress a\nPORT 2121\ntimeout = 5\n[BOB]\nTIMEOUT=7\n[-GLOBAL-]\nsameaddress No\n",
        );
        assert_eq!(c.port, 2121);
        assert_eq!(c.global.timeout, 5);
        assert!(!c.global.same_address);
        assert_eq!(c.for_user(b"bob").timeout, 7);
        assert_eq!(c.for_user(b"Bob").timeout, 7);
        assert!(!c.for_user(b"bob").same_address);
        assert_eq!(c.users[0].name, "bob");
    }

    #[test]
    fn the_most_specific_context_is_chosen() {
        let c = ok("DestinationAddress g\n\
                    [bob]\nDestinationAddress exact\n\
                    [bo*]\nDestinationAddress short\n\
                    [bob*]\nDestinationAddress long\n\
                    [al*]\nDestinationAddress al\n\
                    [*]\nDestinationAddress any\n\
                    [carol]\nTimeOut 5\n");
        let cases: [(&[u8], &str); 9] = [
            (b"bob", "exact"),
            (b"BOB", "exact"),
            (b"bobby", "long"),
            (b"Bobby", "long"),
            (b"bo", "short"),
            (b"boa", "short"),
            (b"alice", "al"),
            (b"zed", "any"),
            (b"carol", "g"),
        ];
        for (login, want) in cases {
            let got = c.for_user(login).destination_address.as_deref();
            assert_eq!(got, Some(want), "{}", String::from_utf8_lossy(login));
        }
        let c = ok("DestinationAddress g\n[bob]\nTimeOut 5\n[al*]\nTimeOut 6\n");
        let cases: [(&[u8], u64); 5] = [
            (b"bob", 5),
            (b"bobby", 900),
            (b"b", 900),
            (b"", 900),
            (b"al\xff", 6),
        ];
        for (login, want) in cases {
            assert_eq!(c.for_user(login).timeout, want);
        }
    }

    #[test]
    fn the_last_value_in_a_context_wins_and_user_values_override_global() {
        let c = ok(
            "DestinationAddress a\nDestinationAddress b\nTimeOut 10\nTimeOut 20\n\
                    DestinationPort 2121\n\
                    [bob]\nTimeOut 30\nTimeOut 40\nSameAddress no\n\
                    [-Global-]\nTimeOut 50\n\
                    [BOB]\nDestinationTransferMode passive\n",
        );
        assert_eq!(c.global.destination_address.as_deref(), Some("b"));
        assert_eq!(c.global.timeout, 50);
        let bob = c.for_user(b"bob");
        assert_eq!(bob.timeout, 40);
        assert!(!bob.same_address);
        assert_eq!(bob.destination_transfer_mode, TransferMode::Passive);
        // inherited from the global context, even when set after [bob]
        assert_eq!(bob.destination_address.as_deref(), Some("b"));
        assert_eq!(bob.destination_port, 2121);
        assert_eq!(c.users.len(), 1, "a repeated context merges into one");
    }

    #[test]
    fn port_ranges_are_resolved_across_contexts() {
        let c = ok(
            "DestinationAddress a\nPassiveMinDataPort 40000\nPassiveMaxDataPort 40100\n\
                    ActiveMinDataPort 20\n\
                    ActiveMaxDataPort 20\n\
                    [bob]\nPassiveMaxDataPort 40010\n\
                    DestinationMinPort 1024\nDestinationMaxPort 2048\n",
        );
        assert_eq!(
            c.global.passive_ports,
            Some(PortRange {
                min: 40000,
                max: 40100
            })
        );
        assert_eq!(c.global.active_ports, Some(PortRange { min: 20, max: 20 }));
        let bob = c.for_user(b"bob");
        assert_eq!(
            bob.passive_ports,
            Some(PortRange {
                min: 40000,
                max: 40010
            })
        );
        assert_eq!(
            bob.destination_ports,
            Some(PortRange {
                min: 1024,
                max: 2048
            })
        );
        assert_eq!(c.global.destination_ports, None);
    }

    #[test]
    fn client_tls_off_with_implicit_tls_is_an_error_at_its_line() {
        let got = errors(
            "DestinationAddress a\nClientTLS off\nClientTLSImplicit yes\n\
             TLSCertificateFile /c.pem\nTLSKeyFile /k.pem\n",
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, 2);
        assert!(got[0].1.contains("contradicts"), "{got:?}");
    }

    #[test]
    fn every_error_is_reported_with_its_line() {
        let text = "DestinationAddress a\n\
                    Foo bar\n\
                    Port 0\n\
                    MaxClients 513\n\
                    [bob]\n\
                    User root\n\
                    LDAPServer ldap://x\n\
                    TimeOut 0\n\
                    [-Global-]\n\
                    UserAuthType ldap\n\
                    UserNameRule (\n\
                    LogDestination nowhere\n\
                    Group\n\
                    [bad\n\
                    SameAddress perhaps\n\
                    PidFile run/pid\n";
        let got = errors(text);
        let lines: Vec<usize> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![2, 3, 4, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16]);
        let messages: Vec<&str> = got.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(messages[0], "unknown option 'Foo'");
        assert_eq!(messages[3], "User is allowed in the global context only");
        assert_eq!(
            messages[4],
            "LDAPServer is allowed in the global context only"
        );
        assert_eq!(messages[6], "UserAuthType has no effect without LDAPServer");
        assert!(messages[7].starts_with("UserNameRule: bad regular expression"));
    }

    const LDAP: &str = "DestinationAddress ftp.example.org\n\
                        DestinationPort 21\n\
                        LDAPServer 127.0.0.1:3389\n\
                        LDAPBaseDN ou=ftp,dc=example\n\
                        LDAPObjectClass FTPProxyUser\n";

    #[test]
    fn ldap_options_build_the_directory_settings() {
        let c = ok(&format!(
            "{LDAP}LDAPBindDN cn=%s,dc=example\nLDAPBindPW secret\nLDAPVersion 0\n\
             UserAuthType ldap\nLDAPAuthPWAttr userPassword\nLDAPAuthOKFlag ftpEnabled = yes\n\
             LDAPAuthPWType plain7\n"
        ));
        let l = c.ldap.clone().unwrap();
        assert_eq!((l.host.as_str(), l.port), ("127.0.0.1", 3389));
        assert_eq!(l.base_dn, "ou=ftp,dc=example");
        assert_eq!(l.identifier, "CN");
        assert_eq!(l.object_class.as_deref(), Some("FTPProxyUser"));
        assert_eq!(l.version, 3);
        let a = l.auth.unwrap();
        assert_eq!(a.base_dn, "ou=ftp,dc=example");
        assert_eq!(a.pw_attr.as_deref(), Some("userPassword"));
        assert_eq!(a.pw_min_len, 7);
        assert_eq!(a.ok_flag, Some(("ftpEnabled".into(), "yes".into())));
        assert!(c.destination_varies_by_user());
        assert!(ok("DestinationAddress a").ldap.is_none());
        let c = ok("DestinationAddress a\nLDAPServer ldap.example.org\n");
        assert_eq!(c.ldap.unwrap().port, 389);
    }

    #[test]
    fn ldap_options_without_their_prerequisites_are_errors() {
        let got = errors("DestinationAddress a\nLDAPBaseDN dc=x\nUserAuthType ldap\n");
        assert_eq!(
            got,
            vec![
                (2, "LDAPBaseDN has no effect without LDAPServer".to_string()),
                (
                    3,
                    "UserAuthType has no effect without LDAPServer".to_string()
                ),
            ]
        );
        let got = errors(&format!("{LDAP}LDAPAuthPWAttr userPassword\n"));
        assert_eq!(
            got,
            vec![(
                6,
                "LDAPAuthPWAttr has no effect without UserAuthType ldap".to_string()
            )]
        );
        // User contexts and a directory go together, as in ftp-proxy: the
        // entry over the login's context over the global context.
        let c = ok(&format!(
            "{LDAP}TimeOut 9\n[bob]\nTimeOut 5\nSameAddress no\n"
        ));
        assert!(c.ldap.is_some());
        assert_eq!(c.for_user(b"bob").timeout, 5);
        let s = c
            .settings_from_attributes(b"bob", &[("TimeOut", vec!["7"])])
            .unwrap();
        assert_eq!((s.timeout, s.same_address), (7, false));
        let s = c.settings_from_attributes(b"alice", &[]).unwrap();
        assert_eq!((s.timeout, s.same_address), (9, true));
        let got = errors(&format!("{LDAP}LDAPBindPW x\n"));
        assert_eq!(got[0].0, 6);
        let got = errors(&format!("{LDAP}UserAuthMagic @auth\n"));
        assert_eq!(
            got,
            vec![(
                6,
                "UserAuthMagic has no effect without UserAuthType ldap".to_string()
            )]
        );
        let c = ok(&format!("{LDAP}UserAuthType ldap\nUserAuthMagic auth@\n"));
        assert_eq!(
            c.ldap.unwrap().auth.unwrap().magic,
            Some(crate::policy::user::AuthMagic::AuthFirst)
        );
    }

    #[test]
    fn ldap_attributes_override_the_global_values_like_a_user_context() {
        let c = ok(&format!(
            "{LDAP}TimeOut 60\nPassiveMinDataPort 40000\nPassiveMaxDataPort 40100\n"
        ));
        let s = c
            .settings_from_attributes(
                b"someone",
                &[
                    ("cn", vec!["bob"]),
                    ("objectClass", vec!["top", "FTPProxyUser"]),
                    ("destinationport", vec!["2121"]),
                    ("ValidCommands", vec!["USER,PASS", "QUIT LIST"]),
                    ("PassiveMaxDataPort", vec!["40010"]),
                    ("Port", vec!["99"]),
                ],
            )
            .unwrap();
        assert_eq!(s.destination_port, 2121);
        assert_eq!(s.timeout, 60);
        assert_eq!(
            s.passive_ports,
            Some(PortRange {
                min: 40000,
                max: 40010
            })
        );
        let f = s.valid_commands.unwrap();
        assert!(f.allows(b"LIST") && f.allows(b"QUIT") && !f.allows(b"STOR"));
        assert_eq!(
            c.settings_from_attributes(b"someone", &[])
                .unwrap()
                .destination_port,
            21
        );
        let bad = [
            vec![("DestinationPort", vec!["0"])],
            vec![("TimeOut", vec!["5", "6"])],
            vec![("ValidCommands", vec!["FOO"])],
            vec![("PassiveMinDataPort", vec!["40200"])],
            vec![("SameAddress", vec!["perhaps"])],
        ];
        for attrs in bad {
            assert!(
                c.settings_from_attributes(b"someone", &attrs).is_err(),
                "{attrs:?}"
            );
        }
    }

    #[test]
    fn port_pair_errors_name_the_line() {
        let cases: [(&str, usize, &str); 5] = [
            (
                "DestinationAddress a\nActiveMinDataPort 2000\n",
                2,
                "ActiveMinDataPort is given but ActiveMaxDataPort is not",
            ),
            (
                "DestinationAddress a\nPassiveMaxDataPort 2000\n",
                2,
                "PassiveMaxDataPort is given but PassiveMinDataPort is not",
            ),
            (
                "DestinationAddress a\nDestinationMaxPort 10\nDestinationMinPort 20\n",
                3,
                "DestinationMinPort (20) is greater than DestinationMaxPort (10)",
            ),
            (
                "DestinationAddress a\n[bob]\nActiveMinDataPort 30\n",
                3,
                "ActiveMinDataPort is given but ActiveMaxDataPort is not",
            ),
            (
                "DestinationAddress a\nPassiveMinDataPort 100\nPassiveMaxDataPort 200\n\
                 [bob]\nPassiveMaxDataPort 50\n",
                5,
                "PassiveMinDataPort (100) is greater than PassiveMaxDataPort (50)",
            ),
        ];
        for (text, line, message) in cases {
            assert_eq!(errors(text), vec![(line, message.to_string())], "{text:?}");
        }
    }

    #[test]
    fn a_broken_global_port_pair_is_reported_once_not_per_user() {
        let text = "DestinationAddress a\nPassiveMinDataPort 100\n\
                    [bob]\nActiveMinDataPort 10\nActiveMaxDataPort 20\n\
                    [carol]\nTimeOut 5\n";
        assert_eq!(
            errors(text),
            vec![(
                2,
                "PassiveMinDataPort is given but PassiveMaxDataPort is not".to_string()
            )]
        );
    }

    #[test]
    fn a_missing_destination_address_is_an_error_for_the_whole_file() {
        let cases = ["", "# nothing\n", "[bob]\nDestinationAddress a\n"];
        for text in cases {
            assert_eq!(
                errors(text),
                vec![(
                    0,
                    "DestinationAddress is required in the global context".to_string()
                )]
            );
        }
        // A bad DestinationAddress is reported once, at its line.
        assert_eq!(
            errors("DestinationAddress a b\n"),
            vec![(
                1,
                "DestinationAddress: expected a host name or an IP address, not 'a b'".to_string()
            )]
        );
        let e = Config::parse_str("f.conf", "Port 1\nFoo 1\n")
            .err()
            .unwrap_or_default();
        let shown: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            vec![
                "f.conf: DestinationAddress is required in the global context",
                "f.conf:2: unknown option 'Foo'"
            ]
        );
    }

    #[test]
    fn normalised_output_lists_each_context_sorted() {
        let c = ok(
            "validcommands  USER,\\\n  PASS  \nDestinationAddress localhost\nTimeOut 5\n\
                    TimeOut 6\nUseMagicChar %\n\
                    [Bob*]\nTimeOut 7\ndestinationport ftp\n\
                    [alice]\nTimeOut 8\n[carol]\n[alice]\nSameAddress no\n",
        );
        let want = "Config-File: 'test.conf'\n\
                    Config-Section ------ '(-global-)'\n\
                    Config:        DestinationAddress       = 'localhost'\n\
                    Config:        TimeOut                  = '6'\n\
                    Config:        UserMagicChar            = '%'\n\
                    Config:        ValidCommands            = 'USER,PASS'\n\
                    Config-Section ------ 'alice'\n\
                    Config:        SameAddress              = 'no'\n\
                    Config:        TimeOut                  = '8'\n\
                    Config-Section ------ 'bob*'\n\
                    Config:        DestinationPort          = 'ftp'\n\
                    Config:        TimeOut                  = '7'\n\
                    Config-Section ------ 'carol'\n";
        assert_eq!(c.normalised(), want);
    }

    #[test]
    fn a_broken_file_still_names_its_log_destination() {
        let text = "DestinationAddress a\nLogDestination /var/log/x.log\nTimeOut soon\n\
                    [bob]\nLogDestination /tmp/bob.log\n";
        assert!(Config::parse_str("f", text).is_err());
        assert_eq!(
            log_destination_of(text),
            Some(LogDestination::File("/var/log/x.log".into()))
        );
        let text = "LogDestination local3\nLogDestination nowhere\nNoSuch 1\n";
        assert_eq!(
            log_destination_of(text),
            Some(LogDestination::Syslog("local3".into()))
        );
        assert_eq!(log_destination_of("NoSuch 1\n"), None);
    }

    #[test]
    fn load_reads_a_file_and_reports_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("ftpgate-config-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("ftpgate.conf");
        assert!(std::fs::write(&path, DEBIAN).is_ok());
        let loaded = Config::load(&path);
        assert!(std::fs::write(&path, b"DestinationAddress a\nWelcomeString \xff\n").is_ok());
        let bad = Config::load(&path);
        assert!(std::fs::write(&path, b"# f\xfcr\nDestinationAddress a\n").is_ok());
        let latin1_comment = Config::load(&path);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir(&dir);
        assert_eq!(loaded.map(|c| c.port).ok(), Some(2121));
        let bad = bad.err().unwrap_or_default();
        assert_eq!(bad.len(), 1);
        assert_eq!(
            (bad[0].line, bad[0].message.as_str()),
            (
                2,
                "not valid UTF-8 (only comment lines may use another encoding)"
            )
        );
        assert!(latin1_comment.is_ok(), "{latin1_comment:?}");
        let missing = Config::load(Path::new("/nonexistent/ftpgate.conf"));
        let missing = missing.err().unwrap_or_default();
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].line, 0);
        assert!(missing[0].message.starts_with("cannot open"));
    }

    /// The resolved values of `c` as text: everything but the lines as
    /// given (the contexts and the `-c` entries).
    fn resolved(c: &Config) -> String {
        let mut c = c.clone();
        c.entries.clear();
        c.global_context = Context::default();
        for user in &mut c.users {
            user.context = Context::default();
        }
        format!("{c:?}")
    }

    /// With a directory and authentication, so that every option counts.
    const EVERY: &str = "DestinationAddress a\nLDAPServer ldap0\nLDAPBindDN cn=base\n\
                         UserAuthType ldap\n";

    #[test]
    fn every_default_in_the_table_is_the_value_of_an_unset_option() {
        let unset = ok(EVERY);
        let mut checked = 0;
        for def in options::OPTIONS {
            let Some(default) = def.default else {
                continue;
            };
            let given = ok(&format!("{EVERY}{} {default}\n", def.name));
            assert_eq!(resolved(&given), resolved(&unset), "{}", def.name);
            if def.scope == options::Scope::User {
                let given = ok(&format!("{EVERY}[bob]\n{} {default}\n", def.name));
                assert_eq!(
                    format!("{:?}", given.for_user(b"bob")),
                    format!("{:?}", unset.global),
                    "{}",
                    def.name
                );
            }
            checked += 1;
        }
        assert!(checked > 0);
    }

    /// A line for every option that changes its field from the default
    /// (a Min/Max port pair is given whole).
    const SAMPLES: &[(&str, &str)] = &[
        (
            "ActiveMaxDataPort",
            "ActiveMinDataPort 20\nActiveMaxDataPort 30",
        ),
        (
            "ActiveMinDataPort",
            "ActiveMinDataPort 20\nActiveMaxDataPort 30",
        ),
        ("AllowedDestinations", "AllowedDestinations 192.0.2.0/24"),
        ("AllowMagicUser", "AllowMagicUser yes"),
        ("AllowTransProxy", "AllowTransProxy yes"),
        ("DenyMessage", "DenyMessage /etc/deny"),
        ("DenyString", "DenyString go away"),
        ("DestinationAddress", "DestinationAddress b"),
        (
            "DestinationMaxPort",
            "DestinationMinPort 1024\nDestinationMaxPort 2048",
        ),
        (
            "DestinationMinPort",
            "DestinationMinPort 1024\nDestinationMaxPort 2048",
        ),
        ("DestinationPort", "DestinationPort 2121"),
        ("DestinationTransferMode", "DestinationTransferMode passive"),
        ("FailResetsPasv", "FailResetsPasv yes"),
        ("ForceMagicUser", "ForceMagicUser yes"),
        ("ForkLimit", "ForkLimit 7"),
        ("Group", "Group g"),
        ("LDAPAuthDN", "LDAPAuthDN ou=auth"),
        ("LDAPAuthOKFlag", "LDAPAuthOKFlag ok=yes"),
        ("LDAPAuthPWAttr", "LDAPAuthPWAttr userPassword"),
        ("LDAPAuthPWType", "LDAPAuthPWType crypt"),
        ("LDAPBaseDN", "LDAPBaseDN dc=x"),
        ("LDAPBindDN", "LDAPBindDN cn=other"),
        ("LDAPBindPW", "LDAPBindPW secret"),
        ("LDAPIdentifier", "LDAPIdentifier uid"),
        ("LDAPObjectClass", "LDAPObjectClass ftpUser"),
        ("LDAPServer", "LDAPServer ldap1:3389"),
        ("LDAPVersion", "LDAPVersion 2"),
        ("Listen", "Listen 127.0.0.1"),
        ("LogDestination", "LogDestination local3"),
        ("LogLevel", "LogLevel dbg"),
        ("MaxClients", "MaxClients 5"),
        ("MaxClientsMessage", "MaxClientsMessage /etc/busy"),
        ("MaxClientsString", "MaxClientsString busy"),
        ("MaxDownloadRate", "MaxDownloadRate 500k"),
        ("MaxRecvBufSize", "MaxRecvBufSize 4096"),
        ("MaxUploadRate", "MaxUploadRate 2M"),
        (
            "PassiveMaxDataPort",
            "PassiveMinDataPort 40000\nPassiveMaxDataPort 40100",
        ),
        (
            "PassiveMinDataPort",
            "PassiveMinDataPort 40000\nPassiveMaxDataPort 40100",
        ),
        ("PidFile", "PidFile /run/p"),
        ("AuditLog", "AuditLog /var/log/ftpgate/audit.json"),
        ("XferLog", "XferLog /var/log/ftpgate/xferlog"),
        (
            "ClientTLS",
            "TLSCertificateFile /c\nTLSKeyFile /k\nClientTLS optional",
        ),
        (
            "ClientTLSImplicit",
            "TLSCertificateFile /c\nTLSKeyFile /k\nClientTLSImplicit yes",
        ),
        ("ClientTLSRequireReuse", "ClientTLSRequireReuse no"),
        ("ServerTLS", "ServerTLS auto"),
        ("ServerTLSCAFile", "ServerTLSCAFile /etc/ca.pem"),
        ("ServerTLSName", "ServerTLSName ftp.example"),
        ("ServerTLSProtection", "ServerTLSProtection clear"),
        ("ServerTLSVerify", "ServerTLSVerify no"),
        ("TLSCertificateFile", "TLSCertificateFile /c"),
        ("TLSKeyFile", "TLSKeyFile /k"),
        ("Port", "Port 2121"),
        ("PortResetsPasv", "PortResetsPasv no"),
        ("SameAddress", "SameAddress no"),
        ("ServerRoot", "ServerRoot /var/empty"),
        ("ServerType", "ServerType standalone"),
        ("SockBindRand", "SockBindRand yes"),
        ("TCPWrapper", "TCPWrapper yes"),
        ("TCPWrapperName", "TCPWrapperName gate"),
        ("TimeOut", "TimeOut 5"),
        ("TranslatedAddress", "TranslatedAddress 192.0.2.1"),
        ("User", "User u"),
        ("UserAuthMagic", "UserAuthMagic @auth"),
        ("UserMagicChar", "UserMagicChar %"),
        ("UserNameRule", "UserNameRule ^[a-z]+$"),
        ("ValidCommands", "ValidCommands USER,PASS"),
        ("WelcomeMessage", "WelcomeMessage /etc/w"),
        ("WelcomeString", "WelcomeString hi"),
    ];

    #[test]
    fn every_option_reaches_its_field() {
        let unset = ok(EVERY);
        for def in options::OPTIONS {
            if def.name == "ClientClass" {
                // No field: it names the classes (see the class tests).
                continue;
            }
            if def.name == "UserAuthType" {
                // No field of its own: it turns authentication on.
                let without = ok(&EVERY.replace("UserAuthType ldap\n", ""));
                assert!(without.ldap.is_some_and(|l| l.auth.is_none()));
                assert!(unset.ldap.as_ref().is_some_and(|l| l.auth.is_some()));
                continue;
            }
            let Some((_, sample)) = SAMPLES.iter().find(|(name, _)| *name == def.name) else {
                panic!("no sample line for {}", def.name);
            };
            let given = ok(&format!("{EVERY}{sample}\n"));
            assert_ne!(resolved(&given), resolved(&unset), "{}", def.name);
            if def.scope == options::Scope::User {
                let given = ok(&format!("{EVERY}[bob]\n{sample}\n"));
                assert_ne!(
                    format!("{:?}", given.for_user(b"bob")),
                    format!("{:?}", unset.global),
                    "{}",
                    def.name
                );
                assert_eq!(
                    format!("{:?}", given.global),
                    format!("{:?}", unset.global),
                    "{}",
                    def.name
                );
            }
        }
    }

    #[test]
    fn the_origin_of_a_value_is_its_line_and_context_or_the_default() {
        let c =
            ok("DestinationAddress a\nTimeOut 60\n[bob*]\nTimeOut 5\n[carol]\nSameAddress no\n");
        let at = |line, context| {
            Some(Origin {
                line: Some(line),
                context,
            })
        };
        let user = |name: &str| ContextName::User(name.to_string());
        assert_eq!(c.origin(b"bobby", "timeout"), at(4, user("bob*")));
        assert_eq!(c.origin(b"carol", "TimeOut"), at(2, ContextName::Global));
        assert_eq!(c.origin(b"carol", "SameAddress"), at(6, user("carol")));
        assert_eq!(
            c.origin(b"bob", "DestinationAddress"),
            at(1, ContextName::Global)
        );
        let default = Some(Origin {
            line: None,
            context: ContextName::Global,
        });
        assert_eq!(c.origin(b"bob", "SameAddress"), default);
        assert_eq!(c.origin(b"carol", "Port"), default);
        assert_eq!(c.origin(b"bob", "ValidCommands"), None);
        assert_eq!(c.origin(b"bob", "NoSuchOption"), None);
        assert_eq!(user("bob*").to_string(), "user bob*");
        assert_eq!(ContextName::Global.to_string(), "global");
    }

    proptest::proptest! {
        #[test]
        fn parse_str_never_panics(text in "(?s).{0,400}") {
            let _ = Config::parse_str("fuzz.conf", &text);
        }

        #[test]
        fn parse_str_never_panics_on_config_like_text(
            lines in proptest::collection::vec(
                "(\\[[a-z*-]{0,6}\\]|[A-Za-z]{1,20}[ =]{1,2}[ -~]{0,12}\\\\?|#.*|)",
                0..20,
            )
        ) {
            let text = lines.join("\n");
            let _ = Config::parse_str("fuzz.conf", &text);
            let with_dest = format!("DestinationAddress a\n{text}");
            if let Ok(c) = Config::parse_str("fuzz.conf", &with_dest) {
                let _ = c.normalised();
                let _ = c.for_user(b"bob");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn check_parse_holds_for_any_bytes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            super::check_parse(&data);
        }
    }

    // ----- client classes (SPEC 11) -----

    const CLASSES: &str = "DestinationAddress 198.51.100.7\n\
        ClientClass internal 10.0.0.0/8 192.168.0.0/16 fd00::/8\n\
        ClientClass partners 198.51.100.0/24 10.1.0.0/16\n\
        ValidCommands USER,PASS,RETR,QUIT\n\
        TimeOut 100\n\
        [-Class-internal-]\n\
        ValidCommands USER,PASS,RETR,STOR,QUIT\n\
        AllowMagicUser yes\n\
        TimeOut 200\n\
        [-Class-partners-]\n\
        SameAddress no\n\
        [bob]\n\
        TimeOut 300\n";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_first_client_class_line_in_file_order_wins() {
        let c = ok(CLASSES);
        let name = |a: &str| c.class_of(ip(a)).map(|k| k.name.clone());
        assert_eq!(name("10.1.2.3").as_deref(), Some("internal"));
        assert_eq!(name("198.51.100.9").as_deref(), Some("partners"));
        assert_eq!(name("::ffff:192.168.1.1").as_deref(), Some("internal"));
        assert_eq!(name("fd00::1").as_deref(), Some("internal"));
        assert_eq!(name("203.0.113.1"), None);
    }

    #[test]
    fn a_class_layers_between_global_and_user_contexts() {
        let c = ok(CLASSES).for_client(ip("10.9.9.9"));
        assert_eq!(c.class.as_deref(), Some("internal"));
        assert!(c.allow_magic_user);
        assert_eq!(c.global.timeout, 200);
        assert!(
            c.for_user(b"anyone")
                .valid_commands
                .as_ref()
                .is_some_and(|f| f.allows(b"STOR"))
        );
        // [bob] over the class over the global context.
        assert_eq!(c.for_user(b"bob").timeout, 300);
        assert!(
            c.for_user(b"bob")
                .valid_commands
                .as_ref()
                .is_some_and(|f| f.allows(b"STOR"))
        );
        let o = c.origin(b"anyone", "TimeOut").unwrap();
        assert_eq!(
            (o.line, o.context.to_string()),
            (Some(9), "class internal".to_string())
        );
        let outside = ok(CLASSES).for_client(ip("203.0.113.1"));
        assert_eq!(outside.class, None);
        assert!(!outside.allow_magic_user);
        assert!(
            !outside
                .for_user(b"x")
                .valid_commands
                .as_ref()
                .is_some_and(|f| f.allows(b"STOR"))
        );
        let partner = ok(CLASSES).for_client(ip("198.51.100.20"));
        assert!(!partner.global.same_address);
        assert!(!partner.allow_magic_user);
    }

    #[test]
    fn class_errors_name_their_line() {
        let e = errors(
            "DestinationAddress a\nClientClass lonely 10.0.0.0/8\n[-Class-ghost-]\nTimeOut 5\n",
        );
        assert!(
            e.iter()
                .any(|(l, m)| *l == 2 && m.contains("no [-Class-lonely-] context")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|(l, m)| *l == 3 && m.contains("no ClientClass line")),
            "{e:?}"
        );
        let e =
            errors("DestinationAddress a\nClientClass c 10.0.0.0/8\n[-Class-c-]\nUser nobody\n");
        assert!(
            e.iter()
                .any(|(l, m)| *l == 4 && m.contains("not allowed in a class context")),
            "{e:?}"
        );
        let e = errors("DestinationAddress a\nClientClass c 10.0.0.0/8:21\n[-Class-c-]\n");
        assert!(
            e.iter()
                .any(|(l, m)| *l == 2 && m.contains("not an address block")),
            "{e:?}"
        );
        let e = errors("DestinationAddress a\nClientClass c\n[-Class-c-]\n");
        assert!(e.iter().any(|(l, _)| *l == 2), "{e:?}");
    }

    #[test]
    fn check_output_lists_class_lines_and_contexts() {
        let out = ok(CLASSES).normalised();
        assert!(
            out.contains("Config-Section ------ '-Class-internal-'"),
            "{out}"
        );
        assert!(
            out.contains(
                "ClientClass              = 'internal 10.0.0.0/8 192.168.0.0/16 fd00::/8'"
            ),
            "{out}"
        );
        assert!(
            out.contains("ClientClass              = 'partners 198.51.100.0/24 10.1.0.0/16'"),
            "{out}"
        );
    }
}

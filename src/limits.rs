//! Every numeric bound of ftpgate, each with the reason for its value.
#![forbid(unsafe_code)]

/// Longest control line (command or reply line) we accept, CRLF included.
/// RFC 959 sets no limit; real paths stay far below 4 KiB, and ftp-proxy
/// used 4096 too. Longer client lines are refused with 500.
pub const MAX_LINE: usize = 4096;

/// Most lines in one multi-line server reply. Real FEAT/HELP/STAT replies
/// have a few dozen; a server that never ends its reply is cut off here.
pub const MAX_REPLY_LINES: usize = 1000;

/// Most client command lines buffered while an earlier one is still being
/// answered (pipelining). More than this and the client is not speaking FTP.
pub const MAX_QUEUED_COMMANDS: usize = 64;

/// Most complete server replies waiting to be read (during a transfer the
/// session takes the final reply only after the data ends). A server needs
/// a few (110 markers, the final reply); thousands mean it is not FTP.
pub const MAX_QUEUED_REPLIES: usize = 256;

/// Unsolicited server replies (other than 421) dropped in one session
/// before the session ends: a server answers each command once; one that
/// keeps talking out of turn is not speaking FTP.
pub const MAX_UNSOLICITED_REPLIES: u32 = 32;

/// Largest compiled regular expression (ValidCommands, UserNameRule), bytes.
/// Patterns compile once at start-up; this keeps a hostile or mistyped
/// pattern from eating memory.
pub const MAX_REGEX_SIZE: usize = 1 << 20;

/// Largest configuration file we read, bytes.
pub const MAX_CONFIG_SIZE: u64 = 1 << 20;

/// Most lines taken from WelcomeMessage/DenyMessage/MaxClientsMessage files.
pub const MAX_MESSAGE_LINES: usize = 100;

/// Most bytes read from one of those message files: 100 generous lines.
pub const MAX_MESSAGE_BYTES: u64 = 64 * 1024;

/// Seconds allowed for connecting to a server (control or data) and for the
/// server's greeting; an unreachable server must not hold the client long.
pub const CONNECT_TIMEOUT_SECS: u64 = 10;

/// Wait for the server's final reply after ftpgate cut a transfer short (or
/// could not set up its data connection): a live server answers at once,
/// and a silent one has just had TimeOut or the connect limit already.
pub const REPLY_AFTER_CUT_SECS: u64 = 3;

/// How long the sink of a finished TLS transfer stays open after our
/// close_notify, read and dropped, so that its peer's last records (TLS 1.3
/// tickets, its close_notify) never meet a closed socket and a reset that
/// could cost it the end of the data. Peers close at once; this bounds one
/// that does not.
pub const TLS_LINGER_SECS: u64 = 10;

/// Most finished TLS data connections lingering at once (see above).
pub const MAX_LINGERING: usize = 4;

/// A TLS handshake (control or data connection) must be done within this.
pub const TLS_HANDSHAKE_SECS: u64 = 10;

/// Size of each per-direction data relay buffer, bytes.
pub const DATA_BUFFER: usize = 64 * 1024;

/// Largest /etc/hosts or /etc/resolv.conf read before the jail, bytes.
/// Real files are a few KiB; the cache must not grow without bound.
pub const MAX_RESOLVER_FILE: usize = 1 << 20;

/// Largest /etc/passwd or /etc/group read to look up User and Group, bytes.
pub const MAX_ACCOUNTS_FILE: usize = 16 << 20;

/// Most /etc/hosts name entries cached for use inside the jail.
pub const MAX_HOSTS_ENTRIES: usize = 10_000;

/// Nameservers used from resolv.conf: glibc's MAXNS is 3 as well.
pub const MAX_NAMESERVERS: usize = 3;

/// Search domains used from resolv.conf (glibc's historical limit); each
/// costs a round of queries for a name without a dot.
pub const MAX_SEARCH_DOMAINS: usize = 6;

/// Seconds to wait for one DNS answer (also the cap on `options timeout:`):
/// a login that names a host must not hang the client for long.
pub const DNS_TIMEOUT_SECS: u64 = 3;

/// Seconds one name lookup may take in all (every nameserver, A and AAAA,
/// every search domain), so a login naming a host never hangs long.
pub const DNS_TOTAL_SECS: u64 = 10;

/// Largest DNS datagram read: RFC 1035 UDP answers are at most 512 bytes;
/// 1232 is the EDNS size commonly used, so a larger reply is still read.
pub const MAX_DNS_PACKET: usize = 1232;

/// Most answer records looked at in one DNS response.
pub const MAX_DNS_ANSWERS: usize = 64;
/// Size asked for the per-session splice(2) pipe between the two data
/// sockets, bytes. 1 MiB holds a few TCP windows on loopback, so one
/// wake-up moves a lot; it is kernel memory, not the process's RSS, and the
/// kernel may grant less (pipe-max-size), which still works.
pub const SPLICE_PIPE: usize = 1 << 20;

/// Most bytes one wake-up of the transfer loop moves before it polls again,
/// so the control connections (ABOR, server replies) are looked at regularly
/// even while both data sockets stay ready.
pub const MAX_BYTES_PER_WAKEUP: u64 = 4 << 20;

/// The most a paced transfer saves up while its source is idle. A
/// transfer starts with nothing saved (SPEC 14 would allow a first 64 KiB
/// unpaced; paced from the first byte, the average holds however a client
/// times it).
pub const RATE_BURST: u64 = 64 * 1024;

/// A paced transfer waits until it may read at least 1/RATE_WAKEUPS of a
/// second's worth (at most half of [`RATE_BURST`]): about this many wake-ups
/// per second, whatever the rate, instead of one per few bytes.
pub const RATE_WAKEUPS: u64 = 16;

/// Largest LDAP message read from the directory, bytes. A user profile is
/// a few hundred bytes; entries with photos or certificates stay well below.
pub const MAX_LDAP_MESSAGE: usize = 256 * 1024;

/// Seconds to wait for each read from the LDAP directory, and the most one
/// directory exchange (bind, search, unbind) may take in all is twice that:
/// a slow directory must not hold the login long.
pub const LDAP_TIMEOUT_SECS: u64 = 10;

/// Most entries a profile search may return: the identifier should be
/// unique, so more than one is refused instead of picking one at random.
pub const MAX_LDAP_ENTRIES: u32 = 1;

/// Failed proxy authentications (UserAuthType ldap) before the session is
/// closed, so one connection cannot try passwords without end.
pub const MAX_AUTH_FAILURES: u32 = 3;

/// Directory look-ups (one per USER with LDAPServer) in one session; each
/// opens a connection to the directory, so a client repeating USER must
/// not be able to keep the directory busy on its behalf.
pub const MAX_DIRECTORY_LOOKUPS: u32 = 10;

/// Destination look-ups (one per login that names or uses a destination,
/// Action::Resolve) in one session; each may cost DNS queries on the
/// client's behalf, so a client repeating USER cannot keep the resolver
/// busy without end. The same bound as for directory look-ups.
pub const MAX_DESTINATION_LOOKUPS: u32 = 10;

/// Seconds a session may take to log in (from its start to the server's
/// 230), whatever TimeOut says and however busy the client keeps it: an
/// unauthenticated client must not hold a session (and a server
/// connection) for long. Two minutes is plenty for a person typing.
pub const LOGIN_DEADLINE_SECS: u64 = 120;

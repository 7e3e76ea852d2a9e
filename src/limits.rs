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

/// Largest compiled regular expression (ValidCommands, UserNameRule), bytes.
/// Patterns compile once at start-up; this keeps a hostile or mistyped
/// pattern from eating memory.
pub const MAX_REGEX_SIZE: usize = 1 << 20;

/// Largest configuration file we read, bytes.
pub const MAX_CONFIG_SIZE: u64 = 1 << 20;

/// Most lines taken from WelcomeMessage/DenyMessage/MaxClientsMessage files.
pub const MAX_MESSAGE_LINES: usize = 100;

/// Seconds allowed for connecting to a server (control or data) and for the
/// server's greeting; an unreachable server must not hold the client long.
pub const CONNECT_TIMEOUT_SECS: u64 = 10;

/// Size of each per-direction data relay buffer, bytes.
pub const DATA_BUFFER: usize = 64 * 1024;

/// Size asked for the per-session splice(2) pipe between the two data
/// sockets, bytes. 1 MiB holds a few TCP windows on loopback, so one
/// wake-up moves a lot; it is kernel memory, not the process's RSS, and the
/// kernel may grant less (pipe-max-size), which still works.
pub const SPLICE_PIPE: usize = 1 << 20;

/// Most bytes one wake-up of the transfer loop moves before it polls again,
/// so the control connections (ABOR, server replies) are looked at regularly
/// even while both data sockets stay ready.
pub const MAX_BYTES_PER_WAKEUP: u64 = 4 << 20;

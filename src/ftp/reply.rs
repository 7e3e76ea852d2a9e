//! Server reply lines -> `Reply`, and reply builders; named reply codes.
//!
//! INTERFACE (keep signatures):
//! - `ReplyParser::new()`, `feed(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError>`:
//!   feed one line (no CRLF); returns a Reply when the line completes one (RFC 959 §4.2:
//!   "ddd text" single; "ddd-" starts multi-line ending at "ddd " with the same code; inner
//!   lines may be anything). Errors: first line not 3 digits + SP/'-'/end, more than
//!   `limits::MAX_REPLY_LINES` lines.
//! - `Reply { code, lines }`: `lines` are the raw lines as received without CRLF.
//!   `Reply::to_wire() -> Vec<u8>` joins them with CRLF. `Reply::text()` = text of the
//!   first line after the code. `is_preliminary` (1xx), `is_positive` (2xx), etc.
//! - `line(code, text) -> Vec<u8>`: "ddd text\r\n". `multi(code, first_lines: &[&[u8]], last: &[u8])`:
//!   "ddd-l1\r\n ... ddd last\r\n". Text with CR/LF is made safe (replaced by spaces).

pub const RESTART_MARKER: u16 = 110;
pub const DATA_OPEN_STARTING: u16 = 125;
pub const FILE_STATUS_OK: u16 = 150;
pub const COMMAND_OK: u16 = 200;
pub const NOT_IMPLEMENTED_SUPERFLUOUS: u16 = 202;
pub const SYSTEM_STATUS: u16 = 211;
pub const HELP: u16 = 214;
pub const SERVICE_READY: u16 = 220;
pub const CLOSING: u16 = 221;
pub const TRANSFER_COMPLETE: u16 = 226;
pub const ENTERING_PASSIVE: u16 = 227;
pub const ENTERING_EXT_PASSIVE: u16 = 229;
pub const LOGGED_IN: u16 = 230;
pub const FILE_ACTION_OK: u16 = 250;
pub const NEED_PASSWORD: u16 = 331;
pub const SERVICE_NOT_AVAILABLE: u16 = 421;
pub const CANT_OPEN_DATA: u16 = 425;
pub const TRANSFER_ABORTED: u16 = 426;
pub const SYNTAX_ERROR: u16 = 500;
pub const ARG_SYNTAX_ERROR: u16 = 501;
pub const NOT_IMPLEMENTED: u16 = 502;
pub const BAD_SEQUENCE: u16 = 503;
pub const NOT_IMPLEMENTED_FOR_ARG: u16 = 504;
pub const NOT_LOGGED_IN: u16 = 530;
pub const UNAVAILABLE: u16 = 550;
pub const EXT_PROTO_NOT_SUPPORTED: u16 = 522;

/// A complete reply as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    Malformed,
    TooManyLines,
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReplyError::Malformed => "malformed reply",
            ReplyError::TooManyLines => "reply has too many lines",
        })
    }
}

#[derive(Debug, Default)]
pub struct ReplyParser {}

impl ReplyParser {
    pub fn new() -> Self {
        ReplyParser {}
    }
    pub fn feed(&mut self, _line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        Err(ReplyError::Malformed)
    }
}

impl Reply {
    pub fn to_wire(&self) -> Vec<u8> {
        Vec::new()
    }
    pub fn text(&self) -> &[u8] {
        &[]
    }
    pub fn is_preliminary(&self) -> bool {
        self.code / 100 == 1
    }
    pub fn is_positive(&self) -> bool {
        self.code / 100 == 2
    }
    pub fn is_intermediate(&self) -> bool {
        self.code / 100 == 3
    }
}

pub fn line(_code: u16, _text: &[u8]) -> Vec<u8> {
    Vec::new()
}

pub fn multi(_code: u16, _first: &[&[u8]], _last: &[u8]) -> Vec<u8> {
    Vec::new()
}

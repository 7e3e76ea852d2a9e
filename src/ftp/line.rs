//! Control-connection bytes -> bounded lines.
//!
//! INTERFACE (helper fills in the body; keep these signatures):
//! - `LineBuffer::new()`, `push(&mut self, &[u8])`, `next_line(&mut self) -> Option<Line>`,
//!   `pending(&self) -> usize` (bytes of an incomplete line held).
//! - A line ends at LF (a CR before it is dropped). Telnet IAC sequences are removed
//!   (IAC IAC -> one 0xFF byte; IAC WILL/WONT/DO/DONT x -> nothing; IAC x -> nothing).
//! - A line longer than `limits::MAX_LINE` yields `Line::TooLong` once, and the rest of
//!   it up to the next LF is discarded. Memory held never exceeds MAX_LINE (+ a few bytes).

/// One result of splitting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A complete line without its CR LF, Telnet sequences removed.
    Complete(Vec<u8>),
    /// A line longer than the limit was cut off and discarded.
    TooLong,
}

/// Accumulates received bytes and hands out complete lines.
#[derive(Debug, Default)]
pub struct LineBuffer {}

impl LineBuffer {
    pub fn new() -> Self {
        LineBuffer {}
    }
    pub fn push(&mut self, _data: &[u8]) {}
    pub fn next_line(&mut self) -> Option<Line> {
        None
    }
    pub fn pending(&self) -> usize {
        0
    }
}

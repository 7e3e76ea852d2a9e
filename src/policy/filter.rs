//! ValidCommands: which commands, with which arguments, a user may send.
//!
//! INTERFACE (keep signatures):
//! - `CommandFilter::parse(value: &str) -> Result<CommandFilter, FilterError>`: entries
//!   separated by spaces and/or commas; each `VERB` or `VERB=REGEX`. VERB case-insensitive.
//!   REGEX is POSIX ERE (translated to the `regex` crate's bytes syntax where needed), with
//!   `%xx` hex escapes replaced by the byte before compiling; compiled with size limit
//!   `limits::MAX_REGEX_SIZE`. A verb given twice: the last one counts? -> both allowed if
//!   any pattern matches (document choice). Errors name the entry and why.
//! - `check(&self, verb: &[u8], arg: &[u8]) -> Verdict` (verb upper-case ASCII).
//! - `allows(&self, verb: &[u8]) -> bool`: verb present at all (for FEAT filtering).
//! - `Verdict::{Allow, CommandRefused, ArgumentRefused}`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    CommandRefused,
    ArgumentRefused,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub entry: String,
    pub reason: String,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValidCommands entry '{}': {}", self.entry, self.reason)
    }
}

#[derive(Debug, Clone)]
pub struct CommandFilter {}

impl CommandFilter {
    pub fn parse(_value: &str) -> Result<CommandFilter, FilterError> {
        Ok(CommandFilter {})
    }
    pub fn check(&self, _verb: &[u8], _arg: &[u8]) -> Verdict {
        Verdict::Allow
    }
    pub fn allows(&self, _verb: &[u8]) -> bool {
        true
    }
}

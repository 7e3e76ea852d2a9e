//! The FTP wire format, with no I/O: lines (`line`), commands (`command`),
//! replies and reply codes (`reply`), data addresses (`addr`), and the
//! escaping of peer bytes for logs (`text`). Every parser here states its
//! grammar and never panics, for any input.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod addr;
pub mod command;
pub mod line;
pub mod reply;
pub mod text;

pub use text::escape;

//! The FTP wire format, with no I/O: lines, commands, replies, addresses.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod addr;
pub mod command;
pub mod line;
pub mod reply;
pub mod text;

pub use text::escape;

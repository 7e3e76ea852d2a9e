//! Decisions, with no I/O: the command filter (`filter`), login names and
//! the magic user (`user`), client-chosen destinations (`dest`). Each check
//! that enforces a security property carries a `// SECURITY:` comment.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod data;
pub mod dest;
pub mod filter;
pub mod hosts;
pub mod user;

//! Decisions, with no I/O: the command filter, login names, destinations.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod data;
pub mod dest;
pub mod filter;
pub mod user;

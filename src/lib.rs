//! ftpgate: an application-level FTP proxy for Linux firewalls.
//!
//! The library holds everything; `main.rs` only maps the outcome of [`run`]
//! to an exit status. Start-up follows SPEC §1 top to bottom in [`run`].

pub mod cli;
pub mod config;
pub mod ftp;
pub mod limits;
pub mod policy;

//! Data addresses on the wire: PORT, EPRT, 227 and 229 (RFC 959, RFC 2428).
//!
//! INTERFACE (keep signatures; each parser never panics; formats round-trip):
//! - `parse_port(arg: &[u8]) -> Result<SocketAddrV4, AddrError>`: "h1,h2,h3,h4,p1,p2", each 0..=255 decimal.
//! - `format_port(SocketAddrV4) -> String`.
//! - `parse_eprt(arg: &[u8]) -> Result<SocketAddr, AddrError>`: "<d>1<d>a.b.c.d<d>port<d>" or
//!   "<d>2<d>v6addr<d>port<d>", d any printable ASCII 33..=126 not a digit; port 1..=65535.
//! - `format_eprt(SocketAddr) -> String`  ("|1|1.2.3.4|5|").
//! - `parse_227(text: &[u8]) -> Result<SocketAddrV4, AddrError>`: the text of a 227 reply after
//!   the code; six comma-separated numbers, in parentheses or not (RFC 1123 §4.1.2.6).
//! - `format_227(SocketAddrV4) -> Vec<u8>`: a whole reply line
//!   "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).\r\n".
//! - `parse_229(text: &[u8]) -> Result<u16, AddrError>`: "... (|||port|)" (any delimiter).
//! - `format_229(port: u16) -> Vec<u8>`: "229 Entering Extended Passive Mode (|||port|)\r\n".
//! - `parse_epsv_arg(arg: &[u8]) -> Result<EpsvArg, AddrError>`: "" | "1" | "2" | "ALL" (any case).

use std::net::{SocketAddr, SocketAddrV4};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrError {
    Malformed,
    UnsupportedFamily,
}

impl std::fmt::Display for AddrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddrError::Malformed => "malformed address",
            AddrError::UnsupportedFamily => "unsupported network protocol",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpsvArg {
    Any,
    V4,
    V6,
    All,
}

pub fn parse_port(_arg: &[u8]) -> Result<SocketAddrV4, AddrError> {
    Err(AddrError::Malformed)
}
pub fn format_port(_a: SocketAddrV4) -> String {
    String::new()
}
pub fn parse_eprt(_arg: &[u8]) -> Result<SocketAddr, AddrError> {
    Err(AddrError::Malformed)
}
pub fn format_eprt(_a: SocketAddr) -> String {
    String::new()
}
pub fn parse_227(_text: &[u8]) -> Result<SocketAddrV4, AddrError> {
    Err(AddrError::Malformed)
}
pub fn format_227(_a: SocketAddrV4) -> Vec<u8> {
    Vec::new()
}
pub fn parse_229(_text: &[u8]) -> Result<u16, AddrError> {
    Err(AddrError::Malformed)
}
pub fn format_229(_port: u16) -> Vec<u8> {
    Vec::new()
}
pub fn parse_epsv_arg(_arg: &[u8]) -> Result<EpsvArg, AddrError> {
    Err(AddrError::Malformed)
}

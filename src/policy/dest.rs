//! Destination safety (SPEC §6): where a client-chosen destination may go.
//!
//! INTERFACE (keep signatures):
//! - `parse_allowed(value: &str) -> Result<Vec<DestRule>, String>`: entries separated by
//!   spaces/commas: `a.b.c.d/len[:port|:lo-hi]`, `[v6::]/len[:port|:lo-hi]`, also a bare
//!   address without `/len` (= host route). Error text names the entry.
//! - `check(dest: SocketAddr, allowed: Option<&[DestRule]>, proxy_self: &[SocketAddr]) -> Result<(), Refusal>`:
//!   refuse `proxy_self` addresses+ports always (IPv4-mapped v6 treated as v4); with `allowed`
//!   None refuse loopback, link-local (169.254/16, fe80::/10), multicast, unspecified,
//!   broadcast; with `allowed` Some, allow exactly what a rule matches (address in block AND
//!   port in range).

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestRule {
    pub net: IpAddr,
    pub prefix: u8,
    pub ports: (u16, u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    ProxyItself,
    SpecialAddress,
    NotAllowed,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::ProxyItself => "destination is the proxy itself",
            Refusal::SpecialAddress => "destination address is not allowed (loopback, link-local, multicast or unspecified)",
            Refusal::NotAllowed => "destination is not in AllowedDestinations",
        })
    }
}

pub fn parse_allowed(_value: &str) -> Result<Vec<DestRule>, String> {
    Ok(Vec::new())
}

pub fn check(
    _dest: SocketAddr,
    _allowed: Option<&[DestRule]>,
    _proxy_self: &[SocketAddr],
) -> Result<(), Refusal> {
    Ok(())
}

//! Destination safety (SPEC §6): where a client-chosen destination (magic
//! user, transparent original destination) may go.
//!
//! Owns the AllowedDestinations grammar and the decision for one socket
//! address. It never resolves names (the caller checks every address a name
//! resolves to) and never judges DestinationAddress, which the administrator
//! chose.
//!
//! AllowedDestinations grammar:
//!
//! ```text
//! value   = *sep [ entry *( 1*sep entry ) ] *sep
//! sep     = SP / HTAB / ","
//! entry   = ":" ports                      ; any address not refused by default
//!         / v4 [ "/" len ] [ ":" ports ]
//!         / "[" v6 "]" [ "/" len ] [ ":" ports ]
//!         / v6 [ "/" len ]                  ; without brackets: no ports
//! len     = 1*3DIGIT                        ; 0..=32 (v4), 0..=128 (v6); absent = host
//! ports   = port / port "-" port            ; 1..=65535, low <= high; absent = all
//! ```
//!
//! Decisions:
//! - An address with bits set beyond its prefix (`192.0.2.1/24`) is an
//!   error, not silently widened: the administrator meant something else.
//! - IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are judged as IPv4, in
//!   destinations, in rules (`[::ffff:10.0.0.0]/104` is `10.0.0.0/8`) and in
//!   the proxy's own addresses: a client must not reach 127.0.0.1 by writing
//!   `::ffff:127.0.0.1`.
//! - Without AllowedDestinations these are refused: loopback (127.0.0.0/8,
//!   ::1), link-local (169.254.0.0/16, fe80::/10), multicast (224.0.0.0/4,
//!   ff00::/8), unspecified and "this network" (0.0.0.0/8, ::), the
//!   deprecated IPv4-compatible block ::/96, and the reserved 240.0.0.0/4
//!   with broadcast 255.255.255.255.
//!   Private ranges (10/8, 192.168/16, fc00::/7, ...) are not refused: a
//!   firewall proxy commonly serves internal servers. IPv4 embedded in
//!   NAT64 (64:ff9b::/96) or 6to4 (2002::/16) addresses is not looked into;
//!   an administrator who needs that tightness lists AllowedDestinations.
//! - With AllowedDestinations, exactly what a rule matches is allowed, the
//!   special addresses above included (`127.0.0.0/8` allows loopback; note
//!   that `0.0.0.0/0` allows it too). An entry of ports alone (`:21`,
//!   `:2100-2199`) restricts the port only: any address, IPv4 or IPv6,
//!   that is allowed without AllowedDestinations.
//! - Every address of the proxy's host (`host`: its interface addresses,
//!   not only loopback) is refused by default like loopback, since it
//!   reaches the firewall's services that listen on all addresses; an
//!   AllowedDestinations block that holds it allows it (an entry of ports
//!   alone does not).
//! - The proxy's own addresses (`proxy_self`) are refused always. An
//!   unspecified own address (a listener on `0.0.0.0` or `[::]`) stands for
//!   every local address, so with its port it refuses loopback and
//!   unspecified destinations. Callers pass the listening address and the
//!   local address of the client's control connection, and, as a listener
//!   on 0.0.0.0 answers on all of them, every address of the host at that
//!   port (`sys::transparent::proxy_self`); under TPROXY the local address
//!   is the original destination, so pass the listener only.
//!
//! Never panics, for any input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One AllowedDestinations entry: an address block and a port range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestRule {
    pub net: IpAddr,
    pub prefix: u8,
    pub ports: (u16, u16),
    /// An entry of ports alone: `net`/`prefix` are unused, and any address
    /// not refused by default matches.
    pub any_public: bool,
}

impl DestRule {
    /// The rule's address block holds `ip` (ports aside; an entry of
    /// ports alone holds no address).
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        !self.any_public && in_block(ip.to_canonical(), self.net, self.prefix)
    }
}

/// Why a destination is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    ProxyItself,
    SpecialAddress,
    /// An address of the proxy's own host (not loopback).
    HostAddress,
    NotAllowed,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::ProxyItself => "destination is the proxy itself",
            Refusal::SpecialAddress => "destination address is not allowed (loopback, link-local, multicast, reserved or unspecified)",
            Refusal::HostAddress => "destination is an address of the proxy host",
            Refusal::NotAllowed => "destination is not in AllowedDestinations",
        })
    }
}

/// Parses an AllowedDestinations value (see the module grammar). The error
/// names the first bad entry.
pub fn parse_allowed(value: &str) -> Result<Vec<DestRule>, String> {
    value
        .split([' ', '\t', ','])
        .filter(|e| !e.is_empty())
        .map(|e| parse_entry(e).map_err(|why| format!("AllowedDestinations entry '{e}': {why}")))
        .collect()
}

/// A decimal number of 1 to `max_digits` digits, the whole of `text`.
fn decimal(text: &str, max_digits: usize) -> Option<u32> {
    if text.is_empty() || text.len() > max_digits || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_port(text: &str) -> Result<u16, String> {
    decimal(text, 5)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("bad port '{text}' (1-65535)"))
}

fn parse_ports(text: &str) -> Result<(u16, u16), String> {
    match text.split_once('-') {
        None => parse_port(text).map(|p| (p, p)),
        Some((lo, hi)) => {
            let (lo, hi) = (parse_port(lo)?, parse_port(hi)?);
            if lo > hi {
                return Err(format!("port range {lo}-{hi} is empty"));
            }
            Ok((lo, hi))
        }
    }
}

fn parse_entry(entry: &str) -> Result<DestRule, String> {
    // `:21` is ports alone; `::1` or `::/0` is a bare IPv6 address.
    if let Some(ports) = entry.strip_prefix(':').filter(|p| !p.contains(':')) {
        return Ok(DestRule {
            net: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            prefix: 0,
            ports: parse_ports(ports)?,
            any_public: true,
        });
    }
    // Split into address, optional prefix, optional ports.
    let (addr, rest) = if let Some(inner) = entry.strip_prefix('[') {
        let (addr, rest) = inner
            .split_once(']')
            .ok_or_else(|| "missing ']'".to_string())?;
        let ip = addr
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("'{addr}' is not an IPv6 address"))?;
        (IpAddr::V6(ip), rest)
    } else if entry.matches(':').count() > 1 {
        // a bare IPv6 address: no ports
        let end = entry.find('/').unwrap_or(entry.len());
        let ip = entry[..end].parse::<Ipv6Addr>().map_err(|_| {
            format!(
                "'{}' is not an IPv6 address (write [v6]/len:port for ports)",
                &entry[..end]
            )
        })?;
        if entry[end..].contains(':') {
            return Err("ports need brackets: [v6]/len:port".to_string());
        }
        (IpAddr::V6(ip), &entry[end..])
    } else {
        let end = entry.find(['/', ':']).unwrap_or(entry.len());
        let ip = entry[..end]
            .parse::<Ipv4Addr>()
            .map_err(|_| format!("'{}' is not an IPv4 address", &entry[..end]))?;
        (IpAddr::V4(ip), &entry[end..])
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let (prefix, rest) = match rest.strip_prefix('/') {
        None => (max, rest),
        Some(r) => {
            let end = r.find(':').unwrap_or(r.len());
            let prefix = decimal(&r[..end], 3)
                .filter(|&p| p <= u32::from(max))
                .ok_or_else(|| format!("bad prefix length '/{}' (0-{max})", &r[..end]))?;
            (prefix as u8, &r[end..])
        }
    };
    let ports = match rest.strip_prefix(':') {
        None if rest.is_empty() => (1, u16::MAX),
        None => return Err(format!("unexpected '{rest}'")),
        Some(p) => parse_ports(p)?,
    };
    if mask(addr, prefix) != addr {
        return Err(format!(
            "address has bits set beyond /{prefix} (did you mean {}/{prefix}?)",
            mask(addr, prefix)
        ));
    }
    let (net, prefix) = canonical_block(addr, prefix);
    Ok(DestRule {
        net,
        prefix,
        ports,
        any_public: false,
    })
}

/// An IPv4-mapped block (`::ffff:a.b.c.d/96+n`) as the IPv4 block
/// `a.b.c.d/n`, so it is judged like the destinations it holds.
fn canonical_block(net: IpAddr, prefix: u8) -> (IpAddr, u8) {
    match net {
        IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), prefix - 96),
            None => (net, prefix),
        },
        _ => (net, prefix),
    }
}

/// `ip` with every bit beyond `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

/// Whether `ip` (canonical) lies in `net/prefix`.
fn in_block(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    ip.is_ipv4() == net.is_ipv4() && mask(ip, prefix) == mask(net, prefix)
}

/// Whether `dest` reaches the proxy through its own address `own`.
fn is_self(dest: SocketAddr, own: SocketAddr) -> bool {
    let (ip, own_ip) = (dest.ip().to_canonical(), own.ip().to_canonical());
    if dest.port() != own.port() {
        return false;
    }
    // A listener on 0.0.0.0 or [::] is reachable through every local
    // address; loopback and unspecified are local on every host.
    ip == own_ip || (own_ip.is_unspecified() && (ip.is_loopback() || ip.is_unspecified()))
}

/// Whether `ip` (canonical) is one of the addresses refused by default.
pub(crate) fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            // SECURITY: loopback reaches services bound to localhost only.
            v4.is_loopback()
            // SECURITY: link-local holds cloud metadata (169.254.169.254).
                || v4.is_link_local()
            // SECURITY: multicast and broadcast are not one server; the rest
            // of 240.0.0.0/4 is reserved and never a server either.
                || v4.is_multicast()
                || v4.octets()[0] >= 240
            // SECURITY: 0.0.0.0/8 ("this network"); Linux connects 0.0.0.0 to
            // the local host.
                || v4.octets()[0] == 0
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            // SECURITY: loopback ::1 and unspecified :: (local host), and the
            // deprecated IPv4-compatible ::a.b.c.d, which some stacks map to
            // IPv4 (::127.0.0.1).
            bits >> 32 == 0
            // SECURITY: link-local fe80::/10 (on-link neighbours, metadata).
                || (v6.segments()[0] & 0xffc0) == 0xfe80
            // SECURITY: multicast ff00::/8 is not one server.
                || v6.is_multicast()
        }
    }
}

/// Decides whether a client may choose `dest`. `allowed` is the
/// AllowedDestinations list (None: not configured); `proxy_self` the
/// proxy's own listening addresses; `host` every address of the proxy's
/// host (its interfaces). See the module docs.
pub fn check(
    dest: SocketAddr,
    allowed: Option<&[DestRule]>,
    proxy_self: &[SocketAddr],
    host: &[IpAddr],
) -> Result<(), Refusal> {
    // SECURITY: a destination that is the proxy itself would make it
    // connect to itself, over and over (a loop); refused even when an
    // allow-list names the address.
    if proxy_self.iter().any(|&own| is_self(dest, own)) {
        return Err(Refusal::ProxyItself);
    }
    // SECURITY: mapped addresses are judged as what they reach, so
    // ::ffff:127.0.0.1 is loopback.
    let ip = dest.ip().to_canonical();
    // SECURITY: any address of the proxy's host reaches the firewall's own
    // services (those listening on all addresses) as loopback does.
    let own = host.iter().any(|h| h.to_canonical() == ip);
    match allowed {
        None => {
            // SECURITY: without an allow-list, clients cannot reach the
            // firewall's own services, link-local metadata or multicast.
            if is_special(ip) {
                return Err(Refusal::SpecialAddress);
            }
            if own {
                return Err(Refusal::HostAddress);
            }
            Ok(())
        }
        Some(rules) => {
            // SECURITY: with an allow-list, only what it names.
            let port = dest.port();
            let ok = rules.iter().any(|r| {
                let (net, prefix) = canonical_block(r.net, r.prefix);
                let addr_ok = if r.any_public {
                    !is_special(ip) && !own
                } else {
                    in_block(ip, net, prefix)
                };
                addr_ok && r.ports.0 <= port && port <= r.ports.1
            });
            if ok { Ok(()) } else { Err(Refusal::NotAllowed) }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn rule(net: &str, prefix: u8, ports: (u16, u16)) -> DestRule {
        DestRule {
            net: net.parse().unwrap(),
            prefix,
            ports,
            any_public: false,
        }
    }

    #[test]
    fn allowed_destinations_parse_into_blocks_and_port_ranges() {
        let cases: &[(&str, Vec<DestRule>)] = &[
            ("", vec![]),
            ("192.0.2.0/24:21", vec![rule("192.0.2.0", 24, (21, 21))]),
            ("[2001:db8::]/32", vec![rule("2001:db8::", 32, (1, 65535))]),
            (
                "127.0.0.1/32:2100",
                vec![rule("127.0.0.1", 32, (2100, 2100))],
            ),
            ("10.0.0.1", vec![rule("10.0.0.1", 32, (1, 65535))]),
            ("10.0.0.1:20-21", vec![rule("10.0.0.1", 32, (20, 21))]),
            ("[::1]:21", vec![rule("::1", 128, (21, 21))]),
            ("::1", vec![rule("::1", 128, (1, 65535))]),
            ("::/0", vec![rule("::", 0, (1, 65535))]),
            ("2001:db8::/32", vec![rule("2001:db8::", 32, (1, 65535))]),
            ("0.0.0.0/0", vec![rule("0.0.0.0", 0, (1, 65535))]),
            (
                "[::ffff:10.0.0.0]/104:21",
                vec![rule("10.0.0.0", 8, (21, 21))],
            ),
            (
                "10.0.0.0/8, 192.0.2.0/24:21,[2001:db8::]/32:1024-65535",
                vec![
                    rule("10.0.0.0", 8, (1, 65535)),
                    rule("192.0.2.0", 24, (21, 21)),
                    rule("2001:db8::", 32, (1024, 65535)),
                ],
            ),
        ];
        for (value, want) in cases {
            assert_eq!(&parse_allowed(value).unwrap(), want, "value {value}");
        }
    }

    #[test]
    fn ports_alone_allow_any_address_not_refused_by_default_at_those_ports() {
        let rules = parse_allowed(":21 :2100-2199").unwrap();
        assert!(rules.iter().all(|r| r.any_public));
        let allowed = Some(rules.as_slice());
        for ok in ["192.0.2.7:21", "[2001:db8::1]:2150", "10.1.2.3:2199"] {
            assert_eq!(check(sa(ok), allowed, &[], &[]), Ok(()), "{ok}");
        }
        for no in [
            "192.0.2.7:22",
            "127.0.0.1:21",
            "[::ffff:127.0.0.1]:21",
            "169.254.169.254:21",
            "[::1]:2100",
        ] {
            assert_eq!(
                check(sa(no), allowed, &[], &[]),
                Err(Refusal::NotAllowed),
                "{no}"
            );
        }
        assert!(parse_allowed(":").is_err());
        assert!(parse_allowed(":0").is_err());
    }

    #[test]
    fn bad_allowed_destinations_name_the_entry() {
        let cases: &[(&str, &str)] = &[
            (
                "10.0.0.0/8 192.0.2.1/24",
                "'192.0.2.1/24': address has bits set beyond /24 (did you mean 192.0.2.0/24?)",
            ),
            ("10.0.0.0/33", "bad prefix length"),
            ("[::]/129", "bad prefix length"),
            ("10.0.0.0/8:0", "bad port"),
            ("10.0.0.0/8:65536", "bad port"),
            ("10.0.0.0/8:22-21", "empty"),
            ("10.0.0.0/8:", "bad port"),
            ("host.example.org", "not an IPv4 address"),
            ("[2001:db8::", "missing ']'"),
            ("[10.0.0.1]", "not an IPv6 address"),
            ("2001:db8::/32:21", "ports need brackets"),
            ("[::1]x", "unexpected"),
            ("10.0.0.0/", "bad prefix length"),
        ];
        for (value, want) in cases {
            let e = parse_allowed(value).unwrap_err();
            assert!(e.contains(want), "value {value}: {e}");
            assert!(e.starts_with("AllowedDestinations entry '"), "{e}");
        }
    }

    #[test]
    fn without_a_list_special_addresses_are_refused() {
        let refused = [
            "127.0.0.1:21",
            "127.255.0.1:21",
            "[::1]:21",
            "[::ffff:127.0.0.1]:21",
            "169.254.169.254:80",
            "[::ffff:169.254.169.254]:80",
            "[fe80::1]:21",
            "[febf::1]:21",
            "224.0.0.1:21",
            "239.1.1.1:21",
            "[ff02::1]:21",
            "0.0.0.0:21",
            "0.1.2.3:21",
            "[::]:21",
            "[::127.0.0.1]:21",
            "255.255.255.255:21",
            "240.0.0.1:21",
            "250.1.2.3:21",
        ];
        for d in refused {
            assert_eq!(
                check(sa(d), None, &[], &[]),
                Err(Refusal::SpecialAddress),
                "{d}"
            );
        }
        let allowed = [
            "192.0.2.1:21",
            "223.255.255.254:21",
            "10.0.0.1:21",
            "[2001:db8::1]:21",
            "[fec0::1]:21",
            "[::ffff:192.0.2.1]:21",
        ];
        for d in allowed {
            assert_eq!(check(sa(d), None, &[], &[]), Ok(()), "{d}");
        }
    }

    #[test]
    fn with_a_list_exactly_what_it_matches_is_allowed() {
        let rules = parse_allowed("192.0.2.0/24:21 127.0.0.0/8:2100-2200 [2001:db8::]/32").unwrap();
        let cases: &[(&str, Result<(), Refusal>)] = &[
            ("192.0.2.7:21", Ok(())),
            ("[::ffff:192.0.2.7]:21", Ok(())),
            ("192.0.2.7:22", Err(Refusal::NotAllowed)),
            ("192.0.3.7:21", Err(Refusal::NotAllowed)),
            ("127.0.0.1:2100", Ok(())),
            ("127.0.0.1:2200", Ok(())),
            ("127.0.0.1:2201", Err(Refusal::NotAllowed)),
            ("127.0.0.1:21", Err(Refusal::NotAllowed)),
            ("[2001:db8:1::5]:21", Ok(())),
            ("[2001:db9::5]:21", Err(Refusal::NotAllowed)),
            ("[::1]:2100", Err(Refusal::NotAllowed)),
            ("169.254.169.254:80", Err(Refusal::NotAllowed)),
        ];
        for (d, want) in cases {
            assert_eq!(check(sa(d), Some(&rules), &[], &[]), *want, "{d}");
        }
        assert_eq!(
            check(sa("192.0.2.7:21"), Some(&[]), &[], &[]),
            Err(Refusal::NotAllowed)
        );
    }

    #[test]
    fn the_proxy_itself_is_refused_always() {
        let all = parse_allowed("0.0.0.0/0 [::]/0").unwrap();
        let cases: &[(&str, &[&str])] = &[
            ("192.0.2.1:21", &["192.0.2.1:21"]),
            ("[::ffff:192.0.2.1]:21", &["192.0.2.1:21"]),
            ("192.0.2.1:21", &["[::ffff:192.0.2.1]:21"]),
            ("127.0.0.1:2121", &["0.0.0.0:2121"]),
            ("127.0.0.1:2121", &["[::]:2121"]),
            ("[::1]:2121", &["0.0.0.0:2121"]),
            ("0.0.0.0:2121", &["0.0.0.0:2121"]),
            ("127.0.0.1:2121", &["127.0.0.1:2121"]),
        ];
        for (d, own) in cases {
            let own: Vec<SocketAddr> = own.iter().map(|s| sa(s)).collect();
            assert_eq!(
                check(sa(d), Some(&all), &own, &[]),
                Err(Refusal::ProxyItself),
                "{d}"
            );
            assert_eq!(
                check(sa(d), None, &own, &[]),
                Err(Refusal::ProxyItself),
                "{d}"
            );
        }
        // same address, other port; other address, same port
        let own = [sa("192.0.2.1:21"), sa("0.0.0.0:2121")];
        assert_eq!(check(sa("192.0.2.1:2121"), None, &own, &[]), Ok(()));
        assert_eq!(check(sa("192.0.2.2:21"), None, &own, &[]), Ok(()));
        assert_eq!(check(sa("127.0.0.1:2122"), Some(&all), &own, &[]), Ok(()));
    }

    #[test]
    fn the_hosts_own_addresses_are_refused_unless_a_rule_names_them() {
        let host: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        for d in [
            "192.0.2.1:22",
            "[::ffff:192.0.2.1]:8080",
            "[2001:db8::1]:21",
        ] {
            assert_eq!(
                check(sa(d), None, &[], &host),
                Err(Refusal::HostAddress),
                "{d}"
            );
        }
        assert_eq!(check(sa("192.0.2.2:22"), None, &[], &host), Ok(()));
        // a block that holds the address allows it, as for loopback
        let named = parse_allowed("192.0.2.1:22 [2001:db8::]/32").unwrap();
        assert_eq!(check(sa("192.0.2.1:22"), Some(&named), &[], &host), Ok(()));
        assert_eq!(
            check(sa("[2001:db8::1]:21"), Some(&named), &[], &host),
            Ok(())
        );
        assert_eq!(
            check(sa("192.0.2.1:23"), Some(&named), &[], &host),
            Err(Refusal::NotAllowed)
        );
        // ports alone allow only what is allowed without a list
        let ports = parse_allowed(":1-65535").unwrap();
        assert_eq!(
            check(sa("192.0.2.1:22"), Some(&ports), &[], &host),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(check(sa("192.0.2.2:22"), Some(&ports), &[], &host), Ok(()));
    }

    proptest! {
        #[test]
        fn parse_allowed_never_panics(v in "[0-9a-f:.\\[\\]/, -]{0,40}") {
            let _ = parse_allowed(&v);
        }

        #[test]
        fn a_host_rule_allows_its_address_and_nothing_else(a in any::<u32>(), b in any::<u32>(), port in 1u16..) {
            let ip = Ipv4Addr::from(a);
            let rules = parse_allowed(&format!("{ip}:{port}")).unwrap();
            prop_assert_eq!(check(SocketAddr::new(ip.into(), port), Some(&rules), &[], &[]), Ok(()));
            if a != b {
                let other = SocketAddr::new(Ipv4Addr::from(b).into(), port);
                prop_assert_eq!(check(other, Some(&rules), &[], &[]), Err(Refusal::NotAllowed));
            }
        }
    }
}

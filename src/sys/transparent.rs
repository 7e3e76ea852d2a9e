//! The original destination of a connection that netfilter redirected
//! (iptables/nftables REDIRECT or DNAT to the proxy): SO_ORIGINAL_DST for
//! IPv4, IP6T_SO_ORIGINAL_DST for IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;

use nix::sys::socket::{getsockopt, sockopt};

/// The address the client originally connected to, when it differs from the
/// socket's local address (the connection was redirected); None otherwise,
/// and when the kernel has no conntrack entry for the connection.
pub fn original_destination<F: AsFd>(fd: &F, local: SocketAddr) -> Option<SocketAddr> {
    if let SocketAddr::V6(v6) = local
        && v6.ip().to_ipv4_mapped().is_some()
    {
        return None;
    }
    let orig = match local {
        SocketAddr::V4(_) => getsockopt(fd, sockopt::OriginalDst).ok().map(|sin| {
            SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))),
                u16::from_be(sin.sin_port),
            )
        }),
        SocketAddr::V6(_) => getsockopt(fd, sockopt::Ip6tOriginalDst).ok().map(|sin6| {
            SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)),
                u16::from_be(sin6.sin6_port),
            )
        }),
    }?;
    let orig = super::net::canonical(orig);
    (orig != super::net::canonical(local)).then_some(orig)
}

/// True when `ip` is one of this host's (this network namespace's) own
/// addresses, on any interface. Read before the jail; false when the
/// interface list cannot be read.
pub fn is_own_address(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    if ip.is_loopback() || ip.is_unspecified() {
        return true;
    }
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return false;
    };
    addrs
        .filter_map(|ifa| ifa.address)
        .filter_map(|a| super::net::to_std(&a))
        .any(|a| a.ip().to_canonical() == ip)
}

/// Every address of this host's (this network namespace's) interfaces,
/// canonical: what a client-chosen destination may not be unless
/// AllowedDestinations names it. Read before the jail; empty when the
/// interface list cannot be read (loopback is refused anyway).
pub fn own_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut own: Vec<IpAddr> = addrs
        .filter_map(|ifa| ifa.address)
        .filter_map(|a| super::net::to_std(&a))
        .map(|a| a.ip().to_canonical())
        .collect();
    own.sort_unstable();
    own.dedup();
    own
}

/// The addresses a client-chosen destination must not name at the
/// proxy's port `local`: `local` itself, and, because a listener on
/// 0.0.0.0 or [::] answers on every address of the host, the unspecified
/// addresses (which `policy::dest` reads as loopback too) and every
/// interface address at the same port. Read before the jail.
pub fn proxy_self(local: SocketAddr) -> Vec<SocketAddr> {
    let port = local.port();
    let mut own = vec![
        super::net::canonical(local),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
    ];
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        own.extend(
            addrs
                .filter_map(|ifa| ifa.address)
                .filter_map(|a| super::net::to_std(&a))
                .map(|a| SocketAddr::new(a.ip().to_canonical(), port)),
        );
    }
    own
}

/// A redirect loop: the original destination is this host at the port the
/// proxy was reached on, so connecting there would reach the proxy again.
pub fn is_loop(orig: SocketAddr, local: SocketAddr) -> bool {
    orig.port() == local.port() && is_own_address(orig.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_unspecified_are_own_addresses() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "0.0.0.0",
            "::",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_own_address(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn documentation_addresses_are_not_own_addresses() {
        // TEST-NET-3 and 2001:db8::/32 are never assigned to real hosts.
        for ip in ["203.0.113.77", "2001:db8::77"] {
            assert!(!is_own_address(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn a_loop_is_an_own_address_at_the_proxys_port() {
        let local: SocketAddr = "10.0.0.1:2121".parse().unwrap();
        assert!(is_loop("127.0.0.1:2121".parse().unwrap(), local));
        assert!(!is_loop("127.0.0.1:21".parse().unwrap(), local));
        assert!(!is_loop("203.0.113.77:2121".parse().unwrap(), local));
    }

    #[test]
    fn a_connection_that_was_not_redirected_has_no_original_destination() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        // No NAT: either no conntrack entry, or one whose original
        // destination is the local address itself.
        assert_eq!(original_destination(&s, s.local_addr().unwrap()), None);
        drop(c);
    }
}

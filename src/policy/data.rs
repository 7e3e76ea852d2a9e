//! Data-connection policy: bounce and theft protection (SameAddress).
//!
//! Pure decisions on addresses; never opens a socket.

use std::net::{IpAddr, SocketAddr};

/// Why a data address or peer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataRefusal {
    /// PORT/EPRT (or a server's 227/229) names a host other than the peer.
    ForeignAddress,
    /// PORT/EPRT names a privileged port (< 1024).
    PrivilegedPort,
    /// With SameAddress no: a third host that is loopback, link-local,
    /// multicast, unspecified or one of the proxy host's own addresses.
    SpecialAddress,
}

impl std::fmt::Display for DataRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DataRefusal::ForeignAddress => "address is not the peer's own address",
            DataRefusal::PrivilegedPort => "port below 1024",
            DataRefusal::SpecialAddress => {
                "address is loopback, link-local, multicast, unspecified or the proxy host's own"
            }
        })
    }
}

/// IPv4-mapped IPv6 counts as the IPv4 address it is.
fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// SECURITY: a third host the proxy must never exchange data with, even
/// with SameAddress no: the firewall's own services (loopback, its own
/// interface addresses), link-local metadata, multicast, unspecified.
fn forbidden_third(ip: IpAddr, host: &[IpAddr]) -> bool {
    let ip = ip.to_canonical();
    super::dest::is_special(ip) || host.iter().any(|h| h.to_canonical() == ip)
}

/// The rule for an address the proxy is to connect to, named by `peer`
/// (the client's PORT/EPRT or the server's 227/229). `host` holds the
/// proxy host's own addresses.
fn check_target(
    target: SocketAddr,
    peer: IpAddr,
    same_address: bool,
    host: &[IpAddr],
) -> Result<(), DataRefusal> {
    if !same_host(target.ip(), peer) {
        // SECURITY: FTP bounce: the proxy must not connect to a third host
        // (SameAddress yes) ...
        if same_address {
            return Err(DataRefusal::ForeignAddress);
        }
        // SECURITY: ... and with SameAddress no (third-party transfers),
        // never to the firewall itself or a special address.
        if forbidden_third(target.ip(), host) {
            return Err(DataRefusal::SpecialAddress);
        }
    }
    // SECURITY: a privileged port is a service (rsh, smtp), not an FTP
    // data port, whatever SameAddress says.
    if target.port() < 1024 {
        return Err(DataRefusal::PrivilegedPort);
    }
    Ok(())
}

/// May the proxy connect to `target`, which the client named in PORT/EPRT?
/// `host`: the proxy host's own addresses.
pub fn check_client_port(
    target: SocketAddr,
    client: IpAddr,
    same_address: bool,
    host: &[IpAddr],
) -> Result<(), DataRefusal> {
    check_target(target, client, same_address, host)
}

/// May the proxy connect to `target`, which the server named in 227/229?
/// `host`: the proxy host's own addresses.
pub fn check_server_passive(
    target: SocketAddr,
    server: IpAddr,
    same_address: bool,
    host: &[IpAddr],
) -> Result<(), DataRefusal> {
    // SECURITY: a malicious server must not make the proxy connect to a
    // third host (server-side bounce): the same rule as for the client.
    check_target(target, server, same_address, host)
}

/// May a data connection from `from` be used, when `expected` is the peer?
/// `host`: the proxy host's own addresses.
pub fn check_data_peer(
    from: IpAddr,
    expected: IpAddr,
    same_address: bool,
    host: &[IpAddr],
) -> Result<(), DataRefusal> {
    if same_host(from, expected) {
        return Ok(());
    }
    // SECURITY: data-port theft: only the peer itself may connect to a
    // listener we opened for it.
    if same_address {
        return Err(DataRefusal::ForeignAddress);
    }
    // SECURITY: with SameAddress no, a third host may, but not a process
    // on the firewall itself or a special address.
    if forbidden_third(from, host) {
        return Err(DataRefusal::SpecialAddress);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn client_port_must_name_the_client_and_an_unprivileged_port() {
        let c = ip("192.0.2.7");
        assert_eq!(
            check_client_port(sa("192.0.2.7:2000"), c, true, &[]),
            Ok(())
        );
        assert_eq!(
            check_client_port(sa("192.0.2.8:2000"), c, true, &[]),
            Err(DataRefusal::ForeignAddress)
        );
        assert_eq!(
            check_client_port(sa("192.0.2.7:25"), c, true, &[]),
            Err(DataRefusal::PrivilegedPort)
        );
        assert_eq!(
            check_client_port(sa("192.0.2.8:2000"), c, false, &[]),
            Ok(())
        );
    }

    #[test]
    fn mapped_ipv6_client_counts_as_its_ipv4_address() {
        assert_eq!(
            check_client_port(sa("192.0.2.7:2000"), ip("::ffff:192.0.2.7"), true, &[]),
            Ok(())
        );
    }

    #[test]
    fn server_passive_address_must_be_the_server() {
        let s = ip("198.51.100.1");
        assert_eq!(
            check_server_passive(sa("198.51.100.1:40000"), s, true, &[]),
            Ok(())
        );
        assert_eq!(
            check_server_passive(sa("10.0.0.1:40000"), s, true, &[]),
            Err(DataRefusal::ForeignAddress)
        );
        assert_eq!(
            check_server_passive(sa("10.0.0.1:40000"), s, false, &[]),
            Ok(())
        );
        assert_eq!(
            check_server_passive(sa("198.51.100.1:25"), s, true, &[]),
            Err(DataRefusal::PrivilegedPort)
        );
    }

    #[test]
    fn data_peer_must_be_the_expected_host() {
        assert_eq!(
            check_data_peer(ip("127.0.0.1"), ip("127.0.0.1"), true, &[]),
            Ok(())
        );
        assert_eq!(
            check_data_peer(ip("127.0.0.2"), ip("127.0.0.1"), true, &[]),
            Err(DataRefusal::ForeignAddress)
        );
        assert_eq!(
            check_data_peer(ip("192.0.2.9"), ip("127.0.0.1"), false, &[]),
            Ok(())
        );
    }

    // Issue 14 item 7: SameAddress no allows third parties, never the
    // firewall itself, special addresses or privileged ports.
    #[test]
    fn same_address_no_still_refuses_special_own_and_privileged_targets() {
        let host = [ip("192.0.2.1"), ip("2001:db8::1")];
        let c = ip("192.0.2.7");
        for t in [
            "127.0.0.1:2000",
            "127.1.2.3:2000",
            "169.254.169.254:2000",
            "224.0.0.1:2000",
            "255.255.255.255:2000",
            "0.0.0.0:2000",
            "192.0.2.1:2000",
            "[::1]:2000",
            "[::]:2000",
            "[fe80::1]:2000",
            "[ff02::1]:2000",
            "[::ffff:127.0.0.1]:2000",
            "[2001:db8::1]:2000",
        ] {
            assert_eq!(
                check_client_port(sa(t), c, false, &host),
                Err(DataRefusal::SpecialAddress),
                "client {t}"
            );
            assert_eq!(
                check_server_passive(sa(t), c, false, &host),
                Err(DataRefusal::SpecialAddress),
                "server {t}"
            );
            let from = sa(t).ip();
            assert_eq!(
                check_data_peer(from, c, false, &host),
                Err(DataRefusal::SpecialAddress),
                "peer {t}"
            );
        }
        for t in ["192.0.2.8:25", "192.0.2.7:1023", "198.51.100.9:21"] {
            assert_eq!(
                check_client_port(sa(t), c, false, &host),
                Err(DataRefusal::PrivilegedPort),
                "client {t}"
            );
            assert_eq!(
                check_server_passive(sa(t), c, false, &host),
                Err(DataRefusal::PrivilegedPort),
                "server {t}"
            );
        }
        // A third party elsewhere is fine, and the peer itself is, even on
        // loopback (a client on the proxy host).
        assert_eq!(
            check_client_port(sa("198.51.100.9:2000"), c, false, &host),
            Ok(())
        );
        assert_eq!(
            check_server_passive(sa("198.51.100.9:2000"), c, false, &host),
            Ok(())
        );
        assert_eq!(check_data_peer(ip("198.51.100.9"), c, false, &host), Ok(()));
        let lo = ip("127.0.0.1");
        assert_eq!(
            check_client_port(sa("127.0.0.1:2000"), lo, false, &host),
            Ok(())
        );
        assert_eq!(check_data_peer(lo, lo, false, &host), Ok(()));
        assert_eq!(
            check_client_port(sa("127.0.0.2:2000"), lo, false, &host),
            Err(DataRefusal::SpecialAddress)
        );
    }
}

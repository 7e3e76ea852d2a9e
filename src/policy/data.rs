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
}

impl std::fmt::Display for DataRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DataRefusal::ForeignAddress => "address is not the peer's own address",
            DataRefusal::PrivilegedPort => "port below 1024",
        })
    }
}

/// IPv4-mapped IPv6 counts as the IPv4 address it is.
fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// May the proxy connect to `target`, which the client named in PORT/EPRT?
pub fn check_client_port(
    target: SocketAddr,
    client: IpAddr,
    same_address: bool,
) -> Result<(), DataRefusal> {
    if !same_address {
        return Ok(());
    }
    // SECURITY: FTP bounce: PORT must not make the proxy connect to a third host.
    if !same_host(target.ip(), client) {
        return Err(DataRefusal::ForeignAddress);
    }
    // SECURITY: a privileged port on the client host is a service (rsh, smtp),
    // not an FTP client's data port.
    if target.port() < 1024 {
        return Err(DataRefusal::PrivilegedPort);
    }
    Ok(())
}

/// May the proxy connect to `target`, which the server named in 227/229?
pub fn check_server_passive(
    target: SocketAddr,
    server: IpAddr,
    same_address: bool,
) -> Result<(), DataRefusal> {
    // SECURITY: a malicious server must not make the proxy connect to a
    // third host (server-side bounce).
    if same_address && !same_host(target.ip(), server) {
        return Err(DataRefusal::ForeignAddress);
    }
    // SECURITY: the same rule as for a client's PORT: a privileged port on
    // the server host is one of its services, not a data port.
    if same_address && target.port() < 1024 {
        return Err(DataRefusal::PrivilegedPort);
    }
    Ok(())
}

/// May a data connection from `from` be used, when `expected` is the peer?
pub fn check_data_peer(
    from: IpAddr,
    expected: IpAddr,
    same_address: bool,
) -> Result<(), DataRefusal> {
    // SECURITY: data-port theft: only the peer itself may connect to a
    // listener we opened for it.
    if same_address && !same_host(from, expected) {
        return Err(DataRefusal::ForeignAddress);
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
        assert_eq!(check_client_port(sa("192.0.2.7:2000"), c, true), Ok(()));
        assert_eq!(
            check_client_port(sa("192.0.2.8:2000"), c, true),
            Err(DataRefusal::ForeignAddress)
        );
        assert_eq!(
            check_client_port(sa("192.0.2.7:25"), c, true),
            Err(DataRefusal::PrivilegedPort)
        );
        assert_eq!(check_client_port(sa("192.0.2.8:25"), c, false), Ok(()));
    }

    #[test]
    fn mapped_ipv6_client_counts_as_its_ipv4_address() {
        assert_eq!(
            check_client_port(sa("192.0.2.7:2000"), ip("::ffff:192.0.2.7"), true),
            Ok(())
        );
    }

    #[test]
    fn server_passive_address_must_be_the_server() {
        let s = ip("198.51.100.1");
        assert_eq!(
            check_server_passive(sa("198.51.100.1:40000"), s, true),
            Ok(())
        );
        assert_eq!(
            check_server_passive(sa("10.0.0.1:40000"), s, true),
            Err(DataRefusal::ForeignAddress)
        );
        assert_eq!(check_server_passive(sa("10.0.0.1:40000"), s, false), Ok(()));
        assert_eq!(
            check_server_passive(sa("198.51.100.1:25"), s, true),
            Err(DataRefusal::PrivilegedPort)
        );
    }

    #[test]
    fn data_peer_must_be_the_expected_host() {
        assert_eq!(
            check_data_peer(ip("127.0.0.1"), ip("127.0.0.1"), true),
            Ok(())
        );
        assert_eq!(
            check_data_peer(ip("127.0.0.2"), ip("127.0.0.1"), true),
            Err(DataRefusal::ForeignAddress)
        );
        assert_eq!(
            check_data_peer(ip("127.0.0.2"), ip("127.0.0.1"), false),
            Ok(())
        );
    }
}

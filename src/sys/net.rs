//! Socket set-up: addresses of the client socket, connecting and listening
//! inside a configured local port range, socket options.
//!
//! Never decides policy: callers say which address and which range.

use std::io;
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, TcpStream,
};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, sockopt,
};

/// Why standard input cannot serve as the client connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSocketError {
    /// stdin is a pipe, a terminal or a file.
    NotSocket,
    /// A socket, but not a connected TCP socket (e.g. a socketpair).
    NoPeer,
}

impl std::fmt::Display for ClientSocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClientSocketError::NotSocket => {
                "standard input is not a socket: start ftpgate from xinetd, a systemd socket unit with Accept=yes, or socat with nofork, or use -d"
            }
            ClientSocketError::NoPeer => {
                "standard input is a socket without a TCP peer address (a socketpair?): ftpgate needs an accepted TCP connection"
            }
        })
    }
}

/// The client's address and our local address on the client connection.
pub fn client_addresses(fd: BorrowedFd<'_>) -> Result<(SocketAddr, SocketAddr), ClientSocketError> {
    let peer = match socket::getpeername::<SockaddrStorage>(fd.as_raw_fd()) {
        Ok(a) => a,
        Err(Errno::ENOTSOCK) | Err(Errno::EBADF) => return Err(ClientSocketError::NotSocket),
        Err(_) => return Err(ClientSocketError::NoPeer),
    };
    let local = socket::getsockname::<SockaddrStorage>(fd.as_raw_fd())
        .map_err(|_| ClientSocketError::NoPeer)?;
    match (to_std(&peer), to_std(&local)) {
        (Some(p), Some(l)) => Ok((p, l)),
        _ => Err(ClientSocketError::NoPeer),
    }
}

/// A socket address as std's type; None for non-IP families.
pub fn to_std(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::new(v4.ip(), v4.port())));
    }
    if let Some(v6) = s.as_sockaddr_in6() {
        return Some(SocketAddr::V6(SocketAddrV6::new(
            v6.ip(),
            v6.port(),
            v6.flowinfo(),
            v6.scope_id(),
        )));
    }
    None
}

/// The same address with IPv4-mapped IPv6 turned into plain IPv4, so that
/// comparisons and PORT/227 formatting see what the peer really is.
pub fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// An inclusive local port range and how to walk it.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub min: u16,
    pub max: u16,
    /// start at a random port in the range instead of at `min`
    pub random: bool,
}

fn new_socket(family: AddressFamily) -> io::Result<OwnedFd> {
    let fd = socket::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    Ok(fd)
}

fn sockaddr(a: SocketAddr) -> SockaddrStorage {
    SockaddrStorage::from(a)
}

fn family_of(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The ports of `p` in the order to try them: from `min` up, or from a
/// random one on (SockBindRand), each once.
fn port_order(p: Ports) -> impl Iterator<Item = u16> {
    let span = u32::from(p.max - p.min) + 1;
    let start = if p.random {
        super::random_u32() % span
    } else {
        0
    };
    (0..span).map(move |i| (u32::from(p.min) + (start + i) % span) as u16)
}

fn no_free_port(p: Ports) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no free local port in {}-{}", p.min, p.max),
    )
}

/// Bind `fd` to `ip` and a port from `ports` (any port when None).
fn bind_in_range(fd: &OwnedFd, ip: IpAddr, ports: Option<Ports>) -> io::Result<()> {
    let Some(p) = ports else {
        socket::bind(fd.as_raw_fd(), &sockaddr(SocketAddr::new(ip, 0)))?;
        return Ok(());
    };
    for port in port_order(p) {
        match socket::bind(fd.as_raw_fd(), &sockaddr(SocketAddr::new(ip, port))) {
            Ok(()) => return Ok(()),
            Err(Errno::EADDRINUSE) | Err(Errno::EACCES) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(no_free_port(p))
}

/// Connect to `dest`, from `bind_ip` and a port of `ports` when given,
/// waiting at most `timeout`. The stream is blocking.
pub fn connect(
    dest: SocketAddr,
    bind_ip: Option<IpAddr>,
    ports: Option<Ports>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    finish_connect(start_connect(dest, bind_ip, ports)?, timeout)
}

/// Begin a connection to `dest` without waiting for it: the stream is
/// non-blocking and the handshake may still be under way. Hand it to
/// [`finish_connect`] before use.
pub fn start_connect(
    dest: SocketAddr,
    bind_ip: Option<IpAddr>,
    ports: Option<Ports>,
) -> io::Result<TcpStream> {
    let ip = bind_ip.unwrap_or(match dest {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    let Some(p) = ports else {
        let from = bind_ip.map(|ip| SocketAddr::new(ip, 0));
        return connect_from(dest, from)?.ok_or_else(|| Errno::EADDRINUSE.into());
    };
    for port in port_order(p) {
        if let Some(stream) = connect_from(dest, Some(SocketAddr::new(ip, port)))? {
            return Ok(stream);
        }
    }
    Err(no_free_port(p))
}

/// One non-blocking connection attempt to `dest`, bound to `from` first
/// when given (with SO_REUSEADDR, so that a port in TIME_WAIT can be
/// used again). None when that local port is taken: bind() refused it, or
/// (SO_REUSEADDR lets bind() share a port with another connection)
/// connect() found a connection from it to the same place.
fn connect_from(dest: SocketAddr, from: Option<SocketAddr>) -> io::Result<Option<TcpStream>> {
    let fd = new_socket(family_of(dest.ip()))?;
    if let Some(from) = from {
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
        match socket::bind(fd.as_raw_fd(), &sockaddr(from)) {
            Ok(()) => {}
            Err(Errno::EADDRINUSE | Errno::EACCES) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    let stream = TcpStream::from(fd);
    stream.set_nonblocking(true)?;
    match socket::connect(stream.as_raw_fd(), &sockaddr(dest)) {
        Ok(()) | Err(Errno::EINPROGRESS) => Ok(Some(stream)),
        Err(Errno::EADDRNOTAVAIL) if from.is_some_and(|f| f.port() != 0) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Wait at most `timeout` for a connection begun by [`start_connect`] to be
/// established; return it blocking.
pub fn finish_connect(stream: TcpStream, timeout: Duration) -> io::Result<TcpStream> {
    if !wait_writable(stream.as_fd(), timeout)? {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection timed out",
        ));
    }
    let err = socket::getsockopt(&stream, sockopt::SocketError)?;
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Wait until `fd` is writable or `timeout` passes (false).
pub fn wait_writable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    wait_for(fd, nix::poll::PollFlags::POLLOUT, timeout)
}

/// Wait until `fd` is readable (or at its end) or `timeout` passes (false).
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    wait_for(fd, nix::poll::PollFlags::POLLIN, timeout)
}

fn wait_for(
    fd: BorrowedFd<'_>,
    flags: nix::poll::PollFlags,
    timeout: Duration,
) -> io::Result<bool> {
    use nix::poll::{PollFd, PollTimeout, poll};
    let ms = i32::try_from(timeout.as_millis().max(1)).unwrap_or(i32::MAX);
    let mut fds = [PollFd::new(fd, flags)];
    loop {
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Listen on `ip` with a port from `ports` (any port when None).
pub fn listen(ip: IpAddr, ports: Option<Ports>) -> io::Result<TcpListener> {
    let backlog = Backlog::new(8).unwrap_or(Backlog::MAXCONN);
    let Some(p) = ports else {
        let fd = new_socket(family_of(ip))?;
        bind_in_range(&fd, ip, None)?;
        socket::listen(&fd, backlog)?;
        return Ok(TcpListener::from(fd));
    };
    // SO_REUSEADDR lets two sessions bind the same port at once (neither
    // listens yet); the second one's listen() then fails with EADDRINUSE:
    // that port is taken, try the next one.
    for port in port_order(p) {
        let fd = new_socket(family_of(ip))?;
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
        match socket::bind(fd.as_raw_fd(), &sockaddr(SocketAddr::new(ip, port))) {
            Ok(()) => {}
            Err(Errno::EADDRINUSE) | Err(Errno::EACCES) => continue,
            Err(e) => return Err(e.into()),
        }
        match socket::listen(&fd, backlog) {
            Ok(()) => return Ok(TcpListener::from(fd)),
            Err(Errno::EADDRINUSE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(no_free_port(p))
}

/// Keepalive on a control connection, so that NAT and firewall state does not
/// expire while a long transfer keeps the control connection silent.
pub fn set_keepalive<F: AsFd>(fd: &F) -> io::Result<()> {
    socket::setsockopt(fd, sockopt::KeepAlive, &true)?;
    socket::setsockopt(fd, sockopt::TcpKeepIdle, &60)?;
    socket::setsockopt(fd, sockopt::TcpKeepInterval, &30)?;
    Ok(())
}

/// No Nagle delay on a control connection: replies are written whole, and
/// a final reply (226) written right after a preliminary one (150) would
/// otherwise wait for the peer's delayed ACK of the first, about 40 ms per
/// transfer on Linux (FTP servers such as vsftpd set TCP_NODELAY too).
/// Also on the sink of a spliced transfer (see `Relay::start_pump`).
pub fn set_nodelay<F: AsFd>(fd: &F) -> io::Result<()> {
    socket::setsockopt(fd, sockopt::TcpNoDelay, &true)?;
    Ok(())
}

/// Receive urgent data (Telnet Synch before ABOR) in line, so it cannot wedge
/// the control stream; the Telnet layer drops the marker bytes.
pub fn set_oobinline<F: AsFd>(fd: &F) -> io::Result<()> {
    socket::setsockopt(fd, sockopt::OobInline, &true)?;
    Ok(())
}

/// Duplicate standard input (the client connection the super-server gave us)
/// into an owned TcpStream. Called once, after `client_addresses` confirmed it
/// is a connected TCP socket.
pub fn stream_from_stdin() -> io::Result<TcpStream> {
    Ok(TcpStream::from(nix::unistd::dup(std::io::stdin().as_fd())?))
}

/// When standard error is the client connection itself (xinetd hands the
/// socket over as fds 0, 1 and 2), point it at /dev/null: a message meant
/// for an administrator (a path, an errno, a panic) must never reach the
/// client in the middle of the FTP dialogue. Under socat or systemd stderr
/// is something else (a terminal, the journal) and is kept.
pub fn keep_stderr_off_the_client() {
    let same = |a: &nix::sys::stat::FileStat, b: &nix::sys::stat::FileStat| {
        a.st_dev == b.st_dev && a.st_ino == b.st_ino
    };
    let (Ok(input), Ok(err)) = (
        nix::sys::stat::fstat(std::io::stdin().as_fd()),
        nix::sys::stat::fstat(std::io::stderr().as_fd()),
    ) else {
        return;
    };
    let is_socket = input.st_mode & libc::S_IFMT == libc::S_IFSOCK;
    if !is_socket || !same(&input, &err) {
        return;
    }
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Sessions opening passive listeners in the same range at the same
    /// moment: with SO_REUSEADDR two of them can bind one port, and the
    /// second listen() fails. That must mean "try the next port", never
    /// "no free port" while ports are free. (The threads stand for
    /// session processes; ftpgate itself has none.)
    #[test]
    fn concurrent_listeners_in_one_range_never_run_out_while_ports_are_free() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = probe
            .local_addr()
            .unwrap()
            .port()
            .saturating_sub(2000)
            .max(20000);
        drop(probe);
        let ports = Ports {
            min: base,
            max: base + 63,
            random: false,
        };
        let failures = std::sync::atomic::AtomicUsize::new(0);
        let start = std::sync::Barrier::new(12);
        std::thread::scope(|s| {
            for _ in 0..12 {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..300 {
                        match listen("127.0.0.1".parse().unwrap(), Some(ports)) {
                            Ok(l) => drop(l),
                            Err(_) => {
                                failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
        });
        assert_eq!(failures.into_inner(), 0);
    }
}

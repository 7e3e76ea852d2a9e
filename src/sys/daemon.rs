//! Process and socket steps of standalone mode: the listening socket,
//! accept, fork, detaching from the terminal, handing an accepted socket to
//! a child as its stdin/stdout, reaping and signalling children.
//!
//! Never decides policy: `crate::daemon` says what to do and when.

use std::fs::OpenOptions;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::socket::{
    self, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, sockopt,
};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{self, ForkResult, Pid};

/// Listen backlog: connections the kernel queues while the daemon forks.
const BACKLOG: i32 = 128;

/// Listen on `ip:port` (SO_REUSEADDR, close-on-exec, non-blocking so a
/// connection that vanished between poll and accept cannot block the loop).
/// `::` is dual-stack (IPv4 clients appear as IPv4-mapped addresses); any
/// other IPv6 address is IPv6 only.
pub fn listen(ip: IpAddr, port: u16) -> io::Result<TcpListener> {
    let family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if let IpAddr::V6(v6) = ip {
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &!v6.is_unspecified())?;
    }
    socket::bind(
        fd.as_raw_fd(),
        &SockaddrStorage::from(SocketAddr::new(ip, port)),
    )?;
    socket::listen(&fd, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN))?;
    Ok(TcpListener::from(fd))
}

/// Standard input as a listening TCP socket, when it is one: what an inetd
/// "wait" style launcher hands over (`systemd-socket-activate --inetd`
/// without `--accept`, a systemd socket unit with `Accept=no`). The copy is
/// close-on-exec and non-blocking, like the socket [`listen`] makes.
pub fn inherited_listener() -> Option<TcpListener> {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    if !socket::getsockopt(&fd, sockopt::AcceptConn).ok()? {
        return None;
    }
    if socket::getsockopt(&fd, sockopt::SockType).ok()? != SockType::Stream {
        return None;
    }
    let local = socket::getsockname::<SockaddrStorage>(fd.as_raw_fd()).ok()?;
    if local.as_sockaddr_in().is_none() && local.as_sockaddr_in6().is_none() {
        return None;
    }
    // A close-on-exec copy (F_DUPFD_CLOEXEC); fds 0 and 1 stay as they are.
    let listener = TcpListener::from(fd.try_clone_to_owned().ok()?);
    listener.set_nonblocking(true).ok()?;
    Some(listener)
}

/// Close every descriptor from 3 up except `keep`: whatever the daemon's
/// starter left open (a launcher's copy of the listening socket, a shell's
/// pipe, a directory) would otherwise be inherited by every session, into
/// its jail. Call before the daemon opens anything else.
pub fn close_inherited(keep: &TcpListener) {
    let keep = keep.as_raw_fd() as libc::c_uint;
    close_ranges(&[(3, keep.saturating_sub(1)), (keep + 1, libc::c_uint::MAX)]);
}

/// Close every descriptor from 3 up: an inetd-mode session keeps only the
/// client socket on 0 and 1 (and stderr) of what its launcher left open
/// (a wrapper's file or directory would otherwise reach the jail). Call
/// before the session opens anything itself.
pub fn close_all_inherited() {
    close_ranges(&[(3, libc::c_uint::MAX)]);
}

fn close_ranges(ranges: &[(libc::c_uint, libc::c_uint)]) {
    for &(first, last) in ranges.iter().filter(|(f, l)| f <= l) {
        // SAFETY: close_range(2) on descriptors no Rust value owns: the
        // callers hold nothing in these ranges (a kept listener is outside
        // them).
        let done = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) } == 0;
        if !done {
            // Kernels before 5.9: one by one, up to the descriptor limit.
            let max = unistd::sysconf(unistd::SysconfVar::OPEN_MAX)
                .ok()
                .flatten()
                .unwrap_or(1024)
                .min(65536) as libc::c_uint;
            for fd in first..=last.min(max) {
                // SAFETY: as above; EBADF for numbers not open is harmless.
                unsafe {
                    libc::close(fd as libc::c_int);
                }
            }
        }
    }
}

/// Accept one connection, if one is waiting. The stream is blocking and
/// close-on-exec (dup2 onto 0 and 1 clears that flag on the copies).
pub fn accept(listener: &TcpListener) -> io::Result<Option<(TcpStream, SocketAddr)>> {
    match socket::accept4(listener.as_fd(), SockFlag::SOCK_CLOEXEC) {
        Ok(fd) => {
            let stream = TcpStream::from(fd);
            let peer = stream.peer_addr()?;
            Ok(Some((stream, peer)))
        }
        Err(Errno::EAGAIN) | Err(Errno::EINTR) | Err(Errno::ECONNABORTED) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Wait until the listener or the signal descriptor is readable (no
/// timeout: the daemon sleeps until something happens). Returns
/// (listener readable, signals readable).
pub fn wait(listener: BorrowedFd<'_>, signals: BorrowedFd<'_>) -> io::Result<(bool, bool)> {
    let mut fds = [
        PollFd::new(listener, PollFlags::POLLIN),
        PollFd::new(signals, PollFlags::POLLIN),
    ];
    match poll(&mut fds, PollTimeout::NONE) {
        Ok(_) => {}
        Err(Errno::EINTR) => return Ok((false, false)),
        Err(e) => return Err(e.into()),
    }
    let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
    Ok((ready(&fds[0]), ready(&fds[1])))
}

/// Which side of a fork we are on.
pub enum Forked {
    Parent(i32),
    Child,
}

/// fork(2).
pub fn fork() -> io::Result<Forked> {
    // SAFETY: ftpgate is single-threaded (SPEC §1: no threads), so the child
    // is a complete copy with no lock held by a thread that does not exist
    // in it; it may run arbitrary code, not only async-signal-safe calls.
    match unsafe { unistd::fork() }? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child.as_raw())),
        ForkResult::Child => Ok(Forked::Child),
    }
}

/// In a session child: the accepted socket becomes standard input and
/// output, as a super-server would hand it over. Standard error stays.
pub fn become_inetd_child(stream: TcpStream) -> io::Result<()> {
    unistd::dup2_stdin(&stream)?;
    unistd::dup2_stdout(&stream)?;
    drop(stream);
    Ok(())
}

/// Detach from the terminal: fork (the parent exits 0 at once), setsid,
/// chdir /, standard input, output and error to /dev/null.
/// Returns only in the detached process.
pub fn detach() -> io::Result<()> {
    match fork()? {
        Forked::Parent(_) => std::process::exit(0),
        Forked::Child => {}
    }
    unistd::setsid()?;
    unistd::chdir("/")?;
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    unistd::dup2_stdin(&null)?;
    unistd::dup2_stdout(&null)?;
    unistd::dup2_stderr(&null)?;
    Ok(())
}

/// A child that ended, as waitpid reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub pid: i32,
    /// exit status, or 128 + signal number
    pub status: i32,
}

/// Reap every child that has ended (waitpid(-1, WNOHANG) until none is left).
pub fn reap() -> Vec<Reaped> {
    let mut out = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => out.push(Reaped {
                pid: pid.as_raw(),
                status: code,
            }),
            Ok(WaitStatus::Signaled(pid, sig, _)) => out.push(Reaped {
                pid: pid.as_raw(),
                status: 128 + sig as i32,
            }),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return out,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(_) => return out,
        }
    }
}

/// Ask one child we forked to end (SIGTERM).
pub fn terminate(pid: i32) {
    signal_child(pid, Signal::SIGTERM)
}

/// End one child we forked that ignored SIGTERM (SIGKILL).
pub fn kill(pid: i32) {
    signal_child(pid, Signal::SIGKILL)
}

fn signal_child(pid: i32, sig: Signal) {
    // SECURITY: never a process group or -1: only a PID we forked.
    if pid > 0 {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
    }
}

/// Wait at most `limit` for `fd` to become readable; true if it did.
pub fn wait_readable(fd: BorrowedFd<'_>, limit: Duration) -> io::Result<bool> {
    let ms = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match poll(
        &mut fds,
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
    ) {
        Ok(n) => Ok(n > 0),
        Err(Errno::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Write `bytes` without blocking (what does not fit in the socket buffer
/// is dropped), then close. For one-line refusals from the daemon, which
/// must never wait for a slow client.
pub fn refuse(stream: TcpStream, bytes: &[u8]) {
    use std::io::Write;
    let mut stream = stream;
    if stream.set_nonblocking(true).is_ok() {
        let _ = stream.write(bytes);
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// Create PidFile `path` as a new file, mode 0644. SECURITY: never through
/// a symbolic link (O_CREAT|O_EXCL and O_NOFOLLOW: one planted between
/// the removal of a stale file and this call makes it fail), and what was
/// really opened is checked (fstat of the descriptor): a regular file of
/// ours that nobody else may write.
pub fn create_pid_file(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    if meta.uid() != unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        return Err(io::Error::other(format!(
            "owned by user id {} with mode {:o}: not a file only ftpgate may write",
            meta.uid(),
            meta.mode() & 0o7777
        )));
    }
    Ok(file)
}

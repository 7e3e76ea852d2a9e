//! A kernel pipe for splice(2): moving data-connection bytes from one socket
//! to the other without copying them through user space.
//!
//! Owns the two ends of one pipe; never touches the sockets beyond the one
//! splice call it is asked for. Every call is non-blocking
//! (`SPLICE_F_NONBLOCK`), so a caller that polls for readiness first never
//! waits here.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// One pipe used as the in-kernel buffer between two sockets.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// what the kernel granted (F_GETPIPE_SZ), bytes
    capacity: usize,
}

impl Pipe {
    /// A close-on-exec, non-blocking pipe, enlarged towards `size` bytes.
    /// If the kernel refuses the size (pipe-max-size, per-user pipe limits)
    /// the pipe keeps its default size, which still works.
    pub fn new(size: usize) -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: fds is a valid array of two ints for pipe2 to fill.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and ours alone.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let want = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
        // SAFETY: fcntl on a descriptor we own; F_SETPIPE_SZ takes an int.
        unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, want) };
        // SAFETY: fcntl on a descriptor we own; F_GETPIPE_SZ takes no argument.
        let got = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        let capacity = usize::try_from(got)
            .ok()
            .filter(|&c| c > 0)
            .unwrap_or(65536);
        Ok(Pipe {
            read,
            write,
            capacity,
        })
    }

    /// Bytes the pipe holds when full of whole pages.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Move at most `len` bytes from `src` into the pipe. Ok(0) is end of
    /// file on `src`; `WouldBlock` means `src` has nothing or the pipe is full.
    pub fn fill_from(&self, src: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        splice(src.as_raw_fd(), self.write.as_raw_fd(), len)
    }

    /// Move at most `len` bytes from the pipe to `dst`. `WouldBlock` means
    /// `dst` has no room (or the pipe is empty).
    pub fn drain_to(&self, dst: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        splice(self.read.as_raw_fd(), dst.as_raw_fd(), len)
    }

    /// Copy bytes out of the pipe with read(2): for the fallback path, when
    /// `dst` refuses splice while the pipe still holds data.
    pub fn read_into(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: buf is valid for buf.len() writable bytes; the descriptor is ours.
        let n = unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

fn splice(from: libc::c_int, to: libc::c_int, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are open for the duration of the call (borrowed
    // or owned by the caller); null offsets are required for pipes and
    // sockets; splice touches no user memory.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    #[test]
    fn bytes_go_through_the_pipe_unchanged() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l2.local_addr().unwrap()).unwrap();
        let (mut d, _) = l2.accept().unwrap();
        let pipe = Pipe::new(1 << 20).unwrap();
        assert!(pipe.capacity() >= 4096);
        a.write_all(b"hello, splice").unwrap();
        drop(a);
        let mut moved = 0;
        loop {
            match pipe.fill_from(b.as_fd(), 4) {
                Ok(0) => break,
                Ok(n) => moved += pipe.drain_to(c.as_fd(), n).unwrap(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(moved, 13);
        drop(c);
        let mut got = Vec::new();
        d.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello, splice");
    }
}

//! Moving the bytes of one transfer from one data socket to the other.
//!
//! A [`Pump`] moves them with splice(2) through one kernel pipe (made at the
//! session's first transfer, kept for the rest of it), so file data never
//! passes through user space. If the kernel refuses splice for these
//! sockets (EINVAL, ENOSYS) the pump falls back, for the rest of the
//! session, to read/write through one fixed buffer. Neither path allocates
//! per chunk; every call is non-blocking and the relay's poll loop says when
//! to try again. The byte count is what the sink accepted, exactly.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;

use nix::poll::PollFlags;

use crate::limits;
use crate::sys::splice::Pipe;
use crate::tls::Channel;

/// Why [`Pump::step`] stopped early.
#[derive(Debug)]
pub enum Broken {
    /// Reading the source failed; what was already read is still delivered.
    Source(io::Error),
    /// Writing the sink failed; the transfer cannot go on.
    Sink(io::Error),
}

/// How the bytes move.
enum Path {
    /// Not decided yet: the pipe is made at the first transfer.
    Unset,
    /// socket -> pipe -> socket with splice(2)
    Splice(Pipe),
    /// read(2)/write(2) through `Pump::buf`
    Copy,
}

/// State of one one-way copy.
pub struct Pump {
    path: Path,
    /// bytes sitting in the pipe
    in_pipe: usize,
    /// the last splice into a non-empty pipe would have blocked: wait for
    /// the sink before filling again (the pipe may be out of slots before
    /// it is out of bytes)
    pipe_full: bool,
    /// the pipe of a transfer whose sink refused splice: its bytes are
    /// read out into `buf` before the source is read again
    leftover: Option<Pipe>,
    /// fallback buffer, allocated only if splice is refused
    buf: Box<[u8]>,
    buf_size: usize,
    start: usize,
    end: usize,
    /// the source reached end of file
    pub eof: bool,
    /// bytes written to the sink
    pub bytes: u64,
    /// times the relay's poll returned during this transfer
    pub wakeups: u64,
    /// largest single read or splice from the source (MaxRecvBufSize)
    max_read: Option<usize>,
}

impl Pump {
    /// A pump with a `size`-byte fallback buffer. Allocates nothing yet, so
    /// sessions that never transfer pay nothing.
    pub fn new(size: usize, max_read: Option<usize>) -> Pump {
        Pump {
            path: Path::Unset,
            in_pipe: 0,
            pipe_full: false,
            leftover: None,
            buf: Box::default(),
            buf_size: size.max(1),
            start: 0,
            end: 0,
            eof: false,
            bytes: 0,
            wakeups: 0,
            max_read: max_read.map(|m| m.max(1)),
        }
    }

    /// Forget the previous transfer, keep the pipe (or buffer). Makes the
    /// pipe at the first call; a pipe still holding bytes of an aborted
    /// transfer is replaced, so they never leak into the next one.
    pub fn reset(&mut self) {
        self.leftover = None;
        let stale = matches!(self.path, Path::Splice(_)) && self.in_pipe > 0;
        if stale || matches!(self.path, Path::Unset) {
            self.path = match Pipe::new(limits::SPLICE_PIPE) {
                Ok(p) => Path::Splice(p),
                Err(_) => self.copy_path(),
            };
        }
        self.in_pipe = 0;
        self.pipe_full = false;
        self.start = 0;
        self.end = 0;
        self.eof = false;
        self.bytes = 0;
        self.wakeups = 0;
    }

    /// "splice" or "read/write", for the log.
    pub fn method(&self) -> &'static str {
        match self.path {
            Path::Splice(_) => "splice",
            _ => "read/write",
        }
    }

    /// Want to read: room to read into and no end of file yet (or, after a
    /// switch to read/write, bytes still in the old pipe).
    pub fn wants_read(&self) -> bool {
        match &self.path {
            Path::Splice(p) => !self.eof && !self.pipe_full && self.in_pipe < p.capacity(),
            _ => (!self.eof || self.leftover.is_some()) && self.end < self.buf.len(),
        }
    }

    /// Want to write: bytes waiting.
    pub fn wants_write(&self) -> bool {
        self.in_pipe > 0 || self.end > self.start
    }

    /// All bytes read and delivered.
    pub fn finished(&self) -> bool {
        self.eof && !self.wants_write()
    }

    /// Move what can be moved now, without blocking: drain and fill in turn
    /// (what is already in the pipe goes out before more is read, so the
    /// sink is never kept waiting behind a read) until neither makes progress, the transfer is finished, or
    /// `MAX_BYTES_PER_WAKEUP` were delivered (so the caller looks at its
    /// control connections regularly). A source error ends the reading
    /// (`eof` is set) but what was read can still be delivered.
    pub fn step(&mut self, src: &mut TcpStream, dst: &mut TcpStream) -> Result<(), Broken> {
        let mut moved = 0u64;
        loop {
            let mut progress = false;
            if self.wants_write() {
                let before = self.bytes;
                let p = self.drain(dst).map_err(Broken::Sink)?;
                moved += self.bytes - before;
                progress |= p;
            }
            if self.wants_read() {
                match self.fill(src) {
                    Ok(p) => progress |= p,
                    Err(e) => {
                        self.eof = true;
                        return Err(Broken::Source(e));
                    }
                }
            }
            if !progress || self.finished() || moved >= limits::MAX_BYTES_PER_WAKEUP {
                return Ok(());
            }
        }
    }

    /// splice(2) was refused: read/write from now on. Bytes already in the
    /// pipe go out through the buffer first (see `fill`).
    fn fall_back(&mut self) {
        if let Path::Splice(pipe) = std::mem::replace(&mut self.path, Path::Unset)
            && self.in_pipe > 0
        {
            self.leftover = Some(pipe);
        }
        self.pipe_full = false;
        self.path = self.copy_path();
    }

    /// Switch to read/write: allocate the buffer once.
    fn copy_path(&mut self) -> Path {
        if self.buf.is_empty() {
            self.buf = vec![0u8; self.buf_size].into_boxed_slice();
        }
        Path::Copy
    }

    /// Read what the source has. Returns whether anything changed.
    fn fill(&mut self, src: &mut TcpStream) -> io::Result<bool> {
        if let Path::Splice(pipe) = &self.path {
            let room = pipe.capacity() - self.in_pipe;
            let len = self.max_read.map_or(room, |m| m.min(room));
            return match pipe.fill_from(src.as_fd(), len) {
                Ok(0) => {
                    self.eof = true;
                    Ok(true)
                }
                Ok(n) => {
                    self.in_pipe += n;
                    Ok(true)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Either the socket is empty (poll will tell) or the
                    // pipe is out of room (the sink will tell).
                    self.pipe_full = self.in_pipe > 0;
                    Ok(false)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
                Err(e) if refused(&e) => {
                    self.fall_back();
                    Ok(true)
                }
                Err(e) => Err(e),
            };
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let room = self.buf.len() - self.end;
        let len = self.max_read.map_or(room, |m| m.min(room));
        let window = &mut self.buf[self.end..self.end + len];
        // Bytes left in the pipe by a switch to read/write come first.
        if let Some(pipe) = &self.leftover {
            return match pipe.read_into(window) {
                Ok(n) => {
                    self.in_pipe = self.in_pipe.saturating_sub(n);
                    self.end += n;
                    if self.in_pipe == 0 || n == 0 {
                        self.in_pipe = 0;
                        self.leftover = None;
                    }
                    Ok(true)
                }
                Err(e) if would_wait(&e) => {
                    self.in_pipe = 0;
                    self.leftover = None;
                    Ok(true)
                }
                Err(e) => Err(e),
            };
        }
        match src.read(window) {
            Ok(0) => {
                self.eof = true;
                Ok(true)
            }
            Ok(n) => {
                self.end += n;
                Ok(true)
            }
            Err(e) if would_wait(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Write what is waiting. Returns whether anything changed.
    fn drain(&mut self, dst: &mut TcpStream) -> io::Result<bool> {
        if let Path::Splice(pipe) = &self.path {
            return match pipe.drain_to(dst.as_fd(), self.in_pipe) {
                Ok(0) => Ok(false),
                Ok(n) => {
                    self.in_pipe -= n;
                    self.bytes += n as u64;
                    self.pipe_full = false;
                    Ok(true)
                }
                Err(e) if would_wait(&e) => Ok(false),
                Err(e) if refused(&e) => {
                    self.fall_back();
                    Ok(true)
                }
                Err(e) => Err(e),
            };
        }
        match dst.write(&self.buf[self.start..self.end]) {
            Ok(n) => {
                self.start += n;
                self.bytes += n as u64;
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                }
                Ok(n > 0)
            }
            Err(e) if would_wait(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Tell the sink's peer that no more data comes, then let go of the socket.
pub fn finish(sink: TcpStream) {
    let _ = sink.shutdown(Shutdown::Write);
}

fn would_wait(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// splice(2) does not work for these descriptors: use read/write instead.
fn refused(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS))
}

/// The pump of a transfer with TLS on one side or both: plaintext moves
/// through one fixed buffer (TLS cannot be spliced), read from the
/// source's TLS and written into the sink's. A TLS sink is read too, for
/// what its peer sends on a connection that carries no data our way (TLS
/// 1.3 session tickets): left unread, they would make the close a reset,
/// which can cost the end of an upload. Non-blocking throughout, like
/// [`Pump`]; the byte count is the plaintext the sink's TLS accepted.
pub struct TlsPump {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// the source ended (close_notify or the connection's end)
    pub eof: bool,
    /// the sink's peer closed its side
    sink_eof: bool,
    pub bytes: u64,
    pub wakeups: u64,
    max_read: usize,
}

impl TlsPump {
    pub fn new(size: usize, max_read: Option<usize>) -> TlsPump {
        let size = size.max(1);
        TlsPump {
            buf: vec![0u8; size].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            sink_eof: false,
            bytes: 0,
            wakeups: 0,
            max_read: max_read.unwrap_or(size).clamp(1, size),
        }
    }

    /// The poll events each side waits for: (source, sink).
    pub fn flags(&self, src: &Channel, dst: &Channel) -> (PollFlags, PollFlags) {
        let mut s = PollFlags::empty();
        if !self.eof && self.end < self.buf.len() {
            s |= PollFlags::POLLIN;
        }
        if src.tls.as_ref().is_some_and(|c| c.wants_write()) {
            s |= PollFlags::POLLOUT;
        }
        let mut d = PollFlags::empty();
        if self.end > self.start || dst.tls.as_ref().is_some_and(|c| c.wants_write()) {
            d |= PollFlags::POLLOUT;
        }
        if dst.tls.is_some() && !self.sink_eof {
            d |= PollFlags::POLLIN;
        }
        (s, d)
    }

    /// Everything read and delivered, the sink's TLS flushed.
    pub fn finished(&self, dst: &Channel) -> bool {
        self.eof && self.end == self.start && !dst.tls.as_ref().is_some_and(|c| c.wants_write())
    }

    /// Move what can be moved now, without blocking.
    pub fn step(&mut self, src: &mut Channel, dst: &mut Channel) -> Result<(), Broken> {
        let mut moved = 0u64;
        loop {
            let mut progress = false;
            if self.end > self.start {
                let n = write_plain(dst, &self.buf[self.start..self.end]).map_err(Broken::Sink)?;
                self.start += n;
                self.bytes += n as u64;
                moved += n as u64;
                progress |= n > 0;
            }
            flush(dst).map_err(Broken::Sink)?;
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            }
            if !self.eof && self.end < self.buf.len() {
                let room = (self.buf.len() - self.end).min(self.max_read);
                match read_plain(src, &mut self.buf[self.end..self.end + room]) {
                    Ok(Some(0)) => self.eof = true,
                    Ok(Some(n)) => {
                        self.end += n;
                        progress = true;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.eof = true;
                        return Err(Broken::Source(e));
                    }
                }
            }
            flush(src).map_err(Broken::Source)?;
            if dst.tls.is_some() && !self.sink_eof {
                self.sink_eof = absorb(dst).map_err(Broken::Sink)?;
            }
            if !progress || moved >= limits::MAX_BYTES_PER_WAKEUP {
                return Ok(());
            }
        }
    }
}

/// Plaintext from `ch`: Some(0) at its end, None when nothing is there now.
fn read_plain(ch: &mut Channel, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let Some(conn) = ch.tls.as_mut() else {
        return match ch.sock.read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if would_wait(&e) => Ok(None),
            Err(e) => Err(e),
        };
    };
    loop {
        match conn.reader().read(buf) {
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // The peer closed without close_notify: the end all the same.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Some(0)),
            Err(e) => return Err(e),
        }
        match conn.read_tls(&mut ch.sock) {
            Ok(0) => return Ok(Some(0)),
            Ok(_) => {
                conn.process_new_packets().map_err(io::Error::other)?;
            }
            Err(e) if would_wait(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// Hand plaintext to `ch`; how much it took.
fn write_plain(ch: &mut Channel, data: &[u8]) -> io::Result<usize> {
    let Some(conn) = ch.tls.as_mut() else {
        return match ch.sock.write(data) {
            Ok(n) => Ok(n),
            Err(e) if would_wait(&e) => Ok(0),
            Err(e) => Err(e),
        };
    };
    // rustls keeps at most its buffer limit of unsent records: a slow
    // sink slows the source down instead of filling memory.
    conn.set_buffer_limit(Some(limits::DATA_BUFFER));
    match conn.writer().write(data) {
        Ok(n) => Ok(n),
        Err(e) if would_wait(&e) => Ok(0),
        Err(e) => Err(e),
    }
}

/// Send what TLS has ready for the socket, as far as it takes it.
fn flush(ch: &mut Channel) -> io::Result<()> {
    let Some(conn) = ch.tls.as_mut() else {
        return Ok(());
    };
    while conn.wants_write() {
        match conn.write_tls(&mut ch.sock) {
            Ok(_) => {}
            Err(e) if would_wait(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Read and drop what the peer of a sink sends (tickets, alerts, its
/// close_notify); true at the connection's end.
pub fn absorb(ch: &mut Channel) -> io::Result<bool> {
    let mut scratch = [0u8; 4096];
    let Some(conn) = ch.tls.as_mut() else {
        return match ch.sock.read(&mut scratch) {
            Ok(0) => Ok(true),
            Ok(_) => Ok(false),
            Err(e) if would_wait(&e) => Ok(false),
            Err(e) => Err(e),
        };
    };
    loop {
        match conn.read_tls(&mut ch.sock) {
            Ok(0) => return Ok(true),
            Ok(_) => {
                conn.process_new_packets().map_err(io::Error::other)?;
                loop {
                    match conn.reader().read(&mut scratch) {
                        Ok(0) => return Ok(true),
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            }
            Err(e) if would_wait(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::net::TcpListener;
    use std::thread;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    /// Send `data` through a pump between two loopback connections, the
    /// way the relay drives it; return what arrived and the pump.
    fn relay_through(mut pump: Pump, data: Vec<u8>) -> (Vec<u8>, Pump) {
        let (mut sender, mut src) = pair();
        let (mut dst, mut receiver) = pair();
        let writer = thread::spawn(move || {
            sender.write_all(&data).unwrap();
        });
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            receiver.read_to_end(&mut got).unwrap();
            got
        });
        src.set_nonblocking(true).unwrap();
        dst.set_nonblocking(true).unwrap();
        pump.reset();
        while !pump.finished() {
            let r = if pump.wants_read() {
                PollFlags::POLLIN
            } else {
                PollFlags::empty()
            };
            let w = if pump.wants_write() {
                PollFlags::POLLOUT
            } else {
                PollFlags::empty()
            };
            let mut fds = [PollFd::new(src.as_fd(), r), PollFd::new(dst.as_fd(), w)];
            assert!(
                poll(&mut fds, PollTimeout::from(5000u16)).unwrap() > 0,
                "stalled"
            );
            pump.wakeups += 1;
            pump.step(&mut src, &mut dst).unwrap();
        }
        finish(dst);
        writer.join().unwrap();
        (reader.join().unwrap(), pump)
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn splice_moves_every_byte_in_order_and_counts_them() {
        let data = sample(5 << 20);
        let (got, pump) = relay_through(Pump::new(limits::DATA_BUFFER, None), data.clone());
        assert_eq!(pump.method(), "splice");
        assert_eq!(pump.bytes, data.len() as u64);
        assert!(got == data, "bytes differ");
    }

    #[test]
    fn max_recv_buf_size_small_reads_still_deliver_everything() {
        let data = sample(300_001);
        let (got, pump) = relay_through(Pump::new(limits::DATA_BUFFER, Some(1000)), data.clone());
        assert_eq!(pump.bytes, data.len() as u64);
        assert!(got == data, "bytes differ");
    }

    #[test]
    fn read_write_fallback_moves_every_byte_in_order() {
        let mut pump = Pump::new(limits::DATA_BUFFER, Some(3000));
        pump.path = pump.copy_path();
        let data = sample(2 << 20);
        let (got, pump) = relay_through(pump, data.clone());
        assert_eq!(pump.method(), "read/write");
        assert_eq!(pump.bytes, data.len() as u64);
        assert!(got == data, "bytes differ");
    }

    #[test]
    fn an_empty_transfer_finishes_with_zero_bytes() {
        let (got, pump) = relay_through(Pump::new(limits::DATA_BUFFER, None), Vec::new());
        assert!(got.is_empty());
        assert_eq!(pump.bytes, 0);
    }

    #[test]
    fn no_buffer_is_allocated_while_splice_works() {
        let (_, pump) = relay_through(Pump::new(limits::DATA_BUFFER, None), sample(70_000));
        assert!(pump.buf.is_empty());
    }
}

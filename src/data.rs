//! Moving the bytes of one transfer from one data socket to the other.
//!
//! A [`Pump`] moves them with splice(2) through one kernel pipe (made at the
//! session's first transfer, kept for the rest of it), so file data never
//! passes through user space. If the kernel refuses splice for these
//! sockets (EINVAL, ENOSYS) the pump falls back, for the rest of the
//! session, to read/write through one fixed buffer. Neither path allocates
//! per chunk; every call is non-blocking and the relay's poll loop says when
//! to try again. The byte count is what the sink accepted, exactly.
//!
//! A rate-limited transfer (SPEC 14) is paced by a [`Bucket`] in the pump:
//! the pump reads from the source at most what the bucket allows, and
//! while it allows too little the relay stops polling the source and
//! sleeps in poll(2) until the bucket has refilled ([`Pump::resume_at`]).
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

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
    /// the pace of a rate-limited transfer
    /// the source's pace under a rate limit
    pub pace: Pace,
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
            pace: Pace::default(),
        }
    }

    /// When the source, held back by the pace, may be read again; None
    /// when the pace does not hold it back now.
    pub fn resume_at(&self) -> Option<Instant> {
        self.pace.resume_at(self.may_read())
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
        self.pace = Pace::default();
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
    /// Not while the pace holds the source back.
    pub fn wants_read(&self) -> bool {
        self.may_read() && self.pace.open()
    }

    /// [`Pump::wants_read`] but for the pace.
    fn may_read(&self) -> bool {
        match &self.path {
            Path::Splice(p) => !self.eof && !self.pipe_full && self.in_pipe < p.capacity(),
            _ => (!self.eof || self.leftover.is_some()) && self.end < self.buf.len(),
        }
    }

    /// The most the next read may take: room, MaxRecvBufSize and the pace.
    fn read_len(&self, room: usize) -> usize {
        self.pace.cap(self.max_read.map_or(room, |m| m.min(room)))
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
            // wants_read() said yes: len > 0, so 0 below is end of file.
            let len = self.read_len(pipe.capacity() - self.in_pipe);
            return match pipe.fill_from(src.as_fd(), len) {
                Ok(0) => {
                    self.eof = true;
                    Ok(true)
                }
                Ok(n) => {
                    self.in_pipe += n;
                    self.pace.spend(n);
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
        let len = self.read_len(self.buf.len() - self.end);
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
                self.pace.spend(n);
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

/// Nanoseconds per second: the bucket counts in byte-nanoseconds, so that
/// refills lose no fraction of a byte however often they come.
const NANOS: u128 = 1_000_000_000;

/// The pace of a rate-limited transfer: a token bucket. It fills at `rate`
/// bytes per second up to [`limits::RATE_BURST`] (and starts full: the
/// first buffer goes out at once); every byte read from the source takes
/// one out. So by any time t after the start at most RATE_BURST + rate * t
/// bytes have been read, and as long as the relay wakes when the bucket
/// allows a read ([`Bucket::resume_at`]) it reads about rate * t.
///
/// Why not the kernel's pacing (SO_MAX_PACING_RATE on the sink socket):
/// measured on loopback (Linux 6.18, 6 MiB at 1 MiB/s, 2.5 MB at 500 KB/s,
/// 1 MiB at 100 KiB/s) it delivered 106%, 112% and 157% of the limit,
/// since the initial congestion window (hundreds of KiB with loopback's
/// 64 KiB segments) leaves unpaced; SPEC 14 wants at most 100%. The bucket
/// also paces the source, so uploads and TLS need nothing more.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// bytes per second, > 0
    rate: u64,
    /// byte-nanoseconds saved up, at most RATE_BURST * NANOS
    credit: u128,
    /// the time `credit` was brought up to
    last: Instant,
}

impl Bucket {
    /// An empty bucket for `rate` bytes per second (0 is taken as 1):
    /// the pace holds from the first byte, so that the average over the
    /// whole transfer, however it is timed, never exceeds the rate.
    pub fn new(rate: u64, now: Instant) -> Bucket {
        Bucket {
            rate: rate.max(1),
            credit: 0,
            last: now,
        }
    }

    /// Add what `now - last` earned, up to the burst.
    pub fn refill(&mut self, now: Instant) {
        let earned = now.saturating_duration_since(self.last).as_nanos() * u128::from(self.rate);
        self.last = self.last.max(now);
        self.credit = (self.credit + earned).min(u128::from(limits::RATE_BURST) * NANOS);
    }

    /// Whole bytes that may be read now.
    pub fn allowance(&self) -> usize {
        usize::try_from(self.credit / NANOS).unwrap_or(usize::MAX)
    }

    /// `n` bytes were read.
    pub fn spend(&mut self, n: usize) {
        self.credit = self.credit.saturating_sub(n as u128 * NANOS);
    }

    /// The smallest read worth a wake-up: 1/RATE_WAKEUPS s of the rate,
    /// at least a byte, at most half the burst (so a late wake-up loses
    /// nothing to the bucket's cap).
    fn quantum(&self) -> u64 {
        (self.rate / limits::RATE_WAKEUPS).clamp(1, limits::RATE_BURST / 2)
    }

    /// None when a read of a [quantum](Bucket::quantum) is allowed now,
    /// else the time it will be (rounded up to the nanosecond).
    pub fn resume_at(&self) -> Option<Instant> {
        let want = u128::from(self.quantum()) * NANOS;
        let missing = want.checked_sub(self.credit).filter(|m| *m > 0)?;
        let nanos = missing.div_ceil(u128::from(self.rate));
        Some(self.last + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
    }
}

/// The pace of one transfer's source: a [`Bucket`] under a rate limit,
/// nothing without one. Both pumps keep one; the relay sets and refills
/// it.
#[derive(Debug, Clone, Default)]
pub struct Pace(Option<Bucket>);

impl Pace {
    /// Read at most `rate` bytes per second; None: no limit.
    pub fn new(rate: Option<u64>, now: Instant) -> Pace {
        Pace(rate.map(|r| Bucket::new(r, now)))
    }

    /// Bring the pace up to `now`; call before polling and before a step.
    pub fn refill(&mut self, now: Instant) {
        if let Some(b) = self.0.as_mut() {
            b.refill(now);
        }
    }

    /// When a source that `may_read` may be read again; None when the pace
    /// does not hold it back now.
    fn resume_at(&self, may_read: bool) -> Option<Instant> {
        self.0
            .as_ref()
            .filter(|_| may_read)
            .and_then(Bucket::resume_at)
    }

    /// The pace lets the source be read now.
    fn open(&self) -> bool {
        self.0.as_ref().is_none_or(|b| b.resume_at().is_none())
    }

    /// At most `len` bytes, and no more than the pace allows.
    fn cap(&self, len: usize) -> usize {
        self.0.as_ref().map_or(len, |b| b.allowance().min(len))
    }

    /// `n` bytes were read.
    fn spend(&mut self, n: usize) {
        if let Some(b) = self.0.as_mut() {
            b.spend(n);
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
    /// the pace of a rate-limited transfer
    /// the source's pace under a rate limit
    pub pace: Pace,
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
            pace: Pace::default(),
        }
    }

    /// As [`Pump::resume_at`]. Plaintext TLS already holds is behind the
    /// pace too, so the relay must call `step` then, not wait for the
    /// socket.
    pub fn resume_at(&self) -> Option<Instant> {
        self.pace.resume_at(self.may_read())
    }

    /// Room to read into and no end yet, whatever the pace says.
    fn may_read(&self) -> bool {
        !self.eof && self.end < self.buf.len()
    }

    /// Reading now: [`TlsPump::may_read`] and the pace allows it.
    fn wants_read(&self) -> bool {
        self.may_read() && self.pace.open()
    }

    /// The poll events each side waits for: (source, sink).
    pub fn flags(&self, src: &Channel, dst: &Channel) -> (PollFlags, PollFlags) {
        let mut s = PollFlags::empty();
        if self.wants_read() {
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
            if self.wants_read() {
                let room = self
                    .pace
                    .cap((self.buf.len() - self.end).min(self.max_read));
                // wants_read() said yes: room > 0, so Some(0) is the end.
                match read_plain(src, &mut self.buf[self.end..self.end + room]) {
                    Ok(Some(0)) => self.eof = true,
                    Ok(Some(n)) => {
                        self.end += n;
                        self.pace.spend(n);
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

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "closed without TLS close_notify: the data may be cut short",
    )
}

/// End a sink whose source broke: a reset, not an orderly end (no FIN, no
/// close_notify), so that its peer cannot take what it got for the whole
/// file.
pub fn reset(sink: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ = nix::sys::socket::setsockopt(sink, nix::sys::socket::sockopt::Linger, &linger);
}

/// Plaintext from `ch`: Some(0) at its end (close_notify), None when
/// nothing is there now.
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
            // SECURITY: the peer closed without close_notify: the data may
            // have been cut (RFC 4217 section 7); never passed on as an end.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(truncated()),
            Err(e) => return Err(e),
        }
        match conn.read_tls(&mut ch.sock) {
            // The connection's end before close_notify (which the reader
            // above would have reported as Ok(0)): cut.
            Ok(0) => return Err(truncated()),
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
    fn a_bucket_starts_empty_and_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1 << 20, t0);
        // Paced from the first byte.
        assert_eq!(b.allowance(), 0);
        // A quantum is 1/16 s of the rate, 64 KiB here, capped at 32 KiB:
        // 1/32 s.
        assert_eq!(b.resume_at(), Some(t0 + Duration::from_micros(31_250)));
        b.refill(t0 + Duration::from_millis(250));
        assert_eq!(b.allowance(), 64 << 10);
        // Never more than the burst, however long the source was idle.
        b.refill(t0 + Duration::from_secs(60));
        assert_eq!(b.allowance() as u64, limits::RATE_BURST);
    }

    #[test]
    fn a_bucket_loses_no_fraction_of_a_byte_to_frequent_refills() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000, t0);
        b.spend(b.allowance());
        for ms in 1..=1000 {
            b.refill(t0 + Duration::from_micros(ms * 1000 + 7));
        }
        assert_eq!(b.allowance(), 1000);
        // A slow rate waits for at least one byte, not for zero.
        let mut slow = Bucket::new(1, t0);
        slow.spend(slow.allowance());
        assert_eq!(slow.resume_at(), Some(t0 + Duration::from_secs(1)));
        // A time before the last refill changes nothing.
        slow.refill(t0 + Duration::from_secs(2));
        slow.refill(t0);
        assert_eq!(slow.allowance(), 2);
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

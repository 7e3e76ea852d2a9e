//! Moving the bytes of one transfer from one data socket to the other.
//!
//! A [`Pump`] owns one fixed buffer, allocated once per session; the relay's
//! poll loop tells it when its source is readable or its sink writable.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

/// State of one one-way copy.
pub struct Pump {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// the source reached end of file
    pub eof: bool,
    /// bytes written to the sink
    pub bytes: u64,
    /// largest single read (MaxRecvBufSize)
    max_read: usize,
}

impl Pump {
    pub fn new(size: usize, max_read: Option<usize>) -> Pump {
        Pump {
            buf: vec![0u8; size].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            bytes: 0,
            max_read: max_read.unwrap_or(size).clamp(1, size),
        }
    }

    /// Forget the previous transfer, keep the buffer.
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
        self.eof = false;
        self.bytes = 0;
    }

    /// Want to read: room in the buffer and no end of file yet.
    pub fn wants_read(&self) -> bool {
        !self.eof && self.end < self.buf.len()
    }

    /// Want to write: bytes waiting.
    pub fn wants_write(&self) -> bool {
        self.end > self.start
    }

    /// All bytes read and delivered.
    pub fn finished(&self) -> bool {
        self.eof && !self.wants_write()
    }

    /// Read what the source has (non-blocking source). Returns bytes read.
    pub fn fill(&mut self, src: &mut TcpStream) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let room = (self.buf.len() - self.end).min(self.max_read);
        match src.read(&mut self.buf[self.end..self.end + room]) {
            Ok(0) => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => {
                self.end += n;
                Ok(n)
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Write what is buffered (non-blocking sink). Returns bytes written.
    pub fn drain(&mut self, dst: &mut TcpStream) -> io::Result<usize> {
        match dst.write(&self.buf[self.start..self.end]) {
            Ok(n) => {
                self.start += n;
                self.bytes += n as u64;
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                }
                Ok(n)
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }
}

/// Tell the sink's peer that no more data comes, then let go of the socket.
pub fn finish(sink: TcpStream) {
    let _ = sink.shutdown(Shutdown::Write);
}

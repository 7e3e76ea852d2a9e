//! The daemon's signals as readable events: a `signalfd(2)` that the poll
//! loop watches, so no handler runs at an arbitrary point, nothing global is
//! mutated and no thread is needed.
//!
//! [`Signals::block`] blocks the daemon's signals and opens the signalfd;
//! [`Signals::restore`] gives a forked child back the mask it had before,
//! so a session is killed by SIGTERM exactly as under inetd.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// A signal the daemon acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// SIGTERM, SIGINT, SIGQUIT: end the daemon and its sessions.
    Stop(i32),
    /// SIGHUP: re-read the configuration, reopen the log.
    Reload,
    /// SIGUSR1: rotate a log file.
    Rotate,
    /// SIGCHLD: reap children.
    Child,
}

/// The blocked signals and the descriptor they arrive on.
pub struct Signals {
    fd: SignalFd,
    old_mask: SigSet,
}

const HANDLED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGCHLD,
];

impl Signals {
    /// Block the daemon's signals (they queue instead of acting) and open a
    /// non-blocking, close-on-exec signalfd for them.
    pub fn block() -> io::Result<Signals> {
        let mut set = SigSet::empty();
        for s in HANDLED {
            set.add(s);
        }
        let mut old_mask = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old_mask))?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals { fd, old_mask })
    }

    /// Every signal that is pending now (several of one kind arrive as one).
    pub fn pending(&self) -> io::Result<Vec<Event>> {
        let mut out = Vec::new();
        while let Some(info) = self.fd.read_signal()? {
            let n = info.ssi_signo as i32;
            let ev = match Signal::try_from(n) {
                Ok(Signal::SIGHUP) => Event::Reload,
                Ok(Signal::SIGUSR1) => Event::Rotate,
                Ok(Signal::SIGCHLD) => Event::Child,
                _ => Event::Stop(n),
            };
            if !out.contains(&ev) {
                out.push(ev);
            }
        }
        Ok(out)
    }

    /// In a forked child: close the signalfd and restore the signal mask the
    /// process had before [`Signals::block`].
    pub fn restore(self) -> io::Result<()> {
        let Signals { fd, old_mask } = self;
        drop(fd);
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None)?;
        Ok(())
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Name of a signal number, for the log.
pub fn name(n: i32) -> &'static str {
    Signal::try_from(n).map(|s| s.as_str()).unwrap_or("signal")
}

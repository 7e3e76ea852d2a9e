//! Thin wrappers around the operating system: the only home of `unsafe`.
//!
//! Everything here is small and does one system thing; policy lives elsewhere.

// The one module tree where unsafe code is allowed (STYLE.md principle 3);
// every block has a `// SAFETY:` comment (clippy undocumented_unsafe_blocks).
#![allow(unsafe_code)]

pub mod accounts;
pub mod daemon;
pub mod jail;
pub mod net;
pub mod resolve;
pub mod sandbox;
pub mod signals;
pub mod splice;
pub mod transparent;

/// The contents of a message file (WelcomeMessage, DenyMessage,
/// MaxClientsMessage), at most `limit` bytes. SECURITY: opened without
/// following a symbolic link and without blocking (O_NOFOLLOW |
/// O_NONBLOCK), and read only when what was opened is a regular file
/// (fstat of the descriptor): a FIFO or a device would hang the session
/// or the daemon. NotFound when there is no file.
pub fn read_message_file(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => std::io::Error::other("it is a symbolic link"),
            _ => e,
        })?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = Vec::new();
    file.take(limit).read_to_end(&mut text)?;
    Ok(text)
}

/// The monotonic clock: the time the driver hands the session engine
/// (which never reads a clock itself), and a start for its tests.
pub fn monotonic() -> std::time::Instant {
    std::time::Instant::now()
}

/// Local wall-clock time, broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// 0 = Sunday
    pub weekday: u32,
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl LocalTime {
    /// `YYYY/MM/DD`, ftp-proxy's `%d`.
    pub fn date(&self) -> String {
        format!("{:04}/{:02}/{:02}", self.year, self.month, self.day)
    }
    /// ctime(3) without its newline: `Wed Dec  2 10:00:00 2026` (xferlog).
    pub fn ctime(&self) -> String {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let day = DAYS.get(self.weekday as usize).unwrap_or(&"Thu");
        let month = MONTHS
            .get((self.month as usize).saturating_sub(1))
            .unwrap_or(&"Jan");
        format!(
            "{day} {month} {:>2} {:02}:{:02}:{:02} {}",
            self.day, self.hour, self.minute, self.second, self.year
        )
    }
    /// `HH:MM:SS`, ftp-proxy's `%t`.
    pub fn time(&self) -> String {
        format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }
}

/// Load the time zone now, while /etc/localtime is still reachable: after the
/// chroot glibc keeps using what it loaded here.
pub fn load_timezone() {
    unsafe extern "C" {
        fn tzset();
    }
    // SAFETY: tzset() takes no arguments and only initialises libc's
    // time-zone globals; we are single-threaded.
    unsafe { tzset() }
}

/// The current local time.
pub fn now() -> LocalTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    // SAFETY: `tm` is plain old data, fully written by localtime_r on success;
    // both pointers are valid for the duration of the call.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return LocalTime {
                weekday: 4,
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
            };
        }
        tm
    };
    LocalTime {
        weekday: tm.tm_wday as u32,
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
    }
}

/// A random number from the kernel, for SockBindRand. Falls back to the
/// clock's nanoseconds if getrandom(2) fails (it does not on Linux >= 3.17).
pub fn random_u32() -> u32 {
    let mut buf = [0u8; 4];
    // SAFETY: buf is valid for 4 writable bytes.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n == 4 {
        u32::from_ne_bytes(buf)
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    }
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Host and domain name for `%h` and `%n`. The domain is the kernel's NIS
/// domain name, else what follows the first dot of the host name, else
/// `[unknown network]` as ftp-proxy says (never the kernel's `(none)`).
pub fn host_and_domain() -> (String, String) {
    let (host, domain) = host_and_kernel_domain();
    let domain = if !domain.is_empty() && domain != "(none)" {
        domain
    } else if let Some((_, d)) = host.split_once('.').filter(|(_, d)| !d.is_empty()) {
        d.to_string()
    } else {
        "[unknown network]".to_string()
    };
    (host, domain)
}

fn host_and_kernel_domain() -> (String, String) {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut uts: libc::utsname = unsafe_zeroed_utsname();
    // SAFETY: uts is a valid, writable utsname.
    let domain = if unsafe { libc::uname(&mut uts) } == 0 {
        // SAFETY: uname NUL-terminates domainname.
        unsafe { std::ffi::CStr::from_ptr(uts.domainname.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    } else {
        String::new()
    };
    (host, domain)
}

fn unsafe_zeroed_utsname() -> libc::utsname {
    // SAFETY: utsname is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

//! The session's sandbox (SPEC 15), entered after the jail and the
//! privilege drop and before the first relayed byte: a seccomp filter that
//! allows only the system calls the relay makes (anything else kills the
//! process), and a Landlock ruleset that takes away every file-system
//! right (no rule grants one back, so a session run without ServerRoot is
//! confined too) and, where the kernel's Landlock ABI has network rules and
//! the configuration has data port ranges, allows TCP bind only there.
//!
//! seccomp through a crate, not BPF of our own: `seccompiler`
//! (Firecracker's, which compiles a syscall allow-list with argument
//! checks to a BPF program). Landlock is three system calls, made here
//! (the `landlock` crate needs a proc-macro this package's static build
//! flags cannot build). The daemon's parent never enters the sandbox; each
//! session child does.

use std::collections::BTreeMap;

use seccompiler::{
    SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond,
    SeccompFilter, SeccompRule,
};

use crate::config::{Config, PortRange};

/// What the sandbox could and could not do on this kernel.
#[derive(Debug, Default)]
pub struct Report {
    /// The seccomp filter is installed.
    pub seccomp: bool,
    /// How Landlock went ("fully enforced", ...).
    pub landlock: String,
    /// Lines worth a warning (no seccomp, no Landlock).
    pub warnings: Vec<String>,
}

/// System calls a session makes after the jail, with no argument check.
/// Everything it does is reading, writing, polling and (re)arranging
/// sockets, a pipe for splice, memory and time; see the module doc.
const ALLOWED: &[libc::c_long] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_close,
    libc::SYS_shutdown,
    libc::SYS_connect,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_getsockopt,
    libc::SYS_splice,
    libc::SYS_pipe2,
    libc::SYS_fstat,
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_gettimeofday,
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_getrandom,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_wait4,
    libc::SYS_restart_syscall,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// FIONBIO, whose type differs between the C libraries (c_ulong in
/// glibc, c_int in musl); the value is the same.
const FIONBIO: u64 = 0x5421;

fn cond(arg: u8, op: Op, value: u64) -> Result<Cond, String> {
    Cond::new(arg, Len::Dword, op, value).map_err(|e| e.to_string())
}

fn rule(conds: Vec<Cond>) -> Result<SeccompRule, String> {
    SeccompRule::new(conds).map_err(|e| e.to_string())
}

/// The allow-list, with argument checks where they are cheap (as vsftpd's
/// seccomp sandbox does): socket families and types, setsockopt levels,
/// fcntl commands, ioctl requests.
fn rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        ALLOWED.iter().map(|&sc| (sc, Vec::new())).collect();
    // SECURITY: sockets only of the kinds the relay uses: TCP (clients,
    // servers, LDAP), UDP (DNS), and the Unix datagram socket of syslog.
    let mut socket = Vec::new();
    for family in [libc::AF_INET, libc::AF_INET6, libc::AF_UNIX] {
        for kind in [libc::SOCK_STREAM, libc::SOCK_DGRAM] {
            socket.push(rule(vec![
                cond(0, Op::Eq, family as u64)?,
                cond(1, Op::MaskedEq(0xf), kind as u64)?,
            ])?);
        }
    }
    rules.insert(libc::SYS_socket, socket);
    // SECURITY: socket options at the socket, TCP and IP levels only.
    let mut setsockopt = Vec::new();
    for level in [
        libc::SOL_SOCKET,
        libc::IPPROTO_TCP,
        libc::IPPROTO_IP,
        libc::IPPROTO_IPV6,
    ] {
        setsockopt.push(rule(vec![cond(1, Op::Eq, level as u64)?])?);
    }
    rules.insert(libc::SYS_setsockopt, setsockopt);
    let mut fcntl = Vec::new();
    for cmd in [
        libc::F_GETFD,
        libc::F_SETFD,
        libc::F_GETFL,
        libc::F_SETFL,
        libc::F_GETPIPE_SZ,
        libc::F_SETPIPE_SZ,
    ] {
        fcntl.push(rule(vec![cond(1, Op::Eq, cmd as u64)?])?);
    }
    rules.insert(libc::SYS_fcntl, fcntl);
    // The only ioctl: std's set_nonblocking.
    rules.insert(
        libc::SYS_ioctl,
        vec![rule(vec![cond(1, Op::Eq, FIONBIO)?])?],
    );
    Ok(rules)
}

#[cfg(target_arch = "x86_64")]
const ARCH: seccompiler::TargetArch = seccompiler::TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: seccompiler::TargetArch = seccompiler::TargetArch::aarch64;

/// Install the seccomp filter: anything not allowed kills the process.
fn seccomp() -> Result<(), String> {
    let filter = SeccompFilter::new(
        rules()?,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        ARCH,
    )
    .map_err(|e| e.to_string())?;
    let program: seccompiler::BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    seccompiler::apply_filter(&program).map_err(|e| e.to_string())
}

/// The local ports the session may bind: every configured data port range
/// (passive, active, towards the server), plus port 0 (any) for the kinds
/// without one. None when no range is configured (or LDAP entries may set
/// their own): no network rule then.
fn bind_ports(cfg: &Config) -> Option<Vec<u16>> {
    if cfg.ldap.is_some() {
        return None;
    }
    let contexts = std::iter::once(&cfg.global).chain(cfg.users.iter().map(|u| &u.settings));
    let mut ranges: Vec<Option<PortRange>> = Vec::new();
    for s in contexts {
        ranges.extend([s.passive_ports, s.active_ports, s.destination_ports]);
    }
    if ranges.iter().all(Option::is_none) {
        return None;
    }
    let mut ports: Vec<u16> = ranges
        .iter()
        .flatten()
        .flat_map(|r| r.min..=r.max)
        .collect();
    if ranges.iter().any(Option::is_none) {
        ports.push(0);
    }
    ports.sort_unstable();
    ports.dedup();
    Some(ports)
}

/// How far Landlock got.
enum Landlock {
    Full,
    /// The kernel's ABI has no network rules: file system only.
    FileSystemOnly,
    Unsupported,
}

/// `struct landlock_ruleset_attr` (ABI 4 and later; the `scoped` field of
/// ABI 6 stays zero and is not passed).
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
}

/// `struct landlock_net_port_attr`.
#[repr(C)]
struct NetPortAttr {
    allowed_access: u64,
    port: u64,
}

const CREATE_RULESET_VERSION: libc::c_uint = 1;
const RULE_NET_PORT: libc::c_int = 2;
const ACCESS_NET_BIND_TCP: u64 = 1;

/// Every file-system right the kernel's Landlock ABI knows.
fn all_fs_rights(abi: i64) -> u64 {
    let mut rights = (1u64 << 13) - 1; // ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2 {
        rights |= 1 << 13; // REFER
    }
    if abi >= 3 {
        rights |= 1 << 14; // TRUNCATE
    }
    if abi >= 5 {
        rights |= 1 << 15; // IOCTL_DEV
    }
    rights
}

/// Landlock: no file-system access at all; TCP bind only in the data port
/// ranges when there are some (ABI 4 and later).
fn landlock(cfg: &Config) -> Result<Landlock, String> {
    // SAFETY: the version query takes no pointer (NULL, size 0).
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    if abi < 1 {
        return Ok(Landlock::Unsupported);
    }
    let wanted = bind_ports(cfg);
    let ports = if abi >= 4 { wanted.clone() } else { None };
    let attr = RulesetAttr {
        handled_access_fs: all_fs_rights(abi),
        handled_access_net: if ports.is_some() {
            ACCESS_NET_BIND_TCP
        } else {
            0
        },
    };
    // An ABI without network rules takes the file-system field only.
    let size = if abi >= 4 {
        std::mem::size_of::<RulesetAttr>()
    } else {
        std::mem::size_of::<u64>()
    };
    // SAFETY: `attr` is a valid landlock_ruleset_attr of at least `size`
    // bytes for the duration of the call.
    let fd = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, &attr, size, 0u32) };
    if fd < 0 {
        return Err(format!(
            "landlock_create_ruleset: {}",
            std::io::Error::last_os_error()
        ));
    }
    let fd = fd as libc::c_int;
    let result = (|| {
        for port in ports.iter().flatten() {
            let rule = NetPortAttr {
                allowed_access: ACCESS_NET_BIND_TCP,
                port: u64::from(*port),
            };
            // SAFETY: `fd` is the ruleset just created; `rule` is a valid
            // landlock_net_port_attr for the duration of the call.
            let r = unsafe {
                libc::syscall(libc::SYS_landlock_add_rule, fd, RULE_NET_PORT, &rule, 0u32)
            };
            if r < 0 {
                return Err(format!(
                    "landlock_add_rule: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
        // SAFETY: `fd` is a ruleset; no_new_privs is set (jail::enter).
        let r = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) };
        if r < 0 {
            return Err(format!(
                "landlock_restrict_self: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    })();
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    result?;
    Ok(if abi < 4 && wanted.is_some() {
        Landlock::FileSystemOnly
    } else {
        Landlock::Full
    })
}

/// Enter the sandbox: Landlock first (it needs a few system calls of its
/// own), then seccomp. A kernel without either is reported, not fatal
/// (the jail and the privilege drop still hold).
pub fn enter(cfg: &Config) -> Report {
    let mut report = Report::default();
    report.landlock = match landlock(cfg) {
        Ok(Landlock::Full) => "enforced".into(),
        Ok(Landlock::FileSystemOnly) => {
            "file system only (this kernel's Landlock has no network rules)".into()
        }
        Ok(Landlock::Unsupported) => {
            report.warnings.push(
                "Landlock is not available in this kernel: the session runs without it".into(),
            );
            "not enforced".into()
        }
        Err(e) => {
            report
                .warnings
                .push(format!("Landlock could not be set up: {e}"));
            "failed".into()
        }
    };
    match seccomp() {
        Ok(()) => report.seccomp = true,
        Err(e) => report
            .warnings
            .push(format!("seccomp filter could not be installed: {e}")),
    }
    report
}

/// A debug build's self-test (tests/sandbox.rs): a system call the filter
/// does not allow, which must kill the process.
#[cfg(debug_assertions)]
pub fn self_test() {
    if std::env::var_os("FTPGATE_SANDBOX_SELFTEST").is_some() {
        // openat: no session ever opens a file after the jail.
        let _ = std::fs::File::open("/");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_compiles_to_a_filter() {
        let filter = SeccompFilter::new(
            rules().expect("rules"),
            SeccompAction::KillProcess,
            SeccompAction::Allow,
            ARCH,
        )
        .expect("filter");
        let program: Result<seccompiler::BpfProgram, _> = filter.try_into();
        assert!(program.is_ok());
    }

    #[test]
    fn bind_ports_cover_the_ranges_and_port_zero_for_the_rest() {
        let cfg = Config::parse_str(
            "t.conf",
            "DestinationAddress a\nPassiveMinDataPort 40000\nPassiveMaxDataPort 40002\n",
        )
        .expect("config");
        assert_eq!(bind_ports(&cfg), Some(vec![0, 40000, 40001, 40002]));
        let cfg = Config::parse_str("t.conf", "DestinationAddress a\n").expect("config");
        assert_eq!(bind_ports(&cfg), None);
    }
}

//! Several ftpgate hosts behind a load balancer (issue 15, item 4), for
//! real, in five network namespaces:
//!
//! ```text
//!   client ns    c0 10.78.0.2
//!        |
//!   director ns  d0 10.78.0.1   da 10.78.1.1   db 10.78.2.1
//!                ECMP route 10.78.100.1/32 (the service address)
//!                via 10.78.1.2 and 10.78.2.2 (examples/cluster/ecmp-director.sh)
//!        |                      |
//!   host A ns  a0 10.78.1.2     host B ns  b0 10.78.2.2
//!              lo 10.78.100.1              lo 10.78.100.1  (host-setup.sh)
//!              s0 10.78.3.11               s0 10.78.3.12
//!        |                      |
//!   server ns  br0 10.78.3.2 (a bridge over both hosts' links), vsftpd on 21
//! ```
//!
//! Each host runs ftpgate per connection from socat on 10.78.100.1:21 with
//! the SHIPPED examples/cluster/ftpgate-{a,b}.conf (addresses overridden):
//! TranslatedAddress is the host's own front address. In the main test
//! the director hashes flows on addresses and ports, so the sessions of
//! one client spread over both hosts, and the clients (Python ftplib,
//! tests/cluster_client.py) follow the 227 address; one host is then
//! lost. A second test hashes on addresses only and uses curl's defaults
//! (EPSV to the service address) from many client addresses. The
//! keepalived/IPVS example is only checked with `keepalived
//! --config-test`: IPVS is not in every kernel.
//!
//! Every namespace has a unique name (the test's PID) and is deleted by a
//! Drop guard after the processes started in it were killed by PID. All
//! addresses live only inside these namespaces. Needs root, `ip`, `socat`,
//! vsftpd and python3.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static NS_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The service address both hosts share.
const VIP: &str = "10.78.100.1";
/// The hosts' own (front) addresses: their TranslatedAddress.
const HOST_A: &str = "10.78.1.2";
const HOST_B: &str = "10.78.2.2";
/// The FTP server behind both hosts.
const SERVER: &str = "10.78.3.2";
/// Concurrent sessions in the spreading phase.
const SESSIONS: usize = 30;

fn tool(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

fn runnable(test: &str) -> bool {
    if skip_unless_ftpgate(test) {
        return false;
    }
    if !is_root() {
        eprintln!("SKIP {test}: needs root (network namespaces)");
        return false;
    }
    for t in ["ip", "socat", "vsftpd"] {
        if tool(t).is_none() {
            eprintln!("SKIP {test}: {t} not installed (scripts/install-deps)");
            return false;
        }
    }
    true
}

/// Run a command, panicking with its output when it fails.
fn must(args: &[&str]) {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..]);
    let r = run_bounded(cmd, 30);
    assert!(r.ok(), "{args:?} failed: {}", r.describe());
}

fn example_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/cluster")
        .join(name)
}

/// The five namespaces; deleted on drop.
struct Cluster {
    client: String,
    director: String,
    host_a: String,
    host_b: String,
    server: String,
}

impl Cluster {
    fn new() -> Cluster {
        let n = NS_COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}x{n}", std::process::id());
        let t = Cluster {
            client: format!("fgkc{id}"),
            director: format!("fgkd{id}"),
            host_a: format!("fgka{id}"),
            host_b: format!("fgkb{id}"),
            server: format!("fgks{id}"),
        };
        for ns in t.all() {
            must(&["ip", "netns", "add", ns]);
        }
        // From here on the guard exists: a failure below still deletes.
        let (c, d, a, b, s) = (
            t.client.as_str(),
            t.director.as_str(),
            t.host_a.as_str(),
            t.host_b.as_str(),
            t.server.as_str(),
        );
        let veth = |ns1: &str, dev1: &str, ns2: &str, dev2: &str| {
            must(&[
                "ip", "link", "add", dev1, "netns", ns1, "type", "veth", "peer", "name", dev2,
                "netns", ns2,
            ]);
        };
        veth(c, "c0", d, "d0");
        veth(a, "a0", d, "da");
        veth(b, "b0", d, "db");
        veth(a, "s0", s, "sa");
        veth(b, "s0", s, "sb");
        must(&["ip", "-n", s, "link", "add", "br0", "type", "bridge"]);
        for port in ["sa", "sb"] {
            must(&["ip", "-n", s, "link", "set", port, "master", "br0"]);
            must(&["ip", "-n", s, "link", "set", port, "up"]);
        }
        let addrs: &[(&str, &str, &str)] = &[
            (c, "c0", "10.78.0.2/24"),
            (d, "d0", "10.78.0.1/24"),
            (d, "da", "10.78.1.1/24"),
            (d, "db", "10.78.2.1/24"),
            (a, "a0", "10.78.1.2/24"),
            (a, "s0", "10.78.3.11/24"),
            (b, "b0", "10.78.2.2/24"),
            (b, "s0", "10.78.3.12/24"),
            (s, "br0", "10.78.3.2/24"),
        ];
        for (ns, dev, addr) in addrs {
            must(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
            must(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        for ns in t.all() {
            must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        must(&["ip", "-n", c, "route", "add", "default", "via", "10.78.0.1"]);
        must(&["ip", "-n", a, "route", "add", "default", "via", "10.78.1.1"]);
        must(&["ip", "-n", b, "route", "add", "default", "via", "10.78.2.1"]);
        // The hosts answer from the service address through the director,
        // which has no route back to it but via the hosts themselves: no
        // reverse-path filter there.
        for key in ["all", "default", "d0", "da", "db"] {
            sysctl(d, &format!("net.ipv4.conf.{key}.rp_filter=0"));
        }
        // Every host: the service address on lo (the shipped script).
        for ns in [a, b] {
            let mut cmd = Cluster::cmd(ns, "env");
            cmd.arg(format!("VIP={VIP}"))
                .arg("sh")
                .arg(example_path("host-setup.sh"));
            let r = run_bounded(cmd, 30);
            assert!(r.ok(), "host-setup.sh in {ns}: {}", r.describe());
        }
        t
    }

    fn all(&self) -> [&String; 5] {
        [
            &self.client,
            &self.director,
            &self.host_a,
            &self.host_b,
            &self.server,
        ]
    }

    /// A command to run inside namespace `ns`.
    fn cmd(ns: &str, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, prog]);
        c
    }

    /// The shipped director script, with `args`, in the director;
    /// `policy` is the multipath hash policy (1: addresses and ports, 0:
    /// addresses only).
    fn director(&self, policy: u8, args: &[&str]) {
        let mut cmd = Cluster::cmd(&self.director, "env");
        cmd.arg(format!("VIP={VIP}"))
            .arg(format!("POLICY={policy}"))
            .arg("sh")
            .arg(example_path("ecmp-director.sh"))
            .args(args);
        let r = run_bounded(cmd, 30);
        assert!(r.ok(), "ecmp-director.sh {args:?}: {}", r.describe());
    }

    /// The director's route to the service address, as `ip` shows it.
    fn vip_route(&self) -> String {
        let mut cmd = Cluster::cmd(&self.director, "ip");
        cmd.args(["route", "show", VIP]);
        run_bounded(cmd, 30).stdout
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for ns in self.all() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn sysctl(ns: &str, setting: &str) {
    must(&["ip", "netns", "exec", ns, "sysctl", "-q", "-w", setting]);
}

/// True when process `pid`, in its own network namespace, has a TCP
/// listener on `port` (/proc/PID/net/tcp shows that process's namespace).
fn listens_in_ns(pid: u32, port: u16) -> bool {
    let ns = |p: &str| fs::read_link(format!("/proc/{p}/ns/net")).ok();
    if ns(&pid.to_string()).is_none() || ns(&pid.to_string()) == ns("self") {
        return false;
    }
    fs::read_to_string(format!("/proc/{pid}/net/tcp"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() > 3
                && cols[3] == "0A"
                && cols[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
}

fn wait_listening_in_ns(d: &Daemon, port: u16) {
    assert!(
        wait_until(START_SECS, || listens_in_ns(d.pid(), port)),
        "{} not listening on {port} in its namespace\n{}",
        d.name,
        d.output()
    );
}

/// vsftpd on 10.78.3.2:21 in the server namespace, anonymous with uploads
/// into `top`/pub.
fn start_server(t: &Cluster, dir: &TempDir, top: &Path) -> Daemon {
    let _ = fs::create_dir_all("/var/run/vsftpd/empty");
    let conf = dir.join("vsftpd.conf");
    fs::write(
        &conf,
        format!(
            "listen=YES\nlisten_ipv6=NO\nlisten_address={SERVER}\nlisten_port=21\n\
             background=NO\nrun_as_launching_user=NO\nanonymous_enable=YES\n\
             local_enable=NO\nanon_root={top}\nno_anon_password=NO\nwrite_enable=YES\n\
             anon_upload_enable=YES\nanon_other_write_enable=YES\n\
             anon_world_readable_only=NO\nanon_umask=022\nallow_writeable_chroot=YES\n\
             secure_chroot_dir=/var/run/vsftpd/empty\nseccomp_sandbox=NO\n\
             pasv_enable=YES\npasv_min_port=50000\npasv_max_port=50999\nport_enable=YES\n\
             connect_from_port_20=NO\nxferlog_enable=NO\nvsftpd_log_file={log}\n\
             max_clients=200\nmax_per_ip=0\nftpd_banner=vsftpd behind the cluster.\n",
            top = top.display(),
            log = dir.join("vsftpd.log").display(),
        ),
    )
    .unwrap();
    set_mode(&conf, 0o600);
    let mut cmd = Cluster::cmd(&t.server, vsftpd_bin().to_str().unwrap());
    cmd.arg(&conf);
    let d = Daemon::spawn("vsftpd(cluster)", cmd, dir.path());
    wait_listening_in_ns(&d, 21);
    d
}

/// One ftpgate host: the shipped configuration with the test's addresses,
/// jail and log; ftpgate per connection from socat on the service address.
struct Host {
    log: PathBuf,
    daemon: Option<Daemon>,
}

impl Host {
    fn start(ns: &str, example: &str, own: &str, dir: &TempDir, jail: &Path) -> Host {
        let text = fs::read_to_string(example_path(example)).unwrap();
        assert!(
            text.contains("\nTranslatedAddress ") || text.contains("\nTranslatedAddress\t"),
            "{example} sets no TranslatedAddress"
        );
        let log = dir.join(&format!("{example}.log"));
        // Later lines win.
        let conf = dir.join(example);
        fs::write(
            &conf,
            format!(
                "{text}\n# test overrides\nServerRoot {}\nLogDestination {}\nLogLevel DBG\n\
                 DestinationAddress {SERVER}\nTranslatedAddress {own}\n",
                jail.display(),
                log.display()
            ),
        )
        .unwrap();
        let mut cmd = Cluster::cmd(ns, "socat");
        cmd.arg(format!(
            "TCP4-LISTEN:21,bind={VIP},reuseaddr,fork,backlog=128"
        ))
        .arg(format!(
            "EXEC:{} -i -f {},nofork",
            proxy_bin().display(),
            conf.display()
        ));
        let d = Daemon::spawn(&format!("socat-{example}"), cmd, dir.path());
        wait_listening_in_ns(&d, 21);
        Host {
            log,
            daemon: Some(d),
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn sessions(&self) -> usize {
        self.log_text().matches("session start:").count()
    }

    /// The host fails: socat and every ftpgate session it started are
    /// killed, by PID.
    fn kill(&mut self) {
        self.daemon.take();
    }
}

fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cluster_client.py")
}

/// `cluster_client.py many` with `n` concurrent sessions.
fn many(t: &Cluster, n: usize, dir: &Path) -> Ran {
    let mut cmd = Cluster::cmd(&t.client, &python());
    cmd.arg(client_script())
        .args(["many", VIP, &n.to_string()])
        .arg(dir);
    run_bounded(cmd, CLIENT_SECS)
}

/// The hosts (227 addresses) the sessions named `prefix*` used.
fn hosts_used(stdout: &str, prefix: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[0] == "session" && f[1].starts_with(prefix) && f[2] == "host")
                .then(|| f[3].to_string())
        })
        .collect()
}

/// Every file a session wrote, compared byte for byte: its upload on the
/// server with what it sent, its downloads with the shared file and with
/// its upload.
fn check_session(name: &str, client_dir: &Path, pub_dir: &Path, shared: &[u8]) {
    let read = |p: PathBuf| fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let sent = read(client_dir.join(format!("sent-{name}.bin")));
    assert!(!sent.is_empty(), "{name}: nothing sent");
    assert_same_bytes(
        &format!("{name}: upload on the server"),
        &read(pub_dir.join(format!("up-{name}.bin"))),
        &sent,
    );
    assert_same_bytes(
        &format!("{name}: upload read back"),
        &read(client_dir.join(format!("got-up-{name}.bin"))),
        &sent,
    );
    assert_same_bytes(
        &format!("{name}: shared file, passive"),
        &read(client_dir.join(format!("got-shared-{name}.bin"))),
        shared,
    );
    assert_same_bytes(
        &format!("{name}: shared file, active"),
        &read(client_dir.join(format!("got-active-{name}.bin"))),
        shared,
    );
}

fn logs(a: &Host, b: &Host) -> String {
    format!(
        "--- host A log ---\n{}\n--- host B log ---\n{}",
        a.log_text(),
        b.log_text()
    )
}

#[test]
fn sessions_spread_over_two_ftpgate_hosts_behind_ecmp_and_survive_the_loss_of_one() {
    let test = "sessions_spread_over_two_ftpgate_hosts_behind_ecmp_and_survive_the_loss_of_one";
    if !runnable(test) {
        return;
    }
    let t = Cluster::new();
    let dir = TempDir::new("cluster");
    let jail = TempDir::new("cluster-jail");
    // The client writes here (every namespace sees the same file system).
    let client_dir = dir.join("client");
    fs::create_dir_all(&client_dir).unwrap();
    let top = dir.join("ftp");
    let pub_dir = top.join("pub");
    fs::create_dir_all(&pub_dir).unwrap();
    set_mode(&pub_dir, 0o777);
    let shared = random_bytes(1_500_000, 78);
    fs::write(pub_dir.join("shared.bin"), &shared).unwrap();
    set_mode(&pub_dir.join("shared.bin"), 0o644);

    let _server = start_server(&t, &dir, &top);
    let mut a = Host::start(&t.host_a, "ftpgate-a.conf", HOST_A, &dir, jail.path());
    let mut b = Host::start(&t.host_b, "ftpgate-b.conf", HOST_B, &dir, jail.path());
    t.director(1, &["up", HOST_A, HOST_B]);
    let route = t.vip_route();
    assert!(
        route.contains(HOST_A) && route.contains(HOST_B),
        "no ECMP route over both hosts:\n{route}"
    );

    // 1. Many concurrent sessions, spread over both hosts by the director.
    let r = many(&t, SESSIONS, &client_dir);
    assert!(r.ok(), "{}\n{}", r.describe(), logs(&a, &b));
    assert_eq!(
        r.stdout.lines().filter(|l| l.ends_with(" ok")).count(),
        SESSIONS,
        "{}",
        r.describe()
    );
    for i in 0..SESSIONS {
        check_session(&format!("m{i}"), &client_dir, &pub_dir, &shared);
    }
    let used = hosts_used(&r.stdout, "m");
    assert_eq!(
        used,
        BTreeSet::from([HOST_A.to_string(), HOST_B.to_string()]),
        "227 replies named {used:?}, not both hosts' own addresses"
    );
    let (on_a, on_b) = (a.sessions(), b.sessions());
    assert_eq!(on_a + on_b, SESSIONS, "{}", logs(&a, &b));
    assert!(
        on_a > 0 && on_b > 0,
        "host A served {on_a}, host B {on_b}\n{}",
        logs(&a, &b)
    );

    // 2. A session mid-way (logged in, transfers done) when the other
    // host fails. Which host it lands on is the director's choice: the
    // other one is then lost.
    let mut cmd = Cluster::cmd(&t.client, &python());
    cmd.arg(client_script())
        .arg("long")
        .arg(VIP)
        .arg(&client_dir)
        .arg("1");
    let mut long = Daemon::spawn("long session", cmd, dir.path());
    let long_out = long.stdout.clone();
    let waiting = || fs::read_to_string(&long_out).unwrap_or_default();
    assert!(
        wait_until(CLIENT_SECS, || waiting().contains("session long-1 waiting")),
        "{}\n{}",
        long.output(),
        logs(&a, &b)
    );
    let host = hosts_used(&waiting(), "long-1");
    let survivor = host
        .iter()
        .next()
        .cloned()
        .unwrap_or_else(|| panic!("no 227 address: {}", long.output()));
    assert_eq!(host.len(), 1, "{host:?}");
    let (keep, lose, lose_ns, lose_dev) = if survivor == HOST_A {
        (&mut a, &mut b, t.host_b.clone(), "b0")
    } else {
        (&mut b, &mut a, t.host_a.clone(), "a0")
    };
    let lost = if survivor == HOST_A { HOST_B } else { HOST_A };
    let served_by_lost = lose.sessions();
    // The host dies: its processes, its link, and the director's route.
    lose.kill();
    must(&["ip", "-n", &lose_ns, "link", "set", lose_dev, "down"]);
    t.director(1, &["remove", lost]);
    let route = t.vip_route();
    assert!(
        route.contains(&survivor) && !route.contains(lost),
        "route after the loss:\n{route}"
    );
    fs::write(client_dir.join("go-1"), b"").unwrap();
    let end = wait_until(CLIENT_SECS, || matches!(long.child.try_wait(), Ok(Some(_))));
    assert!(end, "the long session did not end\n{}", long.output());
    let status = long.child.try_wait().ok().flatten();
    assert!(
        status.is_some_and(|s| s.success()) && waiting().contains("session long-1 ok"),
        "the session on the surviving host failed after the loss\n{}\n{}",
        long.output(),
        logs(keep, lose)
    );
    check_session("long-1-1", &client_dir, &pub_dir, &shared);
    check_session("long-1-2", &client_dir, &pub_dir, &shared);

    // 3. New sessions after the loss all reach the survivor and succeed.
    let after = dir.join("after");
    fs::create_dir_all(&after).unwrap();
    let before = keep.sessions();
    let r = many(&t, 8, &after);
    assert!(r.ok(), "{}\n{}", r.describe(), logs(keep, lose));
    for i in 0..8 {
        check_session(&format!("m{i}"), &after, &pub_dir, &shared);
    }
    assert_eq!(
        hosts_used(&r.stdout, "m"),
        BTreeSet::from([survivor.clone()])
    );
    assert_eq!(keep.sessions(), before + 8, "{}", logs(keep, lose));
    assert_eq!(
        lose.sessions(),
        served_by_lost,
        "the lost host served again"
    );
}

/// With the director hashing on addresses only (POLICY=0), all connections
/// of a client address reach the same host, so EPSV and clients that
/// ignore the 227 address (curl's defaults) work too: their data
/// connections go to the service address, where ftpgate's passive
/// listener also accepts.
#[test]
fn with_hashing_on_addresses_only_epsv_reaches_the_host_of_the_session() {
    let test = "with_hashing_on_addresses_only_epsv_reaches_the_host_of_the_session";
    if !runnable(test) || tool("curl").is_none() {
        eprintln!("SKIP {test}: needs root, ip, socat, vsftpd and curl");
        return;
    }
    let t = Cluster::new();
    let dir = TempDir::new("cluster");
    let jail = TempDir::new("cluster-jail");
    let top = dir.join("ftp");
    let pub_dir = top.join("pub");
    fs::create_dir_all(&pub_dir).unwrap();
    set_mode(&pub_dir, 0o777);
    let shared = random_bytes(900_000, 79);
    fs::write(pub_dir.join("shared.bin"), &shared).unwrap();
    set_mode(&pub_dir.join("shared.bin"), 0o644);
    let _server = start_server(&t, &dir, &top);
    let a = Host::start(&t.host_a, "ftpgate-a.conf", HOST_A, &dir, jail.path());
    let b = Host::start(&t.host_b, "ftpgate-b.conf", HOST_B, &dir, jail.path());
    t.director(0, &["up", HOST_A, HOST_B]);
    // Sixteen client addresses: with hashing on addresses they are what
    // spreads the sessions.
    let clients: Vec<String> = (10..26).map(|i| format!("10.78.0.{i}")).collect();
    for c in &clients {
        must(&[
            "ip",
            "-n",
            &t.client,
            "addr",
            "add",
            &format!("{c}/24"),
            "dev",
            "c0",
        ]);
    }
    let curl = |c: &str, args: &[&str]| {
        let mut cmd = Cluster::cmd(&t.client, "curl");
        cmd.args(["-s", "-S", "--max-time", "60", "--interface", c])
            .args(["-u", "anonymous:ftpgate@example.org"])
            .args(args);
        run_bounded(cmd, CLIENT_SECS)
    };
    // Per address, one download and one upload session, all at once;
    // curl's defaults: EPSV, and the 227 address ignored.
    let results: Vec<(String, Ran, Ran)> = std::thread::scope(|scope| {
        let jobs: Vec<_> = clients
            .iter()
            .map(|c| {
                let (got, sent) = (
                    dir.join(&format!("got-{c}")),
                    dir.join(&format!("sent-{c}")),
                );
                fs::write(&sent, random_bytes(200_000, c.len() as u64 * 1000 + 7)).unwrap();
                let curl = &curl;
                scope.spawn(move || {
                    let down = curl(
                        c,
                        &[
                            "-o",
                            got.to_str().unwrap(),
                            &format!("ftp://{VIP}/pub/shared.bin"),
                        ],
                    );
                    let up = curl(
                        c,
                        &[
                            "-T",
                            sent.to_str().unwrap(),
                            &format!("ftp://{VIP}/pub/up-{c}.bin"),
                        ],
                    );
                    (c.clone(), down, up)
                })
            })
            .collect();
        jobs.into_iter().map(|j| j.join().unwrap()).collect()
    });
    for (c, down, up) in &results {
        assert!(
            down.ok(),
            "download from {c}: {}\n{}",
            down.describe(),
            logs(&a, &b)
        );
        assert!(
            up.ok(),
            "upload from {c}: {}\n{}",
            up.describe(),
            logs(&a, &b)
        );
        assert_same_bytes(
            &format!("download from {c}"),
            &fs::read(dir.join(&format!("got-{c}"))).unwrap_or_default(),
            &shared,
        );
        assert_same_bytes(
            &format!("upload from {c}"),
            &fs::read(pub_dir.join(format!("up-{c}.bin"))).unwrap_or_default(),
            &fs::read(dir.join(&format!("sent-{c}"))).unwrap(),
        );
    }
    let (on_a, on_b) = (a.sessions(), b.sessions());
    assert_eq!(on_a + on_b, 2 * clients.len(), "{}", logs(&a, &b));
    assert!(on_a > 0 && on_b > 0, "host A served {on_a}, host B {on_b}");
    // The transfers did go over EPSV, on both hosts, with no fallback to
    // PASV.
    for (name, h) in [("A", &a), ("B", &b)] {
        let log = h.log_text();
        assert!(
            log.contains("command: EPSV") && !log.contains("command: PASV"),
            "host {name}:\n{log}"
        );
    }
}

/// The shipped keepalived/IPVS example is at least well-formed: IPVS
/// itself is not in every kernel (not in the one these tests were written
/// on), so only keepalived's own configuration check runs.
#[test]
fn the_keepalived_example_passes_keepalived_config_test() {
    let test = "the_keepalived_example_passes_keepalived_config_test";
    let Some(keepalived) = tool("keepalived") else {
        eprintln!("SKIP {test}: keepalived not installed (scripts/install-deps)");
        return;
    };
    let mut cmd = Command::new(keepalived);
    cmd.arg("--config-test")
        .arg("-f")
        .arg(example_path("keepalived.conf"));
    let r = run_bounded(cmd, 30);
    assert!(r.ok(), "{}", r.describe());
    assert!(
        r.stdout.trim().is_empty() && r.stderr.trim().is_empty(),
        "keepalived warns:\n{}",
        r.describe()
    );
}

//! Transparent proxying for real (SPEC §5, §6; issue 4): three network
//! namespaces joined by veth pairs,
//!
//! ```text
//!   client ns  c0 10.77.1.2 / fd00:77:1::2
//!        |
//!   firewall ns  f1 10.77.1.1 / fd00:77:1::1   f2 10.77.2.1 / fd00:77:2::1
//!        |                                     (forwarding on; ftpgate on 2121)
//!   server ns  s0 10.77.2.2 / fd00:77:2::2     (pyftpdlib on port 21)
//! ```
//!
//! The firewall loads the SHIPPED rule sets from examples/ (nftables, and
//! separately iptables/ip6tables), with its interface names filled in, and
//! runs ftpgate from socat like an administrator would (one IPv4 and one
//! IPv6-only listener). The client runs curl against the SERVER's address
//! and must get the file byte-exact through ftpgate: passive (EPSV and
//! PASV) and active, IPv4 and IPv6.
//!
//! Every namespace has a unique name and is deleted by a Drop guard, after
//! the processes started in it were killed (by PID). All addresses live
//! only inside these namespaces. Needs root, `ip`, `nft`, `iptables`
//! (skipped when missing).

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static NS_COUNTER: AtomicUsize = AtomicUsize::new(0);

const PASV_RANGE: (u16, u16) = (40000, 40999);

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

fn runnable(test: &str, tools: &[&str]) -> bool {
    if skip_unless_ftpgate(test) {
        return false;
    }
    if !is_root() {
        eprintln!("SKIP {test}: needs root");
        return false;
    }
    for t in tools {
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

/// The three namespaces; deleted on drop.
struct Topology {
    client: String,
    firewall: String,
    server: String,
}

impl Topology {
    fn new() -> Topology {
        let n = NS_COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}x{n}", std::process::id());
        let t = Topology {
            client: format!("fgc{id}"),
            firewall: format!("fgf{id}"),
            server: format!("fgs{id}"),
        };
        for ns in [&t.client, &t.firewall, &t.server] {
            must(&["ip", "netns", "add", ns]);
        }
        // From here on the guard exists: a failure below still deletes.
        let c = t.client.as_str();
        let f = t.firewall.as_str();
        let s = t.server.as_str();
        must(&[
            "ip", "link", "add", "c0", "netns", c, "type", "veth", "peer", "name", "f1", "netns", f,
        ]);
        must(&[
            "ip", "link", "add", "s0", "netns", s, "type", "veth", "peer", "name", "f2", "netns", f,
        ]);
        let cfg: &[(&str, &str, &str, &str)] = &[
            (c, "c0", "10.77.1.2/24", "fd00:77:1::2/64"),
            (f, "f1", "10.77.1.1/24", "fd00:77:1::1/64"),
            (f, "f2", "10.77.2.1/24", "fd00:77:2::1/64"),
            (s, "s0", "10.77.2.2/24", "fd00:77:2::2/64"),
        ];
        for (ns, dev, v4, v6) in cfg {
            must(&["ip", "-n", ns, "addr", "add", v4, "dev", dev]);
            must(&["ip", "-n", ns, "addr", "add", v6, "dev", dev, "nodad"]);
            must(&["ip", "-n", ns, "link", "set", dev, "up"]);
            must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        must(&["ip", "-n", c, "route", "add", "default", "via", "10.77.1.1"]);
        must(&[
            "ip",
            "-n",
            c,
            "-6",
            "route",
            "add",
            "default",
            "via",
            "fd00:77:1::1",
        ]);
        must(&["ip", "-n", s, "route", "add", "default", "via", "10.77.2.1"]);
        must(&[
            "ip",
            "-n",
            s,
            "-6",
            "route",
            "add",
            "default",
            "via",
            "fd00:77:2::1",
        ]);
        must(&[
            "ip",
            "netns",
            "exec",
            f,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ]);
        must(&[
            "ip",
            "netns",
            "exec",
            f,
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.all.forwarding=1",
        ]);
        t
    }

    /// A command to run inside namespace `ns`.
    fn cmd(ns: &str, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, prog]);
        c
    }

    /// Load a shipped nftables rule set with the interface names filled in.
    fn load_nft(&self, example: &str, dir: &Path) {
        let text = fs::read_to_string(example_path(example)).unwrap();
        let text = text
            .replace("define LAN_IF = \"eth1\"", "define LAN_IF = \"f1\"")
            .replace("define WAN_IF = \"eth0\"", "define WAN_IF = \"f1\"");
        assert!(text.contains("\"f1\""), "{example}: no interface define");
        let file = dir.join("rules.nft");
        fs::write(&file, text).unwrap();
        must(&[
            "ip",
            "netns",
            "exec",
            &self.firewall,
            "nft",
            "-f",
            file.to_str().unwrap(),
        ]);
    }

    /// Run a shipped iptables script with the interface names filled in.
    fn load_iptables(&self, example: &str) {
        let path = example_path(example);
        must(&[
            "ip",
            "netns",
            "exec",
            &self.firewall,
            "env",
            "LAN_IF=f1",
            "WAN_IF=f1",
            "sh",
            path.to_str().unwrap(),
        ]);
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.client, &self.firewall, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn example_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// True when the process `pid` (in its own namespace) has a TCP listener
/// on `port`, read from /proc/PID/net/tcp{,6}, which show that process's
/// network namespace.
fn listens_in_ns(pid: u32, port: u16) -> bool {
    // Until `ip netns exec` has switched namespaces, /proc/PID/net shows the
    // test's own namespace, where anything may listen on that port.
    let ns = |p: &str| fs::read_link(format!("/proc/{p}/ns/net")).ok();
    if ns(&pid.to_string()).is_none() || ns(&pid.to_string()) == ns("self") {
        return false;
    }
    ["tcp", "tcp6"].iter().any(|f| {
        fs::read_to_string(format!("/proc/{pid}/net/{f}"))
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

/// pyftpdlib on [::]:port (dual stack) in the server namespace.
fn start_server(t: &Topology, dir: &TempDir, port: u16, root: &Path) -> Daemon {
    let script = dir.join("server.py");
    fs::write(
        &script,
        r#"import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
auth = DummyAuthorizer()
auth.add_user("test", "secret", sys.argv[2], perm="elradfmwMT")
FTPHandler.authorizer = auth
FTPHandler.permit_foreign_addresses = False
FTPHandler.banner = "netns test server ready."
FTPServer(("::", int(sys.argv[1])), FTPHandler).serve_forever()
"#,
    )
    .unwrap();
    let mut cmd = Topology::cmd(&t.server, &python());
    cmd.arg(&script).arg(port.to_string()).arg(root);
    let d = Daemon::spawn("pyftpdlib(netns)", cmd, dir.path());
    wait_listening_in_ns(&d, port);
    d
}

/// ftpgate on port 2121 of the firewall, started by the shipped
/// `examples/socat-transparent.sh` (one IPv4 and one IPv6-only socat
/// listener: a dual-stack socket hides the original destination of IPv4
/// clients).
fn start_proxy(t: &Topology, dir: &TempDir, conf: &Path) -> Daemon {
    let mut cmd = Topology::cmd(&t.firewall, "env");
    cmd.arg(format!("CONF={}", conf.display()))
        .arg(format!("BIN={}", proxy_bin().display()))
        .arg("sh")
        .arg(example_path("socat-transparent.sh"));
    let d = Daemon::spawn("socat-transparent.sh (netns)", cmd, dir.path());
    // /proc/PID/net/tcp{,6} list every socket of the namespace.
    let listening = |file: &str| {
        fs::read_to_string(format!("/proc/{}/net/{file}", d.pid()))
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains(":0849 ") && l.split_whitespace().nth(3) == Some("0A"))
    };
    assert!(
        wait_until(START_SECS, || listening("tcp") && listening("tcp6")),
        "ftpgate listeners on 2121 missing\n{}",
        d.output()
    );
    d
}

/// The shipped example configuration with the test's overrides (later
/// lines win) inserted before the first user context.
fn example_conf(example: &str, dir: &TempDir, jail: &Path, overrides: &str) -> PathBuf {
    let text = fs::read_to_string(example_path(example)).unwrap();
    let log = dir.join("proxy.log");
    let extra = format!(
        "\n# test overrides\nServerRoot {}\nLogDestination {}\nLogLevel DBG\n{overrides}\n",
        jail.display(),
        log.display()
    );
    let body = match text.find("\n[") {
        Some(i) if text[i..].trim_start().starts_with("[-Global-]") => format!("{text}{extra}"),
        Some(i) => format!("{}{extra}{}", &text[..i], &text[i..]),
        None => format!("{text}{extra}"),
    };
    let conf = dir.join("proxy.conf");
    fs::write(&conf, body).unwrap();
    conf
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Way {
    Epsv,
    Pasv,
    Active,
}

/// curl in the client namespace fetching `url` into `out`.
fn client_get(t: &Topology, way: Way, url: &str, out: &Path) -> Ran {
    let mut cmd = Topology::cmd(&t.client, "curl");
    cmd.args(["-s", "-S", "-g", "--max-time", "60", "-o"])
        .arg(out);
    match way {
        Way::Epsv => {}
        Way::Pasv => {
            cmd.args(["--disable-epsv"]);
        }
        Way::Active => {
            cmd.args(["--ftp-port", "-"]);
        }
    }
    cmd.arg(url);
    run_bounded(cmd, CLIENT_SECS)
}

fn log_of(dir: &TempDir) -> String {
    fs::read_to_string(dir.join("proxy.log")).unwrap_or_default()
}

#[derive(Clone, Copy, PartialEq)]
enum Rules {
    Nft,
    Iptables,
}

/// The whole matrix for one rule-set flavour.
fn transparent_transfers(test: &str, rules: Rules) {
    let tools: &[&str] = match rules {
        Rules::Nft => &["ip", "nft", "socat", "curl"],
        Rules::Iptables => &["ip", "iptables", "ip6tables", "socat", "curl"],
    };
    if !runnable(test, tools) {
        return;
    }
    let t = Topology::new();
    let dir = TempDir::new("netns");
    let jail = TempDir::new("netns-jail");
    let root = dir.join("root");
    fs::create_dir_all(&root).unwrap();
    let data = random_bytes(700_000, 77);
    fs::write(root.join("file.bin"), &data).unwrap();
    match rules {
        Rules::Nft => t.load_nft("nftables-transparent-outgoing.nft", dir.path()),
        Rules::Iptables => t.load_iptables("iptables-transparent-outgoing.sh"),
    }
    let _server = start_server(&t, &dir, 21, &root);
    let conf = example_conf(
        "transparent-outgoing.conf",
        &dir,
        jail.path(),
        // Not redirected connections would go here: a dead address, so a
        // wrong fallback cannot pass the byte comparison.
        "DestinationAddress 10.77.2.99",
    );
    assert_eq!(
        (PASV_RANGE.0, PASV_RANGE.1),
        (40000, 40999),
        "keep in step with the example"
    );
    let _proxy = start_proxy(&t, &dir, &conf);

    let cases = [
        ("10.77.2.2", Way::Epsv),
        ("10.77.2.2", Way::Pasv),
        ("10.77.2.2", Way::Active),
        ("[fd00:77:2::2]", Way::Epsv),
        ("[fd00:77:2::2]", Way::Active),
    ];
    for (i, (host, way)) in cases.iter().enumerate() {
        let out = dir.join(&format!("got{i}.bin"));
        let url = format!("ftp://test:secret@{host}/file.bin");
        let r = client_get(&t, *way, &url, &out);
        assert!(
            r.ok(),
            "{host} {way:?}: {}\n--- proxy log ---\n{}",
            r.describe(),
            log_of(&dir)
        );
        assert_same_bytes(
            &format!("{host} {way:?} through ftpgate"),
            &fs::read(&out).unwrap_or_default(),
            &data,
        );
    }
    // A client that does use the address in 227 (lftp: the firewall's own
    // address) reaches the same passive listener directly, unredirected.
    if tool("lftp").is_some() {
        let out = dir.join("lftp.bin");
        let mut cmd = Topology::cmd(&t.client, "lftp");
        cmd.args(["-u", "test,secret", "-e"])
            .arg(format!(
                "set ftp:passive-mode on; set ftp:prefer-epsv no; set ftp:ignore-pasv-address no; \
                 set ftp:fix-pasv-address no; set net:max-retries 1; set net:timeout 20; \
                 set cmd:fail-exit yes; debug -o {} 10; get file.bin -o {}; bye",
                dir.join("lftp.debug").display(),
                out.display()
            ))
            .arg("ftp://10.77.2.2");
        let r = run_bounded(cmd, CLIENT_SECS);
        assert!(r.ok(), "lftp PASV: {}\n{}", r.describe(), log_of(&dir));
        let debug = fs::read_to_string(dir.join("lftp.debug")).unwrap_or_default();
        assert!(
            debug
                .lines()
                .any(|l| l.contains("Connecting data socket") && l.contains("10.77.1.1")),
            "lftp did not use the 227 address:\n{debug}"
        );
        assert_same_bytes(
            "lftp PASV to the 227 address",
            &fs::read(&out).unwrap_or_default(),
            &data,
        );
    }
    // Every session went through ftpgate, transparently, to the server.
    let log = log_of(&dir);
    assert!(
        log.matches("transparent for 10.77.2.2:21").count() >= 3,
        "IPv4 sessions not transparent:\n{log}"
    );
    assert!(
        log.matches("transparent for [fd00:77:2::2]:21").count() >= 2,
        "IPv6 sessions not transparent:\n{log}"
    );
}

#[test]
fn transparent_proxying_with_nftables_redirect_works_passive_and_active_over_ipv4_and_ipv6() {
    transparent_transfers(
        "transparent_proxying_with_nftables_redirect_works_passive_and_active_over_ipv4_and_ipv6",
        Rules::Nft,
    );
}

#[test]
fn transparent_proxying_with_iptables_redirect_works_passive_and_active_over_ipv4_and_ipv6() {
    transparent_transfers(
        "transparent_proxying_with_iptables_redirect_works_passive_and_active_over_ipv4_and_ipv6",
        Rules::Iptables,
    );
}

/// AllowTransProxy off: a redirected connection goes to DestinationAddress,
/// never to its original destination.
#[test]
fn redirected_connection_without_allow_trans_proxy_goes_to_destination_address() {
    let test = "redirected_connection_without_allow_trans_proxy_goes_to_destination_address";
    if !runnable(test, &["ip", "nft", "socat", "curl"]) {
        return;
    }
    let t = Topology::new();
    let dir = TempDir::new("netns");
    let jail = TempDir::new("netns-jail");
    let (real, fallback) = (dir.join("real"), dir.join("fallback"));
    fs::create_dir_all(&real).unwrap();
    fs::create_dir_all(&fallback).unwrap();
    fs::write(real.join("file.bin"), b"the original destination\n").unwrap();
    fs::write(
        fallback.join("file.bin"),
        b"the DestinationAddress server\n",
    )
    .unwrap();
    t.load_nft("nftables-transparent-outgoing.nft", dir.path());
    let _real = start_server(&t, &dir, 21, &real);
    let _fallback = start_server(&t, &dir, 2100, &fallback);
    let conf = example_conf(
        "transparent-outgoing.conf",
        &dir,
        jail.path(),
        "AllowTransProxy no\nDestinationAddress 10.77.2.2\nDestinationPort 2100",
    );
    let _proxy = start_proxy(&t, &dir, &conf);
    let out = dir.join("got.bin");
    let r = client_get(&t, Way::Epsv, "ftp://test:secret@10.77.2.2/file.bin", &out);
    assert!(r.ok(), "{}\n{}", r.describe(), log_of(&dir));
    assert_eq!(
        fs::read_to_string(&out).unwrap_or_default(),
        "the DestinationAddress server\n",
        "{}",
        log_of(&dir)
    );
    assert!(
        log_of(&dir).contains("AllowTransProxy is off"),
        "{}",
        log_of(&dir)
    );
}

/// Destination safety for transparent destinations: AllowedDestinations is
/// the complete list, and a redirect back to the proxy itself is a loop.
#[test]
fn transparent_destinations_outside_the_policy_are_refused_with_a_reply_and_a_log_line() {
    let test =
        "transparent_destinations_outside_the_policy_are_refused_with_a_reply_and_a_log_line";
    if !runnable(test, &["ip", "nft", "socat", "curl"]) {
        return;
    }
    let t = Topology::new();
    let dir = TempDir::new("netns");
    let jail = TempDir::new("netns-jail");
    let root = dir.join("root");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("file.bin"), b"secret\n").unwrap();
    t.load_nft("nftables-transparent-outgoing.nft", dir.path());
    // A careless extra rule that also redirects the proxy's own port.
    must(&[
        "ip",
        "netns",
        "exec",
        &t.firewall,
        "nft",
        "add",
        "rule",
        "inet",
        "ftpgate",
        "prerouting",
        "iifname",
        "f1",
        "tcp",
        "dport",
        "2121",
        "redirect",
        "to",
        ":2121",
    ]);
    let _server = start_server(&t, &dir, 21, &root);
    let conf = example_conf(
        "transparent-outgoing.conf",
        &dir,
        jail.path(),
        "AllowedDestinations 10.99.0.0/16:21",
    );
    let _proxy = start_proxy(&t, &dir, &conf);

    // 1. Not in AllowedDestinations: refused at USER, logged.
    let out = dir.join("got.bin");
    let r = client_get(&t, Way::Epsv, "ftp://test:secret@10.77.2.2/file.bin", &out);
    assert!(!r.ok(), "refused destination served a file");
    assert!(!out.exists() || fs::read(&out).unwrap().is_empty());
    assert!(
        r.stderr.contains("5") || r.stderr.contains("4"),
        "curl: {}",
        r.describe()
    );
    let log = log_of(&dir);
    assert!(
        log.contains("10.77.2.2:21") && log.contains("not in AllowedDestinations"),
        "no refusal log line:\n{log}"
    );

    // 2. The firewall's other address at the proxy's port: redirected to
    // the proxy, whose original destination is the proxy itself.
    let r = client_get(
        &t,
        Way::Epsv,
        "ftp://test:secret@10.77.2.1:2121/file.bin",
        &out,
    );
    assert!(!r.ok(), "redirect loop served a file");
    // curl reports a 421 greeting as a time-out (28) or a weird server
    // reply (8) depending on its version; the log says what happened.
    assert!(
        matches!(r.status.and_then(|s| s.code()), Some(8) | Some(28)),
        "curl: {}",
        r.describe()
    );
    let log = log_of(&dir);
    assert!(log.contains("redirect loop"), "no loop log line:\n{log}");
}

/// The public-server set-up: clients connect to the FIREWALL's address;
/// the shipped rules redirect 21 to ftpgate, which forwards to the one
/// DestinationAddress.
#[test]
fn public_server_setup_with_shipped_rules_serves_the_protected_server() {
    let test = "public_server_setup_with_shipped_rules_serves_the_protected_server";
    if !runnable(test, &["ip", "nft", "iptables", "socat", "curl"]) {
        return;
    }
    for rules in [Rules::Nft, Rules::Iptables] {
        let t = Topology::new();
        let dir = TempDir::new("netns");
        let jail = TempDir::new("netns-jail");
        let root = dir.join("root");
        fs::create_dir_all(&root).unwrap();
        let data = random_bytes(200_000, 5);
        fs::write(root.join("file.bin"), &data).unwrap();
        match rules {
            Rules::Nft => t.load_nft("nftables-public-server.nft", dir.path()),
            Rules::Iptables => t.load_iptables("iptables-public-server.sh"),
        }
        let _server = start_server(&t, &dir, 21, &root);
        let conf = example_conf(
            "public-server.conf",
            &dir,
            jail.path(),
            "DestinationAddress 10.77.2.2",
        );
        let _proxy = start_proxy(&t, &dir, &conf);
        for (i, (host, way)) in [
            ("10.77.1.1", Way::Pasv),
            ("10.77.1.1", Way::Active),
            ("[fd00:77:1::1]", Way::Epsv),
        ]
        .iter()
        .enumerate()
        {
            let out = dir.join(&format!("got{i}.bin"));
            let r = client_get(
                &t,
                *way,
                &format!("ftp://test:secret@{host}/file.bin"),
                &out,
            );
            assert!(r.ok(), "{host} {way:?}: {}\n{}", r.describe(), log_of(&dir));
            assert_same_bytes(
                &format!("public server {host} {way:?}"),
                &fs::read(&out).unwrap_or_default(),
                &data,
            );
        }
    }
}

/// The documented limit: an IPv4 client that reaches ftpgate through a
/// dual-stack IPv6 listener has no readable original destination. ftpgate
/// then says so in the log and uses DestinationAddress, never a guess.
#[test]
fn ipv4_client_on_a_dual_stack_listener_falls_back_with_a_warning() {
    let test = "ipv4_client_on_a_dual_stack_listener_falls_back_with_a_warning";
    if !runnable(test, &["ip", "nft", "socat", "curl"]) {
        return;
    }
    let t = Topology::new();
    let dir = TempDir::new("netns");
    let jail = TempDir::new("netns-jail");
    let (real, fallback) = (dir.join("real"), dir.join("fallback"));
    fs::create_dir_all(&real).unwrap();
    fs::create_dir_all(&fallback).unwrap();
    fs::write(real.join("file.bin"), b"the original destination\n").unwrap();
    fs::write(
        fallback.join("file.bin"),
        b"the DestinationAddress server\n",
    )
    .unwrap();
    t.load_nft("nftables-transparent-outgoing.nft", dir.path());
    let _real = start_server(&t, &dir, 21, &real);
    let _fallback = start_server(&t, &dir, 2100, &fallback);
    let conf = example_conf(
        "transparent-outgoing.conf",
        &dir,
        jail.path(),
        "DestinationAddress 10.77.2.2\nDestinationPort 2100",
    );
    let mut cmd = Topology::cmd(&t.firewall, "socat");
    cmd.arg("TCP6-LISTEN:2121,ipv6only=0,reuseaddr,fork")
        .arg(format!(
            "EXEC:\"{} -i -f {}\",nofork",
            proxy_bin().display(),
            conf.display()
        ));
    let d = Daemon::spawn("socat dual-stack (netns)", cmd, dir.path());
    wait_listening_in_ns(&d, 2121);
    let out = dir.join("got.bin");
    let r = client_get(&t, Way::Epsv, "ftp://test:secret@10.77.2.2/file.bin", &out);
    assert!(r.ok(), "{}\n{}", r.describe(), log_of(&dir));
    assert_eq!(
        fs::read_to_string(&out).unwrap_or_default(),
        "the DestinationAddress server\n",
        "{}",
        log_of(&dir)
    );
    assert!(log_of(&dir).contains("dual-stack"), "{}", log_of(&dir));
}

#[test]
fn a_passive_port_refuses_a_thief_at_another_ipv6_address_of_the_client_side() {
    if !runnable(
        "a_passive_port_refuses_a_thief_at_another_ipv6_address_of_the_client_side",
        &["ip", "socat"],
    ) {
        return;
    }
    let t = Topology::new();
    // A second address on the client side: the thief.
    must(&[
        "ip",
        "-n",
        &t.client,
        "addr",
        "add",
        "fd00:77:1::3/64",
        "dev",
        "c0",
        "nodad",
    ]);
    let dir = TempDir::new("netns-theft6");
    let root = dir.join("root");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("f.txt"), b"the file\n").unwrap();
    let _server = start_server(&t, &dir, 21, &root);
    let conf = dir.join("proxy.conf");
    fs::write(
        &conf,
        format!(
            "DestinationAddress 10.77.2.2\nDestinationPort 21\nLogDestination {}\n",
            dir.join("proxy.log").display()
        ),
    )
    .unwrap();
    let mut cmd = Topology::cmd(&t.firewall, "socat");
    cmd.arg("TCP6-LISTEN:2121,bind=[fd00:77:1::1],reuseaddr,fork")
        .arg(format!(
            "EXEC:\"{} -i -f {}\",nofork",
            proxy_bin().display(),
            conf.display()
        ));
    let proxy = Daemon::spawn("socat(netns)", cmd, dir.path());
    wait_listening_in_ns(&proxy, 2121);
    let script = r#"
import ftplib, socket
ftp = ftplib.FTP(timeout=20)
ftp.connect('fd00:77:1::1', 2121, source_address=('fd00:77:1::2', 0))
ftp.login('test', 'secret')
r = ftp.sendcmd('EPSV')
port = int(r.split('|||')[1].split('|')[0])
thief = socket.socket(socket.AF_INET6)
thief.bind(('fd00:77:1::3', 0))
thief.settimeout(10)
thief.connect(('fd00:77:1::1', port))
ftp.putcmd('RETR f.txt')
try:
    print('thief', thief.recv(100), flush=True)
except OSError as e:
    print('thief error', e, flush=True)
data = socket.socket(socket.AF_INET6)
data.bind(('fd00:77:1::2', 0))
data.settimeout(10)
data.connect(('fd00:77:1::1', port))
got = b''
while True:
    b = data.recv(100)
    if not b:
        break
    got += b
data.close()
print('client', got, flush=True)
print('final', ftp.getresp()[:3], ftp.getresp()[:3], flush=True)
ftp.quit()
"#;
    let mut cmd = Topology::cmd(&t.client, &python());
    cmd.arg("-c").arg(script);
    let ran = run_bounded(cmd, CLIENT_SECS);
    assert!(ran.ok(), "{}\n{}", ran.describe(), log_of(&dir));
    assert!(ran.stdout.contains("thief b''"), "{}", ran.stdout);
    assert!(
        ran.stdout.contains("client b'the file\\r\\n'"),
        "{}",
        ran.stdout
    );
    let log = log_of(&dir);
    assert!(
        log.contains("client data connection from [fd00:77:1::3]"),
        "{log}"
    );
    drop(proxy);
    drop(t);
}

/// One namespace of its own, whose loopback interface also carries
/// 10.88.0.1 (an address of "the firewall" that is not loopback);
/// deleted on drop.
struct OneNs(String);

impl OneNs {
    fn new() -> OneNs {
        let n = NS_COUNTER.fetch_add(1, Ordering::SeqCst);
        let ns = OneNs(format!("fgh{}x{n}", std::process::id()));
        must(&["ip", "netns", "add", &ns.0]);
        must(&["ip", "-n", &ns.0, "link", "set", "lo", "up"]);
        must(&[
            "ip",
            "-n",
            &ns.0,
            "addr",
            "add",
            "10.88.0.1/32",
            "dev",
            "lo",
        ]);
        ns
    }
}

impl Drop for OneNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Issue 2: `USER x@<an address of the proxy host>:port` reaches the
/// host's services listening on all addresses; refused like loopback
/// unless AllowedDestinations names the address.
#[test]
fn a_magic_user_destination_at_another_address_of_the_proxy_host_is_refused() {
    let test = "a_magic_user_destination_at_another_address_of_the_proxy_host_is_refused";
    if !runnable(test, &["ip", "socat", "curl"]) {
        return;
    }
    let ns = OneNs::new();
    let dir = TempDir::new("netns-own");
    let root = dir.join("root");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("file.bin"), b"firewall's own\n").unwrap();
    // A service of the firewall listening on all addresses.
    let script = dir.join("server.py");
    fs::write(
        &script,
        r#"import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
auth = DummyAuthorizer()
auth.add_user("test", "secret", sys.argv[1], perm="elr")
FTPHandler.authorizer = auth
FTPServer(("0.0.0.0", 21), FTPHandler).serve_forever()
"#,
    )
    .unwrap();
    let mut cmd = Topology::cmd(&ns.0, &python());
    cmd.arg(&script).arg(&root);
    let server = Daemon::spawn("pyftpdlib(own)", cmd, dir.path());
    wait_listening_in_ns(&server, 21);

    for (allowed, extra) in [(false, ""), (true, "AllowedDestinations 10.88.0.1:21\n")] {
        let log = dir.join(&format!("proxy-{allowed}.log"));
        let conf = dir.join(&format!("proxy-{allowed}.conf"));
        fs::write(
            &conf,
            format!(
                "DestinationAddress 127.0.0.1\nAllowMagicUser yes\nLogDestination {}\nLogLevel DBG\n{extra}",
                log.display()
            ),
        )
        .unwrap();
        let mut cmd = Topology::cmd(&ns.0, "socat");
        cmd.arg("TCP-LISTEN:2121,bind=127.0.0.1,reuseaddr,fork")
            .arg(format!(
                "EXEC:\"{} -i -f {}\",nofork",
                proxy_bin().display(),
                conf.display()
            ));
        let proxy = Daemon::spawn("socat(own)", cmd, dir.path());
        wait_listening_in_ns(&proxy, 2121);
        let out = dir.join(&format!("got-{allowed}.bin"));
        let mut cmd = Topology::cmd(&ns.0, "curl");
        cmd.args(["-s", "-S", "--max-time", "30", "-o"])
            .arg(&out)
            .arg("ftp://test%4010.88.0.1%3A21:secret@127.0.0.1:2121/file.bin");
        let r = run_bounded(cmd, CLIENT_SECS);
        let text = fs::read_to_string(&log).unwrap_or_default();
        if allowed {
            assert!(
                r.ok(),
                "named destination refused: {}\n{text}",
                r.describe()
            );
            assert_eq!(fs::read(&out).unwrap(), b"firewall's own\n");
        } else {
            assert!(!r.ok(), "the host's own address served a file:\n{text}");
            assert!(r.stderr.contains("530"), "curl: {}", r.describe());
            assert!(
                text.contains("10.88.0.1:21: destination is an address of the proxy host"),
                "no refusal log line:\n{text}"
            );
        }
        drop(proxy);
    }
}

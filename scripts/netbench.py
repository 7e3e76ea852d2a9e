#!/usr/bin/env python3
"""ftpgate's network benchmark (run it through scripts/netbench, as root).

Five network namespaces joined by veth pairs, none with a route out:

  client 10.77.1.2 -- wire -- 10.77.1.1 firewall 10.77.2.1 -- wire -- 10.77.2.2 server
                      (delay)                                 (delay)

- client: the clients (curl, ftplib, lftp); default route via the firewall;
- firewall: ip_forward=1 (the "direct" subject is routed through it) and the
  two proxies under socat (ftpgate, Debian's ftp-proxy);
- server: vsftpd (anonymous, serving a directory in /dev/shm);
- wire (two of them): scripts/delayline.py forwards Ethernet frames between
  its two veth ends with AF_PACKET sockets and holds each for a quarter of
  the round trip, so client<->firewall and firewall<->server are each half
  of the configured RTT and client<->server all of it. The kernel here has
  no netem; see BENCHMARKS.md.
- rate: tbf on every endpoint's egress (client, both firewall sides,
  server), the same rate on every link.

The round trip is measured with ping (client -> server, client -> firewall)
before each part and the part is refused when the mean is more than 10% off;
the rate is measured with one direct RETR and printed.

Workloads, subjects interleaved (direct, ftpgate, ftp-proxy):
  bulk     1 Gbit/s, 40 ms: RETR and STOR of a large file with curl (PASV),
           data-phase MB/s;
  small    100 Mbit/s, 40 ms: N files of 16 KiB fetched one after another in
           one session with ftplib (per-step timings: PASV->227, connect,
           RETR->150, data, ->226) and with `lftp -c mirror`; seconds and
           round trips per file;
  set-up   100 Mbit/s, 40 ms: ftplib connect, 220, USER, PASS, PWD, QUIT.

Defaults: bulk 3 rounds of 256 MiB, 100 files, 20 set-up sessions (about
3.5 minutes); --quick: 1 round of 128 MiB, 20 files, 5 sessions (about 1).

--lan: bulk only, on an unshaped path: the veth pairs join client, firewall
and server directly (no wire namespaces, no delay line, no tbf, the kernel's
default TCP buffer sizes); 6 rounds of 1 GiB (--quick: 2 of 512 MiB), the
subjects' order turning by one each round. Per transfer also the proxy
session's CPU (user+sys from wait4, through scripts/bench.py's rusage
runner), curl's CPU and the whole machine's, each per GiB. --lo: the same
with client, firewall and server in one namespace on its loopback, the
loopback benchmark's path. --variant NAME=BIN (repeatable, with --lan or
--lo) adds BIN as one more proxy subject, run like ftpgate, for A/B runs;
--subjects A,B measures only those, --only retr|stor only one direction
(e.g. one subject at a time under `perf record -a`).

    netbench.py --ftpgate BIN [--quick] [--rounds N] [--files N]
                [--sessions N] [--bulk-mib N] [--rtt-ms 40] [--bulk-mbit 1000]
                [--small-mbit 100] [--prefix NAME] [--keep]
                [--lan | --lo] [--variant NAME=BIN]... [--subjects A,B]
                [--only retr|stor]
"""

import argparse
import ctypes
import ftplib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

MIB = 1 << 20
HERE = os.path.dirname(os.path.abspath(__file__))
FTP_PROXY = "/usr/sbin/ftp-proxy"
VSFTPD = "/usr/sbin/vsftpd"
SUBJECTS = ["direct", "ftpgate", "ftp-proxy"]

CLI_IP, FW_CLI_IP, FW_SRV_IP, SRV_IP = "10.77.1.2", "10.77.1.1", "10.77.2.1", "10.77.2.2"
PORTS = {"direct": (SRV_IP, 21), "ftpgate": (FW_CLI_IP, 2121), "ftp-proxy": (FW_CLI_IP, 2122)}
CLONE_NEWNET = 0x40000000


def log(msg):
    print(f"netbench: {msg}", file=sys.stderr, flush=True)


def run(*cmd, check=True):
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def make_file(path, size):
    chunk = os.urandom(MIB)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, MIB)
            f.write(chunk[:n])
            left -= n
            chunk = chunk[1:] + chunk[:1]
    os.chmod(path, 0o644)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def libc_of(path):
    with open(path, "rb") as f:
        return "glibc" if b"GLIBC_TUNABLES" in f.read() else "musl"


# ---------------------------------------------------------------------------
# processes and namespaces


def descendants(root):
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
                parent[int(d)] = int(st[st.rfind(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p and c not in out:
                out.append(c)
                todo.append(c)
    return out


class Procs:
    """Processes we started; ended by PID (their descendants too, by PID)."""

    def __init__(self):
        self.procs = []

    def start(self, args, out):
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGKILL):
        for kid in descendants(p.pid):
            try:
                os.kill(kid, sig)
            except ProcessLookupError:
                pass
        if p.poll() is None:
            p.send_signal(sig)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p)
        self.procs = []


_libc = ctypes.CDLL(None, use_errno=True)


def setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns {path}: {os.strerror(e)}")
    finally:
        os.close(fd)


class Net:
    """The namespaces, links, shaping and delay lines."""

    def __init__(self, prefix, procs, work, rtt_ms, path="wan"):
        self.p = prefix
        self.procs = procs
        self.work = work
        self.rtt_ms = rtt_ms
        # "lan": no wire namespaces (the veth pairs join the hosts directly),
        # no delay line, no shaping; "lo": one namespace, everything on its
        # loopback (client, firewall and server are one host)
        self.lan = path in ("lan", "lo")
        self.lo = path == "lo"
        kinds = ("cli", "fw", "srv") if self.lan else ("cli", "wc", "fw", "ws", "srv")
        self.ns = {k: f"{prefix}-{k}" for k in kinds}
        if self.lo:
            self.ns = {k: f"{prefix}-fw" for k in kinds}
        self.made = []
        self.wires = []
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        # (namespace, device) of every shaped egress
        self.shaped = [] if self.lan else [("cli", "eth0"), ("fw", "c0"), ("fw", "s0"),
                                      ("srv", "eth0")]

    def ip(self, ns, *a):
        return run("ip", "-n", self.ns[ns], *a)

    def exec(self, ns, *a, check=True):
        return run("ip", "netns", "exec", self.ns[ns], *a, check=check)

    def build(self):
        for k, name in self.ns.items():
            if name in self.made:
                continue
            if os.path.exists(f"/run/netns/{name}"):
                raise RuntimeError(f"namespace {name} exists already")
            run("ip", "netns", "add", name)
            self.made.append(name)
            self.ip(k, "link", "set", "lo", "up")
            self.exec(k, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                      "net.ipv6.conf.default.disable_ipv6=1")
        if self.lo:
            return
        if self.lan:
            # client eth0 <-> fw c0 ; fw s0 <-> srv eth0
            self.ip("cli", "link", "add", "eth0", "type", "veth", "peer", "name", "c0",
                    "netns", self.ns["fw"])
            self.ip("srv", "link", "add", "eth0", "type", "veth", "peer", "name", "s0",
                    "netns", self.ns["fw"])
        else:
            # client eth0 <-> wc a | wc b <-> fw c0 ; fw s0 <-> ws a | ws b <-> srv eth0
            self.ip("cli", "link", "add", "eth0", "type", "veth", "peer", "name", "a",
                    "netns", self.ns["wc"])
            self.ip("fw", "link", "add", "c0", "type", "veth", "peer", "name", "b",
                    "netns", self.ns["wc"])
            self.ip("fw", "link", "add", "s0", "type", "veth", "peer", "name", "a",
                    "netns", self.ns["ws"])
            self.ip("srv", "link", "add", "eth0", "type", "veth", "peer", "name", "b",
                    "netns", self.ns["ws"])
            for w in ("wc", "ws"):
                for dev in ("a", "b"):
                    self.ip(w, "link", "set", "dev", dev, "promisc", "on", "up")
        for ns, dev, addr in (("cli", "eth0", CLI_IP), ("fw", "c0", FW_CLI_IP),
                              ("fw", "s0", FW_SRV_IP), ("srv", "eth0", SRV_IP)):
            self.ip(ns, "addr", "add", f"{addr}/24", "dev", dev)
            self.ip(ns, "link", "set", dev, "up")
        self.ip("cli", "route", "add", "default", "via", FW_CLI_IP)
        self.ip("srv", "route", "add", "default", "via", FW_SRV_IP)
        self.exec("fw", "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        for k in ("cli", "fw", "srv"):
            # room for a 1 Gbit/s x 40 ms window (5 MB) and no cached
            # ssthresh from one connection to the next; a LAN keeps the
            # kernel's default buffer sizes
            if not self.lan:
                self.exec(k, "sysctl", "-q", "-w", "net.ipv4.tcp_rmem=4096 131072 67108864",
                          "net.ipv4.tcp_wmem=4096 16384 67108864")
            self.exec(k, "sysctl", "-q", "-w", "net.ipv4.tcp_no_metrics_save=1")
        if self.lan:
            return
        one_way = self.rtt_ms / 4.0
        for w in ("wc", "ws"):
            out = open(os.path.join(self.work, f"delayline-{w}.err"), "w")
            p = self.procs.start(["ip", "netns", "exec", self.ns[w], sys.executable,
                                  os.path.join(HERE, "delayline.py"), "a", "b",
                                  f"{one_way}"], out)
            self.wires.append((w, p))
        time.sleep(0.5)
        for w, p in self.wires:
            if p.poll() is not None:
                raise RuntimeError(f"delay line in {w} exited: "
                                   + open(os.path.join(self.work, f"delayline-{w}.err")).read())

    def shape(self, mbit):
        """tbf at `mbit` on every endpoint's egress. The bucket holds one
        64 KiB offload frame with room to spare (128 KiB) so tbf never cuts
        them into MTU frames; the queue holds one bandwidth-delay product."""
        burst = 128 * 1024
        limit = max(256 * 1024, int(mbit * 1e6 / 8 * self.rtt_ms / 1000))
        for ns, dev in self.shaped:
            self.ip(ns, "link", "set", dev, "txqueuelen", "1000")
            run("tc", "-n", self.ns[ns], "qdisc", "replace", "dev", dev, "root", "tbf",
                "rate", f"{mbit}mbit", "burst", str(burst), "limit", str(limit))

    def qdisc_stats(self):
        out = []
        for ns, dev in self.shaped:
            s = run("tc", "-n", self.ns[ns], "-s", "qdisc", "show", "dev", dev)
            m = re.search(r"Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)", s)
            if m:
                out.append(f"{ns}/{dev}: {int(m.group(1)) / 1e6:.0f} MB, "
                           f"{m.group(3)} dropped")
        return out

    def enter(self, k):
        setns(f"/run/netns/{self.ns[k]}")

    def leave(self):
        if _libc.setns(self.home, CLONE_NEWNET) != 0:
            log("could not go back to the original network namespace")

    def stop_wires(self):
        """End the delay lines (SIGTERM: they print their counts)."""
        lines = []
        for w, p in self.wires:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            try:
                with open(os.path.join(self.work, f"delayline-{w}.err")) as f:
                    lines += [f"{w}: {line.strip()}" for line in f if line.strip()]
            except OSError:
                pass
        return lines

    def teardown(self):
        self.leave()
        for name in reversed(self.made):
            # anything still running in it was started here: end it by PID
            pids = run("ip", "netns", "pids", name, check=False).split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run("ip", "netns", "del", name, check=False)
        self.made = []


def port_listening(pid, ip, port):
    want = "%08X:%04X" % (int.from_bytes(socket.inet_aton(ip), "little"), port)
    try:
        with open(f"/proc/{pid}/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def wait_listening(p, ip, port, what):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"{what} exited early (status {p.returncode})")
        if port_listening(p.pid, ip, port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not listening on {ip}:{port}")


# ---------------------------------------------------------------------------
# servers


def start_vsftpd(net, procs, work):
    top = os.path.join(work, "root")
    pub = os.path.join(top, "pub")
    os.makedirs(os.path.join(pub, "small"), exist_ok=True)
    os.chmod(top, 0o755)
    os.chmod(pub, 0o777)
    os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
    conf = os.path.join(work, "vsftpd.conf")
    write(conf, f"""listen=YES
listen_ipv6=NO
listen_address={SRV_IP}
listen_port=21
background=NO
run_as_launching_user=NO
anonymous_enable=YES
local_enable=NO
anon_root={top}
no_anon_password=NO
write_enable=YES
anon_upload_enable=YES
anon_other_write_enable=YES
anon_world_readable_only=NO
anon_umask=022
allow_writeable_chroot=YES
secure_chroot_dir=/var/run/vsftpd/empty
seccomp_sandbox=NO
pasv_enable=YES
pasv_address={SRV_IP}
port_enable=YES
connect_from_port_20=NO
xferlog_enable=NO
vsftpd_log_file={work}/vsftpd.log
ftpd_banner=vsftpd netbench server ready.
max_clients=64
max_per_ip=0
""", 0o600)
    out = open(os.path.join(work, "vsftpd.out"), "w")
    p = procs.start(["ip", "netns", "exec", net.ns["srv"], VSFTPD, conf], out)
    wait_listening(p, SRV_IP, 21, "vsftpd")
    return pub


def start_proxy(net, procs, work, name, binary, port, timed=False):
    """socat TCP-LISTEN -> EXEC proxy on the firewall; `timed`: each session
    runs under scripts/bench.py's rusage runner, which appends its CPU time
    to WORK/NAME.rusage (returned)."""
    conf = os.path.join(work, f"{name}.conf")
    write(conf, f"""# ftpgate network benchmark
DestinationAddress {SRV_IP}
DestinationPort 21
LogDestination {work}/{name}.log
LogLevel INF
""")
    usage = os.path.join(work, f"{name}.rusage")
    cmd = f"{binary} -i -f {conf}"
    if timed:
        cmd = os.path.join(work, f"{name}.sh")
        write(cmd, "#!/bin/sh\n"
              f"exec '{sys.executable}' '{os.path.join(HERE, 'bench.py')}' rusage "
              f"'{usage}' '{binary}' -i -f '{conf}'\n", 0o755)
    out = open(os.path.join(work, f"socat-{name}.out"), "w")
    p = procs.start(["ip", "netns", "exec", net.ns["fw"], "socat",
                     f"TCP-LISTEN:{port},bind={FW_CLI_IP},reuseaddr,fork",
                     f"EXEC:{cmd},nofork"], out)
    wait_listening(p, FW_CLI_IP, port, f"socat for {name}")
    return usage


# ---------------------------------------------------------------------------
# measurements (run with this process in the client namespace)


def ping(host, n):
    """Mean, min, max round trip in ms of n pings (0.05 s apart), after
    two pings not counted (the first also waits for ARP)."""
    run("ping", "-n", "-q", "-c", "2", "-i", "0.05", "-W", "2", host, check=False)
    out = run("ping", "-n", "-q", "-c", str(n), "-i", "0.05", "-W", "2", host)
    m = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms", out)
    loss = re.search(r"([\d.]+)% packet loss", out)
    if not m:
        raise RuntimeError(f"ping {host}: {out.strip()}")
    return {"avg": float(m.group(2)), "min": float(m.group(1)), "max": float(m.group(3)),
            "mdev": float(m.group(4)), "loss": float(loss.group(1)) if loss else None}


def check_rtt(rtt_ms, label):
    """Ping server and firewall; refuse (exit) if the mean client<->server
    round trip is more than 10% off the configured one."""
    ps = ping(SRV_IP, 20)
    pf = ping(FW_CLI_IP, 20)
    print(f"  {label}: ping client->server: mean {ps['avg']:.2f} ms (min {ps['min']:.2f}, "
          f"max {ps['max']:.2f}, mdev {ps['mdev']:.2f}, {ps['loss']:.0f}% loss, 20 pings); "
          f"client->firewall: mean {pf['avg']:.2f} ms (configured {rtt_ms} and "
          f"{rtt_ms / 2:g})", flush=True)
    if abs(ps["avg"] - rtt_ms) > 0.1 * rtt_ms:
        raise RuntimeError(f"measured round trip {ps['avg']:.2f} ms is more than 10% off the "
                           f"configured {rtt_ms} ms: refusing to report")
    return ps["avg"] / 1000.0


def curl(subject, args, what):
    host, port = PORTS[subject]
    base = ["curl", "-s", "-S", "--max-time", "300", "--disable-epsv", "--disable-eprt",
            "-u", "anonymous:bench@example.org"]
    r = subprocess.run(base + args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=320)
    if r.returncode != 0:
        raise RuntimeError(f"curl {what} via {subject} ({host}:{port}): {r.stderr.strip()}")
    return r.stdout.split()


def retr(subject, name, size):
    host, port = PORTS[subject]
    n, total, pre = curl(subject, ["-o", "/dev/null", "-w",
                                   "%{size_download} %{time_total} %{time_pretransfer}",
                                   f"ftp://{host}:{port}/pub/{name}"], "RETR")
    if int(n) != size:
        raise RuntimeError(f"RETR via {subject}: {n} bytes, want {size}")
    return size / (float(total) - float(pre))


def stor(subject, src, pub, size, tag):
    host, port = PORTS[subject]
    name = f"up-{tag}.bin"
    n, total, pre = curl(subject, ["-T", src, "-w",
                                   "%{size_upload} %{time_total} %{time_pretransfer}",
                                   f"ftp://{host}:{port}/pub/{name}"], "STOR")
    path = os.path.join(pub, name)
    got = os.path.getsize(path)
    os.unlink(path)
    if int(n) != size or got != size:
        raise RuntimeError(f"STOR via {subject}: sent {n}, stored {got}, want {size}")
    return size / (float(total) - float(pre))


STEPS = ("pasv", "connect", "retr150", "data", "done226", "total")
STEP_LABELS = {"pasv": "PASV→227", "connect": "connect", "retr150": "RETR→150",
               "data": "150→data end", "done226": "data end→226", "total": "file total"}


def small_ftplib(subject, names, size):
    """One session, the files one after another; per file the time of each
    step (seconds)."""
    host, port = PORTS[subject]
    ftp = ftplib.FTP()
    ftp.connect(host, port, timeout=30)
    ftp.login("anonymous", "bench@example.org")
    ftp.voidcmd("TYPE I")
    ftp.cwd("/pub/small")
    out = []
    pc = time.perf_counter
    for name in names:
        t0 = pc()
        resp = ftp.sendcmd("PASV")
        t1 = pc()
        if not resp.startswith("227"):
            raise RuntimeError(f"PASV via {subject}: {resp}")
        dhost, dport = ftplib.parse227(resp)
        conn = socket.create_connection((dhost, dport), timeout=30)
        t2 = pc()
        resp = ftp.sendcmd(f"RETR {name}")
        t3 = pc()
        if not resp.startswith("1"):
            raise RuntimeError(f"RETR via {subject}: {resp}")
        got = 0
        while True:
            b = conn.recv(65536)
            if not b:
                break
            got += len(b)
        t4 = pc()
        conn.close()
        resp = ftp.voidresp()
        t5 = pc()
        if got != size:
            raise RuntimeError(f"RETR {name} via {subject}: {got} bytes, want {size}")
        out.append({"pasv": t1 - t0, "connect": t2 - t1, "retr150": t3 - t2,
                    "data": t4 - t3, "done226": t5 - t4, "total": t5 - t0})
    ftp.quit()
    ftp.close()
    return out


def small_lftp(subject, n, size, work, tag):
    """lftp -c 'open ...; mirror /pub/small DIR': whole-command seconds
    (login, listing and the n files)."""
    host, port = PORTS[subject]
    dest = os.path.join(work, f"mirror-{tag}")
    script = ("set ftp:passive-mode yes; set ftp:prefer-epsv no; set net:max-retries 1; "
              "set net:timeout 30; set cmd:fail-exit yes; "
              f"open -u anonymous,bench@example.org -p {port} {host}; "
              f"mirror --no-perms /pub/small {dest}")
    dbg = os.path.join(work, f"lftp-{tag}.log")
    t0 = time.perf_counter()
    r = subprocess.run(["lftp", "-d", "-c", script], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=open(dbg, "w"), text=True, timeout=600)
    t = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"lftp mirror via {subject} failed (see {dbg})")
    files = os.listdir(dest)
    bad = [f for f in files if os.path.getsize(os.path.join(dest, f)) != size]
    if len(files) != n or bad:
        raise RuntimeError(f"lftp mirror via {subject}: {len(files)} files, {len(bad)} wrong")
    shutil.rmtree(dest)
    cmds = {}
    with open(dbg, errors="replace") as f:
        for line in f:
            m = re.match(r"---> (\w+)", line)
            if m:
                cmds[m.group(1)] = cmds.get(m.group(1), 0) + 1
    return t, cmds


def session_time(subject):
    host, port = PORTS[subject]
    t0 = time.perf_counter()
    ftp = ftplib.FTP()
    ftp.connect(host, port, timeout=30)
    t1 = time.perf_counter()
    ftp.login("anonymous", "bench@example.org")
    ftp.pwd()
    ftp.quit()
    t2 = time.perf_counter()
    ftp.close()
    return t1 - t0, t2 - t0


def busy_seconds():
    """CPU seconds the whole machine has been busy (all CPUs, /proc/stat:
    user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    """CPU seconds (user+sys) of this process's reaped children."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def session_cpu(usage, n, secs=20):
    """user+sys seconds of the n-th proxy session recorded in `usage` (the
    rusage runner appends a line when the session's process has ended)."""
    deadline = time.monotonic() + secs
    while True:
        try:
            with open(usage) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        if len(lines) >= n:
            user, sys_, _ = lines[n - 1].split()
            return float(user) + float(sys_)
        if time.monotonic() > deadline:
            raise RuntimeError(f"no resource usage for session {n} in {usage}")
        time.sleep(0.02)


def run_bulk(args, net, subjects, usage, pub, src, bulk, rounds):
    """--lan / --lo: bulk RETR and STOR only, unshaped, subjects interleaved
    (the order turns by one each round); per transfer the data-phase MB/s,
    the proxy session's CPU (wait4), curl's CPU and the machine's."""
    gib = bulk / (1 << 30)
    res = {s: {k: [] for k in ("retr", "stor", "cpu_retr", "cpu_stor", "curl_retr",
                               "curl_stor", "sys_retr", "sys_stor")} for s in subjects}
    sessions = {s: 0 for s in subjects}
    tag = 0
    for r in range(rounds):
        order = subjects[r % len(subjects):] + subjects[:r % len(subjects)]
        for kind in [k for k in ("retr", "stor") if args.only in (None, k)]:
            for s in order:
                busy, kids = busy_seconds(), children_cpu()
                if kind == "retr":
                    v = retr(s, "big.bin", bulk)
                else:
                    tag += 1
                    v = stor(s, src, pub, bulk, tag)
                res[s][kind].append(v)
                res[s][f"curl_{kind}"].append((children_cpu() - kids) / gib)
                res[s][f"sys_{kind}"].append((busy_seconds() - busy) / gib)
                if s in usage:
                    sessions[s] += 1
                    res[s][f"cpu_{kind}"].append(session_cpu(usage[s], sessions[s]) / gib)
        log(f"bulk round {r + 1}/{rounds} done (load average {loadavg()})")
    return res


def report_bulk(args, res, subjects, bulk, rounds):
    path = "loopback (one namespace)" if args.lo else "veth, unshaped, no delay"
    print()
    print(f"Bulk, {path}; curl (PASV), {bulk // MIB} MiB, data phase; median (min–max) "
          f"of {rounds}; ratios of medians:")
    print()
    others = [s for s in subjects if s != "direct"]
    cols = ["measure"] + subjects
    if "direct" in subjects:
        cols += [f"{s}/direct" for s in others]
    if "ftp-proxy" in subjects:
        cols += [f"{s}/ftp-proxy" for s in others if s != "ftp-proxy"]
    rows = []
    for key, label, scale, digits in (
            ("retr", "RETR MB/s", 1e-6, 0), ("stor", "STOR MB/s", 1e-6, 0),
            ("cpu_retr", "proxy CPU s/GiB, RETR", 1, 3),
            ("cpu_stor", "proxy CPU s/GiB, STOR", 1, 3),
            ("curl_retr", "curl CPU s/GiB, RETR", 1, 3),
            ("curl_stor", "curl CPU s/GiB, STOR", 1, 3),
            ("sys_retr", "machine CPU s/GiB, RETR", 1, 2),
            ("sys_stor", "machine CPU s/GiB, STOR", 1, 2)):
        if not any(res[s][key] for s in subjects):
            continue
        row = [label] + [fmt(res[s][key], scale, digits) if res[s][key] else "—"
                         for s in subjects]

        def ratio(a, b):
            xa, xb = res[a][key], res[b][key]
            return f"{med(xa) / med(xb):.3f}" if xa and xb and med(xb) else "—"
        if "direct" in subjects:
            row += [ratio(s, "direct") for s in others]
        if "ftp-proxy" in subjects:
            row += [ratio(s, "ftp-proxy") for s in others if s != "ftp-proxy"]
        rows.append(row)
    table(cols, rows)


# ---------------------------------------------------------------------------
# report


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(xs, scale=1.0, digits=1):
    if not xs:
        return "n/a"
    return (f"{med(xs) * scale:.{digits}f} ({min(xs) * scale:.{digits}f}–"
            f"{max(xs) * scale:.{digits}f})")


def table(cols, rows):
    print("| " + " | ".join(cols) + " |")
    print("|---" * len(cols) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def main():
    ap = argparse.ArgumentParser(description="ftpgate network benchmark (namespaces)")
    ap.add_argument("--ftpgate", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, help="bulk rounds (3; --quick 1)")
    ap.add_argument("--small-rounds", type=int, help="small-file rounds (1)")
    ap.add_argument("--files", type=int, help="small files per session (100; --quick 20)")
    ap.add_argument("--file-kib", type=int, default=16)
    ap.add_argument("--sessions", type=int, help="set-up sessions per subject (20; --quick 5)")
    ap.add_argument("--bulk-mib", type=int, help="bulk file size (256; --quick 128)")
    ap.add_argument("--rtt-ms", type=float, default=40.0)
    ap.add_argument("--bulk-mbit", type=int, default=1000)
    ap.add_argument("--small-mbit", type=int, default=100)
    ap.add_argument("--prefix", default=f"nb{os.getpid()}")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--lan", action="store_true",
                    help="bulk only, on veth pairs with no delay and no shaping")
    ap.add_argument("--lo", action="store_true",
                    help="bulk only, everything on one namespace's loopback")
    ap.add_argument("--subjects", metavar="A,B",
                    help="(--lan, --lo) measure only these subjects, e.g. one under perf")
    ap.add_argument("--only", choices=("retr", "stor"),
                    help="(--lan, --lo) only RETR or only STOR, e.g. under perf")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=BIN",
                    help="(--lan, --lo) one more proxy subject: BIN run like ftpgate")
    args = ap.parse_args()
    global SRV_IP, FW_CLI_IP, PORTS
    subjects = list(SUBJECTS)
    bins = {"ftpgate": args.ftpgate, "ftp-proxy": FTP_PROXY}
    for i, v in enumerate(args.variant):
        name, _, path = v.partition("=")
        if not name or not path or name in bins or name == "direct":
            sys.exit(f"netbench: bad --variant {v!r}")
        bins[name] = path
        subjects.append(name)
        PORTS[name] = (FW_CLI_IP, 2123 + i)
    if args.subjects:
        keep = args.subjects.split(",")
        if not set(keep) <= set(subjects):
            sys.exit(f"netbench: --subjects: not among {', '.join(subjects)}")
        subjects = [s for s in subjects if s in keep]
    if args.lo:
        SRV_IP = FW_CLI_IP = "127.0.0.1"
        PORTS = {s: ("127.0.0.1", p) for s, (_, p) in PORTS.items()}
    if os.geteuid() != 0:
        sys.exit("netbench: needs root (network namespaces)")
    bulk_only = args.lan or args.lo
    rounds = args.rounds or (1 if args.quick else 3) * (2 if bulk_only else 1)
    small_rounds = args.small_rounds or 1
    nfiles = args.files or (20 if args.quick else 100)
    sessions = args.sessions or (5 if args.quick else 20)
    bulk = (args.bulk_mib or (128 if args.quick else 256) * (4 if bulk_only else 1)) * MIB
    fsize = args.file_kib * 1024
    for path in list(bins.values()) + [VSFTPD]:
        if not os.access(path, os.X_OK):
            sys.exit(f"netbench: {path} missing")

    work = tempfile.mkdtemp(prefix="ftpgate-netbench.", dir="/dev/shm")
    os.chmod(work, 0o755)
    procs = Procs()
    net = Net(args.prefix, procs, work, args.rtt_ms,
              "lo" if args.lo else "lan" if args.lan else "wan")

    def stop(signum, _frame):
        raise SystemExit(f"netbench: signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    started = time.monotonic()
    load_before = loadavg()
    try:
        log(f"namespaces {', '.join(sorted(set(net.ns.values())))}, work directory {work}")
        net.build()
        pub = start_vsftpd(net, procs, work)
        usage = {}
        for s in [s for s in subjects if s != "direct"]:
            usage[s] = start_proxy(net, procs, work, s, bins[s], PORTS[s][1], bulk_only)
        make_file(os.path.join(pub, "big.bin"), bulk)
        src = os.path.join(work, "upload.bin")
        make_file(src, bulk)
        if bulk_only:
            net.enter("cli")
            print(f"ftpgate bulk benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
            for s in [s for s in subjects if s != "direct"]:
                print(f"{s}: {bins[s]}")
            print(f"{os.cpu_count()} CPUs, kernel {os.uname().release}, load average "
                  f"{load_before} before")
            if not args.lo:
                ps = ping(SRV_IP, 10)
                print(f"ping client->server: mean {ps['avg']:.3f} ms (max {ps['max']:.3f})")
            res = run_bulk(args, net, subjects, usage, pub, src, bulk, rounds)
            print()
            print(f"{time.monotonic() - started:.0f} s; load average {loadavg()} after")
            report_bulk(args, res, subjects, bulk, rounds)
            return 0
        names = [f"f{i:03d}.bin" for i in range(nfiles)]
        for n in names:
            make_file(os.path.join(pub, "small", n), fsize)
        net.enter("cli")

        print(f"ftpgate network benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(f"ftpgate binary: {args.ftpgate} (static, {libc_of(args.ftpgate)})")
        print(f"{os.cpu_count()} CPUs, kernel {os.uname().release}, load average "
              f"{load_before} before")
        print(f"delay: userspace delay line (scripts/delayline.py, AF_PACKET) in two wire "
              f"namespaces, {args.rtt_ms / 4:g} ms each way each; rate: tbf on each egress")
        print("calibration:")

        # ---- bulk
        net.shape(args.bulk_mbit)
        rtt_bulk = check_rtt(args.rtt_ms, f"{args.bulk_mbit} Mbit/s")
        cal = retr("direct", "big.bin", bulk)
        print(f"  {args.bulk_mbit} Mbit/s: one direct RETR of {bulk // MIB} MiB: "
              f"{cal * 8 / 1e6:.0f} Mbit/s of data ({cal / 1e6:.1f} MB/s; TCP payload over "
              f"Ethernet can be at most {1448 / 1514 * 100:.1f}% of the rate)", flush=True)
        res = {s: {"retr": [], "stor": []} for s in SUBJECTS}
        tag = 0
        for r in range(rounds):
            for s in SUBJECTS:
                res[s]["retr"].append(retr(s, "big.bin", bulk))
            for s in SUBJECTS:
                tag += 1
                res[s]["stor"].append(stor(s, src, pub, bulk, tag))
            log(f"bulk round {r + 1}/{rounds} done")
        q_bulk = net.qdisc_stats()

        # ---- small files and set-up
        net.shape(args.small_mbit)
        rtt_small = check_rtt(args.rtt_ms, f"{args.small_mbit} Mbit/s")
        cal2_size = min(bulk, 16 * MIB)
        make_file(os.path.join(pub, "mid.bin"), cal2_size)
        cal2 = retr("direct", "mid.bin", cal2_size)
        print(f"  {args.small_mbit} Mbit/s: one direct RETR of {cal2_size // MIB} MiB: "
              f"{cal2 * 8 / 1e6:.1f} Mbit/s of data ({cal2 / 1e6:.2f} MB/s)", flush=True)
        steps = {s: [] for s in SUBJECTS}
        mirror = {s: [] for s in SUBJECTS}
        mirror_cmds = {}
        for r in range(small_rounds):
            for s in SUBJECTS:
                steps[s] += small_ftplib(s, names, fsize)
            log(f"small files, ftplib, round {r + 1}/{small_rounds} done")
            for s in SUBJECTS:
                t, cmds = small_lftp(s, nfiles, fsize, work, f"{s}-{r}")
                mirror[s].append(t)
                mirror_cmds[s] = cmds
            log(f"small files, lftp mirror, round {r + 1}/{small_rounds} done")
        setup = {s: {"greet": [], "setup": []} for s in SUBJECTS}
        for i in range(sessions):
            for s in SUBJECTS:
                g, t = session_time(s)
                setup[s]["greet"].append(g)
                setup[s]["setup"].append(t)
        log(f"{sessions} set-up sessions per subject done")
        rtt_after = check_rtt(args.rtt_ms, f"{args.small_mbit} Mbit/s, after")
        q_small = net.qdisc_stats()
        wires = net.stop_wires()

        # ---- report
        secs = time.monotonic() - started
        print()
        print(f"{secs:.0f} s; load average {loadavg()} after")
        print("tbf queues (bulk part): " + "; ".join(q_bulk))
        print("tbf queues (whole run): " + "; ".join(q_small))
        for w in wires:
            print(f"delay line {w}")
        print()
        print(f"Bulk, {args.bulk_mbit} Mbit/s, RTT {rtt_bulk * 1000:.1f} ms measured; curl "
              f"(PASV), {bulk // MIB} MiB, data phase; median (min–max) of {rounds}:")
        print()
        table(["MB/s", "direct", "ftpgate", "ftp-proxy", "ftpgate/direct",
               "ftp-proxy/direct"],
              [[k.upper()] + [fmt(res[s][k], 1e-6, 1) for s in SUBJECTS]
               + [f"{med(res['ftpgate'][k]) / med(res['direct'][k]):.3f}",
                  f"{med(res['ftp-proxy'][k]) / med(res['direct'][k]):.3f}"]
               for k in ("retr", "stor")])
        rtt = rtt_small
        print()
        print(f"Small files, {args.small_mbit} Mbit/s, RTT {rtt * 1000:.1f} ms measured "
              f"(after: {rtt_after * 1000:.1f}); {nfiles} files of {args.file_kib} KiB one "
              f"after another in one session, {small_rounds} round(s).")
        print()
        print("ftplib, per file, median ms (round trips = ms / measured RTT):")
        print()
        rows = []
        for k in STEPS:
            row = [STEP_LABELS[k]]
            for s in SUBJECTS:
                v = med([x[k] for x in steps[s]])
                row.append(f"{v * 1000:.1f} ({v / rtt:.2f} RTT)")
            rows.append(row)
        rows.append(["mean file total"] + [
            f"{statistics.mean(x['total'] for x in steps[s]) * 1000:.1f} "
            f"({statistics.mean(x['total'] for x in steps[s]) / rtt:.2f} RTT)"
            for s in SUBJECTS])
        table(["step"] + SUBJECTS, rows)
        print()
        print("lftp mirror (login, listing and all files; whole command):")
        print()
        table(["", "direct", "ftpgate", "ftp-proxy"],
              [["seconds"] + [fmt(mirror[s], 1, 2) for s in SUBJECTS],
               ["seconds per file"] + [f"{med(mirror[s]) / nfiles * 1000:.1f} ms"
                                       for s in SUBJECTS],
               ["round trips per file"] + [f"{med(mirror[s]) / nfiles / rtt:.2f}"
                                           for s in SUBJECTS]])
        print()
        print("lftp commands sent (last round): " + "; ".join(
            f"{s}: " + ", ".join(f"{c} {n}" for c, n in sorted(mirror_cmds[s].items()))
            for s in SUBJECTS))
        print()
        print(f"Session set-up, {args.small_mbit} Mbit/s: ftplib connect, 220, USER, PASS, "
              f"PWD, QUIT; median (min–max) ms of {sessions}, and round trips:")
        print()
        table(["", "direct", "ftpgate", "ftp-proxy"],
              [["time to 220, ms"] + [fmt(setup[s]["greet"], 1000, 1) for s in SUBJECTS],
               ["session, ms"] + [fmt(setup[s]["setup"], 1000, 1) for s in SUBJECTS],
               ["session, round trips"] + [f"{med(setup[s]['setup']) / rtt:.2f}"
                                           for s in SUBJECTS]])
        print()
        print("summary: round trips per 16 KiB file (ftplib | lftp mirror): " + "; ".join(
            f"{s} {med([x['total'] for x in steps[s]]) / rtt:.2f} | "
            f"{med(mirror[s]) / nfiles / rtt:.2f}" for s in SUBJECTS))
    except RuntimeError as e:
        print(f"netbench: {e}", file=sys.stderr)
        return 1
    finally:
        net.leave()
        procs.stop_all()
        net.teardown()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""ftpgate's side-by-side benchmark (run it through scripts/bench).

Measures, in one run and with the subjects interleaved (direct, ftpgate,
ftp-proxy, direct, ...), against one vsftpd serving from /dev/shm:

  (a) RETR of a large file and (b) STOR of a large file with curl (PASV),
      direct to vsftpd, through ftpgate and through Debian's ftp-proxy, both
      proxies started per connection by socat EXEC:...,nofork;
  (c) per-session set-up time (connect, USER, PASS, PWD, QUIT) with ftplib,
      and the time to the 220 greeting;
  (d) each proxy session's CPU seconds (user+sys) per GiB relayed and peak
      RSS, from wait4(2) on the proxy process (microsecond CPU times; GNU
      time prints only hundredths), and ftpgate's poll wake-ups per MiB from
      its DBG transfer log line;
  (e) the whole machine's busy CPU seconds per GiB during each transfer
      (/proc/stat), which shows where a proxy's data path moves work: with
      splice the receiver pays for what the proxy does not.

Prints medians with min-max, the ratios ftpgate/direct and ftpgate/ftp-proxy,
and the issue #6 targets.

Then the FTPS part (SPEC 10; --ftps runs only it, --no-ftps skips it;
RETR 512 MiB, STOR 256 MiB, 100 set-up sessions; --quick 128, 64, 25): a
second vsftpd on the same directory with ssl_enable=YES (TLS forced,
require_ssl_reuse=YES) and a throw-away CA + `localhost` leaf made with the
openssl CLI, and three subjects reached by curl --ssl-reqd --cacert CA:

  direct FTPS      curl -> vsftpd (TLS);
  TLS both legs    curl -> ftpgate (ClientTLS optional, ServerTLS required,
                   ServerTLSCAFile CA, ServerTLSName localhost) -> vsftpd (TLS);
  TLS client leg   curl -> ftpgate (ClientTLS optional) -> vsftpd (plain);

measured like the plain part (interleaved RETR and STOR, data phase only;
the proxy's CPU s/GiB and peak RSS; machine CPU s/GiB), and the set-up time
of a session (connect, AUTH TLS, USER, PASS, PWD, QUIT with
ftplib.FTP_TLS; the plain session through vsftpd and ftpgate interleaved
with them for comparison). ftp-proxy has no TLS and is not in this part.

Everything stays on 127.0.0.1; every process started here is ended by its
PID; the work directory is removed.

    bench.py [--quick] [--rounds N] [--sessions N] [--keep]
             [--ftps | --no-ftps] [--ftps-sessions N] [--stor-tls-max V]
    bench.py rusage OUT PROG ARGS...   (internal: run PROG, append rusage to OUT)
"""

import argparse
import ftplib
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

GIB = 1 << 30
MIB = 1 << 20
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FTP_PROXY = "/usr/sbin/ftp-proxy"


def rusage_main(argv):
    """rusage OUT PROG ARGS...: run PROG under /usr/bin/time with our stdin
    and stdout; append 'user_s sys_s maxrss_kib' to OUT.

    CPU comes from our wait4(2) (microseconds; it includes the few hundred
    microseconds of /usr/bin/time itself), peak RSS from GNU time's %M: a
    Python child would carry Python's RSS high-water mark across execve.
    """
    out, prog = argv[0], argv[1:]
    rss_file = out + ".rss"
    pid = os.fork()
    if pid == 0:
        try:
            os.execv("/usr/bin/time", ["/usr/bin/time", "-a", "-o", rss_file, "-f", "%M"] + prog)
        finally:
            os._exit(127)
    # Let go of the client socket so only the proxy holds it.
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    while True:
        try:
            _, status, ru = os.wait4(pid, 0)
            break
        except InterruptedError:
            continue
    with open(rss_file) as f:
        rss = f.read().split()[-1]
    with open(out, "a") as f:
        f.write(f"{ru.ru_utime:.6f} {ru.ru_stime:.6f} {rss}\n")
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


# ---------------------------------------------------------------------------
# processes


class Procs:
    """Processes we started; ended by PID (and their children, by PID)."""

    def __init__(self):
        self.procs = []

    def start(self, args, log):
        p = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            for kid in descendants(p.pid):
                try:
                    os.kill(kid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.procs = []


def descendants(root):
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
                parent[int(d)] = int(st[st.rfind(")") + 2 :].split()[1])
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


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, proc, what):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: {what} exited early (status {proc.returncode})")
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
                    return
        time.sleep(0.05)
    sys.exit(f"bench: {what} not listening on 127.0.0.1:{port}")


def wait_lines(path, n, secs=30):
    """Wait until `path` has at least n lines; return them."""
    deadline = time.monotonic() + secs
    while True:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.01)


# ---------------------------------------------------------------------------
# set-up


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
            # vary the chunks a little so nothing can dedupe them
            chunk = chunk[1:] + chunk[:1]
    os.chmod(path, 0o644)


def start_vsftpd(procs, work, pki=None):
    """vsftpd on 127.0.0.1 serving work/root (anonymous, uploads allowed);
    with `pki`, as an FTPS server: TLS forced for logins and data,
    require_ssl_reuse=YES (vsftpd's default), the PKI's localhost leaf."""
    top = os.path.join(work, "root")
    pub = os.path.join(top, "pub")
    os.makedirs(pub, exist_ok=True)
    os.chmod(top, 0o755)
    os.chmod(pub, 0o777)
    os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
    port = free_port()
    name = "vsftpd-tls" if pki else "vsftpd"
    conf = os.path.join(work, f"{name}.conf")
    tls = ""
    if pki:
        tls = f"""ssl_enable=YES
ssl_tlsv1=YES
ssl_sslv2=NO
ssl_sslv3=NO
allow_anon_ssl=YES
force_anon_logins_ssl=YES
force_anon_data_ssl=YES
force_local_logins_ssl=YES
force_local_data_ssl=YES
require_ssl_reuse=YES
rsa_cert_file={pki['cert']}
rsa_private_key_file={pki['key']}
"""
    write(
        conf,
        f"""listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={port}
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
pasv_address=127.0.0.1
port_enable=YES
connect_from_port_20=NO
xferlog_enable=NO
vsftpd_log_file={work}/{name}.log
ftpd_banner=vsftpd bench server ready.
max_clients=64
max_per_ip=0
{tls}""",
        0o600,
    )
    log = open(os.path.join(work, f"{name}.out"), "w")
    p = procs.start(["/usr/sbin/vsftpd", conf], log)
    wait_listening(port, p, name)
    return port, pub, p.pid


def make_pki(work):
    """A throw-away CA and a leaf for DNS:localhost, IP:127.0.0.1 signed by
    it (RSA-2048, like tests/common's Pki), made with the openssl CLI."""
    d = os.path.join(work, "pki")
    os.makedirs(d)

    def openssl(*a):
        r = subprocess.run(["openssl", *a], cwd=d, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            sys.exit(f"bench: openssl {' '.join(a)} failed: {r.stderr.strip()}")

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "3",
            "-subj", "/CN=ftpgate bench CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    write(os.path.join(d, "leaf.ext"),
          "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
          "keyUsage=critical,digitalSignature,keyEncipherment\n"
          "extendedKeyUsage=serverAuth\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-sha256",
            "-keyout", "localhost.key", "-out", "localhost.csr", "-subj", "/CN=localhost")
    openssl("x509", "-req", "-sha256", "-in", "localhost.csr", "-CA", "ca.pem",
            "-CAkey", "ca.key", "-CAcreateserial", "-days", "3",
            "-extfile", "leaf.ext", "-out", "localhost.pem")
    for f in ("ca.key", "localhost.key"):
        os.chmod(os.path.join(d, f), 0o600)
    return {"ca": os.path.join(d, "ca.pem"),
            "cert": os.path.join(d, "localhost.pem"),
            "key": os.path.join(d, "localhost.key")}


def start_proxy(procs, work, name, binary, dest_port, level, timed, extra=""):
    """socat TCP-LISTEN -> EXEC proxy; `timed` wraps it in our rusage runner;
    `extra`: more configuration lines (TLS)."""
    conf = os.path.join(work, f"{name}-{level}.conf")
    log = os.path.join(work, f"{name}-{level}.log")
    write(
        conf,
        f"""# ftpgate benchmark
DestinationAddress 127.0.0.1
DestinationPort {dest_port}
LogDestination {log}
LogLevel {level}
{extra}""",
    )
    usage = os.path.join(work, f"{name}-{level}.rusage")
    if timed:
        wrapper = os.path.join(work, f"{name}-{level}.sh")
        write(
            wrapper,
            "#!/bin/sh\n"
            f"exec '{sys.executable}' '{os.path.abspath(__file__)}' rusage "
            f"'{usage}' '{binary}' -i -f '{conf}'\n",
            0o755,
        )
        cmd = wrapper
    else:
        cmd = f"{binary} -i -f {conf}"
    port = free_port()
    out = open(os.path.join(work, f"socat-{name}-{level}.out"), "w")
    p = procs.start(
        [
            "socat",
            f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
            f"EXEC:{cmd},nofork",
        ],
        out,
    )
    wait_listening(port, p, f"socat for {name}")
    return {"port": port, "log": log, "usage": usage, "sessions": 0, "pid": p.pid}


# ---------------------------------------------------------------------------
# measurements


def anon_kib(pid):
    """RssAnon of pid in KiB (None if gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proxy_pid(root, names=("ftpgate", "ftp-proxy")):
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() in names:
                    return pid
        except OSError:
            pass
    return None


def curl(port, args, what, watch=None, tls=(), server=None):
    """Run curl; with `watch` (socat's PID) sample the proxy session's
    private (anonymous) RSS every 5 ms meanwhile; returns (fields, max KiB).
    `tls`: more curl arguments (--ssl-reqd --cacert CA ...); `server`: a
    TreeCpu to sample meanwhile (and until the server's sessions end)."""
    base = [
        "curl",
        "-s",
        "-S",
        "--max-time",
        "300",
        "--disable-epsv",
        "--disable-eprt",
        "-u",
        "anonymous:bench@example.org",
    ]
    p = subprocess.Popen(
        base + list(tls) + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = None
    if watch is not None or server is not None:
        pid = None
        while p.poll() is None:
            if watch is not None:
                pid = pid or proxy_pid(watch)
                kib = anon_kib(pid) if pid else None
                if kib is not None:
                    peak = max(peak or 0, kib)
            if server is not None:
                server.sample()
            time.sleep(0.005)
    out, err = p.communicate(timeout=320)
    if server is not None:
        server.drain()
    if p.returncode != 0:
        sys.exit(f"bench: curl {what} on port {port} failed: {err.strip()}")
    return out.split(), peak


def busy_seconds():
    """CPU seconds the whole machine has been busy (all CPUs, /proc/stat:
    user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def retr(port, size, watch, tls=(), name="big.bin", server=None):
    (size_s, total, pre), anon = curl(
        port,
        [
            "-o",
            "/dev/null",
            "-w",
            "%{size_download} %{time_total} %{time_pretransfer}",
            f"ftp://127.0.0.1:{port}/pub/{name}",
        ],
        "RETR",
        watch,
        tls,
        server,
    )
    if int(size_s) != size:
        sys.exit(f"bench: RETR on port {port} got {size_s} bytes, want {size}")
    return size / (float(total) - float(pre)), anon


def stor(port, src, pub, size, n, watch, tls=(), server=None):
    name = f"up-{n}.bin"
    (size_s, total, pre), anon = curl(
        port,
        [
            "-T",
            src,
            "-w",
            "%{size_upload} %{time_total} %{time_pretransfer}",
            f"ftp://127.0.0.1:{port}/pub/{name}",
        ],
        "STOR",
        watch,
        tls,
        server,
    )
    path = os.path.join(pub, name)
    got = os.path.getsize(path)
    os.unlink(path)
    if int(size_s) != size or got != size:
        sys.exit(f"bench: STOR on port {port} stored {got} bytes, want {size}")
    return size / (float(total) - float(pre)), anon


WAKEUPS = re.compile(r"transfer: (\d+) bytes by (\S+), (\d+) wakeups")


def proxy_cost(proxy, nbytes):
    """CPU s/GiB, peak RSS KiB of the session just ended; ftpgate wake-ups/MiB."""
    proxy["sessions"] += 1
    lines = wait_lines(proxy["usage"], proxy["sessions"])
    if len(lines) < proxy["sessions"]:
        sys.exit(f"bench: no resource usage recorded in {proxy['usage']}")
    user, sys_, rss = lines[proxy["sessions"] - 1].split()
    cpu = (float(user) + float(sys_)) / (nbytes / GIB)
    wake = None
    method = None
    try:
        with open(proxy["log"], errors="replace") as f:
            found = WAKEUPS.findall(f.read())
        if found:
            b, method, w = found[-1]
            if int(b) == nbytes:
                wake = int(w) / (nbytes / MIB)
    except FileNotFoundError:
        pass
    return cpu, int(rss), wake, method


def session_time(port):
    """Seconds for connect+greeting and for the whole session."""
    t0 = time.perf_counter()
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=20)
    t1 = time.perf_counter()
    ftp.login("anonymous", "bench@example.org")
    ftp.pwd()
    ftp.quit()
    t2 = time.perf_counter()
    ftp.close()
    return t1 - t0, t2 - t0


def session_time_tls(port, ctx):
    """FTPS session with ftplib.FTP_TLS (a full handshake each time, no
    resumption): seconds to the greeting, to the end of AUTH TLS (reply and
    handshake), and for the whole session (USER, PASS, PWD, QUIT on TLS)."""
    t0 = time.perf_counter()
    ftp = ftplib.FTP_TLS(context=ctx)
    ftp.connect("127.0.0.1", port, timeout=20)
    t1 = time.perf_counter()
    ftp.auth()
    t2 = time.perf_counter()
    ftp.login("anonymous", "bench@example.org")
    ftp.pwd()
    ftp.quit()
    t3 = time.perf_counter()
    ftp.close()
    return t1 - t0, t2 - t0, t3 - t0


def tls_probe(port, ctx):
    """(version, cipher) of an FTP_TLS control connection to `port`."""
    ftp = ftplib.FTP_TLS(context=ctx)
    ftp.connect("127.0.0.1", port, timeout=20)
    ftp.auth()
    got = (ftp.sock.version(), ftp.sock.cipher()[0])
    ftp.login("anonymous", "bench@example.org")
    ftp.quit()
    ftp.close()
    return got


# ---------------------------------------------------------------------------
# report


def stats(xs):
    return statistics.median(xs), min(xs), max(xs)


def fmt(xs, scale=1.0, digits=1):
    if not xs:
        return "n/a"
    m, lo, hi = stats(xs)
    return f"{m * scale:.{digits}f} ({lo * scale:.{digits}f}–{hi * scale:.{digits}f})"


def ratio(a, b):
    if not a or not b:
        return "n/a"
    mb = statistics.median(b)
    return f"{statistics.median(a) / mb:.3f}" if mb else "n/a"


def main():
    ap = argparse.ArgumentParser(description="ftpgate vs direct vs ftp-proxy")
    ap.add_argument("--quick", action="store_true", help="2 rounds, 256/128 MiB, 50 sessions")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--sessions", type=int)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--ftpgate", default=os.path.join(REPO, "target/release/ftpgate"))
    part = ap.add_mutually_exclusive_group()
    part.add_argument("--ftps", action="store_true", help="only the FTPS part")
    part.add_argument("--no-ftps", action="store_true", help="only the plain part")
    ap.add_argument("--ftps-sessions", type=int,
                    help="FTPS set-up sessions per subject (100; --quick 25)")
    ap.add_argument("--stor-tls-max", metavar="V",
                    help="curl --tls-max V for FTPS STOR (e.g. 1.2); default: none")
    args = ap.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    sessions = args.sessions or (50 if args.quick else 200)
    retr_size = 256 * MIB if args.quick else GIB
    stor_size = 128 * MIB if args.quick else 512 * MIB
    if not os.access(args.ftpgate, os.X_OK):
        sys.exit(f"bench: {args.ftpgate} not built")
    subjects = ["direct", "ftpgate"]
    if os.access(FTP_PROXY, os.X_OK):
        subjects.append("ftp-proxy")
    else:
        print(f"bench: {FTP_PROXY} missing, measuring without it", file=sys.stderr)

    work = tempfile.mkdtemp(prefix="ftpgate-bench.", dir="/dev/shm")
    os.chmod(work, 0o755)
    procs = Procs()

    def stop(signum, _frame):
        raise SystemExit(f"bench: signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        vport, pub, vpid = start_vsftpd(procs, work)
        if not args.ftps:
            run(args, work, procs, subjects, rounds, sessions, retr_size, stor_size,
                vport, pub)
        if not args.no_ftps:
            if shutil.which("openssl") is None:
                msg = "bench: no openssl CLI (package openssl), FTPS part skipped"
                if args.ftps:
                    sys.exit(msg)
                print(msg, file=sys.stderr)
            else:
                run_ftps(args, work, procs, rounds, vport, pub, vpid)
    finally:
        procs.stop_all()
        if args.keep:
            print(f"bench: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def libc_of(path):
    """'glibc' or 'musl': which C library the static binary carries."""
    with open(path, "rb") as f:
        return "glibc" if b"GLIBC_TUNABLES" in f.read() else "musl"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run(args, work, procs, subjects, rounds, sessions, retr_size, stor_size, vport, pub):
    started = time.monotonic()
    load_before = loadavg()
    make_file(os.path.join(pub, "big.bin"), retr_size)
    src = os.path.join(work, "upload.bin")
    make_file(src, stor_size)
    bins = {"ftpgate": args.ftpgate, "ftp-proxy": FTP_PROXY}
    # Transfers: ftpgate logs at DBG for its wake-up line; set-up: both INF.
    timed = {}
    plain = {"direct": vport}
    for s in subjects[1:]:
        level = "DBG" if s == "ftpgate" else "INF"
        timed[s] = start_proxy(procs, work, s, bins[s], vport, level, True)
        plain[s] = start_proxy(procs, work, s, bins[s], vport, "INF", False)["port"]
    tport = dict(plain)
    tport.update({s: p["port"] for s, p in timed.items()})

    res = {s: {"retr": [], "stor": [], "cpu_retr": [], "cpu_stor": [], "rss": [],
               "wake_retr": [], "wake_stor": [], "setup": [], "greet": [], "anon": [],
               "sys_retr": [], "sys_stor": []}
           for s in subjects}
    methods = set()

    def measure(s, kind, size, transfer):
        """One transfer of `size` bytes by subject `s`: throughput, machine
        CPU, and for a proxy its session's CPU, peak RSS and wake-ups."""
        busy = busy_seconds()
        speed, anon = transfer(tport[s], timed[s]["pid"] if s in timed else None)
        res[s][f"sys_{kind}"].append((busy_seconds() - busy) / (size / GIB))
        res[s][kind].append(speed)
        if anon is not None:
            res[s]["anon"].append(anon)
        if s in timed:
            cpu, rss, wake, method = proxy_cost(timed[s], size)
            res[s][f"cpu_{kind}"].append(cpu)
            res[s]["rss"].append(rss)
            if wake is not None:
                res[s][f"wake_{kind}"].append(wake)
                methods.add(method)

    n = 0
    for r in range(rounds):
        for s in subjects:
            measure(s, "retr", retr_size, lambda port, watch: retr(port, retr_size, watch))
        for s in subjects:
            n += 1
            measure(s, "stor", stor_size,
                    lambda port, watch: stor(port, src, pub, stor_size, n, watch))
        print(f"bench: round {r + 1}/{rounds} of transfers done", file=sys.stderr)
    for i in range(sessions):
        for s in subjects:
            g, t = session_time(plain[s])
            res[s]["greet"].append(g)
            res[s]["setup"].append(t)
    print(f"bench: {sessions} sessions per subject done", file=sys.stderr)
    report(args, res, subjects, rounds, sessions, retr_size, stor_size, methods,
           time.monotonic() - started, (load_before, loadavg()))
    for f in (os.path.join(pub, "big.bin"), src):
        os.unlink(f)


FTPS_SUBJECTS = ["direct FTPS", "TLS both legs", "TLS client leg"]
TLS_LINE = re.compile(r"TLS with (client|server)(?: \S+)?: (TLSv\S+), (\S+)|"
                      r"(client|server) data connection TLS: resumed (\w+)")


def children_cpu():
    """CPU seconds (user+sys) of this process's reaped children: around one
    curl, that curl's own CPU (microseconds)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def tree(root):
    """PIDs of the processes under `root` (its children, theirs, ...)."""
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except (OSError, ValueError):
            continue
        out += kids
        todo += kids
    return out


class TreeCpu:
    """CPU time of the processes under `root` (vsftpd's sessions, not the
    listener), from /proc/PID/schedstat (run time in ns), sampled while a
    transfer runs and until those processes are gone. A session's
    processes are not reliably reaped by the listener (vsftpd's
    unprivileged child can outlive its parent), so the listener's cutime
    would miss them. What a process runs after its last sample (at most
    a few ms) is missed."""

    def __init__(self, root):
        self.root = root
        self.ns = {}

    def sample(self):
        pids = tree(self.root)
        for pid in pids:
            try:
                with open(f"/proc/{pid}/schedstat") as f:
                    ns = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            if ns > self.ns.get(pid, 0):
                self.ns[pid] = ns
        return pids

    def drain(self, secs=10):
        deadline = time.monotonic() + secs
        while self.sample() and time.monotonic() < deadline:
            time.sleep(0.002)

    def seconds(self):
        return sum(self.ns.values()) / 1e9


def run_ftps(args, work, procs, rounds, vport, pub, vpid):
    """The FTPS part: direct FTPS vs ftpgate with TLS on both legs vs
    ftpgate with TLS on the client leg only (to the plain vsftpd)."""
    started = time.monotonic()
    load_before = loadavg()
    retr_size = 128 * MIB if args.quick else 512 * MIB
    stor_size = 64 * MIB if args.quick else 256 * MIB
    sessions = args.ftps_sessions or (25 if args.quick else 100)
    pki = make_pki(work)
    sport, _, spid = start_vsftpd(procs, work, pki)
    server_pid = {"direct FTPS": spid, "TLS both legs": spid, "TLS client leg": vpid}
    make_file(os.path.join(pub, "big-ftps.bin"), retr_size)
    src = os.path.join(work, "upload-ftps.bin")
    make_file(src, stor_size)
    client_tls = (f"ClientTLS optional\nTLSCertificateFile {pki['cert']}\n"
                  f"TLSKeyFile {pki['key']}\n")
    server_tls = (f"ServerTLS required\nServerTLSCAFile {pki['ca']}\n"
                  "ServerTLSName localhost\n")
    legs = {"TLS both legs": ("ftpgate-tls-both", sport, client_tls + server_tls),
            "TLS client leg": ("ftpgate-tls-client", vport, client_tls)}
    # Transfers: timed sessions at DBG (wake-up line); set-up: INF, untimed.
    timed, plain = {}, {"direct FTPS": sport}
    for s, (name, dest, extra) in legs.items():
        timed[s] = start_proxy(procs, work, name, args.ftpgate, dest, "DBG", True, extra)
        plain[s] = start_proxy(procs, work, name, args.ftpgate, dest, "INF", False,
                               extra)["port"]
    plain_gate = start_proxy(procs, work, "ftpgate-plain", args.ftpgate, vport, "INF",
                             False)["port"]
    tport = dict(plain)
    tport.update({s: p["port"] for s, p in timed.items()})
    curl_tls = ["--ssl-reqd", "--cacert", pki["ca"]]
    stor_tls = curl_tls + (["--tls-max", args.stor_tls_max] if args.stor_tls_max else [])
    ctx = ssl.create_default_context(cafile=pki["ca"])
    probes = {s: tls_probe(plain[s], ctx) for s in FTPS_SUBJECTS}

    keys = ("retr", "stor", "cpu_retr", "cpu_stor", "rss", "anon", "wake_retr",
            "wake_stor", "sys_retr", "sys_stor", "curl_retr", "curl_stor", "srv_retr",
            "srv_stor", "greet", "auth", "setup")
    res = {s: {k: [] for k in keys} for s in FTPS_SUBJECTS + ["plain direct", "plain ftpgate"]}

    def measure(s, kind, size, transfer):
        srv = TreeCpu(server_pid[s])
        mine = children_cpu()
        busy = busy_seconds()
        speed, anon = transfer(tport[s], timed[s]["pid"] if s in timed else None, srv)
        res[s][f"sys_{kind}"].append((busy_seconds() - busy) / (size / GIB))
        res[s][f"curl_{kind}"].append((children_cpu() - mine) / (size / GIB))
        res[s][f"srv_{kind}"].append(srv.seconds() / (size / GIB))
        res[s][kind].append(speed)
        if anon is not None:
            res[s]["anon"].append(anon)
        if s in timed:
            cpu, rss, wake, _ = proxy_cost(timed[s], size)
            res[s][f"cpu_{kind}"].append(cpu)
            res[s]["rss"].append(rss)
            if wake is not None:
                res[s][f"wake_{kind}"].append(wake)

    n = 0
    for r in range(rounds):
        for s in FTPS_SUBJECTS:
            measure(s, "retr", retr_size,
                    lambda port, watch, srv: retr(port, retr_size, watch, curl_tls,
                                                  "big-ftps.bin", srv))
        for s in FTPS_SUBJECTS:
            n += 1
            measure(s, "stor", stor_size,
                    lambda port, watch, srv: stor(port, src, pub, stor_size, f"ftps-{n}",
                                                  watch, stor_tls, srv))
        print(f"bench: FTPS round {r + 1}/{rounds} of transfers done", file=sys.stderr)
    for i in range(sessions):
        for s in ("plain direct", "plain ftpgate"):
            g, t = session_time(vport if s == "plain direct" else plain_gate)
            res[s]["greet"].append(g)
            res[s]["setup"].append(t)
        for s in FTPS_SUBJECTS:
            g, a, t = session_time_tls(plain[s], ctx)
            res[s]["greet"].append(g)
            res[s]["auth"].append(a)
            res[s]["setup"].append(t)
    print(f"bench: {sessions} FTPS set-up sessions per subject done", file=sys.stderr)
    seen = {}
    for s, p in timed.items():
        with open(p["log"], errors="replace") as f:
            for leg, version, suite, dleg, resumed in TLS_LINE.findall(f.read()):
                key = (f"{leg} control {version} {suite}" if leg
                       else f"{dleg} data resumed {resumed}")
                seen.setdefault(s, {}).setdefault(key, 0)
                seen[s][key] += 1
    report_ftps(args, res, rounds, sessions, retr_size, stor_size, probes, seen,
                time.monotonic() - started, (load_before, loadavg()))
    for f in (os.path.join(pub, "big-ftps.bin"), src):
        os.unlink(f)


def report_ftps(args, res, rounds, sessions, retr_size, stor_size, probes, seen, secs, load):
    mbs = 1 / 1e6
    med = statistics.median
    both, cli, d = res["TLS both legs"], res["TLS client leg"], res["direct FTPS"]
    print()
    print(f"ftpgate FTPS benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{rounds} rounds, RETR {retr_size // MIB} MiB, STOR {stor_size // MIB} MiB, "
          f"{sessions} set-up sessions per subject, {secs:.0f} s")
    print(f"ftpgate binary: {args.ftpgate} (static, {libc_of(args.ftpgate)})")
    print(f"{os.cpu_count()} CPUs, kernel {os.uname().release}, load average "
          f"{load[0]} before, {load[1]} after")
    print("clients: curl --ssl-reqd --cacert CA (RSA-2048 leaf)"
          + (f", STOR with --tls-max {args.stor_tls_max}" if args.stor_tls_max else "")
          + "; set-up: ftplib.FTP_TLS")
    for s in FTPS_SUBJECTS:
        v, c = probes[s]
        print(f"  {s}: control connection {v}, {c} (as seen by Python)")
    for s, kinds in seen.items():
        print(f"  ftpgate {s}, handshakes logged: "
              + "; ".join(f"{k} ×{n}" for k, n in sorted(kinds.items())))
    print("ftp-proxy: no TLS support, not measured in this part")
    print("median (min–max)")
    print()
    cols = (["direct FTPS", "ftpgate TLS both legs", "ftpgate TLS client leg",
             "both/direct", "client leg/direct", "both/client leg"])
    print("| measure | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")

    def row(label, key, scale, digits, direct=True):
        cells = [fmt(d[key], scale, digits) if direct else "—",
                 fmt(both[key], scale, digits), fmt(cli[key], scale, digits),
                 ratio(both[key], d[key]) if direct else "—",
                 ratio(cli[key], d[key]) if direct else "—",
                 ratio(both[key], cli[key])]
        print(f"| {label} | " + " | ".join(cells) + " |")

    row("RETR MB/s", "retr", mbs, 0)
    row("STOR MB/s", "stor", mbs, 0)
    row("CPU s/GiB, RETR", "cpu_retr", 1, 4, False)
    row("CPU s/GiB, STOR", "cpu_stor", 1, 4, False)
    row("vsftpd CPU s/GiB, RETR", "srv_retr", 1, 3)
    row("vsftpd CPU s/GiB, STOR", "srv_stor", 1, 3)
    row("curl CPU s/GiB, RETR", "curl_retr", 1, 3)
    row("curl CPU s/GiB, STOR", "curl_stor", 1, 3)
    row("machine CPU s/GiB, RETR", "sys_retr", 1, 3)
    row("machine CPU s/GiB, STOR", "sys_stor", 1, 3)
    row("peak RSS MiB", "rss", 1 / 1024, 2, False)
    row("private RSS MiB (sampled)", "anon", 1 / 1024, 2, False)
    row("wake-ups/MiB, RETR", "wake_retr", 1, 2, False)
    row("wake-ups/MiB, STOR", "wake_stor", 1, 2, False)
    print()
    setup = ["plain direct", "plain ftpgate"] + FTPS_SUBJECTS
    print("| set-up, ms | " + " | ".join(setup) + " |")
    print("|---" * (len(setup) + 1) + "|")
    for label, key in (("time to 220", "greet"), ("to end of AUTH TLS", "auth"),
                       ("session set-up", "setup")):
        print(f"| {label} | "
              + " | ".join(fmt(res[s][key], 1000, 2) for s in setup) + " |")
    m = {s: med(res[s]["setup"]) * 1000 for s in setup}
    print()
    print("set-up, differences of medians:")
    print(f"  TLS on a direct session (direct FTPS - plain direct): "
          f"{m['direct FTPS'] - m['plain direct']:.2f} ms")
    print(f"  ftpgate, plain (plain ftpgate - plain direct): "
          f"{m['plain ftpgate'] - m['plain direct']:.2f} ms")
    print(f"  ftpgate, TLS both legs over direct FTPS: "
          f"{m['TLS both legs'] - m['direct FTPS']:.2f} ms")
    print(f"  ftpgate, TLS client leg over plain ftpgate (the client leg's TLS): "
          f"{m['TLS client leg'] - m['plain ftpgate']:.2f} ms")
    print(f"  ftpgate, TLS both legs over TLS client leg (the server leg's TLS): "
          f"{m['TLS both legs'] - m['TLS client leg']:.2f} ms")


def report(args, res, subjects, rounds, sessions, retr_size, stor_size, methods, secs, load):
    mbs = 1 / 1e6
    g, d = res["ftpgate"], res["direct"]
    p = res.get("ftp-proxy")
    print()
    print(f"ftpgate benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{rounds} rounds, RETR {retr_size // MIB} MiB, STOR {stor_size // MIB} MiB, "
          f"{sessions} sessions per subject, {secs:.0f} s; ftpgate data path: "
          f"{', '.join(sorted(methods)) or 'unknown'}")
    print(f"ftpgate binary: {args.ftpgate} (static, {libc_of(args.ftpgate)})")
    print(f"{os.cpu_count()} CPUs, kernel {os.uname().release}, load average "
          f"{load[0]} before, {load[1]} after")
    print("median (min–max)")
    print()
    cols = subjects + ["ftpgate/direct"] + (["ftpgate/ftp-proxy"] if p else [])
    print("| measure | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")

    def row(label, key, scale, digits, direct=True):
        cells = []
        for s in subjects:
            cells.append(fmt(res[s][key], scale, digits) if (direct or s != "direct") else "—")
        cells.append(ratio(g[key], d[key]) if direct else "—")
        if p:
            cells.append(ratio(g[key], p[key]))
        print(f"| {label} | " + " | ".join(cells) + " |")

    row("RETR MB/s", "retr", mbs, 0)
    row("STOR MB/s", "stor", mbs, 0)
    row("CPU s/GiB, RETR", "cpu_retr", 1, 4, False)
    row("CPU s/GiB, STOR", "cpu_stor", 1, 4, False)
    row("machine CPU s/GiB, RETR", "sys_retr", 1, 3)
    row("machine CPU s/GiB, STOR", "sys_stor", 1, 3)
    row("peak RSS MiB", "rss", 1 / 1024, 2, False)
    row("private RSS MiB (sampled)", "anon", 1 / 1024, 2, False)
    row("wake-ups/MiB, RETR", "wake_retr", 1, 2, False)
    row("wake-ups/MiB, STOR", "wake_stor", 1, 2, False)
    row("time to 220, ms", "greet", 1000, 2)
    row("session set-up, ms", "setup", 1000, 2)

    med = statistics.median
    over_g = med(g["setup"]) - med(d["setup"])
    print()
    print(f"set-up overhead (median minus direct): ftpgate {over_g * 1000:.2f} ms", end="")
    if p:
        over_p = med(p["setup"]) - med(d["setup"])
        print(f", ftp-proxy {over_p * 1000:.2f} ms")
    else:
        print()
    print()
    print("targets (issue #6):")

    def target(name, ok, detail):
        print(f"  [{'met ' if ok else 'MISS'}] {name}: {detail}")

    for key, label in (("retr", "RETR"), ("stor", "STOR")):
        r = med(g[key]) / med(d[key])
        target(f"{label} throughput >= 95% of direct", r >= 0.95, f"{r * 100:.1f}%")
    if p:
        for key, label in (("cpu_retr", "RETR"), ("cpu_stor", "STOR")):
            r = med(g[key]) / med(p[key])
            target(f"CPU/GiB {label} <= 1/5 of ftp-proxy", r <= 0.2,
                   f"{med(g[key]):.4f} vs {med(p[key]):.4f} s/GiB = 1/{1 / r:.1f}" if r else "0")
    rss = max(g["rss"]) / 1024
    target("peak RSS per session <= 2.5 MiB", rss <= 2.5, f"max {rss:.2f} MiB")
    if p:
        ok = over_g <= over_p / 3
        target("set-up overhead <= 1/3 of ftp-proxy's", ok,
               f"{over_g * 1000:.2f} ms vs {over_p * 1000:.2f} ms"
               + (f" = {over_g / over_p:.2f}" if over_p > 0 else ""))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "rusage":
        rusage_main(sys.argv[2:])
    else:
        main()

# FTP client for tests/cluster.rs (Python ftplib), run in the client
# network namespace against the service address of several ftpgate hosts.
#
#   cluster_client.py many VIP N DIR      N concurrent sessions
#   cluster_client.py long VIP DIR TAG    one session that waits for DIR/go-TAG
#
# Every session logs in (anonymous), uploads its own file (the bytes sent
# are kept in DIR for the test to compare with the server's copy), and
# downloads the shared file and its upload, passive and active, into DIR.
# Passive data connections go to the address in the 227 reply (the host's
# own, TranslatedAddress), not to the service address. Each session prints
# "session NAME host ADDRESS" (the 227 address) and "session NAME ok".
import ftplib
import os
import sys
import threading
import time

TIMEOUT = 30
PRINT = threading.Lock()


def say(line):
    """One whole line on stdout, not interleaved with other threads'."""
    with PRINT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Client(ftplib.FTP):
    """ftplib that follows the 227 address and remembers it."""

    trust_server_pasv_ipv4_address = True
    hosts = None

    def makepasv(self):
        host, port = super().makepasv()
        self.hosts.add(host)
        return host, port


def retr(ftp, name, path):
    with open(path, "wb") as f:
        ftp.retrbinary("RETR " + name, f.write)


def stor(ftp, name, path, size):
    data = os.urandom(size)
    with open(path, "wb") as f:
        f.write(data)
    with open(path, "rb") as f:
        ftp.storbinary("STOR " + name, f)


def login(vip, name):
    ftp = Client()
    ftp.hosts = set()
    ftp.connect(vip, 21, timeout=TIMEOUT)
    ftp.login("anonymous", "ftpgate@example.org")
    ftp.cwd("pub")
    return ftp


def transfers(ftp, d, name, size):
    """STOR, then RETR of the shared file and of the upload (passive),
    then RETR of the shared file in active mode."""
    ftp.set_pasv(True)
    stor(ftp, "up-%s.bin" % name, os.path.join(d, "sent-%s.bin" % name), size)
    retr(ftp, "shared.bin", os.path.join(d, "got-shared-%s.bin" % name))
    retr(ftp, "up-%s.bin" % name, os.path.join(d, "got-up-%s.bin" % name))
    ftp.set_pasv(False)
    retr(ftp, "shared.bin", os.path.join(d, "got-active-%s.bin" % name))
    ftp.set_pasv(True)


def report(name, ftp):
    for h in sorted(ftp.hosts):
        say("session %s host %s" % (name, h))


def one(vip, d, i, failures):
    name = "m%d" % i
    try:
        ftp = login(vip, name)
        transfers(ftp, d, name, 100_000 + 7_919 * i)
        report(name, ftp)
        ftp.quit()
        say("session %s ok" % name)
    except Exception as e:  # reported, and the exit status says it
        failures.append("%s: %r" % (name, e))
        say("session %s error %r" % (name, e))


def many(vip, n, d):
    failures = []
    threads = [threading.Thread(target=one, args=(vip, d, i, failures)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        sys.exit("failed: " + "; ".join(failures))


def long(vip, d, tag):
    name = "long-" + tag
    ftp = login(vip, name)
    transfers(ftp, d, name + "-1", 300_000)
    report(name, ftp)
    say("session %s waiting" % name)
    go = os.path.join(d, "go-" + tag)
    deadline = time.monotonic() + 90
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("no go file")
        time.sleep(0.05)
    # The same session, after the other host is gone.
    transfers(ftp, d, name + "-2", 400_000)
    report(name, ftp)
    ftp.quit()
    say("session %s ok" % name)


if __name__ == "__main__":
    if sys.argv[1] == "many":
        many(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        long(sys.argv[2], sys.argv[3], sys.argv[4])

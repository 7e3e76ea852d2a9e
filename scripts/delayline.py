#!/usr/bin/env python3
"""A userspace delay line for scripts/netbench: forwards Ethernet frames
between two interfaces and holds each one for a fixed one-way delay.

    delayline.py IF_A IF_B DELAY_MS

Run it in a network namespace of its own that holds IF_A and IF_B (two veth
ends, no addresses): every frame received on one is sent out of the other
DELAY_MS milliseconds after it arrived, in order (one FIFO per direction;
the delay is the same for every frame, so arrival order is due order).
Frames are read and written with AF_PACKET raw sockets; PACKET_VNET_HDR keeps
the kernel's segmentation offload metadata (a 64 KiB TCP "super frame" stays
one frame, its checksum left for the receiver's stack to trust), so the line
moves tens of thousands of bytes per system call and carries 1 Gbit/s in
Python. It waits in select(2) with a timeout to the next frame due: no busy
wait. The rate is not limited here (tbf on the endpoints does that).

On SIGTERM/SIGINT it prints what it forwarded and dropped to stderr.
"""

import collections
import errno
import os
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
BUF = 256 * 1024  # one frame: virtio_net_hdr (10 bytes) + up to 64 KiB + slack


def open_if(name):
    # Protocol 0 until bound, so no frame of another interface slips in.
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 16 << 20)
    s.bind((name, ETH_P_ALL))
    s.setblocking(False)
    return s


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    a, b = open_if(sys.argv[1]), open_if(sys.argv[2])
    delay = float(sys.argv[3]) / 1000.0
    socks = (a, b)
    out = {a.fileno(): b, b.fileno(): a}
    # per direction (keyed by the receiving fd): deque of (due, frame)
    queues = {a.fileno(): collections.deque(), b.fileno(): collections.deque()}
    stats = {"frames": 0, "bytes": 0, "dropped": 0, "max_late_ms": 0.0,
             "late1": 0, "late5": 0}
    # A wire does not wait for a CPU: real-time priority (it sleeps in
    # select between frames, so it cannot starve anything).
    sched = "SCHED_FIFO 20"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(20))
    except OSError as e:
        sched = f"normal (SCHED_FIFO refused: {e.strerror})"

    def stop(_sig, _frm):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    fds = [a.fileno(), b.fileno()]
    try:
        forward(fds, queues, out, socks, delay, stats)
    except SystemExit:
        pass
    print(f"delayline {sys.argv[1]}<->{sys.argv[2]} {sys.argv[3]} ms: "
          f"{stats['frames']} frames, {stats['bytes']} bytes, "
          f"{stats['dropped']} dropped; sent late by > 1 ms: {stats['late1']}, "
          f"> 5 ms: {stats['late5']}, at most {stats['max_late_ms']:.2f} ms; {sched}",
          file=sys.stderr, flush=True)


def forward(fds, queues, out, socks, delay, stats):
    a, b = socks
    now = time.monotonic
    while True:
        due = min((q[0][0] for q in queues.values() if q), default=None)
        # select(2) takes microseconds (poll and epoll round to whole ms)
        timeout = 1.0 if due is None else max(0.0, due - now())
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            continue
        for fd in ready:
            s = a if fd == a.fileno() else b
            q = queues[fd]
            for _ in range(256):  # then send what is due before reading more
                try:
                    frame = s.recv(BUF)
                except BlockingIOError:
                    break
                except InterruptedError:
                    continue
                q.append((now() + delay, frame))
        t = now()
        for fd, q in queues.items():
            dst = out[fd]
            while q and q[0][0] <= t:
                d, frame = q.popleft()
                late = (t - d) * 1000.0
                if late > 1.0:
                    stats["late1"] += 1
                    if late > 5.0:
                        stats["late5"] += 1
                    if late > stats["max_late_ms"]:
                        stats["max_late_ms"] = late
                try:
                    dst.send(frame)
                    stats["frames"] += 1
                    stats["bytes"] += len(frame) - 10
                except OSError as e:
                    if e.errno in (errno.ENOBUFS, errno.EAGAIN, errno.EMSGSIZE,
                                   errno.ENETDOWN, errno.ENXIO, errno.EINVAL):
                        stats["dropped"] += 1
                    else:
                        raise


if __name__ == "__main__":
    main()

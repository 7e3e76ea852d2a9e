#!/bin/sh
# ftpgate on port 2121 of a firewall for transparent proxying
# (transparent-outgoing.conf with nftables-/iptables-transparent-outgoing.*),
# launched by socat: one ftpgate process per connection (nofork).
# Two listeners, IPv4 and IPv6-only: the kernel cannot report the original
# destination of an IPv4 client that arrived on a dual-stack [::] socket.
# tests/netns.rs starts ftpgate exactly like this in a firewall namespace.
set -eu
CONF=${CONF:-/etc/ftpgate/transparent-outgoing.conf}
BIN=${BIN:-/usr/sbin/ftpgate}
socat TCP4-LISTEN:2121,reuseaddr,fork EXEC:"$BIN -i -f $CONF",nofork &
v4=$!
trap 'kill "$v4" 2>/dev/null' EXIT INT TERM
socat TCP6-LISTEN:2121,ipv6only=1,reuseaddr,fork EXEC:"$BIN -i -f $CONF",nofork

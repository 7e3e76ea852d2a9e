#!/bin/sh
# ecmp-director.sh -- the router in front of several ftpgate hosts (ECMP).
#
#   clients --- director --+-- ftpgate host A (service address on lo)
#                          +-- ftpgate host B (service address on lo)
#
# The director routes the shared service address (VIP) to every ftpgate
# host as an equal-cost next hop. Each host has the VIP on its loopback
# interface (host-setup.sh), answers from it, and advertises its OWN
# address in 227 replies (TranslatedAddress in its ftpgate.conf), so that
# passive data connections go straight to the host holding the session.
#
# The route is a "resilient" nexthop group (Linux 5.13 and later): when a
# host is removed, only the flows that went to it move; the sessions on
# the other hosts keep their host. Flows are hashed on addresses and ports
# (fib_multipath_hash_policy 1) so that sessions spread even from one
# client address; set POLICY=0 to hash on addresses only, which keeps all
# connections of a client on one host (then clients that ignore the 227
# address, and EPSV, work too; see README "Several proxy hosts behind a
# load balancer").
#
# Usage (as root on the director):
#   VIP=203.0.113.21 ecmp-director.sh up 203.0.113.11 203.0.113.12
#   ecmp-director.sh remove 203.0.113.12    # a host failed its check
#   ecmp-director.sh add 203.0.113.12       # back again
#   ecmp-director.sh down
# In production a routing daemon (FRR, BIRD) usually does this: each host
# announces the VIP while its health check passes, and the director keeps
# the ECMP route. tests/cluster.rs runs this script in a network namespace.
set -eu
VIP=${VIP:-203.0.113.21}
POLICY=${POLICY:-1}
GROUP=${GROUP:-2100}   # nexthop ids: GROUP for the group, GROUP+n per host

members() {
    ip -o nexthop show | awk -v g="$GROUP" '$1 == "id" && $2 > g && $3 == "via" { print $2 }' | sort -n | paste -sd/ -
}

regroup() {
    m=$(members)
    if [ -z "$m" ]; then
        ip route del "$VIP/32" 2>/dev/null || true
        ip nexthop del id "$GROUP" 2>/dev/null || true
        return
    fi
    if ip nexthop show id "$GROUP" >/dev/null 2>&1; then
        ip nexthop replace id "$GROUP" group "$m" type resilient
    else
        ip nexthop add id "$GROUP" group "$m" type resilient buckets 128
    fi
    ip route replace "$VIP/32" nhid "$GROUP"
}

add() {
    for h in "$@"; do
        n=$((GROUP + 1))
        while ip nexthop show id "$n" >/dev/null 2>&1; do n=$((n + 1)); done
        dev=$(ip -o route get "$h" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
        ip nexthop add id "$n" via "$h" dev "$dev"
    done
}

case "${1:-}" in
up)
    shift
    sysctl -q -w net.ipv4.ip_forward=1
    sysctl -q -w net.ipv4.fib_multipath_hash_policy="$POLICY"
    add "$@"
    regroup
    ;;
add)
    shift
    add "$@"
    regroup
    ;;
remove)
    shift
    for h in "$@"; do
        for id in $(ip -o nexthop show | awk -v g="$GROUP" -v h="$h" '$2 > g && $3 == "via" && $4 == h { print $2 }'); do
            # Deleting a member takes it out of the group at once.
            ip nexthop del id "$id"
        done
    done
    regroup
    ;;
down)
    ip route del "$VIP/32" 2>/dev/null || true
    ip nexthop del id "$GROUP" 2>/dev/null || true
    for id in $(ip -o nexthop show | awk -v g="$GROUP" '$2 > g { print $2 }'); do
        ip nexthop del id "$id"
    done
    ;;
*)
    echo "usage: VIP=address $0 up HOST... | add HOST... | remove HOST... | down" >&2
    exit 2
    ;;
esac

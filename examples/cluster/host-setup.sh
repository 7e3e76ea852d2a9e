#!/bin/sh
# host-setup.sh -- on each ftpgate host behind the director: the shared
# service address (VIP) on the loopback interface, so that the host accepts
# connections to it, and answers from it, without announcing it on the
# network (the director routes it; ecmp-director.sh, or IPVS direct
# routing in keepalived.conf).
#
#   VIP=203.0.113.21 host-setup.sh
#
# The arp sysctls matter when the host shares a LAN with the director's
# clients (IPVS direct routing): the host must not answer ARP for the VIP,
# or the LAN would send the VIP's traffic to it past the director.
# tests/cluster.rs runs this script in each host's network namespace.
set -eu
VIP=${VIP:-203.0.113.21}
ip addr replace "$VIP/32" dev lo
sysctl -q -w net.ipv4.conf.all.arp_ignore=1
sysctl -q -w net.ipv4.conf.all.arp_announce=2

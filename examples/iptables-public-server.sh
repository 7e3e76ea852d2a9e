#!/bin/sh
# iptables/ip6tables rules for ftpgate protecting a public FTP server
# (public-server.conf); the same as nftables-public-server.nft.
# Run as root; re-running replaces the FTPGATE chains.
#
#   WAN_IF=eth0 PROXY_PORT=2121 PASV_PORTS=40000:40999 ./iptables-public-server.sh
#
# - tcp/21 to the firewall's own address is REDIRECTed to ftpgate (leave
#   this out when ftpgate listens on 21 itself).
# - Passive data connections come to the firewall's own address: accept
#   the passive range, no NAT.
# - No ftp conntrack helper on these flows.
set -eu
WAN_IF=${WAN_IF:-eth0}
PROXY_PORT=${PROXY_PORT:-2121}
PASV_PORTS=${PASV_PORTS:-40000:40999}

for ipt in iptables ip6tables; do
	$ipt -t nat -N FTPGATE 2>/dev/null || $ipt -t nat -F FTPGATE
	$ipt -t nat -C PREROUTING -i "$WAN_IF" -p tcp -m addrtype --dst-type LOCAL -j FTPGATE 2>/dev/null ||
		$ipt -t nat -A PREROUTING -i "$WAN_IF" -p tcp -m addrtype --dst-type LOCAL -j FTPGATE
	$ipt -t nat -A FTPGATE -p tcp --dport 21 -j REDIRECT --to-ports "$PROXY_PORT"

	$ipt -N FTPGATE-IN 2>/dev/null || $ipt -F FTPGATE-IN
	$ipt -C INPUT -i "$WAN_IF" -p tcp -j FTPGATE-IN 2>/dev/null ||
		$ipt -A INPUT -i "$WAN_IF" -p tcp -j FTPGATE-IN
	$ipt -A FTPGATE-IN -p tcp --dport "$PROXY_PORT" -j ACCEPT
	$ipt -A FTPGATE-IN -p tcp --dport "$PASV_PORTS" -j ACCEPT

	$ipt -N FTPGATE-FWD 2>/dev/null || $ipt -F FTPGATE-FWD
	$ipt -C FORWARD -i "$WAN_IF" -p tcp -j FTPGATE-FWD 2>/dev/null ||
		$ipt -A FORWARD -i "$WAN_IF" -p tcp -j FTPGATE-FWD
	$ipt -A FTPGATE-FWD -p tcp --dport 21 -j DROP
done

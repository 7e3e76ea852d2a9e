#!/bin/sh
# iptables/ip6tables rules for ftpgate as a transparent outgoing FTP proxy
# (transparent-outgoing.conf); the same as nftables-transparent-outgoing.nft.
# Run as root; re-running replaces the FTPGATE chains.
#
#   LAN_IF=eth1 PROXY_PORT=2121 PASV_PORTS=40000:40999 ./iptables-transparent-outgoing.sh
#
# - tcp/21 from the LAN to anywhere is REDIRECTed to ftpgate on PROXY_PORT;
#   ftpgate reads the original destination (SO_ORIGINAL_DST).
# - The passive range (PassiveMinDataPort:PassiveMaxDataPort) is
#   REDIRECTed unchanged in port: transparent clients open passive data
#   connections to the ORIGINAL server's address.
# - Never "-j CT --helper ftp" on these flows (and keep the kernel's
#   nf_conntrack_helper auto-assignment off): ftpgate owns the data
#   connections; the helper would open and rewrite what ftpgate checked.
set -eu
LAN_IF=${LAN_IF:-eth1}
PROXY_PORT=${PROXY_PORT:-2121}
PASV_PORTS=${PASV_PORTS:-40000:40999}

for ipt in iptables ip6tables; do
	$ipt -t nat -N FTPGATE 2>/dev/null || $ipt -t nat -F FTPGATE
	$ipt -t nat -C PREROUTING -i "$LAN_IF" -p tcp -j FTPGATE 2>/dev/null ||
		$ipt -t nat -A PREROUTING -i "$LAN_IF" -p tcp -j FTPGATE
	$ipt -t nat -A FTPGATE -p tcp --dport 21 -j REDIRECT --to-ports "$PROXY_PORT"
	$ipt -t nat -A FTPGATE -p tcp --dport "$PASV_PORTS" -j REDIRECT

	$ipt -N FTPGATE-FWD 2>/dev/null || $ipt -F FTPGATE-FWD
	$ipt -C FORWARD -i "$LAN_IF" -p tcp -j FTPGATE-FWD 2>/dev/null ||
		$ipt -A FORWARD -i "$LAN_IF" -p tcp -j FTPGATE-FWD
	# Nothing FTP is forwarded past the proxy.
	$ipt -A FTPGATE-FWD -p tcp --dport 21 -j DROP
done

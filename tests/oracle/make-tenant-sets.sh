#!/usr/bin/env bash
# Generates the tenant filter sets used by tests and benches, compiled by
# tcpdump (libpcap) into the plain form:
#   tenants-hosts-1000.filters  `host A` for 1000 addresses (the 40 most
#                               common in the corpus, then 10.99.x.y)
#   tenants-ports-1000.filters  `tcp port P or udp port P`, P = 1..1000
#   tenants-mixed-300.filters   nets with ports, vlan+host, portranges,
#                               ip6, negations, length tests
# Usage: tests/oracle/make-tenant-sets.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/../data
compile() {
  local p
  p=$(tcpdump -ddd -y EN10MB "$1") || { echo "cannot compile: $1" >&2; exit 1; }
  printf '%s\n' "$p" | paste -sd, -
}

corpus_hosts="131.151.32.21 131.151.1.59 10.2.1.2 10.1.1.2 131.151.1.146 0.234.154.214 10.0.0.1 10.1.2.2 169.254.67.194 169.254.255.255 255.255.255.255 0.0.0.0 1.0.3.2 1.0.3.1 1.0.0.2 1.0.0.1 1.0.4.2 1.0.4.1 1.0.2.2 1.0.2.1 192.168.0.2 192.168.0.1 131.151.32.91 192.168.1.249 192.168.1.255 131.151.1.70 131.151.1.60 10.0.253.1 10.28.6.44 10.28.6.42 224.0.0.2 12.0.0.2 10.1.1.99 239.255.255.250 208.21.2.184 64.0.0.1 10.0.255.127 10.0.242.1 10.0.222.1 0.234.154.210"

{
  n=0
  for a in $corpus_hosts; do n=$((n + 1)); printf 'h%04d\t%s\n' "$n" "$(compile "host $a")"; done
  while [ "$n" -lt 1000 ]; do
    n=$((n + 1)); printf 'h%04d\t%s\n' "$n" "$(compile "host 10.99.$((n / 250)).$((n % 250 + 1))")"
  done
} >"$out/tenants-hosts-1000.filters"

{
  for p in $(seq 1 1000); do printf 'p%04d\t%s\n' "$p" "$(compile "tcp port $p or udp port $p")"; done
} >"$out/tenants-ports-1000.filters"

{
  n=0
  emit() { n=$((n + 1)); printf 'm%03d\t%s\n' "$n" "$(compile "$1")"; }
  ports="22 53 67 68 80 123 179 443 646 2905 6696 7000 7001 7005 8080"
  for p in $ports; do
    emit "net 131.151.0.0/16 and port $p"
    emit "net 10.0.0.0/8 and udp port $p"
    emit "ip6 and udp port $p"
    emit "tcp dst port $p"
  done
  for v in 1 2 100 200 202 1213 2001; do
    emit "vlan $v"
    emit "vlan $v and host 10.1.1.1"
    emit "vlan $v and ip and udp"
  done
  for net in 131.0.0.0/8 131.144.0.0/12 131.151.0.0/16 131.151.32.0/20 131.151.32.0/24 131.151.32.16/28 131.151.32.21/32; do
    emit "net $net"
  done
  for pair in 10.0.0.0/8,192.0.0.0/8 10.0.0.0/12,192.160.0.0/12 10.0.0.0/16,192.168.0.0/16 10.0.0.0/20,192.168.0.0/20 10.0.0.0/24,192.168.0.0/24 10.0.0.0/28,192.168.0.0/28 10.0.0.1/32,192.168.0.1/32; do
    emit "src net ${pair%,*} or dst net ${pair#*,}"
  done
  for lo in 1000 2000 5000 7000 7003 7010 8000 30000 40000 60000; do
    emit "portrange $lo-$((lo + 20))"
    emit "udp portrange $lo-$((lo + 5)) and not host 10.0.0.1"
  done
  for s in 60 64 100 128 200 256 512 1000 1500 9000; do
    emit "greater $s"
    emit "less $s and ip"
  done
  for h in $corpus_hosts; do
    emit "host $h and not port 22"
    emit "src host $h and (tcp or icmp)"
  done
  for p in arp rarp icmp icmp6 sctp igmp pim vrrp "ip proto 47" "ether proto 0x88cc" "ether broadcast" "ether multicast" "ip multicast" "ip6 multicast" mpls pppoes "pppoes and ip" "mpls 16006 and ip" llc stp; do
    emit "$p"
  done
  i=0
  while [ "$n" -lt 300 ]; do
    i=$((i + 1))
    emit "host 10.$((i % 4)).$((i % 7)).$((i % 250 + 1)) and tcp port $((1000 + i))"
  done
} >"$out/tenants-mixed-300.filters"
wc -l "$out"/tenants-*.filters

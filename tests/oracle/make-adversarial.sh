#!/usr/bin/env bash
# Adversarial filters for the merged engine (tests/data/adversarial.filters),
# compiled by tcpdump: long ORs of hosts, 12 hosts x 12 ports cross
# products, 24-way ANDs of `not host`, arithmetic on indirect loads.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
compile() {
  local p
  p=$(tcpdump -ddd -y EN10MB "$1") || { echo "cannot compile: $1" >&2; exit 1; }
  printf '%s\n' "$p" | paste -sd, -
}
hosts() { for i in $(seq 1 "$1"); do printf '%s10.%d.%d.%d' "${2:-}" $((i % 3)) $((i % 5)) "$i"; if [ "$i" -lt "$1" ]; then printf ' %s ' "$3"; fi; done; }
{
  printf 'or-hosts-64\t%s\n' "$(compile "$(hosts 64 'host ' or)")"
  printf 'or-hosts-200\t%s\n' "$(compile "$(hosts 200 'host ' or)")"
  hs=$(hosts 12 'host ' or); ps=$(for p in $(seq 1 12); do printf 'port %d' $((p * 7)); if [ "$p" -lt 12 ]; then printf ' or '; fi; done)
  printf 'cross-12x12\t%s\n' "$(compile "($hs) and ($ps)")"
  printf 'and-not-hosts-24\t%s\n' "$(compile "$(hosts 24 'not host ' and)")"
  printf 'and-not-hosts-8\t%s\n' "$(compile "$(hosts 8 'not host ' and)")"
  printf 'arith-ind-1\t%s\n' "$(compile 'tcp[tcp[12] >> 4] * 3 + tcp[2:2] % 7 = 5')"
  printf 'arith-ind-2\t%s\n' "$(compile 'ip[ip[0] & 0xf] - udp[udp[0] & 3] > 100 or tcp[(tcp[12] & 0xf0) >> 2] & 0x40 != 0')"
  printf 'arith-ind-3\t%s\n' "$(compile 'len - ip[2:2] > 14 and (tcp[13] ^ tcp[12]) / (ip[8] | 1) < 9')"
  printf 'deep-or-ports\t%s\n' "$(compile "$(for p in $(seq 1 60); do printf 'tcp dst port %d' $((p * 11)); if [ "$p" -lt 60 ]; then printf ' or '; fi; done)")"
} >"$here/../data/adversarial.filters"
wc -l "$here/../data/adversarial.filters"

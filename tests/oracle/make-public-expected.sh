#!/usr/bin/env bash
# Makes tests/data/public.expected.tsv: what libpcap's bpf_filter() returns
# for every public filter on every corpus frame. Needs libpcap-dev and cc.
# Usage: tests/oracle/make-public-expected.sh [shared dir] [output]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shared=${1:-$here/../../../shared}
out=${2:-$here/../data/public.expected.tsv}
bin=$(mktemp -d)/libpcap_match
cc -O2 -o "$bin" "$here/libpcap_match.c" -lpcap
"$bin" "$here/../data/public.filters" "$shared"/corpus/pcaps/*.pcap >"$out"
echo "wrote $out ($(wc -l <"$out") frames)"

#!/usr/bin/env bash
# Makes tests/data/public.expected.tsv: what libpcap's bpf_filter() returns
# for every public filter on every corpus frame. Needs libpcap-dev and cc.
# Usage: tests/oracle/make-public-expected.sh [output]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
corpus=$here/../data/corpus
out=${1:-$here/../data/public.expected.tsv}
bin=$(mktemp -d)/libpcap_match
cc -O2 -o "$bin" "$here/libpcap_match.c" -lpcap
"$bin" "$here/../data/public.filters" "$corpus"/pcaps/*.pcap >"$out"
echo "wrote $out ($(wc -l <"$out") frames)"

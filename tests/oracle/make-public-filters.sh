#!/usr/bin/env bash
# Compiles every expression of tests/data/corpus/public.txt with tcpdump
# (libpcap) into the plain filter-set form, named L<line>.
#   public.filters            - the programs the kernel accepts
#   public-protochain.filters - lines 41-43: libpcap's protochain loop,
#                               which jumps backward (the kernel refuses it)
# Usage: tests/oracle/make-public-filters.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/../data
: >"$out/public.filters"
: >"$out/public-protochain.filters"
n=0
while IFS= read -r expr; do
  n=$((n + 1))
  prog=$(tcpdump -ddd -y EN10MB "$expr" | paste -sd, -)
  case "$expr" in
    *protochain*) printf 'L%d\t%s\n' "$n" "$prog" >>"$out/public-protochain.filters" ;;
    *) printf 'L%d\t%s\n' "$n" "$prog" >>"$out/public.filters" ;;
  esac
done <"$here/../data/corpus/public.txt"
echo "wrote $(wc -l <"$out/public.filters") + $(wc -l <"$out/public-protochain.filters") filters"

/*
 * The libpcap oracle for `bpf-demux match`: runs each filter of a plain
 * filter-set file (name<TAB>-ddd one-line program) through libpcap's own
 * bpf_filter() over every frame of the given pcap files, and prints the
 * same lines `bpf-demux match` prints:
 *   <basename>:<frame>\t name=ret name=ret ...   (non-zero only, names sorted bytewise)
 * Build: cc -O2 -o libpcap_match libpcap_match.c -lpcap
 * Usage: libpcap_match FILTERS PCAP...
 */
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>

struct filt { char *name; struct bpf_insn *insns; unsigned n; };

static int cmp(const void *a, const void *b) {
  return strcmp(((const struct filt *)a)->name, ((const struct filt *)b)->name);
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: %s FILTERS PCAP...\n", argv[0]); return 2; }
  FILE *f = fopen(argv[1], "r");
  if (!f) { perror(argv[1]); return 2; }
  struct filt *fs = NULL; size_t nf = 0;
  char *line = NULL; size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    if (line[0] == '#' || line[0] == '\n') continue;
    char *tab = strchr(line, '\t');
    if (!tab) { fprintf(stderr, "bad line: %s", line); return 2; }
    *tab = 0;
    fs = realloc(fs, (nf + 1) * sizeof *fs);
    fs[nf].name = strdup(line);
    char *p = tab + 1;
    unsigned n = strtoul(p, &p, 10);
    fs[nf].insns = calloc(n, sizeof(struct bpf_insn));
    fs[nf].n = n;
    for (unsigned i = 0; i < n; i++) {
      if (*p != ',') { fprintf(stderr, "bad program for %s\n", fs[nf].name); return 2; }
      p++;
      fs[nf].insns[i].code = strtoul(p, &p, 10);
      fs[nf].insns[i].jt = strtoul(p, &p, 10);
      fs[nf].insns[i].jf = strtoul(p, &p, 10);
      fs[nf].insns[i].k = strtoul(p, &p, 10);
    }
    nf++;
  }
  qsort(fs, nf, sizeof *fs, cmp);
  for (int a = 2; a < argc; a++) {
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline(argv[a], err);
    if (!pc) { fprintf(stderr, "%s\n", err); return 2; }
    char *dup = strdup(argv[a]);
    const char *base = basename(dup);
    struct pcap_pkthdr *h; const u_char *data; int r; unsigned long no = 0;
    while ((r = pcap_next_ex(pc, &h, &data)) == 1) {
      no++;
      printf("%s:%lu\t", base, no);
      int first = 1;
      for (size_t i = 0; i < nf; i++) {
        u_int v = bpf_filter(fs[i].insns, data, h->len, h->caplen);
        if (v) { printf(first ? "%s=%u" : " %s=%u", fs[i].name, v); first = 0; }
      }
      printf("\n");
    }
    if (r == -1) { fprintf(stderr, "%s: %s\n", argv[a], pcap_geterr(pc)); return 2; }
    pcap_close(pc);
    free(dup);
  }
  return 0;
}

//! The merged structure against a hand-written demultiplexer for the 1000
//! `host` tenants of `tests/data/tenants-hosts-1000.filters`, on the
//! corpus frames: `hosts-1000/merged` and `hosts-1000/handcoded` (one
//! iteration = one pass over all 4438 frames). The hand-written one is
//! what a programmer would write for exactly this set: an EtherType
//! switch, then one ahash probe per address (IPv4 source and destination,
//! ARP/RARP sender and target), each load bounded by the captured length
//! as the filters' loads are. Before timing, both give every frame the
//! same tenants (a panic otherwise), so the figures compare equal work.
//! Issue 16's target: merged at most 2x the hand-written one.

mod common;

use bpf_demux::cbpf::FrameMeta;
use bpf_demux::{spec, Cache, FilterSet, MatchSet};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::collections::HashMap;

/// Tenants by address.
struct HandCoded {
    by_addr: HashMap<u32, Vec<u32>, ahash::RandomState>,
}

impl HandCoded {
    /// `addrs[i]`: tenant i's host address.
    fn new(addrs: &[u32]) -> HandCoded {
        let mut by_addr: HashMap<u32, Vec<u32>, ahash::RandomState> = HashMap::default();
        for (i, a) in addrs.iter().enumerate() {
            by_addr.entry(*a).or_default().push(i as u32);
        }
        HandCoded { by_addr }
    }

    fn be32(f: &[u8], at: usize) -> Option<u32> {
        f.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Every tenant accepting `f`, into `out` (cleared first), as each
    /// `host A` program answers: source first, destination only when the
    /// source is not A (and its load fits).
    #[inline]
    fn matches(&self, f: &[u8], out: &mut Vec<u32>) {
        out.clear();
        let Some(et) = f.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
            return;
        };
        let (src_at, dst_at) = match et {
            0x0800 => (26, 30),
            0x0806 | 0x8035 => (28, 38),
            _ => return,
        };
        let Some(src) = Self::be32(f, src_at) else {
            return;
        };
        if let Some(t) = self.by_addr.get(&src) {
            out.extend_from_slice(t);
        }
        if let Some(dst) = Self::be32(f, dst_at) {
            if dst != src {
                if let Some(t) = self.by_addr.get(&dst) {
                    out.extend_from_slice(t);
                }
            }
        }
    }
}

fn hosts_1000(c: &mut Criterion) {
    let file = bpf_demux_testkit::repo().join("tests/data/tenants-hosts-1000.filters");
    let progs = spec::load_valid(&file).unwrap();
    // Each program is libpcap's `host A`: `jeq #A` right after `ld [26]`.
    let addrs: Vec<u32> = progs.iter().map(|p| p.program.insns()[3].k).collect();
    let hand = HandCoded::new(&addrs);
    let automaton = FilterSet::new(progs).unwrap().publish();
    let frames: Vec<(Vec<u8>, FrameMeta)> = common::corpus_frames();
    let (mut cache, mut out, mut ids) = (Cache::new(), MatchSet::new(), Vec::new());
    let mut matched = 0;
    for (i, (f, m)) in frames.iter().enumerate() {
        automaton.matches_into(&mut cache, f, m, &mut out);
        hand.matches(f, &mut ids);
        let mut a: Vec<u32> = out.iter().map(|(id, _)| id.0).collect();
        a.sort_unstable();
        ids.sort_unstable();
        assert_eq!(a, ids, "frame {i}: merged and hand-coded disagree");
        matched += !a.is_empty() as usize;
    }
    assert!(matched > 100, "only {matched} frames match a tenant");
    let mut g = c.benchmark_group("hosts-1000");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("merged", |b| {
        b.iter(|| {
            let mut acc = 0;
            for (f, m) in &frames {
                automaton.matches_into(&mut cache, black_box(f), m, &mut out);
                acc += out.len();
            }
            black_box(acc)
        })
    });
    g.bench_function("handcoded", |b| {
        b.iter(|| {
            let mut acc = 0;
            for (f, _) in &frames {
                hand.matches(black_box(f), &mut ids);
                acc += ids.len();
            }
            black_box(acc)
        })
    });
    g.finish();
}

criterion_group!(benches, hosts_1000);
criterion_main!(benches);

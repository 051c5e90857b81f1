//! The merged structure against a hand-written demultiplexer
//! ([`HostsDemux`]) for the 1000 `host` tenants of
//! `tests/data/tenants-hosts-1000.filters`, on the corpus frames:
//! `hosts-1000/merged` and `hosts-1000/handcoded` (one iteration = one
//! pass over all 4438 frames). Before timing, both give every frame the
//! same tenants (a panic otherwise), so the figures compare equal work.
//! Issue 16's target: merged at most 2x the hand-written one.

mod common;

use bpf_demux::cbpf::FrameMeta;
use bpf_demux::{spec, Cache, FilterSet, MatchSet};
use bpf_demux_testkit::handcoded::HostsDemux;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn hosts_1000(c: &mut Criterion) {
    let file = bpf_demux_testkit::repo().join("tests/data/tenants-hosts-1000.filters");
    let progs = spec::load_valid(&file).unwrap();
    let hand = HostsDemux::for_set(&progs).expect("every filter is libpcap's `host A`");
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

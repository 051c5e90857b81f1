//! Baseline: the reference interpreter, each public filter over every
//! corpus frame. Throughput is (frame, filter) pairs, so criterion's
//! time per element is ns per frame per filter.

mod common;

use bpf_demux::cbpf;
use bpf_demux::spec;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn interp(c: &mut Criterion) {
    let frames = common::corpus_frames();
    let set =
        spec::load_valid(&bpf_demux_testkit::repo().join("tests/data/public.filters")).unwrap();
    let mut g = c.benchmark_group("interp");
    g.throughput(Throughput::Elements((frames.len() * set.len()) as u64));
    g.bench_function("public-61/corpus", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for (f, meta) in &frames {
                for p in &set {
                    acc = acc.wrapping_add(cbpf::run(&p.program, black_box(f), meta));
                }
            }
            black_box(acc)
        })
    });
    g.finish();
}

criterion_group!(benches, interp);
criterion_main!(benches);

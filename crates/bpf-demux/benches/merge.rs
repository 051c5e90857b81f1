//! The merged structure against independent filters, on the corpus
//! frames: `merged/<family>/<N>` and `independent/<family>/<N>` for the
//! `hosts` and `ports` families at N = 1, 10, 100, 1000, 10000 (time per
//! iteration = one pass over all 4438 frames; throughput in frames).
//! Also `build/<family>/10000` and `update/<family>/10000` (add one filter,
//! publish, remove it, publish).

mod common;

use bpf_demux::cbpf;
use bpf_demux::{Cache, FilterSet, MatchSet};
use bpf_demux_testkit::workload::Family;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

const NS: [usize; 5] = [1, 10, 100, 1000, 10000];

fn merged_vs_independent(c: &mut Criterion) {
    let frames = common::corpus_frames();
    for fam in [Family::Hosts, Family::Ports] {
        let mut g = c.benchmark_group(format!("merged/{}", fam.name()));
        g.throughput(Throughput::Elements(frames.len() as u64));
        for n in NS {
            let auto = FilterSet::new(fam.tenants(n)).unwrap().publish();
            let (mut cache, mut out) = (Cache::new(), MatchSet::new());
            g.bench_function(BenchmarkId::from_parameter(n), |b| {
                b.iter(|| {
                    let mut acc = 0usize;
                    for (f, meta) in &frames {
                        auto.matches_into(&mut cache, black_box(f), meta, &mut out);
                        acc += out.len();
                    }
                    black_box(acc)
                })
            });
        }
        g.finish();
        let mut g = c.benchmark_group(format!("independent/{}", fam.name()));
        g.throughput(Throughput::Elements(frames.len() as u64));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(3));
        for n in NS {
            let progs = fam.tenants(n);
            g.bench_function(BenchmarkId::from_parameter(n), |b| {
                b.iter(|| {
                    let mut acc = 0usize;
                    for (f, meta) in &frames {
                        for p in &progs {
                            acc += (cbpf::run(&p.program, black_box(f), meta) != 0) as usize;
                        }
                    }
                    black_box(acc)
                })
            });
        }
        g.finish();
    }
}

fn build_and_update(c: &mut Criterion) {
    for fam in [Family::Hosts, Family::Ports] {
        let tenants = fam.tenants(10_000);
        let mut g = c.benchmark_group("build");
        g.sample_size(10);
        g.bench_function(BenchmarkId::new(fam.name(), 10_000), |b| {
            b.iter(|| {
                let mut s = FilterSet::new(tenants.iter().cloned()).unwrap();
                black_box(s.publish())
            })
        });
        g.finish();
        let mut set = FilterSet::new(tenants.iter().cloned()).unwrap();
        let _first = set.publish();
        let extra = fam.tenants(10_001).pop().unwrap();
        let mut g = c.benchmark_group("update");
        g.bench_function(BenchmarkId::new(fam.name(), 10_000), |b| {
            b.iter(|| {
                let id = set.add(extra.clone()).unwrap();
                let a = set.publish();
                set.remove(id);
                let r = set.publish();
                black_box((a, r))
            })
        });
        g.finish();
    }
}

criterion_group!(benches, merged_vs_independent, build_and_update);
criterion_main!(benches);

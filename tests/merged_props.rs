//! Property tests: the merged structure's answer equals, frame by frame,
//! the set of (filter, return value) of running each filter alone in the
//! reference interpreter. Sets of 1 to 64 random kernel-valid programs
//! (every opcode, forward jumps, scratch memory, X arithmetic, IND and MSH
//! loads, negative offsets, ancillary loads) plus realistic tenant filters;
//! frames from the corpus, mutated, truncated, lengthened. Also checks
//! removal: after removing some filters, the rest still answer exactly.
//! Failures proptest finds are kept in proptest-regressions/.

mod common;

use bpf_demux::cbpf::{self, FrameMeta, Program};
use bpf_demux::spec::{self, NamedProgram};
use bpf_demux::{Cache, FilterId, FilterSet, MatchSet};
use common::gen;
use common::*;
use proptest::prelude::*;
use std::sync::OnceLock;

fn base_frames() -> Vec<Vec<u8>> {
    static FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FRAMES
        .get_or_init(|| {
            let mut v: Vec<Vec<u8>> = Vec::new();
            for pcap in corpus_pcaps() {
                for (data, _) in frames_of(&pcap).into_iter().take(12) {
                    if data.len() <= 2000 {
                        v.push(data);
                    }
                }
            }
            v.extend(
                crafted_frames([2, 0, 0, 0, 0, 0xb])
                    .into_iter()
                    .filter(|f| f.len() <= 2000),
            );
            v
        })
        .clone()
}

fn tenant_programs() -> Vec<NamedProgram> {
    static T: OnceLock<Vec<NamedProgram>> = OnceLock::new();
    T.get_or_init(|| {
        let mut v = spec::load_valid(&repo().join("tests/data/public.filters")).unwrap();
        v.extend(spec::load_valid(&repo().join("tests/data/tenants-mixed-300.filters")).unwrap());
        v.extend(spec::load_valid(&repo().join("tests/data/kernel-edge.toml")).unwrap());
        v
    })
    .clone()
}

fn expected(progs: &[(FilterId, Program)], frame: &[u8], meta: &FrameMeta) -> Vec<(FilterId, u32)> {
    progs
        .iter()
        .filter_map(|(id, p)| {
            let v = cbpf::run(p, frame, meta);
            (v != 0).then_some((*id, v))
        })
        .collect()
}

fn got(
    set: &FilterSet,
    cache: &mut Cache,
    out: &mut MatchSet,
    frame: &[u8],
    meta: &FrameMeta,
) -> Vec<(FilterId, u32)> {
    set.matches_into(cache, frame, meta, out);
    out.sort();
    out.as_slice().to_vec()
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn merged_equals_independent(
        randoms in prop::collection::vec(gen::program(), 1..64),
        tenants in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        frames in prop::collection::vec(gen::frame(base_frames()), 1..8),
        removals in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let all = tenant_programs();
        let mut named: Vec<NamedProgram> = randoms
            .into_iter()
            .enumerate()
            .map(|(i, program)| NamedProgram { name: format!("r{i}"), program, snaplen: None })
            .collect();
        for (j, t) in tenants.iter().enumerate() {
            let mut p = all[t.index(all.len())].clone();
            p.name = format!("t{j}-{}", p.name);
            named.push(p);
        }
        let mut set = FilterSet::new(named.iter().cloned()).unwrap();
        let mut progs: Vec<(FilterId, Program)> = set.ids().map(|id| (id, set.program(id).clone())).collect();
        let (mut cache, mut out) = (Cache::new(), MatchSet::new());
        for (f, meta) in &frames {
            prop_assert_eq!(got(&set, &mut cache, &mut out, f, meta), expected(&progs, f, meta));
        }
        // Remove a few filters; the rest must still be exact.
        for r in removals {
            if progs.is_empty() { break; }
            let (id, _) = progs.remove(r.index(progs.len()));
            set.remove(id);
        }
        let published = set.publish();
        for (f, meta) in &frames {
            prop_assert_eq!(got(&set, &mut cache, &mut out, f, meta), expected(&progs, f, meta));
            let mut m = published.matches(f, meta);
            m.sort();
            prop_assert_eq!(m.as_slice().to_vec(), expected(&progs, f, meta));
        }
    }
}

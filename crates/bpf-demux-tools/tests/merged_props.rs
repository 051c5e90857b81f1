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
use bpf_demux::{Cache, FilterId, FilterSet, MatchSet};
use common::gen::{self, base_frames};
use proptest::prelude::*;

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
    set.automaton().matches_into(cache, frame, meta, out);
    out.sort();
    out.as_slice().to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: gen::cases(10_000), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn merged_equals_independent(
        randoms in prop::collection::vec(gen::program(), 1..64),
        tenants in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        frames in prop::collection::vec(gen::frame(base_frames()), 1..8),
        removals in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        compact in any::<bool>(),
    ) {
        let named = gen::named_set(randoms, &tenants);
        let mut set = FilterSet::new(named.iter().cloned()).unwrap();
        let mut progs: Vec<(FilterId, Program)> = set.ids().map(|id| (id, set.program(id).unwrap().clone())).collect();
        let (mut cache, mut out) = (Cache::new(), MatchSet::new());
        for (f, meta) in &frames {
            prop_assert_eq!(got(&set, &mut cache, &mut out, f, meta), expected(&progs, f, meta));
        }
        // Remove a few filters, then add them again under new names (their
        // ids are reused); every answer must still be exact.
        let mut again = Vec::new();
        for r in removals {
            if progs.is_empty() { break; }
            let (id, _) = progs.remove(r.index(progs.len()));
            again.push(set.remove(id).unwrap());
        }
        if compact {
            // What many removals trigger: the set rebuilt, ids kept.
            set.compact();
        }
        for (i, mut p) in again.into_iter().enumerate().skip(1) {
            p.name = format!("again-{i}");
            let id = set.add(p.clone()).unwrap();
            prop_assert!(progs.iter().all(|(other, _)| *other != id), "id {:?} given twice", id);
            progs.push((id, p.program));
        }
        progs.sort_by_key(|(id, _)| *id);
        let published = set.publish();
        for (f, meta) in &frames {
            prop_assert_eq!(got(&set, &mut cache, &mut out, f, meta), expected(&progs, f, meta));
            let mut m = published.matches(f, meta);
            m.sort();
            prop_assert_eq!(m.as_slice().to_vec(), expected(&progs, f, meta));
        }
    }
}

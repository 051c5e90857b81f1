//! Limits: a set built with small limits puts filters in the fallback
//! interpreter instead of growing, and every answer stays exact (oracle:
//! the reference interpreter on the corpus frames).

mod common;

use bpf_demux::cbpf::{self, FrameMeta};
use bpf_demux::ir::{Limits, NormalizeError};
use bpf_demux::spec;
use bpf_demux::{Config, Fallback, FilterSet};
use common::*;

fn check_exact(set: &FilterSet, progs: &[bpf_demux::NamedProgram]) {
    let mut frames = Vec::new();
    for pcap in corpus_pcaps() {
        frames.extend(frames_of(&pcap));
    }
    for (data, orig) in &frames {
        let meta = FrameMeta::offline(data, *orig);
        let mut got: Vec<(String, u32)> = set
            .automaton()
            .matches(data, &meta)
            .iter()
            .map(|(id, v)| (set.name(id).unwrap().to_owned(), v))
            .collect();
        got.sort();
        let mut want: Vec<(String, u32)> = progs
            .iter()
            .filter_map(|p| {
                let v = cbpf::run(&p.program, data, &meta);
                (v != 0).then(|| (p.name.clone(), v))
            })
            .collect();
        want.sort();
        assert_eq!(got, want);
    }
}

#[test]
fn node_budget_turns_filters_into_fallbacks() {
    let progs = spec::load_valid(&repo().join("tests/data/tenants-mixed-300.filters")).unwrap();
    let config = Config {
        max_nodes: 400,
        ..Config::default()
    };
    let mut set = FilterSet::with_config(config);
    for p in &progs {
        set.add(p.clone()).unwrap();
    }
    let s = set.stats();
    assert!(s.nodes <= 400, "{s:?}");
    assert!(s.fallbacks > 100 && s.merged > 10, "{s:?}");
    // Each fallback gives the set's budget as its reason, not a
    // per-filter limit it did not reach.
    for id in set.ids() {
        if let Some(reason) = set.fallback_reason(id) {
            assert_eq!(reason, Fallback::NodeBudget { max_nodes: 400 });
            assert_eq!(
                reason.to_string(),
                "the merged structure would pass its budget of 400 nodes"
            );
        }
    }
    check_exact(&set, &progs);
}

#[test]
fn path_and_work_limits_turn_filters_into_fallbacks() {
    let progs = spec::load_valid(&repo().join("tests/data/adversarial.filters")).unwrap();
    let config = Config {
        limits: Limits {
            max_paths: 4,
            max_literals: 6,
            max_steps: 500,
        },
        ..Config::default()
    };
    let mut set = FilterSet::with_config(config);
    for p in &progs {
        set.add(p.clone()).unwrap();
    }
    let s = set.stats();
    assert!(s.fallbacks >= 6 && s.merged >= 1, "{s:?}");
    for id in set.ids() {
        // A fallback names the limit this test configured, not another.
        if let Some(reason) = set.fallback_reason(id) {
            assert!(
                matches!(
                    reason,
                    Fallback::Normalize(
                        NormalizeError::TooManyPaths { limit: 4 }
                            | NormalizeError::TooManyLiterals { limit: 6 }
                            | NormalizeError::TooMuchWork { limit: 500 }
                    )
                ),
                "{}: {reason:?}",
                set.name(id).unwrap()
            );
        }
    }
    check_exact(&set, &progs);
    // With the default limits (256 paths, 64 tests a path), what falls back
    // follows from how tcpdump compiles these filters
    // (tests/oracle/make-adversarial.sh): `host A or host B ...` reaches its
    // last host through a failed src and dst test of every other one, so
    // 64 and 200 hosts make paths of more than 64 tests; 12 hosts x 12
    // ports accept through at least 144 combinations of a host test and a
    // port test, each in src or dst, more than 256 paths. Everything else
    // merges.
    let set = FilterSet::new(progs.iter().cloned()).unwrap();
    let mut fallbacks: Vec<(String, Fallback)> = set
        .ids()
        .filter_map(|id| Some((set.name(id).unwrap().to_owned(), set.fallback_reason(id)?)))
        .collect();
    fallbacks.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        fallbacks,
        [
            (
                "cross-12x12".to_owned(),
                Fallback::Normalize(NormalizeError::TooManyPaths { limit: 256 })
            ),
            (
                "or-hosts-200".to_owned(),
                Fallback::Normalize(NormalizeError::TooManyLiterals { limit: 64 })
            ),
            (
                "or-hosts-64".to_owned(),
                Fallback::Normalize(NormalizeError::TooManyLiterals { limit: 64 })
            ),
        ]
    );
    check_exact(&set, &progs);
}

#[test]
fn identical_filters_are_two_results_and_counted_equivalent() {
    let p = spec::load_valid(&repo().join("tests/data/public.filters")).unwrap();
    let ip = p.iter().find(|f| f.name == "L1").unwrap().clone();
    let mut twin = ip.clone();
    twin.name = "L1-twin".into();
    let set = FilterSet::new([ip, twin]).unwrap();
    assert_eq!(set.stats().equivalent_filters, 1);
    let frames = frames_of(&repo().join("tests/data/corpus/pcaps/gateway_or_not.pcap"));
    let (data, orig) = &frames[0];
    let m = set
        .automaton()
        .matches(data, &FrameMeta::offline(data, *orig));
    assert_eq!(m.len(), 2);
}

#[test]
fn protochain_programs_fall_back_and_stay_exact() {
    use bpf_demux::cbpf::Program;
    use bpf_demux::expr;
    let mut progs = spec::load_valid(&repo().join("tests/data/public.filters")).unwrap();
    for (i, e) in ["ip6 protochain 17", "ip6 protochain 44", "protochain 6"]
        .iter()
        .enumerate()
    {
        let insns = expr::compile(e, expr::DEFAULT_SNAPLEN).unwrap();
        progs.push(bpf_demux::NamedProgram {
            name: format!("pc{i}"),
            program: Program::validate(&insns).unwrap(),
            snaplen: None,
        });
    }
    let set = FilterSet::new(progs.iter().cloned()).unwrap();
    let s = set.stats();
    assert!(s.fallbacks >= 1, "{s:?}");
    check_exact(&set, &progs);
}

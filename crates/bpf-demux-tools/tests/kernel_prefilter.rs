//! The kernel prefilter (`prefilter::compile`): compiled from the
//! merged structure, it must pass every frame some tenant's filter accepts
//! (the oracle: each tenant's program alone in the reference interpreter),
//! with the whole frame, and stay within the kernel's limits. For the
//! built-in host and port families it must also be exact: it rejects every
//! frame no tenant accepts. The live capture tests (`live_capture.rs`) run
//! with the prefilter attached and compare every tenant's frames with the
//! kernel's own sockets.
//!
//! Frames are modelled as the kernel presents them to a socket filter: the
//! frame length is the number of bytes present.

mod common;

use bpf_demux::cbpf::{self, FrameMeta, Program};
use bpf_demux::ir::Limits;
use bpf_demux::prefilter::ACCEPT as PREFILTER_ACCEPT;
use bpf_demux::spec;
use bpf_demux::NamedProgram;
use bpf_demux::{Config, FilterSet};
use bpf_demux_testkit::workload::{self, Family};
use common::gen::{self, base_frames};
use common::selective;
use common::{corpus_pcaps, frames_of, repo};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use std::cell::Cell;
use std::sync::Arc;

/// The frame as a socket filter sees it: every byte present.
fn kernel_meta(frame: &[u8], meta: &FrameMeta) -> FrameMeta {
    let mut m = *meta;
    m.wire_len = frame.len() as u32;
    m
}

/// What [`check_superset`] saw.
struct Seen {
    /// The set had a prefilter (else every frame passes, trivially).
    prefilter: bool,
    /// Frames some tenant accepts.
    wanted: usize,
    /// Frames the prefilter passes.
    passed: usize,
    /// Filters of the set in the fallback interpreter (inlined into the
    /// prefilter as alternatives).
    fallbacks: usize,
}

/// Checks the prefilter of `progs` on `frames`: every frame some tenant
/// accepts (each tenant alone in the reference interpreter) passes whole.
fn check_superset(progs: &[NamedProgram], frames: &[(Vec<u8>, FrameMeta)]) -> Seen {
    check_superset_with(Config::default(), progs, frames)
}

/// [`check_superset`] for a set built with `config`.
fn check_superset_with(
    config: Config,
    progs: &[NamedProgram],
    frames: &[(Vec<u8>, FrameMeta)],
) -> Seen {
    let mut set = FilterSet::with_config(config);
    for p in progs {
        set.add(p.clone()).unwrap();
    }
    let prefilter = bpf_demux::prefilter::compile(&set.publish()).ok();
    if let Some(p) = &prefilter {
        // The running kernel takes it (an unprivileged socket suffices).
        bpf_demux::capture::sys::kernel_accepts(p.insns())
            .unwrap_or_else(|e| panic!("the kernel refused the prefilter: {e}"));
    }
    let (mut wanted, mut passed) = (0, 0);
    for (i, (f, meta)) in frames.iter().enumerate() {
        let meta = kernel_meta(f, meta);
        let who: Vec<&str> = progs
            .iter()
            .filter(|p| cbpf::run(&p.program, f, &meta) != 0)
            .map(|p| p.name.as_str())
            .collect();
        let verdict = prefilter
            .as_ref()
            .map_or(PREFILTER_ACCEPT, |p| cbpf::run(p, f, &meta));
        assert!(
            verdict == 0 || verdict == PREFILTER_ACCEPT,
            "frame {i}: the prefilter returned {verdict}"
        );
        if !who.is_empty() {
            assert_eq!(
                verdict,
                PREFILTER_ACCEPT,
                "frame {i} ({} bytes): accepted by {who:?}, rejected by the prefilter",
                f.len()
            );
        }
        wanted += !who.is_empty() as usize;
        passed += (verdict != 0) as usize;
    }
    Seen {
        prefilter: prefilter.is_some(),
        wanted,
        passed,
        fallbacks: set.stats().fallbacks,
    }
}

fn traffic(n: usize, tenants: usize) -> Vec<(Vec<u8>, FrameMeta)> {
    let mut v: Vec<(Vec<u8>, FrameMeta)> = workload::traffic(n, tenants, 7)
        .into_iter()
        .map(|f| {
            let meta = FrameMeta::offline(&f.data, f.wire_len);
            (f.data, meta)
        })
        .collect();
    for f in base_frames() {
        let meta = FrameMeta::offline(&f, f.len() as u32);
        v.push((f, meta));
    }
    v
}

#[test]
fn host_and_port_families_are_exact() {
    for family in [Family::Hosts, Family::Ports] {
        for n in [1, 10, 1000] {
            let progs = family.tenants(n);
            let frames = traffic(3000, n);
            let Seen { wanted, passed, .. } = check_superset(&progs, &frames);
            assert!(
                wanted > 0,
                "{} N={n}: the traffic matches nobody",
                family.name()
            );
            assert_eq!(
                passed,
                wanted,
                "{} N={n}: the prefilter passes frames no tenant accepts",
                family.name()
            );
        }
    }
}

#[test]
fn every_family_passes_what_tenants_accept() {
    for family in Family::ALL {
        for n in [3, 100, 1000] {
            let progs = family.tenants(n);
            let frames = traffic(1500, n);
            let Seen { passed, .. } = check_superset(&progs, &frames);
            // Every family's tenants are IPv4/VLAN filters: IPv6-only and
            // other frames must be dropped in the kernel.
            assert!(
                passed < frames.len(),
                "{} N={n}: the prefilter rejects nothing",
                family.name()
            );
        }
    }
}

/// Scattered hosts (no two adjacent) and nets exceed the exact program's
/// size: the budgets shrink, tables coarsen, the result still fits and
/// still passes every accepted frame.
#[test]
fn oversized_sets_coarsen_and_stay_conservative() {
    let mut progs = Vec::new();
    for i in 0..3000u32 {
        let a = std::net::Ipv4Addr::from(
            0x0b00_0000u32.wrapping_add(i.wrapping_mul(2_654_435_761) >> 8),
        );
        let text = format!("host {a} and (tcp port {} or udp)", 1024 + i % 5000);
        let program = Program::validate(&bpf_demux::expr::compile(&text, 262144).unwrap()).unwrap();
        progs.push(NamedProgram {
            name: format!("t{i}"),
            program,
            snaplen: None,
        });
    }
    let mut set = FilterSet::new(progs.iter().cloned()).unwrap();
    let p = bpf_demux::prefilter::compile(&set.publish()).expect("a coarser prefilter fits");
    bpf_demux::capture::sys::kernel_accepts(p.insns()).expect("the kernel takes it");
    // Frames to and from every 7th tenant host, plus the usual traffic.
    let mut frames = traffic(1000, 10);
    for i in (0..3000u32).step_by(7) {
        let a = 0x0b00_0000u32.wrapping_add(i.wrapping_mul(2_654_435_761) >> 8);
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&(0x0a00_0001u32).to_be_bytes());
        f.extend_from_slice(&a.to_be_bytes());
        f.extend_from_slice(&(1024 + (i % 5000) as u16).to_be_bytes());
        f.extend_from_slice(&80u16.to_be_bytes());
        f.resize(54, 0);
        let meta = FrameMeta::offline(&f, f.len() as u32);
        frames.push((f, meta));
    }
    let Seen { wanted, passed, .. } = check_superset(&progs, &frames);
    assert!(wanted >= 3000 / 7);
    assert!(
        passed < frames.len(),
        "the coarse prefilter rejects nothing"
    );
}

#[test]
fn the_running_kernel_accepts_the_prefilters() {
    // An unprivileged socket suffices for SO_ATTACH_FILTER.
    for family in Family::ALL {
        let progs = family.tenants(1000);
        let mut set = FilterSet::new(progs).unwrap();
        let p = bpf_demux::prefilter::compile(&set.publish()).unwrap();
        bpf_demux::capture::sys::kernel_accepts(p.insns())
            .unwrap_or_else(|e| panic!("{}: the kernel refused the prefilter: {e}", family.name()));
    }
    // Three filters in the fallback interpreter, inlined (the accept-all
    // `and-not-hosts` filters left out: they leave nothing to reject).
    let adversarial: Vec<NamedProgram> =
        spec::load_valid(&repo().join("tests/data/adversarial.filters"))
            .unwrap()
            .into_iter()
            .filter(|p| !p.name.starts_with("and-not-hosts"))
            .collect();
    let mut set = FilterSet::new(adversarial.iter().cloned()).unwrap();
    assert!(set.stats().fallbacks >= 3, "{:?}", set.stats());
    let p = bpf_demux::prefilter::compile(&set.publish()).expect("fallbacks are inlined");
    bpf_demux::capture::sys::kernel_accepts(p.insns())
        .unwrap_or_else(|e| panic!("adversarial: the kernel refused the prefilter: {e}"));
    let frames: Vec<(Vec<u8>, FrameMeta)> = corpus_pcaps()
        .iter()
        .flat_map(|f| frames_of(f))
        .map(|(d, orig)| {
            let m = FrameMeta::offline(&d, orig);
            (d, m)
        })
        .collect();
    let seen = check_superset(&adversarial, &frames);
    assert!(seen.prefilter && seen.wanted > 0, "nothing checked");
    assert!(
        seen.passed < frames.len(),
        "the prefilter passes every corpus frame"
    );
}

/// Sets of selective filters (boolean trees of header tests whose
/// constants come from the case's frames) plus public and generated mixed
/// tenants: sets that merge without fallbacks, so nearly all get a
/// prefilter. At least 90% of the cases must have one (counted over the
/// run), and some frames of a fair share of cases must be accepted, or the
/// check would pass by passing everything or by accepting nothing.
#[test]
fn prefilter_passes_every_accepted_frame() {
    let mut merging = spec::load_valid(&repo().join("tests/data/public.filters")).unwrap();
    merging.extend(spec::load_valid(&repo().join("tests/data/tenants-mixed-300.filters")).unwrap());
    let strategy =
        prop::collection::vec(gen::frame(base_frames()), 1..10).prop_flat_map(move |frames| {
            let frames = Arc::new(frames);
            (
                prop::collection::vec(
                    (selective::expr(frames.clone()), selective::accept()),
                    1..30,
                ),
                prop::collection::vec(prop::sample::select(merging.clone()), 0..4),
                Just(frames),
            )
        });
    let cases = gen::cases(5_000);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    });
    let counts = Cell::new((0usize, 0usize, 0usize)); // cases, with a prefilter, with an accepted frame
    runner
        .run(&strategy, |(filters, tenants, frames)| {
            let mut named: Vec<NamedProgram> = filters
                .iter()
                .enumerate()
                .map(|(i, (e, a))| NamedProgram {
                    name: format!("s{i}"),
                    program: selective::compile(e, a),
                    snaplen: None,
                })
                .collect();
            for (j, mut t) in tenants.into_iter().enumerate() {
                t.name = format!("t{j}-{}", t.name);
                named.push(t);
            }
            let seen = check_superset(&named, &frames);
            let (c, p, w) = counts.get();
            counts.set((
                c + 1,
                p + seen.prefilter as usize,
                w + (seen.wanted > 0) as usize,
            ));
            Ok(())
        })
        .unwrap();
    let (c, p, w) = counts.get();
    eprintln!("{c} cases: {p} with a prefilter, {w} with a frame some tenant accepts");
    assert!(c >= cases as usize, "ran {c} cases");
    assert!(
        p * 10 >= c * 9,
        "only {p} of {c} cases had a prefilter: the superset check was vacuous for the rest"
    );
    assert!(
        w * 4 >= c,
        "only {w} of {c} cases had a frame some tenant accepts"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: gen::cases(500), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    /// Random kernel-valid programs (every opcode, scratch memory, X
    /// arithmetic, IND/MSH loads, negative offsets, ancillary loads) and
    /// real tenant filters, kernel edge programs included. Most of these
    /// sets hold a filter that accepts everything, and then have no
    /// prefilter (so every frame passes); the cases that do have one are
    /// checked all the same.
    #[test]
    fn prefilter_passes_every_accepted_frame_with_fallbacks(
        randoms in prop::collection::vec(gen::program(), 1..40),
        tenants in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        frames in prop::collection::vec(gen::frame(base_frames()), 1..8),
    ) {
        let named = gen::named_set(randoms, &tenants);
        check_superset(&named, &frames);
    }
}

/// Filters in the fallback interpreter are inlined into the prefilter as
/// alternatives. Limits this small (2 paths, 4 tests a path) send most
/// real tenants and random kernel-valid programs (every opcode, scratch
/// cells, X arithmetic and division, IND and MSH loads, negative offsets)
/// to the interpreter; random programs that accept every frame of the case
/// are left out (the set would have no prefilter to check). Every frame a
/// tenant accepts must pass, the kernel must take the program, at least
/// half of the cases must have a prefilter, and a fair share of those
/// must reject a frame.
#[test]
fn fallback_filters_are_inlined_into_the_prefilter() {
    let strategy = (
        prop::collection::vec(gen::program(), 0..8),
        prop::collection::vec(any::<prop::sample::Index>(), 1..6),
        prop::collection::vec(gen::frame(base_frames()), 1..8),
    );
    let config = Config {
        limits: Limits {
            max_paths: 2,
            max_literals: 4,
            ..Limits::default()
        },
        ..Config::default()
    };
    let cases = gen::cases(1000);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    });
    // Cases with a fallback; of those, with a prefilter; and rejecting a frame.
    let counts = Cell::new((0usize, 0usize, 0usize));
    runner
        .run(&strategy, |(randoms, tenants, frames)| {
            let selective: Vec<_> = randoms
                .into_iter()
                .filter(|p| {
                    frames
                        .iter()
                        .any(|(f, m)| cbpf::run(p, f, &kernel_meta(f, m)) == 0)
                })
                .collect();
            let named = gen::named_set(selective, &tenants);
            let seen = check_superset_with(config, &named, &frames);
            if seen.fallbacks > 0 {
                let (c, p, r) = counts.get();
                counts.set((
                    c + 1,
                    p + seen.prefilter as usize,
                    r + (seen.prefilter && seen.passed < frames.len()) as usize,
                ));
            }
            Ok(())
        })
        .unwrap();
    let (c, p, r) = counts.get();
    eprintln!("{c} cases with a fallback: {p} with a prefilter, {r} rejecting a frame");
    assert!(
        c * 2 >= cases as usize,
        "only {c} of {cases} cases had a fallback"
    );
    assert!(
        p * 3 >= c,
        "only {p} of {c} cases with a fallback had a prefilter"
    );
    assert!(r * 4 >= p, "only {r} of {p} prefilters rejected any frame");
}

/// `bpf-demux explain --prefilter` prints the prefilter as a `tcpdump -d`
/// listing: it reads back, is kernel-valid, passes every corpus frame one
/// of the 1000 tenants accepts (each tenant alone in the interpreter) and
/// rejects some; a set with an accept-all tenant has none, said on stderr.
#[test]
fn explain_prints_the_prefilter() {
    let bin = env!("CARGO_BIN_EXE_bpf-demux");
    let set = repo().join("tests/data/tenants-hosts-1000.filters");
    let out = std::process::Command::new(bin)
        .args(["explain", "--prefilter"])
        .arg(&set)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let insns = bpf_demux::cbpf::text::parse_listing(&text).unwrap();
    let p = Program::validate(&insns).unwrap();
    let tenants = spec::load_valid(&set).unwrap();
    let (mut wanted, mut passed, mut total) = (0, 0, 0);
    for pcap in corpus_pcaps() {
        for (f, _) in frames_of(&pcap) {
            let meta = FrameMeta::offline(&f, f.len() as u32);
            let want = tenants
                .iter()
                .any(|t| cbpf::run(&t.program, &f, &meta) != 0);
            let got = cbpf::run(&p, &f, &meta);
            if want {
                assert_eq!(got, PREFILTER_ACCEPT);
            }
            wanted += want as usize;
            passed += (got != 0) as usize;
            total += 1;
        }
    }
    assert!(
        passed >= wanted && passed < total,
        "{wanted} {passed} {total}"
    );
    let none = std::process::Command::new(bin)
        .args(["explain", "--prefilter"])
        .arg(repo().join("tests/data/kernel-edge.toml"))
        .output()
        .unwrap();
    assert!(none.status.success());
    assert!(none.stdout.is_empty());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no kernel prefilter"));
}

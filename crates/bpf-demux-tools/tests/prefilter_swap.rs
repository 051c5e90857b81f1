//! Swapping the kernel prefilter of a running capture when the kernel's
//! `optmem_max` cannot hold the old and the new program at once (root; a
//! private network namespace whose own `optmem_max` is lowered: this
//! kernel keeps the value per namespace, which the test checks first, so
//! the host's is never touched).

mod common;

use bpf_demux::capture::sys::{enter_netns, if_index, PacketSocket};
use bpf_demux::capture::{Change, LiveCapture, LiveConfig, PrefilterState, Senders};
use bpf_demux::FilterSet;
use bpf_demux::NamedProgram;
use bpf_demux_testkit::workload::{self, Family};
use common::*;
use std::process::Command;
use std::time::Duration;

/// True when `net.core.optmem_max` exists inside a fresh namespace (it is
/// per namespace there; a global one is visible only in the first).
fn optmem_is_per_namespace(ns: &str) -> bool {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "test",
            "-e",
            "/proc/sys/net/core/optmem_max",
        ])
        .status()
        .is_ok_and(|s| s.success())
}

/// Sets the namespace's `optmem_max` (`swap` checks, from outside the
/// namespace, that the host's value never moved).
fn set_optmem(ns: &str, bytes: u32) {
    let ok = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            &format!("net.core.optmem_max={bytes}"),
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// The host's value (read from a thread in the host's namespace).
fn host_optmem() -> String {
    std::fs::read_to_string("/proc/sys/net/core/optmem_max").unwrap()
}

/// The smallest `optmem_max` under which the running kernel attaches
/// `insns` to a fresh socket of this thread's namespace (binary search).
fn min_optmem(ns: &str, insns: &[bpf_demux::cbpf::Insn]) -> u32 {
    let (mut lo, mut hi) = (256u32, 1 << 20);
    while lo < hi {
        let mid = (lo + hi) / 2;
        set_optmem(ns, mid);
        if bpf_demux::capture::sys::kernel_accepts(insns).is_ok() {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

struct Swap {
    state: PrefilterState,
    retried: bool,
    refusals: u64,
    /// Frames the second set accepts (interpreter), and frames delivered.
    wanted: usize,
    matched: usize,
}

/// Starts on `first`, replaces every tenant with `second` in one update
/// under the `optmem_max` that `limit` picks from the two prefilters'
/// minimal limits, then sends traffic.
fn swap(
    tag: &str,
    first: Vec<NamedProgram>,
    second: Vec<NamedProgram>,
    limit: fn(u32, u32) -> u32,
) -> Swap {
    let ns = NetNs::new(tag);
    assert!(
        optmem_is_per_namespace(&ns.name),
        "optmem_max is not per namespace on this kernel"
    );
    let nspath = ns.path();
    let name = ns.name.clone();
    let host = host_optmem();
    let result = std::thread::spawn(move || {
        enter_netns(&nspath).unwrap();
        let va = if_index("va").unwrap();
        let prefilter = |v: &[NamedProgram]| {
            bpf_demux::prefilter::compile(&FilterSet::new(v.iter().cloned()).unwrap().publish())
                .unwrap()
        };
        let (a, b) = (prefilter(&first), prefilter(&second));
        let (la, lb) = (min_optmem(&name, a.insns()), min_optmem(&name, b.insns()));
        set_optmem(&name, limit(la, lb));
        let set = FilterSet::new(first.clone()).unwrap();
        let (senders, _eps) = Senders::new(
            bpf_demux::capture::TenantSpec::all(set.automaton(), 4096),
            false,
        );
        let mut cfg = LiveConfig::new("vb");
        cfg.reinsert_vlan = false;
        let live = LiveCapture::start(set, senders, &cfg).unwrap();
        assert_eq!(
            live.prefilter_len(),
            Some(a.len()),
            "the first prefilter fits alone"
        );
        let mut changes: Vec<Change> = first
            .iter()
            .map(|p| Change::Remove(p.name.clone()))
            .collect();
        changes.extend(second.iter().map(|p| Change::Add {
            filter: p.clone(),
            queue: 4096.into(),
        }));
        let applied = live.update(changes).unwrap();
        let frames: Vec<Vec<u8>> = workload::traffic(3000, 2000, 3)
            .into_iter()
            .map(|f| f.data)
            .filter(|d| d.len() >= 14)
            .collect();
        let mut tx = PacketSocket::open().unwrap();
        tx.bind(va).unwrap();
        let mut wanted = 0;
        for f in &frames {
            tx.send(f).unwrap();
            let (view, meta) = kernel_view(f, [2, 0, 0, 0, 0, 0xb], 0);
            wanted += second
                .iter()
                .any(|p| bpf_demux::cbpf::run(&p.program, &view, &meta) != 0)
                as usize;
        }
        std::thread::sleep(Duration::from_millis(300));
        let matched = live.frames_matched() as usize;
        let refusals = live.prefilter_refusals();
        live.join().unwrap();
        Swap {
            state: applied.prefilter,
            retried: applied.prefilter_retried,
            refusals,
            wanted,
            matched,
        }
    })
    .join();
    assert_eq!(host_optmem(), host, "the host's optmem_max changed");
    result.unwrap()
}

/// `nets` tenants `from..from + n`, named from `tag`.
fn nets(tag: &str, from: usize, n: usize) -> Vec<NamedProgram> {
    (from..from + n)
        .map(|i| NamedProgram {
            name: format!("{tag}{i}"),
            program: Family::Nets.program(i),
            snaplen: None,
        })
        .collect()
}

/// Two prefilters of about the same size, under a limit that holds either
/// alone but not both: the in-place swap fails with ENOMEM, the retry
/// through no filter succeeds, and every frame the new set accepts comes.
#[test]
#[ignore = "needs root and a network namespace"]
fn a_swap_the_kernel_cannot_hold_goes_through_no_filter() {
    require_netns();
    let s = swap(
        "optmem",
        nets("a", 0, 1000),
        nets("b", 1000, 1000),
        |a, b| {
            let l = a.max(b) + a.min(b) / 3;
            assert!(l < a + b - 64);
            l
        },
    );
    assert!(
        matches!(s.state, PrefilterState::Attached(_)),
        "{:?}",
        s.state
    );
    assert!(s.retried, "the swap should not have fit in place");
    assert_eq!(s.refusals, 0);
    assert!(s.wanted > 20, "{}", s.wanted);
    assert_eq!(s.matched, s.wanted, "frames the new set accepts, delivered");
}

/// A small prefilter, then one the limit cannot hold even alone: the
/// capture goes on without a prefilter, counted, and loses nothing.
#[test]
#[ignore = "needs root and a network namespace"]
fn a_prefilter_the_kernel_refuses_leaves_the_capture_without_one() {
    require_netns();
    let hosts: Vec<NamedProgram> = Family::Hosts.tenants(1000);
    let s = swap("optmem-low", hosts, nets("b", 1000, 1000), |a, b| {
        assert!(b > 2 * a + 64, "{a} {b}");
        (a + b) / 2
    });
    assert!(
        matches!(s.state, PrefilterState::Refused(_)),
        "{:?}",
        s.state
    );
    assert_eq!(s.refusals, 1);
    assert!(s.wanted > 20, "{}", s.wanted);
    assert_eq!(
        s.matched, s.wanted,
        "without a prefilter nothing the set accepts is lost"
    );
}

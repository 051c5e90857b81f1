//! Experiment 1, attaching a filter: `setsockopt(SO_ATTACH_FILTER)` (the
//! kernel's `sk_attach_filter`: copy, `bpf_check_classic`, conversion to
//! eBPF, the JIT, the `optmem_max` charge) against bpf-demux's validate +
//! add + publish of the same program into a set of 1, 1,000 or 10,000
//! tenants, and the kernel prefilter that set then swaps onto its ring.

use super::shapes::Shape;
use super::{sysctl, Spread};
use bpf_demux::capture::sys::ring::{Ring, RingConfig};
use bpf_demux::capture::sys::{if_index, PacketSocket};
use bpf_demux::cbpf::{Insn, Program};
use bpf_demux::FilterSet;
use bpf_demux::NamedProgram;
use bpf_demux_testkit::workload::{Family, SNAPLEN};
use serde::Serialize;
use std::time::Instant;

/// bpf-demux's cost of taking one more tenant into a set of `tenants`.
#[derive(Clone, Debug, Serialize)]
pub struct DemuxAttach {
    pub tenants: usize,
    /// Validate + `FilterSet::add` + `publish`, µs.
    pub add_publish_us: Spread,
    /// `Automaton::kernel_prefilter` of the new set, µs.
    pub prefilter_build_us: Spread,
    /// `SO_ATTACH_FILTER` of that prefilter onto the ring socket (the
    /// kernel swaps it under RCU), µs; `None` when the set has none.
    pub prefilter_attach_us: Option<Spread>,
    pub prefilter_insns: Option<usize>,
    /// The program runs in the fallback interpreter (normalization gave
    /// up), so the set has no prefilter.
    pub fallback: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct AttachRow {
    pub shape: Shape,
    pub insns: usize,
    /// `setsockopt(SO_ATTACH_FILTER)` on a fresh socket, µs; `None` when refused.
    pub kernel_us: Option<Spread>,
    /// The kernel's refusal (at this namespace's `optmem_max`), if any.
    pub kernel_error: Option<String>,
    /// Accepted with `optmem_max` = 20480, the 2.6.33 default?
    pub legacy_optmem_ok: bool,
    pub demux: Vec<DemuxAttach>,
}

/// Where the kernel starts refusing a shape, for one `optmem_max`.
#[derive(Clone, Debug, Serialize)]
pub struct OptmemLimit {
    pub optmem_max: u64,
    pub shape: Shape,
    /// Smallest refused length (exact, by bisection), or `None` up to 4096.
    pub first_refused: Option<usize>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AttachReport {
    pub rows: Vec<AttachRow>,
    pub optmem: Vec<OptmemLimit>,
}

/// The optmem_max of Linux 2.6.33 on 64-bit: `sizeof(long) * (2 * UIO_MAXIOV + 512)`.
pub const LEGACY_OPTMEM: u64 = 20_480;

fn kernel_attach(insns: &[Insn]) -> Result<f64, std::io::Error> {
    let s = PacketSocket::open()?;
    let t = Instant::now();
    s.attach_filter(insns)?;
    Ok(t.elapsed().as_secs_f64() * 1e6)
}

/// Smallest length in `(ok, bad]` the kernel refuses (bad is refused).
fn bisect(shape: Shape, mut ok: usize, mut bad: usize) -> usize {
    while bad - ok > 1 {
        let mid = (ok + bad) / 2;
        if kernel_attach(&shape.program(mid, SNAPLEN, false)).is_ok() {
            ok = mid;
        } else {
            bad = mid;
        }
    }
    bad
}

fn limits(sizes: &[usize], optmem_max: u64) -> Vec<OptmemLimit> {
    Shape::ALL
        .iter()
        .map(|&shape| {
            let mut prev_ok = 0;
            for &n in sizes {
                if let Err(e) = kernel_attach(&shape.program(n, SNAPLEN, false)) {
                    return OptmemLimit {
                        optmem_max,
                        shape,
                        first_refused: Some(bisect(shape, prev_ok, n)),
                        error: Some(e.to_string()),
                    };
                }
                prev_ok = n;
            }
            OptmemLimit {
                optmem_max,
                shape,
                first_refused: None,
                error: None,
            }
        })
        .collect()
}

pub fn run(
    sizes: &[usize],
    tenant_counts: &[usize],
    reps: usize,
    ns_name: &str,
) -> Result<AttachReport, String> {
    // Attach is a few µs: many repetitions per point, still cheap.
    let reps = (reps * 5).max(5);
    let ring_cfg = RingConfig {
        block_size: 1 << 16,
        block_count: 2,
        frame_size: 2048,
        ..RingConfig::default()
    };
    let ring = Ring::open(if_index("vb").map_err(|e| e.to_string())?, &ring_cfg, None)
        .map_err(|e| format!("ring socket: {e}"))?;
    let handle = ring.filter_handle();
    let mut sets = Vec::new();
    for &t in tenant_counts {
        let mut set = FilterSet::new(Family::Hosts.tenants(t - 1)).map_err(|e| e.to_string())?;
        set.publish();
        sets.push((t, set));
    }
    let optmem_max = sysctl::get_in_ns(ns_name, "net.core.optmem_max")?;
    let mut rows = Vec::new();
    for &shape in &Shape::ALL {
        for &n in sizes {
            super::progress(&format!("attach {} {n}", shape.name()));
            let insns = shape.program(n, SNAPLEN, false);
            let mut kernel = Vec::with_capacity(reps);
            let mut kernel_error = None;
            for _ in 0..reps {
                match kernel_attach(&insns) {
                    Ok(us) => kernel.push(us),
                    Err(e) => {
                        kernel_error = Some(e.to_string());
                        break;
                    }
                }
            }
            let mut demux = Vec::new();
            for (t, set) in &mut sets {
                let (mut ap, mut pb, mut pa) = (Vec::new(), Vec::new(), Vec::new());
                let mut pf_len = None;
                let mut fallback = false;
                for _ in 0..reps {
                    let t0 = Instant::now();
                    let program = Program::validate(&insns)
                        .map_err(|e| format!("{} {n}: our validator refuses: {e}", shape.name()))?;
                    let id = set
                        .add(NamedProgram {
                            name: "probe".into(),
                            program,
                            snaplen: None,
                        })
                        .map_err(|e| e.to_string())?;
                    let auto = set.publish();
                    ap.push(t0.elapsed().as_secs_f64() * 1e6);
                    fallback = set.fallback_reason(id).is_some();
                    let t1 = Instant::now();
                    let pf = bpf_demux::prefilter::compile(&auto).ok();
                    pb.push(t1.elapsed().as_secs_f64() * 1e6);
                    if let Some(p) = &pf {
                        let t2 = Instant::now();
                        handle
                            .attach(p.insns())
                            .map_err(|e| format!("prefilter of {t} tenants: {e}"))?;
                        pa.push(t2.elapsed().as_secs_f64() * 1e6);
                        pf_len = Some(p.len());
                    }
                    set.remove(id);
                    set.publish();
                }
                demux.push(DemuxAttach {
                    tenants: *t,
                    add_publish_us: Spread::of(&ap),
                    prefilter_build_us: Spread::of(&pb),
                    prefilter_attach_us: (!pa.is_empty()).then(|| Spread::of(&pa)),
                    prefilter_insns: pf_len,
                    fallback,
                });
            }
            rows.push(AttachRow {
                shape,
                insns: n,
                kernel_us: kernel_error.is_none().then(|| Spread::of(&kernel)),
                kernel_error,
                legacy_optmem_ok: true,
                demux,
            });
        }
    }
    super::progress_done();
    let mut optmem = limits(sizes, optmem_max);
    sysctl::set_in_ns(ns_name, "net.core.optmem_max", LEGACY_OPTMEM)?;
    let legacy = limits(sizes, LEGACY_OPTMEM);
    for r in &mut rows {
        r.legacy_optmem_ok = kernel_attach(&r.shape.program(r.insns, SNAPLEN, false)).is_ok();
    }
    sysctl::set_in_ns(ns_name, "net.core.optmem_max", optmem_max)?;
    optmem.extend(legacy);
    drop(ring);
    Ok(AttachReport { rows, optmem })
}

//! Agreement check and timing of both engines.

use crate::Workload;
use bpf_demux::cbpf::{self, FrameMeta};
use bpf_demux::{Cache, FilterSet, MatchSet};
use bpf_demux_testkit::handcoded::HostsDemux;
use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

pub struct Plan {
    pub quick: bool,
    pub progress: bool,
}

/// One measured point.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    pub family: String,
    pub n: usize,
    pub frames: usize,
    pub independent_ns_per_frame: f64,
    pub merged_ns_per_frame: f64,
    /// A hand-written demultiplexer for exactly this set, when there is
    /// one (sets of libpcap's `host A`: [`HostsDemux`]).
    pub handcoded_ns_per_frame: Option<f64>,
    pub speedup: f64,
    pub merged_frames_per_sec: f64,
    pub build_ms: f64,
    pub bytes: usize,
    pub nodes: usize,
    pub fallbacks: usize,
    /// Frames matched by at least one filter.
    pub frames_matched: usize,
    /// (filter, frame) acceptances in total.
    pub matches: usize,
}

type Frames = [(Vec<u8>, FrameMeta)];

/// Times `pass` (one pass over all frames): a warm-up, then passes until
/// the time budget, the median reported.
fn median_pass(mut pass: impl FnMut() -> usize, min_passes: usize, budget: Duration) -> Duration {
    black_box(pass());
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < min_passes || (start.elapsed() < budget && times.len() < 101) {
        let t = Instant::now();
        black_box(pass());
        times.push(t.elapsed());
        if times.len() >= min_passes && start.elapsed() > budget * 3 {
            break;
        }
    }
    times.sort();
    times[times.len() / 2]
}

pub fn run_all(workloads: &[Workload], frames: &Frames, plan: &Plan) -> Result<Vec<Row>, String> {
    let total: usize = workloads.iter().map(|w| w.ns.len()).sum();
    let mut done = 0;
    let mut rows = Vec::new();
    for w in workloads {
        for &n in &w.ns {
            if plan.progress {
                let _ = write!(
                    std::io::stderr(),
                    "\r\x1b[2K[{:>2}/{total}] {} N={n} ...",
                    done + 1,
                    w.name
                );
            }
            rows.push(measure(w, n, frames, plan)?);
            done += 1;
        }
    }
    if plan.progress {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
    Ok(rows)
}

fn measure(w: &Workload, n: usize, frames: &Frames, plan: &Plan) -> Result<Row, String> {
    let progs = &w.filters[..n];
    let t = Instant::now();
    let mut set = FilterSet::new(progs.iter().cloned()).map_err(|e| e.to_string())?;
    let auto = set.publish();
    let build = t.elapsed();
    let stats = set.stats();
    // Agreement: every frame, every filter, exactly.
    let (mut cache, mut out) = (Cache::new(), MatchSet::new());
    let mut rets = vec![0u32; n];
    let (mut frames_matched, mut matches) = (0, 0);
    for (fi, (f, meta)) in frames.iter().enumerate() {
        auto.matches_into(&mut cache, f, meta, &mut out);
        rets.fill(0);
        for (id, v) in out.iter() {
            rets[id.index()] = v;
        }
        for (i, p) in progs.iter().enumerate() {
            let want = cbpf::run(&p.program, f, meta);
            if want != rets[i] {
                return Err(format!(
                    "{} N={n}: frame {} ({} bytes): filter `{}` returns {want} alone, {} merged",
                    w.name,
                    fi + 1,
                    f.len(),
                    p.name,
                    rets[i]
                ));
            }
        }
        frames_matched += (!out.is_empty()) as usize;
        matches += out.len();
    }
    let (min_passes, budget) = if plan.quick {
        (1, Duration::from_millis(5))
    } else {
        (5, Duration::from_millis(150))
    };
    let merged = median_pass(
        || {
            let mut acc = 0;
            for (f, meta) in frames {
                auto.matches_into(&mut cache, black_box(f), meta, &mut out);
                acc += out.len();
            }
            acc
        },
        min_passes,
        budget,
    );
    let indep_passes = if plan.quick || n >= 1000 {
        1.max(min_passes / 2)
    } else {
        min_passes
    };
    let independent = median_pass(
        || {
            let mut acc = 0;
            for (f, meta) in frames {
                for p in progs {
                    acc += (cbpf::run(&p.program, black_box(f), meta) != 0) as usize;
                }
            }
            acc
        },
        indep_passes,
        budget,
    );
    // The hand-written baseline, when the set is one it exists for: it must
    // give every frame the merged structure's tenants first.
    let handcoded = match HostsDemux::for_set(progs) {
        None => None,
        Some(hand) => {
            let mut ids = Vec::new();
            for (fi, (f, meta)) in frames.iter().enumerate() {
                auto.matches_into(&mut cache, f, meta, &mut out);
                hand.matches(f, &mut ids);
                let mut a: Vec<u32> = out.iter().map(|(id, _)| id.index() as u32).collect();
                a.sort_unstable();
                ids.sort_unstable();
                if a != ids {
                    return Err(format!(
                        "{} N={n}: frame {}: the hand-written demultiplexer gives {ids:?}, merged {a:?}",
                        w.name,
                        fi + 1
                    ));
                }
            }
            Some(median_pass(
                || {
                    let mut acc = 0;
                    for (f, _) in frames {
                        hand.matches(black_box(f), &mut ids);
                        acc += ids.len();
                    }
                    acc
                },
                min_passes,
                budget,
            ))
        }
    };
    let per = |d: Duration| d.as_nanos() as f64 / frames.len() as f64;
    let (i_ns, m_ns) = (per(independent), per(merged));
    Ok(Row {
        family: w.name.clone(),
        n,
        frames: frames.len(),
        independent_ns_per_frame: i_ns,
        merged_ns_per_frame: m_ns,
        handcoded_ns_per_frame: handcoded.map(per),
        speedup: i_ns / m_ns,
        merged_frames_per_sec: 1e9 / m_ns,
        build_ms: build.as_secs_f64() * 1e3,
        bytes: stats.bytes,
        nodes: stats.nodes,
        fallbacks: stats.fallbacks,
        frames_matched,
        matches,
    })
}

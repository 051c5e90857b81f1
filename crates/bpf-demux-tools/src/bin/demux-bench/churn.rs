//! `demux-bench --churn`: tenants coming and going for a long time. A set
//! of N tenants of one family is built and published; then, `cycles`
//! times, a tenant never seen before is added, the set published, the
//! tenant removed and the set published again (what a live capture does
//! for a tenant that attaches and detaches). Reports the median and tail
//! of one cycle and the resident memory before and after; checks, at the
//! end, that the set still answers exactly like its filters alone.

use bpf_demux::cbpf::{self, FrameMeta};
use bpf_demux::FilterSet;
use bpf_demux::NamedProgram;
use bpf_demux_testkit::workload::{self, Family};
use std::time::Instant;

/// Resident memory of this process, in bytes (`/proc/self/statm`).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

pub fn run(family: Family, n: usize, cycles: usize) -> Result<bool, String> {
    let t0 = Instant::now();
    let mut set = FilterSet::new(family.tenants(n)).map_err(|e| e.to_string())?;
    set.publish();
    let build = t0.elapsed();
    // Cycle times in a histogram of 1 µs buckets (up to 1 s), touched
    // before the first reading of memory: a sample per cycle would itself
    // grow the process by 8 bytes a cycle.
    let mut hist = vec![1u32; 1_000_001];
    hist.iter_mut().for_each(|b| *b = 0);
    let rss_start = rss();
    let mut worst = (0.0f64, 0usize);
    let progress_every = (cycles / 10).max(1);
    let t1 = Instant::now();
    for c in 0..cycles {
        // A tenant value never used before: new constants every cycle.
        let i = n + c;
        let p = NamedProgram {
            name: format!("churn-{i}"),
            program: family.program(i),
            snaplen: None,
        };
        let t = Instant::now();
        let id = set.add(p).map_err(|e| e.to_string())?;
        set.publish();
        set.remove(id);
        set.publish();
        let us = t.elapsed().as_secs_f64() * 1e6;
        if us > worst.0 {
            worst = (us, c);
        }
        let last = hist.len() - 1;
        hist[(us as usize).min(last)] += 1;
        if (c + 1) % progress_every == 0 {
            eprintln!(
                "demux-bench: churn {}/{cycles} cycles, {:.0} s, RSS {:.1} MiB",
                c + 1,
                t1.elapsed().as_secs_f64(),
                rss() as f64 / (1 << 20) as f64
            );
        }
    }
    let rss_end = rss();
    let q = |f: f64| {
        let want = ((cycles as f64) * f).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (us, &n) in hist.iter().enumerate() {
            seen += n as u64;
            if seen >= want {
                return us as f64 + 0.5;
            }
        }
        0.0
    };
    // Exactness after the churn, against the filters alone.
    let progs = family.tenants(n);
    let frames = workload::traffic(3000, n, 9);
    let mut wrong = 0;
    for f in &frames {
        let meta = FrameMeta::offline(&f.data, f.wire_len);
        let mut got: Vec<(String, u32)> = set
            .automaton()
            .matches(&f.data, &meta)
            .iter()
            .map(|(id, v)| (set.name(id).unwrap().to_owned(), v))
            .collect();
        got.sort();
        let mut want: Vec<(String, u32)> = progs
            .iter()
            .filter_map(|p| {
                let v = cbpf::run(&p.program, &f.data, &meta);
                (v != 0).then(|| (p.name.clone(), v))
            })
            .collect();
        want.sort();
        wrong += (got != want) as usize;
    }
    let ratio = rss_end as f64 / rss_start.max(1) as f64;
    println!(
        "churn: family {} N={n}, {cycles} cycles of add + publish + remove + publish (build {:.0} ms)",
        family.name(),
        build.as_secs_f64() * 1e3
    );
    println!(
        "cycle: median {:.0} µs, p90 {:.0} µs, p99 {:.0} µs (1 µs buckets), max {:.1} µs (cycle {})",
        q(0.5),
        q(0.9),
        q(0.99),
        worst.0,
        worst.1
    );
    println!(
        "RSS: {:.1} MiB after building, {:.1} MiB after the churn ({ratio:.2}x); {} tenants, ids below {}",
        rss_start as f64 / (1 << 20) as f64,
        rss_end as f64 / (1 << 20) as f64,
        set.len(),
        set.automaton().id_bound()
    );
    if wrong > 0 {
        return Err(format!(
            "after the churn, {wrong} of {} frames got other answers than the filters alone",
            frames.len()
        ));
    }
    println!(
        "answers after the churn: equal to the filters alone on {} frames",
        frames.len()
    );
    Ok(ratio <= 1.5 && q(0.5) < 1000.0)
}

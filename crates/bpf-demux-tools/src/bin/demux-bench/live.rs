//! `demux-bench --live`: N kernel sockets, each with its own filter,
//! against one ring socket with bpf-demux, on a veth pair in a private
//! network namespace (root).
//!
//! For each N, the same fixed frame mix is sent from `va` at a steady rate
//! four times: with no receiver (the cost of sending, subtracted from the
//! others), with one bpf-demux capture on `vb` (kernel prefilter attached),
//! the same without the prefilter, and with N AF_PACKET sockets on `vb`
//! each with its tenant's filter. CPU is this process's user + system time
//! (which on this kernel includes the veth receive softirq run from
//! `sendto`) plus the ksoftirqd threads' time, from the first frame sent
//! until every frame sits in its tenant's queue: kernel sockets and
//! endpoints alike are read after the window. All three must deliver the
//! same frames (count and bytes) to every tenant.
//!
//! `DEMUX_BENCH_DEBUG=1` prints, per merged run, each thread's CPU.

use bpf_demux::capture::sys::{enter_netns, if_index, process_cpu_time, PacketSocket};
use bpf_demux::capture::{LiveCapture, LiveConfig, Senders};
use bpf_demux::FilterSet;
use bpf_demux::NamedProgram;
use bpf_demux_testkit::netns::NetNs;
use bpf_demux_testkit::workload::{self, Family};
use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, serde::Serialize)]
pub struct LiveRow {
    pub family: String,
    pub n: usize,
    pub frames: usize,
    pub rate_fps: u64,
    pub send_ns_per_frame: f64,
    pub kernel_sockets_ns_per_frame: f64,
    pub merged_ns_per_frame: f64,
    /// The same without the kernel prefilter (every frame copied to the ring).
    pub merged_no_prefilter_ns_per_frame: f64,
    pub ratio: f64,
    pub kernel_deliveries_per_sec: f64,
    pub merged_deliveries_per_sec: f64,
    pub deliveries: u64,
}

/// The /proc folders of the ksoftirqd threads.
fn ksoftirqd_dirs() -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .map(|e| e.path())
        .filter(|p| {
            std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.starts_with("ksoftirqd/"))
        })
        .collect()
}

/// A task's CPU time in ns (first field of its schedstat).
pub(crate) fn schedstat_ns(task: &Path) -> u128 {
    std::fs::read_to_string(task.join("schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time of this process plus every ksoftirqd thread, in ns.
pub(crate) fn cpu_ns() -> u128 {
    process_cpu_time().as_nanos()
        + ksoftirqd_dirs()
            .iter()
            .map(|d| schedstat_ns(d))
            .sum::<u128>()
}

/// CPU time (ns) of each thread of this process and of ksoftirqd, by name
/// (debug breakdown).
fn threads_cpu() -> BTreeMap<String, u128> {
    let mut tasks: Vec<PathBuf> = std::fs::read_dir("/proc/self/task")
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    tasks.extend(ksoftirqd_dirs());
    let mut m = BTreeMap::new();
    for t in tasks {
        let comm = std::fs::read_to_string(t.join("comm")).unwrap_or_default();
        *m.entry(comm.trim().to_string()).or_insert(0) += schedstat_ns(&t);
    }
    m
}

/// Sends `frames` at `rate` frames per second (1 ms batches); the elapsed time.
pub(crate) fn send_steady(tx: &PacketSocket, frames: &[Vec<u8>], rate: u64) -> Duration {
    let start = Instant::now();
    let per_ms = (rate / 1000).max(1) as usize;
    for (i, chunk) in frames.chunks(per_ms).enumerate() {
        for f in chunk {
            let _ = tx.send(f);
        }
        let due = Duration::from_millis(i as u64 + 1);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    start.elapsed()
}

/// Waits until `live` has read every frame sent: the last block retires
/// within the ring's timeout (10 ms), so after `first`, until the count of
/// frames read has not moved for 60 ms (or `limit` passed).
pub(crate) fn wait_quiet(live: &LiveCapture, first: Duration, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut last = (live.frames_seen(), Instant::now());
    std::thread::sleep(first);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        let seen = live.frames_seen();
        if seen != last.0 {
            last = (seen, Instant::now());
        } else if last.1.elapsed() >= Duration::from_millis(60) {
            break;
        }
    }
}

/// Per tenant: (deliveries, digest of the delivered bytes).
type Deliveries = Vec<(u64, u64)>;

pub(crate) fn digest(acc: &mut (u64, u64), bytes: &[u8]) {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    acc.0 += 1;
    acc.1 = acc.1.wrapping_add(h.finish());
}

/// One AF_PACKET socket per tenant on interface `vb`, each with its
/// filter (attached before binding) and a receive buffer of `rcvbuf` bytes.
pub(crate) fn kernel_sockets(
    progs: &[NamedProgram],
    vb: u32,
    rcvbuf: usize,
) -> Result<Vec<PacketSocket>, String> {
    let mut socks = Vec::with_capacity(progs.len());
    for p in progs {
        let mut s = PacketSocket::open().map_err(|e| format!("socket: {e}"))?;
        s.attach_filter(p.program.insns())
            .map_err(|e| format!("{}: {e}", p.name))?;
        s.set_rcvbuf(rcvbuf).map_err(|e| e.to_string())?;
        s.bind(vb).map_err(|e| e.to_string())?;
        socks.push(s);
    }
    Ok(socks)
}

fn phase_kernel(
    progs: &[NamedProgram],
    frames: &[Vec<u8>],
    rate: u64,
    vb: u32,
    va: u32,
) -> Result<(f64, Deliveries, Duration), String> {
    let socks = kernel_sockets(progs, vb, 64 << 20)?;
    let mut tx = PacketSocket::open().map_err(|e| e.to_string())?;
    tx.bind(va).map_err(|e| e.to_string())?;
    let c0 = cpu_ns();
    let elapsed = send_steady(&tx, frames, rate);
    std::thread::sleep(Duration::from_millis(100));
    let cpu = (cpu_ns() - c0) as f64;
    let mut buf = vec![0u8; 1 << 17];
    let mut out = vec![(0u64, 0u64); progs.len()];
    for (i, s) in socks.iter().enumerate() {
        while let Some(r) = s.try_recv(&mut buf).map_err(|e| e.to_string())? {
            digest(&mut out[i], &buf[..r.copied]);
        }
    }
    Ok((cpu, out, elapsed))
}

fn phase_merged(
    progs: &[NamedProgram],
    frames: &[Vec<u8>],
    rate: u64,
    va: u32,
    prefilter: bool,
) -> Result<(f64, Deliveries, Duration), String> {
    let set = FilterSet::new(progs.iter().cloned()).map_err(|e| e.to_string())?;
    // Endpoint queues hold every delivery of the window: they are read
    // after it, as the kernel sockets' queues are. A queue's memory grows
    // with its backlog, so the bound is simply every frame sent (plus
    // whatever else the veth carries).
    let specs = bpf_demux::capture::TenantSpec::all(set.automaton(), frames.len() + 1024);
    let (senders, endpoints) = Senders::new(specs, false);
    let mut cfg = LiveConfig::new("vb");
    cfg.reinsert_vlan = false;
    cfg.kernel_prefilter = prefilter;
    let live = LiveCapture::start(set, senders, &cfg).map_err(|e| format!("capture: {e}"))?;
    let mut tx = PacketSocket::open().map_err(|e| e.to_string())?;
    tx.bind(va).map_err(|e| e.to_string())?;
    let c0 = cpu_ns();
    let t0 = threads_cpu();
    let elapsed = send_steady(&tx, frames, rate);
    wait_quiet(&live, Duration::from_millis(100), Duration::from_secs(3));
    let cpu = (cpu_ns() - c0) as f64;
    let t1 = threads_cpu();
    if std::env::var_os("DEMUX_BENCH_DEBUG").is_some() {
        for (k, v) in &t1 {
            let d = v.saturating_sub(*t0.get(k).unwrap_or(&0));
            eprintln!("  {k}: {:.0} ns/frame", d as f64 / frames.len() as f64);
        }
        eprintln!(
            "merged: cpu {:.1} ms, elapsed {:?}, seen {}",
            cpu / 1e6,
            elapsed,
            live.frames_seen()
        );
    }
    let totals = live.join().map_err(|e| e.to_string())?;
    if totals.kernel_drops > 0 {
        return Err(format!(
            "the capture ring dropped {} frames",
            totals.kernel_drops
        ));
    }
    let out = endpoints
        .iter()
        .map(|ep| {
            let mut acc = (0, 0);
            while let Ok(d) = ep.try_recv() {
                digest(&mut acc, d.bytes());
            }
            if ep.stats().drops > 0 {
                eprintln!(
                    "demux-bench --live: tenant `{}` dropped {} frames (queue full)",
                    ep.name,
                    ep.stats().drops
                );
            }
            acc
        })
        .collect();
    Ok((cpu, out, elapsed))
}

pub(crate) fn phase_send_only(frames: &[Vec<u8>], rate: u64, va: u32) -> Result<f64, String> {
    let mut tx = PacketSocket::open().map_err(|e| e.to_string())?;
    tx.bind(va).map_err(|e| e.to_string())?;
    let c0 = cpu_ns();
    send_steady(&tx, frames, rate);
    std::thread::sleep(Duration::from_millis(100));
    Ok((cpu_ns() - c0) as f64)
}

pub fn run(
    family: Family,
    ns_list: &[usize],
    frames_n: usize,
    rate: u64,
    seed: u64,
    reps: usize,
) -> Result<Vec<LiveRow>, String> {
    let ns = NetNs::new("bench").map_err(|e| format!("--live needs root and iproute2: {e}"))?;
    let path = ns.path();
    let max = *ns_list.iter().max().unwrap_or(&1);
    let tenants = family.tenants(max);
    let frames: Vec<Vec<u8>> = workload::traffic(frames_n, max, seed)
        .into_iter()
        .map(|f| f.data)
        .collect();
    let ns_list = ns_list.to_vec();
    let fam = family.name().to_string();
    let handle = std::thread::spawn(move || -> Result<Vec<LiveRow>, String> {
        enter_netns(&path).map_err(|e| format!("entering the namespace: {e}"))?;
        let vb = if_index("vb").map_err(|e| e.to_string())?;
        let va = if_index("va").map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        for n in ns_list {
            eprintln!("demux-bench --live: N={n} ...");
            let progs = &tenants[..n];
            // Each phase starts after the previous one's cleanup (closing
            // sockets frees memory through RCU, charged to ksoftirqd)
            // settled. The four phases are repeated and the medians of
            // (phase - sending) reported: one run's sending cost varies by
            // a few hundred ns per frame.
            let settle = || std::thread::sleep(Duration::from_millis(500));
            let (mut ks, mut ms, mut rs, mut bs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let (mut kel, mut mel) = (Duration::ZERO, Duration::ZERO);
            let mut deliveries = 0;
            let f = frames.len() as f64;
            for _ in 0..reps {
                settle();
                let base = phase_send_only(&frames, rate, va)?;
                settle();
                let (mcpu, mout, m_el) = phase_merged(progs, &frames, rate, va, true)?;
                settle();
                let (rcpu, rout, _) = phase_merged(progs, &frames, rate, va, false)?;
                settle();
                let (kcpu, kout, k_el) = phase_kernel(progs, &frames, rate, vb, va)?;
                for (i, ((k, m), r)) in kout.iter().zip(&mout).zip(&rout).enumerate() {
                    if k != m || k != r {
                        return Err(format!(
                            "N={n}: tenant `{}`: kernel socket got {} frames, bpf-demux delivered {} with the kernel prefilter and {} without (or different bytes)",
                            progs[i].name, k.0, m.0, r.0
                        ));
                    }
                }
                deliveries = kout.iter().map(|d| d.0).sum();
                ks.push((kcpu - base) / f);
                ms.push((mcpu - base) / f);
                rs.push((rcpu - base) / f);
                bs.push(base / f);
                kel += k_el;
                mel += m_el;
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(|a, b| a.total_cmp(b));
                v[v.len() / 2].max(0.0)
            };
            let (k_ns, m_ns, r_ns, base_ns) = (
                median(&mut ks),
                median(&mut ms),
                median(&mut rs),
                median(&mut bs),
            );
            let (kel, mel) = (kel / reps as u32, mel / reps as u32);
            rows.push(LiveRow {
                family: fam.clone(),
                n,
                frames: frames.len(),
                rate_fps: rate,
                send_ns_per_frame: base_ns,
                kernel_sockets_ns_per_frame: k_ns,
                merged_ns_per_frame: m_ns,
                merged_no_prefilter_ns_per_frame: r_ns,
                ratio: if m_ns > 0.0 {
                    k_ns / m_ns
                } else {
                    f64::INFINITY
                },
                kernel_deliveries_per_sec: deliveries as f64 / kel.as_secs_f64(),
                merged_deliveries_per_sec: deliveries as f64 / mel.as_secs_f64(),
                deliveries,
            });
        }
        Ok(rows)
    });
    let rows = handle
        .join()
        .map_err(|_| "live bench thread panicked".to_string())??;
    drop(ns);
    Ok(rows)
}

pub fn print(rows: &[LiveRow]) {
    println!("bpf-demux --live: N kernel sockets vs one bpf-demux ring, CPU per frame net of sending (veth, private netns)");
    println!(
        "{:<8} {:>6} {:>8} {:>10} {:>16} {:>14} {:>8} {:>16} {:>14} {:>14}",
        "family",
        "N",
        "frames",
        "send ns",
        "N sockets ns",
        "merged ns",
        "ratio",
        "no-prefilter ns",
        "kern deliv/s",
        "merged deliv/s"
    );
    for r in rows {
        println!(
            "{:<8} {:>6} {:>8} {:>10.0} {:>16.0} {:>14.0} {:>7.1}x {:>16.0} {:>14.0} {:>14.0}",
            r.family,
            r.n,
            r.frames,
            r.send_ns_per_frame,
            r.kernel_sockets_ns_per_frame,
            r.merged_ns_per_frame,
            r.ratio,
            r.merged_no_prefilter_ns_per_frame,
            r.kernel_deliveries_per_sec,
            r.merged_deliveries_per_sec
        );
    }
}

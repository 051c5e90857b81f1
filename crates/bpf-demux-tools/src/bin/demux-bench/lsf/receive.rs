//! Experiment 2, receiving: CPU per frame on the receive path against the
//! snaplen (the filter's return value, as libpcap sets it) for N kernel
//! sockets (`packet_rcv`: the filter run, `skb_clone`, the trim to the
//! snaplen, the queueing, once per socket) against one bpf-demux
//! TPACKET_V3 ring with N tenants (`tpacket_rcv` once, the prefilter, a
//! copy into the ring, then the merged match and the tenants' queues).
//!
//! Traffic, each sent from the other namespace so it crosses the veth:
//! - `tcp`: a TCP transfer (100 MB; 10 MB with --quick) with wire-size
//!   frames (`gso_max_size` 1500), as the seed's `nc` sent it;
//! - `tcp-gso`: the same with 64 KB segments, as GRO hands them to a
//!   sniffer on a real NIC;
//! - `fixed`: the frames of `demux-bench --live` (hosts family) at a
//!   steady rate; there few frames match more than one tenant.
//!
//! Tenants in the TCP runs are `tcp and not port (20000+i)`: N different
//! filters that all accept every frame of the transfer. Tenants in the
//! fixed runs are the hosts family. Every phase's sockets or endpoints are
//! drained while the traffic runs by a reader thread whose own CPU (the
//! delivery, experiment 3) is left out. CPU is the process's plus
//! ksoftirqd's, net of a phase with no receiver.
//!
//! Checks: in the TCP runs every tenant of either engine receives exactly
//! the frames the veth counted (`/proc/net/dev`), none dropped; in the
//! fixed runs each tenant's frames (count and bytes) are the same from its
//! kernel socket and from bpf-demux.

use super::netpair::{dev_packets, send_from, set_link, RX_ADDR};
use super::shapes::with_snaplen;
use super::Spread;
use crate::live::{cpu_ns, digest, kernel_sockets, wait_quiet};
use bpf_demux::capture::sys::{enter_netns, if_index, thread_cpu_time, PacketSocket};
use bpf_demux::capture::{Endpoint, LiveCapture, LiveConfig, Senders};
use bpf_demux::cbpf::Program;
use bpf_demux::FilterSet;
use bpf_demux::NamedProgram;
use bpf_demux_testkit::workload::{self, Family};
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Traffic {
    Tcp,
    TcpGso,
    Fixed,
}

impl Traffic {
    pub fn name(self) -> &'static str {
        match self {
            Traffic::Tcp => "tcp",
            Traffic::TcpGso => "tcp-gso",
            Traffic::Fixed => "fixed",
        }
    }
}

pub struct Plan {
    pub reps: usize,
    pub ns: Vec<usize>,
    pub snaplens: Vec<u32>,
    pub tcp_bytes: usize,
    pub fixed: Vec<Vec<u8>>,
    pub rate: u64,
    pub ring_blocks: u32,
}

impl Plan {
    pub fn new(quick: bool, reps: usize, seed: u64, rate: u64) -> Plan {
        let ns = if quick { vec![1, 10] } else { vec![1, 10, 100] };
        let max = *ns.iter().max().unwrap();
        let count = if quick { 2000 } else { 20_000 };
        Plan {
            reps,
            snaplens: if quick {
                vec![64, 65535]
            } else {
                vec![64, 256, 1514, 16384, 65535]
            },
            tcp_bytes: if quick { 10 << 20 } else { 100 << 20 },
            fixed: workload::traffic(count, max, seed)
                .into_iter()
                .map(|f| f.data)
                .collect(),
            ns,
            rate,
            ring_blocks: if quick { 16 } else { 64 },
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ReceiveRow {
    pub traffic: Traffic,
    pub n: usize,
    pub snaplen: u32,
    /// Frames on the veth per run (median).
    pub frames: u64,
    /// Mean bytes per frame on the veth.
    pub frame_bytes: f64,
    /// CPU per frame of the traffic alone (subtracted from the others).
    pub base_ns: Spread,
    /// N kernel sockets, each with its filter: CPU per frame, ns.
    pub kernel_ns: Spread,
    /// One bpf-demux ring with N tenants: CPU per frame, ns.
    pub demux_ns: Spread,
    /// Kernel over bpf-demux, when neither range reaches zero (otherwise
    /// the difference is within the noise of the subtraction).
    pub ratio: Option<f64>,
    /// Frames handed to tenants per run (each engine).
    pub deliveries: u64,
}

/// Per tenant: (frames, digest of the delivered bytes).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
struct Got {
    acc: (u64, u64),
}

/// What a phase measured.
struct Phase {
    cpu_per_frame: f64,
    frames: u64,
    /// Bytes the veth carried.
    bytes: u64,
    got: Vec<Got>,
}

/// A TCP transfer of `bytes` from the sender's namespace to RX_ADDR.
fn transfer(tx_ns: &Path, bytes: usize) -> Result<(), String> {
    let listener = TcpListener::bind((RX_ADDR, 0)).map_err(|e| format!("listen: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let tx_ns = tx_ns.to_path_buf();
    let client = std::thread::spawn(move || -> Result<(), String> {
        enter_netns(&tx_ns).map_err(|e| e.to_string())?;
        let mut s = TcpStream::connect((RX_ADDR, port)).map_err(|e| format!("connect: {e}"))?;
        let chunk = vec![0x5au8; 1 << 20];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            s.write_all(&chunk[..n]).map_err(|e| e.to_string())?;
            left -= n;
        }
        s.shutdown(std::net::Shutdown::Write)
            .map_err(|e| e.to_string())?;
        // Wait for the server's close, so the FIN exchange is in the window.
        let _ = s.read(&mut [0u8; 1]);
        Ok(())
    });
    let (mut conn, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0;
    loop {
        let n = conn.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        got += n;
    }
    drop(conn);
    client
        .join()
        .map_err(|_| "the TCP client panicked".to_string())??;
    if got != bytes {
        return Err(format!("the transfer carried {got} bytes of {bytes}"));
    }
    Ok(())
}

/// Who receives in a phase.
enum Receivers {
    None,
    Kernel(Vec<PacketSocket>),
    Demux(Box<LiveCapture>, Vec<Endpoint>),
}

/// A thread draining the receivers while the traffic runs; returns what
/// each tenant got and the thread's own CPU time (ns).
struct Reader {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(Vec<Got>, u128, Option<String>)>,
}

fn drain_kernel(
    socks: Vec<PacketSocket>,
    stop: Arc<AtomicBool>,
) -> (Vec<Got>, u128, Option<String>) {
    let mut got = vec![Got::default(); socks.len()];
    let mut buf = vec![0u8; 1 << 17];
    let mut err = None;
    loop {
        let last = stop.load(Ordering::Acquire);
        for (i, s) in socks.iter().enumerate() {
            while let Ok(Some(r)) = s.try_recv(&mut buf) {
                digest(&mut got[i].acc, &buf[..r.copied]);
            }
        }
        if last {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for (i, s) in socks.iter().enumerate() {
        if let Ok((_, drops)) = s.stats() {
            if drops > 0 && err.is_none() {
                err = Some(format!("kernel socket {i} dropped {drops} frames"));
            }
        }
    }
    (got, thread_cpu_time().as_nanos(), err)
}

fn drain_demux(eps: Vec<Endpoint>, stop: Arc<AtomicBool>) -> (Vec<Got>, u128, Option<String>) {
    let mut got = vec![Got::default(); eps.len()];
    loop {
        let last = stop.load(Ordering::Acquire);
        for (i, e) in eps.iter().enumerate() {
            while let Ok(d) = e.try_recv() {
                digest(&mut got[i].acc, d.bytes());
            }
        }
        if last {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let err = eps
        .iter()
        .find(|e| e.stats().drops > 0)
        .map(|e| format!("tenant `{}` dropped {} frames", e.name, e.stats().drops));
    (got, thread_cpu_time().as_nanos(), err)
}

/// Waits until the capture has read every frame (its count stops moving).
pub(super) fn quiet(live: &LiveCapture) {
    wait_quiet(live, Duration::from_millis(30), Duration::from_secs(5));
}

fn phase(
    traffic: Traffic,
    plan: &Plan,
    tx_ns: &Path,
    receivers: Receivers,
) -> Result<Phase, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let (reader, live) = match receivers {
        Receivers::None => (None, None),
        Receivers::Kernel(socks) => {
            let st = stop.clone();
            let handle = std::thread::spawn(move || drain_kernel(socks, st));
            (
                Some(Reader {
                    stop: stop.clone(),
                    handle,
                }),
                None,
            )
        }
        Receivers::Demux(live, eps) => {
            let st = stop.clone();
            let handle = std::thread::spawn(move || drain_demux(eps, st));
            (
                Some(Reader {
                    stop: stop.clone(),
                    handle,
                }),
                Some(live),
            )
        }
    };
    let d0 = dev_packets("vb").map_err(|e| e.to_string())?;
    let c0 = cpu_ns();
    match traffic {
        Traffic::Tcp | Traffic::TcpGso => transfer(tx_ns, plan.tcp_bytes)?,
        Traffic::Fixed => send_from(tx_ns, &plan.fixed, Some(plan.rate))?,
    }
    match &live {
        Some(l) => quiet(l),
        None => std::thread::sleep(Duration::from_millis(100)),
    }
    let (got, reader_cpu, err) = match reader {
        Some(r) => {
            r.stop.store(true, Ordering::Release);
            r.handle
                .join()
                .map_err(|_| "the reader panicked".to_string())?
        }
        None => (Vec::new(), 0, None),
    };
    let cpu = cpu_ns() - c0;
    let d1 = dev_packets("vb").map_err(|e| e.to_string())?;
    if let Some(l) = live {
        let totals = l.join().map_err(|e| e.to_string())?;
        if totals.kernel_drops > 0 {
            return Err(format!(
                "the bpf-demux ring dropped {} frames",
                totals.kernel_drops
            ));
        }
    }
    if let Some(e) = err {
        return Err(e);
    }
    let (frames, bytes) = (d1.0 - d0.0, d1.1 - d0.1);
    Ok(Phase {
        cpu_per_frame: cpu.saturating_sub(reader_cpu) as f64 / frames.max(1) as f64,
        frames,
        bytes,
        got,
    })
}

fn kernel_receivers(progs: &[NamedProgram]) -> Result<Receivers, String> {
    let vb = if_index("vb").map_err(|e| e.to_string())?;
    Ok(Receivers::Kernel(kernel_sockets(progs, vb, 256 << 20)?))
}

fn demux_receivers(progs: &[NamedProgram], blocks: u32) -> Result<Receivers, String> {
    let set = FilterSet::new(progs.iter().cloned()).map_err(|e| e.to_string())?;
    let specs = bpf_demux::capture::TenantSpec::all(set.automaton(), usize::MAX);
    let (senders, eps) = Senders::new(specs, false);
    let mut cfg = LiveConfig::new("vb");
    cfg.reinsert_vlan = false;
    cfg.ring.block_count = blocks;
    let live = LiveCapture::start(set, senders, &cfg).map_err(|e| format!("capture: {e}"))?;
    Ok(Receivers::Demux(Box::new(live), eps))
}

fn tenants(traffic: Traffic, n: usize, snaplen: u32) -> Result<Vec<NamedProgram>, String> {
    (0..n)
        .map(|i| {
            let (name, insns) = match traffic {
                Traffic::Tcp | Traffic::TcpGso => {
                    let expr = format!("tcp and not port {}", 20000 + i);
                    let insns =
                        bpf_demux::expr::compile(&expr, snaplen).map_err(|e| e.to_string())?;
                    (format!("tcp-{i}"), insns)
                }
                Traffic::Fixed => (
                    format!("hosts-{i}"),
                    with_snaplen(Family::Hosts.program(i).insns(), snaplen),
                ),
            };
            let program = Program::validate(&insns).map_err(|e| e.to_string())?;
            Ok(NamedProgram {
                name,
                program,
                snaplen: None,
            })
        })
        .collect()
}

/// Every tenant of a TCP phase got every frame the veth counted.
fn check_all(engine: &str, label: &str, ph: &Phase, progs: &[NamedProgram]) -> Result<(), String> {
    for (g, p) in ph.got.iter().zip(progs) {
        if g.acc.0 != ph.frames || g.acc != ph.got[0].acc {
            return Err(format!(
                "DISAGREE: {label}: {engine}: tenant `{}` got {} frames, the veth carried {} (or the tenants' bytes differ)",
                p.name, g.acc.0, ph.frames
            ));
        }
    }
    Ok(())
}

pub fn run(plan: &Plan, rx_ns: &str, tx_ns: &Path) -> Result<Vec<ReceiveRow>, String> {
    let mut rows = Vec::new();
    for traffic in [Traffic::Tcp, Traffic::TcpGso, Traffic::Fixed] {
        let (mtu, gso) = match traffic {
            Traffic::Tcp => (1500, 1500),
            Traffic::TcpGso => (1500, 65536),
            Traffic::Fixed => (65000, 65536),
        };
        set_link(rx_ns, tx_ns, mtu, gso).map_err(|e| e.to_string())?;
        for &n in &plan.ns {
            for &snaplen in &plan.snaplens {
                let label = format!("{} N={n} snaplen {snaplen}", traffic.name());
                super::progress(&format!("receive {label}"));
                let progs = tenants(traffic, n, snaplen)?;
                let (mut base, mut kern, mut demux) = (Vec::new(), Vec::new(), Vec::new());
                let (mut frames, mut bytes, mut deliveries) = (Vec::new(), 0.0, 0);
                for _ in 0..plan.reps {
                    std::thread::sleep(Duration::from_millis(200));
                    let b = phase(traffic, plan, tx_ns, Receivers::None)?;
                    std::thread::sleep(Duration::from_millis(200));
                    let k = phase(traffic, plan, tx_ns, kernel_receivers(&progs)?)?;
                    std::thread::sleep(Duration::from_millis(200));
                    let m = phase(
                        traffic,
                        plan,
                        tx_ns,
                        demux_receivers(&progs, plan.ring_blocks)?,
                    )?;
                    match traffic {
                        Traffic::Fixed => {
                            for ((kg, mg), p) in k.got.iter().zip(&m.got).zip(&progs) {
                                if kg.acc != mg.acc {
                                    return Err(format!(
                                        "DISAGREE: {label}: tenant `{}`: its kernel socket got {} frames, bpf-demux delivered {} (or different bytes)",
                                        p.name, kg.acc.0, mg.acc.0
                                    ));
                                }
                            }
                        }
                        _ => {
                            check_all("kernel sockets", &label, &k, &progs)?;
                            check_all("bpf-demux", &label, &m, &progs)?;
                        }
                    }
                    base.push(b.cpu_per_frame);
                    kern.push(k.cpu_per_frame - b.cpu_per_frame);
                    demux.push(m.cpu_per_frame - b.cpu_per_frame);
                    frames.push(k.frames);
                    bytes = k.bytes as f64 / k.frames.max(1) as f64;
                    deliveries = k.got.iter().map(|g| g.acc.0).sum();
                }
                frames.sort();
                let (ks, ms) = (Spread::of(&kern), Spread::of(&demux));
                rows.push(ReceiveRow {
                    traffic,
                    n,
                    snaplen,
                    frames: frames[frames.len() / 2],
                    frame_bytes: bytes,
                    base_ns: Spread::of(&base),
                    ratio: (ks.min > 0.0 && ms.min > 0.0).then(|| ks.median / ms.median),
                    kernel_ns: ks,
                    demux_ns: ms,
                    deliveries,
                });
            }
        }
    }
    super::progress_done();
    Ok(rows)
}

//! Live capture: TPACKET_V3 rings on one interface (one per worker, joined
//! in a PACKET_FANOUT hash group when there are several), each frame
//! matched once against a shared `Arc<Automaton>` and delivered to every
//! accepting tenant's endpoint.

use super::dispatch::{Dispatcher, Stamp};
use super::endpoint::Senders;
use super::sys::{self, ring::Ring, ring::RingConfig};
use crate::cbpf::FrameMeta;
use crate::exec::Automaton;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub interface: String,
    pub ring: RingConfig,
    /// Worker threads (each with its own ring, fanout by flow hash).
    pub workers: usize,
    /// Put stripped outer VLAN tags back into delivered bytes (as libpcap).
    pub reinsert_vlan: bool,
    /// Stop after this many frames accepted by at least one tenant (as
    /// tcpdump's `-c` counts frames its filter accepted).
    pub max_frames: Option<u64>,
    /// Attach the automaton's kernel prefilter
    /// ([`Automaton::kernel_prefilter`]) to the ring sockets, so frames no
    /// tenant can accept are dropped in the kernel before the ring copy.
    pub kernel_prefilter: bool,
}

impl LiveConfig {
    pub fn new(interface: &str) -> LiveConfig {
        LiveConfig {
            interface: interface.to_owned(),
            ring: RingConfig::default(),
            workers: 1,
            reinsert_vlan: true,
            max_frames: None,
            kernel_prefilter: true,
        }
    }
}

/// Totals at the end of a capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureTotals {
    /// Frames read from the rings (with a kernel prefilter: the frames it
    /// passed).
    pub frames: u64,
    /// Frames at least one tenant accepted.
    pub matched: u64,
    /// PACKET_STATISTICS: frames the kernel queued (drops included; with a
    /// prefilter, only frames it passed) and dropped.
    pub kernel_packets: u64,
    pub kernel_drops: u64,
}

/// One worker's counts (its dispatcher's), published after each block.
#[derive(Debug, Default)]
struct Progress {
    seen: AtomicU64,
    matched: AtomicU64,
}

/// A running capture.
pub struct LiveCapture {
    stop: Arc<AtomicBool>,
    progress: Arc<[Progress]>,
    prefilter: Option<usize>,
    workers: Vec<JoinHandle<io::Result<CaptureTotals>>>,
}

impl LiveCapture {
    /// Opens every ring (errors such as an unknown interface or missing
    /// permission come back here, before any thread starts), then starts
    /// the workers.
    pub fn start(
        automaton: Arc<Automaton>,
        senders: Senders,
        cfg: &LiveConfig,
    ) -> io::Result<LiveCapture> {
        let ifindex = sys::if_index(&cfg.interface)
            .map_err(|e| io::Error::new(e.kind(), format!("interface `{}`: {e}", cfg.interface)))?;
        let workers = cfg.workers.max(1);
        let mut ring_cfg = cfg.ring;
        if workers > 1 {
            ring_cfg.fanout_group = Some((std::process::id() & 0xffff) as u16);
        }
        let prefilter = cfg
            .kernel_prefilter
            .then(|| automaton.kernel_prefilter())
            .flatten();
        let filter = prefilter.as_ref().map(|p| p.insns());
        let mut rings = Vec::new();
        for _ in 0..workers {
            rings.push(Ring::open(ifindex, &ring_cfg, filter)?);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let progress: Arc<[Progress]> = (0..workers).map(|_| Progress::default()).collect();
        // Frames admitted under `max_frames`, across workers (touched only
        // when there is a limit).
        let admitted = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::new();
        for (w, mut ring) in rings.into_iter().enumerate() {
            let mut d = Dispatcher::new(automaton.clone(), senders.clone(), cfg.reinsert_vlan);
            let (stop, progress, admitted, max) = (
                stop.clone(),
                progress.clone(),
                admitted.clone(),
                cfg.max_frames,
            );
            let h = std::thread::Builder::new()
                .name(format!("bpf-demux-rx{w}"))
                .spawn(move || {
                    let mut totals = CaptureTotals::default();
                    while !stop.load(Ordering::Relaxed) {
                        let n = ring.next_block(Duration::from_millis(50), |f| {
                            if max.is_some_and(|m| admitted.load(Ordering::Relaxed) >= m) {
                                return;
                            }
                            let meta = FrameMeta {
                                wire_len: f.wire_len,
                                net_off: f.net_off as u32,
                                protocol: f.protocol,
                                pkttype: f.pkttype,
                                ifindex: f.ifindex,
                                hatype: f.hatype,
                                vlan_tci: f.vlan.map_or(0, |v| v.0),
                                vlan_present: f.vlan.is_some(),
                                vlan_tpid: f.vlan.map_or(0, |v| v.1),
                            };
                            if !d.classify(f.data, &meta) {
                                return;
                            }
                            if let Some(m) = max {
                                let before = admitted.fetch_add(1, Ordering::Relaxed);
                                if before + 1 >= m {
                                    stop.store(true, Ordering::Relaxed);
                                }
                                if before >= m {
                                    return;
                                }
                            }
                            let stamp = Stamp {
                                ts_sec: f.ts_sec as u64,
                                ts_nsec: f.ts_nsec,
                            };
                            d.deliver(f.data, &meta, stamp);
                        })?;
                        if n > 0 {
                            // Consumers on the ready set wake once per block.
                            d.flush();
                            progress[w].seen.store(d.seen, Ordering::Relaxed);
                            progress[w].matched.store(d.matched, Ordering::Relaxed);
                        }
                    }
                    let (p, dr) = ring.stats()?;
                    totals.frames = d.seen;
                    totals.matched = d.matched;
                    totals.kernel_packets = p;
                    totals.kernel_drops = dr;
                    Ok(totals)
                })?;
            handles.push(h);
        }
        Ok(LiveCapture {
            stop,
            progress,
            prefilter: prefilter.map(|p| p.len()),
            workers: handles,
        })
    }

    /// Asks the workers to stop (they finish the block in hand).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
    /// Frames read so far (as of each worker's last block).
    pub fn frames_seen(&self) -> u64 {
        self.progress
            .iter()
            .map(|p| p.seen.load(Ordering::Relaxed))
            .sum()
    }
    /// Frames delivered to at least one tenant so far (as of each
    /// worker's last block).
    pub fn frames_matched(&self) -> u64 {
        self.progress
            .iter()
            .map(|p| p.matched.load(Ordering::Relaxed))
            .sum()
    }
    /// Instructions of the kernel prefilter on the ring sockets (`None`:
    /// none attached, every frame is copied to the ring).
    pub fn prefilter_len(&self) -> Option<usize> {
        self.prefilter
    }

    /// Stops, waits for every worker, and sums their totals. Endpoints
    /// see the end of their stream once this returns (and they drain).
    pub fn join(self) -> io::Result<CaptureTotals> {
        self.stop();
        let mut t = CaptureTotals::default();
        for h in self.workers {
            let w = h
                .join()
                .map_err(|_| io::Error::other("capture worker panicked"))??;
            t.frames += w.frames;
            t.matched += w.matched;
            t.kernel_packets += w.kernel_packets;
            t.kernel_drops += w.kernel_drops;
        }
        Ok(t)
    }
}

//! Live capture: TPACKET_V3 rings on one interface (one per worker, joined
//! in a PACKET_FANOUT hash group when there are several), each frame
//! matched once against the current routing (a published automaton and the
//! tenants' channels) and delivered to every accepting tenant's endpoint.
//!
//! Tenants change while the capture runs ([`LiveCapture::update`]): the
//! new routing is published with one pointer swap (`arc-swap`), and each
//! worker loads it once per ring block, so the per-frame path takes no
//! lock. `update` returns once every running worker has moved to the new
//! routing: a tenant added gets every frame a worker reads after that, a
//! removed tenant none.

use super::dispatch::{Dispatcher, Routing, Stamp};
use super::endpoint::{Senders, TenantSpec};
use super::sys::{self, ring::Ring, ring::RingConfig, FilterHandle};
use super::update::{self, Applied, Change, PrefilterState, UpdateError};
use crate::cbpf::FrameMeta;
use crate::link::LinkType;
use crate::FilterSet;
use arc_swap::ArcSwap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Clone, Debug)]
/// How a live capture opens its sockets.
pub struct LiveConfig {
    /// Interface name (`ip link` name).
    pub interface: String,
    /// Ring size and timeout of each worker's TPACKET_V3 ring.
    pub ring: RingConfig,
    /// Worker threads (each with its own ring, fanout by flow hash).
    pub workers: usize,
    /// Put stripped outer VLAN tags back into delivered bytes (as libpcap).
    pub reinsert_vlan: bool,
    /// Stop after this many frames accepted by at least one tenant (as
    /// tcpdump's `-c` counts frames its filter accepted).
    pub max_frames: Option<u64>,
    /// Which frames to read, as tcpdump's `-Q`. On loopback the outgoing
    /// copy of every frame is skipped whatever this says (it is seen again
    /// incoming), as libpcap does.
    pub direction: Direction,
    /// How long a worker waits for a block before it looks at the routing
    /// and the stop flag again: an update or a stop takes effect within
    /// about this long when no frame comes (longer: fewer idle wakeups).
    pub poll: Duration,
    /// Attach the automaton's kernel prefilter
    /// ([`crate::prefilter::compile`]) to the ring sockets, so
    /// frames no tenant can accept are dropped in the kernel before the
    /// ring copy; recompiled and swapped on every update.
    pub kernel_prefilter: bool,
    /// What the frames are (their link type, as the set is compiled for):
    /// Ethernet (and loopback, which Linux frames as Ethernet); raw IP
    /// ([`LinkType::Raw`]) on a tun or other ARPHRD_NONE interface; Linux
    /// cooked v2 ([`LinkType::LinuxSll2`]) on the `any` device, whose
    /// cooked socket gets no link header: each frame is given the header
    /// libpcap gives it (protocol, interface index, device type, packet
    /// type, source address). The `any` device has no kernel prefilter
    /// (its socket filter sees no cooked header) and no VLAN re-insertion.
    pub link: LinkType,
}

impl LiveConfig {
    /// Whether a kernel prefilter goes on the ring sockets: asked for, and
    /// not the `any` device (whose socket filter sees no cooked header).
    pub fn uses_kernel_prefilter(&self) -> bool {
        self.kernel_prefilter && self.link != LinkType::LinuxSll2
    }

    /// The defaults for capturing on `interface`.
    pub fn new(interface: &str) -> LiveConfig {
        LiveConfig {
            interface: interface.to_owned(),
            ring: RingConfig::default(),
            workers: 1,
            reinsert_vlan: true,
            max_frames: None,
            direction: Direction::InOut,
            poll: Duration::from_millis(20),
            kernel_prefilter: true,
            link: LinkType::Ethernet,
        }
    }
}

/// Frames by direction (tcpdump's `-Q in|out|inout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received frames only.
    In,
    /// Sent frames only.
    Out,
    /// Both.
    InOut,
}

/// `ARPHRD_LOOPBACK`.
const ARPHRD_LOOPBACK: u16 = 772;
/// A Linux cooked v2 header's length.
const SLL2_LEN: u32 = 20;

impl Direction {
    /// True when a frame of `pkttype` on a link of `hatype` is read.
    fn reads(self, pkttype: u8, hatype: u16) -> bool {
        let outgoing = pkttype == crate::cbpf::meta::pkttype::OUTGOING;
        match self {
            _ if outgoing && hatype == ARPHRD_LOOPBACK => false,
            Direction::In => !outgoing,
            Direction::Out => outgoing,
            Direction::InOut => true,
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
    /// (see `kernel_packets`)
    pub kernel_drops: u64,
}

/// One worker's counts (its dispatcher's), published after each block,
/// and the routing epoch it has moved to.
#[derive(Debug, Default)]
struct Progress {
    seen: AtomicU64,
    matched: AtomicU64,
    /// PACKET_STATISTICS, summed as read (every half second).
    kernel_packets: AtomicU64,
    kernel_drops: AtomicU64,
    epoch: AtomicU64,
    running: AtomicBool,
}

/// The routing the workers load, with its epoch (one more per update).
struct Current {
    routing: Arc<Routing>,
    epoch: u64,
}

/// What an update changes, under one lock: the tenants' set, the master
/// copy of their channels, the ring sockets' filters.
struct Control {
    set: FilterSet,
    senders: Senders,
    rings: Vec<FilterHandle>,
    kernel_prefilter: bool,
    prefilter: PrefilterState,
    epoch: u64,
}

/// A running capture: one TPACKET_V3 ring per worker on one interface,
/// every frame matched once against the set and delivered to each
/// accepting tenant's endpoint; tenants change while it runs
/// ([`update`](Self::update)).
///
/// ```no_run
/// // Needs CAP_NET_RAW (root) and an interface.
/// use bpf_demux::capture::{Change, LiveCapture, LiveConfig, Senders, TenantSpec};
/// use bpf_demux::{expr, NamedProgram};
/// use bpf_demux::cbpf::Program;
/// use bpf_demux::FilterSet;
/// let filter = |name: &str, e: &str| {
///     let insns = expr::compile(e, expr::DEFAULT_SNAPLEN).unwrap();
///     NamedProgram::new(name, Program::validate(&insns).unwrap())
/// };
/// let set = FilterSet::new([filter("dns", "udp port 53")]).unwrap();
/// let (senders, endpoints) = Senders::new(TenantSpec::all(set.automaton(), 1024), false);
/// let capture = LiveCapture::start(set, senders, &LiveConfig::new("eth0")).unwrap();
/// // A tenant arrives while the capture runs; its endpoint comes back.
/// let applied = capture
///     .update(vec![Change::Add { filter: filter("web", "tcp port 443"), queue: 1024.into() }])
///     .unwrap();
/// let web = &applied.endpoints[0];
/// if let Some(d) = web.recv() {
///     println!("{}: {} bytes", web.name, d.bytes().len());
/// }
/// let totals = capture.join().unwrap();
/// println!("{} frames, {} delivered to dns", totals.frames, endpoints[0].stats().frames);
/// ```
pub struct LiveCapture {
    stop: Arc<AtomicBool>,
    progress: Arc<[Progress]>,
    current: Arc<ArcSwap<Current>>,
    control: Mutex<Control>,
    /// Stream addresses of this process: frames to or from them are never
    /// offered to a tenant (see [`own_traffic`](super::own_traffic)).
    own: Arc<super::own_traffic::OwnStreams>,
    /// Updates whose prefilter the kernel refused (the capture went on
    /// without one).
    prefilter_refusals: AtomicU64,
    /// Updates whose prefilter swap needed the ENOMEM retry.
    prefilter_retries: AtomicU64,
    workers: Vec<JoinHandle<io::Result<CaptureTotals>>>,
    link: LinkType,
}

impl LiveCapture {
    /// Opens every ring (errors such as an unknown interface or missing
    /// permission come back here, before any thread starts), then starts
    /// the workers on `set`'s tenants, delivered through `senders` (made by
    /// [`Senders::new`] from `TenantSpec::all(set.automaton(), ..)`). The capture owns the
    /// set from here on; [`update`](Self::update) changes it.
    pub fn start(
        mut set: FilterSet,
        senders: Senders,
        cfg: &LiveConfig,
    ) -> io::Result<LiveCapture> {
        let cooked = cfg.link == LinkType::LinuxSll2;
        let ifindex = if cooked {
            // The `any` device: every interface.
            0
        } else {
            sys::if_index(&cfg.interface).map_err(|e| {
                io::Error::new(e.kind(), format!("interface `{}`: {e}", cfg.interface))
            })?
        };
        let workers = cfg.workers.max(1);
        let mut ring_cfg = cfg.ring;
        ring_cfg.cooked = cooked;
        let kernel_prefilter = cfg.uses_kernel_prefilter();
        if workers > 1 {
            ring_cfg.fanout_group = Some((std::process::id() & 0xffff) as u16);
        }
        if let Some(id) = set.ids().find(|id| senders.slot(*id).is_none()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "tenant `{}` has no channel (make the Senders from TenantSpec::all of this set)",
                    set.name(id).unwrap_or("?")
                ),
            ));
        }
        let automaton = set.publish();
        let prefilter = kernel_prefilter.then(|| crate::prefilter::compile(&automaton));
        let mut filter = match &prefilter {
            Some(Ok(p)) => Some(p.insns()),
            _ => None,
        };
        let mut refused = None;
        let mut rings = Vec::new();
        for _ in 0..workers {
            match Ring::open(ifindex, &ring_cfg, filter) {
                // The socket's `optmem_max` cannot hold the prefilter: go
                // on without one (every frame reaches the ring).
                Err(e) if filter.is_some() && e.raw_os_error() == Some(libc::ENOMEM) => {
                    refused = Some(format!(
                        "attaching {} instructions: {e}",
                        filter.map_or(0, |f| f.len())
                    ));
                    filter = None;
                    for r in &rings {
                        let _ = Ring::filter_handle(r).detach();
                    }
                    rings.push(Ring::open(ifindex, &ring_cfg, None)?);
                }
                r => rings.push(r?),
            }
        }
        let handles: Vec<FilterHandle> = rings.iter().map(Ring::filter_handle).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let progress: Arc<[Progress]> = (0..workers)
            .map(|_| Progress {
                running: AtomicBool::new(true),
                ..Progress::default()
            })
            .collect();
        let current = Arc::new(ArcSwap::from_pointee(Current {
            routing: Arc::new(Routing {
                automaton,
                senders: senders.clone(),
            }),
            epoch: 0,
        }));
        // Frames admitted under `max_frames`, across workers (touched only
        // when there is a limit).
        let admitted = Arc::new(AtomicU64::new(0));
        let own: Arc<super::own_traffic::OwnStreams> = Arc::default();
        let mut workers_h = Vec::new();
        let stop_all = stop.clone();
        for (w, mut ring) in rings.into_iter().enumerate() {
            let mut d = Dispatcher::with_routing(
                current.load().routing.clone(),
                cfg.reinsert_vlan && !cooked,
            );
            // A cooked frame, its Linux cooked v2 header before it.
            let mut sll2: Vec<u8> = Vec::new();
            let (direction, poll) = (cfg.direction, cfg.poll.max(Duration::from_millis(1)));
            let (stop, progress, admitted, max, current, own) = (
                stop.clone(),
                progress.clone(),
                admitted.clone(),
                cfg.max_frames,
                current.clone(),
                own.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name(format!("bpf-demux-rx{w}"))
                .spawn(move || {
                    let _running = Running(&progress[w]);
                    let p = &progress[w];
                    let kernel_counts = |ring: &Ring| -> io::Result<()> {
                        let (packets, drops) = ring.stats()?;
                        p.kernel_packets.fetch_add(packets, Ordering::Relaxed);
                        p.kernel_drops.fetch_add(drops, Ordering::Relaxed);
                        Ok(())
                    };
                    let mut counted = std::time::Instant::now();
                    let mut own = own.reader();
                    while !stop.load(Ordering::Relaxed) {
                        // The routing for the whole next block.
                        let cur = current.load();
                        d.set_routing(cur.routing.clone());
                        p.epoch.store(cur.epoch, Ordering::Release);
                        drop(cur);
                        let n = ring.next_block(poll, |f| {
                            if !direction.reads(f.pkttype, f.hatype) {
                                return;
                            }
                            if max.is_some_and(|m| admitted.load(Ordering::Relaxed) >= m) {
                                return;
                            }
                            let (data, wire_len, net_off) = if cooked {
                                sll2.clear();
                                sll2.extend_from_slice(&f.protocol.to_be_bytes());
                                sll2.extend_from_slice(&[0, 0]);
                                sll2.extend_from_slice(&f.ifindex.to_be_bytes());
                                sll2.extend_from_slice(&f.hatype.to_be_bytes());
                                sll2.push(f.pkttype);
                                sll2.push(f.halen);
                                sll2.extend_from_slice(&f.addr);
                                sll2.extend_from_slice(f.data);
                                (&sll2[..], f.wire_len + SLL2_LEN, SLL2_LEN)
                            } else {
                                (f.data, f.wire_len, f.net_off as u32)
                            };
                            let meta = FrameMeta {
                                wire_len,
                                net_off,
                                protocol: f.protocol,
                                pkttype: f.pkttype,
                                ifindex: f.ifindex,
                                hatype: f.hatype,
                                vlan_tci: f.vlan.map_or(0, |v| v.0),
                                vlan_present: f.vlan.is_some(),
                                vlan_tpid: f.vlan.map_or(0, |v| v.1),
                            };
                            if own.is_own(data, &meta) {
                                return;
                            }
                            if !d.classify(data, &meta) {
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
                                iface: 0,
                            };
                            d.deliver(data, &meta, stamp);
                        })?;
                        if n > 0 {
                            // Consumers on the ready set wake once per block.
                            d.flush();
                            p.seen.store(d.seen, Ordering::Relaxed);
                            p.matched.store(d.matched, Ordering::Relaxed);
                        }
                        if counted.elapsed() >= Duration::from_millis(500) {
                            counted = std::time::Instant::now();
                            kernel_counts(&ring)?;
                        }
                    }
                    kernel_counts(&ring)?;
                    Ok(CaptureTotals {
                        frames: d.seen,
                        matched: d.matched,
                        kernel_packets: p.kernel_packets.load(Ordering::Relaxed),
                        kernel_drops: p.kernel_drops.load(Ordering::Relaxed),
                    })
                });
            match spawned {
                Ok(h) => workers_h.push(h),
                Err(e) => {
                    stop_all.store(true, Ordering::Relaxed);
                    for h in workers_h {
                        let _ = h.join();
                    }
                    return Err(e);
                }
            }
        }
        let refusals = refused.is_some() as u64;
        let prefilter = match (prefilter, refused) {
            (None, _) => PrefilterState::Off,
            (Some(_), Some(why)) => PrefilterState::Refused(why),
            (Some(Ok(p)), None) => PrefilterState::Attached(p.len()),
            (Some(Err(why)), None) => PrefilterState::NoneForSet(why),
        };
        Ok(LiveCapture {
            link: cfg.link,
            stop,
            progress,
            current,
            control: Mutex::new(Control {
                set,
                senders,
                rings: handles,
                kernel_prefilter,
                prefilter,
                epoch: 0,
            }),
            own,
            prefilter_refusals: AtomicU64::new(refusals),
            prefilter_retries: AtomicU64::new(0),
            workers: workers_h,
        })
    }

    /// Applies `changes` as one batch: all of them or, on an error, none.
    /// The kernel prefilter is recompiled and swapped onto the ring
    /// sockets first; then the new routing is published, and this returns
    /// once every running worker has moved to it. Removed tenants' streams
    /// end (their endpoints drain what was queued, then report the end);
    /// replaced tenants keep their endpoint.
    pub fn update(&self, changes: Vec<Change>) -> Result<Applied, UpdateError> {
        if self.is_stopped() {
            return Err(UpdateError::Stopped);
        }
        let mut c = self.control.lock().unwrap_or_else(|e| e.into_inner());
        update::check(&c.set, &changes)?;
        let mut senders = c.senders.clone();
        let mut applied = Applied {
            endpoints: Vec::new(),
            added: 0,
            removed: 0,
            replaced: 0,
            prefilter: PrefilterState::Off,
            prefilter_retried: false,
        };
        let checked = "checked by update::check";
        for change in changes {
            match change {
                Change::Remove(name) => {
                    let id = c.set.id(&name).expect(checked);
                    c.set.remove(id);
                    senders.unroute(id);
                    applied.removed += 1;
                }
                Change::Replace(f) => {
                    let old = c.set.id(&f.name).expect(checked);
                    let (slot, _) = senders.slot(old).expect("every tenant has a slot");
                    c.set.remove(old);
                    senders.unroute(old);
                    let cap = f.snaplen;
                    let id = c.set.add(f).expect(checked);
                    senders.route(id, slot, cap);
                    applied.replaced += 1;
                }
                Change::Add { filter, queue } => {
                    let (name, snaplen) = (filter.name.clone(), filter.snaplen);
                    let id = c.set.add(filter).expect(checked);
                    applied.endpoints.push(senders.open(TenantSpec {
                        id,
                        name,
                        snaplen,
                        queue,
                    }));
                    applied.added += 1;
                }
            }
        }
        let automaton = c.set.publish();
        if c.kernel_prefilter {
            let (state, retried) = update::swap_prefilter(&c.rings, &automaton);
            c.prefilter = state;
            applied.prefilter_retried = retried;
            if retried {
                self.prefilter_retries.fetch_add(1, Ordering::Relaxed);
            }
            if matches!(c.prefilter, PrefilterState::Refused(_)) {
                self.prefilter_refusals.fetch_add(1, Ordering::Relaxed);
            }
        }
        applied.prefilter = c.prefilter.clone();
        c.epoch += 1;
        let epoch = c.epoch;
        c.senders = senders.clone();
        self.current.store(Arc::new(Current {
            routing: Arc::new(Routing { automaton, senders }),
            epoch,
        }));
        drop(c);
        // Every running worker loads the routing before its next block.
        while self
            .progress
            .iter()
            .any(|p| p.running.load(Ordering::Acquire) && p.epoch.load(Ordering::Acquire) < epoch)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(applied)
    }

    /// Asks the workers to stop (they finish the block in hand).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
    /// Whether the capture has stopped (a stop request, or every worker ended).
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
    /// PACKET_STATISTICS so far, summed over the rings (read by each
    /// worker every half second): `(packets, drops)`.
    pub fn kernel_counts(&self) -> (u64, u64) {
        self.progress.iter().fold((0, 0), |(p, d), w| {
            (
                p + w.kernel_packets.load(Ordering::Relaxed),
                d + w.kernel_drops.load(Ordering::Relaxed),
            )
        })
    }
    /// This process's stream addresses (PCAP-over-IP listeners): TCP
    /// frames to or from them are never offered to a tenant, from the
    /// next frame a worker reads after this returns.
    pub fn set_own_streams(&self, addrs: Vec<SocketAddr>) {
        self.own.set(addrs);
    }
    /// Instructions of the kernel prefilter on the ring sockets (`None`:
    /// none attached, every frame is copied to the ring).
    pub fn prefilter_len(&self) -> Option<usize> {
        self.prefilter().insns()
    }
    /// The kernel prefilter on the ring sockets now.
    pub fn prefilter(&self) -> PrefilterState {
        self.control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .prefilter
            .clone()
    }
    /// The tenants' set as it stands: its statistics (filters merged and
    /// in the fallback interpreter, terms, nodes).
    pub fn set_stats(&self) -> crate::Stats {
        self.control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set
            .stats()
    }
    /// The link type of the frames delivered ([`LiveConfig::link`]).
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Times the kernel refused the prefilter (at start or after an
    /// update), so the capture went on with none.
    pub fn prefilter_refusals(&self) -> u64 {
        self.prefilter_refusals.load(Ordering::Relaxed)
    }
    /// Workers still reading (one that failed, for instance because its
    /// interface went away, is not).
    pub fn workers_running(&self) -> usize {
        self.progress
            .iter()
            .filter(|p| p.running.load(Ordering::Acquire))
            .count()
    }
    /// Updates whose prefilter could not be swapped in place (ENOMEM) and
    /// went through no filter for an instant.
    pub fn prefilter_retries(&self) -> u64 {
        self.prefilter_retries.load(Ordering::Relaxed)
    }
    /// Stops, waits for every worker, and sums their totals. Endpoints
    /// see the end of their stream once this returns (and they drain).
    /// Every worker is joined; the first worker error is returned.
    pub fn join(self) -> io::Result<CaptureTotals> {
        self.stop();
        let mut t = CaptureTotals::default();
        let mut first_err = None;
        for h in self.workers {
            match h.join() {
                Ok(Ok(w)) => {
                    t.frames += w.frames;
                    t.matched += w.matched;
                    t.kernel_packets += w.kernel_packets;
                    t.kernel_drops += w.kernel_drops;
                }
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(io::Error::other("capture worker panicked"));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(t),
        }
    }
}

/// Clears a worker's `running` flag however it ends (an error included),
/// so an update never waits for a worker that is gone.
struct Running<'a>(&'a Progress);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

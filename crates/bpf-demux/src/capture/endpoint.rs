//! Per-tenant endpoint channels.
//!
//! A matched frame is copied out of the ring once into a [`Captured`] and
//! shared (`Arc`) by every endpoint it goes to; each endpoint sees it
//! truncated to its own length. Queues are bounded: when one is full, that
//! endpoint's copy is dropped and counted, and nobody waits (unless the
//! sender was made blocking, for offline splitting).

use super::queue::{Queue, QueueBound, QueueStats, RecvTimeoutError, TryRecvError};
use crate::exec::{Automaton, FilterId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// One frame as captured, shared by all its endpoints.
#[derive(Debug)]
pub struct Captured {
    /// The bytes, with the outer VLAN tag re-inserted when enabled: as
    /// many as the longest delivery of this frame needs (a frame whose
    /// tenants all cut it short is copied short).
    pub data: Box<[u8]>,
    /// Capture time: seconds since the epoch.
    pub ts_sec: u64,
    /// Capture time: nanoseconds within the second.
    pub ts_nsec: u32,
    /// Its source interface ([`super::Stamp::iface`]).
    pub iface: u32,
    /// Original (wire) length, counting a re-inserted tag.
    pub orig_len: u32,
    /// `(tci, tpid)` of the stripped outer tag, if any.
    pub vlan: Option<(u16, u16)>,
    /// True when the tag was put back into `data` (at byte 12).
    pub tag_inserted: bool,
}

/// What one endpoint receives: the shared frame and this tenant's length.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The frame, shared with every other tenant it was delivered to.
    pub frame: Arc<Captured>,
    /// Bytes of `frame.data` this tenant gets.
    pub caplen: u32,
}

impl Delivery {
    /// This tenant's bytes of the frame.
    pub fn bytes(&self) -> &[u8] {
        &self.frame.data[..self.caplen as usize]
    }
}

/// Counters of one endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantStats {
    /// Frames queued to the endpoint.
    pub frames: u64,
    /// Bytes queued (sum of caplen).
    pub bytes: u64,
    /// Frames dropped because the endpoint's queue was full.
    pub drops: u64,
}

impl From<QueueStats> for TenantStats {
    fn from(q: QueueStats) -> TenantStats {
        TenantStats {
            frames: q.frames,
            bytes: q.bytes,
            drops: q.drops,
        }
    }
}

/// A tenant's channel for the life of a capture: stays the same when its
/// filter is replaced (new program or snaplen, hence a new `FilterId`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub u32);

/// The receiving side of one tenant's channel.
///
/// [`Senders::new`] makes one per tenant; a [`Dispatcher`](super::Dispatcher)
/// (or a [`LiveCapture`](super::LiveCapture)'s workers) delivers each frame
/// once, shared, to every accepting tenant, cut to that tenant's length:
///
/// ```
/// use bpf_demux::capture::{Dispatcher, Senders, Stamp, TenantSpec, TryRecvError};
/// use bpf_demux::cbpf::{text, FrameMeta, Program};
/// use bpf_demux::{FilterSet, NamedProgram};
/// let prog = |s: &str| Program::validate(&text::parse_asm(s).unwrap()).unwrap();
/// let arp = "ldh [12]\njneq #0x806, drop\nret #-1\ndrop: ret #0";
/// let mut set = FilterSet::new([
///     NamedProgram::new("arp", prog(arp)),
///     NamedProgram::new("arp-head", prog(arp)).with_snaplen(20),
///     NamedProgram::new("none", prog("ret #0")),
/// ])
/// .unwrap();
/// let (senders, endpoints) = Senders::new(TenantSpec::all(set.automaton(), 64), false);
/// let mut dispatcher = Dispatcher::new(set.publish(), senders, false);
/// let mut frame = vec![0u8; 60];
/// frame[12..14].copy_from_slice(&[0x08, 0x06]);
/// dispatcher.offer(&frame, &FrameMeta::offline(&frame, 60), Stamp::default());
/// let lens: Vec<_> = endpoints
///     .iter()
///     .map(|ep| (ep.name.as_str(), ep.try_recv().map(|d| d.bytes().len())))
///     .collect();
/// assert_eq!(
///     lens,
///     [("arp", Ok(60)), ("arp-head", Ok(20)), ("none", Err(TryRecvError::Empty))]
/// );
/// ```
pub struct Endpoint {
    /// The tenant's id, unique for the capture's life.
    pub tenant: TenantId,
    /// The tenant's filter name.
    pub name: String,
    queue: Arc<Queue<Delivery>>,
}

impl Endpoint {
    /// Waits for the next frame; `None` once capture has stopped and the
    /// queue is empty.
    pub fn recv(&self) -> Option<Delivery> {
        self.queue.pop_until(None).ok()
    }
    /// Waits up to `timeout`; [`RecvTimeoutError::Ended`] once the stream
    /// has ended (capture stopped or the tenant was removed) and everything
    /// was read.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Delivery, RecvTimeoutError> {
        self.queue.pop_until(Some(Instant::now() + timeout))
    }
    /// The next frame if one is queued; [`TryRecvError::Ended`] once the
    /// stream has ended and everything was read.
    pub fn try_recv(&self) -> Result<Delivery, TryRecvError> {
        self.queue.try_pop()
    }
    /// Frames until the stream ends.
    pub fn iter(&self) -> impl Iterator<Item = Delivery> + '_ {
        std::iter::from_fn(|| self.recv())
    }
    /// The queue's counters: delivered, dropped, queued.
    pub fn stats(&self) -> TenantStats {
        self.queue.stats().into()
    }
    /// Waits until `bytes` are queued, `deadline` passes or the stream
    /// ends (for a reader that writes in batches; it drains afterwards).
    pub fn wait_fill(&self, bytes: u64, deadline: Instant) {
        self.queue.wait_fill(bytes, deadline)
    }
    /// Queued now: `(frames, bytes held)`.
    pub fn fill(&self) -> (usize, u64) {
        self.queue.fill()
    }
    /// What the tenant's queue holds at most.
    pub fn bound(&self) -> QueueBound {
        self.queue.bound()
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("tenant", &self.tenant)
            .field("name", &self.name)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.queue.close_receiver();
    }
}

/// One tenant's channel settings.
#[derive(Clone, Debug)]
pub struct TenantSpec {
    /// The tenant's filter in the set.
    pub id: FilterId,
    /// The filter's name (the tenant's name).
    pub name: String,
    /// Cap on delivered bytes.
    pub snaplen: Option<u32>,
    /// What the queue holds before this tenant drops (frames, and bytes
    /// of the frames held: see [`Senders::send`]).
    pub queue: QueueBound,
}

impl TenantSpec {
    /// One spec per live filter of `automaton` (its name and snaplen
    /// cap), each with a queue of `queue`: the channels a capture of that
    /// set delivers to ([`Senders::new`]).
    pub fn all(automaton: &Automaton, queue: impl Into<QueueBound>) -> Vec<TenantSpec> {
        let queue = queue.into();
        automaton
            .filters()
            .map(|(id, f)| TenantSpec {
                id,
                name: f.name().to_owned(),
                snaplen: f.snaplen(),
                queue,
            })
            .collect()
    }
}

/// The sending end of one tenant's queue, shared by every routing that
/// still delivers to it; the tenant's stream ends when the last one goes
/// (the capture stopped, or the tenant was removed and no worker holds a
/// routing that names it any more).
pub(crate) struct Slot {
    tenant: TenantId,
    queue: Arc<Queue<Delivery>>,
    /// Set while the tenant is in the ready set (see [`Ready`]).
    queued: AtomicBool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.queue.close_senders();
    }
}

/// Which endpoints have frames waiting, for a consumer that reads many
/// endpoints from one thread (a pcap writer, a bench): it waits on this
/// instead of sweeping every endpoint.
///
/// Invariant: a slot's `queued` flag is set iff the slot is in `pending`
/// or a consumer has taken it and not yet cleared the flag; a consumer
/// clears the flag before draining, so a frame sent after the drain queues
/// the tenant again. `pending` holds slots weakly: a removed tenant's
/// stream ends when its routings go, whether or not anyone waits here.
#[derive(Default)]
pub struct Ready {
    pending: Mutex<Vec<(TenantId, Weak<Slot>)>>,
    dirty: AtomicBool,
    /// Set (under the `pending` lock) once every sender is gone.
    closed: AtomicBool,
    cond: Condvar,
}

impl Ready {
    fn mark(&self, slot: &Arc<Slot>) {
        if !slot.queued.swap(true, Ordering::AcqRel) {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            // Nobody may ever wait here (endpoints read directly): forget
            // slots that are gone once they are as many as the rest.
            if p.len() >= 64 && p.len().is_power_of_two() {
                p.retain(|(_, w)| w.strong_count() > 0);
            }
            p.push((slot.tenant, Arc::downgrade(slot)));
            self.dirty.store(true, Ordering::Release);
        }
    }
    /// Wakes a waiting consumer if anything was queued since the last call.
    /// Producers call it once per batch (per ring block).
    pub fn notify(&self) {
        if self.dirty.swap(false, Ordering::AcqRel) {
            self.cond.notify_all();
        }
    }
    /// True once every sender is gone: after the ids `wait` returns now,
    /// nothing more is coming (drain every endpoint a last time).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
    fn close(&self) {
        let _p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        self.closed.store(true, Ordering::Release);
        self.cond.notify_all();
    }
    /// Waits up to `timeout` for endpoints with frames (returning at once
    /// when the senders are gone); returns their tenants (each flag
    /// cleared: drain each endpoint until empty).
    pub fn wait(&self, timeout: Duration) -> Vec<TenantId> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_empty() && !self.closed.load(Ordering::Acquire) {
            p = self
                .cond
                .wait_timeout(p, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let slots = std::mem::take(&mut *p);
        drop(p);
        slots
            .into_iter()
            .map(|(tenant, w)| {
                if let Some(s) = w.upgrade() {
                    s.queued.store(false, Ordering::Release);
                }
                tenant
            })
            .collect()
    }
}

/// Closes the ready set when the last clone of any [`Senders`] of one
/// capture goes (after their slots, declared before it, have closed).
struct CloseOnDrop(Arc<Ready>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// `len` cut to a tenant's snaplen cap.
fn cap_len(len: usize, cap: Option<u32>) -> usize {
    cap.map_or(len, |c| len.min(c as usize))
}

/// Bytes a queued delivery is charged beyond the frame's data (the shared
/// frame's header and the queue entry).
pub const FRAME_OVERHEAD: u64 = 64;

/// The sending side of every tenant, indexed by `FilterId`: each entry the
/// tenant's slot and its snaplen cap.
#[derive(Clone)]
pub struct Senders {
    slots: Vec<Option<(Arc<Slot>, Option<u32>)>>,
    blocking: bool,
    ready: Arc<Ready>,
    next_tenant: u32,
    _alive: Arc<CloseOnDrop>,
}

impl Senders {
    /// Makes one channel per tenant, `TenantId`s in order from 0.
    /// `blocking`: a full queue makes the sender wait (offline use) instead
    /// of dropping.
    pub fn new(
        tenants: impl IntoIterator<Item = TenantSpec>,
        blocking: bool,
    ) -> (Senders, Vec<Endpoint>) {
        let ready = Arc::new(Ready::default());
        let mut s = Senders {
            slots: Vec::new(),
            blocking,
            _alive: Arc::new(CloseOnDrop(ready.clone())),
            ready,
            next_tenant: 0,
        };
        let eps = tenants.into_iter().map(|t| s.open(t)).collect();
        (s, eps)
    }

    /// A new channel for `t`: its endpoint, the slot routed for `t.id`.
    pub(crate) fn open(&mut self, t: TenantSpec) -> Endpoint {
        let tenant = TenantId(self.next_tenant);
        self.next_tenant += 1;
        let queue = Arc::new(Queue::new(t.queue));
        let slot = Arc::new(Slot {
            tenant,
            queue: queue.clone(),
            queued: AtomicBool::new(false),
        });
        self.route(t.id, slot, t.snaplen);
        Endpoint {
            tenant,
            name: t.name,
            queue,
        }
    }

    /// The slot and cap routed for `id`, if any.
    pub(crate) fn slot(&self, id: FilterId) -> Option<(Arc<Slot>, Option<u32>)> {
        self.slots.get(id.index()).cloned().flatten()
    }

    /// Bytes filter `id`'s tenant gets of a delivery of `len`: `len` cut to
    /// the tenant's snaplen cap (0 when `id` is not routed).
    pub(crate) fn caplen(&self, id: FilterId, len: usize) -> usize {
        match self.slots.get(id.index()) {
            Some(Some((_, cap))) => cap_len(len, *cap),
            _ => 0,
        }
    }

    /// Routes filter `id` to `slot` with `cap`.
    pub(crate) fn route(&mut self, id: FilterId, slot: Arc<Slot>, cap: Option<u32>) {
        if self.slots.len() <= id.index() {
            self.slots.resize(id.index() + 1, None);
        }
        self.slots[id.index()] = Some((slot, cap));
    }

    /// Stops routing filter `id` (its slot lives on in older copies).
    pub(crate) fn unroute(&mut self, id: FilterId) {
        if let Some(s) = self.slots.get_mut(id.index()) {
            *s = None;
        }
        while self.slots.last().is_some_and(|s| s.is_none()) {
            self.slots.pop();
        }
    }

    /// The ready set consumers of many endpoints wait on.
    pub fn ready(&self) -> Arc<Ready> {
        self.ready.clone()
    }

    /// Wakes consumers waiting on [`Ready`] (after a batch of sends).
    pub fn flush(&self) {
        self.ready.notify();
    }

    /// Queues `frame` for filter `id`'s tenant, `len` bytes of it capped by
    /// the tenant's snaplen; counts a drop when the queue is full (or the
    /// endpoint is gone).
    pub fn send(&self, id: FilterId, frame: &Arc<Captured>, len: usize) {
        let Some(Some((slot, cap))) = self.slots.get(id.index()) else {
            return;
        };
        // Never more than the shared copy holds.
        let caplen = cap_len(len.min(frame.data.len()), *cap) as u32;
        let d = Delivery {
            frame: frame.clone(),
            caplen,
        };
        // A queued delivery holds the whole shared frame.
        let weight = frame.data.len() as u64 + FRAME_OVERHEAD;
        if slot
            .queue
            .push(d, caplen as u64, weight, self.blocking)
            .is_ok()
        {
            self.ready.mark(slot);
            if self.blocking {
                self.ready.notify();
            }
        }
    }
}

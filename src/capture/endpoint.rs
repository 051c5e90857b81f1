//! Per-tenant endpoint channels.
//!
//! A matched frame is copied out of the ring once into a [`Captured`] and
//! shared (`Arc`) by every endpoint it goes to; each endpoint sees it
//! truncated to its own length. Queues are bounded: when one is full, that
//! endpoint's copy is dropped and counted, and nobody waits (unless the
//! sender was made blocking, for offline splitting).

use super::queue::{Queue, QueueStats};
use crate::merge::FilterId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One frame as captured, shared by all its endpoints.
#[derive(Debug)]
pub struct Captured {
    /// The bytes, with the outer VLAN tag re-inserted when enabled.
    pub data: Box<[u8]>,
    pub ts_sec: u64,
    pub ts_nsec: u32,
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
    pub frame: Arc<Captured>,
    /// Bytes of `frame.data` this tenant gets.
    pub caplen: u32,
}

impl Delivery {
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

/// The receiving side of one tenant's channel.
pub struct Endpoint {
    pub filter: FilterId,
    pub name: String,
    queue: Arc<Queue<Delivery>>,
}

impl Endpoint {
    /// Waits for the next frame; `None` once capture has stopped and the
    /// queue is empty.
    pub fn recv(&self) -> Option<Delivery> {
        self.queue.pop_until(None).ok()
    }
    /// Waits up to `timeout`. `Err(true)` when capture has stopped.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Delivery, bool> {
        self.queue.pop_until(Some(Instant::now() + timeout))
    }
    /// The next frame if one is queued. `Err(true)` when capture has stopped.
    pub fn try_recv(&self) -> Result<Delivery, bool> {
        self.queue.try_pop()
    }
    /// Frames until capture stops.
    pub fn iter(&self) -> impl Iterator<Item = Delivery> + '_ {
        std::iter::from_fn(|| self.recv())
    }
    pub fn stats(&self) -> TenantStats {
        self.queue.stats().into()
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
    pub id: FilterId,
    pub name: String,
    /// Cap on delivered bytes.
    pub snaplen: Option<u32>,
    /// Frames the queue holds before this tenant drops.
    pub queue: usize,
}

/// Which endpoints have frames waiting, for a consumer that reads many
/// endpoints from one thread (a pcap writer, a bench): it waits on this
/// instead of sweeping every endpoint.
///
/// Invariant: `queued[i]` is set iff id `i` is in `pending` or a consumer
/// has taken it and not yet cleared the flag; a consumer clears the flag
/// before draining, so a frame sent after the drain queues the id again.
#[derive(Debug, Default)]
pub struct Ready {
    pending: Mutex<Vec<FilterId>>,
    queued: Vec<AtomicBool>,
    dirty: AtomicBool,
    /// Set (under the `pending` lock) once every sender is gone.
    closed: AtomicBool,
    cond: Condvar,
}

impl Ready {
    fn mark(&self, id: FilterId) {
        if let Some(f) = self.queued.get(id.index()) {
            if !f.swap(true, Ordering::AcqRel) {
                self.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(id);
                self.dirty.store(true, Ordering::Release);
            }
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
    /// when the senders are gone); returns their ids (each flag cleared:
    /// drain each endpoint until empty).
    pub fn wait(&self, timeout: Duration) -> Vec<FilterId> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_empty() && !self.closed.load(Ordering::Acquire) {
            p = self
                .cond
                .wait_timeout(p, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let ids = std::mem::take(&mut *p);
        drop(p);
        for id in &ids {
            self.queued[id.index()].store(false, Ordering::Release);
        }
        ids
    }
}

/// Ends every stream (and closes the ready set) when the last clone of a
/// [`Senders`] goes.
struct CloseOnDrop(Vec<Arc<Queue<Delivery>>>, Arc<Ready>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        for q in &self.0 {
            q.close_senders();
        }
        self.1.close();
    }
}

/// The sending side of every tenant, indexed by `FilterId`.
#[derive(Clone)]
pub struct Senders {
    slots: Vec<Option<(Arc<Queue<Delivery>>, Option<u32>)>>,
    blocking: bool,
    ready: Arc<Ready>,
    _alive: Arc<CloseOnDrop>,
}

impl Senders {
    /// Makes one channel per tenant. `blocking`: a full queue makes the
    /// sender wait (offline use) instead of dropping.
    pub fn new(
        tenants: impl IntoIterator<Item = TenantSpec>,
        blocking: bool,
    ) -> (Senders, Vec<Endpoint>) {
        let mut slots = Vec::new();
        let mut eps = Vec::new();
        for TenantSpec {
            id,
            name,
            snaplen: cap,
            queue,
        } in tenants
        {
            let q = Arc::new(Queue::new(queue));
            if slots.len() <= id.index() {
                slots.resize(id.index() + 1, None);
            }
            slots[id.index()] = Some((q.clone(), cap));
            eps.push(Endpoint {
                filter: id,
                name,
                queue: q,
            });
        }
        let queued = (0..slots.len()).map(|_| AtomicBool::new(false)).collect();
        let queues = slots.iter().flatten().map(|s| s.0.clone()).collect();
        let ready = Arc::new(Ready {
            queued,
            ..Ready::default()
        });
        (
            Senders {
                slots,
                blocking,
                _alive: Arc::new(CloseOnDrop(queues, ready.clone())),
                ready,
            },
            eps,
        )
    }

    /// The ready set consumers of many endpoints wait on.
    pub fn ready(&self) -> Arc<Ready> {
        self.ready.clone()
    }

    /// Wakes consumers waiting on [`Ready`] (after a batch of sends).
    pub fn flush(&self) {
        self.ready.notify();
    }

    /// Queues `frame` for tenant `id`, `len` bytes of it capped by the
    /// tenant's snaplen; counts a drop when the queue is full (or the
    /// endpoint is gone).
    pub fn send(&self, id: FilterId, frame: &Arc<Captured>, len: usize) {
        let Some(Some((q, cap))) = self.slots.get(id.index()) else {
            return;
        };
        let caplen = cap.map_or(len, |c| len.min(c as usize)) as u32;
        let d = Delivery {
            frame: frame.clone(),
            caplen,
        };
        if q.push(d, caplen as u64, self.blocking) {
            self.ready.mark(id);
            if self.blocking {
                self.ready.notify();
            }
        }
    }
}

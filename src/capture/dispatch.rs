//! One frame, one pass, every tenant served.

use super::endpoint::{Captured, Senders};
use crate::cbpf::FrameMeta;
use crate::exec::{Automaton, Cache, MatchSet};
use std::sync::Arc;

/// What a frame is matched against and where it goes: a published
/// automaton and the tenants' channels for its filters. A live capture
/// swaps the whole routing at once when tenants change.
pub struct Routing {
    pub automaton: Arc<Automaton>,
    pub senders: Senders,
}

/// Matches frames against a published automaton and delivers them.
/// One per worker thread (it owns the per-thread scratch).
pub struct Dispatcher {
    routing: Arc<Routing>,
    cache: Cache,
    out: MatchSet,
    /// Put a stripped outer VLAN tag back into the delivered bytes.
    pub reinsert_vlan: bool,
    /// Frames offered, and frames matched by at least one tenant.
    pub seen: u64,
    pub matched: u64,
}

/// Where and when a frame was captured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stamp {
    pub ts_sec: u64,
    pub ts_nsec: u32,
}

impl Dispatcher {
    pub fn new(automaton: Arc<Automaton>, senders: Senders, reinsert_vlan: bool) -> Dispatcher {
        Dispatcher::with_routing(Arc::new(Routing { automaton, senders }), reinsert_vlan)
    }

    pub fn with_routing(routing: Arc<Routing>, reinsert_vlan: bool) -> Dispatcher {
        Dispatcher {
            routing,
            cache: Cache::new(),
            out: MatchSet::new(),
            reinsert_vlan,
            seen: 0,
            matched: 0,
        }
    }

    /// Wakes endpoint consumers waiting on the ready set; call after a
    /// batch of frames (the live workers call it once per ring block).
    pub fn flush(&self) {
        self.routing.senders.flush();
    }

    /// Swaps in a new routing (tenants added, removed or replaced); call
    /// between frames.
    pub fn set_routing(&mut self, r: Arc<Routing>) {
        if !Arc::ptr_eq(&r, &self.routing) {
            self.routing = r;
        }
    }

    /// Matches `frame` (the bytes the filter sees; `meta.wire_len` its
    /// wire length) and delivers it to every accepting tenant, truncated to
    /// `min(return value, captured length, tenant cap)`, the tag re-inserted
    /// when `meta` says one was stripped and `reinsert_vlan` is set.
    pub fn offer(&mut self, frame: &[u8], meta: &FrameMeta, stamp: Stamp) {
        if self.classify(frame, meta) {
            self.deliver(frame, meta, stamp);
        }
    }

    /// The first half of [`offer`](Self::offer): matches `frame` (counted
    /// in `seen`) and says whether some tenant accepted it.
    pub fn classify(&mut self, frame: &[u8], meta: &FrameMeta) -> bool {
        self.seen += 1;
        self.routing
            .automaton
            .matches_into(&mut self.cache, frame, meta, &mut self.out);
        !self.out.is_empty()
    }

    /// The second half of [`offer`](Self::offer): delivers the frame just
    /// classified to every tenant that accepted it (counted in `matched`;
    /// a caller may classify and then decline, as `--count` does).
    pub fn deliver(&mut self, frame: &[u8], meta: &FrameMeta, stamp: Stamp) {
        if self.out.is_empty() {
            return;
        }
        self.matched += 1;
        let vlan = meta.vlan_present.then_some((meta.vlan_tci, meta.vlan_tpid));
        let insert = self.reinsert_vlan && vlan.is_some() && frame.len() >= 12;
        let mut data = Vec::with_capacity(frame.len() + 4 * insert as usize);
        let mut orig_len = meta.wire_len;
        if insert {
            let (tci, tpid) = vlan.unwrap();
            data.extend_from_slice(&frame[..12]);
            data.extend_from_slice(&tpid.to_be_bytes());
            data.extend_from_slice(&tci.to_be_bytes());
            data.extend_from_slice(&frame[12..]);
            orig_len += 4;
        } else {
            data.extend_from_slice(frame);
        }
        let shared = Arc::new(Captured {
            data: data.into_boxed_slice(),
            ts_sec: stamp.ts_sec,
            ts_nsec: stamp.ts_nsec,
            orig_len,
            vlan,
            tag_inserted: insert,
        });
        for (id, ret) in self.out.iter() {
            let seen_len = (ret as usize).min(frame.len());
            // libpcap on Linux: the tag goes back in when at least the
            // two MAC addresses were captured.
            let len = if insert && seen_len >= 12 {
                seen_len + 4
            } else {
                seen_len
            };
            self.routing.senders.send(id, &shared, len);
        }
    }
}

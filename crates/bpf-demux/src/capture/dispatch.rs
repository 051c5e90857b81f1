//! One frame, one pass, every tenant served.

use super::endpoint::{Captured, Senders};
use crate::cbpf::FrameMeta;
use crate::exec::{Automaton, Cache, MatchSet};
use std::sync::Arc;

/// What a frame is matched against and where it goes: a published
/// automaton and the tenants' channels for its filters. A live capture
/// swaps the whole routing at once when tenants change.
pub struct Routing {
    /// The published automaton frames are matched against.
    pub automaton: Arc<Automaton>,
    /// The channels of its filters' tenants.
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
    /// (see `seen`)
    pub matched: u64,
}

/// Where and when a frame was captured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stamp {
    /// Capture time: seconds since the epoch.
    pub ts_sec: u64,
    /// Capture time: nanoseconds within the second.
    pub ts_nsec: u32,
    /// Which source interface it came from (0 for a live capture of one
    /// interface; the input's index when reading files).
    pub iface: u32,
}

impl Dispatcher {
    /// A dispatcher for `automaton`, delivering through `senders`.
    pub fn new(automaton: Arc<Automaton>, senders: Senders, reinsert_vlan: bool) -> Dispatcher {
        Dispatcher::with_routing(Arc::new(Routing { automaton, senders }), reinsert_vlan)
    }

    /// A dispatcher for an existing routing (shared with other workers).
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
        // What tenant `id` gets when its filter returns `ret`, before its cap.
        let tenant_len = |ret: u32| {
            let seen_len = (ret as usize).min(frame.len());
            // libpcap on Linux: the tag goes back in when at least the
            // two MAC addresses were captured.
            if insert && seen_len >= 12 {
                seen_len + 4
            } else {
                seen_len
            }
        };
        // Only the bytes the longest delivery needs are copied.
        let senders = &self.routing.senders;
        let need = self
            .out
            .iter()
            .map(|(id, ret)| senders.caplen(id, tenant_len(ret)))
            .max()
            .unwrap_or(0);
        let mut data = Vec::with_capacity(need);
        let mut orig_len = meta.wire_len;
        if insert {
            let (tci, tpid) = vlan.unwrap();
            let mut tag = [0u8; 4];
            tag[..2].copy_from_slice(&tpid.to_be_bytes());
            tag[2..].copy_from_slice(&tci.to_be_bytes());
            data.extend_from_slice(&frame[..need.min(12)]);
            data.extend_from_slice(&tag[..need.saturating_sub(12).min(4)]);
            data.extend_from_slice(&frame[12..12 + need.saturating_sub(16)]);
            orig_len += 4;
        } else {
            data.extend_from_slice(&frame[..need]);
        }
        let shared = Arc::new(Captured {
            data: data.into_boxed_slice(),
            ts_sec: stamp.ts_sec,
            ts_nsec: stamp.ts_nsec,
            iface: stamp.iface,
            orig_len,
            vlan,
            tag_inserted: insert,
        });
        for (id, ret) in self.out.iter() {
            senders.send(id, &shared, tenant_len(ret));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cbpf::text::parse_asm;
    use crate::cbpf::Program;
    use crate::set::NamedProgram;
    use crate::FilterSet;

    /// Filters `ret #k` (with caps), one frame of 100 bytes whose outer tag
    /// was stripped: every tenant gets the frame as libpcap rebuilds it
    /// (tag back at byte 12 once 12 bytes were captured), cut to its own
    /// length, and the shared copy holds no more than the longest needs.
    #[test]
    fn each_tenant_gets_its_cut_and_the_copy_is_no_longer_than_needed() {
        let frame: Vec<u8> = (0..100u8).collect();
        let mut meta = FrameMeta::offline(&frame, 100);
        meta.vlan_present = true;
        meta.vlan_tci = 0x0064;
        meta.vlan_tpid = 0x8100;
        // The oracle: the tagged frame, written out by hand.
        let mut tagged = frame[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        tagged.extend_from_slice(&frame[12..]);
        // (each tenant's `ret #k` and cap, reinsert the tag?)
        type Case<'a> = (&'a [(u32, Option<u32>)], bool);
        let cases: &[Case] = &[
            (&[(5, None), (12, None), (13, None)], true),
            (&[(14, None), (15, None), (16, None), (17, Some(15))], true),
            (&[(200, Some(10)), (200, Some(40)), (50, None)], true),
            (&[(200, None), (3, None)], true),
            (&[(5, None), (60, Some(20)), (200, None)], false),
        ];
        for (tenants, reinsert) in cases {
            let filters = tenants
                .iter()
                .enumerate()
                .map(|(i, (k, cap))| NamedProgram {
                    name: format!("t{i}"),
                    program: Program::validate(&parse_asm(&format!("ret #{k}")).unwrap()).unwrap(),
                    snaplen: *cap,
                });
            let mut set = FilterSet::new(filters).unwrap();
            let (senders, eps) =
                Senders::new(crate::capture::TenantSpec::all(set.automaton(), 16), false);
            let mut d = Dispatcher::new(set.publish(), senders, *reinsert);
            d.offer(&frame, &meta, Stamp::default());
            let mut longest = 0;
            let mut copy_len = None;
            for ((k, cap), ep) in tenants.iter().zip(&eps) {
                let seen = (*k as usize).min(frame.len());
                let (whole, len) = if *reinsert {
                    (&tagged, if seen >= 12 { seen + 4 } else { seen })
                } else {
                    (&frame, seen)
                };
                let len = cap.map_or(len, |c| len.min(c as usize));
                longest = longest.max(len);
                let got = ep.try_recv().expect("delivered");
                assert_eq!(
                    got.bytes(),
                    &whole[..len],
                    "ret #{k} cap {cap:?} reinsert {reinsert}"
                );
                assert_eq!(got.frame.orig_len, 100 + 4 * *reinsert as u32);
                copy_len = Some(got.frame.data.len());
            }
            assert_eq!(copy_len, Some(longest), "{tenants:?}: the shared copy");
        }
    }
}

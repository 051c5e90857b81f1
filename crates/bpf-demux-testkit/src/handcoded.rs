//! A hand-written demultiplexer for `host A` tenants: what a programmer
//! would write for exactly such a set (an EtherType switch, then one ahash
//! probe per address: IPv4 source and destination, ARP/RARP sender and
//! target), each load bounded by the captured length as the filters' loads
//! are. The baseline of issue 16's first target (`benches/handcoded.rs`,
//! and `demux-bench`'s `hand ns/frm` column for such sets).

use crate::workload::host_program;
use bpf_demux::NamedProgram;
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Tenants (their index in the set) by address.
pub struct HostsDemux {
    by_addr: HashMap<u32, Vec<u32>, ahash::RandomState>,
}

impl HostsDemux {
    /// For a set whose every filter is libpcap's `host A` program (as
    /// `tcpdump -ddd 'host A'` prints it); `None` for any other set.
    pub fn for_set(set: &[NamedProgram]) -> Option<HostsDemux> {
        let mut by_addr: HashMap<u32, Vec<u32>, ahash::RandomState> = HashMap::default();
        for (i, p) in set.iter().enumerate() {
            let a = p.program.insns().get(3)?.k;
            if p.program.insns() != host_program(Ipv4Addr::from(a)).insns() {
                return None;
            }
            by_addr.entry(a).or_default().push(i as u32);
        }
        Some(HostsDemux { by_addr })
    }

    fn be32(f: &[u8], at: usize) -> Option<u32> {
        f.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Every tenant accepting `f`, into `out` (cleared first), as each
    /// `host A` program answers: source first, destination only when the
    /// source is not A (and its load fits).
    #[inline]
    pub fn matches(&self, f: &[u8], out: &mut Vec<u32>) {
        out.clear();
        let Some(et) = f.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
            return;
        };
        let (src_at, dst_at) = match et {
            0x0800 => (26, 30),
            0x0806 | 0x8035 => (28, 38),
            _ => return,
        };
        let Some(src) = Self::be32(f, src_at) else {
            return;
        };
        if let Some(t) = self.by_addr.get(&src) {
            out.extend_from_slice(t);
        }
        if let Some(dst) = Self::be32(f, dst_at) {
            if dst != src {
                if let Some(t) = self.by_addr.get(&dst) {
                    out.extend_from_slice(t);
                }
            }
        }
    }
}

//! The daemon's own TCP streams (PCAP-over-IP listeners): frames to or
//! from one of those addresses are never offered to a tenant, so a stream
//! served on the captured interface cannot feed back into itself.

use crate::cbpf::FrameMeta;
use arc_swap::ArcSwap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The addresses, shared by the capture and its workers; a change counts
/// from the next frame a worker reads (one atomic load per frame tells).
#[derive(Default)]
pub struct OwnStreams {
    addrs: ArcSwap<Vec<SocketAddr>>,
    generation: AtomicU64,
}

impl OwnStreams {
    /// Replaces the set of addresses whose traffic is the daemon's own.
    pub fn set(&self, addrs: Vec<SocketAddr>) {
        self.addrs.store(Arc::new(addrs));
        self.generation.fetch_add(1, Ordering::Release);
    }
    /// A worker's view, brought up to date on every frame it asks about.
    pub fn reader(&self) -> OwnReader<'_> {
        OwnReader {
            generation: self.generation.load(Ordering::Acquire),
            addrs: self.addrs.load_full(),
            src: self,
        }
    }
}

/// One worker's copy of [`OwnStreams`].
pub struct OwnReader<'a> {
    src: &'a OwnStreams,
    generation: u64,
    addrs: Arc<Vec<SocketAddr>>,
}

impl OwnReader<'_> {
    /// [`is_own`] against the addresses as they are now.
    pub fn is_own(&mut self, frame: &[u8], meta: &FrameMeta) -> bool {
        let g = self.src.generation.load(Ordering::Acquire);
        if g != self.generation {
            self.addrs = self.src.addrs.load_full();
            self.generation = g;
        }
        is_own(frame, meta, &self.addrs)
    }
}

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const IPPROTO_TCP: u8 = 6;

/// True when `frame` is a TCP segment from or to one of `own`.
pub fn is_own(frame: &[u8], meta: &FrameMeta, own: &[SocketAddr]) -> bool {
    if own.is_empty() {
        return false;
    }
    let Some(ip) = frame.get(meta.net_off as usize..) else {
        return false;
    };
    let (src, dst, tcp) = match meta.protocol {
        ETH_P_IP if ip.len() >= 20 && ip[0] >> 4 == 4 && ip[9] == IPPROTO_TCP => {
            let ihl = (ip[0] & 0xf) as usize * 4;
            let src: [u8; 4] = ip[12..16].try_into().unwrap_or_default();
            let dst: [u8; 4] = ip[16..20].try_into().unwrap_or_default();
            (IpAddr::from(src), IpAddr::from(dst), ip.get(ihl..))
        }
        ETH_P_IPV6 if ip.len() >= 40 && ip[0] >> 4 == 6 && ip[6] == IPPROTO_TCP => {
            let src: [u8; 16] = ip[8..24].try_into().unwrap_or_default();
            let dst: [u8; 16] = ip[24..40].try_into().unwrap_or_default();
            (IpAddr::from(src), IpAddr::from(dst), ip.get(40..))
        }
        _ => return false,
    };
    let Some(tcp) = tcp.filter(|t| t.len() >= 4) else {
        return false;
    };
    let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
    let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
    own.iter().any(|a| {
        let any = a.ip().is_unspecified();
        (a.port() == sport && (any || a.ip() == src))
            || (a.port() == dport && (any || a.ip() == dst))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + TCP header, bytes written out by hand.
    fn v4_tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0; 16]);
        f
    }

    #[test]
    fn matches_either_direction_of_a_listen_address_only() {
        let own: Vec<SocketAddr> = vec!["127.0.0.1:57012".parse().unwrap()];
        let meta = |f: &[u8]| FrameMeta::offline(f, f.len() as u32);
        let to = v4_tcp([127, 0, 0, 1], 40000, [127, 0, 0, 1], 57012);
        let from = v4_tcp([127, 0, 0, 1], 57012, [127, 0, 0, 1], 40000);
        let other_port = v4_tcp([127, 0, 0, 1], 40000, [127, 0, 0, 1], 57013);
        let other_host = v4_tcp([10, 0, 0, 1], 40000, [10, 0, 0, 2], 57012);
        assert!(is_own(&to, &meta(&to), &own));
        assert!(is_own(&from, &meta(&from), &own));
        assert!(!is_own(&other_port, &meta(&other_port), &own));
        assert!(!is_own(&other_host, &meta(&other_host), &own));
        assert!(!is_own(&to, &meta(&to), &[]));
        // A UDP datagram with the same ports is not a stream of ours.
        let mut udp = to.clone();
        udp[14 + 9] = 17;
        assert!(!is_own(&udp, &meta(&udp), &own));
        let any: Vec<SocketAddr> = vec!["0.0.0.0:57012".parse().unwrap()];
        assert!(is_own(&other_host, &meta(&other_host), &any));
    }

    #[test]
    fn a_reader_sees_a_change_from_the_next_frame() {
        let streams = OwnStreams::default();
        let mut r = streams.reader();
        let meta = |f: &[u8]| FrameMeta::offline(f, f.len() as u32);
        let to = v4_tcp([127, 0, 0, 1], 40000, [127, 0, 0, 1], 57012);
        assert!(!r.is_own(&to, &meta(&to)));
        streams.set(vec!["127.0.0.1:57012".parse().unwrap()]);
        assert!(r.is_own(&to, &meta(&to)));
        streams.set(Vec::new());
        assert!(!r.is_own(&to, &meta(&to)));
    }
}

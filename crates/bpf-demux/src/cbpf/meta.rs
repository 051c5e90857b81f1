//! What a filter may know about a frame besides its bytes.

/// `PACKET_HOST` .. `PACKET_OUTGOING`, as in `sll_pkttype`.
pub mod pkttype {
    /// `PACKET_HOST`: to this host.
    pub const HOST: u8 = 0;
    /// `PACKET_BROADCAST`: to all.
    pub const BROADCAST: u8 = 1;
    /// `PACKET_MULTICAST`: to a group.
    pub const MULTICAST: u8 = 2;
    /// `PACKET_OTHERHOST`: to another host (promiscuous).
    pub const OTHERHOST: u8 = 3;
    /// `PACKET_OUTGOING`: sent by this host.
    pub const OUTGOING: u8 = 4;
}

/// `ARPHRD_ETHER`.
pub const ARPHRD_ETHER: u16 = 1;
/// Length of an Ethernet header: where the `SKF_NET_OFF` area starts.
pub const ETH_HLEN: u32 = 14;

/// Frame metadata feeding `LEN`, the `SKF_NET_OFF` area and the ancillary
/// loads. Values are host order, as the kernel hands them to a filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameMeta {
    /// `LEN`: the wire length as the filter sees it (without a stripped tag).
    pub wire_len: u32,
    /// Offset in the frame where the network header starts.
    pub net_off: u32,
    /// `skb->protocol`, host order.
    pub protocol: u16,
    /// `skb->pkt_type` (see [`pkttype`]).
    pub pkttype: u8,
    /// `skb->dev->ifindex`.
    pub ifindex: u32,
    /// `skb->dev->type` (ARPHRD).
    pub hatype: u16,
    /// The stripped outer tag's TCI (priority and DEI included); 0 when none.
    pub vlan_tci: u16,
    /// True iff a tag was stripped from the frame into this metadata.
    pub vlan_present: bool,
    /// TPID of the stripped tag; 0 when none.
    pub vlan_tpid: u16,
}

impl FrameMeta {
    /// Metadata for a frame read from a file, as libpcap matches it offline:
    /// tags stay in the bytes, `LEN` is the record's original length, the
    /// network header is at byte 14. Protocol and packet type follow the
    /// kernel's `eth_type_trans` (802.3 frames: `ETH_P_802_2`, or
    /// `ETH_P_802_3` for raw IPX), the host MAC being unknown.
    pub fn offline(frame: &[u8], wire_len: u32) -> FrameMeta {
        let protocol = match frame.get(12..14) {
            Some(&[a, b]) => {
                let t = u16::from_be_bytes([a, b]);
                if t >= 0x0600 {
                    t
                } else if frame.get(14..16) == Some(&[0xff, 0xff]) {
                    0x0001
                } else {
                    0x0004
                }
            }
            _ => 0,
        };
        let pkttype = match frame.first() {
            Some(_) if frame.get(..6) == Some(&[0xff; 6]) => pkttype::BROADCAST,
            Some(b) if b & 1 == 1 => pkttype::MULTICAST,
            _ => pkttype::HOST,
        };
        FrameMeta {
            wire_len,
            net_off: ETH_HLEN,
            protocol,
            pkttype,
            ifindex: 0,
            hatype: ARPHRD_ETHER,
            vlan_tci: 0,
            vlan_present: false,
            vlan_tpid: 0,
        }
    }
}

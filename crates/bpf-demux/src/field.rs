//! Header layouts as named byte ranges, in the style of smoltcp's `wire`
//! module: `frame[ethernet::ETHERTYPE]` instead of `frame[12..14]`. Each
//! range is relative to its header's start; `at(base, range)` moves it
//! into a frame. Used by the workload frame builders, the tests and the
//! benchmarks, so a raw offset is written once, here.
//!
//! ```
//! use bpf_demux::field::{self, ethernet, ethertype, ipv4};
//! let mut frame = [0u8; 60];
//! frame[ethernet::ETHERTYPE].copy_from_slice(&ethertype::IPV4.to_be_bytes());
//! let ip = ethernet::HEADER_LEN;
//! frame[field::at(ip, ipv4::SRC)].copy_from_slice(&[10, 0, 0, 1]);
//! assert_eq!(frame[12..14], [0x08, 0x00]);
//! assert_eq!(frame[26..30], [10, 0, 0, 1]);
//! ```

use std::ops::Range;

/// A field: a byte range relative to its header's start.
pub type Field = Range<usize>;

/// `field` moved to a header starting at byte `base`.
pub const fn at(base: usize, field: Field) -> Field {
    base + field.start..base + field.end
}

/// Ethernet II (DIX) header.
pub mod ethernet {
    use super::Field;
    /// Destination MAC address.
    pub const DESTINATION: Field = 0..6;
    /// Source MAC address.
    pub const SOURCE: Field = 6..12;
    /// EtherType (or 802.3 length, up to 1500).
    pub const ETHERTYPE: Field = 12..14;
    /// Header length.
    pub const HEADER_LEN: usize = 14;
    /// Shortest frame on the wire without its FCS.
    pub const MIN_FRAME: usize = 60;
}

/// EtherType values.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// RARP.
    pub const RARP: u16 = 0x8035;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag.
    pub const QINQ: u16 = 0x88a8;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
}

/// 802.1Q tag, after the outer EtherType.
pub mod vlan {
    use super::Field;
    /// Priority, DEI and VLAN id.
    pub const TCI: Field = 0..2;
    /// The inner EtherType.
    pub const ETHERTYPE: Field = 2..4;
    /// Tag length.
    pub const HEADER_LEN: usize = 4;
    /// The VLAN id bits of the TCI.
    pub const VID_MASK: u16 = 0x0fff;
}

/// ARP for IPv4 over Ethernet.
pub mod arp {
    use super::Field;
    /// Hardware type .. operation.
    pub const FIXED: Field = 0..8;
    /// Sender hardware address.
    pub const SHA: Field = 8..14;
    /// Sender protocol (IPv4) address.
    pub const SPA: Field = 14..18;
    /// Target hardware address.
    pub const THA: Field = 18..24;
    /// Target protocol (IPv4) address.
    pub const TPA: Field = 24..28;
    /// Packet length.
    pub const HEADER_LEN: usize = 28;
}

/// IPv4 header without options.
pub mod ipv4 {
    use super::Field;
    /// Version and header length in words.
    pub const VER_IHL: usize = 0;
    /// Total length.
    pub const LENGTH: Field = 2..4;
    /// Identification.
    pub const IDENT: Field = 4..6;
    /// Flags and fragment offset.
    pub const FLAGS_FRAG: Field = 6..8;
    /// The fragment offset bits of `FLAGS_FRAG`.
    pub const FRAG_MASK: u16 = 0x1fff;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol of the payload.
    pub const PROTOCOL: usize = 9;
    /// Source address.
    pub const SRC: Field = 12..16;
    /// Destination address.
    pub const DST: Field = 16..20;
    /// Header length without options.
    pub const HEADER_LEN: usize = 20;
}

/// IPv6 fixed header.
pub mod ipv6 {
    use super::Field;
    /// Payload length.
    pub const PAYLOAD_LEN: Field = 4..6;
    /// Next header.
    pub const NEXT_HEADER: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC: Field = 8..24;
    /// Destination address.
    pub const DST: Field = 24..40;
    /// Header length.
    pub const HEADER_LEN: usize = 40;
}

/// IP protocol numbers.
pub mod ip_proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// The ports of TCP, UDP and SCTP.
pub mod l4 {
    use super::Field;
    /// Source port.
    pub const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub const DST_PORT: Field = 2..4;
}

/// UDP header.
pub mod udp {
    use super::Field;
    /// Length of header and payload.
    pub const LENGTH: Field = 4..6;
    /// Header length.
    pub const HEADER_LEN: usize = 8;
}

/// TCP header without options.
pub mod tcp {
    /// Data offset (header length in words, high nibble).
    pub const DATA_OFFSET: usize = 12;
    /// Flags.
    pub const FLAGS: usize = 13;
    /// Header length without options.
    pub const HEADER_LEN: usize = 20;
}

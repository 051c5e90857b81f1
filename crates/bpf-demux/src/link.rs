//! Link types: what the bytes of a captured frame start with, as pcap
//! files and libpcap name them (`LINKTYPE_*`, `tcpdump -y NAME`), and what
//! a filter sees of such a frame ([`LinkType::meta`]).
//!
//! ```
//! use bpf_demux::link::LinkType;
//! let sll = LinkType::from_name("LINUX_SLL").unwrap();
//! assert_eq!(sll.code(), 113);
//! assert_eq!(LinkType::from_code(276), Some(LinkType::LinuxSll2));
//! // A cooked v1 frame: packet type 0 (to us), ARPHRD_ETHER, 6-byte
//! // address, protocol 0x0800, then the IPv4 header at byte 16.
//! let mut f = vec![0u8; 36];
//! f[2..4].copy_from_slice(&1u16.to_be_bytes());
//! f[14..16].copy_from_slice(&0x0800u16.to_be_bytes());
//! let meta = sll.meta(&f, 36);
//! assert_eq!((meta.net_off, meta.protocol, meta.hatype), (16, 0x0800, 1));
//! ```

use crate::cbpf::meta::{pkttype, ARPHRD_ETHER};
use crate::cbpf::FrameMeta;

/// `ARPHRD_NONE`: a device without a link header (tun).
pub const ARPHRD_NONE: u16 = 65534;
/// `ARPHRD_LOOPBACK`.
pub const ARPHRD_LOOPBACK: u16 = 772;

/// A link type bpf-demux reads, compiles for and matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1): Ethernet II / 802.3.
    Ethernet,
    /// `LINKTYPE_LINUX_SLL` (113): Linux cooked v1, a 16-byte header.
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux cooked v2 (`tcpdump -i any`), 20 bytes.
    LinuxSll2,
    /// `LINKTYPE_RAW` (101): an IPv4 or IPv6 packet, no link header.
    Raw,
    /// `LINKTYPE_IPV4` (228): an IPv4 packet.
    Ipv4,
    /// `LINKTYPE_IPV6` (229): an IPv6 packet.
    Ipv6,
    /// `LINKTYPE_NULL` (0): BSD loopback, a 4-byte address family in the
    /// byte order of the host that wrote it.
    Null,
    /// `LINKTYPE_LOOP` (108): OpenBSD loopback, the family in network order.
    Loop,
}

impl LinkType {
    /// Every link type, in code order of the table above.
    pub const ALL: [LinkType; 8] = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Raw,
        LinkType::Ipv4,
        LinkType::Ipv6,
        LinkType::Null,
        LinkType::Loop,
    ];

    /// The `LINKTYPE_*` code of pcap files.
    pub const fn code(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
            LinkType::Raw => 101,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::Null => 0,
            LinkType::Loop => 108,
        }
    }

    /// The link type of a pcap code; `None` for one bpf-demux does not read.
    pub fn from_code(code: u32) -> Option<LinkType> {
        LinkType::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The name `tcpdump -y` takes (`EN10MB`, `LINUX_SLL`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            LinkType::Ethernet => "EN10MB",
            LinkType::LinuxSll => "LINUX_SLL",
            LinkType::LinuxSll2 => "LINUX_SLL2",
            LinkType::Raw => "RAW",
            LinkType::Ipv4 => "IPV4",
            LinkType::Ipv6 => "IPV6",
            LinkType::Null => "NULL",
            LinkType::Loop => "LOOP",
        }
    }

    /// The link type `tcpdump -y` calls `name` (case-insensitive; also the
    /// number, and `ETHERNET` for `EN10MB`).
    pub fn from_name(name: &str) -> Option<LinkType> {
        if let Ok(n) = name.parse::<u32>() {
            return LinkType::from_code(n);
        }
        let up = name.to_ascii_uppercase();
        let up = up.strip_prefix("LINKTYPE_").unwrap_or(&up);
        if up == "ETHERNET" {
            return Some(LinkType::Ethernet);
        }
        LinkType::ALL.into_iter().find(|l| l.name() == up)
    }

    /// libpcap's description, as its error messages name the link type.
    pub const fn description(self) -> &'static str {
        match self {
            LinkType::Ethernet => "Ethernet",
            LinkType::LinuxSll => "Linux cooked v1",
            LinkType::LinuxSll2 => "Linux cooked v2",
            LinkType::Raw => "Raw IP",
            LinkType::Ipv4 => "Raw IPv4",
            LinkType::Ipv6 => "Raw IPv6",
            LinkType::Null => "BSD loopback",
            LinkType::Loop => "OpenBSD loopback",
        }
    }

    /// Bytes of link header before the network header.
    pub const fn header_len(self) -> u32 {
        match self {
            LinkType::Ethernet => 14,
            LinkType::LinuxSll => 16,
            LinkType::LinuxSll2 => 20,
            LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => 0,
            LinkType::Null | LinkType::Loop => 4,
        }
    }

    /// What a filter knows of `frame` (the captured bytes, `wire_len` on
    /// the wire) besides its bytes, read from the link header: the network
    /// header's offset, the protocol (an EtherType), and for the cooked
    /// types the packet type, device type and (v2) interface index.
    pub fn meta(self, frame: &[u8], wire_len: u32) -> FrameMeta {
        let mut m = FrameMeta::offline(frame, wire_len);
        m.net_off = self.header_len();
        let be16 = |at: usize| {
            frame
                .get(at..at + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        };
        // The EtherType of the IP packet at `at`, by its version nibble.
        let ip_at = |at: usize| match frame.get(at).map(|b| b >> 4) {
            Some(4) => 0x0800,
            Some(6) => 0x86dd,
            _ => 0,
        };
        match self {
            LinkType::Ethernet => {}
            LinkType::LinuxSll => {
                m.pkttype = be16(0).map_or(pkttype::HOST, |t| t as u8);
                m.hatype = be16(2).unwrap_or(ARPHRD_ETHER);
                m.protocol = be16(14).unwrap_or(0);
            }
            LinkType::LinuxSll2 => {
                m.protocol = be16(0).unwrap_or(0);
                m.ifindex = frame
                    .get(4..8)
                    .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                m.hatype = be16(8).unwrap_or(ARPHRD_ETHER);
                m.pkttype = frame.get(10).copied().unwrap_or(pkttype::HOST);
            }
            LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => {
                // No link header: nothing says where it was going, and the
                // device has no hardware type (a tun's ARPHRD_NONE).
                m.protocol = ip_at(0);
                m.pkttype = pkttype::HOST;
                m.hatype = ARPHRD_NONE;
            }
            LinkType::Null | LinkType::Loop => {
                m.protocol = ip_at(4);
                m.pkttype = pkttype::HOST;
                m.hatype = ARPHRD_LOOPBACK;
            }
        }
        m
    }
}

impl std::fmt::Display for LinkType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

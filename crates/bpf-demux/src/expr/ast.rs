//! The syntax tree of a filter expression.

/// Direction qualifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Src,
    Dst,
    SrcOrDst,
    SrcAndDst,
}

/// Protocol qualifier or keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Ether,
    Ip,
    Ip6,
    Arp,
    Rarp,
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Icmp6,
    Igmp,
    Igrp,
    Pim,
    Vrrp,
    Carp,
    Ah,
    Esp,
    /// AppleTalk (EtherTalk, over Ethernet or SNAP).
    Atalk,
    /// AppleTalk ARP.
    Aarp,
    /// DECnet phase IV routing.
    Decnet,
    /// DEC System Communication Architecture.
    Sca,
    /// DEC Local Area Transport.
    Lat,
    /// DEC MOP dump/load.
    Mopdl,
    /// DEC MOP remote console.
    Moprc,
    /// OSI network layer (LLC SAP 0xfe).
    Iso,
    /// ISO 9542 ES-IS.
    Esis,
    /// ISO 10589 IS-IS.
    Isis,
    /// ISO 8473 CLNP.
    Clnp,
    /// IS-IS level 1 PDUs.
    IsisL1,
    /// IS-IS level 2 PDUs.
    IsisL2,
    /// IS-IS hellos.
    IsisIih,
    /// IS-IS link-state PDUs.
    IsisLsp,
    /// IS-IS sequence-number PDUs.
    IsisSnp,
    /// IS-IS complete SNPs.
    IsisCsnp,
    /// IS-IS partial SNPs.
    IsisPsnp,
    /// Spanning tree (LLC SAP 0x42).
    Stp,
    /// Novell IPX (four encapsulations).
    Ipx,
    /// NetBEUI (LLC SAP 0xf0).
    Netbeui,
}

/// IS-IS PDU types (ISO 10589).
const ISIS_L1_LAN_IIH: u8 = 15;
const ISIS_L2_LAN_IIH: u8 = 16;
const ISIS_PTP_IIH: u8 = 17;
const ISIS_L1_LSP: u8 = 18;
const ISIS_L2_LSP: u8 = 20;
const ISIS_L1_CSNP: u8 = 24;
const ISIS_L2_CSNP: u8 = 25;
const ISIS_L1_PSNP: u8 = 26;
const ISIS_L2_PSNP: u8 = 27;

impl Proto {
    pub fn from_word(w: &str) -> Option<Proto> {
        Some(match w {
            // libpcap's scanner: all of these are its LINK token.
            "ether" | "link" | "ppp" | "slip" | "fddi" | "tr" | "wlan" => Proto::Ether,
            "ip" => Proto::Ip,
            "ip6" => Proto::Ip6,
            "arp" => Proto::Arp,
            "rarp" => Proto::Rarp,
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "sctp" => Proto::Sctp,
            "icmp" => Proto::Icmp,
            "icmp6" => Proto::Icmp6,
            "igmp" => Proto::Igmp,
            "igrp" => Proto::Igrp,
            "pim" => Proto::Pim,
            "vrrp" => Proto::Vrrp,
            "carp" => Proto::Carp,
            "ah" => Proto::Ah,
            "esp" => Proto::Esp,
            "atalk" => Proto::Atalk,
            "aarp" => Proto::Aarp,
            "decnet" => Proto::Decnet,
            "sca" => Proto::Sca,
            "lat" => Proto::Lat,
            "mopdl" => Proto::Mopdl,
            "moprc" => Proto::Moprc,
            "iso" => Proto::Iso,
            "esis" | "es-is" => Proto::Esis,
            "isis" | "is-is" => Proto::Isis,
            "clnp" => Proto::Clnp,
            "l1" => Proto::IsisL1,
            "l2" => Proto::IsisL2,
            "iih" => Proto::IsisIih,
            "lsp" => Proto::IsisLsp,
            "snp" => Proto::IsisSnp,
            "csnp" => Proto::IsisCsnp,
            "psnp" => Proto::IsisPsnp,
            "stp" => Proto::Stp,
            "ipx" => Proto::Ipx,
            "netbeui" => Proto::Netbeui,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Proto::Ether => "ether",
            Proto::Ip => "ip",
            Proto::Ip6 => "ip6",
            Proto::Arp => "arp",
            Proto::Rarp => "rarp",
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
            Proto::Icmp => "icmp",
            Proto::Icmp6 => "icmp6",
            Proto::Igmp => "igmp",
            Proto::Igrp => "igrp",
            Proto::Pim => "pim",
            Proto::Vrrp => "vrrp",
            Proto::Carp => "carp",
            Proto::Ah => "ah",
            Proto::Esp => "esp",
            Proto::Atalk => "atalk",
            Proto::Aarp => "aarp",
            Proto::Decnet => "decnet",
            Proto::Sca => "sca",
            Proto::Lat => "lat",
            Proto::Mopdl => "mopdl",
            Proto::Moprc => "moprc",
            Proto::Iso => "iso",
            Proto::Esis => "esis",
            Proto::Isis => "isis",
            Proto::Clnp => "clnp",
            Proto::IsisL1 => "l1",
            Proto::IsisL2 => "l2",
            Proto::IsisIih => "iih",
            Proto::IsisLsp => "lsp",
            Proto::IsisSnp => "snp",
            Proto::IsisCsnp => "csnp",
            Proto::IsisPsnp => "psnp",
            Proto::Stp => "stp",
            Proto::Ipx => "ipx",
            Proto::Netbeui => "netbeui",
        }
    }

    /// The link-layer protocol number a keyword tests with libpcap's
    /// gen_linktype (EtherTypes, or LLC SAPs at most 1500).
    pub fn link_proto(self) -> Option<u16> {
        Some(match self {
            Proto::Ip => 0x0800,
            Proto::Ip6 => 0x86dd,
            Proto::Arp => 0x0806,
            Proto::Rarp => 0x8035,
            Proto::Atalk => 0x809b,
            Proto::Aarp => 0x80f3,
            Proto::Decnet => 0x6003,
            Proto::Sca => 0x6007,
            Proto::Lat => 0x6004,
            Proto::Mopdl => 0x6001,
            Proto::Moprc => 0x6002,
            Proto::Iso => 0xfe,
            Proto::Stp => 0x42,
            Proto::Ipx => 0xe0,
            Proto::Netbeui => 0xf0,
            _ => return None,
        })
    }

    /// The OSI network-layer protocol (NLPID) of `esis`, `isis`, `clnp`.
    pub fn nlpid(self) -> Option<u8> {
        Some(match self {
            Proto::Clnp => 0x81,
            Proto::Esis => 0x82,
            Proto::Isis => 0x83,
            _ => return None,
        })
    }

    /// The IS-IS PDU types of `l1`, `l2`, `iih`, `lsp`, `snp`, `csnp`, `psnp`.
    pub fn isis_pdus(self) -> Option<&'static [u8]> {
        Some(match self {
            Proto::IsisL1 => &[
                ISIS_L1_LAN_IIH,
                ISIS_PTP_IIH,
                ISIS_L1_LSP,
                ISIS_L1_CSNP,
                ISIS_L1_PSNP,
            ],
            Proto::IsisL2 => &[
                ISIS_L2_LAN_IIH,
                ISIS_PTP_IIH,
                ISIS_L2_LSP,
                ISIS_L2_CSNP,
                ISIS_L2_PSNP,
            ],
            Proto::IsisIih => &[ISIS_L1_LAN_IIH, ISIS_L2_LAN_IIH, ISIS_PTP_IIH],
            Proto::IsisLsp => &[ISIS_L1_LSP, ISIS_L2_LSP],
            Proto::IsisSnp => &[ISIS_L1_CSNP, ISIS_L2_CSNP, ISIS_L1_PSNP, ISIS_L2_PSNP],
            Proto::IsisCsnp => &[ISIS_L1_CSNP, ISIS_L2_CSNP],
            Proto::IsisPsnp => &[ISIS_L1_PSNP, ISIS_L2_PSNP],
            _ => return None,
        })
    }

    /// Whether `proto[...]` reads this protocol's header right after the
    /// link header (libpcap's gen_load: `OR_LINKPL` under the keyword).
    pub fn accessor_at_network(self) -> bool {
        matches!(
            self,
            Proto::Ip
                | Proto::Ip6
                | Proto::Arp
                | Proto::Rarp
                | Proto::Atalk
                | Proto::Decnet
                | Proto::Sca
                | Proto::Lat
                | Proto::Mopdl
                | Proto::Moprc
        )
    }
    /// Carried over IPv4 with its header length in `ip[0]` (libpcap loads
    /// `proto[...]` for these after the IPv4 header, with a fragment check).
    pub fn is_ipv4_transport(self) -> bool {
        matches!(
            self,
            Proto::Tcp
                | Proto::Udp
                | Proto::Sctp
                | Proto::Icmp
                | Proto::Igmp
                | Proto::Igrp
                | Proto::Pim
                | Proto::Vrrp
                | Proto::Carp
        )
    }

    /// The IP protocol number of a transport keyword.
    pub fn ip_proto(self) -> Option<u8> {
        Some(match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
            Proto::Icmp => 1,
            Proto::Icmp6 => 58,
            Proto::Igmp => 2,
            Proto::Igrp => 9,
            Proto::Pim => 103,
            Proto::Vrrp | Proto::Carp => 112,
            Proto::Ah => 51,
            Proto::Esp => 50,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arith {
    Num(u32),
    Len,
    /// `proto[index : size]`
    Load {
        proto: Proto,
        index: Box<Arith>,
        size: u8,
    },
    Bin(crate::cbpf::AluOp, Box<Arith>, Box<Arith>),
    Neg(Box<Arith>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prim {
    /// `ip`, `tcp`, ...: the protocol is present.
    Proto(Proto),
    /// IPv4 host or net (mask all ones for a host).
    Net4 {
        proto: Option<Proto>,
        dir: Dir,
        addr: u32,
        mask: u32,
    },
    /// IPv6 host or net.
    Net6 {
        dir: Dir,
        addr: [u8; 16],
        prefix: u8,
    },
    Port {
        proto: Option<Proto>,
        dir: Dir,
        lo: u16,
        hi: u16,
    },
    EtherHost {
        dir: Dir,
        mac: [u8; 6],
    },
    EtherProto(u16),
    EtherBroadcast,
    EtherMulticast,
    IpMulticast,
    Ip6Multicast,
    /// `ip proto N` (v4), `ip6 proto N` (v6), `proto N` (both).
    IpProto {
        v4: bool,
        v6: bool,
        proto: u8,
    },
    Less(u32),
    Greater(u32),
    /// `llc` and its subtypes.
    Llc(LlcKind),
    /// `iso proto N`: N is the first byte after the LLC header.
    IsoProto(u8),
    /// `isis proto N`: an IS-IS PDU of type N.
    IsisProto(u8),
    /// `decnet [src|dst] host A.N`.
    DecnetHost {
        dir: Dir,
        addr: u16,
    },
    Pppoed,
    /// `inbound` (false) or `outbound` (true).
    Direction(bool),
    /// `ifindex N`: captured on the interface of index N.
    Ifindex(u32),
    /// `vlan [id]`: moves the offsets of what follows by 4.
    Vlan(Option<u32>),
    /// `mpls [label]`: moves the network header by 4.
    Mpls(Option<u32>),
    /// `pppoes [session]`: what follows is PPP inside PPPoE.
    Pppoes(Option<u32>),
    /// `geneve [vni]`: Geneve over UDP; what follows looks inside it.
    Geneve(Option<u32>),
    /// `[ip|ip6] protochain N`: N anywhere in the header chain.
    Protochain {
        v4: bool,
        v6: bool,
        proto: u8,
    },
}

/// What `llc` tests after the LLC header is known to be there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LlcKind {
    /// `llc`: any 802.2 frame.
    Any,
    /// `llc i`: an information frame.
    I,
    /// `llc s`: a supervisory frame.
    S,
    /// `llc u`: an unnumbered frame.
    U,
    /// `llc rr|rnr|rej`: the supervisory command.
    SSubtype(u8),
    /// `llc ui|ua|disc|dm|sabme|test|xid|frmr`: the unnumbered command.
    USubtype(u8),
}

impl LlcKind {
    /// The subtype named `w` after `llc` (case-insensitive, as libpcap).
    pub fn from_word(w: &str) -> Option<LlcKind> {
        Some(match w.to_ascii_lowercase().as_str() {
            "i" => LlcKind::I,
            "s" => LlcKind::S,
            "u" => LlcKind::U,
            "rr" => LlcKind::SSubtype(0x01),
            "rnr" => LlcKind::SSubtype(0x05),
            "rej" => LlcKind::SSubtype(0x09),
            "ui" => LlcKind::USubtype(0x03),
            "ua" => LlcKind::USubtype(0x63),
            "disc" => LlcKind::USubtype(0x43),
            "dm" => LlcKind::USubtype(0x0f),
            "sabme" => LlcKind::USubtype(0x6f),
            "test" => LlcKind::USubtype(0xe3),
            "xid" => LlcKind::USubtype(0xaf),
            "frmr" => LlcKind::USubtype(0x87),
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    /// A primitive and the column it starts at.
    Prim(Prim, usize),
    /// A relation and the column it starts at.
    Rel(RelOp, Arith, Arith, usize),
}

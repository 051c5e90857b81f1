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
}

impl Proto {
    pub fn from_word(w: &str) -> Option<Proto> {
        Some(match w {
            "ether" | "link" => Proto::Ether,
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
        }
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
    Llc,
    Stp,
    Pppoed,
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

//! Conditions and libpcap's decoding offsets: what a primitive tests
//! ([`Cond`] over [`Load`]s and [`Test`]s), at the offsets libpcap's code
//! generator keeps ([`Offs`]), which `vlan`, `mpls`, `pppoes` and `geneve`
//! move for everything after them. Nothing here emits code; the emitter
//! ([`super::Gen`]) turns conditions into instructions.

use super::super::ast::*;
use super::super::{ExprErrorKind, LinkOnly};
use crate::cbpf::opcode::Size;
use crate::link::LinkType;

/// A test on one loaded value.
#[derive(Clone, Copy)]
pub(super) enum Test {
    Eq(u32),
    MaskEq(u32, u32),
    Ge(u32),
    Gt(u32),
    Set(u32),
    /// A == X.
    EqX,
}

#[derive(Clone, Copy)]
pub(super) enum Load {
    Abs(Size, u32),
    /// `[x + off]` with X = `M[var]`: an offset with a variable part (after
    /// a live `vlan`).
    Var(Size, u32, u32),
    /// `[x + off]` with X = the IPv4 header length, 4 * (P[iphdr] & 0xf),
    /// plus the variable part of `iphdr` if it has one.
    Transport {
        size: Size,
        iphdr: Pos,
        off: u32,
    },
    Len,
    /// A = `M[a]`, X = `M[x]` (with [`Test::EqX`]).
    Mems {
        a: u32,
        x: u32,
    },
}

pub(super) enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Test(Load, Test),
}

pub(super) fn and(v: Vec<Cond>) -> Cond {
    Cond::And(v)
}
pub(super) fn or(v: Vec<Cond>) -> Cond {
    Cond::Or(v)
}
pub(super) fn not(c: Cond) -> Cond {
    Cond::Not(Box::new(c))
}
pub(super) fn b(at: Pos, t: Test) -> Cond {
    Cond::Test(at.load(Size::B), t)
}
pub(super) fn h(at: Pos, t: Test) -> Cond {
    Cond::Test(at.load(Size::H), t)
}

pub(super) const ETH_IP: u16 = 0x0800;
pub(super) const ETH_IP6: u16 = 0x86dd;
pub(super) const ETH_ARP: u16 = 0x0806;
pub(super) const ETH_RARP: u16 = 0x8035;
pub(super) const ETH_MPLS: u16 = 0x8847;
pub(super) const ETH_PPPOED: u16 = 0x8863;
pub(super) const ETH_PPPOES: u16 = 0x8864;
pub(super) const ETHERMTU: u32 = 1500;

/// Headers an unrolled `ip6 protochain` walks (libpcap loops without bound).
pub const PROTOCHAIN_DEPTH_V6: usize = 110;
/// AH headers an unrolled `ip protochain` walks.
pub const PROTOCHAIN_DEPTH_V4: usize = 8;

/// A position in the frame: a constant, plus the value of a scratch cell
/// when the offset has a variable part (after a live `vlan` or `geneve`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pos {
    pub(super) reg: Option<u32>,
    pub(super) k: u32,
}

impl Pos {
    pub(super) const fn at(k: u32) -> Pos {
        Pos { reg: None, k }
    }
    pub(super) fn load(self, size: Size) -> Load {
        match self.reg {
            None => Load::Abs(size, self.k),
            Some(r) => Load::Var(size, r, self.k),
        }
    }
}

impl std::ops::Add<u32> for Pos {
    type Output = Pos;
    fn add(self, d: u32) -> Pos {
        Pos {
            reg: self.reg,
            k: self.k.wrapping_add(d),
        }
    }
}

impl std::ops::AddAssign<u32> for Pos {
    fn add_assign(&mut self, d: u32) {
        self.k = self.k.wrapping_add(d);
    }
}

impl std::ops::Sub<u32> for Pos {
    type Output = Pos;
    fn sub(self, d: u32) -> Pos {
        Pos {
            reg: self.reg,
            k: self.k.wrapping_sub(d),
        }
    }
}

/// libpcap's decoding offsets, which `vlan`, `mpls` and `pppoes` move for
/// every test generated after them (in expression order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Offs {
    /// Start of the link header (`ether[...]`, MAC addresses).
    pub(super) linkhdr: Pos,
    /// The link-layer type field.
    pub(super) linktype: Pos,
    /// The link-layer payload.
    pub(super) linkpl: Pos,
    /// Network header, relative to `linkpl` (grows past MPLS labels).
    pub(super) nl: u32,
    /// What follows an 802.2 LLC header without SNAP, relative to
    /// `linkpl` (libpcap's `off_nl_nosnap`: 3 on Ethernet, else 0).
    pub(super) nosnap: u32,
    /// MPLS labels passed.
    pub(super) mpls: u32,
    /// After `pppoes`: the link type is PPP's protocol field.
    pub(super) ppp: bool,
    /// `vlan` keywords seen.
    pub(super) vlans: u32,
    /// After `geneve`: the link header is the encapsulated frame's.
    pub(super) geneve: bool,
    /// The link type of the outermost header (Ethernet inside `geneve`).
    pub(super) link: LinkType,
    /// Frames from a capture file (`tcpdump -r`), not a live socket or
    /// libpcap's dead handle (`-d -y`).
    pub(super) savefile: bool,
}

impl Offs {
    pub(super) const ETHERNET: Offs = Offs {
        linkhdr: Pos::at(0),
        linktype: Pos::at(12),
        linkpl: Pos::at(14),
        nl: 0,
        nosnap: 3,
        mpls: 0,
        ppp: false,
        vlans: 0,
        geneve: false,
        link: LinkType::Ethernet,
        savefile: false,
    };

    /// The offsets libpcap starts with for `link` (its `init_linktype`).
    pub(super) fn for_link(link: LinkType, savefile: bool) -> Offs {
        let at = |linktype: u32, linkpl: u32| Offs {
            linktype: Pos::at(linktype),
            linkpl: Pos::at(linkpl),
            nosnap: 0,
            link,
            savefile,
            ..Offs::ETHERNET
        };
        match link {
            LinkType::Ethernet => Offs {
                savefile,
                ..Offs::ETHERNET
            },
            LinkType::LinuxSll => at(14, 16),
            LinkType::LinuxSll2 => at(0, 20),
            // No link-layer type field: `linktype` is never read.
            LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => at(0, 0),
            LinkType::Null | LinkType::Loop => at(0, 4),
        }
    }

    /// The link-layer keywords libpcap refuses on this link type, with its
    /// message (`vlan`, `mpls`, `llc`, Ethernet addresses).
    pub(super) fn link_only(&self, p: &Prim) -> Result<(), ExprErrorKind> {
        // After `pppoes`, libpcap's link type is PPP (which MPLS can follow).
        if self.ppp && matches!(p, Prim::Mpls(_)) || self.link == LinkType::Ethernet && !self.ppp {
            return Ok(());
        }
        let what = match p {
            Prim::EtherHost { .. } => LinkOnly::EtherAddress,
            Prim::EtherBroadcast => LinkOnly::Broadcast,
            Prim::EtherMulticast => LinkOnly::Multicast,
            Prim::Vlan(_) => LinkOnly::Vlan,
            Prim::Mpls(_) => LinkOnly::Mpls,
            Prim::Llc(_) => LinkOnly::Llc,
            _ => return Ok(()),
        };
        Err(ExprErrorKind::NotOnLink {
            what,
            link: self.link_description(),
        })
    }

    /// libpcap's description of the link type in force (PPP after `pppoes`).
    pub(super) fn link_description(&self) -> &'static str {
        if self.ppp {
            "PPP"
        } else {
            self.link.description()
        }
    }

    /// Absolute offset of the network header.
    pub(super) fn net(&self) -> Pos {
        self.linkpl + self.nl
    }

    /// `ip proto n` (IPv4).
    pub(super) fn ip4_proto(&self, n: u8) -> Result<Cond, ExprErrorKind> {
        Ok(and(vec![
            self.linktype(ETH_IP)?,
            b(self.net() + 9, Test::Eq(n as u32)),
        ]))
    }
    /// `ip6 proto n`: the next header, direct or after one fragment header.
    pub(super) fn ip6_proto(&self, n: u8) -> Result<Cond, ExprErrorKind> {
        let nh = self.net() + 6;
        Ok(and(vec![
            self.linktype(ETH_IP6)?,
            or(vec![
                b(nh, Test::Eq(n as u32)),
                and(vec![
                    b(nh, Test::Eq(44)),
                    b(self.net() + 40, Test::Eq(n as u32)),
                ]),
            ]),
        ]))
    }
    /// `(ip[6:2] & 0x1fff) == 0`
    pub(super) fn not_fragment(&self) -> Cond {
        h(self.net() + 6, Test::MaskEq(0x1fff, 0))
    }

    /// The protocol keyword as a condition (libpcap's gen_proto_abbrev).
    pub(super) fn proto(&self, p: Proto) -> Result<Cond, ExprErrorKind> {
        Ok(match p {
            Proto::Tcp | Proto::Udp | Proto::Sctp | Proto::Pim | Proto::Ah | Proto::Esp => {
                let n = p.ip_proto().unwrap();
                or(vec![self.ip4_proto(n)?, self.ip6_proto(n)?])
            }
            Proto::Icmp | Proto::Igmp | Proto::Igrp | Proto::Vrrp | Proto::Carp => {
                self.ip4_proto(p.ip_proto().unwrap())?
            }
            Proto::Icmp6 => self.ip6_proto(58)?,
            Proto::Ether => return Err(ExprErrorKind::EtherQualifier),
            Proto::Esis | Proto::Isis | Proto::Clnp => self.iso_proto(p.nlpid().unwrap())?,
            Proto::IsisL1
            | Proto::IsisL2
            | Proto::IsisIih
            | Proto::IsisLsp
            | Proto::IsisSnp
            | Proto::IsisCsnp
            | Proto::IsisPsnp => {
                let pdus = p.isis_pdus().unwrap();
                or(pdus
                    .iter()
                    .map(|&t| self.isis_proto(t))
                    .collect::<Result<_, _>>()?)
            }
            other => self.linktype(other.link_proto().expect("a link-level protocol"))?,
        })
    }

    pub(super) fn prim(&self, p: &Prim) -> Result<Cond, ExprErrorKind> {
        let net = self.net();
        Ok(match *p {
            Prim::Proto(p) => self.proto(p)?,
            Prim::Net4 {
                proto,
                dir: d,
                addr,
                mask,
            } => {
                let ip = || -> Result<Cond, ExprErrorKind> {
                    Ok(and(vec![
                        self.linktype(ETH_IP)?,
                        dir(
                            d,
                            word_test(net + 12, addr, mask),
                            word_test(net + 16, addr, mask),
                        ),
                    ]))
                };
                let arp = |t| -> Result<Cond, ExprErrorKind> {
                    Ok(and(vec![
                        self.linktype(t)?,
                        dir(
                            d,
                            word_test(net + 14, addr, mask),
                            word_test(net + 24, addr, mask),
                        ),
                    ]))
                };
                match proto {
                    // Inside MPLS only IPv4 is looked for.
                    None if self.mpls > 0 => ip()?,
                    None => or(vec![ip()?, arp(ETH_ARP)?, arp(ETH_RARP)?]),
                    Some(Proto::Ip) => ip()?,
                    Some(Proto::Arp) => arp(ETH_ARP)?,
                    Some(Proto::Rarp) => arp(ETH_RARP)?,
                    Some(other) => {
                        return Err(ExprErrorKind::Modifier {
                            qualifier: other.name(),
                            target: "host",
                        })
                    }
                }
            }
            Prim::Net6 {
                dir: d,
                addr,
                prefix,
            } => {
                let side = |off: Pos| {
                    let mut v = Vec::new();
                    for i in 0..4u32 {
                        let bits = (prefix as i32 - 32 * i as i32).clamp(0, 32) as u32;
                        if bits == 0 {
                            continue;
                        }
                        let mask = if bits == 32 {
                            u32::MAX
                        } else {
                            u32::MAX << (32 - bits)
                        };
                        let w = u32::from_be_bytes(
                            addr[4 * i as usize..4 * i as usize + 4].try_into().unwrap(),
                        );
                        v.push(word_test(off + 4 * i, w, mask));
                    }
                    and(v)
                };
                and(vec![
                    self.linktype(ETH_IP6)?,
                    dir(d, side(net + 8), side(net + 24)),
                ])
            }
            Prim::Port {
                proto,
                dir: d,
                lo,
                hi,
            } => {
                let protos: Vec<u8> = match proto {
                    Some(Proto::Tcp) => vec![6],
                    Some(Proto::Udp) => vec![17],
                    Some(Proto::Sctp) => vec![132],
                    _ => vec![6, 17, 132],
                };
                let port_test = |load: Load| -> Cond {
                    if lo == hi {
                        Cond::Test(load, Test::Eq(lo as u32))
                    } else {
                        and(vec![
                            Cond::Test(load, Test::Ge(lo as u32)),
                            not(Cond::Test(load, Test::Gt(hi as u32))),
                        ])
                    }
                };
                let next = or(protos
                    .iter()
                    .map(|&n| b(net + 6, Test::Eq(n as u32)))
                    .collect());
                let ports6 = dir(
                    d,
                    port_test((net + 40).load(Size::H)),
                    port_test((net + 42).load(Size::H)),
                );
                let v6 = and(vec![self.linktype(ETH_IP6)?, next, ports6]);
                let pr = or(protos
                    .iter()
                    .map(|&n| b(net + 9, Test::Eq(n as u32)))
                    .collect());
                let tr = |off| Load::Transport {
                    size: Size::H,
                    iphdr: net,
                    off: net.k + off,
                };
                let ports4 = dir(d, port_test(tr(0)), port_test(tr(2)));
                let v4 = and(vec![
                    self.linktype(ETH_IP)?,
                    pr,
                    self.not_fragment(),
                    ports4,
                ]);
                or(vec![v6, v4])
            }
            Prim::EtherHost { dir: d, mac } => {
                let side = |off: Pos| {
                    and(vec![
                        word_test(
                            off + 2,
                            u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]),
                            u32::MAX,
                        ),
                        h(off, Test::Eq(u16::from_be_bytes([mac[0], mac[1]]) as u32)),
                    ])
                };
                dir(d, side(self.linkhdr + 6), side(self.linkhdr))
            }
            Prim::EtherBroadcast => self.prim(&Prim::EtherHost {
                dir: Dir::Dst,
                mac: [0xff; 6],
            })?,
            Prim::EtherMulticast => b(self.linkhdr, Test::Set(1)),
            Prim::EtherProto(t) => self.linktype(t)?,
            Prim::IpMulticast => and(vec![self.linktype(ETH_IP)?, b(net + 16, Test::Ge(224))]),
            Prim::Ip6Multicast => and(vec![self.linktype(ETH_IP6)?, b(net + 24, Test::Eq(255))]),
            Prim::IpProto { v4, v6, proto } => {
                let mut alts = Vec::new();
                if v4 {
                    alts.push(self.ip4_proto(proto)?);
                }
                if v6 {
                    alts.push(self.ip6_proto(proto)?);
                }
                or(alts)
            }
            Prim::Less(n) => not(Cond::Test(Load::Len, Test::Gt(n))),
            Prim::Greater(n) => Cond::Test(Load::Len, Test::Ge(n)),
            Prim::Llc(k) => self.llc(k),
            Prim::IsoProto(n) => self.iso_proto(n)?,
            Prim::IsisProto(n) => self.isis_proto(n)?,
            Prim::DecnetHost { dir, addr } => self.decnet_host(dir, addr)?,
            Prim::Direction(outbound) => self.direction(outbound)?,
            Prim::Ifindex(n) => self.ifindex(n)?,
            Prim::Pppoed => self.linktype(ETH_PPPOED)?,
            Prim::Vlan(_)
            | Prim::Mpls(_)
            | Prim::Pppoes(_)
            | Prim::Protochain { .. }
            | Prim::Geneve(_) => {
                unreachable!("handled by Gen")
            }
        })
    }
}

pub(super) fn dir(d: Dir, src: Cond, dst: Cond) -> Cond {
    match d {
        Dir::Src => src,
        Dir::Dst => dst,
        Dir::SrcOrDst => or(vec![src, dst]),
        Dir::SrcAndDst => and(vec![src, dst]),
    }
}

pub(super) fn word_test(at: Pos, addr: u32, mask: u32) -> Cond {
    let t = if mask == u32::MAX {
        Test::Eq(addr)
    } else {
        Test::MaskEq(mask, addr & mask)
    };
    Cond::Test(at.load(Size::W), t)
}

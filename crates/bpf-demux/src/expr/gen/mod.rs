//! Code generation: a [`Node`] tree to a forward-only cBPF program.
//!
//! Each node is compiled with a true and a false label (`and`: the left
//! side's true label is the right side's start; `or`: its false label is).
//! Labels are resolved at the end; a conditional jump whose target is more
//! than 255 instructions ahead goes through a `ja` trampoline placed right
//! after it. Offsets are those of an Ethernet frame as libpcap reads it
//! offline (tags in the frame).

mod encap;

use super::ast::*;
use super::{ExprError, ExprErrorKind};
use crate::cbpf::layout::{layout, Item, Label};
use crate::cbpf::opcode::{AluOp, JmpOp, Op, Size, Src};
use crate::cbpf::Insn;

/// A test on one loaded value.
#[derive(Clone, Copy)]
enum Test {
    Eq(u32),
    MaskEq(u32, u32),
    Ge(u32),
    Gt(u32),
    Set(u32),
    /// A == X.
    EqX,
}

#[derive(Clone, Copy)]
enum Load {
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

enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Test(Load, Test),
}

fn and(v: Vec<Cond>) -> Cond {
    Cond::And(v)
}
fn or(v: Vec<Cond>) -> Cond {
    Cond::Or(v)
}
fn not(c: Cond) -> Cond {
    Cond::Not(Box::new(c))
}
fn b(at: Pos, t: Test) -> Cond {
    Cond::Test(at.load(Size::B), t)
}
fn h(at: Pos, t: Test) -> Cond {
    Cond::Test(at.load(Size::H), t)
}

const ETH_IP: u16 = 0x0800;
const ETH_IP6: u16 = 0x86dd;
const ETH_ARP: u16 = 0x0806;
const ETH_RARP: u16 = 0x8035;
const ETH_MPLS: u16 = 0x8847;
const ETH_PPPOED: u16 = 0x8863;
const ETH_PPPOES: u16 = 0x8864;
const ETHERMTU: u32 = 1500;
const LLCSAP_8021D: u16 = 0x42;

/// Headers an unrolled `ip6 protochain` walks (libpcap loops without bound).
pub const PROTOCHAIN_DEPTH_V6: usize = 110;
/// AH headers an unrolled `ip protochain` walks.
pub const PROTOCHAIN_DEPTH_V4: usize = 8;

/// A position in the frame: a constant, plus the value of a scratch cell
/// when the offset has a variable part (after a live `vlan` or `geneve`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pos {
    reg: Option<u32>,
    k: u32,
}

impl Pos {
    const fn at(k: u32) -> Pos {
        Pos { reg: None, k }
    }
    fn load(self, size: Size) -> Load {
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
#[derive(Clone, Copy, Debug)]
struct Offs {
    /// Start of the link header (`ether[...]`, MAC addresses).
    linkhdr: Pos,
    /// The link-layer type field.
    linktype: Pos,
    /// The link-layer payload.
    linkpl: Pos,
    /// Network header, relative to `linkpl` (grows past MPLS labels).
    nl: u32,
    /// MPLS labels passed.
    mpls: u32,
    /// After `pppoes`: the link type is PPP's protocol field.
    ppp: bool,
    /// `vlan` keywords seen.
    vlans: u32,
    /// After `geneve`: the link header is the encapsulated frame's.
    geneve: bool,
}

impl Offs {
    const ETHERNET: Offs = Offs {
        linkhdr: Pos::at(0),
        linktype: Pos::at(12),
        linkpl: Pos::at(14),
        nl: 0,
        mpls: 0,
        ppp: false,
        vlans: 0,
        geneve: false,
    };

    /// Absolute offset of the network header.
    fn net(&self) -> Pos {
        self.linkpl + self.nl
    }

    /// libpcap's gen_linktype for Ethernet (and PPP after `pppoes`, and
    /// the IP version checks inside MPLS).
    fn linktype(&self, t: u16) -> Result<Cond, ExprErrorKind> {
        if self.mpls > 0 {
            let version = match t {
                ETH_IP => 0x40,
                ETH_IP6 => 0x60,
                _ => return Err(ExprErrorKind::ProtocolOverMpls),
            };
            return Ok(and(vec![
                b(self.net() - 2, Test::MaskEq(0x01, 0x01)),
                b(self.net(), Test::MaskEq(0xf0, version)),
            ]));
        }
        if self.ppp {
            let ppp = match t {
                ETH_IP => 0x0021,
                ETH_IP6 => 0x0057,
                LLCSAP_8021D => 0x0031,
                other => other as u32,
            };
            return Ok(h(self.linktype, Test::Eq(ppp)));
        }
        Ok(if t as u32 <= ETHERMTU {
            and(vec![
                not(h(self.linktype, Test::Gt(ETHERMTU))),
                b(self.linktype + 2, Test::Eq(t as u32)),
            ])
        } else {
            h(self.linktype, Test::Eq(t as u32))
        })
    }

    /// `ip proto n` (IPv4).
    fn ip4_proto(&self, n: u8) -> Result<Cond, ExprErrorKind> {
        Ok(and(vec![
            self.linktype(ETH_IP)?,
            b(self.net() + 9, Test::Eq(n as u32)),
        ]))
    }
    /// `ip6 proto n`: the next header, direct or after one fragment header.
    fn ip6_proto(&self, n: u8) -> Result<Cond, ExprErrorKind> {
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
    fn not_fragment(&self) -> Cond {
        h(self.net() + 6, Test::MaskEq(0x1fff, 0))
    }

    /// The protocol keyword as a condition (libpcap's gen_proto_abbrev).
    fn proto(&self, p: Proto) -> Result<Cond, ExprErrorKind> {
        Ok(match p {
            Proto::Ip => self.linktype(ETH_IP)?,
            Proto::Ip6 => self.linktype(ETH_IP6)?,
            Proto::Arp => self.linktype(ETH_ARP)?,
            Proto::Rarp => self.linktype(ETH_RARP)?,
            Proto::Tcp | Proto::Udp | Proto::Sctp | Proto::Pim | Proto::Ah | Proto::Esp => {
                let n = p.ip_proto().unwrap();
                or(vec![self.ip4_proto(n)?, self.ip6_proto(n)?])
            }
            Proto::Icmp | Proto::Igmp | Proto::Igrp | Proto::Vrrp | Proto::Carp => {
                self.ip4_proto(p.ip_proto().unwrap())?
            }
            Proto::Icmp6 => self.ip6_proto(58)?,
            Proto::Ether => return Err(ExprErrorKind::EtherQualifier),
        })
    }

    fn prim(&self, p: &Prim) -> Result<Cond, ExprErrorKind> {
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
            Prim::Llc => and(vec![
                not(h(self.linktype, Test::Gt(ETHERMTU))),
                not(h(self.linkpl, Test::Eq(0xffff))),
            ]),
            Prim::Stp => self.linktype(LLCSAP_8021D)?,
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

fn dir(d: Dir, src: Cond, dst: Cond) -> Cond {
    match d {
        Dir::Src => src,
        Dir::Dst => dst,
        Dir::SrcOrDst => or(vec![src, dst]),
        Dir::SrcAndDst => and(vec![src, dst]),
    }
}

fn word_test(at: Pos, addr: u32, mask: u32) -> Cond {
    let t = if mask == u32::MAX {
        Test::Eq(addr)
    } else {
        Test::MaskEq(mask, addr & mask)
    };
    Cond::Test(at.load(Size::W), t)
}

pub struct Gen {
    items: Vec<Item>,
    labels: usize,
    /// Scratch cells in use by arithmetic (from M[0] up).
    scratch: u32,
    /// Scratch cells kept for the rest of the program (from M[15] down).
    kept: u32,
    o: Offs,
    /// Compile for a live Linux socket: the outer VLAN tag is in metadata.
    live: bool,
}

impl Gen {
    pub fn new(live: bool) -> Gen {
        Gen {
            items: Vec::new(),
            labels: 0,
            scratch: 0,
            kept: 0,
            o: Offs::ETHERNET,
            live,
        }
    }
    fn label(&mut self) -> Label {
        self.labels += 1;
        self.labels - 1
    }
    fn stmt(&mut self, op: Op, k: u32) {
        self.items.push(Item::Stmt(op, k));
    }
    fn jmp(&mut self, op: JmpOp, src: Src, k: u32, t: Label, f: Label) {
        self.items.push(Item::Jmp { op, src, k, t, f });
    }

    /// Puts the X part of an indexed load into X (without the final load).
    fn load_x(&mut self, l: Load) {
        match l {
            Load::Var(_, var, _) => self.stmt(Op::LdxMem, var),
            Load::Transport {
                iphdr: Pos { reg: None, k },
                ..
            } => self.stmt(Op::LdxMsh, k),
            Load::Transport {
                iphdr: Pos { reg: Some(v), k },
                ..
            } => {
                self.stmt(Op::LdxMem, v);
                self.stmt(Op::LdInd(Size::B), k);
                self.stmt(Op::Alu(AluOp::And, Src::K), 0xf);
                self.stmt(Op::Alu(AluOp::Lsh, Src::K), 2);
                self.stmt(Op::Alu(AluOp::Add, Src::X), 0);
                self.stmt(Op::Tax, 0);
            }
            Load::Abs(..) | Load::Len | Load::Mems { .. } => {}
        }
    }

    fn load(&mut self, l: Load) {
        match l {
            Load::Abs(s, off) => self.stmt(Op::LdAbs(s), off),
            Load::Var(s, var, off) => {
                self.stmt(Op::LdxMem, var);
                self.stmt(Op::LdInd(s), off);
            }
            Load::Transport { size, off, .. } => {
                // libpcap's gen_loadx_iphdrlen, then the indexed load.
                self.load_x(l);
                self.stmt(Op::LdInd(size), off);
            }
            Load::Len => self.stmt(Op::LdLen, 0),
            Load::Mems { a, x } => {
                self.stmt(Op::LdMem, a);
                self.stmt(Op::LdxMem, x);
            }
        }
    }

    /// A conjunction (`all`) or disjunction of conditions: each but the
    /// last continues to the next one on true (conjunction) or false.
    fn chain(&mut self, v: &[Cond], all: bool, t: Label, f: Label) {
        let Some((last, init)) = v.split_last() else {
            // Empty: true for a conjunction, false for a disjunction.
            self.items.push(Item::Ja(if all { t } else { f }));
            return;
        };
        for x in init {
            let next = self.label();
            if all {
                self.cond(x, next, f);
            } else {
                self.cond(x, t, next);
            }
            self.items.push(Item::Place(next));
        }
        self.cond(last, t, f);
    }

    fn cond(&mut self, c: &Cond, t: Label, f: Label) {
        match c {
            Cond::Not(c) => self.cond(c, f, t),
            Cond::And(v) => self.chain(v, true, t, f),
            Cond::Or(v) => self.chain(v, false, t, f),
            Cond::Test(l, test) => {
                self.load(*l);
                match *test {
                    Test::Eq(k) => self.jmp(JmpOp::Eq, Src::K, k, t, f),
                    Test::MaskEq(m, k) => {
                        self.stmt(Op::Alu(AluOp::And, Src::K), m);
                        self.jmp(JmpOp::Eq, Src::K, k, t, f)
                    }
                    Test::Ge(k) => self.jmp(JmpOp::Ge, Src::K, k, t, f),
                    Test::Gt(k) => self.jmp(JmpOp::Gt, Src::K, k, t, f),
                    Test::Set(k) => self.jmp(JmpOp::Set, Src::K, k, t, f),
                    Test::EqX => self.jmp(JmpOp::Eq, Src::X, 0, t, f),
                }
            }
        }
    }

    pub fn node(&mut self, n: &Node, t: Label, f: Label) -> Result<(), ExprError> {
        match n {
            Node::And(a, b2) => {
                let m = self.label();
                self.node(a, m, f)?;
                self.items.push(Item::Place(m));
                self.node(b2, t, f)
            }
            Node::Or(a, b2) => {
                let m = self.label();
                self.node(a, t, m)?;
                self.items.push(Item::Place(m));
                self.node(b2, t, f)
            }
            Node::Not(a) => self.node(a, f, t),
            Node::Prim(Prim::Protochain { v4, v6, proto }, col) => {
                let r = if *v4 && *v6 {
                    let m = self.label();
                    self.protochain(false, *proto, t, m).and_then(|_| {
                        self.items.push(Item::Place(m));
                        self.protochain(true, *proto, t, f)
                    })
                } else {
                    self.protochain(*v6, *proto, t, f)
                };
                r.map_err(|m| ExprError::new(*col, m))
            }
            Node::Prim(Prim::Vlan(id), col)
                if self.live
                    && self.o.vlans == 0
                    && self.o.linkpl.reg.is_none()
                    && self.o.mpls == 0
                    && !self.o.ppp =>
            {
                self.live_vlan(*id, t, f)
                    .map_err(|m| ExprError::new(*col, m))
            }
            Node::Prim(Prim::Geneve(vni), col) => {
                self.geneve(*vni, t, f).map_err(|m| ExprError::new(*col, m))
            }
            Node::Prim(
                p @ (Prim::EtherHost { .. } | Prim::EtherBroadcast | Prim::EtherMulticast),
                col,
            ) if self.o.geneve => {
                // libpcap's gen_geneve_ll_check: the encapsulated packet
                // has a link header (it is Ethernet, not bare IP).
                let (Some(lh), Some(pl)) = (self.o.linkhdr.reg, self.o.linkpl.reg) else {
                    unreachable!("set by geneve")
                };
                let has_ll = not(Cond::Test(Load::Mems { a: lh, x: pl }, Test::EqX));
                let c = self.o.prim(p).map_err(|m| ExprError::new(*col, m))?;
                self.cond(&and(vec![has_ll, c]), t, f);
                Ok(())
            }
            Node::Prim(p, col) => {
                let c = self.prim(p).map_err(|m| ExprError::new(*col, m))?;
                self.cond(&c, t, f);
                Ok(())
            }
            Node::Rel(op, l, r, col) => self
                .relation(*op, l, r, t, f)
                .map_err(|m| ExprError::new(*col, m)),
        }
    }

    /// A primitive's condition; `vlan`, `mpls` and `pppoes` then move the
    /// offsets for everything after them, as libpcap does.
    fn prim(&mut self, p: &Prim) -> Result<Cond, ExprErrorKind> {
        let o = self.o;
        match *p {
            Prim::Vlan(id) => {
                if o.mpls > 0 {
                    return Err(ExprErrorKind::VlanAfterMpls);
                }
                let mut c = vec![or(vec![
                    o.linktype(0x8100)?,
                    o.linktype(0x88a8)?,
                    o.linktype(0x9100)?,
                ])];
                if let Some(id) = id {
                    if id > 0x0fff {
                        return Err(ExprErrorKind::VlanRange(id));
                    }
                    c.push(h(o.net(), Test::MaskEq(0x0fff, id)));
                }
                self.o.linkpl += 4;
                self.o.linktype += 4;
                self.o.vlans += 1;
                Ok(and(c))
            }
            Prim::Mpls(label) => {
                let mut c = vec![if o.mpls > 0 {
                    // Bottom-of-stack bit of the previous label clear.
                    b(o.net() - 4 + 2, Test::MaskEq(0x01, 0))
                } else {
                    o.linktype(ETH_MPLS)?
                }];
                if let Some(l) = label {
                    if l > 0xfffff {
                        return Err(ExprErrorKind::MplsRange(l));
                    }
                    c.push(Cond::Test(
                        o.net().load(Size::W),
                        Test::MaskEq(0xfffff000, l << 12),
                    ));
                }
                self.o.nl += 4;
                self.o.mpls += 1;
                Ok(and(c))
            }
            Prim::Pppoes(sess) => {
                let mut c = vec![o.linktype(ETH_PPPOES)?];
                if let Some(s) = sess {
                    if s > 0xffff {
                        return Err(ExprErrorKind::PppoeRange(s));
                    }
                    c.push(Cond::Test(o.net().load(Size::W), Test::MaskEq(0xffff, s)));
                }
                let hdr = o.linkpl + o.nl + 6;
                self.o = Offs {
                    linkhdr: hdr,
                    linktype: hdr,
                    linkpl: hdr + 2,
                    nl: 0,
                    ppp: true,
                    ..o
                };
                Ok(and(c))
            }
            _ => o.prim(p),
        }
    }

    /// Conditions under which an accessor's value exists (libpcap's gen_load).
    fn accessor_conds(&self, a: &Arith, out: &mut Vec<Cond>) -> Result<(), ExprErrorKind> {
        let o = &self.o;
        match a {
            Arith::Load { proto, index, .. } => {
                self.accessor_conds(index, out)?;
                match proto {
                    Proto::Ether => {}
                    Proto::Ip | Proto::Ip6 | Proto::Arp | Proto::Rarp => out.push(o.proto(*proto)?),
                    p if p.is_ipv4_transport() => {
                        out.push(o.proto(*proto)?);
                        out.push(o.not_fragment());
                    }
                    Proto::Icmp6 => out.push(o.proto(*proto)?),
                    _ => return Err(ExprErrorKind::UnsupportedAccessor(proto.name())),
                }
            }
            // As libpcap's gen_arth: only the left operand's conditions
            // survive an arithmetic operator.
            Arith::Bin(_, x, _) => self.accessor_conds(x, out)?,
            Arith::Neg(x) => self.accessor_conds(x, out)?,
            Arith::Num(_) | Arith::Len => {}
        }
        Ok(())
    }

    fn alloc(&mut self) -> Result<u32, ExprErrorKind> {
        if self.scratch + self.kept >= 16 {
            return Err(ExprErrorKind::TooComplex);
        }
        self.scratch += 1;
        Ok(self.scratch - 1)
    }

    /// Computes `a` into A.
    fn arith(&mut self, a: &Arith) -> Result<(), ExprErrorKind> {
        match a {
            Arith::Num(k) => self.stmt(Op::LdImm, *k),
            Arith::Len => self.stmt(Op::LdLen, 0),
            Arith::Neg(x) => {
                self.arith(x)?;
                self.stmt(Op::Neg, 0);
            }
            Arith::Load { proto, index, size } => {
                let s = match size {
                    1 => Size::B,
                    2 => Size::H,
                    _ => Size::W,
                };
                let net = self.o.net();
                let base = match proto {
                    Proto::Ether => self.o.linkhdr,
                    Proto::Icmp6 => net + 40,
                    _ => net,
                };
                let transport = proto.is_ipv4_transport();
                // What X must hold: the IPv4 header length for a transport
                // (plus the variable offset part), or the variable part.
                let x_part = if transport {
                    Some(Load::Transport {
                        size: s,
                        iphdr: net,
                        off: 0,
                    })
                } else {
                    base.reg.map(|v| Load::Var(s, v, 0))
                };
                match &**index {
                    Arith::Num(k) => match x_part {
                        None => self.stmt(Op::LdAbs(s), base.k.wrapping_add(*k)),
                        Some(l) => {
                            self.load_x(l);
                            self.stmt(Op::LdInd(s), base.k.wrapping_add(*k));
                        }
                    },
                    idx => {
                        self.arith(idx)?;
                        if let Some(l) = x_part {
                            let m = self.alloc()?;
                            self.stmt(Op::St, m);
                            self.load_x(l);
                            self.stmt(Op::LdMem, m);
                            self.stmt(Op::Alu(AluOp::Add, Src::X), 0);
                            self.scratch -= 1;
                        }
                        self.stmt(Op::Tax, 0);
                        self.stmt(Op::LdInd(s), base.k);
                    }
                }
            }
            Arith::Bin(op, x, y) => {
                self.arith(x)?;
                if let Arith::Num(k) = **y {
                    if matches!(op, AluOp::Div | AluOp::Mod) && k == 0 {
                        return Err(ExprErrorKind::DivisionByZero);
                    }
                    if matches!(op, AluOp::Lsh | AluOp::Rsh) && k > 31 {
                        return Err(ExprErrorKind::ShiftRange(k));
                    }
                    self.stmt(Op::Alu(*op, Src::K), k);
                } else {
                    let m = self.alloc()?;
                    self.stmt(Op::St, m);
                    self.arith(y)?;
                    self.stmt(Op::Tax, 0);
                    self.stmt(Op::LdMem, m);
                    self.stmt(Op::Alu(*op, Src::X), 0);
                    self.scratch -= 1;
                }
            }
        }
        Ok(())
    }

    fn relation(
        &mut self,
        op: RelOp,
        l: &Arith,
        r: &Arith,
        t: Label,
        f: Label,
    ) -> Result<(), ExprErrorKind> {
        let mut conds = Vec::new();
        self.accessor_conds(l, &mut conds)?;
        self.accessor_conds(r, &mut conds)?;
        if !conds.is_empty() {
            let go = self.label();
            self.cond(&Cond::And(conds), go, f);
            self.items.push(Item::Place(go));
        }
        self.arith(l)?;
        let src = if let Arith::Num(k) = r {
            Some(*k)
        } else {
            let m = self.alloc()?;
            self.stmt(Op::St, m);
            self.arith(r)?;
            self.stmt(Op::Tax, 0);
            self.stmt(Op::LdMem, m);
            self.scratch -= 1;
            None
        };
        let (jop, swap) = match op {
            RelOp::Eq => (JmpOp::Eq, false),
            RelOp::Ne => (JmpOp::Eq, true),
            RelOp::Gt => (JmpOp::Gt, false),
            RelOp::Ge => (JmpOp::Ge, false),
            RelOp::Lt => (JmpOp::Ge, true),
            RelOp::Le => (JmpOp::Gt, true),
        };
        let (tt, ff) = if swap { (f, t) } else { (t, f) };
        match src {
            Some(k) => self.jmp(jop, Src::K, k, tt, ff),
            None => self.jmp(jop, Src::X, 0, tt, ff),
        }
        Ok(())
    }

    /// The whole program: `ret #snaplen` when the tree holds, `ret #0` else.
    pub fn finish(mut self, root: &Node, snaplen: u32) -> Result<Vec<Insn>, ExprError> {
        let (t, f) = (self.label(), self.label());
        self.node(root, t, f)?;
        self.items.push(Item::Place(t));
        self.stmt(Op::RetK, snaplen);
        self.items.push(Item::Place(f));
        self.stmt(Op::RetK, 0);
        layout(&self.items, self.labels)
            .map_err(|e| ExprError::new(1, ExprErrorKind::TooLong { insns: e.insns }))
    }
}

//! Code generation: a [`Node`] tree to a forward-only cBPF program.
//!
//! Each node is compiled with a true and a false label (`and`: the left
//! side's true label is the right side's start; `or`: its false label is).
//! Labels are resolved at the end; a conditional jump whose target is more
//! than 255 instructions ahead goes through a `ja` trampoline placed right
//! after it. Offsets are those of an Ethernet frame as libpcap reads it
//! offline (tags in the frame).

use super::ast::*;
use super::ExprError;
use crate::cbpf::opcode::{code, AluOp, JmpOp, Op, Size, Src};
use crate::cbpf::program::MAX_INSNS;
use crate::cbpf::Insn;

type Label = usize;

enum Item {
    Stmt(Insn),
    Jmp {
        code: u16,
        k: u32,
        t: Label,
        f: Label,
    },
    Ja(Label),
    Place(Label),
}

/// A test on one loaded value.
#[derive(Clone, Copy)]
enum Test {
    Eq(u32),
    MaskEq(u32, u32),
    Ge(u32),
    Gt(u32),
    Set(u32),
}

#[derive(Clone, Copy)]
enum Load {
    Abs(Size, u32),
    /// `[x + off]` with X = the IPv4 header length.
    Transport(Size, u32),
    Len,
}

enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Test(Load, Test),
}

fn eth(t: u16) -> Cond {
    Cond::Test(Load::Abs(Size::H, 12), Test::Eq(t as u32))
}
fn and(v: Vec<Cond>) -> Cond {
    Cond::And(v)
}
fn or(v: Vec<Cond>) -> Cond {
    Cond::Or(v)
}
fn b(off: u32, t: Test) -> Cond {
    Cond::Test(Load::Abs(Size::B, off), t)
}

const ETH_IP: u16 = 0x0800;
const ETH_IP6: u16 = 0x86dd;
const ETH_ARP: u16 = 0x0806;
const ETH_RARP: u16 = 0x8035;
const NET: u32 = 14;

/// `ip proto n` (IPv4), or the IPv6 next header (direct or after one
/// fragment header), as libpcap tests them.
fn ip4_proto(n: u8) -> Cond {
    and(vec![eth(ETH_IP), b(NET + 9, Test::Eq(n as u32))])
}
fn ip6_proto(n: u8) -> Cond {
    and(vec![
        eth(ETH_IP6),
        or(vec![
            b(NET + 6, Test::Eq(n as u32)),
            and(vec![
                b(NET + 6, Test::Eq(44)),
                b(NET + 40, Test::Eq(n as u32)),
            ]),
        ]),
    ])
}
fn not_fragment() -> Cond {
    // (ip[6:2] & 0x1fff) == 0
    Cond::Test(Load::Abs(Size::H, NET + 6), Test::MaskEq(0x1fff, 0))
}

/// The protocol keyword as a condition (libpcap's gen_proto_abbrev).
fn proto_cond(p: Proto) -> Result<Cond, String> {
    Ok(match p {
        Proto::Ip => eth(ETH_IP),
        Proto::Ip6 => eth(ETH_IP6),
        Proto::Arp => eth(ETH_ARP),
        Proto::Rarp => eth(ETH_RARP),
        Proto::Tcp | Proto::Udp | Proto::Sctp | Proto::Pim | Proto::Ah | Proto::Esp => {
            let n = p.ip_proto().unwrap();
            or(vec![ip4_proto(n), ip6_proto(n)])
        }
        Proto::Icmp | Proto::Igmp | Proto::Igrp | Proto::Vrrp | Proto::Carp => {
            ip4_proto(p.ip_proto().unwrap())
        }
        Proto::Icmp6 => ip6_proto(58),
        Proto::Ether => return Err("`ether` needs a qualifier".into()),
    })
}

fn dir(d: Dir, src: Cond, dst: Cond) -> Cond {
    match d {
        Dir::Src => src,
        Dir::Dst => dst,
        Dir::SrcOrDst => or(vec![src, dst]),
        Dir::SrcAndDst => and(vec![src, dst]),
    }
}

fn word_test(off: u32, addr: u32, mask: u32) -> Cond {
    let t = if mask == u32::MAX {
        Test::Eq(addr)
    } else {
        Test::MaskEq(mask, addr & mask)
    };
    Cond::Test(Load::Abs(Size::W, off), t)
}

fn prim_cond(p: &Prim) -> Result<Cond, String> {
    Ok(match *p {
        Prim::Proto(p) => proto_cond(p)?,
        Prim::Net4 {
            proto,
            dir: d,
            addr,
            mask,
        } => {
            let ip = || {
                and(vec![
                    eth(ETH_IP),
                    dir(
                        d,
                        word_test(NET + 12, addr, mask),
                        word_test(NET + 16, addr, mask),
                    ),
                ])
            };
            let arp = |t| {
                and(vec![
                    eth(t),
                    dir(
                        d,
                        word_test(NET + 14, addr, mask),
                        word_test(NET + 24, addr, mask),
                    ),
                ])
            };
            match proto {
                None => or(vec![ip(), arp(ETH_ARP), arp(ETH_RARP)]),
                Some(Proto::Ip) => ip(),
                Some(Proto::Arp) => arp(ETH_ARP),
                Some(Proto::Rarp) => arp(ETH_RARP),
                Some(other) => return Err(format!("'{}' modifier applied to host", other.name())),
            }
        }
        Prim::Net6 {
            dir: d,
            addr,
            prefix,
        } => {
            let side = |off: u32| {
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
            and(vec![eth(ETH_IP6), dir(d, side(NET + 8), side(NET + 24))])
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
            let (v4, v6) = match proto {
                Some(Proto::Ip) => (true, false),
                Some(Proto::Ip6) => (false, true),
                _ => (true, true),
            };
            let port_test = |load: Load| -> Cond {
                if lo == hi {
                    Cond::Test(load, Test::Eq(lo as u32))
                } else {
                    let lt_lo_fails = Cond::Test(load, Test::Ge(lo as u32));
                    // hi: not (v > hi)
                    and(vec![
                        lt_lo_fails,
                        not(Cond::Test(load, Test::Gt(hi as u32))),
                    ])
                }
            };
            let mut alts = Vec::new();
            if v6 {
                let next = or(protos
                    .iter()
                    .map(|&n| b(NET + 6, Test::Eq(n as u32)))
                    .collect());
                let ports = dir(
                    d,
                    port_test(Load::Abs(Size::H, NET + 40)),
                    port_test(Load::Abs(Size::H, NET + 42)),
                );
                alts.push(and(vec![eth(ETH_IP6), next, ports]));
            }
            if v4 {
                let pr = or(protos
                    .iter()
                    .map(|&n| b(NET + 9, Test::Eq(n as u32)))
                    .collect());
                let ports = dir(
                    d,
                    port_test(Load::Transport(Size::H, NET)),
                    port_test(Load::Transport(Size::H, NET + 2)),
                );
                alts.push(and(vec![eth(ETH_IP), pr, not_fragment(), ports]));
            }
            or(alts)
        }
        Prim::EtherHost { dir: d, mac } => {
            let side = |off: u32| {
                and(vec![
                    word_test(
                        off + 2,
                        u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]),
                        u32::MAX,
                    ),
                    Cond::Test(
                        Load::Abs(Size::H, off),
                        Test::Eq(u16::from_be_bytes([mac[0], mac[1]]) as u32),
                    ),
                ])
            };
            dir(d, side(6), side(0))
        }
        Prim::EtherBroadcast => prim_cond(&Prim::EtherHost {
            dir: Dir::Dst,
            mac: [0xff; 6],
        })?,
        Prim::EtherMulticast => b(0, Test::Set(1)),
        Prim::EtherProto(t) => {
            if t as u32 > 1500 {
                eth(t)
            } else {
                and(vec![
                    not(Cond::Test(Load::Abs(Size::H, 12), Test::Gt(1500))),
                    b(NET, Test::Eq(t as u32)),
                ])
            }
        }
        Prim::IpMulticast => and(vec![eth(ETH_IP), b(NET + 16, Test::Ge(224))]),
        Prim::Ip6Multicast => and(vec![eth(ETH_IP6), b(NET + 24, Test::Eq(255))]),
        Prim::IpProto { v4, v6, proto } => {
            let mut alts = Vec::new();
            if v4 {
                alts.push(ip4_proto(proto));
            }
            if v6 {
                alts.push(ip6_proto(proto));
            }
            or(alts)
        }
        Prim::Less(n) => not(Cond::Test(Load::Len, Test::Gt(n))),
        Prim::Greater(n) => Cond::Test(Load::Len, Test::Ge(n)),
    })
}

fn not(c: Cond) -> Cond {
    Cond::Not(Box::new(c))
}

pub struct Gen {
    items: Vec<Item>,
    labels: usize,
    /// Scratch cells in use by arithmetic.
    scratch: u32,
}

impl Gen {
    pub fn new() -> Gen {
        Gen {
            items: Vec::new(),
            labels: 0,
            scratch: 0,
        }
    }
    fn label(&mut self) -> Label {
        self.labels += 1;
        self.labels - 1
    }
    fn stmt(&mut self, code: u16, k: u32) {
        self.items.push(Item::Stmt(Insn::stmt(code, k)));
    }
    fn jmp(&mut self, op: JmpOp, src: Src, k: u32, t: Label, f: Label) {
        self.items.push(Item::Jmp {
            code: Op::Jmp(op, src).code(),
            k,
            t,
            f,
        });
    }

    fn load(&mut self, l: Load) {
        match l {
            Load::Abs(s, off) => self.stmt(Op::LdAbs(s).code(), off),
            Load::Transport(s, off) => {
                self.stmt(Op::LdxMsh.code(), NET);
                self.stmt(Op::LdInd(s).code(), off);
            }
            Load::Len => self.stmt(Op::LdLen.code(), 0),
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
                        self.stmt(Op::Alu(AluOp::And, Src::K).code(), m);
                        self.jmp(JmpOp::Eq, Src::K, k, t, f)
                    }
                    Test::Ge(k) => self.jmp(JmpOp::Ge, Src::K, k, t, f),
                    Test::Gt(k) => self.jmp(JmpOp::Gt, Src::K, k, t, f),
                    Test::Set(k) => self.jmp(JmpOp::Set, Src::K, k, t, f),
                }
            }
        }
    }

    pub fn node(&mut self, n: &Node, t: Label, f: Label) -> Result<(), String> {
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
            Node::Prim(p) => {
                let c = prim_cond(p)?;
                self.cond(&c, t, f);
                Ok(())
            }
            Node::Rel(op, l, r) => self.relation(*op, l, r, t, f),
        }
    }

    /// Conditions under which an accessor's value exists (libpcap's gen_load).
    fn accessor_conds(a: &Arith, out: &mut Vec<Cond>) -> Result<(), String> {
        match a {
            Arith::Load { proto, index, .. } => {
                Self::accessor_conds(index, out)?;
                match proto {
                    Proto::Ether => {}
                    Proto::Ip | Proto::Ip6 | Proto::Arp | Proto::Rarp => {
                        out.push(proto_cond(*proto)?)
                    }
                    Proto::Tcp
                    | Proto::Udp
                    | Proto::Sctp
                    | Proto::Icmp
                    | Proto::Igmp
                    | Proto::Igrp
                    | Proto::Pim
                    | Proto::Vrrp
                    | Proto::Carp => {
                        out.push(proto_cond(*proto)?);
                        out.push(not_fragment());
                    }
                    Proto::Icmp6 => out.push(proto_cond(*proto)?),
                    Proto::Ah | Proto::Esp => {
                        return Err(format!("`{}[...]` is not supported yet", proto.name()))
                    }
                }
            }
            // As libpcap's gen_arth: only the left operand's conditions
            // survive an arithmetic operator.
            Arith::Bin(_, x, _) => Self::accessor_conds(x, out)?,
            Arith::Neg(x) => Self::accessor_conds(x, out)?,
            Arith::Num(_) | Arith::Len => {}
        }
        Ok(())
    }

    fn alloc(&mut self) -> Result<u32, String> {
        if self.scratch >= 16 {
            return Err("expression too complex (needs more than 16 scratch cells)".into());
        }
        self.scratch += 1;
        Ok(self.scratch - 1)
    }

    /// Computes `a` into A.
    fn arith(&mut self, a: &Arith) -> Result<(), String> {
        match a {
            Arith::Num(k) => self.stmt(Op::LdImm.code(), *k),
            Arith::Len => self.stmt(Op::LdLen.code(), 0),
            Arith::Neg(x) => {
                self.arith(x)?;
                self.stmt(Op::Neg.code(), 0);
            }
            Arith::Load { proto, index, size } => {
                let s = match size {
                    1 => Size::B,
                    2 => Size::H,
                    _ => Size::W,
                };
                let base = match proto {
                    Proto::Ether => 0,
                    Proto::Icmp6 => NET + 40,
                    _ => NET,
                };
                let transport = matches!(
                    proto,
                    Proto::Tcp
                        | Proto::Udp
                        | Proto::Sctp
                        | Proto::Icmp
                        | Proto::Igmp
                        | Proto::Igrp
                        | Proto::Pim
                        | Proto::Vrrp
                        | Proto::Carp
                );
                match (&**index, transport) {
                    (Arith::Num(k), false) => self.stmt(Op::LdAbs(s).code(), base.wrapping_add(*k)),
                    (Arith::Num(k), true) => {
                        self.stmt(Op::LdxMsh.code(), NET);
                        self.stmt(Op::LdInd(s).code(), base.wrapping_add(*k));
                    }
                    (idx, tr) => {
                        self.arith(idx)?;
                        if tr {
                            let m = self.alloc()?;
                            self.stmt(Op::St.code(), m);
                            self.stmt(Op::LdxMsh.code(), NET);
                            self.stmt(Op::LdMem.code(), m);
                            self.stmt(Op::Alu(AluOp::Add, Src::X).code(), 0);
                            self.scratch -= 1;
                        }
                        self.stmt(Op::Tax.code(), 0);
                        self.stmt(Op::LdInd(s).code(), base);
                    }
                }
            }
            Arith::Bin(op, x, y) => {
                self.arith(x)?;
                if let Arith::Num(k) = **y {
                    if matches!(op, AluOp::Div | AluOp::Mod) && k == 0 {
                        return Err("division by zero".into());
                    }
                    if matches!(op, AluOp::Lsh | AluOp::Rsh) && k > 31 {
                        return Err(format!("shift by {k} is more than 31 bits"));
                    }
                    self.stmt(Op::Alu(*op, Src::K).code(), k);
                } else {
                    let m = self.alloc()?;
                    self.stmt(Op::St.code(), m);
                    self.arith(y)?;
                    self.stmt(Op::Tax.code(), 0);
                    self.stmt(Op::LdMem.code(), m);
                    self.stmt(Op::Alu(*op, Src::X).code(), 0);
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
    ) -> Result<(), String> {
        let mut conds = Vec::new();
        Self::accessor_conds(l, &mut conds)?;
        Self::accessor_conds(r, &mut conds)?;
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
            self.stmt(Op::St.code(), m);
            self.arith(r)?;
            self.stmt(Op::Tax.code(), 0);
            self.stmt(Op::LdMem.code(), m);
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
        self.node(root, t, f).map_err(|m| ExprError::new(1, m))?;
        self.items.push(Item::Place(t));
        self.stmt(code::RET | code::K, snaplen);
        self.items.push(Item::Place(f));
        self.stmt(code::RET | code::K, 0);
        layout(self.items, self.labels)
    }
}

/// Resolves labels, inserting `ja` trampolines for conditional jumps that
/// reach further than 255 instructions.
fn layout(items: Vec<Item>, nlabels: usize) -> Result<Vec<Insn>, ExprError> {
    // far[i]: (jt far, jf far) for the i-th item when it is a Jmp.
    let mut far = vec![(false, false); items.len()];
    loop {
        // Positions of instructions and labels.
        let mut pos = vec![0usize; items.len()];
        let mut at = vec![usize::MAX; nlabels];
        let mut pc = 0;
        for (i, it) in items.iter().enumerate() {
            pos[i] = pc;
            match it {
                Item::Place(l) => at[*l] = pc,
                Item::Jmp { .. } => pc += 1 + far[i].0 as usize + far[i].1 as usize,
                _ => pc += 1,
            }
        }
        if pc > MAX_INSNS {
            return Err(ExprError::new(
                1,
                format!(
                    "the program would have {pc} instructions; the kernel's limit is {MAX_INSNS}"
                ),
            ));
        }
        let mut changed = false;
        for (i, it) in items.iter().enumerate() {
            if let Item::Jmp { t, f, .. } = it {
                let next = pos[i] + 1;
                let need = (at[*t] - next > 255, at[*f] - next > 255);
                let now = (far[i].0 || need.0, far[i].1 || need.1);
                if now != far[i] {
                    far[i] = now;
                    changed = true;
                }
            }
        }
        if changed {
            continue;
        }
        let mut out = Vec::with_capacity(pc);
        for (i, it) in items.iter().enumerate() {
            match it {
                Item::Place(_) => {}
                Item::Stmt(s) => out.push(*s),
                Item::Ja(l) => out.push(Insn::stmt(Op::Ja.code(), (at[*l] - pos[i] - 1) as u32)),
                Item::Jmp { code, k, t, f } => {
                    let (ft, ff) = far[i];
                    let next = pos[i] + 1;
                    let mut tramp = Vec::new();
                    let jt = if ft {
                        tramp.push(*t);
                        0
                    } else {
                        (at[*t] - next) as u8
                    };
                    let jf = if ff {
                        tramp.push(*f);
                        ft as u8
                    } else {
                        (at[*f] - next) as u8
                    };
                    out.push(Insn::new(*code, jt, jf, *k));
                    for (n, l) in tramp.iter().enumerate() {
                        let here = pos[i] + 1 + n;
                        out.push(Insn::stmt(Op::Ja.code(), (at[*l] - here - 1) as u32));
                    }
                }
            }
        }
        return Ok(out);
    }
}

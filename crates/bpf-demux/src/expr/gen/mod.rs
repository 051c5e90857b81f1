//! Code generation: a [`Node`] tree to a forward-only cBPF program.
//!
//! Each node is compiled with a true and a false label (`and`: the left
//! side's true label is the right side's start; `or`: its false label is).
//! Labels are resolved at the end; a conditional jump whose target is more
//! than 255 instructions ahead goes through a `ja` trampoline placed right
//! after it. Offsets are those of an Ethernet frame as libpcap reads it
//! offline (tags in the frame).

mod cond;
mod encap;
mod link;
mod protochain;

use cond::*;

use super::ast::*;
use super::{ExprError, ExprErrorKind};
use crate::cbpf::layout::{layout, Item, Label};
use crate::cbpf::opcode::{AluOp, JmpOp, Op, Size, Src};
use crate::cbpf::Insn;
use crate::link::LinkType;

/// Whether a return of something other than 0 is reachable from the start
/// (jumps followed both ways; every target is forward).
fn accepts_somewhere(insns: &[Insn]) -> bool {
    let mut reach = vec![false; insns.len()];
    if let Some(r) = reach.first_mut() {
        *r = true;
    }
    for pc in 0..insns.len() {
        if !reach[pc] {
            continue;
        }
        let i = insns[pc];
        let mut go = |to: usize| {
            if let Some(r) = reach.get_mut(to) {
                *r = true;
            }
        };
        match i.op() {
            Some(Op::RetK) if i.k != 0 => return true,
            Some(Op::RetA) => return true,
            Some(Op::RetK) => {}
            Some(Op::Ja) => go(pc + 1 + i.k as usize),
            Some(Op::Jmp(..)) => {
                go(pc + 1 + i.jt as usize);
                go(pc + 1 + i.jf as usize);
            }
            _ => go(pc + 1),
        }
    }
    false
}

/// Whether the tree has a `protochain`.
fn has_protochain(n: &Node) -> bool {
    match n {
        Node::And(a, b) | Node::Or(a, b) => has_protochain(a) || has_protochain(b),
        Node::Not(a) => has_protochain(a),
        Node::Prim(p, _) => matches!(p, Prim::Protochain { .. }),
        Node::Rel(..) => false,
    }
}

pub struct Gen {
    items: Vec<Item>,
    labels: usize,
    /// Scratch cells in use by arithmetic (from M[0] up).
    scratch: u32,
    /// Scratch cells kept for the rest of the program (from M[15] down).
    kept: u32,
    o: Offs,
    /// What it was made with (a live socket: the outer VLAN tag is in
    /// metadata; the first pass of `protochain`).
    opts: super::Options,
    /// First pass: the `protochain` sites found (no code for them).
    sites: Option<Vec<protochain::Site>>,
    /// Second pass: the shared `protochain` walks.
    walks: Vec<protochain::Walk>,
    /// The program's final rejection (`ret #0`).
    reject: Label,
    /// Share IPv4 `protochain` walks too (when inline ones do not fit).
    share_v4: bool,
}

impl Gen {
    /// A generator for frames of `opts.link` (`live`: an Ethernet socket
    /// whose outer VLAN tag the kernel strips).
    pub fn new(opts: &super::Options) -> Gen {
        let link = opts.link;
        Gen {
            items: Vec::new(),
            labels: 0,
            scratch: 0,
            kept: 0,
            o: Offs::for_link(link, opts.savefile && !opts.live),
            opts: *opts,
            sites: None,
            walks: Vec::new(),
            reject: 0,
            share_v4: false,
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
                if self.opts.live
                    && self.opts.link == LinkType::Ethernet
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
                self.o.link_only(p).map_err(|m| ExprError::new(*col, m))?;
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
                self.o.nosnap += 4;
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
                    nosnap: 0,
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
                    p if p.accessor_at_network() => out.push(o.proto(*p)?),
                    p if p.is_ipv4_transport() => {
                        // `tcp[...]` and the like read the IPv4 transport
                        // header only, as libpcap's gen_load ANDs `ip`:
                        // an IPv6 TCP packet does not match.
                        out.push(o.ip4_proto(p.ip_proto().expect("a transport"))?);
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

    /// The whole program: `ret #snaplen` when the tree holds, `ret #0`
    /// else. Too long with IPv4 `protochain` walks inline: again with them
    /// shared (exact but for file frames cut inside the chain).
    pub fn finish(self, root: &Node, snaplen: u32) -> Result<Vec<Insn>, ExprError> {
        let opts = self.opts;
        match self.finish_once(root, snaplen) {
            Err(e) if matches!(e.kind, ExprErrorKind::TooLong { .. }) && has_protochain(root) => {
                let mut again = Gen::new(&opts);
                again.share_v4 = true;
                again.finish_once(root, snaplen)
            }
            r => r,
        }
    }

    fn finish_once(mut self, root: &Node, snaplen: u32) -> Result<Vec<Insn>, ExprError> {
        // `protochain`: a first pass finds where each is and with which
        // offsets, so that one walk per version serves them all.
        let sites = if has_protochain(root) {
            let mut first = Gen::new(&self.opts);
            first.share_v4 = self.share_v4;
            first.sites = Some(Vec::new());
            let (t, f) = (first.label(), first.label());
            first.reject = f;
            first.node(root, t, f)?;
            first.sites.take().unwrap_or_default()
        } else {
            Vec::new()
        };
        let (t, f) = (self.label(), self.label());
        self.reject = f;
        self.plan_walks(&sites)
            .and_then(|_| self.emit_walks())
            .map_err(|k| ExprError::new(1, k))?;
        self.node(root, t, f)?;
        self.items.push(Item::Place(t));
        self.stmt(Op::RetK, snaplen);
        self.items.push(Item::Place(f));
        self.stmt(Op::RetK, 0);
        let insns = layout(&self.items, self.labels)
            .map_err(|e| ExprError::new(1, ExprErrorKind::TooLong { insns: e.insns }))?;
        if !accepts_somewhere(&insns) {
            return Err(ExprError::new(1, ExprErrorKind::RejectsAll));
        }
        Ok(insns)
    }
}

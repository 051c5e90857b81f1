//! Hash-consed terms: the values a filter computes, with registers and
//! scratch memory gone.
//!
//! A term is a constant, the frame length, an ancillary value, a packet
//! load (size and an offset that is itself a term), or an ALU operator over
//! terms. [`Interner`] is the one place terms are made: it folds constants,
//! applies a few algebraic identities and returns the same [`TermId`] for
//! equal terms, so equal work looks equal across every filter of a set
//! (common-subexpression elimination). Children always have smaller ids
//! than their parents.

use crate::cbpf::interp;
use crate::cbpf::{AluOp, Anc, FrameMeta, Size};
use indexmap::IndexSet;
use std::fmt;

/// Index of a term in its [`Interner`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TermId(pub u32);

impl TermId {
    /// The id as an index into the term table.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// A term: a value a filter computes from the frame, built bottom up.
pub enum Term {
    /// A constant.
    Const(u32),
    /// The frame length as the filter sees it (`LEN`).
    Len,
    /// An ancillary value (never `AluXorX`, which is an operator).
    Anc(Anc),
    /// A big-endian packet load; the offset term's value is read as a
    /// signed 32-bit offset (negative areas included).
    Load(Size, TermId),
    /// `a op b`.
    Alu(AluOp, TermId, TermId),
    /// `-a`.
    Neg(TermId),
}

/// The hash-consing table of terms: an insertion-ordered set, so a term's
/// id is its index (`IndexSet::insert_full` gives it, and whether the term
/// is new).
#[derive(Clone, Debug, Default)]
pub struct Interner {
    terms: IndexSet<Term, ahash::RandomState>,
    /// Per term, computed once when it is made (terms form a DAG whose
    /// unfolding can be exponential, so nothing walks it unmemoized):
    /// its rank and its inherent range.
    rank: Vec<i64>,
    range: Vec<(u32, u32)>,
    /// How many `intern` calls returned an existing term (work saved).
    pub hits: u64,
}

impl Interner {
    /// An empty table.
    pub fn new() -> Interner {
        Interner::default()
    }
    /// Distinct terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }
    /// Whether no term was made.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
    /// Term `t`.
    pub fn get(&self, t: TermId) -> Term {
        self.terms[t.index()]
    }
    /// Terms from id `start` on, in id order.
    pub fn terms_from(&self, start: usize) -> impl Iterator<Item = Term> + '_ {
        self.terms.iter().skip(start).copied()
    }
    /// The id of `t`, made if new. Callers go through the `mk_*` helpers,
    /// which fold first.
    fn intern(&mut self, t: Term) -> TermId {
        let (index, new) = self.terms.insert_full(t);
        let id = TermId(index as u32);
        if !new {
            self.hits += 1;
            return id;
        }
        self.rank.push(0);
        self.range.push((0, u32::MAX));
        let (r, g) = (self.compute_rank(id), self.compute_range(id));
        self.rank[id.index()] = r;
        self.range[id.index()] = g;
        id
    }
    /// The constant `k`.
    pub fn konst(&mut self, k: u32) -> TermId {
        self.intern(Term::Const(k))
    }
    /// `LEN`.
    pub fn len_term(&mut self) -> TermId {
        self.intern(Term::Len)
    }
    /// Ancillary value `a`.
    pub fn anc(&mut self, a: Anc) -> TermId {
        debug_assert!(a != Anc::AluXorX);
        self.intern(Term::Anc(a))
    }
    /// A packet load of `size` at offset term `off`.
    pub fn load(&mut self, size: Size, off: TermId) -> TermId {
        self.intern(Term::Load(size, off))
    }
    /// The constant value of `t`, if it is one.
    pub fn as_const(&self, t: TermId) -> Option<u32> {
        match self.get(t) {
            Term::Const(k) => Some(k),
            _ => None,
        }
    }
    /// `-a`, folded when `a` is a constant.
    pub fn neg(&mut self, a: TermId) -> TermId {
        match self.get(a) {
            Term::Const(k) => self.konst(k.wrapping_neg()),
            Term::Neg(inner) => inner,
            _ => self.intern(Term::Neg(a)),
        }
    }
    /// `a op b`, folded.
    pub fn alu(&mut self, op: AluOp, a: TermId, b: TermId) -> TermId {
        use AluOp::*;
        let (ca, cb) = (self.as_const(a), self.as_const(b));
        if let (Some(x), Some(y)) = (ca, cb) {
            return self.konst(op.apply(x, y));
        }
        // Commutative operators: constant second, else smaller id first.
        let commutative = matches!(op, Add | Mul | And | Or | Xor);
        let (a, b, cb) = if commutative && (ca.is_some() || (cb.is_none() && b < a)) {
            (b, a, ca)
        } else {
            (a, b, cb)
        };
        if let Some(k) = cb {
            match (op, k) {
                (Add | Sub | Or | Xor | Lsh | Rsh, 0) | (Mul | Div, 1) | (And, u32::MAX) => {
                    return a
                }
                (Mul | And, 0) => return self.konst(0),
                // x % 1 == 0, x | ~0 == ~0
                (Mod, 1) => return self.konst(0),
                (Or, u32::MAX) => return self.konst(u32::MAX),
                _ => {}
            }
            match (op, self.get(a)) {
                (And, Term::Alu(And, inner, m)) => {
                    if let Some(m) = self.as_const(m) {
                        let mask = self.konst(m & k);
                        return self.alu(And, inner, mask);
                    }
                }
                (And, Term::Load(Size::B, _)) if k & 0xff == 0xff => return a,
                (And, Term::Load(Size::H, _)) if k & 0xffff == 0xffff => return a,
                (Add, Term::Alu(Add, inner, c)) => {
                    if let Some(c) = self.as_const(c) {
                        let sum = self.konst(c.wrapping_add(k));
                        return self.alu(Add, inner, sum);
                    }
                }
                (Sub, _) => {
                    // x - k == x + (-k): one form for offsets.
                    let m = self.konst(k.wrapping_neg());
                    return self.alu(Add, a, m);
                }
                _ => {}
            }
        }
        self.intern(Term::Alu(op, a, b))
    }

    /// The unsigned range every value of `t` lies in, from its shape alone.
    pub fn inherent_range(&self, t: TermId) -> (u32, u32) {
        self.range[t.index()]
    }

    fn compute_range(&self, t: TermId) -> (u32, u32) {
        match self.get(t) {
            Term::Const(k) => (k, k),
            Term::Load(Size::B, _) => (0, 0xff),
            Term::Load(Size::H, _) => (0, 0xffff),
            Term::Anc(Anc::VlanTagPresent) => (0, 1),
            Term::Anc(Anc::PktType) => (0, 7),
            Term::Anc(Anc::Protocol | Anc::HaType | Anc::VlanTag | Anc::VlanTpid) => (0, 0xffff),
            Term::Alu(AluOp::And, a, m) => match self.as_const(m) {
                Some(m) => (0, m.min(self.inherent_range(a).1)),
                None => (0, u32::MAX),
            },
            Term::Alu(AluOp::Lsh, a, s) => match self.as_const(s) {
                Some(s) => {
                    let (lo, hi) = self.inherent_range(a);
                    if (hi as u64) << (s & 31) <= u32::MAX as u64 {
                        (lo << (s & 31), hi << (s & 31))
                    } else {
                        (0, u32::MAX)
                    }
                }
                None => (0, u32::MAX),
            },
            Term::Alu(AluOp::Rsh, a, s) => match self.as_const(s) {
                Some(s) => {
                    let (lo, hi) = self.inherent_range(a);
                    (lo >> (s & 31), hi >> (s & 31))
                }
                None => (0, u32::MAX),
            },
            _ => (0, u32::MAX),
        }
    }

    /// `(base, mask)` with `t == base & mask` (mask all ones when `t` is no AND with a constant).
    pub fn base_mask(&self, t: TermId) -> (TermId, u32) {
        if let Term::Alu(AluOp::And, a, m) = self.get(t) {
            if let Some(m) = self.as_const(m) {
                return (a, m);
            }
        }
        (t, u32::MAX)
    }

    /// How far into the frame `t` reads: the least constant packet offset
    /// among its loads (ancillary values and LEN come before any byte).
    /// Orders literals "outer headers first".
    pub fn rank(&self, t: TermId) -> i64 {
        self.rank[t.index()]
    }

    fn compute_rank(&self, t: TermId) -> i64 {
        match self.get(t) {
            Term::Const(_) => i64::MIN,
            Term::Anc(_) => -(1 << 40),
            Term::Len => -(1 << 39),
            Term::Load(_, off) => match self.as_const(off) {
                Some(k) => k as i32 as i64,
                None => (1 << 32) + self.rank(off).max(0),
            },
            Term::Alu(_, a, b) => self.rank(a).max(self.rank(b)),
            Term::Neg(a) => self.rank(a),
        }
    }

    /// True when `needle` occurs in `t` (or is `t`). Visits each subterm once.
    pub fn contains(&self, t: TermId, needle: TermId) -> bool {
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![t];
        while let Some(u) = stack.pop() {
            if u == needle {
                return true;
            }
            // Children have smaller ids than their parents.
            if u < needle || !seen.insert(u) {
                continue;
            }
            self.children(u, |c| stack.push(c));
        }
        false
    }

    /// Calls `f` with each direct subterm of `t`.
    pub fn children(&self, t: TermId, mut f: impl FnMut(TermId)) {
        match self.get(t) {
            Term::Load(_, off) => f(off),
            Term::Alu(_, a, b) => {
                f(a);
                f(b);
            }
            Term::Neg(a) => f(a),
            _ => {}
        }
    }

    /// Evaluates `t` directly (no memo): the value, or `None` when a load
    /// falls outside the frame. For tests and the explain output.
    pub fn eval(&self, t: TermId, frame: &[u8], meta: &FrameMeta) -> Option<u32> {
        let mut memo = std::collections::HashMap::new();
        self.eval_memo(t, frame, meta, &mut memo)
    }

    fn eval_memo(
        &self,
        t: TermId,
        frame: &[u8],
        meta: &FrameMeta,
        memo: &mut std::collections::HashMap<TermId, Option<u32>>,
    ) -> Option<u32> {
        if let Some(v) = memo.get(&t) {
            return *v;
        }
        let v = eval_step(self.get(t), frame, meta, |c| {
            self.eval_memo(c, frame, meta, memo)
        });
        memo.insert(t, v);
        v
    }

    /// A readable rendering of `t`.
    pub fn display(&self, t: TermId) -> TermDisplay<'_> {
        TermDisplay {
            interner: self,
            t,
            depth: 0,
        }
    }
}

/// One step of term evaluation: the value of `term` given `sub`, which
/// evaluates its children (memoized or not). `None` when a load falls
/// outside the frame.
#[inline]
pub fn eval_step(
    term: Term,
    frame: &[u8],
    meta: &FrameMeta,
    mut sub: impl FnMut(TermId) -> Option<u32>,
) -> Option<u32> {
    Some(match term {
        Term::Const(k) => k,
        Term::Len => meta.wire_len,
        Term::Anc(a) => interp::ancillary(a, meta),
        Term::Load(size, off) => {
            let o = sub(off)?;
            interp::load(frame, meta.net_off, o as i32, size)?
        }
        Term::Alu(op, a, b) => {
            let x = sub(a)?;
            let y = sub(b)?;
            op.apply(x, y)
        }
        Term::Neg(a) => sub(a)?.wrapping_neg(),
    })
}

/// A term printed in the explain syntax (`P[12:2]`, `(x & 0xf) * 4`).
pub struct TermDisplay<'a> {
    interner: &'a Interner,
    t: TermId,
    /// Nesting so far; deep terms (unrolled loops) are cut with `…`.
    depth: u32,
}

/// Nesting shown before a term is abbreviated.
const DISPLAY_DEPTH: u32 = 8;

impl fmt::Display for TermDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.interner;
        if self.depth > DISPLAY_DEPTH {
            return f.write_str("…");
        }
        let sub = |t| TermDisplay {
            interner: i,
            t,
            depth: self.depth + 1,
        };
        match i.get(self.t) {
            Term::Const(k) if k > 9 => write!(f, "{k:#x}"),
            Term::Const(k) => write!(f, "{k}"),
            Term::Len => f.write_str("len"),
            Term::Anc(a) => f.write_str(a.asm_name()),
            Term::Load(s, off) => {
                let sz = match s {
                    Size::B => 1,
                    Size::H => 2,
                    Size::W => 4,
                };
                match i.as_const(off) {
                    Some(k) => write!(f, "P[{}:{sz}]", k as i32),
                    None => write!(f, "P[{}:{sz}]", sub(off)),
                }
            }
            Term::Alu(op, a, b) => {
                let sym = match op {
                    AluOp::Add => "+",
                    AluOp::Sub => "-",
                    AluOp::Mul => "*",
                    AluOp::Div => "/",
                    AluOp::Mod => "%",
                    AluOp::And => "&",
                    AluOp::Or => "|",
                    AluOp::Xor => "^",
                    AluOp::Lsh => "<<",
                    AluOp::Rsh => ">>",
                };
                write!(f, "({} {sym} {})", sub(a), sub(b))
            }
            Term::Neg(a) => write!(f, "-{}", sub(a)),
        }
    }
}

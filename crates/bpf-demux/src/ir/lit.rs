//! Literals (the tests a path asserts) and the facts a path has proven.
//!
//! Every branch of a classic program becomes one literal: `t == k`,
//! `t != k`, `lo <= t <= hi` (all of JGT/JGE in either polarity are
//! ranges), `JSET` as `(t & k) == 0` or `!= 0`, a comparison of two terms,
//! or a guard `t is in bounds` for a load whose value is used nowhere else.
//! A literal holds only when its terms evaluate (every load inside the
//! frame); that is what makes a path's conjunction independent of order.
//!
//! [`Facts`] is the BPF+ predicate-assertion propagation: along one path it
//! keeps, per term, the unsigned range, the excluded values and known
//! masked values, and answers whether a new test is already implied or
//! contradicted.

use super::term::{Interner, TermId};
use crate::cbpf::JmpOp;
use smallvec::SmallVec;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// A literal: one test of a path.
pub enum Lit {
    /// `t == k`.
    Eq(TermId, u32),
    /// `t != k`.
    Ne(TermId, u32),
    /// `lo <= t <= hi`, unsigned.
    Range(TermId, u32, u32),
    /// `a op b` for two non-constant terms (`op` is Gt or Ge; Eq with
    /// `truth`), holding iff the test's outcome equals `truth`.
    Cmp(JmpOp, TermId, TermId, bool),
    /// `t` evaluates (its loads are inside the frame).
    Guard(TermId),
}

impl Lit {
    /// The terms this literal evaluates.
    pub fn terms(&self) -> SmallVec<[TermId; 2]> {
        match *self {
            Lit::Eq(t, _) | Lit::Ne(t, _) | Lit::Range(t, ..) | Lit::Guard(t) => {
                smallvec::smallvec![t]
            }
            Lit::Cmp(_, a, b, _) => smallvec::smallvec![a, b],
        }
    }
    /// Does the literal hold for these term values?
    #[inline]
    pub fn holds(&self, v: u32, w: u32) -> bool {
        match *self {
            Lit::Eq(_, k) => v == k,
            Lit::Ne(_, k) => v != k,
            Lit::Range(_, lo, hi) => lo <= v && v <= hi,
            Lit::Cmp(op, _, _, truth) => op.test(v, w) == truth,
            Lit::Guard(_) => true,
        }
    }
    /// The canonical order of literals on a path: positive equalities
    /// first (they dispatch by hash), outer headers first; then ranges,
    /// comparisons, inequalities, guards.
    pub fn sort_key(&self, i: &Interner) -> (u8, i64, TermId, u32, u32) {
        match *self {
            Lit::Eq(t, k) => (0, i.rank(t), t, k, 0),
            Lit::Range(t, lo, hi) => (1, i.rank(t), t, lo, hi),
            Lit::Cmp(op, a, b, truth) => (
                2,
                i.rank(a).max(i.rank(b)),
                a,
                b.0,
                (op as u32) << 1 | truth as u32,
            ),
            Lit::Ne(t, k) => (3, i.rank(t), t, k, 0),
            Lit::Guard(t) => (4, i.rank(t), t, 0, 0),
        }
    }
}

/// What one path knows about one term.
#[derive(Clone, Debug)]
struct Fact {
    t: TermId,
    lo: u32,
    hi: u32,
    ne: SmallVec<[u32; 2]>,
}

/// Facts proven along one path.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    facts: SmallVec<[Fact; 8]>,
    /// Term comparisons already asserted.
    cmps: SmallVec<[(JmpOp, TermId, TermId, bool); 2]>,
}

impl Facts {
    fn get(&self, t: TermId) -> Option<&Fact> {
        self.facts.iter().find(|f| f.t == t)
    }
    fn range(&self, i: &Interner, t: TermId) -> (u32, u32) {
        let (lo, hi) = i.inherent_range(t);
        match self.get(t) {
            Some(f) => (lo.max(f.lo), hi.min(f.hi)),
            None => (lo, hi),
        }
    }
    fn entry(&mut self, i: &Interner, t: TermId) -> &mut Fact {
        if let Some(p) = self.facts.iter().position(|f| f.t == t) {
            return &mut self.facts[p];
        }
        let (lo, hi) = i.inherent_range(t);
        self.facts.push(Fact {
            t,
            lo,
            hi,
            ne: SmallVec::new(),
        });
        self.facts.last_mut().unwrap()
    }

    /// `Some(truth)` when the path's facts decide `t == k`.
    fn decide_eq(&self, i: &Interner, t: TermId, k: u32) -> Option<bool> {
        let (lo, hi) = self.range(i, t);
        if k < lo || k > hi {
            return Some(false);
        }
        if lo == hi {
            return Some(true);
        }
        if self.get(t).is_some_and(|f| f.ne.contains(&k)) {
            return Some(false);
        }
        // Masks: t = base & m2; an exact value known for base & m1.
        let (base, m2) = i.base_mask(t);
        if k & !m2 != 0 {
            return Some(false);
        }
        for f in &self.facts {
            if f.lo != f.hi {
                continue;
            }
            let (b1, m1) = i.base_mask(f.t);
            if b1 != base {
                continue;
            }
            let common = m1 & m2;
            if f.lo & common != k & common {
                return Some(false);
            }
            if m2 & !m1 == 0 {
                return Some(true);
            }
        }
        None
    }

    /// `Some(truth)` when the facts decide the literal.
    pub fn decide(&self, i: &Interner, lit: &Lit) -> Option<bool> {
        match *lit {
            Lit::Eq(t, k) => self.decide_eq(i, t, k),
            Lit::Ne(t, k) => self.decide_eq(i, t, k).map(|b| !b),
            Lit::Range(t, a, b) => {
                if a > b {
                    return Some(false);
                }
                let (lo, hi) = self.range(i, t);
                if a <= lo && hi <= b {
                    Some(true)
                } else if hi < a || lo > b {
                    Some(false)
                } else {
                    None
                }
            }
            Lit::Cmp(op, a, b, truth) => {
                for &(o, x, y, t) in &self.cmps {
                    if (o, x, y) == (op, a, b) {
                        return Some(t == truth);
                    }
                }
                None
            }
            Lit::Guard(_) => None,
        }
    }

    /// Records that `lit` holds on this path.
    pub fn assume(&mut self, i: &Interner, lit: &Lit) {
        match *lit {
            Lit::Eq(t, k) => {
                let f = self.entry(i, t);
                f.lo = k;
                f.hi = k;
            }
            Lit::Ne(t, k) => {
                let f = self.entry(i, t);
                if k == f.lo && f.lo < f.hi {
                    f.lo += 1;
                } else if k == f.hi && f.lo < f.hi {
                    f.hi -= 1;
                } else if !f.ne.contains(&k) {
                    f.ne.push(k);
                }
            }
            Lit::Range(t, a, b) => {
                let f = self.entry(i, t);
                f.lo = f.lo.max(a);
                f.hi = f.hi.min(b);
            }
            Lit::Cmp(op, a, b, truth) => self.cmps.push((op, a, b, truth)),
            Lit::Guard(_) => {}
        }
    }
}

/// A literal as readable text, e.g. `P[12:2] == 0x800`.
pub fn display(i: &Interner, l: &Lit) -> String {
    let hex = |k: u32| {
        if k > 9 {
            format!("{k:#x}")
        } else {
            k.to_string()
        }
    };
    match *l {
        Lit::Eq(t, k) => format!("{} == {}", i.display(t), hex(k)),
        Lit::Ne(t, k) => format!("{} != {}", i.display(t), hex(k)),
        Lit::Range(t, lo, hi) if hi == u32::MAX => format!("{} >= {}", i.display(t), hex(lo)),
        Lit::Range(t, 0, hi) => format!("{} <= {}", i.display(t), hex(hi)),
        Lit::Range(t, lo, hi) => format!("{} in {}..={}", i.display(t), hex(lo), hex(hi)),
        Lit::Cmp(op, a, b, truth) => {
            let sym = match op {
                JmpOp::Eq => "==",
                JmpOp::Gt => ">",
                JmpOp::Ge => ">=",
                JmpOp::Set => "&",
            };
            format!(
                "{}({} {sym} {})",
                if truth { "" } else { "not " },
                i.display(a),
                i.display(b)
            )
        }
        Lit::Guard(t) => format!("in-bounds {}", i.display(t)),
    }
}

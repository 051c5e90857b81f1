//! The kernel prefilter: the merged structure compiled back into one
//! classic BPF program for the capture socket, so frames no tenant can
//! accept are dropped in the kernel and never copied into the ring.
//!
//! The program over-approximates: it accepts (returning `u32::MAX`, the
//! whole frame) every frame for which some tenant's filter returns
//! non-zero, and rejects as many of the others as its size allows.
//! Userland still runs the exact automaton on what passes, so the answer
//! per (tenant, frame) is unchanged; only the work on frames nobody wants
//! moves into the kernel (one JIT-compiled pass instead of a ring copy and
//! a wakeup).
//!
//! Compilation walks the trie depth first, forward only: a node with an
//! accept returns ACCEPT; otherwise each group is tried in turn and, when
//! it leads nowhere, the next one. A group evaluates its term into `A`
//! (every packet load preceded by a length check, so a load outside the
//! frame fails the group as it does in the automaton instead of ending the
//! program), then:
//! - `Test`: the literal's jump, to the child's code or on.
//! - `Eq` / `Range`: a binary search over the table's keys as intervals:
//!   runs of consecutive keys whose children accept collapse into one
//!   interval; other keys lead to their child's code, placed after the
//!   search. Past the interval budget, the closest intervals are merged and
//!   a merged interval returns ACCEPT (coarser, still conservative).
//!
//! Whatever cannot be expressed (loads in the negative areas, terms deeper
//! than the scratch memory, nodes past the depth budget) returns ACCEPT at
//! that point. Filters that run in the fallback interpreter follow as
//! alternatives, each its own program with its returns turned into jumps
//! (module `inline`). When the result would exceed the kernel's 4096
//! instructions, the budgets shrink and compilation starts over
//! ([`NoPrefilter`] says why a set gets none).
//!
//! Pipeline position: a back end of the published [`Automaton`], beside
//! the matcher; it emits typed instructions through [`crate::cbpf::layout`]
//! and validates the result, treating a refusal as its own bug.

mod inline;

use crate::cbpf::layout::{layout, thread_jumps, Item, Label};
use crate::cbpf::opcode::{AluOp, JmpOp, Op, Size, Src};
use crate::cbpf::program::{MAX_INSNS, SKF_AD_OFF};
use crate::cbpf::{Insn, Program, ValidateError};
use crate::exec::{Automaton, FilterId};
use crate::ir::{Lit, Term, TermId};
use crate::merge::{Group, NodeId};

/// What the prefilter returns for a frame some tenant may accept: all of
/// it (the kernel clamps to the frame's length).
pub const ACCEPT: u32 = u32::MAX;

/// Scratch cells used for intermediate values (depth of a term).
const SCRATCH: usize = 16;

/// Budgets of one attempt: intervals per table, trie depth, instructions
/// per term.
#[derive(Clone, Copy, Debug)]
struct Budget {
    intervals: usize,
    depth: u32,
    term_insns: usize,
}

const ATTEMPTS: [Budget; 7] = [
    Budget {
        intervals: usize::MAX,
        depth: 64,
        term_insns: 64,
    },
    Budget {
        intervals: 512,
        depth: 48,
        term_insns: 64,
    },
    Budget {
        intervals: 128,
        depth: 32,
        term_insns: 48,
    },
    Budget {
        intervals: 32,
        depth: 24,
        term_insns: 32,
    },
    Budget {
        intervals: 8,
        depth: 12,
        term_insns: 24,
    },
    Budget {
        intervals: 2,
        depth: 6,
        term_insns: 16,
    },
    Budget {
        intervals: 1,
        depth: 3,
        term_insns: 16,
    },
];

/// The term could not be compiled (the caller returns ACCEPT instead).
struct Unsupported;

/// One interval of a table: `lo..=hi` leads to `to`.
#[derive(Clone, Copy, Debug)]
struct Interval {
    lo: u32,
    hi: u32,
    to: Target,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Accept,
    Child(NodeId),
}

struct Gen<'a> {
    a: &'a Automaton,
    budget: Budget,
    items: Vec<Item>,
    labels: usize,
    /// Instructions emitted so far (an attempt stops early past the limit).
    insns: usize,
}

/// Stops an attempt that already exceeds the limit.
struct Overflow;

impl<'a> Gen<'a> {
    fn label(&mut self) -> Label {
        self.labels += 1;
        self.labels - 1
    }
    fn place(&mut self, l: Label) {
        self.items.push(Item::Place(l));
    }
    fn stmt(&mut self, op: Op, k: u32) {
        self.items.push(Item::Stmt(op, k));
        self.insns += 1;
    }
    fn jmp(&mut self, op: JmpOp, k: u32, t: Label, f: Label) {
        self.items.push(Item::Jmp {
            op,
            src: Src::K,
            k,
            t,
            f,
        });
        self.insns += 1;
    }
    fn jmp_x(&mut self, op: JmpOp, t: Label, f: Label) {
        self.items.push(Item::Jmp {
            op,
            src: Src::X,
            k: 0,
            t,
            f,
        });
        self.insns += 1;
    }
    fn ja(&mut self, l: Label) {
        self.items.push(Item::Ja(l));
        self.insns += 1;
    }
    fn accept(&mut self) {
        self.stmt(Op::RetK, ACCEPT);
    }
    fn check(&self) -> Result<(), Overflow> {
        if self.insns > MAX_INSNS {
            Err(Overflow)
        } else {
            Ok(())
        }
    }

    /// Code for the subtree at `n`: returns ACCEPT when some accept is
    /// reachable, else jumps to `fail`. `proven`: frame length known to be
    /// at least this on every path here.
    fn node(&mut self, n: NodeId, fail: Label, proven: u32, depth: u32) -> Result<(), Overflow> {
        self.check()?;
        let node = self.a.trie().node(n);
        if self.accepting(n, 4) || depth > self.budget.depth {
            self.accept();
            return Ok(());
        }
        for g in node.groups.iter() {
            let next = self.label();
            self.group(g, next, proven, depth)?;
            self.place(next);
        }
        self.ja(fail);
        Ok(())
    }

    fn group(&mut self, g: &Group, fail: Label, proven: u32, depth: u32) -> Result<(), Overflow> {
        let mark = (self.items.len(), self.insns);
        let mut proven = proven;
        // The test or search, then the children it leads to (label, node).
        let entered = match g {
            Group::Test { lit, child } => {
                let t = self.label();
                self.lit(lit, t, fail, &mut proven)
                    .map(|()| vec![(t, *child)])
            }
            Group::Eq { term, table } => {
                let ivs =
                    self.intervals(table.entries().into_iter().map(|(k, c)| (k, k, c)), false);
                self.table(*term, ivs, fail, &mut proven)
            }
            Group::Range { term, table } => {
                let ivs = self.intervals(table.entries.iter().copied(), true);
                self.table(*term, ivs, fail, &mut proven)
            }
        };
        let Ok(children) = entered else {
            // Unsupported: whatever the group would test, accept.
            self.items.truncate(mark.0);
            self.insns = mark.1;
            self.accept();
            return Ok(());
        };
        // Each child's code, entered only from its test or leaf.
        for (label, child) in children {
            self.place(label);
            self.node(child, fail, proven, depth + 1)?;
        }
        Ok(())
    }

    /// Does `n` accept, taking `!=` tests as true (within `depth` of
    /// them)? A path condition such as `src != X` on the `dst == X` path
    /// of `host X` excludes little; dropping it over-approximates, which
    /// is all a prefilter needs, and lets whole tables collapse.
    fn accepting(&self, n: NodeId, depth: u32) -> bool {
        let node = self.a.trie().node(n);
        !node.accepts.is_empty()
            || (depth > 0
                && node.groups.iter().any(|g| match g {
                    Group::Test {
                        lit: Lit::Ne(..),
                        child,
                    } => self.accepting(*child, depth - 1),
                    _ => false,
                }))
    }

    /// The table's entries as sorted, disjoint intervals within budget.
    /// `ranges`: entries may overlap (a range table); overlapping ones are
    /// merged and return ACCEPT.
    fn intervals(
        &self,
        entries: impl Iterator<Item = (u32, u32, NodeId)>,
        ranges: bool,
    ) -> Vec<Interval> {
        let mut v: Vec<Interval> = entries
            .map(|(lo, hi, c)| Interval {
                lo,
                hi,
                to: if self.accepting(c, 4) {
                    Target::Accept
                } else {
                    Target::Child(c)
                },
            })
            .collect();
        v.sort_by_key(|i| (i.lo, i.hi));
        let mut out: Vec<Interval> = Vec::with_capacity(v.len());
        for i in v {
            if let Some(last) = out.last_mut() {
                let touches = last.hi.checked_add(1).is_some_and(|n| n >= i.lo);
                let overlaps = ranges && last.hi >= i.lo;
                if overlaps || (touches && last.to == Target::Accept && i.to == Target::Accept) {
                    last.hi = last.hi.max(i.hi);
                    last.to = Target::Accept;
                    continue;
                }
            }
            out.push(i);
        }
        // Past the budget: join the intervals separated by the smallest
        // gaps; a joined interval returns ACCEPT.
        let max = self.budget.intervals.max(1);
        if out.len() > max {
            let mut gaps: Vec<(u32, usize)> = out
                .windows(2)
                .enumerate()
                .map(|(i, w)| (w[1].lo - w[0].hi, i))
                .collect();
            gaps.sort_unstable();
            let mut join = vec![false; out.len()];
            for &(_, i) in &gaps[..out.len() - max] {
                join[i] = true;
            }
            let mut merged: Vec<Interval> = Vec::with_capacity(max);
            let mut joining = false;
            for (i, iv) in out.iter().enumerate() {
                match merged.last_mut() {
                    Some(last) if joining => {
                        last.hi = iv.hi;
                        last.to = Target::Accept;
                    }
                    _ => merged.push(*iv),
                }
                joining = join[i];
            }
            out = merged;
        }
        out
    }

    /// Evaluates `term` and searches `ivs` for its value; returns the
    /// children to emit (label, node) after the search.
    fn table(
        &mut self,
        term: TermId,
        ivs: Vec<Interval>,
        fail: Label,
        proven: &mut u32,
    ) -> Result<Vec<(Label, NodeId)>, Unsupported> {
        self.term(term, fail, proven, 0)?;
        let mut children = Vec::new();
        self.search(&ivs, 0, fail, &mut children);
        Ok(children)
    }

    /// Binary search over sorted disjoint `ivs`; `A` holds the value and is
    /// known to be at least `known`.
    fn search(
        &mut self,
        ivs: &[Interval],
        known: u32,
        fail: Label,
        children: &mut Vec<(Label, NodeId)>,
    ) {
        if ivs.len() > 2 {
            let mid = ivs.len() / 2;
            let (left, right) = (self.label(), self.label());
            self.jmp(JmpOp::Ge, ivs[mid].lo, right, left);
            self.place(left);
            self.search(&ivs[..mid], known, fail, children);
            self.place(right);
            self.search(&ivs[mid..], ivs[mid].lo, fail, children);
            return;
        }
        let mut known = known;
        for iv in ivs {
            let hit = match iv.to {
                Target::Accept => self.label(),
                Target::Child(c) => {
                    let l = self.label();
                    children.push((l, c));
                    l
                }
            };
            let next = self.label();
            if iv.lo == iv.hi {
                self.jmp(JmpOp::Eq, iv.lo, hit, next);
            } else {
                if iv.lo > known {
                    let inside = self.label();
                    self.jmp(JmpOp::Ge, iv.lo, inside, fail);
                    self.place(inside);
                }
                if iv.hi == u32::MAX {
                    self.ja(hit);
                } else {
                    self.jmp(JmpOp::Gt, iv.hi, next, hit);
                }
            }
            if iv.to == Target::Accept {
                // `ret ACCEPT` right after the test, before the next one.
                self.place(hit);
                self.accept();
            }
            self.place(next);
            known = iv.hi.saturating_add(1);
        }
        self.ja(fail);
    }

    /// Code taking `lit`'s true branch to `t`, false to `f`.
    fn lit(&mut self, lit: &Lit, t: Label, f: Label, proven: &mut u32) -> Result<(), Unsupported> {
        match *lit {
            Lit::Eq(x, k) => {
                self.term(x, f, proven, 0)?;
                self.jmp(JmpOp::Eq, k, t, f);
            }
            Lit::Ne(x, k) => {
                self.term(x, f, proven, 0)?;
                self.jmp(JmpOp::Eq, k, f, t);
            }
            Lit::Range(x, lo, hi) => {
                self.term(x, f, proven, 0)?;
                if lo > 0 {
                    let inside = self.label();
                    self.jmp(JmpOp::Ge, lo, inside, f);
                    self.place(inside);
                }
                if hi == u32::MAX {
                    self.ja(t);
                } else {
                    self.jmp(JmpOp::Gt, hi, f, t);
                }
            }
            Lit::Guard(x) => {
                self.term(x, f, proven, 0)?;
                self.ja(t);
            }
            Lit::Cmp(op, a, b, truth) => {
                self.term(b, f, proven, 0)?;
                self.stmt(Op::St, 0);
                self.term(a, f, proven, 1)?;
                self.stmt(Op::LdxMem, 0);
                let (yes, no) = if truth { (t, f) } else { (f, t) };
                self.jmp_x(op, yes, no);
            }
        }
        Ok(())
    }

    /// Code leaving `t`'s value in `A`, jumping to `fail` where the
    /// automaton's evaluation fails (a load outside the frame). Scratch
    /// cells from `depth` up are free. `X` is clobbered.
    fn term(
        &mut self,
        t: TermId,
        fail: Label,
        proven: &mut u32,
        depth: usize,
    ) -> Result<(), Unsupported> {
        let start = self.insns;
        self.term_inner(t, fail, proven, depth)?;
        if self.insns - start > self.budget.term_insns {
            return Err(Unsupported);
        }
        Ok(())
    }

    fn term_inner(
        &mut self,
        t: TermId,
        fail: Label,
        proven: &mut u32,
        depth: usize,
    ) -> Result<(), Unsupported> {
        if depth >= SCRATCH || self.insns > MAX_INSNS {
            return Err(Unsupported);
        }
        match self.a.term(t) {
            Term::Const(k) => self.stmt(Op::LdImm, k),
            Term::Len => self.stmt(Op::LdLen, 0),
            Term::Anc(anc) => self.stmt(Op::LdAbs(Size::W), SKF_AD_OFF + anc.offset()),
            Term::Load(size, off) => {
                let bytes = size.bytes();
                if let Term::Const(k) = self.a.term(off) {
                    if k >= 0x8000_0000 - 4 {
                        // Negative areas (or the wrap past them).
                        return Err(Unsupported);
                    }
                    let end = k + bytes;
                    if end > *proven {
                        let ok = self.label();
                        self.stmt(Op::LdLen, 0);
                        self.jmp(JmpOp::Ge, end, ok, fail);
                        self.place(ok);
                        *proven = end;
                    }
                    self.stmt(Op::LdAbs(size), k);
                } else {
                    // A computed offset: negative ones address the kernel's
                    // special areas, which this does not model: ACCEPT.
                    self.term_inner(off, fail, proven, depth)?;
                    let ok = self.label();
                    if self.max_value(off, 8).map_or(true, |m| m >= 0x8000_0000) {
                        let (pos, neg) = (self.label(), self.label());
                        self.jmp(JmpOp::Ge, 0x8000_0000, neg, pos);
                        self.place(neg);
                        self.accept();
                        self.place(pos);
                    }
                    self.stmt(Op::St, depth as u32);
                    self.stmt(Op::Alu(AluOp::Add, Src::K), bytes);
                    self.stmt(Op::Tax, 0);
                    self.stmt(Op::LdLen, 0);
                    self.jmp_x(JmpOp::Ge, ok, fail);
                    self.place(ok);
                    self.stmt(Op::LdxMem, depth as u32);
                    self.stmt(Op::LdInd(size), 0);
                }
            }
            Term::Neg(a) => {
                self.term_inner(a, fail, proven, depth)?;
                self.stmt(Op::Neg, 0);
            }
            Term::Alu(op, a, b) => {
                if let Term::Const(k) = self.a.term(b) {
                    self.term_inner(a, fail, proven, depth)?;
                    match op {
                        AluOp::Lsh | AluOp::Rsh => self.stmt(Op::Alu(op, Src::K), k & 31),
                        AluOp::Div | AluOp::Mod if k == 0 => self.stmt(Op::LdImm, 0),
                        _ => self.stmt(Op::Alu(op, Src::K), k),
                    }
                } else {
                    // Both operands evaluate (either may fail), then the
                    // operation; x / 0 is 0 in the automaton (a kernel
                    // program would end), so that case is taken apart.
                    if depth + 1 >= SCRATCH {
                        return Err(Unsupported);
                    }
                    self.term_inner(b, fail, proven, depth)?;
                    self.stmt(Op::St, depth as u32);
                    self.term_inner(a, fail, proven, depth + 1)?;
                    self.stmt(Op::LdxMem, depth as u32);
                    if matches!(op, AluOp::Div | AluOp::Mod) {
                        let (zero, nonzero, done) = (self.label(), self.label(), self.label());
                        self.stmt(Op::St, depth as u32 + 1);
                        self.stmt(Op::Txa, 0);
                        self.jmp(JmpOp::Eq, 0, zero, nonzero);
                        self.place(nonzero);
                        self.stmt(Op::LdMem, depth as u32 + 1);
                        self.stmt(Op::Alu(op, Src::X), 0);
                        self.ja(done);
                        self.place(zero);
                        self.stmt(Op::LdImm, 0);
                        self.place(done);
                    } else {
                        self.stmt(Op::Alu(op, Src::X), 0);
                    }
                }
            }
        }
        Ok(())
    }
}

impl Gen<'_> {
    /// An upper bound of `t`'s value when its structure gives one (`None`:
    /// unknown, looking at most `depth` levels down).
    fn max_value(&self, t: TermId, depth: u32) -> Option<u64> {
        if depth == 0 {
            return None;
        }
        let m = match self.a.term(t) {
            Term::Const(k) => k as u64,
            Term::Load(Size::B, _) => 0xff,
            Term::Load(Size::H, _) => 0xffff,
            Term::Alu(AluOp::And, a, b) => {
                match (self.max_value(a, depth - 1), self.max_value(b, depth - 1)) {
                    (Some(x), Some(y)) => x.min(y),
                    (Some(x), None) | (None, Some(x)) => x,
                    (None, None) => return None,
                }
            }
            Term::Alu(AluOp::Add, a, b) => {
                self.max_value(a, depth - 1)? + self.max_value(b, depth - 1)?
            }
            Term::Alu(AluOp::Mul, a, b) => {
                self.max_value(a, depth - 1)? * self.max_value(b, depth - 1)?
            }
            Term::Alu(AluOp::Lsh, a, b) => match self.a.term(b) {
                Term::Const(k) => self.max_value(a, depth - 1)? << (k & 31),
                _ => return None,
            },
            Term::Alu(AluOp::Rsh | AluOp::Div, a, _) => self.max_value(a, depth - 1)?,
            _ => return None,
        };
        // Past 32 bits the value wraps: no bound.
        (m <= u32::MAX as u64).then_some(m)
    }
}

/// Why a set gets no kernel prefilter (every frame then reaches the ring).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoPrefilter {
    /// The set has no filter.
    #[error("the set is empty")]
    Empty,
    /// A filter runs in the fallback interpreter and cannot be inlined as
    /// an alternative (its guards need a scratch cell and it uses all 16).
    #[error("filter {0:?} runs in the fallback interpreter and uses every scratch cell")]
    Fallback(FilterId),
    /// Some filter accepts every frame (or nothing narrower fits the
    /// kernel's limit): the program would be `ret #-1`.
    #[error("some filter accepts every frame")]
    AcceptsAll,
    /// No attempt fit the kernel's 4096 instructions.
    #[error("no program within {MAX_INSNS} instructions")]
    TooLong,
    /// The generator emitted a program the validator refuses: a bug in
    /// this module (the tests check it never happens), reported instead of
    /// attached.
    #[error("the generated prefilter is invalid (a bug): {0}")]
    Invalid(ValidateError),
}

/// The kernel prefilter for `automaton` (see the module docs).
///
/// ```
/// use bpf_demux::cbpf::{self, text, FrameMeta, Program};
/// use bpf_demux::{prefilter, FilterSet, NamedProgram};
/// let prog = |s: &str| Program::validate(&text::parse_ddd(s).unwrap()).unwrap();
/// let mut set = FilterSet::new([NamedProgram::new(
///     "arp",
///     prog("4,40 0 0 12,21 0 1 2054,6 0 0 96,6 0 0 0"),
/// )])
/// .unwrap();
/// let p = prefilter::compile(&set.publish()).unwrap();
/// let mut frame = [0u8; 60];
/// assert_eq!(cbpf::run(&p, &frame, &FrameMeta::offline(&frame, 60)), 0);
/// frame[12..14].copy_from_slice(&[0x08, 0x06]);
/// assert_eq!(cbpf::run(&p, &frame, &FrameMeta::offline(&frame, 60)), prefilter::ACCEPT);
/// ```
pub fn compile(automaton: &Automaton) -> Result<Program, NoPrefilter> {
    if automaton.is_empty() {
        return Err(NoPrefilter::Empty);
    }
    let insns = generate(automaton)?;
    match Program::validate(&insns) {
        Ok(p) => Ok(p),
        Err(e) => {
            debug_assert!(
                false,
                "the prefilter generator emitted an invalid program: {e}"
            );
            Err(NoPrefilter::Invalid(e))
        }
    }
}

/// The program of the first attempt that fits, unvalidated.
fn generate(automaton: &Automaton) -> Result<Vec<Insn>, NoPrefilter> {
    for budget in ATTEMPTS {
        let Some(insns) = attempt(automaton, budget)? else {
            continue;
        };
        if insns.first() == Some(&Insn::stmt(Op::RetK.code(), ACCEPT)) {
            return Err(NoPrefilter::AcceptsAll);
        }
        if insns.len() <= 1 {
            // Only `ret #0`: no filter accepts anything.
            return Err(NoPrefilter::Empty);
        }
        return Ok(insns);
    }
    Err(NoPrefilter::TooLong)
}

/// The program for `budget`, unvalidated; `None` when it does not fit.
fn attempt(automaton: &Automaton, budget: Budget) -> Result<Option<Vec<Insn>>, NoPrefilter> {
    let mut g = Gen {
        a: automaton,
        budget,
        items: Vec::new(),
        labels: 0,
        insns: 0,
    };
    let fail = g.label();
    if g.node(NodeId::ROOT, fail, 0, 0).is_err() {
        return Ok(None);
    }
    g.place(fail);
    // Each fallback filter, as one more alternative.
    for (id, prog) in automaton.fallbacks() {
        let next = g.label();
        g.alternative(prog, next)
            .map_err(|inline::NoFreeCell| NoPrefilter::Fallback(*id))?;
        g.place(next);
    }
    g.stmt(Op::RetK, 0);
    if g.check().is_err() {
        return Ok(None);
    }
    let items = thread_jumps(&g.items, g.labels);
    Ok(layout(&items, g.labels).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cbpf::text::parse_asm;
    use crate::set::{FilterSet, NamedProgram};

    /// Every generated program passes the kernel's rules: over sets of
    /// filters of every term shape the prefilter compiles (constant and
    /// computed loads, ALU with constants and registers, division, ranges,
    /// comparisons of two terms), and with the budgets forced small.
    #[test]
    fn every_generated_program_is_valid() {
        let shapes = [
            "ldh [12]\njeq #0x800, yes, no\nyes: ret #-1\nno: ret #0",
            "ldb [14]\nand #0xf\nlsh #2\ntax\nldh [x+16]\njgt #1000, yes, no\nyes: ret #96\nno: ret #0",
            "ld [26]\nand #0xffffff00\njeq #0x0a000100, yes, no\nyes: ret #-1\nno: ret #0",
            "ldb [23]\ntax\nld [26]\ndiv x\njge #7, yes, no\nyes: ret #-1\nno: ret #0",
            "ld #4\nst M[0]\nldb [20]\nldx M[0]\nmod x\njeq #1, yes, no\nyes: ret #64\nno: ret #0",
            "ldh [12]\nldx len\njgt x, yes, no\nyes: ret #-1\nno: ret #0",
            "ld len\njge #60, a, no\na: ldh [20]\njset #0x1fff, no, yes\nyes: ret #1\nno: ret #0",
        ];
        let mut set = FilterSet::default();
        let mut checked = 0;
        for (round, shape) in shapes.iter().cycle().take(40).enumerate() {
            // Vary the constants so the tables grow past every budget.
            let text = shape.replace("0x800", &format!("{:#x}", 0x800 + round));
            let p = Program::validate(&parse_asm(&text).unwrap()).unwrap();
            set.add(NamedProgram::new(&format!("f{round}"), p)).unwrap();
            let a = set.publish();
            let insns = generate(&a).expect("these sets have a prefilter");
            Program::validate(&insns).unwrap_or_else(|e| panic!("round {round}: {e}"));
            for budget in ATTEMPTS {
                if let Some(insns) = attempt(&a, budget).unwrap() {
                    Program::validate(&insns)
                        .unwrap_or_else(|e| panic!("round {round} {budget:?}: {e}"));
                    checked += 1;
                }
            }
        }
        assert!(checked >= 200, "{checked} programs checked");
    }

    /// A fallback whose negative-area load gives up with ACCEPT, where the
    /// dead code after it had written the cell a later instruction reads:
    /// the inlined alternative stays valid (the kernel's scratch check
    /// carries the written cells on past a `ret`, not past a `ja`).
    #[test]
    fn an_inlined_fallback_stays_valid_past_a_give_up() {
        use crate::cbpf::Insn;
        let net_off_9 = (crate::cbpf::program::SKF_NET_OFF + 9) as u32;
        let insns = [
            Insn::new(0x28, 0, 0, 12),        // ldh [12]
            Insn::new(0x15, 0, 3, 0x86dd),    // jeq #0x86dd, 2, 5
            Insn::new(0x30, 0, 0, 20),        // ldb [20]
            Insn::new(0x02, 0, 0, 0),         // st M[0]
            Insn::new(0x05, 0, 0, 2),         // ja 7
            Insn::new(0x30, 0, 0, net_off_9), // ldb [NET_OFF + 9]
            Insn::new(0x02, 0, 0, 0),         // st M[0]
            Insn::new(0x60, 0, 0, 0),         // ld M[0]
            Insn::new(0x15, 0, 1, 6),         // jeq #6, 9, 10
            Insn::new(0x06, 0, 0, u32::MAX),  // ret #-1
            Insn::new(0x06, 0, 0, 0),         // ret #0
        ];
        let p = Program::validate(&insns).unwrap();
        let config = crate::Config {
            limits: crate::ir::Limits {
                max_paths: 1,
                ..crate::ir::Limits::default()
            },
            ..crate::Config::default()
        };
        let mut set = FilterSet::with_config(config);
        set.add(NamedProgram::new("v6-or-net", p)).unwrap();
        assert_eq!(set.stats().fallbacks, 1);
        let insns = generate(&set.publish()).expect("inlined");
        Program::validate(&insns).expect("the inlined program is valid");
    }
}

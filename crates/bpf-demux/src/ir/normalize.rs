//! Normalization: symbolic execution of a validated program into its
//! accepting paths.
//!
//! The program runs on terms instead of numbers: A, X and M[] hold
//! [`TermId`]s, every branch forks the path with a [`Lit`], and each path
//! that returns non-zero is kept as a conjunction of literals plus its
//! return value. A load adds a guard (the kernel drops the frame when a
//! load falls outside it); a division by X adds `X != 0`. Literals the
//! path's facts already decide are not added and dead branches are
//! dropped; at the end of a path, literals made redundant by later ones
//! are removed and the rest sorted canonically.
//!
//! Because every load a path executes is guarded, a path's conjunction
//! holds for a frame exactly when the program, run on that frame, follows
//! that path; so at most one path of a filter holds for any frame, and the
//! literals may be tested in any order.

use super::lit::{Facts, Lit};
use super::term::{Interner, Term, TermId};
use crate::cbpf::{AluOp, Anc, FrameMeta, Instr, JmpOp, Program, Size};
use smallvec::SmallVec;

/// Limits on the work normalization may do for one filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Accepting paths a filter may have.
    pub max_paths: usize,
    /// Literals one path may have.
    pub max_literals: usize,
    /// Instructions symbolically executed, over all paths.
    pub max_steps: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_paths: 256,
            max_literals: 64,
            max_steps: 200_000,
        }
    }
}

/// What an accepting path returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ret {
    /// A constant.
    Const(u32),
    /// `RET A`: the term's value (0, or a failed load, means reject).
    Term(TermId),
}

/// One accepting path: a conjunction of literals, in canonical order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path {
    /// Literals that all hold on this path, in canonical order.
    pub lits: Vec<Lit>,
    /// What the path returns.
    pub ret: Ret,
}

/// A filter's normal form: its accepting paths, sorted. Empty when the
/// filter accepts nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NormalForm {
    /// The accepting paths, sorted.
    pub paths: Vec<Path>,
}

impl NormalForm {
    /// The filter's return value for a frame, computed from the normal form
    /// alone: the return value of the one path whose literals all hold.
    pub fn eval(&self, i: &Interner, frame: &[u8], meta: &FrameMeta) -> u32 {
        for p in &self.paths {
            let holds = p.lits.iter().all(|l| {
                let ts = l.terms();
                let v = match i.eval(ts[0], frame, meta) {
                    Some(v) => v,
                    None => return false,
                };
                let w = match ts.get(1) {
                    Some(&t) => match i.eval(t, frame, meta) {
                        Some(w) => w,
                        None => return false,
                    },
                    None => 0,
                };
                l.holds(v, w)
            });
            if holds {
                return match p.ret {
                    Ret::Const(k) => k,
                    Ret::Term(t) => i.eval(t, frame, meta).unwrap_or(0),
                };
            }
        }
        0
    }
}

/// Why a filter has no normal form within the limits (it then runs in the
/// fallback interpreter, still exact).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("more than {limit} accepting paths")]
    /// Past the per-filter path limit.
    TooManyPaths {
        /// The limit.
        limit: usize,
    },
    #[error("a path with more than {limit} tests")]
    /// Past the per-path literal limit.
    TooManyLiterals {
        /// The limit.
        limit: usize,
    },
    #[error("more than {limit} symbolic steps")]
    /// Past the symbolic-step limit.
    TooMuchWork {
        /// The limit.
        limit: usize,
    },
}

#[derive(Clone)]
struct State {
    pc: usize,
    a: TermId,
    x: TermId,
    mem: [TermId; 16],
    lits: Vec<Lit>,
    guards: SmallVec<[TermId; 4]>,
    facts: Facts,
}

/// Normalizes `prog`, making its terms in `interner`.
pub fn normalize(
    prog: &Program,
    i: &mut Interner,
    limits: &Limits,
) -> Result<NormalForm, NormalizeError> {
    let code = prog.instrs();
    let zero = i.konst(0);
    let mut stack = vec![State {
        pc: 0,
        a: zero,
        x: zero,
        mem: [zero; 16],
        lits: Vec::new(),
        guards: SmallVec::new(),
        facts: Facts::default(),
    }];
    let mut paths = Vec::new();
    let mut steps = 0usize;
    'paths: while let Some(mut s) = stack.pop() {
        loop {
            steps += 1;
            if steps > limits.max_steps {
                return Err(NormalizeError::TooMuchWork {
                    limit: limits.max_steps,
                });
            }
            match code[s.pc] {
                Instr::LdAbs { size, off } => {
                    let o = i.konst(off);
                    s.a = i.load(size, o);
                    s.guards.push(s.a);
                }
                Instr::LdInd { size, off } => {
                    let k = i.konst(off);
                    let o = i.alu(AluOp::Add, s.x, k);
                    s.a = i.load(size, o);
                    s.guards.push(s.a);
                }
                Instr::LdAnc(Anc::AluXorX) => s.a = i.alu(AluOp::Xor, s.a, s.x),
                Instr::LdAnc(anc) => s.a = i.anc(anc),
                Instr::LdLen => s.a = i.len_term(),
                Instr::LdImm(k) => s.a = i.konst(k),
                Instr::LdMem(m) => s.a = s.mem[m as usize],
                Instr::LdxLen => s.x = i.len_term(),
                Instr::LdxImm(k) => s.x = i.konst(k),
                Instr::LdxMem(m) => s.x = s.mem[m as usize],
                Instr::LdxMsh(off) => {
                    let o = i.konst(off);
                    let l = i.load(Size::B, o);
                    s.guards.push(l);
                    let m = i.konst(0xf);
                    let low = i.alu(AluOp::And, l, m);
                    let two = i.konst(2);
                    s.x = i.alu(AluOp::Lsh, low, two);
                }
                Instr::St(m) => s.mem[m as usize] = s.a,
                Instr::Stx(m) => s.mem[m as usize] = s.x,
                Instr::AluK(op, k) => {
                    let k = i.konst(k);
                    s.a = i.alu(op, s.a, k);
                }
                Instr::AluX(op) => {
                    if matches!(op, AluOp::Div | AluOp::Mod) {
                        // X == 0 at run time: the kernel returns 0.
                        let nz = Lit::Ne(s.x, 0);
                        match s.facts.decide(i, &nz) {
                            Some(false) => continue 'paths,
                            Some(true) => {}
                            None => {
                                s.facts.assume(i, &nz);
                                s.lits.push(nz);
                            }
                        }
                    }
                    s.a = i.alu(op, s.a, s.x);
                }
                Instr::Neg => s.a = i.neg(s.a),
                Instr::Tax => s.x = s.a,
                Instr::Txa => s.a = s.x,
                Instr::Ja(t) => {
                    s.pc = t as usize;
                    continue;
                }
                Instr::JmpK { op, k, jt, jf } => {
                    let kt = i.konst(k);
                    let (lt, lf) = branch_lits(i, op, s.a, kt);
                    if !fork(i, &mut s, &mut stack, (lt, jt as usize), (lf, jf as usize)) {
                        continue 'paths;
                    }
                    continue;
                }
                Instr::JmpX { op, jt, jf } => {
                    let (lt, lf) = branch_lits(i, op, s.a, s.x);
                    if !fork(i, &mut s, &mut stack, (lt, jt as usize), (lf, jf as usize)) {
                        continue 'paths;
                    }
                    continue;
                }
                Instr::RetK(0) => continue 'paths,
                Instr::RetK(k) => {
                    finish(i, s, Ret::Const(k), limits, &mut paths)?;
                    continue 'paths;
                }
                Instr::RetA => {
                    let ret = match i.as_const(s.a) {
                        Some(0) => continue 'paths,
                        Some(k) => Ret::Const(k),
                        None => match s.facts.decide(i, &Lit::Range(s.a, 0, 0)) {
                            Some(true) => continue 'paths,
                            _ => Ret::Term(s.a),
                        },
                    };
                    finish(i, s, ret, limits, &mut paths)?;
                    continue 'paths;
                }
            }
            s.pc += 1;
        }
    }
    paths.sort();
    paths.dedup();
    Ok(NormalForm { paths })
}

/// The literals for the true and false outcomes of `a op b`; `None` for an
/// outcome that cannot happen.
fn branch_lits(i: &mut Interner, op: JmpOp, a: TermId, b: TermId) -> (Option<Lit>, Option<Lit>) {
    if let Some(k) = i.as_const(b) {
        return match op {
            JmpOp::Eq => (Some(Lit::Eq(a, k)), Some(Lit::Ne(a, k))),
            JmpOp::Gt => (
                (k < u32::MAX).then(|| Lit::Range(a, k + 1, u32::MAX)),
                Some(Lit::Range(a, 0, k)),
            ),
            JmpOp::Ge => (
                Some(Lit::Range(a, k, u32::MAX)),
                (k > 0).then(|| Lit::Range(a, 0, k - 1)),
            ),
            JmpOp::Set => {
                let m = i.alu(AluOp::And, a, b);
                (Some(Lit::Ne(m, 0)), Some(Lit::Eq(m, 0)))
            }
        };
    }
    if a == b {
        return match op {
            JmpOp::Eq | JmpOp::Ge => (Some(Lit::Guard(a)), None),
            JmpOp::Gt => (None, Some(Lit::Guard(a))),
            JmpOp::Set => (Some(Lit::Ne(a, 0)), Some(Lit::Eq(a, 0))),
        };
    }
    if let Some(c) = i.as_const(a) {
        // c op x, rewritten as a test on x.
        return match op {
            JmpOp::Eq => (Some(Lit::Eq(b, c)), Some(Lit::Ne(b, c))),
            // c > x  <=>  x <= c - 1
            JmpOp::Gt => (
                (c > 0).then(|| Lit::Range(b, 0, c - 1)),
                Some(Lit::Range(b, c, u32::MAX)),
            ),
            // c >= x  <=>  x <= c
            JmpOp::Ge => (
                Some(Lit::Range(b, 0, c)),
                (c < u32::MAX).then(|| Lit::Range(b, c + 1, u32::MAX)),
            ),
            JmpOp::Set => {
                let m = i.alu(AluOp::And, b, a);
                (Some(Lit::Ne(m, 0)), Some(Lit::Eq(m, 0)))
            }
        };
    }
    match op {
        JmpOp::Set => {
            let m = i.alu(AluOp::And, a, b);
            (Some(Lit::Ne(m, 0)), Some(Lit::Eq(m, 0)))
        }
        JmpOp::Eq => {
            let (x, y) = if a < b { (a, b) } else { (b, a) };
            (
                Some(Lit::Cmp(JmpOp::Eq, x, y, true)),
                Some(Lit::Cmp(JmpOp::Eq, x, y, false)),
            )
        }
        _ => (
            Some(Lit::Cmp(op, a, b, true)),
            Some(Lit::Cmp(op, a, b, false)),
        ),
    }
}

/// Continues `s` into the outcomes its facts allow, forking when both
/// are; false when neither is (the path was already infeasible).
fn fork(
    i: &Interner,
    s: &mut State,
    stack: &mut Vec<State>,
    (lt, jt): (Option<Lit>, usize),
    (lf, jf): (Option<Lit>, usize),
) -> bool {
    let mut live: SmallVec<[(Option<Lit>, usize); 2]> = SmallVec::new();
    for (lit, target) in [(lt, jt), (lf, jf)] {
        let Some(lit) = lit else { continue };
        match s.facts.decide(i, &lit) {
            Some(false) => {}
            Some(true) => live.push((None, target)),
            None => live.push((Some(lit), target)),
        }
    }
    if live.len() == 2 && jt == jf {
        // Both outcomes go to the same place: no test needed (its terms'
        // loads are already guarded).
        live.truncate(1);
        live[0].0 = None;
    }
    if live.is_empty() {
        return false;
    }
    for (n, (lit, target)) in live.iter().enumerate().rev() {
        if n == 0 {
            if let Some(l) = lit {
                s.facts.assume(i, l);
                s.lits.push(*l);
            }
            s.pc = *target;
        } else {
            let mut t = s.clone();
            if let Some(l) = lit {
                t.facts.assume(i, l);
                t.lits.push(*l);
            }
            t.pc = *target;
            stack.push(t);
        }
    }
    true
}

/// Every load term with a constant non-negative offset inside `t`: the
/// largest end offset among them. Visits each subterm once.
fn max_const_end(i: &Interner, t: TermId, acc: &mut u64) {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![t];
    while let Some(u) = stack.pop() {
        if !seen.insert(u) {
            continue;
        }
        if let Some(e) = const_end(i, u) {
            *acc = (*acc).max(e);
        }
        i.children(u, |c| stack.push(c));
    }
}

fn const_end(i: &Interner, t: TermId) -> Option<u64> {
    if let Term::Load(size, off) = i.get(t) {
        if let Some(k) = i.as_const(off) {
            if (k as i32) >= 0 {
                return Some(k as u64 + size.bytes() as u64);
            }
        }
    }
    None
}

/// Ends an accepting path: removes redundant literals and guards, sorts.
fn finish(
    i: &Interner,
    s: State,
    ret: Ret,
    limits: &Limits,
    paths: &mut Vec<Path>,
) -> Result<(), NormalizeError> {
    // What the path's equalities and ranges say of each term, gathered in
    // one pass (a long `or` chain leaves hundreds of literals on one term:
    // comparing every literal with every other made finishing its paths
    // cubic in the chain's length).
    struct Known {
        t: TermId,
        /// An equality's constant, and whether another equality of the
        /// term names a different one.
        eq: Option<u32>,
        eq_conflict: bool,
        /// The intersection of the term's ranges, and whether it was
        /// emitted (at the first range's place).
        range: Option<(u32, u32)>,
        emitted: bool,
    }
    let mut known: SmallVec<[Known; 8]> = SmallVec::new();
    fn entry(known: &mut SmallVec<[Known; 8]>, t: TermId) -> &mut Known {
        match known.iter().position(|k| k.t == t) {
            Some(i) => &mut known[i],
            None => {
                known.push(Known {
                    t,
                    eq: None,
                    eq_conflict: false,
                    range: None,
                    emitted: false,
                });
                known.last_mut().unwrap()
            }
        }
    }
    for l in &s.lits {
        match *l {
            Lit::Eq(t, k) => {
                let e = entry(&mut known, t);
                match e.eq {
                    None => e.eq = Some(k),
                    Some(j) if j != k => e.eq_conflict = true,
                    Some(_) => {}
                }
            }
            Lit::Range(t, lo, hi) => {
                let e = entry(&mut known, t);
                e.range = Some(match e.range {
                    None => (lo, hi),
                    Some((a, b)) => (a.max(lo), b.min(hi)),
                });
            }
            _ => {}
        }
    }
    let mut lits: Vec<Lit> = Vec::with_capacity(s.lits.len());
    // Ranges: one per term, the intersection; none when an equality decides it.
    for l in &s.lits {
        match *l {
            Lit::Range(t, ..) => {
                let e = entry(&mut known, t);
                if e.eq.is_some() || e.emitted {
                    continue;
                }
                e.emitted = true;
                let (lo, hi) = e.range.expect("gathered above");
                lits.push(Lit::Range(t, lo, hi));
            }
            Lit::Ne(t, k) => {
                // Implied by an equality to another constant, or by a
                // range (any one of them) that excludes `k`.
                let implied = known.iter().find(|e| e.t == t).is_some_and(|e| {
                    e.eq.is_some_and(|j| j != k || e.eq_conflict)
                        || e.range.is_some_and(|(lo, hi)| k < lo || k > hi)
                });
                if !implied {
                    lits.push(*l);
                }
            }
            _ => lits.push(*l),
        }
    }
    // Guards: a load is proven in bounds by any literal or the return value
    // using it, or by another constant-offset load reaching as far.
    let mut used: Vec<TermId> = lits.iter().flat_map(|l| l.terms()).collect();
    if let Ret::Term(t) = ret {
        used.push(t);
    }
    let mut end = 0u64;
    for &t in &used {
        max_const_end(i, t, &mut end);
    }
    let mut guards: Vec<TermId> = Vec::new();
    for &g in &s.guards {
        if used.iter().any(|&u| i.contains(u, g)) || guards.contains(&g) {
            continue;
        }
        guards.push(g);
    }
    let guard_end = guards
        .iter()
        .filter_map(|&g| const_end(i, g))
        .max()
        .unwrap_or(0);
    let mut kept_const = false;
    for g in guards {
        match const_end(i, g) {
            Some(e) if e <= end => {}
            Some(e) if e == guard_end && !kept_const => {
                kept_const = true;
                lits.push(Lit::Guard(g));
            }
            Some(_) => {}
            None => lits.push(Lit::Guard(g)),
        }
    }
    lits.sort_by_key(|l| l.sort_key(i));
    lits.dedup();
    if lits.len() > limits.max_literals {
        return Err(NormalizeError::TooManyLiterals {
            limit: limits.max_literals,
        });
    }
    paths.push(Path { lits, ret });
    if paths.len() > limits.max_paths {
        return Err(NormalizeError::TooManyPaths {
            limit: limits.max_paths,
        });
    }
    Ok(())
}

//! The runtime: one pass of a frame through the merged structure.
//!
//! Pipeline position: after `merge`. An [`Automaton`] is immutable once
//! published and shared by threads behind an `Arc`; each thread keeps its
//! own [`Cache`] (a term memo stamped with a per-frame generation, and a
//! traversal stack). [`Automaton::matches_into`] allocates nothing once the
//! cache and output have grown to the set's size: every distinct term is
//! evaluated at most once per frame, whichever filters use it.

mod prefilter;

pub use prefilter::ACCEPT as PREFILTER_ACCEPT;

use crate::cbpf::{self, FrameMeta, Program};
use crate::ir::term::eval_step;
use crate::ir::{Lit, Ret, Term, TermId};
use crate::merge::cow::ChunkVec;
use crate::merge::{FilterId, Group, NodeId, Trie};
use std::sync::Arc;

/// The compiled, shareable form of a filter set.
#[derive(Clone, Debug, Default)]
pub struct Automaton {
    pub(crate) terms: ChunkVec<Term>,
    pub(crate) trie: Trie,
    /// Filters outside the trie (over the limits), run by the interpreter.
    pub(crate) fallbacks: Arc<Vec<(FilterId, Arc<Program>)>>,
}

/// Memo stamp bit marking a term whose evaluation failed this frame.
const FAILED: u32 = 1 << 31;

/// Per-thread scratch for [`Automaton::matches_into`].
#[derive(Clone, Debug, Default)]
pub struct Cache {
    gen: u32,
    /// `(stamp, value)`: the value is this frame's iff `stamp == gen`; the
    /// term failed this frame iff `stamp == gen | FAILED`.
    memo: Vec<(u32, u32)>,
    stack: Vec<NodeId>,
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }
    fn start_frame(&mut self, terms: usize) {
        if self.memo.len() < terms {
            self.memo.resize(terms, (0, 0));
        }
        self.gen += 1;
        if self.gen >= FAILED {
            self.memo.iter_mut().for_each(|e| e.0 = 0);
            self.gen = 1;
        }
        self.stack.clear();
    }
}

/// Every filter that accepts a frame, with its return value (non-zero).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MatchSet {
    matches: Vec<(FilterId, u32)>,
}

impl MatchSet {
    pub fn new() -> MatchSet {
        MatchSet::default()
    }
    pub fn clear(&mut self) {
        self.matches.clear();
    }
    pub fn len(&self) -> usize {
        self.matches.len()
    }
    pub fn is_empty(&self) -> bool {
        self.matches.is_empty()
    }
    /// `(filter, return value)` pairs, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (FilterId, u32)> + '_ {
        self.matches.iter().copied()
    }
    /// The return value of `filter`, if it matched.
    pub fn get(&self, filter: FilterId) -> Option<u32> {
        self.matches.iter().find(|m| m.0 == filter).map(|m| m.1)
    }
    /// Sorts by filter id (for comparisons and stable output).
    pub fn sort(&mut self) {
        self.matches.sort_unstable();
    }
    pub fn as_slice(&self) -> &[(FilterId, u32)] {
        &self.matches
    }
    pub(crate) fn push(&mut self, f: FilterId, v: u32) {
        self.matches.push((f, v));
    }
}

impl Automaton {
    #[inline]
    fn eval(&self, c: &mut Cache, t: TermId, frame: &[u8], meta: &FrameMeta) -> Option<u32> {
        let term = *self.terms.get(t.index());
        if let Term::Const(k) = term {
            return Some(k);
        }
        let (stamp, val) = c.memo[t.index()];
        if stamp == c.gen {
            return Some(val);
        }
        if stamp == c.gen | FAILED {
            return None;
        }
        let r = eval_step(term, frame, meta, |s| self.eval(c, s, frame, meta));
        c.memo[t.index()] = match r {
            Some(v) => (c.gen, v),
            None => (c.gen | FAILED, 0),
        };
        r
    }

    fn lit_holds(&self, c: &mut Cache, lit: &Lit, frame: &[u8], meta: &FrameMeta) -> bool {
        match *lit {
            Lit::Cmp(_, a, b, _) => {
                match (self.eval(c, a, frame, meta), self.eval(c, b, frame, meta)) {
                    (Some(v), Some(w)) => lit.holds(v, w),
                    _ => false,
                }
            }
            Lit::Eq(t, _) | Lit::Ne(t, _) | Lit::Range(t, ..) | Lit::Guard(t) => {
                match self.eval(c, t, frame, meta) {
                    Some(v) => lit.holds(v, 0),
                    None => false,
                }
            }
        }
    }

    /// Every filter accepting `frame` (the captured bytes) with `meta`,
    /// into `out` (cleared first). Allocates nothing once `cache` and `out`
    /// have grown to this set's size.
    pub fn matches_into(
        &self,
        cache: &mut Cache,
        frame: &[u8],
        meta: &FrameMeta,
        out: &mut MatchSet,
    ) {
        out.clear();
        cache.start_frame(self.terms.len());
        cache.stack.push(NodeId::ROOT);
        while let Some(n) = cache.stack.pop() {
            let node = self.trie.node(n);
            for a in &node.accepts {
                let v = match a.ret {
                    Ret::Const(k) => k,
                    Ret::Term(t) => self.eval(cache, t, frame, meta).unwrap_or(0),
                };
                if v != 0 {
                    out.push(a.filter, v);
                }
            }
            for g in &node.groups {
                match g {
                    Group::Eq { term, table } => {
                        if let Some(v) = self.eval(cache, *term, frame, meta) {
                            if let Some(child) = table.get(v) {
                                cache.stack.push(child);
                            }
                        }
                    }
                    Group::Range { term, table } => {
                        if let Some(v) = self.eval(cache, *term, frame, meta) {
                            let stack = &mut cache.stack;
                            table.each_holding(v, |child| stack.push(child));
                        }
                    }
                    Group::Test { lit, child } => {
                        if self.lit_holds(cache, lit, frame, meta) {
                            cache.stack.push(*child);
                        }
                    }
                }
            }
        }
        for (f, prog) in self.fallbacks.iter() {
            let v = cbpf::run(prog, frame, meta);
            if v != 0 {
                out.push(*f, v);
            }
        }
    }

    /// Convenience form of [`matches_into`](Self::matches_into); allocates.
    pub fn matches(&self, frame: &[u8], meta: &FrameMeta) -> MatchSet {
        let mut out = MatchSet::new();
        self.matches_into(&mut Cache::new(), frame, meta, &mut out);
        out
    }
}

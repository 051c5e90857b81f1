//! The runtime: one pass of a frame through the merged structure.
//!
//! Pipeline position: after `merge`. An [`Automaton`] is immutable once
//! published and shared by threads behind an `Arc`; each thread keeps its
//! own [`Cache`] (a term memo stamped with a per-frame generation, and a
//! traversal stack). [`Automaton::matches_into`] allocates nothing once the
//! cache and output have grown to the set's size: every distinct term is
//! evaluated at most once per frame, whichever filters use it. The
//! automaton carries its filters' names and snaplens ([`Automaton::filter`]),
//! so a published version describes itself, as `RegexSet::patterns` does.

mod matchset;

pub use crate::merge::FilterId;
pub use matchset::MatchSet;

use crate::cbpf::{self, FrameMeta, Program};
use crate::ir::term::eval_step;
use crate::ir::{Interner, Lit, NormalForm, Ret, Term, TermId};
use crate::merge::cow::ChunkVec;
use crate::merge::{Accept, Group, NodeId, Trie};
use std::sync::Arc;

/// What a published set says about one of its filters: its name and the
/// cap on the bytes delivered for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterInfo {
    name: Arc<str>,
    snaplen: Option<u32>,
}

impl FilterInfo {
    /// A filter called `name`, its deliveries capped at `snaplen` bytes.
    pub fn new(name: &str, snaplen: Option<u32>) -> FilterInfo {
        FilterInfo {
            name: name.into(),
            snaplen,
        }
    }
    /// The filter's name, unique in its set.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The cap on delivered bytes, if the filter has one besides its
    /// return value.
    pub fn snaplen(&self) -> Option<u32> {
        self.snaplen
    }
}

/// The compiled, shareable form of a filter set: match frames with
/// [`matches_into`](Self::matches_into), look its filters up with
/// [`filter`](Self::filter). Made by [`FilterSet::publish`](crate::FilterSet::publish)
/// (or borrowed with [`FilterSet::automaton`](crate::FilterSet::automaton)).
///
/// ```
/// use bpf_demux::cbpf::{text, FrameMeta, Program};
/// use bpf_demux::{Cache, FilterSet, MatchSet, NamedProgram};
/// let prog = |s: &str| Program::validate(&text::parse_ddd(s).unwrap()).unwrap();
/// let mut set = FilterSet::new([
///     NamedProgram::new("ipv4", prog("4,40 0 0 12,21 0 1 2048,6 0 0 262144,6 0 0 0")),
///     NamedProgram::new("arp", prog("4,40 0 0 12,21 0 1 2054,6 0 0 96,6 0 0 0")).with_snaplen(64),
/// ])
/// .unwrap();
/// let automaton = set.publish(); // an Arc, for capture threads
/// let (mut cache, mut out) = (Cache::new(), MatchSet::new());
/// let mut frame = [0u8; 60];
/// frame[12..14].copy_from_slice(&[0x08, 0x06]);
/// automaton.matches_into(&mut cache, &frame, &FrameMeta::offline(&frame, 60), &mut out);
/// let arp = set.id("arp").unwrap();
/// assert_eq!(out.get(arp), Some(96));
/// assert_eq!(out.len(), 1);
/// let info = automaton.filter(arp).unwrap();
/// assert_eq!((info.name(), info.snaplen()), ("arp", Some(64)));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Automaton {
    terms: ChunkVec<Term>,
    trie: Trie,
    /// Filters outside the trie (over the limits), run by the interpreter.
    fallbacks: Arc<Vec<(FilterId, Arc<Program>)>>,
    /// Per filter id: the live filter's name and snaplen.
    filters: ChunkVec<Option<FilterInfo>>,
    live: usize,
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
    /// An empty cache; it grows to the set on first use.
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

impl Automaton {
    /// The live filter `id`: its name and snaplen; `None` for an id this
    /// version does not hold (never added, or removed before it was made).
    pub fn filter(&self, id: FilterId) -> Option<&FilterInfo> {
        if id.index() < self.filters.len() {
            self.filters.get(id.index()).as_ref()
        } else {
            None
        }
    }
    /// The name of live filter `id`.
    pub fn name(&self, id: FilterId) -> Option<&str> {
        self.filter(id).map(FilterInfo::name)
    }
    /// Every live filter, by id.
    pub fn filters(&self) -> impl Iterator<Item = (FilterId, &FilterInfo)> + '_ {
        self.filters
            .iter()
            .enumerate()
            .filter_map(|(i, f)| Some((FilterId(i as u32), f.as_ref()?)))
    }
    /// How many live filters this version holds.
    pub fn len(&self) -> usize {
        self.live
    }
    /// Whether it holds none (it then matches nothing).
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
    /// One past the highest filter id this version has a slot for: a
    /// [`MatchSet`] indexes by id, so this is its size.
    pub fn id_bound(&self) -> usize {
        self.filters.len()
    }

    // The build side, driven by `FilterSet` (the working copy it publishes).

    /// Records live filter `id` (a free slot or the next one).
    pub(crate) fn set_filter(&mut self, id: FilterId, info: FilterInfo) {
        while self.filters.len() < id.index() {
            // Compaction re-adds live filters by id, leaving removed ids
            // empty.
            self.filters.push(None);
        }
        if id.index() == self.filters.len() {
            self.filters.push(Some(info));
        } else {
            *self.filters.get_mut(id.index()) = Some(info);
        }
        self.live += 1;
    }
    /// Forgets live filter `id`.
    pub(crate) fn clear_filter(&mut self, id: FilterId) {
        *self.filters.get_mut(id.index()) = None;
        self.live -= 1;
    }
    /// Takes in the terms `interner` made since the last call.
    pub(crate) fn sync_terms(&mut self, interner: &Interner) {
        for t in interner.terms_from(self.terms.len()) {
            self.terms.push(t);
        }
    }
    /// Inserts every path of `nf` for filter `id`; returns their leaves.
    pub(crate) fn insert_paths(&mut self, id: FilterId, nf: &NormalForm) -> Vec<NodeId> {
        nf.paths
            .iter()
            .map(|p| {
                self.trie.insert(
                    &p.lits,
                    Accept {
                        filter: id,
                        ret: p.ret,
                    },
                )
            })
            .collect()
    }
    /// Removes filter `id`'s paths (their `leaves`).
    pub(crate) fn remove_paths(&mut self, id: FilterId, leaves: &[NodeId]) {
        for &leaf in leaves {
            self.trie.remove(leaf, id);
        }
    }
    pub(crate) fn add_fallback(&mut self, id: FilterId, program: Arc<Program>) {
        Arc::make_mut(&mut self.fallbacks).push((id, program));
    }
    pub(crate) fn remove_fallback(&mut self, id: FilterId) {
        Arc::make_mut(&mut self.fallbacks).retain(|f| f.0 != id)
    }

    // Read access for the back ends (the kernel prefilter) and the set's
    // stats and explanation.

    /// The merged structure.
    pub(crate) fn trie(&self) -> &Trie {
        &self.trie
    }
    /// Term `t`.
    pub(crate) fn term(&self, t: TermId) -> Term {
        *self.terms.get(t.index())
    }
    /// Terms held (live or not: the table grows until the set compacts).
    pub(crate) fn term_count(&self) -> usize {
        self.terms.len()
    }
    /// Filters run by the fallback interpreter.
    pub(crate) fn fallbacks(&self) -> &[(FilterId, Arc<Program>)] {
        &self.fallbacks
    }

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
        out.start(self.filters.len());
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

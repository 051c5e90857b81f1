//! [`FilterSet`]: the public face of the engine.
//!
//! A set of named, validated programs compiled into one merged structure.
//! Build it once ([`FilterSet::new`], [`FilterSet::from_file`]), add and
//! remove filters as tenants come and go ([`FilterSet::add`],
//! [`FilterSet::remove`]: O(the filter's paths)), and hand
//! [`FilterSet::publish`]'s `Arc<Automaton>` to capture threads. Each
//! filter is normalized; one whose normal form passes the limits (paths,
//! literals, work, or the set's node budget) is kept as a *fallback* and run
//! by the reference interpreter, so the answers stay exact.
//!
//! ```
//! use bpf_demux::{cbpf::{text, FrameMeta, Program}, spec::NamedProgram, FilterSet};
//! let prog = |s: &str| Program::validate(&text::parse_ddd(s).unwrap()).unwrap();
//! let set = FilterSet::new([
//!     NamedProgram { name: "ipv4".into(), program: prog("4,40 0 0 12,21 0 1 2048,6 0 0 262144,6 0 0 0"), snaplen: None },
//!     NamedProgram { name: "arp".into(), program: prog("4,40 0 0 12,21 0 1 2054,6 0 0 96,6 0 0 0"), snaplen: None },
//! ]).unwrap();
//! let mut frame = [0u8; 60];
//! frame[12..14].copy_from_slice(&[0x08, 0x06]);
//! let m = set.matches(&frame, &FrameMeta::offline(&frame, 60));
//! let got: Vec<_> = m.iter().map(|(id, ret)| (set.name(id), ret)).collect();
//! assert_eq!(got, [("arp", 96)]);
//! ```

use crate::cbpf::FrameMeta;
use crate::cbpf::Program;
use crate::exec::{Automaton, Cache, MatchSet};
use crate::ir::{normalize, Interner, Limits, NormalForm, NormalizeError};
use crate::merge::{Accept, FilterId, Group, NodeId};
use crate::spec::{self, NamedProgram, SpecError};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

/// How a set is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Per-filter normalization limits.
    pub limits: Limits,
    /// Nodes the merged structure may hold; a filter that would pass it
    /// becomes a fallback.
    pub max_nodes: usize,
    /// Removals after which the set is compacted (see
    /// [`FilterSet::remove`]); at least the live filters' count.
    pub compact_after: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            limits: Limits::default(),
            max_nodes: 4_000_000,
            compact_after: 1024,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    #[error("filter name `{0}` is already in the set")]
    DuplicateName(String),
    #[error("bad filter name `{0}` (use letters, digits, `_`, `.`, `-`)")]
    BadName(String),
    #[error("filter `{name}`: {err}")]
    Unknowable {
        name: String,
        err: crate::cbpf::UnknowableLoad,
    },
}

#[derive(Clone, Debug)]
enum Placement {
    Merged { leaves: Vec<NodeId> },
    Fallback { reason: NormalizeError },
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    program: Arc<Program>,
    snaplen: Option<u32>,
    placement: Placement,
    form: Option<Arc<NormalForm>>,
}

/// Counts describing a built set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub filters: usize,
    /// Filters in the merged structure.
    pub merged: usize,
    /// Filters run by the fallback interpreter.
    pub fallbacks: usize,
    /// Accepting paths inserted.
    pub paths: usize,
    /// Distinct terms (after hash-consing).
    pub terms: usize,
    /// Term constructions that found an existing term.
    pub terms_shared: u64,
    /// Live nodes of the merged structure (root included).
    pub nodes: usize,
    /// Edges (distinct literal occurrences) = nodes - 1.
    pub literals: usize,
    /// Equality groups, and those dispatched by a hash table.
    pub eq_groups: usize,
    pub hash_switches: usize,
    pub range_groups: usize,
    pub single_tests: usize,
    /// Filters whose normal form equals an earlier filter's.
    pub equivalent_filters: usize,
    /// Approximate heap bytes of the compact form.
    pub bytes: usize,
}

/// A set of named filters compiled into one merged structure.
#[derive(Debug)]
pub struct FilterSet {
    config: Config,
    interner: Interner,
    entries: Vec<Option<Entry>>,
    by_name: HashMap<String, FilterId>,
    forms: HashMap<Arc<NormalForm>, usize>,
    working: Automaton,
    published: Option<Arc<Automaton>>,
    /// Ids of removed filters, reused by the next adds.
    free: Vec<FilterId>,
    removed_since_compact: usize,
}

impl Default for FilterSet {
    fn default() -> Self {
        FilterSet::with_config(Config::default())
    }
}

impl FilterSet {
    pub fn with_config(config: Config) -> FilterSet {
        FilterSet {
            config,
            interner: Interner::new(),
            entries: Vec::new(),
            by_name: HashMap::new(),
            forms: HashMap::new(),
            working: Automaton::default(),
            published: None,
            free: Vec::new(),
            removed_since_compact: 0,
        }
    }

    /// A set of `filters`, with the default configuration.
    pub fn new(filters: impl IntoIterator<Item = NamedProgram>) -> Result<FilterSet, SetError> {
        let mut s = FilterSet::default();
        for f in filters {
            s.add(f)?;
        }
        Ok(s)
    }

    /// Loads, validates and compiles a filter-set file.
    pub fn from_file(path: &Path) -> Result<FilterSet, SpecError> {
        let progs = spec::load_valid(path)?;
        // Names were checked unique and programs installable by the loader.
        Ok(FilterSet::new(progs).expect("validated set"))
    }

    /// Adds a filter: O(its paths). Fails on a duplicate or bad name, or a
    /// program that reads what userland cannot know. The id may be one a
    /// removed filter had (ids stay below the most filters ever live at
    /// once): an automaton published before the removal still names the
    /// old filter with it, so keep such an automaton with the names it was
    /// published with (as a live capture's routing does).
    pub fn add(&mut self, f: NamedProgram) -> Result<FilterId, SetError> {
        FilterSet::check(&f)?;
        if self.by_name.contains_key(&f.name) {
            return Err(SetError::DuplicateName(f.name));
        }
        let id = self
            .free
            .pop()
            .unwrap_or(FilterId(self.entries.len() as u32));
        self.insert(id, f);
        Ok(id)
    }

    /// What [`add`](Self::add) requires of a filter besides a name not yet
    /// in the set: a legal name, a program userland can run.
    pub fn check(f: &NamedProgram) -> Result<(), SetError> {
        if !spec::valid_name(&f.name) {
            return Err(SetError::BadName(f.name.clone()));
        }
        f.program
            .check_userland()
            .map_err(|err| SetError::Unknowable {
                name: f.name.clone(),
                err,
            })
    }

    /// Places checked filter `f` under `id` (a free slot or the next one).
    fn insert(&mut self, id: FilterId, f: NamedProgram) {
        let program = Arc::new(f.program);
        let normal = normalize(&program, &mut self.interner, &self.config.limits);
        for t in &self.interner.terms()[self.working.terms.len()..] {
            self.working.terms.push(*t);
        }
        let (placement, form) = match normal {
            Ok(nf) => {
                let lits: usize = nf.paths.iter().map(|p| p.lits.len()).sum();
                if self.working.trie.live_nodes() + lits > self.config.max_nodes {
                    self.add_fallback(id, &program);
                    (
                        Placement::Fallback {
                            reason: NormalizeError::TooMuchWork {
                                limit: self.config.max_nodes,
                            },
                        },
                        None,
                    )
                } else {
                    let leaves = nf
                        .paths
                        .iter()
                        .map(|p| {
                            self.working.trie.insert(
                                &p.lits,
                                Accept {
                                    filter: id,
                                    ret: p.ret,
                                },
                            )
                        })
                        .collect();
                    let nf = Arc::new(nf);
                    *self.forms.entry(nf.clone()).or_insert(0) += 1;
                    (Placement::Merged { leaves }, Some(nf))
                }
            }
            Err(reason) => {
                self.add_fallback(id, &program);
                (Placement::Fallback { reason }, None)
            }
        };
        self.by_name.insert(f.name.clone(), id);
        let entry = Some(Entry {
            name: f.name,
            program,
            snaplen: f.snaplen,
            placement,
            form,
        });
        if id.index() == self.entries.len() {
            self.entries.push(entry);
        } else {
            self.entries[id.index()] = entry;
        }
        self.published = None;
    }

    fn add_fallback(&mut self, id: FilterId, program: &Arc<Program>) {
        Arc::make_mut(&mut self.working.fallbacks).push((id, program.clone()));
    }

    /// Removes a filter: O(its paths); its id goes back to the free list.
    /// Terms and trie slots are not freed one by one: once the removals
    /// since the last compaction reach `Config::compact_after` and the
    /// number of live filters, the set is rebuilt from its live filters (same ids,
    /// same answers), so memory stays bounded under any churn at an
    /// amortized O(1) per removal.
    pub fn remove(&mut self, id: FilterId) -> Option<NamedProgram> {
        let removed = self.remove_entry(id)?;
        self.free.push(id);
        self.removed_since_compact += 1;
        if self.removed_since_compact >= self.config.compact_after.max(self.len()) {
            self.compact();
        }
        Some(removed)
    }

    /// Rebuilds the set from its live filters, keeping their ids: interned
    /// terms, trie nodes and normal forms of removed filters are dropped.
    /// The old structure is let go before the new one is built, so (unless
    /// a published automaton still holds it) memory never holds both.
    pub fn compact(&mut self) {
        let live: Vec<(FilterId, NamedProgram)> = std::mem::take(&mut self.entries)
            .into_iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let e = e?;
                Some((
                    FilterId(i as u32),
                    NamedProgram {
                        name: e.name,
                        program: Arc::try_unwrap(e.program).unwrap_or_else(|p| (*p).clone()),
                        snaplen: e.snaplen,
                    },
                ))
            })
            .collect();
        *self = FilterSet::with_config(self.config);
        let bound = live.last().map_or(0, |(id, _)| id.index() + 1);
        self.entries.resize_with(bound, || None);
        for (id, f) in live {
            self.insert(id, f);
        }
        // Free ids, highest first, so adds reuse the lowest.
        self.free = (0..bound as u32)
            .rev()
            .map(FilterId)
            .filter(|id| self.entries[id.index()].is_none())
            .collect();
    }

    fn remove_entry(&mut self, id: FilterId) -> Option<NamedProgram> {
        let e = self.entries.get_mut(id.index())?.take()?;
        match &e.placement {
            Placement::Merged { leaves } => {
                for &leaf in leaves {
                    self.working.trie.remove(leaf, id);
                }
            }
            Placement::Fallback { .. } => {
                Arc::make_mut(&mut self.working.fallbacks).retain(|f| f.0 != id)
            }
        }
        if let Some(nf) = &e.form {
            if let Some(c) = self.forms.get_mut(nf) {
                *c -= 1;
                if *c == 0 {
                    self.forms.remove(nf);
                }
            }
        }
        self.by_name.remove(&e.name);
        self.published = None;
        Some(NamedProgram {
            name: e.name,
            program: Arc::try_unwrap(e.program).unwrap_or_else(|p| (*p).clone()),
            snaplen: e.snaplen,
        })
    }

    /// The current compiled form, shareable with capture threads. Cheap
    /// when nothing changed; after a change, costs O(the chunks changed).
    pub fn publish(&mut self) -> Arc<Automaton> {
        if let Some(p) = &self.published {
            return p.clone();
        }
        let p = Arc::new(self.working.clone());
        self.published = Some(p.clone());
        p
    }

    /// Every filter accepting the frame, with its return value.
    pub fn matches(&self, frame: &[u8], meta: &FrameMeta) -> MatchSet {
        self.working.matches(frame, meta)
    }

    /// Allocation-free form of [`matches`](Self::matches).
    pub fn matches_into(
        &self,
        cache: &mut Cache,
        frame: &[u8],
        meta: &FrameMeta,
        out: &mut MatchSet,
    ) {
        self.working.matches_into(cache, frame, meta, out)
    }

    fn entry(&self, id: FilterId) -> &Entry {
        self.entries[id.index()].as_ref().expect("live filter id")
    }
    /// The name of a live filter.
    pub fn name(&self, id: FilterId) -> &str {
        &self.entry(id).name
    }
    pub fn snaplen(&self, id: FilterId) -> Option<u32> {
        self.entry(id).snaplen
    }
    pub fn program(&self, id: FilterId) -> &Program {
        &self.entry(id).program
    }
    pub fn id(&self, name: &str) -> Option<FilterId> {
        self.by_name.get(name).copied()
    }
    /// Live filter ids, in insertion order.
    pub fn ids(&self) -> impl Iterator<Item = FilterId> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|e| e.1.is_some())
            .map(|(i, _)| FilterId(i as u32))
    }
    pub fn len(&self) -> usize {
        self.by_name.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
    /// Slots ever allocated (ids are below this).
    pub fn id_bound(&self) -> usize {
        self.entries.len()
    }
    /// One endpoint spec per live filter (its name and snaplen cap), each
    /// with a queue of `queue` frames.
    pub fn tenant_specs(
        &self,
        queue: impl Into<crate::capture::QueueBound>,
    ) -> Vec<crate::capture::TenantSpec> {
        let queue = queue.into();
        self.ids()
            .map(|id| crate::capture::TenantSpec {
                id,
                name: self.name(id).to_owned(),
                snaplen: self.snaplen(id),
                queue,
            })
            .collect()
    }

    /// Why a filter runs in the fallback interpreter, if it does.
    pub fn fallback_reason(&self, id: FilterId) -> Option<NormalizeError> {
        match self.entry(id).placement {
            Placement::Fallback { reason } => Some(reason),
            Placement::Merged { .. } => None,
        }
    }
    pub fn interner(&self) -> &Interner {
        &self.interner
    }

    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            filters: self.len(),
            terms: self.interner.len(),
            terms_shared: self.interner.hits,
            nodes: self.working.trie.live_nodes(),
            ..Stats::default()
        };
        s.literals = s.nodes - 1;
        for e in self.entries.iter().flatten() {
            match &e.placement {
                Placement::Merged { leaves } => {
                    s.merged += 1;
                    s.paths += leaves.len();
                }
                Placement::Fallback { .. } => s.fallbacks += 1,
            }
        }
        s.equivalent_filters = self.forms.values().map(|c| c - 1).sum();
        let mut heap = 0usize;
        self.working.trie.walk(|n, _| {
            let node = self.working.trie.node(n);
            for g in &node.groups {
                match g {
                    Group::Eq { table, .. } => {
                        s.eq_groups += 1;
                        if let crate::merge::EqTable::Hash(m) = table {
                            s.hash_switches += 1;
                            heap += m.capacity() * 12;
                        }
                    }
                    Group::Range { table, .. } => {
                        s.range_groups += 1;
                        heap += table.entries.capacity() * 16;
                    }
                    Group::Test { .. } => s.single_tests += 1,
                }
            }
            if node.accepts.spilled() {
                heap += node.accepts.capacity() * std::mem::size_of::<Accept>();
            }
            if node.groups.spilled() {
                heap += node.groups.capacity() * std::mem::size_of::<Group>();
            }
        });
        s.bytes = heap
            + self.working.trie.slots() * std::mem::size_of::<crate::merge::Node>()
            + self.working.terms.len() * std::mem::size_of::<crate::ir::Term>();
        s
    }

    /// The merged structure as indented text, then its stats.
    pub fn explain(&self) -> String {
        let trie = &self.working.trie;
        let i = &self.interner;
        let mut out = String::new();
        trie.walk(|n, depth| {
            let node = trie.node(n);
            let pad = "  ".repeat(depth);
            let label = match node.edge {
                None => "root".to_string(),
                Some(l) => crate::ir::lit::display(i, &l),
            };
            let _ = write!(out, "{pad}{label}");
            for a in &node.accepts {
                let ret = match a.ret {
                    crate::ir::Ret::Const(k) => k.to_string(),
                    crate::ir::Ret::Term(t) => i.display(t).to_string(),
                };
                let _ = write!(out, "  => {}={ret}", self.name(a.filter));
            }
            out.push('\n');
        });
        for (id, _) in self.working.fallbacks.iter() {
            let _ = writeln!(
                out,
                "fallback {} ({})",
                self.name(*id),
                self.fallback_reason(*id).unwrap()
            );
        }
        let s = self.stats();
        let _ = writeln!(
            out,
            "stats: {} filters ({} merged, {} fallback), {} paths, {} terms ({} constructions shared), {} nodes, {} eq groups ({} hashed), {} range groups, {} single tests, {} equivalent filters, ~{} bytes",
            s.filters, s.merged, s.fallbacks, s.paths, s.terms, s.terms_shared, s.nodes, s.eq_groups, s.hash_switches, s.range_groups, s.single_tests, s.equivalent_filters, s.bytes
        );
        out
    }
}

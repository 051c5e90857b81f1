//! [`FilterSet`]: the public face of the engine.
//!
//! A set of named, validated programs compiled into one merged structure.
//! Build it once ([`FilterSet::new`], or from a file with
//! [`spec::load_set`](crate::spec::load_set)), add and
//! remove filters as tenants come and go ([`FilterSet::add`],
//! [`FilterSet::remove`]: O(the filter's paths)), and hand
//! [`FilterSet::publish`]'s `Arc<Automaton>` to capture threads. Each
//! filter is normalized; one whose normal form passes the limits (paths,
//! literals, work, or the set's node budget) is kept as a *fallback* and run
//! by the reference interpreter, so the answers stay exact.
//!
//! See [`FilterSet`] for an example.

use crate::cbpf::{Program, UnknowableLoad};
use crate::exec::{Automaton, FilterId, FilterInfo};
use crate::ir::{normalize, Interner, Limits, NormalForm, NormalizeError};
use crate::merge::NodeId;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// One validated filter with its name, ready to add to a set.
#[derive(Clone, Debug)]
pub struct NamedProgram {
    /// Unique in its set; see [`valid_name`].
    pub name: String,
    /// The filter.
    pub program: Program,
    /// Cap on the bytes delivered for it, below its return value.
    pub snaplen: Option<u32>,
}

impl NamedProgram {
    /// `program` called `name`, with no snaplen cap.
    pub fn new(name: &str, program: Program) -> NamedProgram {
        NamedProgram {
            name: name.to_owned(),
            program,
            snaplen: None,
        }
    }
    /// The same filter with deliveries capped at `snaplen` bytes.
    pub fn with_snaplen(self, snaplen: u32) -> NamedProgram {
        NamedProgram {
            snaplen: Some(snaplen),
            ..self
        }
    }
}

/// True when `name` is a legal filter name: non-empty, letters, digits,
/// `_`, `.`, `-` (it names files and streams).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

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

/// Why a filter was not added.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    /// Another live filter has the name.
    #[error("filter name `{0}` is already in the set")]
    DuplicateName(String),
    /// The name breaks [`valid_name`].
    #[error("bad filter name `{0}` (use letters, digits, `_`, `.`, `-`)")]
    BadName(String),
    /// The program reads what userland cannot know.
    #[error("filter `{name}`: {err}")]
    Unknowable {
        /// The filter.
        name: String,
        /// What it reads.
        err: UnknowableLoad,
    },
}

/// Why a filter runs in the fallback interpreter instead of the merged
/// structure (its answers are exact either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fallback {
    /// It has no normal form within the per-filter limits.
    #[error("{0}")]
    Normalize(NormalizeError),
    /// Its paths would take the merged structure past the set's node
    /// budget ([`Config::max_nodes`]).
    #[error("the merged structure would pass its budget of {max_nodes} nodes")]
    NodeBudget {
        /// The budget.
        max_nodes: usize,
    },
}

#[derive(Clone, Debug)]
enum Placement {
    /// Its paths end at `leaves`; `form` is counted in `FilterSet::forms`.
    Merged {
        leaves: Vec<NodeId>,
        form: Arc<NormalForm>,
    },
    Fallback(Fallback),
}

/// A live filter's program and where it runs (its name and snaplen are
/// the working automaton's [`FilterInfo`]).
#[derive(Clone, Debug)]
struct Entry {
    program: Arc<Program>,
    placement: Placement,
}

/// Counts describing a built set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Live filters.
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
    /// Equality groups.
    pub eq_groups: usize,
    /// Equality groups dispatched by a hash table.
    pub hash_switches: usize,
    /// Range groups.
    pub range_groups: usize,
    /// Single-literal groups.
    pub single_tests: usize,
    /// Filters whose normal form equals an earlier filter's.
    pub equivalent_filters: usize,
    /// Approximate heap bytes of the compact form.
    pub bytes: usize,
}

/// A set of named filters compiled into one merged structure.
///
/// ```
/// use bpf_demux::{cbpf::{text, FrameMeta, Program}, FilterSet, NamedProgram};
/// let prog = |s: &str| Program::validate(&text::parse_ddd(s).unwrap()).unwrap();
/// let mut set = FilterSet::new([
///     NamedProgram::new("ipv4", prog("4,40 0 0 12,21 0 1 2048,6 0 0 262144,6 0 0 0")),
///     NamedProgram::new("arp", prog("4,40 0 0 12,21 0 1 2054,6 0 0 96,6 0 0 0")),
/// ]).unwrap();
/// let mut frame = [0u8; 60];
/// frame[12..14].copy_from_slice(&[0x08, 0x06]);
/// let m = set.automaton().matches(&frame, &FrameMeta::offline(&frame, 60));
/// let got: Vec<_> = m.iter().map(|(id, ret)| (set.name(id).unwrap(), ret)).collect();
/// assert_eq!(got, [("arp", 96)]);
/// // Tenants come and go; publish hands the new version to capture threads.
/// let ipv4 = set.id("ipv4").unwrap();
/// set.remove(ipv4);
/// assert_eq!(set.name(ipv4), None);
/// let published = set.publish();
/// assert_eq!(published.name(ipv4), None);
/// assert_eq!(published.len(), 1);
/// ```
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
    /// An empty set built with `config`.
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
        if !valid_name(&f.name) {
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
        self.working.sync_terms(&self.interner);
        let placement = match normal {
            Ok(nf) => {
                let lits: usize = nf.paths.iter().map(|p| p.lits.len()).sum();
                if self.working.trie().live_nodes() + lits > self.config.max_nodes {
                    Placement::Fallback(Fallback::NodeBudget {
                        max_nodes: self.config.max_nodes,
                    })
                } else {
                    let leaves = self.working.insert_paths(id, &nf);
                    let form = Arc::new(nf);
                    *self.forms.entry(form.clone()).or_insert(0) += 1;
                    Placement::Merged { leaves, form }
                }
            }
            Err(reason) => Placement::Fallback(Fallback::Normalize(reason)),
        };
        if let Placement::Fallback(_) = placement {
            self.working.add_fallback(id, program.clone());
        }
        self.working
            .set_filter(id, FilterInfo::new(&f.name, f.snaplen));
        self.by_name.insert(f.name, id);
        let entry = Some(Entry { program, placement });
        if id.index() == self.entries.len() {
            self.entries.push(entry);
        } else {
            self.entries[id.index()] = entry;
        }
        self.published = None;
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
                let id = FilterId(i as u32);
                Some((id, self.named(id, e?)))
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
            Placement::Merged { leaves, form } => {
                self.working.remove_paths(id, leaves);
                if let Some(c) = self.forms.get_mut(form) {
                    *c -= 1;
                    if *c == 0 {
                        self.forms.remove(form);
                    }
                }
            }
            Placement::Fallback(_) => self.working.remove_fallback(id),
        }
        let removed = self.named(id, e);
        self.working.clear_filter(id);
        self.by_name.remove(&removed.name);
        self.published = None;
        Some(removed)
    }

    /// Live filter `id` as added: its entry's program, with the name and
    /// snaplen the working automaton holds for it.
    fn named(&self, id: FilterId, e: Entry) -> NamedProgram {
        let info = self.working.filter(id).expect("a live filter has its info");
        NamedProgram {
            name: info.name().to_owned(),
            program: Arc::try_unwrap(e.program).unwrap_or_else(|p| (*p).clone()),
            snaplen: info.snaplen(),
        }
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

    /// The working copy of the compiled form, borrowed: what the next
    /// [`publish`](Self::publish) shares, without publishing it. Match
    /// frames with it ([`Automaton::matches_into`]) where no other thread
    /// needs the set.
    pub fn automaton(&self) -> &Automaton {
        &self.working
    }

    fn entry(&self, id: FilterId) -> Option<&Entry> {
        self.entries.get(id.index())?.as_ref()
    }
    /// The name of filter `id`; `None` when no live filter has the id.
    pub fn name(&self, id: FilterId) -> Option<&str> {
        self.working.name(id)
    }
    /// The snaplen cap of filter `id` (`Some(None)`: it has none).
    pub fn snaplen(&self, id: FilterId) -> Option<Option<u32>> {
        self.working.filter(id).map(FilterInfo::snaplen)
    }
    /// The program of filter `id`.
    pub fn program(&self, id: FilterId) -> Option<&Program> {
        Some(&self.entry(id)?.program)
    }
    /// The id of the live filter called `name`.
    pub fn id(&self, name: &str) -> Option<FilterId> {
        self.by_name.get(name).copied()
    }
    /// Live filter ids, in id order.
    pub fn ids(&self) -> impl Iterator<Item = FilterId> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|e| e.1.is_some())
            .map(|(i, _)| FilterId(i as u32))
    }
    /// Live filters.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }
    /// Whether the set has no filter.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Why filter `id` runs in the fallback interpreter, if it does.
    pub fn fallback_reason(&self, id: FilterId) -> Option<Fallback> {
        match self.entry(id)?.placement {
            Placement::Fallback(reason) => Some(reason),
            Placement::Merged { .. } => None,
        }
    }

    /// Counts describing the set as built now.
    pub fn stats(&self) -> Stats {
        let trie = self.working.trie();
        let census = trie.census();
        let mut s = Stats {
            filters: self.len(),
            terms: self.interner.len(),
            terms_shared: self.interner.hits,
            nodes: trie.live_nodes(),
            eq_groups: census.eq_groups,
            hash_switches: census.hash_tables,
            range_groups: census.range_groups,
            single_tests: census.tests,
            bytes: census.bytes
                + self.working.term_count() * std::mem::size_of::<crate::ir::Term>(),
            ..Stats::default()
        };
        s.literals = s.nodes - 1;
        for e in self.entries.iter().flatten() {
            match &e.placement {
                Placement::Merged { leaves, .. } => {
                    s.merged += 1;
                    s.paths += leaves.len();
                }
                Placement::Fallback(_) => s.fallbacks += 1,
            }
        }
        s.equivalent_filters = self.forms.values().map(|c| c - 1).sum();
        s
    }

    /// The merged structure as indented text, then its stats.
    pub fn explain(&self) -> String {
        let trie = self.working.trie();
        let i = &self.interner;
        let name = |id| self.name(id).unwrap_or("?");
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
                let _ = write!(out, "  => {}={ret}", name(a.filter));
            }
            out.push('\n');
        });
        for (id, _) in self.working.fallbacks() {
            if let Some(reason) = self.fallback_reason(*id) {
                let _ = writeln!(out, "fallback {} ({reason})", name(*id));
            }
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

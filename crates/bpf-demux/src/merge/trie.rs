//! The merged structure: a trie of literals whose leaves are filters.
//!
//! Every accepting path of every filter is inserted, literal by literal in
//! the canonical order, from the root. A node keeps several *groups* of
//! outgoing edges and at match time **all** groups of a visited node are
//! evaluated (they are not alternatives): so a filter that does not test a
//! field is never copied under that field's values.
//!
//! - [`Group::Eq`]: every edge `t == k` for one term `t`; one hash lookup
//!   (or a scan of a few entries) finds the only child that can hold.
//! - [`Group::Range`]: every edge `lo <= t <= hi` for one term; a binary
//!   search finds the intervals holding the value.
//! - [`Group::Test`]: one other literal (`!=`, a term comparison, a guard).
//!
//! Filters that share a prefix of literals share its nodes, and since
//! literals are hash-consed terms, equal tests of different filters are the
//! same edge. The structure grows by at most one node per literal inserted.
//!
//! Invariants: a node is live iff it is the root or it has an accept or a
//! group; `parent`/`edge` of a live non-root node name the one edge leading
//! to it; a free node is in `free` and in no group.

use super::cow::ChunkVec;
use crate::ir::{Lit, Ret, TermId};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::Arc;

/// Index of a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The root: every path starts here.
    pub const ROOT: NodeId = NodeId(0);
    /// The id as an index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a filter in its set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FilterId(pub u32);

impl FilterId {
    /// The id as an index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A filter whose path ends at a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accept {
    /// The filter.
    pub filter: FilterId,
    /// What it returns here.
    pub ret: Ret,
}

/// Past this many entries an equality table becomes a hash map.
pub const EQ_SCAN_MAX: usize = 8;

#[derive(Clone, Debug)]
/// The children of one equality group: by the term's value.
pub enum EqTable {
    /// A few `(k, child)` entries, scanned.
    Scan(SmallVec<[(u32, NodeId); 2]>),
    /// Many, hashed (ahash). Shared between versions until written.
    Hash(Arc<HashMap<u32, NodeId, ahash::RandomState>>),
}

impl EqTable {
    #[inline]
    /// The child for value `k`.
    pub fn get(&self, k: u32) -> Option<NodeId> {
        match self {
            EqTable::Scan(v) => v.iter().find(|e| e.0 == k).map(|e| e.1),
            EqTable::Hash(m) => m.get(&k).copied(),
        }
    }
    fn insert(&mut self, k: u32, n: NodeId) {
        match self {
            EqTable::Scan(v) if v.len() < EQ_SCAN_MAX => v.push((k, n)),
            EqTable::Scan(v) => {
                let mut m: HashMap<u32, NodeId, ahash::RandomState> = v.iter().copied().collect();
                m.insert(k, n);
                *self = EqTable::Hash(Arc::new(m));
            }
            EqTable::Hash(m) => {
                Arc::make_mut(m).insert(k, n);
            }
        }
    }
    fn remove(&mut self, k: u32) {
        match self {
            EqTable::Scan(v) => v.retain(|e| e.0 != k),
            EqTable::Hash(m) => {
                Arc::make_mut(m).remove(&k);
            }
        }
    }
    /// Entries.
    pub fn len(&self) -> usize {
        match self {
            EqTable::Scan(v) => v.len(),
            EqTable::Hash(m) => m.len(),
        }
    }
    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The `(value, child)` entries, sorted.
    pub fn entries(&self) -> Vec<(u32, NodeId)> {
        let mut v: Vec<(u32, NodeId)> = match self {
            EqTable::Scan(v) => v.to_vec(),
            EqTable::Hash(m) => m.iter().map(|(k, n)| (*k, *n)).collect(),
        };
        v.sort();
        v
    }
}

/// Intervals on one term, sorted by `lo`, with the running maximum of `hi`
/// so a search can stop early.
#[derive(Clone, Debug, Default)]
pub struct RangeTable {
    /// `(lo, hi, child)`, sorted by `(lo, hi)`.
    pub entries: Vec<(u32, u32, NodeId)>,
    /// `max_hi[i]` = max of `hi` over `entries[..=i]`.
    pub max_hi: Vec<u32>,
}

impl RangeTable {
    fn rebuild_max(&mut self) {
        self.max_hi.clear();
        let mut m = 0;
        for e in &self.entries {
            m = m.max(e.1);
            self.max_hi.push(m);
        }
    }
    /// Calls `f` with every child whose interval holds `v`.
    #[inline]
    pub fn each_holding(&self, v: u32, mut f: impl FnMut(NodeId)) {
        // Entries with lo <= v are a prefix.
        let end = self.entries.partition_point(|e| e.0 <= v);
        let mut i = end;
        while i > 0 {
            i -= 1;
            if self.max_hi[i] < v {
                break;
            }
            let (_, hi, n) = self.entries[i];
            if hi >= v {
                f(n);
            }
        }
    }
}

#[derive(Clone, Debug)]
/// A group of outgoing edges of a node.
pub enum Group {
    /// Edges `term == k`: at most one holds.
    Eq {
        /// The term tested.
        term: TermId,
        /// Value to child.
        table: EqTable,
    },
    /// Edges `lo <= term <= hi`.
    Range {
        /// The term tested.
        term: TermId,
        /// The intervals.
        table: Arc<RangeTable>,
    },
    /// One other literal.
    Test {
        /// The literal.
        lit: Lit,
        /// Where it leads.
        child: NodeId,
    },
}

#[derive(Clone, Debug, Default)]
/// A node of the trie.
pub struct Node {
    /// Filters whose path ends here.
    pub accepts: SmallVec<[Accept; 1]>,
    /// Outgoing edges.
    pub groups: SmallVec<[Group; 2]>,
    /// The node this one hangs from (the root's is itself).
    pub parent: NodeId,
    /// The literal on the edge from `parent` (`None` for the root and free nodes).
    pub edge: Option<Lit>,
}

/// The trie. Cloning shares all storage until written.
#[derive(Clone, Debug)]
pub struct Trie {
    nodes: ChunkVec<Node>,
    free: Vec<NodeId>,
    live: usize,
}

impl Default for Trie {
    fn default() -> Self {
        Self::new()
    }
}

impl Trie {
    /// A trie with only the root.
    pub fn new() -> Trie {
        let mut nodes = ChunkVec::new();
        nodes.push(Node::default());
        Trie {
            nodes,
            free: Vec::new(),
            live: 1,
        }
    }
    #[inline]
    /// Node `n`.
    pub fn node(&self, n: NodeId) -> &Node {
        self.nodes.get(n.index())
    }
    fn node_mut(&mut self, n: NodeId) -> &mut Node {
        self.nodes.get_mut(n.index())
    }
    /// Live nodes (root included).
    pub fn live_nodes(&self) -> usize {
        self.live
    }
    /// Node slots, live or free.
    pub fn slots(&self) -> usize {
        self.nodes.len()
    }

    fn new_node(&mut self, parent: NodeId, edge: Lit) -> NodeId {
        self.live += 1;
        let node = Node {
            accepts: SmallVec::new(),
            groups: SmallVec::new(),
            parent,
            edge: Some(edge),
        };
        if let Some(n) = self.free.pop() {
            *self.node_mut(n) = node;
            return n;
        }
        NodeId(self.nodes.push(node) as u32)
    }

    /// The child of `n` along `lit`, made if missing.
    fn child(&mut self, n: NodeId, lit: Lit) -> NodeId {
        let found = self.node(n).groups.iter().find_map(|g| match (g, lit) {
            (Group::Eq { term, table }, Lit::Eq(t, k)) if *term == t => Some(table.get(k)),
            (Group::Range { term, table }, Lit::Range(t, lo, hi)) if *term == t => Some(
                table
                    .entries
                    .iter()
                    .find(|e| e.0 == lo && e.1 == hi)
                    .map(|e| e.2),
            ),
            (Group::Test { lit: l, child }, _) if *l == lit => Some(Some(*child)),
            _ => None,
        });
        if let Some(Some(c)) = found {
            return c;
        }
        let c = self.new_node(n, lit);
        let groups = &mut self.node_mut(n).groups;
        match lit {
            Lit::Eq(t, k) => {
                match groups
                    .iter_mut()
                    .find(|g| matches!(g, Group::Eq { term, .. } if *term == t))
                {
                    Some(Group::Eq { table, .. }) => table.insert(k, c),
                    _ => groups.push(Group::Eq {
                        term: t,
                        table: EqTable::Scan(smallvec::smallvec![(k, c)]),
                    }),
                }
            }
            Lit::Range(t, lo, hi) => {
                match groups
                    .iter_mut()
                    .find(|g| matches!(g, Group::Range { term, .. } if *term == t))
                {
                    Some(Group::Range { table, .. }) => {
                        let tb = Arc::make_mut(table);
                        let at = tb.entries.partition_point(|e| (e.0, e.1) < (lo, hi));
                        tb.entries.insert(at, (lo, hi, c));
                        tb.rebuild_max();
                    }
                    _ => {
                        let mut tb = RangeTable {
                            entries: vec![(lo, hi, c)],
                            max_hi: Vec::new(),
                        };
                        tb.rebuild_max();
                        groups.push(Group::Range {
                            term: t,
                            table: Arc::new(tb),
                        });
                    }
                }
            }
            _ => groups.push(Group::Test { lit, child: c }),
        }
        c
    }

    /// Inserts one path; returns its leaf.
    pub fn insert(&mut self, lits: &[Lit], accept: Accept) -> NodeId {
        let mut n = NodeId::ROOT;
        for &l in lits {
            n = self.child(n, l);
        }
        self.node_mut(n).accepts.push(accept);
        n
    }

    /// Removes `filter`'s accepts at `leaf`, then every node left empty.
    pub fn remove(&mut self, leaf: NodeId, filter: FilterId) {
        self.node_mut(leaf).accepts.retain(|a| a.filter != filter);
        let mut n = leaf;
        while n != NodeId::ROOT {
            let node = self.node(n);
            if !node.accepts.is_empty() || !node.groups.is_empty() {
                break;
            }
            let parent = node.parent;
            let edge = node.edge.expect("live non-root node has an edge");
            let groups = &mut self.node_mut(parent).groups;
            for g in groups.iter_mut() {
                match (g, edge) {
                    (Group::Eq { term, table }, Lit::Eq(t, k)) if *term == t => table.remove(k),
                    (Group::Range { term, table }, Lit::Range(t, lo, hi)) if *term == t => {
                        let tb = Arc::make_mut(table);
                        tb.entries.retain(|e| !(e.0 == lo && e.1 == hi));
                        tb.rebuild_max();
                    }
                    _ => {}
                }
            }
            groups.retain(|g| match g {
                Group::Eq { table, .. } => !table.is_empty(),
                Group::Range { table, .. } => !table.entries.is_empty(),
                Group::Test { child, .. } => *child != n,
            });
            *self.node_mut(n) = Node::default();
            self.free.push(n);
            self.live -= 1;
            n = parent;
        }
    }

    /// Live nodes in depth-first order from the root, with their depth.
    pub fn walk(&self, mut f: impl FnMut(NodeId, usize)) {
        let mut stack = vec![(NodeId::ROOT, 0usize)];
        while let Some((n, d)) = stack.pop() {
            f(n, d);
            let node = self.node(n);
            let mut kids = Vec::new();
            for g in &node.groups {
                match g {
                    Group::Eq { table, .. } => {
                        kids.extend(table.entries().into_iter().map(|e| e.1))
                    }
                    Group::Range { table, .. } => kids.extend(table.entries.iter().map(|e| e.2)),
                    Group::Test { child, .. } => kids.push(*child),
                }
            }
            for k in kids.into_iter().rev() {
                stack.push((k, d + 1));
            }
        }
    }

    /// Groups by kind, and the heap bytes the live structure holds.
    pub fn census(&self) -> Census {
        let mut c = Census::default();
        let hash_entry = std::mem::size_of::<(u32, NodeId)>() + 1; // hashbrown: one control byte per bucket
        self.walk(|n, _| {
            let node = self.node(n);
            for g in &node.groups {
                match g {
                    Group::Eq { table, .. } => {
                        c.eq_groups += 1;
                        if let EqTable::Hash(m) = table {
                            c.hash_tables += 1;
                            c.bytes += m.capacity() * hash_entry;
                        }
                    }
                    Group::Range { table, .. } => {
                        c.range_groups += 1;
                        c.bytes += table.entries.capacity()
                            * std::mem::size_of::<(u32, u32, NodeId)>()
                            + table.max_hi.capacity() * std::mem::size_of::<u32>();
                    }
                    Group::Test { .. } => c.tests += 1,
                }
            }
            if node.accepts.spilled() {
                c.bytes += node.accepts.capacity() * std::mem::size_of::<Accept>();
            }
            if node.groups.spilled() {
                c.bytes += node.groups.capacity() * std::mem::size_of::<Group>();
            }
        });
        c.bytes += self.slots() * std::mem::size_of::<Node>();
        c
    }
}

/// What [`Trie::census`] counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Equality groups, and those of them that are hash tables.
    pub eq_groups: usize,
    /// (see `eq_groups`)
    pub hash_tables: usize,
    /// Range groups.
    pub range_groups: usize,
    /// Single-literal groups.
    pub tests: usize,
    /// Heap bytes of nodes, tables and spilled lists.
    pub bytes: usize,
}

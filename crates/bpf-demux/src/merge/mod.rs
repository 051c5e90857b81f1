//! The merge: all normalized filters collapsed into one shared structure.
//!
//! Pipeline position: after `ir`. The [`Trie`] holds every accepting path
//! of every filter, sharing equal prefixes; its nodes dispatch equality
//! tests by hash and range tests by binary search. Storage is copy-on-write
//! in chunks ([`cow::ChunkVec`]), so adding or removing a filter and
//! publishing a new version touches only what changed. Depends on `ir`.

pub mod cow;
pub mod trie;

pub use trie::{Accept, Census, EqTable, FilterId, Group, Node, NodeId, RangeTable, Trie};

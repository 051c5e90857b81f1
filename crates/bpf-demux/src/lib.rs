//! bpf-demux: many tenants' classic BPF filters, one pass per frame.
//!
//! Each tenant's filter is validated as Linux validates it, normalized
//! into accepting paths over hash-consed terms, and merged with every
//! other into one decision structure; a frame goes through it once and
//! comes out with every accepting filter and that filter's return value,
//! as the kernel would answer running the filter alone.
//!
//! The modules, bottom up; each names only those below it (DESIGN.md,
//! "Layers", checked by `tests/layers.rs`):
//!
//! ```text
//! 8  serve       the daemon's control protocol and attach policy (feature `serve`)
//! 7  capture     AF_PACKET ring -> dispatch -> per-tenant endpoints; live updates
//! 6  spec        filter-set files -> NamedProgram / FilterSet
//! 6  prefilter   Automaton -> one conservative cBPF program for the socket
//! 5  set         FilterSet: add, remove, publish -> Arc<Automaton>
//! 4  exec        Automaton (the matcher, with names and snaplens), Cache, MatchSet
//! 3  merge       the trie of literals, copy-on-write
//! 2  ir          terms, literals, normalization
//! 2  expr        pcap-filter expressions -> cBPF, for each link type
//! 2  pcapfile    pcap and pcapng files, each record with its link type
//! 1  link        link types and what a filter sees of their frames
//! 0  cbpf        instructions, validator, reference interpreter, text forms
//! 0  field       header layouts as named byte ranges
//! ```
//!
//! ```
//! use bpf_demux::cbpf::{self, text, FrameMeta, Program};
//! // tcpdump -ddd -y EN10MB ip
//! let insns = text::parse_ddd("4,40 0 0 12,21 0 1 2048,6 0 0 262144,6 0 0 0").unwrap();
//! let prog = Program::validate(&insns).unwrap();
//! let mut frame = [0u8; 60];
//! frame[12] = 0x08; // EtherType 0x0800
//! let meta = FrameMeta::offline(&frame, 60);
//! assert_eq!(cbpf::run(&prog, &frame, &meta), 262144);
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod capture;
pub mod cbpf;
pub mod exec;
pub mod expr;
pub mod field;
pub mod ir;
pub mod link;
pub mod merge;
pub mod pcapfile;
pub mod prefilter;
#[cfg(feature = "serve")]
pub mod serve;
pub mod set;
pub mod spec;

pub use exec::FilterId;
pub use exec::{Automaton, Cache, FilterInfo, MatchSet};
pub use set::{Config, Fallback, FilterSet, NamedProgram, SetError, Stats};

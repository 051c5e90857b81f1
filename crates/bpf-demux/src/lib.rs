//! bpf-demux: many tenants' classic BPF filters, one pass per frame.
//!
//! The pipeline, one layer per module, each depending only on those above it:
//!
//! ```text
//! program text ──cbpf::text──▶ Vec<Insn> ──Program::validate──▶ Program
//!   (kernel rules)      ──cbpf::interp──▶ reference answer per filter
//! Program ──ir::normalize──▶ NormalForm ──merge──▶ trie ──FilterSet::publish──▶ Arc<Automaton>
//! frame + FrameMeta ──Automaton::matches_into──▶ MatchSet (every accepting filter, its return value)
//! filter-set file ──spec──▶ named programs
//! pcap / pcapng ──pcapfile──▶ frames + FrameMeta
//! AF_PACKET ring ──capture──▶ frames ──dispatch──▶ per-tenant endpoints
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

pub mod capture;
pub mod cbpf;
pub mod exec;
pub mod expr;
pub mod ir;
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

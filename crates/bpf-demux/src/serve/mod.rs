//! `bpf-demux serve`: the pieces of the daemon that are not the capture
//! itself. [`proto`] is the control protocol between the daemon and its
//! clients (framing, every message, decoding that refuses what it does
//! not understand); [`policy`] says who may attach and with what limits.
//!
//! Pipeline position: beside `capture` (depends on `cbpf` and `spec`
//! only); the daemon in the `bpf-demux` binary puts them together.

pub mod conn;
pub mod policy;
pub mod proto;

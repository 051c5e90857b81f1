//! Capture: the kernel side of bpf-demux.
//!
//! [`sys`] is the only module of the crate with `unsafe` code: AF_PACKET
//! sockets, `SO_ATTACH_FILTER`, network namespaces. Everything above it
//! sees safe types.

pub mod sys;

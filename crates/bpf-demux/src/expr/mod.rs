//! Filters as tcpdump expressions: a pure-Rust compiler for (a growing
//! subset of) the pcap-filter(7) language, for Ethernet, compiled as
//! libpcap compiles offline (tags in the frame).
//!
//! Pipeline position: beside `cbpf::text`, a source of `Vec<Insn>`; the
//! result goes through the validator like any other program. Supported:
//! `ether`/`ip`/`ip6`/`arp`/`rarp`/`tcp`/`udp`/`icmp`/`icmp6`/`sctp`/
//! `igmp`/`igrp`/`pim`/`vrrp`/`carp`/`ah`/`esp`; `host`, `net` (CIDR,
//! `mask`, short forms), `port`, `portrange` with `src`/`dst`/`src or
//! dst`/`src and dst`; `ether host|src|dst|proto|broadcast|multicast`;
//! `ip|ip6 multicast`; `proto`, `ip proto`, `ip6 proto`; `less`,
//! `greater`, `len`; arithmetic relations over `proto[expr:size]`
//! accessors with the named constants; `and or not && || !`, parentheses,
//! implicit qualifiers; `vlan`, `mpls`, `pppoes` with libpcap's
//! offset-moving semantics, `pppoed`, `llc`, `stp`; `protochain` unrolled
//! forward-only (IPv6 chains through 110 headers, IPv4 AH through 8);
//! `geneve [vni]` (the encapsulated frame's offsets kept in scratch cells);
//! for a live socket ([`Options::live`]), `vlan` tests the stripped tag's
//! metadata as libpcap does. Other link types and the rarer keywords
//! (`gateway`, `decnet`, `atalk`, ...) are refused with an error naming them.

mod ast;
mod error;
mod gen;
mod lex;
mod names;
mod parse;

pub use error::{Expected, ExprError, ExprErrorKind, LinkOnly};

use crate::cbpf::Insn;
use crate::link::LinkType;

/// libpcap's default snaplen: what accepting programs return.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// How to compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// What accepting programs return.
    pub snaplen: u32,
    /// For a live Linux socket: `vlan` looks at the stripped tag in the
    /// metadata (ancillary loads) as well as in the frame, as libpcap does
    /// for a live handle. Off: as libpcap compiles offline (`-y EN10MB`).
    pub live: bool,
    /// The link type of the frames (`tcpdump -y`): where the network
    /// header is and what says which protocol it carries.
    pub link: LinkType,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            snaplen: DEFAULT_SNAPLEN,
            live: false,
            link: LinkType::Ethernet,
        }
    }
}

/// Compiles `expr` for offline matching, returning `snaplen` for accepted frames.
pub fn compile(expr: &str, snaplen: u32) -> Result<Vec<Insn>, ExprError> {
    compile_with(
        expr,
        &Options {
            snaplen,
            ..Options::default()
        },
    )
}

/// Compiles `expr` with `opts`.
pub fn compile_with(expr: &str, opts: &Options) -> Result<Vec<Insn>, ExprError> {
    let toks = lex::lex(expr)?;
    let tree = parse::Parser::new(toks, expr.chars().count()).parse()?;
    gen::Gen::new(opts.live, opts.link).finish(&tree, opts.snaplen)
}

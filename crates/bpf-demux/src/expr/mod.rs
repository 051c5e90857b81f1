//! Filters as tcpdump expressions: a pure-Rust compiler for the
//! pcap-filter(7) language, for every link type of [`LinkType`], compiled
//! as libpcap compiles offline (tags in the frame).
//!
//! Pipeline position: beside `cbpf::text`, a source of `Vec<Insn>`; the
//! result goes through the validator like any other program. Supported:
//! `ether`/`ip`/`ip6`/`arp`/`rarp`/`tcp`/`udp`/`icmp`/`icmp6`/`sctp`/
//! `igmp`/`igrp`/`pim`/`vrrp`/`carp`/`ah`/`esp`, the link-level protocols
//! (`atalk`, `aarp`, `decnet`, `sca`, `lat`, `mopdl`, `moprc`, `iso`,
//! `esis`, `isis`, `clnp`, IS-IS's `l1 l2 iih lsp snp csnp psnp`, `stp`,
//! `ipx`, `netbeui`, with libpcap's encapsulations per link type); `host`,
//! `net` (CIDR, `mask`, short forms), `port`, `portrange` with `src`/`dst`/
//! `src or dst`/`src and dst`; names for hosts, Ethernet hosts, networks,
//! protocols and ports ([`Resolver`]); `gateway`; `decnet` hosts;
//! `ether host|src|dst|proto|broadcast|multicast`, bare `broadcast` and
//! `multicast`; `ip|ip6 multicast`; `proto`, `ip proto`, `ip6 proto`,
//! `iso proto`, `isis proto`; `llc` and its subtypes; `less`, `greater`,
//! `len`; arithmetic relations over `proto[expr:size]` accessors with the
//! named constants; `and or not && || !`, parentheses, implicit
//! qualifiers; `vlan`, `mpls`, `pppoes` with libpcap's offset-moving
//! semantics, `pppoed`; `protochain` unrolled forward-only (IPv6 chains
//! through 110 headers, IPv4 AH through 8); `geneve [vni]` (the
//! encapsulated frame's offsets kept in scratch cells); for a live socket
//! ([`Options::live`]), `vlan` tests the stripped tag's metadata as
//! libpcap does. The keywords of other link types (802.11, ATM, MTP,
//! `pf`) are refused with an error naming them.

mod ast;
mod error;
mod gen;
mod lex;
mod names;
mod parse;
mod resolve;

pub use error::{Expected, ExprError, ExprErrorKind, LinkOnly};
pub use resolve::{Resolver, Transport};

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
    /// For frames read from a capture file, as `tcpdump -r` compiles:
    /// `inbound`, `outbound` and `ifindex` only where the link header
    /// says (Linux cooked captures), IPv6 on BSD loopback (NULL, LOOP) by
    /// the BSDs' address family values. Off (and not `live`): as `tcpdump
    /// -d -y` compiles on Linux, the packet's metadata standing in.
    pub savefile: bool,
    /// The link type of the frames (`tcpdump -y`): where the network
    /// header is and what says which protocol it carries.
    pub link: LinkType,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            snaplen: DEFAULT_SNAPLEN,
            live: false,
            savefile: false,
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

/// Compiles `expr` with `opts`, names resolved through the system's files
/// and resolver ([`Resolver::system`]).
pub fn compile_with(expr: &str, opts: &Options) -> Result<Vec<Insn>, ExprError> {
    compile_with_names(expr, opts, &Resolver::system())
}

/// Compiles `expr` with `opts`, names looked up with `names`.
pub fn compile_with_names(
    expr: &str,
    opts: &Options,
    names: &Resolver,
) -> Result<Vec<Insn>, ExprError> {
    let toks = lex::lex(expr)?;
    let tree = parse::Parser::new(toks, expr.chars().count(), names).parse()?;
    gen::Gen::new(opts).finish(&tree, opts.snaplen)
}

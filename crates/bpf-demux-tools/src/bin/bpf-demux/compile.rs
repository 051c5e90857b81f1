//! `bpf-demux compile`: a tcpdump expression to a program.

use bpf_demux::cbpf::{text, Program};
use bpf_demux::expr;
use bpf_demux::link::LinkType;
use std::process::ExitCode;

/// Compile a pcap-filter expression and print the program in tcpdump's
/// forms, like `tcpdump -d/-dd/-ddd`.
///
/// Accepting programs return the snaplen (262144 by default, libpcap's).
/// By default it compiles as `tcpdump -d -y LINKTYPE` does on Linux (tags
/// in the frame; `inbound`, `outbound` and `ifindex` from the packet's
/// metadata); --savefile compiles for a capture file (as `tcpdump -d -r
/// FILE`, what `bpf-demux match` and `split` run), --live for a live
/// socket (`bpf-demux capture`). Names (hosts, ethers, networks,
/// protocols, services) are looked up as libpcap looks them up: in
/// /etc/hosts and the system resolver, /etc/ethers, /etc/networks,
/// /etc/protocols, /etc/services. `protochain` is unrolled forward-only:
/// IPv6 chains through 110 headers, IPv4 AH chains through 8.
///
/// Example: bpf-demux compile -ddd 'tcp port 80 and not host 10.0.0.1'
///          bpf-demux compile -y LINUX_SLL2 'udp port 53 and inbound'
#[derive(clap::Args)]
pub struct Args {
    /// Print as tcpdump -d (listing).
    #[arg(short = 'd', action = clap::ArgAction::Count)]
    d: u8,
    /// What accepting programs return.
    #[arg(short = 's', long, default_value_t = expr::DEFAULT_SNAPLEN)]
    snaplen: u32,
    /// Compile for a live Linux socket (bpf-demux capture): `vlan` also
    /// tests the tag the kernel stripped into metadata, as libpcap does for
    /// a live handle.
    #[arg(long, conflicts_with = "savefile")]
    live: bool,
    /// Compile for frames read from a capture file (as `tcpdump -r FILE
    /// -d`): `inbound`/`outbound`/`ifindex` only on Linux cooked captures,
    /// IPv6 on NULL/LOOP by the BSDs' AF_INET6 values.
    #[arg(long)]
    savefile: bool,
    /// The frames' link type, as tcpdump -y names it: EN10MB (Ethernet,
    /// the default), LINUX_SLL, LINUX_SLL2, RAW, IPV4, IPV6, NULL, LOOP
    /// (or the LINKTYPE number).
    #[arg(short = 'y', long = "linktype", value_name = "LINKTYPE", value_parser = parse_link, default_value = "EN10MB")]
    link: LinkType,
    /// The expression (several words are joined by spaces, as tcpdump does).
    #[arg(required = true, allow_hyphen_values = true)]
    expression: Vec<String>,
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    let e = a.expression.join(" ");
    if a.live && a.link != LinkType::Ethernet {
        return Err(format!(
            "--live compiles for an Ethernet socket, not {}",
            a.link.name()
        ));
    }
    let opts = expr::Options {
        snaplen: a.snaplen,
        live: a.live,
        savefile: a.savefile,
        link: a.link,
    };
    let insns = expr::compile_with(&e, &opts).map_err(|err| format!("expression: {err}"))?;
    Program::validate(&insns).map_err(|err| format!("compiled program is invalid: {err}"))?;
    crate::with_stdout(|out| {
        match a.d {
            0 | 3.. => out.write_all(text::write_ddd(&insns).as_bytes())?,
            1 => out.write_all(text::write_listing(&insns).as_bytes())?,
            2 => out.write_all(text::write_dd(&insns).as_bytes())?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A `-y` value: a link type name or number.
pub fn parse_link(s: &str) -> Result<LinkType, String> {
    LinkType::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = LinkType::ALL.iter().map(|l| l.name()).collect();
        format!("unknown link type `{s}` (one of {})", names.join(", "))
    })
}

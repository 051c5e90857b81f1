//! The capture-ring options `capture` and `serve` share, and the live
//! configuration they make.

use bpf_demux::capture::{Direction, LiveConfig};
use bpf_demux::link::LinkType;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RingArgs {
    /// Interface to capture on: Ethernet, loopback, raw IP (a tun), or
    /// `any` (every interface, as Linux cooked v2 frames).
    #[arg(long, short, required_unless_present_any = ["list_interfaces", "list_link_types"])]
    pub interface: Option<String>,
    /// List the interfaces and their link types, then exit (tcpdump's -D).
    #[arg(short = 'D', long)]
    pub list_interfaces: bool,
    /// Print the link type of the -i interface, then exit (tcpdump's -L).
    #[arg(short = 'L', long, requires = "interface")]
    pub list_link_types: bool,
    /// Put the interface in promiscuous mode while capturing.
    #[arg(long)]
    pub promisc: bool,
    /// Worker threads (PACKET_FANOUT hash group, one ring each).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Ring block size in KiB (multiple of the page size).
    #[arg(long, default_value_t = 4096)]
    pub block_kib: u32,
    /// Ring blocks.
    #[arg(long, default_value_t = 16)]
    pub blocks: u32,
    /// Copy every frame into the ring and filter only in userland (no
    /// kernel prefilter on the capture socket).
    #[arg(long)]
    pub no_kernel_prefilter: bool,
    /// Frames by direction, as tcpdump's -Q: `in` (received), `out`
    /// (sent) or `inout`. On loopback every frame is seen once (the
    /// outgoing copy is skipped), as libpcap does.
    #[arg(long, short = 'Q', value_parser = ["in", "out", "inout"], default_value = "inout")]
    pub direction: String,
}

/// ARPHRD_* of an interface, from sysfs.
fn arphrd(name: &str) -> Option<u16> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/type"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What a socket on an interface of device type `hatype` delivers, as
/// libpcap maps it; `None` where bpf-demux does not capture it yet.
fn link_of(hatype: u16) -> Result<LinkType, String> {
    match hatype {
        // Ethernet, and loopback (Linux frames it as Ethernet).
        1 | 772 => Ok(LinkType::Ethernet),
        // A tun, and other interfaces without a link header: raw IP.
        65534 => Ok(LinkType::Raw),
        512 => Err("ARPHRD_PPP: raw IP over PPP".into()),
        776 => Err("ARPHRD_SIT: IPv6 in IPv4".into()),
        778 => Err("ARPHRD_IPGRE: GRE".into()),
        801 => Err("ARPHRD_IEEE80211: 802.11".into()),
        n => Err(format!("ARPHRD {n}")),
    }
}

/// The link type a capture on `name` delivers, or why it is refused.
pub fn interface_link(name: &str) -> Result<LinkType, String> {
    if name == "any" {
        // libpcap's `any` device: cooked v2 frames from every interface.
        return Ok(LinkType::LinuxSll2);
    }
    match arphrd(name) {
        // No sysfs entry: the socket's own error names it.
        None => Ok(LinkType::Ethernet),
        Some(t) => link_of(t).map_err(|why| {
            format!("interface `{name}` is {why}: bpf-demux captures Ethernet, loopback and raw-IP (tun) interfaces and `any`")
        }),
    }
}

impl RingArgs {
    /// `-D` or `-L`: the listing, when one was asked for.
    pub fn listing(&self) -> Option<Result<ExitCode, String>> {
        if self.list_interfaces {
            let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
                .map(|d| {
                    d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            for (i, n) in names.iter().enumerate() {
                let link = match arphrd(n).map(link_of) {
                    Some(Ok(l)) => l.name().to_string(),
                    Some(Err(why)) => format!("not captured: {why}"),
                    None => "unknown".into(),
                };
                println!("{}.{n} [{link}]", i + 1);
            }
            return Some(Ok(ExitCode::SUCCESS));
        }
        if self.list_link_types {
            let name = self.interface.as_deref().unwrap_or_default();
            return Some(interface_link(name).map(|l| {
                println!("Data link types for {name} (use option -y to set):");
                println!("  {} ({})", l.name(), l.description());
                ExitCode::SUCCESS
            }));
        }
        None
    }

    /// The live configuration these options ask for (checked).
    pub fn config(&self) -> Result<LiveConfig, String> {
        let interface = self
            .interface
            .as_deref()
            .ok_or("give the interface to capture on (-i NAME; -D lists them)")?;
        let link = interface_link(interface)?;
        if link == LinkType::LinuxSll2 && self.promisc {
            return Err("promiscuous mode is not supported on the `any` device".into());
        }
        if self.workers == 0 || self.workers > 64 {
            return Err("--workers must be 1 to 64".into());
        }
        if self.block_kib == 0 || self.block_kib % 4 != 0 || self.blocks == 0 {
            return Err(
                "--block-kib must be a positive multiple of 4 and --blocks positive".into(),
            );
        }
        let mut cfg = LiveConfig::new(interface);
        cfg.link = link;
        cfg.workers = self.workers;
        cfg.kernel_prefilter = !self.no_kernel_prefilter;
        cfg.direction = match self.direction.as_str() {
            "in" => Direction::In,
            "out" => Direction::Out,
            _ => Direction::InOut,
        };
        cfg.ring.promisc = self.promisc;
        cfg.ring.block_size = self.block_kib * 1024;
        cfg.ring.block_count = self.blocks;
        Ok(cfg)
    }
}

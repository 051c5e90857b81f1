//! The capture-ring options `capture` and `serve` share, and the live
//! configuration they make.

use bpf_demux::capture::{Direction, LiveConfig};

#[derive(clap::Args)]
pub struct RingArgs {
    /// Interface to capture on.
    #[arg(long, short)]
    pub interface: String,
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

impl RingArgs {
    /// The live configuration these options ask for (checked).
    pub fn config(&self) -> Result<LiveConfig, String> {
        if self.workers == 0 || self.workers > 64 {
            return Err("--workers must be 1 to 64".into());
        }
        if self.block_kib == 0 || self.block_kib % 4 != 0 || self.blocks == 0 {
            return Err(
                "--block-kib must be a positive multiple of 4 and --blocks positive".into(),
            );
        }
        let mut cfg = LiveConfig::new(&self.interface);
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

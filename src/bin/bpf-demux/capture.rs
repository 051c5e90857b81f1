//! `bpf-demux capture`: live multi-tenant capture into one pcap per tenant.

use crate::sink::{self, Sink};
use bpf_demux::capture::sys;
use bpf_demux::capture::{LiveCapture, LiveConfig, Senders};
use bpf_demux::FilterSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Capture from one interface (one AF_PACKET TPACKET_V3 socket, or one per
/// worker) and write every tenant's frames to DIR/<name>.pcap.
///
/// Each frame goes through the merged filter once and is written to every
/// tenant whose filter accepts it, truncated to min(filter's return value,
/// frame length, tenant's snaplen). A kernel prefilter compiled from the
/// merged filter is attached to the capture socket, so frames no tenant can
/// accept are dropped in the kernel (--no-kernel-prefilter copies every
/// frame to the ring instead). Stops after --count matched frames, after
/// --duration seconds, or on Ctrl-C / SIGTERM; files are complete in every
/// case. Prints per-tenant frames, bytes and drops, and the kernel's
/// counters, at exit. Needs root or CAP_NET_RAW.
///
/// Example: bpf-demux capture -i eth0 --filters tenants.toml --out-dir /var/tmp/caps --duration 60
#[derive(clap::Args)]
pub struct Args {
    /// Interface to capture on.
    #[arg(long, short)]
    interface: String,
    /// Filter-set file (TOML or plain).
    #[arg(long, short)]
    filters: PathBuf,
    /// Folder for the per-tenant pcap files (made if missing).
    #[arg(long)]
    out_dir: PathBuf,
    /// Stop after this many frames accepted by at least one tenant.
    #[arg(long, short = 'c')]
    count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Put the interface in promiscuous mode while capturing.
    #[arg(long)]
    promisc: bool,
    /// Worker threads (PACKET_FANOUT hash group, one ring each).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Frames each tenant's queue holds before that tenant drops.
    #[arg(long, default_value_t = 4096)]
    queue: usize,
    /// Do not put the stripped outer VLAN tag back into written frames.
    #[arg(long)]
    no_vlan_reinsert: bool,
    /// Ring block size in KiB (multiple of the page size).
    #[arg(long, default_value_t = 4096)]
    block_kib: u32,
    /// Ring blocks.
    #[arg(long, default_value_t = 16)]
    blocks: u32,
    /// Copy every frame into the ring and filter only in userland (no
    /// kernel prefilter on the capture socket).
    #[arg(long)]
    no_kernel_prefilter: bool,
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    if a.workers == 0 || a.workers > 64 {
        return Err("--workers must be 1 to 64".into());
    }
    if a.duration.is_some_and(|d| !(d > 0.0)) {
        return Err("--duration must be positive".into());
    }
    if a.block_kib == 0 || a.block_kib % 4 != 0 || a.blocks == 0 {
        return Err("--block-kib must be a positive multiple of 4 and --blocks positive".into());
    }
    let set = FilterSet::from_file(&a.filters).map_err(|e| e.to_string())?;
    let n_tenants = set.len();
    let tenants = set.tenant_specs(a.queue);
    let caps: Vec<Option<u32>> = tenants.iter().map(|t| t.snaplen).collect();
    let (senders, endpoints) = Senders::new(tenants, false);
    let sink = Sink::create(
        &a.out_dir,
        endpoints.into_iter().zip(caps).collect(),
        senders.ready(),
    )?;
    let mut cfg = LiveConfig::new(&a.interface);
    cfg.workers = a.workers;
    cfg.reinsert_vlan = !a.no_vlan_reinsert;
    cfg.max_frames = a.count;
    cfg.kernel_prefilter = !a.no_kernel_prefilter;
    cfg.ring.promisc = a.promisc;
    cfg.ring.block_size = a.block_kib * 1024;
    cfg.ring.block_count = a.blocks;
    let live = match LiveCapture::start(set, senders, &cfg) {
        Ok(l) => l,
        Err(e) => {
            sink.abandon();
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                " (capturing needs root or CAP_NET_RAW)"
            } else {
                ""
            };
            return Err(format!("cannot capture: {e}{hint}"));
        }
    };
    sys::catch_termination().map_err(|e| format!("installing signal handlers: {e}"))?;
    let writer = std::thread::spawn(move || sink.run());
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last = Instant::now();
    let live_prefilter = live.prefilter_len();
    let prefilter = match live_prefilter {
        Some(n) => format!("kernel prefilter of {n} instructions"),
        None => "no kernel prefilter".to_string(),
    };
    eprintln!(
        "bpf-demux: capturing on {} for {} tenants, {prefilter} (Ctrl-C to stop)",
        a.interface, n_tenants
    );
    while !live.is_stopped() {
        std::thread::sleep(Duration::from_millis(20));
        if sys::termination_requested()
            || a.duration
                .is_some_and(|d| start.elapsed().as_secs_f64() >= d)
        {
            live.stop();
        }
        if tty && last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            let _ = write!(
                std::io::stderr(),
                "\r{} frames read, {} matched, in {:.0} s",
                live.frames_seen(),
                live.frames_matched(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    if tty {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
    let totals = live.join().map_err(|e| format!("capture failed: {e}"))?;
    let lines = writer
        .join()
        .map_err(|_| "writer thread panicked".to_string())??;
    sink::print_summary(&lines);
    let passed = if live_prefilter.is_some() {
        " (frames the prefilter passed)"
    } else {
        ""
    };
    eprintln!(
        "frames read {}, matched by some tenant {}; kernel: received {}{passed}, dropped {}",
        totals.frames, totals.matched, totals.kernel_packets, totals.kernel_drops
    );
    Ok(ExitCode::SUCCESS)
}

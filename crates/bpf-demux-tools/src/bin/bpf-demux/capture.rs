//! `bpf-demux capture`: live multi-tenant capture into one pcap per tenant.

use crate::sink::{self, Command, Sink};
use bpf_demux::capture::sys;
use bpf_demux::capture::{Change, LiveCapture, Senders};
use bpf_demux::link::LinkType;
use bpf_demux::pcapfile::IfaceDesc;
use bpf_demux::spec::{self, Target};
use bpf_demux::FilterSet;
use bpf_demux::NamedProgram;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// `eprintln!` that ignores errors: a reload must not die on a terminal
/// that went away (SIGHUP is also what a hangup sends).
macro_rules! say {
    ($($t:tt)*) => {
        sink::say(&format!($($t)*))
    };
}

/// Capture from one interface (one AF_PACKET TPACKET_V3 socket, or one per
/// worker) and write every tenant's frames to DIR/<name>.pcap.
///
/// Interfaces: Ethernet and loopback (EN10MB), tun and other raw-IP ones
/// (RAW), and `any` (every interface, as Linux cooked v2 frames, the
/// headers libpcap makes; no kernel prefilter there). Files are pcap or
/// pcapng (--format), named by -w PATTERN and rotated by -C (size) and -G
/// (seconds) as tcpdump names and rotates its files, per tenant.
///
/// Each frame goes through the merged filter once and is written to every
/// tenant whose filter accepts it, truncated to min(filter's return value,
/// frame length, tenant's snaplen). A kernel prefilter compiled from the
/// merged filter is attached to the capture socket, so frames no tenant can
/// accept are dropped in the kernel (--no-kernel-prefilter copies every
/// frame to the ring instead). Expressions in the set are compiled for the
/// live socket, as tcpdump compiles for the interface it opens.
///
/// Stops after --count matched frames, after --duration seconds, or on
/// SIGINT / SIGTERM (or another ending signal such as SIGQUIT); files are
/// complete in every case, and written frames reach them within a second.
/// SIGHUP re-reads --filters and applies the difference while capturing: a
/// new name starts a new file, a vanished name's file is finished at once,
/// a changed program or snaplen goes on in the same file; a file that does
/// not load changes nothing. SIGUSR1 prints the statistics and goes on.
/// If the interface goes away, the files are finished and the exit status
/// is 1. Prints per-tenant frames, bytes and drops, and the kernel's
/// counters, at exit. Needs root or CAP_NET_RAW.
///
/// Example: bpf-demux capture -i eth0 --filters tenants.toml --out-dir /var/tmp/caps --duration 60
///          kill -HUP $(pidof bpf-demux)   # after editing tenants.toml
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    ring: crate::ring_args::RingArgs,
    /// Filter-set file (TOML or plain).
    #[arg(long, short, required_unless_present_any = ["list_interfaces", "list_link_types"])]
    filters: Option<PathBuf>,
    /// Folder for the per-tenant pcap files (made if missing).
    #[arg(long, required_unless_present_any = ["list_interfaces", "list_link_types"])]
    out_dir: Option<PathBuf>,
    /// Stop after this many frames accepted by at least one tenant.
    #[arg(long, short = 'c')]
    count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Frames each tenant's queue holds before that tenant drops.
    #[arg(long, default_value_t = 4096)]
    queue: usize,
    /// Do not put the stripped outer VLAN tag back into written frames.
    #[arg(long)]
    no_vlan_reinsert: bool,
    /// File format of the per-tenant files.
    #[arg(long, value_enum, default_value_t)]
    format: sink::FileFormat,
    /// Per-tenant file name in --out-dir (tcpdump's -w): `%n` is the
    /// tenant's name; with -G, strftime escapes (%Y %m %d %H %M %S %j %y %s)
    /// take the time the file began, in UTC. Default: %n.pcap (%n.pcapng).
    #[arg(short = 'w', value_name = "PATTERN")]
    write: Option<String>,
    /// Rotate each tenant's file before writing a frame once it is larger
    /// than this many million bytes (tcpdump's -C; suffixes k, m, g for
    /// 1024, 1024^2, 1024^3 bytes); later files of a period get 1, 2, ...
    /// appended to the name.
    #[arg(short = 'C', value_name = "SIZE", value_parser = sink::parse_size)]
    file_size: Option<u64>,
    /// Cap every tenant's delivered bytes at this many (tcpdump's -s;
    /// 0 means 262144); a tenant's own snaplen below it still applies.
    #[arg(short = 's', long = "snaplen", value_name = "SNAPLEN")]
    snaplen: Option<u32>,
    /// Rotate each tenant's file before writing a frame once it is this
    /// many seconds old (tcpdump's -G).
    #[arg(short = 'G', value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    rotate_seconds: Option<u64>,
}

impl Args {
    /// The files' names and rotation from -w, -C, -G and --format.
    fn naming(&self) -> Result<sink::Naming, String> {
        let format = self.format.into();
        let mut n = sink::Naming::plain(format);
        if let Some(p) = &self.write {
            if !p.contains("%n") {
                return Err(format!(
                    "-w {p}: the pattern must contain %n (the tenant's name): one file per tenant"
                ));
            }
            if p.contains('/') {
                return Err(format!("-w {p}: a file name in --out-dir, without `/`"));
            }
            n.pattern = p.clone();
        }
        n.size = self.file_size;
        n.every = self.rotate_seconds.map(Duration::from_secs);
        Ok(n)
    }
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    if let Some(listed) = a.ring.listing() {
        return listed;
    }
    let (Some(filters), Some(out_dir)) = (a.filters.clone(), a.out_dir.clone()) else {
        return Err("give --filters FILE and --out-dir DIR".into());
    };
    let mut cfg = a.ring.config()?;
    if a.duration.is_some_and(|d| d.is_nan() || d <= 0.0) {
        return Err("--duration must be positive".into());
    }
    let workers = cfg.workers;
    let interface = cfg.interface.clone();
    let link = cfg.link;
    let snap = a.snaplen.map(|s| {
        if s == 0 {
            bpf_demux::expr::DEFAULT_SNAPLEN
        } else {
            s
        }
    });
    let progs = load_set(&filters, link, snap)?;
    sink::check_open_files(progs.len(), workers)?;
    // Before any file exists, so no signal can leave half-written ones.
    sys::catch_termination()
        .and_then(|()| sys::catch_reload_and_stats())
        .map_err(|e| format!("installing signal handlers: {e}"))?;
    let mut current: BTreeMap<String, NamedProgram> =
        progs.iter().map(|p| (p.name.clone(), p.clone())).collect();
    let set = FilterSet::new(progs).map_err(|e| e.to_string())?;
    let n_tenants = set.len();
    let tenants = bpf_demux::capture::TenantSpec::all(set.automaton(), a.queue);
    let caps: Vec<Option<u32>> = tenants.iter().map(|t| t.snaplen).collect();
    let (senders, endpoints) = Senders::new(tenants, false);
    let naming = a.naming()?;
    let mut sink = Sink::create(
        &out_dir,
        endpoints.into_iter().zip(caps).collect(),
        senders.ready(),
        vec![IfaceDesc {
            name: interface.clone(),
            link,
            snaplen: bpf_demux::expr::DEFAULT_SNAPLEN,
        }],
        naming,
    )?;
    let commands = sink.commands();
    cfg.reinsert_vlan = !a.no_vlan_reinsert;
    cfg.max_frames = a.count;
    let ifindex = sys::if_index(&interface).ok();
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
    let writer = std::thread::spawn(move || sink.run());
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let (mut last, mut last_check) = (Instant::now(), Instant::now());
    let prefilter = match live.prefilter() {
        bpf_demux::capture::PrefilterState::Attached(n) => {
            format!("kernel prefilter of {n} instructions")
        }
        bpf_demux::capture::PrefilterState::Refused(why) => {
            format!("no kernel prefilter (the kernel refused it: {why}; raise net.core.optmem_max)")
        }
        _ if cfg.kernel_prefilter && !cfg.uses_kernel_prefilter() => {
            "no kernel prefilter (the `any` device's socket sees no cooked header)".to_string()
        }
        _ => "no kernel prefilter".to_string(),
    };
    eprintln!(
        "bpf-demux: capturing on {} ({}) for {n_tenants} tenants, {prefilter} (Ctrl-C to stop, SIGHUP reloads {})",
        interface,
        link.name(),
        filters.display()
    );
    let mut gone = false;
    while !live.is_stopped() {
        std::thread::sleep(Duration::from_millis(20));
        if sys::termination_requested()
            || a.duration
                .is_some_and(|d| start.elapsed().as_secs_f64() >= d)
        {
            live.stop();
        }
        if sys::take_hangup() {
            reload(
                &filters,
                &live,
                &mut current,
                &commands,
                a.queue,
                workers,
                snap,
            );
        }
        if sys::take_usr1() {
            let _ = commands.send(Command::PrintStats(progress_line(&live, start)));
        }
        if last_check.elapsed() >= Duration::from_millis(250) {
            last_check = Instant::now();
            // An interface that was removed (or replaced by another of the
            // same name) ends the capture, as in tcpdump.
            if sys::if_index(&interface).ok() != ifindex {
                gone = true;
                live.stop();
            }
        }
        if live.workers_running() < workers || writer.is_finished() {
            live.stop();
        }
        if tty && last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            let _ = write!(std::io::stderr(), "\r{}", progress_line(&live, start));
        }
    }
    if tty {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
    let refusals = live.prefilter_refusals();
    // The files are finished whatever the workers say.
    let totals = live.join();
    let lines = writer
        .join()
        .map_err(|_| "writer thread panicked".to_string())??;
    sink::print_summary(&lines);
    let totals = match totals {
        Ok(t) => t,
        Err(e) if gone || is_gone(&e) => {
            eprintln!("bpf-demux: interface {} went away", interface);
            return Ok(ExitCode::from(1));
        }
        Err(e) => {
            eprintln!("bpf-demux: capture failed: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let passed = if cfg.uses_kernel_prefilter() {
        " (frames the prefilter passed)"
    } else {
        ""
    };
    eprintln!(
        "frames read {}, matched by some tenant {}; kernel: received {}{passed}, dropped {}",
        totals.frames, totals.matched, totals.kernel_packets, totals.kernel_drops
    );
    if refusals > 0 {
        eprintln!("bpf-demux: the kernel refused the prefilter {refusals} times (captured without one meanwhile)");
    }
    if gone {
        eprintln!("bpf-demux: interface {} went away", interface);
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The set, compiled for the live socket; a `listen` address (a
/// PCAP-over-IP stream, which only `serve` makes) is refused rather than
/// ignored.
fn load_set(path: &Path, link: LinkType, snap: Option<u32>) -> Result<Vec<NamedProgram>, String> {
    let specs = spec::load_for(path, Target::Live(link)).map_err(|e| e.to_string())?;
    specs
        .iter()
        .map(|s| match s.listen {
            Some(l) => Err(format!(
                "{}:{}: filter `{}`: `listen = \"{l}\"` is for `bpf-demux serve` (capture writes files)",
                path.display(),
                s.line,
                s.name
            )),
            None => s.validate(path).map_err(|e| e.to_string()).map(|p| match snap {
                // -s: every tenant's cap at most that.
                Some(c) => {
                    let cap = p.snaplen.map_or(c, |own| own.min(c));
                    p.with_snaplen(cap)
                }
                None => p,
            }),
        })
        .collect()
}

/// The errors a ring socket reports once its interface is gone.
fn is_gone(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENETDOWN | libc::ENODEV | libc::ENXIO)
    )
}

fn progress_line(live: &LiveCapture, start: Instant) -> String {
    format!(
        "{} frames read, {} matched, in {:.0} s",
        live.frames_seen(),
        live.frames_matched(),
        start.elapsed().as_secs_f64()
    )
}

/// SIGHUP: re-reads `path` and applies the difference to the running
/// capture; a file that does not load, or a batch the capture refuses,
/// changes nothing.
fn reload(
    path: &Path,
    live: &LiveCapture,
    current: &mut BTreeMap<String, NamedProgram>,
    commands: &Sender<Command>,
    queue: usize,
    workers: usize,
    snap: Option<u32>,
) {
    let progs = match load_set(path, live.link(), snap) {
        Ok(p) => p,
        Err(e) => {
            say!("bpf-demux: reload failed: {e}");
            return;
        }
    };
    if let Err(e) = sink::check_open_files(progs.len(), workers) {
        say!("bpf-demux: reload failed: {}: {e}", path.display());
        return;
    }
    let new: BTreeMap<String, NamedProgram> =
        progs.into_iter().map(|p| (p.name.clone(), p)).collect();
    let mut changes = Vec::new();
    let mut removed = Vec::new();
    for name in current.keys().filter(|n| !new.contains_key(*n)) {
        changes.push(Change::Remove(name.clone()));
        removed.push(name.clone());
    }
    let mut changed = 0;
    for (name, p) in &new {
        match current.get(name) {
            None => changes.push(Change::Add {
                filter: p.clone(),
                queue: queue.into(),
            }),
            Some(old) if old.program.insns() != p.program.insns() || old.snaplen != p.snaplen => {
                changes.push(Change::Replace(p.clone()));
                changed += 1;
            }
            Some(_) => {}
        }
    }
    match live.update(changes) {
        Err(e) => say!("bpf-demux: reload failed: {}: {e}", path.display()),
        Ok(applied) => {
            let added = applied.endpoints.len();
            for ep in applied.endpoints {
                let cap = new[&ep.name].snaplen;
                let _ = commands.send(Command::Add(ep, cap));
            }
            for name in removed.iter() {
                let _ = commands.send(Command::Removed(name.clone()));
            }
            say!(
                "bpf-demux: reloaded {}: {} tenants (+{added} -{} ~{changed})",
                path.display(),
                new.len(),
                removed.len()
            );
            if applied.prefilter_retried {
                say!("bpf-demux: warning: the kernel could not swap the prefilter in place (optmem_max); it was detached and attached again");
            }
            if let bpf_demux::capture::PrefilterState::Refused(why) = &applied.prefilter {
                say!("bpf-demux: warning: kernel prefilter refused ({why}); capturing without one");
            }
            *current = new;
        }
    }
}

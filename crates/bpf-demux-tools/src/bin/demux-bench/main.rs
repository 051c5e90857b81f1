//! `demux-bench`: N independent filters against the merged structure.

mod churn;
mod live;
mod lsf;
mod measure;
mod plot;
mod report;
mod serve;

use bpf_demux::cbpf::FrameMeta;
use bpf_demux::pcapfile::PcapReader;
use bpf_demux::spec;
use bpf_demux::NamedProgram;
use bpf_demux_testkit::workload::{self, Family};
use clap::Parser;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Measure the cost per frame of N independent classic BPF filters (the
/// reference interpreter, one filter after another, as N kernel sockets
/// would) against one pass through bpf-demux's merged structure.
///
/// With no arguments: the built-in tenant families (hosts, ports, nets,
/// vlan-hosts, mixed) at N = 1, 10, 100, 1000, 10000 on 2048 generated
/// frames (IPv4/IPv6 TCP/UDP, ICMP, ARP, VLAN-tagged, some truncated).
/// Before timing, both engines run over every frame and must agree exactly
/// (exit 1 names the frame and filter otherwise). Times are medians of
/// several passes, in nanoseconds per frame.
///
/// Examples:
///   demux-bench
///   demux-bench --family hosts,ports --n 1,1000 --json out.json --plot out.svg
///   demux-bench --filters tenants.filters --pcap trace.pcap
///   demux-bench --churn --n 10000 --cycles 1000000
#[derive(Parser)]
#[command(name = "demux-bench", version)]
struct Args {
    /// Families to run (hosts, ports, nets, vlan-hosts, mixed), comma-separated.
    #[arg(long, value_delimiter = ',')]
    family: Vec<String>,
    /// Tenant counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',')]
    n: Vec<usize>,
    /// Use this filter set (TOML or plain) instead of the built-in families;
    /// measured at N = 1, 10, 100, ... up to its size, taking the first N.
    #[arg(long)]
    filters: Option<PathBuf>,
    /// Use the frames of these pcap/pcapng files instead of generated traffic.
    #[arg(long, num_args = 1..)]
    pcap: Vec<PathBuf>,
    /// Generated frames per run (ignored with --pcap; --live sends at least
    /// 40 000).
    #[arg(long, default_value_t = 2048)]
    frames: usize,
    /// Seed of the generated traffic.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Small, fast passes (for CI: checks agreement, not speed).
    #[arg(long)]
    quick: bool,
    /// Write one JSON record per family and N, with the command line.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a log-log SVG plot of ns/frame against N.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Live comparison (root): N kernel AF_PACKET sockets with their own
    /// filters against one bpf-demux ring, on a veth pair in a private
    /// network namespace; CPU per frame and frames delivered per second.
    /// Uses the first --family (default hosts) and --n (default 1,10,100,1000).
    #[arg(long)]
    live: bool,
    /// With --live: N `tcpdump -w` processes, one filter each (what users
    /// run today), against one `bpf-demux serve` daemon with N `bpf-demux
    /// attach -w` clients; CPU per frame of all of them. Needs tcpdump and
    /// the bpf-demux binary next to this one (cargo build --release
    /// --bins). --n defaults to 1,10,100.
    #[arg(long, requires = "live")]
    serve: bool,
    /// With --serve: percent of the addresses and ports in the traffic
    /// drawn from the tenants' values (the rest match no tenant), so about
    /// this share of frames is delivered to someone.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u64).range(0..=100))]
    tenant_share: u64,
    /// The seed's evaluation of the Linux Socket Filter, beside bpf-demux
    /// (root): 1. attach (setsockopt(SO_ATTACH_FILTER) against add +
    /// publish, 1 to 4096 instructions), 2. receive (CPU per frame against
    /// the snaplen, N kernel sockets against one ring with N tenants, on a
    /// 100 MB TCP transfer and on the --live frames), 3. delivery
    /// (recvfrom, TPACKET_V3 and an endpoint, against the filter's size).
    /// With --json and --plot-dir. See docs/lsf-evaluation.md.
    #[arg(long, conflicts_with_all = ["live", "churn"])]
    lsf: bool,
    /// With --lsf: write one SVG plot per experiment into this folder.
    #[arg(long, requires = "lsf")]
    plot_dir: Option<PathBuf>,
    /// Frames per second sent in --live.
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    /// Repetitions of each --live phase (the median is reported; the
    /// sending cost subtracted moves by a few hundred ns per frame between
    /// runs, so more repetitions and more --frames steady the figures).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Tenants coming and going: build N tenants of the first --family
    /// (default hosts, N default 10000), then run --cycles times: add a
    /// new tenant, publish, remove it, publish. Prints the median and tail
    /// of a cycle and resident memory before and after (exit 1 if memory
    /// grew more than 1.5x or the median passed 1 ms).
    #[arg(long)]
    churn: bool,
    /// Cycles of --churn.
    #[arg(long, default_value_t = 1_000_000)]
    cycles: usize,
}

/// A named group of filters to measure at several N.
pub struct Workload {
    pub name: String,
    pub filters: Vec<NamedProgram>,
    pub ns: Vec<usize>,
}

fn default_ns(max: usize) -> Vec<usize> {
    let mut v = Vec::new();
    let mut n = 1;
    while n < max {
        v.push(n);
        n *= 10;
    }
    v.push(max);
    v
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("demux-bench: {msg}");
            ExitCode::from(2)
        }
    }
}

fn run_live(args: &Args) -> Result<ExitCode, String> {
    let family = match args.family.first() {
        Some(f) => Family::from_name(f).ok_or_else(|| format!("--family: unknown family `{f}`"))?,
        None => Family::Hosts,
    };
    let ns = match (args.n.is_empty(), args.serve) {
        (true, false) => vec![1, 10, 100, 1000],
        (true, true) => vec![1, 10, 100],
        (false, _) => args.n.clone(),
    };
    let frames = if args.quick {
        2000
    } else {
        args.frames.max(40_000)
    };
    if args.rate == 0 {
        return Err("--rate must be positive".into());
    }
    if args.reps == 0 {
        return Err("--reps must be positive".into());
    }
    let reps = if args.quick { 1 } else { args.reps };
    if args.serve {
        let rows = match serve::run(
            family,
            &ns,
            frames,
            args.rate,
            args.seed,
            reps,
            args.tenant_share,
        ) {
            Ok(r) => r,
            Err(e) if e.contains("tcpdump wrote") => {
                eprintln!("demux-bench: ENGINES DISAGREE: {e}");
                return Ok(ExitCode::from(1));
            }
            Err(e) => return Err(e),
        };
        serve::print(&rows);
        return write_json(args, &rows);
    }
    let rows = match live::run(family, &ns, frames, args.rate, args.seed, reps) {
        Ok(r) => r,
        Err(e) if e.contains("kernel socket got") => {
            eprintln!("demux-bench: ENGINES DISAGREE: {e}");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e),
    };
    live::print(&rows);
    write_json(args, &rows)
}

/// One JSON record per row, each with the command line.
fn write_json<T: serde::Serialize>(args: &Args, rows: &[T]) -> Result<ExitCode, String> {
    if let Some(path) = &args.json {
        let command: Vec<String> = std::env::args().collect();
        let recs: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).expect("row serializes");
                v["command"] = serde_json::json!(command);
                v
            })
            .collect();
        std::fs::write(
            path,
            serde_json::to_string_pretty(&recs).expect("json") + "\n",
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run(args: Args) -> Result<ExitCode, String> {
    if args.n.contains(&0) {
        return Err("--n: tenant counts must be at least 1".into());
    }
    if args.frames == 0 {
        return Err("--frames must be at least 1".into());
    }
    if args.live {
        return run_live(&args);
    }
    if args.lsf {
        let opts = lsf::Options {
            quick: args.quick,
            reps: args.reps,
            json: args.json.clone(),
            plot_dir: args.plot_dir.clone(),
            seed: args.seed,
            rate: args.rate,
        };
        return match lsf::run(&opts) {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) if e.starts_with("DISAGREE: ") => {
                eprintln!(
                    "demux-bench: ENGINES DISAGREE: {}",
                    &e["DISAGREE: ".len()..]
                );
                Ok(ExitCode::from(1))
            }
            Err(e) => Err(e),
        };
    }
    if args.churn {
        let name = args.family.first().map_or("hosts", String::as_str);
        let family = Family::from_name(name).ok_or_else(|| format!("unknown family `{name}`"))?;
        let n = args.n.first().copied().unwrap_or(10_000);
        let cycles = if args.quick {
            args.cycles.min(20_000)
        } else {
            args.cycles
        };
        let ok = churn::run(family, n, cycles)?;
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let mut workloads = Vec::new();
    if let Some(path) = &args.filters {
        if !args.family.is_empty() {
            return Err("--filters and --family exclude each other".into());
        }
        let set = spec::load_valid(path).map_err(|e| e.to_string())?;
        let ns = if args.n.is_empty() {
            default_ns(set.len())
        } else {
            args.n.iter().map(|&n| n.min(set.len())).collect()
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "filters".into());
        workloads.push(Workload {
            name,
            filters: set,
            ns,
        });
    } else {
        let fams: Vec<Family> = if args.family.is_empty() {
            Family::ALL.to_vec()
        } else {
            args.family
                .iter()
                .map(|f| {
                    Family::from_name(f).ok_or_else(|| {
                        format!("--family: unknown family `{f}` (hosts, ports, nets, vlan-hosts, mixed)")
                    })
                })
                .collect::<Result<_, _>>()?
        };
        let ns = if !args.n.is_empty() {
            args.n.clone()
        } else if args.quick {
            vec![1, 10, 100, 1000]
        } else {
            vec![1, 10, 100, 1000, 10000]
        };
        let max = *ns.iter().max().unwrap();
        for f in fams {
            workloads.push(Workload {
                name: f.name().into(),
                filters: f.tenants(max),
                ns: ns.clone(),
            });
        }
    }
    let frames: Vec<(Vec<u8>, FrameMeta)> = if args.pcap.is_empty() {
        let count = if args.quick {
            args.frames.min(512)
        } else {
            args.frames
        };
        let max_n = workloads
            .iter()
            .flat_map(|w| w.ns.iter())
            .copied()
            .max()
            .unwrap_or(1);
        workload::traffic(count, max_n, args.seed)
            .into_iter()
            .map(|f| {
                let m = FrameMeta::offline(&f.data, f.wire_len);
                (f.data, m)
            })
            .collect()
    } else {
        let mut v = Vec::new();
        for p in &args.pcap {
            let mut r = PcapReader::open(p).map_err(|e| e.to_string())?;
            while let Some(rec) = r.next_record().map_err(|e| e.to_string())? {
                v.push((
                    rec.data.to_vec(),
                    FrameMeta::offline(rec.data, rec.orig_len),
                ));
            }
        }
        if v.is_empty() {
            return Err("the pcap files hold no frames".into());
        }
        v
    };
    let plan = measure::Plan {
        quick: args.quick,
        progress: std::io::stderr().is_terminal(),
    };
    let source = if args.pcap.is_empty() {
        format!("{} generated frames (seed {})", frames.len(), args.seed)
    } else {
        format!(
            "{} frames from {} pcap file(s)",
            frames.len(),
            args.pcap.len()
        )
    };
    eprintln!("demux-bench: {source}; timing is the median of several passes");
    let rows = match measure::run_all(&workloads, &frames, &plan) {
        Ok(rows) => rows,
        Err(disagreement) => {
            eprintln!("demux-bench: ENGINES DISAGREE: {disagreement}");
            return Ok(ExitCode::from(1));
        }
    };
    report::print_table(&rows, &source);
    let command: Vec<String> = std::env::args().collect();
    if let Some(path) = &args.json {
        report::write_json(path, &rows, &command, &source)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("demux-bench: wrote {}", path.display());
    }
    if let Some(path) = &args.plot {
        plot::write_svg(path, &rows).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("demux-bench: wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

//! `demux-bench --lsf`: the seed's three measurements of the Linux Socket
//! Filter (attach, receive, delivery), each beside bpf-demux's own path
//! for the same work, on the running kernel (root; two private network
//! namespaces joined by a veth pair).
//!
//! The seed traced the kernel functions with ftrace's function-duration
//! tracer. Where that tracer (or kprobes) is missing, as on the test VMs,
//! the output says so and the times are clocks around the system calls
//! and per-thread or per-process CPU time.

mod attach;
mod chart;
mod delivery;
mod netpair;
mod receive;
mod report;
mod shapes;
mod sysctl;

use serde::Serialize;
use std::path::PathBuf;

/// Shows what runs now on a terminal's stderr (one line, overwritten).
pub fn progress(what: &str) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2Kdemux-bench --lsf: {what} ...");
    }
}

/// Clears the progress line.
pub fn progress_done() {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
}

/// Median and range of one point's runs.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Spread {
    pub fn of(samples: &[f64]) -> Spread {
        let mut v = samples.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        if v.is_empty() {
            return Spread {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
                runs: 0,
            };
        }
        Spread {
            median: v[v.len() / 2],
            min: v[0],
            max: v[v.len() - 1],
            runs: v.len(),
        }
    }
    /// `median [min-max]`, with `digits` decimals.
    pub fn show(&self, digits: usize) -> String {
        format!(
            "{:.d$} [{:.d$}-{:.d$}]",
            self.median,
            self.min,
            self.max,
            d = digits
        )
    }
}

pub struct Options {
    pub quick: bool,
    pub reps: usize,
    pub json: Option<PathBuf>,
    pub plot_dir: Option<PathBuf>,
    pub seed: u64,
    pub rate: u64,
}

/// The machine and what its kernel offers for tracing.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub bpf_jit_enable: String,
    pub optmem_max: u64,
    /// Whether a function tracer with durations is there, and what was used.
    pub tracing: String,
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("unreadable ({e})"))
}

/// Looks for ftrace's `function_graph` tracer and for kprobes, in a
/// private mount namespace (the host's mounts are left alone).
fn probe_tracing() -> String {
    let script = "mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || exit 3; \
                  cat /sys/kernel/tracing/available_tracers; \
                  if test -e /sys/kernel/tracing/kprobe_events; then echo KPROBES; fi";
    let out = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", script])
        .output();
    let (tracers, kprobes) = match out {
        Ok(o) if o.status.success() => {
            let s = String::from_utf8_lossy(&o.stdout).to_string();
            let kprobes = s.contains("KPROBES");
            (s.replace("KPROBES", "").trim().to_string(), kprobes)
        }
        _ => {
            return "no tracefs here: timed with clocks around the system calls and CPU time".into()
        }
    };
    let graph = tracers.split_whitespace().any(|t| t == "function_graph");
    if graph || kprobes {
        format!(
            "tracers [{tracers}]{}: this version times with clocks around the system calls and CPU time, not with the tracer",
            if kprobes { ", kprobes" } else { "" }
        )
    } else {
        format!(
            "no function tracer with durations (tracers [{tracers}], no function_graph, no kprobe_events): timed with clocks around the system calls and CPU time"
        )
    }
}

fn machine(optmem_max: u64) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: read_trim("/proc/sys/kernel/osrelease"),
        bpf_jit_enable: read_trim("/proc/sys/net/core/bpf_jit_enable"),
        optmem_max,
        tracing: probe_tracing(),
    }
}

/// Everything one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub attach: attach::AttachReport,
    pub receive: Vec<receive::ReceiveRow>,
    pub delivery: Vec<delivery::DeliveryRow>,
    pub command: Vec<String>,
}

pub fn run(opts: &Options) -> Result<(), String> {
    let pair =
        netpair::NetPair::new().map_err(|e| format!("--lsf needs root and iproute2: {e}"))?;
    let optmem_max = sysctl::get_in_ns(pair.rx_name(), "net.core.optmem_max")?;
    let machine = machine(optmem_max);
    eprintln!("demux-bench --lsf: {}", machine.tracing);
    let reps = if opts.quick { 1 } else { opts.reps.max(5) };
    let sizes: Vec<usize> = (0..=12).map(|k| 1usize << k).collect();
    let tenant_counts: &[usize] = if opts.quick {
        &[1, 1000]
    } else {
        &[1, 1000, 10000]
    };
    let rx = pair.rx_path();
    let tx = pair.tx_path();
    let rx_name = pair.rx_name().to_string();
    let quick = opts.quick;
    let (seed, rate) = (opts.seed, opts.rate);
    let handle = std::thread::spawn(move || -> Result<_, String> {
        bpf_demux::capture::sys::enter_netns(&rx)
            .map_err(|e| format!("entering the namespace: {e}"))?;
        let t = std::time::Instant::now();
        eprintln!(
            "demux-bench --lsf: 1. attach, {} sizes x 2 shapes ...",
            sizes.len()
        );
        let attach = attach::run(&sizes, tenant_counts, reps, &rx_name)?;
        let plan = receive::Plan::new(quick, reps, seed, rate);
        eprintln!(
            "demux-bench --lsf: 2. receive, {} points of {reps} run(s) ({:.0} s so far) ...",
            3 * plan.ns.len() * plan.snaplens.len(),
            t.elapsed().as_secs_f64()
        );
        let receive = receive::run(&plan, &rx_name, &tx)?;
        eprintln!(
            "demux-bench --lsf: 3. delivery ({:.0} s so far) ...",
            t.elapsed().as_secs_f64()
        );
        let delivery = delivery::run(quick, reps, &tx)?;
        eprintln!(
            "demux-bench --lsf: done in {:.0} s",
            t.elapsed().as_secs_f64()
        );
        Ok((attach, receive, delivery))
    });
    let (attach, receive, delivery) = handle
        .join()
        .map_err(|_| "the --lsf thread panicked".to_string())??;
    drop(pair);
    let report = Report {
        machine,
        attach,
        receive,
        delivery,
        command: std::env::args().collect(),
    };
    report::print(&report);
    if let Some(path) = &opts.json {
        let text = serde_json::to_string_pretty(&report).expect("report serializes") + "\n";
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("demux-bench: wrote {}", path.display());
    }
    if let Some(dir) = &opts.plot_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for p in report::plots(&report, dir)? {
            eprintln!("demux-bench: wrote {}", p.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Spread;

    #[test]
    fn spread_is_median_and_range() {
        let s = Spread::of(&[5.0, 1.0, 9.0, 3.0, 7.0]);
        assert_eq!((s.median, s.min, s.max, s.runs), (5.0, 1.0, 9.0, 5));
        // Even counts take the upper middle, as the other benches do.
        let s = Spread::of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (3.0, 1.0, 4.0));
        assert_eq!(Spread::of(&[2.5]).show(1), "2.5 [2.5-2.5]");
        assert_eq!(Spread::of(&[]).runs, 0);
    }
}

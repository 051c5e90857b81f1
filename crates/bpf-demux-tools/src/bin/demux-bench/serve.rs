//! `demux-bench --live --serve`: what a user runs today, N `tcpdump -w`
//! processes each with its own filter, against one `bpf-demux serve`
//! daemon with N `bpf-demux attach -w` clients, on a veth pair in a private
//! network namespace (root; tcpdump installed; the `bpf-demux` binary
//! built next to this one).
//!
//! For each N the same frames are sent from `va` at a steady rate three
//! times: with no receiver (the cost of sending, subtracted), with the N
//! tcpdumps on `vb`, with the daemon and its N clients on `vb`. CPU is this
//! process's (the sender, and the veth receive softirq where the kernel
//! runs every socket's filter), the ksoftirqd threads', and every thread
//! of the receiving processes, from the first frame sent until the frame
//! counts stop moving. Both sides must write the same frames (count and
//! bytes) for every tenant, read back from their pcap files.

use crate::live::{cpu_ns, digest, phase_send_only, schedstat_ns, send_steady};
use bpf_demux::capture::sys::{enter_netns, if_index, PacketSocket};
use bpf_demux::pcapfile::PcapReader;
use bpf_demux_testkit::netns::NetNs;
use bpf_demux_testkit::workload::{self, Family};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, serde::Serialize)]
pub struct ServeRow {
    pub family: String,
    /// Percent of addresses and ports drawn from the tenants' values.
    pub tenant_share: u64,
    pub n: usize,
    pub frames: usize,
    pub rate_fps: u64,
    pub send_ns_per_frame: f64,
    pub tcpdump_ns_per_frame: f64,
    pub serve_ns_per_frame: f64,
    pub ratio: f64,
    /// Frames written to all tenants' files (each side).
    pub deliveries: u64,
}

/// A child and its stderr lines.
struct Proc {
    child: Child,
    lines: Receiver<String>,
}

impl Proc {
    fn spawn(mut c: Command) -> Result<Proc, String> {
        let mut child = c
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{c:?}: {e}"))?;
        let err = child.stderr.take().expect("piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Ok(Proc { child, lines })
    }
    fn wait_for(&self, needle: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(l) if l.contains(needle) => return Ok(()),
                Ok(l) => seen.push(l),
                Err(_) => {
                    return Err(format!(
                        "no `{needle}` from pid {}: {seen:?}",
                        self.child.id()
                    ))
                }
            }
        }
    }
    /// CPU of each thread by name, in ns.
    fn threads(&self) -> std::collections::BTreeMap<String, u128> {
        let mut m = std::collections::BTreeMap::new();
        if let Ok(d) = std::fs::read_dir(format!("/proc/{}/task", self.child.id())) {
            for t in d.flatten() {
                let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
                *m.entry(comm.trim().to_string()).or_insert(0) += schedstat_ns(&t.path());
            }
        }
        m
    }
    /// CPU of every thread, in ns.
    fn cpu_ns(&self) -> u128 {
        let Ok(d) = std::fs::read_dir(format!("/proc/{}/task", self.child.id())) else {
            return 0;
        };
        d.flatten().map(|t| schedstat_ns(&t.path())).sum()
    }
    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(sig)
            .arg(self.child.id().to_string())
            .status();
    }
    fn wait(mut self) -> Result<(), String> {
        let s = self.child.wait().map_err(|e| e.to_string())?;
        match s.code() {
            Some(0) => Ok(()),
            _ => Err(format!("pid {} ended with {s}", self.child.id())),
        }
    }
}

fn file_deliveries(path: &Path) -> Result<(u64, u64), String> {
    let mut r = PcapReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut acc = (0, 0);
    while let Some(rec) = r.next_record().map_err(|e| e.to_string())? {
        digest(&mut acc, rec.data);
    }
    Ok(acc)
}

/// Sends the frames and waits for the receivers' CPU to stop moving;
/// returns the CPU of this process, ksoftirqd and `procs`.
fn measure(procs: &[&Proc], frames: &[Vec<u8>], rate: u64, va: u32) -> Result<f64, String> {
    let mut tx = PacketSocket::open().map_err(|e| e.to_string())?;
    tx.bind(va).map_err(|e| e.to_string())?;
    let total = || cpu_ns() + procs.iter().map(|p| p.cpu_ns()).sum::<u128>();
    let c0 = total();
    let c_self = cpu_ns();
    let p0: Vec<u128> = procs.iter().map(|p| p.cpu_ns()).collect();
    let t0 = procs.last().map(|p| p.threads()).unwrap_or_default();
    send_steady(&tx, frames, rate);
    // libpcap's ring blocks retire after tcpdump's 1 s timeout (a block
    // still open when tcpdump is stopped is lost), the daemon's writers
    // gather for 200 ms: the window runs 1.6 s past the last frame, for
    // both sides. (Counters are read only at its two ends: reading a few
    // hundred schedstat files costs CPU of its own.)
    std::thread::sleep(Duration::from_millis(1600));
    let last = total();
    if std::env::var_os("DEMUX_BENCH_DEBUG").is_some() {
        let mine = cpu_ns() - c_self;
        let each: Vec<u128> = procs.iter().zip(&p0).map(|(p, c)| p.cpu_ns() - c).collect();
        eprintln!(
            "  window: this process + ksoftirqd {:.1} ms; receivers {:.1} ms (largest {:.1} ms)",
            mine as f64 / 1e6,
            each.iter().sum::<u128>() as f64 / 1e6,
            each.iter().max().copied().unwrap_or(0) as f64 / 1e6
        );
        if let Some(p) = procs.last() {
            for (k, v) in p.threads() {
                let d = v - t0.get(&k).copied().unwrap_or(0);
                if d > 1_000_000 {
                    eprintln!("    {k}: {:.1} ms", d as f64 / 1e6);
                }
            }
        }
    }
    Ok((last - c0) as f64)
}

pub fn run(
    family: Family,
    ns_list: &[usize],
    frames_n: usize,
    rate: u64,
    seed: u64,
    reps: usize,
    share: u64,
) -> Result<Vec<ServeRow>, String> {
    let bin = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("bpf-demux");
    if !bin.exists() {
        return Err(format!(
            "--serve runs {} (build it: cargo build --release --bins)",
            bin.display()
        ));
    }
    if Command::new("tcpdump").arg("--version").output().is_err() {
        return Err("--serve compares with tcpdump: install it".into());
    }
    let ns =
        NetNs::new("bench-serve").map_err(|e| format!("--serve needs root and iproute2: {e}"))?;
    let max = *ns_list.iter().max().unwrap_or(&1);
    let frames: Vec<Vec<u8>> = workload::traffic_with_share(frames_n, max, seed, share)
        .into_iter()
        .map(|f| f.data)
        .collect();
    let dir = std::env::temp_dir().join(format!("demux-bench-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (path, name, ns_list) = (ns.path(), ns.name.clone(), ns_list.to_vec());
    let fam = family.name().to_string();
    let d2 = dir.clone();
    let rows = std::thread::spawn(move || -> Result<Vec<ServeRow>, String> {
        enter_netns(&path).map_err(|e| format!("entering the namespace: {e}"))?;
        let va = if_index("va").map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        for n in ns_list {
            eprintln!("demux-bench --live --serve: N={n} ...");
            let exprs: Vec<String> = (0..n).map(|i| family.expression(i)).collect();
            // Closing a hundred rings frees their memory through RCU, charged
            // to ksoftirqd: the next phase starts after that settled.
            // Closing a hundred rings frees their memory through RCU, charged
            // to ksoftirqd: the next phase starts after that settled.
            let settle = || std::thread::sleep(Duration::from_secs(2));
            let f = frames.len() as f64;
            let (mut bs, mut ts, mut ss) = (Vec::new(), Vec::new(), Vec::new());
            let mut deliveries = 0;
            for _ in 0..reps {
                settle();
                let base = phase_send_only(&frames, rate, va)?;
                settle();
                let (tcpdump, td_files) = phase_tcpdump(&name, &d2, &exprs, &frames, rate, va)?;
                settle();
                let (serve, at_files) = phase_serve(&name, &bin, &d2, &exprs, &frames, rate, va)?;
                deliveries = 0;
                for (i, (t, a)) in td_files.iter().zip(&at_files).enumerate() {
                    let (t, a) = (file_deliveries(t)?, file_deliveries(a)?);
                    if t != a {
                        return Err(format!(
                            "N={n}: tenant {i} (`{}`): tcpdump wrote {} frames, bpf-demux attach {} (or different bytes)",
                            exprs[i], t.0, a.0
                        ));
                    }
                    deliveries += t.0;
                }
                for p in td_files.iter().chain(&at_files) {
                    let _ = std::fs::remove_file(p);
                }
                bs.push(base / f);
                ts.push((tcpdump - base) / f);
                ss.push((serve - base) / f);
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(|a, b| a.total_cmp(b));
                v[v.len() / 2].max(0.0)
            };
            let (b_ns, t_ns, s_ns) = (median(&mut bs), median(&mut ts), median(&mut ss));
            rows.push(ServeRow {
                family: fam.clone(),
                tenant_share: share,
                n,
                frames: frames.len(),
                rate_fps: rate,
                send_ns_per_frame: b_ns,
                tcpdump_ns_per_frame: t_ns,
                serve_ns_per_frame: s_ns,
                ratio: if s_ns > 0.0 { t_ns / s_ns } else { f64::INFINITY },
                deliveries,
            });
        }
        Ok(rows)
    })
    .join()
    .map_err(|_| "serve bench thread panicked".to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    drop(ns);
    rows
}

fn in_ns(ns: &str, prog: &Path) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(prog);
    c
}

fn phase_tcpdump(
    ns: &str,
    dir: &Path,
    exprs: &[String],
    frames: &[Vec<u8>],
    rate: u64,
    va: u32,
) -> Result<(f64, Vec<PathBuf>), String> {
    let mut procs = Vec::new();
    let mut files = Vec::new();
    for (i, e) in exprs.iter().enumerate() {
        let out = dir.join(format!("tcpdump-{i}.pcap"));
        let mut c = in_ns(ns, Path::new("tcpdump"));
        c.args(["-i", "vb", "-Z", "root", "-n", "-s", "262144", "-w"])
            .arg(&out)
            .arg(e);
        procs.push(Proc::spawn(c)?);
        files.push(out);
    }
    for p in &procs {
        p.wait_for("listening on vb")?;
    }
    let cpu = measure(&procs.iter().collect::<Vec<_>>(), frames, rate, va)?;
    for p in &procs {
        p.signal("-INT");
    }
    for p in procs {
        p.wait()?;
    }
    Ok((cpu, files))
}

fn phase_serve(
    ns: &str,
    bin: &Path,
    dir: &Path,
    exprs: &[String],
    frames: &[Vec<u8>],
    rate: u64,
    va: u32,
) -> Result<(f64, Vec<PathBuf>), String> {
    let sock = dir.join("serve.sock");
    let mut c = in_ns(ns, bin);
    c.args(["serve", "-i", "vb", "--socket"]).arg(&sock);
    let daemon = Proc::spawn(c)?;
    daemon.wait_for("serving vb")?;
    let mut clients = Vec::new();
    let mut files = Vec::new();
    for (i, e) in exprs.iter().enumerate() {
        let out = dir.join(format!("attach-{i}.pcap"));
        let mut c = Command::new(bin);
        c.args(["attach", "--name", &format!("t{i}"), "--socket"])
            .arg(&sock)
            .arg("-w")
            .arg(&out)
            .args(e.split(' '));
        clients.push(Proc::spawn(c)?);
        files.push(out);
    }
    for (i, p) in clients.iter().enumerate() {
        p.wait_for(&format!("attached t{i}"))?;
    }
    let mut all: Vec<&Proc> = clients.iter().collect();
    all.push(&daemon);
    let cpu = measure(&all, frames, rate, va)?;
    for p in &clients {
        p.signal("-INT");
    }
    for p in clients {
        p.wait()?;
    }
    daemon.signal("-TERM");
    daemon.wait()?;
    Ok((cpu, files))
}

pub fn print(rows: &[ServeRow]) {
    println!("demux-bench --live --serve: N tcpdump -w (one filter each) vs one bpf-demux serve + N attach -w, CPU per frame net of sending (veth, private netns)");
    println!(
        "{:<8} {:>6} {:>5} {:>8} {:>10} {:>14} {:>14} {:>8} {:>12}",
        "family",
        "share",
        "N",
        "frames",
        "send ns",
        "N tcpdump ns",
        "serve ns",
        "ratio",
        "deliveries"
    );
    for r in rows {
        println!(
            "{:<8} {:>5}% {:>5} {:>8} {:>10.0} {:>14.0} {:>14.0} {:>7.1}x {:>12}",
            r.family,
            r.tenant_share,
            r.n,
            r.frames,
            r.send_ns_per_frame,
            r.tcpdump_ns_per_frame,
            r.serve_ns_per_frame,
            r.ratio,
            r.deliveries
        );
    }
}

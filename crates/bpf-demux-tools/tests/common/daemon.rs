//! The `bpf-demux serve` test harness: the daemon and its attach
//! clients as processes (their stderr line by line), a folder uid 65534
//! can use, tenants of every kind, and their kernel-socket oracles.

use super::{pcap_frames, tmpdir, NetNs};
use bpf_demux::capture::sys::{enter_netns, if_index, PacketSocket};
use bpf_demux::cbpf::{text, Insn};
use bpf_demux::expr;
use bpf_demux::serve::proto;
use bpf_demux_testkit::workload::{self, Family};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

pub const NOBODY: &str = "65534";

/// A process and its stderr, line by line.
pub struct Proc {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines,
            seen: Vec::new(),
        }
    }
    /// Waits for a stderr line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => {
                    self.seen.push(l.clone());
                    return l;
                }
                Ok(l) => self.seen.push(l),
                Err(_) => panic!("no `{needle}` on stderr; saw {:?}", self.seen),
            }
        }
    }
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }
    /// Waits for the exit (at most 20 s); its status code and stderr.
    pub fn finish(mut self) -> (i32, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "still running; stderr {:?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(l);
        }
        (code, std::mem::take(&mut self.seen))
    }
}

impl Drop for Proc {
    /// A test that failed leaves nothing running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A test's folder (0755, so uid 65534 can reach the socket and the
/// binary copied into it).
pub struct Place {
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub sock: PathBuf,
}

impl Place {
    pub fn new(tag: &str) -> Place {
        let dir = tmpdir(tag);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("bpf-demux");
        std::fs::copy(env!("CARGO_BIN_EXE_bpf-demux"), &bin).unwrap();
        let sock = dir.join("serve.sock");
        Place { dir, bin, sock }
    }
    /// `bpf-demux serve -i vb` in `ns` with `extra` options; waits until
    /// it serves.
    pub fn serve(&self, ns: &str, extra: &[&str]) -> Proc {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns])
            .arg(&self.bin)
            .args(["serve", "-i", "vb", "--socket"])
            .arg(&self.sock)
            .args(extra)
            .stdout(Stdio::null());
        let mut p = Proc::spawn(c);
        p.wait_for("bpf-demux: serving vb on");
        p
    }
    /// `bpf-demux attach` (as uid 65534 with no groups when `nobody`),
    /// its pcap on stdout into `out`.
    pub fn attach(&self, nobody: bool, args: &[&str], out: &Path) -> Proc {
        let mut c = if nobody {
            let mut c = Command::new("setpriv");
            c.args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups"])
                .arg(&self.bin);
            c
        } else {
            Command::new(&self.bin)
        };
        c.arg("attach")
            .arg("--socket")
            .arg(&self.sock)
            .args(args)
            .stdout(std::fs::File::create(out).unwrap());
        Proc::spawn(c)
    }
}

/// The program `bpf-demux attach` compiles for `e` (live, as tcpdump
/// compiles for an interface it opens).
pub fn live(e: &str) -> Vec<Insn> {
    let opts = expr::Options {
        live: true,
        ..expr::Options::default()
    };
    expr::compile_with(e, &opts).unwrap()
}

/// Untagged frames of the built-in workload for `tenants` tenants.
pub fn frames(count: usize, tenants: usize) -> Vec<Vec<u8>> {
    workload::traffic(count, tenants, 7)
        .into_iter()
        .map(|f| f.data)
        .filter(|d| d.len() >= 14 && !matches!(u16::from_be_bytes([d[12], d[13]]), 0x8100 | 0x88a8))
        .collect()
}

/// One kernel socket per program on `vb`, opened now.
pub fn kernel_sockets(programs: &[Vec<Insn>]) -> Vec<PacketSocket> {
    let vb = if_index("vb").unwrap();
    programs
        .iter()
        .map(|p| {
            let mut s = PacketSocket::open().unwrap();
            s.attach_filter(p).unwrap();
            s.set_rcvbuf(64 << 20).unwrap();
            s.bind(vb).unwrap();
            s
        })
        .collect()
}

/// Sends `frames` from `va`, 50 a millisecond.
pub fn send(frames: &[Vec<u8>]) {
    let mut tx = PacketSocket::open().unwrap();
    tx.bind(if_index("va").unwrap()).unwrap();
    let start = Instant::now();
    for (i, chunk) in frames.chunks(50).enumerate() {
        for f in chunk {
            tx.send(f).unwrap();
        }
        if let Some(w) = Duration::from_millis(i as u64 + 1).checked_sub(start.elapsed()) {
            std::thread::sleep(w);
        }
    }
}

/// Everything queued on `s`, each frame cut to `snaplen`.
pub fn drain(s: &PacketSocket, snaplen: Option<u32>) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 1 << 17];
    let mut out = Vec::new();
    while let Some(r) = s.try_recv(&mut buf).unwrap() {
        let n = r.copied.min(snaplen.map_or(usize::MAX, |s| s as usize));
        out.push(buf[..n].to_vec());
    }
    out
}

/// One tenant of a test: how it attaches, what its kernel socket runs.
pub struct Tenant {
    pub name: String,
    pub nobody: bool,
    pub args: Vec<String>,
    pub program: Vec<Insn>,
    pub snaplen: Option<u32>,
}

/// `n` tenants: programs of the built-in `mixed` family given as
/// `--program` files, every fifth an expression; every seventh with
/// `--snaplen 64`; odd ones as uid 65534.
pub fn tenants(place: &Place, n: usize) -> Vec<Tenant> {
    let exprs = [
        "udp",
        "tcp port 80",
        "arp",
        "ip and not tcp",
        "tcp[13] & 2 != 0",
    ];
    (0..n)
        .map(|i| {
            let name = format!("t{i}");
            let snaplen = (i % 7 == 3).then_some(64);
            let mut args = vec!["--name".to_string(), name.clone()];
            if let Some(s) = snaplen {
                args.extend(["--snaplen".into(), s.to_string()]);
            }
            let program = if i % 5 == 0 {
                let e = exprs[i / 5 % exprs.len()];
                args.extend(e.split(' ').map(str::to_string));
                live(e)
            } else {
                let p = Family::Mixed.program(i);
                let file = place.dir.join(format!("{name}.ddd"));
                std::fs::write(&file, text::write_ddd(p.insns())).unwrap();
                args.extend(["--program".into(), file.display().to_string()]);
                p.insns().to_vec()
            };
            Tenant {
                name,
                nobody: i % 2 == 1,
                args,
                program,
                snaplen,
            }
        })
        .collect()
}

pub fn attach_all(place: &Place, ts: &[Tenant]) -> Vec<(Proc, PathBuf)> {
    let procs: Vec<(Proc, PathBuf)> = ts
        .iter()
        .map(|t| {
            let out = place.dir.join(format!("{}.pcap", t.name));
            let args: Vec<&str> = t.args.iter().map(String::as_str).collect();
            (place.attach(t.nobody, &args, &out), out)
        })
        .collect();
    procs
        .into_iter()
        .zip(ts)
        .map(|((mut p, out), t)| {
            p.wait_for(&format!("bpf-demux: attached {}", t.name));
            (p, out)
        })
        .collect()
}

/// Ends every client with SIGINT; each must exit 0 with its counters.
pub fn end_all(procs: Vec<(Proc, PathBuf)>) -> Vec<Vec<Vec<u8>>> {
    for (p, _) in &procs {
        p.signal("-INT");
    }
    procs
        .into_iter()
        .map(|(p, out)| {
            let (code, err) = p.finish();
            assert_eq!(code, 0, "attach exit; stderr {err:?}");
            assert!(
                err.iter().any(|l| l.contains("dropped by its queue")),
                "{err:?}"
            );
            pcap_frames(&out)
        })
        .collect()
}

/// Opens one kernel socket per tenant in `ns`, sends `traffic` from `va`,
/// waits `settle_ms`, and returns what each socket got (cut to the
/// tenant's snaplen): the oracle of every serve test.
pub fn replay_to_kernel(
    ns: &NetNs,
    ts: &[Tenant],
    traffic: Vec<Vec<u8>>,
    settle_ms: u64,
) -> Vec<Vec<Vec<u8>>> {
    let programs: Vec<Vec<Insn>> = ts.iter().map(|t| t.program.clone()).collect();
    let snaplens: Vec<Option<u32>> = ts.iter().map(|t| t.snaplen).collect();
    in_ns(ns, move || {
        let socks = kernel_sockets(&programs);
        send(&traffic);
        std::thread::sleep(Duration::from_millis(settle_ms));
        socks
            .iter()
            .zip(snaplens)
            .map(|(s, n)| drain(s, n))
            .collect()
    })
}

pub fn in_ns<T: Send + 'static>(ns: &NetNs, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = ns.path();
    std::thread::spawn(move || {
        enter_netns(&path).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// The pid of the serve process (`ip netns exec` execs it in place).
pub fn daemon_pid(p: &Proc) -> u32 {
    p.child.id()
}

pub fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

/// Tenant names in the daemon's listing (as root).
pub fn listing_names(sock: &Path) -> Vec<String> {
    let o = Command::new(env!("CARGO_BIN_EXE_bpf-demux"))
        .args(["tenants", "--format", "json", "--socket"])
        .arg(sock)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: proto::TenantsReport = serde_json::from_slice(&o.stdout).unwrap();
    r.tenants.into_iter().map(|t| t.name).collect()
}

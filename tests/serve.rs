//! `bpf-demux serve` with attach clients, the kernel as the oracle (root;
//! a private network namespace with a veth pair): every client's pcap
//! equals what its own AF_PACKET socket with the same filter received,
//! frame for frame; clients as uid 65534 with no supplementary groups
//! (`setpriv`); PCAP-over-IP read by tshark; refusals (policy, quota, bad
//! filters); a flood of malformed messages; SIGKILLed clients; SIGTERM to
//! the daemon.
//!
//! Frames are the built-in workload's without 802.1Q/802.1ad tags: a
//! kernel socket delivers a frame with its outer tag stripped, libpcap
//! (and bpf-demux) put it back, so tagged frames would differ by design.

mod common;

use bpf_demux::capture::sys::{enter_netns, if_index, PacketSocket};
use bpf_demux::cbpf::{text, Insn};
use bpf_demux::serve::proto::{self, AttachRequest, ClientMessage, DaemonMessage, RefuseCode};
use bpf_demux::workload::{self, Family};
use bpf_demux::expr;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const NOBODY: &str = "65534";

/// A process and its stderr, line by line.
struct Proc {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
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
    fn wait_for(&mut self, needle: &str) -> String {
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
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }
    /// Waits for the exit (at most 20 s); its status code and stderr.
    fn finish(mut self) -> (i32, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "still running; stderr {:?}", self.seen);
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
struct Place {
    dir: PathBuf,
    bin: PathBuf,
    sock: PathBuf,
}

impl Place {
    fn new(tag: &str) -> Place {
        let dir = tmpdir(tag);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("bpf-demux");
        std::fs::copy(env!("CARGO_BIN_EXE_bpf-demux"), &bin).unwrap();
        let sock = dir.join("serve.sock");
        Place { dir, bin, sock }
    }
    /// `bpf-demux serve -i vb` in `ns` with `extra` options; waits until
    /// it serves.
    fn serve(&self, ns: &str, extra: &[&str]) -> Proc {
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
    fn attach(&self, nobody: bool, args: &[&str], out: &Path) -> Proc {
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
fn live(e: &str) -> Vec<Insn> {
    let opts = expr::Options {
        snaplen: expr::DEFAULT_SNAPLEN,
        live: true,
    };
    expr::compile_with(e, &opts).unwrap()
}

/// Untagged frames of the built-in workload for `tenants` tenants.
fn frames(count: usize, tenants: usize) -> Vec<Vec<u8>> {
    workload::traffic(count, tenants, 7)
        .into_iter()
        .map(|f| f.data)
        .filter(|d| d.len() >= 14 && !matches!(u16::from_be_bytes([d[12], d[13]]), 0x8100 | 0x88a8))
        .collect()
}

/// One kernel socket per program on `vb`, opened now.
fn kernel_sockets(programs: &[Vec<Insn>]) -> Vec<PacketSocket> {
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
fn send(frames: &[Vec<u8>]) {
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
fn drain(s: &PacketSocket, snaplen: Option<u32>) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 1 << 17];
    let mut out = Vec::new();
    while let Some(r) = s.try_recv(&mut buf).unwrap() {
        let n = r.copied.min(snaplen.map_or(usize::MAX, |s| s as usize));
        out.push(buf[..n].to_vec());
    }
    out
}

/// One tenant of a test: how it attaches, what its kernel socket runs.
struct Tenant {
    name: String,
    nobody: bool,
    args: Vec<String>,
    program: Vec<Insn>,
    snaplen: Option<u32>,
}

/// `n` tenants: programs of the built-in `mixed` family given as
/// `--program` files, every fifth an expression; every seventh with
/// `--snaplen 64`; odd ones as uid 65534.
fn tenants(place: &Place, n: usize) -> Vec<Tenant> {
    let exprs = ["udp", "tcp port 80", "arp", "ip and not tcp", "tcp[13] & 2 != 0"];
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

fn attach_all(place: &Place, ts: &[Tenant]) -> Vec<(Proc, PathBuf)> {
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
fn end_all(procs: Vec<(Proc, PathBuf)>) -> Vec<Vec<Vec<u8>>> {
    for (p, _) in &procs {
        p.signal("-INT");
    }
    procs
        .into_iter()
        .map(|(p, out)| {
            let (code, err) = p.finish();
            assert_eq!(code, 0, "attach exit; stderr {err:?}");
            assert!(err.iter().any(|l| l.contains("dropped by its queue")), "{err:?}");
            pcap_frames(&out)
        })
        .collect()
}

fn in_ns<T: Send + 'static>(ns: &NetNs, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = ns.path();
    std::thread::spawn(move || {
        enter_netns(&path).unwrap();
        f()
    })
    .join()
    .unwrap()
}

#[test]
#[ignore = "needs root, a network namespace and setpriv"]
fn a_hundred_clients_half_unprivileged_each_get_exactly_their_kernel_sockets_frames() {
    require_netns();
    let ns = NetNs::new("serve100");
    let place = Place::new("serve100");
    let policy = place.dir.join("policy.toml");
    std::fs::write(&policy, "[[allow]]\ngid = 65534\nmax_tenants = 64\n").unwrap();
    let daemon = place.serve(
        &ns.name,
        &["--group", NOBODY, "--user", "nobody", "--policy", policy.to_str().unwrap()],
    );
    // The daemon kept no privilege.
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon_pid(&daemon))).unwrap();
    assert!(status.lines().any(|l| l.starts_with("CapEff:\t0000000000000000")), "{status}");
    assert!(status.lines().any(|l| l.starts_with("Uid:\t65534\t")), "{status}");
    let ts = tenants(&place, 100);
    let clients = attach_all(&place, &ts);
    let programs: Vec<Vec<Insn>> = ts.iter().map(|t| t.program.clone()).collect();
    let snaplens: Vec<Option<u32>> = ts.iter().map(|t| t.snaplen).collect();
    let traffic = frames(20_000, 100);
    let kernel = in_ns(&ns, move || {
        let socks = kernel_sockets(&programs);
        send(&traffic);
        std::thread::sleep(Duration::from_millis(500));
        socks.iter().zip(snaplens).map(|(s, n)| drain(s, n)).collect::<Vec<_>>()
    });
    let ours = end_all(clients);
    let mut delivered = 0;
    for ((t, k), o) in ts.iter().zip(&kernel).zip(&ours) {
        assert_eq!(o.len(), k.len(), "tenant {}: frames", t.name);
        assert!(o == k, "tenant {}: bytes differ", t.name);
        delivered += k.len();
    }
    assert!(delivered > 5_000, "the traffic reaches the tenants ({delivered})");
    daemon.signal("-TERM");
    let (code, err) = daemon.finish();
    assert_eq!(code, 0, "{err:?}");
}

/// The pid of the serve process (`ip netns exec` execs it in place).
fn daemon_pid(p: &Proc) -> u32 {
    p.child.id()
}

#[test]
#[ignore = "needs root, a network namespace and tshark"]
fn tshark_reading_pcap_over_ip_gets_its_tenants_kernel_frames() {
    require_netns();
    require(Command::new("tshark").arg("-v").output().is_err().then(|| "needs tshark".into()));
    let ns = NetNs::new("servetshark");
    let place = Place::new("servetshark");
    let e = "tcp or arp";
    let filters = place.dir.join("static.toml");
    std::fs::write(
        &filters,
        format!("[[filter]]\nname = \"web\"\nexpr = \"{e}\"\nlisten = \"127.0.0.1:57012\"\n"),
    )
    .unwrap();
    let up = Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]).status().unwrap();
    assert!(up.success());
    let daemon = place.serve(&ns.name, &["--filters", filters.to_str().unwrap()]);
    let out = place.dir.join("tshark.pcap");
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &ns.name, "tshark", "-i", "TCP@127.0.0.1:57012", "-F", "pcap", "-w"])
        .arg(&out)
        .stdout(Stdio::null());
    let mut tshark = Proc::spawn(c);
    // tshark says so once it reads the stream.
    tshark.wait_for("Capturing on");
    std::thread::sleep(Duration::from_millis(500));
    let traffic = frames(5_000, 100);
    let program = live(e);
    let kernel = in_ns(&ns, move || {
        let socks = kernel_sockets(&[program]);
        send(&traffic);
        std::thread::sleep(Duration::from_millis(500));
        drain(&socks[0], None)
    });
    std::thread::sleep(Duration::from_millis(500));
    tshark.signal("-INT");
    let (code, err) = tshark.finish();
    assert_eq!(code, 0, "{err:?}");
    let got = pcap_frames(&out);
    assert!(kernel.len() > 500, "{}", kernel.len());
    assert_eq!(got.len(), kernel.len());
    assert!(got == kernel, "tshark's frames differ from the kernel socket's");
    daemon.signal("-TERM");
    assert_eq!(daemon.finish().0, 0);
}

/// Speaks the protocol by hand: hello, then `msg`; the daemon's answer.
fn raw_attach(sock: &Path, req: AttachRequest) -> DaemonMessage {
    let mut s = UnixStream::connect(sock).unwrap();
    let mut out = Vec::new();
    ClientMessage::Hello { version: proto::VERSION }.encode(&mut out);
    ClientMessage::Attach(req).encode(&mut out);
    s.write_all(&out).unwrap();
    let mut r = bpf_demux::serve::conn::MessageReader::new(s);
    assert!(matches!(r.next_daemon().unwrap(), DaemonMessage::Welcome { .. }));
    r.next_daemon().unwrap()
}

#[test]
#[ignore = "needs root, a network namespace and setpriv"]
fn refusals_name_the_rule_and_exit_2() {
    require_netns();
    let ns = NetNs::new("serverefuse");
    let place = Place::new("serverefuse");
    let policy = place.dir.join("policy.toml");
    std::fs::write(&policy, "[[allow]]\nuid = 65534\nmax_tenants = 1\nmax_snaplen = 128\n").unwrap();
    let daemon = place.serve(
        &ns.name,
        &["--group", NOBODY, "--policy", policy.to_str().unwrap()],
    );
    let out = place.dir.join("x.pcap");
    let run = |nobody: bool, args: &[&str]| -> (i32, Vec<String>) {
        place.attach(nobody, args, &out).finish()
    };
    // A uid outside the policy (it can reach the socket through its group).
    let mut c = Command::new("setpriv");
    c.args(["--reuid", "4242", "--regid", NOBODY, "--clear-groups"])
        .arg(&place.bin)
        .args(["attach", "--socket"])
        .arg(&place.sock)
        .arg("udp")
        .stdout(Stdio::null());
    let (code, err) = Proc::spawn(c).finish();
    assert_eq!(code, 2, "{err:?}");
    assert!(err.iter().any(|l| l.contains("uid 4242") && l.contains("may not attach")), "{err:?}");
    // Over the snaplen the policy allows.
    let (code, err) = run(true, &["--snaplen", "129", "udp"]);
    assert_eq!(code, 2);
    assert!(err.iter().any(|l| l.contains("snaplen 129 is over")), "{err:?}");
    // One tenant allowed: the second is over quota; the first keeps going.
    let mut first = place.attach(true, &["--name", "one", "udp"], &place.dir.join("one.pcap"));
    first.wait_for("attached one");
    let (code, err) = run(true, &["--name", "two", "udp"]);
    assert_eq!(code, 2);
    assert!(err.iter().any(|l| l.contains("the most its policy allows")), "{err:?}");
    // Name taken (root is always allowed).
    let (code, err) = run(false, &["--name", "one", "udp"]);
    assert_eq!(code, 2);
    assert!(err.iter().any(|l| l.contains("a tenant named `one` exists")), "{err:?}");
    // A bad expression (its column), a bad program file (its pc), both
    // refused by the client before it connects.
    let (code, err) = run(false, &["udp", "port", "70000"]);
    assert_eq!(code, 2);
    assert!(err.iter().any(|l| l.contains("expression: column")), "{err:?}");
    let bad = place.dir.join("bad.asm");
    std::fs::write(&bad, "ld #1\ndiv #0\nret a\n").unwrap();
    let (code, err) = run(false, &["--program", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.iter().any(|l| l.contains("pc 1") && l.contains("division")), "{err:?}");
    // The daemon refuses the same program sent without the client's check,
    // and a jump out of the program.
    for (insns, needle) in [
        (vec![Insn::new(0x00, 0, 0, 1), Insn::new(0x34, 0, 0, 0), Insn::new(0x16, 0, 0, 0)], "pc 1"),
        (vec![Insn::new(0x15, 5, 0, 0), Insn::new(0x06, 0, 0, 0)], "pc 0"),
    ] {
        let m = raw_attach(
            &place.sock,
            AttachRequest { name: "raw".into(), snaplen: None, queue_bytes: None, insns },
        );
        match m {
            DaemonMessage::Refused { code: RefuseCode::BadFilter, message } => {
                assert!(message.contains(needle), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
    first.signal("-INT");
    assert_eq!(first.finish().0, 0);
    daemon.signal("-TERM");
    assert_eq!(daemon.finish().0, 0);
}

#[test]
#[ignore = "needs root and a network namespace"]
fn a_flood_of_malformed_messages_closes_only_those_clients() {
    require_netns();
    let ns = NetNs::new("serveflood");
    let place = Place::new("serveflood");
    let daemon = place.serve(&ns.name, &[]);
    let ts = tenants(&place, 3);
    let ts: Vec<Tenant> = ts.into_iter().map(|t| Tenant { nobody: false, ..t }).collect();
    let clients = attach_all(&place, &ts);
    let threads = || thread_count(daemon_pid(&daemon));
    let before = threads();
    let sock = place.sock.clone();
    // Garbage of every kind, 400 connections, while traffic flows.
    let flood = std::thread::spawn(move || {
        let mut stalled = Vec::new();
        for i in 0..400u32 {
            let Ok(mut s) = UnixStream::connect(&sock) else { continue };
            let mut hello = Vec::new();
            ClientMessage::Hello { version: proto::VERSION }.encode(&mut hello);
            let junk: Vec<u8> = match i % 5 {
                0 => (0..200).map(|b| (b * 7 + i) as u8).collect(),
                1 => 0xffff_ffffu32.to_be_bytes().to_vec(),
                2 => [hello.clone(), vec![0, 0, 0, 3, 0x02, 1]].concat(),
                3 => [hello.clone(), vec![0, 0, 0, 1, 0x7e]].concat(),
                _ => vec![0, 0, 0, 9, 0x01, b'B'],
            };
            let _ = s.write_all(&junk);
            if i % 5 == 4 || i % 5 == 2 {
                stalled.push(s);
            }
        }
        // A stalled message is closed within the deadline (plus a tick).
        std::thread::sleep(Duration::from_secs(7));
        for mut s in stalled {
            let mut b = Vec::new();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = s.read_to_end(&mut b);
            let mut r = bpf_demux::serve::conn::MessageReader::new(&b[..]);
            let mut refused = false;
            while let Ok(m) = r.next_daemon() {
                refused |= matches!(m, DaemonMessage::Refused { code: RefuseCode::BadMessage, .. });
            }
            assert!(refused, "a stalled client is refused and closed");
        }
    });
    let programs: Vec<Vec<Insn>> = ts.iter().map(|t| t.program.clone()).collect();
    let snaplens: Vec<Option<u32>> = ts.iter().map(|t| t.snaplen).collect();
    let traffic = frames(10_000, 100);
    let kernel = in_ns(&ns, move || {
        let socks = kernel_sockets(&programs);
        send(&traffic);
        std::thread::sleep(Duration::from_millis(500));
        socks.iter().zip(snaplens).map(|(s, n)| drain(s, n)).collect::<Vec<_>>()
    });
    flood.join().unwrap();
    let ours = end_all(clients);
    for ((t, k), o) in ts.iter().zip(&kernel).zip(&ours) {
        assert!(o == k, "tenant {}: {} frames, kernel {}", t.name, o.len(), k.len());
    }
    // Every flood connection is gone: no thread left behind.
    std::thread::sleep(Duration::from_millis(800));
    assert!(threads() <= before, "threads {} > {before} before the flood", threads());
    daemon.signal("-TERM");
    assert_eq!(daemon.finish().0, 0);
}

fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().count()
}

#[test]
#[ignore = "needs root and a network namespace"]
fn sigkilled_clients_are_detached_and_nobody_else_notices() {
    require_netns();
    let ns = NetNs::new("servekill");
    let place = Place::new("servekill");
    let daemon = place.serve(&ns.name, &[]);
    let ts: Vec<Tenant> = tenants(&place, 10)
        .into_iter()
        .map(|t| Tenant { nobody: false, ..t })
        .collect();
    let mut clients = attach_all(&place, &ts);
    let traffic = frames(20_000, 100);
    let (first, second) = traffic.split_at(traffic.len() / 2);
    let (first, second) = (first.to_vec(), second.to_vec());
    let programs: Vec<Vec<Insn>> = ts.iter().map(|t| t.program.clone()).collect();
    let snaplens: Vec<Option<u32>> = ts.iter().map(|t| t.snaplen).collect();
    let nspath = ns.path();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (half_tx, half_rx) = std::sync::mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        enter_netns(&nspath).unwrap();
        let socks = kernel_sockets(&programs);
        send(&first);
        half_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        send(&second);
        std::thread::sleep(Duration::from_millis(500));
        socks.iter().zip(snaplens).map(|(s, n)| drain(s, n)).collect::<Vec<_>>()
    });
    half_rx.recv().unwrap();
    // Mid-stream: every other client killed.
    let killed: Vec<(Proc, PathBuf)> = (0..5).map(|i| clients.remove(i)).collect();
    for (p, _) in killed {
        p.signal("-KILL");
        let (code, _) = p.finish();
        assert_eq!(code, -1);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while listing_names(&place.sock).len() != 5 {
        assert!(Instant::now() < deadline, "killed clients still listed: {:?}", listing_names(&place.sock));
        std::thread::sleep(Duration::from_millis(20));
    }
    go_tx.send(()).unwrap();
    let kernel = sender.join().unwrap();
    let survivors: Vec<usize> = (0..10).filter(|i| i % 2 == 1).collect();
    let ours = end_all(clients);
    for (k, o) in survivors.iter().zip(&ours) {
        assert!(o == &kernel[*k], "tenant t{k}: {} frames, kernel {}", o.len(), kernel[*k].len());
    }
    daemon.signal("-TERM");
    assert_eq!(daemon.finish().0, 0);
}

/// Tenant names in the daemon's listing (as root).
fn listing_names(sock: &Path) -> Vec<String> {
    let o = Command::new(env!("CARGO_BIN_EXE_bpf-demux"))
        .args(["tenants", "--format", "json", "--socket"])
        .arg(sock)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: proto::TenantsReport = serde_json::from_slice(&o.stdout).unwrap();
    r.tenants.into_iter().map(|t| t.name).collect()
}

#[test]
#[ignore = "needs root, a network namespace and tcpdump"]
fn sigterm_to_the_daemon_ends_every_stream_readable_to_its_last_frame() {
    require_netns();
    require_tcpdump();
    let ns = NetNs::new("serveterm");
    let place = Place::new("serveterm");
    let daemon = place.serve(&ns.name, &[]);
    let ts: Vec<Tenant> = tenants(&place, 8)
        .into_iter()
        .map(|t| Tenant { nobody: false, ..t })
        .collect();
    let clients = attach_all(&place, &ts);
    let programs: Vec<Vec<Insn>> = ts.iter().map(|t| t.program.clone()).collect();
    let snaplens: Vec<Option<u32>> = ts.iter().map(|t| t.snaplen).collect();
    let traffic = frames(10_000, 100);
    let kernel = in_ns(&ns, move || {
        let socks = kernel_sockets(&programs);
        send(&traffic);
        std::thread::sleep(Duration::from_millis(300));
        socks.iter().zip(snaplens).map(|(s, n)| drain(s, n)).collect::<Vec<_>>()
    });
    daemon.signal("-TERM");
    let (code, err) = daemon.finish();
    assert_eq!(code, 0, "{err:?}");
    for ((p, out), k) in clients.into_iter().zip(&kernel) {
        let (code, err) = p.finish();
        assert_eq!(code, 0, "{err:?}");
        // tcpdump reads it to its last frame: what it writes back out is
        // the kernel socket's frames.
        let copy = out.with_extension("tcpdump.pcap");
        let o = Command::new("tcpdump").arg("-r").arg(&out).arg("-w").arg(&copy).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let read = pcap_frames(&copy);
        assert_eq!(read.len(), k.len(), "{}: frames tcpdump read", out.display());
        assert!(&read == k);
    }
    assert!(!place.sock.exists(), "the socket is removed at exit");
}

#[test]
#[ignore = "needs root and a network namespace"]
fn the_daemons_own_stream_never_feeds_a_tenant_on_the_same_interface() {
    require_netns();
    let ns = NetNs::new("servelo");
    let place = Place::new("servelo");
    let up = Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]).status().unwrap();
    assert!(up.success());
    let filters = place.dir.join("static.toml");
    std::fs::write(&filters, "[[filter]]\nname = \"all-tcp\"\nexpr = \"tcp\"\nlisten = \"127.0.0.1:57013\"\n").unwrap();
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &ns.name])
        .arg(&place.bin)
        .args(["serve", "-i", "lo", "--filters", filters.to_str().unwrap(), "--socket"])
        .arg(&place.sock)
        .stdout(Stdio::null());
    let mut daemon = Proc::spawn(c);
    daemon.wait_for("serving lo");
    // A stream client on loopback, and some TCP of our own to another port
    // (which the tenant must get).
    let got = in_ns(&ns, || {
        let mut reader = std::net::TcpStream::connect("127.0.0.1:57013").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let l = std::net::TcpListener::bind("127.0.0.1:57099").unwrap();
        let mut a = std::net::TcpStream::connect("127.0.0.1:57099").unwrap();
        let (mut b, _) = l.accept().unwrap();
        a.write_all(b"ping").unwrap();
        let mut four = [0u8; 4];
        b.read_exact(&mut four).unwrap();
        drop((a, b));
        std::thread::sleep(Duration::from_millis(1500));
        reader.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 65536];
        // Bounded: a stream that fed on itself would never go quiet.
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until && bytes.len() < 4 << 20 {
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
        bytes
    });
    let path = place.dir.join("stream.pcap");
    std::fs::write(&path, &got).unwrap();
    let frames = pcap_frames(&path);
    let port = |f: &Vec<u8>, at: usize| u16::from_be_bytes([f[at], f[at + 1]]);
    // Ethernet 14 + IPv4 20 (no options on loopback): TCP ports at 34, 36.
    assert!(frames.len() >= 6, "the 57099 exchange is there: {}", frames.len());
    for f in &frames {
        assert!(port(f, 34) != 57013 && port(f, 36) != 57013, "our own stream fed back");
        assert!(port(f, 34) == 57099 || port(f, 36) == 57099);
    }
    daemon.signal("-TERM");
    assert_eq!(daemon.finish().0, 0);
}

//! Live capture against the kernel itself (root; a private network
//! namespace with a veth pair; `#[ignore]`d, run with `--include-ignored`).
//!
//! `bpf-demux capture` runs on `vb` with up to 415 tenants (the 61 public
//! expressions, 300 generated mixed tenants, 54 kernel edge programs), next
//! to one kernel AF_PACKET socket per tenant with that tenant's filter
//! attached: with all 415 (which leave a kernel prefilter nothing to
//! reject: none is attached), with `--workers 2`, and with a set a
//! prefilter works on (selective public expressions and 300 generated
//! tenants, generated traffic added) and the prefilter on the socket. Every corpus frame that fits the veth is sent from `va`. For
//! every tenant, the frames and their bytes in its pcap equal what its
//! kernel socket received (tags stripped on both sides:
//! `--no-vlan-reinsert`). Also: a slow consumer, and `--workers 2`.

mod common;

use bpf_demux::capture::sys::{enter_netns, if_index, PacketSocket};
use bpf_demux::capture::{LiveCapture, LiveConfig, Senders};
use bpf_demux::cbpf::text::parse_asm;
use bpf_demux::cbpf::Program;
use bpf_demux::spec;
use bpf_demux::FilterSet;
use bpf_demux::NamedProgram;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The tenants: the public expressions, 300 generated mixed tenants and
/// the kernel edge programs (415). Together they accept every corpus frame
/// (and some edge programs accept at their first instruction), which
/// leaves a kernel prefilter nothing to reject. With `prefilter`, the set
/// is one a prefilter can work on: the public expressions that accept less
/// than a fifth of the frames on their own (by the reference interpreter)
/// and 300 generated tenants of every family (`workload`), whose traffic is
/// sent too.
fn tenants(prefilter: bool) -> Vec<NamedProgram> {
    let public = spec::load_valid(&repo().join("tests/data/public.filters")).unwrap();
    if prefilter {
        let frames = frames_to_send(true);
        let mut v: Vec<NamedProgram> = public
            .into_iter()
            .filter(|p| {
                let hits = frames
                    .iter()
                    .filter(|f| {
                        let meta = bpf_demux::cbpf::FrameMeta::offline(f, f.len() as u32);
                        bpf_demux::cbpf::run(&p.program, f, &meta) != 0
                    })
                    .count();
                hits * 5 < frames.len()
            })
            .collect();
        v.extend(bpf_demux_testkit::workload::Family::Mixed.tenants(300));
        return v;
    }
    let mut v = public;
    v.extend(spec::load_valid(&repo().join("tests/data/tenants-mixed-300.filters")).unwrap());
    v.extend(spec::load_valid(&repo().join("tests/data/kernel-edge.toml")).unwrap());
    v
}

/// Frames to send: every corpus frame captured whole that fits the veth
/// (and, with `generated`, 3000 frames of the built-in traffic mix).
fn frames_to_send(generated: bool) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    if generated {
        v.extend(
            bpf_demux_testkit::workload::traffic(3000, 300, 5)
                .into_iter()
                .map(|f| f.data)
                .filter(|d| d.len() >= 14),
        );
    }
    for p in corpus_pcaps() {
        for (data, orig) in frames_of(&p) {
            if data.len() == orig as usize && (14..=65000).contains(&data.len()) {
                v.push(data);
            }
        }
    }
    v
}

fn write_plain_set(path: &Path, set: &[NamedProgram]) {
    let mut s = String::new();
    for p in set {
        s.push_str(&format!(
            "{}\t{}\n",
            p.name,
            bpf_demux::cbpf::text::write_ddd_line(p.program.insns())
        ));
    }
    std::fs::write(path, s).unwrap();
}

/// Each tenant's frames, by name.
type ByTenant = BTreeMap<String, Vec<Vec<u8>>>;

/// Runs `bpf-demux capture` in the namespace while the frames are sent,
/// then stops it with SIGTERM; returns each tenant's kernel-socket
/// deliveries and pcap frames.
fn capture_vs_kernel(
    tag: &str,
    workers: usize,
    prefilter: bool,
    flag: &str,
) -> (ByTenant, ByTenant, usize) {
    let ns = NetNs::new(tag);
    let set = tenants(prefilter);
    let dir = std::env::temp_dir().join(format!("bpf-demux-live-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let filters = dir.join("tenants.filters");
    write_plain_set(&filters, &set);
    let out_dir = dir.join("out");
    let frames = frames_to_send(prefilter);
    let sent = frames.len();
    let nspath = ns.path();
    let progs: Vec<(String, Program)> = set
        .iter()
        .map(|p| (p.name.clone(), p.program.clone()))
        .collect();
    // Kernel sockets first, so they see every frame.
    let (tx, rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        enter_netns(&nspath).unwrap();
        let vb = if_index("vb").unwrap();
        let va = if_index("va").unwrap();
        let mut socks = Vec::new();
        for (name, p) in &progs {
            let mut s = PacketSocket::open().unwrap();
            s.attach_filter(p.insns()).unwrap();
            s.set_rcvbuf(32 << 20).unwrap();
            s.bind(vb).unwrap();
            socks.push((name.clone(), s));
        }
        let mut txs = PacketSocket::open().unwrap();
        txs.bind(va).unwrap();
        tx.send(()).unwrap();
        go_rx.recv().unwrap();
        for (i, f) in frames.iter().enumerate() {
            txs.send(f).unwrap();
            if i % 200 == 199 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        let mut buf = vec![0u8; 1 << 17];
        let mut got = BTreeMap::new();
        for (name, s) in &socks {
            let mut v = Vec::new();
            while let Some(r) = s.try_recv(&mut buf).unwrap() {
                v.push(buf[..r.copied].to_vec());
            }
            got.insert(name.clone(), v);
        }
        got
    });
    rx.recv().unwrap();
    let bin = env!("CARGO_BIN_EXE_bpf-demux");
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            bin,
            "capture",
            "-i",
            "vb",
            "--no-vlan-reinsert",
            "--workers",
            &workers.to_string(),
            flag,
            "--filters",
        ])
        .arg(&filters)
        .arg("--out-dir")
        .arg(&out_dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    go_tx.send(()).unwrap();
    let kernel = sender.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SIGTERM: the capture must flush and complete its files.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "capture failed: {stderr}");
    assert!(stderr.contains("kernel: received"), "{stderr}");
    // The prefilter is attached (or not) as asked.
    let read: usize = stderr
        .split("frames read ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no frame count in: {stderr}"));
    if prefilter {
        assert!(stderr.contains("kernel prefilter of"), "{stderr}");
        // Frames no tenant accepts stayed in the kernel.
        assert!(
            read < sent,
            "the prefilter passed all {read} of {sent} frames"
        );
    } else {
        // Every frame reaches the ring (the 415 leave nothing to reject).
        assert!(stderr.contains("no kernel prefilter"), "{stderr}");
        assert!(read >= sent, "{read} frames read of {sent} sent");
    }
    let mut ours = BTreeMap::new();
    for p in &set {
        let f: PathBuf = out_dir.join(format!("{}.pcap", p.name));
        assert!(f.exists(), "{} missing; stderr: {stderr}", f.display());
        ours.insert(p.name.clone(), pcap_frames(&f));
    }
    let leftovers = std::fs::read_dir(&out_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".part")
        })
        .count();
    assert_eq!(leftovers, 0);
    let _ = std::fs::remove_dir_all(&dir);
    (kernel, ours, set.len())
}

/// Every tenant's pcap equals its kernel socket's frames, in order;
/// returns the deliveries counted.
fn assert_same_frames(
    kernel: &BTreeMap<String, Vec<Vec<u8>>>,
    ours: &BTreeMap<String, Vec<Vec<u8>>>,
) -> usize {
    let mut delivered = 0;
    for (name, k) in kernel {
        let o = &ours[name];
        assert_eq!(
            o.len(),
            k.len(),
            "{name}: capture wrote {} frames, its kernel socket got {}",
            o.len(),
            k.len()
        );
        assert!(o == k, "{name}: frame bytes differ");
        delivered += k.len();
    }
    delivered
}

#[test]
#[ignore = "needs root and a network namespace"]
fn capture_delivers_what_kernel_sockets_deliver() {
    require_netns();
    let (kernel, ours, n) = capture_vs_kernel("cap1", 1, false, "--queue=4096");
    assert!(n >= 300);
    let delivered = assert_same_frames(&kernel, &ours);
    assert!(delivered > 20_000, "too few deliveries: {delivered}");
}

#[test]
#[ignore = "needs root and a network namespace"]
fn prefiltered_capture_delivers_what_kernel_sockets_deliver() {
    require_netns();
    let (kernel, ours, n) = capture_vs_kernel("pf1", 1, true, "--queue=8192");
    assert!(n >= 300);
    let delivered = assert_same_frames(&kernel, &ours);
    assert!(delivered > 1_000, "too few deliveries: {delivered}");
}

#[test]
#[ignore = "needs root and a network namespace"]
fn fanout_with_two_workers_delivers_the_same_sets() {
    require_netns();
    let (kernel, ours, _) = capture_vs_kernel("fan2", 2, false, "--no-kernel-prefilter");
    for (name, k) in &kernel {
        let mut o = ours[name].clone();
        let mut k = k.clone();
        o.sort();
        k.sort();
        assert!(o == k, "{name}: {} vs {} frames", o.len(), k.len());
    }
}

#[test]
#[ignore = "needs root and a network namespace"]
fn a_slow_tenant_drops_and_nobody_waits() {
    require_netns();
    let ns = NetNs::new("slow");
    let accept_all = |name: &str| NamedProgram {
        name: name.into(),
        program: Program::validate(&parse_asm("ret #-1").unwrap()).unwrap(),
        snaplen: Some(64),
    };
    let set =
        FilterSet::new([accept_all("fast1"), accept_all("slow"), accept_all("fast2")]).unwrap();
    let mut tenants = bpf_demux::capture::TenantSpec::all(set.automaton(), 4096);
    tenants[1].queue = 8.into(); // "slow" never reads
    let (senders, endpoints) = Senders::new(tenants, false);
    let nspath = ns.path();
    let frames = crafted_frames(ns.vb_mac);
    let total = frames.len() * 10;
    let result = std::thread::spawn(move || {
        enter_netns(&nspath).unwrap();
        let live = LiveCapture::start(set, senders, &LiveConfig::new("vb")).unwrap();
        let mut eps = endpoints.into_iter();
        let (f1, slow, f2) = (
            eps.next().unwrap(),
            eps.next().unwrap(),
            eps.next().unwrap(),
        );
        let readers: Vec<_> = [f1, f2]
            .into_iter()
            .map(|ep| {
                std::thread::spawn(move || {
                    let mut n = 0;
                    let mut short = true;
                    for d in ep.iter() {
                        short &= d.bytes().len() <= 64;
                        n += 1;
                    }
                    (n, short, ep.stats())
                })
            })
            .collect();
        let mut tx = PacketSocket::open().unwrap();
        tx.bind(if_index("va").unwrap()).unwrap();
        for _ in 0..10 {
            for f in &frames {
                tx.send(f).unwrap();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(300));
        let totals = live.join().unwrap();
        let got: Vec<_> = readers.into_iter().map(|h| h.join().unwrap()).collect();
        (got, slow.stats(), totals)
    })
    .join()
    .unwrap();
    let (got, slow, totals) = result;
    assert_eq!(totals.frames as usize, total);
    for (n, short, stats) in got {
        assert_eq!(n, total, "a reading tenant lost frames");
        assert!(short, "snaplen cap of 64 not applied");
        assert_eq!(stats.drops, 0);
    }
    assert_eq!(slow.frames, 8, "the slow tenant's queue holds 8");
    assert_eq!(slow.drops as usize, total - 8);
}

/// `max_frames` (`bpf-demux capture --count`) stops after that many frames
/// accepted by some tenant: exactly that many are delivered, the capture
/// ends by itself, and with the prefilter on, frames no tenant accepts
/// (here: everything but IPv4) never reach the ring.
#[test]
#[ignore = "needs root and a network namespace"]
fn count_stops_after_that_many_matched_frames() {
    require_netns();
    let ns = NetNs::new("count");
    let ipv4 = |name: &str| NamedProgram {
        name: name.into(),
        program: Program::validate(
            &parse_asm("ldh [12]\njneq #0x800, drop\nret #-1\ndrop: ret #0").unwrap(),
        )
        .unwrap(),
        snaplen: None,
    };
    let set = FilterSet::new([ipv4("a"), ipv4("b")]).unwrap();
    let (senders, endpoints) = Senders::new(
        bpf_demux::capture::TenantSpec::all(set.automaton(), 4096),
        false,
    );
    let nspath = ns.path();
    let frames = crafted_frames(ns.vb_mac);
    let meta_of = |f: &Vec<u8>| bpf_demux::cbpf::FrameMeta::offline(f, f.len() as u32);
    let ipv4_sent = frames
        .iter()
        .filter(|f| bpf_demux::cbpf::run(&ipv4("x").program, f, &meta_of(f)) != 0)
        .count()
        * 10;
    assert!(ipv4_sent > 7 && ipv4_sent < frames.len() * 10);
    let (stopped, totals, got) = std::thread::spawn(move || {
        enter_netns(&nspath).unwrap();
        let mut cfg = LiveConfig::new("vb");
        cfg.max_frames = Some(7);
        let live = LiveCapture::start(set, senders, &cfg).unwrap();
        assert!(live.prefilter_len().is_some());
        let mut tx = PacketSocket::open().unwrap();
        tx.bind(if_index("va").unwrap()).unwrap();
        for _ in 0..10 {
            for f in &frames {
                tx.send(f).unwrap();
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !live.is_stopped() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let stopped = live.is_stopped();
        let totals = live.join().unwrap();
        let got: Vec<usize> = endpoints.iter().map(|e| e.iter().count()).collect();
        (stopped, totals, got)
    })
    .join()
    .unwrap();
    assert!(stopped, "the capture did not stop by itself");
    assert_eq!(totals.matched, 7);
    assert_eq!(got, vec![7, 7], "each tenant gets the 7 frames");
    // Every frame that reached the ring was one a tenant accepts.
    assert_eq!(totals.frames, 7, "non-IPv4 frames reached the ring");
}

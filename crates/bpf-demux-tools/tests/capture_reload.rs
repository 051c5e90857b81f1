//! `bpf-demux capture` while it runs, with the kernel as the oracle (root;
//! a private network namespace with a veth pair): SIGHUP reloads with
//! added, removed and changed tenants and a bad file in between, compared
//! with kernel sockets opened and closed at the same moments; the
//! interface going away; loopback seen once; `-Q in|out`.

mod common;

use bpf_demux::capture::sys::{enter_netns, if_index, PacketSocket};
use bpf_demux::cbpf::Program;
use bpf_demux::expr;
use common::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// `bpf-demux capture` in the namespace, and its stderr line by line.
fn capture(ns: &str, args: &[&str]) -> (Child, Receiver<String>) {
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            env!("CARGO_BIN_EXE_bpf-demux"),
            "capture",
        ])
        .args(args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits for a stderr line containing `needle`; returns it.
fn wait_for(rx: &Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return l,
            Ok(l) => seen.push(l),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                panic!("no line with `{needle}` on stderr; saw {seen:?}")
            }
        }
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// The program bpf-demux compiles for `e` on a live socket.
fn live_program(e: &str, snaplen: Option<u32>) -> Program {
    let opts = expr::Options {
        snaplen: snaplen.unwrap_or(expr::DEFAULT_SNAPLEN),
        live: true,
        ..expr::Options::default()
    };
    Program::validate(&expr::compile_with(e, &opts).unwrap()).unwrap()
}

/// Frames that fit the veth: the hand-made ones (VLAN-tagged ones among
/// them) and corpus frames.
fn frames(vb_mac: [u8; 6]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = crafted_frames(vb_mac)
        .into_iter()
        .filter(|f| f.len() >= 14)
        .collect();
    for p in corpus_pcaps() {
        for (d, o) in frames_of(&p).into_iter().take(25) {
            if d.len() == o as usize && (14..=9000).contains(&d.len()) {
                v.push(d);
            }
        }
    }
    v
}

/// A set file: (name, expression, snaplen) as TOML.
fn write_set(path: &Path, tenants: &[(&str, &str, Option<u32>)]) {
    let mut s = String::new();
    for (n, e, snap) in tenants {
        s.push_str(&format!("[[filter]]\nname = \"{n}\"\nexpr = \"{e}\"\n"));
        if let Some(k) = snap {
            s.push_str(&format!("snaplen = {k}\n"));
        }
    }
    std::fs::write(path, s).unwrap();
}

/// One kernel socket per tenant of a phase, opened before its frames are
/// sent and read after: what each tenant should get in that phase.
fn kernel_phase(
    vb: u32,
    tx: &PacketSocket,
    tenants: &[(&str, &str, Option<u32>)],
    frames: &[Vec<u8>],
) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut socks = Vec::new();
    for (n, e, snap) in tenants {
        let mut s = PacketSocket::open().unwrap();
        s.attach_filter(live_program(e, *snap).insns()).unwrap();
        s.set_rcvbuf(16 << 20).unwrap();
        s.bind(vb).unwrap();
        socks.push((n.to_string(), s));
    }
    for f in frames {
        tx.send(f).unwrap();
    }
    std::thread::sleep(Duration::from_millis(400));
    let mut buf = vec![0u8; 1 << 17];
    socks
        .into_iter()
        .map(|(n, s)| {
            let mut v = Vec::new();
            while let Some(r) = s.try_recv(&mut buf).unwrap() {
                v.push(buf[..r.copied].to_vec());
            }
            (n, v)
        })
        .collect()
}

#[test]
#[ignore = "needs root and a network namespace"]
fn sighup_applies_the_difference_and_a_bad_file_changes_nothing() {
    require_netns();
    let ns = NetNs::new("hup");
    let dir = tmpdir("hup");
    let (set, out) = (dir.join("tenants.toml"), dir.join("out"));
    let phase1: &[(&str, &str, Option<u32>)] = &[
        ("keep_ip", "ip", None),
        ("keep_arp", "arp", None),
        ("gone", "udp", None),
        ("changed", "tcp", None),
        // Compiled for the live socket (the tag is in metadata there), as
        // tcpdump compiles for the interface it opens.
        ("v100", "vlan 100", None),
    ];
    let phase2: &[(&str, &str, Option<u32>)] = &[
        ("keep_ip", "ip", None),
        ("keep_arp", "arp", None),
        ("changed", "tcp", Some(64)),
        ("fresh", "icmp or vlan", None),
        ("v100", "vlan 100", None),
    ];
    write_set(&set, phase1);
    let nspath = ns.path();
    let name = ns.name.clone();
    let frames = frames(ns.vb_mac);
    let (want, got, gone_early, status, stderr_lines) = std::thread::spawn(move || {
        enter_netns(&nspath).unwrap();
        let (va, vb) = (if_index("va").unwrap(), if_index("vb").unwrap());
        let mut tx = PacketSocket::open().unwrap();
        tx.bind(va).unwrap();
        let (child, rx) = capture(
            &name,
            &[
                "-i",
                "vb",
                "-f",
                set.to_str().unwrap(),
                "--out-dir",
                out.to_str().unwrap(),
                "--no-vlan-reinsert",
            ],
        );
        wait_for(&rx, "capturing on vb");
        let mut want: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
        let mut add = |m: BTreeMap<String, Vec<Vec<u8>>>| {
            for (n, v) in m {
                want.entry(n).or_default().extend(v);
            }
        };
        add(kernel_phase(vb, &tx, phase1, &frames));
        // SIGUSR1: the statistics, and the capture goes on.
        signal(&child, "-USR1");
        let stats = wait_for(&rx, "frames read");
        assert!(stats.contains("matched"), "{stats}");
        write_set(&set, phase2);
        signal(&child, "-HUP");
        let line = wait_for(&rx, "reloaded");
        assert!(line.ends_with("5 tenants (+1 -1 ~1)"), "{line}");
        // The removed tenant's file is finished at once.
        let deadline = Instant::now() + Duration::from_secs(3);
        while !out.join("gone.pcap").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let gone_early = out.join("gone.pcap").exists();
        add(kernel_phase(vb, &tx, phase2, &frames));
        std::fs::write(&set, "[[filter]]\nname = \"x\"\nexpr = \"tcp port\"\n").unwrap();
        signal(&child, "-HUP");
        let failed = wait_for(&rx, "reload failed");
        assert!(failed.contains("tenants.toml:3"), "{failed}");
        add(kernel_phase(vb, &tx, phase2, &frames));
        signal(&child, "-TERM");
        let status = child.wait_with_output().unwrap().status;
        let rest: Vec<String> = rx.iter().collect();
        let mut got = BTreeMap::new();
        for n in want.keys() {
            got.insert(n.clone(), pcap_frames(&out.join(format!("{n}.pcap"))));
        }
        (want, got, gone_early, status, rest)
    })
    .join()
    .unwrap();
    assert!(status.success(), "{status:?} {stderr_lines:?}");
    assert!(
        gone_early,
        "gone.pcap was not finished when its tenant went"
    );
    let mut total = 0;
    for (n, w) in &want {
        let g = &got[n];
        assert!(
            g == w,
            "{n}: capture wrote {} frames, kernel sockets got {}",
            g.len(),
            w.len()
        );
        total += w.len();
    }
    for n in ["gone", "fresh", "changed", "v100"] {
        assert!(!want[n].is_empty(), "{n} got nothing");
    }
    assert!(
        want["changed"].iter().any(|f| f.len() == 64),
        "the new snaplen was never used"
    );
    assert!(total > 200, "{total}");
    let left: Vec<_> = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// From a thread inside namespace `ns`: `capture -i vb` with the set at
/// `set` into `out`, once it is capturing, and 10 hand-made frames sent
/// from va.
fn capture_ten_frames(
    ns: &str,
    set: &Path,
    out: &Path,
    vb_mac: [u8; 6],
) -> (Child, Receiver<String>) {
    let mut tx = PacketSocket::open().unwrap();
    tx.bind(if_index("va").unwrap()).unwrap();
    let args = [
        "-i",
        "vb",
        "-f",
        set.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ];
    let (child, rx) = capture(ns, &args);
    wait_for(&rx, "capturing on vb");
    for f in crafted_frames(vb_mac).iter().take(10) {
        tx.send(f).unwrap();
    }
    (child, rx)
}

#[test]
#[ignore = "needs root and a network namespace"]
fn an_interface_that_goes_away_ends_the_capture_with_its_files() {
    require_netns();
    let ns = NetNs::new("gone");
    let dir = tmpdir("gone");
    let set = dir.join("t.toml");
    write_set(&set, &[("all", "ip or not ip", None)]);
    let out = dir.join("out");
    let nspath = ns.path();
    let name = ns.name.clone();
    let vb_mac = ns.vb_mac;
    let (status, lines) = std::thread::spawn(move || {
        enter_netns(&nspath).unwrap();
        let (child, rx) = capture_ten_frames(&name, &set, &out, vb_mac);
        std::thread::sleep(Duration::from_millis(300));
        let ok = Command::new("ip")
            .args(["link", "del", "va"])
            .status()
            .unwrap();
        assert!(ok.success());
        let out = child.wait_with_output().unwrap();
        (out.status, rx.iter().collect::<Vec<_>>())
    })
    .join()
    .unwrap();
    assert_eq!(status.code(), Some(1), "{status:?} {lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("interface vb went away")),
        "{lines:?}"
    );
    let frames = pcap_frames(&dir.join("out/all.pcap"));
    assert_eq!(frames.len(), 10, "frames written before the interface went");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs root and a network namespace"]
fn loopback_frames_are_seen_once_and_direction_selects() {
    require_netns();
    let ns = NetNs::new("dir");
    let dir = tmpdir("dir");
    let set = dir.join("t.toml");
    write_set(&set, &[("all", "ip or not ip", None)]);
    let nspath = ns.path();
    let name = ns.name.clone();
    let vb_mac = ns.vb_mac;
    let frames: Vec<Vec<u8>> = crafted_frames(vb_mac).into_iter().take(12).collect();
    let n = frames.len();
    let d = dir.clone();
    let lines = std::thread::spawn(move || {
        enter_netns(&nspath).unwrap();
        assert!(Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success());
        let (va, vb, lo) = (
            if_index("va").unwrap(),
            if_index("vb").unwrap(),
            if_index("lo").unwrap(),
        );
        let s = set.to_str().unwrap();
        let out = |k: &str| d.join(k).to_str().unwrap().to_owned();
        let runs = [
            capture(&name, &["-i", "lo", "-f", s, "--out-dir", &out("lo")]),
            capture(
                &name,
                &["-i", "vb", "-Q", "in", "-f", s, "--out-dir", &out("in")],
            ),
            capture(
                &name,
                &["-i", "vb", "-Q", "out", "-f", s, "--out-dir", &out("out")],
            ),
            capture(&name, &["-i", "vb", "-f", s, "--out-dir", &out("inout")]),
        ];
        for (_, rx) in &runs {
            wait_for(rx, "capturing on");
        }
        let mut from_va = PacketSocket::open().unwrap();
        from_va.bind(va).unwrap();
        let mut from_vb = PacketSocket::open().unwrap();
        from_vb.bind(vb).unwrap();
        let mut on_lo = PacketSocket::open().unwrap();
        on_lo.bind(lo).unwrap();
        for f in &frames {
            from_va.send(f).unwrap();
            on_lo.send(f).unwrap();
        }
        for f in frames.iter().take(5) {
            from_vb.send(f).unwrap();
        }
        std::thread::sleep(Duration::from_millis(400));
        let mut lines = Vec::new();
        for (child, rx) in runs {
            signal(&child, "-TERM");
            assert!(child.wait_with_output().unwrap().status.success());
            lines.extend(rx.iter());
        }
        lines
    })
    .join()
    .unwrap();
    let count = |k: &str| pcap_frames(&dir.join(k).join("all.pcap")).len();
    assert_eq!(count("lo"), n, "loopback: every frame once ({lines:?})");
    assert_eq!(count("in"), n, "-Q in: the frames vb received");
    assert_eq!(count("out"), 5, "-Q out: the frames vb sent");
    assert_eq!(count("inout"), n + 5, "both directions");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Written frames reach the (hidden) file within a second while the
/// capture runs; an ending signal other than SIGINT/SIGTERM (SIGQUIT,
/// SIGALRM) still finishes the files.
#[test]
#[ignore = "needs root and a network namespace"]
fn frames_reach_the_files_within_a_second_and_ending_signals_finish_them() {
    require_netns();
    for sig in ["-QUIT", "-ALRM", "-USR2"] {
        let ns = NetNs::new("quit");
        let dir = tmpdir("quit");
        let set = dir.join("t.toml");
        write_set(&set, &[("all", "ip or not ip", None)]);
        let out = dir.join("out");
        let nspath = ns.path();
        let name = ns.name.clone();
        let vb_mac = ns.vb_mac;
        let o = out.clone();
        let (status, early) = std::thread::spawn(move || {
            enter_netns(&nspath).unwrap();
            let (child, _rx) = capture_ten_frames(&name, &set, &o, vb_mac);
            std::thread::sleep(Duration::from_millis(1500));
            // Before the end: the frames are in the hidden file already.
            let part: Vec<PathBuf> = std::fs::read_dir(&o)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().ends_with(".part"))
                .collect();
            assert_eq!(part.len(), 1, "{part:?}");
            let early = pcap_frames(&part[0]).len();
            signal(&child, sig);
            (child.wait_with_output().unwrap().status, early)
        })
        .join()
        .unwrap();
        assert_eq!(early, 10, "{sig}: frames in the file before the end");
        assert!(status.success(), "{sig}: {status:?}");
        assert_eq!(pcap_frames(&out.join("all.pcap")).len(), 10, "{sig}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

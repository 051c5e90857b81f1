//! Live capture of the link types beside Ethernet, against tcpdump
//! capturing the same traffic in the same private namespace: the `any`
//! device (Linux cooked v2 frames from every interface, headers made as
//! libpcap makes them) and a tun (raw IP). tcpdump records everything;
//! each tenant's file must hold exactly the frames libpcap's filter keeps
//! from that recording (`tcpdump -r all.pcap -w - EXPR`), byte for byte,
//! cooked headers included.

mod common;

use bpf_demux::capture::sys::{enter_netns, if_index, PacketSocket};
use bpf_demux::link::LinkType;
use bpf_demux_testkit::tun::Tun;
use common::daemon::Proc;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, proto: u8) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 36, 0, 1, 0, 0, 64, proto, 0, 0];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[0, 16, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    p
}

fn ip6(next: u8) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0, 0, 8, next, 64];
    p.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    p.extend_from_slice(&[0, 53, 0, 53, 0, 8, 0, 0]);
    p
}

/// IP packets of several kinds.
fn packets() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for i in 0..6u8 {
        v.push(udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000 + i as u16, 53, 17));
        v.push(udp4([10, 0, 0, 3], [10, 0, 0, 1], 80, 2000 + i as u16, 6));
        v.push(udp4([10, 0, 0, 9], [10, 0, 0, 2], 0, 0, 1));
        v.push(ip6(17));
    }
    v
}

fn ether(dst: [u8; 6], t: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[2, 0, 0, 0, 0, 0x0a]);
    f.extend_from_slice(&t.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Runs `bpf-demux capture -i IFACE` and `tcpdump -i IFACE` in `ns` while
/// `send` runs there; then checks every tenant's file against libpcap's
/// filtering of tcpdump's recording. Returns the frames tcpdump recorded.
fn against_tcpdump(
    ns: &NetNs,
    iface: &str,
    link: LinkType,
    tenants: &[(&str, &str)],
    send: impl FnOnce() + Send + 'static,
) -> usize {
    let dir = tmpdir(&format!("live-{iface}"));
    let set: String = tenants
        .iter()
        .map(|(n, e)| format!("{n}\texpr: {e}\n"))
        .collect();
    std::fs::write(dir.join("set.filters"), set).unwrap();
    let both = start_both(ns, iface, link, &dir, &[]);
    in_ns(ns, send);
    stop_both(both);
    let all = dir.join("all.pcap");
    let recorded = frames_of(&all).len();
    assert!(recorded >= 20, "tcpdump recorded {recorded} frames");
    for (name, e) in tenants {
        let want = dir.join(format!("want-{name}.pcap"));
        let out = Command::new("tcpdump")
            .arg("-r")
            .arg(&all)
            .arg("-w")
            .arg(&want)
            .args(["--", e])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{e}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = dir.join(format!("out/{name}.pcap"));
        assert_eq!(
            bpf_demux::pcapfile::PcapReader::open(&got)
                .unwrap()
                .next_record()
                .unwrap()
                .map(|r| r.link)
                .unwrap_or(link),
            link
        );
        assert_eq!(frames_of(&got), frames_of(&want), "tenant `{name}` ({e})");
    }
    recorded
}

/// `bpf-demux capture -i IFACE -f DIR/set.filters --out-dir DIR/out
/// EXTRA` and `tcpdump -i IFACE -y LINK -w DIR/all.pcap` (a buffer large
/// enough to drop nothing), in `ns`, both capturing.
fn start_both(ns: &NetNs, iface: &str, link: LinkType, dir: &Path, extra: &[&str]) -> (Proc, Proc) {
    let bin = env!("CARGO_BIN_EXE_bpf-demux");
    let mut ours = Command::new("ip");
    ours.args(["netns", "exec", &ns.name, bin, "capture", "-i", iface, "-f"])
        .arg(dir.join("set.filters"))
        .arg("--out-dir")
        .arg(dir.join("out"))
        .args(extra);
    let mut ours = Proc::spawn(ours);
    ours.wait_for("capturing on");
    let mut theirs = Command::new("ip");
    theirs
        .args([
            "netns", "exec", &ns.name, "tcpdump", "-i", iface, "-B", "65536",
        ])
        .args([
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
            "-y",
            link.name(),
            "-w",
        ])
        .arg(dir.join("all.pcap"));
    let mut theirs = Proc::spawn(theirs);
    theirs.wait_for("listening on");
    (ours, theirs)
}

/// Stops tcpdump, then the capture (which must end cleanly).
fn stop_both((ours, theirs): (Proc, Proc)) {
    std::thread::sleep(Duration::from_millis(700));
    theirs.signal("-INT");
    let _ = theirs.finish();
    ours.signal("-TERM");
    let (code, err) = ours.finish();
    assert_eq!(code, 0, "{err:?}");
}

/// Runs `f` on a thread in `ns`.
fn in_ns(ns: &NetNs, f: impl FnOnce() + Send + 'static) {
    let p = ns.path();
    std::thread::spawn(move || {
        enter_netns(&p).unwrap();
        f();
    })
    .join()
    .unwrap();
}

fn require_tools() {
    require_netns();
    require_tcpdump();
}

#[test]
#[ignore = "needs root, a network namespace and tcpdump"]
fn capture_on_any_makes_libpcaps_cooked_frames() {
    require_tools();
    let ns = NetNs::new("any");
    let vb = {
        let p = ns.path();
        std::thread::spawn(move || {
            enter_netns(&p).unwrap();
            if_index("vb").unwrap()
        })
        .join()
        .unwrap()
    };
    let ifindex = format!("ifindex {vb}");
    let tenants = [
        ("udp", "udp"),
        ("tcp", "tcp port 80"),
        ("in", "inbound"),
        ("out", "outbound and ip"),
        ("vb", ifindex.as_str()),
        ("v6", "ip6"),
        ("arp", "arp"),
        ("host2", "host 10.0.0.2"),
        ("all", "len > 0"),
    ];
    let recorded = against_tcpdump(&ns, "any", LinkType::LinuxSll2, &tenants, || {
        let va = if_index("va").unwrap();
        let mut s = PacketSocket::open().unwrap();
        s.bind(va).unwrap();
        for p in packets() {
            let t = if p[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
            s.send(&ether([2, 0, 0, 0, 0, 0x0b], t, &p)).unwrap();
            s.send(&ether([0xff; 6], t, &p)).unwrap();
        }
        let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 0x0a, 10, 0, 0, 1];
        arp.extend_from_slice(&[0; 6]);
        arp.extend_from_slice(&[10, 0, 0, 2]);
        s.send(&ether([0xff; 6], 0x0806, &arp)).unwrap();
    });
    // Each frame twice: leaving va, arriving on vb.
    assert!(recorded >= 2 * 2 * packets().len(), "{recorded}");
}

#[test]
#[ignore = "needs root, a network namespace and tcpdump"]
fn capture_on_a_tun_writes_raw_ip() {
    require_tools();
    let ns = NetNs::new("tun");
    let nspath = ns.path();
    // The tun exists (and stays open) before either capture starts.
    let (tx, rx) = std::sync::mpsc::channel::<std::sync::mpsc::Sender<()>>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        enter_netns(&nspath).unwrap();
        let mut tun = Tun::open("tun0").unwrap();
        bpf_demux_testkit::netns::ip(&["link", "set", "tun0", "up"]).unwrap();
        ready_tx.send(()).unwrap();
        let done: std::sync::mpsc::Sender<()> = rx.recv().unwrap();
        for p in packets() {
            tun.send(&p).unwrap();
        }
        done.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(3));
    });
    ready_rx.recv().unwrap();
    let tenants = [
        ("udp", "udp"),
        ("tcp", "tcp"),
        ("icmp", "icmp"),
        ("v6", "ip6"),
        ("host2", "dst host 10.0.0.2"),
        ("all", "ip or ip6"),
    ];
    against_tcpdump(&ns, "tun0", LinkType::Raw, &tenants, move || {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        tx.send(done_tx).unwrap();
        done_rx.recv().unwrap();
    });
    holder.join().unwrap();
    let _ = Path::new("");
}

/// tcpdump's file habits live: `-s` caps every tenant, `-G` rotates each
/// tenant's file by the second under a `-w` strftime pattern, pcapng
/// files carry the tenant's name. Against tcpdump's recording of the same
/// frames (cut to 40 bytes).
#[test]
#[ignore = "needs root, a network namespace and tcpdump"]
fn capture_rotates_by_time_and_caps_as_tcpdump_does() {
    require_tools();
    let ns = NetNs::new("rot");
    let dir = tmpdir("live-rot");
    std::fs::write(
        dir.join("set.filters"),
        "udp\texpr: udp\nall\texpr: len > 0\n",
    )
    .unwrap();
    let both = start_both(
        &ns,
        "vb",
        LinkType::Ethernet,
        &dir,
        &[
            "-s",
            "40",
            "-G",
            "1",
            "-w",
            "%n-%s.pcapng",
            "--format",
            "pcapng",
        ],
    );
    in_ns(&ns, || {
        let mut s = PacketSocket::open().unwrap();
        s.bind(if_index("va").unwrap()).unwrap();
        for _ in 0..3 {
            for p in packets() {
                let t = if p[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
                s.send(&ether([2, 0, 0, 0, 0, 0x0b], t, &p)).unwrap();
            }
            std::thread::sleep(Duration::from_millis(1100));
        }
    });
    stop_both(both);
    let recorded = frames_of(&dir.join("all.pcap"));
    assert_eq!(recorded.len(), 3 * packets().len());
    for (tenant, keep) in [("udp", 17u8), ("all", 0)] {
        let mut files: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir.join("out"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter_map(|p| {
                let n = p.file_name()?.to_str()?.to_owned();
                let secs = n
                    .strip_prefix(&format!("{tenant}-"))?
                    .strip_suffix(".pcapng")?;
                Some((secs.parse().ok()?, p))
            })
            .collect();
        files.sort();
        assert!(files.len() >= 2, "{tenant}: {files:?}");
        let mut got = Vec::new();
        for (_, f) in &files {
            got.extend(frames_of(f));
        }
        let want: Vec<(Vec<u8>, u32)> = recorded
            .iter()
            .filter(|(d, _)| {
                let v6 = d[12..14] == [0x86, 0xdd];
                let proto = if v6 { d[14 + 6] } else { d[14 + 9] };
                keep == 0 || proto == keep
            })
            .map(|(d, o)| (d[..d.len().min(40)].to_vec(), *o))
            .collect();
        assert_eq!(got, want, "{tenant}");
    }
}

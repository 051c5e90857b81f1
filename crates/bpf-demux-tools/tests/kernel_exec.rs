//! The interpreter against the kernel itself (root; a private network
//! namespace). Every program of `tests/data/kernel-edge.toml` (54 edge
//! programs: shifts by X >= 32, X = 0 division, partial out-of-bounds
//! loads, negative NET/LL offsets, IND wrap, VLAN ancillary loads on tagged
//! frames, RET A, scratch memory) plus the public corpus filters is
//! attached with SO_ATTACH_FILTER to its own AF_PACKET socket on `vb`;
//! hand-made frames and corpus frames are sent from `va`. For every
//! (program, frame) the kernel's delivery (or not, and its length and bytes)
//! must equal the interpreter's answer on the frame the kernel saw.

mod common;

use bpf_demux::capture::sys::{enter_netns, if_index, PacketSocket};
use bpf_demux::cbpf::{self, Program};
use bpf_demux::spec;
use common::*;
use std::time::Duration;

#[test]
#[ignore = "needs root and a network namespace"]
fn kernel_delivers_what_the_interpreter_computes() {
    require_netns();
    let mut progs: Vec<(String, Program)> = Vec::new();
    for file in ["tests/data/kernel-edge.toml", "tests/data/public.filters"] {
        for p in spec::load_valid(&repo().join(file)).unwrap() {
            progs.push((p.name, p.program));
        }
    }
    assert!(progs.len() >= 54 + 61);
    let ns = NetNs::new("exec");
    let nspath = ns.path();
    let vb_mac = ns.vb_mac;
    // Frames: the hand-made ones, then corpus frames that fit the veth MTU.
    let mut frames = crafted_frames(vb_mac);
    for pcap in corpus_pcaps() {
        for (data, orig) in frames_of(&pcap).into_iter().take(40) {
            if data.len() == orig as usize && data.len() >= 14 && data.len() <= 65000 {
                frames.push(data);
            }
        }
    }
    let result = std::thread::spawn(move || {
        enter_netns(&nspath).unwrap();
        let va = if_index("va").unwrap();
        let vb = if_index("vb").unwrap();
        let mut socks = Vec::new();
        for (name, p) in &progs {
            let mut s = PacketSocket::open().unwrap();
            s.attach_filter(p.insns()).unwrap_or_else(|e| panic!("{name}: kernel refused: {e}"));
            s.set_rcvbuf(64 << 20).unwrap();
            s.bind(vb).unwrap();
            socks.push(s);
        }
        let mut tx = PacketSocket::open().unwrap();
        tx.bind(va).unwrap();
        // A socket with no filter sees every frame: it tells us what crossed.
        let mut all = PacketSocket::open().unwrap();
        all.set_rcvbuf(256 << 20).unwrap();
        all.bind(vb).unwrap();
        for f in &frames {
            tx.send(f).unwrap();
        }
        std::thread::sleep(Duration::from_millis(300));
        let mut buf = vec![0u8; 1 << 17];
        let mut crossed = 0;
        while all.try_recv(&mut buf).unwrap().is_some() {
            crossed += 1;
        }
        assert_eq!(crossed, frames.len(), "frames sent vs frames seen on vb (noise or loss)");
        let mut failures = Vec::new();
        let mut delivered_total = 0;
        for ((name, p), s) in progs.iter().zip(&socks) {
            let mut got = Vec::new();
            while let Some(r) = s.try_recv(&mut buf).unwrap() {
                got.push(buf[..r.copied].to_vec());
            }
            let mut want = Vec::new();
            for f in &frames {
                let (view, meta) = kernel_view(f, vb_mac, vb);
                let ret = cbpf::run(p, &view, &meta);
                if ret != 0 {
                    want.push(view[..(ret as usize).min(view.len())].to_vec());
                }
            }
            delivered_total += got.len();
            if got != want {
                let first = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
                failures.push(format!(
                    "{name}: kernel delivered {} frames, interpreter {}; first difference at delivery #{first}: kernel len {:?}, ours len {:?}",
                    got.len(),
                    want.len(),
                    got.get(first).map(Vec::len),
                    want.get(first).map(Vec::len)
                ));
            }
        }
        (failures, delivered_total, frames.len(), progs.len())
    })
    .join()
    .unwrap();
    let (failures, delivered, nframes, nprogs) = result;
    assert!(
        failures.is_empty(),
        "{} programs disagree with the kernel:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        delivered > 1000,
        "too few deliveries ({delivered}) to mean anything"
    );
    let _ = (nframes, nprogs);
}

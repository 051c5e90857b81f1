//! Helpers shared by the integration tests: corpus access, a private
//! network namespace with a veth pair, and the kernel's view of a frame.
#![allow(dead_code)]

pub mod daemon;
pub mod gen;
pub mod linkconv;
pub mod selective;

use bpf_demux::cbpf::meta::{pkttype, ARPHRD_ETHER, ETH_HLEN};
use bpf_demux::cbpf::FrameMeta;
use bpf_demux::pcapfile::PcapReader;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use bpf_demux_testkit::repo;

/// `tests/data/corpus/pcaps`, sorted.
pub fn corpus_pcaps() -> Vec<PathBuf> {
    let dir = repo().join("tests/data/corpus/pcaps");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the corpus is part of the repository)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    v.sort();
    v
}

/// The `bpf-demux` binary of this build, as a command to run.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bpf-demux"))
}

/// A fresh empty folder under the temp dir, for test `tag` of this process.
pub fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bpf-demux-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The captured bytes of every frame of a pcap.
pub fn pcap_frames(path: &Path) -> Vec<Vec<u8>> {
    frames_of(path).into_iter().map(|(d, _)| d).collect()
}

/// Every frame of a pcap: (captured bytes, original length).
pub fn frames_of(path: &Path) -> Vec<(Vec<u8>, u32)> {
    let mut r = PcapReader::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        out.push((rec.data.to_vec(), rec.orig_len));
    }
    out
}

/// Tests that need root, a network namespace or an outside tool are
/// `#[ignore = "why"]`: a plain `cargo test` reports them as ignored, and
/// `cargo test -- --include-ignored` (as `.ci/run` does, as root) runs them.
/// Once asked to run, a missing precondition is a failure, never a pass.
pub fn require(what: Option<String>) {
    if let Some(why) = what {
        panic!("this test cannot run here: {why}");
    }
}

/// Panics unless network-namespace tests can run (see [`require`]).
pub fn require_netns() {
    require(netns_unavailable());
}

/// Panics unless `tcpdump` (libpcap's compiler) is on the PATH.
pub fn require_tcpdump() {
    let ok = Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    require((!ok).then(|| "needs tcpdump (libpcap's compiler) on the PATH".to_string()));
}

/// Why kernel tests cannot run here, if they cannot.
pub fn netns_unavailable() -> Option<String> {
    // SAFETY-free check of the effective uid through the proc filesystem.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid0 = status
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !uid0 {
        return Some(
            "needs root (CAP_NET_ADMIN, CAP_NET_RAW) to create a network namespace".into(),
        );
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("needs iproute2 (`ip netns`)".into()),
    }
}

/// A private network namespace with a veth pair (panics if it cannot be made).
pub struct NetNs(pub bpf_demux_testkit::netns::NetNs);

impl NetNs {
    pub fn new(tag: &str) -> NetNs {
        NetNs(bpf_demux_testkit::netns::NetNs::new(tag).expect("create a network namespace"))
    }
}

impl std::ops::Deref for NetNs {
    type Target = bpf_demux_testkit::netns::NetNs;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// The frame and metadata a filter on `vb` sees when `frame` is sent from
/// `va`: the outer 802.1Q/802.1ad tag stripped into metadata (as
/// `skb_vlan_untag` does), LEN without it, protocol and packet type as
/// `eth_type_trans` sets them.
pub fn kernel_view(frame: &[u8], vb_mac: [u8; 6], ifindex: u32) -> (Vec<u8>, FrameMeta) {
    use bpf_demux::field::{at, ethernet, ethertype, vlan};
    const TAG: usize = ethernet::HEADER_LEN;
    let tpid = frame
        .get(ethernet::ETHERTYPE)
        .map(|b| u16::from_be_bytes([b[0], b[1]]));
    let (view, tag) = match tpid {
        Some(t @ (ethertype::VLAN | ethertype::QINQ)) if frame.len() >= TAG + vlan::HEADER_LEN => {
            // The tag's 4 bytes go; the inner EtherType takes its place.
            let mut v = frame[..ethernet::ETHERTYPE.start].to_vec();
            v.extend_from_slice(&frame[TAG + vlan::TCI.end..]);
            let tci = &frame[at(TAG, vlan::TCI)];
            (v, Some((t, u16::from_be_bytes([tci[0], tci[1]]))))
        }
        _ => (frame.to_vec(), None),
    };
    let mut meta = FrameMeta::offline(&view, view.len() as u32);
    let dst = &view[ethernet::DESTINATION];
    meta.pkttype = if dst == [0xff; 6] {
        pkttype::BROADCAST
    } else if dst[0] & 1 == 1 {
        pkttype::MULTICAST
    } else if dst == vb_mac {
        pkttype::HOST
    } else {
        pkttype::OTHERHOST
    };
    meta.ifindex = ifindex;
    meta.hatype = ARPHRD_ETHER;
    meta.net_off = ETH_HLEN;
    if let Some((tpid, tci)) = tag {
        meta.vlan_present = true;
        meta.vlan_tci = tci;
        meta.vlan_tpid = tpid;
    }
    (view, meta)
}

/// Hand-made frames around the edges the edge programs probe.
pub fn crafted_frames(vb_mac: [u8; 6]) -> Vec<Vec<u8>> {
    let src = [0x02, 0, 0, 0, 0, 0x0a];
    let eth = |dst: [u8; 6], types: &[u16]| {
        let mut f = dst.to_vec();
        f.extend_from_slice(&src);
        for t in types {
            f.extend_from_slice(&t.to_be_bytes());
        }
        f
    };
    let ipv4 = |proto: u8, ihl: u8, payload: usize| {
        use bpf_demux::field::{ip_proto, ipv4, l4, tcp};
        let len = 4 * ihl as usize;
        let mut h = vec![0u8; len];
        h[ipv4::VER_IHL] = 0x40 | ihl;
        h[ipv4::LENGTH].copy_from_slice(&((len + payload) as u16).to_be_bytes());
        h[ipv4::IDENT].copy_from_slice(&1u16.to_be_bytes());
        h[ipv4::TTL] = 64;
        h[ipv4::PROTOCOL] = proto;
        h[ipv4::SRC].copy_from_slice(&[10, 0, 0, 1]);
        h[ipv4::DST].copy_from_slice(&[10, 0, 0, 2]);
        h[ipv4::HEADER_LEN..].fill(1); // options
        let mut l4 = vec![0u8; payload];
        if payload >= l4::DST_PORT.end {
            l4[l4::SRC_PORT].copy_from_slice(&8080u16.to_be_bytes());
            l4[l4::DST_PORT].copy_from_slice(&80u16.to_be_bytes());
        }
        if proto == ip_proto::TCP && payload > tcp::FLAGS {
            l4[tcp::DATA_OFFSET] = 0x50;
            l4[tcp::FLAGS] = 0x02; // SYN
        }
        h.extend(l4);
        h
    };
    let bcast = [0xff; 6];
    let mcast = [0x01, 0x00, 0x5e, 0, 0, 5];
    let other = [0x02, 0, 0, 0, 0, 0x77];
    let mut v = Vec::new();
    let mut push = |mut f: Vec<u8>, body: Vec<u8>| {
        f.extend(body);
        v.push(f);
    };
    push(eth(vb_mac, &[0x0800]), ipv4(6, 5, 26)); // 60 bytes TCP
    push(eth(bcast, &[0x0800]), ipv4(17, 5, 28)); // 62 bytes UDP broadcast
    push(eth(mcast, &[0x0800]), ipv4(17, 5, 40));
    push(eth(other, &[0x0800]), ipv4(6, 6, 30)); // IHL 6
    push(eth(vb_mac, &[0x0800]), vec![]); // header only
    push(eth(vb_mac, &[0x0800]), vec![0x45]); // 15 bytes
    for extra in 38..=50 {
        push(eth(vb_mac, &[0x0800]), ipv4(6, 5, extra - 20)); // 52..64 bytes
    }
    push(
        eth(bcast, &[0x0806]),
        vec![
            0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 0xa, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2,
        ],
    );
    push(eth(vb_mac, &[0x8100, 0x0064, 0x0800]), ipv4(17, 5, 30)); // vlan 100
    push(
        eth(bcast, &[0x8100, 0x2005, 0x0806]),
        vec![0, 1, 8, 0, 6, 4, 0, 1, 9, 9, 9, 9, 9, 9, 10, 0, 0, 9],
    );
    push(
        eth(vb_mac, &[0x88a8, 0x00c8, 0x8100, 0x07d1, 0x0800]),
        ipv4(6, 5, 20),
    ); // QinQ
    push(
        eth(other, &[0x8100, 0xe00a, 0x86dd]),
        vec![0x60, 0, 0, 0, 0, 8, 17, 64],
    );
    push(eth(other, &[0x9100, 0x0010, 0x0800]), ipv4(17, 5, 10)); // 0x9100 is not stripped
    push(
        eth(vb_mac, &[0x0026]),
        vec![
            0xf0, 0xf0, 0x03, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
            20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,
        ],
    ); // 802.3 LLC
    push(
        eth(bcast, &[0x0030]),
        vec![
            0xff, 0xff, 0, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0,
        ],
    ); // raw IPX
    push(eth([0x33, 0x33, 0, 0, 0, 1], &[0x86dd]), {
        let mut b = vec![0x60, 0, 0, 0, 0, 16, 17, 255];
        b.extend([0u8; 32]);
        b.extend([0x02, 0x22, 0x02, 0x23, 0, 16, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
        b
    });
    push(eth(vb_mac, &[0x0800]), ipv4(6, 5, 1480)); // 1514 bytes
    push(eth(vb_mac, &[0x0800]), ipv4(17, 5, 8000)); // jumbo
    v
}

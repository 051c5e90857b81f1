//! The link-level keywords of pcap-filter(7) against libpcap: `llc` and
//! its subtypes, the OSI protocols and IS-IS PDU classes, DECnet hosts,
//! AppleTalk, IPX, NetBEUI, the DEC protocols, `ether proto` by name and
//! by LLC SAP, bare `broadcast` and `multicast`, and their refusals. The
//! corpus holds few such frames, so frames are built here for every
//! encapsulation libpcap's code tells apart (802.2 with each SAP and
//! control field, SNAP with each OUI, raw 802.3, Ethernet II, DECnet long
//! and short headers with and without padding, IS-IS of every PDU type),
//! plain, VLAN-tagged and inside PPPoE; then rewritten into every link
//! type. Each expression gives every frame libpcap's answer on every link
//! type, or both refuse it.

mod common;

use bpf_demux::cbpf::{self, FrameMeta, Program};
use bpf_demux::expr;
use bpf_demux::link::LinkType;
use common::linkconv::*;
use common::*;

const DST: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x00];
const SRC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

/// An 802.3 frame (length field) with `payload`.
fn ieee802_3(payload: &[u8]) -> Vec<u8> {
    let mut f = DST.to_vec();
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.extend_from_slice(payload);
    f.resize(f.len().max(60), 0);
    f
}

/// An Ethernet II frame of `ethertype`.
fn ether(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = [0xff; 6].to_vec();
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f.resize(f.len().max(60), 0);
    f
}

/// DECnet addresses as they travel (little-endian area.node).
fn dn(area: u16, node: u16) -> [u8; 2] {
    ((area << 10) | node).to_le_bytes()
}

fn decnet_payloads() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let addrs = [dn(10, 20), dn(1, 2), dn(63, 1023), [5, 0]];
    for (i, d) in addrs.iter().enumerate() {
        let s = addrs[(i + 1) % addrs.len()];
        for pad in [false, true] {
            // Long header: flags, d-area, d-subarea, d-id (HIORD + addr),
            // s-area, s-subarea, s-id.
            let mut long = vec![0x06 | (0x20 * (i as u8 % 2))];
            long.extend_from_slice(&[0, 0, 0xaa, 0, 4, 0]);
            long.extend_from_slice(d);
            long.extend_from_slice(&[0, 0, 0xaa, 0, 4, 0]);
            long.extend_from_slice(&s);
            long.extend_from_slice(&[0, 0, 0]);
            // Short header: flags, dst, src.
            let mut short = vec![0x02 | (0x08 * (i as u8 % 2))];
            short.extend_from_slice(d);
            short.extend_from_slice(&s);
            short.push(0);
            for mut h in [long, short] {
                if pad {
                    h.insert(0, 0x81);
                }
                let mut p = (h.len() as u16).to_le_bytes().to_vec();
                p.extend_from_slice(&h);
                v.push(p);
            }
        }
    }
    // Flags that are neither form, and src == dst.
    v.push(vec![8, 0, 0x0a, 1, 2, 1, 2, 0, 0, 0]);
    let same = dn(10, 20);
    v.push(vec![6, 0, 0x02, same[0], same[1], same[0], same[1], 0]);
    v
}

/// The frames: every encapsulation, plain; VLAN-tagged; inside PPPoE.
fn frames() -> Vec<Vec<u8>> {
    let mut base = Vec::new();
    // 802.2 with each SAP pair and control field.
    let saps = [
        (0x42, 0x42),
        (0xfe, 0xfe),
        (0xf0, 0xf0),
        (0x06, 0x06),
        (0xe0, 0xe0),
        (0xfe, 0xfc),
        (0x06, 0x00),
        (0xf0, 0xf1),
        (0x04, 0x05),
    ];
    let controls = [
        0x00, 0x02, 0x01, 0x05, 0x09, 0x0d, 0x11, 0x03, 0x13, 0x63, 0x73, 0x43, 0x0f, 0x1f, 0x6f,
        0xe3, 0xf3, 0xaf, 0xbf, 0x87, 0xff,
    ];
    for (i, &(d, s)) in saps.iter().enumerate() {
        for (j, &c) in controls.iter().enumerate() {
            if (i + j) % 3 == 0 || d == 0xfe {
                base.push(ieee802_3(&[d, s, c, 0x81, 0, 0, 0, 0]));
            }
        }
    }
    // OSI over 802.2: each NLPID, and IS-IS of each PDU type.
    for nlpid in [0x81, 0x82, 0x83, 0x84, 0x8a] {
        base.push(ieee802_3(&[0xfe, 0xfe, 0x03, nlpid, 27, 1, 0, 0x11]));
    }
    for pdu in 14..=28u8 {
        base.push(ieee802_3(&[0xfe, 0xfe, 0x03, 0x83, 27, 1, 0, pdu, 1, 0]));
    }
    // SNAP with each OUI and type; raw 802.3 (Novell).
    for (oui, t) in [
        ([8, 0, 7], 0x809bu16),
        ([0, 0, 0], 0x80f3),
        ([0, 0, 0], 0x8137),
        ([8, 0, 7], 0x80f3),
        ([0, 0, 0], 0x809b),
        ([0, 0, 0], 0x0800),
    ] {
        let mut p = vec![0xaa, 0xaa, 0x03];
        p.extend_from_slice(&oui);
        p.extend_from_slice(&t.to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        base.push(ieee802_3(&p));
    }
    base.push(ieee802_3(&[0xff, 0xff, 0, 30, 0, 0x11]));
    // Ethernet II of each protocol, DECnet with real headers.
    for t in [
        0x809bu16, 0x80f3, 0x8137, 0x6001, 0x6002, 0x6004, 0x6007, 0x0600, 0x9000,
    ] {
        base.push(ether(t, &[0, 1, 2, 3, 4, 5, 6, 7]));
    }
    for p in decnet_payloads() {
        base.push(ether(0x6003, &p));
    }
    let mut all = base.clone();
    // VLAN-tagged: the tag before the type/length field.
    for f in &base {
        let mut g = f[..12].to_vec();
        g.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        g.extend_from_slice(&f[12..]);
        all.push(g);
    }
    // PPP inside PPPoE: OSI, DECnet, AppleTalk, IPX, bridging PDUs, XNS.
    for (proto, payload) in [
        (0x0023u16, vec![0x83, 27, 1, 0, 18, 1]),
        (0x0023, vec![0x82, 27, 1, 0, 18, 1]),
        (0x0027, decnet_payloads()[0].clone()),
        (0x0029, vec![0; 8]),
        (0x002b, vec![0xff, 0xff, 0, 30]),
        (0x0031, vec![0; 8]),
        (0x0025, vec![0; 8]),
    ] {
        let mut p = vec![0x11, 0x00, 0x00, 0x01];
        p.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        p.extend_from_slice(&proto.to_be_bytes());
        p.extend_from_slice(&payload);
        all.push(ether(0x8864, &p));
    }
    all
}

/// The protocol keywords libpcap has as primitives.
const PROTOS: &[&str] = &[
    "atalk", "aarp", "decnet", "sca", "lat", "mopdl", "moprc", "iso", "esis", "isis", "clnp", "l1",
    "l2", "iih", "lsp", "snp", "csnp", "psnp", "stp", "ipx", "netbeui",
];

fn expressions() -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for p in PROTOS {
        v.push(p.to_string());
        v.push(format!("not {p}"));
        v.push(format!("{p} or ip"));
        v.push(format!("vlan and {p}"));
        v.push(format!("pppoes and {p}"));
    }
    v.extend(
        [
            "es-is",
            "is-is",
            "broadcast",
            "multicast",
            "not broadcast and multicast",
        ]
        .map(String::from),
    );
    v.push("llc".into());
    for k in [
        "i", "s", "u", "rr", "rnr", "rej", "ui", "ua", "disc", "dm", "sabme", "test", "xid",
        "frmr", "XID", "Ui",
    ] {
        v.push(format!("llc {k}"));
    }
    v.push("vlan and llc u".into());
    v.push("llc s or llc i".into());
    for n in [
        "\\aarp",
        "\\arp",
        "\\atalk",
        "\\decnet",
        "\\ip",
        "\\ip6",
        "\\lat",
        "\\loopback",
        "\\mopdl",
        "\\moprc",
        "\\rarp",
        "\\sca",
        "\\iso",
        "\\stp",
        "\\ipx",
        "\\netbeui",
        "6",
        "0xf0",
        "0xfe",
        "0xe0",
        "0x42",
        "0x809b",
        "0x80f3",
        "0x8137",
        "0x6003",
        "0x600",
        "0x10",
        "0x4",
    ] {
        v.push(format!("ether proto {n}"));
    }
    for n in [
        "0x81", "0x82", "0x83", "0x84", "\\isis", "\\esis", "\\clnp", "\\es-is",
    ] {
        v.push(format!("iso proto {n}"));
    }
    for n in 14..=28 {
        v.push(format!("isis proto {n}"));
    }
    for a in ["10.20", "1.2", "63.1023", "5", "99.5000"] {
        for d in ["host", "src", "dst", "src and dst", "src or dst", "net"] {
            v.push(format!("decnet {d} {a}"));
        }
    }
    v.push("decnet src 10.20 and decnet dst 1.2".into());
    v.push("vlan and decnet host 1.2".into());
    v.push("pppoes and decnet host 10.20".into());
    for a in [
        "decnet[2] = 0x81",
        "decnet[2:2] & 0xff07 = 0x8106",
        "atalk[0] = 0",
        "lat[0] != 1",
        "sca[1] = 1",
        "moprc[0] = 0",
        "mopdl[3] > 2",
    ] {
        v.push(a.into());
    }
    // libpcap refuses these; so must we.
    for e in [
        "lat host 1.1",
        "iso host 1",
        "atalk host 1",
        "ipx host 1",
        "decnet host foo",
        "esis proto 1",
        "clnp proto 1",
        "stp proto 1",
        "decnet proto 3",
        "atalk proto 3",
        "lat proto 3",
        "llc foo",
        "llc 3",
        "decnet broadcast",
        "atalk multicast",
        "iso[0] = 1",
        "stp[0] = 1",
        "aarp[0] = 1",
        "decnet port 3",
        "isis proto \\isis",
        "ether proto stp",
        "iso proto isis",
        "mpls and iso",
        "mpls and decnet host 1.1",
        "decnet protochain 3",
    ] {
        v.push(e.into());
    }
    v
}

#[test]
#[ignore = "needs tcpdump (libpcap)"]
fn link_level_keywords_answer_as_libpcap_on_every_link_type() {
    require_tcpdump();
    let exprs = expressions();
    assert!(exprs.len() >= 240, "{} expressions", exprs.len());
    let exprs: Vec<&str> = exprs.iter().map(String::as_str).collect();
    let mut ethernet: Vec<(Vec<u8>, u32)> = frames()
        .into_iter()
        .map(|f| {
            let n = f.len() as u32;
            (f, n)
        })
        .collect();
    ethernet.extend(corpus_pcaps().iter().flat_map(|p| frames_of(p)));
    let mut failures = Vec::new();
    for link in LinkType::ALL {
        let frames = frames_for(link, &ethernet);
        let t = compare_on_link(link, None, &exprs, &frames, &mut failures);
        if link == LinkType::Ethernet {
            assert!(t.compared >= 200, "only {} compared", t.compared);
            assert!(t.refused >= 25, "only {} refused", t.refused);
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The frames built here exercise every keyword: on Ethernet each accepts
/// some frame and refuses some other (so a wrong test would show).
#[test]
fn each_keyword_has_frames_on_both_sides() {
    let frames: Vec<(Vec<u8>, FrameMeta)> = frames()
        .into_iter()
        .map(|f| {
            let m = FrameMeta::offline(&f, f.len() as u32);
            (f, m)
        })
        .collect();
    let mut words: Vec<String> = PROTOS.iter().map(|p| p.to_string()).collect();
    words.extend(
        [
            "i", "s", "u", "rr", "rnr", "rej", "ui", "ua", "disc", "dm", "sabme", "test", "xid",
            "frmr",
        ]
        .map(|k| format!("llc {k}")),
    );
    words.extend(["decnet src 10.20", "decnet dst 10.20", "iso proto 0x84"].map(String::from));
    for w in &words {
        let p = Program::validate(&expr::compile(w, 1).unwrap()).unwrap();
        let hits = frames
            .iter()
            .filter(|(f, m)| cbpf::run(&p, f, m) != 0)
            .count();
        assert!(
            hits > 0 && hits < frames.len(),
            "`{w}` accepts {hits} of {} frames",
            frames.len()
        );
    }
}

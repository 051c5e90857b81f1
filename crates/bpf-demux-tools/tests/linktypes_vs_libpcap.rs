//! Link types against libpcap. The corpus's Ethernet frames are rewritten
//! as each link type would have captured them (`tcpdump -i any` gives
//! Linux cooked v1/v2, a tun gives raw IP, BSD loopback NULL and LOOP);
//! for every expression of `public.txt` and a list across the grammar,
//! bpf-demux's program for the link type (`compile -y`) gives every frame
//! the same answer as libpcap's (`tcpdump -ddd -y`), both run by the
//! reference interpreter, and what libpcap refuses for a link type is
//! refused too. Then pcap files of each link type are written, read back
//! with their link type, and `bpf-demux match` on them equals each filter
//! alone on the converted frames.

mod common;

use bpf_demux::cbpf;
use bpf_demux::link::LinkType;
use bpf_demux::pcapfile::{PcapReader, PcapWriter};
use common::linkconv::*;
use common::*;

/// Expressions across the grammar, link-layer ones included (their
/// refusals are part of the comparison).
const EXTRA: &[&str] = &[
    "ip",
    "ip6",
    "arp",
    "rarp",
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "sctp",
    "igmp",
    "host 10.0.0.1",
    "src net 192.168.0.0/16",
    "dst host 10.1.1.1 or src host 10.2.2.2",
    "ip6 host 2001:db8::1",
    "ip6 net fe80::/10",
    "tcp port 80",
    "udp port 53 or udp port 5353",
    "portrange 1-1023",
    "tcp dst portrange 8000-8100",
    "ip proto 47",
    "ip6 proto 58",
    "proto 17",
    "ether proto 0x800",
    "ether proto 0x86dd",
    "ether proto \\arp",
    "ether[0] & 1 != 0",
    "link[0] = 0",
    "len > 100",
    "less 64",
    "greater 1000",
    "ip[0] & 0xf > 5",
    "ip[8] < 64",
    "tcp[13] & 2 != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "udp[8:2] = 0",
    "icmp[icmptype] = icmp-echo",
    "ip multicast",
    "ip6 multicast",
    "stp",
    "llc",
    "vlan",
    "vlan 100",
    "mpls",
    "pppoed",
    "pppoes",
    "pppoes 3 and ip",
    "pppoes or ip",
    "pppoes or ip6",
    "not pppoes and tcp",
    "ether host 00:11:22:33:44:55",
    "ether broadcast",
    "ether multicast",
    "geneve and ip",
    "not ip and not ip6",
    "ip and not tcp and not udp",
    "(tcp or udp) and not port 22",
    "inbound",
    "outbound",
    "inbound and tcp",
    "not outbound and ip6",
    "ifindex 2",
    "ifindex 1 or ifindex 3",
    "ifname eth0",
    "on eth0",
    // After `pppoes` the link layer is PPP's.
    "pppoes and vlan",
    "pppoes and llc",
    "pppoes and ether host 00:11:22:33:44:55",
    "pppoes and ether broadcast",
    "pppoes and ether multicast",
    "pppoes and mpls",
    "pppoes and inbound",
    "pppoes and ifindex 2",
];

#[test]
#[ignore = "needs tcpdump (libpcap)"]
fn each_link_type_answers_as_libpcap() {
    require_tcpdump();
    let public = std::fs::read_to_string(repo().join("tests/data/corpus/public.txt")).unwrap();
    let mut exprs: Vec<&str> = public
        .lines()
        .filter(|l| !l.contains("protochain") && !l.contains("ip broadcast"))
        .collect();
    exprs.extend_from_slice(EXTRA);
    let corpus: Vec<(Vec<u8>, u32)> = corpus_pcaps().iter().flat_map(|p| frames_of(p)).collect();
    let mut failures = Vec::new();
    let dir = tmpdir("linktypes-files");
    for link in LinkType::ALL {
        let frames = frames_for(link, &corpus);
        assert!(frames.len() > 300, "{link}: {} frames", frames.len());
        // As `tcpdump -d -y` compiles, and as `tcpdump -r` does for a file.
        let file = empty_pcap(&dir, link);
        compare_on_link(link, Some(&file), &exprs, &frames, &mut failures);
        let Tally {
            compared,
            refused: _,
            accepting,
        } = compare_on_link(link, None, &exprs, &frames, &mut failures);
        // (Raw IPv6 frames leave most IPv4 expressions nothing to match,
        // and libpcap refuses those.)
        assert!(compared >= 40, "{link}: only {compared} compared");
        assert!(accepting >= 25, "{link}: only {accepting} accept any frame");
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A pcap file of each link type reads back with it, and `bpf-demux match`
/// answers each frame as each filter alone, compiled for that link type.
#[test]
fn match_reads_every_link_type() {
    let dir = tmpdir("linktypes");
    let filters = dir.join("set.filters");
    std::fs::write(
        &filters,
        "tcp\texpr: tcp and not port 22\nudp\texpr: udp\nv6\texpr: ip6\nsmall\texpr: less 100\n",
    )
    .unwrap();
    let corpus: Vec<(Vec<u8>, u32)> = corpus_pcaps().iter().flat_map(|p| frames_of(p)).collect();
    for link in LinkType::ALL {
        let frames: Vec<(Vec<u8>, u32)> = corpus
            .iter()
            .enumerate()
            .filter_map(|(i, (d, o))| convert(link, d, *o, i))
            .collect();
        let pcap = dir.join(format!("{}.pcap", link.name()));
        let mut w =
            PcapWriter::with_link(std::fs::File::create(&pcap).unwrap(), 262144, link).unwrap();
        for (d, o) in &frames {
            w.write(0, 0, *o, d).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let mut r = PcapReader::open(&pcap).unwrap();
        let rec = r.next_record().unwrap().expect("a frame");
        assert_eq!(rec.link, link);
        // The oracle: each filter alone, compiled for the link type.
        let progs =
            bpf_demux::spec::load_valid_for(&filters, bpf_demux::spec::Target::Offline(link))
                .unwrap();
        let mut want = String::new();
        for (n, (d, o)) in frames.iter().enumerate() {
            let m = link.meta(d, *o);
            let mut hits: Vec<String> = progs
                .iter()
                .map(|p| (p.name.as_str(), cbpf::run(&p.program, d, &m)))
                .filter(|(_, v)| *v != 0)
                .map(|(name, v)| format!("{name}={v}"))
                .collect();
            hits.sort();
            want.push_str(&format!(
                "{}.pcap:{}\t{}\n",
                link.name(),
                n + 1,
                hits.join(" ")
            ));
        }
        let out = bin()
            .arg("match")
            .arg("--filters")
            .arg(&filters)
            .arg(&pcap)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{link}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = String::from_utf8(out.stdout).unwrap();
        assert_eq!(got, want, "{link}");
        let hits = got
            .lines()
            .filter(|l| l.contains("tcp=") || l.contains("udp="))
            .count();
        assert!(
            hits >= 50,
            "{link}: only {hits} frames matched `tcp` or `udp`"
        );
        // `split` writes per-tenant files of the input's link type, each
        // with the frames `match` gave that tenant.
        let out_dir = dir.join(format!("split-{}", link.name()));
        let out = bin()
            .arg("split")
            .arg("--filters")
            .arg(&filters)
            .arg("--out-dir")
            .arg(&out_dir)
            .arg(&pcap)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{link}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for name in ["tcp", "udp", "v6", "small"] {
            let mut r = PcapReader::open(&out_dir.join(format!("{name}.pcap"))).unwrap();
            let mut n = 0;
            while let Some(rec) = r.next_record().unwrap() {
                assert_eq!(rec.link, link, "{name}.pcap");
                n += 1;
            }
            let want = got
                .lines()
                .filter(|l| {
                    l.split('\t')
                        .nth(1)
                        .unwrap()
                        .split(' ')
                        .any(|m| m.starts_with(&format!("{name}=")))
                })
                .count();
            assert_eq!(n, want, "{link}: {name}.pcap");
        }
    }
}

//! `protochain` against libpcap: its program loops (a backward jump the
//! kernel and our validator refuse), so its answers come from libpcap's
//! own `bpf_filter()` running the loop; ours are the unrolled programs
//! (inline walks, and shared ones for several `protochain`s of an IP
//! version) in the reference interpreter.

mod common;

use bpf_demux::cbpf::{text, Program};
use bpf_demux::expr;
use common::*;
use std::process::Command;

/// `protochain`: libpcap's program loops (a backward jump the kernel and
/// our validator refuse), so its answers come from libpcap's own
/// `bpf_filter()` (tests/oracle/libpcap_match.c, which runs the loop);
/// ours is the unrolled program in the reference interpreter.
#[test]
#[ignore = "needs tcpdump, cc and libpcap-dev"]
fn protochain_answers_equal_libpcaps_loop() {
    require_tcpdump();
    let tmp = std::env::temp_dir().join(format!("bpf-demux-protochain-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let oracle = tmp.join("libpcap_match");
    let built = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&oracle)
        .arg(repo().join("tests/oracle/libpcap_match.c"))
        .arg("-lpcap")
        .output();
    require(
        (!matches!(&built, Ok(o) if o.status.success()))
            .then(|| format!("cannot build libpcap_match.c with cc -lpcap: {built:?}")),
    );
    let exprs = [
        "ip6 protochain 6",
        "ip6 protochain 44",
        "ip protochain 17",
        "ip6 protochain 17",
        "ip6 protochain 58",
        "ip6 protochain 51",
        "ip6 protochain 0",
        "ip6 protochain 43",
        "ip6 protochain 60",
        "ip6 protochain 103",
        "protochain 6",
        "protochain 17",
        "ip protochain 51",
        "ip protochain 2",
        "ip6 protochain \\udp",
        "not ip6 protochain 44",
        "ip6 protochain 89 or udp",
        "vlan and ip6 protochain 58",
        // Boolean combinations: one shared walk per version.
        "ip6 protochain 51 or ip6 protochain 89",
        "ip6 protochain 17 and ip6 protochain 44",
        "ip6 protochain 0 and not ip6 protochain 43",
        "(ip6 protochain 60 or tcp) and ip6 protochain 17",
        "protochain 6 or protochain 17",
        "ip6 protochain 59 or ip protochain 51",
        "not ip6 protochain 0 or ip6 protochain 44 and ip6 protochain 43",
        "less 100 or ip6 protochain 17",
        "ip6 protochain 17 or less 100",
        "ip6 protochain 51 and not ip6 protochain 0 or ip6 protochain 44 and protochain 17",
        // Every IPv6 extension header, and IPv4 walks shared too (inline
        // ones would not fit).
        "ip6 protochain 0 or ip6 protochain 43 or ip6 protochain 44 or ip6 protochain 51 \
         or ip6 protochain 60 or ip6 protochain 6 or ip6 protochain 17 or ip protochain 51 \
         or ip protochain 6",
        "ip protochain 51 and not ip protochain 6 or ip protochain 17",
        "ip6 protochain 0 or ip6 protochain 43 or ip6 protochain 44 or ip6 protochain 51 \
         or ip6 protochain 60 or ip protochain 51 or ip protochain 6 or ip protochain 17 \
         or ip protochain 1 or ip protochain 2",
    ];
    // Frames cut inside their header chains, at every length: libpcap's
    // walk stops the program where it reads past the end. `short.pcap`:
    // packets that short (as a socket filter sees any packet: whole);
    // `snap.pcap`: the same cut by a snaplen (the wire length kept).
    let mut n_cut = 0;
    for (file, whole) in [("short.pcap", true), ("snap.pcap", false)] {
        let mut w = bpf_demux::pcapfile::PcapWriter::new(
            std::fs::File::create(tmp.join(file)).unwrap(),
            65535,
        )
        .unwrap();
        for name in [
            "ipv6_ext_headers.pcap",
            "ipv6-routing-header.pcap",
            "bigtcp-ipv6-hbh.pcap",
        ] {
            let (f, orig) = frames_of(&repo().join("tests/data/corpus/pcaps").join(name)).remove(0);
            for len in 10..f.len().min(900) {
                w.write(0, 0, if whole { len as u32 } else { orig }, &f[..len])
                    .unwrap();
                n_cut += 1;
            }
        }
        w.flush().unwrap();
    }
    let cut = [tmp.join("short.pcap"), tmp.join("snap.pcap")];
    // A snaplen cut inside the chain is exact for an expression with one
    // `protochain` per IP version (its walk is inline); a shared walk may
    // reject there (see expr::gen::protochain).
    let shared: Vec<String> = exprs
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e.matches("ip6 protochain").count() + e.matches(" protochain").count() > 2
                || e.matches("protochain").count() > 1
        })
        .map(|(i, _)| format!("p{i:02}="))
        .collect();
    let (mut theirs, mut ours) = (String::new(), String::new());
    for (i, e) in exprs.iter().enumerate() {
        // libpcap's program is refused by the validator (it loops): its raw text.
        let out = Command::new("tcpdump")
            .args(["-ddd", "-y", "EN10MB", "--", e])
            .output()
            .unwrap();
        assert!(out.status.success(), "{e}");
        let raw = text::parse_ddd(&String::from_utf8(out.stdout).unwrap()).unwrap();
        theirs.push_str(&format!("p{i:02}\t{}\n", text::write_ddd_line(&raw)));
        let mine =
            expr::compile(e, expr::DEFAULT_SNAPLEN).unwrap_or_else(|err| panic!("{e}: {err}"));
        Program::validate(&mine).unwrap_or_else(|err| panic!("{e}: {err}"));
        ours.push_str(&format!("p{i:02}\t{}\n", text::write_ddd_line(&mine)));
    }
    let (tf, of) = (tmp.join("theirs.filters"), tmp.join("ours.filters"));
    std::fs::write(&tf, theirs).unwrap();
    std::fs::write(&of, ours).unwrap();
    let want = Command::new(&oracle)
        .arg(&tf)
        .args(corpus_pcaps())
        .args(&cut)
        .output()
        .unwrap();
    assert!(want.status.success());
    let got = Command::new(env!("CARGO_BIN_EXE_bpf-demux"))
        .args(["match", "--engine", "independent", "-f"])
        .arg(&of)
        .args(corpus_pcaps())
        .args(&cut)
        .output()
        .unwrap();
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let (want, got) = (
        String::from_utf8(want.stdout).unwrap(),
        String::from_utf8(got.stdout).unwrap(),
    );
    for (w, g) in want.lines().zip(got.lines()) {
        if g.starts_with("snap.pcap:") {
            let keep = |l: &str| -> String {
                l.split(['\t', ' '])
                    .filter(|m| !shared.iter().any(|p| m.starts_with(p.as_str())))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            assert_eq!(keep(g), keep(w));
        } else {
            assert_eq!(g, w);
        }
    }
    assert_eq!(got.lines().count(), 4438 + n_cut);
    // `ip6 protochain 17` (p03) accepts the cut frames that still hold the
    // UDP header's next-header field, and refuses the others.
    let cuts: Vec<&str> = got
        .lines()
        .filter(|l| l.starts_with("short.pcap:"))
        .collect();
    assert!(
        cuts.iter().any(|l| l.contains("p03=")),
        "no cut frame accepted"
    );
    assert!(
        cuts.iter().any(|l| !l.contains("p03=")),
        "every cut frame accepted"
    );
    // The 100-header chain of ipv6_ext_headers.pcap frame 1 is walked to its end.
    // (`ip6 protochain 17`, p03, finds the UDP header after all of them.)
    let line = got
        .lines()
        .find(|l| l.starts_with("ipv6_ext_headers.pcap:1\t"))
        .unwrap();
    assert!(
        line.contains("p01=262144") && line.contains("p03=262144"),
        "{line}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

//! What the per-tenant files look like: pcapng (`--format pcapng`: one
//! interface block per input, the tenant in the section comment) read back
//! by pcap-parser and by Wireshark's capinfos/tshark; tcpdump's `-C`
//! rotation, file for file and byte for byte against tcpdump's own.

mod common;

use bpf_demux::link::LinkType;
use bpf_demux::pcapfile::{PcapReader, PcapWriter};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Frames of a file, with their stamps.
fn records(p: &Path) -> Vec<(u64, u32, u32, Vec<u8>, LinkType)> {
    let mut r = PcapReader::open(p).unwrap();
    let mut v = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        v.push((
            rec.ts_sec,
            rec.ts_nsec,
            rec.orig_len,
            rec.data.to_vec(),
            rec.link,
        ));
    }
    v
}

fn inputs() -> Vec<PathBuf> {
    [
        "mptcp-v0.pcap",
        "bgp-4byte-asn.pcap",
        "ipv6_ext_headers.pcap",
    ]
    .iter()
    .map(|n| repo().join("tests/data/corpus/pcaps").join(n))
    .collect()
}

const SET: &str = "tcp\texpr: tcp\nv6\texpr: ip6\nnone\texpr: udp port 9\n";

#[test]
fn pcapng_holds_the_frames_pcap_does() {
    let dir = tmpdir("pcapng");
    std::fs::write(dir.join("set.filters"), SET).unwrap();
    for (format, out) in [("pcap", "a"), ("pcapng", "b")] {
        run(bin()
            .args(["split", "-f"])
            .arg(dir.join("set.filters"))
            .args(["--format", format, "--out-dir"])
            .arg(dir.join(out))
            .args(inputs()));
    }
    for t in ["tcp", "v6", "none"] {
        let (a, b) = (
            records(&dir.join(format!("a/{t}.pcap"))),
            records(&dir.join(format!("b/{t}.pcapng"))),
        );
        assert_eq!(a, b, "{t}");
        if t != "none" {
            assert!(!a.is_empty(), "{t}");
        }
    }
    // One tenant to standard output, as pcapng.
    let out = bin()
        .args(["split", "-f"])
        .arg(dir.join("set.filters"))
        .args(["--format", "pcapng", "--tenant", "v6", "-w", "-"])
        .args(inputs())
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(dir.join("v6.pcapng"), &out.stdout).unwrap();
    assert_eq!(
        records(&dir.join("v6.pcapng")),
        records(&dir.join("a/v6.pcap"))
    );
}

#[test]
#[ignore = "needs tshark and capinfos (Wireshark)"]
fn wireshark_reads_the_pcapng_files() {
    let dir = tmpdir("pcapng-ws");
    std::fs::write(dir.join("set.filters"), SET).unwrap();
    run(bin()
        .args(["split", "-f"])
        .arg(dir.join("set.filters"))
        .args(["--format", "pcapng", "--out-dir"])
        .arg(dir.join("out"))
        .args(inputs()));
    let f = dir.join("out/tcp.pcapng");
    let info = run(Command::new("capinfos").arg("-k").arg("-I").arg(&f));
    assert!(info.contains("bpf-demux tenant tcp"), "{info}");
    assert!(info.contains("Number of interfaces in file: 3"), "{info}");
    for i in inputs() {
        assert!(info.contains(&i.display().to_string()), "{info}");
    }
    // Each frame on the interface of the input it came from, with the
    // stamps and lengths pcap-parser reads.
    let fields = run(Command::new("tshark").arg("-r").arg(&f).args([
        "-T",
        "fields",
        "-e",
        "frame.interface_id",
        "-e",
        "frame.len",
        "-e",
        "frame.cap_len",
    ]));
    let mut want = Vec::new();
    for (i, input) in inputs().iter().enumerate() {
        let set = bpf_demux::spec::load_valid(&dir.join("set.filters")).unwrap();
        let tcp = &set.iter().find(|p| p.name == "tcp").unwrap().program;
        for (d, o) in frames_of(input) {
            if bpf_demux::cbpf::run(tcp, &d, &bpf_demux::cbpf::FrameMeta::offline(&d, o)) != 0 {
                want.push(format!("{i}\t{o}\t{}", d.len()));
            }
        }
    }
    let got: Vec<&str> = fields.lines().collect();
    assert_eq!(got, want);
}

/// Corpus Ethernet frames, three times over (about 3.9 MB).
fn big_pcap(dir: &Path) -> PathBuf {
    let p = dir.join("big.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&p).unwrap(), 262144).unwrap();
    for _ in 0..3 {
        for f in corpus_pcaps() {
            let mut r = PcapReader::open(&f).unwrap();
            while let Some(rec) = r.next_record().unwrap() {
                if rec.link == LinkType::Ethernet {
                    w.write(rec.ts_sec, rec.ts_nsec, rec.orig_len, rec.data)
                        .unwrap();
                }
            }
        }
    }
    w.flush().unwrap();
    p
}

#[test]
#[ignore = "needs tcpdump"]
fn rotation_by_size_is_tcpdumps() {
    require_tcpdump();
    let dir = tmpdir("rotate");
    let big = big_pcap(&dir);
    std::fs::write(
        dir.join("set.filters"),
        "all\texpr: len > 0\ntcp\texpr: tcp\n",
    )
    .unwrap();
    run(bin()
        .args(["split", "-C", "1", "-f"])
        .arg(dir.join("set.filters"))
        .arg("--out-dir")
        .arg(dir.join("ours"))
        .arg(&big));
    for (t, e) in [("all", "len > 0"), ("tcp", "tcp")] {
        let theirs = dir.join(format!("theirs-{t}"));
        std::fs::create_dir_all(&theirs).unwrap();
        let mut cmd = Command::new("tcpdump");
        // As root, tcpdump gives up its privileges before writing unless told.
        if netns_unavailable().is_none() {
            cmd.args(["-Z", "root"]);
        }
        run(cmd
            .arg("-r")
            .arg(&big)
            .arg("-w")
            .arg(theirs.join(format!("{t}.pcap")))
            .args(["-C", "1", "--", e]));
        let mut names: Vec<String> = std::fs::read_dir(&theirs)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        if t == "all" {
            assert!(names.len() >= 3, "{names:?}");
        }
        for n in &names {
            let (a, b) = (
                std::fs::read(dir.join("ours").join(n)).unwrap_or_default(),
                std::fs::read(theirs.join(n)).unwrap(),
            );
            // The records, byte for byte (the headers differ in nothing
            // but possibly the snaplen field).
            assert_eq!(a.get(24..), b.get(24..), "{n}");
        }
        let ours = std::fs::read_dir(dir.join("ours"))
            .unwrap()
            .filter(|e| {
                let n = e.as_ref().unwrap().file_name().into_string().unwrap();
                n == format!("{t}.pcap")
                    || n.starts_with(&format!("{t}.pcap"))
                        && n[t.len() + 5..].bytes().all(|b| b.is_ascii_digit())
            })
            .count();
        assert_eq!(ours, names.len(), "{t}");
    }
}

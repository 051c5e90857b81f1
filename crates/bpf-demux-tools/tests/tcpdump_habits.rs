//! tcpdump's habits for files and streams: `-r FILE` and `-r -` (standard
//! input), `-F -` (the filter set from standard input), `-c COUNT`, and
//! `split --tenant NAME -w -` (one tenant's stream on standard output).
//! The oracle for what a stream holds is each filter alone in the
//! reference interpreter.

mod common;

use bpf_demux::cbpf::{self, FrameMeta};
use bpf_demux::pcapfile::PcapReader;
use bpf_demux::spec;
use common::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `cmd` with `stdin` as its standard input.
fn with_stdin(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn match_reads_standard_input_and_counts() {
    let filters = repo().join("tests/data/public.filters");
    let pcap = repo().join("tests/data/corpus/pcaps/afs.pcap");
    let by_path = stdout_of(
        &bin()
            .arg("match")
            .arg("-F")
            .arg(&filters)
            .arg(&pcap)
            .output()
            .unwrap(),
    );
    // `-r -`: the same answers, named `-`.
    let mut cmd = bin();
    cmd.arg("match").arg("-F").arg(&filters).args(["-r", "-"]);
    let by_stdin = stdout_of(&with_stdin(cmd, &std::fs::read(&pcap).unwrap()));
    assert_eq!(by_stdin, by_path.replace("afs.pcap:", "-:"));
    assert!(by_path.lines().count() > 100);
    // `-F -`: the filter set from standard input.
    let mut cmd = bin();
    cmd.arg("match").args(["-F", "-"]).arg(&pcap);
    let set_stdin = stdout_of(&with_stdin(cmd, &std::fs::read(&filters).unwrap()));
    assert_eq!(set_stdin, by_path);
    // `-c 5` over two files: five frames, the first file's.
    let two = stdout_of(
        &bin()
            .arg("match")
            .arg("-F")
            .arg(&filters)
            .args(["-c", "5", "-r"])
            .arg(&pcap)
            .arg(&pcap)
            .output()
            .unwrap(),
    );
    let first5: Vec<&str> = by_path.lines().take(5).collect();
    assert_eq!(two.lines().collect::<Vec<_>>(), first5);
    // Both from standard input is refused, as no capture at all is.
    let mut cmd = bin();
    cmd.arg("match").args(["-F", "-", "-r", "-"]);
    let out = with_stdin(cmd, b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("both be standard input"));
    let out = bin().arg("match").arg("-F").arg(&filters).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no capture to read"));
}

/// The frames `name`'s filter alone accepts in `pcaps`, cut to its length.
fn alone(filters: &Path, name: &str, pcaps: &[&Path]) -> Vec<(Vec<u8>, u32)> {
    let p = spec::load_valid(filters)
        .unwrap()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap();
    let mut out = Vec::new();
    for pcap in pcaps {
        for (d, orig) in frames_of(pcap) {
            let ret = cbpf::run(&p.program, &d, &FrameMeta::offline(&d, orig));
            if ret != 0 {
                let len = (ret as usize)
                    .min(d.len())
                    .min(p.snaplen.map_or(usize::MAX, |c| c as usize));
                out.push((d[..len].to_vec(), orig));
            }
        }
    }
    out
}

#[test]
fn split_writes_one_tenant_to_standard_output() {
    let dir = tmpdir("habits-split");
    let filters = dir.join("set.toml");
    // A cap below the accept length, so the cut is checked too.
    std::fs::write(
        &filters,
        "[[filter]]\nname = \"udp\"\nasm = \"ldh [12]\\njneq #0x800, drop\\nldb [23]\\njneq #17, drop\\nret #1000\\ndrop: ret #0\"\nsnaplen = 60\n\n[[filter]]\nname = \"arp\"\nexpr = \"arp\"\n",
    )
    .unwrap();
    let a = repo().join("tests/data/corpus/pcaps/afs.pcap");
    let b = repo().join("tests/data/corpus/pcaps/gateway_or_not.pcap");
    for tenant in ["udp", "arp"] {
        let out = bin()
            .arg("split")
            .arg("-F")
            .arg(&filters)
            .args(["--tenant", tenant, "-w", "-", "-r"])
            .arg(&a)
            .arg(&b)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stream = dir.join(format!("{tenant}.stream.pcap"));
        std::fs::write(&stream, &out.stdout).unwrap();
        let mut r = PcapReader::open(&stream).unwrap();
        let mut got = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            got.push((rec.data.to_vec(), rec.orig_len));
        }
        let want = alone(&filters, tenant, &[&a, &b]);
        assert!(!want.is_empty(), "{tenant}: nothing to compare");
        assert_eq!(got.len(), want.len(), "{tenant}");
        assert!(
            got == want,
            "{tenant}: the stream differs from the filter alone"
        );
    }
    // An unknown tenant is an error naming it.
    let out = bin()
        .arg("split")
        .arg("-F")
        .arg(&filters)
        .args(["--tenant", "nope", "-w", "-"])
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tenant `nope`"));
}

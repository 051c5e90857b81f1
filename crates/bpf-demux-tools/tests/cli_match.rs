//! `bpf-demux match` and `check` against libpcap: the expected output
//! `tests/data/public.expected.tsv` was made by libpcap's own `bpf_filter()`
//! (tests/oracle/make-public-expected.sh, from tests/oracle/libpcap_match.c),
//! for the 61 public expressions the kernel accepts (programs from
//! `tcpdump -ddd -y EN10MB`, tests/oracle/make-public-filters.sh) over all
//! 4438 corpus frames.

mod common;

use common::*;

#[test]
fn match_independent_prints_what_libpcap_returns() {
    let mut cmd = bin();
    cmd.args(["match", "--engine", "independent", "--filters"])
        .arg(repo().join("tests/data/public.filters"));
    cmd.args(corpus_pcaps());
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = String::from_utf8(out.stdout).unwrap();
    let want = std::fs::read_to_string(repo().join("tests/data/public.expected.tsv")).unwrap();
    assert_eq!(got.lines().count(), 4438);
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "line {}", i + 1);
    }
    assert_eq!(got, want);
}

#[test]
fn check_refuses_libpcap_protochain_loops_naming_the_backward_jump() {
    let out = bin()
        .arg("check")
        .arg(repo().join("tests/data/public-protochain.filters"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 3);
    for line in text.lines() {
        assert!(
            line.contains("backward jump")
                && line.contains("pc ")
                && line.contains("kernel refuses"),
            "{line}"
        );
    }
    assert!(
        text.contains("L41\t36 insns\terror: invalid program: pc 18: backward jump to pc 4"),
        "{text}"
    );
}

#[test]
fn check_accepts_every_public_program_the_kernel_accepts() {
    let out = bin()
        .arg("check")
        .arg(repo().join("tests/data/public.filters"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().filter(|l| l.ends_with("\tok")).count(), 61);
}

#[test]
fn json_format_carries_the_same_matches() {
    let pcap = repo().join("tests/data/corpus/pcaps/gateway_or_not.pcap");
    let filters = repo().join("tests/data/public.filters");
    let tsv = bin()
        .args(["match", "-f"])
        .arg(&filters)
        .arg(&pcap)
        .output()
        .unwrap();
    let json = bin()
        .args(["match", "--format", "json", "-f"])
        .arg(&filters)
        .arg(&pcap)
        .output()
        .unwrap();
    let tsv = String::from_utf8(tsv.stdout).unwrap();
    let json = String::from_utf8(json.stdout).unwrap();
    assert_eq!(tsv.lines().count(), json.lines().count());
    for (t, j) in tsv.lines().zip(json.lines()) {
        let v: serde_json::Value = serde_json::from_str(j).unwrap();
        let (head, rest) = t.split_once('\t').unwrap();
        assert_eq!(
            head,
            format!("{}:{}", v["file"].as_str().unwrap(), v["frame"])
        );
        let pairs: Vec<String> = v["matches"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, r)| format!("{k}={r}"))
            .collect();
        assert_eq!(rest, pairs.join(" "));
    }
}

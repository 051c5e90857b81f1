//! `bpf-demux match` prints the same lines with `--engine merged` (the
//! default) as with `--engine independent`, over every corpus pcap, for the
//! public expressions and the generated tenant sets (1000 `host`, 1000
//! `port`, 300 mixed; programs from `tcpdump -ddd -y EN10MB`, made by
//! tests/oracle/make-tenant-sets.sh).

mod common;

use common::*;
use std::process::Command;

fn run(engine: &str, filters: &str) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bpf-demux"));
    cmd.args(["match", "--engine", engine, "--filters"])
        .arg(repo().join(filters))
        .args(corpus_pcaps());
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn same(filters: &str) {
    let m = run("merged", filters);
    let i = run("independent", filters);
    assert_eq!(m.lines().count(), 4438);
    for (n, (a, b)) in m.lines().zip(i.lines()).enumerate() {
        assert_eq!(a, b, "{filters}: line {}", n + 1);
    }
    assert!(
        m.lines().filter(|l| !l.ends_with('\t')).count() > 100,
        "{filters}: too few frames match anything"
    );
}

#[test]
fn public_expressions() {
    same("tests/data/public.filters");
}

#[test]
fn thousand_hosts() {
    same("tests/data/tenants-hosts-1000.filters");
}

#[test]
fn thousand_ports() {
    same("tests/data/tenants-ports-1000.filters");
}

#[test]
fn three_hundred_mixed() {
    same("tests/data/tenants-mixed-300.filters");
}

#[test]
fn kernel_edge_programs() {
    same("tests/data/kernel-edge.toml");
}

#[test]
fn adversarial_sets() {
    // Long ORs of hosts, a 12x12 cross product (these three fall back to
    // the interpreter), 24-way ANDs of `not host`, indirect arithmetic.
    same_some_match("tests/data/adversarial.filters");
}

fn same_some_match(filters: &str) {
    let m = run("merged", filters);
    let i = run("independent", filters);
    assert_eq!(m, i, "{filters}");
    assert!(m.lines().filter(|l| !l.ends_with('\t')).count() > 10);
}

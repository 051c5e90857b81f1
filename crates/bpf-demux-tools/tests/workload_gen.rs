//! The built-in tenant generator writes the same programs libpcap writes:
//! `host A` and `tcp port P or udp port P` compared instruction by
//! instruction with `tcpdump -ddd -y EN10MB` output (the checked-in tenant
//! sets); the other families are checked for meaning against the
//! interpreter on generated traffic.

mod common;

use bpf_demux::cbpf::{self, text, FrameMeta};
use bpf_demux::spec;
use bpf_demux_testkit::workload::{self, Family};
use common::*;

#[test]
fn ports_family_equals_tcpdump_output() {
    let set = spec::load(&repo().join("tests/data/tenants-ports-1000.filters")).unwrap();
    for (p, s) in (1u16..=1000).zip(&set) {
        assert_eq!(workload::port_program(p).insns(), &s.insns[..], "port {p}");
    }
    assert_eq!(
        Family::Ports.program(5).insns(),
        workload::port_program(1029).insns()
    );
}

#[test]
fn hosts_family_equals_tcpdump_output() {
    // tcpdump: `host 10.99.x.y` lines 41.. of the checked-in set.
    let set = spec::load(&repo().join("tests/data/tenants-hosts-1000.filters")).unwrap();
    for s in &set[40..] {
        let n: usize = s.name[1..].parse().unwrap();
        let addr = std::net::Ipv4Addr::new(10, 99, (n / 250) as u8, (n % 250 + 1) as u8);
        assert_eq!(workload::host_program(addr).insns(), &s.insns[..], "{addr}");
    }
    let first = Family::Hosts.program(0);
    assert_eq!(
        first.insns(),
        workload::host_program(workload::host_addr(0)).insns()
    );
    assert_eq!(
        text::parse_ddd(&text::write_ddd_line(first.insns())).unwrap(),
        first.insns()
    );
}

#[test]
fn every_family_matches_a_share_of_its_traffic() {
    let frames = workload::traffic(4000, 100, 7);
    for fam in Family::ALL {
        let progs: Vec<_> = fam.tenants(100);
        let mut matched = 0;
        for f in &frames {
            let meta = FrameMeta::offline(&f.data, f.wire_len);
            if progs
                .iter()
                .any(|p| cbpf::run(&p.program, &f.data, &meta) != 0)
            {
                matched += 1;
            }
        }
        let share = matched as f64 / frames.len() as f64;
        assert!(
            (0.02..0.9).contains(&share),
            "{}: {matched} of {} frames match",
            fam.name(),
            frames.len()
        );
    }
}

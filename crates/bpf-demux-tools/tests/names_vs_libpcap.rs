//! Names in expressions against libpcap. Hosts, Ethernet hosts, protocols
//! and services come from temporary files, never the network:
//!
//! - with the files of a [`Resolver::in_dir`], `host NAME` and the rest
//!   give every corpus frame the answer libpcap gives the expression with
//!   the addresses written out (each address of the name, as
//!   pcap-filter(7) says), and `gateway NAME` the answer of `ether host E
//!   and not host A`, its documented equivalent;
//! - as root, in a private mount namespace whose `/etc/hosts`,
//!   `/etc/services` and `/etc/protocols` are the test's, `bpf-demux
//!   compile` and libpcap (`tcpdump -ddd`) both resolve the names
//!   themselves and agree on every frame.

mod common;

use bpf_demux::cbpf::{self, text, FrameMeta, Program};
use bpf_demux::expr::{self, ExprErrorKind, Resolver};
use common::*;
use std::path::Path;
use std::process::Command;

const HOSTS: &str = "\
# the test's hosts
10.1.2.3   optimus prime
10.1.2.4\toptimus
2001:db8::5 optimus
131.151.32.21 web
fe80::1 only6
# 10.9.9.9 optimus
";
const NETWORKS: &str = "lab 10.1\nLoopback 127.0.0.0\n";
const ETHERS: &str = "00:11:22:33:44:55 optimus\n8:0:20:1:2:3 web\n";
const PROTOCOLS: &str = "\
ip\t0\tIP
icmp\t1\tICMP
tcp\t6\tTCP
udp\t17\tUDP
gre\t47\tGRE
ipv6-icmp 58 IPv6-ICMP icmp6
myproto 99 MYPROTO
";
const SERVICES: &str = "\
ssh\t22/tcp
domain\t53/tcp
domain\t53/udp
http\t80/tcp\twww
ntp\t123/udp
weird\t7000/tcp
weird\t7001/udp
mysvc\t4444/udp\tmy-alias
";

fn names_dir() -> std::path::PathBuf {
    let d = tmpdir("names");
    for (f, t) in [
        ("hosts", HOSTS),
        ("ethers", ETHERS),
        ("protocols", PROTOCOLS),
        ("services", SERVICES),
        ("networks", NETWORKS),
    ] {
        std::fs::write(d.join(f), t).unwrap();
    }
    d
}

/// (expression with names, the same written out as libpcap reads it).
const PAIRS: &[(&str, &str)] = &[
    (
        "host optimus",
        "host 10.1.2.3 or host 10.1.2.4 or host 2001:db8::5",
    ),
    (
        "host OPTIMUS",
        "host 10.1.2.3 or host 10.1.2.4 or host 2001:db8::5",
    ),
    ("src host prime", "src host 10.1.2.3"),
    ("ip host optimus", "ip host 10.1.2.3 or ip host 10.1.2.4"),
    ("ip6 host optimus", "ip6 host 2001:db8::5"),
    (
        "dst host web or host only6",
        "dst host 131.151.32.21 or host fe80::1",
    ),
    ("arp host web", "arp host 131.151.32.21"),
    ("host web and tcp", "host 131.151.32.21 and tcp"),
    ("ether host optimus", "ether host 00:11:22:33:44:55"),
    ("ether src web", "ether src 08:00:20:01:02:03"),
    (
        "gateway optimus",
        "ether host 00:11:22:33:44:55 and not (host 10.1.2.3 or host 10.1.2.4)",
    ),
    (
        "ip gateway web",
        "ether host 08:00:20:01:02:03 and not ip host 131.151.32.21",
    ),
    // glibc reads `lab 10.1` as 10.1.0.0, and libpcap tests that one address.
    ("net lab", "host 10.1.0.0"),
    (
        "src net LAB and dst net lab",
        "src host 10.1.0.0 and dst host 10.1.0.0",
    ),
    ("net loopback", "host 127.0.0.0"),
    ("ip proto \\myproto", "ip proto 99"),
    ("ip proto \\MYPROTO", "ip proto 99"),
    ("ip6 proto \\icmp6", "ip6 proto 58"),
    ("proto \\gre", "proto 47"),
    ("port ssh", "tcp port 22"),
    ("port domain", "port 53"),
    ("port www", "tcp port 80"),
    ("port ntp", "udp port 123"),
    ("port weird", "tcp port 7000"),
    ("port my-alias", "udp port 4444"),
    (
        "udp port domain or tcp port http",
        "udp port 53 or tcp port 80",
    ),
    ("portrange ssh-http", "tcp portrange 22-80"),
    ("portrange 20-domain", "portrange 20-53"),
];

/// Names the files do not have, or have for another use.
const REFUSED: &[(&str, &str)] = &[
    ("host nosuchhost", "unknown host 'nosuchhost'"),
    (
        "ip host only6",
        "unknown host 'only6' for specified address family",
    ),
    ("arp host optimus", "'arp' modifier applied to ip6 host"),
    ("ether host prime", "unknown ether host 'prime'"),
    ("gateway only6", "unknown ether host 'only6'"),
    ("udp port ssh", "port 'ssh' is tcp"),
    ("tcp port ntp", "port 'ntp' is udp"),
    ("port nosuchport", "unknown port 'nosuchport'"),
    ("ip proto \\carp", "unknown ip proto 'carp'"),
    ("net optimus", "unknown network 'optimus'"),
    ("udp portrange ssh-http", "port 'ssh-http' is tcp"),
];

fn libpcap(e: &str) -> Program {
    let out = Command::new("tcpdump")
        .args(["-ddd", "-y", "EN10MB", "--", e])
        .output()
        .expect("tcpdump runs");
    assert!(
        out.status.success(),
        "libpcap refuses `{e}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Program::validate(&text::parse_ddd(&String::from_utf8(out.stdout).unwrap()).unwrap()).unwrap()
}

fn frames() -> Vec<(Vec<u8>, FrameMeta)> {
    let mut v: Vec<(Vec<u8>, FrameMeta)> = corpus_pcaps()
        .iter()
        .flat_map(|p| frames_of(p))
        .map(|(d, o)| {
            let m = FrameMeta::offline(&d, o);
            (d, m)
        })
        .collect();
    // Frames to and from the names' addresses (the corpus has few).
    for (i, (src, dst)) in [
        ([10, 1, 2, 3], [10, 1, 2, 4]),
        ([10, 1, 2, 4], [8, 8, 8, 8]),
        ([131, 151, 32, 21], [10, 1, 2, 3]),
        ([1, 1, 1, 1], [131, 151, 32, 21]),
    ]
    .into_iter()
    .enumerate()
    {
        for mac in [
            [0x00, 0x11, 0x22, 0x33, 0x44, 0x55],
            [0x08, 0x00, 0x20, 0x01, 0x02, 0x03],
        ] {
            let mut f = mac.to_vec();
            f.extend_from_slice(&[2, 0, 0, 0, 0, i as u8]);
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0]);
            f.extend_from_slice(&src);
            f.extend_from_slice(&dst);
            f.extend_from_slice(&[
                0, 22, 0x1b, 0x58, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 2, 0, 0, 0, 0, 0, 0,
            ]);
            let m = FrameMeta::offline(&f, f.len() as u32);
            v.push((f, m));
        }
    }
    v
}

fn same_answers(
    e: &str,
    ours: &Program,
    theirs: &Program,
    frames: &[(Vec<u8>, FrameMeta)],
) -> usize {
    let mut hits = 0;
    for (i, (f, m)) in frames.iter().enumerate() {
        let (a, b) = (cbpf::run(ours, f, m), cbpf::run(theirs, f, m));
        assert_eq!(a, b, "`{e}`: frame {i}");
        hits += (a != 0) as usize;
    }
    hits
}

#[test]
#[ignore = "needs tcpdump (libpcap)"]
fn names_from_files_answer_as_libpcap_with_the_addresses_written_out() {
    require_tcpdump();
    let dir = names_dir();
    let names = Resolver::in_dir(&dir);
    let frames = frames();
    let opts = expr::Options::default();
    let mut accepting = 0;
    for (named, written) in PAIRS {
        let ours = expr::compile_with_names(named, &opts, &names)
            .unwrap_or_else(|e| panic!("`{named}`: {e}"));
        let ours = Program::validate(&ours).unwrap();
        accepting += (same_answers(named, &ours, &libpcap(written), &frames) > 0) as usize;
    }
    assert!(
        accepting >= 15,
        "only {accepting} expressions accept a frame"
    );
    for (e, msg) in REFUSED {
        let err = expr::compile_with_names(e, &opts, &names).expect_err(e);
        assert_eq!(err.kind.to_string(), *msg, "`{e}`");
    }
}

#[test]
fn missing_files_fall_back_to_the_built_in_names_and_present_ones_rule() {
    let dir = tmpdir("names-missing");
    let names = Resolver::in_dir(&dir);
    let opts = expr::Options::default();
    // No services or protocols file: the well-known names still work.
    let a = expr::compile_with_names("tcp port http", &opts, &names).unwrap();
    let b = expr::compile_with_names("tcp port 80", &opts, &names).unwrap();
    assert_eq!(a, b);
    assert!(expr::compile_with_names("ip proto \\gre", &opts, &names).is_ok());
    // No hosts file and no system resolver: a name is unknown.
    let err = expr::compile_with_names("host optimus", &opts, &names).unwrap_err();
    assert_eq!(err.kind, ExprErrorKind::UnknownHost("optimus".into()));
    assert_eq!(err.col, 6);
    // A services file without the name: unknown, as for libpcap (a new
    // resolver: one reads each file once).
    std::fs::write(dir.join("services"), "ssh 22/tcp\n").unwrap();
    let names = Resolver::in_dir(&dir);
    let err = expr::compile_with_names("port http", &opts, &names).unwrap_err();
    assert_eq!(err.kind, ExprErrorKind::UnknownPort("http".into()));
}

/// Runs `cmd` (a shell command line) in a private mount namespace whose
/// /etc/hosts, /etc/services, /etc/protocols (and /etc/networks, if the
/// system has one to cover) are those in `dir`.
fn with_names(dir: &Path, cmd: &str) -> std::process::Output {
    let script = format!(
        "mount --bind {d}/hosts /etc/hosts && mount --bind {d}/services /etc/services && \
         mount --bind {d}/protocols /etc/protocols && {{ [ ! -e /etc/networks ] || \
         mount --bind {d}/networks /etc/networks; }} && {cmd}",
        d = dir.display()
    );
    Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .expect("unshare runs")
}

#[test]
#[ignore = "needs root (a private mount namespace) and tcpdump"]
fn the_system_resolver_resolves_as_libpcaps() {
    require_tcpdump();
    require(netns_unavailable());
    let dir = names_dir();
    let frames = frames();
    let bin = env!("CARGO_BIN_EXE_bpf-demux");
    let mut compared = 0;
    let networks = Path::new("/etc/networks").exists();
    for (named, _) in PAIRS
        .iter()
        .filter(|(n, _)| !n.contains("ether") && !n.contains("gateway"))
        .filter(|(n, _)| networks || !n.contains("net "))
    {
        let q = named.replace('\\', "\\\\");
        let theirs = with_names(&dir, &format!("tcpdump -ddd -y EN10MB -- \"{q}\""));
        let ours = with_names(&dir, &format!("{bin} compile -- \"{q}\""));
        assert!(
            theirs.status.success(),
            "libpcap: `{named}`: {}",
            String::from_utf8_lossy(&theirs.stderr)
        );
        assert!(
            ours.status.success(),
            "ours: `{named}`: {}",
            String::from_utf8_lossy(&ours.stderr)
        );
        let parse = |o: &std::process::Output| {
            Program::validate(&text::parse_ddd(&String::from_utf8_lossy(&o.stdout)).unwrap())
                .unwrap()
        };
        same_answers(named, &parse(&ours), &parse(&theirs), &frames);
        compared += 1;
    }
    assert!(compared >= 18, "{compared}");
    // What neither knows, both refuse.
    for (e, _) in REFUSED
        .iter()
        .filter(|(e, _)| !e.contains("ether") && !e.contains("gateway"))
    {
        let q = e.replace('\\', "\\\\");
        assert!(
            !with_names(&dir, &format!("tcpdump -ddd -- \"{q}\""))
                .status
                .success(),
            "{e}"
        );
        let ours = with_names(&dir, &format!("{bin} compile -- \"{q}\""));
        assert_eq!(ours.status.code(), Some(2), "{e}");
    }
}

//! `bpf-demux serve` with attach clients, the kernel as the oracle (root;
//! a private network namespace with a veth pair): every client's pcap
//! equals what its own AF_PACKET socket with the same filter received,
//! frame for frame; clients as uid 65534 with no supplementary groups
//! (`setpriv`); PCAP-over-IP read by tshark; refusals (policy, quota, bad
//! filters); a flood of malformed messages; SIGKILLed clients; SIGTERM to
//! the daemon.
//!
//! Frames are the built-in workload's without 802.1Q/802.1ad tags: a
//! kernel socket delivers a frame with its outer tag stripped, libpcap
//! (and bpf-demux) put it back, so tagged frames would differ by design.

mod common;

use bpf_demux::capture::sys::enter_netns;
use bpf_demux::cbpf::Insn;
use bpf_demux::serve::proto::{self, AttachRequest, ClientMessage, DaemonMessage, RefuseCode};
use common::daemon::*;
use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A daemon in a fresh namespace and `n` tenants of [`tenants`], every
/// one attached as root (no `setpriv`).
fn serving_root_tenants(tag: &str, n: usize) -> (NetNs, Place, Proc, Vec<Tenant>) {
    let ns = NetNs::new(tag);
    let place = Place::new(tag);
    let daemon = place.serve(&ns.name, &[]);
    let ts = tenants(&place, n)
        .into_iter()
        .map(|t| Tenant { nobody: false, ..t })
        .collect();
    (ns, place, daemon, ts)
}

#[test]
#[ignore = "needs root, a network namespace and setpriv"]
fn a_hundred_clients_half_unprivileged_each_get_exactly_their_kernel_sockets_frames() {
    require_netns();
    let ns = NetNs::new("serve100");
    let place = Place::new("serve100");
    let policy = place.dir.join("policy.toml");
    std::fs::write(&policy, "[[allow]]\ngid = 65534\nmax_tenants = 64\n").unwrap();
    let daemon = place.serve(
        &ns.name,
        &[
            "--group",
            NOBODY,
            "--user",
            "nobody",
            "--policy",
            policy.to_str().unwrap(),
        ],
    );
    // The daemon kept no privilege.
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon_pid(&daemon))).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("CapEff:\t0000000000000000")),
        "{status}"
    );
    assert!(
        status.lines().any(|l| l.starts_with("Uid:\t65534\t")),
        "{status}"
    );
    let ts = tenants(&place, 100);
    let clients = attach_all(&place, &ts);
    let kernel = replay_to_kernel(&ns, &ts, frames(20_000, 100), 500);
    let ours = end_all(clients);
    let mut delivered = 0;
    for ((t, k), o) in ts.iter().zip(&kernel).zip(&ours) {
        assert_eq!(o.len(), k.len(), "tenant {}: frames", t.name);
        assert!(o == k, "tenant {}: bytes differ", t.name);
        delivered += k.len();
    }
    assert!(
        delivered > 5_000,
        "the traffic reaches the tenants ({delivered})"
    );
    daemon.signal("-TERM");
    let (code, err) = daemon.finish();
    assert_eq!(code, 0, "{err:?}");
}

#[test]
#[ignore = "needs root, a network namespace and tshark"]
fn tshark_reading_pcap_over_ip_gets_its_tenants_kernel_frames() {
    require_netns();
    require(
        Command::new("tshark")
            .arg("-v")
            .output()
            .is_err()
            .then(|| "needs tshark".into()),
    );
    let ns = NetNs::new("servetshark");
    let place = Place::new("servetshark");
    let e = "tcp or arp";
    let filters = place.dir.join("static.toml");
    std::fs::write(
        &filters,
        format!("[[filter]]\nname = \"web\"\nexpr = \"{e}\"\nlisten = \"127.0.0.1:57012\"\n"),
    )
    .unwrap();
    let up = Command::new("ip")
        .args(["-n", &ns.name, "link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success());
    let daemon = place.serve(&ns.name, &["--filters", filters.to_str().unwrap()]);
    let out = place.dir.join("tshark.pcap");
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        &ns.name,
        "tshark",
        "-i",
        "TCP@127.0.0.1:57012",
        "-F",
        "pcap",
        "-w",
    ])
    .arg(&out)
    .stdout(Stdio::null());
    let mut tshark = Proc::spawn(c);
    // tshark says so once it reads the stream.
    tshark.wait_for("Capturing on");
    std::thread::sleep(Duration::from_millis(500));
    let traffic = frames(5_000, 100);
    let program = live(e);
    let kernel = in_ns(&ns, move || {
        let socks = kernel_sockets(&[program]);
        send(&traffic);
        std::thread::sleep(Duration::from_millis(500));
        drain(&socks[0], None)
    });
    // A stream writer gathers frames for up to 1 s before it writes them
    // (and the ring hands blocks over every 100 ms): tshark has them all
    // well within 2 s.
    std::thread::sleep(Duration::from_secs(2));
    tshark.signal("-INT");
    let (code, err) = tshark.finish();
    assert_eq!(code, 0, "{err:?}");
    let got = pcap_frames(&out);
    assert!(kernel.len() > 500, "{}", kernel.len());
    assert_eq!(got.len(), kernel.len());
    assert!(
        got == kernel,
        "tshark's frames differ from the kernel socket's"
    );
    daemon.signal("-TERM");
    assert_eq!(daemon.finish().0, 0);
}

/// Speaks the protocol by hand: hello, then `msg`; the daemon's answer.
fn raw_attach(sock: &Path, req: AttachRequest) -> DaemonMessage {
    let mut s = UnixStream::connect(sock).unwrap();
    let mut out = Vec::new();
    ClientMessage::Hello {
        version: proto::VERSION,
    }
    .encode(&mut out);
    ClientMessage::Attach(req).encode(&mut out);
    s.write_all(&out).unwrap();
    let mut r = bpf_demux::serve::conn::MessageReader::new(s);
    assert!(matches!(
        r.next_daemon().unwrap(),
        DaemonMessage::Welcome { .. }
    ));
    r.next_daemon().unwrap()
}

#[test]
#[ignore = "needs root, a network namespace and setpriv"]
fn refusals_name_the_rule_and_exit_2() {
    require_netns();
    let ns = NetNs::new("serverefuse");
    let place = Place::new("serverefuse");
    let policy = place.dir.join("policy.toml");
    std::fs::write(
        &policy,
        "[[allow]]\nuid = 65534\nmax_tenants = 1\nmax_snaplen = 128\n",
    )
    .unwrap();
    let daemon = place.serve(
        &ns.name,
        &["--group", NOBODY, "--policy", policy.to_str().unwrap()],
    );
    let out = place.dir.join("x.pcap");
    let run = |nobody: bool, args: &[&str]| -> (i32, Vec<String>) {
        place.attach(nobody, args, &out).finish()
    };
    // A uid outside the policy (it can reach the socket through its group).
    let mut c = Command::new("setpriv");
    c.args(["--reuid", "4242", "--regid", NOBODY, "--clear-groups"])
        .arg(&place.bin)
        .args(["attach", "--socket"])
        .arg(&place.sock)
        .arg("udp")
        .stdout(Stdio::null());
    let (code, err) = Proc::spawn(c).finish();
    assert_eq!(code, 2, "{err:?}");
    assert!(
        err.iter()
            .any(|l| l.contains("uid 4242") && l.contains("may not attach")),
        "{err:?}"
    );
    // Over the snaplen the policy allows.
    let (code, err) = run(true, &["--snaplen", "129", "udp"]);
    assert_eq!(code, 2);
    assert!(
        err.iter().any(|l| l.contains("snaplen 129 is over")),
        "{err:?}"
    );
    // One tenant allowed: the second is over quota; the first keeps going.
    let mut first = place.attach(true, &["--name", "one", "udp"], &place.dir.join("one.pcap"));
    first.wait_for("attached one");
    let (code, err) = run(true, &["--name", "two", "udp"]);
    assert_eq!(code, 2);
    assert!(
        err.iter().any(|l| l.contains("the most its policy allows")),
        "{err:?}"
    );
    // Name taken (root is always allowed).
    let (code, err) = run(false, &["--name", "one", "udp"]);
    assert_eq!(code, 2);
    assert!(
        err.iter()
            .any(|l| l.contains("a tenant named `one` exists")),
        "{err:?}"
    );
    // Listings: uid 65534 sees its own tenant only, root sees both.
    let mut r = place.attach(false, &["--name", "r", "arp"], &place.dir.join("r.pcap"));
    r.wait_for("attached r");
    let o = Command::new("setpriv")
        .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups"])
        .arg(&place.bin)
        .args(["tenants", "--format", "json", "--socket"])
        .arg(&place.sock)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mine: proto::TenantsReport = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = mine.tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!((names, mine.hidden), (vec!["one"], 1));
    assert_eq!(mine.tenants[0].owner_uid, 65534);
    assert_eq!(listing_names(&place.sock), ["one", "r"]);
    r.signal("-INT");
    assert_eq!(r.finish().0, 0);
    // A bad expression (its column), a bad program file (its pc), both
    // refused by the client before it connects.
    let (code, err) = run(false, &["udp", "port", "70000"]);
    assert_eq!(code, 2);
    assert!(
        err.iter().any(|l| l.contains("expression: column")),
        "{err:?}"
    );
    let bad = place.dir.join("bad.asm");
    std::fs::write(&bad, "ld #1\ndiv #0\nret a\n").unwrap();
    let (code, err) = run(false, &["--program", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.iter()
            .any(|l| l.contains("pc 1") && l.contains("division")),
        "{err:?}"
    );
    // The daemon refuses the same program sent without the client's check,
    // and a jump out of the program.
    for (insns, needle) in [
        (
            vec![
                Insn::new(0x00, 0, 0, 1),
                Insn::new(0x34, 0, 0, 0),
                Insn::new(0x16, 0, 0, 0),
            ],
            "pc 1",
        ),
        (
            vec![Insn::new(0x15, 5, 0, 0), Insn::new(0x06, 0, 0, 0)],
            "pc 0",
        ),
    ] {
        let m = raw_attach(
            &place.sock,
            AttachRequest {
                name: "raw".into(),
                snaplen: None,
                queue_bytes: None,
                insns,
            },
        );
        match m {
            DaemonMessage::Refused {
                code: RefuseCode::BadFilter,
                message,
            } => {
                assert!(message.contains(needle), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
    first.signal("-INT");
    assert_eq!(first.finish().0, 0);
    daemon.signal("-TERM");
    assert_eq!(daemon.finish().0, 0);
}

#[test]
#[ignore = "needs root and a network namespace"]
fn a_flood_of_malformed_messages_closes_only_those_clients() {
    require_netns();
    let (ns, place, daemon, ts) = serving_root_tenants("serveflood", 3);
    let clients = attach_all(&place, &ts);
    let threads = || thread_count(daemon_pid(&daemon));
    let before = threads();
    let sock = place.sock.clone();
    // Garbage of every kind, 400 connections, while traffic flows.
    let flood = std::thread::spawn(move || {
        let mut stalled = Vec::new();
        for i in 0..400u32 {
            let Ok(mut s) = UnixStream::connect(&sock) else {
                continue;
            };
            let mut hello = Vec::new();
            ClientMessage::Hello {
                version: proto::VERSION,
            }
            .encode(&mut hello);
            let junk: Vec<u8> = match i % 5 {
                0 => (0..200).map(|b| (b * 7 + i) as u8).collect(),
                1 => 0xffff_ffffu32.to_be_bytes().to_vec(),
                2 => [hello.clone(), vec![0, 0, 0, 3, 0x02, 1]].concat(),
                3 => [hello.clone(), vec![0, 0, 0, 1, 0x7e]].concat(),
                _ => vec![0, 0, 0, 9, 0x01, b'B'],
            };
            let _ = s.write_all(&junk);
            if i % 5 == 4 || i % 5 == 2 {
                stalled.push(s);
            }
        }
        // A stalled message is closed within the deadline (plus a tick).
        std::thread::sleep(Duration::from_secs(7));
        for mut s in stalled {
            let mut b = Vec::new();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = s.read_to_end(&mut b);
            let mut r = bpf_demux::serve::conn::MessageReader::new(&b[..]);
            let mut refused = false;
            while let Ok(m) = r.next_daemon() {
                refused |= matches!(
                    m,
                    DaemonMessage::Refused {
                        code: RefuseCode::BadMessage,
                        ..
                    }
                );
            }
            assert!(refused, "a stalled client is refused and closed");
        }
    });
    let kernel = replay_to_kernel(&ns, &ts, frames(10_000, 100), 500);
    flood.join().unwrap();
    let ours = end_all(clients);
    for ((t, k), o) in ts.iter().zip(&kernel).zip(&ours) {
        assert!(
            o == k,
            "tenant {}: {} frames, kernel {}",
            t.name,
            o.len(),
            k.len()
        );
    }
    // Every flood connection is gone: no thread left behind.
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        threads() <= before,
        "threads {} > {before} before the flood",
        threads()
    );
    daemon.signal("-TERM");
    assert_eq!(daemon.finish().0, 0);
}

#[test]
#[ignore = "needs root and a network namespace"]
fn sigkilled_clients_are_detached_and_nobody_else_notices() {
    require_netns();
    let (ns, place, daemon, ts) = serving_root_tenants("servekill", 10);
    let mut clients = attach_all(&place, &ts);
    let traffic = frames(20_000, 100);
    let (first, second) = traffic.split_at(traffic.len() / 2);
    let (first, second) = (first.to_vec(), second.to_vec());
    let programs: Vec<Vec<Insn>> = ts.iter().map(|t| t.program.clone()).collect();
    let snaplens: Vec<Option<u32>> = ts.iter().map(|t| t.snaplen).collect();
    let nspath = ns.path();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (half_tx, half_rx) = std::sync::mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        enter_netns(&nspath).unwrap();
        let socks = kernel_sockets(&programs);
        send(&first);
        half_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        send(&second);
        std::thread::sleep(Duration::from_millis(500));
        socks
            .iter()
            .zip(snaplens)
            .map(|(s, n)| drain(s, n))
            .collect::<Vec<_>>()
    });
    half_rx.recv().unwrap();
    // Mid-stream: every other client killed.
    let killed: Vec<(Proc, PathBuf)> = (0..5).map(|i| clients.remove(i)).collect();
    for (p, _) in killed {
        p.signal("-KILL");
        let (code, _) = p.finish();
        assert_eq!(code, -1);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while listing_names(&place.sock).len() != 5 {
        assert!(
            Instant::now() < deadline,
            "killed clients still listed: {:?}",
            listing_names(&place.sock)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    go_tx.send(()).unwrap();
    let kernel = sender.join().unwrap();
    let survivors: Vec<usize> = (0..10).filter(|i| i % 2 == 1).collect();
    let ours = end_all(clients);
    for (k, o) in survivors.iter().zip(&ours) {
        assert!(
            o == &kernel[*k],
            "tenant t{k}: {} frames, kernel {}",
            o.len(),
            kernel[*k].len()
        );
    }
    daemon.signal("-TERM");
    assert_eq!(daemon.finish().0, 0);
}

#[test]
#[ignore = "needs root, a network namespace and tcpdump"]
fn sigterm_to_the_daemon_ends_every_stream_readable_to_its_last_frame() {
    require_netns();
    require_tcpdump();
    let (ns, place, daemon, ts) = serving_root_tenants("serveterm", 8);
    let clients = attach_all(&place, &ts);
    let kernel = replay_to_kernel(&ns, &ts, frames(10_000, 100), 300);
    daemon.signal("-TERM");
    let (code, err) = daemon.finish();
    assert_eq!(code, 0, "{err:?}");
    for ((p, out), k) in clients.into_iter().zip(&kernel) {
        let (code, err) = p.finish();
        assert_eq!(code, 0, "{err:?}");
        // tcpdump reads it to its last frame: what it writes back out is
        // the kernel socket's frames.
        let copy = out.with_extension("tcpdump.pcap");
        let o = Command::new("tcpdump")
            .arg("-r")
            .arg(&out)
            .arg("-w")
            .arg(&copy)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let read = pcap_frames(&copy);
        assert_eq!(
            read.len(),
            k.len(),
            "{}: frames tcpdump read",
            out.display()
        );
        assert!(&read == k);
    }
    assert!(!place.sock.exists(), "the socket is removed at exit");
}

#[test]
#[ignore = "needs root and a network namespace"]
fn the_daemons_own_stream_never_feeds_a_tenant_on_the_same_interface() {
    require_netns();
    let ns = NetNs::new("servelo");
    let place = Place::new("servelo");
    let up = Command::new("ip")
        .args(["-n", &ns.name, "link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success());
    let filters = place.dir.join("static.toml");
    std::fs::write(
        &filters,
        "[[filter]]\nname = \"all-tcp\"\nexpr = \"tcp\"\nlisten = \"127.0.0.1:57013\"\n",
    )
    .unwrap();
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &ns.name])
        .arg(&place.bin)
        .args([
            "serve",
            "-i",
            "lo",
            "--filters",
            filters.to_str().unwrap(),
            "--socket",
        ])
        .arg(&place.sock)
        .stdout(Stdio::null());
    let mut daemon = Proc::spawn(c);
    daemon.wait_for("serving lo");
    // A stream client on loopback, and some TCP of our own to another port
    // (which the tenant must get).
    let got = in_ns(&ns, || {
        let mut reader = std::net::TcpStream::connect("127.0.0.1:57013").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let l = std::net::TcpListener::bind("127.0.0.1:57099").unwrap();
        let mut a = std::net::TcpStream::connect("127.0.0.1:57099").unwrap();
        let (mut b, _) = l.accept().unwrap();
        a.write_all(b"ping").unwrap();
        let mut four = [0u8; 4];
        b.read_exact(&mut four).unwrap();
        drop((a, b));
        std::thread::sleep(Duration::from_millis(1500));
        reader
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 65536];
        // Bounded: a stream that fed on itself would never go quiet.
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until && bytes.len() < 4 << 20 {
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
        bytes
    });
    let path = place.dir.join("stream.pcap");
    std::fs::write(&path, &got).unwrap();
    let frames = pcap_frames(&path);
    let port = |f: &Vec<u8>, at: usize| u16::from_be_bytes([f[at], f[at + 1]]);
    // Ethernet 14 + IPv4 20 (no options on loopback): TCP ports at 34, 36.
    assert!(
        frames.len() >= 6,
        "the 57099 exchange is there: {}",
        frames.len()
    );
    for f in &frames {
        assert!(
            port(f, 34) != 57013 && port(f, 36) != 57013,
            "our own stream fed back"
        );
        assert!(port(f, 34) == 57099 || port(f, 36) == 57099);
    }
    daemon.signal("-TERM");
    assert_eq!(daemon.finish().0, 0);
}

#[test]
#[ignore = "needs root and a network namespace"]
fn a_slow_reader_loses_only_its_own_frames_counted() {
    require_netns();
    let (ns, place, daemon, ts) = serving_root_tenants("serveslow", 4);
    let clients = attach_all(&place, &ts);
    // A client whose output nobody reads: once its pipe is full it stops
    // reading the daemon, whose queue for it (64 KiB) fills.
    let mut c = Command::new(&place.bin);
    c.args(["attach", "--name", "slow", "-B", "64", "--socket"])
        .arg(&place.sock)
        .arg("udp")
        .stdout(Stdio::piped());
    let mut slow = Proc::spawn(c);
    slow.wait_for("attached slow");
    let kernel = replay_to_kernel(&ns, &ts, frames(20_000, 100), 500);
    let ours = end_all(clients);
    for ((t, k), o) in ts.iter().zip(&kernel).zip(&ours) {
        assert!(
            o == k,
            "tenant {}: {} frames, kernel {}",
            t.name,
            o.len(),
            k.len()
        );
    }
    // The slow tenant's drops are counted, and it is still there.
    let o = Command::new(&place.bin)
        .args(["tenants", "--format", "json", "--socket"])
        .arg(&place.sock)
        .output()
        .unwrap();
    let r: proto::TenantsReport = serde_json::from_slice(&o.stdout).unwrap();
    let row = r
        .tenants
        .iter()
        .find(|t| t.name == "slow")
        .expect("slow is listed");
    assert!(row.drops > 0, "{row:?}");
    assert!(row.frames + row.drops > 1000, "{row:?}");
    assert_eq!(r.kernel_drops, 0, "the ring never waited");
    slow.signal("-KILL");
    let _ = slow.finish();
    daemon.signal("-TERM");
    assert_eq!(daemon.finish().0, 0);
}

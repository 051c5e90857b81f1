//! `bpf-demux serve` static tenants while it runs (root; a private network
//! namespace with a veth pair): SIGHUP with a bad file changes nothing,
//! then a reload that removes one PCAP-over-IP tenant (its stream ends
//! with every frame its kernel socket got) and adds another (its stream
//! equals its kernel socket's); `attach -c N` ends by itself with the
//! first N frames its kernel socket got.

mod common;

use bpf_demux::capture::sys::enter_netns;
use common::daemon::*;
use common::*;
use std::io::Read;
use std::process::Command;
use std::thread::JoinHandle;
use std::time::Duration;

/// A PCAP-over-IP client in the namespace: every byte until the stream ends.
fn stream_reader(ns: &NetNs, port: u16) -> JoinHandle<Vec<u8>> {
    let path = ns.path();
    let h = std::thread::spawn(move || {
        enter_netns(&path).unwrap();
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut bytes = Vec::new();
        s.read_to_end(&mut bytes).unwrap();
        bytes
    });
    // Subscribed once accepted (a few polls of the listener).
    std::thread::sleep(Duration::from_millis(500));
    h
}

fn stream_frames(place: &Place, tag: &str, bytes: &[u8]) -> Vec<Vec<u8>> {
    let p = place.dir.join(format!("{tag}.pcap"));
    std::fs::write(&p, bytes).unwrap();
    pcap_frames(&p)
}

fn tenant(name: &str, e: &str, port: u16) -> String {
    format!("[[filter]]\nname = \"{name}\"\nexpr = \"{e}\"\nlisten = \"127.0.0.1:{port}\"\n")
}

#[test]
#[ignore = "needs root and a network namespace"]
fn sighup_swaps_static_tenants_and_count_ends_a_client() {
    require_netns();
    let ns = NetNs::new("servereload");
    let place = Place::new("servereload");
    let up = Command::new("ip")
        .args(["-n", &ns.name, "link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success());
    let file = place.dir.join("static.toml");
    std::fs::write(&file, tenant("dns", "udp", 57020)).unwrap();
    let mut daemon = place.serve(&ns.name, &["--filters", file.to_str().unwrap()]);
    let mut counted = place.attach(
        false,
        &["--name", "five", "-c", "5", "udp", "or", "tcp"],
        &place.dir.join("five.pcap"),
    );
    counted.wait_for("attached five");
    let dns = stream_reader(&ns, 57020);
    let (first, second) = {
        let f = frames(8_000, 100);
        let (a, b) = f.split_at(4_000);
        (a.to_vec(), b.to_vec())
    };
    let kernel1 = in_ns(&ns, move || {
        let s = kernel_sockets(&[live("udp"), live("udp or tcp")]);
        send(&first);
        std::thread::sleep(Duration::from_millis(300));
        (drain(&s[0], None), drain(&s[1], None))
    });
    // -c 5: the client detaches by itself.
    let (code, err) = counted.finish();
    assert_eq!(code, 0, "{err:?}");
    assert!(
        err.iter().any(|l| l.contains("5 frames written")),
        "{err:?}"
    );
    assert_eq!(
        pcap_frames(&place.dir.join("five.pcap")),
        kernel1.1[..5].to_vec()
    );
    // A file that does not load changes nothing.
    std::fs::write(
        &file,
        "[[filter]]\nname = \"web\"\nexpr = \"tcp\"\nlisten = \"nowhere\"\n",
    )
    .unwrap();
    daemon.signal("-HUP");
    let l = daemon.wait_for("reload failed");
    assert!(
        l.contains("static.toml:4:11") && l.contains("`listen` must be"),
        "{l}"
    );
    assert_eq!(listing_names(&place.sock), ["dns"]);
    // dns goes, web comes.
    std::fs::write(&file, tenant("web", "tcp", 57021)).unwrap();
    daemon.signal("-HUP");
    let l = daemon.wait_for("reloaded");
    assert!(l.contains("1 static tenants (+1 -1 ~0)"), "{l}");
    assert_eq!(listing_names(&place.sock), ["web"]);
    let dns_frames = stream_frames(&place, "dns", &dns.join().unwrap());
    assert!(kernel1.0.len() > 100);
    assert!(
        dns_frames == kernel1.0,
        "dns: {} frames, kernel {}",
        dns_frames.len(),
        kernel1.0.len()
    );
    let web = stream_reader(&ns, 57021);
    let kernel2 = in_ns(&ns, move || {
        let s = kernel_sockets(&[live("tcp")]);
        send(&second);
        std::thread::sleep(Duration::from_millis(300));
        drain(&s[0], None)
    });
    // The stream ends when the daemon does, with everything queued.
    daemon.signal("-TERM");
    let (code, err) = daemon.finish();
    assert_eq!(code, 0, "{err:?}");
    let web_frames = stream_frames(&place, "web", &web.join().unwrap());
    assert!(kernel2.len() > 100);
    assert!(
        web_frames == kernel2,
        "web: {} frames, kernel {}",
        web_frames.len(),
        kernel2.len()
    );
}

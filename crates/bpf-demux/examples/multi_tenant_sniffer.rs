//! Three tenants on one socket, each reading its own endpoint on its own
//! thread: the library used directly.
//!
//! Run as root (or with CAP_NET_RAW):
//!
//! ```sh
//! cargo run --release --example multi_tenant_sniffer -- eth0 10
//! ```
//!
//! (interface, seconds). Tenants: all ARP, TCP port 443 (first 96 bytes
//! only), and everything from 10.0.0.0/8.

use bpf_demux::capture::{LiveCapture, LiveConfig, Senders};
use bpf_demux::cbpf::{text, Program};
use bpf_demux::FilterSet;
use bpf_demux::NamedProgram;
use std::time::Duration;

fn tenant(name: &str, asm: &str, snaplen: Option<u32>) -> NamedProgram {
    let insns = text::parse_asm(asm).expect("valid bpf_asm");
    NamedProgram {
        name: name.into(),
        program: Program::validate(&insns).expect("kernel-valid"),
        snaplen,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let iface = args.next().unwrap_or_else(|| "lo".into());
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);

    let set = FilterSet::new([
        tenant("arp", "ldh [12]\njneq #0x806, drop\nret #-1\ndrop: ret #0", None),
        tenant(
            "https",
            "ldh [12]\njneq #0x800, drop\nldb [23]\njneq #6, drop\nldh [20]\njset #0x1fff, drop, ok\n\
             ok: ldxb 4*([14]&0xf)\nldh [x + 14]\njeq #443, keep\nldh [x + 16]\njeq #443, keep, drop\n\
             keep: ret #262144\ndrop: ret #0",
            Some(96),
        ),
        tenant("net10", "ldh [12]\njneq #0x800, drop\nld [26]\nand #0xff000000\njeq #0x0a000000, keep, drop\nkeep: ret #-1\ndrop: ret #0", None),
    ])
    .expect("three distinct tenants");

    let (senders, endpoints) = Senders::new(
        bpf_demux::capture::TenantSpec::all(set.automaton(), 1024),
        false,
    );
    let capture = match LiveCapture::start(set, senders, &LiveConfig::new(&iface)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("multi_tenant_sniffer: cannot capture on {iface}: {e} (run as root)");
            std::process::exit(2);
        }
    };
    let readers: Vec<_> = endpoints
        .into_iter()
        .map(|ep| {
            std::thread::spawn(move || {
                let (mut frames, mut bytes) = (0u64, 0u64);
                for d in ep.iter() {
                    frames += 1;
                    bytes += d.bytes().len() as u64;
                }
                (ep.name.clone(), frames, bytes, ep.stats().drops)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    let totals = capture.join().expect("capture ran");
    for r in readers {
        let (name, frames, bytes, drops) = r.join().unwrap();
        println!("{name:>6}: {frames} frames, {bytes} bytes, {drops} dropped");
    }
    println!(
        "read {} frames; kernel dropped {}",
        totals.frames, totals.kernel_drops
    );
}

//! Capture-file formats: the same frames as pcapng (microsecond and
//! nanosecond interfaces, several interfaces) and as nanosecond pcap match
//! exactly as the classic pcap they came from. The files are written here,
//! byte by byte from the format specifications, independently of the
//! reader under test.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn pad4(v: &mut Vec<u8>) {
    while v.len() % 4 != 0 {
        v.push(0);
    }
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let len = (12 + body.len()) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

/// pcapng: SHB, two Ethernet IDBs (µs and ns), EPBs alternating between them.
fn write_pcapng(path: &Path, frames: &[(Vec<u8>, u32)]) {
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    out.extend(block(0x0a0d0d0a, &shb));
    for tsresol in [6u8, 9u8] {
        let mut idb = Vec::new();
        idb.extend_from_slice(&1u16.to_le_bytes()); // LINKTYPE_ETHERNET
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&262144u32.to_le_bytes());
        idb.extend_from_slice(&9u16.to_le_bytes()); // if_tsresol
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.push(tsresol);
        pad4(&mut idb);
        idb.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        out.extend(block(1, &idb));
    }
    for (i, (data, orig)) in frames.iter().enumerate() {
        let mut epb = Vec::new();
        epb.extend_from_slice(&((i % 2) as u32).to_le_bytes());
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&(i as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&orig.to_le_bytes());
        epb.extend_from_slice(data);
        pad4(&mut epb);
        out.extend(block(6, &epb));
    }
    std::fs::write(path, out).unwrap();
}

/// Classic pcap with the nanosecond magic, big-endian.
fn write_nano_pcap_be(path: &Path, frames: &[(Vec<u8>, u32)]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b23c4du32.to_be_bytes());
    out.extend_from_slice(&2u16.to_be_bytes());
    out.extend_from_slice(&4u16.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&262144u32.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    for (i, (data, orig)) in frames.iter().enumerate() {
        out.extend_from_slice(&(i as u32).to_be_bytes());
        out.extend_from_slice(&999_999_999u32.to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(&orig.to_be_bytes());
        out.extend_from_slice(data);
    }
    std::fs::write(path, out).unwrap();
}

fn matches(path: &Path) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_bpf-demux"))
        .args(["match", "-f"])
        .arg(repo().join("tests/data/public.filters"))
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // Drop the file name: compare frame numbers and matches.
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_once(':').unwrap().1.to_owned())
        .collect()
}

#[test]
fn pcapng_and_nanosecond_pcap_match_like_the_original() {
    let dir = std::env::temp_dir().join(format!("bpf-demux-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in [
        "babel_update_oobr.pcap",
        "ldp-common-session.pcap",
        "bigtcp-ipv4.pcap",
        "isup.pcap",
    ] {
        let orig = repo().join("tests/data/corpus/pcaps").join(name);
        let frames = frames_of(&orig);
        let ng = dir.join(format!("{name}.pcapng"));
        let nano = dir.join(format!("{name}.nano.pcap"));
        write_pcapng(&ng, &frames);
        write_nano_pcap_be(&nano, &frames);
        let want = matches(&orig);
        assert_eq!(want.len(), frames.len());
        assert_eq!(matches(&ng), want, "{name} as pcapng");
        assert_eq!(matches(&nano), want, "{name} as nanosecond big-endian pcap");
        // Truncated records (caplen < original length) survive the trip.
        let back = frames_of(&ng);
        assert_eq!(back, frames, "{name}: pcapng frames and original lengths");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

//! Frames as each link type captures them, and one expression compared
//! with libpcap on one link type.

use bpf_demux::cbpf::{self, text, FrameMeta, Program};
use bpf_demux::expr;
use bpf_demux::field::{ethernet, ethertype};
use bpf_demux::link::LinkType;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Linux's `AF_INET` and `AF_INET6`, as libpcap expects in NULL and LOOP.
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;

/// `frame` (captured bytes of an Ethernet frame of `orig` bytes on the
/// wire) as a capture of `link` would hold it, with its wire length; `None`
/// when such a capture could not hold it (a non-IP frame on a tun). `i`
/// varies the packet type and interface of the cooked headers.
pub fn convert(link: LinkType, frame: &[u8], orig: u32, i: usize) -> Option<(Vec<u8>, u32)> {
    if frame.len() < ethernet::HEADER_LEN {
        return None;
    }
    let et = u16::from_be_bytes([frame[12], frame[13]]);
    let payload = &frame[ethernet::HEADER_LEN..];
    let dst = &frame[ethernet::DESTINATION];
    let pkttype: u8 = if i % 7 == 3 {
        4 // outgoing
    } else if dst == [0xff; 6] {
        1
    } else if dst[0] & 1 == 1 {
        2
    } else {
        0
    };
    // Cooked captures carry 802.3 frames under protocol 4 (LLC) or 1
    // (raw IPX, `ff ff` after the length).
    let proto = if et as u32 <= 1500 {
        if payload.starts_with(&[0xff, 0xff]) {
            1
        } else {
            4
        }
    } else {
        et
    };
    let mut addr = [0u8; 8];
    addr[..6].copy_from_slice(&frame[ethernet::SOURCE]);
    let ip = |want: Option<u16>| match want {
        Some(t) if t == et => Some(()),
        None if et == ethertype::IPV4 || et == ethertype::IPV6 => Some(()),
        _ => None,
    };
    let mut out = Vec::new();
    match link {
        LinkType::Ethernet => return Some((frame.to_vec(), orig)),
        LinkType::LinuxSll => {
            out.extend_from_slice(&(pkttype as u16).to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
            out.extend_from_slice(&6u16.to_be_bytes());
            out.extend_from_slice(&addr);
            out.extend_from_slice(&proto.to_be_bytes());
        }
        LinkType::LinuxSll2 => {
            out.extend_from_slice(&proto.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(1 + (i % 3) as u32).to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes());
            out.push(pkttype);
            out.push(6);
            out.extend_from_slice(&addr);
        }
        LinkType::Raw => ip(None)?,
        LinkType::Ipv4 => ip(Some(ethertype::IPV4))?,
        LinkType::Ipv6 => ip(Some(ethertype::IPV6))?,
        LinkType::Null | LinkType::Loop => {
            ip(None)?;
            // IPv6 as Linux numbers it, and as the BSDs do (the systems
            // whose captures these link types are: FreeBSD, Darwin, the
            // other BSDs), so both compilations meet frames they accept.
            let af = if et == ethertype::IPV4 {
                AF_INET
            } else {
                [AF_INET6, 28, 30, 24][i % 4]
            };
            out.extend_from_slice(&match link {
                LinkType::Null => af.to_le_bytes(),
                _ => af.to_be_bytes(),
            });
        }
    }
    out.extend_from_slice(payload);
    let wire = orig - ethernet::HEADER_LEN as u32 + link.header_len();
    Some((out, wire))
}

/// libpcap's answer for `e` on `link`: `Err` when it refuses it, else its
/// program (`Err` inside when the kernel's rules refuse the program).
pub fn libpcap(link: LinkType, e: &str) -> Result<Result<Program, String>, String> {
    libpcap_with(&["-y", link.name()], e)
}

/// libpcap's answer for `e` compiled for a capture file (`tcpdump -r
/// FILE -d`): `file` is an empty pcap of the link type.
pub fn libpcap_savefile(file: &Path, e: &str) -> Result<Result<Program, String>, String> {
    libpcap_with(&["-r", &file.display().to_string()], e)
}

/// An empty pcap file of `link` (snaplen 262144, as ours return) in `dir`.
pub fn empty_pcap(dir: &Path, link: LinkType) -> PathBuf {
    let p = dir.join(format!("empty-{}.pcap", link.name()));
    let w = bpf_demux::pcapfile::PcapWriter::with_link(
        std::fs::File::create(&p).unwrap(),
        expr::DEFAULT_SNAPLEN,
        link,
    )
    .unwrap();
    drop(w);
    p
}

fn libpcap_with(how: &[&str], e: &str) -> Result<Result<Program, String>, String> {
    let out = Command::new("tcpdump")
        .args(["-ddd"])
        .args(how)
        .args(["--", e])
        .output()
        .expect("tcpdump runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let insns = text::parse_ddd(&String::from_utf8(out.stdout).unwrap()).unwrap();
    Ok(Program::validate(&insns).map_err(|e| e.to_string()))
}

/// `ethernet` frames (data, wire length) as a capture of `link` holds
/// them, with what the link header tells a filter (those a capture of
/// `link` could not hold left out).
pub fn frames_for(link: LinkType, ethernet: &[(Vec<u8>, u32)]) -> Vec<(Vec<u8>, FrameMeta)> {
    ethernet
        .iter()
        .enumerate()
        .filter_map(|(i, (d, o))| convert(link, d, *o, i))
        .map(|(d, o)| {
            let m = link.meta(&d, o);
            (d, m)
        })
        .collect()
}

/// What [`compare_on_link`] found.
pub struct Tally {
    /// Expressions both compiled, compared on every frame.
    pub compared: usize,
    /// Expressions both refused.
    pub refused: usize,
    /// Compared expressions that accept some frame.
    pub accepting: usize,
}

/// Compiles each of `exprs` for `link` here and with libpcap (`-y`, or
/// with `savefile` an empty pcap of the link type, as for reading a
/// capture file: `-r`); both must refuse it, or both compile it and give
/// every frame the same answer (both programs run by the reference
/// interpreter). Differences are pushed to `failures`; the tally is
/// printed.
pub fn compare_on_link(
    link: LinkType,
    savefile: Option<&Path>,
    exprs: &[&str],
    frames: &[(Vec<u8>, FrameMeta)],
    failures: &mut Vec<String>,
) -> Tally {
    let (mut compared, mut refused, mut accepting) = (0, 0, 0);
    let link_name = match savefile {
        Some(_) => format!("{link} (file)"),
        None => link.to_string(),
    };
    for e in exprs {
        let opts = expr::Options {
            link,
            savefile: savefile.is_some(),
            ..expr::Options::default()
        };
        let ours = expr::compile_with(e, &opts);
        let theirs = match savefile {
            Some(f) => libpcap_savefile(f, e),
            None => libpcap(link, e),
        };
        let link = &link_name;
        match (theirs, ours) {
            (Err(_), Err(_)) => refused += 1,
            (Err(msg), Ok(_)) => {
                failures.push(format!("{link} `{e}`: libpcap refuses ({msg}), we accept"))
            }
            (Ok(_), Err(err)) => failures.push(format!("{link} `{e}`: we refuse: {err}")),
            (Ok(Err(_)), Ok(_)) => {}
            (Ok(Ok(theirs)), Ok(insns)) => {
                let ours = match Program::validate(&insns) {
                    Ok(p) => p,
                    Err(err) => {
                        failures.push(format!("{link} `{e}`: our program is invalid: {err}"));
                        continue;
                    }
                };
                compared += 1;
                let mut any = false;
                for (i, (f, m)) in frames.iter().enumerate() {
                    let (a, b) = (cbpf::run(&ours, f, m), cbpf::run(&theirs, f, m));
                    any |= a != 0;
                    if a != b {
                        failures.push(format!("{link} `{e}`: frame {i}: ours {a}, libpcap {b}"));
                        break;
                    }
                }
                accepting += any as usize;
            }
        }
    }
    eprintln!("{link_name}: {compared} compared ({accepting} accept some frame), {refused} refused by both");
    Tally {
        compared,
        refused,
        accepting,
    }
}

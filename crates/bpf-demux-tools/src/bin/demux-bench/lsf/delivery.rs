//! Experiment 3, delivery: the cost per frame of getting a queued frame
//! into a user-space buffer, against the filter's size and the snaplen.
//!
//! - `recvfrom`: one kernel socket, the seed's path (`packet_recvmsg`,
//!   `skb_copy_datagram_iter`, freeing the clone): one system call a frame.
//! - `tpacket_v3`: a TPACKET_V3 ring with the same filter: the frame is
//!   already in shared memory; walking the blocks and copying it out costs
//!   a system call per block at most.
//! - `endpoint`: a bpf-demux tenant with the same filter: its endpoint's
//!   queue (after the ring walk and the merged match, which are receive
//!   costs, experiment 2).
//!
//! Each run queues the same frames (IPv4 frames of 1514 bytes to another
//! host's MAC, so the stack drops them and only the sniffers see them),
//! waits until everything is queued, then times the draining alone: wall
//! clock and the reading thread's CPU. The filter (branchy shape, every
//! path accepting with `ret #snaplen`) runs at receive time, so its size
//! should not matter here; the snaplen sets the bytes copied. Every path
//! must hand over exactly the frames sent, cut to the snaplen (the sent
//! frames are the oracle).

use super::netpair::send_from;
use super::receive::quiet;
use super::shapes::Shape;
use super::Spread;
use crate::live::digest;
use bpf_demux::capture::sys::ring::{Ring, RingConfig};
use bpf_demux::capture::sys::{if_index, thread_cpu_time, PacketSocket};
use bpf_demux::capture::{LiveCapture, LiveConfig, Senders};
use bpf_demux::cbpf::Program;
use bpf_demux::FilterSet;
use bpf_demux::NamedProgram;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Recvfrom,
    TpacketV3,
    Endpoint,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Recvfrom => "recvfrom",
            Via::TpacketV3 => "tpacket_v3",
            Via::Endpoint => "bpf-demux endpoint",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DeliveryRow {
    pub via: Via,
    pub insns: usize,
    pub snaplen: u32,
    pub frames: usize,
    /// Reading thread's CPU per frame, ns.
    pub cpu_ns: Spread,
    /// Wall clock per frame, ns.
    pub wall_ns: Spread,
}

const FRAME_LEN: usize = 1514;

/// `count` distinct frames of FRAME_LEN bytes to another host's MAC.
fn frames(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            use bpf_demux::field::{at, ethernet, ethertype, ip_proto, ipv4};
            const IP: usize = ethernet::HEADER_LEN;
            const PAYLOAD: usize = IP + ipv4::HEADER_LEN;
            let mut f = vec![0u8; FRAME_LEN];
            f[ethernet::DESTINATION].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
            f[ethernet::SOURCE].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x0a]);
            f[ethernet::ETHERTYPE].copy_from_slice(&ethertype::IPV4.to_be_bytes());
            f[IP + ipv4::VER_IHL] = 0x45;
            f[at(IP, ipv4::LENGTH)].copy_from_slice(&((FRAME_LEN - IP) as u16).to_be_bytes());
            f[IP + ipv4::TTL] = 64;
            f[IP + ipv4::PROTOCOL] = ip_proto::UDP;
            f[at(IP, ipv4::SRC)].copy_from_slice(&[10, 77, 0, 1]);
            f[at(IP, ipv4::DST)].copy_from_slice(&[10, 78, 0, 9]);
            for (j, b) in f[PAYLOAD..].iter_mut().enumerate() {
                *b = (i.wrapping_mul(31) + j) as u8;
            }
            // A sequence number, so a lost or reordered frame shows.
            f[PAYLOAD..PAYLOAD + 8].copy_from_slice(&(i as u64).to_be_bytes());
            f
        })
        .collect()
}

/// Times `drain` (which returns frames read and their digest): (cpu ns,
/// wall ns) per frame, checked against `want`.
fn timed(
    label: &str,
    want: (u64, u64),
    drain: impl FnOnce() -> Result<(u64, u64), String>,
) -> Result<(f64, f64), String> {
    let (t0, c0) = (Instant::now(), thread_cpu_time());
    let got = drain()?;
    let (wall, cpu) = (t0.elapsed(), thread_cpu_time() - c0);
    if got != want {
        return Err(format!(
            "DISAGREE: {label}: read {} frames, {} were sent (or the bytes differ from the sent frames cut to the snaplen)",
            got.0, want.0
        ));
    }
    let n = want.0.max(1) as f64;
    Ok((cpu.as_nanos() as f64 / n, wall.as_nanos() as f64 / n))
}

fn one(
    via: Via,
    program: &Program,
    snaplen: u32,
    sent: &[Vec<u8>],
    tx_ns: &Path,
) -> Result<(f64, f64), String> {
    let cut = (snaplen as usize).min(FRAME_LEN);
    let mut want = (0, 0);
    for f in sent {
        digest(&mut want, &f[..cut]);
    }
    let label = format!(
        "{} {} instructions snaplen {snaplen}",
        via.name(),
        program.len()
    );
    let vb = if_index("vb").map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1 << 16];
    match via {
        Via::Recvfrom => {
            let mut s = PacketSocket::open().map_err(|e| e.to_string())?;
            s.attach_filter(program.insns())
                .map_err(|e| e.to_string())?;
            s.set_rcvbuf(256 << 20).map_err(|e| e.to_string())?;
            s.bind(vb).map_err(|e| e.to_string())?;
            send_from(tx_ns, sent, None)?;
            std::thread::sleep(Duration::from_millis(50));
            timed(&label, want, || {
                let mut acc = (0, 0);
                while let Some(r) = s.try_recv(&mut buf).map_err(|e| e.to_string())? {
                    digest(&mut acc, &buf[..r.copied]);
                }
                Ok(acc)
            })
        }
        Via::TpacketV3 => {
            let cfg = RingConfig {
                block_count: 16,
                ..RingConfig::default()
            };
            let mut ring =
                Ring::open(vb, &cfg, Some(program.insns())).map_err(|e| e.to_string())?;
            send_from(tx_ns, sent, None)?;
            // Past the block retire timeout (10 ms): every block is ours.
            std::thread::sleep(Duration::from_millis(50));
            timed(&label, want, || {
                let mut acc = (0, 0);
                loop {
                    let n = ring
                        .next_block(Duration::ZERO, |f| {
                            buf[..f.data.len()].copy_from_slice(f.data);
                            digest(&mut acc, &buf[..f.data.len()]);
                        })
                        .map_err(|e| e.to_string())?;
                    if n == 0 {
                        break;
                    }
                }
                Ok(acc)
            })
        }
        Via::Endpoint => {
            let set = FilterSet::new([NamedProgram {
                name: "t".into(),
                program: program.clone(),
                snaplen: None,
            }])
            .map_err(|e| e.to_string())?;
            let (senders, eps) = Senders::new(
                bpf_demux::capture::TenantSpec::all(set.automaton(), usize::MAX),
                false,
            );
            let mut cfg = LiveConfig::new("vb");
            cfg.reinsert_vlan = false;
            let live =
                LiveCapture::start(set, senders, &cfg).map_err(|e| format!("capture: {e}"))?;
            send_from(tx_ns, sent, None)?;
            quiet(&live);
            let r = timed(&label, want, || {
                let mut acc = (0, 0);
                while let Ok(d) = eps[0].try_recv() {
                    let b = d.bytes();
                    buf[..b.len()].copy_from_slice(b);
                    digest(&mut acc, &buf[..b.len()]);
                }
                Ok(acc)
            });
            live.join().map_err(|e| e.to_string())?;
            r
        }
    }
}

pub fn run(quick: bool, reps: usize, tx_ns: &Path) -> Result<Vec<DeliveryRow>, String> {
    let sizes: &[usize] = if quick {
        &[1, 256]
    } else {
        &[1, 16, 256, 4096]
    };
    let count = if quick { 1000 } else { 20_000 };
    let sent = frames(count);
    let mut rows = Vec::new();
    for via in [Via::Recvfrom, Via::TpacketV3, Via::Endpoint] {
        for &insns in sizes {
            for snaplen in [64u32, FRAME_LEN as u32] {
                super::progress(&format!(
                    "delivery {} {insns} instructions snaplen {snaplen}",
                    via.name()
                ));
                let program = Program::validate(&Shape::Branchy.program(insns, snaplen, true))
                    .map_err(|e| e.to_string())?;
                let (mut cpu, mut wall) = (Vec::new(), Vec::new());
                for _ in 0..reps {
                    let (c, w) = one(via, &program, snaplen, &sent, tx_ns)?;
                    cpu.push(c);
                    wall.push(w);
                }
                rows.push(DeliveryRow {
                    via,
                    insns,
                    snaplen,
                    frames: count,
                    cpu_ns: Spread::of(&cpu),
                    wall_ns: Spread::of(&wall),
                });
            }
        }
    }
    super::progress_done();
    Ok(rows)
}

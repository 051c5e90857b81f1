//! Built-in workloads for benchmarks and tests: tenant filter families,
//! generated as cBPF in Rust (shaped exactly like libpcap's output for the
//! same expression), and a synthetic traffic mix.
//!
//! Families:
//! - `hosts`: `host A`
//! - `ports`: `tcp port P or udp port P`
//! - `nets`: `net A/len and port P` (IPv4)
//! - `vlan-hosts`: `vlan V and host A` (tag in the frame, as offline)
//! - `mixed`: the four above, round robin
//!
//! Tenant `i` of a family gets values derived from `i`; the traffic draws
//! its addresses, ports and VLANs from the same spaces, so that a realistic
//! share of frames matches some tenant and most frames match few.

use bpf_demux::cbpf::text::parse_asm;
use bpf_demux::cbpf::Program;
use bpf_demux::NamedProgram;
use std::net::Ipv4Addr;

/// libpcap's default snaplen, returned by accepting programs.
pub use bpf_demux::expr::DEFAULT_SNAPLEN as SNAPLEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Hosts,
    Ports,
    Nets,
    VlanHosts,
    Mixed,
}

impl Family {
    pub const ALL: [Family; 5] = [
        Family::Hosts,
        Family::Ports,
        Family::Nets,
        Family::VlanHosts,
        Family::Mixed,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Family::Hosts => "hosts",
            Family::Ports => "ports",
            Family::Nets => "nets",
            Family::VlanHosts => "vlan-hosts",
            Family::Mixed => "mixed",
        }
    }
    pub fn from_name(s: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == s)
    }
    /// The expression tenant `i` stands for (for humans).
    pub fn expression(self, i: usize) -> String {
        match self {
            Family::Hosts => format!("host {}", host_addr(i)),
            Family::Ports => format!("tcp port {p} or udp port {p}", p = port(i)),
            Family::Nets => {
                let (a, len) = net(i);
                format!("net {a}/{len} and port {}", port(i))
            }
            Family::VlanHosts => format!("vlan {} and host {}", vlan(i), host_addr(i)),
            Family::Mixed => Family::ALL[i % 4].expression(i / 4),
        }
    }
    /// The program of tenant `i`.
    pub fn program(self, i: usize) -> Program {
        let text = match self {
            Family::Hosts => host_asm(host_addr(i)),
            Family::Ports => port_asm(port(i)),
            Family::Nets => {
                let (a, len) = net(i);
                net_port_asm(a, len, port(i))
            }
            Family::VlanHosts => vlan_host_asm(vlan(i), host_addr(i)),
            Family::Mixed => return Family::ALL[i % 4].program(i / 4),
        };
        assemble(&text)
    }
    /// `n` tenants named `<family>-<i>`.
    pub fn tenants(self, n: usize) -> Vec<NamedProgram> {
        (0..n)
            .map(|i| NamedProgram {
                name: format!("{}-{i}", self.name()),
                program: self.program(i),
                snaplen: None,
            })
            .collect()
    }
}

/// Address of host tenant `i`: 10.(i / 65536).(i / 256).(i % 256), offset to avoid .0.
pub fn host_addr(i: usize) -> Ipv4Addr {
    let v = 0x0a00_0000u32 + 1 + i as u32;
    Ipv4Addr::from(v)
}

/// Port of tenant `i`: 1024 + i, wrapping below 65536.
pub fn port(i: usize) -> u16 {
    (1024 + i % 64000) as u16
}

/// VLAN of tenant `i`: 1..=4094.
pub fn vlan(i: usize) -> u16 {
    (1 + i % 4094) as u16
}

/// Network of tenant `i`: a /24 inside 10.0.0.0/8 (or /16 for every 8th).
pub fn net(i: usize) -> (Ipv4Addr, u8) {
    if i % 8 == 7 {
        (
            Ipv4Addr::from(0x0a00_0000u32 + (((i / 8) as u32 % 256) << 16)),
            16,
        )
    } else {
        (
            Ipv4Addr::from(0x0a00_0000u32 + (((i as u32) % 65536) << 8)),
            24,
        )
    }
}

/// `host A`, as libpcap compiles it.
pub fn host_program(a: Ipv4Addr) -> Program {
    assemble(&host_asm(a))
}

/// `tcp port P or udp port P`, as libpcap compiles it.
pub fn port_program(p: u16) -> Program {
    assemble(&port_asm(p))
}

fn assemble(text: &str) -> Program {
    let insns = parse_asm(text).expect("generated asm parses");
    Program::validate(&insns).expect("generated program is valid")
}

fn host_asm(a: Ipv4Addr) -> String {
    let a = u32::from(a);
    format!(
        "ldh [12]\njeq #0x800, ip, notip\n\
         ip: ld [26]\njeq #{a:#x}, keep, ipdst\nipdst: ld [30]\njeq #{a:#x}, keep, drop\n\
         notip: jeq #0x806, arp, rarp\nrarp: jeq #0x8035, arp, drop\n\
         arp: ld [28]\njeq #{a:#x}, keep, arpdst\narpdst: ld [38]\njeq #{a:#x}, keep, drop\n\
         keep: ret #{SNAPLEN}\ndrop: ret #0\n"
    )
}

fn port_asm(p: u16) -> String {
    format!(
        "ldh [12]\njeq #0x86dd, v6, v4\n\
         v6: ldb [20]\njeq #0x6, v6p, v6u\nv6u: jeq #0x11, v6p, drop\n\
         v6p: ldh [54]\njeq #{p:#x}, keep, v6d\nv6d: ldh [56]\njeq #{p:#x}, keep, drop\n\
         v4: jeq #0x800, v4p, drop\nv4p: ldb [23]\njeq #0x6, v4f, v4u\nv4u: jeq #0x11, v4f, drop\n\
         v4f: ldh [20]\njset #0x1fff, drop, v4h\nv4h: ldxb 4*([14]&0xf)\nldh [x + 14]\njeq #{p:#x}, keep, v4d\n\
         v4d: ldh [x + 16]\njeq #{p:#x}, keep, drop\n\
         keep: ret #{SNAPLEN}\ndrop: ret #0\n"
    )
}

fn net_port_asm(a: Ipv4Addr, len: u8, p: u16) -> String {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    };
    let a = u32::from(a) & mask;
    format!(
        "ldh [12]\njneq #0x800, drop\n\
         ld [26]\nand #{mask:#x}\njeq #{a:#x}, proto, dst\ndst: ld [30]\nand #{mask:#x}\njneq #{a:#x}, drop\n\
         proto: ldb [23]\njeq #0x84, frag, tcp\ntcp: jeq #0x6, frag, udp\nudp: jneq #0x11, drop\n\
         frag: ldh [20]\njset #0x1fff, drop, hdr\nhdr: ldxb 4*([14]&0xf)\nldh [x + 14]\njeq #{p:#x}, keep, dport\n\
         dport: ldh [x + 16]\njeq #{p:#x}, keep, drop\n\
         keep: ret #{SNAPLEN}\ndrop: ret #0\n"
    )
}

fn vlan_host_asm(v: u16, a: Ipv4Addr) -> String {
    let a = u32::from(a);
    format!(
        "ldh [12]\njeq #0x8100, tag, ad\nad: jeq #0x88a8, tag, qq\nqq: jneq #0x9100, drop\n\
         tag: ldh [14]\nand #0xfff\njneq #{v:#x}, drop\n\
         ldh [16]\njeq #0x800, ip, notip\n\
         ip: ld [30]\njeq #{a:#x}, keep, ipdst\nipdst: ld [34]\njeq #{a:#x}, keep, drop\n\
         notip: jeq #0x806, arp, rarp\nrarp: jeq #0x8035, arp, drop\n\
         arp: ld [32]\njeq #{a:#x}, keep, arpdst\narpdst: ld [42]\njeq #{a:#x}, keep, drop\n\
         keep: ret #{SNAPLEN}\ndrop: ret #0\n"
    )
}

/// A small deterministic PRNG (xorshift64*), so runs are repeatable.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// One generated frame: the captured bytes and the wire length.
#[derive(Clone, Debug)]
pub struct Frame {
    pub data: Vec<u8>,
    pub wire_len: u32,
}

/// `count` frames of a realistic mix: IPv4 TCP/UDP (most), IPv6 TCP/UDP,
/// ICMP, ARP, 802.1Q-tagged IPv4, a few truncated captures. Addresses,
/// ports and VLANs are drawn from the tenant spaces of `tenants` tenants:
/// about a quarter of frames involve some tenant's value.
pub fn traffic(count: usize, tenants: usize, seed: u64) -> Vec<Frame> {
    traffic_with_share(count, tenants, seed, 25)
}

/// [`traffic`] where each address or port drawn is some tenant's `share`
/// percent of the time (the rest far outside every tenant's space), so
/// about `share`% of frames involve some tenant's value.
pub fn traffic_with_share(count: usize, tenants: usize, seed: u64, share: u64) -> Vec<Frame> {
    let mut r = Rng::new(seed);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let pick = |r: &mut Rng| -> usize {
            // A tenant's index `share`% of the time, else far outside.
            if r.below(100) < share {
                r.below(tenants.max(1) as u64) as usize
            } else {
                100_000 + r.below(1_000_000) as usize
            }
        };
        // A frame "belongs" to one tenant value a quarter of the time: its
        // host as source, an address of its net as destination, its port.
        let t = pick(&mut r);
        let src = host_addr(t);
        let dst = Ipv4Addr::from(u32::from(net(t).0) + 1 + r.below(200) as u32);
        let (sp, dp) = (port(pick(&mut r)), port(t));
        let kind = r.below(100);
        let mut f = Vec::with_capacity(128);
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]);
        let l4 = |proto: u8, r: &mut Rng| -> Vec<u8> {
            let payload = r.below(200) as usize;
            let mut b = Vec::new();
            b.extend_from_slice(&sp.to_be_bytes());
            b.extend_from_slice(&dp.to_be_bytes());
            match proto {
                6 => {
                    b.extend_from_slice(&[
                        0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
                    ]);
                }
                17 => {
                    let len = (8 + payload) as u16;
                    b.extend_from_slice(&len.to_be_bytes());
                    b.extend_from_slice(&[0, 0]);
                }
                _ => {}
            }
            b.resize(b.len() + payload, 0xab);
            b
        };
        let ipv4 = |proto: u8, body: Vec<u8>| -> Vec<u8> {
            let total = (20 + body.len()) as u16;
            let mut h = vec![0x45, 0];
            h.extend_from_slice(&total.to_be_bytes());
            h.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
            h.extend_from_slice(&src.octets());
            h.extend_from_slice(&dst.octets());
            h.extend(body);
            h
        };
        match kind {
            0..=54 => {
                f.extend_from_slice(&[0x08, 0x00]);
                let proto = if kind < 30 { 6 } else { 17 };
                f.extend(ipv4(proto, l4(proto, &mut r)));
            }
            55..=69 => {
                f.extend_from_slice(&[0x86, 0xdd]);
                let proto = if kind < 62 { 6 } else { 17 };
                let body = l4(proto, &mut r);
                let mut h = vec![0x60, 0, 0, 0];
                h.extend_from_slice(&(body.len() as u16).to_be_bytes());
                h.extend_from_slice(&[proto, 64]);
                h.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0]);
                h.extend_from_slice(&src.octets());
                h.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0]);
                h.extend_from_slice(&dst.octets());
                h.extend(body);
                f.extend(h);
            }
            70..=74 => {
                f.extend_from_slice(&[0x08, 0x00]);
                f.extend(ipv4(
                    1,
                    vec![8, 0, 0, 0, 0, 1, 0, 1, 0xde, 0xad, 0xbe, 0xef],
                ));
            }
            75..=82 => {
                f[..6].copy_from_slice(&[0xff; 6]);
                f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, 0x02, 0, 0, 0, 0, 1]);
                f.extend_from_slice(&src.octets());
                f.extend_from_slice(&[0; 6]);
                f.extend_from_slice(&dst.octets());
            }
            _ => {
                f.extend_from_slice(&[0x81, 0x00]);
                f.extend_from_slice(&vlan(t).to_be_bytes());
                f.extend_from_slice(&[0x08, 0x00]);
                f.extend(ipv4(17, l4(17, &mut r)));
            }
        }
        if f.len() < 60 {
            f.resize(60, 0);
        }
        let wire = f.len() as u32;
        if r.below(20) == 0 {
            // A truncated capture (snaplen 54).
            f.truncate(54);
        }
        out.push(Frame {
            data: f,
            wire_len: wire,
        });
    }
    out
}

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
use bpf_demux::field::{arp, ethernet, ethertype, ip_proto, ipv4, ipv6, l4, tcp, udp, vlan};
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

// Offsets in an untagged Ethernet frame (and, `TAG_*`, after one 802.1Q
// tag), from `field`, as libpcap's code for these expressions loads them.
const ETHERTYPE: usize = ethernet::ETHERTYPE.start;
const IP: usize = ethernet::HEADER_LEN;
const IP_SRC: usize = IP + ipv4::SRC.start;
const IP_DST: usize = IP + ipv4::DST.start;
const IP_PROTO: usize = IP + ipv4::PROTOCOL;
const IP_FRAG: usize = IP + ipv4::FLAGS_FRAG.start;
const IP6_NEXT: usize = IP + ipv6::NEXT_HEADER;
const IP6_SPORT: usize = IP + ipv6::HEADER_LEN + l4::SRC_PORT.start;
const IP6_DPORT: usize = IP + ipv6::HEADER_LEN + l4::DST_PORT.start;
const ARP_SPA: usize = IP + arp::SPA.start;
const ARP_TPA: usize = IP + arp::TPA.start;
const TAG: usize = ethernet::HEADER_LEN;
const TAG_ETHERTYPE: usize = TAG + vlan::ETHERTYPE.start;
const TAG_IP: usize = TAG + vlan::HEADER_LEN;

fn host_asm(a: Ipv4Addr) -> String {
    let a = u32::from(a);
    let (ip4, arp, rarp) = (ethertype::IPV4, ethertype::ARP, ethertype::RARP);
    format!(
        "ldh [{ETHERTYPE}]\njeq #{ip4:#x}, ip, notip\n\
         ip: ld [{IP_SRC}]\njeq #{a:#x}, keep, ipdst\nipdst: ld [{IP_DST}]\njeq #{a:#x}, keep, drop\n\
         notip: jeq #{arp:#x}, arp, rarp\nrarp: jeq #{rarp:#x}, arp, drop\n\
         arp: ld [{ARP_SPA}]\njeq #{a:#x}, keep, arpdst\narpdst: ld [{ARP_TPA}]\njeq #{a:#x}, keep, drop\n\
         keep: ret #{SNAPLEN}\ndrop: ret #0\n"
    )
}

fn port_asm(p: u16) -> String {
    let (ip4, ip6) = (ethertype::IPV4, ethertype::IPV6);
    let (tcp, udp) = (ip_proto::TCP, ip_proto::UDP);
    let frag = ipv4::FRAG_MASK;
    let (sport, dport) = (l4::SRC_PORT.start, l4::DST_PORT.start);
    format!(
        "ldh [{ETHERTYPE}]\njeq #{ip6:#x}, v6, v4\n\
         v6: ldb [{IP6_NEXT}]\njeq #{tcp:#x}, v6p, v6u\nv6u: jeq #{udp:#x}, v6p, drop\n\
         v6p: ldh [{IP6_SPORT}]\njeq #{p:#x}, keep, v6d\nv6d: ldh [{IP6_DPORT}]\njeq #{p:#x}, keep, drop\n\
         v4: jeq #{ip4:#x}, v4p, drop\nv4p: ldb [{IP_PROTO}]\njeq #{tcp:#x}, v4f, v4u\nv4u: jeq #{udp:#x}, v4f, drop\n\
         v4f: ldh [{IP_FRAG}]\njset #{frag:#x}, drop, v4h\nv4h: ldxb 4*([{IP}]&0xf)\nldh [x + {}]\njeq #{p:#x}, keep, v4d\n\
         v4d: ldh [x + {}]\njeq #{p:#x}, keep, drop\n\
         keep: ret #{SNAPLEN}\ndrop: ret #0\n",
        IP + sport,
        IP + dport,
    )
}

fn net_port_asm(a: Ipv4Addr, len: u8, p: u16) -> String {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    };
    let a = u32::from(a) & mask;
    let ip4 = ethertype::IPV4;
    let (tcp, udp, sctp) = (ip_proto::TCP, ip_proto::UDP, ip_proto::SCTP);
    let frag = ipv4::FRAG_MASK;
    let (sport, dport) = (IP + l4::SRC_PORT.start, IP + l4::DST_PORT.start);
    format!(
        "ldh [{ETHERTYPE}]\njneq #{ip4:#x}, drop\n\
         ld [{IP_SRC}]\nand #{mask:#x}\njeq #{a:#x}, proto, dst\ndst: ld [{IP_DST}]\nand #{mask:#x}\njneq #{a:#x}, drop\n\
         proto: ldb [{IP_PROTO}]\njeq #{sctp:#x}, frag, tcp\ntcp: jeq #{tcp:#x}, frag, udp\nudp: jneq #{udp:#x}, drop\n\
         frag: ldh [{IP_FRAG}]\njset #{frag:#x}, drop, hdr\nhdr: ldxb 4*([{IP}]&0xf)\nldh [x + {sport}]\njeq #{p:#x}, keep, dport\n\
         dport: ldh [x + {dport}]\njeq #{p:#x}, keep, drop\n\
         keep: ret #{SNAPLEN}\ndrop: ret #0\n"
    )
}

fn vlan_host_asm(v: u16, a: Ipv4Addr) -> String {
    let a = u32::from(a);
    let (ip4, arp, rarp) = (ethertype::IPV4, ethertype::ARP, ethertype::RARP);
    let (dot1q, qinq, vid) = (ethertype::VLAN, ethertype::QINQ, vlan::VID_MASK);
    let (src, dst) = (TAG_IP + ipv4::SRC.start, TAG_IP + ipv4::DST.start);
    let (spa, tpa) = (TAG_IP + arp::SPA.start, TAG_IP + arp::TPA.start);
    format!(
        "ldh [{ETHERTYPE}]\njeq #{dot1q:#x}, tag, ad\nad: jeq #{qinq:#x}, tag, qq\nqq: jneq #0x9100, drop\n\
         tag: ldh [{TAG}]\nand #{vid:#x}\njneq #{v:#x}, drop\n\
         ldh [{TAG_ETHERTYPE}]\njeq #{ip4:#x}, ip, notip\n\
         ip: ld [{src}]\njeq #{a:#x}, keep, ipdst\nipdst: ld [{dst}]\njeq #{a:#x}, keep, drop\n\
         notip: jeq #{arp:#x}, arp, rarp\nrarp: jeq #{rarp:#x}, arp, drop\n\
         arp: ld [{spa}]\njeq #{a:#x}, keep, arpdst\narpdst: ld [{tpa}]\njeq #{a:#x}, keep, drop\n\
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
        let mut f = vec![0u8; ethernet::HEADER_LEN];
        f[ethernet::DESTINATION].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        f[ethernet::SOURCE].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        let l4 = |proto: u8, r: &mut Rng| -> Vec<u8> {
            let payload = r.below(200) as usize;
            let len = match proto {
                ip_proto::TCP => tcp::HEADER_LEN,
                _ => udp::HEADER_LEN,
            };
            let mut b = vec![0u8; len];
            b[l4::SRC_PORT].copy_from_slice(&sp.to_be_bytes());
            b[l4::DST_PORT].copy_from_slice(&dp.to_be_bytes());
            if proto == ip_proto::TCP {
                b[7] = 1; // sequence number 1
                b[tcp::DATA_OFFSET] = 0x50;
                b[tcp::FLAGS] = 0x18; // PSH ACK
                b[14..16].copy_from_slice(&[0xff, 0xff]); // window
            } else {
                b[udp::LENGTH].copy_from_slice(&((udp::HEADER_LEN + payload) as u16).to_be_bytes());
            }
            b.resize(b.len() + payload, 0xab);
            b
        };
        let ip4 = |proto: u8, body: Vec<u8>| -> Vec<u8> {
            let mut h = vec![0u8; ipv4::HEADER_LEN];
            h[ipv4::VER_IHL] = 0x45;
            h[ipv4::LENGTH]
                .copy_from_slice(&((ipv4::HEADER_LEN + body.len()) as u16).to_be_bytes());
            h[ipv4::IDENT].copy_from_slice(&1u16.to_be_bytes());
            h[ipv4::FLAGS_FRAG].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
            h[ipv4::TTL] = 64;
            h[ipv4::PROTOCOL] = proto;
            h[ipv4::SRC].copy_from_slice(&src.octets());
            h[ipv4::DST].copy_from_slice(&dst.octets());
            h.extend(body);
            h
        };
        // Documentation addresses 2001:db8::/96 with the IPv4 one last.
        let v6 = |a: Ipv4Addr| {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            b[12..].copy_from_slice(&a.octets());
            b
        };
        let set_type =
            |f: &mut Vec<u8>, t: u16| f[ethernet::ETHERTYPE].copy_from_slice(&t.to_be_bytes());
        match kind {
            0..=54 => {
                set_type(&mut f, ethertype::IPV4);
                let proto = if kind < 30 {
                    ip_proto::TCP
                } else {
                    ip_proto::UDP
                };
                f.extend(ip4(proto, l4(proto, &mut r)));
            }
            55..=69 => {
                set_type(&mut f, ethertype::IPV6);
                let proto = if kind < 62 {
                    ip_proto::TCP
                } else {
                    ip_proto::UDP
                };
                let body = l4(proto, &mut r);
                let mut h = vec![0u8; ipv6::HEADER_LEN];
                h[0] = 0x60; // version 6
                h[ipv6::PAYLOAD_LEN].copy_from_slice(&(body.len() as u16).to_be_bytes());
                h[ipv6::NEXT_HEADER] = proto;
                h[ipv6::HOP_LIMIT] = 64;
                h[ipv6::SRC].copy_from_slice(&v6(src));
                h[ipv6::DST].copy_from_slice(&v6(dst));
                h.extend(body);
                f.extend(h);
            }
            70..=74 => {
                set_type(&mut f, ethertype::IPV4);
                // An echo request: type 8, id 1, sequence 1, 4 bytes of data.
                f.extend(ip4(
                    ip_proto::ICMP,
                    vec![8, 0, 0, 0, 0, 1, 0, 1, 0xde, 0xad, 0xbe, 0xef],
                ));
            }
            75..=82 => {
                f[ethernet::DESTINATION].copy_from_slice(&[0xff; 6]);
                set_type(&mut f, ethertype::ARP);
                let mut a = vec![0u8; arp::HEADER_LEN];
                // Ethernet/IPv4, request.
                a[arp::FIXED].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
                a[arp::SHA].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
                a[arp::SPA].copy_from_slice(&src.octets());
                a[arp::TPA].copy_from_slice(&dst.octets());
                f.extend(a);
            }
            _ => {
                set_type(&mut f, ethertype::VLAN);
                let mut tag = vec![0u8; vlan::HEADER_LEN];
                tag[vlan::TCI].copy_from_slice(&vlan(t).to_be_bytes());
                tag[vlan::ETHERTYPE].copy_from_slice(&ethertype::IPV4.to_be_bytes());
                f.extend(tag);
                f.extend(ip4(ip_proto::UDP, l4(ip_proto::UDP, &mut r)));
            }
        }
        if f.len() < ethernet::MIN_FRAME {
            f.resize(ethernet::MIN_FRAME, 0);
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

//! The programs of `--lsf`: two shapes of any length, and the snaplen
//! rewrite libpcap's `-s` does.
//!
//! - **straight**: a body without jumps (byte loads, additions, `tax`,
//!   `add x`, as a checksum or a header walk computes), then one compare.
//! - **branchy**: `ldh [12]`, then a test with two targets at every other
//!   instruction (`jeq #k, 0, 1; ret #accept`), as libpcap emits a long
//!   `or` of EtherTypes or ports.
//!
//! Both load bytes below offset 64 only, so they run to their end on any
//! frame of 64 bytes or more. `accept_all` makes every path accept (for
//! the delivery experiment); otherwise only frames of EtherType 0x9000+i
//! (which no traffic here carries) are accepted.

use bpf_demux::cbpf::opcode::code;
use bpf_demux::cbpf::Insn;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    Straight,
    Branchy,
}

impl Shape {
    pub const ALL: [Shape; 2] = [Shape::Straight, Shape::Branchy];
    pub fn name(self) -> &'static str {
        match self {
            Shape::Straight => "straight",
            Shape::Branchy => "branchy",
        }
    }

    /// A valid program of exactly `n` instructions (n >= 1).
    pub fn program(self, n: usize, accept: u32, accept_all: bool) -> Vec<Insn> {
        let ret = |k| Insn::stmt(code::RET | code::K, k);
        let reject = if accept_all { accept } else { 0 };
        if n <= 1 {
            return vec![ret(accept)];
        }
        let mut p = Vec::with_capacity(n);
        match self {
            Shape::Straight => {
                // Body, then `jeq #k, 0, 1; ret #accept; ret #reject` (3),
                // or just `ret` when too short for the compare.
                let tail = if n >= 4 { 3 } else { 1 };
                for i in 0..n - tail {
                    p.push(match i % 4 {
                        0 => Insn::stmt(code::LD | code::B | code::ABS, (i % 64) as u32),
                        1 => Insn::stmt(code::ALU | code::ADD | code::K, i as u32),
                        2 => Insn::stmt(code::MISC | code::TAX, 0),
                        _ => Insn::stmt(code::ALU | code::ADD | code::X, 0),
                    });
                }
                if tail == 3 {
                    p.push(Insn::jump(code::JMP | code::JEQ | code::K, 0x9000, 0, 1));
                    p.push(ret(accept));
                    p.push(ret(reject));
                } else {
                    p.push(ret(accept));
                }
            }
            Shape::Branchy => {
                p.push(Insn::stmt(code::LD | code::H | code::ABS, 12));
                let pairs = (n - 2) / 2;
                if (n - 2) % 2 == 1 {
                    p.push(Insn::stmt(code::MISC | code::TAX, 0));
                }
                for i in 0..pairs {
                    p.push(Insn::jump(
                        code::JMP | code::JEQ | code::K,
                        0x9000 + i as u32,
                        0,
                        1,
                    ));
                    p.push(ret(accept));
                }
                p.push(ret(reject));
            }
        }
        debug_assert_eq!(p.len(), n);
        p
    }
}

/// `insns` with every accepting `ret #k` returning `snaplen` instead (what
/// libpcap's `-s` does to the programs it compiles); `ret #0` stays.
pub fn with_snaplen(insns: &[Insn], snaplen: u32) -> Vec<Insn> {
    insns
        .iter()
        .map(|i| {
            if i.code == code::RET | code::K && i.k != 0 {
                Insn::stmt(i.code, snaplen)
            } else {
                *i
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpf_demux::cbpf::{self, FrameMeta, Program};

    /// A 64-byte frame of EtherType `ethertype`, bytes 14.. counting up.
    fn frame(ethertype: u16) -> Vec<u8> {
        let mut f: Vec<u8> = (0..64u8).collect();
        f[bpf_demux::field::ethernet::ETHERTYPE].copy_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn run(insns: &[Insn], f: &[u8]) -> u32 {
        let p = Program::validate(insns).expect("valid");
        cbpf::run(&p, f, &FrameMeta::offline(f, f.len() as u32))
    }

    #[test]
    fn every_length_is_exact_and_valid() {
        for shape in Shape::ALL {
            for n in 1..=4096 {
                for all in [false, true] {
                    let p = shape.program(n, 1234, all);
                    assert_eq!(p.len(), n, "{} {n}", shape.name());
                    Program::validate(&p).unwrap_or_else(|e| panic!("{} {n}: {e}", shape.name()));
                }
            }
        }
    }

    #[test]
    fn accept_all_accepts_and_selective_selects() {
        let ip = frame(0x0800);
        let tagged = frame(0x9000);
        for shape in Shape::ALL {
            for n in [1, 2, 3, 4, 5, 16, 255, 256, 4096] {
                let all = shape.program(n, 1234, true);
                assert_eq!(run(&all, &ip), 1234, "{} {n} accept-all", shape.name());
                let sel = shape.program(n, 1234, false);
                if n >= 4 {
                    // The reference interpreter is the oracle: IPv4 is not
                    // among the EtherTypes tested.
                    assert_eq!(run(&sel, &ip), 0, "{} {n} selective on IPv4", shape.name());
                }
                if shape == Shape::Branchy && n >= 4 {
                    assert_eq!(run(&sel, &tagged), 1234, "branchy {n} on 0x9000");
                }
            }
        }
    }

    #[test]
    fn snaplen_rewrite_keeps_rejects() {
        // `tcp port 80` as libpcap compiles it returns 262144 or 0.
        let insns = bpf_demux::expr::compile("tcp port 80", 262_144).unwrap();
        let cut = with_snaplen(&insns, 96);
        assert_eq!(cut.len(), insns.len());
        let rets: Vec<u32> = cut
            .iter()
            .filter(|i| i.code == code::RET | code::K)
            .map(|i| i.k)
            .collect();
        assert!(rets.contains(&96) && rets.contains(&0), "{rets:?}");
        assert!(rets.iter().all(|&k| k == 96 || k == 0), "{rets:?}");
        // The same as compiling with that snaplen.
        assert_eq!(cut, bpf_demux::expr::compile("tcp port 80", 96).unwrap());
    }
}

//! Proptest strategies: valid classic programs covering every opcode, and
//! frames biased toward real headers.

use super::{corpus_pcaps, crafted_frames, frames_of, repo};
use bpf_demux::cbpf::meta::pkttype;
use bpf_demux::cbpf::opcode::{code, AluOp, JmpOp, Op, Size, Src};
use bpf_demux::cbpf::program::{Anc, SKF_AD_OFF, SKF_LL_OFF, SKF_NET_OFF};
use bpf_demux::cbpf::{FrameMeta, Insn, Program};
use bpf_demux::spec;
use bpf_demux::NamedProgram;
use proptest::prelude::*;
use std::sync::OnceLock;

/// Constants a real filter uses, and the edges.
fn interesting_k() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 0u32..80,
        2 => prop::sample::select(vec![12u32, 14, 20, 23, 26, 30, 34, 36, 54, 56]),
        2 => prop::sample::select(vec![0x800u32, 0x806, 0x86dd, 0x8100, 0x88a8, 6, 17, 1, 58, 0x1fff, 0xf0, 0xff, 0xffff, 0x45, 53, 80, 443]),
        1 => (0u32..64).prop_map(|d| (SKF_NET_OFF + d as i32) as u32),
        1 => (0u32..40).prop_map(|d| (SKF_LL_OFF + d as i32) as u32),
        1 => prop::sample::select(vec![0u32, 1, 31, 32, 33, 0x7fff_ffff, 0x8000_0000, u32::MAX, u32::MAX - 3]),
        1 => any::<u32>(),
    ]
}

/// Ancillary loads userland can answer.
fn knowable_anc() -> impl Strategy<Value = Anc> {
    prop::sample::select(vec![
        Anc::Protocol,
        Anc::PktType,
        Anc::IfIndex,
        Anc::HaType,
        Anc::VlanTag,
        Anc::VlanTagPresent,
        Anc::VlanTpid,
        Anc::AluXorX,
    ])
}

/// What one generated instruction is: an opcode, or an ancillary load
/// (an absolute load in the `SKF_AD_OFF` area).
#[derive(Clone, Debug)]
enum Kind {
    Op(Op),
    LdAnc(Size, Anc),
}

fn size() -> impl Strategy<Value = Size> {
    prop::sample::select(vec![Size::B, Size::H, Size::W])
}

fn kind() -> impl Strategy<Value = Kind> {
    let alu = (
        prop::sample::select(AluOp::ALL.to_vec()),
        prop::sample::select(vec![Src::K, Src::X]),
    );
    let jmp = (
        prop::sample::select(JmpOp::ALL.to_vec()),
        prop::sample::select(vec![Src::K, Src::X]),
    );
    let op = |o: Op| Just(Kind::Op(o));
    prop_oneof![
        6 => size().prop_map(|s| Kind::Op(Op::LdAbs(s))),
        2 => (size(), knowable_anc()).prop_map(|(s, a)| Kind::LdAnc(s, a)),
        3 => size().prop_map(|s| Kind::Op(Op::LdInd(s))),
        1 => op(Op::LdLen),
        1 => op(Op::LdImm),
        1 => op(Op::LdMem),
        1 => op(Op::LdxLen),
        2 => op(Op::LdxMsh),
        1 => op(Op::LdxImm),
        1 => op(Op::LdxMem),
        1 => op(Op::St),
        1 => op(Op::Stx),
        4 => alu.prop_map(|(o, s)| Kind::Op(Op::Alu(o, s))),
        1 => op(Op::Neg),
        1 => op(Op::Ja),
        8 => jmp.prop_map(|(o, s)| Kind::Op(Op::Jmp(o, s))),
        1 => op(Op::RetK),
        1 => op(Op::RetA),
        1 => op(Op::Tax),
        1 => op(Op::Txa),
    ]
}

/// A program the kernel accepts: every opcode, forward jumps, scratch
/// memory written in a prologue (so every read is initialised on every
/// path), X arithmetic, IND and MSH loads, negative offsets, ancillary loads.
pub fn program() -> impl Strategy<Value = Program> {
    let body = prop::collection::vec(
        (
            kind(),
            interesting_k(),
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
        ),
        1..32,
    );
    (
        prop::collection::vec(0u32..16, 0..3),
        body,
        any::<bool>(),
        interesting_k(),
    )
        .prop_filter_map("kernel-valid", |(cells, body, ret_a, ret_k)| {
            let mut p: Vec<Insn> = Vec::new();
            for &c in &cells {
                p.push(Insn::stmt(code::LD | code::W | code::ABS, 12));
                p.push(Insn::stmt(code::ST, c));
            }
            let n = p.len() + body.len() + 1;
            for (kind, k, jt, jf, r) in body {
                let pc = p.len();
                let room = (n - pc - 2) as u32; // jumps may reach the last insn
                let mem = |r: u32| {
                    if cells.is_empty() {
                        None
                    } else {
                        Some(cells[r as usize % cells.len()])
                    }
                };
                let i = match kind {
                    Kind::LdAnc(s, a) => Insn::stmt(Op::LdAbs(s).code(), SKF_AD_OFF + a.offset()),
                    Kind::Op(op) => match op {
                        Op::LdAbs(_) => {
                            Insn::stmt(op.code(), if k >= SKF_AD_OFF { k % 100 } else { k })
                        }
                        Op::LdMem => match mem(r) {
                            Some(c) => Insn::stmt(op.code(), c),
                            None => Insn::stmt(Op::LdImm.code(), k),
                        },
                        Op::LdxMem => match mem(r) {
                            Some(c) => Insn::stmt(op.code(), c),
                            None => Insn::stmt(Op::LdxImm.code(), k),
                        },
                        Op::St | Op::Stx => Insn::stmt(op.code(), r % 16),
                        Op::Alu(o, Src::K) => {
                            let k = match o {
                                AluOp::Div | AluOp::Mod => k.max(1),
                                AluOp::Lsh | AluOp::Rsh => k % 32,
                                _ => k,
                            };
                            Insn::stmt(op.code(), k)
                        }
                        Op::Ja => Insn::stmt(op.code(), if room == 0 { 0 } else { r % (room + 1) }),
                        Op::Jmp(..) => {
                            let m = room.min(255) + 1;
                            Insn::new(op.code(), (jt as u32 % m) as u8, (jf as u32 % m) as u8, k)
                        }
                        Op::LdInd(_) | Op::LdImm | Op::LdxMsh | Op::LdxImm | Op::RetK => {
                            Insn::stmt(op.code(), k)
                        }
                        Op::LdLen
                        | Op::LdxLen
                        | Op::Alu(_, Src::X)
                        | Op::Neg
                        | Op::RetA
                        | Op::Tax
                        | Op::Txa => Insn::stmt(op.code(), 0),
                    },
                };
                p.push(i);
            }
            p.push(if ret_a {
                Insn::stmt(Op::RetA.code(), 0)
            } else {
                Insn::stmt(Op::RetK.code(), ret_k)
            });
            Program::validate(&p).ok()
        })
}

/// A frame: a corpus frame (or a hand-made one), mutated, truncated or
/// lengthened, with offline or live-like metadata.
pub fn frame(base: Vec<Vec<u8>>) -> impl Strategy<Value = (Vec<u8>, FrameMeta)> {
    let pick = prop::sample::select(base);
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4);
    (
        pick,
        edits,
        0u8..6,
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u8>(), 0..40),
        0u8..4,
        any::<u16>(),
        0u32..64,
    )
        .prop_map(
            |(mut f, edits, shape, cut, extra, metakind, tci, lenplus)| {
                for (i, b) in edits {
                    if !f.is_empty() {
                        let at = i.index(f.len());
                        f[at] = b;
                    }
                }
                match shape {
                    0 => f.truncate(cut.index(f.len() + 1)),
                    1 => f.extend(extra),
                    _ => {}
                }
                let wire = f.len() as u32 + if shape == 2 { lenplus } else { 0 };
                let mut meta = FrameMeta::offline(&f, wire);
                match metakind {
                    1 => {
                        meta.vlan_present = true;
                        meta.vlan_tci = tci;
                        meta.vlan_tpid = if tci & 1 == 0 { 0x8100 } else { 0x88a8 };
                        meta.pkttype = pkttype::OTHERHOST;
                        meta.ifindex = 7;
                    }
                    2 => {
                        meta.pkttype = (tci % 5) as u8;
                        meta.ifindex = tci as u32;
                    }
                    _ => {}
                }
                (f, meta)
            },
        )
}

/// Frames for the property tests: the first 12 of every corpus pcap and the
/// hand-made ones, at most 2000 bytes each.
pub fn base_frames() -> Vec<Vec<u8>> {
    static FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FRAMES
        .get_or_init(|| {
            let mut v: Vec<Vec<u8>> = Vec::new();
            for pcap in corpus_pcaps() {
                for (data, _) in frames_of(&pcap).into_iter().take(12) {
                    if data.len() <= 2000 {
                        v.push(data);
                    }
                }
            }
            v.extend(
                crafted_frames([2, 0, 0, 0, 0, 0xb])
                    .into_iter()
                    .filter(|f| f.len() <= 2000),
            );
            v
        })
        .clone()
}

/// Real tenant filters: the public expressions, 300 generated mixed
/// tenants, the kernel edge programs.
pub fn tenant_programs() -> Vec<NamedProgram> {
    static T: OnceLock<Vec<NamedProgram>> = OnceLock::new();
    T.get_or_init(|| {
        let mut v = spec::load_valid(&repo().join("tests/data/public.filters")).unwrap();
        v.extend(spec::load_valid(&repo().join("tests/data/tenants-mixed-300.filters")).unwrap());
        v.extend(spec::load_valid(&repo().join("tests/data/kernel-edge.toml")).unwrap());
        v
    })
    .clone()
}

/// Random programs named `r0`, `r1`, ... and the picked tenant filters
/// (named `t<j>-<name>`), as one set.
pub fn named_set(randoms: Vec<Program>, tenants: &[prop::sample::Index]) -> Vec<NamedProgram> {
    let all = tenant_programs();
    let mut named: Vec<NamedProgram> = randoms
        .into_iter()
        .enumerate()
        .map(|(i, program)| NamedProgram {
            name: format!("r{i}"),
            program,
            snaplen: None,
        })
        .collect();
    for (j, t) in tenants.iter().enumerate() {
        let mut p = all[t.index(all.len())].clone();
        p.name = format!("t{j}-{}", p.name);
        named.push(p);
    }
    named
}

/// Proptest cases: `PROPTEST_CASES` from the environment, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

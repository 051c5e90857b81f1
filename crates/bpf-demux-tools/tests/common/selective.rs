//! Proptest strategy for selective filters: boolean trees of header tests,
//! compiled the way libpcap lays out code (short-circuit jumps, one `ret`
//! for accept and one for reject). Unlike `gen::program`, whose random
//! programs mostly accept everything or run in the fallback interpreter,
//! these merge, so a set of them gets a kernel prefilter; their constants
//! are read off the frames of the case, so some frames are accepted.

use bpf_demux::cbpf::opcode::{code, AluOp, JmpOp, Op, Size, Src};
use bpf_demux::cbpf::{FrameMeta, Insn, Program};
use proptest::prelude::*;
use std::sync::Arc;

/// Where a test loads from.
#[derive(Clone, Copy, Debug)]
enum Load {
    /// `ld{b,h,} [off]`
    Abs(Size, u32),
    /// `ldx 4*([14]&0xf)` then `ld{b,h,} [x + off]` (a header after IPv4 options)
    Ind(Size, u32),
    /// `ld #len`
    Len,
}

/// One comparison: load, optional `and`/`rsh`/`add` step, jump.
#[derive(Clone, Debug)]
pub struct Test {
    load: Load,
    alu: Option<(AluOp, u32)>,
    cmp: JmpOp,
    k: u32,
}

/// A boolean tree of tests.
#[derive(Clone, Debug)]
pub enum Expr {
    Test(Test),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

fn read(f: &[u8], off: usize, size: Size) -> Option<u32> {
    let n = size.bytes() as usize;
    let b = f.get(off..off.checked_add(n)?)?;
    Some(b.iter().fold(0u32, |a, &x| (a << 8) | x as u32))
}

/// The value `load` gives on `f` (`None`: out of bounds, the filter rejects).
fn value(load: Load, f: &[u8]) -> Option<u32> {
    match load {
        Load::Abs(s, off) => read(f, off as usize, s),
        Load::Ind(s, off) => {
            let x = 4 * (*f.get(14)? as u32 & 0xf);
            read(f, (x + off) as usize, s)
        }
        Load::Len => Some(f.len() as u32),
    }
}

/// A test whose constant comes from frame `pick` of the case (when
/// `from_frame`), so it holds there, or from `k` otherwise.
#[allow(clippy::type_complexity)]
fn test(frames: Arc<Vec<(Vec<u8>, FrameMeta)>>) -> impl Strategy<Value = Expr> {
    let size = prop::sample::select(vec![Size::B, Size::H, Size::W]);
    let load = prop_oneof![
        6 => (size.clone(), 0u32..64).prop_map(|(s, o)| Load::Abs(s, o)),
        2 => (size, 0u32..24).prop_map(|(s, o)| Load::Ind(s, o)),
        1 => Just(Load::Len),
    ];
    let alu = prop_oneof![
        6 => Just(None),
        2 => prop::sample::select(vec![0xffu32, 0xf0, 0x0f, 0x1fff, 0xffff_ff00, 0xffff_0000])
            .prop_map(|m| Some((AluOp::And, m))),
        1 => (1u32..16).prop_map(|k| Some((AluOp::Rsh, k))),
        1 => (1u32..100).prop_map(|k| Some((AluOp::Add, k))),
    ];
    let cmp = prop::sample::select(vec![
        JmpOp::Eq,
        JmpOp::Eq,
        JmpOp::Eq,
        JmpOp::Gt,
        JmpOp::Ge,
        JmpOp::Set,
    ]);
    (
        load,
        alu,
        cmp,
        any::<prop::sample::Index>(),
        prop::bool::weighted(0.8),
        any::<u32>(),
        0u32..3,
    )
        .prop_map(move |(load, alu, cmp, pick, from_frame, k, delta)| {
            let f = &frames[pick.index(frames.len())].0;
            let v = value(load, f).map(|v| match alu {
                Some((o, k)) => o.apply(v, k),
                None => v,
            });
            let k = match (from_frame, v) {
                (true, Some(v)) => match cmp {
                    JmpOp::Gt | JmpOp::Ge => v.saturating_sub(delta),
                    JmpOp::Set if v != 0 => v & v.wrapping_neg(), // its lowest set bit
                    _ => v,
                },
                _ => k,
            };
            Expr::Test(Test { load, alu, cmp, k })
        })
}

/// An equality of a header field with its value in one of the case's
/// frames (or, one time in five, another value).
fn anchor(frames: Arc<Vec<(Vec<u8>, FrameMeta)>>) -> impl Strategy<Value = Expr> {
    let size = prop::sample::select(vec![Size::B, Size::H, Size::W]);
    (
        size,
        0u32..40,
        any::<prop::sample::Index>(),
        prop::bool::weighted(0.8),
        any::<u32>(),
    )
        .prop_map(move |(s, off, pick, from_frame, k)| {
            let load = Load::Abs(s, off);
            let f = &frames[pick.index(frames.len())].0;
            let k = match value(load, f) {
                Some(v) if from_frame => v,
                _ => k,
            };
            Expr::Test(Test {
                load,
                alu: None,
                cmp: JmpOp::Eq,
                k,
            })
        })
}

/// `anchor and TREE`, TREE a boolean tree of up to about 8 tests over the
/// case's frames. Real filters open with such an equality (an EtherType, a
/// protocol); a tree whose accepting paths hold only negated tests would
/// make the set's prefilter accept everything (it treats `!=` as true).
pub fn expr(frames: Arc<Vec<(Vec<u8>, FrameMeta)>>) -> impl Strategy<Value = Expr> {
    let tree = test(frames.clone()).prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            1 => inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            3 => (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            2 => (inner.clone(), inner).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
        ]
    });
    (anchor(frames), tree).prop_map(|(a, t)| Expr::And(Box::new(a), Box::new(t)))
}

/// How a selective filter accepts: a fixed length, or `ret a` after a load.
#[derive(Clone, Debug)]
pub enum Accept {
    K(u32),
    LenA,
}

pub fn accept() -> impl Strategy<Value = Accept> {
    prop_oneof![
        4 => prop::sample::select(vec![u32::MAX, 262_144, 96, 64, 1, 14]).prop_map(Accept::K),
        1 => Just(Accept::LenA),
    ]
}

/// Code being laid out: instructions and labelled two-way jumps.
enum Item {
    Insn(Insn),
    Jump {
        code: u16,
        k: u32,
        t: usize,
        f: usize,
    },
    Label(usize),
}

fn emit(e: &Expr, t: usize, f: usize, labels: &mut usize, out: &mut Vec<Item>) {
    match e {
        Expr::Test(x) => {
            let ld = |s: Size, mode: u16| code::LD | s.bits() | mode;
            match x.load {
                Load::Abs(s, off) => out.push(Item::Insn(Insn::stmt(ld(s, code::ABS), off))),
                Load::Ind(s, off) => {
                    out.push(Item::Insn(Insn::stmt(Op::LdxMsh.code(), 14)));
                    out.push(Item::Insn(Insn::stmt(ld(s, code::IND), off)));
                }
                Load::Len => out.push(Item::Insn(Insn::stmt(Op::LdLen.code(), 0))),
            }
            if let Some((o, k)) = x.alu {
                out.push(Item::Insn(Insn::stmt(Op::Alu(o, Src::K).code(), k)));
            }
            out.push(Item::Jump {
                code: Op::Jmp(x.cmp, Src::K).code(),
                k: x.k,
                t,
                f,
            });
        }
        Expr::Not(a) => emit(a, f, t, labels, out),
        Expr::And(a, b) | Expr::Or(a, b) => {
            let mid = *labels;
            *labels += 1;
            match e {
                Expr::And(..) => emit(a, mid, f, labels, out),
                _ => emit(a, t, mid, labels, out),
            }
            out.push(Item::Label(mid));
            emit(b, t, f, labels, out);
        }
    }
}

/// The program of `e`: accept as `accept` says, reject with `ret #0`.
pub fn compile(e: &Expr, accept: &Accept) -> Program {
    let (yes, no) = (0, 1);
    let mut labels = 2;
    let mut items = Vec::new();
    emit(e, yes, no, &mut labels, &mut items);
    items.push(Item::Label(yes));
    match accept {
        Accept::K(k) => items.push(Item::Insn(Insn::stmt(Op::RetK.code(), *k))),
        Accept::LenA => {
            items.push(Item::Insn(Insn::stmt(Op::LdLen.code(), 0)));
            items.push(Item::Insn(Insn::stmt(Op::RetA.code(), 0)));
        }
    }
    items.push(Item::Label(no));
    items.push(Item::Insn(Insn::stmt(Op::RetK.code(), 0)));
    // Label positions, then jumps resolved to forward offsets.
    let mut at = vec![0usize; labels];
    let mut pc = 0;
    for it in &items {
        match it {
            Item::Label(l) => at[*l] = pc,
            _ => pc += 1,
        }
    }
    let mut insns = Vec::new();
    for it in items {
        match it {
            Item::Insn(i) => insns.push(i),
            Item::Jump { code, k, t, f } => {
                let pc = insns.len();
                let off = |l: usize| u8::try_from(at[l] - pc - 1).expect("short program");
                insns.push(Insn::new(code, off(t), off(f), k));
            }
            Item::Label(_) => {}
        }
    }
    Program::validate(&insns).expect("a selective filter is kernel-valid")
}

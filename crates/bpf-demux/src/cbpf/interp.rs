//! The reference interpreter: a validated program run as the Linux kernel
//! runs it, returning the raw 32-bit return value.
//!
//! Every rule is in `docs/cbpf-semantics.md`: unsigned wrapping
//! arithmetic, shifts by X masked to 5 bits, division by X = 0 returns 0
//! from the whole filter, a load not wholly inside the captured bytes
//! returns 0 from the whole filter, IND offsets are signed 32-bit sums that
//! may land in the `SKF_NET_OFF`/`SKF_LL_OFF` areas, ancillary loads come
//! from [`FrameMeta`]. This is the oracle every other engine is tested
//! against; it favours plainness over speed.

use super::meta::FrameMeta;
use super::opcode::{AluOp, Size};
use super::program::{Anc, Instr, Program, SKF_LL_OFF, SKF_NET_OFF};

/// Where a (signed) packet offset points in the frame, or `None` below the
/// link-layer area.
#[inline]
pub fn resolve_offset(off: i32, net_off: u32) -> Option<u64> {
    if off >= 0 {
        Some(off as u64)
    } else if off >= SKF_NET_OFF {
        Some(net_off as u64 + (off - SKF_NET_OFF) as u64)
    } else if off >= SKF_LL_OFF {
        Some((off - SKF_LL_OFF) as u64)
    } else {
        None
    }
}

/// A big-endian load of `size` at signed offset `off`; `None` unless every
/// byte is inside `frame`.
#[inline]
pub fn load(frame: &[u8], net_off: u32, off: i32, size: Size) -> Option<u32> {
    let start = resolve_offset(off, net_off)?;
    let n = size.bytes() as u64;
    if start + n > frame.len() as u64 {
        return None;
    }
    let s = start as usize;
    Some(match size {
        Size::B => frame[s] as u32,
        Size::H => u16::from_be_bytes([frame[s], frame[s + 1]]) as u32,
        Size::W => u32::from_be_bytes([frame[s], frame[s + 1], frame[s + 2], frame[s + 3]]),
    })
}

/// The value of an ancillary load (`AluXorX` is not a load: the caller
/// handles it). Unknowable extensions give 0; [`Program::check_userland`]
/// keeps such programs out of every engine.
#[inline]
pub fn ancillary(anc: Anc, meta: &FrameMeta) -> u32 {
    match anc {
        Anc::Protocol => meta.protocol as u32,
        Anc::PktType => meta.pkttype as u32,
        Anc::IfIndex => meta.ifindex,
        Anc::HaType => meta.hatype as u32,
        Anc::VlanTag => meta.vlan_tci as u32,
        Anc::VlanTagPresent => meta.vlan_present as u32,
        Anc::VlanTpid => meta.vlan_tpid as u32,
        _ => 0,
    }
}

/// Runs `prog` over `frame` (the captured bytes) with `meta`; the kernel's
/// return value: 0 drops, otherwise the frame is delivered truncated to
/// `min(ret, frame length)`.
pub fn run(prog: &Program, frame: &[u8], meta: &FrameMeta) -> u32 {
    let code = prog.instrs();
    let mut a: u32 = 0;
    let mut x: u32 = 0;
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    macro_rules! ld {
        ($off:expr, $size:expr) => {
            match load(frame, meta.net_off, $off as i32, $size) {
                Some(v) => v,
                None => return 0,
            }
        };
    }
    loop {
        match code[pc] {
            Instr::LdAbs { size, off } => a = ld!(off, size),
            Instr::LdInd { size, off } => a = ld!(x.wrapping_add(off), size),
            Instr::LdAnc(Anc::AluXorX) => a ^= x,
            Instr::LdAnc(anc) => a = ancillary(anc, meta),
            Instr::LdLen => a = meta.wire_len,
            Instr::LdImm(k) => a = k,
            Instr::LdMem(i) => a = mem[i as usize],
            Instr::LdxLen => x = meta.wire_len,
            Instr::LdxMsh(off) => x = 4 * (ld!(off, Size::B) & 0xf),
            Instr::LdxImm(k) => x = k,
            Instr::LdxMem(i) => x = mem[i as usize],
            Instr::St(i) => mem[i as usize] = a,
            Instr::Stx(i) => mem[i as usize] = x,
            Instr::AluK(op, k) => a = op.apply(a, k),
            Instr::AluX(op) => {
                if x == 0 && matches!(op, AluOp::Div | AluOp::Mod) {
                    return 0;
                }
                a = op.apply(a, x);
            }
            Instr::Neg => a = a.wrapping_neg(),
            Instr::Ja(t) => {
                pc = t as usize;
                continue;
            }
            Instr::JmpK { op, k, jt, jf } => {
                pc = if op.test(a, k) { jt } else { jf } as usize;
                continue;
            }
            Instr::JmpX { op, jt, jf } => {
                pc = if op.test(a, x) { jt } else { jf } as usize;
                continue;
            }
            Instr::RetK(k) => return k,
            Instr::RetA => return a,
            Instr::Tax => x = a,
            Instr::Txa => a = x,
        }
        pc += 1;
    }
}

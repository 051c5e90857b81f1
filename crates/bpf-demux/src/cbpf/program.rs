//! The validator: the only way to make a [`Program`].
//!
//! It applies the Linux kernel's rules (`bpf_check_basics_ok`,
//! `bpf_check_classic` and `check_load_and_stores` in `net/core/filter.c`),
//! in the kernel's order, and accepts exactly what the kernel accepts. The
//! result holds the instructions decoded into [`Instr`] with absolute jump
//! targets, so nothing downstream decodes or re-checks anything: every jump
//! lands inside the program and forward, every scratch read was written on
//! every path, the last instruction returns.

use super::opcode::{AluOp, Insn, JmpOp, Op, Size, Src};
use std::fmt;

/// `BPF_MAXINSNS`.
pub const MAX_INSNS: usize = 4096;
/// `BPF_MEMWORDS`: scratch cells M[0..16].
pub const MEM_WORDS: u32 = 16;
/// Start of the ancillary-data area for ABS loads (`SKF_AD_OFF`, as u32).
pub const SKF_AD_OFF: u32 = (-0x1000i32) as u32;
/// Start of the network-header-relative area (`SKF_NET_OFF`).
pub const SKF_NET_OFF: i32 = -0x100000;
/// Start of the link-header-relative area (`SKF_LL_OFF`).
pub const SKF_LL_OFF: i32 = -0x200000;

/// An ancillary value (an ABS load at `SKF_AD_OFF + n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Anc {
    /// `SKF_AD_PROTOCOL`: `skb->protocol`.
    Protocol,
    /// `SKF_AD_PKTTYPE`.
    PktType,
    /// `SKF_AD_IFINDEX`.
    IfIndex,
    /// `SKF_AD_NLATTR` (netlink, needs the kernel).
    NlAttr,
    /// `SKF_AD_NLATTR_NEST` (netlink, needs the kernel).
    NlAttrNest,
    /// `SKF_AD_MARK` (`skb->mark`).
    Mark,
    /// `SKF_AD_QUEUE` (receive queue).
    Queue,
    /// `SKF_AD_HATYPE`: the device type.
    HaType,
    /// `SKF_AD_RXHASH`.
    RxHash,
    /// `SKF_AD_CPU`.
    Cpu,
    /// Not a load: `A ^= X` (old kernels' XOR).
    AluXorX,
    /// `SKF_AD_VLAN_TAG`: the stripped TCI.
    VlanTag,
    /// `SKF_AD_VLAN_TAG_PRESENT`.
    VlanTagPresent,
    /// `SKF_AD_PAY_OFFSET`: the payload offset the kernel dissects.
    PayOffset,
    /// `SKF_AD_RANDOM`.
    Random,
    /// `SKF_AD_VLAN_TPID`.
    VlanTpid,
}

impl Anc {
    /// Every extension, in offset order.
    pub const ALL: [Anc; 16] = [
        Anc::Protocol,
        Anc::PktType,
        Anc::IfIndex,
        Anc::NlAttr,
        Anc::NlAttrNest,
        Anc::Mark,
        Anc::Queue,
        Anc::HaType,
        Anc::RxHash,
        Anc::Cpu,
        Anc::AluXorX,
        Anc::VlanTag,
        Anc::VlanTagPresent,
        Anc::PayOffset,
        Anc::Random,
        Anc::VlanTpid,
    ];

    /// `n` in `SKF_AD_OFF + n`.
    pub fn offset(self) -> u32 {
        4 * Anc::ALL.iter().position(|a| *a == self).unwrap() as u32
    }
    /// The extension at `SKF_AD_OFF + n`, if the kernel knows one there.
    pub fn from_offset(n: u32) -> Option<Anc> {
        if n % 4 != 0 {
            return None;
        }
        Anc::ALL.get((n / 4) as usize).copied()
    }
    /// The name bpf_asm uses.
    pub fn asm_name(self) -> &'static str {
        match self {
            Anc::Protocol => "proto",
            Anc::PktType => "type",
            Anc::IfIndex => "ifidx",
            Anc::NlAttr => "nla",
            Anc::NlAttrNest => "nlan",
            Anc::Mark => "mark",
            Anc::Queue => "queue",
            Anc::HaType => "hatype",
            Anc::RxHash => "rxhash",
            Anc::Cpu => "cpu",
            Anc::AluXorX => "xor_x",
            Anc::VlanTag => "vlan_tci",
            Anc::VlanTagPresent => "vlan_avail",
            Anc::PayOffset => "poff",
            Anc::Random => "rand",
            Anc::VlanTpid => "vlan_tpid",
        }
    }
    /// Why userland cannot know this value from an AF_PACKET ring, if it cannot.
    pub fn unknowable_reason(self) -> Option<&'static str> {
        Some(match self {
            Anc::NlAttr | Anc::NlAttrNest => "netlink attributes exist only on netlink sockets",
            Anc::Mark => "skb->mark is not reported by AF_PACKET",
            Anc::Queue => "the rx queue is not reported by AF_PACKET",
            Anc::Cpu => "the CPU running the filter is not known in userland",
            Anc::Random => "a random value cannot be reproduced",
            Anc::RxHash => "skb->hash as the filter sees it is not reported reliably",
            Anc::PayOffset => {
                "the payload offset comes from the kernel's flow dissector, not reproduced here"
            }
            _ => return None,
        })
    }
}

/// A validated, decoded instruction. Jump targets are absolute pcs, always
/// greater than the jump's own pc and less than the program's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Instr {
    /// `A = P[off:size]`; `off` is read as a signed offset (negative areas).
    LdAbs {
        /// Bytes loaded.
        size: Size,
        /// The offset.
        off: u32,
    },
    /// An ancillary load (or `AluXorX`).
    LdAnc(Anc),
    /// `A = P[X + off:size], the sum read as signed`.
    LdInd {
        /// Bytes loaded.
        size: Size,
        /// Added to X.
        off: u32,
    },
    /// A = frame length.
    LdLen,
    /// A = k.
    LdImm(u32),
    /// `A = M[k]`.
    LdMem(u8),
    /// X = frame length.
    LdxLen,
    /// `X = 4 * (P[off] & 0xf)`.
    LdxMsh(u32),
    /// X = k.
    LdxImm(u32),
    /// `X = M[k]`.
    LdxMem(u8),
    /// `M[k] = A`.
    St(u8),
    /// `M[k] = X`.
    Stx(u8),
    /// A = A op k.
    AluK(AluOp, u32),
    /// A = A op X.
    AluX(AluOp),
    /// A = -A.
    Neg,
    /// Jump to this pc.
    Ja(u16),
    /// `A op k`, to `jt` or `jf`.
    JmpK {
        /// The comparison.
        op: JmpOp,
        /// Compared with.
        k: u32,
        /// Target pc when it holds.
        jt: u16,
        /// Target pc when it does not.
        jf: u16,
    },
    /// `A op X`, to `jt` or `jf`.
    JmpX {
        /// The comparison.
        op: JmpOp,
        /// Target pc when it holds.
        jt: u16,
        /// Target pc when it does not.
        jf: u16,
    },
    /// Return k.
    RetK(u32),
    /// Return A.
    RetA,
    /// X = A.
    Tax,
    /// A = X.
    Txa,
}

/// A program the kernel would accept. Only [`Program::validate`] makes one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Program {
    insns: Vec<Insn>,
    instrs: Vec<Instr>,
}

/// Why the kernel would refuse a program (`EINVAL` in every case).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    #[error("empty program (the kernel needs 1 to {MAX_INSNS} instructions)")]
    /// No instructions.
    Empty,
    #[error("{given} instructions is too long (the kernel's limit is {limit})")]
    /// More instructions than the kernel takes.
    TooLarge {
        /// Instructions given.
        given: usize,
        /// The kernel's limit.
        limit: usize,
    },
    #[error("pc {pc}: opcode {code:#04x} is not a classic BPF opcode the kernel accepts")]
    /// An opcode the kernel refuses.
    BadOpcode {
        /// The instruction at fault.
        pc: usize,
        /// The opcode.
        code: u16,
    },
    #[error("pc {pc}: division or modulo by constant 0 (the kernel refuses it)")]
    /// `div #0` or `mod #0`.
    DivByZero {
        /// The instruction at fault.
        pc: usize,
    },
    #[error("pc {pc}: shift by constant {k} (the kernel refuses shifts of 32 or more)")]
    /// A constant shift of 32 or more.
    ShiftTooFar {
        /// The instruction at fault.
        pc: usize,
        /// The shift.
        k: u32,
    },
    #[error("pc {pc}: scratch cell M[{k}] does not exist (M[0] to M[15])")]
    /// A scratch cell past `M[15]`.
    ScratchIndex {
        /// The instruction at fault.
        pc: usize,
        /// The cell index.
        k: u32,
    },
    #[error("pc {pc}: backward jump to pc {target} (the kernel refuses loops)")]
    /// A jump backwards (a loop).
    BackwardJump {
        /// The instruction at fault.
        pc: usize,
        /// The target pc.
        target: i64,
    },
    #[error("pc {pc}: jump to pc {target} is past the last instruction (pc {last})")]
    /// A jump past the end.
    JumpOutOfRange {
        /// The instruction at fault.
        pc: usize,
        /// The target pc.
        target: u64,
        /// The last pc.
        last: usize,
    },
    #[error("pc {pc}: load from {k:#x} is in the ancillary area but names no known extension")]
    /// An ancillary load of no known extension.
    UnknownExtension {
        /// The instruction at fault.
        pc: usize,
        /// The load offset.
        k: u32,
    },
    #[error("pc {pc}: the last instruction must be `ret` (found opcode {code:#04x})")]
    /// A program not ending in `ret`.
    NoFinalReturn {
        /// The instruction at fault.
        pc: usize,
        /// The last opcode.
        code: u16,
    },
    #[error("pc {pc}: M[{slot}] is read but not written on every path to it")]
    /// A scratch cell read before every path writes it.
    ScratchUninit {
        /// The instruction at fault.
        pc: usize,
        /// The cell.
        slot: u32,
    },
}

impl ValidateError {
    /// The instruction at fault, when there is one.
    pub fn pc(&self) -> Option<usize> {
        use ValidateError::*;
        match *self {
            Empty | TooLarge { .. } => None,
            BadOpcode { pc, .. }
            | DivByZero { pc }
            | ShiftTooFar { pc, .. }
            | ScratchIndex { pc, .. }
            | BackwardJump { pc, .. }
            | JumpOutOfRange { pc, .. }
            | UnknownExtension { pc, .. }
            | NoFinalReturn { pc, .. }
            | ScratchUninit { pc, .. } => Some(pc),
        }
    }
    /// A short name of the rule broken, stable for tests and scripts.
    pub fn rule(&self) -> &'static str {
        use ValidateError::*;
        match self {
            Empty => "empty",
            TooLarge { .. } => "too-large",
            BadOpcode { .. } => "bad-opcode",
            DivByZero { .. } => "div-by-zero",
            ShiftTooFar { .. } => "shift-too-far",
            ScratchIndex { .. } => "scratch-index",
            BackwardJump { .. } => "backward-jump",
            JumpOutOfRange { .. } => "jump-out-of-range",
            UnknownExtension { .. } => "unknown-extension",
            NoFinalReturn { .. } => "no-final-return",
            ScratchUninit { .. } => "scratch-uninit",
        }
    }
}

/// A validated program that reads a value userland cannot know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pc {pc}: reads ancillary `{}` ({reason}); such a filter cannot run outside the kernel", anc.asm_name())]
pub struct UnknowableLoad {
    /// The load.
    pub pc: usize,
    /// What it reads.
    pub anc: Anc,
    /// Why userland cannot know it.
    pub reason: &'static str,
}

impl Program {
    /// Validates `insns` exactly as the kernel's `SO_ATTACH_FILTER` does.
    pub fn validate(insns: &[Insn]) -> Result<Program, ValidateError> {
        let len = insns.len();
        if len == 0 {
            return Err(ValidateError::Empty);
        }
        if len > MAX_INSNS {
            return Err(ValidateError::TooLarge {
                given: len,
                limit: MAX_INSNS,
            });
        }
        let mut instrs = Vec::with_capacity(len);
        for (pc, insn) in insns.iter().enumerate() {
            let op = insn.op().ok_or(ValidateError::BadOpcode {
                pc,
                code: insn.code,
            })?;
            let k = insn.k;
            let mem = |k: u32| {
                if k >= MEM_WORDS {
                    Err(ValidateError::ScratchIndex { pc, k })
                } else {
                    Ok(k as u8)
                }
            };
            let cond_target = |off: u8| {
                let t = pc + 1 + off as usize;
                if t >= len {
                    Err(ValidateError::JumpOutOfRange {
                        pc,
                        target: t as u64,
                        last: len - 1,
                    })
                } else {
                    Ok(t as u16)
                }
            };
            let instr = match op {
                Op::Alu(AluOp::Div | AluOp::Mod, Src::K) if k == 0 => {
                    return Err(ValidateError::DivByZero { pc })
                }
                Op::Alu(AluOp::Lsh | AluOp::Rsh, Src::K) if k >= 32 => {
                    return Err(ValidateError::ShiftTooFar { pc, k })
                }
                Op::Alu(aop, Src::K) => Instr::AluK(aop, k),
                Op::Alu(aop, Src::X) => Instr::AluX(aop),
                Op::Neg => Instr::Neg,
                Op::LdMem => Instr::LdMem(mem(k)?),
                Op::LdxMem => Instr::LdxMem(mem(k)?),
                Op::St => Instr::St(mem(k)?),
                Op::Stx => Instr::Stx(mem(k)?),
                Op::Ja => {
                    // The kernel: `k >= flen - pc - 1` (unsigned) is refused.
                    if k as u64 >= (len - pc - 1) as u64 {
                        let target = pc as i64 + 1 + k as i32 as i64;
                        if target <= pc as i64 {
                            return Err(ValidateError::BackwardJump { pc, target });
                        }
                        let target = pc as u64 + 1 + k as u64;
                        return Err(ValidateError::JumpOutOfRange {
                            pc,
                            target,
                            last: len - 1,
                        });
                    }
                    Instr::Ja((pc + 1 + k as usize) as u16)
                }
                Op::Jmp(jop, src) => {
                    let jt = cond_target(insn.jt)?;
                    let jf = cond_target(insn.jf)?;
                    match src {
                        Src::K => Instr::JmpK { op: jop, k, jt, jf },
                        Src::X => Instr::JmpX { op: jop, jt, jf },
                    }
                }
                Op::LdAbs(size) => {
                    if k >= SKF_AD_OFF {
                        match Anc::from_offset(k - SKF_AD_OFF) {
                            Some(anc) => Instr::LdAnc(anc),
                            None => return Err(ValidateError::UnknownExtension { pc, k }),
                        }
                    } else {
                        Instr::LdAbs { size, off: k }
                    }
                }
                Op::LdInd(size) => Instr::LdInd { size, off: k },
                Op::LdLen => Instr::LdLen,
                Op::LdImm => Instr::LdImm(k),
                Op::LdxLen => Instr::LdxLen,
                Op::LdxMsh => Instr::LdxMsh(k),
                Op::LdxImm => Instr::LdxImm(k),
                Op::RetK => Instr::RetK(k),
                Op::RetA => Instr::RetA,
                Op::Tax => Instr::Tax,
                Op::Txa => Instr::Txa,
            };
            instrs.push(instr);
        }
        let last = &insns[len - 1];
        if !matches!(instrs[len - 1], Instr::RetK(_) | Instr::RetA) {
            return Err(ValidateError::NoFinalReturn {
                pc: len - 1,
                code: last.code,
            });
        }
        check_load_and_stores(&instrs)?;
        Ok(Program {
            insns: insns.to_vec(),
            instrs,
        })
    }

    /// The raw instructions, as given.
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }
    /// The decoded instructions, one per raw instruction.
    pub fn instrs(&self) -> &[Instr] {
        &self.instrs
    }
    /// Instructions.
    pub fn len(&self) -> usize {
        self.insns.len()
    }
    /// Always false: a valid program has at least one instruction.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Refuses a program that reads what userland cannot know (MARK, QUEUE,
    /// CPU, RANDOM, NLATTR, RXHASH, PAY_OFFSET). Such a program is valid for
    /// the kernel, but no userland engine can give the kernel's answer.
    pub fn check_userland(&self) -> Result<(), UnknowableLoad> {
        for (pc, i) in self.instrs.iter().enumerate() {
            if let Instr::LdAnc(anc) = i {
                if let Some(reason) = anc.unknowable_reason() {
                    return Err(UnknowableLoad {
                        pc,
                        anc: *anc,
                        reason,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The kernel's `check_load_and_stores`, step for step: a forward pass that
/// keeps the set of written cells, meets it at jump targets, and (as the
/// kernel does) carries it straight on past a `ret`.
fn check_load_and_stores(instrs: &[Instr]) -> Result<(), ValidateError> {
    let mut masks = vec![u16::MAX; instrs.len()];
    let mut valid: u16 = 0;
    for (pc, i) in instrs.iter().enumerate() {
        valid &= masks[pc];
        match *i {
            Instr::St(k) | Instr::Stx(k) => valid |= 1 << k,
            Instr::LdMem(k) | Instr::LdxMem(k) if valid & (1 << k) == 0 => {
                return Err(ValidateError::ScratchUninit { pc, slot: k as u32 });
            }
            Instr::Ja(t) => {
                masks[t as usize] &= valid;
                valid = u16::MAX;
            }
            Instr::JmpK { jt, jf, .. } | Instr::JmpX { jt, jf, .. } => {
                masks[jt as usize] &= valid;
                masks[jf as usize] &= valid;
                valid = u16::MAX;
            }
            _ => {}
        }
    }
    Ok(())
}

impl fmt::Display for Program {
    /// The `tcpdump -ddd` one-line form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::text::write_ddd_line(&self.insns))
    }
}

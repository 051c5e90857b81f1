//! The instruction record and its opcode, decoded into enums.
//!
//! `Insn` is `struct sock_filter` as the kernel and libpcap lay it out. `Op`
//! is what its `code` means; decoding accepts exactly the opcodes the Linux
//! kernel accepts (`chk_code_allowed` in `net/core/filter.c`), nothing more.

/// One classic BPF instruction: `struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Insn {
    /// The opcode (see [`code`]).
    pub code: u16,
    /// Instructions skipped when the condition holds.
    pub jt: u8,
    /// Instructions skipped when it does not.
    pub jf: u8,
    /// The operand.
    pub k: u32,
}

impl Insn {
    /// An instruction from its four fields.
    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }
    /// A plain statement (no jump offsets).
    pub const fn stmt(code: u16, k: u32) -> Insn {
        Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }
    /// A conditional jump.
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
        Insn { code, jt, jf, k }
    }
    /// The decoded opcode, or `None` if the kernel does not accept this code.
    pub fn op(&self) -> Option<Op> {
        Op::decode(self.code)
    }
}

/// Raw opcode bits, as in `linux/filter.h` / `pcap/bpf.h`.
pub mod code {
    /// `BPF_LD`: load into A.
    pub const LD: u16 = 0x00;
    /// `BPF_LDX`: load into X.
    pub const LDX: u16 = 0x01;
    /// `BPF_ST`: store A into `M[k]`.
    pub const ST: u16 = 0x02;
    /// `BPF_STX`: store X into `M[k]`.
    pub const STX: u16 = 0x03;
    /// `BPF_ALU`: arithmetic on A.
    pub const ALU: u16 = 0x04;
    /// `BPF_JMP`: jumps.
    pub const JMP: u16 = 0x05;
    /// `BPF_RET`: return.
    pub const RET: u16 = 0x06;
    /// `BPF_MISC`: register transfers.
    pub const MISC: u16 = 0x07;

    /// `BPF_W`: 32-bit load.
    pub const W: u16 = 0x00;
    /// `BPF_H`: 16-bit load.
    pub const H: u16 = 0x08;
    /// `BPF_B`: 8-bit load.
    pub const B: u16 = 0x10;

    /// `BPF_IMM`: the constant k.
    pub const IMM: u16 = 0x00;
    /// `BPF_ABS`: packet at k.
    pub const ABS: u16 = 0x20;
    /// `BPF_IND`: packet at X + k.
    pub const IND: u16 = 0x40;
    /// `BPF_MEM`: scratch cell `M[k]`.
    pub const MEM: u16 = 0x60;
    /// `BPF_LEN`: the frame length.
    pub const LEN: u16 = 0x80;
    /// `BPF_MSH`: `4 * (P[k] & 0xf)`, the IPv4 header length.
    pub const MSH: u16 = 0xa0;

    /// `BPF_ADD`.
    pub const ADD: u16 = 0x00;
    /// `BPF_SUB`.
    pub const SUB: u16 = 0x10;
    /// `BPF_MUL`.
    pub const MUL: u16 = 0x20;
    /// `BPF_DIV`.
    pub const DIV: u16 = 0x30;
    /// `BPF_OR`.
    pub const OR: u16 = 0x40;
    /// `BPF_AND`.
    pub const AND: u16 = 0x50;
    /// `BPF_LSH`.
    pub const LSH: u16 = 0x60;
    /// `BPF_RSH`.
    pub const RSH: u16 = 0x70;
    /// `BPF_NEG`.
    pub const NEG: u16 = 0x80;
    /// `BPF_MOD`.
    pub const MOD: u16 = 0x90;
    /// `BPF_XOR`.
    pub const XOR: u16 = 0xa0;

    /// `BPF_JA`: jump always.
    pub const JA: u16 = 0x00;
    /// `BPF_JEQ`.
    pub const JEQ: u16 = 0x10;
    /// `BPF_JGT`.
    pub const JGT: u16 = 0x20;
    /// `BPF_JGE`.
    pub const JGE: u16 = 0x30;
    /// `BPF_JSET`: A & operand != 0.
    pub const JSET: u16 = 0x40;

    /// `BPF_K`: the operand is k.
    pub const K: u16 = 0x00;
    /// `BPF_X`: the operand is X.
    pub const X: u16 = 0x08;
    /// RET source A.
    pub const A: u16 = 0x10;

    /// `BPF_TAX`: X = A.
    pub const TAX: u16 = 0x00;
    /// `BPF_TXA`: A = X.
    pub const TXA: u16 = 0x80;
}

/// Width of a packet load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Size {
    /// 32 bits.
    W,
    /// 16 bits.
    H,
    /// 8 bits.
    B,
}

impl Size {
    /// Bytes loaded.
    pub const fn bytes(self) -> u32 {
        match self {
            Size::W => 4,
            Size::H => 2,
            Size::B => 1,
        }
    }
    /// The size bits of a load (`BPF_W`, `BPF_H`, `BPF_B`).
    pub const fn bits(self) -> u16 {
        match self {
            Size::W => code::W,
            Size::H => code::H,
            Size::B => code::B,
        }
    }
}

/// Second operand of an ALU or jump instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Src {
    /// The constant k.
    K,
    /// The register X.
    X,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// An ALU operation of `BPF_ALU`.
pub enum AluOp {
    /// A + operand.
    Add,
    /// A - operand.
    Sub,
    /// A * operand.
    Mul,
    /// A / operand (0 when the operand is 0, at run time).
    Div,
    /// A % operand.
    Mod,
    /// A & operand.
    And,
    /// A | operand.
    Or,
    /// A ^ operand.
    Xor,
    /// A << (operand & 31).
    Lsh,
    /// A >> (operand & 31).
    Rsh,
}

impl AluOp {
    /// Every operation, in code order.
    pub const ALL: [AluOp; 10] = [
        AluOp::Add,
        AluOp::Sub,
        AluOp::Mul,
        AluOp::Div,
        AluOp::Mod,
        AluOp::And,
        AluOp::Or,
        AluOp::Xor,
        AluOp::Lsh,
        AluOp::Rsh,
    ];
    /// The operation bits of an ALU instruction (`BPF_ADD`, ...).
    pub const fn bits(self) -> u16 {
        match self {
            AluOp::Add => code::ADD,
            AluOp::Sub => code::SUB,
            AluOp::Mul => code::MUL,
            AluOp::Div => code::DIV,
            AluOp::Mod => code::MOD,
            AluOp::And => code::AND,
            AluOp::Or => code::OR,
            AluOp::Xor => code::XOR,
            AluOp::Lsh => code::LSH,
            AluOp::Rsh => code::RSH,
        }
    }
    /// Mnemonic as tcpdump -d and bpf_asm write it.
    pub const fn mnemonic(self) -> &'static str {
        match self {
            AluOp::Add => "add",
            AluOp::Sub => "sub",
            AluOp::Mul => "mul",
            AluOp::Div => "div",
            AluOp::Mod => "mod",
            AluOp::And => "and",
            AluOp::Or => "or",
            AluOp::Xor => "xor",
            AluOp::Lsh => "lsh",
            AluOp::Rsh => "rsh",
        }
    }
    /// The kernel's 32-bit result, for an operand already checked
    /// (division by zero is the caller's business).
    #[inline]
    pub fn apply(self, a: u32, b: u32) -> u32 {
        match self {
            AluOp::Add => a.wrapping_add(b),
            AluOp::Sub => a.wrapping_sub(b),
            AluOp::Mul => a.wrapping_mul(b),
            AluOp::Div => a.checked_div(b).unwrap_or(0),
            AluOp::Mod => a.checked_rem(b).unwrap_or(0),
            AluOp::And => a & b,
            AluOp::Or => a | b,
            AluOp::Xor => a ^ b,
            AluOp::Lsh => a.wrapping_shl(b & 31),
            AluOp::Rsh => a.wrapping_shr(b & 31),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// A comparison of `BPF_JMP`.
pub enum JmpOp {
    /// A == operand.
    Eq,
    /// A > operand (unsigned).
    Gt,
    /// A >= operand (unsigned).
    Ge,
    /// A & operand != 0.
    Set,
}

impl JmpOp {
    /// Every comparison, in code order.
    pub const ALL: [JmpOp; 4] = [JmpOp::Eq, JmpOp::Gt, JmpOp::Ge, JmpOp::Set];
    /// The operation bits of a jump (`BPF_JEQ`, ...).
    pub const fn bits(self) -> u16 {
        match self {
            JmpOp::Eq => code::JEQ,
            JmpOp::Gt => code::JGT,
            JmpOp::Ge => code::JGE,
            JmpOp::Set => code::JSET,
        }
    }
    /// The bpf_asm mnemonic (`jeq`, ...).
    pub const fn mnemonic(self) -> &'static str {
        match self {
            JmpOp::Eq => "jeq",
            JmpOp::Gt => "jgt",
            JmpOp::Ge => "jge",
            JmpOp::Set => "jset",
        }
    }
    #[inline]
    /// Whether `a op b` holds.
    pub fn test(self, a: u32, b: u32) -> bool {
        match self {
            JmpOp::Eq => a == b,
            JmpOp::Gt => a > b,
            JmpOp::Ge => a >= b,
            JmpOp::Set => a & b != 0,
        }
    }
}

/// Every opcode the Linux kernel accepts in a classic BPF program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `A = P[k:size]` (or an ancillary value when k is in the SKF_AD_OFF area).
    LdAbs(Size),
    /// `A = P[X+k:size]`.
    LdInd(Size),
    /// A = frame length.
    LdLen,
    /// `A = k`.
    LdImm,
    /// `A = M[k]`.
    LdMem,
    /// X = frame length.
    LdxLen,
    /// `X = 4 * (P[k] & 0xf)`.
    LdxMsh,
    /// `X = k`.
    LdxImm,
    /// `X = M[k]`.
    LdxMem,
    /// `M[k] = A`.
    St,
    /// `M[k] = X`.
    Stx,
    /// `A = A op k` or `A = A op X`.
    Alu(AluOp, Src),
    /// `A = -A`.
    Neg,
    /// pc += k.
    Ja,
    /// A conditional jump, `A op k` or `A op X`.
    Jmp(JmpOp, Src),
    /// Return k.
    RetK,
    /// Return A.
    RetA,
    /// X = A.
    Tax,
    /// A = X.
    Txa,
}

impl Op {
    /// Decodes `code`; `None` for every code the kernel refuses.
    pub fn decode(c: u16) -> Option<Op> {
        use code::*;
        // Linux indexes its opcode table with the whole u16 (`code >=
        // ARRAY_SIZE(codes)` is EINVAL), so no high bit may be set, whatever
        // the low byte says.
        if c > 0xff {
            return None;
        }
        let size = |s: u16| match s {
            W => Some(Size::W),
            H => Some(Size::H),
            B => Some(Size::B),
            _ => None,
        };
        let op = match c & 0x07 {
            LD => match c & 0xe0 {
                ABS => Op::LdAbs(size(c & 0x18)?),
                IND => Op::LdInd(size(c & 0x18)?),
                _ if c == LD | W | LEN => Op::LdLen,
                _ if c == LD | IMM => Op::LdImm,
                _ if c == LD | MEM => Op::LdMem,
                _ => return None,
            },
            LDX => match c {
                _ if c == LDX | W | LEN => Op::LdxLen,
                _ if c == LDX | B | MSH => Op::LdxMsh,
                _ if c == LDX | IMM => Op::LdxImm,
                _ if c == LDX | MEM => Op::LdxMem,
                _ => return None,
            },
            ST if c == ST => Op::St,
            STX if c == STX => Op::Stx,
            ALU => {
                if c == ALU | NEG {
                    return Some(Op::Neg);
                }
                if c & !0xf8 != ALU {
                    return None;
                }
                let src = if c & X != 0 { Src::X } else { Src::K };
                let aop = AluOp::ALL.into_iter().find(|o| o.bits() == c & 0xf0)?;
                Op::Alu(aop, src)
            }
            JMP => {
                if c == JMP | JA {
                    return Some(Op::Ja);
                }
                if c & !0xf8 != JMP {
                    return None;
                }
                let src = if c & X != 0 { Src::X } else { Src::K };
                let jop = JmpOp::ALL.into_iter().find(|o| o.bits() == c & 0xf0)?;
                Op::Jmp(jop, src)
            }
            RET if c == RET | K => Op::RetK,
            RET if c == RET | A => Op::RetA,
            MISC if c == MISC | TAX => Op::Tax,
            MISC if c == MISC | TXA => Op::Txa,
            _ => return None,
        };
        debug_assert_eq!(op.code(), c);
        Some(op)
    }

    /// The raw code of this opcode.
    pub fn code(self) -> u16 {
        use code::*;
        let src = |s: Src| if s == Src::X { X } else { K };
        match self {
            Op::LdAbs(s) => LD | s.bits() | ABS,
            Op::LdInd(s) => LD | s.bits() | IND,
            Op::LdLen => LD | W | LEN,
            Op::LdImm => LD | IMM,
            Op::LdMem => LD | MEM,
            Op::LdxLen => LDX | W | LEN,
            Op::LdxMsh => LDX | B | MSH,
            Op::LdxImm => LDX | IMM,
            Op::LdxMem => LDX | MEM,
            Op::St => ST,
            Op::Stx => STX,
            Op::Alu(o, s) => ALU | o.bits() | src(s),
            Op::Neg => ALU | NEG,
            Op::Ja => JMP | JA,
            Op::Jmp(o, s) => JMP | o.bits() | src(s),
            Op::RetK => RET | K,
            Op::RetA => RET | A,
            Op::Tax => MISC | TAX,
            Op::Txa => MISC | TXA,
        }
    }
}

/// Every code the kernel accepts, in code order.
pub fn allowed_codes() -> impl Iterator<Item = u16> {
    (0u16..=0xff).filter(|c| Op::decode(*c).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_opcode_table_has_exactly_its_entries() {
        // Written out from `codes[]` in net/core/filter.c (bpf_check_classic),
        // independently of the decoder above.
        let mut kernel: Vec<u16> = vec![
            0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x94, 0x9c, 0x54, 0x5c, 0x44, 0x4c,
            0xa4, 0xac, 0x64, 0x6c, 0x74, 0x7c, 0x84, // ALU
            0x20, 0x28, 0x30, 0x80, 0x40, 0x48, 0x50, 0x00, 0x60, // LD
            0x81, 0xb1, 0x01, 0x61, // LDX
            0x02, 0x03, // ST STX
            0x07, 0x87, // TAX TXA
            0x06, 0x16, // RET
            0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x45, 0x4d, // JMP
        ];
        kernel.sort();
        let ours: Vec<u16> = allowed_codes().collect();
        assert_eq!(ours, kernel);
        assert!(Op::decode(0x0e).is_none(), "RET X is refused");
        assert!(Op::decode(0x100 | 0x06).is_none(), "high bits are refused");
        for low in kernel.iter() {
            for high in [0x100u16, 0x2000, 0xee00] {
                assert!(Op::decode(high | low).is_none(), "{:#06x}", high | low);
            }
        }
    }

    #[test]
    fn shifts_mask_by_31_and_division_by_zero_is_zero() {
        assert_eq!(AluOp::Lsh.apply(7, 32), 7);
        assert_eq!(AluOp::Rsh.apply(28, 33), 14);
        assert_eq!(AluOp::Div.apply(9, 0), 0);
        assert_eq!(AluOp::Sub.apply(0, 1), u32::MAX);
    }
}

//! Operand syntax shared by the `tcpdump -d` listing and bpf_asm: `#k`,
//! `[k]`, `[x + k]`, `M[k]`, `4*([k]&0xf)`, `x`, `a`, extension names.

use super::{parse_k, TextErrorKind};
use crate::cbpf::opcode::{code, AluOp, JmpOp, Size};
use crate::cbpf::program::{Anc, SKF_AD_OFF};

/// An operand, whitespace and `%` register sigils removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operand {
    None,
    Imm(u32),
    Len,
    Mem(u32),
    Abs(u32),
    Ind(u32),
    Msh(u32),
    Anc(Anc),
    X,
    A,
}

/// An extension by any of the names bpf_asm or libpcap's listing use.
pub(crate) fn anc_by_name(name: &str) -> Option<Anc> {
    let n = name.to_ascii_lowercase();
    let alias = match n.as_str() {
        "vlanp" | "vlan_pr" | "vlan_avail" => Some(Anc::VlanTagPresent),
        "random" => Some(Anc::Random),
        "ifindex" => Some(Anc::IfIndex),
        "protocol" => Some(Anc::Protocol),
        "pkttype" => Some(Anc::PktType),
        _ => None,
    };
    alias.or_else(|| Anc::ALL.into_iter().find(|a| a.asm_name() == n))
}

/// The name libpcap's `-d` listing prints for an extension.
pub(crate) fn listing_anc_name(a: Anc) -> &'static str {
    match a {
        Anc::VlanTagPresent => "vlanp",
        other => other.asm_name(),
    }
}

/// Parses an operand; `Err` carries a message.
pub(crate) fn parse_operand(raw: &str) -> Result<Operand, TextErrorKind> {
    let s: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '%')
        .collect();
    let lower = s.to_ascii_lowercase();
    if s.is_empty() {
        return Ok(Operand::None);
    }
    let num = |t: &str| {
        parse_k(t).ok_or_else(|| TextErrorKind::BadNumber {
            number: t.to_string(),
            operand: raw.to_string(),
        })
    };
    if lower == "x" {
        return Ok(Operand::X);
    }
    if lower == "a" {
        return Ok(Operand::A);
    }
    if let Some(rest) = s.strip_prefix('#') {
        let rl = rest.to_ascii_lowercase();
        if rl == "len" || rl == "pktlen" {
            return Ok(Operand::Len);
        }
        if let Some(a) = anc_by_name(rest) {
            return Ok(Operand::Anc(a));
        }
        return Ok(Operand::Imm(num(rest)?));
    }
    if lower == "len" || lower == "pktlen" {
        return Ok(Operand::Len);
    }
    if let Some(inner) = s.strip_prefix("M[").or_else(|| s.strip_prefix("m[")) {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| TextErrorKind::MissingBracket(raw.to_string()))?;
        return Ok(Operand::Mem(num(inner)?));
    }
    if let Some(rest) = lower.strip_prefix("4*([") {
        let inner = rest
            .strip_suffix("]&0xf)")
            .or_else(|| rest.strip_suffix("]&15)"))
            .ok_or_else(|| TextErrorKind::ExpectedMsh(raw.to_string()))?;
        return Ok(Operand::Msh(num(inner)?));
    }
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| TextErrorKind::MissingBracket(raw.to_string()))?;
        let il = inner.to_ascii_lowercase();
        if let Some(off) = il.strip_prefix("x+") {
            return Ok(Operand::Ind(num(off)?));
        }
        if il == "x" {
            return Ok(Operand::Ind(0));
        }
        if let Some(a) = anc_by_name(inner) {
            return Ok(Operand::Anc(a));
        }
        return Ok(Operand::Abs(num(inner)?));
    }
    if let Some(a) = anc_by_name(&s) {
        return Ok(Operand::Anc(a));
    }
    Ok(Operand::Imm(num(&s)?))
}

/// What a mnemonic with a non-jump operand encodes to: `(code, k)`.
pub(crate) fn encode_stmt(mn: &str, op: Operand) -> Result<(u16, u32), TextErrorKind> {
    use code::*;
    use Operand as O;
    let size = match mn {
        "ld" | "ldi" => Some(Size::W),
        "ldh" => Some(Size::H),
        "ldb" => Some(Size::B),
        _ => None,
    };
    let sz = |s: Size| match s {
        Size::W => W,
        Size::H => H,
        Size::B => B,
    };
    let bad = || TextErrorKind::OperandNotTaken {
        mnemonic: mn.to_string(),
        operand: format!("{op:?}"),
    };
    if let Some(s) = size {
        return Ok(match (mn, op) {
            ("ld" | "ldi", O::Imm(k)) => (LD | IMM, k),
            ("ld", O::Len) => (LD | W | LEN, 0),
            ("ld", O::Mem(k)) => (LD | MEM, k),
            (_, O::Abs(k)) if mn != "ldi" => (LD | sz(s) | ABS, k),
            (_, O::Ind(k)) if mn != "ldi" => (LD | sz(s) | IND, k),
            (_, O::Anc(a)) if mn != "ldi" => {
                (LD | sz(s) | ABS, SKF_AD_OFF.wrapping_add(a.offset()))
            }
            _ => return Err(bad()),
        });
    }
    Ok(match (mn, op) {
        ("ldx" | "ldxi", O::Imm(k)) => (LDX | IMM, k),
        ("ldx", O::Len) => (LDX | W | LEN, 0),
        ("ldx", O::Mem(k)) => (LDX | MEM, k),
        ("ldx" | "ldxb", O::Msh(k)) => (LDX | B | MSH, k),
        ("st", O::Mem(k)) => (ST, k),
        ("stx", O::Mem(k)) => (STX, k),
        ("ret", O::Imm(k)) => (RET | K, k),
        ("ret", O::A | O::None) => (RET | A, 0),
        ("ret", O::X) => (RET | X, 0),
        ("neg", O::None) => (ALU | NEG, 0),
        ("tax", O::None) => (MISC | TAX, 0),
        ("txa", O::None) => (MISC | TXA, 0),
        (m, o) => {
            let aop = AluOp::ALL
                .into_iter()
                .find(|a| a.mnemonic() == m)
                .ok_or_else(bad)?;
            let c = ALU | crate::cbpf::opcode::Op::Alu(aop, crate::cbpf::opcode::Src::K).code();
            match o {
                O::Imm(k) => (c, k),
                O::X => (c | X, 0),
                _ => return Err(bad()),
            }
        }
    })
}

/// A conditional jump's code for `jeq #k` / `jeq x` etc.
pub(crate) fn encode_cond(op: JmpOp, operand: Operand) -> Result<(u16, u32), TextErrorKind> {
    use crate::cbpf::opcode::{Op, Src};
    match operand {
        Operand::Imm(k) => Ok((Op::Jmp(op, Src::K).code(), k)),
        Operand::X => Ok((Op::Jmp(op, Src::X).code(), 0)),
        other => Err(TextErrorKind::CompareOperand {
            mnemonic: op.mnemonic(),
            operand: format!("{other:?}"),
        }),
    }
}

//! `tcpdump -d`: `(000) ldh      [12]`, one instruction per line, jump
//! targets written as absolute instruction numbers. The writer prints what
//! libpcap's `bpf_image()` prints.

use super::operand::{encode_cond, encode_stmt, listing_anc_name, parse_operand};
use super::{parse_int, TextError, TextErrorKind};
use crate::cbpf::opcode::{Insn, JmpOp, Op, Src};
use crate::cbpf::program::{Anc, SKF_AD_OFF};

/// Parses a `tcpdump -d` listing (`(000) ldh [12]`).
pub fn parse_listing(text: &str) -> Result<Vec<Insn>, TextError> {
    let mut insns = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let ln = ln + 1;
        if line.trim().is_empty() {
            continue;
        }
        let lead = line.len() - line.trim_start().len();
        let body = line.trim_start();
        let pc = insns.len();
        let col = |byte: usize| super::char_col(line, byte);
        let rest = body
            .strip_prefix('(')
            .and_then(|r| r.split_once(')'))
            .ok_or_else(|| TextError::new(ln, col(lead), TextErrorKind::ExpectedPc))?;
        let n = rest.0.trim().parse::<i64>().ok().ok_or_else(|| {
            TextError::new(ln, col(lead + 1), TextErrorKind::BadPc(rest.0.to_string()))
        })?;
        if n != pc as i64 {
            return Err(TextError::new(
                ln,
                col(lead + 1),
                TextErrorKind::WrongPc {
                    found: n,
                    expected: pc,
                },
            ));
        }
        let after = rest.1;
        let after_off = line.len() - after.len();
        let t = after.trim_start();
        let mn_off = after_off + (after.len() - t.len());
        let (mn, operand_text) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        let mnl = mn.to_ascii_lowercase();
        let op_off = mn_off + mn.len();
        let jop = JmpOp::ALL.into_iter().find(|j| j.mnemonic() == mnl);
        let insn = if let Some(jop) = jop {
            let Some((operand, targets)) = operand_text.split_once("jt") else {
                return Err(TextError::new(ln, col(op_off), TextErrorKind::NoTargets));
            };
            let operand = parse_operand(operand).map_err(|m| TextError::new(ln, col(op_off), m))?;
            let (code, k) =
                encode_cond(jop, operand).map_err(|m| TextError::new(ln, col(op_off), m))?;
            let tw: Vec<&str> = targets.split_whitespace().collect();
            let tcol = col(line.len() - targets.len());
            let (jt, jf) = match tw.as_slice() {
                [t, "jf", f] => (*t, *f),
                _ => return Err(TextError::new(ln, tcol, TextErrorKind::ExpectedTargets)),
            };
            let rel = |t: &str| {
                let v = t.parse::<i64>().ok().ok_or_else(|| {
                    TextError::new(ln, tcol, TextErrorKind::BadTarget(t.to_string()))
                })?;
                let d = v - pc as i64 - 1;
                if !(0..=255).contains(&d) {
                    return Err(TextError::new(
                        ln,
                        tcol,
                        TextErrorKind::TargetReach { target: v, pc },
                    ));
                }
                Ok(d as u8)
            };
            Insn::new(code, rel(jt)?, rel(jf)?, k)
        } else if mnl == "ja" {
            let v = operand_text.trim().parse::<i64>().ok().ok_or_else(|| {
                TextError::new(
                    ln,
                    col(op_off),
                    TextErrorKind::BadTarget(operand_text.trim().to_string()),
                )
            })?;
            Insn::stmt(Op::Ja.code(), (v - pc as i64 - 1) as u32)
        } else if mnl == "unimp" {
            let v = parse_int(operand_text.trim())
                .filter(|v| (0..=0xffff).contains(v))
                .ok_or_else(|| TextError::new(ln, col(op_off), TextErrorKind::BadUnimp))?;
            Insn::stmt(v as u16, 0)
        } else {
            let operand =
                parse_operand(operand_text).map_err(|m| TextError::new(ln, col(op_off), m))?;
            let (code, k) =
                encode_stmt(&mnl, operand).map_err(|m| TextError::new(ln, col(mn_off), m))?;
            Insn::stmt(code, k)
        };
        insns.push(insn);
    }
    if insns.is_empty() {
        return Err(TextError::new(1, 1, TextErrorKind::NoListing));
    }
    Ok(insns)
}

/// libpcap's `bpf_image()` for one instruction at `pc`.
pub fn listing_line(pc: usize, i: &Insn) -> String {
    let k = i.k;
    let ks = k as i32;
    let (op, operand): (&str, String) = match Op::decode(i.code) {
        None => ("unimp", format!("0x{:x}", i.code)),
        Some(op) => match op {
            Op::RetK => ("ret", format!("#{ks}")),
            Op::RetA => ("ret", String::new()),
            Op::LdAbs(s) => {
                let mn = ["ld", "ldh", "ldb"][s as usize];
                let anc = k.checked_sub(SKF_AD_OFF).and_then(Anc::from_offset);
                match anc {
                    Some(a) => (mn, format!("[{}]", listing_anc_name(a))),
                    None => (mn, format!("[{ks}]")),
                }
            }
            Op::LdInd(s) => (["ld", "ldh", "ldb"][s as usize], format!("[x + {ks}]")),
            Op::LdLen => ("ld", "#pktlen".into()),
            Op::LdxLen => ("ldx", "#pktlen".into()),
            Op::LdImm => ("ld", format!("#0x{k:x}")),
            Op::LdxImm => ("ldx", format!("#0x{k:x}")),
            Op::LdxMsh => ("ldxb", format!("4*([{ks}]&0xf)")),
            Op::LdMem => ("ld", format!("M[{ks}]")),
            Op::LdxMem => ("ldx", format!("M[{ks}]")),
            Op::St => ("st", format!("M[{ks}]")),
            Op::Stx => ("stx", format!("M[{ks}]")),
            Op::Ja => ("ja", format!("{}", (pc as i64 + 1 + ks as i64))),
            Op::Jmp(j, Src::K) => (j.mnemonic(), format!("#0x{k:x}")),
            Op::Jmp(j, Src::X) => (j.mnemonic(), "x".into()),
            Op::Alu(a, Src::X) => (a.mnemonic(), "x".into()),
            Op::Alu(a, Src::K) => {
                use crate::cbpf::opcode::AluOp::*;
                match a {
                    And | Or | Xor => (a.mnemonic(), format!("#0x{k:x}")),
                    _ => (a.mnemonic(), format!("#{ks}")),
                }
            }
            Op::Neg => ("neg", String::new()),
            Op::Tax => ("tax", String::new()),
            Op::Txa => ("txa", String::new()),
        },
    };
    if matches!(Op::decode(i.code), Some(Op::Jmp(..))) {
        format!(
            "({pc:03}) {op:<8} {operand:<16} jt {}\tjf {}",
            pc + 1 + i.jt as usize,
            pc + 1 + i.jf as usize
        )
    } else {
        format!("({pc:03}) {op:<8} {operand}")
    }
}

/// `tcpdump -d` output for a whole program.
pub fn write_listing(insns: &[Insn]) -> String {
    insns
        .iter()
        .enumerate()
        .map(|(pc, i)| listing_line(pc, i) + "\n")
        .collect()
}

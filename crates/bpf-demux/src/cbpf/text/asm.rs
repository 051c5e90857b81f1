//! The kernel's bpf_asm language (`tools/bpf/bpf_exp.y`): one instruction a
//! line, `label:` definitions, `;` and `/* */` comments, operands `#k`,
//! `[k]`, `[x + k]`, `M[k]`, `4*([k]&0xf)`, `x`/`%x`, `a`, extension names,
//! conditional jumps with one or two labels, and the pseudo-jumps
//! `jne`/`jneq` (jump if not equal), `jlt` and `jle`.

use super::operand::{encode_cond, encode_stmt, parse_operand};
use super::{TextError, TextErrorKind};
use crate::cbpf::opcode::{Insn, JmpOp, Op};
use std::collections::HashMap;

/// A jump operand waiting for its label: (pc, which field, label, line, col).
struct Fixup<'a> {
    pc: usize,
    field: Field,
    label: &'a str,
    line: usize,
    col: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Field {
    Jt,
    Jf,
    K,
}

/// Blanks out comments, keeping line and column positions.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_block = false;
    let mut in_line = false;
    while let Some(c) = chars.next() {
        if in_block {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                out.push_str("  ");
                in_block = false;
            } else {
                out.push(if c == '\n' { '\n' } else { ' ' });
            }
        } else if in_line {
            if c == '\n' {
                in_line = false;
                out.push('\n');
            } else {
                out.push(' ');
            }
        } else if c == ';' {
            in_line = true;
            out.push(' ');
        } else if c == '/' && chars.peek() == Some(&'*') {
            chars.next();
            out.push_str("  ");
            in_block = true;
        } else {
            out.push(c);
        }
    }
    out
}

fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '.')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Parses bpf_asm text (labels, `#k`, `M[k]`, `[x + k]`, pseudo-jumps such as `jneq`).
pub fn parse_asm(text: &str) -> Result<Vec<Insn>, TextError> {
    let clean = strip_comments(text);
    let mut insns: Vec<Insn> = Vec::new();
    let mut labels: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut fixups: Vec<Fixup> = Vec::new();
    for (ln, line) in clean.lines().enumerate() {
        let ln = ln + 1;
        let col = |byte: usize| super::char_col(line, byte);
        let mut rest = line;
        let mut off = 0;
        // Label definitions: `name:` (possibly several, possibly before an instruction).
        loop {
            let t = rest.trim_start();
            let skip = rest.len() - t.len();
            let Some((name, after)) = t.split_once(':') else {
                break;
            };
            let name = name.trim_end();
            if !is_ident(name) {
                break;
            }
            if labels.insert(name, (insns.len(), ln)).is_some() {
                return Err(TextError::new(
                    ln,
                    col(off + skip),
                    TextErrorKind::LabelTwice(name.to_string()),
                ));
            }
            off += rest.len() - after.len();
            rest = after;
        }
        let t = rest.trim_start();
        if t.trim().is_empty() {
            continue;
        }
        let mn_off = off + (rest.len() - t.len());
        let (mn, ops) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        // Operands start after the (possibly multi-byte) separator.
        let ops_off = mn_off + mn.len() + t[mn.len()..].chars().next().map_or(0, char::len_utf8);
        let mnl = mn.to_ascii_lowercase();
        let pc = insns.len();
        let err = |byte: usize, m: TextErrorKind| TextError::new(ln, col(byte), m);
        // Conditional jumps: `jeq #k, Lt[, Lf]` and the pseudo-jumps.
        let cond = match mnl.as_str() {
            "jeq" => Some((JmpOp::Eq, false)),
            "jne" | "jneq" => Some((JmpOp::Eq, true)),
            "jgt" => Some((JmpOp::Gt, false)),
            "jle" => Some((JmpOp::Gt, true)),
            "jge" => Some((JmpOp::Ge, false)),
            "jlt" => Some((JmpOp::Ge, true)),
            "jset" => Some((JmpOp::Set, false)),
            _ => None,
        };
        // Split operands on commas, keeping each part's byte offset.
        let mut parts: Vec<(usize, &str)> = Vec::new();
        let mut p_off = ops_off;
        for p in ops.split(',') {
            let lead = p.len() - p.trim_start().len();
            parts.push((p_off + lead, p.trim()));
            p_off += p.len() + 1;
        }
        if ops.trim().is_empty() {
            parts.clear();
        }
        if let Some((jop, inverted)) = cond {
            if parts.len() < 2 || parts.len() > 3 || (inverted && parts.len() != 2) {
                return Err(err(
                    mn_off,
                    TextErrorKind::JumpArity {
                        mnemonic: mnl.clone(),
                        inverted,
                    },
                ));
            }
            let operand = parse_operand(parts[0].1).map_err(|m| err(parts[0].0, m))?;
            let (code, k) = encode_cond(jop, operand).map_err(|m| err(parts[0].0, m))?;
            insns.push(Insn::new(code, 0, 0, k));
            let targets: Vec<(Field, (usize, &str))> = if inverted {
                vec![(Field::Jf, parts[1])]
            } else if parts.len() == 2 {
                vec![(Field::Jt, parts[1])]
            } else {
                vec![(Field::Jt, parts[1]), (Field::Jf, parts[2])]
            };
            for (field, (at, name)) in targets {
                if !is_ident(name) {
                    return Err(err(at, TextErrorKind::NotLabel(name.to_string())));
                }
                fixups.push(Fixup {
                    pc,
                    field,
                    label: name,
                    line: ln,
                    col: col(at),
                });
            }
            continue;
        }
        if mnl == "jmp" || mnl == "ja" {
            let name = ops.trim();
            if !is_ident(name) || parts.len() != 1 {
                return Err(err(
                    ops_off,
                    TextErrorKind::JaArity {
                        mnemonic: mnl.clone(),
                        found: name.to_string(),
                    },
                ));
            }
            insns.push(Insn::stmt(Op::Ja.code(), 0));
            fixups.push(Fixup {
                pc,
                field: Field::K,
                label: name,
                line: ln,
                col: col(parts[0].0),
            });
            continue;
        }
        if parts.len() > 1 {
            return Err(err(parts[1].0, TextErrorKind::OneOperand(mnl.clone())));
        }
        let operand = parse_operand(ops).map_err(|m| err(ops_off, m))?;
        let (code, k) = encode_stmt(&mnl, operand).map_err(|m| {
            err(
                mn_off,
                match m {
                    TextErrorKind::OperandNotTaken { mnemonic, operand } => {
                        TextErrorKind::UnknownInstruction { mnemonic, operand }
                    }
                    m => m,
                },
            )
        })?;
        insns.push(Insn::stmt(code, k));
    }
    for f in &fixups {
        let Some(&(target, _)) = labels.get(f.label) else {
            return Err(TextError::new(
                f.line,
                f.col,
                TextErrorKind::UndefinedLabel(f.label.to_string()),
            ));
        };
        if target <= f.pc {
            return Err(TextError::new(
                f.line,
                f.col,
                TextErrorKind::LabelBehind(f.label.to_string()),
            ));
        }
        let d = target - f.pc - 1;
        match f.field {
            Field::K => insns[f.pc].k = d as u32,
            Field::Jt | Field::Jf => {
                if d > 255 {
                    return Err(TextError::new(
                        f.line,
                        f.col,
                        TextErrorKind::LabelFar {
                            label: f.label.to_string(),
                            distance: d,
                        },
                    ));
                }
                if f.field == Field::Jt {
                    insns[f.pc].jt = d as u8;
                } else {
                    insns[f.pc].jf = d as u8;
                }
            }
        }
    }
    if insns.is_empty() {
        return Err(TextError::new(1, 1, TextErrorKind::NoAsm));
    }
    Ok(insns)
}

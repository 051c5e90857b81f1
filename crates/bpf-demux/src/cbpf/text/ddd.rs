//! `tcpdump -ddd`: a count, then `code jt jf k` in decimal; either one
//! instruction per line, or all on one line joined by commas (the form
//! iptables' xt_bpf and bpf_asm print).

use super::{parse_int, words, TextError, TextErrorKind};
use crate::cbpf::opcode::Insn;

/// Reads either -ddd form. The count must match the instructions given.
pub fn parse_ddd(text: &str) -> Result<Vec<Insn>, TextError> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let Some(&(first_line, first)) = lines.first() else {
        return Err(TextError::new(1, 1, TextErrorKind::EmptyDdd));
    };
    // (line, column of field start, field text)
    let mut fields: Vec<(usize, usize, &str)> = Vec::new();
    if first.contains(',') {
        if lines.len() > 1 {
            let (l, _) = lines[1];
            return Err(TextError::new(l, 1, TextErrorKind::TextAfterDdd));
        }
        let mut col = 1;
        for part in first.split(',') {
            fields.push((first_line, col, part));
            col += part.chars().count() + 1;
        }
    } else {
        for &(l, t) in &lines {
            fields.push((l, 1, t));
        }
    }
    let (cl, cc, count_text) = fields[0];
    let count_words = words(count_text);
    let count = match count_words.as_slice() {
        [(c, w)] => parse_int(w).filter(|v| *v >= 0).ok_or_else(|| {
            TextError::new(cl, cc + c - 1, TextErrorKind::BadCount(w.to_string()))
        })?,
        _ => return Err(TextError::new(cl, cc, TextErrorKind::CountFirst)),
    } as usize;
    if count == 0 {
        return Err(TextError::new(cl, cc, TextErrorKind::ZeroCount));
    }
    let mut insns = Vec::with_capacity(fields.len() - 1);
    for &(line, col0, f) in &fields[1..] {
        let ws = words(f);
        if ws.len() != 4 {
            let col = ws.first().map_or(col0, |(c, _)| col0 + c - 1);
            return Err(TextError::new(
                line,
                col,
                TextErrorKind::DddFields(ws.len()),
            ));
        }
        let num = |i: usize, max: i64, what: &'static str| {
            let (c, w) = ws[i];
            parse_int(w)
                .filter(|v| *v >= i32::MIN as i64 && *v <= max)
                .ok_or_else(|| {
                    TextError::new(
                        line,
                        col0 + c - 1,
                        TextErrorKind::FieldRange {
                            field: what,
                            text: w.to_string(),
                            max,
                        },
                    )
                })
        };
        let code = num(0, 0xffff, "opcode")?;
        let jt = num(1, 0xff, "jt")?;
        let jf = num(2, 0xff, "jf")?;
        let k = num(3, u32::MAX as i64, "k")?;
        for (i, v) in [(0, code), (1, jt), (2, jf)] {
            if v < 0 {
                let (c, w) = ws[i];
                return Err(TextError::new(
                    line,
                    col0 + c - 1,
                    TextErrorKind::NegativeField(w.to_string()),
                ));
            }
        }
        insns.push(Insn::new(code as u16, jt as u8, jf as u8, k as u32));
    }
    if insns.len() != count {
        return Err(TextError::new(
            cl,
            cc,
            TextErrorKind::CountMismatch {
                count,
                found: insns.len(),
            },
        ));
    }
    Ok(insns)
}

/// `tcpdump -ddd`: the count, then one instruction per line.
pub fn write_ddd(insns: &[Insn]) -> String {
    let mut s = format!("{}\n", insns.len());
    for i in insns {
        s.push_str(&format!("{} {} {} {}\n", i.code, i.jt, i.jf, i.k));
    }
    s
}

/// The one-line comma form: `4,40 0 0 12,21 0 1 2048,6 0 0 262144,6 0 0 0`.
pub fn write_ddd_line(insns: &[Insn]) -> String {
    let mut s = insns.len().to_string();
    for i in insns {
        s.push_str(&format!(",{} {} {} {}", i.code, i.jt, i.jf, i.k));
    }
    s
}

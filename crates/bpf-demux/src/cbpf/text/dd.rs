//! `tcpdump -dd`: C array rows `{ 0x28, 0, 0, 0x0000000c },`. Also reads a
//! whole `struct sock_filter code[] = { ... };` declaration: every innermost
//! brace group is one instruction.

use super::{line_col, parse_int, TextError, TextErrorKind};
use crate::cbpf::opcode::Insn;

/// Parses `tcpdump -dd` C rows: `{ code, jt, jf, k },`.
pub fn parse_dd(text: &str) -> Result<Vec<Insn>, TextError> {
    let bytes = text.as_bytes();
    let mut insns = Vec::new();
    let mut i = 0;
    while let Some(open) = text[i..].find('{').map(|p| p + i) {
        let close = text[open..].find('}').map(|p| p + open);
        let next_open = text[open + 1..].find('{').map(|p| p + open + 1);
        let close = match (close, next_open) {
            (Some(c), Some(n)) if n < c => {
                i = n;
                continue;
            }
            (Some(c), _) => c,
            (None, _) => {
                let (l, c) = line_col(bytes, open);
                return Err(TextError::new(l, c, TextErrorKind::Unclosed));
            }
        };
        let inner = &text[open + 1..close];
        let parts: Vec<&str> = inner.split(',').collect();
        if parts.len() != 4 {
            let (l, c) = line_col(bytes, open);
            return Err(TextError::new(l, c, TextErrorKind::DdFields(parts.len())));
        }
        let mut off = open + 1;
        let mut vals = [0i64; 4];
        for (n, p) in parts.iter().enumerate() {
            let lead = p.len() - p.trim_start().len();
            let w = p.trim();
            let max = [0xffff, 0xff, 0xff, u32::MAX as i64][n];
            let min = if n == 3 { i32::MIN as i64 } else { 0 };
            vals[n] = parse_int(w)
                .filter(|v| *v >= min && *v <= max)
                .ok_or_else(|| {
                    let (l, c) = line_col(bytes, off + lead);
                    let what = ["code", "jt", "jf", "k"][n];
                    TextError::new(
                        l,
                        c,
                        TextErrorKind::BadField {
                            field: what,
                            text: w.to_string(),
                        },
                    )
                })?;
            off += p.len() + 1;
        }
        insns.push(Insn::new(
            vals[0] as u16,
            vals[1] as u8,
            vals[2] as u8,
            vals[3] as u32,
        ));
        i = close + 1;
    }
    if insns.is_empty() {
        return Err(TextError::new(1, 1, TextErrorKind::NoRows));
    }
    Ok(insns)
}

/// `tcpdump -dd` output, byte for byte.
pub fn write_dd(insns: &[Insn]) -> String {
    insns
        .iter()
        .map(|i| format!("{{ 0x{:x}, {}, {}, 0x{:08x} }},\n", i.code, i.jt, i.jf, i.k))
        .collect()
}

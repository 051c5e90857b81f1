//! Raw `struct sock_filter` records: 8 bytes each, host byte order (what a
//! program's memory holds when it calls `setsockopt(SO_ATTACH_FILTER)`).

use super::{TextError, TextErrorKind};
use crate::cbpf::opcode::Insn;

/// Reads raw records. Errors give the byte offset as the column of line 1.
pub fn parse_raw(bytes: &[u8]) -> Result<Vec<Insn>, TextError> {
    if bytes.is_empty() {
        return Err(TextError::new(1, 1, TextErrorKind::EmptyRaw));
    }
    if bytes.len() % 8 != 0 {
        let whole = bytes.len() / 8 * 8;
        return Err(TextError::new(
            1,
            whole + 1,
            TextErrorKind::RawPartial { len: bytes.len() },
        ));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|r| {
            Insn::new(
                u16::from_ne_bytes([r[0], r[1]]),
                r[2],
                r[3],
                u32::from_ne_bytes([r[4], r[5], r[6], r[7]]),
            )
        })
        .collect())
}

/// Raw 8-byte records, host order, as `SO_ATTACH_FILTER` takes them.
pub fn write_raw(insns: &[Insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(insns.len() * 8);
    for i in insns {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

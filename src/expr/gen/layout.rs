//! Label resolution with `ja` trampolines.

use super::Item;
use crate::cbpf::opcode::Op;
use crate::cbpf::program::MAX_INSNS;
use crate::cbpf::Insn;
use crate::expr::ExprError;

/// Resolves labels, inserting `ja` trampolines for conditional jumps that
/// reach further than 255 instructions.
pub(super) fn layout(items: Vec<Item>, nlabels: usize) -> Result<Vec<Insn>, ExprError> {
    // far[i]: (jt far, jf far) for the i-th item when it is a Jmp.
    let mut far = vec![(false, false); items.len()];
    loop {
        // Positions of instructions and labels.
        let mut pos = vec![0usize; items.len()];
        let mut at = vec![usize::MAX; nlabels];
        let mut pc = 0;
        for (i, it) in items.iter().enumerate() {
            pos[i] = pc;
            match it {
                Item::Place(l) => at[*l] = pc,
                Item::Jmp { .. } => pc += 1 + far[i].0 as usize + far[i].1 as usize,
                _ => pc += 1,
            }
        }
        if pc > MAX_INSNS {
            return Err(ExprError::new(
                1,
                format!(
                    "the program would have {pc} instructions; the kernel's limit is {MAX_INSNS}"
                ),
            ));
        }
        let mut changed = false;
        for (i, it) in items.iter().enumerate() {
            if let Item::Jmp { t, f, .. } = it {
                let next = pos[i] + 1;
                let need = (at[*t] - next > 255, at[*f] - next > 255);
                let now = (far[i].0 || need.0, far[i].1 || need.1);
                if now != far[i] {
                    far[i] = now;
                    changed = true;
                }
            }
        }
        if changed {
            continue;
        }
        let mut out = Vec::with_capacity(pc);
        for (i, it) in items.iter().enumerate() {
            match it {
                Item::Place(_) => {}
                Item::Stmt(s) => out.push(*s),
                Item::Ja(l) => out.push(Insn::stmt(Op::Ja.code(), (at[*l] - pos[i] - 1) as u32)),
                Item::Jmp { code, k, t, f } => {
                    let (ft, ff) = far[i];
                    let next = pos[i] + 1;
                    let mut tramp = Vec::new();
                    let jt = if ft {
                        tramp.push(*t);
                        0
                    } else {
                        (at[*t] - next) as u8
                    };
                    let jf = if ff {
                        tramp.push(*f);
                        ft as u8
                    } else {
                        (at[*f] - next) as u8
                    };
                    out.push(Insn::new(*code, jt, jf, *k));
                    for (n, l) in tramp.iter().enumerate() {
                        let here = pos[i] + 1 + n;
                        out.push(Insn::stmt(Op::Ja.code(), (at[*l] - here - 1) as u32));
                    }
                }
            }
        }
        return Ok(out);
    }
}

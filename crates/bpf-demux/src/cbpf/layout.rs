//! Forward-only cBPF assembly: instructions and jumps to labels, resolved
//! at the end; a conditional jump whose target is more than 255
//! instructions ahead goes through a `ja` trampoline placed right after it.
//! Used by every code generator (the expression compiler, the kernel
//! prefilter).

use super::opcode::{JmpOp, Op, Src};
use super::program::MAX_INSNS;
use super::Insn;

/// A jump target; [`Item::Place`] puts it before the next instruction.
pub type Label = usize;

/// One element of a program under construction.
#[derive(Clone, Copy, Debug)]
pub enum Item {
    /// Any instruction but a jump: `op` with operand `k`.
    Stmt(Op, u32),
    /// A conditional jump, `A op k` (or `A op X`), to `t` or `f`.
    Jmp {
        /// The comparison.
        op: JmpOp,
        /// Compared with k or X.
        src: Src,
        /// The constant.
        k: u32,
        /// Where to go when it holds.
        t: Label,
        /// Where to go when it does not.
        f: Label,
    },
    /// An unconditional jump.
    Ja(Label),
    /// Puts a label before the next instruction.
    Place(Label),
}

/// The program would exceed the kernel's instruction limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLong {
    /// Instructions it would have (trampolines included, at the point the
    /// limit was found exceeded).
    pub insns: usize,
}

/// Removes jumps to the very next instruction and sends jumps whose
/// target is an unconditional `ja` straight to its destination.
pub fn thread_jumps(items: &[Item], nlabels: usize) -> Vec<Item> {
    // Where each label leads: the first `Ja` right after it (through
    // other labels), followed transitively; cycles cannot occur forward.
    let mut next_ja: Vec<Option<Label>> = vec![None; nlabels];
    let mut pending: Vec<Label> = Vec::new();
    for it in items {
        match it {
            Item::Place(l) => pending.push(*l),
            Item::Ja(t) => {
                for l in pending.drain(..) {
                    next_ja[l] = Some(*t);
                }
            }
            _ => pending.clear(),
        }
    }
    let resolve = |mut l: Label| {
        while let Some(t) = next_ja[l] {
            if t == l {
                break;
            }
            l = t;
        }
        l
    };
    let mut out: Vec<Item> = items
        .iter()
        .map(|it| match *it {
            Item::Ja(l) => Item::Ja(resolve(l)),
            Item::Jmp { op, src, k, t, f } => Item::Jmp {
                op,
                src,
                k,
                t: resolve(t),
                f: resolve(f),
            },
            other => other,
        })
        .collect();
    // Drop `ja L` when only label placements separate it from L.
    let mut keep = vec![true; out.len()];
    for i in 0..out.len() {
        if let Item::Ja(l) = out[i] {
            let mut j = i + 1;
            while let Some(Item::Place(p)) = out.get(j) {
                if *p == l {
                    keep[i] = false;
                    break;
                }
                j += 1;
            }
        }
    }
    // Drop what nothing reaches: instructions after a `ret`, a `ja` or a
    // conditional jump, up to the next label something jumps to.
    let mut used = vec![false; nlabels];
    for (it, k) in out.iter().zip(&keep) {
        match it {
            Item::Ja(l) if *k => used[*l] = true,
            Item::Jmp { t, f, .. } => {
                used[*t] = true;
                used[*f] = true;
            }
            _ => {}
        }
    }
    let mut live = true;
    for (it, k) in out.iter().zip(keep.iter_mut()) {
        match it {
            Item::Place(l) => live |= used[*l],
            _ if !*k => {}
            _ if !live => *k = false,
            Item::Stmt(Op::RetK | Op::RetA, _) => live = false,
            Item::Ja(_) | Item::Jmp { .. } => live = false,
            _ => {}
        }
    }
    let mut i = 0;
    out.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    if out.len() < items.len() {
        thread_jumps(&out, nlabels)
    } else {
        out
    }
}

/// Resolves labels, inserting `ja` trampolines for conditional jumps that
/// reach further than 255 instructions. Every label jumped to must be
/// placed after the jump (forward-only).
pub fn layout(items: &[Item], nlabels: usize) -> Result<Vec<Insn>, TooLong> {
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
            return Err(TooLong { insns: pc });
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
                Item::Stmt(op, k) => out.push(Insn::stmt(op.code(), *k)),
                Item::Ja(l) => out.push(Insn::stmt(Op::Ja.code(), (at[*l] - pos[i] - 1) as u32)),
                Item::Jmp { op, src, k, t, f } => {
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
                    out.push(Insn::new(Op::Jmp(*op, *src).code(), jt, jf, *k));
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

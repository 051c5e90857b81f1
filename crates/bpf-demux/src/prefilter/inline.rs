//! A fallback filter inlined into the prefilter as one more alternative.
//!
//! A filter the merged structure does not hold runs in the interpreter in
//! userland; in the kernel it becomes one alternative after the merged
//! part: its code, with every `ret` turned into a jump (`ret #0`, or a
//! `ret a` of 0, to the next alternative; any other to `ret ACCEPT`). What
//! would end the whole program with 0 in the kernel must instead end only
//! this alternative, so each such point is guarded:
//!
//! - a packet load that may not fit: `ld len; jge #end` first, to the next
//!   alternative when it does not (A is overwritten by the load anyway);
//! - an indexed load: `X + k` computed into A (X kept in a scratch cell the
//!   filter never uses), a negative sum (the kernel's special areas, not
//!   modelled here) returns ACCEPT, else compared with the length;
//! - `ldx 4*([k]&0xf)` and `div x` / `mod x`: A kept in the scratch cell
//!   across the length or `X == 0` test;
//! - loads in the negative areas return ACCEPT where they are.
//!
//! A and X start at 0 in every alternative, as in a filter of its own.
//! Every answer is the filter's own or ACCEPT, so the prefilter stays a
//! superset of what the tenants accept.

use super::{Gen, ACCEPT};
use crate::cbpf::layout::Label;
use crate::cbpf::opcode::{AluOp, JmpOp, Op, Size, Src};
use crate::cbpf::program::SKF_AD_OFF;
use crate::cbpf::{Instr, Program};

/// The filter needs a scratch cell for a guard and uses all sixteen.
#[derive(Clone, Copy, Debug)]
pub(super) struct NoFreeCell;

/// The first scratch cell `prog` never names.
fn free_cell(prog: &Program) -> Option<u32> {
    let mut used = [false; 16];
    for i in prog.instrs() {
        if let Instr::LdMem(k) | Instr::LdxMem(k) | Instr::St(k) | Instr::Stx(k) = *i {
            used[k as usize] = true;
        }
    }
    used.iter().position(|u| !u).map(|k| k as u32)
}

/// Whether an instruction needs the scratch cell for its guard.
fn needs_cell(i: &Instr) -> bool {
    matches!(
        i,
        Instr::LdInd { .. } | Instr::LdxMsh(_) | Instr::AluX(AluOp::Div | AluOp::Mod)
    )
}

impl Gen<'_> {
    /// `prog` as an alternative: ACCEPT where it accepts, a jump to `next`
    /// where it rejects or would fail.
    pub(super) fn alternative(&mut self, prog: &Program, next: Label) -> Result<(), NoFreeCell> {
        let instrs = prog.instrs();
        let cell = match instrs.iter().any(needs_cell) {
            true => free_cell(prog).ok_or(NoFreeCell)?,
            false => 0,
        };
        let at: Vec<Label> = instrs.iter().map(|_| self.label()).collect();
        // Where an instruction that is not a `ret` gives up (a load in the
        // negative areas): a jump here, not a `ret` in place, because the
        // kernel's scratch check carries the written cells on past a `ret`
        // into the next instruction, which may then read a cell only the
        // code the `ret` made dead had written.
        let accept = self.label();
        self.stmt(Op::LdImm, 0);
        self.stmt(Op::LdxImm, 0);
        for (pc, i) in instrs.iter().enumerate() {
            self.place(at[pc]);
            self.instr(*i, &at, cell, next, accept);
        }
        // The last instruction is a `ret`, turned into a jump: nothing
        // falls through to here.
        self.place(accept);
        self.accept();
        Ok(())
    }

    /// A load of `bytes` at constant `off` (frame or negative area).
    fn guarded_abs(&mut self, size: Size, off: u32, next: Label, accept: Label) {
        if off >= 0x8000_0000 {
            // The link- or network-relative areas: not modelled.
            self.ja(accept);
            return;
        }
        let ok = self.label();
        self.stmt(Op::LdLen, 0);
        self.jmp(JmpOp::Ge, off + size.bytes(), ok, next);
        self.place(ok);
        self.stmt(Op::LdAbs(size), off);
    }

    fn instr(&mut self, i: Instr, at: &[Label], cell: u32, next: Label, accept: Label) {
        match i {
            Instr::LdAbs { size, off } => self.guarded_abs(size, off, next, accept),
            Instr::LdAnc(anc) => {
                self.stmt(Op::LdAbs(Size::W), SKF_AD_OFF.wrapping_add(anc.offset()))
            }
            Instr::LdInd { size, off } => {
                let (check, negative, ok) = (self.label(), self.label(), self.label());
                self.stmt(Op::Stx, cell);
                self.stmt(Op::Txa, 0);
                self.stmt(Op::Alu(AluOp::Add, Src::K), off);
                self.jmp(JmpOp::Set, 0x8000_0000, negative, check);
                self.place(check);
                self.stmt(Op::Alu(AluOp::Add, Src::K), size.bytes());
                self.stmt(Op::Tax, 0);
                self.stmt(Op::LdLen, 0);
                self.jmp_x(JmpOp::Ge, ok, next);
                self.place(negative);
                self.accept();
                self.place(ok);
                self.stmt(Op::LdxMem, cell);
                self.stmt(Op::LdInd(size), off);
            }
            Instr::LdxMsh(k) if k >= 0x8000_0000 => self.ja(accept),
            Instr::LdxMsh(k) => {
                let ok = self.label();
                self.stmt(Op::St, cell);
                self.stmt(Op::LdLen, 0);
                self.jmp(JmpOp::Ge, k + 1, ok, next);
                self.place(ok);
                self.stmt(Op::LdMem, cell);
                self.stmt(Op::LdxMsh, k);
            }
            Instr::AluX(op @ (AluOp::Div | AluOp::Mod)) => {
                let ok = self.label();
                self.stmt(Op::St, cell);
                self.stmt(Op::Txa, 0);
                self.jmp(JmpOp::Eq, 0, next, ok);
                self.place(ok);
                self.stmt(Op::LdMem, cell);
                self.stmt(Op::Alu(op, Src::X), 0);
            }
            Instr::LdLen => self.stmt(Op::LdLen, 0),
            Instr::LdImm(k) => self.stmt(Op::LdImm, k),
            Instr::LdMem(k) => self.stmt(Op::LdMem, k as u32),
            Instr::LdxLen => self.stmt(Op::LdxLen, 0),
            Instr::LdxImm(k) => self.stmt(Op::LdxImm, k),
            Instr::LdxMem(k) => self.stmt(Op::LdxMem, k as u32),
            Instr::St(k) => self.stmt(Op::St, k as u32),
            Instr::Stx(k) => self.stmt(Op::Stx, k as u32),
            Instr::AluK(op, k) => self.stmt(Op::Alu(op, Src::K), k),
            Instr::AluX(op) => self.stmt(Op::Alu(op, Src::X), 0),
            Instr::Neg => self.stmt(Op::Neg, 0),
            Instr::Tax => self.stmt(Op::Tax, 0),
            Instr::Txa => self.stmt(Op::Txa, 0),
            Instr::Ja(t) => self.ja(at[t as usize]),
            Instr::JmpK { op, k, jt, jf } => self.jmp(op, k, at[jt as usize], at[jf as usize]),
            Instr::JmpX { op, jt, jf } => self.jmp_x(op, at[jt as usize], at[jf as usize]),
            Instr::RetK(0) => self.ja(next),
            Instr::RetK(_) => self.accept(),
            Instr::RetA => {
                let yes = self.label();
                self.jmp(JmpOp::Eq, 0, next, yes);
                self.place(yes);
                self.stmt(Op::RetK, ACCEPT);
            }
        }
    }
}

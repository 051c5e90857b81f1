//! Classic BPF as the Linux kernel defines it: the instruction model, the
//! text forms users have, the validator and the reference interpreter.
//!
//! Pipeline position: first. Text (or raw records) becomes `Vec<Insn>`
//! ([`text`]), the validator turns that into a [`Program`] (the only way to
//! make one), and [`interp::run`] gives the kernel's answer for a frame.
//! This layer depends on nothing else in the crate.

pub mod interp;
pub mod layout;
pub mod meta;
pub mod opcode;
pub mod program;
pub mod text;

pub use interp::run;
pub use meta::FrameMeta;
pub use opcode::{AluOp, Insn, JmpOp, Op, Size, Src};
pub use program::{Anc, Instr, Program, UnknowableLoad, ValidateError};

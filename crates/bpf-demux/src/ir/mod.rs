//! The normal form of a filter: terms and accepting paths.
//!
//! Pipeline position: after `cbpf`. [`normalize()`] turns a validated
//! [`Program`](crate::cbpf::Program) into a [`NormalForm`] whose literals
//! test hash-consed [`Term`]s; equal work in different filters becomes the
//! same term and the same literal. Depends only on `cbpf`.

pub mod lit;
pub mod normalize;
pub mod term;

pub use lit::{Facts, Lit};
pub use normalize::{normalize, Limits, NormalForm, NormalizeError, Path, Ret};
pub use term::{Interner, Term, TermId};

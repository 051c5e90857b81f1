//! Readers and writers for every text form users bring cBPF programs in.
//!
//! | form | reader | writer |
//! |---|---|---|
//! | `tcpdump -ddd` (count line, then `code jt jf k` lines) and its one-line comma form | [`parse_ddd`] | [`write_ddd`], [`write_ddd_line`] |
//! | `tcpdump -dd` (C array rows) | [`parse_dd`] | [`write_dd`] |
//! | `tcpdump -d` (listing, absolute jump targets) | [`parse_listing`] | [`write_listing`] |
//! | bpf_asm (kernel `tools/bpf`) | [`parse_asm`] | — |
//! | raw 8-byte `sock_filter` records, host order | [`parse_raw`] | [`write_raw`] |
//!
//! Readers produce raw [`Insn`]s and check only the form; the validator
//! decides whether the kernel would run them. Every reader error carries the
//! 1-based line and column (or byte offset) of the fault. Reading what a
//! writer wrote gives the same instructions back.

mod asm;
mod dd;
mod ddd;
mod error;
mod listing;
mod operand;
mod raw;

pub use asm::parse_asm;
pub use dd::{parse_dd, write_dd};
pub use ddd::{parse_ddd, write_ddd, write_ddd_line};
pub use listing::{parse_listing, write_listing};
pub use raw::{parse_raw, write_raw};

pub use error::{TextError, TextErrorKind};

use super::opcode::Insn;

/// The text forms, for callers that let the user choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `tcpdump -ddd`: a count, then `code jt jf k` lines.
    Ddd,
    /// `tcpdump -dd`: C rows.
    Dd,
    /// `tcpdump -d`: the listing.
    Listing,
    /// bpf_asm text.
    Asm,
    /// Raw 8-byte `struct sock_filter` records, host order.
    Raw,
}

impl Form {
    /// The form's name as options spell it.
    pub fn name(self) -> &'static str {
        match self {
            Form::Ddd => "ddd",
            Form::Dd => "dd",
            Form::Listing => "d",
            Form::Asm => "asm",
            Form::Raw => "raw",
        }
    }
    /// Guesses the form of `bytes`: raw when not text, else by the first
    /// significant character.
    pub fn detect(bytes: &[u8]) -> Form {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Form::Raw;
        };
        if text.chars().any(|c| c.is_control() && !c.is_whitespace()) {
            return Form::Raw;
        }
        let t = text.trim_start();
        match t.chars().next() {
            Some('(') => Form::Listing,
            Some(c) if c.is_ascii_digit() => Form::Ddd,
            _ if t.contains('{') && !t.contains(';') && !t.contains(':') => Form::Dd,
            _ if t.starts_with("struct") || t.starts_with('{') => Form::Dd,
            _ => Form::Asm,
        }
    }
    /// Parses `bytes` in this form.
    pub fn parse(self, bytes: &[u8]) -> Result<Vec<Insn>, TextError> {
        if self == Form::Raw {
            return parse_raw(bytes);
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let (line, col) = line_col(bytes, e.valid_up_to());
            TextError::new(line, col, TextErrorKind::NotUtf8)
        })?;
        if text.trim().is_empty() {
            return Err(TextError::new(1, 1, TextErrorKind::Empty));
        }
        match self {
            Form::Ddd => parse_ddd(text),
            Form::Dd => parse_dd(text),
            Form::Listing => parse_listing(text),
            Form::Asm => parse_asm(text),
            Form::Raw => unreachable!("handled above"),
        }
    }
}

/// 1-based line and column of byte `offset` in `bytes`.
pub fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, col)
}

/// 1-based column of byte `byte` of `line` (a byte inside a character
/// counts as that character).
pub(crate) fn char_col(line: &str, byte: usize) -> usize {
    line.char_indices().take_while(|(i, _)| *i < byte).count() + 1
}

/// Parses an integer as C and bpf_asm write them: decimal, `0x` hex, `0b`
/// binary, leading-zero octal, optional `-` (wrapped to 32 bits).
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(b) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        i64::from_str_radix(b, 2).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        body.parse::<i64>().ok()?
    };
    if v > u32::MAX as i64 {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// A 32-bit operand: any value from `i32::MIN` to `u32::MAX`, as bits.
pub(crate) fn parse_k(s: &str) -> Option<u32> {
    let v = parse_int(s)?;
    if v < i32::MIN as i64 {
        return None;
    }
    Some(v as u32)
}

/// Splits `line` into whitespace-separated words with their 1-based columns.
pub(crate) fn words(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push((s, &line[s..i]));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((s, &line[s..]));
    }
    out.into_iter()
        .map(|(s, w)| (line[..s].chars().count() + 1, w))
        .collect()
}

#[cfg(test)]
mod tests;

//! Replays every input a fuzz target failed on (tests/data/fuzz-regressions/
//! <target>/*), with the fuzz targets' own checks. Each file is named for
//! what it found:
//! - readers/ddd-count-zero: `0` read as an empty -ddd program, which no
//!   other form can write back (fixed: count 0 is refused).
//! - readers/asm-multibyte-whitespace, readers/asm-nel-separator: a
//!   mnemonic followed by U+0085 (a 2-byte whitespace): column arithmetic
//!   sliced inside the character and panicked (fixed: columns are counted
//!   by characters, operands start after the real separator).

#[path = "common/fuzz_checks.rs"]
mod fuzz_checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz-regressions")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        check(&std::fs::read(&p).unwrap());
        n += 1;
    }
    n
}

#[test]
fn readers_regressions() {
    assert!(replay("readers", fuzz_checks::readers) >= 1);
}

#[test]
fn merged_regressions() {
    replay("merged", fuzz_checks::merged);
}

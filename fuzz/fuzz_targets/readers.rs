//! Arbitrary bytes through every text reader, the form detector, the
//! validator and the set-file parser (checks in crates/bpf-demux-tools/tests/common/fuzz_checks.rs).
#![no_main]

#[path = "../../crates/bpf-demux-tools/tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::readers(data));

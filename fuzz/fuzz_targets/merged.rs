//! Arbitrary kernel-valid programs and a frame: the merged set's answer
//! equals the interpreter's (checks in crates/bpf-demux-tools/tests/common/fuzz_checks.rs).
#![no_main]

#[path = "../../crates/bpf-demux-tools/tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::merged(data);
});

//! Arbitrary bytes through the serve protocol's decoders (checks in
//! crates/bpf-demux-tools/tests/common/fuzz_checks.rs).
#![no_main]

#[path = "../../crates/bpf-demux-tools/tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::serve_proto(data);
});

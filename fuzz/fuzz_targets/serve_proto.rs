//! Arbitrary bytes through the serve protocol's decoders (checks in
//! tests/common/fuzz_checks.rs).
#![no_main]

#[path = "../../tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::serve_proto(data);
});

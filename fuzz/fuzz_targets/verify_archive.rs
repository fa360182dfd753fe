//! Fuzz target: the `verify_archive` property of tests/properties/mod.rs.
#![no_main]

#[path = "../../tests/properties/mod.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| properties::verify_archive(data));

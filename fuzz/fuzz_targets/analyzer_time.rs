//! The analyzer's time parsers (RFC 3339 and `--since`-style relative times) on any bytes:
//! no panic, a parsed instant prints in the contract's form and parses back to itself.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    tracekit_analyzer::fuzzing::check_time(input);
});

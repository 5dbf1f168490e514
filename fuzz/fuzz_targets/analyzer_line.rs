//! The analyzer's line parser and its fast paths (timestamp, level, timing reader) on any
//! bytes: no panic, the fast paths agree with the full parse, a parsed record round-trips.
#![no_main]

libfuzzer_sys::fuzz_target!(|line: &[u8]| {
    tracekit_analyzer::fuzzing::check_line(line);
});

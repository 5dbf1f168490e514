//! Entry points for the fuzz targets in `fuzz/` and the parser property tests: not a
//! public API (hidden from the docs, free to change).
//!
//! Each function feeds one input to the analyzer's parsers and panics when they disagree
//! with each other or break a promise; a fuzzer treats that panic as a finding.

use super::record::{quick_level, quick_timestamp, FastTiming, RecordView, TimingReader};
use super::time::parse_rfc3339;
use super::{LogEntry, SkipReason, Timestamp};

/// Parses one line (without its `\n`) the way the queries do: `Ok` with the record, or why
/// the line is skipped.
pub fn parse_line(line: &[u8]) -> Result<LogEntry, SkipReason> {
    RecordView::parse(line).map(|v| v.to_entry())
}

/// The line parser and its fast paths on one input: none panics, and where a fast path
/// answers for a line that parses, it agrees with the full parse. A parsed record written
/// back as JSON parses to the same record.
pub fn check_line(line: &[u8]) {
    let full = RecordView::parse(line);
    let quick_ts = quick_timestamp(line);
    let quick_lvl = quick_level(line);
    let fast = TimingReader::new().read(line);
    let Ok(view) = full else { return };
    if let Some(ts) = quick_ts {
        assert_eq!(ts, view.micros, "quick timestamp disagrees");
    }
    if let Some(level) = quick_lvl.filter(|l| !l.contains(&b'\\')) {
        assert_eq!(
            level,
            view.level.as_str().as_bytes(),
            "quick level disagrees"
        );
    }
    match fast {
        Some(FastTiming::Timing(ms, function)) => {
            assert_eq!(view.duration_ms(), Some(ms), "fast duration disagrees");
            assert_eq!(view.function(), function, "fast function disagrees");
        }
        Some(FastTiming::NotTiming) => {
            assert_eq!(view.duration_ms(), None, "fast path missed a timing record")
        }
        None => {}
    }
    let entry = view.to_entry();
    if in_four_digit_years(entry.timestamp) {
        let json = serde_json::to_vec(&entry).expect("a LogEntry serialises");
        let again = parse_line(&json).expect("a LogEntry written back parses");
        assert_eq!(again, entry, "round trip through JSON changed the record");
    }
}

/// The time parsers on one input: no panic; a parsed instant prints in the contract's form
/// and parses back to itself; the contract's fixed-width fast path agrees with the general
/// parser.
pub fn check_time(input: &[u8]) {
    let fast = parse_rfc3339(input);
    let Ok(s) = std::str::from_utf8(input) else {
        return;
    };
    let now = Timestamp::from_micros(1_763_296_496_789_123);
    if let Ok(t) = Timestamp::parse_arg(s, now) {
        let _ = t.to_string();
    }
    let Some(t) = Timestamp::parse(s) else {
        assert_eq!(fast, None);
        return;
    };
    assert_eq!(fast, Some(t.micros()));
    if in_four_digit_years(t) {
        let printed = t.to_string();
        assert_eq!(printed.len(), 27, "{printed}");
        assert_eq!(Timestamp::parse(&printed), Some(t), "{printed}");
        // The general parser, given the same instant in another spelling, agrees.
        let spaced = printed.replacen('T', " ", 1).replace('Z', "+00:00");
        assert_eq!(Timestamp::parse(&spaced), Some(t), "{spaced}");
    }
}

/// True between 0000-01-01 and 9999-12-31 (an offset can move a parsed time just outside).
fn in_four_digit_years(t: Timestamp) -> bool {
    const MIN: i64 = -62_167_219_200_000_000; // 0000-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_800_000_000; // 10000-01-01T00:00:00Z
    (MIN..MAX).contains(&t.micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_the_four_digit_years() {
        assert_eq!(
            Timestamp::parse("0000-01-01").map(Timestamp::micros),
            Some(-62_167_219_200_000_000)
        );
        assert_eq!(
            Timestamp::parse("9999-12-31T23:59:59.999999Z").map(|t| t.micros() + 1),
            Some(253_402_300_800_000_000)
        );
    }

    #[test]
    fn checks_pass_on_contract_lines() {
        check_line(br#"{"timestamp":"2025-11-16T12:34:56.789123Z","level":"INFO","component":"c","message":"m","data":{"duration_ms":4.5},"context":{"function":"f"}}"#);
        // A long mantissa: the default serde_json float parser was one ulp off here (found
        // by the fuzzer), which made the round trip and the fast timing reader disagree.
        check_line(br#"{"timestamp":"2025-11-16T12:34:36","message":"m","data":{"n":1111111111111111111111134,"duration_ms":1111111111111111111111134}}"#);
        check_time(b"2025-11-16T12:34:56.789123Z");
        check_time(b"2025-11-16 12:34");
    }
}

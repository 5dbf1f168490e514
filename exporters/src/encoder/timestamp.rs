//! RFC 3339 UTC timestamps with microseconds, written without allocation.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of `2025-11-16T12:34:56.789123Z`.
pub(crate) const TIMESTAMP_LEN: usize = 27;

/// Microseconds since the Unix epoch (negative before 1970).
pub(crate) fn unix_micros(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_micros().min(i64::MAX as u128) as i64),
    }
}

/// The `SystemTime` for microseconds since the Unix epoch.
pub(crate) fn from_unix_micros(micros: i64) -> SystemTime {
    if micros >= 0 {
        UNIX_EPOCH + Duration::from_micros(micros as u64)
    } else {
        UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
    }
}

/// Civil date from days since 1970-01-01 (proleptic Gregorian), after Howard Hinnant's
/// `civil_from_days`.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 for a civil date (the inverse of [`civil_from_days`]).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The broken-down UTC time of `micros`.
pub(crate) struct UtcParts {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micro: u32,
}

impl UtcParts {
    pub(crate) fn from_micros(micros: i64) -> UtcParts {
        let secs = micros.div_euclid(1_000_000);
        let micro = micros.rem_euclid(1_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        UtcParts {
            year,
            month,
            day,
            hour: sod / 3600,
            minute: sod / 60 % 60,
            second: sod % 60,
            micro,
        }
    }
}

#[inline]
fn put2(out: &mut [u8], at: usize, v: u32) {
    out[at] = b'0' + (v / 10) as u8;
    out[at + 1] = b'0' + (v % 10) as u8;
}

thread_local! {
    /// The last second formatted on this thread: records come in bursts within one second.
    static LAST_SECOND: Cell<(i64, [u8; TIMESTAMP_LEN])> =
        const { Cell::new((i64::MIN, [0; TIMESTAMP_LEN])) };
}

/// Formats `micros` as `2025-11-16T12:34:56.789123Z`. Years outside 0..=9999 are clamped,
/// which keeps the output at a fixed width (such times are not real log times).
#[inline]
pub(crate) fn format_rfc3339_micros(micros: i64) -> [u8; TIMESTAMP_LEN] {
    let secs = micros.div_euclid(1_000_000);
    let mut out = LAST_SECOND.with(|last| {
        let (s, buf) = last.get();
        if s == secs {
            buf
        } else {
            let buf = format_full(micros);
            last.set((secs, buf));
            buf
        }
    });
    put_micros(&mut out, micros.rem_euclid(1_000_000) as u32);
    out
}

/// `00` to `99`.
static PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// Writes the six digits of `micro` (below 1,000,000) after the seconds' point, two at a
/// time.
#[inline]
fn put_micros(out: &mut [u8; TIMESTAMP_LEN], micro: u32) {
    let (hi, lo) = (micro / 10_000, micro % 10_000);
    let (mid, lo) = (lo / 100, lo % 100);
    for (at, pair) in [(20, hi), (22, mid), (24, lo)] {
        let p = 2 * pair as usize;
        out[at..at + 2].copy_from_slice(&PAIRS[p..p + 2]);
    }
}

fn format_full(micros: i64) -> [u8; TIMESTAMP_LEN] {
    let p = UtcParts::from_micros(micros);
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    let year = p.year.clamp(0, 9999) as u32;
    put2(&mut out, 0, year / 100);
    put2(&mut out, 2, year % 100);
    put2(&mut out, 5, p.month);
    put2(&mut out, 8, p.day);
    put2(&mut out, 11, p.hour);
    put2(&mut out, 14, p.minute);
    put2(&mut out, 17, p.second);
    put_micros(&mut out, p.micro);
    out
}

/// Formats `micros` as the compact, sortable stamp used in archive names:
/// `20251116T123456.789123Z`.
pub(crate) fn format_archive_stamp(micros: i64) -> String {
    let p = UtcParts::from_micros(micros);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:06}Z",
        p.year.clamp(0, 9999),
        p.month,
        p.day,
        p.hour,
        p.minute,
        p.second,
        p.micro
    )
}

/// Parses an archive stamp written by [`format_archive_stamp`] back to microseconds.
pub(crate) fn parse_archive_stamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 23 || b[8] != b'T' || b[15] != b'.' || b[22] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(4..6)? as u32, num(6..8)? as u32);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let micro = num(16..22)?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1_000_000) + micro)
}

/// Days since the epoch (UTC) of `micros`.
pub(crate) fn utc_day(micros: i64) -> i64 {
    micros.div_euclid(86_400_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let t = |s: &[u8]| String::from_utf8(s.to_vec()).unwrap();
        assert_eq!(t(&format_rfc3339_micros(0)), "1970-01-01T00:00:00.000000Z");
        // 2025-11-16T12:34:56.789123Z
        let micros = 1_763_296_496_789_123;
        assert_eq!(
            t(&format_rfc3339_micros(micros)),
            "2025-11-16T12:34:56.789123Z"
        );
        assert_eq!(
            t(&format_rfc3339_micros(951_782_400_000_000)),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(t(&format_rfc3339_micros(-1)), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn every_microsecond_digit_lands_in_place() {
        let second = 1_763_296_496_000_000;
        for micro in (0..1_000_000)
            .step_by(7)
            .chain([1, 9, 10, 99, 100, 999_999])
        {
            let want = format!("2025-11-16T12:34:56.{micro:06}Z");
            // The cached second (same second as the call before) and a full format.
            let cached = format_rfc3339_micros(second + micro);
            assert_eq!(String::from_utf8_lossy(&cached), want);
            let full = format_full(second + micro);
            assert_eq!(String::from_utf8_lossy(&full), want);
        }
    }

    #[test]
    fn civil_round_trip_over_centuries() {
        for days in (-800_000..800_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn archive_stamp_round_trip() {
        for micros in [0, 1_763_296_496_789_123, 4_102_444_799_999_999] {
            let s = format_archive_stamp(micros);
            assert_eq!(parse_archive_stamp(&s), Some(micros), "{s}");
        }
        assert_eq!(parse_archive_stamp("20251116T123456.789123"), None);
        assert_eq!(parse_archive_stamp("2025111xT123456.789123Z"), None);
    }
}

//! Instants: the records' RFC 3339 timestamps and the command line's `--since`/`--until`.
//!
//! Records carry `2025-11-16T12:34:56.789123Z` (UTC, microseconds). The parser also takes any
//! number of fraction digits, an offset (`+02:00`), a space instead of `T`, a bare date, and no
//! zone at all, which means UTC. Relative times (`90s`, `30m`, `1h`, `2d`, `1w`) count back from
//! a given "now".

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

/// An instant in microseconds since the Unix epoch, UTC.
///
/// Ordered, cheap to copy, formatted as the record contract writes timestamps.
///
/// # Examples
///
/// ```
/// use tracekit_analyzer::Timestamp;
///
/// let t = Timestamp::parse("2025-11-16T12:34:56.789123Z").unwrap();
/// assert_eq!(t.to_string(), "2025-11-16T12:34:56.789123Z");
/// // No zone means UTC; an offset is applied.
/// assert_eq!(Timestamp::parse("2025-11-16T12:34:56.789123").unwrap(), t);
/// assert_eq!(Timestamp::parse("2025-11-16T14:34:56.789123+02:00").unwrap(), t);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `micros` microseconds after the Unix epoch.
    ///
    /// ```
    /// # use tracekit_analyzer::Timestamp;
    /// assert_eq!(Timestamp::from_micros(0).to_string(), "1970-01-01T00:00:00.000000Z");
    /// ```
    pub const fn from_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    ///
    /// ```
    /// # use tracekit_analyzer::Timestamp;
    /// assert_eq!(Timestamp::parse("1970-01-01T00:00:01Z").unwrap().micros(), 1_000_000);
    /// ```
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// The current time.
    ///
    /// ```
    /// # use tracekit_analyzer::Timestamp;
    /// assert!(Timestamp::now() > Timestamp::parse("2020-01-01").unwrap());
    /// ```
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// Milliseconds from `earlier` to `self` (negative when `earlier` is later).
    ///
    /// ```
    /// # use tracekit_analyzer::Timestamp;
    /// let a = Timestamp::parse("2025-11-16T12:00:00Z").unwrap();
    /// let b = Timestamp::parse("2025-11-16T12:00:01.5Z").unwrap();
    /// assert_eq!(b.millis_since(a), 1500.0);
    /// ```
    pub fn millis_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1000.0
    }

    /// Parses an RFC 3339 date-time: `YYYY-MM-DD[(T| )HH:MM[:SS[.fraction]]][Z|±HH:MM]`.
    ///
    /// Without a zone the time is UTC. A bare date is its midnight, UTC. Fraction digits past
    /// the sixth are dropped. Returns `None` for anything else.
    ///
    /// ```
    /// # use tracekit_analyzer::Timestamp;
    /// let t = Timestamp::parse("2025-11-16").unwrap();
    /// assert_eq!(t, Timestamp::parse("2025-11-16 00:00:00Z").unwrap());
    /// assert_eq!(Timestamp::parse("2025-11-16T12:34:56.789Z").unwrap().micros() % 1_000_000, 789_000);
    /// assert!(Timestamp::parse("16/11/2025").is_none());
    /// ```
    pub fn parse(s: &str) -> Option<Timestamp> {
        parse_rfc3339(s.as_bytes()).map(Timestamp)
    }

    /// Parses a command-line time: RFC 3339 as in [`parse`](Self::parse), or a duration before
    /// `now` (`45s`, `30m`, `1h`, `2d`, `1w`).
    ///
    /// ```
    /// # use tracekit_analyzer::Timestamp;
    /// let now = Timestamp::parse("2025-11-16T12:00:00Z").unwrap();
    /// assert_eq!(Timestamp::parse_arg("1h", now).unwrap(), Timestamp::parse("2025-11-16T11:00:00Z").unwrap());
    /// assert_eq!(Timestamp::parse_arg("2d", now).unwrap(), Timestamp::parse("2025-11-14T12:00:00Z").unwrap());
    /// assert!(Timestamp::parse_arg("yesterday", now).is_err());
    /// ```
    pub fn parse_arg(s: &str, now: Timestamp) -> Result<Timestamp, TimeParseError> {
        let s = s.trim();
        if let Some(d) = parse_relative(s) {
            return Ok(Timestamp(now.0.saturating_sub(d)));
        }
        Timestamp::parse(s).ok_or_else(|| TimeParseError(s.to_owned()))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Timestamp {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(d.as_micros() as i64),
            Err(e) => Timestamp(-(e.duration().as_micros() as i64)),
        }
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> SystemTime {
        if t.0 >= 0 {
            UNIX_EPOCH + Duration::from_micros(t.0 as u64)
        } else {
            UNIX_EPOCH - Duration::from_micros(t.0.unsigned_abs())
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A command-line time that is neither RFC 3339 nor a relative duration.
///
/// ```
/// # use tracekit_analyzer::Timestamp;
/// let err = Timestamp::parse_arg("soon", Timestamp::now()).unwrap_err();
/// assert!(err.to_string().contains("soon"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid time {0:?}: expected RFC 3339 (2025-11-16T10:00:00, no zone means UTC) or a duration before now (30m, 1h, 2d)")]
pub struct TimeParseError(pub String);

/// `<digits><s|m|h|d|w>` in microseconds.
fn parse_relative(s: &str) -> Option<i64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(unit_secs)?.checked_mul(1_000_000)
}

/// Microseconds since the epoch of an RFC 3339 date-time (see [`Timestamp::parse`]).
pub(crate) fn parse_rfc3339(b: &[u8]) -> Option<i64> {
    // The contract's own form first: fixed width, no allocation, no branches on layout.
    if b.len() == 27 && b[26] == b'Z' && b[19] == b'.' {
        let date = parse_date(&b[..10])?;
        if b[10] != b'T' {
            return None;
        }
        let sod = parse_hms(&b[11..19])?;
        let frac = digits(&b[20..26])?;
        return Some((date * 86_400 + sod) * 1_000_000 + frac);
    }
    let days = parse_date(b.get(..10)?)?;
    let rest = &b[10..];
    if rest.is_empty() {
        return Some(days * 86_400_000_000);
    }
    if rest[0] != b'T' && rest[0] != b't' && rest[0] != b' ' {
        return None;
    }
    let rest = &rest[1..];
    let hh = digits(rest.get(..2)?)?;
    if rest.get(2) != Some(&b':') {
        return None;
    }
    let mm = digits(rest.get(3..5)?)?;
    let mut i = 5;
    let mut ss = 0;
    if rest.get(i) == Some(&b':') {
        ss = digits(rest.get(i + 1..i + 3)?)?;
        i += 3;
    }
    let mut frac = 0;
    if rest.get(i) == Some(&b'.') || rest.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        while rest.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let f = &rest[start..i];
        if f.is_empty() {
            return None;
        }
        let kept = &f[..f.len().min(6)];
        frac = digits(kept)? * 10_i64.pow(6 - kept.len() as u32);
    }
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let offset_secs = match &rest[i..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = digits(&[*h1, *h2])?;
            let om = digits(&[*m1, *m2])?;
            let off = oh * 3600 + om * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss - offset_secs;
    Some(secs * 1_000_000 + frac)
}

fn parse_hms(b: &[u8]) -> Option<i64> {
    if b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, s) = (digits(&b[..2])?, digits(&b[3..5])?, digits(&b[6..8])?);
    (h <= 23 && m <= 59 && s <= 60).then_some(h * 3600 + m * 60 + s)
}

/// Days since the epoch of `YYYY-MM-DD`.
fn parse_date(b: &[u8]) -> Option<i64> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&b[..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut n = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(c - b'0');
    }
    Some(n)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_contract_form() {
        for s in [
            "1970-01-01T00:00:00.000000Z",
            "2000-02-29T23:59:59.999999Z",
            "2025-11-16T12:34:56.789123Z",
            "1969-12-31T23:59:59.500000Z",
        ] {
            assert_eq!(Timestamp::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn agrees_with_system_time() {
        let now = SystemTime::now();
        let t = Timestamp::from(now);
        assert_eq!(Timestamp::parse(&t.to_string()), Some(t));
    }

    #[test]
    fn rejects_invalid_dates_and_zones() {
        for s in [
            "2025-02-30",
            "2025-13-01T00:00:00Z",
            "2025-11-16T24:00:00Z",
            "2025-11-16T12:00:00+0200",
            "2025-11-16T12:00:00.Z",
            "2025-11-16X12:00:00",
            "",
        ] {
            assert_eq!(Timestamp::parse(s), None, "{s}");
        }
    }

    #[test]
    fn relative_times_count_back() {
        let now = Timestamp::from_micros(10_000_000_000);
        assert_eq!(
            Timestamp::parse_arg("30m", now).unwrap().micros(),
            10_000_000_000 - 1_800_000_000
        );
        assert_eq!(
            Timestamp::parse_arg("45s", now).unwrap().micros(),
            10_000_000_000 - 45_000_000
        );
        assert!(Timestamp::parse_arg("5y", now).is_err());
        assert!(Timestamp::parse_arg("99999999999999999999d", now).is_err());
    }
}

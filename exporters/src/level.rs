//! The six levels of the record contract and their OpenTelemetry severity numbers.

use std::fmt;
use std::str::FromStr;

/// A record's level: the seed's six, from `TRACE` to `CRITICAL`.
///
/// Levels are ordered by severity, so `level >= Level::ERROR` selects errors.
///
/// # Examples
///
/// ```
/// use tracekit_exporters::Level;
///
/// assert_eq!(Level::WARNING.as_str(), "WARNING");
/// assert_eq!(Level::CRITICAL.severity_number(), 21);
/// assert!(Level::CRITICAL > Level::ERROR);
/// assert_eq!("warn".parse::<Level>().unwrap(), Level::WARNING);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level(LevelInner);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum LevelInner {
    Trace,
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    /// Very detailed, step-by-step information. OTel severity 1.
    pub const TRACE: Level = Level(LevelInner::Trace);
    /// Detailed debugging information. OTel severity 5.
    pub const DEBUG: Level = Level(LevelInner::Debug);
    /// Normal operations. OTel severity 9.
    pub const INFO: Level = Level(LevelInner::Info);
    /// Potential issues. OTel severity 13.
    pub const WARNING: Level = Level(LevelInner::Warning);
    /// Errors requiring attention; also written to `errors/errors.log`. OTel severity 17.
    pub const ERROR: Level = Level(LevelInner::Error);
    /// System-threatening errors; also written to `errors/errors.log`. OTel severity 21.
    pub const CRITICAL: Level = Level(LevelInner::Critical);

    /// All six levels, least severe first.
    ///
    /// ```
    /// # use tracekit_exporters::Level;
    /// assert_eq!(Level::ALL.len(), 6);
    /// ```
    pub const ALL: [Level; 6] = [
        Level::TRACE,
        Level::DEBUG,
        Level::INFO,
        Level::WARNING,
        Level::ERROR,
        Level::CRITICAL,
    ];

    /// The name written in the `level` key.
    ///
    /// ```
    /// # use tracekit_exporters::Level;
    /// assert_eq!(Level::INFO.as_str(), "INFO");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self.0 {
            LevelInner::Trace => "TRACE",
            LevelInner::Debug => "DEBUG",
            LevelInner::Info => "INFO",
            LevelInner::Warning => "WARNING",
            LevelInner::Error => "ERROR",
            LevelInner::Critical => "CRITICAL",
        }
    }

    /// The OpenTelemetry severity number: 1, 5, 9, 13, 17, 21.
    ///
    /// ```
    /// # use tracekit_exporters::Level;
    /// assert_eq!(Level::ERROR.severity_number(), 17);
    /// ```
    pub const fn severity_number(self) -> u8 {
        match self.0 {
            LevelInner::Trace => 1,
            LevelInner::Debug => 5,
            LevelInner::Info => 9,
            LevelInner::Warning => 13,
            LevelInner::Error => 17,
            LevelInner::Critical => 21,
        }
    }

    /// The level of an OpenTelemetry severity number (1-24): each band of four maps to one
    /// level, and FATAL (21-24) maps to `CRITICAL`. Out-of-range numbers give `None`.
    ///
    /// ```
    /// # use tracekit_exporters::Level;
    /// assert_eq!(Level::from_severity_number(10), Some(Level::INFO));
    /// assert_eq!(Level::from_severity_number(24), Some(Level::CRITICAL));
    /// assert_eq!(Level::from_severity_number(0), None);
    /// ```
    pub const fn from_severity_number(n: u8) -> Option<Level> {
        Some(match n {
            1..=4 => Level::TRACE,
            5..=8 => Level::DEBUG,
            9..=12 => Level::INFO,
            13..=16 => Level::WARNING,
            17..=20 => Level::ERROR,
            21..=24 => Level::CRITICAL,
            _ => return None,
        })
    }

    /// True for `ERROR` and `CRITICAL`, the levels copied to `errors/errors.log`.
    ///
    /// ```
    /// # use tracekit_exporters::Level;
    /// assert!(Level::ERROR.is_error() && !Level::WARNING.is_error());
    /// ```
    pub const fn is_error(self) -> bool {
        matches!(self.0, LevelInner::Error | LevelInner::Critical)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The error returned when a string names no level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown level {0:?}: expected one of TRACE, DEBUG, INFO, WARNING (WARN), ERROR, CRITICAL (FATAL)")]
pub struct ParseLevelError(String);

impl FromStr for Level {
    type Err = ParseLevelError;

    /// Parses a level name in any case; `WARN` and `FATAL` are accepted as aliases.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const NAMES: [(&str, Level); 8] = [
            ("TRACE", Level::TRACE),
            ("DEBUG", Level::DEBUG),
            ("INFO", Level::INFO),
            ("WARNING", Level::WARNING),
            ("WARN", Level::WARNING),
            ("ERROR", Level::ERROR),
            ("CRITICAL", Level::CRITICAL),
            ("FATAL", Level::CRITICAL),
        ];
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|&(_, level)| level)
            .ok_or_else(|| ParseLevelError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_numbers_round_trip() {
        for level in Level::ALL {
            assert_eq!(
                Level::from_severity_number(level.severity_number()),
                Some(level)
            );
            assert_eq!(level.as_str().parse::<Level>().unwrap(), level);
        }
        assert_eq!(Level::from_severity_number(25), None);
        assert!("verbose".parse::<Level>().is_err());
    }
}

//! Key-based redaction: the one place that decides whether a value is written.

/// The value written in place of a redacted one.
pub const REDACTED: &str = "[REDACTED]";

/// The keys redacted by default: any key containing one of these, in any case.
pub const DEFAULT_REDACT_KEYS: [&str; 4] = ["password", "token", "secret", "api_key"];

/// Decides which keys are redacted: a key is redacted when it contains any of the needles,
/// ignoring ASCII case.
///
/// Built by the writer's builder; the encoder consults it for every key at every depth of
/// `data`, span attributes and logged arguments.
///
/// # Examples
///
/// ```
/// use tracekit_exporters::Redactor;
///
/// let r = Redactor::default();
/// assert!(r.is_redacted("db_Password"));
/// assert!(r.is_redacted("X-API_KEY"));
/// assert!(!r.is_redacted("user_id"));
///
/// let r = Redactor::new(["credit_card"]);
/// assert!(r.is_redacted("creditCard_number") == false && r.is_redacted("CREDIT_CARD_no"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redactor {
    /// Lower-cased, non-empty, deduplicated needles.
    needles: Vec<Box<[u8]>>,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(DEFAULT_REDACT_KEYS)
    }
}

impl Redactor {
    /// A redactor for exactly these needles (empty ones are ignored).
    pub fn new<I, S>(needles: I) -> Redactor
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut r = Redactor {
            needles: Vec::new(),
        };
        for n in needles {
            r.add(n.as_ref());
        }
        r
    }

    /// Adds a needle (case-insensitive; empty needles are ignored).
    pub fn add(&mut self, needle: &str) {
        let lower: Box<[u8]> = needle.to_ascii_lowercase().into_bytes().into_boxed_slice();
        if !lower.is_empty() && !self.needles.contains(&lower) {
            self.needles.push(lower);
        }
    }

    /// The needles, lower-cased.
    pub fn needles(&self) -> impl Iterator<Item = &str> {
        self.needles
            .iter()
            .map(|n| std::str::from_utf8(n).unwrap_or_default())
    }

    /// True when `key` contains any needle, ignoring ASCII case.
    #[inline]
    pub fn is_redacted(&self, key: &str) -> bool {
        let key = key.as_bytes();
        self.needles
            .iter()
            .any(|n| contains_ignore_ascii_case(key, n))
    }
}

/// `needle` is lower-case ASCII or UTF-8 without upper-case ASCII.
#[inline]
fn contains_ignore_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    if needle.len() > hay.len() {
        return false;
    }
    let first = needle[0];
    let last_start = hay.len() - needle.len();
    (0..=last_start).any(|i| {
        hay[i].to_ascii_lowercase() == first
            && hay[i + 1..i + needle.len()]
                .iter()
                .zip(&needle[1..])
                .all(|(h, n)| h.to_ascii_lowercase() == *n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_needles_any_case_anywhere() {
        let r = Redactor::default();
        for key in [
            "password",
            "PASSWORD",
            "user_password_hash",
            "accessToken",
            "SECRET",
            "my_Api_Key",
            "api_key_v2",
        ] {
            assert!(r.is_redacted(key), "{key}");
        }
        for key in ["", "user", "pass", "apikey", "tok", "session_id", "api-key"] {
            assert!(!r.is_redacted(key), "{key}");
        }
    }

    #[test]
    fn extend_and_replace() {
        let mut r = Redactor::default();
        r.add("SSN");
        assert!(r.is_redacted("user_ssn") && r.is_redacted("token"));
        let r = Redactor::new(["ssn", ""]);
        assert!(!r.is_redacted("token") && r.is_redacted("SSN"));
        assert_eq!(r.needles().collect::<Vec<_>>(), ["ssn"]);
    }
}

//! Key-based redaction: the one place that decides whether a value is written.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

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
#[derive(Clone, Debug)]
pub struct Redactor {
    /// Identifies this set of needles in the per-thread decision cache; a new set (a new
    /// redactor, or a needle added) gets a new id, a clone shares it.
    id: u64,
    /// Lower-cased, non-empty, deduplicated needles.
    needles: Vec<Box<[u8]>>,
    /// `first[b]` has bit `i` set when needle `i` starts with byte `b` in either ASCII case
    /// (needles from the 64th on share bit 63): most positions of most keys are cleared by
    /// this one lookup, and the rest compare only the needles that can match there.
    first: Box<[u64; 256]>,
    /// The shortest needle's length.
    min_len: usize,
    /// The distinct first bytes of the needles, folded with `| 0x20`, each repeated in all
    /// eight bytes of a word: up to [`MAX_SWAR_FIRSTS`] of them are looked for eight key
    /// bytes at a time.
    folded_firsts: Vec<u64>,
}

impl PartialEq for Redactor {
    fn eq(&self, other: &Self) -> bool {
        self.needles == other.needles
    }
}

impl Eq for Redactor {}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

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
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            needles: Vec::new(),
            first: Box::new([0; 256]),
            min_len: usize::MAX,
            folded_firsts: Vec::new(),
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
            self.id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let bit = 1u64 << self.needles.len().min(63);
            self.first[usize::from(lower[0])] |= bit;
            self.first[usize::from(lower[0].to_ascii_uppercase())] |= bit;
            self.min_len = self.min_len.min(lower.len());
            let folded = u64::from(lower[0] | 0x20) * ONES;
            if !self.folded_firsts.contains(&folded) {
                self.folded_firsts.push(folded);
            }
            self.needles.push(lower);
        }
    }

    /// Identifies this set of needles (shared by clones, new after [`add`](Self::add)).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The needles, lower-cased.
    pub fn needles(&self) -> impl Iterator<Item = &str> {
        self.needles
            .iter()
            .map(|n| std::str::from_utf8(n).unwrap_or_default())
    }

    /// True when `key` contains any needle, ignoring ASCII case.
    ///
    /// The same few keys come back in every record, so the decision for a short key is
    /// cached per thread, by content: a hit compares the key's bytes, never trusts its
    /// address.
    #[inline]
    pub fn is_redacted(&self, key: &str) -> bool {
        let key = key.as_bytes();
        let Some(content) = CachedKey::of(key) else {
            return self.scan(key);
        };
        // Slot by address (a static key keeps its slot), spread by a Fibonacci hash.
        let addr = key.as_ptr() as u64 ^ (key.len() as u64) << 56;
        let slot = (addr.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize;
        DECISIONS.with(|cache| {
            let entry = cache[slot].get();
            if entry.owner == self.id && entry.key == content {
                return entry.redacted;
            }
            let redacted = self.scan(key);
            cache[slot].set(CacheEntry {
                owner: self.id,
                key: content,
                redacted,
            });
            redacted
        })
    }

    /// The uncached decision.
    fn scan(&self, key: &[u8]) -> bool {
        let Some(last) = key.len().checked_sub(self.min_len) else {
            return false;
        };
        if self.folded_firsts.len() > MAX_SWAR_FIRSTS {
            return (0..=last).any(|i| self.matches_at(key, i));
        }
        // Eight positions at a time: only where a byte folds to a needle's first byte.
        let mut i = 0;
        while i <= last {
            let w = load_word(key, i) | (ONES * 0x20);
            let mut hits = 0;
            for f in &self.folded_firsts {
                hits |= zero_bytes(w ^ f);
            }
            while hits != 0 {
                let pos = i + hits.trailing_zeros() as usize / 8;
                hits &= hits - 1;
                if pos > last {
                    break;
                }
                if self.matches_at(key, pos) {
                    return true;
                }
            }
            i += 8;
        }
        false
    }

    /// True when a needle starts at `key[i]`.
    #[inline]
    fn matches_at(&self, key: &[u8], i: usize) -> bool {
        let mut candidates = self.first[usize::from(key[i])];
        while candidates != 0 {
            let n = candidates.trailing_zeros() as usize;
            candidates &= candidates - 1;
            if n == 63 {
                // Needles from the 64th on share the last bit.
                return self.needles[63..]
                    .iter()
                    .any(|n| starts_with_ignore_ascii_case(&key[i..], n));
            }
            if starts_with_ignore_ascii_case(&key[i..], &self.needles[n]) {
                return true;
            }
        }
        false
    }
}

/// Slots of the per-thread decision cache (a power of two: the hash takes the top 6 bits).
const CACHE_SLOTS: usize = 64;

/// A key of up to 24 bytes, exactly: its length and its bytes in three words.
#[derive(Clone, Copy, PartialEq, Eq)]
struct CachedKey {
    len: usize,
    words: [u64; 3],
}

impl CachedKey {
    const EMPTY: CachedKey = CachedKey {
        len: usize::MAX,
        words: [0; 3],
    };

    /// The key's content, or `None` when it is too long to cache.
    #[inline(always)]
    fn of(key: &[u8]) -> Option<CachedKey> {
        let n = key.len();
        let words = if n > 24 {
            return None;
        } else if n >= 16 {
            [load_word(key, 0), load_word(key, 8), load_word(key, n - 8)]
        } else if n >= 8 {
            [load_word(key, 0), load_word(key, n - 8), 0]
        } else {
            [load_word(key, 0), 0, 0]
        };
        Some(CachedKey { len: n, words })
    }
}

#[derive(Clone, Copy)]
struct CacheEntry {
    owner: u64,
    key: CachedKey,
    redacted: bool,
}

thread_local! {
    static DECISIONS: [Cell<CacheEntry>; CACHE_SLOTS] = const {
        [const { Cell::new(CacheEntry { owner: 0, key: CachedKey::EMPTY, redacted: false }) };
            CACHE_SLOTS]
    };
}

const ONES: u64 = 0x0101_0101_0101_0101;

/// Eight bytes of `key` from `i`, little-endian, zero past the end. A zero byte can only
/// raise a candidate past `last`, which the caller skips.
#[inline(always)]
fn load_word(key: &[u8], i: usize) -> u64 {
    match key.get(i..i + 8) {
        Some(eight) => u64::from_le_bytes(eight.try_into().expect("8 bytes")),
        None if key.len() >= 8 => {
            // Read the last eight bytes and shift away those before `i`.
            let tail = u64::from_le_bytes(key[key.len() - 8..].try_into().expect("8 bytes"));
            tail >> (8 * (i + 8 - key.len()))
        }
        None => {
            let mut w = 0u64;
            for (k, &b) in key[i..].iter().enumerate() {
                w |= u64::from(b) << (8 * k);
            }
            w
        }
    }
}
const MAX_SWAR_FIRSTS: usize = 8;

/// The high bit of each zero byte of `w`, exactly (no borrow across bytes).
#[inline(always)]
fn zero_bytes(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((w & LOW7) + LOW7) | w | LOW7)
}

/// `needle` is lower-cased.
#[inline]
fn starts_with_ignore_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len()
        && hay
            .iter()
            .zip(needle)
            .all(|(h, n)| h.to_ascii_lowercase() == *n)
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
    fn cached_decisions_follow_content_and_redactor() {
        let plain = Redactor::new(["pin"]);
        let strict = Redactor::new(["pin", "user"]);
        // The same buffer holds different keys over time: the cache must not trust it.
        let mut buf = String::from("user_pin_code");
        assert!(plain.is_redacted(&buf) && strict.is_redacted(&buf));
        buf.replace_range(.., "user_pan_code");
        assert!(!plain.is_redacted(&buf));
        assert!(strict.is_redacted(&buf));
        buf.replace_range(.., "xxxx_pan_code");
        assert!(!plain.is_redacted(&buf) && !strict.is_redacted(&buf));
        let mut grown = plain.clone();
        grown.add("pan");
        assert!(grown.is_redacted(&buf) && !plain.is_redacted(&buf));
        for len in 0..40 {
            let key: String = "ab".repeat(20)[..len].to_owned() + "token";
            assert!(Redactor::default().is_redacted(&key), "{key}");
            assert!(
                !Redactor::default().is_redacted(&key[..key.len() - 1]),
                "{key}"
            );
        }
    }

    #[test]
    fn many_needles() {
        let needles: Vec<String> = (0..100).map(|i| format!("k{i:03}x")).collect();
        let r = Redactor::new(&needles);
        for n in &needles {
            assert!(r.is_redacted(&format!("my_{}", n.to_uppercase())), "{n}");
        }
        assert!(!r.is_redacted("k100x") && !r.is_redacted("k00x"));
        // More distinct first bytes than the word-at-a-time scan takes.
        let r = Redactor::new(["a1", "b2", "c3", "d4", "e5", "f6", "g7", "h8", "i9", "j0"]);
        assert!(r.is_redacted("xxJ0") && r.is_redacted("A1") && !r.is_redacted("j1a2"));
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

impl Redactor {
    /// True when any needle occurs anywhere in `text`, ignoring ASCII case.
    pub(crate) fn occurs_in(&self, text: &[u8]) -> bool {
        self.scan(text)
    }

    /// `Debug` output (derived struct, tuple and map syntax: `name: value`, `"key": value`)
    /// with the value of every field whose name or string key is redacted replaced by the
    /// quoted marker. Anything else passes through unchanged.
    ///
    /// ```
    /// use tracekit_exporters::Redactor;
    ///
    /// #[derive(Debug)]
    /// struct Login { user: &'static str, password: &'static str }
    /// let text = format!("{:?}", Login { user: "ada", password: "hunter2" });
    /// assert_eq!(
    ///     Redactor::default().scrub_debug(&text),
    ///     r#"Login { user: "ada", password: "[REDACTED]" }"#
    /// );
    /// ```
    pub fn scrub_debug<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        if !self.scan(text.as_bytes()) {
            return std::borrow::Cow::Borrowed(text);
        }
        std::borrow::Cow::Owned(self.scrub_fields(text))
    }

    fn scrub_fields(&self, text: &str) -> String {
        let b = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let (mut i, mut copied) = (0, 0);
        while i < b.len() {
            let (key, after) = match b[i] {
                b'"' => {
                    let end = skip_string(b, i, b'"');
                    (&b[i + 1..end.saturating_sub(1).max(i + 1)], end)
                }
                b'\'' => {
                    i = skip_string(b, i, b'\'');
                    continue;
                }
                c if (c.is_ascii_alphabetic() || c == b'_')
                    && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
                {
                    let end = i + b[i..]
                        .iter()
                        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_'))
                        .unwrap_or(b.len() - i);
                    (&b[i..end], end)
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            if b[after..].starts_with(b": ") && self.scan(key) {
                let value = after + 2;
                let mut end = skip_value(b, value);
                while end > value && b[end - 1].is_ascii_whitespace() {
                    end -= 1;
                }
                out.push_str(&text[copied..value]);
                out.push('"');
                out.push_str(REDACTED);
                out.push('"');
                copied = end;
                i = end;
            } else {
                i = after.max(i + 1);
            }
        }
        out.push_str(&text[copied..]);
        out
    }
}

/// The end (exclusive) of the quoted literal starting at `b[start]`, escapes included.
fn skip_string(b: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The end (exclusive) of the `Debug` value starting at `b[start]`: a literal, or everything
/// up to the `,` or closing bracket that ends it at its own depth.
fn skip_value(b: &[u8], start: usize) -> usize {
    if b.get(start) == Some(&b'"') {
        return skip_string(b, start, b'"');
    }
    let mut depth = 0usize;
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'"' => i = skip_string(b, i, b'"'),
            b'\'' if depth == 0 && i == start => return skip_string(b, i, b'\''),
            b'(' | b'[' | b'{' => {
                depth += 1;
                i += 1;
            }
            b')' | b']' | b'}' if depth == 0 => return i,
            b')' | b']' | b'}' => {
                depth -= 1;
                i += 1;
            }
            b',' if depth == 0 => return i,
            _ => i += 1,
        }
    }
    b.len()
}

#[cfg(test)]
mod debug_tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug)]
    #[allow(dead_code)]
    struct Inner {
        api_key: String,
        n: u32,
    }

    #[derive(Debug)]
    #[allow(dead_code)]
    struct Config {
        user: &'static str,
        password: &'static str,
        nested: Inner,
        token: Option<(u8, &'static str)>,
        note: &'static str,
        letter: char,
    }

    #[test]
    fn debug_fields_named_like_secrets_are_scrubbed() {
        let r = Redactor::default();
        let cfg = Config {
            user: "ada",
            password: "hunter2, \"quoted\" }",
            nested: Inner {
                api_key: "sk-live-1".into(),
                n: 3,
            },
            token: Some((1, "t0k")),
            note: "password: in a string is text",
            letter: '\'',
        };
        for text in [format!("{cfg:?}"), format!("{cfg:#?}")] {
            let out = r.scrub_debug(&text).into_owned();
            for secret in ["hunter2", "quoted", "sk-live-1", "t0k"] {
                assert!(!out.contains(secret), "{secret} in {out}");
            }
            for kept in [
                "ada",
                "n: 3",
                "password: in a string is text",
                "letter: '\\''",
            ] {
                assert!(out.contains(kept), "{kept} missing from {out}");
            }
            assert_eq!(out.matches("\"[REDACTED]\"").count(), 3, "{out}");
        }
        let map = BTreeMap::from([("Secret", vec![1, 2]), ("plain", vec![3])]);
        assert_eq!(
            r.scrub_debug(&format!("{map:?}")),
            r#"{"Secret": "[REDACTED]", "plain": [3]}"#
        );
        assert_eq!(
            r.scrub_debug("S { n: 1, token: Some(5) }"),
            r#"S { n: 1, token: "[REDACTED]" }"#
        );
        // Nothing named like a secret: unchanged, whatever the text.
        for text in ["", "Foo(1, \"x\")", "a: b, {[(\"unterminated"] {
            assert_eq!(r.scrub_debug(text), text);
        }
    }
}

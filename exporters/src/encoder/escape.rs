//! JSON string escaping that can never break a line.
//!
//! Beyond what JSON requires (`"`, `\` and C0 controls), this escapes DEL, the C1 controls
//! (U+0080 to U+009F, U+0085 NEL among them) and U+2028/U+2029, so no log content can split a
//! line for any reader or drive a terminal. Invalid UTF-8 becomes U+FFFD.

/// What the byte needs: 0 copy, 1 escape (ASCII), 2 look at the multi-byte sequence.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = 1;
        i += 1;
    }
    t[b'"' as usize] = 1;
    t[b'\\' as usize] = 1;
    t[0x7f] = 1;
    t[0xc2] = 2; // U+0080..U+00BF: the C1 controls live here
    t[0xe2] = 2; // U+2000..U+2FFF: the line and paragraph separators live here
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

#[inline]
fn push_u_escape(out: &mut Vec<u8>, cp: u32) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        HEX[(cp >> 12 & 0xf) as usize],
        HEX[(cp >> 8 & 0xf) as usize],
        HEX[(cp >> 4 & 0xf) as usize],
        HEX[(cp & 0xf) as usize],
    ]);
}

/// Appends `s`.
#[inline(always)]
pub(crate) fn push_slice(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s);
}

/// Appends `prefix"s"suffix` with `s` escaped: a record key and its string value, or a
/// field's quoted key and its colon.
#[inline(always)]
pub(crate) fn push_quoted_between(out: &mut Vec<u8>, prefix: &[u8], s: &str, suffix: &[u8]) {
    out.extend_from_slice(prefix);
    quoted_str_into(out, s);
    out.extend_from_slice(suffix);
}

/// Eight bytes at a time in a `u64`: which bytes need a look (a control, `"`, `\`, DEL or
/// not ASCII).
mod swar {
    use super::CLASS;

    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;

    #[inline(always)]
    fn word(eight: &[u8]) -> u64 {
        u64::from_le_bytes(eight.try_into().expect("8 bytes"))
    }

    /// True when some byte of `w` is zero.
    #[inline(always)]
    const fn has_zero(w: u64) -> bool {
        w.wrapping_sub(ONES) & !w & HIGH != 0
    }

    /// True when some byte of `w` is a control, `"`, `\`, DEL or not ASCII.
    #[inline(always)]
    const fn needs_look(w: u64) -> bool {
        w & HIGH != 0
            || w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0
            || has_zero(w ^ (ONES * 0x22))
            || has_zero(w ^ (ONES * 0x5c))
            || has_zero(w ^ (ONES * 0x7f))
    }

    /// True when `bytes` (at most 16) needs no escaping.
    #[inline(always)]
    pub(super) fn is_plain_short(bytes: &[u8]) -> bool {
        debug_assert!(bytes.len() <= 16);
        if bytes.len() >= 8 {
            !needs_look(word(&bytes[..8])) && !needs_look(word(&bytes[bytes.len() - 8..]))
        } else {
            let mut padded = [b' '; 8];
            padded[..bytes.len()].copy_from_slice(bytes);
            !needs_look(u64::from_le_bytes(padded))
        }
    }

    /// The first byte at or after `from` that needs a look, or `bytes.len()`.
    #[inline]
    pub(super) fn next_look(bytes: &[u8], from: usize) -> usize {
        let mut i = from;
        while let Some(chunk) = bytes.get(i..i + 8) {
            if needs_look(word(chunk)) {
                break;
            }
            i += 8;
        }
        while i < bytes.len() && bytes[i] < 0x80 && CLASS[bytes[i] as usize] == 0 {
            i += 1;
        }
        i
    }
}

use swar::{is_plain_short, next_look};

/// Appends the contents of `s` escaped for a JSON string (without the quotes).
///
/// Inlined for the common case, a short plain string; the rest is out of line so that the
/// common case pays no call.
#[inline(always)]
pub(crate) fn escape_str_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if bytes.len() <= 16 {
        if is_plain_short(bytes) {
            push_slice(out, bytes);
            return;
        }
    } else if bytes.len() <= 32 && is_plain_medium(bytes) {
        push_slice(out, bytes);
        return;
    }
    escape_long(out, bytes);
}

/// True when `bytes` (17 to 32) needs no escaping.
#[inline(always)]
fn is_plain_medium(bytes: &[u8]) -> bool {
    next_look(bytes, 0) == bytes.len()
}

/// [`escape_str_into`] for strings that are long or need escaping. `bytes` is valid UTF-8.
#[inline(never)]
fn escape_long(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    let mut i = 0;
    loop {
        i = next_look(bytes, i);
        if i >= bytes.len() {
            break;
        }
        let b = bytes[i];
        match CLASS[b as usize] {
            0 => i += 1,
            1 => {
                push_slice(out, &bytes[start..i]);
                match b {
                    b'"' => out.extend_from_slice(b"\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    0x08 => out.extend_from_slice(b"\\b"),
                    0x0c => out.extend_from_slice(b"\\f"),
                    _ => push_u_escape(out, u32::from(b)),
                }
                i += 1;
                start = i;
            }
            _ => {
                // `s` is valid UTF-8, so the continuation bytes are there.
                let cp = if b == 0xc2 {
                    let c1 = bytes[i + 1];
                    (c1 < 0xa0).then_some((2, u32::from(c1)))
                } else {
                    let (b1, b2) = (bytes[i + 1], bytes[i + 2]);
                    (b1 == 0x80 && (b2 == 0xa8 || b2 == 0xa9))
                        .then_some((3, 0x2000 | u32::from(b2 & 0x3f)))
                };
                match cp {
                    Some((len, cp)) => {
                        push_slice(out, &bytes[start..i]);
                        push_u_escape(out, cp);
                        i += len;
                        start = i;
                    }
                    None => i += 1,
                }
            }
        }
    }
    push_slice(out, &bytes[start..]);
}

/// Appends `bytes` escaped for a JSON string; invalid UTF-8 sequences become U+FFFD.
pub(crate) fn escape_bytes_into(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        escape_str_into(out, chunk.valid());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
}

/// Appends `"s"`, escaped.
#[inline]
pub(crate) fn quoted_str_into(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_str_into(out, s);
    out.push(b'"');
}

/// A `fmt::Write` that escapes what is written into a JSON string.
pub(crate) struct EscapingWriter<'a>(pub &'a mut Vec<u8>);

impl std::fmt::Write for EscapingWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        escape_str_into(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut out = Vec::new();
        quoted_str_into(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_everything_that_could_break_a_line() {
        assert_eq!(esc("a\nb\r\"\\\t"), r#""a\nb\r\"\\\t""#);
        assert_eq!(esc("\u{0}\u{1b}[31m\u{7f}"), r#""\u0000\u001b[31m\u007f""#);
        assert_eq!(
            esc("x\u{85}y\u{2028}z\u{2029}"),
            r#""x\u0085y\u2028z\u2029""#
        );
        assert_eq!(esc("\u{9b}"), r#""\u009b""#);
    }

    #[test]
    fn keeps_other_unicode() {
        assert_eq!(
            esc("héllo – 你好 😀 \u{a0}\u{2027}\u{202a}"),
            "\"héllo – 你好 😀 \u{a0}\u{2027}\u{202a}\""
        );
    }

    #[test]
    fn push_slice_copies_every_length() {
        let src: Vec<u8> = (0..80).collect();
        for n in 0..=80 {
            let mut out = vec![9u8; 3];
            push_slice(&mut out, &src[..n]);
            assert_eq!(&out[..3], &[9, 9, 9]);
            assert_eq!(&out[3..], &src[..n]);
        }
    }

    #[test]
    fn the_look_finds_the_first_byte_to_escape_as_a_byte_loop_does() {
        // Mostly plain bytes with a sprinkle of every kind that needs a look, at every length
        // and start, against a plain byte loop over the table.
        let kinds = [
            b'"', b'\\', b'\n', 0x00, 0x1f, 0x7f, 0x80, 0xc2, 0xe2, 0xff, b' ', b'~',
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 70) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|k| {
                    let r = x.rotate_left(k as u32 * 7);
                    if r % 9 == 0 {
                        kinds[(r >> 8) as usize % kinds.len()]
                    } else {
                        b'a' + (r >> 16) as u8 % 26
                    }
                })
                .collect();
            for from in 0..=len {
                let expected = (from..len)
                    .find(|&k| bytes[k] >= 0x80 || CLASS[bytes[k] as usize] != 0)
                    .unwrap_or(len);
                assert_eq!(next_look(&bytes, from), expected, "{bytes:?} from {from}");
            }
            let plain = bytes.iter().all(|&b| b < 0x80 && CLASS[b as usize] == 0);
            if len <= 16 {
                assert_eq!(is_plain_short(&bytes), plain, "{bytes:?}");
            } else if len <= 32 {
                assert_eq!(is_plain_medium(&bytes), plain, "{bytes:?}");
            }
        }
    }

    #[test]
    fn invalid_utf8_becomes_replacement() {
        let mut out = Vec::new();
        escape_bytes_into(&mut out, b"ok\xff\xfe\n\xe2\x80");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ok\u{fffd}\u{fffd}\\n\u{fffd}"
        );
    }

    #[test]
    fn every_escaped_string_parses_back() {
        let all: String = (0..=0x3000u32).filter_map(char::from_u32).collect();
        let line = esc(&all);
        assert!(!line.bytes().any(|b| b < 0x20));
        let back: String = serde_json::from_str(&line).unwrap();
        assert_eq!(back, all);
    }
}

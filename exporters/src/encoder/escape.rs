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

/// Appends `s`; short slices are copied inline instead of through a `memcpy` call, which
/// matters when a record is two dozen short pieces.
#[inline(always)]
pub(crate) fn push_slice(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if n > 32 {
        out.extend_from_slice(s);
        return;
    }
    out.reserve(32);
    // SAFETY: `reserve(32)` leaves room for `n <= 32` bytes past `len`.
    unsafe {
        let len = out.len();
        copy_short(out.as_mut_ptr().add(len), s);
        out.set_len(len + n);
    }
}

/// Copies `s` (at most 32 bytes) to `dst` without a call.
///
/// # Safety
///
/// `dst` must be valid for `s.len()` bytes of writes, and `s.len() <= 32`.
#[inline(always)]
unsafe fn copy_short(dst: *mut u8, s: &[u8]) {
    let n = s.len();
    debug_assert!(n <= 32);
    let src = s.as_ptr();
    // SAFETY: every read stays within `s` (the two overlapping halves cover it exactly);
    // every write within the `n` bytes at `dst` the caller vouches for.
    unsafe {
        if n >= 16 {
            let a = std::ptr::read_unaligned(src.cast::<u128>());
            let b = std::ptr::read_unaligned(src.add(n - 16).cast::<u128>());
            std::ptr::write_unaligned(dst.cast::<u128>(), a);
            std::ptr::write_unaligned(dst.add(n - 16).cast::<u128>(), b);
        } else if n >= 8 {
            let a = std::ptr::read_unaligned(src.cast::<u64>());
            let b = std::ptr::read_unaligned(src.add(n - 8).cast::<u64>());
            std::ptr::write_unaligned(dst.cast::<u64>(), a);
            std::ptr::write_unaligned(dst.add(n - 8).cast::<u64>(), b);
        } else if n >= 4 {
            let a = std::ptr::read_unaligned(src.cast::<u32>());
            let b = std::ptr::read_unaligned(src.add(n - 4).cast::<u32>());
            std::ptr::write_unaligned(dst.cast::<u32>(), a);
            std::ptr::write_unaligned(dst.add(n - 4).cast::<u32>(), b);
        } else {
            for i in 0..n {
                *dst.add(i) = *src.add(i);
            }
        }
    }
}

/// Appends `prefix"s"suffix` with `s` escaped: a record key and its string value, or a
/// field's quoted key and its colon. A short plain `s` between short affixes takes one
/// capacity check for all of it.
#[inline(always)]
pub(crate) fn push_quoted_between(out: &mut Vec<u8>, prefix: &[u8], s: &str, suffix: &[u8]) {
    let bytes = s.as_bytes();
    if prefix.len() <= 32 && suffix.len() <= 32 && bytes.len() <= 16 && is_plain_short(bytes) {
        let total = prefix.len() + bytes.len() + 2 + suffix.len();
        out.reserve(total);
        // SAFETY: `reserve(total)` leaves room for every byte written; each piece is at
        // most 32 bytes, as `copy_short` needs.
        unsafe {
            let len = out.len();
            let mut dst = out.as_mut_ptr().add(len);
            copy_short(dst, prefix);
            dst = dst.add(prefix.len());
            *dst = b'"';
            copy_short(dst.add(1), bytes);
            dst = dst.add(1 + bytes.len());
            *dst = b'"';
            copy_short(dst.add(1), suffix);
            out.set_len(len + total);
        }
        return;
    }
    out.extend_from_slice(prefix);
    quoted_str_into(out, s);
    out.extend_from_slice(suffix);
}

/// True when `bytes` (at most 16) needs no escaping.
#[inline(always)]
fn is_plain_short(bytes: &[u8]) -> bool {
    debug_assert!(bytes.len() <= 16);
    #[cfg(target_arch = "x86_64")]
    {
        let mut padded = [b' '; 16];
        // SAFETY: at most 16 bytes into a 16-byte array, which is then 16 readable bytes.
        unsafe {
            copy_short(padded.as_mut_ptr(), bytes);
            sse2::look_mask(padded.as_ptr()) == 0
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    swar::is_plain_short(bytes)
}

/// The first byte at or after `from` that needs a look (a control, `"`, `\`, DEL or not
/// ASCII), or `bytes.len()`.
#[inline]
fn next_look(bytes: &[u8], from: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let len = bytes.len();
        let p = bytes.as_ptr();
        let mut i = from;
        while i + 16 <= len {
            // SAFETY: `i + 16 <= len`.
            let m = unsafe { sse2::look_mask(p.add(i)) };
            if m != 0 {
                return i + m.trailing_zeros() as usize;
            }
            i += 16;
        }
        if i >= len {
            return len;
        }
        let m = if len >= 16 {
            // The last 16 bytes again, without the bits of those already looked at.
            // SAFETY: `len >= 16`.
            unsafe { sse2::look_mask(p.add(len - 16)) >> (16 - (len - i)) }
        } else {
            let mut padded = [b' '; 16];
            // SAFETY: fewer than 16 bytes into a 16-byte array, then 16 readable bytes.
            unsafe {
                copy_short(padded.as_mut_ptr(), &bytes[i..]);
                sse2::look_mask(padded.as_ptr())
            }
        };
        if m != 0 {
            i + m.trailing_zeros() as usize
        } else {
            len
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    swar::next_look(bytes, from)
}

/// SSE2 (part of every x86-64 CPU): 16 bytes looked at in a handful of instructions.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// Bit `k` set when byte `k` of the 16 at `p` is below 0x20 or not ASCII (signed below
    /// 0x20), `"`, `\` or DEL.
    ///
    /// # Safety
    ///
    /// `p` must be valid for 16 bytes of reads.
    #[inline(always)]
    pub(super) unsafe fn look_mask(p: *const u8) -> u32 {
        // SAFETY: the caller vouches for 16 bytes; SSE2 is in the x86-64 baseline.
        unsafe {
            let v = _mm_loadu_si128(p.cast::<__m128i>());
            let low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            let del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
            _mm_movemask_epi8(_mm_or_si128(
                _mm_or_si128(low, quote),
                _mm_or_si128(backslash, del),
            )) as u32
        }
    }
}

/// The same looks eight bytes at a time in a `u64`, for other targets (and, in tests, to
/// check the SSE2 ones against).
#[cfg(any(test, not(target_arch = "x86_64")))]
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

    /// [`super::is_plain_short`].
    pub(super) fn is_plain_short(bytes: &[u8]) -> bool {
        if bytes.len() >= 8 {
            !needs_look(word(&bytes[..8])) && !needs_look(word(&bytes[bytes.len() - 8..]))
        } else {
            let mut padded = [b' '; 8];
            padded[..bytes.len()].copy_from_slice(bytes);
            !needs_look(u64::from_le_bytes(padded))
        }
    }

    /// [`super::next_look`].
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

/// True when `bytes` (17 to 32) needs no escaping: two overlapping looks.
#[inline(always)]
fn is_plain_medium(bytes: &[u8]) -> bool {
    debug_assert!((17..=32).contains(&bytes.len()));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: both 16-byte windows lie within `bytes` (17 to 32 long).
    unsafe {
        let p = bytes.as_ptr();
        sse2::look_mask(p) | sse2::look_mask(p.add(bytes.len() - 16)) == 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        swar::next_look(bytes, 0) == bytes.len()
    }
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
    fn the_look_finds_the_first_byte_to_escape_as_the_word_look_does() {
        // Mostly plain bytes with a sprinkle of every kind that needs a look, at every length
        // and start, against the eight-byte word version (and a plain byte loop).
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
                assert_eq!(
                    swar::next_look(&bytes, from),
                    expected,
                    "{bytes:?} from {from}"
                );
            }
            let plain = bytes.iter().all(|&b| b < 0x80 && CLASS[b as usize] == 0);
            if len <= 16 {
                assert_eq!(is_plain_short(&bytes), plain, "{bytes:?}");
                assert_eq!(swar::is_plain_short(&bytes), plain, "{bytes:?}");
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

//! The queue's memory: one ring of bytes, reserved under the queue's lock and filled after it.
//!
//! A caller reserves room for its line under the lock (a few counters), releases the lock,
//! copies the line in and publishes it with a release store of the entry's first word. The
//! copy is what crosses to the writer thread's core: its stores miss in the caller's cache
//! (the writer read those bytes on the previous lap), and the lock's release, a locked
//! instruction, would wait for every one of them. After the lock, a plain release store
//! does not wait: the caller goes on with its next record while the lines arrive. (Measured
//! on the 2-vCPU bench host: the same copy under the lock cost the caller 100-150 ns per
//! event whenever the writer was reading; BENCHMARKS.md.)
//!
//! Layout: entries 8-byte aligned, each a 16-byte header then the line. The header's first
//! word is 0 until the entry is published, then its size (header, line and padding); an
//! entry that would run past the end is preceded by a padding entry to the end (first word:
//! its size with [`PAD`] set; it may be only 8 bytes). The writer zeroes what it has
//! consumed before giving the room back, so a word the writer reads is either a published
//! entry's or 0.

use std::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// Header bytes before each line: size (the publication word), line length, flags,
/// component length and start.
pub(crate) const HEADER: usize = 16;
/// Set in the first word of a padding entry.
const PAD: u32 = 1 << 31;
/// The largest ring: sizes must stay below [`PAD`].
pub(crate) const MAX_CAPACITY: usize = 1 << 30;

/// A published line as the writer finds it.
pub(crate) struct Entry<'a> {
    pub bytes: &'a [u8],
    pub comp_start: u16,
    pub comp_len: u8,
    pub flags: u8,
}

pub(crate) struct Ring {
    ptr: NonNull<u8>,
    cap: usize,
}

// SAFETY: the ring is plain memory; who may touch which bytes is decided by the queue's
// positions (see the methods' safety sections).
unsafe impl Send for Ring {}
unsafe impl Sync for Ring {}

impl Ring {
    /// A zeroed ring of `capacity` bytes (rounded down to 8, within `[64, MAX_CAPACITY]`).
    pub(crate) fn new(capacity: usize) -> Ring {
        let cap = capacity.clamp(64, MAX_CAPACITY) & !7;
        let layout = Layout::from_size_align(cap, 8).expect("ring layout");
        // SAFETY: the layout's size is not zero.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) })
            .unwrap_or_else(|| handle_alloc_error(layout));
        Ring { ptr, cap }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// A quarter of the ring: lines longer than this go boxed, and a gathering writer is
    /// woken once this much is queued.
    pub(crate) fn quarter(&self) -> usize {
        self.cap / 4
    }

    fn offset(&self, pos: u64) -> usize {
        (pos % self.cap as u64) as usize
    }

    /// The room an entry with a line of `len` bytes takes.
    pub(crate) fn size_of(len: usize) -> usize {
        (HEADER + len + 7) & !7
    }

    /// The padding needed before an entry of `size` bytes reserved at `pos`.
    pub(crate) fn pad_before(&self, pos: u64, size: usize) -> usize {
        let off = self.offset(pos);
        if off + size > self.cap {
            self.cap - off
        } else {
            0
        }
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off % 8 == 0 && off + 4 <= self.cap);
        // SAFETY: in bounds and 8-aligned (entries are); the word is only accessed
        // atomically while the entry is in use (zeroed by `clear` when it is not).
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(off).cast()) }
    }

    /// Writes and publishes a line in the room reserved at `pos` (`pad` bytes of padding,
    /// then `Ring::size_of(line.len())` bytes).
    ///
    /// # Safety
    /// The caller reserved exactly that room under the queue's lock, and nobody else
    /// writes it until the writer has consumed it.
    pub(crate) unsafe fn publish(
        &self,
        pos: u64,
        pad: usize,
        line: &[u8],
        comp_start: u16,
        comp_len: u8,
        flags: u8,
    ) {
        let off = self.offset(pos);
        if pad > 0 {
            self.word(off).store(pad as u32 | PAD, Ordering::Release);
        }
        let off = (off + pad) % self.cap;
        let size = Self::size_of(line.len());
        debug_assert!(off + size <= self.cap);
        let at = self.ptr.as_ptr().add(off);
        at.add(4).cast::<u32>().write(line.len() as u32);
        at.add(8).write(flags);
        at.add(9).write(comp_len);
        at.add(10).cast::<u16>().write_unaligned(comp_start);
        std::ptr::copy_nonoverlapping(line.as_ptr(), at.add(HEADER), line.len());
        self.word(off).store(size as u32, Ordering::Release);
    }

    /// The line published at `pos` (after the padding there, if any) and where the next
    /// entry starts; `None` while it is still being filled.
    ///
    /// # Safety
    /// Only the writer reads, and only between its consumed position and the reserved end.
    pub(crate) unsafe fn read(&self, mut pos: u64) -> Option<(Entry<'_>, u64)> {
        let mut word = self.word(self.offset(pos)).load(Ordering::Acquire);
        if word & PAD != 0 {
            pos += u64::from(word & !PAD);
            word = self.word(self.offset(pos)).load(Ordering::Acquire);
        }
        // Padding is always followed by an entry at the ring's start.
        if word == 0 || word & PAD != 0 {
            return None;
        }
        let at = self.ptr.as_ptr().add(self.offset(pos));
        let len = at.add(4).cast::<u32>().read() as usize;
        let entry = Entry {
            bytes: std::slice::from_raw_parts(at.add(HEADER), len),
            flags: at.add(8).read(),
            comp_len: at.add(9).read(),
            comp_start: at.add(10).cast::<u16>().read_unaligned(),
        };
        Some((entry, pos + u64::from(word)))
    }

    /// Zeroes the consumed room `[from, to)`.
    ///
    /// # Safety
    /// Only the writer, for entries it has consumed and not yet given back.
    pub(crate) unsafe fn clear(&self, from: u64, to: u64) {
        let mut pos = from;
        while pos < to {
            let off = self.offset(pos);
            let n = ((to - pos) as usize).min(self.cap - off);
            std::ptr::write_bytes(self.ptr.as_ptr().add(off), 0, n);
            pos += n as u64;
        }
    }
}

/// The bytes a boxed line's entry carries: its address and length.
pub(crate) const BOXED_LEN: usize = 16;

/// Copies `line` into a box of its own, leaked until [`unbox`] takes it back, and returns
/// the entry that carries it.
pub(crate) fn boxed(line: &[u8]) -> [u8; BOXED_LEN] {
    let len = line.len() as u64;
    let ptr = Box::into_raw(Box::<[u8]>::from(line)).cast::<u8>() as usize as u64;
    let mut entry = [0; BOXED_LEN];
    entry[..8].copy_from_slice(&ptr.to_le_bytes());
    entry[8..].copy_from_slice(&len.to_le_bytes());
    entry
}

/// Takes back the line [`boxed`] leaked.
///
/// # Safety
/// `entry` is what `boxed` returned, and it is taken back once.
pub(crate) unsafe fn unbox(entry: &[u8]) -> Box<[u8]> {
    let word = |i: usize| u64::from_le_bytes(entry[i..i + 8].try_into().expect("8 bytes")) as usize;
    Box::from_raw(std::ptr::slice_from_raw_parts_mut(
        word(0) as *mut u8,
        word(8),
    ))
}

impl Drop for Ring {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.cap, 8).expect("ring layout");
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reserves and publishes as the queue does, reads back as the writer does.
    #[test]
    fn lines_wrap_with_padding_and_read_back() {
        let ring = Ring::new(64);
        let (mut head, mut tail) = (0u64, 0u64);
        for round in 0..20u8 {
            let line = vec![b'a' + round % 26; usize::from(round % 3) * 5 + 1];
            let size = Ring::size_of(line.len());
            let pad = ring.pad_before(head, size);
            assert!(head - tail + (pad + size) as u64 <= 64);
            unsafe { ring.publish(head, pad, &line, 3, 2, round) };
            head += (pad + size) as u64;
            let (entry, pos) = unsafe { ring.read(tail) }.expect("published entry");
            assert_eq!(entry.bytes, &line[..]);
            assert_eq!(
                (entry.comp_start, entry.comp_len, entry.flags),
                (3, 2, round)
            );
            assert_eq!(pos, head);
            unsafe { ring.clear(tail, pos) };
            tail = pos;
            assert!(
                unsafe { ring.read(tail) }.is_none(),
                "cleared room reads as pending"
            );
        }
    }
}

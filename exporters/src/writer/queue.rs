//! The queue between the callers and the writer thread: encoded lines appended to one buffer
//! under a mutex, which the writer thread swaps for an empty one.
//!
//! Bounded in bytes: lines up to a quarter of the queue's capacity ("short") wait in a buffer
//! of at most half of it while the writer writes the previous one, so the two hold at most
//! the capacity between them. Longer lines have a budget of the capacity of their own,
//! counted until they are written (one longer than the whole budget is let in alone, once
//! the long lines before it are written, so it waits but never forever); short lines never
//! wait for long ones. A caller that finds its budget full waits for room (lossless) or drops
//! the line and counts it (lossy).
//!
//! The writer thread sleeps while nothing is queued; after a batch it lets lines gather for a
//! moment ([`DOZE`]) so that a steady stream costs one wake-up per batch, not per line.

use std::ops::Range;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::config::LossPolicy;
use crate::error::WriteError;

/// After a batch the writer lets lines gather this long (unless a quarter of the short budget
/// fills, a flush asks or callers wait for room): under a steady stream a line waits at most
/// this long before the writer takes it.
pub(crate) const DOZE: Duration = Duration::from_millis(2);

/// What the writer thread is doing, as callers need to know it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum WriterState {
    /// Taking or writing a batch: nobody needs to wake it.
    #[default]
    Busy,
    /// Letting lines gather after a batch: the caller that fills a quarter of the short
    /// budget wakes it (under a steady stream no other caller pays for a wake-up).
    Gathering,
    /// Asleep with nothing queued: the next caller wakes it.
    Idle,
}

/// Lines taken from the queue together, in the order they were queued.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    bytes: Vec<u8>,
    lines: Vec<LineEnd>,
    /// Bytes of the batch counted against each budget, given back once it is written.
    short_bytes: usize,
    long_bytes: usize,
}

/// Where a line ends in [`Batch::bytes`], where its component name stands, and its flags.
#[derive(Debug)]
struct LineEnd {
    end: usize,
    component: Range<usize>,
    flags: u8,
}

/// One queued line as the writer reads it.
#[derive(Debug)]
pub(crate) struct Line<'a> {
    pub bytes: &'a [u8],
    pub component: &'a [u8],
    pub flags: u8,
}

impl Batch {
    /// The lines, in queue order.
    pub(crate) fn lines(&self) -> impl Iterator<Item = Line<'_>> {
        let starts = std::iter::once(0).chain(self.lines.iter().map(|l| l.end));
        self.lines.iter().zip(starts).map(|(l, start)| Line {
            bytes: &self.bytes[start..l.end],
            component: &self.bytes[l.component.clone()],
            flags: l.flags,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// An empty batch with room for `bytes` of lines. The room is reserved, not touched:
    /// its pages become resident as lines fill them, and it never has to grow (a buffer
    /// regrown by doubling leaves its smaller copies behind in the allocator's heap).
    fn with_capacity(bytes: usize) -> Batch {
        Batch {
            bytes: Vec::with_capacity(bytes),
            // At least 128 bytes a line: a record's fixed keys alone take about 60.
            lines: Vec::with_capacity(bytes / 128),
            ..Batch::default()
        }
    }

    /// Empties the batch for reuse; a buffer a long line grew past `keep` bytes is let go.
    fn clear(&mut self, keep: usize) {
        if self.bytes.capacity() > keep {
            self.bytes = Vec::with_capacity(keep);
        }
        self.bytes.clear();
        self.lines.clear();
        self.short_bytes = 0;
        self.long_bytes = 0;
    }
}

#[derive(Debug, Default)]
struct State {
    /// Lines queued and not yet taken by the writer.
    pending: Batch,
    /// Bytes of short lines queued or being written.
    short_bytes: usize,
    /// Bytes of long lines queued or being written.
    long_bytes: usize,
    /// Lines accepted so far.
    submitted: u64,
    /// Lines the writer has finished with (written or accounted as lost).
    processed: u64,
    /// Lines dropped because the queue was full (lossy policy).
    dropped: u64,
    writer: WriterState,
    /// Callers waiting for room.
    room_waiters: u32,
    /// Callers waiting in `flush` or `close`.
    progress_waiters: u32,
    /// A flush is waiting: the writer should not linger.
    flush_requested: bool,
    /// No more lines are accepted.
    closed: bool,
    /// The writer thread has exited.
    finished: bool,
}

impl State {
    /// Whether a line of `len` bytes fits its budget now, in a queue of `capacity` bytes.
    fn admits(&self, len: usize, long: bool, capacity: usize) -> bool {
        match long {
            false => self.pending.short_bytes + len <= capacity / 2,
            true => self.long_bytes == 0 || self.long_bytes + len <= capacity,
        }
    }
}

/// The bounded, ordered queue of encoded lines (see the module docs).
#[derive(Debug)]
pub(crate) struct Queue {
    state: Mutex<State>,
    /// The writer waits here for lines.
    work: Condvar,
    /// Lossless callers wait here for room.
    room: Condvar,
    /// Flushers and `close` wait here for progress.
    progress: Condvar,
    /// Each budget, in bytes.
    capacity: usize,
    policy: LossPolicy,
}

impl Queue {
    pub(crate) fn new(capacity: usize, policy: LossPolicy) -> Queue {
        Queue {
            state: Mutex::new(State {
                pending: Batch::with_capacity(capacity / 2),
                ..State::default()
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            progress: Condvar::new(),
            capacity,
            policy,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A quarter of the capacity: lines longer than this are long, and a gathering writer is
    /// woken once this much is queued.
    fn quarter(&self) -> usize {
        self.capacity / 4
    }

    /// An empty batch for the writer's side of [`take`](Self::take): it becomes the buffer
    /// callers fill next.
    pub(crate) fn batch(&self) -> Batch {
        Batch::with_capacity(self.capacity / 2)
    }

    /// Queues `line`, whose component name stands at `component`, with `flags`.
    ///
    /// Under the lossless policy this waits while the line's budget is full; under the lossy
    /// policy a full budget drops the line, counts it and returns [`WriteError::QueueFull`].
    /// After [`close`](Self::close) it returns [`WriteError::Shutdown`].
    pub(crate) fn push(
        &self,
        line: &[u8],
        component: Range<usize>,
        flags: u8,
    ) -> Result<(), WriteError> {
        let long = line.len() > self.quarter();
        let mut s = self.lock();
        loop {
            if s.closed {
                return Err(WriteError::Shutdown);
            }
            if s.admits(line.len(), long, self.capacity) {
                break;
            }
            match self.policy {
                LossPolicy::Lossy => {
                    s.dropped += 1;
                    return Err(WriteError::QueueFull);
                }
                LossPolicy::Lossless => {
                    // Rare: wake the writer even if it only gathers.
                    s.writer = WriterState::Busy;
                    self.work.notify_one();
                    s.room_waiters += 1;
                    s = self.room.wait(s).unwrap_or_else(PoisonError::into_inner);
                    s.room_waiters -= 1;
                }
            }
        }
        let base = s.pending.bytes.len();
        s.pending.bytes.extend_from_slice(line);
        s.pending.lines.push(LineEnd {
            end: base + line.len(),
            component: base + component.start..base + component.end,
            flags,
        });
        if long {
            s.long_bytes += line.len();
            s.pending.long_bytes += line.len();
        } else {
            s.short_bytes += line.len();
            s.pending.short_bytes += line.len();
        }
        s.submitted += 1;
        let wake = match s.writer {
            WriterState::Idle => true,
            WriterState::Gathering => s.pending.short_bytes >= self.quarter(),
            WriterState::Busy => false,
        };
        if wake {
            s.writer = WriterState::Busy;
        }
        drop(s);
        if wake {
            self.work.notify_one();
        }
        Ok(())
    }

    /// The writer's side: waits for lines and moves every queued line into `batch` (which
    /// [`done`](Self::done) emptied). With `gather`, first lets lines gather for [`DOZE`];
    /// with nothing queued, sleeps until a line comes, a flush or `close` asks, or `tick`
    /// passes (then `batch` may be empty). Returns true once the queue is closed.
    pub(crate) fn take(&self, batch: &mut Batch, gather: bool, tick: Duration) -> bool {
        let mut s = self.lock();
        if gather {
            // Callers then find the queue's state in their own cache, not just taken by the
            // writer.
            let deadline = Instant::now() + DOZE;
            while !s.closed
                && !s.flush_requested
                && s.room_waiters == 0
                && s.pending.short_bytes < self.quarter()
            {
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    break;
                };
                s.writer = WriterState::Gathering;
                s = self
                    .work
                    .wait_timeout(s, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        while s.pending.is_empty() && !s.closed && !s.flush_requested {
            s.writer = WriterState::Idle;
            let (guard, timeout) = self
                .work
                .wait_timeout(s, tick)
                .unwrap_or_else(PoisonError::into_inner);
            s = guard;
            if timeout.timed_out() {
                break;
            }
        }
        s.writer = WriterState::Busy;
        s.flush_requested = false;
        debug_assert!(batch.is_empty());
        std::mem::swap(&mut s.pending, batch);
        if s.room_waiters > 0 && !batch.is_empty() {
            // The buffer that short lines wait for is empty again.
            self.room.notify_all();
        }
        s.closed
    }

    /// The writer has finished with `batch` (written, or accounted as lost): gives its bytes
    /// back to the budgets, wakes whoever waits for that, and empties it for the next
    /// [`take`](Self::take).
    pub(crate) fn done(&self, batch: &mut Batch) {
        let (room_waiters, progress_waiters) = {
            let mut s = self.lock();
            s.short_bytes -= batch.short_bytes;
            s.long_bytes -= batch.long_bytes;
            s.processed += batch.len() as u64;
            (s.room_waiters, s.progress_waiters)
        };
        if room_waiters > 0 && !batch.is_empty() {
            self.room.notify_all();
        }
        if progress_waiters > 0 {
            self.progress.notify_all();
        }
        // A buffer that a long line grew past half the capacity is let go.
        batch.clear(self.capacity / 2);
    }

    /// Waits until every line queued before this call has been processed, at most `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), WriteError> {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        let target = s.submitted;
        while s.processed < target {
            if s.finished {
                return Err(WriteError::Shutdown);
            }
            s.flush_requested = true;
            s.writer = WriterState::Busy;
            self.work.notify_one();
            s = self
                .wait_for_progress(s, deadline)
                .ok_or(WriteError::Timeout(timeout))?;
        }
        Ok(())
    }

    /// Waits until the writer makes progress (finishes a batch or exits), at most until
    /// `deadline`: `None` once it has passed.
    fn wait_for_progress<'a>(
        &self,
        mut s: MutexGuard<'a, State>,
        deadline: Instant,
    ) -> Option<MutexGuard<'a, State>> {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())?;
        s.progress_waiters += 1;
        let mut s = self
            .progress
            .wait_timeout(s, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        s.progress_waiters -= 1;
        Some(s)
    }

    /// Stops accepting lines (the writer takes what is queued, then stops) and waits until
    /// the writer has [`finish`](Self::finish)ed, at most until `deadline`. Returns false on
    /// timeout. Idempotent.
    pub(crate) fn close(&self, deadline: Instant) -> bool {
        let mut s = self.lock();
        if !s.closed {
            s.closed = true;
            s.writer = WriterState::Busy;
            self.work.notify_one();
            self.room.notify_all();
        }
        while !s.finished {
            match self.wait_for_progress(s, deadline) {
                Some(guard) => s = guard,
                None => return false,
            }
        }
        true
    }

    /// The writer thread has exited (even by unwinding): nothing more is accepted or
    /// written, and nobody waits for it any longer.
    pub(crate) fn finish(&self) {
        let mut s = self.lock();
        s.finished = true;
        s.closed = true;
        s.processed = s.submitted;
        drop(s);
        self.progress.notify_all();
        self.room.notify_all();
    }

    /// True once [`close`](Self::close) (or [`finish`](Self::finish)) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Bytes queued or being written.
    pub(crate) fn queued_bytes(&self) -> usize {
        let s = self.lock();
        s.short_bytes + s.long_bytes
    }

    /// Lines dropped so far (lossy policy).
    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests;

//! The queue against a simple model: every line accepted comes out once, whole and in order
//! per producer, whatever the interleaving; lossy drops are counted exactly.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{Queue, State};
use crate::error::WriteError;
use crate::LossPolicy;

/// A deterministic pseudo-random sequence (xorshift), one per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `p<producer>:<seq>:` then filler up to `len` bytes, then `\n`; the component is the
/// producer's tag.
fn line(producer: usize, seq: u64, len: usize) -> (Vec<u8>, std::ops::Range<usize>) {
    let mut l = format!("p{producer}:{seq}:").into_bytes();
    let tag = 0..format!("p{producer}").len();
    while l.len() + 1 < len {
        l.push(b'a' + (l.len() % 26) as u8);
    }
    l.push(b'\n');
    (l, tag)
}

/// Parses a line back, checking it is whole: `(producer, seq)`.
fn parse(bytes: &[u8], component: &[u8]) -> (usize, u64) {
    let text = std::str::from_utf8(bytes).expect("utf-8 line");
    assert!(text.ends_with('\n'), "torn line {text:?}");
    let mut parts = text.splitn(3, ':');
    let producer = parts.next().unwrap();
    assert_eq!(producer.as_bytes(), component, "component range");
    let seq = parts.next().unwrap().parse().unwrap();
    let filler = parts.next().unwrap().trim_end_matches('\n');
    let offset = text.len() - filler.len() - 1;
    for (i, b) in filler.bytes().enumerate() {
        assert_eq!(
            b,
            b'a' + ((offset + i) % 26) as u8,
            "corrupted line {text:?}"
        );
    }
    (producer[1..].parse().unwrap(), seq)
}

/// Runs `producers` threads pushing `per_producer` lines of random lengths (some longer than
/// a quarter of the queue, a few longer than all of it) against one writer thread that takes
/// batches as the real one does; returns what each producer had accepted and what the writer
/// saw, in order.
fn run(policy: LossPolicy, capacity: usize, producers: usize, per_producer: u64, seed: u64) {
    let queue = Arc::new(Queue::new(capacity, policy));
    let writer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            let mut seen: HashMap<usize, Vec<u64>> = HashMap::new();
            let mut batch = queue.batch();
            let mut rng = Rng(seed ^ 0x5555);
            let mut gather = false;
            loop {
                let closing = queue.take(&mut batch, gather, Duration::from_millis(5));
                for l in batch.lines() {
                    let (p, seq) = parse(l.bytes, l.component);
                    assert_eq!(l.flags, (seq % 7) as u8);
                    seen.entry(p).or_default().push(seq);
                }
                if rng.next() % 4 == 0 {
                    // A slow write: the budgets fill and callers wait or drop.
                    thread::sleep(Duration::from_micros(rng.next() % 500));
                }
                let empty = batch.is_empty();
                gather = !closing && !empty;
                queue.done(&mut batch);
                if closing && empty {
                    break;
                }
            }
            queue.finish();
            seen
        })
    };
    let accepted: Vec<Vec<u64>> = (0..producers)
        .map(|p| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let mut rng = Rng(seed.wrapping_add(p as u64 * 0x9e37_79b9) | 1);
                let mut ok = Vec::new();
                for seq in 0..per_producer {
                    let len = match rng.next() % 100 {
                        0 => capacity + rng.next() as usize % capacity, // longer than all
                        1..=5 => capacity / 4 + 1 + rng.next() as usize % (capacity / 2),
                        _ => 16 + rng.next() as usize % 200,
                    };
                    let (bytes, component) = line(p, seq, len);
                    match queue.push(&bytes, component, (seq % 7) as u8) {
                        Ok(()) => ok.push(seq),
                        Err(WriteError::QueueFull) => assert_eq!(policy, LossPolicy::Lossy),
                        Err(e) => panic!("{e}"),
                    }
                    if rng.next() % 64 == 0 {
                        queue.flush(Duration::from_secs(30)).unwrap();
                    }
                }
                ok
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    queue.flush(Duration::from_secs(30)).unwrap();
    assert!(queue.close(Instant::now() + Duration::from_secs(30)));
    let seen = writer.join().unwrap();
    let mut total_accepted = 0;
    for (p, ok) in accepted.iter().enumerate() {
        total_accepted += ok.len() as u64;
        let got = seen.get(&p).cloned().unwrap_or_default();
        assert_eq!(&got, ok, "producer {p}: every accepted line once, in order");
    }
    let sent = producers as u64 * per_producer;
    assert_eq!(queue.dropped(), sent - total_accepted);
    if policy == LossPolicy::Lossless {
        assert_eq!(total_accepted, sent);
    }
    assert_eq!(queue.queued_bytes(), 0);
    assert_eq!(queue.push(b"late\n", 0..4, 0), Err(WriteError::Shutdown));
}

#[test]
fn lossless_lines_come_out_once_whole_and_in_order() {
    for seed in 1..=4 {
        run(LossPolicy::Lossless, 4096, 4, 3000, seed);
    }
}

#[test]
fn lossy_lines_come_out_once_in_order_and_every_drop_is_counted() {
    for seed in 1..=4 {
        run(LossPolicy::Lossy, 4096, 4, 3000, seed);
    }
}

#[test]
fn short_and_long_lines_have_separate_budgets() {
    let capacity = 2048;
    let mut s = State::default();
    s.pending.short_bytes = 800;
    // Short lines: half the capacity waits while the other half is written.
    assert!(s.admits(224, false, capacity));
    assert!(!s.admits(225, false, capacity));
    // A long line longer than the budget comes in alone.
    assert!(s.admits(5000, true, capacity));
    s.long_bytes = 5000;
    assert!(!s.admits(600, true, capacity), "a second long line waits");
    assert!(
        s.admits(200, false, capacity),
        "a short line does not wait for long ones"
    );
    s.long_bytes = 1400;
    assert!(s.admits(648, true, capacity));
    assert!(!s.admits(649, true, capacity));
}

#[test]
fn a_full_queue_waits_for_the_writer_under_the_lossless_policy() {
    let queue = Arc::new(Queue::new(2048, LossPolicy::Lossless));
    let (l, c) = line(0, 0, 200);
    for _ in 0..5 {
        queue.push(&l, c.clone(), 0).unwrap();
    }
    // The sixth line does not fit in half the queue: its caller waits until the writer has
    // taken what is queued.
    let caller = {
        let (queue, l, c) = (Arc::clone(&queue), l.clone(), c.clone());
        thread::spawn(move || queue.push(&l, c, 0))
    };
    thread::sleep(Duration::from_millis(50));
    assert!(!caller.is_finished(), "the caller waits for room");
    let mut batch = queue.batch();
    queue.take(&mut batch, false, Duration::from_millis(5));
    assert_eq!(batch.len(), 5);
    caller.join().unwrap().unwrap();
    assert_eq!(queue.queued_bytes(), 1200, "five being written, one queued");
    queue.done(&mut batch);
    assert_eq!(queue.queued_bytes(), 200);
    assert_eq!(queue.dropped(), 0);
}

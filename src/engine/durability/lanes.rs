//! The WAL's record lanes: where writers queue their records without a
//! lock shared by all writers.
//!
//! Each writer thread encodes into its own lane (a buffer behind a mutex
//! that only the flushing thread ever contends for), with an LSN taken from
//! one atomic counter while it holds the lane and its shard lock(s). So:
//! - within a lane, records are in LSN order (the LSN is taken under the
//!   lane's mutex);
//! - for every key, LSN order is apply order (the LSN is taken under the
//!   key's shard lock, as before);
//! - every LSN handed out is in some lane within the time it takes to
//!   encode one record (the writer holds the lane while it encodes).
//!
//! The flushing thread takes every lane that holds records and merges them
//! into one batch in LSN order (`Merger`). A record whose predecessor is
//! still being encoded on another lane waits for the next flush in a carry
//! buffer, so a batch is always the contiguous run of LSNs after the last
//! one written: file order stays LSN order, and the durable LSN means what
//! it always meant.

#![forbid(unsafe_code)]

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::persistence::record::{record_starts, Record, RECORD_PREFIX};

/// Lanes per handle; threads share them round-robin past this. One bit
/// each in `Lanes::dirty`.
pub(super) const LANES: usize = 64;

/// A lane that holds this much wakes the WAL thread to write early; small
/// enough that a lane and the batch built from it stay in a core's L2.
pub(super) const WRITE_EARLY_BYTES: usize = 256 << 10;

/// A lane holding this much makes its writer wait for a flush
/// (back-pressure); no record is ever dropped. Small, so that lane buffers
/// keep one size and are reused: a lane that grew to many MiB under
/// back-pressure was freed after its flush and faulted in afresh by its
/// writer (page faults and zeroing cost more than the WAL's own copy).
pub(super) const MAX_LANE_BYTES: usize = 4 * WRITE_EARLY_BYTES;

/// Buffers that grew past this (a large value went through) are given back
/// to the allocator after the flush instead of being reused.
pub(super) const KEEP_BUFFER_BYTES: usize = 8 << 20;

/// Lane buffers kept for reuse: as many as the last merge took lanes, at
/// least this many, each at most `RECYCLE_BYTES` (a lane grows past it only
/// for a large value). So steady writing on any number of threads swaps
/// buffers without allocating, and a burst on many threads that ends pins
/// no more than this many.
const RECYCLE_COUNT: usize = 8;
const RECYCLE_BYTES: usize = 2 * MAX_LANE_BYTES;

/// One cache line (two, for adjacent-line prefetch) per lane, so writers on
/// different lanes never share one.
#[repr(align(128))]
struct Padded<T>(T);

pub(super) struct Lanes {
    /// The next LSN to hand out.
    next_lsn: Padded<AtomicU64>,
    lanes: Box<[Padded<Mutex<Vec<u8>>>]>,
    /// Bit `i`: lane `i` may hold records. Set by a writer before it takes
    /// an LSN into an empty lane, so a flush that misses a record still in
    /// the making finds its lane on the next pass.
    dirty: Padded<AtomicU64>,
    /// Some lane passed `WRITE_EARLY_BYTES` since the last collection.
    early: AtomicBool,
}

fn lock(m: &Mutex<Vec<u8>>) -> MutexGuard<'_, Vec<u8>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

thread_local! {
    static LANE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's lane, assigned round-robin on first use.
fn lane_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    LANE.with(|l| {
        if l.get() == usize::MAX {
            l.set(NEXT.fetch_add(1, Ordering::Relaxed) % LANES);
        }
        l.get()
    })
}

/// What one append did, for the caller's wake-up and back-pressure rules.
pub(super) struct Appended {
    pub lsn: u64,
    /// The lane just passed `WRITE_EARLY_BYTES`.
    pub crossed_early: bool,
}

impl Lanes {
    pub fn new(next_lsn: u64) -> Lanes {
        Lanes {
            next_lsn: Padded(AtomicU64::new(next_lsn)),
            lanes: (0..LANES).map(|_| Padded(Mutex::new(Vec::new()))).collect(),
            dirty: Padded(AtomicU64::new(0)),
            early: AtomicBool::new(false),
        }
    }

    /// The last LSN handed out.
    pub fn last_lsn(&self) -> u64 {
        self.next_lsn.0.load(Ordering::Acquire) - 1
    }

    pub fn early(&self) -> bool {
        self.early.load(Ordering::Acquire)
    }

    /// This thread's lane, if it is below the back-pressure limit; `None`
    /// means wait for a flush (without holding the lane) and try again.
    pub fn lane_with_room(&self) -> Option<LaneGuard<'_>> {
        let i = lane_index();
        let buf = lock(&self.lanes[i].0);
        (buf.len() < MAX_LANE_BYTES).then_some(LaneGuard { lanes: self, index: i, buf })
    }

    /// Takes every lane that may hold records, leaving a recycled buffer in
    /// each; the taken buffers go to `merger`.
    pub fn collect(&self, merger: &mut Merger) {
        self.early.store(false, Ordering::Release);
        let mut bits = self.dirty.0.swap(0, Ordering::AcqRel);
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let spare = merger.spare.pop().unwrap_or_else(|| Vec::with_capacity(MAX_LANE_BYTES + WRITE_EARLY_BYTES));
            let taken = std::mem::replace(&mut *lock(&self.lanes[i].0), spare);
            if !taken.is_empty() {
                merger.runs.push(taken);
            } else {
                merger.recycle(taken);
            }
        }
    }
}

/// A writer's hold on its lane.
pub(super) struct LaneGuard<'a> {
    lanes: &'a Lanes,
    index: usize,
    buf: MutexGuard<'a, Vec<u8>>,
}

impl LaneGuard<'_> {
    /// Takes the next LSN and encodes `rec` with it; the caller holds the
    /// record's shard lock(s).
    pub fn append(mut self, rec: &Record<'_>) -> Appended {
        let before = self.buf.len();
        if before == 0 {
            self.lanes.dirty.0.fetch_or(1 << self.index, Ordering::AcqRel);
        }
        let lsn = self.lanes.next_lsn.0.fetch_add(1, Ordering::AcqRel);
        rec.encode_unsealed(lsn, &mut self.buf);
        let crossed_early = before < WRITE_EARLY_BYTES && self.buf.len() >= WRITE_EARLY_BYTES;
        if crossed_early {
            self.lanes.early.store(true, Ordering::Release);
        }
        Appended { lsn, crossed_early }
    }
}

/// The flushing thread's side: the lanes taken, the records carried over
/// to the next batch, and recycled buffers.
#[derive(Default)]
pub(super) struct Merger {
    runs: Vec<Vec<u8>>,
    /// Records taken earlier whose predecessor was not yet in a lane; in
    /// LSN order, all above the last LSN written.
    carry: Vec<u8>,
    spare: Vec<Vec<u8>>,
    /// Scratch: per LSN from the first unwritten one, where its record is.
    slots: Vec<Slot>,
}

#[derive(Clone, Copy)]
struct Slot {
    /// Index into the runs (the carry is the last), or `usize::MAX`.
    run: usize,
    start: usize,
    end: usize,
}

const EMPTY: Slot = Slot { run: usize::MAX, start: 0, end: 0 };

fn lsn_of(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at + RECORD_PREFIX..at + RECORD_PREFIX + 8].try_into().unwrap())
}

impl Merger {
    fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() <= RECYCLE_BYTES && self.spare.len() < LANES {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// Keeps as many spares as `taken` lanes were just merged (at least
    /// `RECYCLE_COUNT`).
    fn trim_spares(&mut self, taken: usize) {
        self.spare.truncate(RECYCLE_COUNT.max(taken));
    }

    /// Hands `each` the records from LSN `next` on that form a run without
    /// gaps, in LSN order (with their LSNs); keeps the rest for the next
    /// call. Returns the LSN after the last one handed out (`next` if
    /// none).
    pub fn merge(&mut self, next: u64, mut each: impl FnMut(u64, &[u8])) -> u64 {
        let mut runs = std::mem::take(&mut self.runs);
        if !self.carry.is_empty() {
            runs.push(std::mem::take(&mut self.carry));
        }
        if let [run] = &runs[..] {
            if let Some(end) = self.whole_run(run, next, &mut each) {
                let run = runs.pop().unwrap();
                self.recycle(run);
                self.trim_spares(1);
                return end;
            }
        }
        let taken = runs.len();
        self.place(&runs, next);
        let written = self.slots.iter().take_while(|s| s.run != usize::MAX).count();
        for (k, s) in self.slots[..written].iter().enumerate() {
            each(next + k as u64, &runs[s.run][s.start..s.end]);
        }
        let mut carry = self.spare.pop().unwrap_or_default();
        for s in self.slots[written..].iter().filter(|s| s.run != usize::MAX) {
            carry.extend_from_slice(&runs[s.run][s.start..s.end]);
        }
        self.carry = carry;
        for run in runs {
            self.recycle(run);
        }
        self.trim_spares(taken);
        next + written as u64
    }

    /// Whether the records taken hold every LSN from `next` to `want`.
    pub fn covers(&self, next: u64, want: u64) -> bool {
        let held = self.runs.iter().chain(std::iter::once(&self.carry));
        let count: u64 = held.map(|run| record_starts(run).filter(|&at| (next..=want).contains(&lsn_of(run, at))).count() as u64).sum();
        count == want - next + 1
    }

    /// The common case, one lane whose records are exactly `next, next +
    /// 1, ...`: hands them out in place; `None` (having handed out nothing)
    /// if the run is not that.
    fn whole_run(&self, run: &[u8], next: u64, each: &mut impl FnMut(u64, &[u8])) -> Option<u64> {
        let (mut count, mut last_at) = (0u64, 0);
        for at in record_starts(run) {
            count += 1;
            last_at = at;
        }
        if count == 0 || lsn_of(run, 0) != next || lsn_of(run, last_at) != next + count - 1 {
            return None;
        }
        let ends = record_starts(run).skip(1).chain(std::iter::once(run.len()));
        for (k, (start, end)) in record_starts(run).zip(ends).enumerate() {
            each(next + k as u64, &run[start..end]);
        }
        Some(next + count)
    }

    /// Fills `slots` with where each record of `runs` lies, by its LSN's
    /// distance from `next` (LSNs are dense, so this is a counting sort).
    fn place(&mut self, runs: &[Vec<u8>], next: u64) {
        self.slots.clear();
        for (r, run) in runs.iter().enumerate() {
            let ends = record_starts(run).skip(1).chain(std::iter::once(run.len()));
            for (start, end) in record_starts(run).zip(ends) {
                let lsn = lsn_of(run, start);
                let at = lsn.checked_sub(next).expect("a queued record at or above the next LSN to write") as usize;
                if at >= self.slots.len() {
                    self.slots.resize(at + 1, EMPTY);
                }
                self.slots[at] = Slot { run: r, start, end };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &[u8]) -> Record<'_> {
        Record::Set { key, value: b"v", expires_at: 0 }
    }

    fn lsns(batch: &[u8]) -> Vec<u64> {
        record_starts(batch).map(|at| lsn_of(batch, at)).collect()
    }

    /// Merges into one buffer, checking each record's LSN is the one
    /// handed with it.
    fn merge_into(m: &mut Merger, next: u64, batch: &mut Vec<u8>) -> u64 {
        m.merge(next, |lsn, rec| {
            assert_eq!(lsn_of(rec, 0), lsn);
            batch.extend_from_slice(rec);
        })
    }

    #[test]
    fn merges_lanes_in_lsn_order() {
        let lanes = Lanes::new(1);
        let mut m = Merger::default();
        std::thread::scope(|s| {
            for t in 0..4 {
                let lanes = &lanes;
                s.spawn(move || {
                    for _ in 0..1000 {
                        lanes.lane_with_room().unwrap().append(&set(&[t]));
                    }
                });
            }
        });
        lanes.collect(&mut m);
        let mut batch = Vec::new();
        assert_eq!(merge_into(&mut m, 1, &mut batch), 4001);
        assert_eq!(lsns(&batch), (1..=4000).collect::<Vec<_>>());
    }

    #[test]
    fn a_gap_holds_back_later_records_until_it_fills() {
        let lanes = Lanes::new(1);
        let mut m = Merger::default();
        // LSNs 1 and 3 in runs taken now; 2 arrives with the next pass.
        let mut a = Vec::new();
        set(b"a").encode_unsealed(1, &mut a);
        set(b"c").encode_unsealed(3, &mut a);
        m.runs.push(a);
        let mut batch = Vec::new();
        assert!(m.covers(1, 1) && !m.covers(1, 3));
        assert_eq!(merge_into(&mut m, 1, &mut batch), 2);
        assert_eq!(lsns(&batch), vec![1]);
        let mut b = Vec::new();
        set(b"b").encode_unsealed(2, &mut b);
        m.runs.push(b);
        assert!(m.covers(2, 3));
        lanes.collect(&mut m); // nothing dirty: adds no run
        batch.clear();
        assert_eq!(merge_into(&mut m, 2, &mut batch), 4);
        assert_eq!(lsns(&batch), vec![2, 3]);
        assert!(m.carry.is_empty());
    }

    #[test]
    fn a_lane_that_starts_past_a_gap_is_carried_whole() {
        let mut m = Merger::default();
        let mut a = Vec::new();
        set(b"b").encode_unsealed(2, &mut a);
        set(b"c").encode_unsealed(3, &mut a);
        m.runs.push(a);
        let mut batch = Vec::new();
        assert_eq!(merge_into(&mut m, 1, &mut batch), 1);
        assert!(batch.is_empty());
        let mut b = Vec::new();
        set(b"a").encode_unsealed(1, &mut b);
        m.runs.push(b);
        assert_eq!(merge_into(&mut m, 1, &mut batch), 4);
        assert_eq!(lsns(&batch), vec![1, 2, 3]);
    }

    #[test]
    fn a_full_lane_refuses_room_until_collected() {
        let lanes = Lanes::new(1);
        let big = vec![0u8; MAX_LANE_BYTES];
        let a = lanes.lane_with_room().unwrap().append(&Record::Set { key: b"k", value: &big, expires_at: 0 });
        assert!(a.crossed_early && lanes.early());
        assert!(lanes.lane_with_room().is_none());
        let mut m = Merger::default();
        lanes.collect(&mut m);
        assert!(!lanes.early());
        assert!(lanes.lane_with_room().is_some());
        let mut batch = Vec::new();
        assert_eq!(merge_into(&mut m, 1, &mut batch), 2);
    }
}

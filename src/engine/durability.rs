//! Durability: the WAL queue that writers append to while they hold their
//! shard lock, group commit, the WAL thread and the snapshot thread.
//!
//! Group commit is leader-based: a writer that must wait for durability and
//! finds nobody flushing becomes the flusher itself, writing and fsyncing
//! everything queued so far, while writers that arrive meanwhile queue up
//! behind it and are all covered by the next flush. A lone writer in
//! `Always` mode so pays for its fsync without any thread hand-off. The WAL
//! thread flushes on the interval timer and when a lane grows large.
//!
//! Appending assigns the LSN and encodes the record into the writer
//! thread's own lane (`lanes`), under its shard lock but no lock shared by
//! all writers; the flush merges the lanes in LSN order, so file order is
//! LSN order and, because the shard lock is held, apply order for every
//! key. A lane is bounded: a writer that finds its lane full waits for a
//! flush (back-pressure); no record is ever dropped.
//!
//! Segment files themselves are written by `persistence::segment_writer`;
//! this module decides what goes into them and when to fsync and rotate.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod lanes;
mod opening;
pub(super) use opening::recover_read_only;
mod snapshotter;

use lanes::{Lanes, Merger, KEEP_BUFFER_BYTES};
use snapshotter::{snapshot_loop, SnapshotPolicy};
use super::entry::Value;
use super::list::List;
use super::zset::ZSet;
use super::log::Log;
use super::metrics::{DurabilityCounters, Stats};
use super::{Inner, Options, SyncMode};
use crate::error::{Error, Result};
use crate::persistence::record::{prefix_word, Record, RECORD_PREFIX};
use crate::persistence::recovery::RecoveryStats;
use crate::persistence::snapshot::{self, encode_entry, SnapshotCut, SnapshotMeta, SnapshotWriter, KIND_BYTES, KIND_INT};
use crate::persistence::snapshot_coll::{encode_list_chunk, encode_zset_chunk, lock_value, CHUNK_ELEMS, KIND_LIST, KIND_LIST_MORE, KIND_LOCK, KIND_ZSET, KIND_ZSET_MORE};
use crate::persistence::vfs::{OsVfs, Vfs};
use crate::persistence::segment_writer::SegmentWriter;
use crate::persistence::wal::segment_name;

/// The most records a leader waits to gather before an fsync.
const MAX_GROUP: u64 = 64;

/// Who is flushing, sleeping or waiting; guarded by `Shared::queue`
/// (the records themselves are in `Shared::lanes`).
struct Queue {
    writer_sleeping: bool,
    /// A thread is writing a batch (it owns `Shared::io` meanwhile).
    flushing: bool,
    space_waiters: usize,
    /// Counts collections of the lanes, so a writer waiting for room
    /// cannot miss the one that made it.
    collections: u64,
    closing: bool,
}

/// Where the snapshot trigger counts from: the last LSN and the WAL bytes
/// written when the last snapshot that landed began.
#[derive(Clone, Copy)]
struct SnapshotBase {
    lsn: u64,
    wal_bytes: u64,
}

struct Shared {
    queue: Mutex<Queue>,
    lanes: Lanes,
    /// The last LSN before this handle's first append.
    opened_at_lsn: u64,
    snapshot_base: Mutex<SnapshotBase>,
    wake_writer: Condvar,
    space: Condvar,
    durable: Condvar,
    durable_lsn: AtomicU64,
    /// Shared with the engine's read paths: a failed handle serves nothing.
    failed: Arc<AtomicBool>,
    failure: Mutex<Option<String>>,
    wal_bytes: AtomicU64,
    fsyncs: AtomicU64,
    snapshots_taken: AtomicU64,
    last_snapshot_us: AtomicU64,
    /// First LSNs of the WAL segments on disk, ascending.
    segments: Mutex<Vec<u64>>,
    /// The open segment; used only by the thread that set `Queue::flushing`.
    io: Mutex<Io>,
    /// Where the record after a snapshot's cut lies, resolved from
    /// `Io::mark` by the flush that writes the cut.
    resume_at: Mutex<Option<ResumeAt>>,
    /// Records per synced flush, recently at most (decays by one per flush),
    /// and the last fsync's duration: what a leader waits for, and how long.
    group_peak: AtomicU64,
    fsync_ns: AtomicU64,
    counters: DurabilityCounters,
    log: Log,
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    sync_mode: SyncMode,
    interval: Duration,
    segment_bytes: u64,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        relock(&self.queue)
    }

    fn failure(&self) -> Error {
        Error::Failed(relock(&self.failure).clone().unwrap_or_else(|| "WAL write failed".into()))
    }

    /// Enters the failed state: no more writes, waiters released with an
    /// error. Nothing is retried (an fsync that failed may have dropped
    /// dirty pages; retrying it could report success for lost data).
    fn fail(&self, what: String) {
        let first = {
            let mut f = relock(&self.failure);
            let first = f.is_none();
            f.get_or_insert_with(|| what.clone());
            first
        };
        self.failed.store(true, Ordering::SeqCst);
        {
            let _q = self.queue();
            self.durable.notify_all();
            self.space.notify_all();
        }
        if first {
            // No lock is held here: the logger may call back into the engine.
            self.log.error(|| format!("{}: the handle failed and accepts no more writes or reads ({what}); reopen the directory to recover its durable state", self.dir.display()));
        }
    }

    fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// The last LSN handed out.
    fn last_lsn(&self) -> u64 {
        self.lanes.last_lsn()
    }

    /// Records appended and WAL bytes written since the last snapshot that
    /// landed began (what the snapshot triggers count).
    fn since_snapshot(&self) -> (u64, u64) {
        let base = *relock(&self.snapshot_base);
        (self.last_lsn().saturating_sub(base.lsn), self.wal_bytes.load(Ordering::Relaxed).saturating_sub(base.wal_bytes))
    }

    /// Where the snapshot trigger would count from if a snapshot began now.
    fn snapshot_base_now(&self) -> SnapshotBase {
        SnapshotBase { lsn: self.last_lsn(), wal_bytes: self.wal_bytes.load(Ordering::Relaxed) }
    }

    /// Returns once every record up to `lsn` is durable, flushing itself
    /// when no other thread is.
    fn wait_durable(&self, lsn: u64) -> Result<()> {
        loop {
            if self.durable_lsn.load(Ordering::Acquire) >= lsn {
                return Ok(());
            }
            if self.is_failed() {
                return Err(self.failure());
            }
            let q = self.queue();
            if self.durable_lsn.load(Ordering::Acquire) >= lsn {
                return Ok(());
            }
            if q.flushing {
                drop(self.durable.wait(q).unwrap_or_else(|p| p.into_inner()));
            } else {
                drop(q);
                self.flush_to(true, lsn)?;
                if self.durable_lsn.load(Ordering::Acquire) < lsn {
                    // A record before `lsn` was still being encoded on
                    // another lane; let its writer finish.
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Before taking a batch to fsync, lets the writers that usually share
    /// an fsync queue their records: yields until as many records are
    /// pending as recent groups held, for at most half an fsync. A lone
    /// writer's groups hold one record, so it never waits.
    fn gather_group(&self) {
        let target = self.group_peak.load(Ordering::Relaxed).max(1);
        let budget = Duration::from_nanos(self.fsync_ns.load(Ordering::Relaxed) / 2).min(Duration::from_millis(1));
        let started = Instant::now();
        while self.last_lsn() - self.durable_lsn.load(Ordering::Acquire) < target && started.elapsed() < budget {
            std::thread::yield_now();
        }
    }

    /// Writes everything queued (and fsyncs if `sync`) unless another
    /// thread is flushing; returns whether this call did the flush.
    fn flush(&self, sync: bool) -> Result<bool> {
        self.flush_to(sync, 0)
    }

    /// `flush`, for a leader that waits for record `want`: if a record
    /// before it is still being encoded on another lane, collects again
    /// (a few times, yielding) so that one write and one fsync cover it.
    fn flush_to(&self, sync: bool, want: u64) -> Result<bool> {
        {
            let mut q = self.queue();
            if q.flushing || self.is_failed() {
                return Ok(false);
            }
            q.flushing = true;
        }
        if sync {
            self.gather_group();
        }
        let mut io = relock(&self.io);
        self.lanes.collect(&mut io.merger);
        for _ in 0..3 {
            if want < io.next_lsn || io.merger.covers(io.next_lsn, want) {
                break;
            }
            std::thread::yield_now();
            self.lanes.collect(&mut io.merger);
        }
        {
            let mut q = self.queue();
            q.collections += 1;
            if q.space_waiters > 0 {
                self.space.notify_all();
            }
        }
        let durable_before = self.durable_lsn.load(Ordering::Acquire);
        let result = write_batch(self, &mut io, sync);
        let last_lsn = io.next_lsn - 1;
        drop(io);
        if sync && result.is_ok() {
            let group = last_lsn.saturating_sub(durable_before);
            let peak = self.group_peak.load(Ordering::Relaxed).saturating_sub(1).max(group).min(MAX_GROUP);
            self.group_peak.store(peak, Ordering::Relaxed);
        }
        if let Err(e) = &result {
            self.fail(e.to_string());
        }
        let mut q = self.queue();
        q.flushing = false;
        self.durable.notify_all();
        // The caller that ran into the failure gets the same `Failed` (with
        // the OS error) as every write after it.
        result.map(|()| true).map_err(|_| self.failure())
    }

    /// Like `flush`, but waits for a flush in progress and then flushes.
    fn flush_after_others(&self, sync: bool) -> Result<()> {
        loop {
            let q = self.queue();
            if q.flushing {
                drop(self.durable.wait(q).unwrap_or_else(|p| p.into_inner()));
                continue;
            }
            drop(q);
            if self.flush(sync)? || self.is_failed() {
                return if self.is_failed() { Err(self.failure()) } else { Ok(()) };
            }
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Requests to the snapshot thread and its answers.
struct SnapshotControl {
    state: Mutex<SnapshotState>,
    cv: Condvar,
}

#[derive(Default)]
struct SnapshotState {
    requested: u64,
    done: u64,
    last_result: Option<Result<()>>,
    stop: bool,
    /// Size of the newest snapshot, for the amortization rule.
    last_size: u64,
}

pub struct Durability {
    shared: Arc<Shared>,
    snap: Arc<SnapshotControl>,
    writer: Option<JoinHandle<()>>,
    snapshotter: Option<JoinHandle<()>>,
    recovery: RecoveryStats,
    _dir_lock: Box<dyn Send + Sync>,
}

/// What the flushing thread works with.
struct Io {
    segment: Option<SegmentWriter>,
    merger: Merger,
    /// The first LSN not yet written.
    next_lsn: u64,
    /// A snapshot's cut whose resume position (where the record after it
    /// starts in the WAL) the flush that writes up to it resolves.
    mark: Option<u64>,
    /// While a snapshot copies shards, a copy of every batch written, so
    /// the snapshot can carry the records that bring all shards to one cut.
    /// Kept here, on the WAL thread, so writers pay nothing for it.
    capture: Option<Vec<u8>>,
}

/// Starts segment `first_lsn` (durably: `SegmentWriter::create`) and
/// lists it among the segments retention knows about.
fn create_segment(sh: &Shared, first_lsn: u64) -> Result<SegmentWriter> {
    let w = SegmentWriter::create(&*sh.vfs, &sh.dir, first_lsn)?;
    let mut segs = relock(&sh.segments);
    segs.retain(|&s| s != first_lsn);
    segs.push(first_lsn);
    Ok(w)
}

impl Durability {
    pub fn open(opts: &Options, inner: &Arc<Inner>) -> Result<Durability> {
        let dir = opts.data_dir.clone().expect("durability needs a data dir");
        let vfs: Arc<dyn Vfs> = opts.vfs.clone().unwrap_or_else(|| Arc::new(OsVfs));
        opening::create_dir(&*vfs, &dir)?;
        let lock = opening::lock_dir(&*vfs, &dir)?;
        let log = opts.log();
        let recovered = opening::recover_into(opts, inner, &*vfs, &dir, true)?;

        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue { writer_sleeping: false, flushing: false, space_waiters: 0, collections: 0, closing: false }),
            lanes: Lanes::new(recovered.next_lsn),
            opened_at_lsn: recovered.next_lsn - 1,
            // The records replayed from the WAL count toward the next
            // snapshot as if appended now.
            snapshot_base: Mutex::new(SnapshotBase { lsn: (recovered.next_lsn - 1).saturating_sub(recovered.stats.wal_records), wal_bytes: 0 }),
            wake_writer: Condvar::new(),
            space: Condvar::new(),
            durable: Condvar::new(),
            durable_lsn: AtomicU64::new(recovered.next_lsn - 1),
            failed: inner.failed.clone(),
            failure: Mutex::new(None),
            wal_bytes: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            snapshots_taken: AtomicU64::new(0),
            last_snapshot_us: AtomicU64::new(0),
            segments: Mutex::new(recovered.segments.clone()),
            group_peak: AtomicU64::new(1),
            fsync_ns: AtomicU64::new(0),
            counters: DurabilityCounters::default(),
            log,
            resume_at: Mutex::new(None),
            io: Mutex::new(Io {
                segment: None,
                merger: Merger::default(),
                next_lsn: recovered.next_lsn,
                mark: None,
                capture: None,
            }),
            vfs,
            dir: dir.clone(),
            sync_mode: opts.sync_mode,
            interval: Duration::from_millis(opts.sync_interval_ms),
            segment_bytes: opts.wal_segment_bytes,
        });
        // New writes always go to a fresh segment, so a repaired tail is
        // never appended to.
        relock(&shared.io).segment = Some(create_segment(&shared, recovered.next_lsn)?);

        let sh = shared.clone();
        let writer = std::thread::Builder::new()
            .name("dbkv-wal".into())
            .spawn(move || write_loop(&sh))
            .map_err(|e| Error::io("spawn WAL thread", &e))?;
        let snap = Arc::new(SnapshotControl { state: Mutex::new(SnapshotState::default()), cv: Condvar::new() });
        let (sh, sc, engine) = (shared.clone(), snap.clone(), inner.clone());
        let policy = SnapshotPolicy {
            interval: Duration::from_secs(opts.snapshot_interval_secs),
            ops: opts.snapshot_ops,
            keep: opts.snapshot_keep as usize,
        };
        let snapshotter = std::thread::Builder::new()
            .name("dbkv-snapshot".into())
            .spawn(move || snapshot_loop(&sh, &sc, &engine, policy))
            .map_err(|e| Error::io("spawn snapshot thread", &e))?;
        let durability = Durability {
            shared,
            snap,
            writer: Some(writer),
            snapshotter: Some(snapshotter),
            recovery: recovered.stats,
            _dir_lock: lock,
        };
        if recovered.repaired {
            // The log now differs from what the files say (a cut, a skip, a
            // gap): a snapshot of the recovered state, taken before any
            // write, makes every later open start after the damage, in any
            // recovery mode.
            durability.snapshot_now()?;
        }
        Ok(durability)
    }

    pub fn check_writable(&self) -> Result<()> {
        if self.shared.is_failed() {
            return Err(self.shared.failure());
        }
        Ok(())
    }

    /// Queues a record; called with the record's shard lock(s) held.
    #[inline]
    pub fn append(&self, rec: &Record<'_>) -> Result<u64> {
        append(&self.shared, rec)
    }

    /// A handle that queues records, for the expiry sweeper.
    pub fn appender(&self) -> Appender {
        Appender(self.shared.clone())
    }

    /// Waits for durability when the mode (or `force`) asks for it.
    pub fn commit(&self, lsn: u64, force: bool) -> Result<()> {
        if force || self.shared.sync_mode == SyncMode::Always {
            self.shared.wait_durable(lsn)
        } else {
            Ok(())
        }
    }

    pub fn sync(&self) -> Result<()> {
        self.check_writable()?;
        self.shared.wait_durable(self.shared.last_lsn())
    }

    pub fn snapshot_now(&self) -> Result<()> {
        self.check_writable()?;
        let mut st = relock(&self.snap.state);
        st.requested += 1;
        let ticket = st.requested;
        self.snap.cv.notify_all();
        while st.done < ticket {
            st = self.snap.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.last_result.clone().unwrap_or(Ok(()))
    }

    pub fn stats(&self) -> Stats {
        let sh = &*self.shared;
        let last_lsn = sh.last_lsn();
        let records = last_lsn - sh.opened_at_lsn;
        let mut st = Stats {
            keys: 0,
            wal_records: records,
            wal_bytes: sh.wal_bytes.load(Ordering::Relaxed),
            fsyncs: sh.fsyncs.load(Ordering::Relaxed),
            durable_lsn: sh.durable_lsn.load(Ordering::Acquire),
            last_lsn,
            snapshots_taken: sh.snapshots_taken.load(Ordering::Relaxed),
            last_snapshot_duration_us: sh.last_snapshot_us.load(Ordering::Relaxed),
            recovery_snapshot_loaded: self.recovery.snapshot_loaded,
            recovery_snapshot_entries: self.recovery.snapshot_entries,
            recovery_wal_records: self.recovery.wal_records,
            recovery_corrupt_records: self.recovery.corrupt_records,
            recovery_bytes_dropped: self.recovery.bytes_dropped,
            recovery_duration_us: self.recovery.duration_us,
            failed: sh.is_failed(),
            wal_segments: relock(&sh.segments).len() as u64,
            ..Stats::default()
        };
        sh.counters.fill(&mut st);
        st
    }

    /// Stops the snapshot thread, drains and fsyncs the WAL, stops the
    /// writer thread; the directory lock is released when `self` drops.
    pub fn close(mut self) -> Result<()> {
        self.stop_threads();
        if self.shared.is_failed() {
            return Err(self.shared.failure());
        }
        Ok(())
    }

    fn stop_threads(&mut self) {
        {
            let mut st = relock(&self.snap.state);
            st.stop = true;
            self.snap.cv.notify_all();
        }
        if let Some(t) = self.snapshotter.take() {
            let _ = t.join();
        }
        {
            let mut q = self.shared.queue();
            q.closing = true;
            self.shared.wake_writer.notify_one();
        }
        if let Some(t) = self.writer.take() {
            let _ = t.join();
        }
    }
}

/// A handle dropped without `close` (an open that failed after starting
/// its threads, or a panic) still stops its threads and releases the
/// recovered data and the directory lock.
impl Drop for Durability {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// Assigns the next LSN and encodes the record into this thread's lane;
/// called with the record's shard lock(s) held, so LSN order is apply
/// order for every key.
fn append(sh: &Shared, rec: &Record<'_>) -> Result<u64> {
    let lane = match sh.lanes.lane_with_room() {
        Some(lane) => lane,
        None => wait_for_room(sh)?,
    };
    if sh.is_failed() {
        return Err(sh.failure());
    }
    let appended = lane.append(rec);
    if appended.crossed_early {
        let mut q = sh.queue();
        if q.writer_sleeping {
            q.writer_sleeping = false;
            sh.wake_writer.notify_one();
        }
    }
    Ok(appended.lsn)
}

/// Back-pressure: this thread's lane is full, so wait (holding only the
/// caller's shard locks, which a flush never needs) until a collection
/// empties it.
#[cold]
fn wait_for_room(sh: &Shared) -> Result<lanes::LaneGuard<'_>> {
    let started = Instant::now();
    let lane = loop {
        let seen = sh.queue().collections;
        if let Some(lane) = sh.lanes.lane_with_room() {
            break lane;
        }
        let mut q = sh.queue();
        if sh.is_failed() {
            return Err(sh.failure());
        }
        if q.collections == seen {
            q.space_waiters += 1;
            if q.writer_sleeping {
                q.writer_sleeping = false;
                sh.wake_writer.notify_one();
            }
            q = sh.space.wait(q).unwrap_or_else(|p| p.into_inner());
            q.space_waiters -= 1;
        }
    };
    sh.counters.backpressure_waits.fetch_add(1, Ordering::Relaxed);
    sh.counters.backpressure_wait_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    Ok(lane)
}

/// Queues records from outside the engine's write paths (the expiry sweep).
pub struct Appender(Arc<Shared>);

impl Appender {
    /// Queues a record; called with the record's shard lock(s) held.
    pub fn append(&self, rec: &Record<'_>) -> Result<u64> {
        append(&self.0, rec)
    }
}

/// The WAL thread: flushes on the interval timer (with an fsync unless the
/// mode is `None`), early when the queue passes `WRITE_EARLY_BYTES`, and a
/// last time, with an fsync, on close.
fn write_loop(sh: &Shared) {
    let mut next_tick = Instant::now() + sh.interval;
    loop {
        let (sync, closing) = {
            let mut q = sh.queue();
            loop {
                let now = Instant::now();
                let pending = sh.last_lsn() > sh.durable_lsn.load(Ordering::Acquire);
                if q.closing || sh.lanes.early() || q.space_waiters > 0 || (now >= next_tick && pending) {
                    break;
                }
                if now >= next_tick {
                    next_tick = now + sh.interval;
                }
                q.writer_sleeping = true;
                q = sh.wake_writer.wait_timeout(q, next_tick - now).unwrap_or_else(|p| p.into_inner()).0;
                q.writer_sleeping = false;
            }
            let tick = Instant::now() >= next_tick;
            if tick {
                next_tick = Instant::now() + sh.interval;
            }
            (q.closing || (tick && sh.sync_mode != SyncMode::None), q.closing)
        };
        let flushed = if closing { sh.flush_after_others(true) } else { sh.flush(sync).map(|_| ()) };
        if flushed.is_err() || closing {
            return;
        }
    }
}

/// Writes the records collected into `io.merger` that follow the last one
/// written without a gap, fsyncs when asked or when rotating, and
/// publishes the durable LSN once nothing written is unsynced. Never
/// retries an fsync.
fn write_batch(sh: &Shared, io: &mut Io, sync: bool) -> Result<()> {
    let Io { segment, merger, next_lsn, mark, capture } = io;
    let seg = segment.as_mut().expect("a segment is open");
    let first = *next_lsn;
    // A snapshot's cut, and where the record after it starts: the batch
    // goes to the open segment, at its end (rotation happens only right
    // after a batch is written).
    let mut resume = mark.filter(|&cut| cut + 1 == first).map(|cut| {
        let at = seg.stream_len();
        ResumeAt { cut, segment: seg.first_lsn(), offset: at as u64, check: if at == 0 { 0 } else { seg.last_prefix() } }
    });
    *next_lsn = merger.merge(first, |lsn, record| {
        let prefix = seg.push(record);
        if let Some(capture) = capture.as_mut() {
            capture.extend_from_slice(&prefix);
            capture.extend_from_slice(&record[RECORD_PREFIX..]);
        }
        if *mark == Some(lsn) {
            let at = seg.pending_stream_len();
            resume = Some(ResumeAt { cut: lsn, segment: seg.first_lsn(), offset: at as u64, check: prefix_word(&prefix) });
        }
    });
    let last_lsn = *next_lsn - 1;
    if let Some(at) = resume {
        *mark = None;
        *relock(&sh.resume_at) = Some(at);
    }
    let written = seg.write_pending()?;
    sh.wal_bytes.fetch_add(written, Ordering::Relaxed);
    seg.trim_buffers(KEEP_BUFFER_BYTES);
    let rotate = seg.size() >= sh.segment_bytes;
    if sync || rotate {
        if let Some(took) = seg.sync()? {
            sh.fsync_ns.store(took.as_nanos() as u64, Ordering::Relaxed);
            sh.counters.fsync_latency.record(took.as_micros() as u64);
            sh.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
    }
    if !seg.unsynced() {
        // Everything up to last_lsn was in this or an earlier batch and is
        // now on stable storage.
        sh.durable_lsn.fetch_max(last_lsn, Ordering::AcqRel);
    }
    if rotate {
        let (full, size) = (seg.first_lsn(), seg.size());
        *segment = Some(create_segment(sh, last_lsn + 1)?);
        sh.counters.rotations.fetch_add(1, Ordering::Relaxed);
        sh.log.debug(|| format!("{}: WAL segment {} is full ({size} bytes); continuing in {}", sh.dir.display(), segment_name(full), segment_name(last_lsn + 1)));
    }
    Ok(())
}

/// Where the record after a snapshot's cut starts in the WAL, and the
/// prefix of the record that ends there (record `cut`; 0 at a segment's
/// start): recovery checks it, so a resume position that no longer falls
/// on that record boundary (bytes moved) is never trusted.
#[derive(Clone, Copy)]
struct ResumeAt {
    cut: u64,
    segment: u64,
    offset: u64,
    check: u64,
}

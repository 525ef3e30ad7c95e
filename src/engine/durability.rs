//! Durability: the WAL queue that writers append to while they hold their
//! shard lock, group commit, the WAL thread and the snapshot thread.
//!
//! Group commit is leader-based: a writer that must wait for durability and
//! finds nobody flushing becomes the flusher itself, writing and fsyncing
//! everything queued so far, while writers that arrive meanwhile queue up
//! behind it and are all covered by the next flush. A lone writer in
//! `Always` mode so pays for its fsync without any thread hand-off. The WAL
//! thread flushes on the interval timer and when the queue grows large.
//!
//! Appending assigns the LSN and encodes the record into one shared buffer
//! under one mutex, so buffer order, file order and LSN order are the same,
//! and, because the shard lock is held, equal to apply order for every key.
//! The buffer is bounded: a writer that finds it full waits (back-pressure);
//! no record is ever dropped.
//!
//! Segment files themselves are written by `persistence::segment_writer`;
//! this module decides what goes into them and when to fsync and rotate.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod opening;
pub(super) use opening::recover_read_only;
mod snapshotter;

use snapshotter::{snapshot_loop, SnapshotPolicy};
use super::entry::Value;
use super::list::List;
use super::zset::ZSet;
use super::log::Log;
use super::metrics::{DurabilityCounters, Stats};
use super::{Inner, Options, SyncMode};
use crate::error::{Error, Result};
use crate::persistence::record::{prefix_word, record_starts, seal_all, Record, RECORD_PREFIX};
use crate::persistence::recovery::RecoveryStats;
use crate::persistence::snapshot::{self, encode_entry, SnapshotCut, SnapshotMeta, SnapshotWriter, KIND_BYTES, KIND_INT};
use crate::persistence::snapshot_coll::{encode_list_chunk, encode_zset_chunk, lock_value, CHUNK_ELEMS, KIND_LIST, KIND_LIST_MORE, KIND_LOCK, KIND_ZSET, KIND_ZSET_MORE};
use crate::persistence::vfs::{OsVfs, Vfs};
use crate::persistence::segment_writer::SegmentWriter;
use crate::persistence::wal::segment_name;

/// The most records a leader waits to gather before an fsync.
const MAX_GROUP: u64 = 64;

/// Queued bytes past which writers wait for the writer thread.
const MAX_QUEUED_BYTES: usize = 32 << 20;
/// Queued bytes past which the writer thread is woken to write early; small
/// enough that the two batch buffers stay in a core's L2 cache.
const WRITE_EARLY_BYTES: usize = 256 << 10;
/// WAL buffers that grew past this (a large value went through) are given
/// back after the flush.
const KEEP_BUFFER_BYTES: usize = 8 << 20;


/// Guarded by `Shared::queue`.
struct Queue {
    buf: Vec<u8>,
    next_lsn: u64,
    writer_sleeping: bool,
    /// A thread is writing a batch (it owns `Shared::io` meanwhile).
    flushing: bool,
    space_waiters: usize,
    closing: bool,
    records: u64,
    records_since_snapshot: u64,
    bytes_since_snapshot: u64,
    /// A snapshot's cut and the offset in `buf` where the record after it
    /// starts: the flush that takes `buf` turns it into a WAL position.
    resume_mark: Option<(u64, usize)>,
}

struct Shared {
    queue: Mutex<Queue>,
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
    /// `Queue::resume_mark` by the flush that writes it.
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
        self.queue().next_lsn - 1
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
                self.flush(true)?;
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
        let (last_lsn, mut io) = {
            let mut q = self.queue();
            let mut io = relock(&self.io);
            std::mem::swap(&mut q.buf, &mut io.batch);
            io.mark = q.resume_mark.take();
            if q.space_waiters > 0 {
                self.space.notify_all();
            }
            (q.next_lsn - 1, io)
        };
        let durable_before = self.durable_lsn.load(Ordering::Acquire);
        let result = write_batch(self, &mut io, sync, last_lsn);
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
    batch: Vec<u8>,
    /// A snapshot's resume mark taken with this batch (see `Queue`).
    mark: Option<(u64, usize)>,
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
            queue: Mutex::new(Queue {
                buf: Vec::with_capacity(WRITE_EARLY_BYTES * 2),
                next_lsn: recovered.next_lsn,
                writer_sleeping: false,
                flushing: false,
                space_waiters: 0,
                closing: false,
                records: 0,
                records_since_snapshot: recovered.stats.wal_records,
                bytes_since_snapshot: 0,
                resume_mark: None,
            }),
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
            io: Mutex::new(Io { segment: None, batch: Vec::with_capacity(WRITE_EARLY_BYTES * 2), mark: None, capture: None }),
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
        let (records, last_lsn) = {
            let q = sh.queue();
            (q.records, q.next_lsn - 1)
        };
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

/// Assigns the next LSN and encodes the record into the queue; called
/// with the record's shard lock(s) held, so queue order is apply order.
fn append(sh: &Shared, rec: &Record<'_>) -> Result<u64> {
    let mut q = sh.queue();
    if q.buf.len() >= MAX_QUEUED_BYTES {
        let started = Instant::now();
        while q.buf.len() >= MAX_QUEUED_BYTES {
            if sh.is_failed() {
                return Err(sh.failure());
            }
            q.space_waiters += 1;
            q = sh.space.wait(q).unwrap_or_else(|p| p.into_inner());
            q.space_waiters -= 1;
        }
        sh.counters.backpressure_waits.fetch_add(1, Ordering::Relaxed);
        sh.counters.backpressure_wait_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
    if sh.is_failed() {
        return Err(sh.failure());
    }
    let lsn = q.next_lsn;
    q.next_lsn += 1;
    let before = q.buf.len();
    rec.encode_unsealed(lsn, &mut q.buf);
    q.records += 1;
    q.records_since_snapshot += 1;
    q.bytes_since_snapshot += (q.buf.len() - before) as u64;
    if q.writer_sleeping && q.buf.len() >= WRITE_EARLY_BYTES {
        q.writer_sleeping = false;
        sh.wake_writer.notify_one();
    }
    Ok(lsn)
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
                let pending = q.next_lsn - 1 > sh.durable_lsn.load(Ordering::Acquire);
                if q.closing || q.buf.len() >= WRITE_EARLY_BYTES || (now >= next_tick && pending) {
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

/// Writes `io.batch`, fsyncs when asked or when rotating, and publishes the
/// durable LSN once nothing written is unsynced. Never retries an fsync.
fn write_batch(sh: &Shared, io: &mut Io, sync: bool, last_lsn: u64) -> Result<()> {
    let seg = io.segment.as_mut().expect("a segment is open");
    let last_start = seal_all(&mut io.batch);
    if let Some((cut, offset)) = io.mark.take() {
        // The batch goes to the open segment, at its end: rotation happens
        // only right after a batch is written.
        let at = seg.stream_len() + offset;
        let check = if at == 0 { 0 } else { prefix_ending_at(&io.batch, offset, seg.last_prefix()) };
        *relock(&sh.resume_at) = Some(ResumeAt { cut, segment: seg.first_lsn(), offset: at as u64, check });
    }
    if last_start.is_some() {
        if let Some(capture) = io.capture.as_mut() {
            capture.extend_from_slice(&io.batch);
        }
        let written = seg.append(&io.batch)?;
        sh.wal_bytes.fetch_add(written, Ordering::Relaxed);
        io.batch.clear();
        // One huge record must not pin its size in memory until close.
        if io.batch.capacity() > KEEP_BUFFER_BYTES {
            io.batch = Vec::with_capacity(WRITE_EARLY_BYTES * 2);
        }
        seg.trim_buffers(KEEP_BUFFER_BYTES);
    }
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
        io.segment = Some(create_segment(sh, last_lsn + 1)?);
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

/// The prefix of the record of sealed `batch` that ends at `end`; `before`
/// (the last record of an earlier batch) when `end` is 0.
fn prefix_ending_at(batch: &[u8], end: usize, before: u64) -> u64 {
    record_starts(batch).take_while(|&s| s < end).last().map_or(before, |s| prefix_word(&batch[s..]))
}


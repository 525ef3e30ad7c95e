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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::entry::Value;
use super::list::List;
use super::zset::ZSet;
use super::restore::Restore;
use super::{Inner, Options, SyncMode};
use crate::error::{Error, Result};
use crate::persistence::block;
use crate::persistence::record::{prefix_word, record_starts, seal_all, Record, RECORD_PREFIX};
use crate::persistence::recovery::{self, RecoveryStats};
use crate::persistence::snapshot::{self, encode_entry, SnapshotCut, SnapshotMeta, SnapshotWriter, KIND_BYTES, KIND_INT};
use crate::persistence::snapshot_coll::{encode_list_chunk, encode_zset_chunk, lock_value, CHUNK_ELEMS, KIND_LIST, KIND_LIST_MORE, KIND_LOCK, KIND_ZSET, KIND_ZSET_MORE};
use crate::persistence::vfs::{OsVfs, Vfs, VfsFile};
use crate::persistence::wal::{encode_segment_header, segment_name};

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

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub keys: u64,
    pub wal_records: u64,
    pub wal_bytes: u64,
    pub fsyncs: u64,
    pub durable_lsn: u64,
    pub last_lsn: u64,
    pub snapshots_taken: u64,
    pub last_snapshot_duration_us: u64,
    pub recovery_snapshot_loaded: bool,
    pub recovery_snapshot_entries: u64,
    pub recovery_wal_records: u64,
    pub recovery_corrupt_records: u64,
    pub recovery_bytes_dropped: u64,
    pub recovery_duration_us: u64,
    pub failed: bool,
}

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
        relock(&self.failure).get_or_insert(what);
        self.failed.store(true, Ordering::SeqCst);
        let _q = self.queue();
        self.durable.notify_all();
        self.space.notify_all();
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

    fn sync_dir(&self) -> Result<()> {
        self.vfs.sync_dir(&self.dir).map_err(|e| Error::io(&format!("fsync directory {}", self.dir.display()), &e))
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

/// An open WAL segment.
struct Segment {
    file: Box<dyn VfsFile>,
    size: u64,
    first_lsn: u64,
}

/// What the flushing thread works with.
struct Io {
    segment: Option<Segment>,
    batch: Vec<u8>,
    /// The batch with block headers inserted, as written to the file.
    framed: Vec<u8>,
    /// A snapshot's resume mark taken with this batch (see `Queue`).
    mark: Option<(u64, usize)>,
    /// While a snapshot copies shards, a copy of every batch written, so
    /// the snapshot can carry the records that bring all shards to one cut.
    /// Kept here, on the WAL thread, so writers pay nothing for it.
    capture: Option<Vec<u8>>,
    /// The prefix (`record::prefix_word`) of the last record written to the
    /// open segment; 0 while it holds none.
    last_prefix: u64,
    /// Bytes were written to the segment since its last fsync.
    unsynced: bool,
}

fn create_segment(sh: &Shared, first_lsn: u64) -> Result<Segment> {
    let path = sh.path(&segment_name(first_lsn));
    let ctx = |e: std::io::Error| Error::io(&format!("create WAL segment {}", path.display()), &e);
    let mut file = sh.vfs.create(&path).map_err(ctx)?;
    let header = encode_segment_header(first_lsn);
    file.write_all(&header).map_err(ctx)?;
    file.sync().map_err(ctx)?;
    sh.sync_dir()?;
    let mut segs = relock(&sh.segments);
    segs.retain(|&s| s != first_lsn);
    segs.push(first_lsn);
    Ok(Segment { file, size: header.len() as u64, first_lsn })
}

impl Durability {
    pub fn open(opts: &Options, inner: &Arc<Inner>) -> Result<Durability> {
        let dir = opts.data_dir.clone().expect("durability needs a data dir");
        let vfs: Arc<dyn Vfs> = opts.vfs.clone().unwrap_or_else(|| Arc::new(OsVfs));
        vfs.create_dir(&dir).map_err(|e| Error::io(&format!("create data directory {}", dir.display()), &e))?;
        let lock = vfs
            .lock_dir(&dir)
            .map_err(|e| Error::io(&format!("lock {}", dir.join("LOCK").display()), &e))?
            .ok_or_else(|| Error::Busy(format!("data directory {} is already open (its LOCK is held by this or another process)", dir.display())))?;

        let mut restore = Restore::new(inner);
        let recovered = recovery::recover(&*vfs, &dir, opts.recovery_mode, &mut restore)?;
        super::restore::shrink_tables(inner);
        inner.last_token.store(recovered.max_token, Ordering::Relaxed);

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
            resume_at: Mutex::new(None),
            io: Mutex::new(Io { segment: None, batch: Vec::with_capacity(WRITE_EARLY_BYTES * 2), framed: Vec::new(), mark: None, capture: None, last_prefix: 0, unsynced: false }),
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
        Stats {
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
        }
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
    while q.buf.len() >= MAX_QUEUED_BYTES {
        if sh.is_failed() {
            return Err(sh.failure());
        }
        q.space_waiters += 1;
        q = sh.space.wait(q).unwrap_or_else(|p| p.into_inner());
        q.space_waiters -= 1;
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
        let at = block::stream_len(seg.size as usize) + offset;
        let check = if at == 0 { 0 } else { prefix_ending_at(&io.batch, offset, io.last_prefix) };
        *relock(&sh.resume_at) = Some(ResumeAt { cut, segment: seg.first_lsn, offset: at as u64, check });
    }
    if let Some(last) = last_start {
        io.last_prefix = prefix_word(&io.batch[last..]);
        if let Some(capture) = io.capture.as_mut() {
            capture.extend_from_slice(&io.batch);
        }
        block::frame(&mut io.framed, &io.batch, seg.size, seg.first_lsn);
        seg.file.write_all(&io.framed).map_err(|e| Error::io("write WAL segment", &e))?;
        seg.size += io.framed.len() as u64;
        sh.wal_bytes.fetch_add(io.framed.len() as u64, Ordering::Relaxed);
        io.batch.clear();
        io.unsynced = true;
        // One huge record must not pin its size in memory until close.
        for buf in [&mut io.batch, &mut io.framed] {
            if buf.capacity() > KEEP_BUFFER_BYTES {
                *buf = Vec::with_capacity(WRITE_EARLY_BYTES * 2);
            }
        }
    }
    let rotate = seg.size >= sh.segment_bytes;
    if io.unsynced && (sync || rotate) {
        let started = Instant::now();
        seg.file.sync().map_err(|e| Error::io("fsync WAL segment", &e))?;
        sh.fsync_ns.store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        sh.fsyncs.fetch_add(1, Ordering::Relaxed);
        io.unsynced = false;
    }
    if !io.unsynced {
        // Everything up to last_lsn was in this or an earlier batch and is
        // now on stable storage.
        sh.durable_lsn.fetch_max(last_lsn, Ordering::AcqRel);
    }
    if rotate {
        io.segment = Some(create_segment(sh, last_lsn + 1)?);
        io.last_prefix = 0;
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

#[derive(Clone, Copy)]
struct SnapshotPolicy {
    interval: Duration,
    ops: u64,
    keep: usize,
}

fn snapshot_loop(sh: &Shared, ctl: &SnapshotControl, inner: &Inner, policy: SnapshotPolicy) {
    lower_priority();
    let mut last = Instant::now();
    loop {
        let explicit = {
            let mut st = relock(&ctl.state);
            if !st.stop && st.requested == st.done {
                st = ctl.cv.wait_timeout(st, Duration::from_millis(200)).unwrap_or_else(|p| p.into_inner()).0;
            }
            if st.stop {
                return;
            }
            (st.requested > st.done).then_some(st.requested)
        };
        let due = explicit.is_some() || snapshot_due(sh, ctl, policy, last);
        if !due || sh.is_failed() {
            if let Some(ticket) = explicit {
                finish_request(ctl, ticket, Err(sh.failure()));
            }
            continue;
        }
        let result = take_snapshot(sh, ctl, inner, policy.keep);
        last = Instant::now();
        match explicit {
            Some(ticket) => finish_request(ctl, ticket, result),
            // A failed automatic snapshot is retried at the next trigger;
            // the WAL still holds everything, so nothing is at risk.
            None => {}
        }
    }
}

fn finish_request(ctl: &SnapshotControl, ticket: u64, result: Result<()>) {
    let mut st = relock(&ctl.state);
    st.done = st.done.max(ticket);
    st.last_result = Some(result);
    ctl.cv.notify_all();
}

/// The automatic triggers. The ops trigger also waits until the WAL
/// written since the last snapshot is at least that snapshot's size, so
/// snapshot work stays proportional to WAL written however large the data.
fn snapshot_due(sh: &Shared, ctl: &SnapshotControl, policy: SnapshotPolicy, last: Instant) -> bool {
    let (records, bytes) = {
        let q = sh.queue();
        (q.records_since_snapshot, q.bytes_since_snapshot)
    };
    if records == 0 {
        return false;
    }
    let by_ops = policy.ops > 0 && records >= policy.ops && bytes >= relock(&ctl.state).last_size;
    let by_time = !policy.interval.is_zero() && last.elapsed() >= policy.interval;
    by_ops || by_time
}

fn take_snapshot(sh: &Shared, ctl: &SnapshotControl, inner: &Inner, keep: usize) -> Result<()> {
    let started = Instant::now();
    let counted = {
        let q = sh.queue();
        (q.records_since_snapshot, q.bytes_since_snapshot)
    };
    // Only this thread writes snapshots in this directory (it holds the
    // LOCK), and recovery removes a leftover temp file, so one name will do.
    let tmp = sh.path(crate::persistence::recovery::SNAPSHOT_TMP);
    let (name, size) = match write_snapshot(sh, inner, &tmp) {
        Ok(v) => v,
        Err(e) => {
            relock(&sh.io).capture = None;
            let _ = sh.vfs.remove(&tmp);
            return Err(e);
        }
    };
    let final_path = sh.path(&name);
    sh.vfs.rename(&tmp, &final_path).map_err(|e| Error::io(&format!("rename snapshot to {}", final_path.display()), &e))?;
    sh.sync_dir()?;
    {
        // Only a snapshot that landed restarts the ops trigger.
        let mut q = sh.queue();
        q.records_since_snapshot = q.records_since_snapshot.saturating_sub(counted.0);
        q.bytes_since_snapshot = q.bytes_since_snapshot.saturating_sub(counted.1);
    }
    sh.snapshots_taken.fetch_add(1, Ordering::Relaxed);
    sh.last_snapshot_us.store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    relock(&ctl.state).last_size = size;
    remove_obsolete(sh, keep)
}

/// One shard's copy: the LSN it is complete up to, its entry count and
/// the encoded entries.
struct ShardCopy {
    covered: u64,
    count: u64,
    encoded: Vec<u8>,
}

/// Copies one shard under its read lock. With the lock held no record for
/// the shard is in flight, so every record for it up to the last LSN handed
/// out is applied: that LSN is what the copy covers. Every entry is copied,
/// expired ones too: they are in the table until a logged removal, and
/// replaying the log keeps them as well.
fn copy_shard(sh: &Shared, inner: &Inner, shard: usize, mut encoded: Vec<u8>) -> ShardCopy {
    encoded.clear();
    let s = inner.shards[shard].read();
    let covered = sh.last_lsn();
    let mut count = 0u64;
    // Collections are shared (O(1)) under the lock and encoded after it:
    // a huge list never holds the shard lock for its size. A write to one
    // meanwhile copies it first (copy-on-write), so this share is the
    // state at `covered`.
    let mut shared = Vec::new();
    for e in s.iter() {
        let (key, exp) = (e.key(), e.expires_at());
        match (e.value(), e.lock_token()) {
            (Value::Bytes(owner), Some(token)) => encode_entry(&mut encoded, KIND_LOCK, exp, key, &lock_value(owner, token)),
            (Value::Bytes(b), None) => encode_entry(&mut encoded, KIND_BYTES, exp, key, b),
            (Value::Int(n), _) => encode_entry(&mut encoded, KIND_INT, exp, key, &n.to_le_bytes()),
            (Value::List(_), _) => shared.push((key.to_vec(), exp, e.share_list(), None)),
            (Value::ZSet(_), _) => shared.push((key.to_vec(), exp, None, e.share_zset())),
        }
        count += 1;
    }
    drop(s);
    for (key, exp, list, zset) in shared {
        count += encode_collection(&mut encoded, &key, exp, list.as_deref(), zset.as_deref()) - 1;
    }
    ShardCopy { covered, count, encoded }
}

/// Encodes a list or sorted set as chunk entries; how many entries.
fn encode_collection(out: &mut Vec<u8>, key: &[u8], exp: u64, list: Option<&List>, zset: Option<&ZSet>) -> u64 {
    let mut entries = 0u64;
    if let Some(l) = list {
        let items: Vec<&[u8]> = l.iter_from(0).collect();
        for (i, chunk) in items.chunks(CHUNK_ELEMS).enumerate() {
            let kind = if i == 0 { KIND_LIST } else { KIND_LIST_MORE };
            encode_entry(out, kind, exp, key, &encode_list_chunk(chunk.iter().copied()));
            entries += 1;
        }
    }
    if let Some(z) = zset {
        let items: Vec<(&[u8], f64)> = z.iter().collect();
        for (i, chunk) in items.chunks(CHUNK_ELEMS).enumerate() {
            let kind = if i == 0 { KIND_ZSET } else { KIND_ZSET_MORE };
            encode_entry(out, kind, exp, key, &encode_zset_chunk(chunk.iter().copied()));
            entries += 1;
        }
    }
    entries
}

/// Copies the shards one by one while a second thread hashes and writes
/// the previous copies. Records appended meanwhile are captured; once the
/// last shard is copied, the capture ends at the cut, and the records
/// after the smallest covered LSN go into the file as its tail, so the file
/// is the state after exactly one LSN. The WAL is made durable up to the
/// cut before the file is sealed, so a snapshot never holds a write the WAL
/// could lose.
fn write_snapshot(sh: &Shared, inner: &Inner, tmp: &Path) -> Result<(String, u64)> {
    let meta = SnapshotMeta { shard_count: inner.shards.len() as u32, hash_seed: inner.seed, created_ms: inner.now() };
    let mut writer = SnapshotWriter::create(&*sh.vfs, tmp, &meta)?;
    // Under the io lock no batch is being written: every record appended
    // from now on is in a batch written, and captured, after this.
    relock(&sh.io).capture = Some(Vec::new());
    let mut min_lsn = u64::MAX;
    let (to_writer, copies) = std::sync::mpsc::sync_channel::<ShardCopy>(2);
    let (recycle, spare) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut writer = std::thread::scope(|scope| {
        let io = scope.spawn(move || -> Result<SnapshotWriter> {
            lower_priority();
            for copy in copies {
                writer.shard(copy.covered, copy.count, &copy.encoded)?;
                let _ = recycle.send(copy.encoded);
            }
            Ok(writer)
        });
        for shard in 0..inner.shards.len() {
            let copy = copy_shard(sh, inner, shard, spare.try_recv().unwrap_or_default());
            min_lsn = min_lsn.min(copy.covered);
            if to_writer.send(copy).is_err() {
                break; // the writer failed; its error is returned below
            }
        }
        drop(to_writer);
        io.join().unwrap_or_else(|_| Err(Error::Internal("snapshot writer thread panicked".into())))
    })?;
    let cut_lsn = {
        let mut q = sh.queue();
        let cut_lsn = q.next_lsn - 1;
        q.resume_mark = Some((cut_lsn, q.buf.len()));
        cut_lsn
    };
    // Every token granted by a record at or below the cut was taken before
    // that record was appended, so before this read.
    let token_hwm = inner.last_token.load(Ordering::SeqCst);
    sh.wait_durable(cut_lsn)?;
    let at = resume_position(sh, cut_lsn)?;
    // Every record up to the cut is written now, so captured.
    let captured = relock(&sh.io).capture.take().unwrap_or_default();
    let cut = SnapshotCut { cut_lsn, token_hwm, resume_segment: at.segment, resume_offset: at.offset, resume_check: at.check };
    let (count, tail) = tail_between(captured, min_lsn, cut_lsn);
    writer.tail(cut, count, &tail)?;
    let size = writer.finish()?;
    Ok((snapshot::snapshot_name(cut_lsn), size))
}

/// Where the record after `cut` starts (or will start) in the WAL: the
/// flush that takes the queue buffer holding the mark resolves it; if none
/// has yet, one is run.
fn resume_position(sh: &Shared, cut: u64) -> Result<ResumeAt> {
    loop {
        if let Some(at) = *relock(&sh.resume_at) {
            if at.cut == cut {
                return Ok(at);
            }
        }
        sh.flush_after_others(false)?;
    }
}

/// The captured (sealed) records with LSNs in `min_lsn + 1 ..= cut`, and
/// their count.
fn tail_between(mut captured: Vec<u8>, min_lsn: u64, cut: u64) -> (u64, Vec<u8>) {
    // Records are in LSN order, and the LSN opens each body.
    let lsn_at = |at: usize| u64::from_le_bytes(captured[at + RECORD_PREFIX..at + RECORD_PREFIX + 8].try_into().unwrap());
    let starts: Vec<usize> = record_starts(&captured).collect();
    let first = starts.partition_point(|&at| lsn_at(at) <= min_lsn);
    let end = starts.partition_point(|&at| lsn_at(at) <= cut);
    let offset = |i: usize| starts.get(i).copied().unwrap_or(captured.len());
    let (from, to) = (offset(first), offset(end));
    captured.truncate(to);
    captured.drain(..from);
    ((end - first) as u64, captured)
}

/// Keeps the newest `keep` snapshots, and the WAL segments that the two
/// newest need (the previous one is the fallback if the newest is damaged).
fn remove_obsolete(sh: &Shared, keep: usize) -> Result<()> {
    let names = sh.vfs.list(&sh.dir).map_err(|e| Error::io("list data directory", &e))?;
    let mut snaps: Vec<u64> = names.iter().filter_map(|n| snapshot::parse_snapshot_name(n)).collect();
    snaps.sort_unstable();
    let mut removed = false;
    while snaps.len() > keep {
        let old = snaps.remove(0);
        remove_if_present(sh, &snapshot::snapshot_name(old))?;
        removed = true;
    }
    let floor = match snaps.len() {
        0 => return Ok(()),
        1 => snaps[0],
        n => snaps[n - 2],
    };
    let mut segs = relock(&sh.segments);
    while segs.len() > 1 && segs[1] - 1 <= floor {
        let old = segs.remove(0);
        remove_if_present(sh, &segment_name(old))?;
        removed = true;
    }
    drop(segs);
    if removed {
        sh.sync_dir()?;
    }
    Ok(())
}

fn remove_if_present(sh: &Shared, name: &str) -> Result<()> {
    match sh.vfs.remove(&sh.path(name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&format!("remove {name}"), &e)),
        _ => Ok(()),
    }
}

/// Snapshot threads run at a lower CPU priority (nice 10) so that, on a
/// machine with few cores, writers keep most of their throughput while a
/// snapshot runs; the snapshot only takes longer.
fn lower_priority() {
    // SAFETY: setpriority on the calling thread's own id.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

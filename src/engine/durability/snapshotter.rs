//! Snapshots: when one is due, how the shards are copied while writes go
//! on (collections by shared reference, encoded outside the lock), how the
//! file is cut at one LSN, and which old files retention removes.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::*;
use crate::persistence::retention;
use crate::persistence::record::record_starts;

#[derive(Clone, Copy)]
pub(super) struct SnapshotPolicy {
    pub(super) interval: Duration,
    pub(super) ops: u64,
    pub(super) keep: usize,
}

pub(super) fn snapshot_loop(sh: &Shared, ctl: &SnapshotControl, inner: &Inner, policy: SnapshotPolicy) {
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
        let started = Instant::now();
        let result = take_snapshot(sh, ctl, inner, policy.keep);
        last = Instant::now();
        report_snapshot(sh, &result, started.elapsed());
        // A failed automatic snapshot is retried at the next trigger; the
        // WAL still holds everything, so nothing is at risk.
        if let Some(ticket) = explicit {
            finish_request(ctl, ticket, result);
        }
    }
}

/// Counts and logs a snapshot's outcome (no lock held: the logger may call
/// back into the engine).
fn report_snapshot(sh: &Shared, result: &Result<()>, took: Duration) {
    match result {
        Ok(()) => {
            let bytes = sh.counters.last_snapshot_bytes.load(Ordering::Relaxed);
            sh.log.info(|| format!("{}: snapshot written, {bytes} bytes in {:.1} ms", sh.dir.display(), took.as_secs_f64() * 1000.0));
        }
        Err(e) => {
            sh.counters.snapshot_failures.fetch_add(1, Ordering::Relaxed);
            sh.log.error(|| format!("{}: snapshot failed after {:.1} ms: {} (the WAL still holds every write; the next trigger retries)", sh.dir.display(), took.as_secs_f64() * 1000.0, e.detail()));
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
    let (records, bytes) = sh.since_snapshot();
    if records == 0 {
        return false;
    }
    let by_ops = policy.ops > 0 && records >= policy.ops && bytes >= relock(&ctl.state).last_size;
    let by_time = !policy.interval.is_zero() && last.elapsed() >= policy.interval;
    by_ops || by_time
}

fn take_snapshot(sh: &Shared, ctl: &SnapshotControl, inner: &Inner, keep: usize) -> Result<()> {
    let started = Instant::now();
    let began = sh.snapshot_base_now();
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
    snapshot::publish(&*sh.vfs, &sh.dir, &tmp, &name)?;
    // Only a snapshot that landed restarts the ops trigger.
    *relock(&sh.snapshot_base) = began;
    sh.snapshots_taken.fetch_add(1, Ordering::Relaxed);
    sh.last_snapshot_us.store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    sh.counters.last_snapshot_bytes.store(size, Ordering::Relaxed);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    sh.counters.last_snapshot_unix_ms.store(now_ms, Ordering::Relaxed);
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
    let meta = SnapshotMeta { shard_count: inner.shards.len() as u32, hash_seed: inner.seed(), created_ms: inner.now() };
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
        // Under the io lock no flush runs, so the flush that writes record
        // `cut_lsn` is a later one and resolves the mark.
        let mut io = relock(&sh.io);
        let cut_lsn = sh.last_lsn();
        io.mark = Some(cut_lsn);
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
/// flush that writes record `cut` resolves the mark; if none has yet, one
/// is run.
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

/// Applies retention (`persistence::retention`): the newest `keep`
/// snapshots, and the WAL segments the two newest need.
fn remove_obsolete(sh: &Shared, keep: usize) -> Result<()> {
    let names = sh.vfs.list(&sh.dir).map_err(|e| Error::io("list data directory", &e))?;
    let mut snaps: Vec<u64> = names.iter().filter_map(|n| snapshot::parse_snapshot_name(n)).collect();
    snaps.sort_unstable();
    let mut segs = relock(&sh.segments);
    let plan = retention::plan(&snaps, &segs, keep);
    let doomed: Vec<String> = plan
        .snapshots
        .iter()
        .map(|&cut| snapshot::snapshot_name(cut))
        .chain(segs.drain(..plan.segments).map(segment_name))
        .collect();
    drop(segs);
    for name in &doomed {
        sh.log.debug(|| format!("{}: retention removes {name} (older than the snapshots kept)", sh.dir.display()));
    }
    retention::remove_files(&*sh.vfs, &sh.dir, &doomed).map(|_| ())
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

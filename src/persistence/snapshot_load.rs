//! Reading snapshot files (layout in `snapshot.rs` and docs/FORMAT.md,
//! "Snapshot files").
//!
//! A version-5 file names every section's length and CRC-32C in a table
//! sealed by a SHA-256, so once that small digest matches, sections can be
//! checked and loaded independently: `load_parallel` hands them to several
//! threads, each verifying a shard section right before parsing it, so
//! reading, verifying and inserting overlap on every core. Versions 2 to 4
//! are sealed by one SHA-256 over the whole file and are read serially.

#![forbid(unsafe_code)]

use std::mem::offset_of;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::record::is_valid_key;
use super::snapshot::{
    is_sealed_table, is_sealed_whole, readable_snapshot_version, table_at, EntryHead, ShardHead, SnapshotCut, SnapshotMeta, TailHead, CREATED_AT,
    ENTRIES_FROM_END, ENTRY_HEAD, KIND_BYTES, KIND_INT, ROW_CRC_AT, SECTION_ROW_LEN, SECTION_TABLE_VERSION, SEED_AT, SHARD_COUNT_AT, SHARD_HEAD,
    SHA_LEN, SNAPSHOT_HEADER_LEN, SNAPSHOT_MAGIC, SNAPSHOT_TRAILER_LEN, TAIL_HEAD, VALUE_LEN, VERSION_AT,
};
use super::wal::{read_view, ScanView};
use crate::error::{Error, Result};

/// The entry count the trailer claims (unverified): a sizing hint.
pub fn entry_count_hint(b: &[u8]) -> u64 {
    if b.len() < SNAPSHOT_HEADER_LEN + SNAPSHOT_TRAILER_LEN {
        return 0;
    }
    let at = b.len() - ENTRIES_FROM_END;
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The hash seed the header claims (unverified, so only a hint: keys
/// hashed with it fall into the file's sections, whatever it is).
pub fn seed_hint(b: &[u8]) -> Option<u64> {
    (b.len() >= SNAPSHOT_HEADER_LEN && b.starts_with(SNAPSHOT_MAGIC)).then(|| u64_at(b, SEED_AT))
}

/// A verified snapshot image.
pub struct LoadedSnapshot {
    pub meta: SnapshotMeta,
    pub cut: SnapshotCut,
    pub shard_lsns: Vec<u64>,
    pub entries: u64,
    /// Where the tail records lie in the image (a run of WAL records, read
    /// with `wal::read_view`), and how many there are.
    pub tail: Range<usize>,
    pub tail_records: u64,
}

/// One entry as read back.
pub struct SnapEntry<'a> {
    pub kind: u8,
    pub expires_at: u64,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Where a snapshot's parts lie, once its seal and header checked.
struct Layout {
    version: u32,
    meta: SnapshotMeta,
    /// Where the tail section ends: the section table (version 5) or the
    /// trailer (versions 2 to 4).
    body_end: usize,
    /// Version 5: every section's bytes and CRC-32C, the shards in order,
    /// then the tail.
    sections: Option<Vec<(Range<usize>, u32)>>,
}

struct Reader<'f> {
    file: &'f str,
}

impl Reader<'_> {
    fn bad(&self, off: usize, what: &str) -> Error {
        Error::Corruption(format!("{} at offset {off}: {what}", self.file))
    }

    /// Checks the magic, the seal, the version and the shard count, and
    /// (version 5) where the section table puts each section.
    fn layout(&self, b: &[u8]) -> Result<Layout> {
        if b.len() < SNAPSHOT_HEADER_LEN + SNAPSHOT_TRAILER_LEN {
            return Err(self.bad(0, "snapshot is truncated"));
        }
        if &b[..SNAPSHOT_MAGIC.len()] != SNAPSHOT_MAGIC {
            return Err(self.bad(0, "not a dbkv snapshot (bad magic)"));
        }
        let version = u32_at(b, VERSION_AT);
        // A damaged version field picks the wrong seal, which then fails:
        // damage, not a format this build does not know.
        let sealed = match version {
            SECTION_TABLE_VERSION => is_sealed_table(b),
            v if readable_snapshot_version(v) => is_sealed_whole(b),
            _ => is_sealed_whole(b) || is_sealed_table(b),
        };
        if !sealed {
            return Err(self.bad(b.len() - SHA_LEN, "snapshot SHA-256 mismatch"));
        }
        if !readable_snapshot_version(version) {
            return Err(self.bad(VERSION_AT, &format!("unsupported snapshot version {version}")));
        }
        let meta = SnapshotMeta { shard_count: u32_at(b, SHARD_COUNT_AT), hash_seed: u64_at(b, SEED_AT), created_ms: u64_at(b, CREATED_AT) };
        if meta.shard_count == 0 || !meta.shard_count.is_power_of_two() {
            return Err(self.bad(SHARD_COUNT_AT, &format!("shard count {} is not a power of two", meta.shard_count)));
        }
        if version < SECTION_TABLE_VERSION {
            return Ok(Layout { version, meta, body_end: b.len() - SNAPSHOT_TRAILER_LEN, sections: None });
        }
        // The seal matched, so the table exists; its lengths must tile the
        // body exactly.
        let table = table_at(b).ok_or_else(|| self.bad(SHARD_COUNT_AT, "the section table does not fit"))?;
        let mut sections = Vec::with_capacity(meta.shard_count as usize + 1);
        let mut off = SNAPSHOT_HEADER_LEN;
        for row in (table..b.len() - SNAPSHOT_TRAILER_LEN).step_by(SECTION_ROW_LEN) {
            let len = u64_at(b, row);
            let end = usize::try_from(len).ok().and_then(|l| off.checked_add(l)).filter(|&e| e <= table);
            let end = end.ok_or_else(|| self.bad(row, "section table row runs past the section table"))?;
            sections.push((off..end, u32_at(b, row + ROW_CRC_AT)));
            off = end;
        }
        if off != table {
            return Err(self.bad(table, "the sections do not end where the section table starts"));
        }
        Ok(Layout { version, meta, body_end: table, sections: Some(sections) })
    }

    fn check_crc(&self, b: &[u8], (range, crc): &(Range<usize>, u32)) -> Result<()> {
        if crc32c::crc32c(&b[range.clone()]) != *crc {
            return Err(self.bad(range.start, "snapshot section CRC-32C mismatch"));
        }
        Ok(())
    }

    /// Reads the shard section at `off`, none of it past `end`, passing
    /// each entry on; returns its covered LSN, its entry count and where it
    /// ends.
    fn shard_section<'a>(&self, b: &'a [u8], version: u32, mut off: usize, end: usize, each: &mut dyn FnMut(SnapEntry<'a>)) -> Result<(u64, u64, usize)> {
        if off + SHARD_HEAD > end {
            return Err(self.bad(off, "shard header past the end"));
        }
        let covered = u64_at(b, off + offset_of!(ShardHead, covered_lsn));
        let count = u64_at(b, off + offset_of!(ShardHead, count));
        off += SHARD_HEAD;
        for _ in 0..count {
            if off + ENTRY_HEAD > end {
                return Err(self.bad(off, "entry past the end"));
            }
            let kind = b[off + offset_of!(EntryHead, kind)];
            let expires_at = u64_at(b, off + offset_of!(EntryHead, expires_at));
            let klen = u32_at(b, off + offset_of!(EntryHead, key_len)) as usize;
            let kstart = off + ENTRY_HEAD;
            if kstart + klen + VALUE_LEN > end {
                return Err(self.bad(off, "entry key past the end"));
            }
            let vlen = u32_at(b, kstart + klen) as usize;
            let vstart = kstart + klen + VALUE_LEN;
            if vstart + vlen > end {
                return Err(self.bad(off, "entry value past the end"));
            }
            let value = &b[vstart..vstart + vlen];
            let valid = match kind {
                KIND_BYTES => true,
                KIND_INT => vlen == 8,
                _ => version >= 4 && super::snapshot_coll::check(kind, value).is_ok(),
            };
            if !valid || !is_valid_key(&b[kstart..kstart + klen]) {
                return Err(self.bad(off, &format!("entry kind {kind} with a {klen}-byte key and a {vlen}-byte value")));
            }
            each(SnapEntry { kind, expires_at, key: &b[kstart..kstart + klen], value });
            off = vstart + vlen;
        }
        Ok((covered, count, off))
    }

    /// A version-5 shard section must end where the table says.
    fn shard_in_table<'a>(&self, b: &'a [u8], version: u32, range: &Range<usize>, each: &mut dyn FnMut(SnapEntry<'a>)) -> Result<(u64, u64)> {
        let (covered, count, end) = self.shard_section(b, version, range.start, range.end, each)?;
        if end != range.end {
            return Err(self.bad(end, "shard section does not end where the section table says"));
        }
        Ok((covered, count))
    }

    /// Reads the tail section at `off` (ending at `body_end`) and checks
    /// the totals: what is left of `LoadedSnapshot` after the entries.
    fn tail(&self, b: &[u8], l: Layout, off: usize, shard_lsns: Vec<u64>, entries: u64) -> Result<LoadedSnapshot> {
        let body_end = l.body_end;
        if off + TAIL_HEAD > body_end {
            return Err(self.bad(off, "tail header past the end"));
        }
        let field = |at: usize| u64_at(b, off + at);
        let cut = SnapshotCut {
            cut_lsn: field(offset_of!(TailHead, cut_lsn)),
            token_hwm: field(offset_of!(TailHead, token_hwm)),
            resume_segment: field(offset_of!(TailHead, resume_segment)),
            resume_offset: field(offset_of!(TailHead, resume_offset)),
            resume_check: field(offset_of!(TailHead, resume_check)),
        };
        if cut.resume_segment == 0 || cut.resume_segment > cut.cut_lsn + 1 {
            return Err(self.bad(off + offset_of!(TailHead, resume_segment), "the resume segment cannot hold the record after the cut"));
        }
        if shard_lsns.iter().any(|&l| l > cut.cut_lsn) {
            return Err(self.bad(off, "a shard covers more than the snapshot's cut"));
        }
        let counts_at = off + offset_of!(TailHead, count);
        let (tail, tail_records) = check_tail(b, counts_at, body_end, &shard_lsns, cut.cut_lsn).map_err(|(o, what)| self.bad(o, what))?;
        if tail.end != body_end || entry_count_hint(b) != entries {
            return Err(self.bad(tail.end, "entry count does not match the trailer"));
        }
        Ok(LoadedSnapshot { meta: l.meta, cut, shard_lsns, entries, tail, tail_records })
    }
}

/// Verifies a snapshot image, then calls `each` for every entry while
/// checking the structure. No entry is passed on before every checksum
/// matched; on a structural error (behind a valid checksum, so a version
/// skew rather than damage) part of the entries may already have been
/// passed: the caller discards them.
pub fn load<'a>(file: &str, b: &'a [u8], mut each: impl FnMut(SnapEntry<'a>)) -> Result<LoadedSnapshot> {
    let r = Reader { file };
    let l = r.layout(b)?;
    let shard_count = l.meta.shard_count as usize;
    let (mut shard_lsns, mut entries) = (Vec::with_capacity(shard_count), 0u64);
    let mut off = SNAPSHOT_HEADER_LEN;
    match &l.sections {
        Some(sections) => {
            for s in sections {
                r.check_crc(b, s)?;
            }
            for (range, _) in &sections[..shard_count] {
                let (covered, count) = r.shard_in_table(b, l.version, range, &mut each)?;
                shard_lsns.push(covered);
                entries += count;
            }
            off = sections[shard_count].0.start;
        }
        None => {
            for _ in 0..shard_count {
                let (covered, count, end) = r.shard_section(b, l.version, off, l.body_end, &mut each)?;
                shard_lsns.push(covered);
                entries += count;
                off = end;
            }
        }
    }
    r.tail(b, l, off, shard_lsns, entries)
}

/// Entries passed to `load_parallel`'s callback at once.
const BATCH: usize = 8192;

/// Loads a snapshot on up to `workers` threads: `each` gets the entries a
/// batch at a time, concurrently from several threads, with all the
/// entries of one key in file order on one thread (a key lies in one
/// shard section). `progress` is told the bytes done so far, on the
/// calling thread.
///
/// A version-5 shard section is verified right before it is loaded, so on
/// an error the entries of other sections may already have been passed:
/// the caller discards them. Older versions load serially through `load`.
pub fn load_parallel<'a>(
    file: &str,
    b: &'a [u8],
    workers: usize,
    each: &(dyn Fn(&[SnapEntry<'a>]) + Sync),
    progress: &mut dyn FnMut(u64),
) -> Result<LoadedSnapshot> {
    let r = Reader { file };
    let l = r.layout(b)?;
    let Some(sections) = l.sections.as_deref() else {
        return load_serially(file, b, each, progress);
    };
    let shard_count = l.meta.shard_count as usize;
    let (shards, tail) = sections.split_at(shard_count);
    r.check_crc(b, &tail[0])?;
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    // One worker's shard sections: (index, covered LSN and count, or the
    // error). After an error the others stop taking sections.
    let work = |on_section: &mut dyn FnMut(u64)| {
        let mut out = Vec::new();
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(s) = shards.get(i) else { break };
            let loaded = r.check_crc(b, s).and_then(|()| {
                r.shard_in_table(b, l.version, &s.0, &mut |e| {
                    batch.push(e);
                    if batch.len() == BATCH {
                        each(&batch);
                        batch.clear();
                    }
                })
            });
            each(&batch);
            batch.clear();
            let failed = loaded.is_err();
            out.push((i, loaded));
            if failed {
                next.store(shards.len(), Ordering::Relaxed);
                break;
            }
            on_section(done.fetch_add(s.0.len() as u64, Ordering::Relaxed) + s.0.len() as u64);
        }
        out
    };
    let mut results = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..workers.clamp(1, shards.len().max(1))).map(|_| scope.spawn(|| work(&mut |_| {}))).collect();
        let mut all = work(progress);
        for h in helpers {
            all.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        all
    });
    // The first damaged section in file order is the one reported, as a
    // serial load would.
    results.sort_unstable_by_key(|(i, _)| *i);
    let (mut shard_lsns, mut entries) = (Vec::with_capacity(shard_count), 0u64);
    for (_, loaded) in results {
        let (covered, count) = loaded?;
        shard_lsns.push(covered);
        entries += count;
    }
    let tail_at = tail[0].0.start;
    r.tail(b, l, tail_at, shard_lsns, entries)
}

/// `load_parallel` for versions 2 to 4: one thread, batches of entries,
/// progress estimated from the entry count the trailer announces.
fn load_serially<'a>(file: &str, b: &'a [u8], each: &(dyn Fn(&[SnapEntry<'a>]) + Sync), progress: &mut dyn FnMut(u64)) -> Result<LoadedSnapshot> {
    let (total, hint) = (b.len() as u64, entry_count_hint(b).max(1));
    let (mut batch, mut seen) = (Vec::with_capacity(BATCH), 0u64);
    let loaded = load(file, b, |e| {
        batch.push(e);
        if batch.len() == BATCH {
            each(&batch);
            batch.clear();
            seen += BATCH as u64;
            progress((total as u128 * seen.min(hint) as u128 / hint as u128) as u64);
        }
    });
    each(&batch);
    loaded
}

/// Checks the tail section at `off`: whole records with ascending LSNs
/// above the smallest covered LSN, the last one being the cut.
fn check_tail(b: &[u8], off: usize, body_end: usize, shard_lsns: &[u64], cut: u64) -> std::result::Result<(Range<usize>, u64), (usize, &'static str)> {
    // `off` is the tail head's record count, followed by the byte length.
    const COUNTS: usize = TAIL_HEAD - offset_of!(TailHead, count);
    if off + COUNTS > body_end {
        return Err((off, "tail header past the end"));
    }
    let count = u64_at(b, off);
    let len = u64_at(b, off + 8);
    let start = off + COUNTS;
    let end = usize::try_from(len).ok().and_then(|l| start.checked_add(l)).filter(|&e| e <= body_end).ok_or((off, "tail past the end"))?;
    let stream = &b[start..end];
    let mut prev = shard_lsns.iter().copied().min().unwrap_or(0);
    let (mut at, mut n) = (0, 0u64);
    while at < stream.len() {
        match read_view(stream, at) {
            ScanView::Record { len, lsn, .. } if lsn > prev && lsn <= cut => {
                prev = lsn;
                at += len;
                n += 1;
            }
            _ => return Err((start + at, "bad record in the tail")),
        }
    }
    if n != count || prev != cut {
        return Err((off, "tail record count or last LSN does not match the header"));
    }
    Ok((start..end, count))
}

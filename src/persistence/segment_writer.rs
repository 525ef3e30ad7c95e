//! Writing WAL segments: a new segment's header made durable (file and
//! directory entry), then records sealed and framed into 32 KiB blocks
//! (`block::Framer`) as they are pushed, written in one call per batch,
//! fsynced when the caller asks.
//!
//! What to write and when to fsync or rotate is the engine's policy
//! (`engine::durability`); this module holds only the file I/O, so it can
//! be tested alone on `SimVfs`.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::block;
use super::record::{prefix_word, record_starts, sealed_prefix, RECORD_PREFIX};
use super::vfs::{Vfs, VfsFile};
use super::wal::{encode_segment_header, segment_name};
use crate::error::{Error, Result};

/// The open segment of a WAL.
pub struct SegmentWriter {
    file: Box<dyn VfsFile>,
    path: PathBuf,
    /// File bytes written so far, the header and block headers included.
    size: u64,
    first_lsn: u64,
    /// The prefix (`record::prefix_word`) of the last record written; 0
    /// while the segment holds none.
    last_prefix: u64,
    /// Bytes were written since the last fsync.
    unsynced: bool,
    /// The batch being built, with its block headers (reused).
    framed: Vec<u8>,
    /// Frames pushed records; its file length runs ahead of `size` by
    /// `framed.len()`.
    framer: block::Framer,
    /// The prefix of the last record pushed.
    pushed_prefix: u64,
}

impl SegmentWriter {
    /// Creates `wal-<first_lsn>.log` in `dir` holding only its header, and
    /// makes the file and its directory entry durable before returning, so
    /// a segment that recovery can see always has a whole header.
    pub fn create(vfs: &dyn Vfs, dir: &Path, first_lsn: u64) -> Result<SegmentWriter> {
        let path = dir.join(segment_name(first_lsn));
        let ctx = |e: std::io::Error| Error::io(&format!("create WAL segment {}", path.display()), &e);
        let mut file = vfs.create(&path).map_err(ctx)?;
        let header = encode_segment_header(first_lsn);
        file.write_all(&header).map_err(ctx)?;
        file.sync().map_err(ctx)?;
        vfs.sync_dir(dir).map_err(|e| Error::io(&format!("fsync directory {}", dir.display()), &e))?;
        let size = header.len() as u64;
        Ok(SegmentWriter {
            file,
            path,
            size,
            first_lsn,
            last_prefix: 0,
            unsynced: false,
            framed: Vec::new(),
            framer: block::Framer::new(size, first_lsn),
            pushed_prefix: 0,
        })
    }

    /// Seals one whole record (written by `Record::encode_unsealed`, or
    /// already sealed) and frames it into the pending batch; returns its
    /// sealed prefix. Nothing reaches the file until `write_pending`.
    pub fn push(&mut self, record: &[u8]) -> [u8; RECORD_PREFIX] {
        let prefix = sealed_prefix(record);
        self.framer.record(&mut self.framed, &prefix, &record[RECORD_PREFIX..]);
        self.pushed_prefix = prefix_word(&prefix);
        prefix
    }

    /// The logical stream length once the pending batch is written: where
    /// the next record pushed will start.
    pub fn pending_stream_len(&self) -> usize {
        block::stream_len(self.framer.file_len() as usize)
    }

    /// Writes the records pushed since the last call; returns the file
    /// bytes written. Not durable until `sync`.
    pub fn write_pending(&mut self) -> Result<u64> {
        if self.framed.is_empty() {
            return Ok(0);
        }
        let result = self.file.write_all(&self.framed);
        let written = self.framed.len() as u64;
        self.framed.clear();
        if let Err(e) = result {
            // The batch is dropped; the handle fails (a write is never
            // retried), and the framer restarts from the bytes known written.
            self.framer = block::Framer::new(self.size, self.first_lsn);
            return Err(Error::io(&format!("write WAL segment {}", self.path.display()), &e));
        }
        self.size += written;
        self.last_prefix = self.pushed_prefix;
        self.unsynced = true;
        Ok(written)
    }

    /// Appends `batch`, whole sealed records (`record::seal_all`), framed
    /// into blocks; returns the file bytes written. Not durable until
    /// `sync`.
    pub fn append(&mut self, batch: &[u8]) -> Result<u64> {
        let ends = record_starts(batch).skip(1).chain(std::iter::once(batch.len()));
        for (start, end) in record_starts(batch).zip(ends) {
            self.push(&batch[start..end]);
        }
        self.write_pending()
    }

    /// Fsyncs what `append` wrote, if anything; returns how long the fsync
    /// took (`None`: nothing to sync). Never retried: after a failed fsync
    /// the kernel may have dropped the dirty pages, so the caller must
    /// treat every unsynced write as lost.
    pub fn sync(&mut self) -> Result<Option<Duration>> {
        if !self.unsynced {
            return Ok(None);
        }
        let started = Instant::now();
        self.file.sync().map_err(|e| Error::io(&format!("fsync WAL segment {}", self.path.display()), &e))?;
        self.unsynced = false;
        Ok(Some(started.elapsed()))
    }

    /// Gives back a framing buffer that grew past `keep` bytes (one huge
    /// record must not pin its size in memory until close).
    pub fn trim_buffers(&mut self, keep: usize) {
        if self.framed.capacity() > keep {
            self.framed = Vec::new();
        }
    }

    pub fn first_lsn(&self) -> u64 {
        self.first_lsn
    }

    /// File bytes so far (rotation compares it with the segment size).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Record-stream bytes so far: where the next batch's first record
    /// starts in the stream `block::deblock` returns.
    pub fn stream_len(&self) -> usize {
        block::stream_len(self.size as usize)
    }

    /// The prefix word of the last record written (0 if none).
    pub fn last_prefix(&self) -> u64 {
        self.last_prefix
    }

    /// True while written bytes await an fsync.
    pub fn unsynced(&self) -> bool {
        self.unsynced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::record::{seal_all, Record};
    use crate::persistence::sim_vfs::SimVfs;
    use crate::persistence::wal::{records_with_offsets, Scan};

    fn batch(lsns: std::ops::Range<u64>, value: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        for lsn in lsns {
            Record::Set { key: format!("k{lsn}").as_bytes(), value, expires_at: 0 }.encode_unsealed(lsn, &mut b);
        }
        seal_all(&mut b);
        b
    }

    fn lsns_in(vfs: &SimVfs, path: &Path) -> Vec<u64> {
        let image = vfs.read(path).unwrap();
        records_with_offsets(&image)
            .into_iter()
            .filter_map(|s| match s {
                Scan::Record { lsn, .. } => Some(lsn),
                Scan::Bad { .. } => None,
            })
            .collect()
    }

    fn new_dir() -> (SimVfs, &'static Path) {
        let vfs = SimVfs::new();
        let dir = Path::new("/db");
        vfs.create_dir(dir).unwrap();
        vfs.sync_dir(Path::new("/")).unwrap();
        (vfs, dir)
    }

    #[test]
    fn batches_read_back_across_blocks_and_only_synced_bytes_survive_a_crash() {
        let (vfs, dir) = new_dir();
        let mut w = SegmentWriter::create(&vfs, dir, 1).unwrap();
        let path = dir.join(segment_name(1));
        assert_eq!(w.stream_len(), 0);
        // Three batches of 40 records of about 1 KiB: they straddle blocks.
        let big = vec![7u8; 1000];
        for (i, lsns) in [1..41, 41..81, 81..121].into_iter().enumerate() {
            let b = batch(lsns, &big);
            let at = w.stream_len();
            let written = w.append(&b).unwrap();
            assert!(written >= b.len() as u64, "block headers only add bytes");
            assert_eq!(w.stream_len(), at + b.len());
            if i < 2 {
                assert!(w.sync().unwrap().is_some());
                assert!(w.sync().unwrap().is_none(), "nothing left to sync");
            }
        }
        assert!(w.unsynced());
        assert!(w.last_prefix() != 0);
        assert_eq!(lsns_in(&vfs, &path), (1..121).collect::<Vec<_>>());
        vfs.crash();
        assert_eq!(lsns_in(&vfs, &path), (1..81).collect::<Vec<_>>(), "the unsynced batch is lost, the synced ones are not");
    }

    #[test]
    fn a_failed_write_or_fsync_is_an_error_naming_the_segment() {
        let (vfs, dir) = new_dir();
        let mut w = SegmentWriter::create(&vfs, dir, 5).unwrap();
        vfs.fail_write_after(0);
        let e = w.append(&batch(5..6, b"v")).unwrap_err().to_string();
        assert!(e.contains("wal-00000000000000000005.log"), "{e}");
        vfs.clear_faults();
        let mut w = SegmentWriter::create(&vfs, dir, 9).unwrap();
        w.append(&batch(9..10, b"v")).unwrap();
        vfs.fail_sync_after(0);
        let e = w.sync().unwrap_err().to_string();
        assert!(e.contains("fsync WAL segment") && e.contains("wal-00000000000000000009.log"), "{e}");
    }

    #[test]
    fn a_new_segment_survives_a_crash_with_its_whole_header() {
        let (vfs, dir) = new_dir();
        SegmentWriter::create(&vfs, dir, 3).unwrap();
        vfs.crash();
        let image = vfs.read(&dir.join(segment_name(3))).expect("the directory entry is durable");
        assert_eq!(image, encode_segment_header(3));
    }
}

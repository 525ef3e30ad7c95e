//! TEMPORARY stand-in for `dbkv::persistence::recovery::plan`, which lands
//! on main soon with the same signature; delete this file and call the
//! library's `plan` then. It runs the real `recovery::recover` against a
//! view that records the repairs instead of making them, so the actions
//! are exact; only the reasons are missing (the caller takes them from
//! `inspect`).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use dbkv::persistence::record::RecordView;
use dbkv::persistence::recovery::{self, Action, Finding, Plan, Sink};
use dbkv::persistence::snapshot::{SnapEntry, SnapshotMeta};
use dbkv::persistence::vfs::{Image, Vfs, VfsFile};
use dbkv::{Error, RecoveryMode};

struct Null;

impl Sink for Null {
    fn entries(&mut self, _: &[SnapEntry<'_>]) {}
    fn snapshot_loaded(&mut self, _: &SnapshotMeta, _: &[u64]) {}
    fn reset(&mut self) {}
    fn records(&mut self, _: &[(u64, RecordView<'_>)]) {}
    fn reserve(&mut self, _: u64) {}
}

struct NullFile;

impl VfsFile for NullFile {
    fn write_all(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Records what recovery would change and changes nothing.
struct Recorder<'a> {
    inner: &'a dyn Vfs,
    findings: Mutex<Vec<Finding>>,
}

impl Recorder<'_> {
    fn size(&self, p: &Path) -> u64 {
        self.inner.map(p).map(|i| i.len() as u64).unwrap_or(0)
    }
    fn push(&self, file: &Path, offset: u64, action: Action) {
        self.findings.lock().unwrap().push(Finding { file: file.to_path_buf(), offset, reason: String::new(), action });
    }
}

impl Vfs for Recorder<'_> {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn map(&self, path: &Path) -> io::Result<Image> {
        self.inner.map(path)
    }
    fn create(&self, _: &Path) -> io::Result<Box<dyn VfsFile>> {
        Ok(Box::new(NullFile))
    }
    fn append(&self, _: &Path) -> io::Result<Box<dyn VfsFile>> {
        Ok(Box::new(NullFile))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let bytes = self.size(path).saturating_sub(len);
        self.push(path, len, Action::Cut { bytes });
        Ok(())
    }
    fn rename(&self, from: &Path, _: &Path) -> io::Result<()> {
        let bytes = self.size(from);
        self.push(from, 0, Action::SetAside { bytes });
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.push(path, 0, Action::Remove);
        Ok(())
    }
    fn sync_dir(&self, _: &Path) -> io::Result<()> {
        Ok(())
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<Option<Box<dyn Send + Sync>>> {
        self.inner.lock_dir(dir)
    }
}

pub fn plan(vfs: &dyn Vfs, dir: &Path, mode: RecoveryMode) -> Result<Plan, Error> {
    let rec = Recorder { inner: vfs, findings: Mutex::new(Vec::new()) };
    let r = recovery::recover(&rec, dir, mode, &mut Null)?;
    let mut findings = rec.findings.into_inner().unwrap();
    if findings.iter().all(|f| f.action == Action::Remove) && r.stats.corrupt_records > 0 {
        // SkipCorrupted changes no file: the skip shows only in the stats.
        findings.push(Finding { file: PathBuf::new(), offset: 0, reason: String::new(), action: Action::Skip { bytes: r.stats.bytes_dropped } });
    }
    Ok(Plan { stats: r.stats, findings })
}

//! `SimVfs`: an in-memory file system for tests, which knows what is
//! durable and can lose the rest (power loss) or fail the Nth write or
//! sync. Compiled only for tests (`cfg(test)` here, the `test-util` feature for
//! the integration tests, which dev-depend on this crate with it), so the
//! shipped `libdbkv.so` carries none of it.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::vfs::*;

/// An in-memory file system that knows what is durable: file contents
/// become durable on `sync`, directory entries on `sync_dir`. `crash()`
/// throws away everything else, as a power loss would. Faults: the Nth
/// write or sync from now fails with EIO.
#[derive(Clone, Default)]
pub struct SimVfs {
    state: Arc<Mutex<SimState>>,
}

#[derive(Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Default)]
struct SimState {
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
    /// Directory entries as the process sees them, and as they are on disk.
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    dirs: HashSet<PathBuf>,
    locked: HashSet<PathBuf>,
    writes_until_failure: Option<u64>,
    syncs_until_failure: Option<u64>,
    /// Count of successful syncs, for tests that target "the Nth fsync".
    syncs: u64,
    writes: u64,
    /// Bumped by `crash()`: files and locks of the "dead" process stop working.
    epoch: u64,
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("injected EIO on {what}"))
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", p.display()))
}

impl SimState {
    fn inode_of(&self, path: &Path) -> io::Result<u64> {
        self.names.get(path).copied().ok_or_else(|| not_found(path))
    }

    /// Counts down an armed fault; true when this call must fail.
    fn trip(counter: &mut Option<u64>) -> bool {
        match counter {
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    }
}

struct SimFile {
    vfs: SimVfs,
    inode: u64,
    epoch: u64,
}

fn dead_process() -> io::Error {
    io::Error::other("simulated crash: this handle's process is gone")
}

impl VfsFile for SimFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut s = self.vfs.lock();
        if s.epoch != self.epoch {
            return Err(dead_process());
        }
        if SimState::trip(&mut s.writes_until_failure) {
            return Err(eio("write"));
        }
        s.writes += 1;
        s.inodes.get_mut(&self.inode).expect("inode").data.extend_from_slice(buf);
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        let mut s = self.vfs.lock();
        if s.epoch != self.epoch {
            return Err(dead_process());
        }
        if SimState::trip(&mut s.syncs_until_failure) {
            return Err(eio("fsync"));
        }
        s.syncs += 1;
        let ino = s.inodes.get_mut(&self.inode).expect("inode");
        ino.durable = ino.data.clone();
        Ok(())
    }
}

impl SimVfs {
    pub fn new() -> SimVfs {
        SimVfs::default()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `n`th write from now (0 = the next one) and every later one fail.
    pub fn fail_write_after(&self, n: u64) {
        self.lock().writes_until_failure = Some(n);
    }

    /// The `n`th fsync from now (0 = the next one) and every later one fail.
    pub fn fail_sync_after(&self, n: u64) {
        self.lock().syncs_until_failure = Some(n);
    }

    pub fn clear_faults(&self) {
        let mut s = self.lock();
        s.writes_until_failure = None;
        s.syncs_until_failure = None;
    }

    pub fn sync_count(&self) -> u64 {
        self.lock().syncs
    }

    /// Power loss: keep only what was made durable; drop all locks.
    pub fn crash(&self) {
        let mut s = self.lock();
        s.names = s.durable_names.clone();
        for ino in s.inodes.values_mut() {
            ino.data = ino.durable.clone();
        }
        s.locked.clear();
        s.epoch += 1;
    }

    /// Overwrites bytes of a file in place, durably (for corruption tests).
    pub fn corrupt(&self, path: &Path, offset: usize, bytes: &[u8]) {
        let mut s = self.lock();
        let ino = s.inode_of(path).expect("file exists");
        let f = s.inodes.get_mut(&ino).unwrap();
        f.data[offset..offset + bytes.len()].copy_from_slice(bytes);
        f.durable = f.data.clone();
    }
}

impl Vfs for SimVfs {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        self.lock().dirs.insert(dir.to_path_buf());
        Ok(())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.lock();
        Ok(s.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect())
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.lock();
        Ok(s.inodes[&s.inode_of(path)?].data.clone())
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let mut s = self.lock();
        let inode = s.next_inode;
        s.next_inode += 1;
        s.inodes.insert(inode, Inode::default());
        s.names.insert(path.to_path_buf(), inode);
        Ok(Box::new(SimFile { vfs: self.clone(), inode, epoch: s.epoch }))
    }
    fn append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let s = self.lock();
        let inode = s.inode_of(path)?;
        Ok(Box::new(SimFile { vfs: self.clone(), inode, epoch: s.epoch }))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut s = self.lock();
        let ino = s.inode_of(path)?;
        let f = s.inodes.get_mut(&ino).unwrap();
        f.data.truncate(len as usize);
        f.durable = f.data.clone();
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let ino = s.names.remove(from).ok_or_else(|| not_found(from))?;
        s.names.insert(to.to_path_buf(), ino);
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.lock().names.remove(path).map(|_| ()).ok_or_else(|| not_found(path))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        if SimState::trip(&mut s.syncs_until_failure) {
            return Err(eio("directory fsync"));
        }
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        let mut durable: BTreeMap<PathBuf, u64> = s.durable_names.clone();
        durable.retain(|p, _| !in_dir(p));
        durable.extend(s.names.iter().filter(|(p, _)| in_dir(p)).map(|(p, i)| (p.clone(), *i)));
        s.durable_names = durable;
        Ok(())
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<Option<Box<dyn Send + Sync>>> {
        let mut s = self.lock();
        if !s.locked.insert(dir.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(Box::new(SimLock { vfs: self.clone(), dir: dir.to_path_buf(), epoch: s.epoch })))
    }
}

struct SimLock {
    vfs: SimVfs,
    dir: PathBuf,
    epoch: u64,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut s = self.vfs.lock();
        if s.epoch == self.epoch {
            s.locked.remove(&self.dir);
        }
    }
}


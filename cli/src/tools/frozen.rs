//! A read-only view of a data directory for the tools that must not change
//! it: the file list is fixed when the view is made (a private copy, so a
//! live server's retention cannot change what is examined halfway), every
//! write fails, and with `copy` files are read into memory rather than
//! mapped (a live server may append to them while they are read).

use std::io;
use std::path::Path;

use dbkv::persistence::vfs::{Image, OsVfs, Vfs, VfsFile};

pub struct FrozenVfs {
    names: Vec<String>,
    copy: bool,
}

impl FrozenVfs {
    /// Lists `dir` once; `copy`: read files instead of mapping them.
    pub fn new(dir: &Path, copy: bool) -> io::Result<FrozenVfs> {
        Ok(FrozenVfs { names: OsVfs.list(dir)?, copy })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
}

fn refused() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "this tool modifies nothing (read-only view of the directory)")
}

impl Vfs for FrozenVfs {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        if dir.is_dir() {
            Ok(())
        } else {
            Err(refused())
        }
    }
    fn list(&self, _dir: &Path) -> io::Result<Vec<String>> {
        Ok(self.names.clone())
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn map(&self, path: &Path) -> io::Result<Image> {
        if self.copy {
            Ok(Box::new(std::fs::read(path)?))
        } else {
            OsVfs.map(path)
        }
    }
    fn create(&self, _path: &Path) -> io::Result<Box<dyn VfsFile>> {
        Err(refused())
    }
    fn append(&self, _path: &Path) -> io::Result<Box<dyn VfsFile>> {
        Err(refused())
    }
    fn truncate(&self, _path: &Path, _len: u64) -> io::Result<()> {
        Err(refused())
    }
    fn rename(&self, _from: &Path, _to: &Path) -> io::Result<()> {
        Err(refused())
    }
    fn remove(&self, _path: &Path) -> io::Result<()> {
        Err(refused())
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn lock_dir(&self, _dir: &Path) -> io::Result<Option<Box<dyn Send + Sync>>> {
        // The caller holds the real lock (or reads a live directory on purpose).
        Ok(Some(Box::new(())))
    }
}

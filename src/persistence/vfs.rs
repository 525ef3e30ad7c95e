//! The file layer behind a small trait, so tests can inject write and fsync
//! failures and simulate power loss (`SimVfs`, in `sim_vfs`, compiled for
//! tests only), while production uses the operating system (`OsVfs`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::{AsRawFd, IntoRawFd};
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Once;

/// A file opened for appending.
pub trait VfsFile: Send {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes everything written so far durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
}

/// What the persistence layer needs from a file system. Paths are full paths.
pub trait Vfs: Send + Sync {
    /// Creates `dir` if it is missing; its parent must exist (so a typo in
    /// a path fails instead of growing a new tree).
    fn create_dir(&self, dir: &Path) -> io::Result<()>;
    /// File names (not paths) in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The whole file as bytes, without copying where the platform allows
    /// (recovery reads every segment and snapshot this way).
    fn map(&self, path: &Path) -> io::Result<Image> {
        Ok(Box::new(self.read(path)?))
    }
    /// Creates (or truncates) a file for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// Opens an existing file for appending at its end.
    fn append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `dir`, held until the guard is dropped.
    /// `Ok(None)` means another holder has it.
    fn lock_dir(&self, dir: &Path) -> io::Result<Option<Box<dyn Send + Sync>>>;
}

/// A file's bytes: a `Vec` or a memory mapping.
pub type Image = Box<dyn std::ops::Deref<Target = [u8]> + Send>;

/// The operating system's files.
pub struct OsVfs;

struct Mapping {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value.
unsafe impl Send for Mapping {}

impl std::ops::Deref for Mapping {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len is mapped for as long as self lives.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what mmap returned.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

struct OsFile(File);

impl VfsFile for OsFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// An open-file-description lock (fcntl `F_OFD_SETLK`, Linux) on the LOCK
/// file. It belongs to the open file description made by this `open`, not
/// to the process: it conflicts with every other description of the file,
/// in this process or another, so a second open of the directory from this
/// process is refused like one from another process, and no unrelated
/// open/close of LOCK in this process (a backup thread, a file watcher)
/// releases it. The kernel drops it when the last descriptor of the
/// description is closed, so a process that dies releases it.
///
/// A forked child shares the description. So that the child does not keep
/// the lock alive once the parent closes the handle (or dies), every lock
/// descriptor is registered in `LOCK_FDS`, and a `pthread_atfork` child
/// handler closes them all in the child; the parent's reference keeps the
/// parent's lock. The descriptor is `O_CLOEXEC`, so a spawned program drops
/// it at exec.
struct DirLock {
    fd: libc::c_int,
    slot: usize,
    /// The process that took the lock; in a forked child the atfork handler
    /// has already closed `fd`, and the number may name another file.
    pid: libc::pid_t,
}

/// Lock descriptors of this process (-1 = free slot). Fixed-size atomics,
/// so the atfork child handler can walk them without allocating or locking.
const LOCK_SLOTS: usize = 256;
static LOCK_FDS: [AtomicI32; LOCK_SLOTS] = [const { AtomicI32::new(-1) }; LOCK_SLOTS];
/// Forks between their prepare and parent handlers, and forks completed:
/// `lock_dir` uses them to notice a fork that copied a descriptor before it
/// was registered.
static FORKS_RUNNING: AtomicUsize = AtomicUsize::new(0);
static FORKS_DONE: AtomicUsize = AtomicUsize::new(0);

extern "C" fn before_fork() {
    FORKS_RUNNING.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn after_fork_in_parent() {
    FORKS_DONE.fetch_add(1, Ordering::SeqCst);
    FORKS_RUNNING.fetch_sub(1, Ordering::SeqCst);
}

/// Runs in the child right after fork: async-signal-safe (atomics and
/// close(2) only).
extern "C" fn after_fork_in_child() {
    FORKS_RUNNING.store(0, Ordering::SeqCst);
    for slot in LOCK_FDS.iter() {
        let fd = slot.swap(-1, Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: fd is this child's copy of a lock descriptor; closing
            // it drops the child's reference only (the parent keeps its own).
            unsafe { libc::close(fd) };
        }
    }
}

fn install_fork_handlers() -> io::Result<()> {
    static ONCE: Once = Once::new();
    static FAILED: AtomicI32 = AtomicI32::new(0);
    ONCE.call_once(|| {
        // SAFETY: the handlers are plain extern "C" functions that live for
        // the whole program and only touch atomics (and close(2) in the child).
        let rc = unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork_in_parent), Some(after_fork_in_child)) };
        FAILED.store(rc, Ordering::SeqCst);
    });
    match FAILED.load(Ordering::SeqCst) {
        0 => Ok(()),
        rc => Err(io::Error::from_raw_os_error(rc)),
    }
}

fn ofd_lock(fd: libc::c_int, l_type: libc::c_int) -> io::Result<bool> {
    // SAFETY: a zeroed flock is a valid argument (l_start = l_len = 0 is the
    // whole file, and OFD locks require l_pid = 0); type and whence set below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = l_type as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: fcntl on a descriptor we own with a valid flock struct.
    if unsafe { libc::fcntl(fd, libc::F_OFD_SETLK, &fl) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

impl DirLock {
    /// Opens `path` and registers the descriptor, retrying if a fork may
    /// have copied it before it was registered (such a child would keep the
    /// description, and so the lock taken on it later, alive). Unlocked.
    fn open_registered(path: &Path) -> io::Result<DirLock> {
        install_fork_handlers()?;
        loop {
            let forks = FORKS_DONE.load(Ordering::SeqCst);
            let fd = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(path)?
                .into_raw_fd();
            let Some(slot) = LOCK_FDS.iter().position(|s| s.compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst).is_ok()) else {
                // SAFETY: fd was opened above and is not registered anywhere.
                unsafe { libc::close(fd) };
                return Err(io::Error::other(format!("more than {LOCK_SLOTS} data directories open in this process")));
            };
            // SAFETY: getpid has no preconditions.
            let lock = DirLock { fd, slot, pid: unsafe { libc::getpid() } };
            if FORKS_RUNNING.load(Ordering::SeqCst) == 0 && FORKS_DONE.load(Ordering::SeqCst) == forks {
                return Ok(lock);
            }
            drop(lock);
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // SAFETY: getpid has no preconditions.
        if unsafe { libc::getpid() } != self.pid {
            return;
        }
        // Unlock while still registered, then unregister, then close: a
        // fork at any point leaves the child nothing that holds the lock.
        let _ = ofd_lock(self.fd, libc::F_UNLCK);
        LOCK_FDS[self.slot].store(-1, Ordering::SeqCst);
        // SAFETY: fd is ours (opened in open_registered) and closed once.
        unsafe { libc::close(self.fd) };
    }
}

impl Vfs for OsVfs {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        match std::fs::create_dir(dir) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            other => other,
        }
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for e in std::fs::read_dir(dir)? {
            names.push(e?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn map(&self, path: &Path) -> io::Result<Image> {
        let f = File::open(path)?;
        let len = f.metadata()?.len() as usize;
        if len == 0 {
            return Ok(Box::new(Vec::new()));
        }
        // Not MAP_POPULATE: that maps every page (130K for a 540 MB
        // snapshot) on this thread before the loaders start; faulted in
        // lazily, each loader maps the sections it reads, in parallel
        // (measured: 2M-key snapshot reopen 0.33-0.36 s -> 0.27-0.28 s
        // warm, 0.55-0.82 s -> 0.36-0.39 s from a cold page cache).
        // SAFETY: a private read-only mapping of a file this handle holds
        // the directory lock for; nothing truncates it while mapped
        // (recovery drops every mapping before it repairs files).
        let ptr = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, f.as_raw_fd(), 0)
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Box::new(Mapping { ptr: ptr as *const u8, len }))
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        Ok(Box::new(OsFile(File::create(path)?)))
    }
    fn append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        Ok(Box::new(OsFile(OpenOptions::new().append(true).open(path)?)))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(len)?;
        f.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<Option<Box<dyn Send + Sync>>> {
        let lock = DirLock::open_registered(&dir.join("LOCK"))?;
        if !ofd_lock(lock.fd, libc::F_WRLCK)? {
            return Ok(None);
        }
        record_holder(lock.fd);
        Ok(Some(Box::new(lock)))
    }
}

/// Writes this process's PID into the LOCK file we just locked, so that a
/// refused open (`dbkv check`, a second server) can name the holder.
/// Best effort: the lock is what matters, so a failed write is ignored.
/// Uses the registered descriptor itself (no second description of the
/// file: the lock and the fork-safety bookkeeping stay exactly as they are).
fn record_holder(fd: libc::c_int) {
    // SAFETY: getpid has no preconditions.
    let text = format!("{}\n", unsafe { libc::getpid() });
    // SAFETY: fd is a descriptor we own, open for writing; ftruncate and
    // pwrite do not change the lock or the descriptor's flags.
    unsafe {
        if libc::ftruncate(fd, 0) == 0 {
            let _ = libc::pwrite(fd, text.as_ptr() as *const libc::c_void, text.len(), 0);
        }
    }
}

/// The PID written into `dir`'s LOCK file by the process that holds (or
/// last held) the lock. Only meaningful while the lock is held by someone
/// else: a process that closed or died leaves its stale PID behind.
pub fn lock_holder_pid(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join("LOCK")).ok()?;
    text.trim().parse().ok().filter(|&pid| pid > 0)
}

#[cfg(any(test, feature = "test-util"))]
pub use super::sim_vfs::SimVfs;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_names_its_holder() {
        let dir = std::env::temp_dir().join(format!("dbkv-vfs-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("LOCK"), "stale text that is longer than a pid\n").unwrap();
        let guard = OsVfs.lock_dir(&dir).unwrap().expect("free");
        assert_eq!(lock_holder_pid(&dir), Some(std::process::id()));
        assert!(OsVfs.lock_dir(&dir).unwrap().is_none(), "still exclusive");
        drop(guard);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

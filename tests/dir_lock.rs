//! The data-directory lock (docs/FORMAT.md, "The LOCK file"), against real
//! directories and real processes:
//!
//! * no open/close of the LOCK file elsewhere in the process releases it:
//!   a second open, in this process or another, stays `Busy`;
//! * once the handle closes, the directory opens again;
//! * a forked child does not keep it: not after the parent closes the
//!   handle, and not after the parent dies without closing it;
//!
//! and, at the end, `dbkv_stats` with a caller struct of exactly 16 bytes.
//!
//! Child processes are this binary re-executed to run only `child_role`,
//! selected by `DBKV_DIR_LOCK_ROLE`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ::dbkv::ffi::{dbkv as Db, dbkv_close, dbkv_open, dbkv_set, dbkv_statistics, dbkv_stats};
use ::dbkv::{Engine, Error, Options, SyncMode};

const ENV_ROLE: &str = "DBKV_DIR_LOCK_ROLE";
const ENV_DIR: &str = "DBKV_DIR_LOCK_DIR";
/// Exit codes of the `open` role.
const BUSY: i32 = 10;
const OPENED: i32 = 11;
const OTHER: i32 = 12;

/// The tests here run one at a time: a process spawned by one test holds
/// copies of every descriptor of this process until its exec, which could
/// make another test's reopen see `Busy` for a moment.
fn serial() -> MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|p| p.into_inner())
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!("dbkv-dirlock-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn db(&self) -> PathBuf {
        self.0.join("db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn opts(dir: &Path) -> Options {
    Options {
        data_dir: Some(dir.to_path_buf()),
        sync_mode: SyncMode::Interval,
        snapshot_ops: 0,
        snapshot_interval_secs: 0,
        shards: 4,
        ..Default::default()
    }
}

fn open(dir: &Path) -> Result<Engine, Error> {
    Engine::open(opts(dir))
}

fn assert_busy(r: Result<Engine, Error>, what: &str) {
    match r {
        Err(Error::Busy(_)) => {}
        Err(e) => panic!("{what}: want Busy, got {e}"),
        Ok(e) => {
            e.close().unwrap();
            panic!("{what}: opened a directory that is already open");
        }
    }
}

fn child(role: &str, dir: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("current_exe"));
    c.args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ENV_ROLE, role)
        .env(ENV_DIR, dir)
        .stdin(Stdio::null());
    c
}

/// Another process tries to open `dir`: `BUSY`, `OPENED` or `OTHER`.
fn open_in_other_process(dir: &Path) -> i32 {
    let st = child("open", dir).stdout(Stdio::null()).status().expect("spawn child");
    st.code().unwrap_or_else(|| panic!("child died: {st}"))
}

/// The child side: does nothing unless a parent test set the role.
///
/// * `open`: opens the directory and exits with `BUSY`, `OPENED` or `OTHER`;
/// * `fork-and-die`: opens the directory, forks a child that sleeps for a
///   minute, waits until that child runs, prints `pid <grandchild>` and
///   exits without closing the handle
///   (a crash, as far as the directory is concerned).
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ENV_ROLE) else { return };
    let dir = PathBuf::from(std::env::var_os(ENV_DIR).expect("child dir"));
    match role.as_str() {
        "open" => {
            let code = match open(&dir) {
                Ok(e) => {
                    let _ = e.close();
                    OPENED
                }
                Err(Error::Busy(_)) => BUSY,
                Err(e) => {
                    eprintln!("child open: {e}");
                    OTHER
                }
            };
            std::process::exit(code);
        }
        "fork-and-die" => {
            let e = open(&dir).expect("holder open");
            e.set(b"k", b"v", 0).unwrap();
            e.sync().unwrap();
            // The grandchild says when it runs: its atfork handler (which
            // drops its copy of the lock) has run by then. Without this wait
            // a loaded machine may not have scheduled it yet when the test
            // reopens the directory.
            let mut ready = [0 as libc::c_int; 2];
            // SAFETY: pipe writes two descriptors into a live array.
            assert_eq!(unsafe { libc::pipe(ready.as_mut_ptr()) }, 0, "pipe failed");
            // SAFETY: the grandchild only calls close, write, sleep and
            // _exit (async-signal-safe).
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                // SAFETY: async-signal-safe calls only; closing stdout and
                // stderr lets the test see EOF on the pipe when the holder dies.
                unsafe {
                    libc::close(1);
                    libc::close(2);
                    libc::write(ready[1], b"r".as_ptr().cast(), 1);
                    libc::sleep(60);
                    libc::_exit(0);
                }
            }
            let mut byte = 0u8;
            // SAFETY: reading one byte into a live buffer.
            let n = unsafe { libc::read(ready[0], (&mut byte as *mut u8).cast(), 1) };
            assert_eq!(n, 1, "the grandchild never ran");
            // Straight to the descriptor: the test harness may capture
            // print!, and _exit flushes nothing.
            let line = format!("\npid {pid}\n");
            // SAFETY: writing a live buffer to stdout.
            let n = unsafe { libc::write(1, line.as_ptr().cast(), line.len()) };
            assert_eq!(n, line.len() as isize);
            // SAFETY: _exit ends the process at once: no destructor runs,
            // the handle is never closed.
            unsafe { libc::_exit(0) };
        }
        other => panic!("unknown role {other}"),
    }
}

// ---------------------------------------------------------------- tests

/// A backup thread or a file watcher opening and closing LOCK must not
/// release the lock: with a per-process fcntl lock, any close of the file
/// in the process did, and a second process could then open the directory.
#[test]
fn unrelated_open_and_close_of_lock_keeps_the_directory_locked() {
    let _s = serial();
    let td = TempDir::new("unrelated");
    let dir = td.db();
    let e = open(&dir).unwrap();
    e.set(b"k", b"v", 0).unwrap();
    let lock = dir.join("LOCK");
    assert!(lock.is_file());

    // Every common way of touching the file, each closing it again.
    drop(File::open(&lock).unwrap());
    drop(OpenOptions::new().write(true).open(&lock).unwrap());
    drop(OpenOptions::new().read(true).append(true).open(&lock).unwrap());
    let _ = std::fs::read(&lock).unwrap();
    let mut s = String::new();
    File::open(&lock).unwrap().read_to_string(&mut s).unwrap();
    let _ = std::fs::metadata(&lock).unwrap();
    // From another thread, as a watcher would.
    let l2 = lock.clone();
    std::thread::spawn(move || drop(File::open(l2).unwrap())).join().unwrap();

    // This process: still refused, also under another spelling of the path.
    assert_busy(open(&dir), "second open in the same process");
    assert_busy(open(&dir.join(".")), "second open through dir/.");
    // The refused opens above closed their own descriptors of LOCK: the
    // lock is still held, for other processes too.
    assert_eq!(open_in_other_process(&dir), BUSY, "another process opened the directory while it is open");

    // Closed: it opens again, here and in another process.
    e.close().unwrap();
    assert_eq!(open_in_other_process(&dir), OPENED, "another process could not open the closed directory");
    let e = open(&dir).unwrap();
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_busy(open(&dir), "second open after reopening");
    assert_eq!(open_in_other_process(&dir), BUSY);
    e.close().unwrap();
}

/// A refused open holds nothing, and the directory can be opened and closed
/// many times in a row from one process.
#[test]
fn close_releases_the_directory() {
    let _s = serial();
    let td = TempDir::new("close");
    let dir = td.db();
    for i in 0..20u32 {
        let e = open(&dir).unwrap();
        assert_busy(open(&dir), "open while open");
        e.set(format!("k{i}").as_bytes(), b"v", 0).unwrap();
        e.close().unwrap();
    }
    let e = open(&dir).unwrap();
    assert_eq!(e.get(b"k19").unwrap().as_deref(), Some(&b"v"[..]));
    e.close().unwrap();
    assert_eq!(open_in_other_process(&dir), OPENED);
}

/// A forked child that outlives the handle does not keep the directory
/// locked: the parent reopens it (and so can another process) while the
/// child still lives.
#[test]
fn forked_child_does_not_keep_the_lock_after_close() {
    let _s = serial();
    let td = TempDir::new("fork");
    let dir = td.db();
    let e = open(&dir).unwrap();
    e.set(b"k", b"v", 0).unwrap();
    // SAFETY: the child only calls sleep and _exit (async-signal-safe).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: async-signal-safe calls only.
        unsafe {
            libc::sleep(60);
            libc::_exit(0);
        }
    }
    // While the parent's handle is open, the lock is still held.
    assert_busy(open(&dir), "open while open (after fork)");
    e.close().unwrap();
    let reopened = open(&dir);
    let other = open_in_other_process(&dir);
    let mut status = 0;
    // SAFETY: checking, then killing and reaping the child we forked.
    let alive = unsafe {
        let alive = libc::waitpid(pid, &mut status, libc::WNOHANG) == 0;
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, &mut status, 0);
        alive
    };
    assert!(alive, "the forked child exited early");
    match reopened {
        Ok(e) => {
            assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
            e.close().unwrap();
        }
        Err(err) => panic!("closed the handle, yet reopening fails while a forked child lives: {err}"),
    }
    // The reopened handle was open when the other process tried.
    assert_eq!(other, BUSY);
}

/// A process that forked and then died without closing its handle: the
/// restarted process opens the directory although the forked child still
/// lives.
#[test]
fn forked_child_does_not_keep_the_lock_after_parent_dies() {
    let _s = serial();
    let td = TempDir::new("fork-die");
    let dir = td.db();
    let mut holder = child("fork-and-die", &dir).stdout(Stdio::piped()).spawn().expect("spawn holder");
    let mut grandchild: libc::pid_t = 0;
    for line in BufReader::new(holder.stdout.take().unwrap()).lines() {
        // The harness may print "test child_role ... " on the same line.
        if let Some((_, p)) = line.unwrap().split_once("pid ") {
            grandchild = p.trim().parse().unwrap();
            break;
        }
    }
    let st = holder.wait().unwrap();
    assert!(st.success(), "holder failed: {st}");
    assert!(grandchild > 0, "holder printed no grandchild pid");

    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(grandchild, 0) } == 0;
    let reopened = open(&dir);
    // SAFETY: killing the orphaned grandchild (reaped by init).
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: signal 0 only checks that the process exists.
    while unsafe { libc::kill(grandchild, 0) } == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(alive, "the grandchild exited early");
    match reopened {
        Ok(e) => {
            assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
            e.close().unwrap();
        }
        Err(err) => panic!("the holder died, yet opening fails while its forked child lives: {err}"),
    }
}

// ---------------------------------------------------------------- dbkv_stats

/// `dbkv_stats` with a caller struct of exactly 16 bytes (`size` and
/// `keys`, from an old header), in a heap block of exactly that size, and
/// with 24 bytes followed by a sentinel: only the declared bytes are
/// written, and `size` is left as the caller set it.
#[test]
fn stats_into_a_short_caller_struct() {
    let mut db: *mut Db = std::ptr::null_mut();
    // SAFETY: FFI calls with valid arguments; the 16-byte block is
    // allocated, used and freed with one layout.
    unsafe {
        assert_eq!(dbkv_open(std::ptr::null(), &mut db), 0);
        for k in [&b"a"[..], b"b", b"c"] {
            assert_eq!(dbkv_set(db, k.as_ptr(), k.len(), b"v".as_ptr(), 1, 0), 0);
        }

        let layout = std::alloc::Layout::from_size_align(16, 8).unwrap();
        let p = std::alloc::alloc(layout) as *mut u64;
        assert!(!p.is_null());
        p.write(16);
        p.add(1).write(0xABAB_ABAB_ABAB_ABAB);
        assert_eq!(dbkv_stats(db, p as *mut dbkv_statistics), 0);
        assert_eq!(p.read(), 16);
        assert_eq!(p.add(1).read(), 3);
        // Too small: refused, nothing written.
        p.write(8);
        p.add(1).write(7);
        assert_ne!(dbkv_stats(db, p as *mut dbkv_statistics), 0);
        assert_eq!((p.read(), p.add(1).read()), (8, 7));
        std::alloc::dealloc(p as *mut u8, layout);

        let mut buf = [0xABu8; std::mem::size_of::<dbkv_statistics>() + 16];
        buf[..8].copy_from_slice(&24u64.to_ne_bytes());
        assert_eq!(dbkv_stats(db, buf.as_mut_ptr() as *mut dbkv_statistics), 0);
        assert_eq!(u64::from_ne_bytes(buf[..8].try_into().unwrap()), 24);
        assert_eq!(u64::from_ne_bytes(buf[8..16].try_into().unwrap()), 3);
        assert_eq!(u64::from_ne_bytes(buf[16..24].try_into().unwrap()), 0, "wal_records of an in-memory handle");
        assert!(buf[24..].iter().all(|&b| b == 0xAB), "wrote past the caller's size");

        // Unaligned caller memory (read_unaligned): still fine.
        let mut raw = [0u8; 40];
        raw[1..9].copy_from_slice(&16u64.to_ne_bytes());
        assert_eq!(dbkv_stats(db, raw.as_mut_ptr().add(1) as *mut dbkv_statistics), 0);
        assert_eq!(u64::from_ne_bytes(raw[9..17].try_into().unwrap()), 3);
        assert!(raw[17..].iter().all(|&b| b == 0));

        assert_eq!(dbkv_close(db), 0);
    }
}

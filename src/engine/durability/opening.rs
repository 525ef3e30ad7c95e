//! Opening a data directory: creating it, taking its lock, and recovering
//! its contents into the engine (or, read-only, into memory alone), with
//! messages a person can act on and a log of what recovery found.

#![forbid(unsafe_code)]

use std::io::ErrorKind;
use std::path::Path;

use super::super::restore::{shrink_tables, Restore};
use super::super::log::Log;
use super::super::{Inner, Options};
use crate::error::{Error, Result};
use crate::persistence::recovery::{self, Recovered, RecoveryMode, Run};
use crate::persistence::vfs::Vfs;

/// Creates the data directory (its parent must exist).
pub(super) fn create_dir(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    vfs.create_dir(dir).map_err(|e| dir_error(dir, &e))
}

/// The error for a data directory that cannot be created or listed,
/// saying which part of the path is wrong.
pub(super) fn dir_error(dir: &Path, e: &std::io::Error) -> Error {
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match e.kind() {
        ErrorKind::AlreadyExists | ErrorKind::NotADirectory if dir.exists() && !dir.is_dir() => {
            Error::Io(format!("data directory {} is not a directory (it is a file): choose another path or move the file away", dir.display()))
        }
        ErrorKind::NotFound => Error::Io(format!(
            "cannot create data directory {}: its parent {} does not exist (dbkv creates only the last component; create the parent first)",
            dir.display(),
            parent.display()
        )),
        ErrorKind::NotADirectory => Error::Io(format!("cannot create data directory {}: a component of {} is a file, not a directory", dir.display(), parent.display())),
        ErrorKind::PermissionDenied => Error::Io(format!("cannot create or open data directory {}: permission denied (check the owner and mode of {} and its parent)", dir.display(), dir.display())),
        _ => Error::io(&format!("create data directory {}", dir.display()), e),
    }
}

pub(super) fn lock_dir(vfs: &dyn Vfs, dir: &Path) -> Result<Box<dyn Send + Sync>> {
    vfs.lock_dir(dir).map_err(|e| Error::io(&format!("lock {}", dir.join("LOCK").display()), &e))?.ok_or_else(|| {
        // The holder writes its PID into LOCK (best effort, and only the OS
        // file layer does): name it when it is there.
        let by = match crate::persistence::vfs::lock_holder_pid(dir) {
            Some(pid) if pid == std::process::id() => " by this process".to_string(),
            Some(pid) => format!(" by process {pid}"),
            None => " by this or another process".to_string(),
        };
        Error::Busy(format!(
            "data directory {} is already open (its LOCK is held{by}); close the other handle, or read it with `dbkv check --force-readonly`",
            dir.display()
        ))
    })
}

/// Recovers `dir` into `inner`, reporting progress and logging what was
/// found; `apply`: make the repairs (an open), else modify nothing.
pub(super) fn recover_into(opts: &Options, inner: &Inner, vfs: &dyn Vfs, dir: &Path, apply: bool) -> Result<Recovered> {
    let log = opts.log();
    let mut restore = Restore::new(inner);
    let mut progress = |p| {
        if let Some(f) = &opts.progress {
            f(p)
        }
    };
    let run = Run { mode: opts.recovery_mode, apply, progress: &mut progress };
    let recovered = match recovery::recover(vfs, dir, run, &mut restore) {
        Ok(r) => r,
        Err(e) => {
            log.error(|| format!("{}: recovery failed: {}", dir.display(), e.detail()));
            return Err(e);
        }
    };
    shrink_tables(inner);
    inner.last_token.store(recovered.max_token, std::sync::atomic::Ordering::Relaxed);
    log_recovery(&log, opts.recovery_mode, dir, &recovered, apply);
    Ok(recovered)
}

fn log_recovery(log: &Log, mode: RecoveryMode, dir: &Path, r: &Recovered, applied: bool) {
    for f in &r.findings {
        if f.action.loses_data() {
            log.warn(|| format!("recovery ({}) {}", mode_name(mode), f.describe(applied)));
        } else {
            log.info(|| format!("recovery ({}) {}", mode_name(mode), f.describe(applied)));
        }
    }
    log.info(|| {
        let st = &r.stats;
        let from = if st.snapshot_loaded { format!("a snapshot of {} entries", st.snapshot_entries) } else { "no snapshot".to_string() };
        let damage = if st.corrupt_records > 0 {
            format!("; {} damaged record(s) or file(s), {} bytes {}", st.corrupt_records, st.bytes_dropped, if applied { "dropped" } else { "left out (read-only, files unchanged)" })
        } else {
            String::new()
        };
        format!(
            "recovered {} in {:.1} ms: {from}, {} WAL records replayed{damage}; next LSN {}",
            dir.display(),
            st.duration_us as f64 / 1000.0,
            st.wal_records,
            r.next_lsn
        )
    });
}

pub(super) fn mode_name(m: RecoveryMode) -> &'static str {
    match m {
        RecoveryMode::PointInTime => "POINT_IN_TIME",
        RecoveryMode::Absolute => "ABSOLUTE",
        RecoveryMode::SkipCorrupted => "SKIP_CORRUPTED",
    }
}

/// A read-only open: the directory must exist; it is locked only while
/// recovery reads it, and no file is modified.
pub(in super::super) fn recover_read_only(opts: &Options, inner: &Inner) -> Result<recovery::RecoveryStats> {
    let dir = opts.data_dir.clone().expect("read-only open needs a data dir");
    let vfs: std::sync::Arc<dyn Vfs> = opts.vfs.clone().unwrap_or_else(|| std::sync::Arc::new(crate::persistence::vfs::OsVfs));
    if let Err(e) = vfs.list(&dir) {
        return Err(match e.kind() {
            ErrorKind::NotFound => Error::Io(format!("data directory {} does not exist", dir.display())),
            _ => dir_error(&dir, &e),
        });
    }
    let _lock = lock_dir(&*vfs, &dir)?;
    Ok(recover_into(opts, inner, &*vfs, &dir, false)?.stats)
}

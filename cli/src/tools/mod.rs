//! Operator tools: `dbkv check`, `dump`, `load` and `stats`. Each lives in
//! its own module; this one holds what they share: exit codes, checks of
//! the directory argument, the lock, and a read-only view of the files.

pub mod check;
pub mod dump;
pub mod format;
pub mod frozen;
pub mod load;
pub mod stats;

use std::path::Path;
use std::process::ExitCode;

use dbkv::persistence::vfs::{lock_holder_pid, OsVfs, Vfs};
use dbkv::RecoveryMode;

/// Why a tool stopped: its exit code and a message naming the problem
/// and, where there is one, the fix.
#[derive(Debug)]
pub struct ToolError {
    pub code: u8,
    pub msg: String,
}

/// Damage found, or input refused: exit 1.
pub const EXIT_FINDING: u8 = 1;
/// The tool could not run (missing directory, BUSY, I/O): exit 2.
pub const EXIT_CANNOT_RUN: u8 = 2;

impl ToolError {
    pub fn cannot_run(msg: impl Into<String>) -> ToolError {
        ToolError { code: EXIT_CANNOT_RUN, msg: msg.into() }
    }
}

pub type ToolResult<T = ()> = Result<T, ToolError>;

/// Prints the error (if any) and turns the outcome into the exit code.
pub fn exit(r: ToolResult<u8>) -> ExitCode {
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", e.msg);
            ExitCode::from(e.code)
        }
    }
}

/// The data directory must exist and be a directory.
pub fn existing_dir(dir: &Path) -> ToolResult {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(ToolError::cannot_run(format!("{} is not a directory (pass a dbkv data directory)", dir.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ToolError::cannot_run(format!("{} does not exist (pass a dbkv data directory)", dir.display()))),
        Err(e) => Err(ToolError::cannot_run(format!("cannot read {}: {e}", dir.display()))),
    }
}

/// The lock of a data directory while a tool holds it.
pub type DirLock = Box<dyn Send + Sync>;

/// Takes the directory's lock; `Ok(None)` when another process holds it.
pub fn try_lock(dir: &Path) -> ToolResult<Option<DirLock>> {
    OsVfs.lock_dir(dir).map_err(|e| ToolError::cannot_run(format!("cannot lock {}: {e}", dir.join("LOCK").display())))
}

/// "in use by process 1234" (or without the PID when the LOCK file does
/// not name one, e.g. a holder from an older build).
pub fn holder(dir: &Path) -> String {
    match lock_holder_pid(dir) {
        Some(pid) => format!("in use by process {pid}"),
        None => "in use by another process".to_string(),
    }
}

/// The BUSY message of tools that need the directory to themselves.
pub fn busy(dir: &Path, what: &str) -> ToolError {
    ToolError::cannot_run(format!("BUSY: {} is {} (its LOCK is held); {what}", dir.display(), holder(dir)))
}

/// `--mode`: the recovery modes by their command-line names.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    /// Cut the WAL at the first damage that loses a record (the default of an open).
    PointInTime,
    /// Refuse to open on any damage that loses a record.
    Absolute,
    /// Skip damaged records and keep every record that can be read.
    SkipCorrupted,
}

impl ModeArg {
    pub const ALL: [ModeArg; 3] = [ModeArg::PointInTime, ModeArg::Absolute, ModeArg::SkipCorrupted];

    pub fn mode(self) -> RecoveryMode {
        match self {
            ModeArg::PointInTime => RecoveryMode::PointInTime,
            ModeArg::Absolute => RecoveryMode::Absolute,
            ModeArg::SkipCorrupted => RecoveryMode::SkipCorrupted,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ModeArg::PointInTime => "point-in-time",
            ModeArg::Absolute => "absolute",
            ModeArg::SkipCorrupted => "skip-corrupted",
        }
    }
}

/// A unix-ms time as UTC `YYYY-MM-DDTHH:MM:SSZ` (no time-zone database needed).
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Sizes of the listed files (for progress totals); missing ones count 0.
pub fn total_bytes(dir: &Path, names: &[String]) -> u64 {
    names.iter().filter_map(|n| std::fs::metadata(dir.join(n)).ok()).map(|m| m.len()).sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}

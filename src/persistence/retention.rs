//! Retention: which old snapshots and WAL segments a data directory no
//! longer needs, and removing them durably.
//!
//! The newest `keep` snapshots stay. WAL segments stay from the one that
//! holds the record after the second-newest snapshot's cut on, so that if
//! the newest snapshot turns out damaged, recovery can still start from
//! the previous one and replay the WAL after it.

#![forbid(unsafe_code)]

use std::path::Path;

use super::vfs::Vfs;
use crate::error::{Error, Result};

/// What to remove.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Cut LSNs of the snapshots to remove, oldest first.
    pub snapshots: Vec<u64>,
    /// How many of the oldest segments to remove.
    pub segments: usize,
}

/// The plan for `snapshots` (cut LSNs) and `segments` (first LSNs), both
/// sorted ascending, keeping `keep` (>= 1) snapshots.
pub fn plan(snapshots: &[u64], segments: &[u64], keep: usize) -> Plan {
    let keep = keep.max(1);
    let remove = snapshots.len().saturating_sub(keep);
    let kept = &snapshots[remove..];
    let floor = match kept.len() {
        0 => return Plan { snapshots: Vec::new(), segments: 0 },
        1 => kept[0],
        n => kept[n - 2],
    };
    // Segment i is needed while the next one starts after the record the
    // floor snapshot resumes at (floor + 1), i.e. while it may hold it.
    let segments = (0..segments.len().saturating_sub(1)).take_while(|&i| segments[i + 1] - 1 <= floor).count();
    Plan { snapshots: snapshots[..remove].to_vec(), segments }
}

/// Removes `names` from `dir` (a name already gone is not an error), then
/// fsyncs the directory if anything was removed, so the removals survive a
/// crash together. Returns whether anything was removed.
pub fn remove_files(vfs: &dyn Vfs, dir: &Path, names: &[String]) -> Result<bool> {
    let mut removed = false;
    for name in names {
        match vfs.remove(&dir.join(name)) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&format!("remove {name}"), &e)),
        }
    }
    if removed {
        vfs.sync_dir(dir).map_err(|e| Error::io(&format!("fsync directory {}", dir.display()), &e))?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::sim_vfs::SimVfs;

    #[test]
    fn keeps_the_newest_snapshots_and_the_wal_the_previous_one_needs() {
        // Snapshots cut at 10, 20, 30; segments start at LSN 1, 15, 25, 35.
        assert_eq!(plan(&[10, 20, 30], &[1, 15, 25, 35], 2), Plan { snapshots: vec![10], segments: 1 });
        // The previous kept snapshot (20) resumes at 21, inside the segment
        // starting at 15: it and everything after stay.
        assert_eq!(plan(&[10, 20, 30], &[1, 15, 25, 35], 3), Plan { snapshots: vec![], segments: 1 });
        assert_eq!(plan(&[10, 20, 30], &[1, 15, 25, 35], 1), Plan { snapshots: vec![10, 20], segments: 2 });
        // A segment boundary right after the floor: the record floor + 1
        // is the first of the next segment, so the older one goes.
        assert_eq!(plan(&[24], &[1, 25], 1), Plan { snapshots: vec![], segments: 1 });
        assert_eq!(plan(&[23], &[1, 25], 1), Plan { snapshots: vec![], segments: 0 });
        // The open segment always stays, and no snapshot means nothing goes.
        assert_eq!(plan(&[100], &[1], 1), Plan { snapshots: vec![], segments: 0 });
        assert_eq!(plan(&[], &[1, 5, 9], 2), Plan { snapshots: vec![], segments: 0 });
    }

    #[test]
    fn removals_are_durable_and_a_missing_file_is_fine() {
        let vfs = SimVfs::new();
        let dir = Path::new("/db");
        vfs.create_dir(dir).unwrap();
        vfs.sync_dir(Path::new("/")).unwrap();
        for name in ["a", "b"] {
            let mut f = vfs.create(&dir.join(name)).unwrap();
            f.sync().unwrap();
        }
        vfs.sync_dir(dir).unwrap();
        assert!(remove_files(&vfs, dir, &["a".into(), "gone".into()]).unwrap());
        assert!(!remove_files(&vfs, dir, &["gone".into()]).unwrap());
        vfs.crash();
        assert_eq!(vfs.list(dir).unwrap(), vec!["b".to_string()]);
    }
}

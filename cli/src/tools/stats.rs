//! `dbkv stats`: what a data directory holds. File-level facts (segments
//! and snapshots with sizes and LSN ranges, the last snapshot's time)
//! come from reading the files and are printed even while a process holds
//! the directory; key counts and memory need a read-only recovery, which
//! only a free directory allows.

use std::path::PathBuf;

use dbkv::persistence::inspect::{self, FileKind, Inspection};
use serde_json::{json, Value};

use super::dump::open_read_only;
use super::frozen::FrozenVfs;
use super::{existing_dir, try_lock, ModeArg, ToolError, ToolResult};
use crate::progress::{human_bytes, Progress, Unit};

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// The data directory.
    pub dir: PathBuf,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What recovery into memory found (only for a directory not in use).
struct Contents {
    keys: u64,
    expiring: u64,
    memory: u64,
    last_token: u64,
    wal_records: u64,
}

pub fn run(a: &StatsArgs) -> ToolResult<u8> {
    existing_dir(&a.dir)?;
    // Whether someone holds it; released at once so the read-only open
    // below can take it.
    let in_use = try_lock(&a.dir)?.is_none();
    let holder = in_use.then(|| dbkv::persistence::vfs::lock_holder_pid(&a.dir));
    let view = FrozenVfs::new(&a.dir, in_use).map_err(|e| ToolError::cannot_run(format!("cannot list {}: {e}", a.dir.display())))?;
    let progress = Progress::new("reading files", Unit::Bytes, super::total_bytes(&a.dir, view.names()), a.quiet);
    let ins = inspect::inspect(&view, &a.dir, view.names(), &mut |b| progress.inc(b));
    progress.finish();
    let contents = if in_use {
        None
    } else {
        let progress = Progress::new("recovery", Unit::Bytes, 0, a.quiet);
        let engine = open_read_only(&a.dir, ModeArg::PointInTime, &progress)?;
        let st = engine.stats();
        let c = Contents { keys: st.keys, expiring: engine.count_expiring(), memory: engine.memory_estimate(), last_token: engine.last_token(), wal_records: st.recovery_wal_records };
        let _ = engine.close();
        Some(c)
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&as_json(a, &ins, holder, contents.as_ref())).unwrap_or_default());
    } else {
        print_text(a, &ins, holder, contents.as_ref());
    }
    Ok(0)
}

fn newest_snapshot_ms(ins: &Inspection) -> Option<(String, u64)> {
    ins.snapshots().filter_map(|(f, s)| s.as_ref().ok().map(|s| (f.name.clone(), s.created_ms))).last()
}

fn as_json(a: &StatsArgs, ins: &Inspection, holder: Option<Option<u32>>, c: Option<&Contents>) -> Value {
    let files: Vec<Value> = ins
        .files
        .iter()
        .map(|f| {
            let mut v = json!({ "name": f.name, "bytes": f.bytes });
            let extra = match &f.kind {
                FileKind::Segment(s) => json!({ "kind": "segment", "records": s.records, "first_lsn": s.lsn_range.map(|r| r.0), "last_lsn": s.lsn_range.map(|r| r.1), "damage_offset": s.damage.first().map(|d| d.offset) }),
                FileKind::Snapshot(Ok(s)) => json!({ "kind": "snapshot", "cut_lsn": s.cut_lsn, "entries": s.entries, "created_ms": s.created_ms, "verified": true }),
                FileKind::Snapshot(Err(d)) => json!({ "kind": "snapshot", "verified": false, "damage_offset": d.offset, "damage": d.reason }),
                FileKind::TempSnapshot => json!({ "kind": "unfinished_snapshot" }),
            };
            if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
                m.extend(e);
            }
            v
        })
        .collect();
    json!({
        "dir": a.dir.display().to_string(),
        "in_use": holder.is_some(),
        "holder_pid": holder.flatten(),
        "keys": c.map(|c| c.keys),
        "keys_with_ttl": c.map(|c| c.expiring),
        "memory_estimate_bytes": c.map(|c| c.memory),
        "last_fencing_token": c.map(|c| c.last_token),
        "wal_records_after_snapshot": c.map(|c| c.wal_records),
        "wal_bytes": ins.segments().map(|(f, _)| f.bytes).sum::<u64>(),
        "snapshot_bytes": ins.snapshots().map(|(f, _)| f.bytes).sum::<u64>(),
        "last_snapshot_ms": newest_snapshot_ms(ins).map(|s| s.1),
        "files": files,
    })
}

fn print_text(a: &StatsArgs, ins: &Inspection, holder: Option<Option<u32>>, c: Option<&Contents>) {
    println!("{}", a.dir.display());
    match holder {
        Some(pid) => println!("  in use: BUSY, {} (keys and memory need the directory: ask that process, e.g. INFO)", pid.map_or("by another process".to_string(), |p| format!("by process {p}"))),
        None => println!("  in use: no"),
    }
    if let Some(c) = c {
        println!("  keys: {} ({} with a TTL)", c.keys, c.expiring);
        println!("  memory estimate: {}", human_bytes(c.memory));
        println!("  last fencing token: {}", c.last_token);
        println!("  WAL records after the snapshot: {}", c.wal_records);
    }
    match newest_snapshot_ms(ins) {
        Some((name, ms)) => println!("  last snapshot: {name}, taken {}", super::utc(ms)),
        None => println!("  last snapshot: none"),
    }
    let (wal, snaps): (u64, u64) = (ins.segments().map(|(f, _)| f.bytes).sum(), ins.snapshots().map(|(f, _)| f.bytes).sum());
    println!("  WAL: {} segments, {}; snapshots: {}, {}", ins.segments().count(), human_bytes(wal), ins.snapshots().count(), human_bytes(snaps));
    for f in &ins.files {
        let what = match &f.kind {
            FileKind::Segment(s) => {
                let lsns = s.lsn_range.map_or("no records".into(), |(x, y)| format!("LSN {x} to {y} ({} records)", s.records));
                let dmg = s.damage.first().map_or(String::new(), |d| format!(", damage at offset {} (run dbkv check)", d.offset));
                format!("{lsns}{dmg}")
            }
            FileKind::Snapshot(Ok(s)) => format!("after LSN {}, {} entries, taken {}", s.cut_lsn, s.entries, super::utc(s.created_ms)),
            FileKind::Snapshot(Err(d)) => format!("does not verify: {} at offset {} (run dbkv check)", d.reason, d.offset),
            FileKind::TempSnapshot => "unfinished snapshot".into(),
        };
        println!("    {}  {}  {what}", f.name, human_bytes(f.bytes));
    }
}

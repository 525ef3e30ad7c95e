//! `dbkv check`: verifies every segment and snapshot of a data directory
//! and says what recovery in each mode would do, modifying nothing; with
//! `--repair`, opens the directory in one mode (which applies that plan
//! and takes a snapshot) and reports what changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dbkv::engine::{LogLevel, Options};
use dbkv::persistence::inspect::{self, FileKind, Inspection};
use dbkv::persistence::recovery::{self, Action, Plan};
use dbkv::{Engine, Error};

use super::frozen::FrozenVfs;
use super::{busy, existing_dir, try_lock, ModeArg, ToolError, ToolResult, EXIT_FINDING};
use crate::progress::{Progress, Unit};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The data directory.
    pub dir: PathBuf,
    /// Report (or with --repair, apply) only this recovery mode; without it, what each of the three would do.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Do what an open in --mode (default point-in-time) would do: cut or set aside damage (keeping `.dropped` copies) and take a snapshot.
    #[arg(long)]
    pub repair: bool,
    /// Read a directory a running process holds, from a private copy of its file list (a file still being written may look torn at its end).
    #[arg(long)]
    pub force_readonly: bool,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Exit status: 0 clean, 1 damage found (or, with --repair, a repair that
/// failed), 2 could not run.
pub fn run(a: &CheckArgs) -> ToolResult<u8> {
    existing_dir(&a.dir)?;
    if a.repair && a.force_readonly {
        return Err(ToolError::cannot_run("--repair modifies the directory, so it cannot run with --force-readonly: stop the process holding the directory, then run --repair"));
    }
    let lock = if a.force_readonly {
        None
    } else {
        Some(try_lock(&a.dir)?.ok_or_else(|| busy(&a.dir, "stop it before checking, or pass --force-readonly to read it as it is"))?)
    };
    let view = FrozenVfs::new(&a.dir, a.force_readonly).map_err(|e| ToolError::cannot_run(format!("cannot list {}: {e}", a.dir.display())))?;
    let ins = inspect_with_progress(&a.dir, &view, a.quiet);
    let modes: Vec<ModeArg> = match (a.mode, a.repair) {
        (Some(m), _) => vec![m],
        (None, true) => vec![ModeArg::PointInTime],
        (None, false) => ModeArg::ALL.to_vec(),
    };
    let plans: Vec<(ModeArg, Result<Plan, Error>)> = modes.iter().map(|&m| (m, recovery::plan(&view, &a.dir, m.mode()))).collect();
    if let Some((_, Err(e))) = plans.iter().find(|(_, p)| matches!(p, Err(e) if !matches!(e, Error::Corruption(_)))) {
        let hint = if a.force_readonly { " (the running process changed the directory while it was read: run the check again)" } else { "" };
        return Err(ToolError::cannot_run(format!("could not read {}: {e}{hint}", a.dir.display())));
    }
    print_files(&a.dir, &ins, a.force_readonly);
    let damaged = print_plans(&ins, &plans);
    if !a.repair {
        print_verdict(&a.dir, damaged);
        return Ok(if damaged { EXIT_FINDING } else { 0 });
    }
    drop(lock);
    repair(a, modes[0], damaged)
}

fn inspect_with_progress(dir: &Path, view: &FrozenVfs, quiet: bool) -> Inspection {
    let names = inspect::dbkv_files(view.names());
    let progress = Progress::new("checking files", Unit::Bytes, super::total_bytes(dir, &names), quiet);
    let mut done = 0;
    let ins = inspect::inspect(view, dir, view.names(), &mut |b| {
        done += b;
        progress.inc(b);
    });
    progress.finish();
    ins
}

fn print_files(dir: &Path, ins: &Inspection, live: bool) {
    println!("{}{}", dir.display(), if live { " (read while in use: --force-readonly)" } else { "" });
    if ins.files.is_empty() {
        println!("  no dbkv files (an empty or new data directory)");
    }
    let newest_segment = ins.segments().last().map(|(f, _)| f.name.clone());
    for f in &ins.files {
        let what = match &f.kind {
            FileKind::Segment(s) if s.headerless => "no header (a crash right after creating it; the next open removes it)".to_string(),
            FileKind::Segment(s) if s.foreign_version.is_some() => format!("format version {} (this build cannot read it)", s.foreign_version.unwrap_or(0)),
            FileKind::Segment(s) => {
                let lsns = s.lsn_range.map_or("no records".to_string(), |(a, b)| format!("{} records, LSN {a} to {b}", s.records));
                let damage = s.damage.first().map_or("ok".to_string(), |d| {
                    let live_tail = live && Some(&f.name) == newest_segment.as_ref() && s.damage.len() == 1 && d.reason.contains("torn");
                    let after = if s.records_after_damage > 0 { format!("; {} more records readable after it", s.records_after_damage) } else { String::new() };
                    format!("DAMAGE at offset {}: {}{after}{}", d.offset, d.reason, if live_tail { " (may be a write in progress)" } else { "" })
                });
                format!("{lsns}: {damage}")
            }
            FileKind::Snapshot(Ok(s)) => format!("snapshot after LSN {}, {} entries, taken {}: ok", s.cut_lsn, s.entries, super::utc(s.created_ms)),
            FileKind::Snapshot(Err(d)) => format!("DAMAGE at offset {}: {}", d.offset, d.reason),
            FileKind::TempSnapshot => "an unfinished snapshot (the next open removes it)".to_string(),
        };
        println!("  {}  {} bytes  {what}", f.name, f.bytes);
    }
    for g in &ins.gaps {
        println!("  MISSING: LSNs {} to {} (no segment holds them; expected after {})", g.from, g.to, g.before);
    }
    for u in &ins.unreadable {
        println!("  {}: could not be read: {}", u.name, u.error);
    }
}

/// Prints each mode's plan; true when some mode would lose records or
/// refuse to open (damage that matters).
fn print_plans(ins: &Inspection, plans: &[(ModeArg, Result<Plan, Error>)]) -> bool {
    let mut damaged = false;
    for (mode, plan) in plans {
        let plan = match plan {
            Ok(p) => p,
            Err(e) => {
                damaged = true;
                println!("{}: refuses to open: {}", mode.name(), e.to_string().trim_start_matches("corruption: "));
                continue;
            }
        };
        let acts: Vec<String> = plan.findings.iter().filter(|f| f.action != Action::Ignore).map(|f| describe(ins, f)).collect();
        damaged |= plan.findings.iter().any(|f| !matches!(f.action, Action::Ignore | Action::Remove)) || plan.stats.corrupt_records > 0;
        let st = &plan.stats;
        let from = if st.snapshot_loaded { format!("the snapshot ({} entries) and ", st.snapshot_entries) } else { String::new() };
        let summary = format!("opens with {from}{} WAL records", st.wal_records);
        if acts.is_empty() {
            println!("{}: {summary}; changes nothing", mode.name());
        } else {
            println!("{}: {summary}, after it would:", mode.name());
            for a in acts {
                println!("    {a}");
            }
        }
    }
    let harmless = ins.files.iter().any(|f| f.first_damage().is_some()) && !damaged;
    if harmless {
        println!("the damage above loses nothing: every mode recovers those records from a snapshot");
    }
    damaged
}

fn describe(ins: &Inspection, f: &dbkv::persistence::recovery::Finding) -> String {
    let name = f.file.file_name().map_or_else(|| "the WAL".to_string(), |n| n.to_string_lossy().into_owned());
    let reason = if f.reason.is_empty() { ins.files.iter().find(|r| r.name == name).and_then(|r| r.first_damage()).map(|d| d.reason.clone()).unwrap_or_default() } else { f.reason.clone() };
    // The library's reasons may start with where they are; that is said already.
    let reason = reason.strip_prefix(&format!("{name} at offset {}: ", f.offset)).unwrap_or(&reason);
    let why = if reason.is_empty() { String::new() } else { format!(" ({reason})") };
    match f.action {
        Action::Cut { bytes } => format!("cut {name} at offset {}: drop {bytes} bytes, keeping a copy as {name}.dropped{why}", f.offset),
        Action::SetAside { bytes } => format!("set aside {name} ({bytes} bytes) as {name}.dropped{why}"),
        Action::Skip { bytes } => format!("skip {bytes} damaged bytes of {name}{} (files unchanged){why}", if f.offset > 0 { format!(" at offset {}", f.offset) } else { String::new() }),
        Action::Remove => format!("remove {name}{why}"),
        Action::Ignore => format!("pass over damage in {name}{why}"),
    }
}

fn print_verdict(dir: &Path, damaged: bool) {
    if damaged {
        println!("result: DAMAGE FOUND. To repair as an open would: dbkv check {} --repair [--mode point-in-time|skip-corrupted]", dir.display());
    } else {
        println!("result: clean");
    }
}

/// Sizes of every file in the directory, to tell what a repair changed.
fn listing(dir: &Path) -> BTreeMap<String, u64> {
    let names = std::fs::read_dir(dir).map(|r| r.filter_map(|e| e.ok()).collect::<Vec<_>>()).unwrap_or_default();
    // LOCK changes with every open (it names the holder): not a repair.
    names.into_iter().filter(|e| e.file_name() != "LOCK").filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), e.metadata().ok()?.len()))).collect()
}

fn repair(a: &CheckArgs, mode: ModeArg, damaged: bool) -> ToolResult<u8> {
    if !damaged {
        println!("repair ({}): nothing to repair", mode.name());
        return Ok(0);
    }
    let before = listing(&a.dir);
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = events.clone();
    let progress = Progress::new("repairing", Unit::Bytes, 0, a.quiet);
    let opts = Options {
        data_dir: Some(a.dir.clone()),
        recovery_mode: mode.mode(),
        logger: Some(Arc::new(move |level, msg: &str| sink.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{level}: {msg}")))),
        log_level: LogLevel::Warn,
        progress: Some(progress.recovery_hook()),
        ..Options::default()
    };
    let opened = Engine::open(opts).and_then(|e| e.close());
    progress.finish();
    match opened {
        Err(Error::Busy(_)) => return Err(busy(&a.dir, "it was taken after the check; stop that process and run --repair again")),
        Err(e) => {
            println!("repair ({}): failed: {e}", mode.name());
            return Ok(EXIT_FINDING);
        }
        Ok(()) => {}
    }
    println!("repair ({}): done; the directory now opens in every mode without meeting this damage. Changes:", mode.name());
    for e in events.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        println!("    {e}");
    }
    let after = listing(&a.dir);
    for (name, size) in &after {
        match before.get(name) {
            None => println!("    new file {name} ({size} bytes)"),
            Some(old) if old != size => println!("    {name}: {old} -> {size} bytes"),
            _ => {}
        }
    }
    for name in before.keys().filter(|n| !after.contains_key(*n)) {
        println!("    {name}: gone (renamed or removed)");
    }
    Ok(0)
}

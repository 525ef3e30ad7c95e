//! `dbkv check` against real data directories: clean, torn tail, bit
//! flip, damaged snapshot, missing segment, live (BUSY); exit codes 0, 1
//! and 2; `--repair`, after which the directory checks clean.

mod common;
mod tools_common;

use common::{Server, TempDir};
use tools_common::*;

fn check(dir: &std::path::Path, extra: &[&str]) -> Run {
    let mut args = vec!["check", p(dir), "--quiet"];
    args.extend_from_slice(extra);
    dbkv(&args)
}

/// Records in one segment, then a snapshot, then more records.
fn dir_with_snapshot(td: &TempDir) -> std::path::PathBuf {
    let dir = td.path.join("db");
    with_engine(&dir, 64 << 20, |e| {
        fill(e, 0, 50);
        e.snapshot().unwrap();
        fill(e, 50, 50);
    });
    dir
}

#[test]
fn clean_directory_exits_0_and_lists_every_file() {
    let td = TempDir::new();
    let dir = dir_with_snapshot(&td);
    let r = check(&dir, &[]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(r.stdout.contains("snap-00000000000000000050.snap"), "{}", r.both());
    assert!(r.stdout.contains("records, LSN 1 to 100: ok"), "{}", r.both());
    for mode in ["point-in-time", "absolute", "skip-corrupted"] {
        assert!(r.stdout.contains(&format!("{mode}: opens with")), "{}", r.both());
    }
    assert!(r.stdout.contains("result: clean"));
}

#[test]
fn torn_tail_is_damage_and_repair_cuts_it() {
    let td = TempDir::new();
    let dir = dir_with_snapshot(&td);
    let seg = full_segments(&dir).pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    truncate_by(&seg, 5);
    let r = check(&dir, &[]);
    assert_eq!(r.code, 1, "{}", r.both());
    let name = seg.file_name().unwrap().to_str().unwrap();
    assert!(r.stdout.contains(name) && r.stdout.contains("DAMAGE at offset") && r.stdout.contains("torn"), "{}", r.both());
    assert!(r.stdout.contains(&format!("cut {name} at offset")), "{}", r.both());
    assert!(r.stdout.contains("absolute: refuses to open"), "{}", r.both());
    assert!(r.stdout.contains("--repair"), "the verdict says how to repair: {}", r.both());
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len - 5, "check modifies nothing");

    let fixed = check(&dir, &["--repair"]);
    assert_eq!(fixed.code, 0, "{}", fixed.both());
    assert!(fixed.stdout.contains(&format!("new file {name}.dropped")), "{}", fixed.both());
    let again = check(&dir, &[]);
    assert_eq!(again.code, 0, "after --repair the directory is clean: {}", again.both());
}

#[test]
fn bit_flip_in_a_segment_names_file_and_offset() {
    let td = TempDir::new();
    let dir = td.path.join("db");
    with_engine(&dir, 64 << 20, |e| fill(e, 0, 20));
    let seg = full_segments(&dir).pop().unwrap();
    flip(&seg, 32 + 20);
    let r = check(&dir, &["--mode", "point-in-time"]);
    assert_eq!(r.code, 1, "{}", r.both());
    assert!(r.stdout.contains("DAMAGE at offset 32: record checksum mismatch"), "{}", r.both());
    assert!(!r.stdout.contains("absolute:"), "only the mode asked for: {}", r.both());
    let skip = check(&dir, &["--mode", "skip-corrupted"]);
    assert!(skip.stdout.contains("skip-corrupted: opens with") && skip.stdout.contains("skip"), "{}", skip.both());
    assert_eq!(check(&dir, &["--repair", "--mode", "point-in-time"]).code, 0);
    assert_eq!(check(&dir, &[]).code, 0);
}

#[test]
fn damaged_snapshot_is_set_aside_by_repair() {
    let td = TempDir::new();
    let dir = dir_with_snapshot(&td);
    let snap = dir.join("snap-00000000000000000050.snap");
    flip(&snap, 60);
    let r = check(&dir, &[]);
    assert_eq!(r.code, 1, "{}", r.both());
    assert!(r.stdout.contains("snap-00000000000000000050.snap") && r.stdout.contains("at offset 48: snapshot section CRC-32C mismatch"), "{}", r.both());
    assert!(r.stdout.contains("set aside snap-00000000000000000050.snap"), "{}", r.both());
    let fixed = check(&dir, &["--repair"]);
    assert_eq!(fixed.code, 0, "{}", fixed.both());
    assert!(dir.join("snap-00000000000000000050.snap.dropped").exists());
    assert_eq!(check(&dir, &[]).code, 0, "{}", check(&dir, &[]).both());
}

#[test]
fn missing_segment_is_reported_as_missing_lsns() {
    let td = TempDir::new();
    let dir = td.path.join("db");
    with_engine(&dir, 4096, |e| fill(e, 0, 200));
    let segs = full_segments(&dir);
    assert!(segs.len() >= 4, "{segs:?}");
    std::fs::remove_file(&segs[1]).unwrap();
    let r = check(&dir, &[]);
    assert_eq!(r.code, 1, "{}", r.both());
    assert!(r.stdout.contains("MISSING: LSNs"), "{}", r.both());
    assert!(r.stdout.contains("absolute: refuses to open") && r.stdout.contains("missing"), "{}", r.both());
    assert!(r.stdout.contains(&format!("set aside {}", segs[2].file_name().unwrap().to_str().unwrap())), "{}", r.both());
    assert_eq!(check(&dir, &["--repair"]).code, 0);
    assert_eq!(check(&dir, &[]).code, 0);
}

#[test]
fn cannot_run_exits_2() {
    let td = TempDir::new();
    let missing = check(&td.path.join("nope"), &[]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("does not exist"), "{}", missing.both());
    let file = td.path.join("file");
    std::fs::write(&file, "x").unwrap();
    let not_dir = check(&file, &[]);
    assert_eq!(not_dir.code, 2);
    assert!(not_dir.stderr.contains("is not a directory"), "{}", not_dir.both());
    let both = check(&td.path, &["--repair", "--force-readonly"]);
    assert_eq!(both.code, 2);
    assert!(both.stderr.contains("--repair") && both.stderr.contains("--force-readonly"), "{}", both.both());
}

#[test]
fn live_directory_is_busy_unless_force_readonly() {
    dbkv_only!("reads the data directory of a dbkv server");
    let s = Server::start(&[]);
    let mut c = s.client();
    for i in 0..20 {
        common::ok(&c.cmd(&["SET", &format!("k{i}"), "v"]));
    }
    let r = check(&s.data_dir, &[]);
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(r.stderr.contains("BUSY") && r.stderr.contains(&format!("process {}", s.pid())), "names the holder: {}", r.both());
    assert!(r.stderr.contains("--force-readonly"), "{}", r.both());
    let ro = check(&s.data_dir, &["--force-readonly"]);
    assert!(ro.code == 0 || ro.code == 1, "{}", ro.both());
    assert!(ro.stdout.contains("read while in use"), "{}", ro.both());
    assert!(ro.stdout.contains("wal-00000000000000000001.log"), "{}", ro.both());
    common::ok(&c.cmd(&["SET", "after", "check"]));
}

/// Damage in records a newer snapshot holds loses nothing: shown, but
/// the directory is clean (every mode opens without loss).
#[test]
fn damage_below_the_snapshot_is_reported_as_harmless() {
    let td = TempDir::new();
    let dir = td.path.join("db");
    with_engine(&dir, 4096, |e| {
        fill(e, 0, 50);
        e.snapshot().unwrap();
        fill(e, 50, 100);
        e.snapshot().unwrap();
        fill(e, 150, 10);
    });
    // The oldest kept segment holds records between the two snapshots.
    let seg = full_segments(&dir).remove(0);
    flip(&seg, 32 + 20);
    let r = check(&dir, &[]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(r.stdout.contains("DAMAGE at offset 32") && r.stdout.contains("loses nothing"), "{}", r.both());
}

#[test]
fn every_tool_has_help() {
    for (tool, flag) in [("check", "--force-readonly"), ("dump", "--prefix"), ("load", "--replace"), ("stats", "--json")] {
        let r = dbkv(&[tool, "--help"]);
        assert_eq!(r.code, 0, "{}", r.both());
        assert!(r.stdout.contains(flag) && r.stdout.contains("Usage: dbkv"), "{tool}: {}", r.both());
    }
}

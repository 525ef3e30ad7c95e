//! Crash tests: the engine's durability promises checked against real
//! process kills, torn and bit-flipped files, injected I/O faults and
//! simulated power loss.
//!
//! * `kill9_*`: a child process (this binary re-executed to run only
//!   `child_writer`) writes in `SyncMode::Always` and reports every
//!   acknowledged op; the parent SIGKILLs it at random moments, many times
//!   on one directory, and after each kill reopens and checks the exact
//!   state, counters and fencing tokens.
//! * `torn_tail_*`: the newest WAL segment cut at every byte of its last
//!   records.
//! * `bitflip_*`: a damaged WAL record or snapshot under each recovery mode.
//! * `fault_*`: the Nth write or fsync fails (`SimVfs`).
//! * `power_loss_*`: `SimVfs::crash()` after known sync points, right after
//!   snapshots and segment rotations, after a snapshot taken during writes,
//!   under concurrent Always-mode writers, and at every single I/O operation.
//! * `dir_lock_is_not_inherited_by_forked_child`: the LOCK and fork(2).
//!
//! CI runs the short versions (about 15 s); `DBKV_SOAK=1` runs longer ones
//! (about 2 min; `DBKV_SOAK_KILLS=n` sets the number of kills).
//! `DBKV_CRASH_SEED=n` changes the seeds (each test prints its own).

mod crash_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crash_support::child::{self, ChildCfg, KillAt, KillModel};
use crash_support::*;
use dbkv::engine::{LockOutcome, Options};
use dbkv::persistence::vfs::SimVfs;
use dbkv::persistence::wal::{parse_segment_name, SEGMENT_HEADER_LEN};
use dbkv::{Engine, Error, RecoveryMode, SyncMode};

// =====================================================================
// 1. kill -9
// =====================================================================

/// The child side of the kill tests: does nothing unless the parent set
/// the data-dir variable.
#[test]
fn child_writer() {
    if let Some(dir) = std::env::var_os(child::ENV_DIR) {
        let cfg = std::env::var(child::ENV_CFG).expect("child cfg");
        child::run_child(PathBuf::from(dir), &cfg);
    }
}

/// Kills children at random moments, many times on one directory. Every
/// other child is snapshot-heavy (automatic snapshots every 200 records
/// plus a thread calling `snapshot()` back to back) so that kills land in
/// the middle of snapshots; segments are sometimes tiny (4 KiB) so kills
/// also land around rotations. After each kill: exact state (each
/// in-flight op applied or not), counters equal to their acknowledged
/// increments, fencing tokens never reused and always increasing.
#[test]
fn kill9_always_mode_random_kills() {
    let kills = if soak() { env_u64("DBKV_SOAK_KILLS", 1500) } else { 200 };
    let mut rng = Rng::new(base_seed("kill9_always_mode_random_kills"));
    let td = TempDir::new("kill9");
    let dir = td.join("db");
    let mut model = KillModel::default();
    let started = Instant::now();
    let (mut mid_snapshot, mut snapshot_heavy, mut before_ready, mut torn_lines, mut corrupt_tails) = (0, 0, 0, 0, 0);
    for c in 0..kills {
        let heavy = c % 2 == 1;
        let cfg = ChildCfg {
            id: c,
            seed: rng.next_u64(),
            threads: rng.range(1, 3),
            shards: *rng.pick(&[1, 4, 16, 256]),
            snap_ops: if heavy || rng.chance(1, 4) { 200 } else { 0 },
            snap_loop: heavy,
            seg_bytes: if rng.chance(1, 2) { 4096 } else { 1 << 20 },
        };
        let at = if rng.chance(1, 6) {
            // Early: during exec, start-up or recovery.
            KillAt::FromSpawn(Duration::from_micros(rng.below(10_000)))
        } else {
            KillAt::AfterReady(Duration::from_micros(rng.range(500, 120_000)))
        };
        let run = child::spawn_and_kill(&dir, &cfg, at);
        if let Some(st) = run.exited_early {
            panic!("child {c} ({cfg:?}) exited by itself with {st}; stderr:\n{}", run.stderr);
        }
        if !run.killed_after_ready {
            before_ready += 1;
        }
        if run.partial > 0 {
            torn_lines += 1;
        }
        if heavy {
            snapshot_heavy += 1;
            if dir.join("snapshot.tmp").exists() {
                mid_snapshot += 1;
            }
        }
        let inflight = model.apply(c, &run);
        let stats = model.verify(c, &dir, &inflight);
        if stats.recovery_corrupt_records > 0 {
            corrupt_tails += 1;
        }
        assert!(!dir.join("snapshot.tmp").exists(), "recovery left snapshot.tmp behind");
    }
    // Tokens: unique across all children.
    let unique: BTreeSet<u64> = model.tokens.iter().copied().collect();
    assert_eq!(unique.len(), model.tokens.len(), "a fencing token was acknowledged twice");
    eprintln!(
        "kill9: {kills} kills in {:.1}s: {} acked ops {:?}, {} acked snapshots, in-flight applied {} / not {}, \
         {before_ready} kills before ready, {mid_snapshot}/{snapshot_heavy} snapshot-heavy kills left snapshot.tmp, \
         {torn_lines} cut output lines, {corrupt_tails} recoveries dropped a torn record",
        started.elapsed().as_secs_f64(),
        model.acked_ops,
        model.acked_by_kind,
        model.snapshots_acked,
        model.inflight_applied,
        model.inflight_lost,
    );
    // The run must have exercised what it claims to.
    assert!(model.acked_ops >= kills * 5, "too few acknowledged ops ({}) for {kills} kills", model.acked_ops);
    for kind in ["set", "incr", "lock", "unlock", "del"] {
        assert!(model.acked_by_kind.get(kind).copied().unwrap_or(0) > 0, "no {kind} was acknowledged");
    }
    assert!(model.snapshots_acked > 0, "no snapshot completed");
    assert!(mid_snapshot > 0, "no kill landed in the middle of a snapshot ({snapshot_heavy} snapshot-heavy children)");
}

// =====================================================================
// Helpers for the file-damage tests (real directories, OS files)
// =====================================================================

/// Opens a real directory with the model options (see `open_retry_busy`).
fn open_at(dir: &Path, mode: RecoveryMode) -> dbkv::error::Result<Engine> {
    open_retry_busy(model_opts(dir, mode))
}

/// Applies records to an empty state.
fn replay(recs: &[&RecInfo]) -> State {
    let mut s = State::new();
    for r in recs {
        apply_record(&mut s, &r.record);
    }
    s
}

/// A data directory with one closed engine's WAL: `records` records of
/// random ops. Returns the per-record states and the parsed segments.
struct WalFixture {
    dir: PathBuf,
    states: Vec<(State, u64)>,
    /// (path, image, records) per segment, ascending.
    segments: Vec<(PathBuf, Vec<u8>, Vec<RecInfo>)>,
}

impl WalFixture {
    fn build(dir: PathBuf, seed: u64, records: usize, seg_bytes: u64) -> WalFixture {
        let mut o = model_opts(&dir, RecoveryMode::PointInTime);
        o.wal_segment_bytes = seg_bytes;
        // One record per batch, so segments rotate right after passing
        // their size.
        o.sync_mode = SyncMode::Always;
        let e = open_retry_busy(o).unwrap();
        let mut model = OpModel::default();
        let states = model.run_records(&e, &mut Rng::new(seed), records);
        assert_state(&model.state, &engine_state(&e, T0), "engine vs model before close");
        e.close().unwrap();
        let segments: Vec<_> = segment_paths(&dir)
            .into_iter()
            .map(|(_, p)| {
                let image = std::fs::read(&p).unwrap();
                let recs = parse_segment(&image);
                (p, image, recs)
            })
            .collect();
        let all: Vec<&RecInfo> = segments.iter().flat_map(|s| s.2.iter()).collect();
        // The WAL holds exactly the records the model counted, in LSN order,
        // and replaying them gives the live state: the record model is sound.
        assert_eq!(all.len(), records, "records in the WAL");
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.lsn, i as u64 + 1, "LSNs are consecutive from 1");
        }
        assert_state(&model.state, &replay(&all), "replaying every WAL record");
        WalFixture { dir, states, segments }
    }

    fn all(&self) -> Vec<&RecInfo> {
        self.segments.iter().flat_map(|s| s.2.iter()).collect()
    }

    fn state_after(&self, records: usize) -> (State, u64) {
        if records == 0 {
            (State::new(), 0)
        } else {
            self.states[records - 1].clone()
        }
    }
}

/// Writes a few more ops on a recovered engine, closes, reopens, and checks
/// the new state survived; returns nothing, panics on failure.
fn write_after_recovery(e: Engine, dir: &Path, mode: RecoveryMode, base: &State, base_token: u64, seed: u64, what: &str) {
    let mut m = OpModel { state: base.clone(), seq: 1_000_000, max_token: base_token, last_forced: false, no_locks: false };
    let lsn_before = e.stats().last_lsn;
    m.run_records(&e, &mut Rng::new(seed), 6);
    assert_eq!(e.stats().last_lsn, lsn_before + 6, "{what}: LSNs continue after recovery");
    e.close().unwrap_or_else(|err| panic!("{what}: close after recovery: {err}"));
    let e = open_at(dir, mode).unwrap_or_else(|err| panic!("{what}: second reopen: {err}"));
    assert_state(&m.state, &engine_state(&e, T0), &format!("{what}: after writing post-recovery and reopening"));
    assert_eq!(e.last_token(), m.max_token, "{what}: last_token after second reopen");
    e.close().unwrap();
}

// =====================================================================
// 2. Torn tail
// =====================================================================

/// Cuts the newest segment at every byte offset within its last three
/// records: recovery must give exactly the state after the whole records
/// before the cut, report the dropped bytes, cut the file back to the last
/// whole record, and accept new writes that survive another reopen.
#[test]
fn torn_tail_every_offset_of_last_records() {
    let seed = base_seed("torn_tail_every_offset_of_last_records");
    let td = TempDir::new("torn");
    let fx = WalFixture::build(td.join("base"), seed, if soak() { 400 } else { 60 }, 64 << 20);
    assert_eq!(fx.segments.len(), 1);
    let (seg_path, image, recs) = &fx.segments[0];
    let seg_name = file_name(seg_path);
    let last_n = if soak() { 12 } else { 3 };
    let from = recs[recs.len() - last_n].offset;
    let mut cases = 0;
    for cut in from..=image.len() {
        let d = td.join(&format!("cut{cut}"));
        copy_dir(&fx.dir, &d);
        let f = std::fs::OpenOptions::new().write(true).open(d.join(&seg_name)).unwrap();
        f.set_len(cut as u64).unwrap();
        drop(f);
        let whole = recs.iter().filter(|r| r.offset + r.len <= cut).count();
        let boundary = if whole == 0 { SEGMENT_HEADER_LEN } else { recs[whole - 1].offset + recs[whole - 1].len };
        let (expected, token) = fx.state_after(whole);
        let what = format!("cut at {cut} (last whole record ends at {boundary})");

        let e = open_at(&d, RecoveryMode::PointInTime).unwrap_or_else(|err| panic!("{what}: open: {err}"));
        assert_state(&expected, &engine_state(&e, T0), &what);
        let st = e.stats();
        assert_eq!(st.recovery_wal_records, whole as u64, "{what}: records replayed");
        assert_eq!(st.recovery_bytes_dropped, (cut - boundary) as u64, "{what}: bytes dropped");
        assert_eq!(st.recovery_corrupt_records, (cut != boundary) as u64, "{what}: corrupt records");
        let token = assert_token(&e, token, &what);
        assert_cut(&d, &seg_name, boundary, &image[..cut], &what);
        write_after_recovery(e, &d, RecoveryMode::PointInTime, &expected, token, seed ^ cut as u64, &what);
        std::fs::remove_dir_all(&d).unwrap();
        cases += 1;
    }
    eprintln!("torn tail: {cases} cut offsets checked");
}

/// After damage the last token is the largest one read plus as many as the
/// unreadable bytes could have held (FORMAT.md section 7.5), so no token
/// whose record was destroyed is handed out again; returns it.
#[track_caller]
fn assert_token(e: &Engine, read: u64, what: &str) -> u64 {
    let st = e.stats();
    let skip = if st.recovery_corrupt_records > 0 { st.recovery_bytes_dropped / dbkv::persistence::record::MIN_LOCK_RECORD + 1 } else { 0 };
    assert_eq!(e.last_token(), read + skip, "{what}: last_token");
    read + skip
}

/// A point-in-time cut kept the whole damaged segment as `<name>.dropped`
/// and left the segment cut back at the damage (or removed it: the repair
/// snapshot taken at open covers it, so retention may delete it).
#[track_caller]
fn assert_cut(d: &Path, name: &str, boundary: usize, before: &[u8], what: &str) {
    if boundary < before.len() {
        let kept = std::fs::read(d.join(format!("{name}.dropped"))).unwrap_or_else(|e| panic!("{what}: no .dropped copy: {e}"));
        assert_eq!(kept, before, "{what}: the .dropped copy is the segment as it was");
    }
    if let Ok(m) = std::fs::metadata(d.join(name)) {
        assert_eq!(m.len(), boundary as u64, "{what}: segment cut back");
    }
}

// =====================================================================
// 3. Bit flips
// =====================================================================

/// Byte positions to damage within a record: length, CRC, LSN, type, a
/// middle byte, the last byte.
fn flip_positions(r: &RecInfo) -> Vec<usize> {
    let mut v = vec![r.offset, r.offset + 5, r.offset + 8 + 3, r.offset + 16, r.offset + r.len / 2, r.offset + r.len - 1];
    v.dedup();
    v
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x5a;
    std::fs::write(path, b).unwrap();
}

/// The damage cases: (segment index, record index in that segment) of a
/// record in the middle of a segment, for a one-segment WAL and for a
/// WAL of several 4 KiB segments (damage in the second).
fn bitflip_fixtures(td: &TempDir, seed: u64) -> Vec<(WalFixture, usize, usize)> {
    let one = WalFixture::build(td.join("one"), seed, 120, 64 << 20);
    let many = WalFixture::build(td.join("many"), seed ^ 1, 400, 4096);
    assert_eq!(one.segments.len(), 1);
    // Damage goes in the second segment, so there must be a third after it.
    assert!(many.segments.len() >= 3, "want several segments, got {}", many.segments.len());
    let m1 = one.segments[0].2.len() / 2;
    let m2 = many.segments[1].2.len() / 2;
    vec![(one, 0, m1), (many, 1, m2)]
}

/// Index of (segment, record) among all records.
fn global_index(fx: &WalFixture, seg: usize, rec: usize) -> usize {
    fx.segments[..seg].iter().map(|s| s.2.len()).sum::<usize>() + rec
}

/// PointInTime: exactly the records before the damaged one, the segment
/// cut there, later segments set aside, damage reported.
#[test]
fn bitflip_wal_point_in_time_keeps_records_before_damage() {
    let seed = base_seed("bitflip_wal_point_in_time_keeps_records_before_damage");
    let td = TempDir::new("flip-pit");
    for (fx, si, ri) in bitflip_fixtures(&td, seed) {
        let (seg_path, image, recs) = &fx.segments[si];
        let name = file_name(seg_path);
        let r = &recs[ri];
        let m = global_index(&fx, si, ri);
        let later_bytes: usize = fx.segments[si + 1..].iter().map(|s| s.1.len()).sum();
        for at in flip_positions(r) {
            let what = format!("{name}: byte {at} of the record at {} (LSN {}) flipped", r.offset, r.lsn);
            let d = td.join("case");
            copy_dir(&fx.dir, &d);
            flip(&d.join(&name), at);
            let e = open_at(&d, RecoveryMode::PointInTime).unwrap_or_else(|err| panic!("{what}: open: {err}"));
            let (expected, _) = fx.state_after(m);
            // Tokens of records set aside were handed out too: recovery
            // reads them, so the next token is above all of them.
            let later = fx.segments[si + 1..].iter().flat_map(|s| s.2.iter());
            let token = fx.all()[..m].iter().copied().chain(later).filter_map(|x| record_token(&x.record)).max().unwrap_or(0);
            assert_state(&expected, &engine_state(&e, T0), &what);
            let st = e.stats();
            assert_eq!(st.recovery_wal_records, m as u64, "{what}: records replayed");
            assert_eq!(st.recovery_corrupt_records, 1, "{what}: corrupt records");
            assert_eq!(st.recovery_bytes_dropped, (image.len() - r.offset + later_bytes) as u64, "{what}: bytes dropped");
            let mut damaged = image.clone();
            damaged[at] ^= 0x5a;
            assert_cut(&d, &name, r.offset, &damaged, &what);
            for (p, _, _) in &fx.segments[si + 1..] {
                let n = file_name(p);
                assert!(!d.join(&n).exists(), "{what}: later segment {n} still in place");
                assert!(d.join(format!("{n}.dropped")).exists(), "{what}: later segment {n} not set aside");
            }
            let token = assert_token(&e, token, &what);
            write_after_recovery(e, &d, RecoveryMode::PointInTime, &expected, token, seed ^ at as u64, &what);
            std::fs::remove_dir_all(&d).unwrap();
        }
    }
}

/// Absolute: open fails with Corruption naming the file and offset, and
/// leaves every file byte for byte as it was.
#[test]
fn bitflip_wal_absolute_refuses_and_changes_nothing() {
    let seed = base_seed("bitflip_wal_absolute_refuses_and_changes_nothing");
    let td = TempDir::new("flip-abs");
    for (fx, si, ri) in bitflip_fixtures(&td, seed) {
        let (seg_path, _, recs) = &fx.segments[si];
        let name = file_name(seg_path);
        let r = &recs[ri];
        for at in flip_positions(r) {
            let what = format!("{name}: byte {at} of the record at {} flipped", r.offset);
            let d = td.join("case");
            copy_dir(&fx.dir, &d);
            flip(&d.join(&name), at);
            let before = dir_image(&d);
            match open_at(&d, RecoveryMode::Absolute) {
                Err(Error::Corruption(msg)) => {
                    assert!(msg.contains(&name), "{what}: message {msg:?} does not name {name}");
                    assert!(msg.contains(&format!("offset {}", r.offset)), "{what}: message {msg:?} does not name offset {}", r.offset);
                }
                Err(other) => panic!("{what}: expected Corruption, got {other:?}"),
                Ok(_) => panic!("{what}: Absolute opened a damaged WAL"),
            }
            assert!(before == dir_image(&d), "{what}: refused recovery changed the directory");
            // And it refuses again, the same way (nothing was repaired).
            assert!(matches!(open_at(&d, RecoveryMode::Absolute), Err(Error::Corruption(_))), "{what}: second open");
            assert!(before == dir_image(&d), "{what}: second refused recovery changed the directory");
            std::fs::remove_dir_all(&d).unwrap();
        }
    }
}

/// SkipCorrupted: every record but the damaged one.
#[test]
fn bitflip_wal_skip_corrupted_keeps_every_other_record() {
    let seed = base_seed("bitflip_wal_skip_corrupted_keeps_every_other_record");
    let td = TempDir::new("flip-skip");
    for (fx, si, ri) in bitflip_fixtures(&td, seed) {
        let (seg_path, _, recs) = &fx.segments[si];
        let name = file_name(seg_path);
        let r = &recs[ri];
        // Salvage resumes only where a block header names a record start;
        // these segments are smaller than one block, so the rest of the
        // damaged segment is lost and the later segments are replayed.
        assert!(fx.segments[si].1.len() <= dbkv::persistence::block::BLOCK, "fixture segments fit one block");
        let lost: Vec<u64> = recs[ri..].iter().map(|x| x.lsn).collect();
        let others: Vec<&RecInfo> = fx.all().into_iter().filter(|x| !lost.contains(&x.lsn)).collect();
        let expected = replay(&others);
        let token = others.iter().filter_map(|x| record_token(&x.record)).max().unwrap_or(0);
        let last_lsn = others.iter().map(|x| x.lsn).max().unwrap_or(0);
        for at in flip_positions(r) {
            let what = format!("{name}: byte {at} of the record at {} (LSN {}) flipped", r.offset, r.lsn);
            let d = td.join("case");
            copy_dir(&fx.dir, &d);
            flip(&d.join(&name), at);
            let e = open_at(&d, RecoveryMode::SkipCorrupted).unwrap_or_else(|err| panic!("{what}: open: {err}"));
            assert_state(&expected, &engine_state(&e, T0), &what);
            let st = e.stats();
            assert_eq!(st.recovery_wal_records, others.len() as u64, "{what}: records replayed");
            assert_eq!(st.recovery_corrupt_records, 1, "{what}: corrupt records");
            assert_eq!(st.recovery_bytes_dropped, (fx.segments[si].1.len() - r.offset) as u64, "{what}: bytes dropped");
            let token = assert_token(&e, token, &what);
            assert_eq!(e.stats().last_lsn, last_lsn, "{what}: next LSN follows the last record read");
            write_after_recovery(e, &d, RecoveryMode::SkipCorrupted, &expected, token, seed ^ at as u64, &what);
            std::fs::remove_dir_all(&d).unwrap();
        }
    }
}

/// Three snapshots with writes between them on 4 KiB segments (so old
/// segments are removed), then a byte flipped in the newest snapshot.
/// PointInTime and SkipCorrupted fall back to the previous snapshot and
/// replay the WAL from its LSN to the exact latest state; Absolute refuses
/// and changes nothing.
/// Three snapshots, 150 records apart, then 100 more records, on 4 KiB
/// segments so that old segments are removed. Returns the model, the last
/// LSN and the LSNs the snapshots cover.
fn snapshot_fixture(base: &Path, seed: u64) -> (OpModel, u64, Vec<u64>, Vec<(u64, PathBuf)>) {
    let mut o = model_opts(base, RecoveryMode::PointInTime);
    o.wal_segment_bytes = 4096;
    o.snapshot_keep = 3;
    let e = open_retry_busy(o).unwrap();
    let mut model = OpModel::default();
    let mut rng = Rng::new(seed);
    let mut snap_lsns = Vec::new();
    for _ in 0..3 {
        model.run_records(&e, &mut rng, 150);
        e.snapshot().unwrap();
        snap_lsns.push(e.stats().last_lsn);
    }
    model.run_records(&e, &mut rng, 100);
    let total = e.stats().last_lsn;
    e.close().unwrap();
    let snaps = snapshot_paths(base);
    assert_eq!(snaps.iter().map(|s| s.0).collect::<Vec<_>>(), snap_lsns, "snapshots are named by the LSN they cover");
    assert!(segment_paths(base)[0].0 > 1, "old segments were not removed; the fallback would not need the kept WAL");
    (model, total, snap_lsns, snaps)
}

#[test]
fn bitflip_newest_snapshot_falls_back_to_previous() {
    let seed = base_seed("bitflip_newest_snapshot_falls_back_to_previous");
    let td = TempDir::new("flip-snap");
    let base = td.join("base");
    let (model, total, snap_lsns, snaps) = snapshot_fixture(&base, seed);

    // Undamaged: newest snapshot plus the 100 records after it.
    let d = td.join("clean");
    copy_dir(&base, &d);
    let e = open_at(&d, RecoveryMode::Absolute).unwrap();
    assert_state(&model.state, &engine_state(&e, T0), "clean open");
    assert!(e.stats().recovery_snapshot_loaded);
    assert_eq!(e.stats().recovery_wal_records, total - snap_lsns[2]);
    e.close().unwrap();

    let (newest_lsn, newest) = snaps.last().unwrap().clone();
    let name = file_name(&newest);
    let len = std::fs::metadata(&newest).unwrap().len() as usize;
    // A byte in the middle (a shard section: its CRC-32C), one in the
    // header (the hash seed), one in the section table (the tail's CRC-32C)
    // and the last byte of the digest; the last three break the SHA-256.
    // (The version field, bytes 8..12, is read before the digest by design:
    // see `bitflip_version_field_is_damage_not_a_newer_format`.)
    for at in [len / 2, 20, len - 40 - 8, len - 1] {
        for mode in [RecoveryMode::PointInTime, RecoveryMode::SkipCorrupted] {
            let what = format!("{mode:?}, {name} byte {at} flipped");
            let d = td.join("case");
            copy_dir(&base, &d);
            flip(&d.join(&name), at);
            let e = open_at(&d, mode).unwrap_or_else(|err| panic!("{what}: open: {err}"));
            assert_state(&model.state, &engine_state(&e, T0), &what);
            let st = e.stats();
            assert!(st.recovery_snapshot_loaded, "{what}: no snapshot loaded");
            assert_eq!(st.recovery_wal_records, total - snap_lsns[1], "{what}: WAL not replayed from the previous snapshot");
            assert_eq!(st.recovery_corrupt_records, 1, "{what}: corrupt records");
            assert_eq!(st.recovery_bytes_dropped, len as u64, "{what}: bytes dropped");
            let token = assert_token(&e, model.max_token, &what);
            assert!(!d.join(&name).exists(), "{what}: damaged snapshot still in place");
            assert!(d.join(format!("{name}.dropped")).exists(), "{what}: damaged snapshot not set aside");
            assert!(e.stats().last_lsn >= newest_lsn);
            write_after_recovery(e, &d, mode, &model.state, token, seed ^ at as u64, &what);
            std::fs::remove_dir_all(&d).unwrap();
        }
        let what = format!("Absolute, {name} byte {at} flipped");
        let d = td.join("case");
        copy_dir(&base, &d);
        flip(&d.join(&name), at);
        let before = dir_image(&d);
        match open_at(&d, RecoveryMode::Absolute) {
            Err(Error::Corruption(msg)) => {
                assert!(msg.contains(&name), "{what}: message {msg:?} does not name {name}");
                assert!(msg.contains("offset "), "{what}: message {msg:?} names no offset");
                let check = if at == len / 2 { "snapshot section CRC-32C mismatch" } else { "snapshot SHA-256 mismatch" };
                assert!(msg.contains(check), "{what}: message {msg:?} does not say {check:?}");
            }
            Err(other) => panic!("{what}: expected Corruption, got {other:?}"),
            Ok(_) => panic!("{what}: Absolute opened with a damaged snapshot"),
        }
        assert!(before == dir_image(&d), "{what}: refused recovery changed the directory");
        std::fs::remove_dir_all(&d).unwrap();
    }
}

// =====================================================================
// 4. Fault injection and power loss (SimVfs)
// =====================================================================

const SIM_DIR: &str = "/sim/db";

fn sim_opts(pv: &ProcVfs, sync: SyncMode) -> Options {
    let mut o = model_opts(Path::new(SIM_DIR), RecoveryMode::PointInTime);
    o.vfs = Some(pv.as_vfs());
    o.sync_mode = sync;
    o
}

#[track_caller]
fn assert_failed<T: std::fmt::Debug>(r: dbkv::error::Result<T>, eio: &str, what: &str) {
    match r {
        Err(Error::Failed(msg)) => assert!(msg.contains(eio), "{what}: Failed message {msg:?} lacks the OS error {eio:?}"),
        other => panic!("{what}: expected Error::Failed, got {other:?}"),
    }
}

/// The error of the op that ran into the fault: Failed, like every write
/// after it, carrying the OS error text (whether it flushed or waited).
#[track_caller]
fn assert_fault_error(err: Error, eio: &str, what: &str) {
    match &err {
        Error::Failed(msg) => assert!(msg.contains(eio), "{what}: message {msg:?} lacks the OS error {eio:?}"),
        other => panic!("{what}: expected Failed, got {other:?}"),
    }
}

/// Every kind of write on a failed engine returns Failed with the OS text.
fn assert_all_writes_fail(e: &Engine, eio: &str) {
    assert_failed(e.set(b"k1", b"x", 0), eio, "set");
    assert_failed(e.set(b"new-key", b"x", 0), eio, "set of a new key");
    assert_failed(e.incr(b"c0", 1), eio, "incr");
    assert_failed(e.decr(b"c0", 1), eio, "decr");
    assert_failed(e.delete(b"k1"), eio, "delete");
    assert_failed(e.delete(b"absent"), eio, "delete of an absent key");
    assert_failed(e.setnx(b"absent", b"x", 0), eio, "setnx");
    assert_failed(e.cas(b"k1", b"x", b"y", 0), eio, "cas");
    assert_failed(e.expire(b"k1", 5000), eio, "expire");
    assert_failed(e.persist(b"k1"), eio, "persist");
    assert_failed(e.mset(&[b"k1", b"k2"], &[b"x", b"y"], 0), eio, "mset");
    assert_failed(e.mdel(&[b"k1", b"k2"]), eio, "mdel");
    assert_failed(e.lock(b"lk", b"me", 1000), eio, "lock");
    assert_failed(e.unlock(b"lk", b"me"), eio, "unlock");
    assert_failed(e.extend_lock(b"lk", b"me", 1000), eio, "extend_lock");
    assert_failed(e.sync(), eio, "sync");
    assert_failed(e.snapshot(), eio, "snapshot");
}

/// Sets `k{i % 8}` and a counter, returns what was acknowledged.
fn seed_writes(e: &Engine, acked: &mut State, n: usize, tag: &str) {
    for i in 0..n {
        let (k, v) = (format!("k{}", i % 8).into_bytes(), format!("{tag}{i}").into_bytes());
        e.set(&k, &v, 0).unwrap();
        acked.insert(k, (v, 0));
    }
    let c = e.incr(b"c0", 5).unwrap();
    acked.insert(b"c0".to_vec(), (c.to_string().into_bytes(), 0));
    assert_eq!(e.lock(b"lk", b"me", FAR_TTL).unwrap(), LockOutcome::Granted(e.last_token()));
    acked.insert(b"lk".to_vec(), (b"me".to_vec(), T0 + FAR_TTL));
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Write,
    Fsync,
}

/// Always mode: after `n` more successful writes, the WAL write or fsync
/// fails. Checks the failed op and every later write return Failed with
/// the OS error, reads work, close reports the error, no fsync is
/// attempted after the failed one, and a reopen (after a restart, and
/// after a power loss) has every acknowledged write.
fn nth_fault_always(fault: Fault) {
    let eio = match fault {
        Fault::Write => "injected EIO on write",
        Fault::Fsync => "injected EIO on fsync",
    };
    for n in [0u64, 1, 7] {
        for power_loss in [false, true] {
            let what = format!("{fault:?} #{n}, power loss {power_loss}");
            let sim = SimVfs::new();
            let pv = ProcVfs::new(sim.clone());
            let e = Engine::open(sim_opts(&pv, SyncMode::Always)).unwrap();
            let mut acked = State::new();
            seed_writes(&e, &mut acked, 20, "a");
            match fault {
                Fault::Write => sim.fail_write_after(n),
                Fault::Fsync => sim.fail_sync_after(n),
            }
            let mut ok = 0;
            let (failed_key, failed_val) = loop {
                let (k, v) = (format!("k{}", ok % 8).into_bytes(), format!("b{ok}").into_bytes());
                match e.set(&k, &v, 0) {
                    Ok(()) => {
                        acked.insert(k, (v, 0));
                        ok += 1;
                        assert!(ok <= n, "{what}: more writes succeeded than armed");
                    }
                    Err(err) => {
                        assert_fault_error(err, eio, &what);
                        break (k, v);
                    }
                }
            };
            assert_eq!(ok, n, "{what}: writes before the fault");
            let attempts = pv.sync_attempts();
            let good_syncs = sim.sync_count();
            assert!(e.stats().failed, "{what}: stats.failed");
            assert_all_writes_fail(&e, eio);
            // Reads fail too: memory holds the failed write, which must
            // never be seen once its call returned an error.
            assert_failed(e.get(&failed_key), eio, "get of the failed key");
            for (k, _) in &acked {
                assert_failed(e.get(k), eio, "get of an acknowledged key");
            }
            assert_failed(e.exists(&failed_key), eio, "exists");
            assert_failed(e.ttl(&failed_key), eio, "ttl");
            assert_failed(e.mget(&[&failed_key[..]]), eio, "mget");
            assert_eq!(e.scan(b"").count(), 0, "{what}: a scan of a failed handle yields nothing");
            std::thread::sleep(Duration::from_millis(250));
            assert_eq!(pv.sync_attempts(), attempts, "{what}: fsync attempted after the failed one");
            match e.close() {
                Err(Error::Failed(msg)) => assert!(msg.contains(eio), "{what}: close error {msg:?}"),
                other => panic!("{what}: close should report the failure, got {other:?}"),
            }
            assert_eq!(pv.sync_attempts(), attempts, "{what}: close attempted an fsync after the failed one");
            assert_eq!(sim.sync_count(), good_syncs, "{what}: sync_count grew");

            sim.clear_faults();
            if power_loss {
                sim.crash();
            }
            let pv2 = ProcVfs::new(sim.clone());
            let e = Engine::open(sim_opts(&pv2, SyncMode::Always)).unwrap_or_else(|err| panic!("{what}: reopen: {err}"));
            let got = engine_state(&e, T0);
            let mut with_failed = acked.clone();
            with_failed.insert(failed_key.clone(), (failed_val.clone(), 0));
            match (fault, power_loss) {
                // A failed write never reached the file.
                (Fault::Write, _) => assert_state(&acked, &got, &what),
                // A failed fsync's data is not durable: gone after power loss.
                (Fault::Fsync, true) => assert_state(&acked, &got, &what),
                // Without power loss the written record may still be read.
                (Fault::Fsync, false) => {
                    assert!(got == acked || got == with_failed, "{what}: {}", diff(&acked, &got));
                }
            }
            assert!(e.last_token() >= 1);
            e.set(b"after", b"reopen", 0).unwrap();
            e.close().unwrap();
        }
    }
}

#[test]
fn fault_nth_wal_write_fails() {
    nth_fault_always(Fault::Write);
}

#[test]
fn fault_nth_fsync_fails() {
    nth_fault_always(Fault::Fsync);
}

/// Interval mode: the background write or fsync fails. Writes made durable
/// by a successful `sync()` survive a power loss; nothing after the fault
/// does; after the failure every write and `sync()` returns Failed and no
/// fsync is attempted again.
#[test]
fn fault_interval_mode_background_failure() {
    for fault in [Fault::Write, Fault::Fsync] {
        let eio = match fault {
            Fault::Write => "injected EIO on write",
            Fault::Fsync => "injected EIO on fsync",
        };
        let what = format!("interval, {fault:?}");
        let sim = SimVfs::new();
        let pv = ProcVfs::new(sim.clone());
        let mut o = sim_opts(&pv, SyncMode::Interval);
        o.sync_interval_ms = 5;
        let e = Engine::open(o).unwrap();
        let mut durable = State::new();
        seed_writes(&e, &mut durable, 30, "a");
        e.sync().unwrap();
        match fault {
            Fault::Write => sim.fail_write_after(0),
            Fault::Fsync => sim.fail_sync_after(0),
        }
        let mut failed_seen = false;
        for i in 0..400 {
            let r = e.set(format!("b{i}").as_bytes(), b"after-fault", 0);
            match r {
                Ok(()) => assert!(!failed_seen, "{what}: a write succeeded after one returned Failed"),
                Err(err) => {
                    if failed_seen {
                        assert_failed::<()>(Err(err), eio, &what);
                    } else {
                        assert_fault_error(err, eio, &what);
                    }
                    failed_seen = true;
                }
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        assert!(failed_seen, "{what}: the background failure never reached a writer");
        let attempts = pv.sync_attempts();
        assert_all_writes_fail(&e, eio);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(pv.sync_attempts(), attempts, "{what}: fsync attempted after the failure");
        assert!(e.close().is_err(), "{what}: close should report the failure");
        assert_eq!(pv.sync_attempts(), attempts, "{what}: close attempted an fsync");
        sim.clear_faults();
        sim.crash();
        let pv2 = ProcVfs::new(sim.clone());
        let e = Engine::open(sim_opts(&pv2, SyncMode::Interval)).unwrap();
        assert_state(&durable, &engine_state(&e, T0), &what);
        e.close().unwrap();
    }
}

/// Finds the k in `lo..=hi` with `states[k] == actual`.
#[track_caller]
fn find_prefix(states: &[(State, u64)], lo: usize, hi: usize, actual: &State, what: &str) -> usize {
    (lo..=hi).rev().find(|&k| states[k].0 == *actual).unwrap_or_else(|| {
        panic!(
            "{what}: recovered state is not the state after any op count in {lo}..={hi} (vs {lo}: {}) (vs {hi}: {})",
            diff(&states[lo].0, actual),
            diff(&states[hi].0, actual)
        )
    })
}

/// Random ops in Interval and None mode with `sync()` at random points,
/// then power loss. Everything before the last successful `sync()` (or
/// lock grant, which is always durable) must be there, and the state must
/// be exactly the state after some prefix of the ops (nothing half-applied).
/// In None mode with large segments nothing else is ever fsynced, so the
/// prefix is exactly the synced one. Many rounds on one SimVfs.
#[test]
fn power_loss_keeps_everything_before_last_sync() {
    let seed = base_seed("power_loss_keeps_everything_before_last_sync");
    let rounds = if soak() { 300 } else { 30 };
    for mode in [SyncMode::None, SyncMode::Interval] {
        let mut rng = Rng::new(seed ^ mode as u64);
        let sim = SimVfs::new();
        let mut model = OpModel::default();
        let mut pv = ProcVfs::new(sim.clone());
        let mut o = sim_opts(&pv, mode);
        o.sync_interval_ms = 2;
        let mut e = Engine::open(o.clone()).unwrap();
        for round in 0..rounds {
            let what = format!("{mode:?} round {round}");
            let mut states = vec![(model.state.clone(), model.max_token)];
            let mut synced = 0;
            let ops = rng.range(50, 400) as usize;
            for i in 1..=ops {
                model.step(&e, &mut rng);
                states.push((model.state.clone(), model.max_token));
                if model.last_forced {
                    synced = i;
                }
                if rng.chance(1, 50) {
                    e.sync().unwrap();
                    synced = i;
                }
                if mode == SyncMode::Interval && rng.chance(1, 100) {
                    std::thread::sleep(Duration::from_millis(3));
                }
            }
            pv.kill_and_crash();
            drop(e);
            pv = ProcVfs::new(sim.clone());
            o.vfs = Some(pv.as_vfs());
            e = Engine::open(o.clone()).unwrap_or_else(|err| panic!("{what}: reopen: {err}"));
            let actual = engine_state(&e, T0);
            let k = if mode == SyncMode::None {
                assert_state(&states[synced].0, &actual, &format!("{what}: None mode keeps exactly the synced prefix ({synced} of {ops} ops)"));
                synced
            } else {
                find_prefix(&states, synced, ops, &actual, &what)
            };
            assert_eq!(e.last_token(), states[k].1, "{what}: last_token");
            model.state = states[k].0.clone();
            model.max_token = states[k].1;
        }
        e.close().unwrap();
    }
}

/// None mode, 4 KiB segments, two snapshots kept: power loss right after
/// `snapshot()` returns (it promises everything before it is durable),
/// right after a segment rotation is seen (the rotated segment was fsynced
/// first), and right after a `sync()` that follows a rotation (the new
/// segment's directory entry must be durable too).
#[test]
fn power_loss_right_after_snapshot_and_rotation() {
    let seed = base_seed("power_loss_right_after_snapshot_and_rotation");
    let rounds = if soak() { 100 } else { 10 };
    let mut rng = Rng::new(seed);
    let sim = SimVfs::new();
    let mut model = OpModel::default();
    let dir = Path::new(SIM_DIR);
    let newest_segment = |sim: &SimVfs| {
        use dbkv::persistence::vfs::Vfs;
        sim.list(dir).unwrap().iter().filter_map(|n| parse_segment_name(n)).max().unwrap_or(0)
    };
    let open = |pv: &ProcVfs| {
        let mut o = sim_opts(pv, SyncMode::None);
        o.wal_segment_bytes = 4096;
        o.snapshot_keep = 2;
        o.shards = 4;
        o.sync_interval_ms = 1;
        Engine::open(o).unwrap()
    };
    let (mut snapshots, mut rotations) = (0, 0);
    for round in 0..rounds {
        for phase in ["snapshot", "rotation", "rotation+sync"] {
            let what = format!("round {round}, crash after {phase}");
            let pv = ProcVfs::new(sim.clone());
            let e = open(&pv);
            assert_state(&model.state, &engine_state(&e, T0), &format!("{what}: state at open"));
            let mut states = vec![(model.state.clone(), model.max_token)];
            let mut lsns = vec![e.stats().last_lsn];
            let mut durable = 0;
            let seg_at_start = newest_segment(&sim);
            let mut rotated_to = 0;
            let mut i = 0;
            loop {
                i += 1;
                model.step(&e, &mut rng);
                states.push((model.state.clone(), model.max_token));
                lsns.push(e.stats().last_lsn);
                if model.last_forced {
                    durable = i;
                }
                match phase {
                    "snapshot" if i >= 120 => {
                        e.snapshot().unwrap();
                        durable = i;
                        snapshots += 1;
                        break;
                    }
                    "snapshot" => {}
                    _ => {
                        let newest = newest_segment(&sim);
                        if newest > seg_at_start {
                            rotated_to = newest;
                            rotations += 1;
                            if phase == "rotation+sync" {
                                e.sync().unwrap();
                                durable = i;
                            }
                            break;
                        }
                        assert!(i < 5000, "{what}: no rotation after {i} ops");
                    }
                }
            }
            if rotated_to > 0 {
                // Every op whose record is in the rotated (fsynced) segments.
                let before_rotation = lsns.iter().rposition(|&l| l < rotated_to).unwrap();
                durable = durable.max(before_rotation);
            }
            pv.kill_and_crash();
            drop(e);
            let pv = ProcVfs::new(sim.clone());
            let e = open(&pv);
            let actual = engine_state(&e, T0);
            let k = if phase == "rotation" {
                find_prefix(&states, durable, i, &actual, &what)
            } else {
                assert_state(&states[i].0, &actual, &what);
                i
            };
            if phase == "snapshot" {
                assert!(e.stats().recovery_snapshot_loaded, "{what}: snapshot not used");
            }
            assert_eq!(e.last_token(), states[k].1, "{what}: last_token");
            model.state = states[k].0.clone();
            model.max_token = states[k].1;
            e.close().unwrap();
        }
    }
    eprintln!("power loss after snapshot/rotation: {snapshots} snapshots, {rotations} rotations");
}

/// The kill test's writers, but in-process on a `SimVfs` with a power loss
/// instead of a kill, so that what is checked is fsync durability under
/// group commit: 2-4 threads write in Always mode (some rounds with tiny
/// segments, automatic snapshots every 200 records and/or a thread taking
/// snapshots back to back), the machine loses power at a random moment,
/// and the reopened state must hold every acknowledged op exactly (each
/// in-flight op applied or not), counters equal to their acknowledged
/// increments, and fencing tokens never reused. Many rounds on one SimVfs.
#[test]
fn power_loss_with_concurrent_always_writers() {
    let seed = base_seed("power_loss_with_concurrent_always_writers");
    let rounds = if soak() { 1000 } else { 100 };
    let mut rng = Rng::new(seed);
    let sim = SimVfs::new();
    let mut model = KillModel::default();
    let opts = |pv: &ProcVfs, seg: u64, snap_ops: u64| {
        let mut o = Options::default();
        o.data_dir = Some(PathBuf::from(SIM_DIR));
        o.vfs = Some(pv.as_vfs());
        o.sync_mode = SyncMode::Always;
        o.shards = 16;
        o.wal_segment_bytes = seg;
        o.snapshot_ops = snap_ops;
        o.snapshot_interval_secs = 0;
        o.snapshot_keep = 2;
        o
    };
    let started = Instant::now();
    for round in 0..rounds {
        let seg = if rng.chance(1, 2) { 4096 } else { 1 << 20 };
        let snap_ops = if rng.chance(1, 2) { 200 } else { 0 };
        let snap_loop = rng.chance(1, 3);
        let threads = rng.range(2, 4);
        let delay = Duration::from_micros(rng.range(200, 30_000));
        let round_seed = rng.next_u64();
        let pv = ProcVfs::new(sim.clone());
        let e = Engine::open(opts(&pv, seg, snap_ops)).unwrap_or_else(|err| panic!("round {round}: open: {err}"));
        let lines = std::sync::Mutex::new(Vec::<String>::new());
        std::thread::scope(|s| {
            for t in 0..threads {
                let (e, pv, lines) = (&e, &pv, &lines);
                s.spawn(move || {
                    let say = |l: &str| lines.lock().unwrap().push(l.to_string());
                    if let Err((what, err)) = child::writer_ops(e, t, round, round_seed, &say, &|| !pv.is_dead()) {
                        assert!(pv.is_dead(), "round {round}: {what} failed without a power loss: {err}");
                    }
                });
            }
            if snap_loop {
                let (e, pv, lines) = (&e, &pv, &lines);
                s.spawn(move || {
                    while !pv.is_dead() {
                        match e.snapshot() {
                            Ok(()) => lines.lock().unwrap().push("S".into()),
                            Err(err) => {
                                assert!(pv.is_dead(), "round {round}: snapshot failed without a power loss: {err}");
                                break;
                            }
                        }
                    }
                });
            }
            std::thread::sleep(delay);
            pv.kill_and_crash();
        });
        drop(e);
        let run = child::ChildRun {
            lines: lines.into_inner().unwrap(),
            partial: 0,
            stderr: String::new(),
            exited_early: None,
            killed_after_ready: true,
        };
        let inflight = model.apply(round, &run);
        let pv = ProcVfs::new(sim.clone());
        model.verify_with(round, opts(&pv, 1 << 20, 0), &inflight);
    }
    let unique: BTreeSet<u64> = model.tokens.iter().copied().collect();
    assert_eq!(unique.len(), model.tokens.len(), "a fencing token was acknowledged twice");
    eprintln!(
        "power loss, concurrent writers: {rounds} rounds in {:.1}s: {} acked ops {:?}, {} acked snapshots, in-flight applied {} / not {}",
        started.elapsed().as_secs_f64(),
        model.acked_ops,
        model.acked_by_kind,
        model.snapshots_acked,
        model.inflight_applied,
        model.inflight_lost
    );
    assert!(model.acked_ops >= rounds * 5, "too few acknowledged ops: {}", model.acked_ops);
    assert!(model.snapshots_acked > 0, "no snapshot completed");
}

/// None mode, one large segment, 64 shards holding 40,000 untouched
/// filler keys (so copying the shards takes a while): a writer thread runs
/// ops while the main thread takes a snapshot, then power fails. The
/// snapshot copies shards at different LSNs, so it must make the WAL
/// durable up to the newest copy before it counts: the recovered state
/// must be exactly the state after some prefix of the writer's ops, at
/// least every op finished before `snapshot()` was called, and the
/// snapshot itself (its directory entry too) must survive.
#[test]
fn power_loss_after_snapshot_taken_during_writes() {
    let seed = base_seed("power_loss_after_snapshot_taken_during_writes");
    let rounds = if soak() { 100 } else { 10 };
    let filler = 40_000;
    let sim = SimVfs::new();
    let open = |pv: &ProcVfs| {
        let mut o = sim_opts(pv, SyncMode::None);
        o.shards = 64;
        o.snapshot_keep = 3;
        Engine::open(o).unwrap()
    };
    let split = |mut st: State| -> (State, usize) {
        let fill: Vec<Vec<u8>> = st.keys().filter(|k| k.starts_with(b"f")).cloned().collect();
        for k in &fill {
            st.remove(k);
        }
        (st, fill.len())
    };
    // No lock ops: they fsync the WAL and would hide a snapshot that does not.
    let mut model = OpModel { no_locks: true, ..OpModel::default() };
    let mut rng = Rng::new(seed);
    let mut mixed = 0;
    for round in 0..rounds {
        let what = format!("round {round}");
        let pv = ProcVfs::new(sim.clone());
        let e = open(&pv);
        if round == 0 {
            // In the first round the snapshot has no older files to remove,
            // so only its own directory fsync makes its name durable.
            for i in 0..filler {
                e.set(format!("f{i}").as_bytes(), b"filler", 0).unwrap();
            }
            e.sync().unwrap();
        }
        let stop = std::sync::atomic::AtomicBool::new(false);
        let done = std::sync::atomic::AtomicUsize::new(0);
        let (states, before_call) = std::thread::scope(|s| {
            let writer = s.spawn(|| {
                let mut states = vec![(model.state.clone(), model.max_token)];
                while !stop.load(std::sync::atomic::Ordering::SeqCst) || states.len() < 50 {
                    model.step(&e, &mut rng);
                    states.push((model.state.clone(), model.max_token));
                    done.store(states.len() - 1, std::sync::atomic::Ordering::SeqCst);
                }
                states
            });
            while done.load(std::sync::atomic::Ordering::SeqCst) < 20 {
                std::thread::yield_now();
            }
            let before_call = done.load(std::sync::atomic::Ordering::SeqCst);
            e.snapshot().unwrap();
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            (writer.join().unwrap(), before_call)
        });
        let ops = states.len() - 1;
        pv.kill_and_crash();
        drop(e);
        let pv = ProcVfs::new(sim.clone());
        let e = open(&pv);
        assert!(e.stats().recovery_snapshot_loaded, "{what}: the snapshot did not survive the power loss");
        let (actual, fill) = split(engine_state(&e, T0));
        assert_eq!(fill, filler, "{what}: filler keys");
        let k = find_prefix(&states, before_call, ops, &actual, &what);
        if k > before_call {
            mixed += 1;
        }
        assert_eq!(e.last_token(), states[k].1, "{what}: last_token");
        model.state = states[k].0.clone();
        model.max_token = states[k].1;
        e.close().unwrap();
    }
    eprintln!("snapshot during writes: {mixed}/{rounds} rounds kept ops made during the snapshot");
}

/// Always mode, 4 KiB segments, a snapshot every 40 ops, two kept: the
/// scenario is run once per I/O operation N, and the process dies with a
/// power loss at exactly operation N (a write, fsync, create, rename,
/// remove, directory fsync... of the WAL writer, the snapshot thread or
/// open itself). Recovery must give exactly the acknowledged ops (the op
/// that failed may or may not have landed), with every acknowledged
/// fencing token covered, and the recovered directory must take new writes
/// that survive a reopen.
#[test]
fn power_loss_at_every_io_operation() {
    let seed = base_seed("power_loss_at_every_io_operation");
    let ops = if soak() { 1500 } else { 300 };
    let opts = |pv: &ProcVfs| {
        let mut o = sim_opts(pv, SyncMode::Always);
        o.wal_segment_bytes = 4096;
        o.snapshot_keep = 2;
        o.shards = 4;
        o
    };
    // Runs the scenario until it completes or the process dies; returns
    // how many ops were acknowledged and the state after each.
    let scenario = |pv: &ProcVfs| -> (usize, Vec<(State, u64)>) {
        let mut model = OpModel::default();
        let mut rng = Rng::new(seed);
        let mut states = vec![(State::new(), 0)];
        let e = match Engine::open(opts(pv)) {
            Ok(e) => e,
            Err(err) => {
                assert!(pv.is_dead(), "open failed without a crash: {err}");
                return (0, states);
            }
        };
        for i in 1..=ops {
            if let Err(err) = model.try_step(&e, &mut rng) {
                assert!(pv.is_dead(), "op {i} failed without a crash: {err}");
                return (i - 1, states);
            }
            states.push((model.state.clone(), model.max_token));
            if i % 40 == 0 {
                if let Err(err) = e.snapshot() {
                    assert!(pv.is_dead(), "snapshot after op {i} failed without a crash: {err}");
                    return (i, states);
                }
            }
        }
        if let Err(err) = e.close() {
            assert!(pv.is_dead(), "close failed without a crash: {err}");
        }
        (ops, states)
    };

    // A run without a crash gives the state after every op and the number
    // of I/O operations to crash at.
    let pv = ProcVfs::new(SimVfs::new());
    let (done, states) = scenario(&pv);
    assert_eq!(done, ops);
    let total_io = pv.ops();
    assert_eq!(states.len(), ops + 1);

    let started = Instant::now();
    let mut crash_points: std::collections::BTreeMap<String, u64> = Default::default();
    let mut landed_in_flight = 0;
    for n in 0..total_io + 5 {
        let sim = SimVfs::new();
        let pv = ProcVfs::new(sim.clone());
        pv.die_after(n);
        let (acked, run_states) = scenario(&pv);
        let at = pv.crashed_at();
        let what = format!("crash at I/O #{n} ({}), {acked} ops acknowledged", at.as_deref().unwrap_or("no crash"));
        for (i, s) in run_states.iter().enumerate() {
            assert!(*s == states[i], "{what}: the run diverged from the dry run at op {i}");
        }
        if let Some(a) = &at {
            let verb = a.split(' ').next().unwrap_or("");
            let object = if a.contains("wal-") {
                " wal"
            } else if a.contains("snap") {
                " snapshot"
            } else if a.contains("directory") {
                " directory"
            } else {
                ""
            };
            let kind = format!("{verb}{object}");
            *crash_points.entry(kind).or_default() += 1;
        }
        let pv2 = ProcVfs::new(sim.clone());
        let e = Engine::open(opts(&pv2)).unwrap_or_else(|err| panic!("{what}: reopen: {err}"));
        let actual = engine_state(&e, T0);
        let k = if actual == states[acked].0 {
            acked
        } else if acked < ops && actual == states[acked + 1].0 {
            landed_in_flight += 1;
            acked + 1
        } else {
            panic!("{what}: recovered state is not the acknowledged one: {}", diff(&states[acked].0, &actual));
        };
        assert!(e.last_token() >= states[k].1, "{what}: last_token {} below granted {}", e.last_token(), states[k].1);
        // The recovered directory takes new writes that survive a reopen
        // (and a power loss: they are acknowledged in Always mode).
        let mut m = OpModel { state: actual.clone(), seq: 1_000_000, max_token: e.last_token(), last_forced: false, no_locks: false };
        m.run_records(&e, &mut Rng::new(n), 5);
        drop(e);
        sim.crash();
        let pv3 = ProcVfs::new(sim.clone());
        let e = Engine::open(opts(&pv3)).unwrap_or_else(|err| panic!("{what}: third open: {err}"));
        assert_state(&m.state, &engine_state(&e, T0), &format!("{what}: writes after recovery, then power loss"));
        e.close().unwrap();
    }
    eprintln!(
        "power loss at every I/O: {} crash points in {:.1}s, {landed_in_flight} in-flight ops landed; by kind: {crash_points:?}",
        total_io + 5,
        started.elapsed().as_secs_f64()
    );
    for kind in ["fsync wal", "write wal", "create wal", "remove wal", "fsync directory", "write snapshot", "rename snapshot", "remove snapshot"] {
        assert!(crash_points.contains_key(kind), "no crash at a {kind}: {crash_points:?}");
    }
}

/// A bit flip in the version field of the newest snapshot (bytes 8..12) is
/// damage like any other (the SHA-256 does not match), so PointInTime
/// should fall back to the previous snapshot as it does for a flip in any
/// other byte; only an intact file of an unknown version refuses to open.
#[test]
fn bitflip_version_field_is_damage_not_a_newer_format() {
    let seed = base_seed("bitflip_version_field_is_damage_not_a_newer_format");
    let td = TempDir::new("flip-version");
    let base = td.join("base");
    let (model, _, _, snaps) = snapshot_fixture(&base, seed);
    let newest = snaps.last().unwrap().1.clone();
    let name = file_name(&newest);
    for at in 8..12 {
        let d = td.join("case");
        copy_dir(&base, &d);
        flip(&d.join(&name), at);
        let e = open_at(&d, RecoveryMode::PointInTime)
            .unwrap_or_else(|err| panic!("{name} byte {at} (version field) flipped: PointInTime refused to open: {err}"));
        assert_state(&model.state, &engine_state(&e, T0), "after falling back");
        e.close().unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}

// =====================================================================
// The directory lock and fork
// =====================================================================

/// A process that forks (a pre-fork worker pool, Python's multiprocessing,
/// a daemon) while a handle is open must not leave the data directory
/// locked in the child: after the parent closes the handle, the parent must
/// be able to open the directory again. With flock(2) the lock belongs to
/// the open file description, which the child shares, so the directory
/// stays locked (`Busy`) for as long as the child lives, and after a
/// parent crash a restarted parent cannot open it either. The same race
/// makes any `Command::spawn` in the host process briefly hold the lock
/// (until the child's exec closes the inherited descriptor).
#[test]
fn dir_lock_is_not_inherited_by_forked_child() {
    let td = TempDir::new("fork-lock");
    let dir = td.join("db");
    let e = Engine::open(model_opts(&dir, RecoveryMode::PointInTime)).unwrap();
    e.set(b"k", b"v", 0).unwrap();
    // SAFETY: the child only sleeps and calls _exit (async-signal-safe).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        unsafe {
            libc::sleep(3);
            libc::_exit(0);
        }
    }
    e.close().unwrap();
    let reopened = Engine::open(model_opts(&dir, RecoveryMode::PointInTime));
    let mut status = 0;
    // SAFETY: reaping the child we forked.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, &mut status, 0);
    }
    match reopened {
        Ok(e) => {
            assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
            e.close().unwrap();
        }
        Err(err) => panic!("closed the handle, yet reopening fails while a forked child lives: {err}"),
    }
}

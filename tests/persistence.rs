//! Persistence semantics: each rule of the persistence contract has a test
//! here (the crash, torn-tail, bit-flip and fault-injection suites are in
//! tests/crash.rs).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dbkv::engine::{Clock, LockOutcome, Options, SyncMode};
use dbkv::persistence::vfs::SimVfs;
use dbkv::{Engine, Error};

fn sim_opts(sim: &SimVfs, mode: SyncMode) -> Options {
    Options {
        data_dir: Some(PathBuf::from("/sim/db")),
        sync_mode: mode,
        vfs: Some(Arc::new(sim.clone())),
        ..Options::default()
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dbkv-persist-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn disk_opts(dir: &PathBuf, mode: SyncMode) -> Options {
    Options { data_dir: Some(dir.clone()), sync_mode: mode, ..Options::default() }
}

/// Every live key and value, sorted, for comparing whole states.
fn dump(e: &Engine) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all: Vec<_> = e.scan(b"").collect();
    all.sort();
    all
}

#[test]
fn log_order_equals_apply_order_for_one_hot_key() {
    let sim = SimVfs::new();
    let e = Arc::new(Engine::open(sim_opts(&sim, SyncMode::None)).unwrap());
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                for i in 0..5000u32 {
                    match i % 3 {
                        0 => e.set(b"hot", format!("t{t}-{i}").as_bytes(), 0).unwrap(),
                        1 => drop(e.incr(b"hot", 1)),
                        _ => drop(e.cas(b"hot", b"nope", b"x", 0)),
                    }
                    e.incr(b"counter", 1).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let before = dump(&e);
    e.sync().unwrap();
    sim.crash(); // nothing is lost: everything was synced
    drop(Arc::try_unwrap(e).ok().unwrap());
    let r = Engine::open(sim_opts(&sim, SyncMode::None)).unwrap();
    assert_eq!(dump(&r), before);
    assert_eq!(r.get(b"counter").unwrap().unwrap(), b"20000");
}

#[test]
fn failed_operations_write_no_record() {
    let sim = SimVfs::new();
    let e = Engine::open(sim_opts(&sim, SyncMode::Interval)).unwrap();
    e.set(b"k", b"text", 0).unwrap();
    e.lock(b"lock", b"alice", 10_000).unwrap();
    let before = e.stats().wal_records;
    assert_eq!(e.setnx(b"k", b"v", 0).unwrap(), false);
    assert_eq!(e.incr(b"k", 1), Err(Error::NotInteger));
    assert_eq!(e.unlock(b"lock", b"bob").unwrap(), dbkv::engine::OwnerOutcome::NotOwner);
    assert_eq!(e.lock(b"lock", b"bob", 1000).unwrap(), LockOutcome::Locked);
    assert_eq!(e.cas(b"k", b"other", b"x", 0).unwrap(), dbkv::CasOutcome::Mismatch);
    assert_eq!(e.delete(b"absent").unwrap(), false);
    assert_eq!(e.mdel(&[b"absent".as_slice()]).unwrap(), 0);
    assert_eq!(e.expire(b"absent", 5).unwrap(), false);
    assert!(e.set(b"", b"v", 0).is_err());
    assert_eq!(e.stats().wal_records, before);
    e.set(b"k2", b"v", 0).unwrap();
    assert_eq!(e.stats().wal_records, before + 1);
}

/// Writers on several threads queue into their own WAL lanes; the files
/// must still hold every LSN exactly once, consecutively, across segments
/// (small ones, so batches and rotations cut through the merge), with each
/// thread's writes in its own order.
#[test]
fn concurrent_writers_lanes_merge_into_consecutive_lsns() {
    use dbkv::persistence::record::OwnedRecord;
    use dbkv::persistence::wal::{parse_segment_name, records_with_offsets, Scan};
    let dir = temp_dir("lanes");
    let mut opts = disk_opts(&dir, SyncMode::Interval);
    opts.wal_segment_bytes = 64 << 10;
    opts.snapshot_ops = 0;
    opts.snapshot_interval_secs = 0;
    let e = Engine::open(opts).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let e = &e;
            s.spawn(move || {
                for i in 0..20_000u32 {
                    e.set(format!("t{t}").as_bytes(), &i.to_le_bytes(), 0).unwrap();
                    if i % 1000 == 0 {
                        e.sync().unwrap();
                    }
                }
            });
        }
    });
    e.close().unwrap();
    let mut segs: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|d| {
            let p = d.unwrap().path();
            parse_segment_name(p.file_name()?.to_str()?).map(|lsn| (lsn, p))
        })
        .collect();
    segs.sort();
    assert!(segs.len() > 10, "{} segments", segs.len());
    let (mut next, mut last_of) = (1u64, std::collections::HashMap::new());
    for (first, path) in segs {
        assert_eq!(first, next, "segment {} starts where the previous one ended", path.display());
        for scan in records_with_offsets(&std::fs::read(&path).unwrap()) {
            let Scan::Record { lsn, record, .. } = scan else { panic!("damage in {}", path.display()) };
            assert_eq!(lsn, next, "in {}", path.display());
            next += 1;
            let OwnedRecord::Set { key, value, .. } = record else { panic!("unexpected record {record:?}") };
            let i = u32::from_le_bytes(value[..].try_into().unwrap());
            let prev = last_of.insert(key.clone(), i);
            assert_eq!(prev.map_or(0, |p| p + 1), i, "thread {key:?} wrote in order");
        }
    }
    assert_eq!(next, 80_001);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_full_queue_makes_writers_wait_and_drops_nothing() {
    // 64 KiB values from 4 threads fill their 1 MiB WAL lanes many times over.
    let dir = temp_dir("backpressure");
    let value = vec![7u8; 64 << 10];
    {
        let e = Arc::new(Engine::open(disk_opts(&dir, SyncMode::None)).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (e, value) = (e.clone(), value.clone());
                std::thread::spawn(move || {
                    for i in 0..600 {
                        e.set(format!("t{t}:{i}").as_bytes(), &value, 0).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        Arc::try_unwrap(e).ok().unwrap().close().unwrap();
    }
    let e = Engine::open(disk_opts(&dir, SyncMode::None)).unwrap();
    assert_eq!(e.count(), 2400);
    assert_eq!(e.get(b"t3:599").unwrap().unwrap(), value);
    drop(e);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn increments_during_a_snapshot_are_neither_lost_nor_doubled() {
    let sim = SimVfs::new();
    let mut opts = sim_opts(&sim, SyncMode::Always);
    opts.shards = 16;
    let e = Arc::new(Engine::open(opts.clone()).unwrap());
    for i in 0..2000 {
        e.set(format!("filler{i}").as_bytes(), &[1u8; 100], 0).unwrap();
    }
    let stop = Arc::new(AtomicU64::new(0));
    let counters: Vec<_> = (0..2)
        .map(|t| {
            let (e, stop) = (e.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while stop.load(Ordering::Relaxed) == 0 {
                    e.incr(format!("c{}", n % 8 + t * 8).as_bytes(), 1).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    for _ in 0..5 {
        e.snapshot().unwrap();
    }
    stop.store(1, Ordering::Relaxed);
    let total: u64 = counters.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(e.stats().snapshots_taken, 5);
    // Power loss right after: only the WAL and snapshots remain.
    sim.crash();
    drop(Arc::try_unwrap(e).ok().unwrap());
    let r = Engine::open(opts).unwrap();
    assert!(r.stats().recovery_snapshot_loaded);
    let recovered: i64 = (0..16).map(|i| String::from_utf8(r.get(format!("c{i}").as_bytes()).unwrap().unwrap_or(b"0".to_vec())).unwrap().parse::<i64>().unwrap()).sum();
    assert_eq!(recovered as u64, total, "every acknowledged increment exactly once");
}

#[test]
fn ttls_and_locks_survive_a_restart() {
    let sim = SimVfs::new();
    let (clock, now) = Clock::manual(1_700_000_000_000);
    let mut opts = sim_opts(&sim, SyncMode::Interval);
    opts.clock = clock;
    let e = Engine::open(opts.clone()).unwrap();
    e.set(b"ten-minutes", b"v", 600_000).unwrap();
    e.set(b"one-second", b"v", 1_000).unwrap();
    e.set(b"forever", b"v", 0).unwrap();
    let LockOutcome::Granted(t1) = e.lock(b"lock", b"alice", 60_000).unwrap() else { panic!() };
    let LockOutcome::Granted(t2) = e.lock(b"other-lock", b"carol", 60_000).unwrap() else { panic!() };
    e.close().unwrap();
    now.fetch_add(5_000, Ordering::Relaxed); // five seconds "down"
    let e = Engine::open(opts).unwrap();
    let left = e.ttl(b"ten-minutes").unwrap().unwrap();
    assert_eq!(left, 595_000, "expiry is absolute wall-clock time");
    assert_eq!(e.get(b"one-second").unwrap(), None, "expired while down");
    assert_eq!(e.ttl(b"forever").unwrap(), Some(-1));
    assert_eq!(e.lock(b"lock", b"bob", 1000).unwrap(), LockOutcome::Locked);
    let LockOutcome::Granted(t3) = e.lock(b"lock", b"alice", 60_000).unwrap() else { panic!() };
    assert!(t3 > t1.max(t2), "token after restart {t3} must exceed {t1} and {t2}");
}

#[test]
fn fencing_tokens_never_repeat_across_a_power_loss() {
    // Lock grants are durable before they return, even with SyncMode::None.
    let sim = SimVfs::new();
    let opts = sim_opts(&sim, SyncMode::None);
    let mut seen = Vec::new();
    for round in 0..5 {
        let e = Engine::open(opts.clone()).unwrap();
        for i in 0..20 {
            if let LockOutcome::Granted(t) = e.lock(format!("l{round}-{i}").as_bytes(), b"me", 60_000).unwrap() {
                seen.push(t);
            }
        }
        e.set(b"unsynced", b"x", 0).unwrap();
        sim.crash();
        drop(e);
    }
    assert_eq!(seen.len(), 100);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "tokens strictly increase across crashes: {seen:?}");
}

#[test]
fn a_second_open_of_the_same_directory_is_busy() {
    let dir = temp_dir("busy");
    let first = Engine::open(disk_opts(&dir, SyncMode::Interval)).unwrap();
    match Engine::open(disk_opts(&dir, SyncMode::Interval)) {
        Err(Error::Busy(msg)) => assert!(msg.contains(&dir.display().to_string()), "{msg}"),
        other => panic!("expected Busy, got {:?}", other.map(|_| ())),
    }
    first.close().unwrap();
    Engine::open(disk_opts(&dir, SyncMode::Interval)).unwrap().close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn close_keeps_every_write_in_every_mode() {
    for mode in [SyncMode::None, SyncMode::Interval, SyncMode::Always] {
        let dir = temp_dir(&format!("close-{mode:?}"));
        let e = Engine::open(disk_opts(&dir, mode)).unwrap();
        for i in 0..1000 {
            e.set(format!("k{i}").as_bytes(), format!("v{i}").as_bytes(), 0).unwrap();
        }
        e.incr(b"n", 41).unwrap();
        e.incr(b"n", 1).unwrap();
        e.mset(&[b"a".as_slice(), b"b"], &[b"1".as_slice(), b"2"], 0).unwrap();
        e.mdel(&[b"k0".as_slice(), b"k1"]).unwrap();
        e.expire(b"k2", 3_600_000).unwrap();
        e.persist(b"k2").unwrap();
        e.close().unwrap();
        let r = Engine::open(disk_opts(&dir, mode)).unwrap();
        assert_eq!(r.count(), 1000 - 2 + 1 + 2, "{mode:?}");
        assert_eq!(r.get(b"n").unwrap().unwrap(), b"42");
        assert_eq!(r.get(b"k999").unwrap().unwrap(), b"v999");
        assert_eq!(r.ttl(b"k2").unwrap(), Some(-1));
        assert_eq!(r.stats().recovery_wal_records, 1006);
        r.close().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn sync_makes_interval_writes_durable_against_power_loss() {
    let sim = SimVfs::new();
    let mut opts = sim_opts(&sim, SyncMode::Interval);
    opts.sync_interval_ms = 60_000; // no timer sync during the test
    let e = Engine::open(opts.clone()).unwrap();
    e.set(b"before-sync", b"1", 0).unwrap();
    e.sync().unwrap();
    e.set(b"after-sync", b"2", 0).unwrap();
    sim.crash();
    drop(e);
    let r = Engine::open(opts).unwrap();
    assert_eq!(r.get(b"before-sync").unwrap().unwrap(), b"1");
    assert_eq!(r.get(b"after-sync").unwrap(), None, "not synced, lost with the power");
}

#[test]
fn snapshots_rotate_segments_and_keep_the_newest_three() {
    let dir = temp_dir("rotate");
    let mut opts = disk_opts(&dir, SyncMode::None);
    opts.wal_segment_bytes = 4096;
    let e = Engine::open(opts.clone()).unwrap();
    for round in 0..6 {
        for i in 0..200 {
            e.set(format!("k{i}").as_bytes(), format!("round{round}").as_bytes(), 0).unwrap();
        }
        e.snapshot().unwrap();
    }
    let names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|d| d.unwrap().file_name().into_string().unwrap()).collect();
    let snaps = names.iter().filter(|n| n.ends_with(".snap")).count();
    let segs = names.iter().filter(|n| n.ends_with(".log")).count();
    assert_eq!(snaps, 3, "{names:?}");
    assert!(segs < 20, "old segments are removed once snapshots cover them: {names:?}");
    e.close().unwrap();
    let r = Engine::open(opts).unwrap();
    assert!(r.stats().recovery_snapshot_loaded);
    assert_eq!(r.get(b"k199").unwrap().unwrap(), b"round5");
    assert_eq!(r.count(), 200);
    drop(r);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ops_trigger_takes_snapshots_in_the_background() {
    let dir = temp_dir("ops-trigger");
    let mut opts = disk_opts(&dir, SyncMode::None);
    opts.snapshot_ops = 500;
    let e = Engine::open(opts).unwrap();
    for i in 0..3000 {
        e.set(format!("k{i}").as_bytes(), b"v", 0).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while e.stats().snapshots_taken == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(e.stats().snapshots_taken >= 1);
    drop(e);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn always_mode_group_commits_concurrent_writers() {
    let sim = SimVfs::new();
    let e = Arc::new(Engine::open(sim_opts(&sim, SyncMode::Always)).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || (0..500).for_each(|i| e.set(format!("{t}:{i}").as_bytes(), b"v", 0).unwrap()))
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let st = e.stats();
    assert_eq!(st.durable_lsn, st.last_lsn, "every acknowledged write is durable");
    assert!(st.fsyncs <= 2000, "fsyncs are shared, not one per write: {}", st.fsyncs);
}

#[test]
fn stats_report_recovery_figures() {
    let dir = temp_dir("stats");
    let e = Engine::open(disk_opts(&dir, SyncMode::Interval)).unwrap();
    for i in 0..100 {
        e.set(format!("k{i}").as_bytes(), b"v", 0).unwrap();
    }
    e.snapshot().unwrap();
    for i in 0..10 {
        e.set(format!("late{i}").as_bytes(), b"v", 0).unwrap();
    }
    let st = e.stats();
    assert_eq!(st.keys, 110);
    assert_eq!(st.wal_records, 110);
    assert_eq!(st.snapshots_taken, 1);
    e.close().unwrap();
    let r = Engine::open(disk_opts(&dir, SyncMode::Interval)).unwrap();
    let st = r.stats();
    assert!(st.recovery_snapshot_loaded);
    assert_eq!(st.recovery_snapshot_entries, 100);
    assert_eq!(st.recovery_wal_records, 10);
    assert_eq!(st.recovery_corrupt_records, 0);
    assert_eq!(st.last_lsn, 110, "LSNs continue after a restart");
    drop(r);
    std::fs::remove_dir_all(&dir).unwrap();
}

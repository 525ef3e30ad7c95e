//! Persistence benchmarks, each measured beside its baseline in the same run
//! (the machines are shared and noisy, so ratios matter more than absolutes):
//! WAL-backed set/incr vs in-memory, SyncMode::Always vs the disk's raw
//! fdatasync rate, group commit with 4 threads, reopen time from the WAL and
//! from a snapshot, snapshot time, and writer throughput during a snapshot.
//!
//! `cargo bench --bench persist`; DBKV_BENCH_QUICK=1 shrinks every size.

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbkv::engine::{Options, SyncMode};
use dbkv::Engine;

mod common;
use common::{median, quick, Rng};

const RUNS: usize = 5;


fn scale(n: usize) -> usize {
    if quick() {
        (n / 20).max(1000)
    } else {
        n
    }
}



/// `n` distinct 53-byte keys.
fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("celery-task-meta-{:036}", i as u64 * 2_654_435_761).into_bytes()).collect()
}

fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut r = Rng(seed);
    for i in (1..n).rev() {
        idx.swap(i, (r.next() % (i as u64 + 1)) as usize);
    }
    idx
}

fn bench_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.parent().unwrap()).unwrap();
    d
}

fn open(dir: Option<&Path>, mode: SyncMode) -> Engine {
    Engine::open(Options {
        data_dir: dir.map(Path::to_path_buf),
        sync_mode: mode,
        // Benchmarks of the write path alone: snapshots are measured apart.
        snapshot_interval_secs: 0,
        snapshot_ops: 0,
        ..Options::default()
    })
    .unwrap()
}

fn ops_per_sec(n: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    n as f64 / t.elapsed().as_secs_f64()
}

/// Sets of every key in random order; a fresh engine per run.
fn set_rate(ks: &[Vec<u8>], order: &[usize], dir: Option<&Path>, mode: SyncMode) -> f64 {
    let value = [0x5au8; 200];
    let e = open(dir, mode);
    let rate = ops_per_sec(order.len(), || {
        for &i in order {
            e.set(&ks[i], &value, 0).unwrap();
        }
    });
    e.close().unwrap();
    rate
}

/// The same sets split over `threads` writer threads (each its own share
/// of the order), into one engine: how the WAL path scales with writers.
fn set_rate_threads(ks: &[Vec<u8>], order: &[usize], dir: Option<&Path>, threads: usize) -> f64 {
    let value = [0x5au8; 200];
    let e = open(dir, SyncMode::Interval);
    let share = order.len().div_ceil(threads);
    let rate = ops_per_sec(order.len(), || {
        std::thread::scope(|s| {
            for part in order.chunks(share) {
                let e = &e;
                s.spawn(move || {
                    for &i in part {
                        e.set(&ks[i], &value, 0).unwrap();
                    }
                });
            }
        });
    });
    e.close().unwrap();
    rate
}

fn incr_rate(n: usize, dir: Option<&Path>, mode: SyncMode) -> f64 {
    let counters = keys(1000);
    let e = open(dir, mode);
    let mut r = Rng(7);
    let order: Vec<usize> = (0..n).map(|_| (r.next() % 1000) as usize).collect();
    let rate = ops_per_sec(n, || {
        for &i in &order {
            black_box(e.incr(&counters[i], 1).unwrap());
        }
    });
    e.close().unwrap();
    rate
}

fn row(name: &str, wal: f64, base: f64, base_name: &str, target: &str) {
    println!("{name:<44} {:>12.0} {:>12.0}  {:>6.1}%  ({base_name}; target {target})", wal, base, 100.0 * wal / base);
}

fn write_path() {
    println!("== WAL write path (SyncMode::Interval, 100 ms) vs in-memory, ops/s, median of {RUNS} ==");
    println!("{:<44} {:>12} {:>12}  {:>7}", "workload", "with WAL", "in-memory", "ratio");
    for (label, n, total) in [("set, 1M keys x 200 B, random order", scale(1_000_000), scale(1_000_000)), ("set, hot 10K keys", 10_000, scale(2_000_000))] {
        let ks = keys(n);
        let order: Vec<usize> = shuffled(n, 1).into_iter().cycle().take(total).collect();
        let dir = bench_dir("set");
        let (mut wal, mut mem) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            mem.push(set_rate(&ks, &order, None, SyncMode::Interval));
            wal.push(set_rate(&ks, &order, Some(&dir), SyncMode::Interval));
            let _ = std::fs::remove_dir_all(&dir);
        }
        row(label, median(wal), median(mem), "in-memory", ">= 75%");
    }
    {
        let n = scale(1_000_000);
        let ks = keys(n);
        let order = shuffled(n, 3);
        let dir = bench_dir("set-threads");
        let (mut two, mut one) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            one.push(set_rate_threads(&ks, &order, Some(&dir), 1));
            let _ = std::fs::remove_dir_all(&dir);
            two.push(set_rate_threads(&ks, &order, Some(&dir), 2));
            let _ = std::fs::remove_dir_all(&dir);
        }
        row("set with WAL, 1M keys, 2 threads", median(two), median(one), "1 thread", ">= 160%");
    }
    let n = scale(5_000_000);
    let dir = bench_dir("incr");
    let (mut wal, mut mem) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        mem.push(incr_rate(n, None, SyncMode::Interval));
        wal.push(incr_rate(n, Some(&dir), SyncMode::Interval));
        let _ = std::fs::remove_dir_all(&dir);
    }
    row("incr, 1,000 hot counters", median(wal), median(mem), "in-memory", ">= 5M ops/s with WAL");
    let bw = median((0..3).map(|_| page_cache_bandwidth(&bench_dir("bandwidth"))).collect());
    println!(
        "(page-cache write bandwidth here: {:.0} MB/s, i.e. at most {:.1}M set records/s of {SET_RECORD_BYTES} B: the WAL's ceiling)",
        bw / 1e6,
        bw / SET_RECORD_BYTES as f64 / 1e6
    );
}

/// Bytes one WAL record of a set of a 53-byte key and a 200-byte value takes.
const SET_RECORD_BYTES: usize = 8 + 8 + 1 + 8 + 4 + 53 + 4 + 200;

/// How fast the kernel takes sequential writes into its page cache (no
/// fsync), in 256 KiB writes as the WAL thread does.
fn page_cache_bandwidth(dir: &Path) -> f64 {
    std::fs::create_dir_all(dir).unwrap();
    let mut f = std::fs::File::create(dir.join("bw")).unwrap();
    let chunk = vec![0x5au8; 256 << 10];
    let total = if quick() { 64 << 20 } else { 512 << 20 };
    let t = Instant::now();
    for _ in 0..total / chunk.len() {
        f.write_all(&chunk).unwrap();
    }
    let rate = total as f64 / t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(dir);
    rate
}

/// The disk's own rate for "append a small record, fdatasync".
fn raw_fdatasync_rate(dir: &Path, dur: Duration) -> f64 {
    std::fs::create_dir_all(dir).unwrap();
    let mut f = std::fs::File::create(dir.join("raw")).unwrap();
    let rec = [1u8; 96];
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed() < dur {
        f.write_all(&rec).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn always_rate(dir: &Path, threads: usize, dur: Duration) -> f64 {
    let e = Arc::new(open(Some(dir), SyncMode::Always));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|id| {
            let (e, stop, done) = (e.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let ks = keys(1000);
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    e.set(&ks[(i * 7 + id) % 1000], &[1u8; 40], 0).unwrap();
                    i += 1;
                }
                done.fetch_add(i as u64, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(dur);
    stop.store(true, Ordering::Relaxed);
    handles.into_iter().for_each(|h| h.join().unwrap());
    let rate = done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    let st = e.stats();
    if std::env::var_os("DBKV_BENCH_VERBOSE").is_some() {
        println!("  {threads} thread(s): {:.2} records per fsync", st.wal_records as f64 / st.fsyncs.max(1) as f64);
    }
    Arc::try_unwrap(e).ok().unwrap().close().unwrap();
    rate
}

fn always_mode() {
    println!("\n== SyncMode::Always: acknowledged-durable writes/s, median of {RUNS} ==");
    let dur = Duration::from_millis(if quick() { 300 } else { 1500 });
    let dir = bench_dir("always");
    let (mut raw, mut one, mut four) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        raw.push(raw_fdatasync_rate(&dir.join("raw"), dur));
        one.push(always_rate(&dir.join("one"), 1, dur));
        four.push(always_rate(&dir.join("four"), 4, dur));
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (raw, one, four) = (median(raw), median(one), median(four));
    println!("raw write+fdatasync loop          {raw:>10.0}/s");
    println!("dbkv set, 1 thread                {one:>10.0}/s  {:>6.1}% of raw (target >= 90%)", 100.0 * one / raw);
    println!("dbkv set, 4 threads               {four:>10.0}/s  {:>6.2}x 1 thread (target >= 3x)", four / one);
}

fn fill(e: &Engine, n: usize) {
    let ks = keys(n);
    let value = [0x5au8; 200];
    for k in &ks {
        e.set(k, &value, 0).unwrap();
    }
}

fn reopen_times() {
    let n = scale(2_000_000);
    println!("\n== reopen after {n} keys (53 B keys, 200 B values), seconds, median of {RUNS} ==");
    let dir = bench_dir("reopen");
    let e = open(Some(&dir), SyncMode::None);
    fill(&e, n);
    e.close().unwrap();
    // Each reopen in a fresh process, as after a crash or restart: in one
    // process the previous engine's freed memory (glibc's heap, or the
    // arena's chunks) would make each reopen after the first unlike it.
    let reopen = |dir: &Path| {
        let out = std::process::Command::new(std::env::current_exe().unwrap()).arg(REOPEN_CHILD).arg(dir).arg(n.to_string()).output().unwrap();
        assert!(out.status.success(), "reopen child: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().unwrap()
    };
    let from_wal = median((0..RUNS).map(|_| reopen(&dir)).collect());
    let wal_bytes = dir_bytes(&dir, ".log");
    let e = open(Some(&dir), SyncMode::None);
    let t = Instant::now();
    e.snapshot().unwrap();
    let snap_secs = t.elapsed().as_secs_f64();
    e.close().unwrap();
    let from_snap = median((0..RUNS).map(|_| reopen(&dir)).collect());
    let snap_bytes = dir_bytes(&dir, ".snap");
    println!("from the WAL alone                {from_wal:>8.3} s (target <= 0.5 s)  {:.1}M records/s", n as f64 / from_wal / 1e6);
    println!("from a snapshot                   {from_snap:>8.3} s (target <= 0.3 s)  {:.1}M entries/s", n as f64 / from_snap / 1e6);
    println!("(snapshot of {n} keys took {snap_secs:.3} s)");
    reopen_limits(&dir, wal_bytes, snap_bytes);
    let _ = std::fs::remove_dir_all(&dir);
}

const REOPEN_CHILD: &str = "reopen-child";

/// One timed open of `dir` (which must hold `n` keys), in this fresh
/// process; prints the seconds.
fn reopen_child(dir: &Path, n: usize) {
    let t = Instant::now();
    let e = open(Some(dir), SyncMode::None);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(e.count() as usize, n);
    println!("{secs}");
    e.close().unwrap();
}

/// Bytes of the files in `dir` whose names end in `suffix`.
fn dir_bytes(dir: &Path, suffix: &str) -> u64 {
    std::fs::read_dir(dir).unwrap().flatten().filter(|f| f.file_name().to_string_lossy().ends_with(suffix)).map(|f| f.metadata().unwrap().len()).sum()
}

/// What bounds reopen here, each on one core: reading the files from the
/// page cache, and checksumming at the rates of CRC-32 (WAL records),
/// CRC-32C (snapshot sections, version 5) and SHA-256 (the whole snapshot
/// up to version 4).
fn reopen_limits(dir: &Path, wal_bytes: u64, snap_bytes: u64) {
    use std::io::Read;
    let read_rate = median(
        (0..3)
            .map(|_| {
                let mut buf = vec![0u8; 1 << 20];
                let (t, mut total) = (Instant::now(), 0usize);
                for f in std::fs::read_dir(dir).unwrap().flatten() {
                    let mut file = std::fs::File::open(f.path()).unwrap();
                    while let Ok(k @ 1..) = file.read(&mut buf) {
                        total += k;
                        black_box(&buf);
                    }
                }
                total as f64 / t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    let data: Vec<u8> = (0..64usize << 20).map(|i| (i * 31 + i / 4093) as u8).collect();
    let rate = |f: &dyn Fn(&[u8]) -> u32| median((0..3).map(|_| {
        let t = Instant::now();
        black_box(f(&data));
        data.len() as f64 / t.elapsed().as_secs_f64()
    }).collect());
    let crc32 = rate(&|d| crc32fast::hash(d));
    let crc32c = rate(&|d| crc32c::crc32c(d));
    let sha = rate(&|d| {
        use sha2::Digest;
        sha2::Sha256::digest(d)[0] as u32
    });
    println!(
        "(limits here, one core: page-cache read {:.1} GB/s, CRC-32 {:.1} GB/s, CRC-32C {:.1} GB/s, SHA-256 {:.1} GB/s; WAL {} MB, snapshot {} MB)",
        read_rate / 1e9,
        crc32 / 1e9,
        crc32c / 1e9,
        sha / 1e9,
        wal_bytes >> 20,
        snap_bytes >> 20
    );
}

fn snapshot_of_ten_million() {
    let n = scale(10_000_000);
    println!("\n== snapshot of {n} keys (53 B keys, 20 B values), and writers during it ==");
    let dir = bench_dir("snap10m");
    let e = Arc::new(open(Some(&dir), SyncMode::None));
    let ks = keys(n);
    for k in &ks {
        e.set(k, &[7u8; 20], 0).unwrap();
    }
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        e.snapshot().unwrap();
        times.push(t.elapsed().as_secs_f64());
    }
    println!("snapshot                          {:>8.3} s median of 3 (target <= 3 s)", median(times));

    // One writer thread: its rate with no snapshot, then while snapshots run.
    let writer_rate = |during_snapshot: bool| {
        let stop = Arc::new(AtomicBool::new(false));
        let (e2, stop2) = (e.clone(), stop.clone());
        let writer = std::thread::spawn(move || {
            let ks = keys(10_000);
            let t = Instant::now();
            let mut i = 0usize;
            while !stop2.load(Ordering::Relaxed) {
                e2.set(&ks[i % 10_000], &[1u8; 200], 0).unwrap();
                i += 1;
            }
            i as f64 / t.elapsed().as_secs_f64()
        });
        if during_snapshot {
            e.snapshot().unwrap();
        } else {
            std::thread::sleep(Duration::from_secs_f64(median(vec![0.5, 1.0, 1.5])));
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap()
    };
    let idle = median((0..3).map(|_| writer_rate(false)).collect());
    let busy = median((0..3).map(|_| writer_rate(true)).collect());
    println!("writer alone                      {idle:>10.0} sets/s");
    println!("writer during snapshot            {busy:>10.0} sets/s  {:>6.1}% (target >= 50%)", 100.0 * busy / idle);
    Arc::try_unwrap(e).ok().unwrap().close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// One run of one write workload (`one-run:mem-hot`, `one-run:wal-hot`,
/// `one-run:wal-1m`, `one-run:wal-1m-2t`), for instruction counts under
/// `valgrind --tool=callgrind --separate-threads=yes`, which are repeatable
/// on a noisy machine where timings are not.
fn one_run(mode: &str) {
    let dir = bench_dir("one-run");
    let (n, total) = if mode.ends_with("hot") { (10_000, 200_000) } else { (200_000, 200_000) };
    let ks = keys(n);
    let order: Vec<usize> = shuffled(n, 1).into_iter().cycle().take(total).collect();
    let rate = match mode {
        "mem-hot" => set_rate(&ks, &order, None, SyncMode::Interval),
        "wal-hot" | "wal-1m" => set_rate(&ks, &order, Some(&dir), SyncMode::Interval),
        "wal-1m-2t" => set_rate_threads(&ks, &order, Some(&dir), 2),
        other => panic!("unknown one-run mode {other}"),
    };
    println!("{mode}: {total} sets, {rate:.0}/s");
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    if let Some(mode) = std::env::args().nth(1).and_then(|a| a.strip_prefix("one-run:").map(str::to_owned)) {
        one_run(&mode);
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(REOPEN_CHILD) {
        reopen_child(Path::new(&args[2]), args[3].parse().unwrap());
        return;
    }
    let only = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let want = |name: &str| only.as_deref().map_or(true, |o| name.contains(o));
    println!("dbkv persistence benchmark{}", if quick() { " (quick sizes)" } else { "" });
    if want("write") {
        write_path();
    }
    if want("always") {
        always_mode();
    }
    if want("reopen") {
        reopen_times();
    }
    if want("snapshot") {
        snapshot_of_ten_million();
    }
}

//! In-memory engine benchmark through the C ABI, each workload measured
//! beside a yardstick in the same run: a plain
//! `std::collections::HashMap<Box<[u8]>, Box<[u8]>>` with a fast hasher,
//! doing the same inserts and the same copying gets (the machines are shared
//! and noisy, so ratios matter more than absolutes).
//!
//! Workloads (single thread, 53-byte keys, 200-byte values, keys visited in
//! a pre-generated random order):
//! - 1M keys: set (insert into an empty handle), set (overwrite), get, get
//!   as a dependent chain (each key chosen from the last value read, so
//!   lookups cannot overlap: latency, not throughput), 90/10 get/set;
//! - a hot set of 10K keys: get, set, 90/10 get/set;
//! - incr on 1,000 counters;
//! - memory: RSS growth per entry for 1M inserts minus key + value bytes,
//!   measured in a child process per store so freed memory of one
//!   measurement cannot hide the next one's growth.
//!
//! `cargo bench --bench engine`; DBKV_BENCH_QUICK=1 shrinks every size.
//! For profiling: DBKV_BENCH_PROFILE=dbkv|yard|yardlock[-dep] loads 1M
//! entries and runs only gets for 10 s (`yardlock` = the yardstick behind an
//! RwLock; `-dep` = dependent chain; DBKV_BENCH_PROFILE_N=<n> entries
//! instead of 1M); DBKV_BENCH_SHARDS=<n> sets dbkv's shard count.

use std::hash::{BuildHasher, Hasher};
use std::hint::black_box;
use std::process::Command;
use std::ptr::{null, null_mut};
use std::time::Instant;

mod common;
use common::{median, quick, Rng};

use ::dbkv::ffi::{
    dbkv as DbHandle, dbkv_close, dbkv_get_into, dbkv_incr, dbkv_open, dbkv_options, dbkv_options_free, dbkv_options_new,
    dbkv_options_set_shards, dbkv_set, DBKV_OK,
};

const KEY_LEN: usize = 53;
const VAL_LEN: usize = 200;
const COUNTERS: usize = 1_000;


fn runs() -> usize {
    if quick() { 3 } else { 5 }
}

fn big_n() -> usize {
    if quick() { 100_000 } else { 1_000_000 }
}

fn hot_n() -> usize {
    10_000
}

/// Operations per hot-set and counter measurement (cycling over the set).
fn hot_ops() -> usize {
    if quick() { 500_000 } else { 4_000_000 }
}



/// `n` distinct 53-byte keys in one flat buffer (key i at `i * 53`).
struct Keys {
    buf: Vec<u8>,
}

impl Keys {
    fn new(n: usize, tag: &str) -> Keys {
        let mut buf = Vec::with_capacity(n * KEY_LEN);
        for i in 0..n {
            let mixed = (i as u64 ^ 0x5555).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let k = format!("{tag}:{mixed:016x}:{i:0width$}", width = KEY_LEN - tag.len() - 18);
            assert_eq!(k.len(), KEY_LEN);
            buf.extend_from_slice(k.as_bytes());
        }
        Keys { buf }
    }
    #[inline(always)]
    fn get(&self, i: u32) -> &[u8] {
        let at = i as usize * KEY_LEN;
        // SAFETY: every index used is < n (generated below n).
        unsafe { self.buf.get_unchecked(at..at + KEY_LEN) }
    }
}

fn permutation(n: usize, seed: u64) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let mut r = Rng(seed);
    for i in (1..n).rev() {
        idx.swap(i, r.below(i + 1));
    }
    idx
}

/// `ops` uniform random indices below `n`.
fn random_indices(n: usize, ops: usize, seed: u64) -> Vec<u32> {
    let mut r = Rng(seed);
    (0..ops).map(|_| r.below(n) as u32).collect()
}

const SET_BIT: u32 = 1 << 31;

/// A 90/10 get/set sequence: the top bit marks a set.
fn mix(indices: &[u32], seed: u64) -> Vec<u32> {
    let mut r = Rng(seed);
    indices.iter().map(|&i| if r.below(10) == 0 { i | SET_BIT } else { i }).collect()
}

// ---------------------------------------------------------------------------
// The two stores.
// ---------------------------------------------------------------------------

trait Store {
    fn new() -> Self;
    fn set(&mut self, k: &[u8], v: &[u8]);
    /// Stores a key known to be new (the yardstick skips its lookup).
    #[inline(always)]
    fn insert(&mut self, k: &[u8], v: &[u8]) {
        self.set(k, v)
    }
    /// Copies the value into `buf`; returns its length.
    fn get_into(&mut self, k: &[u8], buf: &mut [u8]) -> usize;
    fn incr(&mut self, k: &[u8], d: i64) -> i64;
}

/// dbkv through its C ABI, in memory, default options.
struct Dbkv(*mut DbHandle);

impl Store for Dbkv {
    fn new() -> Dbkv {
        let mut db = null_mut();
        // DBKV_BENCH_SHARDS=<n> overrides the shard count (for experiments).
        let shards: Option<u32> = std::env::var("DBKV_BENCH_SHARDS").ok().and_then(|s| s.parse().ok());
        // SAFETY: the options object is created, used and freed here; NULL
        // options = defaults; `db` receives the handle.
        unsafe {
            let mut opts: *mut dbkv_options = null_mut();
            if let Some(n) = shards {
                assert_eq!(dbkv_options_new(&mut opts), DBKV_OK);
                assert_eq!(dbkv_options_set_shards(opts, n), DBKV_OK);
            }
            assert_eq!(dbkv_open(if opts.is_null() { null() } else { opts }, &mut db), DBKV_OK);
            dbkv_options_free(opts);
        }
        Dbkv(db)
    }
    #[inline(always)]
    fn set(&mut self, k: &[u8], v: &[u8]) {
        let rc = unsafe { dbkv_set(self.0, k.as_ptr(), k.len(), v.as_ptr(), v.len(), 0) };
        if rc != DBKV_OK {
            panic!("dbkv_set: {rc}");
        }
    }
    #[inline(always)]
    fn get_into(&mut self, k: &[u8], buf: &mut [u8]) -> usize {
        let mut len = 0usize;
        let rc = unsafe { dbkv_get_into(self.0, k.as_ptr(), k.len(), buf.as_mut_ptr(), buf.len(), &mut len) };
        if rc != DBKV_OK {
            panic!("dbkv_get_into: {rc}");
        }
        len
    }
    #[inline(always)]
    fn incr(&mut self, k: &[u8], d: i64) -> i64 {
        let mut v = 0i64;
        let rc = unsafe { dbkv_incr(self.0, k.as_ptr(), k.len(), d, &mut v) };
        if rc != DBKV_OK {
            panic!("dbkv_incr: {rc}");
        }
        v
    }
}

impl Drop for Dbkv {
    fn drop(&mut self) {
        // SAFETY: the handle came from dbkv_open and is closed once.
        unsafe { dbkv_close(self.0) };
    }
}

/// dbkv with a one-hour TTL on every key (the memory row with TTLs).
struct DbkvTtl(Dbkv);

impl Store for DbkvTtl {
    fn new() -> DbkvTtl {
        DbkvTtl(Dbkv::new())
    }
    fn set(&mut self, k: &[u8], v: &[u8]) {
        // SAFETY: the handle is open; the slices are valid for the call.
        let rc = unsafe { dbkv_set(self.0 .0, k.as_ptr(), k.len(), v.as_ptr(), v.len(), 3_600_000) };
        assert_eq!(rc, DBKV_OK, "dbkv_set");
    }
    fn get_into(&mut self, k: &[u8], buf: &mut [u8]) -> usize {
        self.0.get_into(k, buf)
    }
    fn incr(&mut self, k: &[u8], d: i64) -> i64 {
        self.0.incr(k, d)
    }
}

/// FxHash-style: one rotate-xor-multiply per 8 bytes, plus a folded
/// multiply at the end so the low bits hashbrown indexes with are mixed.
#[derive(Clone, Copy, Default)]
struct FastBuild;

struct FastHasher(u64);

const FX_K: u64 = 0xf135_7aea_2e62_a9c5;

impl FastHasher {
    #[inline(always)]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(26) ^ w).wrapping_mul(FX_K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut t = [0u8; 8];
            t[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(t));
        }
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        let r = (self.0 as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15u128);
        (r as u64) ^ ((r >> 64) as u64)
    }
}

impl BuildHasher for FastBuild {
    type Hasher = FastHasher;
    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}

/// The yardstick.
struct Yard {
    map: std::collections::HashMap<Box<[u8]>, Box<[u8]>, FastBuild>,
}

impl Store for Yard {
    fn new() -> Yard {
        Yard { map: std::collections::HashMap::with_hasher(FastBuild) }
    }
    #[inline(always)]
    fn set(&mut self, k: &[u8], v: &[u8]) {
        match self.map.get_mut(k) {
            // Like dbkv: overwrite in place when the size is unchanged.
            Some(old) if old.len() == v.len() => old.copy_from_slice(v),
            Some(old) => *old = v.into(),
            None => {
                self.map.insert(k.into(), v.into());
            }
        }
    }
    #[inline(always)]
    fn insert(&mut self, k: &[u8], v: &[u8]) {
        self.map.insert(k.into(), v.into());
    }
    #[inline(always)]
    fn get_into(&mut self, k: &[u8], buf: &mut [u8]) -> usize {
        let v = self.map.get(k).expect("present");
        buf[..v.len()].copy_from_slice(v);
        v.len()
    }
    #[inline(always)]
    fn incr(&mut self, k: &[u8], d: i64) -> i64 {
        // The same contract as dbkv's: canonical ASCII in, ASCII out.
        let v = self.map.entry(k.into()).or_insert_with(|| b"0"[..].into());
        let n: i64 = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).expect("integer");
        let n = n.checked_add(d).expect("no overflow");
        *v = n.to_string().into_bytes().into_boxed_slice();
        n
    }
}

/// The yardstick behind one `RwLock`, locked per operation like a shard:
/// shows what the lock's two atomic read-modify-writes per call cost (they
/// also stop the CPU from overlapping one lookup's cache misses with the next).
struct YardLocked(std::sync::RwLock<Yard>);

impl Store for YardLocked {
    fn new() -> YardLocked {
        YardLocked(std::sync::RwLock::new(Yard::new()))
    }
    #[inline(always)]
    fn set(&mut self, k: &[u8], v: &[u8]) {
        self.0.write().unwrap().set(k, v)
    }
    #[inline(always)]
    fn get_into(&mut self, k: &[u8], buf: &mut [u8]) -> usize {
        let g = self.0.read().unwrap();
        let v = g.map.get(k).expect("present");
        buf[..v.len()].copy_from_slice(v);
        v.len()
    }
    #[inline(always)]
    fn incr(&mut self, k: &[u8], d: i64) -> i64 {
        self.0.write().unwrap().incr(k, d)
    }
}

/// The ideal counter: a map to i64, no text at all.
struct YardInt {
    map: std::collections::HashMap<Box<[u8]>, i64, FastBuild>,
}

impl YardInt {
    #[inline(always)]
    fn incr(&mut self, k: &[u8], d: i64) -> i64 {
        match self.map.get_mut(k) {
            Some(n) => {
                *n = n.checked_add(d).expect("no overflow");
                *n
            }
            None => {
                self.map.insert(k.into(), d);
                d
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Workloads.
// ---------------------------------------------------------------------------

struct Data {
    big: Keys,
    big_insert: Vec<u32>,
    big_read: Vec<u32>,
    big_mix: Vec<u32>,
    hot: Keys,
    hot_read: Vec<u32>,
    hot_mix: Vec<u32>,
    ctr: Keys,
    ctr_ops: Vec<u32>,
    value: Vec<u8>,
    value2: Vec<u8>,
}

impl Data {
    fn new() -> Data {
        let n = big_n();
        let big_read = permutation(n, 2);
        Data {
            big: Keys::new(n, "user"),
            big_insert: permutation(n, 1),
            big_mix: mix(&big_read, 3),
            big_read,
            hot: Keys::new(hot_n(), "hot"),
            hot_read: random_indices(hot_n(), hot_ops(), 4),
            hot_mix: mix(&random_indices(hot_n(), hot_ops(), 5), 6),
            ctr: Keys::new(COUNTERS, "ctr"),
            ctr_ops: random_indices(COUNTERS, hot_ops(), 7),
            value: (0..VAL_LEN).map(|i| b'a' + (i % 26) as u8).collect(),
            value2: (0..VAL_LEN).map(|i| b'A' + (i % 26) as u8).collect(),
        }
    }
}

/// Runs `f` `runs()` times; returns the median rate in ops/s.
fn measure(ops: usize, mut f: impl FnMut()) -> f64 {
    let rates: Vec<f64> = (0..runs())
        .map(|_| {
            let t = Instant::now();
            f();
            ops as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    median(rates)
}

#[inline(always)]
fn gets<S: Store>(s: &mut S, keys: &Keys, order: &[u32], buf: &mut [u8]) {
    let mut total = 0usize;
    for &i in order {
        total += s.get_into(keys.get(i), buf);
    }
    black_box(total);
}

/// Gets where each key's index depends on the previous value read, so the
/// CPU cannot overlap one lookup's cache misses with the next: the latency
/// of a lookup rather than the throughput of independent ones. (`carry`
/// stays far below 2^40, so the xor is always 0, but the compiler cannot
/// know that.)
#[inline(always)]
fn dependent_gets<S: Store>(s: &mut S, keys: &Keys, order: &[u32], buf: &mut [u8]) {
    let mut carry = 0usize;
    for &i in order {
        let idx = i ^ (carry >> 40) as u32;
        carry += s.get_into(keys.get(idx), buf) + buf[0] as usize;
    }
    black_box(carry);
}

#[inline(always)]
fn sets<S: Store>(s: &mut S, keys: &Keys, order: &[u32], v: &[u8]) {
    for &i in order {
        s.set(keys.get(i), black_box(v));
    }
}

#[inline(always)]
fn inserts<S: Store>(s: &mut S, keys: &Keys, order: &[u32], v: &[u8]) {
    for &i in order {
        s.insert(keys.get(i), black_box(v));
    }
}

#[inline(always)]
fn mixed<S: Store>(s: &mut S, keys: &Keys, ops: &[u32], v: &[u8], buf: &mut [u8]) {
    let mut total = 0usize;
    for &op in ops {
        let k = keys.get(op & !SET_BIT);
        if op & SET_BIT != 0 {
            s.set(k, black_box(v));
        } else {
            total += s.get_into(k, buf);
        }
    }
    black_box(total);
}

/// Every workload on one store; rates in a fixed order (see `ROWS`).
fn run_all<S: Store>(d: &Data) -> Vec<f64> {
    let mut buf = vec![0u8; 256];
    let mut out = Vec::new();
    let n = d.big_insert.len();

    // 1M: inserts into a fresh store each run (creation and teardown untimed).
    let mut rates = Vec::new();
    let mut store = None;
    for _ in 0..runs() {
        drop(store.take());
        let mut s = S::new();
        let t = Instant::now();
        inserts(&mut s, &d.big, &d.big_insert, &d.value);
        rates.push(n as f64 / t.elapsed().as_secs_f64());
        store = Some(s);
    }
    out.push(median(rates));
    let mut s = store.unwrap();
    out.push(measure(n, || sets(&mut s, &d.big, &d.big_read, black_box(&d.value2))));
    out.push(measure(n, || gets(&mut s, &d.big, &d.big_read, &mut buf)));
    out.push(measure(n, || dependent_gets(&mut s, &d.big, &d.big_read, &mut buf)));
    out.push(measure(n, || mixed(&mut s, &d.big, &d.big_mix, &d.value, &mut buf)));
    drop(s);

    // Hot set of 10K.
    let mut s = S::new();
    for i in 0..hot_n() as u32 {
        s.set(d.hot.get(i), &d.value);
    }
    out.push(measure(d.hot_read.len(), || gets(&mut s, &d.hot, &d.hot_read, &mut buf)));
    out.push(measure(d.hot_read.len(), || sets(&mut s, &d.hot, &d.hot_read, &d.value2)));
    out.push(measure(d.hot_mix.len(), || mixed(&mut s, &d.hot, &d.hot_mix, &d.value, &mut buf)));
    drop(s);

    // Counters.
    let mut s = S::new();
    let ops = &d.ctr_ops;
    out.push(measure(ops.len(), || {
        let mut last = 0;
        for &i in ops {
            last = s.incr(d.ctr.get(i), 1);
        }
        black_box(last);
    }));
    out
}

const ROWS: &[&str] = &[
    "set 1M (insert)",
    "set 1M (overwrite)",
    "get 1M",
    "get 1M (dependent chain)",
    "90/10 get/set 1M",
    "get hot 10K",
    "set hot 10K",
    "90/10 get/set hot 10K",
    "incr 1,000 counters",
];

// ---------------------------------------------------------------------------
// Memory, in a child process per store.
// ---------------------------------------------------------------------------

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// In the child: inserts `big_n()` entries into a fresh store and prints
/// the RSS growth per entry beyond the key and value bytes.
fn memory_child<S: Store>() {
    let n = big_n();
    let keys = Keys::new(n, "user");
    let order = permutation(n, 1);
    let value = vec![b'v'; VAL_LEN];
    let mut s = S::new();
    let before = rss_bytes();
    inserts(&mut s, &keys, &order, &value);
    let after = rss_bytes();
    let overhead = (after as f64 - before as f64 - (n * (KEY_LEN + VAL_LEN)) as f64) / n as f64;
    println!("{overhead:.1}");
    black_box(&s);
}

fn memory_overhead(which: &str) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe).env("DBKV_BENCH_MEM_CHILD", which).output().ok()?;
    if !out.status.success() {
        eprintln!("memory child {which} failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn profile_gets(which: &str) {
    fn go<S: Store>(dependent: bool) {
        let n = std::env::var("DBKV_BENCH_PROFILE_N").ok().and_then(|s| s.parse().ok()).unwrap_or_else(big_n);
        let keys = Keys::new(n, "user");
        let value = vec![b'v'; VAL_LEN];
        let mut s = S::new();
        sets(&mut s, &keys, &permutation(n, 1), &value);
        let order = permutation(n, 2);
        let mut buf = vec![0u8; 256];
        let t = Instant::now();
        let mut done = 0;
        while t.elapsed().as_secs() < 10 {
            if dependent {
                dependent_gets(&mut s, &keys, &order, &mut buf);
            } else {
                gets(&mut s, &keys, &order, &mut buf);
            }
            done += n;
        }
        println!("{:.0} gets/s", done as f64 / t.elapsed().as_secs_f64());
    }
    let dependent = which.ends_with("-dep");
    match which.trim_end_matches("-dep") {
        "yard" => go::<Yard>(dependent),
        "yardlock" => go::<YardLocked>(dependent),
        _ => go::<Dbkv>(dependent),
    }
}

// ---------------------------------------------------------------------------

fn main() {
    match std::env::var("DBKV_BENCH_MEM_CHILD").as_deref() {
        Ok("dbkv") => return memory_child::<Dbkv>(),
        Ok("dbkv-ttl") => return memory_child::<DbkvTtl>(),
        Ok("yard") => return memory_child::<Yard>(),
        _ => {}
    }
    // DBKV_BENCH_PROFILE=dbkv|yard|yardlock[-dep]: load 1M entries, then only run gets for
    // ~10 s, for `perf record` (the per-workload numbers are printed above).
    if let Ok(which) = std::env::var("DBKV_BENCH_PROFILE") {
        return profile_gets(&which);
    }
    // `cargo bench` passes `--bench`; ignore arguments.
    let n = big_n();
    println!(
        "dbkv engine bench: {n} keys of {KEY_LEN} B with {VAL_LEN} B values (hot set {}, {COUNTERS} counters), \
         single thread, median of {} runs{}",
        hot_n(),
        runs(),
        if quick() { " [DBKV_BENCH_QUICK: reduced sizes]" } else { "" }
    );
    let t = Instant::now();
    let data = Data::new();
    eprintln!("data generated in {:.1}s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let dbkv = run_all::<Dbkv>(&data);
    eprintln!("dbkv done in {:.1}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let yard = run_all::<Yard>(&data);
    eprintln!("yardstick done in {:.1}s", t.elapsed().as_secs_f64());
    let ideal_incr = {
        let mut y = YardInt { map: std::collections::HashMap::with_hasher(FastBuild) };
        let ops = &data.ctr_ops;
        measure(ops.len(), || {
            let mut last = 0;
            for &i in ops {
                last = y.incr(data.ctr.get(i), 1);
            }
            black_box(last);
        })
    };
    drop(data);

    let label = |r: &str| if quick() { r.replace("1M", &format!("{}K", n / 1000)) } else { r.to_string() };
    println!();
    println!("{:<26} {:>14} {:>16} {:>7}", "workload", "dbkv ops/s", "yardstick ops/s", "ratio");
    println!("{}", "-".repeat(66));
    for (i, row) in ROWS.iter().enumerate() {
        println!("{:<26} {:>14.0} {:>16.0} {:>6.2}x", label(row), dbkv[i], yard[i], dbkv[i] / yard[i]);
    }
    let row = |name: &str| ROWS.iter().position(|r| *r == name).expect("row");
    let (get, set, hot_get, incr) = (row("get 1M"), row("set 1M (insert)"), row("get hot 10K"), row("incr 1,000 counters"));
    println!(
        "{:<26} {:>14} {:>16.0} {:>6.2}x   (yardstick: HashMap<Box<[u8]>, i64>)",
        "incr vs integer map",
        "",
        ideal_incr,
        dbkv[incr] / ideal_incr
    );

    let mem_dbkv = memory_overhead("dbkv");
    let mem_ttl = memory_overhead("dbkv-ttl");
    let mem_yard = memory_overhead("yard");
    let fmt = |m: Option<f64>| m.map(|b| format!("{b:.1}")).unwrap_or_else(|| "n/a".into());
    println!();
    println!("memory overhead per entry ({n} entries; RSS growth minus {} B of key + value):", KEY_LEN + VAL_LEN);
    println!("  dbkv      {:>7} B/entry", fmt(mem_dbkv));
    println!("  with TTL  {:>7} B/entry", fmt(mem_ttl));
    println!("  yardstick {:>7} B/entry", fmt(mem_yard));

    println!();
    println!("targets:");
    let check = |ok: bool| if ok { "met" } else { "MISSED" };
    let get_ratio = dbkv[get] / yard[get];
    let set_ratio = dbkv[set] / yard[set];
    println!("  get 1M >= 80% of yardstick:      {:>5.0}%  {}", get_ratio * 100.0, check(get_ratio >= 0.8));
    println!("  set 1M >= 70% of yardstick:      {:>5.0}%  {}", set_ratio * 100.0, check(set_ratio >= 0.7));
    println!("  get hot 10K >= 5M ops/s:         {:>5.2}M  {}", dbkv[hot_get] / 1e6, check(dbkv[hot_get] >= 5e6));
    println!("  incr 1,000 counters >= 8M ops/s: {:>5.2}M  {}", dbkv[incr] / 1e6, check(dbkv[incr] >= 8e6));
    for (label, m, limit) in [("no TTL", mem_dbkv, 32.0), ("with TTL", mem_ttl, 40.0)] {
        match m {
            Some(m) => println!("  overhead {label:<8} <= {limit:.0} B/entry: {:>5.1}   {}", m, check(m <= limit)),
            None => println!("  overhead {label:<8} <= {limit:.0} B/entry: n/a"),
        }
    }
}

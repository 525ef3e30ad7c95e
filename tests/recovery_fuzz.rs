//! Decoder fuzz test (issue 8): random mutations of WAL segments and
//! snapshots — bit flips, truncations, zeroed, random, swapped and
//! duplicated ranges, deleted files, renamed keys, and checksum-valid
//! forgeries built with the crate's own encoder (`Record::encode`) — opened
//! in every recovery mode, each open in its own thread under a timeout.
//!
//! After every open:
//! * no panic (in the opening thread or any engine thread) and no hang;
//! * an ABSOLUTE refusal left every file byte-identical (names and bytes);
//! * every live key/value pair is one the fixture wrote. The only
//!   exception is a forged record placed at a random offset of a file
//!   (`forged-any-*`): it may sit exactly on a record boundary with a
//!   plausible LSN, where a valid checksum makes it indistinguishable from
//!   a real record. Forgeries placed *inside* another record's value bytes
//!   (`forged-in-*`), record images that the fixture stored as the tail of
//!   ordinary values (`forged-emb-*`) and keys renamed inside snapshots or
//!   records must never appear, in any mode;
//! * an open that succeeded left a directory that the next ABSOLUTE open
//!   accepts with no damage (`recovery_corrupt_records == 0`) and the same
//!   state (every repair is followed by a snapshot).
//!
//! Bounded in CI (300 iterations or 40 s); `DBKV_SOAK=1` runs 20 times
//! longer. `DBKV_SEED=n` fixes the seed (printed at the start and in every
//! failure); `DBKV_FUZZ_ITER=i` runs only iteration `i` of that seed;
//! `DBKV_FUZZ_KEEP_GOING=1` collects every violation and prints a summary
//! before failing, instead of stopping at the first failing iteration.
//! Fixtures live on a `SimVfs` (in memory), so the test is fast and leaves
//! nothing on disk.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use dbkv::engine::{Clock, LockOutcome, Options, OwnerOutcome, RecoveryMode, SyncMode};
use dbkv::persistence::record::Record;
use dbkv::persistence::vfs::SimVfs;
use dbkv::Engine;

mod common;

type Image = BTreeMap<String, Vec<u8>>;
type Dump = Vec<(Vec<u8>, Vec<u8>)>;

const T0: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;
const OPEN_TIMEOUT: Duration = Duration::from_secs(20);
const MODES: [RecoveryMode; 3] = [RecoveryMode::PointInTime, RecoveryMode::Absolute, RecoveryMode::SkipCorrupted];
/// A new fixture every this many iterations.
const FIXTURE_EVERY: u64 = 50;

// ---------------------------------------------------------------------------
// Seeds and PRNG

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(splitmix(seed))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        splitmix(self.0)
    }
    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn soak() -> bool {
    std::env::var("DBKV_SOAK").map(|v| v == "1").unwrap_or(false)
}

// ---------------------------------------------------------------------------
// Simulated directories

fn db_dir() -> PathBuf {
    PathBuf::from("/sim/db")
}

fn opts(sim: &SimVfs, mode: RecoveryMode, clock: Clock, sync: SyncMode) -> Options {
    Options {
        data_dir: Some(db_dir()),
        shards: 16,
        sync_mode: sync,
        recovery_mode: mode,
        clock,
        vfs: Some(Arc::new(sim.clone())),
        wal_segment_bytes: 8192,
        expiry_sweep_interval_ms: 24 * HOUR,
        snapshot_interval_secs: 24 * 3600,
        snapshot_ops: 0,
        ..Options::default()
    }
}

fn image(sim: &SimVfs) -> Image {
    common::sim_image(sim, &db_dir())
}

fn sim_from(img: &Image) -> SimVfs {
    common::sim_with(img, &db_dir())
}

fn dump(e: &Engine) -> Dump {
    let mut all: Dump = e.scan(b"").collect();
    all.sort();
    all
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 60 {
        format!("{}…({} bytes)", &s[..s.char_indices().nth(60).map_or(s.len(), |(i, _)| i)], b.len())
    } else {
        s.into_owned()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------
// The fixture: a few hundred writes of known keys and values

struct Fixture {
    image: Image,
    /// Every (key, value) pair that was ever live: a recovered pair must be one of these.
    written: HashSet<(Vec<u8>, Vec<u8>)>,
    /// Values long enough to hide a forged record image inside.
    long_values: Vec<Vec<u8>>,
    /// Keys the fixture wrote (for renaming inside files).
    keys: Vec<Vec<u8>>,
    clock_end: u64,
}

/// `val|<key>|<version>|` then filler: unique per (key, version).
fn make_value(key: &[u8], version: u64, len: usize, rng: &mut Rng) -> Vec<u8> {
    let mut v = format!("val|{}|{version}|", show(key)).into_bytes();
    while v.len() < len {
        v.push(b'a' + rng.below(26) as u8);
    }
    v
}

fn build_fixture(rng: &mut Rng, fixture_no: u64) -> Fixture {
    let sim = SimVfs::new();
    let (clock, now) = Clock::manual(T0);
    let e = Engine::open(opts(&sim, RecoveryMode::PointInTime, clock, SyncMode::Always)).expect("open fixture");
    let mut written = HashSet::new();
    let mut long_values = Vec::new();
    let mut keys = Vec::new();
    let mut version = 0u64;
    let mut embedded = 0u64;
    let ops = 420;
    let key_of = |k: u64| format!("key-{k:03}").into_bytes();
    for op in 0..ops {
        if op == ops / 3 || op == 2 * ops / 3 {
            e.snapshot().expect("fixture snapshot");
        }
        if op == ops / 2 {
            now.fetch_add(2000, Ordering::Relaxed); // 1 s TTLs set so far are now dead
        }
        let k = rng.below(120);
        let key = key_of(k);
        version += 1;
        let ttl = match rng.below(10) {
            0 => 1000,
            1 => HOUR,
            _ => 0,
        };
        match rng.below(100) {
            0..=39 => {
                let len = rng.range(12, 120);
                let v = make_value(&key, version, len, rng);
                e.set(&key, &v, ttl).unwrap();
                written.insert((key.clone(), v));
            }
            40..=47 => {
                // A value ending with a well-formed record image: a key
                // nobody wrote, with a plausible or a huge LSN.
                embedded += 1;
                let fk = format!("forged-emb-{fixture_no}-{embedded}");
                let lsn = if rng.chance(50) { e.stats().last_lsn + rng.below(4) } else { (1 << 40) + rng.below(1000) };
                let mut v = make_value(&key, version, rng.range(20, 80), rng);
                v.extend_from_slice(b"|EMB|");
                Record::Set { key: fk.as_bytes(), value: b"evil", expires_at: 0 }.encode(lsn, &mut v);
                e.set(&key, &v, 0).unwrap();
                long_values.push(v.clone());
                written.insert((key.clone(), v));
            }
            48..=57 => {
                let n = rng.range(2, 4);
                let ks: Vec<Vec<u8>> = (0..n).map(|_| key_of(rng.below(120))).collect();
                let mut uniq = ks.clone();
                uniq.sort();
                uniq.dedup();
                if uniq.len() != ks.len() {
                    continue;
                }
                let vs: Vec<Vec<u8>> = ks.iter().map(|k| make_value(k, version, rng.range(12, 60), rng)).collect();
                let kr: Vec<&[u8]> = ks.iter().map(|k| k.as_slice()).collect();
                let vr: Vec<&[u8]> = vs.iter().map(|v| v.as_slice()).collect();
                e.mset(&kr, &vr, ttl).unwrap();
                for (k, v) in ks.into_iter().zip(vs) {
                    written.insert((k, v));
                }
            }
            58..=63 => {
                let ks: Vec<Vec<u8>> = (0..rng.range(1, 3)).map(|_| key_of(rng.below(120))).collect();
                let kr: Vec<&[u8]> = ks.iter().map(|k| k.as_slice()).collect();
                e.mdel(&kr).unwrap();
            }
            64..=67 => {
                e.delete(&key).unwrap();
            }
            68..=72 => {
                if rng.chance(50) {
                    e.expire(&key, HOUR).unwrap();
                } else {
                    e.persist(&key).unwrap();
                }
            }
            73..=82 => {
                let lk = format!("lock-{}", k % 10).into_bytes();
                let owner = format!("owner-{}", rng.below(3)).into_bytes();
                match rng.below(4) {
                    0 => drop(e.unlock(&lk, &owner).unwrap()),
                    1 => {
                        let _: OwnerOutcome = e.extend_lock(&lk, &owner, HOUR).unwrap();
                    }
                    _ => {
                        if let LockOutcome::Granted(_) = e.lock(&lk, &owner, if rng.chance(30) { 1000 } else { HOUR }).unwrap() {
                            written.insert((lk.clone(), owner));
                        }
                    }
                }
            }
            83..=89 => {
                let ck = format!("ctr-{}", k % 5).into_bytes();
                if let Ok(n) = e.incr(&ck, rng.range(1, 5) as i64) {
                    written.insert((ck, n.to_string().into_bytes()));
                }
            }
            _ => {
                let v = make_value(&key, version, rng.range(150, 400), rng);
                e.set(&key, &v, ttl).unwrap();
                long_values.push(v.clone());
                written.insert((key.clone(), v));
            }
        }
        keys.push(key);
    }
    keys.sort();
    keys.dedup();
    e.close().expect("close fixture");
    let image = image(&sim);
    let segs = image.keys().filter(|n| n.ends_with(".log")).count();
    let snaps = image.keys().filter(|n| n.ends_with(".snap")).count();
    assert!(segs >= 3 && snaps >= 1, "fixture should span several segments and hold a snapshot: {:?}", image.keys().collect::<Vec<_>>());
    Fixture { image, written, long_values, keys, clock_end: now.load(Ordering::Relaxed) }
}

// ---------------------------------------------------------------------------
// Mutations

/// Where a forged record was placed; decides what the check allows.
struct Mutated {
    image: Image,
    log: Vec<String>,
}

fn forged_image(rng: &mut Rng, key: &str, value: &[u8], lsn: u64) -> Vec<u8> {
    let mut out = Vec::new();
    if rng.chance(25) {
        let k2 = format!("{key}-b");
        Record::MSet { keys: &[key.as_bytes(), k2.as_bytes()], values: &[value, value], expires_at: 0 }.encode(lsn, &mut out);
    } else {
        Record::Set { key: key.as_bytes(), value, expires_at: 0 }.encode(lsn, &mut out);
    }
    out
}

fn forged_lsn(rng: &mut Rng) -> u64 {
    match rng.below(3) {
        0 => rng.below(600) + 1, // inside the fixture's LSN range
        1 => 400 + rng.below(200),
        _ => (1 << 40) + rng.below(1 << 20),
    }
}

fn pick_file(img: &Image, rng: &mut Rng) -> Option<String> {
    let segs: Vec<&String> = img.keys().filter(|n| n.ends_with(".log")).collect();
    let snaps: Vec<&String> = img.keys().filter(|n| n.ends_with(".snap")).collect();
    let all: Vec<&String> = img.keys().collect();
    let pool = match rng.below(100) {
        0..=69 if !segs.is_empty() => &segs,
        70..=94 if !snaps.is_empty() => &snaps,
        _ => &all,
    };
    if pool.is_empty() {
        return None;
    }
    // Favour the newest segments: that is where damage usually is.
    let i = if rng.chance(40) { pool.len() - 1 - (rng.below(pool.len().min(2) as u64) as usize) } else { rng.below(pool.len() as u64) as usize };
    Some(pool[i].clone())
}

fn mutate(fx: &Fixture, rng: &mut Rng, iter: u64) -> Mutated {
    let mut img = fx.image.clone();
    let mut log = Vec::new();
    let count = rng.range(1, 3);
    for j in 0..count {
        let Some(name) = pick_file(&img, rng) else { break };
        let b = img.get_mut(&name).unwrap();
        let len = b.len();
        let off = |rng: &mut Rng| rng.below(len as u64 + 1) as usize;
        match rng.below(13) {
            0 | 1 => {
                let n = rng.range(1, 8);
                for _ in 0..n {
                    if len == 0 {
                        break;
                    }
                    let at = rng.below(len as u64) as usize;
                    let bit = rng.below(8);
                    b[at] ^= 1 << bit;
                    log.push(format!("{name}: flip bit {bit} at {at}"));
                }
            }
            2 => {
                let to = off(rng);
                b.truncate(to);
                log.push(format!("{name}: truncate {len} -> {to}"));
            }
            3 => {
                let at = off(rng);
                let n = rng.range(1, 200).min(len - at);
                b[at..at + n].fill(0);
                log.push(format!("{name}: zero {n} bytes at {at}"));
            }
            4 => {
                let at = off(rng);
                let n = rng.range(1, 64).min(len - at);
                for x in &mut b[at..at + n] {
                    *x = rng.next() as u8;
                }
                log.push(format!("{name}: random {n} bytes at {at}"));
            }
            5 => {
                // Swap two equal non-overlapping ranges.
                let n = rng.range(1, 300).min(len / 2);
                if n == 0 {
                    continue;
                }
                let a = rng.below((len - 2 * n + 1) as u64) as usize;
                let c = a + n + rng.below((len - a - 2 * n + 1) as u64) as usize;
                let tmp = b[a..a + n].to_vec();
                b.copy_within(c..c + n, a);
                b[c..c + n].copy_from_slice(&tmp);
                log.push(format!("{name}: swap {n} bytes at {a} and {c}"));
            }
            6 => {
                // Duplicate a range (insert a copy elsewhere; file grows).
                let a = off(rng);
                let n = rng.range(1, 400).min(len - a);
                let to = off(rng);
                let copy = b[a..a + n].to_vec();
                b.splice(to..to, copy);
                log.push(format!("{name}: duplicate {n} bytes from {a} to {to}"));
            }
            7 => {
                // Rename a written key where it occurs (breaks a checksum or
                // a digest; the renamed key must not appear).
                let k = &fx.keys[rng.below(fx.keys.len() as u64) as usize];
                if let Some(at) = find(b, k) {
                    b[at] = b'Z';
                    log.push(format!("{name}: rename key {} at {at} to Z...", show(k)));
                }
            }
            8 | 9 => {
                // A checksum-valid record image overwriting the inside of a
                // long value: it sits inside another record's bytes.
                let key = format!("forged-in-{iter}-{j}");
                let lsn = forged_lsn(rng);
                let forged = forged_image(rng, &key, b"evil", lsn);
                let insert = rng.chance(40);
                let mut placed = false;
                for _ in 0..if fx.long_values.is_empty() { 0 } else { 40 } {
                    let v = &fx.long_values[rng.below(fx.long_values.len() as u64) as usize];
                    if v.len() < forged.len() + 2 {
                        continue;
                    }
                    let Some(p) = find(b, v) else { continue };
                    if insert {
                        let at = p + 1 + rng.below((v.len() - 1) as u64) as usize;
                        b.splice(at..at, forged.iter().copied());
                        log.push(format!("{name}: insert forged {key} (lsn {lsn}, {} bytes) at {at}, inside a value at {p}", forged.len()));
                    } else {
                        let at = p + 1 + rng.below((v.len() - forged.len() - 1) as u64) as usize;
                        b[at..at + forged.len()].copy_from_slice(&forged);
                        log.push(format!("{name}: overwrite with forged {key} (lsn {lsn}, {} bytes) at {at}, inside a value at {p}", forged.len()));
                    }
                    placed = true;
                    break;
                }
                if !placed {
                    log.push(format!("{name}: no long value found for an inside forgery"));
                }
            }
            10 | 11 => {
                // A checksum-valid record image anywhere (possibly on a
                // record boundary, possibly appended at the end).
                let key = format!("forged-any-{iter}-{j}");
                let lsn = forged_lsn(rng);
                let forged = forged_image(rng, &key, b"any", lsn);
                let at = if rng.chance(30) { len } else { off(rng) };
                if rng.chance(50) || at + forged.len() > len {
                    b.splice(at..at, forged.iter().copied());
                    log.push(format!("{name}: insert forged {key} (lsn {lsn}) at {at}"));
                } else {
                    b[at..at + forged.len()].copy_from_slice(&forged);
                    log.push(format!("{name}: overwrite with forged {key} (lsn {lsn}) at {at}"));
                }
            }
            _ => {
                img.remove(&name);
                log.push(format!("{name}: deleted"));
            }
        }
    }
    Mutated { image: img, log }
}

// ---------------------------------------------------------------------------
// Opening under a timeout

#[derive(Debug)]
enum Outcome {
    Refused { err: String, modified: bool },
    Opened { live: Dump, corrupt: u64, followup: Result<(u64, Dump), String> },
}

/// What `recovery::plan` and a read-only open say about `img`, checking
/// that neither modified a byte.
fn dry_runs(img: &Image, mode: RecoveryMode, clock_ms: u64) -> (Result<u64, String>, Result<Dump, String>) {
    let plan_sim = sim_from(img);
    let planned = dbkv::persistence::recovery::plan(&plan_sim, &db_dir(), mode).map(|p| p.stats.corrupt_records).map_err(|e| e.to_string());
    assert!(image(&plan_sim) == *img, "recovery::plan ({mode:?}) modified the directory");
    let ro_sim = sim_from(img);
    let mut ro = opts(&ro_sim, mode, Clock::manual(clock_ms).0, SyncMode::None);
    ro.read_only = true;
    let read_only = Engine::open(ro).map(|e| dump(&e)).map_err(|e| e.to_string());
    assert!(image(&ro_sim) == *img, "a read-only open ({mode:?}) modified the directory");
    (planned, read_only)
}

fn open_and_check(img: Image, mode: RecoveryMode, clock_ms: u64) -> Outcome {
    let (planned, read_only) = dry_runs(&img, mode, clock_ms);
    let sim = sim_from(&img);
    let o = opts(&sim, mode, Clock::manual(clock_ms).0, SyncMode::None);
    match Engine::open(o.clone()) {
        Err(err) => {
            let after = image(&sim);
            assert!(planned.is_err() && read_only.is_err(), "the open ({mode:?}) refused ({err}) but plan said {planned:?}, read-only {:?}", read_only.as_ref().map(|d| d.len()));
            Outcome::Refused { err: err.to_string(), modified: after != img }
        }
        Ok(e) => {
            let live = dump(&e);
            let corrupt = e.stats().recovery_corrupt_records;
            assert_eq!(planned, Ok(corrupt), "plan ({mode:?}) disagrees with the open on the damage found");
            assert!(read_only.as_ref() == Ok(&live), "a read-only open ({mode:?}) recovered a different state");
            let closed = e.close();
            let followup = match closed {
                Err(err) => Err(format!("close failed: {err}")),
                Ok(()) => {
                    let mut o = o;
                    o.recovery_mode = RecoveryMode::Absolute;
                    match Engine::open(o) {
                        Ok(r) => {
                            let res = (r.stats().recovery_corrupt_records, dump(&r));
                            let _ = r.close();
                            Ok(res)
                        }
                        Err(err) => Err(err.to_string()),
                    }
                }
            };
            Outcome::Opened { live, corrupt, followup }
        }
    }
}

enum Run {
    Done(Outcome),
    Panicked(String),
    Hung,
}

fn run_with_timeout(img: Image, mode: RecoveryMode, clock_ms: u64) -> Run {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(format!("fuzz-open-{mode:?}"))
        .spawn(move || {
            let out = open_and_check(img, mode, clock_ms);
            let _ = tx.send(out);
        })
        .expect("spawn");
    match rx.recv_timeout(OPEN_TIMEOUT) {
        Ok(out) => {
            let _ = handle.join();
            Run::Done(out)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(p) => Run::Panicked(
                p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "non-string panic".into()),
            ),
            Ok(()) => Run::Panicked("opening thread ended without a result".into()),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => Run::Hung,
    }
}

// ---------------------------------------------------------------------------
// Checks

/// Every (key, value) the engine shows must have been written by the
/// fixture; `forged-any-*` may show only with its forged value.
fn invented(fx: &Fixture, live: &Dump) -> Vec<String> {
    live.iter()
        .filter(|(k, v)| !fx.written.contains(&(k.clone(), v.clone())))
        .filter(|(k, v)| !(k.starts_with(b"forged-any-") && v.as_slice() == b"any"))
        .map(|(k, v)| format!("{} = {}", show(k), show(v)))
        .collect()
}

static PANICS: AtomicU64 = AtomicU64::new(0);

fn install_panic_counter() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
}

#[test]
fn recovery_fuzz_mutated_wal_and_snapshots_in_every_mode() {
    install_panic_counter();
    let seed = env_u64("DBKV_SEED").unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    let scale = if soak() { 20 } else { 1 };
    let max_iters = 300 * scale;
    let budget = Duration::from_secs(40 * scale);
    let only = env_u64("DBKV_FUZZ_ITER");
    let keep_going = std::env::var("DBKV_FUZZ_KEEP_GOING").map(|v| v == "1").unwrap_or(false);
    eprintln!("recovery_fuzz: seed DBKV_SEED={seed} ({max_iters} iterations or {}s)", budget.as_secs());
    let started = Instant::now();
    let mut fixture: Option<(u64, Fixture)> = None;
    let mut summary: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_failure: Option<String> = None;
    let mut iters = 0u64;
    for iter in 0..max_iters {
        if let Some(o) = only {
            if iter != o {
                continue;
            }
        } else if started.elapsed() > budget {
            break;
        }
        let fixture_no = iter / FIXTURE_EVERY;
        if fixture.as_ref().map(|f| f.0) != Some(fixture_no) {
            let fx = build_fixture(&mut Rng::new(seed ^ splitmix(fixture_no + 1)), fixture_no);
            fixture = Some((fixture_no, fx));
        }
        let fx = &fixture.as_ref().unwrap().1;
        let mut rng = Rng::new(seed ^ splitmix(iter.wrapping_mul(0x1000_0000_01b3) + 7));
        let m = mutate(fx, &mut rng, iter);
        iters += 1;

        let mut violations: Vec<(String, String)> = Vec::new();
        let panics_before = PANICS.load(Ordering::SeqCst);
        for mode in MODES {
            match run_with_timeout(m.image.clone(), mode, fx.clock_end) {
                Run::Hung => {
                    let msg = format!(
                        "seed {seed} iteration {iter}: {mode:?} open did not finish in {}s (hang); mutations: {:#?}",
                        OPEN_TIMEOUT.as_secs(),
                        m.log
                    );
                    panic!("{msg}");
                }
                Run::Panicked(p) => violations.push(("panic".into(), format!("{mode:?} panicked: {p}"))),
                Run::Done(Outcome::Refused { err, modified }) => {
                    if mode == RecoveryMode::Absolute && modified {
                        violations.push(("absolute-modified".into(), format!("ABSOLUTE refused ({err}) but modified the directory")));
                    }
                }
                Run::Done(Outcome::Opened { live, corrupt, followup }) => {
                    let bad = invented(fx, &live);
                    if !bad.is_empty() {
                        let kind = if bad.iter().any(|b| b.starts_with("forged-in-")) {
                            "invented-forged-in"
                        } else if bad.iter().any(|b| b.starts_with("forged-emb-")) {
                            "invented-forged-emb"
                        } else {
                            "invented-other"
                        };
                        violations.push((format!("{kind}-{mode:?}"), format!("{mode:?} shows pairs nobody wrote: {:?}", &bad[..bad.len().min(5)])));
                    }
                    match followup {
                        Err(err) => violations.push((
                            format!("followup-refused-after-{mode:?}"),
                            format!("after a {mode:?} open (corrupt_records={corrupt}), the next ABSOLUTE open failed: {err}"),
                        )),
                        Ok((c, d)) => {
                            if c != 0 {
                                violations.push((
                                    format!("followup-damage-after-{mode:?}"),
                                    format!("after a {mode:?} open, the next ABSOLUTE open still saw {c} corrupt records"),
                                ));
                            }
                            if d != live {
                                let lost = live.iter().filter(|kv| !d.contains(kv)).count();
                                let added = d.iter().filter(|kv| !live.contains(kv)).count();
                                violations.push((
                                    format!("followup-state-after-{mode:?}"),
                                    format!("the ABSOLUTE reopen after {mode:?} differs: {lost} pairs lost, {added} appeared"),
                                ));
                            }
                        }
                    }
                }
            }
        }
        let engine_panics = PANICS.load(Ordering::SeqCst) - panics_before;
        if engine_panics > 0 && !violations.iter().any(|v| v.0 == "panic") {
            violations.push(("panic".into(), format!("{engine_panics} panic(s) in engine threads (see stderr)")));
        }
        if violations.is_empty() {
            continue;
        }
        let report = format!(
            "seed {seed} (DBKV_SEED={seed} DBKV_FUZZ_ITER={iter}) iteration {iter}:\n  {}\nmutations:\n  {}",
            violations.iter().map(|v| v.1.as_str()).collect::<Vec<_>>().join("\n  "),
            m.log.join("\n  ")
        );
        if !keep_going {
            panic!("{report}");
        }
        for (kind, _) in &violations {
            *summary.entry(kind.clone()).or_default() += 1;
        }
        first_failure.get_or_insert(report);
    }
    eprintln!("recovery_fuzz: {iters} iterations in {:.1}s (seed {seed})", started.elapsed().as_secs_f64());
    if let Some(report) = first_failure {
        panic!("violations by kind (iterations): {summary:#?}\nfirst failing iteration: {report}");
    }
    assert!(iters > 0 || only.is_some(), "no iteration ran");
}

//! Shared pieces of the crash suite: a seeded PRNG, temp directories,
//! directory images, a model of the engine's visible state (op level and
//! WAL-record level), WAL parsing, and `ProcVfs`, a wrapper around `SimVfs`
//! that stands for one process: it counts fsync attempts and can "die"
//! (with or without a power loss) at an exact I/O operation.

#![allow(dead_code)]

pub mod child;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use dbkv::engine::{CasOutcome, Clock, Engine, LockOutcome, Options, OwnerOutcome};
use dbkv::persistence::record::OwnedRecord;
use dbkv::persistence::snapshot::parse_snapshot_name;
use dbkv::persistence::vfs::{SimVfs, Vfs, VfsFile};
use dbkv::persistence::wal::{self, parse_segment_name, Scan, SEGMENT_HEADER_LEN};
use dbkv::{RecoveryMode, SyncMode};

// ---------------------------------------------------------------- config

/// `DBKV_SOAK=1` runs the long versions.
pub fn soak() -> bool {
    std::env::var("DBKV_SOAK").map(|v| v == "1").unwrap_or(false)
}

/// `DBKV_CRASH_SEED` overrides the base seed (printed by every test).
pub fn base_seed(test: &str) -> u64 {
    let base = std::env::var("DBKV_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_dbc0_ffee);
    let mut h = base;
    for b in test.bytes() {
        h = splitmix(h ^ b as u64);
    }
    eprintln!("[{test}] seed: DBKV_CRASH_SEED={base}");
    h
}

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

// ---------------------------------------------------------------- PRNG

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: small, seedable, good enough for test decisions.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        splitmix(self.0)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability num/den.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------- temp dirs

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under cargo's target tmp dir, removed on drop unless
/// the test is failing (then it is kept and its path printed).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("crash-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// A subdirectory path (not created).
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Every regular file in `dir` (not recursive): name -> contents.
pub fn dir_image(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir).expect("read dir") {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            m.insert(e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap());
        }
    }
    m
}

/// Copies the regular files of `src` into a new directory `dst`.
pub fn copy_dir(src: &Path, dst: &Path) {
    let _ = std::fs::remove_dir_all(dst);
    std::fs::create_dir_all(dst).unwrap();
    for (name, bytes) in dir_image(src) {
        std::fs::write(dst.join(name), bytes).unwrap();
    }
}

/// WAL segments in `dir`, ascending by first LSN.
pub fn segment_paths(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = dir_image(dir)
        .keys()
        .filter_map(|n| parse_segment_name(n).map(|l| (l, dir.join(n))))
        .collect();
    v.sort();
    v
}

/// Snapshots in `dir`, ascending by name LSN.
pub fn snapshot_paths(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = dir_image(dir)
        .keys()
        .filter_map(|n| parse_snapshot_name(n).map(|l| (l, dir.join(n))))
        .collect();
    v.sort();
    v
}

pub fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// `Engine::open`, retrying `Busy` for up to 2 s: a killed child of the
/// kill -9 test may still be exiting (and holding its lock) when the parent
/// reopens the directory.
pub fn open_retry_busy(o: Options) -> dbkv::error::Result<Engine> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match Engine::open(o.clone()) {
            Err(dbkv::Error::Busy(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(2))
            }
            other => return other,
        }
    }
}

// ---------------------------------------------------------------- WAL parsing

/// One whole record of a segment image.
#[derive(Debug, Clone)]
pub struct RecInfo {
    pub offset: usize,
    pub len: usize,
    pub lsn: u64,
    pub record: OwnedRecord,
}

/// Parses a segment image that must be undamaged.
pub fn parse_segment(image: &[u8]) -> Vec<RecInfo> {
    assert!(image.len() >= SEGMENT_HEADER_LEN, "segment shorter than its header");
    let mut off = SEGMENT_HEADER_LEN;
    let mut out = Vec::new();
    while off < image.len() {
        match wal::read_record(image, off) {
            Scan::Record { offset, len, lsn, record } => {
                out.push(RecInfo { offset, len, lsn, record });
                off += len;
            }
            Scan::Bad { offset, reason } => panic!("undamaged segment has damage at {offset}: {reason}"),
        }
    }
    out
}

// ---------------------------------------------------------------- model

/// The visible state: key -> (value bytes, absolute expiry or 0).
pub type State = BTreeMap<Vec<u8>, (Vec<u8>, u64)>;

/// The state after applying WAL records (results, not intents), the way
/// recovery must: the independent reference for "which records survived".
pub fn apply_record(s: &mut State, rec: &OwnedRecord) {
    match rec {
        OwnedRecord::Set { key, value, expires_at } => {
            s.insert(key.clone(), (value.clone(), *expires_at));
        }
        OwnedRecord::SetInt { key, value, expires_at } => {
            s.insert(key.clone(), (value.to_string().into_bytes(), *expires_at));
        }
        OwnedRecord::Delete { key } => {
            s.remove(key);
        }
        OwnedRecord::MSet { pairs, expires_at } => {
            for (k, v) in pairs {
                s.insert(k.clone(), (v.clone(), *expires_at));
            }
        }
        OwnedRecord::MDel { keys } => {
            for k in keys {
                s.remove(k);
            }
        }
        OwnedRecord::Expire { key, expires_at } => {
            if let Some(e) = s.get_mut(key) {
                e.1 = *expires_at;
            }
        }
        OwnedRecord::Lock { key, owner, expires_at, .. } => {
            s.insert(key.clone(), (owner.clone(), *expires_at));
        }
        OwnedRecord::Clear => s.clear(),
        OwnedRecord::Coll(_) => unreachable!("the crash workload writes strings and locks only"),
        OwnedRecord::Batch { ops } => {
            for op in ops {
                apply_record(s, op);
            }
        }
    }
}

pub fn record_token(rec: &OwnedRecord) -> Option<u64> {
    match rec {
        OwnedRecord::Lock { token, .. } => Some(*token),
        _ => None,
    }
}

/// Everything visible in an engine: values and absolute expiries (with a
/// manual clock at `now`).
pub fn engine_state(e: &Engine, now: u64) -> State {
    let mut m = State::new();
    for (k, v) in e.scan(b"") {
        let ttl = e.ttl(&k).unwrap().expect("scanned key has a ttl answer");
        let exp = if ttl < 0 { 0 } else { now + ttl as u64 };
        assert!(m.insert(k, (v, exp)).is_none(), "scan returned a key twice");
    }
    m
}

/// Prints the first differences of two states (for assertion messages).
pub fn diff(expected: &State, actual: &State) -> String {
    let mut out = String::new();
    let mut n = 0;
    let keys: std::collections::BTreeSet<&Vec<u8>> = expected.keys().chain(actual.keys()).collect();
    for k in keys {
        let (a, b) = (expected.get(k), actual.get(k));
        if a != b {
            n += 1;
            if n <= 8 {
                out += &format!(
                    "\n  key {:?}: expected {:?}, got {:?}",
                    String::from_utf8_lossy(k),
                    a.map(|(v, e)| (String::from_utf8_lossy(v).into_owned(), *e)),
                    b.map(|(v, e)| (String::from_utf8_lossy(v).into_owned(), *e))
                );
            }
        }
    }
    format!("{n} keys differ (expected {} keys, got {}){out}", expected.len(), actual.len())
}

#[track_caller]
pub fn assert_state(expected: &State, actual: &State, what: &str) {
    if expected != actual {
        panic!("{what}: {}", diff(expected, actual));
    }
}

/// The time every model test runs at (manual clock, never moved).
pub const T0: u64 = 1_700_000_000_000;
/// A TTL that never runs out during a test.
pub const FAR_TTL: u64 = 1_000_000_000;

/// Options for a model test: manual clock at `T0`, no automatic snapshot,
/// sweeper idle.
pub fn model_opts(dir: &Path, mode: RecoveryMode) -> Options {
    let (clock, _) = Clock::manual(T0);
    let mut o = Options::default();
    o.data_dir = Some(dir.to_path_buf());
    o.clock = clock;
    o.recovery_mode = mode;
    o.sync_mode = SyncMode::Interval;
    o.snapshot_ops = 0;
    o.snapshot_interval_secs = 0;
    o.expiry_sweep_interval_ms = 3_600_000;
    o.shards = 16;
    o
}

/// An op-level model of the engine (values, expiries, lock tokens) and a
/// random driver that runs the same op on engine and model and checks the
/// results agree.
#[derive(Clone, Default)]
pub struct OpModel {
    pub state: State,
    pub seq: u64,
    /// The largest fencing token granted.
    pub max_token: u64,
    /// The last op waited for durability whatever the sync mode (a lock
    /// grant or an unlock that logged).
    pub last_forced: bool,
    /// No lock or unlock ops (they fsync the WAL whatever the sync mode).
    pub no_locks: bool,
}

fn key(prefix: &str, i: u64) -> Vec<u8> {
    format!("{prefix}{i}").into_bytes()
}

impl OpModel {
    fn exp(ttl: u64) -> u64 {
        if ttl == 0 {
            0
        } else {
            T0 + ttl
        }
    }

    /// Runs one random op on `e` and the model; asserts they agree.
    /// Returns true if the op must have logged a record.
    pub fn step(&mut self, e: &Engine, rng: &mut Rng) -> bool {
        let seq = self.seq + 1;
        self.try_step(e, rng).unwrap_or_else(|err| panic!("op {seq} failed: {err}"))
    }

    /// Like `step`, but an engine error is returned (before the model
    /// changes) instead of panicking.
    pub fn try_step(&mut self, e: &Engine, rng: &mut Rng) -> dbkv::error::Result<bool> {
        self.seq += 1;
        self.last_forced = false;
        let seq = self.seq;
        let ttl = if rng.chance(1, 4) { FAR_TTL + rng.below(1000) } else { 0 };
        let mut pick = rng.below(100);
        if self.no_locks && (84..=95).contains(&pick) {
            pick -= 84;
        }
        Ok(match pick {
            0..=34 => {
                let k = key("k", rng.below(24));
                let v = format!("v{seq}-{}", "x".repeat(rng.below(40) as usize)).into_bytes();
                e.set(&k, &v, ttl)?;
                self.state.insert(k, (v, Self::exp(ttl)));
                true
            }
            35..=49 => {
                let k = key("c", rng.below(4));
                let d = rng.range(1, 9) as i64 * if rng.chance(1, 4) { -1 } else { 1 };
                let got = e.incr(&k, d)?;
                let (cur, exp) = match self.state.get(&k) {
                    Some((v, exp)) => (std::str::from_utf8(v).unwrap().parse::<i64>().unwrap(), *exp),
                    None => (0, 0),
                };
                assert_eq!(got, cur + d, "incr result");
                self.state.insert(k, ((cur + d).to_string().into_bytes(), exp));
                true
            }
            50..=59 => {
                let k = key("k", rng.below(24));
                let got = e.delete(&k)?;
                let existed = self.state.remove(&k).is_some();
                assert_eq!(got, existed, "delete result");
                existed
            }
            60..=66 => {
                let n = rng.range(1, 3);
                let keys: Vec<Vec<u8>> = (0..n).map(|_| key("k", rng.below(24))).collect();
                let vals: Vec<Vec<u8>> = (0..n).map(|i| format!("m{seq}.{i}").into_bytes()).collect();
                let kr: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
                let vr: Vec<&[u8]> = vals.iter().map(|v| v.as_slice()).collect();
                e.mset(&kr, &vr, ttl)?;
                for (k, v) in keys.into_iter().zip(vals) {
                    self.state.insert(k, (v, Self::exp(ttl)));
                }
                true
            }
            67..=72 => {
                let n = rng.range(1, 3);
                let mut keys: Vec<Vec<u8>> = (0..n).map(|_| key("k", rng.below(24))).collect();
                keys.sort();
                keys.dedup();
                let kr: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
                let got = e.mdel(&kr)?;
                let existed = keys.iter().filter(|k| self.state.remove(*k).is_some()).count();
                assert_eq!(got, existed, "mdel result");
                existed > 0
            }
            73..=79 => {
                let k = if rng.chance(1, 2) { key("k", rng.below(24)) } else { key("c", rng.below(4)) };
                let t = FAR_TTL + 1000 + rng.below(1000);
                let got = e.expire(&k, t)?;
                assert_eq!(got, self.state.contains_key(&k), "expire result");
                match self.state.get_mut(&k) {
                    Some(entry) => {
                        let changed = entry.1 != Self::exp(t);
                        entry.1 = Self::exp(t);
                        changed
                    }
                    None => false,
                }
            }
            80..=83 => {
                let k = key("k", rng.below(24));
                let got = e.persist(&k)?;
                assert_eq!(got, self.state.contains_key(&k), "persist result");
                match self.state.get_mut(&k) {
                    Some(entry) => {
                        let changed = entry.1 != 0;
                        entry.1 = 0;
                        changed
                    }
                    None => false,
                }
            }
            84..=91 => {
                let k = key("l", rng.below(3));
                let owner = format!("o{}", rng.below(2)).into_bytes();
                let t = FAR_TTL + rng.below(1000);
                let held_by_other = matches!(self.state.get(&k), Some((v, _)) if *v != owner);
                let before = e.last_token();
                match e.lock(&k, &owner, t)? {
                    LockOutcome::Granted(tok) => {
                        assert!(!held_by_other, "lock granted over another owner");
                        assert_eq!(tok, before + 1, "fencing token is the next one");
                        assert!(tok > self.max_token, "token {tok} not above {}", self.max_token);
                        self.max_token = tok;
                        self.last_forced = true;
                        self.state.insert(k, (owner, Self::exp(t)));
                        true
                    }
                    LockOutcome::Locked => {
                        assert!(held_by_other, "lock refused though free or own");
                        false
                    }
                }
            }
            92..=95 => {
                let k = key("l", rng.below(3));
                let owner = format!("o{}", rng.below(2)).into_bytes();
                let expect = match self.state.get(&k) {
                    None => OwnerOutcome::NotFound,
                    Some((v, _)) if *v != owner => OwnerOutcome::NotOwner,
                    Some(_) => OwnerOutcome::Done,
                };
                assert_eq!(e.unlock(&k, &owner)?, expect, "unlock result");
                if expect == OwnerOutcome::Done {
                    self.state.remove(&k);
                    self.last_forced = true;
                }
                expect == OwnerOutcome::Done
            }
            _ => {
                let k = key("k", rng.below(24));
                let new = format!("cas{seq}").into_bytes();
                let (expected, outcome) = match self.state.get(&k) {
                    None => (b"whatever".to_vec(), CasOutcome::NotFound),
                    Some((v, _)) if rng.chance(3, 4) => (v.clone(), CasOutcome::Swapped),
                    Some(_) => (b"no-such-value".to_vec(), CasOutcome::Mismatch),
                };
                assert_eq!(e.cas(&k, &expected, &new, ttl)?, outcome, "cas result");
                if outcome == CasOutcome::Swapped {
                    self.state.insert(k, (new, Self::exp(ttl)));
                }
                outcome == CasOutcome::Swapped
            }
        })
    }

    /// Runs ops until `records` more records are logged. Returns the state
    /// and largest granted token after each record (`out[i]` = after the
    /// i-th new record) and checks that the engine logged exactly when the
    /// model said it would.
    pub fn run_records(&mut self, e: &Engine, rng: &mut Rng, records: usize) -> Vec<(State, u64)> {
        let mut out = Vec::with_capacity(records);
        while out.len() < records {
            let before = e.stats().last_lsn;
            let logged = self.step(e, rng);
            let after = e.stats().last_lsn;
            assert_eq!(after - before, logged as u64, "op {} logged {} records", self.seq, after - before);
            if logged {
                out.push((self.state.clone(), self.max_token));
            }
        }
        out
    }
}

// ---------------------------------------------------------------- ProcVfs

/// One simulated process's view of a `SimVfs`. All calls are serialized,
/// fsync attempts (failed ones too) are counted, and the process can die:
/// `kill()` makes every later call fail; `die_after(n)` makes the n-th
/// operation from now (0 = the next) kill the process and power-fail the
/// machine (`SimVfs::crash`) instead of running.
#[derive(Clone)]
pub struct ProcVfs {
    pub sim: SimVfs,
    st: Arc<ProcState>,
}

struct ProcState {
    gate: Mutex<Gate>,
    file_sync_attempts: AtomicU64,
    dir_sync_attempts: AtomicU64,
    write_attempts: AtomicU64,
}

#[derive(Default)]
struct Gate {
    dead: bool,
    /// Operations left before the crash.
    crash_in: Option<u64>,
    /// Operations so far (all kinds).
    ops: u64,
    /// Name of the operation the crash replaced.
    crashed_at: Option<String>,
}

fn dead_err() -> io::Error {
    io::Error::new(io::ErrorKind::Other, "process is dead (ProcVfs)")
}

impl ProcVfs {
    pub fn new(sim: SimVfs) -> ProcVfs {
        ProcVfs {
            sim,
            st: Arc::new(ProcState {
                gate: Mutex::new(Gate::default()),
                file_sync_attempts: AtomicU64::new(0),
                dir_sync_attempts: AtomicU64::new(0),
                write_attempts: AtomicU64::new(0),
            }),
        }
    }

    pub fn as_vfs(&self) -> Arc<dyn Vfs> {
        Arc::new(self.clone())
    }

    /// The process dies: every later call fails. Waits for a call in
    /// progress to finish.
    pub fn kill(&self) {
        self.st.gate().dead = true;
    }

    /// Kill plus power loss, atomically with respect to this process's I/O.
    pub fn kill_and_crash(&self) {
        let mut g = self.st.gate();
        g.dead = true;
        self.sim.crash();
    }

    pub fn die_after(&self, n: u64) {
        self.st.gate().crash_in = Some(n);
    }

    pub fn ops(&self) -> u64 {
        self.st.gate().ops
    }

    pub fn crashed_at(&self) -> Option<String> {
        self.st.gate().crashed_at.clone()
    }

    pub fn is_dead(&self) -> bool {
        self.st.gate().dead
    }

    /// File and directory fsyncs attempted, failed ones included.
    pub fn sync_attempts(&self) -> u64 {
        self.st.file_sync_attempts.load(Ordering::SeqCst) + self.st.dir_sync_attempts.load(Ordering::SeqCst)
    }

    pub fn write_attempts(&self) -> u64 {
        self.st.write_attempts.load(Ordering::SeqCst)
    }
}

impl ProcState {
    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Enters an operation: the guard is held while it runs.
    fn enter(&self, sim: &SimVfs, what: &str) -> io::Result<MutexGuard<'_, Gate>> {
        let mut g = self.gate();
        if g.dead {
            return Err(dead_err());
        }
        g.ops += 1;
        match g.crash_in {
            Some(0) => {
                g.dead = true;
                g.crash_in = None;
                g.crashed_at = Some(what.to_string());
                sim.crash();
                Err(dead_err())
            }
            Some(n) => {
                g.crash_in = Some(n - 1);
                Ok(g)
            }
            None => Ok(g),
        }
    }
}

struct ProcFile {
    inner: Box<dyn VfsFile>,
    sim: SimVfs,
    st: Arc<ProcState>,
    name: String,
}

impl VfsFile for ProcFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let _g = self.st.enter(&self.sim, &format!("write {} bytes to {}", buf.len(), self.name))?;
        self.st.write_attempts.fetch_add(1, Ordering::SeqCst);
        self.inner.write_all(buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        let _g = self.st.enter(&self.sim, &format!("fsync {}", self.name))?;
        self.st.file_sync_attempts.fetch_add(1, Ordering::SeqCst);
        self.inner.sync()
    }
}

impl Vfs for ProcVfs {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        let _g = self.st.enter(&self.sim, "create_dir")?;
        self.sim.create_dir(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let _g = self.st.enter(&self.sim, "list")?;
        self.sim.list(dir)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let _g = self.st.enter(&self.sim, &format!("read {}", file_name(path)))?;
        self.sim.read(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let _g = self.st.enter(&self.sim, &format!("create {}", file_name(path)))?;
        let inner = self.sim.create(path)?;
        Ok(Box::new(ProcFile { inner, sim: self.sim.clone(), st: self.st.clone(), name: file_name(path) }))
    }
    fn append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let _g = self.st.enter(&self.sim, &format!("append {}", file_name(path)))?;
        let inner = self.sim.append(path)?;
        Ok(Box::new(ProcFile { inner, sim: self.sim.clone(), st: self.st.clone(), name: file_name(path) }))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let _g = self.st.enter(&self.sim, &format!("truncate {} to {len}", file_name(path)))?;
        self.sim.truncate(path, len)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let _g = self.st.enter(&self.sim, &format!("rename {} to {}", file_name(from), file_name(to)))?;
        self.sim.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        let _g = self.st.enter(&self.sim, &format!("remove {}", file_name(path)))?;
        self.sim.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let _g = self.st.enter(&self.sim, "fsync directory")?;
        self.st.dir_sync_attempts.fetch_add(1, Ordering::SeqCst);
        self.sim.sync_dir(dir)
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<Option<Box<dyn Send + Sync>>> {
        let _g = self.st.enter(&self.sim, "lock_dir")?;
        self.sim.lock_dir(dir)
    }
}

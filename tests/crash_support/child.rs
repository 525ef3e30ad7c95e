//! The kill -9 harness: a child process (this test binary re-executed to
//! run only `child_writer`) writes in `SyncMode::Always` and reports on
//! stdout, one flushed line per event:
//!
//! ```text
//! @@ R                         engine opened
//! @@ B <thread> <seq> <op...>  about to call the op
//! @@ A <thread> <seq> <result> the call returned Ok with this result
//! @@ S                         an explicit snapshot() returned Ok
//! ```
//!
//! Each thread owns its keys and runs one op at a time, so after a kill at
//! most one op per thread is in flight: the last `B` without its `A`. A
//! line without its final newline was cut by the kill and does not count.
//! The parent keeps a model of every acknowledged op, kills the child at a
//! random moment, reopens the directory and checks the model exactly, with
//! each in-flight op either applied or not.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Write};
use std::mem::ManuallyDrop;
use std::os::unix::io::FromRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbkv::engine::{LockOutcome, Options, OwnerOutcome};
use dbkv::{Engine, SyncMode};

use super::Rng;

pub const ENV_DIR: &str = "DBKV_CRASH_CHILD_DIR";
pub const ENV_CFG: &str = "DBKV_CRASH_CHILD_CFG";

/// A lock held by a child outlives every test run.
const LOCK_TTL_MS: u64 = 3_600_000;
/// A child that was never killed gives up after this long.
const CHILD_MAX_RUNTIME: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct ChildCfg {
    pub id: u64,
    pub seed: u64,
    pub threads: u64,
    pub shards: u32,
    /// `Options::snapshot_ops`; 0 = no automatic snapshots.
    pub snap_ops: u64,
    /// A thread that calls `snapshot()` back to back.
    pub snap_loop: bool,
    pub seg_bytes: u64,
}

impl ChildCfg {
    fn encode(&self) -> String {
        format!(
            "{} {} {} {} {} {} {}",
            self.id, self.seed, self.threads, self.shards, self.snap_ops, self.snap_loop as u8, self.seg_bytes
        )
    }
    fn decode(s: &str) -> ChildCfg {
        let v: Vec<u64> = s.split(' ').map(|x| x.parse().expect("child cfg")).collect();
        ChildCfg { id: v[0], seed: v[1], threads: v[2], shards: v[3] as u32, snap_ops: v[4], snap_loop: v[5] == 1, seg_bytes: v[6] }
    }
}

// ------------------------------------------------------------------ child

/// Writes whole lines to fd 1 with one write(2) each (atomic on a pipe for
/// lines under PIPE_BUF), bypassing the test harness's output capture.
struct Out(Mutex<ManuallyDrop<File>>);

impl Out {
    fn new() -> Out {
        // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop
        // keeps the File from closing it.
        Out(Mutex::new(ManuallyDrop::new(unsafe { File::from_raw_fd(1) })))
    }
    fn say(&self, line: &str) {
        let mut buf = String::with_capacity(line.len() + 4);
        buf.push_str("@@ ");
        buf.push_str(line);
        buf.push('\n');
        assert!(buf.len() < 4096, "line too long for an atomic pipe write");
        let mut f = self.0.lock().unwrap();
        f.write_all(buf.as_bytes()).expect("write to stdout");
    }
}

pub fn key(kind: &str, t: u64, j: u64) -> String {
    format!("{kind}.{t}.{j}")
}

pub fn owner(t: u64) -> String {
    format!("o.{t}")
}

/// One writer thread's ops on its own keys, reported through `say` with
/// the `B`/`A` protocol, until `keep_going` says stop or an op fails
/// (returned as the op's name and error).
pub fn writer_ops(
    e: &Engine,
    t: u64,
    id: u64,
    seed: u64,
    say: &dyn Fn(&str),
    keep_going: &dyn Fn() -> bool,
) -> Result<(), (&'static str, dbkv::Error)> {
    let mut rng = Rng::new(seed.wrapping_add(t * 0x1234_5678_9abc));
    let mut s = 0u64;
    while keep_going() {
        s += 1;
        match rng.below(100) {
            0..=49 => {
                let k = key("k", t, rng.below(32));
                let v = format!("v{id}.{t}.{s}.{}", "p".repeat(rng.below(300) as usize));
                say(&format!("B {t} {s} SET {k} {v}"));
                e.set(k.as_bytes(), v.as_bytes(), 0).map_err(|err| ("set", err))?;
                say(&format!("A {t} {s} OK"));
            }
            50..=77 => {
                let k = key("c", t, rng.below(3));
                let d = rng.range(1, 5);
                say(&format!("B {t} {s} INCR {k} {d}"));
                let n = e.incr(k.as_bytes(), d as i64).map_err(|err| ("incr", err))?;
                say(&format!("A {t} {s} {n}"));
            }
            78..=87 => {
                let k = key("l", t, rng.below(2));
                say(&format!("B {t} {s} LOCK {k} {}", owner(t)));
                match e.lock(k.as_bytes(), owner(t).as_bytes(), LOCK_TTL_MS).map_err(|err| ("lock", err))? {
                    LockOutcome::Granted(tok) => say(&format!("A {t} {s} T{tok}")),
                    LockOutcome::Locked => say(&format!("A {t} {s} LOCKED")),
                }
            }
            88..=93 => {
                let k = key("l", t, rng.below(2));
                say(&format!("B {t} {s} UNLOCK {k} {}", owner(t)));
                let r = match e.unlock(k.as_bytes(), owner(t).as_bytes()).map_err(|err| ("unlock", err))? {
                    OwnerOutcome::Done => "DONE",
                    OwnerOutcome::NotFound => "NOTFOUND",
                    OwnerOutcome::NotOwner => "NOTOWNER",
                };
                say(&format!("A {t} {s} {r}"));
            }
            _ => {
                let k = key("k", t, rng.below(32));
                say(&format!("B {t} {s} DEL {k}"));
                let b = e.delete(k.as_bytes()).map_err(|err| ("delete", err))?;
                say(&format!("A {t} {s} {b}"));
            }
        }
    }
    Ok(())
}

/// The body of `child_writer`: opens the directory and writes until killed.
pub fn run_child(dir: PathBuf, cfg_text: &str) {
    let cfg = ChildCfg::decode(cfg_text);
    let out = Arc::new(Out::new());
    let mut o = Options::default();
    o.data_dir = Some(dir);
    o.sync_mode = SyncMode::Always;
    o.shards = cfg.shards;
    o.wal_segment_bytes = cfg.seg_bytes;
    o.snapshot_ops = cfg.snap_ops;
    o.snapshot_keep = 2;
    let engine = match super::open_retry_busy(o) {
        Ok(e) => Arc::new(e),
        Err(e) => {
            out.say(&format!("E open failed: {e}"));
            panic!("child {}: open failed: {e}", cfg.id);
        }
    };
    out.say("R");
    let started = Instant::now();
    let mut handles = Vec::new();
    if cfg.snap_loop {
        let (e, out) = (engine.clone(), out.clone());
        let mut rng = Rng::new(cfg.seed ^ 0xabcdef);
        handles.push(std::thread::spawn(move || {
            while started.elapsed() < CHILD_MAX_RUNTIME {
                if let Err(err) = e.snapshot() {
                    out.say(&format!("E snapshot: {err}"));
                    std::process::exit(3);
                }
                out.say("S");
                std::thread::sleep(Duration::from_micros(rng.below(3000)));
            }
        }));
    }
    for t in 0..cfg.threads {
        let (e, out) = (engine.clone(), out.clone());
        let (id, seed) = (cfg.id, cfg.seed);
        handles.push(std::thread::spawn(move || {
            let say = |l: &str| out.say(l);
            if let Err((what, err)) = writer_ops(&e, t, id, seed, &say, &|| started.elapsed() < CHILD_MAX_RUNTIME) {
                out.say(&format!("E {t} {what}: {err}"));
                std::process::exit(3);
            }
        }));
    }
    for h in handles {
        let _ = h.join();
    }
    out.say("X ran out of time without being killed");
}

// ------------------------------------------------------------------ parent

/// What one child printed before it died.
pub struct ChildRun {
    /// Complete `@@` lines, marker stripped, in order.
    pub lines: Vec<String>,
    /// Bytes after the last newline (a line cut by the kill).
    pub partial: usize,
    pub stderr: String,
    /// The child exited by itself before the kill.
    pub exited_early: Option<std::process::ExitStatus>,
    /// Whether `@@ R` was seen before the kill was sent.
    pub killed_after_ready: bool,
}

fn reader(mut r: impl Read + Send + 'static, buf: Arc<Mutex<Vec<u8>>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// When to kill, relative to the child's start or to its `R` line.
#[derive(Debug, Clone, Copy)]
pub enum KillAt {
    FromSpawn(Duration),
    AfterReady(Duration),
}

/// Spawns `child_writer` on `dir`, SIGKILLs it at `at`, and collects its
/// output until EOF.
pub fn spawn_and_kill(dir: &Path, cfg: &ChildCfg, at: KillAt) -> ChildRun {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(ENV_DIR, dir)
        .env(ENV_CFG, cfg.encode())
        .env_remove("DBKV_SOAK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let (out, err) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
    let t_out = reader(child.stdout.take().unwrap(), out.clone());
    let t_err = reader(child.stderr.take().unwrap(), err.clone());

    let spawned = Instant::now();
    let mut ready_at: Option<Instant> = None;
    let mut exited_early = None;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            exited_early = Some(st);
            break;
        }
        if ready_at.is_none() && contains(&out.lock().unwrap(), b"@@ R\n") {
            ready_at = Some(Instant::now());
        }
        let due = match at {
            KillAt::FromSpawn(d) => spawned.elapsed() >= d,
            KillAt::AfterReady(d) => ready_at.is_some_and(|r| r.elapsed() >= d),
        };
        if due {
            break;
        }
        if spawned.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {} never became ready; stderr: {}", cfg.id, String::from_utf8_lossy(&err.lock().unwrap()));
        }
        std::thread::sleep(Duration::from_micros(300));
    }
    let killed_after_ready = ready_at.is_some();
    if exited_early.is_none() {
        child.kill().expect("SIGKILL child");
    }
    let status = child.wait().expect("wait child");
    if exited_early.is_none() {
        use std::os::unix::process::ExitStatusExt;
        // It may have exited on its own between the last poll and the kill.
        if status.signal() != Some(9) {
            exited_early = Some(status);
        }
    }
    t_out.join().unwrap();
    t_err.join().unwrap();
    let bytes = std::mem::take(&mut *out.lock().unwrap());
    let stderr = String::from_utf8_lossy(&err.lock().unwrap()).into_owned();
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&bytes[..complete]);
    let lines = text
        .lines()
        .filter_map(|l| l.find("@@ ").map(|i| l[i + 3..].to_string()))
        .collect();
    ChildRun { lines, partial: bytes.len() - complete, stderr, exited_early, killed_after_ready }
}

#[derive(Debug, Clone)]
enum Op {
    Set(String, String),
    Incr(String, i64),
    Del(String),
    Lock(String, String),
    Unlock(String, String),
}

impl Op {
    fn key(&self) -> &str {
        match self {
            Op::Set(k, _) | Op::Incr(k, _) | Op::Del(k) | Op::Lock(k, _) | Op::Unlock(k, _) => k,
        }
    }
}

/// The parent's knowledge: every acknowledged op applied, exactly.
#[derive(Default)]
pub struct KillModel {
    /// key -> value as `get` returns it.
    pub state: BTreeMap<String, String>,
    /// Every fencing token acknowledged to any child.
    pub tokens: Vec<u64>,
    /// Tokens a new child must exceed: the largest acknowledged so far, and
    /// the recovered `last_token` (which may include in-flight grants).
    pub token_floor: u64,
    pub max_acked_token: u64,
    pub acked_ops: u64,
    pub acked_by_kind: BTreeMap<&'static str, u64>,
    pub inflight_applied: u64,
    pub inflight_lost: u64,
    pub snapshots_acked: u64,
}

/// Per in-flight op: its key and the value the key has if it was applied.
pub type InFlight = HashMap<String, Option<String>>;

impl KillModel {
    /// Applies one child's acknowledged ops, checking every result against
    /// the model. Returns the in-flight ops.
    pub fn apply(&mut self, child: u64, run: &ChildRun) -> InFlight {
        let ctx = |l: &str| format!("child {child}, line {l:?}");
        let mut pending: HashMap<u64, (u64, Op)> = HashMap::new();
        let mut last_token_of_thread: HashMap<u64, u64> = HashMap::new();
        for line in &run.lines {
            let f: Vec<&str> = line.split(' ').collect();
            match f[0] {
                "R" => {}
                "S" => self.snapshots_acked += 1,
                "E" | "X" => panic!("child {child} reported {line:?}; stderr:\n{}", run.stderr),
                "B" => {
                    let (t, s): (u64, u64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
                    let op = match f[3] {
                        "SET" => Op::Set(f[4].into(), f[5].into()),
                        "INCR" => Op::Incr(f[4].into(), f[5].parse().unwrap()),
                        "DEL" => Op::Del(f[4].into()),
                        "LOCK" => Op::Lock(f[4].into(), f[5].into()),
                        "UNLOCK" => Op::Unlock(f[4].into(), f[5].into()),
                        other => panic!("{}: unknown op {other}", ctx(line)),
                    };
                    if let Some(p) = pending.insert(t, (s, op)) {
                        panic!("{}: thread {t} began an op while {p:?} was unacknowledged", ctx(line));
                    }
                }
                "A" => {
                    let (t, s): (u64, u64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
                    let (ps, op) = pending.remove(&t).unwrap_or_else(|| panic!("{}: ack without begin", ctx(line)));
                    assert_eq!(ps, s, "{}: ack for another op", ctx(line));
                    let res = f[3];
                    self.acked_ops += 1;
                    match op {
                        Op::Set(k, v) => {
                            assert_eq!(res, "OK", "{}", ctx(line));
                            *self.acked_by_kind.entry("set").or_default() += 1;
                            self.state.insert(k, v);
                        }
                        Op::Incr(k, d) => {
                            *self.acked_by_kind.entry("incr").or_default() += 1;
                            let cur: i64 = self.state.get(&k).map_or(0, |v| v.parse().unwrap());
                            let got: i64 = res.parse().unwrap();
                            assert_eq!(
                                got,
                                cur + d,
                                "{}: counter {k} returned {got}, but its acknowledged increments sum to {cur} (+{d})",
                                ctx(line)
                            );
                            self.state.insert(k, got.to_string());
                        }
                        Op::Del(k) => {
                            *self.acked_by_kind.entry("del").or_default() += 1;
                            let existed = self.state.remove(&k).is_some();
                            assert_eq!(res, existed.to_string(), "{}: delete result for {k}", ctx(line));
                        }
                        Op::Lock(k, o) => {
                            *self.acked_by_kind.entry("lock").or_default() += 1;
                            let tok: u64 = res
                                .strip_prefix('T')
                                .unwrap_or_else(|| panic!("{}: own lock not granted", ctx(line)))
                                .parse()
                                .unwrap();
                            assert!(
                                tok > self.token_floor,
                                "{}: token {tok} is not above {} (the largest token acknowledged to, or recovered after, earlier children)",
                                ctx(line),
                                self.token_floor
                            );
                            let prev = last_token_of_thread.insert(t, tok).unwrap_or(0);
                            assert!(tok > prev, "{}: token {tok} not above this thread's previous {prev}", ctx(line));
                            self.tokens.push(tok);
                            self.max_acked_token = self.max_acked_token.max(tok);
                            self.state.insert(k, o);
                        }
                        Op::Unlock(k, o) => {
                            *self.acked_by_kind.entry("unlock").or_default() += 1;
                            let expect = match self.state.get(&k) {
                                None => "NOTFOUND",
                                Some(v) if *v != o => "NOTOWNER",
                                Some(_) => "DONE",
                            };
                            assert_eq!(res, expect, "{}: unlock result", ctx(line));
                            if expect == "DONE" {
                                self.state.remove(&k);
                            }
                        }
                    }
                }
                other => panic!("{}: unknown line kind {other}", ctx(line)),
            }
        }
        let mut inflight = InFlight::new();
        for (_, (_, op)) in pending {
            let applied = match &op {
                Op::Set(_, v) => Some(v.clone()),
                Op::Incr(k, d) => Some((self.state.get(k).map_or(0, |v| v.parse::<i64>().unwrap()) + d).to_string()),
                Op::Del(_) | Op::Unlock(..) => None,
                Op::Lock(_, o) => Some(o.clone()),
            };
            assert!(inflight.insert(op.key().to_string(), applied).is_none(), "two in-flight ops on one key");
        }
        inflight
    }

    /// Reopens `dir` and checks it holds exactly the model, each in-flight
    /// op either applied or not; adopts the outcome of in-flight ops.
    /// Returns the recovery stats.
    pub fn verify(&mut self, child: u64, dir: &Path, inflight: &InFlight) -> dbkv::engine::Stats {
        let mut o = Options::default();
        o.data_dir = Some(dir.to_path_buf());
        o.snapshot_ops = 0;
        o.snapshot_interval_secs = 0;
        self.verify_with(child, o, inflight)
    }

    /// `verify` with the given options (a `SimVfs`, say).
    pub fn verify_with(&mut self, child: u64, o: Options, inflight: &InFlight) -> dbkv::engine::Stats {
        let e = super::open_retry_busy(o).unwrap_or_else(|err| panic!("after killing child {child}: reopen failed: {err}"));
        let stats = e.stats();
        let actual: BTreeMap<String, String> = e
            .scan(b"")
            .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect();
        let keys: std::collections::BTreeSet<String> = self.state.keys().chain(actual.keys()).cloned().collect();
        for k in keys {
            let (want, got) = (self.state.get(&k), actual.get(&k));
            if want == got {
                if inflight.contains_key(&k) {
                    self.inflight_lost += 1;
                }
                continue;
            }
            match inflight.get(&k) {
                Some(alt) if alt.as_ref() == got => {
                    self.inflight_applied += 1;
                    match got {
                        Some(v) => self.state.insert(k.clone(), v.clone()),
                        None => self.state.remove(&k),
                    };
                }
                _ => panic!(
                    "after killing child {child}: key {k} is {got:?}, but the acknowledged ops give {want:?}{}",
                    match inflight.get(&k) {
                        Some(alt) => format!(" (or {alt:?} if the in-flight op landed)"),
                        None => String::new(),
                    }
                ),
            }
        }
        let last = e.last_token();
        assert!(
            last >= self.max_acked_token,
            "after killing child {child}: recovered last_token {last} is below acknowledged token {}: it would be handed out again",
            self.max_acked_token
        );
        self.token_floor = self.token_floor.max(last);
        assert!(
            stats.recovery_corrupt_records <= 1,
            "after killing child {child}: {} corrupt records; a kill can tear at most the last one",
            stats.recovery_corrupt_records
        );
        e.close().unwrap_or_else(|err| panic!("after killing child {child}: close failed: {err}"));
        stats
    }
}

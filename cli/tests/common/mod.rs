//! Harness for the integration tests of `dbkv serve`: starts servers on
//! free ports with their own temp data dirs, and a small blocking RESP
//! client that parses every RESP2/RESP3 type.
//!
//! Targets (environment):
//! - default: the `dbkv` binary cargo built for these tests;
//! - `DBKV_TEST_TARGET=redis`: a fresh `redis-server` per test (flags that
//!   have a Redis equivalent are translated), to prove the Redis-generic
//!   tests against the reference;
//! - `DBKV_TEST_EXTERNAL_PORT=P`: a server already listening on
//!   127.0.0.1:P; tests run one at a time and start with FLUSHALL, and
//!   tests that need flags are skipped.
//!
//! dbkv-only tests (restarts, DBKV.* commands, dbkv's flags) are skipped
//! on the other targets: they print `SKIPPED` and return.
//!
//! `DBKV_TEST_KEEP=1` keeps the temp dirs (data and server.log).
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a test waits for a reply before failing (generous: CI is a
/// shared 2-core machine).
pub const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Dbkv,
    Redis,
    External(u16),
}

pub fn target() -> Target {
    if let Ok(p) = std::env::var("DBKV_TEST_EXTERNAL_PORT") {
        return Target::External(p.trim().parse().expect("DBKV_TEST_EXTERNAL_PORT must be a port number"));
    }
    match std::env::var("DBKV_TEST_TARGET").as_deref() {
        Ok("redis") => Target::Redis,
        Ok("dbkv") | Ok("") | Err(_) => Target::Dbkv,
        Ok(other) => panic!("DBKV_TEST_TARGET must be dbkv or redis, not {other:?}"),
    }
}

pub fn is_dbkv() -> bool {
    target() == Target::Dbkv
}

pub fn soak() -> bool {
    std::env::var("DBKV_SOAK").is_ok_and(|v| v == "1")
}

/// Prints why the current test does nothing on this target.
pub fn skip(why: &str) {
    let name = std::thread::current().name().unwrap_or("?").to_string();
    eprintln!("SKIPPED {name}: {why} (target {:?})", target());
}

/// Returns from the test unless the target is dbkv.
#[macro_export]
macro_rules! dbkv_only {
    ($why:expr) => {
        if !common::is_dbkv() {
            common::skip($why);
            return;
        }
    };
}

mod client;

#[allow(unused_imports)]
pub use client::{is_reset, parse_all, Client, ReadError, Value};

/// The `dbkv` binary under test.
pub fn dbkv_bin() -> &'static str {
    env!("CARGO_BIN_EXE_dbkv")
}

/// A port nobody listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A fresh directory under the system temp dir, removed on drop unless
/// `DBKV_TEST_KEEP=1`.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let path = std::env::temp_dir().join(format!("dbkv-t{}-{}-{nanos:x}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var("DBKV_TEST_KEEP").is_ok_and(|v| v == "1") {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// External servers are shared: their tests run one at a time.
static EXTERNAL: Mutex<()> = Mutex::new(());

/// A server under test. Dropping it kills the process and removes its dir.
pub struct Server {
    pub target: Target,
    pub port: u16,
    /// Holds the data dir (`data/`), the log (`server.log`), sockets.
    pub dir: TempDir,
    pub data_dir: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    child: Option<Child>,
    _external: Option<MutexGuard<'static, ()>>,
}

/// Flags the harness sets itself unless the test gives them.
fn has_flag(args: &[String], flag: &str) -> bool {
    args.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")))
}

/// The redis-server arguments for dbkv flags; `None` if one has no
/// equivalent.
fn redis_args(args: &[String]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let v = args.get(i + 1).cloned();
        match a {
            "--requirepass" | "--maxclients" | "--client-query-buffer-limit" | "--unixsocket" | "--unixsocketperm" => {
                out.push(a.to_string());
                out.push(v?);
                i += 2;
            }
            "--client-output-buffer-limit" => {
                let v = v?;
                out.extend(["--client-output-buffer-limit".into(), "normal".into(), v.clone(), v, "0".into()]);
                i += 2;
            }
            "--max-value-bytes" => {
                out.push("--proto-max-bulk-len".into());
                out.push(v?);
                i += 2;
            }
            // Durability settings mean nothing to a Redis without persistence.
            "--sync" | "--fsync-interval-ms" => i += 2,
            "--disable-persistence" => i += 1,
            _ => return None,
        }
    }
    Some(out)
}

impl Server {
    /// Starts a server with these extra flags; panics if the target cannot
    /// honour them (use `try_start` in tests that pass flags).
    pub fn start(args: &[&str]) -> Server {
        Server::try_start(args).unwrap_or_else(|| panic!("target {:?} cannot run with {args:?}", target()))
    }

    /// Starts a server, or prints SKIPPED and returns `None` when the target
    /// cannot honour the flags (an external server, or a dbkv-only flag).
    pub fn try_start(args: &[&str]) -> Option<Server> {
        Server::try_start_env(args, &[])
    }

    /// Like `try_start`, with environment variables for the process.
    pub fn try_start_env(args: &[&str], envs: &[(&str, &str)]) -> Option<Server> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let envs: Vec<(String, String)> = envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let t = target();
        match t {
            Target::External(port) => {
                if !args.is_empty() || !envs.is_empty() {
                    skip(&format!("needs flags {args:?}"));
                    return None;
                }
                let guard = EXTERNAL.lock().unwrap_or_else(|p| p.into_inner());
                let dir = TempDir::new();
                let data_dir = dir.path.join("data");
                let s = Server { target: t, port, dir, data_dir, args, envs, child: None, _external: Some(guard) };
                // Start from an empty key space (ignore the reply: a server
                // without FLUSHALL still serves the tests that do not need it).
                let mut c = s.client();
                let _ = c.cmd(&["FLUSHALL"]);
                Some(s)
            }
            Target::Redis => {
                if redis_args(&args).is_none() || !envs.is_empty() {
                    skip(&format!("no redis-server equivalent for {args:?} {envs:?}"));
                    return None;
                }
                let dir = TempDir::new();
                let data_dir = dir.path.join("data");
                let mut s = Server { target: t, port: 0, dir, data_dir, args, envs, child: None, _external: None };
                s.spawn();
                Some(s)
            }
            Target::Dbkv => {
                let dir = TempDir::new();
                let data_dir = dir.path.join("data");
                let mut s = Server { target: t, port: 0, dir, data_dir, args, envs, child: None, _external: None };
                s.spawn();
                Some(s)
            }
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path.join("server.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn command(&self) -> Command {
        let mut cmd;
        match self.target {
            Target::Dbkv => {
                cmd = Command::new(dbkv_bin());
                cmd.arg("serve");
                if !has_flag(&self.args, "--port") && !self.envs.iter().any(|(k, _)| k == "DBKV_PORT") {
                    cmd.args(["--port", &self.port.to_string()]);
                }
                if !has_flag(&self.args, "--data-dir") && !self.envs.iter().any(|(k, _)| k == "DBKV_DATA_DIR") {
                    cmd.arg("--data-dir").arg(&self.data_dir);
                }
                cmd.args(&self.args);
                // The tests' flags and env vars are the only configuration.
                for (k, _) in std::env::vars() {
                    if k.starts_with("DBKV_") {
                        cmd.env_remove(k);
                    }
                }
                cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
            }
            Target::Redis => {
                cmd = Command::new("redis-server");
                cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]);
                cmd.arg("--dir").arg(&self.dir.path);
                cmd.args(redis_args(&self.args).unwrap());
            }
            Target::External(_) => unreachable!(),
        }
        cmd
    }

    /// Starts the process on a fresh port and waits until it answers;
    /// retries if another process took the port meanwhile.
    fn spawn(&mut self) {
        for attempt in 0.. {
            let fixed = self.envs.iter().find(|(k, _)| k == "DBKV_PORT").map(|(_, v)| v.clone()).or_else(|| {
                let i = self.args.iter().position(|a| a == "--port")?;
                self.args.get(i + 1).cloned()
            });
            self.port = match fixed {
                Some(p) => p.parse().expect("a numeric port"),
                None => free_port(),
            };
            let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
            let child = self.command().stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().expect("spawn the server");
            self.child = Some(child);
            match self.wait_ready() {
                Ok(()) => return,
                Err(e) if attempt < 4 && (self.log().contains("could not listen") || self.log().contains("Address already in use")) => {
                    eprintln!("server could not bind port {} ({e}); retrying", self.port);
                    let _ = std::fs::write(self.log_path(), "");
                }
                Err(e) => panic!("server did not start: {e}\n--- server log ---\n{}", self.log()),
            }
        }
    }

    /// Waits until the server answers (any reply counts: a PING that
    /// needs AUTH still proves it is serving).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("exited with {st}"));
            }
            if let Ok(s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut c = Client::from_tcp(s);
                c.set_timeout(Duration::from_secs(5));
                c.send(&["PING"]);
                if c.try_read_value().is_ok() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err("no reply to PING within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn addr(&self) -> (&'static str, u16) {
        ("127.0.0.1", self.port)
    }

    /// A new connection (RESP2, not authenticated).
    pub fn client(&self) -> Client {
        let s = TcpStream::connect(self.addr()).unwrap_or_else(|e| panic!("connect to port {}: {e}", self.port));
        Client::from_tcp(s)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server process").id()
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// Waits (up to `TIMEOUT`) for the process to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("server process");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!("server did not exit within {TIMEOUT:?}\n--- server log ---\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn sigterm_and_wait(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let r = unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
        assert_eq!(r, 0, "kill({}, {sig})", self.pid());
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same data dir (new port): a graceful
    /// stop first if it still runs.
    pub fn restart(&mut self) {
        assert_eq!(self.target, Target::Dbkv, "restart is dbkv-only");
        if self.is_running() {
            let st = self.sigterm_and_wait();
            assert!(st.success(), "shutdown before restart: {st}\n{}", self.log());
        }
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of the server log ({}) ---", self.log_path().display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        self.kill9();
    }
}

// ---- assertions ---------------------------------------------------------

#[track_caller]
pub fn ok(v: &Value) {
    assert_eq!(v, &Value::Simple("OK".into()), "expected +OK");
}

#[track_caller]
pub fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

#[track_caller]
pub fn bulk(v: &Value) -> Vec<u8> {
    match v {
        Value::Bulk(b) => b.clone(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

#[track_caller]
pub fn text(v: &Value) -> String {
    String::from_utf8(bulk(v)).expect("utf-8 bulk")
}

#[track_caller]
pub fn nil(v: &Value) {
    assert!(v.is_nil(), "expected nil, got {v:?}");
}

#[track_caller]
pub fn err_starts_with(v: &Value, prefix: &str) {
    match v {
        Value::Error(e) if e.starts_with(prefix) => {}
        other => panic!("expected an error starting with {prefix:?}, got {other:?}"),
    }
}

#[track_caller]
pub fn err_eq(v: &Value, msg: &str) {
    assert_eq!(v, &Value::Error(msg.into()), "expected this exact error");
}

/// A bulk string value.
pub fn b(s: &str) -> Value {
    Value::Bulk(s.as_bytes().to_vec())
}

pub fn arr(items: Vec<Value>) -> Value {
    Value::Array(items)
}

/// Proves the server still serves a fresh client: a write and a read
/// through a new connection (not PING, so it holds on any build).
#[track_caller]
pub fn assert_serving(s: &Server) {
    let mut c = s.client();
    let k = format!("alive:{}", free_port());
    ok(&c.cmd(&["SET", k.as_str(), "yes"]));
    assert_eq!(c.cmd(&["GET", k.as_str()]), b("yes"));
}

/// Raises this process's open-file soft limit to at least `n` (up to the
/// hard limit); returns the limit in force.
pub fn raise_nofile(n: u64) -> u64 {
    // SAFETY: getrlimit/setrlimit with a pointer to a local struct.
    unsafe {
        let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl), 0);
        if rl.rlim_cur < n {
            rl.rlim_cur = n.min(rl.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        }
        rl.rlim_cur
    }
}

/// Waits until `f` holds (polling), panicking with `what` after `TIMEOUT`.
#[track_caller]
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

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

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
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

/// One RESP value as the server sent it.
#[derive(Clone, PartialEq)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    /// `$-1` (RESP2 nil).
    NilBulk,
    /// `*-1` (RESP2 nil array).
    NilArray,
    /// `_` (RESP3 null).
    Null,
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Set(Vec<Value>),
    Double(f64),
    Boolean(bool),
    Verbatim(String, Vec<u8>),
    Push(Vec<Value>),
    BigNumber(String),
}

impl Value {
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::NilBulk | Value::NilArray | Value::Null)
    }

    /// The elements of an array, set or push.
    pub fn items(&self) -> &[Value] {
        match self {
            Value::Array(v) | Value::Set(v) | Value::Push(v) => v,
            other => panic!("expected an array, got {other:?}"),
        }
    }

    /// Key-value pairs of a RESP3 map or a RESP2 flat array of pairs.
    pub fn pairs(&self) -> Vec<(Value, Value)> {
        match self {
            Value::Map(m) => m.clone(),
            Value::Array(v) => {
                assert!(v.len() % 2 == 0, "odd-length array as a map: {self:?}");
                v.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect()
            }
            other => panic!("expected a map, got {other:?}"),
        }
    }

    /// The value for a text key of a map.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.pairs().into_iter().find(|(k, _)| k.as_text().as_deref() == Some(key)).map(|(_, v)| v)
    }

    /// Bulk, simple, verbatim text (lossy).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Simple(s) | Value::BigNumber(s) => Some(s.clone()),
            Value::Bulk(b) | Value::Verbatim(_, b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Simple(s) => write!(f, "+{s}"),
            Value::Error(s) => write!(f, "-{s}"),
            Value::Int(n) => write!(f, ":{n}"),
            Value::Bulk(b) if b.len() > 200 => write!(f, "${}<{:?}...>", b.len(), String::from_utf8_lossy(&b[..200])),
            Value::Bulk(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Value::NilBulk => write!(f, "$-1"),
            Value::NilArray => write!(f, "*-1"),
            Value::Null => write!(f, "_"),
            Value::Array(v) => f.debug_list().entries(v).finish(),
            Value::Map(m) => f.debug_map().entries(m.iter().map(|(k, v)| (k, v))).finish(),
            Value::Set(v) => write!(f, "~{v:?}"),
            Value::Double(d) => write!(f, ",{d}"),
            Value::Boolean(b) => write!(f, "#{}", if *b { 't' } else { 'f' }),
            Value::Verbatim(fmt_, b) => write!(f, "={fmt_}:{:?}", String::from_utf8_lossy(b)),
            Value::Push(v) => write!(f, ">{v:?}"),
            Value::BigNumber(s) => write!(f, "({s}"),
        }
    }
}

trait Stream: Read + Write + Send {
    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()>;
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Stream for TcpStream {
    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, d)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl Stream for UnixStream {
    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, d)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// Reads through a buffer from a stream we also write to.
struct Shared(Box<dyn Stream>);

impl Read for Shared {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

/// A small blocking RESP client. Every read has a timeout (`TIMEOUT` by
/// default) so a missing reply fails the test instead of hanging it.
pub struct Client {
    r: BufReader<Shared>,
}

/// Why a read found no whole value.
#[derive(Debug)]
pub enum ReadError {
    /// The connection ended (cleanly, or reset) before a value started.
    Closed,
    /// The connection ended in the middle of a value.
    Truncated,
    /// Bytes that are not RESP.
    Malformed(String),
    Timeout,
    Io(io::Error),
}

impl Client {
    pub fn from_tcp(s: TcpStream) -> Client {
        let _ = s.set_nodelay(true);
        Client::new(Box::new(s))
    }

    pub fn from_unix(s: UnixStream) -> Client {
        Client::new(Box::new(s))
    }

    fn new(s: Box<dyn Stream>) -> Client {
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        Client { r: BufReader::with_capacity(64 * 1024, Shared(s)) }
    }

    pub fn set_timeout(&mut self, d: Duration) {
        self.r.get_ref().0.set_read_timeout(Some(d)).unwrap();
    }

    /// Closes our sending side: the server sees EOF.
    pub fn shutdown_write(&mut self) {
        let _ = self.r.get_ref().0.shutdown_write();
    }

    /// Encodes a command as a RESP multibulk.
    pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
        let mut b = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref();
            b.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            b.extend_from_slice(a);
            b.extend_from_slice(b"\r\n");
        }
        b
    }

    /// Sends one command without reading its reply.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.send_raw(&Client::encode(args));
    }

    /// Sends bytes as they are; panics if the write fails.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.r.get_mut().0.write_all(bytes).unwrap_or_else(|e| panic!("write to the server: {e}"));
    }

    /// Sends bytes; the error if the server closed the connection.
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.r.get_mut().0.write_all(bytes)
    }

    /// Sends a command and reads its reply.
    #[track_caller]
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Value {
        self.send(args);
        self.read_value()
    }

    /// Sends a command and reads its reply; an error instead of a panic
    /// when the connection is gone.
    pub fn try_cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Value, ReadError> {
        self.try_send_raw(&Client::encode(args)).map_err(ReadError::Io)?;
        self.try_read_value()
    }

    /// Reads one value; panics if there is none.
    #[track_caller]
    pub fn read_value(&mut self) -> Value {
        match self.try_read_value() {
            Ok(v) => v,
            Err(e) => panic!("reading a reply: {e:?}"),
        }
    }

    /// Reads one value, skipping RESP3 attributes.
    pub fn try_read_value(&mut self) -> Result<Value, ReadError> {
        let first = self.read_line()?;
        self.parse_from(first)
    }

    /// True once the server has closed the connection (EOF or reset)
    /// without sending anything more; panics on unexpected data.
    #[track_caller]
    pub fn assert_closed(&mut self) {
        match self.try_read_value() {
            Err(ReadError::Closed) => {}
            Err(ReadError::Io(e)) if is_reset(&e) => {}
            other => panic!("expected the server to close the connection, got {other:?}"),
        }
    }

    fn read_line(&mut self) -> Result<Vec<u8>, ReadError> {
        let mut line = Vec::new();
        match self.r.read_until(b'\n', &mut line) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return Err(ReadError::Timeout),
            Err(e) if is_reset(&e) && line.is_empty() => return Err(ReadError::Closed),
            Err(e) => return Err(ReadError::Io(e)),
        }
        if !line.ends_with(b"\r\n") {
            return Err(if line.ends_with(b"\n") { ReadError::Malformed(format!("line without CR: {:?}", String::from_utf8_lossy(&line))) } else { ReadError::Truncated });
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn read_exact_n(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        let mut b = vec![0u8; n + 2];
        match self.r.read_exact(&mut b) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof || is_reset(&e) => return Err(ReadError::Truncated),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return Err(ReadError::Timeout),
            Err(e) => return Err(ReadError::Io(e)),
        }
        if &b[n..] != b"\r\n" {
            return Err(ReadError::Malformed("bulk data not followed by CRLF".into()));
        }
        b.truncate(n);
        Ok(b)
    }

    fn read_nested(&mut self) -> Result<Value, ReadError> {
        let line = match self.read_line() {
            Err(ReadError::Closed) => return Err(ReadError::Truncated),
            other => other?,
        };
        self.parse_from(line)
    }

    fn read_items(&mut self, n: i64) -> Result<Vec<Value>, ReadError> {
        (0..n).map(|_| self.read_nested()).collect()
    }

    fn parse_from(&mut self, line: Vec<u8>) -> Result<Value, ReadError> {
        let Some((&kind, rest)) = line.split_first() else { return Err(ReadError::Malformed("empty line".into())) };
        let text = String::from_utf8_lossy(rest).into_owned();
        let bad = |what: &str| ReadError::Malformed(format!("{what}: {:?}", String::from_utf8_lossy(&line)));
        let len = || -> Result<i64, ReadError> { text.parse::<i64>().map_err(|_| bad("bad length")) };
        Ok(match kind {
            b'+' => Value::Simple(text),
            b'-' => Value::Error(text),
            b':' => Value::Int(text.parse().map_err(|_| bad("bad integer"))?),
            b'$' => match len()? {
                -1 => Value::NilBulk,
                n if n >= 0 => Value::Bulk(self.read_exact_n(n as usize)?),
                _ => return Err(bad("bad bulk length")),
            },
            b'*' => match len()? {
                -1 => Value::NilArray,
                n if n >= 0 => Value::Array(self.read_items(n)?),
                _ => return Err(bad("bad array length")),
            },
            b'~' => Value::Set(self.read_items(len()?.max(0))?),
            b'>' => Value::Push(self.read_items(len()?.max(0))?),
            b'%' => {
                let n = len()?.max(0);
                let mut m = Vec::new();
                for _ in 0..n {
                    let k = self.read_nested()?;
                    let v = self.read_nested()?;
                    m.push((k, v));
                }
                Value::Map(m)
            }
            b'|' => {
                // An attribute: read and drop it, then the value it annotates.
                let n = len()?.max(0);
                for _ in 0..2 * n {
                    self.read_nested()?;
                }
                self.read_nested()?
            }
            b'_' if rest.is_empty() => Value::Null,
            b',' => Value::Double(match text.as_str() {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                t => t.parse().map_err(|_| bad("bad double"))?,
            }),
            b'#' if text == "t" || text == "f" => Value::Boolean(text == "t"),
            b'=' => {
                let n = len()?;
                let body = self.read_exact_n(n.max(0) as usize)?;
                if body.len() < 4 || body[3] != b':' {
                    return Err(bad("verbatim string without a format"));
                }
                Value::Verbatim(String::from_utf8_lossy(&body[..3]).into_owned(), body[4..].to_vec())
            }
            b'!' => Value::Error(String::from_utf8_lossy(&self.read_exact_n(len()?.max(0) as usize)?).into_owned()),
            b'(' => Value::BigNumber(text),
            _ => return Err(bad("unknown type byte")),
        })
    }
}

pub fn is_reset(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe)
}

/// Parses a whole byte string of replies (for checks on captured output).
pub fn parse_all(bytes: &[u8]) -> Result<Vec<Value>, ReadError> {
    let mut c = Client { r: BufReader::new(Shared(Box::new(Bytes(io::Cursor::new(bytes.to_vec()))))) };
    let mut out = Vec::new();
    loop {
        match c.try_read_value() {
            Ok(v) => out.push(v),
            Err(ReadError::Closed) => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

struct Bytes(io::Cursor<Vec<u8>>);

impl Read for Bytes {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Bytes {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Bytes {
    fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
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

/// A small deterministic RNG (xorshift64*), for tests that need no
/// shrinking.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

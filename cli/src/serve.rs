//! `dbkv serve`: flags (each also an environment variable), validation,
//! recovery, listeners, workers, signals and the graceful shutdown.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, ValueEnum};
use dbkv::engine::{LogLevel as EngineLevel, Options, RecoveryMode, SyncMode};
use dbkv::{Engine, Error};

use crate::server::event_loop::{self, Listener};
use crate::server::metrics_http;
use crate::server::{Server, Settings, SyncPolicy};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SyncArg {
    Always,
    Interval,
    None,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RecoveryArg {
    PointInTime,
    Absolute,
    SkipCorrupted,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Directory holding the WAL and snapshots (its parent must exist).
    #[arg(long, env = "DBKV_DATA_DIR", default_value = "./data", value_name = "DIR")]
    data_dir: PathBuf,
    /// Keep everything in memory only: nothing is written, nothing survives a restart.
    #[arg(long, env = "DBKV_DISABLE_PERSISTENCE")]
    disable_persistence: bool,
    /// When a write is durable before its reply: always (fsync before replying, group-committed),
    /// interval (fsync every --fsync-interval-ms), none (on rotation, snapshot and shutdown).
    #[arg(long, env = "DBKV_SYNC", value_enum, default_value = "interval")]
    sync: SyncArg,
    /// fsync period for --sync interval, in milliseconds (1 to 60000).
    #[arg(long, env = "DBKV_FSYNC_INTERVAL_MS", default_value_t = 100, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    fsync_interval_ms: u64,
    /// Addresses to listen on (comma-separated). A non-loopback address needs --requirepass or --unprotected.
    #[arg(long, env = "DBKV_BIND", default_value = "127.0.0.1", value_delimiter = ',', value_name = "ADDR")]
    bind: Vec<IpAddr>,
    /// TCP port; 0 listens on no TCP port (use --unixsocket).
    #[arg(long, env = "DBKV_PORT", default_value_t = 6380, value_name = "N")]
    port: u16,
    /// Also listen on this Unix-domain socket path.
    #[arg(long, env = "DBKV_UNIXSOCKET", value_name = "PATH")]
    unixsocket: Option<PathBuf>,
    /// Permissions of the Unix socket, in octal (e.g. 700).
    #[arg(long, env = "DBKV_UNIXSOCKETPERM", value_name = "OCTAL", value_parser = parse_octal, requires = "unixsocket")]
    unixsocketperm: Option<u32>,
    /// Password clients must give with AUTH or HELLO ... AUTH default <pw>.
    #[arg(long, env = "DBKV_REQUIREPASS", value_name = "PW", hide_env_values = true)]
    requirepass: Option<String>,
    /// Allow a non-loopback --bind without --requirepass.
    #[arg(long, env = "DBKV_UNPROTECTED")]
    unprotected: bool,
    /// Worker threads serving connections (default: half the cores, at least 1).
    #[arg(long, env = "DBKV_THREADS", value_name = "N", value_parser = clap::value_parser!(u64).range(1..=256))]
    threads: Option<u64>,
    /// Most simultaneous clients; later connections get an error and are closed.
    #[arg(long, env = "DBKV_MAXCLIENTS", default_value_t = 10_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    maxclients: u64,
    /// Most bytes a client may send ahead of the commands that ran (the client is dropped past it).
    #[arg(long, env = "DBKV_CLIENT_QUERY_BUFFER_LIMIT", default_value_t = 1 << 30, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1 << 20..))]
    client_query_buffer_limit: u64,
    /// Most reply bytes queued for a client that does not read them (the client is dropped past it).
    #[arg(long, env = "DBKV_CLIENT_OUTPUT_BUFFER_LIMIT", default_value_t = 256 << 20, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1 << 20..))]
    client_output_buffer_limit: u64,
    /// Engine shards (a power of two).
    #[arg(long, env = "DBKV_SHARDS", default_value_t = 256, value_name = "N")]
    shards: u32,
    /// Largest value in bytes (up to 1 GiB).
    #[arg(long, env = "DBKV_MAX_VALUE_BYTES", default_value_t = 64 << 20, value_name = "BYTES")]
    max_value_bytes: u64,
    /// Seconds between periodic snapshots (0 = only by --snapshot-ops, SAVE and shutdown).
    #[arg(long, env = "DBKV_SNAPSHOT_INTERVAL_SECS", default_value_t = 300, value_name = "N")]
    snapshot_interval_secs: u64,
    /// WAL records between snapshots (0 = no count trigger).
    #[arg(long, env = "DBKV_SNAPSHOT_OPS", default_value_t = 4_000_000, value_name = "N")]
    snapshot_ops: u64,
    /// Snapshots kept (1 to 100).
    #[arg(long, env = "DBKV_SNAPSHOT_KEEP", default_value_t = 3, value_name = "N")]
    snapshot_keep: u32,
    /// What recovery does with a damaged WAL: point-in-time (cut at the damage), absolute (refuse to start),
    /// skip-corrupted (skip the damaged block, keep what follows).
    #[arg(long, env = "DBKV_RECOVERY_MODE", value_enum, default_value = "point-in-time")]
    recovery_mode: RecoveryArg,
    /// Log level for the lines written to stderr (the engine's own events included).
    #[arg(long, env = "DBKV_LOG", value_enum, default_value = "info")]
    log_level: LogLevel,
    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9121); off unless set.
    #[arg(long, env = "DBKV_METRICS_ADDR", value_name = "IP:PORT")]
    metrics_addr: Option<SocketAddr>,
}

fn parse_octal(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8).ok().filter(|&m| m <= 0o777).ok_or_else(|| format!("'{s}' is not an octal permission (000 to 777)"))
}

/// A bad flag value: one line, exit status 2, nothing created.
fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn engine_options(a: &ServeArgs) -> Result<Options, String> {
    let mut o = Options::default();
    let flag = |name: &'static str| move |e: Error| format!("{name}: {}", e.to_string().trim_start_matches("invalid argument: "));
    o.set_shards(a.shards).map_err(flag("--shards"))?;
    o.set_max_value_bytes(a.max_value_bytes).map_err(flag("--max-value-bytes"))?;
    o.set_sync_interval_ms(a.fsync_interval_ms).map_err(flag("--fsync-interval-ms"))?;
    o.set_snapshot_keep(a.snapshot_keep).map_err(flag("--snapshot-keep"))?;
    o.snapshot_interval_secs = a.snapshot_interval_secs;
    o.snapshot_ops = a.snapshot_ops;
    o.recovery_mode = match a.recovery_mode {
        RecoveryArg::PointInTime => RecoveryMode::PointInTime,
        RecoveryArg::Absolute => RecoveryMode::Absolute,
        RecoveryArg::SkipCorrupted => RecoveryMode::SkipCorrupted,
    };
    // `--sync always` is kept by the server (one fsync per event-loop pass
    // before the replies leave), so the engine itself runs in interval mode.
    o.sync_mode = match a.sync {
        SyncArg::None => SyncMode::None,
        SyncArg::Interval | SyncArg::Always => SyncMode::Interval,
    };
    if !a.disable_persistence {
        o.data_dir = Some(a.data_dir.clone());
    }
    o.logger = Some(Arc::new(engine_log));
    o.log_level = match a.log_level {
        LogLevel::Error => EngineLevel::Error,
        LogLevel::Warn => EngineLevel::Warn,
        LogLevel::Info => EngineLevel::Info,
        LogLevel::Debug | LogLevel::Trace => EngineLevel::Debug,
    };
    Ok(o)
}

/// The engine's events (recovery, snapshots, failures, rotation) go to
/// this server's log, marked as coming from the engine.
fn engine_log(level: EngineLevel, msg: &str) {
    match level {
        EngineLevel::Error => tracing::error!(source = "engine", "{msg}"),
        EngineLevel::Warn => tracing::warn!(source = "engine", "{msg}"),
        EngineLevel::Info => tracing::info!(source = "engine", "{msg}"),
        EngineLevel::Debug => tracing::debug!(source = "engine", "{msg}"),
    }
}

fn init_logging(level: LogLevel) {
    let level = match level {
        LogLevel::Error => tracing::Level::ERROR,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Trace => tracing::Level::TRACE,
    };
    use std::io::IsTerminal;
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(level).with_ansi(std::io::stderr().is_terminal()).with_target(false).init();
}

pub fn run(a: ServeArgs) -> ExitCode {
    let opts = match engine_options(&a) {
        Ok(o) => o,
        Err(m) => return usage_error(&m),
    };
    let exposed = a.port != 0 && a.bind.iter().any(|ip| !ip.is_loopback());
    if exposed && a.requirepass.is_none() && !a.unprotected {
        return usage_error("--bind: a non-loopback address without --requirepass would let anyone on the network in; set --requirepass (or pass --unprotected)");
    }
    if a.port == 0 && a.unixsocket.is_none() {
        return usage_error("--port: 0 disables TCP, so --unixsocket is needed or no client can connect");
    }
    init_logging(a.log_level);
    raise_fd_limit(a.maxclients);
    let engine = match open_engine(&a, opts) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let settings = settings(&a);
    let srv = Server::new(engine, settings).shared();
    let listeners = match bind_all(&a, &srv) {
        Ok(l) => l,
        Err(m) => {
            tracing::error!("{m}");
            return close(srv, ExitCode::from(1));
        }
    };
    let metrics = match a.metrics_addr.map(|addr| metrics_http::start(addr, Arc::downgrade(&srv))).transpose() {
        Ok(m) => m,
        Err(m) => {
            tracing::error!("{m}");
            return close(srv, ExitCode::from(1));
        }
    };
    if let Some((addr, _)) = &metrics {
        tracing::info!("serving metrics on http://{addr}/metrics");
    }
    let threads = a.threads.map_or_else(default_threads, |n| n as usize);
    let workers = match event_loop::start(srv.clone(), &listeners, threads) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("could not start the workers: {e}");
            return close(srv, ExitCode::from(1));
        }
    };
    let syncer = (srv.settings.sync == SyncPolicy::Always).then(|| {
        let srv = srv.clone();
        std::thread::Builder::new().name("dbkv-group-commit".into()).spawn(move || crate::server::group_commit::Gate::run(srv))
    });
    let syncer = match syncer.transpose() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("could not start the group-commit thread: {e}");
            return close(srv, ExitCode::from(1));
        }
    };
    watch_signals(Arc::downgrade(&srv));
    tracing::info!(threads, "ready to accept connections");
    for w in workers {
        let _ = w.join();
    }
    if let Some(s) = syncer {
        let _ = s.join();
    }
    if let Some((_, m)) = metrics {
        let _ = m.join();
    }
    if let Some(p) = &a.unixsocket {
        let _ = std::fs::remove_file(p);
    }
    close(srv, ExitCode::SUCCESS)
}

/// Half the cores: the WAL writer, the snapshotter and (usually) clients
/// on the same host need the rest. On 2 cores one worker beats two: two
/// workers and a benchmark client contend for the cores (measured in the
/// README's benchmark section).
fn default_threads() -> usize {
    (std::thread::available_parallelism().map_or(2, |n| n.get()) / 2).max(1)
}

fn settings(a: &ServeArgs) -> Settings {
    Settings {
        requirepass: a.requirepass.as_ref().map(|p| p.as_bytes().to_vec()),
        maxclients: a.maxclients as usize,
        query_buffer_limit: a.client_query_buffer_limit as usize,
        output_buffer_limit: a.client_output_buffer_limit as usize,
        max_bulk: (a.max_value_bytes as usize).max(1 << 20),
        sync: match a.sync {
            SyncArg::Always => SyncPolicy::Always,
            SyncArg::Interval => SyncPolicy::Interval,
            SyncArg::None => SyncPolicy::None,
        },
        fsync_interval_ms: a.fsync_interval_ms,
        persistence: !a.disable_persistence,
        data_dir: a.data_dir.display().to_string(),
        bind: a.bind.iter().map(|b| b.to_string()).collect(),
        port: a.port,
        unixsocket: a.unixsocket.as_ref().map(|p| p.display().to_string()),
        threads: a.threads.unwrap_or(0) as usize,
        shards: a.shards,
        max_value_bytes: a.max_value_bytes,
        snapshot_interval_secs: a.snapshot_interval_secs,
        snapshot_ops: a.snapshot_ops,
        snapshot_keep: a.snapshot_keep,
        recovery_mode: format!("{:?}", a.recovery_mode),
    }
}

/// Recovers the data directory (before any listener exists). The engine
/// logs what it found (damage at WARN naming file and offset, its summary
/// at INFO) and reports progress to the display; this adds one line with
/// the figures the server starts with.
fn open_engine(a: &ServeArgs, opts: Options) -> Result<Engine, ExitCode> {
    let started = Instant::now();
    if a.disable_persistence {
        tracing::info!("persistence disabled: data lives in memory only");
    } else {
        tracing::info!(data_dir = %a.data_dir.display(), "recovering");
    }
    let progress = crate::progress::Progress::new("recovery", crate::progress::Unit::Bytes, 0, false);
    let r = Engine::open(Options { progress: Some(progress.recovery_hook()), ..opts });
    progress.finish();
    match r {
        Ok(e) => {
            let st = e.stats();
            tracing::info!(
                keys = st.keys,
                snapshot_loaded = st.recovery_snapshot_loaded,
                snapshot_entries = st.recovery_snapshot_entries,
                wal_records = st.recovery_wal_records,
                bytes_cut = st.recovery_bytes_dropped,
                seconds = format!("{:.3}", started.elapsed().as_secs_f64()),
                "ready to serve"
            );
            Ok(e)
        }
        Err(Error::Busy(m)) => {
            tracing::error!("BUSY {m}");
            Err(ExitCode::from(1))
        }
        Err(e) => {
            tracing::error!("could not open {}: {e}", a.data_dir.display());
            Err(ExitCode::from(1))
        }
    }
}

fn bind_all(a: &ServeArgs, srv: &Server) -> Result<Vec<Listener>, String> {
    let mut out = Vec::new();
    if a.port != 0 {
        for ip in &a.bind {
            let addr = SocketAddr::new(*ip, a.port);
            let l = std::net::TcpListener::bind(addr).map_err(|e| format!("could not listen on {addr}: {e}"))?;
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            deepen_backlog(&l);
            let port = l.local_addr().map_err(|e| e.to_string())?.port();
            srv.bound_port.store(port as u64, Ordering::Relaxed);
            tracing::info!("listening on {}", l.local_addr().map_err(|e| e.to_string())?);
            out.push(Listener::Tcp(l));
        }
    }
    if let Some(path) = &a.unixsocket {
        let _ = std::fs::remove_file(path);
        let l = std::os::unix::net::UnixListener::bind(path).map_err(|e| format!("could not listen on {}: {e}", path.display()))?;
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        if let Some(mode) = a.unixsocketperm {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| format!("could not chmod {}: {e}", path.display()))?;
        }
        tracing::info!("listening on {}", path.display());
        out.push(Listener::Unix(l));
    }
    Ok(out)
}

/// std listens with a backlog of 128; a burst of connects (a worker pool
/// starting) then waits a second for a SYN retry. 511 is Redis's default
/// (`tcp-backlog`); the kernel caps it at `net.core.somaxconn`.
fn deepen_backlog(l: &std::net::TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: listen() on a socket we own; calling it again on a listening
    // socket only changes the backlog.
    unsafe {
        libc::listen(l.as_raw_fd(), 511);
    }
}

/// SIGTERM and SIGINT start the graceful shutdown; a second one while it
/// runs is ignored (the shutdown is bounded anyway).
fn watch_signals(srv: std::sync::Weak<Server>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("could not install signal handlers: {e}");
            return;
        }
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            tracing::info!("received signal {sig}: shutting down");
            if let Some(srv) = srv.upgrade() {
                srv.request_shutdown();
            }
        }
    });
}

/// Flushes, fsyncs and closes the engine.
fn close(srv: Arc<Server>, code: ExitCode) -> ExitCode {
    // A thread may still hold the server (a BGSAVE finishing): then sync
    // explicitly; the engine closes with the process.
    let r = match Arc::try_unwrap(srv) {
        Ok(s) => s.engine.close(),
        Err(srv) => srv.engine.sync(),
    };
    match r {
        Ok(()) => {
            tracing::info!("shut down");
            code
        }
        Err(e) => {
            tracing::error!("the final flush and fsync failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// 10,000 clients need more descriptors than the usual soft limit of 1024.
fn raise_fd_limit(maxclients: u64) {
    let want = maxclients + 64;
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < want {
            rl.rlim_cur = want.min(rl.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want {
                tracing::warn!("open-file limit is {}; fewer than --maxclients {maxclients} clients can connect", rl.rlim_cur);
            }
        }
    }
}

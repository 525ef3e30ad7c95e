//! `dbkv serve`: the engine behind the Redis protocol.
//!
//! Worker threads each run a `mio` event loop over their own connections
//! (see `event_loop`); commands run on the worker that read them, straight
//! against the engine, whose shard locks make them safe from every thread.
//! State that crosses connections (pub/sub, the client list, shutdown)
//! lives in `Server`.

pub mod blocking;
pub mod client;
pub mod commands;
pub mod conn;
pub mod event_loop;
pub mod glob;
pub mod group_commit;
pub mod metrics;
pub mod metrics_http;
pub mod prometheus;
pub mod pubsub;
pub mod reply;
pub mod resp;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use dbkv::Engine;

use client::Clients;
use pubsub::PubSub;

/// How `dbkv serve` makes writes durable before it replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Replies go out once the writes they follow are fsynced: the worker
    /// fsyncs once per event-loop pass for every client it served (group
    /// commit, as Redis's `appendfsync always`).
    Always,
    /// The engine fsyncs every `fsync_interval_ms`.
    Interval,
    /// fsync only on segment rotation, snapshot and shutdown.
    None,
}

/// Settings the protocol layer needs (the engine has its own).
#[derive(Clone, Debug)]
pub struct Settings {
    pub requirepass: Option<Vec<u8>>,
    pub maxclients: usize,
    pub query_buffer_limit: usize,
    pub output_buffer_limit: usize,
    pub max_bulk: usize,
    pub sync: SyncPolicy,
    pub fsync_interval_ms: u64,
    pub persistence: bool,
    pub data_dir: String,
    pub bind: Vec<String>,
    pub port: u16,
    pub unixsocket: Option<String>,
    pub threads: usize,
    pub shards: u32,
    pub max_value_bytes: u64,
    pub snapshot_interval_secs: u64,
    pub snapshot_ops: u64,
    pub snapshot_keep: u32,
    pub recovery_mode: String,
}

/// Counters for INFO stats.
#[derive(Default)]
pub struct Counters {
    pub connections_received: AtomicU64,
    pub commands_processed: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    pub dirty: AtomicU64,
}

/// What every connection shares.
pub struct Server {
    pub engine: Engine,
    pub settings: Settings,
    pub pubsub: PubSub,
    /// Clients blocked on lists (BLPOP and friends).
    pub blocking: blocking::Blocking,
    pub clients: Clients,
    pub counters: Counters,
    /// Calls, time and errors by command (INFO commandstats, `/metrics`).
    pub commands: metrics::CommandStats,
    /// Group commit for `--sync always` (see `group_commit`).
    pub gate: group_commit::Gate,
    pub started: Instant,
    pub run_id: String,
    /// Unix seconds of the last snapshot this server took (or its start).
    pub lastsave: AtomicU64,
    shutdown: AtomicBool,
    /// Set once, when the workers exist: lets any thread wake them all.
    pub wakers: OnceLock<Vec<std::sync::Arc<event_loop::WorkerHandle>>>,
    /// The TCP port actually bound (port 0 asks the OS for one).
    pub bound_port: AtomicU64,
    /// Background saves (BGSAVE) running, and whether the last one worked.
    pub bgsaves: AtomicU64,
    pub last_bgsave_ok: AtomicBool,
    /// The server's own `Arc` once `shared` made one: lets a command start
    /// work that outlives it (BGSAVE).
    me: OnceLock<Weak<Server>>,
}

impl Server {
    pub fn new(engine: Engine, settings: Settings) -> Server {
        Server {
            engine,
            settings,
            pubsub: PubSub::default(),
            blocking: blocking::Blocking::default(),
            clients: Clients::default(),
            counters: Counters::default(),
            commands: metrics::CommandStats::default(),
            gate: group_commit::Gate::default(),
            started: Instant::now(),
            run_id: run_id(),
            lastsave: AtomicU64::new(unix_secs()),
            shutdown: AtomicBool::new(false),
            wakers: OnceLock::new(),
            bound_port: AtomicU64::new(0),
            bgsaves: AtomicU64::new(0),
            last_bgsave_ok: AtomicBool::new(true),
            me: OnceLock::new(),
        }
    }

    /// Moves the server into an `Arc` that commands can reach (`arc`).
    pub fn shared(self) -> Arc<Server> {
        let srv = Arc::new(self);
        let _ = srv.me.set(Arc::downgrade(&srv));
        srv
    }

    /// The `Arc` holding this server, if it was made by `shared`.
    pub fn arc(&self) -> Option<Arc<Server>> {
        self.me.get().and_then(Weak::upgrade)
    }

    /// Starts a graceful shutdown: workers stop accepting, finish what
    /// they read, flush their replies and exit.
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.gate.stop();
        for w in self.wakers.get().into_iter().flatten() {
            w.wake();
        }
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }
}

pub fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// 40 hex characters, as Redis's run_id (clients only display it).
fn run_id() -> String {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64) ^ (std::process::id() as u64) << 32;
    let mut x = seed | 1;
    (0..40)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x % 16) as u32, 16).unwrap()
        })
        .collect()
}

//! Per-command counters (calls, time, failures, rejections) and the one
//! read of every server and engine figure that INFO and `/metrics` both
//! render, so the two always agree.
//!
//! The command counters sit on the hot path of every command. Each worker
//! thread bumps its own lane (a table indexed by the command's position in
//! `COMMANDS`) with relaxed atomics, so workers never write the same cache
//! lines; readers fold the lanes. A lane is picked by the worker owning the
//! client, and the adds stay atomic because a command may now and then run
//! on another thread (a blocked client resumed elsewhere).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dbkv::engine::Stats;

use super::commands::COMMANDS;
use super::Server;

/// Lanes of counters; workers beyond this share lanes (still correct, as
/// the adds are atomic, only less private).
const LANES: usize = 16;

#[derive(Default)]
struct Cell {
    calls: AtomicU64,
    nanos: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
}

/// The figures of one command, folded over every lane.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandTotals {
    /// Runs of the handler (inside EXEC too, as Redis counts them).
    pub calls: u64,
    /// Time in the handler, in nanoseconds.
    pub nanos: u64,
    /// Runs that replied with an error.
    pub failed: u64,
    /// Calls refused before running: wrong arity, NOAUTH, not allowed in
    /// MULTI or in a subscribed RESP2 connection.
    pub rejected: u64,
}

impl CommandTotals {
    pub fn usec(&self) -> u64 {
        self.nanos / 1_000
    }

    pub fn seconds(&self) -> f64 {
        self.nanos as f64 / 1e9
    }

    fn used(&self) -> bool {
        self.calls + self.failed + self.rejected > 0
    }
}

pub struct CommandStats {
    lanes: Vec<Box<[Cell]>>,
}

impl Default for CommandStats {
    fn default() -> Self {
        let lane = || (0..COMMANDS.len()).map(|_| Cell::default()).collect::<Box<[Cell]>>();
        CommandStats { lanes: (0..LANES).map(|_| lane()).collect() }
    }
}

impl CommandStats {
    fn cell(&self, lane: usize, cmd: usize) -> &Cell {
        &self.lanes[lane % LANES][cmd]
    }

    /// One run of command number `cmd` (its index in `COMMANDS`).
    #[inline]
    pub fn record(&self, lane: usize, cmd: usize, took: Duration, failed: bool) {
        let c = self.cell(lane, cmd);
        c.calls.fetch_add(1, Ordering::Relaxed);
        c.nanos.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        if failed {
            c.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn reject(&self, lane: usize, cmd: usize) {
        self.cell(lane, cmd).rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Every command that was called, failed or rejected at least once, in
    /// table order, with its totals.
    pub fn totals(&self) -> Vec<(&'static str, CommandTotals)> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = Vec::new();
        for (i, spec) in COMMANDS.iter().enumerate() {
            let mut t = CommandTotals::default();
            for lane in &self.lanes {
                let c = &lane[i];
                t.calls += load(&c.calls);
                t.nanos += load(&c.nanos);
                t.failed += load(&c.failed);
                t.rejected += load(&c.rejected);
            }
            if t.used() {
                out.push((spec.name, t));
            }
        }
        out
    }
}

/// The server's figures at one moment (each read on its own, relaxed).
#[derive(Clone, Debug, Default)]
pub struct ServerFigures {
    pub uptime_secs: u64,
    pub connected_clients: u64,
    pub blocked_clients: u64,
    pub maxclients: u64,
    pub connections_received: u64,
    pub rejected_connections: u64,
    pub commands_processed: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub pubsub_channels: u64,
    pub pubsub_patterns: u64,
    pub commands: Vec<(&'static str, CommandTotals)>,
}

impl ServerFigures {
    /// Cheap: no shard lock is taken (INFO may run inside EXEC).
    pub fn take(srv: &Server) -> ServerFigures {
        let c = &srv.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ServerFigures {
            uptime_secs: srv.started.elapsed().as_secs(),
            connected_clients: srv.clients.count() as u64,
            blocked_clients: srv.blocking.count() as u64,
            maxclients: srv.settings.maxclients as u64,
            connections_received: get(&c.connections_received),
            rejected_connections: get(&c.rejected_connections),
            commands_processed: get(&c.commands_processed),
            net_input_bytes: get(&c.net_input_bytes),
            net_output_bytes: get(&c.net_output_bytes),
            keyspace_hits: get(&c.keyspace_hits),
            keyspace_misses: get(&c.keyspace_misses),
            pubsub_channels: srv.pubsub.channels(None).len() as u64,
            pubsub_patterns: srv.pubsub.numpat() as u64,
            commands: srv.commands.totals(),
        }
    }
}

/// Everything `/metrics` shows: the server's figures and the engine's.
pub struct Figures {
    pub server: ServerFigures,
    pub engine: Stats,
}

impl Figures {
    /// Reads the engine's stats too, which read-locks every shard to count
    /// the keys: never call it from inside a transaction.
    pub fn take(srv: &Server) -> Figures {
        Figures { server: ServerFigures::take(srv), engine: srv.engine.stats() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_fold_and_unused_commands_are_left_out() {
        let s = CommandStats::default();
        let get = COMMANDS.iter().position(|c| c.name == "get").unwrap();
        let set = COMMANDS.iter().position(|c| c.name == "set").unwrap();
        s.record(0, get, Duration::from_micros(3), false);
        s.record(LANES + 1, get, Duration::from_micros(5), true);
        s.reject(7, set);
        let t = s.totals();
        assert_eq!(t.len(), 2);
        let g = t.iter().find(|(n, _)| *n == "get").unwrap().1;
        assert_eq!(g, CommandTotals { calls: 2, nanos: 8_000, failed: 1, rejected: 0 });
        assert_eq!(g.usec(), 8);
        let st = t.iter().find(|(n, _)| *n == "set").unwrap().1;
        assert_eq!((st.calls, st.rejected), (0, 1));
    }
}

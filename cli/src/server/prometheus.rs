//! `Figures` in the Prometheus text exposition format, version 0.0.4:
//! every family with `# HELP` and `# TYPE`, names prefixed `dbkv_`,
//! counters ending in `_total`, durations in seconds.

use std::fmt::{Display, Write};

use dbkv::engine::OpKind;

use super::metrics::{Figures, ServerFigures};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition being written.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = write!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                let sep = if i > 0 { "," } else { "" };
                let _ = write!(self.0, "{sep}{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A family of one unlabelled sample.
    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.one(name, "counter", help, value)
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl Display) {
        self.one(name, "gauge", help, value)
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

pub fn render(f: &Figures) -> String {
    let mut o = Out(String::with_capacity(8 * 1024));
    server(&mut o, &f.server);
    commands(&mut o, &f.server);
    engine(&mut o, f);
    o.0
}

fn server(o: &mut Out, s: &ServerFigures) {
    o.gauge("dbkv_uptime_seconds", "Seconds since the server started.", s.uptime_secs);
    o.gauge("dbkv_connected_clients", "Client connections open now.", s.connected_clients);
    o.gauge("dbkv_blocked_clients", "Clients waiting in a blocking command (BLPOP and friends).", s.blocked_clients);
    o.gauge("dbkv_maxclients", "Most simultaneous clients (--maxclients).", s.maxclients);
    o.counter("dbkv_connections_received_total", "Client connections accepted, including the rejected ones.", s.connections_received);
    o.counter("dbkv_rejected_connections_total", "Client connections refused because --maxclients was reached.", s.rejected_connections);
    o.counter("dbkv_commands_processed_total", "Commands received, including unknown and refused ones.", s.commands_processed);
    o.counter("dbkv_net_input_bytes_total", "Bytes read from clients.", s.net_input_bytes);
    o.counter("dbkv_net_output_bytes_total", "Bytes written to clients.", s.net_output_bytes);
    o.counter("dbkv_keyspace_hits_total", "Key lookups that found the key.", s.keyspace_hits);
    o.counter("dbkv_keyspace_misses_total", "Key lookups that did not find the key.", s.keyspace_misses);
    o.gauge("dbkv_pubsub_channels", "Channels with at least one subscriber.", s.pubsub_channels);
    o.gauge("dbkv_pubsub_patterns", "Pattern subscriptions.", s.pubsub_patterns);
}

/// Per command name, only commands used since start (as INFO
/// commandstats lists them).
fn commands(o: &mut Out, s: &ServerFigures) {
    let each = |o: &mut Out, name: &str, v: &dyn Fn(&super::metrics::CommandTotals) -> String| {
        for (cmd, t) in &s.commands {
            o.sample(name, &[("cmd", cmd)], v(t));
        }
    };
    o.family("dbkv_commands_total", "counter", "Calls of each command (inside MULTI/EXEC too).");
    each(o, "dbkv_commands_total", &|t| t.calls.to_string());
    o.family("dbkv_command_duration_seconds", "summary", "Time spent running each command (no quantiles: rate(_sum)/rate(_count) is the mean).");
    each(o, "dbkv_command_duration_seconds_sum", &|t| t.seconds().to_string());
    each(o, "dbkv_command_duration_seconds_count", &|t| t.calls.to_string());
    o.family("dbkv_commands_failed_total", "counter", "Calls of each command that replied with an error.");
    each(o, "dbkv_commands_failed_total", &|t| t.failed.to_string());
    o.family("dbkv_commands_rejected_total", "counter", "Calls of each command refused before running (arity, NOAUTH, MULTI, subscribed context).");
    each(o, "dbkv_commands_rejected_total", &|t| t.rejected.to_string());
}

fn engine(o: &mut Out, f: &Figures) {
    let st = &f.engine;
    o.gauge("dbkv_keys", "Keys stored (including expired ones not reclaimed yet).", st.keys);
    o.family("dbkv_ops_total", "counter", "Engine operations by kind (a multi-key command counts once per key).");
    for k in OpKind::ALL {
        o.sample("dbkv_ops_total", &[("kind", k.name())], st.ops[k as usize]);
    }
    o.counter("dbkv_wal_records_total", "Records written to the WAL since start.", st.wal_records);
    o.counter("dbkv_wal_bytes_total", "Bytes written to the WAL since start.", st.wal_bytes);
    o.gauge("dbkv_wal_segments", "WAL segment files on disk.", st.wal_segments);
    o.counter("dbkv_wal_rotations_total", "WAL segments started since start.", st.wal_rotations);
    o.counter("dbkv_fsyncs_total", "fsyncs of the WAL since start.", st.fsyncs);
    o.family("dbkv_fsync_duration_seconds", "summary", "fsync latency (quantiles are log2 bucket upper bounds, at most twice the true value).");
    o.sample("dbkv_fsync_duration_seconds", &[("quantile", "0.5")], secs(st.fsync_p50_us));
    o.sample("dbkv_fsync_duration_seconds", &[("quantile", "0.99")], secs(st.fsync_p99_us));
    o.sample("dbkv_fsync_duration_seconds_sum", &[], secs(st.fsync_total_us));
    o.sample("dbkv_fsync_duration_seconds_count", &[], st.fsyncs);
    o.gauge("dbkv_fsync_duration_max_seconds", "Slowest fsync since start.", secs(st.fsync_max_us));
    o.gauge("dbkv_durable_lsn", "Highest log sequence number known to be on disk.", st.durable_lsn);
    o.gauge("dbkv_last_lsn", "Highest log sequence number handed out.", st.last_lsn);
    o.counter("dbkv_snapshots_total", "Snapshots taken since start.", st.snapshots_taken);
    o.counter("dbkv_snapshot_failures_total", "Snapshots that failed since start.", st.snapshot_failures);
    o.gauge("dbkv_last_snapshot_duration_seconds", "How long the last snapshot took.", secs(st.last_snapshot_duration_us));
    o.gauge("dbkv_last_snapshot_bytes", "Size of the last snapshot file.", st.last_snapshot_bytes);
    o.gauge("dbkv_last_snapshot_timestamp_seconds", "Unix time the last snapshot completed (0: none since start).", st.last_snapshot_unix_ms as f64 / 1e3);
    o.gauge("dbkv_recovery_snapshot_loaded", "1 if recovery at start loaded a snapshot.", st.recovery_snapshot_loaded as u8);
    o.gauge("dbkv_recovery_snapshot_entries", "Entries recovery loaded from the snapshot.", st.recovery_snapshot_entries);
    o.gauge("dbkv_recovery_wal_records", "WAL records recovery replayed.", st.recovery_wal_records);
    o.gauge("dbkv_recovery_corrupt_records", "Damaged WAL records recovery found.", st.recovery_corrupt_records);
    o.gauge("dbkv_recovery_bytes_dropped", "WAL bytes recovery cut or set aside.", st.recovery_bytes_dropped);
    o.gauge("dbkv_recovery_duration_seconds", "How long recovery at start took.", secs(st.recovery_duration_us));
    o.counter("dbkv_expired_keys_total", "Expired keys removed (by the sweep or by the access that found them).", st.expired_reclaimed);
    o.counter("dbkv_backpressure_waits_total", "Writes that waited because the WAL queue was full.", st.backpressure_waits);
    o.one("dbkv_backpressure_wait_seconds_total", "counter", "Total time writes waited for room in the WAL queue.", secs(st.backpressure_wait_us));
    o.gauge("dbkv_failed", "1 once the engine could not write or fsync its WAL and refuses writes.", st.failed as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_label_escapes() {
        let mut o = Out(String::new());
        o.counter("dbkv_x_total", "An x.", 3);
        o.sample("dbkv_y", &[("cmd", "a\"b\\c\nd"), ("k", "v")], 1.5);
        assert_eq!(o.0, "# HELP dbkv_x_total An x.\n# TYPE dbkv_x_total counter\ndbkv_x_total 3\ndbkv_y{cmd=\"a\\\"b\\\\c\\nd\",k=\"v\"} 1.5\n");
    }
}

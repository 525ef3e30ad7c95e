//! INFO: Redis's sections and field names (clients and monitoring tools
//! parse them), with the engine's own statistics as `dbkv_*` fields.

use std::fmt::{Display, Write};
use std::sync::atomic::Ordering;

use dbkv::engine::{OpKind, Stats};

use super::connection::REDIS_VERSION;
use super::{eq_ignore_case, Ctx};
use crate::server::metrics::ServerFigures;
use crate::server::{Server, SyncPolicy};

/// What sections are written from: the same reads `/metrics` renders
/// (`server::metrics`). `stats` is read only when a chosen section needs it
/// (it counts the keys of every shard).
struct Facts<'a> {
    srv: &'a Server,
    figures: ServerFigures,
    stats: Option<Stats>,
}

/// An INFO text being built: `name:value` lines, CRLF-terminated.
struct Lines(String);

impl Lines {
    fn kv(&mut self, k: &str, v: impl Display) {
        let _ = write!(self.0, "{k}:{v}\r\n");
    }
}

type Writer = fn(&mut Lines, &Facts<'_>);

/// Every section, in the order Redis prints them: name, header, whether
/// plain INFO (or `default`) shows it, writer. `all` and `everything` show
/// them all.
static SECTIONS: &[(&str, &str, bool, Writer)] = &[
    ("server", "Server", true, server),
    ("clients", "Clients", true, clients),
    ("memory", "Memory", true, memory),
    ("persistence", "Persistence", true, persistence),
    ("stats", "Stats", true, stats),
    ("replication", "Replication", true, replication),
    ("cpu", "CPU", true, cpu),
    ("commandstats", "Commandstats", false, commandstats),
    ("cluster", "Cluster", true, cluster),
    ("keyspace", "Keyspace", true, keyspace),
];

/// Sections that need `Engine::stats`, which read-locks every shard.
const NEEDS_ENGINE: [&str; 3] = ["persistence", "stats", "keyspace"];

pub fn info(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let chosen = choose(&argv[1..]);
    let needs_engine = chosen.iter().any(|s| NEEDS_ENGINE.contains(s));
    if needs_engine && ctx.txn.is_some() {
        // EXEC holds write locks on its shards; reading every shard from
        // inside it would wait on itself.
        return ctx.out.error("ERR INFO persistence, stats and keyspace cannot run inside MULTI/EXEC in dbkv; call INFO outside the transaction");
    }
    let facts = Facts { srv: ctx.srv, figures: ServerFigures::take(ctx.srv), stats: needs_engine.then(|| ctx.srv.engine.stats()) };
    ctx.out.verbatim(&render(&facts, &chosen));
}

/// The sections named (case-insensitively), in Redis's order. No
/// argument and `default` select the default sections, `all` and
/// `everything` every section; unknown names select nothing.
fn choose(args: &[&[u8]]) -> Vec<&'static str> {
    let named = |w: &str| args.iter().any(|a| eq_ignore_case(a, w));
    let every = named("all") || named("everything");
    let default = args.is_empty() || named("default");
    SECTIONS.iter().filter(|s| every || (default && s.2) || named(s.0)).map(|s| s.0).collect()
}

fn render(f: &Facts<'_>, chosen: &[&str]) -> String {
    let mut out = Lines(String::new());
    for (i, (_, title, _, write)) in SECTIONS.iter().filter(|s| chosen.contains(&s.0)).enumerate() {
        if i > 0 {
            out.0.push_str("\r\n");
        }
        let _ = write!(out.0, "# {title}\r\n");
        write(&mut out, f);
    }
    out.0
}

fn server(o: &mut Lines, f: &Facts<'_>) {
    let srv = f.srv;
    let up = srv.started.elapsed().as_secs();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    o.kv("redis_version", REDIS_VERSION);
    o.kv("redis_git_sha1", "00000000");
    o.kv("redis_git_dirty", 0);
    o.kv("redis_mode", "standalone");
    o.kv("os", os_name());
    o.kv("arch_bits", usize::BITS);
    o.kv("multiplexing_api", if cfg!(target_os = "linux") { "epoll" } else { "kqueue" });
    o.kv("process_id", std::process::id());
    o.kv("process_supervised", "no");
    o.kv("run_id", &srv.run_id);
    o.kv("tcp_port", srv.bound_port.load(Ordering::Relaxed));
    o.kv("server_time_usec", now.as_micros());
    o.kv("uptime_in_seconds", up);
    o.kv("uptime_in_days", up / 86_400);
    o.kv("executable", std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default());
    o.kv("config_file", "");
    o.kv("dbkv_version", env!("CARGO_PKG_VERSION"));
}

/// "Linux 6.1.0 x86_64", as Redis prints `uname`.
fn os_name() -> String {
    // SAFETY: utsname is plain data; uname fills it with NUL-terminated
    // strings when it returns 0.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return std::env::consts::OS.into();
        }
        let field = |f: &[libc::c_char]| std::ffi::CStr::from_ptr(f.as_ptr()).to_string_lossy().into_owned();
        format!("{} {} {}", field(&u.sysname), field(&u.release), field(&u.machine))
    }
}

fn clients(o: &mut Lines, f: &Facts<'_>) {
    o.kv("connected_clients", f.figures.connected_clients);
    o.kv("cluster_connections", 0);
    o.kv("maxclients", f.figures.maxclients);
    o.kv("blocked_clients", f.figures.blocked_clients);
    o.kv("tracking_clients", 0);
    o.kv("clients_in_timeout_table", 0);
}

/// A `/proc/self/status` size field ("VmRSS:  1234 kB") in bytes; 0 where
/// there is no /proc.
fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status_bytes(&status, field)
}

fn status_bytes(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Redis's `bytesToHuman`: 1023B, 1.50K, 2.00M...
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut div = 1024f64;
    for u in UNITS {
        if (n as f64) < div * 1024.0 {
            return format!("{:.2}{u}", n as f64 / div);
        }
        div *= 1024.0;
    }
    format!("{n}B")
}

/// dbkv has no allocator statistics: used_memory is the resident set.
fn memory(o: &mut Lines, _f: &Facts<'_>) {
    let rss = proc_status_bytes("VmRSS");
    let peak = proc_status_bytes("VmHWM").max(rss);
    o.kv("used_memory", rss);
    o.kv("used_memory_human", human(rss));
    o.kv("used_memory_rss", rss);
    o.kv("used_memory_rss_human", human(rss));
    o.kv("used_memory_peak", peak);
    o.kv("used_memory_peak_human", human(peak));
    o.kv("maxmemory", 0);
    o.kv("maxmemory_human", "0B");
    o.kv("maxmemory_policy", "noeviction");
    o.kv("mem_allocator", "libc");
}

fn persistence(o: &mut Lines, f: &Facts<'_>) {
    let srv = f.srv;
    let st = f.stats.clone().unwrap_or_default();
    let ok = |b: bool| if b { "ok" } else { "err" };
    o.kv("loading", 0);
    o.kv("async_loading", 0);
    o.kv("rdb_changes_since_last_save", srv.counters.dirty.load(Ordering::Relaxed));
    o.kv("rdb_bgsave_in_progress", (srv.bgsaves.load(Ordering::Relaxed) > 0) as u8);
    o.kv("rdb_last_save_time", srv.lastsave.load(Ordering::Relaxed));
    o.kv("rdb_last_bgsave_status", ok(srv.last_bgsave_ok.load(Ordering::Relaxed)));
    o.kv("aof_enabled", srv.settings.persistence as u8);
    o.kv("aof_rewrite_in_progress", 0);
    o.kv("aof_last_write_status", ok(!st.failed));
    let sync = match srv.settings.sync {
        SyncPolicy::Always => "always",
        SyncPolicy::Interval => "interval",
        SyncPolicy::None => "none",
    };
    o.kv("dbkv_sync", sync);
    for k in OpKind::ALL {
        o.kv(&format!("dbkv_ops_{}", k.name()), st.ops[k as usize]);
    }
    for (k, v) in [
        ("dbkv_wal_records", st.wal_records),
        ("dbkv_wal_bytes", st.wal_bytes),
        ("dbkv_wal_segments", st.wal_segments),
        ("dbkv_wal_rotations", st.wal_rotations),
        ("dbkv_fsyncs", st.fsyncs),
        ("dbkv_fsync_total_us", st.fsync_total_us),
        ("dbkv_fsync_p50_us", st.fsync_p50_us),
        ("dbkv_fsync_p99_us", st.fsync_p99_us),
        ("dbkv_fsync_max_us", st.fsync_max_us),
        ("dbkv_durable_lsn", st.durable_lsn),
        ("dbkv_last_lsn", st.last_lsn),
        ("dbkv_snapshots_taken", st.snapshots_taken),
        ("dbkv_snapshot_failures", st.snapshot_failures),
        ("dbkv_last_snapshot_duration_us", st.last_snapshot_duration_us),
        ("dbkv_last_snapshot_bytes", st.last_snapshot_bytes),
        ("dbkv_last_snapshot_unix_ms", st.last_snapshot_unix_ms),
        ("dbkv_recovery_snapshot_loaded", st.recovery_snapshot_loaded as u64),
        ("dbkv_recovery_snapshot_entries", st.recovery_snapshot_entries),
        ("dbkv_recovery_wal_records", st.recovery_wal_records),
        ("dbkv_recovery_corrupt_records", st.recovery_corrupt_records),
        ("dbkv_recovery_bytes_dropped", st.recovery_bytes_dropped),
        ("dbkv_recovery_duration_us", st.recovery_duration_us),
        ("dbkv_expired_reclaimed", st.expired_reclaimed),
        ("dbkv_backpressure_waits", st.backpressure_waits),
        ("dbkv_backpressure_wait_us", st.backpressure_wait_us),
        ("dbkv_failed", st.failed as u64),
    ] {
        o.kv(k, v);
    }
}

fn stats(o: &mut Lines, f: &Facts<'_>) {
    let s = &f.figures;
    o.kv("total_connections_received", s.connections_received);
    o.kv("total_commands_processed", s.commands_processed);
    o.kv("instantaneous_ops_per_sec", 0);
    o.kv("total_net_input_bytes", s.net_input_bytes);
    o.kv("total_net_output_bytes", s.net_output_bytes);
    o.kv("rejected_connections", s.rejected_connections);
    o.kv("expired_keys", f.stats.as_ref().map_or(0, |st| st.expired_reclaimed));
    o.kv("evicted_keys", 0);
    o.kv("keyspace_hits", s.keyspace_hits);
    o.kv("keyspace_misses", s.keyspace_misses);
    o.kv("pubsub_channels", s.pubsub_channels);
    o.kv("pubsub_patterns", s.pubsub_patterns);
}

/// Redis's format exactly: `cmdstat_get:calls=2,usec=15,usec_per_call=7.50,
/// rejected_calls=0,failed_calls=0`, for commands used since start.
fn commandstats(o: &mut Lines, f: &Facts<'_>) {
    for (name, t) in &f.figures.commands {
        let per_call = if t.calls == 0 { 0.0 } else { t.usec() as f64 / t.calls as f64 };
        o.kv(&format!("cmdstat_{name}"), format!("calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}", t.calls, t.usec(), t.rejected, t.failed));
    }
}

fn replication(o: &mut Lines, f: &Facts<'_>) {
    o.kv("role", "master");
    o.kv("connected_slaves", 0);
    o.kv("master_failover_state", "no-failover");
    o.kv("master_replid", &f.srv.run_id);
    o.kv("master_repl_offset", 0);
    o.kv("repl_backlog_active", 0);
}

/// System and user CPU seconds, as "%ld.%06ld".
fn cpu_times(who: libc::c_int) -> (String, String) {
    // SAFETY: rusage is plain data that getrusage fills.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    (tv(ru.ru_stime), tv(ru.ru_utime))
}

fn cpu(o: &mut Lines, _f: &Facts<'_>) {
    let (sys, user) = cpu_times(libc::RUSAGE_SELF);
    let (csys, cuser) = cpu_times(libc::RUSAGE_CHILDREN);
    o.kv("used_cpu_sys", sys);
    o.kv("used_cpu_user", user);
    o.kv("used_cpu_sys_children", csys);
    o.kv("used_cpu_user_children", cuser);
}

fn cluster(o: &mut Lines, _f: &Facts<'_>) {
    o.kv("cluster_enabled", 0);
}

/// `expires` counts entries with a TTL, including expired ones the sweep
/// has not reclaimed yet (at most one sweep interval, 100 ms, behind).
fn keyspace(o: &mut Lines, f: &Facts<'_>) {
    match &f.stats {
        Some(st) if st.keys > 0 => o.kv("db0", format!("keys={},expires={},avg_ttl=0", st.keys, f.srv.engine.count_expiring())),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_choice() {
        let all: Vec<&str> = SECTIONS.iter().map(|s| s.0).collect();
        let default: Vec<&str> = all.iter().copied().filter(|s| *s != "commandstats").collect();
        assert_eq!(choose(&[]), default);
        assert_eq!(choose(&[b"EVERYTHING"]), all);
        assert_eq!(choose(&[b"all"]), all);
        assert_eq!(choose(&[b"Default"]), default);
        assert_eq!(choose(&[b"default", b"commandstats"]), all);
        assert_eq!(choose(&[b"commandstats"]), ["commandstats"]);
        assert_eq!(choose(&[b"keyspace", b"SERVER", b"server"]), ["server", "keyspace"]);
        assert!(choose(&[b"nosuch"]).is_empty());
    }

    #[test]
    fn human_sizes_as_redis() {
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(1024), "1.00K");
        assert_eq!(human(1_015_712), "991.91K");
        assert_eq!(human(7_192_576), "6.86M");
        assert_eq!(human(25_276_059_648), "23.54G");
    }

    #[test]
    fn proc_status_fields() {
        let s = "Name:\tdbkv\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(status_bytes(s, "VmRSS"), 1024 * 1024);
        assert_eq!(status_bytes(s, "VmHWM"), 2048 * 1024);
        assert_eq!(status_bytes(s, "VmSwap"), 0);
    }

    #[test]
    fn lines_are_crlf_and_sections_blank_separated() {
        let mut o = Lines(String::new());
        o.kv("a", 1);
        o.kv("b", "x");
        assert_eq!(o.0, "a:1\r\nb:x\r\n");
        assert!(cpu_times(libc::RUSAGE_SELF).0.contains('.'));
        assert!(!os_name().is_empty());
    }
}

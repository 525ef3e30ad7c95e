//! `dbkv serve --metrics-addr`: the Prometheus endpoint parsed by a
//! Prometheus text parser, its figures moving with known traffic and
//! agreeing with INFO, its HTTP edges (404, 405, malformed, slow, idle
//! clients), and the engine's log events in the server log. dbkv-only.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use prometheus_parse::{LineInfo, Scrape, Value as PValue};

/// Starts dbkv with the metrics endpoint on a port the OS picks; returns
/// the server and the endpoint's address (from the log line announcing it).
fn start(extra: &[&str]) -> Option<(Server, SocketAddr)> {
    if !is_dbkv() {
        skip("the metrics endpoint is dbkv's");
        return None;
    }
    let mut args = vec!["--metrics-addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let s = Server::start(&args);
    let addr = metrics_addr(&s.log()).unwrap_or_else(|| panic!("no metrics address in the log:\n{}", s.log()));
    Some((s, addr))
}

fn metrics_addr(log: &str) -> Option<SocketAddr> {
    let rest = log.lines().rev().find_map(|l| l.split("serving metrics on http://").nth(1))?;
    rest.split('/').next()?.parse().ok()
}

/// One HTTP exchange: status, head, body (the server closes after it).
struct Http {
    status: u16,
    head: String,
    body: String,
}

fn http(addr: SocketAddr, request: &[u8]) -> Http {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics port");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(request).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    let text = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head/body split in {text:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {head:?}"));
    Http { status, head: head.to_string(), body: body.to_string() }
}

fn get(addr: SocketAddr, path: &str) -> Http {
    http(addr, format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
}

/// A header's value (names are case-insensitive).
fn header<'a>(h: &'a Http, name: &str) -> Option<&'a str> {
    h.head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The samples of one scrape, keyed by name and sorted labels.
struct Metrics {
    samples: HashMap<String, f64>,
}

impl Metrics {
    fn key(name: &str, labels: &[(&str, &str)]) -> String {
        let mut l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        l.sort();
        format!("{name}{{{}}}", l.join(","))
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples.get(&Self::key(name, labels)).copied()
    }

    #[track_caller]
    fn val(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| panic!("no sample {}", Self::key(name, labels)))
    }

    fn cmd(&self, name: &str, cmd: &str) -> f64 {
        self.get(name, &[("cmd", cmd)]).unwrap_or(0.0)
    }
}

/// GET /metrics, checked for the exposition format and parsed with
/// `prometheus-parse`. That parser skips lines it does not understand, so
/// every line is also checked to be a comment or a sample it recognised,
/// and every sample's family to have HELP and TYPE.
fn scrape(addr: SocketAddr) -> Metrics {
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(header(&r, "content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(header(&r, "content-length").and_then(|v| v.parse::<usize>().ok()), Some(r.body.len()));
    let mut typed = HashMap::new();
    let mut helped = HashMap::new();
    for line in r.body.lines() {
        match LineInfo::parse(line) {
            LineInfo::Doc { metric_name, .. } => {
                helped.insert(metric_name.to_string(), ());
            }
            LineInfo::Type { metric_name, .. } => {
                typed.insert(metric_name.to_string(), ());
            }
            LineInfo::Sample { metric_name, .. } => {
                assert!(metric_name.starts_with("dbkv_"), "{line}");
                let family = ["_sum", "_count"].iter().find_map(|s| metric_name.strip_suffix(s).filter(|f| typed.contains_key(*f))).unwrap_or(metric_name);
                assert!(typed.contains_key(family) && helped.contains_key(family), "sample before its HELP and TYPE: {line}");
            }
            other => panic!("line not understood by the parser: {line:?} ({other:?})"),
        }
    }
    let parsed = Scrape::parse(r.body.lines().map(|l| Ok(l.to_string()))).expect("parse the exposition");
    let mut samples = HashMap::new();
    for s in parsed.samples {
        let labels: Vec<(&str, &str)> = s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match &s.value {
            PValue::Counter(v) | PValue::Gauge(v) | PValue::Untyped(v) => {
                samples.insert(Metrics::key(&s.metric, &labels), *v);
            }
            PValue::Summary(qs) => {
                for q in qs {
                    let mut l = labels.clone();
                    let quantile = q.quantile.to_string();
                    l.push(("quantile", &quantile));
                    samples.insert(Metrics::key(&s.metric, &l), q.count);
                }
            }
            PValue::Histogram(_) => panic!("dbkv exports no histograms: {}", s.metric),
        }
    }
    Metrics { samples }
}

#[test]
fn scrape_parses_and_has_every_engine_and_server_family() {
    let Some((s, addr)) = start(&[]) else { return };
    let m = scrape(addr);
    for name in [
        "dbkv_keys",
        "dbkv_wal_records_total",
        "dbkv_wal_bytes_total",
        "dbkv_wal_segments",
        "dbkv_wal_rotations_total",
        "dbkv_fsyncs_total",
        "dbkv_fsync_duration_seconds_sum",
        "dbkv_fsync_duration_seconds_count",
        "dbkv_fsync_duration_max_seconds",
        "dbkv_durable_lsn",
        "dbkv_last_lsn",
        "dbkv_snapshots_total",
        "dbkv_snapshot_failures_total",
        "dbkv_last_snapshot_duration_seconds",
        "dbkv_last_snapshot_bytes",
        "dbkv_last_snapshot_timestamp_seconds",
        "dbkv_recovery_snapshot_loaded",
        "dbkv_recovery_snapshot_entries",
        "dbkv_recovery_wal_records",
        "dbkv_recovery_corrupt_records",
        "dbkv_recovery_bytes_dropped",
        "dbkv_recovery_duration_seconds",
        "dbkv_expired_keys_total",
        "dbkv_backpressure_waits_total",
        "dbkv_backpressure_wait_seconds_total",
        "dbkv_failed",
        "dbkv_connected_clients",
        "dbkv_blocked_clients",
        "dbkv_connections_received_total",
        "dbkv_rejected_connections_total",
        "dbkv_commands_processed_total",
        "dbkv_net_input_bytes_total",
        "dbkv_net_output_bytes_total",
        "dbkv_pubsub_channels",
        "dbkv_uptime_seconds",
    ] {
        m.val(name, &[]);
    }
    for q in ["0.5", "0.99"] {
        m.val("dbkv_fsync_duration_seconds", &[("quantile", q)]);
    }
    for kind in ["read", "write", "delete", "incr", "expire", "lock", "txn", "scan"] {
        m.val("dbkv_ops_total", &[("kind", kind)]);
    }
    assert_eq!(m.val("dbkv_failed", &[]), 0.0);
    // HEAD: the same head, no body.
    let h = http(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!((h.status, h.body.as_str()), (200, ""));
    assert!(header(&h, "content-length").is_some_and(|v| v.parse::<usize>().unwrap() > 1000));
    assert_serving(&s);
}

#[test]
fn command_counts_latency_and_bytes_grow_with_traffic() {
    let Some((s, addr)) = start(&[]) else { return };
    let mut c = s.client();
    let before = scrape(addr);
    for i in 0..3 {
        ok(&c.cmd(&["SET", "k", &format!("v{i}")]));
    }
    assert_eq!(text(&c.cmd(&["GET", "k"])), "v2");
    assert_eq!(text(&c.cmd(&["GET", "k"])), "v2");
    err_starts_with(&c.cmd(&["INCR", "k"]), "ERR value is not an integer");
    err_starts_with(&c.cmd(&["GET"]), "ERR wrong number of arguments");
    ok(&c.cmd(&["MULTI"]));
    c.cmd(&["SET", "k2", "x"]);
    c.cmd(&["GET", "k2"]);
    assert_eq!(c.cmd(&["EXEC"]).items().len(), 2);
    let after = scrape(addr);
    let delta = |name: &str, cmd: &str| after.cmd(name, cmd) - before.cmd(name, cmd);
    // Commands inside EXEC count as calls of their own, as Redis counts them.
    assert_eq!(delta("dbkv_commands_total", "set"), 4.0);
    assert_eq!(delta("dbkv_commands_total", "get"), 3.0);
    assert_eq!(delta("dbkv_commands_total", "exec"), 1.0);
    assert_eq!(delta("dbkv_commands_failed_total", "incr"), 1.0);
    assert_eq!(delta("dbkv_commands_failed_total", "set"), 0.0);
    assert_eq!(delta("dbkv_commands_rejected_total", "get"), 1.0);
    assert_eq!(delta("dbkv_command_duration_seconds_count", "set"), 4.0);
    assert!(delta("dbkv_command_duration_seconds_sum", "set") > 0.0);
    assert!(delta("dbkv_command_duration_seconds_sum", "get") > 0.0);
    let grew = |name: &str| after.val(name, &[]) - before.val(name, &[]);
    assert!(grew("dbkv_commands_processed_total") >= 11.0);
    assert!(grew("dbkv_net_input_bytes_total") >= 100.0);
    assert!(grew("dbkv_net_output_bytes_total") >= 30.0);
    assert_eq!(after.val("dbkv_keys", &[]), 2.0);
}

/// Waits until the server counts `n` connected clients (a closed
/// connection is counted until its worker sees the close).
#[track_caller]
fn wait_clients(addr: SocketAddr, n: f64) {
    let deadline = Instant::now() + TIMEOUT;
    while scrape(addr).val("dbkv_connected_clients", &[]) != n {
        assert!(Instant::now() < deadline, "connected clients never became {n}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn connected_clients_follow_connections() {
    let Some((s, addr)) = start(&[]) else { return };
    // The harness's readiness probe may still be counted.
    wait_clients(addr, 0.0);
    let base = 0.0;
    let mut clients: Vec<Client> = (0..3).map(|_| s.client()).collect();
    for c in &mut clients {
        assert_eq!(c.cmd(&["PING"]), Value::Simple("PONG".into()));
    }
    assert_eq!(scrape(addr).val("dbkv_connected_clients", &[]), base + 3.0);
    drop(clients);
    wait_clients(addr, base);
}

#[test]
fn a_client_refused_by_maxclients_is_counted() {
    let Some((s, addr)) = start(&["--maxclients", "1"]) else { return };
    wait_clients(addr, 0.0);
    let before = scrape(addr);
    let mut first = s.client();
    assert_eq!(first.cmd(&["PING"]), Value::Simple("PONG".into()));
    let mut second = s.client();
    err_eq(&second.read_value(), "ERR max number of clients reached");
    let after = scrape(addr);
    assert_eq!(after.val("dbkv_rejected_connections_total", &[]) - before.val("dbkv_rejected_connections_total", &[]), 1.0);
    assert_eq!(after.val("dbkv_connections_received_total", &[]) - before.val("dbkv_connections_received_total", &[]), 2.0);
    assert_eq!(after.val("dbkv_connected_clients", &[]), 1.0);
    let info = first.cmd(&["INFO", "stats"]).as_text().unwrap();
    assert!(info.contains(&format!("rejected_connections:{}\r\n", after.val("dbkv_rejected_connections_total", &[]))), "{info}");
}

#[test]
fn other_paths_are_404_other_methods_405_garbage_400() {
    let Some((s, addr)) = start(&[]) else { return };
    assert_eq!(get(addr, "/").status, 404);
    assert_eq!(get(addr, "/metricsx").status, 404);
    assert_eq!(get(addr, "/metrics/").status, 404);
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let r = http(addr, format!("{method} /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").as_bytes());
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(header(&r, "allow"), Some("GET, HEAD"));
    }
    assert_eq!(http(addr, b"hello there\r\n\r\n").status, 400);
    assert_eq!(http(addr, b"GET /metrics HTTP/9\r\n\r\n").status, 400);
    assert_eq!(http(addr, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n").status, 400);
    let huge = format!("GET /metrics HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(http(addr, huge.as_bytes()).status, 431);
    // A query string is ignored, as Prometheus servers do.
    assert_eq!(get(addr, "/metrics?name[]=x").status, 200);
    assert_serving(&s);
}

#[test]
fn malformed_slow_and_idle_clients_do_not_stop_scrapes_or_commands() {
    let Some((s, addr)) = start(&[]) else { return };
    let mut c = s.client();
    ok(&c.cmd(&["SET", "precious", "data"]));
    // More idle connections than the endpoint keeps, a client that sends
    // half a request and stalls, and one that sends bytes without a line end.
    let idle: Vec<TcpStream> = (0..150).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    let mut junk = TcpStream::connect(addr).unwrap();
    junk.write_all(&[0xffu8; 3000]).unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let m = scrape(addr);
        assert!(started.elapsed() < Duration::from_secs(5), "a scrape waited {:?} behind idle clients", started.elapsed());
        assert!(m.val("dbkv_keys", &[]) >= 1.0);
        assert_eq!(c.cmd(&["PING"]), Value::Simple("PONG".into()));
    }
    // The stalled client is cut off at the deadline (10 s) or evicted; it
    // never gets metrics for half a request.
    slow.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("dbkv_keys"));
    drop(idle);
    assert_eq!(text(&c.cmd(&["GET", "precious"])), "data");
    assert_serving(&s);
}

/// `cmdstat_get:calls=3,usec=12,usec_per_call=4.00,rejected_calls=1,failed_calls=0`
fn cmdstat(info: &str, cmd: &str) -> Option<HashMap<String, f64>> {
    let line = info.lines().find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:")))?;
    Some(line.split(',').map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.parse().expect("a number"))).expect("k=v")).collect())
}

fn info_field(info: &str, field: &str) -> f64 {
    info.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or_else(|| panic!("no {field} in INFO")).trim().parse().unwrap()
}

#[test]
fn info_commandstats_and_stats_equal_the_metrics() {
    let Some((s, addr)) = start(&[]) else { return };
    let mut c = s.client();
    for i in 0..5 {
        ok(&c.cmd(&["SET", &format!("k{i}"), "v"]));
    }
    c.cmd(&["GET", "k1"]);
    c.cmd(&["GET"]);
    c.cmd(&["LPUSH", "k1", "x"]);
    assert_eq!(c.cmd(&["DBKV.SYNC"]), Value::Simple("OK".into()));
    let plain = c.cmd(&["INFO"]).as_text().unwrap();
    assert!(!plain.contains("# Commandstats"), "commandstats is not a default section");
    assert!(c.cmd(&["INFO", "all"]).as_text().unwrap().contains("# Commandstats\r\ncmdstat_"));
    assert!(c.cmd(&["INFO", "everything"]).as_text().unwrap().contains("# Commandstats\r\n"));
    let info = c.cmd(&["INFO", "commandstats", "stats", "persistence"]).as_text().unwrap();
    let m = scrape(addr);
    for cmd in ["set", "get", "lpush"] {
        let st = cmdstat(&info, cmd).unwrap_or_else(|| panic!("no cmdstat_{cmd} in\n{info}"));
        assert_eq!(st["calls"], m.cmd("dbkv_commands_total", cmd), "{cmd} calls");
        assert_eq!(st["failed_calls"], m.cmd("dbkv_commands_failed_total", cmd), "{cmd} failed");
        assert_eq!(st["rejected_calls"], m.cmd("dbkv_commands_rejected_total", cmd), "{cmd} rejected");
        let usec = m.cmd("dbkv_command_duration_seconds_sum", cmd) * 1e6;
        assert!((st["usec"] - usec).abs() < 1.0, "{cmd}: usec {} vs {usec}", st["usec"]);
        let per_call = if st["calls"] > 0.0 { st["usec"] / st["calls"] } else { 0.0 };
        assert!((st["usec_per_call"] - per_call).abs() <= 0.005 + 1e-9, "{cmd} usec_per_call");
    }
    let set = cmdstat(&info, "set").unwrap();
    assert_eq!((set["calls"], set["failed_calls"], set["rejected_calls"]), (5.0, 0.0, 0.0));
    let get = cmdstat(&info, "get").unwrap();
    assert_eq!((get["calls"], get["rejected_calls"]), (1.0, 1.0));
    assert_eq!(cmdstat(&info, "lpush").unwrap()["failed_calls"], 1.0);
    assert!(cmdstat(&info, "zadd").is_none(), "unused commands are not listed");
    // The exact shape Redis prints.
    let line = info.lines().find(|l| l.starts_with("cmdstat_set:")).unwrap();
    let shape: Vec<&str> = line.split([':', ',']).map(|p| p.split('=').next().unwrap()).collect();
    assert_eq!(shape, ["cmdstat_set", "calls", "usec", "usec_per_call", "rejected_calls", "failed_calls"]);
    for (field, metric) in [
        ("total_connections_received", "dbkv_connections_received_total"),
        ("rejected_connections", "dbkv_rejected_connections_total"),
        ("expired_keys", "dbkv_expired_keys_total"),
        ("dbkv_last_lsn", "dbkv_last_lsn"),
        ("dbkv_wal_records", "dbkv_wal_records_total"),
        ("dbkv_snapshots_taken", "dbkv_snapshots_total"),
        ("dbkv_ops_write", "dbkv_ops_total"),
    ] {
        let labels: &[(&str, &str)] = if metric == "dbkv_ops_total" { &[("kind", "write")] } else { &[] };
        assert_eq!(info_field(&info, field), m.val(metric, labels), "{field} vs {metric}");
    }
    // INFO counted its own call before the scrape; nothing ran since.
    assert_eq!(info_field(&info, "total_commands_processed"), m.val("dbkv_commands_processed_total", &[]));
}

#[test]
fn a_metrics_port_in_use_is_a_startup_error() {
    if !is_dbkv() {
        return skip("dbkv's flag");
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = TempDir::new();
    let out = Command::new(dbkv_bin())
        .args(["serve", "--port", &free_port().to_string(), "--metrics-addr", &addr.to_string()])
        .arg("--data-dir")
        .arg(dir.path.join("data"))
        .env_remove("DBKV_METRICS_ADDR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("could not listen on {addr} (--metrics-addr)")), "{err}");
    // The flag parses an address with a port only.
    let bad = Command::new(dbkv_bin()).args(["serve", "--metrics-addr", "localhost"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--metrics-addr"));
}

/// Writes keys, kills the server without a clean shutdown, damages the
/// tail of the newest WAL segment with `damage`, restarts; returns the
/// segment's file name and what the restart logged.
fn restart_after_damage(damage: impl FnOnce(&mut Vec<u8>)) -> Option<(String, String)> {
    if !is_dbkv() {
        skip("dbkv's recovery");
        return None;
    }
    let mut s = Server::start(&["--snapshot-interval-secs", "0", "--snapshot-ops", "0"]);
    let mut c = s.client();
    for i in 0..50 {
        ok(&c.cmd(&["SET", &format!("key:{i}"), &"v".repeat(100)]));
    }
    assert_eq!(c.cmd(&["DBKV.SYNC"]), Value::Simple("OK".into()));
    s.kill9();
    let mut segments: Vec<_> = std::fs::read_dir(&s.data_dir).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("wal-") && n.ends_with(".log")).collect();
    segments.sort();
    let newest = segments.pop().expect("a WAL segment");
    let path = s.data_dir.join(&newest);
    let mut bytes = std::fs::read(&path).unwrap();
    damage(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
    let logged = s.log().len();
    s.restart();
    let log = s.log()[logged..].to_string();
    assert_serving(&s);
    Some((newest, log))
}

/// The engine's own warning, routed to the server log and marked as the
/// engine's (`source="engine"`), names the damaged file.
#[track_caller]
fn assert_warns_naming(segment: &str, log: &str) {
    let from_engine = |l: &&str| l.contains("source=\"engine\"");
    assert!(log.lines().filter(from_engine).any(|l| l.contains("WARN") && l.contains(segment)), "no engine WARN line naming {segment} in\n{log}");
}

#[test]
fn a_torn_wal_tail_is_logged_as_a_warning_naming_the_segment() {
    let Some((segment, log)) = restart_after_damage(|b| b.truncate(b.len() - 7)) else { return };
    assert_warns_naming(&segment, &log);
}

#[test]
fn a_bit_flip_in_the_wal_tail_is_logged_as_a_warning_naming_the_segment() {
    let Some((segment, log)) = restart_after_damage(|b| {
        let at = b.len() - 20;
        b[at] ^= 0x10;
    }) else {
        return;
    };
    assert_warns_naming(&segment, &log);
}

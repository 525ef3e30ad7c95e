//! `dbkv dump`, `load` and `stats` against real data directories: every
//! type round-trips exactly through both formats (binary and empty
//! strings, counters, long lists, ±inf and -0.0 scores, locks with their
//! tokens, absolute TTLs); load refuses bad input and existing keys
//! without writing; a RESP dump replays through `redis-cli --pipe` into
//! `dbkv serve`; a live directory is BUSY for dump and still described
//! by stats.

mod common;
mod tools_common;

use std::path::{Path, PathBuf};

use common::{Server, TempDir};
use dbkv::engine::{LockOutcome, Options, Scope};
use dbkv::Engine;
use tools_common::*;

const HOUR: u64 = 3_600_000;

/// A directory holding every type, with TTLs, binary data and a lock
/// whose token is above 1; returns the lock's token.
fn every_type(dir: &Path) -> u64 {
    let mut token = 0;
    with_engine(dir, 64 << 20, |e| {
        e.set(b"text", "h\u{e9}llo \"quoted\"\n".as_bytes(), 0).unwrap();
        e.set(b"empty", b"", 0).unwrap();
        e.set(b"\xff\x00bin-key", b"\x00\x01\xfe\xff", HOUR).unwrap();
        e.incr(b"counter", -42).unwrap();
        e.expire(b"counter", 2 * HOUR).unwrap();
        for i in 0..3 {
            let LockOutcome::Granted(t) = e.lock(format!("lock{i}").as_bytes(), b"worker-\xff", HOUR).unwrap() else { panic!() };
            token = t;
        }
        e.delete(b"lock0").unwrap_or(false);
        let elems: Vec<Vec<u8>> = (0..2500u32).map(|i| if i % 7 == 0 { vec![0xff, i as u8] } else { i.to_string().into_bytes() }).collect();
        let refs: Vec<&[u8]> = elems.iter().map(Vec::as_slice).collect();
        e.transact(Scope::Keys(&[b"list"]), |t| t.list_push(b"list", false, &refs)).unwrap().unwrap();
        e.expire(b"list", HOUR).unwrap();
        let pairs: Vec<(f64, &[u8])> = vec![(f64::NEG_INFINITY, b"-inf"), (-0.0, b"negzero"), (0.1 + 0.2, b"third"), (1e300, b"big"), (f64::INFINITY, b"\xfe\xff"), (-5e-324, b"tiny")];
        e.transact(Scope::Keys(&[b"zset"]), |t| t.zadd(b"zset", &pairs)).unwrap().unwrap();
        e.set(b"gone", b"expired", 1).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    });
    token
}

/// Dump lines without the relative `ttl_ms` (time passes), sorted.
fn dump_lines(dir: &Path) -> Vec<String> {
    let r = dbkv(&["dump", p(dir), "--quiet"]);
    assert_eq!(r.code, 0, "{}", r.both());
    let mut lines: Vec<String> = r.stdout.lines().map(|l| l[..l.find(",\"ttl_ms\"").unwrap()].to_string()).collect();
    lines.sort();
    lines
}

fn open(dir: &Path) -> Engine {
    Engine::open(Options { data_dir: Some(dir.to_path_buf()), ..Options::default() }).unwrap()
}

#[test]
fn jsonl_round_trip_is_exact_and_keeps_lock_tokens_above_restored_ones() {
    let td = TempDir::new();
    let (src, dst) = (td.path.join("src"), td.path.join("dst"));
    let token = every_type(&src);
    let before = dump_lines(&src);
    assert_eq!(before.len(), 8, "{before:#?}");
    assert!(before.iter().any(|l| l.contains("\"score\":-0.0")) && before.iter().any(|l| l.contains("\"score\":\"inf\"")), "{before:#?}");
    assert!(before.iter().any(|l| l.contains(&format!("\"token\":{token}"))), "{before:#?}");
    assert!(before.iter().any(|l| l.contains("{\"base64\":")), "{before:#?}");

    let file = td.path.join("dump.jsonl");
    assert_eq!(dbkv(&["dump", p(&src), "-o", p(&file), "--quiet"]).code, 0);
    let load = dbkv(&["load", p(&dst), p(&file)]);
    assert_eq!(load.code, 0, "{}", load.both());
    assert!(load.stderr.contains("loaded 8 keys"), "{}", load.both());
    assert_eq!(files(&dst, "snap-").len(), 1, "one snapshot at the end");
    assert_eq!(dump_lines(&dst), before);

    let e = open(&dst);
    assert_eq!(e.last_token(), token, "the counter resumes at the restored tokens");
    assert_eq!(e.lock(b"fresh", b"x", 1000).unwrap(), LockOutcome::Granted(token + 1));
    assert_eq!(e.lock(b"lock2", b"someone else", 1000).unwrap(), LockOutcome::Locked, "restored locks are held");
    let ttl = e.ttl(b"list").unwrap().unwrap();
    assert!(ttl > (HOUR - 60_000) as i64 && ttl <= HOUR as i64, "absolute expiry kept: {ttl}");
    e.close().unwrap();
}

#[test]
fn resp_round_trip_is_exact() {
    let td = TempDir::new();
    let (src, dst) = (td.path.join("src"), td.path.join("dst"));
    every_type(&src);
    let before = dump_lines(&src);
    let r = dbkv(&["dump", p(&src), "--format", "resp", "--quiet"]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(r.stdout.contains("DBKV.RESTORELOCK") && r.stdout.contains("PEXPIREAT"), "{}", r.stdout.len());
    let load = dbkv_with_input(&["load", p(&dst), "--format", "resp", "-"], Some(&r.raw_stdout));
    assert_eq!(load.code, 0, "{}", load.both());
    assert_eq!(dump_lines(&dst), before);
}

#[test]
fn dump_prefix_selects_keys() {
    let td = TempDir::new();
    let src = td.path.join("src");
    every_type(&src);
    let before = listing(&src);
    let r = dbkv(&["dump", p(&src), "--prefix", "lock", "--quiet"]);
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.both());
    assert!(r.stdout.lines().all(|l| l.starts_with("{\"key\":\"lock")));
    assert_eq!(dbkv(&["stats", p(&src), "--quiet"]).code, 0);
    assert_eq!(listing(&src), before, "dump and stats modify no file");
}

/// Every file but LOCK (which names its last holder) with its size.
fn listing(dir: &Path) -> Vec<(String, u64)> {
    files(dir, "").into_iter().filter(|n| n != "LOCK").map(|n| (n.clone(), std::fs::metadata(dir.join(&n)).unwrap().len())).collect()
}

#[test]
fn load_refuses_bad_input_and_existing_keys_writing_nothing() {
    let td = TempDir::new();
    let dir = td.path.join("db");
    with_engine(&dir, 64 << 20, |e| e.set(b"taken", b"old", 0).unwrap());
    let before = dump_lines(&dir);

    let bad = b"{\"key\":\"a\",\"type\":\"string\",\"value\":\"1\"}\n{\"key\":\"b\",\"type\":\"string\",\"value\":\"2\"}\n{\"key\":\"c\",\"type\":\"list\",\"elements\":[]}\n";
    let r = dbkv_with_input(&["load", p(&dir)], Some(bad));
    assert_eq!(r.code, 1, "{}", r.both());
    assert!(r.stderr.contains("line 3") && r.stderr.contains("empty list") && r.stderr.contains("nothing was loaded"), "{}", r.both());

    let resp_bad = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$4\r\nHGET\r\n$1\r\nh\r\n";
    let r = dbkv_with_input(&["load", p(&dir), "--format", "resp"], Some(resp_bad));
    assert_eq!(r.code, 1, "{}", r.both());
    assert!(r.stderr.contains("line 8") && r.stderr.contains("HGET"), "{}", r.both());

    let clash = b"{\"key\":\"new\",\"type\":\"string\",\"value\":\"n\"}\n{\"key\":\"taken\",\"type\":\"string\",\"value\":\"new\"}\n";
    let r = dbkv_with_input(&["load", p(&dir)], Some(clash));
    assert_eq!(r.code, 1, "{}", r.both());
    assert!(r.stderr.contains("\"taken\"") && r.stderr.contains("--replace"), "{}", r.both());
    assert_eq!(dump_lines(&dir), before, "nothing written");

    let r = dbkv_with_input(&["load", p(&dir), "--replace"], Some(clash));
    assert_eq!(r.code, 0, "{}", r.both());
    let after = dump_lines(&dir);
    assert!(after.iter().any(|l| l.contains("\"value\":\"new\"")) && after.len() == 2, "{after:#?}");
}

#[test]
fn load_skips_expired_entries_and_counts_them() {
    let td = TempDir::new();
    let dir = td.path.join("db");
    let input = b"{\"key\":\"old\",\"type\":\"string\",\"value\":\"x\",\"expires_at_ms\":1000}\n{\"key\":\"live\",\"type\":\"string\",\"value\":\"y\",\"expires_at_ms\":null}\n";
    let r = dbkv_with_input(&["load", p(&dir)], Some(input));
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(r.stderr.contains("loaded 1 keys") && r.stderr.contains("1 already expired"), "{}", r.both());
    assert_eq!(dump_lines(&dir).len(), 1);
    let missing_parent = dbkv_with_input(&["load", p(&td.path.join("no/such/db"))], Some(input));
    assert_eq!(missing_parent.code, 2);
    assert!(missing_parent.stderr.contains("does not exist"), "{}", missing_parent.both());
}

fn redis_cli() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("redis-cli")).find(|p| p.is_file()))
}

#[test]
fn resp_dump_replays_through_redis_cli_pipe_into_dbkv_serve() {
    dbkv_only!("replays into a dbkv server");
    let Some(cli) = redis_cli() else {
        eprintln!("SKIPPED resp_dump_replays_through_redis_cli_pipe_into_dbkv_serve: redis-cli is not installed (apt-get install redis-tools)");
        return;
    };
    let td = TempDir::new();
    let src = td.path.join("src");
    every_type(&src);
    let dump = dbkv(&["dump", p(&src), "--format", "resp", "--quiet"]);
    let s = Server::start(&[]);
    let mut child = std::process::Command::new(cli)
        .args(["-p", &s.port.to_string(), "--pipe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&dump.raw_stdout).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // Locks have no Redis command: the two DBKV.RESTORELOCK lines fail.
    assert!(text.contains("errors: 2"), "{text}");
    let mut c = s.client();
    assert_eq!(common::bulk(&c.cmd(&["GET", "text"])), "h\u{e9}llo \"quoted\"\n".as_bytes());
    assert_eq!(common::bulk(&c.cmd(&["GET", "counter"])), b"-42");
    assert_eq!(common::int(&c.cmd(&["LLEN", "list"])), 2500);
    assert_eq!(common::text(&c.cmd(&["ZSCORE", "zset", "-inf"])), "-inf");
    let pttl = common::int(&c.cmd(&["PTTL", "list"]));
    assert!(pttl > 0 && pttl <= HOUR as i64, "{pttl}");
    assert_eq!(common::int(&c.cmd(&["EXISTS", "gone"])), 0);
}

#[test]
fn live_directory_is_busy_for_dump_and_described_by_stats() {
    dbkv_only!("reads the data directory of a dbkv server");
    let s = Server::start(&[]);
    let mut c = s.client();
    common::ok(&c.cmd(&["SET", "k", "v"]));
    let pid = format!("process {}", s.pid());
    let d = dbkv(&["dump", p(&s.data_dir), "--quiet"]);
    assert_eq!(d.code, 2, "{}", d.both());
    assert!(d.stderr.contains("BUSY") && d.stderr.contains(&pid), "{}", d.both());
    let st = dbkv(&["stats", p(&s.data_dir), "--quiet"]);
    assert_eq!(st.code, 0, "{}", st.both());
    assert!(st.stdout.contains("BUSY") && st.stdout.contains(&pid) && st.stdout.contains("wal-00000000000000000001.log"), "{}", st.both());
    let js = dbkv(&["stats", p(&s.data_dir), "--json", "--quiet"]);
    let v: serde_json::Value = serde_json::from_str(&js.stdout).unwrap();
    assert_eq!(v["in_use"], true);
    assert_eq!(v["holder_pid"], s.pid());
    assert!(v["keys"].is_null(), "keys need the directory");
}

#[test]
fn stats_of_a_free_directory() {
    let td = TempDir::new();
    let dir = td.path.join("db");
    with_engine(&dir, 4096, |e| {
        fill(e, 0, 60);
        e.snapshot().unwrap();
        fill(e, 60, 10);
    });
    let r = dbkv(&["stats", p(&dir), "--quiet"]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(r.stdout.contains("in use: no") && r.stdout.contains("keys: 70") && r.stdout.contains("last snapshot: snap-00000000000000000060.snap"), "{}", r.both());
    let js = dbkv(&["stats", p(&dir), "--json", "--quiet"]);
    let v: serde_json::Value = serde_json::from_str(&js.stdout).unwrap();
    assert_eq!(v["keys"], 70);
    assert!(v["memory_estimate_bytes"].as_u64().unwrap() > 70 * 100);
    let files = v["files"].as_array().unwrap();
    let seg = files.iter().find(|f| f["kind"] == "segment").unwrap();
    assert!(seg["first_lsn"].as_u64().is_some() && seg["last_lsn"].as_u64().is_some() && seg["bytes"].as_u64().unwrap() > 32, "{seg}");
    assert!(files.iter().any(|f| f["kind"] == "snapshot" && f["cut_lsn"] == 60 && f["verified"] == true));
    assert_eq!(dbkv(&["stats", p(&td.path.join("none"))]).code, 2);
}

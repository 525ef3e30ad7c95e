//! DBKV.FENCED: writes checked against a lock's fencing token in the same
//! transaction (dbkv only: DBKV.* commands are dbkv's own).

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::*;

const STALE: &str = "FENCED stale token";

fn lock(c: &mut Client, key: &str, owner: &str, ttl_ms: u64) -> String {
    int(&c.cmd(&["DBKV.LOCK", key, owner, &ttl_ms.to_string()])).to_string()
}

fn fenced(c: &mut Client, lock_key: &str, token: &str, cmd: &[&str]) -> Value {
    let mut args = vec!["DBKV.FENCED", lock_key, token];
    args.extend_from_slice(cmd);
    c.cmd(&args)
}

fn last_lsn(c: &mut Client) -> u64 {
    let info = c.cmd(&["INFO", "persistence"]);
    let text = info.as_text().unwrap();
    let line = text.lines().find(|l| l.starts_with("dbkv_last_lsn:")).expect("dbkv_last_lsn in INFO");
    line["dbkv_last_lsn:".len()..].trim().parse().unwrap()
}

/// The failure fencing tokens exist for: A's lease runs out while it is
/// paused, B takes the lock and writes, then A wakes up and writes with
/// its old token. Without fencing A's write would silently win.
#[test]
fn paused_holder_is_refused_after_a_new_grant() {
    dbkv_only!("DBKV.LOCK and DBKV.FENCED");
    let s = Server::start(&[]);
    let (mut a, mut bc) = (s.client(), s.client());
    let t1 = lock(&mut a, "lk", "client-a", 200);
    sleep(Duration::from_millis(400)); // A's pause, past its lease
    let t2 = lock(&mut bc, "lk", "client-b", 30_000);
    assert_ne!(t1, t2);
    ok(&fenced(&mut bc, "lk", &t2, &["SET", "res", "b"]));
    err_eq(&fenced(&mut a, "lk", &t1, &["SET", "res", "a"]), STALE);
    assert_eq!(a.cmd(&["GET", "res"]), b("b"));
    // The holder's own token keeps working; a refresh grants a new one
    // and retires the old.
    ok(&fenced(&mut bc, "lk", &t2, &["SET", "res", "b2"]));
    let t3 = lock(&mut bc, "lk", "client-b", 30_000);
    err_eq(&fenced(&mut bc, "lk", &t2, &["SET", "res", "old"]), STALE);
    ok(&fenced(&mut bc, "lk", &t3, &["SET", "res", "b3"]));
    // Released, expired, or not a lock at all: stale.
    assert_eq!(bc.cmd(&["DBKV.UNLOCK", "lk", "client-b"]), Value::Int(1));
    err_eq(&fenced(&mut bc, "lk", &t3, &["SET", "res", "x"]), STALE);
    ok(&bc.cmd(&["SET", "plain", "v"]));
    err_eq(&fenced(&mut bc, "plain", "1", &["SET", "res", "x"]), STALE);
    err_eq(&fenced(&mut bc, "nolock", "1", &["SET", "res", "x"]), STALE);
    assert_eq!(bc.cmd(&["GET", "res"]), b("b3"));
}

#[test]
fn any_write_command_can_be_fenced() {
    dbkv_only!("DBKV.LOCK and DBKV.FENCED");
    let s = Server::start(&[]);
    let mut c = s.client();
    let t = lock(&mut c, "lk", "me", 60_000);
    let stale = (t.parse::<i64>().unwrap() - 1).to_string();
    assert_eq!(fenced(&mut c, "lk", &t, &["ZADD", "z", "1", "a", "2", "b"]), Value::Int(2));
    err_eq(&fenced(&mut c, "lk", &stale, &["ZADD", "z", "9", "a"]), STALE);
    assert_eq!(c.cmd(&["ZSCORE", "z", "a"]), b("1"));
    assert_eq!(fenced(&mut c, "lk", &t, &["INCR", "n"]), Value::Int(1));
    err_eq(&fenced(&mut c, "lk", &stale, &["INCR", "n"]), STALE);
    assert_eq!(fenced(&mut c, "lk", &t, &["ZPOPMIN", "z"]), arr(vec![b("a"), b("1")]));
    assert_eq!(fenced(&mut c, "lk", &t, &["DEL", "n", "z", "none"]), Value::Int(2));
    err_eq(&fenced(&mut c, "lk", &stale, &["DEL", "lk"]), STALE);
    // Lists arrive with their own commands; fence them once they exist.
    if c.cmd(&["COMMAND", "INFO", "rpush"]).items()[0].is_nil() {
        eprintln!("RPUSH is not in this build: its fenced case is skipped");
    } else {
        assert_eq!(fenced(&mut c, "lk", &t, &["RPUSH", "l", "x", "y"]), Value::Int(2));
        err_eq(&fenced(&mut c, "lk", &stale, &["RPUSH", "l", "z"]), STALE);
        assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), arr(vec![b("x"), b("y")]));
    }
    // Several keys, one check, one WAL record.
    let before = last_lsn(&mut c);
    ok(&fenced(&mut c, "lk", &t, &["MSET", "a", "1", "b", "2"]));
    assert_eq!(last_lsn(&mut c), before + 1, "a fenced MSET logs one record");
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "DBKV.FENCED", "lk", "1", "MSET", "a", "1", "b", "2"]), arr(vec![b("lk"), b("a"), b("b")]));
    // A refused write logs nothing.
    let before = last_lsn(&mut c);
    err_eq(&fenced(&mut c, "lk", &stale, &["SET", "a", "x"]), STALE);
    assert_eq!(last_lsn(&mut c), before);
    // The inner command's own errors pass through.
    err_eq(&fenced(&mut c, "lk", &t, &["INCR", "a", "b"]), "ERR wrong number of arguments for 'incr' command");
    err_starts_with(&fenced(&mut c, "lk", &t, &["ZADD", "a", "1", "m"]), "WRONGTYPE");
}

#[test]
fn refusals() {
    dbkv_only!("DBKV.FENCED");
    let s = Server::start(&[]);
    let mut c = s.client();
    let t = lock(&mut c, "lk", "me", 60_000);
    err_eq(&fenced(&mut c, "lk", "x", &["SET", "a", "1"]), "ERR value is not an integer or out of range");
    err_eq(&fenced(&mut c, "lk", "-1", &["SET", "a", "1"]), "ERR value is not an integer or out of range");
    err_starts_with(&fenced(&mut c, "lk", &t, &["NOSUCH", "a"]), "ERR unknown command 'NOSUCH'");
    err_eq(&fenced(&mut c, "lk", &t, &["GET", "a"]), "ERR DBKV.FENCED runs write commands only; 'GET' does not write");
    err_eq(&fenced(&mut c, "lk", &t, &["DBKV.FENCED", "lk", &t, "SET", "a", "1"]), "ERR DBKV.FENCED cannot be nested");
    for inner in ["MULTI", "EXEC", "WATCH", "DBKV.LOCK"] {
        err_starts_with(&fenced(&mut c, "lk", &t, &[inner, "x", "y", "1"]), &format!("ERR DBKV.FENCED cannot run '{inner}'"));
    }
    err_eq(&c.cmd(&["DBKV.FENCED", "lk", &t]), "ERR wrong number of arguments for 'dbkv.fenced' command");
    assert_eq!(c.cmd(&["EXISTS", "a"]), Value::Int(0));
}

#[test]
fn fenced_inside_multi() {
    dbkv_only!("DBKV.FENCED");
    let s = Server::start(&[]);
    let mut c = s.client();
    let t = lock(&mut c, "lk", "me", 60_000);
    let stale = (t.parse::<i64>().unwrap() + 1000).to_string();
    ok(&c.cmd(&["MULTI"]));
    for cmd in [&["DBKV.FENCED", "lk", &t, "SET", "a", "1"][..], &["DBKV.FENCED", "lk", &stale, "SET", "b", "1"], &["DBKV.FENCED", "lk", &t, "ZADD", "z", "1", "m"], &["GET", "a"]] {
        assert_eq!(c.cmd(cmd), Value::Simple("QUEUED".into()));
    }
    let r = c.cmd(&["EXEC"]);
    let r = r.items();
    ok(&r[0]);
    err_eq(&r[1], STALE);
    assert_eq!(r[2], Value::Int(1));
    assert_eq!(r[3], b("1"));
    // EXEC holds the fenced command's keys: a watched key it writes counts.
    let mut other = s.client();
    ok(&c.cmd(&["WATCH", "a"]));
    ok(&fenced(&mut other, "lk", &t, &["SET", "a", "2"]));
    ok(&c.cmd(&["MULTI"]));
    c.cmd(&["DBKV.FENCED", "lk", &t, "SET", "a", "3"]);
    assert!(c.cmd(&["EXEC"]).is_nil());
    assert_eq!(c.cmd(&["GET", "a"]), b("2"));
    // The lock lost between MULTI and EXEC: refused at EXEC.
    ok(&c.cmd(&["MULTI"]));
    c.cmd(&["DBKV.FENCED", "lk", &t, "SET", "a", "4"]);
    assert_eq!(other.cmd(&["DBKV.UNLOCK", "lk", "me"]), Value::Int(1));
    assert_eq!(c.cmd(&["EXEC"]), arr(vec![Value::Error(STALE.into())]));
    assert_eq!(c.cmd(&["GET", "a"]), b("2"));
}

#[test]
fn fenced_writes_survive_kill9() {
    dbkv_only!("kill -9 and restart");
    let mut s = Server::start(&["--sync", "always"]);
    let mut c = s.client();
    let t = lock(&mut c, "lk", "me", 600_000);
    ok(&fenced(&mut c, "lk", &t, &["SET", "res", "kept"]));
    assert_eq!(fenced(&mut c, "lk", &t, &["ZADD", "z", "1.5", "a", "2", "b"]), Value::Int(2));
    err_eq(&fenced(&mut c, "lk", "999999", &["SET", "res", "stale"]), STALE);
    s.kill9();
    s.restart();
    let mut c = s.client();
    assert_eq!(c.cmd(&["GET", "res"]), b("kept"));
    assert_eq!(c.cmd(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]), arr(vec![b("a"), b("1.5"), b("b"), b("2")]));
    // The lock and its token survived too.
    ok(&fenced(&mut c, "lk", &t, &["SET", "res", "after"]));
}

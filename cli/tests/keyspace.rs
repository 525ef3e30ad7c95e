//! Key-space commands over real sockets: DEL/EXISTS, the EXPIRE family,
//! TTL/PTTL/EXPIRETIME, TYPE, SCAN/KEYS, DBSIZE/FLUSHALL, RENAME/COPY,
//! RANDOMKEY, with Redis 7's replies and error texts.

mod common;

use std::collections::BTreeSet;

use common::*;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn del_unlink_exists() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["MSET", "a", "1", "b", "2", "c", "3"]));
    assert_eq!(c.cmd(&["INCR", "n"]), Value::Int(1));
    assert_eq!(c.cmd(&["EXISTS", "a"]), Value::Int(1));
    // EXISTS counts every argument, repeats included.
    assert_eq!(c.cmd(&["EXISTS", "a", "a", "missing", "b", "n"]), Value::Int(4));
    assert_eq!(c.cmd(&["DEL", "a", "missing", "a"]), Value::Int(1));
    assert_eq!(c.cmd(&["EXISTS", "a"]), Value::Int(0));
    assert_eq!(c.cmd(&["GET", "a"]), Value::NilBulk);
    assert_eq!(c.cmd(&["UNLINK", "b", "c", "n"]), Value::Int(3));
    assert_eq!(c.cmd(&["DEL", "b"]), Value::Int(0));
    assert_eq!(c.cmd(&["MGET", "b", "c", "n"]), arr(vec![Value::NilBulk, Value::NilBulk, Value::NilBulk]));
    err_eq(&c.cmd(&["DEL"]), "ERR wrong number of arguments for 'del' command");
    err_eq(&c.cmd(&["EXISTS"]), "ERR wrong number of arguments for 'exists' command");
    // A deleted counter starts again from 0.
    assert_eq!(c.cmd(&["INCR", "n"]), Value::Int(1));
}

#[test]
fn expire_ttl_persist() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "k", "v"]));
    assert_eq!(c.cmd(&["TTL", "k"]), Value::Int(-1));
    assert_eq!(c.cmd(&["PTTL", "k"]), Value::Int(-1));
    assert_eq!(c.cmd(&["TTL", "missing"]), Value::Int(-2));
    assert_eq!(c.cmd(&["PTTL", "missing"]), Value::Int(-2));
    assert_eq!(c.cmd(&["EXPIRE", "missing", "100"]), Value::Int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100"]), Value::Int(1));
    let ttl = int(&c.cmd(&["TTL", "k"]));
    assert!((80..=100).contains(&ttl), "TTL {ttl}");
    let pttl = int(&c.cmd(&["PTTL", "k"]));
    assert!((80_000..=100_000).contains(&pttl), "PTTL {pttl}");
    assert_eq!(c.cmd(&["PEXPIRE", "k", "200000"]), Value::Int(1));
    let ttl = int(&c.cmd(&["TTL", "k"]));
    assert!((180..=200).contains(&ttl), "TTL {ttl}");
    assert_eq!(c.cmd(&["PERSIST", "k"]), Value::Int(1));
    assert_eq!(c.cmd(&["PERSIST", "k"]), Value::Int(0));
    assert_eq!(c.cmd(&["PERSIST", "missing"]), Value::Int(0));
    assert_eq!(c.cmd(&["TTL", "k"]), Value::Int(-1));
    // SET without options clears a TTL; KEEPTTL keeps it.
    c.cmd(&["EXPIRE", "k", "100"]);
    ok(&c.cmd(&["SET", "k", "v2", "KEEPTTL"]));
    assert!(int(&c.cmd(&["TTL", "k"])) > 0);
    ok(&c.cmd(&["SET", "k", "v3"]));
    assert_eq!(c.cmd(&["TTL", "k"]), Value::Int(-1));
    // INCR and APPEND keep the TTL (they modify the value in place).
    ok(&c.cmd(&["SET", "n", "1", "EX", "100"]));
    assert_eq!(c.cmd(&["INCR", "n"]), Value::Int(2));
    assert!(int(&c.cmd(&["TTL", "n"])) > 0, "INCR kept the TTL");
    assert_eq!(c.cmd(&["APPEND", "n", "0"]), Value::Int(2));
    assert!(int(&c.cmd(&["TTL", "n"])) > 0, "APPEND kept the TTL");
    // A TTL in the past (or zero) deletes the key at once.
    ok(&c.cmd(&["SET", "gone", "v"]));
    assert_eq!(c.cmd(&["EXPIRE", "gone", "-1"]), Value::Int(1));
    assert_eq!(c.cmd(&["EXISTS", "gone"]), Value::Int(0));
    ok(&c.cmd(&["SET", "gone", "v"]));
    assert_eq!(c.cmd(&["PEXPIRE", "gone", "0"]), Value::Int(1));
    assert_eq!(c.cmd(&["GET", "gone"]), Value::NilBulk);
    // Expiry really happens.
    ok(&c.cmd(&["SET", "short", "v"]));
    assert_eq!(c.cmd(&["PEXPIRE", "short", "50"]), Value::Int(1));
    common::eventually("the key expires", || c.cmd(&["EXISTS", "short"]) == Value::Int(0));
    assert_eq!(c.cmd(&["TTL", "short"]), Value::Int(-2));
    err_eq(&c.cmd(&["EXPIRE", "k", "abc"]), "ERR value is not an integer or out of range");
    err_eq(&c.cmd(&["EXPIRE", "k", "99999999999999999"]), "ERR invalid expire time in 'expire' command");
    err_eq(&c.cmd(&["PEXPIRE", "k", "9223372036854775807"]), "ERR invalid expire time in 'pexpire' command");
    err_eq(&c.cmd(&["EXPIRE", "k"]), "ERR wrong number of arguments for 'expire' command");
    err_eq(&c.cmd(&["TTL"]), "ERR wrong number of arguments for 'ttl' command");
    assert_eq!(c.cmd(&["TTL", "k"]), Value::Int(-1), "failed EXPIREs changed nothing");
}

#[test]
fn expire_options_nx_xx_gt_lt() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "k", "v"]));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "XX"]), Value::Int(0), "XX: no TTL yet");
    // A key without TTL counts as infinite: GT never applies, LT does.
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "GT"]), Value::Int(0));
    assert_eq!(c.cmd(&["TTL", "k"]), Value::Int(-1));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "NX"]), Value::Int(1));
    assert_eq!(c.cmd(&["EXPIRE", "k", "200", "NX"]), Value::Int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "200", "XX"]), Value::Int(1));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "GT"]), Value::Int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "300", "gt"]), Value::Int(1));
    assert_eq!(c.cmd(&["EXPIRE", "k", "400", "LT"]), Value::Int(0));
    assert_eq!(c.cmd(&["PEXPIRE", "k", "150000", "LT"]), Value::Int(1));
    let ttl = int(&c.cmd(&["TTL", "k"]));
    assert!((130..=150).contains(&ttl), "TTL {ttl}");
    ok(&c.cmd(&["SET", "plain", "v"]));
    assert_eq!(c.cmd(&["EXPIRE", "plain", "100", "LT"]), Value::Int(1));
    err_eq(&c.cmd(&["EXPIRE", "k", "10", "NX", "XX"]), "ERR NX and XX, GT or LT options at the same time are not compatible");
    err_eq(&c.cmd(&["EXPIRE", "k", "10", "GT", "LT"]), "ERR GT and LT options at the same time are not compatible");
    err_eq(&c.cmd(&["EXPIRE", "k", "10", "FOO"]), "ERR Unsupported option FOO");
}

#[test]
fn expireat_and_expiretime() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "k", "v"]));
    assert_eq!(c.cmd(&["EXPIRETIME", "k"]), Value::Int(-1));
    assert_eq!(c.cmd(&["PEXPIRETIME", "k"]), Value::Int(-1));
    assert_eq!(c.cmd(&["EXPIRETIME", "missing"]), Value::Int(-2));
    assert_eq!(c.cmd(&["PEXPIRETIME", "missing"]), Value::Int(-2));
    let at = now_ms() / 1000 + 1000;
    assert_eq!(c.cmd(&["EXPIREAT", "k", &at.to_string()]), Value::Int(1));
    assert_eq!(c.cmd(&["EXPIRETIME", "k"]), Value::Int(at));
    assert_eq!(c.cmd(&["PEXPIRETIME", "k"]), Value::Int(at * 1000));
    // A millisecond part of 250: EXPIRETIME is the same whether it rounds
    // (as Redis does) or truncates.
    let pat = (now_ms() / 1000 + 500) * 1000 + 250;
    assert_eq!(c.cmd(&["PEXPIREAT", "k", &pat.to_string()]), Value::Int(1));
    assert_eq!(c.cmd(&["PEXPIRETIME", "k"]), Value::Int(pat));
    assert_eq!(c.cmd(&["EXPIRETIME", "k"]), Value::Int(pat / 1000));
    // SET EXAT/PXAT report the same absolute time.
    ok(&c.cmd(&["SET", "x", "v", "PXAT", &pat.to_string()]));
    assert_eq!(c.cmd(&["PEXPIRETIME", "x"]), Value::Int(pat));
    // A time in the past deletes the key.
    assert_eq!(c.cmd(&["EXPIREAT", "k", "1"]), Value::Int(1));
    assert_eq!(c.cmd(&["EXISTS", "k"]), Value::Int(0));
    assert_eq!(c.cmd(&["PEXPIREAT", "missing", &pat.to_string()]), Value::Int(0));
}

#[test]
fn type_of_keys() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "s", "v"]));
    assert_eq!(c.cmd(&["INCR", "counter"]), Value::Int(1));
    ok(&c.cmd(&["SET", "e", ""]));
    assert_eq!(c.cmd(&["TYPE", "s"]), Value::Simple("string".into()));
    // A counter is a string to clients, whatever the engine keeps.
    assert_eq!(c.cmd(&["TYPE", "counter"]), Value::Simple("string".into()));
    assert_eq!(c.cmd(&["TYPE", "e"]), Value::Simple("string".into()));
    assert_eq!(c.cmd(&["TYPE", "missing"]), Value::Simple("none".into()));
}

/// Every key a full SCAN iteration returns (duplicates allowed by the
/// contract, so collected in a set), and the number of calls it took.
fn scan_all(c: &mut Client, extra: &[&str]) -> (BTreeSet<String>, usize) {
    let mut cursor = "0".to_string();
    let mut keys = BTreeSet::new();
    let mut calls = 0;
    loop {
        let mut args = vec!["SCAN", cursor.as_str()];
        args.extend_from_slice(extra);
        let r = c.cmd(&args);
        calls += 1;
        let items = r.items();
        assert_eq!(items.len(), 2, "{r:?}");
        let next = text(&items[0]);
        for k in items[1].items() {
            keys.insert(text(k));
        }
        if next == "0" {
            return (keys, calls);
        }
        assert!(calls < 100_000, "SCAN never ends");
        cursor = next;
    }
}

#[test]
fn scan_keys_dbsize() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(0));
    assert_eq!(c.cmd(&["KEYS", "*"]), arr(vec![]));
    assert_eq!(c.cmd(&["SCAN", "0"]), arr(vec![b("0"), arr(vec![])]));
    let mut all = BTreeSet::new();
    let mut mset = vec!["MSET".to_string()];
    for i in 0..500 {
        let k = if i % 5 == 0 { format!("user:{i}") } else { format!("item:{i}") };
        mset.push(k.clone());
        mset.push(i.to_string());
        all.insert(k);
    }
    ok(&c.cmd(&mset));
    assert_eq!(c.cmd(&["INCR", "user:counter"]), Value::Int(1));
    all.insert("user:counter".into());
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(501));
    let (keys, _) = scan_all(&mut c, &[]);
    assert_eq!(keys, all);
    let (keys, calls) = scan_all(&mut c, &["COUNT", "7"]);
    assert_eq!(keys, all);
    assert!(calls > 2, "COUNT 7 over 501 keys took {calls} calls");
    let users: BTreeSet<String> = all.iter().filter(|k| k.starts_with("user:")).cloned().collect();
    assert_eq!(scan_all(&mut c, &["MATCH", "user:*"]).0, users);
    assert_eq!(scan_all(&mut c, &["MATCH", "user:*", "COUNT", "1000"]).0, users);
    assert_eq!(scan_all(&mut c, &["TYPE", "string"]).0, all);
    assert_eq!(scan_all(&mut c, &["TYPE", "hash"]).0, BTreeSet::new());
    let keys: BTreeSet<String> = c.cmd(&["KEYS", "*"]).items().iter().map(text).collect();
    assert_eq!(keys, all);
    let keys: BTreeSet<String> = c.cmd(&["KEYS", "user:?0"]).items().iter().map(text).collect();
    assert_eq!(keys, ["user:10", "user:20", "user:30", "user:40", "user:50", "user:60", "user:70", "user:80", "user:90"].iter().map(|s| s.to_string()).collect());
    let keys: BTreeSet<String> = c.cmd(&["KEYS", "item:[1-2]"]).items().iter().map(text).collect();
    assert_eq!(keys, ["item:1", "item:2"].iter().map(|s| s.to_string()).collect());
    assert_eq!(c.cmd(&["KEYS", "nomatch*"]), arr(vec![]));
    // Expired keys are not listed.
    ok(&c.cmd(&["SET", "brief", "v", "PX", "30"]));
    common::eventually("the key expires", || c.cmd(&["GET", "brief"]).is_nil());
    assert_eq!(c.cmd(&["KEYS", "brief"]), arr(vec![]));
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(501));
    err_eq(&c.cmd(&["SCAN", "abc"]), "ERR invalid cursor");
    err_eq(&c.cmd(&["SCAN", "0", "COUNT", "0"]), "ERR syntax error");
    err_eq(&c.cmd(&["SCAN", "0", "COUNT", "x"]), "ERR value is not an integer or out of range");
    err_eq(&c.cmd(&["SCAN", "0", "BOGUS", "1"]), "ERR syntax error");
    err_eq(&c.cmd(&["SCAN", "0", "MATCH"]), "ERR syntax error");
}

#[test]
fn flushall_and_flushdb() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["MSET", "a", "1", "b", "2"]));
    c.cmd(&["INCR", "n"]);
    ok(&c.cmd(&["FLUSHALL"]));
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(0));
    assert_eq!(c.cmd(&["MGET", "a", "b", "n"]), arr(vec![Value::NilBulk, Value::NilBulk, Value::NilBulk]));
    assert_eq!(c.cmd(&["INCR", "n"]), Value::Int(1));
    ok(&c.cmd(&["FLUSHALL", "SYNC"]));
    ok(&c.cmd(&["SET", "a", "1"]));
    ok(&c.cmd(&["FLUSHALL", "ASYNC"]));
    assert_eq!(c.cmd(&["EXISTS", "a"]), Value::Int(0));
    ok(&c.cmd(&["SET", "a", "1"]));
    ok(&c.cmd(&["FLUSHDB"]));
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(0));
    err_eq(&c.cmd(&["FLUSHALL", "BOGUS"]), "ERR syntax error");
    err_eq(&c.cmd(&["FLUSHDB", "BOGUS"]), "ERR syntax error");
}

#[test]
fn rename_renamenx() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "a", "1"]));
    ok(&c.cmd(&["RENAME", "a", "b"]));
    assert_eq!(c.cmd(&["MGET", "a", "b"]), arr(vec![Value::NilBulk, b("1")]));
    err_eq(&c.cmd(&["RENAME", "a", "b"]), "ERR no such key");
    err_eq(&c.cmd(&["RENAMENX", "a", "b"]), "ERR no such key");
    // RENAME overwrites; RENAMENX does not.
    ok(&c.cmd(&["SET", "c", "3"]));
    ok(&c.cmd(&["RENAME", "c", "b"]));
    assert_eq!(c.cmd(&["GET", "b"]), b("3"));
    ok(&c.cmd(&["SET", "d", "4"]));
    assert_eq!(c.cmd(&["RENAMENX", "d", "b"]), Value::Int(0));
    assert_eq!(c.cmd(&["MGET", "b", "d"]), arr(vec![b("3"), b("4")]));
    assert_eq!(c.cmd(&["RENAMENX", "d", "e"]), Value::Int(1));
    assert_eq!(c.cmd(&["MGET", "d", "e"]), arr(vec![Value::NilBulk, b("4")]));
    // The TTL moves with the key; the destination's old TTL does not stay.
    ok(&c.cmd(&["SET", "t", "v", "EX", "100"]));
    ok(&c.cmd(&["SET", "u", "v", "EX", "5000"]));
    ok(&c.cmd(&["RENAME", "t", "u"]));
    let ttl = int(&c.cmd(&["TTL", "u"]));
    assert!((80..=100).contains(&ttl), "TTL {ttl}");
    ok(&c.cmd(&["SET", "p", "v"]));
    ok(&c.cmd(&["RENAME", "p", "u"]));
    assert_eq!(c.cmd(&["TTL", "u"]), Value::Int(-1));
    // A counter stays a counter.
    c.cmd(&["INCR", "n"]);
    ok(&c.cmd(&["RENAME", "n", "m"]));
    assert_eq!(c.cmd(&["INCR", "m"]), Value::Int(2));
    // Renaming a key to itself is fine when it exists.
    ok(&c.cmd(&["RENAME", "m", "m"]));
    assert_eq!(c.cmd(&["RENAMENX", "m", "m"]), Value::Int(0));
    assert_eq!(c.cmd(&["GET", "m"]), b("2"));
}

#[test]
fn copy_keys() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "src", "v", "EX", "100"]));
    assert_eq!(c.cmd(&["COPY", "src", "dst"]), Value::Int(1));
    assert_eq!(c.cmd(&["MGET", "src", "dst"]), arr(vec![b("v"), b("v")]));
    let ttl = int(&c.cmd(&["TTL", "dst"]));
    assert!((80..=100).contains(&ttl), "COPY keeps the TTL: {ttl}");
    ok(&c.cmd(&["SET", "src", "w"]));
    assert_eq!(c.cmd(&["COPY", "src", "dst"]), Value::Int(0));
    assert_eq!(c.cmd(&["GET", "dst"]), b("v"));
    assert_eq!(c.cmd(&["COPY", "src", "dst", "REPLACE"]), Value::Int(1));
    assert_eq!(c.cmd(&["GET", "dst"]), b("w"));
    assert_eq!(c.cmd(&["TTL", "dst"]), Value::Int(-1));
    assert_eq!(c.cmd(&["COPY", "missing", "dst"]), Value::Int(0));
    // The copy is independent of its source.
    ok(&c.cmd(&["SET", "src", "changed"]));
    assert_eq!(c.cmd(&["GET", "dst"]), b("w"));
    c.cmd(&["INCR", "n"]);
    assert_eq!(c.cmd(&["COPY", "n", "n2"]), Value::Int(1));
    assert_eq!(c.cmd(&["INCR", "n2"]), Value::Int(2));
    assert_eq!(c.cmd(&["GET", "n"]), b("1"));
    err_eq(&c.cmd(&["COPY", "src", "src"]), "ERR source and destination objects are the same");
    err_eq(&c.cmd(&["COPY", "src", "x", "BOGUS"]), "ERR syntax error");
}

#[test]
fn randomkey() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["RANDOMKEY"]), Value::NilBulk);
    ok(&c.cmd(&["SET", "only", "v"]));
    assert_eq!(c.cmd(&["RANDOMKEY"]), b("only"));
    ok(&c.cmd(&["MSET", "a", "1", "b", "2", "c", "3"]));
    let all: BTreeSet<String> = ["only", "a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let mut seen = BTreeSet::new();
    for _ in 0..400 {
        let k = text(&c.cmd(&["RANDOMKEY"]));
        assert!(all.contains(&k), "RANDOMKEY gave {k}");
        seen.insert(k);
    }
    assert!(seen.len() >= 2, "400 RANDOMKEYs over 4 keys all gave {seen:?}");
    err_eq(&c.cmd(&["RANDOMKEY", "x"]), "ERR wrong number of arguments for 'randomkey' command");
}

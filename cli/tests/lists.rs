//! List commands over real sockets: Redis 7's replies and errors (checked
//! against redis-server with DBKV_TEST_TARGET=redis), types, TTLs,
//! MULTI/EXEC, and (dbkv) durability across kill -9 and restarts.
//! Blocking commands are in `blocking.rs`.

mod common;

use common::*;

fn bulks(items: &[&str]) -> Value {
    arr(items.iter().map(|s| b(s)).collect())
}

fn ints(items: &[i64]) -> Value {
    arr(items.iter().map(|&n| Value::Int(n)).collect())
}

fn simple_ok() -> Value {
    Value::Simple("OK".into())
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";

#[test]
fn push_pop_len_range() {
    let s = Server::start(&[]);
    let mut c = s.client();
    // LPUSH puts each element at the head in turn.
    assert_eq!(c.cmd(&["LPUSH", "l", "a", "b", "c"]), Value::Int(3));
    assert_eq!(c.cmd(&["RPUSH", "l", "x", "y"]), Value::Int(5));
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), bulks(&["c", "b", "a", "x", "y"]));
    assert_eq!(c.cmd(&["LLEN", "l"]), Value::Int(5));
    assert_eq!(c.cmd(&["LLEN", "missing"]), Value::Int(0));
    // LPUSHX / RPUSHX only onto an existing list.
    assert_eq!(c.cmd(&["LPUSHX", "missing", "a", "b"]), Value::Int(0));
    assert_eq!(c.cmd(&["RPUSHX", "missing", "a"]), Value::Int(0));
    assert_eq!(c.cmd(&["EXISTS", "missing"]), Value::Int(0));
    assert_eq!(c.cmd(&["LPUSHX", "l", "h1", "h2"]), Value::Int(7));
    assert_eq!(c.cmd(&["RPUSHX", "l", "t"]), Value::Int(8));
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), bulks(&["h2", "h1", "c", "b", "a", "x", "y", "t"]));
    // Ranges: negative indexes, clamping, empty ranges.
    assert_eq!(c.cmd(&["LRANGE", "l", "-3", "-2"]), bulks(&["x", "y"]));
    assert_eq!(c.cmd(&["LRANGE", "l", "-100", "1"]), bulks(&["h2", "h1"]));
    assert_eq!(c.cmd(&["LRANGE", "l", "6", "100"]), bulks(&["y", "t"]));
    assert_eq!(c.cmd(&["LRANGE", "l", "3", "2"]), arr(vec![]));
    assert_eq!(c.cmd(&["LRANGE", "l", "8", "10"]), arr(vec![]));
    assert_eq!(c.cmd(&["LRANGE", "l", "-100", "-50"]), arr(vec![]));
    assert_eq!(c.cmd(&["LRANGE", "l", "-9223372036854775808", "9223372036854775807"]).items().len(), 8);
    assert_eq!(c.cmd(&["LRANGE", "missing", "0", "-1"]), arr(vec![]));
    // Pops: one element, or a count (an array, short at the end).
    assert_eq!(c.cmd(&["LPOP", "l"]), b("h2"));
    assert_eq!(c.cmd(&["RPOP", "l"]), b("t"));
    assert_eq!(c.cmd(&["LPOP", "l", "2"]), bulks(&["h1", "c"]));
    assert_eq!(c.cmd(&["RPOP", "l", "2"]), bulks(&["y", "x"]));
    assert_eq!(c.cmd(&["LPOP", "l", "0"]), arr(vec![]));
    assert_eq!(c.cmd(&["RPOP", "l", "10"]), bulks(&["a", "b"]));
    assert_eq!(c.cmd(&["EXISTS", "l"]), Value::Int(0));
    // A missing key: nil for one element, a nil array for a count.
    assert_eq!(c.cmd(&["LPOP", "l"]), Value::NilBulk);
    assert_eq!(c.cmd(&["RPOP", "l", "2"]), Value::NilArray);
    assert_eq!(c.cmd(&["LPOP", "l", "0"]), Value::NilArray);
    // RESP3: both are null.
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["LPOP", "l"]), Value::Null);
    assert_eq!(c.cmd(&["LPOP", "l", "3"]), Value::Null);
    assert_eq!(c.cmd(&["RPUSH", "l", "a"]), Value::Int(1));
    assert_eq!(c.cmd(&["RPOP", "l", "3"]), bulks(&["a"]));
    // Binary-safe elements.
    let mut c = s.client();
    let bin: &[u8] = b"\x00\r\n\xff";
    assert_eq!(c.cmd(&[b"RPUSH".as_ref(), b"bin", bin, b""]), Value::Int(2));
    assert_eq!(c.cmd(&["LRANGE", "bin", "0", "-1"]), arr(vec![Value::Bulk(bin.to_vec()), b("")]));
}

#[test]
fn index_set_rem_trim() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["RPUSH", "l", "a", "b", "c", "1", "2", "3", "c"]);
    assert_eq!(c.cmd(&["LINDEX", "l", "0"]), b("a"));
    assert_eq!(c.cmd(&["LINDEX", "l", "-1"]), b("c"));
    assert_eq!(c.cmd(&["LINDEX", "l", "-7"]), b("a"));
    assert_eq!(c.cmd(&["LINDEX", "l", "-8"]), Value::NilBulk);
    assert_eq!(c.cmd(&["LINDEX", "l", "7"]), Value::NilBulk);
    assert_eq!(c.cmd(&["LINDEX", "l", "9223372036854775807"]), Value::NilBulk);
    assert_eq!(c.cmd(&["LINDEX", "l", "-9223372036854775808"]), Value::NilBulk);
    assert_eq!(c.cmd(&["LINDEX", "missing", "0"]), Value::NilBulk);
    // LSET: negative indexes; missing keys and indexes outside are errors.
    ok(&c.cmd(&["LSET", "l", "-1", "z"]));
    ok(&c.cmd(&["LSET", "l", "0", "A"]));
    err_eq(&c.cmd(&["LSET", "l", "7", "z"]), "ERR index out of range");
    err_eq(&c.cmd(&["LSET", "l", "-8", "z"]), "ERR index out of range");
    err_eq(&c.cmd(&["LSET", "missing", "0", "z"]), "ERR no such key");
    err_eq(&c.cmd(&["LSET", "missing", "x", "z"]), "ERR no such key");
    err_eq(&c.cmd(&["LSET", "l", "x", "z"]), NOT_INTEGER);
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), bulks(&["A", "b", "c", "1", "2", "3", "z"]));
    // LTRIM keeps a range; nothing in range deletes the key.
    ok(&c.cmd(&["LTRIM", "l", "1", "-2"]));
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), bulks(&["b", "c", "1", "2", "3"]));
    ok(&c.cmd(&["LTRIM", "l", "-100", "2"]));
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), bulks(&["b", "c", "1"]));
    ok(&c.cmd(&["LTRIM", "l", "0", "-1"]));
    assert_eq!(c.cmd(&["LLEN", "l"]), Value::Int(3));
    ok(&c.cmd(&["LTRIM", "l", "2", "1"]));
    assert_eq!(c.cmd(&["EXISTS", "l"]), Value::Int(0));
    ok(&c.cmd(&["LTRIM", "missing", "0", "1"]));
    // LREM: from the head, from the tail, all.
    c.cmd(&["RPUSH", "r", "a", "b", "a", "c", "a", "d", "a"]);
    assert_eq!(c.cmd(&["LREM", "r", "2", "a"]), Value::Int(2));
    assert_eq!(c.cmd(&["LRANGE", "r", "0", "-1"]), bulks(&["b", "c", "a", "d", "a"]));
    assert_eq!(c.cmd(&["LREM", "r", "-1", "a"]), Value::Int(1));
    assert_eq!(c.cmd(&["LRANGE", "r", "0", "-1"]), bulks(&["b", "c", "a", "d"]));
    assert_eq!(c.cmd(&["LREM", "r", "0", "zz"]), Value::Int(0));
    assert_eq!(c.cmd(&["LREM", "missing", "0", "a"]), Value::Int(0));
    c.cmd(&["RPUSH", "r2", "x", "x"]);
    assert_eq!(c.cmd(&["LREM", "r2", "0", "x"]), Value::Int(2));
    assert_eq!(c.cmd(&["EXISTS", "r2"]), Value::Int(0));
}

#[test]
fn lpos_rank_count_maxlen() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["RPUSH", "l", "a", "b", "a", "c", "a", "d", "a"]);
    assert_eq!(c.cmd(&["LPOS", "l", "a"]), Value::Int(0));
    assert_eq!(c.cmd(&["LPOS", "l", "d"]), Value::Int(5));
    assert_eq!(c.cmd(&["LPOS", "l", "zz"]), Value::NilBulk);
    assert_eq!(c.cmd(&["LPOS", "l", "a", "RANK", "2"]), Value::Int(2));
    assert_eq!(c.cmd(&["LPOS", "l", "a", "RANK", "-1"]), Value::Int(6));
    assert_eq!(c.cmd(&["LPOS", "l", "a", "RANK", "10"]), Value::NilBulk);
    assert_eq!(c.cmd(&["LPOS", "l", "a", "RANK", "-2", "COUNT", "2"]), ints(&[4, 2]));
    assert_eq!(c.cmd(&["LPOS", "l", "a", "COUNT", "0"]), ints(&[0, 2, 4, 6]));
    assert_eq!(c.cmd(&["LPOS", "l", "a", "count", "0", "rank", "-1"]), ints(&[6, 4, 2, 0]));
    assert_eq!(c.cmd(&["LPOS", "l", "a", "COUNT", "2", "MAXLEN", "3"]), ints(&[0, 2]));
    assert_eq!(c.cmd(&["LPOS", "l", "a", "RANK", "2", "MAXLEN", "2"]), Value::NilBulk);
    assert_eq!(c.cmd(&["LPOS", "l", "a", "RANK", "-2", "MAXLEN", "3"]), Value::Int(4));
    assert_eq!(c.cmd(&["LPOS", "l", "a", "MAXLEN", "0"]), Value::Int(0));
    assert_eq!(c.cmd(&["LPOS", "l", "a", "RANK", "10", "COUNT", "1"]), arr(vec![]));
    assert_eq!(c.cmd(&["LPOS", "l", "zz", "COUNT", "0"]), arr(vec![]));
    // The last of a repeated option wins.
    assert_eq!(c.cmd(&["LPOS", "l", "a", "COUNT", "1", "COUNT", "2"]), ints(&[0, 2]));
    assert_eq!(c.cmd(&["LPOS", "missing", "a"]), Value::NilBulk);
    assert_eq!(c.cmd(&["LPOS", "missing", "a", "COUNT", "0"]), arr(vec![]));
    // Option errors come before the key is looked at.
    ok(&c.cmd(&["SET", "s", "x"]));
    err_eq(&c.cmd(&["LPOS", "s", "a", "RANK", "0"]), "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list");
    err_eq(&c.cmd(&["LPOS", "s", "a", "COUNT", "-1"]), "ERR COUNT can't be negative");
    err_eq(&c.cmd(&["LPOS", "l", "a", "COUNT", "x"]), "ERR COUNT can't be negative");
    err_eq(&c.cmd(&["LPOS", "l", "a", "MAXLEN", "-1"]), "ERR MAXLEN can't be negative");
    err_eq(&c.cmd(&["LPOS", "l", "a", "RANK", "x"]), NOT_INTEGER);
    err_eq(&c.cmd(&["LPOS", "l", "a", "RANK"]), "ERR syntax error");
    err_eq(&c.cmd(&["LPOS", "l", "a", "FOO", "1"]), "ERR syntax error");
    err_eq(&c.cmd(&["LPOS", "s", "a"]), WRONGTYPE);
}

#[test]
fn lmove_and_rpoplpush() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["RPUSH", "src", "a", "b", "c"]);
    assert_eq!(c.cmd(&["LMOVE", "src", "dst", "LEFT", "RIGHT"]), b("a"));
    assert_eq!(c.cmd(&["LMOVE", "src", "dst", "right", "left"]), b("c"));
    assert_eq!(c.cmd(&["LRANGE", "dst", "0", "-1"]), bulks(&["c", "a"]));
    assert_eq!(c.cmd(&["RPOPLPUSH", "src", "dst"]), b("b"));
    assert_eq!(c.cmd(&["EXISTS", "src"]), Value::Int(0));
    assert_eq!(c.cmd(&["LRANGE", "dst", "0", "-1"]), bulks(&["b", "c", "a"]));
    assert_eq!(c.cmd(&["LMOVE", "src", "dst", "LEFT", "LEFT"]), Value::NilBulk);
    assert_eq!(c.cmd(&["RPOPLPUSH", "src", "dst"]), Value::NilBulk);
    // Same source and destination: a rotation.
    assert_eq!(c.cmd(&["LMOVE", "dst", "dst", "LEFT", "RIGHT"]), b("b"));
    assert_eq!(c.cmd(&["LRANGE", "dst", "0", "-1"]), bulks(&["c", "a", "b"]));
    assert_eq!(c.cmd(&["RPOPLPUSH", "dst", "dst"]), b("b"));
    assert_eq!(c.cmd(&["LRANGE", "dst", "0", "-1"]), bulks(&["b", "c", "a"]));
    // Rotating a one-element list keeps the key and its TTL.
    c.cmd(&["RPUSH", "one", "x"]);
    assert_eq!(c.cmd(&["EXPIRE", "one", "100"]), Value::Int(1));
    assert_eq!(c.cmd(&["LMOVE", "one", "one", "LEFT", "RIGHT"]), b("x"));
    assert!(int(&c.cmd(&["TTL", "one"])) > 0);
    // A destination of another type: an error, and nothing moves.
    ok(&c.cmd(&["SET", "s", "x"]));
    err_eq(&c.cmd(&["LMOVE", "dst", "s", "LEFT", "LEFT"]), WRONGTYPE);
    err_eq(&c.cmd(&["RPOPLPUSH", "dst", "s"]), WRONGTYPE);
    err_eq(&c.cmd(&["LMOVE", "s", "dst", "LEFT", "LEFT"]), WRONGTYPE);
    assert_eq!(c.cmd(&["LLEN", "dst"]), Value::Int(3));
    err_eq(&c.cmd(&["LMOVE", "dst", "x", "UP", "LEFT"]), "ERR syntax error");
    err_eq(&c.cmd(&["LMOVE", "dst", "x", "LEFT", "DOWN"]), "ERR syntax error");
}

#[test]
fn argument_errors() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "s", "x"]));
    c.cmd(&["RPUSH", "l", "a", "b"]);
    let arity = |name: &str| format!("ERR wrong number of arguments for '{name}' command");
    for (args, want) in [
        (vec!["LPUSH", "l"], arity("lpush")),
        (vec!["RPUSHX", "l"], arity("rpushx")),
        (vec!["LPOP"], arity("lpop")),
        (vec!["LPOP", "l", "1", "2"], arity("lpop")),
        (vec!["LRANGE", "l", "0"], arity("lrange")),
        (vec!["LPOS", "l"], arity("lpos")),
        (vec!["LMOVE", "l", "m", "LEFT"], arity("lmove")),
        (vec!["LPOP", "l", "-1"], "ERR value is out of range, must be positive".into()),
        (vec!["RPOP", "l", "x"], "ERR value is out of range, must be positive".into()),
        (vec!["LPOP", "missing", "-1"], "ERR value is out of range, must be positive".into()),
        (vec!["LRANGE", "l", "a", "1"], NOT_INTEGER.into()),
        (vec!["LRANGE", "s", "a", "1"], NOT_INTEGER.into()),
        (vec!["LTRIM", "s", "0", "b"], NOT_INTEGER.into()),
        (vec!["LREM", "s", "x", "a"], NOT_INTEGER.into()),
        (vec!["LINDEX", "l", "x"], NOT_INTEGER.into()),
    ] {
        err_eq(&c.cmd(&args), &want);
    }
    // LINDEX and LSET look the key up first.
    assert_eq!(c.cmd(&["LINDEX", "missing", "x"]), Value::NilBulk);
    err_eq(&c.cmd(&["LINDEX", "s", "x"]), WRONGTYPE);
    err_eq(&c.cmd(&["LSET", "s", "x", "y"]), WRONGTYPE);
}

#[test]
fn wrongtype_both_ways() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "s", "x"]));
    c.cmd(&["RPUSH", "l", "a"]);
    // List commands on a string.
    for args in [
        vec!["LPUSH", "s", "a"],
        vec!["RPUSH", "s", "a"],
        vec!["LPUSHX", "s", "a"],
        vec!["RPUSHX", "s", "a"],
        vec!["LPOP", "s"],
        vec!["RPOP", "s", "2"],
        vec!["LLEN", "s"],
        vec!["LRANGE", "s", "0", "-1"],
        vec!["LINDEX", "s", "0"],
        vec!["LSET", "s", "0", "a"],
        vec!["LREM", "s", "0", "a"],
        vec!["LTRIM", "s", "0", "1"],
        vec!["LPOS", "s", "a"],
        vec!["LMOVE", "s", "l", "LEFT", "LEFT"],
        vec!["RPOPLPUSH", "s", "l"],
    ] {
        err_eq(&c.cmd(&args), WRONGTYPE);
    }
    assert_eq!(c.cmd(&["GET", "s"]), b("x"));
    // String commands on a list.
    for args in [vec!["GET", "l"], vec!["INCR", "l"], vec!["APPEND", "l", "x"], vec!["STRLEN", "l"], vec!["GETRANGE", "l", "0", "1"], vec!["GETSET", "l", "x"]] {
        err_eq(&c.cmd(&args), WRONGTYPE);
    }
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), bulks(&["a"]));
    assert_eq!(c.cmd(&["TYPE", "l"]), Value::Simple("list".into()));
    assert_eq!(c.cmd(&["TYPE", "s"]), Value::Simple("string".into()));
    // SET replaces a value of any type.
    ok(&c.cmd(&["SET", "l", "now-a-string"]));
    assert_eq!(c.cmd(&["GET", "l"]), b("now-a-string"));
    // DEL removes a list like any key.
    c.cmd(&["RPUSH", "l2", "a"]);
    assert_eq!(c.cmd(&["DEL", "l2"]), Value::Int(1));
    assert_eq!(c.cmd(&["LLEN", "l2"]), Value::Int(0));
}

#[test]
fn ttl_covers_the_list() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["RPUSH", "l", "a", "b"]);
    assert_eq!(c.cmd(&["TTL", "l"]), Value::Int(-1));
    assert_eq!(c.cmd(&["PEXPIRE", "l", "100000"]), Value::Int(1));
    // Writes to the list keep its TTL.
    c.cmd(&["RPUSH", "l", "c"]);
    c.cmd(&["LPOP", "l"]);
    ok(&c.cmd(&["LSET", "l", "0", "B"]));
    assert!(int(&c.cmd(&["PTTL", "l"])) > 90_000);
    // Once it expires the whole list is gone.
    assert_eq!(c.cmd(&["PEXPIRE", "l", "50"]), Value::Int(1));
    eventually("the list expires", || c.cmd(&["EXISTS", "l"]) == Value::Int(0));
    assert_eq!(c.cmd(&["LLEN", "l"]), Value::Int(0));
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), arr(vec![]));
    assert_eq!(c.cmd(&["LPOP", "l"]), Value::NilBulk);
    // A push creates a fresh list without a TTL.
    assert_eq!(c.cmd(&["RPUSH", "l", "new"]), Value::Int(1));
    assert_eq!(c.cmd(&["TTL", "l"]), Value::Int(-1));
    // An emptied list takes its TTL with it.
    assert_eq!(c.cmd(&["EXPIRE", "l", "100"]), Value::Int(1));
    c.cmd(&["RPOP", "l"]);
    c.cmd(&["RPUSH", "l", "again"]);
    assert_eq!(c.cmd(&["TTL", "l"]), Value::Int(-1));
}

#[test]
fn rename_and_copy_lists() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["RPUSH", "a", "1", "2", "3"]);
    assert_eq!(c.cmd(&["EXPIRE", "a", "100"]), Value::Int(1));
    ok(&c.cmd(&["RENAME", "a", "b"]));
    assert_eq!(c.cmd(&["LRANGE", "b", "0", "-1"]), bulks(&["1", "2", "3"]));
    assert!(int(&c.cmd(&["TTL", "b"])) > 0);
    assert_eq!(c.cmd(&["COPY", "b", "c"]), Value::Int(1));
    c.cmd(&["RPUSH", "c", "4"]);
    // The copy is independent of the original.
    assert_eq!(c.cmd(&["LRANGE", "b", "0", "-1"]), bulks(&["1", "2", "3"]));
    assert_eq!(c.cmd(&["LRANGE", "c", "0", "-1"]), bulks(&["1", "2", "3", "4"]));
    ok(&c.cmd(&["SET", "s", "x"]));
    assert_eq!(c.cmd(&["COPY", "c", "s", "REPLACE"]), Value::Int(1));
    assert_eq!(c.cmd(&["LLEN", "s"]), Value::Int(4));
}

#[test]
fn multi_exec_with_list_commands() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["MULTI"]));
    for args in [vec!["RPUSH", "l", "a", "b", "c"], vec!["LPOP", "l"], vec!["LMOVE", "l", "m", "RIGHT", "LEFT"], vec!["LRANGE", "l", "0", "-1"], vec!["LLEN", "m"], vec!["SET", "s", "x"], vec!["LPUSH", "s", "y"], vec!["LPOS", "l", "b"]] {
        assert_eq!(c.cmd(&args), Value::Simple("QUEUED".into()));
    }
    assert_eq!(
        c.cmd(&["EXEC"]),
        arr(vec![Value::Int(3), b("a"), b("c"), bulks(&["b"]), Value::Int(1), simple_ok(), Value::Error(WRONGTYPE.into()), Value::Int(0)])
    );
    // WATCH on a list: another client's push aborts the transaction.
    let mut other = s.client();
    ok(&c.cmd(&["WATCH", "l"]));
    assert_eq!(other.cmd(&["RPUSH", "l", "z"]), Value::Int(2));
    ok(&c.cmd(&["MULTI"]));
    c.cmd(&["LPOP", "l"]);
    assert_eq!(c.cmd(&["EXEC"]), Value::NilArray);
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), bulks(&["b", "z"]));
    // A pop inside MULTI sees the pushes queued before it.
    ok(&c.cmd(&["MULTI"]));
    c.cmd(&["DEL", "q"]);
    c.cmd(&["RPUSH", "q", "1", "2"]);
    c.cmd(&["RPOP", "q", "5"]);
    c.cmd(&["EXISTS", "q"]);
    assert_eq!(c.cmd(&["EXEC"]), arr(vec![Value::Int(0), Value::Int(2), bulks(&["2", "1"]), Value::Int(0)]));
}

#[test]
fn command_table_entries() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for (name, arity, first, last) in [("lpush", -3, 1, 1), ("lpop", -2, 1, 1), ("lrange", 4, 1, 1), ("lpos", -3, 1, 1), ("lmove", 5, 1, 2), ("blpop", -3, 1, -2), ("blmove", 6, 1, 2), ("brpoplpush", 4, 1, 2)] {
        let info = c.cmd(&["COMMAND", "INFO", name]);
        let e = info.items()[0].items();
        assert_eq!(e[0], b(name));
        assert_eq!((int(&e[1]), int(&e[3]), int(&e[4]), int(&e[5])), (arity, first, last, 1), "{name}");
        let flags: Vec<String> = e[2].items().iter().filter_map(|f| f.as_text()).collect();
        let write = !matches!(name, "lrange" | "lpos");
        assert!(flags.iter().any(|f| f == if write { "write" } else { "readonly" }), "{name}: {flags:?}");
    }
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "BLPOP", "a", "b", "0"]), bulks(&["a", "b"]));
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "LMOVE", "a", "b", "LEFT", "LEFT"]), bulks(&["a", "b"]));
}

// ---- durability (dbkv only) ----

/// RPUSHes `prefix0..prefix{n}` to `key` in pipelined batches.
fn push_many(c: &mut Client, key: &str, prefix: &str, n: usize) {
    let batch = 1000;
    let mut wire = Vec::new();
    let mut sent = 0;
    for start in (0..n).step_by(batch) {
        let mut args = vec!["RPUSH".to_string(), key.to_string()];
        args.extend((start..(start + batch).min(n)).map(|i| format!("{prefix}{i}")));
        wire.extend(Client::encode(&args));
        sent += 1;
    }
    c.send_raw(&wire);
    for _ in 0..sent {
        int(&c.read_value());
    }
}

#[track_caller]
fn assert_list(c: &mut Client, key: &str, want: &[String]) {
    assert_eq!(c.cmd(&["LLEN", key]), Value::Int(want.len() as i64), "{key}");
    let got = c.cmd(&["LRANGE", key, "0", "-1"]);
    let got: Vec<String> = got.items().iter().map(text).collect();
    assert!(got == want, "{key}: {} elements differ from the {} expected", got.len(), want.len());
}

#[test]
fn sync_always_lists_survive_kill9() {
    dbkv_only!("kill -9 and restart");
    let mut s = Server::start(&["--sync", "always"]);
    let mut c = s.client();
    c.cmd(&["RPUSH", "l", "a", "b", "c", "d"]);
    c.cmd(&["LPUSH", "l", "z"]);
    assert_eq!(c.cmd(&["RPOP", "l"]), b("d"));
    ok(&c.cmd(&["LSET", "l", "1", "A"]));
    assert_eq!(c.cmd(&["LMOVE", "l", "m", "LEFT", "RIGHT"]), b("z"));
    c.cmd(&["RPUSH", "gone", "x"]);
    c.cmd(&["LPOP", "gone"]);
    c.cmd(&["RPUSH", "t", "x"]);
    c.cmd(&["EXPIRE", "t", "1000"]);
    s.kill9();
    s.restart();
    let mut c = s.client();
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), bulks(&["A", "b", "c"]));
    assert_eq!(c.cmd(&["LRANGE", "m", "0", "-1"]), bulks(&["z"]));
    assert_eq!(c.cmd(&["EXISTS", "gone"]), Value::Int(0));
    assert!(int(&c.cmd(&["TTL", "t"])) > 900);
    err_eq(&c.cmd(&["GET", "l"]), WRONGTYPE);
}

#[test]
fn big_list_survives_restart_via_wal_and_snapshot() {
    dbkv_only!("kill -9 and restart");
    let n = 100_000;
    let mut s = Server::start(&["--sync", "always"]);
    let mut c = s.client();
    push_many(&mut c, "big", "e", n);
    let mut want: Vec<String> = (0..n).map(|i| format!("e{i}")).collect();
    // WAL only: no snapshot was taken, and kill -9 takes none.
    s.kill9();
    s.restart();
    let mut c = s.client();
    assert_list(&mut c, "big", &want);
    // A snapshot holding the list, then more writes in the WAL after it.
    ok(&c.cmd(&["SAVE"]));
    let snaps = std::fs::read_dir(&s.data_dir).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".snap")).count();
    assert!(snaps > 0, "SAVE wrote no snapshot in {}", s.data_dir.display());
    assert_eq!(c.cmd(&["LPOP", "big", "10"]).items().len(), 10);
    want.drain(..10);
    c.cmd(&["RPUSH", "big", "tail"]);
    want.push("tail".into());
    ok(&c.cmd(&["LSET", "big", "5", "five"]));
    want[5] = "five".into();
    s.kill9();
    s.restart();
    let mut c = s.client();
    assert_list(&mut c, "big", &want);
    // A graceful restart (which snapshots on the way out).
    s.restart();
    let mut c = s.client();
    assert_list(&mut c, "big", &want);
}

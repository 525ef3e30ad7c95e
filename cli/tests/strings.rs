//! String commands over a real socket, checked against Redis 7's replies
//! and error texts (run with DBKV_TEST_TARGET=redis to prove them).

mod common;

use common::*;

#[test]
fn set_get_binary_safe_and_empty() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "k", "hello"]));
    assert_eq!(c.cmd(&["GET", "k"]), b("hello"));
    // Every byte value round-trips, in keys and values: NUL, CR/LF, high bytes.
    let mut binary: Vec<u8> = (0..=255u8).collect();
    binary.extend_from_slice(b"\r\n\r\n\x00");
    let key: &[u8] = b"bin\x00\r\n\xff";
    ok(&c.cmd(&[b"SET".as_ref(), key, &binary]));
    assert_eq!(bulk(&c.cmd(&[b"GET".as_ref(), key])), binary);
    // Empty is a value, distinct from a missing key.
    ok(&c.cmd(&["SET", "empty", ""]));
    assert_eq!(c.cmd(&["GET", "empty"]), b(""));
    assert_eq!(c.cmd(&["GET", "missing"]), Value::NilBulk);
    assert_eq!(c.cmd(&["STRLEN", "k"]), Value::Int(5));
    assert_eq!(c.cmd(&["STRLEN", "missing"]), Value::Int(0));
    // A 1 MiB value.
    let big: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
    ok(&c.cmd(&[b"SET".as_ref(), b"big", &big]));
    assert_eq!(bulk(&c.cmd(&["GET", "big"])), big);
}

#[test]
fn set_options() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "k", "v1"]));
    assert_eq!(c.cmd(&["SET", "k", "x", "NX"]), Value::NilBulk);
    assert_eq!(c.cmd(&["SET", "new", "x", "XX"]), Value::NilBulk);
    assert_eq!(c.cmd(&["GET", "new"]), Value::NilBulk);
    ok(&c.cmd(&["SET", "k", "v2", "XX"]));
    ok(&c.cmd(&["SET", "nx", "v", "nx"]));
    assert_eq!(c.cmd(&["SET", "k", "v3", "GET"]), b("v2"));
    assert_eq!(c.cmd(&["SET", "fresh", "v", "GET"]), Value::NilBulk);
    assert_eq!(c.cmd(&["GET", "fresh"]), b("v"));
    // NX with GET (Redis 7): nil and no write when the key exists.
    assert_eq!(c.cmd(&["SET", "k", "v4", "NX", "GET"]), b("v3"));
    assert_eq!(c.cmd(&["GET", "k"]), b("v3"));
    ok(&c.cmd(&["SET", "k", "v", "EX", "100"]));
    ok(&c.cmd(&["SET", "k", "v", "PX", "100000", "XX"]));
    ok(&c.cmd(&["SET", "k", "v", "KEEPTTL"]));
    err_eq(&c.cmd(&["SET", "k", "v", "NX", "XX"]), "ERR syntax error");
    err_eq(&c.cmd(&["SET", "k", "v", "EX", "10", "PX", "100"]), "ERR syntax error");
    err_eq(&c.cmd(&["SET", "k", "v", "EX", "10", "KEEPTTL"]), "ERR syntax error");
    err_eq(&c.cmd(&["SET", "k", "v", "BOGUS"]), "ERR syntax error");
    err_eq(&c.cmd(&["SET", "k", "v", "EX"]), "ERR syntax error");
    err_eq(&c.cmd(&["SET", "k", "v", "EX", "abc"]), "ERR value is not an integer or out of range");
    err_eq(&c.cmd(&["SET", "k", "v", "EX", "0"]), "ERR invalid expire time in 'set' command");
    err_eq(&c.cmd(&["SET", "k", "v", "PX", "-5"]), "ERR invalid expire time in 'set' command");
    err_eq(&c.cmd(&["SET", "k"]), "ERR wrong number of arguments for 'set' command");
    // A failed SET changed nothing.
    assert_eq!(c.cmd(&["GET", "k"]), b("v"));
}

#[test]
fn expiry_of_set_ex_px_setex_psetex() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "px", "v", "PX", "50"]));
    ok(&c.cmd(&["PSETEX", "psetex", "50", "v"]));
    ok(&c.cmd(&["SETEX", "setex", "100", "v"]));
    ok(&c.cmd(&["SET", "long", "v", "EX", "1000"]));
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 50;
    ok(&c.cmd(&["SET", "pxat", "v", "PXAT", &at.to_string()]));
    // A time already past deletes nothing that is not there and stores nothing.
    ok(&c.cmd(&["SET", "past", "v", "PXAT", "1"]));
    assert_eq!(c.cmd(&["GET", "past"]), Value::NilBulk);
    common::eventually("PX/PSETEX/PXAT keys expire", || {
        ["px", "psetex", "pxat"].iter().all(|k| c.cmd(&["GET", k]).is_nil())
    });
    assert_eq!(c.cmd(&["GET", "setex"]), b("v"));
    assert_eq!(c.cmd(&["GET", "long"]), b("v"));
    // A plain SET clears the TTL: the value outlives the old one.
    ok(&c.cmd(&["SET", "cleared", "v", "PX", "50"]));
    ok(&c.cmd(&["SET", "cleared", "v2"]));
    // 1.5 s: KEEPTTL must find the TTL still there on a slow machine.
    ok(&c.cmd(&["SET", "kept", "v", "PX", "1500"]));
    ok(&c.cmd(&["SET", "kept", "v2", "KEEPTTL"]));
    common::eventually("KEEPTTL key expires", || c.cmd(&["GET", "kept"]).is_nil());
    assert_eq!(c.cmd(&["GET", "cleared"]), b("v2"));
    err_eq(&c.cmd(&["SETEX", "k", "0", "v"]), "ERR invalid expire time in 'setex' command");
    err_eq(&c.cmd(&["PSETEX", "k", "-1", "v"]), "ERR invalid expire time in 'psetex' command");
    err_eq(&c.cmd(&["SETEX", "k", "x", "v"]), "ERR value is not an integer or out of range");
}

/// Redis takes an empty key; dbkv's engine keeps keys of 1 to 65535
/// bytes and refuses the empty one with an error (a documented difference).
#[test]
fn empty_key() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let r = c.cmd(&["SET", "", "v"]);
    if common::is_dbkv() {
        err_starts_with(&r, "ERR key is empty");
        err_starts_with(&c.cmd(&["GET", ""]), "ERR key is empty");
    } else {
        ok(&r);
        assert_eq!(c.cmd(&["GET", ""]), b("v"));
    }
}

#[test]
fn setnx_getset_getdel_getex() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["SETNX", "k", "1"]), Value::Int(1));
    assert_eq!(c.cmd(&["SETNX", "k", "2"]), Value::Int(0));
    assert_eq!(c.cmd(&["GETSET", "k", "3"]), b("1"));
    assert_eq!(c.cmd(&["GETSET", "other", "x"]), Value::NilBulk);
    assert_eq!(c.cmd(&["GETDEL", "k"]), b("3"));
    assert_eq!(c.cmd(&["GETDEL", "k"]), Value::NilBulk);
    assert_eq!(c.cmd(&["GET", "k"]), Value::NilBulk);
    ok(&c.cmd(&["SET", "g", "v"]));
    assert_eq!(c.cmd(&["GETEX", "g"]), b("v"));
    assert_eq!(c.cmd(&["GETEX", "g", "PX", "50"]), b("v"));
    common::eventually("GETEX PX expires the key", || c.cmd(&["GET", "g"]).is_nil());
    ok(&c.cmd(&["SET", "g", "v", "PX", "1000"]));
    assert_eq!(c.cmd(&["GETEX", "g", "PERSIST"]), b("v"));
    assert_eq!(c.cmd(&["GETEX", "missing", "EX", "10"]), Value::NilBulk);
    err_eq(&c.cmd(&["GETEX", "g", "EX", "0"]), "ERR invalid expire time in 'getex' command");
    err_eq(&c.cmd(&["GETEX", "g", "PERSIST", "EX", "10"]), "ERR syntax error");
    err_eq(&c.cmd(&["GETEX", "g", "BOGUS"]), "ERR syntax error");
    // Still there: PERSIST removed the 1 s TTL (checked after it would have passed).
    std::thread::sleep(std::time::Duration::from_millis(1300));
    assert_eq!(c.cmd(&["GET", "g"]), b("v"));
}

#[test]
fn mget_mset_msetnx() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["MSET", "a", "1", "b", "2"]));
    assert_eq!(c.cmd(&["MGET", "a", "missing", "b"]), arr(vec![b("1"), Value::NilBulk, b("2")]));
    err_eq(&c.cmd(&["MSET", "a", "1", "b"]), "ERR wrong number of arguments for 'mset' command");
    assert_eq!(c.cmd(&["MSETNX", "c", "3", "a", "x"]), Value::Int(0));
    assert_eq!(c.cmd(&["MGET", "a", "c"]), arr(vec![b("1"), Value::NilBulk]));
    assert_eq!(c.cmd(&["MSETNX", "c", "3", "d", "4"]), Value::Int(1));
    assert_eq!(c.cmd(&["MGET", "c", "d"]), arr(vec![b("3"), b("4")]));
    // The last of repeated keys wins.
    ok(&c.cmd(&["MSET", "r", "1", "r", "2"]));
    assert_eq!(c.cmd(&["GET", "r"]), b("2"));
    err_eq(&c.cmd(&["MGET"]), "ERR wrong number of arguments for 'mget' command");
}

#[test]
fn counters() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["INCR", "n"]), Value::Int(1));
    assert_eq!(c.cmd(&["INCRBY", "n", "41"]), Value::Int(42));
    assert_eq!(c.cmd(&["DECR", "n"]), Value::Int(41));
    assert_eq!(c.cmd(&["DECRBY", "n", "-9"]), Value::Int(50));
    assert_eq!(c.cmd(&["DECR", "fresh"]), Value::Int(-1));
    // A counter reads, appends and measures as its decimal text.
    assert_eq!(c.cmd(&["GET", "n"]), b("50"));
    assert_eq!(c.cmd(&["STRLEN", "n"]), Value::Int(2));
    assert_eq!(c.cmd(&["APPEND", "n", "0"]), Value::Int(3));
    assert_eq!(c.cmd(&["INCR", "n"]), Value::Int(501));
    assert_eq!(c.cmd(&["GETRANGE", "n", "1", "-1"]), b("01"));
    ok(&c.cmd(&["SET", "s", "10"]));
    assert_eq!(c.cmd(&["INCR", "s"]), Value::Int(11));
    assert_eq!(c.cmd(&["GETSET", "s", "x"]), b("11"));
    for bad in ["x", " 1", "1 ", "01", "+1", "1.0", "", "99999999999999999999"] {
        ok(&c.cmd(&["SET", "bad", bad]));
        err_eq(&c.cmd(&["INCR", "bad"]), "ERR value is not an integer or out of range");
        assert_eq!(c.cmd(&["GET", "bad"]), b(bad), "a failed INCR leaves the value");
    }
    err_eq(&c.cmd(&["INCRBY", "n", "1.5"]), "ERR value is not an integer or out of range");
    ok(&c.cmd(&["SET", "max", "9223372036854775807"]));
    err_eq(&c.cmd(&["INCR", "max"]), "ERR increment or decrement would overflow");
    ok(&c.cmd(&["SET", "min", "-9223372036854775808"]));
    err_eq(&c.cmd(&["DECR", "min"]), "ERR increment or decrement would overflow");
    assert_eq!(c.cmd(&["DECRBY", "min", "-1"]), Value::Int(-9223372036854775807));
    assert_eq!(c.cmd(&["GET", "max"]), b("9223372036854775807"));
}

#[test]
fn incrbyfloat() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "f", "10.50"]));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "0.1"]), b("10.6"));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "-5"]), b("5.6"));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "g", "5.0e3"]), b("5000"));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "h", "3"]), b("3"));
    assert_eq!(c.cmd(&["INCR", "h"]), Value::Int(4));
    assert_eq!(c.cmd(&["GET", "f"]), b("5.6"));
    ok(&c.cmd(&["SET", "x", "abc"]));
    err_eq(&c.cmd(&["INCRBYFLOAT", "x", "1"]), "ERR value is not a valid float");
    err_eq(&c.cmd(&["INCRBYFLOAT", "f", "abc"]), "ERR value is not a valid float");
    err_eq(&c.cmd(&["INCRBYFLOAT", "f", "inf"]), "ERR increment would produce NaN or Infinity");
    assert_eq!(c.cmd(&["GET", "f"]), b("5.6"));
}

#[test]
fn append_strlen_ranges() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["APPEND", "k", "Hello"]), Value::Int(5));
    assert_eq!(c.cmd(&["APPEND", "k", " World"]), Value::Int(11));
    assert_eq!(c.cmd(&["GETRANGE", "k", "0", "4"]), b("Hello"));
    assert_eq!(c.cmd(&["GETRANGE", "k", "-5", "-1"]), b("World"));
    assert_eq!(c.cmd(&["GETRANGE", "k", "0", "-1"]), b("Hello World"));
    assert_eq!(c.cmd(&["GETRANGE", "k", "5", "2"]), b(""));
    assert_eq!(c.cmd(&["GETRANGE", "k", "100", "200"]), b(""));
    assert_eq!(c.cmd(&["GETRANGE", "k", "-100", "2"]), b("Hel"));
    assert_eq!(c.cmd(&["GETRANGE", "missing", "0", "-1"]), b(""));
    err_eq(&c.cmd(&["GETRANGE", "k", "a", "1"]), "ERR value is not an integer or out of range");
    assert_eq!(c.cmd(&["SETRANGE", "k", "6", "Redis"]), Value::Int(11));
    assert_eq!(c.cmd(&["GET", "k"]), b("Hello Redis"));
    // Past the end pads with zero bytes; on a missing key too.
    assert_eq!(c.cmd(&["SETRANGE", "pad", "3", "x"]), Value::Int(4));
    assert_eq!(bulk(&c.cmd(&["GET", "pad"])), b"\0\0\0x".to_vec());
    // An empty SETRANGE on a missing key creates nothing.
    assert_eq!(c.cmd(&["SETRANGE", "none", "5", ""]), Value::Int(0));
    assert_eq!(c.cmd(&["GET", "none"]), Value::NilBulk);
    err_eq(&c.cmd(&["SETRANGE", "k", "-1", "x"]), "ERR offset is out of range");
    err_starts_with(&c.cmd(&["SETRANGE", "k", "4294967296", "x"]), "ERR ");
    assert_eq!(c.cmd(&["GET", "k"]), b("Hello Redis"));
}

#[test]
fn pipelined_replies_in_order() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let n = 5000;
    let mut wire = Vec::new();
    for i in 0..n {
        wire.extend(Client::encode(&["INCR", "p"]));
        if i % 3 == 0 {
            wire.extend(Client::encode(&["GET", "p"]));
        }
    }
    c.send_raw(&wire);
    for i in 0..n {
        assert_eq!(c.read_value(), Value::Int(i + 1));
        if i % 3 == 0 {
            assert_eq!(c.read_value(), b(&(i + 1).to_string()));
        }
    }
    // Byte-at-a-time delivery parses the same.
    for byte in Client::encode(&["SET", "slow", "value"]) {
        c.send_raw(&[byte]);
    }
    ok(&c.read_value());
    assert_eq!(c.cmd(&["GET", "slow"]), b("value"));
}

#[test]
fn resp3_null_and_double_forms() {
    // HELLO is a connection command: only meaningful where it is implemented.
    let s = Server::start(&[]);
    let mut c = s.client();
    let hello = c.cmd(&["HELLO", "3"]);
    assert!(matches!(hello, Value::Map(_)), "HELLO 3 answers a map: {hello:?}");
    assert_eq!(c.cmd(&["GET", "missing"]), Value::Null);
    assert_eq!(c.cmd(&["MGET", "missing"]), arr(vec![Value::Null]));
    // INCRBYFLOAT replies a bulk string even in RESP3 (Redis does).
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "1.5"]), b("1.5"));
    assert_eq!(c.cmd(&["SET", "k", "v", "NX", "GET"]), Value::Null);
}

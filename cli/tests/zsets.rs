//! Sorted-set commands over a real socket, checked against Redis 7.0's
//! replies and error texts (run with DBKV_TEST_TARGET=redis to prove
//! every expectation against redis-server).

mod common;

use common::*;

/// A flat array of bulk strings.
fn bulks(items: &[&str]) -> Value {
    arr(items.iter().map(|s| b(s)).collect())
}

fn zadd(c: &mut Client, key: &str, pairs: &[(&str, &str)]) -> i64 {
    let mut args = vec!["ZADD", key];
    for (s, m) in pairs {
        args.push(s);
        args.push(m);
    }
    int(&c.cmd(&args))
}

/// ZRANGE key 0 -1 WITHSCORES as (member, score text) pairs (RESP2).
fn all(c: &mut Client, key: &str) -> Vec<(String, String)> {
    let r = c.cmd(&["ZRANGE", key, "0", "-1", "WITHSCORES"]);
    r.items().chunks(2).map(|p| (text(&p[0]), text(&p[1]))).collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(m, s)| (m.to_string(), s.to_string())).collect()
}

#[test]
fn zadd_options() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(zadd(&mut c, "z", &[("1", "a"), ("2", "b")]), 2);
    // A member named twice: added once, last score wins; CH counts each change, as Redis does.
    assert_eq!(zadd(&mut c, "y", &[("1", "a"), ("2", "a"), ("3", "a")]), 1);
    assert_eq!(c.cmd(&["ZADD", "y", "CH", "1", "a", "2", "a", "3", "b"]), Value::Int(3));
    assert_eq!(all(&mut c, "y"), pairs(&[("a", "2"), ("b", "3")]));
    assert_eq!(c.cmd(&["ZADD", "z", "NX", "10", "a", "10", "c"]), Value::Int(1));
    assert_eq!(c.cmd(&["ZADD", "z", "XX", "CH", "10", "a", "10", "d"]), Value::Int(1));
    assert_eq!(all(&mut c, "z"), pairs(&[("b", "2"), ("a", "10"), ("c", "10")]));
    // GT/LT update only upward/downward but still add new members.
    assert_eq!(c.cmd(&["ZADD", "z", "GT", "CH", "5", "a", "20", "b", "1", "e"]), Value::Int(2));
    assert_eq!(c.cmd(&["ZADD", "z", "LT", "CH", "5", "a", "25", "b"]), Value::Int(1));
    assert_eq!(c.cmd(&["ZADD", "z", "GT", "XX", "CH", "100", "a", "100", "zz"]), Value::Int(1));
    assert_eq!(all(&mut c, "z"), pairs(&[("e", "1"), ("c", "10"), ("b", "20"), ("a", "100")]));
    // Same score: not counted by CH.
    assert_eq!(c.cmd(&["ZADD", "z", "CH", "100", "a"]), Value::Int(0));
    // INCR: the new score, or nil when NX/XX/GT/LT stopped it.
    assert_eq!(c.cmd(&["ZADD", "z", "INCR", "5", "a"]), b("105"));
    assert_eq!(c.cmd(&["ZADD", "z", "INCR", "GT", "-1", "a"]), Value::NilBulk);
    assert_eq!(c.cmd(&["ZADD", "z", "INCR", "LT", "-1", "a"]), b("104"));
    assert_eq!(c.cmd(&["ZADD", "z", "INCR", "NX", "1", "a"]), Value::NilBulk);
    assert_eq!(c.cmd(&["ZADD", "z", "INCR", "XX", "1", "nosuch"]), Value::NilBulk);
    assert_eq!(c.cmd(&["ZADD", "z", "INCR", "0", "a"]), b("104"));
    assert_eq!(c.cmd(&["ZADD", "z", "INCR", "GT", "0", "a"]), Value::NilBulk);
    assert_eq!(c.cmd(&["ZADD", "z", "INCR", "2", "new"]), b("2"));
    // XX on a missing key creates nothing.
    assert_eq!(c.cmd(&["ZADD", "nokey", "XX", "1", "a"]), Value::Int(0));
    assert_eq!(c.cmd(&["ZADD", "nokey", "XX", "INCR", "1", "a"]), Value::NilBulk);
    assert_eq!(c.cmd(&["EXISTS", "nokey"]), Value::Int(0));
    assert_eq!(c.cmd(&["ZADD", "nokey", "gt", "1", "a"]), Value::Int(1));
}

#[test]
fn zadd_errors_change_nothing() {
    let s = Server::start(&[]);
    let mut c = s.client();
    zadd(&mut c, "z", &[("1", "a")]);
    err_eq(&c.cmd(&["ZADD", "z", "1"]), "ERR wrong number of arguments for 'zadd' command");
    err_eq(&c.cmd(&["ZADD", "z", "1", "a", "2"]), "ERR syntax error");
    err_eq(&c.cmd(&["ZADD", "z", "NX", "1"]), "ERR syntax error");
    err_eq(&c.cmd(&["ZADD", "z", "XX", "NX", "1", "a"]), "ERR XX and NX options at the same time are not compatible");
    err_eq(&c.cmd(&["ZADD", "z", "GT", "LT", "1", "a"]), "ERR GT, LT, and/or NX options at the same time are not compatible");
    err_eq(&c.cmd(&["ZADD", "z", "GT", "NX", "1", "a"]), "ERR GT, LT, and/or NX options at the same time are not compatible");
    err_eq(&c.cmd(&["ZADD", "z", "INCR", "1", "a", "2", "b"]), "ERR INCR option supports a single increment-element pair");
    // A bad score anywhere refuses the whole command.
    for bad in ["nan", "abc", " 1", "1 ", "1e400", "-1e400", "1e-400", "", "0x"] {
        err_eq(&c.cmd(&["ZADD", "z", "5", "b", bad, "c"]), "ERR value is not a valid float");
    }
    err_eq(&c.cmd(&["ZINCRBY", "z", "x", "a"]), "ERR value is not a valid float");
    zadd(&mut c, "i", &[("inf", "a")]);
    err_eq(&c.cmd(&["ZINCRBY", "i", "-inf", "a"]), "ERR resulting score is not a number (NaN)");
    err_eq(&c.cmd(&["ZADD", "i", "INCR", "-inf", "a"]), "ERR resulting score is not a number (NaN)");
    assert_eq!(all(&mut c, "i"), pairs(&[("a", "inf")]));
    assert_eq!(all(&mut c, "z"), pairs(&[("a", "1")]));
}

#[test]
fn scores_read_and_print_as_redis() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let cases = [
        ("0.1", "0.10000000000000001"),
        ("1", "1"),
        ("-2.50", "-2.5"),
        ("1e20", "1e+20"),
        ("123456789012345678", "1.2345678901234568e+17"),
        ("1e16", "10000000000000000"),
        ("0.00001", "1.0000000000000001e-05"),
        ("0.0001", "0.0001"),
        ("1e-320", "9.9998886718268301e-321"),
        ("inf", "inf"),
        ("+inf", "inf"),
        ("-INF", "-inf"),
        ("Infinity", "inf"),
        ("0x10", "16"),
        (".5", "0.5"),
        ("5.", "5"),
        ("1.5E1", "15"),
        ("3.3333333333333335", "3.3333333333333335"),
    ];
    for (i, (input, shown)) in cases.iter().enumerate() {
        let m = format!("m{i}");
        zadd(&mut c, "z", &[(input, &m)]);
        assert_eq!(c.cmd(&["ZSCORE", "z", &m]), b(shown), "ZADD {input}");
    }
    // -0 is stored as 0, as in Redis's compact encoding.
    zadd(&mut c, "neg", &[("-0", "a")]);
    assert_eq!(c.cmd(&["ZSCORE", "neg", "a"]), b("0"));
    assert_eq!(c.cmd(&["ZINCRBY", "neg", "0.1", "a"]), b("0.10000000000000001"));
    assert_eq!(c.cmd(&["ZINCRBY", "neg", "0.2", "a"]), b("0.30000000000000004"));
}

#[test]
fn resp3_doubles_and_pairs() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["HELLO", "3"]);
    zadd(&mut c, "z", &[("0.1", "a"), ("1", "b"), ("inf", "c")]);
    assert_eq!(c.cmd(&["ZSCORE", "z", "a"]), Value::Double(0.1));
    assert_eq!(c.cmd(&["ZSCORE", "z", "c"]), Value::Double(f64::INFINITY));
    assert_eq!(c.cmd(&["ZSCORE", "z", "nosuch"]), Value::Null);
    assert_eq!(c.cmd(&["ZMSCORE", "z", "b", "nosuch"]), arr(vec![Value::Double(1.0), Value::Null]));
    let pair = |m: &str, s: f64| arr(vec![b(m), Value::Double(s)]);
    assert_eq!(c.cmd(&["ZRANGE", "z", "0", "1", "WITHSCORES"]), arr(vec![pair("a", 0.1), pair("b", 1.0)]));
    assert_eq!(c.cmd(&["ZRANGE", "z", "0", "1"]), bulks(&["a", "b"]));
    assert_eq!(c.cmd(&["ZINCRBY", "z", "1", "b"]), Value::Double(2.0));
    assert_eq!(c.cmd(&["ZADD", "z", "NX", "INCR", "1", "b"]), Value::Null);
    // Without a count ZPOPMIN is one flat pair; with one, nested pairs.
    assert_eq!(c.cmd(&["ZPOPMIN", "z"]), arr(vec![b("a"), Value::Double(0.1)]));
    assert_eq!(c.cmd(&["ZPOPMAX", "z", "1"]), arr(vec![pair("c", f64::INFINITY)]));
    assert_eq!(c.cmd(&["ZPOPMIN", "nosuch"]), arr(vec![]));
    assert_eq!(c.cmd(&["ZPOPMIN", "nosuch", "2"]), arr(vec![]));
}

#[test]
fn members_scores_and_ranks() {
    let s = Server::start(&[]);
    let mut c = s.client();
    zadd(&mut c, "z", &[("1", "a"), ("2", "b"), ("2", "c"), ("3", "d")]);
    assert_eq!(c.cmd(&["ZCARD", "z"]), Value::Int(4));
    assert_eq!(c.cmd(&["ZCARD", "nosuch"]), Value::Int(0));
    assert_eq!(c.cmd(&["ZSCORE", "z", "b"]), b("2"));
    assert_eq!(c.cmd(&["ZSCORE", "z", "x"]), Value::NilBulk);
    assert_eq!(c.cmd(&["ZSCORE", "nosuch", "x"]), Value::NilBulk);
    assert_eq!(c.cmd(&["ZMSCORE", "z", "a", "x", "d"]), arr(vec![b("1"), Value::NilBulk, b("3")]));
    assert_eq!(c.cmd(&["ZMSCORE", "nosuch", "a"]), arr(vec![Value::NilBulk]));
    // Ties order by member bytes.
    for (m, r, rev) in [("a", 0, 3), ("b", 1, 2), ("c", 2, 1), ("d", 3, 0)] {
        assert_eq!(c.cmd(&["ZRANK", "z", m]), Value::Int(r));
        assert_eq!(c.cmd(&["ZREVRANK", "z", m]), Value::Int(rev));
    }
    assert_eq!(c.cmd(&["ZRANK", "z", "x"]), Value::NilBulk);
    assert_eq!(c.cmd(&["ZREVRANK", "nosuch", "x"]), Value::NilBulk);
    assert_eq!(c.cmd(&["ZREM", "z", "a", "x", "a"]), Value::Int(1));
    assert_eq!(c.cmd(&["ZREM", "nosuch", "a"]), Value::Int(0));
    // Removing the last member deletes the key.
    assert_eq!(c.cmd(&["ZREM", "z", "b", "c", "d"]), Value::Int(3));
    assert_eq!(c.cmd(&["EXISTS", "z"]), Value::Int(0));
    assert_eq!(c.cmd(&["TYPE", "z"]), Value::Simple("none".into()));
    err_eq(&c.cmd(&["ZSCORE", "z"]), "ERR wrong number of arguments for 'zscore' command");
    err_eq(&c.cmd(&["ZMSCORE", "z"]), "ERR wrong number of arguments for 'zmscore' command");
    err_eq(&c.cmd(&["ZREM", "z"]), "ERR wrong number of arguments for 'zrem' command");
}

/// WITHSCORE came in Redis 7.2; 7.0 (the reference here) has no such
/// option and calls it an arity error.
#[test]
fn zrank_withscore() {
    dbkv_only!("ZRANK WITHSCORE is Redis 7.2's; the reference redis-server is 7.0");
    let s = Server::start(&[]);
    let mut c = s.client();
    zadd(&mut c, "z", &[("1.5", "a"), ("2", "b")]);
    assert_eq!(c.cmd(&["ZRANK", "z", "b", "WITHSCORE"]), arr(vec![Value::Int(1), b("2")]));
    assert_eq!(c.cmd(&["ZREVRANK", "z", "a", "withscore"]), arr(vec![Value::Int(1), b("1.5")]));
    assert_eq!(c.cmd(&["ZRANK", "z", "x", "WITHSCORE"]), Value::NilArray);
    assert_eq!(c.cmd(&["ZRANK", "nosuch", "x", "WITHSCORE"]), Value::NilArray);
    err_eq(&c.cmd(&["ZRANK", "z", "a", "bogus"]), "ERR syntax error");
    err_eq(&c.cmd(&["ZRANK", "z", "a", "WITHSCORE", "x"]), "ERR wrong number of arguments for 'zrank' command");
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["ZRANK", "z", "a", "WITHSCORE"]), arr(vec![Value::Int(0), Value::Double(1.5)]));
}

#[test]
fn zrange_by_index() {
    let s = Server::start(&[]);
    let mut c = s.client();
    zadd(&mut c, "z", &[("1", "a"), ("2", "b"), ("3", "c"), ("4", "d"), ("5", "e")]);
    for (args, want) in [
        (&["0", "-1"][..], &["a", "b", "c", "d", "e"][..]),
        (&["-2", "-1"], &["d", "e"]),
        (&["-100", "100"], &["a", "b", "c", "d", "e"]),
        (&["3", "1"], &[]),
        (&["5", "9"], &[]),
        (&["0", "-1", "REV"], &["e", "d", "c", "b", "a"]),
        (&["1", "3", "rev"], &["d", "c", "b"]),
        (&["-1", "-3", "REV"], &[]),
        (&["1", "100", "REV"], &["d", "c", "b", "a"]),
        // LIMIT with the default count is accepted (and ignored) by index.
        (&["0", "1", "LIMIT", "3", "-1"], &["a", "b"]),
    ] {
        let mut cmd = vec!["ZRANGE", "z"];
        cmd.extend(args);
        assert_eq!(c.cmd(&cmd), bulks(want), "ZRANGE z {args:?}");
    }
    assert_eq!(c.cmd(&["ZRANGE", "z", "0", "1", "WITHSCORES"]), bulks(&["a", "1", "b", "2"]));
    assert_eq!(c.cmd(&["ZREVRANGE", "z", "0", "1", "WITHSCORES"]), bulks(&["e", "5", "d", "4"]));
    assert_eq!(c.cmd(&["ZREVRANGE", "z", "-1", "0"]), bulks(&[]));
    assert_eq!(c.cmd(&["ZRANGE", "nosuch", "0", "-1"]), bulks(&[]));
}

#[test]
fn zrange_by_score() {
    let s = Server::start(&[]);
    let mut c = s.client();
    zadd(&mut c, "z", &[("-inf", "n"), ("1", "a"), ("2", "b"), ("3", "c"), ("4", "d"), ("5", "e"), ("inf", "p")]);
    for (args, want) in [
        (&["(1", "(4", "BYSCORE"][..], &["b", "c"][..]),
        (&["(4", "(1", "BYSCORE", "REV"], &["c", "b"]),
        (&["-inf", "+inf", "BYSCORE"], &["n", "a", "b", "c", "d", "e", "p"]),
        (&["(-inf", "(inf", "BYSCORE"], &["a", "b", "c", "d", "e"]),
        (&["2", "2", "BYSCORE"], &["b"]),
        (&["(2", "2", "BYSCORE"], &[]),
        (&["5", "1", "BYSCORE"], &[]),
        (&["(", "2", "BYSCORE"], &["a", "b"]),
        (&[" 2", "3", "BYSCORE"], &["b", "c"]),
        (&["0x2", "3", "BYSCORE"], &["b", "c"]),
        (&["1e400", "inf", "BYSCORE"], &["p"]),
        (&["-inf", "+inf", "BYSCORE", "LIMIT", "2", "3"], &["b", "c", "d"]),
        (&["-inf", "+inf", "BYSCORE", "LIMIT", "5", "-1"], &["e", "p"]),
        (&["-inf", "+inf", "BYSCORE", "LIMIT", "-1", "2"], &[]),
        (&["-inf", "+inf", "BYSCORE", "LIMIT", "1", "0"], &[]),
        (&["-inf", "+inf", "BYSCORE", "LIMIT", "99", "1"], &[]),
        (&["+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "2"], &["e", "d"]),
        (&["5", "(1", "BYSCORE", "REV", "LIMIT", "3", "9"], &["b"]),
        // A later LIMIT replaces an earlier one.
        (&["-inf", "+inf", "BYSCORE", "LIMIT", "1", "2", "LIMIT", "0", "1"], &["n"]),
    ] {
        let mut cmd = vec!["ZRANGE", "z"];
        cmd.extend(args);
        assert_eq!(c.cmd(&cmd), bulks(want), "ZRANGE z {args:?}");
    }
    assert_eq!(c.cmd(&["ZRANGEBYSCORE", "z", "1", "5", "WITHSCORES", "LIMIT", "1", "2"]), bulks(&["b", "2", "c", "3"]));
    assert_eq!(c.cmd(&["ZREVRANGEBYSCORE", "z", "4", "(2"]), bulks(&["d", "c"]));
    assert_eq!(c.cmd(&["ZREVRANGEBYSCORE", "z", "+inf", "-inf", "WITHSCORES", "LIMIT", "0", "2"]), bulks(&["p", "inf", "e", "5"]));
    assert_eq!(c.cmd(&["ZRANGE", "z", "-inf", "(1", "BYSCORE", "WITHSCORES"]), bulks(&["n", "-inf"]));
}

#[test]
fn zrange_by_lex() {
    let s = Server::start(&[]);
    let mut c = s.client();
    zadd(&mut c, "l", &[("0", "a"), ("0", "b"), ("0", "c"), ("0", "d"), ("0", "e"), ("0", "ee")]);
    for (cmd, want) in [
        (&["ZRANGE", "l", "-", "+", "BYLEX"][..], &["a", "b", "c", "d", "e", "ee"][..]),
        (&["ZRANGE", "l", "[a", "(c", "BYLEX"], &["a", "b"]),
        (&["ZRANGE", "l", "(a", "[c", "BYLEX"], &["b", "c"]),
        (&["ZRANGE", "l", "[e", "+", "BYLEX"], &["e", "ee"]),
        (&["ZRANGE", "l", "(e", "+", "BYLEX"], &["ee"]),
        (&["ZRANGE", "l", "+", "-", "BYLEX"], &[]),
        (&["ZRANGE", "l", "(", "[b", "BYLEX"], &["a", "b"]),
        (&["ZRANGE", "l", "-", "+", "BYLEX", "LIMIT", "1", "2"], &["b", "c"]),
        (&["ZRANGE", "l", "+", "-", "BYLEX", "REV", "LIMIT", "1", "2"], &["e", "d"]),
        (&["ZRANGEBYLEX", "l", "-", "+", "LIMIT", "0", "2"], &["a", "b"]),
        (&["ZREVRANGEBYLEX", "l", "+", "-", "LIMIT", "0", "2"], &["ee", "e"]),
        (&["ZREVRANGEBYLEX", "l", "(d", "[a"], &["c", "b", "a"]),
    ] {
        assert_eq!(c.cmd(cmd), bulks(want), "{cmd:?}");
    }
    assert_eq!(c.cmd(&["ZLEXCOUNT", "l", "-", "+"]), Value::Int(6));
    assert_eq!(c.cmd(&["ZLEXCOUNT", "l", "[b", "(d"]), Value::Int(2));
    assert_eq!(c.cmd(&["ZLEXCOUNT", "nosuch", "-", "+"]), Value::Int(0));
    err_eq(&c.cmd(&["ZLEXCOUNT", "l", "x", "+"]), "ERR min or max not valid string range item");
    assert_eq!(c.cmd(&["ZREMRANGEBYLEX", "l", "(a", "[c"]), Value::Int(2));
    assert_eq!(c.cmd(&["ZRANGEBYLEX", "l", "-", "+"]), bulks(&["a", "d", "e", "ee"]));
}

#[test]
fn zrange_option_errors() {
    let s = Server::start(&[]);
    let mut c = s.client();
    zadd(&mut c, "z", &[("1", "a")]);
    let limit = "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX";
    let lexws = "ERR syntax error, WITHSCORES not supported in combination with BYLEX";
    for (cmd, e) in [
        (&["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"][..], limit),
        (&["ZRANGE", "z", "a", "c", "BYLEX", "WITHSCORES"], lexws),
        (&["ZRANGEBYLEX", "z", "-", "+", "WITHSCORES"], lexws),
        (&["ZRANGE", "z", "0", "-1", "REV", "REV"], "ERR syntax error"),
        (&["ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX"], "ERR syntax error"),
        (&["ZRANGEBYSCORE", "z", "0", "10", "REV"], "ERR syntax error"),
        (&["ZRANGEBYSCORE", "z", "0", "10", "BYSCORE"], "ERR syntax error"),
        (&["ZREVRANGE", "z", "0", "1", "REV"], "ERR syntax error"),
        (&["ZRANGE", "z", "0", "1", "BOGUS"], "ERR syntax error"),
        (&["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1"], "ERR syntax error"),
        (&["ZRANGE", "z", "0", "1", "LIMIT", "x", "1"], "ERR value is not an integer or out of range"),
        (&["ZRANGE", "z", "x", "1"], "ERR value is not an integer or out of range"),
        (&["ZRANGE", "z", "1", "x", "BYSCORE"], "ERR min or max is not a float"),
        (&["ZRANGE", "z", "2", "3 ", "BYSCORE"], "ERR min or max is not a float"),
        (&["ZRANGE", "z", "nan", "1", "BYSCORE"], "ERR min or max is not a float"),
        (&["ZRANGE", "z", "a", "b", "BYLEX"], "ERR min or max not valid string range item"),
        (&["ZRANGE", "z", "+x", "-", "BYLEX"], "ERR min or max not valid string range item"),
        (&["ZRANGE", "z", "0"], "ERR wrong number of arguments for 'zrange' command"),
        (&["ZCOUNT", "z", "x", "3"], "ERR min or max is not a float"),
        (&["ZREMRANGEBYSCORE", "z", "x", "1"], "ERR min or max is not a float"),
        (&["ZREMRANGEBYRANK", "z", "x", "1"], "ERR value is not an integer or out of range"),
        (&["ZREMRANGEBYLEX", "z", "a", "b"], "ERR min or max not valid string range item"),
    ] {
        err_eq(&c.cmd(cmd), e);
    }
}

#[test]
fn counts_and_range_removals() {
    let s = Server::start(&[]);
    let mut c = s.client();
    zadd(&mut c, "z", &[("1", "a"), ("2", "b"), ("3", "c"), ("4", "d"), ("5", "e"), ("6", "f"), ("7", "g")]);
    assert_eq!(c.cmd(&["ZCOUNT", "z", "(1", "3"]), Value::Int(2));
    assert_eq!(c.cmd(&["ZCOUNT", "z", "-inf", "+inf"]), Value::Int(7));
    assert_eq!(c.cmd(&["ZCOUNT", "z", "(5", "(5"]), Value::Int(0));
    assert_eq!(c.cmd(&["ZCOUNT", "z", "5", "1"]), Value::Int(0));
    assert_eq!(c.cmd(&["ZCOUNT", "nosuch", "1", "2"]), Value::Int(0));
    assert_eq!(c.cmd(&["ZREMRANGEBYRANK", "z", "-1", "-1"]), Value::Int(1));
    assert_eq!(c.cmd(&["ZREMRANGEBYRANK", "z", "10", "20"]), Value::Int(0));
    assert_eq!(c.cmd(&["ZREMRANGEBYRANK", "z", "2", "1"]), Value::Int(0));
    assert_eq!(c.cmd(&["ZREMRANGEBYSCORE", "z", "(4", "inf"]), Value::Int(2));
    assert_eq!(c.cmd(&["ZREMRANGEBYSCORE", "z", "-inf", "(1"]), Value::Int(0));
    assert_eq!(c.cmd(&["ZRANGE", "z", "0", "-1"]), bulks(&["a", "b", "c", "d"]));
    assert_eq!(c.cmd(&["ZREMRANGEBYSCORE", "z", "2", "3"]), Value::Int(2));
    assert_eq!(c.cmd(&["ZREMRANGEBYRANK", "z", "0", "-1"]), Value::Int(2));
    assert_eq!(c.cmd(&["EXISTS", "z"]), Value::Int(0));
    assert_eq!(c.cmd(&["ZREMRANGEBYRANK", "nosuch", "0", "1"]), Value::Int(0));
    assert_eq!(c.cmd(&["ZREMRANGEBYSCORE", "nosuch", "0", "1"]), Value::Int(0));
    assert_eq!(c.cmd(&["ZREMRANGEBYLEX", "nosuch", "-", "+"]), Value::Int(0));
}

#[test]
fn zpopmin_zpopmax() {
    let s = Server::start(&[]);
    let mut c = s.client();
    zadd(&mut c, "z", &[("1", "a"), ("2", "b"), ("3", "c"), ("4", "d"), ("5", "e")]);
    assert_eq!(c.cmd(&["ZPOPMIN", "z"]), bulks(&["a", "1"]));
    assert_eq!(c.cmd(&["ZPOPMAX", "z"]), bulks(&["e", "5"]));
    assert_eq!(c.cmd(&["ZPOPMIN", "z", "2"]), bulks(&["b", "2", "c", "3"]));
    assert_eq!(c.cmd(&["ZPOPMAX", "z", "0"]), bulks(&[]));
    assert_eq!(c.cmd(&["ZPOPMAX", "z", "10"]), bulks(&["d", "4"]));
    assert_eq!(c.cmd(&["EXISTS", "z"]), Value::Int(0));
    assert_eq!(c.cmd(&["ZPOPMIN", "z"]), bulks(&[]));
    zadd(&mut c, "z", &[("1", "a"), ("2", "b"), ("3", "c")]);
    assert_eq!(c.cmd(&["ZPOPMAX", "z", "2"]), bulks(&["c", "3", "b", "2"]));
    err_eq(&c.cmd(&["ZPOPMIN", "z", "-1"]), "ERR value is out of range, must be positive");
    err_eq(&c.cmd(&["ZPOPMIN", "z", "x"]), "ERR value is out of range, must be positive");
    err_eq(&c.cmd(&["ZPOPMIN", "z", "1", "2"]), "ERR syntax error");
    assert_eq!(c.cmd(&["ZCARD", "z"]), Value::Int(1));
}

#[test]
fn wrong_type_both_ways() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "s", "v"]));
    zadd(&mut c, "z", &[("1", "a")]);
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    for cmd in [
        &["ZADD", "s", "1", "a"][..],
        &["ZADD", "s", "XX", "1", "a"],
        &["ZINCRBY", "s", "1", "a"],
        &["ZREM", "s", "a"],
        &["ZCARD", "s"],
        &["ZSCORE", "s", "a"],
        &["ZMSCORE", "s", "a"],
        &["ZRANK", "s", "a"],
        &["ZREVRANK", "s", "a"],
        &["ZRANGE", "s", "0", "-1"],
        &["ZRANGEBYSCORE", "s", "0", "1"],
        &["ZRANGEBYLEX", "s", "-", "+"],
        &["ZCOUNT", "s", "0", "1"],
        &["ZLEXCOUNT", "s", "-", "+"],
        &["ZPOPMIN", "s"],
        &["ZPOPMAX", "s", "0"],
        &["ZREMRANGEBYRANK", "s", "0", "1"],
        &["ZREMRANGEBYSCORE", "s", "0", "1"],
        &["ZREMRANGEBYLEX", "s", "-", "+"],
        &["GET", "z"],
        &["APPEND", "z", "x"],
        &["INCR", "z"],
        &["STRLEN", "z"],
        &["GETRANGE", "z", "0", "1"],
    ] {
        err_eq(&c.cmd(cmd), wrongtype);
    }
    // Argument errors come before the type check.
    err_eq(&c.cmd(&["ZRANGE", "s", "x", "1"]), "ERR value is not an integer or out of range");
    assert_eq!(c.cmd(&["GET", "s"]), b("v"));
    assert_eq!(all(&mut c, "z"), pairs(&[("a", "1")]));
}

#[test]
fn transactions_and_watch() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["MULTI"]));
    for cmd in [&["ZADD", "z", "1", "a", "2", "b"][..], &["ZINCRBY", "z", "5", "a"], &["ZRANGE", "z", "0", "-1", "WITHSCORES"], &["ZPOPMIN", "z"]] {
        assert_eq!(c.cmd(cmd), Value::Simple("QUEUED".into()));
    }
    assert_eq!(c.cmd(&["EXEC"]), arr(vec![Value::Int(2), b("6"), bulks(&["b", "2", "a", "6"]), bulks(&["b", "2"])]));
    // A ZADD by another client aborts a transaction watching the key.
    let mut other = s.client();
    ok(&c.cmd(&["WATCH", "z"]));
    zadd(&mut other, "z", &[("9", "x")]);
    ok(&c.cmd(&["MULTI"]));
    c.cmd(&["ZREM", "z", "a"]);
    assert!(c.cmd(&["EXEC"]).is_nil());
    assert_eq!(c.cmd(&["ZCARD", "z"]), Value::Int(2));
    // COMMAND knows the commands and their keys.
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "ZRANGE", "k", "0", "-1"]), bulks(&["k"]));
    let info = c.cmd(&["COMMAND", "INFO", "zadd"]);
    assert_eq!(info.items()[0].items()[1], Value::Int(-4));
}

/// Ranges deep in a large set agree with the order the test computes.
#[test]
fn large_set_ranges() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let n = 20_000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut args = vec!["ZADD".to_string(), "big".into()];
        for i in chunk {
            args.push((i / 2).to_string());
            args.push(format!("m{i:05}"));
        }
        c.cmd(&args);
    }
    assert_eq!(c.cmd(&["ZCARD", "big"]), Value::Int(n));
    assert_eq!(c.cmd(&["ZRANGE", "big", "15000", "15001"]), bulks(&["m15000", "m15001"]));
    assert_eq!(c.cmd(&["ZREVRANGE", "big", "0", "0"]), bulks(&["m19999"]));
    assert_eq!(c.cmd(&["ZRANGE", "big", "(5000", "+inf", "BYSCORE", "LIMIT", "9000", "2"]), bulks(&["m19002", "m19003"]));
    assert_eq!(c.cmd(&["ZRANGE", "big", "5000", "-inf", "BYSCORE", "REV", "LIMIT", "1", "1"]), bulks(&["m10000"]));
    assert_eq!(c.cmd(&["ZCOUNT", "big", "100", "(200"]), Value::Int(200));
    assert_eq!(c.cmd(&["ZRANK", "big", "m12345"]), Value::Int(12345));
    assert_eq!(c.cmd(&["ZREMRANGEBYSCORE", "big", "0", "(5000"]), Value::Int(10000));
    assert_eq!(c.cmd(&["ZRANK", "big", "m12345"]), Value::Int(2345));
}

#[test]
fn rename_copy_expire_and_keyspace_cover_sorted_sets() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["FLUSHALL"]);
    zadd(&mut c, "a", &[("1", "x"), ("2", "y")]);
    assert_eq!(c.cmd(&["EXPIRE", "a", "100"]), Value::Int(1));
    ok(&c.cmd(&["RENAME", "a", "b"]));
    assert_eq!(all(&mut c, "b"), pairs(&[("x", "1"), ("y", "2")]));
    assert!(int(&c.cmd(&["TTL", "b"])) > 0);
    assert_eq!(c.cmd(&["COPY", "b", "c"]), Value::Int(1));
    zadd(&mut c, "c", &[("3", "z")]);
    // The copy is independent of the original.
    assert_eq!(c.cmd(&["ZCARD", "b"]), Value::Int(2));
    assert_eq!(c.cmd(&["ZCARD", "c"]), Value::Int(3));
    c.cmd(&["RPUSH", "l", "1"]);
    ok(&c.cmd(&["SET", "s", "v"]));
    // INFO keyspace counts every kind, and the expiring ones.
    let info = text(&c.cmd(&["INFO", "keyspace"]));
    assert!(info.contains("db0:keys=4,expires=2,"), "{info}");
    assert_eq!(c.cmd(&["DEL", "b", "c", "l", "s"]), Value::Int(4));
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(0));
}

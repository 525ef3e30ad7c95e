//! What hostile or careless clients cannot do to the server: malformed
//! RESP, oversized bulks, random bytes, stalled half commands, thousands
//! of idle connections, too many clients, slow readers, huge queries.
//! Each ends with another client still served and stored data intact.
//!
//! `DBKV_SOAK=1` runs more fuzz cases and 10,000 idle connections.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Sends `bytes` on a fresh connection; expects exactly this error reply,
/// then the connection closed.
#[track_caller]
fn protocol_error(s: &Server, bytes: &[u8], msg: &str) {
    let mut c = s.client();
    let _ = c.try_send_raw(bytes);
    err_eq(&c.read_value(), msg);
    c.assert_closed();
}

#[test]
fn malformed_resp_gets_an_error_then_the_connection_closes() {
    let s = Server::start(&[]);
    // A client that stays connected through all of it.
    let mut bystander = s.client();
    ok(&bystander.cmd(&["SET", "keep", "intact"]));
    protocol_error(&s, b"*x\r\n", "ERR Protocol error: invalid multibulk length");
    protocol_error(&s, b"*99999999999\r\n", "ERR Protocol error: invalid multibulk length");
    protocol_error(&s, b"*1\r\n+x\r\n", "ERR Protocol error: expected '$', got '+'");
    protocol_error(&s, b"*2\r\n$3\r\nGET\r\n:1\r\n", "ERR Protocol error: expected '$', got ':'");
    protocol_error(&s, b"*1\r\n$-1\r\n", "ERR Protocol error: invalid bulk length");
    protocol_error(&s, b"*1\r\n$abc\r\n", "ERR Protocol error: invalid bulk length");
    protocol_error(&s, b"*1\r\n$99999999999999999999\r\n", "ERR Protocol error: invalid bulk length");
    protocol_error(&s, &vec![b'x'; 70_000], "ERR Protocol error: too big inline request");
    let mut long_count = b"*".to_vec();
    long_count.extend(vec![b'1'; 70_000]);
    protocol_error(&s, &long_count, "ERR Protocol error: too big mbulk count string");
    let mut long_bulk = b"*1\r\n$".to_vec();
    long_bulk.extend(vec![b'1'; 70_000]);
    protocol_error(&s, &long_bulk, "ERR Protocol error: too big bulk count string");
    // Commands before the bad bytes run and are answered first.
    let mut c = s.client();
    let mut wire = Client::encode(&["SET", "before", "1"]);
    wire.extend(Client::encode(&["INCR", "before"]));
    wire.extend(b"*1\r\n+bad\r\n");
    wire.extend(Client::encode(&["SET", "after", "1"]));
    c.send_raw(&wire);
    ok(&c.read_value());
    assert_eq!(c.read_value(), Value::Int(2));
    err_eq(&c.read_value(), "ERR Protocol error: expected '$', got '+'");
    c.assert_closed();
    assert_eq!(bystander.cmd(&["MGET", "before", "after", "keep"]), arr(vec![b("2"), Value::NilBulk, b("intact")]));
    // Empty multibulks and empty lines are no commands at all.
    bystander.send_raw(b"*0\r\n*-1\r\n\r\n");
    assert_eq!(bystander.cmd(&["GET", "keep"]), b("intact"));
    assert_serving(&s);
}

#[test]
fn dbkv_specific_protocol_limits() {
    dbkv_only!("dbkv's own parser limits (Redis allows 2^31 arguments and skips the CRLF after a bulk)");
    let s = Server::start(&[]);
    // More than 1,048,576 arguments in one command.
    protocol_error(&s, b"*2000000\r\n", "ERR Protocol error: invalid multibulk length");
    protocol_error(&s, b"*1\r\n$1\r\naXY", "ERR Protocol error: bulk string is not terminated by CRLF");
    assert_serving(&s);
}

#[test]
fn bulk_longer_than_max_value_bytes_is_refused() {
    let Some(s) = Server::try_start(&["--max-value-bytes", "1048576"]) else { return };
    let mut c = s.client();
    // Exactly the limit is fine.
    let value = vec![b'v'; 1 << 20];
    ok(&c.cmd(&[b"SET".as_ref(), b"max", &value]));
    assert_eq!(bulk(&c.cmd(&["GET", "max"])).len(), 1 << 20);
    // One byte more is refused from its header, before any data is sent.
    protocol_error(&s, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n", "ERR Protocol error: invalid bulk length");
    assert_eq!(c.cmd(&["GET", "k"]), Value::NilBulk);
    assert_serving(&s);
}

#[test]
fn replies_are_delivered_when_the_client_half_closes() {
    // `printf 'SET k v\r\nGET k\r\n' | nc -N host port` sends its commands,
    // then FIN: Redis still answers everything it read before the EOF.
    let s = Server::start(&[]);
    for round in 0..20 {
        let mut c = s.client();
        let mut wire = Client::encode(&["INCR", "n"]);
        wire.extend(Client::encode(&["GET", "n"]));
        c.send_raw(&wire);
        c.shutdown_write();
        assert_eq!(c.read_value(), Value::Int(round + 1), "round {round}");
        assert_eq!(c.read_value(), b(&(round + 1).to_string()));
        c.assert_closed();
    }
}

// ---- random bytes --------------------------------------------------------

const TOKENS: &[&[u8]] = &[
    b"*", b"$", b"\r\n", b"\n", b"\r", b"0", b"1", b"2", b"3", b"-1", b"10", b"65536", b"99999999999", b" ", b"\"", b"'", b"\\", b"\\x4", b"\x00", b"\xff", b"+",
    b":", b"GET", b"SET", b"INCR", b"MGET", b"APPEND", b"PING", b"ECHO", b"MULTI", b"EXEC", b"DISCARD", b"WATCH", b"SUBSCRIBE", b"UNSUBSCRIBE", b"PUBLISH", b"HELLO",
    b"k", b"fz", b"EX", b"NX",
];

/// A few whole commands (the fuzz mutates them).
fn valid_pipeline(picks: &[u8]) -> Vec<u8> {
    let cmds: [&[&str]; 8] = [
        &["SET", "fz", "value"],
        &["GET", "fz"],
        &["INCR", "fz:n"],
        &["MGET", "fz", "fz:n", "x"],
        &["MULTI"],
        &["EXEC"],
        &["SUBSCRIBE", "fz:ch"],
        &["HELLO", "3"],
    ];
    picks.iter().flat_map(|&p| Client::encode(cmds[p as usize % cmds.len()])).collect()
}

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|ts| ts.concat()),
        (prop::collection::vec(any::<u8>(), 1..6), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4), any::<prop::sample::Index>()).prop_map(|(picks, flips, cut)| {
            let mut w = valid_pipeline(&picks);
            for (at, byte) in flips {
                let i = at.index(w.len());
                w[i] = byte;
            }
            let keep = cut.index(w.len() + 1);
            w.truncate(keep.max(1));
            w
        }),
    ]
}

/// Sends the bytes, half-closes, reads everything until the server closes.
/// What came back must be well-formed RESP (cut short at most at the end).
fn throw(s: &Server, bytes: &[u8]) -> Result<(), String> {
    let mut sock = TcpStream::connect(s.addr()).map_err(|e| format!("connect: {e}"))?;
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    let _ = std::io::Write::write_all(&mut sock, bytes);
    let _ = sock.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if is_reset(&e) => break,
            Err(e) => return Err(format!("the server neither answered nor closed: {e}")),
        }
    }
    match parse_all(&out) {
        Ok(_) | Err(ReadError::Truncated) => Ok(()),
        Err(e) => Err(format!("malformed reply bytes {:?}: {e:?}", String::from_utf8_lossy(&out))),
    }
}

#[test]
fn random_bytes_never_hurt_the_server() {
    let s = Server::start(&[]);
    let observer = std::cell::RefCell::new(s.client());
    ok(&observer.borrow_mut().cmd(&["SET", "sentinel:8c1f", "intact"]));
    let cases = if common::soak() { 20_000 } else { 300 };
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    // A fixed seed in CI (reproducible); a fresh one per soak run.
    let mut runner = if common::soak() { TestRunner::new(config) } else { TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha)) };
    let result = runner.run(&garbage(), |bytes| {
        throw(&s, &bytes).map_err(TestCaseError::fail)?;
        // The server lives and the data is intact, for a client that was
        // connected all along.
        let v = observer.borrow_mut().try_cmd(&["GET", "sentinel:8c1f"]).map_err(|e| TestCaseError::fail(format!("server gone after {bytes:?}: {e:?}")))?;
        prop_assert_eq!(v, b("intact"));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_serving(&s);
}

// ---- stalls, idle crowds, limits -----------------------------------------

#[test]
fn a_stalled_half_command_blocks_nobody() {
    let s = Server::start(&[]);
    let mut staller = s.client();
    staller.send_raw(b"*3\r\n$3\r\nSET\r\n$5\r\nstall\r\n$10\r\nabc");
    let mut inline_staller = s.client();
    inline_staller.send_raw(b"SET inl");
    // Others are served meanwhile, many times over.
    let mut other = s.client();
    for i in 0..200 {
        ok(&other.cmd(&["SET", "busy", &i.to_string()]));
        assert_eq!(other.cmd(&["GET", "busy"]), b(&i.to_string()));
    }
    assert_serving(&s);
    assert_eq!(other.cmd(&["GET", "stall"]), Value::NilBulk);
    // The rest arrives: the command completes as if sent at once.
    staller.send_raw(b"defghij\r\n");
    ok(&staller.read_value());
    inline_staller.send_raw(b"ine v\r\n");
    ok(&inline_staller.read_value());
    assert_eq!(other.cmd(&["MGET", "stall", "inline"]), arr(vec![b("abcdefghij"), b("v")]));
}

#[test]
fn thousands_of_idle_connections() {
    let n: usize = if common::soak() { 10_000 } else { 2_000 };
    let limit = raise_nofile(n as u64 + 512);
    assert!(limit >= n as u64 + 100, "open-file limit {limit} is too low for {n} connections");
    // The default --maxclients (10,000, as Redis) leaves no room beside 10,000 idle ones.
    let Some(s) = Server::try_start(if n > 5_000 { &["--maxclients", "10500"] } else { &[] }) else { return };
    let mut conns = Vec::with_capacity(n);
    // In batches: each connection proves it is being served before the next batch.
    for batch in 0..n.div_ceil(200) {
        let start = conns.len();
        for _ in 0..200.min(n - start) {
            conns.push(s.client());
        }
        for (i, c) in conns[start..].iter_mut().enumerate() {
            c.send(&["SET", &format!("idle:{}", start + i), "x"]);
        }
        for c in &mut conns[start..] {
            ok(&c.read_value());
        }
        let _ = batch;
    }
    // With all of them open, a new client is served at once.
    assert_serving(&s);
    let mut c = s.client();
    assert_eq!(c.cmd(&["GET", &format!("idle:{}", n - 1)]), b("x"));
    // And every idle one still works.
    for (i, c) in conns.iter_mut().enumerate() {
        c.send(&["GET", &format!("idle:{i}")]);
    }
    for c in &mut conns {
        assert_eq!(c.read_value(), b("x"));
    }
}

#[test]
fn maxclients_refuses_the_next_connection() {
    let Some(s) = Server::try_start(&["--maxclients", "4"]) else { return };
    // The harness's readiness probe may not be gone yet: retry until four fit.
    let mut clients = Vec::new();
    while clients.len() < 4 {
        let mut c = s.client();
        c.send(&["SET", "k", "v"]);
        match c.read_value() {
            Value::Simple(_) => clients.push(c),
            Value::Error(e) if e == "ERR max number of clients reached" => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("{other:?}"),
        }
    }
    let mut fifth = s.client();
    err_eq(&fifth.read_value(), "ERR max number of clients reached");
    fifth.assert_closed();
    // The four are unaffected.
    for c in &mut clients {
        assert_eq!(c.cmd(&["GET", "k"]), b("v"));
    }
    // A slot that frees up is taken again.
    drop(clients.pop());
    common::eventually("a freed slot admits a new client", || {
        let mut c = s.client();
        c.send(&["GET", "k"]);
        c.try_read_value().is_ok_and(|v| v == b("v"))
    });
}

#[test]
fn a_slow_reader_is_dropped_past_the_output_limit() {
    let Some(s) = Server::try_start(&["--client-output-buffer-limit", "1048576"]) else { return };
    let mut c = s.client();
    let value = vec![b'x'; 256 * 1024];
    ok(&c.cmd(&[b"SET".as_ref(), b"big", &value]));
    // 400 GETs of 256 KiB (100 MiB of replies), never read.
    let n = 400;
    let mut slow = s.client();
    let wire: Vec<u8> = (0..n).flat_map(|_| Client::encode(&["GET", "big"])).collect();
    let _ = slow.try_send_raw(&wire);
    // Others are served while it sits there.
    for _ in 0..20 {
        assert_eq!(bulk(&c.cmd(&["GET", "big"])).len(), value.len());
    }
    assert_serving(&s);
    // Reading now finds the connection cut long before all replies came.
    let mut got = 0usize;
    loop {
        match slow.try_read_value() {
            Ok(_) => got += 1,
            Err(ReadError::Closed | ReadError::Truncated) => break,
            Err(ReadError::Io(e)) if is_reset(&e) => break,
            Err(e) => panic!("expected the slow client to be dropped: {e:?}"),
        }
    }
    assert!(got < n, "all {n} replies arrived: the limit never applied");
    assert_eq!(bulk(&c.cmd(&["GET", "big"])).len(), value.len());
}

#[test]
fn a_query_past_the_query_buffer_limit_is_dropped() {
    let Some(s) = Server::try_start(&["--client-query-buffer-limit", "1048576"]) else { return };
    let mut c = s.client();
    // A 16 MB value (allowed by the default value limit) that never completes:
    // 3 MB of it sit in the query buffer, past the 1 MiB limit.
    let mut wire = b"*3\r\n$3\r\nSET\r\n$4\r\nhuge\r\n$16000000\r\n".to_vec();
    wire.extend(vec![b'q'; 3 << 20]);
    let mut sock = TcpStream::connect(s.addr()).unwrap();
    let mut big = Client::from_tcp(sock.try_clone().unwrap());
    // Written from another thread: once the server drops the connection
    // the rest of the write fails, which is expected.
    let sender = std::thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut sock, &wire);
    });
    big.set_timeout(TIMEOUT);
    match big.try_read_value() {
        Err(ReadError::Closed | ReadError::Truncated) => {}
        Err(ReadError::Io(e)) if is_reset(&e) => {}
        other => panic!("expected the connection to be dropped, got {other:?}"),
    }
    sender.join().unwrap();
    assert_eq!(c.cmd(&["GET", "huge"]), Value::NilBulk);
    assert_serving(&s);
}

//! What survives a crash or a stop of `dbkv serve` (dbkv only: these
//! restart the server on its data dir).
//!
//! - `--sync always`: every acknowledged write survives kill -9;
//! - `--sync interval`: what DBKV.SYNC acknowledged survives kill -9;
//! - SIGTERM and SHUTDOWN exit 0 after delivering the replies they owe;
//! - FLUSHALL and lock fencing tokens survive restarts.

mod common;

use std::thread;

use common::*;

/// What one writer thread saw acknowledged.
#[derive(Default, Debug)]
struct Acked {
    /// SET w{t}:{i} for every i below this was acknowledged.
    sets: u64,
    /// The last INCR reply for c{t}.
    counter: i64,
}

#[test]
fn sync_always_keeps_every_acknowledged_write_across_kill9() {
    dbkv_only!("kill -9 and restart");
    let mut s = Server::start(&["--sync", "always"]);
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let port = s.port;
            thread::spawn(move || {
                let mut c = Client::from_tcp(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
                let mut acked = Acked::default();
                // Bounded: stops at the kill, or after this many rounds.
                for i in 0..200_000u64 {
                    match c.try_cmd(&["SET", &format!("w{t}:{i}"), &format!("v{i}")]) {
                        Ok(v) => ok(&v),
                        Err(_) => break,
                    }
                    acked.sets = i + 1;
                    match c.try_cmd(&["INCR", &format!("c{t}")]) {
                        Ok(v) => acked.counter = int(&v),
                        Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect();
    // Let them write a while, then pull the plug mid-stream. A writer sends
    // SET w:301 only after SET w:300 was acknowledged, so seeing w:301 means
    // at least 301 acknowledged SETs (w:300 itself may be applied and not yet
    // acknowledged when the plug is pulled).
    let mut probe = s.client();
    common::eventually("writers made progress", || (0..4).all(|t| probe.cmd(&["GET", &format!("w{t}:301")]) != Value::NilBulk));
    s.kill9();
    let acked: Vec<Acked> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    s.restart();
    let mut c = s.client();
    for (t, a) in acked.iter().enumerate() {
        assert!(a.sets > 300, "writer {t}: {a:?}");
        // Every acknowledged SET, checked in MGET batches.
        for chunk in (0..a.sets).collect::<Vec<_>>().chunks(500) {
            let mut args = vec!["MGET".to_string()];
            args.extend(chunk.iter().map(|i| format!("w{t}:{i}")));
            let r = c.cmd(&args);
            for (i, v) in chunk.iter().zip(r.items()) {
                assert_eq!(v, &b(&format!("v{i}")), "writer {t}: acknowledged SET w{t}:{i} lost ({a:?})");
            }
        }
        // The counter holds every acknowledged INCR, plus at most the one in flight.
        let n: i64 = text(&c.cmd(&["GET", &format!("c{t}")])).parse().unwrap();
        assert!(n == a.counter || n == a.counter + 1, "writer {t}: counter {n}, acknowledged {}", a.counter);
    }
}

#[test]
fn sync_interval_keeps_what_dbkv_sync_acknowledged() {
    dbkv_only!("DBKV.SYNC, kill -9 and restart");
    // An interval long enough that only DBKV.SYNC can have made the writes durable.
    let mut s = Server::start(&["--sync", "interval", "--fsync-interval-ms", "60000"]);
    let mut c = s.client();
    let n = 2000;
    let mut wire = Vec::new();
    for i in 0..n {
        wire.extend(Client::encode(&["SET", &format!("k{i}"), &format!("v{i}")]));
    }
    wire.extend(Client::encode(&["INCRBY", "total", "7"]));
    c.send_raw(&wire);
    for _ in 0..n {
        ok(&c.read_value());
    }
    assert_eq!(c.read_value(), Value::Int(7));
    ok(&c.cmd(&["DBKV.SYNC"]));
    // Writes after the sync may or may not survive; nothing is asserted on them.
    ok(&c.cmd(&["SET", "after-sync", "x"]));
    s.kill9();
    s.restart();
    let mut c = s.client();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut args = vec!["MGET".to_string()];
        args.extend(chunk.iter().map(|i| format!("k{i}")));
        let r = c.cmd(&args);
        for (i, v) in chunk.iter().zip(r.items()) {
            assert_eq!(v, &b(&format!("v{i}")), "k{i} was acknowledged by DBKV.SYNC and lost");
        }
    }
    assert_eq!(c.cmd(&["GET", "total"]), b("7"));
}

#[test]
fn sigterm_exits_0_after_delivering_pipelined_replies() {
    dbkv_only!("SIGTERM and restart");
    let mut s = Server::start(&["--sync", "none"]);
    let mut c = s.client();
    let value: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    ok(&c.cmd(&[b"SET".as_ref(), b"big", &value]));
    // 20 MiB of replies asked for in one small write, not read yet: when
    // the signal comes most of them still wait in the server's buffers.
    let n = 20;
    let wire: Vec<u8> = (0..n).flat_map(|_| [Client::encode(&["GET", "big"]), Client::encode(&["INCR", "ctr"])].concat()).collect();
    c.send_raw(&wire);
    // Let the server read the pipeline (a reply shows it started on it).
    let mut first = s.client();
    common::eventually("the pipeline is being served", || first.cmd(&["GET", "ctr"]) != Value::NilBulk);
    s.signal(libc::SIGTERM);
    // Every reply comes, whole and in order, then a clean close.
    for i in 1..=n {
        assert_eq!(bulk(&c.read_value()), value, "GET reply {i}");
        assert_eq!(c.read_value(), Value::Int(i as i64));
    }
    c.assert_closed();
    let st = s.wait_exit();
    assert!(st.success(), "SIGTERM exit status {st}\n{}", s.log());
    // --sync none: the shutdown itself made the INCRs durable.
    s.restart();
    let mut c = s.client();
    assert_eq!(c.cmd(&["GET", "ctr"]), b(&n.to_string()));
}

#[test]
fn sigterm_with_idle_and_subscribed_clients_exits_0() {
    dbkv_only!("SIGTERM and restart");
    let mut s = Server::start(&[]);
    let mut idle = s.client();
    ok(&idle.cmd(&["SET", "k", "v"]));
    let mut sub = s.client();
    sub.cmd(&["SUBSCRIBE", "ch"]);
    let mut multi = s.client();
    ok(&multi.cmd(&["MULTI"]));
    let st = s.sigterm_and_wait();
    assert!(st.success(), "{st}\n{}", s.log());
    idle.assert_closed();
    sub.assert_closed();
    multi.assert_closed();
    s.restart();
    assert_eq!(s.client().cmd(&["GET", "k"]), b("v"));
}

#[test]
fn shutdown_command_exits_0_and_keeps_the_data() {
    dbkv_only!("SHUTDOWN and restart");
    // --sync none: only the shutdown itself makes the data durable.
    let mut s = Server::start(&["--sync", "none"]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "k", "v"]));
    assert_eq!(c.cmd(&["INCRBY", "n", "5"]), Value::Int(5));
    // On success SHUTDOWN sends no reply: the connection just closes.
    c.send(&["SHUTDOWN"]);
    c.assert_closed();
    let st = s.wait_exit();
    assert!(st.success(), "SHUTDOWN exit status {st}\n{}", s.log());
    s.restart();
    let mut c = s.client();
    assert_eq!(c.cmd(&["MGET", "k", "n"]), arr(vec![b("v"), b("5")]));
    // SHUTDOWN inside MULTI is refused.
    ok(&c.cmd(&["MULTI"]));
    err_starts_with(&c.cmd(&["SHUTDOWN"]), "ERR ");
    err_eq(&c.cmd(&["EXEC"]), "EXECABORT Transaction discarded because of previous errors.");
    assert!(s.is_running());
}

#[test]
fn flushall_survives_restarts_and_snapshots() {
    dbkv_only!("kill -9 and restart");
    let mut s = Server::start(&["--sync", "always"]);
    let mut c = s.client();
    ok(&c.cmd(&["MSET", "a", "1", "b", "2"]));
    c.cmd(&["INCR", "n"]);
    // A snapshot that holds the keys, then FLUSHALL after it.
    ok(&c.cmd(&["SAVE"]));
    ok(&c.cmd(&["FLUSHALL"]));
    ok(&c.cmd(&["SET", "c", "3"]));
    s.kill9();
    s.restart();
    let mut c = s.client();
    assert_eq!(c.cmd(&["MGET", "a", "b", "n", "c"]), arr(vec![Value::NilBulk, Value::NilBulk, Value::NilBulk, b("3")]));
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(1));
    // Again through a graceful restart (which snapshots on the way out).
    ok(&c.cmd(&["FLUSHALL"]));
    ok(&c.cmd(&["SET", "d", "4"]));
    s.restart();
    let mut c = s.client();
    assert_eq!(c.cmd(&["MGET", "c", "d"]), arr(vec![Value::NilBulk, b("4")]));
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(1));
}

#[test]
fn lock_tokens_keep_increasing_across_restarts() {
    dbkv_only!("DBKV.* commands and restart");
    let mut s = Server::start(&["--sync", "always"]);
    let mut c = s.client();
    let mut last = 0;
    for i in 0..5 {
        let t = int(&c.cmd(&["DBKV.LOCK", &format!("lock{i}"), "alice", "60000"]));
        assert!(t > last);
        last = t;
    }
    s.kill9();
    s.restart();
    let mut c = s.client();
    let t = int(&c.cmd(&["DBKV.LOCK", "after-crash", "bob", "60000"]));
    assert!(t > last, "token {t} after kill -9 is not above {last}");
    last = t;
    // A refresh by the holder after the crash too.
    let t = int(&c.cmd(&["DBKV.LOCK", "after-crash", "bob", "60000"]));
    assert!(t > last);
    last = t;
    s.restart();
    let mut c = s.client();
    let t = int(&c.cmd(&["DBKV.LOCK", "after-stop", "carol", "60000"]));
    assert!(t > last, "token {t} after a graceful restart is not above {last}");
}

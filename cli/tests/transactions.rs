//! MULTI / EXEC / DISCARD / WATCH over real sockets: Redis 7's replies,
//! atomicity under concurrent clients, and (dbkv) atomicity across kill -9.

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread;

use common::*;

fn queued(v: &Value) {
    assert_eq!(v, &Value::Simple("QUEUED".into()));
}

#[test]
fn multi_exec_discard() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["MULTI"]));
    queued(&c.cmd(&["SET", "a", "1"]));
    queued(&c.cmd(&["INCR", "a"]));
    queued(&c.cmd(&["GET", "a"]));
    queued(&c.cmd(&["MGET", "a", "nope"]));
    assert_eq!(c.cmd(&["EXEC"]), arr(vec![Value::Simple("OK".into()), Value::Int(2), b("2"), arr(vec![b("2"), Value::NilBulk])]));
    // An empty transaction.
    ok(&c.cmd(&["MULTI"]));
    assert_eq!(c.cmd(&["EXEC"]), arr(vec![]));
    // DISCARD drops the queue.
    ok(&c.cmd(&["MULTI"]));
    queued(&c.cmd(&["SET", "a", "discarded"]));
    ok(&c.cmd(&["DISCARD"]));
    assert_eq!(c.cmd(&["GET", "a"]), b("2"));
    err_eq(&c.cmd(&["EXEC"]), "ERR EXEC without MULTI");
    err_eq(&c.cmd(&["DISCARD"]), "ERR DISCARD without MULTI");
    // A nested MULTI is refused but leaves the transaction open and valid.
    ok(&c.cmd(&["MULTI"]));
    err_eq(&c.cmd(&["MULTI"]), "ERR MULTI calls can not be nested");
    queued(&c.cmd(&["SET", "n", "1"]));
    assert_eq!(c.cmd(&["EXEC"]), arr(vec![Value::Simple("OK".into())]));
    // Another client sees nothing of a queued transaction before EXEC.
    let mut other = s.client();
    ok(&c.cmd(&["MULTI"]));
    queued(&c.cmd(&["SET", "pending", "x"]));
    assert_eq!(other.cmd(&["GET", "pending"]), Value::NilBulk);
    assert_eq!(c.cmd(&["EXEC"]), arr(vec![Value::Simple("OK".into())]));
    assert_eq!(other.cmd(&["GET", "pending"]), b("x"));
}

#[test]
fn execabort_after_a_queueing_error() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["MULTI"]));
    queued(&c.cmd(&["SET", "a", "1"]));
    err_eq(&c.cmd(&["NOSUCHCMD", "x"]), "ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' ");
    queued(&c.cmd(&["SET", "b", "1"]));
    err_eq(&c.cmd(&["EXEC"]), "EXECABORT Transaction discarded because of previous errors.");
    assert_eq!(c.cmd(&["MGET", "a", "b"]), arr(vec![Value::NilBulk, Value::NilBulk]));
    // A wrong arity also aborts the whole transaction.
    ok(&c.cmd(&["MULTI"]));
    queued(&c.cmd(&["SET", "a", "1"]));
    err_eq(&c.cmd(&["GET"]), "ERR wrong number of arguments for 'get' command");
    err_eq(&c.cmd(&["EXEC"]), "EXECABORT Transaction discarded because of previous errors.");
    assert_eq!(c.cmd(&["GET", "a"]), Value::NilBulk);
    // The connection is out of MULTI afterwards.
    ok(&c.cmd(&["SET", "a", "after"]));
    assert_eq!(c.cmd(&["GET", "a"]), b("after"));
}

#[test]
fn runtime_errors_inside_exec_do_not_abort_the_rest() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "s", "not-a-number"]));
    ok(&c.cmd(&["MULTI"]));
    queued(&c.cmd(&["INCR", "s"]));
    queued(&c.cmd(&["SET", "b", "1"]));
    queued(&c.cmd(&["SET", "c", "v", "EX", "0"]));
    queued(&c.cmd(&["INCRBY", "b", "2"]));
    let r = c.cmd(&["EXEC"]);
    let items = r.items();
    assert_eq!(items.len(), 4, "{r:?}");
    err_eq(&items[0], "ERR value is not an integer or out of range");
    ok(&items[1]);
    err_eq(&items[2], "ERR invalid expire time in 'set' command");
    assert_eq!(items[3], Value::Int(3));
    assert_eq!(c.cmd(&["MGET", "s", "b", "c"]), arr(vec![b("not-a-number"), b("3"), Value::NilBulk]));
}

#[test]
fn watch_aborts_exec_when_another_client_writes() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut other = s.client();
    ok(&c.cmd(&["SET", "k", "orig"]));
    // Untouched: EXEC runs.
    ok(&c.cmd(&["WATCH", "k"]));
    ok(&c.cmd(&["MULTI"]));
    queued(&c.cmd(&["SET", "k", "mine"]));
    assert_eq!(c.cmd(&["EXEC"]), arr(vec![Value::Simple("OK".into())]));
    // Touched by another client between WATCH and EXEC: nil, nothing runs.
    ok(&c.cmd(&["WATCH", "k", "unrelated"]));
    ok(&other.cmd(&["SET", "k", "theirs"]));
    ok(&c.cmd(&["MULTI"]));
    queued(&c.cmd(&["SET", "k", "mine2"]));
    queued(&c.cmd(&["SET", "side", "effect"]));
    assert_eq!(c.cmd(&["EXEC"]), Value::NilArray);
    assert_eq!(c.cmd(&["MGET", "k", "side"]), arr(vec![b("theirs"), Value::NilBulk]));
    // The watch ended with EXEC: the next transaction runs.
    ok(&other.cmd(&["SET", "k", "again"]));
    ok(&c.cmd(&["MULTI"]));
    queued(&c.cmd(&["GET", "k"]));
    assert_eq!(c.cmd(&["EXEC"]), arr(vec![b("again")]));
    // A write to a key that did not exist when watched counts too.
    ok(&c.cmd(&["WATCH", "created"]));
    assert_eq!(other.cmd(&["INCR", "created"]), Value::Int(1));
    ok(&c.cmd(&["MULTI"]));
    queued(&c.cmd(&["INCR", "created"]));
    assert_eq!(c.cmd(&["EXEC"]), Value::NilArray);
    // The watching client's own write counts as well.
    ok(&c.cmd(&["WATCH", "k"]));
    ok(&c.cmd(&["SET", "k", "self"]));
    ok(&c.cmd(&["MULTI"]));
    queued(&c.cmd(&["SET", "k", "never"]));
    assert_eq!(c.cmd(&["EXEC"]), Value::NilArray);
    assert_eq!(c.cmd(&["GET", "k"]), b("self"));
    // UNWATCH forgets; DISCARD forgets too.
    ok(&c.cmd(&["WATCH", "k"]));
    ok(&c.cmd(&["UNWATCH"]));
    ok(&other.cmd(&["SET", "k", "x"]));
    ok(&c.cmd(&["MULTI"]));
    queued(&c.cmd(&["GET", "k"]));
    assert_eq!(c.cmd(&["EXEC"]), arr(vec![b("x")]));
    ok(&c.cmd(&["WATCH", "k"]));
    ok(&other.cmd(&["SET", "k", "y"]));
    ok(&c.cmd(&["MULTI"]));
    ok(&c.cmd(&["DISCARD"]));
    ok(&c.cmd(&["MULTI"]));
    queued(&c.cmd(&["GET", "k"]));
    assert_eq!(c.cmd(&["EXEC"]), arr(vec![b("y")]));
    // WATCH is refused inside MULTI (and leaves the transaction usable).
    ok(&c.cmd(&["MULTI"]));
    err_eq(&c.cmd(&["WATCH", "k"]), "ERR WATCH inside MULTI is not allowed");
    queued(&c.cmd(&["GET", "k"]));
    assert_eq!(c.cmd(&["EXEC"]), arr(vec![b("y")]));
    err_eq(&c.cmd(&["WATCH"]), "ERR wrong number of arguments for 'watch' command");
}

/// A WATCH aborts EXEC for each of `writes`, done by another client.
fn watch_counts_as_write(s: &Server, setup: &[&[&str]], write: &[&str]) {
    let mut c = s.client();
    let mut other = s.client();
    for cmd in setup {
        c.cmd(cmd);
    }
    ok(&c.cmd(&["WATCH", "w"]));
    let r = other.cmd(write);
    assert!(!matches!(r, Value::Error(_)), "{write:?} failed: {r:?}");
    ok(&c.cmd(&["MULTI"]));
    queued(&c.cmd(&["SET", "marker", "ran"]));
    assert_eq!(c.cmd(&["EXEC"]), Value::NilArray, "{write:?} must abort a WATCH on the key");
    assert_eq!(c.cmd(&["GET", "marker"]), Value::NilBulk);
}

#[test]
fn watch_counts_expire_del_flushall_as_writes() {
    let s = Server::start(&[]);
    let set: &[&str] = &["SET", "w", "v"];
    watch_counts_as_write(&s, &[set], &["EXPIRE", "w", "100"]);
    watch_counts_as_write(&s, &[set], &["PEXPIRE", "w", "100000"]);
    watch_counts_as_write(&s, &[set, &["EXPIRE", "w", "100"]], &["PERSIST", "w"]);
    watch_counts_as_write(&s, &[set], &["DEL", "w"]);
    watch_counts_as_write(&s, &[set], &["UNLINK", "w"]);
    watch_counts_as_write(&s, &[set], &["RENAME", "w", "w2"]);
    watch_counts_as_write(&s, &[set, &["SET", "src", "x"]], &["RENAME", "src", "w"]);
    watch_counts_as_write(&s, &[set, &["SET", "src", "x"]], &["COPY", "src", "w", "REPLACE"]);
    watch_counts_as_write(&s, &[set], &["FLUSHALL"]);
    watch_counts_as_write(&s, &[set], &["FLUSHDB"]);
    // Reads are not writes.
    let mut c = s.client();
    let mut other = s.client();
    ok(&c.cmd(&["SET", "w", "v"]));
    ok(&c.cmd(&["WATCH", "w"]));
    for read in [&["GET", "w"][..], &["EXISTS", "w"], &["TTL", "w"], &["TYPE", "w"], &["STRLEN", "w"]] {
        assert!(!matches!(other.cmd(read), Value::Error(_)), "{read:?}");
    }
    ok(&c.cmd(&["MULTI"]));
    queued(&c.cmd(&["GET", "w"]));
    assert_eq!(c.cmd(&["EXEC"]), arr(vec![b("v")]));
}

/// Shared by the threads of `hammer`.
#[derive(Default)]
struct Hammer {
    stop: AtomicBool,
    /// The highest EXEC result a writer saw acknowledged.
    acked: AtomicI64,
    /// Transactions acknowledged, all writers together.
    commits: AtomicI64,
    /// Consistency checks done, all readers together.
    reads: AtomicI64,
}

/// Runs `writers` threads of MULTI INCR a / INCR b EXEC while two readers
/// check a == b (by MGET and by a MULTI of two GETs), until `h.stop` or
/// the first error (a killed server). Each thread returns its verdict.
fn hammer(port: u16, writers: usize, h: Arc<Hammer>) -> Vec<thread::JoinHandle<Result<(), String>>> {
    let mut hs = Vec::new();
    for _ in 0..writers {
        let h = h.clone();
        hs.push(thread::spawn(move || {
            let Ok(sock) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return Ok(()) };
            let mut c = Client::from_tcp(sock);
            while !h.stop.load(Ordering::Relaxed) {
                // Pipelined: the four commands go out in one write.
                let mut wire = Client::encode(&["MULTI"]);
                wire.extend(Client::encode(&["INCR", "a"]));
                wire.extend(Client::encode(&["INCR", "b"]));
                wire.extend(Client::encode(&["EXEC"]));
                if c.try_send_raw(&wire).is_err() {
                    break;
                }
                let mut replies = Vec::new();
                for _ in 0..4 {
                    match c.try_read_value() {
                        Ok(v) => replies.push(v),
                        Err(_) => return Ok(()), // the server went away
                    }
                }
                let exec = replies[3].items().to_vec();
                if exec.len() != 2 || exec[0] != exec[1] {
                    return Err(format!("EXEC replied {exec:?}: INCR a and INCR b disagree"));
                }
                h.acked.fetch_max(int(&exec[0]), Ordering::SeqCst);
                h.commits.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        }));
    }
    for reader in 0..2u64 {
        let h = h.clone();
        hs.push(thread::spawn(move || {
            let Ok(sock) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return Ok(()) };
            let mut c = Client::from_tcp(sock);
            let mut n = 0u64;
            while !h.stop.load(Ordering::Relaxed) {
                n += 1;
                let pair = if (n + reader) % 2 == 0 {
                    c.send(&["MGET", "a", "b"]);
                    match c.try_read_value() {
                        Ok(v) => v.items().to_vec(),
                        Err(_) => return Ok(()),
                    }
                } else {
                    let mut wire = Client::encode(&["MULTI"]);
                    wire.extend(Client::encode(&["GET", "a"]));
                    wire.extend(Client::encode(&["GET", "b"]));
                    wire.extend(Client::encode(&["EXEC"]));
                    if c.try_send_raw(&wire).is_err() {
                        return Ok(());
                    }
                    let mut last = Value::Null;
                    for _ in 0..4 {
                        match c.try_read_value() {
                            Ok(v) => last = v,
                            Err(_) => return Ok(()),
                        }
                    }
                    last.items().to_vec()
                };
                if pair[0] != pair[1] {
                    return Err(format!("a reader saw a != b: {pair:?}"));
                }
                h.reads.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        }));
    }
    hs
}

#[test]
fn multi_exec_is_atomic_under_concurrency() {
    let s = Server::start(&[]);
    let h = Arc::new(Hammer::default());
    let hs = hammer(s.port, 4, h.clone());
    // Enough interleaving for a non-atomic MGET or EXEC to show (a
    // deliberately broken MGET is caught within a few hundred reads).
    let (reads, commits) = if common::soak() { (200_000, 200_000) } else { (6_000, 6_000) };
    common::eventually("readers and writers did their rounds", || {
        h.reads.load(Ordering::SeqCst) >= reads && h.commits.load(Ordering::SeqCst) >= commits || hs.iter().any(|t| t.is_finished())
    });
    h.stop.store(true, Ordering::Relaxed);
    for t in hs {
        t.join().unwrap().unwrap();
    }
    let total = h.commits.load(Ordering::SeqCst);
    assert_eq!(h.acked.load(Ordering::SeqCst), total);
    let mut c = s.client();
    assert_eq!(c.cmd(&["MGET", "a", "b"]), arr(vec![b(&total.to_string()), b(&total.to_string())]));
}

#[test]
fn multi_exec_is_atomic_across_kill9() {
    dbkv_only!("kill -9 and restart");
    let mut s = Server::start(&["--sync", "always"]);
    let h = Arc::new(Hammer::default());
    let hs = hammer(s.port, 4, h.clone());
    // Kill while transactions are in flight (after some have landed).
    common::eventually("some transactions acknowledged", || h.commits.load(Ordering::SeqCst) >= 300);
    s.kill9();
    for t in hs {
        t.join().unwrap().unwrap();
    }
    let acked = h.acked.load(Ordering::SeqCst);
    s.restart();
    let mut c = s.client();
    let r = c.cmd(&["MGET", "a", "b"]);
    let (a, b_) = (text(&r.items()[0]).parse::<i64>().unwrap(), text(&r.items()[1]).parse::<i64>().unwrap());
    assert_eq!(a, b_, "a transaction survived the crash in part");
    // Every acknowledged EXEC is durable (--sync always); at most the
    // unacknowledged ones in flight are there on top.
    assert!(a >= acked && a <= acked + 4, "a = {a}, acknowledged {acked}");
}

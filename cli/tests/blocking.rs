//! BLPOP, BRPOP, BLMOVE, BRPOPLPUSH over real sockets, against dbkv and
//! (DBKV_TEST_TARGET=redis) redis-server: wakeups by every kind of push,
//! FIFO order among blocked clients, timeouts, MULTI, disconnects, CLIENT
//! UNBLOCK, and wakeups across dbkv's worker threads.

mod common;

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

fn bulks(items: &[&str]) -> Value {
    arr(items.iter().map(|s| b(s)).collect())
}

fn blocked_clients(c: &mut Client) -> i64 {
    let info = c.cmd(&["INFO", "clients"]).as_text().expect("INFO text");
    info.lines().find_map(|l| l.strip_prefix("blocked_clients:")).expect("blocked_clients in INFO").trim().parse().unwrap()
}

/// Waits until exactly `n` clients are blocked (so the next push finds
/// them queued, in the order they blocked).
#[track_caller]
fn wait_blocked(c: &mut Client, n: i64) {
    eventually(&format!("{n} blocked clients"), || blocked_clients(c) == n);
}

fn connect(port: u16) -> Client {
    Client::from_tcp(TcpStream::connect(("127.0.0.1", port)).unwrap())
}

#[test]
fn blpop_wakes_on_push_from_another_client() {
    let s = Server::start(&[]);
    let mut w = s.client();
    let mut c = s.client();
    w.send(&["BLPOP", "k1", "k2", "0"]);
    wait_blocked(&mut c, 1);
    let list = c.cmd(&["CLIENT", "LIST"]).as_text().unwrap();
    assert!(list.lines().any(|l| l.contains(" flags=b ")), "{list}");
    // The pusher sees the length its push made, as in Redis.
    assert_eq!(c.cmd(&["RPUSH", "k2", "v"]), Value::Int(1));
    assert_eq!(w.read_value(), bulks(&["k2", "v"]));
    assert_eq!(c.cmd(&["EXISTS", "k2"]), Value::Int(0));
    wait_blocked(&mut c, 0);
    // BRPOP takes the tail.
    w.send(&["BRPOP", "k1", "0"]);
    wait_blocked(&mut c, 1);
    assert_eq!(c.cmd(&["RPUSH", "k1", "a", "b", "c"]), Value::Int(3));
    assert_eq!(w.read_value(), bulks(&["k1", "c"]));
    assert_eq!(c.cmd(&["LRANGE", "k1", "0", "-1"]), bulks(&["a", "b"]));
    // Elements there already: an answer at once, from the first
    // non-empty key in the order given.
    c.cmd(&["RPUSH", "k3", "x"]);
    assert_eq!(w.cmd(&["BLPOP", "missing", "k1", "k3", "0"]), bulks(&["k1", "a"]));
    assert_eq!(w.cmd(&["BRPOP", "missing", "k3", "0"]), bulks(&["k3", "x"]));
    // Commands pipelined after a blocked one wait for it.
    let mut wire = Client::encode(&["BLPOP", "q", "0"]);
    wire.extend(Client::encode(&["SET", "after", "1"]));
    wire.extend(Client::encode(&["GET", "after"]));
    w.send_raw(&wire);
    wait_blocked(&mut c, 1);
    assert_eq!(c.cmd(&["GET", "after"]), Value::NilBulk);
    assert_eq!(c.cmd(&["LPUSH", "q", "v"]), Value::Int(1));
    assert_eq!(w.read_value(), bulks(&["q", "v"]));
    ok(&w.read_value());
    assert_eq!(w.read_value(), b("1"));
    // RESP3: the same array.
    w.cmd(&["HELLO", "3"]);
    w.send(&["BLPOP", "r3", "0"]);
    wait_blocked(&mut c, 1);
    c.cmd(&["RPUSH", "r3", "v"]);
    assert_eq!(w.read_value(), bulks(&["r3", "v"]));
}

#[test]
fn wakeup_under_sync_always() {
    // Redis has no equivalent flag: the harness drops it there (an
    // external server cannot take flags: skipped).
    let Some(s) = Server::try_start(&["--sync", "always"]) else { return };
    let mut w = s.client();
    let mut c = s.client();
    for i in 0..20 {
        w.send(&["BLPOP", "k", "0"]);
        wait_blocked(&mut c, 1);
        c.cmd(&["RPUSH", "k", &format!("v{i}")]);
        assert_eq!(w.read_value(), bulks(&["k", &format!("v{i}")]));
    }
}

#[test]
fn fifo_order_of_blocked_clients() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut ws: Vec<Client> = (0..3).map(|_| s.client()).collect();
    for (i, w) in ws.iter_mut().enumerate() {
        w.send(&["BLPOP", "q", "0"]);
        wait_blocked(&mut c, i as i64 + 1);
    }
    // One push of three elements: the first client that blocked gets the
    // first element.
    assert_eq!(c.cmd(&["RPUSH", "q", "a", "b", "c"]), Value::Int(3));
    for (w, v) in ws.iter_mut().zip(["a", "b", "c"]) {
        assert_eq!(w.read_value(), bulks(&["q", v]));
    }
    // One push at a time.
    for (i, w) in ws.iter_mut().enumerate() {
        w.send(&["BRPOP", "q", "0"]);
        wait_blocked(&mut c, i as i64 + 1);
    }
    for (w, v) in ws.iter_mut().zip(["x", "y", "z"]) {
        c.cmd(&["RPUSH", "q", v]);
        assert_eq!(w.read_value(), bulks(&["q", v]));
    }
    // A client waiting on several keys keeps its place on each.
    ws[0].send(&["BLPOP", "k1", "k2", "0"]);
    wait_blocked(&mut c, 1);
    ws[1].send(&["BLPOP", "k2", "0"]);
    wait_blocked(&mut c, 2);
    c.cmd(&["RPUSH", "k2", "first", "second"]);
    assert_eq!(ws[0].read_value(), bulks(&["k2", "first"]));
    assert_eq!(ws[1].read_value(), bulks(&["k2", "second"]));
    assert_eq!(blocked_clients(&mut c), 0);
}

#[test]
fn timeout_returns_nil() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let t0 = Instant::now();
    assert_eq!(c.cmd(&["BLPOP", "none", "0.2"]), Value::NilArray);
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(150) && took < Duration::from_secs(10), "BLPOP 0.2 took {took:?}");
    assert_eq!(c.cmd(&["BRPOP", "none1", "none2", "0.05"]), Value::NilArray);
    // The moves time out with a nil array too (as Redis answers them).
    assert_eq!(c.cmd(&["BLMOVE", "none", "dst", "LEFT", "LEFT", "0.05"]), Value::NilArray);
    assert_eq!(c.cmd(&["BRPOPLPUSH", "none", "dst", "0.05"]), Value::NilArray);
    assert_eq!(c.cmd(&["EXISTS", "dst"]), Value::Int(0));
    // Pipelined commands run once the timeout answered.
    let mut wire = Client::encode(&["BLPOP", "none", "0.05"]);
    wire.extend(Client::encode(&["PING"]));
    c.send_raw(&wire);
    assert_eq!(c.read_value(), Value::NilArray);
    assert_eq!(c.read_value(), Value::Simple("PONG".into()));
    // Deadlines of several clients, each answered on its own.
    let mut ws: Vec<Client> = (0..3).map(|_| s.client()).collect();
    for (w, t) in ws.iter_mut().zip(["0.3", "0.1", "0.2"]) {
        w.send(&["BLPOP", "none", t]);
    }
    for w in &mut ws {
        assert_eq!(w.read_value(), Value::NilArray);
    }
    assert_eq!(blocked_clients(&mut c), 0);
    // RESP3: null.
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["BLPOP", "none", "0.05"]), Value::Null);
    assert_eq!(c.cmd(&["BLMOVE", "none", "dst", "LEFT", "LEFT", "0.05"]), Value::Null);
    // Bad timeouts and arguments.
    err_eq(&c.cmd(&["BLPOP", "k", "abc"]), "ERR timeout is not a float or out of range");
    err_eq(&c.cmd(&["BLPOP", "k", "-1"]), "ERR timeout is negative");
    err_eq(&c.cmd(&["BLMOVE", "k", "d", "LEFT", "LEFT", "x"]), "ERR timeout is not a float or out of range");
    err_eq(&c.cmd(&["BLMOVE", "k", "d", "UP", "LEFT", "x"]), "ERR syntax error");
    err_eq(&c.cmd(&["BRPOPLPUSH", "k", "d", "-2"]), "ERR timeout is negative");
    err_eq(&c.cmd(&["BLPOP", "k"]), "ERR wrong number of arguments for 'blpop' command");
    // A key of another type is an error, not a wait.
    ok(&c.cmd(&["SET", "s", "x"]));
    err_eq(&c.cmd(&["BLPOP", "none", "s", "0"]), "WRONGTYPE Operation against a key holding the wrong kind of value");
    err_eq(&c.cmd(&["BLMOVE", "s", "d", "LEFT", "LEFT", "0"]), "WRONGTYPE Operation against a key holding the wrong kind of value");
    c.cmd(&["RPUSH", "l", "a"]);
    err_eq(&c.cmd(&["BLMOVE", "l", "s", "LEFT", "LEFT", "0"]), "WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(c.cmd(&["LLEN", "l"]), Value::Int(1));
}

#[test]
fn blmove_and_brpoplpush() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut w1 = s.client();
    let mut w2 = s.client();
    w1.send(&["BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"]);
    wait_blocked(&mut c, 1);
    w2.send(&["BLPOP", "dst", "0"]);
    wait_blocked(&mut c, 2);
    // The move fills dst, which wakes the client blocked there in turn.
    assert_eq!(c.cmd(&["RPUSH", "src", "a", "b"]), Value::Int(2));
    assert_eq!(w1.read_value(), b("b"));
    assert_eq!(w2.read_value(), bulks(&["dst", "b"]));
    assert_eq!(c.cmd(&["LRANGE", "src", "0", "-1"]), bulks(&["a"]));
    assert_eq!(c.cmd(&["EXISTS", "dst"]), Value::Int(0));
    w1.send(&["BRPOPLPUSH", "e", "dst", "0"]);
    wait_blocked(&mut c, 1);
    c.cmd(&["LPUSH", "e", "z", "y"]);
    assert_eq!(w1.read_value(), b("z"));
    assert_eq!(c.cmd(&["LRANGE", "dst", "0", "-1"]), bulks(&["z"]));
    assert_eq!(c.cmd(&["LRANGE", "e", "0", "-1"]), bulks(&["y"]));
    // At once when the source has elements; same key: a rotation.
    c.cmd(&["RPUSH", "rot", "1", "2", "3"]);
    assert_eq!(w1.cmd(&["BLMOVE", "rot", "rot", "LEFT", "RIGHT", "0"]), b("1"));
    assert_eq!(c.cmd(&["LRANGE", "rot", "0", "-1"]), bulks(&["2", "3", "1"]));
}

#[test]
fn pushes_of_every_kind_wake_clients() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut w = s.client();
    let wake = |w: &mut Client, c: &mut Client, key: &str, push: &[&[&str]], want: Value| {
        w.send(&["BLPOP", key, "0"]);
        wait_blocked(c, 1);
        for &cmd in push {
            c.cmd(cmd);
        }
        assert_eq!(w.read_value(), want, "woken on {key} by {push:?}");
    };
    wake(&mut w, &mut c, "k", &[&["LPUSHX", "k", "no"], &["RPUSH", "src", "x"], &["LMOVE", "src", "k", "LEFT", "LEFT"]], bulks(&["k", "x"]));
    wake(&mut w, &mut c, "k", &[&["RPUSH", "src", "y"], &["RENAME", "src", "k"]], bulks(&["k", "y"]));
    wake(&mut w, &mut c, "k", &[&["RPUSH", "src", "z"], &["COPY", "src", "k"]], bulks(&["k", "z"]));
    wake(&mut w, &mut c, "k", &[&["RPOPLPUSH", "src", "k"]], bulks(&["k", "z"]));
    // EXEC: served once the whole transaction is over.
    wake(&mut w, &mut c, "m", &[&["MULTI"], &["RPUSH", "m", "1"], &["RPUSH", "m", "2"], &["EXEC"]], bulks(&["m", "1"]));
    assert_eq!(c.cmd(&["LRANGE", "m", "0", "-1"]), bulks(&["2"]));
    // A transaction that pushes and pops again wakes nobody.
    w.send(&["BLPOP", "n", "0"]);
    wait_blocked(&mut c, 1);
    ok(&c.cmd(&["MULTI"]));
    c.cmd(&["RPUSH", "n", "1"]);
    c.cmd(&["DEL", "n"]);
    c.cmd(&["EXEC"]);
    assert_eq!(blocked_clients(&mut c), 1);
    c.cmd(&["RPUSH", "n", "2"]);
    assert_eq!(w.read_value(), bulks(&["n", "2"]));
}

#[test]
fn blocking_inside_multi_does_not_block() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["MULTI"]));
    for args in [
        vec!["BLPOP", "none", "0"],
        vec!["BRPOP", "none", "0"],
        vec!["BLMOVE", "none", "dst", "LEFT", "LEFT", "0"],
        vec!["BRPOPLPUSH", "none", "dst", "0"],
        vec!["RPUSH", "k", "a", "b", "c"],
        vec!["BLPOP", "none", "k", "0"],
        vec!["BLMOVE", "k", "dst", "LEFT", "RIGHT", "0"],
        vec!["BRPOPLPUSH", "k", "dst", "0"],
    ] {
        assert_eq!(c.cmd(&args), Value::Simple("QUEUED".into()));
    }
    let t0 = Instant::now();
    assert_eq!(
        c.cmd(&["EXEC"]),
        arr(vec![Value::NilArray, Value::NilArray, Value::NilBulk, Value::NilBulk, Value::Int(3), bulks(&["k", "a"]), b("b"), b("c")])
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(c.cmd(&["LRANGE", "dst", "0", "-1"]), bulks(&["c", "b"]));
    assert_eq!(blocked_clients(&mut c), 0);
}

#[test]
fn disconnected_blocked_client_does_not_lose_the_element() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut w = s.client();
    w.send(&["BLPOP", "k", "0"]);
    wait_blocked(&mut c, 1);
    drop(w);
    wait_blocked(&mut c, 0);
    assert_eq!(c.cmd(&["RPUSH", "k", "v"]), Value::Int(1));
    thread::sleep(Duration::from_millis(100));
    assert_eq!(c.cmd(&["LRANGE", "k", "0", "-1"]), bulks(&["v"]));
    let mut w2 = s.client();
    assert_eq!(w2.cmd(&["BLPOP", "k", "0"]), bulks(&["k", "v"]));
}

#[test]
fn client_unblock() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut w = s.client();
    let id = int(&w.cmd(&["CLIENT", "ID"]));
    let id = id.to_string();
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id]), Value::Int(0));
    w.send(&["BLPOP", "k", "0"]);
    wait_blocked(&mut c, 1);
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id]), Value::Int(1));
    assert_eq!(w.read_value(), Value::NilArray);
    w.send(&["BLMOVE", "k", "d", "LEFT", "LEFT", "0"]);
    wait_blocked(&mut c, 1);
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]), Value::Int(1));
    err_eq(&w.read_value(), "UNBLOCKED client unblocked via CLIENT UNBLOCK");
    assert_eq!(blocked_clients(&mut c), 0);
    // The client carries on normally.
    c.cmd(&["RPUSH", "k", "v"]);
    assert_eq!(w.cmd(&["BLPOP", "k", "0"]), bulks(&["k", "v"]));
    // Inside EXEC (which holds the keys' locks): INFO counts the blocked
    // client, CLIENT UNBLOCK answers it before the push is served.
    w.send(&["BLPOP", "k", "0"]);
    wait_blocked(&mut c, 1);
    ok(&c.cmd(&["MULTI"]));
    c.cmd(&["RPUSH", "k", "v2"]);
    c.cmd(&["INFO", "clients"]);
    c.cmd(&["CLIENT", "UNBLOCK", &id]);
    let r = c.cmd(&["EXEC"]);
    let r = r.items();
    assert_eq!(r[0], Value::Int(1));
    assert!(r[1].as_text().unwrap().contains("blocked_clients:1"), "{:?}", r[1]);
    assert_eq!(r[2], Value::Int(1));
    assert_eq!(w.read_value(), Value::NilArray);
    assert_eq!(c.cmd(&["LRANGE", "k", "0", "-1"]), bulks(&["v2"]));
}

#[test]
fn wakeups_across_worker_threads() {
    let s = if is_dbkv() { Server::start(&["--threads", "2"]) } else { Server::start(&[]) };
    let mut c = s.client();
    // Many connections: the two workers accept them in a race, so pushers
    // and waiters land on both (and wake each other across threads).
    let n = 32;
    let mut ws: Vec<Client> = (0..n).map(|_| s.client()).collect();
    for (i, w) in ws.iter_mut().enumerate() {
        w.send(&["BLPOP", &format!("k{i}"), "0"]);
    }
    wait_blocked(&mut c, n as i64);
    let mut pushers: Vec<Client> = (0..n).map(|_| s.client()).collect();
    for (i, p) in pushers.iter_mut().enumerate() {
        p.cmd(&["RPUSH", &format!("k{i}"), &format!("v{i}")]);
    }
    for (i, w) in ws.iter_mut().enumerate() {
        assert_eq!(w.read_value(), bulks(&[&format!("k{i}"), &format!("v{i}")]));
    }
    // Producers and consumers at once: every element is popped exactly once.
    let (producers, consumers, per) = (4, 4, 300);
    let port = s.port;
    let eaters: Vec<_> = (0..consumers)
        .map(|_| {
            thread::spawn(move || {
                let mut c = connect(port);
                let mut got = Vec::new();
                loop {
                    let v = c.cmd(&["BLPOP", "work", "0"]);
                    let item = text(&v.items()[1]);
                    if item == "stop" {
                        return got;
                    }
                    got.push(item);
                }
            })
        })
        .collect();
    let feeders: Vec<_> = (0..producers)
        .map(|p| {
            thread::spawn(move || {
                let mut c = connect(port);
                for i in 0..per {
                    int(&c.cmd(&["RPUSH", "work", &format!("{p}:{i}")]));
                }
            })
        })
        .collect();
    feeders.into_iter().for_each(|f| f.join().unwrap());
    // The stops go in after every item: FIFO pops hand them out last.
    for _ in 0..consumers {
        c.cmd(&["RPUSH", "work", "stop"]);
    }
    let mut all = BTreeSet::new();
    let mut total = 0;
    for e in eaters {
        let got = e.join().unwrap();
        total += got.len();
        all.extend(got);
    }
    assert_eq!(total, producers * per, "every element popped once");
    assert_eq!(all.len(), producers * per, "no element popped twice");
    assert_eq!(c.cmd(&["EXISTS", "work"]), Value::Int(0));
}

#[test]
fn transactions_reading_the_registry_while_clients_are_served() {
    // EXEC holds its keys' locks while INFO and CLIENT UNBLOCK look at the
    // wait queues, and serving a blocked client takes those locks: both at
    // once, from several threads, must neither deadlock nor lose elements.
    let s = if is_dbkv() { Server::start(&["--threads", "2"]) } else { Server::start(&[]) };
    let port = s.port;
    let rounds = 1000;
    let eaters: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|key| {
            thread::spawn(move || {
                let mut c = connect(port);
                let mut n = 0;
                while text(&c.cmd(&["BLPOP", key, "0"]).items()[1]) != "stop" {
                    n += 1;
                }
                n
            })
        })
        .collect();
    let feeders: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn(move || {
                let mut c = connect(port);
                for _ in 0..rounds {
                    ok(&c.cmd(&["MULTI"]));
                    for args in [vec!["RPUSH", "a", "x"], vec!["INFO", "clients"], vec!["CLIENT", "UNBLOCK", "999999"], vec!["RPUSH", "b", "y"]] {
                        assert_eq!(c.cmd(&args), Value::Simple("QUEUED".into()));
                    }
                    assert_eq!(c.cmd(&["EXEC"]).items().len(), 4);
                }
            })
        })
        .collect();
    feeders.into_iter().for_each(|f| f.join().unwrap());
    let mut c = s.client();
    c.cmd(&["RPUSH", "a", "stop"]);
    c.cmd(&["RPUSH", "b", "stop"]);
    let popped: i64 = eaters.into_iter().map(|e| e.join().unwrap()).sum();
    assert_eq!(popped, 2 * 2 * rounds);
}

#[test]
fn many_waits_served_before_their_timeout() {
    // Each wait is answered by a push long before its deadline; the
    // deadlines left behind must not disturb later timeouts (dbkv prunes
    // them from its timer heap past 1,024).
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut w = s.client();
    let n = 1500;
    let mut wire = Vec::new();
    for _ in 0..n {
        wire.extend(Client::encode(&["BRPOP", "q", "100"]));
    }
    w.send_raw(&wire);
    for i in 0..n {
        let deadline = Instant::now() + TIMEOUT;
        while blocked_clients(&mut c) != 1 {
            assert!(Instant::now() < deadline, "round {i}: the client never blocked");
        }
        c.cmd(&["RPUSH", "q", &i.to_string()]);
        assert_eq!(w.read_value(), bulks(&["q", &i.to_string()]));
    }
    assert_eq!(w.cmd(&["BLPOP", "none", "0.05"]), Value::NilArray);
    assert_eq!(blocked_clients(&mut c), 0);
}

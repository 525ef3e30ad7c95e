//! Server commands (COMMAND, CONFIG GET, INFO, TIME, SAVE, LASTSAVE) with
//! Redis 7's reply shapes, and dbkv's own lock commands (DBKV.LOCK,
//! DBKV.UNLOCK, DBKV.EXTENDLOCK, DBKV.SYNC).

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::*;

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn time_and_lastsave() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let t = c.cmd(&["TIME"]);
    let items = t.items();
    assert_eq!(items.len(), 2, "{t:?}");
    let secs: i64 = text(&items[0]).parse().expect("seconds");
    let micros: i64 = text(&items[1]).parse().expect("microseconds");
    assert!((secs - unix_now()).abs() < 3600, "TIME {secs} is far from the clock ({})", unix_now());
    assert!((0..1_000_000).contains(&micros), "{micros}");
    let last = int(&c.cmd(&["LASTSAVE"]));
    assert!(last > 0 && last <= unix_now() + 5, "LASTSAVE {last}");
    err_eq(&c.cmd(&["TIME", "x"]), "ERR wrong number of arguments for 'time' command");
}

#[test]
fn save() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "k", "v"]));
    ok(&c.cmd(&["SAVE"]));
    let last = int(&c.cmd(&["LASTSAVE"]));
    assert!((last - unix_now()).abs() < 3600, "LASTSAVE {last}");
    assert_eq!(c.cmd(&["GET", "k"]), b("v"));
    // SAVE cannot run inside MULTI.
    ok(&c.cmd(&["MULTI"]));
    err_starts_with(&c.cmd(&["SAVE"]), "ERR ");
    err_eq(&c.cmd(&["EXEC"]), "EXECABORT Transaction discarded because of previous errors.");
}

#[test]
fn command_introspection() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let count = int(&c.cmd(&["COMMAND", "COUNT"]));
    let all = c.cmd(&["COMMAND"]);
    assert_eq!(all.items().len() as i64, count);
    let names: HashSet<String> = all.items().iter().map(|e| text(&e.items()[0])).collect();
    for name in ["get", "set", "del", "expire", "multi", "exec", "subscribe", "publish", "ping", "hello", "client", "info"] {
        assert!(names.contains(name), "COMMAND lacks {name}");
    }
    let info = c.cmd(&["COMMAND", "INFO", "get", "MSET", "nosuch"]);
    let items = info.items();
    assert_eq!(items.len(), 3, "{info:?}");
    // [name, arity, flags, first key, last key, step, ...]
    let get = items[0].items();
    assert_eq!(get[0], b("get"));
    assert_eq!(get[1], Value::Int(2));
    assert!(get[2].items().contains(&Value::Simple("readonly".into())), "{get:?}");
    assert_eq!(&get[3..6], &[Value::Int(1), Value::Int(1), Value::Int(1)]);
    let mset = items[1].items();
    assert_eq!(mset[0], b("mset"));
    assert_eq!(mset[1], Value::Int(-3));
    assert!(mset[2].items().contains(&Value::Simple("write".into())), "{mset:?}");
    assert_eq!(&mset[3..6], &[Value::Int(1), Value::Int(-1), Value::Int(2)]);
    assert!(items[2].is_nil(), "{info:?}");
    // COMMAND DOCS: name -> map of docs with summary and group (redis-cli reads these).
    let docs = c.cmd(&["COMMAND", "DOCS", "get"]);
    let get_docs = docs.get("get").unwrap_or_else(|| panic!("{docs:?}"));
    assert!(get_docs.get("summary").and_then(|v| v.as_text()).is_some_and(|s| !s.is_empty()), "{get_docs:?}");
    assert_eq!(get_docs.get("group"), Some(b("string")));
    err_eq(&c.cmd(&["COMMAND", "FOO"]), "ERR unknown subcommand 'FOO'. Try COMMAND HELP.");
}

#[test]
fn config_get() {
    let Some(s) = Server::try_start(&["--maxclients", "123"]) else { return };
    let mut c = s.client();
    let r = c.cmd(&["CONFIG", "GET", "maxclients"]);
    assert_eq!(r, arr(vec![b("maxclients"), b("123")]));
    let r = c.cmd(&["CONFIG", "GET", "port", "maxclients"]);
    assert_eq!(r.get("port"), Some(b(&s.port.to_string())), "{r:?}");
    assert_eq!(r.get("maxclients"), Some(b("123")), "{r:?}");
    // Globs.
    let r = c.cmd(&["CONFIG", "GET", "maxclient*"]);
    assert_eq!(r.get("maxclients"), Some(b("123")), "{r:?}");
    assert_eq!(c.cmd(&["CONFIG", "GET", "no-such-parameter"]), arr(vec![]));
    err_eq(&c.cmd(&["CONFIG", "GET"]), "ERR wrong number of arguments for 'config|get' command");
    err_eq(&c.cmd(&["CONFIG", "FOO"]), "ERR unknown subcommand 'FOO'. Try CONFIG HELP.");
    // RESP3: a map.
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxclients"]), Value::Map(vec![(b("maxclients"), b("123"))]));
}

#[test]
fn info_sections() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let all = c.cmd(&["INFO"]).as_text().expect("INFO text");
    for section in ["# Server", "# Clients", "# Stats", "# Keyspace"] {
        assert!(all.contains(section), "INFO lacks {section}:\n{all}");
    }
    assert!(all.contains("redis_version:"), "clients read redis_version:\n{all}");
    assert!(all.lines().all(|l| l.is_empty() || l.starts_with('#') || l.contains(':')), "INFO lines are field:value\n{all}");
    assert!(!all.contains("db0:"), "an empty key space has no db0 line:\n{all}");
    ok(&c.cmd(&["SET", "a", "1"]));
    ok(&c.cmd(&["SET", "b", "1", "EX", "100"]));
    let ks = c.cmd(&["INFO", "keyspace"]).as_text().unwrap();
    assert!(ks.contains("# Keyspace") && !ks.contains("# Server"), "{ks}");
    assert!(ks.lines().any(|l| l.starts_with("db0:keys=2,expires=1")), "{ks}");
    let server = c.cmd(&["INFO", "server"]).as_text().unwrap();
    assert!(server.contains("# Server") && !server.contains("# Keyspace"), "{server}");
    assert!(server.contains(&format!("tcp_port:{}", s.port)), "{server}");
    let clients = c.cmd(&["INFO", "clients"]).as_text().unwrap();
    let n: i64 = clients.lines().find_map(|l| l.strip_prefix("connected_clients:")).expect("connected_clients").trim().parse().unwrap();
    assert!(n >= 1, "{clients}");
    // RESP3: a verbatim string.
    c.cmd(&["HELLO", "3"]);
    assert!(matches!(c.cmd(&["INFO", "server"]), Value::Verbatim(..)));
}

// ---- dbkv's lock commands ------------------------------------------------

#[test]
fn dbkv_lock_contract() {
    dbkv_only!("DBKV.* commands");
    let s = Server::start(&[]);
    let mut c = s.client();
    let t1 = int(&c.cmd(&["DBKV.LOCK", "job", "alice", "10000"]));
    assert!(t1 > 0);
    assert!(c.cmd(&["DBKV.LOCK", "job", "bob", "10000"]).is_nil(), "another owner holds it");
    // The owner may take it again (refresh): a new, larger token.
    let t2 = int(&c.cmd(&["DBKV.LOCK", "job", "alice", "10000"]));
    assert!(t2 > t1, "{t2} > {t1}");
    assert_eq!(c.cmd(&["DBKV.EXTENDLOCK", "job", "bob", "10000"]), Value::Int(-1));
    assert_eq!(c.cmd(&["DBKV.EXTENDLOCK", "job", "alice", "20000"]), Value::Int(1));
    assert_eq!(c.cmd(&["DBKV.UNLOCK", "job", "bob"]), Value::Int(-1));
    assert_eq!(c.cmd(&["DBKV.UNLOCK", "job", "alice"]), Value::Int(1));
    assert_eq!(c.cmd(&["DBKV.UNLOCK", "job", "alice"]), Value::Int(0));
    assert_eq!(c.cmd(&["DBKV.EXTENDLOCK", "job", "alice", "1000"]), Value::Int(0));
    assert_eq!(c.cmd(&["DBKV.UNLOCK", "never", "alice"]), Value::Int(0));
    // Released: anyone can take it, with a larger token; tokens grow across keys too.
    let t3 = int(&c.cmd(&["DBKV.LOCK", "job", "bob", "100"]));
    assert!(t3 > t2);
    let t4 = int(&c.cmd(&["DBKV.LOCK", "other-job", "carol", "10000"]));
    assert!(t4 > t3);
    // A lock lapses by its TTL: then another owner gets it, and the old
    // owner can neither extend nor release the new holder's lock.
    let mut t5 = None;
    common::eventually("bob's 100 ms lock lapses", || {
        t5 = match c.cmd(&["DBKV.LOCK", "job", "dave", "10000"]) {
            Value::Int(t) => Some(t),
            v => {
                assert!(v.is_nil(), "{v:?}");
                None
            }
        };
        t5.is_some()
    });
    assert!(t5.unwrap() > t4);
    assert_eq!(c.cmd(&["DBKV.EXTENDLOCK", "job", "bob", "10000"]), Value::Int(-1));
    assert_eq!(c.cmd(&["DBKV.UNLOCK", "job", "bob"]), Value::Int(-1));
    assert_eq!(c.cmd(&["DBKV.UNLOCK", "job", "dave"]), Value::Int(1));
    // Bad arguments.
    err_eq(&c.cmd(&["DBKV.LOCK", "job", "alice", "abc"]), "ERR value is not an integer or out of range");
    err_starts_with(&c.cmd(&["DBKV.LOCK", "job", "alice", "0"]), "ERR ");
    err_starts_with(&c.cmd(&["DBKV.LOCK", "job", "alice", "-5"]), "ERR ");
    err_starts_with(&c.cmd(&["DBKV.EXTENDLOCK", "job", "alice", "x"]), "ERR ");
    err_eq(&c.cmd(&["DBKV.LOCK", "job", "alice"]), "ERR wrong number of arguments for 'dbkv.lock' command");
    err_eq(&c.cmd(&["DBKV.UNLOCK", "job"]), "ERR wrong number of arguments for 'dbkv.unlock' command");
    // The names are case-insensitive, like every command.
    assert!(int(&c.cmd(&["dbkv.lock", "job", "erin", "1000"])) > t5.unwrap());
    // Not inside MULTI.
    ok(&c.cmd(&["MULTI"]));
    err_starts_with(&c.cmd(&["DBKV.LOCK", "job", "x", "1000"]), "ERR ");
    err_eq(&c.cmd(&["EXEC"]), "EXECABORT Transaction discarded because of previous errors.");
    ok(&c.cmd(&["DBKV.SYNC"]));
}

#[test]
fn dbkv_lock_mutual_exclusion_under_contention() {
    dbkv_only!("DBKV.* commands");
    let s = Server::start(&[]);
    let held = Arc::new(AtomicBool::new(false));
    let grants = Arc::new(Mutex::new(Vec::new()));
    let rounds = if common::soak() { 2000 } else { 150 };
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (held, grants, port) = (held.clone(), grants.clone(), s.port);
            std::thread::spawn(move || {
                let mut c = Client::from_tcp(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
                let me = format!("worker-{i}");
                let mut mine = Vec::new();
                let mut got = 0;
                while got < rounds {
                    match c.cmd(&["DBKV.LOCK", "mutex", &me, "30000"]) {
                        Value::Int(t) => {
                            assert!(!held.swap(true, Ordering::SeqCst), "{me} got the lock while another held it");
                            mine.push(t);
                            got += 1;
                            held.store(false, Ordering::SeqCst);
                            assert_eq!(c.cmd(&["DBKV.UNLOCK", "mutex", &me]), Value::Int(1));
                        }
                        v => assert!(v.is_nil(), "{v:?}"),
                    }
                }
                assert!(mine.windows(2).all(|w| w[0] < w[1]), "{me}'s tokens do not increase: {mine:?}");
                grants.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let grants = grants.lock().unwrap();
    let unique: HashSet<_> = grants.iter().collect();
    assert_eq!(unique.len(), grants.len(), "a token was granted twice");
    assert_eq!(grants.len(), 4 * rounds);
}

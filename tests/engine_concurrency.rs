//! Many threads on few keys: counters stay exact, a lock has at most one
//! holder and its fencing tokens only grow, multi-key writes are atomic to
//! multi-key readers, and scans see every stable key exactly once while
//! other keys churn around them.
//!
//! The machine these run on may have only two cores, so every test uses more
//! threads than cores (forcing preemption inside critical sections) and
//! scales its iteration counts down in debug builds.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Barrier;

use dbkv::engine::{CasOutcome, Engine, LockOutcome, Options, OwnerOutcome};

mod common;
use common::Rng;

const THREADS: usize = 8;

fn scale(release: usize) -> usize {
    if cfg!(debug_assertions) {
        (release / 8).max(1)
    } else {
        release
    }
}

fn open(shards: u32) -> Engine {
    Engine::open(Options { shards, ..Options::default() }).expect("open")
}

/// Decrements a counter when dropped, also when its thread panics, so the
/// threads waiting for that counter stop instead of spinning forever.
struct Leaving<'a>(&'a AtomicUsize);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}


#[test]
fn concurrent_incr_decr_totals_are_exact() {
    for shards in [1, 256] {
        let e = open(shards);
        let keys: Vec<Vec<u8>> = (0..4).map(|i| format!("ctr{i}").into_bytes()).collect();
        let ops = scale(40_000);
        let start = Barrier::new(THREADS);
        // Each thread's net contribution per key, and every value `incr(seq, 1)` returned.
        let (nets, seqs): (Vec<Vec<i64>>, Vec<Vec<i64>>) = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (e, keys, start) = (&e, &keys, &start);
                    s.spawn(move || {
                        let mut rng = Rng::new(t as u64 + 1);
                        let mut net = vec![0i64; keys.len()];
                        let mut seq = Vec::new();
                        start.wait();
                        for i in 0..ops {
                            let k = rng.below(keys.len());
                            let d = rng.below(11) as i64 - 5;
                            if rng.below(2) == 0 {
                                e.incr(&keys[k], d).unwrap();
                                net[k] += d;
                            } else {
                                e.decr(&keys[k], d).unwrap();
                                net[k] -= d;
                            }
                            if i % 4 == 0 {
                                seq.push(e.incr(b"seq", 1).unwrap());
                            }
                            if i % 16 == 0 {
                                // Readers always see a whole counter's canonical text.
                                let v = e.get(&keys[k]).unwrap().expect("counter exists");
                                let n: i64 = std::str::from_utf8(&v).unwrap().parse().unwrap();
                                assert_eq!(n.to_string().as_bytes(), &v[..]);
                            }
                        }
                        (net, seq)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).unzip()
        });
        for (k, key) in keys.iter().enumerate() {
            let want: i64 = nets.iter().map(|n| n[k]).sum();
            assert_eq!(e.incr(key, 0).unwrap(), want, "shards {shards}: {}", String::from_utf8_lossy(key));
            assert_eq!(e.get(key).unwrap().unwrap(), want.to_string().into_bytes());
        }
        // incr(+1) hands every caller a distinct value: exactly 1..=n, no gaps, no repeats.
        let mut all: Vec<i64> = seqs.into_iter().flatten().collect();
        all.sort_unstable();
        let n = all.len() as i64;
        assert!(all.iter().copied().eq(1..=n), "shards {shards}: incr results are not exactly 1..={n}");
        assert_eq!(e.get(b"seq").unwrap().unwrap(), n.to_string().into_bytes());
    }
}

#[test]
fn concurrent_cas_loops_and_setnx_races() {
    let e = open(16);
    let rounds = scale(400);
    let per_thread = scale(800);
    e.set(b"cas-ctr", b"0", 0).unwrap();
    let start = Barrier::new(THREADS);
    let wins: Vec<Vec<usize>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (e, start) = (&e, &start);
                s.spawn(move || {
                    start.wait();
                    // Read-modify-write through cas: no increment may be lost.
                    for _ in 0..per_thread {
                        loop {
                            let cur = e.get(b"cas-ctr").unwrap().unwrap();
                            let n: u64 = std::str::from_utf8(&cur).unwrap().parse().unwrap();
                            match e.cas(b"cas-ctr", &cur, (n + 1).to_string().as_bytes(), 0).unwrap() {
                                CasOutcome::Swapped => break,
                                CasOutcome::Mismatch => continue,
                                CasOutcome::NotFound => panic!("cas-ctr vanished"),
                            }
                        }
                    }
                    // setnx: exactly one winner per key.
                    let me = format!("t{t}");
                    let mut won = Vec::new();
                    for r in 0..rounds {
                        if e.setnx(format!("nx{r}").as_bytes(), me.as_bytes(), 0).unwrap() {
                            won.push(r);
                        }
                    }
                    won
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(e.get(b"cas-ctr").unwrap().unwrap(), (THREADS * per_thread).to_string().into_bytes());
    let mut winner = HashMap::new();
    for (t, won) in wins.iter().enumerate() {
        for &r in won {
            assert!(winner.insert(r, t).is_none(), "two setnx winners for nx{r}");
        }
    }
    assert_eq!(winner.len(), rounds, "every setnx key has a winner");
    for (r, t) in winner {
        assert_eq!(e.get(format!("nx{r}").as_bytes()).unwrap().unwrap(), format!("t{t}").into_bytes());
    }
}

#[test]
fn contended_locks_never_have_two_holders_and_tokens_increase() {
    const LOCKS: usize = 3;
    let e = open(256);
    let lock_keys: Vec<Vec<u8>> = (0..LOCKS).map(|i| format!("lock{i}").into_bytes()).collect();
    let holders: Vec<AtomicU64> = (0..LOCKS).map(|_| AtomicU64::new(0)).collect();
    let any_overlap = AtomicBool::new(false);
    // The highest token granted per lock: a new holder's token must exceed it.
    let fences: Vec<AtomicU64> = (0..LOCKS).map(|_| AtomicU64::new(0)).collect();
    let grants = AtomicUsize::new(0);
    // Each thread runs until it has been granted a lock this many times.
    let target = scale(3_000);
    let start = Barrier::new(THREADS);
    let tokens: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (e, lock_keys, holders, fences, any_overlap, grants, start) =
                    (&e, &lock_keys, &holders, &fences, &any_overlap, &grants, &start);
                s.spawn(move || {
                    let me = t as u64 + 1;
                    let owner = format!("owner-{t}").into_bytes();
                    let mut rng = Rng::new(me * 7919);
                    let mut mine = Vec::new();
                    let mut last = 0u64;
                    let mut granted = 0;
                    start.wait();
                    while granted < target {
                        let l = rng.below(LOCKS);
                        let key = &lock_keys[l];
                        match e.lock(key, &owner, 60_000).unwrap() {
                            LockOutcome::Locked => {
                                // Not the holder: unlock/extend must not succeed for us.
                                let r = if rng.below(2) == 0 {
                                    e.unlock(key, &owner).unwrap()
                                } else {
                                    e.extend_lock(key, &owner, 60_000).unwrap()
                                };
                                assert_ne!(r, OwnerOutcome::Done, "a non-holder released or extended {l}");
                                // Let a preempted holder run.
                                std::thread::yield_now();
                            }
                            LockOutcome::Granted(tok) => {
                                let prev = holders[l].swap(me, Ordering::SeqCst);
                                if prev != 0 {
                                    any_overlap.store(true, Ordering::SeqCst);
                                    panic!("lock {l}: thread {me} granted while thread {prev} holds it");
                                }
                                assert!(tok > last, "thread {me}: token {tok} after {last}");
                                last = tok;
                                let before = fences[l].fetch_max(tok, Ordering::SeqCst);
                                assert!(tok > before, "lock {l}: token {tok} not above the previous holder's {before}");
                                mine.push(tok);
                                granted += 1;
                                grants.fetch_add(1, Ordering::Relaxed);
                                assert_eq!(e.get(key).unwrap().as_deref(), Some(&owner[..]), "the lock's value is its holder");
                                match rng.below(4) {
                                    0 => {
                                        // Re-lock: refresh with a new, larger token.
                                        let LockOutcome::Granted(t2) = e.lock(key, &owner, 60_000).unwrap() else {
                                            panic!("lock {l}: holder {me} refused its own re-lock");
                                        };
                                        assert!(t2 > last);
                                        last = t2;
                                        assert!(t2 > fences[l].fetch_max(t2, Ordering::SeqCst));
                                        mine.push(t2);
                                        grants.fetch_add(1, Ordering::Relaxed);
                                    }
                                    1 => assert_eq!(e.extend_lock(key, &owner, 60_000).unwrap(), OwnerOutcome::Done),
                                    2 => std::thread::yield_now(),
                                    _ => {}
                                }
                                assert_eq!(holders[l].load(Ordering::SeqCst), me);
                                holders[l].store(0, Ordering::SeqCst);
                                assert_eq!(e.unlock(key, &owner).unwrap(), OwnerOutcome::Done, "holder {me} could not unlock {l}");
                            }
                        }
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(!any_overlap.load(Ordering::SeqCst));
    let all: Vec<u64> = tokens.iter().flatten().copied().collect();
    assert_eq!(all.len(), grants.load(Ordering::Relaxed));
    let distinct: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "fencing tokens repeat across threads");
    assert_eq!(e.last_token(), *all.iter().max().unwrap());
    assert!(all.len() >= THREADS * target);
    assert_eq!(e.count(), 0, "every lock was released");
}

#[test]
fn mset_is_atomic_to_mget_readers() {
    for shards in [4, 256] {
        let e = open(shards);
        let keys: Vec<Vec<u8>> = (0..8).map(|i| format!("m{i}").into_bytes()).collect();
        let writes = scale(4_000);
        let min_reads = scale(2_000);
        let writers_left = AtomicUsize::new(3);
        let reads_done = AtomicUsize::new(0);
        let readers = THREADS - 3;
        let readers_left = AtomicUsize::new(readers);
        let start = Barrier::new(THREADS);
        let distinct_seen = std::sync::Mutex::new(HashSet::new());
        std::thread::scope(|s| {
            for w in 0..3u32 {
                let (e, keys, writers_left, reads_done, readers_left, start) =
                    (&e, &keys, &writers_left, &reads_done, &readers_left, &start);
                s.spawn(move || {
                    let _leaving = Leaving(writers_left);
                    let mut kr: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
                    if w == 1 {
                        kr.reverse(); // a different argument order must not deadlock or tear
                    }
                    start.wait();
                    // Keep writing until the readers have done their share, so
                    // that reads and writes really overlap.
                    let mut i = 0;
                    while i < writes
                        || (reads_done.load(Ordering::SeqCst) < readers * min_reads && readers_left.load(Ordering::SeqCst) > 0)
                    {
                        i += 1;
                        if w == 2 && i % 10 == 9 {
                            e.mdel(&kr).unwrap();
                            continue;
                        }
                        let v = format!("w{w}-{i}").into_bytes();
                        let vals: Vec<&[u8]> = kr.iter().map(|_| &v[..]).collect();
                        e.mset(&kr, &vals, 0).unwrap();
                    }
                });
            }
            for r in 0..readers {
                let (e, keys, writers_left, reads_done, readers_left, distinct_seen, start) =
                    (&e, &keys, &writers_left, &reads_done, &readers_left, &distinct_seen, &start);
                s.spawn(move || {
                    let _leaving = Leaving(readers_left);
                    let mut rng = Rng::new(r as u64 + 100);
                    let mut seen = HashSet::new();
                    start.wait();
                    while writers_left.load(Ordering::SeqCst) > 0 {
                        // All keys, or a random subset in random order.
                        let mut kr: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
                        if rng.below(2) == 0 {
                            for i in (1..kr.len()).rev() {
                                kr.swap(i, rng.below(i + 1));
                            }
                            kr.truncate(2 + rng.below(kr.len() - 1));
                        }
                        let got = e.mget(&kr).unwrap();
                        assert!(
                            got.iter().all(|v| *v == got[0]),
                            "shards {shards}: mget saw a mix of msets: {:?}",
                            got.iter().map(|v| v.as_deref().map(String::from_utf8_lossy)).collect::<Vec<_>>()
                        );
                        seen.insert(got[0].clone());
                        reads_done.fetch_add(1, Ordering::SeqCst);
                    }
                    distinct_seen.lock().unwrap().extend(seen);
                });
            }
        });
        // The readers overlapped the writers (otherwise the test proves nothing).
        assert!(distinct_seen.lock().unwrap().len() > 1, "readers saw only one state");
    }
}

#[test]
fn scan_during_concurrent_writes_returns_each_stable_key_once() {
    for shards in [1, 16, 256] {
        let e = open(shards);
        let stable = scale(8_000);
        let mut want: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for i in 0..stable {
            let (k, v) = (format!("s:{i:06}").into_bytes(), format!("stable-{i}").into_bytes());
            e.set(&k, &v, 0).unwrap();
            want.insert(k, v);
        }
        let scanners = AtomicUsize::new(2);
        std::thread::scope(|s| {
            // Writers churn keys next to the stable ones (same prefix, same shards)
            // and elsewhere, so tables grow, shrink and rehash during the scans.
            for w in 0..4u64 {
                let (e, scanners) = (&e, &scanners);
                s.spawn(move || {
                    let mut rng = Rng::new(w + 77);
                    while scanners.load(Ordering::SeqCst) > 0 {
                        let i = rng.below(stable);
                        let churn = format!("s:{i:06}-churn{w}").into_bytes();
                        match rng.below(6) {
                            0 | 1 => e.set(&churn, b"c", 0).unwrap(),
                            2 => {
                                e.delete(&churn).unwrap();
                            }
                            3 => {
                                e.incr(format!("s:ctr{w}-{}", i % 50).as_bytes(), 1).unwrap();
                            }
                            4 => {
                                let other = format!("t:{i}").into_bytes();
                                e.mset(&[&churn, &other], &[b"m", b"m"], 0).unwrap();
                            }
                            _ => {
                                e.mdel(&[&churn[..], format!("t:{i}").as_bytes()]).unwrap();
                            }
                        }
                    }
                });
            }
            for _ in 0..2 {
                let (e, scanners, want) = (&e, &scanners, &want);
                s.spawn(move || {
                    let _leaving = Leaving(scanners);
                    for _ in 0..2 {
                        let mut seen: HashSet<Vec<u8>> = HashSet::new();
                        let mut stable_seen = 0;
                        for (k, v) in e.scan(b"s:") {
                            assert!(k.starts_with(b"s:"), "scan returned {:?} outside the prefix", String::from_utf8_lossy(&k));
                            if let Some(w) = want.get(&k) {
                                assert_eq!(&v, w, "stable key {:?} has a wrong value", String::from_utf8_lossy(&k));
                                stable_seen += 1;
                            }
                            assert!(seen.insert(k.clone()), "shards {shards}: scan returned {:?} twice", String::from_utf8_lossy(&k));
                        }
                        assert_eq!(stable_seen, want.len(), "shards {shards}: scan missed stable keys");
                    }
                });
            }
        });
        assert!(e.scan(b"s:").filter(|(k, _)| want.contains_key(k)).count() == stable);
    }
}

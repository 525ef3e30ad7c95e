//! The engine against a simple model: a `HashMap` of key -> (value bytes,
//! absolute expiry) and a clock the test moves by hand (`Clock::manual`).
//!
//! The first half pins each rule of the contract with a small, named test;
//! the second half (`random_ops_match_model_*`) drives long seeded random
//! sequences of every operation on a small key space and compares every
//! result, and periodically the whole visible state, with the model.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dbkv::engine::{CasOutcome, Clock, Engine, LockOutcome, Options, OwnerOutcome, HARD_MAX_VALUE_BYTES, MAX_KEY_BYTES};
use dbkv::Error;

mod common;
use common::Rng;

const T0: u64 = 1_700_000_000_000;

/// An in-memory engine on a manual clock. The background sweeper is slowed
/// to once an hour so that what `sweep_expired` reclaims is deterministic.
fn open_with(max_value_bytes: u64, shards: u32) -> (Engine, Arc<AtomicU64>) {
    let (clock, cell) = Clock::manual(T0);
    let o = Options { clock, expiry_sweep_interval_ms: 3_600_000, max_value_bytes, shards, ..Options::default() };
    (Engine::open(o).expect("open"), cell)
}

fn open() -> (Engine, Arc<AtomicU64>) {
    open_with(64 << 20, 256)
}

fn advance(clock: &AtomicU64, ms: u64) {
    clock.fetch_add(ms, Ordering::Relaxed);
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: Result<T, Error>) {
    match r {
        Err(Error::InvalidArgument(_)) => {}
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[track_caller]
fn assert_too_large<T: std::fmt::Debug>(r: Result<T, Error>) {
    match r {
        Err(Error::TooLarge(_)) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

fn scan_sorted(e: &Engine, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut v: Vec<_> = e.scan(prefix).collect();
    let keys: HashSet<&Vec<u8>> = v.iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), v.len(), "scan returned a key twice");
    v.sort();
    v
}

fn granted(o: LockOutcome) -> u64 {
    match o {
        LockOutcome::Granted(t) => t,
        LockOutcome::Locked => panic!("expected a grant, got Locked"),
    }
}

// ---------------------------------------------------------------------------
// Keys and values: limits, and nothing changed on rejection.
// ---------------------------------------------------------------------------

/// Runs every keyed operation with `key` and checks each is rejected by `check`.
fn every_op_rejects_key(e: &Engine, key: &[u8], check: fn(Result<(), Error>)) {
    let unit = |r: Result<(), Error>| r;
    check(unit(e.set(key, b"v", 0)));
    check(e.get(key).map(drop));
    check(e.read(key, |_| ()).map(drop));
    check(e.exists(key).map(drop));
    check(e.delete(key).map(drop));
    check(e.incr(key, 1).map(drop));
    check(e.decr(key, 1).map(drop));
    check(e.setnx(key, b"v", 0).map(drop));
    check(e.cas(key, b"v", b"w", 0).map(drop));
    check(e.expire(key, 10).map(drop));
    check(e.persist(key).map(drop));
    check(e.ttl(key).map(drop));
    check(e.lock(key, b"owner", 10).map(drop));
    check(e.unlock(key, b"owner").map(drop));
    check(e.extend_lock(key, b"owner", 10).map(drop));
    check(e.mset(&[b"ok", key], &[b"1", b"2"], 0));
    check(e.mget(&[b"ok", key]).map(drop));
    check(e.mdel(&[b"ok", key]).map(drop));
}

#[test]
fn empty_key_is_invalid_argument_for_every_op() {
    let (e, _) = open();
    e.set(b"ok", b"before", 0).unwrap();
    every_op_rejects_key(&e, b"", |r| assert_invalid(r));
    assert_eq!(e.get(b"ok").unwrap().as_deref(), Some(&b"before"[..]), "a rejected mset/mdel changed nothing");
    assert_eq!(e.count(), 1);
}

#[test]
fn key_over_65535_bytes_is_too_large_for_every_op() {
    let (e, _) = open();
    let max = vec![b'k'; MAX_KEY_BYTES];
    assert_eq!(MAX_KEY_BYTES, 65_535);
    e.set(&max, b"longest", 0).unwrap();
    e.set(b"ok", b"before", 0).unwrap();
    assert_eq!(e.get(&max).unwrap().as_deref(), Some(&b"longest"[..]));
    assert!(e.exists(&max).unwrap());
    let over = vec![b'k'; MAX_KEY_BYTES + 1];
    every_op_rejects_key(&e, &over, |r| assert_too_large(r));
    assert_eq!(e.get(b"ok").unwrap().as_deref(), Some(&b"before"[..]));
    assert_eq!(e.get(&max).unwrap().as_deref(), Some(&b"longest"[..]));
    assert_eq!(e.count(), 2);
    let keys: Vec<Vec<u8>> = e.scan(b"").map(|(k, _)| k).collect();
    assert!(keys.iter().all(|k| k.len() <= MAX_KEY_BYTES));
    // A one-byte key and binary keys are fine.
    e.set(b"\x00", b"nul", 0).unwrap();
    e.set(b"\xff\xfe", b"bin", 0).unwrap();
    assert_eq!(e.get(b"\x00").unwrap().as_deref(), Some(&b"nul"[..]));
    assert_eq!(e.get(b"\xff\xfe").unwrap().as_deref(), Some(&b"bin"[..]));
}

#[test]
fn value_limit_is_max_value_bytes_and_rejection_changes_nothing() {
    let (e, clock) = open_with(100, 16);
    let ok = vec![b'v'; 100];
    let big = vec![b'v'; 101];
    e.set(b"k", &ok, 0).unwrap();
    e.set(b"t", b"old", 50).unwrap();
    assert_too_large(e.set(b"k", &big, 0));
    assert_too_large(e.set(b"t", &big, 0));
    assert_too_large(e.set(b"new", &big, 0));
    assert_too_large(e.setnx(b"new", &big, 0));
    assert_too_large(e.cas(b"t", b"old", &big, 0));
    assert_too_large(e.mset(&[b"a", b"b"], &[b"1", &big], 0));
    assert_too_large(e.lock(b"l", &big, 10));
    assert_eq!(e.get(b"k").unwrap(), Some(ok.clone()));
    assert_eq!(e.get(b"t").unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(e.ttl(b"t").unwrap(), Some(50), "a rejected set kept the TTL");
    assert_eq!(e.get(b"new").unwrap(), None);
    assert_eq!(e.get(b"a").unwrap(), None, "a rejected mset wrote none of its pairs");
    assert_eq!(e.get(b"l").unwrap(), None);
    assert_eq!(e.count(), 2);
    // An empty value is a value.
    e.set(b"empty", b"", 0).unwrap();
    assert_eq!(e.get(b"empty").unwrap(), Some(vec![]));
    assert!(e.exists(b"empty").unwrap());
    advance(&clock, 50);
    assert_eq!(e.get(b"t").unwrap(), None);
}

#[test]
fn default_value_limit_is_64_mib() {
    assert_eq!(Options::default().max_value_bytes, 64 << 20);
    let (e, _) = open();
    let mut v = vec![0u8; 64 << 20];
    e.set(b"big", &v, 0).unwrap();
    assert_eq!(e.read(b"big", |b| b.len()).unwrap(), Some(64 << 20));
    v.push(0);
    assert_too_large(e.set(b"big", &v, 0));
    assert_too_large(e.set(b"big2", &v, 0));
    assert_eq!(e.read(b"big", |b| b.len()).unwrap(), Some(64 << 20));
    assert!(!e.exists(b"big2").unwrap());
}

#[test]
fn max_value_bytes_hard_cap_is_1_gib() {
    assert_eq!(HARD_MAX_VALUE_BYTES, 1 << 30);
    let mut o = Options::default();
    o.set_max_value_bytes(1 << 30).unwrap();
    assert_eq!(o.max_value_bytes, 1 << 30);
    assert_invalid(o.set_max_value_bytes((1 << 30) + 1));
    assert_eq!(o.max_value_bytes, 1 << 30, "a rejected setter leaves the option unchanged");
    let o = Options { max_value_bytes: (1 << 30) + 1, ..Options::default() };
    assert!(matches!(Engine::open(o), Err(Error::InvalidArgument(_))), "open re-validates fields set directly");
    // A zero limit allows only empty values.
    let (e, _) = open_with(0, 1);
    e.set(b"k", b"", 0).unwrap();
    assert_too_large(e.set(b"k", b"x", 0));
}

// ---------------------------------------------------------------------------
// TTL and expiry.
// ---------------------------------------------------------------------------

#[test]
fn ttl_is_absolute_and_expires_at_the_deadline() {
    let (e, clock) = open();
    e.set(b"k", b"v", 100).unwrap();
    e.set(b"forever", b"v", 0).unwrap();
    assert_eq!(e.ttl(b"k").unwrap(), Some(100));
    assert_eq!(e.ttl(b"forever").unwrap(), Some(-1));
    advance(&clock, 40);
    assert_eq!(e.ttl(b"k").unwrap(), Some(60), "the deadline is absolute, not a countdown reset by reads");
    let _ = e.get(b"k").unwrap();
    advance(&clock, 59);
    assert_eq!(e.ttl(b"k").unwrap(), Some(1));
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    advance(&clock, 1);
    assert_eq!(e.get(b"k").unwrap(), None, "a key is gone at exactly now == deadline");
    assert_eq!(e.ttl(b"k").unwrap(), None);
    assert_eq!(e.ttl(b"forever").unwrap(), Some(-1));
    assert_eq!(e.ttl(b"never-set").unwrap(), None);
    // A TTL too far in the future is refused and changes nothing.
    assert_invalid(e.set(b"forever", b"w", u64::MAX));
    assert_invalid(e.expire(b"forever", u64::MAX));
    assert_eq!(e.get(b"forever").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(e.ttl(b"forever").unwrap(), Some(-1));
}

/// An engine holding `k` = "5" (and a live `other`) with `k` just expired.
fn with_expired_key() -> (Engine, Arc<AtomicU64>) {
    let (e, clock) = open();
    e.set(b"k", b"5", 10).unwrap();
    e.set(b"k2", b"owner-a", 10).unwrap();
    e.set(b"other", b"x", 0).unwrap();
    advance(&clock, 10);
    (e, clock)
}

#[test]
fn expired_key_is_absent_for_reads() {
    let (e, _) = with_expired_key();
    assert_eq!(e.get(b"k").unwrap(), None);
    assert_eq!(e.read(b"k", |b| b.to_vec()).unwrap(), None);
    assert!(!e.exists(b"k").unwrap());
    assert_eq!(e.ttl(b"k").unwrap(), None);
    assert_eq!(e.mget(&[b"k", b"other", b"k2"]).unwrap(), vec![None, Some(b"x".to_vec()), None]);
    assert_eq!(scan_sorted(&e, b""), vec![(b"other".to_vec(), b"x".to_vec())]);
    assert_eq!(scan_sorted(&e, b"k"), vec![]);
    assert_eq!(e.count(), 1, "count never counts expired keys, even before a sweep");
    assert_eq!(e.stats().keys, 1);
}

#[test]
fn expired_key_is_absent_for_writes() {
    // incr restarts at 0, without the old TTL.
    let (e, clock) = with_expired_key();
    assert_eq!(e.incr(b"k", 3).unwrap(), 3);
    assert_eq!(e.ttl(b"k").unwrap(), Some(-1));
    advance(&clock, 1000);
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"3"[..]));
    let (e, _) = with_expired_key();
    assert_eq!(e.decr(b"k", 3).unwrap(), -3);
    assert_eq!(e.ttl(b"k").unwrap(), Some(-1));

    // setnx succeeds, with its own TTL.
    let (e, _) = with_expired_key();
    assert!(e.setnx(b"k", b"new", 0).unwrap());
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(e.ttl(b"k").unwrap(), Some(-1));

    // cas finds nothing, even when `expected` equals the dead value.
    let (e, _) = with_expired_key();
    assert_eq!(e.cas(b"k", b"5", b"6", 0).unwrap(), CasOutcome::NotFound);
    assert_eq!(e.get(b"k").unwrap(), None);

    // expire / persist report absent and do not revive the key.
    let (e, _) = with_expired_key();
    assert!(!e.expire(b"k", 1000).unwrap());
    assert!(!e.expire(b"k", 0).unwrap());
    assert!(!e.persist(b"k").unwrap());
    assert_eq!(e.get(b"k").unwrap(), None);
    assert_eq!(e.count(), 1);

    // delete / mdel report absent.
    let (e, _) = with_expired_key();
    assert!(!e.delete(b"k").unwrap());
    assert_eq!(e.mdel(&[b"k", b"k2", b"other"]).unwrap(), 1);
    assert_eq!(e.count(), 0);

    // A lock whose key expired is grantable to anyone; unlock/extend see nothing.
    let (e, _) = with_expired_key();
    assert_eq!(e.unlock(b"k2", b"owner-a").unwrap(), OwnerOutcome::NotFound);
    assert_eq!(e.extend_lock(b"k2", b"owner-a", 100).unwrap(), OwnerOutcome::NotFound);
    let t = granted(e.lock(b"k2", b"owner-b", 100).unwrap());
    assert!(t > 0);
    assert_eq!(e.get(b"k2").unwrap().as_deref(), Some(&b"owner-b"[..]));
    assert!(matches!(e.lock(b"k", b"anyone", 5).unwrap(), LockOutcome::Granted(_)));

    // set over an expired key is a plain set.
    let (e, _) = with_expired_key();
    e.set(b"k", b"again", 0).unwrap();
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"again"[..]));
    assert_eq!(e.count(), 2);
}

#[test]
fn sweep_reclaims_expired_keys_and_count_ignores_them_before() {
    let (e, clock) = open_with(64 << 20, 8);
    for i in 0..100u32 {
        let ttl = if i % 2 == 0 { 10 + (i as u64 % 7) } else { 0 };
        e.set(format!("key{i}").as_bytes(), b"v", ttl).unwrap();
    }
    assert_eq!(e.count(), 100);
    assert_eq!(e.sweep_expired(), 0, "nothing has expired yet");
    advance(&clock, 12); // expires the TTLs 10, 11, 12
    let expired_now = (0..100u64).filter(|i| i % 2 == 0 && 10 + i % 7 <= 12).count();
    assert_eq!(e.count(), 100 - expired_now as u64);
    assert_eq!(e.sweep_expired(), expired_now);
    assert_eq!(e.count(), 100 - expired_now as u64);
    assert_eq!(e.sweep_expired(), 0);
    advance(&clock, 100);
    assert_eq!(e.count(), 50);
    assert_eq!(e.sweep_expired(), 50 - expired_now);
    assert_eq!(e.count(), 50);
    assert_eq!(e.sweep_expired(), 0);
    // Keys whose TTL was removed or replaced are not reclaimed.
    e.set(b"p", b"v", 5).unwrap();
    assert!(e.persist(b"p").unwrap());
    e.set(b"q", b"v", 5).unwrap();
    e.set(b"q", b"w", 0).unwrap();
    e.set(b"r", b"v", 5).unwrap();
    assert!(e.expire(b"r", 0).unwrap());
    advance(&clock, 10);
    assert_eq!(e.sweep_expired(), 0);
    assert_eq!(e.count(), 53);
}

#[test]
fn background_sweeper_reclaims_expired_keys() {
    let (clock, cell) = Clock::manual(T0);
    let o = Options { clock, expiry_sweep_interval_ms: 5, ..Options::default() };
    let e = Engine::open(o).unwrap();
    for i in 0..1000u32 {
        e.set(format!("key{i}").as_bytes(), b"v", 10).unwrap();
    }
    e.set(b"stay", b"v", 0).unwrap();
    advance(&cell, 10);
    assert_eq!(e.count(), 1);
    // Give the sweeper (every 5 ms) a second's worth of cycles; whatever it
    // reclaimed is no longer there for an explicit sweep to find.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let left = e.sweep_expired();
    assert_eq!(left, 0, "the background sweeper left {left} of 1000 expired keys after 1 s");
    assert_eq!(e.count(), 1);
    assert_eq!(e.get(b"stay").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn close_is_prompt_with_a_long_sweep_interval() {
    // Regression test: `expiry::run` used to wait on the condvar without
    // first checking the stop flag, so a stop that landed before the wait (a
    // handle closed right after open, or during a sweep cycle) was lost and
    // close/drop blocked for a whole `expiry_sweep_interval_ms` (here an
    // hour; 19-20 of 20 closes hung before the fix). Every other test here
    // also relies on a prompt close, with the same hour-long interval.
    // Each handle is opened and closed at once on its own thread; a close
    // that has not returned after 3 s is counted (and its thread abandoned).
    const HANDLES: usize = 20;
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..HANDLES {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let o = Options { expiry_sweep_interval_ms: 3_600_000, ..Options::default() };
            let e = Engine::open(o).unwrap();
            let _ = e.close();
            let _ = tx.send(());
        });
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut closed = 0;
    while closed < HANDLES {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if rx.recv_timeout(left).is_err() {
            break;
        }
        closed += 1;
    }
    assert_eq!(closed, HANDLES, "{} of {HANDLES} closes took over 3 s (lost wakeup in expiry::run)", HANDLES - closed);
}

// ---------------------------------------------------------------------------
// set / delete / incr / setnx / cas / expire.
// ---------------------------------------------------------------------------

#[test]
fn set_replaces_value_and_ttl() {
    let (e, clock) = open();
    e.set(b"k", b"one", 100).unwrap();
    e.set(b"k", b"two", 0).unwrap();
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"two"[..]));
    assert_eq!(e.ttl(b"k").unwrap(), Some(-1), "set without TTL removes the old TTL");
    e.set(b"k", b"three", 30).unwrap();
    assert_eq!(e.ttl(b"k").unwrap(), Some(30));
    e.set(b"k", b"four!", 500).unwrap(); // same length: replaced in place
    assert_eq!(e.ttl(b"k").unwrap(), Some(500));
    advance(&clock, 100);
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"four!"[..]));
    e.set(b"k", b"a much longer value than before", 0).unwrap();
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"a much longer value than before"[..]));
    e.set(b"k", b"", 0).unwrap();
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b""[..]));
    assert_eq!(e.count(), 1);
}

#[test]
fn delete_reports_whether_the_key_existed() {
    let (e, _) = open();
    assert!(!e.delete(b"k").unwrap());
    e.set(b"k", b"v", 0).unwrap();
    assert!(e.delete(b"k").unwrap());
    assert!(!e.delete(b"k").unwrap());
    assert_eq!(e.get(b"k").unwrap(), None);
    assert_eq!(e.count(), 0);
    e.incr(b"c", 1).unwrap();
    assert!(e.delete(b"c").unwrap());
    assert_eq!(e.incr(b"c", 1).unwrap(), 1, "a deleted counter restarts at 0");
}

#[test]
fn incr_decr_on_missing_and_existing_keys() {
    let (e, _) = open();
    assert_eq!(e.incr(b"c", 5).unwrap(), 5);
    assert_eq!(e.incr(b"c", -7).unwrap(), -2);
    assert_eq!(e.decr(b"c", 3).unwrap(), -5);
    assert_eq!(e.decr(b"c", -6).unwrap(), 1);
    assert_eq!(e.incr(b"c", 0).unwrap(), 1);
    assert_eq!(e.get(b"c").unwrap().as_deref(), Some(&b"1"[..]), "a counter reads as ASCII text");
    assert_eq!(e.decr(b"d", 4).unwrap(), -4);
    assert_eq!(e.get(b"d").unwrap().as_deref(), Some(&b"-4"[..]));
    assert_eq!(e.mget(&[b"c", b"d"]).unwrap(), vec![Some(b"1".to_vec()), Some(b"-4".to_vec())]);
    assert_eq!(scan_sorted(&e, b""), vec![(b"c".to_vec(), b"1".to_vec()), (b"d".to_vec(), b"-4".to_vec())]);
    // Text values that are canonical integers count.
    e.set(b"t", b"41", 0).unwrap();
    assert_eq!(e.incr(b"t", 1).unwrap(), 42);
    e.set(b"t", b"-9223372036854775808", 0).unwrap();
    assert_eq!(e.incr(b"t", 1).unwrap(), i64::MIN + 1);
    e.set(b"t", b"0", 0).unwrap();
    assert_eq!(e.decr(b"t", 1).unwrap(), -1);
    // A counter can be overwritten by bytes and back.
    e.set(b"c", b"hello", 0).unwrap();
    assert_eq!(e.get(b"c").unwrap().as_deref(), Some(&b"hello"[..]));
    assert_eq!(e.incr(b"c", 1), Err(Error::NotInteger));
}

#[test]
fn incr_rejects_non_canonical_integers_and_changes_nothing() {
    let (e, _) = open();
    let bad: &[&[u8]] = &[
        b"", b"-", b"+1", b"01", b"00", b"-0", b"-01", b" 1", b"1 ", b"1.0", b"1e3", b"0x10", b"abc", b"12a",
        b"9223372036854775808", b"-9223372036854775809", b"99999999999999999999", b"\x00", "\u{661}".as_bytes(),
    ];
    for &v in bad {
        e.set(b"k", v, 1000).unwrap();
        assert_eq!(e.incr(b"k", 1), Err(Error::NotInteger), "incr of {:?}", String::from_utf8_lossy(v));
        assert_eq!(e.decr(b"k", 1), Err(Error::NotInteger), "decr of {:?}", String::from_utf8_lossy(v));
        assert_eq!(e.get(b"k").unwrap().as_deref(), Some(v));
        assert_eq!(e.ttl(b"k").unwrap(), Some(1000));
    }
}

#[test]
fn incr_overflow_is_an_error_and_changes_nothing() {
    let (e, _) = open();
    e.set(b"max", b"9223372036854775807", 0).unwrap();
    assert_eq!(e.incr(b"max", 1), Err(Error::Overflow));
    assert_eq!(e.decr(b"max", -1), Err(Error::Overflow));
    assert_eq!(e.get(b"max").unwrap().as_deref(), Some(&b"9223372036854775807"[..]));
    assert_eq!(e.incr(b"max", 0).unwrap(), i64::MAX);
    assert_eq!(e.incr(b"max", 1), Err(Error::Overflow), "and the stored counter overflows too");
    assert_eq!(e.get(b"max").unwrap().as_deref(), Some(&b"9223372036854775807"[..]));

    assert_eq!(e.incr(b"min", i64::MIN).unwrap(), i64::MIN);
    assert_eq!(e.decr(b"min", 1), Err(Error::Overflow));
    assert_eq!(e.incr(b"min", -1), Err(Error::Overflow));
    assert_eq!(e.incr(b"min", i64::MIN), Err(Error::Overflow));
    assert_eq!(e.get(b"min").unwrap().as_deref(), Some(&b"-9223372036854775808"[..]));

    // 0 - i64::MIN does not fit: a missing key is 0 and stays missing.
    assert_eq!(e.decr(b"zero", i64::MIN), Err(Error::Overflow));
    assert_eq!(e.get(b"zero").unwrap(), None);
    assert_eq!(e.incr(b"zero", i64::MAX).unwrap(), i64::MAX);
    assert_eq!(e.decr(b"zero", i64::MAX).unwrap(), 0);
    assert_eq!(e.decr(b"zero", i64::MAX).unwrap(), -i64::MAX);
    assert_eq!(e.decr(b"zero", 1).unwrap(), i64::MIN);
    assert_eq!(e.decr(b"zero", 1), Err(Error::Overflow));
    assert_eq!(e.count(), 3);
}

#[test]
fn incr_keeps_the_ttl() {
    let (e, clock) = open();
    e.set(b"c", b"10", 100).unwrap();
    advance(&clock, 30);
    assert_eq!(e.incr(b"c", 1).unwrap(), 11);
    assert_eq!(e.ttl(b"c").unwrap(), Some(70));
    advance(&clock, 69);
    assert_eq!(e.decr(b"c", 2).unwrap(), 9);
    assert_eq!(e.ttl(b"c").unwrap(), Some(1));
    advance(&clock, 1);
    assert_eq!(e.get(b"c").unwrap(), None);
    assert_eq!(e.incr(b"c", 1).unwrap(), 1);
    assert_eq!(e.ttl(b"c").unwrap(), Some(-1));
    // expire on a counter, then incr keeps it.
    assert!(e.expire(b"c", 50).unwrap());
    assert_eq!(e.incr(b"c", 1).unwrap(), 2);
    assert_eq!(e.ttl(b"c").unwrap(), Some(50));
}

#[test]
fn setnx_stores_only_when_absent() {
    let (e, clock) = open();
    assert!(e.setnx(b"k", b"first", 20).unwrap());
    assert!(!e.setnx(b"k", b"second", 0).unwrap());
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"first"[..]));
    assert_eq!(e.ttl(b"k").unwrap(), Some(20), "a refused setnx leaves the TTL");
    advance(&clock, 20);
    assert!(e.setnx(b"k", b"third", 0).unwrap());
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"third"[..]));
    assert_eq!(e.ttl(b"k").unwrap(), Some(-1));
    e.incr(b"n", 1).unwrap();
    assert!(!e.setnx(b"n", b"x", 0).unwrap());
    assert_eq!(e.get(b"n").unwrap().as_deref(), Some(&b"1"[..]));
}

#[test]
fn cas_compares_bytes_and_counters_by_their_text() {
    let (e, clock) = open();
    assert_eq!(e.cas(b"k", b"", b"x", 0).unwrap(), CasOutcome::NotFound);
    assert_eq!(e.get(b"k").unwrap(), None);
    e.set(b"k", b"abc", 100).unwrap();
    assert_eq!(e.cas(b"k", b"ab", b"x", 0).unwrap(), CasOutcome::Mismatch);
    assert_eq!(e.cas(b"k", b"abcd", b"x", 0).unwrap(), CasOutcome::Mismatch);
    assert_eq!(e.cas(b"k", b"ABC", b"x", 0).unwrap(), CasOutcome::Mismatch);
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"abc"[..]));
    assert_eq!(e.ttl(b"k").unwrap(), Some(100), "a mismatch leaves the TTL");
    assert_eq!(e.cas(b"k", b"abc", b"def", 0).unwrap(), CasOutcome::Swapped);
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"def"[..]));
    assert_eq!(e.ttl(b"k").unwrap(), Some(-1));
    assert_eq!(e.cas(b"k", b"def", b"ghi", 40).unwrap(), CasOutcome::Swapped);
    assert_eq!(e.ttl(b"k").unwrap(), Some(40));
    advance(&clock, 40);
    assert_eq!(e.cas(b"k", b"ghi", b"jkl", 0).unwrap(), CasOutcome::NotFound);

    // Counters compare by their ASCII text.
    assert_eq!(e.incr(b"n", -7).unwrap(), -7);
    assert_eq!(e.cas(b"n", &(-7i64).to_ne_bytes(), b"x", 0).unwrap(), CasOutcome::Mismatch);
    assert_eq!(e.cas(b"n", b"-07", b"x", 0).unwrap(), CasOutcome::Mismatch);
    assert_eq!(e.cas(b"n", b"7", b"x", 0).unwrap(), CasOutcome::Mismatch);
    assert_eq!(e.cas(b"n", b"-7", b"100", 0).unwrap(), CasOutcome::Swapped);
    assert_eq!(e.incr(b"n", 1).unwrap(), 101);
    // Empty values compare too.
    e.set(b"empty", b"", 0).unwrap();
    assert_eq!(e.cas(b"empty", b"", b"full", 0).unwrap(), CasOutcome::Swapped);
}

#[test]
fn expire_persist_and_ttl() {
    let (e, clock) = open();
    assert!(!e.expire(b"k", 10).unwrap());
    assert!(!e.persist(b"k").unwrap());
    assert_eq!(e.ttl(b"k").unwrap(), None);
    e.set(b"k", b"v", 0).unwrap();
    assert_eq!(e.ttl(b"k").unwrap(), Some(-1));
    assert!(e.persist(b"k").unwrap(), "persist on a key without TTL still reports it present");
    assert!(e.expire(b"k", 100).unwrap());
    assert_eq!(e.ttl(b"k").unwrap(), Some(100));
    advance(&clock, 10);
    assert!(e.expire(b"k", 20).unwrap(), "expire can shorten");
    assert_eq!(e.ttl(b"k").unwrap(), Some(20));
    assert!(e.expire(b"k", 0).unwrap(), "expire 0 removes the TTL");
    assert_eq!(e.ttl(b"k").unwrap(), Some(-1));
    assert!(e.expire(b"k", 5).unwrap());
    assert!(e.persist(b"k").unwrap());
    assert_eq!(e.ttl(b"k").unwrap(), Some(-1));
    advance(&clock, 1000);
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    assert!(e.expire(b"k", 1).unwrap());
    advance(&clock, 1);
    assert_eq!(e.get(b"k").unwrap(), None);
    assert!(!e.persist(b"k").unwrap());
}

#[test]
fn mset_is_all_or_nothing_mget_and_mdel_count() {
    let (e, clock) = open_with(64 << 20, 4);
    e.mset(&[b"a", b"b", b"c"], &[b"1", b"2", b"3"], 0).unwrap();
    assert_eq!(e.mget(&[b"c", b"x", b"a", b"a"]).unwrap(), vec![Some(b"3".to_vec()), None, Some(b"1".to_vec()), Some(b"1".to_vec())]);
    assert_eq!(e.mget(&[]).unwrap(), Vec::<Option<Vec<u8>>>::new());
    e.mset(&[b"a", b"t"], &[b"10", b"20"], 50).unwrap();
    assert_eq!(e.ttl(b"a").unwrap(), Some(50));
    assert_eq!(e.ttl(b"t").unwrap(), Some(50));
    assert_eq!(e.ttl(b"b").unwrap(), Some(-1));
    // Rejections write nothing.
    assert_invalid(e.mset(&[b"a", b"b"], &[b"x"], 0));
    assert_invalid(e.mset(&[b"a", b""], &[b"x", b"y"], 0));
    assert_too_large(e.mset(&[b"a", &vec![b'k'; 65_536]], &[b"x", b"y"], 0));
    assert_invalid(e.mset(&[b"a"], &[b"x"], u64::MAX));
    assert_eq!(e.mget(&[b"a", b"b"]).unwrap(), vec![Some(b"10".to_vec()), Some(b"2".to_vec())]);
    e.mset(&[], &[], 0).unwrap();
    assert_eq!(e.count(), 4);
    advance(&clock, 50);
    assert_eq!(e.mget(&[b"a", b"b", b"t"]).unwrap(), vec![None, Some(b"2".to_vec()), None]);
    assert_eq!(e.mdel(&[b"a", b"b", b"c", b"t", b"nope"]).unwrap(), 2, "only live keys count");
    assert_eq!(e.count(), 0);
    assert_eq!(e.mdel(&[]).unwrap(), 0);
    assert_eq!(e.mdel(&[b"b"]).unwrap(), 0);
}

#[test]
fn mset_over_many_shards() {
    let (e, _) = open_with(64 << 20, 256);
    let keys: Vec<Vec<u8>> = (0..500).map(|i| format!("key-{i}").into_bytes()).collect();
    let vals: Vec<Vec<u8>> = (0..500).map(|i| format!("val-{i}").into_bytes()).collect();
    let kr: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    let vr: Vec<&[u8]> = vals.iter().map(|v| &v[..]).collect();
    e.mset(&kr, &vr, 0).unwrap();
    let got = e.mget(&kr).unwrap();
    assert!(got.iter().zip(&vals).all(|(g, v)| g.as_ref() == Some(v)));
    assert_eq!(e.count(), 500);
    assert_eq!(e.mdel(&kr[..250]).unwrap(), 250);
    assert_eq!(e.count(), 250);
}

// ---------------------------------------------------------------------------
// Locks.
// ---------------------------------------------------------------------------

#[test]
fn lock_value_is_owner_and_relock_refreshes_with_a_new_token() {
    let (e, clock) = open();
    let t1 = granted(e.lock(b"L", b"alice", 100).unwrap());
    assert!(t1 >= 1);
    assert_eq!(e.last_token(), t1);
    assert_eq!(e.get(b"L").unwrap().as_deref(), Some(&b"alice"[..]), "the lock's value is its owner");
    assert_eq!(e.ttl(b"L").unwrap(), Some(100));
    advance(&clock, 60);
    let t2 = granted(e.lock(b"L", b"alice", 100).unwrap());
    assert!(t2 > t1, "a refresh issues a new, larger token");
    assert_eq!(e.ttl(b"L").unwrap(), Some(100), "a refresh resets the TTL to now + ttl");
    assert_eq!(e.lock(b"L", b"bob", 100).unwrap(), LockOutcome::Locked);
    assert_eq!(e.last_token(), t2, "a refused lock issues no token");
    assert_eq!(e.get(b"L").unwrap().as_deref(), Some(&b"alice"[..]));
    assert_eq!(e.ttl(b"L").unwrap(), Some(100));
    advance(&clock, 100);
    let t3 = granted(e.lock(b"L", b"bob", 10).unwrap());
    assert!(t3 > t2, "an expired lock is grantable to another owner");
    assert_eq!(e.get(b"L").unwrap().as_deref(), Some(&b"bob"[..]));
    // Tokens increase across all keys.
    let t4 = granted(e.lock(b"M", b"carol", 10).unwrap());
    let t5 = granted(e.lock(b"L", b"bob", 10).unwrap());
    assert!(t3 < t4 && t4 < t5);
    // A plain value that equals the owner counts as held by that owner.
    e.set(b"P", b"dave", 0).unwrap();
    assert_eq!(e.lock(b"P", b"erin", 10).unwrap(), LockOutcome::Locked);
    assert!(granted(e.lock(b"P", b"dave", 10).unwrap()) > t5);
    assert_eq!(e.ttl(b"P").unwrap(), Some(10));
}

#[test]
fn unlock_and_extend_check_the_owner_and_change_nothing_otherwise() {
    let (e, clock) = open();
    assert_eq!(e.unlock(b"L", b"alice").unwrap(), OwnerOutcome::NotFound);
    assert_eq!(e.extend_lock(b"L", b"alice", 10).unwrap(), OwnerOutcome::NotFound);
    assert_eq!(e.get(b"L").unwrap(), None, "extend on a missing lock creates nothing");
    granted(e.lock(b"L", b"alice", 100).unwrap());
    advance(&clock, 30);
    assert_eq!(e.unlock(b"L", b"bob").unwrap(), OwnerOutcome::NotOwner);
    assert_eq!(e.extend_lock(b"L", b"bob", 1000).unwrap(), OwnerOutcome::NotOwner);
    assert_eq!(e.unlock(b"L", b"alic").unwrap(), OwnerOutcome::NotOwner);
    assert_eq!(e.get(b"L").unwrap().as_deref(), Some(&b"alice"[..]));
    assert_eq!(e.ttl(b"L").unwrap(), Some(70));
    // extend sets the expiry to now + ttl, shorter or longer.
    assert_eq!(e.extend_lock(b"L", b"alice", 500).unwrap(), OwnerOutcome::Done);
    assert_eq!(e.ttl(b"L").unwrap(), Some(500));
    assert_eq!(e.extend_lock(b"L", b"alice", 5).unwrap(), OwnerOutcome::Done);
    assert_eq!(e.ttl(b"L").unwrap(), Some(5));
    let before = e.last_token();
    assert_eq!(e.extend_lock(b"L", b"alice", 50).unwrap(), OwnerOutcome::Done);
    assert_eq!(e.last_token(), before, "extend issues no token");
    assert_eq!(e.unlock(b"L", b"alice").unwrap(), OwnerOutcome::Done);
    assert_eq!(e.get(b"L").unwrap(), None);
    assert_eq!(e.unlock(b"L", b"alice").unwrap(), OwnerOutcome::NotFound);
    assert!(matches!(e.lock(b"L", b"bob", 10).unwrap(), LockOutcome::Granted(_)));
    // Expired: NotFound for the old owner, nothing revived.
    advance(&clock, 10);
    assert_eq!(e.extend_lock(b"L", b"bob", 10).unwrap(), OwnerOutcome::NotFound);
    assert_eq!(e.unlock(b"L", b"bob").unwrap(), OwnerOutcome::NotFound);
    assert_eq!(e.count(), 0);
}

#[test]
fn lock_arguments_are_checked() {
    let (e, _) = open_with(8, 4);
    assert_invalid(e.lock(b"L", b"alice", 0));
    assert_invalid(e.lock(b"L", b"", 10));
    assert_too_large(e.lock(b"L", b"123456789", 10));
    assert_invalid(e.lock(b"L", b"alice", u64::MAX));
    assert_eq!(e.last_token(), 0, "no token for a rejected call");
    assert_eq!(e.count(), 0);
    granted(e.lock(b"L", b"alice", 10).unwrap());
    assert_invalid(e.extend_lock(b"L", b"alice", 0));
    assert_invalid(e.extend_lock(b"L", b"", 10));
    assert_invalid(e.unlock(b"L", b""));
    assert_eq!(e.ttl(b"L").unwrap(), Some(10));
    assert_eq!(e.get(b"L").unwrap().as_deref(), Some(&b"alice"[..]));
}

// ---------------------------------------------------------------------------
// Scan.
// ---------------------------------------------------------------------------

#[test]
fn scan_returns_each_live_key_with_the_prefix_once() {
    for shards in [1, 16, 256] {
        let (e, clock) = open_with(64 << 20, shards);
        let mut want = Vec::new();
        for i in 0..300u32 {
            let k = format!("user:{i:04}").into_bytes();
            let v = format!("v{i}").into_bytes();
            e.set(&k, &v, 0).unwrap();
            want.push((k, v));
        }
        for i in 0..50u32 {
            e.set(format!("user:tmp{i}").as_bytes(), b"t", 5).unwrap();
            e.set(format!("usex:{i}").as_bytes(), b"x", 0).unwrap();
        }
        e.set(b"user", b"short", 0).unwrap();
        e.incr(b"user:counter", 9).unwrap();
        want.push((b"user:counter".to_vec(), b"9".to_vec()));
        want.sort();
        advance(&clock, 5);
        assert_eq!(scan_sorted(&e, b"user:"), want, "shards {shards}");
        assert_eq!(scan_sorted(&e, b"user:0001"), vec![(b"user:0001".to_vec(), b"v1".to_vec())]);
        assert_eq!(scan_sorted(&e, b"user:00"), want[..100].to_vec());
        assert_eq!(scan_sorted(&e, b"nothing"), vec![]);
        assert_eq!(scan_sorted(&e, b"").len(), 300 + 50 + 1 + 1);
        assert_eq!(scan_sorted(&e, b"user").len(), 302);
        assert_eq!(e.count(), 352);
    }
}

// ---------------------------------------------------------------------------
// Randomized: long seeded sequences compared with the model.
// ---------------------------------------------------------------------------


const MAX_VALUE: usize = 24;
const KEYS: &[&[u8]] = &[b"a", b"ab", b"abc", b"b", b"ba", b"c", b"cnt", b"lock", b"\x00", b"\xff\x01"];
const PREFIXES: &[&[u8]] = &[b"", b"a", b"ab", b"abc", b"abcd", b"b", b"c", b"l", b"\x00", b"\xff", b"z"];
const VALUES: &[&[u8]] = &[
    b"", b"v", b"w", b"o1", b"o2", b"0", b"1", b"-1", b"42", b"-42",
    b"9223372036854775807", b"9223372036854775806", b"-9223372036854775808", b"-9223372036854775807",
    b"01", b"+1", b"-0", b" 7", b"9223372036854775808", b"1e3",
];
const OWNERS: &[&[u8]] = &[b"o1", b"o2", b"o3", b"v"];
const DELTAS: &[i64] = &[0, 1, -1, 2, 7, -13, 1000, i64::MAX, i64::MIN, i64::MAX - 1, i64::MIN + 1, 1 << 62];

/// Outcomes, engine and model alike, in one comparable type.
#[derive(Debug, PartialEq)]
enum R {
    Unit,
    Bool(bool),
    Val(Option<Vec<u8>>),
    Int(i64),
    Ttl(Option<i64>),
    Cas(CasOutcome),
    /// A grant's token is checked separately (strictly increasing).
    Granted,
    Locked,
    Owner(OwnerOutcome),
    Vals(Vec<Option<Vec<u8>>>),
    N(usize),
    Pairs(Vec<(Vec<u8>, Vec<u8>)>),
    Err(Ek),
}

#[derive(Debug, PartialEq, Clone, Copy)]
enum Ek {
    Invalid,
    TooLarge,
    NotInteger,
    Overflow,
    Other,
}

fn ek(e: &Error) -> Ek {
    match e {
        Error::InvalidArgument(_) => Ek::Invalid,
        Error::TooLarge(_) => Ek::TooLarge,
        Error::NotInteger => Ek::NotInteger,
        Error::Overflow => Ek::Overflow,
        _ => Ek::Other,
    }
}

fn r<T>(res: Result<T, Error>, f: impl FnOnce(T) -> R) -> R {
    match res {
        Ok(v) => f(v),
        Err(e) => R::Err(ek(&e)),
    }
}

/// The reference: key -> (value as readers see it, absolute expiry or 0).
struct Model {
    map: HashMap<Vec<u8>, (Vec<u8>, u64)>,
    now: u64,
    last_token: u64,
}

/// The model's own definition of a canonical integer: the text is exactly
/// how Rust prints the number it parses to.
fn canonical(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    let n: i64 = s.parse().ok()?;
    (n.to_string() == s).then_some(n)
}

impl Model {
    fn live(&self, k: &[u8]) -> Option<&(Vec<u8>, u64)> {
        self.map.get(k).filter(|(_, exp)| *exp == 0 || *exp > self.now)
    }
    fn deadline(&self, ttl: u64) -> u64 {
        if ttl == 0 { 0 } else { self.now + ttl }
    }
    fn key_err(k: &[u8]) -> Option<R> {
        if k.is_empty() {
            Some(R::Err(Ek::Invalid))
        } else if k.len() > MAX_KEY_BYTES {
            Some(R::Err(Ek::TooLarge))
        } else {
            None
        }
    }
    fn val_err(v: &[u8]) -> Option<R> {
        (v.len() > MAX_VALUE).then_some(R::Err(Ek::TooLarge))
    }
    fn live_pairs(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut v: Vec<_> = self
            .map
            .keys()
            .filter(|k| k.starts_with(prefix))
            .filter_map(|k| self.live(k).map(|(val, _)| (k.clone(), val.clone())))
            .collect();
        v.sort();
        v
    }
    fn ttl_of(&self, k: &[u8]) -> Option<i64> {
        self.live(k).map(|&(_, exp)| if exp == 0 { -1 } else { (exp - self.now) as i64 })
    }
}

struct Harness {
    e: Engine,
    clock: Arc<AtomicU64>,
    m: Model,
    rng: Rng,
    long_key: Vec<u8>,
    seed: u64,
    step: usize,
    /// How often each (operation, outcome) pair happened, to prove the
    /// random sequences reach the interesting cases.
    seen: HashMap<String, usize>,
}

/// Outcomes every seed's run must have produced at least once.
const MUST_SEE: &[&str] = &[
    "set Unit", "set Err(TooLarge)", "set Err(Invalid)", "get Val(Some", "get Val(None)", "exists Bool(true)",
    "delete Bool(true)", "delete Bool(false)", "incr Int", "decr Int", "incr Err(NotInteger)", "Err(Overflow)",
    "setnx Bool(true)", "setnx Bool(false)", "cas Cas(Swapped)", "cas Cas(Mismatch)", "cas Cas(NotFound)",
    "expire Bool(true)", "expire Bool(false)", "persist Bool(true)", "ttl Ttl(Some(-1))", "ttl Ttl(None)",
    "mset Unit", "mset Err(Invalid)", "mget Vals", "mdel N", "lock Granted", "lock Locked", "lock Err(Invalid)",
    "lock Err(TooLarge)", "unlock Owner(Done)", "unlock Owner(NotOwner)", "unlock Owner(NotFound)",
    "extend_lock Owner(Done)", "extend_lock Owner(NotOwner)", "extend_lock Owner(NotFound)",
    "sweep_expired N(1)", "count N", "scan Pairs([(",
];

impl Harness {
    fn new(seed: u64) -> Harness {
        let shards = [1, 4, 256][(seed % 3) as usize];
        let (e, clock) = open_with(MAX_VALUE as u64, shards);
        Harness {
            e,
            clock,
            m: Model { map: HashMap::new(), now: T0, last_token: 0 },
            rng: Rng::new(seed),
            long_key: vec![b'k'; MAX_KEY_BYTES + 1],
            seed,
            step: 0,
            seen: HashMap::new(),
        }
    }

    /// A key, now and then an invalid one (empty or too long).
    fn key(&mut self, allow_bad: bool) -> Vec<u8> {
        if allow_bad && self.rng.chance(3) {
            if self.rng.chance(50) { Vec::new() } else { self.long_key.clone() }
        } else {
            self.rng.pick(KEYS).to_vec()
        }
    }

    /// A value, now and then random bytes (some over the limit).
    fn value(&mut self, allow_bad: bool) -> Vec<u8> {
        if self.rng.chance(10) {
            let max = if allow_bad { MAX_VALUE + 6 } else { MAX_VALUE };
            let n = self.rng.below(max + 1);
            (0..n).map(|_| b"0123456789-+ abxyz\x00\xff"[self.rng.below(20)]).collect()
        } else {
            self.rng.pick(VALUES).to_vec()
        }
    }

    /// A value that sits next to a counter limit, to exercise overflow.
    fn near_limit(&mut self) -> Vec<u8> {
        let off = self.rng.below(4) as i64;
        let n = if self.rng.chance(50) { i64::MAX - off } else { i64::MIN + off };
        n.to_string().into_bytes()
    }

    fn ttl(&mut self) -> u64 {
        if self.rng.chance(35) { 0 } else { 1 + self.rng.below(30) as u64 }
    }

    fn distinct_keys(&mut self, n: usize) -> Vec<Vec<u8>> {
        let mut pool: Vec<&[u8]> = KEYS.to_vec();
        for i in (1..pool.len()).rev() {
            let j = self.rng.below(i + 1);
            pool.swap(i, j);
        }
        pool[..n].iter().map(|k| k.to_vec()).collect()
    }

    fn check(&self, what: &str, got: R, want: R) {
        assert_eq!(got, want, "seed {} step {}: {}", self.seed, self.step, what);
    }

    fn tally(&mut self, what: &str, outcome: &R) {
        let mut s = format!("{what} {outcome:?}");
        s.truncate(60);
        *self.seen.entry(s).or_default() += 1;
    }

    /// Compares the whole visible state: scan, count, and every key's reads.
    fn check_all(&self) {
        let mut got: Vec<_> = self.e.scan(b"").collect();
        let distinct: HashSet<&Vec<u8>> = got.iter().map(|(k, _)| k).collect();
        assert_eq!(distinct.len(), got.len(), "seed {} step {}: scan repeated a key", self.seed, self.step);
        got.sort();
        self.check("full scan", R::Pairs(got), R::Pairs(self.m.live_pairs(b"")));
        self.check("count", R::N(self.e.count() as usize), R::N(self.m.live_pairs(b"").len()));
        for k in KEYS {
            self.check("get", R::Val(self.e.get(k).unwrap()), R::Val(self.m.live(k).map(|(v, _)| v.clone())));
            self.check("ttl", R::Ttl(self.e.ttl(k).unwrap()), R::Ttl(self.m.ttl_of(k)));
            self.check("exists", R::Bool(self.e.exists(k).unwrap()), R::Bool(self.m.live(k).is_some()));
        }
    }

    fn run(&mut self, steps: usize) {
        for step in 0..steps {
            self.step = step;
            self.one();
            if step % 64 == 63 {
                self.check_all();
            }
        }
        self.check_all();
        // Everything still live expires eventually; a sweep then empties the engine
        // of expired keys and leaves exactly the keys without TTL.
        let far = self.m.map.values().map(|&(_, exp)| exp).max().unwrap_or(0).max(self.m.now);
        self.clock.store(far, Ordering::Relaxed);
        self.m.now = far;
        self.check_all();
        let expired = self.m.map.values().filter(|&&(_, exp)| exp != 0 && exp <= far).count();
        self.check("final sweep", R::N(self.e.sweep_expired()), R::N(expired));
        for must in MUST_SEE {
            assert!(
                self.seen.keys().any(|k| k.contains(must)),
                "seed {}: the random run never produced `{must}`; seen: {:?}",
                self.seed,
                { let mut v: Vec<_> = self.seen.keys().collect(); v.sort(); v }
            );
        }
    }

    fn one(&mut self) {
        let op = self.rng.below(100);
        let (what, got, want): (&str, R, R) = match op {
            // set, with and without TTL; sometimes a value near the counter limits.
            0..=13 => {
                let k = self.key(true);
                let v = if self.rng.chance(15) { self.near_limit() } else { self.value(Model::key_err(&k).is_none()) };
                let ttl = self.ttl();
                let got = r(self.e.set(&k, &v, ttl), |()| R::Unit);
                let want = Model::key_err(&k).or_else(|| Model::val_err(&v)).unwrap_or_else(|| {
                    let exp = self.m.deadline(ttl);
                    self.m.map.insert(k.clone(), (v.clone(), exp));
                    R::Unit
                });
                ("set", got, want)
            }
            14..=23 => {
                let k = self.key(true);
                let got = r(self.e.get(&k), R::Val);
                let want = Model::key_err(&k).unwrap_or_else(|| R::Val(self.m.live(&k).map(|(v, _)| v.clone())));
                ("get", got, want)
            }
            24..=25 => {
                let k = self.key(true);
                let got = r(self.e.exists(&k), R::Bool);
                let want = Model::key_err(&k).unwrap_or_else(|| R::Bool(self.m.live(&k).is_some()));
                ("exists", got, want)
            }
            26..=30 => {
                let k = self.key(true);
                let got = r(self.e.delete(&k), R::Bool);
                let want = Model::key_err(&k).unwrap_or_else(|| {
                    // An expired entry stays until a sweep reclaims it.
                    let was = self.m.live(&k).is_some();
                    if was {
                        self.m.map.remove(&k);
                    }
                    R::Bool(was)
                });
                ("delete", got, want)
            }
            31..=42 => {
                let k = self.key(true);
                let d = if self.rng.chance(60) { *self.rng.pick(&DELTAS[..7]) } else { *self.rng.pick(DELTAS) };
                let up = self.rng.chance(50);
                let got = r(if up { self.e.incr(&k, d) } else { self.e.decr(&k, d) }, R::Int);
                let want = Model::key_err(&k).unwrap_or_else(|| {
                    let (cur, exp) = match self.m.live(&k) {
                        None => (Some(0), 0),
                        Some((v, exp)) => (canonical(v), *exp),
                    };
                    let Some(cur) = cur else { return R::Err(Ek::NotInteger) };
                    let next = if up { cur.checked_add(d) } else { cur.checked_sub(d) };
                    let Some(next) = next else { return R::Err(Ek::Overflow) };
                    self.m.map.insert(k.clone(), (next.to_string().into_bytes(), exp));
                    R::Int(next)
                });
                (if up { "incr" } else { "decr" }, got, want)
            }
            43..=47 => {
                let k = self.key(true);
                let v = self.value(Model::key_err(&k).is_none());
                let ttl = self.ttl();
                let got = r(self.e.setnx(&k, &v, ttl), R::Bool);
                let want = Model::key_err(&k).or_else(|| Model::val_err(&v)).unwrap_or_else(|| {
                    if self.m.live(&k).is_some() {
                        return R::Bool(false);
                    }
                    let exp = self.m.deadline(ttl);
                    self.m.map.insert(k.clone(), (v.clone(), exp));
                    R::Bool(true)
                });
                ("setnx", got, want)
            }
            48..=54 => {
                let k = self.key(true);
                // Expect the current value half the time so swaps happen.
                let expected = match self.m.live(&k) {
                    Some((v, _)) if self.rng.chance(50) => v.clone(),
                    _ => self.value(false),
                };
                let new = self.value(Model::key_err(&k).is_none());
                let ttl = self.ttl();
                let got = r(self.e.cas(&k, &expected, &new, ttl), R::Cas);
                let want = Model::key_err(&k).or_else(|| Model::val_err(&new)).unwrap_or_else(|| match self.m.live(&k) {
                    None => R::Cas(CasOutcome::NotFound),
                    Some((v, _)) if *v != expected => R::Cas(CasOutcome::Mismatch),
                    Some(_) => {
                        let exp = self.m.deadline(ttl);
                        self.m.map.insert(k.clone(), (new.clone(), exp));
                        R::Cas(CasOutcome::Swapped)
                    }
                });
                ("cas", got, want)
            }
            55..=58 => {
                let k = self.key(true);
                let persist = self.rng.chance(40);
                let ttl = self.ttl();
                let got = r(if persist { self.e.persist(&k) } else { self.e.expire(&k, ttl) }, R::Bool);
                let want = Model::key_err(&k).unwrap_or_else(|| {
                    let exp = if persist { 0 } else { self.m.deadline(ttl) };
                    if self.m.live(&k).is_none() {
                        return R::Bool(false);
                    }
                    self.m.map.get_mut(&k).unwrap().1 = exp;
                    R::Bool(true)
                });
                (if persist { "persist" } else { "expire" }, got, want)
            }
            59..=61 => {
                let k = self.key(true);
                let got = r(self.e.ttl(&k), R::Ttl);
                let want = Model::key_err(&k).unwrap_or_else(|| R::Ttl(self.m.ttl_of(&k)));
                ("ttl", got, want)
            }
            62..=64 => {
                let n = self.rng.below(5);
                let mut keys = self.distinct_keys(n);
                let mut vals: Vec<Vec<u8>> = (0..n).map(|_| self.value(false)).collect();
                // At most one bad argument, so the expected error is unambiguous.
                if n > 0 && self.rng.chance(10) {
                    let i = self.rng.below(n);
                    match self.rng.below(3) {
                        0 => keys[i] = Vec::new(),
                        1 => keys[i] = self.long_key.clone(),
                        _ => vals[i] = vec![b'x'; MAX_VALUE + 1],
                    }
                } else if self.rng.chance(3) {
                    vals.push(b"extra".to_vec());
                }
                let ttl = self.ttl();
                let kr: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
                let vr: Vec<&[u8]> = vals.iter().map(|v| &v[..]).collect();
                let got = r(self.e.mset(&kr, &vr, ttl), |()| R::Unit);
                let want = if keys.len() != vals.len() {
                    R::Err(Ek::Invalid)
                } else if let Some(err) = keys.iter().zip(&vals).find_map(|(k, v)| Model::key_err(k).or_else(|| Model::val_err(v))) {
                    err
                } else {
                    let exp = self.m.deadline(ttl);
                    for (k, v) in keys.iter().zip(&vals) {
                        self.m.map.insert(k.clone(), (v.clone(), exp));
                    }
                    R::Unit
                };
                ("mset", got, want)
            }
            65..=67 => {
                let n = self.rng.below(6);
                let mut keys: Vec<Vec<u8>> = (0..n).map(|_| self.key(false)).collect();
                if n > 0 && self.rng.chance(8) {
                    let i = self.rng.below(n);
                    keys[i] = if self.rng.chance(50) { Vec::new() } else { self.long_key.clone() };
                }
                let kr: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
                let got = r(self.e.mget(&kr), R::Vals);
                let want = keys.iter().find_map(|k| Model::key_err(k)).unwrap_or_else(|| {
                    R::Vals(keys.iter().map(|k| self.m.live(k).map(|(v, _)| v.clone())).collect())
                });
                ("mget", got, want)
            }
            68..=70 => {
                let n = self.rng.below(5);
                let mut keys = self.distinct_keys(n);
                if n > 0 && self.rng.chance(8) {
                    let i = self.rng.below(n);
                    keys[i] = Vec::new();
                }
                let kr: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
                let got = r(self.e.mdel(&kr), R::N);
                let want = keys.iter().find_map(|k| Model::key_err(k)).unwrap_or_else(|| {
                    let live: Vec<Vec<u8>> = keys.iter().filter(|k| self.m.live(k).is_some()).cloned().collect();
                    for k in &live {
                        self.m.map.remove(k);
                    }
                    let live = live.len();
                    R::N(live)
                });
                ("mdel", got, want)
            }
            71..=77 => {
                let k = if self.rng.chance(50) { b"lock".to_vec() } else { self.key(true) };
                let mut owner = self.rng.pick(OWNERS).to_vec();
                let mut ttl = 1 + self.rng.below(30) as u64;
                if Model::key_err(&k).is_none() && self.rng.chance(6) {
                    match self.rng.below(3) {
                        0 => owner.clear(),
                        1 => owner = vec![b'o'; MAX_VALUE + 1],
                        _ => ttl = 0,
                    }
                }
                let res = self.e.lock(&k, &owner, ttl);
                let got = match res {
                    Ok(LockOutcome::Granted(t)) => {
                        assert!(t > self.m.last_token, "seed {} step {}: token {t} not above {}", self.seed, self.step, self.m.last_token);
                        assert_eq!(self.e.last_token(), t);
                        self.m.last_token = t;
                        R::Granted
                    }
                    Ok(LockOutcome::Locked) => R::Locked,
                    Err(e) => R::Err(ek(&e)),
                };
                let want = Model::key_err(&k)
                    .or_else(|| owner.is_empty().then_some(R::Err(Ek::Invalid)))
                    .or_else(|| Model::val_err(&owner))
                    .or_else(|| (ttl == 0).then_some(R::Err(Ek::Invalid)))
                    .unwrap_or_else(|| match self.m.live(&k) {
                        Some((v, _)) if *v != owner => R::Locked,
                        _ => {
                            let exp = self.m.deadline(ttl);
                            self.m.map.insert(k.clone(), (owner.clone(), exp));
                            R::Granted
                        }
                    });
                ("lock", got, want)
            }
            78..=80 => {
                let k = if self.rng.chance(60) { b"lock".to_vec() } else { self.key(true) };
                let owner = if self.rng.chance(3) { Vec::new() } else { self.rng.pick(OWNERS).to_vec() };
                let got = r(self.e.unlock(&k, &owner), R::Owner);
                let want = Model::key_err(&k)
                    .or_else(|| owner.is_empty().then_some(R::Err(Ek::Invalid)))
                    .unwrap_or_else(|| match self.m.live(&k) {
                        None => R::Owner(OwnerOutcome::NotFound),
                        Some((v, _)) if *v != owner => R::Owner(OwnerOutcome::NotOwner),
                        Some(_) => {
                            self.m.map.remove(&k);
                            R::Owner(OwnerOutcome::Done)
                        }
                    });
                ("unlock", got, want)
            }
            81..=83 => {
                let k = if self.rng.chance(60) { b"lock".to_vec() } else { self.key(true) };
                let owner = self.rng.pick(OWNERS).to_vec();
                let ttl = if self.rng.chance(5) { 0 } else { 1 + self.rng.below(30) as u64 };
                let got = r(self.e.extend_lock(&k, &owner, ttl), R::Owner);
                let want = Model::key_err(&k)
                    .or_else(|| (ttl == 0).then_some(R::Err(Ek::Invalid)))
                    .unwrap_or_else(|| match self.m.live(&k) {
                        None => R::Owner(OwnerOutcome::NotFound),
                        Some((v, _)) if *v != owner => R::Owner(OwnerOutcome::NotOwner),
                        Some(_) => {
                            let exp = self.m.deadline(ttl);
                            self.m.map.get_mut(&k).unwrap().1 = exp;
                            R::Owner(OwnerOutcome::Done)
                        }
                    });
                ("extend_lock", got, want)
            }
            84..=91 => {
                // Move the clock: a little, or exactly onto (or just before) a deadline.
                let deadlines: Vec<u64> = self.m.map.values().map(|&(_, exp)| exp).filter(|&exp| exp > self.m.now).collect();
                let to = if !deadlines.is_empty() && self.rng.chance(40) {
                    let d = *self.rng.pick(&deadlines);
                    if self.rng.chance(50) { d } else { d - 1 }
                } else {
                    self.m.now + self.rng.below(12) as u64
                };
                self.m.now = to;
                self.clock.store(to, Ordering::Relaxed);
                ("advance", R::Unit, R::Unit)
            }
            92..=93 => {
                let got = R::N(self.e.sweep_expired());
                let now = self.m.now;
                let before = self.m.map.len();
                self.m.map.retain(|_, &mut (_, exp)| exp == 0 || exp > now);
                ("sweep_expired", got, R::N(before - self.m.map.len()))
            }
            94..=95 => ("count", R::N(self.e.count() as usize), R::N(self.m.live_pairs(b"").len())),
            _ => {
                let p = self.rng.pick(PREFIXES).to_vec();
                let got = R::Pairs(scan_sorted(&self.e, &p));
                ("scan", got, R::Pairs(self.m.live_pairs(&p)))
            }
        };
        self.tally(what, &got);
        self.check(what, got, want);
    }
}

fn random_ops(seeds: std::ops::Range<u64>) {
    // Bounded so that `cargo test --release` spends about a second here and
    // a debug `cargo test` a few seconds.
    let steps = if cfg!(debug_assertions) { 10_000 } else { 400_000 };
    for seed in seeds {
        Harness::new(seed).run(steps);
    }
}

#[test]
fn random_ops_match_model_seeds_1_to_4() {
    random_ops(1..5);
}

#[test]
fn random_ops_match_model_seeds_5_to_8() {
    random_ops(5..9);
}

#[test]
fn random_ops_match_model_seeds_from_env() {
    // DBKV_MODEL_SEED=<n> [DBKV_MODEL_SEEDS=<count>] replays or extends the search.
    if let Ok(s) = std::env::var("DBKV_MODEL_SEED") {
        let first: u64 = s.parse().expect("DBKV_MODEL_SEED is a number");
        let n: u64 = std::env::var("DBKV_MODEL_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
        random_ops(first..first + n);
    }
}

#[test]
fn model_canonical_integers_agree_with_the_contract() {
    // The model's notion of "canonical" is checked against examples, so a
    // model bug cannot hide an engine bug.
    for ok in ["0", "1", "-1", "42", "9223372036854775807", "-9223372036854775808"] {
        assert!(canonical(ok.as_bytes()).is_some(), "{ok}");
    }
    for bad in ["", "-", "+1", "01", "-0", " 1", "1 ", "9223372036854775808", "1.0"] {
        assert!(canonical(bad.as_bytes()).is_none(), "{bad}");
    }
}

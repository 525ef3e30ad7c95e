//! Scans copy bounded chunks and resume at a bucket; these tests interleave
//! writes that grow, rebuild and churn the table between the chunks of a
//! scan and check the scan's contract against a model: every key present
//! and unchanged for the whole scan is returned exactly once with its
//! value, no key is returned twice, and every returned pair was the key's
//! value at some moment of the scan.

use std::collections::{HashMap, HashSet};

use dbkv::engine::{Engine, Options};

mod common;
use common::Rng;

/// Values each churned key held during the scan (any of them may be seen).
type History = HashMap<Vec<u8>, HashSet<Vec<u8>>>;

fn churn(e: &Engine, rng: &mut Rng, next_id: &mut u64, live: &mut Vec<Vec<u8>>, seen_values: &mut History) {
    let mut write = |e: &Engine, k: &Vec<u8>, rng: &mut Rng| {
        let v = format!("v{}", rng.next() % 1000).into_bytes();
        e.set(k, &v, 0).unwrap();
        seen_values.entry(k.clone()).or_default().insert(v);
    };
    match rng.below(4) {
        // A burst of new keys: the table grows (or rebuilds in place).
        0 => {
            for _ in 0..rng.below(3000) {
                let k = format!("churn:{next_id}").into_bytes();
                *next_id += 1;
                write(e, &k, rng);
                live.push(k);
            }
        }
        // Deletions leave tombstones that a later insert may rebuild away.
        1 => {
            for _ in 0..rng.below(live.len() + 1) / 2 {
                let k = live.swap_remove(rng.below(live.len()));
                e.delete(&k).unwrap();
            }
        }
        // Delete and write again: the key may land in a later bucket.
        2 => {
            for _ in 0..rng.below(200).min(live.len()) {
                let k = live[rng.below(live.len())].clone();
                e.delete(&k).unwrap();
                write(e, &k, rng);
            }
        }
        _ => {
            for _ in 0..rng.below(200).min(live.len()) {
                let k = live[rng.below(live.len())].clone();
                write(e, &k, rng);
            }
        }
    }
}

fn check_one_scan(seed: u64, shards: u32) {
    let mut rng = Rng::new(seed);
    let e = Engine::open(Options { shards, ..Options::default() }).unwrap();
    let stable: Vec<(Vec<u8>, Vec<u8>)> =
        (0..rng.below(4000)).map(|i| (format!("stable:{i}").into_bytes(), format!("s{i}").into_bytes())).collect();
    for (k, v) in &stable {
        e.set(k, v, 0).unwrap();
    }
    let (mut next_id, mut live, mut history) = (0u64, Vec::new(), History::new());
    for _ in 0..rng.below(3) {
        churn(&e, &mut rng, &mut next_id, &mut live, &mut history);
    }

    let mut scan = e.scan(b"");
    let mut got: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    loop {
        let take = 1 + rng.below(400);
        let before = got.len();
        got.extend(scan.by_ref().take(take));
        if got.len() < before + take {
            break;
        }
        churn(&e, &mut rng, &mut next_id, &mut live, &mut history);
    }

    let mut returned = HashSet::new();
    for (k, v) in &got {
        assert!(returned.insert(k.clone()), "seed {seed} shards {shards}: {} returned twice", String::from_utf8_lossy(k));
        if k.starts_with(b"churn:") {
            assert!(history.get(k).is_some_and(|vs| vs.contains(v)), "seed {seed}: churned key with a value it never held");
        }
    }
    let got: HashMap<_, _> = got.into_iter().collect();
    for (k, v) in &stable {
        assert_eq!(got.get(k), Some(v), "seed {seed} shards {shards}: stable key {} missing or wrong", String::from_utf8_lossy(k));
    }
}

#[test]
fn writes_between_chunks_never_lose_or_repeat_an_unchanged_key() {
    let seeds = std::env::var("DBKV_SOAK").map(|_| 2000).unwrap_or(150);
    for seed in 0..seeds {
        check_one_scan(seed, [1, 2, 8][seed as usize % 3]);
    }
}

#[test]
fn a_prefix_scan_over_many_chunks_is_complete() {
    let e = Engine::open(Options { shards: 2, ..Options::default() }).unwrap();
    for i in 0..20_000u32 {
        e.set(format!("{}:{i}", if i % 2 == 0 { "even" } else { "odd" }).as_bytes(), &i.to_le_bytes(), 0).unwrap();
    }
    let keys: HashSet<Vec<u8>> = e.scan(b"even:").map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 10_000);
    assert!(keys.iter().all(|k| k.starts_with(b"even:")));
}

#[test]
fn a_value_larger_than_a_chunk_is_returned_whole() {
    let e = Engine::open(Options { shards: 1, ..Options::default() }).unwrap();
    let big = vec![7u8; 1 << 20];
    for i in 0..5u8 {
        e.set(&[b'k', i], &big, 0).unwrap();
    }
    let all: Vec<_> = e.scan(b"k").collect();
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|(_, v)| *v == big));
}

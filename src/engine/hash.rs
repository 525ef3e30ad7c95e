//! A fast seeded hash for keys: the shard is chosen from its top bits and the
//! shard's table (`table::Table`) uses the same hash, remixed
//! (`table_hash`): one hash per operation.
//!
//! It is a folded-multiply hash in the wyhash family: 8 bytes per multiply,
//! good avalanche, and a random per-handle seed so a peer cannot pick keys
//! that all land in one shard.

#![forbid(unsafe_code)]

use std::hash::{BuildHasher, Hasher};

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
fn read8(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[inline(always)]
fn read_tail(b: &[u8]) -> u64 {
    // 0..=7 bytes, read without going past the end.
    let n = b.len();
    if n >= 4 {
        let lo = u32::from_le_bytes(b[..4].try_into().unwrap()) as u64;
        let hi = u32::from_le_bytes(b[n - 4..].try_into().unwrap()) as u64;
        (hi << 32) | lo
    } else if n > 0 {
        ((b[0] as u64) << 16) | ((b[n / 2] as u64) << 8) | b[n - 1] as u64
    } else {
        0
    }
}

/// Hashes `bytes` with `seed`.
#[inline]
pub fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ P0 ^ (bytes.len() as u64).wrapping_mul(P1);
    let mut rest = bytes;
    while rest.len() > 16 {
        h = fold_mul(read8(rest, 0) ^ P1 ^ h, read8(rest, 8) ^ P2);
        rest = &rest[16..];
    }
    let (a, b) = if rest.len() > 8 {
        (read8(rest, 0), read_tail(&rest[8..]))
    } else {
        (read_tail(rest), 0)
    };
    fold_mul(fold_mul(a ^ P1 ^ h, b ^ P2), P0 ^ rest.len() as u64)
}

/// The one hash of a key that an operation computes: its top bits choose
/// the shard (`shard_of_hash`) and the shard's table uses `table_hash` of
/// it, so nothing hashes the key twice.
#[inline]
pub fn key_hash(seed: u64, key: &[u8]) -> u64 {
    hash_bytes(seed ^ SHARD_SALT, key)
}

/// The shard of a key with hash `h` (`key_hash`) among `shards`, a power
/// of two.
#[inline]
pub fn shard_of_hash(h: u64, shards: u32) -> usize {
    if shards <= 1 {
        return 0;
    }
    (h >> (64 - shards.trailing_zeros())) as usize
}

/// The shard a key belongs to among `shards` (a power of two) for `seed`.
/// Recovery uses it with a snapshot's seed and shard count.
#[inline]
pub fn shard_of(seed: u64, shards: u32, key: &[u8]) -> usize {
    shard_of_hash(key_hash(seed, key), shards)
}

/// The hash a shard's table files a key under. Within one shard the top
/// bits of `key_hash` are all the same (they chose the shard), and the
/// table takes its 7-bit tags from the top bits: multiplying by an odd
/// constant carries the varying low bits into the top, and leaves the low
/// bits, which pick the bucket, as they were.
#[inline]
pub fn table_hash(key_hash: u64) -> u64 {
    key_hash.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Keeps the shard choice independent of the table's use of the same hash.
const SHARD_SALT: u64 = 0x5bd1_e995;

/// A seed that differs between handles and processes.
pub fn random_seed() -> u64 {
    use std::collections::hash_map::RandomState;
    let mut h = RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_hashes_all_bytes() {
        // Flipping any single bit of any key length up to 64 changes the hash.
        for len in 1..64usize {
            let base = vec![0x5au8; len];
            let h0 = hash_bytes(7, &base);
            for i in 0..len {
                let mut k = base.clone();
                k[i] ^= 1;
                assert_ne!(h0, hash_bytes(7, &k), "len {len} byte {i}");
            }
        }
    }

    /// Keys of one shard share the top bits of `key_hash`; the table's tags
    /// (top 7 bits of `table_hash`) and bucket bits must still spread.
    #[test]
    fn table_hash_spreads_tags_and_buckets_within_a_shard() {
        let (seed, shards) = (42, 256);
        let mut tags = [0u32; 128];
        let mut buckets = [0u32; 64];
        let mut n = 0;
        for i in 0..2_000_000u32 {
            let key = format!("task-result:{i}");
            let h = key_hash(seed, key.as_bytes());
            if shard_of_hash(h, shards) != 3 {
                continue;
            }
            n += 1;
            tags[(table_hash(h) >> 57) as usize] += 1;
            buckets[(table_hash(h) & 63) as usize] += 1;
        }
        let expect_tag = n as f64 / 128.0;
        assert!(tags.iter().all(|&c| (c as f64) > expect_tag * 0.5 && (c as f64) < expect_tag * 1.5), "{n} keys: tags {tags:?}");
        let expect_bucket = n as f64 / 64.0;
        assert!(buckets.iter().all(|&c| (c as f64) > expect_bucket * 0.6 && (c as f64) < expect_bucket * 1.4), "{n} keys: buckets {buckets:?}");
        // Without the remix every tag of the shard would be one of two.
        let raw: std::collections::HashSet<u64> = (0..2_000_000u32)
            .map(|i| key_hash(seed, format!("task-result:{i}").as_bytes()))
            .filter(|&h| shard_of_hash(h, shards) == 3)
            .map(|h| h >> 57)
            .collect();
        assert!(raw.len() <= 2);
    }

    #[test]
    fn seed_changes_hash() {
        assert_ne!(hash_bytes(1, b"key"), hash_bytes(2, b"key"));
    }
}

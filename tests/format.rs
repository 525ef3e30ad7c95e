//! Golden-byte tests for the on-disk format (docs/FORMAT.md).
//!
//! Every expected byte string here was written out by hand, field by field,
//! from docs/FORMAT.md; CRC-32 values were computed independently (zlib's
//! `crc32`, and the bitwise reference `crc32_ref` below checks them again),
//! and the snapshot digest with `sha256sum`. If one of these tests fails
//! after a code or dependency change, the format changed: either undo the
//! change or bump the format version (FORMAT.md section 9) and update the
//! golden bytes on purpose.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dbkv::engine::hash::{hash_bytes, shard_of};
use dbkv::engine::{Options, RecoveryMode, SyncMode};
use dbkv::persistence::record::{self, decode_body, seal_all, OwnedRecord, Record, RECORD_PREFIX};
use dbkv::persistence::snapshot::{self, encode_entry, parse_snapshot_name, snapshot_name, SnapshotMeta, SnapshotWriter};
use dbkv::persistence::vfs::{SimVfs, Vfs};
use dbkv::persistence::wal::{self, decode_segment_header, encode_segment_header, parse_segment_name, read_record, resync, segment_name, Scan};
use dbkv::Engine;

// ---------------------------------------------------------------------------
// Helpers

/// Concatenates hex fields (spaces allowed inside a field).
fn hex(fields: &[&str]) -> Vec<u8> {
    let s: String = fields.concat().chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Bitwise CRC-32 (IEEE, reflected polynomial 0xEDB88320, init and final
/// XOR 0xFFFFFFFF), independent of the crc32fast crate.
fn crc32_ref(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in b {
        c ^= x as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// 1,700,000,000,000 ms = 0x0000018BCFE56800, little-endian 00 68 e5 cf 8b 01 00 00.
const E: u64 = 1_700_000_000_000;
const E_HEX: &str = "0068e5cf8b010000";

/// Checks one record against its hand-written bytes: the framing fields
/// agree with the body (length, reference CRC), `encode` produces exactly
/// these bytes, `decode_body` gives back the record, and `read_record`
/// accepts it inside a segment.
fn check_record(rec: Record<'_>, lsn: u64, expected: &[u8], owned: OwnedRecord) {
    let body = &expected[RECORD_PREFIX..];
    assert_eq!(u32_at(expected, 0) as usize, body.len(), "hand-written len field");
    assert_eq!(u32_at(expected, 4), crc32_ref(body), "hand-written crc field");

    let mut out = Vec::new();
    rec.encode(lsn, &mut out);
    assert_eq!(to_hex(&out), to_hex(expected), "encode({rec:?}, {lsn})");

    // encode appends and leaves earlier bytes alone.
    let mut out = b"prefix".to_vec();
    rec.encode(lsn, &mut out);
    assert_eq!(&out[..6], b"prefix");
    assert_eq!(&out[6..], expected);

    // The WAL queue's path: unsealed (CRC zero), sealed later.
    let mut unsealed = Vec::new();
    rec.encode_unsealed(lsn, &mut unsealed);
    assert_eq!(&unsealed[..4], &expected[..4]);
    assert_eq!(&unsealed[4..8], &[0, 0, 0, 0]);
    assert_eq!(&unsealed[8..], body);
    seal_all(&mut unsealed);
    assert_eq!(unsealed, expected);

    assert_eq!(decode_body(body).expect("decodes"), (lsn, owned.clone()));
    // The borrowing decoder recovery uses.
    let (l, view) = record::decode_view(body).expect("decodes");
    assert_eq!((l, view.to_owned_record()), (lsn, owned.clone()));

    let mut seg = encode_segment_header(lsn).to_vec();
    seg.extend_from_slice(expected);
    match read_record(&seg, 32) {
        Scan::Record { offset, len, lsn: l, record } => {
            assert_eq!((offset, len, l), (32, expected.len(), lsn));
            assert_eq!(record, owned);
        }
        Scan::Bad { offset, reason } => panic!("good record rejected at {offset}: {reason}"),
    }
    match wal::read_view(&seg, 32) {
        wal::ScanView::Record { len, lsn: l, record } => {
            assert_eq!((len, l), (expected.len(), lsn));
            assert_eq!(record.to_owned_record(), owned);
        }
        wal::ScanView::Bad { reason } => panic!("good record rejected by read_view: {reason}"),
    }
    assert_eq!(wal::count_records(&seg), 1);
}

fn bad_at(b: &[u8], offset: usize) -> String {
    assert!(matches!(wal::read_view(b, offset), wal::ScanView::Bad { .. }), "read_view accepted damage at {offset}");
    match read_record(b, offset) {
        Scan::Bad { offset: o, reason } => {
            assert_eq!(o, offset, "damage reported at the record's start");
            reason
        }
        Scan::Record { lsn, .. } => panic!("expected damage at {offset}, got record {lsn}"),
    }
}

// ---------------------------------------------------------------------------
// Constants and primitives

#[test]
fn constants() {
    assert_eq!(record::TYPE_SET, 1);
    assert_eq!(record::TYPE_SET_INT, 2);
    assert_eq!(record::TYPE_DELETE, 3);
    assert_eq!(record::TYPE_MSET, 4);
    assert_eq!(record::TYPE_MDEL, 5);
    assert_eq!(record::TYPE_EXPIRE, 6);
    assert_eq!(record::TYPE_LOCK, 7);
    assert_eq!(RECORD_PREFIX, 8);
    assert_eq!(wal::SEGMENT_MAGIC, b"DBKVWAL\0");
    assert_eq!(wal::SEGMENT_VERSION, 1);
    assert_eq!(wal::SEGMENT_HEADER_LEN, 32);
    assert_eq!(wal::MAX_RECORD_BODY, 1_074_790_400);
    assert_eq!(snapshot::SNAPSHOT_MAGIC, b"DBKVSNAP");
    assert_eq!(snapshot::SNAPSHOT_VERSION, 1);
    assert_eq!(snapshot::SNAPSHOT_HEADER_LEN, 48);
    assert_eq!(snapshot::SNAPSHOT_TRAILER_LEN, 40);
    assert_eq!(snapshot::KIND_BYTES, 0);
    assert_eq!(snapshot::KIND_INT, 1);
}

#[test]
fn crc32_is_ieee_reflected() {
    assert_eq!(crc32_ref(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32fast::hash(b""), 0);
    assert_eq!(crc32fast::hash(b"DBKV"), crc32_ref(b"DBKV"));
}

// ---------------------------------------------------------------------------
// Records: one golden example per type

#[test]
fn record_set() {
    let expected = hex(&[
        "21000000",         // len 33
        "3dd38519",         // crc 0x1985d33d
        "efcdab8967452301", // lsn 0x0123456789abcdef
        "01",               // Set
        E_HEX,              // expires_at
        "03000000 6b6579",  // key "key"
        "05000000 76616c7565", // value "value"
    ]);
    check_record(
        Record::Set { key: b"key", value: b"value", expires_at: E },
        0x0123_4567_89ab_cdef,
        &expected,
        OwnedRecord::Set { key: b"key".to_vec(), value: b"value".to_vec(), expires_at: E },
    );
}

#[test]
fn record_set_int() {
    let expected = hex(&[
        "1e000000",         // len 30
        "d7802b86",         // crc
        "e903000000000000", // lsn 1001
        "02",               // SetInt
        "0000000000000000", // no expiry
        "01000000 6e",      // key "n"
        "feffffffffffffff", // value -2
    ]);
    check_record(
        Record::SetInt { key: b"n", value: -2, expires_at: 0 },
        1001,
        &expected,
        OwnedRecord::SetInt { key: b"n".to_vec(), value: -2, expires_at: 0 },
    );
}

#[test]
fn record_set_int_extremes() {
    for v in [i64::MIN, i64::MAX, 0, 1, -1] {
        let mut out = Vec::new();
        Record::SetInt { key: b"n", value: v, expires_at: 0 }.encode(7, &mut out);
        assert_eq!(&out[out.len() - 8..], &v.to_le_bytes());
        assert_eq!(decode_body(&out[8..]).unwrap().1, OwnedRecord::SetInt { key: b"n".to_vec(), value: v, expires_at: 0 });
    }
}

#[test]
fn record_delete() {
    let expected = hex(&[
        "11000000",         // len 17
        "96a47985",         // crc
        "ea03000000000000", // lsn 1002
        "03",               // Delete
        "04000000 676f6e65", // key "gone"
    ]);
    check_record(Record::Delete { key: b"gone" }, 1002, &expected, OwnedRecord::Delete { key: b"gone".to_vec() });
}

#[test]
fn record_mset() {
    let expected = hex(&[
        "29000000",         // len 41
        "7c490e0c",         // crc
        "eb03000000000000", // lsn 1003
        "04",               // MSet
        E_HEX,              // expires_at (all pairs)
        "02000000",         // 2 pairs
        "01000000 61",      // key "a"
        "01000000 31",      // value "1"
        "02000000 6263",    // key "bc"
        "00000000",         // value ""
    ]);
    let keys: [&[u8]; 2] = [b"a", b"bc"];
    let values: [&[u8]; 2] = [b"1", b""];
    check_record(
        Record::MSet { keys: &keys, values: &values, expires_at: E },
        1003,
        &expected,
        OwnedRecord::MSet { pairs: vec![(b"a".to_vec(), b"1".to_vec()), (b"bc".to_vec(), Vec::new())], expires_at: E },
    );
}

#[test]
fn record_mdel() {
    let expected = hex(&[
        "18000000",         // len 24
        "c476af34",         // crc
        "ec03000000000000", // lsn 1004
        "05",               // MDel
        "02000000",         // 2 keys
        "01000000 78",      // "x"
        "02000000 797a",    // "yz"
    ]);
    let keys: [&[u8]; 2] = [b"x", b"yz"];
    check_record(
        Record::MDel { keys: &keys },
        1004,
        &expected,
        OwnedRecord::MDel { keys: vec![b"x".to_vec(), b"yz".to_vec()] },
    );
}

#[test]
fn record_expire() {
    let expected = hex(&[
        "16000000",         // len 22
        "ed1621ea",         // crc
        "ed03000000000000", // lsn 1005
        "06",               // Expire
        E_HEX,              // expires_at
        "01000000 6b",      // key "k"
    ]);
    check_record(
        Record::Expire { key: b"k", expires_at: E },
        1005,
        &expected,
        OwnedRecord::Expire { key: b"k".to_vec(), expires_at: E },
    );
}

#[test]
fn record_lock() {
    let expected = hex(&[
        "25000000",         // len 37
        "df53a145",         // crc
        "ee03000000000000", // lsn 1006
        "07",               // Lock
        E_HEX,              // expires_at
        "2a00000000000000", // token 42
        "02000000 6c6b",    // key "lk"
        "02000000 6d65",    // owner "me"
    ]);
    check_record(
        Record::Lock { key: b"lk", owner: b"me", expires_at: E, token: 42 },
        1006,
        &expected,
        OwnedRecord::Lock { key: b"lk".to_vec(), owner: b"me".to_vec(), expires_at: E, token: 42 },
    );
}

#[test]
fn empty_multi_key_records() {
    // Count 0 is well-formed (the engine never logs it, a reader accepts it).
    let mut out = Vec::new();
    Record::MDel { keys: &[] }.encode(1, &mut out);
    assert_eq!(to_hex(&out[..4]), "0d000000");
    assert_eq!(decode_body(&out[8..]).unwrap(), (1, OwnedRecord::MDel { keys: vec![] }));
    let mut out = Vec::new();
    Record::MSet { keys: &[], values: &[], expires_at: 0 }.encode(2, &mut out);
    assert_eq!(to_hex(&out[..4]), "15000000");
    assert_eq!(decode_body(&out[8..]).unwrap(), (2, OwnedRecord::MSet { pairs: vec![], expires_at: 0 }));
}

#[test]
fn seal_all_seals_a_batch() {
    let keys: [&[u8]; 2] = [b"a", b"b"];
    let recs = [
        Record::Set { key: b"a", value: b"1", expires_at: 0 },
        Record::MDel { keys: &keys },
        Record::Lock { key: b"l", owner: b"o", expires_at: E, token: 9 },
    ];
    let (mut sealed, mut batch) = (Vec::new(), Vec::new());
    for (i, r) in recs.iter().enumerate() {
        r.encode(10 + i as u64, &mut sealed);
        r.encode_unsealed(10 + i as u64, &mut batch);
    }
    assert_ne!(batch, sealed);
    seal_all(&mut batch);
    assert_eq!(batch, sealed);
}

#[test]
fn decode_body_rejects_malformed_bodies() {
    let mut rec = Vec::new();
    Record::Lock { key: b"lk", owner: b"me", expires_at: E, token: 42 }.encode(1006, &mut rec);
    let body = &rec[8..];
    // Every strict prefix ends inside a field.
    for n in 0..body.len() {
        assert!(decode_body(&body[..n]).is_err(), "prefix of {n} bytes accepted");
    }
    // A trailing byte.
    let mut long = body.to_vec();
    long.push(0);
    assert!(decode_body(&long).unwrap_err().to_string().contains("trailing"));
    // Unknown types.
    for t in [0u8, 8, 0x80, 0xff] {
        let mut b = body.to_vec();
        b[8] = t;
        let err = decode_body(&b).unwrap_err().to_string();
        assert!(err.contains(&format!("unknown record type {t}")), "{err}");
    }
    // A length field pointing past the end.
    let mut b = body.to_vec();
    b[25] = 0xff; // key length low byte
    assert!(decode_body(&b).is_err());
}

// ---------------------------------------------------------------------------
// WAL segments

#[test]
fn segment_header_golden() {
    let expected = hex(&[
        "44424b5657414c00", // "DBKVWAL\0"
        "01000000",         // version 1
        "00000000",         // reserved
        "0100000000000000", // first LSN 1
        "00000000",         // reserved
        "e98e5e58",         // CRC-32 of bytes 0..28
    ]);
    assert_eq!(crc32_ref(&expected[..28]), u32_at(&expected, 28));
    assert_eq!(to_hex(&encode_segment_header(1)), to_hex(&expected));
    assert_eq!(decode_segment_header("wal-1", &expected).unwrap(), 1);

    let expected = hex(&[
        "44424b5657414c00",
        "01000000",
        "00000000",
        "efcdab8967452301", // first LSN 0x0123456789abcdef
        "00000000",
        "0ed5cc78",
    ]);
    assert_eq!(crc32_ref(&expected[..28]), u32_at(&expected, 28));
    assert_eq!(to_hex(&encode_segment_header(0x0123_4567_89ab_cdef)), to_hex(&expected));
    assert_eq!(decode_segment_header("x", &expected).unwrap(), 0x0123_4567_89ab_cdef);
    assert_eq!(decode_segment_header("x", &encode_segment_header(u64::MAX)).unwrap(), u64::MAX);
}

#[test]
fn segment_header_checks() {
    let good = encode_segment_header(77);
    for n in 0..32 {
        let err = decode_segment_header("f", &good[..n]).unwrap_err().to_string();
        assert!(err.contains("torn"), "{err}");
    }
    // Every single-bit flip anywhere in the header is caught (magic or CRC).
    for i in 0..32 {
        for bit in 0..8 {
            let mut h = good;
            h[i] ^= 1 << bit;
            assert!(decode_segment_header("f", &h).is_err(), "flip at byte {i} bit {bit} accepted");
        }
    }
    let mut h = good;
    h[0] = b'X';
    assert!(decode_segment_header("f", &h).unwrap_err().to_string().contains("bad magic"));
    let mut h = good;
    h[16] ^= 1;
    assert!(decode_segment_header("f", &h).unwrap_err().to_string().contains("checksum"));
    // An unknown version with a valid CRC.
    let mut h = good;
    h[8] = 2;
    let crc = crc32_ref(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    let err = decode_segment_header("f", &h).unwrap_err().to_string();
    assert!(err.contains("unsupported segment version 2"), "{err}");
    // Reserved fields are covered by the CRC but otherwise ignored.
    let mut h = good;
    h[12] = 1;
    h[24] = 1;
    let crc = crc32_ref(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(decode_segment_header("f", &h).unwrap(), 77);
    // Bytes after the header do not matter to the header check.
    let mut long = good.to_vec();
    long.extend_from_slice(b"records");
    assert_eq!(decode_segment_header("f", &long).unwrap(), 77);
}

/// A segment image: header for LSN 5, then records 5, 6, 7.
fn segment_image() -> (Vec<u8>, [usize; 3]) {
    let mut b = encode_segment_header(5).to_vec();
    let a = b.len();
    Record::Set { key: b"key", value: b"value", expires_at: 0 }.encode(5, &mut b);
    let m = b.len();
    Record::Delete { key: b"gone" }.encode(6, &mut b);
    let c = b.len();
    Record::Expire { key: b"k", expires_at: E }.encode(7, &mut b);
    (b, [a, m, c])
}

#[test]
fn read_record_walks_a_segment() {
    let (b, [a, m, c]) = segment_image();
    // Set body 33 bytes (41 on disk), Delete body 17 (25 on disk).
    assert_eq!((a, m, c), (32, 32 + 41, 32 + 41 + 25));
    let mut offset = 32;
    let mut lsns = Vec::new();
    while offset < b.len() {
        match read_record(&b, offset) {
            Scan::Record { offset: o, len, lsn, .. } => {
                assert_eq!(o, offset);
                lsns.push((o, len, lsn));
                offset += len;
            }
            Scan::Bad { offset, reason } => panic!("damage at {offset}: {reason}"),
        }
    }
    assert_eq!(lsns, vec![(32, 41, 5), (73, 25, 6), (98, 30, 7)]);
    assert_eq!(offset, b.len());
}

#[test]
fn read_record_reports_torn_tails_at_the_record_start() {
    let (b, [_, _, c]) = segment_image();
    for cut in c..b.len() {
        let reason = bad_at(&b[..cut], c);
        assert!(reason.contains("torn"), "cut at {cut}: {reason}");
        if cut - c < RECORD_PREFIX {
            assert!(reason.contains("prefix"), "cut at {cut}: {reason}");
        }
    }
}

#[test]
fn read_record_reports_bad_records_at_the_record_start() {
    let (b, [_, m, c]) = segment_image();
    // Every bit flip inside the middle record's body: checksum mismatch.
    for i in m + RECORD_PREFIX..c {
        let mut d = b.clone();
        d[i] ^= 0x10;
        let r = bad_at(&d, m);
        assert!(r.contains("checksum"), "flip at {i}: {r}");
    }
    // A flipped CRC field.
    let mut d = b.clone();
    d[m + 4] ^= 1;
    assert!(bad_at(&d, m).contains("checksum"));
    // Lengths out of range: below 9 (cannot hold LSN and type) or above MAX_RECORD_BODY.
    for len in [0u32, 1, 8, (wal::MAX_RECORD_BODY + 1) as u32, u32::MAX] {
        let mut d = b.clone();
        d[m..m + 4].copy_from_slice(&len.to_le_bytes());
        let r = bad_at(&d, m);
        assert!(r.contains("length out of range"), "len {len}: {r}");
    }
    // The largest allowed length is not out of range, only torn here.
    let mut d = b.clone();
    d[m..m + 4].copy_from_slice(&(wal::MAX_RECORD_BODY as u32).to_le_bytes());
    assert!(bad_at(&d, m).contains("torn"));
    // A length that makes the CRC cover the wrong bytes.
    let mut d = b.clone();
    d[m] += 1;
    assert!(bad_at(&d, m).contains("checksum"));
    // A body with a valid CRC that does not decode.
    let mut d = b.clone();
    d[m + 8 + 8] = 9; // type byte
    let crc = crc32_ref(&d[m + 8..c]);
    d[m + 4..m + 8].copy_from_slice(&crc.to_le_bytes());
    let reason = bad_at(&d, m);
    assert!(!reason.contains("checksum") && !reason.contains("torn"), "{reason}");
    // The records before the damage still read.
    assert!(matches!(read_record(&d, 32), Scan::Record { lsn: 5, .. }));
}

#[test]
fn resync_finds_the_next_good_record() {
    let (b, [_, m, c]) = segment_image();
    let mut d = b.clone();
    d[m + 12] ^= 0xff;
    assert_eq!(resync(&d, m + 1, 6), Some(c));
    assert_eq!(resync(&d, m + 1, 7), Some(c));
    assert_eq!(resync(&d, m + 1, 8), None, "min_lsn filters");
    assert_eq!(resync(&d, c + 1, 0), None);
    assert_eq!(resync(&b, 0, 0), Some(32));
}

// ---------------------------------------------------------------------------
// Snapshots

fn golden_snapshot() -> Vec<u8> {
    hex(&[
        // header
        "44424b56534e4150", // "DBKVSNAP"
        "01000000",         // version 1
        "02000000",         // 2 shards
        "7766554433221100", // hash seed 0x0011223344556677
        "7b68e5cf8b010000", // created 1,700,000,000,123 ms
        "2a00000000000000", // token high-water mark 42
        "0000000000000000", // reserved
        // shard 0
        "0a00000000000000", // covered LSN 10
        "0200000000000000", // 2 entries
        "00", "0000000000000000", "01000000 61", "05000000 6170706c65", // bytes, no expiry, "a" = "apple"
        "01", E_HEX, "01000000 6e", "08000000 0700000000000000",       // int, expiry E, "n" = 7
        // shard 1
        "0c00000000000000", // covered LSN 12
        "0100000000000000", // 1 entry
        "00", E_HEX, "01000000 62", "00000000", // bytes, expiry E, "b" = ""
        // trailer
        "0300000000000000", // 3 entries in all
        // SHA-256 of everything above (checked with sha256sum)
        "283cd2941f2555ee095db3ac1851ba1d8e32a07d7a199d502e2cc9d27531b9ef",
    ])
}

fn golden_meta() -> SnapshotMeta {
    SnapshotMeta { shard_count: 2, hash_seed: 0x0011_2233_4455_6677, created_ms: E + 123, token_hwm: 42 }
}

#[test]
fn snapshot_entry_golden() {
    let mut out = Vec::new();
    encode_entry(&mut out, snapshot::KIND_BYTES, 0, b"a", b"apple");
    assert_eq!(to_hex(&out), to_hex(&hex(&["00", "0000000000000000", "01000000 61", "05000000 6170706c65"])));
    let mut out = Vec::new();
    encode_entry(&mut out, snapshot::KIND_INT, E, b"n", &7i64.to_le_bytes());
    assert_eq!(to_hex(&out), to_hex(&hex(&["01", E_HEX, "01000000 6e", "08000000 0700000000000000"])));
}

#[test]
fn snapshot_file_golden() {
    let expected = golden_snapshot();
    assert_eq!(expected.len(), 48 + (16 + 23 + 26) + (16 + 18) + 40);
    // The digest agrees with an independent SHA-256 of the hand-built bytes.
    {
        use sha2::{Digest, Sha256};
        let n = expected.len() - 32;
        assert_eq!(Sha256::digest(&expected[..n]).as_slice(), &expected[n..]);
    }

    let sim = SimVfs::new();
    let dir = Path::new("/sim/db");
    sim.create_dir(dir).unwrap();
    let tmp = dir.join("snapshot.tmp");
    let mut w = SnapshotWriter::create(&sim, &tmp, &golden_meta()).unwrap();
    let mut s0 = Vec::new();
    encode_entry(&mut s0, snapshot::KIND_BYTES, 0, b"a", b"apple");
    encode_entry(&mut s0, snapshot::KIND_INT, E, b"n", &7i64.to_le_bytes());
    w.shard(10, 2, &s0).unwrap();
    let mut s1 = Vec::new();
    encode_entry(&mut s1, snapshot::KIND_BYTES, E, b"b", b"");
    w.shard(12, 1, &s1).unwrap();
    let size = w.finish().unwrap();

    let written = sim.read(&tmp).unwrap();
    assert_eq!(size as usize, written.len());
    assert_eq!(to_hex(&written), to_hex(&expected));
}

#[test]
fn snapshot_load_round_trip() {
    let b = golden_snapshot();
    let mut seen = Vec::new();
    let loaded = snapshot::load("snap", &b, |e| seen.push((e.kind, e.expires_at, e.key.to_vec(), e.value.to_vec()))).unwrap();
    assert_eq!(loaded.meta, golden_meta());
    assert_eq!(loaded.shard_lsns, vec![10, 12]);
    assert_eq!(loaded.entries, 3);
    assert_eq!(
        seen,
        vec![
            (0, 0, b"a".to_vec(), b"apple".to_vec()),
            (1, E, b"n".to_vec(), 7i64.to_le_bytes().to_vec()),
            (0, E, b"b".to_vec(), Vec::new()),
        ]
    );
}

#[test]
fn snapshot_load_rejects_any_flipped_byte() {
    let b = golden_snapshot();
    for i in 0..b.len() {
        for mask in [0x01u8, 0x80] {
            let mut d = b.clone();
            d[i] ^= mask;
            let mut calls = 0;
            let err = snapshot::load("snap", &d, |_| calls += 1);
            assert!(err.is_err(), "flip {mask:#x} at byte {i} accepted");
            assert_eq!(calls, 0, "entries passed on from a damaged snapshot (byte {i})");
        }
    }
}

#[test]
fn snapshot_load_rejects_truncation_and_extension() {
    let b = golden_snapshot();
    for n in 0..b.len() {
        assert!(snapshot::load("snap", &b[..n], |_| {}).is_err(), "truncated to {n} accepted");
    }
    let mut long = b.clone();
    long.push(0);
    assert!(snapshot::load("snap", &long, |_| {}).is_err());
}

/// Re-seals a modified snapshot image with a correct digest.
fn reseal(b: &mut [u8]) {
    use sha2::{Digest, Sha256};
    let n = b.len() - 32;
    let d = Sha256::digest(&b[..n]);
    b[n..].copy_from_slice(&d);
}

#[test]
fn snapshot_load_structural_checks_behind_a_valid_digest() {
    let b = golden_snapshot();
    // Unknown version.
    let mut d = b.clone();
    d[8] = 2;
    reseal(&mut d);
    let err = snapshot::load("snap", &d, |_| {}).err().expect("version 2 refused").to_string();
    assert!(err.contains("unsupported snapshot version 2"), "{err}");
    // Wrong total in the trailer.
    let mut d = b.clone();
    let t = d.len() - 40;
    d[t] = 4;
    reseal(&mut d);
    assert!(snapshot::load("snap", &d, |_| {}).is_err());
    // A shard count that does not match the sections.
    for count in [1u32, 3] {
        let mut d = b.clone();
        d[12..16].copy_from_slice(&count.to_le_bytes());
        reseal(&mut d);
        assert!(snapshot::load("snap", &d, |_| {}).is_err(), "shard count {count} accepted");
    }
    // The reserved field is ignored.
    let mut d = b.clone();
    d[40] = 1;
    reseal(&mut d);
    assert!(snapshot::load("snap", &d, |_| {}).is_ok());
}

#[test]
fn empty_snapshot_golden() {
    let sim = SimVfs::new();
    let tmp = PathBuf::from("/sim/db/snapshot.tmp");
    let meta = SnapshotMeta { shard_count: 1, hash_seed: 0, created_ms: 0, token_hwm: 0 };
    let mut w = SnapshotWriter::create(&sim, &tmp, &meta).unwrap();
    w.shard(0, 0, &[]).unwrap();
    assert_eq!(w.finish().unwrap(), 48 + 16 + 40);
    let b = sim.read(&tmp).unwrap();
    let body = hex(&[
        "44424b56534e4150 01000000 01000000 0000000000000000 0000000000000000 0000000000000000 0000000000000000",
        "0000000000000000 0000000000000000", // shard 0: covered 0, no entries
        "0000000000000000",                  // total 0
    ]);
    assert_eq!(&b[..body.len()], &body[..]);
    // sha256sum of those 72 bytes
    assert_eq!(to_hex(&b[body.len()..]), "8e4cd0878a470c4fc490fab9d207504cd7b01c2dbf93ca2587d05bf24daf297d");
    let loaded = snapshot::load("snap", &b, |_| panic!("no entries")).unwrap();
    assert_eq!((loaded.shard_lsns, loaded.entries), (vec![0], 0));
}

// ---------------------------------------------------------------------------
// File names

#[test]
fn file_names() {
    assert_eq!(segment_name(0), "wal-00000000000000000000.log");
    assert_eq!(segment_name(1), "wal-00000000000000000001.log");
    assert_eq!(segment_name(0x0123_4567_89ab_cdef), "wal-00081985529216486895.log");
    assert_eq!(segment_name(u64::MAX), "wal-18446744073709551615.log");
    assert_eq!(snapshot_name(0), "snap-00000000000000000000.snap");
    assert_eq!(snapshot_name(4096), "snap-00000000000000004096.snap");
    assert_eq!(snapshot_name(u64::MAX), "snap-18446744073709551615.snap");
    for n in [0, 1, 9, 10, 4096, 1 << 40, u64::MAX - 1, u64::MAX] {
        assert_eq!(segment_name(n).len(), 4 + 20 + 4);
        assert_eq!(snapshot_name(n).len(), 5 + 20 + 5);
        // LSNs start at 1, so no segment is named 0 (its next-LSN arithmetic would underflow).
        assert_eq!(parse_segment_name(&segment_name(n)), (n >= 1).then_some(n));
        assert_eq!(parse_snapshot_name(&snapshot_name(n)), Some(n));
        assert_eq!(parse_segment_name(&snapshot_name(n)), None);
        assert_eq!(parse_snapshot_name(&segment_name(n)), None);
        assert_eq!(parse_segment_name(&format!("{}.dropped", segment_name(n))), None);
        assert_eq!(parse_snapshot_name(&format!("{}.dropped", snapshot_name(n))), None);
    }
    // Names sort in LSN order.
    let mut names: Vec<String> = [300u64, 2, 1 << 33, 41].iter().map(|&n| segment_name(n)).collect();
    names.sort();
    assert_eq!(names.iter().map(|n| parse_segment_name(n).unwrap()).collect::<Vec<_>>(), vec![2, 41, 300, 1 << 33]);
    for other in [
        "LOCK",
        "snapshot.tmp",
        "wal-.log",
        "wal-00000000000000000001.lo",
        "wal-0000000000000000000x.log",
        "Wal-00000000000000000001.log",
        "wal-18446744073709551616.log", // u64::MAX + 1
        "wal--0000000000000000001.log",
        "snap-.snap",
        "snap-00000000000000000001.snap.tmp",
        "snap-18446744073709551616.snap",
    ] {
        assert_eq!(parse_segment_name(other), None, "{other}");
        assert_eq!(parse_snapshot_name(other), None, "{other}");
    }
}

// ---------------------------------------------------------------------------
// The shard function (part of the format: it maps WAL keys to a snapshot's
// per-shard covered LSNs). Expected values from an independent Python
// implementation of FORMAT.md section 6.

#[test]
fn shard_function_golden() {
    let seed = 0x0011_2233_4455_6677u64;
    let cases: [(&[u8], u64, u64, usize, usize, usize); 8] = [
        (b"", 0xb2864b7d70344825, 0x2963c5ca9b9205d6, 19, 0, 30017),
        (b"a", 0x44a91f34ee56cd21, 0x238a1e81e5504697, 32, 0, 12303),
        (b"abc", 0x1f480202a6b57b30, 0xbb4cd0af32701ad9, 197, 1, 61995),
        (b"abcd", 0x9e73132435c5f475, 0x5272dcd88c674873, 86, 0, 46900),
        (b"hello world", 0x96905b23af169a2a, 0xd5a9a76f24ac70f0, 136, 1, 50273),
        (b"0123456789abcdef", 0xcca0096c5399cfdc, 0x52ad6703d0210d73, 93, 0, 18066),
        (b"0123456789abcdefg", 0xab067323a8ed7614, 0xcd4d488fb8983762, 107, 0, 30501),
        (b"the quick brown fox jumps over the lazy dog", 0xa683988ea6b4f948, 0xb50e438ffddc1fc7, 8, 0, 45526),
    ];
    for (key, h0, hs, s256, s2, s65536) in cases {
        let k = String::from_utf8_lossy(key);
        assert_eq!(hash_bytes(0, key), h0, "hash_bytes(0, {k:?})");
        assert_eq!(hash_bytes(seed, key), hs, "hash_bytes(seed, {k:?})");
        assert_eq!(shard_of(seed, 256, key), s256, "shard_of(seed, 256, {k:?})");
        assert_eq!(shard_of(seed, 2, key), s2, "shard_of(seed, 2, {k:?})");
        assert_eq!(shard_of(7, 65536, key), s65536, "shard_of(7, 65536, {k:?})");
        assert_eq!(shard_of(seed, 1, key), 0);
    }
}

// ---------------------------------------------------------------------------
// What the engine writes: each operation's record, byte for byte, in a WAL
// segment (records carry results; expiries are absolute).

fn sim_opts(sim: &SimVfs, clock: dbkv::Clock) -> Options {
    Options {
        data_dir: Some(PathBuf::from("/sim/db")),
        sync_mode: SyncMode::None,
        vfs: Some(Arc::new(sim.clone())),
        clock,
        ..Options::default()
    }
}

#[test]
fn engine_writes_result_records() {
    let sim = SimVfs::new();
    let (clock, _time) = dbkv::Clock::manual(E);
    let e = Engine::open(sim_opts(&sim, clock)).unwrap();
    e.set(b"k", b"v", 0).unwrap(); // 1: Set, no expiry
    e.set(b"t", b"v", 1000).unwrap(); // 2: Set, absolute expiry
    assert_eq!(e.incr(b"t", 5).unwrap_err(), dbkv::Error::NotInteger); // nothing logged
    e.set(b"c", b"10", 500).unwrap(); // 3
    assert_eq!(e.incr(b"c", 5).unwrap(), 15); // 4: SetInt 15, keeps expiry E+500
    assert!(!e.setnx(b"k", b"w", 0).unwrap()); // nothing logged
    assert!(e.expire(b"k", 2000).unwrap()); // 5: Expire E+2000
    assert!(e.persist(b"k").unwrap()); // 6: Expire 0
    let ab: [&[u8]; 2] = [b"a", b"b"];
    let one_two: [&[u8]; 2] = [b"1", b"2"];
    e.mset(&ab, &one_two, 0).unwrap(); // 7: MSet
    let a_missing_b: [&[u8]; 3] = [b"a", b"missing", b"b"];
    assert_eq!(e.mdel(&a_missing_b).unwrap(), 2); // 8: MDel of the two that existed
    assert_eq!(e.lock(b"l", b"me", 3000).unwrap(), dbkv::LockOutcome::Granted(1)); // 9: Lock token 1
    assert!(e.delete(b"k").unwrap()); // 10: Delete
    assert!(!e.delete(b"k").unwrap()); // nothing logged
    e.close().unwrap();

    let seg = sim.read(Path::new("/sim/db/wal-00000000000000000001.log")).unwrap();
    let mut expected = hex(&["44424b5657414c00 01000000 00000000 0100000000000000 00000000 e98e5e58"]);
    let recs = [
        Record::Set { key: b"k", value: b"v", expires_at: 0 },
        Record::Set { key: b"t", value: b"v", expires_at: E + 1000 },
        Record::Set { key: b"c", value: b"10", expires_at: E + 500 },
        Record::SetInt { key: b"c", value: 15, expires_at: E + 500 },
        Record::Expire { key: b"k", expires_at: E + 2000 },
        Record::Expire { key: b"k", expires_at: 0 },
        Record::MSet { keys: &ab, values: &one_two, expires_at: 0 },
        Record::MDel { keys: &ab },
        Record::Lock { key: b"l", owner: b"me", expires_at: E + 3000, token: 1 },
        Record::Delete { key: b"k" },
    ];
    for (i, r) in recs.iter().enumerate() {
        r.encode(i as u64 + 1, &mut expected);
    }
    assert_eq!(to_hex(&seg), to_hex(&expected));
}

// ---------------------------------------------------------------------------
// Versioning rules of FORMAT.md section 9 that the reader does not follow
// yet. Un-ignore once src/persistence is fixed.

fn one_key_db(sim: &SimVfs) {
    let e = Engine::open(sim_opts(sim, dbkv::Clock::default())).unwrap();
    e.set(b"k", b"v", 0).unwrap();
    e.close().unwrap();
}

#[test]

fn unknown_segment_version_refuses_without_modifying() {
    let sim = SimVfs::new();
    one_key_db(&sim);
    let p = Path::new("/sim/db/wal-00000000000000000001.log");
    let mut h = sim.read(p).unwrap()[..32].to_vec();
    h[8] = 2;
    let crc = crc32_ref(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    sim.corrupt(p, 0, &h);
    let before = sim.read(p).unwrap();
    for mode in [RecoveryMode::PointInTime, RecoveryMode::SkipCorrupted, RecoveryMode::Absolute] {
        let mut o = sim_opts(&sim, dbkv::Clock::default());
        o.recovery_mode = mode;
        assert!(Engine::open(o).is_err(), "{mode:?} opened a version-2 segment");
        assert_eq!(sim.read(p).unwrap(), before, "{mode:?} modified the segment");
    }
}

#[test]

fn unknown_snapshot_version_refuses_without_modifying() {
    let sim = SimVfs::new();
    let e = Engine::open(sim_opts(&sim, dbkv::Clock::default())).unwrap();
    e.set(b"k", b"v", 0).unwrap();
    e.snapshot().unwrap();
    e.close().unwrap();
    let dir = Path::new("/sim/db");
    let name = sim.list(dir).unwrap().into_iter().find(|n| n.ends_with(".snap")).unwrap();
    let p = dir.join(&name);
    let mut b = sim.read(&p).unwrap();
    b[8] = 2;
    reseal(&mut b);
    sim.corrupt(&p, 0, &b);
    let mut o = sim_opts(&sim, dbkv::Clock::default());
    o.recovery_mode = RecoveryMode::PointInTime;
    assert!(Engine::open(o).is_err(), "opened past a version-2 snapshot");
    assert_eq!(sim.read(&p).unwrap(), b, "the snapshot was moved or modified");
}

#[test]

fn parse_accepts_only_canonical_names() {
    for bad in ["wal-1.log", "wal-+0000000000000000001.log", "wal-000000000000000000001.log"] {
        assert_eq!(parse_segment_name(bad), None, "{bad}");
    }
    for bad in ["snap-1.snap", "snap-+0000000000000000001.snap"] {
        assert_eq!(parse_snapshot_name(bad), None, "{bad}");
    }
}

//! Golden-byte tests for the on-disk format, version 4 (docs/FORMAT.md).
//!
//! Every expected byte string here was written out by hand, field by field,
//! from docs/FORMAT.md; CRC-32 values were computed independently (zlib's
//! `crc32`, and the bitwise reference `crc32_ref` below checks them again),
//! and the snapshot digests with Python's `hashlib.sha256`. If one of these
//! tests fails after a code or dependency change, the format changed: either
//! undo the change or bump the format version (FORMAT.md section 9) and
//! update the golden bytes on purpose.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use dbkv::engine::hash::{hash_bytes, shard_of};
use dbkv::engine::{Options, RecoveryMode, SyncMode};
use dbkv::persistence::block::{self, BLOCK, BLOCK_HEADER};
use dbkv::persistence::record::{self, decode_body, seal_all, OwnedRecord, Record, RECORD_PREFIX};
use dbkv::persistence::snapshot::{self, encode_entry, parse_snapshot_name, snapshot_name, SnapshotCut, SnapshotMeta, SnapshotWriter};
use dbkv::persistence::vfs::{SimVfs, Vfs};
use dbkv::persistence::wal::{self, decode_segment_header, encode_segment_header, parse_segment_name, read_record, segment_name, Scan};
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

/// Bitwise CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and
/// final XOR 0xFFFFFFFF), independent of the crc32c crate.
fn crc32c_ref(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in b {
        c ^= x as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
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
/// accepts it at offset 0 of a segment's logical stream (file offset 32).
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

    // A segment holding just this record: under one block, so no block
    // header, and the logical stream is the record itself.
    let mut seg = encode_segment_header(lsn).to_vec();
    seg.extend_from_slice(expected);
    let stream = block::deblock(&seg);
    assert_eq!(stream, expected);
    match read_record(&stream, 0) {
        Scan::Record { offset, len, lsn: l, record } => {
            assert_eq!((offset, len, l), (0, expected.len(), lsn));
            assert_eq!(record, owned);
        }
        Scan::Bad { offset, reason } => panic!("good record rejected at {offset}: {reason}"),
    }
    match wal::read_view(&stream, 0) {
        wal::ScanView::Record { len, lsn: l, record } => {
            assert_eq!((len, l), (expected.len(), lsn));
            assert_eq!(record.to_owned_record(), owned);
        }
        wal::ScanView::Bad { reason } => panic!("good record rejected by read_view: {reason}"),
    }
    assert_eq!(wal::count_records(&stream), 1);
    assert_eq!(block::count_records(&seg), 1);
    // records_with_offsets reports file offsets.
    match &wal::records_with_offsets(&seg)[..] {
        [Scan::Record { offset: 32, len, lsn: l, .. }] => assert_eq!((*len, *l), (expected.len(), lsn)),
        other => panic!("records_with_offsets: {other:?}"),
    }
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
    assert_eq!(wal::SEGMENT_VERSION, 4);
    assert_eq!(wal::SEGMENT_MIN_VERSION, 2);
    assert_eq!(record::TYPE_BATCH, 8);
    assert_eq!(record::TYPE_CLEAR, 9);
    assert_eq!(wal::SEGMENT_HEADER_LEN, 32);
    assert_eq!(wal::MAX_RECORD_BODY, 1_074_790_400);
    assert_eq!(snapshot::SNAPSHOT_MAGIC, b"DBKVSNAP");
    assert_eq!(snapshot::SNAPSHOT_VERSION, 5);
    assert_eq!(snapshot::SNAPSHOT_MIN_VERSION, 2);
    assert_eq!(snapshot::SNAPSHOT_HEADER_LEN, 48);
    assert_eq!(snapshot::SNAPSHOT_TRAILER_LEN, 40);
    assert_eq!(snapshot::SECTION_ROW_LEN, 16);
    assert_eq!(snapshot::KIND_BYTES, 0);
    assert_eq!(snapshot::KIND_INT, 1);
    assert_eq!(BLOCK, 32_768);
    assert_eq!(BLOCK_HEADER, 8);
    assert_eq!(dbkv::engine::MAX_KEY_BYTES, 65_535);
}

#[test]
fn crc32_is_ieee_reflected() {
    assert_eq!(crc32_ref(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32fast::hash(b""), 0);
    assert_eq!(crc32fast::hash(b"DBKV"), crc32_ref(b"DBKV"));
}

#[test]
fn crc32c_is_castagnoli_reflected() {
    assert_eq!(crc32c_ref(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    let long: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 255) as u8).collect();
    assert_eq!(crc32c::crc32c(&long), crc32c_ref(&long));
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
    for t in [0u8, 18, 0x80, 0xff] {
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
        "04000000",         // version 4
        "00000000",         // reserved
        "0100000000000000", // first LSN 1
        "00000000",         // reserved
        "f65ed473",         // CRC-32 of bytes 0..28
    ]);
    assert_eq!(crc32_ref(&expected[..28]), u32_at(&expected, 28));
    assert_eq!(to_hex(&encode_segment_header(1)), to_hex(&expected));
    assert_eq!(decode_segment_header("wal-1", &expected).unwrap(), 1);

    let expected = hex(&[
        "44424b5657414c00",
        "04000000",
        "00000000",
        "efcdab8967452301", // first LSN 0x0123456789abcdef
        "00000000",
        "11054653",
    ]);
    assert_eq!(crc32_ref(&expected[..28]), u32_at(&expected, 28));
    assert_eq!(to_hex(&encode_segment_header(0x0123_4567_89ab_cdef)), to_hex(&expected));
    assert_eq!(decode_segment_header("x", &expected).unwrap(), 0x0123_4567_89ab_cdef);
    assert_eq!(decode_segment_header("x", &encode_segment_header(u64::MAX)).unwrap(), u64::MAX);
    assert_eq!(wal::segment_version(&expected), Some(4));
}

/// Batch and clear records (format version 3), checked against CRCs
/// computed with Python's zlib.
#[test]
fn batch_and_clear_records_golden() {
    let ops = [Record::Set { key: b"k", value: b"v", expires_at: 0 }, Record::Delete { key: b"a" }];
    let mut out = Vec::new();
    Record::Batch { ops: &ops }.encode(5, &mut out);
    let expected = hex(&[
        "26000000 cbceec2d",       // body length 38, CRC-32
        "0500000000000000 08",     // LSN 5, type 8 (batch)
        "02000000",                // 2 operations, each `type | fields`
        "01 0000000000000000 01000000 6b 01000000 76", // Set "k" = "v", no expiry
        "03 01000000 61",          // Delete "a"
    ]);
    assert_eq!(to_hex(&out), to_hex(&expected));
    let (lsn, rec) = decode_body(&out[8..]).unwrap();
    assert_eq!(lsn, 5);
    assert_eq!(rec, OwnedRecord::Batch { ops: vec![OwnedRecord::Set { key: b"k".to_vec(), value: b"v".to_vec(), expires_at: 0 }, OwnedRecord::Delete { key: b"a".to_vec() }] });

    let mut out = Vec::new();
    Record::Clear.encode(6, &mut out);
    assert_eq!(to_hex(&out), to_hex(&hex(&["09000000 80d5cfec", "0600000000000000 09"])));

    // A batch inside a batch, or a lock grant inside one, is damage.
    for inner in ["08 00000000", "07 0000000000000000 0100000000000000 01000000 6b 01000000 6f"] {
        let body = hex(&["0500000000000000 08 01000000", inner]);
        assert!(decode_body(&body).unwrap_err().to_string().contains("unknown record type"));
    }
}

/// Version-2 segments (before batch records) are read as they are.
#[test]
fn version_2_segment_opens() {
    let sim = SimVfs::new();
    let dir = Path::new("/sim/db");
    sim.create_dir(dir).unwrap();
    let mut seg = encode_segment_header(1).to_vec();
    seg[8..12].copy_from_slice(&2u32.to_le_bytes());
    let crc = crc32_ref(&seg[..28]);
    seg[28..32].copy_from_slice(&crc.to_le_bytes());
    let mut recs = Vec::new();
    Record::Set { key: b"k", value: b"v2", expires_at: 0 }.encode(1, &mut recs);
    let mut framed = Vec::new();
    block::frame(&mut framed, &recs, seg.len() as u64, 1);
    seg.extend_from_slice(&framed);
    let mut f = sim.create(&dir.join(segment_name(1))).unwrap();
    f.write_all(&seg).unwrap();
    f.sync().unwrap();
    drop(f);
    let o = Options { data_dir: Some(dir.to_path_buf()), vfs: Some(Arc::new(sim.clone())), recovery_mode: RecoveryMode::Absolute, ..Options::default() };
    let e = Engine::open(o).unwrap();
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"v2"[..]));
}

#[test]
fn segment_header_checks() {
    let good = encode_segment_header(77);
    let err = decode_segment_header("f", &[]).unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
    for n in 1..32 {
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
    // Unknown versions with a valid CRC: the version-1 format (no blocks)
    // and a newer one. `segment_version` reports them, so recovery can
    // refuse instead of treating the file as damage.
    for v in [0u32, 1, 5, u32::MAX] {
        let mut h = good;
        h[8..12].copy_from_slice(&v.to_le_bytes());
        let crc = crc32_ref(&h[..28]);
        h[28..32].copy_from_slice(&crc.to_le_bytes());
        let err = decode_segment_header("f", &h).unwrap_err().to_string();
        assert!(err.contains(&format!("unsupported segment version {v}")), "{err}");
        assert_eq!(wal::segment_version(&h), Some(v));
    }
    // A version field that fails the CRC is damage, not a version.
    let mut h = good;
    h[8] = 5;
    assert_eq!(wal::segment_version(&h), None);
    assert!(decode_segment_header("f", &h).unwrap_err().to_string().contains("checksum"));
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

/// A segment image: header for LSN 5, then records 5, 6, 7; and the
/// stream offsets of the three records.
fn segment_image() -> (Vec<u8>, [usize; 3]) {
    let mut b = encode_segment_header(5).to_vec();
    let a = b.len();
    Record::Set { key: b"key", value: b"value", expires_at: 0 }.encode(5, &mut b);
    let m = b.len();
    Record::Delete { key: b"gone" }.encode(6, &mut b);
    let c = b.len();
    Record::Expire { key: b"k", expires_at: E }.encode(7, &mut b);
    // Under one block: the stream is the file after its 32-byte header.
    let h = wal::SEGMENT_HEADER_LEN;
    (b, [a - h, m - h, c - h])
}

/// The logical stream of `segment_image`, and the record offsets in it.
fn segment_stream() -> (Vec<u8>, [usize; 3]) {
    let (image, offsets) = segment_image();
    let stream = block::deblock(&image);
    assert_eq!(stream, &image[32..]);
    (stream, offsets)
}

#[test]
fn read_record_walks_a_stream() {
    let (b, [a, m, c]) = segment_stream();
    // Set body 33 bytes (41 on disk), Delete body 17 (25 on disk).
    assert_eq!((a, m, c), (0, 41, 41 + 25));
    let mut offset = 0;
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
    assert_eq!(lsns, vec![(0, 41, 5), (41, 25, 6), (66, 30, 7)]);
    assert_eq!(offset, b.len());
    assert_eq!(wal::count_records(&b), 3);
    // The same records with their file offsets.
    let (image, _) = segment_image();
    let at: Vec<(usize, usize, u64)> = wal::records_with_offsets(&image)
        .into_iter()
        .map(|s| match s {
            Scan::Record { offset, len, lsn, .. } => (offset, len, lsn),
            Scan::Bad { offset, reason } => panic!("damage at {offset}: {reason}"),
        })
        .collect();
    assert_eq!(at, vec![(32, 41, 5), (73, 25, 6), (98, 30, 7)]);
}

#[test]
fn read_record_reports_torn_tails_at_the_record_start() {
    let (b, [_, _, c]) = segment_stream();
    for cut in c..b.len() {
        let reason = bad_at(&b[..cut], c);
        assert!(reason.contains("torn"), "cut at {cut}: {reason}");
        if cut - c < RECORD_PREFIX {
            assert!(reason.contains("prefix"), "cut at {cut}: {reason}");
        }
    }
    // records_with_offsets stops at the torn record, at its file offset.
    let (image, _) = segment_image();
    let scans = wal::records_with_offsets(&image[..image.len() - 1]);
    assert_eq!(scans.len(), 3);
    assert!(matches!(&scans[2], Scan::Bad { offset: 98, .. }), "{:?}", scans[2]);
}

#[test]
fn read_record_reports_bad_records_at_the_record_start() {
    let (b, [a, m, c]) = segment_stream();
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
    assert!(matches!(read_record(&d, a), Scan::Record { lsn: 5, .. }));
}

// ---------------------------------------------------------------------------
// Keys are 1 to 65,535 bytes, in records and snapshot entries alike: a
// record or entry that claims another length is damage, never an entry.

/// Every record type that carries keys, with `key` as (one of) its key(s).
fn records_with_key(key: &[u8]) -> Vec<Vec<u8>> {
    let ok: &[u8] = b"fine";
    let pair_keys: [&[u8]; 2] = [ok, key];
    let pair_values: [&[u8]; 2] = [b"1", b"2"];
    let recs = [
        Record::Set { key, value: b"v", expires_at: 0 },
        Record::SetInt { key, value: 1, expires_at: 0 },
        Record::Delete { key },
        Record::MSet { keys: &pair_keys, values: &pair_values, expires_at: 0 },
        Record::MDel { keys: &pair_keys },
        Record::Expire { key, expires_at: E },
        Record::Lock { key, owner: b"me", expires_at: E, token: 1 },
    ];
    recs.iter()
        .map(|r| {
            let mut out = Vec::new();
            r.encode(9, &mut out);
            out
        })
        .collect()
}

#[test]
fn record_key_lengths() {
    for len in [0usize, 65_536, 1 << 17] {
        for rec in records_with_key(&vec![b'k'; len]) {
            // The CRC is right: only the key length is wrong.
            let err = decode_body(&rec[8..]).expect_err("a bad key length decodes").to_string();
            assert!(err.contains(&format!("key of {len} bytes")), "{err}");
            let reason = bad_at(&rec, 0);
            assert!(reason.contains("does not decode"), "{reason}");
        }
    }
    for len in [1usize, 65_535] {
        for rec in records_with_key(&vec![b'k'; len]) {
            assert!(matches!(read_record(&rec, 0), Scan::Record { lsn: 9, .. }), "a {len}-byte key refused");
        }
    }
    // Values and lock owners are not keys: empty ones are fine.
    let mut out = Vec::new();
    Record::Set { key: b"k", value: b"", expires_at: 0 }.encode(1, &mut out);
    Record::Lock { key: b"k", owner: b"", expires_at: E, token: 1 }.encode(2, &mut out);
    assert!(matches!(read_record(&out, 0), Scan::Record { lsn: 1, len: 34, .. }));
    assert!(matches!(read_record(&out, 34), Scan::Record { lsn: 2, .. }));
}

// ---------------------------------------------------------------------------
// WAL blocks: 32 KiB blocks, each after the first starting with an 8-byte
// header (first: u32, crc: u32) that names the first record starting in it.

#[test]
fn block_header_golden() {
    let cases: [(u64, u64, u32, &str); 5] = [
        // segment first LSN, block index, first, header bytes
        (1, 1, 108, "6c000000 1fa4e780"),
        (1, 1, 8, "08000000 4bc4a334"),
        (1, 1, 0, "00000000 a4ec17f1"), // no record starts in the block
        (1, 2, 108, "6c000000 ef7679f7"),
        (0x0123_4567_89ab_cdef, 3, 32_767, "ff7f0000 de522ca5"),
    ];
    for (seg, blk, first, bytes) in cases {
        let expected = hex(&[bytes]);
        // crc = CRC-32 of segment_first_lsn: u64 | block_index: u64 | first: u32.
        let mut bound = seg.to_le_bytes().to_vec();
        bound.extend_from_slice(&blk.to_le_bytes());
        bound.extend_from_slice(&first.to_le_bytes());
        assert_eq!(crc32_ref(&bound), u32_at(&expected, 4), "hand-written crc ({seg}, {blk}, {first})");
        assert_eq!(to_hex(&block::encode_header(seg, blk, first)), to_hex(&expected));

        // decode_header reads it where it belongs, at blk * 32768.
        let mut image = vec![0u8; blk as usize * BLOCK];
        image.extend_from_slice(&expected);
        assert_eq!(block::decode_header(&image, seg, blk), Some(first));
        // Bound to its segment and position.
        assert_eq!(block::decode_header(&image, seg + 1, blk), None);
        let mut moved = vec![0u8; (blk as usize + 1) * BLOCK];
        moved.extend_from_slice(&expected);
        assert_eq!(block::decode_header(&moved, seg, blk + 1), None);
        // Any flipped bit is caught.
        for i in 0..BLOCK_HEADER * 8 {
            let mut d = image.clone();
            d[blk as usize * BLOCK + i / 8] ^= 1 << (i % 8);
            assert_eq!(block::decode_header(&d, seg, blk), None, "flip {i}");
        }
        // A file that ends inside the header has no header there.
        assert_eq!(block::decode_header(&image[..image.len() - 1], seg, blk), None);
    }
    // `first` must be 0 or a payload offset (8 .. 32768), even with a valid CRC.
    for first in [1u32, 7, 32_768, 40_000, u32::MAX] {
        let mut image = vec![0u8; BLOCK];
        image.extend_from_slice(&block::encode_header(1, 1, first));
        assert_eq!(block::decode_header(&image, 1, 1), None, "first = {first}");
    }
}

#[test]
fn block_offsets() {
    // Block 0 carries 32768 - 32 stream bytes, every later block 32768 - 8.
    let (first_payload, payload) = (BLOCK - 32, BLOCK - BLOCK_HEADER);
    assert_eq!(block::physical(0), 32);
    assert_eq!(block::physical(first_payload - 1), BLOCK - 1);
    assert_eq!(block::physical(first_payload), BLOCK + 8);
    assert_eq!(block::physical(first_payload + payload), 2 * BLOCK + 8);
    assert_eq!(block::logical(BLOCK + 8 + 100), first_payload + 100);
    for (len, stream) in [(0, 0), (32, 0), (33, 1), (BLOCK, first_payload), (BLOCK + 4, first_payload), (BLOCK + 9, first_payload + 1)] {
        assert_eq!(block::stream_len(len), stream, "len {len}");
    }
    // A file that ends inside a block header ends the stream there.
    let image = vec![0u8; BLOCK + 4];
    assert_eq!(block::deblock(&image).len(), first_payload);
}

/// `Set { key: "k", value }` whose whole record (prefix included) is `total` bytes.
fn big_set(lsn: u64, total: usize) -> Vec<u8> {
    let value: Vec<u8> = (0..total - 34).map(|i| (i % 251) as u8).collect();
    let mut out = Vec::new();
    Record::Set { key: b"k", value: &value, expires_at: 0 }.encode(lsn, &mut out);
    assert_eq!(out.len(), total);
    out
}

fn small_delete(lsn: u64) -> Vec<u8> {
    let mut out = Vec::new();
    Record::Delete { key: b"a" }.encode(lsn, &mut out);
    assert_eq!(out.len(), 22);
    out
}

fn framed_segment(first_lsn: u64, batches: &[&[u8]]) -> Vec<u8> {
    let mut image = encode_segment_header(first_lsn).to_vec();
    let mut out = Vec::new();
    for batch in batches {
        block::frame(&mut out, batch, image.len() as u64, first_lsn);
        image.extend_from_slice(&out);
    }
    image
}

#[test]
fn framing_golden_record_straddles_a_block_boundary() {
    // Record 1 (32,836 bytes) fills the 32,736 stream bytes of block 0 and
    // the first 100 of block 1; record 2 (22 bytes) starts right after it.
    let r1 = big_set(1, 32_736 + 100);
    let r2 = small_delete(2);
    let batch = [r1.clone(), r2.clone()].concat();
    let image = framed_segment(1, &[&batch]);

    assert_eq!(image.len(), 32 + r1.len() + 8 + r2.len());
    assert_eq!(&image[..32], &encode_segment_header(1));
    assert_eq!(&image[32..32_768], &r1[..32_736]);
    // Block 1's header at file offset 32768: first = 8 + 100 = 108, the
    // offset in the block where record 2 starts.
    assert_eq!(to_hex(&image[32_768..32_776]), "6c0000001fa4e780");
    assert_eq!(&image[32_776..32_876], &r1[32_736..]);
    assert_eq!(&image[32_876..], &r2[..]);

    // The stream without the headers is the batch.
    assert_eq!(block::deblock(&image), batch);
    assert_eq!(block::stream_len(image.len()), batch.len());
    assert_eq!(block::count_records(&image), 2);
    assert_eq!(block::decode_header(&image, 1, 1), Some(108));
    assert_eq!(block::physical(r1.len()), 32_876);
    assert_eq!(block::logical(32_876), r1.len());
    // File offsets and on-disk lengths (the straddling record's length
    // includes the block header inside it).
    let at: Vec<(usize, usize, u64)> = wal::records_with_offsets(&image)
        .into_iter()
        .map(|s| match s {
            Scan::Record { offset, len, lsn, .. } => (offset, len, lsn),
            Scan::Bad { offset, reason } => panic!("damage at {offset}: {reason}"),
        })
        .collect();
    assert_eq!(at, vec![(32, r1.len() + 8, 1), (32_876, 22, 2)]);

    // Batching does not change the bytes: the header written with record 1
    // already names where record 2, still to come, will start.
    assert_eq!(framed_segment(1, &[&r1, &r2]), image);
}

#[test]
fn framing_golden_block_without_a_record_start() {
    // Record 1 covers all of block 1's payload and 100 bytes of block 2.
    let r1 = big_set(1, 32_736 + 32_760 + 100);
    let r2 = small_delete(2);
    let batch = [r1.clone(), r2.clone()].concat();
    let image = framed_segment(1, &[&batch]);
    assert_eq!(image.len(), 32 + r1.len() + 16 + r2.len());
    assert_eq!(to_hex(&image[32_768..32_776]), "00000000a4ec17f1"); // block 1: first 0
    assert_eq!(to_hex(&image[65_536..65_544]), "6c000000ef7679f7"); // block 2: first 108
    assert_eq!(&image[65_536 + 108..], &r2[..]);
    assert_eq!(block::deblock(&image), batch);
    assert_eq!(framed_segment(1, &[&r1, &r2]), image);
}

#[test]
fn framing_golden_batch_ends_on_a_block_boundary() {
    // Record 1 ends exactly where block 0 ends: the header of block 1 is
    // written with the next batch, and names its first record at offset 8.
    let r1 = big_set(1, 32_736);
    let r2 = small_delete(2);
    let image = framed_segment(1, &[&r1]);
    assert_eq!(image.len(), BLOCK);
    let image = framed_segment(1, &[&r1, &r2]);
    assert_eq!(to_hex(&image[32_768..32_776]), "080000004bc4a334");
    assert_eq!(&image[32_776..], &r2[..]);
    assert_eq!(framed_segment(1, &[&[r1, r2].concat()]), image);
}

/// Many records over four blocks: the image and each record's stream offset.
fn multi_block_segment(value_for: impl Fn(usize) -> Vec<u8>) -> (Vec<u8>, Vec<usize>) {
    let mut batch = Vec::new();
    let mut starts = Vec::new();
    let mut i = 0;
    while batch.len() < 3 * BLOCK + 1000 {
        starts.push(batch.len());
        let key = format!("key{i:04}");
        Record::Set { key: key.as_bytes(), value: &value_for(i), expires_at: 0 }.encode(1 + i as u64, &mut batch);
        i += 1;
    }
    (framed_segment(1, &[&batch]), starts)
}

/// The first record start in block `k` (k >= 1), from the record list.
fn first_start_in_block(starts: &[usize], k: usize) -> Option<usize> {
    let from = block::logical(k * BLOCK + BLOCK_HEADER);
    let to = block::logical((k + 1) * BLOCK - 1) + 1;
    starts.iter().copied().find(|&s| s >= from && s < to)
}

#[test]
fn resume_points_are_the_record_starts_block_headers_name() {
    let (image, starts) = multi_block_segment(|_| vec![b'v'; 300]);
    let stream = block::deblock(&image);
    let blocks = image.len().div_ceil(BLOCK);
    assert_eq!(blocks, 4);
    // Each header names the first record that starts in its block.
    for k in 1..blocks {
        let first = block::decode_header(&image, 1, k as u64).expect("intact header");
        assert_eq!(Some(block::logical(k * BLOCK + first as usize)), first_start_in_block(&starts, k), "block {k}");
    }

    // Damage to record 10, in block 0: resume where block 1's header says.
    let damaged = starts[10];
    let mut d = image.clone();
    d[block::physical(damaged) + 12] ^= 0xff;
    let dstream = block::deblock(&d);
    assert!(matches!(wal::read_view(&dstream, damaged), wal::ScanView::Bad { .. }));
    let points: Vec<usize> = block::resume_points(&d, 1, damaged).collect();
    let expected: Vec<usize> = (1..blocks).filter_map(|k| first_start_in_block(&starts, k)).collect();
    assert_eq!(points, expected);
    assert!(matches!(wal::read_view(&dstream, points[0]), wal::ScanView::Record { .. }));
    assert_eq!(&dstream[points[0]..], &stream[points[0]..]);

    // Damage in block 1 resumes no earlier than block 2.
    let in_block_1 = first_start_in_block(&starts, 1).unwrap() + 1;
    assert_eq!(block::resume_points(&image, 1, in_block_1).collect::<Vec<_>>(), expected[1..]);

    // A damaged block header is skipped: block 2's header is next.
    let mut d2 = d.clone();
    d2[BLOCK + 2] ^= 0x01;
    assert_eq!(block::decode_header(&d2, 1, 1), None);
    assert_eq!(block::resume_points(&d2, 1, damaged).collect::<Vec<_>>(), expected[1..]);

    // Headers of another segment (a different first LSN) are never used.
    assert_eq!(block::resume_points(&d, 2, damaged).count(), 0);
}

#[test]
fn a_value_holding_a_record_image_is_never_a_resume_point() {
    // The forged record: well-formed, checksummed, with a large LSN.
    let mut forged = Vec::new();
    Record::Set { key: b"evil", value: b"x", expires_at: 0 }.encode(1 << 40, &mut forged);
    // Record 3 carries a value of 40,000 bytes ending with the forgery, so
    // it straddles block 0 and 1 with the forged image inside block 1.
    let (image, starts) = multi_block_segment(|i| {
        if i == 3 {
            let mut v = vec![b'p'; 40_000 - forged.len()];
            v.extend_from_slice(&forged);
            v
        } else {
            vec![b'v'; 300]
        }
    });
    let stream = block::deblock(&image);
    let carrier = starts[3];
    let forged_at = starts[4] - forged.len();
    assert!(block::physical(forged_at) > BLOCK, "the forgery lies in block 1");
    // A byte-by-byte scan would accept it.
    assert!(matches!(wal::read_view(&stream, forged_at), wal::ScanView::Record { lsn, .. } if lsn == 1 << 40));

    // Damage the carrier: every resume point is a real record start.
    let mut d = image.clone();
    d[block::physical(carrier) + 4] ^= 0x01; // its CRC
    let points: Vec<usize> = block::resume_points(&d, 1, carrier).collect();
    assert!(!points.is_empty());
    assert!(!points.contains(&forged_at));
    for p in &points {
        assert!(starts.contains(p), "resume point {p} is not a record start");
    }
    assert_eq!(points[0], starts[4], "resumes at the record after the carrier");
    // The same holds with the carrier's prefix destroyed outright.
    let mut d = image.clone();
    let p = block::physical(carrier);
    d[p..p + 8].fill(0xff);
    assert_eq!(block::resume_points(&d, 1, carrier).next(), Some(starts[4]));
}

// ---------------------------------------------------------------------------
// Snapshots

/// The golden snapshot: 2 shards, shard 0 copied when the last LSN was 10,
/// then record 11 (Delete "a", a shard-0 key) was logged, then shard 1 was
/// copied (covered 11). The cut is 11, and the tail carries record 11,
/// which shard 0's entries do not reflect yet. Record 12 will start at
/// offset 500 of the record stream of segment `wal-…001.log`.
fn golden_snapshot() -> Vec<u8> {
    hex(&[
        // header
        "44424b56534e4150", // "DBKVSNAP"
        "05000000",         // version 5
        "02000000",         // 2 shards
        "7766554433221100", // hash seed 0x0011223344556677
        "7b68e5cf8b010000", // created 1,700,000,000,123 ms
        "0000000000000000 0000000000000000", // reserved (bytes 32..48)
        GOLDEN_SECTIONS,
        // section table: length and CRC-32C (checked with a bitwise
        // Python implementation) of each section, reserved zero
        "4100000000000000 0f972146 00000000", // shard 0: 65 bytes
        "2200000000000000 4e75657d 00000000", // shard 1: 34 bytes
        "4e00000000000000 a2d76fe8 00000000", // tail: 78 bytes
        // trailer
        "0300000000000000", // 3 entries in all
        // SHA-256 of the header, the section table and the entry count
        // (checked with Python's hashlib)
        "71277d35d3f7a18285b49fcdc99f5b5f4ca3aa3794dedd219782101997651b76",
    ])
}

/// The golden snapshot's sections: two shards and the tail, laid out the
/// same in versions 4 and 5.
const GOLDEN_SECTIONS: &str = concat!(
    // shard 0
    "0a00000000000000", // covered LSN 10
    "0200000000000000", // 2 entries
    "00 0000000000000000 01000000 61 05000000 6170706c65", // bytes, no expiry, "a" = "apple"
    "01 0068e5cf8b010000 01000000 6e 08000000 0700000000000000", // int, expiry E, "n" = 7
    // shard 1
    "0b00000000000000", // covered LSN 11
    "0100000000000000", // 1 entry
    "00 0068e5cf8b010000 01000000 62 00000000", // bytes, expiry E, "b" = ""
    // tail
    "0b00000000000000", // cut LSN 11
    "2a00000000000000", // token high-water mark 42
    "0100000000000000", // resume segment: first LSN 1
    "f401000000000000", // resume offset 500 in its record stream
    "2100000023456789", // resume check: prefix of record 11 (len 0x21, CRC 0x89674523)
    "0100000000000000", // 1 tail record
    "1600000000000000", // 22 tail bytes
    "0e000000 fa48c21f 0b00000000000000 03 01000000 61", // GOLDEN_TAIL_RECORD
);

/// The same snapshot in version 4, as the previous release wrote it: the
/// sections, then the entry count and one SHA-256 over every byte before
/// it. This build still reads it (a data directory written by that
/// release opens).
fn golden_snapshot_v4() -> Vec<u8> {
    hex(&[
        "44424b56534e4150 04000000 02000000 7766554433221100 7b68e5cf8b010000 0000000000000000 0000000000000000",
        GOLDEN_SECTIONS,
        "0300000000000000", // 3 entries in all
        // SHA-256 of everything above (checked with Python's hashlib)
        "9b8b6952ef7cdf1a5c73d765c44527ce59aff2462bed1737d89baab52499104e",
    ])
}

/// Delete "a" at LSN 11, in WAL record framing.
const GOLDEN_TAIL_RECORD: &str = "0e000000 fa48c21f 0b00000000000000 03 01000000 61";

fn golden_meta() -> SnapshotMeta {
    SnapshotMeta { shard_count: 2, hash_seed: 0x0011_2233_4455_6677, created_ms: E + 123 }
}

const GOLDEN_CUT: SnapshotCut = SnapshotCut { cut_lsn: 11, token_hwm: 42, resume_segment: 1, resume_offset: 500, resume_check: 0x8967_4523_0000_0021 };

/// A cut with the golden snapshot's resume position.
fn cut_at(cut_lsn: u64, token_hwm: u64) -> SnapshotCut {
    SnapshotCut { cut_lsn, token_hwm, ..GOLDEN_CUT }
}

/// Writes a snapshot with `SnapshotWriter` on a `SimVfs` and returns its bytes.
fn write_snapshot(meta: &SnapshotMeta, shards: &[(u64, u64, Vec<u8>)], cut: SnapshotCut, tail_count: u64, tail: &[u8]) -> Vec<u8> {
    let sim = SimVfs::new();
    let dir = Path::new("/sim/db");
    sim.create_dir(dir).unwrap();
    let tmp = dir.join("snapshot.tmp");
    let mut w = SnapshotWriter::create(&sim, &tmp, meta).unwrap();
    for (covered, count, encoded) in shards {
        w.shard(*covered, *count, encoded).unwrap();
    }
    w.tail(cut, tail_count, tail).unwrap();
    let size = w.finish().unwrap();
    let written = sim.read(&tmp).unwrap();
    assert_eq!(size as usize, written.len());
    written
}

fn golden_shards() -> Vec<(u64, u64, Vec<u8>)> {
    let mut s0 = Vec::new();
    encode_entry(&mut s0, snapshot::KIND_BYTES, 0, b"a", b"apple");
    encode_entry(&mut s0, snapshot::KIND_INT, E, b"n", &7i64.to_le_bytes());
    let mut s1 = Vec::new();
    encode_entry(&mut s1, snapshot::KIND_BYTES, E, b"b", b"");
    vec![(10, 2, s0), (11, 1, s1)]
}

/// Sealed WAL records, back to back.
fn tail_records(recs: &[(u64, Record<'_>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (lsn, r) in recs {
        r.encode(*lsn, &mut out);
    }
    out
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
    let sections = [48..48 + 65, 48 + 65..48 + 65 + 34, 48 + 65 + 34..48 + 65 + 34 + 78];
    assert_eq!(expected.len(), 48 + (16 + 23 + 26) + (16 + 18) + (56 + 22) + 3 * 16 + 40);
    // The section table agrees with independent CRC-32Cs of the hand-built
    // sections, and the digest with an independent SHA-256.
    let table = expected.len() - 40 - 48;
    for (i, r) in sections.iter().enumerate() {
        assert_eq!(u32_at(&expected, table + 16 * i + 8), crc32c_ref(&expected[r.clone()]), "section {i}");
    }
    {
        use sha2::{Digest, Sha256};
        let n = expected.len() - 32;
        let mut sha = Sha256::new();
        sha.update(&expected[..48]);
        sha.update(&expected[table..n]);
        assert_eq!(sha.finalize().as_slice(), &expected[n..]);
    }
    // The tail record is a WAL record like any other.
    let rec = hex(&[GOLDEN_TAIL_RECORD]);
    assert_eq!(u32_at(&rec, 4), crc32_ref(&rec[8..]));
    assert_eq!(tail_records(&[(11, Record::Delete { key: b"a" })]), rec);

    let written = write_snapshot(&golden_meta(), &golden_shards(), GOLDEN_CUT, 1, &rec);
    assert_eq!(to_hex(&written), to_hex(&expected));
    assert_eq!(snapshot::snapshot_version(&written), Some(5));
    assert_eq!(snapshot::entry_count_hint(&written), 3);
}

/// A version-4 snapshot, as the previous release wrote it, still loads,
/// with the same contents as its version-5 twin, serially and in parallel.
#[test]
fn version_4_snapshot_loads() {
    let v4 = golden_snapshot_v4();
    {
        use sha2::{Digest, Sha256};
        let n = v4.len() - 32;
        assert_eq!(Sha256::digest(&v4[..n]).as_slice(), &v4[n..]);
    }
    assert_eq!(snapshot::snapshot_version(&v4), Some(4));
    assert_eq!(snapshot::entry_count_hint(&v4), 3);
    let (mut a, b) = (loaded_contents(&v4), loaded_contents(&golden_snapshot()));
    assert_eq!(a, b);
    a.3.sort();
    assert_eq!(parallel_contents(&v4), a);
}

type Contents = (u64, Vec<u64>, std::ops::Range<usize>, Vec<(u8, u64, Vec<u8>, Vec<u8>)>);

/// What `load` passes on and returns (the tail as its bytes' offset from
/// the section table or trailer, so both versions compare equal).
fn loaded_contents(b: &[u8]) -> Contents {
    let mut seen = Vec::new();
    let l = snapshot::load("snap", b, |e| seen.push((e.kind, e.expires_at, e.key.to_vec(), e.value.to_vec()))).unwrap();
    assert_eq!((l.meta, l.cut, l.tail_records), (golden_meta(), GOLDEN_CUT, 1));
    (l.entries, l.shard_lsns, l.tail, seen)
}

/// The same through `load_parallel` on two threads, entries sorted (the
/// order across sections is not fixed).
fn parallel_contents(b: &[u8]) -> Contents {
    let seen = std::sync::Mutex::new(Vec::new());
    let mut progress = Vec::new();
    let l = snapshot::load_parallel("snap", b, 2, &|batch| seen.lock().unwrap().extend(batch.iter().map(|e| (e.kind, e.expires_at, e.key.to_vec(), e.value.to_vec()))), &mut |d| progress.push(d))
        .unwrap();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "progress goes forward: {progress:?}");
    let mut seen = seen.into_inner().unwrap();
    seen.sort();
    (l.entries, l.shard_lsns, l.tail, seen)
}

#[test]
fn snapshot_load_parallel_matches_load() {
    let b = golden_snapshot();
    let (entries, lsns, tail, mut seen) = loaded_contents(&b);
    seen.sort();
    assert_eq!(parallel_contents(&b), (entries, lsns, tail, seen));
    // Many shards, on more threads than there are cores or sections.
    let meta = SnapshotMeta { shard_count: 64, hash_seed: 1, created_ms: 0 };
    let shards: Vec<(u64, u64, Vec<u8>)> = (0..64u64)
        .map(|i| {
            let mut s = Vec::new();
            for j in 0..i {
                encode_entry(&mut s, snapshot::KIND_BYTES, j, format!("k{i}-{j}").as_bytes(), &vec![i as u8; j as usize]);
            }
            (5, i, s)
        })
        .collect();
    let cut = SnapshotCut { cut_lsn: 5, token_hwm: 0, resume_segment: 1, resume_offset: 0, resume_check: 0 };
    let b = write_snapshot(&meta, &shards, cut, 0, &[]);
    for workers in [1, 2, 3, 100] {
        let n = std::sync::atomic::AtomicU64::new(0);
        let l = snapshot::load_parallel("snap", &b, workers, &|batch| {
            n.fetch_add(batch.len() as u64, Ordering::Relaxed);
        }, &mut |_| {})
        .unwrap();
        assert_eq!((l.entries, n.into_inner()), (63 * 64 / 2, 63 * 64 / 2), "{workers} workers");
    }
}

/// Damage to any byte of a section is found by its CRC-32C, named by the
/// section's offset, before any of that section's entries are passed on;
/// damage to the header, the table or the trailer by the SHA-256.
#[test]
fn snapshot_section_damage_is_found_by_its_checksum() {
    let b = golden_snapshot();
    let sections = [(48usize, 65usize), (113, 34), (147, 78)];
    for (start, len) in sections {
        for i in [start, start + len / 2, start + len - 1] {
            let mut d = b.clone();
            d[i] ^= 0x10;
            for err in [
                snapshot::load("snap", &d, |_| panic!("entries passed on")).err(),
                snapshot::load_parallel("snap", &d, 2, &|batch| assert!(batch.iter().all(|e| e.key != b"b" || start != 113)), &mut |_| {}).err(),
            ] {
                let err = err.unwrap_or_else(|| panic!("flip at {i} accepted")).to_string();
                assert!(err.contains(&format!("at offset {start}: snapshot section CRC-32C mismatch")), "flip at {i}: {err}");
            }
        }
    }
    let table = b.len() - 40 - 48;
    for i in [0, 8, 47, table, table + 8, table + 47, b.len() - 40, b.len() - 1] {
        let mut d = b.clone();
        d[i] ^= 0x01;
        let err = snapshot::load("snap", &d, |_| {}).err().unwrap_or_else(|| panic!("flip at {i} accepted")).to_string();
        assert!(err.contains("SHA-256 mismatch") || err.contains("bad magic"), "flip at {i}: {err}");
    }
}

#[test]
fn snapshot_load_round_trip() {
    let b = golden_snapshot();
    let mut seen = Vec::new();
    let loaded = snapshot::load("snap", &b, |e| seen.push((e.kind, e.expires_at, e.key.to_vec(), e.value.to_vec()))).unwrap();
    assert_eq!(loaded.meta, golden_meta());
    assert_eq!(loaded.cut, GOLDEN_CUT);
    assert_eq!(loaded.shard_lsns, vec![10, 11]);
    assert_eq!(loaded.entries, 3);
    assert_eq!(loaded.tail_records, 1);
    // The tail records lie between the 56-byte tail head and the trailer.
    let tail_at = 48 + (16 + 23 + 26) + (16 + 18) + 56;
    assert_eq!(loaded.tail, tail_at..tail_at + 22);
    assert_eq!(to_hex(&b[loaded.tail.clone()]), to_hex(&hex(&[GOLDEN_TAIL_RECORD])));
    match read_record(&b[loaded.tail.clone()], 0) {
        Scan::Record { lsn: 11, record, .. } => assert_eq!(record, OwnedRecord::Delete { key: b"a".to_vec() }),
        other => panic!("tail record: {other:?}"),
    }
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
    for b in [golden_snapshot(), golden_snapshot_v4()] {
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
}

#[test]
fn snapshot_load_rejects_truncation_and_extension() {
    for b in [golden_snapshot(), golden_snapshot_v4()] {
    for n in 0..b.len() {
        assert!(snapshot::load("snap", &b[..n], |_| {}).is_err(), "truncated to {n} accepted");
    }
    let mut long = b.clone();
    long.push(0);
    assert!(snapshot::load("snap", &long, |_| {}).is_err());
    }
}

/// Re-seals a modified version-5 snapshot image with correct section
/// checksums and digest (one table row per shard its header names, and one
/// for the tail).
fn reseal(b: &mut [u8]) {
    let rows = u32_at(b, 12) as usize + 1;
    reseal_rows(b, rows);
}

/// `reseal` for an image whose section table has `rows` rows.
fn reseal_rows(b: &mut [u8], rows: usize) {
    use sha2::{Digest, Sha256};
    let n = b.len() - 32;
    let table = n - 8 - rows * 16;
    let mut at = 48;
    for row in (table..n - 8).step_by(16) {
        let len = u64::from_le_bytes(b[row..row + 8].try_into().unwrap()) as usize;
        let crc = crc32c_ref(&b[at..at + len]);
        b[row + 8..row + 12].copy_from_slice(&crc.to_le_bytes());
        at += len;
    }
    let mut sha = Sha256::new();
    sha.update(&b[..48]);
    sha.update(&b[table..n]);
    let d = sha.finalize();
    b[n..].copy_from_slice(&d);
}

#[test]
fn snapshot_load_structural_checks_behind_a_valid_digest() {
    let b = golden_snapshot();
    // Unknown versions: the version-1 format and a newer one.
    for v in [1u32, 6] {
        let mut d = b.clone();
        d[8..12].copy_from_slice(&v.to_le_bytes());
        reseal(&mut d);
        let err = snapshot::load("snap", &d, |_| {}).err().expect("unknown version refused").to_string();
        assert!(err.contains(&format!("unsupported snapshot version {v}")), "{err}");
        assert_eq!(snapshot::snapshot_version(&d), Some(v));
        // Without a matching digest the version field is damage, not a version.
        d[8] ^= 0x40;
        assert_eq!(snapshot::snapshot_version(&d), None);
    }
    // Wrong total in the trailer.
    let mut d = b.clone();
    let t = d.len() - 40;
    d[t] = 4;
    reseal(&mut d);
    assert!(snapshot::load("snap", &d, |_| {}).is_err());
    // A shard count that does not match the sections, or is not a power of two.
    for count in [0u32, 1, 3, 4] {
        let mut d = b.clone();
        d[12..16].copy_from_slice(&count.to_le_bytes());
        reseal_rows(&mut d, 3);
        assert!(snapshot::load("snap", &d, |_| {}).is_err(), "shard count {count} accepted");
    }
    // An entry kind other than 0 and 1, and an int entry whose value is not 8 bytes.
    let mut d = b.clone();
    d[48 + 16] = 2;
    reseal(&mut d);
    assert!(snapshot::load("snap", &d, |_| {}).err().expect("kind 2 refused").to_string().contains("entry kind 2"));
    let mut d = b.clone();
    d[48 + 16] = 1; // "a" = "apple" as an int
    reseal(&mut d);
    assert!(snapshot::load("snap", &d, |_| {}).is_err());
    // The reserved bytes 32..48 are ignored.
    let mut d = b.clone();
    d[32] = 1;
    d[47] = 0xff;
    reseal(&mut d);
    assert!(snapshot::load("snap", &d, |_| {}).is_ok());
}

/// `load`'s error for a snapshot built from these parts (the golden
/// snapshot's meta and entries unless `shards` says otherwise).
fn load_err(shards: &[(u64, u64, Vec<u8>)], cut: SnapshotCut, count: u64, tail: &[u8]) -> String {
    let b = write_snapshot(&golden_meta(), shards, cut, count, tail);
    match snapshot::load("snap", &b, |_| {}) {
        Ok(_) => panic!("accepted: shards {:?}, {cut:?}, count {count}", shards.iter().map(|s| s.0).collect::<Vec<_>>()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn snapshot_tail_checks() {
    let shards = golden_shards();
    let del = |lsn| tail_records(&[(lsn, Record::Delete { key: b"a" })]);
    // The golden parts load.
    let ok = write_snapshot(&golden_meta(), &shards, GOLDEN_CUT, 1, &del(11));
    assert!(snapshot::load("snap", &ok, |_| {}).is_ok());

    // A count that does not match the records.
    for count in [0, 2] {
        let err = load_err(&shards, GOLDEN_CUT, count, &del(11));
        assert!(err.contains("tail record count"), "count {count}: {err}");
    }
    // A record above the cut.
    let err = load_err(&shards, GOLDEN_CUT, 1, &del(12));
    assert!(err.contains("bad record in the tail"), "{err}");
    // A record not above the smallest covered LSN (10).
    let err = load_err(&shards, cut_at(11, 42), 2, &tail_records(&[(10, Record::Delete { key: b"a" }), (11, Record::Delete { key: b"a" })]));
    assert!(err.contains("bad record in the tail"), "{err}");
    // Records out of order, or repeated.
    for lsns in [[11u64, 11], [12, 11]] {
        let recs = tail_records(&[(lsns[0], Record::Delete { key: b"a" }), (lsns[1], Record::Delete { key: b"a" })]);
        let err = load_err(&shards, cut_at(12, 42), 2, &recs);
        assert!(err.contains("bad record in the tail"), "{lsns:?}: {err}");
    }
    // The last record is not the cut.
    let err = load_err(&shards, cut_at(12, 42), 1, &del(11));
    assert!(err.contains("last LSN"), "{err}");
    // An empty tail although a shard covers less than the cut.
    let err = load_err(&shards, GOLDEN_CUT, 0, &[]);
    assert!(err.contains("last LSN"), "{err}");
    // A resume segment that cannot hold record cut + 1 (segments are named
    // by their first LSN, from 1); cut + 1 itself is fine (a segment that
    // starts right after the cut), and the offset is not checked here.
    for seg in [0u64, 13, u64::MAX] {
        let err = load_err(&shards, SnapshotCut { resume_segment: seg, ..GOLDEN_CUT }, 1, &del(11));
        assert!(err.contains("resume segment"), "segment {seg}: {err}");
    }
    for (seg, offset) in [(12u64, 0u64), (1, 0), (11, u64::MAX)] {
        let b = write_snapshot(&golden_meta(), &shards, SnapshotCut { resume_segment: seg, resume_offset: offset, ..GOLDEN_CUT }, 1, &del(11));
        let loaded = snapshot::load("snap", &b, |_| {}).unwrap_or_else(|e| panic!("({seg}, {offset}): {e}"));
        assert_eq!((loaded.cut.resume_segment, loaded.cut.resume_offset), (seg, offset));
    }
    // A shard that covers more than the cut.
    let mut over = golden_shards();
    over[1].0 = 12;
    let err = load_err(&over, GOLDEN_CUT, 1, &del(11));
    assert!(err.contains("covers more than the snapshot's cut"), "{err}");
    // A damaged record in the tail (behind a valid digest), and a torn one.
    let mut bad = del(11);
    bad[20] ^= 1;
    assert!(load_err(&shards, GOLDEN_CUT, 1, &bad).contains("bad record in the tail"));
    assert!(load_err(&shards, GOLDEN_CUT, 1, &del(11)[..21]).contains("bad record in the tail"));
    // A tail byte length past the end.
    let mut d = ok.clone();
    let len_at = 48 + (16 + 23 + 26) + (16 + 18) + 48;
    d[len_at..len_at + 8].copy_from_slice(&1000u64.to_le_bytes());
    reseal(&mut d);
    assert!(snapshot::load("snap", &d, |_| {}).err().expect("tail past the end").to_string().contains("tail past the end"));

    // When every shard covers the cut, the tail is empty.
    let mut level = golden_shards();
    level[0].0 = 11;
    let b = write_snapshot(&golden_meta(), &level, GOLDEN_CUT, 0, &[]);
    let loaded = snapshot::load("snap", &b, |_| {}).unwrap();
    assert_eq!((loaded.tail_records, loaded.tail.len(), loaded.cut), (0, 0, GOLDEN_CUT));
    // A tail may hold records for any shard, and skip LSNs (the writer
    // copies every record after the smallest covered LSN, so it does not).
    let recs = tail_records(&[(11, Record::Delete { key: b"a" }), (13, Record::Set { key: b"b", value: b"2", expires_at: 0 })]);
    let b = write_snapshot(&golden_meta(), &golden_shards(), cut_at(13, 0), 2, &recs);
    assert_eq!(snapshot::load("snap", &b, |_| {}).unwrap().tail_records, 2);
}

#[test]
fn snapshot_entry_key_lengths() {
    let meta = SnapshotMeta { shard_count: 1, hash_seed: 0, created_ms: 0 };
    let cut = SnapshotCut { cut_lsn: 5, token_hwm: 0, resume_segment: 1, resume_offset: 0, resume_check: 0 };
    for (len, ok) in [(0usize, false), (1, true), (65_535, true), (65_536, false)] {
        let mut s = Vec::new();
        encode_entry(&mut s, snapshot::KIND_BYTES, 0, b"x", b"before");
        encode_entry(&mut s, snapshot::KIND_BYTES, 0, &vec![b'k'; len], b"v");
        let b = write_snapshot(&meta, &[(5, 2, s)], cut, 0, &[]);
        let r = snapshot::load("snap", &b, |_| {});
        assert_eq!(r.is_ok(), ok, "{len}-byte key");
        if !ok {
            let err = r.err().unwrap().to_string();
            assert!(err.contains(&format!("{len}-byte key")), "{err}");
        }
    }
}

#[test]
fn empty_snapshot_golden() {
    let meta = SnapshotMeta { shard_count: 1, hash_seed: 0, created_ms: 0 };
    // A new directory's first snapshot: nothing written yet, so record 1
    // will start at offset 0 of segment 1.
    let cut = SnapshotCut { cut_lsn: 0, token_hwm: 0, resume_segment: 1, resume_offset: 0, resume_check: 0 };
    let b = write_snapshot(&meta, &[(0, 0, Vec::new())], cut, 0, &[]);
    assert_eq!(b.len(), 48 + 16 + 56 + 2 * 16 + 40);
    let body = hex(&[
        "44424b56534e4150 05000000 01000000 0000000000000000 0000000000000000 0000000000000000 0000000000000000",
        "0000000000000000 0000000000000000",                                     // shard 0: covered 0, no entries
        "0000000000000000 0000000000000000", // tail: cut 0, token mark 0
        "0100000000000000 0000000000000000", //       resume at segment 1, offset 0
        "0000000000000000",                  //       no record before it to check
        "0000000000000000 0000000000000000", //       0 records, 0 bytes
        "1000000000000000 ea9a7042 00000000", // section table: shard 0, 16 bytes, CRC-32C
        "3800000000000000 b5df87c8 00000000", //                tail, 56 bytes, CRC-32C
        "0000000000000000",                                                      // total 0
    ]);
    assert_eq!(to_hex(&b[..body.len()]), to_hex(&body));
    // SHA-256 of the header, the table and the total (checked with Python's hashlib)
    assert_eq!(to_hex(&b[body.len()..]), "069807ee3b8efd9f120975c80c05e4879ef2a0d14d4c9e1ff2920bfbdd2fc8b2");
    let loaded = snapshot::load("snap", &b, |_| panic!("no entries")).unwrap();
    assert_eq!((loaded.shard_lsns, loaded.entries, loaded.tail_records), (vec![0], 0, 0));
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
    #[allow(clippy::type_complexity)] // one row per golden case: key, hashes, shard, slot parts
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
    let mut expected = hex(&["44424b5657414c00 04000000 00000000 0100000000000000 00000000 f65ed473"]);
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

#[test]
fn engine_frames_records_across_blocks() {
    let sim = SimVfs::new();
    let (clock, _time) = dbkv::Clock::manual(E);
    let e = Engine::open(sim_opts(&sim, clock)).unwrap();
    let big: Vec<u8> = (0..40_000).map(|i| (i % 253) as u8).collect();
    e.set(b"big", &big, 0).unwrap(); // 1: 40,036 bytes, across the end of block 0
    e.set(b"s", b"v", 0).unwrap(); // 2: starts in block 1
    e.close().unwrap();
    let seg = sim.read(Path::new("/sim/db/wal-00000000000000000001.log")).unwrap();

    let mut stream = Vec::new();
    Record::Set { key: b"big", value: &big, expires_at: 0 }.encode(1, &mut stream);
    let r2_at = stream.len();
    assert_eq!(r2_at, 40_036);
    Record::Set { key: b"s", value: b"v", expires_at: 0 }.encode(2, &mut stream);
    assert_eq!(seg.len(), 32 + stream.len() + 8);
    assert_eq!(&seg[..32], &encode_segment_header(1));
    assert_eq!(&seg[32..32_768], &stream[..32_736]);
    // Block 1: record 2 starts 40,036 - 32,736 = 7,300 payload bytes in,
    // at offset 8 + 7,300 = 7,308 (0x1c8c) of the block.
    assert_eq!(to_hex(&seg[32_768..32_776]), "8c1c000033bfa443");
    assert_eq!(&seg[32_776..], &stream[32_736..]);
    assert_eq!(block::deblock(&seg), stream);

    // And it reads back.
    let e = Engine::open(sim_opts(&sim, dbkv::Clock::manual(E).0)).unwrap();
    assert_eq!(e.get(b"big").unwrap(), Some(big));
    assert_eq!(e.get(b"s").unwrap(), Some(b"v".to_vec()));
    e.close().unwrap();
}

/// Options with the background expiry sweep out of the way.
fn no_sweep_opts(sim: &SimVfs, clock: dbkv::Clock) -> Options {
    Options { expiry_sweep_interval_ms: 3_600_000, ..sim_opts(sim, clock) }
}

#[test]
fn engine_logs_the_expiry_sweep() {
    let sim = SimVfs::new();
    let (clock, time) = dbkv::Clock::manual(E);
    let e = Engine::open(no_sweep_opts(&sim, clock.clone())).unwrap();
    e.set(b"t", b"v", 1000).unwrap(); // 1: Set, expires at E + 1000
    e.set(b"u", b"v", 5000).unwrap(); // 2
    time.store(E + 1000, Ordering::SeqCst);
    assert_eq!(e.get(b"t").unwrap(), None);
    // An expired key is not there for delete and expire: nothing is logged,
    // and the entry stays in the table until the sweep.
    assert!(!e.delete(b"t").unwrap());
    assert!(!e.expire(b"t", 60_000).unwrap());
    assert_eq!(e.sweep_expired(), 1); // 3: MDel ["t"]
    e.close().unwrap();

    let seg = sim.read(Path::new("/sim/db/wal-00000000000000000001.log")).unwrap();
    let mut expected = encode_segment_header(1).to_vec();
    let t: [&[u8]; 1] = [b"t"];
    Record::Set { key: b"t", value: b"v", expires_at: E + 1000 }.encode(1, &mut expected);
    Record::Set { key: b"u", value: b"v", expires_at: E + 5000 }.encode(2, &mut expected);
    Record::MDel { keys: &t }.encode(3, &mut expected);
    assert_eq!(to_hex(&seg), to_hex(&expected));

    // Replay does not look at the clock: with the clock stepped back, the
    // swept key stays gone (the MDel says so) and the other is live.
    time.store(E, Ordering::SeqCst);
    let e = Engine::open(no_sweep_opts(&sim, clock)).unwrap();
    assert_eq!(e.get(b"t").unwrap(), None);
    assert_eq!(e.get(b"u").unwrap(), Some(b"v".to_vec()));
    e.close().unwrap();
}

#[test]
fn replay_applies_records_whatever_the_time() {
    // A TTL extended before it ran out survives a restart after the
    // original expiry: replay keeps the entry the Set made, and the later
    // Expire (or Lock refresh) finds it.
    let sim = SimVfs::new();
    let (clock, time) = dbkv::Clock::manual(E);
    let e = Engine::open(no_sweep_opts(&sim, clock.clone())).unwrap();
    e.set(b"k", b"v", 1000).unwrap();
    assert!(e.persist(b"k").unwrap());
    e.set(b"x", b"v", 1000).unwrap();
    assert!(e.expire(b"x", 3_600_000).unwrap());
    assert_eq!(e.lock(b"L", b"w1", 1000).unwrap(), dbkv::LockOutcome::Granted(1));
    assert_eq!(e.extend_lock(b"L", b"w1", 3_600_000).unwrap(), dbkv::engine::OwnerOutcome::Done);
    e.close().unwrap();
    time.store(E + 1500, Ordering::SeqCst);
    let e = Engine::open(no_sweep_opts(&sim, clock)).unwrap();
    assert_eq!(e.get(b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(e.get(b"x").unwrap(), Some(b"v".to_vec()));
    assert_eq!(e.lock(b"L", b"w2", 1000).unwrap(), dbkv::LockOutcome::Locked);
    e.close().unwrap();
}

#[test]
fn engine_snapshot_is_one_cut() {
    let sim = SimVfs::new();
    let (clock, time) = dbkv::Clock::manual(E);
    let opts = Options { shards: 1, ..no_sweep_opts(&sim, clock) };
    let e = Engine::open(opts.clone()).unwrap();
    e.set(b"a", b"1", 0).unwrap(); // 1
    e.set(b"t", b"2", 1000).unwrap(); // 2
    assert_eq!(e.lock(b"l", b"me", 60_000).unwrap(), dbkv::LockOutcome::Granted(1)); // 3
    time.store(E + 2000, Ordering::SeqCst); // "t" expired, not swept
    e.snapshot().unwrap();
    e.close().unwrap();

    let dir = Path::new("/sim/db");
    let b = sim.read(&dir.join("snap-00000000000000000003.snap")).expect("named by its cut");
    let mut keys = Vec::new();
    let loaded = snapshot::load("snap", &b, |e| keys.push((e.key.to_vec(), e.expires_at))).unwrap();
    // Record 4 will start in segment 1 right after records 1 to 3
    // (35 + 35 + 44 bytes of record stream).
    // The check is the prefix (length and CRC) of record 3, which ends there.
    let stream = block::deblock(&sim.read(&dir.join("wal-00000000000000000001.log")).unwrap());
    let check = dbkv::persistence::record::prefix_word(&stream[70..]);
    assert_eq!(check & 0xffff_ffff, 36, "record 3 has a 36-byte body");
    assert_eq!(loaded.cut, SnapshotCut { cut_lsn: 3, token_hwm: 1, resume_segment: 1, resume_offset: 114, resume_check: check });
    assert_eq!(loaded.shard_lsns, vec![3]);
    assert_eq!((loaded.meta.shard_count, loaded.meta.created_ms), (1, E + 2000));
    assert_eq!(loaded.tail_records, 0, "one shard: nothing written during the copy");
    // The expired entry is in the table until a logged sweep, so it is in
    // the snapshot too.
    keys.sort();
    assert_eq!(keys, vec![(b"a".to_vec(), 0), (b"l".to_vec(), E + 60_000), (b"t".to_vec(), E + 1000)]);
}

// ---------------------------------------------------------------------------
// Versioning (FORMAT.md section 9): a file of another version is not damage;
// every mode refuses to open and modifies nothing.

const MODES: [RecoveryMode; 3] = [RecoveryMode::PointInTime, RecoveryMode::SkipCorrupted, RecoveryMode::Absolute];

fn one_key_db(sim: &SimVfs) {
    let e = Engine::open(sim_opts(sim, dbkv::Clock::default())).unwrap();
    e.set(b"k", b"v", 0).unwrap();
    e.close().unwrap();
}

/// Every file in the directory with its bytes.
fn dir_state(sim: &SimVfs) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new("/sim/db");
    let mut names = sim.list(dir).unwrap();
    names.sort();
    names.into_iter().map(|n| (n.clone(), sim.read(&dir.join(&n)).unwrap())).collect()
}

#[test]
fn unknown_segment_version_refuses_without_modifying() {
    for version in [1u32, 5] {
        let sim = SimVfs::new();
        one_key_db(&sim);
        let p = Path::new("/sim/db/wal-00000000000000000001.log");
        let mut h = sim.read(p).unwrap()[..32].to_vec();
        h[8..12].copy_from_slice(&version.to_le_bytes());
        let crc = crc32_ref(&h[..28]);
        h[28..32].copy_from_slice(&crc.to_le_bytes());
        sim.corrupt(p, 0, &h);
        let before = dir_state(&sim);
        for mode in MODES {
            let mut o = sim_opts(&sim, dbkv::Clock::default());
            o.recovery_mode = mode;
            let err = Engine::open(o).err().unwrap_or_else(|| panic!("{mode:?} opened a version-{version} segment")).to_string();
            assert!(err.contains(&format!("format version {version}")), "{mode:?}: {err}");
            assert_eq!(dir_state(&sim), before, "{mode:?} modified the directory");
        }
    }
}

#[test]
fn unknown_snapshot_version_refuses_without_modifying() {
    for version in [1u32, 6] {
        let sim = SimVfs::new();
        let e = Engine::open(sim_opts(&sim, dbkv::Clock::default())).unwrap();
        e.set(b"k", b"v", 0).unwrap();
        e.snapshot().unwrap();
        e.close().unwrap();
        let dir = Path::new("/sim/db");
        let name = sim.list(dir).unwrap().into_iter().find(|n| n.ends_with(".snap")).unwrap();
        let p = dir.join(&name);
        let mut b = sim.read(&p).unwrap();
        b[8..12].copy_from_slice(&version.to_le_bytes());
        reseal(&mut b);
        sim.corrupt(&p, 0, &b);
        let before = dir_state(&sim);
        for mode in MODES {
            let mut o = sim_opts(&sim, dbkv::Clock::default());
            o.recovery_mode = mode;
            let err = Engine::open(o).err().unwrap_or_else(|| panic!("{mode:?} opened past a version-{version} snapshot")).to_string();
            assert!(err.contains(&format!("format version {version}")), "{mode:?}: {err}");
            assert_eq!(dir_state(&sim), before, "{mode:?} moved or modified a file");
        }
    }
}

#[test]
fn parse_accepts_only_canonical_names() {
    for bad in [
        "wal-1.log",
        "wal-+0000000000000000001.log",
        "wal-000000000000000000001.log",
        "wal-0000000000000000001.log",
        "wal- 0000000000000000001.log",
        "wal-00000000000000000000.log", // LSNs start at 1
    ] {
        assert_eq!(parse_segment_name(bad), None, "{bad}");
    }
    for bad in ["snap-1.snap", "snap-+0000000000000000001.snap", "snap-000000000000000000001.snap", "snap-0000000000000000001.snap"] {
        assert_eq!(parse_snapshot_name(bad), None, "{bad}");
    }
    assert_eq!(wal::parse_lsn_digits("00000000000000000042"), Some(42));
    assert_eq!(wal::parse_lsn_digits("99999999999999999999"), None, "20 digits above u64::MAX");
}

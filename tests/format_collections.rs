//! Golden bytes for list, sorted-set and lock-token data (format version 4,
//! docs/FORMAT.md): WAL collection records (lengths and CRC-32s computed
//! with Python's zlib), snapshot entries of each new kind, and the chunking
//! that keeps a huge collection's snapshot entries bounded.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dbkv::engine::{Engine, Options, Scope, SyncMode, Value};
use dbkv::persistence::coll_record::CollOp;
use dbkv::persistence::record::{decode_body, OwnedRecord, Record};
use dbkv::persistence::snapshot;
use dbkv::persistence::snapshot_coll::{self, CHUNK_ELEMS, KIND_LIST, KIND_LIST_MORE, KIND_LOCK, KIND_ZSET, KIND_ZSET_MORE};
use dbkv::persistence::vfs::{SimVfs, Vfs};

fn hex(fields: &[&str]) -> Vec<u8> {
    let s: String = fields.concat().chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn collection_record_goldens() {
    let elems: Vec<&[u8]> = vec![b"a", b"bc"];
    let m: Vec<&[u8]> = vec![b"m"];
    let cases: Vec<(CollOp<&[u8]>, &str)> = vec![
        (CollOp::Push { key: b"q", left: false, elems }, "1e000000 5f05ce5d 0100000000000000 0a 01000000 71 00 02000000 01000000 61 02000000 6263"),
        (CollOp::Pop { key: b"q", left: true, count: 2 }, "13000000 bb1c4835 0200000000000000 0b 01000000 71 01 02000000"),
        (CollOp::LSet { key: b"q", index: 1, value: b"z" }, "1b000000 d2e33381 0300000000000000 0c 01000000 71 0100000000000000 01000000 7a"),
        (CollOp::LTrim { key: b"q", start: 0, end: 1 }, "1e000000 65e52fb3 0400000000000000 0d 01000000 71 0000000000000000 0100000000000000"),
        (CollOp::LRem { key: b"q", count: -2, value: b"a" }, "1b000000 2423c62a 0500000000000000 0e 01000000 71 feffffffffffffff 01000000 61"),
        (CollOp::ZAdd { key: b"z", pairs: vec![(1.5f64.to_bits(), &b"m"[..])] }, "1f000000 090ee4de 0600000000000000 0f 01000000 7a 01000000 000000000000f83f 01000000 6d"),
        (CollOp::ZRem { key: b"z", members: m }, "17000000 94f70725 0700000000000000 10 01000000 7a 01000000 01000000 6d"),
        (CollOp::ZRemRange { key: b"z", start: 0, end: 3 }, "1e000000 629b60c1 0800000000000000 11 01000000 7a 0000000000000000 0300000000000000"),
    ];
    for (i, (op, want)) in cases.into_iter().enumerate() {
        let mut out = Vec::new();
        Record::Coll(op.clone()).encode(i as u64 + 1, &mut out);
        assert_eq!(to_hex(&out), to_hex(&hex(&[want])), "{op:?}");
        let (lsn, rec) = decode_body(&out[8..]).unwrap();
        assert_eq!((lsn, rec), (i as u64 + 1, OwnedRecord::Coll(op.to_owned_op())));
    }
}

#[test]
fn malformed_collection_records_are_damage() {
    // A list-end flag other than 0/1, a NaN score, a short field.
    for body in [
        "0100000000000000 0b 01000000 71 02 01000000",
        "0100000000000000 0f 01000000 7a 01000000 000000000000f87f 01000000 6d",
        "0100000000000000 0c 01000000 71 01000000",
        "0100000000000000 0a 00000000 00 00000000", // empty key
    ] {
        assert!(decode_body(&hex(&[body])).is_err(), "{body}");
    }
}

#[test]
fn snapshot_entry_values() {
    assert_eq!(to_hex(&snapshot_coll::encode_list_chunk([&b"a"[..], b"bc"].into_iter())), to_hex(&hex(&["02000000 01000000 61 02000000 6263"])));
    assert_eq!(to_hex(&snapshot_coll::encode_zset_chunk([(&b"m"[..], 1.5)].into_iter())), to_hex(&hex(&["01000000 000000000000f83f 01000000 6d"])));
    assert_eq!(to_hex(&snapshot_coll::lock_value(b"me", 7)), "6d650700000000000000");
    assert_eq!((KIND_LOCK, KIND_LIST, KIND_LIST_MORE, KIND_ZSET, KIND_ZSET_MORE, CHUNK_ELEMS), (2, 3, 4, 5, 6, 1024));
    for bad in ["02000000 01000000 61", "01000000 000000000000f87f 01000000 6d"] {
        assert!(snapshot_coll::check(KIND_LIST, &hex(&[bad])).is_err() || snapshot_coll::check(KIND_ZSET, &hex(&[bad])).is_err());
    }
    assert!(snapshot_coll::check(KIND_LOCK, b"short").is_err());
}

fn sim_opts(sim: &SimVfs) -> Options {
    Options { data_dir: Some(PathBuf::from("/sim/db")), sync_mode: SyncMode::None, vfs: Some(Arc::new(sim.clone())), shards: 1, ..Options::default() }
}

/// A 2,500-element list and sorted set are written as runs of bounded
/// chunk entries, and load back exactly with the lock's token.
#[test]
fn snapshot_chunks_huge_collections_and_keeps_tokens() {
    let sim = SimVfs::new();
    let e = Engine::open(sim_opts(&sim)).unwrap();
    let items: Vec<Vec<u8>> = (0..2500).map(|i| format!("item{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = items.iter().map(|v| v.as_slice()).collect();
    let pairs: Vec<(f64, &[u8])> = refs.iter().enumerate().map(|(i, m)| ((i % 7) as f64 - 3.0, *m)).collect();
    e.transact(Scope::Keys(&[b"q", b"z"]), |t| {
        t.list_push(b"q", false, &refs).unwrap();
        t.zadd(b"z", &pairs).unwrap();
    })
    .unwrap();
    let token = match e.lock(b"l", b"me", 60_000).unwrap() {
        dbkv::engine::LockOutcome::Granted(t) => t,
        other => panic!("{other:?}"),
    };
    e.snapshot().unwrap();
    e.close().unwrap();

    let dir = Path::new("/sim/db");
    let name = sim.list(dir).unwrap().into_iter().find(|n| n.ends_with(".snap")).unwrap();
    let image = sim.read(&dir.join(name)).unwrap();
    let mut kinds = Vec::new();
    snapshot::load("snap", &image, |en| {
        assert!(en.value.len() < CHUNK_ELEMS * 32, "entry of {} bytes", en.value.len());
        kinds.push((en.key.to_vec(), en.kind));
    })
    .unwrap();
    let of = |k: &[u8]| kinds.iter().filter(|(key, _)| key == k).map(|(_, kind)| *kind).collect::<Vec<_>>();
    assert_eq!(of(b"q"), vec![KIND_LIST, KIND_LIST_MORE, KIND_LIST_MORE]);
    assert_eq!(of(b"z"), vec![KIND_ZSET, KIND_ZSET_MORE, KIND_ZSET_MORE]);
    assert_eq!(of(b"l"), vec![KIND_LOCK]);

    // Reopen from the snapshot alone (the WAL it covers is not needed).
    let e = Engine::open(sim_opts(&sim)).unwrap();
    e.transact(Scope::Keys(&[b"q", b"z", b"l"]), |t| {
        let l: Vec<Vec<u8>> = t.list(b"q").unwrap().unwrap().iter_from(0).map(|b| b.to_vec()).collect();
        assert_eq!(l, items);
        let z = t.zset(b"z").unwrap().unwrap();
        assert_eq!(z.len(), 2500);
        for (s, m) in &pairs {
            assert_eq!(z.score(m), Some(*s));
        }
        assert_eq!(t.lock_token(b"l").unwrap(), Some(token));
        assert!(matches!(t.get(b"l").unwrap().unwrap().value, Value::Bytes(b"me")));
    })
    .unwrap();
    assert_eq!(e.set_fenced(b"l", token, b"res", b"v", 0).unwrap(), dbkv::engine::FenceOutcome::Done);
    assert_eq!(e.set_fenced(b"l", token - 1, b"res", b"w", 0).unwrap(), dbkv::engine::FenceOutcome::Stale);
    assert_eq!(e.get(b"q"), Err(dbkv::Error::WrongType));
}

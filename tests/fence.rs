//! Fenced writes in the engine: the storage, not the client, rejects a
//! stale fencing token, atomically with the write.

use std::sync::atomic::Ordering;

use dbkv::engine::{FenceOutcome, LockOutcome, Options};
use dbkv::{Clock, Engine};

fn granted(o: LockOutcome) -> u64 {
    match o {
        LockOutcome::Granted(t) => t,
        LockOutcome::Locked => panic!("lock refused"),
    }
}

/// Kleppmann's example: holder A pauses past its lease, B takes the lock
/// with a newer token and writes; A wakes and writes with its old token.
/// Without fencing A's write would clobber B's; here it is refused.
#[test]
fn a_paused_holder_with_an_expired_lease_is_refused() {
    let (clock, now) = Clock::manual(1_000_000);
    let e = Engine::open(Options { clock, ..Options::default() }).unwrap();
    let t1 = granted(e.lock(b"lk", b"A", 100).unwrap());
    assert_eq!(e.set_fenced(b"lk", t1, b"res", b"a1", 0).unwrap(), FenceOutcome::Done);
    now.fetch_add(500, Ordering::SeqCst); // A pauses (GC, swap) past its 100 ms lease
    let t2 = granted(e.lock(b"lk", b"B", 10_000).unwrap());
    assert!(t2 > t1);
    assert_eq!(e.set_fenced(b"lk", t2, b"res", b"b", 0).unwrap(), FenceOutcome::Done);
    assert_eq!(e.set_fenced(b"lk", t1, b"res", b"a2", 0).unwrap(), FenceOutcome::Stale);
    assert_eq!(e.delete_fenced(b"lk", t1, b"res").unwrap(), FenceOutcome::Stale);
    assert_eq!(e.get(b"res").unwrap().as_deref(), Some(&b"b"[..]));
}

#[test]
fn tokens_go_stale_on_relock_unlock_expiry_and_overwrite() {
    let (clock, now) = Clock::manual(5_000);
    let e = Engine::open(Options { clock, ..Options::default() }).unwrap();
    let t1 = granted(e.lock(b"lk", b"A", 1_000).unwrap());
    // Extending keeps the token; relocking by the same owner replaces it.
    e.extend_lock(b"lk", b"A", 2_000).unwrap();
    assert_eq!(e.set_fenced(b"lk", t1, b"k", b"v", 0).unwrap(), FenceOutcome::Done);
    let t2 = granted(e.lock(b"lk", b"A", 1_000).unwrap());
    assert_eq!(e.set_fenced(b"lk", t1, b"k", b"v", 0).unwrap(), FenceOutcome::Stale);
    assert_eq!(e.delete_fenced(b"lk", t2, b"k").unwrap(), FenceOutcome::Done);
    assert_eq!(e.delete_fenced(b"lk", t2, b"k").unwrap(), FenceOutcome::NotFound);
    e.unlock(b"lk", b"A").unwrap();
    assert_eq!(e.set_fenced(b"lk", t2, b"k", b"v", 0).unwrap(), FenceOutcome::Stale);
    let t3 = granted(e.lock(b"lk", b"A", 1_000).unwrap());
    now.fetch_add(1_000, Ordering::SeqCst);
    assert_eq!(e.set_fenced(b"lk", t3, b"k", b"v", 0).unwrap(), FenceOutcome::Stale, "expired lease");
    let t4 = granted(e.lock(b"lk", b"A", 1_000).unwrap());
    e.set(b"lk", b"A", 0).unwrap(); // a plain SET over the lock: no longer a lock
    assert_eq!(e.set_fenced(b"lk", t4, b"k", b"v", 0).unwrap(), FenceOutcome::Stale);
    assert_eq!(e.get(b"k").unwrap(), None);
}

/// The lock's token survives a restart from the WAL and from a snapshot.
#[test]
fn tokens_survive_reopen() {
    let dir = std::env::temp_dir().join(format!("dbkv-fence-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = || Options { data_dir: Some(dir.clone()), ..Options::default() };
    let e = Engine::open(opts()).unwrap();
    let t = granted(e.lock(b"lk", b"A", 60_000).unwrap());
    e.close().unwrap();
    let e = Engine::open(opts()).unwrap();
    assert_eq!(e.set_fenced(b"lk", t, b"k", b"1", 0).unwrap(), FenceOutcome::Done);
    e.snapshot().unwrap();
    e.close().unwrap();
    let e = Engine::open(opts()).unwrap();
    assert_eq!(e.set_fenced(b"lk", t, b"k", b"2", 0).unwrap(), FenceOutcome::Done);
    assert_eq!(e.set_fenced(b"lk", t + 1, b"k", b"3", 0).unwrap(), FenceOutcome::Stale);
    e.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

//! One key-value entry as a single block behind a thin pointer.
//!
//! A shard's table holds only these 8-byte pointers. Key, value, expiry and
//! kind share one block, carved from the shard's arena (`arena.rs`: no
//! malloc header, no rounding), which keeps the per-entry overhead near 30
//! bytes for keys without a TTL (an 8-byte block header, the table slot
//! and its share of free slots) instead of the
//! ~90 bytes of a map from boxed keys to boxed values. The expiry takes 8
//! more bytes only in blocks that have one. Blocks longer than
//! `arena::MAX_BLOCK` come from the global allocator.
//!
//! An `Entry` has no destructor: its block belongs to the arena of the
//! table that holds it, so only that table frees it (`Entry::free`), and
//! only that table can move it (`Entry::move_to`, when its chunk is
//! emptied).
//!
//! Block layout (native endian, packed: blocks start at any byte, so
//! fields are read and written unaligned, which costs nothing on x86-64
//! and AArch64 and saves the 3.5 bytes an 8-byte rounding averages):
//! `val_len: u32 | key_len: u16 | kind: u8 | flags: u8 | [expires_at: u64] | key | value`
//! where `expires_at` is present iff `flags & HAS_EXPIRY`, `flags & LARGE`
//! marks a block from the global allocator and `flags & DEAD` a freed
//! block in an arena chunk. The value of a
//! lock is its owner followed by its fencing token (8 bytes); the value of
//! a list or sorted set is one pointer to it, shared (`Arc`) so a snapshot
//! copies it in O(1) under the shard lock and the next write to it copies
//! it (copy-on-write) instead of the snapshot holding the lock.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::Arc;

use super::arena::{self, Arena};
use super::list::List;
use super::zset::ZSet;
use crate::error::{Error, Result};

const HEADER: usize = 8;
const OFF_VAL_LEN: usize = 0;
const OFF_KEY_LEN: usize = 4;
const OFF_KIND: usize = 6;
const OFF_FLAGS: usize = 7;
const HAS_EXPIRY: u8 = 1;
const LARGE: u8 = 2;
const DEAD: u8 = 4;
const EXPIRY_LEN: usize = 8;

/// How the value bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Opaque bytes.
    Bytes = 0,
    /// A counter, stored as 8 native-endian bytes so `incr` never parses;
    /// readers see its base-10 ASCII form.
    Int = 1,
    /// A held lock: readers see its owner; the fencing token it was granted
    /// with is kept beside it, so fenced writes can check it.
    Lock = 2,
    List = 3,
    ZSet = 4,
}

impl Kind {
    fn from_u8(b: u8) -> Kind {
        match b {
            1 => Kind::Int,
            2 => Kind::Lock,
            3 => Kind::List,
            4 => Kind::ZSet,
            _ => Kind::Bytes,
        }
    }

    fn is_collection(self) -> bool {
        matches!(self, Kind::List | Kind::ZSet)
    }
}

/// The value of an entry as the engine sees it. A lock reads as its owner
/// (`Bytes`).
#[derive(Clone, Copy)]
pub enum Value<'a> {
    Bytes(&'a [u8]),
    Int(i64),
    List(&'a List),
    ZSet(&'a ZSet),
}

impl std::fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bytes(b) => write!(f, "Bytes({:?})", String::from_utf8_lossy(b)),
            Value::Int(n) => write!(f, "Int({n})"),
            Value::List(l) => write!(f, "List(len {})", l.len()),
            Value::ZSet(z) => write!(f, "ZSet(len {})", z.len()),
        }
    }
}

impl PartialEq for Value<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::ZSet(a), Value::ZSet(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
            }
            _ => false,
        }
    }
}

impl<'a> Value<'a> {
    /// Calls `f` with the bytes a reader sees (counters in base-10 ASCII);
    /// a list or sorted set is `Error::WrongType`, never converted.
    #[inline]
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        match self {
            Value::Bytes(b) => Ok(f(b)),
            Value::Int(n) => {
                let mut buf = [0u8; 20];
                Ok(f(format_i64(n, &mut buf)))
            }
            Value::List(_) | Value::ZSet(_) => Err(Error::WrongType),
        }
    }

    pub fn to_vec(self) -> Result<Vec<u8>> {
        self.with_bytes(|b| b.to_vec())
    }

    /// The name Redis's TYPE gives this kind of value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Bytes(_) | Value::Int(_) => "string",
            Value::List(_) => "list",
            Value::ZSet(_) => "zset",
        }
    }
}

/// Formats `n` in base 10 into the end of `buf` and returns that part.
pub fn format_i64(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Parses the canonical base-10 form that `format_i64` writes (no sign
/// other than a leading '-', no leading zeros, no spaces).
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    let canonical = !digits.is_empty()
        && digits.len() <= 19
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || b == b"0");
    if !canonical {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Owner of one block. `Cell` lets a shard swap the block of an entry it
/// found through the table while it holds the shard's write lock; the table
/// only hashes the key, which never changes.
pub struct Entry {
    block: Cell<NonNull<u8>>,
}

// SAFETY: an Entry owns its block exclusively. Shards mutate entries only
// through `&mut` access to their table (the write lock), and readers under
// the read lock only read, so the Cell is never touched concurrently.
unsafe impl Send for Entry {}
// SAFETY: as for Send: shared access only reads the block.
unsafe impl Sync for Entry {}

fn block_len(key_len: usize, val_len: usize, has_expiry: bool) -> usize {
    HEADER + if has_expiry { EXPIRY_LEN } else { 0 } + key_len + val_len
}

fn large_layout(len: usize) -> Layout {
    Layout::from_size_align(len, 8).expect("entry size fits in isize")
}

fn new_block(arena: &mut Arena, key: &[u8], kind: Kind, value: &[u8], expires_at: u64) -> NonNull<u8> {
    debug_assert!(key.len() <= u16::MAX as usize && value.len() <= u32::MAX as usize);
    let has_expiry = expires_at != 0;
    let len = block_len(key.len(), value.len(), has_expiry);
    let (p, large) = if len <= arena::MAX_BLOCK {
        (arena.alloc(len), false)
    } else {
        // SAFETY: the layout is non-zero sized (HEADER > 0).
        let p = unsafe { alloc(large_layout(len)) };
        (NonNull::new(p).unwrap_or_else(|| handle_alloc_error(large_layout(len))), true)
    };
    let flags = if has_expiry { HAS_EXPIRY } else { 0 } | if large { LARGE } else { 0 };
    // SAFETY: p points to `len` writable bytes; every byte
    // is written below.
    unsafe {
        let raw = p.as_ptr();
        (raw.add(OFF_VAL_LEN) as *mut u32).write_unaligned(value.len() as u32);
        (raw.add(OFF_KEY_LEN) as *mut u16).write_unaligned(key.len() as u16);
        raw.add(OFF_KIND).write(kind as u8);
        raw.add(OFF_FLAGS).write(flags);
        let mut at = HEADER;
        if has_expiry {
            (raw.add(HEADER) as *mut u64).write_unaligned(expires_at);
            at += EXPIRY_LEN;
        }
        std::ptr::copy_nonoverlapping(key.as_ptr(), raw.add(at), key.len());
        std::ptr::copy_nonoverlapping(value.as_ptr(), raw.add(at + key.len()), value.len());
        p
    }
}

/// The 8 value bytes of a collection entry: its `Arc` as a raw pointer,
/// whose one strong reference the entry owns.
fn arc_bytes<T>(arc: Arc<T>) -> [u8; 8] {
    (Arc::into_raw(arc) as usize as u64).to_ne_bytes()
}

impl Entry {
    /// A string entry (Bytes, Int as 8 native-endian bytes, or Lock as
    /// `lock_value`) in `arena`.
    pub(super) fn new(arena: &mut Arena, key: &[u8], kind: Kind, value: &[u8], expires_at: u64) -> Entry {
        debug_assert!(!kind.is_collection());
        Entry { block: Cell::new(new_block(arena, key, kind, value, expires_at)) }
    }

    pub(super) fn new_bytes(arena: &mut Arena, key: &[u8], value: &[u8], expires_at: u64) -> Entry {
        Entry::new(arena, key, Kind::Bytes, value, expires_at)
    }

    pub(super) fn new_int(arena: &mut Arena, key: &[u8], value: i64, expires_at: u64) -> Entry {
        Entry::new(arena, key, Kind::Int, &value.to_ne_bytes(), expires_at)
    }

    pub(super) fn new_list(arena: &mut Arena, key: &[u8], list: List, expires_at: u64) -> Entry {
        Entry { block: Cell::new(new_block(arena, key, Kind::List, &arc_bytes(Arc::new(list)), expires_at)) }
    }

    pub(super) fn new_zset(arena: &mut Arena, key: &[u8], zset: ZSet, expires_at: u64) -> Entry {
        Entry { block: Cell::new(new_block(arena, key, Kind::ZSet, &arc_bytes(Arc::new(zset)), expires_at)) }
    }

    /// Frees the block (and releases the collection it references);
    /// returns the expiry it had (0: none).
    ///
    /// # Safety
    /// `arena` is the one the entry was made in (its table's).
    pub(super) unsafe fn free(self, arena: &mut Arena) -> u64 {
        let expires_at = self.expires_at();
        // SAFETY: the block came from `arena` (caller's contract) and this
        // entry, consumed here, was its only owner.
        unsafe { free_block(arena, self.block.get(), true) };
        expires_at
    }

    /// Whether the entry's block starts at `p`.
    #[inline]
    pub(super) fn is_at(&self, p: NonNull<u8>) -> bool {
        self.block.get() == p
    }

    /// Copies the block to a new place in `arena` and frees nothing: the
    /// old place is in a chunk being emptied.
    ///
    /// # Safety
    /// `arena` is the entry's; the caller has exclusive access to it.
    pub(super) unsafe fn move_to(&self, arena: &mut Arena) {
        let len = self.len();
        debug_assert!(!self.is_large());
        let to = arena.alloc(len);
        // SAFETY: both blocks are `len` bytes and distinct (the old one is
        // in a chunk the arena no longer allocates from).
        unsafe { std::ptr::copy_nonoverlapping(self.raw(), to.as_ptr(), len) };
        self.block.set(to);
    }

    #[inline]
    fn len(&self) -> usize {
        block_len(self.key_len(), self.val_len(), self.has_expiry_slot())
    }

    #[inline]
    fn is_large(&self) -> bool {
        // SAFETY: the block is live and starts with its header.
        unsafe { self.raw().add(OFF_FLAGS).read() & LARGE != 0 }
    }

    #[inline]
    fn raw(&self) -> *mut u8 {
        self.block.get().as_ptr()
    }

    #[inline]
    fn has_expiry_slot(&self) -> bool {
        // SAFETY: the block is live and starts with its header.
        unsafe { self.raw().add(OFF_FLAGS).read() & HAS_EXPIRY != 0 }
    }

    /// Where the key starts: after the header and the expiry slot, if any.
    #[inline]
    fn key_offset(&self) -> usize {
        HEADER + if self.has_expiry_slot() { EXPIRY_LEN } else { 0 }
    }

    #[inline]
    pub fn expires_at(&self) -> u64 {
        if !self.has_expiry_slot() {
            return 0;
        }
        // SAFETY: the slot exists (read unaligned: blocks are packed).
        unsafe { (self.raw().add(HEADER) as *const u64).read_unaligned() }
    }

    #[inline]
    fn key_len(&self) -> usize {
        // SAFETY: the header is live (read unaligned: blocks are packed).
        unsafe { (self.raw().add(OFF_KEY_LEN) as *const u16).read_unaligned() as usize }
    }

    #[inline]
    fn val_len(&self) -> usize {
        // SAFETY: the header is live (read unaligned: blocks are packed).
        unsafe { (self.raw().add(OFF_VAL_LEN) as *const u32).read_unaligned() as usize }
    }

    #[inline]
    pub fn kind(&self) -> Kind {
        // SAFETY: the header is live.
        Kind::from_u8(unsafe { self.raw().add(OFF_KIND).read() })
    }

    #[inline]
    pub fn key(&self) -> &[u8] {
        // SAFETY: key_len bytes of key follow the header.
        unsafe { std::slice::from_raw_parts(self.raw().add(self.key_offset()), self.key_len()) }
    }

    #[inline]
    fn value_bytes(&self) -> &[u8] {
        // SAFETY: val_len bytes of value follow the key.
        unsafe { std::slice::from_raw_parts(self.raw().add(self.key_offset() + self.key_len()), self.val_len()) }
    }

    /// The collection pointer a List or ZSet entry holds.
    #[inline]
    fn coll_ptr<T>(&self) -> *const T {
        u64::from_ne_bytes(self.value_bytes().try_into().unwrap()) as usize as *const T
    }

    #[inline]
    pub fn value(&self) -> Value<'_> {
        match self.kind() {
            Kind::Bytes => Value::Bytes(self.value_bytes()),
            Kind::Int => Value::Int(i64::from_ne_bytes(self.value_bytes().try_into().unwrap())),
            Kind::Lock => Value::Bytes(&self.value_bytes()[..self.val_len() - 8]),
            // SAFETY: the entry owns a strong reference, so the pointee
            // lives at least as long as this borrow of the entry.
            Kind::List => Value::List(unsafe { &*self.coll_ptr::<List>() }),
            // SAFETY: as for the list above.
            Kind::ZSet => Value::ZSet(unsafe { &*self.coll_ptr::<ZSet>() }),
        }
    }

    /// The fencing token of a lock entry.
    pub fn lock_token(&self) -> Option<u64> {
        let v = self.value_bytes();
        (self.kind() == Kind::Lock).then(|| u64::from_ne_bytes(v[v.len() - 8..].try_into().unwrap()))
    }

    /// Another reference to this entry's list (for a snapshot).
    pub fn share_list(&self) -> Option<Arc<List>> {
        (self.kind() == Kind::List).then(|| share(self.coll_ptr::<List>()))
    }

    /// Another reference to this entry's sorted set (for a snapshot).
    pub fn share_zset(&self) -> Option<Arc<ZSet>> {
        (self.kind() == Kind::ZSet).then(|| share(self.coll_ptr::<ZSet>()))
    }

    /// The list, to modify; copied first if a snapshot shares it.
    ///
    /// # Safety
    /// The caller has exclusive access to the entry (the shard's write lock).
    // The shard hands out `&Entry` from its table's lookups;
    // the caller's `&mut ShardData` is what proves exclusive access.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn list_mut(&self) -> Option<&mut List> {
        // SAFETY: the kind is List, and the caller holds exclusive access.
        (self.kind() == Kind::List).then(|| unsafe { self.unshare::<List>() })
    }

    /// The sorted set, to modify; copied first if a snapshot shares it.
    ///
    /// # Safety
    /// The caller has exclusive access to the entry (the shard's write lock).
    // The shard hands out `&Entry` from its table's lookups;
    // the caller's `&mut ShardData` is what proves exclusive access.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn zset_mut(&self) -> Option<&mut ZSet> {
        // SAFETY: the kind is ZSet, and the caller holds exclusive access.
        (self.kind() == Kind::ZSet).then(|| unsafe { self.unshare::<ZSet>() })
    }

    /// The collection, to modify; copied first if a snapshot shares it.
    /// Shares are only made under the shard lock, so with the write lock
    /// held the count cannot rise while we look at it; if a snapshot still
    /// holds a share, the collection is copied and the entry's reference
    /// moved to the copy.
    ///
    /// # Safety
    /// T is the entry's collection type and the caller has exclusive access
    /// to the entry (the shard's write lock).
    // The shard hands out `&Entry` from its table's lookups;
    // the caller's `&mut ShardData` is what proves exclusive access.
    #[allow(clippy::mut_from_ref)]
    unsafe fn unshare<T: Clone>(&self) -> &mut T {
        let p = self.coll_ptr::<T>();
        // SAFETY: T is the entry's collection type (caller's contract), so p
        // came from Arc::into_raw::<T>; ManuallyDrop keeps the entry's
        // reference from being released here.
        let held = ManuallyDrop::new(unsafe { Arc::from_raw(p) });
        if Arc::strong_count(&held) == 1 {
            // SAFETY: the entry holds the only reference and the caller has
            // exclusive access to the entry, so nothing else reaches *p.
            return unsafe { &mut *(p as *mut T) };
        }
        let copy = Arc::into_raw(Arc::new((**held).clone()));
        // SAFETY: a collection block stores its Arc pointer (8 bytes,
        // unaligned) right after the key, inside the block; the caller's
        // exclusive access makes the write race-free.
        unsafe {
            let at = self.raw().add(self.key_offset() + self.key_len());
            (at as *mut u64).write_unaligned(copy as usize as u64);
        }
        drop(ManuallyDrop::into_inner(held));
        // SAFETY: `copy` is a fresh Arc whose only reference the entry now
        // owns, and the caller has exclusive access to the entry.
        unsafe { &mut *(copy as *mut T) }
    }

    #[inline]
    pub fn is_live(&self, now_ms: impl FnOnce() -> u64) -> bool {
        let exp = self.expires_at();
        exp == 0 || exp > now_ms()
    }

    /// Bytes of heap this entry holds (for memory accounting in tests).
    pub fn block_size(&self) -> usize {
        self.key_offset() + self.key_len() + self.val_len()
    }

    /// Caller must hold the shard's write lock; `arena` is the entry's.
    pub(super) fn set_expires_at(&self, arena: &mut Arena, expires_at: u64) {
        if self.has_expiry_slot() {
            // SAFETY: the slot exists; we hold exclusive access.
            unsafe { (self.raw().add(HEADER) as *mut u64).write_unaligned(expires_at) }
        } else if expires_at != 0 {
            // The old block is read while the new one is built, then freed;
            // a collection's reference moves to the new block.
            let grown = new_block(arena, self.key(), self.kind(), self.value_bytes(), expires_at);
            // SAFETY: the old block came from `arena` and is no longer
            // referenced; its collection reference moved to the new one.
            unsafe { free_block(arena, self.block.replace(grown), false) };
        }
    }

    /// Replaces the value with a string kind (Bytes, Int or Lock). Reuses
    /// the block when the size is unchanged and the expiry fits its layout.
    /// Caller must hold the shard's write lock; `arena` is the entry's.
    pub(super) fn replace(&self, arena: &mut Arena, kind: Kind, value: &[u8], expires_at: u64) {
        debug_assert!(!kind.is_collection());
        let fits = self.val_len() == value.len() && (self.has_expiry_slot() || expires_at == 0);
        if fits && !self.kind().is_collection() {
            // SAFETY: same size and layout; we hold exclusive access.
            unsafe {
                let raw = self.raw();
                raw.add(OFF_KIND).write(kind as u8);
                let dst = raw.add(self.key_offset() + self.key_len());
                std::ptr::copy_nonoverlapping(value.as_ptr(), dst, value.len());
            }
            self.set_expires_at(arena, expires_at);
            return;
        }
        let new = new_block(arena, self.key(), kind, value, expires_at);
        // SAFETY: the old block came from `arena` and is no longer referenced.
        unsafe { free_block(arena, self.block.replace(new), true) };
    }
}

/// The value bytes `replace` takes for a lock: owner, then token.
pub fn lock_value(owner: &[u8], token: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(owner.len() + 8);
    v.extend_from_slice(owner);
    v.extend_from_slice(&token.to_ne_bytes());
    v
}

fn share<T>(p: *const T) -> Arc<T> {
    // SAFETY: p came from Arc::into_raw and the entry still owns a reference.
    unsafe {
        Arc::increment_strong_count(p);
        Arc::from_raw(p)
    }
}

/// Frees a block; `release` drops the collection a List or ZSet block
/// references (false when the reference moved to another block).
///
/// # Safety
/// `p` is a live block made by `new_block` in `arena`, referenced by no
/// entry any more.
unsafe fn free_block(arena: &mut Arena, p: NonNull<u8>, release: bool) {
    // A view of the block through the entry's accessors; an Entry has no
    // destructor, so dropping the view frees nothing.
    let b = Entry { block: Cell::new(p) };
    let len = b.len();
    // SAFETY: p is a live block (caller's contract): its header describes
    // it, and a collection pointer in it came from Arc::into_raw of its type.
    unsafe {
        match b.kind() {
            Kind::List if release => drop(Arc::from_raw(b.coll_ptr::<List>())),
            Kind::ZSet if release => drop(Arc::from_raw(b.coll_ptr::<ZSet>())),
            _ => {}
        }
        let raw = p.as_ptr();
        if b.is_large() {
            dealloc(raw, large_layout(len));
        } else {
            raw.add(OFF_FLAGS).write(raw.add(OFF_FLAGS).read() | DEAD);
            arena.free(p, len);
        }
    }
}

/// What a chunk walk finds at `p`: the block's length, and its key unless
/// it is dead.
///
/// # Safety
/// `p` is the start of a block (live or dead) in an arena chunk that is
/// not freed during `'a`.
pub(super) unsafe fn block_in_chunk<'a>(p: NonNull<u8>) -> (usize, Option<&'a [u8]>) {
    // A view of the block (see free_block): a block keeps its header after
    // it is freed (only the DEAD flag is set), so the lengths describe it
    // either way.
    let b = Entry { block: Cell::new(p) };
    // SAFETY: the header is in the block (caller's contract).
    let dead = unsafe { p.as_ptr().add(OFF_FLAGS).read() } & DEAD != 0;
    // SAFETY: key_len bytes of key follow the header, and the chunk
    // outlives 'a (caller's contract).
    let key = (!dead).then(|| unsafe { std::slice::from_raw_parts(p.as_ptr().add(b.key_offset()), b.key_len()) });
    (b.len(), key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arena() -> Arena {
        Arena::new()
    }

    #[test]
    fn roundtrip_and_replace() {
        let a = &mut arena();
        let e = Entry::new_bytes(a, b"k", b"hello", 42);
        assert_eq!(e.key(), b"k");
        assert_eq!(e.value(), Value::Bytes(b"hello"));
        assert_eq!(e.expires_at(), 42);
        e.replace(a, Kind::Bytes, b"world", 7); // same size: in place
        assert_eq!(e.value(), Value::Bytes(b"world"));
        e.replace(a, Kind::Bytes, b"", 0); // new block
        assert_eq!(e.value(), Value::Bytes(b""));
        e.replace(a, Kind::Int, &(-5i64).to_ne_bytes(), 0);
        assert_eq!(e.value(), Value::Int(-5));
        assert_eq!(e.key(), b"k");
    }

    #[test]
    fn collections_copy_on_write_and_free() {
        let mut l = List::default();
        l.push(false, b"a");
        let a = &mut arena();
        let e = Entry::new_list(a, b"q", l, 0);
        let shared = e.share_list().unwrap();
        // SAFETY: the test owns the entry exclusively.
        unsafe { e.list_mut().unwrap().push(false, b"b") };
        assert_eq!(shared.len(), 1, "the snapshot's share is unchanged");
        assert!(matches!(e.value(), Value::List(l) if l.len() == 2));
        e.set_expires_at(a, 77); // moves the reference to a grown block
        assert!(matches!(e.value(), Value::List(l) if l.len() == 2));
        assert_eq!(Arc::strong_count(&shared), 1);
        e.replace(a, Kind::Bytes, b"x", 0); // releases the list
        assert_eq!(e.value(), Value::Bytes(b"x"));
        let lock = Entry::new(a, b"l", Kind::Lock, &lock_value(b"owner", 42), 9);
        assert_eq!((lock.value(), lock.lock_token(), lock.expires_at()), (Value::Bytes(b"owner"), Some(42), 9));
        assert_eq!(e.lock_token(), None);
        let z = Entry::new_zset(a, b"z", ZSet::new(), 0);
        let zs = z.share_zset().unwrap();
        z.replace(a, Kind::Bytes, b"v", 0);
        assert_eq!(z.value(), Value::Bytes(b"v"));
        assert_eq!(Arc::strong_count(&zs), 1, "replacing the zset released it");
    }

    #[test]
    fn expiry_slot_comes_and_stays() {
        let a = &mut arena();
        let e = Entry::new_bytes(a, b"key", b"value", 0);
        assert_eq!((e.expires_at(), e.block_size()), (0, 8 + 3 + 5));
        e.set_expires_at(a, 99); // grows the block
        assert_eq!((e.expires_at(), e.key(), e.value()), (99, &b"key"[..], Value::Bytes(b"value")));
        assert_eq!(e.block_size(), 16 + 3 + 5);
        e.set_expires_at(a, 0); // keeps the slot, clears it
        assert_eq!(e.expires_at(), 0);
        e.replace(a, Kind::Bytes, b"other", 7); // same size, slot present: in place
        assert_eq!((e.expires_at(), e.value()), (7, Value::Bytes(b"other")));
        let f = Entry::new_int(a, b"n", 5, 0);
        f.replace(a, Kind::Bytes, b"12345678", 42); // same size but needs a slot: new block
        assert_eq!((f.expires_at(), f.kind(), f.key()), (42, Kind::Bytes, &b"n"[..]));
    }

    #[test]
    fn integer_text_is_canonical() {
        for n in [0, 1, -1, 42, i64::MAX, i64::MIN, -1000] {
            let mut buf = [0u8; 20];
            let s = format_i64(n, &mut buf);
            assert_eq!(s, n.to_string().as_bytes());
            assert_eq!(parse_i64(s), Some(n));
        }
        for bad in [&b""[..], b"-", b"+1", b"01", b"-0", b" 1", b"1 ", b"1.0", b"9223372036854775808", b"abc"] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}

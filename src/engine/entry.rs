//! One key-value entry as a single heap block behind a thin pointer.
//!
//! A shard's table holds only these 8-byte pointers. Key, value, expiry and
//! kind share one allocation, which keeps the per-entry overhead under 40
//! bytes for keys without a TTL (one malloc header, an 8-byte block header,
//! the table slot) instead of the ~90 bytes of a map from boxed keys to
//! boxed values. The expiry takes 8 more bytes only in blocks that have one.
//!
//! Block layout (native endian, 8-byte aligned):
//! `val_len: u32 | key_len: u16 | kind: u8 | flags: u8 | [expires_at: u64] | key | value`
//! where `expires_at` is present iff `flags & HAS_EXPIRY`.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::borrow::Borrow;
use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::ptr::NonNull;

const HEADER: usize = 8;
const OFF_VAL_LEN: usize = 0;
const OFF_KEY_LEN: usize = 4;
const OFF_KIND: usize = 6;
const OFF_FLAGS: usize = 7;
const HAS_EXPIRY: u8 = 1;
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
}

/// The value of an entry as the engine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

impl<'a> Value<'a> {
    /// Calls `f` with the bytes a reader sees (counters in base-10 ASCII).
    #[inline]
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Value::Bytes(b) => f(b),
            Value::Int(n) => {
                let mut buf = [0u8; 20];
                f(format_i64(n, &mut buf))
            }
        }
    }

    pub fn to_vec(self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
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
unsafe impl Sync for Entry {}

fn layout(key_len: usize, val_len: usize, has_expiry: bool) -> Layout {
    let size = HEADER + if has_expiry { EXPIRY_LEN } else { 0 } + key_len + val_len;
    Layout::from_size_align(size, 8).expect("entry size fits in isize")
}

fn new_block(key: &[u8], kind: Kind, value: &[u8], expires_at: u64) -> NonNull<u8> {
    debug_assert!(key.len() <= u16::MAX as usize && value.len() <= u32::MAX as usize);
    let has_expiry = expires_at != 0;
    let lay = layout(key.len(), value.len(), has_expiry);
    // SAFETY: the layout is non-zero sized (HEADER > 0); every byte is written below.
    unsafe {
        let p = alloc(lay);
        let Some(p) = NonNull::new(p) else { handle_alloc_error(lay) };
        let raw = p.as_ptr();
        (raw.add(OFF_VAL_LEN) as *mut u32).write(value.len() as u32);
        (raw.add(OFF_KEY_LEN) as *mut u16).write(key.len() as u16);
        raw.add(OFF_KIND).write(kind as u8);
        raw.add(OFF_FLAGS).write(if has_expiry { HAS_EXPIRY } else { 0 });
        let mut at = HEADER;
        if has_expiry {
            (raw.add(HEADER) as *mut u64).write(expires_at);
            at += EXPIRY_LEN;
        }
        std::ptr::copy_nonoverlapping(key.as_ptr(), raw.add(at), key.len());
        std::ptr::copy_nonoverlapping(value.as_ptr(), raw.add(at + key.len()), value.len());
        p
    }
}

impl Entry {
    pub fn new_bytes(key: &[u8], value: &[u8], expires_at: u64) -> Entry {
        Entry { block: Cell::new(new_block(key, Kind::Bytes, value, expires_at)) }
    }

    pub fn new_int(key: &[u8], value: i64, expires_at: u64) -> Entry {
        Entry { block: Cell::new(new_block(key, Kind::Int, &value.to_ne_bytes(), expires_at)) }
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
        // SAFETY: the slot exists and is 8-byte aligned.
        unsafe { (self.raw().add(HEADER) as *const u64).read() }
    }

    #[inline]
    fn key_len(&self) -> usize {
        unsafe { (self.raw().add(OFF_KEY_LEN) as *const u16).read() as usize }
    }

    #[inline]
    fn val_len(&self) -> usize {
        unsafe { (self.raw().add(OFF_VAL_LEN) as *const u32).read() as usize }
    }

    #[inline]
    pub fn kind(&self) -> Kind {
        if unsafe { self.raw().add(OFF_KIND).read() } == Kind::Int as u8 {
            Kind::Int
        } else {
            Kind::Bytes
        }
    }

    #[inline]
    pub fn key(&self) -> &[u8] {
        // SAFETY: key_len bytes of key follow the header.
        unsafe { std::slice::from_raw_parts(self.raw().add(self.key_offset()), self.key_len()) }
    }

    #[inline]
    fn value_bytes(&self) -> &[u8] {
        unsafe { std::slice::from_raw_parts(self.raw().add(self.key_offset() + self.key_len()), self.val_len()) }
    }

    #[inline]
    pub fn value(&self) -> Value<'_> {
        match self.kind() {
            Kind::Bytes => Value::Bytes(self.value_bytes()),
            Kind::Int => Value::Int(i64::from_ne_bytes(self.value_bytes().try_into().unwrap())),
        }
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

    /// Caller must hold the shard's write lock.
    pub fn set_expires_at(&self, expires_at: u64) {
        if self.has_expiry_slot() {
            // SAFETY: the slot exists; we hold exclusive access.
            unsafe { (self.raw().add(HEADER) as *mut u64).write(expires_at) }
        } else if expires_at != 0 {
            // The old block is read while the new one is built, then freed.
            let grown = new_block(self.key(), self.kind(), self.value_bytes(), expires_at);
            self.swap_block(grown);
        }
    }

    /// Replaces the value. Reuses the block when the size is unchanged and
    /// the expiry fits its layout. Caller must hold the shard's write lock.
    pub fn replace(&self, kind: Kind, value: &[u8], expires_at: u64) {
        if self.val_len() == value.len() && (self.has_expiry_slot() || expires_at == 0) {
            // SAFETY: same size and layout; we hold exclusive access.
            unsafe {
                let raw = self.raw();
                raw.add(OFF_KIND).write(kind as u8);
                let dst = raw.add(self.key_offset() + self.key_len());
                std::ptr::copy_nonoverlapping(value.as_ptr(), dst, value.len());
            }
            self.set_expires_at(expires_at);
            return;
        }
        self.swap_block(new_block(self.key(), kind, value, expires_at));
    }

    fn swap_block(&self, new: NonNull<u8>) {
        free_block(self.block.replace(new));
    }

}

fn free_block(p: NonNull<u8>) {
    // SAFETY: p was allocated by new_block with the layout its header describes.
    unsafe {
        let raw = p.as_ptr();
        let val_len = (raw.add(OFF_VAL_LEN) as *const u32).read() as usize;
        let key_len = (raw.add(OFF_KEY_LEN) as *const u16).read() as usize;
        let has_expiry = raw.add(OFF_FLAGS).read() & HAS_EXPIRY != 0;
        dealloc(raw, layout(key_len, val_len, has_expiry));
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        free_block(self.block.get());
    }
}

impl Hash for Entry {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Entry {}

impl Borrow<[u8]> for Entry {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_replace() {
        let e = Entry::new_bytes(b"k", b"hello", 42);
        assert_eq!(e.key(), b"k");
        assert_eq!(e.value(), Value::Bytes(b"hello"));
        assert_eq!(e.expires_at(), 42);
        e.replace(Kind::Bytes, b"world", 7); // same size: in place
        assert_eq!(e.value(), Value::Bytes(b"world"));
        e.replace(Kind::Bytes, b"", 0); // new block
        assert_eq!(e.value(), Value::Bytes(b""));
        e.replace(Kind::Int, &(-5i64).to_ne_bytes(), 0);
        assert_eq!(e.value(), Value::Int(-5));
        assert_eq!(e.key(), b"k");
    }

    #[test]
    fn expiry_slot_comes_and_stays() {
        let e = Entry::new_bytes(b"key", b"value", 0);
        assert_eq!((e.expires_at(), e.block_size()), (0, 8 + 3 + 5));
        e.set_expires_at(99); // grows the block
        assert_eq!((e.expires_at(), e.key(), e.value()), (99, &b"key"[..], Value::Bytes(b"value")));
        assert_eq!(e.block_size(), 16 + 3 + 5);
        e.set_expires_at(0); // keeps the slot, clears it
        assert_eq!(e.expires_at(), 0);
        e.replace(Kind::Bytes, b"other", 7); // same size, slot present: in place
        assert_eq!((e.expires_at(), e.value()), (7, Value::Bytes(b"other")));
        let f = Entry::new_int(b"n", 5, 0);
        f.replace(Kind::Bytes, b"12345678", 42); // same size but needs a slot: new block
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

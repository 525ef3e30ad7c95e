//! Where a shard's entry blocks live: 64 KiB chunks, each filled front to
//! back by a bump pointer, so a block costs its bytes and nothing more
//! (blocks are packed; entries read their fields unaligned). malloc adds
//! an 8-byte chunk header and rounds to 16: that was half of the 38 bytes
//! an entry cost beyond its key and value.
//!
//! A freed block stays where it is and is counted as dead in its chunk's
//! header, which `free` finds from the block's address because chunks are
//! aligned to their size. A chunk that is more than half dead, and is not
//! the one being filled, is queued as sparse; the owner of the blocks (the
//! shard's table, which alone can find the entry that points at a block)
//! takes it with `take_sparse`, moves its live blocks to the current chunk
//! and hands it back to `release`. So apart from the queue, which the
//! table drains before its next change, every chunk is at least half live:
//! the arena holds at most twice its live bytes plus one chunk, and moving
//! a block is paid for by at least as many bytes freed.
//!
//! Chunks come from the OS (`os_chunks`), not from malloc: an aligned
//! malloc of 64 KiB over-allocates and, measured, cost about 7 KiB of RSS
//! per chunk (29 B per entry at 1M entries).
//!
//! The arena knows nothing of what a block holds; `Sparse::walk` asks the
//! caller for each block's length. It is not thread-safe by itself: the
//! shard's write lock guards every `&mut Arena`.

use std::ptr::NonNull;

/// Bytes per chunk (and its alignment).
pub(super) const CHUNK: usize = 1 << 16;
/// Blocks longer than this come from the global allocator instead: at most
/// an eighth of a chunk is left unused when a block does not fit.
pub(super) const MAX_BLOCK: usize = CHUNK / 8;
/// Blocks start this far into their chunk, after the chunk header.
const HEAD_LEN: usize = 64;

/// The start of every chunk.
#[repr(C)]
struct Head {
    /// Bytes handed out, counted from the chunk's start (so `HEAD_LEN` when
    /// empty).
    used: u32,
    /// Bytes of blocks freed.
    dead: u32,
    /// Position in `Arena::full` (unused for the current chunk).
    index: u32,
    /// In `Arena::sparse` already.
    queued: bool,
}

const _: () = assert!(std::mem::size_of::<Head>() <= HEAD_LEN && CHUNK <= u32::MAX as usize);

pub struct Arena {
    /// The chunk blocks are bumped from.
    current: Option<NonNull<Head>>,
    /// Every other chunk, each knowing its index here.
    full: Vec<NonNull<Head>>,
    /// Chunks more than half dead, waiting for `take_sparse`.
    sparse: Vec<NonNull<Head>>,
}

// SAFETY: the arena owns its chunks exclusively; it is reached only through
// `&mut` (the shard's write lock) to change and `&` to read nothing.
unsafe impl Send for Arena {}
// SAFETY: as for Send: no method reads or writes chunks through `&self`.
unsafe impl Sync for Arena {}

impl Default for Arena {
    fn default() -> Arena {
        Arena::new()
    }
}

impl Arena {
    pub const fn new() -> Arena {
        Arena { current: None, full: Vec::new(), sparse: Vec::new() }
    }

    /// `len` (at most `MAX_BLOCK`) bytes, unaligned, uninitialised.
    #[inline]
    pub fn alloc(&mut self, len: usize) -> NonNull<u8> {
        debug_assert!(len <= MAX_BLOCK);
        let len = len as u32;
        let head = match self.current {
            // SAFETY: the current chunk is live and its header initialised.
            Some(h) if unsafe { h.as_ref() }.used + len <= CHUNK as u32 => h,
            _ => self.new_current(),
        };
        // SAFETY: the header is live; `used + len` fits in the chunk (checked
        // above, or the chunk is new), so the block lies inside it.
        unsafe {
            let h = &mut *head.as_ptr();
            let at = h.used;
            h.used += len;
            NonNull::new_unchecked((head.as_ptr() as *mut u8).add(at as usize))
        }
    }

    /// Retires the current chunk (queuing it if it is sparse already) and
    /// starts a new one.
    #[cold]
    fn new_current(&mut self) -> NonNull<Head> {
        if let Some(old) = self.current.take() {
            // SAFETY: the old current chunk is live.
            unsafe { (*old.as_ptr()).index = self.full.len() as u32 };
            self.full.push(old);
            self.queue_if_sparse(old);
        }
        let head = os_chunks::take().cast::<Head>();
        // SAFETY: the chunk is CHUNK writable bytes, aligned for Head.
        unsafe { head.as_ptr().write(Head { used: HEAD_LEN as u32, dead: 0, index: 0, queued: false }) };
        self.current = Some(head);
        head
    }

    /// Counts the block of `len` bytes at `p` as dead.
    ///
    /// # Safety
    /// `p` came from `alloc(len)` on this arena and is not freed yet.
    #[inline]
    pub unsafe fn free(&mut self, p: NonNull<u8>, len: usize) {
        let head = (p.as_ptr() as usize & !(CHUNK - 1)) as *mut Head;
        // SAFETY: p lies in one of this arena's chunks (the caller's
        // contract), whose header sits at the chunk-aligned address below it.
        let head = unsafe { NonNull::new_unchecked(head) };
        // SAFETY: as above; `&mut self` excludes every other access.
        unsafe { (*head.as_ptr()).dead += len as u32 };
        if self.current != Some(head) {
            self.queue_if_sparse(head);
        }
    }

    fn queue_if_sparse(&mut self, head: NonNull<Head>) {
        // SAFETY: the chunk is live; `&mut self` excludes other access.
        let h = unsafe { &mut *head.as_ptr() };
        let blocks = h.used - HEAD_LEN as u32;
        if !h.queued && h.dead * 2 > blocks {
            h.queued = true;
            self.sparse.push(head);
        }
    }

    /// Whether a chunk waits for its live blocks to be moved.
    #[inline]
    pub fn has_sparse(&self) -> bool {
        !self.sparse.is_empty()
    }

    /// A chunk to empty: move every live block it holds (see
    /// `Sparse::walk`), then pass it to `release`.
    pub fn take_sparse(&mut self) -> Option<Sparse> {
        self.sparse.pop().map(|head| Sparse { head })
    }

    /// Frees a chunk taken with `take_sparse`.
    ///
    /// # Safety
    /// No live block remains in it (all were moved or freed).
    pub unsafe fn release(&mut self, chunk: Sparse) {
        let head = chunk.head;
        // SAFETY: a sparse chunk is never current, so it is in `full` at the
        // index its header records; the entry moved into its place gets the
        // index.
        unsafe {
            let i = (*head.as_ptr()).index as usize;
            debug_assert_eq!(self.full[i], head);
            self.full.swap_remove(i);
            if let Some(&moved) = self.full.get(i) {
                (*moved.as_ptr()).index = i as u32;
            }
            os_chunks::give_back(head.cast());
        }
    }

    /// Chunks held (the current one included).
    #[cfg(test)]
    pub fn chunks(&self) -> usize {
        self.full.len() + usize::from(self.current.is_some())
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for head in self.full.drain(..).chain(self.current.take()) {
            // SAFETY: every chunk came from os_chunks::take and is given
            // back once, here; the owner freed what its blocks reference.
            unsafe { os_chunks::give_back(head.cast()) };
        }
    }
}

/// Where chunks come from: anonymous mappings of `REGION` chunks, aligned
/// by mapping one chunk more and unmapping the ends. A chunk given back has
/// its pages returned to the OS (`MADV_DONTNEED`) and is kept for reuse, so
/// the mappings never fragment into one per chunk (the kernel's map count
/// is limited; 65,530 by default).
mod os_chunks {
    use super::CHUNK;
    use std::alloc::{handle_alloc_error, Layout};
    use std::ptr::NonNull;
    use std::sync::Mutex;

    const REGION: usize = 32;

    /// Unused chunks (addresses, so the static is Send).
    static SPARE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

    /// A chunk of CHUNK zeroed or reused bytes, CHUNK-aligned.
    pub fn take() -> NonNull<u8> {
        let mut spare = SPARE.lock().unwrap_or_else(|p| p.into_inner());
        if spare.is_empty() {
            let base = map_region();
            spare.extend((0..REGION).rev().map(|i| base + i * CHUNK));
        }
        let at = spare.pop().expect("a region was just mapped");
        // SAFETY: `at` is the start of a mapped chunk, never null.
        unsafe { NonNull::new_unchecked(at as *mut u8) }
    }

    fn map_region() -> usize {
        let len = (REGION + 1) * CHUNK;
        let fail = || handle_alloc_error(Layout::from_size_align(REGION * CHUNK, CHUNK).expect("region layout"));
        // SAFETY: an anonymous private mapping at an address of the
        // kernel's choosing touches no existing memory.
        let raw = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if raw == libc::MAP_FAILED {
            fail();
        }
        let raw = raw as usize;
        let start = (raw + CHUNK - 1) & !(CHUNK - 1);
        let (head, tail) = (start - raw, raw + len - (start + REGION * CHUNK));
        // SAFETY: both ranges lie inside the mapping just made and outside
        // the aligned region kept; a failed unmap only leaves them mapped.
        unsafe {
            if head > 0 {
                libc::munmap(raw as *mut libc::c_void, head);
            }
            if tail > 0 {
                libc::munmap((start + REGION * CHUNK) as *mut libc::c_void, tail);
            }
        }
        start
    }

    /// Returns a chunk's memory to the OS and keeps the address for reuse.
    ///
    /// # Safety
    /// `p` came from `take` and nothing refers into the chunk any more.
    pub unsafe fn give_back(p: NonNull<u8>) {
        // SAFETY: the chunk is mapped and unused (caller's contract); after
        // MADV_DONTNEED it reads as zeros, which `take`'s callers overwrite.
        unsafe { libc::madvise(p.as_ptr() as *mut libc::c_void, CHUNK, libc::MADV_DONTNEED) };
        SPARE.lock().unwrap_or_else(|p| p.into_inner()).push(p.as_ptr() as usize);
    }
}

/// A chunk taken from the sparse queue.
pub struct Sparse {
    head: NonNull<Head>,
}

impl Sparse {
    /// Calls `f` with the start of every block in the chunk, dead ones
    /// included, in address order; `f` returns the block's length as given
    /// to `alloc`. `f` may allocate from the arena (never from this chunk,
    /// which is not current).
    pub fn walk(&self, mut f: impl FnMut(NonNull<u8>) -> usize) {
        // SAFETY: the chunk is live and no longer allocated from, so `used`
        // is fixed.
        let used = unsafe { (*self.head.as_ptr()).used } as usize;
        let base = self.head.as_ptr() as *mut u8;
        let mut at = HEAD_LEN;
        while at < used {
            // SAFETY: `at` is the start of a block inside the chunk: blocks
            // were bumped back to back from HEAD_LEN, each as long as its `alloc` asked.
            let p = unsafe { NonNull::new_unchecked(base.add(at)) };
            at += f(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_pack_back_to_back_and_chunks_align() {
        let mut a = Arena::new();
        let p = a.alloc(261);
        let q = a.alloc(8);
        assert_eq!(p.as_ptr() as usize % CHUNK, HEAD_LEN);
        assert_eq!(q.as_ptr() as usize - p.as_ptr() as usize, 261, "packed");
        // Fill past one chunk: a second chunk starts.
        for _ in 0..(CHUNK / MAX_BLOCK) {
            a.alloc(MAX_BLOCK);
        }
        assert_eq!(a.chunks(), 2);
    }

    #[test]
    fn a_chunk_more_than_half_dead_is_queued_then_released() {
        let mut a = Arena::new();
        let per_chunk = (CHUNK - HEAD_LEN) / 1024;
        let first: Vec<_> = (0..per_chunk).map(|_| a.alloc(1024)).collect();
        a.alloc(1024); // starts the second chunk; the first is full, all live
        assert!(!a.has_sparse());
        for p in &first[..per_chunk / 2] {
            // SAFETY: each came from alloc(1024) and is freed once.
            unsafe { a.free(*p, 1024) };
        }
        assert!(!a.has_sparse(), "exactly half dead is not sparse");
        // SAFETY: as above.
        unsafe { a.free(first[per_chunk / 2], 1024) };
        let s = a.take_sparse().expect("queued");
        let mut seen = 0;
        s.walk(|_| {
            seen += 1;
            1024
        });
        assert_eq!(seen, per_chunk);
        // SAFETY: the test treats the rest of the blocks as moved.
        unsafe { a.release(s) };
        assert_eq!(a.chunks(), 1);
        assert!(a.take_sparse().is_none());
    }

    #[test]
    fn frees_in_the_current_chunk_queue_it_when_it_is_retired() {
        let mut a = Arena::new();
        let p = a.alloc(MAX_BLOCK);
        // SAFETY: p came from alloc and is freed once.
        unsafe { a.free(p, MAX_BLOCK) };
        assert!(!a.has_sparse(), "the current chunk is never queued");
        for _ in 0..CHUNK / MAX_BLOCK {
            a.alloc(MAX_BLOCK);
        }
        assert_eq!(a.chunks(), 2);
        assert!(!a.has_sparse(), "1 of 7 blocks dead");
    }
}

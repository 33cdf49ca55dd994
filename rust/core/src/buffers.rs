//! A small cache of large output buffers, so that a call that returns a
//! new array does not pay for fresh pages every time.
//!
//! A new array of tens of megabytes comes straight from the kernel (glibc
//! maps anything over 32 MiB on its own and unmaps it on free), and its
//! first touch costs a page fault and the zeroing of every page: for a
//! 16M-element float32 dropout, about as long as the kernel itself. A
//! training loop asks for the same sizes step after step, so keeping the
//! last few freed buffers and handing them out again by exact size makes
//! the new-array call about as fast as writing into `out=`.
//!
//! - [`Buffer::take`] returns a cached buffer of exactly that many bytes
//!   (the one freed last), or a fresh zeroed one. A cached buffer holds
//!   whatever its last user wrote: only kernels that write every byte of
//!   their output may use it.
//! - Dropping a [`Buffer`] puts it back in the cache if it is at least
//!   [`MIN_BYTES`] and fits under the cap, evicting the oldest buffers
//!   first; otherwise it is freed. At most [`MAX_BUFFERS`] buffers are
//!   kept.
//! - The cap is 256 MiB, or `LEC7RS_BUFFER_CACHE_MB` (0 turns the cache
//!   off), read once; [`set_capacity`] changes it and frees what no longer
//!   fits, [`clear`] frees everything cached.
//!
//! The cache is only ever `try_lock`ed: a thread that finds it busy (or a
//! process forked while another thread held it) allocates or frees
//! directly, so the cache never blocks and never deadlocks a forked child.

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, TryLockError};

use crate::error::{Error, Result};

/// Buffers smaller than this are never cached: the C allocator already
/// reuses them without new page faults.
pub const MIN_BYTES: usize = 1 << 20;

/// The most buffers the cache keeps.
pub const MAX_BUFFERS: usize = 16;

/// The default cap on the bytes cached, in MiB.
pub const DEFAULT_CAPACITY_MB: usize = 256;

/// The alignment of every buffer: enough for any element type (the C
/// allocator's own, so fresh buffers come zeroed from `calloc`, which maps
/// fresh zero pages for large sizes instead of writing them).
const ALIGN: usize = 16;

/// Not yet read from the environment.
const UNSET: usize = usize::MAX;

static CAPACITY: AtomicUsize = AtomicUsize::new(UNSET);

static CACHE: Mutex<Vec<Buffer>> = Mutex::new(Vec::new());

/// A heap block of `len > 0` bytes aligned to 16, owned; see the module
/// docs for where it goes when dropped.
pub struct Buffer {
    ptr: NonNull<u8>,
    len: usize,
    /// Straight from the allocator, not yet handed out before.
    fresh: bool,
}

// SAFETY: a `Buffer` owns its block exclusively, like a `Vec<u8>`.
unsafe impl Send for Buffer {}

impl Buffer {
    /// A buffer of exactly `len` bytes (`len > 0`): a cached one if there
    /// is one of that size, else a fresh zeroed one. Contents of a cached
    /// buffer are unspecified.
    pub fn take(len: usize) -> Result<Buffer> {
        if len == 0 {
            return Err(Error::Shape(
                "buffer: an empty buffer cannot be allocated".into(),
            ));
        }
        if len >= MIN_BYTES {
            if let Some(mut cache) = lock() {
                if let Some(at) = cache.iter().rposition(|b| b.len == len) {
                    return Ok(cache.remove(at));
                }
            }
        }
        Buffer::fresh(len)
    }

    fn fresh(len: usize) -> Result<Buffer> {
        let oom = || Error::OutOfMemory {
            what: "an output array".into(),
            bytes: len,
        };
        let layout = Layout::from_size_align(len, ALIGN).map_err(|_| oom())?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or_else(oom)?;
        advise_huge_pages(ptr.as_ptr(), len);
        Ok(Buffer {
            ptr,
            len,
            fresh: true,
        })
    }

    /// Whether the buffer came straight from the allocator (its pages may
    /// not be mapped yet: the first write to each costs a page fault and
    /// leaves the zeroed lines in cache) rather than from the cache.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a buffer has at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Frees the block, bypassing the cache.
    fn free(self) {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: allocated in `fresh` with this layout, and not freed
        // before (`self` is consumed, its `Drop` does not run).
        unsafe {
            alloc::dealloc(
                this.ptr.as_ptr(),
                Layout::from_size_align_unchecked(this.len, ALIGN),
            )
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let this = Buffer {
            ptr: self.ptr,
            len: self.len,
            fresh: false,
        };
        // `self` is about to be forgotten by the caller of `drop`: the
        // block now belongs to `this`, which is cached or freed.
        give_back(this);
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer({} bytes at {:p})", self.len, self.ptr)
    }
}

/// Caches `buf` if the policy allows, else frees it.
fn give_back(buf: Buffer) {
    let cap = capacity();
    if buf.len < MIN_BYTES || buf.len > cap {
        return buf.free();
    }
    let Some(mut cache) = lock() else {
        return buf.free();
    };
    // Room for `buf`: one slot and `buf.len` bytes under the cap.
    evict(&mut cache, cap - buf.len, MAX_BUFFERS - 1);
    cache.push(buf);
}

/// Frees the oldest cached buffers until at most `count` remain, holding
/// at most `bytes` in all.
fn evict(cache: &mut Vec<Buffer>, bytes: usize, count: usize) {
    let mut total: usize = cache.iter().map(|b| b.len).sum();
    while !cache.is_empty() && (total > bytes || cache.len() > count) {
        let old = cache.remove(0);
        total -= old.len;
        old.free();
    }
}

fn lock() -> Option<std::sync::MutexGuard<'static, Vec<Buffer>>> {
    match CACHE.try_lock() {
        Ok(guard) => Some(guard),
        // The cache holds plain blocks: a panic elsewhere while it was
        // held cannot have left it inconsistent.
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// The cap on the bytes cached.
pub fn capacity() -> usize {
    let cap = CAPACITY.load(Ordering::Relaxed);
    if cap != UNSET {
        return cap;
    }
    let mb = capacity_mb_from_env()
        .ok()
        .flatten()
        .unwrap_or(DEFAULT_CAPACITY_MB);
    let cap = mb.saturating_mul(1 << 20).min(UNSET - 1);
    CAPACITY.store(cap, Ordering::Relaxed);
    cap
}

/// The cap in MiB named by `LEC7RS_BUFFER_CACHE_MB`, if set. A value that
/// is not a non-negative integer is an error, which the caller reports (the
/// cache then uses the default).
pub fn capacity_mb_from_env() -> Result<Option<usize>> {
    match std::env::var("LEC7RS_BUFFER_CACHE_MB") {
        Ok(s) if !s.trim().is_empty() => s.trim().parse::<usize>().map(Some).map_err(|_| {
            Error::Environment(format!(
                "LEC7RS_BUFFER_CACHE_MB={s:?} is not a whole number of MiB (0 turns the cache off)"
            ))
        }),
        _ => Ok(None),
    }
}

/// Sets the cap on the bytes cached (0 turns the cache off) and frees the
/// oldest buffers until the rest fit.
pub fn set_capacity(bytes: usize) {
    let cap = bytes.min(UNSET - 1);
    CAPACITY.store(cap, Ordering::Relaxed);
    if let Some(mut cache) = lock() {
        evict(&mut cache, cap, MAX_BUFFERS);
    }
}

/// Frees every cached buffer.
pub fn clear() {
    if let Some(mut cache) = lock() {
        cache.drain(..).for_each(Buffer::free);
    }
}

/// The number of buffers and bytes cached now.
pub fn cached() -> (usize, usize) {
    lock().map_or((0, 0), |cache| {
        (cache.len(), cache.iter().map(|b| b.len).sum())
    })
}

/// Asks Linux to back a fresh block of at least 4 MiB with transparent
/// huge pages, as NumPy does for its own arrays: 512 times fewer page
/// faults on first touch. A hint; failure changes nothing.
fn advise_huge_pages(ptr: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        if len < 2 * HUGE {
            return;
        }
        let start = ptr as usize;
        let first = start.next_multiple_of(4096);
        let end = start + len;
        if first < end {
            // SAFETY: the range lies inside the block just allocated;
            // madvise with MADV_HUGEPAGE does not change its contents.
            unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache is process-wide: the tests that use it run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[test]
    fn fresh_buffers_are_zeroed_and_aligned() {
        let _s = serial();
        clear();
        for len in [1, 15, 4096, MIN_BYTES + 3, 5 << 20] {
            let b = Buffer::take(len).unwrap();
            assert_eq!(b.len(), len);
            assert_eq!(b.as_ptr() as usize % ALIGN, 0);
            // SAFETY: `len` bytes, owned by `b`.
            let bytes = unsafe { std::slice::from_raw_parts(b.as_ptr(), len) };
            assert!(bytes.iter().all(|&v| v == 0));
        }
        assert!(Buffer::take(0).is_err());
        assert!(Buffer::take(usize::MAX - 8).is_err());
    }

    #[test]
    fn a_dropped_buffer_is_handed_out_again_by_exact_size() {
        let _s = serial();
        set_capacity(DEFAULT_CAPACITY_MB << 20);
        clear();
        let mut a = Buffer::take(MIN_BYTES).unwrap();
        let at = a.as_mut_ptr();
        // SAFETY: in bounds.
        unsafe { at.write(7) };
        drop(a);
        assert_eq!(cached(), (1, MIN_BYTES));
        // Another size does not take it.
        let other = Buffer::take(MIN_BYTES + 1).unwrap();
        assert_ne!(other.as_ptr(), at as *const u8);
        assert!(other.is_fresh());
        let again = Buffer::take(MIN_BYTES).unwrap();
        assert_eq!(again.as_ptr(), at as *const u8);
        assert!(!again.is_fresh());
        // SAFETY: in bounds; the contents are what the last user wrote.
        assert_eq!(unsafe { again.as_ptr().read() }, 7);
        drop(other);
        drop(again);
        assert_eq!(cached(), (2, 2 * MIN_BYTES + 1));
        clear();
        assert_eq!(cached(), (0, 0));
    }

    #[test]
    fn small_buffers_are_not_cached() {
        let _s = serial();
        set_capacity(DEFAULT_CAPACITY_MB << 20);
        clear();
        drop(Buffer::take(MIN_BYTES - 1).unwrap());
        assert_eq!(cached(), (0, 0));
    }

    #[test]
    fn the_cap_evicts_the_oldest_first() {
        let _s = serial();
        set_capacity(3 * MIN_BYTES);
        clear();
        let bufs: Vec<Buffer> = (0..4)
            .map(|i| Buffer::take(MIN_BYTES + i).unwrap())
            .collect();
        let ptrs: Vec<*const u8> = bufs.iter().map(Buffer::as_ptr).collect();
        drop(bufs);
        // Buffers 0..4 went back in order; the cap keeps the last two
        // (three would be 3 MiB + 6 bytes), and one over the cap is freed.
        assert_eq!(cached(), (2, 2 * MIN_BYTES + 5));
        assert_eq!(Buffer::take(MIN_BYTES + 3).unwrap().as_ptr(), ptrs[3]);
        drop(Buffer::take(4 * MIN_BYTES).unwrap());
        assert_eq!(cached().0, 2);
        // Lowering the cap frees what no longer fits; 0 turns it off.
        set_capacity(MIN_BYTES + 3);
        assert_eq!(cached(), (1, MIN_BYTES + 3));
        set_capacity(0);
        assert_eq!(cached(), (0, 0));
        drop(Buffer::take(MIN_BYTES).unwrap());
        assert_eq!(cached(), (0, 0));
        set_capacity(DEFAULT_CAPACITY_MB << 20);
    }

    #[test]
    fn at_most_max_buffers_are_kept() {
        let _s = serial();
        set_capacity(usize::MAX);
        clear();
        let bufs: Vec<Buffer> = (0..MAX_BUFFERS + 3)
            .map(|_| Buffer::take(MIN_BYTES).unwrap())
            .collect();
        drop(bufs);
        assert_eq!(cached(), (MAX_BUFFERS, MAX_BUFFERS * MIN_BYTES));
        clear();
        set_capacity(DEFAULT_CAPACITY_MB << 20);
    }

    #[test]
    fn a_busy_cache_is_bypassed() {
        let _s = serial();
        set_capacity(DEFAULT_CAPACITY_MB << 20);
        clear();
        let held = CACHE.lock().unwrap();
        let b = Buffer::take(MIN_BYTES).unwrap();
        drop(b);
        assert_eq!(held.len(), 0);
        drop(held);
        assert_eq!(cached(), (0, 0));
    }
}

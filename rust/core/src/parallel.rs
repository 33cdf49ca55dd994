//! The thread pool and the fixed-chunk parallel driver.
//!
//! Work is cut into chunks of [`CHUNK`] elements: a constant, never a function
//! of the thread count, so element-wise results, reductions and random masks
//! are the same for 1, 2 or N threads. Jobs below [`INLINE_MAX`] elements run
//! on the calling thread with no pool overhead.
//!
//! The pool is our own (not rayon's global one) so that `set_num_threads` can
//! resize it, and it is rebuilt in a child process after `fork`: the child
//! inherits the pool's memory but none of its threads, so using the parent's
//! pool would hang forever (multiprocessing and data-loader workers fork).
//! For the same reason the slot that holds the pool is guarded by a lock
//! that knows the fork generation of its holder (see [`lock_pool`]): a child
//! forked while another thread of the parent held it (rebuilding the pool
//! after `set_num_threads`, say) takes it over instead of waiting forever
//! for a thread that does not exist in the child.
//!
//! Every driver checks the call's cancellation flag ([`crate::cancel`])
//! before each piece of work and returns [`Error::Cancelled`] once it is
//! raised; under a flag, a one-thread job is cut into the same pieces and
//! run in order, so that it, too, can stop between them.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::cancel::Handoff;
use crate::error::{Error, Result};

/// Elements per parallel task.
pub const CHUNK: usize = 1 << 14;

/// Jobs with at most this many elements in total run inline.
pub const INLINE_MAX: usize = 1 << 15;

/// Upper bound for `set_num_threads`, far above any machine we target.
pub const MAX_THREADS: usize = 1024;

/// 0 until first use; then the number of threads to use.
static NUM_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Bumped in the child after every `fork`.
static FORK_GENERATION: AtomicUsize = AtomicUsize::new(0);

struct PoolEntry {
    pool: Arc<ThreadPool>,
    threads: usize,
    generation: usize,
}

/// The pool slot and its lock: `state` is [`FREE`] or the tag
/// ([`held_by`]) of the fork generation of the thread that holds it.
struct PoolSlot {
    state: AtomicUsize,
    entry: UnsafeCell<Option<PoolEntry>>,
}

// SAFETY: `entry` is only accessed through a `PoolGuard`, which exists
// while `state` marks the slot held by the current thread.
unsafe impl Sync for PoolSlot {}

static POOL: PoolSlot = PoolSlot {
    state: AtomicUsize::new(FREE),
    entry: UnsafeCell::new(None),
};

const FREE: usize = 0;

/// The lock state of a holder of fork generation `generation` (never
/// [`FREE`]).
fn held_by(generation: usize) -> usize {
    (generation << 1) | 1
}

/// Exclusive access to the pool slot; unlocks on drop.
struct PoolGuard;

impl PoolGuard {
    fn entry(&mut self) -> &mut Option<PoolEntry> {
        // SAFETY: the guard holds the lock (see `PoolSlot`).
        unsafe { &mut *POOL.entry.get() }
    }
}

impl Drop for PoolGuard {
    fn drop(&mut self) {
        POOL.state.store(FREE, Ordering::Release);
    }
}

/// Locks the pool slot. A holder of an earlier fork generation is a thread
/// of a parent process, absent here, that was inside the lock when this
/// process was forked: the lock is taken over from it, and what it may have
/// been writing is forgotten (leaked, never dropped: dropping the parent's
/// pool would wait for its threads). A holder of this generation is a live
/// thread, whose short critical section (a few pointer moves) we wait out.
fn lock_pool() -> PoolGuard {
    loop {
        let mine = held_by(FORK_GENERATION.load(Ordering::Acquire));
        match POOL
            .state
            .compare_exchange_weak(FREE, mine, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => return PoolGuard,
            Err(held) if held != FREE && held != mine => {
                if POOL
                    .state
                    .compare_exchange(held, mine, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    // SAFETY: the lock is ours now; the entry may be torn
                    // by the vanished holder, so it is overwritten without
                    // being read or dropped.
                    unsafe { std::ptr::write(POOL.entry.get(), None) };
                    return PoolGuard;
                }
            }
            Err(_) => std::thread::yield_now(),
        }
    }
}

/// The thread count named by `LEC7RS_NUM_THREADS`, if set. A value that is
/// not a positive integer is an error, which the caller reports.
pub fn num_threads_from_env() -> Result<Option<usize>> {
    match std::env::var("LEC7RS_NUM_THREADS") {
        Ok(s) if !s.trim().is_empty() => match s.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(Some(n)),
            _ => Err(Error::Threads(format!(
                "LEC7RS_NUM_THREADS={s:?} is not an integer in 1..={MAX_THREADS}"
            ))),
        },
        _ => Ok(None),
    }
}

fn default_num_threads() -> usize {
    num_threads_from_env().ok().flatten().unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// The number of threads kernels use.
pub fn num_threads() -> usize {
    match NUM_THREADS.load(Ordering::Relaxed) {
        0 => {
            let n = default_num_threads();
            // Another thread may have set it meanwhile: theirs wins.
            match NUM_THREADS.compare_exchange(0, n, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => n,
                Err(current) => current,
            }
        }
        n => n,
    }
}

/// Sets the number of threads (the pool is rebuilt on next use).
pub fn set_num_threads(n: usize) -> Result<()> {
    if !(1..=MAX_THREADS).contains(&n) {
        return Err(Error::Threads(format!(
            "number of threads must be in 1..={MAX_THREADS}, got {n}"
        )));
    }
    NUM_THREADS.store(n, Ordering::Relaxed);
    Ok(())
}

/// Registers the fork handler that tells a child to build its own pool.
/// Runs on first use of the pool; call it early (the binding does at
/// import, with one thread running) so that no fork can come between the
/// first pool and the handler.
pub fn init() {
    register_fork_handler();
}

#[cfg(unix)]
fn register_fork_handler() {
    // Not a `Once`: a child forked while another thread was inside
    // `call_once` would wait on it forever.
    static REGISTERED: AtomicBool = AtomicBool::new(false);
    extern "C" fn in_child() {
        FORK_GENERATION.fetch_add(1, Ordering::AcqRel);
    }
    if REGISTERED.load(Ordering::Acquire) || REGISTERED.swap(true, Ordering::AcqRel) {
        return;
    }
    // SAFETY: registers a handler that only touches an atomic.
    unsafe {
        libc::pthread_atfork(None, None, Some(in_child));
    }
}

#[cfg(not(unix))]
fn register_fork_handler() {}

fn pool(threads: usize) -> Result<Arc<ThreadPool>> {
    register_fork_handler();
    let generation = FORK_GENERATION.load(Ordering::Acquire);
    if let Some(entry) = lock_pool().entry() {
        if entry.generation == generation && entry.threads == threads {
            return Ok(entry.pool.clone());
        }
    }
    // Built outside the lock: starting threads takes a while, and a fork
    // meanwhile must find the lock free.
    let built = ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("lec7rs-{i}"))
        .build()
        .map_err(|e| Error::Threads(format!("cannot start {threads} threads: {e}")))?;
    let built = Arc::new(built);
    let replaced = {
        let mut guard = lock_pool();
        let slot = guard.entry();
        if let Some(entry) = slot.as_ref() {
            if entry.generation == generation && entry.threads == threads {
                // Another thread built one meanwhile: use theirs.
                return Ok(entry.pool.clone());
            }
        }
        slot.replace(PoolEntry {
            pool: built.clone(),
            threads,
            generation,
        })
    };
    if let Some(stale) = replaced {
        if stale.generation != generation {
            // Inherited across fork: its threads do not exist here, and
            // dropping it would wait on them. Leak it.
            std::mem::forget(stale);
        }
    }
    Ok(built)
}

/// A unit of work that can be cut at an element index: one tensor's slices
/// (param, grad, state) together.
pub trait Split: Sized + Send {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Cuts every slice at `mid` (slices that are empty stay empty).
    fn split_at(self, mid: usize) -> (Self, Self);
}

/// Cuts a mutable slice at `mid`, leaving an empty slice empty.
#[inline]
pub fn split_mut<T>(s: &mut [T], mid: usize) -> (&mut [T], &mut [T]) {
    if s.is_empty() {
        (s, &mut [])
    } else {
        s.split_at_mut(mid)
    }
}

/// Cuts a shared slice at `mid`, leaving an empty slice empty.
#[inline]
pub fn split_ref<T>(s: &[T], mid: usize) -> (&[T], &[T]) {
    if s.is_empty() {
        (s, &[])
    } else {
        s.split_at(mid)
    }
}

fn into_chunks<W: Split>(items: Vec<W>) -> Result<Vec<W>> {
    let total: usize = items.iter().map(Split::len).sum();
    let mut chunks = crate::alloc::with_capacity(total / CHUNK + items.len(), "parallel chunks")?;
    for mut item in items {
        while item.len() > CHUNK {
            let (head, tail) = item.split_at(CHUNK);
            chunks.push(head);
            item = tail;
        }
        chunks.push(item);
    }
    Ok(chunks)
}

/// Runs `f` over every item, as one parallel job over fixed-size chunks of
/// all items together (not one item after another). Small jobs and a
/// one-thread setting run inline, on whole items (under a cancellation
/// flag, a one-thread job runs chunk by chunk). `f` must be element-wise:
/// its result may not depend on where the items are cut.
pub fn for_each_chunk<W, F>(items: Vec<W>, f: F) -> Result<()>
where
    W: Split,
    F: Fn(W) + Sync + Send,
{
    let total: usize = items.iter().map(Split::len).sum();
    let threads = num_threads();
    let cancel = Handoff::current();
    if total <= INLINE_MAX || (threads <= 1 && !cancel.is_active()) {
        items.into_iter().for_each(f);
        return Ok(());
    }
    let chunks = into_chunks(items)?;
    if threads <= 1 {
        for chunk in chunks {
            cancel.check()?;
            f(chunk);
        }
        return Ok(());
    }
    pool(threads)?.install(|| {
        chunks.into_par_iter().for_each(|chunk| {
            if !cancel.requested() {
                cancel.run(|| f(chunk));
            }
        })
    });
    cancel.check()
}

/// Maps `f` over fixed chunks of all items and returns the results in chunk
/// order, whatever the thread count: the building block of reductions with
/// a fixed tree (combine the results in order).
pub fn map_chunks<W, R, F>(items: Vec<W>, f: F) -> Result<Vec<R>>
where
    W: Split,
    R: Send,
    F: Fn(W) -> R + Sync + Send,
{
    let total: usize = items.iter().map(Split::len).sum();
    let chunks = into_chunks(items)?;
    let threads = num_threads();
    let cancel = Handoff::current();
    if total <= INLINE_MAX {
        return crate::alloc::collect(chunks.into_iter().map(f), "parallel results");
    }
    if threads <= 1 {
        let mut out = crate::alloc::with_capacity(chunks.len(), "parallel results")?;
        for chunk in chunks {
            cancel.check()?;
            out.push(f(chunk));
        }
        return Ok(out);
    }
    let mut out = crate::alloc::with_capacity(chunks.len(), "parallel results")?;
    pool(threads)?.install(|| {
        chunks
            .into_par_iter()
            .map(|chunk| (!cancel.requested()).then(|| cancel.run(|| f(chunk))))
            .collect_into_vec(&mut out)
    });
    unwrap_all(out)
}

/// The results of a job whose skipped pieces (`None`) mean it was
/// cancelled.
fn unwrap_all<R>(parts: Vec<Option<R>>) -> Result<Vec<R>> {
    let mut out = crate::alloc::with_capacity(parts.len(), "parallel results")?;
    for part in parts {
        out.push(part.ok_or(Error::Cancelled)?);
    }
    Ok(out)
}

/// Runs `f(i, row)` over the rows of a row-major matrix (`row_len`
/// elements each) in parallel and returns the results in row order. Each row
/// is processed whole by one thread, so per-row results never depend on the
/// thread count. Small matrices and a one-thread setting run inline.
pub fn map_rows<T, R, F>(data: &mut [T], row_len: usize, f: F) -> Result<Vec<R>>
where
    T: Send,
    R: Send,
    F: Fn(usize, &mut [T]) -> R + Sync + Send,
{
    if row_len == 0 {
        return Ok(Vec::new());
    }
    let threads = num_threads();
    let cancel = Handoff::current();
    let rows = data.len().div_ceil(row_len);
    if threads <= 1 || data.len() <= INLINE_MAX {
        let mut out = crate::alloc::with_capacity(rows, "parallel results")?;
        for (i, r) in data.chunks_mut(row_len).enumerate() {
            cancel.check()?;
            out.push(f(i, r));
        }
        return Ok(out);
    }
    let mut out = crate::alloc::with_capacity(rows, "parallel results")?;
    pool(threads)?.install(|| {
        data.par_chunks_mut(row_len)
            .enumerate()
            .map(|(i, r)| (!cancel.requested()).then(|| cancel.run(|| f(i, r))))
            .collect_into_vec(&mut out)
    });
    unwrap_all(out)
}

/// Like [`for_each_chunk`] for work made of indivisible tasks of
/// `task_len` elements each (the planes of an image batch): `work.len()`
/// counts tasks, and each parallel piece holds whole tasks, about [`CHUNK`]
/// elements (at least one task). `f` must treat every task on its own, so
/// that results do not depend on the pieces.
pub fn for_each_task<W, F>(work: W, task_len: usize, f: F) -> Result<()>
where
    W: Split,
    F: Fn(W) + Sync + Send,
{
    try_for_each_task(work, task_len, |w| {
        f(w);
        Ok(())
    })
}

/// [`for_each_task`] for an `f` that can fail (a table it allocates, a
/// cancellation it notices): the error of the first failing piece, in
/// order, is returned; the other pieces still run.
pub fn try_for_each_task<W, F>(work: W, task_len: usize, f: F) -> Result<()>
where
    W: Split,
    F: Fn(W) -> Result<()> + Sync + Send,
{
    let total = work.len().saturating_mul(task_len);
    let threads = num_threads();
    let cancel = Handoff::current();
    if total <= INLINE_MAX || (threads <= 1 && !cancel.is_active()) {
        return f(work);
    }
    let per = (CHUNK / task_len.max(1)).max(1);
    let mut pieces = crate::alloc::with_capacity(work.len() / per + 1, "parallel pieces")?;
    let mut rest = work;
    while rest.len() > per {
        let (head, tail) = rest.split_at(per);
        pieces.push(head);
        rest = tail;
    }
    pieces.push(rest);
    if threads <= 1 {
        for piece in pieces {
            cancel.check()?;
            f(piece)?;
        }
        return Ok(());
    }
    let mut results = crate::alloc::with_capacity(pieces.len(), "parallel results")?;
    pool(threads)?.install(|| {
        pieces
            .into_par_iter()
            .map(|piece| {
                cancel.check()?;
                cancel.run(|| f(piece))
            })
            .collect_into_vec(&mut results)
    });
    results.into_iter().collect()
}

/// A source and a destination of one length, cut together.
struct CopyPair<'a, T> {
    src: &'a [T],
    dst: &'a mut [T],
}

impl<T: Send + Sync> Split for CopyPair<'_, T> {
    fn len(&self) -> usize {
        self.dst.len()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let (s0, s1) = split_ref(self.src, mid);
        let (d0, d1) = split_mut(self.dst, mid);
        (CopyPair { src: s0, dst: d0 }, CopyPair { src: s1, dst: d1 })
    }
}

/// `dst.copy_from_slice(src)` over fixed chunks in parallel (a large copy
/// is faster on several cores than on one). Errs if the lengths differ.
pub fn copy<T: Copy + Send + Sync>(src: &[T], dst: &mut [T]) -> Result<()> {
    if src.len() != dst.len() {
        return Err(Error::LengthMismatch {
            what: "copy destination".into(),
            expected: src.len(),
            got: dst.len(),
        });
    }
    for_each_chunk(vec![CopyPair { src, dst }], |p| {
        p.dst.copy_from_slice(p.src)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Range(std::ops::Range<usize>);

    impl Split for Range {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn split_at(self, mid: usize) -> (Self, Self) {
            let cut = self.0.start + mid;
            (Range(self.0.start..cut), Range(cut..self.0.end))
        }
    }

    #[test]
    fn copy_copies_every_element_at_any_thread_count() {
        for n in [0, 1, INLINE_MAX, INLINE_MAX + 1, 3 * CHUNK + 17] {
            let src: Vec<u64> = (0..n as u64).map(|i| i * 2654435761).collect();
            for threads in [1, 2, 3] {
                set_num_threads(threads).unwrap();
                let mut dst = vec![7u64; n];
                copy(&src, &mut dst).unwrap();
                assert!(dst == src, "n={n} threads={threads}");
            }
        }
        assert!(copy(&[1u8, 2], &mut [0u8; 3]).is_err());
    }

    #[test]
    fn chunks_are_fixed_and_cover_everything() {
        let items = vec![Range(0..3 * CHUNK + 5), Range(0..0), Range(0..7)];
        let sizes: Vec<usize> = into_chunks(items).unwrap().iter().map(Split::len).collect();
        assert_eq!(sizes, vec![CHUNK, CHUNK, CHUNK, 5, 0, 7]);
    }

    #[test]
    fn map_chunks_keeps_order_for_any_thread_count() {
        let make = || vec![Range(0..5 * CHUNK + 3), Range(10..20)];
        let want: Vec<usize> = into_chunks(make())
            .unwrap()
            .iter()
            .map(|r| r.0.start)
            .collect();
        for threads in [1, 2, 3] {
            set_num_threads(threads).unwrap();
            let got = map_chunks(make(), |r| r.0.start).unwrap();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn tasks_stay_whole() {
        // 100 tasks of 3/7 CHUNK elements: pieces of 2 tasks, or one
        // inline piece. (Other tests may change the thread count meanwhile.)
        for threads in [1, 2] {
            set_num_threads(threads).unwrap();
            let seen = Mutex::new(Vec::new());
            for_each_task(Range(0..100), 3 * CHUNK / 7, |r| {
                seen.lock().unwrap().push((r.0.start, r.0.end))
            })
            .unwrap();
            let mut pieces = seen.into_inner().unwrap();
            pieces.sort();
            assert_eq!(pieces[0].0, 0);
            assert_eq!(pieces.last().unwrap().1, 100);
            for pair in pieces.windows(2) {
                assert_eq!(pair[0].1, pair[1].0);
            }
            assert!(pieces.iter().all(|&(a, b)| b - a == 2 || b - a == 100));
        }
    }

    #[test]
    fn a_raised_flag_stops_every_driver_between_pieces() {
        for threads in [1, 2] {
            set_num_threads(threads).unwrap();
            let flag = AtomicBool::new(false);
            let ran = AtomicUsize::new(0);
            let n = 64 * CHUNK;
            let outcome = crate::cancel::scope(&flag, || {
                for_each_chunk(vec![Range(0..n)], |_| {
                    ran.fetch_add(1, Ordering::Relaxed);
                    flag.store(true, Ordering::Relaxed);
                })
            });
            assert!(matches!(outcome, Err(Error::Cancelled)));
            assert!(ran.load(Ordering::Relaxed) < 64, "threads={threads}");
            let outcome = crate::cancel::scope(&flag, || map_chunks(vec![Range(0..n)], |r| r.0));
            assert!(matches!(outcome, Err(Error::Cancelled)));
            let outcome =
                crate::cancel::scope(&flag, || try_for_each_task(Range(0..n), 1, |_| Ok(())));
            assert!(matches!(outcome, Err(Error::Cancelled)));
            let mut rows = vec![0u8; n];
            let outcome = crate::cancel::scope(&flag, || map_rows(&mut rows, CHUNK, |_, _| ()));
            assert!(matches!(outcome, Err(Error::Cancelled)));
            // Without a raised flag, the same jobs run whole.
            let calm = AtomicBool::new(false);
            let count = crate::cancel::scope(&calm, || map_chunks(vec![Range(0..n)], |_| 1));
            assert_eq!(count.unwrap().len(), 64);
        }
    }

    #[test]
    fn a_lock_held_across_fork_is_taken_over() {
        // Simulate the child's view: the slot locked by a thread of the
        // previous fork generation.
        let generation = FORK_GENERATION.load(Ordering::Acquire);
        let stale = held_by(generation.wrapping_sub(1));
        if POOL
            .state
            .compare_exchange(FREE, stale, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            drop(lock_pool());
            assert_eq!(POOL.state.load(Ordering::Acquire), FREE);
        }
    }

    #[test]
    fn thread_count_is_validated() {
        assert!(set_num_threads(0).is_err());
        assert!(set_num_threads(MAX_THREADS + 1).is_err());
    }
}

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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};

use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

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

static POOL: Mutex<Option<PoolEntry>> = Mutex::new(None);

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

#[cfg(unix)]
fn register_fork_handler() {
    static ONCE: Once = Once::new();
    extern "C" fn in_child() {
        FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
    }
    ONCE.call_once(|| {
        // SAFETY: registers a handler that only touches an atomic.
        unsafe {
            libc::pthread_atfork(None, None, Some(in_child));
        }
    });
}

#[cfg(not(unix))]
fn register_fork_handler() {}

fn pool(threads: usize) -> Result<Arc<ThreadPool>> {
    register_fork_handler();
    let generation = FORK_GENERATION.load(Ordering::Relaxed);
    let mut slot = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(entry) = slot.as_ref() {
        if entry.generation == generation && entry.threads == threads {
            return Ok(entry.pool.clone());
        }
    }
    if let Some(stale) = slot.take() {
        if stale.generation != generation {
            // Inherited across fork: its threads do not exist here, and
            // dropping it would wait on them. Leak it.
            std::mem::forget(stale);
        }
    }
    let pool = ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("lec7rs-{i}"))
        .build()
        .map_err(|e| Error::Threads(format!("cannot start {threads} threads: {e}")))?;
    let pool = Arc::new(pool);
    *slot = Some(PoolEntry {
        pool: pool.clone(),
        threads,
        generation,
    });
    Ok(pool)
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

fn into_chunks<W: Split>(items: Vec<W>) -> Vec<W> {
    let total: usize = items.iter().map(Split::len).sum();
    let mut chunks = Vec::with_capacity(total / CHUNK + items.len());
    for mut item in items {
        while item.len() > CHUNK {
            let (head, tail) = item.split_at(CHUNK);
            chunks.push(head);
            item = tail;
        }
        chunks.push(item);
    }
    chunks
}

/// Runs `f` over every item, as one parallel job over fixed-size chunks of
/// all items together (not one item after another). Small jobs and a
/// one-thread setting run inline, on whole items. `f` must be element-wise:
/// its result may not depend on where the items are cut.
pub fn for_each_chunk<W, F>(items: Vec<W>, f: F) -> Result<()>
where
    W: Split,
    F: Fn(W) + Sync + Send,
{
    let total: usize = items.iter().map(Split::len).sum();
    let threads = num_threads();
    if threads <= 1 || total <= INLINE_MAX {
        items.into_iter().for_each(f);
        return Ok(());
    }
    let chunks = into_chunks(items);
    pool(threads)?.install(|| chunks.into_par_iter().for_each(f));
    Ok(())
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
    let chunks = into_chunks(items);
    let threads = num_threads();
    if threads <= 1 || total <= INLINE_MAX {
        return Ok(chunks.into_iter().map(f).collect());
    }
    Ok(pool(threads)?.install(|| chunks.into_par_iter().map(f).collect()))
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
    if threads <= 1 || data.len() <= INLINE_MAX {
        return Ok(data
            .chunks_mut(row_len)
            .enumerate()
            .map(|(i, r)| f(i, r))
            .collect());
    }
    Ok(pool(threads)?.install(|| {
        data.par_chunks_mut(row_len)
            .enumerate()
            .map(|(i, r)| f(i, r))
            .collect()
    }))
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
    let total = work.len().saturating_mul(task_len);
    let threads = num_threads();
    if threads <= 1 || total <= INLINE_MAX {
        f(work);
        return Ok(());
    }
    let per = (CHUNK / task_len.max(1)).max(1);
    let mut pieces = Vec::with_capacity(work.len() / per + 1);
    let mut rest = work;
    while rest.len() > per {
        let (head, tail) = rest.split_at(per);
        pieces.push(head);
        rest = tail;
    }
    pieces.push(rest);
    pool(threads)?.install(|| pieces.into_par_iter().for_each(f));
    Ok(())
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
        let sizes: Vec<usize> = into_chunks(items).iter().map(Split::len).collect();
        assert_eq!(sizes, vec![CHUNK, CHUNK, CHUNK, 5, 0, 7]);
    }

    #[test]
    fn map_chunks_keeps_order_for_any_thread_count() {
        let make = || vec![Range(0..5 * CHUNK + 3), Range(10..20)];
        let want: Vec<usize> = into_chunks(make()).iter().map(|r| r.0.start).collect();
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
    fn thread_count_is_validated() {
        assert!(set_num_threads(0).is_err());
        assert!(set_num_threads(MAX_THREADS + 1).is_err());
    }
}

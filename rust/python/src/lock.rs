//! `_core.Lock`: the re-entrant lock of one stateful object (an optimizer,
//! a PolyakAverage; `python/lec7rs/_serial.py` gives each its own).
//!
//! It is `threading.RLock` with one addition: Rust can take it without a
//! call into Python. A small planned step ([`crate::plan`]) takes its
//! optimizer's lock here, in two atomic operations, instead of through
//! Python's `acquire`/`release` (a tenth of the step). The owner is a
//! thread number of this module's (never 0: free); the count is touched
//! by the owner only. A waiter sleeps with the GIL released on a condition
//! variable that the last release notifies, in slices of [`POLL`] so that
//! Ctrl-C reaches it. A forked child gets new locks (`_serial.py`), so a
//! lock held, or a condition variable's mutex taken, by one of the
//! parent's other threads is never waited for there.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// How long a waiter sleeps between two checks for signals.
const POLL: Duration = Duration::from_millis(50);

/// This thread's number: 1, 2, ... in the order threads first ask.
fn me() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static ME: u64 = NEXT.fetch_add(1, SeqCst);
    }
    ME.with(|&id| id)
}

#[pyclass(module = "lec7rs._core", frozen)]
pub struct Lock {
    owner: AtomicU64,
    count: AtomicU64,
    waiters: AtomicUsize,
    free: (Mutex<()>, Condvar),
}

impl Lock {
    /// Takes the lock for this thread if it is free or already this
    /// thread's; false if another thread holds it.
    pub(crate) fn try_enter(&self) -> bool {
        let me = me();
        match self.owner.compare_exchange(0, me, SeqCst, SeqCst) {
            Ok(_) => {
                self.count.store(1, SeqCst);
                true
            }
            Err(owner) if owner == me => {
                self.count.fetch_add(1, SeqCst);
                true
            }
            Err(_) => false,
        }
    }

    /// Gives back one level of this thread's hold; false if it holds none.
    pub(crate) fn exit(&self) -> bool {
        if self.owner.load(SeqCst) != me() {
            return false;
        }
        if self.count.fetch_sub(1, SeqCst) == 1 {
            self.owner.store(0, SeqCst);
            if self.waiters.load(SeqCst) > 0 {
                let _guard = self.free.0.lock().unwrap_or_else(|e| e.into_inner());
                self.free.1.notify_all();
            }
        }
        true
    }

    /// Sleeps (GIL released) until the lock looks free, `deadline` passes
    /// or one [`POLL`] slice ends.
    fn wait(&self, deadline: Option<Instant>) {
        self.waiters.fetch_add(1, SeqCst);
        let mut guard = self.free.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut slice = POLL;
        if let Some(d) = deadline {
            slice = slice.min(d.saturating_duration_since(Instant::now()));
        }
        if self.owner.load(SeqCst) != 0 && !slice.is_zero() {
            guard = match self.free.1.wait_timeout(guard, slice) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        drop(guard);
        self.waiters.fetch_sub(1, SeqCst);
    }
}

/// One level of a lock taken by Rust, given back when dropped.
pub(crate) struct Held<'a>(&'a Lock);

impl<'a> Held<'a> {
    /// The lock for this thread, or None if another thread holds it.
    pub(crate) fn try_new(lock: &'a Lock) -> Option<Held<'a>> {
        lock.try_enter().then_some(Held(lock))
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.exit();
    }
}

#[pymethods]
impl Lock {
    #[new]
    fn new() -> Self {
        Lock {
            owner: AtomicU64::new(0),
            count: AtomicU64::new(0),
            waiters: AtomicUsize::new(0),
            free: (Mutex::new(()), Condvar::new()),
        }
    }

    /// As `threading.RLock.acquire`: True once held (again, by a thread
    /// that holds it already); False after `timeout` seconds or at once
    /// with `blocking=False`.
    #[pyo3(
        signature = (blocking = true, timeout = -1.0),
        text_signature = "(self, /, blocking=True, timeout=-1.0)"
    )]
    fn acquire(&self, py: Python<'_>, blocking: bool, timeout: f64) -> PyResult<bool> {
        if !blocking && timeout != -1.0 {
            return Err(PyValueError::new_err(
                "can't specify a timeout for a non-blocking call",
            ));
        }
        if timeout < 0.0 && timeout != -1.0 || timeout.is_nan() {
            return Err(PyValueError::new_err(
                "timeout value must be a non-negative number",
            ));
        }
        if self.try_enter() {
            return Ok(true);
        }
        if !blocking {
            return Ok(false);
        }
        // A timeout too long for an Instant waits forever, as RLock does.
        let deadline = match timeout {
            t if t < 0.0 => None,
            t => Duration::try_from_secs_f64(t)
                .ok()
                .and_then(|d| Instant::now().checked_add(d)),
        };
        loop {
            py.detach(|| self.wait(deadline));
            if self.try_enter() {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            py.check_signals()?;
        }
    }

    /// As `threading.RLock.release`: RuntimeError unless this thread
    /// holds the lock.
    fn release(&self) -> PyResult<()> {
        match self.exit() {
            true => Ok(()),
            false => Err(PyRuntimeError::new_err("cannot release un-acquired lock")),
        }
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        self.acquire(py, true, -1.0)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.release()
    }

    /// Whether any thread holds the lock.
    fn locked(&self) -> bool {
        self.owner.load(SeqCst) != 0
    }

    /// Whether this thread holds the lock (as RLock's).
    fn _is_owned(&self) -> bool {
        self.owner.load(SeqCst) == me()
    }
}

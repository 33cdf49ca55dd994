//! Cooperative cancellation of long calls (Ctrl-C from Python).
//!
//! A caller that wants to be able to stop a call runs it inside
//! [`scope`] with a flag it may raise from another thread. The parallel
//! driver ([`crate::parallel`]) checks the flag before every fixed piece of
//! work (a chunk, a row, a group of images) and hands it to the pool tasks
//! it starts, and kernels whose single pieces can be long (a pooling plane
//! with a huge window, one huge image) check [`requested`] as they go. A
//! cancelled call stops within one piece and returns [`Error::Cancelled`];
//! what it had written by then stays written.
//!
//! Outside a scope nothing is ever cancelled, and a check costs one
//! thread-local read. The flag is per call, not global: a call on one
//! thread is never stopped by the Ctrl-C meant for a call on another.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

thread_local! {
    /// The flag of the scope this thread runs in (null outside any).
    static CURRENT: Cell<*const AtomicBool> = const { Cell::new(ptr::null()) };
}

/// Puts the previous flag back, also when `f` unwinds.
struct Restore(*const AtomicBool);

impl Drop for Restore {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Runs `f` on this thread with `flag` as its cancellation flag: once
/// `flag` is true, the kernels `f` calls stop early with
/// [`Error::Cancelled`].
pub fn scope<R>(flag: &AtomicBool, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(|c| c.replace(flag));
    let _restore = Restore(previous);
    f()
}

/// Whether the call running on this thread was asked to stop.
#[inline]
pub fn requested() -> bool {
    Handoff::current().requested()
}

/// `Err(Error::Cancelled)` if the call running on this thread was asked to
/// stop.
#[inline]
pub fn check() -> Result<()> {
    Handoff::current().check()
}

/// The calling thread's flag, handed to the pool tasks of one parallel job.
///
/// It is only valid while the calling thread is inside its [`scope`],
/// which the parallel driver guarantees: it hands it only to tasks of a
/// job it waits for before returning.
#[derive(Clone, Copy)]
pub(crate) struct Handoff(*const AtomicBool);

// SAFETY: the pointer is to an `AtomicBool` (itself `Sync`) that outlives
// every task the handoff is given to (see above).
unsafe impl Send for Handoff {}
unsafe impl Sync for Handoff {}

impl Handoff {
    #[inline]
    pub(crate) fn current() -> Self {
        Handoff(CURRENT.with(Cell::get))
    }

    /// Whether the job can be cancelled at all.
    #[inline]
    pub(crate) fn is_active(self) -> bool {
        !self.0.is_null()
    }

    #[inline]
    pub(crate) fn requested(self) -> bool {
        // SAFETY: non-null only inside the scope of the flag (see the type).
        !self.0.is_null() && unsafe { (*self.0).load(Ordering::Relaxed) }
    }

    #[inline]
    pub(crate) fn check(self) -> Result<()> {
        if self.requested() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Runs `f` on this (pool) thread under the job's flag.
    #[inline]
    pub(crate) fn run<R>(self, f: impl FnOnce() -> R) -> R {
        if self.0.is_null() {
            return f();
        }
        let previous = CURRENT.with(|c| c.replace(self.0));
        let _restore = Restore(previous);
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inside_a_raised_scope() {
        assert!(!requested());
        let flag = AtomicBool::new(false);
        scope(&flag, || {
            assert!(check().is_ok());
            flag.store(true, Ordering::Relaxed);
            assert!(matches!(check(), Err(Error::Cancelled)));
            let other = AtomicBool::new(false);
            scope(&other, || assert!(!requested()));
            assert!(requested());
        });
        assert!(!requested());
    }
}

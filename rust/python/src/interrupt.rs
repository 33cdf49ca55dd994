//! Long calls that Ctrl-C can stop.
//!
//! Python handles a signal only when the main thread runs Python code (or
//! calls `PyErr_CheckSignals`); a kernel that runs for minutes with the GIL
//! released would hold back Ctrl-C until it finished. So a call whose work
//! is large runs on a helper thread, under a cancellation flag of the core
//! ([`lec7rs_core::cancel`]), while the calling thread waits for it in
//! slices of [`POLL`] and checks for signals in between. When the signal
//! handler raises (`KeyboardInterrupt` for SIGINT), the flag is raised,
//! the kernel stops at its next piece of work (a chunk, a plane, a row:
//! well under [`POLL`]) and the handler's exception is returned.
//!
//! A stopped call changes nothing the caller can see, except arrays it was
//! given to write (`out=`, in-place inputs), which may be partly written.
//! Small calls, and calls from threads other than the main one (which never
//! see signals), run directly with the GIL released.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use lec7rs_core::{cancel, Error};
use pyo3::prelude::*;

/// Work (elements, or element-visits for windowed kernels) from which a
/// call is watched: about 10 ms and more, where the cost of the helper
/// thread (tens of microseconds) is lost in the noise.
pub const WATCH_MIN_WORK: usize = 1 << 24;

/// How long the calling thread waits between two checks for signals.
const POLL: Duration = Duration::from_millis(20);

/// Runs `job` with the GIL released, and, when `work` is at least
/// [`WATCH_MIN_WORK`], so that a signal (Ctrl-C) stops it: the signal
/// handler's exception is the `Err`. Otherwise the `Ok` holds what `job`
/// returned.
pub fn detach<R, F>(py: Python<'_>, work: usize, job: F) -> PyResult<lec7rs_core::Result<R>>
where
    R: Send,
    F: FnOnce() -> lec7rs_core::Result<R> + Send,
{
    if work < WATCH_MIN_WORK || !on_main_thread(py) {
        return Ok(py.detach(job));
    }
    let flag = AtomicBool::new(false);
    let job = Mutex::new(Some(job));
    // The job, taken by whichever thread runs it (exactly one does).
    let take = |job: &Mutex<Option<F>>| -> lec7rs_core::Result<R> {
        let job = job.lock().unwrap_or_else(|e| e.into_inner()).take();
        job.map_or_else(
            || Err(Error::Protocol("a job ran twice".into())),
            |job| job(),
        )
    };
    let done = Done::default();
    std::thread::scope(|scope| {
        let (flag_ref, job_ref, done_ref) = (&flag, &job, &done);
        let worker = std::thread::Builder::new()
            .name("lec7rs-call".into())
            .spawn_scoped(scope, move || {
                // Marks the job done when it returns or unwinds.
                let _mark = Mark(done_ref);
                cancel::scope(flag_ref, || take(job_ref))
            });
        let Ok(worker) = worker else {
            // No thread to spare: run it here, not interruptible.
            return Ok(py.detach(|| take(&job)));
        };
        loop {
            if py.detach(|| done.wait(POLL)) {
                break;
            }
            if let Err(signal) = py.check_signals() {
                flag.store(true, Ordering::Relaxed);
                // Wait for the kernel to stop (its result, or a panic, is
                // of no use now).
                let _ = py.detach(|| worker.join());
                return Err(signal);
            }
        }
        match py.detach(|| worker.join()) {
            Ok(out) => Ok(out),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Whether the job has ended, and a way to wait for that.
#[derive(Default)]
struct Done {
    ended: Mutex<bool>,
    changed: Condvar,
}

impl Done {
    /// Waits at most `timeout` for the end; returns whether it came.
    fn wait(&self, timeout: Duration) -> bool {
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        let (ended, _) = self
            .changed
            .wait_timeout_while(ended, timeout, |ended| !*ended)
            .unwrap_or_else(|e| e.into_inner());
        *ended
    }
}

/// Sets [`Done`] when dropped.
struct Mark<'a>(&'a Done);

impl Drop for Mark<'_> {
    fn drop(&mut self) {
        *self.0.ended.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0.changed.notify_all();
    }
}

/// Whether this is Python's main thread, the only one that handles signals.
fn on_main_thread(py: Python<'_>) -> bool {
    let check = || -> PyResult<bool> {
        let threading = py.import("threading")?;
        let current = threading.call_method0("current_thread")?;
        let main = threading.call_method0("main_thread")?;
        Ok(current.is(&main))
    };
    check().unwrap_or(false)
}

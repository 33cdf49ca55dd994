//! The driver of `minimize_many`: `k` independent minimizations of `n`
//! variables each, one [`Minimizer`] per row, advanced in rounds so that
//! the caller evaluates all the rows that need an evaluation in one call
//! (a vectorized objective in Python).
//!
//! ```text
//! let mut many = Many::new(&x0, n, options, None)?;   // x0: k x n, row-major
//! loop {
//!     let active = many.next_round()?.to_vec(); // ascending row indices
//!     if active.is_empty() { break; }
//!     let (f, g) = fun(many.trials(), &active); // (len(active),), (len(active), n)
//!     many.tell(&f, &g)?;
//! }
//! let results = many.results()?;
//! ```
//!
//! A round advances every running row, in parallel over the thread pool,
//! until it asks for an evaluation or finishes (an iteration ends without
//! a callback: [`Request::Iterate`] just continues). Each row is its own
//! [`Minimizer`] with the same options, whose passes reduce in a fixed
//! order (`reduce.rs`): a row's iterates are those of `minimize` on that
//! row alone, whatever the other rows do, whichever rows are still active
//! and however many threads run them. A row whose objective is not finite
//! ends alone with its own status, as `minimize` would.
//!
//! Rows are processed whole, several to a pool task (about
//! [`parallel::CHUNK`] elements of work per task). A row longer than that
//! is a task of its own, and its passes are parallel themselves: a pass
//! started from a pool task joins the same pool (rayon runs nested jobs
//! on the calling worker and steals, never blocks), and passes of at most
//! [`parallel::INLINE_MAX`] elements run inline on the task's thread.

use super::lbfgs::alloc_zeroed;
use super::minimizer::{Method, Minimizer, Options, Request, Status};
use crate::error::{Error, Result};
use crate::parallel::{self, split_mut, split_ref, Split};
use crate::simd::Real;

/// `k` minimizations in lockstep rounds. See the module docs.
pub struct Many<T: Real> {
    n: usize,
    /// Elements of memory one row touches in a round (for the task size).
    row_work: usize,
    rows: Vec<Minimizer<T>>,
    /// The running rows, ascending: those asked to evaluate after a round.
    active: Vec<usize>,
    /// The trial points of the active rows, packed `(len(active), n)`.
    trials: Vec<T>,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// [`Many::next_round`] comes next.
    Advance,
    /// The active rows wait for [`Many::tell`].
    Awaiting,
    /// A round or a tell failed part way: the rows are in no consistent
    /// state, and every call errs.
    Broken,
}

/// The outcome of every row, row `i` at index `i` (`x` row-major,
/// `k x n`).
#[derive(Clone, Debug, PartialEq)]
pub struct Results<T> {
    pub x: Vec<T>,
    pub f: Vec<f64>,
    pub nit: Vec<u64>,
    pub nfev: Vec<u64>,
    pub status: Vec<Status>,
    pub message: Vec<String>,
}

/// The minimizer of one row, starting from `x0`. The one place where rows
/// are made: a run with other per-row settings (a box) changes only this.
fn new_row<T: Real>(x0: &[T], opts: Options, bounds: Option<(&[T], &[T])>) -> Result<Minimizer<T>> {
    match bounds {
        None => Minimizer::new(x0, opts),
        Some((lo, hi)) => Minimizer::with_bounds(x0, opts, lo.to_vec(), hi.to_vec()),
    }
}

/// Bytes one row of `n` holds with an L-BFGS history of `m` pairs: the
/// minimizer's five vectors, the history's `2 (m + 1)` vectors, its
/// `(m + 1)^2` matrices and its direction's buffers, and the row's share of the packed trial points.
fn row_bytes<T: Real>(n: usize, m: usize, bounded: bool) -> Option<usize> {
    let slots = m.checked_add(1)?;
    // With bounds: the box and L-BFGS-B's five work vectors, and the
    // variable states and breakpoints (about 3 more vectors).
    let extra = if bounded { 10 } else { 0 };
    let vectors = slots.checked_mul(2)?.checked_add(6 + extra)?;
    let data = vectors
        .checked_mul(n)?
        .checked_mul(std::mem::size_of::<T>())?;
    // The matrices, three small vectors, and the direction's buffers
    // (about 12 words per slot).
    let small = slots
        .checked_mul(slots)?
        .checked_mul(2)?
        .checked_add(slots.checked_mul(15)?)?
        .checked_mul(8)?;
    data.checked_add(small)?
        .checked_add(std::mem::size_of::<Minimizer<T>>())
}

impl<T: Real> Many<T> {
    /// `x0.len() / n` runs, row `i` from `x0[i n .. (i + 1) n]`, with L-BFGS
    /// (`opts.method` must be [`Method::Lbfgs`]). Every history is
    /// allocated here: a size that does not fit is
    /// [`Error::OutOfMemory`], before anything is allocated. `bounds`
    /// (`lower`, `upper` of length `n`, checked by the caller for NaN and
    /// `lower <= upper`) make every row an L-BFGS-B run in that box.
    pub fn new(x0: &[T], n: usize, opts: Options, bounds: Option<(&[T], &[T])>) -> Result<Self> {
        opts.validate()?;
        let Method::Lbfgs { m } = opts.method else {
            return Err(Error::InvalidChoice {
                name: "method".into(),
                value: format!("{:?}", opts.method),
                expected: "L-BFGS (minimize_many asks for no Newton step)",
            });
        };
        if n == 0 {
            return Err(Error::Shape(
                "x0: the rows need at least one element (n >= 1)".into(),
            ));
        }
        if !x0.len().is_multiple_of(n) {
            return Err(Error::Shape(format!(
                "x0: {} elements are not rows of n = {n}",
                x0.len()
            )));
        }
        let k = x0.len() / n;
        const WHAT: &str = "the L-BFGS histories of minimize_many";
        if let Some((lo, hi)) = bounds {
            if lo.len() != n || hi.len() != n {
                return Err(Error::LengthMismatch {
                    what: "bounds".into(),
                    expected: n,
                    got: lo.len().max(hi.len()),
                });
            }
        }
        let bytes = row_bytes::<T>(n, m, bounds.is_some())
            .and_then(|b| b.checked_mul(k))
            .ok_or_else(|| crate::alloc::oom::<u8>(WHAT, usize::MAX))?;
        crate::alloc::check_fits(bytes, WHAT)?;
        let mut rows = crate::alloc::with_capacity(k, WHAT)?;
        for row in x0.chunks_exact(n) {
            rows.push(new_row(row, opts, bounds)?);
        }
        let trials = alloc_zeroed(x0.len(), "the trial points")?;
        let active = crate::alloc::collect(0..k, "the active rows")?;
        let row_work = n.saturating_mul(m.saturating_mul(4).saturating_add(4));
        Ok(Many {
            n,
            row_work,
            rows,
            active,
            trials,
            state: State::Advance,
        })
    }

    /// The number of rows.
    pub fn k(&self) -> usize {
        self.rows.len()
    }

    /// The length of a row.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Row `i`'s minimizer: its iterate, `f`, counts, status and message.
    pub fn row(&self, i: usize) -> Option<&Minimizer<T>> {
        self.rows.get(i)
    }

    /// The rows that the last round asked to evaluate, ascending (before
    /// the first round: every row).
    pub fn active(&self) -> &[usize] {
        &self.active
    }

    /// The trial points of [`Many::active`], packed `(len(active), n)`
    /// row-major, after [`Many::next_round`].
    pub fn trials(&self) -> &[T] {
        &self.trials[..self.active.len() * self.n]
    }

    /// Whether every row has finished.
    pub fn is_done(&self) -> bool {
        self.state == State::Advance && self.active.is_empty()
    }

    fn check(&self, want: State, call: &str) -> Result<()> {
        match self.state {
            s if s == want => Ok(()),
            State::Broken => Err(protocol(&format!(
                "{call} after a failed round (the rows are inconsistent)"
            ))),
            State::Advance => Err(protocol(&format!("{call} without a round to answer"))),
            State::Awaiting => Err(protocol(&format!("{call} before tell()"))),
        }
    }

    /// Advances every running row until it asks for an evaluation or
    /// finishes; returns the rows to evaluate (ascending), whose trial
    /// points [`Many::trials`] then holds. Empty once every row is done.
    pub fn next_round(&mut self) -> Result<&[usize]> {
        self.check(State::Advance, "next_round()")?;
        if self.active.is_empty() {
            return Ok(&self.active);
        }
        self.state = State::Broken;
        self.advance()?;
        self.pack()?;
        self.state = if self.active.is_empty() {
            State::Advance
        } else {
            State::Awaiting
        };
        Ok(&self.active)
    }

    /// One round over the running rows, then the new list of active rows.
    fn advance(&mut self) -> Result<()> {
        let mut asks = crate::alloc::filled(self.active.len(), false, "the active rows")?;
        let mut running = select_mut(&mut self.rows, &self.active)?;
        let work = Advance {
            rows: &mut running,
            asks: &mut asks,
        };
        parallel::try_for_each_task(work, self.row_work, |w| {
            for (row, ask) in w.rows.iter_mut().zip(w.asks.iter_mut()) {
                *ask = advance_row(row)?;
            }
            Ok(())
        })?;
        // `retain` visits the rows in order, once each.
        let mut asks = asks.iter();
        self.active.retain(|_| asks.next() == Some(&true));
        Ok(())
    }

    /// Copies the active rows' trial points into the packed buffer.
    fn pack(&mut self) -> Result<()> {
        let n = self.n;
        let rows = select(&self.rows, &self.active)?;
        let out = &mut self.trials[..self.active.len() * n];
        parallel::for_each_task(
            Pack {
                rows: &rows,
                out,
                n,
            },
            n,
            |w| {
                for (row, dst) in w.rows.iter().zip(w.out.chunks_exact_mut(n)) {
                    dst.copy_from_slice(row.x_trial());
                }
            },
        )
    }

    /// Answers a round: `f[j]` and `g[j n .. (j + 1) n]` are the value and
    /// the gradient at the trial point of row `active()[j]`.
    pub fn tell(&mut self, f: &[f64], g: &[T]) -> Result<()> {
        self.check(State::Awaiting, "tell()")?;
        let a = self.active.len();
        if f.len() != a {
            return Err(Error::LengthMismatch {
                what: "minimize_many: f (one value per active row)".into(),
                expected: a,
                got: f.len(),
            });
        }
        if g.len() != a * self.n {
            return Err(Error::LengthMismatch {
                what: "minimize_many: the gradients (len(active) x n)".into(),
                expected: a * self.n,
                got: g.len(),
            });
        }
        self.state = State::Broken;
        let n = self.n;
        let mut rows = select_mut(&mut self.rows, &self.active)?;
        let work = Tell {
            rows: &mut rows,
            f,
            g,
            n,
        };
        parallel::try_for_each_task(work, n, |w| {
            for ((row, &fj), gj) in w.rows.iter_mut().zip(w.f).zip(w.g.chunks_exact(n)) {
                row.tell(fj, gj)?;
            }
            Ok(())
        })?;
        self.state = State::Advance;
        Ok(())
    }

    /// Every row's outcome, once all are done.
    pub fn results(&self) -> Result<Results<T>> {
        if !self.is_done() {
            return Err(protocol("results() before every row is done"));
        }
        let (k, n) = (self.k(), self.n);
        let mut x = crate::alloc::filled(k * n, T::ZERO, "the solutions")?;
        let all: Vec<&Minimizer<T>> = crate::alloc::collect(self.rows.iter(), "the rows")?;
        parallel::for_each_task(
            Pack {
                rows: &all,
                out: &mut x,
                n,
            },
            n,
            |w| {
                for (row, dst) in w.rows.iter().zip(w.out.chunks_exact_mut(n)) {
                    dst.copy_from_slice(row.x());
                }
            },
        )?;
        let mut status = crate::alloc::with_capacity(k, "the statuses")?;
        for row in &self.rows {
            status.push(
                row.status()
                    .ok_or_else(|| protocol("a finished row without a status"))?,
            );
        }
        Ok(Results {
            x,
            f: crate::alloc::collect(self.rows.iter().map(|r| r.f()), "the values")?,
            nit: crate::alloc::collect(self.rows.iter().map(|r| r.nit()), "the counts")?,
            nfev: crate::alloc::collect(self.rows.iter().map(|r| r.nfev()), "the counts")?,
            status,
            message: crate::alloc::collect(
                self.rows.iter().map(|r| r.message().to_string()),
                "the messages",
            )?,
        })
    }
}

/// Runs one row until it needs the caller: `true` for an evaluation,
/// `false` when it is done.
fn advance_row<T: Real>(row: &mut Minimizer<T>) -> Result<bool> {
    loop {
        match row.next()? {
            Request::Evaluate => return Ok(true),
            Request::Iterate => {}
            Request::Done => return Ok(false),
            Request::Direction => return Err(protocol("a row asked for a Newton direction")),
        }
    }
}

/// The rows at the ascending indices `which`, mutably.
fn select_mut<'a, T: Real>(
    rows: &'a mut [Minimizer<T>],
    which: &[usize],
) -> Result<Vec<&'a mut Minimizer<T>>> {
    let mut out = crate::alloc::with_capacity(which.len(), "the active rows")?;
    let mut next = which.iter().peekable();
    for (i, row) in rows.iter_mut().enumerate() {
        if next.peek() == Some(&&i) {
            next.next();
            out.push(row);
        }
    }
    Ok(out)
}

/// The rows at the ascending indices `which`.
fn select<'a, T: Real>(rows: &'a [Minimizer<T>], which: &[usize]) -> Result<Vec<&'a Minimizer<T>>> {
    crate::alloc::collect(which.iter().map(|&i| &rows[i]), "the active rows")
}

/// Running rows and where each says whether it asks for an evaluation.
struct Advance<'a, 'r, T: Real> {
    rows: &'a mut [&'r mut Minimizer<T>],
    asks: &'a mut [bool],
}

impl<T: Real> Split for Advance<'_, '_, T> {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let (r0, r1) = self.rows.split_at_mut(mid);
        let (a0, a1) = split_mut(self.asks, mid);
        (
            Advance { rows: r0, asks: a0 },
            Advance { rows: r1, asks: a1 },
        )
    }
}

/// Active rows and their values and packed gradients.
struct Tell<'a, 'r, T: Real> {
    rows: &'a mut [&'r mut Minimizer<T>],
    f: &'a [f64],
    g: &'a [T],
    n: usize,
}

impl<T: Real> Split for Tell<'_, '_, T> {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let n = self.n;
        let (r0, r1) = self.rows.split_at_mut(mid);
        let (f0, f1) = split_ref(self.f, mid);
        let (g0, g1) = split_ref(self.g, mid * n);
        (
            Tell {
                rows: r0,
                f: f0,
                g: g0,
                n,
            },
            Tell {
                rows: r1,
                f: f1,
                g: g1,
                n,
            },
        )
    }
}

/// Rows and the packed `(rows, n)` buffer their vectors are copied to.
struct Pack<'a, 'r, T: Real> {
    rows: &'a [&'r Minimizer<T>],
    out: &'a mut [T],
    n: usize,
}

impl<T: Real> Split for Pack<'_, '_, T> {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let n = self.n;
        let (r0, r1) = self.rows.split_at(mid);
        let (o0, o1) = split_mut(self.out, mid * n);
        (
            Pack {
                rows: r0,
                out: o0,
                n,
            },
            Pack {
                rows: r1,
                out: o1,
                n,
            },
        )
    }
}

fn protocol(what: &str) -> Error {
    Error::Protocol(format!("Many: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::{set_num_threads, INLINE_MAX};

    /// Row `i`'s objective: extended Rosenbrock with the coupling
    /// `c = 10 + 15 (i % 7)`, so that rows take different numbers of
    /// iterations. `evals` is the row's evaluation count so far (from 1):
    /// row 3 is NaN everywhere, row 5 from its 7th evaluation on.
    fn objective<T: Real>(i: usize, evals: u64, x: &[T], g: &mut [T]) -> f64 {
        if i == 3 || (i == 5 && evals > 6) {
            g.iter_mut().for_each(|v| *v = T::from_f64(f64::NAN));
            return f64::NAN;
        }
        let c = 10.0 + 15.0 * (i % 7) as f64;
        let mut f = 0.0;
        for p in (0..x.len()).step_by(2) {
            let (a, b) = (x[p].to_f64(), x[p + 1].to_f64());
            let (t1, t2) = (b - a * a, 1.0 - a);
            f += c * t1 * t1 + t2 * t2;
            g[p] = T::from_f64(-4.0 * c * a * t1 - 2.0 * t2);
            g[p + 1] = T::from_f64(2.0 * c * t1);
        }
        f
    }

    fn start<T: Real>(k: usize, n: usize) -> Vec<T> {
        let mut x0 = Vec::with_capacity(k * n);
        for i in 0..k {
            for p in 0..n / 2 {
                x0.push(T::from_f64(-1.2 + 0.05 * ((i + p) % 5) as f64));
                x0.push(T::from_f64(1.0 + 0.1 * (i % 3) as f64));
            }
        }
        x0
    }

    /// What a run of one row leaves: every trial point (the iterates are
    /// among them), then the outcome.
    #[derive(Debug, PartialEq)]
    struct Run<T> {
        trials: Vec<Vec<T>>,
        x: Vec<T>,
        f: u64,
        nit: u64,
        nfev: u64,
        status: Status,
        message: String,
    }

    fn alone<T: Real>(i: usize, x0: &[T], opts: Options) -> Run<T> {
        let mut m = Minimizer::new(x0, opts).unwrap();
        let mut g = vec![T::ZERO; x0.len()];
        let mut trials = Vec::new();
        loop {
            match m.next().unwrap() {
                Request::Evaluate => {
                    trials.push(m.x_trial().to_vec());
                    let f = objective(i, trials.len() as u64, m.x_trial(), &mut g);
                    m.tell(f, &g).unwrap();
                }
                Request::Iterate => {}
                Request::Direction => unreachable!(),
                Request::Done => break,
            }
        }
        Run {
            trials,
            x: m.x().to_vec(),
            f: m.f().to_bits(),
            nit: m.nit(),
            nfev: m.nfev(),
            status: m.status().unwrap(),
            message: m.message().to_string(),
        }
    }

    /// Every row's run through [`Many`], and the number of rounds.
    fn together<T: Real>(x0: &[T], n: usize, opts: Options) -> (Vec<Run<T>>, usize) {
        let mut many = Many::new(x0, n, opts, None).unwrap();
        let k = many.k();
        let mut trials: Vec<Vec<Vec<T>>> = vec![Vec::new(); k];
        let mut rounds = 0;
        loop {
            let active = many.next_round().unwrap().to_vec();
            if active.is_empty() {
                break;
            }
            rounds += 1;
            assert!(active.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(many.trials().len(), active.len() * n);
            let mut f = vec![0.0; active.len()];
            let mut g = vec![T::ZERO; active.len() * n];
            for (j, &i) in active.iter().enumerate() {
                let x = &many.trials()[j * n..(j + 1) * n];
                trials[i].push(x.to_vec());
                let evals = trials[i].len() as u64;
                f[j] = objective(i, evals, x, &mut g[j * n..(j + 1) * n]);
            }
            many.tell(&f, &g).unwrap();
        }
        assert!(many.is_done());
        let res = many.results().unwrap();
        let runs = trials
            .into_iter()
            .enumerate()
            .map(|(i, trials)| Run {
                trials,
                x: res.x[i * n..(i + 1) * n].to_vec(),
                f: res.f[i].to_bits(),
                nit: res.nit[i],
                nfev: res.nfev[i],
                status: res.status[i],
                message: res.message[i].clone(),
            })
            .collect();
        (runs, rounds)
    }

    fn check_rows<T: Real>(k: usize, n: usize, opts: Options, threads: &[usize]) -> Vec<Run<T>> {
        let x0 = start::<T>(k, n);
        let want: Vec<Run<T>> = (0..k)
            .map(|i| alone(i, &x0[i * n..(i + 1) * n], opts))
            .collect();
        for &t in threads {
            set_num_threads(t).unwrap();
            let (got, rounds) = together(&x0, n, opts);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g, w, "row {i}, {t} threads");
            }
            let most = want.iter().map(|r| r.nfev).max().unwrap();
            assert_eq!(rounds as u64, most, "a row evaluated once per round");
        }
        want
    }

    #[test]
    fn rows_are_the_runs_of_minimize_alone_for_any_thread_count() {
        // 37 rows run inline; 300 rows of 8 go to the pool in pieces.
        for (k, n) in [(37, 6), (300, 8)] {
            let want = check_rows::<f64>(k, n, Options::default(), &[1, 2, 3]);
            let nits: std::collections::BTreeSet<u64> = want.iter().map(|r| r.nit).collect();
            assert!(
                nits.len() > 3,
                "rows should finish at different rounds: {nits:?}"
            );
            assert!(want
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != 3 && i != 5)
                .all(|(_, r)| r.status == Status::Converged));
        }
    }

    #[test]
    fn a_row_with_a_nan_objective_fails_alone() {
        let want = check_rows::<f64>(12, 4, Options::default(), &[1, 2]);
        assert_eq!(want[3].status, Status::LineSearchFailed);
        assert_eq!(want[3].nfev, 1);
        assert!(
            want[3].message.contains("not finite at x0"),
            "{}",
            want[3].message
        );
        assert_eq!(want[5].status, Status::LineSearchFailed);
        assert!(want[5].nfev > 6);
        for i in [0, 1, 2, 4, 6, 7] {
            assert_eq!(want[i].status, Status::Converged, "row {i}");
        }
    }

    #[test]
    fn f32_rows_and_limits() {
        check_rows::<f32>(40, 6, Options::default(), &[1, 2]);
        let opts = Options {
            max_iter: 3,
            ..Options::default()
        };
        let want = check_rows::<f64>(20, 6, opts, &[1, 2]);
        assert!(want
            .iter()
            .enumerate()
            .all(|(i, r)| i == 3 || (r.status == Status::Limit && r.nit == 3)));
        let opts = Options {
            max_fun: 5,
            method: Method::Lbfgs { m: 3 },
            ..Options::default()
        };
        check_rows::<f64>(20, 6, opts, &[2]);
    }

    #[test]
    fn long_rows_run_their_passes_in_the_pool_from_a_pool_task() {
        // Each row is a task of its own and its passes (> INLINE_MAX
        // elements) start parallel jobs from inside it.
        let n = 2 * INLINE_MAX + 10;
        let opts = Options {
            max_iter: 4,
            ..Options::default()
        };
        check_rows::<f64>(3, n, opts, &[1, 2, 3]);
    }

    #[test]
    fn histories_that_do_not_fit_are_an_error() {
        for m in [1 << 40, usize::MAX / 2] {
            let opts = Options {
                method: Method::Lbfgs { m },
                ..Options::default()
            };
            let err = Many::new(&[0.0f64; 4], 2, opts, None).err();
            assert!(matches!(err, Some(Error::OutOfMemory { .. })), "{err:?}");
        }
    }

    #[test]
    fn calls_out_of_order_and_bad_lengths_are_errors() {
        let newton = Options {
            method: Method::Newton,
            ..Options::default()
        };
        assert!(matches!(
            Many::new(&[0.0f64; 4], 2, newton, None),
            Err(Error::InvalidChoice { .. })
        ));
        assert!(matches!(
            Many::new(&[0.0f64; 5], 2, Options::default(), None),
            Err(Error::Shape(_))
        ));
        assert!(Many::new(&[0.0f64; 4], 0, Options::default(), None).is_err());
        let mut many = Many::new(&start::<f64>(3, 4), 4, Options::default(), None).unwrap();
        assert!(matches!(many.tell(&[], &[]), Err(Error::Protocol(_))));
        assert!(matches!(many.results(), Err(Error::Protocol(_))));
        assert_eq!(many.next_round().unwrap(), &[0, 1, 2]);
        assert!(matches!(many.next_round(), Err(Error::Protocol(_))));
        assert!(matches!(
            many.tell(&[1.0; 2], &[0.0; 12]),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            many.tell(&[1.0; 3], &[0.0; 11]),
            Err(Error::LengthMismatch { .. })
        ));
        // A rejected tell changes nothing: the right one is still taken.
        many.tell(&[0.0; 3], &[0.0; 12]).unwrap();
        assert!(many.next_round().unwrap().is_empty());
        let res = many.results().unwrap();
        assert_eq!(res.status, vec![Status::Converged; 3]);
        // No rows at all: done at once.
        let mut none = Many::<f64>::new(&[], 3, Options::default(), None).unwrap();
        assert!(none.next_round().unwrap().is_empty());
        assert!(none.results().unwrap().x.is_empty());
    }
}

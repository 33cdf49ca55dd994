//! BFGS with a dense inverse Hessian approximation `H` (Nocedal & Wright,
//! Algorithm 6.1):
//!
//! ```text
//! H+ = (I - rho s y') H (I - rho y s') + rho s s'          rho = 1 / y's
//!    = H - rho (s (Hy)' + (Hy) s') + (rho^2 y'Hy + rho) s s'
//! ```
//!
//! with `H0 = I` for the first step and `H0 = (y's / y'y) I` just before the
//! first update (N&W eq. 6.20). The rank-2 update is applied lazily: the
//! update of step `k` is written into `H` during the one pass over `H` of
//! step `k + 1`, which also computes `H y` and `H g` row by row. So every
//! iteration reads and writes the `n x n` matrix once, in parallel over rows
//! (each row whole on one thread: bit-identical for any thread count), and
//! the new direction `-H+ g` follows from `H g` and `H y` by the formula
//! above in O(n).

use super::lbfgs::alloc_zeroed;
use super::reduce::{pass, pass_inline, Body, In, Out};
use crate::alloc::physical_memory;
use crate::error::Result;
use crate::parallel;
use crate::simd::{Lanes, Real};

/// The dense inverse Hessian approximation and its pending update.
pub struct Dense<T> {
    n: usize,
    /// `n x n`, row-major; meaningful once `identity` is false.
    h: Vec<T>,
    /// `H` is the identity (no update yet, or after a restart).
    identity: bool,
    /// The update not yet written into `h`: `s` and `H y` of that step.
    pending: Option<(f64, f64)>,
    s_p: Vec<T>,
    hy_p: Vec<T>,
    /// The new pair, filled by the caller (see [`Dense::scratch_mut`]).
    s: Vec<T>,
    y: Vec<T>,
    hy: Vec<T>,
    hg: Vec<T>,
}

/// One row of `H`: apply the pending update (when `UPDATE`), then return
/// `row . y` and `row . g`.
struct Row<T, const UPDATE: bool> {
    row: Out<T>,
    s: In<T>,
    hy: In<T>,
    a: T,
    b: T,
    y: In<T>,
    g: In<T>,
}

impl<T: Real, const UPDATE: bool> Body<T, 2> for Row<T, UPDATE> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, j: usize) -> ([L; 2], L) {
        let mut w = self.row.get::<L>(j);
        if UPDATE {
            w = w
                .add(L::splat(self.a).mul(self.s.get::<L>(j)))
                .add(L::splat(self.b).mul(self.hy.get::<L>(j)));
            self.row.set(j, w);
        }
        ([w.mul(self.y.get::<L>(j)), w.mul(self.g.get::<L>(j))], w)
    }
}

/// `y'Hy`, `(Hy)'g`, `s'g`.
struct Dots3<T> {
    y: In<T>,
    hy: In<T>,
    s: In<T>,
    g: In<T>,
}

impl<T: Real> Body<T, 3> for Dots3<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 3], L) {
        let hy = self.hy.get::<L>(i);
        let g = self.g.get::<L>(i);
        (
            [
                self.y.get::<L>(i).mul(hy),
                hy.mul(g),
                self.s.get::<L>(i).mul(g),
            ],
            g,
        )
    }
}

/// `d = -(hg + a s + b hy)`, returning `g . d`.
struct Direction<T> {
    d: Out<T>,
    hg: In<T>,
    s: In<T>,
    hy: In<T>,
    g: In<T>,
    a: T,
    b: T,
}

impl<T: Real> Body<T, 1> for Direction<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 1], L) {
        let d = self
            .hg
            .get::<L>(i)
            .add(L::splat(self.a).mul(self.s.get::<L>(i)))
            .add(L::splat(self.b).mul(self.hy.get::<L>(i)))
            .neg();
        self.d.set(i, d);
        ([self.g.get::<L>(i).mul(d)], d)
    }
}

impl<T: Real> Dense<T> {
    /// Allocates the `n x n` matrix up front (an error, not an abort, when
    /// it does not fit).
    pub fn new(n: usize) -> Result<Self> {
        let what = "the dense BFGS inverse Hessian (n x n; use L-BFGS for large n)";
        let nn = n
            .checked_mul(n)
            .ok_or_else(|| super::lbfgs::oom(what, usize::MAX))?;
        // Refuse what cannot fit in RAM rather than let an overcommitting
        // allocator hand out memory that the first update then touches.
        let bytes = nn.saturating_mul(std::mem::size_of::<T>());
        if physical_memory().is_some_and(|ram| bytes > ram) {
            return Err(super::lbfgs::oom(what, bytes));
        }
        Ok(Dense {
            n,
            h: alloc_zeroed(nn, what)?,
            identity: true,
            pending: None,
            s_p: alloc_zeroed(n, "BFGS work vectors")?,
            hy_p: alloc_zeroed(n, "BFGS work vectors")?,
            s: alloc_zeroed(n, "BFGS work vectors")?,
            y: alloc_zeroed(n, "BFGS work vectors")?,
            hy: alloc_zeroed(n, "BFGS work vectors")?,
            hg: alloc_zeroed(n, "BFGS work vectors")?,
        })
    }

    /// Whether `H` is the identity (nothing learned yet).
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// Back to `H = I`.
    pub fn reset(&mut self) {
        self.identity = true;
        self.pending = None;
    }

    /// Buffers for the new pair `(s, y)`, filled by the caller before
    /// [`Dense::update`].
    pub fn scratch_mut(&mut self) -> (&mut [T], &mut [T]) {
        (&mut self.s, &mut self.y)
    }

    /// One pass over `H`: writes the pending update and computes `H y`
    /// (into `hy`) and `H g` (into `hg`), with `H` the matrix after the
    /// pending update (`scale * I` when `H` is the identity).
    fn sweep(&mut self, g: &[T], scale: f64) -> Result<()> {
        let n = self.n;
        if self.identity {
            let c = T::from_f64(scale);
            for ((hy, hg), (&y, &g)) in self
                .hy
                .iter_mut()
                .zip(&mut self.hg)
                .zip(self.y.iter().zip(g))
            {
                *hy = c.mul(y);
                *hg = c.mul(g);
            }
            return Ok(());
        }
        let (s, hy_p) = (In(self.s_p.as_ptr()), In(self.hy_p.as_ptr()));
        let (y, gp) = (In(self.y.as_ptr()), In(g.as_ptr()));
        let pending = self.pending.take();
        let (s_p, hy_p_vals) = (&self.s_p, &self.hy_p);
        let dots = parallel::map_rows(&mut self.h, n, |i, row| {
            let row = Out(row.as_mut_ptr());
            match pending {
                Some((rho, c)) => {
                    let si = s_p[i].to_f64();
                    let hyi = hy_p_vals[i].to_f64();
                    let body = Row::<T, true> {
                        row,
                        s,
                        hy: hy_p,
                        a: T::from_f64(c * si - rho * hyi),
                        b: T::from_f64(-rho * si),
                        y,
                        g: gp,
                    };
                    pass_inline(n, &body).sum
                }
                None => {
                    let body = Row::<T, false> {
                        row,
                        s,
                        hy: hy_p,
                        a: T::ZERO,
                        b: T::ZERO,
                        y,
                        g: gp,
                    };
                    pass_inline(n, &body).sum
                }
            }
        })?;
        for (i, [hy, hg]) in dots.into_iter().enumerate() {
            self.hy[i] = T::from_f64(hy);
            self.hg[i] = T::from_f64(hg);
        }
        Ok(())
    }

    /// Writes `H = scale * I` into the matrix.
    fn materialize_identity(&mut self, scale: f64) -> Result<()> {
        let c = T::from_f64(scale);
        parallel::map_rows(&mut self.h, self.n, |i, row| {
            row.fill(T::ZERO);
            row[i] = c;
        })?;
        self.identity = false;
        Ok(())
    }

    /// Ends a step: with `accept`, queues the update by the pair in the
    /// scratch buffers (`s'y = sy`, `y'y = yy`); then writes the next
    /// direction `d = -H g` (with `H` the updated matrix) and returns `g'd`.
    pub fn update(&mut self, accept: bool, sy: f64, yy: f64, g: &[T], d: &mut [T]) -> Result<f64> {
        if !accept {
            if self.identity {
                return neg_copy(g, d);
            }
            self.sweep(g, 1.0)?;
            return neg_copy(&self.hg, d).and_then(|_| super::reduce::dot(g, d));
        }
        let scale = if self.identity { sy / yy } else { 1.0 };
        self.sweep(g, scale)?;
        if self.identity {
            self.materialize_identity(scale)?;
        }
        let body = Dots3 {
            y: In(self.y.as_ptr()),
            hy: In(self.hy.as_ptr()),
            s: In(self.s.as_ptr()),
            g: In(g.as_ptr()),
        };
        let [yhy, hyg, sg] = pass(self.n, &body)?.sum;
        let rho = 1.0 / sy;
        let c = rho * rho * yhy + rho;
        let body = Direction {
            d: Out(d.as_mut_ptr()),
            hg: In(self.hg.as_ptr()),
            s: In(self.s.as_ptr()),
            hy: In(self.hy.as_ptr()),
            g: In(g.as_ptr()),
            a: T::from_f64(-rho * hyg + c * sg),
            b: T::from_f64(-rho * sg),
        };
        let gd = pass(self.n, &body)?.sum[0];
        std::mem::swap(&mut self.s, &mut self.s_p);
        std::mem::swap(&mut self.hy, &mut self.hy_p);
        self.pending = Some((rho, c));
        Ok(gd)
    }

    /// The matrix `H` with every update applied.
    pub fn into_matrix(mut self) -> Result<Vec<T>> {
        if self.identity {
            self.materialize_identity(1.0)?;
        } else if self.pending.is_some() {
            let g = vec![T::ZERO; self.n];
            self.sweep(&g, 1.0)?;
        }
        Ok(self.h)
    }
}

/// `d = -g`; returns `g'd`.
fn neg_copy<T: Real>(g: &[T], d: &mut [T]) -> Result<f64> {
    struct Neg<T> {
        g: In<T>,
        d: Out<T>,
    }
    impl<T: Real> Body<T, 1> for Neg<T> {
        #[inline(always)]
        unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 1], L) {
            let g = self.g.get::<L>(i);
            let d = g.neg();
            self.d.set(i, d);
            ([g.mul(d)], d)
        }
    }
    let body = Neg {
        g: In(g.as_ptr()),
        d: Out(d.as_mut_ptr()),
    };
    Ok(pass(d.len(), &body)?.sum[0])
}

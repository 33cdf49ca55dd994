//! Adafactor, as in the algorithm box and the single-tensor code of
//! `torch.optim.Adafactor`: a factored second moment (one statistic per row
//! and one per column) for params of 2 or more dimensions, a full one for
//! vectors and scalars, and a step scaled by the param's RMS.
//!
//! ```text
//! g = -g                                   if maximize
//! w = t^beta2_decay                        (1 - beta2_t)
//! rho = min(lr, 1 / sqrt(t));  alpha = max(eps2, ||p|| / sqrt(numel)) * rho
//! p = p * (1 - lr * wd)                    if wd != 0 (alpha uses p before)
//! 2+ dims:  R = lerp(R, norm(g, dim=-1)^2 / cols, w)
//!           C = lerp(C, norm(g, dim=-2)^2 / rows, w)
//!           V = (R @ C) / max(mean(R, dim=-2), eps1)
//! 0/1 dims: V = v = lerp(v, g * g, w)
//! U = (1 / sqrt(max(V, eps1^2))) * g
//! p = p + (-alpha / max(1, ||U|| / (sqrt(numel) * d))) * U
//! ```
//!
//! `eps1 = None` is the machine epsilon of the param's dtype. The scalars
//! are computed in f64 with torch's Python expressions (its `max` and `min`
//! too: a NaN norm gives `eps2` / 1) and rounded once; the norms are rounded
//! to the element type first, as torch's `norm().item()`.
//!
//! The step needs whole-tensor reductions before it can write: per tensor,
//! the row and column sums of `g * g` (and `||p||`) before the update
//! exists, and `||U||` before the param is written. So a factored tensor
//! takes three passes (read p, g; read g; read p, g and write p) and a
//! vector two (the second moment and `||U||` in the first), all tensors in
//! one parallel job per pass. The reductions are fixed: a matrix is cut
//! into tiles of whole rows (contiguous memory, so the passes stream) whose
//! count depends only on its shape; a row is summed in pieces of `CHUNK`
//! elements as `reduce`'s passes sum a range (fixed slots, a fixed tree,
//! f64 above the slots), a tile adds its rows into its column partial sums
//! one row after another, and the tiles are combined in order in f64.
//! Results are therefore bit-identical for any thread count and SIMD level;
//! they agree with torch (and NumPy) to rounding, as those sum in other
//! orders. `||U||^2` is summed as `g^2 * min(denom / R * (1 / C), 1 /
//! eps1^2)`, which is each `U^2` to within an ulp or two without the
//! division and square root of the update (the update itself, written in
//! the last pass, is torch's expression).
//!
//! A tensor with no elements is left as it is (torch divides by zero).

use super::rule::{Rule, Slot, Tensor};
use super::Lerp;
use crate::error::{check_non_negative, check_range, Error, Result};
use crate::optimize::reduce::{pass_inline, Body, In, Out};
use crate::parallel::{self, Split};
use crate::simd::{Lanes, Real};

crate::hyperparameters! {
    /// Hyperparameters of Adafactor, with PyTorch's names and defaults.
    pub struct AdafactorHyper {
        pub lr: f64 = 1e-2,
        pub beta2_decay: f64 = -0.8,
        /// `(eps1, eps2)`: `eps1` floors the second moment (None: the
        /// dtype's machine epsilon), `eps2` the param's RMS in alpha.
        pub eps: (Option<f64>, f64) = (None, 1e-3),
        /// The clipping threshold of the update's RMS.
        pub d: f64 = 1.0,
        pub weight_decay: f64 = 0.0,
        pub maximize: bool = false,
    }
}

/// `torch.optim.Adafactor`.
pub struct Adafactor;

const ROW_VAR: usize = 0;
const COL_VAR: usize = 1;
const VARIANCE: usize = 2;

/// Elements per tile of a matrix: a target, within the row bounds below.
const TILE: usize = 1 << 18;
/// Rows per tile at least (so that the column partial sums, one row of
/// them per tile, stay a small fraction of the matrix) and at most (each
/// column partial sum adds at most this many terms in the element type,
/// as `reduce`'s slots add 512).
const TILE_ROWS: (usize, usize) = (16, 512);

impl Rule for Adafactor {
    type Hyper = AdafactorHyper;
    const NAME: &'static str = "adafactor";
    const SLICEABLE: bool = false;
    const SLOTS: &'static [Slot] = &[
        Slot::rows("row_var"),
        Slot::cols("col_var"),
        Slot::param("variance").unsigned(),
    ];

    fn validate(h: &AdafactorHyper) -> Result<()> {
        check_non_negative("lr", h.lr)?;
        check_range(
            "beta2_decay",
            h.beta2_decay,
            f64::MIN,
            0.0,
            false,
            "a finite number <= 0",
        )?;
        if let Some(eps1) = h.eps.0 {
            check_non_negative("eps[0]", eps1)?;
        }
        check_non_negative("eps[1]", h.eps.1)?;
        check_range("d", h.d, 1.0, f64::MAX, false, "a finite number >= 1")?;
        check_non_negative("weight_decay", h.weight_decay)
    }

    /// `row_var` and `col_var` for 2+ dimensions, `variance` below.
    fn uses(_h: &AdafactorHyper, slot: usize, ndim: usize) -> bool {
        (slot == VARIANCE) == (ndim < 2)
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, AdafactorHyper>]) -> Result<()> {
        let mut plans = Vec::with_capacity(tensors.len());
        let mut tiles = Vec::new();
        for t in tensors.iter_mut() {
            if !t.param.is_empty() {
                plans.push(Plan::new(plans.len(), t, &mut tiles)?);
            }
        }
        // Every buffer exists: from here on nothing fails.
        // Pass 1: the sums of p * p; matrices: the row statistics (written)
        // and the column partial sums of g * g; vectors: the second moment
        // (written) and the sum of U * U.
        run_tiles(&plans, &mut tiles, Plan::pass1);
        for plan in &mut plans {
            plan.combine(&tiles);
        }
        // Pass 2 (matrices): the sum of U * U.
        if plans.iter().any(|p| p.factored) {
            run_tiles(&plans, &mut tiles, Plan::pass2);
        }
        for plan in &mut plans {
            plan.finish(&tiles);
        }
        // Pass 3: the param.
        run_tiles(&plans, &mut tiles, Plan::pass3);
        Ok(())
    }
}

/// Python's `max(a, b)` and `min(a, b)`: the first unless the second is
/// strictly larger (smaller), so a NaN second argument is ignored.
fn py_max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

fn py_min(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

/// `sqrt(sum)` rounded to `T`, as torch's `norm()` of a `T` tensor.
fn norm<T: Real>(sum: f64) -> T {
    T::from_f64(sum.sqrt())
}

/// NaN if `x` is NaN, else `max(x, lo)` (torch's `clamp_(min=lo)`).
fn clamp_min<T: Real>(x: T, lo: T) -> T {
    x.maximum(lo)
}

/// A piece of one tensor for a pass: whole rows `row0 .. row0 + rows` of
/// matrix `batch` (a factored tensor; elements `start .. start + len`), or
/// elements `start .. start + len` of a vector.
struct Tile {
    plan: usize,
    batch: usize,
    row0: usize,
    rows: usize,
    start: usize,
    len: usize,
    /// The tile's sums of p * p and U * U, rows in order, in f64.
    p2: f64,
    u2: f64,
}

/// Tiles for a parallel pass, cut between tiles.
struct Tiles<'a> {
    tiles: &'a mut [Tile],
}

impl Split for Tiles<'_> {
    fn len(&self) -> usize {
        self.tiles.len()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let (a, b) = self.tiles.split_at_mut(mid);
        (Tiles { tiles: a }, Tiles { tiles: b })
    }
}

/// Runs `f` over every tile of every tensor as one parallel job; each tile
/// is processed whole, on its own, so the pieces do not change results.
fn run_tiles<T: Real, F>(plans: &[Plan<T>], tiles: &mut [Tile], f: F)
where
    F: Fn(&Plan<T>, &mut Tile) + Sync + Send,
{
    if tiles.is_empty() {
        return;
    }
    let elements: usize = tiles.iter().map(|t| t.len).sum();
    let per_tile = (elements / tiles.len()).max(1);
    let run = |piece: Tiles<'_>| {
        for tile in piece.tiles {
            f(&plans[tile.plan], tile)
        }
    };
    // An error means the pool could not start and nothing ran: a later pass
    // must not stop half way (the earlier ones wrote state), so run inline.
    if parallel::for_each_task(Tiles { tiles: &mut *tiles }, per_tile, run).is_err() {
        run(Tiles { tiles });
    }
}

/// One tensor's geometry, pointers, partial sums and constants.
struct Plan<T> {
    p: Out<T>,
    g: In<T>,
    scale: Option<T>,
    maximize: bool,
    numel: usize,
    /// Factored: `batches` matrices of `rows x cols`; a vector: one row.
    factored: bool,
    batches: usize,
    rows: usize,
    cols: usize,
    /// Rows per tile and tiles down a matrix.
    tile_rows: usize,
    row_blocks: usize,
    /// This tensor's tiles in the job's list.
    tiles: std::ops::Range<usize>,
    /// `row_var`, `col_var` (factored) or `variance` (a vector).
    row_var: Out<T>,
    col_var: Out<T>,
    variance: Out<T>,
    /// Per tile and column: the sum of g * g down the tile's rows
    /// (`batches * row_blocks * cols`, owned by `_col_part`), then, per
    /// batch and column, `1 / col_var` in its first row.
    col_part: Out<T>,
    _col_part: Vec<T>,
    /// One batch's column sums, in f64.
    col_sum: Vec<f64>,
    /// Per batch: `max(mean(row_var), eps1)`, after pass 1.
    denom: Vec<T>,
    lerp: Lerp<T>,
    eps1: T,
    eps1_sq: T,
    /// `1 - lr * wd`, None when wd == 0.
    decay: Option<T>,
    rho: f64,
    eps2: f64,
    d: f64,
    alpha: f64,
    /// `-alpha / max(1, RMS(U) / d)`, after the sum of U * U.
    step: T,
}

/// A zeroed buffer of `n` elements, or `Error::OutOfMemory`.
fn buffer<E: Copy>(n: usize, zero: E, what: &str) -> Result<Vec<E>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
        what: format!("Adafactor {what}"),
        bytes: n.saturating_mul(std::mem::size_of::<E>()),
    })?;
    v.resize(n, zero);
    Ok(v)
}

/// Calls `f(offset, len)` for the pieces of `CHUNK` elements (the last one
/// shorter) of a range of `n`: the ranges `reduce` sums, with at most 512
/// terms per f32 slot.
#[inline(always)]
fn pieces(n: usize, mut f: impl FnMut(usize, usize)) {
    let mut at = 0;
    while at < n {
        let len = (n - at).min(parallel::CHUNK);
        f(at, len);
        at += len;
    }
}

impl<T: Real> Plan<T> {
    /// The plan of tensor `t` (plan number `index`), its tiles appended to
    /// `tiles`. Allocates every buffer of its step; writes nothing.
    fn new(
        index: usize,
        t: &mut Tensor<'_, T, AdafactorHyper>,
        tiles: &mut Vec<Tile>,
    ) -> Result<Self> {
        let h = t.hyper;
        let numel = t.param.len();
        let ndim = t.shape.len();
        let factored = ndim >= 2;
        let (batches, rows, cols) = if factored {
            let batches = t.shape[..ndim - 2].iter().product();
            (batches, t.shape[ndim - 2], t.shape[ndim - 1])
        } else {
            (1, 1, numel)
        };
        let (lo, hi) = TILE_ROWS;
        let tile_rows = (TILE / cols).clamp(lo, hi).min(rows);
        let row_blocks = rows.div_ceil(tile_rows);
        let (col_part, col_sum) = if factored {
            (
                buffer(batches * row_blocks * cols, T::ZERO, "column sums")?,
                buffer(cols, 0.0, "column sums")?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let count = if factored {
            batches * row_blocks
        } else {
            numel.div_ceil(parallel::CHUNK)
        };
        tiles.try_reserve(count).map_err(|_| Error::OutOfMemory {
            what: "Adafactor tiles".into(),
            bytes: count.saturating_mul(std::mem::size_of::<Tile>()),
        })?;
        let first = tiles.len();
        let tile = |batch, row0, rows, start, len| Tile {
            plan: index,
            batch,
            row0,
            rows,
            start,
            len,
            p2: 0.0,
            u2: 0.0,
        };
        if factored {
            for batch in 0..batches {
                for rb in 0..row_blocks {
                    let row0 = rb * tile_rows;
                    let n = tile_rows.min(rows - row0);
                    let start = (batch * rows + row0) * cols;
                    tiles.push(tile(batch, row0, n, start, n * cols));
                }
            }
        } else {
            pieces(numel, |start, len| tiles.push(tile(0, 0, 1, start, len)));
        }
        let step = t.step as f64;
        let eps1 = h.eps.0.unwrap_or(if std::mem::size_of::<T>() == 4 {
            f32::EPSILON as f64
        } else {
            f64::EPSILON
        });
        let decay = (h.weight_decay != 0.0).then(|| T::from_f64(1.0 - h.lr * h.weight_decay));
        let mut col_part = col_part;
        Ok(Plan {
            p: Out(t.param.as_mut_ptr()),
            g: In(t.grad.as_ptr()),
            scale: t.grad_scale,
            maximize: h.maximize,
            numel,
            factored,
            batches,
            rows,
            cols,
            tile_rows,
            row_blocks,
            tiles: first..tiles.len(),
            row_var: Out(t.slots[ROW_VAR].as_mut_ptr()),
            col_var: Out(t.slots[COL_VAR].as_mut_ptr()),
            variance: Out(t.slots[VARIANCE].as_mut_ptr()),
            col_part: Out(col_part.as_mut_ptr()),
            _col_part: col_part,
            col_sum,
            denom: Vec::new(),
            lerp: Lerp::new(step.powf(h.beta2_decay)),
            eps1: T::from_f64(eps1),
            eps1_sq: T::from_f64(eps1 * eps1),
            decay,
            rho: py_min(h.lr, 1.0 / step.powf(0.5)),
            eps2: h.eps.1,
            d: h.d,
            alpha: 0.0,
            step: T::ZERO,
        })
    }

    // SAFETY (the passes): every pointer is the tensor's (or its own
    // buffer's), every range within it; concurrent tiles write disjoint
    // ranges (their own rows, row statistics, column partial sums and
    // second-moment elements).

    fn pass1(&self, tile: &mut Tile) {
        unsafe {
            if !self.factored {
                let body = VectorBody {
                    p: In(self.p.0.add(tile.start)),
                    g: In(self.g.0.add(tile.start)),
                    v: Out(self.variance.0.add(tile.start)),
                    scale: self.scale,
                    lerp: self.lerp,
                    eps1_sq: self.eps1_sq,
                };
                let s = pass_inline(tile.len, &body);
                tile.u2 = s.sum[0];
                tile.p2 = s.sum[1];
                return;
            }
            let cols = self.cols;
            let rb = tile.row0 / self.tile_rows;
            let col = self
                .col_part
                .0
                .add((tile.batch * self.row_blocks + rb) * cols);
            let m = T::from_f64(cols as f64);
            let mut p2 = 0.0;
            for r in 0..tile.rows {
                let row = tile.start + r * cols;
                let mut sum = 0.0;
                pieces(cols, |at, len| {
                    let body = SumsBody {
                        p: In(self.p.0.add(row + at)),
                        g: In(self.g.0.add(row + at)),
                        col: Out(col.add(at)),
                        scale: self.scale,
                    };
                    let s = pass_inline(len, &body);
                    sum += s.sum[0];
                    p2 += s.sum[1];
                });
                // torch: `norm(g, dim=-1).square_().div_(cols)`, then lerp.
                let norm = norm::<T>(sum);
                let at = self.row_var.0.add(tile.batch * self.rows + tile.row0 + r);
                *at = self.lerp.apply::<T>(*at, norm.mul(norm).div(m));
            }
            tile.p2 = p2;
        }
    }

    /// After pass 1: alpha; for a factored tensor the new column statistics
    /// (and their inverses), the divisors `max(mean(row_var), eps1)`.
    fn combine(&mut self, tiles: &[Tile]) {
        let p2: f64 = tiles[self.tiles.clone()].iter().map(|t| t.p2).sum();
        let rms = norm::<T>(p2).to_f64() / (self.numel as f64).powf(0.5);
        self.alpha = py_max(self.eps2, rms) * self.rho;
        if !self.factored {
            return;
        }
        let (rows, cols) = (self.rows, self.cols);
        let n = T::from_f64(rows as f64);
        self.denom = Vec::with_capacity(self.batches);
        // SAFETY: `row_var` has `batches * rows` elements, `col_var`
        // `batches * cols`, the partial sums as laid out in `new`; no pass
        // is running.
        unsafe {
            for b in 0..self.batches {
                let mut sum = 0.0;
                for i in 0..rows {
                    sum += (*self.row_var.0.add(b * rows + i)).to_f64();
                }
                let mean = T::from_f64(sum / rows as f64);
                self.denom.push(clamp_min(mean, self.eps1));
                // The tiles' partial sums in tile order, read row by row.
                let part = self.col_part.0.add(b * self.row_blocks * cols);
                let sums = &mut self.col_sum[..];
                for (j, s) in sums.iter_mut().enumerate() {
                    *s = (*part.add(j)).to_f64();
                }
                for rb in 1..self.row_blocks {
                    for (j, s) in sums.iter_mut().enumerate() {
                        *s += (*part.add(rb * cols + j)).to_f64();
                    }
                }
                for (j, &sum) in sums.iter().enumerate() {
                    let norm = norm::<T>(sum);
                    let at = self.col_var.0.add(b * cols + j);
                    *at = self.lerp.apply::<T>(*at, norm.mul(norm).div(n));
                    // For pass 2, in this batch's first row of partial sums.
                    *part.add(j) = T::ONE.div(*at);
                }
            }
        }
    }

    fn pass2(&self, tile: &mut Tile) {
        if !self.factored {
            return;
        }
        let cols = self.cols;
        let denom = self.denom[tile.batch];
        let mut u2 = 0.0;
        unsafe {
            let inv_col = self.col_part.0.add(tile.batch * self.row_blocks * cols);
            for r in 0..tile.rows {
                let row = tile.start + r * cols;
                let row_var = *self.row_var.0.add(tile.batch * self.rows + tile.row0 + r);
                pieces(cols, |at, len| {
                    let body = NormBody {
                        g: In(self.g.0.add(row + at)),
                        inv_col: In(inv_col.add(at)),
                        inv_row: denom.div(row_var),
                        cap: T::ONE.div(self.eps1_sq),
                        scale: self.scale,
                    };
                    u2 += pass_inline(len, &body).sum[0];
                });
            }
        }
        tile.u2 = u2;
    }

    /// After the sum of U * U: the step `-alpha / max(1, RMS(U) / d)`.
    fn finish(&mut self, tiles: &[Tile]) {
        let u2: f64 = tiles[self.tiles.clone()].iter().map(|t| t.u2).sum();
        let rms = norm::<T>(u2).to_f64() / ((self.numel as f64).powf(0.5) * self.d);
        self.step = T::from_f64(-self.alpha / py_max(1.0, rms));
    }

    fn pass3(&self, tile: &mut Tile) {
        let c = WriteConsts {
            scale: self.scale,
            maximize: self.maximize,
            eps1_sq: self.eps1_sq,
            decay: self.decay,
            step: self.step,
        };
        unsafe {
            if !self.factored {
                let body = WriteVector {
                    p: Out(self.p.0.add(tile.start)),
                    g: In(self.g.0.add(tile.start)),
                    v: In(self.variance.0.add(tile.start)),
                    c,
                };
                pass_inline(tile.len, &body);
                return;
            }
            let cols = self.cols;
            let col_var = self.col_var.0.add(tile.batch * cols);
            for r in 0..tile.rows {
                let row = tile.start + r * cols;
                let row_var = *self.row_var.0.add(tile.batch * self.rows + tile.row0 + r);
                pieces(cols, |at, len| {
                    let body = WriteFactored {
                        p: Out(self.p.0.add(row + at)),
                        g: In(self.g.0.add(row + at)),
                        col: In(col_var.add(at)),
                        row: row_var,
                        denom: self.denom[tile.batch],
                        c,
                    };
                    pass_inline(len, &body);
                });
            }
        }
    }
}

/// The constants of the param's write.
#[derive(Clone, Copy)]
struct WriteConsts<T> {
    scale: Option<T>,
    maximize: bool,
    eps1_sq: T,
    decay: Option<T>,
    step: T,
}

impl<T: Real> WriteConsts<T> {
    /// `p = p * (1 - lr * wd)`, then `p = p + step * U`.
    #[inline(always)]
    unsafe fn write<L: Lanes<T>>(&self, p: Out<T>, i: usize, u: L) {
        let mut x = p.get::<L>(i);
        if let Some(f) = self.decay {
            x = x.mul(L::splat(f));
        }
        p.set(i, x.add(L::splat(self.step).mul(u)));
    }
}

/// Pass 3 over a vector's range.
struct WriteVector<T> {
    p: Out<T>,
    g: In<T>,
    v: In<T>,
    c: WriteConsts<T>,
}

impl<T: Real> Body<T, 0> for WriteVector<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 0], L) {
        let g = grad::<T, L>(self.g, i, self.c.scale, self.c.maximize);
        let u = rsqrt_floor(self.v.get::<L>(i), self.c.eps1_sq).mul(g);
        self.c.write(self.p, i, u);
        ([], u)
    }
}

/// Pass 3 over a row segment of a factored tensor.
struct WriteFactored<T> {
    p: Out<T>,
    g: In<T>,
    col: In<T>,
    row: T,
    denom: T,
    c: WriteConsts<T>,
}

impl<T: Real> Body<T, 0> for WriteFactored<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 0], L) {
        let g = grad::<T, L>(self.g, i, self.c.scale, self.c.maximize);
        let u = factored_update(
            self.row,
            self.col.get::<L>(i),
            self.denom,
            self.c.eps1_sq,
            g,
        );
        self.c.write(self.p, i, u);
        ([], u)
    }
}

/// Pass 1 over a row segment: adds g * g to the column partial sums;
/// sums g * g (the row) and p * p.
struct SumsBody<T> {
    p: In<T>,
    g: In<T>,
    col: Out<T>,
    scale: Option<T>,
}

impl<T: Real> Body<T, 2> for SumsBody<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 2], L) {
        let g = grad::<T, L>(self.g, i, self.scale, false);
        let g2 = g.mul(g);
        self.col.set(i, self.col.get::<L>(i).add(g2));
        let p = self.p.get::<L>(i);
        ([g2, p.mul(p)], g2)
    }
}

/// Pass 1 over a vector's range: the second moment (written), and the sums
/// of U * U and p * p.
struct VectorBody<T> {
    p: In<T>,
    g: In<T>,
    v: Out<T>,
    scale: Option<T>,
    lerp: Lerp<T>,
    eps1_sq: T,
}

impl<T: Real> Body<T, 2> for VectorBody<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 2], L) {
        let g = grad::<T, L>(self.g, i, self.scale, false);
        let v = self.lerp.apply(self.v.get::<L>(i), g.mul(g));
        self.v.set(i, v);
        let u = rsqrt_floor(v, self.eps1_sq).mul(g);
        let p = self.p.get::<L>(i);
        ([u.mul(u), p.mul(p)], u)
    }
}

/// Pass 2 over a row piece of a factored tensor: the sum of
/// `U^2 = g^2 * min(denom / R * (1 / C), 1 / eps1^2)`.
struct NormBody<T> {
    g: In<T>,
    inv_col: In<T>,
    /// `denom / R` of the row, and `1 / eps1^2`.
    inv_row: T,
    cap: T,
    scale: Option<T>,
}

impl<T: Real> Body<T, 1> for NormBody<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 1], L) {
        let g = grad::<T, L>(self.g, i, self.scale, false);
        let w = L::splat(self.inv_row).mul(self.inv_col.get::<L>(i));
        // min(w, cap), NaN kept: -max(-w, -cap).
        let w = w.neg().maximum(L::splat(self.cap).neg()).neg();
        let u2 = g.mul(g).mul(w);
        ([u2], u2)
    }
}

/// The grad at `i`, scaled, negated for maximize.
#[inline(always)]
unsafe fn grad<T: Real, L: Lanes<T>>(g: In<T>, i: usize, scale: Option<T>, neg: bool) -> L {
    let mut g = g.get::<L>(i);
    if let Some(s) = scale {
        g = g.mul(L::splat(s));
    }
    if neg {
        g = g.neg();
    }
    g
}

/// `1 / sqrt(max(v, eps1^2))` (torch's `clamp_(min).rsqrt_()`).
#[inline(always)]
unsafe fn rsqrt_floor<T: Real, L: Lanes<T>>(v: L, eps1_sq: T) -> L {
    L::splat(T::ONE).div(v.maximum(L::splat(eps1_sq)).sqrt())
}

/// `U = rsqrt(max((R_i * C_j) / denom, eps1^2)) * g`.
#[inline(always)]
unsafe fn factored_update<T: Real, L: Lanes<T>>(row: T, col: L, denom: T, eps1_sq: T, g: L) -> L {
    let v = L::splat(row).mul(col).div(L::splat(denom));
    rsqrt_floor(v, eps1_sq).mul(g)
}

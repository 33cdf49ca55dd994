//! Muon, as in the algorithm box and the single-tensor code of
//! `torch.optim.Muon` (2-D params only):
//!
//! ```text
//! B = lerp(B, g, 1 - momentum)                 momentum_buffer
//! U = lerp(g, B, momentum) if nesterov, else B
//! X = U (transposed when rows > cols);  X = X / max(||X||_F, eps)
//! ns_steps times:  A = X X^T;  A' = b A + c A A;  X = a X + A' X
//! p = p * (1 - lr * wd)
//! p = p + (-lr') * X (transposed back)
//! ```
//!
//! with `(a, b, c) = ns_coefficients` and `lr' = lr * sqrt(max(1, rows /
//! cols))` (`adjust_lr_fn` None or "original") or `0.2 * lr * sqrt(max(rows,
//! cols))` ("match_rms_adamw"); the weight decay uses the unadjusted lr.
//! torch keeps the buffer as a moving average (`lerp`), `1 - momentum` times
//! the box's sum; the Frobenius normalisation makes that the same update.
//!
//! Newton-Schulz runs in the param's dtype (torch: bfloat16). The products
//! are `matrixmultiply`'s GEMM, single-threaded per call; the tensors of a
//! step run in parallel, one tensor per task, each on one thread with the
//! same code whatever the pool, so results are bit-identical for any thread
//! count. The norm and the element-wise parts are this crate's SIMD kernels
//! (bit-identical at every `LEC7RS_SIMD` level), and the GEMM does not use
//! that level: it picks its kernel from the CPU's own features (AVX-512,
//! AVX2 + FMA, AVX, SSE2, NEON), so results are bit-identical across
//! `LEC7RS_SIMD` levels on one CPU, but may differ in the last bits between
//! CPUs with different features (FMA or not, other register blocking).
//!
//! Scratch (two `rows x cols` and two `min(rows, cols)^2` matrices per
//! thread) is allocated before anything is written, fallibly.

use std::sync::Mutex;

use super::rule::{Field, Rule, Slot, Tensor, Value};
use super::Lerp;
use crate::error::{check_non_negative, Error, Result};
use crate::optimize::reduce::{pass_inline, Body, In, Out};
use crate::parallel::{self, Split};
use crate::simd::{Lanes, Real};

/// torch's `adjust_lr_fn`: how the step size follows the param's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdjustLr {
    /// None or "original": `lr * sqrt(max(1, rows / cols))`.
    Original,
    /// "match_rms_adamw": `0.2 * lr * sqrt(max(rows, cols))` (Moonshot's
    /// scaling, an update RMS like AdamW's).
    MatchRmsAdamw,
}

impl Field for AdjustLr {
    fn from_value(name: &str, v: &Value) -> Result<AdjustLr> {
        const EXPECTED: &str = "None, 'original' or 'match_rms_adamw'";
        match v {
            Value::None => Ok(AdjustLr::Original),
            Value::Str(s) if s == "original" => Ok(AdjustLr::Original),
            Value::Str(s) if s == "match_rms_adamw" => Ok(AdjustLr::MatchRmsAdamw),
            Value::Str(s) => Err(Error::InvalidChoice {
                name: name.into(),
                value: s.clone(),
                expected: EXPECTED,
            }),
            Value::Missing => Err(Error::Type(format!("missing hyperparameter '{name}'"))),
            _ => Err(Error::Type(format!("{name}: expected {EXPECTED}"))),
        }
    }
}

crate::hyperparameters! {
    /// Hyperparameters of Muon, with PyTorch's names and defaults.
    pub struct MuonHyper {
        pub lr: f64 = 1e-3,
        pub weight_decay: f64 = 0.1,
        pub momentum: f64 = 0.95,
        pub nesterov: bool = true,
        pub ns_coefficients: [f64; 3] = [3.4445, -4.775, 2.0315],
        pub eps: f64 = 1e-7,
        pub ns_steps: u64 = 5,
        pub adjust_lr_fn: AdjustLr = AdjustLr::Original,
    }
}

/// `torch.optim.Muon`.
pub struct Muon;

impl Rule for Muon {
    type Hyper = MuonHyper;
    const NAME: &'static str = "muon";
    const SLICEABLE: bool = false;
    const SLOTS: &'static [Slot] = &[Slot::param("momentum_buffer").signed()];

    fn validate(h: &MuonHyper) -> Result<()> {
        check_non_negative("lr", h.lr)?;
        check_non_negative("momentum", h.momentum)?;
        check_non_negative("weight_decay", h.weight_decay)?;
        if h.ns_steps >= 100 {
            return Err(Error::InvalidHyperparameter {
                name: "ns_steps".into(),
                value: h.ns_steps as f64,
                expected: "an integer < 100 (torch's limit)",
            });
        }
        Ok(())
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, MuonHyper>]) -> Result<()> {
        for (i, t) in tensors.iter().enumerate() {
            if t.shape.len() != 2 {
                return Err(Error::Shape(format!(
                    "tensor {i}: Muon only supports 2-D params, got shape {:?}",
                    t.shape
                )));
            }
        }
        let mut jobs: Vec<Job<T>> = tensors
            .iter_mut()
            .filter(|t| !t.param.is_empty())
            .map(Job::new)
            .collect();
        if jobs.is_empty() {
            return Ok(());
        }
        // The largest first: the pool's threads then finish together.
        jobs.sort_by_key(|j| std::cmp::Reverse(j.r * j.r * j.c));
        let threads = parallel::num_threads().clamp(1, jobs.len());
        let wide = jobs.iter().map(|j| j.r * j.c).max().unwrap_or(0);
        let square = jobs.iter().map(|j| j.r * j.r).max().unwrap_or(0);
        let mut scratch = Vec::with_capacity(threads);
        for _ in 0..threads {
            scratch.push(Mutex::new(Scratch::new(wide, square)?));
        }
        // Every buffer exists: from here on nothing fails.
        let run = |piece: Jobs<'_, T>| {
            // A task runs on one thread start to end (no nested parallelism),
            // so the thread's scratch is its own.
            let k = rayon::current_thread_index().unwrap_or(0) % scratch.len();
            let mut s = scratch[k].lock().unwrap_or_else(|e| e.into_inner());
            for job in piece.jobs {
                job.run(&mut s);
            }
        };
        // One tensor per task (`INLINE_MAX` per task: two tensors or more
        // go to the pool). An error means the pool did not start and
        // nothing ran: run inline.
        if parallel::for_each_task(Jobs { jobs: &mut jobs }, parallel::INLINE_MAX, run).is_err() {
            run(Jobs { jobs: &mut jobs });
        }
        Ok(())
    }
}

/// A thread's matrices: `x`, `y` (`r x c`), `a`, `b` (`r x r`).
struct Scratch<T> {
    x: Vec<T>,
    y: Vec<T>,
    a: Vec<T>,
    b: Vec<T>,
}

impl<T: Real> Scratch<T> {
    fn new(wide: usize, square: usize) -> Result<Self> {
        let alloc = |n: usize| -> Result<Vec<T>> {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
                what: "Muon Newton-Schulz scratch".into(),
                bytes: n.saturating_mul(std::mem::size_of::<T>()),
            })?;
            v.resize(n, T::ZERO);
            Ok(v)
        };
        Ok(Scratch {
            x: alloc(wide)?,
            y: alloc(wide)?,
            a: alloc(square)?,
            b: alloc(square)?,
        })
    }
}

/// One tensor's step: pointers, geometry and constants.
struct Job<T> {
    p: Out<T>,
    g: In<T>,
    buf: Out<T>,
    scale: Option<T>,
    rows: usize,
    cols: usize,
    /// The wide orientation `r x c` (`r <= c`): transposed when rows > cols.
    r: usize,
    c: usize,
    transposed: bool,
    h: MuonHyper,
}

impl<T: Real> Job<T> {
    fn new(t: &mut Tensor<'_, T, MuonHyper>) -> Self {
        let (rows, cols) = (t.shape[0], t.shape[1]);
        let transposed = rows > cols;
        let (r, c) = if transposed {
            (cols, rows)
        } else {
            (rows, cols)
        };
        Job {
            p: Out(t.param.as_mut_ptr()),
            g: In(t.grad.as_ptr()),
            buf: Out(t.slots[0].as_mut_ptr()),
            scale: t.grad_scale,
            rows,
            cols,
            r,
            c,
            transposed,
            h: t.hyper,
        }
    }

    /// torch's `_adjust_lr`.
    fn adjusted_lr(&self) -> f64 {
        let (a, b) = (self.rows as f64, self.cols as f64);
        let ratio = match self.h.adjust_lr_fn {
            AdjustLr::Original => {
                let q = a / b;
                (if q > 1.0 { q } else { 1.0 }).sqrt()
            }
            AdjustLr::MatchRmsAdamw => 0.2 * a.max(b).sqrt(),
        };
        self.h.lr * ratio
    }

    fn run(&self, s: &mut Scratch<T>) {
        let h = &self.h;
        let n = self.rows * self.cols;
        let (r, c) = (self.r, self.c);
        let (mut x, mut y) = (&mut s.x[..n], &mut s.y[..n]);
        // SAFETY: the tensor's pointers are valid for `n` elements and this
        // task is the only user of them; the scratch slices have `n` (or
        // `r * r`) elements.
        unsafe {
            // The momentum buffer and the update, in the param's layout.
            let into = if self.transposed { &mut *y } else { &mut *x };
            let body = MomentumBody {
                g: self.g,
                buf: self.buf,
                out: Out(into.as_mut_ptr()),
                scale: self.scale,
                decay: Lerp::new(1.0 - h.momentum),
                nesterov: h.nesterov.then(|| Lerp::new(h.momentum)),
            };
            pass_inline(n, &body);
            if self.transposed {
                transpose(y, x, self.rows, self.cols);
            }
            // X / max(||X||, eps), the norm rounded to T as torch's.
            let mut sum = 0.0;
            for row in x.chunks_exact(c) {
                sum += pass_inline(
                    c,
                    &SquareBody {
                        x: In(row.as_ptr()),
                    },
                )
                .sum[0];
            }
            let norm = T::from_f64(sum.sqrt()).maximum(T::from_f64(h.eps));
            let body = DivBody {
                x: Out(x.as_mut_ptr()),
                d: norm,
            };
            pass_inline(n, &body);
            let [ca, cb, cc] = h.ns_coefficients;
            let (a, b) = (&mut s.a[..r * r], &mut s.b[..r * r]);
            for _ in 0..h.ns_steps {
                // A = X X^T
                gemm::<T>(r, c, r, 1.0, x, (c, 1), x, (1, c), 0.0, a, r);
                // B = b A + c A A (torch's addmm(A, A, A, beta=b, alpha=c))
                b.copy_from_slice(a);
                gemm::<T>(r, r, r, cc, a, (r, 1), a, (r, 1), cb, b, r);
                // X = a X + B X (addmm(X, B, X, beta=a))
                y.copy_from_slice(x);
                gemm::<T>(r, r, c, 1.0, b, (r, 1), x, (c, 1), ca, y, c);
                std::mem::swap(&mut x, &mut y);
            }
            let update = if self.transposed {
                transpose(x, y, r, c);
                &*y
            } else {
                &*x
            };
            let factor = 1.0 - h.lr * h.weight_decay;
            let body = WriteBody {
                p: self.p,
                u: In(update.as_ptr()),
                decay: (factor != 1.0).then(|| T::from_f64(factor)),
                step: T::from_f64(-self.adjusted_lr()),
            };
            pass_inline(n, &body);
        }
    }
}

/// Jobs for the pool, cut between jobs.
struct Jobs<'a, T> {
    jobs: &'a mut [Job<T>],
}

impl<T: Send> Split for Jobs<'_, T> {
    fn len(&self) -> usize {
        self.jobs.len()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let (a, b) = self.jobs.split_at_mut(mid);
        (Jobs { jobs: a }, Jobs { jobs: b })
    }
}

/// `dst = src^T` for `src` of `rows x cols`, in blocks that stay in cache.
fn transpose<T: Copy>(src: &[T], dst: &mut [T], rows: usize, cols: usize) {
    const B: usize = 32;
    for i0 in (0..rows).step_by(B) {
        for j0 in (0..cols).step_by(B) {
            for i in i0..(i0 + B).min(rows) {
                for j in j0..(j0 + B).min(cols) {
                    dst[j * rows + i] = src[i * cols + j];
                }
            }
        }
    }
}

/// `C = alpha A B + beta C` for `A` of `m x k` (strides `sa`: row, column),
/// `B` of `k x n`, `C` of `m x n` row-major with row stride `ldc`:
/// `matrixmultiply`'s sgemm or dgemm.
///
/// # Safety
/// The slices hold the matrices their strides describe.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm<T: Real>(
    m: usize,
    k: usize,
    n: usize,
    alpha: f64,
    a: &[T],
    sa: (usize, usize),
    b: &[T],
    sb: (usize, usize),
    beta: f64,
    c: &mut [T],
    ldc: usize,
) {
    use std::any::TypeId;
    let s = |x: usize| x as isize;
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha as f32,
            a.as_ptr().cast(),
            s(sa.0),
            s(sa.1),
            b.as_ptr().cast(),
            s(sb.0),
            s(sb.1),
            beta as f32,
            c.as_mut_ptr().cast(),
            s(ldc),
            1,
        )
    } else {
        debug_assert_eq!(TypeId::of::<T>(), TypeId::of::<f64>());
        matrixmultiply::dgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr().cast(),
            s(sa.0),
            s(sa.1),
            b.as_ptr().cast(),
            s(sb.0),
            s(sb.1),
            beta,
            c.as_mut_ptr().cast(),
            s(ldc),
            1,
        )
    }
}

/// `buf = lerp(buf, g, 1 - momentum)`; `out = lerp(g, buf, momentum)`
/// (nesterov) or `buf`.
struct MomentumBody<T> {
    g: In<T>,
    buf: Out<T>,
    out: Out<T>,
    scale: Option<T>,
    decay: Lerp<T>,
    nesterov: Option<Lerp<T>>,
}

impl<T: Real> Body<T, 0> for MomentumBody<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 0], L) {
        let mut g = self.g.get::<L>(i);
        if let Some(s) = self.scale {
            g = g.mul(L::splat(s));
        }
        let b = self.decay.apply(self.buf.get::<L>(i), g);
        self.buf.set(i, b);
        let u = match &self.nesterov {
            Some(l) => l.apply(g, b),
            None => b,
        };
        self.out.set(i, u);
        ([], u)
    }
}

/// The sum of `x * x`.
struct SquareBody<T> {
    x: In<T>,
}

impl<T: Real> Body<T, 1> for SquareBody<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 1], L) {
        let x = self.x.get::<L>(i);
        ([x.mul(x)], x)
    }
}

/// `x = x / d`.
struct DivBody<T> {
    x: Out<T>,
    d: T,
}

impl<T: Real> Body<T, 0> for DivBody<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 0], L) {
        let x = self.x.get::<L>(i).div(L::splat(self.d));
        self.x.set(i, x);
        ([], x)
    }
}

/// `p = p * (1 - lr * wd)`, then `p = p + (-lr') * u`.
struct WriteBody<T> {
    p: Out<T>,
    u: In<T>,
    decay: Option<T>,
    step: T,
}

impl<T: Real> Body<T, 0> for WriteBody<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 0], L) {
        let mut p = self.p.get::<L>(i);
        if let Some(f) = self.decay {
            p = p.mul(L::splat(f));
        }
        let p = p.add(L::splat(self.step).mul(self.u.get::<L>(i)));
        self.p.set(i, p);
        ([], p)
    }
}

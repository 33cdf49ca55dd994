//! Second-order methods: L-BFGS (compact representation; the two-loop
//! recursion for `hess_inv`), BFGS (dense inverse Hessian) and Newton's
//! method (the caller solves for the step), with strong Wolfe
//! (More-Thuente) or backtracking Armijo line searches; and the
//! Steihaug-Toint truncated CG trust-region method (the caller supplies
//! Hessian-vector products).
//!
//! - [`reduce`]: fused passes with dot products (a fixed or a run-time
//!   number of them) that are bit-identical for any thread count and SIMD
//!   level.
//! - [`lbfgs`]: the history of `(s, y)` pairs, the search direction by the
//!   compact representation (two passes over memory), and the two-loop
//!   recursion.
//! - [`bfgs`]: the dense inverse Hessian and its rank-2 update.
//! - [`line_search`]: More-Thuente and backtracking, as reverse
//!   communication.
//! - [`newton`]: the Newton step from a Cholesky factor.
//! - [`minimizer`]: the driver of `minimize`, a state machine that asks its
//!   caller for evaluations.
//! - [`trust_ncg`]: the driver of `minimize(method="trust-ncg")`, a state
//!   machine that asks its caller for evaluations and Hessian-vector
//!   products.
//! - [`many`]: the driver of `minimize_many`, one minimizer per row of a
//!   `k x n` batch, advanced in rounds of evaluations.

pub mod bfgs;
pub mod lbfgs;
pub mod lbfgsb;
pub mod line_search;
pub mod many;
pub mod minimizer;
pub mod newton;
pub mod reduce;
pub mod trust_ncg;

pub use lbfgs::{two_loop, History, Pair};
pub use many::{Many, Results};
pub use minimizer::{HessInv, Method, Minimizer, Options, Request, Search, Status};
pub use newton::cholesky_solve;
pub use reduce::{abs_max, dot};
pub use trust_ncg::{TrustNcg, TrustOptions, TrustRequest};

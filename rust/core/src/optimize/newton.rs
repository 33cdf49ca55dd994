//! The Newton step from a Cholesky factor: `L L^T d = b` by a forward and a
//! back substitution, O(n^2) once the caller has factored the (shifted)
//! Hessian `H + tau I = L L^T`.

use crate::error::{Error, Result};

/// Solves `L L^T x = b` in place, `L` lower triangular, row-major `n x n`
/// (the upper triangle is not read). Sequential, so the result is the same
/// for any thread count.
pub fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64]) -> Result<()> {
    if l.len() != n * n || b.len() != n {
        return Err(Error::Shape(format!(
            "cholesky_solve: factor of {} elements and right-hand side of {} do not make an \
             {n} x {n} system",
            l.len(),
            b.len()
        )));
    }
    // Forward: L y = b, row by row (a dot product with the solved prefix).
    for i in 0..n {
        let row = &l[i * n..i * n + i];
        let s: f64 = row.iter().zip(&b[..i]).map(|(a, y)| a * y).sum();
        b[i] = (b[i] - s) / l[i * n + i];
    }
    // Back: L^T x = y, last unknown first; row i of L is column i of L^T, so
    // each solved x_i is subtracted from the earlier right-hand sides.
    for i in (0..n).rev() {
        b[i] /= l[i * n + i];
        let xi = b[i];
        let (head, _) = b.split_at_mut(i);
        for (bk, lik) in head.iter_mut().zip(&l[i * n..i * n + i]) {
            *bk -= lik * xi;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_known_system() {
        // A = L L^T with L = [[2, 0, 0], [1, 3, 0], [-1, 2, 4]].
        let l = [2.0, 0.0, 0.0, 1.0, 3.0, 0.0, -1.0, 2.0, 4.0];
        let x = [1.0, -2.0, 0.5];
        // b = L (L^T x)
        let mut t = [0.0; 3];
        for i in 0..3 {
            for k in i..3 {
                t[i] += l[k * 3 + i] * x[k];
            }
        }
        let mut b = [0.0; 3];
        for i in 0..3 {
            for k in 0..=i {
                b[i] += l[i * 3 + k] * t[k];
            }
        }
        cholesky_solve(&l, 3, &mut b).unwrap();
        for i in 0..3 {
            assert!((b[i] - x[i]).abs() < 1e-12, "{b:?}");
        }
    }

    #[test]
    fn rejects_mismatched_sizes() {
        assert!(cholesky_solve(&[1.0; 4], 2, &mut [1.0; 3]).is_err());
    }
}

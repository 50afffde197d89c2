//! Compares two tensors within `|a - b| <= atol + rtol * |b|` (numpy's
//! `allclose` with `b` the reference; NaN equals NaN, as
//! `numpy.testing.assert_allclose` has it), reporting the largest absolute
//! and relative differences and the worst element's index.

use crate::tensor::{Tensor, strides};

/// The result of comparing a tensor with a reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Same shape, and every element within tolerance.
    pub equal: bool,
    /// Why they cannot be compared element by element (shape or dtype
    /// mismatch), if so.
    pub mismatch: Option<String>,
    /// Largest `|a - b|`.
    pub max_abs: f64,
    /// Largest `|a - b| / |b|` (over elements where `b != 0`).
    pub max_rel: f64,
    /// Elements outside the tolerance.
    pub bad: usize,
    /// Elements compared.
    pub count: usize,
    /// The multi-index of the element furthest outside the tolerance (or
    /// with the largest absolute difference when all are within).
    pub worst_index: Vec<usize>,
    /// `a` and `b` at that index.
    pub worst_values: Option<(f64, f64)>,
}

/// Compares `a` with the reference `b`.
pub fn compare(a: &Tensor, b: &Tensor, rtol: f64, atol: f64) -> Comparison {
    let mut c = Comparison {
        equal: false,
        mismatch: None,
        max_abs: 0.0,
        max_rel: 0.0,
        bad: 0,
        count: 0,
        worst_index: vec![],
        worst_values: None,
    };
    if a.shape != b.shape {
        c.mismatch = Some(format!("shape {:?} vs {:?}", a.shape, b.shape));
        return c;
    }
    if a.dtype().is_floating_point() != b.dtype().is_floating_point() {
        c.mismatch = Some(format!("dtype {} vs {}", a.dtype(), b.dtype()));
        return c;
    }
    let (av, bv) = (a.data.to_f64_vec(), b.data.to_f64_vec());
    let mut worst = (f64::NEG_INFINITY, 0usize);
    for (i, (&x, &y)) in av.iter().zip(&bv).enumerate() {
        c.count += 1;
        let same = x == y || (x.is_nan() && y.is_nan());
        let d = if same { 0.0 } else { (x - y).abs() };
        let d = if d.is_nan() { f64::INFINITY } else { d };
        c.max_abs = c.max_abs.max(d);
        if y != 0.0 && !same {
            c.max_rel = c.max_rel.max(d / y.abs());
        }
        let excess = d - (atol + rtol * y.abs());
        if excess > 0.0 || (!same && (x.is_nan() || y.is_nan())) {
            c.bad += 1;
        }
        let score = if excess.is_nan() {
            f64::INFINITY
        } else {
            excess
        };
        if score > worst.0 {
            worst = (score, i);
        }
    }
    if c.count > 0 {
        let st = strides(&a.shape);
        let i = worst.1;
        c.worst_index = st
            .iter()
            .zip(&a.shape)
            .map(|(&s, &d)| (i / s) % d.max(1))
            .collect();
        c.worst_values = Some((av[i], bv[i]));
    }
    c.equal = c.bad == 0;
    c
}

//! ONNX `Unique` (opset 11+): the distinct elements (no `axis`: of the
//! flattened tensor) or distinct slices along `axis`, sorted ascending
//! (slices lexicographically, as numpy.unique) or in order of first
//! occurrence; with each one's first index, the inverse indices and the
//! counts. Elements are compared in their own type (no conversion).

use super::shape::Gather;
use super::{KResult, Kernel, arg, axis};
use crate::tensor::Tensor;
use std::cmp::Ordering;

/// `Unique`.
#[derive(Debug)]
pub struct Unique {
    /// The axis whose slices are compared, or `None` to flatten.
    pub axis: Option<i64>,
    /// Ascending order (else order of first occurrence).
    pub sorted: bool,
}

/// Compares slice `i` and `j` of `v` viewed as `[outer, len, inner]`.
fn cmp_slices<T: PartialOrd>(v: &[T], len: usize, inner: usize, i: usize, j: usize) -> Ordering {
    let outer = v.len().checked_div(len * inner).unwrap_or(0);
    for o in 0..outer {
        for k in 0..inner {
            let (a, b) = (&v[(o * len + i) * inner + k], &v[(o * len + j) * inner + k]);
            match a.partial_cmp(b) {
                Some(Ordering::Equal) => {}
                Some(ord) => return ord,
                // NaN: after every number, equal to another NaN (numpy).
                None => {
                    let (an, bn) = (a.partial_cmp(a).is_none(), b.partial_cmp(b).is_none());
                    match (an, bn) {
                        (true, false) => return Ordering::Greater,
                        (false, true) => return Ordering::Less,
                        _ => {}
                    }
                }
            }
        }
    }
    Ordering::Equal
}

/// The groups of equal slices: for each distinct slice (in output order)
/// its first index, plus each slice's group.
fn groups<T: PartialOrd>(
    v: &[T],
    len: usize,
    inner: usize,
    sorted: bool,
) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..len).collect();
    // Stable: equal slices stay in index order, so each group's first
    // member is its first occurrence.
    order.sort_by(|&i, &j| cmp_slices(v, len, inner, i, j));
    let mut first = Vec::new();
    let mut group = vec![0usize; len];
    for (k, &i) in order.iter().enumerate() {
        if k == 0 || cmp_slices(v, len, inner, order[k - 1], i) != Ordering::Equal {
            first.push(i);
        }
        group[i] = first.len() - 1;
    }
    if !sorted {
        // Order of first occurrence.
        let mut by_first: Vec<usize> = (0..first.len()).collect();
        by_first.sort_by_key(|&g| first[g]);
        let mut rank = vec![0usize; first.len()];
        for (r, &g) in by_first.iter().enumerate() {
            rank[g] = r;
        }
        let first: Vec<usize> = by_first.iter().map(|&g| first[g]).collect();
        let group = group.iter().map(|&g| rank[g]).collect();
        return (first, group);
    }
    (first, group)
}

impl Kernel for Unique {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let (x, ax) = match self.axis {
            None => (x.clone().reshaped(vec![x.numel()])?, 0),
            Some(a) => (x.clone(), axis(a, x.rank())?),
        };
        if x.rank() == 0 {
            return Err("a scalar has no axis to take unique slices along".into());
        }
        let len = x.shape[ax];
        let inner: usize = x.shape[ax + 1..].iter().product();
        let (first, group) = crate::with_data!(&x.data, v => groups(v, len, inner, self.sorted));
        let mut counts = vec![0i64; first.len()];
        for &g in &group {
            counts[g] += 1;
        }
        let idx: Vec<i64> = first.iter().map(|&i| i as i64).collect();
        let n = idx.len();
        let gathered = Gather { axis: ax as i64 }
            .run(&[Some(&x), Some(&Tensor::i64(vec![n], idx.clone())?)])?;
        let y = gathered.into_iter().next().ok_or("Gather gave no output")?;
        Ok(vec![
            y,
            Tensor::i64(vec![n], idx)?,
            Tensor::i64(vec![len], group.iter().map(|&g| g as i64).collect())?,
            Tensor::i64(vec![n], counts)?,
        ])
    }
}

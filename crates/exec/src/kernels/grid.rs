//! ONNX `GridSample` (2-D and 3-D; nearest, linear, cubic; zeros, border
//! and reflection padding; align_corners), following the onnx reference:
//! coordinates denormalized in float32, separable taps.

use super::{KResult, Kernel, arg};
use crate::tensor::{Data, Tensor, strides};

/// Sampling mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum GridMode {
    Nearest,
    Linear,
    Cubic,
}

/// Padding mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum GridPad {
    Zeros,
    Border,
    Reflection,
}

/// The op's attributes.
#[derive(Debug)]
pub struct GridSample {
    /// Sampling.
    pub mode: GridMode,
    /// Padding.
    pub padding: GridPad,
    /// Corner pixels' centres are -1 and 1.
    pub align_corners: bool,
}

fn reflect(x: f64, lo: f64, hi: f64) -> f64 {
    let rng = hi - lo;
    if x < lo {
        let dx = lo - x;
        let n = (dx / rng) as i64;
        let r = dx - n as f64 * rng;
        if n % 2 == 0 { lo + r } else { hi - r }
    } else if x > hi {
        let dx = x - hi;
        let n = (dx / rng) as i64;
        let r = dx - n as f64 * rng;
        if n % 2 == 0 { hi - r } else { lo + r }
    } else {
        x
    }
}

fn cubic(x: f64) -> [f64; 4] {
    let a = -0.75;
    let x = x.abs();
    [
        ((a * (x + 1.0) - 5.0 * a) * (x + 1.0) + 8.0 * a) * (x + 1.0) - 4.0 * a,
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0,
        ((a + 2.0) * (1.0 - x) - (a + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0,
        ((a * (2.0 - x) - 5.0 * a) * (2.0 - x) + 8.0 * a) * (2.0 - x) - 4.0 * a,
    ]
}

impl Kernel for GridSample {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, grid) = (arg(inputs, 0)?, arg(inputs, 1)?);
        let nd = x
            .rank()
            .checked_sub(2)
            .ok_or("X needs N, C and spatial dims")?;
        if grid.rank() != nd + 2
            || grid.shape[0] != x.shape[0]
            || grid.shape[nd + 1] != nd
            || nd == 0
        {
            return Err(format!("grid {:?} for X {:?}", grid.shape, x.shape));
        }
        let (n, c) = (x.shape[0], x.shape[1]);
        let dims = &x.shape[2..];
        let out_sp = &grid.shape[1..=nd];
        let out_n: usize = out_sp.iter().product();
        let in_n: usize = dims.iter().product();
        let xv = x.data.to_f64_vec();
        let gv = grid.data.to_f64_vec();
        let ist = strides(dims);
        let (lo, hi): (Vec<f64>, Vec<f64>) = dims
            .iter()
            .map(|&d| {
                if self.align_corners {
                    (0.0, d as f64 - 1.0)
                } else {
                    (-0.5, d as f64 - 0.5)
                }
            })
            .unzip();
        let mut y = vec![0f64; n * c * out_n];
        for ni in 0..n {
            for o in 0..out_n {
                // Taps per spatial dim: (index, weight).
                let mut taps: Vec<Vec<(i64, f64)>> = Vec::with_capacity(nd);
                for i in 0..nd {
                    // The grid's last dim lists x (W) first: reversed.
                    let g = gv[(ni * out_n + o) * nd + (nd - 1 - i)] as f32;
                    let len = dims[i] as f32;
                    let mut v = if self.align_corners {
                        (g + 1.0) / 2.0 * (len - 1.0)
                    } else {
                        ((g + 1.0) * len - 1.0) / 2.0
                    } as f64;
                    if self.mode == GridMode::Nearest {
                        v = v.round_ties_even();
                    }
                    if v < lo[i] || v > hi[i] {
                        match self.padding {
                            GridPad::Border => v = v.clamp(0.0, dims[i] as f64 - 1.0),
                            GridPad::Reflection => v = reflect(v, lo[i], hi[i]),
                            GridPad::Zeros => {}
                        }
                    }
                    let t = match self.mode {
                        GridMode::Nearest => vec![(v as i64, 1.0)],
                        GridMode::Linear => {
                            let f = v.floor();
                            vec![(f as i64, 1.0 - (v - f)), (f as i64 + 1, v - f)]
                        }
                        GridMode::Cubic => {
                            let f = v.floor();
                            let w = cubic(v - f);
                            (0..4).map(|k| (f as i64 - 1 + k as i64, w[k])).collect()
                        }
                    };
                    taps.push(t);
                }
                // Resolve tap indices through the padding.
                let resolve = |i: usize, idx: i64| -> Option<usize> {
                    let d = dims[i] as i64;
                    match self.padding {
                        GridPad::Zeros => (0..d).contains(&idx).then_some(idx as usize),
                        GridPad::Border => Some(idx.clamp(0, d - 1) as usize),
                        GridPad::Reflection => {
                            Some((reflect(idx as f64, lo[i], hi[i]) as i64).clamp(0, d - 1) as usize)
                        }
                    }
                };
                let combos: usize = taps.iter().map(Vec::len).product();
                let mut pts: Vec<(Option<usize>, f64)> = Vec::with_capacity(combos);
                for k in 0..combos {
                    let mut rem = k;
                    let mut off = Some(0usize);
                    let mut w = 1.0;
                    for i in (0..nd).rev() {
                        let (idx, wt) = taps[i][rem % taps[i].len()];
                        rem /= taps[i].len();
                        w *= wt;
                        off = match (off, resolve(i, idx)) {
                            (Some(a), Some(b)) => Some(a + b * ist[i]),
                            _ => None,
                        };
                    }
                    pts.push((off, w));
                }
                for ci in 0..c {
                    let base = (ni * c + ci) * in_n;
                    y[(ni * c + ci) * out_n + o] = pts
                        .iter()
                        .map(|&(off, w)| off.map_or(0.0, |p| w * xv[base + p]))
                        .sum();
                }
            }
        }
        let mut shape = vec![n, c];
        shape.extend_from_slice(out_sp);
        Ok(vec![Tensor::new(shape, Data::F64(y))?.cast(x.dtype())?])
    }
}

//! Reductions over axes (ReduceSum, ReduceMean, ... with keepdims and
//! empty-axes rules), ArgMax/ArgMin and TopK.

use super::{KResult, Kernel, arg, axis, opt};
use crate::tensor::{Data, Tensor, strides};

/// What a reduction computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    LogSum,
    LogSumExp,
    SumSquare,
}

/// A reduction; axes from an attribute or input 1.
#[derive(Debug)]
pub struct Reduce {
    /// The op.
    pub op: ReduceOp,
    /// Axes from an attribute (`None`: from input 1, or all).
    pub axes: Option<Vec<i64>>,
    /// Keep reduced dims as 1.
    pub keepdims: bool,
    /// With no axes, return the input unchanged.
    pub noop_with_empty_axes: bool,
}

/// Splits the dims into (kept positions, reduced positions) and returns, for
/// each output element, the offsets of the input elements it reduces.
fn groups(shape: &[usize], axes: &[usize]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let r = shape.len();
    let st = strides(shape);
    let kept: Vec<usize> = (0..r).filter(|d| !axes.contains(d)).collect();
    let red: Vec<usize> = (0..r).filter(|d| axes.contains(d)).collect();
    let out_shape: Vec<usize> = kept.iter().map(|&d| shape[d]).collect();
    let red_shape: Vec<usize> = red.iter().map(|&d| shape[d]).collect();
    let ks: Vec<usize> = kept.iter().map(|&d| st[d]).collect();
    let rs: Vec<usize> = red.iter().map(|&d| st[d]).collect();
    let bases = super::shape::strided_offsets(&out_shape, &ks, 0);
    let inner = super::shape::strided_offsets(&red_shape, &rs, 0);
    let out_shape_full = out_shape;
    let _ = out_shape_full;
    (
        inner.clone(),
        bases
            .iter()
            .map(|&b| inner.iter().map(|&i| b + i).collect())
            .collect(),
    )
}

impl Kernel for Reduce {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        if x.dtype() == netport_tensor::DType::Bool
            && matches!(self.op, ReduceOp::Max | ReduceOp::Min)
        {
            let xu = x.cast(netport_tensor::DType::UInt8)?;
            let mut ins: Vec<Option<&Tensor>> = inputs.to_vec();
            ins[0] = Some(&xu);
            let out = self.run(&ins)?;
            return out
                .iter()
                .map(|t| t.cast(netport_tensor::DType::Bool))
                .collect();
        }
        let r = x.rank();
        let given = match &self.axes {
            Some(a) => Some(a.clone()),
            None => opt(inputs, 1).map(|t| t.to_i64_vec()).transpose()?,
        };
        let axes: Vec<usize> = match given {
            Some(a) if !a.is_empty() => a.iter().map(|&v| axis(v, r)).collect::<Result<_, _>>()?,
            _ if self.noop_with_empty_axes => return Ok(vec![x.clone()]),
            _ => (0..r).collect(),
        };
        let mut shape = Vec::new();
        for d in 0..r {
            if axes.contains(&d) {
                if self.keepdims {
                    shape.push(1);
                }
            } else {
                shape.push(x.shape[d]);
            }
        }
        let (_, gs) = groups(&x.shape, &axes);
        let dt = x.dtype();
        let empty_group = gs.first().is_some_and(|g| g.is_empty());
        if let (Some(iv), true) = (
            x.data.to_i64_vec(),
            matches!(
                self.op,
                ReduceOp::Sum
                    | ReduceOp::Max
                    | ReduceOp::Min
                    | ReduceOp::Prod
                    | ReduceOp::SumSquare
                    | ReduceOp::L1
            ),
        ) {
            let out: Vec<i64> = gs
                .iter()
                .map(|g| {
                    let vals = g.iter().map(|&o| iv[o]);
                    match self.op {
                        ReduceOp::Sum => vals.fold(0i64, |a, b| a.wrapping_add(b)),
                        ReduceOp::SumSquare => {
                            vals.fold(0i64, |a, b| a.wrapping_add(b.wrapping_mul(b)))
                        }
                        ReduceOp::L1 => vals.fold(0i64, |a, b| a.wrapping_add(b.wrapping_abs())),
                        ReduceOp::Prod => vals.fold(1i64, |a, b| a.wrapping_mul(b)),
                        ReduceOp::Max => vals.max().unwrap_or(i64::MIN),
                        _ => vals.min().unwrap_or(i64::MAX),
                    }
                })
                .collect();
            return Ok(vec![Tensor::i64(shape, out)?.cast(dt)?]);
        }
        if !dt.is_floating_point() {
            return Err(format!("{:?} is not defined for {dt}", self.op));
        }
        let v = x.data.to_f64_vec();
        let out: Vec<f64> = gs
            .iter()
            .map(|g| {
                let vals = g.iter().map(|&o| v[o]);
                let n = g.len() as f64;
                match self.op {
                    ReduceOp::Sum => vals.sum(),
                    ReduceOp::Mean => vals.sum::<f64>() / n,
                    ReduceOp::Max => vals.fold(f64::NEG_INFINITY, |a, b| {
                        if a.is_nan() || b.is_nan() {
                            f64::NAN
                        } else {
                            a.max(b)
                        }
                    }),
                    ReduceOp::Min => vals.fold(f64::INFINITY, |a, b| {
                        if a.is_nan() || b.is_nan() {
                            f64::NAN
                        } else {
                            a.min(b)
                        }
                    }),
                    ReduceOp::Prod => vals.product(),
                    ReduceOp::L1 => vals.map(f64::abs).sum(),
                    ReduceOp::L2 => vals.map(|a| a * a).sum::<f64>().sqrt(),
                    ReduceOp::LogSum => vals.sum::<f64>().ln(),
                    ReduceOp::LogSumExp => {
                        let m = g.iter().map(|&o| v[o]).fold(f64::NEG_INFINITY, f64::max);
                        if m.is_infinite() {
                            vals.map(f64::exp).sum::<f64>().ln()
                        } else {
                            m + vals.map(|a| (a - m).exp()).sum::<f64>().ln()
                        }
                    }
                    ReduceOp::SumSquare => vals.map(|a| a * a).sum(),
                }
            })
            .collect();
        let _ = empty_group;
        Ok(vec![Tensor::new(shape, Data::F64(out))?.cast(dt)?])
    }
}

/// `ArgMax` / `ArgMin`.
#[derive(Debug)]
pub struct ArgReduce {
    /// ArgMax rather than ArgMin.
    pub max: bool,
    /// The axis.
    pub axis: i64,
    /// Keep the reduced dim as 1.
    pub keepdims: bool,
    /// Among ties, the last index.
    pub select_last_index: bool,
}

impl Kernel for ArgReduce {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let a = axis(self.axis, x.rank())?;
        let v = x.data.to_f64_vec();
        let (_, gs) = groups(&x.shape, &[a]);
        let out: Vec<i64> = gs
            .iter()
            .map(|g| {
                let mut best = 0usize;
                for (j, &o) in g.iter().enumerate() {
                    let (cur, b) = (v[o], v[g[best]]);
                    let better = if self.max { cur > b } else { cur < b };
                    if better || (self.select_last_index && cur == b) {
                        best = j;
                    }
                }
                best as i64
            })
            .collect();
        let mut shape = x.shape.clone();
        if self.keepdims {
            shape[a] = 1;
        } else {
            shape.remove(a);
        }
        Ok(vec![Tensor::i64(shape, out)?])
    }
}

/// `TopK` (k from an attribute or input 1).
#[derive(Debug)]
pub struct TopK {
    /// The axis.
    pub axis: i64,
    /// Largest rather than smallest.
    pub largest: bool,
    /// k from an attribute (opset < 10).
    pub k: Option<i64>,
}

impl Kernel for TopK {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let a = axis(self.axis, x.rank())?;
        let k = match self.k {
            Some(k) => k,
            None => *arg(inputs, 1)?.to_i64_vec()?.first().ok_or("no k")?,
        };
        let k = super::dim(k)?;
        if k > x.shape[a] {
            return Err(format!("k {k} exceeds dim {a} of {:?}", x.shape));
        }
        let v = x.data.to_f64_vec();
        let (_, gs) = groups(&x.shape, &[a]);
        let d = x.shape[a];
        let outer: usize = x.shape[..a].iter().product();
        let inner: usize = x.shape[a + 1..].iter().product();
        let mut offs = vec![0usize; outer * k * inner];
        let mut idx = vec![0i64; outer * k * inner];
        for (gi, g) in gs.iter().enumerate() {
            let (o, i) = (gi / inner.max(1), gi % inner.max(1));
            let mut order: Vec<usize> = (0..d).collect();
            order.sort_by(|&p, &q| {
                let (x1, x2) = (v[g[p]], v[g[q]]);
                let c = if self.largest {
                    x2.partial_cmp(&x1)
                } else {
                    x1.partial_cmp(&x2)
                };
                c.unwrap_or(std::cmp::Ordering::Equal).then(p.cmp(&q))
            });
            for (j, &p) in order.iter().take(k).enumerate() {
                offs[(o * k + j) * inner + i] = g[p];
                idx[(o * k + j) * inner + i] = p as i64;
            }
        }
        let mut shape = x.shape.clone();
        shape[a] = k;
        Ok(vec![
            super::shape::take(x, &offs, shape.clone())?,
            Tensor::i64(shape, idx)?,
        ])
    }
}

//! Loss kernels: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss
//! (reductions none / sum / mean, class weights, ignore_index, extra dims).

use super::{KResult, Kernel, arg, opt};
use crate::tensor::{Data, Tensor};

/// How per-element losses are reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// Per element.
    None,
    /// Summed.
    Sum,
    /// Weighted mean (divided by the sum of the weights of the counted
    /// elements).
    Mean,
}

/// NLL over log-probabilities `[N, C, d...]` with targets `[N, d...]`.
fn nll(
    logp: &[f64],
    shape: &[usize],
    target: &[i64],
    weight: Option<&[f64]>,
    ignore: Option<i64>,
    red: Reduction,
) -> Result<(Vec<f64>, Vec<usize>), String> {
    if shape.len() < 2 {
        return Err(format!("input {shape:?} needs at least N and C"));
    }
    let (n, c) = (shape[0], shape[1]);
    let inner: usize = shape[2..].iter().product();
    if target.len() != n * inner {
        return Err(format!("{} targets for input {shape:?}", target.len()));
    }
    let mut loss = vec![0f64; n * inner];
    let mut wsum = 0f64;
    for i in 0..n {
        for k in 0..inner {
            let t = target[i * inner + k];
            if Some(t) == ignore {
                continue;
            }
            if t < 0 || t as usize >= c {
                return Err(format!("target {t} is out of range for {c} classes"));
            }
            let w = weight.map_or(1.0, |w| w[t as usize]);
            loss[i * inner + k] = -logp[(i * c + t as usize) * inner + k] * w;
            wsum += w;
        }
    }
    Ok(match red {
        Reduction::None => {
            let mut s = vec![n];
            s.extend(&shape[2..]);
            (loss, s)
        }
        Reduction::Sum => (vec![loss.iter().sum()], vec![]),
        Reduction::Mean => (vec![loss.iter().sum::<f64>() / wsum], vec![]),
    })
}

/// `NegativeLogLikelihoodLoss` (`log_softmax = false`) or
/// `SoftmaxCrossEntropyLoss` (`true`, with the optional log-prob output).
#[derive(Debug)]
pub struct Loss {
    /// The reduction.
    pub reduction: Reduction,
    /// Targets with this value count for nothing.
    pub ignore_index: Option<i64>,
    /// Take log-softmax over dim 1 first.
    pub log_softmax: bool,
}

impl Kernel for Loss {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, t) = (arg(inputs, 0)?, arg(inputs, 1)?);
        let dt = x.dtype();
        if !dt.is_floating_point() {
            return Err(format!("input is {dt}, a float type is needed"));
        }
        let target = t.to_i64_vec()?;
        let weight = opt(inputs, 2).map(|w| w.data.to_f64_vec());
        let mut v = x.data.to_f64_vec();
        if self.log_softmax {
            if x.rank() < 2 {
                return Err(format!("scores {:?} need at least N and C", x.shape));
            }
            let (n, c) = (x.shape[0], x.shape[1]);
            let inner: usize = x.shape[2..].iter().product();
            for i in 0..n {
                for k in 0..inner {
                    let at = |j: usize| (i * c + j) * inner + k;
                    let m = (0..c).map(|j| v[at(j)]).fold(f64::NEG_INFINITY, f64::max);
                    let lse = m + (0..c).map(|j| (v[at(j)] - m).exp()).sum::<f64>().ln();
                    for j in 0..c {
                        v[at(j)] -= lse;
                    }
                }
            }
        }
        let (loss, shape) = nll(
            &v,
            &x.shape,
            &target,
            weight.as_deref(),
            self.ignore_index,
            self.reduction,
        )?;
        let mut outs = vec![Tensor::new(shape, Data::F64(loss))?.cast(dt)?];
        if self.log_softmax {
            outs.push(Tensor::new(x.shape.clone(), Data::F64(v))?.cast(dt)?);
        }
        Ok(outs)
    }
}

//! ONNX recurrent layers: RNN, GRU and LSTM, forward, reverse and
//! bidirectional, with `sequence_lens`, initial states, peepholes, `clip`,
//! `layout` and the activation functions of the spec. Computed in float64.

use super::elementwise::UnOp;
use super::{KResult, Kernel, arg, opt};
use crate::tensor::{Data, Tensor};

/// Which cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// One gate.
    Rnn,
    /// z, r, h gates.
    Gru {
        /// Apply the reset gate after the recurrent matrix product.
        linear_before_reset: bool,
    },
    /// i, o, f, c gates.
    Lstm,
}

/// An activation of the recurrent ops.
#[derive(Debug, Clone, Copy)]
pub enum Act {
    /// An elementwise op of ours.
    Op(UnOp),
    /// `alpha * x + beta`.
    Affine(f64, f64),
    /// `alpha * tanh(beta * x)`.
    ScaledTanh(f64, f64),
}

impl Act {
    fn f(self, x: f64) -> f64 {
        match self {
            Act::Op(u) => u.f(x),
            Act::Affine(a, b) => a * x + b,
            Act::ScaledTanh(a, b) => a * (b * x).tanh(),
        }
    }

    /// The activation named `name` with its optional alpha and beta.
    pub fn parse(name: &str, alpha: Option<f64>, beta: Option<f64>) -> Result<Act, String> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "sigmoid" => Act::Op(UnOp::Sigmoid),
            "tanh" => Act::Op(UnOp::Tanh),
            "relu" => Act::Op(UnOp::Relu),
            "softsign" => Act::Op(UnOp::Softsign),
            "softplus" => Act::Op(UnOp::Softplus),
            "leakyrelu" => Act::Op(UnOp::LeakyRelu(alpha.unwrap_or(0.01))),
            "thresholdedrelu" => Act::Op(UnOp::ThresholdedRelu(alpha.unwrap_or(1.0))),
            "elu" => Act::Op(UnOp::Elu(alpha.unwrap_or(1.0))),
            "hardsigmoid" => Act::Op(UnOp::HardSigmoid {
                alpha: alpha.unwrap_or(0.2),
                beta: beta.unwrap_or(0.5),
            }),
            "affine" => Act::Affine(alpha.unwrap_or(1.0), beta.unwrap_or(0.0)),
            "scaledtanh" => Act::ScaledTanh(alpha.unwrap_or(1.0), beta.unwrap_or(1.0)),
            other => return Err(format!("activation {other:?}")),
        })
    }
}

/// RNN / GRU / LSTM.
#[derive(Debug)]
pub struct Recurrent {
    /// The cell.
    pub cell: Cell,
    /// Hidden size.
    pub hidden: usize,
    /// 1 (forward or reverse) or 2 (bidirectional).
    pub directions: usize,
    /// A single reverse direction.
    pub reverse: bool,
    /// Activations, per direction (f, g[, h]).
    pub acts: Vec<Vec<Act>>,
    /// Clip of the gate inputs.
    pub clip: Option<f64>,
    /// Batch-major inputs and outputs.
    pub batch_major: bool,
}

impl Kernel for Recurrent {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let dt = x.dtype();
        if x.rank() != 3 {
            return Err(format!("X {:?} is not 3-D", x.shape));
        }
        let (seq, batch, isz) = if self.batch_major {
            (x.shape[1], x.shape[0], x.shape[2])
        } else {
            (x.shape[0], x.shape[1], x.shape[2])
        };
        let xv = x.data.to_f64_vec();
        let xat = |t: usize, b: usize, i: usize| {
            if self.batch_major {
                xv[(b * seq + t) * isz + i]
            } else {
                xv[(t * batch + b) * isz + i]
            }
        };
        let h = self.hidden;
        let g = match self.cell {
            Cell::Rnn => 1,
            Cell::Gru { .. } => 3,
            Cell::Lstm => 4,
        };
        let nd = self.directions;
        let w = arg(inputs, 1)?;
        let r = arg(inputs, 2)?;
        if w.shape != [nd, g * h, isz] || r.shape != [nd, g * h, h] {
            return Err(format!(
                "W {:?} / R {:?} do not fit {nd} directions, {g} gates, hidden {h}, input {isz}",
                w.shape, r.shape
            ));
        }
        let (wv, rv) = (w.data.to_f64_vec(), r.data.to_f64_vec());
        let bv = match opt(inputs, 3) {
            Some(b) if b.numel() == nd * 2 * g * h => b.data.to_f64_vec(),
            Some(b) => return Err(format!("B {:?}", b.shape)),
            None => vec![0.0; nd * 2 * g * h],
        };
        let lens: Vec<usize> = match opt(inputs, 4) {
            Some(t) => t
                .to_i64_vec()?
                .iter()
                .map(|&l| (l.max(0) as usize).min(seq))
                .collect(),
            None => vec![seq; batch],
        };
        if lens.len() != batch {
            return Err("sequence_lens does not match the batch".into());
        }
        let state = |i: usize| -> Result<Vec<f64>, String> {
            match opt(inputs, i) {
                Some(t) if t.numel() == nd * batch * h => {
                    let v = t.data.to_f64_vec();
                    if self.batch_major {
                        // [batch, dirs, hidden] to [dirs, batch, hidden].
                        let mut o = vec![0.0; v.len()];
                        for d in 0..nd {
                            for b in 0..batch {
                                for k in 0..h {
                                    o[(d * batch + b) * h + k] = v[(b * nd + d) * h + k];
                                }
                            }
                        }
                        Ok(o)
                    } else {
                        Ok(v)
                    }
                }
                Some(t) => Err(format!("initial state {:?}", t.shape)),
                None => Ok(vec![0.0; nd * batch * h]),
            }
        };
        let mut hs = state(5)?;
        let mut cs = if self.cell == Cell::Lstm {
            state(6)?
        } else {
            vec![]
        };
        let peep = match (self.cell, opt(inputs, 7)) {
            (Cell::Lstm, Some(p)) => p.data.to_f64_vec(),
            _ => vec![0.0; nd * 3 * h],
        };
        let mut y = vec![0f64; seq * nd * batch * h];
        let clip = |v: f64| self.clip.map_or(v, |c| v.clamp(-c, c));
        for d in 0..nd {
            let rev = self.reverse || d == 1;
            let acts = &self.acts[d];
            let wd = &wv[d * g * h * isz..][..g * h * isz];
            let rd = &rv[d * g * h * h..][..g * h * h];
            let wb = &bv[d * 2 * g * h..][..g * h];
            let rb = &bv[d * 2 * g * h + g * h..][..g * h];
            for b in 0..batch {
                let hb = &mut hs[(d * batch + b) * h..][..h];
                let mut hcur = hb.to_vec();
                let mut ccur = if self.cell == Cell::Lstm {
                    cs[(d * batch + b) * h..][..h].to_vec()
                } else {
                    vec![]
                };
                for step in 0..lens[b] {
                    let t = if rev { lens[b] - 1 - step } else { step };
                    // xw[j] = X_t . W_j + Wb_j ; hr[j] = H . R_j + Rb_j
                    let xw: Vec<f64> = (0..g * h)
                        .map(|j| {
                            (0..isz)
                                .map(|i| xat(t, b, i) * wd[j * isz + i])
                                .sum::<f64>()
                                + wb[j]
                        })
                        .collect();
                    let hr: Vec<f64> = (0..g * h)
                        .map(|j| (0..h).map(|k| hcur[k] * rd[j * h + k]).sum::<f64>() + rb[j])
                        .collect();
                    let mut hnew = vec![0f64; h];
                    match self.cell {
                        Cell::Rnn => {
                            for k in 0..h {
                                hnew[k] = acts[0].f(clip(xw[k] + hr[k]));
                            }
                        }
                        Cell::Gru {
                            linear_before_reset,
                        } => {
                            for k in 0..h {
                                let z = acts[0].f(clip(xw[k] + hr[k]));
                                let rg = acts[0].f(clip(xw[h + k] + hr[h + k]));
                                let hh = if linear_before_reset {
                                    acts[1].f(clip(xw[2 * h + k] + rg * hr[2 * h + k]))
                                } else {
                                    let rh: f64 = (0..h)
                                        .map(|m| {
                                            rg_at(&xw, &hr, acts, clip, h, m)
                                                * hcur[m]
                                                * rd[(2 * h + k) * h + m]
                                        })
                                        .sum();
                                    acts[1].f(clip(xw[2 * h + k] + rh + rb[2 * h + k]))
                                };
                                hnew[k] = (1.0 - z) * hh + z * hcur[k];
                            }
                        }
                        Cell::Lstm => {
                            let p = &peep[d * 3 * h..][..3 * h];
                            let mut cnew = vec![0f64; h];
                            for k in 0..h {
                                let i_g = acts[0].f(clip(xw[k] + hr[k] + p[k] * ccur[k]));
                                let f_g = acts[0].f(clip(
                                    xw[2 * h + k] + hr[2 * h + k] + p[2 * h + k] * ccur[k],
                                ));
                                let c_g = acts[1].f(clip(xw[3 * h + k] + hr[3 * h + k]));
                                cnew[k] = f_g * ccur[k] + i_g * c_g;
                                let o_g =
                                    acts[0].f(clip(xw[h + k] + hr[h + k] + p[h + k] * cnew[k]));
                                hnew[k] = o_g * acts[2].f(cnew[k]);
                            }
                            ccur = cnew;
                        }
                    }
                    hcur = hnew;
                    for k in 0..h {
                        y[((t * nd + d) * batch + b) * h + k] = hcur[k];
                    }
                }
                hb.copy_from_slice(&hcur);
                if self.cell == Cell::Lstm {
                    cs[(d * batch + b) * h..][..h].copy_from_slice(&ccur);
                }
            }
        }
        let out = |v: Vec<f64>,
                   seq_major: Vec<usize>,
                   batch_major: Vec<usize>,
                   perm: &[usize]|
         -> Result<Tensor, String> {
            let t = Tensor::new(seq_major, Data::F64(v))?;
            let t = if self.batch_major {
                super::shape::transpose(&t, perm)?.reshaped(batch_major)?
            } else {
                t
            };
            t.cast(dt)
        };
        let mut outs = vec![
            out(
                y,
                vec![seq, nd, batch, h],
                vec![batch, seq, nd, h],
                &[2, 0, 1, 3],
            )?,
            out(hs, vec![nd, batch, h], vec![batch, nd, h], &[1, 0, 2])?,
        ];
        if self.cell == Cell::Lstm {
            outs.push(out(cs, vec![nd, batch, h], vec![batch, nd, h], &[1, 0, 2])?);
        }
        Ok(outs)
    }
}

/// The reset gate of hidden unit `m` (GRU without linear_before_reset).
fn rg_at(
    xw: &[f64],
    hr: &[f64],
    acts: &[Act],
    clip: impl Fn(f64) -> f64,
    h: usize,
    m: usize,
) -> f64 {
    acts[0].f(clip(xw[h + m] + hr[h + m]))
}

//! ONNX `Attention` (opsets 23+): 3-D or 4-D Q/K/V, grouped-query heads,
//! past key/value caches, boolean or additive masks (padded when shorter
//! than the keys), bottom-right causal masking, sliding windows,
//! `nonpad_kv_seqlen`, softcap and the four `qk_matmul_output` modes.
//! Computed in float64 and rounded to the input dtype.

use super::{KResult, Kernel, arg, broadcast_offsets, opt};
use crate::tensor::{Data, Tensor};

/// The op's attributes.
#[derive(Debug)]
pub struct Attention {
    /// Scale of Q·Kᵀ (default 1/sqrt(head size)).
    pub scale: Option<f64>,
    /// Causal masking.
    pub is_causal: bool,
    /// Heads of Q for 3-D inputs.
    pub q_num_heads: Option<usize>,
    /// Heads of K and V for 3-D inputs.
    pub kv_num_heads: Option<usize>,
    /// tanh softcap (0: none).
    pub softcap: f64,
    /// What the fourth output holds (0 raw, 1 softcapped, 2 with bias, 3 softmax).
    pub qk_mode: i64,
    /// Sliding window to the left (-1: unbounded).
    pub left_window: i64,
    /// Sliding window to the right (-1: unbounded).
    pub right_window: i64,
}

/// `[B, S, H*D]` to `[B, H, S, D]` values.
fn to_4d(t: &Tensor, heads: usize) -> Result<(Vec<f64>, [usize; 4]), String> {
    let v = t.data.to_f64_vec();
    match t.rank() {
        4 => Ok((v, [t.shape[0], t.shape[1], t.shape[2], t.shape[3]])),
        3 => {
            let (b, s, hd) = (t.shape[0], t.shape[1], t.shape[2]);
            if heads == 0 || hd % heads != 0 {
                return Err(format!("{:?} does not split into {heads} heads", t.shape));
            }
            let d = hd / heads;
            let mut out = vec![0f64; v.len()];
            for bi in 0..b {
                for si in 0..s {
                    for h in 0..heads {
                        for di in 0..d {
                            out[((bi * heads + h) * s + si) * d + di] =
                                v[(bi * s + si) * hd + h * d + di];
                        }
                    }
                }
            }
            Ok((out, [b, heads, s, d]))
        }
        r => Err(format!("rank {r} inputs (3 or 4 expected)")),
    }
}

fn cat_seq(
    past: Option<&Tensor>,
    cur: (Vec<f64>, [usize; 4]),
) -> Result<(Vec<f64>, [usize; 4]), String> {
    let Some(p) = past else { return Ok(cur) };
    let (cv, cs) = cur;
    if p.rank() != 4 || p.shape[0] != cs[0] || p.shape[1] != cs[1] || p.shape[3] != cs[3] {
        return Err(format!("past {:?} does not fit {cs:?}", p.shape));
    }
    let pv = p.data.to_f64_vec();
    let ps = p.shape[2];
    let s = ps + cs[2];
    let mut out = Vec::with_capacity(cs[0] * cs[1] * s * cs[3]);
    for bh in 0..cs[0] * cs[1] {
        out.extend_from_slice(&pv[bh * ps * cs[3]..(bh + 1) * ps * cs[3]]);
        out.extend_from_slice(&cv[bh * cs[2] * cs[3]..(bh + 1) * cs[2] * cs[3]]);
    }
    Ok((out, [cs[0], cs[1], s, cs[3]]))
}

impl Kernel for Attention {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (q, k, v) = (arg(inputs, 0)?, arg(inputs, 1)?, arg(inputs, 2)?);
        let dt = q.dtype();
        if !dt.is_floating_point() {
            return Err(format!("Q is {dt}"));
        }
        let rank3 = q.rank() == 3;
        let (qv, qs) = to_4d(q, self.q_num_heads.unwrap_or(0))?;
        let kvh = self.kv_num_heads.unwrap_or(0);
        let (past_k, past_v) = (opt(inputs, 4), opt(inputs, 5));
        if past_k.is_some() != past_v.is_some() {
            return Err("past_key and past_value must be given together".into());
        }
        let (kv_, ks) = cat_seq(past_k, to_4d(k, kvh)?)?;
        let (vv, vs) = cat_seq(past_v, to_4d(v, kvh)?)?;
        let (b, hq, sq, d) = (qs[0], qs[1], qs[2], qs[3]);
        let (hk, skv, dv) = (ks[1], ks[2], vs[3]);
        if ks[0] != b
            || vs[0] != b
            || ks[3] != d
            || vs[1] != hk
            || vs[2] != skv
            || hk == 0
            || hq % hk != 0
        {
            return Err(format!("Q {qs:?}, K {ks:?}, V {vs:?} do not fit"));
        }
        let rep = hq / hk;
        let nonpad = opt(inputs, 6).map(|t| t.to_i64_vec()).transpose()?;
        if nonpad.is_some() && past_k.is_some() {
            return Err("nonpad_kv_seqlen with a past cache".into());
        }
        // The additive bias, [B, Hq, Sq, Skv].
        let n_bias = b * hq * sq * skv;
        let mut bias = vec![0f64; n_bias];
        let mask = opt(inputs, 3);
        let mask_vals: Option<Vec<f64>> = match mask {
            Some(m) => {
                let is_bool = matches!(m.data, Data::Bool(_));
                let raw = m.data.to_f64_vec();
                let last = *m.shape.last().ok_or("attn_mask is a scalar")?;
                if last > skv {
                    return Err(format!(
                        "attn_mask {:?} is longer than the {skv} keys",
                        m.shape
                    ));
                }
                // Pad the last dim to Skv (False / -inf), then broadcast.
                let rows = raw.len() / last.max(1);
                let mut padded = Vec::with_capacity(rows * skv);
                for r in 0..rows {
                    for j in 0..skv {
                        let x = if j < last {
                            raw[r * last + j]
                        } else if is_bool {
                            0.0
                        } else {
                            f64::NEG_INFINITY
                        };
                        padded.push(if is_bool {
                            if x != 0.0 { 0.0 } else { f64::NEG_INFINITY }
                        } else {
                            x
                        });
                    }
                }
                let mut shape = m.shape.clone();
                *shape.last_mut().expect("checked") = skv;
                let offs = broadcast_offsets(&shape, &[b, hq, sq, skv])?;
                Some(offs.iter().map(|&o| padded[o]).collect())
            }
            None => None,
        };
        if let Some(mv) = &mask_vals {
            bias.copy_from_slice(mv);
        }
        let past_len = past_k.map_or(0, |p| p.shape[2]) as i64;
        for bi in 0..b {
            let offset = match &nonpad {
                Some(np) if past_k.is_none() => {
                    *np.get(bi).ok_or("nonpad_kv_seqlen too short")? - sq as i64
                }
                _ => past_len,
            };
            for h in 0..hq {
                for i in 0..sq {
                    for j in 0..skv {
                        let at = ((bi * hq + h) * sq + i) * skv + j;
                        let diff = i as i64 + offset - j as i64;
                        if self.is_causal && diff < 0 {
                            bias[at] = f64::NEG_INFINITY;
                        }
                        if (self.left_window >= 0 && diff > self.left_window)
                            || (self.right_window >= 0 && -diff > self.right_window)
                        {
                            bias[at] = f64::NEG_INFINITY;
                        }
                        if nonpad.as_ref().is_some_and(|np| j as i64 >= np[bi]) {
                            bias[at] = f64::NEG_INFINITY;
                        }
                    }
                }
            }
        }
        let scale = self.scale.unwrap_or(1.0 / (d as f64).sqrt());
        let mut y = vec![0f64; b * hq * sq * dv];
        let mut qk_out = vec![0f64; n_bias];
        let mut row = vec![0f64; skv];
        for bi in 0..b {
            for h in 0..hq {
                let kh = h / rep;
                for i in 0..sq {
                    let qrow = &qv[((bi * hq + h) * sq + i) * d..][..d];
                    for j in 0..skv {
                        let krow = &kv_[((bi * hk + kh) * skv + j) * d..][..d];
                        let mut s: f64 =
                            qrow.iter().zip(krow).map(|(a, c)| a * c).sum::<f64>() * scale;
                        if self.softcap > 0.0 {
                            s = (s / self.softcap).tanh() * self.softcap;
                        }
                        let at = ((bi * hq + h) * sq + i) * skv + j;
                        if self.qk_mode <= 1 {
                            qk_out[at] = s;
                        }
                        row[j] = s + bias[at];
                        if self.qk_mode == 2 {
                            qk_out[at] = row[j];
                        }
                    }
                    let all_masked = (0..skv)
                        .all(|j| bias[((bi * hq + h) * sq + i) * skv + j] == f64::NEG_INFINITY);
                    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let m = if m == f64::NEG_INFINITY { 0.0 } else { m };
                    let mut sum = 0.0;
                    for r in row.iter_mut() {
                        *r = (*r - m).exp();
                        sum += *r;
                    }
                    for r in row.iter_mut() {
                        *r = if all_masked {
                            0.0
                        } else if sum == 0.0 {
                            *r
                        } else {
                            *r / sum
                        };
                    }
                    if self.qk_mode == 3 {
                        qk_out[((bi * hq + h) * sq + i) * skv..][..skv].copy_from_slice(&row);
                    }
                    let yrow = &mut y[((bi * hq + h) * sq + i) * dv..][..dv];
                    for (j, &p) in row.iter().enumerate() {
                        if p == 0.0 {
                            continue;
                        }
                        let vrow = &vv[((bi * hk + kh) * skv + j) * dv..][..dv];
                        for (o, &x) in yrow.iter_mut().zip(vrow) {
                            *o += p * x;
                        }
                    }
                }
            }
        }
        let y = if rank3 {
            let mut t = vec![0f64; y.len()];
            for bi in 0..b {
                for h in 0..hq {
                    for i in 0..sq {
                        for e in 0..dv {
                            t[(bi * sq + i) * hq * dv + h * dv + e] =
                                y[((bi * hq + h) * sq + i) * dv + e];
                        }
                    }
                }
            }
            Tensor::new(vec![b, sq, hq * dv], Data::F64(t))?
        } else {
            Tensor::new(vec![b, hq, sq, dv], Data::F64(y))?
        };
        Ok(vec![
            y.cast(dt)?,
            Tensor::new(ks.to_vec(), Data::F64(kv_))?.cast(dt)?,
            Tensor::new(vs.to_vec(), Data::F64(vv))?.cast(dt)?,
            Tensor::new(vec![b, hq, sq, skv], Data::F64(qk_out))?.cast(dt)?,
        ])
    }
}

/// ONNX `RotaryEmbedding` (opset 23): rotates the first
/// `rotary_embedding_dim` features of each head by the cached cos/sin
/// (looked up by `position_ids` when given), halves or interleaved pairs.
#[derive(Debug)]
pub struct Rotary {
    /// Pairs are (2i, 2i+1) rather than (i, i + half).
    pub interleaved: bool,
    /// Features rotated (0: the head size).
    pub dim: usize,
    /// Heads of a 3-D input.
    pub num_heads: usize,
}

impl Kernel for Rotary {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, cos, sin) = (arg(inputs, 0)?, arg(inputs, 1)?, arg(inputs, 2)?);
        let pos = opt(inputs, 3).map(|t| t.to_i64_vec()).transpose()?;
        let v = x.data.to_f64_vec();
        // Index of element (b, s, h, d) in x.
        let (b, s, h, d, four) = match x.rank() {
            4 => (x.shape[0], x.shape[2], x.shape[1], x.shape[3], true),
            3 => {
                if self.num_heads == 0 || x.shape[2] % self.num_heads != 0 {
                    return Err(format!("{:?} with num_heads {}", x.shape, self.num_heads));
                }
                (
                    x.shape[0],
                    x.shape[1],
                    self.num_heads,
                    x.shape[2] / self.num_heads,
                    false,
                )
            }
            r => return Err(format!("rank {r} input")),
        };
        let at = |bi: usize, si: usize, hi: usize, di: usize| {
            if four {
                ((bi * h + hi) * s + si) * d + di
            } else {
                ((bi * s + si) * h + hi) * d + di
            }
        };
        let rd = if self.dim == 0 { d } else { self.dim };
        let half = rd / 2;
        if rd > d || rd % 2 != 0 {
            return Err(format!("rotary_embedding_dim {rd} for head size {d}"));
        }
        let (cv, sv) = (cos.data.to_f64_vec(), sin.data.to_f64_vec());
        if *cos.shape.last().ok_or("cos_cache is a scalar")? != half {
            return Err(format!("cos_cache {:?} for half dim {half}", cos.shape));
        }
        let cache_at = |bi: usize, si: usize, j: usize| -> Result<usize, String> {
            match &pos {
                Some(p) => {
                    let row = *p.get(bi * s + si).ok_or("position_ids too short")?;
                    if row < 0 || (row as usize + 1) * half > cv.len() {
                        return Err(format!("position {row} is outside the cache"));
                    }
                    Ok(row as usize * half + j)
                }
                None => Ok((bi * s + si) * half + j),
            }
        };
        let mut out = v.clone();
        for bi in 0..b {
            for si in 0..s {
                for hi in 0..h {
                    for j in 0..half {
                        let c = *cv.get(cache_at(bi, si, j)?).ok_or("cos_cache too short")?;
                        let sn = *sv.get(cache_at(bi, si, j)?).ok_or("sin_cache too short")?;
                        let (i1, i2) = if self.interleaved {
                            (2 * j, 2 * j + 1)
                        } else {
                            (j, j + half)
                        };
                        let (x1, x2) = (v[at(bi, si, hi, i1)], v[at(bi, si, hi, i2)]);
                        out[at(bi, si, hi, i1)] = c * x1 - sn * x2;
                        out[at(bi, si, hi, i2)] = sn * x1 + c * x2;
                    }
                }
            }
        }
        Ok(vec![
            Tensor::new(x.shape.clone(), Data::F64(out))?.cast(x.dtype())?,
        ])
    }
}

//! `Einsum`: any equation over the inputs' labelled dims (with `...`),
//! explicit or implicit output, summing the labels not in the output.
//! Computed in float64 (integers exactly through i64).

use super::{KResult, Kernel};
use crate::tensor::{Data, Tensor, strides};

/// The op, with its equation.
#[derive(Debug)]
pub struct Einsum {
    /// The equation, spaces removed.
    pub equation: String,
}

fn expand(term: &str, rank: usize, ell: &[char]) -> Result<Vec<char>, String> {
    let named = term.replace("...", "").chars().count();
    if term.contains("...") {
        let n = rank
            .checked_sub(named)
            .ok_or_else(|| format!("term {term:?} has more labels than rank {rank}"))?;
        let (a, b) = term.split_once("...").expect("checked");
        let mut v: Vec<char> = a.chars().collect();
        v.extend(&ell[ell.len() - n..]);
        v.extend(b.chars());
        Ok(v)
    } else if named != rank {
        Err(format!("term {term:?} for rank {rank}"))
    } else {
        Ok(term.chars().collect())
    }
}

impl Kernel for Einsum {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let ts: Vec<&Tensor> = inputs.iter().flatten().copied().collect();
        let (lhs, rhs) = match self.equation.split_once("->") {
            Some((l, r)) => (l, Some(r)),
            None => (self.equation.as_str(), None),
        };
        let terms: Vec<&str> = lhs.split(',').collect();
        if terms.len() != ts.len() {
            return Err(format!("{} terms for {} inputs", terms.len(), ts.len()));
        }
        let max_ell = ts
            .iter()
            .zip(&terms)
            .map(|(t, s)| t.rank().saturating_sub(s.replace("...", "").len()))
            .max()
            .unwrap_or(0);
        let ell: Vec<char> = (0..max_ell)
            .map(|i| char::from_u32(0x3B1 + i as u32).unwrap_or('?'))
            .collect();
        let labels: Vec<Vec<char>> = ts
            .iter()
            .zip(&terms)
            .map(|(t, s)| expand(s, t.rank(), &ell))
            .collect::<Result<_, _>>()?;
        let mut sizes: Vec<(char, usize)> = Vec::new();
        for (t, l) in ts.iter().zip(&labels) {
            for (i, &c) in l.iter().enumerate() {
                match sizes.iter().find(|(k, _)| *k == c) {
                    Some(&(_, d)) if d != t.shape[i] && t.shape[i] != 1 && d != 1 => {
                        return Err(format!("label {c} has sizes {d} and {}", t.shape[i]));
                    }
                    Some(&(_, 1)) => {
                        sizes.retain(|(k, _)| *k != c);
                        sizes.push((c, t.shape[i]));
                    }
                    Some(_) => {}
                    None => sizes.push((c, t.shape[i])),
                }
            }
        }
        let out: Vec<char> = match rhs {
            Some(r) => {
                let n_ell = if r.contains("...") { max_ell } else { 0 };
                expand(r, r.replace("...", "").chars().count() + n_ell, &ell)?
            }
            None => {
                let mut once: Vec<char> = sizes
                    .iter()
                    .map(|(c, _)| *c)
                    .filter(|c| {
                        !ell.contains(c) && labels.iter().flatten().filter(|x| *x == c).count() == 1
                    })
                    .collect();
                once.sort_unstable();
                let mut v = ell.clone();
                v.extend(once);
                v
            }
        };
        let all: Vec<char> = out
            .iter()
            .copied()
            .chain(sizes.iter().map(|(c, _)| *c).filter(|c| !out.contains(c)))
            .collect();
        let dims: Vec<usize> = all
            .iter()
            .map(|c| sizes.iter().find(|(k, _)| k == c).map_or(1, |x| x.1))
            .collect();
        let out_shape: Vec<usize> = dims[..out.len()].to_vec();
        let out_n: usize = out_shape.iter().product();
        let red_n: usize = dims[out.len()..].iter().product();
        let vals: Vec<Vec<f64>> = ts.iter().map(|t| t.data.to_f64_vec()).collect();
        // For each input, the stride of each label of `all` (0 when absent or broadcast).
        let lst: Vec<Vec<usize>> = ts
            .iter()
            .zip(&labels)
            .map(|(t, l)| {
                let st = strides(&t.shape);
                all.iter()
                    .map(|c| {
                        l.iter()
                            .enumerate()
                            .filter(|(i, x)| *x == c && t.shape[*i] != 1)
                            .map(|(i, _)| st[i])
                            .sum()
                    })
                    .collect()
            })
            .collect();
        let ast = strides(&dims);
        let mut res = vec![0f64; out_n];
        for (o, slot) in res.iter_mut().enumerate() {
            let mut acc = 0.0;
            for rr in 0..red_n {
                let flat = o * red_n + rr;
                let mut prod = 1.0;
                for (k, v) in vals.iter().enumerate() {
                    let off: usize = (0..all.len())
                        .map(|d| ((flat / ast[d]) % dims[d]) * lst[k][d])
                        .sum();
                    prod *= v[off];
                }
                acc += prod;
            }
            *slot = acc;
        }
        let dt = ts.first().ok_or("no inputs")?.dtype();
        Ok(vec![Tensor::new(out_shape, Data::F64(res))?.cast(dt)?])
    }
}

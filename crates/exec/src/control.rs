//! ONNX control flow: `If`, `Loop` and `Scan` run sub-plans (built from the
//! node's graph attributes by the ONNX front end); `Scan` 8 (batched, with
//! `sequence_lens`) runs the opset-9 `Scan` once per batch element. Values the subgraph reads
//! from enclosing scopes are extra inputs of the node, passed on by name.

use crate::kernels::shape::{concat, take};
use crate::kernels::{KResult, Kernel, arg, axis, opt};
use crate::plan::Plan;
use crate::tensor::{Data, Tensor, strides};

/// A subgraph and the outer-scope names it reads.
#[derive(Debug)]
pub struct Sub {
    /// The plan.
    pub plan: Plan,
    /// Names it takes from enclosing scopes (fed after the node's own inputs).
    pub implicit: Vec<String>,
}

/// Runs a sub-plan with positional `formal` inputs plus the outer values.
fn call(
    sub: &Sub,
    formal: Vec<Tensor>,
    outer: &[(String, &Tensor)],
) -> Result<Vec<Tensor>, String> {
    let names: Vec<String> = sub.plan.inputs().map(|s| s.name.clone()).collect();
    let mut feed: Vec<(String, Tensor)> = Vec::new();
    let mut formal = formal.into_iter();
    for n in &names {
        if let Some((_, t)) = outer.iter().find(|(m, _)| m == n)
            && sub.implicit.contains(n)
        {
            feed.push((n.clone(), (*t).clone()));
            continue;
        }
        match formal.next() {
            Some(t) => feed.push((n.clone(), t)),
            None => return Err(format!("subgraph input {n:?} has no value")),
        }
    }
    let outs = sub
        .plan
        .run(&feed)
        .map_err(|e| format!("in the subgraph: {e}"))?;
    Ok(outs.into_iter().map(|(_, t)| t).collect())
}

/// The outer values: the node's inputs from `first` on, named.
fn outer<'a>(
    names: &[String],
    inputs: &[Option<&'a Tensor>],
    first: usize,
) -> Vec<(String, &'a Tensor)> {
    names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            inputs
                .get(first + i)
                .copied()
                .flatten()
                .map(|t| (n.clone(), t))
        })
        .collect()
}

/// The union of the implicit names of some subgraphs, in first-seen order.
pub fn implicit_union(subs: &[&Sub]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for s in subs {
        for n in &s.implicit {
            if !v.contains(n) {
                v.push(n.clone());
            }
        }
    }
    v
}

fn truth(t: &Tensor) -> Result<bool, String> {
    match &t.data {
        Data::Bool(v) if v.len() == 1 => Ok(v[0]),
        _ => Err(format!(
            "condition {:?} {} is not one bool",
            t.shape,
            t.dtype()
        )),
    }
}

/// `If`.
#[derive(Debug)]
pub struct If {
    /// then_branch.
    pub then_branch: Sub,
    /// else_branch.
    pub else_branch: Sub,
    /// The outer names fed after the condition.
    pub implicit: Vec<String>,
}

impl Kernel for If {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let c = truth(arg(inputs, 0)?)?;
        let outer = outer(&self.implicit, inputs, 1);
        call(
            if c {
                &self.then_branch
            } else {
                &self.else_branch
            },
            vec![],
            &outer,
        )
    }
}

fn stack(parts: &[Tensor], ax: usize) -> Result<Tensor, String> {
    let lifted: Vec<Tensor> = parts
        .iter()
        .map(|t| {
            let mut s = t.shape.clone();
            s.insert(ax.min(s.len()), 1);
            t.clone().reshaped(s)
        })
        .collect::<Result<_, _>>()?;
    let refs: Vec<&Tensor> = lifted.iter().collect();
    concat(&refs, ax as i64)
}

/// `Loop`.
#[derive(Debug)]
pub struct Loop {
    /// The body.
    pub body: Sub,
    /// Explicit inputs of the node (M, cond, loop-carried values).
    pub explicit: usize,
}

impl Kernel for Loop {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let max = match opt(inputs, 0) {
            Some(t) => Some(*t.to_i64_vec()?.first().ok_or("M is empty")?),
            None => None,
        };
        let mut cond = match opt(inputs, 1) {
            Some(t) => truth(t)?,
            None => true,
        };
        let n = self.explicit.saturating_sub(2);
        let mut v: Vec<Tensor> = (0..n)
            .map(|i| arg(inputs, 2 + i).cloned())
            .collect::<Result<_, _>>()?;
        let outer = outer(&self.body.implicit, inputs, self.explicit);
        let mut scans: Vec<Vec<Tensor>> = Vec::new();
        let mut i = 0i64;
        while cond && max.is_none_or(|m| i < m) {
            if i > 10_000_000 {
                return Err("more than 10,000,000 iterations".into());
            }
            let mut formal = vec![
                Tensor::i64(vec![], vec![i])?,
                Tensor::scalar(Data::Bool(vec![cond])),
            ];
            formal.extend(v.iter().cloned());
            let outs = call(&self.body, formal, &outer)?;
            if outs.len() < 1 + n {
                return Err(format!(
                    "the body made {} outputs, {} expected at least",
                    outs.len(),
                    1 + n
                ));
            }
            cond = truth(&outs[0])?;
            v = outs[1..1 + n].to_vec();
            let k = outs.len() - 1 - n;
            if scans.is_empty() {
                scans = vec![Vec::new(); k];
            }
            for (j, t) in outs[1 + n..].iter().enumerate() {
                scans[j].push(t.clone());
            }
            i += 1;
        }
        let mut result = v;
        for s in scans {
            result.push(stack(&s, 0)?);
        }
        Ok(result)
    }
}

/// `Scan` (opset 9+).
#[derive(Debug)]
pub struct Scan {
    /// The body.
    pub body: Sub,
    /// Explicit inputs of the node (states, then scan inputs).
    pub explicit: usize,
    /// Scan inputs among them.
    pub num_scan_inputs: usize,
    /// Axis of each scan input.
    pub input_axes: Vec<i64>,
    /// Direction of each scan input (1: reverse).
    pub input_directions: Vec<i64>,
    /// Axis of each scan output.
    pub output_axes: Vec<i64>,
    /// Direction of each scan output (1: reverse).
    pub output_directions: Vec<i64>,
}

/// The slice `t` at `index` along `ax`, that axis removed.
fn slice_at(t: &Tensor, ax: usize, index: usize) -> Result<Tensor, String> {
    let st = strides(&t.shape);
    let mut shape = t.shape.clone();
    shape.remove(ax);
    let outer: usize = t.shape[..ax].iter().product();
    let inner: usize = t.shape[ax + 1..].iter().product();
    let mut offs = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        let base = o * t.shape[ax] * inner + index * st[ax];
        offs.extend(base..base + inner);
    }
    take(t, &offs, shape)
}

impl Kernel for Scan {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let m = self.num_scan_inputs;
        let n = self
            .explicit
            .checked_sub(m)
            .ok_or("more scan inputs than inputs")?;
        let mut states: Vec<Tensor> = (0..n)
            .map(|i| arg(inputs, i).cloned())
            .collect::<Result<_, _>>()?;
        let scan_in: Vec<&Tensor> = (0..m)
            .map(|i| arg(inputs, n + i))
            .collect::<Result<_, _>>()?;
        let axes: Vec<usize> = (0..m)
            .map(|i| {
                axis(
                    self.input_axes.get(i).copied().unwrap_or(0),
                    scan_in[i].rank(),
                )
            })
            .collect::<Result<_, _>>()?;
        let len = scan_in.first().map_or(0, |t| t.shape[axes[0]]);
        if scan_in.iter().zip(&axes).any(|(t, &a)| t.shape[a] != len) {
            return Err("scan inputs differ in length".into());
        }
        let outer = outer(&self.body.implicit, inputs, self.explicit);
        let mut scans: Vec<Vec<Tensor>> = Vec::new();
        for it in 0..len {
            let mut formal = states.clone();
            for (i, t) in scan_in.iter().enumerate() {
                let idx = if self.input_directions.get(i).copied().unwrap_or(0) == 1 {
                    len - 1 - it
                } else {
                    it
                };
                formal.push(slice_at(t, axes[i], idx)?);
            }
            let outs = call(&self.body, formal, &outer)?;
            if outs.len() < n {
                return Err("the body made too few outputs".into());
            }
            states = outs[..n].to_vec();
            if scans.is_empty() {
                scans = vec![Vec::new(); outs.len() - n];
            }
            for (j, t) in outs[n..].iter().enumerate() {
                scans[j].push(t.clone());
            }
        }
        let mut result = states;
        for (j, mut s) in scans.into_iter().enumerate() {
            if self.output_directions.get(j).copied().unwrap_or(0) == 1 {
                s.reverse();
            }
            let rank = s.first().map_or(0, |t| t.rank()) + 1;
            let a = axis(self.output_axes.get(j).copied().unwrap_or(0), rank)?;
            result.push(stack(&s, a)?);
        }
        Ok(result)
    }
}

/// `Scan` 8: every state and scan input has a batch dim first (scan inputs
/// are scanned along dim 1), input 0 is the optional `sequence_lens`
/// (`[batch]`, default the full length); each batch element is scanned on
/// its own (by [`Scan`] with axes 0) and the results stacked, scan outputs
/// zero-padded past the element's length.
#[derive(Debug)]
pub struct Scan8 {
    /// The per-element scan: explicit inputs without `sequence_lens`, axes 0.
    pub scan: Scan,
}

impl Kernel for Scan8 {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let m = self.scan.num_scan_inputs;
        let explicit = self.scan.explicit;
        let n = explicit
            .checked_sub(m)
            .ok_or("more scan inputs than inputs")?;
        let given: Vec<&Tensor> = (0..explicit)
            .map(|i| arg(inputs, 1 + i))
            .collect::<Result<_, _>>()?;
        if given.iter().any(|t| t.rank() == 0) {
            return Err("a state or scan input without a batch dim".into());
        }
        let batch = given.first().map_or(0, |t| t.shape[0]);
        if given.iter().any(|t| t.shape[0] != batch) {
            return Err("states and scan inputs differ in batch size".into());
        }
        if given[n..].iter().any(|t| t.rank() < 2) {
            return Err("a scan input without a sequence dim".into());
        }
        let max_len = given.get(n).map_or(0, |t| t.shape[1]);
        let lens: Vec<usize> = match opt(inputs, 0) {
            None => vec![max_len; batch],
            Some(l) => {
                let v = l.to_i64_vec()?;
                if v.len() != batch {
                    return Err(format!(
                        "sequence_lens has {} values for batch {batch}",
                        v.len()
                    ));
                }
                v.iter()
                    .map(|&x| {
                        usize::try_from(x)
                            .ok()
                            .filter(|&x| x <= max_len)
                            .ok_or_else(|| format!("sequence length {x} (at most {max_len})"))
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        let implicit: Vec<Option<&Tensor>> = inputs.iter().skip(1 + explicit).copied().collect();
        let mut per: Vec<Vec<Tensor>> = Vec::new();
        for (b, &len) in lens.iter().enumerate() {
            let mut own: Vec<Tensor> = Vec::with_capacity(explicit);
            for (i, t) in given.iter().enumerate() {
                let e = slice_at(t, 0, b)?;
                if i >= n && len < e.shape[0] {
                    let inner: usize = e.shape[1..].iter().product();
                    let mut shape = e.shape.clone();
                    shape[0] = len;
                    own.push(take(&e, &(0..len * inner).collect::<Vec<_>>(), shape)?);
                } else {
                    own.push(e);
                }
            }
            let mut args: Vec<Option<&Tensor>> = own.iter().map(Some).collect();
            args.extend(implicit.iter().copied());
            let mut outs = self.scan.run(&args)?;
            for o in outs.iter_mut().skip(n) {
                if o.rank() == 0 || o.shape[0] >= max_len {
                    continue;
                }
                let mut steps: Vec<Tensor> = (0..o.shape[0])
                    .map(|k| slice_at(o, 0, k))
                    .collect::<Result<_, _>>()?;
                let rest = o.shape[1..].to_vec();
                let zeros = Tensor::new(
                    rest.clone(),
                    Data::from_f64(o.dtype(), &vec![0.0; rest.iter().product()]).ok_or("dtype")?,
                )?;
                steps.resize(max_len, zeros);
                *o = stack(&steps, 0)?;
            }
            per.push(outs);
        }
        let k = per.first().map_or(0, Vec::len);
        if per.iter().any(|o| o.len() != k) {
            return Err("a batch element of length 0 makes no scan outputs to pad".into());
        }
        (0..k)
            .map(|j| {
                let parts: Vec<Tensor> = per.iter().map(|o| o[j].clone()).collect();
                stack(&parts, 0)
            })
            .collect()
    }
}

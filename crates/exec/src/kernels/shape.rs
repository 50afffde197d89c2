//! Data-movement kernels, for every dtype: reshape and friends, transpose,
//! concat, split, slice, gather, expand, tile, pad, and the small shape
//! computations (Shape, Size, Range, ConstantOfShape, ...).

use super::{Float, KResult, Kernel, arg, axis, broadcast_offsets, broadcast_shape, dim, opt};
use crate::tensor::{Data, Tensor, numel, strides};
use crate::{map_data, with_data};

/// The elements of `t` at `offsets`, as a tensor of `shape`.
pub fn take(t: &Tensor, offsets: &[usize], shape: Vec<usize>) -> Result<Tensor, String> {
    let n = t.numel();
    if let Some(&bad) = offsets.iter().find(|&&o| o >= n) {
        return Err(format!("element {bad} is out of range of {:?}", t.shape));
    }
    let data = map_data!(&t.data, v => offsets.iter().map(|&o| v[o]).collect());
    Tensor::new(shape, data)
}

/// An i64 vector from a parameter given statically or as input `i`.
fn ints(
    inputs: &[Option<&Tensor>],
    fixed: &Option<Vec<i64>>,
    i: usize,
) -> Result<Option<Vec<i64>>, String> {
    if let Some(v) = fixed {
        return Ok(Some(v.clone()));
    }
    match opt(inputs, i) {
        Some(t) => Ok(Some(t.to_i64_vec()?)),
        None => Ok(None),
    }
}

/// `Reshape` (0 copies a dim unless `allowzero`; -1 is inferred).
#[derive(Debug)]
pub struct Reshape {
    /// The target shape from an attribute (opset < 5); else input 1.
    pub shape: Option<Vec<i64>>,
    /// A 0 means an empty dim rather than "copy".
    pub allowzero: bool,
}

/// Resolves a Reshape target against the input shape.
pub fn reshape_target(
    input: &[usize],
    target: &[i64],
    allowzero: bool,
) -> Result<Vec<usize>, String> {
    let total = numel(input).ok_or("shape overflow")?;
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => {
                out.push(*input.get(i).ok_or_else(|| {
                    format!("shape {target:?} copies dim {i} that {input:?} lacks")
                })?)
            }
            d => out.push(dim(d).map_err(|_| format!("invalid target shape {target:?}"))?),
        }
    }
    if let Some(i) = infer {
        let known: usize = out.iter().product();
        if known == 0 || total % known != 0 {
            return Err(format!("cannot reshape {input:?} to {target:?}"));
        }
        out[i] = total / known;
    }
    if numel(&out) != Some(total) {
        return Err(format!("cannot reshape {input:?} to {target:?}"));
    }
    Ok(out)
}

impl Kernel for Reshape {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let target = ints(inputs, &self.shape, 1)?.ok_or("no target shape")?;
        let shape = reshape_target(&x.shape, &target, self.allowzero)?;
        Ok(vec![x.clone().reshaped(shape)?])
    }
}

/// `Flatten` to 2-D at `axis`.
#[derive(Debug)]
pub struct Flatten {
    /// The split point (negative counts from the end).
    pub axis: i64,
}

impl Kernel for Flatten {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let r = x.rank() as i64;
        let a = if self.axis < 0 {
            self.axis + r
        } else {
            self.axis
        };
        if a < 0 || a > r {
            return Err(format!("axis {} is out of range for rank {r}", self.axis));
        }
        let a = a as usize;
        let outer = x.shape[..a].iter().product();
        let inner = x.shape[a..].iter().product();
        Ok(vec![x.clone().reshaped(vec![outer, inner])?])
    }
}

/// `Squeeze` (axes from an attribute, input 1, or every dim of 1).
#[derive(Debug)]
pub struct Squeeze {
    /// Axes from an attribute (opset < 13).
    pub axes: Option<Vec<i64>>,
}

impl Kernel for Squeeze {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let r = x.rank();
        let shape = match ints(inputs, &self.axes, 1)? {
            Some(axes) => {
                let axes = axes
                    .iter()
                    .map(|&a| axis(a, r))
                    .collect::<Result<Vec<_>, _>>()?;
                for &a in &axes {
                    if x.shape[a] != 1 {
                        return Err(format!("cannot squeeze dim {a} of {:?}", x.shape));
                    }
                }
                x.shape
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !axes.contains(i))
                    .map(|(_, &d)| d)
                    .collect()
            }
            None => x.shape.iter().copied().filter(|&d| d != 1).collect(),
        };
        Ok(vec![x.clone().reshaped(shape)?])
    }
}

/// `Unsqueeze` (axes from an attribute or input 1, counted in the output).
#[derive(Debug)]
pub struct Unsqueeze {
    /// Axes from an attribute (opset < 13).
    pub axes: Option<Vec<i64>>,
}

impl Kernel for Unsqueeze {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let axes = ints(inputs, &self.axes, 1)?.ok_or("no axes")?;
        let r = x.rank() + axes.len();
        let mut axes = axes
            .iter()
            .map(|&a| axis(a, r))
            .collect::<Result<Vec<_>, _>>()?;
        axes.sort_unstable();
        if axes.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!("repeated axes {axes:?}"));
        }
        let mut shape = x.shape.clone();
        for a in axes {
            shape.insert(a, 1);
        }
        Ok(vec![x.clone().reshaped(shape)?])
    }
}

/// Passes its input through (`Identity`, inference `Dropout` without mask).
#[derive(Debug)]
pub struct Identity;

impl Kernel for Identity {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        Ok(vec![arg(inputs, 0)?.clone()])
    }
}

/// `Transpose` (default: reverse the dims).
#[derive(Debug)]
pub struct Transpose {
    /// The permutation.
    pub perm: Option<Vec<i64>>,
}

/// Permutes the dims of a tensor.
pub fn transpose(x: &Tensor, perm: &[usize]) -> Result<Tensor, String> {
    let r = x.rank();
    let mut seen = vec![false; r];
    if perm.len() != r
        || perm
            .iter()
            .any(|&p| p >= r || std::mem::replace(&mut seen[p], true))
    {
        return Err(format!("perm {perm:?} is not a permutation of {r} dims"));
    }
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let st = strides(&x.shape);
    let pst: Vec<usize> = perm.iter().map(|&p| st[p]).collect();
    let offs = strided_offsets(&shape, &pst, 0);
    take(x, &offs, shape)
}

/// Offsets of a strided walk over `shape` from `base`.
pub fn strided_offsets(shape: &[usize], st: &[usize], base: usize) -> Vec<usize> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let r = shape.len();
    let mut idx = vec![0usize; r];
    let mut off = base;
    for _ in 0..n {
        out.push(off);
        for d in (0..r).rev() {
            idx[d] += 1;
            off += st[d];
            if idx[d] < shape[d] {
                break;
            }
            off -= st[d] * shape[d];
            idx[d] = 0;
        }
    }
    out
}

impl Kernel for Transpose {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let perm: Vec<usize> = match &self.perm {
            Some(p) => p
                .iter()
                .map(|&a| axis(a, x.rank()))
                .collect::<Result<_, _>>()?,
            None => (0..x.rank()).rev().collect(),
        };
        Ok(vec![transpose(x, &perm)?])
    }
}

/// `Concat` along `axis`.
#[derive(Debug)]
pub struct Concat {
    /// The axis.
    pub axis: i64,
}

/// Concatenates tensors along an axis.
pub fn concat(ts: &[&Tensor], ax: i64) -> Result<Tensor, String> {
    let first = ts.first().ok_or("no inputs")?;
    let r = first.rank();
    let a = axis(ax, r)?;
    let dt = first.dtype();
    let mut shape = first.shape.clone();
    shape[a] = 0;
    for t in ts {
        if t.dtype() != dt
            || t.rank() != r
            || (0..r).any(|i| i != a && t.shape[i] != first.shape[i])
        {
            return Err(format!(
                "cannot concat {:?} {} with {:?} {dt} on axis {a}",
                t.shape,
                t.dtype(),
                first.shape
            ));
        }
        shape[a] += t.shape[a];
    }
    let outer: usize = shape[..a].iter().product();
    let inner: usize = shape[a + 1..].iter().product();
    let mut data = Data::empty(dt, numel(&shape).ok_or("overflow")?).ok_or("dtype")?;
    for o in 0..outer {
        for t in ts {
            let len = t.shape[a] * inner;
            macro_rules! push {
                ($($v:ident),*) => {
                    match (&mut data, &t.data) {
                        $((Data::$v(d), Data::$v(s)) => d.extend_from_slice(&s[o * len..(o + 1) * len]),)*
                        _ => return Err("dtype mismatch".into()),
                    }
                };
            }
            push!(
                F32, F64, F16, BF16, I8, I16, I32, I64, U8, U16, U32, U64, Bool
            );
        }
    }
    Tensor::new(shape, data)
}

impl Kernel for Concat {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let ts: Vec<&Tensor> = inputs.iter().flatten().copied().collect();
        Ok(vec![concat(&ts, self.axis)?])
    }
}

/// `Split` along `axis` into given sizes (attribute or input 1) or `outputs`
/// equal parts (the last smaller when uneven, as opset 18's `num_outputs`).
#[derive(Debug)]
pub struct Split {
    /// The axis.
    pub axis: i64,
    /// Sizes from an attribute.
    pub split: Option<Vec<i64>>,
    /// The number of outputs.
    pub outputs: usize,
}

/// Splits a tensor along an axis into parts of the given sizes.
pub fn split(x: &Tensor, a: usize, sizes: &[usize]) -> KResult {
    let outer: usize = x.shape[..a].iter().product();
    let inner: usize = x.shape[a + 1..].iter().product();
    let d = x.shape[a];
    if sizes.iter().sum::<usize>() != d {
        return Err(format!(
            "split sizes {sizes:?} do not add up to dim {a} of {:?}",
            x.shape
        ));
    }
    let mut outs = Vec::new();
    let mut start = 0;
    for &s in sizes {
        let mut offs = Vec::with_capacity(outer * s * inner);
        for o in 0..outer {
            let base = (o * d + start) * inner;
            offs.extend(base..base + s * inner);
        }
        let mut shape = x.shape.clone();
        shape[a] = s;
        outs.push(take(x, &offs, shape)?);
        start += s;
    }
    Ok(outs)
}

impl Kernel for Split {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let a = axis(self.axis, x.rank())?;
        let d = x.shape[a];
        let sizes: Vec<usize> = match ints(inputs, &self.split, 1)? {
            Some(v) if !v.is_empty() => v.iter().map(|&s| dim(s)).collect::<Result<_, _>>()?,
            _ => {
                let n = self.outputs.max(1);
                let each = d.div_ceil(n);
                (0..n)
                    .map(|i| each.min(d.saturating_sub(i * each)))
                    .collect()
            }
        };
        split(x, a, &sizes)
    }
}

/// Slice's attribute form: starts, ends, axes.
pub type SliceAttrs = (Vec<i64>, Vec<i64>, Option<Vec<i64>>);

/// `Slice` (starts/ends/axes/steps from attributes or inputs 1..4).
#[derive(Debug)]
pub struct Slice {
    /// Attribute form (opset < 10): starts, ends, axes.
    pub fixed: Option<SliceAttrs>,
}

impl Kernel for Slice {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let r = x.rank();
        let (starts, ends, axes, steps) = match &self.fixed {
            Some((s, e, a)) => (s.clone(), e.clone(), a.clone(), None),
            None => (
                arg(inputs, 1)?.to_i64_vec()?,
                arg(inputs, 2)?.to_i64_vec()?,
                opt(inputs, 3).map(|t| t.to_i64_vec()).transpose()?,
                opt(inputs, 4).map(|t| t.to_i64_vec()).transpose()?,
            ),
        };
        let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
        if ends.len() != starts.len() || axes.len() != starts.len() {
            return Err(format!(
                "starts {starts:?}, ends {ends:?}, axes {axes:?} differ in length"
            ));
        }
        let mut begin = vec![0i64; r];
        let mut step = vec![1i64; r];
        let mut count: Vec<usize> = x.shape.clone();
        for i in 0..starts.len() {
            let a = axis(axes[i], r)?;
            let d = x.shape[a] as i64;
            let s = steps.as_ref().map_or(1, |v| v.get(i).copied().unwrap_or(1));
            if s == 0 {
                return Err("a step of 0".into());
            }
            let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
            let mut st = starts[i];
            let mut en = ends[i];
            if st < 0 {
                st = st.saturating_add(d);
            }
            if en < 0 {
                en = en.saturating_add(d);
            }
            let (st, en) = if s > 0 {
                (clamp(st, 0, d), clamp(en, 0, d))
            } else {
                (clamp(st, 0, d - 1), clamp(en, -1, d - 1))
            };
            let n = if s > 0 {
                if en > st { (en - st + s - 1) / s } else { 0 }
            } else if st > en {
                (st - en + (-s) - 1) / (-s)
            } else {
                0
            };
            begin[a] = st;
            step[a] = s;
            count[a] = n as usize;
        }
        let st = strides(&x.shape);
        let n = numel(&count).ok_or("overflow")?;
        let mut offs = Vec::with_capacity(n);
        if n > 0 {
            let mut idx = vec![0usize; r];
            for _ in 0..n {
                let mut o = 0i64;
                for d in 0..r {
                    o += (begin[d] + idx[d] as i64 * step[d]) * st[d] as i64;
                }
                offs.push(o as usize);
                for d in (0..r).rev() {
                    idx[d] += 1;
                    if idx[d] < count[d] {
                        break;
                    }
                    idx[d] = 0;
                }
            }
        }
        Ok(vec![take(x, &offs, count)?])
    }
}

/// `Gather` along `axis` (negative indices count from the end).
#[derive(Debug)]
pub struct Gather {
    /// The axis.
    pub axis: i64,
}

impl Kernel for Gather {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, i) = (arg(inputs, 0)?, arg(inputs, 1)?);
        let a = axis(self.axis, x.rank())?;
        let idx = i.to_i64_vec()?;
        let d = x.shape[a];
        let outer: usize = x.shape[..a].iter().product();
        let inner: usize = x.shape[a + 1..].iter().product();
        let mut offs = Vec::with_capacity(outer * idx.len() * inner);
        for o in 0..outer {
            for &j in &idx {
                let j = if j < 0 { j + d as i64 } else { j };
                if j < 0 || j >= d as i64 {
                    return Err(format!(
                        "index {j} is out of range for dim {a} of {:?}",
                        x.shape
                    ));
                }
                let base = (o * d + j as usize) * inner;
                offs.extend(base..base + inner);
            }
        }
        let mut shape = x.shape[..a].to_vec();
        shape.extend(&i.shape);
        shape.extend(&x.shape[a + 1..]);
        Ok(vec![take(x, &offs, shape)?])
    }
}

/// `GatherElements` along `axis`.
#[derive(Debug)]
pub struct GatherElements {
    /// The axis.
    pub axis: i64,
}

impl Kernel for GatherElements {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, i) = (arg(inputs, 0)?, arg(inputs, 1)?);
        let r = x.rank();
        let a = axis(self.axis, r)?;
        if i.rank() != r {
            return Err(format!(
                "indices {:?} and data {:?} differ in rank",
                i.shape, x.shape
            ));
        }
        let idx = i.to_i64_vec()?;
        let xs = strides(&x.shape);
        let mut offs = Vec::with_capacity(idx.len());
        let ist = strides(&i.shape);
        for (n, &j) in idx.iter().enumerate() {
            let d = x.shape[a] as i64;
            let j = if j < 0 { j + d } else { j };
            if j < 0 || j >= d {
                return Err(format!(
                    "index {j} is out of range for dim {a} of {:?}",
                    x.shape
                ));
            }
            let mut rem = n;
            let mut o = 0;
            for k in 0..r {
                let c = rem / ist[k];
                rem %= ist[k];
                if k != a && c >= x.shape[k] {
                    return Err(format!("indices {:?} exceed data {:?}", i.shape, x.shape));
                }
                o += if k == a { j as usize } else { c } * xs[k];
            }
            offs.push(o);
        }
        Ok(vec![take(x, &offs, i.shape.clone())?])
    }
}

/// `Shape` (with `start`/`end`).
#[derive(Debug)]
pub struct Shape {
    /// First dim.
    pub start: i64,
    /// One past the last dim (`None`: the rank).
    pub end: Option<i64>,
}

impl Kernel for Shape {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let r = x.rank() as i64;
        let fix = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
        let s = fix(self.start);
        let e = fix(self.end.unwrap_or(r)).max(s);
        let v: Vec<i64> = x.shape[s..e].iter().map(|&d| d as i64).collect();
        Ok(vec![Tensor::i64(vec![v.len()], v)?])
    }
}

/// `Size`.
#[derive(Debug)]
pub struct Size;

impl Kernel for Size {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        Ok(vec![Tensor::i64(
            vec![],
            vec![arg(inputs, 0)?.numel() as i64],
        )?])
    }
}

/// `Expand` to a shape (numpy broadcasting both ways).
#[derive(Debug)]
pub struct Expand;

impl Kernel for Expand {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let s: Vec<usize> = arg(inputs, 1)?
            .to_i64_vec()?
            .iter()
            .map(|&d| dim(d))
            .collect::<Result<_, _>>()?;
        let shape = broadcast_shape(&x.shape, &s)?;
        let offs = broadcast_offsets(&x.shape, &shape)?;
        Ok(vec![take(x, &offs, shape)?])
    }
}

/// `Tile` by repeats (input 1).
#[derive(Debug)]
pub struct Tile;

impl Kernel for Tile {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let reps = arg(inputs, 1)?.to_i64_vec()?;
        if reps.len() != x.rank() {
            return Err(format!("repeats {reps:?} for shape {:?}", x.shape));
        }
        let shape: Vec<usize> = x
            .shape
            .iter()
            .zip(&reps)
            .map(|(&d, &r)| Ok(d * dim(r)?))
            .collect::<Result<_, String>>()?;
        let st = strides(&x.shape);
        let n = numel(&shape).ok_or("overflow")?;
        let ost = strides(&shape);
        let offs = (0..n)
            .map(|i| {
                (0..shape.len())
                    .map(|d| ((i / ost[d]) % shape[d]) % x.shape[d] * st[d])
                    .sum()
            })
            .collect::<Vec<usize>>();
        Ok(vec![take(x, &offs, shape)?])
    }
}

/// Padding modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
    Wrap,
}

/// `Pad` (pads from an attribute or input 1, value from an attribute or
/// input 2, axes from input 3).
#[derive(Debug)]
pub struct Pad {
    /// The mode.
    pub mode: PadMode,
    /// Pads from an attribute (opset < 11).
    pub pads: Option<Vec<i64>>,
    /// The constant from an attribute (opset < 11).
    pub value: f64,
}

impl Kernel for Pad {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let r = x.rank();
        let given = ints(inputs, &self.pads, 1)?.ok_or("no pads")?;
        let axes: Vec<usize> = match opt(inputs, 3) {
            Some(t) => t
                .to_i64_vec()?
                .iter()
                .map(|&a| axis(a, r))
                .collect::<Result<_, _>>()?,
            None => (0..r).collect(),
        };
        if given.len() != 2 * axes.len() {
            return Err(format!("pads {given:?} for {} axes", axes.len()));
        }
        let mut pb = vec![0i64; r];
        let mut pe = vec![0i64; r];
        for (i, &a) in axes.iter().enumerate() {
            pb[a] = given[i];
            pe[a] = given[axes.len() + i];
        }
        let shape: Vec<usize> = (0..r)
            .map(|d| dim(x.shape[d] as i64 + pb[d] + pe[d]))
            .collect::<Result<_, _>>()?;
        let value = match opt(inputs, 2) {
            Some(v) if v.numel() >= 1 => v.clone().reshaped(vec![v.numel()])?,
            _ => Tensor::new(vec![1], Data::F64(vec![self.value]))?.cast(x.dtype())?,
        };
        if value.dtype() != x.dtype() {
            return Err(format!(
                "constant_value is {} but data is {}",
                value.dtype(),
                x.dtype()
            ));
        }
        // Offsets into x, with usize::MAX standing for the constant.
        let st = strides(&x.shape);
        let n = numel(&shape).ok_or("overflow")?;
        let ost = strides(&shape);
        let mut offs = Vec::with_capacity(n);
        for i in 0..n {
            let mut o = 0usize;
            let mut constant = false;
            for d in 0..r {
                let c = ((i / ost[d]) % shape[d]) as i64 - pb[d];
                let len = x.shape[d] as i64;
                let c = if (0..len).contains(&c) {
                    c
                } else {
                    match self.mode {
                        PadMode::Constant => {
                            constant = true;
                            0
                        }
                        PadMode::Edge => c.clamp(0, len - 1),
                        PadMode::Wrap => c.rem_euclid(len.max(1)),
                        PadMode::Reflect => {
                            if len == 1 {
                                0
                            } else {
                                let period = 2 * (len - 1);
                                let m = c.rem_euclid(period);
                                if m < len { m } else { period - m }
                            }
                        }
                    }
                };
                if len == 0 && !constant {
                    return Err(format!(
                        "cannot pad an empty dim {d} in mode {:?}",
                        self.mode
                    ));
                }
                o += c as usize * st[d];
            }
            offs.push(if constant { usize::MAX } else { o });
        }
        let (d, v) = (&x.data, &value.data);
        macro_rules! go {
            ($($var:ident),*) => {
                match (d, v) {
                    $((Data::$var(a), Data::$var(c)) => Data::$var(offs.iter().map(|&o| if o == usize::MAX { c[0] } else { a[o] }).collect()),)*
                    _ => return Err("dtype mismatch".into()),
                }
            };
        }
        let data = go!(
            F32, F64, F16, BF16, I8, I16, I32, I64, U8, U16, U32, U64, Bool
        );
        Ok(vec![Tensor::new(shape, data)?])
    }
}

/// `ConstantOfShape`: a tensor of the shape in input 0 filled with `value`.
#[derive(Debug)]
pub struct ConstantOfShape {
    /// The one-element fill value (float32 0 by default).
    pub value: Tensor,
}

impl Kernel for ConstantOfShape {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let shape: Vec<usize> = arg(inputs, 0)?
            .to_i64_vec()?
            .iter()
            .map(|&d| dim(d))
            .collect::<Result<_, _>>()?;
        let n = numel(&shape).ok_or("overflow")?;
        if self.value.numel() != 1 {
            return Err("value must have one element".into());
        }
        let data = map_data!(&self.value.data, v => vec![v[0]; n]);
        Ok(vec![Tensor::new(shape, data)?])
    }
}

/// `Range(start, limit, delta)`.
#[derive(Debug)]
pub struct Range;

impl Kernel for Range {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (s, l, d) = (arg(inputs, 0)?, arg(inputs, 1)?, arg(inputs, 2)?);
        let dt = s.dtype();
        if let (Some(s), Some(l), Some(d)) = (
            s.data.to_i64_vec(),
            l.data.to_i64_vec(),
            d.data.to_i64_vec(),
        ) {
            let (s, l, d) = (s[0], l[0], d[0]);
            if d == 0 {
                return Err("delta is 0".into());
            }
            let n = ((l - s) as f64 / d as f64).ceil().max(0.0) as usize;
            let v: Vec<i64> = (0..n as i64).map(|i| s + i * d).collect();
            return Ok(vec![Tensor::i64(vec![n], v)?.cast(dt)?]);
        }
        let (s, l, d) = (
            s.data.to_f64_vec()[0],
            l.data.to_f64_vec()[0],
            d.data.to_f64_vec()[0],
        );
        let n = ((l - s) / d).ceil().max(0.0) as usize;
        // Accumulate in the output precision, as onnxruntime does.
        let out = crate::by_float!(dt, T => {
            let (st, dl) = (T::of(s), T::of(d));
            let v: Vec<T> = (0..n).map(|i| st + T::of(i as f64) * dl).collect();
            super::float_out(dt, vec![n], v)?
        });
        Ok(vec![out])
    }
}

/// `DepthToSpace` (DCR or CRD) and `SpaceToDepth`.
#[derive(Debug)]
pub struct DepthSpace {
    /// Block size.
    pub block: usize,
    /// SpaceToDepth rather than DepthToSpace.
    pub to_depth: bool,
    /// DepthToSpace mode CRD.
    pub crd: bool,
}

impl Kernel for DepthSpace {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        if x.rank() != 4 || self.block == 0 {
            return Err(format!("input {:?} must be 4-D", x.shape));
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let b = self.block;
        let (tmp_shape, perm, out) = if self.to_depth {
            if h % b != 0 || w % b != 0 {
                return Err(format!("{:?} not divisible by block {b}", x.shape));
            }
            (
                vec![n, c, h / b, b, w / b, b],
                if self.crd {
                    vec![0, 1, 3, 5, 2, 4]
                } else {
                    vec![0, 3, 5, 1, 2, 4]
                },
                vec![n, c * b * b, h / b, w / b],
            )
        } else {
            if c % (b * b) != 0 {
                return Err(format!("{:?} not divisible by block {b}^2", x.shape));
            }
            if self.crd {
                (
                    vec![n, c / (b * b), b, b, h, w],
                    vec![0, 1, 4, 2, 5, 3],
                    vec![n, c / (b * b), h * b, w * b],
                )
            } else {
                (
                    vec![n, b, b, c / (b * b), h, w],
                    vec![0, 3, 4, 1, 5, 2],
                    vec![n, c / (b * b), h * b, w * b],
                )
            }
        };
        let t = transpose(&x.clone().reshaped(tmp_shape)?, &perm)?;
        Ok(vec![t.reshaped(out)?])
    }
}

/// `Trilu`: keeps the upper (or lower) triangle from diagonal `k`.
#[derive(Debug)]
pub struct Trilu {
    /// Upper rather than lower.
    pub upper: bool,
}

impl Kernel for Trilu {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let k = opt(inputs, 1)
            .map(|t| t.to_i64_vec())
            .transpose()?
            .map_or(0, |v| v.first().copied().unwrap_or(0));
        if x.rank() < 2 {
            return Err("Trilu needs at least 2 dims".into());
        }
        let (r, c) = (x.shape[x.rank() - 2], x.shape[x.rank() - 1]);
        let keep = |i: usize| {
            let (row, col) = (((i / c) % r.max(1)) as i64, (i % c.max(1)) as i64);
            if self.upper {
                col - row >= k
            } else {
                col - row <= k
            }
        };
        let data = map_data!(&x.data, v => v.iter().enumerate().map(|(i, &e)| if keep(i) { e } else { Default::default() }).collect());
        Ok(vec![Tensor::new(x.shape.clone(), data)?])
    }
}

/// `NonZero`: the indices of non-zero elements, one row per dim.
#[derive(Debug)]
pub struct NonZero;

impl Kernel for NonZero {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let v = x.data.to_f64_vec();
        let nz: Vec<usize> = v
            .iter()
            .enumerate()
            .filter(|(_, e)| **e != 0.0)
            .map(|(i, _)| i)
            .collect();
        let r = x.rank().max(1);
        let shape = if x.rank() == 0 {
            vec![1]
        } else {
            x.shape.clone()
        };
        let st = strides(&shape);
        let mut out = vec![0i64; r * nz.len()];
        for (j, &i) in nz.iter().enumerate() {
            for d in 0..r {
                out[d * nz.len() + j] = ((i / st[d]) % shape[d]) as i64;
            }
        }
        let rows = if x.rank() == 0 { 0 } else { r };
        if rows == 0 {
            return Ok(vec![Tensor::i64(vec![0, nz.len()], vec![])?]);
        }
        Ok(vec![Tensor::i64(vec![rows, nz.len()], out)?])
    }
}

/// `CumSum` along the axis in input 1.
#[derive(Debug)]
pub struct CumSum {
    /// Exclude the current element.
    pub exclusive: bool,
    /// Sum from the end.
    pub reverse: bool,
    /// A running product (CumProd) rather than a sum.
    pub prod: bool,
}

impl Kernel for CumSum {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let a = axis(
            arg(inputs, 1)?
                .to_i64_vec()?
                .first()
                .copied()
                .ok_or("no axis")?,
            x.rank(),
        )?;
        let d = x.shape[a];
        let outer: usize = x.shape[..a].iter().product();
        let inner: usize = x.shape[a + 1..].iter().product();
        let dt = x.dtype();
        let v = x.data.to_f64_vec();
        let ints = x.data.to_i64_vec();
        let mut out = vec![0f64; v.len()];
        let mut iout = vec![0i64; v.len()];
        for o in 0..outer {
            for i in 0..inner {
                let (mut acc, mut iacc) = if self.prod {
                    (1f64, 1i64)
                } else {
                    (0f64, 0i64)
                };
                for s in 0..d {
                    let j = if self.reverse { d - 1 - s } else { s };
                    let at = (o * d + j) * inner + i;
                    if self.exclusive {
                        out[at] = acc;
                        iout[at] = iacc;
                    }
                    if self.prod {
                        acc *= v[at];
                    } else {
                        acc += v[at];
                    }
                    if let Some(iv) = &ints {
                        iacc = if self.prod {
                            iacc.wrapping_mul(iv[at])
                        } else {
                            iacc.wrapping_add(iv[at])
                        };
                    }
                    if !self.exclusive {
                        out[at] = acc;
                        iout[at] = iacc;
                    }
                }
            }
        }
        let t = if ints.is_some() {
            Tensor::i64(x.shape.clone(), iout)?
        } else {
            Tensor::new(x.shape.clone(), Data::F64(out))?
        };
        Ok(vec![t.cast(dt)?])
    }
}

/// `OneHot(indices, depth, values)` along `axis`.
#[derive(Debug)]
pub struct OneHot {
    /// The new axis.
    pub axis: i64,
}

impl Kernel for OneHot {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (i, d, v) = (arg(inputs, 0)?, arg(inputs, 1)?, arg(inputs, 2)?);
        let idx = i.data.to_f64_vec();
        let depth = *d.data.to_f64_vec().first().ok_or("no depth")? as i64;
        if depth < 0 || v.numel() != 2 {
            return Err("bad depth or values".into());
        }
        let r = i.rank() + 1;
        let a = axis(self.axis, r)?;
        let mut shape = i.shape.clone();
        shape.insert(a, depth as usize);
        let outer: usize = i.shape[..a].iter().product();
        let inner: usize = i.shape[a..].iter().product();
        let n = numel(&shape).ok_or("overflow")?;
        let mut offs = vec![0usize; n];
        for o in 0..outer {
            for k in 0..inner {
                let mut j = idx[o * inner + k] as i64;
                if j < 0 {
                    j += depth;
                }
                if (0..depth).contains(&j) {
                    offs[(o * depth as usize + j as usize) * inner + k] = 1;
                }
            }
        }
        Ok(vec![take(v, &offs, shape)?])
    }
}

/// `ScatterElements` / `ScatterND` with reduction `none`.
#[derive(Debug)]
pub struct Scatter {
    /// The axis (ScatterElements); `None` for ScatterND.
    pub axis: Option<i64>,
    /// How an update combines with the value there (`None`: replaces it).
    pub reduction: Option<crate::kernels::elementwise::BinOp>,
}

impl Kernel for Scatter {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, i, u) = (arg(inputs, 0)?, arg(inputs, 1)?, arg(inputs, 2)?);
        if u.dtype() != x.dtype() {
            return Err("updates and data differ in dtype".into());
        }
        let idx = i.to_i64_vec()?;
        let xs = strides(&x.shape);
        let r = x.rank();
        // (destination offset, update offset) pairs.
        let mut pairs = Vec::new();
        match self.axis {
            Some(ax) => {
                let a = axis(ax, r)?;
                if i.shape != u.shape || i.rank() != r {
                    return Err("indices and updates must match in shape".into());
                }
                let ist = strides(&i.shape);
                for (n, &j) in idx.iter().enumerate() {
                    let dd = x.shape[a] as i64;
                    let j = if j < 0 { j + dd } else { j };
                    if !(0..dd).contains(&j) {
                        return Err(format!("index {j} out of range"));
                    }
                    let mut o = 0;
                    for k in 0..r {
                        let c = (n / ist[k]) % i.shape[k];
                        o += if k == a { j as usize } else { c } * xs[k];
                    }
                    pairs.push((o, n));
                }
            }
            None => {
                let q = *i.shape.last().ok_or("indices are a scalar")?;
                if q > r {
                    return Err("index tuples longer than the rank".into());
                }
                let slice: usize = x.shape[q..].iter().product();
                for (t, tuple) in idx.chunks(q.max(1)).enumerate() {
                    let mut o = 0;
                    for (k, &j) in tuple.iter().enumerate().take(q) {
                        let dd = x.shape[k] as i64;
                        let j = if j < 0 { j + dd } else { j };
                        if !(0..dd).contains(&j) {
                            return Err(format!("index {j} out of range"));
                        }
                        o += j as usize * xs[k];
                    }
                    for e in 0..slice {
                        pairs.push((o + e, t * slice + e));
                    }
                }
            }
        }
        if let Some(op) = self.reduction {
            use crate::kernels::elementwise::BinOp;
            // Reductions through float64 (exact for the float and 32-bit
            // integer types) or i64.
            if x.dtype().is_floating_point() {
                let mut d = x.data.to_f64_vec();
                let s = u.data.to_f64_vec();
                for &(o, n) in &pairs {
                    let a = *d.get(o).ok_or("destination out of range")?;
                    let b = *s.get(n).ok_or("update out of range")?;
                    d[o] = match op {
                        BinOp::Add => a + b,
                        BinOp::Mul => a * b,
                        BinOp::Max => a.max(b),
                        _ => a.min(b),
                    };
                }
                return Ok(vec![
                    Tensor::new(x.shape.clone(), Data::F64(d))?.cast(x.dtype())?,
                ]);
            }
            let mut d = x.to_i64_vec()?;
            let s = u.to_i64_vec()?;
            for &(o, n) in &pairs {
                let a = *d.get(o).ok_or("destination out of range")?;
                let b = *s.get(n).ok_or("update out of range")?;
                d[o] = match op {
                    BinOp::Add => a.wrapping_add(b),
                    BinOp::Mul => a.wrapping_mul(b),
                    BinOp::Max => a.max(b),
                    _ => a.min(b),
                };
            }
            return Ok(vec![Tensor::i64(x.shape.clone(), d)?.cast(x.dtype())?]);
        }
        let mut out = x.clone();
        macro_rules! go {
            ($($var:ident),*) => {
                match (&mut out.data, &u.data) {
                    $((Data::$var(d), Data::$var(s)) => {
                        for &(o, n) in &pairs {
                            *d.get_mut(o).ok_or("destination out of range")? = *s.get(n).ok_or("update out of range")?;
                        }
                    })*
                    _ => return Err("dtype mismatch".into()),
                }
            };
        }
        go!(
            F32, F64, F16, BF16, I8, I16, I32, I64, U8, U16, U32, U64, Bool
        );
        Ok(vec![out])
    }
}

/// `GatherND` (batch_dims 0).
#[derive(Debug)]
pub struct GatherNd;

impl Kernel for GatherNd {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, i) = (arg(inputs, 0)?, arg(inputs, 1)?);
        let idx = i.to_i64_vec()?;
        let q = *i.shape.last().ok_or("indices are a scalar")?;
        if q > x.rank() || q == 0 {
            return Err("bad index tuple length".into());
        }
        let xs = strides(&x.shape);
        let slice: usize = x.shape[q..].iter().product();
        let mut offs = Vec::new();
        for tuple in idx.chunks(q) {
            let mut o = 0;
            for (k, &j) in tuple.iter().enumerate() {
                let dd = x.shape[k] as i64;
                let j = if j < 0 { j + dd } else { j };
                if !(0..dd).contains(&j) {
                    return Err(format!("index {j} out of range"));
                }
                o += j as usize * xs[k];
            }
            offs.extend(o..o + slice);
        }
        let mut shape = i.shape[..i.rank() - 1].to_vec();
        shape.extend(&x.shape[q..]);
        Ok(vec![take(x, &offs, shape)?])
    }
}

/// The number of elements, for messages.
pub fn describe(t: &Tensor) -> String {
    with_data!(&t.data, v => format!("{} {:?} ({} values)", t.dtype(), t.shape, v.len()))
}

/// `Compress`: the slices along `axis` (or of the flattened input) where
/// the condition is true.
#[derive(Debug)]
pub struct Compress {
    /// The axis; `None` flattens.
    pub axis: Option<i64>,
}

impl Kernel for Compress {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, c) = (arg(inputs, 0)?, arg(inputs, 1)?);
        let Data::Bool(cond) = &c.data else {
            return Err(format!("condition is {}, bool expected", c.dtype()));
        };
        let (shape, a) = match self.axis {
            Some(ax) => (x.shape.clone(), axis(ax, x.rank())?),
            None => (vec![x.numel()], 0),
        };
        let d = shape[a];
        let keep: Vec<usize> = (0..d.min(cond.len())).filter(|&i| cond[i]).collect();
        let outer: usize = shape[..a].iter().product();
        let inner: usize = shape[a + 1..].iter().product();
        let mut offs = Vec::with_capacity(outer * keep.len() * inner);
        for o in 0..outer {
            for &k in &keep {
                let base = (o * d + k) * inner;
                offs.extend(base..base + inner);
            }
        }
        let mut out_shape = shape.clone();
        out_shape[a] = keep.len();
        Ok(vec![take(x, &offs, out_shape)?])
    }
}

/// `HannWindow`, `HammingWindow`, `BlackmanWindow` of the length in input 0.
#[derive(Debug)]
pub struct Window {
    /// 0 Hann, 1 Hamming, 2 Blackman.
    pub kind: u8,
    /// Periodic (N in the denominator) rather than symmetric (N - 1).
    pub periodic: bool,
    /// The output dtype.
    pub dtype: netport_tensor::DType,
}

impl Kernel for Window {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let n = *arg(inputs, 0)?.to_i64_vec()?.first().ok_or("no size")?;
        let n = dim(n)?;
        let den = if self.periodic {
            n as f64
        } else {
            n as f64 - 1.0
        };
        let pi = std::f64::consts::PI;
        let v: Vec<f64> = (0..n)
            .map(|i| {
                let x = i as f64;
                match self.kind {
                    0 => (x * pi / den).sin().powi(2),
                    1 => {
                        let a = 25.0 / 46.0;
                        a - (1.0 - a) * (x * 2.0 * pi / den).cos()
                    }
                    _ => {
                        0.42 - 0.5 * (x * 2.0 * pi / den).cos() + 0.08 * (x * 4.0 * pi / den).cos()
                    }
                }
            })
            .collect();
        Ok(vec![Tensor::new(
            vec![n],
            Data::from_f64(self.dtype, &v).ok_or("dtype")?,
        )?])
    }
}

/// `CenterCropPad`: crops or zero-pads the given axes to a shape, centred.
#[derive(Debug)]
pub struct CenterCropPad {
    /// The axes (`None`: all).
    pub axes: Option<Vec<i64>>,
}

impl Kernel for CenterCropPad {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, s) = (arg(inputs, 0)?, arg(inputs, 1)?);
        let r = x.rank();
        let want = s.to_i64_vec()?;
        let axes: Vec<usize> = match &self.axes {
            Some(a) => a.iter().map(|&v| axis(v, r)).collect::<Result<_, _>>()?,
            None => (0..r).collect(),
        };
        if want.len() != axes.len() {
            return Err(format!("shape {want:?} for axes {axes:?}"));
        }
        let mut shape = x.shape.clone();
        // Per axis: offset of output index into the input (may be negative).
        let mut shift = vec![0i64; r];
        for (i, &a) in axes.iter().enumerate() {
            let (d, w) = (x.shape[a] as i64, want[i]);
            shape[a] = dim(w)?;
            shift[a] = if w < d { (d - w) / 2 } else { -((w - d) / 2) };
        }
        let n = numel(&shape).ok_or("overflow")?;
        let ost = strides(&shape);
        let ist = strides(&x.shape);
        let offs: Vec<usize> = (0..n)
            .map(|i| {
                let mut o = 0usize;
                for d in 0..r {
                    let c = ((i / ost[d]) % shape[d]) as i64 + shift[d];
                    if c < 0 || c >= x.shape[d] as i64 {
                        return usize::MAX;
                    }
                    o += c as usize * ist[d];
                }
                o
            })
            .collect();
        let data = map_data!(&x.data, v => offs.iter().map(|&o| if o == usize::MAX { Default::default() } else { v[o] }).collect());
        Ok(vec![Tensor::new(shape, data)?])
    }
}

/// `ReverseSequence`: reverses the first `sequence_lens[b]` steps along
/// the time axis of each batch entry.
#[derive(Debug)]
pub struct ReverseSequence {
    /// The batch axis.
    pub batch_axis: i64,
    /// The time axis.
    pub time_axis: i64,
}

impl Kernel for ReverseSequence {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, l) = (arg(inputs, 0)?, arg(inputs, 1)?);
        let r = x.rank();
        let (ba, ta) = (axis(self.batch_axis, r)?, axis(self.time_axis, r)?);
        let lens = l.to_i64_vec()?;
        if lens.len() != x.shape[ba] {
            return Err("sequence_lens does not match the batch".into());
        }
        let st = strides(&x.shape);
        let offs: Vec<usize> = (0..x.numel())
            .map(|i| {
                let b = (i / st[ba]) % x.shape[ba];
                let t = (i / st[ta]) % x.shape[ta];
                let len = lens[b].clamp(0, x.shape[ta] as i64) as usize;
                if t < len {
                    i - t * st[ta] + (len - 1 - t) * st[ta]
                } else {
                    i
                }
            })
            .collect();
        Ok(vec![take(x, &offs, x.shape.clone())?])
    }
}

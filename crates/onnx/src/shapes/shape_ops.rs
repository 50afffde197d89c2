//! Shape ops, with data propagation of small int64 tensors as onnx does with
//! `data_prop=True`: Shape, Size, Reshape (allowzero from 14), Flatten, Transpose,
//! Squeeze / Unsqueeze (axes an input from 13), Concat, Gather, Slice,
//! Constant, GatherElements, Expand, Split, Pad, ConstantOfShape, Range.

use super::{Dim, NodeCx, RuleResult, TensorType, axis, fixed};
use crate::proto::tensor_proto::DataType;

const INT64: i32 = DataType::Int64 as i32;

/// Shape (start/end from 15): a 1-d int64 whose contents are the dims.
pub fn shape(cx: &mut NodeCx<'_>) -> RuleResult {
    let Some(x) = cx.shape(0).map(<[_]>::to_vec) else {
        cx.set(0, TensorType::new(INT64, vec![Dim::Unknown]));
        return Ok(());
    };
    let r = x.len() as i64;
    let clamp = |v: i64| (if v < 0 { v.saturating_add(r) } else { v }).clamp(0, r) as usize;
    let start = clamp(cx.attr_i("start", 0));
    let end = clamp(cx.attr_i("end", r));
    let part = if start < end {
        x[start..end].to_vec()
    } else {
        Vec::new()
    };
    cx.set(
        0,
        TensorType::new(INT64, vec![Dim::Fixed(part.len() as i64)]),
    );
    cx.set_data(0, part);
    Ok(())
}

/// Size: an int64 scalar; its value propagated when every dim is fixed.
pub fn size(cx: &mut NodeCx<'_>) -> RuleResult {
    cx.set(0, TensorType::new(INT64, Vec::new()));
    if let Some(Dim::Fixed(n)) = cx.shape(0).map(product) {
        cx.set_data(0, vec![Dim::Fixed(n)]);
    }
    Ok(())
}

/// Reshape: the target from a constant, or from 14 on a propagated shape.
pub fn reshape(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    // before opset 14 onnx reads the target only from a constant, and
    // without one infers no shape
    let target = if cx.version >= 14 {
        cx.data(1).map(<[_]>::to_vec)
    } else {
        cx.ints(1).map(|v| v.into_iter().map(Dim::Fixed).collect())
    };
    let Some(target) = target else {
        if cx.version < 14 {
            cx.set(0, TensorType::unranked(elem));
        } else if let Some(dims) = match cx.shape(1) {
            Some([Dim::Fixed(n)]) => super::unknown_dims(*n),
            _ => None,
        } {
            cx.set(0, TensorType::new(elem, dims));
        } else {
            cx.set(0, TensorType::unranked(elem));
        }
        return Ok(());
    };
    let allowzero = cx.version >= 14 && cx.attr_i("allowzero", 0) != 0;
    let input = cx.shape(0).map(<[_]>::to_vec);
    let mut out = Vec::with_capacity(target.len());
    let mut minus_one = None;
    let mut product: Option<i64> = Some(1);
    for (i, d) in target.iter().enumerate() {
        match d {
            Dim::Fixed(-1) => {
                if minus_one.is_some() {
                    return Err("more than one -1 in the target shape".to_string());
                }
                minus_one = Some(i);
                out.push(Dim::Unknown);
            }
            Dim::Fixed(0) if !allowzero => {
                let copied = input.as_ref().and_then(|s| s.get(i)).cloned();
                match copied {
                    Some(d) => {
                        product = match (&d, product) {
                            (Dim::Fixed(v), Some(p)) => p.checked_mul(*v),
                            _ => None,
                        };
                        out.push(d);
                    }
                    None if input.is_some() => {
                        return Err(format!("dim {i} is 0 but the input has no dim {i}"));
                    }
                    None => {
                        product = None;
                        out.push(Dim::Unknown);
                    }
                }
            }
            Dim::Fixed(v) if *v < 0 => {
                return Err(format!("invalid dim {v} in the target shape"));
            }
            Dim::Fixed(v) => {
                product = product.and_then(|p| p.checked_mul(*v));
                out.push(Dim::Fixed(*v));
            }
            other => {
                product = None;
                out.push(other.clone());
            }
        }
    }
    if let (Some(i), Some(p), Some(input)) = (minus_one, product, input.as_ref()) {
        let total: Option<i64> = input
            .iter()
            .try_fold(1i64, |acc, d| d.value().and_then(|v| acc.checked_mul(v)));
        if let Some(total) = total {
            if p == 0 || total % p != 0 {
                return Err(format!("cannot reshape {total} elements into {p} times -1"));
            }
            out[i] = Dim::Fixed(total / p);
        }
    }
    cx.set(0, TensorType::new(elem, out));
    Ok(())
}

/// The product of dims as onnx's `multiplyDims`: 1 times a symbolic dim
/// keeps the symbol, any other mix is unknown.
fn product(dims: &[Dim]) -> Dim {
    dims.iter().fold(Dim::Fixed(1), |acc, d| match (acc, d) {
        (Dim::Fixed(a), Dim::Fixed(b)) => a.checked_mul(*b).map_or(Dim::Unknown, Dim::Fixed),
        (Dim::Fixed(1), d) => d.clone(),
        (a, Dim::Fixed(1)) => a,
        _ => Dim::Unknown,
    })
}

/// Flatten: [prod(dims[..axis]), prod(dims[axis..])].
pub fn flatten(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let Some(x) = cx.shape(0) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let r = x.len() as i64;
    let a = cx.attr_i("axis", 1);
    let a = if a < 0 { a + r } else { a };
    if a < 0 || a > r {
        return Err(format!("axis {a} is out of range for rank {r}"));
    }
    let a = a as usize;
    let dims = vec![product(&x[..a]), product(&x[a..])];
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// Transpose: perm, reversed dims by default.
pub fn transpose(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let Some(x) = cx.shape(0) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let perm = cx
        .attr_ints("perm")
        .unwrap_or_else(|| (0..x.len() as i64).rev().collect());
    if perm.len() != x.len() {
        return Err(format!("perm {perm:?} does not fit rank {}", x.len()));
    }
    let dims = perm
        .iter()
        .map(|&p| axis(p, x.len()).map(|p| x[p].clone()))
        .collect::<Result<Vec<_>, _>>()?;
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

fn axes_of(cx: &NodeCx<'_>) -> Result<Option<Vec<i64>>, ()> {
    if cx.version >= 13 {
        if !cx.has_input(1) {
            return Ok(None);
        }
        cx.ints(1).map(Some).ok_or(())
    } else {
        Ok(cx.attr_ints("axes"))
    }
}

/// Squeeze: the listed size-1 dims, or every fixed 1 when no axes.
pub fn squeeze(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let Ok(axes) = axes_of(cx) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let Some(x) = cx.shape(0).map(<[_]>::to_vec) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let keep: Vec<bool> = match axes {
        Some(a) => {
            let a = a
                .iter()
                .map(|&v| axis(v, x.len()))
                .collect::<Result<Vec<_>, _>>()?;
            for &i in &a {
                if let Dim::Fixed(v) = x[i]
                    && v != 1
                {
                    return Err(format!("cannot squeeze dim {i} of size {v}"));
                }
            }
            (0..x.len()).map(|i| !a.contains(&i)).collect()
        }
        None => {
            if x.iter().any(|d| !matches!(d, Dim::Fixed(_))) {
                cx.set(0, TensorType::unranked(elem));
                return Ok(());
            }
            x.iter().map(|d| *d != Dim::Fixed(1)).collect()
        }
    };
    let dims: Vec<Dim> = x
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(d, _)| d.clone())
        .collect();
    cx.set(0, TensorType::new(elem, dims));
    if let Some(d) = cx.data(0).map(<[_]>::to_vec)
        && d.len() == 1
    {
        cx.set_data(0, d);
    }
    Ok(())
}

/// Unsqueeze: size-1 dims inserted at the axes of the output.
pub fn unsqueeze(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let axes = match axes_of(cx) {
        Ok(Some(a)) => a,
        Ok(None) => return Err("axes are missing".to_string()),
        Err(()) => {
            cx.set(0, TensorType::unranked(elem));
            return Ok(());
        }
    };
    let Some(x) = cx.shape(0).map(<[_]>::to_vec) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let rank = x.len() + axes.len();
    let mut at = axes
        .iter()
        .map(|&a| axis(a, rank))
        .collect::<Result<Vec<_>, _>>()?;
    at.sort_unstable();
    if at.windows(2).any(|w| w[0] == w[1]) {
        return Err(format!("repeated axes {axes:?}"));
    }
    let mut rest = x.into_iter();
    let dims: Vec<Dim> = (0..rank)
        .map(|i| {
            if at.contains(&i) {
                Dim::Fixed(1)
            } else {
                rest.next().unwrap_or(Dim::Unknown)
            }
        })
        .collect();
    let scalar_in = dims.len() == 1;
    cx.set(0, TensorType::new(elem, dims));
    if scalar_in && let Some(d) = cx.data(0).map(<[_]>::to_vec) {
        cx.set_data(0, d);
    }
    Ok(())
}

/// Concat along `axis`; contents concatenated for 1-d shape tensors.
pub fn concat(cx: &mut NodeCx<'_>) -> RuleResult {
    let n = cx.input_count();
    let elem = (0..n).map(|i| cx.elem(i)).find(|&e| e != 0).unwrap_or(0);
    let shapes: Option<Vec<Vec<Dim>>> = (0..n).map(|i| cx.shape(i).map(<[_]>::to_vec)).collect();
    let Some(shapes) = shapes else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let Some(first) = shapes.first() else {
        return Err("no inputs".to_string());
    };
    let rank = first.len();
    if shapes.iter().any(|s| s.len() != rank) {
        return Err("inputs of different ranks".to_string());
    }
    let a = axis(cx.attr_i("axis", 0), rank)?;
    let mut dims = Vec::with_capacity(rank);
    for k in 0..rank {
        if k == a {
            dims.push(
                shapes
                    .iter()
                    .try_fold(0i64, |acc, s| s[k].value().and_then(|v| acc.checked_add(v)))
                    .map_or(Dim::Unknown, Dim::Fixed),
            );
            continue;
        }
        let mut d = Dim::Unknown;
        for s in &shapes {
            match (&d, &s[k]) {
                (Dim::Fixed(u), Dim::Fixed(v)) if u != v => {
                    return Err(format!("dim {k}: {u} and {v} differ"));
                }
                (Dim::Fixed(_), _) => {}
                (_, Dim::Fixed(v)) => d = Dim::Fixed(*v),
                (Dim::Unknown, Dim::Param(p)) => d = Dim::Param(p.clone()),
                _ => {}
            }
        }
        dims.push(d);
    }
    cx.set(0, TensorType::new(elem, dims));
    if rank == 1 {
        // an input without contents but of known length adds unknown
        // entries, as onnx's Concat data propagation does
        let data: Option<Vec<Dim>> = (0..n)
            .map(|i| match (cx.data(i), cx.shape(i)) {
                (Some(d), _) => Some(d.to_vec()),
                (None, Some([Dim::Fixed(k)])) => super::unknown_dims(*k),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.concat());
        if let Some(d) = data {
            cx.set_data(0, d);
        }
    }
    Ok(())
}

/// Gather: data dims with `axis` replaced by the indices' dims.
pub fn gather(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let (Some(x), Some(ind)) = (
        cx.shape(0).map(<[_]>::to_vec),
        cx.shape(1).map(<[_]>::to_vec),
    ) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let a = axis(cx.attr_i("axis", 0), x.len())?;
    let mut dims = x[..a].to_vec();
    dims.extend(ind.iter().cloned());
    dims.extend(x[a + 1..].iter().cloned());
    cx.set(0, TensorType::new(elem, dims));
    if x.len() == 1
        && let (Some(d), Some(i)) = (cx.data(0).map(<[_]>::to_vec), cx.ints_any(1))
    {
        let n = d.len() as i64;
        let picked: Option<Vec<Dim>> = i
            .iter()
            .map(|&k| {
                let k = if k < 0 { k + n } else { k };
                usize::try_from(k).ok().and_then(|k| d.get(k).cloned())
            })
            .collect();
        if let Some(p) = picked {
            cx.set_data(0, p);
        }
    }
    Ok(())
}

/// Slice (opset 10+: starts, ends, axes, steps as inputs).
pub fn slice(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let Some(x) = cx.shape(0).map(<[_]>::to_vec) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let (Some(starts), Some(ends)) = (cx.ints(1), cx.ints(2)) else {
        cx.set(0, TensorType::new(elem, vec![Dim::Unknown; x.len()]));
        return Ok(());
    };
    let axes = if cx.has_input(3) {
        match cx.ints(3) {
            Some(a) => a,
            None => {
                cx.set(0, TensorType::new(elem, vec![Dim::Unknown; x.len()]));
                return Ok(());
            }
        }
    } else {
        (0..starts.len() as i64).collect()
    };
    let steps = if cx.has_input(4) {
        match cx.ints(4) {
            Some(s) => s,
            None => {
                cx.set(0, TensorType::new(elem, vec![Dim::Unknown; x.len()]));
                return Ok(());
            }
        }
    } else {
        vec![1; starts.len()]
    };
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err("starts, ends, axes and steps differ in length".to_string());
    }
    let mut dims = x.clone();
    let mut ranges = vec![None; x.len()];
    for k in 0..starts.len() {
        let a = axis(axes[k], x.len())?;
        let step = steps[k];
        if step == 0 {
            return Err("step 0".to_string());
        }
        let Dim::Fixed(n) = x[a] else {
            dims[a] = Dim::Unknown;
            continue;
        };
        let fix = |v: i64, lo: i64, hi: i64| {
            let v = if v < 0 { v.saturating_add(n) } else { v };
            v.max(lo).min(hi)
        };
        let (s, e) = if step > 0 {
            (fix(starts[k], 0, n), fix(ends[k], 0, n))
        } else {
            (fix(starts[k], 0, n - 1), fix(ends[k], -1, n - 1))
        };
        let (s128, e128, st) = (i128::from(s), i128::from(e), i128::from(step));
        let len = if step > 0 {
            if e > s {
                (e128 - s128 + st - 1) / st
            } else {
                0
            }
        } else if s > e {
            (s128 - e128 - st - 1) / -st
        } else {
            0
        };
        let len = i64::try_from(len).unwrap_or(0);
        dims[a] = Dim::Fixed(len);
        ranges[a] = Some((s, step, len));
    }
    cx.set(0, TensorType::new(elem, dims));
    if x.len() == 1
        && let (Some(d), Some((s, step, len))) = (cx.data(0).map(<[_]>::to_vec), ranges[0])
    {
        let picked: Option<Vec<Dim>> = (0..len)
            .map(|j| {
                usize::try_from(s + j * step)
                    .ok()
                    .and_then(|i| d.get(i).cloned())
            })
            .collect();
        if let Some(p) = picked {
            cx.set_data(0, p);
        }
    }
    Ok(())
}

/// Constant: the type of its value; small int64 contents are propagated.
pub fn constant(cx: &mut NodeCx<'_>) -> RuleResult {
    let Some(a) = cx.node.attribute.first() else {
        return Err("Constant without a value".to_string());
    };
    let t = match a.name() {
        "value" => {
            let Some(t) = a.t.as_ref() else {
                return Err("value is not a tensor".to_string());
            };
            let data = super::tensor_ints(t);
            if let Some(d) = data {
                cx.set_data(0, d.into_iter().map(Dim::Fixed).collect());
            }
            TensorType::new(
                t.data_type(),
                t.dims.iter().map(|&d| Dim::Fixed(d)).collect(),
            )
        }
        "value_int" => {
            cx.set_data(0, vec![Dim::Fixed(a.i())]);
            TensorType::new(INT64, vec![])
        }
        "value_ints" => {
            cx.set_data(0, a.ints.iter().map(|&v| Dim::Fixed(v)).collect());
            TensorType::new(INT64, vec![Dim::Fixed(a.ints.len() as i64)])
        }
        "value_float" => TensorType::new(DataType::Float as i32, vec![]),
        "value_floats" => TensorType::new(
            DataType::Float as i32,
            vec![Dim::Fixed(a.floats.len() as i64)],
        ),
        "value_string" => TensorType::new(DataType::String as i32, vec![]),
        "value_strings" => TensorType::new(
            DataType::String as i32,
            vec![Dim::Fixed(a.strings.len() as i64)],
        ),
        _ => return Ok(()),
    };
    cx.set(0, t);
    Ok(())
}

/// GatherElements: the indices' shape, the data's type.
pub fn gather_elements(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let shape = cx.input(1).and_then(|t| t.shape.clone());
    cx.set(
        0,
        TensorType {
            elem_type: elem,
            shape,
        },
    );
    Ok(())
}

/// Expand: the input broadcast with the target shape.
pub fn expand(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let (Some(x), Some(target)) = (cx.shape(0).map(<[_]>::to_vec), shape_input(cx, 1)?) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let dims = super::elementwise::broadcast(&[&x, &target])?;
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// A shape given as input `i`, as onnx's `getShapeInput`: its contents
/// (constant or propagated), else as many unknown dims as its length when
/// that is known (rank inference).
fn shape_input(cx: &NodeCx<'_>, i: usize) -> Result<Option<Vec<Dim>>, String> {
    if let Some(d) = cx.data(i) {
        return Ok(Some(d.to_vec()));
    }
    match cx.shape(i) {
        Some([Dim::Fixed(n)]) => Ok(super::unknown_dims(*n)),
        Some([_]) | None => Ok(None),
        Some(s) => Err(format!(
            "shape input must be 1D tensor, not rank {}",
            s.len()
        )),
    }
}

/// Split: sizes from the `split` attribute (before 13) or input, equal
/// parts otherwise (`num_outputs` from 18, the last part smaller).
pub fn split(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let n = cx.output_count();
    let Some(x) = cx.shape(0).map(<[_]>::to_vec) else {
        for i in 0..n {
            cx.set(i, TensorType::unranked(elem));
        }
        return Ok(());
    };
    let a = axis(cx.attr_i("axis", 0), x.len())?;
    let sizes: Option<Vec<i64>> = if cx.version >= 13 && cx.has_input(1) {
        let Some(sizes) = cx.ints(1) else {
            // sizes not constant: onnx infers no shape at all
            for i in 0..n {
                cx.set(i, TensorType::unranked(elem));
            }
            return Ok(());
        };
        Some(sizes)
    } else if cx.version < 13 && cx.attr("split").is_some() {
        cx.attr_ints("split")
    } else if let Dim::Fixed(total) = x[a] {
        let parts = n as i64;
        if parts == 0 {
            return Ok(());
        }
        if cx.version >= 18 {
            // onnx: chunks of ceil(total / parts), the last one what is
            // left (negative when the chunks overshoot, as onnx says too)
            let (total, parts) = (i128::from(total), i128::from(parts));
            let chunk = (total + parts - 1) / parts;
            (0..parts)
                .map(|i| {
                    let size = if i + 1 < parts {
                        chunk
                    } else {
                        total - chunk * (parts - 1)
                    };
                    i64::try_from(size).ok()
                })
                .collect()
        } else if total % parts == 0 {
            Some(vec![total / parts; n])
        } else {
            return Err(format!("cannot split {total} into {parts} equal parts"));
        }
    } else {
        None
    };
    if let Some(s) = &sizes
        && s.len() != n
    {
        return Err(format!("{} split sizes for {n} outputs", s.len()));
    }
    for i in 0..n {
        let mut dims = x.clone();
        dims[a] = sizes.as_ref().map_or(Dim::Unknown, |s| Dim::Fixed(s[i]));
        cx.set(i, TensorType::new(elem, dims));
    }
    Ok(())
}

/// Pad: each padded axis grows by its begin and end pads.
pub fn pad(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let Some(x) = cx.shape(0).map(<[_]>::to_vec) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let r = x.len();
    let pads = if cx.version >= 11 {
        cx.ints(1)
    } else {
        cx.attr_ints("pads")
    };
    let Some(pads) = pads else {
        cx.set(0, TensorType::new(elem, vec![Dim::Unknown; r]));
        return Ok(());
    };
    let axes: Vec<usize> = if cx.version >= 18 && cx.has_input(3) {
        match cx.ints(3) {
            Some(a) => a.iter().map(|&v| axis(v, r)).collect::<Result<_, _>>()?,
            None => {
                cx.set(0, TensorType::new(elem, vec![Dim::Unknown; r]));
                return Ok(());
            }
        }
    } else {
        (0..r).collect()
    };
    if pads.len() != 2 * axes.len() {
        return Err(format!("{} pads for {} axes", pads.len(), axes.len()));
    }
    let mut dims = x;
    let k = axes.len();
    for (j, &a) in axes.iter().enumerate() {
        dims[a] = match dims[a] {
            Dim::Fixed(v) => {
                super::fixed(i128::from(v) + i128::from(pads[j]) + i128::from(pads[j + k]))
            }
            _ => Dim::Unknown,
        };
    }
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// ConstantOfShape: the dims given by input 0, the type of `value`.
pub fn constant_of_shape(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx
        .attr("value")
        .and_then(|a| a.t.as_ref())
        .map_or(DataType::Float as i32, |t| t.data_type());
    if let Some(d) = cx.data(0).map(<[_]>::to_vec) {
        cx.set(0, TensorType::new(elem, d));
    } else if let Some([Dim::Fixed(n)]) = cx.shape(0) {
        match super::unknown_dims(*n) {
            Some(dims) => cx.set(0, TensorType::new(elem, dims)),
            None => cx.set(0, TensorType::unranked(elem)),
        }
    } else {
        cx.set(0, TensorType::unranked(elem));
    }
    Ok(())
}

/// Range: 1-d, its length computed when start, limit and delta are known.
pub fn range(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let len = match (cx.ints(0), cx.ints(1), cx.ints(2)) {
        (Some(s), Some(l), Some(d)) if s.len() == 1 && l.len() == 1 && d.len() == 1 => {
            if d[0] == 0 {
                return Err("delta 0".to_string());
            }
            let (span, d) = (i128::from(l[0]) - i128::from(s[0]), i128::from(d[0]));
            super::fixed(((span + d - d.signum()) / d).max(0))
        }
        _ => Dim::Unknown,
    };
    cx.set(0, TensorType::new(elem, vec![len]));
    Ok(())
}

/// Tile: each dim times its constant repeat.
pub fn tile(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let Some(x) = cx.shape(0).map(<[_]>::to_vec) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let dims = match cx.ints(1) {
        Some(rep) if rep.len() == x.len() => x
            .iter()
            .zip(&rep)
            .map(|(d, &k)| match d {
                Dim::Fixed(v) => super::fixed(i128::from(*v) * i128::from(k)),
                _ => Dim::Unknown,
            })
            .collect(),
        Some(rep) => {
            return Err(format!("{} repeats for rank {}", rep.len(), x.len()));
        }
        None => vec![Dim::Unknown; x.len()],
    };
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// TopK: values and int64 indices, `axis` of size k (an attribute before 10).
pub fn top_k(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let Some(x) = cx.shape(0).map(<[_]>::to_vec) else {
        cx.set(0, TensorType::unranked(elem));
        cx.set(1, TensorType::unranked(INT64));
        return Ok(());
    };
    let a = axis(cx.attr_i("axis", -1), x.len())?;
    let k = if cx.version >= 10 {
        cx.ints(1).and_then(|k| k.first().copied())
    } else {
        cx.attr("k").map(|a| a.i())
    };
    let mut dims = x;
    dims[a] = k.map_or(Dim::Unknown, Dim::Fixed);
    cx.set(1, TensorType::new(INT64, dims.clone()));
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// OneHot: the indices' dims with the constant depth inserted at `axis`,
/// the type of the values.
pub fn one_hot(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(2);
    let Some(ind) = cx.shape(0).map(<[_]>::to_vec) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let rank = ind.len() + 1;
    let a = axis(cx.attr_i("axis", -1), rank)?;
    let depth = cx
        .ints(1)
        .filter(|d| d.len() == 1)
        .map_or(Dim::Unknown, |d| Dim::Fixed(d[0]));
    let mut dims = ind;
    dims.insert(a, depth);
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// onnx's `Dimension * int`: a fixed dim times the factor, a symbol kept
/// when the factor is 1, unknown otherwise.
fn dim_mul(d: &Dim, k: i64) -> Dim {
    match d {
        Dim::Fixed(v) => super::fixed(i128::from(*v) * i128::from(k)),
        _ if k == 1 => d.clone(),
        _ => Dim::Unknown,
    }
}

/// onnx's `Dimension / int` (integer division of a fixed dim).
fn dim_div(d: &Dim, k: i64) -> Dim {
    match d {
        Dim::Fixed(v) if k != 0 => Dim::Fixed(v / k),
        _ if k == 1 => d.clone(),
        _ => Dim::Unknown,
    }
}

/// DepthToSpace and SpaceToDepth over a 4-d NCHW input.
pub fn depth_space(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let b = cx.attr_i("blocksize", 0);
    if b <= 0 {
        return Err(format!("blocksize must be positive, not {b}"));
    }
    let area = b
        .checked_mul(b)
        .ok_or_else(|| format!("blocksize {b} squared overflows"))?;
    let Some(x) = cx.shape(0) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    if x.len() != 4 {
        return Err(format!(
            "input tensor must be 4-dimensional, not {}",
            x.len()
        ));
    }
    let dims = if cx.node.op_type() == "DepthToSpace" {
        vec![
            x[0].clone(),
            dim_div(&x[1], area),
            dim_mul(&x[2], b),
            dim_mul(&x[3], b),
        ]
    } else {
        vec![
            x[0].clone(),
            dim_mul(&x[1], area),
            dim_div(&x[2], b),
            dim_div(&x[3], b),
        ]
    };
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// Slice before opset 10 (starts, ends and axes as attributes), as onnx's
/// Slice-1: sorted non-negative axes only; a negative axis gives unknown
/// dims of the input's rank, unsorted axes no shape.
pub fn slice_v1(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    cx.set(0, TensorType::unranked(elem));
    let Some(x) = cx.shape(0).map(<[_]>::to_vec) else {
        return Ok(());
    };
    let (Some(mut starts), Some(mut ends)) = (cx.attr_ints("starts"), cx.attr_ints("ends")) else {
        return Err("incorrect or missing attribute value for starts and ends".to_string());
    };
    if starts.len() != ends.len() {
        return Err("incorrect or missing attribute value for starts and ends".to_string());
    }
    let axes = match cx.attr_ints("axes") {
        None => (0..starts.len() as i64).collect(),
        Some(a) if a.len() != starts.len() => {
            return Err("attribute axes has incorrect length".to_string());
        }
        Some(a) if !a.is_sorted() => return Ok(()),
        Some(a) => a,
    };
    if axes.iter().any(|&a| a < 0) {
        cx.set(0, TensorType::new(elem, vec![Dim::Unknown; x.len()]));
        return Ok(());
    }
    let mut dims = Vec::with_capacity(x.len());
    let mut j = 0;
    for (i, d) in x.iter().enumerate() {
        if j < axes.len() && axes[j] == i as i64 {
            let mut out = Dim::Unknown;
            if let Dim::Fixed(v) = *d {
                if starts[j] < 0 {
                    starts[j] = starts[j].saturating_add(v);
                }
                if ends[j] < 0 {
                    ends[j] = ends[j].saturating_add(v);
                }
                if starts[j] >= 0 && ends[j] >= 0 {
                    let n = v.min(ends[j]) - starts[j];
                    if n >= 0 {
                        out = Dim::Fixed(n);
                    }
                }
            }
            dims.push(out);
            j += 1;
        } else {
            dims.push(d.clone());
        }
    }
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// CenterCropPad: the input's dims with the cropped or padded axes set to
/// the constant `shape` input.
pub fn center_crop_pad(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    cx.set(0, TensorType::unranked(elem));
    let (Some(x), Some(shape)) = (cx.shape(0).map(<[_]>::to_vec), cx.ints(1)) else {
        return Ok(());
    };
    let r = x.len();
    let axes: Vec<usize> = match cx.attr_ints("axes") {
        Some(a) => {
            let mut seen = vec![false; r];
            let mut out = Vec::with_capacity(a.len());
            for v in a {
                let v = axis(v, r)?;
                if std::mem::replace(&mut seen[v], true) {
                    return Err(format!("axis {v} is repeated"));
                }
                out.push(v);
            }
            out
        }
        None => (0..r).collect(),
    };
    if shape.len() != axes.len() {
        return Err(format!(
            "number of elements of input 'shape' ({}) does not match the number of axes ({})",
            shape.len(),
            axes.len()
        ));
    }
    let mut dims = x;
    for (&a, &v) in axes.iter().zip(&shape) {
        dims[a] = Dim::Fixed(v);
    }
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// AffineGrid: [N, H, W, 2] or [N, D, H, W, 3] from the `size` input
/// (read as onnx's `getShapeInput`).
pub fn affine_grid(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    cx.set(0, TensorType::unranked(elem));
    if cx.shape(0).is_none() {
        return Ok(());
    }
    if let Some(s) = cx.shape(1)
        && s.len() != 1
    {
        return Err(format!("input 1 (size) must have rank 1, not {}", s.len()));
    }
    let Some(size) = shape_input(cx, 1)? else {
        return Ok(());
    };
    let dims = match size.as_slice() {
        [n, _, h, w] => vec![n.clone(), h.clone(), w.clone(), Dim::Fixed(2)],
        [n, _, d, h, w] => vec![n.clone(), d.clone(), h.clone(), w.clone(), Dim::Fixed(3)],
        other => {
            return Err(format!(
                "length of input 'size' is {}; it must be 4 for 2D or 5 for 3D",
                other.len()
            ));
        }
    };
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// HannWindow, HammingWindow, BlackmanWindow: 1-d [size] of
/// `output_datatype` (float by default), size a constant scalar.
pub fn window(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = i32::try_from(cx.attr_i("output_datatype", DataType::Float as i64)).unwrap_or(0);
    cx.set(0, TensorType::unranked(elem));
    let Some(s) = cx.shape(0) else {
        return Ok(());
    };
    let Some(size) = cx.ints(0) else {
        return Ok(());
    };
    if !s.is_empty() {
        return Err("size input must be a scalar".to_string());
    }
    let size = size.first().copied().unwrap_or(0);
    if size <= 0 {
        return Err("size input must be greater than 0".to_string());
    }
    cx.set(0, TensorType::new(elem, vec![Dim::Fixed(size)]));
    Ok(())
}

/// DFT: the input's shape with the transformed axis resized (dft_length,
/// or half the signal for a one-sided transform) and the last dim 2 (1 for
/// an inverse one-sided one); `axis` an attribute before opset 20 and an
/// input from 20, as onnx's two rules read them.
pub fn dft(cx: &mut NodeCx<'_>) -> RuleResult {
    let onesided = cx.attr_i("onesided", 0) != 0;
    let inverse = cx.attr_i("inverse", 0) != 0;
    let elem = cx.elem(0);
    cx.set(0, TensorType::unranked(elem));
    let Some(x) = cx.shape(0).map(<[_]>::to_vec) else {
        return Ok(());
    };
    let rank = x.len();
    if rank < 2 {
        return Err("input tensor must have rank >= 2, including the complex dimension".into());
    }
    if onesided && let Dim::Fixed(last) = x[rank - 1] {
        if inverse && last != 2 {
            return Err("inverse one-sided DFT requires complex input (last dimension 2)".into());
        }
        if !inverse && last != 1 {
            return Err("one-sided DFT requires real input (last dimension 1)".into());
        }
    }
    let last_value = Dim::Fixed(if onesided && inverse { 1 } else { 2 });
    let scalar = |cx: &NodeCx<'_>, i: usize, what: &str| -> Result<(), String> {
        match cx.shape(i) {
            Some(s) if !s.is_empty() => Err(format!("{what} input must be a scalar")),
            _ => Ok(()),
        }
    };
    let axis = if cx.version >= 20 {
        if cx.has_input(2) {
            let Some(a) = cx.ints(2) else {
                let mut dims = if onesided || cx.has_input(1) {
                    vec![Dim::Unknown; rank]
                } else {
                    x
                };
                dims[rank - 1] = last_value;
                cx.set(0, TensorType::new(elem, dims));
                return Ok(());
            };
            scalar(cx, 2, "axis")?;
            a.first().copied().unwrap_or(0)
        } else {
            -2
        }
    } else {
        cx.attr_i("axis", 1)
    };
    let r = rank as i64;
    if !(-r <= axis && axis != -1 && axis < r - 1) {
        return Err(format!(
            "axis value {axis} is invalid for a tensor of rank {rank}: valid values are \
             -rank <= axis < rank - 1, not -1"
        ));
    }
    let a = if axis >= 0 { axis } else { axis + r } as usize;
    let mut dims = x;
    if cx.has_input(1) {
        match cx.ints(1) {
            None if cx.version < 20 => return Ok(()),
            None => {
                if let Dim::Fixed(_) = dims[a] {
                    dims[a] = Dim::Unknown;
                }
            }
            Some(v) => {
                scalar(cx, 1, "dft_length")?;
                let v = v.first().copied().unwrap_or(0);
                dims[a] = Dim::Fixed(if onesided && !inverse {
                    (v >> 1) + 1
                } else {
                    v
                });
            }
        }
    } else if onesided {
        dims[a] = match dims[a] {
            Dim::Fixed(v) if inverse => fixed(2 * (i128::from(v) - 1)),
            Dim::Fixed(v) => Dim::Fixed((v >> 1) + 1),
            _ => Dim::Unknown,
        };
    }
    dims[rank - 1] = last_value;
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// onnx's `unifyDim(Dim&, int)`: a fixed dim must equal `v`; any other
/// becomes `v`.
fn unify_value(d: &mut Dim, v: i64, what: &str) -> RuleResult {
    match d {
        Dim::Fixed(x) if *x != v => Err(format!("{what}: dimension mismatch {x} and {v}")),
        _ => {
            *d = Dim::Fixed(v);
            Ok(())
        }
    }
}

/// onnx's `unifyInputDim`: dim `k` of input `i` (when its shape is known)
/// unified into `d`.
fn unify_input_dim(cx: &NodeCx<'_>, i: usize, k: usize, d: &mut Dim) -> RuleResult {
    let Some(s) = cx.shape(i) else {
        return Ok(());
    };
    let Some(src) = s.get(k) else {
        return Err(format!(
            "input {i} expected to have rank > {k} but has rank {}",
            s.len()
        ));
    };
    super::unify_dim(src, d)
}

/// Col2Im(input [N, C * prod(block_shape), L], image_shape, block_shape):
/// [N, C, image_shape...], the spatial rank unified across the inputs and
/// the pads, dilations and strides attributes.
pub fn col2im(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    cx.set(0, TensorType::unranked(elem));
    if (0..3).any(|i| cx.shape(i).is_none()) {
        return Ok(());
    }
    let mut n = Dim::Unknown;
    unify_input_dim(cx, 1, 0, &mut n)?;
    unify_input_dim(cx, 2, 0, &mut n)?;
    for i in [1, 2] {
        if let Some(s) = cx.shape(i)
            && s.len() != 1
        {
            return Err(format!(
                "input {i} expected to have rank 1 but has rank {}",
                s.len()
            ));
        }
    }
    let image = cx.ints(1).unwrap_or_default();
    if cx.ints(1).is_some() {
        unify_value(&mut n, image.len() as i64, "image_shape")?;
    }
    if let Some(p) = cx.attr_ints("pads") {
        if p.len() % 2 != 0 {
            return Err("attribute pads must have an even size".to_string());
        }
        unify_value(&mut n, (p.len() / 2) as i64, "pads")?;
    }
    for name in ["dilations", "strides"] {
        if let Some(v) = cx.attr_ints(name) {
            unify_value(&mut n, v.len() as i64, name)?;
        }
    }
    let x = cx.shape(0).map(<[_]>::to_vec).unwrap_or_default();
    if x.len() != 3 {
        return Err(format!("input must have rank 3, not {}", x.len()));
    }
    let block = cx.ints(2).unwrap_or_default();
    if cx.ints(2).is_some() {
        unify_value(&mut n, block.len() as i64, "block_shape")?;
    }
    unify_input_dim(cx, 2, 0, &mut n)?;
    let mut block_size: i64 = 0;
    if !block.is_empty() {
        block_size = 1;
        for &b in &block {
            if b <= 0 {
                return Err("'block_shape' input must contain only positive values".to_string());
            }
            block_size = block_size
                .checked_mul(b)
                .ok_or("block_shape product overflows")?;
        }
    }
    let Dim::Fixed(rank) = n else {
        return Ok(());
    };
    let Some(spatial) = super::unknown_dims(rank) else {
        return Ok(());
    };
    let batch = match x[0] {
        Dim::Fixed(_) => x[0].clone(),
        _ => Dim::Unknown,
    };
    let channels = if block_size > 0 {
        dim_div(&x[1], block_size)
    } else {
        Dim::Unknown
    };
    let mut dims = vec![batch, channels];
    for (i, d) in spatial.into_iter().enumerate() {
        dims.push(image.get(i).map_or(d, |&v| Dim::Fixed(v)));
    }
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// MelWeightMatrix: [(dft_length >> 1) + 1, num_mel_bins] of
/// `output_datatype` when both are positive constant scalars.
pub fn mel_weight_matrix(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = i32::try_from(cx.attr_i("output_datatype", DataType::Float as i64)).unwrap_or(0);
    cx.set(0, TensorType::unranked(elem));
    let (Some(s0), Some(s1)) = (cx.shape(0), cx.shape(1)) else {
        return Ok(());
    };
    let (Some(bins), Some(len)) = (cx.ints(0), cx.ints(1)) else {
        return Ok(());
    };
    if !s0.is_empty() {
        return Err("num_mel_bins input must be scalar".to_string());
    }
    if !s1.is_empty() {
        return Err("dft_length input must be scalar".to_string());
    }
    let (bins, len) = (
        bins.first().copied().unwrap_or(-1),
        len.first().copied().unwrap_or(-1),
    );
    if bins > 0 && len > 0 {
        cx.set(
            0,
            TensorType::new(elem, vec![Dim::Fixed((len >> 1) + 1), Dim::Fixed(bins)]),
        );
    }
    Ok(())
}

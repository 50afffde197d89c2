//! Ops whose output size depends on data or on index tensors: GatherND,
//! Compress, NonZero, Unique, NonMaxSuppression, TensorScatter and
//! ReverseSequence.

use super::{Dim, NodeCx, RuleResult, TensorType, axis};
use crate::proto::tensor_proto::DataType;

const INT64: i32 = DataType::Int64 as i32;

/// GatherND: indices' dims but the last, then data's dims after the
/// indexed ones (and the batch dims, from opset 12).
pub fn gather_nd(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    cx.set(0, TensorType::unranked(elem));
    let (Some(data), Some(indices)) = (cx.shape(0), cx.shape(1)) else {
        return Ok(());
    };
    if data.is_empty() || indices.is_empty() {
        return Err("both data and indices need to have rank larger than 0".to_string());
    }
    let Dim::Fixed(last) = indices[indices.len() - 1] else {
        return Ok(());
    };
    let batch = if cx.version >= 12 {
        cx.attr_i("batch_dims", 0)
    } else {
        0
    };
    let last = last
        .checked_add(batch)
        .ok_or_else(|| format!("{last} + {batch} overflows"))?;
    if last > data.len() as i64 {
        return Err(format!(
            "last dimension of indices ({last}) is larger than the rank of data ({})",
            data.len()
        ));
    }
    let mut dims: Vec<Dim> = indices[..indices.len() - 1].to_vec();
    let from = usize::try_from(last).unwrap_or(0);
    dims.extend(data.get(from..).unwrap_or_default().iter().cloned());
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// Compress: 1-d of unknown length without `axis`; with it, the input's
/// dims with the axis unknown.
pub fn compress(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let mut out = TensorType::unranked(elem);
    if let Some(x) = cx.shape(0) {
        if x.is_empty() {
            return Err("indices tensor must have rank >= 1".to_string());
        }
        if let Some(a) = cx.attr("axis") {
            let a = axis(a.i(), x.len())?;
            let mut dims = x.to_vec();
            dims[a] = Dim::Unknown;
            out.shape = Some(dims);
        }
    }
    if cx.attr("axis").is_none() {
        out.shape = Some(vec![Dim::Unknown]);
    }
    cx.set(0, out);
    Ok(())
}

/// NonZero: int64 [rank of the input, unknown].
pub fn non_zero(cx: &mut NodeCx<'_>) -> RuleResult {
    let rank = cx
        .shape(0)
        .map_or(Dim::Unknown, |s| Dim::Fixed(s.len() as i64));
    cx.set(0, TensorType::new(INT64, vec![rank, Dim::Unknown]));
    Ok(())
}

/// Unique: Y is 1-d of unknown length (or, with `axis`, the input's dims
/// with the axis unknown); indices, inverse_indices and counts are int64
/// 1-d of unknown length.
pub fn unique(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    for i in 1..cx.output_count().min(4) {
        cx.set(i, TensorType::new(INT64, vec![Dim::Unknown]));
    }
    let shape = match cx.attr("axis") {
        None => Some(vec![Dim::Unknown]),
        Some(a) => match cx.shape(0) {
            None => None,
            Some(x) => {
                let r = x.len() as i64;
                let v = if a.i() < 0 { a.i() + r } else { a.i() };
                if v < 0 || v >= r {
                    return Err(format!("invalid value {} for attribute axis", a.i()));
                }
                let mut dims = x.to_vec();
                dims[v as usize] = Dim::Unknown;
                Some(dims)
            }
        },
    };
    cx.set(
        0,
        TensorType {
            elem_type: elem,
            shape,
        },
    );
    Ok(())
}

/// NonMaxSuppression: int64 selected indices, [unknown, 3] from opset 11
/// (before, onnx infers the element type only).
pub fn non_max_suppression(cx: &mut NodeCx<'_>) -> RuleResult {
    if cx.version >= 11 {
        cx.set(0, TensorType::new(INT64, vec![Dim::Unknown, Dim::Fixed(3)]));
    } else {
        cx.set(0, TensorType::unranked(INT64));
    }
    Ok(())
}

/// onnx's `unifyDim` over two dims: fixed values must agree.
fn unify(a: &Dim, b: &Dim, what: &str) -> RuleResult {
    match (a, b) {
        (Dim::Fixed(x), Dim::Fixed(y)) if x != y => {
            Err(format!("{what}: dimension mismatch {x} and {y}"))
        }
        _ => Ok(()),
    }
}

/// TensorScatter(past_cache, update, write_indices): the type and shape of
/// past_cache; update must match it except along `axis`.
pub fn tensor_scatter(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    if let (Some(past), Some(update)) = (cx.shape(0), cx.shape(1)) {
        if past.len() != update.len() {
            return Err(format!(
                "past_cache and update must have the same rank: {} and {}",
                past.len(),
                update.len()
            ));
        }
        let r = past.len() as i64;
        let a = cx.attr_i("axis", -2);
        let a = if a < 0 { a + r } else { a };
        if a <= 0 || a >= r {
            return Err(format!("axis {a} is out of range for rank {r}"));
        }
        for (i, (p, u)) in past.iter().zip(update).enumerate() {
            if i as i64 != a {
                unify(p, u, "past_cache and update")?;
            }
        }
    }
    if let Some(w) = cx.shape(2) {
        if w.len() != 1 {
            return Err(format!("write_indices must have rank 1, not {}", w.len()));
        }
        if let Some(past) = cx.shape(0)
            && let Some(b) = past.first()
        {
            unify(b, &w[0], "batch size")?;
        }
    }
    let shape = cx.shape(0).map(<[_]>::to_vec);
    cx.set(
        0,
        TensorType {
            elem_type: elem,
            shape,
        },
    );
    Ok(())
}

/// ReverseSequence: the type of the input, its shape when both inputs have
/// one (input rank >= 2, sequence_lens rank 1).
pub fn reverse_sequence(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let (Some(x), Some(lens)) = (cx.shape(0), cx.shape(1)) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    if x.len() < 2 {
        return Err("'input' must have rank >= 2".to_string());
    }
    if lens.len() != 1 {
        return Err("'sequence_lens' must have rank of 1".to_string());
    }
    let t = TensorType::new(elem, x.to_vec());
    cx.set(0, t);
    Ok(())
}

/// TfIdfVectorizer: float [max(ngram_indexes) + 1], or [B, that] from a
/// 2-d input.
pub fn tf_idf_vectorizer(cx: &mut NodeCx<'_>) -> RuleResult {
    let float = DataType::Float as i32;
    cx.set(0, TensorType::unranked(float));
    let Some(x) = cx.shape(0).map(<[_]>::to_vec) else {
        return Ok(());
    };
    let indexes = cx.attr_ints("ngram_indexes").unwrap_or_default();
    if indexes.is_empty() || indexes.iter().any(|&i| i < 0) {
        return Err("ngram_indexes must be non-empty with no negative values".to_string());
    }
    let last = Dim::Fixed(indexes.iter().max().copied().unwrap_or(0).saturating_add(1));
    let dims = match x.as_slice() {
        [_] => vec![last],
        [b, _] => vec![b.clone(), last],
        _ => {
            return Err(format!(
                "input tensor must have rank 1 or 2, not {}",
                x.len()
            ));
        }
    };
    cx.set(0, TensorType::new(float, dims));
    Ok(())
}

/// ai.onnx.ml ArrayFeatureExtractor: the input's dims but the last, then
/// the number of indices (a product of fixed dims, or one symbol).
pub fn array_feature_extractor(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    cx.set(0, TensorType::unranked(elem));
    let Some(x) = cx.shape(0).map(<[_]>::to_vec) else {
        return Ok(());
    };
    if x.len() == 1 {
        return Ok(());
    }
    let mut dims: Vec<Dim> = x[..x.len().saturating_sub(1)].to_vec();
    let mut last = Dim::Unknown;
    if let Some(ind) = cx.shape(1)
        && !ind.is_empty()
    {
        let mut n: i64 = 1;
        let mut symbol: Option<&str> = None;
        let mut known = true;
        for d in ind {
            match d {
                Dim::Fixed(v) => {
                    n = n
                        .checked_mul(*v)
                        .ok_or("dimension product overflow in ArrayFeatureExtractor")?;
                }
                Dim::Param(p) if symbol.is_none() => symbol = Some(p),
                _ => {
                    known = false;
                    break;
                }
            }
        }
        if known {
            last = match symbol {
                None => Dim::Fixed(n),
                Some(p) if n == 1 => Dim::Param(p.to_string()),
                Some(_) => Dim::Unknown,
            };
        } else {
            // onnx stops here, leaving the last dim it already added unknown
            last = Dim::Unknown;
        }
    }
    dims.push(last);
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

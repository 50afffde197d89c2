//! Reductions (ReduceMean, ReduceSum, ... with keepdims; axes an attribute
//! before opset 13 for ReduceSum and 18 for the others, an input after) and
//! ArgMax/ArgMin.

use super::{Dim, NodeCx, RuleResult, TensorType};
use crate::proto::tensor_proto::DataType;

fn reduced(x: &[Dim], axes: &[usize], keep: bool) -> Vec<Dim> {
    let mut out = Vec::new();
    for (i, d) in x.iter().enumerate() {
        if axes.contains(&i) {
            if keep {
                out.push(Dim::Fixed(1));
            }
        } else {
            out.push(d.clone());
        }
    }
    out
}

/// The Reduce* family.
pub fn reduce(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let keep = cx.attr_i("keepdims", 1) != 0;
    let axes_input = if cx.node.op_type() == "ReduceSum" {
        cx.version >= 13
    } else {
        cx.version >= 18
    };
    let axes: Option<Vec<i64>> = if axes_input && cx.has_input(1) {
        match cx.ints(1) {
            Some(a) => Some(a),
            None => {
                // axes not known: onnx leaves the rank unknown too
                cx.set(0, TensorType::unranked(elem));
                return Ok(());
            }
        }
    } else if axes_input {
        None
    } else {
        cx.attr_ints("axes")
    };
    let Some(x) = cx.shape(0) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let rank = x.len();
    let axes: Vec<usize> = match axes {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|&a| super::axis(a, rank))
            .collect::<Result<_, _>>()?,
        _ => {
            if axes_input && cx.attr_i("noop_with_empty_axes", 0) != 0 {
                Vec::new()
            } else {
                (0..rank).collect()
            }
        }
    };
    let dims = reduced(x, &axes, keep);
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// ArgMax / ArgMin: int64, one axis reduced.
pub fn arg(cx: &mut NodeCx<'_>) -> RuleResult {
    let Some(x) = cx.shape(0) else {
        cx.set(0, TensorType::unranked(DataType::Int64 as i32));
        return Ok(());
    };
    let a = super::axis(cx.attr_i("axis", 0), x.len())?;
    let dims = reduced(x, &[a], cx.attr_i("keepdims", 1) != 0);
    cx.set(0, TensorType::new(DataType::Int64 as i32, dims));
    Ok(())
}

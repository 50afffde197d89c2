//! Ops whose output 0 has the type and shape of input 0 (activations,
//! Identity, Softmax, Clip, Trilu, Hardmax, CumSum, LpNormalization, the
//! Scatter ops), plus Cast, CastLike, Dropout, IsInf / IsNaN (bool) and the
//! ops that take input 0's shape with a `dtype` attribute (EyeLike, the
//! random *Like ops).

use super::{NodeCx, RuleResult, TensorType};
use crate::proto::tensor_proto::DataType;

/// An op version for which onnx has no inference function (the version 1
/// ops with `consumed_inputs`, Concat before 4, Reshape before 5, ...):
/// nothing but the element type its type constraint binds, which
/// [`super::constraints::infer_outputs`] adds after every rule.
pub fn none(_: &mut NodeCx<'_>) -> RuleResult {
    Ok(())
}

/// Output 0 is input 0.
pub fn same(cx: &mut NodeCx<'_>) -> RuleResult {
    if let Some(t) = cx.input(0).cloned() {
        let d = cx.data(0).map(<[_]>::to_vec);
        cx.set(0, t);
        if cx.node.op_type() == "Identity"
            && let Some(d) = d
        {
            cx.set_data(0, d);
        }
    }
    Ok(())
}

/// Cast: the shape of input 0, the element type of `to`.
pub fn cast(cx: &mut NodeCx<'_>) -> RuleResult {
    let to = cx.attr_i("to", 0) as i32;
    let shape = cx.input(0).and_then(|t| t.shape.clone());
    cx.set(
        0,
        TensorType {
            elem_type: to,
            shape,
        },
    );
    if to == DataType::Int64 as i32
        && let Some(d) = cx.data(0).map(<[_]>::to_vec)
    {
        cx.set_data(0, d);
    }
    Ok(())
}

/// Dropout: output 0 is input 0; from opset 10 the optional mask has its
/// shape in bool (before, onnx infers nothing for the mask).
pub fn dropout(cx: &mut NodeCx<'_>) -> RuleResult {
    if let Some(t) = cx.input(0).cloned() {
        if cx.version >= 10 {
            cx.set(
                1,
                TensorType {
                    elem_type: DataType::Bool as i32,
                    shape: t.shape.clone(),
                },
            );
        }
        cx.set(0, t);
    }
    Ok(())
}

/// CastLike: the shape of input 0, the element type of input 1.
pub fn cast_like(cx: &mut NodeCx<'_>) -> RuleResult {
    let shape = cx.input(0).and_then(|t| t.shape.clone());
    let elem_type = cx.elem(1);
    if elem_type != 0 || shape.is_some() {
        cx.set(0, TensorType { elem_type, shape });
    }
    Ok(())
}

/// IsInf, IsNaN: a bool tensor of input 0's shape.
pub fn bool_like(cx: &mut NodeCx<'_>) -> RuleResult {
    let shape = cx.input(0).and_then(|t| t.shape.clone());
    cx.set(
        0,
        TensorType {
            elem_type: DataType::Bool as i32,
            shape,
        },
    );
    Ok(())
}

/// EyeLike, Bernoulli, RandomUniformLike, RandomNormalLike: input 0's shape,
/// the element type of the `dtype` attribute or else of input 0 (EyeLike
/// wants a 2-d input).
pub fn dtype_like(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem_type = match cx.attr("dtype") {
        Some(a) => i32::try_from(a.i()).unwrap_or(0),
        None => cx.elem(0),
    };
    let shape = cx.input(0).and_then(|t| t.shape.clone());
    if cx.node.op_type() == "EyeLike"
        && let Some(s) = &shape
        && s.len() != 2
    {
        return Err(format!(
            "input tensor must be 2-dimensional, not rank {}",
            s.len()
        ));
    }
    cx.set(0, TensorType { elem_type, shape });
    Ok(())
}

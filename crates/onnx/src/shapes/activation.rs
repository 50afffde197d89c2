//! Ops whose output 0 has the type and shape of input 0 (activations,
//! Identity, Softmax, Clip, Trilu, Hardmax, CumSum, LpNormalization, the
//! Scatter ops), plus Cast, CastLike and Dropout.

use super::{NodeCx, RuleResult, TensorType};
use crate::proto::tensor_proto::DataType;

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

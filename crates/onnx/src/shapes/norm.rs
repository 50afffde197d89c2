//! Normalization: BatchNormalization, InstanceNormalization,
//! LayerNormalization, RMSNormalization and LRN (output 0 has the input's
//! type and shape), QuantizeLinear / DequantizeLinear (the input's shape in
//! another type), NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

use super::{Dim, NodeCx, RuleResult, TensorType};
use crate::proto::tensor_proto::DataType;

/// Output 0 is input 0; BatchNormalization's running stats have the
/// scale's shape, LayerNormalization's Mean/InvStdDev keep the leading dims.
pub fn first_like_input(cx: &mut NodeCx<'_>) -> RuleResult {
    let Some(x) = cx.input(0).cloned() else {
        return Ok(());
    };
    match cx.node.op_type() {
        "BatchNormalization" if cx.version >= 14 => {
            if let Some(s) = cx.input(3).cloned() {
                cx.set(1, s.clone());
                cx.set(2, s);
            }
        }
        "LayerNormalization" => {
            if let Some(shape) = &x.shape {
                let rank = shape.len();
                let a = super::axis(cx.attr_i("axis", -1), rank)?;
                let mut dims = shape[..a].to_vec();
                dims.extend(std::iter::repeat_n(Dim::Fixed(1), rank - a));
                let stash = cx.attr_i("stash_type", 1) as i32;
                cx.set(1, TensorType::new(stash, dims.clone()));
                cx.set(2, TensorType::new(stash, dims));
            }
        }
        _ => {}
    }
    cx.set(0, x);
    Ok(())
}

/// QuantizeLinear / DequantizeLinear: the shape of x; the type of
/// `output_dtype` when set, else the zero point's (uint8 without one) for
/// QuantizeLinear and the scale's (float before 19) for DequantizeLinear.
pub fn quantize(cx: &mut NodeCx<'_>) -> RuleResult {
    let shape = cx.input(0).and_then(|t| t.shape.clone());
    let dtype = cx.attr_i("output_dtype", 0) as i32;
    let elem_type = if dtype != 0 {
        dtype
    } else if cx.node.op_type() == "QuantizeLinear" {
        if cx.has_input(2) {
            cx.elem(2)
        } else {
            DataType::Uint8 as i32
        }
    } else if cx.version >= 19 {
        cx.elem(1)
    } else {
        DataType::Float as i32
    };
    cx.set(0, TensorType { elem_type, shape });
    Ok(())
}

/// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: the target's
/// shape with reduction `none`, a scalar otherwise; SoftmaxCrossEntropyLoss's
/// optional log_prob has the scores' type and shape.
pub fn nll_loss(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    if cx.attr_s("reduction", "mean") == "none" {
        let shape = cx.input(1).and_then(|t| t.shape.clone());
        cx.set(
            0,
            TensorType {
                elem_type: elem,
                shape,
            },
        );
    } else {
        cx.set(0, TensorType::new(elem, Vec::new()));
    }
    if let Some(scores) = cx.input(0).cloned() {
        cx.set(1, scores);
    }
    Ok(())
}

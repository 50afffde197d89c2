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

/// BitCast: input 0's shape in the element type `to`, which must have the
/// input's bit width.
pub fn bit_cast(cx: &mut NodeCx<'_>) -> RuleResult {
    let to = i32::try_from(cx.attr_i("to", 0)).unwrap_or(0);
    let from = cx.elem(0);
    let bits = |c: i32| crate::dtype::element_bits(c).filter(|&b| b > 0);
    if let (Some(a), Some(b)) = (bits(from), bits(to))
        && cx.attr("to").is_some()
        && a != b
    {
        return Err(format!(
            "BitCast requires input and output types to have the same bit-width, but input \
             type has {a} bits and output type has {b} bits"
        ));
    }
    let shape = cx.input(0).and_then(|t| t.shape.clone());
    cx.set(
        0,
        TensorType {
            elem_type: to,
            shape,
        },
    );
    Ok(())
}

/// DynamicQuantizeLinear: y uint8 in x's shape, y_scale float and
/// y_zero_point uint8 scalars.
pub fn dynamic_quantize_linear(cx: &mut NodeCx<'_>) -> RuleResult {
    let u8_ = DataType::Uint8 as i32;
    let shape = cx.input(0).and_then(|t| t.shape.clone());
    cx.set(
        0,
        TensorType {
            elem_type: u8_,
            shape,
        },
    );
    cx.set(1, TensorType::new(DataType::Float as i32, Vec::new()));
    cx.set(2, TensorType::new(u8_, Vec::new()));
    Ok(())
}

/// StringSplit: the substrings (a string input's shape plus an unknown
/// dim) and their int64 counts (the input's shape).
pub fn string_split(cx: &mut NodeCx<'_>) -> RuleResult {
    let Some(x) = cx.shape(0).map(<[_]>::to_vec) else {
        return Ok(());
    };
    if cx.elem(0) != DataType::String as i32 {
        return Ok(());
    }
    let mut dims = x.clone();
    dims.push(super::Dim::Unknown);
    cx.set(0, TensorType::new(DataType::String as i32, dims));
    cx.set(1, TensorType::new(DataType::Int64 as i32, x));
    Ok(())
}

/// StringNormalizer: strings of shape [?] from [C], [1, ?] from [1, C].
pub fn string_normalizer(cx: &mut NodeCx<'_>) -> RuleResult {
    let string = DataType::String as i32;
    let shape = match cx.shape(0) {
        None => None,
        Some([_]) => Some(vec![super::Dim::Unknown]),
        Some([b @ super::Dim::Fixed(1), _]) => Some(vec![b.clone(), super::Dim::Unknown]),
        Some(_) => {
            return Err("input shape must have either [C] or [1,C] dimensions where C > 0".into());
        }
    };
    cx.set(
        0,
        TensorType {
            elem_type: string,
            shape,
        },
    );
    Ok(())
}

/// ImageDecoder: a uint8 image [?, ?, ?] from a 1-d byte tensor.
pub fn image_decoder(cx: &mut NodeCx<'_>) -> RuleResult {
    if let Some(s) = cx.shape(0)
        && s.len() != 1
    {
        return Err(format!(
            "input tensor must be 1-dimensional, not rank {}",
            s.len()
        ));
    }
    cx.set(
        0,
        TensorType::new(DataType::Uint8 as i32, vec![super::Dim::Unknown; 3]),
    );
    Ok(())
}

//! Convolution and pooling: Conv, ConvTranspose, MaxPool, AveragePool,
//! LpPool and the global pools (onnx's `convPoolShapeInference`), and the
//! spatial resizes Resize, Upsample and GridSample.

use super::{Dim, NodeCx, RuleResult, TensorType, fixed};
use crate::proto::tensor_proto::DataType;

fn spatial(
    cx: &NodeCx<'_>,
    x: &[Dim],
    kernel: &[i64],
    ceil_mode: bool,
) -> Result<Vec<Dim>, String> {
    let n = kernel.len();
    if x.len() != n + 2 {
        return Err(format!(
            "input rank {} does not fit a {n}-d kernel",
            x.len()
        ));
    }
    let strides = cx.attr_ints("strides").unwrap_or_else(|| vec![1; n]);
    let dilations = cx.attr_ints("dilations").unwrap_or_else(|| vec![1; n]);
    let pads = cx.attr_ints("pads").unwrap_or_else(|| vec![0; 2 * n]);
    if strides.len() != n || dilations.len() != n || pads.len() != 2 * n {
        return Err("strides, dilations or pads do not fit the kernel".to_string());
    }
    let auto_pad = cx.attr_s("auto_pad", "NOTSET");
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let Dim::Fixed(size) = x[i + 2] else {
            out.push(Dim::Unknown);
            continue;
        };
        // i128: hostile sizes, pads or dilations must not overflow
        let (size, stride) = (i128::from(size), i128::from(strides[i].max(1)));
        let pos = if auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER" {
            (size + stride - 1) / stride - 1
        } else {
            let eff = (i128::from(kernel[i]) - 1) * i128::from(dilations[i]) + 1;
            let (pad_begin, pad_end) = (i128::from(pads[i]), i128::from(pads[i + n]));
            let padded = if auto_pad == "VALID" {
                size
            } else {
                size + pad_begin + pad_end
            };
            let span = padded - eff;
            if ceil_mode {
                let mut p = (span + stride - 1).div_euclid(stride);
                // the last window must start inside the input or the left pad
                if p * stride >= size + pad_begin {
                    p -= 1;
                }
                p
            } else {
                span.div_euclid(stride)
            }
        };
        out.push(fixed(pos + 1));
    }
    Ok(out)
}

/// Conv: [N, M, spatial...] with M from the weight.
pub fn conv(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    conv_of(cx, 0, 1, elem)
}

/// ConvInteger: Conv's shape in int32.
pub fn conv_integer(cx: &mut NodeCx<'_>) -> RuleResult {
    conv_of(cx, 0, 1, DataType::Int32 as i32)
}

/// QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B):
/// Conv of inputs 0 and 3 in y_zero_point's type.
pub fn qlinear_conv(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(7);
    conv_of(cx, 0, 3, elem)
}

/// Output 0 of element type `elem` with the Conv shape of input `xi` and
/// weight `wi`.
fn conv_of(cx: &mut NodeCx<'_>, xi: usize, wi: usize, elem: i32) -> RuleResult {
    let (Some(x), Some(w)) = (cx.shape(xi), cx.shape(wi)) else {
        if elem != 0 {
            cx.set(0, TensorType::unranked(elem));
        }
        return Ok(());
    };
    if w.len() < 3 || x.len() < 3 {
        return Err(format!(
            "input rank {} or weight rank {} is below 3",
            x.len(),
            w.len()
        ));
    }
    let kernel: Option<Vec<i64>> = match cx.attr_ints("kernel_shape") {
        Some(k) => Some(k),
        None => w[2..].iter().map(Dim::value).collect(),
    };
    let mut dims = vec![x[0].clone(), w[0].clone()];
    match kernel {
        Some(k) => dims.extend(spatial(cx, x, &k, false)?),
        None => dims.extend(std::iter::repeat_n(Dim::Unknown, w.len() - 2)),
    }
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// MaxPool / AveragePool / LpPool: [N, C, spatial...]; MaxPool's indices are int64.
pub fn pool(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let Some(x) = cx.shape(0) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let Some(kernel) = cx.attr_ints("kernel_shape") else {
        return Err("kernel_shape is missing".to_string());
    };
    if x.len() < 3 {
        return Err(format!("input rank {} is below 3", x.len()));
    }
    let ceil = cx.attr_i("ceil_mode", 0) != 0;
    let mut dims = vec![x[0].clone(), x[1].clone()];
    dims.extend(spatial(cx, x, &kernel, ceil)?);
    cx.set(1, TensorType::new(DataType::Int64 as i32, dims.clone()));
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// Global pools: [N, C, 1, ...].
pub fn global_pool(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let Some(x) = cx.shape(0) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    if x.len() < 2 {
        return Err(format!("input rank {} is below 2", x.len()));
    }
    let mut dims = x[..2].to_vec();
    dims.extend(std::iter::repeat_n(Dim::Fixed(1), x.len() - 2));
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// ConvTranspose: [N, W.dim(1) * group, spatial...], from `output_shape`
/// or stride * (in - 1) + output_padding + effective kernel - pads.
pub fn conv_transpose(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let (Some(x), Some(w)) = (cx.shape(0), cx.shape(1)) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    if w.len() < 3 || x.len() != w.len() {
        return Err(format!(
            "input rank {} and weight rank {}",
            x.len(),
            w.len()
        ));
    }
    let n = w.len() - 2;
    let group = cx.attr_i("group", 1);
    let channels = match &w[1] {
        Dim::Fixed(c) => fixed(i128::from(*c) * i128::from(group)),
        d if group == 1 => d.clone(),
        _ => Dim::Unknown,
    };
    let mut dims = vec![x[0].clone(), channels];
    if let Some(out) = cx.attr_ints("output_shape") {
        if out.len() != n {
            return Err(format!(
                "output_shape {out:?} does not fit rank {}",
                x.len()
            ));
        }
        dims.extend(out.into_iter().map(Dim::Fixed));
        cx.set(0, TensorType::new(elem, dims));
        return Ok(());
    }
    let kernel: Option<Vec<i64>> = match cx.attr_ints("kernel_shape") {
        Some(k) => Some(k),
        None => w[2..].iter().map(Dim::value).collect(),
    };
    let Some(kernel) = kernel.filter(|k| k.len() == n) else {
        dims.extend(std::iter::repeat_n(Dim::Unknown, n));
        cx.set(0, TensorType::new(elem, dims));
        return Ok(());
    };
    let strides = cx.attr_ints("strides").unwrap_or_else(|| vec![1; n]);
    let dilations = cx.attr_ints("dilations").unwrap_or_else(|| vec![1; n]);
    let out_pad = cx.attr_ints("output_padding").unwrap_or_else(|| vec![0; n]);
    let pads = cx.attr_ints("pads").unwrap_or_else(|| vec![0; 2 * n]);
    if strides.len() != n || dilations.len() != n || out_pad.len() != n || pads.len() != 2 * n {
        return Err("strides, dilations, output_padding or pads do not fit the kernel".to_string());
    }
    let auto_pad = cx.attr_s("auto_pad", "NOTSET");
    for i in 0..n {
        dims.push(match x[i + 2] {
            Dim::Fixed(size) if auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER" => {
                fixed(i128::from(size) * i128::from(strides[i]))
            }
            Dim::Fixed(size) => fixed(
                i128::from(strides[i]) * (i128::from(size) - 1)
                    + i128::from(out_pad[i])
                    + ((i128::from(kernel[i]) - 1) * i128::from(dilations[i]) + 1)
                    - i128::from(pads[i])
                    - i128::from(pads[i + n]),
            ),
            _ => Dim::Unknown,
        });
    }
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// Resize (10+) and Upsample: the dims from constant `sizes`, or each dim
/// times its constant scale, rounded down.
pub fn resize(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let Some(x) = cx.shape(0).map(<[_]>::to_vec) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let r = x.len();
    let upsample = cx.node.op_type() == "Upsample";
    let (scales_at, sizes_at) = if upsample || cx.version < 11 {
        (1, usize::MAX)
    } else {
        (2, 3)
    };
    let unknown = TensorType::new(elem, vec![Dim::Unknown; r]);
    if cx.version >= 18 && !upsample && cx.attr("axes").is_some() {
        cx.set(0, unknown);
        return Ok(());
    }
    if sizes_at != usize::MAX && cx.has_input(sizes_at) {
        match cx.ints(sizes_at) {
            Some(s)
                if s.len() == r
                    && cx.attr_s("keep_aspect_ratio_policy", "stretch") == "stretch" =>
            {
                cx.set(
                    0,
                    TensorType::new(elem, s.into_iter().map(Dim::Fixed).collect()),
                );
            }
            _ => cx.set(0, unknown),
        }
        return Ok(());
    }
    let scales = if upsample && cx.version < 9 {
        cx.attr("scales").map(|a| a.floats.clone())
    } else {
        cx.float_data(scales_at)
    };
    match scales {
        Some(s) if s.len() == r => {
            let dims = x
                .iter()
                .zip(&s)
                .map(|(d, &f)| match d {
                    Dim::Fixed(v) => Dim::Fixed((*v as f64 * f64::from(f)).floor() as i64),
                    _ => Dim::Unknown,
                })
                .collect();
            cx.set(0, TensorType::new(elem, dims));
        }
        _ => cx.set(0, unknown),
    }
    Ok(())
}

/// GridSample: [N, C] of the input, then the grid's spatial dims.
pub fn grid_sample(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let (Some(x), Some(grid)) = (cx.shape(0), cx.shape(1)) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    if x.len() < 3 || grid.len() != x.len() {
        return Err(format!(
            "input rank {} and grid rank {}",
            x.len(),
            grid.len()
        ));
    }
    let mut dims = vec![x[0].clone(), x[1].clone()];
    dims.extend(grid[1..grid.len() - 1].iter().cloned());
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// CausalConvWithState (opset 27): output 0 is the input; present_state is
/// [B, C, K - 1] with the dims unified across input, weight, bias and
/// past_state.
pub fn causal_conv_with_state(cx: &mut NodeCx<'_>) -> RuleResult {
    if let Some(a) = cx.attr("activation")
        && a.s.is_some()
    {
        let act = String::from_utf8_lossy(a.s()).into_owned();
        if !matches!(act.as_str(), "none" | "silu" | "swish") {
            return Err(format!(
                "unsupported activation value '{act}'; supported values are 'none', 'silu' and \
                 'swish'"
            ));
        }
    }
    let elem = cx.elem(0);
    let shape = cx.input(0).and_then(|t| t.shape.clone());
    cx.set(
        0,
        TensorType {
            elem_type: elem,
            shape,
        },
    );
    cx.set(1, TensorType::unranked(elem));
    const B: usize = 0;
    const C: usize = 1;
    const L: usize = 2;
    const ONE: usize = 3;
    const K: usize = 4;
    const KM1: usize = 5;
    let mut d = vec![Dim::Unknown; 6];
    d[ONE] = Dim::Fixed(1);
    super::unify_input_shape(cx, 0, &mut d, &[B, C, L])?;
    super::unify_input_shape(cx, 1, &mut d, &[C, ONE, K])?;
    if cx.has_input(2) {
        super::unify_input_shape(cx, 2, &mut d, &[C])?;
    }
    if cx.has_input(3) {
        super::unify_input_shape(cx, 3, &mut d, &[B, C, KM1])?;
    }
    let k_minus_1 = match d[K] {
        Dim::Fixed(k) => Dim::Fixed(k.saturating_sub(1)),
        _ => Dim::Unknown,
    };
    super::unify_dim(&k_minus_1, &mut d[KM1])?;
    if let Dim::Fixed(k) = d[K]
        && k < 1
    {
        return Err(format!("kernel size k must be >= 1, got {k}"));
    }
    cx.set(
        1,
        TensorType::new(elem, vec![d[B].clone(), d[C].clone(), d[KM1].clone()]),
    );
    Ok(())
}

/// RoiAlign: [num_rois, C, output_height, output_width], num_rois unified
/// from rois and batch_indices, C from the input.
pub fn roi_align(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    const N: usize = 0;
    const C: usize = 1;
    const H: usize = 2;
    const W: usize = 3;
    const ROIS: usize = 4;
    const FOUR: usize = 5;
    let mut d = vec![Dim::Unknown; 6];
    if cx.version >= 22 {
        d[FOUR] = Dim::Fixed(4);
    }
    super::unify_input_shape(cx, 0, &mut d, &[N, C, H, W])?;
    super::unify_input_shape(cx, 1, &mut d, &[ROIS, FOUR])?;
    super::unify_input_shape(cx, 2, &mut d, &[ROIS])?;
    let dims = vec![
        d[ROIS].clone(),
        d[C].clone(),
        Dim::Fixed(cx.attr_i("output_height", 1)),
        Dim::Fixed(cx.attr_i("output_width", 1)),
    ];
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// MaxUnpool: [N, C from the indices, (in - 1) * stride + kernel - pads]
/// (nothing more when the output_shape input is given).
pub fn max_unpool(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    cx.set(0, TensorType::unranked(elem));
    let n_in = cx.input_count();
    if n_in != 2 && n_in != 3 {
        return Err("MaxUnpool op must have either two or three inputs".to_string());
    }
    let Some(x) = cx.shape(0).map(<[_]>::to_vec) else {
        return Ok(());
    };
    if x.len() < 2 {
        return Err("input tensor X must have at least 2 dimensions".to_string());
    }
    let n = x.len() - 2;
    let pads = cx.attr_ints("pads").unwrap_or_else(|| vec![0; 2 * n]);
    if pads.len() != 2 * n {
        return Err("attribute pads has incorrect size".to_string());
    }
    let strides = cx.attr_ints("strides").unwrap_or_else(|| vec![1; n]);
    if strides.len() != n {
        return Err("attribute strides has incorrect size".to_string());
    }
    let Some(kernel) = cx.attr_ints("kernel_shape") else {
        return Err("attribute kernel_shape must be specified".to_string());
    };
    if kernel.len() != n {
        return Err("attribute kernel_shape has incorrect size".to_string());
    }
    if n_in == 3 {
        if let Some(s) = cx.shape(2) {
            if s.len() != 1 {
                return Err("'output_shape' must be rank 1 tensor".to_string());
            }
            if let Dim::Fixed(v) = s[0]
                && v != x.len() as i64
            {
                return Err(
                    "'output_shape' must have as many elements as the rank of X".to_string()
                );
            }
        }
        return Ok(());
    }
    let Some(ind) = cx.shape(1) else {
        return Ok(());
    };
    if ind.len() < 2 {
        return Err("indices tensor I must have at least 2 dimensions".to_string());
    }
    let mut dims = vec![x[0].clone(), ind[1].clone()];
    for i in 0..n {
        dims.push(match x[2 + i] {
            Dim::Fixed(v) => fixed(
                i128::from(strides[i]) * (i128::from(v) - 1) + i128::from(kernel[i])
                    - i128::from(pads[i])
                    - i128::from(pads[i + n]),
            ),
            _ => Dim::Unknown,
        });
    }
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

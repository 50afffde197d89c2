//! One Caffe2 op to ONNX nodes, by the frontend's rules: renames
//! (SpatialBN -> BatchNormalization, Copy -> Identity, ...), legacy
//! conv/pool arguments folded into `kernel_shape`/`strides`/`pads`,
//! `global_pooling` to the global pools, FC to Flatten + Gemm, Sum to Add,
//! legacy broadcasting through Unsqueeze, Concat/Reshape extra outputs,
//! ChannelShuffle to Reshape/Transpose/Reshape, Softmax's 2-D coercion; and
//! for later opsets the attributes that became inputs.

use super::Builder;
use netport_caffe2::proto::{Argument, OperatorDef};
use netport_onnx::proto::attribute_proto::AttributeType;
use netport_onnx::proto::{AttributeProto, NodeProto};

/// Why an op was not converted: it has no ONNX equivalent (collected).
pub enum Fail {
    /// What is missing.
    Unsupported(String),
}

type R = Result<(), Fail>;

fn no(reason: impl Into<String>) -> Fail {
    Fail::Unsupported(reason.into())
}

/// Arguments that only steer Caffe2's engines and have no meaning in ONNX.
const RUNTIME_ARGS: &[&str] = &[
    "cudnn_exhaustive_search",
    "exhaustive_search",
    "use_cudnn",
    "ws_nbytes_limit",
    "shared_buffer",
    "float16_compute",
    "deterministic",
    "cudnn_algo",
    "init_params",
];

fn a_i(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(i),
        ..Default::default()
    }
}

fn a_f(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(f),
        ..Default::default()
    }
}

fn a_ints(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints,
        ..Default::default()
    }
}

fn a_s(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(bytes::Bytes::copy_from_slice(s.as_bytes())),
        ..Default::default()
    }
}

/// The op's arguments, checked: `order` must be NCHW, runtime hints are
/// dropped, and every other argument must be one the converter reads.
struct Args<'a> {
    op: &'a OperatorDef,
}

impl<'a> Args<'a> {
    fn new(op: &'a OperatorDef, known: &[&str]) -> Result<Self, Fail> {
        for a in &op.arg {
            let name = a.name();
            if name == "order" {
                let order = a.s.as_deref().unwrap_or(b"NCHW");
                if order != b"NCHW" {
                    return Err(no(format!(
                        "order {} (ONNX is NCHW)",
                        String::from_utf8_lossy(order)
                    )));
                }
                continue;
            }
            if RUNTIME_ARGS.contains(&name) || known.contains(&name) {
                continue;
            }
            return Err(no(format!("argument '{name}' has no ONNX equivalent")));
        }
        Ok(Args { op })
    }
    fn get(&self, name: &str) -> Option<&'a Argument> {
        self.op.arg.iter().find(|a| a.name() == name)
    }
    fn i(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(|a| a.i)
    }
    fn f(&self, name: &str) -> Option<f32> {
        self.get(name).and_then(|a| a.f)
    }
    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name)
            .filter(|a| !a.ints.is_empty())
            .map(|a| a.ints.clone())
    }
}

fn node(op_type: &str, inputs: Vec<String>, outputs: Vec<String>, name: &str) -> NodeProto {
    NodeProto {
        op_type: Some(op_type.into()),
        input: inputs,
        output: outputs,
        name: Some(name.to_string()).filter(|n| !n.is_empty()),
        ..Default::default()
    }
}

fn with(mut n: NodeProto, attrs: Vec<AttributeProto>) -> NodeProto {
    n.attribute = attrs;
    n
}

/// Converts one op (its blob names already in SSA form); `needed` says
/// which of its outputs later ops or the net's outputs read.
pub fn convert(b: &mut Builder, op: &OperatorDef, needed: &[bool]) -> R {
    let ty = op.r#type();
    if !op.control_input.is_empty() || op.is_gradient_op() {
        return Err(no("control inputs or gradient op"));
    }
    if op.output.is_empty() {
        return Err(no("an op without outputs"));
    }
    let name = op.name();
    let x = || op.input.first().cloned().unwrap_or_default();
    let y = || op.output[0].clone();
    let extra_needed = needed.iter().skip(1).any(|&n| n);
    match ty {
        "Relu" | "Sigmoid" | "Tanh" | "Exp" | "Log" | "Sqrt" | "Abs" | "Negative" | "Copy"
        | "Alias" | "Floor" | "Ceil" | "Softsign" | "Sin" | "Cos" | "Not" => {
            Args::new(op, &[])?;
            let onnx = match ty {
                "Negative" => "Neg",
                "Copy" | "Alias" => "Identity",
                t => t,
            };
            one_output(op)?;
            b.nodes.push(node(onnx, vec![x()], vec![y()], name));
        }
        "LeakyRelu" | "Elu" => {
            let a = Args::new(op, &["alpha"])?;
            let mut attrs = Vec::new();
            if let Some(al) = a.f("alpha") {
                attrs.push(a_f("alpha", al));
            }
            b.nodes
                .push(with(node(ty, vec![x()], vec![y()], name), attrs));
        }
        "Conv" | "Conv1D" | "Conv2D" | "Conv3D" | "ConvTranspose" | "MaxPool" | "MaxPool1D"
        | "MaxPool2D" | "MaxPool3D" | "AveragePool" | "AveragePool1D" | "AveragePool2D"
        | "AveragePool3D" => conv_pool(b, op)?,
        "SpatialBN" => {
            let a = Args::new(op, &["is_test", "epsilon", "momentum", "num_batches"])?;
            if a.i("is_test").unwrap_or(0) != 1 || op.output.len() != 1 {
                return Err(no("SpatialBN in training mode (is_test must be 1)"));
            }
            let mut attrs = vec![a_f("epsilon", a.f("epsilon").unwrap_or(1e-5))];
            if let Some(m) = a.f("momentum") {
                attrs.push(a_f("momentum", m));
            }
            b.nodes.push(with(
                node("BatchNormalization", op.input.clone(), vec![y()], name),
                attrs,
            ));
        }
        "FC" | "FCTransposed" => fc(b, op)?,
        "Sum" => {
            Args::new(op, &[])?;
            let onnx = match op.input.len() {
                1 => "Identity",
                2 => "Add",
                _ => "Sum",
            };
            b.nodes.push(node(onnx, op.input.clone(), vec![y()], name));
        }
        "Add" | "Sub" | "Mul" | "Div" | "And" | "Or" | "Xor" | "EQ" | "LT" | "GT" => binary(b, op)?,
        "Softmax" => softmax(b, op)?,
        "Flatten" => {
            let a = Args::new(op, &["axis"])?;
            b.nodes.push(with(
                node("Flatten", vec![x()], vec![y()], name),
                vec![a_i("axis", a.i("axis").unwrap_or(1))],
            ));
        }
        "Dropout" => {
            let a = Args::new(op, &["ratio", "is_test"])?;
            if a.i("is_test").unwrap_or(0) != 1 {
                return Err(no("Dropout in training mode (is_test must be 1)"));
            }
            if extra_needed {
                return Err(no("Dropout's mask output is read"));
            }
            // In inference Dropout is the identity, in both formats.
            let ratio = a.f("ratio").unwrap_or(0.5);
            if b.opset >= 12 {
                let r = b.const_f32("ratio", &[], &[ratio]);
                b.nodes.push(node("Dropout", vec![x(), r], vec![y()], name));
            } else {
                b.nodes.push(with(
                    node("Dropout", vec![x()], vec![y()], name),
                    vec![a_f("ratio", ratio)],
                ));
            }
        }
        "LRN" => {
            let a = Args::new(op, &["size", "alpha", "beta", "bias"])?;
            if extra_needed {
                return Err(no("LRN's scale output is read"));
            }
            let size = a.i("size").ok_or_else(|| no("LRN without size"))?;
            b.nodes.push(with(
                node("LRN", vec![x()], vec![y()], name),
                vec![
                    a_i("size", size),
                    a_f("alpha", a.f("alpha").unwrap_or(0.0)),
                    a_f("beta", a.f("beta").unwrap_or(0.0)),
                    a_f("bias", a.f("bias").unwrap_or(1.0)),
                ],
            ));
        }
        "Concat" => concat(b, op, extra_needed)?,
        "Split" => split(b, op)?,
        "ChannelShuffle" => channel_shuffle(b, op)?,
        "Reshape" => {
            let a = Args::new(op, &["shape"])?;
            let shape_input = match (a.ints("shape"), op.input.get(1)) {
                (Some(s), None) => b.const_i64(&format!("{}_shape", y()), &s),
                (None, Some(s)) => s.clone(),
                _ => {
                    return Err(no(
                        "Reshape needs exactly one of the shape argument and input",
                    ));
                }
            };
            b.nodes
                .push(node("Reshape", vec![x(), shape_input], vec![y()], name));
            if extra_needed && let Some(old) = op.output.get(1) {
                b.nodes
                    .push(node("Shape", vec![x()], vec![old.clone()], ""));
            }
        }
        "Transpose" => {
            let a = Args::new(op, &["axes"])?;
            let mut attrs = Vec::new();
            if let Some(axes) = a.ints("axes") {
                attrs.push(a_ints("perm", axes));
            }
            b.nodes
                .push(with(node("Transpose", vec![x()], vec![y()], name), attrs));
        }
        "Clip" => {
            let a = Args::new(op, &["min", "max"])?;
            if b.opset >= 11 {
                let mut inputs = vec![x()];
                let lo = a.f("min").unwrap_or(f32::MIN);
                let hi = a.f("max").unwrap_or(f32::MAX);
                inputs.push(b.const_f32("clip_min", &[], &[lo]));
                inputs.push(b.const_f32("clip_max", &[], &[hi]));
                b.nodes.push(node("Clip", inputs, vec![y()], name));
            } else {
                let mut attrs = Vec::new();
                if let Some(lo) = a.f("min") {
                    attrs.push(a_f("min", lo));
                }
                if let Some(hi) = a.f("max") {
                    attrs.push(a_f("max", hi));
                }
                b.nodes
                    .push(with(node("Clip", vec![x()], vec![y()], name), attrs));
            }
        }
        "Squeeze" | "ExpandDims" => {
            let a = Args::new(op, &["dims"])?;
            let dims = a.ints("dims").ok_or_else(|| no("no dims"))?;
            let onnx = if ty == "Squeeze" {
                "Squeeze"
            } else {
                "Unsqueeze"
            };
            if b.opset >= 13 {
                let axes = b.const_i64("axes", &dims);
                b.nodes.push(node(onnx, vec![x(), axes], vec![y()], name));
            } else {
                b.nodes.push(with(
                    node(onnx, vec![x()], vec![y()], name),
                    vec![a_ints("axes", dims)],
                ));
            }
        }
        "Scale" => {
            let a = Args::new(op, &["scale"])?;
            let s = b.const_f32("scale", &[], &[a.f("scale").unwrap_or(1.0)]);
            b.nodes.push(node("Mul", vec![x(), s], vec![y()], name));
        }
        "BatchMatMul" => {
            let a = Args::new(op, &["trans_a", "trans_b", "broadcast"])?;
            if a.i("trans_a").unwrap_or(0) != 0 || a.i("trans_b").unwrap_or(0) != 0 {
                return Err(no("BatchMatMul with transposes"));
            }
            b.nodes
                .push(node("MatMul", op.input.clone(), vec![y()], name));
        }
        "PadImage" => pad_image(b, op)?,
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" => {
            let a = Args::new(op, &["axes", "keepdims"])?;
            one_output(op)?;
            let keep = a.i("keepdims").unwrap_or(1);
            let axes = a.ints("axes");
            let axes_as_input = b.opset >= 18 || (ty == "ReduceSum" && b.opset >= 13);
            let mut inputs = vec![x()];
            let mut attrs = vec![a_i("keepdims", keep)];
            match axes {
                Some(ax) if axes_as_input => inputs.push(b.const_i64("axes", &ax)),
                Some(ax) => attrs.push(a_ints("axes", ax)),
                None => {}
            }
            b.nodes.push(with(node(ty, inputs, vec![y()], name), attrs));
        }
        _ => return Err(no("no ONNX equivalent in the frontend's table")),
    }
    Ok(())
}

fn one_output(op: &OperatorDef) -> R {
    if op.output.len() != 1 {
        return Err(no(format!("{} outputs", op.output.len())));
    }
    Ok(())
}

/// A scalar, `_h`/`_w` pair, or list argument as a list of `n` entries.
fn folded(a: &Args<'_>, list: &str, scalar: &str, pair: [&str; 2], n: usize) -> Option<Vec<i64>> {
    if let Some(v) = a.i(scalar) {
        return Some(vec![v; n]);
    }
    if let (Some(h), Some(w)) = (a.i(pair[0]), a.i(pair[1])) {
        return Some(vec![h, w]);
    }
    a.ints(list)
}

fn conv_pool(b: &mut Builder, op: &OperatorDef) -> R {
    let ty = op.r#type();
    let base = ty
        .trim_end_matches("1D")
        .trim_end_matches("2D")
        .trim_end_matches("3D");
    let known = [
        "kernel",
        "kernels",
        "kernel_h",
        "kernel_w",
        "stride",
        "strides",
        "stride_h",
        "stride_w",
        "pad",
        "pads",
        "pad_t",
        "pad_l",
        "pad_b",
        "pad_r",
        "dilation",
        "dilations",
        "dilation_h",
        "dilation_w",
        "group",
        "legacy_pad",
        "global_pooling",
        "count_include_pad",
        "adj",
        "adjs",
        "adj_h",
        "adj_w",
        // Left by Caffe2's ONNX backend, which passes ONNX attributes on.
        "ceil_mode",
        "storage_order",
        "auto_pad",
    ];
    let a = Args::new(op, &known)?;
    if a.i("ceil_mode").unwrap_or(0) != 0 || a.i("storage_order").unwrap_or(0) != 0 {
        return Err(no("ceil_mode or storage_order set (Caffe2 ignores them)"));
    }
    if let Some(p) = a.get("auto_pad").and_then(|p| p.s.as_deref())
        && !matches!(p, b"" | b"NOTSET")
    {
        return Err(no(format!("auto_pad {}", String::from_utf8_lossy(p))));
    }
    let name = op.name();
    let (x, y) = (op.input[0].clone(), op.output[0].clone());
    one_output(op)?;
    if a.i("global_pooling").unwrap_or(0) != 0 {
        let onnx = match base {
            "MaxPool" => "GlobalMaxPool",
            "AveragePool" => "GlobalAveragePool",
            _ => return Err(no("global_pooling on a convolution")),
        };
        b.nodes.push(node(onnx, vec![x], vec![y], name));
        return Ok(());
    }
    let rank = b.rank(&x);
    let spatial = rank.map(|r| r.saturating_sub(2)).unwrap_or(2);
    let kernel = folded(&a, "kernels", "kernel", ["kernel_h", "kernel_w"], spatial);
    let kernel = match kernel {
        Some(k) => k,
        None if base != "MaxPool" && base != "AveragePool" => {
            // A convolution's kernel is its weight's spatial dims.
            let w = op.input.get(1).and_then(|w| b.fixed_shape(w));
            w.map(|w| w[2..].to_vec())
                .ok_or_else(|| no("no kernel size and an unknown weight shape"))?
        }
        None => return Err(no("pooling without a kernel size")),
    };
    let n = kernel.len();
    let strides = folded(&a, "strides", "stride", ["stride_h", "stride_w"], n);
    let dilations = folded(&a, "dilations", "dilation", ["dilation_h", "dilation_w"], n);
    let mut pads = if let Some(p) = a.i("pad") {
        Some(vec![p; 2 * n])
    } else if let (Some(t), Some(l), Some(bo), Some(r)) =
        (a.i("pad_t"), a.i("pad_l"), a.i("pad_b"), a.i("pad_r"))
    {
        Some(vec![t, l, bo, r])
    } else {
        a.ints("pads")
    };
    let mut attrs = vec![a_ints("kernel_shape", kernel.clone())];
    match a.i("legacy_pad").unwrap_or(0) {
        0 => {}
        1 => {
            attrs.push(a_s("auto_pad", "VALID"));
            pads = None;
        }
        2 => {
            attrs.push(a_s("auto_pad", "SAME_UPPER"));
            pads = None;
        }
        3 if base != "Conv" && base != "ConvTranspose" => {
            // CAFFE_LEGACY_POOLING: output rounded up; the tail pad grows.
            let shape = b
                .fixed_shape(&x)
                .ok_or_else(|| no("legacy pooling padding on an input of unknown shape"))?;
            let s = strides.clone().unwrap_or(vec![1; n]);
            let head: Vec<i64> = pads.clone().map(|p| p[..n].to_vec()).unwrap_or(vec![0; n]);
            let mut tail = Vec::with_capacity(n);
            for i in 0..n {
                let (inp, k, st, ph) = (shape[i + 2], kernel[i], s[i].max(1), head[i]);
                let mut out = ((inp + 2 * ph - k) as f64 / st as f64).ceil() as i64 + 1;
                if ph > 0 && (out - 1) * st >= inp + ph {
                    out -= 1;
                }
                let std = (inp + 2 * ph - k) / st + 1;
                tail.push(ph + st * (out - std));
            }
            pads = Some([head, tail].concat());
        }
        other => return Err(no(format!("legacy_pad {other}"))),
    }
    if let Some(s) = strides {
        attrs.push(a_ints("strides", s));
    }
    if let Some(p) = pads {
        if p.len() != 2 * n {
            return Err(no(format!("pads {p:?} for a {n}-D kernel")));
        }
        attrs.push(a_ints("pads", p));
    }
    match base {
        "Conv" | "ConvTranspose" => {
            if let Some(d) = dilations {
                attrs.push(a_ints("dilations", d));
            }
            attrs.push(a_i("group", a.i("group").unwrap_or(1)));
            if base == "ConvTranspose"
                && let Some(adj) = folded(&a, "adjs", "adj", ["adj_h", "adj_w"], n)
            {
                attrs.push(a_ints("output_padding", adj));
            }
        }
        _ => {
            if dilations.is_some_and(|d| d.iter().any(|&x| x != 1)) {
                return Err(no("pooling with dilations"));
            }
            if base == "AveragePool"
                && let Some(c) = a.i("count_include_pad")
            {
                attrs.push(a_i("count_include_pad", c));
            }
        }
    }
    b.nodes
        .push(with(node(base, op.input.clone(), vec![y], name), attrs));
    Ok(())
}

fn fc(b: &mut Builder, op: &OperatorDef) -> R {
    let a = Args::new(op, &["axis", "axis_w"])?;
    one_output(op)?;
    if op.input.len() != 3 {
        return Err(no("FC needs X, W and b"));
    }
    let name = op.name();
    let (x, w, bias, y) = (
        op.input[0].clone(),
        op.input[1].clone(),
        op.input[2].clone(),
        op.output[0].clone(),
    );
    let axis = a.i("axis").unwrap_or(1);
    let axis_w = a.i("axis_w").unwrap_or(1);
    let x2 = if b.rank(&x) == Some(2) && axis == 1 {
        x
    } else {
        if axis < 0 {
            return Err(no("FC with a negative axis"));
        }
        let rank = b.rank(&x);
        if axis != 1 && rank.is_none_or(|r| r as i64 > axis + 1) {
            // The output keeps X's leading dims: only axis 1 (2-D out) here.
            return Err(no(format!("FC with axis {axis} on a rank {rank:?} input")));
        }
        let f = b.fresh(&format!("{x}_flat"));
        b.nodes.push(with(
            node("Flatten", vec![x], vec![f.clone()], ""),
            vec![a_i("axis", axis)],
        ));
        f
    };
    let w_rank = b.rank(&w);
    let w2 = if w_rank == Some(2) && axis_w == 1 {
        w
    } else {
        let f = b.fresh(&format!("{w}_2d"));
        b.nodes.push(with(
            node("Flatten", vec![w], vec![f.clone()], ""),
            vec![a_i("axis", axis_w)],
        ));
        f
    };
    let trans_b = i64::from(op.r#type() == "FC");
    b.nodes.push(with(
        node("Gemm", vec![x2, w2, bias], vec![y], name),
        vec![a_i("transB", trans_b)],
    ));
    Ok(())
}

fn binary(b: &mut Builder, op: &OperatorDef) -> R {
    let a = Args::new(op, &["broadcast", "axis", "axis_str"])?;
    one_output(op)?;
    if op.input.len() != 2 {
        return Err(no("a binary op needs two inputs"));
    }
    if a.get("axis_str").is_some() {
        return Err(no("axis_str"));
    }
    let onnx = match op.r#type() {
        "EQ" => "Equal",
        "LT" => "Less",
        "GT" => "Greater",
        t => t,
    };
    let (lhs, mut rhs) = (op.input[0].clone(), op.input[1].clone());
    if a.i("broadcast").unwrap_or(0) == 1
        && let Some(axis) = a.i("axis").filter(|&ax| ax != -1)
    {
        let ra = b
            .rank(&lhs)
            .ok_or_else(|| no("legacy broadcast on an input of unknown rank"))?;
        let rb = b
            .rank(&rhs)
            .ok_or_else(|| no("legacy broadcast of an operand of unknown rank"))?;
        let count = ra as i64 - axis - rb as i64;
        if count < 0 {
            return Err(no(format!(
                "legacy broadcast axis {axis} does not fit ranks {ra}, {rb}"
            )));
        }
        if count > 0 {
            let axes: Vec<i64> = (rb as i64..rb as i64 + count).collect();
            let u = b.fresh(&format!("{rhs}_unsqueezed"));
            if b.opset >= 13 {
                let c = b.const_i64("axes", &axes);
                b.nodes
                    .push(node("Unsqueeze", vec![rhs, c], vec![u.clone()], ""));
            } else {
                b.nodes.push(with(
                    node("Unsqueeze", vec![rhs], vec![u.clone()], ""),
                    vec![a_ints("axes", axes)],
                ));
            }
            rhs = u;
        }
    }
    b.nodes.push(node(
        onnx,
        vec![lhs, rhs],
        vec![op.output[0].clone()],
        op.name(),
    ));
    Ok(())
}

fn softmax(b: &mut Builder, op: &OperatorDef) -> R {
    let a = Args::new(op, &["axis"])?;
    one_output(op)?;
    let (x, y) = (op.input[0].clone(), op.output[0].clone());
    let axis = a.i("axis").unwrap_or(1);
    if b.opset < 13 {
        b.nodes.push(with(
            node("Softmax", vec![x], vec![y], op.name()),
            vec![a_i("axis", axis)],
        ));
        return Ok(());
    }
    // Softmax-13 is over one axis: the same as Caffe2's 2-D coercion only
    // when `axis` is the last; otherwise flatten, softmax, reshape back.
    let rank = b
        .rank(&x)
        .ok_or_else(|| no("Softmax on an input of unknown rank"))? as i64;
    let axis = if axis < 0 { axis + rank } else { axis };
    if axis == rank - 1 {
        b.nodes.push(with(
            node("Softmax", vec![x], vec![y], op.name()),
            vec![a_i("axis", axis)],
        ));
        return Ok(());
    }
    let (f, s, shape) = (
        b.fresh(&format!("{x}_flat")),
        b.fresh(&format!("{y}_2d")),
        b.fresh(&format!("{x}_shape")),
    );
    b.nodes.push(with(
        node("Flatten", vec![x.clone()], vec![f.clone()], ""),
        vec![a_i("axis", axis)],
    ));
    b.nodes.push(with(
        node("Softmax", vec![f], vec![s.clone()], op.name()),
        vec![a_i("axis", 1)],
    ));
    b.nodes
        .push(node("Shape", vec![x], vec![shape.clone()], ""));
    b.nodes.push(node("Reshape", vec![s, shape], vec![y], ""));
    Ok(())
}

fn concat_axis(a: &Args<'_>) -> i64 {
    a.i("axis").unwrap_or(1)
}

fn concat(b: &mut Builder, op: &OperatorDef, extra_needed: bool) -> R {
    let a = Args::new(op, &["axis", "add_axis"])?;
    let axis = concat_axis(&a);
    let name = op.name();
    let mut inputs = op.input.clone();
    if a.i("add_axis").unwrap_or(0) != 0 {
        for i in &mut inputs {
            let u = b.fresh(&format!("{i}_unsqueezed"));
            if b.opset >= 13 {
                let c = b.const_i64("axes", &[axis]);
                b.nodes
                    .push(node("Unsqueeze", vec![i.clone(), c], vec![u.clone()], ""));
            } else {
                b.nodes.push(with(
                    node("Unsqueeze", vec![i.clone()], vec![u.clone()], ""),
                    vec![a_ints("axes", vec![axis])],
                ));
            }
            *i = u;
        }
    }
    if extra_needed && let Some(info) = op.output.get(1) {
        // split_info: each input's size along the axis, as int32.
        let mut sizes = Vec::new();
        for i in &op.input {
            let s = b
                .fixed_shape(i)
                .ok_or_else(|| no("Concat's split_info is read and an input shape is unknown"))?;
            let ax = if axis < 0 {
                axis + s.len() as i64
            } else {
                axis
            };
            sizes.push(if a.i("add_axis").unwrap_or(0) != 0 {
                1
            } else {
                s.get(ax as usize).copied().unwrap_or(0)
            });
        }
        b.nodes.push(int32_constant(info, &sizes));
    }
    b.nodes.push(with(
        node("Concat", inputs, vec![op.output[0].clone()], name),
        vec![a_i("axis", axis)],
    ));
    Ok(())
}

fn int32_constant(name: &str, values: &[i64]) -> NodeProto {
    let t = netport_onnx::proto::TensorProto {
        dims: vec![values.len() as i64],
        data_type: Some(netport_onnx::proto::tensor_proto::DataType::Int32 as i32),
        raw_data: Some(
            values
                .iter()
                .flat_map(|v| (*v as i32).to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        ),
        ..Default::default()
    };
    with(
        node("Constant", vec![], vec![name.to_string()], ""),
        vec![AttributeProto {
            name: Some("value".into()),
            r#type: Some(AttributeType::Tensor as i32),
            t: Some(t),
            ..Default::default()
        }],
    )
}

fn split(b: &mut Builder, op: &OperatorDef) -> R {
    let a = Args::new(op, &["axis", "split", "add_axis"])?;
    if a.i("add_axis").unwrap_or(0) != 0 {
        return Err(no("Split with add_axis"));
    }
    if op.input.len() > 1 {
        return Err(no("Split with the sizes as an input"));
    }
    let axis = concat_axis(&a);
    let mut attrs = vec![a_i("axis", axis)];
    let mut inputs = vec![op.input[0].clone()];
    match a.ints("split") {
        Some(s) if b.opset >= 13 => inputs.push(b.const_i64("split", &s)),
        Some(s) => attrs.push(a_ints("split", s)),
        None if b.opset >= 18 => attrs.push(a_i("num_outputs", op.output.len() as i64)),
        None => {}
    }
    b.nodes.push(with(
        node("Split", inputs, op.output.clone(), op.name()),
        attrs,
    ));
    Ok(())
}

fn channel_shuffle(b: &mut Builder, op: &OperatorDef) -> R {
    let a = Args::new(op, &["group", "kernel"])?;
    one_output(op)?;
    let g = a.i("group").unwrap_or(1);
    let x = op.input[0].clone();
    let s = b
        .fixed_shape(&x)
        .ok_or_else(|| no("ChannelShuffle on an input of unknown shape"))?;
    if s.len() != 4 || g <= 0 || s[1] % g != 0 {
        return Err(no(format!("ChannelShuffle of shape {s:?} in {g} groups")));
    }
    let five = b.const_i64("shuffle_shape", &[s[0], g, s[1] / g, s[2], s[3]]);
    let four = b.const_i64("shuffle_back", &s);
    let (r, t) = (
        b.fresh(&format!("{x}_grouped")),
        b.fresh(&format!("{x}_shuffled")),
    );
    b.nodes
        .push(node("Reshape", vec![x, five], vec![r.clone()], ""));
    b.nodes.push(with(
        node("Transpose", vec![r], vec![t.clone()], ""),
        vec![a_ints("perm", vec![0, 2, 1, 3, 4])],
    ));
    b.nodes.push(node(
        "Reshape",
        vec![t, four],
        vec![op.output[0].clone()],
        op.name(),
    ));
    Ok(())
}

fn pad_image(b: &mut Builder, op: &OperatorDef) -> R {
    let a = Args::new(
        op,
        &[
            "pad", "pads", "pad_t", "pad_l", "pad_b", "pad_r", "mode", "value",
        ],
    )?;
    one_output(op)?;
    let p = if let Some(p) = a.i("pad") {
        vec![p; 4]
    } else if let (Some(t), Some(l), Some(bo), Some(r)) =
        (a.i("pad_t"), a.i("pad_l"), a.i("pad_b"), a.i("pad_r"))
    {
        vec![t, l, bo, r]
    } else {
        a.ints("pads").ok_or_else(|| no("PadImage without pads"))?
    };
    if p.len() != 4 {
        return Err(no("PadImage pads of other than 4 entries"));
    }
    let mode = a
        .get("mode")
        .and_then(|m| m.s.as_deref())
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .unwrap_or_else(|| "constant".into());
    let value = a.f("value").unwrap_or(0.0);
    let pads = vec![0, 0, p[0], p[1], 0, 0, p[2], p[3]];
    let (x, y) = (op.input[0].clone(), op.output[0].clone());
    if b.opset >= 11 {
        let pc = b.const_i64("pads", &pads);
        let vc = b.const_f32("pad_value", &[], &[value]);
        b.nodes.push(with(
            node("Pad", vec![x, pc, vc], vec![y], op.name()),
            vec![a_s("mode", &mode)],
        ));
    } else {
        b.nodes.push(with(
            node("Pad", vec![x], vec![y], op.name()),
            vec![
                a_ints("pads", pads),
                a_s("mode", &mode),
                a_f("value", value),
            ],
        ));
    }
    Ok(())
}

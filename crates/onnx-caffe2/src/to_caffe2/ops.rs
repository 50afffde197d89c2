//! One ONNX node to Caffe2 ops: the op table. Renames and attribute renames
//! of the backend, its special converters (Conv/pool pads, global pools,
//! BatchNormalization, Dropout, Gemm to FC, Reshape/Concat extra outputs,
//! LRN defaults, Cast codes, ...), and for opsets after 9 the constant
//! inputs that replaced attributes, read back into arguments.

use super::Cx;
use super::fill::{Values, fill_op, fill_op_of, tensor_values};
use crate::error::ConvertError;
use netport_caffe2::proto::{Argument, OperatorDef};
use netport_onnx::proto::attribute_proto::AttributeType;
use netport_onnx::proto::{AttributeProto, NodeProto};
use prost::Message;

/// Why a node was not converted.
pub enum Fail {
    /// No Caffe2 equivalent (collected; the CLI's exit code 1).
    Unsupported(String),
    /// Broken input (stops the conversion).
    Invalid(ConvertError),
}

impl From<ConvertError> for Fail {
    fn from(e: ConvertError) -> Self {
        Fail::Invalid(e)
    }
}

type R<T> = Result<T, Fail>;

pub(super) fn no(reason: impl Into<String>) -> Fail {
    Fail::Unsupported(reason.into())
}

/// The ONNX ops the table converts, with the first and last opset (inclusive)
/// each rule covers. An op at an opset outside its range is unsupported.
pub const OP_TABLE: &[(&str, i64, i64)] = &[
    ("Abs", 6, 28),
    ("Add", 7, 28),
    ("And", 7, 28),
    ("ArgMax", 1, 28),
    ("ArgMin", 1, 28),
    ("AveragePool", 7, 28),
    ("BatchNormalization", 7, 28),
    ("Cast", 6, 28),
    ("Ceil", 6, 28),
    ("Clip", 6, 28),
    ("Concat", 4, 28),
    ("Constant", 1, 28),
    ("ConstantOfShape", 9, 28),
    ("Conv", 1, 28),
    ("ConvTranspose", 1, 28),
    ("Cos", 7, 28),
    ("Div", 7, 28),
    ("Dropout", 7, 28),
    ("Elu", 6, 28),
    ("Equal", 7, 28),
    ("Exp", 6, 28),
    ("Expand", 8, 28),
    ("Flatten", 1, 28),
    ("Floor", 6, 28),
    ("Gather", 1, 28),
    ("Gemm", 7, 28),
    ("GRU", 7, 28),
    ("GlobalAveragePool", 1, 28),
    ("GlobalMaxPool", 1, 28),
    ("Greater", 7, 28),
    ("Identity", 1, 28),
    ("If", 1, 28),
    ("LRN", 1, 28),
    ("LSTM", 7, 28),
    ("LeakyRelu", 6, 28),
    ("Less", 7, 28),
    ("Log", 6, 28),
    ("LogSoftmax", 1, 28),
    ("Loop", 1, 28),
    ("MatMul", 1, 28),
    ("Max", 8, 28),
    ("MaxPool", 1, 28),
    ("Min", 8, 28),
    ("Mul", 7, 28),
    ("Neg", 6, 28),
    ("Not", 1, 28),
    ("Or", 7, 28),
    ("Pad", 2, 28),
    ("Pow", 7, 28),
    ("RNN", 7, 28),
    ("Reciprocal", 6, 28),
    ("ReduceMax", 1, 28),
    ("ReduceMean", 1, 28),
    ("ReduceMin", 1, 28),
    ("ReduceSum", 1, 28),
    ("Relu", 6, 28),
    ("Reshape", 5, 28),
    ("Selu", 6, 28),
    ("Shape", 1, 28),
    ("Sigmoid", 6, 28),
    ("Sign", 9, 28),
    ("Sin", 7, 28),
    ("Slice", 1, 28),
    ("Softmax", 1, 28),
    ("Softplus", 1, 28),
    ("Softsign", 1, 28),
    ("Split", 2, 28),
    ("Sqrt", 6, 28),
    ("Squeeze", 1, 28),
    ("Sub", 7, 28),
    ("Sum", 8, 28),
    ("Tanh", 6, 28),
    ("Transpose", 1, 28),
    ("Unsqueeze", 1, 28),
    ("Upsample", 7, 9),
    ("Xor", 7, 28),
];

/// True when the table converts `op` at `opset`.
pub fn in_table(op: &str, opset: i64) -> bool {
    OP_TABLE
        .iter()
        .any(|&(name, lo, hi)| name == op && (lo..=hi).contains(&opset))
}

/// The Caffe2 op C++ `convert_node` handles: its arguments come out in the
/// reverse of the ONNX attribute order (the converter walks an
/// `unordered_map`); the Python path keeps the ONNX order.
fn converted_in_cpp(op: &str) -> bool {
    matches!(
        op,
        "ArgMax"
            | "ArgMin"
            | "Cast"
            | "Constant"
            | "ConstantOfShape"
            | "Conv"
            | "AveragePool"
            | "GlobalAveragePool"
            | "GlobalMaxPool"
            | "MaxPool"
            | "Reshape"
            | "Gather"
            | "Gemm"
            | "Pad"
            | "Concat"
            | "LogSoftmax"
            | "Slice"
            | "Split"
            | "Reciprocal"
            | "BatchNormalization"
            | "MatMul"
            | "Upsample"
            | "Dropout"
            | "LRN"
    )
}

pub(super) fn arg_i(name: &str, i: i64) -> Argument {
    Argument {
        name: Some(name.into()),
        i: Some(i),
        ..Default::default()
    }
}

pub(super) fn arg_f(name: &str, f: f32) -> Argument {
    Argument {
        name: Some(name.into()),
        f: Some(f),
        ..Default::default()
    }
}

pub(super) fn arg_ints(name: &str, ints: Vec<i64>) -> Argument {
    Argument {
        name: Some(name.into()),
        ints,
        ..Default::default()
    }
}

pub(super) fn arg_s(name: &str, s: &str) -> Argument {
    Argument {
        name: Some(name.into()),
        s: Some(bytes::Bytes::copy_from_slice(s.as_bytes())),
        ..Default::default()
    }
}

/// An ONNX attribute as a Caffe2 argument named `name`.
fn attr_to_arg(a: &AttributeProto, name: &str) -> R<Argument> {
    let mut arg = Argument {
        name: Some(name.into()),
        ..Default::default()
    };
    let ty = a.r#type();
    match ty {
        AttributeType::Float => arg.f = Some(a.f()),
        AttributeType::Int => arg.i = Some(a.i()),
        AttributeType::String => arg.s = Some(a.s.clone().unwrap_or_default()),
        AttributeType::Tensor => {
            arg.s = Some(
                a.t.as_ref()
                    .map(|t| t.encode_to_vec())
                    .unwrap_or_default()
                    .into(),
            )
        }
        AttributeType::Floats => arg.floats = a.floats.clone(),
        AttributeType::Ints => arg.ints = a.ints.clone(),
        AttributeType::Strings => arg.strings = a.strings.clone(),
        // Untyped (very old exporters): by the field that is set.
        AttributeType::Undefined if a.f.is_some() => arg.f = a.f,
        AttributeType::Undefined if a.i.is_some() => arg.i = a.i,
        AttributeType::Undefined if a.s.is_some() => arg.s = a.s.clone(),
        AttributeType::Undefined if !a.ints.is_empty() => arg.ints = a.ints.clone(),
        AttributeType::Undefined if !a.floats.is_empty() => arg.floats = a.floats.clone(),
        other => {
            return Err(no(format!(
                "attribute '{}' of type {} has no Caffe2 argument form",
                a.name(),
                other.as_str_name()
            )));
        }
    }
    Ok(arg)
}

/// A node being converted: the node, its opset, and the op under way.
struct Node<'a> {
    node: &'a NodeProto,
    opset: i64,
}

impl<'a> Node<'a> {
    fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name() == name)
    }
    fn attr_i(&self, name: &str) -> Option<i64> {
        self.attr(name).map(|a| a.i())
    }
    fn attr_f(&self, name: &str) -> Option<f32> {
        self.attr(name).map(|a| a.f())
    }
    fn attr_ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attr(name).map(|a| a.ints.clone())
    }
    fn attr_s(&self, name: &str) -> Option<String> {
        self.attr(name)
            .map(|a| String::from_utf8_lossy(a.s()).into_owned())
    }
    fn input(&self, i: usize) -> Option<&'a str> {
        self.node
            .input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
    fn op_type(&self) -> &'a str {
        self.node.op_type()
    }

    /// The op with the node's inputs, outputs and name and a Caffe2 type.
    fn op(&self, ty: &str) -> OperatorDef {
        OperatorDef {
            input: self.node.input.clone(),
            output: self.node.output.clone(),
            name: Some(self.node.name().to_string()),
            r#type: Some(ty.to_string()),
            ..Default::default()
        }
    }

    /// The attributes as arguments: `kernel_shape` -> `kernels`, the
    /// per-op `renames`, `drop`ped ones left out; in the order the backend
    /// writes them.
    fn args(&self, renames: &[(&str, &str)], drop: &[&str]) -> R<Vec<Argument>> {
        let mut out = Vec::new();
        for a in &self.node.attribute {
            let name = a.name();
            if drop.contains(&name) {
                continue;
            }
            let mapped = renames
                .iter()
                .find(|(from, _)| *from == name)
                .map(|(_, to)| *to)
                .unwrap_or(if name == "kernel_shape" {
                    "kernels"
                } else {
                    name
                });
            out.push(attr_to_arg(a, mapped)?);
        }
        if converted_in_cpp(self.op_type()) {
            out.reverse();
        }
        Ok(out)
    }
}

fn set_arg(args: &mut [Argument], name: &str, f: impl FnOnce(&mut Argument)) {
    if let Some(a) = args.iter_mut().find(|a| a.name() == name) {
        f(a);
    }
}

fn has_arg(args: &[Argument], name: &str) -> bool {
    args.iter().any(|a| a.name() == name)
}

fn remove_arg(args: &mut Vec<Argument>, name: &str) {
    args.retain(|a| a.name() != name);
}

/// Drops trailing empty (omitted optional) inputs and the inputs at
/// `indices`, which were read into arguments.
fn drop_inputs(op: &mut OperatorDef, indices: &[usize]) {
    let kept: Vec<String> = op
        .input
        .iter()
        .enumerate()
        .filter(|(i, _)| !indices.contains(i))
        .map(|(_, s)| s.clone())
        .collect();
    op.input = kept;
    while op.input.last().is_some_and(String::is_empty) {
        op.input.pop();
    }
}

/// Converts one node. `Ok` holds the ops, in order.
pub fn convert(cx: &mut Cx<'_>, node: &NodeProto, opset: i64) -> R<Vec<OperatorDef>> {
    let n = Node { node, opset };
    let ty = n.op_type();
    if !node.domain().is_empty() && node.domain() != "ai.onnx" {
        return Err(no(format!("domain '{}' has no Caffe2 ops", node.domain())));
    }
    if !in_table(ty, opset) {
        return Err(no("no Caffe2 equivalent in the op table at this opset"));
    }
    if super::control::is_control(ty) {
        return super::control::convert(cx, node, opset);
    }
    for a in &node.attribute {
        if a.g.is_some() || !a.graphs.is_empty() {
            return Err(no(format!("subgraph attribute '{}'", a.name())));
        }
    }
    check_types(cx, &n)?;
    match ty {
        // Same name, attributes as they are (the Python common path).
        "Relu" | "Sigmoid" | "Tanh" | "Exp" | "Log" | "Sqrt" | "Abs" | "Floor" | "Ceil" | "Sin"
        | "Cos" | "Softsign" | "Softplus" | "Sign" | "Not" | "Elu" | "LeakyRelu" => {
            simple(&n, ty, &[], &[])
        }
        "Flatten" => {
            let mut ops = simple(&n, ty, &[], &[])?;
            let axis = n.attr_i("axis").unwrap_or(1);
            if axis < 0 {
                let r = cx
                    .rank(n.input(0))
                    .ok_or_else(|| no("negative Flatten axis on an unknown rank"))?;
                set_arg(&mut ops[0].arg, "axis", |a| a.i = Some(axis + r as i64));
            }
            Ok(ops)
        }
        "Shape" => {
            if n.attr("start").is_some() || n.attr("end").is_some() {
                return Err(no("Shape with start/end"));
            }
            simple(&n, ty, &[], &[])
        }
        "Add" | "Sub" | "Mul" | "Div" | "And" | "Or" | "Xor" => simple(&n, ty, &[], &[]),
        "Sum" | "Max" | "Min" => {
            same_shapes(cx, &n)?;
            simple(&n, ty, &[], &[])
        }
        // Caffe2's Expand: numpy broadcasting to the shape input, as ONNX's.
        "Expand" => simple(&n, "Expand", &[], &[]),
        "Equal" => simple(&n, "EQ", &[], &[]),
        "Less" => simple(&n, "LT", &[], &[]),
        "Greater" => simple(&n, "GT", &[], &[]),
        "Neg" => simple(&n, "Negative", &[], &[]),
        "Identity" => simple(&n, "Copy", &[], &[]),
        "Selu" => simple(&n, "Selu", &[("gamma", "scale")], &[]),
        "Transpose" => simple(&n, "Transpose", &[("perm", "axes")], &[]),
        "ConvTranspose" => {
            let mut ops = conv_transpose(cx, &n)?;
            kernels_from_weight(cx, &n, &mut ops[0])?;
            Ok(ops)
        }
        "Pow" => pow(cx, &n),
        "Softmax" => softmax(cx, &n),
        "LogSoftmax" => log_softmax(cx, &n),
        "Reciprocal" => {
            let mut op = n.op("Pow");
            op.name = Some(String::new());
            op.arg.push(arg_f("exponent", -1.0));
            Ok(vec![op])
        }
        "Conv" | "MaxPool" | "AveragePool" => {
            let mut ops = conv_pool(cx, &n)?;
            if ty == "Conv" {
                kernels_from_weight(cx, &n, &mut ops[0])?;
            }
            Ok(ops)
        }
        "GlobalAveragePool" | "GlobalMaxPool" => {
            let mut op = n.op(if ty == "GlobalMaxPool" {
                "MaxPool"
            } else {
                "AveragePool"
            });
            op.arg = n.args(&[], &[])?;
            op.arg.push(arg_i("global_pooling", 1));
            // Caffe2's ConvPoolOpBase demands a kernel size when the op's
            // *name* starts with "Conv" or contains "Pool" (a name check in
            // its constructor), which a global pool has not: such a name
            // would make the net fail to load, so it is left empty.
            let name = op.name();
            if name.starts_with("Conv") || name.contains("Pool") {
                op.name = Some(String::new());
            }
            Ok(vec![op])
        }
        "BatchNormalization" => batch_norm(cx, &n),
        "Dropout" => dropout(cx, &n),
        "LRN" => {
            let mut op = n.op("LRN");
            op.arg = n.args(&[], &[])?;
            if n.attr("alpha").is_none() {
                op.arg.push(arg_f("alpha", 1e-4));
            }
            if n.attr("beta").is_none() {
                op.arg.push(arg_f("beta", 0.75));
            }
            Ok(vec![op])
        }
        "Gemm" => gemm(cx, &n),
        "MatMul" => {
            if node.input.len() != 2 {
                return Err(no("MatMul needs exactly 2 inputs"));
            }
            if cx.rank(n.input(0)) == Some(1) || cx.rank(n.input(1)) == Some(1) {
                return Err(no("MatMul of a 1-D operand (BatchMatMul keeps the dim)"));
            }
            let mut op = n.op("BatchMatMul");
            op.arg = n.args(&[], &[])?;
            op.arg.push(arg_i("broadcast", 1));
            Ok(vec![op])
        }
        "Reshape" => reshape(cx, &n),
        "Concat" => {
            let mut op = n.op("Concat");
            op.arg = n.args(&[], &[])?;
            op.output.push(cx.dummy());
            Ok(vec![op])
        }
        "Split" => split(cx, &n),
        "Squeeze" | "Unsqueeze" => squeeze(cx, &n),
        "Clip" => clip(cx, &n),
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" => reduce(cx, &n),
        "Pad" => pad(cx, &n),
        "Cast" => cast(&n),
        "Constant" => constant(cx, &n),
        "ConstantOfShape" => constant_of_shape(cx, &n),
        "Gather" => {
            let axis = n.attr_i("axis").unwrap_or(0);
            let rank = cx.rank(n.input(0));
            let axis = match (axis, rank) {
                (a, Some(r)) if a < 0 => a + r as i64,
                (a, _) => a,
            };
            let ty = match axis {
                0 => "Gather",
                1 => "BatchGather",
                _ => return Err(no(format!("Gather with axis {axis} (Caffe2: 0 or 1 only)"))),
            };
            let mut op = n.op(ty);
            op.arg = n.args(&[], &["axis"])?;
            Ok(vec![op])
        }
        "ArgMax" | "ArgMin" => {
            if n.attr_i("select_last_index").unwrap_or(0) != 0 {
                return Err(no("select_last_index=1"));
            }
            let mut op = n.op(ty);
            op.arg = n.args(&[], &["select_last_index"])?;
            if n.attr("axis").is_none() {
                op.arg.push(arg_i("axis", 0));
            }
            Ok(vec![op])
        }
        "Upsample" => upsample(cx, &n),
        "Slice" if opset < 10 => slice_attrs(cx, &n),
        "Slice" => slice(cx, &n),
        _ => Err(no("no Caffe2 equivalent")),
    }
}

/// ONNX element type codes.
const FLOAT: i32 = 1;
const UINT8: i32 = 2;
const INT8: i32 = 3;
const UINT16: i32 = 4;
const INT16: i32 = 5;
const INT32: i32 = 6;
const INT64: i32 = 7;
const BOOL: i32 = 9;
const DOUBLE: i32 = 11;
/// The element types a Caffe2 CPU tensor can hold (what can be fed).
const CAFFE2_TYPES: &[i32] = &[
    FLOAT, DOUBLE, INT32, INT64, BOOL, UINT8, INT8, UINT16, INT16,
];

/// Which inputs of an op carry data whose type Caffe2's kernel restricts,
/// and the element types its CPU kernel is registered for.
fn type_rule(op: &str) -> (usize, &'static [i32]) {
    const ALL: usize = usize::MAX;
    match op {
        "Add" | "Sub" | "Mul" | "Div" => (ALL, &[FLOAT, DOUBLE, INT32, INT64]),
        "Equal" | "Less" | "Greater" => (ALL, &[FLOAT, DOUBLE, INT32, INT64, BOOL]),
        "And" | "Or" | "Xor" | "Not" => (ALL, &[BOOL]),
        "Max" | "Min" | "Sum" | "Pow" | "Mean" => (ALL, &[FLOAT]),
        "Flatten" | "Reshape" | "Transpose" | "Concat" | "Split" | "Squeeze" | "Unsqueeze"
        | "Identity" | "Shape" | "Gather" | "Constant" | "ConstantOfShape" | "Slice" => {
            (ALL, CAFFE2_TYPES)
        }
        "Cast" => (1, CAFFE2_TYPES),
        "Expand" => (1, &[FLOAT, DOUBLE, INT32, INT64]),
        "ArgMax" | "ArgMin" => (1, &[FLOAT, INT32, INT64]),
        _ => (1, &[FLOAT]),
    }
}

/// Refuses ops whose inputs have element types Caffe2 cannot compute with
/// (or hold at all), and inputs that are not tensors (sequences, optionals).
fn check_types(cx: &Cx<'_>, n: &Node<'_>) -> R<()> {
    let (count, allowed) = type_rule(n.op_type());
    for (i, input) in n.node.input.iter().enumerate().take(count) {
        if input.is_empty() {
            continue;
        }
        if cx.non_tensor.contains(input) {
            return Err(no(format!(
                "input '{input}' is not a tensor (Caffe2 has only tensors)"
            )));
        }
        let elem = cx.elem_type(input);
        if elem != 0 && !CAFFE2_TYPES.contains(&elem) {
            let name = netport_onnx::dtype::name(elem).unwrap_or("unknown");
            return Err(no(format!(
                "input {i} is {name}, which a Caffe2 tensor cannot hold"
            )));
        }
        if elem != 0 && !allowed.contains(&elem) {
            let name = netport_onnx::dtype::name(elem).unwrap_or("unknown");
            return Err(no(format!(
                "input {i} is {name}: Caffe2's CPU kernel takes no such type"
            )));
        }
    }
    Ok(())
}

fn simple(n: &Node<'_>, ty: &str, renames: &[(&str, &str)], drop: &[&str]) -> R<Vec<OperatorDef>> {
    let mut op = n.op(ty);
    op.arg = n.args(renames, drop)?;
    Ok(vec![op])
}

/// Caffe2's Sum/Max/Min take inputs of one shape (no broadcasting).
fn same_shapes(cx: &Cx<'_>, n: &Node<'_>) -> R<()> {
    if n.node.input.len() <= 1 {
        return Ok(());
    }
    let shapes: Vec<Option<Vec<i64>>> = n
        .node
        .input
        .iter()
        .map(|i| cx.fixed_shape(Some(i)))
        .collect();
    if shapes.iter().all(Option::is_some) && shapes.windows(2).all(|w| w[0] == w[1]) {
        return Ok(());
    }
    Err(no(format!(
        "{} with broadcasting or unknown shapes (Caffe2's needs one shape)",
        n.op_type()
    )))
}

fn conv_pool(cx: &Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    let ty = n.op_type();
    if ty != "Conv" && n.node.output.len() > 1 {
        return Err(no("MaxPool's Indices output"));
    }
    let ceil = n.attr_i("ceil_mode").unwrap_or(0) != 0;
    if ceil && (ty == "Conv" || n.attr_i("count_include_pad").unwrap_or(0) != 0) {
        return Err(no(
            "ceil_mode=1 with padding counted (Caffe2's pools round down)",
        ));
    }
    if ty != "Conv"
        && n.attr_ints("dilations")
            .is_some_and(|d| d.iter().any(|&x| x != 1))
    {
        return Err(no("pooling with dilations"));
    }
    if let Some(pad) = n.attr_s("auto_pad")
        && !matches!(pad.as_str(), "" | "NOTSET")
    {
        return Err(no(format!("auto_pad {pad}")));
    }
    let mut op = n.op(ty);
    op.arg = n.args(&[], &[])?;
    if let (Some(k), Some(p)) = (n.attr_ints("kernel_shape"), n.attr_ints("pads"))
        && k.len() == p.len()
    {
        set_arg(&mut op.arg, "pads", |a| {
            a.ints = [p.clone(), p.clone()].concat()
        });
    }
    if ceil {
        // Caffe2 rounds the output size down; ONNX's ceil_mode rounds up
        // (a last window must start inside the input or its head pad). A
        // larger tail pad gives the same windows: Caffe2 clips windows to
        // the input and, without count_include_pad, averages over what is
        // inside, so the extra pad is never read.
        let kernel = n
            .attr_ints("kernel_shape")
            .ok_or_else(|| no("ceil_mode without kernel_shape"))?;
        let k = kernel.len();
        let shape = cx
            .fixed_shape(n.input(0))
            .filter(|s| s.len() == k + 2)
            .ok_or_else(|| no("ceil_mode=1 on an input of unknown shape (pass --input-shape)"))?;
        let strides = n.attr_ints("strides").unwrap_or(vec![1; k]);
        let mut pads = n.attr_ints("pads").unwrap_or(vec![0; 2 * k]);
        if pads.len() == k {
            pads = [pads.clone(), pads].concat();
        }
        for i in 0..k {
            let (inp, kk, st, pb, pe) = (
                shape[i + 2],
                kernel[i],
                strides[i].max(1),
                pads[i],
                pads[k + i],
            );
            let span = inp + pb + pe - kk;
            if span < 0 {
                return Err(no("a pooling window larger than the padded input"));
            }
            let mut out = (span + st - 1) / st + 1;
            if (out - 1) * st >= inp + pb {
                out -= 1;
            }
            let tail = ((out - 1) * st + kk - inp - pb).max(pe);
            pads[k + i] = tail;
        }
        remove_arg(&mut op.arg, "ceil_mode");
        remove_arg(&mut op.arg, "pads");
        op.arg.push(arg_ints("pads", pads));
    }
    Ok(vec![op])
}

/// ONNX may leave `kernel_shape` out (it is the weight's spatial dims);
/// Caffe2 needs `kernels`.
fn kernels_from_weight(cx: &Cx<'_>, n: &Node<'_>, op: &mut OperatorDef) -> R<()> {
    if n.attr("kernel_shape").is_some() {
        return Ok(());
    }
    let w = cx
        .fixed_shape(n.input(1))
        .filter(|w| w.len() >= 3)
        .ok_or_else(|| no("no kernel_shape and a weight of unknown shape"))?;
    op.arg.push(arg_ints("kernels", w[2..].to_vec()));
    Ok(())
}

fn conv_transpose(cx: &Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    if cx.rank(n.input(0)).is_some_and(|r| r != 4) {
        return Err(no(
            "ConvTranspose of other than a 4-D input (Caffe2's is 2-D only)",
        ));
    }
    if n.attr("output_shape").is_some() {
        return Err(no("ConvTranspose with output_shape"));
    }
    if n.attr_ints("dilations")
        .is_some_and(|d| d.iter().any(|&x| x != 1))
    {
        return Err(no("ConvTranspose with dilations"));
    }
    if n.attr_i("group").unwrap_or(1) != 1 {
        return Err(no("ConvTranspose with group > 1"));
    }
    if let Some(pad) = n.attr_s("auto_pad")
        && !matches!(pad.as_str(), "" | "NOTSET")
    {
        return Err(no(format!("auto_pad {pad}")));
    }
    let mut op = n.op("ConvTranspose");
    op.arg = n.args(
        &[("output_padding", "adjs")],
        &["dilations", "group", "auto_pad"],
    )?;
    Ok(vec![op])
}

fn batch_norm(cx: &Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    if n.attr_i("training_mode").unwrap_or(0) != 0 || n.node.output.len() > 1 {
        return Err(no("BatchNormalization in training mode"));
    }
    if n.attr_i("spatial").is_some_and(|s| s != 1) {
        return Err(no("BatchNormalization with spatial=0"));
    }
    if cx.rank(n.input(0)).is_some_and(|r| !(3..=5).contains(&r)) {
        return Err(no("SpatialBN needs a rank 3-5 input"));
    }
    let mut op = n.op("SpatialBN");
    op.arg = n.args(&[], &["spatial", "training_mode", "consumed_inputs"])?;
    if n.opset >= 7 {
        op.arg.push(arg_i("is_test", 1));
    }
    Ok(vec![op])
}

fn dropout(cx: &Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    if n.node.output.len() > 1 && !n.node.output[1].is_empty() {
        return Err(no(
            "Dropout's mask output (Caffe2 leaves it unfilled in test mode)",
        ));
    }
    let mut op = n.op("Dropout");
    let mut args = n.args(&[], &["seed"])?;
    if n.opset >= 12 {
        if let Some(t) = n.input(2) {
            match cx.const_ints(Some(t)) {
                Some(v) if v.iter().all(|&x| x == 0) => {}
                _ => return Err(no("Dropout with training_mode not a constant false")),
            }
        }
        if let Some(r) = n.input(1) {
            let ratio = cx
                .const_floats(Some(r))
                .and_then(|v| v.first().copied())
                .ok_or_else(|| no("Dropout ratio is not a constant"))?;
            args.push(arg_f("ratio", ratio));
        }
        drop_inputs(&mut op, &[1, 2]);
    }
    if n.opset >= 7 {
        args.push(arg_i("is_test", 1));
    }
    op.arg = args;
    Ok(vec![op])
}

fn gemm(cx: &mut Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    let (Some(a), Some(b)) = (n.input(0), n.input(1)) else {
        return Err(no("Gemm needs inputs A and B"));
    };
    let Some(c) = n.input(2) else {
        // No bias (opset 11+): Caffe2's MatMul computes op(A) . op(B).
        let mut ops = Vec::new();
        let mut a = a.to_string();
        let alpha = n.attr_f("alpha").unwrap_or(1.0);
        if (f64::from(alpha) - 1.0).abs() >= 1e-15 {
            let d = cx.dummy();
            ops.push(OperatorDef {
                input: vec![a.clone()],
                output: vec![d.clone()],
                name: Some(n.node.name().to_string()),
                r#type: Some("Scale".into()),
                arg: vec![arg_f("scale", alpha)],
                ..Default::default()
            });
            a = d;
        }
        ops.push(OperatorDef {
            input: vec![a, b.to_string()],
            output: n.node.output.clone(),
            name: Some(n.node.name().to_string()),
            r#type: Some("MatMul".into()),
            arg: vec![
                arg_i("trans_a", n.attr_i("transA").unwrap_or(0)),
                arg_i("trans_b", n.attr_i("transB").unwrap_or(0)),
            ],
            ..Default::default()
        });
        return Ok(ops);
    };
    let alpha = n.attr_f("alpha").unwrap_or(1.0);
    let beta = n.attr_f("beta").unwrap_or(1.0);
    let trans_a = n.attr_i("transA").unwrap_or(0);
    let trans_b = n.attr_i("transB").unwrap_or(0);
    let broadcast = n
        .attr_i("broadcast")
        .unwrap_or(if n.opset > 6 { 1 } else { 0 });
    let name = n.node.name().to_string();
    let y = n.node.output.first().cloned().unwrap_or_default();
    let mut ops = Vec::new();
    let (mut a, mut c) = (a.to_string(), c.to_string());
    if (f64::from(alpha) - 1.0).abs() >= 1e-15 {
        let d = cx.dummy();
        ops.push(OperatorDef {
            input: vec![a.clone()],
            output: vec![d.clone()],
            name: Some(name.clone()),
            r#type: Some("Scale".into()),
            arg: vec![arg_f("scale", alpha)],
            ..Default::default()
        });
        a = d;
    }
    if (f64::from(beta) - 1.0).abs() >= 1e-15 {
        let d = cx.dummy();
        ops.push(OperatorDef {
            input: vec![c.clone()],
            output: vec![d.clone()],
            name: Some(name.clone()),
            r#type: Some("Scale".into()),
            arg: vec![arg_f("scale", beta)],
            ..Default::default()
        });
        c = d;
    }
    let check_fc = match cx.shape_of(Some(n.node.input[2].as_str())) {
        Some(s) if s.len() == 1 => {
            if s[0] == Some(1) {
                match cx.shape_of(Some(b)) {
                    Some(bs) if bs.len() == 2 => bs[if trans_b != 0 { 0 } else { 1 }] == Some(1),
                    _ => false,
                }
            } else {
                true
            }
        }
        _ => false,
    };
    if trans_a == 0 && broadcast != 0 && check_fc {
        // FC flattens A to 2-D from axis 1; ONNX Gemm's A is 2-D already.
        ops.push(OperatorDef {
            input: vec![a, b.to_string(), c],
            output: vec![y],
            name: Some(name),
            r#type: Some(if trans_b != 0 { "FC" } else { "FCTransposed" }.into()),
            ..Default::default()
        });
    } else {
        let d = cx.dummy();
        ops.push(OperatorDef {
            input: vec![a, b.to_string()],
            output: vec![d.clone()],
            name: Some(name.clone()),
            r#type: Some("MatMul".into()),
            arg: vec![arg_i("trans_a", trans_a), arg_i("trans_b", trans_b)],
            ..Default::default()
        });
        let mut add = OperatorDef {
            input: vec![d, c],
            output: vec![y],
            name: Some(name),
            r#type: Some("Add".into()),
            ..Default::default()
        };
        if n.opset < 7 {
            add.arg.push(arg_i("broadcast", broadcast));
        }
        ops.push(add);
    }
    Ok(ops)
}

fn reshape(cx: &mut Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    let mut op = n.op("Reshape");
    op.arg = n.args(&[], &["allowzero"])?;
    let allowzero = n.attr_i("allowzero").unwrap_or(0) != 0;
    let shape_input = n.input(1);
    let shape = cx.const_ints(shape_input);
    if allowzero && shape.as_ref().is_none_or(|s| s.contains(&0)) {
        return Err(no(
            "Reshape with allowzero=1 and a 0 (or unknown) in the shape",
        ));
    }
    if !cx.is_constant(shape_input)
        && cx.is_predict_value(shape_input)
        && let Some(s) = shape
    {
        // A shape computed at run time that shape inference knows: folded
        // into the argument (otherwise it stays Caffe2's `new_shape` input).
        drop_inputs(&mut op, &[1]);
        op.arg.push(arg_ints("shape", s));
    }
    op.output.push(cx.dummy());
    Ok(vec![op])
}

fn split(cx: &Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    let mut op = n.op("Split");
    let mut args = n.args(&[], &["num_outputs"])?;
    if n.opset >= 13
        && let Some(s) = n.input(1)
    {
        let sizes = cx
            .const_ints(Some(s))
            .ok_or_else(|| no("Split sizes are not constant"))?;
        args.push(arg_ints("split", sizes));
        drop_inputs(&mut op, &[1]);
    }
    if let Some(k) = n.attr_i("num_outputs") {
        // Equal parts only when the axis divides evenly.
        let axis = n.attr_i("axis").unwrap_or(0);
        let dim = cx
            .fixed_shape(n.input(0))
            .and_then(|s| s.get(norm_axis(axis, s.len())?).copied());
        match dim {
            Some(d) if k > 0 && d % k == 0 => {}
            _ => return Err(no("Split with num_outputs on an uneven or unknown axis")),
        }
    }
    if n.attr("axis").is_none() {
        args.push(arg_i("axis", 0));
    }
    op.arg = args;
    Ok(vec![op])
}

fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    usize::try_from(a).ok().filter(|&a| a < rank)
}

fn squeeze(cx: &Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    let ty = if n.op_type() == "Squeeze" {
        "Squeeze"
    } else {
        "ExpandDims"
    };
    let mut op = n.op(ty);
    let mut args = n.args(&[("axes", "dims")], &[])?;
    if n.opset >= 13 {
        match n.input(1) {
            Some(a) => {
                let axes = cx
                    .const_ints(Some(a))
                    .ok_or_else(|| no("axes are not constant"))?;
                args.push(arg_ints("dims", axes));
                drop_inputs(&mut op, &[1]);
            }
            None if ty == "Squeeze" => {
                // All size-1 dims: Caffe2 needs them listed.
                let s = cx
                    .fixed_shape(n.input(0))
                    .ok_or_else(|| no("Squeeze without axes on an unknown shape"))?;
                let dims = s
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| **d == 1)
                    .map(|(i, _)| i as i64)
                    .collect();
                args.push(arg_ints("dims", dims));
            }
            None => return Err(no("Unsqueeze without axes")),
        }
    }
    // Caffe2 wants non-negative dims: resolve negative ones by rank.
    let in_rank = cx.rank(n.input(0));
    for a in &mut args {
        if a.name() == "dims" && a.ints.iter().any(|&d| d < 0) {
            let rank = match (ty, in_rank) {
                ("Squeeze", Some(r)) => r as i64,
                (_, Some(r)) => r as i64 + a.ints.len() as i64,
                _ => return Err(no("negative axes on an input of unknown rank")),
            };
            for d in &mut a.ints {
                if *d < 0 {
                    *d += rank;
                }
            }
            a.ints.sort_unstable();
        }
    }
    op.arg = args;
    Ok(vec![op])
}

fn clip(cx: &Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    let mut op = n.op("Clip");
    let mut args = n.args(&[], &[])?;
    if n.opset >= 11 {
        for (i, name) in [(1, "min"), (2, "max")] {
            if let Some(v) = n.input(i) {
                let x = cx
                    .const_floats(Some(v))
                    .and_then(|v| v.first().copied())
                    .ok_or_else(|| no(format!("Clip {name} is not a constant")))?;
                args.push(arg_f(name, x));
            }
        }
        drop_inputs(&mut op, &[1, 2]);
    }
    op.arg = args;
    Ok(vec![op])
}

fn reduce(cx: &Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    let ty = n.op_type();
    let mut op = n.op(ty);
    let mut args = n.args(&[], &["noop_with_empty_axes"])?;
    let axes_as_input = (ty == "ReduceSum" && n.opset >= 13) || n.opset >= 18;
    let mut axes = n.attr_ints("axes");
    if axes_as_input {
        if let Some(a) = n.input(1) {
            let v = cx
                .const_ints(Some(a))
                .ok_or_else(|| no("reduction axes are not constant"))?;
            axes = Some(v.clone());
            args.push(arg_ints("axes", v));
            drop_inputs(&mut op, &[1]);
        }
        if axes.as_ref().is_none_or(Vec::is_empty) && n.attr_i("noop_with_empty_axes") == Some(1) {
            return Err(no("noop_with_empty_axes=1"));
        }
    }
    let rank = cx.rank(n.input(0));
    match axes {
        None => {
            let r = rank.ok_or_else(|| no("reduction over all axes of an unknown rank"))?;
            remove_arg(&mut args, "axes");
            args.push(arg_ints("axes", (0..r as i64).collect()));
        }
        Some(ax) if ax.iter().any(|&a| a < 0) => {
            let r = rank.ok_or_else(|| no("negative axes on an input of unknown rank"))? as i64;
            let fixed: Vec<i64> = ax.iter().map(|&a| if a < 0 { a + r } else { a }).collect();
            set_arg(&mut args, "axes", |a| a.ints = fixed);
        }
        Some(_) => {}
    }
    if !has_arg(&args, "keepdims") {
        args.push(arg_i("keepdims", 1));
    }
    op.arg = args;
    Ok(vec![op])
}

fn pad(cx: &Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    let mode = n.attr_s("mode").unwrap_or_else(|| "constant".into());
    if !matches!(mode.as_str(), "constant" | "reflect" | "edge") {
        return Err(no(format!("Pad mode {mode}")));
    }
    let (pads, value) = if n.opset >= 11 {
        let pads = cx
            .const_ints(n.input(1))
            .ok_or_else(|| no("pads are not constant"))?;
        let value = match n.input(2) {
            Some(v) => cx
                .const_floats(Some(v))
                .and_then(|v| v.first().copied())
                .ok_or_else(|| no("the pad value is not constant"))?,
            None => 0.0,
        };
        if n.input(3).is_some() {
            return Err(no("Pad with axes"));
        }
        (pads, Some(value))
    } else {
        let name = if n.opset < 2 { "paddings" } else { "pads" };
        (n.attr_ints(name).unwrap_or_default(), None)
    };
    if pads.iter().any(|&p| p < 0) {
        return Err(no("negative pads"));
    }
    if pads.len() != 8 || pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0 {
        return Err(no(
            "Caffe2's PadImage pads the 2 spatial axes of a 4-D tensor only",
        ));
    }
    let mut op = n.op("PadImage");
    drop_inputs(&mut op, &[1, 2, 3]);
    let mut args = n.args(&[], &["pads", "paddings"])?;
    args.push(arg_ints("pads", vec![pads[2], pads[3], pads[6], pads[7]]));
    if let Some(v) = value {
        args.push(arg_s("mode", &mode));
        args.push(arg_f("value", v));
        args.retain(|a| !(a.name() == "mode" && a.s.as_deref() != Some(mode.as_bytes())));
        args.dedup_by(|a, b| a.name() == b.name());
    }
    op.arg = args;
    Ok(vec![op])
}

/// ONNX `TensorProto.DataType` to Caffe2's, for `Cast`.
fn caffe2_dtype(onnx: i64) -> Option<i64> {
    Some(match onnx {
        1 => 1,
        2 => 6,
        3 => 7,
        4 => 8,
        5 => 9,
        6 => 2,
        7 => 10,
        8 => 4,
        9 => 5,
        10 => 12,
        11 => 13,
        _ => return None,
    })
}

fn cast(n: &Node<'_>) -> R<Vec<OperatorDef>> {
    // `saturate` (opset 19) and `round_mode` (opset 25) only act on float8
    // and float4 targets, which are refused below.
    if n.node
        .attribute
        .iter()
        .any(|a| !matches!(a.name(), "to" | "saturate" | "round_mode"))
    {
        return Err(no("Cast with attributes other than 'to'"));
    }
    let to = match n.attr("to") {
        Some(a) if a.s.is_some() && a.i.is_none() => {
            // Opset 1 spelled the type as a string.
            let s = String::from_utf8_lossy(a.s()).to_ascii_uppercase();
            netport_onnx::proto::tensor_proto::DataType::from_str_name(&s)
                .map(|d| d as i64)
                .unwrap_or(-1)
        }
        Some(a) => a.i(),
        None => return Err(no("Cast without 'to'")),
    };
    if to == 10 {
        return Err(no("Cast to FLOAT16 (Caffe2's CPU Cast has no half)"));
    }
    let c2 = caffe2_dtype(to).ok_or_else(|| no(format!("Casting to '{to}' dtype")))?;
    let mut op = n.op("Cast");
    op.arg = vec![arg_i("to", c2)];
    Ok(vec![op])
}

fn constant(cx: &Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    let out = n.node.output.first().cloned().unwrap_or_default();
    if let Some(t) = n.attr("value").and_then(|a| a.t.as_ref()) {
        if t.segment.is_some() {
            return Err(no("Constant with a segment"));
        }
        return Ok(vec![fill_op(t, &out, cx.resolver)?]);
    }
    let dims: &[i64] = &[];
    if let Some(f) = n.attr_f("value_float") {
        return Ok(vec![fill_op_of(
            "GivenTensorFill",
            Values::Floats(vec![f]),
            dims,
            &out,
        )]);
    }
    if let Some(i) = n.attr_i("value_int") {
        return Ok(vec![fill_op_of(
            "GivenTensorInt64Fill",
            Values::Ints(vec![i]),
            dims,
            &out,
        )]);
    }
    if let Some(v) = n.attr("value_floats") {
        let len = [v.floats.len() as i64];
        return Ok(vec![fill_op_of(
            "GivenTensorFill",
            Values::Floats(v.floats.clone()),
            &len,
            &out,
        )]);
    }
    if let Some(v) = n.attr("value_ints") {
        let len = [v.ints.len() as i64];
        return Ok(vec![fill_op_of(
            "GivenTensorInt64Fill",
            Values::Ints(v.ints.clone()),
            &len,
            &out,
        )]);
    }
    Err(no(
        "Constant of a kind Caffe2 cannot fill (sparse or string attribute)",
    ))
}

fn constant_of_shape(cx: &Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    // C++ BuildTensorFillingOp: no name; `value`, `input_as_shape`, `dtype`
    // (as Caffe2Backend writes it for torch's LSTM exports).
    let mut op = n.op("ConstantFill");
    op.name = None;
    op.arg = vec![arg_i("input_as_shape", 1)];
    if let Some(t) = n.attr("value").and_then(|a| a.t.as_ref()) {
        let (dtype, value) = match tensor_values(t, cx.resolver)? {
            Values::Floats(v) if v.len() == 1 => {
                let dt = if t.data_type() == 11 { 13 } else { 1 };
                (dt, arg_f("value", v[0]))
            }
            Values::Ints(v) if v.len() == 1 && matches!(t.data_type(), 6 | 7) => (
                if t.data_type() == 7 { 10 } else { 2 },
                arg_i("value", v[0]),
            ),
            _ => {
                return Err(no(
                    "ConstantOfShape value of a type ConstantFill cannot hold",
                ));
            }
        };
        op.arg.insert(0, value);
        op.arg.push(arg_i("dtype", dtype));
    }
    Ok(vec![op])
}

fn pow(cx: &Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    // A constant scalar exponent becomes the `exponent` argument; otherwise
    // Caffe2's Pow needs two tensors of one shape.
    if let Some(e) = cx.const_floats(n.input(1))
        && e.len() == 1
    {
        let mut op = n.op("Pow");
        drop_inputs(&mut op, &[1]);
        op.arg.push(arg_f("exponent", e[0]));
        return Ok(vec![op]);
    }
    same_shapes(cx, n)?;
    simple(n, "Pow", &[], &[])
}

/// Softmax before opset 13 has Caffe2's semantics (2-D coercion at `axis`);
/// from 13 on it is over one axis, the same only when that is the last.
fn softmax_axis(cx: &Cx<'_>, n: &Node<'_>) -> R<i64> {
    let axis = n
        .attr_i("axis")
        .unwrap_or(if n.opset >= 13 { -1 } else { 1 });
    let rank = cx.rank(n.input(0));
    if n.opset >= 13 {
        let r = rank.ok_or_else(|| no("Softmax-13 on an input of unknown rank"))? as i64;
        let a = if axis < 0 { axis + r } else { axis };
        if a != r - 1 {
            return Err(no(format!(
                "Softmax over axis {axis}, not the last (rank {r})"
            )));
        }
        return Ok(a);
    }
    if axis < 0 {
        let r = rank.ok_or_else(|| no("negative Softmax axis on an unknown rank"))? as i64;
        return Ok(axis + r);
    }
    Ok(axis)
}

fn softmax(cx: &Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    let axis = softmax_axis(cx, n)?;
    let mut op = n.op("Softmax");
    op.arg = n.args(&[], &["axis"])?;
    if n.attr("axis").is_some() || n.opset >= 13 {
        op.arg.push(arg_i("axis", axis));
    }
    Ok(vec![op])
}

fn log_softmax(cx: &mut Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    let axis = softmax_axis(cx, n)?;
    let d = cx.dummy();
    let name = Some(n.node.name().to_string());
    Ok(vec![
        OperatorDef {
            input: n.node.input.clone(),
            output: vec![d.clone()],
            name: name.clone(),
            r#type: Some("Softmax".into()),
            arg: vec![arg_i("axis", axis)],
            ..Default::default()
        },
        OperatorDef {
            input: vec![d],
            output: n.node.output.clone(),
            name,
            r#type: Some("Log".into()),
            ..Default::default()
        },
    ])
}

fn upsample(cx: &mut Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    if n.attr_s("mode").is_some_and(|m| m != "nearest") {
        return Err(no("Upsample other than nearest"));
    }
    let scales = if n.opset >= 9 {
        cx.const_floats(n.input(1))
            .ok_or_else(|| no("Upsample scales are not constant"))?
    } else {
        n.attr("scales")
            .map(|a| a.floats.clone())
            .unwrap_or_default()
    };
    if scales.len() != 4 || scales[0] != 1.0 || scales[1] != 1.0 {
        return Err(no("Upsample scales other than [1, 1, h, w]"));
    }
    let mut op = n.op("ResizeNearest");
    drop_inputs(&mut op, &[1]);
    op.arg = vec![
        arg_f("width_scale", scales[3]),
        arg_f("height_scale", scales[2]),
    ];
    Ok(vec![op])
}

/// Slice with constant starts/ends/axes (opset 10+) on an input of known
/// shape: Caffe2's Slice with `starts`/`ends` for every dim (-1 = to the end).
fn slice(cx: &Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    let shape = cx
        .fixed_shape(n.input(0))
        .ok_or_else(|| no("Slice on an input of unknown shape"))?;
    let rank = shape.len() as i64;
    let starts = cx
        .const_ints(n.input(1))
        .ok_or_else(|| no("Slice starts are not constant"))?;
    let ends = cx
        .const_ints(n.input(2))
        .ok_or_else(|| no("Slice ends are not constant"))?;
    let axes = match n.input(3) {
        Some(a) => cx
            .const_ints(Some(a))
            .ok_or_else(|| no("Slice axes are not constant"))?,
        None => (0..starts.len() as i64).collect(),
    };
    if let Some(st) = n.input(4) {
        let steps = cx
            .const_ints(Some(st))
            .ok_or_else(|| no("Slice steps are not constant"))?;
        if steps.iter().any(|&s| s != 1) {
            return Err(no("Slice with steps other than 1"));
        }
    }
    if starts.len() != ends.len() || starts.len() != axes.len() {
        return Err(no("Slice starts, ends and axes of different lengths"));
    }
    let mut c2_starts = vec![0i64; shape.len()];
    let mut c2_ends = vec![-1i64; shape.len()];
    for ((&s, &e), &a) in starts.iter().zip(&ends).zip(&axes) {
        let a = if a < 0 { a + rank } else { a };
        let d = usize::try_from(a)
            .ok()
            .filter(|&d| d < shape.len())
            .ok_or_else(|| no(format!("Slice axis {a} out of range")))?;
        let dim = shape[d];
        let clamp = |v: i64| if v < 0 { (v + dim).max(0) } else { v.min(dim) };
        let (s, e) = (clamp(s), clamp(e));
        if e <= s {
            return Err(no("an empty Slice"));
        }
        c2_starts[d] = s;
        c2_ends[d] = if e == dim { -1 } else { e };
    }
    let mut op = n.op("Slice");
    op.input.truncate(1);
    op.arg = vec![arg_ints("starts", c2_starts), arg_ints("ends", c2_ends)];
    Ok(vec![op])
}

/// Slice with `starts`/`ends`[/`axes`] attributes (opsets before 10), as
/// the backend's C++ `CreateSlice` writes it: the full start and end
/// vectors are built at run time from the data's Shape (ConstantFill 0 /
/// -1, then ScatterAssign of the given axes), then `Slice(data, starts,
/// ends)`. Negative indices move one down (Caffe2 counts -1 as one past
/// the end); an end of INT64_MAX becomes -1.
fn slice_attrs(cx: &mut Cx<'_>, n: &Node<'_>) -> R<Vec<OperatorDef>> {
    let starts = n
        .attr_ints("starts")
        .ok_or_else(|| no("Slice without starts"))?;
    let ends = n
        .attr_ints("ends")
        .ok_or_else(|| no("Slice without ends"))?;
    let axes = n
        .attr_ints("axes")
        .unwrap_or_else(|| (0..starts.len() as i64).collect());
    if starts.len() != ends.len() || starts.len() != axes.len() {
        return Err(no("Slice starts, ends and axes of different lengths"));
    }
    let data = n.input(0).ok_or_else(|| no("Slice without data"))?;
    let helper = |ty: &str, input: &[&str], output: &str, arg: Vec<Argument>| OperatorDef {
        input: input.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        name: Some(String::new()),
        r#type: Some(ty.to_string()),
        arg,
        ..Default::default()
    };
    let k = starts.len() as i64;
    let shape = cx.dummy();
    let axes_blob = cx.dummy();
    let starts_blob = cx.dummy();
    let full_starts = cx.dummy();
    let mut ops = vec![
        helper("Shape", &[data], &shape, vec![]),
        helper(
            "GivenTensorIntFill",
            &[],
            &axes_blob,
            vec![arg_ints("shape", vec![k]), arg_ints("values", axes)],
        ),
        helper(
            "GivenTensorInt64Fill",
            &[],
            &starts_blob,
            vec![
                arg_ints("shape", vec![k]),
                arg_ints(
                    "values",
                    starts
                        .iter()
                        .map(|&s| if s < 0 { s - 1 } else { s })
                        .collect(),
                ),
            ],
        ),
        helper(
            "ConstantFill",
            &[&shape],
            &full_starts,
            vec![arg_i("dtype", 10), arg_i("value", 0)],
        ),
        helper(
            "ScatterAssign",
            &[&full_starts, &axes_blob, &starts_blob],
            &full_starts,
            vec![],
        ),
    ];
    let ends_blob = cx.dummy();
    let full_ends = cx.dummy();
    ops.extend([
        helper(
            "GivenTensorInt64Fill",
            &[],
            &ends_blob,
            vec![
                arg_ints("shape", vec![k]),
                arg_ints(
                    "values",
                    ends.iter()
                        .map(|&e| match e {
                            i64::MAX => -1,
                            e if e < 0 => e - 1,
                            e => e,
                        })
                        .collect(),
                ),
            ],
        ),
        helper(
            "ConstantFill",
            &[&shape],
            &full_ends,
            vec![arg_i("dtype", 10), arg_i("value", -1)],
        ),
        helper(
            "ScatterAssign",
            &[&full_ends, &axes_blob, &ends_blob],
            &full_ends,
            vec![],
        ),
    ]);
    let mut op = n.op("Slice");
    op.input = vec![data.to_string(), full_starts, full_ends];
    op.arg = n.args(&[], &["starts", "ends", "axes"])?;
    ops.push(op);
    Ok(ops)
}

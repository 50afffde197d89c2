//! The Caffe2 front end: runs the init net's fill ops at load time (the
//! weights become constants) and turns the predict net into a [`Plan`],
//! reading each op's arguments as Caffe2's CPU operators do (see
//! docs/formats/caffe2.md, "Operator semantics"): ConvPoolOpBase's argument forms and
//! `legacy_pad`, `global_pooling`, pools' `count_include_pad` divisor,
//! SpatialBN with `is_test`, FC's `axis`/`axis_w`, legacy broadcasting
//! (`broadcast=1` with `axis`), Concat's and Reshape's second outputs,
//! Softmax's 2-D coercion. Anything else is refused when the plan is built,
//! naming the op.

use crate::error::ExecError;
use crate::kernels::elementwise::{
    BinOp, Binary, Cast, Clip, CmpOp, Compare, PRelu, UnOp, Unary, Variadic, binary,
};
use crate::kernels::nn::{
    AutoPad, BatchNorm, Conv, Dropout, Lrn, Pool, PoolKind, Softmax, SoftmaxKind, Window, matmul,
};
use crate::kernels::reduce::{ArgReduce, Reduce, ReduceOp};
use crate::kernels::shape::{
    Gather, Identity, Pad, PadMode, Shape, Transpose, concat, reshape_target, split, transpose,
};
use crate::kernels::{KResult, Kernel, arg, axis, dim, opt};
use crate::plan::{InputSpec, Plan, Step};
use crate::tensor::{Data, SUPPORTED_DTYPES, Tensor};
use netport_caffe2::Caffe2Model;
use netport_caffe2::proto::{Argument, NetDef, OperatorDef};
use netport_tensor::DType;
use std::collections::{HashMap, HashSet};

/// Typed access to an op's arguments.
struct Args<'a>(&'a [Argument]);

impl Args<'_> {
    fn get(&self, name: &str) -> Option<&Argument> {
        self.0.iter().find(|a| a.name() == name)
    }
    fn i(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(|a| a.i)
    }
    fn f(&self, name: &str) -> Option<f64> {
        self.get(name)
            .and_then(|a| a.f.map(f64::from).or(a.i.map(|i| i as f64)))
    }
    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }
    /// A data type argument (a code or a name), if given.
    fn dtype(&self, name: &str) -> Result<Option<DType>, String> {
        let Some(a) = self.get(name) else {
            return Ok(None);
        };
        let code = netport_caffe2::data_type_arg(a)
            .ok_or_else(|| format!("`{name}` names no Caffe2 data type"))?;
        c2_dtype(code.into()).map(Some)
    }
    fn s(&self, name: &str) -> Option<String> {
        self.get(name)
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }
}

fn op_name(op: &OperatorDef) -> String {
    if op.name().is_empty() {
        op.output.first().cloned().unwrap_or_default()
    } else {
        op.name().to_string()
    }
}

/// Builds the plan of an init net + predict net pair.
pub fn build(model: &Caffe2Model) -> Result<Plan, ExecError> {
    let mut plan = Plan::default();
    let mut index = HashMap::new();
    let net = &model.predict_net;
    for op in &model.init_net.op {
        let out = op
            .output
            .first()
            .ok_or_else(|| unsupported(op, "no output".into()))?;
        if !(op.input.is_empty() && is_fill(op.r#type())) {
            run_init_op(&mut plan, &mut index, op).map_err(|e| unsupported(op, e))?;
            continue;
        }
        let t = fill(op, &Args(&op.arg), None).map_err(|e| unsupported(op, e))?;
        // caffe2.python.predictor.mobile_exporter writes, for each data
        // input, a placeholder fill of shape [1, 1] holding 0 ("fake data,
        // immediately overwritten by any typical usage"): such an input stays
        // an input.
        if net.external_input.contains(out)
            && t.shape == [1, 1]
            && t.data.to_f64_vec() == [0.0]
            && !model.predict_net.op.iter().any(|o| o.output.contains(out))
        {
            continue;
        }
        let s = plan.slot(&mut index, out);
        plan.consts.insert(s, t);
    }
    if let Some(a) = net.arg.iter().find(|a| a.name() == "order")
        && a.s.as_deref() != Some(b"NCHW".as_slice())
    {
        return Err(ExecError::Model("only NCHW nets are supported".into()));
    }
    for name in &net.external_input {
        if made_before_read(net, name) {
            // Caffe2Backend lists its RNN ops' interface blobs, which the
            // net itself computes (an initial state), as external inputs.
            continue;
        }
        let s = plan.slot(&mut index, name);
        if !plan.consts.contains_key(&s) && !plan.inputs.iter().any(|(_, x)| *x == s) {
            plan.inputs.push((
                InputSpec {
                    name: name.clone(),
                    dtype: None,
                    shape: None,
                },
                s,
            ));
        }
    }
    for op in &net.op {
        add_op(&mut plan, &mut index, op, &HashSet::new(), &mut Vec::new())?;
    }
    for name in &net.external_output {
        let s = *index.get(name).ok_or_else(|| {
            ExecError::Model(format!("external output {name:?} is never produced"))
        })?;
        plan.outputs.push((name.clone(), s));
    }
    plan.finish();
    Ok(plan)
}

pub(crate) fn unsupported(op: &OperatorDef, reason: String) -> ExecError {
    ExecError::UnsupportedCaffe2 {
        name: op_name(op),
        op: op.r#type().to_string(),
        reason,
    }
}

/// Adds one op of a net as a step (fill ops without inputs as constants).
/// A blob that no earlier op makes but that `outer` (the enclosing nets of
/// a sub-net) holds becomes an input of the plan, listed in `implicit`.
pub(crate) fn add_op(
    plan: &mut Plan,
    index: &mut HashMap<String, usize>,
    op: &OperatorDef,
    outer: &HashSet<String>,
    implicit: &mut Vec<String>,
) -> Result<(), ExecError> {
    let a = Args(&op.arg);
    if let Some(o) = a.s("order")
        && o != "NCHW"
    {
        return Err(unsupported(op, format!("order {o:?} (only NCHW)")));
    }
    if op.input.is_empty() && is_fill(op.r#type()) {
        let t = fill(op, &a, None).map_err(|e| unsupported(op, e))?;
        let out = op
            .output
            .first()
            .ok_or_else(|| unsupported(op, "no output".into()))?;
        let s = plan.slot(index, out);
        plan.consts.insert(s, t);
        return Ok(());
    }
    let (kernel, extra) = if crate::caffe2_control::is_control(op.r#type()) {
        let mut scope = outer.clone();
        scope.extend(index.keys().cloned());
        crate::caffe2_control::kernel(op, &scope)?
    } else {
        (
            build_kernel(op, &a).map_err(|e| unsupported(op, e))?,
            vec![],
        )
    };
    let mut inputs = Vec::new();
    for name in op.input.iter().chain(&extra) {
        inputs.push(Some(read(plan, index, name, outer, implicit).ok_or_else(|| {
            ExecError::Model(format!(
                "op {:?} ({}) reads blob {name:?}, which no earlier op, init net fill or external input makes",
                op_name(op),
                op.r#type()
            ))
        })?));
    }
    let outputs = op
        .output
        .iter()
        .map(|o| Some(plan.slot(index, o)))
        .collect();
    plan.steps.push(Step {
        name: op_name(op),
        op: op.r#type().to_string(),
        kernel,
        inputs,
        outputs,
        free: vec![],
    });
    Ok(())
}

/// The slot of a blob a step reads: made earlier, or taken from `outer`
/// as a new input of the plan.
fn read(
    plan: &mut Plan,
    index: &mut HashMap<String, usize>,
    name: &str,
    outer: &HashSet<String>,
    implicit: &mut Vec<String>,
) -> Option<usize> {
    if let Some(&s) = index.get(name) {
        return Some(s);
    }
    if !outer.contains(name) {
        return None;
    }
    let s = plan.slot(index, name);
    plan.inputs.push((
        InputSpec {
            name: name.to_string(),
            dtype: None,
            shape: None,
        },
        s,
    ));
    implicit.push(name.to_string());
    Some(s)
}

/// A sub-net (an `If` branch, an `ONNXWhile` body) as a plan: the `formal`
/// inputs first, then the blobs its ops read from `outer`, which are
/// returned (the op feeds them by name).
pub(crate) fn build_net(
    net: &NetDef,
    formal: &[String],
    outer: &HashSet<String>,
) -> Result<(Plan, Vec<String>), ExecError> {
    let mut plan = Plan::default();
    let mut index = HashMap::new();
    for name in formal {
        if index.contains_key(name) {
            return Err(ExecError::Model(format!(
                "sub-net input {name:?} is listed twice"
            )));
        }
        let s = plan.slot(&mut index, name);
        plan.inputs.push((
            InputSpec {
                name: name.clone(),
                dtype: None,
                shape: None,
            },
            s,
        ));
    }
    let mut implicit = Vec::new();
    for op in &net.op {
        add_op(&mut plan, &mut index, op, outer, &mut implicit)?;
    }
    for name in &net.external_output {
        let s = read(&mut plan, &mut index, name, outer, &mut implicit).ok_or_else(|| {
            ExecError::Model(format!("sub-net output {name:?} is never produced"))
        })?;
        plan.outputs.push((name.clone(), s));
    }
    plan.finish();
    Ok((plan, implicit))
}

/// True when the first op of `net` that touches `name` writes it without
/// reading it: then the net computes it, whatever its external inputs say.
fn made_before_read(net: &netport_caffe2::proto::NetDef, name: &str) -> bool {
    for op in &net.op {
        if op.input.iter().any(|i| i == name) {
            return false;
        }
        if op.output.iter().any(|o| o == name) {
            return true;
        }
    }
    false
}

/// Runs an init net op that computes from earlier blobs (Caffe2Backend's
/// weight reshaping for LSTM/GRU/RNN, its opset-9 Slice) once, at load:
/// its outputs become constants.
fn run_init_op(
    plan: &mut Plan,
    index: &mut HashMap<String, usize>,
    op: &OperatorDef,
) -> Result<(), String> {
    let kernel = build_kernel(op, &Args(&op.arg))?;
    let mut args = Vec::with_capacity(op.input.len());
    for name in &op.input {
        let t = index
            .get(name)
            .and_then(|s| plan.consts.get(s))
            .ok_or_else(|| format!("reads blob {name:?}, which no earlier init op makes"))?;
        args.push(Some(t));
    }
    let outs = kernel.run(&args)?;
    if outs.len() < op.output.len() {
        return Err(format!(
            "made {} outputs, {} expected",
            outs.len(),
            op.output.len()
        ));
    }
    for (name, t) in op.output.iter().zip(outs) {
        let s = plan.slot(index, name);
        plan.consts.insert(s, t);
    }
    Ok(())
}

fn is_fill(t: &str) -> bool {
    t.starts_with("GivenTensor") && t.ends_with("Fill") || t == "ConstantFill"
}

fn c2_dtype(code: i64) -> Result<DType, String> {
    DType::from_caffe2(code as i32)
        .filter(|d| SUPPORTED_DTYPES.contains(d))
        .ok_or_else(|| format!("Caffe2 data type {code} is not supported"))
}

/// Evaluates a fill op (`GivenTensor*Fill`, `ConstantFill`); `input` is the
/// tensor it reads, if any.
fn fill(op: &OperatorDef, a: &Args<'_>, input: Option<&Tensor>) -> Result<Tensor, String> {
    let ty = op.r#type();
    let shape_arg = || -> Result<Vec<usize>, String> {
        a.ints("shape")
            .unwrap_or_default()
            .iter()
            .map(|&d| dim(d))
            .collect()
    };
    let arg = a.get("values");
    let floats = || {
        arg.map(|v| v.floats.iter().map(|&x| x as f64).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let ints = || arg.map(|v| v.ints.clone()).unwrap_or_default();
    let (dtype, values): (DType, Vec<f64>) = match ty {
        "GivenTensorFill" => {
            let d = a.dtype("dtype")?.unwrap_or(DType::Float32);
            (d, floats())
        }
        "GivenTensorDoubleFill" => (DType::Float64, floats()),
        "GivenTensorIntFill" => {
            let v = ints();
            return Tensor::new(
                shape_arg()?,
                Data::I32(v.iter().map(|&x| x as i32).collect()),
            );
        }
        "GivenTensorInt64Fill" => return Tensor::new(shape_arg()?, Data::I64(ints())),
        "GivenTensorBoolFill" => {
            return Tensor::new(
                shape_arg()?,
                Data::Bool(ints().iter().map(|&x| x != 0).collect()),
            );
        }
        "GivenTensorInt16Fill" => {
            return Tensor::new(
                shape_arg()?,
                Data::I16(ints().iter().map(|&x| x as i16).collect()),
            );
        }
        "ConstantFill" => {
            let d = match a.dtype("dtype")? {
                Some(d) => d,
                None => match a.get("value") {
                    Some(v) if v.i.is_some() => DType::Int64,
                    _ => DType::Float32,
                },
            };
            let value = a.f("value").unwrap_or(0.0);
            let mut shape = match input {
                None => shape_arg()?,
                Some(t) if a.i("input_as_shape").unwrap_or(0) != 0 => t
                    .to_i64_vec()?
                    .iter()
                    .map(|&d| dim(d))
                    .collect::<Result<_, _>>()?,
                Some(t) => t.shape.clone(),
            };
            if input.is_some() {
                for e in a.ints("extra_shape").unwrap_or_default() {
                    shape.push(dim(e)?);
                }
            }
            let n = crate::tensor::numel(&shape).ok_or("shape overflow")?;
            let data = Data::from_f64(d, &vec![value; n]).ok_or("dtype")?;
            return Tensor::new(shape, data);
        }
        other => {
            return Err(format!(
                "{other} in the init net: only GivenTensor*Fill and ConstantFill are evaluated"
            ));
        }
    };
    let data = Data::from_f64(dtype, &values).ok_or("dtype")?;
    Tensor::new(shape_arg()?, data)
}

/// ConstantFill reading an input at run time.
#[derive(Debug)]
struct ConstantFillK(OperatorDef);

impl Kernel for ConstantFillK {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        Ok(vec![fill(&self.0, &Args(&self.0.arg), opt(inputs, 0))?])
    }
}

/// One spatial parameter in its plural, scalar or per-dim forms.
fn spatial_arg(
    a: &Args<'_>,
    plural: &str,
    single: &str,
    hw: [&str; 2],
    dims: usize,
) -> Result<Vec<usize>, String> {
    let conv = |v: Vec<i64>| v.iter().map(|&x| dim(x)).collect::<Result<Vec<_>, _>>();
    if let Some(v) = a.i(single) {
        return Ok(vec![dim(v)?; dims]);
    }
    if let (Some(h), Some(w)) = (a.i(hw[0]), a.i(hw[1])) {
        return Ok(vec![dim(h)?, dim(w)?]);
    }
    conv(a.ints(plural).unwrap_or_default())
}

/// The window of ConvPoolOpBase.
fn c2_window(a: &Args<'_>) -> Result<(Window, bool), String> {
    let kernels = spatial_arg(a, "kernels", "kernel", ["kernel_h", "kernel_w"], 2)?;
    let dims = if kernels.is_empty() { 2 } else { kernels.len() };
    let strides = spatial_arg(a, "strides", "stride", ["stride_h", "stride_w"], dims)?;
    let dilations = spatial_arg(
        a,
        "dilations",
        "dilation",
        ["dilation_h", "dilation_w"],
        dims,
    )?;
    let pads = if let Some(p) = a.i("pad") {
        vec![dim(p)?; 2 * dims]
    } else if let (Some(t), Some(l), Some(b), Some(r)) =
        (a.i("pad_t"), a.i("pad_l"), a.i("pad_b"), a.i("pad_r"))
    {
        vec![dim(t)?, dim(l)?, dim(b)?, dim(r)?]
    } else {
        a.ints("pads")
            .unwrap_or_default()
            .iter()
            .map(|&x| dim(x))
            .collect::<Result<_, _>>()?
    };
    let global = a.i("global_pooling").unwrap_or(0) != 0;
    let (auto_pad, ceil_mode) = match a.i("legacy_pad").unwrap_or(0) {
        0 => (AutoPad::NotSet, false),
        1 => (AutoPad::Valid, false),
        2 => (AutoPad::SameUpper, false),
        3 => {
            // CAFFE_LEGACY_POOLING: out = ceil((in + 2 pad - k) / stride) + 1,
            // less one when the last window starts past the input; symmetric
            // pads and ceil mode give the same sizes.
            if pads.len() == 4 && (pads[0] != pads[2] || pads[1] != pads[3]) {
                return Err("legacy_pad = 3 with asymmetric pads".into());
            }
            (AutoPad::NotSet, true)
        }
        v => return Err(format!("legacy_pad {v}")),
    };
    if auto_pad != AutoPad::NotSet && !pads.is_empty() && pads.iter().any(|&p| p != 0) {
        return Err("legacy_pad VALID/SAME with explicit pads".into());
    }
    Ok((
        Window {
            kernel: if kernels.is_empty() {
                None
            } else {
                Some(kernels)
            },
            strides,
            dilations,
            pads,
            auto_pad,
            ceil_mode,
        },
        global,
    ))
}

/// Legacy broadcasting (`broadcast=1`) of an arithmetic op or a
/// comparison: B (leading and trailing 1s stripped) matches A's dims from
/// `axis` (default: suffix); the output has A's shape. B is reshaped to
/// A's rank and `op` (an elementwise kernel with NumPy broadcasting) does
/// the rest.
#[derive(Debug)]
struct LegacyBroadcast {
    op: Box<dyn Kernel>,
    axis: Option<i64>,
}

impl Kernel for LegacyBroadcast {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, y) = (arg(inputs, 0)?, arg(inputs, 1)?);
        if y.numel() == 1 {
            let s = y.clone().reshaped(vec![])?;
            return self.op.run(&[Some(x), Some(&s)]);
        }
        if y.rank() > x.rank() {
            return Err(format!(
                "B {:?} has more dims than A {:?}",
                y.shape, x.shape
            ));
        }
        let ax = match self.axis {
            None | Some(-1) => x.rank() - y.rank(),
            Some(a) => axis(a, x.rank())?,
        };
        let start = y.shape.iter().take_while(|&&d| d == 1).count();
        let end = y.rank() - y.shape.iter().rev().take_while(|&&d| d == 1).count();
        let core = &y.shape[start..end.max(start)];
        let at = ax + start;
        if at + core.len() > x.rank() || x.shape[at..at + core.len()] != *core {
            return Err(format!(
                "B {:?} does not match A {:?} at axis {ax}",
                y.shape, x.shape
            ));
        }
        let mut shape = vec![1; x.rank()];
        shape[at..at + core.len()].copy_from_slice(core);
        let yb = y.clone().reshaped(shape)?;
        self.op.run(&[Some(x), Some(&yb)])
    }
}

/// `x op scalar` (Scale, Pow with `exponent`).
#[derive(Debug)]
struct ScalarOp {
    op: BinOp,
    value: f64,
}

impl Kernel for ScalarOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let s = Tensor::scalar(Data::F64(vec![self.value])).cast(x.dtype())?;
        Ok(vec![binary(self.op, x, &s)?])
    }
}

/// `Sum`: inputs of identical shape.
#[derive(Debug)]
struct SumSame;

impl Kernel for SumSame {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let first = arg(inputs, 0)?;
        for i in 1..inputs.len() {
            if arg(inputs, i)?.shape != first.shape {
                return Err(format!(
                    "input {i} has shape {:?}, input 0 {:?}: Sum does not broadcast",
                    arg(inputs, i)?.shape,
                    first.shape
                ));
            }
        }
        Variadic {
            op: BinOp::Add,
            mean: false,
        }
        .run(inputs)
    }
}

/// `FC` / `FCTransposed`.
#[derive(Debug)]
struct Fc {
    axis: i64,
    axis_w: i64,
    transposed: bool,
}

impl Kernel for Fc {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, w, b) = (arg(inputs, 0)?, arg(inputs, 1)?, arg(inputs, 2)?);
        let ax = axis(self.axis, x.rank())?;
        let aw = axis(self.axis_w, w.rank())?;
        let m: usize = x.shape[..ax].iter().product();
        let k: usize = x.shape[ax..].iter().product();
        let (wa, wb): (usize, usize) = (
            w.shape[..aw].iter().product(),
            w.shape[aw..].iter().product(),
        );
        let (n, wk) = if self.transposed { (wb, wa) } else { (wa, wb) };
        if wk != k || b.numel() != n {
            return Err(format!(
                "X {:?}, W {:?}, b {:?} do not fit (axis {ax}, axis_w {aw})",
                x.shape, w.shape, b.shape
            ));
        }
        let x2 = x.clone().reshaped(vec![m, k])?;
        let w2 = w.clone().reshaped(if self.transposed {
            vec![k, n]
        } else {
            vec![n, k]
        })?;
        let w2 = if self.transposed {
            w2
        } else {
            transpose(&w2, &[1, 0])?
        };
        let y = matmul(&x2, &w2)?;
        let y = binary(BinOp::Add, &y, &b.clone().reshaped(vec![n])?)?;
        let mut shape = x.shape[..ax].to_vec();
        shape.push(n);
        Ok(vec![y.reshaped(shape)?])
    }
}

/// `MatMul` (2-D after flattening at `axis_a`/`axis_b`) and `BatchMatMul`
/// (numpy batching), each with optional transposes of the last two dims.
#[derive(Debug)]
struct C2MatMul {
    flatten: Option<(i64, i64)>,
    trans_a: bool,
    trans_b: bool,
}

fn swap_last(t: &Tensor) -> Result<Tensor, String> {
    let r = t.rank();
    if r < 2 {
        return Ok(t.clone());
    }
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 2, r - 1);
    transpose(t, &perm)
}

impl Kernel for C2MatMul {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (mut a, mut b) = (arg(inputs, 0)?.clone(), arg(inputs, 1)?.clone());
        if let Some((xa, xb)) = self.flatten {
            let fa = axis(xa, a.rank())?;
            let fb = axis(xb, b.rank())?;
            let sa = vec![
                a.shape[..fa].iter().product(),
                a.shape[fa..].iter().product(),
            ];
            let sb = vec![
                b.shape[..fb].iter().product(),
                b.shape[fb..].iter().product(),
            ];
            a = a.reshaped(sa)?;
            b = b.reshaped(sb)?;
        }
        if self.trans_a {
            a = swap_last(&a)?;
        }
        if self.trans_b {
            b = swap_last(&b)?;
        }
        Ok(vec![matmul(&a, &b)?])
    }
}

/// `Concat` with its `split_info` output and `add_axis`.
#[derive(Debug)]
struct C2Concat {
    axis: i64,
    add_axis: bool,
}

impl Kernel for C2Concat {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let ts: Vec<&Tensor> = inputs.iter().flatten().copied().collect();
        let first = ts.first().ok_or("no inputs")?;
        let r = first.rank() + usize::from(self.add_axis);
        let ax = axis(self.axis, r)?;
        let owned: Vec<Tensor>;
        let parts: Vec<&Tensor> = if self.add_axis {
            owned = ts
                .iter()
                .map(|t| {
                    let mut s = t.shape.clone();
                    s.insert(ax.min(s.len()), 1);
                    (*t).clone().reshaped(s)
                })
                .collect::<Result<_, _>>()?;
            owned.iter().collect()
        } else {
            ts
        };
        let info: Vec<i32> = parts
            .iter()
            .map(|t| t.shape.get(ax).copied().unwrap_or(1) as i32)
            .collect();
        let y = concat(&parts, ax as i64)?;
        Ok(vec![y, Tensor::new(vec![info.len()], Data::I32(info))?])
    }
}

/// `Split` (sizes from the `split` argument or input 1).
#[derive(Debug)]
struct C2Split {
    axis: i64,
    split: Option<Vec<i64>>,
    outputs: usize,
}

impl Kernel for C2Split {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let ax = axis(self.axis, x.rank())?;
        let d = x.shape[ax];
        let sizes: Vec<usize> = match (&self.split, opt(inputs, 1)) {
            (_, Some(t)) => t
                .to_i64_vec()?
                .iter()
                .map(|&s| dim(s))
                .collect::<Result<_, _>>()?,
            (Some(v), None) if !v.is_empty() => {
                v.iter().map(|&s| dim(s)).collect::<Result<_, _>>()?
            }
            _ => {
                if d % self.outputs.max(1) != 0 {
                    return Err(format!(
                        "dim {d} does not split into {} equal parts",
                        self.outputs
                    ));
                }
                vec![d / self.outputs.max(1); self.outputs]
            }
        };
        split(x, ax, &sizes)
    }
}

/// `Reshape` with its `old_shape` output.
#[derive(Debug)]
struct C2Reshape {
    shape: Option<Vec<i64>>,
}

impl Kernel for C2Reshape {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let (target, int32) = match (&self.shape, opt(inputs, 1)) {
            (Some(_), Some(_)) => return Err("shape given both as argument and input".into()),
            (Some(s), None) => (s.clone(), false),
            (None, Some(t)) => (t.to_i64_vec()?, t.dtype() == DType::Int32),
            (None, None) => return Err("no new shape".into()),
        };
        let shape = reshape_target(&x.shape, &target, false)?;
        let old: Vec<i64> = x.shape.iter().map(|&d| d as i64).collect();
        let old = Tensor::i64(vec![old.len()], old)?;
        let old = if int32 { old.cast(DType::Int32)? } else { old };
        Ok(vec![x.clone().reshaped(shape)?, old])
    }
}

/// `ChannelShuffle` (NCHW): channels viewed as (group, C/group) and
/// transposed.
#[derive(Debug)]
struct ChannelShuffle {
    group: usize,
}

impl Kernel for ChannelShuffle {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        if x.rank() < 2 || self.group == 0 || x.shape[1] % self.group != 0 {
            return Err(format!(
                "{:?} does not shuffle in {} groups",
                x.shape, self.group
            ));
        }
        let (n, c) = (x.shape[0], x.shape[1]);
        let inner: usize = x.shape[2..].iter().product();
        let t = x
            .clone()
            .reshaped(vec![n, self.group, c / self.group, inner])?;
        Ok(vec![
            transpose(&t, &[0, 2, 1, 3])?.reshaped(x.shape.clone())?,
        ])
    }
}

/// `Flatten` (2-D at `axis`) and `FlattenToVec` (1-D).
#[derive(Debug)]
struct C2Flatten {
    axis: Option<i64>,
}

impl Kernel for C2Flatten {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let shape = match self.axis {
            None => vec![x.numel()],
            Some(a) => {
                let a = axis(a, x.rank() + 1)?;
                vec![x.shape[..a].iter().product(), x.shape[a..].iter().product()]
            }
        };
        Ok(vec![x.clone().reshaped(shape)?])
    }
}

/// `ExpandDims` / `Squeeze` with `dims`.
#[derive(Debug)]
struct Dims {
    dims: Vec<i64>,
    expand: bool,
}

impl Kernel for Dims {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let mut dims = self.dims.clone();
        dims.sort_unstable();
        let mut shape = x.shape.clone();
        if self.expand {
            for &d in &dims {
                let d = dim(d)?;
                if d > shape.len() {
                    return Err(format!("dim {d} is past rank {}", shape.len()));
                }
                shape.insert(d, 1);
            }
        } else {
            for &d in dims.iter().rev() {
                let d = dim(d)?;
                if shape.get(d) != Some(&1) {
                    return Err(format!("cannot squeeze dim {d} of {:?}", x.shape));
                }
                shape.remove(d);
            }
        }
        Ok(vec![x.clone().reshaped(shape)?])
    }
}

fn build_kernel(op: &OperatorDef, a: &Args<'_>) -> Result<Box<dyn Kernel>, String> {
    let ty = op.r#type();
    let n_out = op.output.len();
    let un = |u: UnOp| -> Result<Box<dyn Kernel>, String> { Ok(Box::new(Unary(u))) };
    let legacy = |op: Box<dyn Kernel>| -> Result<Box<dyn Kernel>, String> {
        if a.i("broadcast").unwrap_or(0) == 0 {
            return Ok(op);
        }
        if a.get("axis_str").is_some() {
            return Err("axis_str".into());
        }
        Ok(Box::new(LegacyBroadcast {
            op,
            axis: a.i("axis"),
        }))
    };
    let bin = |b: BinOp| legacy(Box::new(Binary(b)));
    let cmp = |c: CmpOp| legacy(Box::new(Compare(c)));
    let order_axis = || -> Result<i64, String> {
        match (a.i("axis"), a.s("order").as_deref()) {
            (Some(x), _) => Ok(x),
            (None, None) | (None, Some("NCHW")) => Ok(1),
            (None, Some(o)) => Err(format!("order {o:?}")),
        }
    };
    let test_only = |what: &str| -> Result<(), String> {
        if a.i("is_test").unwrap_or(0) == 0 {
            return Err(format!(
                "{what} with is_test = 0 (training) is not supported"
            ));
        }
        Ok(())
    };
    Ok(match ty {
        "Relu" => un(UnOp::Relu)?,
        "Sigmoid" => un(UnOp::Sigmoid)?,
        "Tanh" => un(UnOp::Tanh)?,
        "Exp" => un(UnOp::Exp)?,
        "Log" => un(UnOp::Log)?,
        "Sqrt" => un(UnOp::Sqrt)?,
        "Abs" => un(UnOp::Abs)?,
        "Negative" => un(UnOp::Neg)?,
        "Softsign" => un(UnOp::Softsign)?,
        "Floor" => un(UnOp::Floor)?,
        "Ceil" => un(UnOp::Ceil)?,
        "Sin" => un(UnOp::Sin)?,
        "Cos" => un(UnOp::Cos)?,
        "Erf" => un(UnOp::Erf)?,
        "LeakyRelu" => un(UnOp::LeakyRelu(a.f("alpha").unwrap_or(0.01)))?,
        "Elu" => un(UnOp::Elu(a.f("alpha").unwrap_or(1.0)))?,
        "Selu" => un(UnOp::Selu {
            alpha: a.f("alpha").unwrap_or(1.673_263_192_176_818_8),
            gamma: a.f("scale").unwrap_or(1.050_701_022_148_132_3),
        })?,
        "PRelu" => Box::new(PRelu),
        "Add" => bin(BinOp::Add)?,
        "Sub" => bin(BinOp::Sub)?,
        "Mul" => bin(BinOp::Mul)?,
        "Div" => bin(BinOp::Div)?,
        "Pow" => match a.f("exponent") {
            Some(e) => Box::new(ScalarOp {
                op: BinOp::Pow,
                value: e,
            }),
            None => bin(BinOp::Pow)?,
        },
        "Scale" => Box::new(ScalarOp {
            op: BinOp::Mul,
            value: a.f("scale").unwrap_or(1.0),
        }),
        "Sum" => Box::new(SumSame),
        "Max" => Box::new(Variadic {
            op: BinOp::Max,
            mean: false,
        }),
        "Min" => Box::new(Variadic {
            op: BinOp::Min,
            mean: false,
        }),
        "Mean" => Box::new(Variadic {
            op: BinOp::Add,
            mean: true,
        }),
        "EQ" => cmp(CmpOp::Equal)?,
        "LT" => cmp(CmpOp::Less)?,
        "GT" => cmp(CmpOp::Greater)?,
        "LE" => cmp(CmpOp::LessOrEqual)?,
        "GE" => cmp(CmpOp::GreaterOrEqual)?,
        "Clip" => Box::new(Clip {
            min: a.f("min").or(Some(f64::MIN)),
            max: a.f("max").or(Some(f64::MAX)),
        }),
        "Cast" => Box::new(Cast(Some(a.dtype("to")?.ok_or("no `to`")?))),
        "Copy" | "Alias" | "StopGradient" | "EnsureCPUOutput" | "CopyFromCPUInput" => {
            Box::new(Identity)
        }
        "Dropout" => {
            test_only("Dropout")?;
            Box::new(Dropout { mask: n_out > 1 })
        }
        "SpatialBN" => {
            test_only("SpatialBN")?;
            if n_out > 1 {
                return Err("training outputs".into());
            }
            Box::new(BatchNorm {
                epsilon: a.f("epsilon").unwrap_or(1e-5),
            })
        }
        "Conv" | "Conv1D" | "Conv2D" | "Conv3D" => {
            let (w, _) = c2_window(a)?;
            Box::new(Conv::new(w, a.i("group").unwrap_or(1).max(0) as usize))
        }
        "MaxPool" | "AveragePool" | "MaxPool1D" | "MaxPool2D" | "MaxPool3D" | "AveragePool1D"
        | "AveragePool2D" | "AveragePool3D" | "LpPool" => {
            let (w, global) = c2_window(a)?;
            if w.dilations.iter().any(|&d| d != 1) {
                return Err("pooling with dilation".into());
            }
            if !global && w.kernel.is_none() {
                return Err("no kernel size".into());
            }
            let kind = if ty.starts_with("Max") {
                PoolKind::Max
            } else if ty == "LpPool" {
                PoolKind::Lp(a.f("p").unwrap_or(2.0))
            } else {
                PoolKind::Average {
                    count_include_pad: a.i("count_include_pad").unwrap_or(0) != 0,
                }
            };
            if n_out > 1 {
                return Err("a second output".into());
            }
            Box::new(Pool {
                kind,
                window: w,
                global,
                indices: false,
                full_kernel_divisor: true,
            })
        }
        "FC" | "FCTransposed" => Box::new(Fc {
            axis: a.i("axis").unwrap_or(1),
            axis_w: a.i("axis_w").unwrap_or(1),
            transposed: ty == "FCTransposed",
        }),
        "MatMul" => Box::new(C2MatMul {
            flatten: Some((a.i("axis_a").unwrap_or(1), a.i("axis_b").unwrap_or(1))),
            trans_a: a.i("trans_a").unwrap_or(0) != 0,
            trans_b: a.i("trans_b").unwrap_or(0) != 0,
        }),
        "BatchMatMul" => Box::new(C2MatMul {
            flatten: None,
            trans_a: a.i("trans_a").unwrap_or(0) != 0,
            trans_b: a.i("trans_b").unwrap_or(0) != 0,
        }),
        "Softmax" => Box::new(Softmax {
            kind: SoftmaxKind::Softmax,
            axis: a.i("axis").unwrap_or(1),
            coerce_2d: true,
        }),
        "LRN" => {
            if n_out > 1 {
                return Err("the Y_scale output".into());
            }
            Box::new(Lrn {
                size: a.i("size").unwrap_or(0).max(0) as usize,
                alpha: a.f("alpha").unwrap_or(0.0),
                beta: a.f("beta").unwrap_or(0.0),
                bias: a.f("bias").unwrap_or(1.0),
            })
        }
        "Flatten" => Box::new(C2Flatten {
            axis: Some(a.i("axis").unwrap_or(1)),
        }),
        "FlattenToVec" => Box::new(C2Flatten { axis: None }),
        "Reshape" => Box::new(C2Reshape {
            shape: a.ints("shape"),
        }),
        "Transpose" => Box::new(Transpose {
            perm: a.ints("axes").filter(|v| !v.is_empty()),
        }),
        "ExpandDims" => Box::new(Dims {
            dims: a.ints("dims").unwrap_or_default(),
            expand: true,
        }),
        "Squeeze" => Box::new(Dims {
            dims: a.ints("dims").unwrap_or_default(),
            expand: false,
        }),
        "Concat" => Box::new(C2Concat {
            axis: order_axis()?,
            add_axis: a.i("add_axis").unwrap_or(0) != 0,
        }),
        "Split" => {
            if a.i("add_axis").unwrap_or(0) != 0 {
                return Err("add_axis".into());
            }
            Box::new(C2Split {
                axis: order_axis()?,
                split: a.ints("split"),
                outputs: n_out,
            })
        }
        "ChannelShuffle" => Box::new(ChannelShuffle {
            group: a.i("group").unwrap_or(1).max(0) as usize,
        }),
        "Expand" => Box::new(crate::kernels::shape::Expand),
        "Shape" => {
            if a.ints("axes").is_some_and(|v| !v.is_empty()) {
                return Err("axes".into());
            }
            Box::new(Shape {
                start: 0,
                end: None,
            })
        }
        "Gather" => Box::new(Gather { axis: 0 }),
        "BatchGather" => Box::new(Gather { axis: 1 }),
        "ConstantFill" => Box::new(ConstantFillK(op.clone())),
        "PadImage" => {
            let (w, _) = c2_window(a)?;
            let p = &w.pads;
            if p.len() != 4 {
                return Err(format!("pads {p:?}"));
            }
            let mode = match a.s("mode").as_deref() {
                None | Some("constant") => PadMode::Constant,
                Some("reflect") => PadMode::Reflect,
                Some("edge") => PadMode::Edge,
                Some(m) => return Err(format!("mode {m:?}")),
            };
            let pads = [0, 0, p[0], p[1], 0, 0, p[2], p[3]]
                .iter()
                .map(|&v| v as i64)
                .collect();
            Box::new(Pad {
                mode,
                pads: Some(pads),
                value: a.f("value").unwrap_or(0.0),
            })
        }
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" => Box::new(Reduce {
            op: match ty {
                "ReduceMean" => ReduceOp::Mean,
                "ReduceSum" => ReduceOp::Sum,
                "ReduceMax" => ReduceOp::Max,
                _ => ReduceOp::Min,
            },
            axes: Some(a.ints("axes").unwrap_or_default()),
            keepdims: a.i("keepdims").unwrap_or(1) != 0,
            noop_with_empty_axes: false,
        }),
        "ArgMax" | "ArgMin" => Box::new(ArgReduce {
            max: ty == "ArgMax",
            axis: a.i("axis").unwrap_or(-1),
            keepdims: a.i("keepdims").unwrap_or(1) != 0,
            select_last_index: false,
        }),
        "ConvTranspose" | "ConvTranspose1D" | "ConvTranspose2D" | "ConvTranspose3D" => {
            let (w, global) = c2_window(a)?;
            let kernel = w.kernel.ok_or("no kernel size")?;
            if global || w.ceil_mode || w.auto_pad == AutoPad::SameUpper {
                return Err("global_pooling or legacy_pad other than NOTSET/VALID".into());
            }
            if w.dilations.iter().any(|&d| d != 1) {
                return Err("ConvTranspose with dilation".into());
            }
            let adjs = spatial_arg(a, "adjs", "adj", ["adj_h", "adj_w"], kernel.len())?;
            Box::new(crate::kernels::nn::ConvTranspose {
                strides: w.strides,
                dilations: vec![],
                pads: Some(if w.pads.is_empty() {
                    vec![0; 2 * kernel.len()]
                } else {
                    w.pads
                }),
                same_upper: None,
                output_padding: adjs,
                output_shape: None,
                group: a.i("group").unwrap_or(1).max(1) as usize,
            })
        }
        "Slice" => Box::new(C2Slice {
            starts: a.ints("starts"),
            ends: a.ints("ends"),
        }),
        "ResizeNearest" => Box::new(ResizeNearest {
            height_scale: a.f("height_scale").unwrap_or(1.0),
            width_scale: a.f("width_scale").unwrap_or(1.0),
        }),
        other => {
            return crate::caffe2_rnn::kernel(op)
                .unwrap_or_else(|| Err(format!("no kernel for Caffe2 op {other:?}")));
        }
    })
}

/// Caffe2 `Slice`: `starts`/`ends` (arguments, or inputs 1 and 2), one per
/// dim; a negative index counts from one past the end (-1 is the end); at
/// most one dim may be cut, as Caffe2's CPU op enforces.
#[derive(Debug)]
struct C2Slice {
    starts: Option<Vec<i64>>,
    ends: Option<Vec<i64>>,
}

impl Kernel for C2Slice {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let (starts, ends) = match (opt(inputs, 1), opt(inputs, 2)) {
            (Some(s), Some(e)) => (s.to_i64_vec()?, e.to_i64_vec()?),
            (None, None) => (
                self.starts.clone().ok_or("no starts")?,
                self.ends.clone().ok_or("no ends")?,
            ),
            _ => return Err("starts and ends must both be inputs or both arguments".into()),
        };
        // Fewer than one per dim abort Caffe2's CPU op (a failed check in
        // slice_op.h): an error here too.
        if starts.len() != ends.len() || starts.len() != x.rank() {
            return Err(format!(
                "starts {starts:?} and ends {ends:?} for a tensor of shape {:?}",
                x.shape
            ));
        }
        let mut sliced = None;
        let (mut b, mut e) = (vec![0i64; x.rank()], vec![0i64; x.rank()]);
        for (i, &d) in x.shape.iter().enumerate() {
            let d = d as i64;
            e[i] = d;
            if d == 0 {
                continue;
            }
            let fix = |v: i64| (if v < 0 { d + 1 + v } else { v }).min(d);
            let (s0, e0) = (fix(starts[i]), fix(ends[i]));
            if s0 < 0 || e0 < s0 {
                return Err(format!(
                    "dim {i} of size {d}: start {} end {} (from {} and {})",
                    s0, e0, starts[i], ends[i]
                ));
            }
            if s0 > 0 || e0 < d {
                if let Some(j) = sliced {
                    return Err(format!(
                        "Caffe2 slices one dim only: dims {j} and {i} are both cut"
                    ));
                }
                sliced = Some(i);
            }
            (b[i], e[i]) = (s0, e0);
        }
        let k = x.rank();
        let t = |v: Vec<i64>| Tensor::i64(vec![k], v);
        let axes = t((0..k as i64).collect())?;
        crate::kernels::shape::Slice { fixed: None }.run(&[
            Some(x),
            Some(&t(b)?),
            Some(&t(e)?),
            Some(&axes),
        ])
    }
}

/// Caffe2 `ResizeNearest` (NCHW): output `floor(in * scale)` (computed in
/// float32), source index `min(floor(out / scale), in - 1)`; the scales are
/// the `height_scale`/`width_scale` arguments or input 1 (`[h, w]`).
#[derive(Debug)]
struct ResizeNearest {
    height_scale: f64,
    width_scale: f64,
}

impl Kernel for ResizeNearest {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        use crate::kernels::resize::{Coord, LegacyScales, Mode, Resize, Rounding};
        let x = arg(inputs, 0)?;
        if x.rank() != 4 {
            return Err(format!("input of shape {:?} (NCHW expected)", x.shape));
        }
        let (h, w) = match opt(inputs, 1) {
            Some(s) => match s.data.to_f64_vec()[..] {
                [h, w] => (h, w),
                _ => return Err(format!("scales of shape {:?}, not [2]", s.shape)),
            },
            None => (self.height_scale, self.width_scale),
        };
        if !(h > 0.0 && w > 0.0) {
            return Err(format!("height_scale {h}, width_scale {w}"));
        }
        // Caffe2 holds the scales as float32.
        let (h, w) = (h as f32 as f64, w as f32 as f64);
        Resize {
            mode: Mode::Nearest(Rounding::Floor),
            coord: Coord::Asymmetric,
            exclude_outside: false,
            extrapolation: 0.0,
            axes: None,
            keep_aspect: 0,
            legacy: Some(LegacyScales::Fixed(vec![1.0, 1.0, h, w])),
        }
        .run(&[Some(x)])
    }
}

//! The ONNX front end: turns a `ModelProto` into a [`Plan`], reading each
//! node's attributes as the ONNX operator docs define them for the opset the
//! model imports (attributes that became inputs, changed defaults, Softmax's
//! pre-13 flattening, ...). An op, domain, attribute value or dtype it has no
//! kernel for is refused here, naming the node, op and opset.

use crate::error::ExecError;
use crate::kernels::Kernel;
use crate::kernels::elementwise::{
    BinOp, Binary, BitOp, Bitwise, Cast, Clip, CmpOp, Compare, FloatClass, Not, PRelu, UnOp, Unary,
    Variadic, Where,
};
use crate::kernels::nn::{
    AutoPad, BatchNorm, Conv, Dropout, Gemm, Lrn, MatMul, Norm, Pool, PoolKind, Softmax,
    SoftmaxKind, Window,
};
use crate::kernels::reduce::{ArgReduce, Reduce, ReduceOp, TopK};
use crate::kernels::shape::{
    Concat, ConstantOfShape, CumSum, DepthSpace, Expand, Flatten, Gather, GatherElements, GatherNd,
    Identity, NonZero, OneHot, Pad, PadMode, Range, Reshape, Scatter, Shape, Size, Slice, Split,
    Squeeze, Tile, Transpose, Trilu, Unsqueeze,
};
use crate::plan::{InputDim, InputSpec, Plan, Step};
use crate::tensor::{SUPPORTED_DTYPES, Tensor};
use netport_onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, TypeProto,
};
use netport_onnx::{ExternalDataResolver, tensor_data};
use netport_tensor::DType;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Loads an ONNX file (external data next to it) and builds its plan.
pub fn load(path: &Path) -> Result<Plan, ExecError> {
    let model = netport_onnx::load_model(path)?;
    let resolver = ExternalDataResolver::for_model(path);
    build(&model, Some(&resolver))
}

/// A tensor from a `TensorProto` (inline, typed fields or external data).
pub fn tensor_from_proto(
    t: &TensorProto,
    resolver: Option<&ExternalDataResolver>,
) -> Result<Tensor, String> {
    let code = t.data_type();
    let dtype = DType::from_onnx(code)
        .filter(|d| SUPPORTED_DTYPES.contains(d))
        .ok_or_else(|| {
            format!(
                "tensor {:?} has data type {} ({}), which the executor does not support",
                t.name(),
                code,
                netport_onnx::dtype::name(code).unwrap_or("unknown")
            )
        })?;
    let shape = t
        .dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| format!("tensor {:?} has dims {:?}", t.name(), t.dims))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = tensor_data(t, resolver).map_err(|e| e.to_string())?;
    Tensor::from_le_bytes(dtype, shape, &bytes).map_err(|e| format!("tensor {:?}: {e}", t.name()))
}

/// A declared tensor type: dtype and (maybe) shape.
type Declared = (DType, Option<Vec<InputDim>>);

fn type_dtype(t: &TypeProto) -> Result<Option<Declared>, String> {
    use netport_onnx::proto::type_proto::Value;
    match &t.value {
        Some(Value::TensorType(tt)) => {
            let code = tt.elem_type();
            let dtype = DType::from_onnx(code)
                .filter(|d| SUPPORTED_DTYPES.contains(d))
                .ok_or_else(|| {
                    format!(
                        "data type {code} ({}) is not supported",
                        netport_onnx::dtype::name(code).unwrap_or("unknown")
                    )
                })?;
            let shape = tt.shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| match netport_onnx::Dim::from_proto(d) {
                        netport_onnx::Dim::Fixed(n) if n >= 0 => InputDim::Fixed(n as usize),
                        netport_onnx::Dim::Param(p) => InputDim::Symbolic(p),
                        _ => InputDim::Unknown,
                    })
                    .collect()
            });
            Ok(Some((dtype, shape)))
        }
        None => Ok(None),
        Some(_) => Err("sequence, map, optional and sparse values are not supported".into()),
    }
}

/// Builds the plan of a model; `resolver` reads external data.
pub fn build(
    model: &ModelProto,
    resolver: Option<&ExternalDataResolver>,
) -> Result<Plan, ExecError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| ExecError::Model("the model has no graph".into()))?;
    let mut opsets: HashMap<String, i64> = HashMap::new();
    for o in &model.opset_import {
        let d = o.domain().to_string();
        opsets.insert(if d == "ai.onnx" { String::new() } else { d }, o.version());
    }
    if !opsets.contains_key("") && model.ir_version() < 3 {
        opsets.insert(String::new(), 1);
    }
    let (plan, implicit) = build_graph(graph, &opsets, resolver, &HashSet::new())?;
    if let Some(n) = implicit.first() {
        return Err(ExecError::Model(format!("{n:?} is read but never defined")));
    }
    Ok(plan)
}

/// Builds the plan of a graph; names found in `outer` (enclosing scopes)
/// become inputs too, returned as the implicit inputs.
fn build_graph(
    graph: &GraphProto,
    opsets: &HashMap<String, i64>,
    resolver: Option<&ExternalDataResolver>,
    outer: &HashSet<String>,
) -> Result<(Plan, Vec<String>), ExecError> {
    let mut implicit = Vec::new();
    let mut plan = Plan::default();
    let mut index = HashMap::new();
    for init in &graph.initializer {
        let t = tensor_from_proto(init, resolver).map_err(ExecError::Model)?;
        let s = plan.slot(&mut index, init.name());
        plan.consts.insert(s, t);
    }
    if !graph.sparse_initializer.is_empty() {
        return Err(ExecError::Model(
            "sparse initializers are not supported".into(),
        ));
    }
    for vi in &graph.input {
        let s = plan.slot(&mut index, vi.name());
        if plan.consts.contains_key(&s) {
            // An initializer that is also an input: its default value is used.
            continue;
        }
        let (dtype, shape) = match vi.r#type.as_ref().map(type_dtype).transpose() {
            Ok(t) => t.flatten().map_or((None, None), |(d, s)| (Some(d), s)),
            Err(e) => {
                return Err(ExecError::Input {
                    name: vi.name().to_string(),
                    reason: e,
                });
            }
        };
        plan.inputs.push((
            InputSpec {
                name: vi.name().to_string(),
                dtype,
                shape,
            },
            s,
        ));
    }
    for vi in graph.output.iter().chain(&graph.value_info) {
        if let Some(t) = &vi.r#type
            && let Err(e) = type_dtype(t)
        {
            return Err(ExecError::Unsupported {
                node: producer(graph, vi.name()),
                op: producer_op(graph, vi.name()),
                domain: String::new(),
                opset: opsets.get("").copied().unwrap_or(0),
                reason: format!("value {:?}: {e}", vi.name()),
            });
        }
    }
    for node in &graph.node {
        add_node(
            &mut plan,
            &mut index,
            node,
            opsets,
            resolver,
            outer,
            &mut implicit,
        )?;
    }
    for vi in &graph.output {
        let s = match index.get(vi.name()) {
            Some(&s) => s,
            None if outer.contains(vi.name()) => {
                let s = plan.slot(&mut index, vi.name());
                plan.inputs.push((
                    InputSpec {
                        name: vi.name().to_string(),
                        dtype: None,
                        shape: None,
                    },
                    s,
                ));
                implicit.push(vi.name().to_string());
                s
            }
            None => {
                return Err(ExecError::Model(format!(
                    "output {:?} is never produced",
                    vi.name()
                )));
            }
        };
        plan.outputs.push((vi.name().to_string(), s));
    }
    plan.finish();
    Ok((plan, implicit))
}

fn producer(graph: &GraphProto, value: &str) -> String {
    graph
        .node
        .iter()
        .find(|n| n.output.iter().any(|o| o == value))
        .map(node_name)
        .unwrap_or_else(|| value.to_string())
}

fn producer_op(graph: &GraphProto, value: &str) -> String {
    graph
        .node
        .iter()
        .find(|n| n.output.iter().any(|o| o == value))
        .map(|n| n.op_type().to_string())
        .unwrap_or_else(|| "graph output".into())
}

fn node_name(n: &NodeProto) -> String {
    if n.name().is_empty() {
        n.output.first().cloned().unwrap_or_default()
    } else {
        n.name().to_string()
    }
}

fn add_node(
    plan: &mut Plan,
    index: &mut HashMap<String, usize>,
    node: &NodeProto,
    opsets: &HashMap<String, i64>,
    resolver: Option<&ExternalDataResolver>,
    outer: &HashSet<String>,
    implicit: &mut Vec<String>,
) -> Result<(), ExecError> {
    let domain = node.domain();
    let domain = if domain == "ai.onnx" { "" } else { domain };
    let opset = opsets.get(domain).copied().unwrap_or(0);
    let unsupported = |reason: String| ExecError::Unsupported {
        node: node_name(node),
        op: node.op_type().to_string(),
        domain: if domain.is_empty() {
            String::new()
        } else {
            format!("{domain} ")
        },
        opset,
        reason,
    };
    if !domain.is_empty() {
        return Err(unsupported(format!("domain {domain:?} has no kernels")));
    }
    let attrs = Attrs(&node.attribute);
    if node.op_type() == "Constant" {
        let t = constant_value(&attrs, resolver).map_err(unsupported)?;
        let s = plan.slot(index, node.output.first().map(String::as_str).unwrap_or(""));
        plan.consts.insert(s, t);
        return Ok(());
    }
    let (kernel, extra) = match node.op_type() {
        "If" | "Loop" | "Scan" => {
            let mut scope: HashSet<String> = outer.clone();
            scope.extend(index.keys().cloned());
            let sub = |name: &str| -> Result<crate::control::Sub, ExecError> {
                let g = attrs
                    .get(name)
                    .and_then(|a| a.g.as_ref())
                    .ok_or_else(|| unsupported(format!("graph attribute {name} is missing")))?;
                let (plan, implicit) = build_graph(g, opsets, resolver, &scope)?;
                Ok(crate::control::Sub { plan, implicit })
            };
            control_kernel(node, opset, &attrs, &sub).map_err(|e| match e {
                Ok(reason) => unsupported(reason),
                Err(e) => e,
            })?
        }
        _ => (
            build_kernel(node, opset, &attrs, resolver).map_err(unsupported)?,
            vec![],
        ),
    };
    let mut inputs = Vec::new();
    for name in node.input.iter().chain(&extra) {
        if name.is_empty() {
            inputs.push(None);
            continue;
        }
        let s = match index.get(name) {
            Some(&s) => s,
            None if outer.contains(name) => {
                let s = plan.slot(index, name);
                plan.inputs.push((
                    InputSpec {
                        name: name.clone(),
                        dtype: None,
                        shape: None,
                    },
                    s,
                ));
                implicit.push(name.clone());
                s
            }
            None => {
                return Err(ExecError::Model(format!(
                    "node {:?} ({}) reads {name:?}, which no earlier node, input or initializer makes",
                    node_name(node),
                    node.op_type()
                )));
            }
        };
        inputs.push(Some(s));
    }
    let outputs = node
        .output
        .iter()
        .map(|o| {
            if o.is_empty() {
                None
            } else {
                Some(plan.slot(index, o))
            }
        })
        .collect();
    plan.steps.push(Step {
        name: node_name(node),
        op: node.op_type().to_string(),
        kernel,
        inputs,
        outputs,
        free: vec![],
    });
    Ok(())
}

/// A control-flow kernel and the outer names its subgraphs read (extra
/// inputs of the node). `Err(Ok(reason))` refuses the node.
#[allow(clippy::type_complexity)]
fn control_kernel(
    node: &NodeProto,
    opset: i64,
    a: &Attrs<'_>,
    sub: &dyn Fn(&str) -> Result<crate::control::Sub, ExecError>,
) -> Result<(Box<dyn Kernel>, Vec<String>), Result<String, ExecError>> {
    use crate::control::{If, Loop, Scan, implicit_union};
    let n_in = node.input.len();
    Ok(match node.op_type() {
        "If" => {
            let (t, e) = (
                sub("then_branch").map_err(Err)?,
                sub("else_branch").map_err(Err)?,
            );
            let implicit = implicit_union(&[&t, &e]);
            (
                Box::new(If {
                    then_branch: t,
                    else_branch: e,
                    implicit: implicit.clone(),
                }),
                implicit,
            )
        }
        "Loop" => {
            let body = sub("body").map_err(Err)?;
            let implicit = body.implicit.clone();
            (
                Box::new(Loop {
                    body,
                    explicit: n_in,
                }),
                implicit,
            )
        }
        _ => {
            let body = sub("body").map_err(Err)?;
            if opset < 9 {
                let implicit = body.implicit.clone();
                let m = a.i("num_scan_inputs", 0).max(0) as usize;
                let directions = a.ints("directions").unwrap_or_default();
                return Ok((
                    Box::new(crate::control::Scan8 {
                        scan: Scan {
                            body,
                            explicit: n_in.saturating_sub(1),
                            num_scan_inputs: m,
                            input_axes: vec![],
                            input_directions: directions,
                            output_axes: vec![],
                            output_directions: vec![],
                        },
                    }),
                    implicit,
                ));
            }
            let implicit = body.implicit.clone();
            let m = a.i("num_scan_inputs", 0).max(0) as usize;
            (
                Box::new(Scan {
                    body,
                    explicit: n_in,
                    num_scan_inputs: m,
                    input_axes: a.ints("scan_input_axes").unwrap_or_default(),
                    input_directions: a.ints("scan_input_directions").unwrap_or_default(),
                    output_axes: a.ints("scan_output_axes").unwrap_or_default(),
                    output_directions: a.ints("scan_output_directions").unwrap_or_default(),
                }),
                implicit,
            )
        }
    })
}

/// Typed access to a node's attributes.
struct Attrs<'a>(&'a [AttributeProto]);

impl Attrs<'_> {
    fn get(&self, name: &str) -> Option<&AttributeProto> {
        self.0.iter().find(|a| a.name() == name)
    }
    fn i(&self, name: &str, default: i64) -> i64 {
        self.get(name).and_then(|a| a.i).unwrap_or(default)
    }
    fn f(&self, name: &str, default: f64) -> f64 {
        self.get(name)
            .and_then(|a| a.f)
            .map_or(default, |f| f as f64)
    }
    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }
    fn s(&self, name: &str) -> Option<String> {
        self.get(name)
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }
    fn usizes(&self, name: &str) -> Result<Vec<usize>, String> {
        self.ints(name)
            .unwrap_or_default()
            .iter()
            .map(|&v| {
                usize::try_from(v).map_err(|_| format!("attribute {name} has a negative value {v}"))
            })
            .collect()
    }
}

fn constant_value(
    a: &Attrs<'_>,
    resolver: Option<&ExternalDataResolver>,
) -> Result<Tensor, String> {
    if let Some(t) = a.get("value").and_then(|v| v.t.as_ref()) {
        return tensor_from_proto(t, resolver);
    }
    if let Some(v) = a.get("value_float").and_then(|v| v.f) {
        return Tensor::f32(vec![], vec![v]);
    }
    if let Some(v) = a.get("value_floats") {
        return Tensor::f32(vec![v.floats.len()], v.floats.clone());
    }
    if let Some(v) = a.get("value_int").and_then(|v| v.i) {
        return Tensor::i64(vec![], vec![v]);
    }
    if let Some(v) = a.get("value_ints") {
        return Tensor::i64(vec![v.ints.len()], v.ints.clone());
    }
    Err("only tensor, float(s) and int(s) constants are supported".into())
}

fn window(a: &Attrs<'_>, opset: i64, op: &str) -> Result<Window, String> {
    let auto_pad = match a.s("auto_pad").as_deref() {
        None | Some("NOTSET") | Some("") => AutoPad::NotSet,
        Some("VALID") => AutoPad::Valid,
        Some("SAME_UPPER") => AutoPad::SameUpper,
        Some("SAME_LOWER") => AutoPad::SameLower,
        Some(other) => return Err(format!("auto_pad {other:?}")),
    };
    let kernel = a
        .ints("kernel_shape")
        .map(|_| a.usizes("kernel_shape"))
        .transpose()?;
    let dilations = a.usizes("dilations")?;
    if op == "MaxPool" && opset < 10 && !dilations.is_empty() {
        return Err("dilations before opset 10".into());
    }
    Ok(Window {
        kernel,
        strides: a.usizes("strides")?,
        dilations,
        pads: a.usizes("pads")?,
        auto_pad,
        ceil_mode: a.i("ceil_mode", 0) != 0,
    })
}

fn dtype_attr(a: &Attrs<'_>, name: &str) -> Result<DType, String> {
    let code = a
        .get(name)
        .and_then(|v| v.i)
        .ok_or(format!("attribute {name} is missing"))?;
    DType::from_onnx(code as i32)
        .filter(|d| SUPPORTED_DTYPES.contains(d))
        .ok_or_else(|| {
            format!(
                "{name} = {code} ({}) is not a supported dtype",
                netport_onnx::dtype::name(code as i32).unwrap_or("unknown")
            )
        })
}

fn build_kernel(
    node: &NodeProto,
    opset: i64,
    a: &Attrs<'_>,
    resolver: Option<&ExternalDataResolver>,
) -> Result<Box<dyn Kernel>, String> {
    let op = node.op_type();
    let n_out = node.output.len();
    let un = |u: UnOp| -> Result<Box<dyn Kernel>, String> { Ok(Box::new(Unary(u))) };
    let bin = |b: BinOp| -> Result<Box<dyn Kernel>, String> {
        if opset < 7 && a.i("broadcast", 0) != 0 {
            return Err("legacy broadcast (opset < 7) is not supported".into());
        }
        Ok(Box::new(Binary(b)))
    };
    let cmp = |c: CmpOp| -> Result<Box<dyn Kernel>, String> { Ok(Box::new(Compare(c))) };
    let reduce = |r: ReduceOp| -> Result<Box<dyn Kernel>, String> {
        Ok(Box::new(Reduce {
            op: r,
            axes: a.ints("axes"),
            keepdims: a.i("keepdims", 1) != 0,
            noop_with_empty_axes: a.i("noop_with_empty_axes", 0) != 0,
        }))
    };
    let softmax = |k: SoftmaxKind| -> Result<Box<dyn Kernel>, String> {
        let coerce = opset < 13;
        Ok(Box::new(Softmax {
            kind: k,
            axis: a.i("axis", if coerce { 1 } else { -1 }),
            coerce_2d: coerce,
        }))
    };
    Ok(match op {
        "Abs" => un(UnOp::Abs)?,
        "Neg" => un(UnOp::Neg)?,
        "Sign" => un(UnOp::Sign)?,
        "Relu" => un(UnOp::Relu)?,
        "Floor" => un(UnOp::Floor)?,
        "Ceil" => un(UnOp::Ceil)?,
        "Round" => un(UnOp::Round)?,
        "Sqrt" => un(UnOp::Sqrt)?,
        "Reciprocal" => un(UnOp::Reciprocal)?,
        "Exp" => un(UnOp::Exp)?,
        "Log" => un(UnOp::Log)?,
        "Tanh" => un(UnOp::Tanh)?,
        "Sigmoid" => un(UnOp::Sigmoid)?,
        "Sin" => un(UnOp::Sin)?,
        "Cos" => un(UnOp::Cos)?,
        "Tan" => un(UnOp::Tan)?,
        "Asin" => un(UnOp::Asin)?,
        "Acos" => un(UnOp::Acos)?,
        "Atan" => un(UnOp::Atan)?,
        "Sinh" => un(UnOp::Sinh)?,
        "Cosh" => un(UnOp::Cosh)?,
        "Asinh" => un(UnOp::Asinh)?,
        "Acosh" => un(UnOp::Acosh)?,
        "Atanh" => un(UnOp::Atanh)?,
        "Erf" => un(UnOp::Erf)?,
        "Softplus" => un(UnOp::Softplus)?,
        "Softsign" => un(UnOp::Softsign)?,
        "Mish" => un(UnOp::Mish)?,
        "HardSwish" => un(UnOp::HardSwish)?,
        "LeakyRelu" => un(UnOp::LeakyRelu(a.f("alpha", 0.01)))?,
        "Elu" => un(UnOp::Elu(a.f("alpha", 1.0)))?,
        "Celu" => un(UnOp::Celu(a.f("alpha", 1.0)))?,
        "Selu" => un(UnOp::Selu {
            alpha: a.f("alpha", 1.673_263_192_176_818_8),
            gamma: a.f("gamma", 1.050_701_022_148_132_3),
        })?,
        "HardSigmoid" => un(UnOp::HardSigmoid {
            alpha: a.f("alpha", 0.2),
            beta: a.f("beta", 0.5),
        })?,
        "ThresholdedRelu" => un(UnOp::ThresholdedRelu(a.f("alpha", 1.0)))?,
        "Shrink" => un(UnOp::Shrink {
            bias: a.f("bias", 0.0),
            lambd: a.f("lambd", 0.5),
        })?,
        "Gelu" => match a.s("approximate").as_deref() {
            None | Some("none") => un(UnOp::Gelu { tanh: false })?,
            Some("tanh") => un(UnOp::Gelu { tanh: true })?,
            Some(o) => return Err(format!("approximate {o:?}")),
        },
        "PRelu" => Box::new(PRelu),
        "Not" => Box::new(Not),
        "IsNaN" => Box::new(FloatClass {
            nan: true,
            positive: false,
            negative: false,
        }),
        "IsInf" => Box::new(FloatClass {
            nan: false,
            positive: a.i("detect_positive", 1) != 0,
            negative: a.i("detect_negative", 1) != 0,
        }),
        "Add" => bin(BinOp::Add)?,
        "Sub" => bin(BinOp::Sub)?,
        "Mul" => bin(BinOp::Mul)?,
        "Div" => bin(BinOp::Div)?,
        "Pow" => bin(BinOp::Pow)?,
        "Mod" => bin(BinOp::Mod {
            fmod: a.i("fmod", 0) != 0,
        })?,
        "Sum" => Box::new(Variadic {
            op: BinOp::Add,
            mean: false,
        }),
        "Mean" => Box::new(Variadic {
            op: BinOp::Add,
            mean: true,
        }),
        "Max" => Box::new(Variadic {
            op: BinOp::Max,
            mean: false,
        }),
        "Min" => Box::new(Variadic {
            op: BinOp::Min,
            mean: false,
        }),
        "Equal" => cmp(CmpOp::Equal)?,
        "Less" => cmp(CmpOp::Less)?,
        "LessOrEqual" => cmp(CmpOp::LessOrEqual)?,
        "Greater" => cmp(CmpOp::Greater)?,
        "GreaterOrEqual" => cmp(CmpOp::GreaterOrEqual)?,
        "And" => cmp(CmpOp::And)?,
        "Or" => cmp(CmpOp::Or)?,
        "Xor" => cmp(CmpOp::Xor)?,
        "BitwiseAnd" => Box::new(Bitwise(BitOp::And)),
        "BitwiseOr" => Box::new(Bitwise(BitOp::Or)),
        "BitwiseXor" => Box::new(Bitwise(BitOp::Xor)),
        "BitShift" => match a.s("direction").as_deref() {
            Some("LEFT") => Box::new(Bitwise(BitOp::ShiftLeft)),
            Some("RIGHT") => Box::new(Bitwise(BitOp::ShiftRight)),
            d => return Err(format!("direction {d:?}")),
        },
        "Clip" => {
            if opset < 11 {
                Box::new(Clip {
                    min: Some(a.f("min", f64::NEG_INFINITY)),
                    max: Some(a.f("max", f64::INFINITY)),
                })
            } else {
                Box::new(Clip {
                    min: None,
                    max: None,
                })
            }
        }
        "Where" => Box::new(Where),
        "Cast" => Box::new(Cast(Some(dtype_attr(a, "to")?))),
        "CastLike" => Box::new(Cast(None)),
        "Identity" => Box::new(Identity),
        "Dropout" => {
            if opset < 7 && a.i("is_test", 0) == 0 {
                return Err("Dropout in training mode (is_test = 0)".into());
            }
            Box::new(Dropout { mask: n_out > 1 })
        }
        "Conv" => {
            let w = window(a, opset, op)?;
            Box::new(Conv::new(w, a.i("group", 1).max(0) as usize))
        }
        "MaxPool" | "AveragePool" | "LpPool" => {
            let w = window(a, opset, op)?;
            if w.kernel.is_none() {
                return Err("kernel_shape is missing".into());
            }
            if op == "MaxPool" && n_out > 1 && a.i("storage_order", 0) != 0 {
                return Err("storage_order = 1 indices".into());
            }
            let kind = match op {
                "MaxPool" => PoolKind::Max,
                "AveragePool" => PoolKind::Average {
                    count_include_pad: a.i("count_include_pad", 0) != 0,
                },
                _ => PoolKind::Lp(a.i("p", 2) as f64),
            };
            Box::new(Pool {
                kind,
                window: w,
                global: false,
                indices: n_out > 1 && !node.output[1].is_empty(),
                full_kernel_divisor: false,
            })
        }
        "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => {
            let kind = match op {
                "GlobalMaxPool" => PoolKind::Max,
                "GlobalAveragePool" => PoolKind::Average {
                    count_include_pad: false,
                },
                _ => PoolKind::Lp(a.i("p", 2) as f64),
            };
            Box::new(Pool {
                kind,
                window: window(a, opset, op)?,
                global: true,
                indices: false,
                full_kernel_divisor: false,
            })
        }
        "BatchNormalization" => {
            if a.i("training_mode", 0) != 0 {
                if opset < 14 || node.output.len() > 3 {
                    return Err(
                        "training mode outputs other than Y, running_mean, running_var".into(),
                    );
                }
                return Ok(Box::new(crate::kernels::nn::BatchNormTrain {
                    epsilon: a.f("epsilon", 1e-5),
                    momentum: a.f("momentum", 0.9),
                }));
            }
            if opset >= 14 && node.output.iter().skip(1).any(|o| !o.is_empty()) {
                return Err("running statistics outputs without training_mode".into());
            }
            if opset < 7 && a.i("is_test", 0) == 0 && n_out > 1 {
                return Err("training mode (is_test = 0) is not supported".into());
            }
            if opset < 9 && a.i("spatial", 1) == 0 {
                return Err("spatial = 0 is not supported".into());
            }
            if opset < 14 && node.output.iter().skip(1).any(|o| !o.is_empty()) {
                return Err(
                    "the training outputs (mean, var, saved stats) are not supported".into(),
                );
            }
            Box::new(BatchNorm {
                epsilon: a.f("epsilon", 1e-5),
            })
        }
        "InstanceNormalization" => Box::new(Norm {
            epsilon: a.f("epsilon", 1e-5),
            axis: None,
            rms: false,
        }),
        "LayerNormalization" => Box::new(Norm {
            epsilon: a.f("epsilon", 1e-5),
            axis: Some(a.i("axis", -1)),
            rms: false,
        }),
        "LRN" => Box::new(Lrn {
            size: a.i("size", 1).max(1) as usize,
            alpha: a.f("alpha", 1e-4),
            beta: a.f("beta", 0.75),
            bias: a.f("bias", 1.0),
        }),
        "Gemm" => Box::new(Gemm {
            alpha: a.f("alpha", 1.0),
            beta: a.f("beta", 1.0),
            trans_a: a.i("transA", 0) != 0,
            trans_b: a.i("transB", 0) != 0,
        }),
        "MatMul" => Box::new(MatMul),
        "Softmax" => softmax(SoftmaxKind::Softmax)?,
        "LogSoftmax" => softmax(SoftmaxKind::LogSoftmax)?,
        "Hardmax" => softmax(SoftmaxKind::Hardmax)?,
        "ReduceSum" => reduce(ReduceOp::Sum)?,
        "ReduceMean" => reduce(ReduceOp::Mean)?,
        "ReduceMax" => reduce(ReduceOp::Max)?,
        "ReduceMin" => reduce(ReduceOp::Min)?,
        "ReduceProd" => reduce(ReduceOp::Prod)?,
        "ReduceL1" => reduce(ReduceOp::L1)?,
        "ReduceL2" => reduce(ReduceOp::L2)?,
        "ReduceLogSum" => reduce(ReduceOp::LogSum)?,
        "ReduceLogSumExp" => reduce(ReduceOp::LogSumExp)?,
        "ReduceSumSquare" => reduce(ReduceOp::SumSquare)?,
        "ArgMax" | "ArgMin" => Box::new(ArgReduce {
            max: op == "ArgMax",
            axis: a.i("axis", 0),
            keepdims: a.i("keepdims", 1) != 0,
            select_last_index: a.i("select_last_index", 0) != 0,
        }),
        "TopK" => {
            if a.i("sorted", 1) == 0 {
                return Err("sorted = 0".into());
            }
            Box::new(TopK {
                axis: a.i("axis", -1),
                largest: a.i("largest", 1) != 0,
                k: if opset < 10 { Some(a.i("k", 0)) } else { None },
            })
        }
        "Reshape" => Box::new(Reshape {
            shape: if opset < 5 { a.ints("shape") } else { None },
            allowzero: a.i("allowzero", 0) != 0,
        }),
        "Flatten" => Box::new(Flatten {
            axis: a.i("axis", 1),
        }),
        "Squeeze" => Box::new(Squeeze {
            axes: if opset < 13 { a.ints("axes") } else { None },
        }),
        "Unsqueeze" => {
            if opset < 13 && a.ints("axes").is_none() {
                return Err("axes attribute is missing".into());
            }
            Box::new(Unsqueeze {
                axes: if opset < 13 { a.ints("axes") } else { None },
            })
        }
        "Transpose" => Box::new(Transpose {
            perm: a.ints("perm"),
        }),
        "Concat" => Box::new(Concat {
            axis: a.get("axis").and_then(|v| v.i).ok_or("axis is missing")?,
        }),
        "Split" => Box::new(Split {
            axis: a.i("axis", 0),
            split: if opset < 13 { a.ints("split") } else { None },
            outputs: n_out,
        }),
        "Slice" => Box::new(Slice {
            fixed: if opset < 10 {
                Some((
                    a.ints("starts").ok_or("starts missing")?,
                    a.ints("ends").ok_or("ends missing")?,
                    a.ints("axes"),
                ))
            } else {
                None
            },
        }),
        "Gather" => Box::new(Gather {
            axis: a.i("axis", 0),
        }),
        "GatherElements" => Box::new(GatherElements {
            axis: a.i("axis", 0),
        }),
        "GatherND" => {
            if a.i("batch_dims", 0) != 0 {
                return Err("batch_dims != 0".into());
            }
            Box::new(GatherNd)
        }
        "ScatterElements" | "ScatterND" => {
            let reduction = match a.s("reduction").as_deref() {
                None | Some("none") => None,
                Some("add") => Some(BinOp::Add),
                Some("mul") => Some(BinOp::Mul),
                Some("max") => Some(BinOp::Max),
                Some("min") => Some(BinOp::Min),
                Some(r) => return Err(format!("reduction {r:?}")),
            };
            Box::new(Scatter {
                axis: if op == "ScatterND" {
                    None
                } else {
                    Some(a.i("axis", 0))
                },
                reduction,
            })
        }
        "Shape" => Box::new(Shape {
            start: a.i("start", 0),
            end: a.get("end").and_then(|v| v.i),
        }),
        "Size" => Box::new(Size),
        "Expand" => Box::new(Expand),
        "Tile" => Box::new(Tile),
        "Pad" => {
            let mode = match a.s("mode").as_deref() {
                None | Some("constant") => PadMode::Constant,
                Some("reflect") => PadMode::Reflect,
                Some("edge") => PadMode::Edge,
                Some("wrap") => PadMode::Wrap,
                Some(m) => return Err(format!("mode {m:?}")),
            };
            if opset < 11 {
                let pads = a
                    .ints("pads")
                    .or_else(|| a.ints("paddings"))
                    .ok_or("pads missing")?;
                Box::new(Pad {
                    mode,
                    pads: Some(pads),
                    value: a.f("value", 0.0),
                })
            } else {
                Box::new(Pad {
                    mode,
                    pads: None,
                    value: 0.0,
                })
            }
        }
        "ConstantOfShape" => {
            let value = match a.get("value").and_then(|v| v.t.as_ref()) {
                Some(t) => tensor_from_proto(t, resolver)?.reshaped(vec![])?,
                None => Tensor::f32(vec![], vec![0.0])?,
            };
            Box::new(ConstantOfShape { value })
        }
        "Range" => Box::new(Range),
        "DepthToSpace" | "SpaceToDepth" => Box::new(DepthSpace {
            block: a.i("blocksize", 0).max(0) as usize,
            to_depth: op == "SpaceToDepth",
            crd: a.s("mode").as_deref() == Some("CRD"),
        }),
        "Trilu" => Box::new(Trilu {
            upper: a.i("upper", 1) != 0,
        }),
        "NonZero" => Box::new(NonZero),
        "CumSum" | "CumProd" => Box::new(CumSum {
            exclusive: a.i("exclusive", 0) != 0,
            reverse: a.i("reverse", 0) != 0,
            prod: op == "CumProd",
        }),
        "HannWindow" | "HammingWindow" | "BlackmanWindow" => {
            Box::new(crate::kernels::shape::Window {
                kind: match op {
                    "HannWindow" => 0,
                    "HammingWindow" => 1,
                    _ => 2,
                },
                periodic: a.i("periodic", 1) != 0,
                dtype: if a.get("output_datatype").is_some() {
                    dtype_attr(a, "output_datatype")?
                } else {
                    DType::Float32
                },
            })
        }
        "Einsum" => Box::new(crate::kernels::einsum::Einsum {
            equation: a
                .s("equation")
                .ok_or("equation is missing")?
                .replace(' ', ""),
        }),
        "RotaryEmbedding" => Box::new(crate::kernels::attention::Rotary {
            interleaved: a.i("interleaved", 0) != 0,
            dim: a.i("rotary_embedding_dim", 0).max(0) as usize,
            num_heads: a.i("num_heads", 0).max(0) as usize,
        }),
        "GridSample" => {
            use crate::kernels::grid::{GridMode, GridPad, GridSample};
            Box::new(GridSample {
                mode: match a.s("mode").as_deref() {
                    None | Some("linear") | Some("bilinear") => GridMode::Linear,
                    Some("nearest") => GridMode::Nearest,
                    Some("cubic") | Some("bicubic") => GridMode::Cubic,
                    Some(m) => return Err(format!("mode {m:?}")),
                },
                padding: match a.s("padding_mode").as_deref() {
                    None | Some("zeros") => GridPad::Zeros,
                    Some("border") => GridPad::Border,
                    Some("reflection") => GridPad::Reflection,
                    Some(m) => return Err(format!("padding_mode {m:?}")),
                },
                align_corners: a.i("align_corners", 0) != 0,
            })
        }
        "GroupNormalization" => {
            if opset < 21 {
                return Err("GroupNormalization before opset 21 (per-group scale)".into());
            }
            Box::new(crate::kernels::nn::GroupNorm {
                groups: Some(a.i("num_groups", 0).max(0) as usize),
                epsilon: a.f("epsilon", 1e-5),
                axes: vec![],
            })
        }
        "MeanVarianceNormalization" => Box::new(crate::kernels::nn::GroupNorm {
            groups: None,
            epsilon: 1e-9,
            axes: a.ints("axes").unwrap_or_else(|| vec![0, 2, 3]),
        }),
        "Col2Im" => Box::new(crate::kernels::nn::Col2Im {
            strides: a.usizes("strides")?,
            dilations: a.usizes("dilations")?,
            pads: a.usizes("pads")?,
        }),
        "CenterCropPad" => Box::new(crate::kernels::shape::CenterCropPad {
            axes: a.ints("axes"),
        }),
        "ReverseSequence" => Box::new(crate::kernels::shape::ReverseSequence {
            batch_axis: a.i("batch_axis", 1),
            time_axis: a.i("time_axis", 0),
        }),
        "QuantizeLinear" | "DequantizeLinear" => {
            if a.get("precision").and_then(|v| v.i).is_some_and(|p| p != 0) {
                return Err("precision".into());
            }
            Box::new(crate::kernels::quant::Quant {
                quantize: op == "QuantizeLinear",
                axis: a.i("axis", 1),
                block_size: a.i("block_size", 0).max(0) as usize,
                out_dtype: match a.i("output_dtype", 0) {
                    0 => None,
                    _ => Some(dtype_attr(a, "output_dtype")?),
                },
            })
        }
        "ConvTranspose" => {
            let same_upper = match a.s("auto_pad").as_deref() {
                None | Some("NOTSET") | Some("") | Some("VALID") => None,
                Some("SAME_UPPER") => Some(true),
                Some("SAME_LOWER") => Some(false),
                Some(o) => return Err(format!("auto_pad {o:?}")),
            };
            Box::new(crate::kernels::nn::ConvTranspose {
                strides: a.usizes("strides")?,
                dilations: a.usizes("dilations")?,
                pads: if same_upper.is_some() {
                    None
                } else {
                    a.ints("pads").map(|_| a.usizes("pads")).transpose()?
                },
                same_upper,
                output_padding: a.usizes("output_padding")?,
                output_shape: a
                    .ints("output_shape")
                    .map(|_| a.usizes("output_shape"))
                    .transpose()?,
                group: a.i("group", 1).max(1) as usize,
            })
        }
        "Upsample" | "Resize" if op == "Upsample" || opset < 11 => {
            use crate::kernels::resize::{Coord, LegacyScales, Mode, Resize, Rounding};
            let mode = match a.s("mode").as_deref() {
                None | Some("nearest") => Mode::Nearest(Rounding::Legacy),
                Some("linear") => Mode::Linear,
                Some(m) => return Err(format!("mode {m:?}")),
            };
            let legacy = if op == "Upsample" && opset < 9 {
                if opset < 7 {
                    return Err("Upsample before opset 7 (height_scale/width_scale)".into());
                }
                let s: Vec<f64> = a
                    .get("scales")
                    .map(|v| v.floats.iter().map(|&f| f as f64).collect())
                    .ok_or("scales attribute is missing")?;
                if s.iter().any(|&v| v < 1.0 || v.is_nan()) {
                    return Err(format!("Upsample scales must be at least 1: {s:?}"));
                }
                LegacyScales::Fixed(s)
            } else {
                LegacyScales::Input {
                    upsample: op == "Upsample",
                }
            };
            Box::new(Resize {
                mode,
                coord: Coord::Asymmetric,
                exclude_outside: false,
                extrapolation: 0.0,
                axes: None,
                keep_aspect: 0,
                legacy: Some(legacy),
            })
        }
        "Resize" => {
            use crate::kernels::resize::{Coord, Mode, Resize, Rounding};
            if a.i("antialias", 0) != 0 {
                return Err("antialias = 1".into());
            }
            let mode = match a.s("mode").as_deref() {
                None | Some("nearest") => Mode::Nearest(match a.s("nearest_mode").as_deref() {
                    None | Some("round_prefer_floor") => Rounding::PreferFloor,
                    Some("round_prefer_ceil") => Rounding::PreferCeil,
                    Some("floor") => Rounding::Floor,
                    Some("ceil") => Rounding::Ceil,
                    Some(m) => return Err(format!("nearest_mode {m:?}")),
                }),
                Some("linear") => Mode::Linear,
                Some("cubic") => Mode::Cubic(a.f("cubic_coeff_a", -0.75)),
                Some(m) => return Err(format!("mode {m:?}")),
            };
            let coord = match a.s("coordinate_transformation_mode").as_deref() {
                None | Some("half_pixel") => Coord::HalfPixel,
                Some("half_pixel_symmetric") => Coord::HalfPixelSymmetric,
                Some("pytorch_half_pixel") => Coord::PytorchHalfPixel,
                Some("align_corners") => Coord::AlignCorners,
                Some("asymmetric") => Coord::Asymmetric,
                Some("tf_crop_and_resize") => Coord::TfCropAndResize,
                Some(m) => return Err(format!("coordinate_transformation_mode {m:?}")),
            };
            let keep_aspect = match a.s("keep_aspect_ratio_policy").as_deref() {
                None | Some("stretch") => 0,
                Some("not_larger") => 1,
                Some("not_smaller") => 2,
                Some(m) => return Err(format!("keep_aspect_ratio_policy {m:?}")),
            };
            Box::new(Resize {
                mode,
                coord,
                exclude_outside: a.i("exclude_outside", 0) != 0,
                extrapolation: a.f("extrapolation_value", 0.0),
                axes: a.ints("axes"),
                keep_aspect,
                legacy: None,
            })
        }
        "RNN" | "GRU" | "LSTM" => {
            use crate::kernels::rnn::{Act, Cell, Recurrent};
            let cell = match op {
                "RNN" => Cell::Rnn,
                "GRU" => Cell::Gru {
                    linear_before_reset: a.i("linear_before_reset", 0) != 0,
                },
                _ => Cell::Lstm,
            };
            if a.i("input_forget", 0) != 0 {
                return Err("input_forget = 1".into());
            }
            let (directions, reverse) = match a.s("direction").as_deref() {
                None | Some("forward") => (1, false),
                Some("reverse") => (1, true),
                Some("bidirectional") => (2, false),
                Some(d) => return Err(format!("direction {d:?}")),
            };
            let per = match cell {
                Cell::Rnn => vec!["Tanh"],
                Cell::Gru { .. } => vec!["Sigmoid", "Tanh"],
                Cell::Lstm => vec!["Sigmoid", "Tanh", "Tanh"],
            };
            let names: Vec<String> = match a.get("activations") {
                Some(v) if !v.strings.is_empty() => v
                    .strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
                _ => (0..directions)
                    .flat_map(|_| per.iter().map(|s| s.to_string()))
                    .collect(),
            };
            if names.len() != per.len() * directions {
                return Err(format!(
                    "{} activations for {directions} directions",
                    names.len()
                ));
            }
            let alphas = a
                .get("activation_alpha")
                .map(|v| v.floats.clone())
                .unwrap_or_default();
            let betas = a
                .get("activation_beta")
                .map(|v| v.floats.clone())
                .unwrap_or_default();
            let mut acts = Vec::new();
            for d in 0..directions {
                let mut v = Vec::new();
                for j in 0..per.len() {
                    let i = d * per.len() + j;
                    v.push(Act::parse(
                        &names[i],
                        alphas.get(i).map(|&x| x as f64),
                        betas.get(i).map(|&x| x as f64),
                    )?);
                }
                acts.push(v);
            }
            let hidden = a
                .get("hidden_size")
                .and_then(|v| v.i)
                .ok_or("hidden_size is missing")?;
            Box::new(Recurrent {
                cell,
                hidden: hidden.max(0) as usize,
                directions,
                reverse,
                acts,
                clip: a.get("clip").and_then(|v| v.f).map(f64::from),
                batch_major: a.i("layout", 0) != 0,
            })
        }
        "Attention" => {
            let heads = |n: &str| a.get(n).and_then(|v| v.i).map(|v| v.max(0) as usize);
            Box::new(crate::kernels::attention::Attention {
                scale: a.get("scale").and_then(|v| v.f).map(f64::from),
                is_causal: a.i("is_causal", 0) != 0,
                q_num_heads: heads("q_num_heads"),
                kv_num_heads: heads("kv_num_heads"),
                softcap: a.f("softcap", 0.0),
                qk_mode: a.i("qk_matmul_output_mode", 0),
                left_window: a.i("left_window_size", -1),
                right_window: a.i("right_window_size", -1),
            })
        }
        "RMSNormalization" => Box::new(Norm {
            epsilon: a.f("epsilon", 1e-5),
            axis: Some(a.i("axis", -1)),
            rms: true,
        }),
        "Swish" => un(UnOp::Swish(a.f("alpha", 1.0)))?,
        "BitwiseNot" => Box::new(crate::kernels::elementwise::BitNot),
        "LpNormalization" => {
            let p = a.i("p", 2);
            if p != 1 && p != 2 {
                return Err(format!("p = {p}"));
            }
            Box::new(crate::kernels::nn::LpNorm {
                axis: a.i("axis", -1),
                p,
            })
        }
        "EyeLike" => Box::new(crate::kernels::nn::EyeLike {
            k: a.i("k", 0),
            dtype: if a.get("dtype").is_some() {
                Some(dtype_attr(a, "dtype")?)
            } else {
                None
            },
        }),
        "Compress" => Box::new(crate::kernels::shape::Compress {
            axis: a.get("axis").and_then(|v| v.i),
        }),
        "NegativeLogLikelihoodLoss" | "SoftmaxCrossEntropyLoss" => {
            Box::new(crate::kernels::loss::Loss {
                reduction: match a.s("reduction").as_deref() {
                    None | Some("mean") => crate::kernels::loss::Reduction::Mean,
                    Some("sum") => crate::kernels::loss::Reduction::Sum,
                    Some("none") => crate::kernels::loss::Reduction::None,
                    Some(r) => return Err(format!("reduction {r:?}")),
                },
                ignore_index: a.get("ignore_index").and_then(|v| v.i),
                log_softmax: op == "SoftmaxCrossEntropyLoss",
            })
        }
        "NonMaxSuppression" => {
            let c = a.i("center_point_box", 0);
            if c != 0 && c != 1 {
                return Err(format!("center_point_box = {c}"));
            }
            Box::new(crate::kernels::detection::NonMaxSuppression {
                center_point_box: c == 1,
            })
        }
        "Unique" => Box::new(crate::kernels::unique::Unique {
            axis: a.get("axis").and_then(|v| v.i),
            sorted: a.i("sorted", 1) != 0,
        }),
        "DFT" => {
            let inverse = a.i("inverse", 0) != 0;
            let onesided = a.i("onesided", 0) != 0;
            Box::new(crate::kernels::spectral::Dft {
                axis: if opset < 20 {
                    Some(a.i("axis", 1))
                } else {
                    None
                },
                inverse,
                onesided,
            })
        }
        "STFT" => Box::new(crate::kernels::spectral::Stft {
            onesided: a.i("onesided", 1) != 0,
        }),
        "OneHot" => Box::new(OneHot {
            axis: a.i("axis", -1),
        }),
        other => return Err(format!("no kernel for op {other:?}")),
    })
}

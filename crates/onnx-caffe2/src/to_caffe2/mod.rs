//! ONNX -> Caffe2: the `init_net` + `predict_net` pair that
//! `Caffe2Backend.onnx_graph_to_caffe2_net` makes, without Python.
//!
//! Order of work, as the backend's: the graph is split into init nodes
//! (computed from initializers and constants only) and predict nodes (those
//! that depend on a data input); the init net gets one fill op per
//! initializer, in initializer order, then the converted init nodes; the
//! predict net gets the converted predict nodes. Dummy names
//! (`OC2_DUMMY_<n>`) are numbered across both nets, skipping every name the
//! graph uses. Both nets carry the device option `{device_type: 0,
//! device_id: 0}` (CPU); ops carry none.

mod control;
mod fill;
mod ops;
mod rnn;

use crate::error::{ConvertError, UnsupportedNode, invalid};
use netport_caffe2::Caffe2Model;
use netport_caffe2::proto::{DeviceOption, NetDef, OperatorDef};
use netport_onnx::proto::{ModelProto, NodeProto, TensorProto};
use netport_onnx::shapes::{TensorType, infer_shapes};
use netport_onnx::{Dim, ExternalDataResolver};
use std::collections::{BTreeMap, HashMap, HashSet};

pub use fill::{Values, fill_type, tensor_values};
pub use ops::{OP_TABLE, in_table};

/// The oldest default-domain opset the converter accepts.
pub const OLDEST_OPSET: i64 = 7;
/// The newest default-domain opset the op table covers (the ops it converts
/// changed after 21 only by accepting more element types).
pub const NEWEST_OPSET: i64 = 28;

/// Options of [`onnx_to_caffe2`].
#[derive(Debug, Default)]
pub struct ToCaffe2Options {
    /// Fixed shapes for graph inputs (`input=1,3,224,224`), which replace the
    /// declared ones for shape inference (folding shape subgraphs, checking
    /// Gemm's bias for FC).
    pub input_shapes: Vec<(String, Vec<i64>)>,
    /// Resolves external tensor data (the model's folder).
    pub resolver: Option<ExternalDataResolver>,
}

/// What the node converters see of the model.
pub(crate) struct Cx<'m> {
    /// The top graph.
    graph: &'m netport_onnx::proto::GraphProto,
    resolver: Option<&'m ExternalDataResolver>,
    /// The node that produces each value.
    producers: HashMap<String, &'m NodeProto>,
    /// Shapes and types from shape inference.
    values: BTreeMap<String, TensorType>,
    /// Propagated contents of small int64 tensors (shape vectors).
    data: BTreeMap<String, Vec<Dim>>,
    /// Initializers and `Constant` outputs, by name.
    constants: HashMap<String, &'m TensorProto>,
    /// Values that depend on a data input.
    predict: HashSet<String>,
    /// Graph inputs whose type is not a tensor (sequences, optionals, maps).
    non_tensor: HashSet<String>,
    used: HashSet<String>,
    counter: u64,
}

impl<'m> Cx<'m> {
    /// The next `OC2_DUMMY_<n>` not used by the graph.
    fn dummy(&mut self) -> String {
        loop {
            let name = format!("OC2_DUMMY_{}", self.counter);
            self.counter += 1;
            if self.used.insert(name.clone()) {
                return name;
            }
        }
    }

    /// The element type code of a value, 0 when unknown.
    fn elem_type(&self, name: &str) -> i32 {
        if let Some(t) = self.constants.get(name) {
            return t.data_type();
        }
        self.values.get(name).map_or(0, |t| t.elem_type)
    }

    fn is_constant(&self, name: Option<&str>) -> bool {
        name.is_some_and(|n| self.constants.contains_key(n))
    }

    fn is_predict_value(&self, name: Option<&str>) -> bool {
        name.is_some_and(|n| self.predict.contains(n))
    }

    /// The dims (each known or not), when the rank is known.
    fn shape_of(&self, name: Option<&str>) -> Option<Vec<Option<i64>>> {
        let name = name?;
        if let Some(t) = self.constants.get(name) {
            return Some(t.dims.iter().map(|&d| Some(d)).collect());
        }
        let shape = self.values.get(name)?.shape.as_ref()?;
        Some(shape.iter().map(Dim::value).collect())
    }

    fn fixed_shape(&self, name: Option<&str>) -> Option<Vec<i64>> {
        self.shape_of(name)?.into_iter().collect()
    }

    fn rank(&self, name: Option<&str>) -> Option<usize> {
        self.shape_of(name).map(|s| s.len())
    }

    /// A constant (or shape-inferred) integer tensor's elements.
    fn const_ints(&self, name: Option<&str>) -> Option<Vec<i64>> {
        self.fold_ints(name?, 0)
    }

    /// The elements of an integer value known before run time: a constant,
    /// a shape vector from shape inference, or a small subgraph over them
    /// (Shape, Gather, Unsqueeze/Squeeze, Concat, Cast, Identity, Slice and
    /// integer Add/Sub/Mul/Div), as exporters write for `x.size(1) // 2`.
    fn fold_ints(&self, name: &str, depth: usize) -> Option<Vec<i64>> {
        if let Some(t) = self.constants.get(name) {
            return match tensor_values(t, self.resolver).ok()? {
                Values::Ints(v) => Some(v),
                _ => None,
            };
        }
        if let Some(d) = self.data.get(name)
            && let Some(v) = d.iter().map(Dim::value).collect::<Option<Vec<i64>>>()
        {
            return Some(v);
        }
        if depth > 64 {
            return None;
        }
        let node = self.producers.get(name)?;
        if !node.domain().is_empty() {
            return None;
        }
        let input = |i: usize| {
            node.input
                .get(i)
                .filter(|s| !s.is_empty())
                .and_then(|s| self.fold_ints(s, depth + 1))
        };
        let attr_i = |n: &str| node.attribute.iter().find(|a| a.name() == n).map(|a| a.i());
        match node.op_type() {
            "Shape" => {
                let s = self.fixed_shape(node.input.first().map(String::as_str))?;
                let r = s.len() as i64;
                let norm = |v: i64| if v < 0 { (v + r).max(0) } else { v.min(r) } as usize;
                let start = norm(attr_i("start").unwrap_or(0));
                let end = norm(attr_i("end").unwrap_or(r));
                Some(s.get(start..end.max(start))?.to_vec())
            }
            "Identity" | "Unsqueeze" | "Squeeze" | "Cast" => {
                if node.op_type() == "Cast" && !matches!(attr_i("to"), Some(6 | 7)) {
                    return None;
                }
                input(0)
            }
            "Gather" => {
                if attr_i("axis").unwrap_or(0) != 0 {
                    return None;
                }
                let data = input(0)?;
                let n = data.len() as i64;
                input(1)?
                    .into_iter()
                    .map(|i| {
                        data.get(usize::try_from(if i < 0 { i + n } else { i }).ok()?)
                            .copied()
                    })
                    .collect()
            }
            "Concat" => {
                let mut out = Vec::new();
                for i in 0..node.input.len() {
                    out.extend(input(i)?);
                }
                Some(out)
            }
            "Add" | "Sub" | "Mul" | "Div" => {
                let (a, b) = (input(0)?, input(1)?);
                let n = a.len().max(b.len());
                if !(a.len() == n || a.len() == 1) || !(b.len() == n || b.len() == 1) {
                    return None;
                }
                let at = |v: &[i64], i: usize| if v.len() == 1 { v[0] } else { v[i] };
                (0..n)
                    .map(|i| {
                        let (x, y) = (at(&a, i), at(&b, i));
                        match node.op_type() {
                            "Add" => x.checked_add(y),
                            "Sub" => x.checked_sub(y),
                            "Mul" => x.checked_mul(y),
                            // ONNX integer Div truncates, as Rust's does.
                            _ => x.checked_div(y),
                        }
                    })
                    .collect()
            }
            _ => None,
        }
    }

    /// A constant tensor's elements as f32.
    fn const_floats(&self, name: Option<&str>) -> Option<Vec<f32>> {
        let t = self.constants.get(name?)?;
        match tensor_values(t, self.resolver).ok()? {
            Values::Floats(v) => Some(v),
            Values::Ints(v) => Some(v.into_iter().map(|x| x as f32).collect()),
            Values::Strings(_) => None,
        }
    }
}

/// The ops the backend's `split_init` keeps in the predict net whatever
/// their inputs (random ones, and control flow, whose subgraphs read more
/// than the node's inputs).
fn is_impure(op: &str) -> bool {
    matches!(
        op,
        "RandomNormal"
            | "RandomNormalLike"
            | "RandomUniform"
            | "RandomUniformLike"
            | "Multinomial"
            | "If"
            | "Loop"
            | "Scan"
    )
}

/// True when a value is a tensor (or untyped): not a sequence, optional or
/// map, which Caffe2 has no blobs for.
fn is_tensor_value(v: &netport_onnx::proto::ValueInfoProto) -> bool {
    matches!(
        v.r#type.as_ref().and_then(|t| t.value.as_ref()),
        Some(netport_onnx::proto::type_proto::Value::TensorType(_)) | None
    )
}

/// The model's default-domain opset.
pub fn model_opset(model: &ModelProto) -> Option<i64> {
    model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain(), "" | "ai.onnx"))
        .map(|o| o.version())
}

/// Checks what a converter relies on: every value produced once, every
/// input produced before its use (no cycles).
fn check_graph(model: &ModelProto) -> Result<(), ConvertError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| invalid("the model has no graph"))?;
    let mut defined: HashSet<&str> = HashSet::new();
    let mut init_names = HashSet::new();
    for t in &graph.initializer {
        if !init_names.insert(t.name()) {
            return Err(invalid(format!(
                "initializer '{}' is defined twice",
                t.name()
            )));
        }
        defined.insert(t.name());
    }
    let mut inputs = HashSet::new();
    for i in &graph.input {
        if !inputs.insert(i.name()) {
            return Err(invalid(format!(
                "graph input '{}' is listed twice",
                i.name()
            )));
        }
        defined.insert(i.name());
    }
    let produced_later: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(String::as_str))
        .collect();
    for (index, node) in graph.node.iter().enumerate() {
        for i in node.input.iter().filter(|i| !i.is_empty()) {
            if !defined.contains(i.as_str()) {
                let why = if produced_later.contains(i.as_str()) {
                    "is produced by a later node (a cycle, or nodes out of order)"
                } else {
                    "is produced by no node, input or initializer"
                };
                return Err(invalid(format!(
                    "node {index} ('{}', {}): input '{i}' {why}",
                    node.name(),
                    node.op_type()
                )));
            }
        }
        control::check_references(node, &defined)?;
        for o in node.output.iter().filter(|o| !o.is_empty()) {
            if !defined.insert(o.as_str()) {
                return Err(invalid(format!(
                    "node {index} ('{}', {}): output '{o}' is already produced by an input, \
                     an initializer or an earlier node",
                    node.name(),
                    node.op_type()
                )));
            }
        }
    }
    for o in &graph.output {
        if !defined.contains(o.name()) {
            return Err(invalid(format!(
                "graph output '{}' is never produced",
                o.name()
            )));
        }
    }
    Ok(())
}

/// The model with `input_shapes` written into its graph inputs.
fn with_input_shapes(
    model: &ModelProto,
    shapes: &[(String, Vec<i64>)],
) -> Result<ModelProto, ConvertError> {
    use netport_onnx::proto::type_proto::{Tensor, Value};
    use netport_onnx::proto::{TensorShapeProto, TypeProto};
    let mut m = model.clone();
    let graph = m
        .graph
        .as_mut()
        .ok_or_else(|| invalid("the model has no graph"))?;
    for (name, dims) in shapes {
        let input = graph
            .input
            .iter_mut()
            .find(|i| i.name() == name)
            .ok_or_else(|| invalid(format!("--input-shape: the model has no input '{name}'")))?;
        let elem_type = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(Value::TensorType(t)) => t.elem_type(),
            _ => 1,
        };
        input.r#type = Some(TypeProto {
            value: Some(Value::TensorType(Tensor {
                elem_type: Some(elem_type),
                shape: Some(TensorShapeProto {
                    dim: dims.iter().map(|&d| Dim::Fixed(d).to_proto()).collect(),
                }),
            })),
            ..Default::default()
        });
    }
    Ok(m)
}

/// Result of converting one node.
struct Converted {
    ops: Vec<OperatorDef>,
    /// Ops for the init net whichever net the node is in (RNN weights).
    init_ops: Vec<OperatorDef>,
    /// Names listed as the predict net's external inputs for this node
    /// (the backend's `interface_blobs`, RNN nodes only).
    interface: Vec<String>,
    /// The node's outputs.
    outputs: Vec<String>,
    /// What it reads: its ops' inputs, or the node's when it failed.
    uses: Vec<String>,
    unsupported: Option<UnsupportedNode>,
}

/// Converts `model` to the Caffe2 pair. Nodes with no Caffe2 equivalent are
/// all listed in one [`ConvertError::Unsupported`]; broken graphs (names
/// produced twice, cycles, fills that disagree with their shape) give
/// [`ConvertError::Invalid`].
pub fn onnx_to_caffe2(
    model: &ModelProto,
    options: &ToCaffe2Options,
) -> Result<Caffe2Model, ConvertError> {
    convert(model, options, true)
}

/// The conversion; with `fills` false the init net lacks the initializers'
/// fill ops (which [`write_caffe2_dir`] streams to the file one at a time).
fn convert(
    model: &ModelProto,
    options: &ToCaffe2Options,
    fills: bool,
) -> Result<Caffe2Model, ConvertError> {
    check_graph(model)?;
    let opset = model_opset(model).ok_or_else(|| {
        invalid("the model does not declare an ONNX (default domain) operator set version")
    })?;
    let model = &eliminate_nops(model, opset, options.resolver.as_ref());
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| invalid("the model has no graph"))?;
    if !(OLDEST_OPSET..=NEWEST_OPSET).contains(&opset) {
        return Err(ConvertError::Unsupported {
            target: "Caffe2",
            nodes: vec![UnsupportedNode {
                name: "(model)".into(),
                op: "opset_import".into(),
                opset,
                reason: format!(
                    "opset {opset} is outside the {OLDEST_OPSET}..={NEWEST_OPSET} the op table covers"
                ),
            }],
        });
    }
    let shaped = with_input_shapes(model, &options.input_shapes)?;
    let inferred = infer_shapes(&shaped);

    let initializers: HashSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
    let mut constants: HashMap<String, &TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name().to_string(), t))
        .collect();
    for node in &graph.node {
        if node.op_type() == "Constant"
            && node.domain().is_empty()
            && let (Some(out), Some(t)) = (
                node.output.first(),
                node.attribute
                    .iter()
                    .find(|a| a.name() == "value")
                    .and_then(|a| a.t.as_ref()),
            )
        {
            constants.insert(out.clone(), t);
        }
    }
    // Data inputs and everything computed from them are "predict" values.
    let mut predict: HashSet<String> = graph
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name()))
        .map(|i| i.name().to_string())
        .collect();
    let data_inputs = predict.clone();
    let mut is_predict_node = Vec::with_capacity(graph.node.len());
    for node in &graph.node {
        let p =
            is_impure(node.op_type()) || node.input.iter().any(|i| predict.contains(i.as_str()));
        if p {
            predict.extend(node.output.iter().cloned());
        }
        is_predict_node.push(p);
    }
    let mut used: HashSet<String> = HashSet::new();
    for i in &graph.input {
        used.insert(i.name().to_string());
    }
    for o in &graph.output {
        used.insert(o.name().to_string());
    }
    for n in &graph.node {
        used.extend(n.input.iter().cloned());
        used.extend(n.output.iter().cloned());
    }
    control::subgraph_names(graph, &mut used);
    let non_tensor: HashSet<String> = graph
        .input
        .iter()
        .filter(|i| !is_tensor_value(i))
        .map(|i| i.name().to_string())
        .collect();
    let producers: HashMap<String, &NodeProto> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(move |o| (o.clone(), n)))
        .collect();
    let mut cx = Cx {
        graph,
        producers,
        non_tensor,
        resolver: options.resolver.as_ref(),
        values: inferred.values,
        data: inferred.data,
        constants,
        predict,
        used,
        counter: 0,
    };

    // Init nodes first, then predict nodes: the order the dummy counter sees.
    let order: Vec<usize> = (0..graph.node.len())
        .filter(|&i| !is_predict_node[i])
        .chain((0..graph.node.len()).filter(|&i| is_predict_node[i]))
        .collect();
    let mut converted: Vec<Option<Converted>> = (0..graph.node.len()).map(|_| None).collect();
    for &i in &order {
        let node = &graph.node[i];
        let result = if rnn::handles(node) {
            rnn::convert(&mut cx, node, graph, opset).map(|r| (r.ops, r.init_ops, r.interface))
        } else {
            ops::convert(&mut cx, node, opset).map(|ops| (ops, Vec::new(), Vec::new()))
        };
        let c = match result {
            Ok((ops, init_ops, interface)) => Converted {
                uses: ops
                    .iter()
                    .chain(&init_ops)
                    .flat_map(control::reads)
                    .collect(),
                ops,
                init_ops,
                interface,
                outputs: node.output.clone(),
                unsupported: None,
            },
            Err(ops::Fail::Unsupported(reason)) => Converted {
                ops: Vec::new(),
                init_ops: Vec::new(),
                interface: Vec::new(),
                outputs: node.output.clone(),
                uses: node.input.clone(),
                unsupported: Some(unsupported(node, opset, reason)),
            },
            Err(ops::Fail::Invalid(e)) => return Err(e),
        };
        converted[i] = Some(c);
    }

    // Liveness: nodes whose outputs nothing reads (shape subgraphs folded
    // into arguments, dead code) are left out, and so are not reported.
    let mut needed: HashSet<String> = graph.output.iter().map(|o| o.name().to_string()).collect();
    let mut live = vec![false; graph.node.len()];
    for i in (0..graph.node.len()).rev() {
        let Some(c) = &converted[i] else { continue };
        if c.outputs.iter().any(|o| needed.contains(o)) {
            live[i] = true;
            needed.extend(c.uses.iter().filter(|u| !u.is_empty()).cloned());
        }
    }
    let unsupported_nodes: Vec<UnsupportedNode> = (0..graph.node.len())
        .filter(|&i| live[i])
        .filter_map(|i| converted[i].as_ref().and_then(|c| c.unsupported.clone()))
        .collect();
    if !unsupported_nodes.is_empty() {
        return Err(ConvertError::Unsupported {
            target: "Caffe2",
            nodes: unsupported_nodes,
        });
    }

    let device = DeviceOption {
        device_type: Some(0),
        device_id: Some(0),
        ..Default::default()
    };
    let graph_name = graph.name();
    let mut rnn_made: HashSet<String> = HashSet::new();
    let mut rnn_reads: Vec<String> = Vec::new();
    let mut interface_blobs: Vec<String> = Vec::new();
    let mut init_net = NetDef {
        name: Some(format!("{graph_name}_init")),
        device_option: Some(device.clone()),
        ..Default::default()
    };
    let mut predict_net = NetDef {
        name: Some(format!("{graph_name}_predict")),
        device_option: Some(device),
        ..Default::default()
    };
    if fills {
        for t in &graph.initializer {
            init_net
                .op
                .push(fill::fill_op(t, t.name(), options.resolver.as_ref())?);
        }
    }
    for &i in &order {
        if !live[i] {
            continue;
        }
        let Some(c) = converted[i].take() else {
            continue;
        };
        // Names the RNN converter made in the init net are listed through
        // its interface, the ONNX inputs it read in their stead.
        rnn_made.extend(c.init_ops.iter().flat_map(|o| o.output.iter().cloned()));
        if !c.interface.is_empty() {
            rnn_reads.extend(
                graph.node[i]
                    .input
                    .iter()
                    .filter(|n| !n.is_empty() && !cx.predict.contains(n.as_str()))
                    .cloned(),
            );
        }
        interface_blobs.extend(c.interface);
        init_net.op.extend(c.init_ops);
        if is_predict_node[i] {
            predict_net.op.extend(c.ops);
        } else {
            init_net.op.extend(c.ops);
        }
    }

    // External inputs of the predict net: the graph inputs it reads, in
    // graph order, then every other value it reads and does not compute, in
    // order of first use. The init net exports those that are not data.
    let mut produced: HashSet<&str> = HashSet::new();
    let mut reads: Vec<&str> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let op_reads: Vec<Vec<String>> = predict_net.op.iter().map(control::reads).collect();
    for (op, op_reads) in predict_net.op.iter().zip(&op_reads) {
        for i in op_reads {
            if !produced.contains(i.as_str())
                && !rnn_made.contains(i.as_str())
                && seen.insert(i.as_str())
            {
                reads.push(i);
            }
        }
        produced.extend(op.output.iter().map(String::as_str));
    }
    for r in &rnn_reads {
        if !produced.contains(r.as_str()) && seen.insert(r.as_str()) {
            reads.push(r);
        }
    }
    let graph_outputs: Vec<String> = graph.output.iter().map(|o| o.name().to_string()).collect();
    // A graph output that the predict net does not compute comes from the
    // init net (or is an input).
    for o in &graph_outputs {
        if !produced.contains(o.as_str()) && seen.insert(o.as_str()) {
            reads.push(o);
        }
    }
    let graph_input_names: Vec<&str> = graph.input.iter().map(|i| i.name()).collect();
    let mut ext_in: Vec<String> = graph_input_names
        .iter()
        .filter(|n| seen.contains(**n))
        .map(|n| n.to_string())
        .collect();
    let in_graph_inputs: HashSet<&str> = graph_input_names.iter().copied().collect();
    ext_in.extend(
        reads
            .iter()
            .filter(|r| !in_graph_inputs.contains(**r))
            .map(|r| r.to_string()),
    );
    let interface: Vec<String> = ext_in
        .iter()
        .filter(|n| !data_inputs.contains(n.as_str()))
        .cloned()
        .collect();
    predict_net.external_input = interface_blobs;
    predict_net.external_input.extend(ext_in);
    predict_net.external_output = graph_outputs;
    init_net.external_input = graph_input_names
        .iter()
        .filter(|n| initializers.contains(**n))
        .map(|n| n.to_string())
        .chain(
            graph
                .initializer
                .iter()
                .filter(|t| !in_graph_inputs.contains(t.name()))
                .map(|t| t.name().to_string()),
        )
        .collect();
    init_net.external_output = interface;
    Ok(Caffe2Model {
        init_net,
        predict_net,
    })
}

/// The backend's optimizer passes `eliminate_nop_pad` and
/// `eliminate_nop_transpose`: a Pad whose pads are all 0 and a Transpose
/// with the identity permutation are removed, their readers reading the
/// node's input instead (unless the output is a graph output).
fn eliminate_nops(
    model: &ModelProto,
    opset: i64,
    resolver: Option<&ExternalDataResolver>,
) -> ModelProto {
    let mut m = model.clone();
    let Some(graph) = m.graph.as_mut() else {
        return m;
    };
    let outputs: HashSet<String> = graph.output.iter().map(|o| o.name().to_string()).collect();
    let consts: HashMap<String, TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name().to_string(), t.clone()))
        .collect();
    let mut rename: HashMap<String, String> = HashMap::new();
    let mut kept = Vec::with_capacity(graph.node.len());
    for mut node in std::mem::take(&mut graph.node) {
        for i in &mut node.input {
            if let Some(r) = rename.get(i.as_str()) {
                *i = r.clone();
            }
        }
        let attr = |name: &str| node.attribute.iter().find(|a| a.name() == name);
        let nop = node.domain().is_empty()
            && !node.input.is_empty()
            && node.output.len() == 1
            && !outputs.contains(&node.output[0])
            && match node.op_type() {
                "Pad" => {
                    let pads = if opset >= 11 {
                        node.input.get(1).and_then(|p| consts.get(p)).and_then(|t| {
                            match tensor_values(t, resolver).ok()? {
                                Values::Ints(v) => Some(v),
                                _ => None,
                            }
                        })
                    } else {
                        attr("pads").map(|a| a.ints.clone())
                    };
                    pads.is_some_and(|p| p.iter().all(|&x| x == 0))
                }
                "Transpose" => attr("perm")
                    .is_some_and(|a| a.ints.iter().enumerate().all(|(i, &p)| p == i as i64)),
                _ => false,
            };
        if nop {
            rename.insert(node.output[0].clone(), node.input[0].clone());
        } else {
            kept.push(node);
        }
    }
    graph.node = kept;
    m
}

/// What [`write_caffe2_dir`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The files, in order: `init_net.pb`, `predict_net.pb`, then the
    /// `.pbtxt` forms when asked for.
    pub files: Vec<std::path::PathBuf>,
    /// Ops of the init net (fills included).
    pub init_ops: usize,
    /// The predict net (complete; it holds no tensor data).
    pub predict_net: NetDef,
    /// The predict net's inputs that the init net does not create.
    pub data_inputs: Vec<String>,
    /// Bytes written.
    pub bytes: u64,
}

/// Converts `model` and writes `dir/init_net.pb` and `dir/predict_net.pb`
/// (and with `text` their `.pbtxt` forms), renamed into place only when
/// all are complete: nothing is written when the conversion fails. The init
/// net is streamed: each initializer's fill op is made, encoded and written
/// before the next, so memory stays near the largest tensor rather than the
/// model. The bytes equal [`netport_caffe2::encode_netdef`] of the whole
/// net. Its text form is printed from that binary file, mapped, one op and
/// one piece of floats at a time ([`netport_caffe2::write_netdef_text`]).
pub fn write_caffe2_dir(
    model: &ModelProto,
    options: &ToCaffe2Options,
    dir: &std::path::Path,
    text: bool,
) -> Result<Written, ConvertError> {
    let created = !dir.exists();
    let result = write_dir(model, options, dir, text);
    if result.is_err() && created {
        // Only removes the folder if it is still empty.
        let _ = std::fs::remove_dir(dir);
    }
    result
}

fn write_dir(
    model: &ModelProto,
    options: &ToCaffe2Options,
    dir: &std::path::Path,
    text: bool,
) -> Result<Written, ConvertError> {
    use prost::Message;
    use std::io::Write;
    let pair = convert(model, options, false)?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| invalid("the model has no graph"))?;
    std::fs::create_dir_all(dir).map_err(|e| netport_caffe2::Caffe2Error::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let init_path = dir.join("init_net.pb");
    let io = |e: std::io::Error| {
        ConvertError::Caffe2(netport_caffe2::Caffe2Error::Io {
            path: init_path.clone(),
            source: e,
        })
    };
    let mut file =
        netport_io::AtomicFile::create(&init_path).map_err(netport_caffe2::Caffe2Error::from)?;
    let init_temp = file.temp_path().to_path_buf();
    let head = NetDef {
        name: pair.init_net.name.clone(),
        ..Default::default()
    };
    let tail = NetDef {
        name: None,
        op: Vec::new(),
        ..pair.init_net.clone()
    };
    let mut size: u64 = 0;
    let mut buf = Vec::new();
    let mut put = |file: &mut netport_io::AtomicFile, bytes: &[u8]| -> Result<(), ConvertError> {
        size += bytes.len() as u64;
        if size > netport_caffe2::MAX_PROTOBUF_BYTES {
            return Err(ConvertError::Caffe2(
                netport_caffe2::Caffe2Error::TooLarge {
                    what: init_path.display().to_string(),
                    size,
                },
            ));
        }
        file.writer().write_all(bytes).map_err(io)
    };
    put(&mut file, &head.encode_to_vec())?;
    let mut init_ops = 0;
    for t in &graph.initializer {
        // FLOAT tensors (the weights) go straight from their bytes to the
        // file; other types through a decoded op.
        let streamed = fill::write_float_fill(t, t.name(), options.resolver.as_ref(), &mut |b| {
            put(&mut file, b)
        })?;
        if streamed.is_none() {
            let op = fill::fill_op(t, t.name(), options.resolver.as_ref())?;
            buf.clear();
            prost::encoding::message::encode(2, &op, &mut buf);
            put(&mut file, &buf)?;
        }
        init_ops += 1;
    }
    for op in &pair.init_net.op {
        buf.clear();
        prost::encoding::message::encode(2, op, &mut buf);
        put(&mut file, &buf)?;
        init_ops += 1;
    }
    put(&mut file, &tail.encode_to_vec())?;
    let init_done = file.finish().map_err(netport_caffe2::Caffe2Error::from)?;
    let predict_path = dir.join("predict_net.pb");
    let predict_bytes = netport_caffe2::encode_netdef(&pair.predict_net)?;
    let mut pfile =
        netport_io::AtomicFile::create(&predict_path).map_err(netport_caffe2::Caffe2Error::from)?;
    pfile
        .writer()
        .write_all(&predict_bytes)
        .map_err(|e| netport_caffe2::Caffe2Error::Io {
            path: predict_path.clone(),
            source: e,
        })?;
    let predict_done = pfile.finish().map_err(netport_caffe2::Caffe2Error::from)?;
    let mut done = vec![init_done, predict_done];
    let mut files = vec![init_path, predict_path];
    if text {
        // The text forms are printed from the binary init net just written
        // (still in its temporary file), one op and one piece of floats at a
        // time, so memory stays flat whatever the weights' size.
        let init_net = netport_caffe2::floats::load_netdef_lazy(&init_temp)?;
        let predict_net = netport_caffe2::LazyNetDef {
            net: pair.predict_net.clone(),
            floats: Vec::new(),
        };
        for (net, name) in [(&init_net, "init_net"), (&predict_net, "predict_net")] {
            let path = dir.join(format!("{name}.pbtxt"));
            let mut tfile =
                netport_io::AtomicFile::create(&path).map_err(netport_caffe2::Caffe2Error::from)?;
            netport_caffe2::write_netdef_text(net, tfile.writer(), &path)?;
            done.push(tfile.finish().map_err(netport_caffe2::Caffe2Error::from)?);
            files.push(path);
        }
    }
    let bytes = done.iter().map(netport_io::Finished::len).sum();
    for finished in done {
        finished
            .commit()
            .map_err(netport_caffe2::Caffe2Error::from)?;
    }
    Ok(Written {
        files,
        init_ops,
        data_inputs: data_inputs(&pair.init_net, &pair.predict_net)
            .into_iter()
            .filter(|i| !graph.initializer.iter().any(|t| t.name() == i))
            .collect(),
        predict_net: pair.predict_net,
        bytes,
    })
}

/// The predict net's external inputs that the init net's ops do not create.
fn data_inputs(init: &NetDef, predict: &NetDef) -> Vec<String> {
    let made: HashSet<&str> = init
        .op
        .iter()
        .chain(&predict.op)
        .flat_map(|o| o.output.iter().map(String::as_str))
        .collect();
    let mut seen = HashSet::new();
    predict
        .external_input
        .iter()
        .filter(|i| !made.contains(i.as_str()) && seen.insert(i.as_str()))
        .cloned()
        .collect()
}

fn unsupported(node: &NodeProto, opset: i64, reason: String) -> UnsupportedNode {
    let op = if node.domain().is_empty() || node.domain() == "ai.onnx" {
        node.op_type().to_string()
    } else {
        format!("{}::{}", node.domain(), node.op_type())
    };
    UnsupportedNode {
        name: node.name().to_string(),
        op,
        opset,
        reason,
    }
}

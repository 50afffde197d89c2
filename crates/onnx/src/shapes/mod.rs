//! Type and shape inference over an ONNX graph with symbolic dims, following
//! `onnx.shape_inference.infer_shapes(model, strict_mode=True,
//! data_prop=True)`: one rule per op (files per op family, chosen by op and
//! opset version in [`registry`]), inferred types merged with the declared
//! ones (a clash is a [`Diagnostic`]), and small int64 tensors propagated
//! through shape subgraphs (Shape -> Gather -> Unsqueeze -> Concat -> Reshape).
//! Ops without a rule leave their outputs unknown and are listed.

mod activation;
mod attention;
mod constraints;
mod control;
mod conv;
mod elementwise;
mod function;
mod index;
mod matmul;
mod norm;
mod reduce;
pub mod registry;
mod rnn;
mod shape_ops;
mod symbols;
mod training;

use crate::check::{Diagnostic, Rule, Severity};
use crate::proto::tensor_proto::DataType;
use crate::proto::tensor_shape_proto::dimension::Value as DimValue;
use crate::proto::type_proto::Value as TypeValue;
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, TypeProto, ValueInfoProto,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

pub use crate::Dim;

/// The type of a tensor value: element type code (`TensorProto.DataType`,
/// 0 when unknown) and shape (`None`: rank unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorType {
    /// The element type code; 0 when unknown.
    pub elem_type: i32,
    /// The dims, or `None` when even the rank is unknown.
    pub shape: Option<Vec<Dim>>,
}

impl TensorType {
    /// A tensor of `elem_type` with the given dims.
    pub fn new(elem_type: i32, shape: Vec<Dim>) -> Self {
        TensorType {
            elem_type,
            shape: Some(shape),
        }
    }

    /// A tensor of `elem_type` whose rank is unknown.
    pub fn unranked(elem_type: i32) -> Self {
        TensorType {
            elem_type,
            shape: None,
        }
    }

    /// The rank, when known.
    pub fn rank(&self) -> Option<usize> {
        self.shape.as_ref().map(Vec::len)
    }
}

/// What inference found for a model's main graph.
#[derive(Debug, Clone, Default)]
pub struct Inferred {
    /// Every tensor value with a known type: graph inputs, initializers,
    /// node outputs and graph outputs, by name.
    pub values: BTreeMap<String, TensorType>,
    /// `domain::op_type` (domain empty for ai.onnx) of the nodes no rule
    /// covers; their outputs stay unknown.
    pub unsupported: BTreeSet<String>,
    /// The propagated contents of small int64 tensors (shape vectors), as
    /// onnx's `data_prop` computes them.
    pub data: BTreeMap<String, Vec<Dim>>,
    /// Type clashes and inferred shapes that contradict declared ones.
    pub diagnostics: Vec<Diagnostic>,
}

/// Infers the type and shape of every value of the model's main graph.
pub fn infer_shapes(model: &ModelProto) -> Inferred {
    let mut out = Inferred::default();
    let Some(graph) = model.graph.as_ref() else {
        return out;
    };
    let mut opsets = HashMap::new();
    for o in &model.opset_import {
        let d = crate::check::canonical_domain(o.domain());
        opsets.insert(d.to_string(), o.version());
    }
    let mut st = State {
        outer: None,
        shadowed: HashSet::new(),
        values: BTreeMap::new(),
        data: HashMap::new(),
        consts: HashSet::new(),
        floats: HashMap::new(),
        declared: HashMap::new(),
        produced: HashSet::new(),
        location: "graph".to_string(),
        ir_version: model.ir_version(),
        depth: 0,
        functions: std::rc::Rc::new(
            model
                .functions
                .iter()
                .map(|f| {
                    let key = (
                        f.domain().to_string(),
                        f.name().to_string(),
                        f.overload().to_string(),
                    );
                    (key, f.clone())
                })
                .collect(),
        ),
        calls: Vec::new(),
        symbols: std::rc::Rc::new(std::cell::RefCell::new(symbols::Symbols::of(graph))),
        out: &mut out,
    };
    st.seed(graph);
    for (index, node) in graph.node.iter().enumerate() {
        st.node(index, node, &opsets);
    }
    let mut values = std::mem::take(&mut st.values);
    let mut data = std::mem::take(&mut st.data);
    let symbols = std::rc::Rc::clone(&st.symbols);
    let symbols = symbols.borrow();
    for d in values
        .values_mut()
        .filter_map(|t| t.shape.as_mut())
        .flatten()
        .chain(data.values_mut().flatten())
    {
        symbols.forget(d);
    }
    out.values = values;
    out.data = data.into_iter().collect();
    out
}

/// Reads a `TypeProto` as a tensor type; `None` for other kinds.
pub fn tensor_type_of(tp: &TypeProto) -> Option<TensorType> {
    let TypeValue::TensorType(t) = tp.value.as_ref()? else {
        return None;
    };
    let shape = t.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(DimValue::DimValue(v)) => Dim::Fixed(*v),
                Some(DimValue::DimParam(p)) if !p.is_empty() => Dim::Param(p.clone()),
                _ => Dim::Unknown,
            })
            .collect()
    });
    Some(TensorType {
        elem_type: t.elem_type(),
        shape,
    })
}

/// The scopes around a subgraph, which it reads without copying them: their
/// value types and the data their data propagation made (not their
/// initializers and Constants, which onnx does not pass into a subgraph).
#[derive(Clone, Copy)]
struct Outer<'a> {
    values: &'a BTreeMap<String, TensorType>,
    data: &'a HashMap<String, Vec<Dim>>,
    consts: &'a HashSet<String>,
    shadowed: &'a HashSet<String>,
    parent: Option<&'a Outer<'a>>,
}

impl<'a> Outer<'a> {
    fn value(&self, name: &str) -> Option<&'a TensorType> {
        match self.values.get(name) {
            Some(t) => Some(t),
            None if self.shadowed.contains(name) => None,
            None => self.parent.and_then(|p| p.value(name)),
        }
    }

    fn data(&self, name: &str) -> Option<&'a Vec<Dim>> {
        if self.consts.contains(name) {
            return None;
        }
        match self.data.get(name) {
            Some(d) => Some(d),
            None if self.shadowed.contains(name) || self.values.contains_key(name) => None,
            None => self.parent.and_then(|p| p.data(name)),
        }
    }
}

struct State<'o> {
    /// The scopes around this graph (for a subgraph).
    outer: Option<&'o Outer<'o>>,
    /// This graph's input names, which hide outer values of the same name.
    shadowed: HashSet<String>,
    values: BTreeMap<String, TensorType>,
    /// Propagated contents of small int64 tensors (data_prop), as dims.
    data: HashMap<String, Vec<Dim>>,
    /// The names whose data is a constant (initializers, Constant outputs),
    /// as opposed to data propagated through shape ops.
    consts: HashSet<String>,
    /// Small float constants (Resize and Upsample scales).
    floats: HashMap<String, Vec<f32>>,
    declared: HashMap<String, TensorType>,
    /// The names the nodes of this graph produce (not those of outer scopes).
    produced: HashSet<String>,
    /// Where this graph is, for diagnostics: `graph`, or a subgraph as
    /// `graph/node[3]:then_branch`.
    location: String,
    /// The model's IR version (subgraph input counts are checked from 4).
    ir_version: i64,
    /// How deep in subgraphs and function calls this graph is.
    depth: usize,
    /// The model-local functions.
    functions: std::rc::Rc<function::Functions>,
    /// The functions being expanded around this graph (a call chain).
    calls: Vec<String>,
    /// The symbols given to unknown dims, shared by every graph and call.
    symbols: std::rc::Rc<std::cell::RefCell<symbols::Symbols>>,
    out: &'o mut Inferred,
}

/// Largest tensor whose contents are propagated.
const MAX_DATA: u64 = 1024;

/// The int64/int32 contents of a small tensor, as fixed dims.
pub(crate) fn tensor_ints(t: &TensorProto) -> Option<Vec<i64>> {
    let n = crate::numel(t).ok()?;
    if n > MAX_DATA || crate::external::is_external(t) {
        return None;
    }
    let code = t.data_type();
    if code == DataType::Int64 as i32 && !t.int64_data.is_empty() {
        return Some(t.int64_data.clone());
    }
    if code == DataType::Int32 as i32 && !t.int32_data.is_empty() {
        return Some(t.int32_data.iter().map(|&v| i64::from(v)).collect());
    }
    let bytes = crate::tensor_data(t, None).ok()?;
    match code {
        c if c == DataType::Int64 as i32 => Some(
            bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        ),
        c if c == DataType::Int32 as i32 => Some(
            bytes
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
                .collect(),
        ),
        _ => None,
    }
}

/// The contents of a small float tensor.
pub(crate) fn tensor_floats(t: &TensorProto) -> Option<Vec<f32>> {
    let n = crate::numel(t).ok()?;
    if n > MAX_DATA || crate::external::is_external(t) || t.data_type() != DataType::Float as i32 {
        return None;
    }
    if !t.float_data.is_empty() {
        return Some(t.float_data.clone());
    }
    let bytes = crate::tensor_data(t, None).ok()?;
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
            .collect(),
    )
}

fn tensor_type_of_tensor(t: &TensorProto) -> TensorType {
    TensorType::new(
        t.data_type(),
        t.dims.iter().map(|&d| Dim::Fixed(d)).collect(),
    )
}

impl State<'_> {
    /// The type of `name` in this graph or, for a subgraph, around it.
    fn value(&self, name: &str) -> Option<&TensorType> {
        match self.values.get(name) {
            Some(t) => Some(t),
            None if self.shadowed.contains(name) => None,
            None => self.outer.and_then(|o| o.value(name)),
        }
    }

    /// The propagated data of `name`, likewise.
    fn data_of(&self, name: &str) -> Option<&Vec<Dim>> {
        match self.data.get(name) {
            Some(d) => Some(d),
            None if self.shadowed.contains(name) || self.values.contains_key(name) => None,
            None => self.outer.and_then(|o| o.data(name)),
        }
    }

    fn seed(&mut self, graph: &GraphProto) {
        let declare = |st: &mut Self, vi: &ValueInfoProto| {
            if let Some(t) = vi.r#type.as_ref().and_then(tensor_type_of) {
                st.declared.insert(vi.name().to_string(), t);
            }
        };
        for vi in graph.value_info.iter().chain(&graph.output) {
            declare(self, vi);
        }
        for t in &graph.initializer {
            if crate::dtype::name(t.data_type()).is_none() {
                // onnx's inference refuses a type it does not know.
                self.out.diagnostics.push(Diagnostic {
                    rule: Rule::InferenceTypeClash,
                    severity: Severity::Error,
                    location: self.location.clone(),
                    node_index: None,
                    node_name: None,
                    op_type: None,
                    message: format!(
                        "initializer '{}': invalid tensor data type {}",
                        t.name(),
                        t.data_type()
                    ),
                });
                continue;
            }
            self.values
                .insert(t.name().to_string(), tensor_type_of_tensor(t));
            if let Some(v) = tensor_floats(t) {
                self.floats.insert(t.name().to_string(), v);
            }
            if let Some(v) = tensor_ints(t) {
                self.consts.insert(t.name().to_string());
                self.data.insert(
                    t.name().to_string(),
                    v.into_iter().map(Dim::Fixed).collect(),
                );
            }
        }
        for vi in &graph.input {
            if let Some(t) = vi.r#type.as_ref().and_then(tensor_type_of) {
                self.values.insert(vi.name().to_string(), t);
            }
        }
    }

    fn node(&mut self, index: usize, node: &NodeProto, opsets: &HashMap<String, i64>) {
        let domain = crate::check::canonical_domain(node.domain());
        let version = opsets.get(domain).copied().unwrap_or(0);
        let op = node.op_type();
        let rule = registry::rule(domain, op, version);
        let inputs: Vec<Option<TensorType>> = node
            .input
            .iter()
            .map(|n| {
                if n.is_empty() {
                    None
                } else {
                    self.value(n).cloned()
                }
            })
            .collect();
        let data: Vec<Option<Vec<Dim>>> = node
            .input
            .iter()
            .map(|n| self.data_of(n).cloned())
            .collect();
        let consts: Vec<bool> = node.input.iter().map(|n| self.consts.contains(n)).collect();
        let floats: Vec<Option<Vec<f32>>> = node
            .input
            .iter()
            .map(|n| self.floats.get(n).cloned())
            .collect();
        let elems: Vec<i32> = inputs
            .iter()
            .map(|t| t.as_ref().map_or(0, |t| t.elem_type))
            .collect();
        for message in constraints::check_inputs(domain, op, version, node.name(), &elems) {
            self.report(index, node, Rule::InferenceTypeConstraint, message);
        }
        let mut cx = NodeCx {
            node,
            floats,
            consts,
            version,
            inputs,
            data,
            outputs: vec![None; node.output.len()],
            out_data: vec![None; node.output.len()],
        };
        let result = match rule {
            _ if domain.is_empty() && control::is_control_flow(op) => {
                control::infer(self, index, &mut cx, opsets)
            }
            Some(rule) => rule(&mut cx),
            None if crate::schema::lookup(domain, op, version).is_none()
                && self.functions.contains_key(&function::key_of(node)) =>
            {
                let functions = std::rc::Rc::clone(&self.functions);
                match functions.get(&function::key_of(node)) {
                    Some(f) => self.call_function(index, f, &mut cx),
                    None => Ok(()),
                }
            }
            None => {
                let key = if domain.is_empty() {
                    op.to_string()
                } else {
                    format!("{domain}::{op}")
                };
                self.out.unsupported.insert(key);
                Ok(())
            }
        };
        if op == "Constant"
            && let Some(t) = node.attribute.first().and_then(|a| a.t.as_ref())
            && let (Some(v), Some(name)) = (tensor_floats(t), node.output.first())
        {
            self.floats.insert(name.clone(), v);
        }
        if let Err(message) = result {
            self.report(index, node, Rule::InferenceTypeClash, message);
        }
        for message in constraints::infer_outputs(domain, op, version, &elems, &mut cx.outputs) {
            self.report(index, node, Rule::InferenceTypeConstraint, message);
        }
        for (i, name) in node.output.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            self.produced.insert(name.clone());
            let mut inferred = cx.outputs[i].take();
            if let Some(dims) = inferred.as_mut().and_then(|t| t.shape.as_mut()) {
                self.symbols.borrow_mut().materialize(dims);
            }
            let declared = self.declared.get(name).cloned();
            let merged = match (inferred, declared) {
                (Some(inf), Some(dec)) => match merge(&inf, &dec) {
                    Ok(m) => Some(m),
                    Err((rule, msg)) => {
                        self.report(index, node, rule, format!("output '{name}': {msg}"));
                        Some(dec)
                    }
                },
                (Some(inf), None) => Some(inf),
                (None, dec) => dec,
            };
            if let Some(m) = merged.filter(|m| m.elem_type != 0 || m.shape.is_some()) {
                self.values.insert(name.clone(), m);
            }
            if let Some(d) = cx.out_data[i].take() {
                if op == "Constant" {
                    self.consts.insert(name.clone());
                }
                self.data.insert(name.clone(), d);
            }
        }
    }

    fn report(&mut self, index: usize, node: &NodeProto, rule: Rule, message: String) {
        self.out.diagnostics.push(Diagnostic {
            rule,
            severity: Severity::Error,
            location: self.location.clone(),
            node_index: Some(index),
            node_name: Some(node.name().to_string()),
            op_type: Some(node.op_type().to_string()),
            message,
        });
    }
}

/// Merges an inferred type into a declared one as onnx does (declared
/// params win over inferred params, inferred values fill unknowns).
pub(crate) fn merge(inf: &TensorType, dec: &TensorType) -> Result<TensorType, (Rule, String)> {
    let elem_type = match (inf.elem_type, dec.elem_type) {
        (0, d) => d,
        (i, 0) => i,
        (i, d) if i == d => i,
        (i, d) => {
            return Err((
                Rule::InferenceTypeClash,
                format!("inferred element type {i} but declared {d}"),
            ));
        }
    };
    let shape = match (&inf.shape, &dec.shape) {
        (None, s) | (s, None) => s.clone(),
        (Some(a), Some(b)) => {
            if a.len() != b.len() {
                return Err((
                    Rule::InferenceShapeClash,
                    format!("inferred rank {} but declared rank {}", a.len(), b.len()),
                ));
            }
            let mut dims = Vec::with_capacity(a.len());
            for (k, (x, y)) in a.iter().zip(b).enumerate() {
                dims.push(match (x, y) {
                    (Dim::Fixed(u), Dim::Fixed(v)) if u != v => {
                        return Err((
                            Rule::InferenceShapeClash,
                            format!("dim {k}: inferred {u} but declared {v}"),
                        ));
                    }
                    (Dim::Fixed(u), _) => Dim::Fixed(*u),
                    (_, Dim::Fixed(v)) => Dim::Fixed(*v),
                    (_, Dim::Param(p)) => Dim::Param(p.clone()),
                    (d, Dim::Unknown) => d.clone(),
                });
            }
            Some(dims)
        }
    };
    Ok(TensorType { elem_type, shape })
}

/// What a rule sees of one node, and where it writes its outputs.
pub struct NodeCx<'n> {
    node: &'n NodeProto,
    /// The opset version of the node's domain.
    pub version: i64,
    inputs: Vec<Option<TensorType>>,
    data: Vec<Option<Vec<Dim>>>,
    consts: Vec<bool>,
    floats: Vec<Option<Vec<f32>>>,
    outputs: Vec<Option<TensorType>>,
    out_data: Vec<Option<Vec<Dim>>>,
}

/// The result of a rule: `Err` names an inconsistency onnx rejects.
pub type RuleResult = Result<(), String>;

impl NodeCx<'_> {
    /// The type of input `i`, if present and known.
    pub fn input(&self, i: usize) -> Option<&TensorType> {
        self.inputs.get(i).and_then(Option::as_ref)
    }

    /// Whether input `i` is given (named) at all.
    pub fn has_input(&self, i: usize) -> bool {
        self.node.input.get(i).is_some_and(|n| !n.is_empty())
    }

    /// The number of inputs (empty names included).
    pub fn input_count(&self) -> usize {
        self.node.input.len()
    }

    /// The dims of input `i`, when its rank is known.
    pub fn shape(&self, i: usize) -> Option<&[Dim]> {
        self.input(i).and_then(|t| t.shape.as_deref())
    }

    /// The element type of input `i` (0 when unknown).
    pub fn elem(&self, i: usize) -> i32 {
        self.input(i).map_or(0, |t| t.elem_type)
    }

    /// The propagated contents of input `i`.
    pub fn data(&self, i: usize) -> Option<&[Dim]> {
        self.data.get(i).and_then(Option::as_deref)
    }

    /// The contents of input `i` when it is a constant (an initializer or
    /// a Constant's value), as onnx's `getInputData`: shape rules read
    /// axes, pads, starts and such only from constants.
    pub fn ints(&self, i: usize) -> Option<Vec<i64>> {
        if !self.consts.get(i).copied().unwrap_or(false) {
            return None;
        }
        self.ints_any(i)
    }

    /// The contents of input `i`, constant or propagated, when every entry
    /// is a fixed value (for data propagation).
    pub fn ints_any(&self, i: usize) -> Option<Vec<i64>> {
        self.data(i)?.iter().map(Dim::value).collect()
    }

    /// The contents of input `i` when it is a small float constant.
    pub fn float_data(&self, i: usize) -> Option<Vec<f32>> {
        self.floats.get(i).cloned().flatten()
    }

    /// The attribute called `name`.
    pub fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.node.attribute.iter().find(|a| a.name() == name)
    }

    /// An int attribute, or `default`.
    pub fn attr_i(&self, name: &str, default: i64) -> i64 {
        self.attr(name).map_or(default, |a| a.i())
    }

    /// An ints attribute, when present.
    pub fn attr_ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attr(name).map(|a| a.ints.clone())
    }

    /// A string attribute, or `default`.
    pub fn attr_s(&self, name: &str, default: &str) -> String {
        self.attr(name).map_or(default.to_string(), |a| {
            String::from_utf8_lossy(a.s()).into_owned()
        })
    }

    /// The number of outputs.
    pub fn output_count(&self) -> usize {
        self.outputs.len()
    }

    /// Sets the type of output `i` (ignored when the node has no such output).
    pub fn set(&mut self, i: usize, t: TensorType) {
        if let Some(o) = self.outputs.get_mut(i) {
            *o = Some(t);
        }
    }

    /// Sets the propagated contents of output `i`.
    pub fn set_data(&mut self, i: usize, d: Vec<Dim>) {
        if let Some(o) = self.out_data.get_mut(i) {
            *o = Some(d);
        }
    }
}

/// The most dims a rule makes up from a length it reads (a hostile file
/// may declare a shape vector of 10^12 entries).
const MAX_MADE_UP_DIMS: i64 = 1024;

/// `n` unknown dims, when `n` is a plausible rank or shape-vector length.
pub(crate) fn unknown_dims(n: i64) -> Option<Vec<Dim>> {
    (0..=MAX_MADE_UP_DIMS)
        .contains(&n)
        .then(|| vec![Dim::Unknown; n as usize])
}

/// A dim computed in i128 (so hostile values cannot overflow); unknown when
/// it does not fit an i64.
pub(crate) fn fixed(v: i128) -> Dim {
    i64::try_from(v).map_or(Dim::Unknown, Dim::Fixed)
}

/// Normalizes a possibly negative axis against `rank`.
pub(crate) fn axis(a: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if v < 0 || v >= r {
        return Err(format!("axis {a} is out of range for rank {rank}"));
    }
    Ok(v as usize)
}

/// onnx's `unifyDim(source, target)`: a fixed source fills the target or
/// must equal it; a symbolic source fills only an unknown target.
pub(crate) fn unify_dim(source: &Dim, target: &mut Dim) -> Result<(), String> {
    match (source, &*target) {
        (Dim::Fixed(s), Dim::Fixed(t)) if s != t => Err(format!("dimension mismatch: {s} and {t}")),
        (Dim::Fixed(_), _) | (Dim::Param(_), Dim::Unknown) => {
            *target = source.clone();
            Ok(())
        }
        _ => Ok(()),
    }
}

/// onnx's `unifyInputShape`: when input `i` has a shape, its rank must be
/// `slots.len()` and each dim is unified into `dims[slots[k]]`.
pub(crate) fn unify_input_shape(
    cx: &NodeCx<'_>,
    i: usize,
    dims: &mut [Dim],
    slots: &[usize],
) -> Result<(), String> {
    let Some(shape) = cx.shape(i) else {
        return Ok(());
    };
    if shape.len() != slots.len() {
        return Err(format!(
            "input {i} expected to have rank {} but has rank {}",
            slots.len(),
            shape.len()
        ));
    }
    for (d, &slot) in shape.iter().zip(slots) {
        if let Some(target) = dims.get_mut(slot) {
            unify_dim(d, target)?;
        }
    }
    Ok(())
}

//! Graph rules: the graph's name, typed main-graph inputs and outputs,
//! initializers, SSA and topological order over nested scopes (a subgraph
//! sees the values its ancestors defined before the node that owns it), and
//! graph outputs that something defines.

use super::{At, Checker, Rule};
use crate::proto::type_proto::Value as TypeValue;
use crate::proto::{GraphProto, NodeProto, ValueInfoProto};
use std::collections::HashSet;

/// Names visible at a point: one set per graph level, outermost first.
#[derive(Debug, Default)]
pub(super) struct Scope {
    levels: Vec<HashSet<String>>,
}

impl Scope {
    pub(super) fn push(&mut self) {
        self.levels.push(HashSet::new());
    }

    pub(super) fn pop(&mut self) {
        self.levels.pop();
    }

    pub(super) fn add(&mut self, name: &str) {
        if let Some(top) = self.levels.last_mut() {
            top.insert(name.to_string());
        }
    }

    pub(super) fn this_graph_has(&self, name: &str) -> bool {
        self.levels.last().is_some_and(|l| l.contains(name))
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.levels.iter().any(|l| l.contains(name))
    }
}

/// ai.onnx ops onnx calls experimental: it warns and skips their checks.
const EXPERIMENTAL_OPS: &[&str] = &[
    "ATen",
    "Affine",
    "ConstantFill",
    "Crop",
    "DynamicSlice",
    "GRUUnit",
    "GivenTensorFill",
    "ImageScaler",
    "ParametricSoftplus",
    "Scale",
    "ScaledTanh",
];

pub(super) fn is_experimental(domain: &str, op_type: &str) -> bool {
    super::canonical_domain(domain).is_empty() && EXPERIMENTAL_OPS.contains(&op_type)
}

pub(super) fn check_main(cx: &mut Checker, graph: &GraphProto) {
    let mut scope = Scope::default();
    check_graph(cx, graph, &mut scope, "graph", true);
}

/// Checks `graph` (the main graph when `is_main`) with `scope` holding the
/// names its ancestors define; `location` names it in diagnostics.
pub(super) fn check_graph(
    cx: &mut Checker,
    graph: &GraphProto,
    scope: &mut Scope,
    location: &str,
    is_main: bool,
) {
    let at = At::graph(location);
    if graph.name().is_empty() {
        cx.report(
            &at,
            Rule::GraphNameEmpty,
            "field 'name' of the graph is empty",
        );
    }
    for (side, values) in [("input", &graph.input), ("output", &graph.output)] {
        for (i, v) in values.iter().enumerate() {
            check_value_info(cx, &at, side, i, v, is_main);
        }
    }
    scope.push();
    for v in &graph.input {
        if scope.this_graph_has(v.name()) {
            cx.report(
                &at,
                Rule::GraphInputDuplicate,
                format!(
                    "'{}' is used as a graph input name more than once (SSA)",
                    v.name()
                ),
            );
        }
        scope.add(v.name());
    }
    let mut initializer_names = HashSet::new();
    for (i, t) in graph.initializer.iter().enumerate() {
        let name = t.name();
        if name.is_empty() {
            cx.report(
                &at,
                Rule::InitializerNameEmpty,
                format!("initializer {i} has an empty name"),
            );
        } else if !initializer_names.insert(name) {
            cx.report(
                &at,
                Rule::InitializerDuplicate,
                format!("initializer name '{name}' is not unique"),
            );
        }
        super::tensor::check_tensor(cx, &at, t, &format!("initializer '{name}'"));
        if cx.ir_version <= 3 {
            if !scope.this_graph_has(name) {
                cx.report(
                    &at,
                    Rule::InitializerNotInput,
                    format!(
                        "initializer '{name}' is not a graph input (required for IR version {} <= 3)",
                        cx.ir_version
                    ),
                );
            }
        } else {
            scope.add(name);
        }
    }
    for (i, s) in graph.sparse_initializer.iter().enumerate() {
        let name = s.values.as_ref().map(|v| v.name()).unwrap_or("");
        if name.is_empty() {
            cx.report(
                &at,
                Rule::InitializerNameEmpty,
                format!("sparse initializer {i} has no values name"),
            );
        } else if !initializer_names.insert(name) {
            cx.report(
                &at,
                Rule::InitializerDuplicate,
                format!(
                    "sparse initializer name '{name}' is not unique across initializers and sparse_initializers"
                ),
            );
        }
        super::tensor::check_sparse(cx, &at, s, &format!("sparse initializer '{name}'"));
        scope.add(name);
    }
    check_nodes(cx, &graph.node, scope, location, is_main, "graph");
    for v in &graph.output {
        if !scope.this_graph_has(v.name()) {
            cx.report(
                &at,
                Rule::GraphOutputUndefined,
                format!(
                    "graph output '{}' is not an output of any node, an input or an initializer of this graph",
                    v.name()
                ),
            );
        }
    }
    scope.pop();
}

/// The node rules of a graph or function body, in order: inputs defined
/// (topological order), the node itself, then SSA for its outputs. `kind`
/// (`graph`, `function`) names the container in messages.
pub(super) fn check_nodes(
    cx: &mut Checker,
    nodes: &[NodeProto],
    scope: &mut Scope,
    location: &str,
    is_main: bool,
    kind: &str,
) {
    for (index, node) in nodes.iter().enumerate() {
        let node_at = At::node(location, index, node);
        for input in &node.input {
            if !input.is_empty() && !scope.has(input) {
                cx.report(
                    &node_at,
                    Rule::NodeInputUndefined,
                    format!(
                        "input '{input}' is not defined before this node in the {kind} or an outer scope (nodes must be topologically sorted)"
                    ),
                );
            }
        }
        if is_experimental(node.domain(), node.op_type()) {
            cx.report(
                &node_at,
                Rule::OpExperimental,
                format!(
                    "{} is an experimental op; onnx skips its checks",
                    node.op_type()
                ),
            );
        } else {
            super::node::check_node(cx, &node_at, node, scope, is_main);
        }
        for output in &node.output {
            if output.is_empty() {
                continue;
            }
            if scope.has(output) {
                cx.report(
                    &node_at,
                    Rule::SsaViolation,
                    format!(
                        "'{output}' is already defined in the {kind} or an outer scope; values must be assigned once (SSA)"
                    ),
                );
            }
            scope.add(output);
        }
    }
}

fn check_value_info(
    cx: &mut Checker,
    at: &At<'_>,
    side: &str,
    index: usize,
    v: &ValueInfoProto,
    is_main: bool,
) {
    if v.name().is_empty() {
        cx.report(
            at,
            Rule::ValueInfoNameEmpty,
            format!("graph {side} {index} has an empty name"),
        );
    }
    if !is_main {
        return;
    }
    let name = v.name();
    let missing =
        |what: &str| format!("graph {side} '{name}': field '{what}' is required but missing");
    let problem = match v.r#type.as_ref() {
        None => Some(missing("type")),
        Some(t) => match &t.value {
            Some(TypeValue::TensorType(t)) if t.elem_type.is_none() => Some(missing("elem_type")),
            Some(TypeValue::TensorType(t)) if t.shape.is_none() => Some(missing("shape")),
            Some(TypeValue::SparseTensorType(t)) if t.elem_type.is_none() => {
                Some(missing("elem_type"))
            }
            Some(TypeValue::SparseTensorType(t)) if t.shape.is_none() => Some(missing("shape")),
            Some(TypeValue::SequenceType(s)) if s.elem_type.is_none() => Some(missing("elem_type")),
            Some(TypeValue::OptionalType(o)) if o.elem_type.is_none() => Some(missing("elem_type")),
            Some(TypeValue::MapType(m)) if m.key_type.is_none() => Some(missing("key_type")),
            Some(TypeValue::MapType(m)) if m.value_type.is_none() => Some(missing("value_type")),
            Some(_) => None,
            None => Some(format!(
                "graph {side} '{name}': the type has no value case set"
            )),
        },
    };
    if let Some(message) = problem {
        cx.report(at, Rule::ValueInfoTypeMissing, message);
    }
}

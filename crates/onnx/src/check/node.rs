//! Node rules: op type, inputs or outputs present, the domain imported,
//! attributes well formed and unique (their tensors and subgraphs checked
//! recursively), then the op's schema at the imported opset version: the op
//! exists and is not deprecated, input and output arity (optional and
//! variadic), attributes known, of the declared type, required ones present.

use super::graph::Scope;
use super::{At, Checker, Rule};
use crate::proto::attribute_proto::AttributeType;
use crate::proto::{AttributeProto, NodeProto};
use std::collections::HashSet;

pub(super) fn check_node(
    cx: &mut Checker,
    at: &At<'_>,
    node: &NodeProto,
    scope: &mut Scope,
    is_main: bool,
) {
    if node.op_type().is_empty() {
        cx.report(
            at,
            Rule::NodeOpTypeEmpty,
            "field 'op_type' of the node is empty",
        );
    }
    if node.input.is_empty() && node.output.is_empty() {
        cx.report(
            at,
            Rule::NodeNoIo,
            "the node has zero inputs and zero outputs",
        );
    }
    // Imports are looked up as the node spells its domain: an `ai.onnx`
    // import also serves "", but a node in `ai.onnx` needs that import.
    let domain = node.domain();
    let version = cx.opsets.get(domain).copied();
    if version.is_none() {
        cx.report(
            at,
            Rule::DomainNotImported,
            format!("no opset import for domain '{}'", node.domain()),
        );
    }
    let mut seen = HashSet::new();
    for (k, attr) in node.attribute.iter().enumerate() {
        if !seen.insert(attr.name()) {
            cx.report(
                at,
                Rule::AttributeDuplicate,
                format!("attribute '{}' appears more than once", attr.name()),
            );
        }
        check_attribute(cx, at, node, k, attr, scope, is_main);
    }
    if let Some(version) = version {
        super::schema::check_node_schema(cx, at, node, domain, version);
    }
}

/// The value fields an attribute sets, with the type each belongs to.
fn set_fields(attr: &AttributeProto) -> Vec<AttributeType> {
    use AttributeType as A;
    let mut fields = Vec::new();
    let mut add = |set: bool, t: A| {
        if set {
            fields.push(t);
        }
    };
    add(attr.f.is_some(), A::Float);
    add(attr.i.is_some(), A::Int);
    add(attr.s.is_some(), A::String);
    add(attr.t.is_some(), A::Tensor);
    add(attr.g.is_some(), A::Graph);
    add(attr.sparse_tensor.is_some(), A::SparseTensor);
    add(attr.tp.is_some(), A::TypeProto);
    add(!attr.floats.is_empty(), A::Floats);
    add(!attr.ints.is_empty(), A::Ints);
    add(!attr.strings.is_empty(), A::Strings);
    add(!attr.tensors.is_empty(), A::Tensors);
    add(!attr.graphs.is_empty(), A::Graphs);
    add(!attr.sparse_tensors.is_empty(), A::SparseTensors);
    add(!attr.type_protos.is_empty(), A::TypeProtos);
    fields
}

/// The name of an attribute type code (`"INT"`), or the number.
pub(super) fn type_name(code: i32) -> String {
    AttributeType::try_from(code)
        .map(|t| t.as_str_name().to_string())
        .unwrap_or_else(|_| code.to_string())
}

fn check_attribute(
    cx: &mut Checker,
    at: &At<'_>,
    node: &NodeProto,
    index: usize,
    attr: &AttributeProto,
    scope: &mut Scope,
    is_main: bool,
) {
    let name = attr.name();
    if name.is_empty() {
        cx.report(
            at,
            Rule::AttributeMalformed,
            format!("attribute {index} has an empty name"),
        );
    }
    if cx.ir_version >= 2 && attr.r#type.is_none() {
        cx.report(
            at,
            Rule::AttributeMalformed,
            format!("attribute '{name}': field 'type' is required but missing"),
        );
    }
    let fields = set_fields(attr);
    if let Some(declared) = attr.r#type
        && let Some(other) = fields.iter().find(|f| **f as i32 != declared)
    {
        cx.report(
            at,
            Rule::AttributeMalformed,
            format!(
                "attribute '{name}': type field and data field mismatch (type {}, field of {})",
                type_name(declared),
                other.as_str_name()
            ),
        );
    }
    if fields.len() > 1 {
        cx.report(
            at,
            Rule::AttributeMalformed,
            format!("attribute '{name}' sets more than one value field"),
        );
    }
    if !is_main && attr.ref_attr_name.is_some() && !fields.is_empty() {
        cx.report(
            at,
            Rule::AttributeMalformed,
            format!(
                "attribute '{name}' refers to a parent attribute but also has a value; it should refer to the attribute in the parent node"
            ),
        );
    }
    let what = |k: Option<usize>| match k {
        None => format!("attribute '{name}' tensor"),
        Some(k) => format!("attribute '{name}' tensor {k}"),
    };
    if let Some(t) = &attr.t {
        super::tensor::check_tensor(cx, at, t, &what(None));
    }
    for (k, t) in attr.tensors.iter().enumerate() {
        super::tensor::check_tensor(cx, at, t, &what(Some(k)));
    }
    if let Some(s) = &attr.sparse_tensor {
        super::tensor::check_sparse(cx, at, s, &what(None));
    }
    for (k, s) in attr.sparse_tensors.iter().enumerate() {
        super::tensor::check_sparse(cx, at, s, &what(Some(k)));
    }
    let (location, index) = (at.location, at.node.map(|(i, _)| i).unwrap_or(0));
    let _ = node;
    if let Some(g) = &attr.g {
        let sub = format!("{location}/node[{index}]:{name}");
        super::graph::check_graph(cx, g, scope, &sub, false);
    }
    for (k, g) in attr.graphs.iter().enumerate() {
        let sub = format!("{location}/node[{index}]:{name}[{k}]");
        super::graph::check_graph(cx, g, scope, &sub, false);
    }
}

//! Schema rules of a node, from the op-schema table ([`crate::schema`]): the
//! op is registered for its domain at the imported version and not
//! deprecated; input and output counts fit the formal parameters (optional
//! and variadic); no empty name at a required position; every attribute is
//! declared (names starting with `__` are exempt), of the declared type, with
//! its value field set for tensor/graph/type attributes; required attributes
//! are present. As `OpSchema::Verify` in onnx, nothing about tensor types or
//! shapes.

use super::{At, Checker, Rule};
use crate::proto::NodeProto;
use crate::schema::{self, AttrType, FormalParameter, FormalParameterOption, UNBOUNDED};

/// Domains whose ops must have a schema; ops of other domains without one
/// are accepted (custom ops), as onnx does by default.
const STANDARD_DOMAINS: &[&str] = &["", "ai.onnx", "ai.onnx.ml", "ai.onnx.training"];

pub(super) fn check_node_schema(
    cx: &mut Checker,
    at: &At<'_>,
    node: &NodeProto,
    domain: &str,
    version: i64,
) {
    let op = node.op_type();
    let Some(s) = schema::lookup(domain, op, version) else {
        if STANDARD_DOMAINS.contains(&domain) {
            let hint = if domain == "ai.onnx" {
                " (the registry knows ai.onnx ops under the domain \"\" only)"
            } else {
                ""
            };
            cx.report(
                at,
                Rule::OpUnknown,
                format!(
                    "no op registered for {op} in domain '{domain}' at opset version {version}{hint}"
                ),
            );
        }
        return;
    };
    if s.deprecated {
        cx.report(
            at,
            Rule::OpDeprecated,
            format!(
                "{op} is deprecated at opset version {version} of domain '{domain}' (since {})",
                s.since_version
            ),
        );
        return;
    }
    let id = format!("{domain}::{op}:{}", s.since_version);
    arity(
        cx,
        at,
        &id,
        "input",
        &node.input,
        s.inputs,
        s.min_input,
        s.max_input,
    );
    arity(
        cx,
        at,
        &id,
        "output",
        &node.output,
        s.outputs,
        s.min_output,
        s.max_output,
    );

    for attr in &node.attribute {
        let name = attr.name();
        let Some(declared) = s.attribute(name) else {
            if !name.starts_with("__") {
                cx.report(
                    at,
                    Rule::AttributeUnknown,
                    format!("attribute '{name}' is not an attribute of {id}"),
                );
            }
            continue;
        };
        let actual = attr.r#type.unwrap_or(0);
        if actual != declared.attr_type.as_i32() {
            cx.report(
                at,
                Rule::AttributeType,
                format!(
                    "attribute '{name}' of {id} must be {}, not {}",
                    declared.attr_type.name(),
                    super::node::type_name(actual)
                ),
            );
            continue;
        }
        if attr.ref_attr_name.as_deref().is_some_and(|r| !r.is_empty()) {
            continue;
        }
        let missing_field = match declared.attr_type {
            AttrType::Tensor => attr.t.is_none().then_some("t"),
            AttrType::SparseTensor => attr.sparse_tensor.is_none().then_some("sparse_tensor"),
            AttrType::Graph => attr.g.is_none().then_some("g"),
            AttrType::TypeProto => attr.tp.is_none().then_some("tp"),
            _ => None,
        };
        if let Some(field) = missing_field {
            cx.report(
                at,
                Rule::AttributeMalformed,
                format!("attribute '{name}' is expected to have field '{field}'"),
            );
        }
    }
    for declared in s.attributes.iter().filter(|a| a.required) {
        if !node.attribute.iter().any(|a| a.name() == declared.name) {
            cx.report(
                at,
                Rule::AttributeRequired,
                format!("required attribute '{}' of {id} is missing", declared.name),
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn arity(
    cx: &mut Checker,
    at: &At<'_>,
    id: &str,
    side: &str,
    names: &[String],
    formal: &[FormalParameter],
    min: usize,
    max: usize,
) {
    let n = names.len();
    if n < min || n > max {
        let shown_max = if max == UNBOUNDED {
            "unbounded".to_string()
        } else {
            max.to_string()
        };
        cx.report(
            at,
            Rule::Arity,
            format!("{id} takes {min} to {shown_max} {side}s, the node has {n}"),
        );
        return;
    }
    for (k, name) in names.iter().enumerate() {
        let Some(param) = formal.get(k) else {
            if formal.last().map(|p| p.option) != Some(FormalParameterOption::Variadic) {
                cx.report(
                    at,
                    Rule::Arity,
                    format!(
                        "the node has more {side}s ({n}) than {id} declares ({})",
                        formal.len()
                    ),
                );
            }
            break;
        };
        if name.is_empty() && param.option == FormalParameterOption::Single {
            cx.report(
                at,
                Rule::Arity,
                format!(
                    "{side} {k} ('{}') of {id} is required but the node leaves it empty",
                    param.name
                ),
            );
        }
    }
}

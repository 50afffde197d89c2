//! ONNX `If` and `Loop` to Caffe2 `If` and `ONNXWhile`, as Caffe2Backend's
//! `_create_if` / `_create_loop` write them after the optimizer pass
//! `lift_lexical_references`.
//!
//! Each graph attribute becomes a NetDef argument (`then_branch` ->
//! `then_net`, `else_branch` -> `else_net`, `body` -> `body`) holding the
//! subgraph's nodes converted one by one (`_graph_to_net`: no name, no device
//! option, external inputs = the subgraph's inputs, external outputs = its
//! outputs). The outer-scope names the subgraphs read (the pass's
//! `__control_inputs`, a sorted set) are kept as a strings argument,
//! appended to each sub-net's external inputs and set as the op's
//! `control_input`. `ONNXWhile` also gets `has_trip_count`, `has_cond`,
//! `disable_scopes` (all 1) and `num_loop_carried_deps` (the body's inputs
//! less 2). Nested control nodes are converted the same way, recursively.
//!
//! Refused, because the real Caffe2 would compute something else: an `If`
//! whose branch outputs are not named as the node's outputs (Caffe2's `If`
//! runs the branch in the outer workspace and copies nothing), a `Loop`
//! without a trip count or condition input (the backend still sets
//! `has_trip_count`/`has_cond`), a `Loop` with scan outputs (`ONNXWhile`
//! does not stack them as ONNX does: its first iteration's `CopyFrom` drops
//! the leading dim), and non-tensor subgraph values (sequences, optionals).
//! Unlike the backend, which drops a subgraph node it cannot convert with a
//! printed "ONNX FATAL", such a node refuses the whole control node.

use super::Cx;
use super::ops::{self, Fail, arg_i, no};
use netport_caffe2::proto::{Argument, NetDef, OperatorDef};
use netport_onnx::proto::attribute_proto::AttributeType;
use netport_onnx::proto::{GraphProto, NodeProto};
use std::collections::{BTreeSet, HashSet};

/// The ONNX ops converted here.
pub(super) fn is_control(op: &str) -> bool {
    matches!(op, "If" | "Loop")
}

/// Names defined in each enclosing scope, outermost (the top graph before
/// the control node) first, innermost last.
type Frames = Vec<HashSet<String>>;

fn defined_anywhere(frames: &Frames, name: &str) -> bool {
    frames.iter().any(|f| f.contains(name))
}

/// The graph attributes of a control node, in attribute order.
fn graphs(node: &NodeProto) -> impl Iterator<Item = (&str, &GraphProto)> {
    node.attribute
        .iter()
        .filter_map(|a| a.g.as_ref().map(|g| (a.name(), g)))
}

/// `liftReferences` of onnx's pass: the names `g`'s nodes read that `g`
/// does not define, and those nested control nodes read that no frame
/// defines.
fn unresolved(g: &GraphProto, frames: &mut Frames) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    frames.push(g.input.iter().map(|i| i.name().to_string()).collect());
    for n in &g.node {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            if !frames.last().is_some_and(|f| f.contains(i)) {
                out.insert(i.clone());
            }
        }
        if is_control(n.op_type()) && n.domain().is_empty() {
            for r in local_unresolved(n, frames) {
                if !defined_anywhere(frames, &r) {
                    out.insert(r);
                }
            }
        }
        if let Some(f) = frames.last_mut() {
            f.extend(n.output.iter().cloned());
        }
    }
    frames.pop();
    out
}

/// What a control node's subgraphs read from outside them, and their
/// outputs that enclosing scopes already define.
fn local_unresolved(node: &NodeProto, frames: &mut Frames) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, g) in graphs(node) {
        for o in &g.output {
            if defined_anywhere(frames, o.name()) {
                out.insert(o.name().to_string());
            }
        }
        out.extend(unresolved(g, frames));
    }
    out
}

/// The node's `__control_inputs`: sorted, those some scope defines.
fn control_inputs(node: &NodeProto, frames: &mut Frames) -> Vec<String> {
    let local = local_unresolved(node, frames);
    local
        .into_iter()
        .filter(|r| defined_anywhere(frames, r))
        .collect()
}

/// One subgraph as a sub-net.
fn graph_to_net(
    cx: &mut Cx<'_>,
    what: &str,
    g: &GraphProto,
    opset: i64,
    frames: &mut Frames,
) -> Result<NetDef, Fail> {
    for v in g.input.iter().chain(&g.output) {
        if !super::is_tensor_value(v) {
            return Err(no(format!(
                "{what} value '{}' is not a tensor (Caffe2 has only tensors)",
                v.name()
            )));
        }
    }
    let mut net = NetDef::default();
    frames.push(g.input.iter().map(|i| i.name().to_string()).collect());
    let result = (|| {
        for n in &g.node {
            let converted = if is_control(n.op_type()) && n.domain().is_empty() {
                convert_in(cx, n, opset, frames)
            } else {
                ops::convert(cx, n, opset)
            };
            match converted {
                Ok(o) => net.op.extend(o),
                Err(Fail::Unsupported(r)) => {
                    return Err(no(format!(
                        "{what} node '{}' ({}): {r}",
                        n.name(),
                        n.op_type()
                    )));
                }
                Err(e) => return Err(e),
            }
            if let Some(f) = frames.last_mut() {
                f.extend(n.output.iter().cloned());
            }
        }
        Ok(())
    })();
    frames.pop();
    result?;
    net.external_input = g.input.iter().map(|i| i.name().to_string()).collect();
    net.external_output = g.output.iter().map(|o| o.name().to_string()).collect();
    Ok(net)
}

/// Converts a top-level `If` or `Loop`: the top frame holds the graph's
/// inputs, initializers and the outputs of the nodes before it.
pub(super) fn convert(
    cx: &mut Cx<'_>,
    node: &NodeProto,
    opset: i64,
) -> Result<Vec<OperatorDef>, Fail> {
    let g = cx.graph;
    let mut top: HashSet<String> = g.input.iter().map(|i| i.name().to_string()).collect();
    top.extend(g.initializer.iter().map(|t| t.name().to_string()));
    for n in g.node.iter().take_while(|n| !std::ptr::eq(*n, node)) {
        top.extend(n.output.iter().cloned());
    }
    convert_in(cx, node, opset, &mut vec![top])
}

fn convert_in(
    cx: &mut Cx<'_>,
    node: &NodeProto,
    opset: i64,
    frames: &mut Frames,
) -> Result<Vec<OperatorDef>, Fail> {
    let ty = node.op_type();
    let graph = |name: &str| {
        node.attribute
            .iter()
            .find(|a| a.name() == name)
            .and_then(|a| a.g.as_ref())
            .ok_or_else(|| no(format!("graph attribute '{name}' is missing")))
    };
    let input = |i: usize| node.input.get(i).filter(|s| !s.is_empty());
    match ty {
        "If" => {
            for b in ["then_branch", "else_branch"] {
                let g = graph(b)?;
                if g.output.len() != node.output.len() {
                    return Err(no(format!(
                        "{b} has {} outputs for the node's {}",
                        g.output.len(),
                        node.output.len()
                    )));
                }
                for (o, n) in g.output.iter().zip(&node.output) {
                    if o.name() != n {
                        return Err(no(format!(
                            "{b} output '{}' is not named as the node's output '{n}': Caffe2's \
                             If runs the branch in the outer workspace and copies no output",
                            o.name()
                        )));
                    }
                }
            }
            if input(0).is_none() {
                return Err(no("no condition input"));
            }
        }
        _ => {
            let body = graph("body")?;
            if input(0).is_none() || input(1).is_none() {
                return Err(no(
                    "a Loop without a trip count or condition input: ONNXWhile gets \
                     has_trip_count=1 and has_cond=1 and reads both",
                ));
            }
            let carried = node.input.len() - 2;
            if body.input.len() != carried + 2 {
                return Err(no(format!(
                    "the body has {} inputs for {carried} loop-carried values",
                    body.input.len()
                )));
            }
            if node.output.len() > carried || body.output.len() != carried + 1 {
                return Err(no(
                    "scan outputs: ONNXWhile does not stack them as ONNX Loop does (its first \
                     iteration's copy drops the leading dim)",
                ));
            }
        }
    }
    for a in &node.attribute {
        let graph_attr = a.g.is_some() || a.r#type() == AttributeType::Graph;
        if !graph_attr {
            return Err(no(format!("attribute '{}' of {ty}", a.name())));
        }
    }
    let controls = control_inputs(node, frames);
    let mut op = OperatorDef {
        input: node.input.clone(),
        output: node.output.clone(),
        name: Some(node.name().to_string()),
        r#type: Some(if ty == "Loop" { "ONNXWhile" } else { "If" }.to_string()),
        ..Default::default()
    };
    let mut body_inputs = 0;
    for (name, g) in graphs(node) {
        let arg_name = match name {
            "then_branch" => "then_net",
            "else_branch" => "else_net",
            other => other,
        };
        let mut net = graph_to_net(cx, &format!("{ty} {name}"), g, opset, frames)?;
        if name == "body" {
            body_inputs = net.external_input.len();
        }
        net.external_input.extend(controls.iter().cloned());
        op.arg.push(Argument {
            name: Some(arg_name.to_string()),
            n: Some(net),
            ..Default::default()
        });
    }
    if !controls.is_empty() {
        op.arg.push(Argument {
            name: Some("__control_inputs".into()),
            strings: controls
                .iter()
                .map(|c| c.clone().into_bytes().into())
                .collect(),
            ..Default::default()
        });
    }
    if ty == "Loop" {
        op.arg.push(arg_i("has_trip_count", 1));
        op.arg.push(arg_i("has_cond", 1));
        op.arg.push(arg_i("disable_scopes", 1));
        op.arg
            .push(arg_i("num_loop_carried_deps", body_inputs as i64 - 2));
    }
    op.control_input = controls;
    Ok(vec![op])
}

/// Every name in the subgraphs of `graph`'s nodes, recursively (so that
/// dummy names skip them).
pub(super) fn subgraph_names(graph: &GraphProto, out: &mut HashSet<String>) {
    for n in &graph.node {
        for a in &n.attribute {
            for g in a.g.iter().chain(&a.graphs) {
                out.extend(g.input.iter().map(|v| v.name().to_string()));
                out.extend(g.output.iter().map(|v| v.name().to_string()));
                for m in &g.node {
                    out.extend(m.input.iter().cloned());
                    out.extend(m.output.iter().cloned());
                }
                subgraph_names(g, out);
            }
        }
    }
}

/// The names an op reads from its net: its inputs, then, for `If` and
/// `ONNXWhile`, what its sub-nets read from outside them (the control
/// inputs, and outer names nested ops read that the lifting pass leaves
/// out), each once.
pub(super) fn reads(op: &OperatorDef) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in op.input.iter().filter(|i| !i.is_empty()) {
        if !out.contains(i) {
            out.push(i.clone());
        }
    }
    // RecurrentNetwork's step net is not a lexical scope: its outer reads
    // are named by the op's own link and alias arguments.
    if !matches!(op.r#type(), "If" | "ONNXWhile") {
        return out;
    }
    for i in nested_reads(op) {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// What the sub-nets of `op` read that they do not define (formal inputs,
/// their own ops' outputs).
fn nested_reads(op: &OperatorDef) -> Vec<String> {
    let mut out: Vec<String> = op.control_input.clone();
    for a in &op.arg {
        let Some(net) = &a.n else { continue };
        let formal = if op.r#type() == "ONNXWhile" {
            net.external_input
                .len()
                .saturating_sub(op.control_input.len())
        } else {
            0
        };
        let mut defined: HashSet<&str> = net.external_input[..formal]
            .iter()
            .map(String::as_str)
            .collect();
        for inner in &net.op {
            for r in reads(inner) {
                if !defined.contains(r.as_str()) && !out.contains(&r) {
                    out.push(r);
                }
            }
            defined.extend(inner.output.iter().map(String::as_str));
        }
    }
    out
}

/// Checks that every name a subgraph of `node` reads is defined by it, an
/// enclosing subgraph, or the outer graph before the node (`defined`), as
/// onnx's lifting pass requires ("Unresolved value references").
pub(super) fn check_references(
    node: &NodeProto,
    defined: &HashSet<&str>,
) -> Result<(), crate::error::ConvertError> {
    fn walk(
        g: &GraphProto,
        frames: &mut Vec<HashSet<String>>,
        defined: &HashSet<&str>,
    ) -> Result<(), String> {
        frames.push(g.input.iter().map(|i| i.name().to_string()).collect());
        for n in &g.node {
            for i in n.input.iter().filter(|i| !i.is_empty()) {
                if !defined.contains(i.as_str()) && !frames.iter().any(|f| f.contains(i)) {
                    return Err(format!(
                        "node '{}' ({}) reads '{i}', which no enclosing scope defines before it",
                        n.name(),
                        n.op_type()
                    ));
                }
            }
            for a in &n.attribute {
                for sub in a.g.iter().chain(&a.graphs) {
                    walk(sub, frames, defined)?;
                }
            }
            if let Some(f) = frames.last_mut() {
                f.extend(n.output.iter().cloned());
            }
        }
        for o in &g.output {
            if !defined.contains(o.name()) && !frames.iter().any(|f| f.contains(o.name())) {
                return Err(format!("subgraph output '{}' is never defined", o.name()));
            }
        }
        frames.pop();
        Ok(())
    }
    for a in &node.attribute {
        for g in a.g.iter().chain(&a.graphs) {
            walk(g, &mut Vec::new(), defined).map_err(|e| {
                crate::error::invalid(format!(
                    "node '{}' ({}), subgraph '{}': {e}",
                    node.name(),
                    node.op_type(),
                    a.name()
                ))
            })?;
        }
    }
    Ok(())
}

//! Model-local function rules (IR >= 8): a name and a domain, unique ids
//! (domain, name, overload), unique inputs, outputs and attributes, nodes in
//! topological order and SSA form checked like graph nodes against the
//! function's own opset imports, and no recursion between functions.

use super::graph::Scope;
use super::{At, Checker, Rule};
use crate::proto::{FunctionProto, GraphProto, ModelProto, NodeProto};
use std::collections::{BTreeMap, HashMap, HashSet};

/// onnx refuses models with more local functions than this.
const MAX_FUNCTIONS: usize = 10_000;

fn id(f: &FunctionProto) -> String {
    match f.overload.as_deref() {
        Some(o) if !o.is_empty() => format!("{}:{}:{o}", f.domain(), f.name()),
        _ => format!("{}:{}", f.domain(), f.name()),
    }
}

pub(super) fn check_functions(cx: &mut Checker, model: &ModelProto) {
    if model.functions.len() > MAX_FUNCTIONS {
        cx.report(
            &At::graph("model"),
            Rule::FunctionMalformed,
            format!(
                "the model has {} local functions, more than {MAX_FUNCTIONS}",
                model.functions.len()
            ),
        );
    }
    // Function imports join the model's; a domain the model imports keeps
    // the model's version (and is compatibility-checked per function).
    let mut merged = cx.opsets.clone();
    for f in &model.functions {
        for import in &f.opset_import {
            merged
                .entry(import.domain().to_string())
                .or_insert(import.version());
        }
    }
    let mut ids = HashSet::new();
    for f in &model.functions {
        let location = format!("function {}", id(f));
        let at = At::graph(&location);
        if !ids.insert(id(f)) {
            cx.report(
                &at,
                Rule::FunctionDuplicate,
                format!(
                    "the model has more than one local function with the id '{}'",
                    id(f)
                ),
            );
        }
        check_function(cx, f, &location, &merged);
    }
    check_cycles(cx, model);
}

fn check_function(
    cx: &mut Checker,
    f: &FunctionProto,
    location: &str,
    merged: &HashMap<String, i64>,
) {
    let at = At::graph(location);
    if f.name().is_empty() {
        cx.report(
            &at,
            Rule::FunctionMalformed,
            "field 'name' of the function is empty",
        );
    }
    if f.domain.is_none() {
        cx.report(
            &at,
            Rule::FunctionMalformed,
            "field 'domain' of the function is required but missing",
        );
    }
    let attributes: Vec<&str> = f
        .attribute
        .iter()
        .map(String::as_str)
        .chain(f.attribute_proto.iter().map(|a| a.name()))
        .collect();
    for (what, names) in [
        (
            "input",
            f.input.iter().map(String::as_str).collect::<Vec<_>>(),
        ),
        ("output", f.output.iter().map(String::as_str).collect()),
        ("attribute", attributes),
    ] {
        let mut seen = HashSet::new();
        for name in names {
            if !seen.insert(name) {
                cx.report(
                    &at,
                    Rule::FunctionSignature,
                    format!("{what} '{name}' appears more than once"),
                );
            }
        }
    }
    // Function nodes resolve their domains against the function's imports.
    let mut opsets: HashMap<String, i64> = f
        .opset_import
        .iter()
        .map(|o| (o.domain().to_string(), o.version()))
        .collect();
    if let Some(&v) = opsets.get("ai.onnx") {
        opsets.insert(String::new(), v);
    }
    let model_opsets = std::mem::replace(&mut cx.opsets, opsets);
    let mut scope = Scope::default();
    scope.push();
    for input in &f.input {
        scope.add(input);
    }
    // onnx checks function bodies as a main graph: `ref_attr_name` with a
    // value is only refused inside subgraphs.
    super::graph::check_nodes(cx, &f.node, &mut scope, location, true, "function");
    check_opset_compatibility(cx, f, location, merged);
    cx.opsets = model_opsets;
}

/// For each domain the function imports at another version than the model,
/// each body node of that domain must have the same schema (same
/// `since_version`) at both versions. Domains the model does not import take
/// the function's version, so they are always compatible.
fn check_opset_compatibility(
    cx: &mut Checker,
    f: &FunctionProto,
    location: &str,
    model_opsets: &HashMap<String, i64>,
) {
    for (index, node) in f.node.iter().enumerate() {
        let domain = node.domain();
        let (Some(&theirs), Some(&ours)) = (cx.opsets.get(domain), model_opsets.get(domain)) else {
            continue;
        };
        if theirs == ours {
            continue;
        }
        let since = |v| crate::schema::lookup(domain, node.op_type(), v).map(|s| s.since_version);
        let (a, b) = (since(theirs), since(ours));
        if (a.is_some() || b.is_some()) && a != b {
            cx.report(
                &At::node(location, index, node),
                Rule::FunctionOpsetIncompatible,
                format!(
                    "the function imports domain '{domain}' at version {theirs} and the model at {ours}; {} has different schemas at the two",
                    node.op_type()
                ),
            );
        }
    }
}

/// The local functions each node list calls, subgraphs included.
fn calls<'a>(nodes: &'a [NodeProto], out: &mut Vec<(&'a str, &'a str)>) {
    fn graph<'a>(g: &'a GraphProto, out: &mut Vec<(&'a str, &'a str)>) {
        calls(&g.node, out);
    }
    for n in nodes {
        out.push((n.domain(), n.op_type()));
        for a in &n.attribute {
            if let Some(g) = &a.g {
                graph(g, out);
            }
            for g in &a.graphs {
                graph(g, out);
            }
        }
    }
}

fn check_cycles(cx: &mut Checker, model: &ModelProto) {
    let by_key: BTreeMap<(&str, &str), &FunctionProto> = model
        .functions
        .iter()
        .map(|f| ((f.domain(), f.name()), f))
        .collect();
    let edges: BTreeMap<(&str, &str), Vec<(&str, &str)>> = by_key
        .iter()
        .map(|(key, f)| {
            let mut out = Vec::new();
            calls(&f.node, &mut out);
            out.retain(|c| by_key.contains_key(c));
            out.sort();
            out.dedup();
            (*key, out)
        })
        .collect();
    // Depth-first search with colours; each cycle is reported once, at the
    // function where it is found.
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let mut colour: BTreeMap<(&str, &str), Colour> =
        edges.keys().map(|k| (*k, Colour::White)).collect();
    let mut reported = Vec::new();
    for &start in edges.keys() {
        if colour[&start] != Colour::White {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        colour.insert(start, Colour::Grey);
        while let Some((node, i)) = stack.pop() {
            let next = edges[&node].get(i).copied();
            match next {
                None => {
                    colour.insert(node, Colour::Black);
                }
                Some(child) => {
                    stack.push((node, i + 1));
                    match colour[&child] {
                        Colour::White => {
                            colour.insert(child, Colour::Grey);
                            stack.push((child, 0));
                        }
                        Colour::Grey => {
                            let path: Vec<String> = stack
                                .iter()
                                .map(|((d, n), _)| format!("{d}:{n}"))
                                .skip_while(|s| *s != format!("{}:{}", child.0, child.1))
                                .collect();
                            reported.push((child, path.join(" -> ")));
                        }
                        Colour::Black => {}
                    }
                }
            }
        }
    }
    for ((domain, name), path) in reported {
        let location = format!("function {domain}:{name}");
        cx.report(
            &At::graph(&location),
            Rule::FunctionRecursive,
            format!(
                "cycle in model-local function references: {path} -> {domain}:{name}; model-local functions must not be recursive"
            ),
        );
    }
}

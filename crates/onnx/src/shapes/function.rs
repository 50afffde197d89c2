//! Calls of model-local functions, inferred by running the function body as
//! onnx's `ProcessCall` does: the body sees only the call's inputs (their
//! types, constants and propagated data), its own opset imports, and the
//! call's attributes bound where the body names them with `ref_attr_name`
//! (else the function's defaults); the outputs' types and data return to the
//! caller. A function that calls itself, directly or not, is an error.

use super::{Inferred, NodeCx, RuleResult, State};
use crate::proto::{AttributeProto, FunctionProto, NodeProto};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The model-local functions by (domain, name, overload).
pub(super) type Functions = BTreeMap<(String, String, String), FunctionProto>;

/// The key of the function a node calls.
pub(super) fn key_of(node: &NodeProto) -> (String, String, String) {
    (
        node.domain().to_string(),
        node.op_type().to_string(),
        node.overload().to_string(),
    )
}

/// `node` with its attribute references bound to the call's attributes, or
/// to the function's defaults; references to neither are dropped.
fn bind(node: &NodeProto, values: &HashMap<&str, &AttributeProto>) -> NodeProto {
    let mut node = node.clone();
    node.attribute = node
        .attribute
        .iter()
        .filter_map(|a| match a.ref_attr_name.as_deref() {
            Some(r) if !r.is_empty() => values.get(r).map(|v| {
                let mut b = (*v).clone();
                b.name = a.name.clone();
                b
            }),
            _ => Some(a.clone()),
        })
        .collect();
    node
}

impl State<'_> {
    /// Infers a call (node `index`) of the model-local function `f`.
    pub(super) fn call_function(
        &mut self,
        index: usize,
        f: &FunctionProto,
        cx: &mut NodeCx<'_>,
    ) -> RuleResult {
        let id = format!("{}:{}", f.domain(), f.name());
        if self.calls.contains(&id) {
            return Err(format!(
                "cycle detected in model-local function references: function '{id}' is \
                 already being expanded in the current call chain"
            ));
        }
        if self.depth >= super::control::MAX_DEPTH {
            return Ok(());
        }
        let mut opsets = HashMap::new();
        for o in &f.opset_import {
            let d = crate::check::canonical_domain(o.domain());
            opsets.insert(d.to_string(), o.version());
        }
        let mut attrs: HashMap<&str, &AttributeProto> = HashMap::new();
        for name in &f.attribute {
            if let Some(a) = cx.attr(name) {
                attrs.insert(name.as_str(), a);
            }
        }
        for default in &f.attribute_proto {
            let v = cx.attr(default.name()).unwrap_or(default);
            attrs.insert(default.name(), v);
        }
        let mut child_out = Inferred::default();
        let mut calls = self.calls.clone();
        calls.push(id.clone());
        let mut child = State {
            outer: None,
            shadowed: HashSet::new(),
            values: BTreeMap::new(),
            data: HashMap::new(),
            consts: HashSet::new(),
            floats: HashMap::new(),
            declared: HashMap::new(),
            produced: HashSet::new(),
            location: format!("{}/node[{index}]:{id}", self.location),
            ir_version: self.ir_version,
            depth: self.depth + 1,
            functions: self.functions.clone(),
            calls,
            symbols: std::rc::Rc::clone(&self.symbols),
            out: &mut child_out,
        };
        for (i, param) in f.input.iter().enumerate() {
            if !cx.has_input(i) {
                continue;
            }
            if let Some(t) = cx.input(i) {
                child.values.insert(param.clone(), t.clone());
            }
            if let Some(d) = cx.data(i) {
                child.data.insert(param.clone(), d.to_vec());
                if cx.consts.get(i).copied().unwrap_or(false) {
                    child.consts.insert(param.clone());
                }
            }
            if let Some(v) = cx.float_data(i) {
                child.floats.insert(param.clone(), v);
            }
        }
        for (i, n) in f.node.iter().enumerate() {
            let bound = bind(n, &attrs);
            child.node(i, &bound, &opsets);
        }
        for (i, name) in f.output.iter().enumerate() {
            if let Some(t) = child.values.get(name) {
                cx.set(i, t.clone());
            }
            if let Some(d) = child.data.get(name) {
                cx.set_data(i, d.clone());
            }
        }
        drop(child);
        self.out.diagnostics.extend(child_out.diagnostics);
        self.out.unsupported.extend(child_out.unsupported);
        Ok(())
    }
}

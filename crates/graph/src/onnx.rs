//! The ONNX adapter: a [`Picture`] of a `ModelProto`. One box per node
//! (type, name, attributes; the initializers it reads as `W ⟨64×3×7×7⟩`
//! lines named after the schema's input), graph inputs that are not
//! initializers and graph outputs as their own boxes, edges labelled with the
//! declared types (`value_info`, inputs, outputs) or, with
//! [`Options::shapes`], with what `netport_onnx::shapes::infer_shapes`
//! finds. Graph attributes (If's branches, Loop's and Scan's bodies) become
//! clusters inside their node.

use crate::build::{Builder, MAX_NESTING, format_float, list};
use crate::family::Family;
use crate::picture::{NodeKind, Picture};
use crate::text::{clip, shape_text, type_text};
use netport_onnx::proto::attribute_proto::AttributeType;
use netport_onnx::proto::{AttributeProto, GraphProto, ModelProto, TensorProto, TypeProto};
use netport_onnx::shapes::{TensorType, infer_shapes, tensor_type_of};
use std::collections::HashMap;

/// What the ONNX adapter adds beyond the model's own declarations.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Label edges with the types and shapes shape inference finds, not
    /// only the declared ones.
    pub shapes: bool,
}

/// The picture of an ONNX model.
pub fn picture(model: &ModelProto, options: &Options) -> Picture {
    let Some(graph) = model.graph.as_ref() else {
        return Builder::new("").finish();
    };
    let mut opsets = HashMap::new();
    for o in &model.opset_import {
        opsets.insert(canonical(o.domain()).to_owned(), o.version());
    }
    let mut b = Builder::new(graph.name());
    declare(&mut b, graph);
    if options.shapes {
        for (name, t) in &infer_shapes(model).values {
            if let Some(text) = tensor_text(t) {
                b.labels.insert(name.clone(), text);
            }
        }
    }
    let mut reader = Reader {
        b,
        opsets,
        inits: Vec::new(),
    };
    reader.graph(graph);
    reader.b.finish()
}

struct Reader<'a> {
    b: Builder,
    opsets: HashMap<String, i64>,
    /// Initializers of the graphs being read, outermost first.
    inits: Vec<HashMap<&'a str, &'a TensorProto>>,
}

impl<'a> Reader<'a> {
    fn graph(&mut self, g: &'a GraphProto) {
        let inits: HashMap<&str, &TensorProto> =
            g.initializer.iter().map(|t| (t.name(), t)).collect();
        for vi in &g.input {
            let name = vi.name();
            if !name.is_empty() && !inits.contains_key(name) && !self.b.is_local(name) {
                self.b.input(name);
            }
        }
        self.inits.push(inits);
        // Outputs first, then inputs: a model out of topological order still
        // gets its edges.
        let mut ids = Vec::with_capacity(g.node.len());
        for node in &g.node {
            let op = node.op_type();
            let id = self.b.node(NodeKind::Op, op, node.name(), Family::of(op));
            self.b.pic.nodes[id].attributes = node
                .attribute
                .iter()
                .filter_map(|a| Some((a.name().to_owned(), attribute_text(a)?)))
                .collect();
            for out in node.output.iter().filter(|o| !o.is_empty()) {
                self.b.define(out, id);
            }
            ids.push(id);
        }
        for (node, &id) in g.node.iter().zip(&ids) {
            for (slot, input) in node.input.iter().enumerate() {
                if input.is_empty() {
                    continue;
                }
                if !self.b.is_local(input)
                    && let Some(t) = self.initializer(input)
                {
                    let name = self.slot_name(node.domain(), node.op_type(), slot, input);
                    let line = format!(
                        "{name} {}",
                        shape_text(&t.dims.iter().map(i64::to_string).collect::<Vec<_>>())
                    );
                    self.b.pic.nodes[id].initializers.push(clip(&line));
                    continue;
                }
                if let Some(from) = self.b.resolve(input) {
                    self.b.edge(from, id, input);
                }
            }
            if self.b.nesting() >= MAX_NESTING {
                continue;
            }
            for a in &node.attribute {
                let bodies = a.g.iter().map(|g| (a.name().to_owned(), g)).chain(
                    a.graphs
                        .iter()
                        .enumerate()
                        .map(|(i, g)| (format!("{}[{i}]", a.name()), g)),
                );
                for (label, body) in bodies {
                    self.b.push_body(id, &label);
                    declare(&mut self.b, body);
                    self.graph(body);
                    self.b.pop_body();
                }
            }
        }
        self.inits.pop();
        for vi in &g.output {
            if !vi.name().is_empty() {
                self.b.output(vi.name());
            }
        }
    }

    /// The initializer `name` of the innermost graph that has it.
    fn initializer(&self, name: &str) -> Option<&'a TensorProto> {
        self.inits.iter().rev().find_map(|m| m.get(name).copied())
    }

    /// The schema's name of input `slot` of the op (`W`, `B`, ...), or the
    /// value's own name when the op is unknown.
    fn slot_name(&self, domain: &str, op: &str, slot: usize, value: &str) -> String {
        let domain = canonical(domain);
        let opset = self.opsets.get(domain).copied().unwrap_or(i64::MAX);
        let schema = netport_onnx::schema::lookup(domain, op, opset);
        let param = schema.and_then(|s| s.inputs.get(slot).or_else(|| s.inputs.last()));
        param.map_or_else(|| value.to_owned(), |p| p.name.to_owned())
    }
}

/// `ai.onnx` is spelled `""` too.
fn canonical(domain: &str) -> &str {
    if domain == "ai.onnx" { "" } else { domain }
}

/// Labels for the values a graph declares (inputs, outputs, value_info,
/// initializers), kept where a label is already known.
fn declare(b: &mut Builder, g: &GraphProto) {
    for vi in g.input.iter().chain(&g.output).chain(&g.value_info) {
        if let Some(text) = vi.r#type.as_ref().and_then(type_proto_text) {
            b.labels.entry(vi.name().to_owned()).or_insert(text);
        }
    }
    for t in &g.initializer {
        let dims: Vec<String> = t.dims.iter().map(i64::to_string).collect();
        if let Some(text) = type_text(dtype_name(t.data_type()).as_deref(), Some(&dims)) {
            b.labels.entry(t.name().to_owned()).or_insert(text);
        }
    }
}

fn type_proto_text(tp: &TypeProto) -> Option<String> {
    tensor_text(&tensor_type_of(tp)?)
}

fn tensor_text(t: &TensorType) -> Option<String> {
    let dims: Option<Vec<String>> = t
        .shape
        .as_ref()
        .map(|s| s.iter().map(ToString::to_string).collect());
    type_text(dtype_name(t.elem_type).as_deref(), dims.as_deref())
}

/// `float32`, `int64`, ...: netport's names, else ONNX's in lower case;
/// `None` for UNDEFINED.
fn dtype_name(code: i32) -> Option<String> {
    if code == 0 {
        return None;
    }
    match netport_tensor::DType::from_onnx(code) {
        Some(d) => Some(d.to_string()),
        None => netport_onnx::dtype::name(code).map(str::to_lowercase),
    }
}

/// An attribute's value as one short line; `None` for graphs (drawn as
/// clusters).
fn attribute_text(a: &AttributeProto) -> Option<String> {
    if let Some(r) = a.ref_attr_name.as_deref() {
        return Some(clip(&format!("@{r}")));
    }
    let kind = a.r#type.and_then(|t| AttributeType::try_from(t).ok());
    let text = match kind {
        Some(AttributeType::Graph | AttributeType::Graphs) => return None,
        Some(AttributeType::Float) => format_float(a.f()),
        Some(AttributeType::Int) => a.i().to_string(),
        Some(AttributeType::String) => String::from_utf8_lossy(a.s()).into_owned(),
        Some(AttributeType::Tensor) => a.t.as_ref().map_or_else(String::new, tensor_attr_text),
        Some(AttributeType::Floats) => list(&a.floats, |f| format_float(*f)),
        Some(AttributeType::Ints) => list(&a.ints, i64::to_string),
        Some(AttributeType::Strings) => {
            list(&a.strings, |s| String::from_utf8_lossy(s).into_owned())
        }
        Some(AttributeType::Tensors) => list(&a.tensors, tensor_attr_text),
        _ if a.g.is_some() || !a.graphs.is_empty() => return None,
        _ if a.t.is_some() => a.t.as_ref().map_or_else(String::new, tensor_attr_text),
        _ if !a.ints.is_empty() => list(&a.ints, i64::to_string),
        _ if !a.floats.is_empty() => list(&a.floats, |f| format_float(*f)),
        _ if a.i.is_some() => a.i().to_string(),
        _ if a.f.is_some() => format_float(a.f()),
        _ if a.s.is_some() => String::from_utf8_lossy(a.s()).into_owned(),
        _ => "…".to_owned(),
    };
    Some(clip(&text))
}

fn tensor_attr_text(t: &TensorProto) -> String {
    let dims: Vec<String> = t.dims.iter().map(i64::to_string).collect();
    type_text(dtype_name(t.data_type()).as_deref(), Some(&dims)).unwrap_or_default()
}

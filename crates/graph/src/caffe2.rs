//! The Caffe2 adapter: a [`Picture`] of a predict net, with the shapes of
//! its weights from the init net when there is one. Blobs are read in op
//! order, so an op that writes a blob in place (`Relu X -> X`) makes a new
//! version of it, as Caffe2 runs it. Weights (blobs the init net fills) are
//! lines inside the ops that read them; the other external inputs and the
//! external outputs are boxes. Without an init net, an external input that
//! no op reads as its first input (and that is not the net's first external
//! input) is taken for a weight. Nets held in arguments (`If`'s
//! `then_net`, `RecurrentNetwork`'s `step_net`, ...) become clusters.

use crate::build::{Builder, MAX_NESTING, format_float, list};
use crate::family::Family;
use crate::picture::{NodeKind, Picture};
use crate::text::{clip, shape_text};
use netport_caffe2::proto::{Argument, NetDef, OperatorDef};
use netport_caffe2::summary::NetSummary;
use std::collections::{HashMap, HashSet};

/// The picture of a predict net, with `init` (the pair's init net) giving
/// the shapes of the weights.
pub fn picture(predict: &NetDef, init: Option<&NetDef>) -> Picture {
    let mut b = Builder::new(predict.name());
    // Blob -> the line shown in the op that reads it.
    let mut weights: HashMap<String, Option<String>> = HashMap::new();
    if let Some(init) = init {
        for fill in NetSummary::of(init).fills {
            let shape = fill
                .shape
                .as_ref()
                .map(|dims| shape_text(&dims.iter().map(i64::to_string).collect::<Vec<_>>()));
            weights.insert(fill.output.clone(), shape);
        }
    } else {
        let first_slot: HashSet<&str> = predict
            .op
            .iter()
            .filter_map(|op| op.input.first().map(String::as_str))
            .collect();
        for (i, blob) in predict.external_input.iter().enumerate() {
            if i > 0 && !first_slot.contains(blob.as_str()) {
                weights.insert(blob.clone(), None);
            }
        }
    }
    for blob in &predict.external_input {
        if !weights.contains_key(blob) && !b.is_local(blob) {
            b.input(blob);
        }
    }
    let mut reader = Reader { b, weights };
    reader.ops(&predict.op);
    for blob in &predict.external_output {
        reader.b.output(blob);
    }
    reader.b.finish()
}

struct Reader {
    b: Builder,
    weights: HashMap<String, Option<String>>,
}

impl Reader {
    fn ops(&mut self, ops: &[OperatorDef]) {
        for op in ops {
            let ty = op.r#type();
            let id = self.b.node(NodeKind::Op, ty, op.name(), Family::of(ty));
            self.b.pic.nodes[id].attributes = op
                .arg
                .iter()
                .filter_map(|a| Some((a.name().to_owned(), argument_text(a)?)))
                .collect();
            for (slot, blob) in op.input.iter().enumerate() {
                if blob.is_empty() {
                    continue;
                }
                if !self.b.is_local(blob)
                    && let Some(shape) = self.weights.get(blob)
                {
                    let line = match shape {
                        Some(shape) => format!("{} {shape}", slot_name(ty, slot, blob)),
                        None => blob.clone(),
                    };
                    self.b.pic.nodes[id].initializers.push(clip(&line));
                    continue;
                }
                let from = match self.b.resolve(blob) {
                    Some(from) => from,
                    // Read before anything writes it and not declared: an
                    // input the net does not list.
                    None => self.b.input(blob),
                };
                self.b.edge(from, id, blob);
            }
            if self.b.nesting() < MAX_NESTING {
                for a in &op.arg {
                    let nets = a.n.iter().map(|n| (a.name().to_owned(), n)).chain(
                        a.nets
                            .iter()
                            .enumerate()
                            .map(|(i, n)| (format!("{}[{i}]", a.name()), n)),
                    );
                    for (label, net) in nets {
                        self.b.push_body(id, &label);
                        self.ops(&net.op);
                        for blob in &net.external_output {
                            self.b.output(blob);
                        }
                        self.b.pop_body();
                    }
                }
            }
            for blob in op.output.iter().filter(|o| !o.is_empty()) {
                self.b.define(blob, id);
            }
        }
    }
}

/// The name Netron gives input `slot` of the common ops, else the blob's.
fn slot_name(op: &str, slot: usize, blob: &str) -> String {
    let names: &[&str] = match op {
        "Conv" | "ConvTranspose" => &["X", "filter", "bias"],
        "FC" | "FCTransposed" => &["X", "W", "b"],
        "SpatialBN" => &["X", "scale", "bias", "mean", "var"],
        "PRelu" => &["X", "slope"],
        "Mul" | "Add" | "Sub" | "Div" => &["A", "B"],
        _ => &[],
    };
    names
        .get(slot)
        .map_or_else(|| blob.to_owned(), |n| (*n).to_owned())
}

/// An argument's value as one short line; `None` for nets (drawn as
/// clusters).
fn argument_text(a: &Argument) -> Option<String> {
    if a.n.is_some() || !a.nets.is_empty() {
        return None;
    }
    let text = if let Some(i) = a.i {
        i.to_string()
    } else if let Some(f) = a.f {
        format_float(f)
    } else if let Some(s) = a.s.as_ref() {
        String::from_utf8_lossy(s).into_owned()
    } else if !a.ints.is_empty() {
        list(&a.ints, i64::to_string)
    } else if !a.floats.is_empty() {
        list(&a.floats, |f| format_float(*f))
    } else if !a.strings.is_empty() {
        list(&a.strings, |s| String::from_utf8_lossy(s).into_owned())
    } else if let Some(t) = a.t.as_ref() {
        shape_text(&t.dims.iter().map(i64::to_string).collect::<Vec<_>>())
    } else if !a.tensors.is_empty() || !a.qtensors.is_empty() {
        "…".to_owned()
    } else {
        "[]".to_owned()
    };
    Some(clip(&text))
}

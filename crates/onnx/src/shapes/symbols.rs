//! The names onnx gives to the dims inference cannot know (its
//! `SymbolTable`): every unknown dim of an inferred output becomes a fresh
//! symbol `unk__N` (never one the model already uses), so that later merges
//! treat it as onnx does: one symbol meeting another is unknown, a symbol
//! kept by Concat or a merge is not replaced by a later one. The symbols
//! are turned back into unknown dims in what inference answers.

use super::Dim;
use crate::proto::GraphProto;
use crate::proto::tensor_shape_proto::dimension::Value as DimValue;
use crate::proto::type_proto::Value as TypeValue;
use std::collections::HashSet;

/// The symbols a model uses and those made up for it.
#[derive(Debug, Default)]
pub(super) struct Symbols {
    used: HashSet<String>,
    made: HashSet<String>,
    next: u64,
}

/// The most graphs visited when collecting a model's symbols.
const MAX_GRAPHS: usize = 10_000;

impl Symbols {
    /// The symbols of `graph` and of its subgraphs.
    pub(super) fn of(graph: &GraphProto) -> Self {
        let mut s = Symbols::default();
        let mut stack = vec![graph];
        let mut seen = 0;
        while let Some(g) = stack.pop() {
            seen += 1;
            if seen > MAX_GRAPHS {
                break;
            }
            for vi in g.input.iter().chain(&g.output).chain(&g.value_info) {
                if let Some(TypeValue::TensorType(t)) =
                    vi.r#type.as_ref().and_then(|t| t.value.as_ref())
                    && let Some(shape) = &t.shape
                {
                    for d in &shape.dim {
                        if let Some(DimValue::DimParam(p)) = &d.value {
                            s.used.insert(p.clone());
                        }
                    }
                }
            }
            for n in &g.node {
                for a in &n.attribute {
                    stack.extend(a.g.iter());
                    stack.extend(a.graphs.iter());
                }
            }
        }
        s
    }

    /// A fresh symbol.
    fn fresh(&mut self) -> String {
        loop {
            self.next += 1;
            let name = format!("unk__{}", self.next);
            if !self.used.contains(&name) {
                self.made.insert(name.clone());
                return name;
            }
        }
    }

    /// Names every unknown dim of `dims` (onnx's `MaterializeSymbolicShape`).
    pub(super) fn materialize(&mut self, dims: &mut [Dim]) {
        for d in dims {
            if *d == Dim::Unknown {
                *d = Dim::Param(self.fresh());
            }
        }
    }

    /// `d`, unknown again when it is a made-up symbol.
    pub(super) fn forget(&self, d: &mut Dim) {
        if let Dim::Param(p) = d
            && self.made.contains(p)
        {
            *d = Dim::Unknown;
        }
    }
}

//! Control flow: If, Loop and Scan, whose bodies are inferred as subgraphs
//! that see the outer scope's values (onnx's `GraphInferencer`), then
//! combined as onnx's `IfInferenceFunction` (branch outputs merged before
//! opset 11, unioned after), `LoopInferenceFunction` (loop-carried values
//! keep their element type only, scan outputs gain a leading unknown dim)
//! and `ScanInferenceFunction` (opset 8 with its batch dim, 9 and later with
//! scan axes).

use super::{Dim, Inferred, NodeCx, Outer, RuleResult, State, TensorType, merge, tensor_type_of};
use crate::proto::NodeProto;
use crate::proto::tensor_proto::DataType;
use std::collections::BTreeMap;
use std::collections::{HashMap, HashSet};

/// Subgraphs nested deeper than this are not inferred (a hostile file may
/// nest thousands).
pub(super) const MAX_DEPTH: usize = 64;

/// Whether `op` (of ai.onnx) is inferred here rather than by a registry rule.
pub(super) fn is_control_flow(op: &str) -> bool {
    matches!(op, "If" | "Loop" | "Scan")
}

/// The inference of an If, Loop or Scan node.
pub(super) fn infer(
    st: &mut State<'_>,
    index: usize,
    cx: &mut NodeCx<'_>,
    opsets: &HashMap<String, i64>,
) -> RuleResult {
    match cx.node.op_type() {
        "If" => if_(st, index, cx, opsets),
        "Loop" => loop_(st, index, cx, opsets),
        "Scan" if cx.version >= 9 => scan(st, index, cx, opsets),
        "Scan" => scan_v8(st, index, cx, opsets),
        _ => Ok(()),
    }
}

/// The types of a subgraph's outputs; `None` for one that is unknown or not
/// a tensor.
type Outputs = Vec<Option<TensorType>>;

impl State<'_> {
    /// Infers the graph attribute `attr` of node `index` with `inputs` as
    /// the types passed to its inputs, as onnx's `doInferencing`: the
    /// subgraph sees this scope's values (but not its constants), its
    /// diagnostics and unsupported ops join this graph's, and it answers its
    /// outputs' types. `Ok(None)` when inference is skipped (too deep).
    fn subgraph(
        &mut self,
        index: usize,
        node: &NodeProto,
        attr: &str,
        inputs: &[Option<TensorType>],
        opsets: &HashMap<String, i64>,
    ) -> Result<Option<Outputs>, String> {
        let Some(g) = node
            .attribute
            .iter()
            .find(|a| a.name() == attr)
            .and_then(|a| a.g.as_ref())
        else {
            return Err(format!("attribute {attr} does not contain a graph"));
        };
        if self.depth >= MAX_DEPTH {
            return Ok(None);
        }
        if (self.ir_version >= 4 && g.input.len() != inputs.len()) || inputs.len() > g.input.len() {
            return Err(format!(
                "graph {attr} has {} inputs but {} were provided",
                g.input.len(),
                inputs.len()
            ));
        }
        let mut child_out = Inferred::default();
        // the subgraph reads this scope's values in place, not a copy
        let outer = Outer {
            values: &self.values,
            data: &self.data,
            consts: &self.consts,
            shadowed: &self.shadowed,
            parent: self.outer,
        };
        let mut child = State {
            outer: Some(&outer),
            shadowed: g.input.iter().map(|vi| vi.name().to_string()).collect(),
            values: BTreeMap::new(),
            data: HashMap::new(),
            consts: HashSet::new(),
            floats: HashMap::new(),
            declared: HashMap::new(),
            produced: HashSet::new(),
            location: format!("{}/node[{index}]:{attr}", self.location),
            ir_version: self.ir_version,
            depth: self.depth + 1,
            functions: std::rc::Rc::clone(&self.functions),
            calls: self.calls.clone(),
            symbols: std::rc::Rc::clone(&self.symbols),
            out: &mut child_out,
        };
        child.seed(g);
        for (vi, passed) in g.input.iter().zip(inputs) {
            let declared = vi.r#type.as_ref().and_then(tensor_type_of);
            let mut t = match (passed, declared) {
                (Some(p), Some(d)) => Some(
                    merge(p, &d)
                        .map_err(|(_, m)| format!("input '{}' of graph {attr}: {m}", vi.name()))?,
                ),
                (p, d) => p.clone().or(d),
            };
            // onnx names the unknown dims of the inputs it passes
            if passed.is_some()
                && let Some(dims) = t.as_mut().and_then(|t| t.shape.as_mut())
            {
                self.symbols.borrow_mut().materialize(dims);
            }
            if let Some(t) = t {
                child.values.insert(vi.name().to_string(), t);
            }
        }
        for (i, n) in g.node.iter().enumerate() {
            child.node(i, n, opsets);
        }
        let outputs = g
            .output
            .iter()
            .map(|vi| {
                let declared = vi.r#type.as_ref().and_then(tensor_type_of);
                if child.produced.contains(vi.name()) || declared.is_none() {
                    child.value(vi.name()).cloned()
                } else {
                    declared
                }
            })
            .collect();
        drop(child);
        self.out.diagnostics.extend(child_out.diagnostics);
        self.out.unsupported.extend(child_out.unsupported);
        Ok(Some(outputs))
    }
}

/// If: both branches inferred; before opset 11 the else branch's shape is
/// merged into the then branch's (a conflict is an error), from 11 on the
/// two are unioned (dims that differ become unknown; from 13 on a branch of
/// unknown rank makes the output's rank unknown).
fn if_(
    st: &mut State<'_>,
    index: usize,
    cx: &mut NodeCx<'_>,
    opsets: &HashMap<String, i64>,
) -> RuleResult {
    let node = cx.node;
    let then = st.subgraph(index, node, "then_branch", &[], opsets)?;
    let else_ = st.subgraph(index, node, "else_branch", &[], opsets)?;
    let (Some(then), Some(else_)) = (then, else_) else {
        return Ok(());
    };
    if then.len() != else_.len() {
        return Err(format!(
            "then_branch and else_branch produce different number of outputs: {} != {}",
            then.len(),
            else_.len()
        ));
    }
    if then.len() != cx.output_count() {
        return Err(format!(
            "If node has {} outputs but subgraphs produce {}",
            cx.output_count(),
            then.len()
        ));
    }
    for (i, (t, e)) in then.into_iter().zip(else_).enumerate() {
        let (Some(t), Some(e)) = (t, e) else {
            continue;
        };
        if t.elem_type != e.elem_type {
            return Err(format!(
                "mismatched tensor element type for output {i}: then {} else {}",
                t.elem_type, e.elem_type
            ));
        }
        let shape = if cx.version < 11 {
            merge(&e, &t)
                .map_err(|(_, m)| format!("output {i}: {m}"))?
                .shape
        } else {
            let else_shape = match (&e.shape, cx.version) {
                (Some(s), _) => Some(s.clone()),
                // If-11 reads a missing shape as rank 0
                (None, 11) => Some(Vec::new()),
                (None, _) => None,
            };
            union(t.shape.as_deref(), else_shape.as_deref())
        };
        cx.set(
            i,
            TensorType {
                elem_type: t.elem_type,
                shape,
            },
        );
    }
    Ok(())
}

/// onnx's `UnionShapeInfo`: equal dims stay, others become unknown; ranks
/// that differ (or one unknown) give an unknown rank.
fn union(a: Option<&[Dim]>, b: Option<&[Dim]>) -> Option<Vec<Dim>> {
    let (a, b) = (a?, b?);
    if a.len() != b.len() {
        return None;
    }
    Some(
        a.iter()
            .zip(b)
            .map(|(x, y)| if x == y { x.clone() } else { Dim::Unknown })
            .collect(),
    )
}

/// Loop(M, cond, v...): the body gets an int64 iteration number, cond's type
/// and the loop-carried values without their shapes; outputs are the
/// loop-carried values (element type only) then the scan outputs (the body's
/// shape after a leading unknown dim).
fn loop_(
    st: &mut State<'_>,
    index: usize,
    cx: &mut NodeCx<'_>,
    opsets: &HashMap<String, i64>,
) -> RuleResult {
    let n_in = cx.input_count();
    if n_in < 2 {
        return Ok(());
    }
    let n_state = n_in - 2;
    let mut inputs = vec![
        Some(TensorType::unranked(DataType::Int64 as i32)),
        cx.input(1).cloned(),
    ];
    for i in 2..n_in {
        let t = cx.input(i).map(|t| TensorType::unranked(t.elem_type));
        if let Some(t) = &t {
            cx.set(i - 2, t.clone());
        }
        inputs.push(t);
    }
    let Some(body) = st.subgraph(index, cx.node, "body", &inputs, opsets)? else {
        return Ok(());
    };
    if body.is_empty() {
        return Ok(());
    }
    let n_out = cx.output_count();
    if body.len() != n_out + 1 {
        return Err(format!(
            "graph attribute inferencing returned type information for {} outputs, expected {}",
            body.len(),
            n_out + 1
        ));
    }
    for (i, b) in body.into_iter().skip(1).enumerate() {
        let Some(b) = b else {
            continue;
        };
        let carried = cx.outputs[i].as_ref().map_or(0, |t| t.elem_type);
        if carried != 0 && b.elem_type != 0 && carried != b.elem_type {
            return Err(format!(
                "loop output {i}: element type {} of the body differs from {carried}",
                b.elem_type
            ));
        }
        let elem_type = if carried != 0 { carried } else { b.elem_type };
        let shape = if i < n_state {
            None
        } else {
            b.shape.map(|s| {
                let mut dims = vec![Dim::Unknown];
                dims.extend(s);
                dims
            })
        };
        cx.set(i, TensorType { elem_type, shape });
    }
    Ok(())
}

/// The attribute `name` as axes, `n` zeros by default; an error when the
/// count differs from `n`.
fn scan_axes(cx: &NodeCx<'_>, name: &str, n: usize) -> Result<Vec<i64>, String> {
    match cx.attr_ints(name) {
        Some(a) if a.len() != n => Err(format!(
            "number of {name} specified ({}) is not equal to the number of scan values ({n})",
            a.len()
        )),
        Some(a) => Ok(a),
        None => Ok(vec![0; n]),
    }
}

/// Merges a dim into the running sequence length as onnx's
/// `mergeInDimensionInfo`: a value wins over a symbol, two values must agree.
fn merge_dim(into: &mut Dim, d: &Dim, what: &str) -> Result<(), String> {
    match (&*into, d) {
        (Dim::Fixed(a), Dim::Fixed(b)) if a != b => Err(format!(
            "{what}: dims {a} and {b} of the scan inputs differ"
        )),
        (_, Dim::Fixed(_)) | (Dim::Unknown, Dim::Param(_)) => {
            *into = d.clone();
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Scan (opset 9 on): loop-state inputs pass to the body and to their
/// outputs as they are; scan inputs lose their scan axis; scan outputs gain
/// the sequence length at their output axis.
fn scan(
    st: &mut State<'_>,
    index: usize,
    cx: &mut NodeCx<'_>,
    opsets: &HashMap<String, i64>,
) -> RuleResult {
    let n_in = cx.input_count();
    let n_out = cx.output_count();
    let n_scan_in = usize::try_from(cx.attr_i("num_scan_inputs", 0)).unwrap_or(usize::MAX);
    if n_scan_in > n_in {
        return Err(format!(
            "num_scan_inputs ({n_scan_in}) cannot exceed the number of Scan inputs ({n_in})"
        ));
    }
    let n_state = n_in - n_scan_in;
    if n_state > n_out {
        return Err(format!(
            "the number of outputs of the Scan ({n_out}) should equal the sum of the number of \
             loop state variables ({n_state}) and the number of scan-outputs"
        ));
    }
    let in_axes = scan_axes(cx, "scan_input_axes", n_scan_in)?;
    let out_axes = scan_axes(cx, "scan_output_axes", n_out - n_state)?;
    let mut seq_len = Dim::Unknown;
    let mut inputs = Vec::with_capacity(n_in);
    for i in 0..n_in {
        let Some(t) = cx.input(i).cloned() else {
            // onnx requires every Scan input's type; ours may be unknown
            // where onnx knows it (a sequence), so nothing more is inferred
            return Ok(());
        };
        if i < n_state {
            cx.set(i, t.clone());
            inputs.push(Some(t));
            continue;
        }
        match &t.shape {
            Some(dims) => {
                let a = super::axis(in_axes[i - n_state], dims.len())
                    .map_err(|e| format!("scan_input_axes: {e}"))?;
                merge_dim(&mut seq_len, &dims[a], "sequence length")?;
                let mut rest = dims.clone();
                rest.remove(a);
                inputs.push(Some(TensorType::new(t.elem_type, rest)));
            }
            None => inputs.push(Some(t)),
        }
    }
    let Some(body) = st.subgraph(index, cx.node, "body", &inputs, opsets)? else {
        return Ok(());
    };
    if body.is_empty() {
        return Ok(());
    }
    if body.len() != n_out {
        return Err(format!(
            "graph attribute inferencing returned type information for {} outputs, expected {n_out}",
            body.len()
        ));
    }
    for (i, b) in body.into_iter().enumerate() {
        let Some(b) = b else {
            continue;
        };
        if i < n_state {
            let current = cx.outputs[i].clone();
            let merged = match current {
                Some(c) => {
                    let shape_only = TensorType {
                        elem_type: 0,
                        shape: b.shape,
                    };
                    merge(&shape_only, &c).map_err(|(_, m)| format!("scan output {i}: {m}"))?
                }
                None => b,
            };
            cx.set(i, merged);
        } else {
            let shape = match b.shape {
                Some(s) => {
                    let rank = s.len() + 1;
                    let a = super::axis(out_axes[i - n_state], rank)
                        .map_err(|e| format!("scan_output_axes: {e}"))?;
                    let mut dims = s;
                    dims.insert(a, seq_len.clone());
                    Some(dims)
                }
                None => None,
            };
            cx.set(
                i,
                TensorType {
                    elem_type: b.elem_type,
                    shape,
                },
            );
        }
    }
    Ok(())
}

/// Scan at opset 8: input 0 is sequence_lens, every other input and output
/// has a leading batch dim, and scan inputs and outputs the sequence dim
/// after it.
fn scan_v8(
    st: &mut State<'_>,
    index: usize,
    cx: &mut NodeCx<'_>,
    opsets: &HashMap<String, i64>,
) -> RuleResult {
    let n_in = cx.input_count();
    let n_scan_in = usize::try_from(cx.attr_i("num_scan_inputs", 0)).unwrap_or(usize::MAX);
    if n_scan_in.saturating_add(1) > n_in {
        return Err(format!(
            "num_scan_inputs ({n_scan_in}) plus the sequence_lens input cannot exceed the \
             number of Scan inputs ({n_in})"
        ));
    }
    let n_state = n_in - 1 - n_scan_in;
    let mut batch = Dim::Unknown;
    let mut seq_len = Dim::Unknown;
    let mut inputs = Vec::with_capacity(n_in - 1);
    for i in 1..n_in {
        let Some(t) = cx.input(i).cloned() else {
            return Ok(());
        };
        let is_state = i - 1 < n_state;
        if is_state {
            cx.set(i - 1, t.clone());
        }
        match &t.shape {
            Some(dims) => {
                let drop = if is_state { 1 } else { 2 };
                if !is_state && dims.len() > 2 {
                    merge_dim(&mut batch, &dims[0], "batch size")?;
                    merge_dim(&mut seq_len, &dims[1], "sequence length")?;
                }
                let rest = dims.get(drop..).map(<[_]>::to_vec).unwrap_or_default();
                inputs.push(Some(TensorType::new(t.elem_type, rest)));
            }
            None => inputs.push(Some(t)),
        }
    }
    let Some(body) = st.subgraph(index, cx.node, "body", &inputs, opsets)? else {
        return Ok(());
    };
    if body.is_empty() {
        return Ok(());
    }
    let n_out = cx.output_count();
    if body.len() != n_out {
        return Err(format!(
            "graph attribute inferencing returned type information for {} outputs, expected {n_out}",
            body.len()
        ));
    }
    for (i, b) in body.into_iter().enumerate() {
        let Some(b) = b else {
            continue;
        };
        let is_state = i < n_state;
        let mut current = cx.outputs[i].clone().unwrap_or(TensorType {
            elem_type: 0,
            shape: None,
        });
        if !is_state {
            current.elem_type = b.elem_type;
        }
        if let Some(s) = b.shape {
            let mut dims = vec![batch.clone()];
            if !is_state {
                dims.push(seq_len.clone());
            }
            dims.extend(s);
            let inferred = TensorType {
                elem_type: 0,
                shape: Some(dims),
            };
            current =
                merge(&inferred, &current).map_err(|(_, m)| format!("scan output {i}: {m}"))?;
        }
        cx.set(i, current);
    }
    Ok(())
}

//! ONNX LSTM, GRU and RNN to Caffe2, op for op as Caffe2Backend's
//! `_create_rnn_variant` writes them (caffe2/python/onnx/backend.py with
//! `rnn_cell.LSTM`, `rnn_cell.BasicRNN`, `gru_cell.GRU` and
//! `recurrent.recurrent_net`, forward only):
//!
//! * weight reshaping (Reshape/Squeeze of W, R, B, per-direction Slices and
//!   the gate reordering ONNX `iofc` -> Caffe2 `ifoc` for LSTM and `zrh` ->
//!   `rzh` for GRU) goes to the init net when W, R and B are known there
//!   (initializers or values the init net computes), else before the
//!   predict ops;
//! * per direction: Slices of the initial states, the input projection
//!   (`FC`, axis 2), a `RecurrentNetwork` op whose `step_net` argument holds
//!   the cell (FC + Sum + LSTMUnit, FC + Sum + Tanh/Relu, or the GRU's
//!   Split/FC/Sigmoid/Mul/Concat + GRUUnit, the reset gate applied after
//!   the recurrent FC with `linear_before_reset=1` or to the previous state
//!   before it with 0, as `gru_cell`); the backward direction of a
//!   bidirectional node runs over the input reversed with
//!   `ReversePackedSegs` (lengths made from the input's shape, or
//!   `sequence_lens`);
//! * with `sequence_lens`, as the cells with `seq_lengths`: the lengths are
//!   the last input of `RecurrentNetwork` and of its step net; LSTMUnit and
//!   GRUUnit read them before `timestep` (`sequence_lengths=1`), the
//!   BasicRNN step masks its new state with `GT`/`LE` of the lengths and
//!   the timestep (cast to float, `Mul` on the batch axis, `Add`), so that
//!   a sequence past its end keeps its states;
//!   `VariableLengthSequencePadding` zeroes `Y` past each length (forward:
//!   in place before the ExpandDims; bidirectional: the concatenated
//!   directions);
//! * the outputs: `ExpandDims` of the sequence and `Copy` of the last
//!   states (forward), or Concat/Reshape/Transpose and Concat
//!   (bidirectional).
//!
//! What the backend cannot do, or does so that the net computes something
//! else than the ONNX node, is refused with the reason: `direction=reverse`,
//! any attribute besides `hidden_size`/`direction` (`activations` for RNN,
//! `linear_before_reset` for GRU; others only at their defaults), peepholes,
//! omitted inputs, outputs, B or initial states, a bidirectional `Y` not
//! read back through the `Transpose(0,2,1,3)` + `Reshape(.., .., -1)`
//! pattern that undoes the backend's own reshape.

use super::Cx;
use super::ops::{Fail, arg_f, arg_i, arg_ints, arg_s, in_table};
use crate::error::invalid;
use netport_caffe2::proto::{Argument, NetDef, OperatorDef};
use netport_onnx::proto::{GraphProto, NodeProto};
use std::collections::HashSet;

type R<T> = Result<T, Fail>;

fn no(reason: impl Into<String>) -> Fail {
    Fail::Unsupported(reason.into())
}

/// What one RNN node becomes.
pub(super) struct RnnOps {
    /// Weight reshaping for the init net (empty when it must run in the
    /// predict net, then it leads `ops`).
    pub init_ops: Vec<OperatorDef>,
    /// The ops of the node's own net.
    pub ops: Vec<OperatorDef>,
    /// The backend's `interface_blobs`: what its ops read and do not make,
    /// listed as external inputs of the predict net.
    pub interface: Vec<String>,
}

/// True for the ops this module converts.
pub(super) fn handles(node: &NodeProto) -> bool {
    matches!(node.domain(), "" | "ai.onnx") && matches!(node.op_type(), "LSTM" | "GRU" | "RNN")
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Lstm,
    Gru,
    Rnn,
}

/// What the cell of every direction is made of.
#[derive(Clone, Copy)]
struct Cell<'a> {
    kind: Kind,
    /// BasicRNN's activation, `tanh` or `relu`.
    activation: &'a str,
    /// GRU's `linear_before_reset`.
    linear_before_reset: bool,
    /// The node's `sequence_lens` input, if given.
    seq_lens: Option<&'a str>,
}

fn op(ty: &str, input: &[&str], output: &[&str], arg: Vec<Argument>) -> OperatorDef {
    OperatorDef {
        input: input.iter().map(|s| s.to_string()).collect(),
        output: output.iter().map(|s| s.to_string()).collect(),
        name: Some(String::new()),
        r#type: Some(ty.to_string()),
        arg,
        ..Default::default()
    }
}

fn arg_strings(name: &str, strings: &[String]) -> Argument {
    Argument {
        name: Some(name.into()),
        strings: strings
            .iter()
            .map(|s| bytes::Bytes::copy_from_slice(s.as_bytes()))
            .collect(),
        ..Default::default()
    }
}

/// The arguments `brew`'s arg scope gives the cells' FC and Sum ops.
fn scope_args() -> Vec<Argument> {
    vec![
        arg_s("order", "NCHW"),
        arg_i("use_cudnn", 1),
        arg_i("cudnn_exhaustive_search", 0),
    ]
}

fn fc(input: &[&str], output: &str) -> OperatorDef {
    let mut args = scope_args();
    args.push(arg_i("axis", 2));
    op("FC", input, &[output], args)
}

fn slice(input: &str, output: &str, starts: Vec<i64>, ends: Vec<i64>) -> OperatorDef {
    op(
        "Slice",
        &[input],
        &[output],
        vec![arg_ints("starts", starts), arg_ints("ends", ends)],
    )
}

/// Converts one LSTM/GRU/RNN node (a predict node: its input X is data).
pub(super) fn convert(
    cx: &mut Cx<'_>,
    node: &NodeProto,
    graph: &GraphProto,
    opset: i64,
) -> R<RnnOps> {
    if !in_table(node.op_type(), opset) {
        return Err(no("no Caffe2 equivalent in the op table at this opset"));
    }
    let kind = match node.op_type() {
        "LSTM" => Kind::Lstm,
        "GRU" => Kind::Gru,
        _ => Kind::Rnn,
    };
    let mut hidden = None;
    let mut direction = "forward".to_string();
    let mut activation = "tanh".to_string();
    let mut linear_before_reset = 0;
    for a in &node.attribute {
        match (a.name(), kind) {
            ("hidden_size", _) => hidden = Some(a.i()),
            ("direction", _) => direction = String::from_utf8_lossy(a.s()).into_owned(),
            ("activations", Kind::Rnn) => {
                let acts: Vec<String> = a
                    .strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).to_lowercase())
                    .collect();
                let first = acts.first().cloned().unwrap_or_else(|| "tanh".into());
                if acts.iter().any(|x| *x != first) {
                    return Err(no(format!(
                        "activations {acts:?}: Caffe2Backend applies the first to every direction"
                    )));
                }
                activation = first;
            }
            ("linear_before_reset", Kind::Gru) => linear_before_reset = a.i(),
            // Defaults written out (torch's dynamo exporter does): the
            // backend refused any attribute, but the net is the same.
            ("layout", _) | ("input_forget", Kind::Lstm) if a.i() == 0 => {}
            ("activations", Kind::Lstm | Kind::Gru) if default_activations(kind, &a.strings) => {}
            (other, _) => {
                return Err(no(format!(
                    "attribute '{other}': Caffe2Backend has no form for it (its RecurrentNetwork \
                     cells take none)"
                )));
            }
        }
    }
    let hidden = hidden
        .filter(|&h| h > 0)
        .ok_or_else(|| no("no positive hidden_size"))?;
    match direction.as_str() {
        "forward" | "bidirectional" => {}
        "reverse" => {
            return Err(no(
                "direction=reverse: Caffe2Backend refuses it (unsupported backwards RNN/GRU/LSTM)",
            ));
        }
        d => return Err(no(format!("direction '{d}'"))),
    }
    if kind == Kind::Rnn && !matches!(activation.as_str(), "tanh" | "relu") {
        return Err(no(format!(
            "activation '{activation}': Caffe2's BasicRNN has only tanh and relu"
        )));
    }
    let n_inputs = if kind == Kind::Lstm { 7 } else { 6 };
    if kind == Kind::Lstm && node.input.get(7).is_some_and(|p| !p.is_empty()) {
        return Err(no("peepholes (input P): Caffe2's LSTMUnit has none"));
    }
    let input = |i: usize| node.input.get(i).map(String::as_str).unwrap_or("");
    if node.input.len() != n_inputs {
        return Err(no(format!(
            "{} inputs: Caffe2Backend unpacks exactly {n_inputs} (every optional input listed)",
            node.input.len()
        )));
    }
    let (x, w, r, b) = (input(0), input(1), input(2), input(3));
    if b.is_empty() {
        return Err(no(
            "no bias B: Caffe2Backend reshapes and slices B unconditionally",
        ));
    }
    let seq_lens = Some(input(4)).filter(|s| !s.is_empty());
    let states: Vec<(&str, &str)> = if kind == Kind::Lstm {
        vec![(input(5), "/initial_h"), (input(6), "/initial_c")]
    } else {
        vec![(input(5), "/initial_h")]
    };
    if states.iter().any(|(s, _)| s.is_empty()) {
        return Err(no(
            "omitted initial states: Caffe2Backend slices them unconditionally",
        ));
    }
    let n_outputs = if kind == Kind::Lstm { 3 } else { 2 };
    if node.output.len() != n_outputs || node.output.iter().any(String::is_empty) {
        return Err(no(format!(
            "Caffe2Backend writes all {n_outputs} outputs: omitted outputs are not converted"
        )));
    }
    if !matches!(linear_before_reset, 0 | 1) {
        return Err(no(format!("linear_before_reset={linear_before_reset}")));
    }
    if !cx.is_predict_value(Some(x)) {
        return Err(no("an RNN over a constant input"));
    }
    for i in [x, w, r, b] {
        let t = cx.elem_type(i);
        if t != 0 && t != 1 {
            return Err(no(format!(
                "'{i}' is not float: Caffe2's RNN kernels are float only"
            )));
        }
    }
    // The backend reads input_size from W's shape (and fails without it).
    let w_shape = cx
        .shape_of(Some(w))
        .filter(|s| s.len() == 3 && s[2].is_some())
        .ok_or_else(|| no("the shape of W is not known (Caffe2Backend needs its input size)"))?;
    let bidi = direction == "bidirectional";
    if bidi {
        check_bidirectional_y(cx, graph, &node.output[0], hidden)?;
    }
    let gates: i64 = match kind {
        Kind::Lstm => 4,
        Kind::Gru => 3,
        Kind::Rnn => 1,
    };
    // W is (directions, gates * hidden, input): a disagreeing hidden_size
    // would make Slices that cut the wrong rows.
    let dirs = if bidi { 2 } else { 1 };
    let rows = gates
        .checked_mul(hidden)
        .filter(|r| r.checked_mul(4).is_some())
        .ok_or_else(|| Fail::Invalid(invalid(format!("hidden_size {hidden} overflows"))))?;
    if w_shape[0].is_some_and(|d| d != dirs) || w_shape[1].is_some_and(|r| r != rows) {
        return Err(Fail::Invalid(invalid(format!(
            "W of shape {w_shape:?} for {dirs} direction(s) of {gates} gate(s) of hidden_size {hidden}"
        ))));
    }

    let weights_in_init = [w, r, b].iter().all(|v| !cx.is_predict_value(Some(v)));
    let mut init: Vec<OperatorDef> = Vec::new();
    let mut pred: Vec<OperatorDef> = Vec::new();
    for (v, shape) in [(w, vec![1, -1, 0]), (r, vec![1, -1, 0]), (b, vec![1, -1])] {
        let d = cx.dummy();
        init.push(op(
            "Reshape",
            &[v],
            &[v, &d],
            vec![arg_ints("shape", shape)],
        ));
        init.push(op("Squeeze", &[v], &[v], vec![arg_ints("dims", vec![0])]));
    }
    let cell = Cell {
        kind,
        activation: &activation,
        linear_before_reset: linear_before_reset == 1,
        seq_lens,
    };
    let mut outs = Vec::new();
    for dir in 0..if bidi { 2 } else { 1 } {
        outs.push(direction_ops(
            cx,
            cell,
            dir,
            (x, w, r, b),
            &states,
            hidden,
            gates,
            &mut init,
            &mut pred,
        ));
    }
    let y = &node.output[0];
    if !bidi {
        let o = &outs[0];
        for (i, out) in o.iter().enumerate().skip(1) {
            pred.push(op("Copy", &[out], &[&node.output[i]], vec![]));
        }
        if let Some(seq) = seq_lens {
            // Zeros past each sequence's length, in place.
            pred.push(op(
                "VariableLengthSequencePadding",
                &[&o[0], seq],
                &[&o[0]],
                vec![],
            ));
        }
        pred.push(op(
            "ExpandDims",
            &[&o[0]],
            &[y],
            vec![arg_ints("dims", vec![1])],
        ));
    } else {
        let (d1, d2) = (cx.dummy(), cx.dummy());
        pred.push(op(
            "Concat",
            &[&outs[0][0], &outs[1][0]],
            &[&d1, &d2],
            vec![arg_i("axis", 2)],
        ));
        if let Some(seq) = seq_lens {
            pred.push(op(
                "VariableLengthSequencePadding",
                &[&d1, seq],
                &[&d1],
                vec![],
            ));
        }
        let (d3, d4) = (cx.dummy(), cx.dummy());
        pred.push(op(
            "Reshape",
            &[&d1],
            &[&d3, &d4],
            vec![arg_ints("shape", vec![0, 0, -1, 2])],
        ));
        pred.push(op(
            "Transpose",
            &[&d3],
            &[y],
            vec![arg_ints("axes", vec![0, 2, 1, 3])],
        ));
        for ((out, f), b) in node.output.iter().zip(&outs[0]).zip(&outs[1]).skip(1) {
            let d = cx.dummy();
            pred.push(op("Concat", &[f, b], &[out, &d], vec![arg_i("axis", 0)]));
        }
    }
    // ModelHelper's external inputs: what the predict ops read before any
    // of them makes it, in order of first use.
    let mut made: HashSet<&str> = HashSet::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut interface = Vec::new();
    for o in &pred {
        for i in &o.input {
            if !made.contains(i.as_str()) && seen.insert(i.as_str()) {
                interface.push(i.clone());
            }
        }
        made.extend(o.output.iter().map(String::as_str));
    }
    if weights_in_init {
        Ok(RnnOps {
            init_ops: init,
            ops: pred,
            interface,
        })
    } else {
        init.extend(pred);
        Ok(RnnOps {
            init_ops: Vec::new(),
            ops: init,
            interface,
        })
    }
}

/// The backend writes a bidirectional `Y` as Reshape(T, B, H, 2) +
/// Transpose(0, 2, 1, 3) of the directions concatenated on the last axis:
/// that is not ONNX's (T, 2, B, H), but PyTorch's exports read `Y` only
/// through Transpose(0, 2, 1, 3) + Reshape to (T, B, 2H), which gives the
/// same (T, B, 2H) either way. Anything else reading `Y` is refused.
fn check_bidirectional_y(cx: &Cx<'_>, graph: &GraphProto, y: &str, hidden: i64) -> R<()> {
    let refuse = || {
        no(
            "bidirectional Y read other than through Transpose(perm 0,2,1,3) + Reshape(.., .., -1): \
            Caffe2Backend's Y has another layout than ONNX's (T, 2, B, H)",
        )
    };
    if graph.output.iter().any(|o| o.name() == y) {
        return Err(refuse());
    }
    let readers = |v: &str| -> Vec<&NodeProto> {
        graph
            .node
            .iter()
            .filter(|n| n.input.iter().any(|i| i == v))
            .collect()
    };
    for t in readers(y) {
        let perm = t
            .attribute
            .iter()
            .find(|a| a.name() == "perm")
            .map(|a| a.ints.clone());
        if t.op_type() != "Transpose" || perm != Some(vec![0, 2, 1, 3]) || t.input[0] != y {
            return Err(refuse());
        }
        let tout = t.output.first().map(String::as_str).unwrap_or("");
        if graph.output.iter().any(|o| o.name() == tout) {
            return Err(refuse());
        }
        for rs in readers(tout) {
            if rs.op_type() != "Reshape" || rs.input.first().map(String::as_str) != Some(tout) {
                return Err(refuse());
            }
            let shape = rs
                .input
                .get(1)
                .and_then(|s| cx.const_ints(Some(s)))
                .or_else(|| {
                    rs.attribute
                        .iter()
                        .find(|a| a.name() == "shape")
                        .map(|a| a.ints.clone())
                });
            match shape.as_deref() {
                Some([_, _, last]) if *last == -1 || *last == 2 * hidden => {}
                _ => return Err(refuse()),
            }
        }
    }
    Ok(())
}

/// `_make_rnn_direction`: one direction's ops; returns the outputs kept
/// (sequence, last hidden state[, last cell state]).
#[allow(clippy::too_many_arguments)]
fn direction_ops(
    cx: &mut Cx<'_>,
    cell: Cell<'_>,
    dir: i64,
    (x, w, r, b): (&str, &str, &str, &str),
    states: &[(&str, &str)],
    hidden: i64,
    gates: i64,
    init: &mut Vec<OperatorDef>,
    pred: &mut Vec<OperatorDef>,
) -> Vec<String> {
    let name = cx.dummy();
    let g = gates * hidden;
    let bias_offset = 2 * dir * g;
    let weight_offset = dir * g;
    let (kind, seq_lens) = (cell.kind, cell.seq_lens);
    let (bi, br, w_, r_) = match kind {
        Kind::Gru => ("_bias_i2h", "_bias_gates", "/i2h_w_pre", "/gates_t_w_pre"),
        _ => ("/i2h_b", "/gates_t_b", "/i2h_w", "/gates_t_w"),
    };
    let (bi, br, w_, r_) = (
        format!("{name}{bi}"),
        format!("{name}{br}"),
        format!("{name}{w_}"),
        format!("{name}{r_}"),
    );
    init.push(slice(b, &bi, vec![bias_offset], vec![bias_offset + g]));
    init.push(slice(
        b,
        &br,
        vec![bias_offset + g],
        vec![bias_offset + 2 * g],
    ));
    init.push(slice(
        w,
        &w_,
        vec![weight_offset, 0],
        vec![weight_offset + g, -1],
    ));
    init.push(slice(
        r,
        &r_,
        vec![weight_offset, 0],
        vec![weight_offset + g, -1],
    ));
    let mut sliced = Vec::new();
    for (state, suffix) in states {
        let out = format!("{name}{suffix}");
        pred.push(slice(state, &out, vec![dir, 0, 0], vec![dir + 1, -1, -1]));
        sliced.push(out);
    }
    let mut reverse_lens = None;
    if let (1, Some(seq)) = (dir, seq_lens) {
        reverse_lens = Some(seq.to_string());
    } else if dir == 1 {
        let shape = format!("{name}/input_shape");
        let batch = format!("{name}/batch_size_slice");
        let seq = format!("{name}/seq_len_slice");
        let dummy_lens = format!("{name}/dummy_sequence_lens");
        let lens = format!("{name}/seq_lens_for_reverse");
        pred.push(op("Shape", &[x], &[&shape], vec![]));
        pred.push(slice(&shape, &batch, vec![1], vec![2]));
        pred.push(slice(&shape, &seq, vec![0], vec![1]));
        pred.push(op(
            "Tile",
            &[&seq, &batch],
            &[&dummy_lens],
            vec![arg_i("axis", 0)],
        ));
        let d = cx.dummy();
        pred.push(op(
            "Reshape",
            &[&dummy_lens],
            &[&dummy_lens, &d],
            vec![arg_ints("shape", vec![-1])],
        ));
        pred.push(op("Cast", &[&dummy_lens], &[&lens], vec![arg_i("to", 2)]));
        reverse_lens = Some(lens);
    }
    // reform: the gate order of Caffe2's cells.
    let h = hidden;
    let mut reform =
        |from: &str, to: &str, concat: bool, two_d: bool, gate_names: &[&str], order: &[usize]| {
            let blobs: Vec<String> = gate_names
                .iter()
                .map(|p| format!("{name}/{p}_{to}"))
                .collect();
            for (i, blob) in blobs.iter().enumerate() {
                let i = i as i64;
                let (starts, ends) = if two_d {
                    (vec![i * h, 0], vec![(i + 1) * h, -1])
                } else {
                    (vec![i * h], vec![(i + 1) * h])
                };
                init.push(slice(from, blob, starts, ends));
            }
            if concat {
                let ordered: Vec<&str> = order.iter().map(|&i| blobs[i].as_str()).collect();
                let d = cx.dummy();
                init.push(op(
                    "Concat",
                    &ordered,
                    &[&format!("{name}/{to}"), &d],
                    vec![arg_i("axis", 0)],
                ));
            }
        };
    match kind {
        Kind::Lstm => {
            let gn = ["input", "output", "forget", "cell"];
            let order = [0, 2, 1, 3];
            reform(&w_, "i2h_w", true, true, &gn, &order);
            reform(&r_, "gates_t_w", true, true, &gn, &order);
            reform(&bi, "i2h_b", true, false, &gn, &order);
            reform(&br, "gates_t_b", true, false, &gn, &order);
        }
        Kind::Gru => {
            let gn = ["update", "reset", "output"];
            let order = [1, 0, 2];
            reform(&w_, "i2h_w", true, true, &gn, &order);
            reform(&r_, "gate_t_w", false, true, &gn, &order);
            reform(&bi, "i2h_b", true, false, &gn, &order);
            reform(&br, "gate_t_b", false, false, &gn, &order);
        }
        Kind::Rnn => {}
    }
    let input = match &reverse_lens {
        Some(lens) => {
            let rev = format!("{name}/input-reversed");
            pred.push(op("ReversePackedSegs", &[x, lens], &[&rev], vec![]));
            rev
        }
        None => x.to_string(),
    };
    let mut outputs = cell_ops(cell, &name, &input, &sliced, pred);
    if let Some(lens) = &reverse_lens {
        let rev = format!("{name}/output-reversed");
        pred.push(op(
            "ReversePackedSegs",
            &[&outputs[0], lens],
            &[&rev],
            vec![],
        ));
        outputs[0] = rev;
    }
    outputs
}

/// The input projection and the RecurrentNetwork op of one direction
/// (`rnn_cell._RNN.apply_over_sequence` with `forward_only=True`).
fn cell_ops(
    cell: Cell<'_>,
    name: &str,
    input: &str,
    initial: &[String],
    pred: &mut Vec<OperatorDef>,
) -> Vec<String> {
    let Cell {
        kind,
        activation,
        linear_before_reset,
        seq_lens,
    } = cell;
    let p = |s: &str| format!("{name}/{s}");
    let i2h = p("i2h");
    pred.push(fc(&[input, &p("i2h_w"), &p("i2h_b")], &i2h));
    let hprev = p("hidden_t_prev");
    let mut step_ops = Vec::new();
    let params: Vec<String>;
    // (previous, next) state names and (all steps, last step) outputs.
    type Pairs = Vec<(String, String)>;
    let (state_names, all_last): (Pairs, Pairs);
    match kind {
        Kind::Lstm => {
            params = vec![p("gates_t_w"), p("gates_t_b")];
            let gates_t = p("gates_t");
            step_ops.push(fc(&[&hprev, &params[0], &params[1]], &gates_t));
            step_ops.push(op("Sum", &[&gates_t, "input_t"], &[&gates_t], scope_args()));
            step_ops.push(op(
                "LSTMUnit",
                &unit_inputs(&[&hprev, &p("cell_t_prev"), &gates_t], seq_lens),
                &[&p("hidden_state"), &p("cell_state")],
                unit_args(seq_lens.is_some()),
            ));
            state_names = vec![
                (hprev.clone(), p("hidden_state")),
                (p("cell_t_prev"), p("cell_state")),
            ];
            all_last = vec![
                (p("hidden_state_all"), p("hidden_state_last")),
                (p("cell_state_all"), p("cell_state_last")),
            ];
        }
        Kind::Rnn => {
            params = vec![p("gates_t_w"), p("gates_t_b")];
            let gates_t = p("gates_t");
            step_ops.push(fc(&[&hprev, &params[0], &params[1]], &gates_t));
            step_ops.push(op("Sum", &[&gates_t, "input_t"], &[&gates_t], scope_args()));
            let act = if activation == "relu" { "Relu" } else { "Tanh" };
            let hidden_t = p("hidden_t");
            step_ops.push(op(act, &[&gates_t], &[&hidden_t], vec![]));
            if let Some(seq) = seq_lens {
                basic_rnn_lengths(&mut step_ops, &p, &hprev, seq);
            }
            state_names = vec![(hprev.clone(), p("hidden_t"))];
            all_last = vec![(p("hidden_t_all"), p("hidden_t_last"))];
        }
        Kind::Gru => {
            params = ["reset", "update", "output"]
                .iter()
                .flat_map(|g| [p(&format!("{g}_gate_t_w")), p(&format!("{g}_gate_t_b"))])
                .collect();
            let (reset, update, output) =
                (p("reset_gate_t"), p("update_gate_t"), p("output_gate_t"));
            let (in_r, in_u, in_o) = (p("input_t_reset"), p("input_t_update"), p("input_t_output"));
            step_ops.push(op(
                "Split",
                &["input_t"],
                &[&in_r, &in_u, &in_o],
                vec![arg_i("axis", 2)],
            ));
            step_ops.push(fc(&[&hprev, &params[0], &params[1]], &reset));
            step_ops.push(fc(&[&hprev, &params[2], &params[3]], &update));
            step_ops.push(op("Sum", &[&reset, &in_r], &[&reset], vec![]));
            let sig = p("reset_gate_t_sigmoid");
            step_ops.push(op("Sigmoid", &[&reset], &[&sig], vec![]));
            // gru_cell: linear_before_reset (cuDNN's GRU, PyTorch's)
            // applies the reset gate to the recurrent product, else to the
            // previous state before it.
            let out = if linear_before_reset {
                step_ops.push(fc(&[&hprev, &params[4], &params[5]], &output));
                let mul = p("output_gate_t_mul");
                step_ops.push(op("Mul", &[&sig, &output], &[&mul], vec![]));
                mul
            } else {
                let modified = p("modified_hidden_t_prev");
                step_ops.push(op("Mul", &[&sig, &hprev], &[&modified], vec![]));
                step_ops.push(fc(&[&modified, &params[4], &params[5]], &output));
                output
            };
            step_ops.push(op("Sum", &[&update, &in_u], &[&update], vec![]));
            let summed = p("output_gate_t_summed");
            step_ops.push(op("Sum", &[&out, &in_o], &[&summed], vec![]));
            let gates_t = p("gates_t");
            step_ops.push(op(
                "Concat",
                &[&reset, &update, &summed],
                &[&gates_t, &p("_gates_t_concat_dims")],
                vec![arg_i("axis", 2)],
            ));
            step_ops.push(op(
                "GRUUnit",
                &unit_inputs(&[&hprev, &gates_t], seq_lens),
                &[&p("hidden_t")],
                unit_args(seq_lens.is_some()),
            ));
            state_names = vec![(hprev.clone(), p("hidden_t"))];
            all_last = vec![(p("hidden_t_all"), p("hidden_t_last"))];
        }
    }
    let mut step_inputs = vec!["input_t".to_string(), "timestep".to_string()];
    step_inputs.extend(state_names.iter().map(|(prev, _)| prev.clone()));
    step_inputs.extend(params.iter().cloned());
    step_inputs.extend(seq_lens.map(String::from));
    let step_net = NetDef {
        name: Some(name.to_string()),
        op: step_ops,
        r#type: Some("simple".into()),
        external_input: step_inputs,
        external_output: state_names.iter().map(|(_, s)| s.clone()).collect(),
        ..Default::default()
    };
    // recurrent.recurrent_net: the state blobs (T+1 steps) are named
    // `<scope>/<scope>/<state>_prev_states`.
    let states_blob = |prev: &str| format!("{name}/{prev}_states");
    let (mut alias_src, mut alias_dst, mut alias_offset) = (Vec::new(), Vec::new(), Vec::new());
    let (mut recurrent, mut link_internal, mut link_external, mut link_offset) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut outputs = Vec::new();
    let mut rn_outputs = Vec::new();
    for ((prev, next), (all, last)) in state_names.iter().zip(&all_last) {
        let s = states_blob(prev);
        alias_src.extend([s.clone(), s.clone()]);
        alias_dst.extend([all.clone(), last.clone()]);
        alias_offset.extend([1, -1]);
        recurrent.push(s.clone());
        link_internal.extend([prev.clone(), next.clone()]);
        link_external.extend([s.clone(), s]);
        link_offset.extend([0, 1]);
        rn_outputs.extend([all.clone(), last.clone()]);
    }
    link_internal.push("input_t".into());
    link_external.push(i2h.clone());
    link_offset.push(0);
    rn_outputs.push(p("step_workspaces"));
    let mut rn_inputs = vec![i2h.clone()];
    rn_inputs.extend(initial.iter().cloned());
    rn_inputs.extend(params.iter().cloned());
    rn_inputs.extend(seq_lens.map(String::from));
    let ids: Vec<i64> = (1..=initial.len() as i64).collect();
    let rn = OperatorDef {
        input: rn_inputs,
        output: rn_outputs.clone(),
        name: Some(String::new()),
        r#type: Some("RecurrentNetwork".into()),
        arg: vec![
            arg_strings("alias_src", &alias_src),
            arg_strings("alias_dst", &alias_dst),
            arg_ints("alias_offset", alias_offset),
            arg_strings("recurrent_states", &recurrent),
            arg_ints("initial_recurrent_state_ids", ids),
            arg_strings("link_internal", &link_internal),
            arg_strings("link_external", &link_external),
            arg_ints("link_offset", link_offset),
            arg_i("enable_rnn_executor", 1),
            Argument {
                name: Some("step_net".into()),
                n: Some(step_net),
                ..Default::default()
            },
            arg_s("timestep", "timestep"),
        ],
        ..Default::default()
    };
    pred.push(rn);
    // keep_outputs: LSTM keeps (hidden all, hidden last, cell last).
    outputs.push(rn_outputs[0].clone());
    outputs.push(rn_outputs[1].clone());
    if kind == Kind::Lstm {
        outputs.push(rn_outputs[3].clone());
    }
    outputs
}

/// The unit op's inputs: the states and gates, then with `seq_lengths`
/// the lengths, then `timestep` (`rnn_cell.LSTM`, `gru_cell.GRU`).
fn unit_inputs<'a>(states_gates: &[&'a str], seq_lens: Option<&'a str>) -> Vec<&'a str> {
    let mut v = states_gates.to_vec();
    v.extend(seq_lens);
    v.push("timestep");
    v
}

/// `rnn_cell.BasicRNNCell` with `seq_lengths` (and `drop_states=False`):
/// past a sequence's length the step keeps the previous state,
/// `hidden_t = hidden_t * (lengths > t) + hidden_t_prev * (lengths <= t)`,
/// each mask cast to float and broadcast over the batch axis.
fn basic_rnn_lengths(
    step_ops: &mut Vec<OperatorDef>,
    p: &dyn Fn(&str) -> String,
    hprev: &str,
    seq: &str,
) {
    let (ts, valid_b, invalid_b) = (p("timestep_gpu"), p("valid_b"), p("invalid_b"));
    let (valid, invalid) = (p("valid"), p("invalid"));
    let (hidden_t, hv, hi) = (p("hidden_t"), p("hidden_valid"), p("hidden_invalid"));
    let broadcast = || vec![arg_i("broadcast", 1)];
    let on_batch = || vec![arg_i("broadcast", 1), arg_i("axis", 1)];
    step_ops.push(op("CopyFromCPUInput", &["timestep"], &[&ts], vec![]));
    step_ops.push(op("GT", &[seq, &ts], &[&valid_b], broadcast()));
    step_ops.push(op("LE", &[seq, &ts], &[&invalid_b], broadcast()));
    step_ops.push(op(
        "Cast",
        &[&valid_b],
        &[&valid],
        vec![arg_s("to", "float")],
    ));
    step_ops.push(op(
        "Cast",
        &[&invalid_b],
        &[&invalid],
        vec![arg_s("to", "float")],
    ));
    step_ops.push(op("Mul", &[&hidden_t, &valid], &[&hv], on_batch()));
    step_ops.push(op("Mul", &[hprev, &invalid], &[&hi], on_batch()));
    step_ops.push(op("Add", &[&hv, &hi], &[&hidden_t], vec![]));
}

/// ONNX's default activations of LSTM (sigmoid, tanh, tanh) or GRU
/// (sigmoid, tanh), once per direction.
fn default_activations(kind: Kind, given: &[bytes::Bytes]) -> bool {
    let one: &[&str] = if kind == Kind::Lstm {
        &["sigmoid", "tanh", "tanh"]
    } else {
        &["sigmoid", "tanh"]
    };
    !given.is_empty()
        && given.len().is_multiple_of(one.len())
        && given
            .iter()
            .zip(one.iter().cycle())
            .all(|(g, d)| String::from_utf8_lossy(g).eq_ignore_ascii_case(d))
}

fn unit_args(sequence_lengths: bool) -> Vec<Argument> {
    vec![
        arg_f("forget_bias", 0.0),
        arg_i("drop_states", 0),
        arg_i("sequence_lengths", i64::from(sequence_lengths)),
    ]
}

//! The Caffe2 ops of recurrent nets, as Caffe2Backend writes them for ONNX
//! LSTM/GRU/RNN nodes (and `rnn_cell`/`gru_cell` build them), each from
//! its Caffe2 CPU operator:
//!
//! - `RecurrentNetwork` (forward only): the `step_net` NetDef argument runs
//!   once per step of the sequence input's first dim. `recurrent_states`
//!   are blobs of `T + 1` steps whose step 0 is the op input named by
//!   `initial_recurrent_state_ids`; each link (`link_internal`,
//!   `link_external`, `link_offset`) shows step `t + offset` of an external
//!   blob (a recurrent state, or an op input such as the input projection)
//!   to the step net under the internal name, and the step net's external
//!   outputs are written back to step `t + offset` of their links; the
//!   step net also reads `timestep` (int32 `[1]`) and the op's other inputs
//!   (the weights) by name. Outputs are the aliases (`alias_src`,
//!   `alias_dst`, `alias_offset`: steps `offset..` of a state, or its last
//!   `-offset` steps) and an empty `step_workspaces`.
//! - `LSTMUnit`: gates `(1, N, 4D)` in Caffe2's order i, f, o, g:
//!   `c = sigmoid(f + forget_bias) * c_prev + sigmoid(i) * tanh(g)`,
//!   `h = sigmoid(o) * tanh(c)`.
//! - `GRUUnit`: gates `(1, N, 3D)` r, z, o (the reset gate already applied
//!   by the step net): `h = h_prev * sigmoid(z) + tanh(o) * (1 - sigmoid(z))`.
//!   With `sequence_lengths=1` (the schema default) both also read
//!   (lengths, timestep) as their last two inputs and keep the
//!   previous states past a sequence's end (zeros with `drop_states`).
//! - `VariableLengthSequencePadding(x (T, N, ...), lengths)`: steps past
//!   each sequence's length set to 0.
//! - `ReversePackedSegs(data (T, N, ...), lengths (N))`: the first
//!   `lengths[n]` steps of each sequence reversed, the rest copied.
//! - `Tile(data[, tiles[, axis]])`: `tiles` copies of each block along
//!   `axis` (arguments `tiles`, `axis`, or inputs 1 and 2; an int64 tiles
//!   input without an axis input tiles along axis 0, as Caffe2 keeps for
//!   old models).
//! - `ScatterAssign(data, indices, slices)`: rows `indices[i]` of data
//!   replaced by `slices[i]`.
//!
//! The row moves are one [`Gather`] (axis 0) with computed indices; the
//! activations are the elementwise kernels' ([`UnOp`]).

use crate::kernels::elementwise::UnOp;
use crate::kernels::shape::{Gather, concat};
use crate::kernels::{KResult, Kernel, arg, opt};
use crate::plan::Plan;
use crate::tensor::{Data, Tensor};
use netport_caffe2::Caffe2Model;
use netport_caffe2::proto::{NetDef, OperatorDef};

/// The kernel of `op` when it is one of this module's ops.
pub(crate) fn kernel(op: &OperatorDef) -> Option<Result<Box<dyn Kernel>, String>> {
    let arg_i = |n: &str| op.arg.iter().find(|a| a.name() == n).and_then(|a| a.i);
    let arg_f = |n: &str| op.arg.iter().find(|a| a.name() == n).and_then(|a| a.f);
    // Caffe2's schema default: sequence lengths given.
    let seq = arg_i("sequence_lengths").unwrap_or(1) != 0;
    let drop = arg_i("drop_states").unwrap_or(0) != 0;
    Some(match op.r#type() {
        "LSTMUnit" => Ok(Box::new(LstmUnit {
            forget_bias: f64::from(arg_f("forget_bias").unwrap_or(0.0)),
            seq,
            drop,
        })),
        "GRUUnit" => Ok(Box::new(GruUnit { seq, drop })),
        "VariableLengthSequencePadding" => Ok(Box::new(LengthPadding)),
        "ReversePackedSegs" => Ok(Box::new(ReversePackedSegs)),
        "Tile" => Ok(Box::new(Tile {
            tiles: arg_i("tiles"),
            axis: arg_i("axis").unwrap_or(0),
        })),
        "ScatterAssign" => Ok(Box::new(ScatterAssign)),
        "RecurrentNetwork" => RecurrentNetwork::new(op).map(|k| Box::new(k) as _),
        _ => return None,
    })
}

/// Rows of `x` (viewed as `(rows, rest)`) picked by `index`, as `shape`.
fn rows(x: &Tensor, rows: usize, index: Vec<i64>, shape: Vec<usize>) -> Result<Tensor, String> {
    let rest = x.numel().checked_div(rows).unwrap_or(0);
    let view = x.clone().reshaped(vec![rows, rest])?;
    let n = index.len();
    let idx = Tensor::i64(vec![n], index)?;
    let mut out = Gather { axis: 0 }.run(&[Some(&view), Some(&idx)])?;
    out.pop().ok_or("no output")?.reshaped(shape)
}

fn floats(t: &Tensor, what: &str) -> Result<Vec<f64>, String> {
    match &t.data {
        Data::F32(_) => Ok(t.data.to_f64_vec()),
        _ => Err(format!("{what} is {:?}, not float32", t.dtype())),
    }
}

fn f32_tensor(shape: Vec<usize>, v: &[f64]) -> Result<Tensor, String> {
    Tensor::f32(shape, v.iter().map(|&x| x as f32).collect())
}

/// Which of the `n` sequences are still running at this step: with
/// `seq`, inputs `at` (lengths) and `at + 1` (timestep) say, `t < length`;
/// without, all of them.
fn valid_sequences(
    inputs: &[Option<&Tensor>],
    at: usize,
    n: usize,
    seq: bool,
) -> Result<Vec<bool>, String> {
    if !seq {
        return Ok(vec![true; n]);
    }
    let lens = arg(inputs, at)?.to_i64_vec()?;
    let t = match arg(inputs, at + 1)?.to_i64_vec()?[..] {
        [t] => t,
        _ => return Err("timestep is not one value".into()),
    };
    if lens.len() != n {
        return Err(format!(
            "{} sequence lengths for a batch of {n}",
            lens.len()
        ));
    }
    Ok(lens.iter().map(|&l| t < l).collect())
}

/// Caffe2 `LSTMUnit`: with `seq`, inputs (h, c, gates, lengths,
/// timestep) and a sequence past its length keeps its states (`drop`: 0).
#[derive(Debug)]
struct LstmUnit {
    forget_bias: f64,
    seq: bool,
    drop: bool,
}

impl Kernel for LstmUnit {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (h, c, g) = (arg(inputs, 0)?, arg(inputs, 1)?, arg(inputs, 2)?);
        let d = *h.shape.last().ok_or("hidden state of rank 0")?;
        let n = h.numel().checked_div(d).unwrap_or(0);
        if c.shape != h.shape || g.numel() != n * 4 * d {
            return Err(format!(
                "hidden {:?}, cell {:?} and gates {:?} do not agree",
                h.shape, c.shape, g.shape
            ));
        }
        let (c_prev, gates) = (floats(c, "cell")?, floats(g, "gates")?);
        let h_prev = floats(h, "hidden")?;
        let valid = valid_sequences(inputs, 3, n, self.seq)?;
        let (sig, tanh) = (UnOp::Sigmoid, UnOp::Tanh);
        let (mut ho, mut co) = (vec![0.0; n * d], vec![0.0; n * d]);
        for b in 0..n {
            if !valid[b] {
                if !self.drop {
                    ho[b * d..(b + 1) * d].copy_from_slice(&h_prev[b * d..(b + 1) * d]);
                    co[b * d..(b + 1) * d].copy_from_slice(&c_prev[b * d..(b + 1) * d]);
                }
                continue;
            }
            let x = &gates[b * 4 * d..(b + 1) * 4 * d];
            for j in 0..d {
                let i = sig.f(x[j]);
                let f = sig.f(x[d + j] + self.forget_bias);
                let o = sig.f(x[2 * d + j]);
                let gg = tanh.f(x[3 * d + j]);
                let cv = f * c_prev[b * d + j] + i * gg;
                co[b * d + j] = cv;
                ho[b * d + j] = o * tanh.f(cv);
            }
        }
        Ok(vec![
            f32_tensor(h.shape.clone(), &ho)?,
            f32_tensor(h.shape.clone(), &co)?,
        ])
    }
}

/// Caffe2 `VariableLengthSequencePadding(x (T, N, ...), lengths (N))`:
/// steps at or past each sequence's length set to 0.
#[derive(Debug)]
struct LengthPadding;

impl Kernel for LengthPadding {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, lens) = (arg(inputs, 0)?, arg(inputs, 1)?);
        if x.rank() < 2 {
            return Err(format!("data of shape {:?} (rank 2+ expected)", x.shape));
        }
        let (t, n) = (x.shape[0], x.shape[1]);
        let block: usize = x.shape[2..].iter().product();
        let lens = lens.to_i64_vec()?;
        if lens.len() != n {
            return Err(format!("{} lengths for a batch of {n}", lens.len()));
        }
        let mut v = floats(x, "data")?;
        for s in 0..t {
            for (b, &l) in lens.iter().enumerate() {
                if s as i64 >= l {
                    let at = (s * n + b) * block;
                    v[at..at + block].fill(0.0);
                }
            }
        }
        Ok(vec![f32_tensor(x.shape.clone(), &v)?])
    }
}

/// Caffe2 `GRUUnit`: with `seq`, inputs (h, gates, lengths, timestep) and
/// a sequence past its length keeps its state (`drop`: 0).
#[derive(Debug)]
struct GruUnit {
    seq: bool,
    drop: bool,
}

impl Kernel for GruUnit {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (h, g) = (arg(inputs, 0)?, arg(inputs, 1)?);
        let d = *h.shape.last().ok_or("hidden state of rank 0")?;
        let n = h.numel().checked_div(d).unwrap_or(0);
        if g.numel() != n * 3 * d {
            return Err(format!(
                "hidden {:?} and gates {:?} do not agree",
                h.shape, g.shape
            ));
        }
        let (h_prev, gates) = (floats(h, "hidden")?, floats(g, "gates")?);
        let valid = valid_sequences(inputs, 2, n, self.seq)?;
        let mut out = vec![0.0; n * d];
        for b in 0..n {
            if !valid[b] {
                if !self.drop {
                    out[b * d..(b + 1) * d].copy_from_slice(&h_prev[b * d..(b + 1) * d]);
                }
                continue;
            }
            let x = &gates[b * 3 * d..(b + 1) * 3 * d];
            for j in 0..d {
                let z = UnOp::Sigmoid.f(x[d + j]);
                out[b * d + j] = h_prev[b * d + j] * z + UnOp::Tanh.f(x[2 * d + j]) * (1.0 - z);
            }
        }
        Ok(vec![f32_tensor(h.shape.clone(), &out)?])
    }
}

/// Caffe2 `ReversePackedSegs`.
#[derive(Debug)]
struct ReversePackedSegs;

impl Kernel for ReversePackedSegs {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, lens) = (arg(inputs, 0)?, arg(inputs, 1)?);
        if x.rank() < 2 {
            return Err(format!("data of shape {:?} (rank 2+ expected)", x.shape));
        }
        let (t, n) = (x.shape[0], x.shape[1]);
        let lens = lens.to_i64_vec()?;
        if lens.len() != n {
            return Err(format!("{} lengths for a batch of {n}", lens.len()));
        }
        let mut index = vec![0i64; t * n];
        for (b, &len) in lens.iter().enumerate() {
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= t)
                .ok_or_else(|| format!("length {len} for {t} steps"))?;
            for s in 0..t {
                let from = if s < len { len - 1 - s } else { s };
                index[s * n + b] = (from * n + b) as i64;
            }
        }
        Ok(vec![rows(x, t * n, index, x.shape.clone())?])
    }
}

/// Caffe2 `Tile`.
#[derive(Debug)]
struct Tile {
    tiles: Option<i64>,
    axis: i64,
}

impl Kernel for Tile {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let one = |i: usize| -> Result<Option<i64>, String> {
            match opt(inputs, i) {
                None => Ok(None),
                Some(t) => match t.to_i64_vec()?[..] {
                    [v] => Ok(Some(v)),
                    _ => Err(format!("input {i} of shape {:?}, not one value", t.shape)),
                },
            }
        };
        let tiles = one(1)?.or(self.tiles).unwrap_or(1);
        // tile_op.h keeps "a bug in the original code" for old models: an
        // int64 tiles input resets the axis to 0 (an axis input still wins).
        let axis = match (one(2)?, opt(inputs, 1)) {
            (Some(a), _) => a,
            (None, Some(t)) if t.dtype() == netport_tensor::DType::Int64 => 0,
            (None, _) => self.axis,
        };
        let r = x.rank() as i64;
        let a = usize::try_from(if axis < 0 { axis + r } else { axis })
            .ok()
            .filter(|&a| a < x.rank())
            .ok_or_else(|| format!("axis {axis} for rank {r}"))?;
        let tiles = usize::try_from(tiles).map_err(|_| format!("tiles {tiles}"))?;
        let outer: usize = x.shape[..a].iter().product();
        let index: Vec<i64> = (0..outer as i64)
            .flat_map(|o| std::iter::repeat_n(o, tiles))
            .collect();
        let mut shape = x.shape.clone();
        shape[a] = shape[a]
            .checked_mul(tiles)
            .ok_or("the tiled shape overflows")?;
        Ok(vec![rows(x, outer, index, shape)?])
    }
}

/// Caffe2 `ScatterAssign`.
#[derive(Debug)]
struct ScatterAssign;

impl Kernel for ScatterAssign {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (data, idx, slices) = (arg(inputs, 0)?, arg(inputs, 1)?, arg(inputs, 2)?);
        if data.rank() == 0 || slices.dtype() != data.dtype() {
            return Err(format!(
                "data {:?} {:?} and slices {:?} {:?}",
                data.shape,
                data.dtype(),
                slices.shape,
                slices.dtype()
            ));
        }
        let n = data.shape[0];
        let block: usize = data.shape[1..].iter().product();
        let idx = idx.to_i64_vec()?;
        if slices.numel() != idx.len() * block {
            return Err(format!(
                "{} indices and slices of shape {:?} for data {:?}",
                idx.len(),
                slices.shape,
                data.shape
            ));
        }
        let mut shape = data.shape.clone();
        shape[0] = idx.len();
        let slices = slices.clone().reshaped(shape)?;
        let both = concat(&[data, &slices], 0)?;
        let mut index: Vec<i64> = (0..n as i64).collect();
        for (i, &r) in idx.iter().enumerate() {
            let r = usize::try_from(r)
                .ok()
                .filter(|&r| r < n)
                .ok_or_else(|| format!("index {r} for {n} rows"))?;
            index[r] = (n + i) as i64;
        }
        Ok(vec![rows(&both, n + idx.len(), index, data.shape.clone())?])
    }
}

/// One link: a step of an external blob seen under an internal name.
#[derive(Debug)]
struct Link {
    internal: String,
    external: String,
    offset: i64,
}

/// Caffe2 `RecurrentNetwork`, forward only.
#[derive(Debug)]
struct RecurrentNetwork {
    /// The op's input names (the step net reads them by name).
    inputs: Vec<String>,
    /// The op's output names.
    outputs: Vec<String>,
    step: Plan,
    step_inputs: Vec<String>,
    step_outputs: Vec<String>,
    timestep: String,
    /// (state blob, op input index of its step 0).
    states: Vec<(String, usize)>,
    links: Vec<Link>,
    /// (source state, destination output, offset).
    aliases: Vec<(String, String, i64)>,
}

impl RecurrentNetwork {
    fn new(op: &OperatorDef) -> Result<Self, String> {
        let get = |n: &str| op.arg.iter().find(|a| a.name() == n);
        let strings = |n: &str| -> Vec<String> {
            get(n)
                .map(|a| {
                    a.strings
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let ints = |n: &str| get(n).map(|a| a.ints.clone()).unwrap_or_default();
        for n in ["backward_step_net", "param", "recompute_blobs_on_backward"] {
            if get(n).is_some() {
                return Err(format!("argument {n} (training nets) is not supported"));
            }
        }
        let step_net: NetDef = get("step_net")
            .and_then(|a| a.n.clone())
            .ok_or("no step_net NetDef argument (a step net given as text is not supported)")?;
        let recurrent = strings("recurrent_states");
        let ids = ints("initial_recurrent_state_ids");
        if recurrent.len() != ids.len() {
            return Err("recurrent_states and initial_recurrent_state_ids differ in length".into());
        }
        let states = recurrent
            .into_iter()
            .zip(ids)
            .map(|(s, i)| {
                usize::try_from(i)
                    .ok()
                    .filter(|&i| i < op.input.len())
                    .map(|i| (s, i))
                    .ok_or_else(|| format!("initial state id {i}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (li, le, lo) = (
            strings("link_internal"),
            strings("link_external"),
            ints("link_offset"),
        );
        if li.len() != le.len() || li.len() != lo.len() {
            return Err("link_internal, link_external and link_offset differ in length".into());
        }
        if get("link_window").is_some_and(|a| a.ints.iter().any(|&w| w != 1)) {
            return Err("link windows other than 1".into());
        }
        let links = li
            .into_iter()
            .zip(le)
            .zip(lo)
            .map(|((internal, external), offset)| Link {
                internal,
                external,
                offset,
            })
            .collect();
        let (src, dst, off) = (
            strings("alias_src"),
            strings("alias_dst"),
            ints("alias_offset"),
        );
        if src.len() != dst.len() || src.len() != off.len() {
            return Err("alias_src, alias_dst and alias_offset differ in length".into());
        }
        let aliases = src
            .into_iter()
            .zip(dst)
            .zip(off)
            .map(|((s, d), o)| (s, d, o))
            .collect();
        let timestep = get("timestep")
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_else(|| "timestep".into());
        let step = crate::caffe2::build(&Caffe2Model {
            init_net: NetDef::default(),
            predict_net: step_net.clone(),
        })
        .map_err(|e| format!("its step net: {e}"))?;
        Ok(RecurrentNetwork {
            inputs: op.input.clone(),
            outputs: op.output.clone(),
            step,
            step_inputs: step_net.external_input.clone(),
            step_outputs: step_net.external_output.clone(),
            timestep,
            states,
            links,
            aliases,
        })
    }
}

/// Step `t` of a `(steps, ...)` tensor, as `(1, ...)`.
fn step_of(x: &Tensor, t: usize) -> Result<Tensor, String> {
    let mut shape = x.shape.clone();
    shape[0] = 1;
    rows(x, x.shape[0], vec![t as i64], shape)
}

impl Kernel for RecurrentNetwork {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let input_named = |name: &str| -> Option<&Tensor> {
            self.inputs
                .iter()
                .position(|n| n == name)
                .and_then(|i| opt(inputs, i))
        };
        // The sequence length: the first dim of the op inputs that links read.
        let steps = self
            .links
            .iter()
            .find_map(|l| input_named(&l.external))
            .map(|x| x.shape.first().copied().unwrap_or(0))
            .ok_or("no link reads an input of the op (no sequence)")?;
        // Each recurrent state as its steps, step 0 the initial value.
        let mut states: Vec<(String, Vec<Option<Tensor>>)> = Vec::new();
        for (name, i) in &self.states {
            let init = arg(inputs, *i)?;
            let mut v = vec![None; steps + 1];
            let first = if init.shape.first() == Some(&1) {
                init.clone()
            } else {
                let mut s = vec![1];
                s.extend(&init.shape);
                init.clone().reshaped(s)?
            };
            v[0] = Some(first);
            states.push((name.clone(), v));
        }
        let names: Vec<String> = states.iter().map(|(n, _)| n.clone()).collect();
        let state_index = |name: &str| names.iter().position(|n| n == name);
        for t in 0..steps {
            let mut feed: Vec<(String, Tensor)> = Vec::new();
            for name in &self.step_inputs {
                let value = if *name == self.timestep {
                    Tensor::new(vec![1], Data::I32(vec![t as i32]))?
                } else if let Some(l) = self.links.iter().find(|l| l.internal == *name) {
                    let at = t as i64 + l.offset;
                    let at = usize::try_from(at).map_err(|_| format!("link step {at}"))?;
                    if let Some(s) = state_index(&l.external) {
                        states[s].1.get(at).cloned().flatten().ok_or_else(|| {
                            format!("step {at} of {} is read before it is written", l.external)
                        })?
                    } else {
                        let x = input_named(&l.external)
                            .ok_or_else(|| format!("link to unknown blob {}", l.external))?;
                        if at >= x.shape.first().copied().unwrap_or(0) {
                            return Err(format!("step {at} of {} ({:?})", l.external, x.shape));
                        }
                        step_of(x, at)?
                    }
                } else {
                    input_named(name)
                        .ok_or_else(|| {
                            format!("the step net reads {name}, which is not an input of the op")
                        })?
                        .clone()
                };
                feed.push((name.clone(), value));
            }
            let out = self.step.run(&feed).map_err(|e| format!("step {t}: {e}"))?;
            for (name, value) in out {
                let l = self
                    .links
                    .iter()
                    .find(|l| l.internal == name)
                    .ok_or_else(|| format!("step net output {name} has no link"))?;
                let s = state_index(&l.external).ok_or_else(|| {
                    format!(
                        "step net output {name} links to {}, not a state",
                        l.external
                    )
                })?;
                let at = usize::try_from(t as i64 + l.offset)
                    .ok()
                    .filter(|&a| a <= steps)
                    .ok_or_else(|| format!("link offset {}", l.offset))?;
                states[s].1[at] = Some(value);
            }
        }
        let _ = &self.step_outputs;
        let mut results = Vec::new();
        for name in &self.outputs {
            let Some((src, _, off)) = self.aliases.iter().find(|(_, d, _)| d == name) else {
                results.push(Tensor::f32(vec![0], vec![])?);
                continue;
            };
            let s = state_index(src).ok_or_else(|| format!("alias of unknown state {src}"))?;
            let all = &states[s].1;
            let from = if *off >= 0 {
                usize::try_from(*off).unwrap_or(0)
            } else {
                (all.len() as i64 + off).max(0) as usize
            };
            let parts: Vec<&Tensor> = all[from.min(all.len())..]
                .iter()
                .map(|x| x.as_ref().ok_or("a state step was never written"))
                .collect::<Result<_, _>>()?;
            if parts.is_empty() {
                return Err(format!("alias {name}: no steps"));
            }
            results.push(concat(&parts, 0)?);
        }
        Ok(results)
    }
}

//! Caffe2 -> ONNX: an `init_net` + `predict_net` pair as one ONNX model, by
//! the rules of Caffe2's ONNX frontend (`caffe2_net_to_onnx_model`): the
//! init net's fill ops become initializers, the data inputs are typed from
//! the caller's shapes and types, in-place ops are renamed into SSA form
//! (`name_<version>` for every write after the first), and each Caffe2 op
//! becomes ONNX nodes ([`ops`]). Default opset 9, as the frontend; up to
//! [`NEWEST_TO_ONNX_OPSET`] with the attributes that
//! later opsets moved to inputs.
//!
//! [`caffe2_to_onnx_streamed`] does the same with the init net's large fill
//! values left in its file: they go from the map to the output file piece
//! by piece ([`netport_onnx::stream`]), so converting a 500 MB pair takes
//! memory for the nets' structure, not for the weights.

mod ops;

use crate::error::{ConvertError, UnsupportedNode, invalid};
use netport_caffe2::Caffe2Model;
use netport_caffe2::floats::{LazyFloats, LazyNetDef};
use netport_caffe2::proto::{Argument, NetDef, OperatorDef};
use netport_onnx::proto::tensor_proto::DataType;
use netport_onnx::proto::type_proto::{Tensor, Value};
use netport_onnx::proto::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};
use netport_onnx::shapes::{TensorType, infer_shapes};
use netport_onnx::{Dim, StreamedModel, TensorSource};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The oldest opset the Caffe2 -> ONNX direction writes.
pub const OLDEST_TO_ONNX_OPSET: i64 = 7;
/// The newest opset the Caffe2 -> ONNX direction writes.
pub const NEWEST_TO_ONNX_OPSET: i64 = 21;

/// Options of [`caffe2_to_onnx`].
#[derive(Debug, Clone)]
pub struct ToOnnxOptions {
    /// The ONNX opset to write (default 9, as Caffe2's frontend).
    pub opset: i64,
    /// Shapes of the data inputs (the predict net's external inputs that the
    /// init net does not create), by name.
    pub input_shapes: Vec<(String, Vec<i64>)>,
    /// Element types (ONNX `TensorProto.DataType` codes) of data inputs;
    /// FLOAT when not given.
    pub input_types: Vec<(String, i32)>,
}

impl Default for ToOnnxOptions {
    fn default() -> Self {
        ToOnnxOptions {
            opset: 9,
            input_shapes: Vec::new(),
            input_types: Vec::new(),
        }
    }
}

fn arg<'a>(op: &'a OperatorDef, name: &str) -> Option<&'a Argument> {
    op.arg.iter().find(|a| a.name() == name)
}

/// The floats of a Caffe2 fill op as the bytes of an ONNX FLOAT tensor,
/// read from the init net's map as they are written.
#[derive(Debug)]
struct FillFloats(LazyFloats);

impl TensorSource for FillFloats {
    fn byte_len(&self) -> u64 {
        self.0.byte_len()
    }

    fn write_to(
        &self,
        out: &mut dyn FnMut(&[u8]) -> Result<(), netport_onnx::OnnxError>,
    ) -> Result<(), netport_onnx::OnnxError> {
        // A short count (malformed records) is caught by the writer, which
        // compares the bytes written with `byte_len`.
        self.0.write_le(out).map(|_| ())
    }
}

/// A fill op of the init net as an ONNX initializer named `name`. With
/// `lazy` (the op's `values` left in the input), a `GivenTensorFill` gives
/// a tensor without data and the source of its bytes.
fn fill_to_tensor(
    op: &OperatorDef,
    name: &str,
    lazy: Option<&LazyFloats>,
) -> Result<(TensorProto, Option<LazyFloats>), ConvertError> {
    let ty = op.r#type();
    let what = |m: String| invalid(format!("init net op {ty} -> '{name}': {m}"));
    if !op.input.is_empty() {
        return Err(what(
            "a fill op with inputs cannot be an initializer".into(),
        ));
    }
    let shape = arg(op, "shape").map(|a| a.ints.clone()).unwrap_or_default();
    if let Some(d) = shape.iter().find(|&&d| d < 0) {
        return Err(what(format!("shape {shape:?} has a negative dim {d}")));
    }
    let numel = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| what(format!("shape {shape:?} overflows")))?;
    let mut t = TensorProto {
        name: Some(name.to_string()),
        dims: shape.clone(),
        ..Default::default()
    };
    let values = arg(op, "values");
    let check = |have: usize| -> Result<(), ConvertError> {
        if have as u64 != numel {
            return Err(what(format!(
                "shape {shape:?} needs {numel} values, the op holds {have}"
            )));
        }
        Ok(())
    };
    let le = |f: &mut dyn FnMut(&mut Vec<u8>)| {
        let mut v = Vec::new();
        f(&mut v);
        Some(bytes::Bytes::from(v))
    };
    if let Some(lazy) = lazy {
        check(usize::try_from(lazy.len()).unwrap_or(usize::MAX))?;
        if ty == "GivenTensorFill" {
            t.data_type = Some(DataType::Float as i32);
            return Ok((t, Some(lazy.clone())));
        }
    }
    let decoded;
    let values = match (lazy, values) {
        // Other fill types with lazy floats (GivenTensorDoubleFill): decoded.
        (Some(lazy), Some(a)) => {
            decoded = Argument {
                floats: lazy.to_vec(),
                ..a.clone()
            };
            Some(&decoded)
        }
        (_, v) => v,
    };
    match ty {
        "GivenTensorFill" | "GivenTensorDoubleFill" => {
            let v = values.map(|a| a.floats.as_slice()).unwrap_or_default();
            check(v.len())?;
            if ty == "GivenTensorFill" {
                t.data_type = Some(DataType::Float as i32);
                t.raw_data = le(&mut |b| v.iter().for_each(|x| b.extend(x.to_le_bytes())));
            } else {
                t.data_type = Some(DataType::Double as i32);
                t.raw_data =
                    le(&mut |b| v.iter().for_each(|x| b.extend(f64::from(*x).to_le_bytes())));
            }
        }
        "GivenTensorIntFill" | "GivenTensorInt64Fill" | "GivenTensorBoolFill" => {
            let v = values.map(|a| a.ints.as_slice()).unwrap_or_default();
            check(v.len())?;
            match ty {
                "GivenTensorIntFill" => {
                    t.data_type = Some(DataType::Int32 as i32);
                    t.raw_data =
                        le(&mut |b| v.iter().for_each(|x| b.extend((*x as i32).to_le_bytes())));
                }
                "GivenTensorInt64Fill" => {
                    t.data_type = Some(DataType::Int64 as i32);
                    t.raw_data = le(&mut |b| v.iter().for_each(|x| b.extend(x.to_le_bytes())));
                }
                _ => {
                    t.data_type = Some(DataType::Bool as i32);
                    t.raw_data = le(&mut |b| v.iter().for_each(|x| b.push(u8::from(*x != 0))));
                }
            }
        }
        "GivenTensorStringFill" => {
            let v = values.map(|a| a.strings.clone()).unwrap_or_default();
            check(v.len())?;
            t.data_type = Some(DataType::String as i32);
            t.string_data = v;
        }
        "GivenTensorByteStringToUInt8Fill" => {
            let v = values
                .and_then(|a| a.strings.first().cloned())
                .unwrap_or_default();
            check(v.len())?;
            t.data_type = Some(DataType::Uint8 as i32);
            t.raw_data = Some(v);
        }
        "ConstantFill" => {
            let dtype = arg(op, "dtype").and_then(|a| a.i).unwrap_or(1);
            let value = arg(op, "value");
            let n = usize::try_from(numel).map_err(|_| what("too many elements".into()))?;
            if n > (1 << 28) {
                return Err(what(format!("{n} elements is too large a constant")));
            }
            let (code, bytes): (DataType, Vec<u8>) = match dtype {
                1 => {
                    let f = value.and_then(|a| a.f).unwrap_or(0.0);
                    (DataType::Float, f.to_le_bytes().repeat(n))
                }
                2 => {
                    let i = value.and_then(|a| a.i).unwrap_or(0) as i32;
                    (DataType::Int32, i.to_le_bytes().repeat(n))
                }
                10 => {
                    let i = value.and_then(|a| a.i).unwrap_or(0);
                    (DataType::Int64, i.to_le_bytes().repeat(n))
                }
                5 => {
                    let i = value.and_then(|a| a.i).unwrap_or(0);
                    (DataType::Bool, vec![u8::from(i != 0); n])
                }
                other => return Err(what(format!("ConstantFill dtype {other}"))),
            };
            t.data_type = Some(code as i32);
            t.raw_data = Some(bytes.into());
        }
        other => {
            return Err(what(format!(
                "{other} is not a fill op Caffe2's frontend takes as an initializer"
            )));
        }
    }
    Ok((t, None))
}

fn tensor_type(elem: i32, dims: Option<&[i64]>) -> TypeProto {
    TypeProto {
        value: Some(Value::TensorType(Tensor {
            elem_type: Some(elem),
            shape: dims.map(|d| TensorShapeProto {
                dim: d.iter().map(|&x| Dim::Fixed(x).to_proto()).collect(),
            }),
        })),
        ..Default::default()
    }
}

fn value_info(name: &str, ty: TypeProto) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(ty),
        ..Default::default()
    }
}

/// The graph under construction, with shape inference on demand.
pub(crate) struct Builder {
    pub(crate) opset: i64,
    pub(crate) nodes: Vec<NodeProto>,
    pub(crate) initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    used: HashSet<String>,
    counter: u64,
    /// Shapes from the last inference, and the node count it saw.
    cache: Option<(usize, BTreeMap<String, TensorType>)>,
    /// Initializer index by name.
    init_index: HashMap<String, usize>,
}

impl Builder {
    /// A fresh value name based on `base`.
    pub(crate) fn fresh(&mut self, base: &str) -> String {
        loop {
            let name = format!("{base}_netport{}", self.counter);
            self.counter += 1;
            if self.used.insert(name.clone()) {
                return name;
            }
        }
    }

    /// Adds an int64 initializer; returns its name.
    pub(crate) fn const_i64(&mut self, base: &str, values: &[i64]) -> String {
        let name = self.fresh(base);
        self.add_initializer(TensorProto {
            name: Some(name.clone()),
            dims: vec![values.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            raw_data: Some(
                values
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>()
                    .into(),
            ),
            ..Default::default()
        });
        name
    }

    /// Adds a float initializer of `dims`; returns its name.
    pub(crate) fn const_f32(&mut self, base: &str, dims: &[i64], values: &[f32]) -> String {
        let name = self.fresh(base);
        self.add_initializer(TensorProto {
            name: Some(name.clone()),
            dims: dims.to_vec(),
            data_type: Some(DataType::Float as i32),
            raw_data: Some(
                values
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>()
                    .into(),
            ),
            ..Default::default()
        });
        name
    }

    fn add_initializer(&mut self, t: TensorProto) {
        self.init_index
            .insert(t.name().to_string(), self.initializers.len());
        self.initializers.push(t);
    }

    /// An initializer by name.
    pub(crate) fn initializer(&self, name: &str) -> Option<&TensorProto> {
        self.init_index.get(name).map(|&i| &self.initializers[i])
    }

    /// The inferred shape of `name` (dims known or not), when its rank is known.
    pub(crate) fn shape(&mut self, name: &str) -> Option<Vec<Option<i64>>> {
        if let Some(t) = self.initializer(name) {
            return Some(t.dims.iter().map(|&d| Some(d)).collect());
        }
        let stale = self
            .cache
            .as_ref()
            .is_none_or(|(n, _)| *n != self.nodes.len());
        if stale {
            // Initializers without their data (only small int64 ones, which
            // shape inference may read as shapes), so no weight is copied.
            let initializer = self
                .initializers
                .iter()
                .map(|t| {
                    if t.data_type() == DataType::Int64 as i32
                        && t.dims.iter().product::<i64>() <= 64
                    {
                        t.clone()
                    } else {
                        TensorProto {
                            name: t.name.clone(),
                            dims: t.dims.clone(),
                            data_type: t.data_type,
                            ..Default::default()
                        }
                    }
                })
                .collect();
            let model = self.model_with(GraphProto {
                node: self.nodes.clone(),
                initializer,
                input: self.inputs.clone(),
                ..Default::default()
            });
            self.cache = Some((self.nodes.len(), infer_shapes(&model).values));
        }
        let t = self.cache.as_ref()?.1.get(name)?;
        Some(t.shape.as_ref()?.iter().map(Dim::value).collect())
    }

    pub(crate) fn fixed_shape(&mut self, name: &str) -> Option<Vec<i64>> {
        self.shape(name)?.into_iter().collect()
    }

    pub(crate) fn rank(&mut self, name: &str) -> Option<usize> {
        self.shape(name).map(|s| s.len())
    }

    fn model_with(&self, graph: GraphProto) -> ModelProto {
        let opsets = [("", self.opset)];
        ModelProto {
            ir_version: netport_onnx::build::ir_version_for(&opsets),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(self.opset),
            }],
            producer_name: Some("netport".into()),
            producer_version: Some(env!("CARGO_PKG_VERSION").into()),
            graph: Some(graph),
            ..Default::default()
        }
    }
}

/// Converts a Caffe2 pair to an ONNX model. Ops with no ONNX equivalent are
/// all listed in one [`ConvertError::Unsupported`]; broken nets (fills that
/// disagree with their shape, inputs never produced, blobs produced twice
/// by the init net) give [`ConvertError::Invalid`].
pub fn caffe2_to_onnx(
    pair: &Caffe2Model,
    options: &ToOnnxOptions,
) -> Result<ModelProto, ConvertError> {
    let lazy = LazyNetDef::default();
    Ok(convert(&pair.init_net, &lazy, &pair.predict_net, options)?.into_model()?)
}

/// [`caffe2_to_onnx`] for an init net whose large fill values were left in
/// its file ([`netport_caffe2::floats::load_netdef_lazy`]): the result's
/// FLOAT initializers from those fills hold no data, and
/// [`StreamedModel::save`] copies their floats from the init net's map to
/// the output piece by piece, so memory stays flat in the weights.
pub fn caffe2_to_onnx_streamed(
    init: &LazyNetDef,
    predict: &NetDef,
    options: &ToOnnxOptions,
) -> Result<StreamedModel, ConvertError> {
    convert(&init.net, init, predict, options)
}

fn convert(
    init: &NetDef,
    lazy: &LazyNetDef,
    pred: &NetDef,
    options: &ToOnnxOptions,
) -> Result<StreamedModel, ConvertError> {
    if !(OLDEST_TO_ONNX_OPSET..=NEWEST_TO_ONNX_OPSET).contains(&options.opset) {
        return Err(invalid(format!(
            "--opset {}: Caffe2 -> ONNX writes opsets {OLDEST_TO_ONNX_OPSET}..={NEWEST_TO_ONNX_OPSET}",
            options.opset
        )));
    }
    let shapes: HashMap<&str, &[i64]> = options
        .input_shapes
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let types: HashMap<&str, i32> = options
        .input_types
        .iter()
        .map(|(n, t)| (n.as_str(), *t))
        .collect();
    let typed = |n: &str| shapes.contains_key(n) || types.contains_key(n);

    // The init net's fills, less the fake ones mobile_exporter writes for
    // the data inputs (a fill whose output the caller typed).
    let mut initializers = Vec::new();
    let mut sources: Vec<(String, LazyFloats)> = Vec::new();
    let mut made: HashSet<String> = HashSet::new();
    for (op_index, op) in init.op.iter().enumerate() {
        if op.output.len() != 1 {
            return Err(invalid(format!(
                "init net op {} has {} outputs; a fill op has one",
                op.r#type(),
                op.output.len()
            )));
        }
        let out = &op.output[0];
        if typed(out) {
            continue;
        }
        if !made.insert(out.clone()) {
            return Err(invalid(format!("init net: blob '{out}' is created twice")));
        }
        let values_arg = op.arg.iter().position(|a| a.name() == "values");
        let floats = values_arg.and_then(|a| lazy.floats_of(op_index, a));
        let (tensor, source) = fill_to_tensor(op, out, floats)?;
        if let Some(source) = source {
            sources.push((out.clone(), source));
        }
        initializers.push(tensor);
    }
    let mut inputs = Vec::new();
    let mut missing = Vec::new();
    let mut seen_inputs = HashSet::new();
    for name in &pred.external_input {
        if made.contains(name) || !seen_inputs.insert(name.clone()) {
            continue;
        }
        match (shapes.get(name.as_str()), types.get(name.as_str())) {
            (None, None) => missing.push(name.clone()),
            (dims, ty) => inputs.push(value_info(
                name,
                tensor_type(ty.copied().unwrap_or(DataType::Float as i32), dims.copied()),
            )),
        }
    }
    if !missing.is_empty() {
        return Err(invalid(format!(
            "no shape or type for the data input(s) {}: pass --input-shape NAME=DIMS \
             (and --input-type NAME=DTYPE when not float)",
            missing.join(", ")
        )));
    }
    for name in shapes.keys().chain(types.keys()) {
        if !pred.external_input.iter().any(|i| i == name) {
            return Err(invalid(format!(
                "--input-shape/--input-type: the predict net has no external input '{name}'"
            )));
        }
    }
    let mut used: HashSet<String> = made.clone();
    used.extend(pred.external_input.iter().cloned());
    for op in &pred.op {
        used.extend(op.input.iter().cloned());
        used.extend(op.output.iter().cloned());
    }
    let mut b = Builder {
        opset: options.opset,
        nodes: Vec::new(),
        initializers: Vec::new(),
        inputs: inputs.clone(),
        used,
        counter: 0,
        cache: None,
        init_index: HashMap::new(),
    };
    for t in initializers {
        b.add_initializer(t);
    }

    // SSA: the current ONNX name of every blob; a blob written again gets
    // `<name>_<version>`.
    let mut current: HashMap<String, String> = HashMap::new();
    let mut versions: HashMap<String, u64> = HashMap::new();
    for name in made
        .iter()
        .chain(inputs.iter().map(|i| i.name.as_ref().expect("named")))
    {
        current.insert(name.clone(), name.clone());
        versions.insert(name.clone(), 0);
    }
    let mut unsupported = Vec::new();
    for (index, op) in pred.op.iter().enumerate() {
        let mut renamed = op.clone();
        for i in &mut renamed.input {
            match current.get(i.as_str()) {
                Some(c) => *i = c.clone(),
                None => {
                    return Err(invalid(format!(
                        "predict net op {index} ({}): input '{i}' is never produced \
                         (not an external input, not created by the init net, not written \
                         by an earlier op)",
                        op.r#type()
                    )));
                }
            }
        }
        let mut writes = Vec::new();
        for o in &mut renamed.output {
            let v = versions
                .entry(o.clone())
                .and_modify(|v| *v += 1)
                .or_insert(0);
            let name = if *v == 0 {
                o.clone()
            } else {
                let mut candidate = format!("{o}_{v}");
                while !b.used.insert(candidate.clone()) {
                    *v += 1;
                    candidate = format!("{o}_{v}");
                }
                candidate
            };
            writes.push((o.clone(), name.clone()));
            *o = name;
        }
        // Which extra outputs later ops read decides what is emitted.
        let read_later: HashSet<&str> = pred.op[index + 1..]
            .iter()
            .flat_map(|o| o.input.iter().map(String::as_str))
            .chain(pred.external_output.iter().map(String::as_str))
            .collect();
        let needed: Vec<bool> = op
            .output
            .iter()
            .map(|o| read_later.contains(o.as_str()))
            .collect();
        match ops::convert(&mut b, &renamed, &needed) {
            Ok(()) => {}
            Err(ops::Fail::Unsupported(reason)) => unsupported.push(UnsupportedNode {
                name: op.name().to_string(),
                op: op.r#type().to_string(),
                opset: 0,
                reason,
            }),
        }
        for (blob, name) in writes {
            current.insert(blob, name);
        }
    }
    if !unsupported.is_empty() {
        return Err(ConvertError::Unsupported {
            target: "ONNX",
            nodes: unsupported,
        });
    }
    let mut outputs = Vec::new();
    for o in &pred.external_output {
        let name = current.get(o).ok_or_else(|| {
            invalid(format!(
                "external output '{o}' is never produced by the nets"
            ))
        })?;
        outputs.push(name.clone());
    }
    // Output types from shape inference.
    let mut output_infos = Vec::new();
    for name in &outputs {
        let shape = b.shape(name);
        let elem = b
            .cache
            .as_ref()
            .and_then(|(_, v)| v.get(name))
            .map(|t| t.elem_type)
            .filter(|&e| e != 0)
            .or_else(|| b.initializer(name).map(TensorProto::data_type))
            .unwrap_or(DataType::Float as i32);
        let ty = match shape {
            Some(s) if s.iter().all(Option::is_some) => {
                let d: Vec<i64> = s.into_iter().flatten().collect();
                tensor_type(elem, Some(&d))
            }
            _ => tensor_type(elem, None),
        };
        output_infos.push(value_info(name, ty));
    }
    let mut graph_inputs = inputs;
    if options.opset <= 9 {
        // As the frontend (and onnx of that time): initializers are graph
        // inputs too, which Caffe2's own backend needs.
        for t in &b.initializers {
            graph_inputs.push(value_info(
                t.name(),
                tensor_type(t.data_type(), Some(&t.dims)),
            ));
        }
    }
    let graph = GraphProto {
        name: Some(pred.name().to_string())
            .filter(|n| !n.is_empty())
            .or(Some("caffe2".into())),
        node: std::mem::take(&mut b.nodes),
        initializer: std::mem::take(&mut b.initializers),
        input: graph_inputs,
        output: output_infos,
        ..Default::default()
    };
    let index: HashMap<&str, usize> = graph
        .initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name(), i))
        .collect();
    let at: Vec<(usize, LazyFloats)> = sources
        .into_iter()
        .filter_map(|(name, f)| index.get(name.as_str()).map(|&i| (i, f)))
        .collect();
    let mut model = StreamedModel::new(b.model_with(graph));
    for (i, f) in at {
        model.set_source(i, Box::new(FillFloats(f)))?;
    }
    Ok(model)
}

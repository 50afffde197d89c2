//! What `netport inspect` shows about a Caffe2 net or init/predict pair, as
//! plain structs (no serde here; the CLI renders them).
//!
//! * **Op types** are counted over the net's own ops (not ops of nets nested
//!   in arguments, which are counted separately as `nested_nets`), and listed
//!   **in order of first appearance**.
//! * **Fill ops** are the ops that create a tensor from their arguments. Each
//!   is reported with its output blob, the Caffe2 `TensorProto.DataType` code
//!   of the tensor it produces, its shape (the `shape` argument), the number
//!   of values it carries, and its element and byte counts. The known fill
//!   ops and the dtype they produce:
//!
//!   | op | dtype | values |
//!   |---|---|---|
//!   | `GivenTensorFill` | FLOAT, or its `dtype` argument | `values` (floats, ints or strings) |
//!   | `GivenTensorDoubleFill` | DOUBLE | `values` floats |
//!   | `GivenTensorBoolFill` | BOOL | `values` ints |
//!   | `GivenTensorInt16Fill` | INT16 | `values` ints |
//!   | `GivenTensorIntFill` | INT32 | `values` ints |
//!   | `GivenTensorInt64Fill` | INT64 | `values` ints |
//!   | `GivenTensorStringFill` | STRING | `values` strings |
//!   | `GivenTensorByteStringToUInt8Fill` | UINT8 | the bytes of `values` |
//!   | `Int8GivenTensorFill` | UINT8 (quantized) | the bytes of `values` |
//!   | `Int8GivenIntTensorFill` | INT32 (quantized) | `values` ints |
//!   | `ConstantFill`, `DiagonalFill` | the `dtype` argument; without it FLOAT, or INT64 if `value` is an int | - |
//!   | `UniqueUniformFill` | the `dtype` argument, default INT32 | - |
//!   | `GaussianFill`, `UniformFill`, `XavierFill`, `MSRAFill`, `RangeFill` | FLOAT | - |
//!   | `UniformIntFill`, `LengthsRangeFill` | INT32 | - |
//!
//!   The `dtype` argument may be a code (`i`) or a name (`s`, e.g. `"INT64"`),
//!   as Caffe2 accepts both.
//!
//!   Any **other op whose type ends in `Fill`** is reported too, with
//!   `known: false`: its dtype is its `dtype` argument if it has one (else
//!   unknown), its shape and counts come from a `shape` argument as for the
//!   known ones, and its value count is unknown.
//!
//! * **Shapes and counts.** A fill with an input takes its shape from that
//!   input at run time (`shape_from_input`): no element or byte count. A fill
//!   without input and without `shape` makes a scalar (1 element), as Caffe2
//!   does. Byte counts are elements times the element size; for strings (no
//!   fixed size) only `GivenTensorStringFill` has one, the total length of
//!   its values. Negative dimensions or overflowing products give no count.
//! * **Totals** group fills by dtype (ascending code, unknown dtype last) and
//!   sum the elements and bytes of those with known counts; `unsized_tensors` counts
//!   the others. For a pair, the **parameters** are the init net's fills.

use crate::model::Caffe2Model;
use crate::proto::tensor_proto::DataType;
use crate::proto::{Argument, DeviceOption, NetDef, OperatorDef};
use netport_tensor::DType;
use std::collections::HashSet;

/// How often an op type occurs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpTypeCount {
    /// The op type.
    pub op_type: String,
    /// How many ops have it.
    pub count: usize,
}

/// One fill op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillSummary {
    /// Index of the op in the net.
    pub op_index: usize,
    /// Its type (`GivenTensorFill`, ...).
    pub op_type: String,
    /// The blob it creates (its first output; empty if it has none).
    pub output: String,
    /// False for a `*Fill` op not in the table of the module docs.
    pub known: bool,
    /// Caffe2 `TensorProto.DataType` code of the tensor it produces.
    pub dtype: Option<i32>,
    /// The `shape` argument.
    pub shape: Option<Vec<i64>>,
    /// The op has an input, so its shape is only known at run time.
    pub shape_from_input: bool,
    /// How many values it carries (bytes for the byte-string fills); `None`
    /// for fills that generate their values.
    pub value_count: Option<u64>,
    /// Elements of the tensor it produces, when the shape is known.
    pub element_count: Option<u64>,
    /// Bytes of the tensor it produces, when known.
    pub byte_count: Option<u64>,
}

impl FillSummary {
    /// The Caffe2 name of [`dtype`](Self::dtype): `FLOAT`, `INT64`, ...
    pub fn dtype_name(&self) -> Option<&'static str> {
        self.dtype.and_then(dtype_name)
    }

    /// [`dtype`](Self::dtype) as a netport element type (`None` for STRING
    /// and the non-numeric Caffe2 types).
    pub fn tensor_dtype(&self) -> Option<DType> {
        self.dtype.and_then(DType::from_caffe2)
    }
}

/// Totals of the fills of one dtype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DTypeTotal {
    /// Caffe2 `TensorProto.DataType` code; `None` for fills of unknown dtype.
    pub dtype: Option<i32>,
    /// Number of fill ops.
    pub tensors: usize,
    /// Sum over the fills with a known element count.
    pub elements: u64,
    /// Sum over the fills with a known byte count.
    pub bytes: u64,
    /// Fills without a known byte count.
    pub unsized_tensors: usize,
}

impl DTypeTotal {
    /// [`dtype`](Self::dtype) as a netport element type.
    pub fn tensor_dtype(&self) -> Option<DType> {
        self.dtype.and_then(DType::from_caffe2)
    }
}

/// The summary of one net.
#[derive(Debug, Clone, PartialEq)]
pub struct NetSummary {
    /// The net's name, when set.
    pub name: Option<String>,
    /// The executor type (`""`/`"simple"`, `"dag"`, `"async_scheduling"`, ...).
    pub net_type: Option<String>,
    /// Number of ops.
    pub op_count: usize,
    /// In order of first appearance.
    pub op_types: Vec<OpTypeCount>,
    /// `external_input`, in order.
    pub external_inputs: Vec<String>,
    /// `external_output`, in order.
    pub external_outputs: Vec<String>,
    /// The net-level device option (copied by Caffe2 to ops without one).
    pub device_option: Option<DeviceOption>,
    /// Every fill op, in net order.
    pub fills: Vec<FillSummary>,
    /// The fills' totals by dtype.
    pub fill_totals: Vec<DTypeTotal>,
    /// Nets nested in arguments (`n`, `nets`) at any depth, e.g. `If` branches.
    pub nested_nets: usize,
}

/// The summary of an init/predict pair.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSummary {
    /// The init net's summary.
    pub init: NetSummary,
    /// The predict net's summary.
    pub predict: NetSummary,
    /// The init net's fill totals.
    pub params_by_dtype: Vec<DTypeTotal>,
    /// Total bytes of the parameters with a known size.
    pub param_bytes: u64,
    /// The predict net's external inputs that no init net op produces: the
    /// data the caller feeds, in the predict net's order.
    pub data_inputs: Vec<String>,
    /// The predict net's external inputs that the init net produces: the
    /// weights, in the predict net's order.
    pub weight_inputs: Vec<String>,
}

impl ModelSummary {
    /// Summarises a pair.
    pub fn of(model: &Caffe2Model) -> Self {
        let init = NetSummary::of(&model.init_net);
        let predict = NetSummary::of(&model.predict_net);
        let produced: HashSet<&str> = model
            .init_net
            .op
            .iter()
            .flat_map(|op| op.output.iter().map(String::as_str))
            .collect();
        let (weight_inputs, data_inputs) = model
            .predict_net
            .external_input
            .iter()
            .cloned()
            .partition(|name| produced.contains(name.as_str()));
        ModelSummary {
            params_by_dtype: init.fill_totals.clone(),
            param_bytes: init.fill_totals.iter().map(|t| t.bytes).sum(),
            init,
            predict,
            data_inputs,
            weight_inputs,
        }
    }
}

impl NetSummary {
    /// Summarises one net.
    pub fn of(net: &NetDef) -> Self {
        let mut op_types: Vec<OpTypeCount> = Vec::new();
        for op in &net.op {
            let op_type = op.r#type.as_deref().unwrap_or("");
            match op_types.iter_mut().find(|c| c.op_type == op_type) {
                Some(c) => c.count += 1,
                None => op_types.push(OpTypeCount {
                    op_type: op_type.to_string(),
                    count: 1,
                }),
            }
        }
        let fills: Vec<FillSummary> = net
            .op
            .iter()
            .enumerate()
            .filter_map(|(i, op)| fill_summary(i, op))
            .collect();
        NetSummary {
            name: net.name.clone(),
            net_type: net.r#type.clone(),
            op_count: net.op.len(),
            op_types,
            external_inputs: net.external_input.clone(),
            external_outputs: net.external_output.clone(),
            device_option: net.device_option.clone(),
            fill_totals: totals(&fills),
            fills,
            nested_nets: nested_nets(net),
        }
    }
}

/// The Caffe2 name of a `TensorProto.DataType` code.
pub fn dtype_name(code: i32) -> Option<&'static str> {
    DataType::try_from(code).ok().map(|d| d.as_str_name())
}

/// Bytes per element of a Caffe2 dtype (from [`DType::from_caffe2`]); `None`
/// for STRING and the non-numeric types.
pub fn dtype_size(code: i32) -> Option<u64> {
    DType::from_caffe2(code).map(|d| d.size_in_bytes() as u64)
}

/// True for an op that creates a tensor from its arguments: a known fill op
/// (the table of the module docs) or any other op whose type ends in `Fill`.
pub fn is_fill_op(op_type: &str) -> bool {
    known_fill(op_type).is_some() || op_type.ends_with("Fill")
}

/// How a known fill op's values are given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Values {
    /// A `values` list (floats, ints or strings).
    List,
    /// The bytes of `values` (strings or `s`) are the elements.
    ByteString,
    /// Generated at run time.
    Generated,
}

/// The dtype rule and values of a known fill op, or `None` if unknown.
fn known_fill(op_type: &str) -> Option<(DtypeRule, Values)> {
    use DataType::*;
    use DtypeRule::*;
    Some(match op_type {
        "GivenTensorFill" => (ArgOr(Float), Values::List),
        "GivenTensorDoubleFill" => (Fixed(Double), Values::List),
        "GivenTensorBoolFill" => (Fixed(Bool), Values::List),
        "GivenTensorInt16Fill" => (Fixed(Int16), Values::List),
        "GivenTensorIntFill" => (Fixed(Int32), Values::List),
        "GivenTensorInt64Fill" => (Fixed(Int64), Values::List),
        "GivenTensorStringFill" => (Fixed(String), Values::List),
        "GivenTensorByteStringToUInt8Fill" => (Fixed(Uint8), Values::ByteString),
        "Int8GivenTensorFill" => (Fixed(Uint8), Values::ByteString),
        "Int8GivenIntTensorFill" => (Fixed(Int32), Values::List),
        "ConstantFill" | "DiagonalFill" => (ArgOrValue, Values::Generated),
        "UniqueUniformFill" => (ArgOr(Int32), Values::Generated),
        "GaussianFill" | "UniformFill" | "XavierFill" | "MSRAFill" | "RangeFill" => {
            (Fixed(Float), Values::Generated)
        }
        "UniformIntFill" | "LengthsRangeFill" => (Fixed(Int32), Values::Generated),
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum DtypeRule {
    Fixed(DataType),
    /// The `dtype` argument, else this.
    ArgOr(DataType),
    /// The `dtype` argument, else FLOAT or INT64 after the type of `value`.
    ArgOrValue,
}

fn arg<'a>(op: &'a OperatorDef, name: &str) -> Option<&'a Argument> {
    op.arg.iter().find(|a| a.name.as_deref() == Some(name))
}

/// The `dtype` argument. `Some(None)` if present but unreadable.
fn dtype_arg(op: &OperatorDef) -> Option<Option<i32>> {
    arg(op, "dtype").map(data_type_arg)
}

/// The `TensorProto.DataType` code a data type argument names (`dtype` of
/// the fills, `to` of Cast): a code (`i`), or a name (`s`) upper-cased and
/// parsed as Caffe2's `TensorProto_DataType_Parse` (`"float"`, `"INT64"`).
/// `None` if it is neither.
pub fn data_type_arg(a: &Argument) -> Option<i32> {
    if let Some(i) = a.i {
        return i32::try_from(i).ok();
    }
    let name = String::from_utf8_lossy(a.s.as_deref()?).to_ascii_uppercase();
    DataType::from_str_name(&name).map(|d| d as i32)
}

fn fill_summary(op_index: usize, op: &OperatorDef) -> Option<FillSummary> {
    let op_type = op.r#type.as_deref().unwrap_or("");
    if !is_fill_op(op_type) {
        return None;
    }
    let known = known_fill(op_type);
    let dtype = match known {
        Some((DtypeRule::Fixed(d), _)) => Some(d as i32),
        Some((DtypeRule::ArgOr(d), _)) => dtype_arg(op).unwrap_or(Some(d as i32)),
        Some((DtypeRule::ArgOrValue, _)) => {
            dtype_arg(op).unwrap_or_else(|| match arg(op, "value") {
                Some(v) if v.i.is_some() => Some(DataType::Int64 as i32),
                Some(v) if v.f.is_none() => None,
                _ => Some(DataType::Float as i32),
            })
        }
        None => dtype_arg(op).flatten(),
    };
    let shape = arg(op, "shape").map(|a| a.ints.clone());
    let shape_from_input = !op.input.is_empty();
    let element_count = if shape_from_input {
        None
    } else {
        shape
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .try_fold(1u64, |n, &d| {
                u64::try_from(d).ok().and_then(|d| n.checked_mul(d))
            })
    };
    let values = arg(op, "values");
    let value_count = match known.map(|(_, v)| v) {
        Some(Values::List) => Some(values.map_or(0, |v| {
            (v.floats.len() + v.ints.len() + v.strings.len()) as u64
        })),
        Some(Values::ByteString) => Some(values.map_or(0, |v| {
            v.strings.iter().map(|s| s.len() as u64).sum::<u64>()
                + v.s.as_ref().map_or(0, |s| s.len() as u64)
        })),
        Some(Values::Generated) | None => None,
    };
    let byte_count = match (dtype, element_count) {
        (Some(code), _) if code == DataType::String as i32 => (op_type == "GivenTensorStringFill")
            .then(|| values.map_or(0, |v| v.strings.iter().map(|s| s.len() as u64).sum()))
            .filter(|_| element_count.is_some()),
        (Some(code), Some(n)) => dtype_size(code).and_then(|size| n.checked_mul(size)),
        _ => None,
    };
    Some(FillSummary {
        op_index,
        op_type: op_type.to_string(),
        output: op.output.first().cloned().unwrap_or_default(),
        known: known.is_some(),
        dtype,
        shape,
        shape_from_input,
        value_count,
        element_count,
        byte_count,
    })
}

fn totals(fills: &[FillSummary]) -> Vec<DTypeTotal> {
    let mut totals: Vec<DTypeTotal> = Vec::new();
    for fill in fills {
        let total = match totals.iter_mut().find(|t| t.dtype == fill.dtype) {
            Some(t) => t,
            None => {
                totals.push(DTypeTotal {
                    dtype: fill.dtype,
                    tensors: 0,
                    elements: 0,
                    bytes: 0,
                    unsized_tensors: 0,
                });
                totals.last_mut().expect("just pushed")
            }
        };
        total.tensors += 1;
        total.elements = total
            .elements
            .saturating_add(fill.element_count.unwrap_or(0));
        match fill.byte_count {
            Some(b) => total.bytes = total.bytes.saturating_add(b),
            None => total.unsized_tensors += 1,
        }
    }
    // Known codes ascending, unknown dtype last.
    totals.sort_by_key(|t| (t.dtype.is_none(), t.dtype));
    totals
}

/// Counts the nets nested in arguments, without recursion (a net built in
/// code can nest deeper than any decoded one).
fn nested_nets(net: &NetDef) -> usize {
    fn children(net: &NetDef) -> impl Iterator<Item = &NetDef> {
        let op_args = net.op.iter().flat_map(|op| op.arg.iter());
        net.arg
            .iter()
            .chain(op_args)
            .flat_map(|a| a.n.iter().chain(a.nets.iter()))
    }
    let mut stack: Vec<&NetDef> = children(net).collect();
    let mut count = 0;
    while let Some(next) = stack.pop() {
        count += 1;
        stack.extend(children(next));
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn op(op_type: &str, inputs: &[&str], outputs: &[&str], args: Vec<Argument>) -> OperatorDef {
        OperatorDef {
            r#type: Some(op_type.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            arg: args,
            ..Default::default()
        }
    }

    fn named(name: &str) -> Argument {
        Argument {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    fn ints(name: &str, v: &[i64]) -> Argument {
        Argument {
            ints: v.to_vec(),
            ..named(name)
        }
    }

    fn floats(name: &str, v: &[f32]) -> Argument {
        Argument {
            floats: v.to_vec(),
            ..named(name)
        }
    }

    fn int(name: &str, i: i64) -> Argument {
        Argument {
            i: Some(i),
            ..named(name)
        }
    }

    fn string(name: &str, s: &'static [u8]) -> Argument {
        Argument {
            s: Some(Bytes::from_static(s)),
            ..named(name)
        }
    }

    fn strings(name: &str, v: &[&'static [u8]]) -> Argument {
        Argument {
            strings: v.iter().map(|s| Bytes::from_static(s)).collect(),
            ..named(name)
        }
    }

    fn fill<'a>(s: &'a NetSummary, output: &str) -> &'a FillSummary {
        s.fills.iter().find(|f| f.output == output).unwrap()
    }

    fn init_net() -> NetDef {
        NetDef {
            name: Some("init".into()),
            op: vec![
                op(
                    "GivenTensorFill",
                    &[],
                    &["w"],
                    vec![floats("values", &[0.0; 6]), ints("shape", &[2, 3])],
                ),
                op(
                    "GivenTensorInt64Fill",
                    &[],
                    &["idx"],
                    vec![ints("values", &[1, 2]), ints("shape", &[2])],
                ),
                op(
                    "GivenTensorFill",
                    &[],
                    &["as_int"],
                    vec![
                        ints("values", &[1, 2, 3]),
                        ints("shape", &[3]),
                        int("dtype", 2),
                    ],
                ),
                op(
                    "GivenTensorFill",
                    &[],
                    &["as_i64_by_name"],
                    vec![
                        ints("values", &[1]),
                        ints("shape", &[1]),
                        string("dtype", b"int64"),
                    ],
                ),
                op(
                    "GivenTensorByteStringToUInt8Fill",
                    &[],
                    &["bytes"],
                    vec![
                        strings("values", &[b"\x01\x02\x03\x04"]),
                        ints("shape", &[4]),
                        int("dtype", 4),
                    ],
                ),
                op(
                    "GivenTensorStringFill",
                    &[],
                    &["labels"],
                    vec![strings("values", &[b"cat", b"horse"]), ints("shape", &[2])],
                ),
                op(
                    "ConstantFill",
                    &[],
                    &["c_default"],
                    vec![ints("shape", &[5])],
                ),
                op(
                    "ConstantFill",
                    &[],
                    &["c_int"],
                    vec![ints("shape", &[5]), int("value", 1)],
                ),
                op(
                    "ConstantFill",
                    &[],
                    &["c_dtype"],
                    vec![
                        ints("shape", &[2, 2]),
                        int("dtype", 13),
                        floats("value", &[]),
                    ],
                ),
                op(
                    "ConstantFill",
                    &["x"],
                    &["c_like"],
                    vec![int("input_as_shape", 1)],
                ),
                op("XavierFill", &[], &["xavier"], vec![ints("shape", &[4, 4])]),
                op(
                    "GivenTensorFill",
                    &[],
                    &["scalar"],
                    vec![floats("values", &[7.0])],
                ),
                op(
                    "GivenTensorFill",
                    &[],
                    &["neg"],
                    vec![ints("shape", &[-1, 3])],
                ),
                op(
                    "MyCustomFill",
                    &[],
                    &["custom"],
                    vec![ints("shape", &[3]), int("dtype", 10)],
                ),
                op("OtherFill", &[], &["other"], vec![]),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn fills_report_dtype_shape_and_sizes() {
        let s = NetSummary::of(&init_net());
        let w = fill(&s, "w");
        assert_eq!(
            (
                w.dtype_name(),
                w.shape.clone(),
                w.value_count,
                w.element_count,
                w.byte_count
            ),
            (Some("FLOAT"), Some(vec![2, 3]), Some(6), Some(6), Some(24))
        );
        assert!(w.known && !w.shape_from_input && w.op_index == 0);
        let f = fill(&s, "idx");
        assert_eq!((f.dtype_name(), f.byte_count), (Some("INT64"), Some(16)));
        let f = fill(&s, "as_int");
        assert_eq!(
            (f.dtype_name(), f.value_count, f.byte_count),
            (Some("INT32"), Some(3), Some(12))
        );
        assert_eq!(fill(&s, "as_i64_by_name").dtype_name(), Some("INT64"));
        let f = fill(&s, "bytes");
        assert_eq!(
            (f.dtype_name(), f.value_count, f.byte_count),
            (Some("UINT8"), Some(4), Some(4))
        );
        let f = fill(&s, "labels");
        assert_eq!(
            (f.dtype_name(), f.value_count, f.byte_count),
            (Some("STRING"), Some(2), Some(8))
        );
        let f = fill(&s, "c_default");
        assert_eq!(
            (f.dtype_name(), f.value_count, f.byte_count),
            (Some("FLOAT"), None, Some(20))
        );
        assert_eq!(fill(&s, "c_int").dtype_name(), Some("INT64"));
        let f = fill(&s, "c_dtype");
        assert_eq!((f.dtype_name(), f.byte_count), (Some("DOUBLE"), Some(32)));
        let f = fill(&s, "c_like");
        assert!(f.shape_from_input);
        assert_eq!((f.element_count, f.byte_count), (None, None));
        assert_eq!(fill(&s, "xavier").byte_count, Some(64));
        let f = fill(&s, "scalar");
        assert_eq!(
            (f.shape.clone(), f.element_count, f.byte_count),
            (None, Some(1), Some(4))
        );
        assert_eq!(fill(&s, "neg").element_count, None);
        let f = fill(&s, "custom");
        assert!(!f.known);
        assert_eq!(
            (f.dtype_name(), f.value_count, f.byte_count),
            (Some("INT64"), None, Some(24))
        );
        let f = fill(&s, "other");
        assert_eq!(
            (f.dtype, f.element_count, f.byte_count),
            (None, Some(1), None)
        );
    }

    #[test]
    fn totals_group_by_dtype() {
        let s = NetSummary::of(&init_net());
        let by: Vec<(Option<&str>, usize, u64, usize)> = s
            .fill_totals
            .iter()
            .map(|t| {
                (
                    t.dtype.and_then(dtype_name),
                    t.tensors,
                    t.bytes,
                    t.unsized_tensors,
                )
            })
            .collect();
        assert_eq!(
            by,
            vec![
                // w 24, c_default 20, xavier 64, scalar 4; c_like and neg unsized
                (Some("FLOAT"), 6, 112, 2),
                (Some("INT32"), 1, 12, 0),
                (Some("STRING"), 1, 8, 0),
                (Some("UINT8"), 1, 4, 0),
                // idx 16, as_i64_by_name 8, c_int 40, custom 24
                (Some("INT64"), 4, 88, 0),
                (Some("DOUBLE"), 1, 32, 0),
                (None, 1, 0, 1),
            ]
        );
    }

    #[test]
    fn op_types_in_first_appearance_order_and_model_inputs() {
        let predict = NetDef {
            op: vec![
                op("Conv", &["data", "w"], &["c"], vec![]),
                op("Relu", &["c"], &["c"], vec![]),
                op("Conv", &["c", "w"], &["d"], vec![]),
                OperatorDef::default(),
                op(
                    "If",
                    &["cond"],
                    &["e"],
                    vec![Argument {
                        n: Some(NetDef {
                            arg: vec![Argument {
                                nets: vec![NetDef::default(), NetDef::default()],
                                ..Default::default()
                            }],
                            ..Default::default()
                        }),
                        ..named("then_net")
                    }],
                ),
            ],
            external_input: vec!["data".into(), "w".into(), "cond".into()],
            external_output: vec!["e".into()],
            ..Default::default()
        };
        let s = NetSummary::of(&predict);
        let hist: Vec<(&str, usize)> = s
            .op_types
            .iter()
            .map(|c| (c.op_type.as_str(), c.count))
            .collect();
        assert_eq!(hist, [("Conv", 2), ("Relu", 1), ("", 1), ("If", 1)]);
        assert_eq!((s.op_count, s.nested_nets), (5, 3));
        assert!(s.fills.is_empty());

        let model = Caffe2Model {
            init_net: init_net(),
            predict_net: predict,
        };
        let m = model.summary();
        assert_eq!(m.data_inputs, ["data", "cond"]);
        assert_eq!(m.weight_inputs, ["w"]);
        assert_eq!(m.param_bytes, 112 + 12 + 8 + 4 + 88 + 32);
        assert_eq!(m.params_by_dtype, m.init.fill_totals);
    }

    #[test]
    fn dtype_sizes() {
        // Every code of the schema: numeric ones map to a netport dtype of
        // the size Caffe2 stores, the others to none.
        let expected: [(DataType, Option<u64>, Option<&str>); 15] = [
            (DataType::Undefined, None, None),
            (DataType::Float, Some(4), Some("float32")),
            (DataType::Int32, Some(4), Some("int32")),
            (DataType::Byte, Some(1), Some("uint8")),
            (DataType::String, None, None),
            (DataType::Bool, Some(1), Some("bool")),
            (DataType::Uint8, Some(1), Some("uint8")),
            (DataType::Int8, Some(1), Some("int8")),
            (DataType::Uint16, Some(2), Some("uint16")),
            (DataType::Int16, Some(2), Some("int16")),
            (DataType::Int64, Some(8), Some("int64")),
            (DataType::Float16, Some(2), Some("float16")),
            (DataType::Double, Some(8), Some("float64")),
            (DataType::ZeroCollisionHash, None, None),
            (DataType::RebatchingBuffer, None, None),
        ];
        for (d, size, torch) in expected {
            let code = d as i32;
            assert_eq!(dtype_size(code), size, "{d:?}");
            assert_eq!(
                DType::from_caffe2(code).map(DType::torch_name),
                torch,
                "{d:?}"
            );
        }
        assert_eq!(dtype_size(1), Some(4));
        assert_eq!(dtype_size(12), Some(2));
        assert_eq!(dtype_size(4), None);
        assert_eq!(dtype_size(11), None);
        assert_eq!(dtype_name(3), Some("BYTE"));
        assert_eq!(dtype_name(99), None);
    }
}

//! A model at a glance, for `netport inspect`: header fields, opsets, typed
//! graph inputs and outputs, node and op-type counts (subgraphs included),
//! initializer counts and bytes by data type, and the external data files the
//! model refers to. Computed from the protobuf alone: no tensor bytes are read.

use crate::Dim;
use crate::dtype;
use crate::external::ExternalDataInfo;
use crate::proto::type_proto::Value as TypeValue;
use crate::proto::{GraphProto, ModelProto, TensorProto, TypeProto, ValueInfoProto};
use std::collections::BTreeMap;

/// A graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueSummary {
    /// The value's name.
    pub name: String,
    /// The kind of value: `tensor`, `sequence`, `map`, `optional`,
    /// `sparse_tensor`, `opaque`, or `none` when no type is given.
    pub kind: &'static str,
    /// The element type code of a tensor or sparse tensor.
    pub elem_type: Option<i32>,
    /// The declared shape; `None` when no shape is present (unknown rank).
    pub shape: Option<Vec<Dim>>,
    /// A graph input that is also an initializer (files of IR < 4 list
    /// every initializer as an input).
    pub is_initializer: bool,
}

/// Initializers of one data type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DTypeTotal {
    /// Number of tensors.
    pub count: usize,
    /// Element count summed over the tensors.
    pub elements: u64,
    /// Packed bytes (`elements` times the element width); strings count their bytes.
    pub bytes: u64,
}

/// An external data file and what the model keeps in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalFile {
    /// The `location` as written in the model (relative to its folder).
    pub location: String,
    /// Tensors stored in it.
    pub tensors: usize,
    /// Sum of the declared lengths (tensors without a length count their
    /// packed size).
    pub bytes: u64,
}

/// What `netport inspect` reports about an ONNX model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSummary {
    /// `ir_version`, when set.
    pub ir_version: Option<i64>,
    /// `(domain, version)` of each opset import, as listed.
    pub opset_import: Vec<(String, i64)>,
    /// `producer_name`, when set.
    pub producer_name: Option<String>,
    /// `producer_version`, when set.
    pub producer_version: Option<String>,
    /// The model's `domain`, when set.
    pub domain: Option<String>,
    /// `model_version`, when set.
    pub model_version: Option<i64>,
    /// The main graph's name, when set.
    pub graph_name: Option<String>,
    /// Graph inputs as declared (see [`ValueSummary::is_initializer`]).
    pub inputs: Vec<ValueSummary>,
    /// Graph outputs as declared.
    pub outputs: Vec<ValueSummary>,
    /// Nodes of the main graph.
    pub node_count: usize,
    /// Nodes including those of subgraphs (If/Loop/Scan bodies).
    pub total_node_count: usize,
    /// `op_type` (prefixed with `domain::` outside the default domain) to count,
    /// over all graphs, sorted by name.
    pub op_types: BTreeMap<String, usize>,
    /// Initializers of the main graph.
    pub initializer_count: usize,
    /// Initializers of the main graph by ONNX data type name.
    pub initializers_by_dtype: BTreeMap<String, DTypeTotal>,
    /// Packed bytes of the main graph's initializers.
    pub initializer_bytes: u64,
    /// External data files the initializers refer to.
    pub external_files: Vec<ExternalFile>,
    /// Model-local functions.
    pub functions: usize,
    /// `metadata_props` as `(key, value)` pairs, in file order.
    pub metadata: Vec<(String, String)>,
}

fn dims(shape: &crate::proto::TensorShapeProto) -> Vec<Dim> {
    shape.dim.iter().map(Dim::from_proto).collect()
}

fn value_summary(v: &ValueInfoProto, is_initializer: bool) -> ValueSummary {
    let (kind, elem_type, shape) =
        match v.r#type.as_ref().and_then(|t: &TypeProto| t.value.as_ref()) {
            Some(TypeValue::TensorType(t)) => ("tensor", t.elem_type, t.shape.as_ref().map(dims)),
            Some(TypeValue::SparseTensorType(t)) => {
                ("sparse_tensor", t.elem_type, t.shape.as_ref().map(dims))
            }
            Some(TypeValue::SequenceType(_)) => ("sequence", None, None),
            Some(TypeValue::MapType(_)) => ("map", None, None),
            Some(TypeValue::OptionalType(_)) => ("optional", None, None),
            Some(TypeValue::OpaqueType(_)) => ("opaque", None, None),
            None => ("none", None, None),
        };
    ValueSummary {
        name: v.name().to_string(),
        kind,
        elem_type,
        shape,
        is_initializer,
    }
}

/// Packed size of a tensor from its dims and type (or its strings).
fn tensor_bytes(t: &TensorProto) -> (u64, u64) {
    let numel = crate::typed::numel(t).unwrap_or(0);
    let bytes = if t.data_type() == crate::proto::tensor_proto::DataType::String as i32 {
        t.string_data.iter().map(|s| s.len() as u64).sum()
    } else {
        dtype::packed_bytes(t.data_type(), numel).unwrap_or(0)
    };
    (numel, bytes)
}

fn count_nodes(graph: &GraphProto, ops: &mut BTreeMap<String, usize>) -> usize {
    let mut total = 0;
    for node in &graph.node {
        total += 1;
        let key = match node.domain() {
            "" | "ai.onnx" => node.op_type().to_string(),
            d => format!("{d}::{}", node.op_type()),
        };
        *ops.entry(key).or_default() += 1;
        for attr in &node.attribute {
            if let Some(g) = &attr.g {
                total += count_nodes(g, ops);
            }
            for g in &attr.graphs {
                total += count_nodes(g, ops);
            }
        }
    }
    total
}

impl ModelSummary {
    /// Summarises `model` without reading tensor data.
    pub fn of(model: &ModelProto) -> Self {
        let default_graph = GraphProto::default();
        let graph = model.graph.as_ref().unwrap_or(&default_graph);
        let init_names: std::collections::HashSet<&str> =
            graph.initializer.iter().map(|t| t.name()).collect();

        let mut op_types = BTreeMap::new();
        let total_node_count = count_nodes(graph, &mut op_types);

        let mut by_dtype: BTreeMap<String, DTypeTotal> = BTreeMap::new();
        let mut files: Vec<ExternalFile> = Vec::new();
        let mut initializer_bytes = 0;
        for t in &graph.initializer {
            let (numel, bytes) = tensor_bytes(t);
            let name = dtype::name(t.data_type())
                .map(str::to_string)
                .unwrap_or_else(|| format!("code {}", t.data_type()));
            let total = by_dtype.entry(name).or_default();
            total.count += 1;
            total.elements += numel;
            total.bytes += bytes;
            initializer_bytes += bytes;
            if let Ok(Some(info)) = ExternalDataInfo::of(t) {
                let len = info.length.unwrap_or(bytes);
                match files.iter_mut().find(|f| f.location == info.location) {
                    Some(f) => {
                        f.tensors += 1;
                        f.bytes += len;
                    }
                    None => files.push(ExternalFile {
                        location: info.location,
                        tensors: 1,
                        bytes: len,
                    }),
                }
            }
        }

        ModelSummary {
            ir_version: model.ir_version,
            opset_import: model
                .opset_import
                .iter()
                .map(|o| (o.domain().to_string(), o.version()))
                .collect(),
            producer_name: model.producer_name.clone(),
            producer_version: model.producer_version.clone(),
            domain: model.domain.clone(),
            model_version: model.model_version,
            graph_name: graph.name.clone(),
            inputs: graph
                .input
                .iter()
                .map(|v| value_summary(v, init_names.contains(v.name())))
                .collect(),
            outputs: graph
                .output
                .iter()
                .map(|v| value_summary(v, false))
                .collect(),
            node_count: graph.node.len(),
            total_node_count,
            op_types,
            initializer_count: graph.initializer.len(),
            initializers_by_dtype: by_dtype,
            initializer_bytes,
            external_files: files,
            functions: model.functions.len(),
            metadata: model
                .metadata_props
                .iter()
                .map(|p| (p.key().to_string(), p.value().to_string()))
                .collect(),
        }
    }
}

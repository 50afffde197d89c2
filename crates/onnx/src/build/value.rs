//! The typed pieces of a graph under construction: dims (fixed or
//! symbolic), attribute values, value types, and tensors made from
//! netport-tensor views (little-endian `raw_data`).

use super::BuildError;
use crate::Dim;
use crate::proto::attribute_proto::AttributeType;
use crate::proto::{
    AttributeProto, GraphProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
    type_proto,
};
use bytes::Bytes;
use netport_tensor::{ByteOrder, DType, TensorView};

/// The value of a node attribute; its variant is the attribute type.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    /// `FLOAT`.
    Float(f32),
    /// `INT`.
    Int(i64),
    /// `STRING` (bytes in ONNX; UTF-8 here).
    String(String),
    /// `TENSOR`, e.g. from [`tensor_proto`].
    Tensor(TensorProto),
    /// `GRAPH`: a subgraph, from [`super::GraphBuilder::into_graph`].
    Graph(GraphProto),
    /// `FLOATS`.
    Floats(Vec<f32>),
    /// `INTS`.
    Ints(Vec<i64>),
    /// `STRINGS`.
    Strings(Vec<String>),
    /// `TENSORS`.
    Tensors(Vec<TensorProto>),
    /// `GRAPHS`.
    Graphs(Vec<GraphProto>),
}

impl Attr {
    pub(super) fn proto(self, name: &str) -> AttributeProto {
        let mut a = AttributeProto {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let t = match self {
            Attr::Float(v) => {
                a.f = Some(v);
                AttributeType::Float
            }
            Attr::Int(v) => {
                a.i = Some(v);
                AttributeType::Int
            }
            Attr::String(v) => {
                a.s = Some(Bytes::from(v.into_bytes()));
                AttributeType::String
            }
            Attr::Tensor(v) => {
                a.t = Some(v);
                AttributeType::Tensor
            }
            Attr::Graph(v) => {
                a.g = Some(v);
                AttributeType::Graph
            }
            Attr::Floats(v) => {
                a.floats = v;
                AttributeType::Floats
            }
            Attr::Ints(v) => {
                a.ints = v;
                AttributeType::Ints
            }
            Attr::Strings(v) => {
                a.strings = v.into_iter().map(|s| Bytes::from(s.into_bytes())).collect();
                AttributeType::Strings
            }
            Attr::Tensors(v) => {
                a.tensors = v;
                AttributeType::Tensors
            }
            Attr::Graphs(v) => {
                a.graphs = v;
                AttributeType::Graphs
            }
        };
        a.r#type = Some(t as i32);
        a
    }
}

/// The ONNX element type code of `dtype` for the value or tensor `name`.
pub(super) fn onnx_code(name: &str, dtype: DType) -> Result<i32, BuildError> {
    dtype.onnx().ok_or_else(|| BuildError::DType {
        name: name.to_string(),
        dtype: dtype.to_string(),
    })
}

/// A `ValueInfoProto` of a tensor with element type `dtype` and shape `dims`.
pub(super) fn value_info(
    name: &str,
    dtype: DType,
    dims: &[Dim],
) -> Result<ValueInfoProto, BuildError> {
    let elem_type = onnx_code(name, dtype)?;
    let shape = TensorShapeProto {
        dim: dims.iter().map(Dim::to_proto).collect(),
    };
    Ok(ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem_type),
                shape: Some(shape),
            })),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// A `TensorProto` named `name` holding `view`'s elements as little-endian
/// `raw_data` (a strided or big-endian view is copied into that order).
pub fn tensor_proto(name: &str, view: &TensorView<'_>) -> Result<TensorProto, BuildError> {
    let data_type = onnx_code(name, view.dtype())?;
    let bytes = view
        .to_contiguous_in(ByteOrder::Little)
        .map_err(|e| BuildError::Tensor {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
    let dims = view
        .shape()
        .iter()
        .map(|&d| {
            i64::try_from(d).map_err(|_| BuildError::Tensor {
                name: name.to_string(),
                reason: format!("dim {d} does not fit in an int64"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TensorProto {
        name: Some(name.to_string()),
        dims,
        data_type: Some(data_type),
        raw_data: Some(Bytes::from(bytes)),
        ..Default::default()
    })
}

//! One dimension of a tensor shape, as ONNX writes it (`dim_value`,
//! `dim_param`, or neither): the one type the summary, the builder and the
//! shape inference use.

use crate::proto::tensor_shape_proto::Dimension;
use crate::proto::tensor_shape_proto::dimension::Value;

/// One dimension of a shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A known size (`dim_value`).
    Fixed(i64),
    /// A symbolic size shared by name (`dim_param`), such as `"batch"`.
    Param(String),
    /// Neither known nor named.
    Unknown,
}

impl Dim {
    /// A symbolic dim: `Dim::param("batch")`.
    pub fn param(name: impl Into<String>) -> Self {
        Dim::Param(name.into())
    }

    /// The fixed size, if known.
    pub fn value(&self) -> Option<i64> {
        match self {
            Dim::Fixed(n) => Some(*n),
            _ => None,
        }
    }

    /// The dim a `TensorShapeProto.Dimension` holds.
    pub fn from_proto(d: &Dimension) -> Self {
        match &d.value {
            Some(Value::DimValue(v)) => Dim::Fixed(*v),
            Some(Value::DimParam(p)) => Dim::Param(p.clone()),
            None => Dim::Unknown,
        }
    }

    /// As a `TensorShapeProto.Dimension`.
    pub fn to_proto(&self) -> Dimension {
        let value = match self {
            Dim::Fixed(v) => Some(Value::DimValue(*v)),
            Dim::Param(p) => Some(Value::DimParam(p.clone())),
            Dim::Unknown => None,
        };
        Dimension {
            value,
            ..Default::default()
        }
    }
}

impl std::fmt::Display for Dim {
    /// `3`, `batch`, or `?`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Param(p) => write!(f, "{p}"),
            Dim::Unknown => write!(f, "?"),
        }
    }
}

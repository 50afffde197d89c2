//! JSON types shared by several reports, and the one text table of totals
//! by dtype. Every format's `--json` gives its per-dtype totals as a
//! [`ByDType`]: an object keyed by the netport dtype name (torch's spelling,
//! `float32`, the same for every format), or by the format's own name for
//! types netport has no tensor dtype for (`STRING`), `unknown` when the file
//! does not say.

use crate::units::human_bytes;
use netport_tensor::DType;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Tensors of one dtype.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DTypeTotals {
    /// Tensors (or initializers, or fill ops).
    pub tensors: usize,
    /// Their elements (those of known size).
    pub elements: u64,
    /// Their bytes (those of known size).
    pub bytes: u64,
    /// Tensors whose size is not known without running the model (Caffe2
    /// fills shaped by an input at run time); 0 for the other formats.
    pub unsized_tensors: usize,
}

/// Totals by dtype, keyed as the module docs say.
pub type ByDType = BTreeMap<String, DTypeTotals>;

/// The key of a dtype: netport's name when there is one, else the format's.
pub fn dtype_key(dtype: Option<DType>, format_name: Option<&str>) -> String {
    match (dtype, format_name) {
        (Some(d), _) => d.torch_name().to_owned(),
        (None, Some(name)) => name.to_owned(),
        (None, None) => "unknown".to_owned(),
    }
}

/// Adds one group to `by`, merging with a group of the same key.
pub fn add(by: &mut ByDType, key: String, totals: DTypeTotals) {
    let t = by.entry(key).or_default();
    t.tensors += totals.tensors;
    t.elements = t.elements.saturating_add(totals.elements);
    t.bytes = t.bytes.saturating_add(totals.bytes);
    t.unsized_tensors += totals.unsized_tensors;
}

/// The table every format prints under its totals line.
pub fn by_dtype_text(t: &mut String, by: &ByDType) {
    for (dtype, d) in by {
        let _ = writeln!(
            t,
            "  {dtype:<14} {:>6} tensors {:>14} elements {:>12}{}",
            d.tensors,
            d.elements,
            human_bytes(d.bytes),
            if d.unsized_tensors > 0 {
                format!(" (+{} of unknown size)", d.unsized_tensors)
            } else {
                String::new()
            }
        );
    }
}

/// A dimension in JSON: an int, a symbolic name, or null.
#[derive(Serialize)]
#[serde(untagged)]
pub enum DimJson<'a> {
    /// A fixed size.
    Value(i64),
    /// A symbolic size.
    Param(&'a str),
    /// Unknown (null).
    Unknown(Option<()>),
}

impl<'a> From<&'a netport_onnx::Dim> for DimJson<'a> {
    fn from(d: &'a netport_onnx::Dim) -> Self {
        match d {
            netport_onnx::Dim::Fixed(v) => DimJson::Value(*v),
            netport_onnx::Dim::Param(p) => DimJson::Param(p),
            netport_onnx::Dim::Unknown => DimJson::Unknown(None),
        }
    }
}

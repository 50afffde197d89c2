//! Tensor rules, for initializers and attribute tensors: a data type, sane
//! dims, exactly one value field in the right place and long enough for the
//! dims, and external data whose location stays inside the model's folder
//! (resolved by [`crate::ExternalDataResolver`]) and whose range lies inside
//! its file. No tensor bytes are read except sparse indices, which the
//! sparse rules need.

use super::{At, Checker, Rule};
use crate::dtype;
use crate::external::ExternalDataInfo;
use crate::proto::tensor_proto::{DataLocation, DataType};
use crate::proto::{SparseTensorProto, TensorProto};

/// The value fields a tensor sets (non-empty), by name.
fn value_fields(t: &TensorProto) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let mut add = |set: bool, name: &'static str| {
        if set {
            fields.push(name);
        }
    };
    add(!t.float_data.is_empty(), "float_data");
    add(!t.int32_data.is_empty(), "int32_data");
    add(!t.string_data.is_empty(), "string_data");
    add(!t.int64_data.is_empty(), "int64_data");
    add(
        t.raw_data.as_ref().is_some_and(|r| !r.is_empty()),
        "raw_data",
    );
    add(!t.double_data.is_empty(), "double_data");
    add(!t.uint64_data.is_empty(), "uint64_data");
    fields
}

/// The typed field a data type belongs in, and how many entries `n`
/// elements need there.
fn typed_field(dtype: DataType, n: u64) -> Option<(&'static str, u64)> {
    use DataType as D;
    Some(match dtype {
        D::Float => ("float_data", n),
        D::Complex64 => ("float_data", n.checked_mul(2)?),
        D::Double => ("double_data", n),
        D::Complex128 => ("double_data", n.checked_mul(2)?),
        D::Int64 => ("int64_data", n),
        D::Uint32 | D::Uint64 => ("uint64_data", n),
        D::String => ("string_data", n),
        D::Uint4 | D::Int4 | D::Float4e2m1 => ("int32_data", n.div_ceil(8)),
        D::Uint2 | D::Int2 => ("int32_data", n.div_ceil(16)),
        D::Undefined => return None,
        _ => ("int32_data", n),
    })
}

fn field_len(t: &TensorProto, field: &str) -> usize {
    match field {
        "float_data" => t.float_data.len(),
        "int32_data" => t.int32_data.len(),
        "string_data" => t.string_data.len(),
        "int64_data" => t.int64_data.len(),
        "double_data" => t.double_data.len(),
        "uint64_data" => t.uint64_data.len(),
        _ => 0,
    }
}

/// Checks one tensor; `what` names it in messages (`initializer 'w'`).
pub(super) fn check_tensor(cx: &mut Checker, at: &At<'_>, t: &TensorProto, what: &str) {
    let code = t.data_type();
    let Ok(dtype) = DataType::try_from(code) else {
        cx.report(
            at,
            Rule::TensorDataTypeUnknown,
            format!("{what}: unknown data_type {code}; its data is not checked"),
        );
        return;
    };
    if dtype == DataType::Undefined {
        cx.report(
            at,
            Rule::TensorDataType,
            format!("{what}: data_type is missing or UNDEFINED"),
        );
        return;
    }
    let fields = value_fields(t);
    if t.data_location() == DataLocation::External {
        check_external(cx, at, t, what, &fields);
        return;
    }
    let mut n = 1u64;
    for &d in &t.dims {
        match u64::try_from(d).ok().and_then(|d| n.checked_mul(d)) {
            Some(v) => n = v,
            None => {
                cx.report(
                    at,
                    Rule::TensorDims,
                    format!(
                        "{what}: dims {:?} are negative or their product overflows",
                        t.dims
                    ),
                );
                return;
            }
        }
    }
    if n == 0 {
        if !fields.is_empty() {
            cx.report(
                at,
                Rule::TensorValueFields,
                format!(
                    "{what} has 0 elements but contains data ({})",
                    fields.join(", ")
                ),
            );
        }
        return;
    }
    if fields.len() != 1 {
        cx.report(
            at,
            Rule::TensorValueFields,
            format!(
                "{what} should contain one and only one value field, found {}",
                if fields.is_empty() {
                    "none".to_string()
                } else {
                    fields.join(", ")
                }
            ),
        );
        return;
    }
    let name = dtype.as_str_name();
    if fields[0] == "raw_data" {
        let have = t.raw_data.as_ref().map_or(0, |r| r.len()) as u64;
        if dtype == DataType::String {
            cx.report(
                at,
                Rule::TensorField,
                format!("{what}: STRING data should not be stored in raw_data"),
            );
        } else if let Some(need) = dtype::packed_bytes(code, n)
            && have < need
        {
            cx.report(
                at,
                Rule::TensorSize,
                format!(
                    "{what}: raw_data size ({have} bytes) is too small for dims {:?} of {name} ({need} bytes required)",
                    t.dims
                ),
            );
        }
        return;
    }
    let Some((field, need)) = typed_field(dtype, n) else {
        return;
    };
    if fields[0] != field {
        cx.report(
            at,
            Rule::TensorField,
            format!(
                "{what}: values of data_type {code} ({name}) should be stored in field '{field}' instead of '{}'",
                fields[0]
            ),
        );
        return;
    }
    let have = field_len(t, field) as u64;
    if have < need {
        cx.report(
            at,
            Rule::TensorSize,
            format!(
                "{what}: {field} size ({have}) is too small for dims {:?} of {name} ({need} values required)",
                t.dims
            ),
        );
    }
}

fn check_external(cx: &mut Checker, at: &At<'_>, t: &TensorProto, what: &str, fields: &[&str]) {
    if !fields.is_empty() {
        cx.report(
            at,
            Rule::ExternalData,
            format!(
                "{what} is stored externally and should not have a data field ({})",
                fields.join(", ")
            ),
        );
    }
    let location = t
        .external_data
        .iter()
        .find(|e| e.key() == "location")
        .map(|e| e.value());
    let Some(location) = location else {
        cx.report(
            at,
            Rule::ExternalData,
            format!("{what} is stored externally but doesn't have a location"),
        );
        return;
    };
    let resolver = cx
        .resolver
        .get_or_insert_with(|| crate::ExternalDataResolver::new("."));
    let path = match resolver.resolve(t.name(), location) {
        Ok(p) => p,
        Err(e) => {
            let problem = match e {
                crate::OnnxError::ExternalData { problem, .. } => {
                    format!("external data {problem}")
                }
                other => other.to_string(),
            };
            cx.report(at, Rule::ExternalData, format!("{what}: {problem}"));
            return;
        }
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) => {
            cx.report(
                at,
                Rule::ExternalData,
                format!("{what}: '{}': {e}", path.display()),
            );
            return;
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.nlink() > 1 {
            cx.report(
                at,
                Rule::ExternalData,
                format!(
                    "{what}: external data file '{location}' has {} hard links (onnx requires 1)",
                    meta.nlink()
                ),
            );
        }
    }
    let info = match ExternalDataInfo::of(t) {
        Ok(Some(info)) => info,
        Ok(None) => return,
        Err(e) => {
            cx.report(at, Rule::ExternalDataRange, e.to_string());
            return;
        }
    };
    let size = meta.len();
    let length = info.length.unwrap_or(size.saturating_sub(info.offset));
    let end = info.offset.checked_add(length);
    if info.offset > size || end.is_none_or(|e| e > size) {
        cx.report(
            at,
            Rule::ExternalDataRange,
            format!(
                "{what}: offset {} + length {length} is outside '{location}' ({size} bytes)",
                info.offset
            ),
        );
        return;
    }
    let n = crate::numel(t).ok();
    if let Some(need) = n.and_then(|n| dtype::packed_bytes(t.data_type(), n))
        && length < need
    {
        cx.report(
            at,
            Rule::ExternalDataRange,
            format!(
                "{what}: external data length {length} is smaller than dims {:?} need ({need} bytes)",
                t.dims
            ),
        );
    }
}

/// Checks a sparse tensor (values, dense dims, indices).
pub(super) fn check_sparse(cx: &mut Checker, at: &At<'_>, s: &SparseTensorProto, what: &str) {
    let Some(values) = &s.values else {
        cx.report(
            at,
            Rule::SparseTensor,
            format!("{what}: field 'values' is missing"),
        );
        return;
    };
    check_tensor(cx, at, values, &format!("{what} values"));
    if values.dims.len() != 1 {
        cx.report(
            at,
            Rule::SparseTensor,
            format!(
                "{what}: values must have rank 1, have dims {:?}",
                values.dims
            ),
        );
        return;
    }
    let nnz = values.dims[0].max(0) as u64;
    if s.dims.is_empty() {
        cx.report(
            at,
            Rule::SparseTensor,
            format!("{what} must have a dense rank > 0"),
        );
        return;
    }
    if s.dims.iter().any(|&d| d <= 0) {
        cx.report(
            at,
            Rule::SparseTensor,
            format!("{what}: dense dims {:?} are not all positive", s.dims),
        );
        return;
    }
    let Some(indices) = &s.indices else {
        if nnz != 0 {
            cx.report(
                at,
                Rule::SparseTensor,
                format!("{what} has no index values"),
            );
        }
        return;
    };
    check_tensor(cx, at, indices, &format!("{what} indices"));
    if indices.data_type() != DataType::Int64 as i32 {
        cx.report(
            at,
            Rule::SparseTensor,
            format!("{what}: indices must have type INT64"),
        );
        return;
    }
    let rank = s.dims.len() as u64;
    let (want, linear) = match indices.dims.len() {
        1 => (vec![nnz], true),
        2 => (vec![nnz, rank], false),
        _ => {
            cx.report(
                at,
                Rule::SparseTensor,
                format!(
                    "{what}: indices must have rank 1 or 2, have dims {:?}",
                    indices.dims
                ),
            );
            return;
        }
    };
    if indices
        .dims
        .iter()
        .map(|&d| d.max(0) as u64)
        .ne(want.iter().copied())
    {
        cx.report(
            at,
            Rule::SparseTensor,
            format!(
                "{what}: indices have dims {:?}, expected {want:?}",
                indices.dims
            ),
        );
        return;
    }
    let Some(index) = read_i64s(cx, indices) else {
        return;
    };
    let dense: Vec<u64> = s.dims.iter().map(|&d| d as u64).collect();
    let total = dense.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
    let mut previous: Option<u64> = None;
    for k in 0..nnz as usize {
        let linear_index = if linear {
            index.get(k).copied().and_then(|v| u64::try_from(v).ok())
        } else {
            let row = index.get(k * dense.len()..(k + 1) * dense.len());
            row.and_then(|row| {
                row.iter().zip(&dense).try_fold(0u64, |acc, (&v, &d)| {
                    let v = u64::try_from(v).ok().filter(|v| *v < d)?;
                    acc.checked_mul(d)?.checked_add(v)
                })
            })
        };
        let ok = match (linear_index, total) {
            (Some(i), Some(total)) => i < total && previous.is_none_or(|p| i > p),
            _ => false,
        };
        if !ok {
            cx.report(
                at,
                Rule::SparseTensor,
                format!("{what}: index {k} is out of range or not in ascending order"),
            );
            return;
        }
        previous = linear_index;
    }
}

/// The INT64 values of a small inline tensor (sparse indices).
fn read_i64s(cx: &mut Checker, t: &TensorProto) -> Option<Vec<i64>> {
    if !t.int64_data.is_empty() {
        return Some(t.int64_data.clone());
    }
    let bytes = crate::tensor_data(t, cx.resolver.as_ref()).ok()?;
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
    )
}

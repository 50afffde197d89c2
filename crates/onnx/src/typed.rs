//! Converts the typed repeated fields of a `TensorProto` (`float_data`,
//! `int32_data`, `int64_data`, `double_data`, `uint64_data`) into the packed
//! little-endian bytes that `raw_data` would hold, following the field
//! assignment of the ONNX schema: narrow integers, bool, float16, bfloat16 and
//! float8 values sit one per `int32_data` entry; uint32 and uint64 use
//! `uint64_data`; complex numbers are pairs of floats or doubles.

use crate::OnnxError;
use crate::proto::TensorProto;
use crate::proto::tensor_proto::DataType;
use bytes::Bytes;

/// The element count the tensor's `dims` declare.
pub fn numel(tensor: &TensorProto) -> Result<u64, OnnxError> {
    tensor.dims.iter().try_fold(1u64, |acc, &d| {
        u64::try_from(d)
            .ok()
            .and_then(|d| acc.checked_mul(d))
            .ok_or_else(|| OnnxError::Tensor {
                tensor: tensor.name().to_string(),
                problem: format!("dims {:?} are negative or overflow", tensor.dims),
            })
    })
}

pub(crate) fn typed_data_bytes(tensor: &TensorProto) -> Result<Bytes, OnnxError> {
    let name = tensor.name();
    let err = |problem: String| OnnxError::Tensor {
        tensor: name.to_string(),
        problem,
    };
    let code = tensor.data_type();
    let dtype =
        DataType::try_from(code).map_err(|_| err(format!("has an unknown data_type {code}")))?;
    let n = numel(tensor)?;
    let expect = |field: &str, have: usize, per_element: u64| -> Result<(), OnnxError> {
        let want = n.saturating_mul(per_element);
        if have as u64 != want {
            return Err(err(format!(
                "{} dims {:?} need {want} values in {field}, found {have}",
                dtype.as_str_name(),
                tensor.dims
            )));
        }
        Ok(())
    };
    use DataType as D;
    let mut out = Vec::new();
    match dtype {
        D::Float | D::Complex64 => {
            let per = if dtype == D::Complex64 { 2 } else { 1 };
            expect("float_data", tensor.float_data.len(), per)?;
            out.reserve(tensor.float_data.len() * 4);
            for v in &tensor.float_data {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        D::Double | D::Complex128 => {
            let per = if dtype == D::Complex128 { 2 } else { 1 };
            expect("double_data", tensor.double_data.len(), per)?;
            for v in &tensor.double_data {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        D::Int64 => {
            expect("int64_data", tensor.int64_data.len(), 1)?;
            for v in &tensor.int64_data {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        D::Uint64 | D::Uint32 => {
            expect("uint64_data", tensor.uint64_data.len(), 1)?;
            for &v in &tensor.uint64_data {
                if dtype == D::Uint64 {
                    out.extend_from_slice(&v.to_le_bytes());
                } else {
                    let v = u32::try_from(v)
                        .map_err(|_| err(format!("UINT32 value {v} out of range")))?;
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        D::Int32 => {
            expect("int32_data", tensor.int32_data.len(), 1)?;
            for v in &tensor.int32_data {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        D::Int16 | D::Uint16 | D::Float16 | D::Bfloat16 => {
            expect("int32_data", tensor.int32_data.len(), 1)?;
            for &v in &tensor.int32_data {
                // Two's complement truncation keeps int16 values and the
                // uint16 / float16 / bfloat16 bit patterns.
                out.extend_from_slice(&(v as u16).to_le_bytes());
            }
        }
        D::Int8
        | D::Uint8
        | D::Bool
        | D::Float8e4m3fn
        | D::Float8e4m3fnuz
        | D::Float8e5m2
        | D::Float8e5m2fnuz
        | D::Float8e8m0 => {
            expect("int32_data", tensor.int32_data.len(), 1)?;
            out.extend(tensor.int32_data.iter().map(|&v| v as u8));
        }
        D::Undefined
        | D::String
        | D::Uint4
        | D::Int4
        | D::Float4e2m1
        | D::Uint2
        | D::Int2
        | D::Float6e2m3
        | D::Float6e3m2 => {
            return Err(err(format!(
                "{} data in typed fields cannot be read as packed bytes",
                dtype.as_str_name()
            )));
        }
    }
    Ok(Bytes::from(out))
}

//! Facts about ONNX `TensorProto.DataType` codes that this crate needs: names
//! and element widths, including the sub-byte types (INT4, UINT2, FLOAT4E2M1,
//! FLOAT6...) that PyTorch checkpoints cannot hold and so are not part of
//! `netport_tensor::DType`.

use crate::proto::tensor_proto::DataType;

/// The ONNX name of a data type code (`"FLOAT"`, `"INT64"`), or `None` for a
/// code this schema does not know.
pub fn name(code: i32) -> Option<&'static str> {
    DataType::try_from(code).ok().map(|d| d.as_str_name())
}

/// Bits per element of a data type code; `None` for UNDEFINED, STRING (no fixed
/// width) and unknown codes.
pub fn element_bits(code: i32) -> Option<u64> {
    use DataType as D;
    Some(match DataType::try_from(code).ok()? {
        D::Undefined | D::String => return None,
        D::Uint2 | D::Int2 => 2,
        D::Uint4 | D::Int4 | D::Float4e2m1 => 4,
        D::Float6e2m3 | D::Float6e3m2 => 6,
        D::Uint8
        | D::Int8
        | D::Bool
        | D::Float8e4m3fn
        | D::Float8e4m3fnuz
        | D::Float8e5m2
        | D::Float8e5m2fnuz
        | D::Float8e8m0 => 8,
        D::Uint16 | D::Int16 | D::Float16 | D::Bfloat16 => 16,
        D::Float | D::Int32 | D::Uint32 => 32,
        D::Double | D::Int64 | D::Uint64 | D::Complex64 => 64,
        D::Complex128 => 128,
    })
}

/// Bytes that `numel` packed elements of `code` occupy in `raw_data`
/// (sub-byte types round up to whole bytes); `None` on overflow or for types
/// without a fixed width.
pub fn packed_bytes(code: i32, numel: u64) -> Option<u64> {
    let bits = element_bits(code)?;
    numel.checked_mul(bits).map(|b| b.div_ceil(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_names() {
        assert_eq!(element_bits(1), Some(32));
        assert_eq!(name(1), Some("FLOAT"));
        assert_eq!(element_bits(22), Some(4));
        assert_eq!(packed_bytes(22, 3), Some(2));
        assert_eq!(packed_bytes(27, 4), Some(3));
        assert_eq!(element_bits(8), None);
        assert_eq!(element_bits(999), None);
        assert_eq!(packed_bytes(11, u64::MAX), None);
        // Every code the schema knows has a name, and all but UNDEFINED and
        // STRING have a width.
        for code in 0..=28 {
            assert!(name(code).is_some(), "code {code}");
            assert_eq!(
                element_bits(code).is_none(),
                code == 0 || code == 8,
                "code {code}"
            );
        }
    }
}

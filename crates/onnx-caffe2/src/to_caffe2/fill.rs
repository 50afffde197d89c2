//! ONNX tensors as Caffe2 fill ops (`GivenTensorFill` and its typed
//! siblings), `values` first, then `shape`, no op name, no inputs: what the
//! ONNX backend writes for every initializer and `Constant` node. Also reads
//! small constant tensors as integers or floats for the arguments that newer
//! opsets moved to inputs.

use crate::error::{ConvertError, invalid};
use bytes::Bytes;
use netport_caffe2::proto::{Argument, OperatorDef};
use netport_io::varint;
use netport_onnx::ExternalDataResolver;
use netport_onnx::proto::TensorProto;
use netport_onnx::proto::tensor_proto::DataType;

/// The decoded elements of a tensor, in the widths Caffe2 arguments hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// FLOAT, and DOUBLE narrowed to f32 (the `floats` field is f32).
    Floats(Vec<f32>),
    /// Every integer type and BOOL.
    Ints(Vec<i64>),
    /// STRING.
    Strings(Vec<Bytes>),
}

/// A tensor's Caffe2 fill op type (by its ONNX data type), or why it has none.
pub fn fill_type(data_type: i32) -> Result<&'static str, String> {
    use DataType as D;
    Ok(match DataType::try_from(data_type) {
        Ok(D::Float) => "GivenTensorFill",
        Ok(D::Double) => "GivenTensorDoubleFill",
        Ok(D::Int64 | D::Uint32) => "GivenTensorInt64Fill",
        Ok(D::Uint8 | D::Int8 | D::Uint16 | D::Int16 | D::Int32) => "GivenTensorIntFill",
        Ok(D::Bool) => "GivenTensorBoolFill",
        Ok(D::String) => "GivenTensorStringFill",
        _ => {
            let name = netport_onnx::dtype::name(data_type).unwrap_or("unknown");
            return Err(format!(
                "tensor type {data_type} ({name}) has no Caffe2 fill op"
            ));
        }
    })
}

/// The elements of `tensor` (inline, typed fields or external data through
/// `resolver`), checked against its dims.
pub fn tensor_values(
    tensor: &TensorProto,
    resolver: Option<&ExternalDataResolver>,
) -> Result<Values, ConvertError> {
    use DataType as D;
    let name = tensor.name();
    let n = netport_onnx::numel(tensor)?;
    let code = tensor.data_type();
    if code == D::String as i32 {
        if tensor.string_data.len() as u64 != n {
            return Err(invalid(format!(
                "tensor '{name}': dims {:?} need {n} strings, found {}",
                tensor.dims,
                tensor.string_data.len()
            )));
        }
        return Ok(Values::Strings(tensor.string_data.clone()));
    }
    fill_type(code).map_err(|e| invalid(format!("tensor '{name}': {e}")))?;
    let bytes = netport_onnx::tensor_data(tensor, resolver)?;
    let width = netport_onnx::dtype::element_bits(code).unwrap_or(8) / 8;
    let want = n.checked_mul(width.max(1));
    if want != Some(bytes.len() as u64) {
        return Err(invalid(format!(
            "tensor '{name}': dims {:?} ({n} elements of {} bytes) need {} bytes of data, found {}",
            tensor.dims,
            width,
            want.map_or("too many".to_string(), |w| w.to_string()),
            bytes.len()
        )));
    }
    let chunks = |w: usize| bytes.chunks_exact(w);
    let values = match D::try_from(code) {
        Ok(D::Float) => Values::Floats(
            chunks(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        Ok(D::Double) => Values::Floats(
            chunks(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
        ),
        Ok(D::Int64) => Values::Ints(
            chunks(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        ),
        Ok(D::Uint32) => Values::Ints(
            chunks(4)
                .map(|c| i64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
        Ok(D::Int32) => Values::Ints(
            chunks(4)
                .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
        Ok(D::Int16) => Values::Ints(
            chunks(2)
                .map(|c| i64::from(i16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        Ok(D::Uint16) => Values::Ints(
            chunks(2)
                .map(|c| i64::from(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        Ok(D::Int8) => Values::Ints(bytes.iter().map(|&b| i64::from(b as i8)).collect()),
        Ok(D::Uint8) => Values::Ints(bytes.iter().map(|&b| i64::from(b)).collect()),
        Ok(D::Bool) => Values::Ints(bytes.iter().map(|&b| i64::from(b != 0)).collect()),
        _ => {
            return Err(invalid(format!(
                "tensor '{name}': type {code} has no fill op"
            )));
        }
    };
    Ok(values)
}

/// The fill op that creates `tensor` under the name `output`.
pub fn fill_op(
    tensor: &TensorProto,
    output: &str,
    resolver: Option<&ExternalDataResolver>,
) -> Result<OperatorDef, ConvertError> {
    let op_type = fill_type(tensor.data_type())
        .map_err(|e| invalid(format!("tensor '{}': {e}", tensor.name())))?;
    let values = tensor_values(tensor, resolver)?;
    Ok(fill_op_of(op_type, values, &tensor.dims, output))
}

/// A fill op of `op_type` from decoded values.
pub fn fill_op_of(op_type: &str, values: Values, dims: &[i64], output: &str) -> OperatorDef {
    let mut arg = Argument {
        name: Some("values".into()),
        ..Default::default()
    };
    match values {
        Values::Floats(v) => arg.floats = v,
        Values::Ints(v) => arg.ints = v,
        Values::Strings(v) => arg.strings = v,
    }
    OperatorDef {
        output: vec![output.to_string()],
        r#type: Some(op_type.to_string()),
        arg: vec![
            arg,
            Argument {
                name: Some("shape".into()),
                ints: dims.to_vec(),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

/// Writes the fill op of a FLOAT tensor as NetDef field 2 (`op`) straight
/// from the tensor's bytes, without holding its values: the bytes are
/// those `prost` writes for [`fill_op`]'s op (each float unpacked: tag
/// `0x2d` + 4 bytes, laid out a 4 MiB piece at a time by
/// [`netport_caffe2::floats::encode_unpacked`], one piece ahead of the write
/// with [`netport_io::transform_ahead`]), and pages of a memory-mapped
/// source are released as they are copied. Returns `None` (nothing written) for other types.
pub fn write_float_fill(
    tensor: &TensorProto,
    output: &str,
    resolver: Option<&ExternalDataResolver>,
    put: &mut dyn FnMut(&[u8]) -> Result<(), ConvertError>,
) -> Result<Option<u64>, ConvertError> {
    use prost::Message;
    if tensor.data_type() != DataType::Float as i32 {
        return Ok(None);
    }
    let name = tensor.name();
    let n = netport_onnx::numel(tensor)?;
    let bytes = netport_onnx::tensor_data(tensor, resolver)?;
    if n.checked_mul(4) != Some(bytes.len() as u64) {
        return Err(invalid(format!(
            "tensor '{name}': dims {:?} ({n} elements of 4 bytes) need {} bytes of data, found {}",
            tensor.dims,
            n.checked_mul(4)
                .map_or("too many".to_string(), |w| w.to_string()),
            bytes.len()
        )));
    }
    let head = OperatorDef {
        output: vec![output.to_string()],
        r#type: Some("GivenTensorFill".into()),
        ..Default::default()
    }
    .encode_to_vec();
    let values_name = Argument {
        name: Some("values".into()),
        ..Default::default()
    }
    .encode_to_vec();
    let shape = Argument {
        name: Some("shape".into()),
        ints: tensor.dims.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    let values_len = values_name.len() as u64 + 5 * n;
    let mut prefix = Vec::new();
    varint::put(&mut prefix, values_len);
    let mut shape_prefix = Vec::new();
    varint::put(&mut shape_prefix, shape.len() as u64);
    let op_len = head.len() as u64
        + 1
        + prefix.len() as u64
        + values_len
        + 1
        + shape_prefix.len() as u64
        + shape.len() as u64;
    let mut out = vec![0x12];
    varint::put(&mut out, op_len);
    out.extend_from_slice(&head);
    out.push(0x2a);
    out.extend_from_slice(&prefix);
    out.extend_from_slice(&values_name);
    put(&out)?;
    let mut total = out.len() as u64;
    // Each piece is encoded on a helper thread while the previous one is
    // written.
    netport_io::transform_ahead(
        netport_io::chunks(&bytes),
        netport_caffe2::floats::encode_unpacked,
        |buf, ()| {
            put(buf)?;
            total += buf.len() as u64;
            Ok::<_, ConvertError>(true)
        },
    )?;
    out.clear();
    out.push(0x2a);
    out.extend_from_slice(&shape_prefix);
    out.extend_from_slice(&shape);
    put(&out)?;
    Ok(Some(total + out.len() as u64))
}

//! The reader: [`SafetensorsFile`] maps a file (or takes bytes) and checks
//! its header against the rules in the crate docs before anything is read.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::Path;

use netport_tensor::{ByteOrder, DType, TensorView, convert};
use serde_json::Value;

use crate::error::{SafetensorsError, bad};

/// Largest header accepted, as the reference implementation (100 MB).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// One tensor of a safetensors file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetensorsTensor {
    /// The name (header key).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<u64>,
    /// `data_offsets` as written (relative to the data section).
    pub data_offsets: (u64, u64),
    /// Absolute byte range in the file.
    pub byte_range: Range<u64>,
}

/// An opened, validated safetensors file.
pub struct SafetensorsFile {
    data: netport_io::Input,
    header_len: u64,
    tensors: Vec<SafetensorsTensor>,
    metadata: BTreeMap<String, String>,
}

impl std::fmt::Debug for SafetensorsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsFile")
            .field("bytes", &&self.data[..].len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl SafetensorsFile {
    /// Maps and validates the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SafetensorsError> {
        let path = path.as_ref();
        let map = netport_io::map_file(path)?;
        Self::from_data(netport_io::Input::Mapped(map))
    }

    /// Validates a file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, SafetensorsError> {
        Self::from_data(netport_io::Input::Owned(bytes))
    }

    fn from_data(data: netport_io::Input) -> Result<Self, SafetensorsError> {
        let bytes = &data[..];
        let len = bytes.len() as u64;
        let Some(head) = bytes.get(..8) else {
            return Err(bad(
                None,
                format!(
                    "the file has {len} bytes; a safetensors file starts with an 8-byte header length"
                ),
            ));
        };
        let n = u64::from_le_bytes(head.try_into().expect("8 bytes"));
        if n > MAX_HEADER_BYTES {
            return Err(bad(
                Some(0),
                format!("header length {n} is larger than the limit of {MAX_HEADER_BYTES} bytes"),
            ));
        }
        if n > len - 8 {
            return Err(bad(
                Some(0),
                format!(
                    "header length {n} reaches beyond the end of the file ({} bytes follow the length field)",
                    len - 8
                ),
            ));
        }
        let header = &bytes[8..8 + n as usize];
        if header.first() != Some(&b'{') {
            return Err(bad(Some(8), "the header does not start with '{'"));
        }
        let value: Value = serde_json::from_slice(header)
            .map_err(|e| bad(Some(8), format!("the header is not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(bad(Some(8), "the header is not a JSON object"));
        };
        let data_start = 8 + n;
        let data_len = len - data_start;
        let mut metadata = BTreeMap::new();
        let mut tensors = Vec::with_capacity(map.len());
        for (name, v) in map {
            if name == "__metadata__" {
                let Value::Object(m) = v else {
                    return Err(bad(Some(8), "__metadata__ is not an object"));
                };
                for (k, v) in m {
                    let Value::String(s) = v else {
                        return Err(bad(
                            Some(8),
                            format!("__metadata__ entry '{k}' is not a string"),
                        ));
                    };
                    metadata.insert(k, s);
                }
                continue;
            }
            let t = parse_entry(&name, &v)?;
            let (b, e) = t;
            if e > data_len {
                return Err(bad(
                    Some(data_start),
                    format!(
                        "tensor '{name}': data_offsets [{b}, {e}] reach beyond the data section ({data_len} bytes)"
                    ),
                ));
            }
            let dtype_name = v["dtype"].as_str().unwrap_or_default();
            let dtype = DType::from_safetensors(dtype_name)
                .filter(|d| d.safetensors() == Some(dtype_name))
                .ok_or_else(|| {
                    bad(
                        Some(8),
                        format!("tensor '{name}': dtype '{dtype_name}' is not supported"),
                    )
                })?;
            let shape: Vec<u64> = v["shape"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            let expected = shape
                .iter()
                .try_fold(dtype.size_in_bytes() as u64, |a, &d| a.checked_mul(d));
            if expected != Some(e - b) {
                return Err(bad(
                    Some(8),
                    format!(
                        "tensor '{name}': shape {shape:?} of {dtype_name} needs {} bytes but data_offsets [{b}, {e}] give {}",
                        expected.map_or("more than 2^64".to_owned(), |x| x.to_string()),
                        e - b
                    ),
                ));
            }
            tensors.push(SafetensorsTensor {
                name,
                dtype,
                shape,
                data_offsets: (b, e),
                byte_range: data_start + b..data_start + e,
            });
        }
        tensors.sort_by(|x, y| {
            x.data_offsets
                .cmp(&y.data_offsets)
                .then(x.name.cmp(&y.name))
        });
        let mut end = 0u64;
        for t in &tensors {
            let (b, e) = t.data_offsets;
            if b != end {
                return Err(bad(
                    Some(data_start + b.min(end)),
                    if b > end {
                        format!(
                            "tensor '{}' starts at data offset {b}, leaving a hole after offset {end}",
                            t.name
                        )
                    } else {
                        format!(
                            "tensor '{}' starts at data offset {b}, overlapping data that ends at {end}",
                            t.name
                        )
                    },
                ));
            }
            end = e;
        }
        if end != data_len {
            return Err(bad(
                Some(data_start + end),
                format!(
                    "the tensors end at data offset {end} but the data section has {data_len} bytes"
                ),
            ));
        }
        Ok(SafetensorsFile {
            data,
            header_len: n,
            tensors,
            metadata,
        })
    }

    /// The header length (bytes of JSON, with padding).
    pub fn header_len(&self) -> u64 {
        self.header_len
    }

    /// The tensors, in data order.
    pub fn tensors(&self) -> &[SafetensorsTensor] {
        &self.tensors
    }

    /// The tensor with this name.
    pub fn tensor(&self, name: &str) -> Option<&SafetensorsTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// `__metadata__` (empty when absent).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Shared-tensor aliases recorded the Hugging Face way: `__metadata__`
    /// entries `removed -> kept` whose key is not a tensor and whose value
    /// is. Sorted by the removed name.
    pub fn aliases(&self) -> Vec<(String, String)> {
        let names: HashSet<&str> = self.tensors.iter().map(|t| t.name.as_str()).collect();
        self.metadata
            .iter()
            .filter(|(k, v)| !names.contains(k.as_str()) && names.contains(v.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The tensor's bytes: contiguous, little-endian.
    pub fn tensor_bytes(&self, t: &SafetensorsTensor) -> &[u8] {
        self.data
            .get(t.byte_range.start as usize..t.byte_range.end as usize)
            .unwrap_or(&[])
    }

    /// The tensor as a [`TensorView`] over the file's bytes (contiguous,
    /// little-endian), for the conversions and copies of `netport-tensor`.
    pub fn view(&self, t: &SafetensorsTensor) -> Result<TensorView<'_>, SafetensorsError> {
        TensorView::contiguous(self.tensor_bytes(t), t.dtype, &t.shape, ByteOrder::Little).map_err(
            |source| SafetensorsError::Tensor {
                name: t.name.clone(),
                source,
            },
        )
    }

    /// The tensor's elements converted to `dtype` (see
    /// `netport_tensor::convert` for the rules).
    pub fn tensor_converted(
        &self,
        t: &SafetensorsTensor,
        dtype: DType,
    ) -> Result<Vec<u8>, SafetensorsError> {
        let view = self.view(t)?;
        let converted = convert(&view, dtype).map_err(|source| SafetensorsError::Tensor {
            name: t.name.clone(),
            source,
        })?;
        // Owned result: release the mapped source pages (flat memory).
        netport_io::release(self.tensor_bytes(t));
        Ok(converted)
    }
}

fn parse_entry(name: &str, v: &Value) -> Result<(u64, u64), SafetensorsError> {
    let e = |what: &str| bad(Some(8), format!("tensor '{name}': {what}"));
    let obj = v
        .as_object()
        .ok_or_else(|| e("the entry is not an object"))?;
    if !obj.get("dtype").is_some_and(Value::is_string) {
        return Err(e("'dtype' is missing or not a string"));
    }
    let shape = obj
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| e("'shape' is missing or not an array"))?;
    if !shape.iter().all(|d| d.as_u64().is_some()) {
        return Err(e(
            "'shape' holds something other than non-negative integers",
        ));
    }
    let offs = obj
        .get("data_offsets")
        .and_then(Value::as_array)
        .filter(|a| a.len() == 2)
        .ok_or_else(|| e("'data_offsets' is missing or not a pair"))?;
    let (Some(b), Some(end)) = (offs[0].as_u64(), offs[1].as_u64()) else {
        return Err(e("'data_offsets' are not non-negative integers"));
    };
    if b > end {
        return Err(e(&format!(
            "data_offsets [{b}, {end}] end before they begin"
        )));
    }
    Ok((b, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn reads_a_small_file() {
        let f = SafetensorsFile::from_bytes(file(
            r#"{"__metadata__":{"format":"pt","b":"a"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            &[0, 0, 128, 63, 0, 0, 0, 64],
        ))
        .unwrap();
        assert_eq!(f.tensors().len(), 1);
        assert_eq!(f.aliases(), vec![("b".to_owned(), "a".to_owned())]);
        let t = &f.tensors()[0];
        assert_eq!(f.tensor_converted(t, DType::Float64).unwrap().len(), 16);
    }
}

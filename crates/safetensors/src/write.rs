//! The streamed writer: [`layout`] computes the header from names, dtypes
//! and shapes alone; [`write_finished`] writes it and then each tensor as
//! the caller fetches it, into a [`netport_io::AtomicFile`] left finished
//! but not yet renamed, so that several outputs (shards and their index) can
//! be renamed into place only when all are complete. [`hf_metadata`] is the
//! `__metadata__` Hugging Face's tools write and read.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use netport_tensor::DType;
use serde_json::{Map, Value, json};

use crate::error::{SafetensorsError, io, refuse};

/// The `__metadata__` Hugging Face's `save_model` and `convert.py` write:
/// `"format": "pt"`, and `removed -> kept` for each tensor written once
/// under another name (tied weights), which `load_model` re-ties. An alias
/// never overrides an existing entry.
pub fn hf_metadata(aliases: &[(String, String)]) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::new();
    metadata.insert("format".to_owned(), "pt".to_owned());
    for (removed, kept) in aliases {
        metadata
            .entry(removed.clone())
            .or_insert_with(|| kept.clone());
    }
    metadata
}

/// One tensor to write.
#[derive(Debug, Clone)]
pub struct OutTensor {
    /// Output name.
    pub name: String,
    /// Output dtype.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<u64>,
    /// Bytes of data (`numel x element size`).
    pub nbytes: u64,
    /// Index of the source tensor.
    pub source: usize,
}

/// Lays the tensors out (largest element first, then name), builds the
/// padded header. Returns the header bytes (with the length prefix) and the
/// tensors in data order.
pub fn layout(
    mut tensors: Vec<OutTensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<(Vec<u8>, Vec<OutTensor>), SafetensorsError> {
    tensors.sort_by(|a, b| {
        b.dtype
            .size_in_bytes()
            .cmp(&a.dtype.size_in_bytes())
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut map = Map::new();
    if !metadata.is_empty() {
        map.insert("__metadata__".into(), json!(metadata));
    }
    let mut offset = 0u64;
    for t in &tensors {
        let end = offset
            .checked_add(t.nbytes)
            .ok_or_else(|| refuse("the output would be larger than 2^64 bytes"))?;
        map.insert(
            t.name.clone(),
            json!({
                "dtype": t.dtype.safetensors().expect("checked when planning"),
                "shape": t.shape,
                "data_offsets": [offset, end],
            }),
        );
        offset = end;
    }
    let mut header = serde_json::to_vec(&Value::Object(map)).expect("JSON of strings and numbers");
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(header.len() + 8);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    Ok((out, tensors))
}

/// Writes header + data into a new atomic output for `out`, finished but
/// not yet renamed into place.
pub fn write_finished<'a, E: From<SafetensorsError>>(
    out: &Path,
    header: &[u8],
    tensors: &[OutTensor],
    mut fetch: impl FnMut(&OutTensor) -> Result<Cow<'a, [u8]>, E>,
) -> Result<(netport_io::Finished, u64), E> {
    let mut file = netport_io::AtomicFile::create(out).map_err(SafetensorsError::from)?;
    let w = file.writer();
    w.write_all(header).map_err(io(out))?;
    let mut total = header.len() as u64;
    for t in tensors {
        let bytes = fetch(t)?;
        if bytes.len() as u64 != t.nbytes {
            return Err(refuse(format!(
                "tensor '{}': read {} bytes, expected {}",
                t.name,
                bytes.len(),
                t.nbytes
            ))
            .into());
        }
        for c in netport_io::chunks(&bytes) {
            w.write_all(c).map_err(io(out))?;
        }
        total += t.nbytes;
    }
    Ok((file.finish().map_err(SafetensorsError::from)?, total))
}

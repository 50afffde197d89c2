//! The safetensors file `build.rs` made from `tiny_cnn.pt`, embedded in the
//! binary, and a reader of its header (so that using the file proves the
//! build script really wrote it).

use serde::Deserialize;
use std::collections::BTreeMap;

/// The converted checkpoint, as `build.rs` wrote it into `OUT_DIR`.
pub static TINY_CNN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tiny_cnn.safetensors"));

/// How many tensors `build.rs` reported writing.
pub const TINY_CNN_TENSORS: &str = env!("TINY_CNN_TENSORS");

/// One tensor of a safetensors header.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Entry {
    /// `F32`, `I64`, ...
    pub dtype: String,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// Byte range in the data section (after the header).
    pub data_offsets: [u64; 2],
}

/// Why bytes are not a safetensors file.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// Fewer than the 8 bytes of the header length.
    #[error("{0} bytes: too short for the 8-byte header length")]
    TooShort(usize),
    /// The header length points past the end.
    #[error("header length {len} does not fit in {file} bytes")]
    Length {
        /// The declared header length.
        len: u64,
        /// The file's length.
        file: usize,
    },
    /// The header is not the JSON object safetensors writes.
    #[error("header is not a safetensors JSON object: {0}")]
    Json(#[from] serde_json::Error),
}

/// The tensors a safetensors file declares, by name (`__metadata__` left
/// out), with the byte length of the header + its 8-byte prefix.
pub fn read_header(bytes: &[u8]) -> Result<(BTreeMap<String, Entry>, usize), HeaderError> {
    let prefix: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(HeaderError::TooShort(bytes.len()))?;
    let len = u64::from_le_bytes(prefix);
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(8))
        .filter(|&end| end <= bytes.len())
        .ok_or(HeaderError::Length {
            len,
            file: bytes.len(),
        })?;
    let mut raw: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&bytes[8..end])?;
    raw.remove("__metadata__");
    let entries = raw
        .into_iter()
        .map(|(name, value)| Ok((name, serde_json::from_value(value)?)))
        .collect::<Result<_, HeaderError>>()?;
    Ok((entries, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netport_torch::Checkpoint;

    /// The embedded file holds exactly the checkpoint's tensors, with their
    /// shapes and bytes.
    #[test]
    fn embedded_file_is_the_checkpoint_converted() {
        let (entries, data_start) = read_header(TINY_CNN).unwrap();
        assert_eq!(entries.len().to_string(), TINY_CNN_TENSORS);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tiny_cnn.pt");
        let checkpoint = Checkpoint::open(path).unwrap();
        assert_eq!(checkpoint.tensors().len(), entries.len());
        for tensor in checkpoint.tensors() {
            let entry = &entries[&tensor.path];
            assert_eq!(entry.shape, tensor.shape, "{}", tensor.path);
            let [begin, end] = entry.data_offsets.map(|o| data_start + o as usize);
            let expected = checkpoint.tensor_bytes(tensor).unwrap();
            assert_eq!(&TINY_CNN[begin..end], &expected[..], "{}", tensor.path);
        }
        assert_eq!(entries["conv.weight"].dtype, "F32");
        assert_eq!(entries["bn.num_batches_tracked"].dtype, "I64");
    }

    #[test]
    fn broken_headers_are_refused() {
        assert!(matches!(
            read_header(b"1234"),
            Err(HeaderError::TooShort(4))
        ));
        let lying = [0xff, 0, 0, 0, 0, 0, 0, 0, b'{', b'}'];
        assert!(matches!(
            read_header(&lying),
            Err(HeaderError::Length { len: 255, file: 10 })
        ));
        let html = b"\x06\0\0\0\0\0\0\0<html>";
        assert!(matches!(read_header(html), Err(HeaderError::Json(_))));
    }
}

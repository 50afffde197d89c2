//! [`ConvertReport`]: what a conversion or rewrite did, the one report of
//! every writer that turns tensors into a new file (state-dict rewrites
//! here, safetensors conversions in `netport-torch-safetensors`), and the
//! two measures they share.

use netport_tensor::DType;

use crate::error::TorchError;
use crate::read::checkpoint::Checkpoint;
use crate::write::edit::{Edits, refuse};

/// What a conversion did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvertReport {
    /// Tensors written (aliases not counted).
    pub tensors: usize,
    /// `(removed name, kept name)`: identical views of one storage, written
    /// once and recorded in `__metadata__`.
    pub aliases: Vec<(String, String)>,
    /// Output names of tensors that share a storage with another tensor
    /// (different views) and were written as separate copies.
    pub copies: Vec<String>,
    /// Source names of tensors left out by the edits (key, filter, exclude).
    pub left_out: Vec<String>,
    /// Paths of non-tensor values dropped (safetensors holds only tensors).
    pub dropped_values: Vec<String>,
    /// Tensors whose dtype was changed by `Edits::dtype`.
    pub dtype_changed: usize,
    /// Their bytes before and after the change.
    pub dtype_bytes_before: u64,
    /// See `dtype_bytes_before`.
    pub dtype_bytes_after: u64,
    /// Bytes of tensor data written.
    pub data_bytes: u64,
    /// Size of the output file.
    pub file_bytes: u64,
}

impl ConvertReport {
    /// Bytes saved by the dtype change (negative when widening).
    pub fn bytes_saved(&self) -> i64 {
        self.dtype_bytes_before as i64 - self.dtype_bytes_after as i64
    }
}

/// Bytes of a tensor of `dtype` and `shape`, refused when it overflows.
pub fn nbytes(dtype: DType, shape: &[u64], name: &str) -> Result<u64, TorchError> {
    shape
        .iter()
        .try_fold(dtype.size_in_bytes() as u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| refuse(format!("tensor '{name}': shape {shape:?} overflows")))
}

/// Paths of the non-tensor values a tensors-only output drops: all of them,
/// or those under `edits.key` when it is set.
pub fn dropped_values(ckpt: &Checkpoint, edits: &Edits) -> Vec<String> {
    ckpt.values()
        .iter()
        .filter(|v| match &edits.key {
            Some(k) => v
                .path
                .strip_prefix(k.as_str())
                .is_some_and(|r| r.starts_with('.')),
            None => true,
        })
        .map(|v| v.path.clone())
        .collect()
}

//! Where PyTorch checkpoints and safetensors meet: conversion in both
//! directions ([`checkpoint_to_safetensors`], [`safetensors_to_checkpoint`],
//! [`safetensors_to_legacy_checkpoint`]), sharded checkpoints with their
//! index ([`index_to_safetensors`], [`index_to_checkpoints`]), and tensor
//! diffs across both formats ([`diff()`](fn@diff)).
//!
//! netport's format crates never depend on each other; a crate that joins
//! two formats is named after both. This one reads checkpoints with
//! `netport-torch`, safetensors with `netport-safetensors`, and writes each
//! with that crate's writer.
//!
//! # Shared storage
//!
//! Tensors that are the same view of one storage (tied weights: same dtype,
//! shape, strides and offset) are written to safetensors once, under the
//! first name in sorted order, and each other name is recorded in
//! `__metadata__` as `"<removed name>": "<kept name>"`: exactly what Hugging
//! Face's `safetensors.torch.save_model` and `convert.py` write, so
//! `load_model` re-ties them ([`netport_safetensors::write::hf_metadata`]).
//! Tensors that view *different* parts of one storage (a slice, a transpose)
//! are written as separate, contiguous copies: the Hugging Face code instead
//! drops all but one "complete" tensor and records the others as aliases,
//! which loses their values, or refuses when none covers the storage.
//!
//! ```no_run
//! use netport_torch::{Checkpoint, Edits};
//!
//! let ckpt = Checkpoint::open("model.pt")?;
//! let report = netport_torch_safetensors::checkpoint_to_safetensors(
//!     &ckpt,
//!     "model.safetensors".as_ref(),
//!     &Edits::default(),
//! )?;
//! println!("{} tensors, {} aliases", report.tensors, report.aliases.len());
//! # Ok::<(), netport_torch_safetensors::ConvertError>(())
//! ```

pub mod diff;
mod sharded;
mod to_checkpoint;
mod to_safetensors;

pub use diff::{DiffOptions, DiffReport, TensorDiff, TensorFile, diff};
pub use netport_torch::ConvertReport;
pub use sharded::{ShardedReport, index_to_checkpoints, index_to_safetensors};
pub use to_checkpoint::{safetensors_to_checkpoint, safetensors_to_legacy_checkpoint};
pub use to_safetensors::checkpoint_to_safetensors;

use netport_safetensors::SafetensorsError;
use netport_torch::TorchError;

/// An error of either side of a conversion.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// From the checkpoint side (reading, writing, edits).
    #[error(transparent)]
    Torch(#[from] TorchError),
    /// From the safetensors side.
    #[error(transparent)]
    Safetensors(#[from] SafetensorsError),
}

impl From<netport_io::IoError> for ConvertError {
    fn from(e: netport_io::IoError) -> Self {
        ConvertError::Torch(e.into())
    }
}

impl ConvertError {
    /// True for I/O errors, whose message starts with the file's path
    /// (callers that prefix messages with a file name skip these).
    pub fn names_file(&self) -> bool {
        matches!(
            self,
            ConvertError::Torch(TorchError::Io { .. })
                | ConvertError::Safetensors(SafetensorsError::Io { .. })
        )
    }
}

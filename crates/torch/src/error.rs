//! [`TorchError`], the one error type of the crate.
//!
//! Every message says what is wrong and where: a byte offset in the file, a
//! zip record name, a pickle record plus the pickle's own offset and opcode,
//! or the path of the tensor or value involved.

use std::path::PathBuf;

use netport_pickle::PickleError;
use netport_tensor::TensorError;

use crate::read::detect::Detected;

impl From<netport_io::IoError> for TorchError {
    fn from(e: netport_io::IoError) -> Self {
        TorchError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// Everything that can go wrong while opening or reading a checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TorchError {
    /// The file could not be opened, measured or mapped.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error from the operating system.
        source: std::io::Error,
    },
    /// The bytes are not a PyTorch checkpoint this crate reads; the
    /// [`Detected`] value says what they are instead.
    #[error("not a PyTorch checkpoint: {detected}")]
    NotACheckpoint {
        /// What the bytes look like.
        detected: Detected,
    },
    /// A format that is recognised but not read by this crate.
    #[error("{what} is recognised but not supported: {reason}")]
    Unsupported {
        /// The format or feature.
        what: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The zip structure is malformed (offset is absolute in the file).
    #[error(
        "zip structure at file byte {offset}{}: {reason}",
        record_suffix(record)
    )]
    Zip {
        /// File offset of the structure that is wrong.
        offset: u64,
        /// The record (entry name as written), when one is involved.
        record: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// A record torch requires is missing.
    #[error("record '{record}' is missing from archive '{archive}': {why}")]
    MissingRecord {
        /// The record name without the archive prefix.
        record: String,
        /// The archive name (prefix directory).
        archive: String,
        /// Why it is needed.
        why: String,
    },
    /// A pickle could not be read. `start` is the file offset of the
    /// pickle's first byte; the inner error's offsets are relative to it.
    #[error(
        "pickle '{pickle}' (starts at file byte {start}, offsets below are relative to it): {source}"
    )]
    Pickle {
        /// The record name, or `legacy pickle #N`.
        pickle: String,
        /// File offset of the pickle.
        start: u64,
        /// The machine's error (offset + opcode).
        source: PickleError,
    },
    /// A small text record (`version`, `byteorder`, ...) has a bad value.
    #[error("record '{record}' at file byte {offset}: {reason}")]
    BadRecord {
        /// The record name without the prefix.
        record: String,
        /// File offset of its data.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A storage (persistent id or its data) is inconsistent.
    #[error("storage '{key}' in {pickle}: {reason}")]
    BadStorage {
        /// The storage key as written in the persistent id.
        key: String,
        /// The pickle (record) that declared it.
        pickle: String,
        /// What is wrong.
        reason: String,
    },
    /// A value that should describe a tensor or storage does not.
    #[error("{pickle}, at path '{path}': {reason}")]
    BadObject {
        /// The pickle (record) the value is in.
        pickle: String,
        /// Path of the value (see the crate docs for the path rule).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor's shape, strides and offset reach outside its storage (a
    /// lying shape).
    #[error("{0}")]
    TensorOutOfBounds(Box<OutOfBounds>),
    /// The legacy (stacked pickles) layout is malformed.
    #[error("legacy checkpoint at file byte {offset}: {reason}")]
    Legacy {
        /// File offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A `.pt2` JSON record is malformed.
    #[error(".pt2 record '{record}': {reason}")]
    Pt2 {
        /// The record name without the prefix.
        record: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor's bytes cannot be produced.
    #[error("tensor '{path}': {reason}")]
    NotMaterialisable {
        /// The tensor path.
        path: String,
        /// Why.
        reason: String,
    },
    /// Writing to a caller's output stream failed (writes to a file are
    /// [`TorchError::Io`], with the file's path).
    #[error("write failed: {0}")]
    Write(#[from] std::io::Error),
    /// A pickle could not be re-encoded while rewriting a file.
    #[error("pickle '{pickle}': {source}")]
    Repickle {
        /// The pickle record.
        pickle: String,
        /// The error.
        source: PickleError,
    },
    /// A write, rewrite, conversion or edit was refused, and nothing was
    /// written: the output is the input, a bad mapping, a pickle layout that
    /// cannot be rewritten safely, something that cannot be made safe, a
    /// dtype the target format cannot hold, two tensors renamed to one name,
    /// a bad pattern. The message names the tensor or file involved.
    #[error("{0}")]
    Refused(String),
    /// Some tensors cannot be written to the target format (quantized, meta,
    /// unreadable, no such dtype there); nothing was written. Leaving them
    /// out (an exclude pattern of [`crate::Edits`]) lets the rest through.
    #[error(
        "{} tensor(s) cannot be written to {target}: {}{}",
        tensors.len(),
        tensors[..tensors.len().min(32)].join("; "),
        if tensors.len() > 32 { "; ..." } else { "" }
    )]
    TensorsRefused {
        /// The target (`safetensors`, `a state dict`, ...).
        target: String,
        /// Each refused tensor: `'name': why`.
        tensors: Vec<String>,
    },
    /// Copying or converting a tensor failed.
    #[error("tensor '{path}': {source}")]
    Tensor {
        /// The tensor path.
        path: String,
        /// The tensor crate's error.
        source: TensorError,
    },
}

/// The details of [`TorchError::TensorOutOfBounds`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfBounds {
    /// The pickle (record) of the tensor.
    pub pickle: String,
    /// The tensor path.
    pub path: String,
    /// Shape in elements.
    pub shape: Vec<u64>,
    /// Strides in elements.
    pub strides: Vec<u64>,
    /// Storage offset in elements.
    pub offset: u64,
    /// Tensor dtype name.
    pub dtype: String,
    /// Storage key.
    pub key: String,
    /// Bytes needed.
    pub needed: u64,
    /// Bytes in the storage.
    pub available: u64,
}

impl std::fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tensor '{}' in {}: shape {:?}, strides {:?}, storage offset {} ({}) need {} bytes but storage '{}' has {}",
            self.path,
            self.pickle,
            self.shape,
            self.strides,
            self.offset,
            self.dtype,
            self.needed,
            self.key,
            self.available
        )
    }
}

fn record_suffix(record: &Option<String>) -> String {
    match record {
        Some(r) => format!(" (record '{r}')"),
        None => String::new(),
    }
}

impl TorchError {
    pub(crate) fn refused(reason: impl Into<String>) -> Self {
        TorchError::Refused(reason.into())
    }

    pub(crate) fn zip(offset: u64, record: Option<&str>, reason: impl Into<String>) -> Self {
        TorchError::Zip {
            offset,
            record: record.map(str::to_owned),
            reason: reason.into(),
        }
    }
}

//! The error type of `netport-onnx`: every failure names the file or tensor
//! involved and what is wrong with it.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing ONNX models.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid ONNX `ModelProto` (or exceed a decoding limit).
    #[error("{what} is not a valid ONNX protobuf ({len} bytes): {reason}")]
    Decode {
        /// What was decoded (a file name, or a description).
        what: String,
        /// Its length in bytes.
        len: u64,
        /// What the decoder said.
        reason: String,
    },
    /// Protobuf cannot hold a single message over 2 GiB - 1.
    #[error(
        "the model encodes to {size} bytes, over the protobuf limit of 2147483647 bytes (2 GiB - 1); save its tensors as external data (SaveOptions::external_data)"
    )]
    TooLarge {
        /// The encoded size in bytes.
        size: u64,
    },
    /// An external-data reference that is malformed, escapes the model's
    /// directory, or points outside its file.
    #[error("tensor '{tensor}': external data {problem}")]
    ExternalData {
        /// The tensor's name.
        tensor: String,
        /// What is wrong with its reference.
        problem: String,
    },
    /// A tensor whose declared size does not match its data.
    #[error("tensor '{tensor}': {problem}")]
    Tensor {
        /// The tensor's name.
        tensor: String,
        /// What is wrong.
        problem: String,
    },
}

impl From<netport_io::IoError> for OnnxError {
    fn from(e: netport_io::IoError) -> Self {
        OnnxError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl OnnxError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        OnnxError::Io {
            path: path.into(),
            source,
        }
    }
}

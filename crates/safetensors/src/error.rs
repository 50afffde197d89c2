//! [`SafetensorsError`], the one error type of the crate.

use std::path::PathBuf;

use netport_tensor::TensorError;

/// Everything that can go wrong reading or writing safetensors files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SafetensorsError {
    /// A file could not be opened, mapped, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error from the operating system.
        source: std::io::Error,
    },
    /// A safetensors file (or its index) is malformed: a lying header
    /// length, bad JSON, offsets outside the file, overlaps or holes.
    #[error("safetensors{}: {reason}", offset_suffix(*offset))]
    Format {
        /// File offset of the problem, when one applies.
        offset: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// A write was refused (a shape too large, an output that is an input,
    /// an index that does not match its shards, a tensor whose bytes do not
    /// match its shape); nothing was written.
    #[error("{0}")]
    Refused(String),
    /// Converting a tensor failed.
    #[error("tensor '{name}': {source}")]
    Tensor {
        /// The tensor name.
        name: String,
        /// The tensor crate's error.
        source: TensorError,
    },
}

impl From<netport_io::IoError> for SafetensorsError {
    fn from(e: netport_io::IoError) -> Self {
        SafetensorsError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

fn offset_suffix(offset: Option<u64>) -> String {
    match offset {
        Some(o) => format!(" (at file byte {o})"),
        None => String::new(),
    }
}

pub(crate) fn bad(offset: Option<u64>, reason: impl Into<String>) -> SafetensorsError {
    SafetensorsError::Format {
        offset,
        reason: reason.into(),
    }
}

pub(crate) fn refuse(reason: impl Into<String>) -> SafetensorsError {
    SafetensorsError::Refused(reason.into())
}

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> SafetensorsError + '_ {
    move |source| SafetensorsError::Io {
        path: path.to_owned(),
        source,
    }
}

//! The state_dict of a checkpoint or safetensors file as the exporter sees
//! it: names (after the training-checkpoint key and the `module.` /
//! `_orig_mod.` prefixes are dealt with), dtypes and shapes, and the bytes of
//! one tensor at a time as float32. A tensor stored as contiguous
//! little-endian float32 becomes a [`StoredTensor`]: a
//! [`TensorSource`] that copies its bytes straight from the file's map when
//! the model is written (in pieces whose pages are released), so the
//! weights are never held in memory; any other tensor is converted once
//! into a copy the graph builder holds.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use netport_onnx::{OnnxError, TensorSource};
use netport_tensor::DType;
use netport_torch_safetensors::TensorFile;

use crate::error::ExportError;

/// The sub-dicts of a training checkpoint that hold the model's state_dict,
/// tried in this order when no key is given.
pub const NESTED_KEYS: [&str; 4] = ["state_dict", "model_state_dict", "model", "net"];

/// The prefixes `DataParallel` (`module.`) and `torch.compile`
/// (`_orig_mod.`) put in front of every name; dropped, repeatedly.
pub const DROPPED_PREFIXES: [&str; 2] = ["module.", "_orig_mod."];

/// One tensor of the state_dict.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The name in the file.
    pub source_name: String,
    /// The element type in the file.
    pub dtype: DType,
    /// The shape.
    pub shape: Vec<u64>,
    index: usize,
}

/// A state_dict read from a file: names in the model's own spelling.
#[derive(Debug)]
pub struct StateDict {
    file: Arc<TensorFile>,
    entries: BTreeMap<String, Entry>,
    /// The sub-dict the names came from (`model`, `state_dict`, ...).
    pub key: Option<String>,
    /// The format of the file (`zip`, `legacy`, `safetensors`, ...).
    pub format: String,
}

impl StateDict {
    /// Opens `path` (any checkpoint netport reads, or safetensors) and
    /// collects the tensors under `key` (or under the first of
    /// [`NESTED_KEYS`] that holds tensors, or at the root).
    pub fn open(path: &Path, key: Option<&str>) -> Result<Self, ExportError> {
        let file = TensorFile::open(path).map_err(|e| ExportError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let format = file.format_name();
        let listed: Vec<(String, DType, Vec<u64>)> = match &file {
            TensorFile::Checkpoint(c) => c
                .tensors()
                .iter()
                .map(|t| (t.path.clone(), t.dtype, t.shape.clone()))
                .collect(),
            TensorFile::Safetensors(f) => f
                .tensors()
                .iter()
                .map(|t| (t.name.clone(), t.dtype, t.shape.clone()))
                .collect(),
        };
        if listed.is_empty() {
            return Err(ExportError::NotAStateDict {
                path: path.display().to_string(),
                reason: "it holds no tensors".into(),
            });
        }
        let under = |k: &str| {
            let p = format!("{k}.");
            listed.iter().filter(|(n, ..)| n.starts_with(&p)).count()
        };
        let key = match key {
            Some(k) => {
                if under(k) == 0 {
                    return Err(ExportError::NotAStateDict {
                        path: path.display().to_string(),
                        reason: format!("no tensor sits under the key '{k}'"),
                    });
                }
                Some(k.to_string())
            }
            None => NESTED_KEYS
                .iter()
                .find(|k| under(k) > 0)
                .map(|k| k.to_string()),
        };
        let mut entries = BTreeMap::new();
        for (index, (name, dtype, shape)) in listed.into_iter().enumerate() {
            let inner = match &key {
                Some(k) => match name
                    .strip_prefix(k.as_str())
                    .and_then(|r| r.strip_prefix('.'))
                {
                    Some(rest) => rest.to_string(),
                    None => continue,
                },
                None => name.clone(),
            };
            let model_name = strip_prefixes(&inner).to_string();
            let entry = Entry {
                source_name: name,
                dtype,
                shape,
                index,
            };
            if let Some(first) = entries.insert(model_name.clone(), entry) {
                return Err(ExportError::NotAStateDict {
                    path: path.display().to_string(),
                    reason: format!(
                        "'{}' and '{}' are both '{model_name}' once the prefixes are dropped",
                        first.source_name, entries[&model_name].source_name
                    ),
                });
            }
        }
        Ok(StateDict {
            file: Arc::new(file),
            entries,
            key,
            format,
        })
    }

    /// The tensors by model name, sorted.
    pub fn entries(&self) -> &BTreeMap<String, Entry> {
        &self.entries
    }

    /// The tensor `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// The shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[u64]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// True when `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The elements of `name` as little-endian float32 (converted from
    /// float16, bfloat16 or float64; borrowed from the map when stored so).
    pub fn f32_bytes(&self, name: &str) -> Result<Cow<'_, [u8]>, ExportError> {
        self.bytes_as(
            name,
            DType::Float32,
            |d| d.is_floating_point(),
            "a floating-point type",
        )
    }

    /// The elements of `name` as little-endian int64 (converted from the
    /// narrower integer types): index buffers (`relative_position_index`).
    pub fn i64_bytes(&self, name: &str) -> Result<Cow<'_, [u8]>, ExportError> {
        let integer = |d: DType| {
            matches!(
                d,
                DType::Int8
                    | DType::Int16
                    | DType::Int32
                    | DType::Int64
                    | DType::UInt8
                    | DType::UInt16
                    | DType::UInt32
                    | DType::UInt64
            )
        };
        self.bytes_as(name, DType::Int64, integer, "an integer type")
    }

    /// The elements of `name` as little-endian float32, as the exporter
    /// adds them: a [`StoredTensor`] read from the map when written if the
    /// file stores them so, else a converted copy.
    pub fn f32_weights(&self, name: &str) -> Result<Weights, ExportError> {
        let e = self.accepted(name, |d| d.is_floating_point(), "a floating-point type")?;
        match self.f32_bytes(name)? {
            Cow::Borrowed(b) => Ok(Weights::Stored(StoredTensor {
                file: Arc::clone(&self.file),
                name: name.to_string(),
                index: e.index,
                dtype: e.dtype,
                len: b.len() as u64,
            })),
            Cow::Owned(v) => Ok(Weights::Copied(v)),
        }
    }

    /// The entry `name`, when its dtype passes `accept` (a `kind` of type).
    fn accepted(
        &self,
        name: &str,
        accept: impl Fn(DType) -> bool,
        kind: &str,
    ) -> Result<&Entry, ExportError> {
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| ExportError::Internal(format!("no tensor '{name}'")))?;
        if !accept(e.dtype) {
            return Err(ExportError::BadTensor {
                name: name.to_string(),
                reason: format!("dtype {} is not {kind}", e.dtype),
            });
        }
        Ok(e)
    }

    /// The elements of `name` as little-endian `to`, when its dtype passes
    /// `accept` (a `kind` of type).
    fn bytes_as(
        &self,
        name: &str,
        to: DType,
        accept: impl Fn(DType) -> bool,
        kind: &str,
    ) -> Result<Cow<'_, [u8]>, ExportError> {
        let e = self.accepted(name, accept, kind)?;
        file_bytes(&self.file, e.index, e.dtype, to).map_err(|reason| ExportError::BadTensor {
            name: name.to_string(),
            reason,
        })
    }
}

/// Tensor `index` of `file` (stored as `dtype`) as little-endian `to`:
/// borrowed from the map when stored so, else converted.
fn file_bytes(
    file: &TensorFile,
    index: usize,
    dtype: DType,
    to: DType,
) -> Result<Cow<'_, [u8]>, String> {
    match file {
        TensorFile::Checkpoint(c) => {
            let t = &c.tensors()[index];
            if dtype == to {
                c.tensor_bytes(t).map_err(|x| x.to_string())
            } else {
                c.tensor_converted(t, to)
                    .map(Cow::Owned)
                    .map_err(|x| x.to_string())
            }
        }
        TensorFile::Safetensors(f) => {
            let t = &f.tensors()[index];
            if dtype == to {
                Ok(Cow::Borrowed(f.tensor_bytes(t)))
            } else {
                f.tensor_converted(t, to)
                    .map(Cow::Owned)
                    .map_err(|x| x.to_string())
            }
        }
    }
}

/// The float32 bytes of one initializer ([`StateDict::f32_weights`]).
#[derive(Debug)]
pub enum Weights {
    /// Stored as contiguous little-endian float32: read from the map when
    /// the model is written.
    Stored(StoredTensor),
    /// Converted (another dtype, strided, big-endian): the copy.
    Copied(Vec<u8>),
}

/// A tensor whose file stores exactly the bytes an initializer needs
/// (contiguous little-endian float32): a [`TensorSource`] that writes them
/// from the file's map in [`netport_io::CHUNK`] pieces, releasing each
/// piece's pages after it is written.
#[derive(Debug)]
pub struct StoredTensor {
    file: Arc<TensorFile>,
    name: String,
    index: usize,
    dtype: DType,
    len: u64,
}

impl TensorSource for StoredTensor {
    fn byte_len(&self) -> u64 {
        self.len
    }

    fn write_to(
        &self,
        out: &mut dyn FnMut(&[u8]) -> Result<(), OnnxError>,
    ) -> Result<(), OnnxError> {
        let bytes =
            file_bytes(&self.file, self.index, self.dtype, DType::Float32).map_err(|problem| {
                OnnxError::Tensor {
                    tensor: self.name.clone(),
                    problem,
                }
            })?;
        for piece in netport_io::chunks(&bytes) {
            out(piece)?;
        }
        Ok(())
    }
}

/// `name` without the [`DROPPED_PREFIXES`] (repeatedly).
pub fn strip_prefixes(mut name: &str) -> &str {
    while let Some(rest) = DROPPED_PREFIXES.iter().find_map(|p| name.strip_prefix(p)) {
        name = rest;
    }
    name
}

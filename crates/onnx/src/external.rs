//! External data: tensors whose bytes live in a file next to the model
//! (`data_location = EXTERNAL`, keys `location`, `offset`, `length`,
//! `checksum`). Reading is sandboxed: the location must be a relative path
//! inside the model's directory (no absolute paths, no `..`, no links that lead
//! out), and `offset + length` must lie within the file. Files are memory
//! mapped once and shared, so reading a tensor copies nothing.

use crate::OnnxError;
use crate::proto::TensorProto;
use crate::proto::tensor_proto::DataLocation;
use bytes::Bytes;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// The parsed `external_data` entries of one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalDataInfo {
    /// Path of the data file, relative to the model's directory.
    pub location: String,
    /// Start of the tensor's bytes in the file.
    pub offset: u64,
    /// Number of bytes; `None` means "to the end of the file".
    pub length: Option<u64>,
    /// SHA-1 of the file as written by some tools; kept, never verified.
    pub checksum: Option<String>,
}

impl ExternalDataInfo {
    /// The external-data reference of `tensor`, or `None` when its data is
    /// stored inline. Malformed entries (no location, a non-numeric offset)
    /// are errors.
    pub fn of(tensor: &TensorProto) -> Result<Option<Self>, OnnxError> {
        if tensor.data_location() != DataLocation::External {
            return Ok(None);
        }
        let err = |problem: String| OnnxError::ExternalData {
            tensor: tensor.name().to_string(),
            problem,
        };
        let (mut location, mut offset, mut length, mut checksum) = (None, 0u64, None, None);
        for entry in &tensor.external_data {
            let value = entry.value();
            let number = |key: &str| {
                value
                    .parse::<u64>()
                    .map_err(|_| err(format!("has a non-numeric {key} '{value}'")))
            };
            match entry.key() {
                "location" => location = Some(value.to_string()),
                "offset" => offset = number("offset")?,
                "length" => length = Some(number("length")?),
                "checksum" => checksum = Some(value.to_string()),
                // `basepath` and unknown keys are ignored, as the onnx loader does.
                _ => {}
            }
        }
        let location = location.ok_or_else(|| err("has no 'location' entry".into()))?;
        Ok(Some(ExternalDataInfo {
            location,
            offset,
            length,
            checksum,
        }))
    }
}

/// Whether `tensor` keeps its data in an external file.
pub fn is_external(tensor: &TensorProto) -> bool {
    tensor.data_location() == DataLocation::External
}

/// Reads external data for the tensors of one model, relative to the model's
/// directory. Data files are mapped on first use and kept for later tensors.
#[derive(Debug)]
pub struct ExternalDataResolver {
    base_dir: PathBuf,
    canonical_base: Option<PathBuf>,
    files: Mutex<HashMap<PathBuf, Bytes>>,
}

impl ExternalDataResolver {
    /// A resolver for a model stored in `base_dir`.
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        let base_dir = base_dir.into();
        let canonical_base = std::fs::canonicalize(&base_dir).ok();
        ExternalDataResolver {
            base_dir,
            canonical_base,
            files: Mutex::new(HashMap::new()),
        }
    }

    /// A resolver for the model file at `model_path` (its parent directory).
    pub fn for_model(model_path: &Path) -> Self {
        let dir = match model_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Self::new(dir)
    }

    /// The directory locations are resolved against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// Checks a location string and resolves it to a path inside the base
    /// directory, following links only while they stay inside it.
    pub fn resolve(&self, tensor: &str, location: &str) -> Result<PathBuf, OnnxError> {
        let err = |problem: String| OnnxError::ExternalData {
            tensor: tensor.to_string(),
            problem,
        };
        if location.is_empty() {
            return Err(err("has an empty location".into()));
        }
        if location.contains('\0') {
            return Err(err(format!("location {location:?} contains a NUL byte")));
        }
        let rel = Path::new(location);
        if rel.is_absolute() || location.starts_with('/') || location.starts_with('\\') {
            return Err(err(format!(
                "location '{location}' is an absolute path; only paths relative to the model's directory are allowed"
            )));
        }
        for component in rel.components() {
            match component {
                Component::Normal(_) | Component::CurDir => {}
                Component::ParentDir => {
                    return Err(err(format!(
                        "location '{location}' contains '..' and could leave the model's directory"
                    )));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(err(format!("location '{location}' is not a relative path")));
                }
            }
        }
        let joined = self.base_dir.join(rel);
        let canonical = std::fs::canonicalize(&joined)
            .map_err(|e| err(format!("file '{}' cannot be opened: {e}", joined.display())))?;
        let base = self.canonical_base.as_ref().ok_or_else(|| {
            err(format!(
                "base directory '{}' does not exist",
                self.base_dir.display()
            ))
        })?;
        if !canonical.starts_with(base) {
            return Err(err(format!(
                "location '{location}' resolves to '{}', outside the model's directory '{}' (through a link)",
                canonical.display(),
                base.display()
            )));
        }
        if !canonical.is_file() {
            return Err(err(format!("location '{location}' is not a regular file")));
        }
        Ok(canonical)
    }

    /// The bytes of an external tensor (shared with the mapped file), checked
    /// against the file's size.
    pub fn read(&self, tensor: &TensorProto) -> Result<Bytes, OnnxError> {
        let name = tensor.name();
        let info = ExternalDataInfo::of(tensor)?.ok_or_else(|| OnnxError::ExternalData {
            tensor: name.to_string(),
            problem: "was requested but the tensor's data is stored inline".into(),
        })?;
        self.read_info(name, &info)
    }

    /// The bytes that `info` designates, for the tensor called `name`.
    pub fn read_info(&self, name: &str, info: &ExternalDataInfo) -> Result<Bytes, OnnxError> {
        let path = self.resolve(name, &info.location)?;
        let file = self.map(&path)?;
        let size = file.len() as u64;
        let err = |problem: String| OnnxError::ExternalData {
            tensor: name.to_string(),
            problem,
        };
        if info.offset > size {
            return Err(err(format!(
                "offset {} is past the end of '{}' ({size} bytes)",
                info.offset, info.location
            )));
        }
        let length = info.length.unwrap_or(size - info.offset);
        let end = info
            .offset
            .checked_add(length)
            .filter(|end| *end <= size)
            .ok_or_else(|| {
                err(format!(
                    "offset {} + length {length} exceeds '{}' ({size} bytes)",
                    info.offset, info.location
                ))
            })?;
        Ok(file.slice(info.offset as usize..end as usize))
    }

    fn map(&self, path: &Path) -> Result<Bytes, OnnxError> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bytes) = files.get(path) {
            return Ok(bytes.clone());
        }
        let bytes = crate::io::map_file(path)?;
        files.insert(path.to_path_buf(), bytes.clone());
        Ok(bytes)
    }
}

/// Checks every external-data reference of `model` (initializers and
/// attribute tensors, subgraphs included): each location must resolve inside
/// the model's directory and each range must lie inside its file. Maps the
/// files but reads no tensor bytes. Returns how many tensors are external.
pub fn check_external_data(
    model: &crate::proto::ModelProto,
    resolver: &ExternalDataResolver,
) -> Result<usize, OnnxError> {
    let mut count = 0;
    if let Some(graph) = &model.graph {
        crate::walk::for_each_tensor(graph, true, &mut |t| {
            if let Some(info) = ExternalDataInfo::of(t)? {
                resolver.read_info(t.name(), &info)?;
                count += 1;
            }
            Ok(())
        })?;
    }
    Ok(count)
}

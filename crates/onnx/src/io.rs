//! Loading and saving `ModelProto`s. Decoding is bounded (prost's recursion
//! limit of 100 nested messages; every length prefix is checked against the
//! bytes that remain, so a hostile length never allocates). Files are memory
//! mapped and tensor bytes stay in the map. Saving refuses protobufs over
//! 2 GiB - 1, can move large tensors to an external data file at 4096-byte
//! aligned offsets, and writes every file atomically (temporary file + rename).

use crate::OnnxError;
use crate::external::{ExternalDataInfo, ExternalDataResolver, is_external};
use crate::proto::tensor_proto::DataLocation;
use crate::proto::{ModelProto, StringStringEntryProto, TensorProto};
use crate::walk::for_each_tensor_mut;
use bytes::Bytes;
use prost::Message;
use std::io::Write;
use std::path::Path;

/// The largest protobuf message the C++ and Python protobuf libraries (and so
/// onnx and onnxruntime) accept: 2 GiB - 1.
pub const MAX_PROTOBUF_BYTES: u64 = i32::MAX as u64;

/// Maps a whole file read-only ([`netport_io::map_file`]). An empty file
/// gives empty bytes.
pub(crate) fn map_file(path: &Path) -> Result<Bytes, OnnxError> {
    let map = netport_io::map_file(path)?;
    Ok(Bytes::from_owner(map))
}

/// Decodes a `ModelProto`. `what` names the input in errors (a path, "stdin").
/// Bytes fields of the result share `bytes`' buffer.
pub fn decode_model(bytes: Bytes, what: &str) -> Result<ModelProto, OnnxError> {
    let len = bytes.len() as u64;
    let decode_err = |reason: String| OnnxError::Decode {
        what: what.to_string(),
        len,
        reason,
    };
    if bytes.is_empty() {
        return Err(decode_err("the input is empty".into()));
    }
    let model = ModelProto::decode(bytes).map_err(|e| decode_err(short_decode_error(&e)))?;
    if model.ir_version.is_none() && model.graph.is_none() {
        return Err(decode_err(
            "it decodes as protobuf but has neither an ir_version nor a graph".into(),
        ));
    }
    Ok(model)
}

/// prost's message, with the field path shortened when it is long (a nesting
/// bomb lists every level): `ModelProto.graph: GraphProto.node: ... (197 more
/// levels) ...: recursion limit reached`.
fn short_decode_error(e: &prost::DecodeError) -> String {
    let text = e.to_string();
    let body = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text);
    let parts: Vec<&str> = body.split(": ").collect();
    if parts.len() <= 8 {
        return body.to_string();
    }
    // prost lists the innermost field first; keep the outermost levels and
    // the description.
    let (path, description) = parts.split_at(parts.len() - 1);
    let outer: Vec<&str> = path.iter().rev().take(4).copied().collect();
    format!(
        "{}: ... ({} more levels) ...: {}",
        outer.join(": "),
        path.len() - outer.len(),
        description[0]
    )
}

/// Loads a model file without reading external data (see
/// [`ExternalDataResolver::for_model`] to read it lazily).
pub fn load_model(path: &Path) -> Result<ModelProto, OnnxError> {
    let bytes = map_file(path)?;
    decode_model(bytes, &path.display().to_string())
}

/// Encodes a model, refusing results over [`MAX_PROTOBUF_BYTES`].
pub fn encode_model(model: &ModelProto) -> Result<Vec<u8>, OnnxError> {
    let size = model.encoded_len() as u64;
    if size > MAX_PROTOBUF_BYTES {
        return Err(OnnxError::TooLarge { size });
    }
    Ok(model.encode_to_vec())
}

/// Where and how to write external data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalDataOptions {
    /// The data file, relative to the model's directory (a plain file name is
    /// usual, e.g. `model.onnx.data`).
    pub location: String,
    /// Tensors with at least this many bytes of `raw_data` go to the file.
    pub size_threshold: u64,
    /// Every tensor starts at a multiple of this (4096 by default, so the data
    /// can be memory mapped page by page); 1 packs densely.
    pub alignment: u64,
    /// Also move tensors held in node attributes (e.g. `Constant.value`).
    pub include_attributes: bool,
}

impl ExternalDataOptions {
    /// The defaults for a data file at `location`: threshold 1024 bytes,
    /// 4096-byte alignment, initializers only.
    pub fn new(location: impl Into<String>) -> Self {
        ExternalDataOptions {
            location: location.into(),
            size_threshold: 1024,
            alignment: 4096,
            include_attributes: false,
        }
    }
}

/// How [`save_model`] writes a model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveOptions {
    /// Move large tensors to an external data file; `None` keeps everything in
    /// the one protobuf (and fails over 2 GiB - 1).
    pub external_data: Option<ExternalDataOptions>,
}

fn set_external(tensor: &mut TensorProto, location: &str, offset: u64, length: u64) {
    let entry = |k: &str, v: String| StringStringEntryProto {
        key: Some(k.to_string()),
        value: Some(v),
    };
    tensor.raw_data = None;
    tensor.data_location = Some(DataLocation::External as i32);
    tensor.external_data = vec![
        entry("location", location.to_string()),
        entry("offset", offset.to_string()),
        entry("length", length.to_string()),
    ];
}

fn set_inline(tensor: &mut TensorProto, data: Bytes) {
    tensor.raw_data = Some(data);
    tensor.data_location = None;
    tensor.external_data.clear();
}

/// Saves `model` to `path`. Tensors that are already external are read
/// through `source` (the resolver of the model they came from) and either
/// rewritten into the new data file or put inline; without `source` their
/// references are kept as they are. The model file and the data file are each
/// written to a temporary file and renamed into place.
pub fn save_model(
    model: &ModelProto,
    path: &Path,
    options: &SaveOptions,
    source: Option<&ExternalDataResolver>,
) -> Result<(), OnnxError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut model = model.clone();
    let mut data_file = None;

    match &options.external_data {
        Some(ext) => {
            let target = ExternalDataResolver::new(dir);
            check_output_location(&target, &ext.location)?;
            let data_path = dir.join(&ext.location);
            let mut file = netport_io::AtomicFile::create(&data_path)?;
            let out = file.writer();
            let mut position = 0u64;
            let alignment = ext.alignment.max(1);
            if let Some(graph) = model.graph.as_mut() {
                for_each_tensor_mut(graph, ext.include_attributes, &mut |t| {
                    let data = match (is_external(t), source) {
                        (true, Some(src)) => src.read(t)?,
                        (true, None) => return Ok(()),
                        (false, _) => match &t.raw_data {
                            Some(d) => d.clone(),
                            None => return Ok(()),
                        },
                    };
                    if (data.len() as u64) < ext.size_threshold {
                        if is_external(t) {
                            set_inline(t, data);
                        }
                        return Ok(());
                    }
                    let padding = position.next_multiple_of(alignment) - position;
                    write_zeros(out, padding).map_err(|e| OnnxError::io(&data_path, e))?;
                    position += padding;
                    out.write_all(&data)
                        .map_err(|e| OnnxError::io(&data_path, e))?;
                    set_external(t, &ext.location, position, data.len() as u64);
                    position += data.len() as u64;
                    Ok(())
                })?;
            }
            data_file = Some(file.finish()?);
        }
        None => {
            if let (Some(src), Some(graph)) = (source, model.graph.as_mut()) {
                for_each_tensor_mut(graph, true, &mut |t| {
                    if is_external(t) {
                        let data = src.read(t)?;
                        set_inline(t, data);
                    }
                    Ok(())
                })?;
            }
        }
    }

    // Both files are complete before either replaces its destination. The
    // model is streamed: its tensor bytes are copied from where they are
    // (a map of the input, most often), never gathered in one buffer.
    let mut model_file = netport_io::AtomicFile::create(path)?;
    let writer = model_file.writer();
    crate::stream::write_model(&model, &Default::default(), &mut |b| {
        writer.write_all(b).map_err(|e| OnnxError::io(path, e))
    })?;
    let model_file = model_file.finish()?;
    if let Some(data_file) = data_file {
        data_file.commit()?;
    }
    model_file.commit()?;
    Ok(())
}

/// Refuses data-file locations that a reader would refuse.
fn check_output_location(target: &ExternalDataResolver, location: &str) -> Result<(), OnnxError> {
    let rel = Path::new(location);
    let bad = location.is_empty()
        || rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)));
    if bad {
        return Err(OnnxError::ExternalData {
            tensor: String::new(),
            problem: format!(
                "location '{location}' must be a plain relative path inside '{}'",
                target.base_dir().display()
            ),
        });
    }
    Ok(())
}

fn write_zeros(out: &mut impl Write, mut n: u64) -> std::io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..k])?;
        n -= k as u64;
    }
    Ok(())
}

/// The bytes of a tensor's elements, little-endian and packed, wherever they
/// are stored: `raw_data`, external data (through `resolver`), or a typed
/// field (`float_data`, `int32_data`, ...), which is converted.
pub fn tensor_data(
    tensor: &TensorProto,
    resolver: Option<&ExternalDataResolver>,
) -> Result<Bytes, OnnxError> {
    if is_external(tensor) {
        let resolver = resolver.ok_or_else(|| OnnxError::ExternalData {
            tensor: tensor.name().to_string(),
            problem: "is needed but no model directory is known to resolve it".into(),
        })?;
        let info = ExternalDataInfo::of(tensor)?.expect("tensor is external");
        return resolver.read_info(tensor.name(), &info);
    }
    if let Some(raw) = &tensor.raw_data {
        return Ok(raw.clone());
    }
    crate::typed::typed_data_bytes(tensor)
}

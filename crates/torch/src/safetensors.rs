//! safetensors files: a bounds-checked reader ([`SafetensorsFile`]) and a
//! streamed writer from a [`Checkpoint`] ([`checkpoint_to_safetensors`]),
//! including sharded checkpoints with their index
//! ([`index_to_safetensors`]).
//!
//! # Format
//!
//! 8 bytes: header length `N` (u64 little-endian); `N` bytes of JSON (padded
//! with spaces to a multiple of 8 when we write); then the data section. The
//! JSON maps each tensor name to `{"dtype": "F32", "shape": [..],
//! "data_offsets": [begin, end]}` (offsets relative to the data section) and
//! may hold `"__metadata__"`, an object of strings.
//!
//! The reader applies the reference implementation's rules
//! (`safetensors` 0.8 `SafeTensors::deserialize`): header at most
//! [`MAX_HEADER_BYTES`], inside the file, a JSON object; known dtypes; each
//! tensor's byte length is `numel x element size`; the tensors, sorted by
//! offset, cover the data section exactly (no hole, no overlap, no trailing
//! bytes). Every violation is an error with the offending name and numbers.
//!
//! # Writing
//!
//! The header is written by this module with `serde_json` rather than by the
//! `safetensors` crate: its `serialize_to_file` takes tensors through the
//! `View` trait, whose `data()` cannot fail, so a tensor that fails to read
//! or convert half-way could not be reported; and it needs every view up
//! front. Here the header is computed from shapes and dtypes alone, then each
//! tensor is read from the source map (borrowed when it is already
//! contiguous little-endian), converted if asked, written, and dropped: peak
//! memory is one tensor. The data is laid out by element size (largest
//! first), then name, as the `safetensors` crate does, so every tensor is
//! aligned to its element size. Output goes to a temporary file in the
//! destination directory, renamed into place at the end; nothing is left on
//! error. Tests check our output with the `safetensors` crate.
//!
//! # Shared storage
//!
//! Tensors that are the same view of one storage (tied weights: same dtype,
//! shape, strides and offset) are written once, under the first name in
//! sorted order, and each other name is recorded in `__metadata__` as
//! `"<removed name>": "<kept name>"`: exactly what Hugging Face's
//! `safetensors.torch.save_model` and `convert.py` write, so
//! `load_model` re-ties them. `__metadata__` also gets `"format": "pt"`
//! (as `convert.py`). Tensors that view *different* parts of one storage
//! (a slice, a transpose) are written as separate, contiguous copies: the
//! Hugging Face code instead drops all but one "complete" tensor and records
//! the others as aliases, which loses their values, or refuses when none
//! covers the storage.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use netport_tensor::{ByteOrder, DType, TensorView, convert};
use serde_json::{Map, Value, json};

use crate::error::TorchError;
use crate::objects::TensorKind;
use crate::read::checkpoint::Checkpoint;
use crate::write::StateDictPickle;
use crate::write::edit::{Edits, Planned};
use crate::write::edit::{refuse, refuse_tensors};

/// Largest header accepted, as the reference implementation (100 MB).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

fn bad(offset: Option<u64>, reason: impl Into<String>) -> TorchError {
    TorchError::Safetensors {
        offset,
        reason: reason.into(),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TorchError + '_ {
    move |source| TorchError::Io {
        path: path.to_owned(),
        source,
    }
}

enum Data {
    Mmap(netport_io::Mapped),
    Owned(Vec<u8>),
}

impl Data {
    fn bytes(&self) -> &[u8] {
        match self {
            Data::Mmap(m) => m,
            Data::Owned(v) => v,
        }
    }
}

/// One tensor of a safetensors file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetensorsTensor {
    /// The name (header key).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<u64>,
    /// `data_offsets` as written (relative to the data section).
    pub data_offsets: (u64, u64),
    /// Absolute byte range in the file.
    pub byte_range: Range<u64>,
}

/// An opened, validated safetensors file.
pub struct SafetensorsFile {
    data: Data,
    header_len: u64,
    tensors: Vec<SafetensorsTensor>,
    metadata: BTreeMap<String, String>,
}

impl std::fmt::Debug for SafetensorsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsFile")
            .field("bytes", &self.data.bytes().len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl SafetensorsFile {
    /// Maps and validates the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TorchError> {
        let path = path.as_ref();
        let map = netport_io::map_file(path)?;
        Self::from_data(Data::Mmap(map))
    }

    /// Validates a file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, TorchError> {
        Self::from_data(Data::Owned(bytes))
    }

    fn from_data(data: Data) -> Result<Self, TorchError> {
        let bytes = data.bytes();
        let len = bytes.len() as u64;
        let Some(head) = bytes.get(..8) else {
            return Err(bad(
                None,
                format!(
                    "the file has {len} bytes; a safetensors file starts with an 8-byte header length"
                ),
            ));
        };
        let n = u64::from_le_bytes(head.try_into().expect("8 bytes"));
        if n > MAX_HEADER_BYTES {
            return Err(bad(
                Some(0),
                format!("header length {n} is larger than the limit of {MAX_HEADER_BYTES} bytes"),
            ));
        }
        if n > len - 8 {
            return Err(bad(
                Some(0),
                format!(
                    "header length {n} reaches beyond the end of the file ({} bytes follow the length field)",
                    len - 8
                ),
            ));
        }
        let header = &bytes[8..8 + n as usize];
        if header.first() != Some(&b'{') {
            return Err(bad(Some(8), "the header does not start with '{'"));
        }
        let value: Value = serde_json::from_slice(header)
            .map_err(|e| bad(Some(8), format!("the header is not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(bad(Some(8), "the header is not a JSON object"));
        };
        let data_start = 8 + n;
        let data_len = len - data_start;
        let mut metadata = BTreeMap::new();
        let mut tensors = Vec::with_capacity(map.len());
        for (name, v) in map {
            if name == "__metadata__" {
                let Value::Object(m) = v else {
                    return Err(bad(Some(8), "__metadata__ is not an object"));
                };
                for (k, v) in m {
                    let Value::String(s) = v else {
                        return Err(bad(
                            Some(8),
                            format!("__metadata__ entry '{k}' is not a string"),
                        ));
                    };
                    metadata.insert(k, s);
                }
                continue;
            }
            let t = parse_entry(&name, &v)?;
            let (b, e) = t;
            if e > data_len {
                return Err(bad(
                    Some(data_start),
                    format!(
                        "tensor '{name}': data_offsets [{b}, {e}] reach beyond the data section ({data_len} bytes)"
                    ),
                ));
            }
            let dtype_name = v["dtype"].as_str().unwrap_or_default();
            let dtype = DType::from_safetensors(dtype_name)
                .filter(|d| d.safetensors() == Some(dtype_name))
                .ok_or_else(|| {
                    bad(
                        Some(8),
                        format!("tensor '{name}': dtype '{dtype_name}' is not supported"),
                    )
                })?;
            let shape: Vec<u64> = v["shape"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            let expected = shape
                .iter()
                .try_fold(dtype.size_in_bytes() as u64, |a, &d| a.checked_mul(d));
            if expected != Some(e - b) {
                return Err(bad(
                    Some(8),
                    format!(
                        "tensor '{name}': shape {shape:?} of {dtype_name} needs {} bytes but data_offsets [{b}, {e}] give {}",
                        expected.map_or("more than 2^64".to_owned(), |x| x.to_string()),
                        e - b
                    ),
                ));
            }
            tensors.push(SafetensorsTensor {
                name,
                dtype,
                shape,
                data_offsets: (b, e),
                byte_range: data_start + b..data_start + e,
            });
        }
        tensors.sort_by(|x, y| {
            x.data_offsets
                .cmp(&y.data_offsets)
                .then(x.name.cmp(&y.name))
        });
        let mut end = 0u64;
        for t in &tensors {
            let (b, e) = t.data_offsets;
            if b != end {
                return Err(bad(
                    Some(data_start + b.min(end)),
                    if b > end {
                        format!(
                            "tensor '{}' starts at data offset {b}, leaving a hole after offset {end}",
                            t.name
                        )
                    } else {
                        format!(
                            "tensor '{}' starts at data offset {b}, overlapping data that ends at {end}",
                            t.name
                        )
                    },
                ));
            }
            end = e;
        }
        if end != data_len {
            return Err(bad(
                Some(data_start + end),
                format!(
                    "the tensors end at data offset {end} but the data section has {data_len} bytes"
                ),
            ));
        }
        Ok(SafetensorsFile {
            data,
            header_len: n,
            tensors,
            metadata,
        })
    }

    /// The header length (bytes of JSON, with padding).
    pub fn header_len(&self) -> u64 {
        self.header_len
    }

    /// The tensors, in data order.
    pub fn tensors(&self) -> &[SafetensorsTensor] {
        &self.tensors
    }

    /// The tensor with this name.
    pub fn tensor(&self, name: &str) -> Option<&SafetensorsTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// `__metadata__` (empty when absent).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Shared-tensor aliases recorded the Hugging Face way: `__metadata__`
    /// entries `removed -> kept` whose key is not a tensor and whose value
    /// is. Sorted by the removed name.
    pub fn aliases(&self) -> Vec<(String, String)> {
        let names: HashSet<&str> = self.tensors.iter().map(|t| t.name.as_str()).collect();
        self.metadata
            .iter()
            .filter(|(k, v)| !names.contains(k.as_str()) && names.contains(v.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The tensor's bytes: contiguous, little-endian.
    pub fn tensor_bytes(&self, t: &SafetensorsTensor) -> &[u8] {
        self.data
            .bytes()
            .get(t.byte_range.start as usize..t.byte_range.end as usize)
            .unwrap_or(&[])
    }

    /// The tensor's elements converted to `dtype` (see
    /// `netport_tensor::convert` for the rules).
    pub fn tensor_converted(
        &self,
        t: &SafetensorsTensor,
        dtype: DType,
    ) -> Result<Vec<u8>, TorchError> {
        let err = |source| TorchError::Tensor {
            path: t.name.clone(),
            source,
        };
        let view =
            TensorView::contiguous(self.tensor_bytes(t), t.dtype, &t.shape, ByteOrder::Little)
                .map_err(err)?;
        let converted = convert(&view, dtype).map_err(err)?;
        // Owned result: release the mapped source pages (flat memory).
        netport_io::release(self.tensor_bytes(t));
        Ok(converted)
    }
}

fn parse_entry(name: &str, v: &Value) -> Result<(u64, u64), TorchError> {
    let e = |what: &str| bad(Some(8), format!("tensor '{name}': {what}"));
    let obj = v
        .as_object()
        .ok_or_else(|| e("the entry is not an object"))?;
    if !obj.get("dtype").is_some_and(Value::is_string) {
        return Err(e("'dtype' is missing or not a string"));
    }
    let shape = obj
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| e("'shape' is missing or not an array"))?;
    if !shape.iter().all(|d| d.as_u64().is_some()) {
        return Err(e(
            "'shape' holds something other than non-negative integers",
        ));
    }
    let offs = obj
        .get("data_offsets")
        .and_then(Value::as_array)
        .filter(|a| a.len() == 2)
        .ok_or_else(|| e("'data_offsets' is missing or not a pair"))?;
    let (Some(b), Some(end)) = (offs[0].as_u64(), offs[1].as_u64()) else {
        return Err(e("'data_offsets' are not non-negative integers"));
    };
    if b > end {
        return Err(e(&format!(
            "data_offsets [{b}, {end}] end before they begin"
        )));
    }
    Ok((b, end))
}

// ---------------------------------------------------------------------------
// Writing

/// One tensor to write.
#[derive(Debug, Clone)]
struct OutTensor {
    /// Output name.
    name: String,
    /// Output dtype.
    dtype: DType,
    shape: Vec<u64>,
    nbytes: u64,
    /// Index of the source tensor.
    source: usize,
}

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

struct Plan {
    tensors: Vec<OutTensor>,
    metadata: BTreeMap<String, String>,
    report: ConvertReport,
}

pub(crate) fn nbytes(dtype: DType, shape: &[u64], name: &str) -> Result<u64, TorchError> {
    shape
        .iter()
        .try_fold(dtype.size_in_bytes() as u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| refuse(format!("tensor '{name}': shape {shape:?} overflows")))
}

/// Paths of the non-tensor values a tensors-only output drops: all of them,
/// or those under `edits.key` when it is set.
pub(crate) fn dropped_values(ckpt: &Checkpoint, edits: &Edits) -> Vec<String> {
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

fn plan_checkpoint(ckpt: &Checkpoint, edits: &Edits) -> Result<Plan, TorchError> {
    let all = ckpt.tensors();
    let planned: Vec<Planned> = edits.plan(all.iter().map(|t| (t.path.as_str(), t.dtype)))?;
    let mut report = ConvertReport::default();
    let kept: HashSet<usize> = planned.iter().map(|p| p.index).collect();
    report.left_out = all
        .iter()
        .enumerate()
        .filter(|(i, _)| !kept.contains(i))
        .map(|(_, t)| t.path.clone())
        .collect();
    report.dropped_values = dropped_values(ckpt, edits);

    // Refusals, all at once.
    let mut refused = Vec::new();
    for p in &planned {
        let t = &all[p.index];
        let why = match &t.kind {
            TensorKind::Quantized(_) => Some(format!(
                "quantized {} (safetensors has no quantized types)",
                t.dtype
            )),
            TensorKind::Meta => Some("a meta tensor (no data)".to_owned()),
            TensorKind::Unsupported { function } => {
                Some(format!("rebuilt by {function}, which cannot be read"))
            }
            _ if p.dtype.safetensors().is_none() => {
                Some(format!("no safetensors dtype for {}", p.dtype))
            }
            _ if t.storage.is_none() => Some("no storage".to_owned()),
            _ => None,
        };
        if let Some(why) = why {
            refused.push(format!("'{}': {why}", t.path));
        }
    }
    refuse_tensors(refused, "safetensors")?;

    // Identical views of one storage -> one tensor plus aliases.
    type ViewKey<'a> = (usize, &'a [u64], &'a [u64], u64, DType, bool, bool);
    let mut groups: HashMap<ViewKey<'_>, Vec<usize>> = HashMap::new();
    let mut per_storage: HashMap<usize, HashSet<ViewKey<'_>>> = HashMap::new();
    for (i, p) in planned.iter().enumerate() {
        let t = &all[p.index];
        let s = t.storage.expect("checked above");
        let key = (
            s,
            &t.shape[..],
            &t.strides[..],
            t.storage_offset,
            t.dtype,
            t.conj,
            t.neg,
        );
        groups.entry(key).or_default().push(i);
        per_storage.entry(s).or_default().insert(key);
    }
    let mut skip = vec![false; planned.len()];
    let mut metadata = BTreeMap::new();
    metadata.insert("format".to_owned(), "pt".to_owned());
    let mut aliases = Vec::new();
    for members in groups.values().filter(|m| m.len() > 1) {
        let keep = *members
            .iter()
            .min_by(|&&a, &&b| planned[a].name.cmp(&planned[b].name))
            .expect("non-empty");
        for &m in members {
            if m != keep {
                skip[m] = true;
                aliases.push((planned[m].name.clone(), planned[keep].name.clone()));
            }
        }
    }
    aliases.sort();
    for (removed, kept) in &aliases {
        // As save_model: never override an existing entry.
        metadata
            .entry(removed.clone())
            .or_insert_with(|| kept.clone());
    }
    report.aliases = aliases;

    let mut out = Vec::new();
    for (i, p) in planned.iter().enumerate() {
        if skip[i] {
            continue;
        }
        let t = &all[p.index];
        if per_storage[&t.storage.expect("checked")].len() > 1 {
            report.copies.push(p.name.clone());
        }
        let n = nbytes(p.dtype, &t.shape, &t.path)?;
        if p.dtype != p.source_dtype {
            report.dtype_changed += 1;
            report.dtype_bytes_before += nbytes(p.source_dtype, &t.shape, &t.path)?;
            report.dtype_bytes_after += n;
        }
        out.push(OutTensor {
            name: p.name.clone(),
            dtype: p.dtype,
            shape: t.shape.clone(),
            nbytes: n,
            source: p.index,
        });
    }
    Ok(Plan {
        tensors: out,
        metadata,
        report,
    })
}

/// Lays the tensors out (largest element first, then name), builds the
/// padded header. Returns the header bytes (with the length prefix) and the
/// tensors in data order.
fn layout(
    mut tensors: Vec<OutTensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<(Vec<u8>, Vec<OutTensor>), TorchError> {
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
fn write_temp<'a>(
    out: &Path,
    header: &[u8],
    tensors: &[OutTensor],
    mut fetch: impl FnMut(&OutTensor) -> Result<Cow<'a, [u8]>, TorchError>,
) -> Result<(netport_io::Finished, u64), TorchError> {
    let mut file = netport_io::AtomicFile::create(out)?;
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
            )));
        }
        for c in netport_io::chunks(&bytes) {
            w.write_all(c).map_err(io(out))?;
        }
        total += t.nbytes;
    }
    Ok((file.finish()?, total))
}

fn out_dir(out: &Path) -> PathBuf {
    netport_io::parent_dir(out).to_owned()
}

fn fetch_from<'c>(
    ckpt: &'c Checkpoint,
) -> impl FnMut(&OutTensor) -> Result<Cow<'c, [u8]>, TorchError> {
    move |o| {
        let t = &ckpt.tensors()[o.source];
        if o.dtype == t.dtype {
            ckpt.tensor_bytes(t)
        } else {
            ckpt.tensor_converted(t, o.dtype).map(Cow::Owned)
        }
    }
}

fn convert_to_temp(
    ckpt: &Checkpoint,
    out: &Path,
    edits: &Edits,
) -> Result<(netport_io::Finished, ConvertReport, Vec<String>), TorchError> {
    let plan = plan_checkpoint(ckpt, edits)?;
    let (header, tensors) = layout(plan.tensors, &plan.metadata)?;
    let names = tensors.iter().map(|t| t.name.clone()).collect();
    let mut report = plan.report;
    let (tmp, total) = write_temp(out, &header, &tensors, fetch_from(ckpt))?;
    report.tensors = tensors.len();
    report.data_bytes = total - header.len() as u64;
    report.file_bytes = total;
    Ok((tmp, report, names))
}

/// Writes the checkpoint's tensors, edited, to `out` as safetensors (see the
/// module docs). `out` is replaced atomically; on error nothing is left.
pub fn checkpoint_to_safetensors(
    ckpt: &Checkpoint,
    out: &Path,
    edits: &Edits,
) -> Result<ConvertReport, TorchError> {
    let (tmp, report, _) = convert_to_temp(ckpt, out, edits)?;
    tmp.commit()?;
    Ok(report)
}

// ---------------------------------------------------------------------------
// safetensors -> torch.save zip checkpoint

/// Writes the safetensors file's tensors, edited, as a `torch.save` zip
/// checkpoint holding one state dict (an `OrderedDict`, names in sorted
/// order), loadable with `torch.load(weights_only=True)`. Aliases recorded
/// in `__metadata__` (`removed -> kept`) become tensors sharing the kept
/// tensor's storage again. Storage bytes are copied from the source map;
/// tensors converted by `edits.dtype` are held in memory until written.
/// Atomic (see [`crate::write::write_atomic`]); refuses to overwrite the input.
pub fn safetensors_to_checkpoint(
    sf: &SafetensorsFile,
    input: Option<&Path>,
    out: &Path,
    edits: &Edits,
) -> Result<ConvertReport, TorchError> {
    safetensors_to_checkpoint_as(sf, input, out, edits, false)
}

/// [`safetensors_to_checkpoint`], writing the legacy (pre-1.6) format when
/// `legacy` (see `crate::write::rewrite::safetensors_to_legacy_checkpoint`).
pub(crate) fn safetensors_to_checkpoint_as(
    sf: &SafetensorsFile,
    input: Option<&Path>,
    out: &Path,
    edits: &Edits,
    legacy: bool,
) -> Result<ConvertReport, TorchError> {
    use crate::write::{
        LegacyCheckpoint, StorageBytes, WriteOptions, ZipCheckpoint, convert_pids,
        write_legacy_file, write_zip_file,
    };
    // Names: tensors, then aliases (as the tensor they alias).
    let mut items: Vec<(String, usize)> = sf
        .tensors()
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let aliases = sf.aliases();
    for (alias, kept) in &aliases {
        if let Some(i) = sf.tensors().iter().position(|t| &t.name == kept) {
            items.push((alias.clone(), i));
        }
    }
    items.sort();
    let planned = edits.plan(
        items
            .iter()
            .map(|(n, i)| (n.as_str(), sf.tensors()[*i].dtype)),
    )?;
    let mut report = ConvertReport::default();
    let kept: HashSet<usize> = planned.iter().map(|p| p.index).collect();
    report.left_out = items
        .iter()
        .enumerate()
        .filter(|(i, _)| !kept.contains(i))
        .map(|(_, (n, _))| n.clone())
        .collect();
    // One storage per (source tensor, output dtype).
    let mut keys: HashMap<(usize, DType), usize> = HashMap::new();
    let mut converted: Vec<Vec<u8>> = Vec::new();
    let mut storage_src: Vec<(usize, DType)> = Vec::new();
    let mut pickle = StateDictPickle(Vec::new());
    pickle.0.extend_from_slice(b"\x80\x02");
    pickle.empty_ordered_dict();
    pickle.0.push(b'(');
    let mut first_name: HashMap<usize, String> = HashMap::new();
    for p in &planned {
        let src = items[p.index].1;
        let t = &sf.tensors()[src];
        let next = keys.len();
        let k = *keys.entry((src, p.dtype)).or_insert(next);
        if k == next {
            storage_src.push((src, p.dtype));
            report.tensors += 1;
            let n = nbytes(p.dtype, &t.shape, &t.name)?;
            report.data_bytes += n;
            if p.dtype != t.dtype {
                report.dtype_changed += 1;
                report.dtype_bytes_before += t.data_offsets.1 - t.data_offsets.0;
                report.dtype_bytes_after += n;
            }
            first_name.insert(k, p.name.clone());
        } else {
            report
                .aliases
                .push((p.name.clone(), first_name[&k].clone()));
        }
        let n = nbytes(p.dtype, &t.shape, &t.name)?;
        pickle.tensor(&p.name, p.dtype, &t.shape, &k.to_string(), n);
    }
    pickle.0.extend_from_slice(b"u.");
    for &(src, dtype) in &storage_src {
        let t = &sf.tensors()[src];
        if dtype != t.dtype {
            converted.push(sf.tensor_converted(t, dtype)?);
        }
    }
    let mut conv = converted.iter();
    let storages: Vec<StorageBytes<'_>> = storage_src
        .iter()
        .enumerate()
        .map(|(k, &(src, dtype))| {
            let t = &sf.tensors()[src];
            let bytes: &[u8] = if dtype != t.dtype {
                conv.next().expect("converted in order")
            } else {
                sf.tensor_bytes(t)
            };
            StorageBytes {
                key: k.to_string(),
                numel: bytes.len() as u64 / dtype.size_in_bytes() as u64,
                bytes,
            }
        })
        .collect();
    let options = WriteOptions {
        input: input.map(Path::to_owned),
        in_place: false,
    };
    report.file_bytes = if legacy {
        let ckpt = LegacyCheckpoint {
            object_pickle: Cow::Owned(convert_pids(&pickle.0, "data.pkl", true)?),
            storages,
        };
        write_legacy_file(out, &ckpt, &options)?
    } else {
        let ckpt = ZipCheckpoint {
            data_pkl: Cow::Owned(pickle.0),
            storages,
            byteorder: "little".into(),
            serialization_name_hash: None,
        };
        write_zip_file(out, &ckpt, &options)?
    };
    Ok(report)
}

// ---------------------------------------------------------------------------
// Sharded checkpoints

/// A parsed `*.index.json` (`pytorch_model.bin.index.json`,
/// `model.safetensors.index.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct ShardIndex {
    /// `metadata` as written (`total_size`, ...); empty when absent.
    pub metadata: Map<String, Value>,
    /// Tensor name -> shard file name, in file order of the JSON (sorted).
    pub weight_map: BTreeMap<String, String>,
}

impl ShardIndex {
    /// Reads and checks an index: a JSON object with a `weight_map` of
    /// strings; shard names are plain file names (no directories, no `..`).
    pub fn read(path: &Path) -> Result<Self, TorchError> {
        let bytes = std::fs::read(path).map_err(io(path))?;
        Self::parse(&bytes)
    }

    /// Parses an index from bytes (see [`ShardIndex::read`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, TorchError> {
        let e = |r: String| bad(None, format!("index: {r}"));
        let v: Value =
            serde_json::from_slice(bytes).map_err(|x| e(format!("not valid JSON: {x}")))?;
        let Value::Object(mut obj) = v else {
            return Err(e("not a JSON object".into()));
        };
        let metadata = match obj.remove("metadata") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(e("'metadata' is not an object".into())),
        };
        let Some(Value::Object(wm)) = obj.remove("weight_map") else {
            return Err(e("'weight_map' is missing or not an object".into()));
        };
        let mut weight_map = BTreeMap::new();
        for (k, v) in wm {
            let Value::String(f) = v else {
                return Err(e(format!("weight_map['{k}'] is not a string")));
            };
            if f.is_empty() || f.contains(['/', '\\']) || f == "." || f == ".." {
                return Err(e(format!(
                    "weight_map['{k}'] = '{f}' is not a plain file name next to the index"
                )));
            }
            weight_map.insert(k, f);
        }
        Ok(ShardIndex {
            metadata,
            weight_map,
        })
    }

    /// The shard file names, sorted, each once.
    pub fn shards(&self) -> Vec<String> {
        let mut s: Vec<String> = self.weight_map.values().cloned().collect();
        s.sort();
        s.dedup();
        s
    }
}

/// What a sharded conversion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedReport {
    /// The index written.
    pub index: PathBuf,
    /// `(input shard, output shard, its report)`, in shard order.
    pub shards: Vec<(PathBuf, PathBuf, ConvertReport)>,
    /// `metadata.total_size` written: the data bytes of all shards.
    pub total_size: u64,
}

/// Converts a sharded checkpoint (`pytorch_model.bin.index.json` and its
/// shards) to `model-0000N-of-0000M.safetensors` shards (one per input
/// shard, in sorted order of the input names) and
/// `model.safetensors.index.json`. `out` is the index path to write
/// (ending in `.json`; shards go next to it) or a directory (created if
/// missing). Every weight_map entry must be in its shard and every shard
/// tensor in the weight_map. Shards are written to temporary files and
/// renamed into place only when all succeeded; the index is renamed last.
pub fn index_to_safetensors(
    index_path: &Path,
    out: &Path,
    edits: &Edits,
) -> Result<ShardedReport, TorchError> {
    let index = ShardIndex::read(index_path)?;
    let in_dir = out_dir(index_path);
    let (out_dir, out_index) = index_outputs(out, "model.safetensors.index.json")?;
    let shards = index.shards();
    let m = shards.len();
    let mut temps = Vec::new();
    let mut weight_map = BTreeMap::new();
    let mut total_size = 0u64;
    for (i, shard) in shards.iter().enumerate() {
        let in_path = in_dir.join(shard);
        let ckpt = Checkpoint::open(&in_path)?;
        let present: HashSet<&str> = ckpt.tensors().iter().map(|t| t.path.as_str()).collect();
        index.check_shard(
            shard,
            &present,
            ckpt.tensors().iter().map(|t| t.path.as_str()),
        )?;
        let name = format!("model-{:05}-of-{m:05}.safetensors", i + 1);
        let out_path = shard_output(&out_dir, &name, &in_path)?;
        let (tmp, report, names) = convert_to_temp(&ckpt, &out_path, edits)?;
        map_to_shard(&mut weight_map, names, &name)?;
        total_size += report.data_bytes;
        temps.push((tmp, in_path, out_path, report));
    }
    let idx_tmp = index.write_temp(&weight_map, total_size, &out_index)?;
    let mut shards_out = Vec::new();
    for (tmp, in_path, out_path, report) in temps {
        tmp.commit()?;
        shards_out.push((in_path, out_path, report));
    }
    idx_tmp.commit()?;
    Ok(ShardedReport {
        index: out_index,
        shards: shards_out,
        total_size,
    })
}

/// Converts a sharded safetensors checkpoint (`model.safetensors.index.json`
/// and its shards) back to `pytorch_model-0000N-of-0000M.bin` zip
/// checkpoints (one per input shard, in sorted order) and
/// `pytorch_model.bin.index.json`. `out` as in [`index_to_safetensors`].
/// Each shard is written atomically; if one fails, the shards already
/// written by this call are removed and no index is written.
pub fn index_to_checkpoints(
    index_path: &Path,
    out: &Path,
    edits: &Edits,
) -> Result<ShardedReport, TorchError> {
    let index = ShardIndex::read(index_path)?;
    let in_dir = out_dir(index_path);
    let (out_dir, out_index) = index_outputs(out, "pytorch_model.bin.index.json")?;
    let shards = index.shards();
    let m = shards.len();
    let mut written: Vec<(PathBuf, PathBuf, ConvertReport)> = Vec::new();
    let mut weight_map = BTreeMap::new();
    let mut total_size = 0u64;
    let result = (|| {
        for (i, shard) in shards.iter().enumerate() {
            let in_path = in_dir.join(shard);
            let sf = SafetensorsFile::open(&in_path)?;
            let mut present: HashSet<String> =
                sf.tensors().iter().map(|t| t.name.clone()).collect();
            present.extend(sf.aliases().into_iter().map(|(a, _)| a));
            let present_ref: HashSet<&str> = present.iter().map(String::as_str).collect();
            index.check_shard(
                shard,
                &present_ref,
                sf.tensors().iter().map(|t| t.name.as_str()),
            )?;
            let name = format!("pytorch_model-{:05}-of-{m:05}.bin", i + 1);
            let out_path = shard_output(&out_dir, &name, &in_path)?;
            let report = safetensors_to_checkpoint(&sf, Some(&in_path), &out_path, edits)?;
            let planned = edits.plan(present.iter().map(|n| (n.as_str(), DType::Float32)))?;
            map_to_shard(&mut weight_map, planned.into_iter().map(|p| p.name), &name)?;
            total_size += report.data_bytes;
            written.push((in_path, out_path, report));
        }
        let tmp = index.write_temp(&weight_map, total_size, &out_index)?;
        tmp.commit()?;
        Ok(())
    })();
    if let Err(e) = result {
        for (_, o, _) in &written {
            let _ = std::fs::remove_file(o);
        }
        return Err(e);
    }
    Ok(ShardedReport {
        index: out_index,
        shards: written,
        total_size,
    })
}

pub use netport_io::same_file;

/// The output folder and index path of a sharded conversion: `out` is the
/// index to write (`*.json`, shards next to it) or a folder (created if
/// missing) that gets `default_index`.
fn index_outputs(out: &Path, default_index: &str) -> Result<(PathBuf, PathBuf), TorchError> {
    if out.extension().is_some_and(|e| e == "json") {
        Ok((out_dir(out), out.to_owned()))
    } else {
        std::fs::create_dir_all(out).map_err(io(out))?;
        Ok((out.to_owned(), out.join(default_index)))
    }
}

/// The path of an output shard, refused when it is one of the inputs.
fn shard_output(out_dir: &Path, name: &str, input: &Path) -> Result<PathBuf, TorchError> {
    let path = out_dir.join(name);
    if same_file(&path, input) {
        return Err(refuse(format!("output '{}' is an input", path.display())));
    }
    Ok(path)
}

/// Records that `names` go to shard `shard`; a name in two shards is refused.
fn map_to_shard(
    weight_map: &mut BTreeMap<String, String>,
    names: impl IntoIterator<Item = String>,
    shard: &str,
) -> Result<(), TorchError> {
    for n in names {
        if let Some(prev) = weight_map.insert(n.clone(), shard.to_owned()) {
            return Err(refuse(format!(
                "tensor '{n}' would be in both '{prev}' and '{shard}'"
            )));
        }
    }
    Ok(())
}

impl ShardIndex {
    /// Checks that the shard file `shard` holds exactly what the index maps
    /// to it: every mapped name is `present`, and every tensor it `holds` is
    /// mapped to it.
    fn check_shard<'a>(
        &self,
        shard: &str,
        present: &HashSet<&str>,
        holds: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), TorchError> {
        if let Some((k, _)) = self
            .weight_map
            .iter()
            .find(|(k, f)| *f == shard && !present.contains(k.as_str()))
        {
            return Err(refuse(format!(
                "index maps '{k}' to '{shard}', but that shard has no such tensor"
            )));
        }
        if let Some(k) = holds
            .into_iter()
            .find(|k| self.weight_map.get(*k).map(String::as_str) != Some(shard))
        {
            return Err(refuse(format!(
                "shard '{shard}' holds '{k}', which the index does not map to it"
            )));
        }
        Ok(())
    }

    /// Writes the output index (this index's metadata with `total_size`, and
    /// `weight_map`) to a finished atomic output, for renaming to
    /// `out_index` once every shard is in place.
    fn write_temp(
        &self,
        weight_map: &BTreeMap<String, String>,
        total_size: u64,
        out_index: &Path,
    ) -> Result<netport_io::Finished, TorchError> {
        let mut meta = self.metadata.clone();
        meta.insert("total_size".into(), json!(total_size));
        let doc = json!({ "metadata": meta, "weight_map": weight_map });
        let mut text = serde_json::to_vec_pretty(&doc).expect("JSON");
        text.push(b'\n');
        let mut tmp = netport_io::AtomicFile::create(out_index)?;
        tmp.write_all(&text).map_err(io(out_index))?;
        Ok(tmp.finish()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn reads_a_small_file() {
        let f = SafetensorsFile::from_bytes(file(
            r#"{"__metadata__":{"format":"pt","b":"a"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            &[0, 0, 128, 63, 0, 0, 0, 64],
        ))
        .unwrap();
        assert_eq!(f.tensors().len(), 1);
        assert_eq!(f.aliases(), vec![("b".to_owned(), "a".to_owned())]);
        let t = &f.tensors()[0];
        assert_eq!(f.tensor_converted(t, DType::Float64).unwrap().len(), 16);
    }
}

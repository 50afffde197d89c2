//! [`Checkpoint`]: open a file (memory-mapped), detect its format, run its
//! pickles, and locate every storage without reading tensor bytes.

use compact_str::CompactString;
use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;

use netport_pickle::{Limits, Machine, Pickle, Value};
use netport_tensor::{ByteOrder, DType, TensorView, convert};

use crate::error::TorchError;
use crate::objects::{
    Collected, PidStyle, Storage, Taken, Tensor, TensorKind, TensorRef, TensorTaker, ValueEntry,
    Walker, values_per_byte,
};
use crate::read::detect::{Detected, Format, LEGACY_MAGIC_LE, classify_zip, detect};
use crate::read::pt2;
use crate::read::zip::{ZipArchive, ZipEntry};
use crate::storages::StorageRef;

/// Limits and presentation settings for [`Checkpoint::open_with`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Limits for every pickle (see `netport_pickle::Limits`).
    pub limits: Limits,
    /// Longest [`ValueEntry::repr`], in bytes. Default 200.
    pub max_repr: usize,
    /// Largest JSON record (`.pt2` model and configs) read. Default 256 MiB.
    pub max_json_bytes: u64,
    /// Largest compressed pickle inflated in memory. Default 1 GiB.
    pub max_inflated_bytes: u64,
    /// Read plain tensors (`_rebuild_tensor_v2` without metadata) as the
    /// object pickle runs, freeing their argument values at once (see
    /// `netport_pickle::Machine::load_with`): a checkpoint of many small
    /// tensors then needs a fraction of the memory. The results are the
    /// same either way; `false` keeps every value until the walk. Default
    /// true.
    pub early_tensors: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            max_repr: 200,
            max_json_bytes: 256 << 20,
            max_inflated_bytes: 1 << 30,
            early_tensors: true,
        }
    }
}

/// A zip record (name without the archive prefix) and where its data is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Name without the archive prefix (`data.pkl`, `data/0`); up to 24
    /// bytes held inline.
    pub name: CompactString,
    /// Absolute byte range of the data in the file (compressed if compressed).
    pub byte_range: Range<u64>,
    /// Size after decompression.
    pub size: u64,
    /// Compression method (0 stored, 8 deflate).
    pub method: u16,
    /// CRC-32 from the central directory (torch may write 0).
    pub crc32: u32,
}

/// A pickle in the file: a zip record, a legacy stacked pickle, or a pickle
/// inside a nested zip (`data/sample_inputs/model.pt/archive/data.pkl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleRecord {
    /// Record name without the archive prefix, or `legacy pickle #N` (1-5).
    pub name: String,
    /// Absolute byte range in the file.
    pub byte_range: Range<u64>,
    /// True if the bytes in the file are DEFLATE-compressed (use
    /// [`Checkpoint::pickle_bytes`]).
    pub compressed: bool,
    /// The PROTO version, when the pickle starts with one (read from the
    /// first two bytes; `None` for compressed records).
    pub protocol: Option<u8>,
}

/// Facts about the file other than tensors and values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Info {
    /// The archive name (prefix directory) of zip formats.
    pub archive_name: Option<String>,
    /// Byte order of the storages (`byteorder` record; little when absent and
    /// always little for legacy files).
    pub byteorder: Option<ByteOrder>,
    /// The `byteorder` record as written, if present.
    pub byteorder_record: Option<String>,
    /// The file format version (`.data/version` or `version`), trimmed.
    pub version: Option<String>,
    /// Which record gave [`version`](Info::version).
    pub version_record: Option<String>,
    /// `.format_version`.
    pub format_version: Option<String>,
    /// `.storage_alignment`.
    pub storage_alignment: Option<String>,
    /// `.data/serialization_id`.
    pub serialization_id: Option<String>,
    /// Every zip record in central-directory order.
    pub records: Vec<Record>,
    /// Whether the zip has ZIP64 end records (torch always writes them).
    pub zip64: bool,
    /// `torch_version` from a `.pt2` model JSON.
    pub torch_version: Option<String>,
    /// `schema_version` of a `.pt2` model JSON (`major.minor`).
    pub pt2_schema_version: Option<String>,
    /// The protocol version pickle of a legacy file (1001).
    pub legacy_protocol_version: Option<i64>,
    /// The `sys_info` pickle of a legacy file, as text.
    pub legacy_sys_info: Option<String>,
    /// `(path, class)` of TorchScript module objects (`__torch__.*`).
    pub module_classes: Vec<(String, String)>,
}

/// Whether [`Checkpoint`] construction runs the object pickles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Run them: tensors, storages, values, tree.
    Objects,
    /// Records and pickles only (zip formats).
    PicklesOnly,
}

/// An opened checkpoint. See the crate docs.
pub struct Checkpoint {
    data: netport_io::Input,
    format: Format,
    info: Info,
    collected: Collected,
    pickles: Vec<PickleRecord>,
    /// [`Checkpoint::tensors`], unpacked on first request.
    tensors: std::sync::OnceLock<Vec<Tensor>>,
    /// [`Checkpoint::tree`], unpacked on first request.
    tree: std::sync::OnceLock<Vec<crate::TreeItem>>,
    /// [`Checkpoint::storages`], unpacked on first request.
    storages: std::sync::OnceLock<Vec<Storage>>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("format", &self.format)
            .field("bytes", &&self.data[..].len())
            .field("tensors", &self.collected.tensor_count())
            .finish()
    }
}

fn slice<'d>(data: &'d [u8], r: &Range<u64>) -> &'d [u8] {
    // Ranges are checked against the file length when they are made.
    data.get(r.start as usize..r.end as usize).unwrap_or(&[])
}

impl Checkpoint {
    /// Map the file and read it with default [`Options`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TorchError> {
        Self::open_with(path, &Options::default())
    }

    /// Map the file and read it.
    pub fn open_with(path: impl AsRef<Path>, options: &Options) -> Result<Self, TorchError> {
        let map = netport_io::map_file(path.as_ref())?;
        if map.is_empty() {
            return Err(TorchError::NotACheckpoint {
                detected: Detected::Empty,
            });
        }
        Self::from_data(netport_io::Input::Mapped(map), options, Walk::Objects)
    }

    /// Map the file and locate its records and pickles without running the
    /// object pickles of a zip checkpoint: [`tensors`](Self::tensors),
    /// [`storages`](Self::storages), [`values`](Self::values) and
    /// [`tree`](Self::tree) are empty, and [`Info::module_classes`] too.
    /// Format, [`info`](Self::info) (records, version, byte order) and
    /// [`pickles`](Self::pickles) are as [`open`](Self::open) gives them.
    ///
    /// For tools that rewrite pickle bytes and copy every other record
    /// (`netport map-location`): memory holds the zip directory, not an
    /// object per tensor. Legacy files are read whole (their stacked pickles
    /// must be run to find where each ends).
    pub fn open_pickles(path: impl AsRef<Path>) -> Result<Self, TorchError> {
        let map = netport_io::map_file(path.as_ref())?;
        if map.is_empty() {
            return Err(TorchError::NotACheckpoint {
                detected: Detected::Empty,
            });
        }
        Self::from_data(
            netport_io::Input::Mapped(map),
            &Options::default(),
            Walk::PicklesOnly,
        )
    }

    /// Read a checkpoint held in memory.
    pub fn from_bytes(bytes: Vec<u8>, options: &Options) -> Result<Self, TorchError> {
        Self::from_data(netport_io::Input::Owned(bytes), options, Walk::Objects)
    }

    fn from_data(
        data: netport_io::Input,
        options: &Options,
        walk: Walk,
    ) -> Result<Self, TorchError> {
        let bytes = &data[..];
        let (format, info, collected, pickles) = if bytes.starts_with(b"PK\x03\x04") {
            // The object pickle of a torch zip is its first record: it runs
            // while another thread reads the central directory, and is used
            // if the directory confirms where it is (`EarlyPickle`).
            let (zip, early) = std::thread::scope(|scope| {
                // No second thread (the system refused one): the directory
                // first, then the pickle from its record.
                let Ok(zip) =
                    std::thread::Builder::new().spawn_scoped(scope, || ZipArchive::parse(bytes))
                else {
                    return (ZipArchive::parse(bytes), None);
                };
                let early = match walk {
                    Walk::Objects => EarlyPickle::run(bytes, options),
                    Walk::PicklesOnly => None,
                };
                let zip = zip
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (zip, early)
            });
            let zip = zip?;
            let format = match classify_zip(&zip, bytes) {
                Detected::Torch(f) => f,
                detected => {
                    // A torch-style prefix problem is more useful than
                    // "other zip": report it if there is one.
                    zip.check_prefix()?;
                    return Err(TorchError::NotACheckpoint { detected });
                }
            };
            let (info, collected, pickles) = read_zip(bytes, zip, format, options, walk, early)?;
            (format, info, collected, pickles)
        } else {
            match detect(bytes) {
                Detected::Torch(Format::Legacy) => {
                    let (info, collected, pickles) = read_legacy(bytes, options)?;
                    (Format::Legacy, info, collected, pickles)
                }
                Detected::Torch(Format::LegacyTar) => {
                    return Err(TorchError::Unsupported {
                        what: "the legacy tar checkpoint format (torch <= 0.1)".into(),
                        reason: "no real sample exists to test against; load it with torch 1.x and re-save it".into(),
                    });
                }
                detected => return Err(TorchError::NotACheckpoint { detected }),
            }
        };
        Ok(Checkpoint {
            data,
            format,
            info,
            collected,
            pickles,
            tensors: std::sync::OnceLock::new(),
            tree: std::sync::OnceLock::new(),
            storages: std::sync::OnceLock::new(),
        })
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Facts about the file.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// Every tensor, in walk order (pickle order). Per-channel quantization
    /// parameters are inside their tensor's [`TensorKind::Quantized`].
    ///
    /// The list is unpacked from the checkpoint's compact records on the
    /// first call (a few hundred bytes a tensor); [`tensor_refs`](Self::tensor_refs)
    /// reads the same tensors in place.
    pub fn tensors(&self) -> &[Tensor] {
        self.tensors.get_or_init(|| self.collected.tensors())
    }

    /// Every tensor, in walk order, read where the checkpoint keeps it:
    /// what [`tensors`](Self::tensors) lists, without unpacking it.
    pub fn tensor_refs(&self) -> impl ExactSizeIterator<Item = TensorRef<'_>> + '_ {
        // Every index below the count has a record (storages are never
        // removed and spans were checked when a record was made).
        (0..self.collected.tensor_count()).map(|i| {
            self.collected
                .tensor_ref(i)
                .unwrap_or_else(|| unreachable!("tensor record {i} does not read"))
        })
    }

    /// The tensor at `index` in walk order (the index of
    /// [`TreeNode::Tensor`](crate::TreeNode::Tensor)), read in place.
    pub fn tensor_ref(&self, index: usize) -> Option<TensorRef<'_>> {
        self.collected.tensor_ref(index)
    }

    /// The tensor at this path (first match).
    pub fn tensor(&self, path: &str) -> Option<&Tensor> {
        self.tensors().iter().find(|t| t.path == path)
    }

    /// Every storage, located in the file.
    ///
    /// The list is unpacked from the checkpoint's compact records on the
    /// first call; [`storage_refs`](Self::storage_refs) reads the same
    /// storages in place.
    pub fn storages(&self) -> &[Storage] {
        self.storages.get_or_init(|| self.collected.storages())
    }

    /// Every storage, read where the checkpoint keeps it: what
    /// [`storages`](Self::storages) lists, without unpacking it.
    pub fn storage_refs(&self) -> impl ExactSizeIterator<Item = StorageRef<'_>> + '_ {
        (0..self.collected.storages.len()).map(|i| {
            self.collected
                .storage_ref(i)
                .unwrap_or_else(|| unreachable!("storage record {i} does not read"))
        })
    }

    /// The storage at `index` (a [`Tensor::storage`]), read in place.
    pub fn storage_ref(&self, index: usize) -> Option<StorageRef<'_>> {
        self.collected.storage_ref(index)
    }

    /// Every non-tensor value with its path.
    pub fn values(&self) -> &[ValueEntry] {
        &self.collected.values
    }

    /// The nesting of tensors and values, in walk order, for a tree view.
    pub fn tree(&self) -> &[crate::TreeItem] {
        self.tree.get_or_init(|| self.collected.tree())
    }

    /// Every pickle in the file, in file order.
    pub fn pickles(&self) -> &[PickleRecord] {
        &self.pickles
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..]
    }

    /// The bytes of a pickle (inflated when the record is compressed).
    pub fn pickle_bytes(&self, p: &PickleRecord) -> Result<Cow<'_, [u8]>, TorchError> {
        let raw = slice(self.bytes(), &p.byte_range);
        if !p.compressed {
            return Ok(Cow::Borrowed(raw));
        }
        inflate(
            raw,
            &p.name,
            p.byte_range.start,
            Options::default().max_inflated_bytes,
        )
        .map(Cow::Owned)
    }

    fn view<'s>(&'s self, t: &Tensor) -> Result<TensorView<'s>, TorchError> {
        let not = |reason: String| TorchError::NotMaterialisable {
            path: t.path.clone(),
            reason,
        };
        let Some(index) = t.storage else {
            return Err(not(match &t.kind {
                TensorKind::Meta => "a meta tensor has no data".into(),
                TensorKind::Unsupported { function } => {
                    format!("rebuilt by {function}, which this reader cannot materialise")
                }
                _ => "the tensor has no storage".into(),
            }));
        };
        if let TensorKind::Unsupported { function } = &t.kind {
            return Err(not(format!(
                "rebuilt by {function}, which this reader cannot materialise"
            )));
        }
        let s = self
            .collected
            .storage_ref(index)
            .ok_or_else(|| not("unknown storage".into()))?;
        if s.compressed() {
            return Err(not(format!(
                "its storage record '{}' is compressed; tensor data must be stored uncompressed to be read in place",
                s.record().unwrap_or(s.key())
            )));
        }
        let order = self.info.byteorder.unwrap_or(ByteOrder::Little);
        TensorView::new(
            slice(self.bytes(), &s.byte_range()),
            t.dtype,
            &t.shape,
            &t.strides,
            t.storage_offset,
            order,
        )
        .map_err(|source| TorchError::Tensor {
            path: t.path.clone(),
            source,
        })
    }

    /// The tensor's logical elements, contiguous (row-major), little-endian,
    /// in its dtype: what `t.resolve_conj().resolve_neg().contiguous()` holds
    /// in torch (quantized tensors: the integer representation). Borrowed
    /// from the map when the stored bytes already are exactly that.
    pub fn tensor_bytes(&self, t: &Tensor) -> Result<Cow<'_, [u8]>, TorchError> {
        if values_per_byte(t.dtype) > 1 {
            return self.packed_bytes(t);
        }
        let view = self.view(t)?;
        let err = |source| TorchError::Tensor {
            path: t.path.clone(),
            source,
        };
        if !t.conj && !t.neg && view.is_contiguous() && view.byte_order() == ByteOrder::Little {
            let start = usize::try_from(t.storage_offset)
                .ok()
                .and_then(|o| o.checked_mul(t.dtype.size_in_bytes()));
            if let Some(bytes) =
                start.and_then(|s| view.data().get(s..s.checked_add(view.nbytes())?))
            {
                return Ok(Cow::Borrowed(bytes));
            }
        }
        let mut out = view.to_contiguous_in(ByteOrder::Little).map_err(err)?;
        resolve_bits(&mut out, t.dtype, t.conj, t.neg).map_err(|reason| {
            TorchError::NotMaterialisable {
                path: t.path.clone(),
                reason,
            }
        })?;
        Ok(Cow::Owned(out))
    }

    /// `quint4x2`/`quint2x4`: the packed bytes of a contiguous tensor (what
    /// torch's `int_repr()` gives).
    fn packed_bytes(&self, t: &Tensor) -> Result<Cow<'_, [u8]>, TorchError> {
        let k = values_per_byte(t.dtype);
        let not = |reason: String| TorchError::NotMaterialisable {
            path: t.path.clone(),
            reason,
        };
        let s = t
            .storage
            .and_then(|i| self.collected.storage_ref(i))
            .ok_or_else(|| not("the tensor has no storage".into()))?;
        let range = s.byte_range();
        let contiguous = netport_tensor::contiguous_strides(&t.shape).is_ok_and(|c| {
            c.iter()
                .zip(&t.strides)
                .zip(&t.shape)
                .all(|((a, b), &d)| d <= 1 || a == b)
        });
        let numel = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        match numel {
            Some(n) if contiguous && t.storage_offset.is_multiple_of(k) && !s.compressed() => {
                let start = range.start + t.storage_offset / k;
                let end = start + n.div_ceil(k);
                if end > range.end {
                    return Err(not(format!(
                        "needs bytes up to {end} but its storage ends at {}",
                        range.end
                    )));
                }
                Ok(Cow::Borrowed(slice(self.bytes(), &(start..end))))
            }
            _ => Err(not(format!(
                "a {} tensor packs {k} values per byte; only contiguous, byte-aligned ones are read",
                t.dtype
            ))),
        }
    }

    /// The tensor's logical elements converted to `dtype` (contiguous,
    /// little-endian), with `netport_tensor::convert`'s rounding rules.
    pub fn tensor_converted(&self, t: &Tensor, dtype: DType) -> Result<Vec<u8>, TorchError> {
        let err = |source| TorchError::Tensor {
            path: t.path.clone(),
            source,
        };
        let converted = if t.conj || t.neg {
            let bytes = self.tensor_bytes(t)?;
            let view = TensorView::contiguous(&bytes, t.dtype, &t.shape, ByteOrder::Little)
                .map_err(err)?;
            convert(&view, dtype).map_err(err)?
        } else {
            convert(&self.view(t)?, dtype).map_err(err)?
        };
        // The result is owned: the mapped source pages are not needed any
        // more (memory stays flat over a whole-file conversion).
        if let Some(r) = &t.byte_range {
            netport_io::release(slice(&self.data[..], r));
        }
        Ok(converted)
    }
}

/// Apply the conjugate and negative bits to contiguous little-endian
/// elements: flip the sign of floats (the imaginary part only for conj), and
/// negate integers (two's complement, wrapping as torch does).
fn resolve_bits(buf: &mut [u8], dtype: DType, conj: bool, neg: bool) -> Result<(), String> {
    if !conj && !neg {
        return Ok(());
    }
    let size = dtype.size_in_bytes();
    let float_like = dtype.is_floating_point() || dtype.is_complex();
    if conj && !dtype.is_complex() {
        return Err(format!("the conjugate bit is set on a {dtype} tensor"));
    }
    if float_like {
        let half = if dtype.is_complex() { size / 2 } else { size };
        for elem in buf.chunks_exact_mut(size) {
            if neg {
                // Sign bit of every component (the last byte, little-endian).
                for comp in elem.chunks_exact_mut(half) {
                    comp[half - 1] ^= 0x80;
                }
            }
            if conj {
                elem[size - 1] ^= 0x80;
            }
        }
        return Ok(());
    }
    if dtype.is_quantized() || dtype == DType::Bool || !matches!(size, 1 | 2 | 4 | 8) {
        return Err(format!("the negative bit is set on a {dtype} tensor"));
    }
    for elem in buf.chunks_exact_mut(size) {
        // Two's complement: invert and add one, little-endian.
        let mut carry = true;
        for b in elem.iter_mut() {
            let (v, c) = (!*b).overflowing_add(u8::from(carry));
            *b = v;
            carry = c;
        }
    }
    Ok(())
}

pub(crate) fn inflate(
    raw: &[u8],
    name: &str,
    offset: u64,
    max: u64,
) -> Result<Vec<u8>, TorchError> {
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    miniz_oxide::inflate::decompress_to_vec_with_limit(raw, limit).map_err(|e| {
        TorchError::zip(
            offset,
            Some(name),
            format!(
                "cannot inflate the DEFLATE data: {:?} (limit {max} bytes)",
                e.status
            ),
        )
    })
}

/// Run the object pickle at `offset` of `bytes`; with
/// [`Options::early_tensors`], plain tensor calls are taken as it runs.
fn load_objects(
    bytes: &[u8],
    offset: usize,
    name: &str,
    start: u64,
    style: PidStyle,
    options: &Options,
) -> Result<(Pickle, Taken), TorchError> {
    let machine = Machine::new(options.limits.clone());
    let mut taker = TensorTaker::new(name, style);
    let loaded = if options.early_tensors {
        machine.load_with(bytes, offset, &mut taker)
    } else {
        machine.load(bytes, offset)
    };
    let p = loaded.map_err(|source| TorchError::Pickle {
        pickle: name.to_owned(),
        start,
        source,
    })?;
    Ok((p, taker.into_taken()))
}

fn small_text(data: &[u8], e: &ZipEntry) -> Option<String> {
    if e.size > 4096 {
        return None;
    }
    let b = e.bytes(data, 4096).ok()?;
    Some(String::from_utf8_lossy(&b).into_owned())
}

/// `data.pkl` run from the local header at byte 0, before the central
/// directory is read ([`first_stored_record`](crate::read::zip::first_stored_record)).
struct EarlyPickle {
    /// Where its bytes start in the file.
    start: u64,
    /// The run over the rest of the file, which stops at the pickle's
    /// STOP; an error is not kept (the run over the record reports it).
    loaded: Option<(Pickle, Taken)>,
}

impl EarlyPickle {
    fn run(data: &[u8], options: &Options) -> Option<EarlyPickle> {
        let (name, start) = crate::read::zip::first_stored_record(data)?;
        let (_, record) = name.split_once('/')?;
        if record != "data.pkl" {
            return None;
        }
        let rest = data.get(usize::try_from(start).ok()?..)?;
        let loaded = load_objects(rest, 0, "data.pkl", start, PidStyle::Zip, options).ok();
        Some(EarlyPickle { start, loaded })
    }

    /// The run, if it is exactly the run over `e`'s bytes: `e` is stored
    /// and starts where the local header said, and the pickle's STOP lies
    /// inside it (a run over the record alone reads the same ops up to that
    /// STOP, so it gives the same values, work and errors).
    fn take(self, e: &ZipEntry) -> Option<(Pickle, Taken)> {
        let (p, taken) = self.loaded?;
        let same = e.is_stored()
            && e.header_offset() == 0
            && e.data_offset == self.start
            && p.end <= e.compressed_size;
        same.then_some((p, taken))
    }
}

fn read_zip(
    data: &[u8],
    zip: ZipArchive,
    format: Format,
    options: &Options,
    walk: Walk,
    early: Option<EarlyPickle>,
) -> Result<(Info, Collected, Vec<PickleRecord>), TorchError> {
    // Every name is checked once (50,000 of them in a big checkpoint).
    let prefix = zip.check_prefix()?.to_owned();
    let cut = prefix.len() + 1;
    let (mut info, collected, pickles) =
        read_zip_objects(data, &zip, prefix, format, options, walk, early)?;
    info.records = into_records(zip, cut);
    Ok((info, collected, pickles))
}

/// The record list, made of the directory's own entries: each name loses
/// its first `cut` bytes (the archive prefix and its `/`) in place and the
/// list reuses the entries' memory, so that no second copy of 50,000 names
/// is made while the checkpoint's tables are alive.
fn into_records(zip: ZipArchive, cut: usize) -> Vec<Record> {
    zip.into_entries()
        .into_iter()
        .map(|mut e| {
            // `check_prefix`: every name is longer than `cut` and starts
            // with the prefix and `/`, so `cut` is a char boundary.
            e.name.replace_range(..cut, "");
            Record {
                byte_range: e.data_range(),
                size: e.size,
                method: e.method,
                crc32: e.crc32,
                name: e.name,
            }
        })
        .collect()
}

/// Everything of [`read_zip`] but the record list: the small records, the
/// pickles, the walk of their objects and the storages' locations, every
/// name under `prefix` (its [`ZipArchive::check_prefix`]).
fn read_zip_objects(
    data: &[u8],
    zip: &ZipArchive,
    prefix: String,
    format: Format,
    options: &Options,
    walk: Walk,
    mut early: Option<EarlyPickle>,
) -> Result<(Info, Collected, Vec<PickleRecord>), TorchError> {
    let full = |r: &str| format!("{prefix}/{r}");
    let rec = |r: &str| zip.find(&full(r));
    let mut info = Info {
        archive_name: Some(prefix.clone()),
        zip64: zip.is_zip64(),
        ..Info::default()
    };
    // version
    let (vrec, ventry) = match (rec(".data/version"), rec("version")) {
        (Some(e), _) => (".data/version", e),
        (None, Some(e)) => ("version", e),
        (None, None) => {
            return Err(TorchError::MissingRecord {
                record: "version".into(),
                archive: prefix,
                why: "torch.load requires 'version' or '.data/version' (\"Expected hasRecord(\\\"version\\\") to be true\")".into(),
            });
        }
    };
    let vtext = small_text(data, ventry).unwrap_or_default();
    let v = vtext.trim();
    if v.parse::<u64>().is_err() {
        return Err(TorchError::BadRecord {
            record: vrec.into(),
            offset: ventry.data_offset,
            reason: format!("the version is {v:?}, expected a decimal integer"),
        });
    }
    info.version = Some(v.to_owned());
    info.version_record = Some(vrec.into());
    // byteorder
    info.byteorder = Some(ByteOrder::Little);
    if let Some(e) = rec("byteorder") {
        let text = small_text(data, e).unwrap_or_default();
        info.byteorder =
            Some(
                ByteOrder::from_name(&text).ok_or_else(|| TorchError::BadRecord {
                    record: "byteorder".into(),
                    offset: e.data_offset,
                    reason: format!(
                        "Unknown endianness type: {text:?} (expected 'little' or 'big')"
                    ),
                })?,
            );
        info.byteorder_record = Some(text);
    }
    info.format_version = rec(".format_version").and_then(|e| small_text(data, e));
    info.storage_alignment = rec(".storage_alignment").and_then(|e| small_text(data, e));
    info.serialization_id = rec(".data/serialization_id").and_then(|e| small_text(data, e));

    // Every pickle (including nested zips' pickles).
    let mut pickles = Vec::new();
    for e in zip.entries() {
        let name = &e.name[prefix.len() + 1..];
        if name.ends_with(".pkl") || name.ends_with("_pkl") {
            pickles.push(pickle_record(e, name.to_owned(), 0));
        } else if e.is_stored() && e.head().starts_with(b"PK\x03\x04") {
            nested_pickles(data, e, name, &mut pickles);
        }
    }

    let mut collected = Collected::default();
    let dirs: &[&str] = match format {
        Format::Zip => &["data"],
        Format::TorchScript => &["data", "constants", "traced_inputs"],
        _ => &[],
    };
    for (i, dir) in dirs.iter().enumerate() {
        let name = format!("{dir}.pkl");
        let Some(e) = rec(&name) else {
            if i == 0 || (format == Format::TorchScript && *dir == "constants") {
                return Err(TorchError::MissingRecord {
                    record: name,
                    archive: prefix,
                    why: "the object graph is stored there".into(),
                });
            }
            continue;
        };
        if walk == Walk::PicklesOnly {
            continue;
        }
        let bytes = e.bytes(data, options.max_inflated_bytes)?;
        // One storage (and usually one tensor) per record of the pickle's
        // directory: room for them before the walk. Each storage is
        // declared by at least 8 bytes of pickle, which bounds the hint
        // whatever the directory claims.
        let storage_records = zip
            .entries()
            .iter()
            .filter(|r| {
                r.name
                    .get(prefix.len() + 1..)
                    .and_then(|n| n.strip_prefix(dir))
                    .is_some_and(|n| n.starts_with('/'))
            })
            .count();
        collected.reserve(storage_records.min(bytes.len() / 8));
        let speculated = match early.take() {
            Some(run) if name == "data.pkl" => run.take(e),
            _ => None,
        };
        let (p, taken) = match speculated {
            Some(run) => run,
            None => load_objects(&bytes, 0, &name, e.data_offset, PidStyle::Zip, options)?,
        };
        // The values own their bytes: the pickle's mapped pages need not
        // stay resident while the objects are walked.
        if let Cow::Borrowed(b) = &bytes {
            netport_io::release(b);
        }
        let root_path = match (format, *dir) {
            (Format::TorchScript, "constants") => "constants",
            (Format::TorchScript, "traced_inputs") => "traced_inputs",
            _ => "",
        };
        let mut w = Walker::new(
            &p.arena,
            &taken,
            &name,
            Some(dir),
            PidStyle::Zip,
            options.max_repr,
            &mut collected,
        );
        w.walk(p.root, root_path)?;
    }
    if walk == Walk::PicklesOnly {
        return Ok((info, collected, pickles));
    }
    if format == Format::Pt2 {
        pt2::read(data, zip, &prefix, options, &mut info, &mut collected)?;
    }
    info.module_classes = std::mem::take(&mut collected.classes);
    // The arenas are gone: unpack what the walk recorded.
    collected.finish();

    locate_storages(zip, &prefix, &mut collected)?;
    collected.fill_ranges();
    Ok((info, collected, pickles))
}

/// Give every storage of a zip checkpoint its record's bytes (the full
/// record name built in one buffer).
fn locate_storages(
    zip: &ZipArchive,
    prefix: &str,
    collected: &mut Collected,
) -> Result<(), TorchError> {
    let mut full_name = format!("{prefix}/");
    for i in 0..collected.storages.len() {
        let Some(s) = collected.storage_ref(i) else {
            continue;
        };
        let Some(record) = s.record() else {
            continue;
        };
        full_name.truncate(prefix.len() + 1);
        full_name.push_str(record);
        let e = zip
            .find(&full_name)
            .ok_or_else(|| TorchError::MissingRecord {
                record: record.to_owned(),
                archive: prefix.to_owned(),
                why: format!(
                    "it holds storage '{}' used by {}",
                    s.key(),
                    s.first_tensor()
                        .map_or("a storage value".to_owned(), |p| format!("tensor '{p}'"))
                ),
            })?;
        let expected = s.nbytes().unwrap_or(u64::MAX);
        if e.size != expected {
            return Err(TorchError::BadStorage {
                key: s.key().to_owned(),
                pickle: s.source().to_string(),
                reason: format!(
                    "record '{record}' at file byte {} has {} bytes but the persistent id declares {} elements * {} bytes/element = {expected} bytes ({})",
                    e.data_offset,
                    e.size,
                    s.numel(),
                    s.dtype().size_in_bytes(),
                    s.dtype()
                ),
            });
        }
        collected.storages.locate(i, e.data_range(), !e.is_stored());
    }
    Ok(())
}

fn pickle_record(e: &ZipEntry, name: String, base: u64) -> PickleRecord {
    let range = e.data_range();
    let compressed = !e.is_stored();
    let head = e.head();
    let protocol = (!compressed && head.first() == Some(&0x80))
        .then(|| head.get(1).copied())
        .flatten();
    PickleRecord {
        name,
        byte_range: range.start + base..range.end + base,
        compressed,
        protocol,
    }
}

/// Pickles inside a stored record that is itself a zip (`.pt2` sample
/// inputs, `use_pickle` weights). Offsets are made absolute.
fn nested_pickles(data: &[u8], e: &ZipEntry, name: &str, out: &mut Vec<PickleRecord>) {
    let inner = slice(data, &e.data_range());
    let Ok(z) = ZipArchive::parse(inner) else {
        return;
    };
    for ie in z.entries() {
        if ie.name.ends_with(".pkl") || ie.name.ends_with("_pkl") {
            out.push(pickle_record(
                ie,
                format!("{name}/{}", ie.name),
                e.data_offset,
            ));
        }
    }
}

fn read_legacy(
    data: &[u8],
    options: &Options,
) -> Result<(Info, Collected, Vec<PickleRecord>), TorchError> {
    let mut pickles = Vec::new();
    let mut loaded = Vec::new();
    let mut pos = 0usize;
    let mut taken = Taken::default();
    for n in 1..=5 {
        if pos >= data.len() {
            return Err(TorchError::Legacy {
                offset: pos as u64,
                reason: format!("the file ends after {} of the 5 pickles", n - 1),
            });
        }
        let name = format!("legacy pickle #{n}");
        let p = if n == 4 {
            // The object pickle.
            let (p, t) = load_objects(data, pos, &name, 0, PidStyle::Legacy, options)?;
            taken = t;
            p
        } else {
            Machine::new(options.limits.clone())
                .load(data, pos)
                .map_err(|source| TorchError::Pickle {
                    pickle: name.clone(),
                    start: 0,
                    source,
                })?
        };
        pickles.push(PickleRecord {
            name,
            byte_range: p.start..p.end,
            compressed: false,
            protocol: p.protocol,
        });
        pos = p.end as usize;
        loaded.push(p);
    }
    let magic_ok = matches!(loaded[0].arena.get(loaded[0].root), Some(Value::BigInt(b)) if b.le_signed_bytes() == LEGACY_MAGIC_LE);
    if !magic_ok {
        return Err(TorchError::Legacy {
            offset: 0,
            reason: "Invalid magic number; corrupt file?".into(),
        });
    }
    let mut info = Info {
        byteorder: Some(ByteOrder::Little),
        ..Info::default()
    };
    let proto = match loaded[1].arena.get(loaded[1].root) {
        Some(Value::Int(i)) => *i,
        _ => -1,
    };
    if proto != 1001 {
        return Err(TorchError::Legacy {
            offset: loaded[1].start,
            reason: format!("Invalid protocol version: {proto} (expected 1001)"),
        });
    }
    info.legacy_protocol_version = Some(proto);
    info.legacy_sys_info = Some(loaded[2].arena.repr(loaded[2].root, options.max_repr));

    let mut collected = Collected::default();
    {
        let p = &loaded[3];
        let mut w = Walker::new(
            &p.arena,
            &taken,
            "legacy pickle #4",
            None,
            PidStyle::Legacy,
            options.max_repr,
            &mut collected,
        );
        w.walk(p.root, "")?;
    }
    collected.finish();
    // Pickle #5: the storage keys, in the order of the raw area.
    let keys_p = &loaded[4];
    let keys: Vec<String> = match keys_p.arena.get(keys_p.root) {
        Some(Value::List(items)) => items
            .iter()
            .map(|&k| match keys_p.arena.get(k) {
                Some(Value::Str(s)) => Ok(s.to_string()),
                Some(Value::Int(i)) => Ok(i.to_string()),
                other => Err(TorchError::Legacy {
                    offset: keys_p.start,
                    reason: format!(
                        "the storage key list contains a {}, expected strings",
                        other.map_or("missing value", Value::kind)
                    ),
                }),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(TorchError::Legacy {
                offset: keys_p.start,
                reason: format!(
                    "pickle #5 is a {}, expected the list of storage keys",
                    other.map_or("missing value", Value::kind)
                ),
            });
        }
    };
    let mut cursor = keys_p.end;
    let len = data.len() as u64;
    for key in &keys {
        let Some(s) = collected
            .storages
            .find(None, key)
            .and_then(|i| collected.storage_ref(i))
        else {
            return Err(TorchError::Legacy {
                offset: cursor,
                reason: format!(
                    "storage '{key}' is listed in pickle #5 but no persistent id declares it, so its element size is unknown"
                ),
            });
        };
        let header = data
            .get(cursor as usize..(cursor as usize).saturating_add(8))
            .ok_or_else(|| TorchError::Legacy {
                offset: cursor,
                reason: format!(
                    "the file ends ({len} bytes) before the 8-byte element count of storage '{key}'"
                ),
            })?;
        let count = u64::from_le_bytes(header.try_into().unwrap_or([0; 8]));
        if count != s.numel() {
            return Err(TorchError::Legacy {
                offset: cursor,
                reason: format!(
                    "storage '{key}' has {count} elements in the data area but {} in its persistent id",
                    s.numel()
                ),
            });
        }
        let start = cursor + 8;
        let nbytes = s.nbytes().unwrap_or(u64::MAX);
        let end = start.checked_add(nbytes).filter(|&e| e <= len).ok_or_else(|| TorchError::Legacy {
            offset: start,
            reason: format!(
                "storage '{key}' needs {nbytes} bytes ({count} x {}) from byte {start} but the file has {len} bytes",
                s.dtype()
            ),
        })?;
        let index = s.index();
        collected.storages.locate(index, start..end, false);
        cursor = end;
    }
    let listed: std::collections::HashSet<&str> = keys.iter().map(|k| &**k).collect();
    if let Some(s) = (0..collected.storages.len())
        .filter_map(|i| collected.storage_ref(i))
        .find(|s| !listed.contains(s.key()))
    {
        return Err(TorchError::Legacy {
            offset: keys_p.start,
            reason: format!(
                "storage '{}' is used by the object but missing from the key list",
                s.key()
            ),
        });
    }
    collected.fill_ranges();
    Ok((info, collected, pickles))
}

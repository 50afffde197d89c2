//! From a pickle's value graph to tensors, storages and plain values, with
//! paths.
//!
//! The walk is iterative and linear in the graph: every container or object
//! node is expanded once (a second reference to it is reported as
//! [`Leaf::Alias`] of the first path), and every tensor node is interpreted
//! once (a second reference, e.g. tied weights, is another [`Tensor`] entry
//! with the same storage). A "billion laughs" graph therefore costs its
//! number of edges, never its logical expansion.
//!
//! Path rule: dict/OrderedDict keys by Python `str(key)`, list/tuple/set items
//! by index, object state attributes by name, joined with `.`; the root has
//! path `""`.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

use foldhash::HashMap;
use netport_io::varint;
use netport_pickle::{Arena, Value, ValueId};
use netport_tensor::{DType, required_bytes};

use crate::error::TorchError;
use crate::storages::{Names, NewStorage, StorageRef, Storages};

/// What a tensor entry is.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorKind {
    /// A plain tensor (`_rebuild_tensor`, `_v2`, `_v3`, or a CPU copy of a
    /// device tensor via `_rebuild_device_tensor_from_cpu_tensor`).
    Dense,
    /// An `nn.Parameter` (`_rebuild_parameter`, `_rebuild_parameter_with_state`).
    Parameter,
    /// A tensor subclass rebuilt by `torch._tensor._rebuild_from_type_v2`
    /// (`module.Class`).
    Subclass {
        /// The class as written.
        class: String,
    },
    /// A quantized tensor (`_rebuild_qtensor`); the bytes are the raw integer
    /// storage.
    Quantized(Box<Quantization>),
    /// A meta tensor: dtype and shape only, no storage.
    Meta,
    /// A tensor this crate cannot materialise (sparse, nested, wrapper
    /// subclass, numpy-backed device tensor, unknown rebuild function). Its
    /// component tensors, if any, are separate entries under this path.
    Unsupported {
        /// The rebuild function, `module.name`.
        function: String,
    },
}

/// Quantization parameters of a [`TensorKind::Quantized`] tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Quantization {
    /// `torch.per_tensor_affine` / `per_tensor_symmetric`.
    PerTensor {
        /// The qscheme name (`per_tensor_affine`).
        qscheme: String,
        /// Scale.
        scale: f64,
        /// Zero point.
        zero_point: i64,
    },
    /// `torch.per_channel_affine` (also written for
    /// `per_channel_affine_float_qparams`).
    PerChannel {
        /// The qscheme name.
        qscheme: String,
        /// Scales (float64 tensor, path `<path>.q_per_channel_scales`).
        scales: Box<Tensor>,
        /// Zero points (path `<path>.q_per_channel_zero_points`).
        zero_points: Box<Tensor>,
        /// The channel axis.
        axis: i64,
    },
}

/// One tensor of a checkpoint. Shapes, strides and offsets are in elements of
/// [`dtype`](Tensor::dtype).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Path in the object tree (see the crate docs).
    pub path: String,
    /// The pickle or JSON record that describes it (`data.pkl`,
    /// `constants.pkl`, `legacy pickle #4`, `data/weights/model_weights_config.json`).
    pub source: Arc<str>,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<u64>,
    /// Strides.
    pub strides: Vec<u64>,
    /// Offset into the storage.
    pub storage_offset: u64,
    /// Device: the storage's location tag as written (`cpu`, `cuda:0`), or
    /// the device argument for meta/device-copy tensors.
    pub device: Arc<str>,
    /// Index into [`Checkpoint::storages`](crate::Checkpoint::storages).
    pub storage: Option<usize>,
    /// The storage key as written in the persistent id (or the `.pt2` file
    /// name): the storage's [`key`](Storage::key).
    pub storage_key: Option<Arc<str>>,
    /// Absolute byte range of the whole storage in the file.
    pub byte_range: Option<Range<u64>>,
    /// What kind of tensor.
    pub kind: TensorKind,
    /// `requires_grad` as saved.
    pub requires_grad: bool,
    /// The conjugate bit (`metadata {'conj': True}`): the stored values are
    /// the conjugate of the logical values.
    pub conj: bool,
    /// The negative bit (`metadata {'neg': True}`).
    pub neg: bool,
}

/// A tensor of an opened checkpoint read where it is kept
/// ([`Checkpoint::tensor_refs`](crate::Checkpoint::tensor_refs)): what a
/// [`Tensor`] says, without a copy of its path, shape and strides. A
/// checkpoint keeps most tensors as 32-byte records over shared text and
/// dimension buffers; [`Checkpoint::tensors`](crate::Checkpoint::tensors)
/// unpacks them all, this reads one at a time.
#[derive(Debug, Clone, Copy)]
pub struct TensorRef<'c>(RefInner<'c>);

#[derive(Debug, Clone, Copy)]
enum RefInner<'c> {
    /// A packed tensor: dense or parameter, on its storage's device.
    Packed {
        p: &'c PackedTensor,
        path: &'c str,
        source: &'c Arc<str>,
        shape: &'c [u64],
        strides: &'c [u64],
        storage: StorageRef<'c>,
    },
    Full(&'c Tensor),
}

impl<'c> TensorRef<'c> {
    /// [`Tensor::path`].
    pub fn path(&self) -> &'c str {
        match self.0 {
            RefInner::Packed { path, .. } => path,
            RefInner::Full(t) => &t.path,
        }
    }

    /// [`Tensor::source`].
    pub fn source(&self) -> &'c str {
        match self.0 {
            RefInner::Packed { source, .. } => source,
            RefInner::Full(t) => &t.source,
        }
    }

    /// [`Tensor::dtype`].
    pub fn dtype(&self) -> DType {
        match self.0 {
            RefInner::Packed { p, .. } => p.dtype,
            RefInner::Full(t) => t.dtype,
        }
    }

    /// [`Tensor::shape`].
    pub fn shape(&self) -> &'c [u64] {
        match self.0 {
            RefInner::Packed { shape, .. } => shape,
            RefInner::Full(t) => &t.shape,
        }
    }

    /// [`Tensor::strides`].
    pub fn strides(&self) -> &'c [u64] {
        match self.0 {
            RefInner::Packed { strides, .. } => strides,
            RefInner::Full(t) => &t.strides,
        }
    }

    /// [`Tensor::storage_offset`].
    pub fn storage_offset(&self) -> u64 {
        match self.0 {
            RefInner::Packed { p, .. } => u64::from(p.storage_offset),
            RefInner::Full(t) => t.storage_offset,
        }
    }

    /// [`Tensor::device`].
    pub fn device(&self) -> &'c str {
        match self.0 {
            RefInner::Packed { storage, .. } => storage.location(),
            RefInner::Full(t) => &t.device,
        }
    }

    /// [`Tensor::storage`].
    pub fn storage(&self) -> Option<usize> {
        match self.0 {
            RefInner::Packed { p, .. } => Some(p.storage as usize),
            RefInner::Full(t) => t.storage,
        }
    }

    /// [`Tensor::storage_key`].
    pub fn storage_key(&self) -> Option<&'c str> {
        match self.0 {
            RefInner::Packed { storage, .. } => Some(storage.key()),
            RefInner::Full(t) => t.storage_key.as_deref(),
        }
    }

    /// [`Tensor::byte_range`].
    pub fn byte_range(&self) -> Option<Range<u64>> {
        match self.0 {
            RefInner::Packed { storage, .. } => Some(storage.byte_range()),
            RefInner::Full(t) => t.byte_range.clone(),
        }
    }

    /// [`Tensor::kind`].
    pub fn kind(&self) -> &'c TensorKind {
        static DENSE: TensorKind = TensorKind::Dense;
        static PARAMETER: TensorKind = TensorKind::Parameter;
        match self.0 {
            RefInner::Packed { p, .. } if p.flags & PackedTensor::PARAMETER != 0 => &PARAMETER,
            RefInner::Packed { .. } => &DENSE,
            RefInner::Full(t) => &t.kind,
        }
    }

    fn flag(&self, flag: u8, full: impl Fn(&Tensor) -> bool) -> bool {
        match self.0 {
            RefInner::Packed { p, .. } => p.flags & flag != 0,
            RefInner::Full(t) => full(t),
        }
    }

    /// [`Tensor::requires_grad`].
    pub fn requires_grad(&self) -> bool {
        self.flag(PackedTensor::REQUIRES_GRAD, |t| t.requires_grad)
    }

    /// [`Tensor::conj`].
    pub fn conj(&self) -> bool {
        self.flag(PackedTensor::CONJ, |t| t.conj)
    }

    /// [`Tensor::neg`].
    pub fn neg(&self) -> bool {
        self.flag(PackedTensor::NEG, |t| t.neg)
    }

    /// The tensor as an owned [`Tensor`] (what
    /// [`Checkpoint::tensors`](crate::Checkpoint::tensors) holds).
    pub fn to_tensor(&self) -> Tensor {
        match self.0 {
            RefInner::Packed {
                path,
                source,
                shape,
                strides,
                storage,
                ..
            } => Tensor {
                path: path.to_owned(),
                source: source.clone(),
                dtype: self.dtype(),
                shape: shape.to_vec(),
                strides: strides.to_vec(),
                storage_offset: self.storage_offset(),
                device: storage.location().clone(),
                storage: self.storage(),
                storage_key: Some(storage.key().into()),
                byte_range: self.byte_range(),
                kind: self.kind().clone(),
                requires_grad: self.requires_grad(),
                conj: self.conj(),
                neg: self.neg(),
            },
            RefInner::Full(t) => t.clone(),
        }
    }
}

/// One storage: a run of bytes in the file that tensors view.
#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    /// The key as written (`"0"`; a pointer value in legacy files; the file
    /// name in `.pt2`).
    pub key: Arc<str>,
    /// The record holding the bytes, without the archive prefix (`data/0`,
    /// `constants/0`); `None` for legacy files.
    pub record: Option<String>,
    /// The pickle or JSON record that declared it.
    pub source: Arc<str>,
    /// The storage type as written: `torch.FloatStorage`,
    /// `torch.storage.UntypedStorage`, or `raw` for `.pt2` weight files.
    pub storage_type: Arc<str>,
    /// The storage's dtype (`uint8` for `UntypedStorage` and `.pt2`).
    pub dtype: DType,
    /// Elements of `dtype` (bytes for untyped storages).
    pub numel: u64,
    /// Location tag as written.
    pub location: Arc<str>,
    /// Absolute byte range in the file (empty until located).
    pub byte_range: Range<u64>,
    /// True if the record is compressed (its bytes cannot be viewed in place).
    pub compressed: bool,
    /// Paths of the tensors that use it, in walk order.
    pub tensors: Vec<String>,
}

impl Storage {
    /// `numel * element size`, the byte length torch expects.
    pub fn nbytes(&self) -> Option<u64> {
        self.numel.checked_mul(self.dtype.size_in_bytes() as u64)
    }
}

/// A non-tensor value at a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf {
    /// `None`.
    None,
    /// A bool.
    Bool(bool),
    /// An int that fits `i64` (also numpy integer scalars).
    Int(i64),
    /// A larger int, in decimal.
    BigInt(String),
    /// A float (also numpy float scalars).
    Float(f64),
    /// `complex(re, im)`.
    Complex(f64, f64),
    /// A string.
    Str(String),
    /// `bytes`/`bytearray` of this length.
    Bytes(usize),
    /// An empty dict, list, tuple or set.
    Empty,
    /// An object (`argparse.Namespace`, a module, ...) of this class; its
    /// state attributes follow as separate entries.
    Object {
        /// `module.name` as written.
        class: String,
    },
    /// A reference to a global (a dtype, a class, a function).
    Global {
        /// Module.
        module: String,
        /// Name.
        name: String,
    },
    /// A bare storage (not viewed by a tensor at this path).
    Storage {
        /// Index into the storages.
        index: usize,
    },
    /// A second reference to a container or object already listed at this path.
    Alias {
        /// The first path.
        of: String,
    },
    /// Anything else (its repr says what).
    Other,
}

/// A non-tensor value with its path and a printable, length-capped repr.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueEntry {
    /// Path (see the crate docs).
    pub path: String,
    /// The pickle it comes from.
    pub source: Arc<str>,
    /// The value, when simple.
    pub leaf: Leaf,
    /// Python-like text, at most the configured number of characters
    /// (`epoch` → `7`, `args` → `argparse.Namespace(lr=0.001, ...)`).
    pub repr: String,
}

/// One line of the nesting view (`netport inspect --tree`): what sits at a
/// key, at its depth below the pickle's root, in walk (file) order.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeItem {
    /// Nesting depth; the root of each pickle is 0.
    pub depth: usize,
    /// The key within its parent (the last path component; the whole path
    /// for a pickle's root).
    pub key: String,
    /// What is there.
    pub node: TreeNode,
}

/// The node of a [`TreeItem`].
#[derive(Debug, Clone, PartialEq)]
pub enum TreeNode {
    /// A dict, list, tuple or set with this many entries; its entries follow
    /// one level deeper.
    Container {
        /// Number of entries.
        len: usize,
    },
    /// Index into [`Checkpoint::tensors`](crate::Checkpoint::tensors).
    Tensor(usize),
    /// Index into [`Checkpoint::values`](crate::Checkpoint::values) (objects
    /// are values too; their attributes follow one level deeper).
    Value(usize),
}

/// How persistent ids are laid out in this pickle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PidStyle {
    /// `('storage', type, key, location, numel)` (zip, TorchScript: 5 or 6).
    Zip,
    /// `('storage', type, root_key, location, numel, view_metadata)`.
    Legacy,
}

/// Results of walking one or more pickles.
///
/// Tensors and tree lines are kept packed ([`Packed`]: fixed-size records
/// over shared text and dimension buffers) and so are storages
/// ([`Storages`]); [`Collected::finish`] groups each storage's users once
/// every pickle is walked. [`tensors`](Self::tensors), [`tree`](Self::tree)
/// and [`storages`](Self::storages) unpack copies on request.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub storages: Storages,
    pub values: Vec<ValueEntry>,
    /// `(path, class)` of `__torch__` objects (TorchScript modules).
    pub classes: Vec<(String, String)>,
    /// Every tensor and tree line, as the walk recorded them: they stay
    /// packed ([`TensorRef`] reads them in place; [`Collected::tensors`]
    /// and [`Collected::tree`] unpack copies on request).
    packed: Packed,
}

/// A span of a text buffer ([`Packed::text`], the storages' text).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub start: u32,
    pub len: u32,
}

impl Span {
    /// The text it spans (empty if `text` is too short).
    pub(crate) fn get(self, text: &str) -> &str {
        let start = self.start as usize;
        text.get(start..start + self.len as usize).unwrap_or("")
    }
}

/// One tensor as the walk records it: 28 bytes, its path in
/// [`Packed::text`], shape then strides in [`Packed::dims`], device and
/// storage key those of its storage. (A tensor of more than 255
/// dimensions, or at an offset past `u32` elements, is kept whole.)
#[derive(Debug, Clone, Copy)]
struct PackedTensor {
    path: Span,
    /// Start of the shape in [`Packed::dims`] (the strides follow it), or
    /// with [`PackedTensor::FULL`] the index in [`Packed::full`].
    dims: u32,
    storage: u32,
    storage_offset: u32,
    /// Index in [`Packed::sources`].
    source: u16,
    ndim: u8,
    dtype: DType,
    flags: u8,
}

const _: () = assert!(std::mem::size_of::<PackedTensor>() == 28);

impl PackedTensor {
    const PARAMETER: u8 = 1;
    const REQUIRES_GRAD: u8 = 2;
    const CONJ: u8 = 4;
    const NEG: u8 = 8;
    /// Not packed: the tensor is `full[dims]`.
    const FULL: u8 = 16;
    /// The tensor is its storage's user at its path (no separate entry:
    /// [`Storages::finish`]).
    const USER: u8 = 32;
}

/// A dense view of a storage on its device, as the walk found it.
struct View<'v> {
    path: &'v str,
    source: &'v Arc<str>,
    storage: usize,
    dtype: DType,
    shape: &'v [u64],
    strides: &'v [u64],
    /// In elements of `dtype`.
    offset: u64,
}

/// What a taken tensor views, once its storage is registered.
struct TakenView<'t> {
    storage: usize,
    dtype: DType,
    offset: u64,
    /// Its shape and strides.
    tensor: TakenTensor<'t>,
}

impl TakenView<'_> {
    fn at<'v>(&'v self, path: &'v str, source: &'v Arc<str>) -> View<'v> {
        View {
            path,
            source,
            storage: self.storage,
            dtype: self.dtype,
            shape: self.tensor.shape(),
            strides: self.tensor.strides(),
            offset: self.offset,
        }
    }
}

/// One line of the nesting view as the walk records it: 16 bytes.
#[derive(Debug, Clone, Copy)]
struct PackedTreeItem {
    /// The node's kind in the top two bits ([`PackedTreeItem::TENSOR`],
    /// ...), the depth below them; or [`PackedTreeItem::FULL`]: the line
    /// is `tree_full[key.start]`.
    kind_depth: u32,
    key: Span,
    /// The container's length, the tensor's or the value's index.
    value: u32,
}

const _: () = assert!(std::mem::size_of::<PackedTreeItem>() == 16);

impl PackedTreeItem {
    const FULL: u32 = u32::MAX;
    const CONTAINER: u32 = 0;
    const TENSOR: u32 = 1 << 30;
    const VALUE: u32 = 2 << 30;
    const DEPTH: u32 = (1 << 30) - 1;

    /// The packed line, when its depth, key and node fit.
    fn pack(depth: usize, key: Span, node: &TreeNode) -> Option<Self> {
        let depth = u32::try_from(depth).ok().filter(|&d| d <= Self::DEPTH)?;
        let (kind, value) = match *node {
            TreeNode::Container { len } => (Self::CONTAINER, len),
            TreeNode::Tensor(i) => (Self::TENSOR, i),
            TreeNode::Value(i) => (Self::VALUE, i),
        };
        Some(PackedTreeItem {
            kind_depth: kind | depth,
            key,
            value: u32::try_from(value).ok()?,
        })
    }

    fn node(&self) -> TreeNode {
        let value = self.value as usize;
        match self.kind_depth & !Self::DEPTH {
            Self::TENSOR => TreeNode::Tensor(value),
            Self::VALUE => TreeNode::Value(value),
            _ => TreeNode::Container { len: value },
        }
    }
}

/// Tensors, tree lines and storage users recorded during the walk.
#[derive(Debug, Default)]
struct Packed {
    tensors: Vec<PackedTensor>,
    tree: Vec<PackedTreeItem>,
    /// Paths and keys, back to back.
    text: String,
    /// The span [`Packed::text`] appended last.
    last_text: Option<Span>,
    /// Shapes and strides, back to back.
    dims: Vec<u64>,
    /// Where the last shape and strides appended to `dims` start, and their
    /// number of dimensions: a tensor with the same ones shares them (a
    /// BatchNorm's four tensors, half of a ResNet's).
    last_dims: Option<(u32, u8)>,
    /// Tensors the packed form cannot hold (a kind other than dense or
    /// parameter, a device other than the storage's, no storage, or a
    /// buffer past `u32` offsets).
    full: Vec<Tensor>,
    /// The pickles tensors come from.
    sources: Vec<Arc<str>>,
    /// Tree lines the packed form cannot hold (a depth or key past `u32`
    /// offsets), by [`PackedTreeItem::FULL`] entries.
    tree_full: Vec<TreeItem>,
}

impl Packed {
    /// `text` appended to [`Packed::text`], if its offsets fit. A text
    /// equal to the last one shares its span: a tensor's path is recorded
    /// for its storage's users, for the tensor and (at the root) as its tree
    /// key, one after the other.
    fn text(&mut self, text: &str) -> Option<Span> {
        if let Some(last) = self.last_text
            && self.str(last) == text
        {
            return Some(last);
        }
        let span = self.append(text)?;
        self.last_text = Some(span);
        Some(span)
    }

    fn append(&mut self, text: &str) -> Option<Span> {
        let start = u32::try_from(self.text.len()).ok()?;
        let len = u32::try_from(text.len()).ok()?;
        start.checked_add(len)?;
        self.text.push_str(text);
        Some(Span { start, len })
    }

    fn str(&self, span: Span) -> &str {
        span.get(&self.text)
    }

    fn source(&mut self, source: &Arc<str>) -> Option<u16> {
        if let Some(i) = self.sources.iter().rposition(|s| Arc::ptr_eq(s, source)) {
            return u16::try_from(i).ok();
        }
        let i = u16::try_from(self.sources.len()).ok()?;
        self.sources.push(source.clone());
        Some(i)
    }

    /// The packed form of `t`, when it has one.
    fn pack(&mut self, t: &Tensor, storages: &Storages) -> Option<PackedTensor> {
        let flags = match t.kind {
            TensorKind::Dense => 0,
            TensorKind::Parameter => PackedTensor::PARAMETER,
            _ => return None,
        };
        let index = t.storage?;
        let s = storages.get(index, "")?;
        let same_storage = t.byte_range.is_none()
            && t.device == *s.location()
            && t.storage_key.as_deref() == Some(s.key())
            && t.shape.len() == t.strides.len();
        if !same_storage {
            return None;
        }
        let flag = |on: bool, f: u8| if on { f } else { 0 };
        let view = View {
            path: &t.path,
            source: &t.source,
            storage: index,
            dtype: t.dtype,
            shape: &t.shape,
            strides: &t.strides,
            offset: t.storage_offset,
        };
        self.record(
            &view,
            flags
                | flag(t.requires_grad, PackedTensor::REQUIRES_GRAD)
                | flag(t.conj, PackedTensor::CONJ)
                | flag(t.neg, PackedTensor::NEG),
        )
    }

    /// The packed record of a view of its storage (on its storage's
    /// device), when its offsets fit.
    fn record(&mut self, v: &View<'_>, flags: u8) -> Option<PackedTensor> {
        let ndim = u8::try_from(v.shape.len()).ok()?;
        let storage_offset = u32::try_from(v.offset).ok()?;
        let n = usize::from(ndim);
        let same = self.last_dims.filter(|&(start, last)| {
            let start = start as usize;
            last == ndim
                && self.dims.get(start..start + n) == Some(v.shape)
                && self.dims.get(start + n..start + 2 * n) == Some(v.strides)
        });
        let dims = match same {
            Some((start, _)) => start,
            None => {
                let start = u32::try_from(self.dims.len()).ok()?;
                start.checked_add(u32::from(ndim) * 2)?;
                start
            }
        };
        let storage = u32::try_from(v.storage).ok()?;
        let source = self.source(v.source)?;
        let path = self.text(v.path)?;
        if same.is_none() {
            self.dims.extend_from_slice(v.shape);
            self.dims.extend_from_slice(v.strides);
            self.last_dims = Some((dims, ndim));
        }
        Some(PackedTensor {
            path,
            dims,
            ndim,
            storage,
            source,
            dtype: v.dtype,
            flags,
            storage_offset,
        })
    }

    fn push(&mut self, t: Tensor, storages: &Storages) {
        let packed = match self.pack(&t, storages) {
            Some(p) => p,
            None => {
                let index = self.full.len();
                self.full.push(t);
                PackedTensor {
                    path: Span { start: 0, len: 0 },
                    // More than u32::MAX tensors cannot come from pickles
                    // bounded by max_nodes (at most u32::MAX values).
                    dims: u32::try_from(index).unwrap_or(u32::MAX),
                    ndim: 0,
                    storage: 0,
                    source: 0,
                    dtype: DType::UInt8,
                    flags: PackedTensor::FULL,
                    storage_offset: 0,
                }
            }
        };
        self.tensors.push(packed);
    }

    /// The tensor at `index`, unpacked (with its storage's byte range once
    /// the storages are `located`).
    fn get(&self, index: usize, storages: &Storages, located: bool) -> Option<Tensor> {
        let mut t = self.tensor_ref(index, storages)?.to_tensor();
        if !located && self.tensors.get(index)?.flags & PackedTensor::FULL == 0 {
            // Storages are located after the walk: until then a packed
            // tensor has no byte range, as when it was recorded.
            t.byte_range = None;
        }
        Some(t)
    }

    /// The tensor at `index`, read in place.
    fn tensor_ref<'c>(&'c self, index: usize, storages: &'c Storages) -> Option<TensorRef<'c>> {
        let p = self.tensors.get(index)?;
        if p.flags & PackedTensor::FULL != 0 {
            return self
                .full
                .get(p.dims as usize)
                .map(|t| TensorRef(RefInner::Full(t)));
        }
        let storage = storages.get(p.storage as usize, &self.text)?;
        let start = p.dims as usize;
        let n = p.ndim as usize;
        let dims = self.dims.get(start..start + 2 * n)?;
        Some(TensorRef(RefInner::Packed {
            p,
            path: self.str(p.path),
            source: self.sources.get(usize::from(p.source))?,
            shape: &dims[..n],
            strides: &dims[n..],
            storage,
        }))
    }
}

impl Collected {
    /// Record that the tensor or value at `path` uses storage `index`.
    pub(crate) fn add_user(&mut self, index: usize, path: &str) {
        if index >= self.storages.len() {
            return;
        }
        let tensors = self.packed.tensors.len();
        match self.packed.text(path) {
            Some(span) => self.storages.add_user(index, span, tensors),
            // Past the packed offsets: straight into the storage.
            None => self.storages.add_user_path(index, path),
        }
    }

    /// Room for `n` more storages, tensors and tree lines, as a hint (a checkpoint's
    /// storage records): the lists and the storage index then grow once,
    /// not by doubling and rehashing.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.storages.reserve(n);
        self.packed.tensors.reserve_exact(n);
        // A tree line per tensor, and one for their container.
        self.packed.tree.reserve_exact(n.saturating_add(1));
        self.packed.text.reserve(n.saturating_mul(32));
        self.packed.dims.reserve(n.saturating_mul(4));
    }

    /// Record a tensor (after the walk's earlier ones).
    pub(crate) fn push_tensor(&mut self, t: Tensor) {
        self.packed.push(t, &self.storages);
    }

    /// The [`Tensor`] of a view of its storage, on the storage's device.
    fn tensor_of(&self, v: &View<'_>, kind: TensorKind, requires_grad: bool) -> Tensor {
        let s = self.storage_ref(v.storage);
        Tensor {
            path: v.path.to_owned(),
            source: v.source.clone(),
            dtype: v.dtype,
            shape: v.shape.to_vec(),
            strides: v.strides.to_vec(),
            storage_offset: v.offset,
            device: s.map_or_else(|| "".into(), |s| s.location().clone()),
            storage: Some(v.storage),
            storage_key: s.map(|s| s.key().into()),
            byte_range: None,
            kind,
            requires_grad,
            conj: false,
            neg: false,
        }
    }

    /// Record a dense tensor that views its storage on its device and is a
    /// user of it at its path: straight into its packed record, which then
    /// also stands for the user (no separate entry); as `add_user` then a
    /// [`Tensor`] if the offsets do not fit.
    fn push_user_view(&mut self, v: &View<'_>, requires_grad: bool) {
        let flags = PackedTensor::USER
            | if requires_grad {
                PackedTensor::REQUIRES_GRAD
            } else {
                0
            };
        match self.packed.record(v, flags) {
            Some(p) => self.packed.tensors.push(p),
            None => {
                self.add_user(v.storage, v.path);
                let t = self.tensor_of(v, TensorKind::Dense, requires_grad);
                self.push_tensor(t);
            }
        }
    }

    /// Number of tensors recorded.
    pub(crate) fn tensor_count(&self) -> usize {
        self.packed.tensors.len()
    }

    /// The tensor recorded at `index`, unpacked, as the walk sees it (no
    /// byte range yet).
    fn tensor(&self, index: usize) -> Option<Tensor> {
        self.packed.get(index, &self.storages, false)
    }

    /// The tensor at `index`, read in place.
    pub(crate) fn tensor_ref(&self, index: usize) -> Option<TensorRef<'_>> {
        self.packed.tensor_ref(index, &self.storages)
    }

    /// Every tensor, unpacked, with its storage's byte range (call once
    /// the storages are located).
    pub(crate) fn tensors(&self) -> Vec<Tensor> {
        (0..self.packed.tensors.len())
            .filter_map(|i| self.packed.get(i, &self.storages, true))
            .collect()
    }

    /// Give the tensors that are not packed their storage's byte range
    /// (packed ones read it from their storage), once storages are located.
    pub(crate) fn fill_ranges(&mut self) {
        let storages = &self.storages;
        let fill = |t: &mut Tensor| {
            if let Some(i) = t.storage {
                t.byte_range = storages.get(i, "").map(|s| s.byte_range());
            }
        };
        for t in &mut self.packed.full {
            fill(t);
            if let TensorKind::Quantized(q) = &mut t.kind
                && let Quantization::PerChannel {
                    scales,
                    zero_points,
                    ..
                } = &mut **q
            {
                fill(scales);
                fill(zero_points);
            }
        }
    }

    /// Every tree line, unpacked.
    pub(crate) fn tree(&self) -> Vec<TreeItem> {
        let p = &self.packed;
        p.tree
            .iter()
            .filter_map(|item| {
                if item.kind_depth == PackedTreeItem::FULL {
                    return p.tree_full.get(item.key.start as usize).cloned();
                }
                Some(TreeItem {
                    depth: (item.kind_depth & PackedTreeItem::DEPTH) as usize,
                    key: p.str(item.key).to_owned(),
                    node: item.node(),
                })
            })
            .collect()
    }

    fn push_tree(&mut self, depth: usize, key: &str, node: TreeNode) {
        let packed = self
            .packed
            .text(key)
            .and_then(|span| PackedTreeItem::pack(depth, span, &node));
        match packed {
            Some(item) => self.packed.tree.push(item),
            // Unreachable for pickles within the engine's limits (depth at
            // most max_depth, text bounded by the pickle, fewer than u32
            // values); kept exact.
            None => {
                let index = u32::try_from(self.packed.tree_full.len()).unwrap_or(u32::MAX);
                self.packed.tree_full.push(TreeItem {
                    depth,
                    key: key.to_owned(),
                    node,
                });
                self.packed.tree.push(PackedTreeItem {
                    kind_depth: PackedTreeItem::FULL,
                    key: Span {
                        start: index,
                        len: 0,
                    },
                    value: 0,
                });
            }
        }
    }

    /// Give every storage the paths of its users, in walk order. Call once
    /// every pickle has been walked. Tensors, tree lines and storages stay
    /// packed.
    pub(crate) fn finish(&mut self) {
        let users = self.packed.tensors.iter().map(|p| {
            (p.flags & (PackedTensor::USER | PackedTensor::FULL) == PackedTensor::USER)
                .then_some((p.storage, p.path))
        });
        self.storages.finish(users);
    }

    /// Storage `index`, read in place.
    pub(crate) fn storage_ref(&self, index: usize) -> Option<StorageRef<'_>> {
        self.storages.get(index, &self.packed.text)
    }

    /// Every storage, unpacked.
    pub(crate) fn storages(&self) -> Vec<Storage> {
        (0..self.storages.len())
            .filter_map(|i| self.storage_ref(i).map(|s| s.to_storage()))
            .collect()
    }

    /// The shared copy of `text` (location tags and storage types: 50,000
    /// storages usually share one `cpu` and one type), from the storages'
    /// table of names.
    pub(crate) fn intern(&mut self, text: &str) -> Arc<str> {
        self.storages.intern(text)
    }
}

/// A container's children still to walk ([`Walker::walk`]), first to
/// last: each child with its key, the key read from the value graph only
/// when the child is walked (no path per child is held).
struct Batch {
    items: Vec<Child>,
    next: usize,
    /// The next pair of `items[next]` when it is [`Child::Pairs`].
    pair: usize,
    /// Depth of the children.
    depth: usize,
    /// The parent's path.
    parent: String,
}

/// Where a child lies under its parent.
#[derive(Debug, Clone, Copy)]
enum ChildKey {
    /// At the parent's path itself (a transparent wrapper's inner value).
    Same,
    /// At item `n` of a sequence.
    Index(u32),
    /// At a dict key or attribute name (`str(key)`).
    Key(ValueId),
    /// At `__state__` (an object's state that is not a dict).
    State,
}

/// Children still to walk: one, or every pair of a dict or SETITEMS batch,
/// read from it as the walk goes (a 50,000-entry state dict holds no list
/// of its children).
#[derive(Debug, Clone, Copy)]
enum Child {
    One(ValueId, ChildKey),
    /// The values of `Value::Dict` or `Value::SetItems` `id`, each under its
    /// key ([`Reader::pairs`]).
    Pairs(ValueId),
}

/// Where [`Reader::children`] puts the children it finds, in order.
struct ChildPaths<'w> {
    items: &'w mut Vec<Child>,
    /// Children in all (a [`Child::Pairs`] counts each pair).
    count: usize,
}

impl ChildPaths<'_> {
    fn one(&mut self, id: ValueId, key: ChildKey) {
        self.items.push(Child::One(id, key));
        self.count += 1;
    }

    /// Child `id` at item `n`.
    fn index(&mut self, id: ValueId, n: usize) {
        // Fewer items than values, and values are counted in u32.
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.one(id, ChildKey::Index(n));
    }

    /// Child `id` under `key`.
    fn key(&mut self, id: ValueId, key: ValueId) {
        self.one(id, ChildKey::Key(key));
    }

    /// Every pair of dict or SETITEMS batch `id`, `n` of them, each value
    /// under its key.
    fn pairs(&mut self, id: ValueId, n: usize) {
        if n > 0 {
            self.items.push(Child::Pairs(id));
            self.count += n;
        }
    }

    /// Child `id` at its parent's path itself (a transparent wrapper's
    /// inner value).
    fn same(&mut self, id: ValueId) {
        self.one(id, ChildKey::Same);
    }

    /// An object's state `id` that is not a dict, at `__state__`.
    fn state(&mut self, id: ValueId) {
        self.one(id, ChildKey::State);
    }

    fn len(&self) -> usize {
        self.count
    }

    /// Room for `n` more children at once: a 50,000-entry state dict's
    /// list would otherwise grow by doubling and leave its smaller copies
    /// behind as free but resident memory.
    fn expect(&mut self, n: usize) {
        self.items.reserve_exact(n);
    }
}

/// A storage as a persistent id declares it, before it is registered.
struct StorageDecl<'s> {
    /// The storage type, `module.name` (`torch`, `FloatStorage`).
    module: &'s str,
    name: &'s str,
    dtype: DType,
    key: Cow<'s, str>,
    location: &'s str,
    numel: u64,
    /// A legacy view's offset into the storage, in elements.
    view_offset: u64,
}

/// Dimensions of a tensor a [`TensorTaker`] takes, at most: more go
/// through the walk.
const MAX_TAKEN_NDIM: usize = 8;

/// One tensor a [`TensorTaker`] took, read back from [`Taken`]: what
/// `_rebuild_tensor(_v2)` was called with.
#[derive(Debug, Clone, Copy)]
struct TakenTensor<'t> {
    /// The storage key.
    key: &'t str,
    /// Storage type module and name, location: indices in [`Taken::names`].
    module: u16,
    name: u16,
    location: u16,
    dtype: DType,
    requires_grad: bool,
    numel: u64,
    view_offset: u64,
    offset: u64,
    ndim: usize,
    /// Shape then strides: the first `2 * ndim`.
    dims: [u64; 2 * MAX_TAKEN_NDIM],
}

impl TakenTensor<'_> {
    fn shape(&self) -> &[u64] {
        &self.dims[..self.ndim]
    }

    fn strides(&self) -> &[u64] {
        &self.dims[self.ndim..2 * self.ndim]
    }
}

/// The tensors a [`TensorTaker`] took while a pickle ran, by their
/// [`Value::Taken`] number, each encoded in a few bytes
/// ([`netport_io::varint`] integers, then the storage key): ~20 bytes for a
/// typical tensor, where a record of fixed fields with its dimensions took
/// ~70.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    bytes: Vec<u8>,
    /// Where each tensor starts in `bytes`.
    at: Vec<u32>,
    /// Storage type modules (field 0) and names (1), locations (2).
    names: Names,
}

impl Taken {
    /// How many tensors were taken.
    fn len(&self) -> usize {
        self.at.len()
    }

    /// Records a taken tensor; its number, or `None` (nothing recorded)
    /// when it has more than [`MAX_TAKEN_NDIM`] dimensions or the table is
    /// past `u32` offsets.
    fn push(
        &mut self,
        decl: &StorageDecl<'_>,
        requires_grad: bool,
        offset: u64,
        shape: &[u64],
        strides: &[u64],
    ) -> Option<u32> {
        if shape.len() > MAX_TAKEN_NDIM || shape.len() != strides.len() {
            return None;
        }
        let number = u32::try_from(self.at.len()).ok()?;
        let start = u32::try_from(self.bytes.len()).ok()?;
        let names = [
            self.names.index(0, decl.module)?,
            self.names.index(1, decl.name)?,
            self.names.index(2, decl.location)?,
        ];
        let out = &mut self.bytes;
        // The most a record of `MAX_TAKEN_NDIM` dimensions takes but its key.
        out.reserve(3 * 3 + 2 + (4 + 2 * MAX_TAKEN_NDIM + 1) * 10 + decl.key.len());
        for n in names {
            varint::put(out, u64::from(n));
        }
        out.push(decl.dtype as u8);
        out.push(u8::from(requires_grad));
        for v in [decl.numel, decl.view_offset, offset, shape.len() as u64] {
            varint::put(out, v);
        }
        for &d in shape.iter().chain(strides) {
            varint::put(out, d);
        }
        varint::put(out, decl.key.len() as u64);
        out.extend_from_slice(decl.key.as_bytes());
        if u32::try_from(out.len()).is_err() {
            out.truncate(start as usize);
            return None;
        }
        self.at.push(start);
        Some(number)
    }

    /// Taken tensor `n`, as [`push`](Self::push) recorded it.
    fn get(&self, n: u32) -> Option<TakenTensor<'_>> {
        let mut pos = *self.at.get(n as usize)? as usize;
        let b = &self.bytes[..];
        let mut uint = || varint::get(b, &mut pos);
        let mut name = || u16::try_from(uint()?).ok();
        let (module, name, location) = (name()?, name()?, name()?);
        let dtype = *DType::ALL.get(usize::from(*b.get(pos)?))?;
        let requires_grad = *b.get(pos + 1)? != 0;
        pos += 2;
        let mut uint = || varint::get(b, &mut pos);
        let (numel, view_offset, offset) = (uint()?, uint()?, uint()?);
        let ndim = usize::try_from(uint()?).ok()?;
        let mut dims = [0u64; 2 * MAX_TAKEN_NDIM];
        for d in dims.get_mut(..2 * ndim)? {
            *d = uint()?;
        }
        let key_len = usize::try_from(uint()?).ok()?;
        let key = std::str::from_utf8(b.get(pos..pos.checked_add(key_len)?)?).ok()?;
        Some(TakenTensor {
            key,
            module,
            name,
            location,
            dtype,
            requires_grad,
            numel,
            view_offset,
            offset,
            ndim,
            dims,
        })
    }

    fn name(&self, index: u16) -> &str {
        self.names.get(index)
    }

    /// The storage `t` declares.
    fn decl<'t>(&'t self, t: &TakenTensor<'t>) -> StorageDecl<'t> {
        StorageDecl {
            module: self.name(t.module),
            name: self.name(t.name),
            dtype: t.dtype,
            key: Cow::Borrowed(t.key),
            location: self.name(t.location),
            numel: t.numel,
            view_offset: t.view_offset,
        }
    }
}

/// Takes plain tensor rebuild calls over while a pickle runs
/// ([`netport_pickle::Machine::load_with`]): `_rebuild_tensor(storage,
/// offset, size, stride)` and `_rebuild_tensor_v2(storage, offset, size,
/// stride, requires_grad, hooks)` whose arguments read cleanly. The pickle
/// then keeps one value per tensor instead of its ~14-value argument tree
/// (a tuple persistent id, two dimension tuples, an `OrderedDict()`, ...),
/// and the walk finds [`Value::Taken`] where the call was.
///
/// Anything else, and any call whose arguments do not read cleanly, is
/// left to the walk, which reports it as before: what the taker records is
/// exactly what [`Walker::call`] would read, and storages are registered
/// and views checked only when the walk reaches the tensor, so the results
/// and their order do not depend on taking.
pub(crate) struct TensorTaker {
    taken: Taken,
    /// An empty table, for reading a call's arguments.
    none: Taken,
    source: Arc<str>,
    pid_style: PidStyle,
}

impl TensorTaker {
    pub(crate) fn new(source: &str, pid_style: PidStyle) -> Self {
        TensorTaker {
            taken: Taken::default(),
            none: Taken::default(),
            source: source.into(),
            pid_style,
        }
    }

    /// What was taken, its tables at their exact length (they live on
    /// through the walk).
    pub(crate) fn into_taken(self) -> Taken {
        let mut taken = self.taken;
        taken.bytes.shrink_to_fit();
        taken.at.shrink_to_fit();
        taken
    }
}

impl netport_pickle::Taker for TensorTaker {
    fn take(&mut self, arena: &Arena, callable: ValueId, args: ValueId) -> Option<u32> {
        let v2 = match arena.get(callable)? {
            Value::Global { module, name } if module.as_str() == "torch._utils" => {
                match name.as_str() {
                    "_rebuild_tensor_v2" => true,
                    "_rebuild_tensor" => false,
                    _ => return None,
                }
            }
            _ => return None,
        };
        // Calls inside the arguments are not looked into: an empty taken
        // table.
        let r = Reader::new(arena, &self.none, self.source.clone(), self.pid_style, 0);
        let a = r.items(args)?;
        // No metadata (conj, neg): those go through the walk.
        if a.len() != if v2 { 6 } else { 4 } {
            return None;
        }
        let decl = r.storage_decl(a[0], "").ok()?;
        let offset = r.int(a[1]).filter(|&o| o >= 0)? as u64;
        // What `Reader::dims` accepts, straight into the taken dimensions.
        let shape = r.items(r.dims_id(a[2]))?;
        let strides = r.items(r.dims_id(a[3]))?;
        if shape.len() != strides.len() {
            return None;
        }
        let requires_grad = v2 && matches!(r.v(a[4]), Value::Bool(true));
        if shape.len() > MAX_TAKEN_NDIM {
            return None;
        }
        let mut dims = [0u64; 2 * MAX_TAKEN_NDIM];
        let n = shape.len();
        for (d, &id) in dims.iter_mut().zip(shape.iter().chain(strides)) {
            *d = r.dim(id)?;
        }
        self.taken
            .push(&decl, requires_grad, offset, &dims[..n], &dims[n..2 * n])
    }

    /// The pickle's pages the machine has passed need not stay resident:
    /// the values own their bytes, and a page read again (the run after
    /// the pass that finds the memo reads) comes back from the page cache.
    fn passed(&mut self, bytes: &[u8]) {
        netport_io::release(bytes);
    }
}

/// Reads the values of one pickle: what they say, without recording
/// anything (the part of the walk a [`TensorTaker`] also needs while the
/// pickle still runs).
pub(crate) struct Reader<'a> {
    arena: &'a Arena,
    /// What the pickle's taken calls were.
    taken: &'a Taken,
    source: Arc<str>,
    pid_style: PidStyle,
    max_repr: usize,
}

/// The tensor index of every taken tensor the walk has reached, by its
/// number. While the walk reaches them in number order from 0, each right
/// after the one before (a state dict), a rule says it and no table is
/// held; the first one out of that order makes the table.
struct TakenSeen {
    /// Taken tensors in all.
    len: usize,
    /// Rule: numbers `0..next` are reached, `n` is tensor `n + first`.
    next: u32,
    first: u32,
    /// Table (once the rule is broken): `u32::MAX` for not reached.
    table: Vec<u32>,
}

impl TakenSeen {
    fn new(len: usize) -> Self {
        TakenSeen {
            len,
            next: 0,
            first: 0,
            table: Vec::new(),
        }
    }

    /// The tensor index of taken tensor `n`, if reached.
    fn get(&self, n: u32) -> Option<usize> {
        if self.table.is_empty() {
            return (n < self.next).then(|| (n + self.first) as usize);
        }
        self.table
            .get(n as usize)
            .filter(|&&i| i != u32::MAX)
            .map(|&i| i as usize)
    }

    /// Taken tensor `n` is tensor `index`; `false` when that cannot be held
    /// (a number or index past `u32`).
    fn set(&mut self, n: u32, index: usize) -> bool {
        let Ok(i) = u32::try_from(index) else {
            return false;
        };
        if i == u32::MAX || n as usize >= self.len {
            return false;
        }
        if self.table.is_empty() {
            if self.next == 0 && n == 0 {
                (self.next, self.first) = (1, i);
                return true;
            }
            if n == self.next && self.first.checked_add(n) == Some(i) {
                self.next += 1;
                return true;
            }
            // Out of order: the table from here on.
            self.table = vec![u32::MAX; self.len];
            for k in 0..self.next {
                self.table[k as usize] = k + self.first;
            }
        }
        self.table[n as usize] = i;
        true
    }
}

/// Walks one pickle into a [`Collected`].
pub(crate) struct Walker<'a> {
    r: Reader<'a>,
    /// Directory of this pickle's storage records (`data`, `constants`).
    storage_dir: Option<Arc<str>>,
    out: &'a mut Collected,
    expanded: HashMap<ValueId, String>,
    tensor_cache: HashMap<ValueId, usize>,
    /// The tensor index of every taken tensor the walk has reached, by its
    /// [`Value::Taken`] number: a taken value reached again (tied weights)
    /// is the same tensor.
    taken_seen: TakenSeen,
    /// Storage resolved per persistent-id node: (storage index, view offset
    /// in storage elements).
    pid_cache: HashMap<ValueId, (usize, u64)>,
    /// The tree node recorded by the current walk step.
    last_node: Option<TreeNode>,
    /// The last storage type seen (module, name, shared text): storages of
    /// one checkpoint usually share one, so it is formatted once.
    last_storage_type: Option<(&'a str, &'a str, Arc<str>)>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(
        arena: &'a Arena,
        taken: &'a Taken,
        source: Arc<str>,
        pid_style: PidStyle,
        max_repr: usize,
    ) -> Self {
        Reader {
            arena,
            taken,
            source,
            pid_style,
            max_repr,
        }
    }
}

impl<'a> std::ops::Deref for Walker<'a> {
    type Target = Reader<'a>;

    fn deref(&self) -> &Reader<'a> {
        &self.r
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

const TENSOR_FUNCS: &[&str] = &[
    "_rebuild_tensor",
    "_rebuild_tensor_v2",
    "_rebuild_tensor_v3",
    "_rebuild_parameter",
    "_rebuild_parameter_with_state",
    "_rebuild_qtensor",
    "_rebuild_meta_tensor_no_storage",
    "_rebuild_device_tensor_from_cpu_tensor",
    "_rebuild_device_tensor_from_numpy",
    "_rebuild_xla_tensor",
    "_rebuild_wrapper_subclass",
    "_rebuild_sparse_tensor",
    "_rebuild_nested_tensor",
    "_rebuild_sparse_csr_tensor",
    "_rebuild_mkldnn_tensor",
];

/// Values per storage byte of torch's packed quantized dtypes, whose shapes
/// count values (`quint4x2`: 2, `quint2x4`: 4); 1 for every other dtype.
pub(crate) fn values_per_byte(dtype: DType) -> u64 {
    match dtype {
        DType::QUInt4x2 => 2,
        DType::QUInt2x4 => 4,
        _ => 1,
    }
}

/// Bytes a view needs, counting packed dtypes' values per byte.
pub(crate) fn needed_bytes(
    dtype: DType,
    shape: &[u64],
    strides: &[u64],
    offset: u64,
) -> Result<u64, String> {
    let k = values_per_byte(dtype);
    let needed = required_bytes(dtype, shape, strides, offset).map_err(|e| e.to_string())?;
    Ok(needed.div_ceil(k))
}

fn is_numpy_core(module: &str) -> bool {
    matches!(module, "numpy.core.multiarray" | "numpy._core.multiarray")
}

impl<'a> Walker<'a> {
    pub(crate) fn new(
        arena: &'a Arena,
        taken: &'a Taken,
        source: &str,
        storage_dir: Option<&str>,
        pid_style: PidStyle,
        max_repr: usize,
        out: &'a mut Collected,
    ) -> Self {
        Walker {
            r: Reader::new(arena, taken, source.into(), pid_style, max_repr),
            storage_dir: storage_dir.map(Arc::from),
            out,
            expanded: HashMap::default(),
            tensor_cache: HashMap::default(),
            taken_seen: TakenSeen::new(taken.len()),
            pid_cache: HashMap::default(),
            last_node: None,
            last_storage_type: None,
        }
    }
}

impl<'a> Reader<'a> {
    fn v(&self, id: ValueId) -> &'a Value {
        static NONE: Value = Value::None;
        self.arena.get(id).unwrap_or(&NONE)
    }

    fn global(&self, id: ValueId) -> Option<(&'a str, &'a str)> {
        match self.v(id) {
            Value::Global { module, name } => Some((module, name)),
            _ => None,
        }
    }

    fn items(&self, id: ValueId) -> Option<&'a [ValueId]> {
        match self.v(id) {
            Value::Tuple(items) | Value::List(items) => Some(items),
            _ => None,
        }
    }

    fn err(&self, path: &str, reason: impl Into<String>) -> TorchError {
        TorchError::BadObject {
            pickle: self.source.to_string(),
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    fn int(&self, id: ValueId) -> Option<i64> {
        match self.v(id) {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            Value::BigInt(b) => b.to_i64(),
            _ => None,
        }
    }

    fn float(&self, id: ValueId) -> Option<f64> {
        match self.v(id) {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    fn str_of(&self, id: ValueId) -> Option<&'a str> {
        match self.v(id) {
            Value::Str(s) => Some(s),
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The tuple of dimensions at `id` (also inside `torch.Size(...)`).
    fn dims_id(&self, id: ValueId) -> ValueId {
        match self.v(id) {
            Value::Reduce { callable, args }
                if self.global(*callable) == Some(("torch", "Size")) =>
            {
                self.items(*args)
                    .and_then(|a| a.first().copied())
                    .unwrap_or(id)
            }
            _ => id,
        }
    }

    /// A dimension: a non-negative int.
    fn dim(&self, id: ValueId) -> Option<u64> {
        self.int(id).and_then(|x| u64::try_from(x).ok())
    }

    /// A tuple of non-negative ints (also inside `torch.Size(...)`).
    fn dims(&self, id: ValueId, path: &str, what: &str) -> Result<Vec<u64>, TorchError> {
        let id = self.dims_id(id);
        let items = self.items(id).ok_or_else(|| {
            self.err(
                path,
                format!(
                    "{what} is a {}, expected a tuple of ints",
                    self.v(id).kind()
                ),
            )
        })?;
        items
            .iter()
            .map(|&i| match self.int(i) {
                Some(x) if x >= 0 => Ok(x as u64),
                Some(x) => Err(self.err(path, format!("{what} contains the negative value {x}"))),
                None => Err(self.err(
                    path,
                    format!("{what} contains a {}, expected an int", self.v(i).kind()),
                )),
            })
            .collect()
    }

    fn dtype_arg(&self, id: ValueId, path: &str) -> Result<DType, TorchError> {
        match self.global(id) {
            Some(("torch", name)) => DType::from_torch_name(name)
                .ok_or_else(|| self.err(path, format!("unknown dtype torch.{name}"))),
            Some((m, n)) => Err(self.err(
                path,
                format!("dtype argument is the global {m}.{n}, expected torch.<dtype>"),
            )),
            None => Err(self.err(
                path,
                format!(
                    "dtype argument is a {}, expected a torch dtype global",
                    self.v(id).kind()
                ),
            )),
        }
    }

    /// What the storage persistent id at `id` declares.
    fn storage_decl(&self, id: ValueId, path: &str) -> Result<StorageDecl<'a>, TorchError> {
        let Value::PersistentId(pid) = self.v(id) else {
            return Err(self.err(
                path,
                format!(
                    "the storage argument is a {}, expected a persistent id",
                    self.v(id).kind()
                ),
            ));
        };
        let fields = self.items(*pid).ok_or_else(|| {
            self.err(
                path,
                format!(
                    "persistent id is a {}, expected a tuple",
                    self.v(*pid).kind()
                ),
            )
        })?;
        // Zip and TorchScript: 5 fields (very old TorchScript: a 6th,
        // `None`); legacy: 6 (the last is the view metadata).
        let (min, max) = match self.pid_style {
            PidStyle::Zip => (5, 6),
            PidStyle::Legacy => (6, 6),
        };
        if fields.len() < min || fields.len() > max {
            return Err(self.err(
                path,
                format!(
                    "persistent id has {} fields, expected ('storage', type, key, location, numel)",
                    fields.len()
                ),
            ));
        }
        if self.str_of(fields[0]) != Some("storage") {
            return Err(self.err(
                path,
                format!(
                    "persistent id tag is {}, expected 'storage'",
                    self.repr(fields[0])
                ),
            ));
        }
        let (smod, sname) = self.global(fields[1]).ok_or_else(|| {
            self.err(
                path,
                format!(
                    "persistent id storage type is a {}, expected a global",
                    self.v(fields[1]).kind()
                ),
            )
        })?;
        let dtype = if sname == "UntypedStorage" {
            DType::UInt8
        } else {
            DType::from_storage_class(sname)
                .ok_or_else(|| self.err(path, format!("unknown storage type {smod}.{sname}")))?
        };
        let key: Cow<'a, str> = match self.v(fields[2]) {
            Value::Str(s) => Cow::Borrowed(s),
            Value::Int(i) => Cow::Owned(i.to_string()),
            other => {
                return Err(self.err(
                    path,
                    format!("persistent id key is a {}, expected a string", other.kind()),
                ));
            }
        };
        let location = self.str_of(fields[3]).ok_or_else(|| {
            self.err(
                path,
                format!(
                    "persistent id location of storage '{key}' is a {} ({}), expected a string such as 'cpu'",
                    self.v(fields[3]).kind(),
                    self.repr(fields[3])
                ),
            )
        })?;
        let numel = self.int(fields[4]).filter(|&n| n >= 0).ok_or_else(|| {
            self.err(
                path,
                format!(
                    "persistent id element count of storage '{key}' is {}, expected an int >= 0",
                    self.repr(fields[4])
                ),
            )
        })? as u64;
        // Legacy view metadata: (view_key, offset, view_size), in elements.
        let mut view_offset = 0;
        if let Some(&meta) = fields.get(5)
            && !matches!(self.v(meta), Value::None)
        {
            let m = self.items(meta).filter(|m| m.len() == 3).ok_or_else(|| {
                self.err(
                    path,
                    format!(
                        "storage view metadata is {}, expected (view_key, offset, size)",
                        self.repr(meta)
                    ),
                )
            })?;
            let off = self.int(m[1]).filter(|&o| o >= 0);
            let size = self.int(m[2]).filter(|&s| s >= 0);
            match (off, size) {
                (Some(o), Some(s))
                    if (o as u64).checked_add(s as u64).is_some_and(|e| e <= numel) =>
                {
                    view_offset = o as u64;
                }
                _ => {
                    return Err(self.err(
                        path,
                        format!(
                            "storage view {} does not fit in storage '{key}' of {numel} elements",
                            self.repr(meta)
                        ),
                    ));
                }
            }
        }
        Ok(StorageDecl {
            module: smod,
            name: sname,
            dtype,
            key,
            location,
            numel,
            view_offset,
        })
    }
}

impl<'a> Walker<'a> {
    /// Resolve the storage persistent id at `id` (after memo sharing).
    fn storage(&mut self, id: ValueId, path: &str) -> Result<(usize, u64), TorchError> {
        if let Some(&hit) = self.pid_cache.get(&id) {
            return Ok(hit);
        }
        let decl = self.storage_decl(id, path)?;
        let index = self.register(&decl, path)?;
        self.pid_cache.insert(id, (index, decl.view_offset));
        Ok((index, decl.view_offset))
    }

    /// The storage `decl` declares: the one registered earlier under its
    /// key (which must agree in size), or a new one.
    fn register(&mut self, decl: &StorageDecl<'a>, path: &str) -> Result<usize, TorchError> {
        let StorageDecl {
            module: smod,
            name: sname,
            dtype,
            ref key,
            location,
            numel,
            ..
        } = *decl;
        let key: &str = key;
        let dir = self.storage_dir.as_deref();
        let hash = match self.out.storages.lookup(dir, key) {
            Err(hash) => hash,
            Ok(index) => {
                let s = self
                    .out
                    .storage_ref(index)
                    .ok_or_else(|| self.err(path, "unknown storage"))?;
                if s.nbytes() != numel.checked_mul(dtype.size_in_bytes() as u64) {
                    return Err(TorchError::BadStorage {
                        key: key.to_owned(),
                        pickle: self.source.to_string(),
                        reason: format!(
                            "declared as {numel} x {dtype} at '{path}' but earlier as {} x {}",
                            s.numel(),
                            s.dtype()
                        ),
                    });
                }
                return Ok(index);
            }
        };
        let storage_type = match &self.last_storage_type {
            Some((m, n, t)) if *m == smod && *n == sname => t.clone(),
            _ => {
                let t = self.out.intern(&format!("{smod}.{sname}"));
                self.last_storage_type = Some((smod, sname, t.clone()));
                t
            }
        };
        Ok(self.out.storages.declare(
            &NewStorage {
                dir,
                key,
                source: &self.r.source,
                storage_type: &storage_type,
                dtype,
                numel,
                location,
            },
            hash,
        ))
    }

    /// A tensor that views a storage, bounds-checked.
    #[allow(clippy::too_many_arguments)]
    fn strided(
        &mut self,
        path: &str,
        storage_arg: ValueId,
        offset_arg: ValueId,
        size_arg: ValueId,
        stride_arg: ValueId,
        dtype: Option<DType>,
        kind: TensorKind,
    ) -> Result<Tensor, TorchError> {
        let (index, view_offset) = self.storage(storage_arg, path)?;
        let offset = self.int(offset_arg).filter(|&o| o >= 0).ok_or_else(|| {
            self.err(
                path,
                format!(
                    "storage offset is {}, expected an int >= 0",
                    self.repr(offset_arg)
                ),
            )
        })? as u64;
        let shape = self.dims(size_arg, path, "size")?;
        let strides = self.dims(stride_arg, path, "stride")?;
        if shape.len() != strides.len() {
            return Err(self.err(
                path,
                format!("size {shape:?} and stride {strides:?} have different lengths"),
            ));
        }
        self.view(
            path,
            (index, view_offset),
            offset,
            &shape,
            &strides,
            dtype,
            kind,
        )
    }

    /// The tensor at `path` that views storage `index` (with a legacy
    /// view's offset), bounds-checked against the storage.
    #[allow(clippy::too_many_arguments)]
    fn view(
        &mut self,
        path: &str,
        (index, view_offset): (usize, u64),
        offset: u64,
        shape: &[u64],
        strides: &[u64],
        dtype: Option<DType>,
        kind: TensorKind,
    ) -> Result<Tensor, TorchError> {
        let (dtype, offset) =
            self.check_view(path, index, view_offset, offset, shape, strides, dtype)?;
        let view = View {
            path,
            source: &self.r.source,
            storage: index,
            dtype,
            shape,
            strides,
            offset,
        };
        let t = self.out.tensor_of(&view, kind, false);
        self.out.add_user(index, path);
        Ok(t)
    }

    /// The dtype and offset (in its elements) of a view of storage
    /// `index`, checked to lie inside the storage.
    #[allow(clippy::too_many_arguments)]
    fn check_view(
        &self,
        path: &str,
        index: usize,
        view_offset: u64,
        offset: u64,
        shape: &[u64],
        strides: &[u64],
        dtype: Option<DType>,
    ) -> Result<(DType, u64), TorchError> {
        let s = self
            .out
            .storage_ref(index)
            .ok_or_else(|| self.err(path, "unknown storage"))?;
        let dtype = dtype.unwrap_or(s.dtype());
        // Legacy views add their offset, in storage elements; convert to
        // tensor elements (same dtype in legacy files).
        let offset = offset
            .checked_add(view_offset)
            .ok_or_else(|| self.err(path, "storage offset overflows"))?;
        let available = s.nbytes().unwrap_or(u64::MAX);
        let needed = needed_bytes(dtype, shape, strides, offset).map_err(|e| self.err(path, e))?;
        if needed > available {
            return Err(TorchError::TensorOutOfBounds(Box::new(
                crate::error::OutOfBounds {
                    pickle: self.source.to_string(),
                    path: path.to_owned(),
                    shape: shape.to_vec(),
                    strides: strides.to_vec(),
                    offset,
                    dtype: dtype.to_string(),
                    key: s.key().to_owned(),
                    needed,
                    available,
                },
            )));
        }
        Ok((dtype, offset))
    }

    /// The view a [`TensorTaker`] took as number `n`, at `path`: its
    /// storage registered and the view checked, exactly as [`Walker::call`]
    /// does for the call it stands for (which then records the user: the
    /// caller's part).
    fn taken_view(&mut self, n: u32, path: &str) -> Result<TakenView<'a>, TorchError> {
        let taken = self.r.taken;
        let t = taken
            .get(n)
            .ok_or_else(|| self.err(path, format!("taken call #{n} is not recorded")))?;
        let decl = taken.decl(&t);
        let storage = self.register(&decl, path)?;
        let (shape, strides) = (t.shape(), t.strides());
        let (dtype, offset) =
            self.check_view(path, storage, t.view_offset, t.offset, shape, strides, None)?;
        Ok(TakenView {
            storage,
            dtype,
            offset,
            tensor: t,
        })
    }

    /// Record taken tensor `n` straight into its packed record (no
    /// [`Tensor`] in between).
    fn push_taken(&mut self, n: u32, path: &str) -> Result<(), TorchError> {
        let v = self.taken_view(n, path)?;
        let view = v.at(path, &self.r.source);
        self.out.push_user_view(&view, v.tensor.requires_grad);
        Ok(())
    }

    fn metadata(&self, t: &mut Tensor, meta: Option<ValueId>) {
        let Some(meta) = meta else { return };
        if let Value::Dict(pairs) = self.v(meta) {
            for &(k, v) in pairs {
                let on = matches!(self.v(v), Value::Bool(true));
                match self.str_of(k) {
                    Some("conj") => t.conj = on,
                    Some("neg") => t.neg = on,
                    _ => {}
                }
            }
        }
    }

    /// If `id` is a tensor rebuild call, interpret it.
    fn tensor_call(&mut self, id: ValueId, path: &str) -> Result<Option<Tensor>, TorchError> {
        let (callable, args) = match self.v(id) {
            Value::Reduce { callable, args } => (callable, args),
            Value::Taken(n) => return self.taken_tensor(*n, path).map(Some),
            _ => return Ok(None),
        };
        let Some(func) = self.global(*callable) else {
            return Ok(None);
        };
        self.call(func, *args, path)
    }

    /// The tensor a [`TensorTaker`] took as number `n`, as a [`Tensor`]
    /// (inside `_rebuild_parameter` and the like).
    fn taken_tensor(&mut self, n: u32, path: &str) -> Result<Tensor, TorchError> {
        let v = self.taken_view(n, path)?;
        self.out.add_user(v.storage, path);
        let view = v.at(path, &self.r.source);
        Ok(self
            .out
            .tensor_of(&view, TensorKind::Dense, v.tensor.requires_grad))
    }

    /// Interpret `func(*args)` when `func` is a tensor rebuild function.
    fn call(
        &mut self,
        func: (&str, &str),
        args: ValueId,
        path: &str,
    ) -> Result<Option<Tensor>, TorchError> {
        let (module, name) = func;
        let known = match module {
            "torch._utils" => TENSOR_FUNCS.contains(&name),
            "torch._tensor" => name == "_rebuild_from_type_v2",
            _ => false,
        };
        if !known {
            return Ok(None);
        }
        let a = self.items(args).ok_or_else(|| {
            self.err(
                path,
                format!(
                    "arguments of {module}.{name} are a {}, expected a tuple",
                    self.v(args).kind()
                ),
            )
        })?;
        let need = |n: usize| -> Result<(), TorchError> {
            if a.len() < n {
                Err(self.err(
                    path,
                    format!(
                        "{module}.{name} has {} arguments, expected at least {n}",
                        a.len()
                    ),
                ))
            } else {
                Ok(())
            }
        };
        let rg = |w: &Self, i: usize| {
            a.get(i)
                .is_some_and(|&x| matches!(w.v(x), Value::Bool(true)))
        };
        let t = match name {
            "_rebuild_tensor" => {
                need(4)?;
                self.strided(path, a[0], a[1], a[2], a[3], None, TensorKind::Dense)?
            }
            "_rebuild_tensor_v2" => {
                need(6)?;
                let mut t = self.strided(path, a[0], a[1], a[2], a[3], None, TensorKind::Dense)?;
                t.requires_grad = rg(self, 4);
                self.metadata(&mut t, a.get(6).copied());
                t
            }
            "_rebuild_tensor_v3" => {
                need(7)?;
                let dtype = self.dtype_arg(a[6], path)?;
                let mut t =
                    self.strided(path, a[0], a[1], a[2], a[3], Some(dtype), TensorKind::Dense)?;
                t.requires_grad = rg(self, 4);
                self.metadata(&mut t, a.get(7).copied());
                t
            }
            "_rebuild_parameter" | "_rebuild_parameter_with_state" => {
                need(2)?;
                let mut t = self.tensor_call(a[0], path)?.ok_or_else(|| {
                    self.err(
                        path,
                        format!(
                            "the data of {name} is a {}, expected a tensor",
                            self.v(a[0]).kind()
                        ),
                    )
                })?;
                if t.kind == TensorKind::Dense {
                    t.kind = TensorKind::Parameter;
                }
                t.requires_grad = rg(self, 1);
                t
            }
            "_rebuild_from_type_v2" => {
                need(3)?;
                let inner = self.global(a[0]).ok_or_else(|| {
                    self.err(
                        path,
                        "the function of _rebuild_from_type_v2 is not a global",
                    )
                })?;
                let mut t = self.call(inner, a[2], path)?.ok_or_else(|| {
                    self.err(
                        path,
                        format!(
                            "_rebuild_from_type_v2 calls {}.{}, not a tensor rebuild function",
                            inner.0, inner.1
                        ),
                    )
                })?;
                match self.global(a[1]) {
                    Some(("torch", "Tensor")) | Some(("torch._tensor", "Tensor")) => {}
                    Some(("torch.nn.parameter", "Parameter")) if t.kind == TensorKind::Dense => {
                        t.kind = TensorKind::Parameter;
                    }
                    Some(("torch.nn.parameter", "Parameter")) => {}
                    Some((m, n)) => {
                        if matches!(t.kind, TensorKind::Dense | TensorKind::Parameter) {
                            t.kind = TensorKind::Subclass {
                                class: format!("{m}.{n}"),
                            };
                        }
                    }
                    None => {}
                }
                t
            }
            "_rebuild_qtensor" => {
                need(6)?;
                let q = self.qparams(a[4], path)?;
                let mut t = self.strided(
                    path,
                    a[0],
                    a[1],
                    a[2],
                    a[3],
                    None,
                    TensorKind::Quantized(Box::new(q)),
                )?;
                t.requires_grad = rg(self, 5);
                t
            }
            "_rebuild_meta_tensor_no_storage" => {
                need(3)?;
                let dtype = self.dtype_arg(a[0], path)?;
                let shape = self.dims(a[1], path, "size")?;
                let strides = self.dims(a[2], path, "stride")?;
                Tensor {
                    path: path.to_owned(),
                    source: self.source.clone(),
                    dtype,
                    shape,
                    strides,
                    storage_offset: 0,
                    device: "meta".into(),
                    storage: None,
                    storage_key: None,
                    byte_range: None,
                    kind: TensorKind::Meta,
                    requires_grad: rg(self, 3),
                    conj: false,
                    neg: false,
                }
            }
            "_rebuild_device_tensor_from_cpu_tensor" => {
                need(3)?;
                let mut t = self.tensor_call(a[0], path)?.ok_or_else(|| {
                    self.err(
                        path,
                        format!(
                            "the data of {name} is a {}, expected a tensor",
                            self.v(a[0]).kind()
                        ),
                    )
                })?;
                if let Some(d) = self.str_of(a[2]) {
                    t.device = self.out.intern(d);
                }
                t.requires_grad = rg(self, 3);
                t
            }
            _ => return self.unsupported(module, name, a, path).map(Some),
        };
        Ok(Some(t))
    }

    /// A tensor that cannot be materialised; its component tensors become
    /// separate entries.
    fn unsupported(
        &mut self,
        module: &str,
        name: &str,
        a: &[ValueId],
        path: &str,
    ) -> Result<Tensor, TorchError> {
        let mut dtype = DType::UInt8;
        let mut shape = Vec::new();
        let mut strides = Vec::new();
        let mut device = String::new();
        let components: Vec<(String, ValueId)> = match name {
            "_rebuild_sparse_tensor" => {
                let layout = a.first().map(|&l| self.repr(l)).unwrap_or_default();
                let parts = a.get(1).and_then(|&d| self.items(d)).unwrap_or(&[]);
                let names: &[&str] = if layout.contains("sparse_coo") {
                    &["indices", "values", "size", "is_coalesced"]
                } else if layout.contains("csr") || layout.contains("bsr") {
                    &["crow_indices", "col_indices", "values", "size"]
                } else {
                    &["ccol_indices", "row_indices", "values", "size"]
                };
                if let Some(&s) = parts
                    .iter()
                    .zip(names)
                    .find(|(_, n)| **n == "size")
                    .map(|(v, _)| v)
                {
                    shape = self.dims(s, path, "size").unwrap_or_default();
                }
                parts
                    .iter()
                    .zip(names)
                    .filter(|(_, n)| !matches!(**n, "size" | "is_coalesced"))
                    .map(|(&v, n)| (join(path, n), v))
                    .collect()
            }
            "_rebuild_nested_tensor" => ["buffer", "sizes", "strides", "storage_offsets"]
                .iter()
                .zip(a)
                .map(|(n, &v)| (join(path, n), v))
                .collect(),
            "_rebuild_wrapper_subclass" => {
                if let Some(&d) = a.get(1) {
                    dtype = self.dtype_arg(d, path).unwrap_or(DType::UInt8);
                }
                if let Some(&s) = a.get(2) {
                    shape = self.dims(s, path, "size").unwrap_or_default();
                }
                if let Some(&s) = a.get(3) {
                    strides = self.dims(s, path, "stride").unwrap_or_default();
                }
                if let Some(&d) = a.get(6) {
                    device = self.repr(d);
                }
                Vec::new()
            }
            "_rebuild_device_tensor_from_numpy" | "_rebuild_xla_tensor" => {
                if let Some(&d) = a.get(1) {
                    dtype = self.dtype_arg(d, path).unwrap_or(DType::UInt8);
                }
                if let Some(d) = a.get(2).and_then(|&d| self.str_of(d)) {
                    device = d.to_owned();
                }
                Vec::new()
            }
            _ => a
                .iter()
                .enumerate()
                .map(|(i, &v)| (join(path, &i.to_string()), v))
                .collect(),
        };
        let mut first_dtype = None;
        for (p, v) in components {
            if let Some(t) = self.tensor_call(v, &p)? {
                // The element type of a sparse tensor is its values'; of a
                // nested tensor its buffer's.
                if p.ends_with(".values") || p.ends_with(".buffer") {
                    first_dtype = Some((t.dtype, t.device.clone()));
                }
                self.out.push_tensor(t);
            }
        }
        if name == "_rebuild_sparse_tensor" || name == "_rebuild_nested_tensor" {
            // dtype/device of the values (sparse) or buffer (nested).
            if let Some((d, dev)) = first_dtype {
                dtype = d;
                device = dev.to_string();
            }
        }
        Ok(Tensor {
            path: path.to_owned(),
            source: self.source.clone(),
            dtype,
            shape,
            strides,
            storage_offset: 0,
            device: self.out.intern(&device),
            storage: None,
            storage_key: None,
            byte_range: None,
            kind: TensorKind::Unsupported {
                function: format!("{module}.{name}"),
            },
            requires_grad: false,
            conj: false,
            neg: false,
        })
    }

    fn qparams(&mut self, id: ValueId, path: &str) -> Result<Quantization, TorchError> {
        let q = self.items(id).ok_or_else(|| {
            self.err(
                path,
                format!(
                    "quantizer parameters are a {}, expected a tuple",
                    self.v(id).kind()
                ),
            )
        })?;
        let scheme = q
            .first()
            .and_then(|&s| self.global(s))
            .map(|(_, n)| n.to_owned())
            .ok_or_else(|| {
                self.err(
                    path,
                    "quantizer parameters do not start with a qscheme global",
                )
            })?;
        match scheme.as_str() {
            "per_tensor_affine" | "per_tensor_symmetric" if q.len() >= 3 => {
                Ok(Quantization::PerTensor {
                    scale: self
                        .float(q[1])
                        .ok_or_else(|| self.err(path, "quantizer scale is not a float"))?,
                    zero_point: self
                        .int(q[2])
                        .ok_or_else(|| self.err(path, "quantizer zero point is not an int"))?,
                    qscheme: scheme,
                })
            }
            "per_channel_affine" | "per_channel_symmetric" | "per_channel_affine_float_qparams"
                if q.len() >= 4 =>
            {
                let sp = join(path, "q_per_channel_scales");
                let zp = join(path, "q_per_channel_zero_points");
                let scales = self
                    .tensor_call(q[1], &sp)?
                    .ok_or_else(|| self.err(path, "per-channel scales are not a tensor"))?;
                let zero_points = self
                    .tensor_call(q[2], &zp)?
                    .ok_or_else(|| self.err(path, "per-channel zero points are not a tensor"))?;
                Ok(Quantization::PerChannel {
                    qscheme: scheme,
                    scales: Box::new(scales),
                    zero_points: Box::new(zero_points),
                    axis: self
                        .int(q[3])
                        .ok_or_else(|| self.err(path, "per-channel axis is not an int"))?,
                })
            }
            other => Err(self.err(
                path,
                format!("unsupported qscheme {other} with {} parameters", q.len()),
            )),
        }
    }

    fn push_value(&mut self, path: &str, id: ValueId, leaf: Leaf) {
        let repr = self.repr(id);
        self.last_node = Some(TreeNode::Value(self.out.values.len()));
        self.out.values.push(ValueEntry {
            path: path.to_owned(),
            source: self.source.clone(),
            leaf,
            repr,
        });
    }
}

impl<'a> Reader<'a> {
    /// The class name of an object node (`NewObj`, `Reduce`), looking
    /// through mutation wrappers.
    fn class_of(&self, mut id: ValueId) -> Option<String> {
        for _ in 0..8 {
            match self.v(id) {
                Value::NewObj { cls, .. } => {
                    return self.global(*cls).map(|(m, n)| format!("{m}.{n}"));
                }
                Value::Reduce { callable, args } => {
                    return match self.global(*callable) {
                        Some(("copyreg" | "copy_reg", "_reconstructor")) => self
                            .items(*args)
                            .and_then(|a| a.first().copied())
                            .and_then(|c| self.global(c))
                            .map(|(m, n)| format!("{m}.{n}")),
                        Some((m, n)) => Some(format!("{m}.{n}")),
                        None => None,
                    };
                }
                Value::Build { obj, .. }
                | Value::SetItems { obj, .. }
                | Value::Appends { obj, .. }
                | Value::AddItems { obj, .. } => id = *obj,
                _ => return None,
            }
        }
        None
    }
}

impl<'a> Walker<'a> {
    /// Walk the graph from `root` at `root_path`.
    pub(crate) fn walk(&mut self, root: ValueId, root_path: &str) -> Result<(), TorchError> {
        // The children still to walk, batch after batch.
        let mut batches: Vec<Batch> = Vec::new();
        // The step's path; its key is `path[key_start..]`.
        let mut path = String::from(root_path);
        let mut key = String::new();
        let mut next = Some((root, 0usize, 0usize));
        while let Some((id, depth, key_start)) = next {
            key.clear();
            match path.get(key_start..) {
                Some("") | None if depth == 0 => key.push_str("(root)"),
                Some(k) => key.push_str(k),
                None => key.push_str(&path),
            }
            let mut items = Vec::new();
            let mut children = ChildPaths {
                items: &mut items,
                count: 0,
            };
            self.walk_one(id, &path, &mut children)?;
            // Every step records what it found: a tensor, a value (objects
            // included) or a container.
            if let Some(node) = self.last_node.take() {
                self.out.push_tree(depth, &key, node);
            }
            if !items.is_empty() {
                batches.push(Batch {
                    items,
                    next: 0,
                    pair: 0,
                    depth: depth + 1,
                    parent: path.clone(),
                });
            }
            next = None;
            while let Some(b) = batches.last_mut() {
                let (child, child_key) = match b.items.get(b.next) {
                    None => {
                        batches.pop();
                        continue;
                    }
                    Some(&Child::One(child, key)) => {
                        b.next += 1;
                        (child, key)
                    }
                    Some(&Child::Pairs(id)) => match self.r.pairs(id).get(b.pair) {
                        Some(&(k, v)) => {
                            b.pair += 1;
                            (v, ChildKey::Key(k))
                        }
                        None => {
                            b.next += 1;
                            b.pair = 0;
                            continue;
                        }
                    },
                };
                path.clear();
                path.push_str(&b.parent);
                let key_start = match child_key {
                    // The whole path is the key.
                    ChildKey::Same => 0,
                    ChildKey::Index(_) | ChildKey::Key(_) | ChildKey::State => {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        let at = path.len();
                        match child_key {
                            ChildKey::Index(n) => {
                                let _ = write!(path, "{n}");
                            }
                            ChildKey::Key(k) => path.push_str(&self.key_str(k)),
                            _ => path.push_str("__state__"),
                        }
                        at
                    }
                };
                next = Some((child, b.depth, key_start));
                break;
            }
        }
        Ok(())
    }

    /// One step of [`walk`](Self::walk): records the node at `path` and
    /// pushes its children.
    fn walk_one(
        &mut self,
        id: ValueId,
        path: &str,
        children: &mut ChildPaths<'_>,
    ) -> Result<(), TorchError> {
        {
            // Tensors first (also for repeated references).
            let seen = match self.v(id) {
                Value::Taken(n) => self.taken_seen.get(*n),
                _ => self.tensor_cache.get(&id).copied(),
            };
            if let Some(i) = seen {
                let Some(mut t) = self.out.tensor(i) else {
                    return Err(self.err(path, "a tensor recorded earlier is missing"));
                };
                if let Some(s) = t.storage {
                    self.out.add_user(s, path);
                }
                t.path = path.to_owned();
                self.last_node = Some(TreeNode::Tensor(self.out.tensor_count()));
                self.out.push_tensor(t);
                return Ok(());
            }
            if let Value::Taken(n) = self.v(id) {
                let index = self.out.tensor_count();
                self.push_taken(*n, path)?;
                if !self.taken_seen.set(*n, index) {
                    self.tensor_cache.insert(id, index);
                }
                self.last_node = Some(TreeNode::Tensor(index));
                return Ok(());
            }
            if let Some(t) = self.tensor_call(id, path)? {
                self.tensor_cache.insert(id, self.out.tensor_count());
                self.last_node = Some(TreeNode::Tensor(self.out.tensor_count()));
                self.out.push_tensor(t);
                return Ok(());
            }
            let value = self.v(id);
            // Scalars.
            let leaf = match value {
                Value::None => Some(Leaf::None),
                Value::Bool(b) => Some(Leaf::Bool(*b)),
                Value::Int(i) => Some(Leaf::Int(*i)),
                Value::BigInt(b) => Some(Leaf::BigInt(if b.le_signed_bytes().len() <= 512 {
                    b.to_decimal()
                } else {
                    format!("<int of {} bytes>", b.le_signed_bytes().len())
                })),
                Value::Float(f) => Some(Leaf::Float(*f)),
                Value::Str(s) => Some(Leaf::Str(s.to_string())),
                Value::Bytes(b) | Value::ByteArray(b) => Some(Leaf::Bytes(b.len())),
                Value::Global { module, name } => Some(Leaf::Global {
                    module: module.to_string(),
                    name: name.to_string(),
                }),
                Value::Ext(_) | Value::OutOfBandBuffer(_) => Some(Leaf::Other),
                Value::PersistentId(_) => {
                    let leaf = match self.storage(id, path) {
                        Ok((index, _)) => {
                            self.out.add_user(index, path);
                            Leaf::Storage { index }
                        }
                        // A persistent id that is not a storage (legacy
                        // module source ids): keep it as a value.
                        Err(_) => Leaf::Other,
                    };
                    Some(leaf)
                }
                _ => None,
            };
            if let Some(leaf) = leaf {
                self.push_value(path, id, leaf);
                return Ok(());
            }
            // Containers and objects: expand once.
            match self.expanded.entry(id) {
                Entry::Occupied(e) => {
                    let of = e.get().clone();
                    self.push_value(path, id, Leaf::Alias { of });
                    return Ok(());
                }
                Entry::Vacant(e) => {
                    e.insert(path.to_owned());
                }
            }
            let before = children.len();
            self.children(id, children)?;
            let count = children.len() - before;
            if count == 0 {
                if let Some(class) = self.object_class(id) {
                    if class.starts_with("__torch__") {
                        self.out.classes.push((path.to_owned(), class.clone()));
                    }
                    self.push_value(path, id, Leaf::Object { class });
                } else if self.is_special_leaf(id) {
                    let leaf = self.special_leaf(id);
                    self.push_value(path, id, leaf);
                } else {
                    self.push_value(path, id, Leaf::Empty);
                }
                return Ok(());
            }
            if let Some(class) = self.object_class(id) {
                if class.starts_with("__torch__") {
                    self.out.classes.push((path.to_owned(), class.clone()));
                }
                self.push_value(path, id, Leaf::Object { class });
            } else {
                self.last_node = Some(TreeNode::Container { len: count });
            }
        }
        Ok(())
    }
}

impl<'a> Reader<'a> {
    /// Objects that are reported as an entry of their own (not plain
    /// containers, not transparent wrappers).
    fn object_class(&self, id: ValueId) -> Option<String> {
        if self.is_dict_like(id) || self.is_special_leaf(id) || self.transparent(id).is_some() {
            return None;
        }
        if let Value::Reduce { callable, .. } = self.v(id)
            && matches!(
                self.global(*callable),
                Some((
                    "__builtin__" | "builtins",
                    "set" | "frozenset" | "list" | "tuple"
                ))
            )
        {
            return None;
        }
        match self.v(id) {
            Value::NewObj { .. } | Value::Build { .. } | Value::Reduce { .. } => self.class_of(id),
            Value::SetItems { .. } | Value::Appends { .. } | Value::AddItems { .. } => None,
            _ => None,
        }
    }

    /// Reduce calls that are really containers or wrappers: returns the inner value.
    fn transparent(&self, id: ValueId) -> Option<ValueId> {
        let Value::Reduce { callable, args } = self.v(id) else {
            return None;
        };
        let g = self.global(*callable)?;
        let a = self.items(*args)?;
        match g {
            ("torch.jit._pickle", n) if n.starts_with("build_") || n == "restore_type_tag" => {
                a.first().copied()
            }
            _ => None,
        }
    }

    fn is_dict_like(&self, id: ValueId) -> bool {
        match self.v(id) {
            Value::Reduce { callable, .. } => matches!(
                self.global(*callable),
                Some(("collections", "OrderedDict" | "defaultdict" | "Counter"))
            ),
            Value::SetItems { .. } => true,
            Value::Build { obj, .. } => {
                self.is_dict_like(*obj) && !matches!(self.v(*obj), Value::NewObj { .. })
            }
            _ => false,
        }
    }

    /// Values shown as one entry with a repr: torch.Size, torch.device,
    /// bytes via `_codecs.encode`, complex, numpy scalars and arrays, layouts.
    fn is_special_leaf(&self, id: ValueId) -> bool {
        let call = match self.v(id) {
            Value::Reduce { callable, .. } => *callable,
            Value::Build { obj, .. } => match self.v(*obj) {
                Value::Reduce { callable, .. } => *callable,
                _ => return false,
            },
            _ => return false,
        };
        match self.global(call) {
            Some((m, n)) => {
                matches!(
                    (m, n),
                    ("torch", "Size" | "device")
                        | ("_codecs", "encode")
                        | (
                            "__builtin__" | "builtins",
                            "complex" | "bytearray" | "bytes"
                        )
                        | ("torch.serialization", "_get_layout")
                        | ("numpy", "dtype")
                ) || (is_numpy_core(m) && matches!(n, "scalar" | "_reconstruct"))
            }
            None => false,
        }
    }

    fn special_leaf(&self, id: ValueId) -> Leaf {
        let Value::Reduce { callable, args } = self.v(id) else {
            return Leaf::Other;
        };
        let a = self.items(*args).unwrap_or(&[]);
        match self.global(*callable) {
            Some((_, "complex")) => {
                let re = a.first().and_then(|&x| self.float(x)).unwrap_or(0.0);
                let im = a.get(1).and_then(|&x| self.float(x)).unwrap_or(0.0);
                Leaf::Complex(re, im)
            }
            Some(("_codecs", "encode")) => Leaf::Bytes(
                a.first()
                    .and_then(|&s| self.str_of(s))
                    .map_or(0, |s| s.chars().count()),
            ),
            Some((m, "scalar")) if is_numpy_core(m) => {
                self.numpy_scalar(a).map_or(Leaf::Other, |(l, _)| l)
            }
            _ => Leaf::Other,
        }
    }

    /// Decode `numpy.core.multiarray.scalar(dtype, bytes)` for simple dtypes.
    pub(crate) fn numpy_scalar(&self, a: &[ValueId]) -> Option<(Leaf, String)> {
        let dtype = *a.first()?;
        let data = *a.get(1)?;
        // dtype = Build(Reduce(numpy.dtype, ('f8', False, True)), (3, '<', ...)).
        let (dreduce, state) = match self.v(dtype) {
            Value::Build { obj, state } => (*obj, Some(*state)),
            _ => (dtype, None),
        };
        let Value::Reduce { args, .. } = self.v(dreduce) else {
            return None;
        };
        let code = self.str_of(*self.items(*args)?.first()?)?;
        let order = state
            .and_then(|s| self.items(s))
            .and_then(|s| s.get(1).copied())
            .and_then(|o| self.str_of(o))
            .unwrap_or("<");
        let bytes: Vec<u8> = match self.v(data) {
            Value::Bytes(b) => b.clone(),
            Value::Reduce { callable, args }
                if self.global(*callable) == Some(("_codecs", "encode")) =>
            {
                let s = self.str_of(*self.items(*args)?.first()?)?;
                s.chars()
                    .map(|c| u8::try_from(u32::from(c)).ok())
                    .collect::<Option<Vec<u8>>>()?
            }
            _ => return None,
        };
        let mut b = bytes;
        if order == ">" {
            b.reverse();
        }
        let arr = |n: usize| -> Option<[u8; 8]> {
            let mut out = [0u8; 8];
            out.get_mut(..n)?.copy_from_slice(b.get(..n)?);
            (b.len() == n).then_some(out)
        };
        let sign = |v: u64, n: usize| -> i64 {
            let shift = 64 - 8 * n as u32;
            ((v << shift) as i64) >> shift
        };
        let (leaf, name) = match code {
            "f8" => (Leaf::Float(f64::from_le_bytes(arr(8)?)), "float64"),
            "f4" => (
                Leaf::Float(f64::from(f32::from_le_bytes(arr(4)?[..4].try_into().ok()?))),
                "float32",
            ),
            "f2" => {
                let h = u16::from_le_bytes(arr(2)?[..2].try_into().ok()?);
                (Leaf::Float(f16_to_f64(h)), "float16")
            }
            "b1" => (Leaf::Bool(arr(1)?[0] != 0), "bool"),
            c if c.len() == 2 && (c.starts_with('i') || c.starts_with('u')) => {
                let n = usize::from(c.as_bytes()[1].wrapping_sub(b'0'));
                if !matches!(n, 1 | 2 | 4 | 8) {
                    return None;
                }
                let v = u64::from_le_bytes(arr(n)?);
                if c.starts_with('i') {
                    (
                        Leaf::Int(sign(v, n)),
                        ["int8", "int16", "", "int32", "", "", "", "int64"][n - 1],
                    )
                } else {
                    (
                        Leaf::Int(i64::try_from(v).ok()?),
                        ["uint8", "uint16", "", "uint32", "", "", "", "uint64"][n - 1],
                    )
                }
            }
            _ => return None,
        };
        Some((leaf, name.to_owned()))
    }

    /// Children of a container or object, with their keys.
    /// The (key, value) pairs of `Value::Dict` or `Value::SetItems` `id`
    /// (none for any other value).
    fn pairs(&self, id: ValueId) -> &'a [(ValueId, ValueId)] {
        match self.arena.get(id) {
            Some(Value::Dict(pairs) | Value::SetItems { items: pairs, .. }) => pairs,
            _ => &[],
        }
    }

    fn children(&self, id: ValueId, out: &mut ChildPaths<'_>) -> Result<(), TorchError> {
        if self.is_special_leaf(id) {
            return Ok(());
        }
        if let Some(inner) = self.transparent(id) {
            // Same path: the wrapper is not a level of its own.
            out.same(inner);
            return Ok(());
        }
        let index = |out: &mut ChildPaths<'_>, items: &[ValueId]| {
            out.expect(items.len());
            for (i, &c) in items.iter().enumerate() {
                out.index(c, i);
            }
        };
        match self.v(id) {
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => index(out, items),
            Value::Dict(pairs) => out.pairs(id, pairs.len()),
            Value::SetItems { obj, items } => {
                self.children(*obj, out)?;
                out.pairs(id, items.len());
            }
            Value::Appends { obj, items } | Value::AddItems { obj, items } => {
                let before = out.len();
                self.children(*obj, out)?;
                let start = out.len() - before;
                for (i, &c) in items.iter().enumerate() {
                    out.index(c, start + i);
                }
            }
            Value::Build { obj, state } => {
                self.children(*obj, out)?;
                if self.is_dict_like(*obj) {
                    // BUILD on an OrderedDict sets attributes (`_metadata`),
                    // not items: not part of the tree.
                    return Ok(());
                }
                self.state_children(*state, out);
            }
            Value::NewObj { args, .. } => {
                if let Some(items) = self.items(*args) {
                    index(out, items);
                }
            }
            Value::Reduce { callable, args } => {
                let g = self.global(*callable);
                let a = self.items(*args).unwrap_or(&[]);
                match g {
                    Some(("__builtin__" | "builtins", "set" | "frozenset" | "list" | "tuple")) => {
                        if let Some(items) = a.first().and_then(|&x| self.items(x)) {
                            index(out, items);
                        }
                    }
                    Some(("collections", "OrderedDict" | "Counter")) => {
                        // OrderedDict([(k, v), ...]) (protocols 0/1).
                        if let Some(pairs) = a.first().and_then(|&x| self.items(x)) {
                            for &p in pairs {
                                if let Some([k, v]) = self
                                    .items(p)
                                    .map(|kv| kv.get(..2))
                                    .and_then(|kv| kv)
                                    .map(|kv| [kv[0], kv[1]])
                                {
                                    out.key(v, k);
                                }
                            }
                        }
                    }
                    Some(("collections", "defaultdict")) => {}
                    Some(("copyreg" | "copy_reg", "_reconstructor")) => {}
                    _ => index(out, a),
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Attributes of an object's BUILD state.
    fn state_children(&self, state: ValueId, out: &mut ChildPaths<'_>) {
        match self.v(state) {
            Value::Dict(pairs) => {
                for &(k, v) in pairs {
                    out.key(v, k);
                }
            }
            // (dict, slots) or (None, slots).
            Value::Tuple(items)
                if items.len() == 2
                    && items
                        .iter()
                        .all(|&i| matches!(self.v(i), Value::Dict(_) | Value::None)) =>
            {
                for &i in items {
                    self.state_children(i, out);
                }
            }
            Value::None => {}
            _ => out.state(state),
        }
    }

    /// Python `str(key)`.
    fn key_str(&self, k: ValueId) -> Cow<'a, str> {
        match self.v(k) {
            Value::Str(s) => Cow::Borrowed(s),
            _ => Cow::Owned(self.repr(k)),
        }
    }

    /// Bounded Python-like repr.
    pub(crate) fn repr(&self, id: ValueId) -> String {
        let mut r = Repr {
            w: self,
            out: String::new(),
            max: self.max_repr,
        };
        r.value(id, 0);
        if r.out.len() > self.max_repr {
            let mut cut = self.max_repr.saturating_sub(3);
            while !r.out.is_char_boundary(cut) {
                cut -= 1;
            }
            r.out.truncate(cut);
            r.out.push_str("...");
        }
        r.out
    }
}

fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Python's `repr(float)`.
pub(crate) fn float_repr(f: f64) -> String {
    netport_pickle::repr::float(f)
}

struct Repr<'w, 'a> {
    w: &'w Reader<'a>,
    out: String,
    max: usize,
}

const MAX_DEPTH: usize = 24;

impl Repr<'_, '_> {
    fn full(&self) -> bool {
        self.out.len() > self.max
    }

    fn seq(&mut self, items: &[ValueId], depth: usize) {
        for (i, &c) in items.iter().enumerate() {
            if self.full() {
                return;
            }
            if i > 0 {
                self.out.push_str(", ");
            }
            self.value(c, depth + 1);
        }
    }

    fn pairs(&mut self, items: &[(ValueId, ValueId)], depth: usize) {
        self.out.push('{');
        for (i, &(k, v)) in items.iter().enumerate() {
            if self.full() {
                return;
            }
            if i > 0 {
                self.out.push_str(", ");
            }
            self.value(k, depth + 1);
            self.out.push_str(": ");
            self.value(v, depth + 1);
        }
        self.out.push('}');
    }

    fn str_lit(&mut self, s: &str) {
        netport_pickle::repr::write_string(&mut self.out, s, self.max.saturating_add(1));
    }

    fn bytes_lit(&mut self, b: &[u8]) {
        netport_pickle::repr::write_bytes(&mut self.out, b, self.max.saturating_add(1));
    }

    fn value(&mut self, id: ValueId, depth: usize) {
        if self.full() {
            return;
        }
        if depth > MAX_DEPTH {
            self.out.push_str("...");
            return;
        }
        let w = self.w;
        // Tensors.
        if let Value::Reduce { callable, args } = w.v(id)
            && let Some((m, n)) = w.global(*callable)
            && ((m == "torch._utils" && TENSOR_FUNCS.contains(&n))
                || (m == "torch._tensor" && n == "_rebuild_from_type_v2"))
        {
            let shape = w
                .items(*args)
                .and_then(|a| {
                    let i = match n {
                        "_rebuild_parameter"
                        | "_rebuild_parameter_with_state"
                        | "_rebuild_from_type_v2" => return None,
                        "_rebuild_meta_tensor_no_storage" => 1,
                        _ => 2,
                    };
                    a.get(i).copied()
                })
                .and_then(|s| w.dims(s, "", "size").ok());
            match shape {
                Some(s) => {
                    let _ = write!(self.out, "tensor(shape={s:?})");
                }
                None => self.out.push_str("tensor(...)"),
            }
            return;
        }
        if let Value::Taken(n) = w.v(id) {
            match w.taken.get(*n) {
                Some(t) => {
                    let _ = write!(self.out, "tensor(shape={:?})", t.shape());
                }
                None => self.out.push_str("tensor(...)"),
            }
            return;
        }
        match w.v(id) {
            Value::None => self.out.push_str("None"),
            Value::Bool(true) => self.out.push_str("True"),
            Value::Bool(false) => self.out.push_str("False"),
            Value::Int(i) => {
                let _ = write!(self.out, "{i}");
            }
            Value::BigInt(b) if b.le_signed_bytes().len() <= 256 => {
                self.out.push_str(&b.to_decimal())
            }
            Value::BigInt(b) => {
                let _ = write!(self.out, "<int of {} bytes>", b.le_signed_bytes().len());
            }
            Value::Float(f) => self.out.push_str(&float_repr(*f)),
            Value::Str(s) => self.str_lit(s),
            Value::Bytes(b) => self.bytes_lit(b),
            Value::ByteArray(b) => {
                self.out.push_str("bytearray(");
                self.bytes_lit(b);
                self.out.push(')');
            }
            Value::List(items) => {
                self.out.push('[');
                self.seq(items, depth);
                self.out.push(']');
            }
            Value::Tuple(items) => {
                self.out.push('(');
                self.seq(items, depth);
                if items.len() == 1 {
                    self.out.push(',');
                }
                self.out.push(')');
            }
            Value::Dict(items) => self.pairs(items, depth),
            Value::Set(items) | Value::FrozenSet(items) => {
                if items.is_empty() {
                    self.out.push_str("set()");
                } else {
                    self.out.push('{');
                    self.seq(items, depth);
                    self.out.push('}');
                }
            }
            Value::Global { module, name } => {
                let module: &str = if &**module == "__builtin__" {
                    "builtins"
                } else {
                    module
                };
                let _ = write!(self.out, "{module}.{name}");
            }
            Value::PersistentId(pid) => {
                self.out.push_str("storage(");
                self.value(*pid, depth + 1);
                self.out.push(')');
            }
            Value::Ext(c) => {
                let _ = write!(self.out, "ext({c})");
            }
            Value::Taken(_) => {}
            Value::OutOfBandBuffer(i) => {
                let _ = write!(self.out, "out_of_band_buffer({i})");
            }
            Value::Reduce { callable, args } => self.call(*callable, *args, depth),
            Value::NewObj { cls, args, .. } => {
                self.value(*cls, depth + 1);
                self.out.push('(');
                if let Some(items) = w.items(*args) {
                    self.seq(items, depth);
                }
                self.out.push(')');
            }
            Value::Build { obj, state } => self.build(*obj, *state, depth),
            Value::SetItems { obj, items } => {
                self.head(*obj, depth);
                self.out.push('(');
                self.pairs(items, depth);
                self.out.push(')');
            }
            Value::Appends { obj, items } | Value::AddItems { obj, items } => {
                self.head(*obj, depth);
                self.out.push_str("([");
                self.seq(items, depth);
                self.out.push_str("])");
            }
        }
    }

    /// The class part of an object: `OrderedDict` for `OrderedDict()`.
    fn head(&mut self, obj: ValueId, depth: usize) {
        let w = self.w;
        match w.v(obj) {
            Value::Reduce { callable, .. } | Value::NewObj { cls: callable, .. } => {
                self.value(*callable, depth + 1)
            }
            _ => self.value(obj, depth + 1),
        }
    }

    fn build(&mut self, obj: ValueId, state: ValueId, depth: usize) {
        let w = self.w;
        // numpy scalar dtype / ndarray.
        if let Value::Reduce { callable, args } = w.v(obj) {
            match w.global(*callable) {
                Some(("numpy", "dtype")) => {
                    let code = w
                        .items(*args)
                        .and_then(|a| a.first().copied())
                        .and_then(|c| w.str_of(c))
                        .unwrap_or("?");
                    let _ = write!(self.out, "dtype('{code}')");
                    return;
                }
                Some((m, "_reconstruct")) if is_numpy_core(m) => {
                    let st = w.items(state).unwrap_or(&[]);
                    self.out.push_str("numpy.ndarray(shape=");
                    match st.get(1) {
                        Some(&s) => self.value(s, depth + 1),
                        None => self.out.push('?'),
                    }
                    self.out.push_str(", dtype=");
                    match st.get(2) {
                        Some(&d) => self.value(d, depth + 1),
                        None => self.out.push('?'),
                    }
                    self.out.push(')');
                    return;
                }
                _ => {}
            }
        }
        if w.is_dict_like(obj) {
            self.value(obj, depth);
            return;
        }
        // Objects: Class(attr=value, ...).
        match w.v(obj) {
            Value::NewObj { cls, .. } => self.value(*cls, depth + 1),
            Value::Reduce { .. } => match w.class_of(obj) {
                Some(c) => self.out.push_str(&c),
                None => self.value(obj, depth + 1),
            },
            _ => self.value(obj, depth + 1),
        }
        self.out.push('(');
        match w.v(state) {
            Value::Dict(pairs) => {
                for (i, &(k, v)) in pairs.iter().enumerate() {
                    if self.full() {
                        return;
                    }
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    match w.v(k) {
                        Value::Str(s) => self.out.push_str(s),
                        _ => self.value(k, depth + 1),
                    }
                    self.out.push('=');
                    self.value(v, depth + 1);
                }
            }
            _ => self.value(state, depth + 1),
        }
        self.out.push(')');
    }

    fn call(&mut self, callable: ValueId, args: ValueId, depth: usize) {
        let w = self.w;
        let a = w.items(args).unwrap_or(&[]);
        match w.global(callable) {
            Some(("torch", "Size")) => {
                self.out.push_str("torch.Size(");
                match a.first().and_then(|&x| w.items(x)) {
                    Some(items) => {
                        self.out.push('[');
                        self.seq(items, depth);
                        self.out.push(']');
                    }
                    None => self.seq(a, depth),
                }
                self.out.push(')');
            }
            Some(("torch", "device")) => {
                self.out.push_str("device(");
                let ty = a
                    .first()
                    .and_then(|&x| w.str_of(x))
                    .unwrap_or("?")
                    .to_owned();
                let _ = write!(self.out, "type='{ty}'");
                if let Some(&i) = a.get(1) {
                    self.out.push_str(", index=");
                    self.value(i, depth + 1);
                }
                self.out.push(')');
            }
            Some(("_codecs", "encode")) => {
                let s = a.first().and_then(|&x| w.str_of(x)).unwrap_or("");
                let b: Vec<u8> = s
                    .chars()
                    .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                    .collect();
                self.bytes_lit(&b);
            }
            Some((_, "complex")) if a.len() == 2 => {
                let re = w.float(a[0]).unwrap_or(0.0);
                let im = w.float(a[1]).unwrap_or(0.0);
                let sign = if im < 0.0 || (im == 0.0 && im.is_sign_negative()) {
                    '-'
                } else {
                    '+'
                };
                let _ = write!(
                    self.out,
                    "({}{sign}{}j)",
                    float_repr(re),
                    float_repr(im.abs())
                );
            }
            Some(("__builtin__" | "builtins", "set" | "frozenset")) => {
                let name = if w.global(callable).is_some_and(|g| g.1 == "set") {
                    ""
                } else {
                    "frozenset("
                };
                self.out.push_str(name);
                match a.first().and_then(|&x| w.items(x)) {
                    Some([]) | None => {
                        self.out
                            .push_str(if name.is_empty() { "set()" } else { "" })
                    }
                    Some(items) => {
                        self.out.push('{');
                        self.seq(items, depth);
                        self.out.push('}');
                    }
                }
                if !name.is_empty() {
                    self.out.push(')');
                }
            }
            Some(("torch.serialization", "_get_layout")) => {
                let s = a.first().and_then(|&x| w.str_of(x)).unwrap_or("?");
                self.out.push_str(s);
            }
            Some((m, "scalar")) if is_numpy_core(m) => match w.numpy_scalar(a) {
                Some((leaf, dt)) => {
                    let v = match leaf {
                        Leaf::Float(f) => float_repr(f),
                        Leaf::Int(i) => i.to_string(),
                        Leaf::Bool(b) => {
                            if b {
                                "True".into()
                            } else {
                                "False".into()
                            }
                        }
                        _ => "?".into(),
                    };
                    let _ = write!(self.out, "np.{dt}({v})");
                }
                None => self.out.push_str("numpy scalar"),
            },
            _ => {
                match w.class_of_callable(callable, a) {
                    Some(c) => self.out.push_str(&c),
                    None => self.value(callable, depth + 1),
                }
                self.out.push('(');
                self.seq(a, depth);
                self.out.push(')');
            }
        }
    }
}

impl Reader<'_> {
    fn class_of_callable(&self, callable: ValueId, _args: &[ValueId]) -> Option<String> {
        self.global(callable).map(|(m, n)| {
            let m = if m == "__builtin__" { "builtins" } else { m };
            format!("{m}.{n}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::float_repr;

    #[test]
    fn floats_print_like_python() {
        assert_eq!(float_repr(0.001), "0.001");
        assert_eq!(float_repr(1e-8), "1e-08");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(1.5e300), "1.5e+300");
        assert_eq!(float_repr(2.0), "2.0");
        assert_eq!(float_repr(0.9), "0.9");
    }
}

#[cfg(test)]
mod taken_tests {
    use super::*;

    fn decl<'s>(key: &'s str, location: &'s str, numel: u64) -> StorageDecl<'s> {
        StorageDecl {
            module: "torch",
            name: "FloatStorage",
            dtype: DType::Float32,
            key: Cow::Borrowed(key),
            location,
            numel,
            view_offset: 7,
        }
    }

    #[test]
    fn taken_seen_keeps_a_rule_until_the_order_breaks() {
        // In order from tensor 3 (three tensors came first): no table.
        let mut s = TakenSeen::new(6);
        assert_eq!(s.get(0), None);
        for n in 0..3 {
            assert!(s.set(n, 3 + n as usize));
        }
        assert!(s.table.is_empty());
        assert_eq!((s.get(0), s.get(2), s.get(3)), (Some(3), Some(5), None));
        // 5 before 3, then 3 after a tensor that is not taken: the table,
        // with what the rule said.
        assert!(s.set(5, 6));
        assert!(!s.table.is_empty());
        assert!(s.set(3, 8));
        assert_eq!(
            (0..6).map(|n| s.get(n)).collect::<Vec<_>>(),
            [Some(3), Some(4), Some(5), Some(8), None, Some(6)]
        );
        // Numbers past the count, indices past u32: not held.
        assert!(!s.set(6, 9));
        assert!(!TakenSeen::new(2).set(0, u32::MAX as usize));
        // Not from 0, or a gap in the indices: the table at once.
        let mut s = TakenSeen::new(3);
        assert!(s.set(1, 0) && !s.table.is_empty());
        let mut s = TakenSeen::new(3);
        assert!(s.set(0, 0) && s.set(1, 2));
        assert_eq!((s.get(0), s.get(1), s.get(2)), (Some(0), Some(2), None));
    }

    #[test]
    fn views_past_the_packed_fields_are_not_packed() {
        let mut p = Packed::default();
        let source: Arc<str> = "data.pkl".into();
        let dims = vec![1u64; 256];
        let view = |offset, ndim| View {
            path: "w",
            source: &source,
            storage: 3,
            dtype: DType::Float32,
            shape: &dims[..ndim],
            strides: &dims[..ndim],
            offset,
        };
        let r = p.record(&view(u64::from(u32::MAX), 255), 0).unwrap();
        assert_eq!((r.storage_offset, r.ndim, r.storage), (u32::MAX, 255, 3));
        assert!(p.record(&view(u64::from(u32::MAX) + 1, 1), 0).is_none());
        assert!(p.record(&view(0, 256), 0).is_none());
    }

    #[test]
    fn a_tensor_shares_the_dims_of_the_one_before_when_they_are_equal() {
        let mut p = Packed::default();
        let source: Arc<str> = "data.pkl".into();
        let mut dims_of = |shape: &[u64], strides: &[u64]| {
            let v = View {
                path: "w",
                source: &source,
                storage: 0,
                dtype: DType::Float32,
                shape,
                strides,
                offset: 0,
            };
            p.record(&v, 0).unwrap().dims
        };
        let a = dims_of(&[4, 2], &[2, 1]);
        assert_eq!(dims_of(&[4, 2], &[2, 1]), a);
        // Other strides, another shape of as many elements, fewer dims.
        let b = dims_of(&[4, 2], &[1, 4]);
        let c = dims_of(&[2, 4], &[1, 2]);
        let d = dims_of(&[4], &[2]);
        assert_eq!((b, c, d), (a + 4, a + 8, a + 12));
        // Only the last is shared: `a`'s dims again are appended.
        assert_eq!(dims_of(&[4, 2], &[2, 1]), a + 14);
        assert_eq!(dims_of(&[], &[]), a + 18);
        assert_eq!(dims_of(&[], &[]), a + 18);
        assert_eq!(p.dims.len(), 18);
    }

    #[test]
    fn taken_tensors_read_back_as_recorded() {
        let mut t = Taken::default();
        let long_key = "k".repeat(300);
        let dims: Vec<u64> = (1..=2 * MAX_TAKEN_NDIM as u64).map(|d| d << 40).collect();
        let n = MAX_TAKEN_NDIM;
        assert_eq!(
            t.push(&decl("0", "cpu", 6), true, 3, &[2, 3], &[3, 1]),
            Some(0)
        );
        assert_eq!(
            t.push(
                &decl(&long_key, "cuda:1", u64::MAX),
                false,
                u64::MAX,
                &dims[..n],
                &dims[n..]
            ),
            Some(1)
        );
        assert_eq!(t.push(&decl("é", "cpu", 0), false, 0, &[], &[]), Some(2));
        // More dimensions than a taken tensor holds, or shape and strides of
        // different lengths: not taken, nothing recorded.
        let many = vec![1u64; n + 1];
        assert_eq!(t.push(&decl("x", "cpu", 1), false, 0, &many, &many), None);
        assert_eq!(t.push(&decl("x", "cpu", 1), false, 0, &[1], &[]), None);
        assert_eq!(t.len(), 3);

        let a = t.get(0).unwrap();
        assert_eq!((a.key, a.numel, a.view_offset, a.offset), ("0", 6, 7, 3));
        assert_eq!((a.shape(), a.strides()), (&[2, 3][..], &[3, 1][..]));
        assert!(a.requires_grad);
        let d = t.decl(&a);
        assert_eq!(
            (d.module, d.name, d.location),
            ("torch", "FloatStorage", "cpu")
        );
        assert_eq!(d.dtype, DType::Float32);
        let b = t.get(1).unwrap();
        assert_eq!(
            (b.key, b.numel, b.offset),
            (long_key.as_str(), u64::MAX, u64::MAX)
        );
        assert_eq!((b.shape(), b.strides()), (&dims[..n], &dims[n..]));
        assert_eq!(t.decl(&b).location, "cuda:1");
        assert!(!b.requires_grad);
        let c = t.get(2).unwrap();
        assert_eq!((c.key, c.ndim, c.numel), ("é", 0, 0));
        assert!(t.get(3).is_none());
    }
}

#[cfg(test)]
mod tree_tests {
    use super::*;

    #[test]
    fn tree_lines_read_back_as_pushed_packed_or_not() {
        let mut c = Collected::default();
        let lines = [
            (0, "(root)", TreeNode::Container { len: 3 }),
            (1, "a", TreeNode::Tensor(0)),
            (1, "b", TreeNode::Value(7)),
            (
                PackedTreeItem::DEPTH as usize,
                "deep",
                TreeNode::Tensor(u32::MAX as usize),
            ),
            // Past the packed form: kept whole, in order.
            (
                PackedTreeItem::DEPTH as usize + 1,
                "deeper",
                TreeNode::Value(1),
            ),
            (
                2,
                "big",
                TreeNode::Container {
                    len: u32::MAX as usize + 1,
                },
            ),
            (2, "", TreeNode::Container { len: 0 }),
        ];
        for (depth, key, node) in lines.iter().cloned() {
            c.push_tree(depth, key, node);
        }
        assert_eq!(c.packed.tree_full.len(), 2);
        let want: Vec<TreeItem> = lines
            .iter()
            .map(|(depth, key, node)| TreeItem {
                depth: *depth,
                key: (*key).to_owned(),
                node: node.clone(),
            })
            .collect();
        assert_eq!(c.tree(), want);
    }
}

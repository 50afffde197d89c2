//! Reads every kind of PyTorch checkpoint without executing it: `torch.save`
//! zip checkpoints, legacy stacked-pickle files, TorchScript archives and
//! `torch.export` `.pt2` archives. Legacy tar files, safetensors, Git LFS
//! pointers, HTML pages, empty and truncated files are recognised and
//! reported ([`detect()`](fn@detect)).
//!
//! Nothing is executed or imported: pickles run on `netport_pickle`'s
//! symbolic machine, and the rebuild calls torch would make are recognised by
//! name (docs/formats/pytorch.md, 'Rebuild functions'). The file is memory-mapped; opening it
//! parses the zip directory and the pickles and locates every storage, but
//! reads no tensor bytes. Tensor bytes are read on request, bounds-checked.
//!
//! # Use from a build script
//!
//! ```no_run
//! use netport_tensor::DType;
//!
//! let ckpt = netport_torch::Checkpoint::open("model.pt")?;
//! println!("{} ({:?})", ckpt.format(), ckpt.info().byteorder);
//! for t in ckpt.tensors() {
//!     println!("{} {} {:?} on {}", t.path, t.dtype, t.shape, t.device);
//!     let le_bytes = ckpt.tensor_bytes(t)?; // contiguous, little-endian
//!     let f32s = ckpt.tensor_converted(t, DType::Float32)?;
//!     # let _ = (le_bytes, f32s);
//! }
//! // The same tensors read in place, without unpacking a `Tensor` each.
//! let params: u64 = ckpt.tensor_refs().map(|t| t.shape().iter().product::<u64>()).sum();
//! # let _ = params;
//! for v in ckpt.values() {
//!     println!("{} = {}", v.path, v.repr); // `epoch = 7`, `args.lr = 0.001`
//! }
//! for p in ckpt.pickles() {
//!     println!("pickle {} at {:?}", p.name, p.byte_range);
//! }
//! # Ok::<(), netport_torch::TorchError>(())
//! ```
//!
//! # Paths
//!
//! Dict and OrderedDict keys by Python `str(key)`, list/tuple/set items by
//! index, object state attributes by name, joined with `.`; the root is `""`.
//! A state dict gives `fc.weight`, an optimizer `state.0.exp_avg`, an
//! `argparse.Namespace` stored as `args` gives `args.lr`. TorchScript module
//! attributes follow the same rule, so parameters get their `state_dict()`
//! names; `constants.pkl` (a tuple) gives `constants.0`, `constants.1`, ...
//! (what TorchScript code calls `CONSTANTS.c0`, ...). `.pt2` tensors are named by their FQN.
//! Components of tensors that cannot be materialised (sparse, nested) are
//! `<path>.indices`, `<path>.values`, ...; per-channel quantization
//! parameters `<path>.q_per_channel_scales` / `_zero_points`.
//!
//! A container or object reached a second time (shared in the pickle memo)
//! is listed once and then as [`Leaf::Alias`]; a tensor reached twice (tied
//! weights) is listed at both paths with the same storage. The BUILD state of
//! an OrderedDict (`_metadata` of a state dict) is not part of the tree.
//!
//! # Modules
//!
//! Reading and writing are separate trees; the writers use the readers,
//! never the other way round.
//!
//! - [`read`]: [`detect`](mod@detect) ([`detect()`](fn@detect), [`Detected`],
//!   [`Format`]); [`zip`] ([`ZipArchive`], the central-directory reader);
//!   [`checkpoint`] ([`Checkpoint`], [`Info`], [`Record`], [`PickleRecord`],
//!   [`Options`]); [`scan`] (the file-level safety scan).
//! - [`objects`]: [`Tensor`], [`TensorRef`], [`TensorKind`], [`Quantization`], [`Storage`],
//!   [`ValueEntry`], [`Leaf`]; the walk from pickle values to those.
//! - [`write`](mod@write): torch.save-identical zip writer, legacy writer,
//!   record-by-record rewrite, atomic output, [`StateDictPickle`],
//!   [`ConvertReport`];
//!   [`relocate`] (map-location, op by op), [`fix`] (weights_only
//!   compatibility), [`rewrite`] ([`rewrite_checkpoint`], zip or legacy
//!   [`Layout`]) and [`edit`] ([`Edits`]).
//!
//! safetensors is its own format crate (`netport-safetensors`); conversions
//! between checkpoints and safetensors, and diffs across both, join the two
//! formats and live in `netport-torch-safetensors`.
//! - [`error`](mod@error): [`TorchError`].
//! - [`summary`]: [`summary::CheckpointSummary`], the totals `netport inspect` prints.

pub mod error;
pub mod objects;
pub mod read;
mod storages;
pub mod summary;
pub mod write;

pub use read::{checkpoint, detect, scan, zip};
pub use write::{edit, fix, relocate, rewrite};

pub use checkpoint::{Checkpoint, Info, Options, PickleRecord, Record};
pub use detect::{Detected, Format, detect};
pub use edit::Edits;
pub use error::{OutOfBounds, TorchError};
pub use objects::{
    Leaf, Quantization, Storage, Tensor, TensorKind, TensorRef, TreeItem, TreeNode, ValueEntry,
};
pub use rewrite::{Layout, rewrite_checkpoint};
pub use scan::{
    ContainerFinding, FileScan, ScannedFormat, ScannedPickle, WeightsOnlyVerdict, scan_bytes,
    scan_file,
};
pub use storages::StorageRef;
pub use write::{ConvertReport, StateDictPickle};
pub use zip::{DuplicateName, ZipArchive, ZipEntry};

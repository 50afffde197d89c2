//! safetensors files: a bounds-checked reader ([`SafetensorsFile`]), a
//! streamed atomic writer ([`write::layout`], [`write::write_finished`])
//! with the Hugging Face metadata conventions ([`write::hf_metadata`]), and
//! sharded checkpoints' `*.index.json` ([`ShardIndex`]). Conversions from
//! and to PyTorch checkpoints join two formats and live in
//! `netport-torch-safetensors`.
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
//! The header is written with `serde_json` rather than by the `safetensors`
//! crate: its `serialize_to_file` takes tensors through the `View` trait,
//! whose `data()` cannot fail, so a tensor that fails to read or convert
//! half-way could not be reported; and it needs every view up front. Here
//! the header is computed from shapes and dtypes alone ([`write::layout`]),
//! then each tensor is fetched by the caller (borrowed from a source map
//! when it can be), written, and dropped: peak memory is one tensor. The
//! data is laid out by element size (largest first), then name, as the
//! `safetensors` crate does, so every tensor is aligned to its element
//! size. Output goes through [`netport_io::AtomicFile`]; nothing is left on
//! error.
//!
//! ```no_run
//! let st = netport_safetensors::SafetensorsFile::open("model.safetensors")?;
//! for t in st.tensors() {
//!     println!("{} {} {:?}: {} bytes", t.name, t.dtype, t.shape, st.tensor_bytes(t).len());
//! }
//! # Ok::<(), netport_safetensors::SafetensorsError>(())
//! ```

mod error;
pub mod index;
mod read;
pub mod write;

pub use error::SafetensorsError;
pub use index::ShardIndex;
pub use read::{MAX_HEADER_BYTES, SafetensorsFile, SafetensorsTensor};
pub use write::OutTensor;

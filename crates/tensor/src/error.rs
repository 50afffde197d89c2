//! The crate's single error type, [`TensorError`].
//!
//! Every message names the numbers involved (shape, strides, offset, byte
//! counts, element indices and values) so that a user can see what is wrong
//! with a file without a debugger.

use crate::dtype::DType;
use thiserror::Error;

/// Everything that can go wrong in this crate.
///
/// Shapes, strides and offsets are counted in elements; byte counts in bytes.
/// Element indices in conversion errors are logical (row-major) multi-indices.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum TensorError {
    /// The shape and the strides do not have the same number of dimensions.
    #[error(
        "shape {shape:?} has {} dimensions but strides {strides:?} has {}",
        shape.len(),
        strides.len()
    )]
    RankMismatch {
        /// The shape, in elements.
        shape: Vec<u64>,
        /// The strides, in elements.
        strides: Vec<u64>,
    },

    /// A size computation does not fit in 64 bits (or, for byte sizes of a
    /// copy, in the address space of this machine).
    #[error(
        "shape {shape:?} with strides {strides:?} at offset {offset}: {what} overflows 64-bit arithmetic"
    )]
    Overflow {
        /// The shape, in elements.
        shape: Vec<u64>,
        /// The strides, in elements (empty when none were involved).
        strides: Vec<u64>,
        /// The storage offset, in elements.
        offset: u64,
        /// Which quantity overflowed, e.g. "the element count".
        what: &'static str,
    },

    /// The buffer is too short for the highest element the view can reach.
    #[error(
        "shape {shape:?} with strides {strides:?} at offset {offset} needs {needed} bytes but the buffer holds {available}"
    )]
    BufferTooSmall {
        /// The shape, in elements.
        shape: Vec<u64>,
        /// The strides, in elements.
        strides: Vec<u64>,
        /// The storage offset, in elements.
        offset: u64,
        /// Bytes needed: `(offset + sum((dim - 1) * stride) + 1) * element size`.
        needed: u64,
        /// Bytes in the buffer.
        available: usize,
    },

    /// An index has the wrong rank or a coordinate is not below its dimension.
    #[error("index {index:?} does not address an element of shape {shape:?}")]
    IndexOutOfBounds {
        /// The index that was asked for.
        index: Vec<u64>,
        /// The shape of the view.
        shape: Vec<u64>,
    },

    /// A buffer's length is not a multiple of the element size.
    #[error(
        "a buffer of {len} bytes is not a whole number of {dtype} elements ({element_size} bytes each)"
    )]
    BufferNotWholeElements {
        /// The buffer length in bytes.
        len: usize,
        /// The element type.
        dtype: DType,
        /// Bytes per element of `dtype`.
        element_size: usize,
    },

    /// Memory for an output buffer could not be reserved.
    #[error("cannot allocate {bytes} bytes for the output buffer")]
    AllocationFailed {
        /// The requested size in bytes.
        bytes: u64,
    },

    /// The conversion between these two dtypes is not implemented.
    #[error(
        "converting {from} to {to} is not supported; numeric conversion covers float64, float32, float16, bfloat16, int8, int16, int32, int64, uint8, uint16, uint32, uint64 and bool"
    )]
    UnsupportedConversion {
        /// Source dtype.
        from: DType,
        /// Target dtype.
        to: DType,
    },

    /// A floating-point element is NaN, infinite, or outside the range of the
    /// integer target after truncation toward zero.
    #[error("element {index:?} of the {from} tensor is {value}, which {to} cannot represent")]
    FloatNotRepresentable {
        /// Logical (row-major) index of the element.
        index: Vec<u64>,
        /// The element's value.
        value: f64,
        /// Source dtype.
        from: DType,
        /// Target dtype.
        to: DType,
    },

    /// An integer element is outside the range of the integer target.
    #[error(
        "element {index:?} of the {from} tensor is {value}, which is outside the range of {to}"
    )]
    IntNotRepresentable {
        /// Logical (row-major) index of the element.
        index: Vec<u64>,
        /// The element's value.
        value: i128,
        /// Source dtype.
        from: DType,
        /// Target dtype.
        to: DType,
    },

    /// A `.npy` file whose header cannot be read.
    #[error("not a readable .npy array: {reason}")]
    Npy {
        /// What is wrong, and where.
        reason: String,
    },

    /// A `.npy` object array: its data is a pickle, which netport never runs.
    #[error(
        "a .npy object array (dtype {descr}): its data is a pickle, which numpy.load(allow_pickle=True) would run; netport never reads one"
    )]
    NpyObjectArray {
        /// The dtype as the header gives it.
        descr: String,
    },

    /// A string is not a known torch dtype name.
    #[error("{name:?} is not a torch dtype name (expected e.g. \"float32\" or \"torch.half\")")]
    UnknownDTypeName {
        /// The string that failed to parse.
        name: String,
    },
}

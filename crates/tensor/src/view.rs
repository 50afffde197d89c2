//! Byte order and validated strided views over borrowed tensor bytes.
//!
//! A [`TensorView`] is what a checkpoint tensor is on disk: a storage buffer,
//! a dtype, a shape, strides and a storage offset (the last three counted in
//! elements, as torch does), plus the byte order of the buffer. The
//! constructor proves once that every reachable element lies inside the
//! buffer, using checked arithmetic, so the accessors and copies afterwards
//! never index out of bounds and never overflow.
//!
//! Copies walk the tensor in logical (row-major) order with an index odometer
//! and copy whole runs of contiguous elements at a time; nothing is allocated
//! per element.

use crate::dtype::DType;
use crate::error::TensorError;
use std::fmt;
use std::iter::FusedIterator;

/// Byte order of multi-byte elements in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Least significant byte first (x86, ARM, and every format netport writes).
    Little,
    /// Most significant byte first (s390x, some older PowerPC machines).
    Big,
}

impl ByteOrder {
    /// The byte order of the machine running this code.
    pub const fn native() -> Self {
        if cfg!(target_endian = "big") {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        }
    }

    /// True if this is the byte order of the machine running this code.
    pub const fn is_native(self) -> bool {
        matches!(
            (self, Self::native()),
            (ByteOrder::Little, ByteOrder::Little) | (ByteOrder::Big, ByteOrder::Big)
        )
    }

    /// `"little"` or `"big"`, the spelling of Python's `sys.byteorder` and of
    /// the `byteorder` record in torch zip checkpoints.
    pub const fn as_str(self) -> &'static str {
        match self {
            ByteOrder::Little => "little",
            ByteOrder::Big => "big",
        }
    }

    /// Parses `"little"` or `"big"` (exactly, as torch writes them).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "little" => Some(ByteOrder::Little),
            "big" => Some(ByteOrder::Big),
            _ => None,
        }
    }
}

impl fmt::Display for ByteOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// C-order (row-major) strides for `shape`, in elements, computed like torch:
/// `stride[i] = stride[i + 1] * max(shape[i + 1], 1)`, so dimensions of size 0
/// do not zero the strides of outer dimensions.
pub fn contiguous_strides(shape: &[u64]) -> Result<Vec<u64>, TensorError> {
    let mut strides = vec![0u64; shape.len()];
    let mut acc = 1u64;
    for (stride, &dim) in strides.iter_mut().zip(shape).rev() {
        *stride = acc;
        acc = acc
            .checked_mul(dim.max(1))
            .ok_or_else(|| TensorError::Overflow {
                shape: shape.to_vec(),
                strides: Vec::new(),
                offset: 0,
                what: "the contiguous strides",
            })?;
    }
    Ok(strides)
}

/// Number of bytes a buffer must hold for a view with this layout:
/// `(offset + sum((dim - 1) * stride) + 1) * element size`, or 0 if any
/// dimension is 0 (an empty tensor reads nothing, whatever its offset).
/// A 0-d tensor (empty `shape`) is one element.
pub fn required_bytes(
    dtype: DType,
    shape: &[u64],
    strides: &[u64],
    offset: u64,
) -> Result<u64, TensorError> {
    Ok(check_layout(dtype, shape, strides, offset)?.needed)
}

/// Facts established by [`check_layout`].
struct Layout {
    numel: u64,
    nbytes: usize,
    needed: u64,
}

fn check_layout(
    dtype: DType,
    shape: &[u64],
    strides: &[u64],
    offset: u64,
) -> Result<Layout, TensorError> {
    if shape.len() != strides.len() {
        return Err(TensorError::RankMismatch {
            shape: shape.to_vec(),
            strides: strides.to_vec(),
        });
    }
    let overflow = |what| TensorError::Overflow {
        shape: shape.to_vec(),
        strides: strides.to_vec(),
        offset,
        what,
    };
    if shape.contains(&0) {
        return Ok(Layout {
            numel: 0,
            nbytes: 0,
            needed: 0,
        });
    }
    let elem = dtype.size_in_bytes() as u64;
    let numel = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| overflow("the element count"))?;
    let nbytes = numel
        .checked_mul(elem)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| overflow("the byte size of the tensor"))?;
    let last = shape
        .iter()
        .zip(strides)
        .try_fold(offset, |acc, (&d, &s)| {
            (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x))
        })
        .ok_or_else(|| overflow("the highest element index"))?;
    let needed = last
        .checked_add(1)
        .and_then(|n| n.checked_mul(elem))
        .ok_or_else(|| overflow("the byte extent"))?;
    Ok(Layout {
        numel,
        nbytes,
        needed,
    })
}

/// A validated, read-only strided view of tensor elements in a byte buffer.
///
/// Invariant (established by [`TensorView::new`]): if the tensor is not empty,
/// `(offset + sum((shape[d] - 1) * strides[d]) + 1) * dtype.size_in_bytes()`
/// is at most `data.len()`, and `numel * dtype.size_in_bytes()` fits in `usize`.
#[derive(Debug, Clone)]
pub struct TensorView<'a> {
    data: &'a [u8],
    dtype: DType,
    shape: Vec<u64>,
    strides: Vec<u64>,
    offset: u64,
    order: ByteOrder,
    numel: u64,
    nbytes: usize,
}

impl<'a> TensorView<'a> {
    /// Validates a strided view of `data`.
    ///
    /// `shape`, `strides` (non-negative; zero is allowed, as torch's `expand`
    /// produces) and `offset` are in elements of `dtype`. Errors if the ranks
    /// differ, if any size computation overflows, or if the highest reachable
    /// element does not fit in `data`. An empty tensor (any dimension 0) needs
    /// no bytes; a 0-d tensor (empty `shape`) is one element.
    pub fn new(
        data: &'a [u8],
        dtype: DType,
        shape: &[u64],
        strides: &[u64],
        offset: u64,
        order: ByteOrder,
    ) -> Result<Self, TensorError> {
        let layout = check_layout(dtype, shape, strides, offset)?;
        if layout.needed > data.len() as u64 {
            return Err(TensorError::BufferTooSmall {
                shape: shape.to_vec(),
                strides: strides.to_vec(),
                offset,
                needed: layout.needed,
                available: data.len(),
            });
        }
        Ok(TensorView {
            data,
            dtype,
            shape: shape.to_vec(),
            strides: strides.to_vec(),
            offset,
            order,
            numel: layout.numel,
            nbytes: layout.nbytes,
        })
    }

    /// A C-contiguous view (row-major strides from [`contiguous_strides`],
    /// offset 0). `data` may be longer than the tensor; the excess is ignored.
    pub fn contiguous(
        data: &'a [u8],
        dtype: DType,
        shape: &[u64],
        order: ByteOrder,
    ) -> Result<Self, TensorError> {
        let strides = contiguous_strides(shape)?;
        Self::new(data, dtype, shape, &strides, 0, order)
    }

    /// The whole underlying buffer (not just the bytes this view reaches).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape, in elements.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The strides, in elements.
    pub fn strides(&self) -> &[u64] {
        &self.strides
    }

    /// The storage offset, in elements.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The byte order of the buffer.
    pub fn byte_order(&self) -> ByteOrder {
        self.order
    }

    /// Number of dimensions (0 for a scalar).
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements (1 for a 0-d tensor, 0 if any dimension is 0).
    pub fn numel(&self) -> u64 {
        self.numel
    }

    /// True if the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.numel == 0
    }

    /// Bytes of the logical tensor when made contiguous: `numel * element size`.
    pub fn nbytes(&self) -> usize {
        self.nbytes
    }

    /// Torch's `is_contiguous()`: the elements are packed in row-major order
    /// with no gaps. Dimensions of size 1 may have any stride, and an empty
    /// tensor is contiguous.
    pub fn is_contiguous(&self) -> bool {
        if self.numel == 0 {
            return true;
        }
        let mut expected = 1u64;
        for (&dim, &stride) in self.shape.iter().zip(&self.strides).rev() {
            if dim == 1 {
                continue;
            }
            if stride != expected {
                return false;
            }
            // No overflow: the running product is at most numel.
            expected *= dim;
        }
        true
    }

    /// The bytes of the element at `index` (one coordinate per dimension), in
    /// the buffer's byte order.
    pub fn element_bytes(&self, index: &[u64]) -> Result<&'a [u8], TensorError> {
        let out_of_bounds = || TensorError::IndexOutOfBounds {
            index: index.to_vec(),
            shape: self.shape.clone(),
        };
        if index.len() != self.shape.len() || index.iter().zip(&self.shape).any(|(i, d)| i >= d) {
            return Err(out_of_bounds());
        }
        // No overflow: every term is at most the validated highest index.
        let pos = index
            .iter()
            .zip(&self.strides)
            .fold(self.offset, |acc, (i, s)| acc + i * s);
        self.element_at(pos).ok_or_else(out_of_bounds)
    }

    /// The bytes of the element at element position `pos` of the buffer.
    fn element_at(&self, pos: u64) -> Option<&'a [u8]> {
        let size = self.dtype.size_in_bytes();
        let start = usize::try_from(pos).ok()?.checked_mul(size)?;
        self.data.get(start..start.checked_add(size)?)
    }

    /// The elements' bytes in logical (row-major) order, each slice one
    /// element long and in the buffer's byte order.
    pub fn elements(&self) -> Elements<'a> {
        Elements {
            runs: self.runs(),
            current: &[],
            size: self.dtype.size_in_bytes(),
            remaining: self.numel,
        }
    }

    /// The tensor as maximal runs of elements that are adjacent in the buffer,
    /// in logical order. Concatenating the runs gives the contiguous tensor.
    pub fn runs(&self) -> Runs<'a> {
        // Size-1 dimensions never move the position; drop them.
        let mut dims: Vec<(u64, u64)> = self
            .shape
            .iter()
            .copied()
            .zip(self.strides.iter().copied())
            .filter(|&(d, _)| d != 1)
            .collect();
        // Absorb the innermost dimensions that are packed into one run.
        let mut run = 1u64;
        while let Some(&(d, s)) = dims.last() {
            if s != run {
                break;
            }
            run *= d;
            dims.pop();
        }
        // Merge outer dimensions that step through memory as one dimension.
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(dims.len());
        for (d, s) in dims.into_iter().rev() {
            match merged.last_mut() {
                Some((inner_d, inner_s)) if s == *inner_s * *inner_d => *inner_d *= d,
                _ => merged.push((d, s)),
            }
        }
        merged.reverse();
        let (outer_shape, outer_strides): (Vec<u64>, Vec<u64>) = merged.into_iter().unzip();
        let remaining = if self.numel == 0 { 0 } else { self.numel / run };
        Runs {
            data: self.data,
            size: self.dtype.size_in_bytes(),
            run_bytes: (run as usize).saturating_mul(self.dtype.size_in_bytes()),
            index: vec![0; outer_shape.len()],
            outer_shape,
            outer_strides,
            pos: self.offset,
            remaining,
        }
    }

    /// Copies the tensor into a new contiguous buffer (same dtype and byte
    /// order). A contiguous view is a single copy of its byte range.
    pub fn to_contiguous(&self) -> Result<Vec<u8>, TensorError> {
        let mut out = Vec::new();
        out.try_reserve_exact(self.nbytes)
            .map_err(|_| TensorError::AllocationFailed {
                bytes: self.nbytes as u64,
            })?;
        if self.numel == 0 {
            return Ok(out);
        }
        if self.is_contiguous() {
            let range = usize::try_from(self.offset)
                .ok()
                .and_then(|o| o.checked_mul(self.dtype.size_in_bytes()))
                .and_then(|start| Some(start..start.checked_add(self.nbytes)?))
                .and_then(|range| self.data.get(range));
            if let Some(bytes) = range {
                out.extend_from_slice(bytes);
                return Ok(out);
            }
        }
        for run in self.runs() {
            out.extend_from_slice(run);
        }
        Ok(out)
    }

    /// Like [`to_contiguous`](Self::to_contiguous), converting to byte order
    /// `order` (swapping per [`DType::byte_swap_width`]) if it differs from
    /// the view's.
    pub fn to_contiguous_in(&self, order: ByteOrder) -> Result<Vec<u8>, TensorError> {
        let mut out = self.to_contiguous()?;
        if order != self.order {
            swap_bytes_in_place(&mut out, self.dtype)?;
        }
        Ok(out)
    }
}

/// Reverses the byte order of every element of `buf`, a packed array of
/// `dtype` elements. Complex elements swap each component separately;
/// single-byte types (bool, int8, uint8, quantized 8-bit, float8, packed
/// sub-byte types) are left unchanged. Errors if `buf.len()` is not a multiple
/// of the element size.
pub fn swap_bytes_in_place(buf: &mut [u8], dtype: DType) -> Result<(), TensorError> {
    let size = dtype.size_in_bytes();
    if !buf.len().is_multiple_of(size) {
        return Err(TensorError::BufferNotWholeElements {
            len: buf.len(),
            dtype,
            element_size: size,
        });
    }
    match dtype.byte_swap_width() {
        1 => {}
        2 => swap_chunks::<2>(buf),
        4 => swap_chunks::<4>(buf),
        8 => swap_chunks::<8>(buf),
        width => buf.chunks_exact_mut(width).for_each(<[u8]>::reverse),
    }
    Ok(())
}

/// Reverses each `N`-byte chunk; `N` is a constant so this compiles to byte
/// swap instructions.
fn swap_chunks<const N: usize>(buf: &mut [u8]) {
    for chunk in buf.chunks_exact_mut(N) {
        chunk.reverse();
    }
}

/// Iterator over runs of adjacent elements, from [`TensorView::runs`].
#[derive(Debug, Clone)]
pub struct Runs<'a> {
    data: &'a [u8],
    size: usize,
    run_bytes: usize,
    outer_shape: Vec<u64>,
    outer_strides: Vec<u64>,
    index: Vec<u64>,
    /// Element position of the start of the next run.
    pos: u64,
    remaining: u64,
}

impl<'a> Iterator for Runs<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        let start = usize::try_from(self.pos).ok()?.checked_mul(self.size)?;
        let run = self.data.get(start..start.checked_add(self.run_bytes)?)?;
        self.remaining -= 1;
        if self.remaining > 0 {
            // Odometer step. No overflow: positions stay within twice the
            // validated highest element index.
            for d in (0..self.index.len()).rev() {
                self.index[d] += 1;
                self.pos += self.outer_strides[d];
                if self.index[d] < self.outer_shape[d] {
                    break;
                }
                self.pos -= self.outer_strides[d] * self.outer_shape[d];
                self.index[d] = 0;
            }
        }
        Some(run)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

/// Iterator over element byte slices, from [`TensorView::elements`].
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    runs: Runs<'a>,
    current: &'a [u8],
    size: usize,
    remaining: u64,
}

/// The element count fits in `usize`: the view's byte size does.
impl ExactSizeIterator for Runs<'_> {}
impl FusedIterator for Runs<'_> {}
/// The element count fits in `usize`: the view's byte size does.
impl ExactSizeIterator for Elements<'_> {}
impl FusedIterator for Elements<'_> {}

impl<'a> Iterator for Elements<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.current.is_empty() {
            self.current = self.runs.next()?;
        }
        let (element, rest) = self.current.split_at_checked(self.size)?;
        self.current = rest;
        self.remaining = self.remaining.saturating_sub(1);
        Some(element)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

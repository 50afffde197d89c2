//! NumPy `.npy` arrays: the header, read with the `npyz` crate after its
//! length and bracket nesting are checked against the bytes, and the data as
//! a [`TensorView`]. An array whose dtype holds an object is stored as a
//! pickle, which `numpy.load(allow_pickle=True)` runs: [`NpyHeader::pickled`]
//! says so, and [`view`] refuses such an array, so no reader built on this
//! module ever unpickles one. (The scan of `netport-torch` reads the pickle's
//! bytes, without running them, to judge it.)

use crate::{DType, TensorError, TensorView};

/// The first bytes of a `.npy` file.
pub const MAGIC: &[u8] = b"\x93NUMPY";

/// Largest header read (numpy itself refuses headers over 10,000 bytes
/// unless told otherwise).
pub const MAX_HEADER: usize = 1 << 20;

/// Deepest bracket nesting accepted in a header (a real one nests a
/// structured dtype a few levels at most).
pub const MAX_NESTING: usize = 32;

/// What a `.npy` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The dtype holds an object somewhere (structured dtypes included): the
    /// data is a pickle.
    pub pickled: bool,
    /// Where the data (or the pickle) starts.
    pub data_offset: u64,
    /// The `descr` as numpy writes it (`<f4`, `|O`, a record list, ...).
    pub descr: String,
    /// The shape.
    pub shape: Vec<u64>,
    /// Column-major data (`fortran_order: True`).
    pub fortran_order: bool,
}

fn npy_error(reason: impl Into<String>) -> TensorError {
    TensorError::Npy {
        reason: reason.into(),
    }
}

/// Reads the header of a `.npy` file held in `data` (a whole file or at
/// least its header).
pub fn read_header(data: &[u8]) -> Result<NpyHeader, TensorError> {
    if !data.starts_with(MAGIC) {
        return Err(npy_error("no .npy magic (\\x93NUMPY) at byte 0"));
    }
    let version = *data
        .get(6)
        .ok_or_else(|| npy_error("the file ends inside the .npy magic"))?;
    let (len, start) = match version {
        1 => (
            data.get(8..10)
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize),
            10,
        ),
        2 | 3 => (
            data.get(8..12)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize),
            12,
        ),
        v => {
            return Err(npy_error(format!(
                "unknown .npy format version {v} at byte 6"
            )));
        }
    };
    let len = len.ok_or_else(|| npy_error("the file ends inside the .npy header length"))?;
    if len > MAX_HEADER {
        return Err(npy_error(format!(
            "a .npy header of {len} bytes (at byte {start}), over the {MAX_HEADER}-byte limit"
        )));
    }
    let end = start + len;
    let text = data.get(start..end).ok_or_else(|| {
        npy_error(format!(
            "the .npy header of {len} bytes at byte {start} runs past the end of the file ({} bytes)",
            data.len()
        ))
    })?;
    let mut depth = 0usize;
    for &b in text {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(npy_error(format!(
                        "the .npy header nests brackets more than {MAX_NESTING} deep"
                    )));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let header = npyz::NpyHeader::from_reader(&data[..end])
        .map_err(|e| npy_error(format!("unreadable .npy header at byte {start}: {e}")))?;
    Ok(NpyHeader {
        pickled: header.uses_pickled_array(),
        data_offset: end as u64,
        descr: header.dtype().descr().trim_matches('\'').to_owned(),
        shape: header.shape().to_vec(),
        fortran_order: header.order() == npyz::Order::Fortran,
    })
}

/// The array of a `.npy` file held in `data`, as a view of its bytes.
/// Object arrays (pickles) and dtypes netport has no element type for
/// (structured records, strings, datetimes) are refused.
pub fn view(data: &[u8]) -> Result<TensorView<'_>, TensorError> {
    let h = read_header(data)?;
    if h.pickled {
        return Err(TensorError::NpyObjectArray { descr: h.descr });
    }
    let (dtype, order) = DType::parse_numpy_descr(&h.descr)
        .ok_or_else(|| npy_error(format!("dtype {} has no netport element type", h.descr)))?;
    // Strides in elements: row-major, or column-major for Fortran order.
    let mut strides = vec![0u64; h.shape.len()];
    let mut step = 1u64;
    let dims: Vec<usize> = if h.fortran_order {
        (0..h.shape.len()).collect()
    } else {
        (0..h.shape.len()).rev().collect()
    };
    for i in dims {
        strides[i] = step;
        step = step.saturating_mul(h.shape[i].max(1));
    }
    let body = &data[h.data_offset as usize..];
    TensorView::new(body, dtype, &h.shape, &strides, 0, order)
}

//! The executor's owned tensors: a shape and a typed vector of elements
//! ([`Data`]), converted from and to little-endian bytes, `.npy` files and
//! other dtypes.

use crate::error::ExecError;
use half::{bf16, f16};
use netport_tensor::{ByteOrder, DType, TensorView};

/// The elements of a tensor, one variant per dtype the executor computes in.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
}

/// Runs `$body` with `$v` bound to the vector inside any [`Data`] variant
/// (the body must typecheck for every element type).
#[macro_export]
#[doc(hidden)]
macro_rules! with_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            $crate::tensor::Data::F32($v) => $body,
            $crate::tensor::Data::F64($v) => $body,
            $crate::tensor::Data::F16($v) => $body,
            $crate::tensor::Data::BF16($v) => $body,
            $crate::tensor::Data::I8($v) => $body,
            $crate::tensor::Data::I16($v) => $body,
            $crate::tensor::Data::I32($v) => $body,
            $crate::tensor::Data::I64($v) => $body,
            $crate::tensor::Data::U8($v) => $body,
            $crate::tensor::Data::U16($v) => $body,
            $crate::tensor::Data::U32($v) => $body,
            $crate::tensor::Data::U64($v) => $body,
            $crate::tensor::Data::Bool($v) => $body,
        }
    };
}

/// Like [`with_data!`], but the body makes a new vector that is wrapped in
/// the same variant.
#[macro_export]
#[doc(hidden)]
macro_rules! map_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            $crate::tensor::Data::F32($v) => $crate::tensor::Data::F32($body),
            $crate::tensor::Data::F64($v) => $crate::tensor::Data::F64($body),
            $crate::tensor::Data::F16($v) => $crate::tensor::Data::F16($body),
            $crate::tensor::Data::BF16($v) => $crate::tensor::Data::BF16($body),
            $crate::tensor::Data::I8($v) => $crate::tensor::Data::I8($body),
            $crate::tensor::Data::I16($v) => $crate::tensor::Data::I16($body),
            $crate::tensor::Data::I32($v) => $crate::tensor::Data::I32($body),
            $crate::tensor::Data::I64($v) => $crate::tensor::Data::I64($body),
            $crate::tensor::Data::U8($v) => $crate::tensor::Data::U8($body),
            $crate::tensor::Data::U16($v) => $crate::tensor::Data::U16($body),
            $crate::tensor::Data::U32($v) => $crate::tensor::Data::U32($body),
            $crate::tensor::Data::U64($v) => $crate::tensor::Data::U64($body),
            $crate::tensor::Data::Bool($v) => $crate::tensor::Data::Bool($body),
        }
    };
}

/// A dense row-major tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The dimensions.
    pub shape: Vec<usize>,
    /// The elements, `shape.iter().product()` of them.
    pub data: Data,
}

/// The dtypes the executor holds tensors of.
pub const SUPPORTED_DTYPES: &[DType] = &[
    DType::Float32,
    DType::Float64,
    DType::Float16,
    DType::BFloat16,
    DType::Int8,
    DType::Int16,
    DType::Int32,
    DType::Int64,
    DType::UInt8,
    DType::UInt16,
    DType::UInt32,
    DType::UInt64,
    DType::Bool,
];

fn chunks<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    bytes.chunks_exact(N).map(|c| {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    })
}

impl Data {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::Float32,
            Data::F64(_) => DType::Float64,
            Data::F16(_) => DType::Float16,
            Data::BF16(_) => DType::BFloat16,
            Data::I8(_) => DType::Int8,
            Data::I16(_) => DType::Int16,
            Data::I32(_) => DType::Int32,
            Data::I64(_) => DType::Int64,
            Data::U8(_) => DType::UInt8,
            Data::U16(_) => DType::UInt16,
            Data::U32(_) => DType::UInt32,
            Data::U64(_) => DType::UInt64,
            Data::Bool(_) => DType::Bool,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        with_data!(self, v => v.len())
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes packed little-endian elements of `dtype`; `None` for a dtype
    /// the executor does not hold.
    pub fn from_le_bytes(dtype: DType, bytes: &[u8]) -> Option<Data> {
        Some(match dtype {
            DType::Float32 => Data::F32(chunks::<4>(bytes).map(f32::from_le_bytes).collect()),
            DType::Float64 => Data::F64(chunks::<8>(bytes).map(f64::from_le_bytes).collect()),
            DType::Float16 => Data::F16(chunks::<2>(bytes).map(f16::from_le_bytes).collect()),
            DType::BFloat16 => Data::BF16(chunks::<2>(bytes).map(bf16::from_le_bytes).collect()),
            DType::Int8 => Data::I8(bytes.iter().map(|&b| b as i8).collect()),
            DType::Int16 => Data::I16(chunks::<2>(bytes).map(i16::from_le_bytes).collect()),
            DType::Int32 => Data::I32(chunks::<4>(bytes).map(i32::from_le_bytes).collect()),
            DType::Int64 => Data::I64(chunks::<8>(bytes).map(i64::from_le_bytes).collect()),
            DType::UInt8 => Data::U8(bytes.to_vec()),
            DType::UInt16 => Data::U16(chunks::<2>(bytes).map(u16::from_le_bytes).collect()),
            DType::UInt32 => Data::U32(chunks::<4>(bytes).map(u32::from_le_bytes).collect()),
            DType::UInt64 => Data::U64(chunks::<8>(bytes).map(u64::from_le_bytes).collect()),
            DType::Bool => Data::Bool(bytes.iter().map(|&b| b != 0).collect()),
            _ => return None,
        })
    }

    /// The elements as packed little-endian bytes.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Data::Bool(v) => v.iter().map(|&b| b as u8).collect(),
            Data::U8(v) => v.clone(),
            Data::I8(v) => v.iter().map(|&b| b as u8).collect(),
            Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::BF16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::U16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::U64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// Every element as f64 (exact for all but the largest 64-bit integers).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F64(v) => v.clone(),
            Data::F16(v) => v.iter().map(|&x| x.to_f64()).collect(),
            Data::BF16(v) => v.iter().map(|&x| x.to_f64()).collect(),
            Data::I8(v) => v.iter().map(|&x| x as f64).collect(),
            Data::I16(v) => v.iter().map(|&x| x as f64).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U8(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U16(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::Bool(v) => v.iter().map(|&x| x as u8 as f64).collect(),
        }
    }

    /// Integer elements as i64; `None` for floats and bool.
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        Some(match self {
            Data::I8(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I16(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I64(v) => v.clone(),
            Data::U8(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U16(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U64(v) => v.iter().map(|&x| x as i64).collect(),
            _ => return None,
        })
    }

    /// A vector of `dtype` made from f64 values (rounded to nearest for the
    /// floats, truncated toward zero and wrapped for integers as a C cast
    /// would; NaN becomes 0 for integers).
    pub fn from_f64(dtype: DType, v: &[f64]) -> Option<Data> {
        Some(match dtype {
            DType::Float32 => Data::F32(v.iter().map(|&x| x as f32).collect()),
            DType::Float64 => Data::F64(v.to_vec()),
            DType::Float16 => Data::F16(v.iter().map(|&x| f16::from_f64(x)).collect()),
            DType::BFloat16 => Data::BF16(v.iter().map(|&x| bf16::from_f64(x)).collect()),
            DType::Int8 => Data::I8(v.iter().map(|&x| x as i64 as i8).collect()),
            DType::Int16 => Data::I16(v.iter().map(|&x| x as i64 as i16).collect()),
            DType::Int32 => Data::I32(v.iter().map(|&x| x as i64 as i32).collect()),
            DType::Int64 => Data::I64(v.iter().map(|&x| x as i64).collect()),
            DType::UInt8 => Data::U8(v.iter().map(|&x| x as i64 as u8).collect()),
            DType::UInt16 => Data::U16(v.iter().map(|&x| x as i64 as u16).collect()),
            DType::UInt32 => Data::U32(v.iter().map(|&x| x as i64 as u32).collect()),
            DType::UInt64 => Data::U64(v.iter().map(|&x| x as u64).collect()),
            DType::Bool => Data::Bool(v.iter().map(|&x| x != 0.0).collect()),
            _ => return None,
        })
    }

    /// An empty vector of `dtype`, with room for `n` elements.
    pub fn empty(dtype: DType, n: usize) -> Option<Data> {
        Some(match dtype {
            DType::Float32 => Data::F32(Vec::with_capacity(n)),
            DType::Float64 => Data::F64(Vec::with_capacity(n)),
            DType::Float16 => Data::F16(Vec::with_capacity(n)),
            DType::BFloat16 => Data::BF16(Vec::with_capacity(n)),
            DType::Int8 => Data::I8(Vec::with_capacity(n)),
            DType::Int16 => Data::I16(Vec::with_capacity(n)),
            DType::Int32 => Data::I32(Vec::with_capacity(n)),
            DType::Int64 => Data::I64(Vec::with_capacity(n)),
            DType::UInt8 => Data::U8(Vec::with_capacity(n)),
            DType::UInt16 => Data::U16(Vec::with_capacity(n)),
            DType::UInt32 => Data::U32(Vec::with_capacity(n)),
            DType::UInt64 => Data::U64(Vec::with_capacity(n)),
            DType::Bool => Data::Bool(Vec::with_capacity(n)),
            _ => return None,
        })
    }
}

impl Tensor {
    /// A tensor from a shape and elements; the element count must match.
    pub fn new(shape: Vec<usize>, data: Data) -> Result<Tensor, String> {
        let n = numel(&shape).ok_or_else(|| format!("shape {shape:?} overflows"))?;
        if n != data.len() {
            return Err(format!(
                "shape {shape:?} needs {n} elements, {} given",
                data.len()
            ));
        }
        Ok(Tensor { shape, data })
    }

    /// A float32 tensor.
    pub fn f32(shape: Vec<usize>, v: Vec<f32>) -> Result<Tensor, String> {
        Tensor::new(shape, Data::F32(v))
    }

    /// An int64 tensor.
    pub fn i64(shape: Vec<usize>, v: Vec<i64>) -> Result<Tensor, String> {
        Tensor::new(shape, Data::I64(v))
    }

    /// A scalar (rank 0) tensor.
    pub fn scalar(data: Data) -> Tensor {
        Tensor {
            shape: vec![],
            data,
        }
    }

    /// The dtype.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The element count.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The rank.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Decodes little-endian bytes of `dtype` into a tensor of `shape`.
    pub fn from_le_bytes(dtype: DType, shape: Vec<usize>, bytes: &[u8]) -> Result<Tensor, String> {
        let n = numel(&shape).ok_or_else(|| format!("shape {shape:?} overflows"))?;
        let want = n.checked_mul(dtype.size_in_bytes());
        if want != Some(bytes.len()) {
            return Err(format!(
                "{dtype} shape {shape:?} needs {} bytes, {} given",
                want.map_or("too many".to_string(), |w| w.to_string()),
                bytes.len()
            ));
        }
        let data = Data::from_le_bytes(dtype, bytes)
            .ok_or_else(|| format!("dtype {dtype} is not supported by the executor"))?;
        Tensor::new(shape, data)
    }

    /// Copies a strided view (any byte order) into a tensor.
    pub fn from_view(view: &TensorView<'_>) -> Result<Tensor, String> {
        let dtype = view.dtype();
        let shape = view
            .shape()
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| format!("dimension {d} too large")))
            .collect::<Result<Vec<_>, _>>()?;
        let bytes = view
            .to_contiguous_in(ByteOrder::Little)
            .map_err(|e| e.to_string())?;
        Tensor::from_le_bytes(dtype, shape, &bytes)
    }

    /// Reads a `.npy` file's bytes.
    pub fn from_npy(bytes: &[u8]) -> Result<Tensor, ExecError> {
        let view = netport_tensor::npy::view(bytes)?;
        Tensor::from_view(&view).map_err(|reason| ExecError::Input {
            name: "npy".into(),
            reason,
        })
    }

    /// Encodes the tensor as a `.npy` file (version 1.0, little-endian,
    /// C order); bfloat16, which numpy has no dtype for, is refused.
    pub fn to_npy(&self) -> Result<Vec<u8>, String> {
        let descr = self
            .dtype()
            .numpy_descr()
            .ok_or_else(|| format!("numpy has no dtype for {}", self.dtype()))?;
        let shape = match self.shape.len() {
            0 => "()".to_string(),
            1 => format!("({},)", self.shape[0]),
            _ => format!(
                "({})",
                self.shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        // magic (6) + version (2) + length (2) + header + '\n', to a multiple of 64.
        let total = 10 + header.len() + 1;
        header.push_str(&" ".repeat(total.next_multiple_of(64) - total));
        header.push('\n');
        let mut out = Vec::with_capacity(10 + header.len() + self.numel() * 8);
        out.extend_from_slice(netport_tensor::npy::MAGIC);
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&self.data.to_le_bytes());
        Ok(out)
    }

    /// The elements as f32 (computing copy for the float kernels).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            Data::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
            other => other.to_f64_vec().into_iter().map(|x| x as f32).collect(),
        }
    }

    /// Integer elements as i64 (shape-like inputs); an error names the dtype
    /// otherwise.
    pub fn to_i64_vec(&self) -> Result<Vec<i64>, String> {
        self.data
            .to_i64_vec()
            .ok_or_else(|| format!("expected an integer tensor, found {}", self.dtype()))
    }

    /// Converts to another dtype with ONNX `Cast` semantics (floats rounded to
    /// nearest; floats to integers truncated toward zero; to bool: non-zero).
    pub fn cast(&self, to: DType) -> Result<Tensor, String> {
        if to == self.dtype() {
            return Ok(self.clone());
        }
        let data = match (&self.data, to) {
            (Data::F32(v), DType::Float16) => {
                Data::F16(v.iter().map(|&x| f16::from_f32(x)).collect())
            }
            (Data::F32(v), DType::BFloat16) => {
                Data::BF16(v.iter().map(|&x| bf16::from_f32(x)).collect())
            }
            (Data::I64(v), DType::Float32) => Data::F32(v.iter().map(|&x| x as f32).collect()),
            (Data::I64(v), DType::Float64) => Data::F64(v.iter().map(|&x| x as f64).collect()),
            (Data::U64(v), DType::Float32) => Data::F32(v.iter().map(|&x| x as f32).collect()),
            (Data::U64(v), DType::Float64) => Data::F64(v.iter().map(|&x| x as f64).collect()),
            (src, _) => {
                if let Some(ints) = src.to_i64_vec() {
                    // Integer to integer keeps all 64 bits (wrapping casts).
                    match to {
                        DType::Int8 => Data::I8(ints.iter().map(|&x| x as i8).collect()),
                        DType::Int16 => Data::I16(ints.iter().map(|&x| x as i16).collect()),
                        DType::Int32 => Data::I32(ints.iter().map(|&x| x as i32).collect()),
                        DType::Int64 => Data::I64(ints),
                        DType::UInt8 => Data::U8(ints.iter().map(|&x| x as u8).collect()),
                        DType::UInt16 => Data::U16(ints.iter().map(|&x| x as u16).collect()),
                        DType::UInt32 => Data::U32(ints.iter().map(|&x| x as u32).collect()),
                        DType::UInt64 => Data::U64(ints.iter().map(|&x| x as u64).collect()),
                        DType::Bool => Data::Bool(ints.iter().map(|&x| x != 0).collect()),
                        _ => Data::from_f64(to, &src.to_f64_vec())
                            .ok_or_else(|| format!("cannot cast to {to}"))?,
                    }
                } else {
                    Data::from_f64(to, &src.to_f64_vec())
                        .ok_or_else(|| format!("cannot cast to {to}"))?
                }
            }
        };
        Ok(Tensor {
            shape: self.shape.clone(),
            data,
        })
    }

    /// The same elements under another shape of the same size.
    pub fn reshaped(mut self, shape: Vec<usize>) -> Result<Tensor, String> {
        if numel(&shape) != Some(self.numel()) {
            return Err(format!(
                "cannot reshape {:?} ({} elements) to {shape:?}",
                self.shape,
                self.numel()
            ));
        }
        self.shape = shape;
        Ok(self)
    }
}

/// The element count of a shape, `None` on overflow.
pub fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// Row-major strides of a shape, in elements.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

//! Tensor basics shared by every netport crate: element types, shapes,
//! validated strided views over borrowed bytes, byte order, and numeric dtype
//! conversion.
//!
//! - [`dtype`]: [`DType`], every element type a PyTorch checkpoint can hold,
//!   with its torch, storage-class, ONNX, Caffe2, safetensors and numpy names.
//! - [`view`]: [`ByteOrder`], [`TensorView`] (a dtype + shape + strides +
//!   offset over a `&[u8]`, validated once with checked arithmetic), contiguous
//!   copies and byte swapping.
//! - [`convert`](mod@convert): [`convert()`](fn@convert) between float64, float32,
//!   float16, bfloat16, the integer types and bool, with correct rounding and
//!   errors instead of silent saturation.
//! - [`error`]: [`TensorError`], the one error type of the crate.
//!
//! Nothing here panics on bad input: hostile shapes, strides and offsets are
//! errors that name the numbers involved.
//!
//! ```
//! use netport_tensor::{convert, ByteOrder, DType, TensorView};
//!
//! // A 2x2 float32 tensor stored transposed (column-major), little-endian.
//! let bytes: Vec<u8> = [1.0f32, 3.0, 2.0, 4.0].iter().flat_map(|x| x.to_le_bytes()).collect();
//! let view = TensorView::new(&bytes, DType::Float32, &[2, 2], &[1, 2], 0, ByteOrder::Little)?;
//! assert!(!view.is_contiguous());
//! let halves = convert(&view, DType::Float16)?;
//! assert_eq!(halves, [0x00, 0x3C, 0x00, 0x40, 0x00, 0x42, 0x00, 0x44]); // 1, 2, 3, 4
//! # Ok::<(), netport_tensor::TensorError>(())
//! ```
//!
//! # Dtype table
//!
//! "–" means the format has no element-for-element equivalent. Python storage
//! classes exist only for the 17 legacy typed storages; torch saves the other
//! dtypes as `UntypedStorage` plus `_rebuild_tensor_v3`. TorchScript storage
//! names are `c10::toString(ScalarType) + "Storage"`. Caffe2 `BYTE` (3) is
//! also read as uint8. Packed types (`float4_e2m1fn_x2`, `quint4x2`,
//! `quint2x4`) count one byte per element, so they do not map to ONNX
//! `FLOAT4E2M1` / safetensors `F4`, which count 4-bit values.
//!
//! | torch | bits | Python storage | TorchScript storage | ONNX | Caffe2 | safetensors | numpy |
//! |---|---|---|---|---|---|---|---|
//! | `float64` (`double`) | 64 | `DoubleStorage` | `DoubleStorage` | `11` | `13` | `F64` | `<f8` |
//! | `float32` (`float`) | 32 | `FloatStorage` | `FloatStorage` | `1` | `1` | `F32` | `<f4` |
//! | `float16` (`half`) | 16 | `HalfStorage` | `HalfStorage` | `10` | `12` | `F16` | `<f2` |
//! | `bfloat16` | 16 | `BFloat16Storage` | `BFloat16Storage` | `16` | – | `BF16` | – |
//! | `float8_e4m3fn` | 8 | – | `Float8_e4m3fnStorage` | `17` | – | `F8_E4M3` | – |
//! | `float8_e4m3fnuz` | 8 | – | `Float8_e4m3fnuzStorage` | `18` | – | `F8_E4M3FNUZ` | – |
//! | `float8_e5m2` | 8 | – | `Float8_e5m2Storage` | `19` | – | `F8_E5M2` | – |
//! | `float8_e5m2fnuz` | 8 | – | `Float8_e5m2fnuzStorage` | `20` | – | `F8_E5M2FNUZ` | – |
//! | `float8_e8m0fnu` | 8 | – | `Float8_e8m0fnuStorage` | `24` | – | `F8_E8M0` | – |
//! | `float4_e2m1fn_x2` | 8 | – | `Float4_e2m1fn_x2Storage` | – | – | – | – |
//! | `complex32` (`chalf`) | 32 | – | `ComplexHalfStorage` | – | – | – | – |
//! | `bcomplex32` | 32 | – | `BComplex32Storage` | – | – | – | – |
//! | `complex64` (`cfloat`) | 64 | `ComplexFloatStorage` | `ComplexFloatStorage` | `14` | – | `C64` | `<c8` |
//! | `complex128` (`cdouble`) | 128 | `ComplexDoubleStorage` | `ComplexDoubleStorage` | `15` | – | – | `<c16` |
//! | `int8` | 8 | `CharStorage` | `CharStorage` | `3` | `7` | `I8` | `\|i1` |
//! | `int16` (`short`) | 16 | `ShortStorage` | `ShortStorage` | `5` | `9` | `I16` | `<i2` |
//! | `int32` (`int`) | 32 | `IntStorage` | `IntStorage` | `6` | `2` | `I32` | `<i4` |
//! | `int64` (`long`) | 64 | `LongStorage` | `LongStorage` | `7` | `10` | `I64` | `<i8` |
//! | `uint8` | 8 | `ByteStorage` | `ByteStorage` | `2` | `6` | `U8` | `\|u1` |
//! | `uint16` | 16 | – | `UInt16Storage` | `4` | `8` | `U16` | `<u2` |
//! | `uint32` | 32 | – | `UInt32Storage` | `12` | – | `U32` | `<u4` |
//! | `uint64` | 64 | – | `UInt64Storage` | `13` | – | `U64` | `<u8` |
//! | `bool` | 8 | `BoolStorage` | `BoolStorage` | `9` | `5` | `BOOL` | `\|b1` |
//! | `qint8` | 8 | `QInt8Storage` | `QInt8Storage` | – | – | – | – |
//! | `quint8` | 8 | `QUInt8Storage` | `QUInt8Storage` | – | – | – | – |
//! | `qint32` | 32 | `QInt32Storage` | `QInt32Storage` | – | – | – | – |
//! | `quint4x2` | 8 | `QUInt4x2Storage` | `QUInt4x2Storage` | – | – | – | – |
//! | `quint2x4` | 8 | `QUInt2x4Storage` | `QUInt2x4Storage` | – | – | – | – |
//! | `bits1x8` | 8 | – | `Bits1x8Storage` | – | – | – | – |
//! | `bits2x4` | 8 | – | `Bits2x4Storage` | – | – | – | – |
//! | `bits4x2` | 8 | – | `Bits4x2Storage` | – | – | – | – |
//! | `bits8` | 8 | – | `Bits8Storage` | – | – | – | – |
//! | `bits16` | 16 | – | `Bits16Storage` | – | – | – | – |
//! | `uint1` | 8 | – | `UInt1Storage` | – | – | – | – |
//! | `uint2` | 8 | – | `UInt2Storage` | – | – | – | – |
//! | `uint3` | 8 | – | `UInt3Storage` | – | – | – | – |
//! | `uint4` | 8 | – | `UInt4Storage` | – | – | – | – |
//! | `uint5` | 8 | – | `UInt5Storage` | – | – | – | – |
//! | `uint6` | 8 | – | `UInt6Storage` | – | – | – | – |
//! | `uint7` | 8 | – | `UInt7Storage` | – | – | – | – |
//! | `int1` | 8 | – | `Int1Storage` | – | – | – | – |
//! | `int2` | 8 | – | `Int2Storage` | – | – | – | – |
//! | `int3` | 8 | – | `Int3Storage` | – | – | – | – |
//! | `int4` | 8 | – | `Int4Storage` | – | – | – | – |
//! | `int5` | 8 | – | `Int5Storage` | – | – | – | – |
//! | `int6` | 8 | – | `Int6Storage` | – | – | – | – |
//! | `int7` | 8 | – | `Int7Storage` | – | – | – | – |

pub mod convert;
pub mod dtype;
pub mod error;
pub mod npy;
pub mod view;

pub use convert::{can_convert, convert};
pub use dtype::DType;
pub use error::TensorError;
pub use view::{
    ByteOrder, Elements, Runs, TensorView, contiguous_strides, required_bytes, swap_bytes_in_place,
};

//! Element types ([`DType`]) and their names and codes in every format netport
//! reads or writes: torch dtype and storage-class names, ONNX and Caffe2
//! `TensorProto.DataType` codes, safetensors dtype strings and numpy type
//! descriptors.
//!
//! All facts live in one table (`INFO`, one row per variant); the methods are
//! look-ups into it, so the forward and reverse mappings cannot drift apart.
//! The crate-level docs render the same table for humans, and a unit test
//! checks that the rendering is up to date.

use crate::error::TensorError;
use crate::view::ByteOrder;
use std::fmt;
use std::str::FromStr;

/// Every element type a PyTorch checkpoint can hold (torch 2.15).
///
/// Sizes follow torch's `element_size()`: one element of a packed type such as
/// [`QUInt4x2`](DType::QUInt4x2) or [`Float4E2M1FnX2`](DType::Float4E2M1FnX2)
/// is the *byte* that packs several values, so every dtype is a whole number of
/// bytes and shapes, strides and offsets are always counted in those units.
///
/// The sub-byte integer dtypes [`UInt1`](DType::UInt1)..[`UInt7`](DType::UInt7)
/// and [`Int1`](DType::Int1)..[`Int7`](DType::Int7) are torch "shell" dtypes:
/// c10 backs them with an empty placeholder struct, so their `element_size()`
/// is 1 byte, and they carry no arithmetic in torch itself (tensor subclasses
/// such as torchao's give them meaning). They appear in checkpoints as dtype
/// GLOBALs (they are on the `weights_only` allowlist), so they are listed here.
/// Because torch stores one such element per byte, they are **not** the packed
/// ONNX `UINT4`/`INT4`/`UINT2`/`INT2` types, and map to no ONNX code.
///
/// `Float4E2M1FnX2` likewise maps to neither ONNX `FLOAT4E2M1` (23) nor
/// safetensors `F4`: those count single 4-bit values, torch counts bytes of two
/// values, so a shape would be off by a factor of two in the last dimension.
/// Translating between them is a shape change, not a dtype renaming, and is
/// left to the format crates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// `torch.float64` (`torch.double`), IEEE binary64.
    Float64,
    /// `torch.float32` (`torch.float`), IEEE binary32.
    Float32,
    /// `torch.float16` (`torch.half`), IEEE binary16.
    Float16,
    /// `torch.bfloat16`, the upper half of a binary32.
    BFloat16,
    /// `torch.float8_e4m3fn`: 4 exponent bits, 3 mantissa bits, no infinities.
    Float8E4M3Fn,
    /// `torch.float8_e4m3fnuz`: like e4m3fn, exponent bias 8, single NaN, no negative zero.
    Float8E4M3Fnuz,
    /// `torch.float8_e5m2`: 5 exponent bits, 2 mantissa bits (IEEE-like).
    Float8E5M2,
    /// `torch.float8_e5m2fnuz`: like e5m2, exponent bias 16, single NaN, no infinities or negative zero.
    Float8E5M2Fnuz,
    /// `torch.float8_e8m0fnu`: an unsigned power-of-two scale (OCP MX E8M0).
    Float8E8M0Fnu,
    /// `torch.float4_e2m1fn_x2`: one byte holding two e2m1 values.
    Float4E2M1FnX2,
    /// `torch.complex32` (`torch.chalf`): two float16 (real, imaginary).
    Complex32,
    /// `torch.bcomplex32`: two bfloat16 (real, imaginary).
    BComplex32,
    /// `torch.complex64` (`torch.cfloat`): two float32.
    Complex64,
    /// `torch.complex128` (`torch.cdouble`): two float64.
    Complex128,
    /// `torch.int8`.
    Int8,
    /// `torch.int16` (`torch.short`).
    Int16,
    /// `torch.int32` (`torch.int`).
    Int32,
    /// `torch.int64` (`torch.long`).
    Int64,
    /// `torch.uint8`.
    UInt8,
    /// `torch.uint16`.
    UInt16,
    /// `torch.uint32`.
    UInt32,
    /// `torch.uint64`.
    UInt64,
    /// `torch.bool`: one byte per element, 0 or 1.
    Bool,
    /// `torch.qint8`: quantized, int8 storage (scale and zero point live elsewhere).
    QInt8,
    /// `torch.quint8`: quantized, uint8 storage.
    QUInt8,
    /// `torch.qint32`: quantized, int32 storage.
    QInt32,
    /// `torch.quint4x2`: quantized, two 4-bit values per byte.
    QUInt4x2,
    /// `torch.quint2x4`: quantized, four 2-bit values per byte.
    QUInt2x4,
    /// `torch.bits1x8`: opaque byte of eight 1-bit fields.
    Bits1x8,
    /// `torch.bits2x4`: opaque byte of four 2-bit fields.
    Bits2x4,
    /// `torch.bits4x2`: opaque byte of two 4-bit fields.
    Bits4x2,
    /// `torch.bits8`: opaque byte.
    Bits8,
    /// `torch.bits16`: opaque 16-bit word.
    Bits16,
    /// `torch.uint1` (shell dtype, one byte per element).
    UInt1,
    /// `torch.uint2` (shell dtype, one byte per element).
    UInt2,
    /// `torch.uint3` (shell dtype, one byte per element).
    UInt3,
    /// `torch.uint4` (shell dtype, one byte per element).
    UInt4,
    /// `torch.uint5` (shell dtype, one byte per element).
    UInt5,
    /// `torch.uint6` (shell dtype, one byte per element).
    UInt6,
    /// `torch.uint7` (shell dtype, one byte per element).
    UInt7,
    /// `torch.int1` (shell dtype, one byte per element).
    Int1,
    /// `torch.int2` (shell dtype, one byte per element).
    Int2,
    /// `torch.int3` (shell dtype, one byte per element).
    Int3,
    /// `torch.int4` (shell dtype, one byte per element).
    Int4,
    /// `torch.int5` (shell dtype, one byte per element).
    Int5,
    /// `torch.int6` (shell dtype, one byte per element).
    Int6,
    /// `torch.int7` (shell dtype, one byte per element).
    Int7,
}

/// Broad category of a dtype, used by the predicates and by byte swapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Float,
    Complex,
    Int,
    Bool,
    Quantized,
    Bits,
}

/// One row of the dtype table.
struct Info {
    dtype: DType,
    torch: &'static str,
    legacy: Option<&'static str>,
    bits: u32,
    storage: Option<&'static str>,
    ts_storage: &'static str,
    onnx: Option<i32>,
    caffe2: Option<i32>,
    safetensors: Option<&'static str>,
    numpy: Option<&'static str>,
    kind: Kind,
    signed: bool,
}

/// Compact row constructor so the table below stays one line per dtype.
#[allow(clippy::too_many_arguments)]
const fn row(
    dtype: DType,
    torch: &'static str,
    legacy: Option<&'static str>,
    bits: u32,
    storage: Option<&'static str>,
    ts_storage: &'static str,
    onnx: Option<i32>,
    caffe2: Option<i32>,
    safetensors: Option<&'static str>,
    numpy: Option<&'static str>,
    kind: Kind,
    signed: bool,
) -> Info {
    Info {
        dtype,
        torch,
        legacy,
        bits,
        storage,
        ts_storage,
        onnx,
        caffe2,
        safetensors,
        numpy,
        kind,
        signed,
    }
}

use DType as D;
use Kind as K;

/// The dtype table, in declaration order of [`DType`] (checked by a test).
///
/// Sources: storage classes and sizes from `torch.storage` / `torch._utils`
/// (docs/formats/pytorch.md, 'Persistent ids and storage types'); TorchScript storage names are
/// `c10::toString(ScalarType) + "Storage"` ('TorchScript archives'); ONNX codes from onnx 1.23.2
/// (`TensorProto.DataType` in proto/onnx.proto); Caffe2 codes from `caffe2.proto` (proto/caffe2.proto);
/// safetensors strings from the `safetensors` 0.8 crate's `Dtype` and the
/// torch mapping of its Python bindings.
#[rustfmt::skip]
const INFO: [Info; 47] = [
    //  dtype              torch               legacy          bits storage                        torchscript storage            onnx      caffe2    safetensors          numpy          kind          signed
    row(D::Float64,        "float64",          Some("double"),  64, Some("DoubleStorage"),        "DoubleStorage",               Some(11), Some(13), Some("F64"),         Some("<f8"),   K::Float,     true),
    row(D::Float32,        "float32",          Some("float"),   32, Some("FloatStorage"),         "FloatStorage",                Some(1),  Some(1),  Some("F32"),         Some("<f4"),   K::Float,     true),
    row(D::Float16,        "float16",          Some("half"),    16, Some("HalfStorage"),          "HalfStorage",                 Some(10), Some(12), Some("F16"),         Some("<f2"),   K::Float,     true),
    row(D::BFloat16,       "bfloat16",         None,            16, Some("BFloat16Storage"),      "BFloat16Storage",             Some(16), None,     Some("BF16"),        None,          K::Float,     true),
    row(D::Float8E4M3Fn,   "float8_e4m3fn",    None,             8, None,                         "Float8_e4m3fnStorage",        Some(17), None,     Some("F8_E4M3"),     None,          K::Float,     true),
    row(D::Float8E4M3Fnuz, "float8_e4m3fnuz",  None,             8, None,                         "Float8_e4m3fnuzStorage",      Some(18), None,     Some("F8_E4M3FNUZ"), None,          K::Float,     true),
    row(D::Float8E5M2,     "float8_e5m2",      None,             8, None,                         "Float8_e5m2Storage",          Some(19), None,     Some("F8_E5M2"),     None,          K::Float,     true),
    row(D::Float8E5M2Fnuz, "float8_e5m2fnuz",  None,             8, None,                         "Float8_e5m2fnuzStorage",      Some(20), None,     Some("F8_E5M2FNUZ"), None,          K::Float,     true),
    row(D::Float8E8M0Fnu,  "float8_e8m0fnu",   None,             8, None,                         "Float8_e8m0fnuStorage",       Some(24), None,     Some("F8_E8M0"),     None,          K::Float,     false),
    row(D::Float4E2M1FnX2, "float4_e2m1fn_x2", None,             8, None,                         "Float4_e2m1fn_x2Storage",     None,     None,     None,                None,          K::Float,     true),
    row(D::Complex32,      "complex32",        Some("chalf"),   32, None,                         "ComplexHalfStorage",          None,     None,     None,                None,          K::Complex,   true),
    row(D::BComplex32,     "bcomplex32",       None,            32, None,                         "BComplex32Storage",           None,     None,     None,                None,          K::Complex,   true),
    row(D::Complex64,      "complex64",        Some("cfloat"),  64, Some("ComplexFloatStorage"),  "ComplexFloatStorage",         Some(14), None,     Some("C64"),         Some("<c8"),   K::Complex,   true),
    row(D::Complex128,     "complex128",       Some("cdouble"),128, Some("ComplexDoubleStorage"), "ComplexDoubleStorage",        Some(15), None,     None,                Some("<c16"),  K::Complex,   true),
    row(D::Int8,           "int8",             None,             8, Some("CharStorage"),          "CharStorage",                 Some(3),  Some(7),  Some("I8"),          Some("|i1"),   K::Int,       true),
    row(D::Int16,          "int16",            Some("short"),   16, Some("ShortStorage"),         "ShortStorage",                Some(5),  Some(9),  Some("I16"),         Some("<i2"),   K::Int,       true),
    row(D::Int32,          "int32",            Some("int"),     32, Some("IntStorage"),           "IntStorage",                  Some(6),  Some(2),  Some("I32"),         Some("<i4"),   K::Int,       true),
    row(D::Int64,          "int64",            Some("long"),    64, Some("LongStorage"),          "LongStorage",                 Some(7),  Some(10), Some("I64"),         Some("<i8"),   K::Int,       true),
    row(D::UInt8,          "uint8",            None,             8, Some("ByteStorage"),          "ByteStorage",                 Some(2),  Some(6),  Some("U8"),          Some("|u1"),   K::Int,       false),
    row(D::UInt16,         "uint16",           None,            16, None,                         "UInt16Storage",               Some(4),  Some(8),  Some("U16"),         Some("<u2"),   K::Int,       false),
    row(D::UInt32,         "uint32",           None,            32, None,                         "UInt32Storage",               Some(12), None,     Some("U32"),         Some("<u4"),   K::Int,       false),
    row(D::UInt64,         "uint64",           None,            64, None,                         "UInt64Storage",               Some(13), None,     Some("U64"),         Some("<u8"),   K::Int,       false),
    row(D::Bool,           "bool",             None,             8, Some("BoolStorage"),          "BoolStorage",                 Some(9),  Some(5),  Some("BOOL"),        Some("|b1"),   K::Bool,      false),
    row(D::QInt8,          "qint8",            None,             8, Some("QInt8Storage"),         "QInt8Storage",                None,     None,     None,                None,          K::Quantized, true),
    row(D::QUInt8,         "quint8",           None,             8, Some("QUInt8Storage"),        "QUInt8Storage",               None,     None,     None,                None,          K::Quantized, false),
    row(D::QInt32,         "qint32",           None,            32, Some("QInt32Storage"),        "QInt32Storage",               None,     None,     None,                None,          K::Quantized, true),
    row(D::QUInt4x2,       "quint4x2",         None,             8, Some("QUInt4x2Storage"),      "QUInt4x2Storage",             None,     None,     None,                None,          K::Quantized, false),
    row(D::QUInt2x4,       "quint2x4",         None,             8, Some("QUInt2x4Storage"),      "QUInt2x4Storage",             None,     None,     None,                None,          K::Quantized, false),
    row(D::Bits1x8,        "bits1x8",          None,             8, None,                         "Bits1x8Storage",              None,     None,     None,                None,          K::Bits,      false),
    row(D::Bits2x4,        "bits2x4",          None,             8, None,                         "Bits2x4Storage",              None,     None,     None,                None,          K::Bits,      false),
    row(D::Bits4x2,        "bits4x2",          None,             8, None,                         "Bits4x2Storage",              None,     None,     None,                None,          K::Bits,      false),
    row(D::Bits8,          "bits8",            None,             8, None,                         "Bits8Storage",                None,     None,     None,                None,          K::Bits,      false),
    row(D::Bits16,         "bits16",           None,            16, None,                         "Bits16Storage",               None,     None,     None,                None,          K::Bits,      false),
    row(D::UInt1,          "uint1",            None,             8, None,                         "UInt1Storage",                None,     None,     None,                None,          K::Int,       false),
    row(D::UInt2,          "uint2",            None,             8, None,                         "UInt2Storage",                None,     None,     None,                None,          K::Int,       false),
    row(D::UInt3,          "uint3",            None,             8, None,                         "UInt3Storage",                None,     None,     None,                None,          K::Int,       false),
    row(D::UInt4,          "uint4",            None,             8, None,                         "UInt4Storage",                None,     None,     None,                None,          K::Int,       false),
    row(D::UInt5,          "uint5",            None,             8, None,                         "UInt5Storage",                None,     None,     None,                None,          K::Int,       false),
    row(D::UInt6,          "uint6",            None,             8, None,                         "UInt6Storage",                None,     None,     None,                None,          K::Int,       false),
    row(D::UInt7,          "uint7",            None,             8, None,                         "UInt7Storage",                None,     None,     None,                None,          K::Int,       false),
    row(D::Int1,           "int1",             None,             8, None,                         "Int1Storage",                 None,     None,     None,                None,          K::Int,       true),
    row(D::Int2,           "int2",             None,             8, None,                         "Int2Storage",                 None,     None,     None,                None,          K::Int,       true),
    row(D::Int3,           "int3",             None,             8, None,                         "Int3Storage",                 None,     None,     None,                None,          K::Int,       true),
    row(D::Int4,           "int4",             None,             8, None,                         "Int4Storage",                 None,     None,     None,                None,          K::Int,       true),
    row(D::Int5,           "int5",             None,             8, None,                         "Int5Storage",                 None,     None,     None,                None,          K::Int,       true),
    row(D::Int6,           "int6",             None,             8, None,                         "Int6Storage",                 None,     None,     None,                None,          K::Int,       true),
    row(D::Int7,           "int7",             None,             8, None,                         "Int7Storage",                 None,     None,     None,                None,          K::Int,       true),
];

/// Caffe2's `TensorProto.DataType.BYTE`, which Caffe2 restores as uint8.
const CAFFE2_BYTE: i32 = 3;

impl DType {
    /// Every dtype, in declaration order.
    pub const ALL: [DType; 47] = [
        D::Float64,
        D::Float32,
        D::Float16,
        D::BFloat16,
        D::Float8E4M3Fn,
        D::Float8E4M3Fnuz,
        D::Float8E5M2,
        D::Float8E5M2Fnuz,
        D::Float8E8M0Fnu,
        D::Float4E2M1FnX2,
        D::Complex32,
        D::BComplex32,
        D::Complex64,
        D::Complex128,
        D::Int8,
        D::Int16,
        D::Int32,
        D::Int64,
        D::UInt8,
        D::UInt16,
        D::UInt32,
        D::UInt64,
        D::Bool,
        D::QInt8,
        D::QUInt8,
        D::QInt32,
        D::QUInt4x2,
        D::QUInt2x4,
        D::Bits1x8,
        D::Bits2x4,
        D::Bits4x2,
        D::Bits8,
        D::Bits16,
        D::UInt1,
        D::UInt2,
        D::UInt3,
        D::UInt4,
        D::UInt5,
        D::UInt6,
        D::UInt7,
        D::Int1,
        D::Int2,
        D::Int3,
        D::Int4,
        D::Int5,
        D::Int6,
        D::Int7,
    ];

    const fn info(self) -> &'static Info {
        &INFO[self as usize]
    }

    /// Bits per element, i.e. torch's `element_size() * 8`. Packed types count
    /// the whole byte: `quint4x2` and `float4_e2m1fn_x2` are 8.
    pub const fn bits(self) -> u32 {
        self.info().bits
    }

    /// Bytes per element, torch's `element_size()` (1, 2, 4, 8 or 16).
    pub const fn size_in_bytes(self) -> usize {
        (self.info().bits / 8) as usize
    }

    /// The canonical torch name, as in `torch.float32` (without `torch.`).
    /// This is also what pickles use (`GLOBAL torch float32`).
    pub const fn torch_name(self) -> &'static str {
        self.info().torch
    }

    /// The second torch spelling, where one exists: `double`, `float`, `half`,
    /// `chalf`, `cfloat`, `cdouble`, `short`, `int`, `long`. Pickles never
    /// write these (aliases pickle as the canonical name), but users type them.
    pub const fn torch_legacy_name(self) -> Option<&'static str> {
        self.info().legacy
    }

    /// The Python typed-storage class name (`FloatStorage`, `QInt8Storage`, ...),
    /// used by `torch.save` in the persistent id of `_rebuild_tensor_v2`
    /// tensors. `None` for the dtypes that torch only saves as an
    /// `UntypedStorage` plus `_rebuild_tensor_v3` (float8, uint16/32/64,
    /// complex32, bits, ...).
    pub const fn storage_class(self) -> Option<&'static str> {
        self.info().storage
    }

    /// The storage class name written by the C++ (TorchScript) pickler:
    /// `c10::toString(scalar_type) + "Storage"`. Identical to
    /// [`storage_class`](Self::storage_class) for the 17 legacy typed storages;
    /// c10 spellings such as `Float8_e4m3fnStorage`, `UInt16Storage` or
    /// `ComplexHalfStorage` for the others.
    pub const fn torchscript_storage_class(self) -> &'static str {
        self.info().ts_storage
    }

    /// ONNX `TensorProto.DataType` code, for dtypes with an element-for-element
    /// equivalent. Quantized, bits, complex32 and the torch sub-byte shell
    /// dtypes have none; neither has `float4_e2m1fn_x2` (see the type docs).
    pub const fn onnx(self) -> Option<i32> {
        self.info().onnx
    }

    /// Caffe2 `TensorProto.DataType` code (FLOAT 1, INT32 2, BOOL 5, UINT8 6,
    /// INT8 7, UINT16 8, INT16 9, INT64 10, FLOAT16 12, DOUBLE 13).
    pub const fn caffe2(self) -> Option<i32> {
        self.info().caffe2
    }

    /// The safetensors dtype string (`"F32"`, `"BF16"`, `"F8_E4M3"`, ...), for
    /// dtypes with an element-for-element equivalent in safetensors 0.8.
    pub const fn safetensors(self) -> Option<&'static str> {
        self.info().safetensors
    }

    /// The numpy type descriptor in little-endian spelling (`"<f4"`), with `|`
    /// for single-byte types (`"|b1"`, `"|i1"`, `"|u1"`). `None` where numpy
    /// has no such type (bfloat16, float8, complex32, ...).
    pub const fn numpy_descr(self) -> Option<&'static str> {
        self.info().numpy
    }

    /// Width in bytes of the units to reverse when changing byte order: the
    /// element size, except complex types swap each component separately
    /// (complex64 swaps two 4-byte halves). 1 means no swap is needed.
    pub const fn byte_swap_width(self) -> usize {
        let size = self.size_in_bytes();
        match self.info().kind {
            Kind::Complex => size / 2,
            Kind::Bool => 1,
            Kind::Float | Kind::Int | Kind::Quantized | Kind::Bits => size,
        }
    }

    /// True for real floating-point types, as torch's `is_floating_point`
    /// (float64 ... float8, float4_e2m1fn_x2); false for complex.
    pub const fn is_floating_point(self) -> bool {
        matches!(self.info().kind, Kind::Float)
    }

    /// True for the complex types (complex32, bcomplex32, complex64, complex128).
    pub const fn is_complex(self) -> bool {
        matches!(self.info().kind, Kind::Complex)
    }

    /// True for the quantized types (qint8, quint8, qint32, quint4x2, quint2x4).
    pub const fn is_quantized(self) -> bool {
        matches!(self.info().kind, Kind::Quantized)
    }

    /// True if values of this type can be negative: floats (except the
    /// unsigned float8_e8m0fnu), complex, signed and signed-quantized integers.
    /// False for unsigned types, bool and the opaque bits types.
    pub const fn is_signed(self) -> bool {
        self.info().signed
    }

    /// Parses a torch dtype name: canonical (`float32`) or legacy (`float`,
    /// `half`, `long`, ...), with or without a `torch.` prefix.
    pub fn from_torch_name(name: &str) -> Option<DType> {
        let name = name.strip_prefix("torch.").unwrap_or(name);
        INFO.iter()
            .find(|i| i.torch == name || i.legacy == Some(name))
            .map(|i| i.dtype)
    }

    /// Parses a storage class name in either spelling (Python
    /// `ComplexFloatStorage` or c10 `Float8_e4m3fnStorage`). A `torch.` or
    /// `torch.cuda.` module prefix is accepted and ignored, as torch's
    /// unpickler ignores the module of storage GLOBALs. `UntypedStorage` and
    /// `TypedStorage` are not dtypes and give `None`.
    pub fn from_storage_class(name: &str) -> Option<DType> {
        let name = name
            .strip_prefix("torch.cuda.")
            .or_else(|| name.strip_prefix("torch."))
            .unwrap_or(name);
        INFO.iter()
            .find(|i| i.storage == Some(name) || i.ts_storage == name)
            .map(|i| i.dtype)
    }

    /// The dtype with this ONNX `TensorProto.DataType` code.
    pub fn from_onnx(code: i32) -> Option<DType> {
        INFO.iter().find(|i| i.onnx == Some(code)).map(|i| i.dtype)
    }

    /// The dtype with this Caffe2 `TensorProto.DataType` code. The legacy
    /// `BYTE` (3) is read as uint8, as Caffe2 itself restores it; it is never
    /// produced by [`caffe2`](Self::caffe2), which gives `UINT8` (6).
    pub fn from_caffe2(code: i32) -> Option<DType> {
        if code == CAFFE2_BYTE {
            return Some(DType::UInt8);
        }
        INFO.iter()
            .find(|i| i.caffe2 == Some(code))
            .map(|i| i.dtype)
    }

    /// The dtype with this safetensors dtype string (exact, case-sensitive).
    pub fn from_safetensors(name: &str) -> Option<DType> {
        INFO.iter()
            .find(|i| i.safetensors == Some(name))
            .map(|i| i.dtype)
    }

    /// The dtype of a numpy descriptor whose data is little-endian: `"<f4"`,
    /// `"|u1"`, ... For single-byte types any order character (`|`, `<`, `>`,
    /// `=`) is accepted. Big-endian or native-order multi-byte descriptors give
    /// `None` here; use [`parse_numpy_descr`](Self::parse_numpy_descr) for those.
    pub fn from_numpy_descr(descr: &str) -> Option<DType> {
        match Self::parse_numpy_descr(descr)? {
            (dtype, ByteOrder::Little) => Some(dtype),
            (dtype, ByteOrder::Big) if dtype.size_in_bytes() == 1 => Some(dtype),
            _ => None,
        }
    }

    /// Parses a numpy descriptor into a dtype and the byte order of its data.
    /// The order character is `<` (little), `>` (big), `=` (this machine's
    /// order) or `|` (not applicable: single-byte types only). Single-byte
    /// types report [`ByteOrder::Little`], since their order is irrelevant.
    pub fn parse_numpy_descr(descr: &str) -> Option<(DType, ByteOrder)> {
        let mut chars = descr.chars();
        let order_char = chars.next()?;
        let code = chars.as_str();
        let dtype = INFO
            .iter()
            .find(|i| i.numpy.is_some_and(|n| n.get(1..) == Some(code)))?
            .dtype;
        let order = match order_char {
            '<' => ByteOrder::Little,
            '>' => ByteOrder::Big,
            '=' => ByteOrder::native(),
            '|' if dtype.size_in_bytes() == 1 => ByteOrder::Little,
            _ => return None,
        };
        if dtype.size_in_bytes() == 1 {
            return Some((dtype, ByteOrder::Little));
        }
        Some((dtype, order))
    }
}

impl fmt::Display for DType {
    /// Prints the canonical torch name, e.g. `float32`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.torch_name())
    }
}

impl FromStr for DType {
    type Err = TensorError;

    /// Parses like [`DType::from_torch_name`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DType::from_torch_name(s)
            .ok_or_else(|| TensorError::UnknownDTypeName { name: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn table_rows_match_declaration_order() {
        assert_eq!(INFO.len(), DType::ALL.len());
        for (i, d) in DType::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i, "ALL[{i}] is {d:?}");
            assert_eq!(INFO[i].dtype, *d, "INFO row {i}");
        }
    }

    #[test]
    fn sizes_are_whole_bytes() {
        for d in DType::ALL {
            assert_eq!(d.bits() % 8, 0, "{d}");
            assert!(matches!(d.size_in_bytes(), 1 | 2 | 4 | 8 | 16), "{d}");
            assert_eq!(d.size_in_bytes() % d.byte_swap_width(), 0, "{d}");
        }
    }

    /// Checks `from(to(d)) == d` for every dtype with a code, and that no two
    /// dtypes share a code.
    fn check_table<T: Eq + std::hash::Hash + std::fmt::Debug + Copy>(
        name: &str,
        to: impl Fn(DType) -> Option<T>,
        from: impl Fn(T) -> Option<DType>,
    ) -> usize {
        let mut seen = HashSet::new();
        for d in DType::ALL {
            if let Some(code) = to(d) {
                assert_eq!(
                    from(code),
                    Some(d),
                    "{name}: round trip of {d} via {code:?}"
                );
                assert!(seen.insert(code), "{name}: code {code:?} used twice");
            }
        }
        seen.len()
    }

    #[test]
    fn every_table_round_trips_and_codes_are_unique() {
        assert_eq!(
            check_table("torch", |d| Some(d.torch_name()), DType::from_torch_name),
            47
        );
        check_table(
            "torch legacy",
            DType::torch_legacy_name,
            DType::from_torch_name,
        );
        assert_eq!(
            check_table(
                "storage class",
                DType::storage_class,
                DType::from_storage_class
            ),
            17
        );
        assert_eq!(
            check_table(
                "torchscript storage class",
                |d| Some(d.torchscript_storage_class()),
                DType::from_storage_class,
            ),
            47
        );
        assert_eq!(check_table("onnx", DType::onnx, DType::from_onnx), 20);
        assert_eq!(check_table("caffe2", DType::caffe2, DType::from_caffe2), 10);
        assert_eq!(
            check_table("safetensors", DType::safetensors, DType::from_safetensors),
            19
        );
        assert_eq!(
            check_table("numpy", DType::numpy_descr, DType::from_numpy_descr),
            14
        );
        // Canonical and legacy torch names never collide with each other.
        let mut names = HashSet::new();
        for d in DType::ALL {
            assert!(names.insert(d.torch_name()));
            if let Some(l) = d.torch_legacy_name() {
                assert!(names.insert(l), "{l}");
            }
        }
    }

    #[test]
    fn python_and_c10_storage_names_agree_where_both_exist() {
        for d in DType::ALL {
            if let Some(py) = d.storage_class() {
                assert_eq!(py, d.torchscript_storage_class(), "{d}");
            }
        }
    }

    #[test]
    fn onnx_codes_match_the_reference() {
        let expected = [
            (1, D::Float32),
            (2, D::UInt8),
            (3, D::Int8),
            (4, D::UInt16),
            (5, D::Int16),
            (6, D::Int32),
            (7, D::Int64),
            (9, D::Bool),
            (10, D::Float16),
            (11, D::Float64),
            (12, D::UInt32),
            (13, D::UInt64),
            (14, D::Complex64),
            (15, D::Complex128),
            (16, D::BFloat16),
            (17, D::Float8E4M3Fn),
            (18, D::Float8E4M3Fnuz),
            (19, D::Float8E5M2),
            (20, D::Float8E5M2Fnuz),
            (24, D::Float8E8M0Fnu),
        ];
        for (code, d) in expected {
            assert_eq!(DType::from_onnx(code), Some(d), "onnx {code}");
        }
        // STRING, UINT4, INT4, FLOAT4E2M1, UINT2, INT2, FLOAT6*: no torch equivalent.
        for code in [0, 8, 21, 22, 23, 25, 26, 27, 28, 29, -1] {
            assert_eq!(DType::from_onnx(code), None, "onnx {code}");
        }
    }

    #[test]
    fn caffe2_codes_match_the_reference() {
        let expected = [
            (1, D::Float32),
            (2, D::Int32),
            (3, D::UInt8),
            (5, D::Bool),
            (6, D::UInt8),
            (7, D::Int8),
            (8, D::UInt16),
            (9, D::Int16),
            (10, D::Int64),
            (12, D::Float16),
            (13, D::Float64),
        ];
        for (code, d) in expected {
            assert_eq!(DType::from_caffe2(code), Some(d), "caffe2 {code}");
        }
        for code in [0, 4, 11, 14, 15, 16] {
            assert_eq!(DType::from_caffe2(code), None, "caffe2 {code}");
        }
        assert_eq!(D::UInt8.caffe2(), Some(6));
    }

    #[test]
    fn torch_names_parse_with_prefix_and_legacy_spellings() {
        assert_eq!(DType::from_torch_name("torch.float"), Some(D::Float32));
        assert_eq!(DType::from_torch_name("half"), Some(D::Float16));
        assert_eq!(DType::from_torch_name("torch.long"), Some(D::Int64));
        assert_eq!(DType::from_torch_name("cfloat"), Some(D::Complex64));
        assert_eq!(DType::from_torch_name("chalf"), Some(D::Complex32));
        assert_eq!(
            DType::from_torch_name("float4_e2m1fn_x2"),
            Some(D::Float4E2M1FnX2)
        );
        assert_eq!(DType::from_torch_name("Float"), None);
        assert_eq!(DType::from_torch_name("torch."), None);
        assert_eq!("torch.bfloat16".parse::<DType>(), Ok(D::BFloat16));
        let err = "f32".parse::<DType>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"f32\" is not a torch dtype name (expected e.g. \"float32\" or \"torch.half\")"
        );
        assert_eq!(D::Float32.to_string(), "float32");
        assert_eq!(D::QUInt4x2.to_string(), "quint4x2");
    }

    #[test]
    fn storage_classes_parse_with_module_prefixes() {
        assert_eq!(
            DType::from_storage_class("torch.FloatStorage"),
            Some(D::Float32)
        );
        assert_eq!(
            DType::from_storage_class("torch.cuda.HalfStorage"),
            Some(D::Float16)
        );
        assert_eq!(
            DType::from_storage_class("Float8_e4m3fnStorage"),
            Some(D::Float8E4M3Fn)
        );
        assert_eq!(
            DType::from_storage_class("ComplexHalfStorage"),
            Some(D::Complex32)
        );
        assert_eq!(DType::from_storage_class("UntypedStorage"), None);
        assert_eq!(
            DType::from_storage_class("torch.storage.UntypedStorage"),
            None
        );
        assert_eq!(DType::from_storage_class("TypedStorage"), None);
        assert_eq!(D::UInt16.storage_class(), None);
        assert_eq!(D::UInt16.torchscript_storage_class(), "UInt16Storage");
    }

    #[test]
    fn numpy_descriptors_parse_with_byte_order() {
        assert_eq!(
            DType::parse_numpy_descr(">f4"),
            Some((D::Float32, ByteOrder::Big))
        );
        assert_eq!(
            DType::parse_numpy_descr("<c16"),
            Some((D::Complex128, ByteOrder::Little))
        );
        assert_eq!(
            DType::parse_numpy_descr("=i8"),
            Some((D::Int64, ByteOrder::native()))
        );
        assert_eq!(
            DType::parse_numpy_descr("|b1"),
            Some((D::Bool, ByteOrder::Little))
        );
        assert_eq!(DType::from_numpy_descr("<u1"), Some(D::UInt8));
        assert_eq!(DType::from_numpy_descr(">i1"), Some(D::Int8));
        assert_eq!(DType::from_numpy_descr(">f8"), None);
        assert_eq!(DType::from_numpy_descr("|f4"), None);
        assert_eq!(DType::from_numpy_descr("<f3"), None);
        assert_eq!(DType::from_numpy_descr(""), None);
        assert_eq!(DType::from_numpy_descr("<"), None);
        assert_eq!(DType::from_numpy_descr("é"), None);
    }

    #[test]
    fn predicates() {
        assert!(D::Float8E5M2.is_floating_point());
        assert!(D::Float4E2M1FnX2.is_floating_point());
        assert!(!D::Complex64.is_floating_point());
        assert!(D::BComplex32.is_complex());
        assert!(D::QUInt2x4.is_quantized());
        assert!(!D::UInt8.is_quantized());
        assert!(D::QInt32.is_signed());
        assert!(!D::QUInt8.is_signed());
        assert!(!D::Float8E8M0Fnu.is_signed());
        assert!(!D::Bool.is_signed());
        assert!(!D::Bits16.is_signed());
        assert!(D::Int4.is_signed());
        assert!(!D::UInt4.is_signed());
    }

    #[test]
    fn sizes_match_torch_element_size() {
        let expected = [
            (D::Float64, 8),
            (D::Float8E8M0Fnu, 1),
            (D::Float4E2M1FnX2, 1),
            (D::Complex32, 4),
            (D::BComplex32, 4),
            (D::Complex128, 16),
            (D::Bool, 1),
            (D::QInt32, 4),
            (D::QUInt4x2, 1),
            (D::QUInt2x4, 1),
            (D::Bits16, 2),
            (D::UInt3, 1),
            (D::Int7, 1),
        ];
        for (d, size) in expected {
            assert_eq!(d.size_in_bytes(), size, "{d}");
        }
        assert_eq!(D::Complex64.byte_swap_width(), 4);
        assert_eq!(D::Complex32.byte_swap_width(), 2);
        assert_eq!(D::QInt32.byte_swap_width(), 4);
        assert_eq!(D::QUInt8.byte_swap_width(), 1);
        assert_eq!(D::Bool.byte_swap_width(), 1);
    }

    /// Renders the dtype table of the crate docs.
    fn render_doc_table() -> String {
        fn cell<T: std::fmt::Display>(v: Option<T>) -> String {
            // A `|` must be escaped even inside a code span in a table.
            v.map_or_else(
                || "–".to_owned(),
                |v| format!("`{}`", v.to_string().replace('|', "\\|")),
            )
        }
        let mut out = String::from(
            "//! | torch | bits | Python storage | TorchScript storage | ONNX | Caffe2 | safetensors | numpy |\n\
             //! |---|---|---|---|---|---|---|---|\n",
        );
        for d in DType::ALL {
            let torch = match d.torch_legacy_name() {
                Some(l) => format!("`{}` (`{l}`)", d.torch_name()),
                None => format!("`{}`", d.torch_name()),
            };
            out.push_str(&format!(
                "//! | {torch} | {} | {} | `{}` | {} | {} | {} | {} |\n",
                d.bits(),
                cell(d.storage_class()),
                d.torchscript_storage_class(),
                cell(d.onnx()),
                cell(d.caffe2()),
                cell(d.safetensors()),
                cell(d.numpy_descr()),
            ));
        }
        out
    }

    #[test]
    fn crate_doc_table_is_up_to_date() {
        let lib = include_str!("lib.rs");
        let table = render_doc_table();
        assert!(
            lib.contains(&table),
            "the dtype table in lib.rs is stale; replace it with:\n{table}"
        );
    }
}

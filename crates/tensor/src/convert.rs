//! Numeric dtype conversion of a [`TensorView`] into a new contiguous,
//! little-endian buffer.
//!
//! [`convert`] handles every pair among float64, float32, float16, bfloat16,
//! int8, int16, int32, int64, uint8, uint16, uint32, uint64 and bool, plus the
//! identity conversion of *any* dtype (a plain contiguous little-endian copy).
//! Other pairs (complex, quantized, float8, float4, bits, sub-byte shells) are
//! [`TensorError::UnsupportedConversion`]: they need scales, packing rules or
//! a choice about imaginary parts that a dtype alone does not give.
//!
//! # Rules
//!
//! - **float → float** rounds to nearest, ties to even, with one rounding
//!   step. Widening is exact. Values beyond the target's range become ±inf
//!   and NaN stays NaN, as in torch and IEEE 754.
//!   `half`'s own `f16::from_f64` / `bf16::from_f64` are *not* used: they
//!   drop the low 32 mantissa bits before rounding (and on x86 with F16C go
//!   through `f32`), so they round values just above a tie the wrong way.
//!   Instead the value is first rounded to `f32` with round-to-odd, which
//!   keeps the information needed for a correct final rounding
//!   (24 ≥ 11 + 2 and 24 ≥ 8 + 2 bits), and then rounded to f16/bf16 by
//!   `half` from `f32`, which is correct.
//! - **int → float** rounds to nearest, ties to even, also in one step
//!   (64-bit integers go through round-to-odd `f64` and `f32` on their way to
//!   f16/bf16). Integers beyond the range of float16 become ±inf.
//! - **float → int** truncates toward zero, like torch's `.to()`. A NaN, an
//!   infinity, or a truncated value outside the target's range is an error
//!   naming the element's index and value, never a silent saturation.
//! - **int → int** keeps the value; out of range is an error naming the
//!   element.
//! - **bool →** anything gives 0 or 1; a source byte other than 0 counts as
//!   true. **anything → bool** is `value != 0` (so NaN is true and -0.0 is
//!   false, as in torch).

use crate::dtype::DType;
use crate::error::TensorError;
use crate::view::{ByteOrder, TensorView};
use half::{bf16, f16};

/// True if [`convert`] supports converting `from` to `to`.
pub fn can_convert(from: DType, to: DType) -> bool {
    from == to || (Num::of(from).is_some() && Num::of(to).is_some())
}

/// Converts the elements of `view`, in logical (row-major) order, into a
/// contiguous little-endian buffer of dtype `to`, following the rules in the
/// module docs. When `to` is the view's dtype this is
/// `view.to_contiguous_in(ByteOrder::Little)`, for every dtype.
pub fn convert(view: &TensorView<'_>, to: DType) -> Result<Vec<u8>, TensorError> {
    let from = view.dtype();
    if from == to {
        return view.to_contiguous_in(ByteOrder::Little);
    }
    let (Some(src), Some(dst)) = (Num::of(from), Num::of(to)) else {
        return Err(TensorError::UnsupportedConversion { from, to });
    };
    let out_len = view
        .numel()
        .checked_mul(to.size_in_bytes() as u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| TensorError::Overflow {
            shape: view.shape().to_vec(),
            strides: view.strides().to_vec(),
            offset: view.offset(),
            what: "the byte size of the converted tensor",
        })?;
    let mut out = Vec::new();
    out.try_reserve_exact(out_len)
        .map_err(|_| TensorError::AllocationFailed {
            bytes: out_len as u64,
        })?;
    let order = view.byte_order();
    let size = from.size_in_bytes();
    let mut flat = 0u64;
    for run in view.runs() {
        for element in run.chunks_exact(size) {
            let value = decode(src, element, order);
            if !encode(dst, value, &mut out) {
                let index = unravel(flat, view.shape());
                return Err(match value {
                    Value::Float(value) => TensorError::FloatNotRepresentable {
                        index,
                        value,
                        from,
                        to,
                    },
                    Value::Int(value) => TensorError::IntNotRepresentable {
                        index,
                        value,
                        from,
                        to,
                    },
                });
            }
            flat += 1;
        }
    }
    Ok(out)
}

/// The dtypes [`convert`] handles numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Num {
    F64,
    F32,
    F16,
    BF16,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Bool,
}

impl Num {
    fn of(dtype: DType) -> Option<Num> {
        Some(match dtype {
            DType::Float64 => Num::F64,
            DType::Float32 => Num::F32,
            DType::Float16 => Num::F16,
            DType::BFloat16 => Num::BF16,
            DType::Int8 => Num::I8,
            DType::Int16 => Num::I16,
            DType::Int32 => Num::I32,
            DType::Int64 => Num::I64,
            DType::UInt8 => Num::U8,
            DType::UInt16 => Num::U16,
            DType::UInt32 => Num::U32,
            DType::UInt64 => Num::U64,
            DType::Bool => Num::Bool,
            _ => return None,
        })
    }
}

/// One element's value, held exactly: every supported float widens to `f64`
/// and every supported integer fits in `i128`.
#[derive(Debug, Clone, Copy)]
enum Value {
    Float(f64),
    Int(i128),
}

/// The `N` bytes of `b` in little-endian order. `b` is exactly `N` bytes long
/// (it comes from `chunks_exact` of the element size).
#[inline]
fn le<const N: usize>(b: &[u8], order: ByteOrder) -> [u8; N] {
    let mut a = <[u8; N]>::try_from(b).unwrap_or([0; N]);
    if order == ByteOrder::Big {
        a.reverse();
    }
    a
}

#[inline]
fn decode(src: Num, b: &[u8], order: ByteOrder) -> Value {
    match src {
        Num::F64 => Value::Float(f64::from_le_bytes(le(b, order))),
        Num::F32 => Value::Float(f64::from(f32::from_le_bytes(le(b, order)))),
        Num::F16 => Value::Float(f16::from_bits(u16::from_le_bytes(le(b, order))).to_f64()),
        Num::BF16 => Value::Float(bf16::from_bits(u16::from_le_bytes(le(b, order))).to_f64()),
        Num::I8 => Value::Int(i8::from_le_bytes(le(b, order)).into()),
        Num::I16 => Value::Int(i16::from_le_bytes(le(b, order)).into()),
        Num::I32 => Value::Int(i32::from_le_bytes(le(b, order)).into()),
        Num::I64 => Value::Int(i64::from_le_bytes(le(b, order)).into()),
        Num::U8 => Value::Int(u8::from_le_bytes(le(b, order)).into()),
        Num::U16 => Value::Int(u16::from_le_bytes(le(b, order)).into()),
        Num::U32 => Value::Int(u32::from_le_bytes(le(b, order)).into()),
        Num::U64 => Value::Int(u64::from_le_bytes(le(b, order)).into()),
        Num::Bool => Value::Int(i128::from(b.first().is_some_and(|&x| x != 0))),
    }
}

/// Appends `value` as a little-endian `dst`; false if `dst` cannot represent it.
#[inline]
fn encode(dst: Num, value: Value, out: &mut Vec<u8>) -> bool {
    match dst {
        Num::F64 => out.extend_from_slice(&to_f64(value).to_le_bytes()),
        Num::F32 => {
            let x = match value {
                Value::Float(x) => x as f32,
                Value::Int(i) => i as f32,
            };
            out.extend_from_slice(&x.to_le_bytes());
        }
        Num::F16 => out.extend_from_slice(&f16::from_f32(to_f32_odd(value)).to_le_bytes()),
        Num::BF16 => out.extend_from_slice(&bf16::from_f32(to_f32_odd(value)).to_le_bytes()),
        Num::Bool => out.push(u8::from(match value {
            Value::Float(x) => x != 0.0,
            Value::Int(i) => i != 0,
        })),
        Num::I8 => return push_int(value, i8::MIN, i8::MAX, out, |i| (i as i8).to_le_bytes()),
        Num::I16 => return push_int(value, i16::MIN, i16::MAX, out, |i| (i as i16).to_le_bytes()),
        Num::I32 => return push_int(value, i32::MIN, i32::MAX, out, |i| (i as i32).to_le_bytes()),
        Num::I64 => return push_int(value, i64::MIN, i64::MAX, out, |i| (i as i64).to_le_bytes()),
        Num::U8 => return push_int(value, u8::MIN, u8::MAX, out, |i| (i as u8).to_le_bytes()),
        Num::U16 => return push_int(value, u16::MIN, u16::MAX, out, |i| (i as u16).to_le_bytes()),
        Num::U32 => return push_int(value, u32::MIN, u32::MAX, out, |i| (i as u32).to_le_bytes()),
        Num::U64 => return push_int(value, u64::MIN, u64::MAX, out, |i| (i as u64).to_le_bytes()),
    }
    true
}

/// Range-checks `value` against `[min, max]` (floats truncated toward zero
/// first) and appends it with `bytes`; false if out of range or not finite.
#[inline]
fn push_int<T: Into<i128>, const N: usize>(
    value: Value,
    min: T,
    max: T,
    out: &mut Vec<u8>,
    bytes: impl Fn(i128) -> [u8; N],
) -> bool {
    let (min, max) = (min.into(), max.into());
    let int = match value {
        Value::Int(i) => i,
        Value::Float(x) => {
            let t = x.trunc();
            // Both bounds are exact in f64: 0, -2^(n-1), 2^(n-1) or 2^n.
            // NaN fails both comparisons.
            if !(t >= min as f64 && t < (max + 1) as f64) {
                return false;
            }
            t as i128
        }
    };
    if int < min || int > max {
        return false;
    }
    out.extend_from_slice(&bytes(int));
    true
}

#[inline]
fn to_f64(value: Value) -> f64 {
    match value {
        Value::Float(x) => x,
        // `as` rounds to nearest, ties to even.
        Value::Int(i) => i as f64,
    }
}

/// `value` rounded to `f32` with round-to-odd: truncate toward zero and, if
/// anything was lost, set the lowest mantissa bit. A later round-to-nearest
/// to a format with at most 22 significant bits then gives the correctly
/// rounded result, as if rounded once from `value`.
#[inline]
fn to_f32_odd(value: Value) -> f32 {
    match value {
        Value::Float(x) => f64_to_f32_odd(x),
        Value::Int(i) => f64_to_f32_odd(int_to_f64_odd(i)),
    }
}

fn f64_to_f32_odd(x: f64) -> f32 {
    let nearest = x as f32;
    if x.is_nan() || f64::from(nearest) == x {
        return nearest;
    }
    let bits = nearest.to_bits();
    let sign = bits & 0x8000_0000;
    let mut magnitude = bits & 0x7FFF_FFFF;
    if f64::from(nearest).abs() > x.abs() {
        // Rounded away from zero (possibly to infinity): step back toward zero.
        magnitude -= 1;
    }
    f32::from_bits(sign | magnitude | 1)
}

/// `i` rounded to `f64` with round-to-odd (exact below 2^53).
fn int_to_f64_odd(i: i128) -> f64 {
    let magnitude = i.unsigned_abs();
    if magnitude < (1u128 << 53) {
        return i as f64;
    }
    let shift = (128 - magnitude.leading_zeros()) - 53;
    let mut mantissa = (magnitude >> shift) as u64;
    if magnitude & ((1u128 << shift) - 1) != 0 {
        mantissa |= 1;
    }
    // mantissa < 2^53 is exact in f64, and so is the product with 2^shift.
    let scale = f64::from_bits((1023 + u64::from(shift)) << 52);
    let v = mantissa as f64 * scale;
    if i < 0 { -v } else { v }
}

/// Row-major multi-index of the `flat`-th element of `shape`.
fn unravel(mut flat: u64, shape: &[u64]) -> Vec<u64> {
    let mut index = vec![0; shape.len()];
    for (i, &dim) in index.iter_mut().zip(shape).rev() {
        if dim > 0 {
            *i = flat % dim;
            flat /= dim;
        }
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_to_odd_f32() {
        assert_eq!(f64_to_f32_odd(1.0), 1.0);
        let above_one = 1.0 + f64::powi(2.0, -40);
        assert_eq!(f64_to_f32_odd(above_one).to_bits(), 1.0f32.to_bits() | 1);
        let below_one = 1.0 - f64::powi(2.0, -40);
        assert_eq!(
            f64_to_f32_odd(below_one).to_bits(),
            (1.0f32.to_bits() - 1) | 1
        );
        assert_eq!(
            f64_to_f32_odd(-above_one).to_bits(),
            (-1.0f32).to_bits() | 1
        );
        assert_eq!(f64_to_f32_odd(1e300), f32::MAX);
        assert_eq!(f64_to_f32_odd(f64::INFINITY), f32::INFINITY);
        assert_eq!(f64_to_f32_odd(1e-300).to_bits(), 1);
        assert_eq!(f64_to_f32_odd(-1e-300).to_bits(), 0x8000_0001);
        assert!(f64_to_f32_odd(f64::NAN).is_nan());
    }

    #[test]
    fn round_to_odd_int() {
        assert_eq!(int_to_f64_odd(0), 0.0);
        assert_eq!(int_to_f64_odd(-5), -5.0);
        let two53 = 1i128 << 53;
        assert_eq!(int_to_f64_odd(two53), 9007199254740992.0);
        // 2^53 + 1 is not representable: truncate to 2^53, then odd → 2^53 + 2.
        assert_eq!(int_to_f64_odd(two53 + 1), 9007199254740994.0);
        assert_eq!(int_to_f64_odd(-(two53 + 1)), -9007199254740994.0);
        assert_eq!(int_to_f64_odd(u64::MAX.into()), 18446744073709549568.0);
        assert_eq!(int_to_f64_odd(i64::MIN.into()), -9223372036854775808.0);
    }

    #[test]
    fn unravel_row_major() {
        assert_eq!(unravel(0, &[]), Vec::<u64>::new());
        assert_eq!(unravel(5, &[2, 3]), vec![1, 2]);
        assert_eq!(unravel(7, &[2, 2, 2]), vec![1, 1, 1]);
    }
}

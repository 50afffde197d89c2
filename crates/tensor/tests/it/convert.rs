//! Numeric conversion: exact round trips, correct rounding (checked against an
//! independent reference for f64 -> f16/bf16), truncation, range errors and
//! unsupported pairs.

use half::{bf16, f16};
use netport_tensor::{ByteOrder, DType, TensorError, TensorView, can_convert, convert};
use proptest::prelude::*;

const LE: ByteOrder = ByteOrder::Little;

fn f64_bytes(xs: &[f64]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn u16s(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// Converts a contiguous 1-d little-endian buffer.
fn conv(bytes: &[u8], from: DType, to: DType) -> Result<Vec<u8>, TensorError> {
    let n = (bytes.len() / from.size_in_bytes()) as u64;
    let view = TensorView::contiguous(bytes, from, &[n], LE).unwrap();
    convert(&view, to)
}

/// Converts and back, returning the bytes after the round trip.
fn round_trip(bytes: &[u8], from: DType, via: DType) -> Vec<u8> {
    let there = conv(bytes, from, via).unwrap();
    conv(&there, via, from).unwrap()
}

/// Correctly rounded f64 -> 16-bit float, computed independently: binary
/// search the two neighbouring representable values and compare with their
/// exact midpoint (exact in f64, since these formats have at most 11
/// significant bits).
fn reference_round(x: f64, to_f64: impl Fn(u16) -> f64, inf_bits: u16) -> Option<u16> {
    if x.is_nan() {
        return None;
    }
    let sign = if x.is_sign_negative() { 0x8000 } else { 0 };
    let a = x.abs();
    // Largest finite magnitude pattern is inf_bits - 1.
    let max = to_f64(inf_bits - 1);
    let ulp_at_max = max - to_f64(inf_bits - 2);
    if a >= max + ulp_at_max / 2.0 {
        return Some(sign | inf_bits);
    }
    // Find lo = largest pattern with value <= a.
    let (mut lo, mut hi) = (0u16, inf_bits - 1);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if to_f64(mid) <= a {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if to_f64(lo) == a || lo == inf_bits - 1 {
        return Some(sign | lo);
    }
    let mid = (to_f64(lo) + to_f64(lo + 1)) / 2.0;
    let pick = if a < mid {
        lo
    } else if a > mid {
        lo + 1
    } else if lo % 2 == 0 {
        lo
    } else {
        lo + 1
    };
    Some(sign | pick)
}

fn ref_f16(x: f64) -> Option<u16> {
    reference_round(x, |b| f16::from_bits(b).to_f64(), 0x7C00)
}

fn ref_bf16(x: f64) -> Option<u16> {
    reference_round(x, |b| bf16::from_bits(b).to_f64(), 0x7F80)
}

#[test]
fn f64_to_f16_rounds_once_where_half_from_f64_does_not() {
    // Just above the midpoint between 1 and the next f16, with the deciding
    // bit below the top 32 bits of the f64: must round up.
    let x = 1.0 + 2f64.powi(-11) + 2f64.powi(-40);
    let out = u16s(&conv(&f64_bytes(&[x]), DType::Float64, DType::Float16).unwrap());
    assert_eq!(out, [0x3C01]);
    assert_eq!(ref_f16(x), Some(0x3C01));
    // Exactly the midpoint: ties to even.
    let tie = 1.0 + 2f64.powi(-11);
    let out = u16s(&conv(&f64_bytes(&[tie]), DType::Float64, DType::Float16).unwrap());
    assert_eq!(out, [0x3C00]);

    let x = 1.0 + 2f64.powi(-8) + 2f64.powi(-40);
    let out = u16s(&conv(&f64_bytes(&[x]), DType::Float64, DType::BFloat16).unwrap());
    assert_eq!(out, [0x3F81]);
}

#[test]
fn f64_to_f16_special_values() {
    let xs = [
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        65504.0,
        65519.99,
        65520.0,
        1e300,
        2f64.powi(-24),
        2f64.powi(-25),
        2f64.powi(-25) * 1.0000001,
        -1e-300,
    ];
    let out = u16s(&conv(&f64_bytes(&xs), DType::Float64, DType::Float16).unwrap());
    assert_eq!(
        out,
        [
            0x0000, 0x8000, 0x7C00, 0xFC00, 0x7BFF, 0x7BFF, 0x7C00, 0x7C00, 0x0001, 0x0000, 0x0001,
            0x8000
        ]
    );
    let nan = u16s(&conv(&f64_bytes(&[f64::NAN]), DType::Float64, DType::Float16).unwrap());
    assert!(f16::from_bits(nan[0]).is_nan());
    let nan = u16s(&conv(&f64_bytes(&[f64::NAN]), DType::Float64, DType::BFloat16).unwrap());
    assert!(bf16::from_bits(nan[0]).is_nan());
}

#[test]
fn int64_to_bfloat16_rounds_once() {
    // 2^60 + 2^52 + 1: f64 would round it to the tie 2^60 + 2^52, then ties
    // to even would give 2^60. Correct rounding gives 2^60 + 2^53.
    let x: i64 = (1 << 60) + (1 << 52) + 1;
    let out = u16s(&conv(&x.to_le_bytes(), DType::Int64, DType::BFloat16).unwrap());
    assert_eq!(out, [0x5D81]);
    // Large integers overflow float16 to infinity.
    let out = u16s(&conv(&70000i32.to_le_bytes(), DType::Int32, DType::Float16).unwrap());
    assert_eq!(out, [0x7C00]);
    let out = u16s(&conv(&(-65519i32).to_le_bytes(), DType::Int32, DType::Float16).unwrap());
    assert_eq!(out, [0xFBFF]);
    // u64::MAX to f32 and f64 round to nearest (2^64).
    let out = conv(&u64::MAX.to_le_bytes(), DType::UInt64, DType::Float32).unwrap();
    assert_eq!(out, 18446744073709551616f32.to_le_bytes());
    let out = conv(&u64::MAX.to_le_bytes(), DType::UInt64, DType::Float64).unwrap();
    assert_eq!(out, 18446744073709551616f64.to_le_bytes());
}

#[test]
fn f16_f32_f16_is_exact_for_every_value() {
    let all: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
    let back = u16s(&round_trip(&all, DType::Float16, DType::Float32));
    for (bits, got) in (0..=u16::MAX).zip(back) {
        if f16::from_bits(bits).is_nan() {
            assert!(f16::from_bits(got).is_nan(), "{bits:#06x}");
        } else {
            assert_eq!(got, bits);
        }
    }
    let back = u16s(&round_trip(&all, DType::Float16, DType::Float64));
    for (bits, got) in (0..=u16::MAX).zip(back) {
        assert!(got == bits || f16::from_bits(bits).is_nan());
    }
}

#[test]
fn bf16_f32_bf16_is_exact_for_every_value() {
    let all: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
    for via in [DType::Float32, DType::Float64] {
        let back = u16s(&round_trip(&all, DType::BFloat16, via));
        for (bits, got) in (0..=u16::MAX).zip(back) {
            if bf16::from_bits(bits).is_nan() {
                assert!(bf16::from_bits(got).is_nan(), "{bits:#06x}");
            } else {
                assert_eq!(got, bits);
            }
        }
    }
}

#[test]
fn f16_to_bf16_and_back_within_range() {
    // float16 -> bfloat16 is a single correct rounding too.
    let xs: Vec<u8> = [1.0f32, 1.0 + 1.0 / 256.0, 65504.0, 2f32.powi(-14)]
        .iter()
        .flat_map(|&x| f16::from_f32(x).to_le_bytes())
        .collect();
    let out = u16s(&conv(&xs, DType::Float16, DType::BFloat16).unwrap());
    assert_eq!(out, [0x3F80, 0x3F80, 0x4780, 0x3880]);
}

#[test]
fn float_to_int_truncates_toward_zero() {
    let xs = f32_bytes(&[-0.9, 0.9, 255.9, -0.0]);
    assert_eq!(
        conv(&xs, DType::Float32, DType::UInt8).unwrap(),
        [0, 0, 255, 0]
    );
    let out = conv(
        &f32_bytes(&[-1.5, 2.5, 127.99, -128.99]),
        DType::Float32,
        DType::Int8,
    )
    .unwrap();
    assert_eq!(out, [(-1i8) as u8, 2, 127, (-128i8) as u8]);
    // i64 bounds are exact: -2^63 is fine, 2^63 is not.
    let out = conv(
        &f64_bytes(&[-9223372036854775808.0]),
        DType::Float64,
        DType::Int64,
    )
    .unwrap();
    assert_eq!(out, i64::MIN.to_le_bytes());
    let err = conv(
        &f64_bytes(&[9223372036854775808.0]),
        DType::Float64,
        DType::Int64,
    )
    .unwrap_err();
    assert!(matches!(err, TensorError::FloatNotRepresentable { .. }));
    let out = conv(
        &f64_bytes(&[18446744073709549568.0]),
        DType::Float64,
        DType::UInt64,
    )
    .unwrap();
    assert_eq!(out, 18446744073709549568u64.to_le_bytes());
    let err = conv(
        &f64_bytes(&[18446744073709551616.0]),
        DType::Float64,
        DType::UInt64,
    )
    .unwrap_err();
    assert!(matches!(err, TensorError::FloatNotRepresentable { .. }));
}

#[test]
fn float_to_int_errors_name_the_element() {
    let xs = f32_bytes(&[1.0, 2.0, 3.0, f32::NAN, 5.0, 6.0]);
    let view = TensorView::contiguous(&xs, DType::Float32, &[2, 3], LE).unwrap();
    let err = convert(&view, DType::Int32).unwrap_err();
    assert_eq!(
        err.to_string(),
        "element [1, 0] of the float32 tensor is NaN, which int32 cannot represent"
    );
    let err = conv(
        &f32_bytes(&[0.0, f32::INFINITY]),
        DType::Float32,
        DType::Int64,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "element [1] of the float32 tensor is inf, which int64 cannot represent"
    );
    let err = conv(&f32_bytes(&[300.0]), DType::Float32, DType::UInt8).unwrap_err();
    assert_eq!(
        err.to_string(),
        "element [0] of the float32 tensor is 300, which uint8 cannot represent"
    );
    let err = conv(&f32_bytes(&[-1.0]), DType::Float32, DType::UInt16).unwrap_err();
    assert!(matches!(
        err,
        TensorError::FloatNotRepresentable { value, from: DType::Float32, to: DType::UInt16, .. }
            if value == -1.0
    ));
}

#[test]
fn int_to_int_range_errors() {
    let xs: Vec<u8> = [5i32, 256].iter().flat_map(|x| x.to_le_bytes()).collect();
    let err = conv(&xs, DType::Int32, DType::UInt8).unwrap_err();
    assert_eq!(
        err.to_string(),
        "element [1] of the int32 tensor is 256, which is outside the range of uint8"
    );
    let err = conv(&[0xFF], DType::Int8, DType::UInt64).unwrap_err();
    assert!(matches!(
        err,
        TensorError::IntNotRepresentable { value: -1, .. }
    ));
    let err = conv(&u64::MAX.to_le_bytes(), DType::UInt64, DType::Int64).unwrap_err();
    assert!(matches!(
        err,
        TensorError::IntNotRepresentable { value, .. } if value == i128::from(u64::MAX)
    ));
    assert_eq!(
        conv(&[0x80], DType::Int8, DType::Int64).unwrap(),
        (-128i64).to_le_bytes()
    );
}

#[test]
fn bool_conversions() {
    assert_eq!(
        conv(&[0, 1, 2], DType::Bool, DType::Float32).unwrap(),
        f32_bytes(&[0.0, 1.0, 1.0])
    );
    assert_eq!(
        conv(&[0, 1], DType::Bool, DType::Int64).unwrap(),
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        conv(
            &f32_bytes(&[0.0, -0.0, 0.5, f32::NAN, -3.0]),
            DType::Float32,
            DType::Bool
        )
        .unwrap(),
        [0, 0, 1, 1, 1]
    );
    assert_eq!(
        conv(&[0, 7, 0xFF], DType::UInt8, DType::Bool).unwrap(),
        [0, 1, 1]
    );
}

#[test]
fn unsupported_pairs() {
    for (from, to) in [
        (DType::Complex64, DType::Float32),
        (DType::Float32, DType::Complex64),
        (DType::Float8E4M3Fn, DType::Float32),
        (DType::QInt8, DType::Int8),
        (DType::Float32, DType::Bits16),
    ] {
        assert!(!can_convert(from, to));
        let bytes = vec![0u8; from.size_in_bytes()];
        let view = TensorView::contiguous(&bytes, from, &[], LE).unwrap();
        assert_eq!(
            convert(&view, to).unwrap_err(),
            TensorError::UnsupportedConversion { from, to }
        );
    }
    let err = TensorError::UnsupportedConversion {
        from: DType::Complex64,
        to: DType::Float32,
    };
    assert!(
        err.to_string()
            .starts_with("converting complex64 to float32 is not supported")
    );
    assert!(can_convert(DType::Float8E5M2, DType::Float8E5M2));
    assert!(can_convert(DType::Bool, DType::BFloat16));
}

#[test]
fn same_dtype_is_a_little_endian_copy_for_any_dtype() {
    let be: Vec<u8> = vec![1, 2, 3, 4, 5, 6, 7, 8];
    let view = TensorView::contiguous(&be, DType::Complex64, &[1], ByteOrder::Big).unwrap();
    assert_eq!(
        convert(&view, DType::Complex64).unwrap(),
        [4, 3, 2, 1, 8, 7, 6, 5]
    );
    let view = TensorView::contiguous(&be, DType::Float8E4M3Fn, &[8], ByteOrder::Big).unwrap();
    assert_eq!(convert(&view, DType::Float8E4M3Fn).unwrap(), be);
}

#[test]
fn strided_big_endian_source() {
    // A transposed 2x2 big-endian int16 tensor converted to float64.
    let data: Vec<u8> = [1i16, 3, 2, -4]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect();
    let view = TensorView::new(&data, DType::Int16, &[2, 2], &[1, 2], 0, ByteOrder::Big).unwrap();
    assert_eq!(
        convert(&view, DType::Float64).unwrap(),
        f64_bytes(&[1.0, 2.0, 3.0, -4.0])
    );
    let empty = TensorView::new(&[], DType::Int16, &[0, 3], &[3, 1], 0, ByteOrder::Big).unwrap();
    assert_eq!(convert(&empty, DType::Float64).unwrap(), Vec::<u8>::new());
}

proptest! {
    #[test]
    fn f32_f64_f32_is_exact(bits in prop::collection::vec(any::<u32>(), 0..64)) {
        let xs: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
        let back = round_trip(&xs, DType::Float32, DType::Float64);
        for (orig, got) in xs.chunks_exact(4).zip(back.chunks_exact(4)) {
            let o = f32::from_le_bytes(orig.try_into().unwrap());
            let g = f32::from_le_bytes(got.try_into().unwrap());
            if o.is_nan() {
                prop_assert!(g.is_nan());
            } else {
                prop_assert_eq!(o.to_bits(), g.to_bits());
            }
        }
    }

    #[test]
    fn i32_i64_i32_is_exact(xs in prop::collection::vec(any::<i32>(), 0..64)) {
        let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
        prop_assert_eq!(round_trip(&bytes, DType::Int32, DType::Int64), bytes);
    }

    #[test]
    fn small_ints_survive_every_float(xs in prop::collection::vec(-256i16..=256, 0..32)) {
        let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
        for via in [DType::Float64, DType::Float32, DType::Float16, DType::BFloat16] {
            prop_assert_eq!(round_trip(&bytes, DType::Int16, via), bytes.clone());
        }
    }

    #[test]
    fn f64_to_16_bit_floats_round_correctly(bits in any::<u64>()) {
        let x = f64::from_bits(bits);
        let bytes = x.to_le_bytes();
        let h = u16s(&conv(&bytes, DType::Float64, DType::Float16).unwrap())[0];
        let b = u16s(&conv(&bytes, DType::Float64, DType::BFloat16).unwrap())[0];
        match (ref_f16(x), ref_bf16(x)) {
            (Some(rh), Some(rb)) => {
                prop_assert_eq!(h, rh, "f16 of {:e}", x);
                prop_assert_eq!(b, rb, "bf16 of {:e}", x);
            }
            _ => {
                prop_assert!(f16::from_bits(h).is_nan());
                prop_assert!(bf16::from_bits(b).is_nan());
            }
        }
    }

    #[test]
    fn f64_near_16_bit_values_rounds_correctly(base in any::<u16>(), delta in -4096i64..4096) {
        // Values near representable points and midpoints, where rounding bugs live.
        let x = f16::from_bits(base).to_f64();
        prop_assume!(x.is_finite());
        let y = f64::from_bits((x.to_bits() as i64).wrapping_add(delta << 29) as u64);
        prop_assume!(!y.is_nan());
        let h = u16s(&conv(&y.to_le_bytes(), DType::Float64, DType::Float16).unwrap())[0];
        prop_assert_eq!(Some(h), ref_f16(y), "f16 of {:e}", y);
        let b = u16s(&conv(&y.to_le_bytes(), DType::Float64, DType::BFloat16).unwrap())[0];
        prop_assert_eq!(Some(b), ref_bf16(y), "bf16 of {:e}", y);
    }

    #[test]
    fn i64_to_16_bit_floats_round_correctly(x in any::<i64>()) {
        let h = u16s(&conv(&x.to_le_bytes(), DType::Int64, DType::Float16).unwrap())[0];
        let b = u16s(&conv(&x.to_le_bytes(), DType::Int64, DType::BFloat16).unwrap())[0];
        // x is exact in an f64 only below 2^53; beyond that, f16 is infinite
        // anyway, and for bf16 compare against rounding of the exact integer
        // done with integer arithmetic.
        prop_assert_eq!(Some(h), ref_f16(x as f64));
        let mag = x.unsigned_abs();
        let expected = if mag < (1 << 53) {
            ref_bf16(x as f64).unwrap()
        } else {
            let shift = 64 - mag.leading_zeros() - 8; // keep 8 significant bits
            let kept = mag >> shift;
            let rest = mag & ((1u64 << shift) - 1);
            let half = 1u64 << (shift - 1);
            let rounded = if rest > half || (rest == half && kept % 2 == 1) { kept + 1 } else { kept };
            // rounded * 2^shift is exact in f64 (at most 9 significant bits).
            let v = rounded as f64 * 2f64.powi(shift as i32);
            ref_bf16(if x < 0 { -v } else { v }).unwrap()
        };
        prop_assert_eq!(b, expected);
    }
}

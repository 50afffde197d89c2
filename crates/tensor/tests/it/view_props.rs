//! Property tests of `TensorView`: element gathering, contiguous copies and
//! byte swapping checked against a naive reference implementation over random
//! shapes, strides (including zero, permuted and size-1 cases), offsets and
//! byte orders.

use netport_tensor::{
    ByteOrder, DType, TensorError, TensorView, contiguous_strides, required_bytes,
    swap_bytes_in_place,
};
use proptest::prelude::*;

/// Dtypes of every element size (1, 2, 4, 8, 16 bytes) and swap width.
const DTYPES: [DType; 9] = [
    DType::UInt8,
    DType::Bool,
    DType::Float16,
    DType::Float32,
    DType::Complex32,
    DType::Int64,
    DType::Complex64,
    DType::Complex128,
    DType::QInt32,
];

fn dtype() -> impl Strategy<Value = DType> {
    prop::sample::select(&DTYPES[..])
}

fn order() -> impl Strategy<Value = ByteOrder> {
    prop_oneof![Just(ByteOrder::Little), Just(ByteOrder::Big)]
}

/// Naive reference: walk flat indices, unravel, and gather element bytes.
fn naive_gather(
    data: &[u8],
    size: usize,
    shape: &[u64],
    strides: &[u64],
    offset: u64,
) -> Vec<Vec<u8>> {
    let numel: u64 = shape.iter().product();
    let mut out = Vec::new();
    for flat in 0..numel {
        let mut rest = flat;
        let mut pos = offset;
        for (&d, &s) in shape.iter().zip(strides).rev() {
            pos += (rest % d) * s;
            rest /= d;
        }
        let start = pos as usize * size;
        out.push(data[start..start + size].to_vec());
    }
    out
}

/// Naive byte count a layout needs.
fn naive_needed(size: usize, shape: &[u64], strides: &[u64], offset: u64) -> usize {
    if shape.contains(&0) {
        return 0;
    }
    let last: u64 = offset
        + shape
            .iter()
            .zip(strides)
            .map(|(d, s)| (d - 1) * s)
            .sum::<u64>();
    (last as usize + 1) * size
}

/// A random strided layout: shape, strides (often zero or tiny), offset.
fn layout() -> impl Strategy<Value = (Vec<u64>, Vec<u64>, u64)> {
    (0usize..=4).prop_flat_map(|ndim| {
        (
            prop::collection::vec(
                prop_oneof![1 => Just(0u64), 2 => Just(1u64), 6 => 2u64..=4],
                ndim,
            ),
            prop::collection::vec(
                prop_oneof![2 => Just(0u64), 2 => Just(1u64), 4 => 0u64..=13],
                ndim,
            ),
            0u64..=5,
        )
    })
}

/// A permuted C-contiguous layout (a transpose of a packed tensor).
fn permuted_layout() -> impl Strategy<Value = (Vec<u64>, Vec<u64>)> {
    prop::collection::vec(1u64..=4, 0..=4)
        .prop_flat_map(|shape| {
            let n = shape.len();
            (
                Just(shape),
                Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
            )
        })
        .prop_map(|(shape, perm)| {
            let strides = contiguous_strides(&shape).unwrap();
            (
                perm.iter().map(|&p| shape[p]).collect(),
                perm.iter().map(|&p| strides[p]).collect(),
            )
        })
}

fn check_against_reference(
    data: &[u8],
    dtype: DType,
    shape: &[u64],
    strides: &[u64],
    offset: u64,
    order: ByteOrder,
) -> Result<(), TestCaseError> {
    let size = dtype.size_in_bytes();
    let view = TensorView::new(data, dtype, shape, strides, offset, order)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let expected = naive_gather(data, size, shape, strides, offset);
    prop_assert_eq!(view.numel(), expected.len() as u64);
    prop_assert_eq!(view.nbytes(), expected.len() * size);

    let elements: Vec<Vec<u8>> = view.elements().map(<[u8]>::to_vec).collect();
    prop_assert_eq!(&elements, &expected);
    prop_assert_eq!(view.elements().len(), expected.len());

    let flat: Vec<u8> = expected.concat();
    prop_assert_eq!(&view.to_contiguous().unwrap(), &flat);
    prop_assert_eq!(&view.runs().flatten().copied().collect::<Vec<u8>>(), &flat);
    prop_assert_eq!(&view.to_contiguous_in(order).unwrap(), &flat);

    // Swapping to the other order equals reversing each swap unit.
    let other = match order {
        ByteOrder::Little => ByteOrder::Big,
        ByteOrder::Big => ByteOrder::Little,
    };
    let width = dtype.byte_swap_width();
    let swapped_expected: Vec<u8> = flat
        .chunks(width)
        .flat_map(|c| c.iter().rev().copied())
        .collect();
    prop_assert_eq!(&view.to_contiguous_in(other).unwrap(), &swapped_expected);

    // element_bytes agrees with the reference at every index.
    let mut index = vec![0u64; shape.len()];
    for element in &expected {
        prop_assert_eq!(view.element_bytes(&index).unwrap(), element.as_slice());
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }

    // A contiguous copy viewed contiguously is reproduced exactly.
    let copy = view.to_contiguous().unwrap();
    let packed = TensorView::contiguous(&copy, dtype, shape, order).unwrap();
    prop_assert!(packed.is_contiguous());
    prop_assert_eq!(packed.to_contiguous().unwrap(), copy.clone());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn strided_views_match_reference(
        dtype in dtype(),
        order in order(),
        (shape, strides, offset) in layout(),
        extra in 0usize..3,
        seed in any::<u64>(),
    ) {
        let size = dtype.size_in_bytes();
        let needed = naive_needed(size, &shape, &strides, offset);
        prop_assert_eq!(required_bytes(dtype, &shape, &strides, offset).unwrap(), needed as u64);
        let data: Vec<u8> = (0..needed + extra)
            .map(|i| (seed.wrapping_mul(i as u64 + 1) >> 13) as u8)
            .collect();
        check_against_reference(&data, dtype, &shape, &strides, offset, order)?;

        // One byte short is an error, never a panic.
        if needed > 0 {
            let err = TensorView::new(&data[..needed - 1], dtype, &shape, &strides, offset, order)
                .unwrap_err();
            let is_too_small = matches!(
                err,
                TensorError::BufferTooSmall { needed: n, available, .. }
                    if n == needed as u64 && available == needed - 1
            );
            prop_assert!(is_too_small);
        }
    }

    #[test]
    fn permuted_views_match_reference(
        dtype in dtype(),
        order in order(),
        (shape, strides) in permuted_layout(),
        offset in 0u64..3,
    ) {
        let size = dtype.size_in_bytes();
        let needed = naive_needed(size, &shape, &strides, offset);
        let data: Vec<u8> = (0..needed).map(|i| (i * 7 + 3) as u8).collect();
        check_against_reference(&data, dtype, &shape, &strides, offset, order)?;
    }

    #[test]
    fn to_contiguous_of_contiguous_is_identity(
        dtype in dtype(),
        order in order(),
        shape in prop::collection::vec(0u64..=5, 0..=4),
        seed in any::<u8>(),
    ) {
        let numel: u64 = shape.iter().product();
        let data: Vec<u8> = (0..numel as usize * dtype.size_in_bytes())
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect();
        let view = TensorView::contiguous(&data, dtype, &shape, order).unwrap();
        prop_assert!(view.is_contiguous());
        prop_assert_eq!(view.to_contiguous().unwrap(), data.clone());
        prop_assert_eq!(view.to_contiguous_in(order).unwrap(), data);
    }

    #[test]
    fn swapping_twice_is_identity(
        dtype in prop::sample::select(&DType::ALL[..]),
        data in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let size = dtype.size_in_bytes();
        let mut buf = data[..data.len() / size * size].to_vec();
        let original = buf.clone();
        swap_bytes_in_place(&mut buf, dtype).unwrap();
        if dtype.byte_swap_width() == 1 {
            prop_assert_eq!(&buf, &original);
        }
        swap_bytes_in_place(&mut buf, dtype).unwrap();
        prop_assert_eq!(buf, original);
    }

    #[test]
    fn size_one_dims_take_any_stride(
        shape in prop::collection::vec(1u64..=3, 1..=4),
        junk in prop::collection::vec(0u64..1000, 4),
    ) {
        // Replace the stride of every size-1 dimension with junk: still contiguous.
        let mut strides = contiguous_strides(&shape).unwrap();
        for (i, s) in strides.iter_mut().enumerate() {
            if shape[i] == 1 {
                *s = junk[i];
            }
        }
        let size = DType::Float32.size_in_bytes();
        let needed = naive_needed(size, &shape, &strides, 0);
        let data: Vec<u8> = (0..needed).map(|i| i as u8).collect();
        let view = TensorView::new(&data, DType::Float32, &shape, &strides, 0, ByteOrder::Little)
            .unwrap();
        prop_assert!(view.is_contiguous());
        check_against_reference(&data, DType::Float32, &shape, &strides, 0, ByteOrder::Little)?;
    }
}

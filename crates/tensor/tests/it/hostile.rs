//! Hostile and edge-case layouts: overflowing shapes and strides, offsets past
//! the buffer, buffers one byte short, rank mismatches, bad indices. Every
//! case must be an error with a precise message, never a panic.

use netport_tensor::{
    ByteOrder, DType, TensorError, TensorView, contiguous_strides, required_bytes,
    swap_bytes_in_place,
};

const LE: ByteOrder = ByteOrder::Little;

#[test]
fn message_names_the_numbers() {
    let data = [0u8; 48];
    let err = TensorView::new(&data, DType::Float32, &[3, 4], &[4, 1], 2, LE).unwrap_err();
    assert_eq!(
        err.to_string(),
        "shape [3, 4] with strides [4, 1] at offset 2 needs 56 bytes but the buffer holds 48"
    );
}

#[test]
fn one_byte_short() {
    let data = [0u8; 23];
    let err = TensorView::contiguous(&data, DType::Float64, &[3], LE).unwrap_err();
    assert!(matches!(
        err,
        TensorError::BufferTooSmall {
            needed: 24,
            available: 23,
            ..
        }
    ));
    assert!(TensorView::contiguous(&[0u8; 24], DType::Float64, &[3], LE).is_ok());
}

#[test]
fn element_count_overflow() {
    let err = TensorView::new(&[], DType::UInt8, &[1 << 32, 1 << 32], &[0, 0], 0, LE).unwrap_err();
    assert_eq!(
        err.to_string(),
        "shape [4294967296, 4294967296] with strides [0, 0] at offset 0: the element count overflows 64-bit arithmetic"
    );
    let err = TensorView::new(&[], DType::UInt8, &[u64::MAX, 2], &[0, 0], 0, LE).unwrap_err();
    assert!(matches!(
        err,
        TensorError::Overflow {
            what: "the element count",
            ..
        }
    ));
}

#[test]
fn byte_size_overflow() {
    // 2^62 elements fit in u64, but 2^62 * 8 bytes do not.
    let err = TensorView::new(&[0; 8], DType::Int64, &[1 << 62], &[0], 0, LE).unwrap_err();
    assert!(matches!(
        err,
        TensorError::Overflow {
            what: "the byte size of the tensor",
            ..
        }
    ));
}

#[test]
fn stride_times_index_overflow() {
    let err =
        TensorView::new(&[0; 64], DType::Float32, &[3], &[u64::MAX / 2 + 1], 0, LE).unwrap_err();
    assert!(matches!(
        err,
        TensorError::Overflow {
            what: "the highest element index",
            ..
        }
    ));
    // The sum overflows even though each product fits.
    let err = TensorView::new(
        &[0; 64],
        DType::UInt8,
        &[2, 2],
        &[u64::MAX / 2, u64::MAX / 2],
        2,
        LE,
    )
    .unwrap_err();
    assert!(matches!(err, TensorError::Overflow { .. }));
    // The offset alone overflows when scaled to bytes.
    let err = TensorView::new(&[0; 64], DType::Float64, &[], &[], u64::MAX, LE).unwrap_err();
    assert!(matches!(
        err,
        TensorError::Overflow {
            what: "the byte extent",
            ..
        }
    ));
}

#[test]
fn huge_but_representable_extent_is_too_small() {
    let err = TensorView::new(&[0; 16], DType::Float32, &[2], &[1 << 40], 0, LE).unwrap_err();
    assert_eq!(
        err.to_string(),
        "shape [2] with strides [1099511627776] at offset 0 needs 4398046511108 bytes but the buffer holds 16"
    );
}

#[test]
fn offset_beyond_buffer() {
    let data = [0u8; 16];
    let err = TensorView::new(&data, DType::Float32, &[], &[], 4, LE).unwrap_err();
    assert_eq!(
        err.to_string(),
        "shape [] with strides [] at offset 4 needs 20 bytes but the buffer holds 16"
    );
    // The last element exactly fits.
    let v = TensorView::new(&data, DType::Float32, &[], &[], 3, LE).unwrap();
    assert_eq!(v.numel(), 1);
    assert_eq!(v.element_bytes(&[]).unwrap(), &data[12..16]);
}

#[test]
fn empty_tensors_need_no_bytes_whatever_the_offset() {
    let v = TensorView::new(&[], DType::Float32, &[0, 4], &[4, 1], 1000, LE).unwrap();
    assert_eq!(v.numel(), 0);
    assert!(v.is_empty());
    assert!(v.is_contiguous());
    assert_eq!(v.to_contiguous().unwrap(), Vec::<u8>::new());
    assert_eq!(v.elements().count(), 0);
    assert_eq!(v.runs().count(), 0);
    // Even when the other dimensions are hostile.
    let v = TensorView::new(
        &[],
        DType::Float64,
        &[u64::MAX, 0, u64::MAX],
        &[u64::MAX; 3],
        u64::MAX,
        LE,
    )
    .unwrap();
    assert_eq!(v.numel(), 0);
    assert_eq!(
        required_bytes(DType::Float64, &[5, 0], &[1, 1], 9).unwrap(),
        0
    );
}

#[test]
fn zero_d_tensor_is_one_element() {
    let data = 7.5f32.to_le_bytes();
    let v = TensorView::contiguous(&data, DType::Float32, &[], LE).unwrap();
    assert_eq!(v.numel(), 1);
    assert_eq!(v.ndim(), 0);
    assert_eq!(v.to_contiguous().unwrap(), data.to_vec());
    assert!(TensorView::contiguous(&data[..3], DType::Float32, &[], LE).is_err());
}

#[test]
fn rank_mismatch() {
    let err = TensorView::new(&[0; 64], DType::Float32, &[2, 2], &[1], 0, LE).unwrap_err();
    assert_eq!(
        err.to_string(),
        "shape [2, 2] has 2 dimensions but strides [1] has 1"
    );
}

#[test]
fn bad_indices_are_errors() {
    let data = [0u8; 24];
    let v = TensorView::contiguous(&data, DType::Float32, &[2, 3], LE).unwrap();
    assert!(v.element_bytes(&[1, 2]).is_ok());
    let err = v.element_bytes(&[2, 0]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "index [2, 0] does not address an element of shape [2, 3]"
    );
    assert!(v.element_bytes(&[0]).is_err());
    assert!(v.element_bytes(&[0, 0, 0]).is_err());
    assert!(v.element_bytes(&[u64::MAX, u64::MAX]).is_err());
}

#[test]
fn expanded_view_repeats_without_reading_more() {
    // torch.tensor([1, 2]).expand(3, 2): strides (0, 1) over 2 elements.
    let data: Vec<u8> = [1i16, 2].iter().flat_map(|x| x.to_le_bytes()).collect();
    let v = TensorView::new(&data, DType::Int16, &[3, 2], &[0, 1], 0, LE).unwrap();
    assert!(!v.is_contiguous());
    assert_eq!(v.nbytes(), 12);
    assert_eq!(
        v.to_contiguous().unwrap(),
        [1, 0, 2, 0, 1, 0, 2, 0, 1, 0, 2, 0]
    );
    assert_eq!(v.runs().count(), 3);
}

#[test]
fn transposed_view_from_the_reference_notes() {
    // base[2:8].view(2, 3).t(): offset 2, size (3, 2), stride (1, 3).
    let data: Vec<u8> = (0u8..10).collect();
    let v = TensorView::new(&data, DType::UInt8, &[3, 2], &[1, 3], 2, LE).unwrap();
    assert_eq!(v.to_contiguous().unwrap(), [2, 5, 3, 6, 4, 7]);
}

#[test]
fn contiguous_strides_follow_torch() {
    assert_eq!(contiguous_strides(&[2, 3, 4]).unwrap(), [12, 4, 1]);
    assert_eq!(contiguous_strides(&[2, 0, 3]).unwrap(), [3, 3, 1]);
    assert_eq!(contiguous_strides(&[]).unwrap(), Vec::<u64>::new());
    let err = contiguous_strides(&[2, 1 << 32, 1 << 32]).unwrap_err();
    assert!(matches!(
        err,
        TensorError::Overflow {
            what: "the contiguous strides",
            ..
        }
    ));
}

#[test]
fn swap_rejects_partial_elements() {
    let mut buf = [0u8; 6];
    let err = swap_bytes_in_place(&mut buf, DType::Float32).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a buffer of 6 bytes is not a whole number of float32 elements (4 bytes each)"
    );
    let mut buf = [1u8, 2, 3, 4, 5, 6, 7, 8];
    swap_bytes_in_place(&mut buf, DType::Complex64).unwrap();
    assert_eq!(buf, [4, 3, 2, 1, 8, 7, 6, 5]);
    swap_bytes_in_place(&mut buf, DType::QUInt8).unwrap();
    assert_eq!(buf, [4, 3, 2, 1, 8, 7, 6, 5]);
    let mut buf: Vec<u8> = (0..16).collect();
    swap_bytes_in_place(&mut buf, DType::Complex128).unwrap();
    assert_eq!(buf, [7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8]);
}

#[test]
fn byte_order_names() {
    assert_eq!(ByteOrder::from_name("little"), Some(ByteOrder::Little));
    assert_eq!(ByteOrder::from_name("big"), Some(ByteOrder::Big));
    assert_eq!(ByteOrder::from_name("Big"), None);
    assert_eq!(ByteOrder::Big.to_string(), "big");
    assert!(ByteOrder::native().is_native());
    assert_eq!(
        ByteOrder::native(),
        if cfg!(target_endian = "little") {
            ByteOrder::Little
        } else {
            ByteOrder::Big
        }
    );
}

#[test]
fn big_endian_view_swaps_on_copy() {
    let data: Vec<u8> = [1.5f32, -2.0]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect();
    let v = TensorView::contiguous(&data, DType::Float32, &[2], ByteOrder::Big).unwrap();
    let le = v.to_contiguous_in(LE).unwrap();
    let expected: Vec<u8> = [1.5f32, -2.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    assert_eq!(le, expected);
    assert_eq!(v.to_contiguous().unwrap(), data);
}

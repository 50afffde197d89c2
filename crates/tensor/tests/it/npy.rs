//! `.npy` arrays made by numpy (testdata/torch/malicious/, written by
//! `testdata/make_torch_fixtures.py`): a plain array reads as a view with
//! numpy's values, an object array (a pickle) is refused, and hand-made
//! headers check the layout rules.

use netport_tensor::npy::{read_header, view};
use netport_tensor::{ByteOrder, DType, TensorError};
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/torch/malicious")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend((header.len() as u16).to_le_bytes());
    v.extend(header.as_bytes());
    v.extend(data);
    v
}

#[test]
fn a_numpy_float32_array_reads_as_numpy_wrote_it() {
    // np.save(np.arange(3, dtype="<f4"))
    let bytes = fixture("plain_array.npy");
    let h = read_header(&bytes).unwrap();
    assert!(!h.pickled);
    assert_eq!(h.shape, [3]);
    let v = view(&bytes).unwrap();
    assert_eq!(v.dtype(), DType::Float32);
    assert_eq!(
        v.to_contiguous().unwrap(),
        [0f32, 1.0, 2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>()
    );
}

#[test]
fn an_object_array_is_refused() {
    let bytes = fixture("object_array.npy");
    assert!(read_header(&bytes).unwrap().pickled);
    match view(&bytes) {
        Err(TensorError::NpyObjectArray { descr }) => assert_eq!(descr, "|O"),
        other => panic!("{other:?}"),
    }
    // An object field inside a structured dtype is a pickle too.
    let record = npy(
        "{'descr': [('a', '<i4'), ('b', '|O')], 'fortran_order': False, 'shape': (1,), }\n",
        b"",
    );
    assert!(matches!(
        view(&record),
        Err(TensorError::NpyObjectArray { .. })
    ));
}

#[test]
fn fortran_order_and_big_endian_are_honoured() {
    // [[1, 2, 3], [4, 5, 6]] as int16, column-major, big-endian: 1 4 2 5 3 6.
    let data: Vec<u8> = [1i16, 4, 2, 5, 3, 6]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect();
    let bytes = npy(
        "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }\n",
        &data,
    );
    let v = view(&bytes).unwrap();
    assert_eq!(v.shape(), [2, 3]);
    let row_major: Vec<u8> = [1i16, 2, 3, 4, 5, 6]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    assert_eq!(v.to_contiguous_in(ByteOrder::Little).unwrap(), row_major);
}

#[test]
fn broken_headers_are_errors_that_say_why() {
    let good = npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n",
        &[0; 8],
    );
    let mut lying = good.clone();
    lying[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
    let short_data = npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n",
        &[0; 8],
    );
    let deep = npy(
        &format!("{{'descr': {}'<f4'{}}}", "[".repeat(100), "]".repeat(100)),
        b"",
    );
    for (bytes, want) in [
        (lying, "runs past the end of the file"),
        (deep, "nests brackets"),
        (
            b"\x93NUMPY\x09\x00".to_vec(),
            "unknown .npy format version 9",
        ),
        (b"not npy".to_vec(), "no .npy magic"),
    ] {
        let e = view(&bytes).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
    assert!(view(&short_data).is_err(), "data shorter than the shape");
}

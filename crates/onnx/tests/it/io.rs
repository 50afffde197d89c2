//! Loading, saving and external data on models built with our own types:
//! round trips, bounded decoding of hostile bytes, sandboxed external data,
//! 4096-byte alignment, and the 2 GiB protobuf limit.

use bytes::Bytes;
use netport_onnx::proto::attribute_proto::AttributeType;
use netport_onnx::proto::tensor_proto::{DataLocation, DataType};
use netport_onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto,
};
use netport_onnx::{
    ExternalDataInfo, ExternalDataOptions, ExternalDataResolver, OnnxError, SaveOptions,
    decode_model, encode_model, load_model, save_model, tensor_data,
};
use prost::Message;

fn float_tensor(name: &str, dims: &[i64], seed: u32) -> TensorProto {
    let n: i64 = dims.iter().product();
    let data: Vec<u8> = (0..n as u32)
        .flat_map(|i| ((i.wrapping_mul(2654435761) ^ seed) as f32).to_le_bytes())
        .collect();
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(Bytes::from(data)),
        ..Default::default()
    }
}

fn model_with(initializers: Vec<TensorProto>) -> ModelProto {
    ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(21),
        }],
        producer_name: Some("netport-test".into()),
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: vec![NodeProto {
                op_type: Some("Relu".into()),
                input: vec!["x".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            initializer: initializers,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn encode_decode_round_trip_is_byte_identical() {
    let model = model_with(vec![
        float_tensor("w", &[3, 4], 1),
        float_tensor("b", &[4], 2),
    ]);
    let bytes = encode_model(&model).unwrap();
    let back = decode_model(Bytes::from(bytes.clone()), "mem").unwrap();
    assert_eq!(back, model);
    assert_eq!(encode_model(&back).unwrap(), bytes);
}

#[test]
fn empty_and_garbage_inputs_are_clear_errors() {
    let e = decode_model(Bytes::new(), "empty.onnx").unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    let html = Bytes::from_static(b"<!DOCTYPE html><html><body>404</body></html>");
    let e = decode_model(html, "page.onnx").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("page.onnx is not a valid ONNX protobuf"),
        "{e}"
    );
}

#[test]
fn truncated_model_is_an_error() {
    let model = model_with(vec![float_tensor("w", &[64, 64], 3)]);
    let bytes = encode_model(&model).unwrap();
    for cut in [1, 10, bytes.len() / 2, bytes.len() - 1] {
        let r = decode_model(Bytes::copy_from_slice(&bytes[..cut]), "cut.onnx");
        assert!(r.is_err(), "decoding the first {cut} bytes should fail");
    }
}

#[test]
fn hostile_length_prefix_does_not_allocate() {
    // ModelProto.graph (field 7, length-delimited) claiming 2^60 bytes.
    let mut bytes = vec![0x08, 0x0a, 0x3a];
    let mut len: u64 = 1 << 60;
    while len >= 0x80 {
        bytes.push((len as u8) | 0x80);
        len >>= 7;
    }
    bytes.push(len as u8);
    bytes.extend_from_slice(&[0u8; 16]);
    let e = decode_model(Bytes::from(bytes), "bomb.onnx").unwrap_err();
    assert!(matches!(e, OnnxError::Decode { .. }), "{e}");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    // 300 levels of If -> then_branch -> If ...
    let mut graph = GraphProto::default();
    for _ in 0..300 {
        graph = GraphProto {
            node: vec![NodeProto {
                op_type: Some("If".into()),
                attribute: vec![AttributeProto {
                    name: Some("then_branch".into()),
                    r#type: Some(AttributeType::Graph as i32),
                    g: Some(graph),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
    }
    let model = ModelProto {
        ir_version: Some(8),
        graph: Some(graph),
        ..Default::default()
    };
    let bytes = model.encode_to_vec();
    let e = decode_model(Bytes::from(bytes), "deep.onnx").unwrap_err();
    assert!(e.to_string().contains("recursion"), "{e}");
}

#[test]
fn too_large_models_are_refused_with_a_pointer_to_external_data() {
    // Three initializers sharing one 1 GiB buffer: 3 GiB encoded. calloc'd
    // pages are never touched, so the test needs no real memory.
    let gib = Bytes::from(vec![0u8; 1 << 30]);
    let tensors = (0..3)
        .map(|i| TensorProto {
            name: Some(format!("t{i}")),
            dims: vec![1 << 28],
            data_type: Some(DataType::Float as i32),
            raw_data: Some(gib.clone()),
            ..Default::default()
        })
        .collect();
    let model = model_with(tensors);
    let e = encode_model(&model).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, OnnxError::TooLarge { size } if size > 3 << 30),
        "{msg}"
    );
    assert!(msg.contains("external data"), "{msg}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.onnx");
    assert!(save_model(&model, &path, &SaveOptions::default(), None).is_err());
    assert!(!path.exists(), "a refused save leaves no file");
}

#[test]
fn external_data_is_aligned_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let small = float_tensor("small", &[4], 7); // 16 bytes: stays inline
    let model = model_with(vec![
        float_tensor("a", &[100, 3], 1), // 1200 bytes
        small.clone(),
        float_tensor("b", &[1000], 2), // 4000 bytes
        float_tensor("c", &[257], 3),  // 1028 bytes
    ]);
    let path = dir.path().join("m.onnx");
    let opts = SaveOptions {
        external_data: Some(ExternalDataOptions::new("m.onnx.data")),
    };
    save_model(&model, &path, &opts, None).unwrap();

    let loaded = load_model(&path).unwrap();
    let graph = loaded.graph.as_ref().unwrap();
    let resolver = ExternalDataResolver::for_model(&path);
    let mut offsets = Vec::new();
    for (orig, t) in model
        .graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .zip(&graph.initializer)
    {
        if t.name() == "small" {
            assert_eq!(t, &small, "below-threshold tensors stay inline");
            continue;
        }
        assert_eq!(t.data_location(), DataLocation::External);
        assert!(t.raw_data.is_none());
        let info = ExternalDataInfo::of(t).unwrap().unwrap();
        assert_eq!(info.location, "m.onnx.data");
        assert_eq!(info.offset % 4096, 0, "offset {} not aligned", info.offset);
        offsets.push(info.offset);
        assert_eq!(
            tensor_data(t, Some(&resolver)).unwrap(),
            orig.raw_data.clone().unwrap()
        );
    }
    assert_eq!(offsets, vec![0, 4096, 8192]);
    let data_len = std::fs::metadata(dir.path().join("m.onnx.data"))
        .unwrap()
        .len();
    assert_eq!(data_len, 8192 + 1028);

    // Saving the loaded model elsewhere without external data inlines it again.
    let out = dir.path().join("inline.onnx");
    save_model(&loaded, &out, &SaveOptions::default(), Some(&resolver)).unwrap();
    assert_eq!(load_model(&out).unwrap(), model);
}

fn external_tensor(location: &str, offset: u64, length: u64) -> TensorProto {
    let entry = |k: &str, v: String| StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v),
    };
    TensorProto {
        name: Some("w".into()),
        dims: vec![4],
        data_type: Some(DataType::Float as i32),
        data_location: Some(DataLocation::External as i32),
        external_data: vec![
            entry("location", location.into()),
            entry("offset", offset.to_string()),
            entry("length", length.to_string()),
        ],
        ..Default::default()
    }
}

#[test]
fn external_data_outside_the_model_directory_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let model_dir = root.path().join("model");
    std::fs::create_dir(&model_dir).unwrap();
    std::fs::write(root.path().join("secret.bin"), [7u8; 64]).unwrap();
    std::fs::write(model_dir.join("ok.bin"), [1u8; 16]).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.path().join("secret.bin"), model_dir.join("link.bin")).unwrap();
    let resolver = ExternalDataResolver::new(&model_dir);

    let cases = [
        ("../secret.bin", "'..'"),
        ("/etc/passwd", "absolute"),
        ("sub/../../secret.bin", "'..'"),
        ("missing.bin", "cannot be opened"),
        #[cfg(unix)]
        ("link.bin", "outside the model's directory"),
    ];
    for (location, expected) in cases {
        let e = resolver
            .read(&external_tensor(location, 0, 16))
            .unwrap_err();
        assert!(e.to_string().contains(expected), "{location}: {e}");
    }
    assert_eq!(
        resolver
            .read(&external_tensor("ok.bin", 0, 16))
            .unwrap()
            .len(),
        16
    );
    let e = resolver
        .read(&external_tensor("ok.bin", 8, 16))
        .unwrap_err();
    assert!(e.to_string().contains("exceeds 'ok.bin' (16 bytes)"), "{e}");
    let e = resolver
        .read(&external_tensor("ok.bin", 17, 0))
        .unwrap_err();
    assert!(e.to_string().contains("past the end"), "{e}");
    let e = resolver
        .read(&external_tensor("ok.bin", u64::MAX, 2))
        .unwrap_err();
    assert!(e.to_string().contains("past the end"), "{e}");
}

#[test]
fn typed_fields_convert_to_packed_bytes() {
    let t = TensorProto {
        name: Some("i".into()),
        dims: vec![2, 2],
        data_type: Some(DataType::Int64 as i32),
        int64_data: vec![1, -2, 3, i64::MAX],
        ..Default::default()
    };
    let bytes = tensor_data(&t, None).unwrap();
    let expected: Vec<u8> = [1i64, -2, 3, i64::MAX]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(&bytes[..], &expected[..]);

    let half = TensorProto {
        dims: vec![2],
        data_type: Some(DataType::Float16 as i32),
        int32_data: vec![0x3c00, 0xc000],
        ..Default::default()
    };
    assert_eq!(
        &tensor_data(&half, None).unwrap()[..],
        &[0x00, 0x3c, 0x00, 0xc0]
    );

    let short = TensorProto {
        name: Some("short".into()),
        dims: vec![3],
        data_type: Some(DataType::Float as i32),
        float_data: vec![1.0, 2.0],
        ..Default::default()
    };
    let e = tensor_data(&short, None).unwrap_err();
    assert!(
        e.to_string()
            .contains("need 3 values in float_data, found 2"),
        "{e}"
    );
}

/// The mode a plain create gives a new file here (0666 less the umask).
#[cfg(unix)]
fn plain_create_mode(dir: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let probe = dir.join("probe");
    std::fs::File::create(&probe).unwrap();
    let mode = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
    std::fs::remove_file(probe).unwrap();
    mode
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[cfg(unix)]
#[test]
fn outputs_get_plain_create_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let want = plain_create_mode(dir.path());
    let model = model_with(vec![float_tensor("a", &[300], 1)]);
    let plain = dir.path().join("plain.onnx");
    save_model(&model, &plain, &SaveOptions::default(), None).unwrap();
    let ext = dir.path().join("ext.onnx");
    let opts = SaveOptions {
        external_data: Some(ExternalDataOptions::new("ext.onnx.data")),
    };
    save_model(&model, &ext, &opts, None).unwrap();
    for f in ["plain.onnx", "ext.onnx", "ext.onnx.data"] {
        let mode = std::fs::metadata(dir.path().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, want, "{f}: {mode:o}");
    }
}

#[test]
fn failed_saves_leave_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_with(vec![float_tensor("a", &[300], 1)]);
    // The data file's destination is a folder that is not empty: the rename
    // fails after both files were written.
    let blocked = dir.path().join("m.onnx.data");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("keep"), b"x").unwrap();
    let path = dir.path().join("m.onnx");
    let opts = SaveOptions {
        external_data: Some(ExternalDataOptions::new("m.onnx.data")),
    };
    let e = save_model(&model, &path, &opts, None).unwrap_err();
    assert!(e.to_string().contains("m.onnx.data"), "{e}");
    assert_eq!(names_in(dir.path()), ["m.onnx.data"]);
    // An unwritable destination (no such folder).
    let e = save_model(
        &model,
        &dir.path().join("no/such/m.onnx"),
        &SaveOptions::default(),
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("no/such"), "{e}");
    assert_eq!(names_in(dir.path()), ["m.onnx.data"]);
}

//! Interop: files written by the real onnx library and by both torch exporters
//! decode with our schema and re-encode to exactly the same bytes, and their
//! external data reads back through our resolver.

use bytes::Bytes;
use netport_onnx::{ExternalDataResolver, decode_model, encode_model, load_model, tensor_data};
use std::path::Path;

fn assert_round_trip(path: &Path) {
    let original = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let model = decode_model(Bytes::from(original.clone()), &path.display().to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let again = encode_model(&model).unwrap();
    if again != original {
        let at = again.iter().zip(&original).position(|(a, b)| a != b);
        panic!(
            "{}: re-encoding differs ({} vs {} bytes, first difference at {:?})",
            path.display(),
            again.len(),
            original.len(),
            at
        );
    }
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn every_node_test_model_round_trips_byte_identically() {
    let dir = crate::common::peer_dir().join("onnx-node");
    let mut count = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for case in entries {
        let model = case.join("model.onnx");
        if model.is_file() {
            assert_round_trip(&model);
            count += 1;
        }
    }
    // onnx 1.23.2 regenerates 1,884 node tests; fewer means the corpus is broken.
    assert!(
        count >= 1800,
        "only {count} node-test models under {}",
        dir.display()
    );
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn resnet18_from_both_torch_exporters_round_trips() {
    let peers = crate::common::peer_dir();
    for exporter in ["torchscript", "dynamo"] {
        assert_round_trip(&peers.join("resnet18").join(exporter).join("resnet18.onnx"));
    }
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn dynamo_external_data_reads_back_in_full() {
    let path = crate::common::peer_dir().join("resnet18/dynamo/resnet18.onnx");
    let model = load_model(&path).unwrap();
    let resolver = ExternalDataResolver::for_model(&path);
    let graph = model.graph.as_ref().unwrap();
    let mut external = 0;
    let mut covered = 0u64;
    for t in &graph.initializer {
        let data = tensor_data(t, Some(&resolver)).unwrap_or_else(|e| panic!("{e}"));
        let numel = netport_onnx::numel(t).unwrap();
        let expected = netport_onnx::dtype::packed_bytes(t.data_type(), numel).unwrap();
        assert_eq!(data.len() as u64, expected, "tensor {}", t.name());
        if netport_onnx::external::is_external(t) {
            external += 1;
            covered += data.len() as u64;
        }
    }
    assert!(
        external > 30,
        "expected most resnet18 weights external, got {external}"
    );
    let data_file = path.with_file_name("resnet18.onnx.data");
    assert_eq!(covered, std::fs::metadata(data_file).unwrap().len());
}

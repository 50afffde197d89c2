//! Interop: `netport inspect --json` agrees with the onnx library (opsets,
//! input and output names, types and shapes, initializer and node counts) on
//! every model recorded in the peer corpus's onnx-summary.json: a sample of
//! the node-test models and resnet18 from both torch exporters.

use crate::common::*;

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn inspect_agrees_with_the_onnx_library_on_the_peer_corpus() {
    let peers = peer_dir();
    let summary = read_json(&peers.join("onnx-summary.json"));
    let entries = summary.as_object().expect("onnx-summary.json is an object");
    assert!(
        entries.len() >= 200,
        "only {} models in onnx-summary.json",
        entries.len()
    );
    for (rel, theirs) in entries {
        let ours = inspect_json(&[&peers.join(rel)]);
        assert_onnx_agrees(&ours, theirs, rel);
    }
    assert!(entries.keys().any(|k| k.contains("resnet18/dynamo")));
    assert!(entries.keys().any(|k| k.contains("resnet18/torchscript")));
}

//! Interop: every model of onnx's node-test corpus and both torch exports of
//! resnet18 (all valid for onnx.checker, which wrote or accepted them) are
//! valid for our checker too, and for `check --shapes` (the checker plus
//! type and shape inference with the type-constraint rule) too.

use netport_onnx::check::{CheckOptions, check_model};
use netport_onnx::load_model;
use std::path::Path;

/// The errors `netport check --shapes` finds in `path` (the checker's and
/// inference's), one line each.
pub(crate) fn errors(path: &Path) -> Vec<String> {
    let model = load_model(path).unwrap_or_else(|e| panic!("{e}"));
    let mut diagnostics = check_model(&model, &CheckOptions::for_model(path));
    diagnostics.extend(netport_onnx::shapes::infer_shapes(&model).diagnostics);
    diagnostics
        .into_iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}: {d}", path.display()))
        .collect()
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn every_node_test_model_is_valid() {
    let dir = crate::common::peer_dir().join("onnx-node");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let mut count = 0;
    let mut problems = Vec::new();
    for case in entries {
        let model = case.join("model.onnx");
        if model.is_file() {
            problems.extend(errors(&model));
            count += 1;
        }
    }
    eprintln!("checked {count} node-test models");
    assert!(
        count >= 1800,
        "only {count} node-test models under {}",
        dir.display()
    );
    assert!(
        problems.is_empty(),
        "{} errors in models onnx.checker accepts:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn resnet18_from_both_torch_exporters_is_valid() {
    let peers = crate::common::peer_dir();
    for exporter in ["torchscript", "dynamo"] {
        let path = peers.join("resnet18").join(exporter).join("resnet18.onnx");
        let found = errors(&path);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}

//! `netport graph`: the picture files it writes (the same bytes as the
//! library's, the same on every run), the model formats it takes and what
//! it refuses.

use crate::common::{netport, testdata};
use serde_json::Value;
use std::path::Path;

fn graph_ok(args: &[&std::ffi::OsStr]) -> Value {
    let mut all: Vec<&std::ffi::OsStr> = vec!["graph".as_ref(), "--json".as_ref()];
    all.extend_from_slice(args);
    let out = netport(&all);
    assert!(
        out.status.success(),
        "netport {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("graph --json prints JSON")
}

fn graph_err(args: &[&std::ffi::OsStr]) -> String {
    let mut all: Vec<&std::ffi::OsStr> = vec!["graph".as_ref()];
    all.extend_from_slice(args);
    let out = netport(&all);
    assert_eq!(out.status.code(), Some(2), "netport {all:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn onnx_to_svg_is_the_library_picture_and_the_same_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = testdata("onnx/tiny_cnn.onnx");
    let out = dir.path().join("cnn.svg");
    let doc = graph_ok(&[
        model.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--shapes".as_ref(),
    ]);
    assert_eq!(doc["format"], "svg");
    assert_eq!(doc["model_format"], "ONNX");
    assert_eq!(
        (doc["ops"].as_u64(), doc["boxes"].as_u64()),
        (Some(6), Some(8))
    );
    assert_eq!(doc["edges"], 7);
    let first = std::fs::read_to_string(&out).unwrap();
    assert_eq!(doc["bytes"].as_u64(), Some(first.len() as u64));
    let loaded = netport_onnx::load_model(&model).unwrap();
    let options = netport_graph::onnx::Options { shapes: true };
    let expected = netport_graph::to_svg(&netport_graph::onnx::picture(&loaded, &options));
    assert_eq!(first, expected);
    graph_ok(&[
        model.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--shapes".as_ref(),
    ]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), first);
}

#[test]
fn a_caffe2_pair_folder_or_its_two_files_give_the_snapshot_dot() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../graph/tests/snapshots/caffe2_tiny.dot"),
    )
    .unwrap();
    let a = dir.path().join("a.dot");
    let doc = graph_ok(&[
        testdata("caffe2/tiny").as_os_str(),
        "-o".as_ref(),
        a.as_os_str(),
    ]);
    assert_eq!(doc["model_format"], "Caffe2");
    assert_eq!(std::fs::read_to_string(&a).unwrap(), snapshot);
    // Predict net first: told apart by content.
    let b = dir.path().join("b.DOT");
    graph_ok(&[
        testdata("caffe2/tiny/predict_net.pb").as_os_str(),
        testdata("caffe2/tiny/init_net.pb").as_os_str(),
        "-o".as_ref(),
        b.as_os_str(),
    ]);
    assert_eq!(std::fs::read_to_string(&b).unwrap(), snapshot);
}

#[test]
fn scopes_fold_on_request_and_an_unknown_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = testdata("onnx/tiny_cnn.onnx");
    let out = dir.path().join("f.svg");
    let doc = graph_ok(&[
        model.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--collapse".as_ref(),
        "/conv".as_ref(),
        "--collapse".as_ref(),
        "/bn".as_ref(),
    ]);
    // Two ops become two folded boxes: the count of boxes stays.
    assert_eq!(
        (doc["ops"].as_u64(), doc["boxes"].as_u64()),
        (Some(6), Some(8))
    );
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("class=\"node collapsed")
    );
    let err = graph_err(&[
        model.as_os_str(),
        "-o".as_ref(),
        dir.path().join("g.svg").as_os_str(),
        "--collapse".as_ref(),
        "/layer1".as_ref(),
    ]);
    assert!(err.contains("\"/layer1\""), "{err}");
    assert!(
        err.contains("/bn, /conv, /fc, /flatten, /pool, /relu"),
        "{err}"
    );
    assert!(!dir.path().join("g.svg").exists());
}

#[test]
fn what_it_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let model = testdata("onnx/tiny_cnn.onnx");
    let png = dir.path().join("x.png");
    let err = graph_err(&[model.as_os_str(), "-o".as_ref(), png.as_os_str()]);
    assert!(err.contains("must end in .svg or .dot"), "{err}");
    assert!(!png.exists());
    let out = dir.path().join("x.svg");
    let err = graph_err(&[
        testdata("caffe2/tiny").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--shapes".as_ref(),
    ]);
    assert!(
        err.contains("--shapes applies to ONNX models only"),
        "{err}"
    );
    let err = graph_err(&[
        testdata("onnx/hostile/html_error_page.onnx").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(err.contains("HTML"), "{err}");
    let err = graph_err(&[
        testdata("torch/big_endian.pt").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(
        err.contains("PyTorch checkpoint, which holds tensors but no graph"),
        "{err}"
    );
    assert!(!out.exists());
    // An output that is the input (here through a hard link named .svg).
    let linked = dir.path().join("model.svg");
    std::fs::copy(&model, dir.path().join("model.onnx")).unwrap();
    std::fs::hard_link(dir.path().join("model.onnx"), &linked).unwrap();
    let before = std::fs::read(&linked).unwrap();
    let err = graph_err(&[
        dir.path().join("model.onnx").as_os_str(),
        "-o".as_ref(),
        linked.as_os_str(),
    ]);
    assert!(err.contains("the output is the input"), "{err}");
    assert_eq!(std::fs::read(&linked).unwrap(), before);
}

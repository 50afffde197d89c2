//! Broken and hostile graphs: a clear error naming what is wrong, no panic.

use crate::common::*;
use netport_onnx_caffe2::{ConvertError, ToCaffe2Options, onnx_to_caffe2};

fn error(m: &netport_onnx::proto::ModelProto) -> String {
    let e = onnx_to_caffe2(m, &ToCaffe2Options::default()).unwrap_err();
    assert!(
        matches!(e, ConvertError::Invalid(_) | ConvertError::Onnx(_)),
        "{e:?}"
    );
    e.to_string()
}

#[test]
fn fills_whose_values_disagree_with_their_shape() {
    let m = model(
        9,
        vec![value("x", &[2])],
        vec![value("y", &[2])],
        vec![floats("w", &[2, 3], &[1.0, 2.0])],
        vec![node("Add", &["x", "w"], &["y"], vec![])],
    );
    let e = error(&m);
    assert!(
        e.contains(
            "tensor 'w': dims [2, 3] (6 elements of 4 bytes) need 24 bytes of data, found 8"
        ),
        "{e}"
    );
}

#[test]
fn fills_of_absurd_size_are_refused_before_allocating() {
    // 2^40 elements claimed, 8 bytes present.
    let m = model(
        9,
        vec![value("x", &[2])],
        vec![value("y", &[2])],
        vec![floats("w", &[1 << 20, 1 << 20], &[1.0, 2.0])],
        vec![node("Add", &["x", "w"], &["y"], vec![])],
    );
    assert!(error(&m).contains("need 4398046511104 bytes of data, found 8"));
}

#[test]
fn names_that_repeat() {
    let m = model(
        9,
        vec![value("x", &[2])],
        vec![value("y", &[2])],
        vec![],
        vec![
            node("Relu", &["x"], &["y"], vec![]),
            node("Sigmoid", &["x"], &["y"], vec![]),
        ],
    );
    assert!(error(&m).contains("output 'y' is already produced"));
    let twice = model(
        9,
        vec![value("x", &[2])],
        vec![value("y", &[2])],
        vec![
            floats("w", &[2], &[1.0, 2.0]),
            floats("w", &[2], &[1.0, 2.0]),
        ],
        vec![node("Add", &["x", "w"], &["y"], vec![])],
    );
    assert!(error(&twice).contains("initializer 'w' is defined twice"));
}

#[test]
fn cycles_through_in_place_style_ops() {
    // a = Relu(b); b = Relu(a): each reads the other.
    let m = model(
        9,
        vec![value("x", &[2])],
        vec![value("b", &[2])],
        vec![],
        vec![
            node("Relu", &["b"], &["a"], vec![]),
            node("Relu", &["a"], &["b"], vec![]),
        ],
    );
    let e = error(&m);
    assert!(
        e.contains("input 'b' is produced by a later node (a cycle"),
        "{e}"
    );
}

#[test]
fn unknown_ops_and_graphs_without_opset() {
    let m = model(
        9,
        vec![value("x", &[2])],
        vec![value("y", &[2])],
        vec![],
        vec![node("NoSuchOp", &["x"], &["y"], vec![])],
    );
    let e = onnx_to_caffe2(&m, &ToCaffe2Options::default()).unwrap_err();
    assert!(
        e.is_unsupported() && e.to_string().contains("NoSuchOp (opset 9)"),
        "{e}"
    );
    let mut no_opset = m.clone();
    no_opset.opset_import.clear();
    assert!(error(&no_opset).contains("does not declare an ONNX"));
    let mut no_graph = m;
    no_graph.graph = None;
    assert!(error(&no_graph).contains("no graph"));
}

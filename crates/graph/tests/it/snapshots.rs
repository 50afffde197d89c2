//! The DOT of small committed models, compared with the snapshots in
//! tests/snapshots/ (rewritten outside CI when they differ; see
//! `common::ensure_file_contents`).

use crate::common::{ensure_file_contents, load_onnx, snapshot, testdata};
use netport_caffe2::Caffe2Model;
use netport_graph::onnx::{Options, picture};
use netport_graph::{Collapse, collapse, to_dot};

#[test]
fn tiny_cnn() {
    let model = load_onnx("onnx/tiny_cnn.onnx");
    let dot = to_dot(&picture(&model, &Options::default()));
    ensure_file_contents(&snapshot("tiny_cnn.dot"), &dot);
}

#[test]
fn tiny_cnn_with_inferred_shapes() {
    let model = load_onnx("onnx/tiny_cnn.onnx");
    let dot = to_dot(&picture(&model, &Options { shapes: true }));
    ensure_file_contents(&snapshot("tiny_cnn.shapes.dot"), &dot);
}

#[test]
fn if_with_branches_reading_outer_values() {
    let model = load_onnx("onnx/check/if__valid.onnx");
    let dot = to_dot(&picture(&model, &Options::default()));
    ensure_file_contents(&snapshot("if_valid.dot"), &dot);
}

#[test]
fn tiny_cnn_folded_scope() {
    let model = load_onnx("onnx/tiny_cnn.onnx");
    let p = picture(&model, &Options { shapes: true });
    let what = Collapse {
        scopes: vec!["/bn".into(), "/relu/".into()],
        depth: None,
    };
    let dot = to_dot(&collapse(&p, &what).unwrap());
    ensure_file_contents(&snapshot("tiny_cnn.collapsed.dot"), &dot);
}

#[test]
fn caffe2_pair() {
    let model = Caffe2Model::load_dir(testdata("caffe2/tiny")).unwrap();
    let p = netport_graph::caffe2::picture(&model.predict_net, Some(&model.init_net));
    ensure_file_contents(&snapshot("caffe2_tiny.dot"), &to_dot(&p));
}

#[test]
fn caffe2_predict_net_alone() {
    let net = netport_caffe2::load_netdef(testdata("caffe2/tiny/predict_net.pbtxt")).unwrap();
    let p = netport_graph::caffe2::picture(&net, None);
    ensure_file_contents(&snapshot("caffe2_tiny_predict.dot"), &to_dot(&p));
}

/// The example pictures in docs/pictures/ that come from committed
/// fixtures are what netport draws today.
#[test]
fn example_pictures_in_the_docs_are_current() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/pictures");
    let model = load_onnx("onnx/tiny_cnn.onnx");
    let svg = netport_graph::to_svg(&picture(&model, &Options { shapes: true }));
    ensure_file_contents(&docs.join("tiny_cnn.svg"), &svg);
    let pair = Caffe2Model::load_dir(testdata("caffe2/tiny")).unwrap();
    let p = netport_graph::caffe2::picture(&pair.predict_net, Some(&pair.init_net));
    ensure_file_contents(&docs.join("caffe2_tiny.svg"), &netport_graph::to_svg(&p));
}

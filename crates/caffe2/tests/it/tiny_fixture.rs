//! The committed fixture `testdata/caffe2/tiny/` (written by the real Python
//! protobuf library, see testdata/README.md): the pair loads, both nets
//! re-encode to the same bytes, the text twin parses to the predict net and
//! is exactly what we print, and `expected.json` agrees with what we read.

use netport_caffe2::Caffe2Model;
use std::path::PathBuf;

fn tiny_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/caffe2/tiny")
}

#[test]
fn tiny_pair_round_trips_and_matches_expected() {
    let dir = tiny_dir();
    let expected = crate::common::read_json(&dir.join("expected.json"));
    let files = expected["files"].as_object().expect("a `files` object");
    let init = crate::common::decode_and_reencode(&dir.join("init_net.pb"));
    let predict = crate::common::decode_and_reencode(&dir.join("predict_net.pb"));
    for (name, net) in [("init_net.pb", &init), ("predict_net.pb", &predict)] {
        let size = std::fs::metadata(dir.join(name)).unwrap().len() as usize;
        crate::common::check_expected(name, net, size, &files[name]);
    }
    crate::common::check_text(&dir.join("predict_net.pbtxt"), &predict);

    let model = Caffe2Model::load_dir(&dir).unwrap();
    assert_eq!(model.init_net, init);
    assert_eq!(model.predict_net, predict);
}

#[test]
fn tiny_summary() {
    let dir = tiny_dir();
    let expected = crate::common::read_json(&dir.join("expected.json"));
    let summary = Caffe2Model::load_dir(&dir).unwrap().summary();
    let fills = expected["files"]["init_net.pb"]["fills"]
        .as_array()
        .unwrap();
    // Every parameter is a float32 GivenTensorFill whose shape matches its values.
    let want_bytes: u64 = fills
        .iter()
        .map(|f| f["byte_count"].as_u64().unwrap())
        .sum();
    assert_eq!(summary.param_bytes, want_bytes);
    assert_eq!(summary.params_by_dtype.len(), 1);
    let total = &summary.params_by_dtype[0];
    assert_eq!(
        total.tensor_dtype().map(|d| d.torch_name()),
        Some("float32")
    );
    assert_eq!((total.tensors, total.unsized_tensors), (fills.len(), 0));
    assert_eq!(summary.init.fills.len(), fills.len());
    for (ours, theirs) in summary.init.fills.iter().zip(fills) {
        assert_eq!(ours.output, theirs["output"].as_str().unwrap());
        assert_eq!(ours.element_count, theirs["value_count"].as_u64());
    }
    // The data the caller feeds: the predict inputs the init net does not make.
    assert_eq!(summary.data_inputs, ["input"]);
    assert_eq!(
        summary.predict.external_outputs,
        expected["files"]["predict_net.pb"]["external_output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect::<Vec<_>>()
    );
}

//! `netport inspect` on the committed Caffe2 fixtures (testdata/caffe2/tiny,
//! written by the real protobuf library): a pair given as a directory or as two
//! files, single nets in binary and text format, all checked against the
//! expected.json the fixture script wrote.

mod common;
use common::*;
use serde_json::Value;

/// Checks our JSON for one net against the fixture's expectations.
fn assert_net_agrees(ours: &Value, expected: &Value, what: &str) {
    assert_eq!(ours["name"], expected["name"], "{what}: name");
    assert_eq!(
        ours["external_inputs"], expected["external_input"],
        "{what}: external inputs"
    );
    assert_eq!(
        ours["external_outputs"], expected["external_output"],
        "{what}: external outputs"
    );
    assert_eq!(
        ours["device_option"], expected["device_option"],
        "{what}: device option"
    );
    // Op types in order of first appearance, with counts.
    let mut counts: Vec<(String, u64)> = Vec::new();
    for op in expected["op_types"].as_array().unwrap() {
        let op = op.as_str().unwrap();
        match counts.iter_mut().find(|(name, _)| name == op) {
            Some((_, n)) => *n += 1,
            None => counts.push((op.to_string(), 1)),
        }
    }
    let ours_counts: Vec<(String, u64)> = ours["op_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["op_type"].as_str().unwrap().to_string(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ours_counts, counts, "{what}: op types");
    let fills = ours["fills"].as_array().unwrap();
    let expected_fills = expected["fills"].as_array().unwrap();
    assert_eq!(fills.len(), expected_fills.len(), "{what}: fill count");
    for (f, e) in fills.iter().zip(expected_fills) {
        assert_eq!(f["output"], e["output"], "{what}: fill output");
        assert_eq!(f["op_type"], e["type"], "{what}: fill op");
        assert_eq!(f["shape"], e["shape"], "{what}: fill {} shape", e["output"]);
        assert_eq!(
            f["value_count"], e["value_count"],
            "{what}: fill {} values",
            e["output"]
        );
        assert_eq!(
            f["bytes"], e["byte_count"],
            "{what}: fill {} bytes",
            e["output"]
        );
        assert_eq!(e["dtype"], "float32", "fixture uses float fills");
        assert_eq!(
            f["dtype_name"], "FLOAT",
            "{what}: fill {} dtype",
            e["output"]
        );
    }
}

#[test]
fn pair_directory_and_two_files_agree_with_the_fixture() {
    let dir = testdata("caffe2/tiny");
    let expected = read_json(&dir.join("expected.json"));
    let by_dir = inspect_json(&[&dir]);
    let by_files = inspect_json(&[&dir.join("init_net.pb"), &dir.join("predict_net.pb")]);
    for report in [&by_dir, &by_files] {
        assert_eq!(report["format"], "caffe2_pair");
        assert_net_agrees(
            &report["init_net"],
            &expected["files"]["init_net.pb"],
            "init_net.pb",
        );
        assert_net_agrees(
            &report["predict_net"],
            &expected["files"]["predict_net.pb"],
            "predict_net.pb",
        );
        assert_eq!(report["data_inputs"], serde_json::json!(["input"]));
        let fill_bytes: u64 = expected["files"]["init_net.pb"]["fills"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["byte_count"].as_u64().unwrap())
            .sum();
        assert_eq!(report["params"]["bytes"], fill_bytes);
    }
}

#[test]
fn single_nets_in_binary_and_text_format() {
    let dir = testdata("caffe2/tiny");
    let expected = read_json(&dir.join("expected.json"));
    let binary = inspect_json(&[&dir.join("predict_net.pb")]);
    let text = inspect_json(&[&dir.join("predict_net.pbtxt")]);
    assert_eq!(binary["format"], "caffe2_net");
    assert_eq!(
        binary["net"], text["net"],
        "text and binary forms describe the same net"
    );
    assert_net_agrees(
        &binary["net"],
        &expected["files"]["predict_net.pb"],
        "predict_net.pb",
    );
}

#[test]
fn a_directory_without_a_pair_is_an_error() {
    let empty = tempfile::tempdir().unwrap();
    let out = netport(["inspect".as_ref(), empty.path().as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("init"), "{stderr}");
}

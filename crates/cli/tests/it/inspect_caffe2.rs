//! `netport inspect` on the committed Caffe2 fixtures (testdata/caffe2/tiny,
//! written by the real protobuf library): a pair given as a directory or as two
//! files, single nets in binary and text format, all checked against the
//! expected.json the fixture script wrote.

use crate::common::*;
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
        assert_eq!(report["pair_order"], "as_given");
        // The other external inputs of the predict net are the init net's
        // outputs: the weights.
        assert_eq!(
            report["weight_inputs"],
            expected["files"]["init_net.pb"]["external_output"]
        );
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

#[test]
fn a_pair_given_predict_net_first_is_told_apart_by_content() {
    let dir = testdata("caffe2/tiny");
    let (init, predict) = (dir.join("init_net.pb"), dir.join("predict_net.pb"));
    let expected = read_json(&dir.join("expected.json"));
    let given = inspect_json(&[&init, &predict]);
    let swapped = inspect_json(&[&predict, &init]);
    assert_eq!(swapped["pair_order"], "swapped");
    assert_eq!(swapped["init_net_path"], init.display().to_string());
    assert_eq!(swapped["predict_net_path"], predict.display().to_string());
    assert_net_agrees(
        &swapped["init_net"],
        &expected["files"]["init_net.pb"],
        "init_net.pb",
    );
    for field in ["init_net", "predict_net", "params", "data_inputs"] {
        assert_eq!(swapped[field], given[field], "{field}");
    }
    // The text says which file is which, and that they came the other way.
    let out = netport(["inspect".as_ref(), predict.as_os_str(), init.as_os_str()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("init net     {} (fill ops only)", init.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("predict net  {}", predict.display())),
        "{text}"
    );
    assert!(text.contains("given predict net first"), "{text}");
    assert!(text.contains("init net: main_graph_init"), "{text}");
    assert!(text.contains("predict net: main_graph_predict"), "{text}");

    // One net alone: its role by the same rule.
    for (file, role) in [(&init, "init_net"), (&predict, "predict_net")] {
        assert_eq!(inspect_json(&[file])["role"], role, "{}", file.display());
    }
}

#[test]
fn long_name_lists_are_summarised_unless_all() {
    let dir = testdata("caffe2/tiny");
    let expected = read_json(&dir.join("expected.json"));
    let weights: Vec<&str> = expected["files"]["init_net.pb"]["external_output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(weights.len(), 8, "the fixture's init net makes 8 weights");
    let text = |args: &[&std::ffi::OsStr]| {
        let out = netport(args);
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let short = text(&["inspect".as_ref(), dir.as_os_str()]);
    // Data vs weights, counts, the first five names.
    let line = format!(
        "external inputs (9): 1 data (input); 8 weights from the init net ({}, ... (3 more))",
        weights[..5].join(", ")
    );
    assert!(short.contains(&line), "{short}");
    assert!(short.contains("--all prints every name"), "{short}");

    let all = text(&["inspect".as_ref(), "--all".as_ref(), dir.as_os_str()]);
    assert!(all.contains("    input  (data)\n"), "{all}");
    for w in &weights {
        assert!(all.contains(&format!("    {w}  (weight)\n")), "{w}: {all}");
    }
    assert!(!all.contains("more)"), "{all}");
    // The JSON always has every name.
    let json = inspect_json(&[&dir]);
    assert_eq!(
        json["predict_net"]["external_inputs"]
            .as_array()
            .unwrap()
            .len(),
        9
    );
}

//! `netport inspect` on the committed ONNX fixtures (made by real torch and
//! onnx, see testdata/README.md): what it reports agrees with what the onnx
//! library recorded, and broken or hostile files give a one-line error and
//! exit code 2.

use crate::common::*;

#[test]
fn tiny_cnn_json_agrees_with_the_onnx_library() {
    let path = testdata("onnx/tiny_cnn.onnx");
    let ours = inspect_json(&[&path]);
    let expected = read_json(&testdata("onnx/tiny_cnn.expected.json"));
    assert_onnx_agrees(&ours, &expected, "tiny_cnn.onnx");
    assert_eq!(ours["format"], "onnx");
    assert_eq!(ours["producer_name"], expected["producer"]["name"]);
    assert_eq!(ours["producer_version"], expected["producer"]["version"]);
    assert_eq!(
        ours["initializers"]["bytes"],
        expected["total_initializer_bytes"]
    );
    // The op histogram counts exactly the node types the onnx library lists.
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for op in expected["node_op_types"].as_array().unwrap() {
        *counts.entry(op.as_str().unwrap().to_string()).or_default() += 1;
    }
    assert_eq!(ours["op_types"], serde_json::to_value(&counts).unwrap());
    assert_eq!(ours["external_data"], serde_json::json!([]));
}

#[test]
fn external_data_model_lists_its_data_file() {
    let path = testdata("onnx/tiny_cnn_external/tiny_cnn.onnx");
    let ours = inspect_json(&[&path]);
    let inline = inspect_json(&[&testdata("onnx/tiny_cnn.onnx")]);
    let files = ours["external_data"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["location"], "tiny_cnn.data");
    let data_len = std::fs::metadata(testdata("onnx/tiny_cnn_external/tiny_cnn.data"))
        .unwrap()
        .len();
    assert!(files[0]["bytes"].as_u64().unwrap() <= data_len);
    // Same tensors, wherever they are stored.
    assert_eq!(ours["initializers"], inline["initializers"]);
}

#[test]
fn text_output_names_the_model_parts() {
    let out = netport([
        "inspect".as_ref(),
        testdata("onnx/tiny_cnn.onnx").as_os_str(),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "ONNX model",
        "ai.onnx=20",
        "input  FLOAT [batch, 3, 32, 32]",
        "Conv",
        "initializers: 8",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn hostile_files_fail_with_one_clear_line() {
    let cases = [
        ("empty.onnx", "the file is empty"),
        ("truncated.onnx", "not a valid ONNX protobuf"),
        ("varint_2_60.onnx", "not a valid ONNX protobuf"),
        ("nested_if_200.onnx", "recursion limit"),
        ("html_error_page.onnx", "an HTML page"),
        ("git_lfs_pointer.onnx", "git lfs pull"),
        ("external_escape.onnx", "contains '..'"),
        ("external_absolute.onnx", "absolute path"),
        (
            "external_out_of_range.onnx",
            "exceeds 'external_out_of_range.data' (64 bytes)",
        ),
    ];
    for (file, expected) in cases {
        let path = testdata("onnx/hostile").join(file);
        let before = std::fs::read(&path).unwrap();
        let out = netport(["inspect".as_ref(), "--json".as_ref(), path.as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(out.stdout.is_empty(), "{file}: printed output on error");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{file}: {stderr}");
        assert!(
            stderr.contains(file),
            "{file}: error does not name the file: {stderr}"
        );
        assert!(
            stderr.contains(expected),
            "{file}: expected {expected:?} in {stderr}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "{file} was modified");
    }
}

#[test]
fn missing_file_is_an_error() {
    let out = netport(["inspect", "/nonexistent/model.onnx"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/model.onnx"));
}

#[test]
fn shapes_adds_the_inferred_outputs_of_tiny_cnn() {
    let path = testdata("onnx/tiny_cnn.onnx");
    let plain = inspect_json(&[&path]);
    assert!(plain.get("shapes").is_none(), "{plain}");
    let out = netport([
        "inspect".as_ref(),
        "--shapes".as_ref(),
        "--json".as_ref(),
        path.as_os_str(),
    ]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // What onnx.shape_inference.infer_shapes gives for it: FLOAT [batch, 2].
    let outputs = json["shapes"]["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0]["name"], "output");
    assert_eq!(outputs[0]["elem_type"], 1);
    assert_eq!(outputs[0]["dims"], serde_json::json!(["batch", 2]));
    assert_eq!(json["shapes"]["unsupported_ops"], serde_json::json!([]));
    // The rest of the report is unchanged.
    let mut rest = json.clone();
    rest.as_object_mut().unwrap().remove("shapes");
    assert_eq!(rest, plain);

    let text = netport(["inspect".as_ref(), "--shapes".as_ref(), path.as_os_str()]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("inferred shapes:\n  output output: elem_type 1 [batch, 2]"),
        "{text}"
    );
}

#[test]
fn shapes_is_refused_for_other_formats() {
    let out = netport([
        "inspect".as_ref(),
        "--shapes".as_ref(),
        testdata("torch/big_endian.pt").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("--shapes applies to ONNX models only"),
        "{err}"
    );
}

//! `netport check`: exit codes (0 valid, 1 invalid, 2 unreadable), one text
//! line per problem with a summary, and the JSON document's fields, on the
//! committed mutation corpus (testdata/onnx/check/, verdicts from
//! onnx.checker in its expected.json).

use crate::common::{netport, testdata};
use serde_json::Value;

fn check_json(rel: &str) -> (i32, Value) {
    let path = testdata(rel);
    let out = netport(["check".as_ref(), "--json".as_ref(), path.as_os_str()]);
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{rel}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), doc)
}

#[test]
fn a_valid_model_exits_0() {
    let path = testdata("onnx/tiny_cnn.onnx");
    let out = netport(["check".as_ref(), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("valid (0 errors, 0 warnings)"), "{text}");
}

#[test]
fn an_invalid_model_exits_1_with_one_line_per_problem() {
    let path = testdata("onnx/check/mlp__nodes_out_of_order.onnx");
    let out = netport(["check".as_ref(), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Reversed MatMul-Add-Relu-Softmax-Cast: four nodes read values that
    // only later nodes define, and the summary line.
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].contains("error [node-input-undefined] graph node 0 'cast' (Cast)"),
        "{text}"
    );
    assert!(
        lines[4].starts_with("summary: ") && lines[4].contains("INVALID (4 errors, 0 warnings)"),
        "{text}"
    );
}

#[test]
fn json_names_rule_node_and_severity() {
    let (code, doc) = check_json("onnx/check/cnn__unknown_attribute.onnx");
    assert_eq!(code, 1);
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["errors"], 1);
    assert_eq!(doc["warnings"], 0);
    let d = &doc["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["rule"], "attribute-unknown");
    assert_eq!(d["location"], "graph");
    assert_eq!(d["node_index"], 0);
    assert_eq!(d["node_name"], "conv");
    assert_eq!(d["op_type"], "Conv");
    assert!(d["message"].as_str().unwrap().contains("'bogus'"), "{d}");
}

#[test]
fn warnings_keep_a_model_valid() {
    let (code, doc) = check_json("onnx/check/if__external_past_end_of_file.onnx");
    assert_eq!(code, 0);
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["warnings"], 1);
    assert_eq!(doc["diagnostics"][0]["rule"], "external-data-range");
    assert_eq!(doc["diagnostics"][0]["node_index"], Value::Null);
}

#[test]
fn subgraph_problems_name_their_graph() {
    let (code, doc) = check_json("onnx/check/if__subgraph_undefined_input.onnx");
    assert_eq!(code, 1);
    let d = &doc["diagnostics"][0];
    assert_eq!(d["rule"], "node-input-undefined");
    assert_eq!(d["location"], "graph/node[2]:then_branch");
    assert_eq!(d["op_type"], "Mul");
}

#[test]
fn unreadable_files_exit_2() {
    for rel in [
        "onnx/hostile/html_error_page.onnx",
        "onnx/hostile/truncated.onnx",
        "onnx/no_such.onnx",
    ] {
        let path = testdata(rel);
        let out = netport(["check".as_ref(), path.as_os_str()]);
        assert_eq!(out.status.code(), Some(2), "{rel}");
        assert!(out.stdout.is_empty(), "{rel}");
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("netport: error: "),
            "{rel}"
        );
    }
}

#[test]
fn the_exit_code_follows_onnx_checker_on_the_whole_corpus() {
    let expected = crate::common::read_json(&testdata("onnx/check/expected.json"));
    for case in expected["cases"].as_array().unwrap() {
        let file = case["file"].as_str().unwrap();
        let (code, doc) = check_json(&format!("onnx/check/{file}"));
        let want = if case["onnx_valid"].as_bool().unwrap() {
            0
        } else {
            1
        };
        assert_eq!(code, want, "{file}: {doc}");
        assert_eq!(doc["valid"], want == 0, "{file}");
    }
}

#[test]
fn shapes_finds_a_declared_shape_that_inference_contradicts() {
    use netport_onnx::build::{Dim, ModelBuilder};
    use netport_tensor::DType;
    // Relu keeps its input's shape [2, 3]; the output is declared [2, 4].
    let mut m = ModelBuilder::new("clash", &[("", 17)]).unwrap();
    let g = m.graph();
    g.input("x", DType::Float32, &[Dim::Fixed(2), Dim::Fixed(3)])
        .unwrap();
    g.node("Relu", &["x"], &["y"]).add().unwrap();
    g.output("y", DType::Float32, &[Dim::Fixed(2), Dim::Fixed(4)])
        .unwrap();
    let model = m.finish().expect("valid for the checker without inference");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clash.onnx");
    let opts = netport_onnx::SaveOptions {
        external_data: None,
    };
    netport_onnx::save_model(&model, &path, &opts, None).unwrap();

    let plain = netport(["check".as_ref(), path.as_os_str()]);
    assert_eq!(
        plain.status.code(),
        Some(0),
        "without --shapes the model is valid"
    );
    let out = netport([
        "check".as_ref(),
        "--shapes".as_ref(),
        "--json".as_ref(),
        path.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules: Vec<&str> = json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["rule"].as_str())
        .collect();
    assert!(rules.contains(&"inference-shape-clash"), "{json}");
    assert_eq!(json["shapes"]["outputs"][0]["name"], "y");
}

#[test]
fn shapes_lists_the_inferred_outputs_of_tiny_cnn() {
    let out = netport([
        "check".as_ref(),
        "--shapes".as_ref(),
        "--json".as_ref(),
        testdata("onnx/tiny_cnn.onnx").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    // What onnx.shape_inference.infer_shapes gives for it: [batch, 2].
    assert_eq!(
        json["shapes"]["outputs"][0]["dims"],
        serde_json::json!(["batch", 2])
    );
    assert_eq!(json["shapes"]["unsupported_ops"], serde_json::json!([]));
}

#[test]
fn shapes_refuses_a_type_the_op_does_not_allow() {
    // onnx.checker(full_check=True) on this corpus case: "(op_type:Relu,
    // node name: relu_q): X typestr: T, has unsupported type: tensor(int8)"
    // (Relu allows int8 from opset 14; the model imports 13).
    let path = testdata("onnx/check/if__relu_int8_input.onnx");
    let plain = netport(["check".as_ref(), path.as_os_str()]);
    assert_eq!(plain.status.code(), Some(0));
    let out = netport([
        "check".as_ref(),
        "--shapes".as_ref(),
        "--json".as_ref(),
        path.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["rule"] == "inference-type-constraint")
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(d["node_name"], "relu_q");
    assert_eq!(d["op_type"], "Relu");
    let message = d["message"].as_str().unwrap();
    for needle in ["tensor(int8)", "'X'", "tensor(float)"] {
        assert!(message.contains(needle), "{message}");
    }
}

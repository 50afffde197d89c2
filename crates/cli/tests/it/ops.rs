//! `netport ops`: the ONNX operator schema table on the command line.

use crate::common::netport;
use serde_json::{Value, json};

fn ops_json(args: &[&str]) -> Value {
    let mut all = vec!["ops", "--json"];
    all.extend_from_slice(args);
    let out = netport(&all);
    assert!(
        out.status.success(),
        "netport {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ops --json prints JSON")
}

#[test]
fn conv_at_opset_11_as_json() {
    let doc = ops_json(&["Conv", "--opset", "11"]);
    assert_eq!(doc["domain"], "");
    assert_eq!(doc["opset"], 11);
    let s = &doc["schema"];
    assert_eq!(
        (s["name"].as_str(), s["since_version"].as_i64()),
        (Some("Conv"), Some(11))
    );
    assert_eq!(s["deprecated"], false);
    assert_eq!(
        (s["min_input"].as_u64(), s["max_input"].as_u64()),
        (Some(2), Some(3))
    );
    let inputs: Vec<(&str, &str, &str)> = s["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["option"].as_str().unwrap(),
                p["type_str"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        inputs,
        [
            ("X", "single", "T"),
            ("W", "single", "T"),
            ("B", "optional", "T")
        ]
    );
    assert_eq!(
        s["type_constraints"],
        json!([{"name": "T", "allowed_types": ["tensor(float16)", "tensor(float)", "tensor(double)"]}])
    );
    let attrs = s["attributes"].as_array().unwrap();
    let names: Vec<&str> = attrs.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "pads",
            "strides"
        ]
    );
    assert_eq!(
        attrs[0],
        json!({"name": "auto_pad", "type": "STRING", "required": false, "default": "NOTSET"})
    );
    assert_eq!(
        attrs[2],
        json!({"name": "group", "type": "INT", "required": false, "default": 1})
    );
    assert_eq!(attrs[1]["default"], Value::Null);
    let history: Vec<i64> = doc["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["since_version"].as_i64().unwrap())
        .collect();
    assert_eq!(history, [1, 11, 22]);
    assert_eq!(doc["history"][0]["changes"], json!(["introduced"]));
    assert_eq!(
        doc["history"][2]["changes"],
        json!(["T allows tensor(bfloat16)"])
    );
}

#[test]
fn conv_text_names_inputs_attributes_and_history() {
    let out = netport(["ops", "Conv", "--opset", "11"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("Conv (ai.onnx) at opset 11: version 11\n"),
        "{text}"
    );
    assert!(text.contains("  B  optional  T\n"), "{text}");
    assert!(
        text.contains("T: tensor(float16), tensor(float), tensor(double)"),
        "{text}"
    );
    assert!(
        text.contains("group         INT            optional, default 1"),
        "{text}"
    );
    assert!(text.contains("opset 11 *:"), "{text}");
}

#[test]
fn unknown_ops_exit_2_and_say_where_they_are() {
    let out = netport(["ops", "Gelu", "--opset", "19"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("introduced in opset 20"), "{err}");

    let out = netport(["ops", "NoSuchOp", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown operator NoSuchOp in domain ai.onnx"),
        "{err}"
    );

    let out = netport(["ops", "LinearRegressor"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--domain ai.onnx.ml"), "{err}");
    let doc = ops_json(&["LinearRegressor", "--domain", "ai.onnx.ml"]);
    assert_eq!(doc["schema"]["domain"], "ai.onnx.ml");

    let out = netport(["ops", "--domain", "no.such.domain"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_list_follows_the_opset() {
    let names = |doc: &Value| -> Vec<String> {
        doc["operators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_string())
            .collect()
    };
    let at19 = ops_json(&["--opset", "19"]);
    let at20 = ops_json(&["--opset", "20"]);
    assert!(!names(&at19).iter().any(|n| n == "Gelu"));
    assert!(names(&at20).iter().any(|n| n == "Gelu"));
    assert!(names(&at20).iter().any(|n| n == "Conv"));
    let resize = at20["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Resize")
        .unwrap();
    assert_eq!(resize["since_version"], 19);
    // "ai.onnx" is the default domain, spelled "" in models.
    assert_eq!(ops_json(&["--opset", "20", "--domain", "ai.onnx"]), at20);
}

//! Interop: our shape inference against `onnx.shape_inference.infer_shapes(
//! model, check_type=True, strict_mode=True, data_prop=True)` (the inference
//! of `check_model(full_check=True)`, type constraints included) on every
//! node-test model whose ops all have our rules.

use netport_onnx::shapes::{Dim, infer_shapes};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

const SCRIPT: &str = r#"
import json, sys, onnx
from onnx import shape_inference
out = {}
for path in json.load(sys.stdin):
    try:
        m = shape_inference.infer_shapes(
            onnx.load(path), check_type=True, strict_mode=True, data_prop=True)
    except Exception as e:
        out[path] = {"error": str(e)[:200]}
        continue
    vals = {}
    for vi in list(m.graph.value_info) + list(m.graph.output):
        t = vi.type
        if t.WhichOneof("value") != "tensor_type":
            continue
        tt = t.tensor_type
        dims = None
        if tt.HasField("shape"):
            dims = []
            for d in tt.shape.dim:
                w = d.WhichOneof("value")
                dims.append(d.dim_value if w == "dim_value" else (d.dim_param or None) if w == "dim_param" else None)
        vals[vi.name] = {"elem_type": tt.elem_type, "dims": dims}
    out[path] = {"values": vals}
print(json.dumps(out))
"#;

fn dim_json(d: &Dim) -> Value {
    match d {
        Dim::Fixed(n) => Value::from(*n),
        Dim::Param(p) => Value::from(p.clone()),
        Dim::Unknown => Value::Null,
    }
}

/// onnx names the dims it cannot infer `unk__N`; they are unknown dims.
fn unknown_generated(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(dims) = v["dims"].as_array_mut() {
        for d in dims {
            if d.as_str().is_some_and(|s| s.starts_with("unk__")) {
                *d = Value::Null;
            }
        }
    }
    v
}

/// Runs onnx's inference over every model of `covered` in one Python child
/// and compares: (models agreeing, of them rejected by both, disagreements).
pub(crate) fn compare_with_onnx(
    covered: &[(String, netport_onnx::shapes::Inferred)],
) -> (usize, usize, Vec<String>) {
    let names: Vec<&str> = covered.iter().map(|(p, _)| p.as_str()).collect();
    let mut child = Command::new(crate::common::peer_python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&names).unwrap().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let theirs: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut failures = Vec::new();
    let mut agreed = 0;
    let mut rejected = 0;
    for (path, ours) in covered {
        let case = &theirs[path.as_str()];
        let short = path.rsplit('/').nth(1).unwrap_or(path);
        if let Some(e) = case.get("error") {
            // onnx rejects the model: we must report a clash too.
            if ours.diagnostics.is_empty() {
                failures.push(format!("{short}: onnx fails ({e}), we accept"));
            } else {
                agreed += 1;
                rejected += 1;
            }
            continue;
        }
        let mut ok = true;
        if let Some(d) = ours.diagnostics.first() {
            failures.push(format!("{short}: onnx accepts, we report {d}"));
            ok = false;
        }
        for (name, want) in case["values"].as_object().unwrap() {
            let got = ours.values.get(name).map(|t| {
                serde_json::json!({
                    "elem_type": t.elem_type,
                    "dims": t.shape.as_ref().map(|s| s.iter().map(dim_json).collect::<Vec<_>>()),
                })
            });
            if got.as_ref() != Some(&unknown_generated(want)) {
                failures.push(format!("{short}: {name}: onnx {want}, ours {got:?}"));
                ok = false;
            }
        }
        if ok {
            agreed += 1;
        }
    }
    (agreed, rejected, failures)
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn resnet18_from_both_exporters_matches_onnx_shape_inference() {
    let peers = crate::common::peer_dir();
    let mut covered = Vec::new();
    for exporter in ["torchscript", "dynamo"] {
        let path = peers.join("resnet18").join(exporter).join("resnet18.onnx");
        let inferred = infer_shapes(&netport_onnx::load_model(&path).unwrap());
        assert!(
            inferred.unsupported.is_empty(),
            "{exporter}: {:?}",
            inferred.unsupported
        );
        covered.push((path.display().to_string(), inferred));
    }
    let (agreed, _, failures) = compare_with_onnx(&covered);
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(agreed, 2);
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn node_test_shapes_match_onnx_shape_inference() {
    let dir = crate::common::peer_dir().join("onnx-node");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().join("model.onnx"))
        .filter(|p| p.is_file())
        .collect();
    cases.sort();
    let total = cases.len();
    assert!(total >= 1800, "only {total} node-test models");
    let mut covered = Vec::new();
    let mut partial_clashes = Vec::new();
    let mut missing: std::collections::BTreeMap<String, usize> = Default::default();
    for path in &cases {
        let model = netport_onnx::load_model(path).unwrap();
        let inferred = infer_shapes(&model);
        for op in &inferred.unsupported {
            *missing.entry(op.clone()).or_default() += 1;
        }
        if !inferred.unsupported.is_empty() {
            // partly covered: our rules still must not call a node test invalid
            if let Some(d) = inferred.diagnostics.first() {
                partial_clashes.push(format!("{}: {d}", path.display()));
            }
        } else {
            covered.push((path.display().to_string(), inferred));
        }
    }
    let (agreed, rejected, failures) = compare_with_onnx(&covered);
    eprintln!(
        "shape inference: {} of {total} node-test models fully covered by our rules, {agreed} agree with onnx ({rejected} of them rejected by onnx and by us)",
        covered.len()
    );
    let mut missing: Vec<_> = missing.into_iter().collect();
    missing.sort_by_key(|(op, n)| (std::cmp::Reverse(*n), op.clone()));
    let top: Vec<String> = missing
        .iter()
        .take(20)
        .map(|(op, n)| format!("{op} ({n})"))
        .collect();
    eprintln!("ops without a rule, by models: {}", top.join(", "));
    for f in &failures {
        eprintln!("{f}");
    }
    assert!(failures.is_empty(), "{} disagreements", failures.len());
    assert!(partial_clashes.is_empty(), "{partial_clashes:#?}");
    // the figure recorded in docs/formats/onnx.md: coverage must not drop
    assert!(
        covered.len() >= 1841,
        "only {} node-test models fully covered",
        covered.len()
    );
}

/// Writes one small model per old op version (the versions before the
/// legacy `consumed_inputs` and `broadcast` attributes went away, Slice and
/// Reshape with attributes, ...) into the folder argv[1].
const OLD_VERSIONS_SCRIPT: &str = r#"
import sys, onnx
from onnx import helper as h, TensorProto as T
F, B = T.FLOAT, T.BOOL
cases = [
    ("Relu", 1, [("x", F, ["n", 3])], 1, {}),
    ("Sigmoid", 1, [("x", F, ["n", 3])], 1, {"consumed_inputs": [0]}),
    ("LeakyRelu", 1, [("x", F, [2, 3])], 1, {}),
    ("PRelu", 1, [("x", F, [2, 3]), ("s", F, [3])], 1, {}),
    ("Add", 1, [("x", F, [2, 3]), ("y", F, [3])], 1, {"broadcast": 1}),
    ("Mul", 5, [("x", F, [2, 3]), ("y", F, [2, 3])], 1, {}),
    ("Pow", 1, [("x", F, [2, 3]), ("y", F, [3])], 1, {"broadcast": 1}),
    ("Equal", 1, [("x", T.INT32, ["n", 3]), ("y", T.INT32, [3])], 1, {"broadcast": 1}),
    ("And", 1, [("x", B, [2, 3]), ("y", B, [2, 3])], 1, {}),
    ("Sum", 1, [("x", F, [2, 3]), ("y", F, [2, 3])], 1, {}),
    ("Sum", 6, [("x", F, ["n", 3]), ("y", F, ["n", 3])], 1, {}),
    ("Max", 6, [("x", F, [2, 3]), ("y", F, [2, 3])], 1, {}),
    ("BatchNormalization", 1, [("x", F, ["n", 3, 4, 4])] + [(s, F, [3]) for s in "sbmv"], 1,
     {"consumed_inputs": [0, 0, 0, 1, 1], "is_test": 1}),
    ("Gemm", 1, [("a", F, [2, 3]), ("b", F, [3, 4]), ("c", F, [4])], 1, {"broadcast": 1}),
    ("Concat", 1, [("a", F, [2, 3]), ("b", F, [2, 4])], 1, {"axis": 1}),
    ("Concat", 4, [("a", F, [2, 3]), ("b", F, [2, 4])], 1, {"axis": 1}),
    ("Slice", 1, [("x", F, [5, "n", 6])], 1, {"starts": [1, 0], "ends": [3, -2], "axes": [0, 2]}),
    ("Slice", 1, [("x", F, [5, 6])], 1, {"starts": [1], "ends": [1000]}),
    ("Slice", 1, [("x", F, [5, 6])], 1, {"starts": [1], "ends": [3], "axes": [-1]}),
    ("Slice", 1, [("x", F, [5, 6])], 1, {"starts": [1, 1], "ends": [3, 3], "axes": [1, 0]}),
    ("Reshape", 1, [("x", F, ["n", 6])], 1, {"shape": [0, 2, 3]}),
    ("Cast", 1, [("x", F, [2, 3])], 1, {"to": "INT32"}),
    ("Dropout", 1, [("x", F, [2, 3])], 2, {"is_test": 1}),
    ("Clip", 1, [("x", F, [2, 3])], 1, {"min": 0.0, "max": 1.0}),
    ("Tile", 1, [("x", F, [2, 3]), ("t", F, [1]), ("a", F, [1])], 1, {}),
    ("Split", 1, [("x", F, [4, 6])], 2, {"axis": 0}),
    ("Split", 2, [("x", F, [4, 6])], 2, {"axis": 0}),
    ("Upsample", 1, [("x", F, [1, 1, 4, 4])], 1, {"height_scale": 2.0, "width_scale": 2.0}),
    ("InstanceNormalization", 1, [("x", F, [2, 3, 4]), ("s", F, [3]), ("b", F, [3])], 1, {}),
    ("Softmax", 1, [("x", F, ["n", 3])], 1, {}),
]
for k, (op, opset, ins, n_out, attrs) in enumerate(cases):
    inputs = [h.make_tensor_value_info(n, t, s) for n, t, s in ins]
    outs = [f"out{i}" for i in range(n_out)]
    node = h.make_node(op, [n for n, _, _ in ins], outs, name=op.lower(), **attrs)
    g = h.make_graph([node], "g", inputs, [h.make_value_info(o, onnx.TypeProto()) for o in outs])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 3
    onnx.save(m, f"{sys.argv[1]}/{k:02}_{op}_{opset}.onnx")
print(len(cases))
"#;

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn old_op_versions_match_onnx_shape_inference() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(crate::common::peer_python())
        .args(["-c", OLD_VERSIONS_SCRIPT])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mut paths: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    assert!(paths.len() >= 30, "{}", paths.len());
    let mut covered = Vec::new();
    for path in &paths {
        let inferred = infer_shapes(&netport_onnx::load_model(path).unwrap());
        assert!(
            inferred.unsupported.is_empty(),
            "{}: {:?}",
            path.display(),
            inferred.unsupported
        );
        covered.push((path.display().to_string(), inferred));
    }
    let (agreed, _, failures) = compare_with_onnx(&covered);
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(agreed, paths.len());
}

//! The ONNX node tests (from the peer corpus) converted to Caffe2 and run
//! in the real Caffe2 workspace against the tests' expected outputs. A test
//! counts for the op of its single node when that op is in the op table.
//! By default every 8th such test runs (CI's slice);
//! NETPORT_CAFFE2_NODE_TESTS=all runs them all, NETPORT_CAFFE2_NODE_OPS=If,Loop
//! only those of the ops listed, and
//! NETPORT_CAFFE2_NODE_REPORT=FILE writes the counts per op as a Markdown
//! table (`cargo xtask caffe2-node-tests` does both).

use crate::common::{need_env, root};
use netport_onnx_caffe2::to_caffe2::OP_TABLE;
use netport_onnx_caffe2::{ToCaffe2Options, onnx_to_caffe2};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

#[derive(Default)]
struct Counts {
    total: usize,
    converted: usize,
    equal: usize,
    notes: Vec<String>,
}

fn data_inputs(m: &netport_onnx::proto::ModelProto) -> Vec<String> {
    let g = m.graph.as_ref().unwrap();
    let inits: std::collections::HashSet<&str> = g.initializer.iter().map(|t| t.name()).collect();
    g.input
        .iter()
        .filter(|i| !inits.contains(i.name()))
        .map(|i| i.name().to_string())
        .collect()
}

#[test]
#[ignore = "interop: needs NETPORT_PEERS and NETPORT_CAFFE2_PYTHON"]
fn node_tests_run_in_caffe2_equal_to_their_expected_outputs() {
    let peers = need_env("NETPORT_PEERS");
    let python = need_env("NETPORT_CAFFE2_PYTHON");
    let all = std::env::var("NETPORT_CAFFE2_NODE_TESTS").is_ok_and(|v| v == "all");
    let only: Option<Vec<String>> = std::env::var("NETPORT_CAFFE2_NODE_OPS")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let node_dir = peers.join("onnx-node");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(node_dir.join("manifest.json")).unwrap())
            .unwrap();
    let tests = manifest["tests"].as_object().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut per_op: BTreeMap<String, Counts> = BTreeMap::new();
    let mut jobs = Vec::new();
    let mut job_op = BTreeMap::new();
    let mut index = 0usize;
    for (name, info) in tests {
        let dir = node_dir.join(name);
        let Ok(model) = netport_onnx::load_model(&dir.join("model.onnx")) else {
            continue;
        };
        let g = model.graph.as_ref().unwrap();
        if g.node.len() != 1 || !g.node[0].domain().is_empty() {
            continue;
        }
        let op = g.node[0].op_type().to_string();
        if !OP_TABLE.iter().any(|(o, _, _)| *o == op)
            || only.as_ref().is_some_and(|ops| !ops.contains(&op))
        {
            continue;
        }
        index += 1;
        if !all && !index.is_multiple_of(8) {
            continue;
        }
        let c = per_op.entry(op.clone()).or_default();
        c.total += 1;
        let options = ToCaffe2Options {
            resolver: Some(netport_onnx::ExternalDataResolver::for_model(
                &dir.join("model.onnx"),
            )),
            ..Default::default()
        };
        let pair = match onnx_to_caffe2(&model, &options) {
            Ok(p) => p,
            Err(e) => {
                c.notes.push(format!(
                    "{name}: not converted: {}",
                    e.to_string().lines().last().unwrap_or("").trim()
                ));
                continue;
            }
        };
        c.converted += 1;
        let out = tmp.path().join(name);
        pair.save_dir(&out).unwrap();
        let set = dir.join("test_data_set_0");
        let inputs = info["inputs"].as_array().unwrap();
        let feeds: Vec<(String, String)> = data_inputs(&model)
            .into_iter()
            .zip(inputs)
            .map(|(blob, f)| (blob, set.join(f.as_str().unwrap()).display().to_string()))
            .collect();
        let expected: Vec<String> = info["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| set.join(f.as_str().unwrap()).display().to_string())
            .collect();
        jobs.push(serde_json::json!({
            "test": name,
            "init_net": out.join("init_net.pb"),
            "predict_net": out.join("predict_net.pb"),
            "feeds": feeds,
            "expected": expected,
        }));
        job_op.insert(name.clone(), op);
    }
    let jobs_path = tmp.path().join("jobs.json");
    std::fs::write(&jobs_path, serde_json::to_vec(&jobs).unwrap()).unwrap();
    let out = Command::new(&python)
        .arg(root().join("testdata/peers/caffe2/run_node_tests.py"))
        .arg(&jobs_path)
        .env("CUDA_VISIBLE_DEVICES", "")
        .env("GLOG_minloglevel", "3")
        .output()
        .unwrap();
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "run_node_tests.py: {e}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut unequal = Vec::new();
    for (test, op) in &job_op {
        let r = &results[test];
        let c = per_op.get_mut(op).unwrap();
        if r["equal"] == true {
            c.equal += 1;
        } else {
            let e = format!("{test}: {}", r["error"].as_str().unwrap_or("no result"));
            c.notes.push(e.clone());
            unequal.push(e);
        }
    }
    let (mut total, mut converted, mut equal) = (0, 0, 0);
    let mut table =
        String::from("| op | tests | converted | equal in Caffe2 |\n|---|---|---|---|\n");
    for (op, c) in &per_op {
        table.push_str(&format!(
            "| {op} | {} | {} | {} |\n",
            c.total, c.converted, c.equal
        ));
        total += c.total;
        converted += c.converted;
        equal += c.equal;
    }
    table.push_str(&format!("| **all** | {total} | {converted} | {equal} |\n"));
    eprintln!("{table}");
    for c in per_op.values() {
        for n in &c.notes {
            eprintln!("  {n}");
        }
    }
    if let Ok(report) = std::env::var("NETPORT_CAFFE2_NODE_REPORT") {
        let mut notes = String::new();
        for (op, c) in &per_op {
            for n in &c.notes {
                notes.push_str(&format!("- {op}: {n}\n"));
            }
        }
        std::fs::write(
            Path::new(&report),
            format!("{table}\nTests not converted or not equal:\n\n{notes}"),
        )
        .unwrap();
    }
    // (The ops picked by NETPORT_CAFFE2_NODE_OPS may all be refused: If and
    // Loop are, each with its reason.)
    assert!(converted > 0 || only.is_some(), "no node test converted");
    assert!(
        unequal.is_empty(),
        "{} converted tests differ in Caffe2:\n{}",
        unequal.len(),
        unequal.join("\n")
    );
}

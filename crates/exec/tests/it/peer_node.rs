//! The ONNX node tests of the peer corpus (`onnx-node/<test>/model.onnx`
//! with `test_data_set_0/{input,output}_N.pb`, made by the onnx package):
//! every case either equals the expected outputs within the onnx backend
//! tests' default tolerance (rtol 1e-3, atol 1e-7; see `equal_above_noise`
//! for the reference's rounding noise at exact zeros) or is refused with an
//! error; a wrong number fails the test.
//!
//! `NETPORT_NODE_REPORT=FILE` writes the pass rate by op as markdown
//! (docs/node-tests.md is made that way); `NETPORT_NODE_FILTER=SUBSTR` runs
//! only matching cases.

use crate::common::{pb_tensor, peer_dir};
use netport_exec::{Tensor, compare, onnx};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Pass,
    /// The model or its data use a type we do not hold (strings, float8,
    /// sequences, ...): outside the denominator.
    DtypeUnsupported,
    RefusedAtLoad,
    RefusedAtRun,
    Wrong,
}

fn op_label(model: &netport_onnx::proto::ModelProto, test: &str) -> String {
    let nodes = model
        .graph
        .as_ref()
        .map(|g| g.node.as_slice())
        .unwrap_or(&[]);
    if nodes.len() == 1 {
        return nodes[0].op_type().to_string();
    }
    // Function-expanded and multi-node cases: the op whose name the test's
    // starts with.
    let name = test.trim_start_matches("test_").replace('_', "");
    let mut best: Option<&str> = None;
    for n in nodes {
        let op = n.op_type();
        if name.starts_with(&op.to_lowercase()) && best.is_none_or(|b| op.len() > b.len()) {
            best = Some(op);
        }
    }
    best.map(|b| format!("{b} (multi-node)"))
        .unwrap_or_else(|| "(multi-node)".into())
}

fn run_case(dir: &Path, test: &str) -> (String, Outcome, String) {
    let path = dir.join("model.onnx");
    let model = match netport_onnx::load_model(&path) {
        Ok(m) => m,
        Err(e) => {
            return (
                "(unreadable)".into(),
                Outcome::DtypeUnsupported,
                e.to_string(),
            );
        }
    };
    let label = op_label(&model, test);
    let data = dir.join("test_data_set_0");
    let mut inputs = Vec::new();
    let mut want = Vec::new();
    for (prefix, into) in [("input", &mut inputs), ("output", &mut want)] {
        for i in 0.. {
            let f = data.join(format!("{prefix}_{i}.pb"));
            if !f.exists() {
                break;
            }
            match pb_tensor(&f) {
                Ok(t) => into.push(t),
                Err(e) => return (label, Outcome::DtypeUnsupported, e),
            }
        }
    }
    let plan = match onnx::build(
        &model,
        Some(&netport_onnx::ExternalDataResolver::for_model(&path)),
    ) {
        Ok(p) => p,
        Err(e) => {
            let s = e.to_string();
            let dtype = s.contains("data type")
                || s.contains("is not a supported dtype")
                || s.contains("sequence, map");
            return (
                label,
                if dtype {
                    Outcome::DtypeUnsupported
                } else {
                    Outcome::RefusedAtLoad
                },
                s,
            );
        }
    };
    // Inputs by position: the node tests name them after the graph inputs,
    // but the positional order is the contract.
    let names: Vec<String> = plan.inputs().map(|s| s.name.clone()).collect();
    if names.len() != inputs.len() {
        return (
            label,
            Outcome::RefusedAtRun,
            format!("{} inputs declared, {} given", names.len(), inputs.len()),
        );
    }
    let given: Vec<(String, Tensor)> = names
        .into_iter()
        .zip(inputs.into_iter().map(|(_, t)| t))
        .collect();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| plan.run(&given)));
    let outs = match result {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return (label, Outcome::RefusedAtRun, e.to_string()),
        Err(_) => return (label, Outcome::Wrong, "the executor panicked".into()),
    };
    if outs.len() != want.len() {
        return (
            label,
            Outcome::Wrong,
            format!("{} outputs, {} expected", outs.len(), want.len()),
        );
    }
    for (i, ((name, got), (_, exp))) in outs.iter().zip(&want).enumerate() {
        if got.dtype() != exp.dtype() {
            return (
                label,
                Outcome::Wrong,
                format!(
                    "output {i} {name:?}: dtype {} vs {}",
                    got.dtype(),
                    exp.dtype()
                ),
            );
        }
        // 16-bit float outputs: a one-ulp difference from rounding each
        // intermediate (multi-node cases) is allowed: rtol is at least two
        // machine epsilons of the dtype.
        let rtol = match exp.dtype() {
            netport_tensor::DType::Float16 => 2.0 * 2f64.powi(-10),
            netport_tensor::DType::BFloat16 => 2.0 * 2f64.powi(-7),
            _ => 1e-3,
        };
        let c = compare(got, exp, rtol, 1e-7);
        if !c.equal && !equal_above_noise(got, exp, rtol, 1e-7) {
            return (label, Outcome::Wrong, format!("output {i} {name:?}: {c:?}"));
        }
    }
    (label, Outcome::Pass, String::new())
}

/// The onnx reference computes some ops in the output's own precision
/// (numpy's float32 FFT): where the exact value is 0 it records rounding
/// noise (1.9e-7 for a zero bin of a float32 spectrum of magnitude 60),
/// which atol 1e-7 cannot absorb. Such elements compare equal when both
/// values are below the dtype's noise floor for that tensor, four machine
/// epsilons of its largest expected magnitude; every other element keeps
/// the plain tolerance.
fn equal_above_noise(got: &Tensor, exp: &Tensor, rtol: f64, atol: f64) -> bool {
    let eps = match exp.dtype() {
        netport_tensor::DType::Float32 => f32::EPSILON as f64,
        netport_tensor::DType::Float64 => f64::EPSILON,
        _ => return false,
    };
    if got.shape != exp.shape {
        return false;
    }
    let (g, e) = (got.data.to_f64_vec(), exp.data.to_f64_vec());
    let floor = 4.0 * eps * e.iter().fold(0f64, |m, v| m.max(v.abs()));
    g.iter().zip(&e).all(|(&a, &b)| {
        (a - b).abs() <= atol + rtol * b.abs() || (a.abs() <= floor && b.abs() <= floor)
    })
}

fn onnx_version(root: &Path) -> String {
    std::fs::read_to_string(root.join("manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["onnx_version"].as_str().map(String::from))
        .unwrap_or_else(|| "?".into())
}

#[test]
#[ignore = "needs the peer corpus (NETPORT_PEERS)"]
fn every_node_test_is_equal_or_refused() {
    let root = peer_dir().join("onnx-node");
    let filter = std::env::var("NETPORT_NODE_FILTER").unwrap_or_default();
    let mut tests: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("model.onnx").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&filter))
        .collect();
    tests.sort();
    assert!(!tests.is_empty(), "no node tests under {}", root.display());
    let mut by_op: BTreeMap<String, [usize; 5]> = BTreeMap::new();
    let mut wrong = Vec::new();
    let mut details = String::new();
    for t in &tests {
        let (label, outcome, why) = run_case(&root.join(t), t);
        by_op.entry(label.clone()).or_default()[outcome as usize] += 1;
        if outcome == Outcome::Wrong {
            wrong.push(format!("{t} ({label}): {why}"));
        }
        if outcome != Outcome::Pass {
            let why: String = why.chars().take(160).collect();
            let _ = writeln!(
                details,
                "| {t} | {outcome:?} | {} |",
                why.replace('|', "\\|").replace('\n', " ")
            );
        }
    }
    let total = by_op.values().fold([0usize; 5], |mut a, v| {
        for i in 0..5 {
            a[i] += v[i];
        }
        a
    });
    let supported = total[0] + total[2] + total[3] + total[4];
    if let Ok(report) = std::env::var("NETPORT_NODE_REPORT") {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# ONNX node tests on netport-exec\n\n\
             Made by `NETPORT_NODE_REPORT=$PWD/docs/node-tests.md cargo test -p netport-exec -- --ignored node` (an absolute path: tests run in crates/exec) \
             (`crates/exec/tests/it/peer_node.rs`) over the node tests of the peer corpus (onnx {}). \
             A case passes when every output equals the expected one within the onnx backend tests' \
             default tolerance (rtol 1e-3, atol 1e-7; for float16/bfloat16 outputs rtol is two machine \
             epsilons of the dtype, for one-ulp rounding differences of chained 16-bit ops; a float32/float64 \
             element whose expected and computed values are both below four machine epsilons of the \
             output's largest magnitude counts as equal: the reference's rounding noise where the exact value is 0, \
             as in its float32 FFT). \
             \"Refused\" cases end in an error naming the node, op and opset; \"wrong\" ones (a number \
             outside the tolerance, or a panic) fail the test, so that column is always 0. Cases whose \
             model or data hold a type the executor does not (strings, float8, int4, complex, \
             sequences, optionals) are counted apart.\n\n\
             {} cases: {} pass, {} refused at load, {} refused at run, {} wrong; {} with an unsupported \
             dtype. Pass rate over the cases with supported dtypes: {:.1}%.\n",
            onnx_version(&root),
            tests.len(),
            total[0],
            total[2],
            total[3],
            total[4],
            total[1],
            100.0 * total[0] as f64 / supported.max(1) as f64
        );
        let _ = writeln!(
            md,
            "| op | pass | refused at load | refused at run | wrong | dtype not supported |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|");
        for (op, c) in &by_op {
            let _ = writeln!(
                md,
                "| {op} | {} | {} | {} | {} | {} |",
                c[0], c[2], c[3], c[4], c[1]
            );
        }
        let _ = writeln!(
            md,
            "| **all** ({} cases) | {} | {} | {} | {} | {} |",
            tests.len(),
            total[0],
            total[2],
            total[3],
            total[4],
            total[1]
        );
        let _ = writeln!(
            md,
            "\nCases not passed, with the reason:\n\n| case | outcome | reason |\n|---|---|---|\n{details}"
        );
        std::fs::write(&report, md).unwrap();
    }
    eprintln!(
        "{} cases: {} pass, {} refused at load, {} refused at run, {} wrong, {} dtype not supported ({:.1}% of supported)",
        tests.len(),
        total[0],
        total[2],
        total[3],
        total[4],
        total[1],
        100.0 * total[0] as f64 / supported.max(1) as f64
    );
    assert!(
        wrong.is_empty(),
        "{} wrong cases:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

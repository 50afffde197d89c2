//! The Caffe2 front end against the real Caffe2 (Python 3.7 + torch 1.4.0,
//! env NETPORT_CAFFE2_PYTHON): `tests/make_caffe2_cases.py` makes nets and
//! runs them in a Caffe2 workspace (once per version of the script, into
//! the cache folder); every output of ours equals Caffe2's.

use crate::common::npy;
use netport_exec::{Tensor, compare};
use std::path::{Path, PathBuf};

/// The case folder, made by the script when missing.
pub fn cases_dir() -> PathBuf {
    crate::cases::caffe2_cases()
}

fn run_case(dir: &Path, rtol: f64, atol: f64) -> Vec<String> {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
    let (plan, kind) =
        netport_exec::load_model(dir, None).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    assert_eq!(kind, netport_exec::ModelKind::Caffe2);
    let inputs: Vec<(String, Tensor)> = meta["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n.as_str().unwrap().to_string(),
                npy(&dir.join(format!("input_{i}.npy"))),
            )
        })
        .collect();
    let outs = plan
        .run(&inputs)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let names = meta["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), names.len());
    let mut bad = Vec::new();
    for (i, (name, got)) in outs.iter().enumerate() {
        assert_eq!(name, names[i].as_str().unwrap());
        let want = npy(&dir.join(format!("output_{i}.npy")));
        let c = compare(got, &want, rtol, atol);
        if !c.equal || got.dtype() != want.dtype() {
            bad.push(format!(
                "{} {name}: {} vs {}: {c:?}",
                dir.display(),
                got.dtype(),
                want.dtype()
            ));
        }
    }
    bad
}

#[test]
#[ignore = "needs the real Caffe2 (NETPORT_CAFFE2_PYTHON)"]
fn every_caffe2_op_case_equals_caffe2() {
    let root = cases_dir();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("op_"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "{} op cases", cases.len());
    let bad: Vec<String> = cases.iter().flat_map(|c| run_case(c, 1e-4, 1e-5)).collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
#[ignore = "needs the real Caffe2 (NETPORT_CAFFE2_PYTHON)"]
fn converted_resnet18_equals_caffe2_and_torch() {
    let dir = cases_dir().join("resnet18_onnx");
    let bad = run_case(&dir, 1e-4, 1e-4);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // The ONNX file the pair was converted from gives the same numbers, and
    // both equal torch 1.4's output.
    let plan = netport_exec::onnx::load(&dir.join("model.onnx")).unwrap();
    let out = plan
        .run(&[("input".into(), npy(&dir.join("input_0.npy")))])
        .unwrap();
    let torch = npy(&dir.join("torch_output.npy"));
    let c = compare(&out[0].1, &torch, 1e-4, 1e-4);
    assert!(c.equal, "{c:?}");
}

#[test]
#[ignore = "needs the real Caffe2 (NETPORT_CAFFE2_PYTHON)"]
fn native_resnet50_equals_caffe2() {
    let bad = run_case(&cases_dir().join("resnet50_native"), 1e-3, 1e-4);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
#[ignore = "needs the real Caffe2 (NETPORT_CAFFE2_PYTHON)"]
fn native_shufflenet_equals_caffe2() {
    let bad = run_case(&cases_dir().join("shufflenet_native"), 1e-3, 1e-4);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

//! `testdata/peers/caffe2/make_control_refs.py` run in the Caffe2 venv: the
//! If/Loop models with Caffe2Backend's nets and outputs. Shared by the
//! netport-onnx-caffe2 and cli test binaries (`#[path]`), so it uses
//! nothing of either.

use std::path::Path;
use std::process::Command;

/// Makes the control-flow references into `out` with `python`; returns
/// their manifest (case -> data inputs and outputs).
pub fn make_control_refs(python: &Path, out: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/peers/caffe2/make_control_refs.py");
    let status = Command::new(python)
        .arg(&script)
        .arg("--out")
        .arg(out)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("CUDA_VISIBLE_DEVICES", "")
        .env("GLOG_minloglevel", "3")
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(status.success(), "{}: {status}", script.display());
    serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap()
}

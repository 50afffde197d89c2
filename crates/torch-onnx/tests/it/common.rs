//! Shared helpers: fixtures, the peer Python, and running the exporter and
//! the checker the way `netport export` and `netport check --shapes` do.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use netport_onnx::check::{CheckOptions, check_model};
use netport_onnx::shapes::infer_shapes;
use netport_torch_onnx::{ExportOptions, ExportReport, export};

pub fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

/// The peer venv's python (env `NETPORT_PYTHON`).
pub fn python() -> PathBuf {
    PathBuf::from(std::env::var_os("NETPORT_PYTHON").expect(
        "NETPORT_PYTHON is not set: the interop tests need the peer venv (torch, torchvision, onnx, onnxruntime)",
    ))
}

/// Held by the tests whose files take gigabytes (vgg, convnext, the big
/// EfficientNets and ResNets, vit_h_14), so that no two of them hold their
/// files on disk at once; the small ones run beside them. A test that
/// failed while holding it leaves it poisoned, which the others ignore.
pub fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs testdata/peers/torchvision_export.py with `args` under `python`;
/// its stdout lines parsed as JSON.
pub fn peer(python: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let script = testdata("peers/torchvision_export.py");
    let out = Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Exports `ckpt` to `out` and checks the result as `netport check --shapes`
/// does: no checker error, no inference clash.
pub fn export_checked(ckpt: &Path, out: &Path, options: &ExportOptions) -> ExportReport {
    let report = export(ckpt, out, options)
        .unwrap_or_else(|e| panic!("export {} ({options:?}): {e}", ckpt.display()));
    let model = netport_onnx::load_model(out).expect("load the exported model");
    let mut diags = check_model(&model, &CheckOptions::for_model(out));
    diags.extend(infer_shapes(&model).diagnostics);
    let errors: Vec<String> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect();
    assert!(errors.is_empty(), "{}: {errors:#?}", out.display());
    report
}

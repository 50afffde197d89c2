//! Interop: torchvision models (mobilenet_v2, squeezenet1_0, densenet121, a
//! small VisionTransformer) exported by both torch exporters: `netport check
//! --shapes` gives `onnx.checker.check_model(path, full_check=True)`'s
//! verdict on each, and where our rules cover every op, the inferred types
//! and shapes equal onnx's.
//!
//! The exports are made by `testdata/onnx/make_torchvision_exports.py` in
//! the peer venv into `onnx-torchvision-<hash>` next to the peer corpus (the
//! cache folder, never the repo), where the hash covers the script and the
//! interpreter; they are reused while both are unchanged.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCRIPT: &str = "../../testdata/onnx/make_torchvision_exports.py";

/// FNV-1a, 64 bits: a stable name for the exports folder.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(&[0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The exports folder, made first when it is missing.
fn exports() -> PathBuf {
    let python = crate::common::peer_python();
    let script = std::fs::read(SCRIPT).unwrap();
    let key = fnv1a(&[&script, python.as_os_str().as_encoded_bytes()]);
    let peers = crate::common::peer_dir();
    let cache = peers.parent().expect("the peer corpus is inside the cache");
    let dir = cache.join(format!("onnx-torchvision-{key:016x}"));
    if !dir.join("manifest.json").is_file() {
        let partial = cache.join(format!(
            "onnx-torchvision-{key:016x}.partial-{}",
            std::process::id()
        ));
        let status = Command::new(&python)
            .arg(SCRIPT)
            .arg(&partial)
            .status()
            .unwrap();
        assert!(status.success(), "{SCRIPT} failed");
        if std::fs::rename(&partial, &dir).is_err() {
            // another run finished first
            assert!(dir.join("manifest.json").is_file());
            std::fs::remove_dir_all(&partial).unwrap();
        }
    }
    dir
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn torchvision_exports_get_onnx_full_check_verdict() {
    let dir = exports();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let files = manifest["files"].as_array().unwrap();
    assert!(files.len() >= 8, "{} exports", files.len());
    let mut wrong = Vec::new();
    let mut covered = Vec::new();
    for f in files {
        let path = dir.join(f["file"].as_str().unwrap());
        let onnx_valid = f["onnx_full_valid"].as_bool().unwrap();
        let errors = crate::peer_check::errors(&path);
        if errors.is_empty() != onnx_valid {
            wrong.push(format!(
                "{}: onnx full_check {} ({}), ours {errors:?}",
                path.display(),
                onnx_valid,
                f["onnx_full_message"]
            ));
        }
        let model = netport_onnx::load_model(Path::new(&path)).unwrap();
        let inferred = netport_onnx::shapes::infer_shapes(&model);
        eprintln!(
            "{}: {} errors, ops without a rule: {:?}",
            f["file"],
            errors.len(),
            inferred.unsupported
        );
        if inferred.unsupported.is_empty() {
            covered.push((path.display().to_string(), inferred));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    let (agreed, _, failures) = crate::peer_shapes::compare_with_onnx(&covered);
    assert!(failures.is_empty(), "{failures:#?}");
    eprintln!(
        "{agreed} of {} exports fully inferred, all equal to onnx",
        files.len()
    );
    assert_eq!(agreed, covered.len());
}

//! Interop: `netport scan` flags every hostile fixture whose payload real
//! loaders run. Each file of testdata/torch/malicious is loaded by the real
//! `torch.load(f, weights_only=False)` (and, for .npy/.npz, by
//! `numpy.load(f, allow_pickle=True)`) in a child process of the peer venv;
//! the payloads only echo a marker, so "it ran" is "the marker was printed".
//! Whatever ran must be `dangerous` for scan (exit 1), and what ran must be
//! what the fixture script recorded in expected.json.

use crate::common::*;
use std::path::Path;
use std::process::Command;

const MARKER: &str = "NETPORT_PAYLOAD_RAN";

const LOAD: &str = r#"
import sys, warnings
warnings.simplefilter("ignore")
loader, path = sys.argv[1], sys.argv[2]
try:
    if loader == "torch":
        import torch
        torch.load(path, weights_only=False)
    else:
        import numpy as np
        loaded = np.load(path, allow_pickle=True)
        for name in getattr(loaded, "files", []):
            loaded[name]
except BaseException:
    pass
"#;

/// Loads `path` with the real loader in a child process (working directory:
/// a fresh temporary folder) and says whether the payload ran.
fn payload_runs(python: &Path, loader: &str, path: &Path) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(python)
        .args(["-c", LOAD, loader])
        .arg(path)
        .current_dir(dir.path())
        .output()
        .expect("run the peer python");
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    text.contains(MARKER)
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn scan_flags_every_file_whose_payload_real_loaders_run() {
    let python = std::path::PathBuf::from(
        std::env::var_os("NETPORT_PYTHON").expect("NETPORT_PYTHON is not set"),
    );
    let dir = testdata("torch/malicious");
    let expected = read_json(&dir.join("expected.json"));
    let mut ran = 0;
    for (file, e) in expected.as_object().unwrap() {
        let path = dir.join(file);
        let mut loaders = vec![("torch", "torch_load_unsafe")];
        if file.ends_with(".npy") || file.ends_with(".npz") {
            loaders.push(("numpy", "numpy_load_allow_pickle"));
        }
        for (loader, key) in loaders {
            let runs = payload_runs(&python, loader, &path);
            assert_eq!(
                Some(runs),
                e[key]["payload_ran"].as_bool(),
                "{file}: {loader} payload_ran differs from expected.json"
            );
            if !runs {
                continue;
            }
            ran += 1;
            let out = netport(["scan".as_ref(), "--json".as_ref(), path.as_os_str()]);
            let json: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|_| panic!("{file}: {}", String::from_utf8_lossy(&out.stderr)));
            assert_eq!(
                json["files"][0]["verdict"], "dangerous",
                "{file}: {loader} runs its payload, scan says {json}"
            );
            assert_eq!(out.status.code(), Some(1), "{file}: exit code");
        }
    }
    // Protocol 0 and 1, a legacy stack, numpy object arrays, and the rest.
    assert!(ran >= 20, "only {ran} payloads ran");
}

//! The generated cases of netport-exec's interop tests, in the cache
//! folder: one place that names, makes and finds them, shared by
//! netport-exec's test binary and netport-cli's (`#[path]`), so that
//! whichever runs first makes them. Each folder is named after an FNV-1a
//! hash of the scripts that make it (a new script makes new cases), is
//! written under a `.tmp` name and renamed when complete, and is made once
//! per test process (a lock).

use std::path::{Path, PathBuf};

/// crates/exec/tests, from either crate.
fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../exec/tests")
}

/// `<cache>/PREFIX-<hash of scripts>`, where `<cache>` is the folder the
/// xtask uses for venvs and peers (`xtask/src/util.rs`, `cache_root`):
/// `$NETPORT_CACHE`, else `$XDG_CACHE_HOME/netport` (an absolute one), else
/// `~/.cache/netport`.
fn cache_dir(prefix: &str, scripts: &[PathBuf]) -> PathBuf {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for p in scripts {
        for b in std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())) {
            hash = (hash ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let root = var("NETPORT_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .filter(|d| d.is_absolute())
                .map(|d| d.join("netport"))
        })
        .unwrap_or_else(|| {
            PathBuf::from(var("HOME").expect("NETPORT_CACHE or HOME")).join(".cache/netport")
        });
    root.join(format!("{prefix}-{hash:016x}"))
}

/// Runs `python script tmp args...`, then renames `tmp` to `dir`.
fn make(
    python_env: &str,
    why: &str,
    script: &Path,
    dir: &Path,
    args: &[&str],
    stamp: Option<&str>,
) {
    let python = std::env::var_os(python_env)
        .unwrap_or_else(|| panic!("{python_env} is not set: {why} makes these cases"));
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let status = std::process::Command::new(python)
        .arg(script)
        .arg(&tmp)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "{} {args:?} failed", script.display());
    if let Some(stamp) = stamp {
        std::fs::write(tmp.join(stamp), b"ok").unwrap();
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::rename(&tmp, dir).unwrap();
}

/// One case set at a time: each holds a torch model or a Caffe2 workspace.
static ONCE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The Caffe2 cases (`make_caffe2_cases.py`, run by the Caffe2 venv of env
/// `NETPORT_CAFFE2_PYTHON`), made when missing.
pub fn caffe2_cases() -> PathBuf {
    let _guard = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    let script = tests_dir().join("make_caffe2_cases.py");
    let dir = cache_dir("exec-caffe2", std::slice::from_ref(&script));
    if !dir.join("cases.stamp").exists() {
        make(
            "NETPORT_CAFFE2_PYTHON",
            "the Caffe2 venv (Python 3.7 + torch 1.4.0)",
            &script,
            &dir,
            &[],
            Some("cases.stamp"),
        );
    }
    dir
}

/// The folder of one torchvision family's exports (`make_model_cases.py`,
/// run by the peer venv of env `NETPORT_PYTHON`), made when missing.
pub fn model_case(family: &str) -> PathBuf {
    let _guard = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    let script = tests_dir().join("make_model_cases.py");
    let helper = tests_dir().join("../../../testdata/peers/torchvision_export.py");
    let dir = cache_dir("exec-models", &[script.clone(), helper]).join(family);
    if !dir.join("case.json").exists() {
        make(
            "NETPORT_PYTHON",
            "the peer venv (torch, torchvision, onnxruntime)",
            &script,
            &dir,
            &[family],
            None,
        );
    }
    dir
}

//! Shared helpers for the CLI tests: running the `netport` binary and finding
//! the committed fixtures and the peer corpus.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

pub fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

pub fn netport<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    std::process::Command::new(env!("CARGO_BIN_EXE_netport"))
        .args(args)
        .output()
        .expect("run netport")
}

/// `netport inspect --json PATHS`, which must succeed.
pub fn inspect_json(paths: &[&Path]) -> Value {
    let mut args = vec![std::ffi::OsString::from("inspect"), "--json".into()];
    args.extend(paths.iter().map(|p| p.as_os_str().to_owned()));
    let out = netport(args);
    assert!(
        out.status.success(),
        "netport inspect {:?} failed: {}",
        paths,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON")
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The peer corpus made by `cargo xtask peers` (env `NETPORT_PEERS`).
pub fn peer_dir() -> PathBuf {
    PathBuf::from(
        std::env::var_os("NETPORT_PEERS")
            .expect("NETPORT_PEERS is not set: interop tests run through `cargo xtask ci`"),
    )
}

/// Compares our inspect JSON of an ONNX model with what the onnx library
/// read from it (the format of testdata/peers/onnx_summary.py).
pub fn assert_onnx_agrees(ours: &Value, theirs: &Value, what: &str) {
    assert_eq!(
        ours["ir_version"], theirs["ir_version"],
        "{what}: ir_version"
    );
    assert_eq!(
        ours["opset_import"], theirs["opset_import"],
        "{what}: opset_import"
    );
    for side in ["inputs", "outputs"] {
        let a = ours[side].as_array().unwrap();
        let b = theirs[side].as_array().unwrap();
        assert_eq!(a.len(), b.len(), "{what}: number of {side}");
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x["name"], y["name"], "{what}: {side} name");
            let kind = x["kind"].as_str().unwrap();
            let their_kind = y["kind"].as_str().map(|k| k.trim_end_matches("_type"));
            assert_eq!(
                Some(kind).filter(|k| *k != "none"),
                their_kind,
                "{what}: {side} {} kind",
                x["name"]
            );
            if kind == "tensor" || kind == "sparse_tensor" {
                // proto2 reads an absent elem_type as 0.
                let ours_elem = x["elem_type"].as_i64().unwrap_or(0);
                assert_eq!(
                    Some(ours_elem),
                    y["elem_type"].as_i64(),
                    "{what}: {side} {} elem_type",
                    x["name"]
                );
                assert_eq!(x["shape"], y["shape"], "{what}: {side} {} shape", x["name"]);
            }
        }
    }
    assert_eq!(
        ours["initializers"]["count"], theirs["initializer_count"],
        "{what}: initializer count"
    );
    assert_eq!(
        ours["node_count"], theirs["node_count"],
        "{what}: node count"
    );
}

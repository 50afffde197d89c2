//! Shared helpers: where the peers live, reading `.npy` and `.pb` tensors.
#![allow(dead_code)]

use netport_exec::Tensor;
use prost::Message;
use std::path::{Path, PathBuf};

/// The peer corpus made by `cargo xtask peers` (env `NETPORT_PEERS`).
pub fn peer_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("NETPORT_PEERS").expect(
        "NETPORT_PEERS is not set: interop tests run through `cargo xtask ci` (or set it to the output of `cargo xtask peers --print-dir`)",
    ))
}

/// Reads a `.npy` file.
pub fn npy(path: &Path) -> Tensor {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Tensor::from_npy(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Reads a serialized ONNX `TensorProto` (the node tests' `input_N.pb`):
/// its name and value, or the reason it cannot be a tensor of ours.
pub fn pb_tensor(path: &Path) -> Result<(String, Tensor), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let t = netport_onnx::proto::TensorProto::decode(bytes.as_slice())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let v = netport_exec::onnx::tensor_from_proto(&t, None)?;
    Ok((t.name().to_string(), v))
}

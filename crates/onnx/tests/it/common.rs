//! Shared helpers for the interop tests: where the Python peers live.
#![allow(dead_code)]

use std::path::PathBuf;

/// The peer corpus made by `cargo xtask peers` (env `NETPORT_PEERS`).
pub fn peer_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("NETPORT_PEERS").expect(
        "NETPORT_PEERS is not set: interop tests run through `cargo xtask ci` (or set it to the output of `cargo xtask peers --print-dir`)",
    ))
}

/// The Python interpreter of the peer virtualenv (env `NETPORT_PYTHON`).
pub fn peer_python() -> PathBuf {
    PathBuf::from(
        std::env::var_os("NETPORT_PYTHON")
            .expect("NETPORT_PYTHON is not set: interop tests run through `cargo xtask ci`"),
    )
}

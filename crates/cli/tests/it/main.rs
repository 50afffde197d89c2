//! The integration tests of cli, one test binary: a module per area.

mod check;
mod common;
/// netport-onnx-caffe2's If/Loop references (one module for both crates).
#[path = "../../../onnx-caffe2/tests/it/control_refs.rs"]
mod control_refs;
mod convert_caffe2;
/// netport-exec's generated interop cases (one module for both crates).
#[path = "../../../exec/tests/it/cases.rs"]
mod exec_cases;
mod export;
mod graph;
mod inspect_caffe2;
mod inspect_onnx;
mod inspect_torch;
mod memory;
mod ops;
mod peer_inspect;
mod peer_map_location;
mod peer_scan;
mod rewrite;
mod run_verify;
mod scan;
mod seed_flow;

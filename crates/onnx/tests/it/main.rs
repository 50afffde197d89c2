//! The integration tests of onnx, one test binary: a module per area.

mod build;
mod check;
mod common;
mod io;
mod op_schema;
mod peer_check;
mod peer_op_schema;
mod peer_roundtrip;
mod peer_schema;
mod peer_shapes;
mod peer_torchvision;
mod shapes;

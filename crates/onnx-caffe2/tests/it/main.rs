//! The integration tests of netport-onnx-caffe2: one binary, a module per area.

mod common;
mod control;
mod control_refs;
mod hostile;
mod interop;
mod node_tests;
mod rnn;
mod to_caffe2;
mod to_onnx;

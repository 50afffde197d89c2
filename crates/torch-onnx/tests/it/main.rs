//! netport-torch-onnx's integration tests: recognition and refusals on the
//! committed fixtures, and (ignored, needing the peer venvs) the interop
//! suite against torch and onnxruntime.

mod common;
mod interop;
mod refuse;

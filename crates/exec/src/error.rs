//! The crate's error type, [`ExecError`]: every message names the node, its
//! op and opset (or the input, or the file) and the values that failed.

use thiserror::Error;

/// Everything that can go wrong while building or running a plan.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The model uses something the executor does not implement; raised when
    /// the plan is built, before anything runs.
    #[error("node {node:?} ({op}, {domain}opset {opset}): not supported: {reason}")]
    Unsupported {
        /// The node's name (or its first output when it has none).
        node: String,
        /// The op type.
        op: String,
        /// The domain followed by a space, empty for the default domain.
        domain: String,
        /// The opset version the model imports for the op's domain.
        opset: i64,
        /// What is missing.
        reason: String,
    },
    /// A Caffe2 operator the executor does not implement (or an argument
    /// value it has no code for); raised when the plan is built. Caffe2 nets
    /// carry no opset: the op type and its name (or first output) say which.
    #[error("Caffe2 operator {name:?} (type {op}): not supported: {reason}")]
    UnsupportedCaffe2 {
        /// The operator's name, or its first output when it has none.
        name: String,
        /// The operator type.
        op: String,
        /// What is missing.
        reason: String,
    },
    /// A node failed while running (shapes that do not fit, a dtype the
    /// kernel has no code for, an index out of range, ...).
    #[error("node {node:?} ({op}): {reason}")]
    Node {
        /// The node's name.
        node: String,
        /// The op type.
        op: String,
        /// What went wrong.
        reason: String,
    },
    /// The model itself is malformed (a value used before it is made, ...).
    #[error("invalid model: {0}")]
    Model(String),
    /// An input value is missing or does not match the model.
    #[error("input {name:?}: {reason}")]
    Input {
        /// The input's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading the ONNX model failed.
    #[error(transparent)]
    Onnx(#[from] netport_onnx::OnnxError),
    /// Reading the Caffe2 nets failed.
    #[error(transparent)]
    Caffe2(#[from] netport_caffe2::Caffe2Error),
    /// A tensor file could not be read.
    #[error(transparent)]
    Tensor(#[from] netport_tensor::TensorError),
}

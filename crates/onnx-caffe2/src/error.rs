//! The error type of `netport-onnx-caffe2`: nodes or ops with no counterpart
//! in the other format (listed all at once), and inputs that are broken or
//! hostile (a fill whose values disagree with its shape, names produced
//! twice, cycles), each with the values that failed.

use netport_caffe2::Caffe2Error;
use netport_onnx::OnnxError;

/// One node (or op) that has no counterpart in the target format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedNode {
    /// The node's name (may be empty).
    pub name: String,
    /// Its op type (`domain::Op` for a domain other than ai.onnx).
    pub op: String,
    /// The opset the model declares for the op's domain (0 for Caffe2 ops).
    pub opset: i64,
    /// Why it cannot be converted.
    pub reason: String,
}

impl std::fmt::Display for UnsupportedNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.name.is_empty() {
            "(no name)"
        } else {
            &self.name
        };
        if self.opset > 0 {
            write!(
                f,
                "{name}: {} (opset {}): {}",
                self.op, self.opset, self.reason
            )
        } else {
            write!(f, "{name}: {}: {}", self.op, self.reason)
        }
    }
}

fn list(nodes: &[UnsupportedNode]) -> String {
    nodes.iter().map(|n| format!("\n  {n}")).collect::<String>()
}

/// Everything that can stop a conversion.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// Nodes with no counterpart in the target format: all of them, in graph
    /// order. Nothing is written.
    #[error("{} node(s) cannot be converted to {target}:{}", .nodes.len(), list(.nodes))]
    Unsupported {
        /// The target format (`Caffe2` or `ONNX`).
        target: &'static str,
        /// Every such node.
        nodes: Vec<UnsupportedNode>,
    },
    /// The input is broken or hostile: what is wrong, with the values.
    #[error("{0}")]
    Invalid(String),
    /// Reading the ONNX model (external data, tensor contents) failed.
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// Reading or writing Caffe2 nets failed.
    #[error(transparent)]
    Caffe2(#[from] Caffe2Error),
}

impl ConvertError {
    /// True when the conversion stopped only because some nodes have no
    /// counterpart (the CLI's exit code 1); false for broken input (exit 2).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, ConvertError::Unsupported { .. })
    }
}

/// Shorthand for [`ConvertError::Invalid`].
pub(crate) fn invalid(message: impl Into<String>) -> ConvertError {
    ConvertError::Invalid(message.into())
}

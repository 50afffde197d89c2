//! The error of the graph builder: what was wrong with a call, naming the
//! op, the node and the values involved.

use crate::check::Rule;

/// A builder call that cannot make a valid graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A node breaks a schema rule of its op at the imported opset (unknown
    /// op, arity, unknown or mistyped attribute, missing required attribute).
    #[error("node '{node}' ({op}): {message} [{}]", rule.id())]
    Schema {
        /// The op type.
        op: String,
        /// The node's name.
        node: String,
        /// The checker rule that is broken.
        rule: Rule,
        /// What is wrong.
        message: String,
    },
    /// A node's domain has no opset import in the model.
    #[error("node '{node}' ({op}): domain '{domain}' is not imported by the model")]
    DomainNotImported {
        /// The op type.
        op: String,
        /// The node's name.
        node: String,
        /// The domain.
        domain: String,
    },
    /// A node reads a value that nothing defined before (in this graph or an
    /// enclosing one).
    #[error("node '{node}' ({op}): input '{value}' is not defined")]
    UndefinedInput {
        /// The op type.
        op: String,
        /// The node's name.
        node: String,
        /// The value name.
        value: String,
    },
    /// A graph output names a value nothing defined.
    #[error("graph output '{0}' is not defined")]
    UndefinedOutput(String),
    /// A value name is defined twice (SSA), here or in an enclosing graph.
    #[error("value '{0}' is already defined")]
    Redefined(String),
    /// A node name is used twice.
    #[error("node name '{0}' is already used")]
    DuplicateNodeName(String),
    /// An empty value name where one is needed.
    #[error("{0}: the name is empty")]
    EmptyName(String),
    /// An opset import the builder cannot choose an IR version for, or that
    /// is given twice.
    #[error("opset import {domain} {version}: {reason}")]
    Opset {
        /// The domain (`""` is ai.onnx).
        domain: String,
        /// The version.
        version: i64,
        /// What is wrong.
        reason: String,
    },
    /// A dtype ONNX cannot hold in a tensor.
    #[error("'{name}': dtype {dtype} has no ONNX equivalent")]
    DType {
        /// The value or tensor.
        name: String,
        /// The dtype, as netport names it.
        dtype: String,
    },
    /// A tensor view whose bytes cannot be read.
    #[error("tensor '{name}': {reason}")]
    Tensor {
        /// The tensor.
        name: String,
        /// What the tensor crate said.
        reason: String,
    },
}

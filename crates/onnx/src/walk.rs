//! Visiting the tensors that hold a model's data: initializers of the main
//! graph and of every subgraph, and optionally tensors in node attributes
//! (`Constant.value` and friends).

use crate::OnnxError;
use crate::proto::{GraphProto, TensorProto};

/// Calls `f` on every data tensor of `graph` (see [`for_each_tensor_mut`]).
pub fn for_each_tensor(
    graph: &GraphProto,
    attributes: bool,
    f: &mut dyn FnMut(&TensorProto) -> Result<(), OnnxError>,
) -> Result<(), OnnxError> {
    for t in &graph.initializer {
        f(t)?;
    }
    for node in &graph.node {
        for attr in &node.attribute {
            if attributes {
                if let Some(t) = attr.t.as_ref() {
                    f(t)?;
                }
                for t in &attr.tensors {
                    f(t)?;
                }
            }
            if let Some(g) = attr.g.as_ref() {
                for_each_tensor(g, attributes, f)?;
            }
            for g in &attr.graphs {
                for_each_tensor(g, attributes, f)?;
            }
        }
    }
    Ok(())
}

/// Calls `f` on every tensor of `graph` that holds model data: initializers,
/// recursively in subgraphs, and attribute tensors when `attributes` is set.
pub(crate) fn for_each_tensor_mut(
    graph: &mut GraphProto,
    attributes: bool,
    f: &mut dyn FnMut(&mut TensorProto) -> Result<(), OnnxError>,
) -> Result<(), OnnxError> {
    for t in &mut graph.initializer {
        f(t)?;
    }
    for node in &mut graph.node {
        for attr in &mut node.attribute {
            if attributes {
                if let Some(t) = attr.t.as_mut() {
                    f(t)?;
                }
                for t in &mut attr.tensors {
                    f(t)?;
                }
            }
            if let Some(g) = attr.g.as_mut() {
                for_each_tensor_mut(g, attributes, f)?;
            }
            for g in &mut attr.graphs {
                for_each_tensor_mut(g, attributes, f)?;
            }
        }
    }
    Ok(())
}

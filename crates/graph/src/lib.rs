//! Pictures of neural networks for netport: a format-neutral [`Picture`]
//! (op boxes with type, name, key attributes and initializer lines, graph
//! inputs and outputs, edges labelled with dtype and shape, nested clusters
//! for subgraph bodies), folding of name scopes ([`collapse`]), a
//! deterministic layered top-to-bottom [`layout`](layout()), and two writers:
//! [`to_svg`] (drawn by netport itself) and [`to_dot`] (for Graphviz).
//! The adapters from the formats live here, one module per format behind a
//! feature of the same name: [`onnx`] and [`caffe2`].
//!
//! ```no_run
//! let model = netport_onnx::load_model("model.onnx".as_ref())?;
//! let picture = netport_graph::onnx::picture(&model, &Default::default());
//! let svg = netport_graph::to_svg(&picture);
//! # Ok::<(), netport_onnx::OnnxError>(())
//! ```
//!
//! The same picture always gives the same bytes: nothing depends on hash
//! order, time or the machine.

#[cfg(any(feature = "onnx", feature = "caffe2"))]
mod build;
#[cfg(feature = "caffe2")]
pub mod caffe2;
mod dot;
mod error;
pub mod family;
pub mod layout;
#[cfg(feature = "onnx")]
pub mod onnx;
mod picture;
pub mod scope;
mod svg;
mod text;

pub use dot::to_dot;
pub use error::GraphError;
pub use family::Family;
pub use layout::{Layout, layout};
pub use picture::{Cluster, Edge, Node, NodeKind, Picture};
pub use scope::{Collapse, collapse};
pub use svg::to_svg;
pub use text::{shape_text, type_text};

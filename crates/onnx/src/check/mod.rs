//! The ONNX checker: the rules of `onnx.checker.check_model(model,
//! full_check=False)` (model, graph, node, tensor and model-local function
//! rules), applied to a decoded `ModelProto`. Unlike onnx, which stops at the
//! first problem, every problem is reported as a [`Diagnostic`] with a stable
//! [`Rule`] id, in a deterministic order (the order the model is walked in).
//! Things onnx accepts but that look wrong are [`Severity::Warning`]s: they
//! never make a model invalid.
//!
//! ```no_run
//! use netport_onnx::check::{CheckOptions, check_model};
//! let path = std::path::Path::new("model.onnx");
//! let model = netport_onnx::load_model(path)?;
//! let diagnostics = check_model(&model, &CheckOptions::for_model(path));
//! let valid = diagnostics.iter().all(|d| !d.is_error());
//! # Ok::<(), netport_onnx::OnnxError>(())
//! ```

mod function;
mod graph;
mod model;
mod node;
mod rule;
mod schema;
mod tensor;

pub use model::{LATEST_IR_VERSION, min_ir_version_for_opset};
pub use rule::Rule;

use crate::proto::{ModelProto, NodeProto};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How to check a model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// The model's directory, against which external-data locations are
    /// resolved; `None` when the model did not come from a file: then they
    /// are resolved against the working directory, as onnx does for a model
    /// checked in memory.
    pub model_dir: Option<PathBuf>,
}

impl CheckOptions {
    /// Options for the model file at `path`: external data is resolved
    /// against its directory.
    pub fn for_model(path: &Path) -> Self {
        let resolver = crate::ExternalDataResolver::for_model(path);
        CheckOptions {
            model_dir: Some(resolver.base_dir().to_path_buf()),
        }
    }
}

/// Whether a diagnostic makes the model invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// onnx.checker rejects the model for this.
    Error,
    /// onnx.checker accepts the model, but it looks wrong (or a consumer
    /// such as onnxruntime would refuse it).
    Warning,
}

impl Severity {
    /// `"error"` or `"warning"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem found in a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The rule that is broken.
    pub rule: Rule,
    /// Error (invalid) or warning.
    pub severity: Severity,
    /// Where: `graph` for the main graph, `graph/node[3]:then_branch` for a
    /// subgraph, `function local::F` for a model-local function, `model` for
    /// model-level rules.
    pub location: String,
    /// The index of the node in its graph or function body, for node rules.
    pub node_index: Option<usize>,
    /// The node's name (may be empty), for node rules.
    pub node_name: Option<String>,
    /// The node's op type, for node rules.
    pub op_type: Option<String>,
    /// What is wrong, naming the values involved.
    pub message: String,
}

impl Diagnostic {
    /// True when this makes the model invalid.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{}] {}",
            self.severity.as_str(),
            self.rule.id(),
            self.location
        )?;
        if let Some(i) = self.node_index {
            write!(f, " node {i}")?;
            if let Some(name) = self.node_name.as_deref().filter(|n| !n.is_empty()) {
                write!(f, " '{name}'")?;
            }
            if let Some(op) = &self.op_type {
                write!(f, " ({op})")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// Checks `model` with the rules of `onnx.checker.check_model(model,
/// full_check=False)` and returns every problem found (empty: valid, as far
/// as these rules go). Reads no tensor bytes: external data is checked by
/// resolving its location and comparing its range with the file's size.
pub fn check_model(model: &ModelProto, options: &CheckOptions) -> Vec<Diagnostic> {
    let mut cx = Checker::new(model, options);
    model::check(&mut cx, model);
    cx.out
}

/// Where a rule is being applied: a graph or function, maybe a node of it.
#[derive(Debug, Clone)]
pub(crate) struct At<'a> {
    location: &'a str,
    node: Option<(usize, &'a NodeProto)>,
}

impl<'a> At<'a> {
    pub(crate) fn graph(location: &'a str) -> Self {
        At {
            location,
            node: None,
        }
    }

    pub(crate) fn node(location: &'a str, index: usize, node: &'a NodeProto) -> Self {
        At {
            location,
            node: Some((index, node)),
        }
    }
}

/// The state of one check: options, the model's opset imports and IR
/// version, and the diagnostics found so far.
pub(crate) struct Checker {
    pub(crate) ir_version: i64,
    /// Imported opsets by domain as spelled; an `ai.onnx` import is also
    /// filed under "".
    pub(crate) opsets: HashMap<String, i64>,
    pub(crate) resolver: Option<crate::ExternalDataResolver>,
    pub(crate) out: Vec<Diagnostic>,
}

impl Checker {
    fn new(model: &ModelProto, options: &CheckOptions) -> Self {
        Checker {
            ir_version: model.ir_version(),
            opsets: HashMap::new(),
            resolver: options
                .model_dir
                .as_ref()
                .map(|d| crate::ExternalDataResolver::new(d.clone())),
            out: Vec::new(),
        }
    }

    pub(crate) fn report(&mut self, at: &At<'_>, rule: Rule, message: impl Into<String>) {
        let severity = rule.severity();
        self.out.push(Diagnostic {
            rule,
            severity,
            location: at.location.to_string(),
            node_index: at.node.map(|(i, _)| i),
            node_name: at.node.map(|(_, n)| n.name().to_string()),
            op_type: at.node.map(|(_, n)| n.op_type().to_string()),
            message: message.into(),
        });
    }
}

/// The canonical spelling of a domain: `ai.onnx` is the default domain "".
pub(crate) fn canonical_domain(domain: &str) -> &str {
    if domain == "ai.onnx" { "" } else { domain }
}

/// The schema rules ([`Rule::OpUnknown`], [`Rule::Arity`],
/// [`Rule::AttributeUnknown`], [`Rule::AttributeType`], ...) of one node
/// whose domain is imported at `version`: what the graph builder checks as a
/// node is added.
pub(crate) fn check_node_schema(node: &NodeProto, domain: &str, version: i64) -> Vec<Diagnostic> {
    let mut cx = Checker {
        ir_version: LATEST_IR_VERSION,
        opsets: HashMap::new(),
        resolver: None,
        out: Vec::new(),
    };
    schema::check_node_schema(&mut cx, &At::node("graph", 0, node), node, domain, version);
    cx.out
}

//! A typed API for writing ONNX graphs: a [`ModelBuilder`] holds the opset
//! imports (and chooses the IR version from them), producer, doc string and
//! metadata; its [`GraphBuilder`] takes inputs and outputs with dtypes and
//! fixed or symbolic dims, initializers from netport-tensor views, and nodes
//! whose op, arity and typed attributes are checked against the op-schema
//! table ([`crate::schema`]) as each node is added. Subgraphs (`If`, `Loop`,
//! `Scan` bodies) are nested graph builders that may read outer values.
//! [`ModelBuilder::finish`] runs the checker ([`crate::check`]). The same
//! calls give the same bytes.
//!
//! ```
//! use netport_onnx::build::{Dim, ModelBuilder};
//! use netport_tensor::DType;
//!
//! let mut m = ModelBuilder::new("relu", &[("", 17)])?;
//! let g = m.graph();
//! g.input("x", DType::Float32, &[Dim::param("batch"), Dim::Fixed(4)])?;
//! g.node("Relu", &["x"], &["y"]).add()?;
//! g.output("y", DType::Float32, &[Dim::param("batch"), Dim::Fixed(4)])?;
//! let model = m.finish().expect("a valid model");
//! assert_eq!(model.ir_version(), 8);
//! # Ok::<(), netport_onnx::build::BuildError>(())
//! ```
//!
//! Large initializers go to an external data file when the model is saved:
//! [`crate::save_model`] with [`crate::SaveOptions::external_data`]. Or they
//! are never copied at all: [`GraphBuilder::initializer_bytes`] takes bytes
//! that stay where they are (a slice of a memory-mapped input), and
//! [`GraphBuilder::initializer_source`] a [`TensorSource`] that produces them
//! while the model is written; [`ModelBuilder::finish_streamed`] then gives
//! a [`StreamedModel`] whose [`StreamedModel::save`] writes with flat memory.

mod error;
mod value;

pub use crate::Dim;
pub use error::BuildError;
pub use value::{Attr, tensor_proto};

use crate::check::{CheckOptions, Diagnostic, check_model, min_ir_version_for_opset};
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, ValueInfoProto,
};
use crate::stream::{StreamedModel, TensorSource};
use netport_tensor::{DType, TensorView};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

/// The IR version a model needs for its opset imports: the smallest one
/// that supports the newest imported `ai.onnx` and `ai.onnx.ml` opsets
/// (onnx's release table), and at least 3 (the first with opset imports).
/// `None` when an import is newer than the table.
pub fn ir_version_for(opsets: &[(&str, i64)]) -> Option<i64> {
    let mut ir = 3;
    for &(domain, version) in opsets {
        if matches!(domain, "" | "ai.onnx" | "ai.onnx.ml") {
            ir = ir.max(min_ir_version_for_opset(domain, version)?);
        }
    }
    Some(ir)
}

/// Names handed out or used anywhere in the model (all its graphs).
#[derive(Debug, Default)]
struct Names {
    /// Next suffix to try per base name of [`GraphBuilder::fresh_name`].
    counters: BTreeMap<String, usize>,
    /// Every name used or handed out: values, node names, fresh names.
    used: HashSet<String>,
    /// Values defined by an input, initializer or node output.
    values: HashSet<String>,
    /// Node names.
    nodes: HashSet<String>,
}

/// What every graph of one model shares.
#[derive(Debug)]
struct Shared {
    /// Imported opsets by canonical domain (`ai.onnx` is `""`).
    opsets: BTreeMap<String, i64>,
    names: RefCell<Names>,
}

/// Builds a `ModelProto`: opset imports, IR version, producer, doc string,
/// metadata and the main graph.
#[derive(Debug)]
pub struct ModelBuilder {
    opsets: Vec<(String, i64)>,
    ir_version: i64,
    producer: Option<(String, String)>,
    doc_string: Option<String>,
    metadata: Vec<(String, String)>,
    graph: GraphBuilder,
}

impl ModelBuilder {
    /// A model whose main graph is named `graph_name`, importing `opsets`
    /// (`(domain, version)`, `""` being ai.onnx). The IR version is
    /// [`ir_version_for`] the imports.
    pub fn new(graph_name: &str, opsets: &[(&str, i64)]) -> Result<Self, BuildError> {
        let mut imports: BTreeMap<String, i64> = BTreeMap::new();
        let mut ordered = Vec::new();
        for &(domain, version) in opsets {
            let canonical = if domain == "ai.onnx" { "" } else { domain };
            let err = |reason: &str| BuildError::Opset {
                domain: domain.to_string(),
                version,
                reason: reason.to_string(),
            };
            if version < 1 || i32::try_from(version).is_err() {
                return Err(err("the version must be between 1 and 2^31 - 1"));
            }
            if imports.insert(canonical.to_string(), version).is_some() {
                return Err(err("the domain is imported twice"));
            }
            if ir_version_for(&[(canonical, version)]).is_none() {
                return Err(err("newer than the opsets this library knows"));
            }
            ordered.push((canonical.to_string(), version));
        }
        let pairs: Vec<(&str, i64)> = ordered.iter().map(|(d, v)| (d.as_str(), *v)).collect();
        let ir_version = ir_version_for(&pairs).unwrap_or(3);
        let shared = Rc::new(Shared {
            opsets: imports,
            names: RefCell::new(Names::default()),
        });
        Ok(ModelBuilder {
            opsets: ordered,
            ir_version,
            producer: None,
            doc_string: None,
            metadata: Vec::new(),
            graph: GraphBuilder {
                main: true,
                ..GraphBuilder::with(graph_name, shared, HashSet::new())
            },
        })
    }

    /// The IR version the model will have.
    pub fn ir_version(&self) -> i64 {
        self.ir_version
    }

    /// Sets `producer_name` and `producer_version`.
    pub fn producer(&mut self, name: &str, version: &str) -> &mut Self {
        self.producer = Some((name.to_string(), version.to_string()));
        self
    }

    /// Sets the model's doc string.
    pub fn doc_string(&mut self, doc: &str) -> &mut Self {
        self.doc_string = Some(doc.to_string());
        self
    }

    /// Sets a `metadata_props` entry (a key set again keeps its place and
    /// takes the new value).
    pub fn metadata(&mut self, key: &str, value: &str) -> &mut Self {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.metadata.push((key.to_string(), value.to_string())),
        }
        self
    }

    /// The main graph.
    pub fn graph(&mut self) -> &mut GraphBuilder {
        &mut self.graph
    }

    /// The model as built, without checking it. Initializers added with
    /// [`GraphBuilder::initializer_source`] have no data in it: use
    /// [`finish_streamed`](Self::finish_streamed) for those.
    pub fn into_model(self) -> ModelProto {
        self.into_parts().0
    }

    /// The model as built, without checking it, with the sources of the
    /// initializers added by [`GraphBuilder::initializer_source`] (what
    /// [`into_model`](Self::into_model) is to [`finish`](Self::finish)).
    pub fn into_streamed(self) -> StreamedModel {
        let (model, sources) = self.into_parts();
        // Lengths were checked when the initializers were added.
        StreamedModel::with_sources(model, sources)
    }

    /// The model, checked like [`finish`](Self::finish) (the streamed
    /// initializers as long as their sources say), with the sources of the
    /// initializers added by [`GraphBuilder::initializer_source`]: save it
    /// with [`StreamedModel::save`].
    pub fn finish_streamed(self) -> Result<StreamedModel, Vec<Diagnostic>> {
        let (model, sources) = self.into_parts();
        // Lengths were checked when the initializers were added.
        let streamed = StreamedModel::with_sources(model, sources);
        let errors: Vec<Diagnostic> = streamed
            .check(&CheckOptions::default())
            .into_iter()
            .filter(Diagnostic::is_error)
            .collect();
        if errors.is_empty() {
            Ok(streamed)
        } else {
            Err(errors)
        }
    }

    #[allow(clippy::type_complexity)]
    fn into_parts(mut self) -> (ModelProto, Vec<(usize, Box<dyn TensorSource>)>) {
        let sources = std::mem::take(&mut self.graph.sources);
        let mut graph = self.graph.into_graph();
        if self.ir_version < 4 {
            // Before IR 4 every initializer must also be a graph input.
            let listed: HashSet<String> =
                graph.input.iter().map(|i| i.name().to_string()).collect();
            let extra: Vec<ValueInfoProto> = graph
                .initializer
                .iter()
                .filter(|t| !listed.contains(t.name()))
                .filter_map(initializer_input)
                .collect();
            graph.input.extend(extra);
        }
        let entry = |k: &str, v: &str| StringStringEntryProto {
            key: Some(k.to_string()),
            value: Some(v.to_string()),
        };
        let model = ModelProto {
            ir_version: Some(self.ir_version),
            opset_import: self
                .opsets
                .iter()
                .map(|(d, v)| OperatorSetIdProto {
                    domain: Some(d.clone()),
                    version: Some(*v),
                })
                .collect(),
            producer_name: self.producer.as_ref().map(|p| p.0.clone()),
            producer_version: self.producer.as_ref().map(|p| p.1.clone()),
            doc_string: self.doc_string,
            metadata_props: self.metadata.iter().map(|(k, v)| entry(k, v)).collect(),
            graph: Some(graph),
            ..Default::default()
        };
        (model, sources)
    }

    /// The model, checked with [`check_model`]: its errors (warnings are
    /// dropped) when it is not valid.
    pub fn finish(self) -> Result<ModelProto, Vec<Diagnostic>> {
        let model = self.into_model();
        let errors: Vec<Diagnostic> = check_model(&model, &CheckOptions::default())
            .into_iter()
            .filter(Diagnostic::is_error)
            .collect();
        if errors.is_empty() {
            Ok(model)
        } else {
            Err(errors)
        }
    }
}

/// The graph input an IR < 4 model lists for an initializer.
fn initializer_input(t: &TensorProto) -> Option<ValueInfoProto> {
    let dtype = DType::from_onnx(t.data_type())?;
    let dims: Vec<Dim> = t.dims.iter().map(|&d| Dim::Fixed(d)).collect();
    value::value_info(t.name(), dtype, &dims).ok()
}

/// Builds one graph: the main graph of a [`ModelBuilder`], or a subgraph
/// made by [`GraphBuilder::subgraph`].
#[derive(Debug)]
pub struct GraphBuilder {
    name: String,
    shared: Rc<Shared>,
    /// Values this graph may read: its own and those of enclosing graphs
    /// defined before the subgraph was made.
    visible: HashSet<String>,
    scope: Vec<String>,
    doc_string: Option<String>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    initializers: Vec<TensorProto>,
    /// Sources of streamed initializers, by index in `initializers` (main
    /// graph only).
    sources: Vec<(usize, Box<dyn TensorSource>)>,
    main: bool,
    nodes: Vec<NodeProto>,
}

impl GraphBuilder {
    fn with(name: &str, shared: Rc<Shared>, visible: HashSet<String>) -> Self {
        GraphBuilder {
            name: name.to_string(),
            shared,
            visible,
            scope: Vec::new(),
            doc_string: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            initializers: Vec::new(),
            sources: Vec::new(),
            main: false,
            nodes: Vec::new(),
        }
    }

    /// Sets the graph's doc string.
    pub fn doc_string(&mut self, doc: &str) -> &mut Self {
        self.doc_string = Some(doc.to_string());
        self
    }

    /// A name not used anywhere in the model yet: `base_0`, `base_1`, ...
    /// (the same calls give the same names).
    pub fn fresh_name(&mut self, base: &str) -> String {
        let mut names = self.shared.names.borrow_mut();
        let mut n = names.counters.get(base).copied().unwrap_or(0);
        let name = loop {
            let candidate = format!("{base}_{n}");
            n += 1;
            if !names.used.contains(&candidate) {
                break candidate;
            }
        };
        names.counters.insert(base.to_string(), n);
        names.used.insert(name.clone());
        name
    }

    /// Enters a name scope: nodes added without a name are named
    /// `/outer/inner/Op` as torch's exporter names them.
    pub fn push_scope(&mut self, scope: &str) -> &mut Self {
        self.scope.push(scope.to_string());
        self
    }

    /// Leaves the innermost name scope.
    pub fn pop_scope(&mut self) -> &mut Self {
        self.scope.pop();
        self
    }

    fn define(&mut self, name: &str, what: &str) -> Result<(), BuildError> {
        if name.is_empty() {
            return Err(BuildError::EmptyName(what.to_string()));
        }
        let mut names = self.shared.names.borrow_mut();
        if self.visible.contains(name) || !names.values.insert(name.to_string()) {
            return Err(BuildError::Redefined(name.to_string()));
        }
        names.used.insert(name.to_string());
        self.visible.insert(name.to_string());
        Ok(())
    }

    /// Declares a graph input of element type `dtype` and shape `dims`;
    /// returns its name.
    pub fn input(&mut self, name: &str, dtype: DType, dims: &[Dim]) -> Result<String, BuildError> {
        let info = value::value_info(name, dtype, dims)?;
        self.define(name, "graph input")?;
        self.inputs.push(info);
        Ok(name.to_string())
    }

    /// Adds an initializer named `name` holding `view` (little-endian
    /// `raw_data`); returns its name.
    pub fn initializer(&mut self, name: &str, view: &TensorView<'_>) -> Result<String, BuildError> {
        let tensor = tensor_proto(name, view)?;
        self.define(name, "initializer")?;
        self.initializers.push(tensor);
        Ok(name.to_string())
    }

    /// Adds an initializer named `name` of `dtype` and `dims` whose
    /// `raw_data` is `data` (little-endian, packed), without copying it: a
    /// slice of a memory-mapped input stays in the map, and saving copies it
    /// to the output piece by piece. Its length must match the dims.
    pub fn initializer_bytes(
        &mut self,
        name: &str,
        dtype: DType,
        dims: &[i64],
        data: bytes::Bytes,
    ) -> Result<String, BuildError> {
        let mut tensor = self.empty_tensor(name, dtype, dims)?;
        crate::stream::check_source(&tensor, data.len() as u64).map_err(|e| {
            BuildError::Tensor {
                name: name.to_string(),
                reason: e.to_string(),
            }
        })?;
        tensor.raw_data = Some(data);
        self.define(name, "initializer")?;
        self.initializers.push(tensor);
        Ok(name.to_string())
    }

    /// Adds an initializer named `name` of `dtype` and `dims` whose bytes
    /// `source` produces when the model is saved
    /// ([`ModelBuilder::finish_streamed`], then [`StreamedModel::save`]):
    /// nothing is held in memory. Main graph only; the source's length must
    /// match the dims.
    pub fn initializer_source(
        &mut self,
        name: &str,
        dtype: DType,
        dims: &[i64],
        source: Box<dyn TensorSource>,
    ) -> Result<String, BuildError> {
        let tensor = self.empty_tensor(name, dtype, dims)?;
        let err = |reason: String| BuildError::Tensor {
            name: name.to_string(),
            reason,
        };
        if !self.main {
            return Err(err(
                "a subgraph's initializers cannot be streamed; add the bytes".into(),
            ));
        }
        crate::stream::check_source(&tensor, source.byte_len()).map_err(|e| err(e.to_string()))?;
        self.define(name, "initializer")?;
        self.sources.push((self.initializers.len(), source));
        self.initializers.push(tensor);
        Ok(name.to_string())
    }

    /// A tensor with a name, type and dims and no data.
    fn empty_tensor(
        &self,
        name: &str,
        dtype: DType,
        dims: &[i64],
    ) -> Result<TensorProto, BuildError> {
        if let Some(d) = dims.iter().find(|&&d| d < 0) {
            return Err(BuildError::Tensor {
                name: name.to_string(),
                reason: format!("dims {dims:?} have a negative dim {d}"),
            });
        }
        Ok(TensorProto {
            name: Some(name.to_string()),
            dims: dims.to_vec(),
            data_type: Some(value::onnx_code(name, dtype)?),
            ..Default::default()
        })
    }

    /// Declares a graph output: `name` must be defined (here, or in an
    /// enclosing graph for a subgraph).
    pub fn output(&mut self, name: &str, dtype: DType, dims: &[Dim]) -> Result<(), BuildError> {
        let info = value::value_info(name, dtype, dims)?;
        if !self.visible.contains(name) {
            return Err(BuildError::UndefinedOutput(name.to_string()));
        }
        self.outputs.push(info);
        Ok(())
    }

    /// Starts a node of `op_type` reading `inputs` (`""` skips an optional
    /// input) and writing `outputs`; add attributes to it and
    /// [`NodeBuilder::add`] it.
    pub fn node(&mut self, op_type: &str, inputs: &[&str], outputs: &[&str]) -> NodeBuilder<'_> {
        NodeBuilder {
            graph: self,
            node: NodeProto {
                op_type: Some(op_type.to_string()),
                input: inputs.iter().map(|s| s.to_string()).collect(),
                output: outputs.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            attributes: Vec::new(),
        }
    }

    /// A subgraph (an `If` branch, a `Loop` or `Scan` body) named `name`
    /// that may read every value this graph has defined so far. Turn it
    /// into an [`Attr::Graph`] with [`GraphBuilder::into_graph`].
    pub fn subgraph(&self, name: &str) -> GraphBuilder {
        let mut sub = GraphBuilder::with(name, Rc::clone(&self.shared), self.visible.clone());
        sub.scope = self.scope.clone();
        sub
    }

    /// The graph as built.
    pub fn into_graph(self) -> GraphProto {
        GraphProto {
            name: Some(self.name),
            doc_string: self.doc_string,
            input: self.inputs,
            output: self.outputs,
            initializer: self.initializers,
            node: self.nodes,
            ..Default::default()
        }
    }

    fn node_name(&mut self, op_type: &str) -> String {
        if self.scope.is_empty() {
            return self.fresh_name(op_type);
        }
        let base = format!("/{}/{op_type}", self.scope.join("/"));
        let mut names = self.shared.names.borrow_mut();
        let mut name = base.clone();
        let mut n = 0;
        while names.used.contains(&name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        names.used.insert(name.clone());
        name
    }
}

/// A node being added to a [`GraphBuilder`].
#[derive(Debug)]
pub struct NodeBuilder<'g> {
    graph: &'g mut GraphBuilder,
    node: NodeProto,
    attributes: Vec<AttributeProto>,
}

impl NodeBuilder<'_> {
    /// Names the node (otherwise [`NodeBuilder::add`] makes a name: the
    /// scoped torch-style `/a/b/Op`, or `Op_0`, `Op_1`, ...).
    pub fn name(mut self, name: &str) -> Self {
        self.node.name = Some(name.to_string());
        self
    }

    /// Puts the node in operator domain `domain` (default `""`, ai.onnx;
    /// `"ai.onnx"` is written as `""`, the spelling onnx's registry knows).
    pub fn domain(mut self, domain: &str) -> Self {
        let canonical = if domain == "ai.onnx" { "" } else { domain };
        self.node.domain = Some(canonical.to_string());
        self
    }

    /// Sets the node's doc string.
    pub fn doc_string(mut self, doc: &str) -> Self {
        self.node.doc_string = Some(doc.to_string());
        self
    }

    /// Sets attribute `name` (attributes are written in the order given).
    pub fn attr(mut self, name: &str, value: Attr) -> Self {
        self.attributes.push(value.proto(name));
        self
    }

    /// Checks the node against its op's schema at the imported opset
    /// (op known, arity, attributes known, of their type, required ones
    /// present), its inputs against the values defined so far and its
    /// outputs against SSA, then adds it; returns the node's name.
    pub fn add(self) -> Result<String, BuildError> {
        let NodeBuilder {
            graph,
            mut node,
            attributes,
        } = self;
        node.attribute = attributes;
        let op = node.op_type().to_string();
        let explicit = node.name.clone();
        let shown = explicit.clone().unwrap_or_default();
        let domain = node.domain().to_string();
        let Some(&version) = graph.shared.opsets.get(domain.as_str()) else {
            return Err(BuildError::DomainNotImported {
                op,
                node: shown,
                domain,
            });
        };
        if let Some(d) = crate::check::check_node_schema(&node, &domain, version)
            .into_iter()
            .find(Diagnostic::is_error)
        {
            return Err(BuildError::Schema {
                op,
                node: shown,
                rule: d.rule,
                message: d.message,
            });
        }
        for input in node.input.iter().filter(|i| !i.is_empty()) {
            if !graph.visible.contains(input) {
                return Err(BuildError::UndefinedInput {
                    op,
                    node: shown,
                    value: input.clone(),
                });
            }
        }
        let mut seen = HashSet::new();
        for output in node.output.iter().filter(|o| !o.is_empty()) {
            if !seen.insert(output.as_str())
                || graph.visible.contains(output)
                || graph.shared.names.borrow().values.contains(output)
            {
                return Err(BuildError::Redefined(output.clone()));
            }
        }
        let name = match explicit {
            Some(name) => {
                let mut names = graph.shared.names.borrow_mut();
                if !names.nodes.insert(name.clone()) {
                    return Err(BuildError::DuplicateNodeName(name));
                }
                names.used.insert(name.clone());
                name
            }
            None => {
                let name = graph.node_name(&op);
                graph.shared.names.borrow_mut().nodes.insert(name.clone());
                name
            }
        };
        for output in node.output.clone().iter().filter(|o| !o.is_empty()) {
            graph.define(output, "node output")?;
        }
        node.name = Some(name.clone());
        graph.nodes.push(node);
        Ok(name)
    }
}

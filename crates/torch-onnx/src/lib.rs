//! PyTorch state_dicts of torchvision architectures to ONNX graphs, without
//! Python: the architecture is recognised from the tensor names and shapes
//! ([`families`]), its eval-mode forward is written with netport-onnx's
//! graph builder ([`emit`]) and the weights become initializers named by
//! their state_dict keys.
//!
//! This crate joins two formats (a crate of its own, as the workspace rule
//! asks): checkpoints and safetensors through `netport-torch` /
//! `netport-torch-safetensors` on one side, ONNX through `netport-onnx` on
//! the other.
//!
//! ```no_run
//! use netport_torch_onnx::{ExportOptions, export};
//!
//! let report = export("resnet18.pt".as_ref(), "resnet18.onnx".as_ref(), &ExportOptions::default())?;
//! println!("{} ({}), {} classes, {} nodes", report.family, report.variant, report.classes, report.nodes);
//! # Ok::<(), netport_torch_onnx::ExportError>(())
//! ```

pub mod emit;
pub mod error;
pub mod families;
pub mod source;

pub use error::{ExportError, Mismatch};
pub use source::StateDict;

use std::path::Path;

use netport_onnx::build::{Dim, ModelBuilder};
use netport_onnx::check::{CheckOptions, Diagnostic};
use netport_onnx::proto::ModelProto;
use netport_onnx::{ExternalDataOptions, SaveOptions, StreamedModel, save_model};
use netport_tensor::DType;
use serde::Serialize;

use crate::emit::Emit;
use crate::families::{Settings, recognise};

/// The opset written when none is asked for.
pub const DEFAULT_OPSET: i64 = 17;
/// The oldest opset the exporter writes (what torch 1.4 wrote).
pub const MIN_OPSET: i64 = 9;
/// Initializer bytes above which the weights go to an external data file
/// (a protobuf cannot exceed 2 GiB; some room is left for the graph).
pub const EXTERNAL_DATA_THRESHOLD: u64 = (2 << 30) - (64 << 20);

/// The newest `ai.onnx` opset the op table holds.
pub fn max_opset() -> i64 {
    netport_onnx::schema::domain("").map_or(MIN_OPSET, |d| d.max_version)
}

/// What to export and how.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// A family (`resnet`) or variant (`resnet50`) to use instead of
    /// recognising one.
    pub arch: Option<String>,
    /// The `ai.onnx` opset, [`MIN_OPSET`] to [`max_opset`].
    pub opset: i64,
    /// The sub-dict of a training checkpoint holding the state_dict.
    pub key: Option<String>,
    /// The input's (H, W); the family's default when `None`.
    pub input_size: Option<(u64, u64)>,
    /// A batch dim of 1 instead of the symbolic `batch`.
    pub static_batch: bool,
    /// Constructor options the weights do not show (`transform_input`).
    pub settings: Vec<(String, String)>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            arch: None,
            opset: DEFAULT_OPSET,
            key: None,
            input_size: None,
            static_batch: false,
            settings: Vec::new(),
        }
    }
}

/// What was recognised and written.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// The family (`resnet`).
    pub family: String,
    /// The variant (`resnet18`).
    pub variant: String,
    /// Classes of the head.
    pub classes: u64,
    /// Learnable parameter elements.
    pub params: u64,
    /// The `ai.onnx` opset.
    pub opset: i64,
    /// The model's IR version.
    pub ir_version: i64,
    /// Nodes of the graph.
    pub nodes: usize,
    /// Initializers (parameters and running statistics).
    pub initializers: usize,
    /// Bytes of initializer data.
    pub initializer_bytes: u64,
    /// The input's dims (`batch` when symbolic).
    pub input_shape: Vec<String>,
    /// The output's dims.
    pub output_shape: Vec<String>,
    /// The input file's format (`zip`, `legacy`, `safetensors`).
    pub source_format: String,
    /// The sub-dict the state_dict came from, if any.
    pub key: Option<String>,
    /// The external data file, when the weights went to one.
    pub external_data: Option<String>,
    /// State_dict tensors the graph does not read (`num_batches_tracked`).
    pub unused_tensors: usize,
}

fn dim_text(d: &Dim) -> String {
    d.to_string()
}

/// Builds the ONNX model for the state_dict in `input` (nothing written);
/// the model with every initializer's bytes in it (memory: the weights)
/// and its report (`external_data` not yet decided).
pub fn build(
    input: &Path,
    options: &ExportOptions,
) -> Result<(ModelProto, ExportReport), ExportError> {
    let (model, report) = build_streamed(input, options)?;
    Ok((model.into_model()?, report))
}

/// Builds the ONNX model for the state_dict in `input` (nothing written):
/// the initializers stored as contiguous little-endian float32 stay in the
/// input's map and are copied from it when the model is written
/// ([`StreamedModel::save`]); the report's `external_data` is not yet
/// decided.
pub fn build_streamed(
    input: &Path,
    options: &ExportOptions,
) -> Result<(StreamedModel, ExportReport), ExportError> {
    let max = max_opset();
    if !(MIN_OPSET..=max).contains(&options.opset) {
        return Err(ExportError::Option(format!(
            "opset {} is not supported: {MIN_OPSET} to {max}",
            options.opset
        )));
    }
    let sd = StateDict::open(input, options.key.as_deref())?;
    let settings = Settings::new(&options.settings);
    let model = recognise(&sd, options.arch.as_deref(), &settings, options.opset)?;
    let size = options.input_size.unwrap_or(model.default_input());
    if size.0 == 0 || size.1 == 0 {
        return Err(ExportError::Option(format!(
            "input size {}x{} is empty",
            size.0, size.1
        )));
    }
    if model.fixed_input() && size != model.default_input() {
        return Err(ExportError::Option(format!(
            "{} takes {}x{} inputs only (the size is part of its weights); asked {}x{}",
            model.variant(),
            model.default_input().0,
            model.default_input().1,
            size.0,
            size.1
        )));
    }
    let mut m = ModelBuilder::new("main_graph", &[("", options.opset)])?;
    m.producer("netport", env!("CARGO_PKG_VERSION"));
    m.doc_string(&format!(
        "torchvision {} exported by netport from a state_dict",
        model.variant()
    ));
    let batch = if options.static_batch {
        Dim::Fixed(1)
    } else {
        Dim::param("batch")
    };
    let in_dims = [
        batch.clone(),
        Dim::Fixed(3),
        Dim::Fixed(size.0 as i64),
        Dim::Fixed(size.1 as i64),
    ];
    let out_dims = [batch, Dim::Fixed(model.classes() as i64)];
    let g = m.graph();
    g.input("input", DType::Float32, &in_dims)?;
    let mut e = Emit::real(&sd, g, options.opset);
    let y = model.forward(&mut e, "input", size)?;
    let params = e.param_count();
    let declared = e.declared();
    m.graph().output(&y, DType::Float32, &out_dims)?;
    let (mut proto, sources) = m.into_streamed().into_parts();
    rename_value(&mut proto, &y, "output");
    let streamed = StreamedModel::from_parts(proto, sources)?;
    let errors: Vec<Diagnostic> = streamed
        .check(&CheckOptions::default())
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect();
    if let Some(d) = errors.first() {
        return Err(ExportError::Invalid(format!(
            "{} ({} problem(s); the first: {})",
            d.rule.id(),
            errors.len(),
            d.message
        )));
    }
    let proto = streamed.model();
    let graph = proto.graph.as_ref();
    let initializers = graph.map_or(0, |g| g.initializer.len());
    let initializer_bytes = graph.map_or(0, |g| {
        g.initializer
            .iter()
            .map(|t| t.raw_data.as_ref().map_or(0, |d| d.len() as u64))
            .sum::<u64>()
    }) + streamed.streamed_bytes();
    let read: std::collections::HashSet<&str> = graph
        .map(|g| g.initializer.iter().map(|t| t.name()).collect())
        .unwrap_or_default();
    let report = ExportReport {
        family: model.family().to_string(),
        variant: model.variant(),
        classes: model.classes(),
        params,
        opset: options.opset,
        ir_version: proto.ir_version(),
        nodes: graph.map_or(0, |g| g.node.len()),
        initializers,
        initializer_bytes,
        input_shape: in_dims.iter().map(dim_text).collect(),
        output_shape: out_dims.iter().map(dim_text).collect(),
        source_format: sd.format.clone(),
        key: sd.key.clone(),
        external_data: None,
        unused_tensors: declared
            .iter()
            .filter(|(n, _)| !read.contains(n.as_str()))
            .count(),
    };
    Ok((streamed, report))
}

/// Renames value `from` to `to` everywhere in the main graph.
fn rename_value(model: &mut ModelProto, from: &str, to: &str) {
    let Some(g) = model.graph.as_mut() else {
        return;
    };
    for n in &mut g.node {
        for v in n.input.iter_mut().chain(n.output.iter_mut()) {
            if v == from {
                *v = to.to_string();
            }
        }
    }
    for o in &mut g.output {
        if o.name() == from {
            o.name = Some(to.to_string());
        }
    }
}

/// Exports the state_dict in `input` to the ONNX model `output` (with
/// `<output>.data` beside it when the weights exceed
/// [`EXTERNAL_DATA_THRESHOLD`]). Nothing is written on error; both files
/// are written atomically.
pub fn export(
    input: &Path,
    output: &Path,
    options: &ExportOptions,
) -> Result<ExportReport, ExportError> {
    let (model, mut report) = build_streamed(input, options)?;
    if report.initializer_bytes > EXTERNAL_DATA_THRESHOLD {
        // A streamed model is one protobuf; the external-data layout is
        // save_model's, which takes the model with its bytes: the streamed
        // initializers are read into memory first (memory: the weights).
        let name = output
            .file_name()
            .map(|n| format!("{}.data", n.to_string_lossy()))
            .unwrap_or_else(|| "model.onnx.data".into());
        let save = SaveOptions {
            external_data: Some(ExternalDataOptions::new(name.clone())),
        };
        report.external_data = Some(name);
        save_model(&model.into_model()?, output, &save, None)?;
    } else {
        model.save(output)?;
    }
    Ok(report)
}

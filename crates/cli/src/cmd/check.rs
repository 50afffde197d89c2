//! `netport check MODEL`: the rules of `onnx.checker.check_model(model,
//! full_check=False)` (see `netport_onnx::check`), and with `--shapes` the
//! type and shape inference of `netport_onnx::shapes` (type-constraint
//! violations and clashes are problems too, as with `full_check=True`), one
//! line per problem and a summary, or one JSON document.
//! Exit code 0 when the model is valid (warnings allowed), 1 when it breaks a
//! rule, 2 when it cannot be read.

use crate::exit::Outcome;
use crate::global::Global;
use crate::json::DimJson;
use crate::output::emit;
use netport_onnx::check::{CheckOptions, Diagnostic, check_model};
use netport_onnx::shapes::{Dim, Inferred, infer_shapes};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Check an ONNX model with the rules of onnx.checker.check_model: IR
/// version and opset imports, SSA and topological order, every input defined
/// and every output produced, initializers, op schemas (arity, attributes),
/// tensor data sizes and external data locations; --shapes adds type and
/// shape inference, as full_check does.
///
/// Every problem is reported, each with its node and a stable rule id.
/// Warnings (things onnx accepts that look wrong) do not make the model
/// invalid. Exit code 0 when the model is valid, 1 when it is not, 2 when it
/// cannot be read.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model (.onnx); external data is resolved against its folder.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Print one JSON document (field names documented in docs/cli.md).
    #[arg(long)]
    pub json: bool,
    /// Also infer types and shapes (symbolic dims, data propagation through
    /// shape computations), as onnx.checker's full_check=True: an input type
    /// its op's type constraint refuses, a type clash or an inferred shape
    /// that contradicts a declared one is a problem; the graph outputs'
    /// inferred shapes and the ops without an inference rule are listed.
    #[arg(long)]
    pub shapes: bool,
}

#[derive(Serialize)]
struct CheckJson<'a> {
    path: String,
    valid: bool,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<DiagnosticJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shapes: Option<ShapesJson<'a>>,
}

/// What `--shapes` adds (to `check` and to `inspect` of an ONNX model).
#[derive(Serialize)]
pub(crate) struct ShapesJson<'a> {
    /// Values with an inferred type.
    inferred_values: usize,
    /// The graph outputs: name, element type code, dims (int, symbolic
    /// name, or null when unknown; `dims` null when the rank is unknown).
    outputs: Vec<ValueJson<'a>>,
    /// `domain::op` of the ops without an inference rule.
    unsupported_ops: Vec<String>,
}

#[derive(Serialize)]
struct ValueJson<'a> {
    name: String,
    elem_type: i32,
    dims: Option<Vec<DimJson<'a>>>,
}

/// The `shapes` JSON object of `--shapes`.
pub(crate) fn shapes_json<'a>(
    model: &'a netport_onnx::proto::ModelProto,
    inferred: &'a Inferred,
) -> ShapesJson<'a> {
    let outputs = model
        .graph
        .iter()
        .flat_map(|g| &g.output)
        .map(|o| {
            let t = inferred.values.get(o.name());
            ValueJson {
                name: o.name().to_owned(),
                elem_type: t.map_or(0, |t| t.elem_type),
                dims: t
                    .and_then(|t| t.shape.as_ref())
                    .map(|s| s.iter().map(DimJson::from).collect()),
            }
        })
        .collect();
    ShapesJson {
        inferred_values: inferred.values.len(),
        outputs,
        unsupported_ops: inferred.unsupported.iter().cloned().collect(),
    }
}

/// The text lines of `--shapes`: each graph output's inferred element type
/// and dims, and the ops without a shape rule.
pub(crate) fn shapes_text(model: &netport_onnx::proto::ModelProto, i: &Inferred) -> String {
    let mut t = String::new();
    for o in model.graph.iter().flat_map(|g| &g.output) {
        let ty = i.values.get(o.name());
        let dims = match ty.and_then(|ty| ty.shape.as_ref()) {
            Some(d) => {
                let d: Vec<String> = d.iter().map(Dim::to_string).collect();
                format!("[{}]", d.join(", "))
            }
            None => "rank unknown".into(),
        };
        let elem = ty.map_or(0, |ty| ty.elem_type);
        let _ = writeln!(t, "output {}: elem_type {elem} {dims}", o.name());
    }
    if !i.unsupported.is_empty() {
        let ops: Vec<&str> = i.unsupported.iter().map(String::as_str).collect();
        let _ = writeln!(t, "ops without a shape rule: {}", ops.join(", "));
    }
    t
}

#[derive(Serialize)]
struct DiagnosticJson {
    severity: &'static str,
    rule: &'static str,
    location: String,
    node_index: Option<usize>,
    node_name: Option<String>,
    op_type: Option<String>,
    message: String,
}

fn diagnostic_json(d: &Diagnostic) -> DiagnosticJson {
    DiagnosticJson {
        severity: d.severity.as_str(),
        rule: d.rule.id(),
        location: d.location.clone(),
        node_index: d.node_index,
        node_name: d.node_name.clone(),
        op_type: d.op_type.clone(),
        message: d.message.clone(),
    }
}

/// Runs `netport check`.
pub fn run(args: &Args, _global: &Global) -> anyhow::Result<Outcome> {
    let path = &args.model;
    let shown = path.display().to_string();
    let model = netport_onnx::load_model(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut diagnostics = check_model(&model, &CheckOptions::for_model(path));
    let inferred = args.shapes.then(|| infer_shapes(&model));
    if let Some(i) = &inferred {
        diagnostics.extend(i.diagnostics.iter().cloned());
    }
    let shapes = inferred.as_ref().map(|i| shapes_json(&model, i));
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let valid = errors == 0;
    emit(
        args.json,
        || CheckJson {
            path: shown.clone(),
            valid,
            errors,
            warnings,
            diagnostics: diagnostics.iter().map(diagnostic_json).collect(),
            shapes,
        },
        || {
            let mut t = String::new();
            for d in &diagnostics {
                let _ = writeln!(t, "{shown}: {d}");
            }
            if let Some(i) = &inferred {
                t.push_str(&shapes_text(&model, i));
            }
            let plural =
                |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
            let _ = writeln!(
                t,
                "summary: {shown}: {} ({}, {})",
                if valid { "valid" } else { "INVALID" },
                plural(errors, "error"),
                plural(warnings, "warning")
            );
            t
        },
    )?;
    Ok(Outcome::findings_if(!valid))
}

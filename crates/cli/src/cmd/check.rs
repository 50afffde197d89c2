//! `netport check MODEL`: the rules of `onnx.checker.check_model(model,
//! full_check=False)` (see `netport_onnx::check`), one line per problem and a
//! summary, or one JSON document. Exit code 0 when the model is valid
//! (warnings allowed), 1 when it breaks a rule, 2 when it cannot be read.

use crate::exit::Outcome;
use crate::global::Global;
use crate::output::emit;
use netport_onnx::check::{CheckOptions, Diagnostic, check_model};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Check an ONNX model with the rules of onnx.checker.check_model (without
/// full_check): IR version and opset imports, SSA and topological order,
/// every input defined and every output produced, initializers, op schemas
/// (arity, attributes), tensor data sizes and external data locations.
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
}

#[derive(Serialize)]
struct CheckJson {
    path: String,
    valid: bool,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<DiagnosticJson>,
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
    let diagnostics = check_model(&model, &CheckOptions::for_model(path));
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
        },
        || {
            let mut t = String::new();
            for d in &diagnostics {
                let _ = writeln!(t, "{shown}: {d}");
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

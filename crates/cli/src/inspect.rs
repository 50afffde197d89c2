//! `netport inspect`: reads one model (or a Caffe2 pair), and prints its
//! summary as a table or as one JSON document whose field names are stable
//! (documented in docs/cli.md).

use crate::detect::{Detected, detect};
use anyhow::Context;
use netport_onnx::{Dim, ModelSummary, ValueSummary};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(paths: &[PathBuf], json: bool, tree: bool) -> anyhow::Result<ExitCode> {
    let report = match paths {
        [path] if path.is_dir() => crate::inspect_caffe2::pair_in_dir(path, json)?,
        [path] => match detect(path)? {
            Detected::Torch(ckpt) => crate::inspect_torch::report(path, &ckpt, tree, json),
            Detected::Onnx(model) => {
                let resolver = netport_onnx::ExternalDataResolver::for_model(path);
                netport_onnx::check_external_data(&model, &resolver)
                    .with_context(|| path.display().to_string())?;
                onnx_report(path, &model, json)
            }
            Detected::Caffe2(net) => crate::inspect_caffe2::net_report(path, &net, json),
        },
        [init, predict] => crate::inspect_caffe2::pair(init, predict, json)?,
        _ => unreachable!("clap allows one or two paths"),
    };
    match report {
        Report::Json(mut text) => {
            text.push('\n');
            crate::output::print(&text)?;
        }
        Report::Text(text) => crate::output::print(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A summary in the one form asked for: only that form is built.
pub enum Report {
    /// A JSON document, already serialized.
    Json(String),
    /// The readable table.
    Text(String),
}

impl Report {
    /// Serializes a JSON summary.
    pub fn json(value: &impl serde::Serialize) -> Self {
        Report::Json(serde_json::to_string_pretty(value).expect("summaries serialize"))
    }
}

/// Maps a file for reading ([`netport_io::map_file`]); never modifies it.
pub fn read(path: &Path) -> anyhow::Result<bytes::Bytes> {
    Ok(bytes::Bytes::from_owner(netport_io::map_file(path)?))
}

fn dim_json(d: &Dim) -> Value {
    match d {
        Dim::Value(v) => json!(v),
        Dim::Param(p) => json!(p),
        Dim::Unknown => Value::Null,
    }
}

fn dim_text(d: &Dim) -> String {
    match d {
        Dim::Value(v) => v.to_string(),
        Dim::Param(p) => p.clone(),
        Dim::Unknown => "?".into(),
    }
}

fn elem_name(code: Option<i32>) -> Option<String> {
    code.map(|c| {
        netport_onnx::dtype::name(c)
            .map(str::to_string)
            .unwrap_or_else(|| format!("code {c}"))
    })
}

fn value_json(v: &ValueSummary) -> Value {
    json!({
        "name": v.name,
        "kind": v.kind,
        "elem_type": v.elem_type,
        "elem_type_name": elem_name(v.elem_type),
        "shape": v.shape.as_ref().map(|s| s.iter().map(dim_json).collect::<Vec<_>>()),
        "is_initializer": v.is_initializer,
    })
}

fn value_text(v: &ValueSummary) -> String {
    let ty = match (v.kind, elem_name(v.elem_type)) {
        ("tensor", Some(t)) => t,
        (kind, Some(t)) => format!("{kind}<{t}>"),
        (kind, None) => kind.to_string(),
    };
    let shape = match &v.shape {
        Some(s) => format!(
            "[{}]",
            s.iter().map(dim_text).collect::<Vec<_>>().join(", ")
        ),
        None => "(unknown rank)".into(),
    };
    format!("{}  {ty} {shape}", v.name)
}

pub fn onnx_report(path: &Path, model: &netport_onnx::proto::ModelProto, json: bool) -> Report {
    let s = ModelSummary::of(model);
    if json {
        return Report::json(&json!({
        "format": "onnx",
        "path": path.display().to_string(),
        "ir_version": s.ir_version,
        "opset_import": s.opset_import.iter().map(|(d, v)| json!({"domain": d, "version": v})).collect::<Vec<_>>(),
        "producer_name": s.producer_name,
        "producer_version": s.producer_version,
        "domain": s.domain,
        "model_version": s.model_version,
        "graph_name": s.graph_name,
        "inputs": s.inputs.iter().map(value_json).collect::<Vec<_>>(),
        "outputs": s.outputs.iter().map(value_json).collect::<Vec<_>>(),
        "node_count": s.node_count,
        "total_node_count": s.total_node_count,
        "op_types": s.op_types,
        "initializers": {
            "count": s.initializer_count,
            "bytes": s.initializer_bytes,
            "by_dtype": s.initializers_by_dtype.iter().map(|(k, t)| (k.clone(), json!({
                "count": t.count, "elements": t.elements, "bytes": t.bytes
            }))).collect::<serde_json::Map<_, _>>(),
        },
        "external_data": s.external_files.iter().map(|f| json!({
            "location": f.location, "tensors": f.tensors, "bytes": f.bytes
        })).collect::<Vec<_>>(),
        "functions": s.functions,
        "metadata": s.metadata.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        }));
    }

    let graph_inputs: Vec<&ValueSummary> = s.inputs.iter().filter(|v| !v.is_initializer).collect();
    let mut t = String::new();
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let _ = writeln!(t, "{}: ONNX model", path.display());
    let _ = writeln!(
        t,
        "  ir_version     {}",
        s.ir_version.map_or("-".into(), |v| v.to_string())
    );
    let opsets: Vec<String> = s
        .opset_import
        .iter()
        .map(|(d, v)| format!("{}={v}", if d.is_empty() { "ai.onnx" } else { d }))
        .collect();
    let _ = writeln!(t, "  opsets         {}", opsets.join(", "));
    let _ = writeln!(
        t,
        "  producer       {} {}",
        opt(&s.producer_name),
        s.producer_version.clone().unwrap_or_default()
    );
    let _ = writeln!(t, "  graph          {}", opt(&s.graph_name));
    let _ = writeln!(t, "inputs ({}):", graph_inputs.len());
    for v in &graph_inputs {
        let _ = writeln!(t, "  {}", value_text(v));
    }
    let _ = writeln!(t, "outputs ({}):", s.outputs.len());
    for v in &s.outputs {
        let _ = writeln!(t, "  {}", value_text(v));
    }
    let _ = writeln!(
        t,
        "nodes: {} in the main graph, {} with subgraphs",
        s.node_count, s.total_node_count
    );
    let mut ops: Vec<(&String, &usize)> = s.op_types.iter().collect();
    ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (op, n) in ops {
        let _ = writeln!(t, "  {n:>6}  {op}");
    }
    let _ = writeln!(
        t,
        "initializers: {} ({})",
        s.initializer_count,
        human_bytes(s.initializer_bytes)
    );
    for (dtype, total) in &s.initializers_by_dtype {
        let _ = writeln!(
            t,
            "  {dtype:<10} {:>6} tensors {:>14} elements {:>12}",
            total.count,
            total.elements,
            human_bytes(total.bytes)
        );
    }
    if !s.external_files.is_empty() {
        let _ = writeln!(t, "external data:");
        for f in &s.external_files {
            let _ = writeln!(
                t,
                "  {}  {} tensors, {}",
                f.location,
                f.tensors,
                human_bytes(f.bytes)
            );
        }
    }
    if s.functions > 0 {
        let _ = writeln!(t, "functions: {}", s.functions);
    }
    Report::Text(t)
}

/// `1234567` -> `"1.2 MiB (1234567 bytes)"`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64;
    let mut unit = "";
    for u in UNITS {
        v /= 1024.0;
        unit = u;
        if v < 1024.0 {
            break;
        }
    }
    format!("{v:.1} {unit} ({n} bytes)")
}

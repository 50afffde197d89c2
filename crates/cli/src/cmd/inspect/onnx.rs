//! `netport inspect` for ONNX models: the library's `ModelSummary` as a
//! table or JSON (fields in docs/cli.md).

use super::Args;
use crate::cmd::check::{ShapesJson, shapes_json, shapes_text};
use crate::json::{ByDType, DTypeTotals, DimJson, by_dtype_text, dtype_key};
use crate::output::Report;
use crate::units::human_bytes;
use netport_onnx::proto::ModelProto;
use netport_onnx::{Dim, ModelSummary, ValueSummary};
use netport_tensor::DType;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Serialize)]
struct ModelJson<'a> {
    format: &'static str,
    path: String,
    ir_version: Option<i64>,
    opset_import: Vec<OpsetJson<'a>>,
    producer_name: &'a Option<String>,
    producer_version: &'a Option<String>,
    domain: &'a Option<String>,
    model_version: Option<i64>,
    graph_name: &'a Option<String>,
    inputs: Vec<ValueJson<'a>>,
    outputs: Vec<ValueJson<'a>>,
    node_count: usize,
    total_node_count: usize,
    op_types: &'a BTreeMap<String, usize>,
    initializers: InitializersJson,
    external_data: Vec<ExternalJson<'a>>,
    functions: usize,
    metadata: BTreeMap<&'a str, &'a str>,
    /// With `--shapes`: the graph outputs' inferred types and the ops
    /// without a shape rule (the object `check --shapes` prints).
    #[serde(skip_serializing_if = "Option::is_none")]
    shapes: Option<ShapesJson<'a>>,
}

#[derive(Serialize)]
struct OpsetJson<'a> {
    domain: &'a str,
    version: i64,
}

#[derive(Serialize)]
struct ValueJson<'a> {
    name: &'a str,
    kind: &'static str,
    elem_type: Option<i32>,
    elem_type_name: Option<String>,
    shape: Option<Vec<DimJson<'a>>>,
    is_initializer: bool,
}

#[derive(Serialize)]
struct InitializersJson {
    count: usize,
    bytes: u64,
    by_dtype: ByDType,
}

#[derive(Serialize)]
struct ExternalJson<'a> {
    location: &'a str,
    tensors: usize,
    bytes: u64,
}

fn elem_name(code: Option<i32>) -> Option<String> {
    code.map(|c| {
        netport_onnx::dtype::name(c)
            .map(str::to_string)
            .unwrap_or_else(|| format!("code {c}"))
    })
}

fn value_json(v: &ValueSummary) -> ValueJson<'_> {
    ValueJson {
        name: &v.name,
        kind: v.kind,
        elem_type: v.elem_type,
        elem_type_name: elem_name(v.elem_type),
        shape: v
            .shape
            .as_ref()
            .map(|s| s.iter().map(DimJson::from).collect()),
        is_initializer: v.is_initializer,
    }
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
            s.iter().map(Dim::to_string).collect::<Vec<_>>().join(", ")
        ),
        None => "(unknown rank)".into(),
    };
    format!("{}  {ty} {shape}", v.name)
}

/// The ONNX type names the summary keys its totals by (`FLOAT`, `code 99`)
/// in the shared dtype vocabulary.
fn by_dtype(s: &ModelSummary) -> ByDType {
    let mut by = ByDType::new();
    for (name, t) in &s.initializers_by_dtype {
        let dtype = (0..=64)
            .find(|&c| netport_onnx::dtype::name(c) == Some(name.as_str()))
            .and_then(DType::from_onnx);
        crate::json::add(
            &mut by,
            dtype_key(dtype, Some(name)),
            DTypeTotals {
                tensors: t.count,
                elements: t.elements,
                bytes: t.bytes,
                unsized_tensors: 0,
            },
        );
    }
    by
}

/// The report of an ONNX model.
pub fn report(path: &Path, model: &ModelProto, args: &Args) -> anyhow::Result<Report> {
    let s = ModelSummary::of(model);
    let inferred = args
        .shapes
        .then(|| netport_onnx::shapes::infer_shapes(model));
    if args.json {
        return Report::json(&ModelJson {
            format: "onnx",
            path: path.display().to_string(),
            ir_version: s.ir_version,
            opset_import: s
                .opset_import
                .iter()
                .map(|(domain, version)| OpsetJson {
                    domain,
                    version: *version,
                })
                .collect(),
            producer_name: &s.producer_name,
            producer_version: &s.producer_version,
            domain: &s.domain,
            model_version: s.model_version,
            graph_name: &s.graph_name,
            inputs: s.inputs.iter().map(value_json).collect(),
            outputs: s.outputs.iter().map(value_json).collect(),
            node_count: s.node_count,
            total_node_count: s.total_node_count,
            op_types: &s.op_types,
            initializers: InitializersJson {
                count: s.initializer_count,
                bytes: s.initializer_bytes,
                by_dtype: by_dtype(&s),
            },
            external_data: s
                .external_files
                .iter()
                .map(|f| ExternalJson {
                    location: &f.location,
                    tensors: f.tensors,
                    bytes: f.bytes,
                })
                .collect(),
            functions: s.functions,
            metadata: s
                .metadata
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            shapes: inferred.as_ref().map(|i| shapes_json(model, i)),
        });
    }
    let mut t = text(path, &s);
    if let Some(i) = &inferred {
        let _ = writeln!(t, "inferred shapes:");
        for line in shapes_text(model, i).lines() {
            let _ = writeln!(t, "  {line}");
        }
    }
    Ok(Report::Text(t))
}

fn text(path: &Path, s: &ModelSummary) -> String {
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
        "initializers: {}, {}",
        s.initializer_count,
        human_bytes(s.initializer_bytes)
    );
    by_dtype_text(&mut t, &by_dtype(s));
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
    t
}

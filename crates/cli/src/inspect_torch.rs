//! `netport inspect` for PyTorch checkpoints (zip, legacy, TorchScript,
//! `.pt2`): format details, devices, the tensor table, totals by dtype,
//! non-tensor values and shared storages, as a table, a tree (`--tree`) or
//! JSON (fields in docs/cli.md). No tensor bytes are read.

use crate::inspect::{Report, human_bytes};
use netport_torch::{Checkpoint, Quantization, Tensor, TensorKind, TreeNode};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

fn kind_json(kind: &TensorKind) -> Value {
    match kind {
        TensorKind::Dense => json!("tensor"),
        TensorKind::Parameter => json!("parameter"),
        TensorKind::Subclass { class } => json!({"subclass": class}),
        TensorKind::Quantized(Quantization::PerTensor {
            qscheme,
            scale,
            zero_point,
        }) => json!({
            "quantized": {"qscheme": qscheme, "scale": scale, "zero_point": zero_point}
        }),
        TensorKind::Quantized(Quantization::PerChannel { qscheme, axis, .. }) => json!({
            "quantized": {"qscheme": qscheme, "axis": axis}
        }),
        TensorKind::Meta => json!("meta"),
        TensorKind::Unsupported { function } => json!({"unsupported": function}),
    }
}

fn kind_text(kind: &TensorKind) -> String {
    match kind {
        TensorKind::Dense => String::new(),
        TensorKind::Parameter => "parameter".into(),
        TensorKind::Subclass { class } => format!("subclass {class}"),
        TensorKind::Quantized(Quantization::PerTensor {
            qscheme,
            scale,
            zero_point,
        }) => {
            format!("{qscheme} scale={scale} zero_point={zero_point}")
        }
        TensorKind::Quantized(Quantization::PerChannel { qscheme, axis, .. }) => {
            format!("{qscheme} axis={axis}")
        }
        TensorKind::Meta => "meta (no data)".into(),
        TensorKind::Unsupported { function } => format!("not materialisable: {function}"),
    }
}

/// Logical bytes of a tensor: elements times element size.
fn tensor_bytes(t: &Tensor) -> u64 {
    numel(t).saturating_mul(t.dtype.size_in_bytes() as u64)
}

fn numel(t: &Tensor) -> u64 {
    t.shape.iter().fold(1u64, |a, &d| a.saturating_mul(d))
}

fn shape_text(shape: &[u64]) -> String {
    format!(
        "[{}]",
        shape
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[derive(Default)]
struct Total {
    tensors: usize,
    elements: u64,
    bytes: u64,
}

/// The JSON document, serialized straight from borrowed data: a checkpoint
/// may hold 100,000 tensors, so no intermediate `Value` per tensor.
#[derive(Serialize)]
struct CheckpointJson<'a> {
    format: &'static str,
    format_description: String,
    path: String,
    details: Value,
    devices: &'a BTreeMap<&'a str, usize>,
    tensors: Vec<TensorJson<'a>>,
    totals: Value,
    shared_storages: Vec<SharedJson<'a>>,
    values: Vec<ValueJson<'a>>,
}

#[derive(Serialize)]
struct TensorJson<'a> {
    path: &'a str,
    dtype: &'static str,
    shape: &'a [u64],
    strides: &'a [u64],
    storage_offset: u64,
    device: &'a str,
    storage_key: Option<&'a str>,
    bytes: u64,
    kind: Value,
    requires_grad: bool,
    conj: bool,
    neg: bool,
    source: &'a str,
}

impl<'a> TensorJson<'a> {
    fn of(t: &'a Tensor) -> Self {
        TensorJson {
            path: &t.path,
            dtype: t.dtype.torch_name(),
            shape: &t.shape,
            strides: &t.strides,
            storage_offset: t.storage_offset,
            device: &t.device,
            storage_key: t.storage_key.as_deref(),
            bytes: tensor_bytes(t),
            kind: kind_json(&t.kind),
            requires_grad: t.requires_grad,
            conj: t.conj,
            neg: t.neg,
            source: &t.source,
        }
    }
}

#[derive(Serialize)]
struct SharedJson<'a> {
    key: &'a str,
    location: &'a str,
    bytes: Option<u64>,
    tensors: &'a [String],
}

#[derive(Serialize)]
struct ValueJson<'a> {
    path: &'a str,
    repr: &'a str,
}

pub fn report(path: &Path, ckpt: &Checkpoint, tree: bool, json: bool) -> Report {
    let info = ckpt.info();
    let format = ckpt.format();
    let tensors = ckpt.tensors();
    let storages = ckpt.storages();

    let mut devices: BTreeMap<&str, usize> = BTreeMap::new();
    for s in storages {
        *devices.entry(s.location.as_str()).or_default() += 1;
    }
    let mut by_dtype: BTreeMap<String, Total> = BTreeMap::new();
    for t in tensors {
        let total = by_dtype.entry(t.dtype.to_string()).or_default();
        total.tensors += 1;
        total.elements += numel(t);
        total.bytes += tensor_bytes(t);
    }
    let parameters: u64 = tensors.iter().map(numel).sum();
    let storage_bytes: u64 = storages.iter().filter_map(|s| s.nbytes()).sum();
    let shared: Vec<_> = storages.iter().filter(|s| s.tensors.len() > 1).collect();

    if json {
        return Report::json(&CheckpointJson {
            format: format.name(),
            format_description: format.to_string(),
            path: path.display().to_string(),
            details: json!({
                "archive_name": info.archive_name,
                "pickles": ckpt.pickles().iter().map(|p| json!({
                    "name": p.name, "protocol": p.protocol,
                    "offset": p.byte_range.start, "bytes": p.byte_range.end - p.byte_range.start,
                })).collect::<Vec<_>>(),
                "byteorder": info.byteorder.map(|b| b.as_str()),
                "version": info.version,
                "version_record": info.version_record,
                "format_version": info.format_version,
                "storage_alignment": info.storage_alignment,
                "zip64": info.zip64,
                "records": info.records.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
                "torch_version": info.torch_version,
                "pt2_schema_version": info.pt2_schema_version,
                "legacy_protocol_version": info.legacy_protocol_version,
                "module_classes": info.module_classes.iter().map(|(p, c)| json!({"path": p, "class": c})).collect::<Vec<_>>(),
            }),
            devices: &devices,
            tensors: tensors.iter().map(TensorJson::of).collect(),
            totals: json!({
                "tensors": tensors.len(),
                "parameters": parameters,
                "tensor_bytes": by_dtype.values().map(|t| t.bytes).sum::<u64>(),
                "storages": storages.len(),
                "storage_bytes": storage_bytes,
                "by_dtype": by_dtype.iter().map(|(k, t)| (k.clone(), json!({
                    "tensors": t.tensors, "elements": t.elements, "bytes": t.bytes
                }))).collect::<serde_json::Map<_, _>>(),
            }),
            shared_storages: shared
                .iter()
                .map(|s| SharedJson {
                    key: &s.key,
                    location: &s.location,
                    bytes: s.nbytes(),
                    tensors: &s.tensors,
                })
                .collect(),
            values: ckpt
                .values()
                .iter()
                .map(|v| ValueJson {
                    path: &v.path,
                    repr: &v.repr,
                })
                .collect(),
        });
    }

    let mut t = String::new();
    let _ = writeln!(t, "{}: {format}", path.display());
    if let Some(a) = &info.archive_name {
        let _ = writeln!(t, "  archive        {a}/");
    }
    for p in ckpt.pickles() {
        let _ = writeln!(
            t,
            "  pickle         {} (protocol {}, {})",
            p.name,
            p.protocol.map_or("?".into(), |v| v.to_string()),
            human_bytes(p.byte_range.end - p.byte_range.start)
        );
    }
    if let Some(b) = info.byteorder {
        let _ = writeln!(t, "  byteorder      {}", b.as_str());
    }
    if let Some(v) = &info.version {
        let _ = writeln!(
            t,
            "  version        {v} ({})",
            info.version_record.as_deref().unwrap_or("?")
        );
    }
    if let Some(v) = &info.torch_version {
        let _ = writeln!(t, "  torch          {v}");
    }
    let devices_text: Vec<String> = devices
        .iter()
        .map(|(d, n)| format!("{n} storage{} on {d}", if *n == 1 { "" } else { "s" }))
        .collect();
    let _ = writeln!(
        t,
        "devices: {}",
        if devices_text.is_empty() {
            "none".into()
        } else {
            devices_text.join(", ")
        }
    );
    if tree {
        tree_text(&mut t, ckpt);
    } else {
        let _ = writeln!(t, "tensors ({}):", tensors.len());
        let width = tensors
            .iter()
            .map(|x| x.path.len())
            .max()
            .unwrap_or(4)
            .clamp(4, 60);
        for x in tensors {
            let name = if x.path.is_empty() { "(root)" } else { &x.path };
            let line = format!(
                "  {name:<width$}  {:<14} {:<18} {:<7} {:>12}  {}",
                x.dtype.to_string(),
                shape_text(&x.shape),
                x.device,
                human_bytes(tensor_bytes(x)),
                kind_text(&x.kind)
            );
            let _ = writeln!(t, "{}", line.trim_end());
        }
        if !ckpt.values().is_empty() {
            let _ = writeln!(t, "values:");
            for v in ckpt.values() {
                let name = if v.path.is_empty() { "(root)" } else { &v.path };
                let _ = writeln!(t, "  {name} = {}", v.repr);
            }
        }
    }
    let _ = writeln!(
        t,
        "totals: {} tensors, {parameters} elements, {} in {} storages",
        tensors.len(),
        human_bytes(storage_bytes),
        storages.len()
    );
    for (dtype, total) in &by_dtype {
        let _ = writeln!(
            t,
            "  {dtype:<14} {:>6} tensors {:>14} elements {:>12}",
            total.tensors,
            total.elements,
            human_bytes(total.bytes)
        );
    }
    if !shared.is_empty() {
        let _ = writeln!(t, "shared storages:");
        for s in &shared {
            let _ = writeln!(
                t,
                "  storage {} ({}, {}): {}",
                s.key,
                s.location,
                s.nbytes().map_or("?".into(), human_bytes),
                s.tensors.join(", ")
            );
        }
    }
    Report::Text(t)
}

/// Tensors and values in walk order, indented by nesting depth.
fn tree_text(t: &mut String, ckpt: &Checkpoint) {
    let _ = writeln!(t, "tree:");
    for item in ckpt.tree() {
        let indent = "  ".repeat(item.depth + 1);
        let text = match &item.node {
            TreeNode::Container { len } => format!("({len} entries)"),
            TreeNode::Tensor(i) => {
                let x = &ckpt.tensors()[*i];
                format!(
                    "{} {} {} {}",
                    x.dtype,
                    shape_text(&x.shape),
                    x.device,
                    kind_text(&x.kind)
                )
                .trim_end()
                .to_string()
            }
            TreeNode::Value(i) => format!("= {}", ckpt.values()[*i].repr),
        };
        let _ = writeln!(t, "{indent}{}: {text}", item.key);
    }
}

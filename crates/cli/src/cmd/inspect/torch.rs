//! `netport inspect` for PyTorch checkpoints (zip, legacy, TorchScript,
//! `.pt2`): format details, devices, the tensor table, totals by dtype,
//! non-tensor values and shared storages, as a table, a tree (`--tree`) or
//! JSON (fields in docs/cli.md), from the library's `CheckpointSummary`. No
//! tensor bytes are read.

use super::Args;
use crate::json::{ByDType, DTypeTotals, by_dtype_text};
use crate::output::Report;
use crate::units::human_bytes;
use netport_torch::summary::{CheckpointSummary, shape_bytes};
use netport_torch::{Checkpoint, Quantization, TensorKind, TensorRef, TreeNode};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// A tensor's kind: a string, or an object naming what is special.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum KindJson<'a> {
    #[serde(rename = "tensor")]
    Tensor,
    #[serde(rename = "parameter")]
    Parameter,
    #[serde(rename = "meta")]
    Meta,
    Subclass(&'a str),
    Quantized(QuantJson<'a>),
    Unsupported(&'a str),
}

#[derive(Serialize)]
#[serde(untagged)]
enum QuantJson<'a> {
    PerTensor {
        qscheme: &'a str,
        scale: f64,
        zero_point: i64,
    },
    PerChannel {
        qscheme: &'a str,
        axis: i64,
    },
}

fn kind_json(kind: &TensorKind) -> KindJson<'_> {
    match kind {
        TensorKind::Dense => KindJson::Tensor,
        TensorKind::Parameter => KindJson::Parameter,
        TensorKind::Subclass { class } => KindJson::Subclass(class),
        TensorKind::Quantized(q) => KindJson::Quantized(match &**q {
            Quantization::PerTensor {
                qscheme,
                scale,
                zero_point,
            } => QuantJson::PerTensor {
                qscheme,
                scale: *scale,
                zero_point: *zero_point,
            },
            Quantization::PerChannel { qscheme, axis, .. } => QuantJson::PerChannel {
                qscheme,
                axis: *axis,
            },
        }),
        TensorKind::Meta => KindJson::Meta,
        TensorKind::Unsupported { function } => KindJson::Unsupported(function),
    }
}

fn kind_text(kind: &TensorKind) -> String {
    match kind {
        TensorKind::Dense => String::new(),
        TensorKind::Parameter => "parameter".into(),
        TensorKind::Subclass { class } => format!("subclass {class}"),
        TensorKind::Quantized(q) => match &**q {
            Quantization::PerTensor {
                qscheme,
                scale,
                zero_point,
            } => format!("{qscheme} scale={scale} zero_point={zero_point}"),
            Quantization::PerChannel { qscheme, axis, .. } => format!("{qscheme} axis={axis}"),
        },
        TensorKind::Meta => "meta (no data)".into(),
        TensorKind::Unsupported { function } => format!("not materialisable: {function}"),
    }
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

#[derive(Serialize)]
struct DetailsJson<'a> {
    archive_name: Option<&'a str>,
    pickles: Vec<PickleJson<'a>>,
    byteorder: Option<&'static str>,
    version: Option<&'a str>,
    version_record: Option<&'a str>,
    format_version: Option<&'a str>,
    storage_alignment: Option<&'a str>,
    zip64: bool,
    records: Vec<&'a str>,
    torch_version: Option<&'a str>,
    pt2_schema_version: Option<&'a str>,
    legacy_protocol_version: Option<i64>,
    module_classes: Vec<ModuleClassJson<'a>>,
}

#[derive(Serialize)]
struct PickleJson<'a> {
    name: &'a str,
    protocol: Option<u8>,
    offset: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct ModuleClassJson<'a> {
    path: &'a str,
    class: &'a str,
}

/// Totals over the checkpoint; `by_dtype` has the shape of every format.
#[derive(Serialize)]
struct TotalsJson {
    tensors: usize,
    parameters: u64,
    tensor_bytes: u64,
    storages: usize,
    storage_bytes: u64,
    by_dtype: ByDType,
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
    kind: KindJson<'a>,
    requires_grad: bool,
    conj: bool,
    neg: bool,
    source: &'a str,
}

impl<'a> TensorJson<'a> {
    fn of(t: TensorRef<'a>) -> Self {
        TensorJson {
            path: t.path(),
            dtype: t.dtype().torch_name(),
            shape: t.shape(),
            strides: t.strides(),
            storage_offset: t.storage_offset(),
            device: t.device(),
            storage_key: t.storage_key(),
            bytes: shape_bytes(t.dtype(), t.shape()),
            kind: kind_json(t.kind()),
            requires_grad: t.requires_grad(),
            conj: t.conj(),
            neg: t.neg(),
            source: t.source(),
        }
    }
}

#[derive(Serialize)]
struct SharedJson<'a> {
    key: &'a str,
    location: &'a str,
    bytes: Option<u64>,
    tensors: Vec<&'a str>,
}

#[derive(Serialize)]
struct ValueJson<'a> {
    path: &'a str,
    repr: &'a str,
}

/// The library's totals in the shared dtype vocabulary (torch names already).
fn by_dtype(s: &CheckpointSummary) -> ByDType {
    s.by_dtype
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                DTypeTotals {
                    tensors: t.tensors,
                    elements: t.elements,
                    bytes: t.bytes,
                    unsized_tensors: 0,
                },
            )
        })
        .collect()
}

fn details(ckpt: &Checkpoint) -> DetailsJson<'_> {
    let info = ckpt.info();
    DetailsJson {
        archive_name: info.archive_name.as_deref(),
        pickles: ckpt
            .pickles()
            .iter()
            .map(|p| PickleJson {
                name: &p.name,
                protocol: p.protocol,
                offset: p.byte_range.start,
                bytes: p.byte_range.end - p.byte_range.start,
            })
            .collect(),
        byteorder: info.byteorder.map(|b| b.as_str()),
        version: info.version.as_deref(),
        version_record: info.version_record.as_deref(),
        format_version: info.format_version.as_deref(),
        storage_alignment: info.storage_alignment.as_deref(),
        zip64: info.zip64,
        records: info.records.iter().map(|r| r.name.as_str()).collect(),
        torch_version: info.torch_version.as_deref(),
        pt2_schema_version: info.pt2_schema_version.as_deref(),
        legacy_protocol_version: info.legacy_protocol_version,
        module_classes: info
            .module_classes
            .iter()
            .map(|(path, class)| ModuleClassJson { path, class })
            .collect(),
    }
}

/// The report of a PyTorch checkpoint.
pub fn report(path: &Path, ckpt: &Checkpoint, args: &Args) -> anyhow::Result<Report> {
    let summary = CheckpointSummary::of(ckpt);
    if args.json {
        let format = ckpt.format();
        // Streamed, field by field: the document of a 50,000-tensor
        // checkpoint is tens of MB, and its tensor list is rendered on two
        // threads.
        crate::output::print_json_object(|o| {
            o.field("format", &format.name())?;
            o.field("format_description", &format.to_string())?;
            o.field("path", &path.display().to_string())?;
            o.field("details", &details(ckpt))?;
            o.field("devices", &summary.devices)?;
            o.items("tensors", summary.tensors, |i| {
                ckpt.tensor_ref(i).map(TensorJson::of)
            })?;
            o.field(
                "totals",
                &TotalsJson {
                    tensors: summary.tensors,
                    parameters: summary.parameters,
                    tensor_bytes: summary.tensor_bytes,
                    storages: summary.storages,
                    storage_bytes: summary.storage_bytes,
                    by_dtype: by_dtype(&summary),
                },
            )?;
            let shared: Vec<_> = summary
                .shared_storages
                .iter()
                .filter_map(|&i| ckpt.storage_ref(i))
                .map(|s| SharedJson {
                    key: s.key(),
                    location: s.location(),
                    bytes: s.nbytes(),
                    tensors: s.tensors().collect(),
                })
                .collect();
            o.field("shared_storages", &shared)?;
            let values: Vec<_> = ckpt
                .values()
                .iter()
                .map(|v| ValueJson {
                    path: &v.path,
                    repr: &v.repr,
                })
                .collect();
            o.field("values", &values)
        })?;
        return Ok(Report::Printed);
    }
    Ok(Report::Text(text(path, ckpt, &summary, args.tree)))
}

/// The readable report.
fn text(path: &Path, ckpt: &Checkpoint, summary: &CheckpointSummary, tree: bool) -> String {
    let info = ckpt.info();
    let format = ckpt.format();
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
    let devices_text: Vec<String> = summary
        .devices
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
        let _ = writeln!(t, "tensors ({}):", ckpt.tensor_refs().len());
        let width = ckpt
            .tensor_refs()
            .map(|x| x.path().len())
            .max()
            .unwrap_or(4)
            .clamp(4, 60);
        for x in ckpt.tensor_refs() {
            let name = if x.path().is_empty() {
                "(root)"
            } else {
                x.path()
            };
            let line = format!(
                "  {name:<width$}  {:<14} {:<18} {:<7} {:>12}  {}",
                x.dtype().to_string(),
                shape_text(x.shape()),
                x.device(),
                human_bytes(shape_bytes(x.dtype(), x.shape())),
                kind_text(x.kind())
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
        "totals: {} tensors, {} elements, {} in {} storages",
        summary.tensors,
        summary.parameters,
        human_bytes(summary.storage_bytes),
        summary.storages
    );
    by_dtype_text(&mut t, &by_dtype(summary));
    if !summary.shared_storages.is_empty() {
        let _ = writeln!(t, "shared storages:");
        for &i in &summary.shared_storages {
            let Some(s) = ckpt.storage_ref(i) else {
                continue;
            };
            let _ = writeln!(
                t,
                "  storage {} ({}, {}): {}",
                s.key(),
                s.location(),
                s.nbytes().map_or("?".into(), human_bytes),
                s.tensors().collect::<Vec<_>>().join(", ")
            );
        }
    }
    t
}

/// Tensors and values in walk order, indented by nesting depth.
fn tree_text(t: &mut String, ckpt: &Checkpoint) {
    let _ = writeln!(t, "tree:");
    for item in ckpt.tree() {
        let indent = "  ".repeat(item.depth + 1);
        let text = match &item.node {
            TreeNode::Container { len } => format!("({len} entries)"),
            TreeNode::Tensor(i) => match ckpt.tensor_ref(*i) {
                Some(x) => format!(
                    "{} {} {} {}",
                    x.dtype(),
                    shape_text(x.shape()),
                    x.device(),
                    kind_text(x.kind())
                )
                .trim_end()
                .to_string(),
                None => "?".into(),
            },
            TreeNode::Value(i) => format!("= {}", ckpt.values()[*i].repr),
        };
        let _ = writeln!(t, "{indent}{}: {text}", item.key);
    }
}

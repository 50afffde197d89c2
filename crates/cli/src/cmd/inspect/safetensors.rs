//! `netport inspect` for safetensors files: the header's tensors, metadata
//! and shared-tensor aliases, with totals by dtype in the shape every format
//! uses (fields in docs/cli.md). No tensor bytes are read.

use super::Args;
use crate::json::{ByDType, DTypeTotals, by_dtype_text};
use crate::output::Report;
use crate::units::human_bytes;
use netport_safetensors::{SafetensorsFile, SafetensorsTensor};
use netport_tensor::DType;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Serialize)]
struct FileJson<'a> {
    format: &'static str,
    path: String,
    header_bytes: u64,
    metadata: &'a BTreeMap<String, String>,
    aliases: Vec<AliasJson>,
    tensors: Vec<TensorJson<'a>>,
    totals: TotalsJson,
}

#[derive(Serialize)]
struct AliasJson {
    name: String,
    kept: String,
}

#[derive(Serialize)]
struct TensorJson<'a> {
    name: &'a str,
    dtype: &'static str,
    shape: &'a [u64],
    bytes: u64,
    data_offsets: [u64; 2],
}

#[derive(Serialize)]
struct TotalsJson {
    tensors: usize,
    parameters: u64,
    tensor_bytes: u64,
    by_dtype: ByDType,
}

fn numel(t: &SafetensorsTensor) -> u64 {
    t.shape.iter().fold(1u64, |a, &d| a.saturating_mul(d))
}

fn bytes(t: &SafetensorsTensor) -> u64 {
    t.data_offsets.1.saturating_sub(t.data_offsets.0)
}

fn totals(file: &SafetensorsFile) -> TotalsJson {
    let mut by: BTreeMap<DType, DTypeTotals> = BTreeMap::new();
    for t in file.tensors() {
        let total = by.entry(t.dtype).or_default();
        total.tensors += 1;
        total.elements = total.elements.saturating_add(numel(t));
        total.bytes = total.bytes.saturating_add(bytes(t));
    }
    let by_dtype: ByDType = by
        .into_iter()
        .map(|(d, t)| (d.torch_name().to_owned(), t))
        .collect();
    TotalsJson {
        tensors: file.tensors().len(),
        parameters: by_dtype.values().map(|t| t.elements).sum(),
        tensor_bytes: by_dtype.values().map(|t| t.bytes).sum(),
        by_dtype,
    }
}

/// The report of a safetensors file.
pub fn report(path: &Path, file: &SafetensorsFile, args: &Args) -> anyhow::Result<Report> {
    let totals = totals(file);
    if args.json {
        return Report::json(&FileJson {
            format: "safetensors",
            path: path.display().to_string(),
            header_bytes: file.header_len(),
            metadata: file.metadata(),
            aliases: file
                .aliases()
                .into_iter()
                .map(|(name, kept)| AliasJson { name, kept })
                .collect(),
            tensors: file
                .tensors()
                .iter()
                .map(|t| TensorJson {
                    name: &t.name,
                    dtype: t.dtype.torch_name(),
                    shape: &t.shape,
                    bytes: bytes(t),
                    data_offsets: [t.data_offsets.0, t.data_offsets.1],
                })
                .collect(),
            totals,
        });
    }
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{}: safetensors (header of {})",
        path.display(),
        human_bytes(file.header_len())
    );
    for (k, v) in file.metadata() {
        let _ = writeln!(t, "  metadata       {k} = {v}");
    }
    let _ = writeln!(t, "tensors ({}):", file.tensors().len());
    let width = file
        .tensors()
        .iter()
        .map(|x| x.name.len())
        .max()
        .unwrap_or(4)
        .clamp(4, 60);
    for x in file.tensors() {
        let shape: Vec<String> = x.shape.iter().map(u64::to_string).collect();
        let _ = writeln!(
            t,
            "  {:<width$}  {:<14} {:<18} {:>12}",
            x.name,
            x.dtype.torch_name(),
            format!("[{}]", shape.join(", ")),
            human_bytes(bytes(x))
        );
    }
    let _ = writeln!(
        t,
        "totals: {} tensors, {} elements, {}",
        totals.tensors,
        totals.parameters,
        human_bytes(totals.tensor_bytes)
    );
    by_dtype_text(&mut t, &totals.by_dtype);
    Ok(Report::Text(t))
}

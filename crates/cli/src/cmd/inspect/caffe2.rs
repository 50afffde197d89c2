//! `netport inspect` for Caffe2: one NetDef (binary or text), or an
//! init_net + predict_net pair told apart by content, as a table or JSON
//! (fields in docs/cli.md). Long name lists (external inputs and outputs)
//! are summarised in the table unless `--all`; the JSON has them all.

use super::Args;
use crate::json::{ByDType, DTypeTotals, by_dtype_text, dtype_key};
use crate::output::{Report, preview};
use crate::units::human_bytes;
use netport_caffe2::model::{PairOrder, is_init_net};
use netport_caffe2::proto::NetDef;
use netport_caffe2::summary::dtype_name;
use netport_caffe2::{Caffe2Model, DTypeTotal, FillSummary, ModelSummary, NetSummary};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// Names shown before `... (N more)` without `--all`.
const PREVIEW: usize = 5;

#[derive(Serialize)]
struct NetFileJson<'a> {
    format: &'static str,
    path: String,
    /// `init_net` when every op is a fill op, else `predict_net`.
    role: &'static str,
    net: NetJson<'a>,
}

#[derive(Serialize)]
struct PairJson<'a> {
    format: &'static str,
    init_net_path: String,
    predict_net_path: String,
    /// How the files were told apart: `as_given`, `swapped`, `unclear`.
    pair_order: &'static str,
    init_net: NetJson<'a>,
    predict_net: NetJson<'a>,
    params: ParamsJson,
    data_inputs: &'a [String],
    weight_inputs: &'a [String],
}

#[derive(Serialize)]
struct ParamsJson {
    bytes: u64,
    by_dtype: ByDType,
}

#[derive(Serialize)]
struct NetJson<'a> {
    name: Option<&'a str>,
    #[serde(rename = "type")]
    net_type: Option<&'a str>,
    op_count: usize,
    op_types: Vec<OpTypeJson<'a>>,
    external_inputs: &'a [String],
    external_outputs: &'a [String],
    device_option: Option<DeviceJson>,
    nested_nets: usize,
    fills: Vec<FillJson<'a>>,
    fill_totals: ByDType,
}

#[derive(Serialize)]
struct OpTypeJson<'a> {
    op_type: &'a str,
    count: usize,
}

#[derive(Serialize)]
struct DeviceJson {
    device_type: Option<i32>,
    device_id: Option<i32>,
}

#[derive(Serialize)]
struct FillJson<'a> {
    op_type: &'a str,
    output: &'a str,
    known: bool,
    dtype: Option<i32>,
    dtype_name: Option<&'static str>,
    shape: Option<&'a [i64]>,
    shape_from_input: bool,
    value_count: Option<u64>,
    elements: Option<u64>,
    bytes: Option<u64>,
}

/// Caffe2 totals in the shared dtype vocabulary.
fn by_dtype(totals: &[DTypeTotal]) -> ByDType {
    let mut by = ByDType::new();
    for t in totals {
        let key = match t.dtype {
            Some(code) => dtype_key(
                t.tensor_dtype(),
                Some(&dtype_name(code).map_or_else(|| format!("code {code}"), str::to_owned)),
            ),
            None => dtype_key(None, None),
        };
        crate::json::add(
            &mut by,
            key,
            DTypeTotals {
                tensors: t.tensors,
                elements: t.elements,
                bytes: t.bytes,
                unsized_tensors: t.unsized_tensors,
            },
        );
    }
    by
}

fn fill_json(f: &FillSummary) -> FillJson<'_> {
    FillJson {
        op_type: &f.op_type,
        output: &f.output,
        known: f.known,
        dtype: f.dtype,
        dtype_name: f.dtype_name(),
        shape: f.shape.as_deref(),
        shape_from_input: f.shape_from_input,
        value_count: f.value_count,
        elements: f.element_count,
        bytes: f.byte_count,
    }
}

fn net_json(s: &NetSummary) -> NetJson<'_> {
    NetJson {
        name: s.name.as_deref(),
        net_type: s.net_type.as_deref(),
        op_count: s.op_count,
        op_types: s
            .op_types
            .iter()
            .map(|c| OpTypeJson {
                op_type: &c.op_type,
                count: c.count,
            })
            .collect(),
        external_inputs: &s.external_inputs,
        external_outputs: &s.external_outputs,
        device_option: s.device_option.as_ref().map(|d| DeviceJson {
            device_type: d.device_type,
            device_id: d.device_id,
        }),
        nested_nets: s.nested_nets,
        fills: s.fills.iter().map(fill_json).collect(),
        fill_totals: by_dtype(&s.fill_totals),
    }
}

/// A list of names: all of them one per line with `--all`, else the count
/// and the first few.
fn names_text(t: &mut String, label: &str, names: &[String], all: bool) {
    if names.is_empty() {
        let _ = writeln!(t, "  {label}: none");
    } else if all {
        let _ = writeln!(t, "  {label} ({}):", names.len());
        for n in names {
            let _ = writeln!(t, "    {n}");
        }
    } else {
        let _ = writeln!(
            t,
            "  {label} ({}): {}",
            names.len(),
            preview(names, PREVIEW)
        );
    }
}

/// A predict net's external inputs, split into what the caller feeds and
/// the weights the init net makes.
fn split_inputs_text(t: &mut String, data: &[String], weights: &[String], all: bool) {
    let n = data.len() + weights.len();
    if all {
        let _ = writeln!(t, "  external inputs ({n}):");
        for d in data {
            let _ = writeln!(t, "    {d}  (data)");
        }
        for w in weights {
            let _ = writeln!(t, "    {w}  (weight)");
        }
    } else {
        let _ = writeln!(
            t,
            "  external inputs ({n}): {} data ({}); {} weights from the init net ({})",
            data.len(),
            preview(data, PREVIEW),
            weights.len(),
            preview(weights, PREVIEW)
        );
    }
}

fn net_text(t: &mut String, title: &str, s: &NetSummary, split: Option<&ModelSummary>, all: bool) {
    let _ = writeln!(
        t,
        "{title}: {} ({} ops{})",
        s.name.as_deref().unwrap_or("(unnamed)"),
        s.op_count,
        match s.net_type.as_deref() {
            Some(ty) if !ty.is_empty() => format!(", type {ty}"),
            _ => String::new(),
        }
    );
    if let Some(d) = &s.device_option {
        let _ = writeln!(
            t,
            "  device_option  device_type {} device_id {}",
            d.device_type(),
            d.device_id()
        );
    }
    match split {
        Some(m) => split_inputs_text(t, &m.data_inputs, &m.weight_inputs, all),
        None => names_text(t, "external inputs", &s.external_inputs, all),
    }
    names_text(t, "external outputs", &s.external_outputs, all);
    for c in &s.op_types {
        let _ = writeln!(t, "  {:>6}  {}", c.count, c.op_type);
    }
    if !s.fills.is_empty() {
        let _ = writeln!(t, "  fills:");
        for f in &s.fills {
            let shape = match (&f.shape, f.shape_from_input) {
                (_, true) => "shape of its input".to_string(),
                (Some(s), _) => format!("{s:?}"),
                (None, _) => "[]".to_string(),
            };
            let _ = writeln!(
                t,
                "    {:<28} {:<24} {:<8} {:<20} {}",
                f.output,
                f.op_type,
                f.dtype_name().unwrap_or("?"),
                shape,
                f.byte_count.map_or("?".into(), human_bytes)
            );
        }
    }
    if s.nested_nets > 0 {
        let _ = writeln!(t, "  nets nested in arguments: {}", s.nested_nets);
    }
    let longest = s.external_inputs.len().max(s.external_outputs.len());
    if !all && longest > PREVIEW {
        let _ = writeln!(t, "  (name lists shortened; --all prints every name)");
    }
}

/// The report of one net.
pub fn net_report(path: &Path, net: &NetDef, args: &Args) -> anyhow::Result<Report> {
    let s = NetSummary::of(net);
    let init = is_init_net(net);
    if args.json {
        return Report::json(&NetFileJson {
            format: "caffe2_net",
            path: path.display().to_string(),
            role: if init { "init_net" } else { "predict_net" },
            net: net_json(&s),
        });
    }
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{}: Caffe2 NetDef, {}",
        path.display(),
        if init {
            "an init net (fill ops only)"
        } else {
            "a predict net (not fill ops only)"
        }
    );
    net_text(&mut t, "net", &s, None, args.all);
    if !s.fill_totals.is_empty() {
        let _ = writeln!(t, "filled tensors:");
        by_dtype_text(&mut t, &by_dtype(&s.fill_totals));
    }
    Ok(Report::Text(t))
}

fn order_name(order: PairOrder) -> &'static str {
    match order {
        PairOrder::AsGiven => "as_given",
        PairOrder::Swapped => "swapped",
        PairOrder::Unclear => "unclear",
    }
}

fn pair_report(
    init_path: &Path,
    predict_path: &Path,
    order: PairOrder,
    model: &Caffe2Model,
    args: &Args,
) -> anyhow::Result<Report> {
    let s = ModelSummary::of(model);
    if args.json {
        return Report::json(&PairJson {
            format: "caffe2_pair",
            init_net_path: init_path.display().to_string(),
            predict_net_path: predict_path.display().to_string(),
            pair_order: order_name(order),
            init_net: net_json(&s.init),
            predict_net: net_json(&s.predict),
            params: ParamsJson {
                bytes: s.param_bytes,
                by_dtype: by_dtype(&s.params_by_dtype),
            },
            data_inputs: &s.data_inputs,
            weight_inputs: &s.weight_inputs,
        });
    }
    let mut t = String::new();
    let _ = writeln!(t, "Caffe2 model:");
    let _ = writeln!(
        t,
        "  init net     {}{}",
        init_path.display(),
        if order == PairOrder::Unclear {
            ""
        } else {
            " (fill ops only)"
        }
    );
    let _ = writeln!(t, "  predict net  {}", predict_path.display());
    match order {
        PairOrder::AsGiven => {}
        PairOrder::Swapped => {
            let _ = writeln!(
                t,
                "  (given predict net first; told apart by content: the init net holds fill ops only)"
            );
        }
        PairOrder::Unclear => {
            let _ = writeln!(
                t,
                "  (cannot tell by content, both or neither net holds fill ops only: taken as given, init net first)"
            );
        }
    }
    net_text(&mut t, "init net", &s.init, None, args.all);
    net_text(&mut t, "predict net", &s.predict, Some(&s), args.all);
    let _ = writeln!(t, "data inputs: {}", s.data_inputs.join(", "));
    let _ = writeln!(t, "parameters: {}", human_bytes(s.param_bytes));
    by_dtype_text(&mut t, &by_dtype(&s.params_by_dtype));
    Ok(Report::Text(t))
}

/// The report of the pair in a directory.
pub fn pair_in_dir(dir: &Path, args: &Args) -> anyhow::Result<Report> {
    let (init, predict) = Caffe2Model::files_in_dir(dir)?;
    pair(&init, &predict, args)
}

/// The report of two files holding a pair, in either order.
pub fn pair(first: &Path, second: &Path, args: &Args) -> anyhow::Result<Report> {
    let (model, order) = Caffe2Model::load_any_order(first, second)?;
    let (init, predict) = match order {
        PairOrder::Swapped => (second, first),
        PairOrder::AsGiven | PairOrder::Unclear => (first, second),
    };
    pair_report(init, predict, order, &model, args)
}

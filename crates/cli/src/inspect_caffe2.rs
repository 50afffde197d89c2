//! `netport inspect` for Caffe2: one NetDef (binary or text), or an
//! init_net + predict_net pair, as a table or JSON (fields in docs/cli.md).

use crate::inspect::{Report, human_bytes};
use netport_caffe2::proto::NetDef;
use netport_caffe2::{Caffe2Model, DTypeTotal, ModelSummary, NetSummary};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;

fn totals_json(totals: &[DTypeTotal]) -> Value {
    json!(
        totals
            .iter()
            .map(|t| json!({
                "dtype": t.dtype,
                "dtype_name": t.dtype.and_then(netport_caffe2::summary::dtype_name),
                "tensors": t.tensors,
                "elements": t.elements,
                "bytes": t.bytes,
                "unsized_tensors": t.unsized_tensors,
            }))
            .collect::<Vec<_>>()
    )
}

fn net_json(s: &NetSummary) -> Value {
    json!({
        "name": s.name,
        "type": s.net_type,
        "op_count": s.op_count,
        "op_types": s.op_types.iter().map(|c| json!({"op_type": c.op_type, "count": c.count})).collect::<Vec<_>>(),
        "external_inputs": s.external_inputs,
        "external_outputs": s.external_outputs,
        "device_option": s.device_option.as_ref().map(|d| json!({
            "device_type": d.device_type,
            "device_id": d.device_id,
        })),
        "nested_nets": s.nested_nets,
        "fills": s.fills.iter().map(|f| json!({
            "op_type": f.op_type,
            "output": f.output,
            "known": f.known,
            "dtype": f.dtype,
            "dtype_name": f.dtype_name(),
            "shape": f.shape,
            "shape_from_input": f.shape_from_input,
            "value_count": f.value_count,
            "elements": f.element_count,
            "bytes": f.byte_count,
        })).collect::<Vec<_>>(),
        "fill_totals": totals_json(&s.fill_totals),
    })
}

fn net_text(t: &mut String, title: &str, s: &NetSummary) {
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
    let _ = writeln!(t, "  external inputs  {}", s.external_inputs.join(", "));
    let _ = writeln!(t, "  external outputs {}", s.external_outputs.join(", "));
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
    nested(t, s);
}

fn nested(t: &mut String, s: &NetSummary) {
    if s.nested_nets > 0 {
        let _ = writeln!(t, "  nets nested in arguments: {}", s.nested_nets);
    }
}

fn totals_text(t: &mut String, totals: &[DTypeTotal]) {
    for d in totals {
        let _ = writeln!(
            t,
            "  {:<8} {:>6} tensors {:>14} elements {:>12}{}",
            d.dtype
                .and_then(netport_caffe2::summary::dtype_name)
                .unwrap_or("unknown"),
            d.tensors,
            d.elements,
            human_bytes(d.bytes),
            if d.unsized_tensors > 0 {
                format!(" (+{} of unknown size)", d.unsized_tensors)
            } else {
                String::new()
            }
        );
    }
}

pub fn net_report(path: &Path, net: &NetDef, json: bool) -> Report {
    let s = NetSummary::of(net);
    if json {
        return Report::json(&json!({
            "format": "caffe2_net",
            "path": path.display().to_string(),
            "net": net_json(&s),
        }));
    }
    let mut t = String::new();
    let _ = writeln!(t, "{}: Caffe2 NetDef", path.display());
    net_text(&mut t, "net", &s);
    if !s.fill_totals.is_empty() {
        let _ = writeln!(t, "filled tensors:");
        totals_text(&mut t, &s.fill_totals);
    }
    Report::Text(t)
}

fn pair_report(init_path: &Path, predict_path: &Path, model: &Caffe2Model, json: bool) -> Report {
    let s = ModelSummary::of(model);
    if json {
        return Report::json(&json!({
        "format": "caffe2_pair",
        "init_net_path": init_path.display().to_string(),
        "predict_net_path": predict_path.display().to_string(),
        "init_net": net_json(&s.init),
        "predict_net": net_json(&s.predict),
        "params": {
            "bytes": s.param_bytes,
            "by_dtype": totals_json(&s.params_by_dtype),
        },
        "data_inputs": s.data_inputs,
        }));
    }
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Caffe2 model: {} + {}",
        init_path.display(),
        predict_path.display()
    );
    net_text(&mut t, "init net", &s.init);
    net_text(&mut t, "predict net", &s.predict);
    let _ = writeln!(t, "data inputs: {}", s.data_inputs.join(", "));
    let _ = writeln!(t, "parameters: {}", human_bytes(s.param_bytes));
    totals_text(&mut t, &s.params_by_dtype);
    Report::Text(t)
}

pub fn pair_in_dir(dir: &Path, json: bool) -> anyhow::Result<Report> {
    let (init, predict) = Caffe2Model::files_in_dir(dir)?;
    pair(&init, &predict, json)
}

pub fn pair(init: &Path, predict: &Path, json: bool) -> anyhow::Result<Report> {
    let model = Caffe2Model::load(init, predict)?;
    Ok(pair_report(init, predict, &model, json))
}

//! `netport diff A B`: compares the tensors of two files, each a PyTorch
//! checkpoint or a safetensors file (see `netport_torch_safetensors::diff`). Exit code 0
//! when identical (same names, every tensor bit-identical), 1 when they
//! differ, 2 on error.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::edits::SelectArgs;
use crate::errors::at;
use crate::exit::Outcome;
use crate::global::Global;
use crate::output::emit;
use netport_torch_safetensors::diff::Status;
use netport_torch_safetensors::{DiffOptions, DiffReport, TensorFile, diff};
use serde::Serialize;

/// Compare the tensors of two checkpoints or safetensors files.
///
/// Names only in A or only in B, dtype and shape mismatches, and for common
/// tensors: bit-identical, equal values, or the largest absolute and
/// relative difference. The name flags apply to both files. Exit code 0
/// when identical, 1 when they differ, 2 on error.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The first file (checkpoint or safetensors).
    #[arg(value_name = "A")]
    pub a: PathBuf,
    /// The second file.
    #[arg(value_name = "B")]
    pub b: PathBuf,
    /// Print one JSON document (fields in docs/cli.md).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub select: SelectArgs,
}

/// The JSON document: the library's report and the two paths.
#[derive(Serialize)]
struct DiffJson<'a> {
    a: &'a str,
    b: &'a str,
    #[serde(flatten)]
    report: &'a DiffReport,
}

fn g(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.6e}"))
}

/// Runs `netport diff`.
pub fn run(args: &Args, _global: &Global) -> anyhow::Result<Outcome> {
    let edits = args.select.edits(None, &[], None)?;
    let (sa, sb) = (args.a.display().to_string(), args.b.display().to_string());
    let a = TensorFile::open(&args.a).map_err(at(&sa))?;
    let b = TensorFile::open(&args.b).map_err(at(&sb))?;
    let r = diff(&a, &b, &DiffOptions { edits })?;
    emit(
        args.json,
        || DiffJson {
            a: &sa,
            b: &sb,
            report: &r,
        },
        || text(&r),
    )?;
    Ok(Outcome::findings_if(!r.identical))
}

/// The readable report.
fn text(r: &DiffReport) -> String {
    let mut t = String::new();
    for n in &r.only_in_a {
        let _ = writeln!(t, "only in A: {n}");
    }
    for n in &r.only_in_b {
        let _ = writeln!(t, "only in B: {n}");
    }
    for d in &r.tensors {
        let dtype = if d.dtype_a == d.dtype_b {
            d.dtype_a.clone()
        } else {
            format!("{} vs {}", d.dtype_a, d.dtype_b)
        };
        match d.status {
            Status::Equal => {}
            Status::EqualValues => {
                let _ = writeln!(t, "equal values: {} ({dtype})", d.name);
            }
            Status::ShapeMismatch => {
                let _ = writeln!(
                    t,
                    "shape mismatch: {} {:?} vs {:?} ({dtype})",
                    d.name, d.shape_a, d.shape_b
                );
            }
            Status::Different => {
                let _ = write!(
                    t,
                    "different: {} ({dtype}): {} of {} elements, max abs {}, max rel {}",
                    d.name,
                    d.differing.unwrap_or(0),
                    d.elements,
                    g(d.max_abs_diff),
                    g(d.max_rel_diff)
                );
                if d.nan_mismatch > 0 || d.inf_mismatch > 0 {
                    let _ = write!(
                        t,
                        ", NaN in one only {}, inf mismatches {}",
                        d.nan_mismatch, d.inf_mismatch
                    );
                }
                let _ = writeln!(t);
            }
            Status::Incomparable => {
                let _ = writeln!(
                    t,
                    "incomparable: {} ({dtype}){}",
                    d.name,
                    d.note
                        .as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    let s = &r.summary;
    let _ = writeln!(
        t,
        "{}: A {} tensors ({}), B {} tensors ({}); {} common: {} equal, {} equal values, {} different, {} shape mismatches, {} incomparable, {} dtype mismatches; {} only in A, {} only in B",
        if r.identical {
            "identical"
        } else {
            "different"
        },
        s.tensors_a,
        r.format_a,
        s.tensors_b,
        r.format_b,
        s.common,
        s.equal,
        s.equal_values,
        s.different,
        s.shape_mismatch,
        s.incomparable,
        s.dtype_mismatch,
        s.only_in_a,
        s.only_in_b
    );
    t
}

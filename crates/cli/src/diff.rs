//! `netport diff A B`: compares the tensors of two files, each a PyTorch
//! checkpoint or a safetensors file (see `netport_torch_safetensors::diff`). Exit code 0
//! when identical (same names, every tensor bit-identical), 1 when they
//! differ, 2 on error.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use netport_torch_safetensors::diff::Status;
use netport_torch_safetensors::{DiffOptions, TensorFile, diff};
use serde_json::json;

/// Arguments of `netport diff`.
#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The first file (checkpoint or safetensors).
    #[arg(value_name = "A")]
    pub a: PathBuf,
    /// The second file.
    #[arg(value_name = "B")]
    pub b: PathBuf,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Remove this prefix from the names of both files before matching
    /// (repeatable, applied repeatedly).
    #[arg(long = "strip-prefix", value_name = "PREFIX")]
    pub strip_prefix: Vec<String>,
    /// Compare only names (after --strip-prefix) matching this.
    #[arg(long, value_name = "REGEX")]
    pub filter: Option<String>,
    /// Leave out names (after --strip-prefix) matching this.
    #[arg(long, value_name = "REGEX")]
    pub exclude: Option<String>,
}

fn g(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.6e}"))
}

/// Runs `netport diff`.
pub fn run(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let edits = crate::convert::edits_from(
        None,
        &args.strip_prefix,
        args.filter.as_deref(),
        args.exclude.as_deref(),
        &[],
        None,
    )?;
    let (sa, sb) = (args.a.display().to_string(), args.b.display().to_string());
    let a = TensorFile::open(&args.a).map_err(crate::convert::at(&sa))?;
    let b = TensorFile::open(&args.b).map_err(crate::convert::at(&sb))?;
    let r = diff(&a, &b, &DiffOptions { edits })?;
    if args.json {
        let mut doc = serde_json::to_value(&r)?;
        doc["a"] = json!(sa);
        doc["b"] = json!(sb);
        crate::output::print(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
    } else {
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
        crate::output::print(&t)?;
    }
    Ok(if r.identical {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

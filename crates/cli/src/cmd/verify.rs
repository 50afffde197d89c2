//! `netport verify A [B]`: runs two models (ONNX and/or Caffe2) on the same
//! inputs with netport's executor and compares every output, and/or
//! compares outputs with recorded references (`--reference`). Exit code 0
//! when all agree, 1 when any differs, 2 on error.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use netport_exec::{Comparison, Tensor, compare};
use serde::Serialize;

use super::run::{InputArgs, gather_inputs, load, read_tensor};
use crate::exit::Outcome;
use crate::global::Global;
use crate::output::emit;

/// Check that two models compute the same outputs (or match references).
///
/// A and B are ONNX files, Caffe2 folders, or Caffe2 predict nets (with
/// --init-a / --init-b). Both run on the same inputs (given, or random from
/// A's declared shapes); outputs are paired by name when B has all of A's
/// output names, else by position. Each pair is equal when every element
/// satisfies |a - b| <= atol + rtol * |b|. --reference compares A's (and
/// B's) outputs with recorded ones. Exit code 0 all agree, 1 any differs,
/// 2 error.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The first model.
    #[arg(value_name = "A")]
    pub a: PathBuf,
    /// The second model (optional with --reference).
    #[arg(value_name = "B")]
    pub b: Option<PathBuf>,
    /// Caffe2 init net of A, when A is a predict net file.
    #[arg(long, value_name = "FILE")]
    pub init_a: Option<PathBuf>,
    /// Caffe2 init net of B, when B is a predict net file.
    #[arg(long, value_name = "FILE")]
    pub init_b: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: InputArgs,
    /// A recorded output: NAME=FILE.npy, or FILE.npy for the outputs in
    /// order. Repeatable.
    #[arg(long = "reference", short = 'r', value_name = "NAME=FILE")]
    pub references: Vec<String>,
    /// Relative tolerance.
    #[arg(long, default_value_t = 1e-3)]
    pub rtol: f64,
    /// Absolute tolerance.
    #[arg(long, default_value_t = 1e-5)]
    pub atol: f64,
    /// Threads each op may use (default: the available cores, as
    /// onnxruntime's intra-op pool; 1 runs on the calling thread only).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Print one JSON document (fields in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

/// One compared pair.
#[derive(Serialize, Debug)]
struct PairJson {
    /// What was compared: `A:B`, `A:reference`, `B:reference`.
    between: String,
    name_a: String,
    name_b: String,
    equal: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    mismatch: Option<String>,
    shape: Vec<usize>,
    dtype_a: String,
    dtype_b: String,
    max_abs_diff: f64,
    max_rel_diff: f64,
    elements: usize,
    differing: usize,
    worst_index: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    worst_values: Option<(f64, f64)>,
}

#[derive(Serialize)]
struct VerifyJson {
    a: String,
    b: Option<String>,
    rtol: f64,
    atol: f64,
    agree: bool,
    pairs: Vec<PairJson>,
}

fn pair(
    between: &str,
    (na, ta): (&str, &Tensor),
    (nb, tb): (&str, &Tensor),
    rtol: f64,
    atol: f64,
) -> PairJson {
    let c: Comparison = compare(ta, tb, rtol, atol);
    PairJson {
        between: between.to_string(),
        name_a: na.to_string(),
        name_b: nb.to_string(),
        equal: c.equal,
        mismatch: c.mismatch,
        shape: ta.shape.clone(),
        dtype_a: ta.dtype().torch_name().to_string(),
        dtype_b: tb.dtype().torch_name().to_string(),
        max_abs_diff: c.max_abs,
        max_rel_diff: c.max_rel,
        elements: c.count,
        differing: c.bad,
        worst_index: c.worst_index,
        worst_values: c.worst_values,
    }
}

/// A named output.
type Named = (String, Tensor);

/// Pairs two output lists: by name when `b` has every name of `a`, else by
/// position (same count required).
fn match_outputs<'a>(
    a: &'a [(String, Tensor)],
    b: &'a [(String, Tensor)],
    what: &str,
) -> anyhow::Result<Vec<(&'a Named, &'a Named)>> {
    if a.iter().all(|(n, _)| b.iter().any(|(m, _)| m == n)) {
        return Ok(a
            .iter()
            .map(|x| (x, b.iter().find(|(m, _)| m == &x.0).expect("checked above")))
            .collect());
    }
    if a.len() != b.len() {
        bail!(
            "{what}: A has {} outputs ({}) and B has {} ({}); they cannot be paired",
            a.len(),
            a.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            b.len(),
            b.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(a.iter().zip(b).collect())
}

fn run_model(
    path: &Path,
    plan: &netport_exec::Plan,
    inputs: &[(String, Tensor)],
) -> anyhow::Result<Vec<(String, Tensor)>> {
    plan.run(inputs)
        .map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Runs `netport verify`.
pub fn run(args: &Args, _global: &Global) -> anyhow::Result<Outcome> {
    if args.b.is_none() && args.references.is_empty() {
        bail!("give a second model B, or --reference outputs to compare with");
    }
    let (plan_a, _) = load(&args.a, args.init_a.as_deref(), args.threads)?;
    let inputs = gather_inputs(&plan_a, &args.inputs)?;
    let out_a = run_model(&args.a, &plan_a, &inputs)?;
    let mut pairs = Vec::new();
    let mut out_b = None;
    if let Some(b) = &args.b {
        let (plan_b, _) = load(b, args.init_b.as_deref(), args.threads)?;
        let names_b: Vec<String> = plan_b.inputs().map(|s| s.name.clone()).collect();
        let inputs_b: Vec<(String, Tensor)> =
            if names_b.iter().all(|n| inputs.iter().any(|(m, _)| m == n)) {
                names_b
                    .iter()
                    .map(|n| {
                        inputs
                            .iter()
                            .find(|(m, _)| m == n)
                            .cloned()
                            .expect("checked above")
                    })
                    .collect()
            } else if names_b.len() == inputs.len() {
                names_b
                    .iter()
                    .cloned()
                    .zip(inputs.iter().map(|(_, t)| t.clone()))
                    .collect()
            } else {
                bail!(
                    "A has {} inputs and B has {} ({}); they cannot be fed the same values",
                    inputs.len(),
                    names_b.len(),
                    names_b.join(", ")
                );
            };
        let ob = run_model(b, &plan_b, &inputs_b)?;
        for (x, y) in match_outputs(&out_a, &ob, "outputs")? {
            pairs.push(pair(
                "A:B",
                (&x.0, &x.1),
                (&y.0, &y.1),
                args.rtol,
                args.atol,
            ));
        }
        out_b = Some(ob);
    }
    if !args.references.is_empty() {
        let mut refs: Vec<(String, Tensor)> = Vec::new();
        for (i, item) in args.references.iter().enumerate() {
            let (name, file) = match item.split_once('=') {
                Some((n, f)) if !Path::new(item).exists() => (n.to_string(), f.to_string()),
                _ => (
                    out_a.get(i).map(|(n, _)| n.clone()).ok_or_else(|| {
                        anyhow!("--reference {item}: A has only {} outputs", out_a.len())
                    })?,
                    item.clone(),
                ),
            };
            let t = read_tensor(Path::new(&file), Some(&name))?;
            refs.push((name, t));
        }
        for (label, outs) in [
            ("A:reference", Some(&out_a)),
            ("B:reference", out_b.as_ref()),
        ] {
            let Some(outs) = outs else { continue };
            for r in &refs {
                let o = outs
                    .iter()
                    .find(|(n, _)| n == &r.0)
                    .or_else(|| {
                        out_a
                            .iter()
                            .position(|(n, _)| n == &r.0)
                            .and_then(|i| outs.get(i))
                    })
                    .ok_or_else(|| anyhow!("--reference {}: no output of that name", r.0))?;
                pairs.push(pair(
                    label,
                    (&o.0, &o.1),
                    (&r.0, &r.1),
                    args.rtol,
                    args.atol,
                ));
            }
        }
    }
    let agree = pairs.iter().all(|p| p.equal);
    let doc = VerifyJson {
        a: args.a.display().to_string(),
        b: args.b.as_ref().map(|b| b.display().to_string()),
        rtol: args.rtol,
        atol: args.atol,
        agree,
        pairs,
    };
    emit(args.json, || &doc, || text(&doc))?;
    Ok(Outcome::findings_if(!agree))
}

fn text(d: &VerifyJson) -> String {
    let mut t = String::new();
    for p in &d.pairs {
        let what = if p.name_a == p.name_b {
            p.name_a.clone()
        } else {
            format!("{} / {}", p.name_a, p.name_b)
        };
        if let Some(m) = &p.mismatch {
            let _ = writeln!(t, "{} {what}: DIFFERENT ({m})", p.between);
            continue;
        }
        let _ = writeln!(
            t,
            "{} {what}: {} {:?} max abs {:.3e} max rel {:.3e}, {} of {} outside tolerance{}",
            p.between,
            if p.equal { "equal" } else { "DIFFERENT" },
            p.shape,
            p.max_abs_diff,
            p.max_rel_diff,
            p.differing,
            p.elements,
            match (&p.worst_values, p.equal) {
                (Some((x, y)), false) => format!("; worst at {:?}: {x} vs {y}", p.worst_index),
                _ => String::new(),
            }
        );
    }
    let _ = writeln!(
        t,
        "{} (rtol {}, atol {})",
        if d.agree {
            "all outputs agree"
        } else {
            "outputs differ"
        },
        d.rtol,
        d.atol
    );
    t
}

//! `netport convert` between ONNX and Caffe2: `MODEL.onnx OUTDIR --to caffe2`
//! writes `OUTDIR/init_net.pb` + `predict_net.pb` (`--text` adds the
//! `.pbtxt` forms) by the rules of Caffe2's ONNX backend
//! (`netport_onnx_caffe2`). Nodes with no Caffe2 equivalent: exit code 1,
//! one message listing them all, nothing written. Broken input: exit 2.

use std::path::{Path, PathBuf};

use super::convert::{Args, Target};
use crate::exit::Outcome;
use crate::global::Global;
use crate::output::emit;
use crate::progress::{Progress, size_of};
use crate::units::human_bytes;
use anyhow::{Context, bail};
use netport_onnx_caffe2::{ConvertError, ToCaffe2Options, onnx_to_caffe2};
use serde::Serialize;

/// The flags of `netport convert` that only the ONNX <-> Caffe2 conversions use.
#[derive(clap::Args, Debug, Default)]
pub struct Caffe2Args {
    /// With --to caffe2: also write `init_net.pbtxt` and `predict_net.pbtxt`.
    #[arg(long)]
    pub text: bool,
    /// A fixed shape for a graph input, NAME=DIMS (`input=1,3,224,224`;
    /// repeatable): lets shape subgraphs fold into Caffe2 arguments.
    #[arg(long, value_name = "NAME=DIMS")]
    pub input_shape: Vec<String>,
}

/// True when `netport convert` is an ONNX <-> Caffe2 conversion: `--to
/// caffe2`/`--to onnx`, or an ONNX input.
pub fn applies(args: &Args) -> bool {
    matches!(args.to, Some(Target::Caffe2 | Target::Onnx))
        || (args.to.is_none() && is_onnx(&args.input))
}

fn is_onnx(path: &Path) -> bool {
    let Ok(map) = netport_io::map_file(path) else {
        return false;
    };
    let bytes = bytes::Bytes::from_owner(map);
    bytes.first() == Some(&0x08) && netport_onnx::decode_model(bytes, "").is_ok()
}

/// `NAME=D1,D2,...` flags.
fn parse_shapes(flags: &[String]) -> anyhow::Result<Vec<(String, Vec<i64>)>> {
    flags
        .iter()
        .map(|f| {
            let (name, dims) = f.rsplit_once('=').with_context(|| {
                format!("--input-shape {f}: expected NAME=DIMS (input=1,3,224,224)")
            })?;
            let dims = dims
                .split(',')
                .map(|d| {
                    d.trim()
                        .parse::<i64>()
                        .ok()
                        .filter(|&d| d >= 0)
                        .with_context(|| format!("--input-shape {f}: '{d}' is not a dimension"))
                })
                .collect::<anyhow::Result<Vec<i64>>>()?;
            Ok((name.to_string(), dims))
        })
        .collect()
}

#[derive(Serialize)]
struct ToCaffe2Json<'a> {
    input: &'a str,
    outputs: Vec<String>,
    init_ops: usize,
    predict_ops: usize,
    external_input: &'a [String],
    external_output: &'a [String],
    bytes: u64,
}

/// Runs an ONNX <-> Caffe2 `netport convert`.
pub fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    if args.to == Some(Target::Onnx) {
        bail!(
            "{}: Caffe2 -> ONNX is not part of this build (see docs/formats/caffe2.md)",
            args.input.display()
        );
    }
    onnx_to_caffe2_cmd(args, global)
}

fn onnx_to_caffe2_cmd(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let input = &args.input;
    let shown = input.display().to_string();
    let out = &args.output;
    if args.legacy || args.key.is_some() || args.dtype.is_some() || !args.rename.is_empty() {
        bail!("--legacy, --key, --dtype and --rename apply to checkpoints, not to ONNX -> Caffe2");
    }
    if out.is_file() {
        bail!(
            "{}: --to caffe2 writes a folder (init_net.pb + predict_net.pb); OUT is a file",
            out.display()
        );
    }
    let options = ToCaffe2Options {
        input_shapes: parse_shapes(&args.caffe2.input_shape)?,
        resolver: Some(netport_onnx::ExternalDataResolver::for_model(input)),
    };
    let progress = Progress::start(
        global,
        args.json,
        format!("writing {}", out.display()),
        size_of(input),
    );
    let model = netport_onnx::load_model(input).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    let pair = match onnx_to_caffe2(&model, &options) {
        Ok(pair) => pair,
        Err(e @ ConvertError::Unsupported { .. }) => {
            progress.finish();
            eprintln!("netport: {shown}: {e}");
            eprintln!("netport: nothing written");
            return Ok(Outcome::Findings);
        }
        Err(e) => bail!("{shown}: {e}"),
    };
    for p in [out.join("init_net.pb"), out.join("predict_net.pb")] {
        if netport_io::same_file(input, &p) {
            bail!("{shown}: the output is the input; netport never writes to its inputs");
        }
    }
    let written: Vec<PathBuf> = pair
        .save_dir_with_text(out, args.caffe2.text)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    progress.finish();
    let bytes: u64 = written.iter().map(|p| size_of(p)).sum();
    let outputs: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    emit(
        args.json,
        || ToCaffe2Json {
            input: &shown,
            outputs: outputs.clone(),
            init_ops: pair.init_net.op.len(),
            predict_ops: pair.predict_net.op.len(),
            external_input: &pair.predict_net.external_input,
            external_output: &pair.predict_net.external_output,
            bytes,
        },
        || {
            format!(
                "wrote {}: caffe2, init net {} ops, predict net {} ops, {}\n  inputs: {}\n  outputs: {}\n",
                out.display(),
                pair.init_net.op.len(),
                pair.predict_net.op.len(),
                human_bytes(bytes),
                data_inputs(&pair).join(", "),
                pair.predict_net.external_output.join(", ")
            )
        },
    )?;
    Ok(Outcome::Ok)
}

/// The predict net's external inputs that the init net does not create.
fn data_inputs(pair: &netport_caffe2::Caffe2Model) -> Vec<String> {
    let made: std::collections::HashSet<&str> = pair
        .init_net
        .op
        .iter()
        .flat_map(|o| o.output.iter().map(String::as_str))
        .collect();
    pair.predict_net
        .external_input
        .iter()
        .filter(|i| !made.contains(i.as_str()))
        .cloned()
        .collect()
}

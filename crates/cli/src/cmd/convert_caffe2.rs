//! `netport convert` between ONNX and Caffe2: `MODEL.onnx OUTDIR --to caffe2`
//! writes `OUTDIR/init_net.pb` + `predict_net.pb` (`--text` adds the
//! `.pbtxt` forms) by the rules of Caffe2's ONNX backend; `PAIR OUT.onnx`
//! (PAIR a folder with both nets, or `predict_net.pb --init init_net.pb`)
//! writes one ONNX model by the rules of Caffe2's ONNX frontend
//! (`netport_onnx_caffe2`), checked with netport's checker before it is
//! written. Nodes (ops) with no equivalent: exit code 1, one message listing
//! them all, nothing written. Broken input: exit 2.

use std::path::{Path, PathBuf};

use super::convert::{Args, Target};
use crate::exit::Outcome;
use crate::global::Global;
use crate::output::emit;
use crate::progress::{Progress, size_of};
use crate::units::human_bytes;
use anyhow::{Context, bail};
use netport_onnx_caffe2::{ConvertError, ToCaffe2Options, write_caffe2_dir};
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
    /// Caffe2 -> ONNX: the element type of a data input, NAME=DTYPE
    /// (`data=float32`, `ids=int64`; repeatable; default float32).
    #[arg(long, value_name = "NAME=DTYPE")]
    pub input_type: Vec<String>,
    /// Caffe2 -> ONNX: the init net, when IN is the predict net.
    #[arg(long, value_name = "INIT_NET")]
    pub init: Option<PathBuf>,
    /// Caffe2 -> ONNX: the opset to write (default 9, as Caffe2's frontend).
    #[arg(long, value_name = "N")]
    pub opset: Option<i64>,
}

/// True when `netport convert` is an ONNX <-> Caffe2 conversion: `--to
/// caffe2`/`--to onnx`, or an ONNX input.
pub fn applies(args: &Args) -> bool {
    matches!(args.to, Some(Target::Caffe2 | Target::Onnx))
        || (args.to.is_none() && (is_pair(args) || is_onnx(&args.input)))
}

/// A Caffe2 pair as the input: a folder, `--init`, or a Caffe2 net.
fn is_pair(args: &Args) -> bool {
    if args.input.is_dir() || args.caffe2.init.is_some() {
        return true;
    }
    let Ok(map) = netport_io::map_file(&args.input) else {
        return false;
    };
    let bytes = bytes::Bytes::from_owner(map);
    matches!(netport_caffe2::sniff_net(&bytes, ""), Some(Ok(_)))
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
    if args.legacy || args.key.is_some() || args.dtype.is_some() || !args.rename.is_empty() {
        bail!("--legacy, --key, --dtype and --rename apply to checkpoints, not to ONNX <-> Caffe2");
    }
    let to_onnx = match args.to {
        Some(Target::Onnx) => true,
        Some(Target::Caffe2) => false,
        _ => is_pair(args),
    };
    if to_onnx {
        caffe2_to_onnx_cmd(args, global)
    } else {
        if args.caffe2.init.is_some()
            || args.caffe2.opset.is_some()
            || !args.caffe2.input_type.is_empty()
        {
            bail!("--init, --opset and --input-type apply to Caffe2 -> ONNX");
        }
        onnx_to_caffe2_cmd(args, global)
    }
}

/// `NAME=DTYPE` flags as ONNX element type codes.
fn parse_types(flags: &[String]) -> anyhow::Result<Vec<(String, i32)>> {
    flags
        .iter()
        .map(|f| {
            let (name, ty) = f
                .rsplit_once('=')
                .with_context(|| format!("--input-type {f}: expected NAME=DTYPE (data=float32)"))?;
            let code = match ty.to_ascii_lowercase().as_str() {
                "float32" | "float" | "f32" => 1,
                "uint8" | "u8" => 2,
                "int8" | "i8" => 3,
                "uint16" | "u16" => 4,
                "int16" | "i16" => 5,
                "int32" | "i32" | "int" => 6,
                "int64" | "i64" | "long" => 7,
                "bool" => 9,
                "float16" | "f16" | "half" => 10,
                "float64" | "double" | "f64" => 11,
                other => bail!("--input-type {f}: unknown dtype '{other}' (float32, int64, ...)"),
            };
            Ok((name.to_string(), code))
        })
        .collect()
}

#[derive(Serialize)]
struct ToOnnxJson<'a> {
    input: &'a str,
    init_net: String,
    predict_net: String,
    output: String,
    opset: i64,
    nodes: usize,
    initializers: usize,
    bytes: u64,
}

fn caffe2_to_onnx_cmd(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    use netport_onnx_caffe2::{ToOnnxOptions, caffe2_to_onnx_streamed};
    let input = &args.input;
    let shown = input.display().to_string();
    let out = &args.output;
    if args.caffe2.text {
        bail!("--text applies to --to caffe2");
    }
    let (init_path, predict_path) = if input.is_dir() {
        if args.caffe2.init.is_some() {
            bail!("{shown}: a folder holds both nets; --init is for a predict net file");
        }
        netport_caffe2::Caffe2Model::files_in_dir(input).map_err(|e| anyhow::anyhow!("{e}"))?
    } else {
        let init = args.caffe2.init.clone().with_context(|| {
            format!("{shown}: pass the init net with --init INIT_NET (or give the folder of both)")
        })?;
        (init, input.clone())
    };
    for p in [&init_path, &predict_path] {
        if netport_io::same_file(p, out) {
            bail!(
                "{}: the output is an input; netport never writes to its inputs",
                out.display()
            );
        }
    }
    let options = ToOnnxOptions {
        opset: args.caffe2.opset.unwrap_or(9),
        input_shapes: parse_shapes(&args.caffe2.input_shape)?,
        input_types: parse_types(&args.caffe2.input_type)?,
    };
    let progress = Progress::start(
        global,
        args.json,
        format!("writing {}", out.display()),
        size_of(&init_path),
    );
    // The init net is mapped and its large fill values stay in the map
    // until they are copied to the output, piece by piece.
    let init =
        netport_caffe2::floats::load_netdef_lazy(&init_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let predict = netport_caffe2::load_netdef(&predict_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let streamed = match caffe2_to_onnx_streamed(&init, &predict, &options) {
        Ok(m) => m,
        Err(e @ ConvertError::Unsupported { .. }) => {
            progress.finish();
            eprintln!("netport: {shown}: {e}");
            eprintln!("netport: nothing written");
            return Ok(Outcome::Findings);
        }
        Err(e) => bail!("{shown}: {e}"),
    };
    let problems: Vec<String> = streamed
        .check(&Default::default())
        .into_iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}: {}", d.location, d.message))
        .collect();
    if !problems.is_empty() {
        bail!(
            "{shown}: the converted model fails the ONNX checker (nothing written): {}",
            problems.join("; ")
        );
    }
    streamed
        .save(out)
        .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    progress.finish();
    let graph = streamed.model().graph.as_ref();
    let nodes = graph.map_or(0, |g| g.node.len());
    let initializers = graph.map_or(0, |g| g.initializer.len());
    let bytes = size_of(out);
    emit(
        args.json,
        || ToOnnxJson {
            input: &shown,
            init_net: init_path.display().to_string(),
            predict_net: predict_path.display().to_string(),
            output: out.display().to_string(),
            opset: options.opset,
            nodes,
            initializers,
            bytes,
        },
        || {
            format!(
                "wrote {}: onnx (opset {}), {nodes} nodes, {initializers} initializers, {}\n",
                out.display(),
                options.opset,
                human_bytes(bytes)
            )
        },
    )?;
    Ok(Outcome::Ok)
}

fn onnx_to_caffe2_cmd(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let input = &args.input;
    let shown = input.display().to_string();
    let out = &args.output;
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
    for p in [out.join("init_net.pb"), out.join("predict_net.pb")] {
        if netport_io::same_file(input, &p) {
            bail!("{shown}: the output is the input; netport never writes to its inputs");
        }
    }
    let written = match write_caffe2_dir(&model, &options, out, args.caffe2.text) {
        Ok(w) => w,
        Err(e @ ConvertError::Unsupported { .. }) => {
            progress.finish();
            eprintln!("netport: {shown}: {e}");
            eprintln!("netport: nothing written");
            return Ok(Outcome::Findings);
        }
        Err(e) => bail!("{shown}: {e}"),
    };
    progress.finish();
    let outputs: Vec<String> = written
        .files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let pred = &written.predict_net;
    emit(
        args.json,
        || ToCaffe2Json {
            input: &shown,
            outputs: outputs.clone(),
            init_ops: written.init_ops,
            predict_ops: pred.op.len(),
            external_input: &pred.external_input,
            external_output: &pred.external_output,
            bytes: written.bytes,
        },
        || {
            format!(
                "wrote {}: caffe2, init net {} ops, predict net {} ops, {}\n  inputs: {}\n  outputs: {}\n",
                out.display(),
                written.init_ops,
                pred.op.len(),
                human_bytes(written.bytes),
                written.data_inputs.join(", "),
                pred.external_output.join(", ")
            )
        },
    )?;
    Ok(Outcome::Ok)
}

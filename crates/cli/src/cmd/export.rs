//! `netport export CKPT -o OUT.onnx`: a state_dict of a torchvision
//! architecture to an ONNX graph (`netport_torch_onnx`), with a report of
//! what was recognised. Exit code 0 when written, 1 when the state_dict fits
//! no architecture (or not the one `--arch` names), 2 on any other error;
//! nothing is written unless the exit code is 0.

use crate::exit::Outcome;
use crate::global::Global;
use crate::output::emit;
use crate::progress::{Progress, size_of};
use crate::units::human_bytes;
use anyhow::{anyhow, bail};
use netport_torch_onnx::{ExportOptions, ExportReport, export};
use serde::Serialize;
use std::path::PathBuf;

/// Export a PyTorch state_dict of a torchvision architecture to ONNX,
/// without Python: the family, variant and number of classes are recognised
/// from the tensor names and shapes, the graph is the model's eval-mode
/// forward (BatchNorm with its running statistics, Dropout gone), the
/// initializers keep the state_dict names.
///
/// Families: ResNet/ResNeXt/Wide ResNet, VGG, AlexNet, SqueezeNet, DenseNet,
/// MobileNet v2/v3, EfficientNet (b0-b7, v2), ShuffleNet v2, MNASNet,
/// GoogLeNet, Inception v3, RegNet, ConvNeXt, ViT (variants in docs/cli.md).
/// Exit code 0 when the model was written, 1 when the state_dict fits no
/// architecture (the closest one and its missing/unexpected keys are
/// listed), 2 on other errors. Nothing is written unless it succeeds.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The checkpoint: zip or legacy `.pt`/`.pth`, safetensors, or a
    /// training checkpoint with the state_dict under `model`/`state_dict`.
    #[arg(value_name = "CKPT")]
    pub input: PathBuf,
    /// The ONNX file to write (weights above 2 GiB go to `OUT.data` beside it).
    #[arg(short = 'o', long = "output", value_name = "OUT.onnx")]
    pub output: PathBuf,
    /// Use this family (`resnet`) or variant (`resnet50`) instead of
    /// recognising one.
    #[arg(long, value_name = "NAME")]
    pub arch: Option<String>,
    /// The ai.onnx opset to write (9 to the newest known).
    #[arg(long, value_name = "N", default_value_t = netport_torch_onnx::DEFAULT_OPSET)]
    pub opset: i64,
    /// The key of a training checkpoint's sub-dict holding the state_dict
    /// (default: `state_dict`, `model_state_dict`, `model` or `net`, when present).
    #[arg(long, value_name = "K")]
    pub key: Option<String>,
    /// The input's height and width (default: the family's, e.g. 224,224).
    #[arg(long, value_name = "H,W")]
    pub input_size: Option<String>,
    /// A batch dim of 1 instead of the symbolic `batch`.
    #[arg(long)]
    pub static_batch: bool,
    /// A constructor option the weights do not show (`transform_input=true`
    /// for GoogLeNet/Inception v3, `num_heads=N` for ViT); repeatable.
    #[arg(long = "set", value_name = "K=V")]
    pub set: Vec<String>,
    /// Print one JSON document (fields documented in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct ExportJson<'a> {
    input: String,
    output: String,
    #[serde(flatten)]
    report: &'a ExportReport,
}

fn parse_size(s: &str) -> anyhow::Result<(u64, u64)> {
    let parts: Vec<&str> = s.split([',', 'x']).map(str::trim).collect();
    let num = |p: &str| {
        p.parse::<u64>()
            .map_err(|_| anyhow!("--input-size {s}: expected H,W (two positive integers)"))
    };
    match parts.as_slice() {
        [h, w] => Ok((num(h)?, num(w)?)),
        [n] => Ok((num(n)?, num(n)?)),
        _ => bail!("--input-size {s}: expected H,W"),
    }
}

/// Runs `netport export`.
pub fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let settings = args
        .set
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(anyhow!("--set {kv}: expected KEY=VALUE")),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let options = ExportOptions {
        arch: args.arch.clone(),
        opset: args.opset,
        key: args.key.clone(),
        input_size: args.input_size.as_deref().map(parse_size).transpose()?,
        static_batch: args.static_batch,
        settings,
    };
    let shown = args.input.display().to_string();
    // The initializers are about the input's tensor bytes (as float32).
    let progress = Progress::start(
        global,
        args.json,
        format!("writing {}", args.output.display()),
        size_of(&args.input),
    );
    let result = export(&args.input, &args.output, &options);
    progress.finish();
    let report = match result {
        Ok(r) => r,
        Err(e) if e.is_mismatch() => {
            eprintln!("netport: {shown}: {e}");
            return Ok(Outcome::Findings);
        }
        Err(e @ netport_torch_onnx::ExportError::Read { .. }) => return Err(anyhow!("{e}")),
        Err(e) => return Err(anyhow!("{shown}: {e}")),
    };
    emit(
        args.json,
        || ExportJson {
            input: shown.clone(),
            output: args.output.display().to_string(),
            report: &report,
        },
        || {
            let r = &report;
            let mut t = format!(
                "wrote {}: {} ({}), {} classes, {} parameters, opset {}, {} nodes, {} initializers ({})\n",
                args.output.display(),
                r.family,
                r.variant,
                r.classes,
                r.params,
                r.opset,
                r.nodes,
                r.initializers,
                human_bytes(r.initializer_bytes)
            );
            t.push_str(&format!(
                "input 'input' [{}], output 'output' [{}]\n",
                r.input_shape.join(", "),
                r.output_shape.join(", ")
            ));
            if let Some(d) = &r.external_data {
                t.push_str(&format!("weights in {d}\n"));
            }
            t
        },
    )?;
    Ok(Outcome::Ok)
}

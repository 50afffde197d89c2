//! `netport inspect`: reads one model (or a Caffe2 pair) and prints its
//! summary as a table or as one JSON document whose field names are stable
//! (documented in docs/cli.md). One submodule per format renders its
//! library's summary.

mod caffe2;
mod onnx;
mod safetensors;
mod torch;

use crate::detect::{Detected, detect};
use crate::exit::Outcome;
use crate::global::Global;
use anyhow::Context;
use std::path::PathBuf;

/// Describe a model file: format, inputs and outputs, operators, tensors.
///
/// The format is detected from the bytes, not the name. PATH is a PyTorch
/// checkpoint (zip, legacy, TorchScript or .pt2), a safetensors file, an ONNX
/// model, a Caffe2 NetDef (binary .pb or text .pbtxt), or a directory
/// holding a Caffe2 init_net.pb + predict_net.pb pair; two PATHs are a Caffe2
/// pair in either order (the init net is the one with fill ops only). Nothing
/// in the file is executed.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file (or Caffe2 pair directory) to inspect.
    #[arg(required = true, num_args = 1..=2, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Print one JSON document (field names documented in docs/cli.md).
    #[arg(long)]
    pub json: bool,
    /// For checkpoints: show the nesting of the saved object (dicts,
    /// lists, objects) with its tensors and values.
    #[arg(long)]
    pub tree: bool,
    /// Print every name of long lists that are otherwise summarised (a
    /// Caffe2 net's external inputs and outputs); --json always has them all.
    #[arg(long)]
    pub all: bool,
    /// For ONNX models: also infer types and shapes (symbolic dims, data
    /// propagation through shape computations) and show each graph output's
    /// inferred element type and dims, and the ops without a shape rule.
    #[arg(long)]
    pub shapes: bool,
}

/// Runs `netport inspect`.
pub fn run(args: &Args, _global: &Global) -> anyhow::Result<Outcome> {
    if args.shapes && !matches!(args.paths.as_slice(), [p] if !p.is_dir()) {
        anyhow::bail!("--shapes applies to one ONNX model, not to a Caffe2 pair");
    }
    let report = match args.paths.as_slice() {
        [path] if path.is_dir() => caffe2::pair_in_dir(path, args)?,
        [path] => match detect(path)? {
            detected if args.shapes && !matches!(detected, Detected::Onnx(_)) => {
                anyhow::bail!("{}: --shapes applies to ONNX models only", path.display())
            }
            Detected::Torch(ckpt) => {
                let report = torch::report(path, &ckpt, args)?;
                // The process ends after printing: freeing a checkpoint's
                // tens of thousands of entries one by one would only add
                // time (7% of inspect's on 50,000 tensors).
                std::mem::forget(ckpt);
                report
            }
            Detected::Safetensors(file) => safetensors::report(path, &file, args)?,
            Detected::Onnx(model) => {
                let resolver = netport_onnx::ExternalDataResolver::for_model(path);
                netport_onnx::check_external_data(&model, &resolver)
                    .with_context(|| path.display().to_string())?;
                onnx::report(path, &model, args)?
            }
            Detected::Caffe2(net) => caffe2::net_report(path, &net, args)?,
        },
        [first, second] => caffe2::pair(first, second, args)?,
        _ => unreachable!("clap allows one or two paths"),
    };
    report.print()?;
    Ok(Outcome::Ok)
}

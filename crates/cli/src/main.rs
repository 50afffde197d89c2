//! `netport`: inspect and convert neural-network files without Python. This
//! binary only parses arguments, calls the netport libraries and prints; exit
//! codes are 0 (ok), 1 (findings, such as differences or unsafe content) and 2
//! (errors).

mod convert;
mod detect;
mod diff;
mod fix;
mod inspect;
mod inspect_caffe2;
mod inspect_torch;
mod map_location;
mod output;
mod scan;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "netport",
    version,
    about = "Inspect and convert trained neural networks (PyTorch, ONNX, Caffe2) without Python"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Describe a model file: format, inputs and outputs, operators, tensors.
    ///
    /// The format is detected from the bytes, not the name. PATH is a PyTorch
    /// checkpoint (zip, legacy, TorchScript or .pt2), an ONNX model, a Caffe2
    /// NetDef (binary .pb or text .pbtxt), or a directory holding a Caffe2
    /// init_net.pb + predict_net.pb pair; two PATHs name the pair as init net
    /// then predict net. Nothing in the file is executed.
    Inspect {
        /// The file (or Caffe2 pair directory) to inspect.
        #[arg(required = true, num_args = 1..=2, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Print one JSON document (field names documented in docs/cli.md).
        #[arg(long)]
        json: bool,
        /// For checkpoints: show the nesting of the saved object (dicts,
        /// lists, objects) with its tensors and values.
        #[arg(long)]
        tree: bool,
    },
    /// Convert a PyTorch checkpoint to safetensors or back (also sharded
    /// checkpoints through their index), with key and dtype edits.
    Convert(convert::ConvertArgs),
    /// Compare the tensors of two checkpoints or safetensors files. Exit code
    /// 0 when identical, 1 when they differ, 2 on error.
    Diff(diff::DiffArgs),
    /// Make a checkpoint load under torch.load(weights_only=True): protocol 2,
    /// Namespace -> dict, numpy scalars -> numbers.
    Fix(fix::FixArgs),
    /// Rewrite the storage location tags of a PyTorch checkpoint (torch.load's
    /// map_location, done once on the file).
    MapLocation(map_location::MapLocationArgs),
    /// Give a safety verdict for every pickle in PyTorch files, without
    /// loading them.
    ///
    /// Every global each pickle would import is listed with its byte offset
    /// and class: allowed by torch.load(weights_only=True); benign but not
    /// allowlisted (with the add_safe_globals line you would need);
    /// suspicious (unknown); dangerous (code execution, system access, or
    /// unresolvable). Also says whether torch.load(weights_only=True) would
    /// load the file. Exit code 0 when every file is safe, 1 otherwise, 2 when
    /// a file cannot be scanned.
    Scan {
        /// Files to scan (.pt, .pth, .bin, .ckpt, .pkl, ...).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print one JSON document (field names documented in docs/cli.md).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { paths, json, tree } => inspect::run(&paths, json, tree),
        Command::Scan { files, json } => scan::run(&files, json),
        Command::Convert(args) => convert::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Fix(args) => fix::run(&args),
        Command::MapLocation(args) => map_location::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netport: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

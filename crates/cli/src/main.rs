//! `netport`: inspect and convert neural-network files without Python. This
//! binary only parses arguments, calls the netport libraries and prints; exit
//! codes are 0 (ok), 1 (findings, such as differences or unsafe content) and 2
//! (errors).

mod detect;
mod inspect;
mod inspect_caffe2;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "netport",
    version,
    about = "Inspect and convert trained neural networks (ONNX, Caffe2) without Python"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Describe a model file: format, inputs and outputs, operators, tensors.
    ///
    /// The format is detected from the bytes, not the name. PATH is an ONNX
    /// model, a Caffe2 NetDef (binary .pb or text .pbtxt), or a directory
    /// holding a Caffe2 init_net.pb + predict_net.pb pair; two PATHs name the
    /// pair as init net then predict net.
    Inspect {
        /// The file (or Caffe2 pair directory) to inspect.
        #[arg(required = true, num_args = 1..=2, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Print one JSON document (field names documented in docs/cli.md).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { paths, json } => inspect::run(&paths, json),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netport: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

//! `netport`: inspect and convert neural-network files without Python.
//!
//! This file only parses arguments and dispatches. Each command is one module
//! under `cmd/` with its own clap `Args` struct and a
//! `run(&Args, &Global) -> anyhow::Result<Outcome>`; what they share lives in
//! its own module: `exit` (the exit codes), `global` (options of every
//! command), `output` (printing, JSON, notes),
//! `units` (the byte formatter), `progress` (the progress bar), `json` (JSON
//! types shared by several reports), `edits` (tensor-name flags), `errors`
//! (library errors with their file), `detect` (what a file is).

mod cmd;
mod detect;
mod edits;
mod errors;
mod exit;
mod global;
mod json;
mod output;
mod progress;
mod units;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "netport",
    version,
    about = "Inspect and convert trained neural networks (PyTorch, safetensors, ONNX, Caffe2) without Python",
    after_help = "Exit codes: 0 ok, 1 findings (unsafe content, differences, an invalid model), 2 error."
)]
struct Cli {
    /// No progress bar (it is shown only on a terminal, and never with --json).
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Inspect(cmd::inspect::Args),
    Scan(cmd::scan::Args),
    Check(cmd::check::Args),
    Convert(cmd::convert::Args),
    Diff(cmd::diff::Args),
    Export(cmd::export::Args),
    Fix(cmd::fix::Args),
    Graph(cmd::graph::Args),
    MapLocation(cmd::map_location::Args),
    Ops(cmd::ops::Args),
    Run(cmd::run::Args),
    Verify(cmd::verify::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = global::Global { quiet: cli.quiet };
    let result = match &cli.command {
        Command::Inspect(args) => cmd::inspect::run(args, &global),
        Command::Scan(args) => cmd::scan::run(args, &global),
        Command::Check(args) => cmd::check::run(args, &global),
        Command::Convert(args) => cmd::convert::run(args, &global),
        Command::Diff(args) => cmd::diff::run(args, &global),
        Command::Export(args) => cmd::export::run(args, &global),
        Command::Fix(args) => cmd::fix::run(args, &global),
        Command::Graph(args) => cmd::graph::run(args, &global),
        Command::MapLocation(args) => cmd::map_location::run(args, &global),
        Command::Ops(args) => cmd::ops::run(args, &global),
        Command::Run(args) => cmd::run::run(args, &global),
        Command::Verify(args) => cmd::verify::run(args, &global),
    };
    match result {
        Ok(outcome) => outcome.into(),
        Err(e) => {
            eprintln!("netport: error: {e:#}");
            exit::Outcome::Errors.into()
        }
    }
}

//! Developer tasks for the netport workspace: code generation (protobuf, the
//! ONNX operator schema table), the Python peer environment, fixtures, the
//! full CI run and the benchmark. Invoked as `cargo xtask <task>`.

mod bench;
mod caffe2;
mod ci;
mod codegen;
mod peers;
mod schemas;
mod tidy;
mod util;
mod venv;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "xtask", about = "netport developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Regenerate the committed protobuf bindings from proto/*.proto (no protoc needed).
    Codegen {
        /// Fail if the committed bindings differ from what the .proto files generate.
        #[arg(long)]
        check: bool,
    },
    /// Regenerate the committed ONNX operator schema table
    /// (crates/onnx/src/schema/generated.rs) from the onnx package of the peer venv
    /// ($NETPORT_PYTHON when set).
    Schemas {
        /// Fail if the committed table differs from what the onnx package says.
        #[arg(long)]
        check: bool,
    },
    /// Create (if needed) the Python peer venv from testdata/peers/requirements.txt; print its path.
    Venv,
    /// Create (if needed) the Caffe2 venv (Python 3.7 from pyenv, torch 1.4.0 with
    /// caffe2.python, onnx 1.7.0) from testdata/peers/caffe2/requirements.txt; print its python.
    Caffe2Venv,
    /// Make (if needed) the Caffe2 reference files (torchvision exports at opset 9,
    /// Caffe2Backend's nets, outputs; native Caffe2 nets) in the cache; print the folder last.
    Caffe2Refs {
        /// Also the large models (vgg11_bn, vgg16: ~1 GB of files).
        #[arg(long)]
        full: bool,
        /// Only print the folder; fail if it is not built.
        #[arg(long)]
        print_dir: bool,
    },
    /// Run every ONNX node test whose op the ONNX -> Caffe2 converter covers in the real
    /// Caffe2; rewrite docs/formats/caffe2-node-tests.md with the counts per op.
    Caffe2NodeTests,
    /// Generate (if needed) the peer corpus in the cache folder; print its path last.
    Peers {
        /// Only print the corpus path; fail if it is not built.
        #[arg(long)]
        print_dir: bool,
    },
    /// Rewrite the small committed fixtures under testdata/ (testdata/make_fixtures.py).
    Fixtures,
    /// Check repository rules no linter checks (anyhow only in the binary and xtask, every
    /// member in docs/architecture.md, no references outside the repo, `//!` module docs,
    /// inherited rust-version and lints).
    Tidy,
    /// Run every CI check in order: fmt, clippy, codegen --check, schemas --check,
    /// tidy, tests, the build-script example, then the interop suite.
    Ci {
        /// Stop after `cargo test --workspace` (no venv, peers or interop tests;
        /// `schemas --check` runs only if the venv exists or NETPORT_PYTHON is set).
        #[arg(long)]
        no_interop: bool,
    },
    /// Time netport against cp and the Python peers, whole processes with their
    /// peak memory: inspect, rewrites, check, ONNX <-> Caffe2 conversion, run
    /// and export (`--only` picks one); a benchmark, not a test.
    Bench {
        /// Counted runs of each command, after the warm-up.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=100))]
        runs: u16,
        /// Rounds run first and not counted (they also warm the page cache).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=10))]
        warmup: u16,
        /// Rewrite the figures section of docs/performance.md with this run's figures.
        #[arg(long, conflicts_with = "python_only")]
        write_docs: bool,
        /// Time only the Python side (torch.load, import torch); netport is not built.
        #[arg(long)]
        python_only: bool,
        /// Run one part only (the values below); --write-docs then rewrites
        /// that part's figures section and keeps the others'.
        #[arg(long, value_enum)]
        only: Option<bench::Part>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line; no backtrace
            // even under RUST_BACKTRACE=1: these are task failures, not bugs.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> Result<()> {
    let root = workspace_root();
    match task {
        Task::Codegen { check } => codegen::run(&root, check),
        Task::Schemas { check } => schemas::run(&root, check),
        Task::Venv => venv::run(&root),
        Task::Peers { print_dir } => peers::run(&root, print_dir),
        Task::Caffe2Venv => caffe2::run_venv(&root),
        Task::Caffe2NodeTests => caffe2::run_node_tests(&root),
        Task::Caffe2Refs { full, print_dir } => caffe2::run_refs(&root, full, print_dir),
        Task::Fixtures => peers::fixtures(&root),
        Task::Tidy => tidy::run(&root),
        Task::Ci { no_interop } => ci::run(&root, !no_interop),
        Task::Bench {
            runs,
            warmup,
            write_docs,
            python_only,
            only,
        } => bench::run(
            &root,
            &bench::Options {
                runs: runs.into(),
                warmup: warmup.into(),
                write_docs,
                python_only,
                only,
            },
        ),
    }
}

/// The workspace root: the parent of this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

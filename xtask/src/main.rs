//! Developer tasks for the netport workspace: code generation, the Python peer
//! environment, fixtures and the full CI run. Invoked as `cargo xtask <task>`.

mod codegen;
mod util;
mod venv;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
    /// Create (if needed) the Python peer venv from testdata/peers/requirements.txt; print its path.
    Venv,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.task {
        Task::Codegen { check } => codegen::run(&root, check),
        Task::Venv => venv::run(&root),
    }
}

/// The workspace root: the parent of this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

//! `netport fix`: make a checkpoint load under `torch.load(weights_only=True)`
//! (`netport_torch::fix`).

use std::path::{Path, PathBuf};

use crate::exit::Outcome;
use crate::global::Global;
use crate::output::emit;
use crate::progress::Progress;
use netport_torch::fix::{FixReport, fix_file};
use netport_torch::write::WriteOptions;
use serde::Serialize;

/// Make a checkpoint load with today's default torch.load(f)
/// (weights_only=True).
///
/// Re-encodes protocol 3-5 pickles as protocol 2 (torch's restricted
/// unpickler refuses protocol 4's FRAME opcode: the pickle_protocol=4 files
/// of older tutorials), turns argparse.Namespace objects into plain dicts and
/// numpy scalars into Python numbers, and reports each change. Tensor bytes
/// and every other record are copied as they are. When something cannot be
/// made safe (a class that is not allowlisted, a numpy array, a dangerous
/// global) nothing is written, the error names it, and the exit code is 1.
/// Exit code 0 on success, 2 on error.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The checkpoint to read (zip or legacy format).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Where to write the result.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: PathBuf,
    /// Allow OUT to be IN (the file is replaced atomically).
    #[arg(long)]
    pub in_place: bool,
    /// Print one JSON document (fields in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct FixJson {
    input: String,
    output: String,
    changes: Vec<String>,
    bytes_written: u64,
}

/// Runs `netport fix`.
pub fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let options = WriteOptions {
        input: Some(args.input.clone()),
        in_place: args.in_place,
    };
    let input = args.input.display().to_string();
    let progress = Progress::start(
        global,
        args.json,
        format!("writing {}", args.output.display()),
        crate::progress::size_of(&args.input),
    );
    let result = fix_file(&args.input, &args.output, &options);
    progress.finish();
    match result {
        Ok(report) => {
            let changes: Vec<String> = report.changes.iter().map(ToString::to_string).collect();
            emit(
                args.json,
                || FixJson {
                    input: input.clone(),
                    output: args.output.display().to_string(),
                    changes: changes.clone(),
                    bytes_written: report.bytes_written,
                },
                || text(&input, &args.output, &report),
            )?;
            Ok(Outcome::Ok)
        }
        Err(e) if crate::errors::cannot_be_made_safe(&e) => {
            eprintln!("netport: {input}: {e}");
            Ok(Outcome::Findings)
        }
        Err(e) => Err(crate::errors::at(&input)(e)),
    }
}

/// The changes, one per line.
fn text(input: &str, output: &Path, report: &FixReport) -> String {
    let n = report.changes.len();
    if n == 0 {
        return format!(
            "{input}: already loads with weights_only=True; copied to {}\n",
            output.display()
        );
    }
    let mut s = format!(
        "{input} -> {}: {n} change{}\n",
        output.display(),
        if n == 1 { "" } else { "s" }
    );
    for c in &report.changes {
        s.push_str(&format!("  {c}\n"));
    }
    s
}

//! `netport fix`: make a checkpoint load under `torch.load(weights_only=True)`
//! (`netport_torch::fix`).

use std::path::PathBuf;
use std::process::ExitCode;

use netport_torch::TorchError;
use netport_torch::fix::fix_file;
use netport_torch::write::WriteOptions;
use serde_json::json;

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
pub struct FixArgs {
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

/// Run `netport fix`.
pub fn run(args: &FixArgs) -> anyhow::Result<ExitCode> {
    let options = WriteOptions {
        input: Some(args.input.clone()),
        in_place: args.in_place,
    };
    let input = args.input.display().to_string();
    match fix_file(&args.input, &args.output, &options) {
        Ok(report) => {
            let changes: Vec<String> = report.changes.iter().map(ToString::to_string).collect();
            let text = if args.json {
                let mut s = serde_json::to_string_pretty(&json!({
                    "input": input,
                    "output": args.output.display().to_string(),
                    "changes": changes,
                    "bytes_written": report.bytes_written,
                }))?;
                s.push('\n');
                s
            } else if changes.is_empty() {
                format!(
                    "{input}: already loads with weights_only=True; copied to {}\n",
                    args.output.display()
                )
            } else {
                let mut s = format!(
                    "{input} -> {}: {} change{}\n",
                    args.output.display(),
                    changes.len(),
                    if changes.len() == 1 { "" } else { "s" }
                );
                for c in &changes {
                    s.push_str(&format!("  {c}\n"));
                }
                s
            };
            crate::output::print(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        // A file that cannot be made safe is a finding, not a failure.
        Err(TorchError::Refused(reason)) if reason.contains("cannot be made to load") => {
            eprintln!("netport: {input}: {reason}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(anyhow::anyhow!("{input}: {e}")),
    }
}

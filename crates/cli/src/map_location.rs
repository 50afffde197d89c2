//! `netport map-location`: torch.load's `map_location`, done once on the
//! file (`netport_torch::relocate`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use netport_torch::relocate::{LocationMap, RelocateOptions, relocate_file};
use netport_torch::write::WriteOptions;

/// Rewrite the location tag of every storage (like
/// `torch.load(map_location=...)`, but once, in the file).
///
/// Only the location strings in the pickles change (re-encoded op by op);
/// every other record and all tensor bytes are copied as they are. Zip
/// checkpoints, legacy files and TorchScript archives are supported. The
/// output is written atomically; the input is never modified (unless
/// --in-place and -o equal to it). Exit code 0 on success (also when nothing
/// needed rewriting), 2 on error.
#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("mapping").required(true).args(["to", "map"])))]
pub struct MapLocationArgs {
    /// The checkpoint to read.
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Where to write the result.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: PathBuf,
    /// Map every storage to this device (e.g. cpu), like map_location='cpu'.
    #[arg(long, value_name = "DEVICE")]
    pub to: Option<String>,
    /// Map one tag to another, exact match (repeatable), like
    /// map_location={'cuda:1': 'cuda:0'}.
    #[arg(long, value_name = "FROM=TO")]
    pub map: Vec<String>,
    /// Also rewrite torch.device(...) objects, which are not storage tags
    /// (they are reported otherwise).
    #[arg(long)]
    pub all_devices: bool,
    /// Allow OUT to be IN (the file is replaced atomically).
    #[arg(long)]
    pub in_place: bool,
}

/// Run `netport map-location`.
pub fn run(args: &MapLocationArgs) -> anyhow::Result<ExitCode> {
    let map = match &args.to {
        Some(to) => {
            let m = LocationMap::to(to);
            m.validate()?;
            m
        }
        None => LocationMap::parse_pairs(&args.map)?,
    };
    let options = RelocateOptions {
        map,
        all_devices: args.all_devices,
        write: WriteOptions {
            input: Some(args.input.clone()),
            in_place: args.in_place,
        },
    };
    let report = relocate_file(&args.input, &args.output, &options).with_context(|| {
        format!(
            "map-location {} -> {}",
            args.input.display(),
            args.output.display()
        )
    })?;
    let mut text = String::new();
    for line in report.lines() {
        text.push_str(&line);
        text.push('\n');
    }
    if !args.all_devices && report.devices.iter().any(|d| d.rewritten.is_none()) {
        text.push_str("pass --all-devices to rewrite device objects too\n");
    }
    text.push_str(&format!(
        "wrote {} ({} bytes)\n",
        args.output.display(),
        report.bytes_written
    ));
    crate::output::print(&text)?;
    Ok(ExitCode::SUCCESS)
}

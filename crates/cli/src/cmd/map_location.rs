//! `netport map-location`: torch.load's `map_location`, done once on the
//! file (`netport_torch::relocate`); with `--fix`, also made loadable by
//! `torch.load(weights_only=True)` in the same pass (`netport_torch::fix`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::errors::cannot_be_made_safe;
use crate::exit::Outcome;
use crate::global::Global;
use crate::output::note;
use crate::progress::{Progress, size_of};
use crate::units::human_bytes;
use netport_torch::fix::{FixReport, fix_checkpoint};
use netport_torch::relocate::{
    LocationMap, RelocateOptions, RelocateReport, relocate_checkpoint, relocate_pickle,
};
use netport_torch::write::WriteOptions;
use netport_torch::{Checkpoint, Format, TorchError, scan_file};

/// Rewrite the location tag of every storage (like
/// `torch.load(map_location=...)`, but once, in the file).
///
/// Only the location strings in the pickles change (re-encoded op by op);
/// every other record and all tensor bytes are copied as they are. Zip
/// checkpoints, legacy files and TorchScript archives are supported. The
/// output is written atomically; the input is never modified (unless
/// --in-place and -o equal to it). When the output still would not load
/// with a plain torch.load(f) (weights_only=True; e.g. a pickle_protocol=4
/// file), a note on stderr says why and names the fix: `netport fix`, or
/// --fix here. Exit code 0 on success (also when nothing needed rewriting),
/// 1 when --fix finds something that cannot be made safe (nothing written),
/// 2 on error.
#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("mapping").required(true).args(["to", "map"])))]
pub struct Args {
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
    /// Also make the output load with torch.load(f) and its default
    /// weights_only=True, as `netport fix` does (protocol 2, Namespace ->
    /// dict, numpy scalars -> numbers), in the same pass: one output.
    #[arg(long)]
    pub fix: bool,
    /// Allow OUT to be IN (the file is replaced atomically).
    #[arg(long)]
    pub in_place: bool,
}

/// Runs `netport map-location`.
pub fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
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
    let shown = args.input.display().to_string();
    let context = |e: TorchError| {
        anyhow::Error::new(e).context(format!(
            "map-location {} -> {}",
            args.input.display(),
            args.output.display()
        ))
    };
    options.write.check_paths(&args.output).map_err(context)?;
    // Only the pickles are rewritten: no object per tensor is built.
    let ckpt = Checkpoint::open_pickles(&args.input).map_err(context)?;
    let progress = Progress::start(
        global,
        false,
        format!("writing {}", args.output.display()),
        size_of(&args.input),
    );
    let result = if args.fix {
        relocate_and_fix(&ckpt, &args.output, &options).map(|(r, f)| (r, Some(f)))
    } else {
        relocate_checkpoint(&ckpt, &args.output, &options, &options.write).map(|r| (r, None))
    };
    progress.finish();
    let (report, fixed) = match result {
        Ok(done) => done,
        Err(e) if cannot_be_made_safe(&e) => {
            eprintln!("netport: {shown}: {e}");
            return Ok(Outcome::Findings);
        }
        Err(e) => return Err(context(e)),
    };
    crate::output::print(&text(args, &report, fixed.as_ref()))?;
    if fixed.is_none() && matches!(ckpt.format(), Format::Zip | Format::Legacy) {
        warn_if_weights_only_refuses(&args.output);
    }
    Ok(Outcome::Ok)
}

/// Relocates the pickles torch.load reads and fixes them, writing one file.
fn relocate_and_fix(
    ckpt: &Checkpoint,
    output: &Path,
    options: &RelocateOptions,
) -> Result<(RelocateReport, FixReport), TorchError> {
    let mut report = RelocateReport::default();
    let fixed = fix_checkpoint(ckpt, output, &options.write, |name, bytes| {
        // The pickles that carry storage tags (as relocate_checkpoint).
        if name == "data.pkl" || name == "legacy pickle #4" {
            relocate_pickle(bytes, name, &options.map, options.all_devices, &mut report)
        } else {
            Ok(None)
        }
    })?;
    report.bytes_written = fixed.bytes_written;
    Ok((report, fixed))
}

/// A torch.load file whose output torch.load(f) still refuses gets a note
/// on stderr naming the fix.
fn warn_if_weights_only_refuses(output: &Path) {
    let Ok(scan) = scan_file(output) else {
        return;
    };
    if scan.weights_only.loads == Some(false) {
        note(&format!(
            "{} does not load with a plain torch.load(f) (weights_only=True): {}. \
             `netport fix {} -o FIXED` makes it load, or run map-location with --fix \
             to relocate and fix in one pass",
            output.display(),
            scan.weights_only
                .reason
                .as_deref()
                .unwrap_or("torch's restricted unpickler refuses it"),
            output.display()
        ));
    }
}

fn text(args: &Args, report: &RelocateReport, fixed: Option<&FixReport>) -> String {
    let output = &args.output;
    let mut t = String::new();
    for line in report.lines() {
        let _ = writeln!(t, "{line}");
    }
    if !args.all_devices && report.devices.iter().any(|d| d.rewritten.is_none()) {
        let _ = writeln!(t, "pass --all-devices to rewrite device objects too");
    }
    if let Some(f) = fixed {
        if f.changes.is_empty() {
            let _ = writeln!(t, "already loads with weights_only=True");
        }
        for c in &f.changes {
            let _ = writeln!(t, "{c}");
        }
    }
    let _ = writeln!(
        t,
        "wrote {}: {}",
        output.display(),
        human_bytes(report.bytes_written)
    );
    t
}

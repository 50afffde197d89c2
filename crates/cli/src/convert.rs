//! `netport convert IN OUT`: PyTorch checkpoint <-> safetensors, single files
//! or sharded checkpoints through their `*.index.json`, with key and dtype
//! edits on the way (`netport_torch::edit`), and checkpoint -> checkpoint (a
//! plain rewrite: the edited tensors as a state dict, `netport_torch::rewrite`).
//! The input kind is detected from the bytes; the target is `--to`, else the
//! output's extension, else the other format. `--legacy` writes a `.pt`
//! output in the pre-1.6 format. Exit code 0 on success, 2 on error (nothing
//! is written then).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use netport_safetensors::{SafetensorsFile, ShardIndex};
use netport_torch::rewrite::{Layout, rewrite_checkpoint};
use netport_torch::{Checkpoint, ConvertReport, Edits, TorchError};
use netport_torch_safetensors::{
    ConvertError, ShardedReport, checkpoint_to_safetensors, index_to_checkpoints,
    index_to_safetensors, safetensors_to_checkpoint, safetensors_to_legacy_checkpoint,
};
use serde_json::{Value, json};

/// Output format of `netport convert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// safetensors (`.safetensors`; shards `model-0000N-of-0000M.safetensors`).
    Safetensors,
    /// A torch.save zip checkpoint (`.pt`; shards `pytorch_model-0000N-of-0000M.bin`).
    Pt,
}

/// Arguments of `netport convert`.
#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// A PyTorch checkpoint (zip, legacy, TorchScript, .pt2), a safetensors
    /// file, or a sharded checkpoint's index (`pytorch_model.bin.index.json`,
    /// `model.safetensors.index.json`).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// The output file; for an index input, the index to write (`*.json`) or
    /// a directory for the shards and the index.
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
    /// Output format (default: from OUT's extension, else the other format).
    #[arg(long, value_enum)]
    pub to: Option<Target>,
    /// Keep only the tensors under this key of a training checkpoint
    /// (`model`, `state_dict`), without the `KEY.` prefix.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// Remove this prefix from tensor names (repeatable, applied repeatedly:
    /// `--strip-prefix module. --strip-prefix _orig_mod.`).
    #[arg(long = "strip-prefix", value_name = "PREFIX")]
    pub strip_prefix: Vec<String>,
    /// Keep only tensors whose name (after --key and --strip-prefix) matches.
    #[arg(long, value_name = "REGEX")]
    pub filter: Option<String>,
    /// Leave out tensors whose name (after --key and --strip-prefix) matches.
    #[arg(long, value_name = "REGEX")]
    pub exclude: Option<String>,
    /// Rename tensors: REGEX=REPLACEMENT, `$1` for groups (repeatable, in order).
    #[arg(long, value_name = "REGEX=REPL")]
    pub rename: Vec<String>,
    /// Convert float64/float32/float16/bfloat16 tensors to bf16, f16 or f32.
    #[arg(long, value_name = "DTYPE")]
    pub dtype: Option<String>,
    /// Write a `.pt` output in the legacy (pre-1.6, non-zip) format, for
    /// consumers pinned to old torch (single files only; dtypes without a
    /// typed storage, such as uint16 and float8, are refused).
    #[arg(long)]
    pub legacy: bool,
    /// Print one JSON document describing what was written.
    #[arg(long)]
    pub json: bool,
}

/// Prefixes a library error with the file it is about, unless the error
/// (an I/O error) already names it, and adds the flag that helps (library
/// messages name no flags).
pub fn at<E: Into<ConvertError>>(shown: &str) -> impl Fn(E) -> anyhow::Error + '_ {
    move |e| {
        let e = e.into();
        let hint = match &e {
            ConvertError::Torch(TorchError::TensorsRefused { .. }) => {
                "; leave them out with --exclude"
            }
            _ => "",
        };
        if e.names_file() {
            anyhow::anyhow!("{e}{hint}")
        } else {
            anyhow::anyhow!("{shown}: {e}{hint}")
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Checkpoint,
    Safetensors,
    Index,
}

fn kind_of(path: &Path) -> anyhow::Result<Kind> {
    use netport_io::Sniffed;
    Ok(match netport_io::sniff_file(path)? {
        Sniffed::Json => Kind::Index,
        Sniffed::Safetensors { .. } | Sniffed::TruncatedSafetensors { .. } => Kind::Safetensors,
        _ => Kind::Checkpoint,
    })
}

/// The edits given on the command line.
pub fn edits_from(
    key: Option<&str>,
    strip_prefix: &[String],
    filter: Option<&str>,
    exclude: Option<&str>,
    rename: &[String],
    dtype: Option<&str>,
) -> anyhow::Result<Edits> {
    Ok(Edits {
        key: key.map(str::to_owned),
        strip_prefixes: strip_prefix.to_vec(),
        filter: filter.map(Edits::regex).transpose()?,
        exclude: exclude.map(Edits::regex).transpose()?,
        renames: rename
            .iter()
            .map(|r| Edits::parse_rename(r).map_err(|e| anyhow::anyhow!("--rename: {e}")))
            .collect::<Result<_, _>>()?,
        dtype: dtype.map(Edits::parse_dtype).transpose()?,
    })
}

fn target_for(args: &ConvertArgs, input: Kind, index_of: Option<Target>) -> anyhow::Result<Target> {
    if let Some(t) = args.to {
        return Ok(t);
    }
    let name = args.output.to_string_lossy().to_ascii_lowercase();
    if input == Kind::Index {
        if name.ends_with(".safetensors.index.json") {
            return Ok(Target::Safetensors);
        }
        if name.ends_with(".bin.index.json") || name.ends_with(".pt.index.json") {
            return Ok(Target::Pt);
        }
        return index_of.ok_or_else(|| anyhow::anyhow!("cannot tell the shard format; pass --to"));
    }
    if name.ends_with(".safetensors") {
        return Ok(Target::Safetensors);
    }
    if [".pt", ".pth", ".bin", ".ckpt", ".tar"]
        .iter()
        .any(|e| name.ends_with(e))
    {
        return Ok(Target::Pt);
    }
    Ok(match input {
        Kind::Safetensors => Target::Pt,
        _ => Target::Safetensors,
    })
}

fn kib(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

fn list(names: &[String]) -> String {
    let mut s = names.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 8 {
        let _ = write!(s, ", ... ({} more)", names.len() - 8);
    }
    s
}

fn report_text(t: &mut String, out: &Path, format: &str, r: &ConvertReport) {
    let _ = writeln!(
        t,
        "wrote {} ({format}, {} tensors, {})",
        out.display(),
        r.tensors,
        kib(r.file_bytes)
    );
    if r.dtype_changed > 0 {
        let saved = r.bytes_saved();
        let _ = writeln!(
            t,
            "  dtype: {} tensors converted, {} -> {} ({} {})",
            r.dtype_changed,
            kib(r.dtype_bytes_before),
            kib(r.dtype_bytes_after),
            if saved >= 0 { "saved" } else { "grew by" },
            kib(saved.unsigned_abs())
        );
    }
    if !r.aliases.is_empty() {
        let a: Vec<String> = r
            .aliases
            .iter()
            .map(|(x, k)| format!("{x} -> {k}"))
            .collect();
        let _ = writeln!(
            t,
            "  shared tensors written once (aliases recorded): {}",
            list(&a)
        );
    }
    if !r.copies.is_empty() {
        let _ = writeln!(
            t,
            "  views of a shared storage written as separate copies: {}",
            list(&r.copies)
        );
    }
    if !r.left_out.is_empty() {
        let _ = writeln!(
            t,
            "  left out by the edits: {} tensors ({})",
            r.left_out.len(),
            list(&r.left_out)
        );
    }
    if !r.dropped_values.is_empty() {
        let _ = writeln!(
            t,
            "  note: {} non-tensor values dropped (the output holds only tensors): {}",
            r.dropped_values.len(),
            list(&r.dropped_values)
        );
    }
}

fn report_json(out: &Path, format: &str, r: &ConvertReport) -> Value {
    json!({
        "output": out.display().to_string(),
        "format": format,
        "tensors": r.tensors,
        "aliases": r.aliases.iter().map(|(a, k)| json!({"name": a, "kept": k})).collect::<Vec<_>>(),
        "copies": r.copies,
        "left_out": r.left_out,
        "dropped_values": r.dropped_values,
        "dtype_changed": r.dtype_changed,
        "dtype_bytes_before": r.dtype_bytes_before,
        "dtype_bytes_after": r.dtype_bytes_after,
        "bytes_saved": r.bytes_saved(),
        "data_bytes": r.data_bytes,
        "file_bytes": r.file_bytes,
    })
}

fn pt_format(legacy: bool) -> &'static str {
    if legacy { "pt-legacy" } else { "pt" }
}

/// Runs `netport convert`.
pub fn run(args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    let edits = edits_from(
        args.key.as_deref(),
        &args.strip_prefix,
        args.filter.as_deref(),
        args.exclude.as_deref(),
        &args.rename,
        args.dtype.as_deref(),
    )?;
    let input = &args.input;
    let shown = input.display().to_string();
    let kind = kind_of(input)?;
    if netport_io::same_file(input, &args.output) {
        bail!("{shown}: the output is the input; netport never writes to its inputs");
    }
    let (format, outputs): (&str, Vec<(PathBuf, ConvertReport)>) = match kind {
        Kind::Index => {
            if args.legacy {
                bail!("{shown}: --legacy is for single files, not sharded checkpoints");
            }
            let index = ShardIndex::read(input).map_err(at(&shown))?;
            let shard_kind = index
                .shards()
                .first()
                .map(|s| kind_of(&input.parent().unwrap_or(Path::new(".")).join(s)))
                .transpose()?;
            let natural = match shard_kind {
                Some(Kind::Safetensors) => Some(Target::Pt),
                Some(_) => Some(Target::Safetensors),
                None => None,
            };
            let target = target_for(args, kind, natural)?;
            let r: ShardedReport = match (target, shard_kind) {
                (Target::Safetensors, Some(Kind::Checkpoint)) => {
                    index_to_safetensors(input, &args.output, &edits)
                }
                (Target::Pt, Some(Kind::Safetensors)) => {
                    index_to_checkpoints(input, &args.output, &edits)
                }
                (_, None) => bail!("{shown}: the index names no shard"),
                _ => bail!(
                    "{shown}: the shards are already in the requested format (rewriting is not part of convert)"
                ),
            }
            .map_err(at(&shown))?;
            let format = match target {
                Target::Safetensors => "safetensors",
                Target::Pt => "pt",
            };
            let mut outs: Vec<(PathBuf, ConvertReport)> =
                r.shards.into_iter().map(|(_, o, rep)| (o, rep)).collect();
            if !args.json {
                crate::output::print(&format!(
                    "wrote {} ({} shards, total_size {})\n",
                    r.index.display(),
                    outs.len(),
                    r.total_size
                ))?;
            }
            outs.sort_by(|a, b| a.0.cmp(&b.0));
            (format, outs)
        }
        Kind::Checkpoint => {
            let target = target_for(args, kind, None)?;
            let ckpt = Checkpoint::open(input).map_err(at(&shown))?;
            match target {
                Target::Safetensors => {
                    if args.legacy {
                        bail!("--legacy applies to .pt outputs, not safetensors");
                    }
                    let r = checkpoint_to_safetensors(&ckpt, &args.output, &edits)
                        .map_err(at(&shown))?;
                    ("safetensors", vec![(args.output.clone(), r)])
                }
                Target::Pt => {
                    let layout = if args.legacy {
                        Layout::Legacy
                    } else {
                        Layout::Zip
                    };
                    let r = rewrite_checkpoint(&ckpt, Some(input), &args.output, &edits, layout)
                        .map_err(at(&shown))?;
                    (pt_format(args.legacy), vec![(args.output.clone(), r)])
                }
            }
        }
        Kind::Safetensors => {
            if target_for(args, kind, None)? != Target::Pt {
                bail!("{shown}: the input is already safetensors; use --to pt");
            }
            let sf = SafetensorsFile::open(input).map_err(at(&shown))?;
            let r = if args.legacy {
                safetensors_to_legacy_checkpoint(&sf, Some(input), &args.output, &edits)
            } else {
                safetensors_to_checkpoint(&sf, Some(input), &args.output, &edits)
            }
            .map_err(at(&shown))?;
            (pt_format(args.legacy), vec![(args.output.clone(), r)])
        }
    };
    if args.json {
        let files: Vec<Value> = outputs
            .iter()
            .map(|(o, r)| report_json(o, format, r))
            .collect();
        let doc = json!({ "input": shown, "outputs": files });
        crate::output::print(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
    } else {
        let mut t = String::new();
        for (o, r) in &outputs {
            report_text(&mut t, o, format, r);
        }
        crate::output::print(&t)?;
    }
    Ok(ExitCode::SUCCESS)
}

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

use crate::edits::SelectArgs;
use crate::errors::at;
use crate::exit::Outcome;
use crate::global::Global;
use crate::output::{emit, preview};
use crate::progress::{Progress, size_of};
use crate::units::human_bytes;
use anyhow::bail;
use netport_safetensors::{SafetensorsFile, ShardIndex};
use netport_torch::rewrite::{Layout, rewrite_checkpoint};
use netport_torch::{Checkpoint, ConvertReport};
use netport_torch_safetensors::{
    ShardedReport, checkpoint_to_safetensors, index_to_checkpoints, index_to_safetensors,
    safetensors_to_checkpoint, safetensors_to_legacy_checkpoint,
};
use serde::Serialize;

/// Output format of `netport convert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// safetensors (`.safetensors`; shards `model-0000N-of-0000M.safetensors`).
    Safetensors,
    /// A torch.save zip checkpoint (`.pt`; shards `pytorch_model-0000N-of-0000M.bin`).
    Pt,
    /// A Caffe2 `init_net.pb` + `predict_net.pb` pair in the folder OUT (from ONNX).
    Caffe2,
    /// An ONNX model (from a Caffe2 pair).
    Onnx,
}

/// Convert a PyTorch checkpoint to safetensors or back (also sharded
/// checkpoints through their index), with key and dtype edits.
///
/// The input kind is detected from the bytes; the output format is --to,
/// else OUT's extension, else the other format. A checkpoint to a `.pt` is a
/// plain rewrite (the edited tensors as a state dict). Exit code 0 on
/// success, 2 on error (nothing is written then).
#[derive(clap::Args, Debug)]
pub struct Args {
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
    #[command(flatten)]
    pub select: SelectArgs,
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
    #[command(flatten)]
    pub caffe2: super::convert_caffe2::Caffe2Args,
    /// Print one JSON document describing what was written.
    #[arg(long)]
    pub json: bool,
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

fn target_for(args: &Args, input: Kind, index_of: Option<Target>) -> anyhow::Result<Target> {
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

fn report_text(t: &mut String, out: &Path, format: &str, r: &ConvertReport) {
    let _ = writeln!(
        t,
        "wrote {}: {format}, {} tensors, {}",
        out.display(),
        r.tensors,
        human_bytes(r.file_bytes)
    );
    if r.dtype_changed > 0 {
        let saved = r.bytes_saved();
        let _ = writeln!(
            t,
            "  dtype: {} tensors converted, {} -> {}; {} {}",
            r.dtype_changed,
            human_bytes(r.dtype_bytes_before),
            human_bytes(r.dtype_bytes_after),
            if saved >= 0 { "saved" } else { "grew by" },
            human_bytes(saved.unsigned_abs())
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
            preview(&a, 8)
        );
    }
    if !r.copies.is_empty() {
        let _ = writeln!(
            t,
            "  views of a shared storage written as separate copies: {}",
            preview(&r.copies, 8)
        );
    }
    if !r.left_out.is_empty() {
        let _ = writeln!(
            t,
            "  left out by the edits: {} tensors ({})",
            r.left_out.len(),
            preview(&r.left_out, 8)
        );
    }
    if !r.dropped_values.is_empty() {
        let _ = writeln!(
            t,
            "  note: {} non-tensor values dropped (the output holds only tensors): {}",
            r.dropped_values.len(),
            preview(&r.dropped_values, 8)
        );
    }
}

#[derive(Serialize)]
struct ConvertJson<'a> {
    input: &'a str,
    outputs: Vec<OutputJson<'a>>,
}

#[derive(Serialize)]
struct OutputJson<'a> {
    output: String,
    format: &'a str,
    tensors: usize,
    aliases: Vec<AliasJson<'a>>,
    copies: &'a [String],
    left_out: &'a [String],
    dropped_values: &'a [String],
    dtype_changed: usize,
    dtype_bytes_before: u64,
    dtype_bytes_after: u64,
    bytes_saved: i64,
    data_bytes: u64,
    file_bytes: u64,
}

#[derive(Serialize)]
struct AliasJson<'a> {
    name: &'a str,
    kept: &'a str,
}

fn report_json<'a>(out: &Path, format: &'a str, r: &'a ConvertReport) -> OutputJson<'a> {
    OutputJson {
        output: out.display().to_string(),
        format,
        tensors: r.tensors,
        aliases: r
            .aliases
            .iter()
            .map(|(name, kept)| AliasJson { name, kept })
            .collect(),
        copies: &r.copies,
        left_out: &r.left_out,
        dropped_values: &r.dropped_values,
        dtype_changed: r.dtype_changed,
        dtype_bytes_before: r.dtype_bytes_before,
        dtype_bytes_after: r.dtype_bytes_after,
        bytes_saved: r.bytes_saved(),
        data_bytes: r.data_bytes,
        file_bytes: r.file_bytes,
    }
}

fn pt_format(legacy: bool) -> &'static str {
    if legacy { "pt-legacy" } else { "pt" }
}

/// Runs `netport convert`.
pub fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    if super::convert_caffe2::applies(args) {
        return super::convert_caffe2::run(args, global);
    }
    let edits = args
        .select
        .edits(args.key.as_deref(), &args.rename, args.dtype.as_deref())?;
    let input = &args.input;
    let shown = input.display().to_string();
    let kind = kind_of(input)?;
    if netport_io::same_file(input, &args.output) {
        bail!("{shown}: the output is the input; netport never writes to its inputs");
    }
    let progress = Progress::start(
        global,
        args.json,
        format!("writing {}", args.output.display()),
        expected_bytes(input, kind),
    );
    let mut index_line = None;
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
                _ => "pt",
            };
            let mut outs: Vec<(PathBuf, ConvertReport)> =
                r.shards.into_iter().map(|(_, o, rep)| (o, rep)).collect();
            index_line = Some(format!(
                "wrote {}: {} shards, total_size {}\n",
                r.index.display(),
                outs.len(),
                r.total_size
            ));
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
                Target::Caffe2 | Target::Onnx => {
                    bail!("{shown}: a PyTorch checkpoint converts to safetensors or .pt only")
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
    progress.finish();
    emit(
        args.json,
        || ConvertJson {
            input: &shown,
            outputs: outputs
                .iter()
                .map(|(o, r)| report_json(o, format, r))
                .collect(),
        },
        || {
            let mut t = index_line.unwrap_or_default();
            for (o, r) in &outputs {
                report_text(&mut t, o, format, r);
            }
            t
        },
    )?;
    Ok(Outcome::Ok)
}

/// About how many bytes the conversion writes: the input's size (for an
/// index, its shards').
fn expected_bytes(input: &Path, kind: Kind) -> u64 {
    if kind != Kind::Index {
        return size_of(input);
    }
    let dir = input.parent().unwrap_or(Path::new("."));
    ShardIndex::read(input)
        .map(|index| index.shards().iter().map(|s| size_of(&dir.join(s))).sum())
        .unwrap_or(0)
}

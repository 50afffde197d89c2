//! `netport scan FILE...`: the safety verdict of each file's pickles (see
//! `netport_torch::scan`), a line per global with its byte offset, what
//! `torch.load(weights_only=True)` would do, and a summary. Exit code 0 when
//! every file is safe (everything allowed by weights_only and it loads), 1
//! otherwise, 2 when a file cannot be scanned.

use crate::exit::Outcome;
use crate::global::Global;
use crate::output::emit;
use netport_pickle::{GlobalClass, ScanVerdict};
use netport_torch::{FileScan, ScannedPickle, scan_file};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Give a safety verdict for every pickle in PyTorch files, bare pickles of
/// any protocol and NumPy .npy/.npz object arrays, without loading them.
///
/// Every global each pickle would import is listed with its byte offset
/// and class: allowed by torch.load(weights_only=True); benign but not
/// allowlisted (with the add_safe_globals line you would need);
/// suspicious (unknown); dangerous (code execution, system access, or
/// unresolvable). Also says whether torch.load(weights_only=True) would
/// load the file. Exit code 0 when every file is safe, 1 otherwise, 2 when
/// a file cannot be scanned.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files to scan (.pt, .pth, .bin, .ckpt, .pkl, .npy, .npz, ...).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print one JSON document (field names documented in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

fn class_name(c: GlobalClass) -> &'static str {
    match c {
        GlobalClass::Allowed => "allowed",
        GlobalClass::BenignNotAllowlisted => "needs-allowlist",
        GlobalClass::Unknown => "suspicious",
        GlobalClass::Dangerous => "dangerous",
    }
}

#[derive(Serialize)]
struct ScanJson {
    files: Vec<FileJson>,
    summary: SummaryJson,
}

#[derive(Serialize)]
struct SummaryJson {
    files: usize,
    by_verdict: BTreeMap<String, usize>,
    errors: usize,
    all_safe: bool,
}

/// A scanned file, or one that could not be scanned (`{path, error}`).
#[derive(Serialize)]
#[serde(untagged)]
enum FileJson {
    Scanned(Box<ScannedJson>),
    Failed { path: String, error: String },
}

#[derive(Serialize)]
struct ScannedJson {
    path: String,
    format: &'static str,
    verdict: String,
    weights_only: WeightsOnlyJson,
    unsafe_load: Option<String>,
    add_safe_globals: Option<String>,
    findings: Vec<FindingJson>,
    pickles: Vec<PickleJson>,
}

#[derive(Serialize)]
struct WeightsOnlyJson {
    loads: Option<bool>,
    reason: Option<String>,
    torch_error: Option<String>,
}

#[derive(Serialize)]
struct FindingJson {
    offset: u64,
    reason: String,
    verdict: String,
}

#[derive(Serialize)]
struct PickleJson {
    name: String,
    read_by_torch_load: bool,
    offset: u64,
    protocol: Option<u8>,
    verdict: String,
    error: Option<String>,
    weights_only_loads: bool,
    globals: Vec<GlobalJson>,
}

#[derive(Serialize)]
struct GlobalJson {
    name: String,
    class: &'static str,
    offset: u64,
    opcode: &'static str,
    occurrences: u64,
    rule: &'static str,
}

fn pickle_json(p: &ScannedPickle) -> PickleJson {
    PickleJson {
        name: p.name.clone(),
        read_by_torch_load: p.read_by_torch_load,
        offset: p.scan.start,
        protocol: p.scan.protocol,
        verdict: p.verdict().to_string(),
        error: p.scan.error.as_ref().map(|e| e.to_string()),
        weights_only_loads: p.scan.weights_only.loads,
        globals: p
            .scan
            .globals
            .iter()
            .map(|g| GlobalJson {
                name: g.full_name(),
                class: class_name(p.class_of(g)),
                offset: g.offset,
                opcode: g.opcode.name(),
                occurrences: g.occurrences,
                rule: g.source,
            })
            .collect(),
    }
}

fn file_json(path: &str, s: &FileScan) -> FileJson {
    FileJson::Scanned(Box::new(ScannedJson {
        path: path.to_owned(),
        format: s.format.name(),
        verdict: s.verdict.to_string(),
        weights_only: WeightsOnlyJson {
            loads: s.weights_only.loads,
            reason: s.weights_only.reason.clone(),
            torch_error: s.weights_only.torch_error.clone(),
        },
        unsafe_load: s.unsafe_load.clone(),
        add_safe_globals: s.add_safe_globals(),
        findings: s
            .findings
            .iter()
            .map(|f| FindingJson {
                offset: f.offset,
                reason: f.reason.clone(),
                verdict: f.verdict.to_string(),
            })
            .collect(),
        pickles: s.pickles.iter().map(pickle_json).collect(),
    }))
}

fn file_text(t: &mut String, path: &str, s: &FileScan) {
    let _ = writeln!(
        t,
        "{path}: {} ({})",
        s.verdict.to_string().to_uppercase(),
        s.format
    );
    for f in &s.findings {
        let _ = writeln!(
            t,
            "  {:<15} at byte {}: {}",
            f.verdict.to_string(),
            f.offset,
            f.reason
        );
    }
    for p in &s.pickles {
        let _ = writeln!(
            t,
            "  {} (protocol {}, at byte {}){}",
            p.name,
            p.scan
                .protocol
                .map_or("0 or 1, no PROTO".into(), |v| v.to_string()),
            p.scan.start,
            if p.read_by_torch_load {
                ""
            } else {
                " [not read by torch.load]"
            }
        );
        for g in &p.scan.globals {
            let _ = writeln!(
                t,
                "    {:<15} {:<48} at byte {}{}",
                class_name(p.class_of(g)),
                g.full_name(),
                g.offset,
                if g.occurrences > 1 {
                    format!(" (x{})", g.occurrences)
                } else {
                    String::new()
                }
            );
        }
        if let Some(e) = &p.scan.error {
            let _ = writeln!(t, "    error: {e}");
        }
    }
    let reason = s.weights_only.reason.as_deref().unwrap_or("?");
    match s.weights_only.loads {
        Some(true) => {
            let _ = writeln!(t, "  torch.load(weights_only=True): loads");
        }
        None => {
            let _ = writeln!(t, "  torch.load(weights_only=True): cannot tell: {reason}");
        }
        Some(false) => {
            let _ = writeln!(t, "  torch.load(weights_only=True): refused: {reason}");
            if let Some(e) = &s.weights_only.torch_error {
                let _ = writeln!(t, "    torch says: {e}");
            }
        }
    }
    if let Some(what) = &s.unsafe_load {
        let _ = writeln!(t, "  unsafe load: {what}");
    }
    if let Some(line) = s.add_safe_globals() {
        let _ = writeln!(t, "  to allow the benign globals: {line}");
    }
}

/// Runs `netport scan`.
pub fn run(args: &Args, _global: &Global) -> anyhow::Result<Outcome> {
    let mut text = String::new();
    let mut files = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors = 0usize;
    let mut worst = ScanVerdict::Safe;
    for path in &args.files {
        let name = path.display().to_string();
        match scan_file(path) {
            Ok(s) => {
                worst = worst.max(s.verdict);
                *counts.entry(s.verdict.to_string()).or_default() += 1;
                file_text(&mut text, &name, &s);
                files.push(file_json(&name, &s));
            }
            Err(e) => {
                errors += 1;
                let error = e.to_string();
                let message = crate::errors::at(&name)(e).to_string();
                let _ = writeln!(text, "ERROR: {message}");
                eprintln!("netport: error: {message}");
                files.push(FileJson::Failed { path: name, error });
            }
        }
    }
    let n = args.files.len();
    let all_safe = errors == 0 && worst == ScanVerdict::Safe;
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let _ = writeln!(
        text,
        "summary: {n} file{}: {}{}",
        if n == 1 { "" } else { "s" },
        if parts.is_empty() {
            "none scanned".into()
        } else {
            parts.join(", ")
        },
        if errors > 0 {
            format!(", {errors} could not be scanned")
        } else {
            String::new()
        }
    );
    emit(
        args.json,
        || ScanJson {
            files,
            summary: SummaryJson {
                files: n,
                by_verdict: counts,
                errors,
                all_safe,
            },
        },
        || text,
    )?;
    Ok(if errors > 0 {
        Outcome::Errors
    } else {
        Outcome::findings_if(!all_safe)
    })
}

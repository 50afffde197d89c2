//! `netport scan FILE...`: the safety verdict of each file's pickles (see
//! `netport_torch::scan`), a line per global with its byte offset, what
//! `torch.load(weights_only=True)` would do, and a summary. Exit code 0 when
//! every file is safe (everything allowed by weights_only and it loads), 1
//! otherwise, 2 when a file cannot be scanned.

use netport_pickle::{GlobalClass, ScanVerdict};
use netport_torch::{FileScan, scan_file};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

fn class_name(c: GlobalClass) -> &'static str {
    match c {
        GlobalClass::Allowed => "allowed",
        GlobalClass::BenignNotAllowlisted => "needs-allowlist",
        GlobalClass::Unknown => "suspicious",
        GlobalClass::Dangerous => "dangerous",
    }
}

fn file_json(path: &str, s: &FileScan) -> Value {
    json!({
        "path": path,
        "format": s.format.name(),
        "verdict": s.verdict.to_string(),
        "weights_only": {
            "loads": s.weights_only.loads,
            "reason": s.weights_only.reason,
            "torch_error": s.weights_only.torch_error,
        },
        "unsafe_load": s.unsafe_load,
        "add_safe_globals": s.add_safe_globals(),
        "findings": s.findings.iter().map(|f| json!({
            "offset": f.offset, "reason": f.reason, "verdict": f.verdict.to_string(),
        })).collect::<Vec<_>>(),
        "pickles": s.pickles.iter().map(|p| json!({
            "name": p.name,
            "read_by_torch_load": p.read_by_torch_load,
            "offset": p.scan.start,
            "protocol": p.scan.protocol,
            "verdict": p.verdict().to_string(),
            "error": p.scan.error.as_ref().map(|e| e.to_string()),
            "weights_only_loads": p.scan.weights_only.loads,
            "globals": p.scan.globals.iter().map(|g| json!({
                "name": g.full_name(),
                "class": class_name(p.class_of(g)),
                "offset": g.offset,
                "opcode": g.opcode.name(),
                "occurrences": g.occurrences,
                "rule": g.source,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
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
            p.scan.protocol.map_or("?".into(), |v| v.to_string()),
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

pub fn run(paths: &[PathBuf], json_out: bool) -> anyhow::Result<ExitCode> {
    let mut text = String::new();
    let mut files = Vec::new();
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    let mut errors = 0usize;
    let mut worst = ScanVerdict::Safe;
    for path in paths {
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
                // I/O errors already name the file.
                let message = match e {
                    netport_torch::TorchError::Io { .. } => e.to_string(),
                    _ => format!("{name}: {e}"),
                };
                let _ = writeln!(text, "ERROR: {message}");
                eprintln!("netport: error: {message}");
                files.push(json!({"path": name, "error": e.to_string()}));
            }
        }
    }
    let summary = json!({
        "files": paths.len(),
        "by_verdict": counts,
        "errors": errors,
        "all_safe": errors == 0 && worst == ScanVerdict::Safe,
    });
    if json_out {
        let mut doc = serde_json::to_string_pretty(&json!({"files": files, "summary": summary}))?;
        doc.push('\n');
        crate::output::print(&doc)?;
    } else {
        let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = writeln!(
            text,
            "summary: {} file{}: {}{}",
            paths.len(),
            if paths.len() == 1 { "" } else { "s" },
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
        crate::output::print(&text)?;
    }
    Ok(if errors > 0 {
        ExitCode::from(2)
    } else if worst == ScanVerdict::Safe {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

//! The safety verdict for a whole file: every pickle it holds is scanned with
//! [`netport_pickle::scan`](fn@netport_pickle::scan) (every pickle-looking zip entry, the stacked
//! pickles of a legacy file, a bare pickle, and, recursively, the payloads of
//! `torch.storage._load_from_bytes` calls), container tricks are reported
//! (duplicate zip names), and the file is judged as `torch.load` would see it:
//! which pickles it reads, and whether `weights_only=True` accepts them.
//!
//! Nothing is loaded or executed; the scan reads bytes and never builds
//! tensors, so it works on files that would not open as checkpoints.

use std::borrow::Cow;

use netport_pickle::{
    GlobalClass, GlobalFinding, Limits, NestedKind, PickleScan, ScanVerdict, scan as scan_pickle,
};

use crate::error::TorchError;
use crate::read::checkpoint::inflate;
use crate::read::detect::{Detected, Format, detect};
use crate::read::zip::ZipArchive;

/// How deep nested `torch.save` payloads are followed.
pub const MAX_NESTING: usize = 4;

/// Largest pickle inflated from a compressed zip entry.
const MAX_INFLATED: u64 = 1 << 30;

/// One scanned pickle.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedPickle {
    /// Where it is: a zip record (`archive/data.pkl`), `legacy pickle #N`,
    /// `pickle`, or a nested path (`archive/data.pkl > _load_from_bytes at
    /// byte 120 > archive/data.pkl`).
    pub name: String,
    /// Whether `torch.load` reads this pickle (data.pkl of a zip checkpoint,
    /// the stacked pickles of a legacy file); other pickles are scanned
    /// because a different loader may read them.
    pub read_by_torch_load: bool,
    /// Every `torch.save` payload this pickle loads (`_load_from_bytes`) was
    /// found and scanned (its pickles follow this one). When true, such a
    /// call is judged by what it loads, not as dangerous by itself.
    pub payloads_scanned: bool,
    /// The findings, with offsets absolute in the outermost file for
    /// top-level pickles and relative to the payload for nested ones.
    pub scan: PickleScan,
}

/// Something about the container itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerFinding {
    /// File offset it concerns.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
    /// How bad it is.
    pub verdict: ScanVerdict,
}

/// Would `torch.load(f)` (weights_only=True, the default since torch 2.6)
/// load the file?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsOnlyVerdict {
    /// It would load (`Some(true)`), it would not (`Some(false)`), or it
    /// cannot be told: a zip with duplicate `data.pkl` entries that disagree,
    /// where which one torch reads depends on its zip reader's binary search
    /// over a sorted index (`None`).
    pub loads: Option<bool>,
    /// Why not: our words, with the pickle and offset.
    pub reason: Option<String>,
    /// What torch would print, when predictable.
    pub torch_error: Option<String>,
}

/// The scan of one file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileScan {
    /// What the file is.
    pub format: Format,
    /// Its pickles, in file order, nested payloads after the pickle that
    /// holds them.
    pub pickles: Vec<ScannedPickle>,
    /// Container-level findings.
    pub findings: Vec<ContainerFinding>,
    /// The `torch.load(weights_only=True)` verdict.
    pub weights_only: WeightsOnlyVerdict,
    /// The worst of everything: pickle verdicts, container findings, and
    /// `WeightsOnlyIncompatible` when nothing worse applies but torch would
    /// refuse the file.
    pub verdict: ScanVerdict,
}

impl FileScan {
    /// The `add_safe_globals` line covering every benign, non-allowlisted
    /// global in the pickles `torch.load` reads.
    pub fn add_safe_globals(&self) -> Option<String> {
        let mut names: Vec<String> = Vec::new();
        for p in self.pickles.iter().filter(|p| p.read_by_torch_load) {
            for g in &p.scan.globals {
                if p.class_of(g) == GlobalClass::BenignNotAllowlisted
                    && let Some(n) = g.python_name()
                    && !names.contains(&n)
                {
                    names.push(n);
                }
            }
        }
        (!names.is_empty()).then(|| {
            format!(
                "torch.serialization.add_safe_globals([{}])",
                names.join(", ")
            )
        })
    }
}

/// Scans the file at `path` (memory mapped).
pub fn scan_file(path: impl AsRef<std::path::Path>) -> Result<FileScan, TorchError> {
    let map = netport_io::map_file(path.as_ref())?;
    scan_bytes(&map)
}

/// Scans a whole file held in memory.
pub fn scan_bytes(data: &[u8]) -> Result<FileScan, TorchError> {
    scan_at_depth(data, "", 0)
}

fn is_pickle_start(data: &[u8]) -> bool {
    data.len() >= 2 && data[0] == 0x80 && (2..=5).contains(&data[1])
}

fn scan_at_depth(data: &[u8], prefix: &str, depth: usize) -> Result<FileScan, TorchError> {
    let limits = Limits::default();
    let detected = detect(data);
    let mut pickles = Vec::new();
    let mut findings = Vec::new();
    let format = match &detected {
        Detected::Torch(f @ (Format::Zip | Format::TorchScript | Format::Pt2)) => {
            let (zip, duplicates) = ZipArchive::parse_keeping_duplicates(data)?;
            for d in &duplicates {
                findings.push(ContainerFinding {
                    offset: d.header_offset,
                    reason: format!("{d} (a way to show a scanner one pickle and torch another)"),
                    verdict: ScanVerdict::Dangerous,
                });
            }
            let archive = zip.archive_name().unwrap_or("").to_string();
            for e in zip.entries() {
                let range = e.data_range();
                let raw = data
                    .get(range.start as usize..range.end as usize)
                    .unwrap_or(&[]);
                let bytes: Cow<'_, [u8]> = if e.is_stored() {
                    Cow::Borrowed(raw)
                } else if e.name.ends_with(".pkl") || e.name.contains(".debug_pkl") {
                    match inflate(raw, &e.name, range.start, MAX_INFLATED) {
                        Ok(v) => Cow::Owned(v),
                        Err(err) => {
                            findings.push(ContainerFinding {
                                offset: e.header_offset,
                                reason: format!("a compressed pickle record cannot be read: {err}"),
                                verdict: ScanVerdict::Suspicious,
                            });
                            continue;
                        }
                    }
                } else {
                    continue;
                };
                if !(e.name.ends_with(".pkl") || is_pickle_start(&bytes)) {
                    continue;
                }
                let base = if e.is_stored() { range.start } else { 0 };
                // With duplicate names torch may read either copy, so both
                // count as read.
                let read = *f == Format::Zip
                    && e.name
                        .get(archive.len()..)
                        .is_some_and(|r| r.eq_ignore_ascii_case("/data.pkl"));
                let name = format!("{prefix}{}", e.name);
                push_pickle(&mut pickles, &bytes, base, name, read, depth, &limits)?;
            }
            *f
        }
        Detected::Torch(Format::Legacy) => {
            let mut offset = 0usize;
            for n in 1..=5 {
                let Some(rest) = data.get(offset..).filter(|r| !r.is_empty()) else {
                    break;
                };
                let name = format!("{prefix}legacy pickle #{n}");
                let end = push_pickle(
                    &mut pickles,
                    rest,
                    offset as u64,
                    name,
                    true,
                    depth,
                    &limits,
                )?;
                match end {
                    Some(e) => offset = e as usize,
                    None => break,
                }
            }
            Format::Legacy
        }
        Detected::Pickle { .. } => {
            let name = format!("{prefix}pickle");
            push_pickle(&mut pickles, data, 0, name, true, depth, &limits)?;
            // A bare pickle is what torch.load's legacy path reads; without the
            // magic number it fails there, but its content is what matters.
            Format::Legacy
        }
        other => {
            return Err(TorchError::NotACheckpoint {
                detected: other.clone(),
            });
        }
    };

    let weights_only = weights_only_verdict(format, &detected, &pickles);
    let mut verdict = pickles
        .iter()
        .map(ScannedPickle::verdict)
        .chain(findings.iter().map(|f| f.verdict))
        .max()
        .unwrap_or(ScanVerdict::Safe);
    if verdict == ScanVerdict::Safe && weights_only.loads != Some(true) {
        verdict = ScanVerdict::WeightsOnlyIncompatible;
    }
    Ok(FileScan {
        format,
        pickles,
        findings,
        weights_only,
        verdict,
    })
}

/// Callables whose `torch.save` payload the scan follows.
const NESTED_LOADERS: &[&str] = &["torch.storage._load_from_bytes"];

impl ScannedPickle {
    /// The class `g` counts with in this file. A call that loads a nested
    /// `torch.save` payload is as dangerous as what it loads, and that is
    /// scanned separately when [`payloads_scanned`](Self::payloads_scanned):
    /// then the call itself only needs allowlisting.
    pub fn class_of(&self, g: &GlobalFinding) -> GlobalClass {
        if self.payloads_scanned && NESTED_LOADERS.contains(&g.full_name().as_str()) {
            GlobalClass::BenignNotAllowlisted
        } else {
            g.class
        }
    }

    /// The verdict of this pickle in its file: its globals (with
    /// [`class_of`](Self::class_of)), and for a pickle torch.load reads,
    /// whether weights_only accepts it.
    pub fn verdict(&self) -> ScanVerdict {
        let globals = match self.scan.globals.iter().map(|g| self.class_of(g)).max() {
            None | Some(GlobalClass::Allowed) => ScanVerdict::Safe,
            Some(GlobalClass::BenignNotAllowlisted) => ScanVerdict::NeedsAllowlist,
            Some(GlobalClass::Unknown) => ScanVerdict::Suspicious,
            Some(GlobalClass::Dangerous) => ScanVerdict::Dangerous,
        };
        if self.read_by_torch_load && !self.scan.weights_only.loads {
            globals.max(ScanVerdict::WeightsOnlyIncompatible)
        } else {
            globals
        }
    }
}

/// Scans one pickle (and its nested payloads); returns where it ended.
fn push_pickle(
    out: &mut Vec<ScannedPickle>,
    bytes: &[u8],
    base: u64,
    name: String,
    read_by_torch_load: bool,
    depth: usize,
    limits: &Limits,
) -> Result<Option<u64>, TorchError> {
    let scan = scan_pickle(bytes, base, limits);
    let end = scan.end;
    let payloads = scan.payloads.clone();
    let index = out.len();
    out.push(ScannedPickle {
        name: name.clone(),
        read_by_torch_load,
        payloads_scanned: true,
        scan,
    });
    for payload in payloads {
        let inner = if depth < MAX_NESTING && payload.kind == NestedKind::TorchSave {
            payload.bytes(bytes, base)
        } else {
            None
        };
        let Some(inner) = inner else {
            out[index].payloads_scanned = false;
            continue;
        };
        let prefix = format!(
            "{name} > {} at byte {} > ",
            payload.callable, payload.call_offset
        );
        match scan_at_depth(&inner, &prefix, depth + 1) {
            Ok(nested) => out.extend(nested.pickles.into_iter().map(|mut p| {
                p.read_by_torch_load = false;
                p
            })),
            Err(_) if is_pickle_start(&inner) => {
                // An unreadable payload is scanned as a bare pickle, so its
                // globals are still seen.
                push_pickle(
                    out,
                    &inner,
                    0,
                    format!("{prefix}pickle"),
                    false,
                    depth + 1,
                    limits,
                )?;
            }
            Err(_) => out[index].payloads_scanned = false,
        }
    }
    Ok(end)
}

fn weights_only_verdict(
    format: Format,
    detected: &Detected,
    pickles: &[ScannedPickle],
) -> WeightsOnlyVerdict {
    let refuse = |reason: String, torch_error: Option<String>| WeightsOnlyVerdict {
        loads: Some(false),
        reason: Some(reason),
        torch_error,
    };
    match format {
        Format::TorchScript => {
            return refuse(
                "a TorchScript archive: torch.load(weights_only=True) refuses it (use torch.jit.load)".into(),
                Some("Cannot use ``weights_only=True`` with TorchScript archives passed to ``torch.load``.".into()),
            );
        }
        Format::Pt2 => {
            return refuse(
                "a torch.export archive: read it with torch.export.load, not torch.load".into(),
                None,
            );
        }
        Format::LegacyTar => return refuse("a legacy tar checkpoint".into(), None),
        Format::Zip | Format::Legacy => {}
    }
    if matches!(detected, Detected::Pickle { .. }) {
        return refuse(
            "a plain pickle without PyTorch's legacy magic number: torch.load fails on it".into(),
            None,
        );
    }
    let read: Vec<&ScannedPickle> = pickles.iter().filter(|p| p.read_by_torch_load).collect();
    if read.is_empty() {
        return refuse(
            "no pickle that torch.load reads (data.pkl) was found".into(),
            None,
        );
    }
    // Why one pickle is refused, if it is.
    let blocked = |p: &ScannedPickle| -> Option<WeightsOnlyVerdict> {
        if let Some(b) = p.scan.weights_only.first_blocker() {
            return Some(refuse(
                format!("{} at byte {}: {}", p.name, b.offset, b.reason),
                b.torch_error.clone(),
            ));
        }
        (!p.scan.weights_only.loads).then(|| {
            refuse(
                match &p.scan.error {
                    Some(e) => format!("{}: {e}", p.name),
                    None => format!("{}: the pickle is incomplete", p.name),
                },
                None,
            )
        })
    };
    let verdicts: Vec<Option<WeightsOnlyVerdict>> = read.iter().map(|p| blocked(p)).collect();
    match format {
        // Legacy files: torch reads every stacked pickle in turn.
        Format::Legacy => verdicts.into_iter().flatten().next(),
        // Zip: one data.pkl, or duplicates of which torch reads one.
        _ if verdicts.iter().all(Option::is_some) => verdicts.into_iter().flatten().next(),
        _ if verdicts.iter().all(Option::is_none) => None,
        _ => {
            return WeightsOnlyVerdict {
                loads: None,
                reason: Some(format!(
                    "the archive has {} data.pkl entries (duplicate names) and torch would load some but not others; which one it reads depends on its zip reader",
                    read.len()
                )),
                torch_error: None,
            };
        }
    }
    .unwrap_or(WeightsOnlyVerdict {
        loads: Some(true),
        reason: None,
        torch_error: None,
    })
}

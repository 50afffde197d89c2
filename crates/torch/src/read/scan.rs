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
use crate::read::detect::{Detected, Format, detect, npy_header, pickle_head};
use crate::read::zip::ZipArchive;

/// How deep nested `torch.save` payloads are followed.
pub const MAX_NESTING: usize = 4;

/// Largest pickle inflated from a compressed zip entry.
const MAX_INFLATED: u64 = 1 << 30;

/// Largest compressed zip entry of another name (a storage record, a
/// member of another zip) inflated to see whether it holds a pickle.
const MAX_INFLATED_OTHER: u64 = 64 << 20;

/// Most stacked pickles read from one bare-pickle file.
const MAX_STACKED: usize = 64;

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

/// What kind of file was scanned: the PyTorch formats, and the other files
/// that hold pickles a loader may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScannedFormat {
    /// A PyTorch checkpoint or archive.
    Torch(Format),
    /// One or more pickles of any protocol without PyTorch's magic number
    /// (`pickle.dump` output, or something posing as a checkpoint).
    Pickle,
    /// A NumPy `.npy` array.
    Npy,
    /// A zip that is no PyTorch archive (a NumPy `.npz` among them): every
    /// entry that holds a pickle or a `.npy` object array is scanned.
    OtherZip,
}

impl ScannedFormat {
    /// A short name: the [`Format::name`]s, `pickle`, `npy`, `other-zip`.
    pub fn name(self) -> &'static str {
        match self {
            ScannedFormat::Torch(f) => f.name(),
            ScannedFormat::Pickle => "pickle",
            ScannedFormat::Npy => "npy",
            ScannedFormat::OtherZip => "other-zip",
        }
    }
}

impl std::fmt::Display for ScannedFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScannedFormat::Torch(format) => write!(f, "{format}"),
            ScannedFormat::Pickle => f.write_str("plain pickle, no PyTorch magic number"),
            ScannedFormat::Npy => f.write_str("NumPy .npy array"),
            ScannedFormat::OtherZip => f.write_str("zip archive that is not a PyTorch one"),
        }
    }
}

/// The scan of one file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileScan {
    /// What the file is.
    pub format: ScannedFormat,
    /// Its pickles, in file order, nested payloads after the pickle that
    /// holds them.
    pub pickles: Vec<ScannedPickle>,
    /// Container-level findings.
    pub findings: Vec<ContainerFinding>,
    /// The `torch.load(weights_only=True)` verdict.
    pub weights_only: WeightsOnlyVerdict,
    /// What an unsafe load would unpickle, and so run: `torch.load(f,
    /// weights_only=False)`, or `numpy.load(f, allow_pickle=True)` for NumPy
    /// files. `None` when it unpickles nothing.
    pub unsafe_load: Option<String>,
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
        zip @ (Detected::Torch(Format::Zip | Format::TorchScript | Format::Pt2)
        | Detected::OtherZip { .. }
        | Detected::LegacyExportZip) => {
            let torch = zip.format();
            let (p, f) = (&mut pickles, &mut findings);
            scan_zip(data, torch, prefix, depth, &limits, p, f)?;
            torch.map_or(ScannedFormat::OtherZip, ScannedFormat::Torch)
        }
        Detected::Torch(Format::Legacy) => {
            scan_stacked(
                data,
                5,
                true,
                prefix,
                "legacy pickle",
                depth,
                &limits,
                &mut pickles,
            )?;
            ScannedFormat::Torch(Format::Legacy)
        }
        Detected::Pickle { .. } => {
            // torch.load's legacy path unpickles the first pickle (to read
            // the magic number); a loader of stacked pickles reads the rest.
            scan_stacked(
                data,
                MAX_STACKED,
                false,
                prefix,
                "pickle",
                depth,
                &limits,
                &mut pickles,
            )?;
            ScannedFormat::Pickle
        }
        Detected::Npy {
            pickled,
            data_offset,
        } => {
            if *pickled {
                let at = *data_offset as usize;
                let name = format!("{prefix}object array");
                push_pickle(
                    &mut pickles,
                    &data[at..],
                    at as u64,
                    name,
                    false,
                    depth,
                    &limits,
                )?;
            }
            ScannedFormat::Npy
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
    // A file torch.load cannot read is only a finding for what poses as a
    // checkpoint, not for NumPy files and other zips.
    let posing = matches!(format, ScannedFormat::Torch(_) | ScannedFormat::Pickle);
    if posing && verdict == ScanVerdict::Safe && weights_only.loads != Some(true) {
        verdict = ScanVerdict::WeightsOnlyIncompatible;
    }
    let unsafe_load = unsafe_load(format, &pickles);
    Ok(FileScan {
        format,
        pickles,
        findings,
        weights_only,
        unsafe_load,
        verdict,
    })
}

/// Scans every entry of a zip that may hold a pickle: `.pkl` records, any
/// other record that parses as a pickle of any protocol (storage records
/// of a PyTorch archive only when they start with PROTO), and `.npy`
/// members that are object arrays. `torch_format` is the PyTorch archive
/// kind, `None` for other zips.
fn scan_zip(
    data: &[u8],
    torch_format: Option<Format>,
    prefix: &str,
    depth: usize,
    limits: &Limits,
    pickles: &mut Vec<ScannedPickle>,
    findings: &mut Vec<ContainerFinding>,
) -> Result<(), TorchError> {
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
        let named_pickle = e.name.ends_with(".pkl") || e.name.contains(".debug_pkl");
        let named_npy = e.name.to_ascii_lowercase().ends_with(".npy");
        let rest = e.name.get(archive.len()..).unwrap_or("");
        let storage =
            torch_format.is_some() && (rest.starts_with("/data/") || rest.starts_with("/.data/"));
        let bytes: Cow<'_, [u8]> = if e.is_stored() {
            Cow::Borrowed(raw)
        } else {
            let max = if named_pickle || named_npy {
                MAX_INFLATED
            } else {
                MAX_INFLATED_OTHER
            };
            match inflate(raw, &e.name, range.start, max) {
                Ok(v) => Cow::Owned(v),
                Err(err) => {
                    findings.push(ContainerFinding {
                        offset: e.header_offset(),
                        reason: format!("a compressed record cannot be looked into: {err}"),
                        verdict: ScanVerdict::Suspicious,
                    });
                    continue;
                }
            }
        };
        let base = if e.is_stored() { range.start } else { 0 };
        let name = format!("{prefix}{}", e.name);
        if named_npy || bytes.starts_with(netport_tensor::npy::MAGIC) {
            match npy_header(&bytes) {
                Ok((true, at)) => {
                    let inner = &bytes[at as usize..];
                    let name = format!("{name} (object array)");
                    push_pickle(pickles, inner, base + at, name, false, depth, limits)?;
                }
                Ok((false, _)) => {}
                Err(reason) => findings.push(ContainerFinding {
                    offset: e.header_offset(),
                    reason: format!("{}: {reason}", e.name),
                    verdict: ScanVerdict::Suspicious,
                }),
            }
            continue;
        }
        let is_pickle = if named_pickle {
            true
        } else if storage {
            is_pickle_start(&crate::read::zip::record_head(&bytes, 2))
        } else {
            pickle_head(&bytes).is_some()
        };
        if !is_pickle {
            continue;
        }
        // With duplicate names torch may read either copy, so both count
        // as read.
        let read = torch_format == Some(Format::Zip) && rest.eq_ignore_ascii_case("/data.pkl");
        push_pickle(pickles, &bytes, base, name, read, depth, limits)?;
    }
    Ok(())
}

/// Scans up to `max` pickles stacked one after the other from the start of
/// `data`; torch.load reads them all (`all_read`, a legacy file) or only the
/// first (a bare pickle).
#[allow(clippy::too_many_arguments)]
fn scan_stacked(
    data: &[u8],
    max: usize,
    all_read: bool,
    prefix: &str,
    what: &str,
    depth: usize,
    limits: &Limits,
    pickles: &mut Vec<ScannedPickle>,
) -> Result<(), TorchError> {
    let mut offset = 0usize;
    for n in 1..=max {
        let Some(rest) = data.get(offset..).filter(|r| !r.is_empty()) else {
            break;
        };
        let name = format!("{prefix}{what} #{n}");
        // After the first pickle of a bare-pickle file, what follows is
        // only another pickle when it parses as one (a legacy file's raw
        // storage area follows its five pickles).
        if !all_read && n > 1 && pickle_head(rest).is_none() {
            break;
        }
        let read = all_read || n == 1;
        match push_pickle(pickles, rest, offset as u64, name, read, depth, limits)? {
            Some(e) => offset = e as usize,
            None => break,
        }
    }
    Ok(())
}

/// What an unsafe load unpickles, in our words.
fn unsafe_load(format: ScannedFormat, pickles: &[ScannedPickle]) -> Option<String> {
    let calls = |p: &ScannedPickle| p.scan.globals.len();
    match format {
        ScannedFormat::Torch(Format::Zip) => Some(
            "torch.load(weights_only=False) unpickles data.pkl: every global it names is imported and every call in it runs".into(),
        ),
        ScannedFormat::Torch(Format::Legacy) => Some(
            "torch.load(weights_only=False) unpickles the stacked pickles in turn: every global they name is imported and every call in them runs".into(),
        ),
        ScannedFormat::Pickle => pickles.first().map(|p| {
            let runs = match calls(p) {
                0 => "it names no global, so only its plain values are built".to_string(),
                n => format!("its {n} global(s) are imported and every call in it runs"),
            };
            format!(
                "torch.load(weights_only=False) unpickles the first pickle (to read PyTorch's magic number) before it can tell the file is no checkpoint: {runs}; then it fails with 'Invalid magic number'"
            )
        }),
        ScannedFormat::Npy if !pickles.is_empty() => Some(
            "numpy.load(allow_pickle=True) unpickles the object array: every global it names is imported and every call in it runs (allow_pickle=False refuses the file)".into(),
        ),
        ScannedFormat::OtherZip if pickles.iter().any(|p| p.name.ends_with("(object array)")) => Some(
            "numpy.load(allow_pickle=True) unpickles each object-array member when it is read: every call in it runs".into(),
        ),
        _ => None,
    }
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
    format: ScannedFormat,
    detected: &Detected,
    pickles: &[ScannedPickle],
) -> WeightsOnlyVerdict {
    let refuse = |reason: String, torch_error: Option<String>| WeightsOnlyVerdict {
        loads: Some(false),
        reason: Some(reason),
        torch_error,
    };
    let format = match format {
        ScannedFormat::Torch(f) => f,
        ScannedFormat::Pickle => Format::Legacy,
        ScannedFormat::Npy => {
            return refuse(
                "a NumPy .npy file: torch.load cannot read it (numpy.load does)".into(),
                None,
            );
        }
        ScannedFormat::OtherZip => {
            return refuse(
                "a zip archive without PyTorch's data.pkl: torch.load cannot read it".into(),
                None,
            );
        }
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
        // torch.load's legacy path runs its restricted unpickler on the
        // first pickle (the magic number's place): what stops it there is
        // what torch says; a pickle it reads through fails the magic check.
        if let Some(first) = pickles.first()
            && let Some(b) = first.scan.weights_only.first_blocker()
        {
            return refuse(
                format!(
                    "a plain pickle without PyTorch's legacy magic number; torch.load's restricted unpickler stops in it first, at byte {}: {}",
                    b.offset, b.reason
                ),
                b.torch_error.clone(),
            );
        }
        return refuse(
            "a plain pickle without PyTorch's legacy magic number: torch.load reads it and fails the magic-number check".into(),
            Some("Invalid magic number; corrupt file?".into()),
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

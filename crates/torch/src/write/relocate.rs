//! `map-location`: torch.load's `map_location`, applied once to the file.
//!
//! Every storage's location tag (element 3 of a `('storage', type, key,
//! location, numel[, view])` persistent id) is rewritten at the opcode level:
//! the pickle is copied op by op ([`netport_pickle::Ops`] gives each op's
//! exact byte range) and only the ops that push a location string are
//! re-encoded. A tag memoized once and fetched with `BINGET` for later
//! storages is rewritten at its one definition; if the same memoized string
//! is also used for something that is not a storage tag (CPython memoizes
//! interned strings such as `'cpu'` by identity), those other uses are
//! un-shared: their `BINGET` is replaced by an inline copy of the old string.
//! Protocol-4 `FRAME` lengths are recomputed.
//!
//! Device objects (`torch.device` REDUCE with string arguments, e.g.
//! `torch.device('cuda', 0)` or TorchScript's `torch.device('cuda:0')`) are
//! not storages: they are reported, and rewritten only with
//! [`RelocateOptions::all_devices`].
//!
//! Zip checkpoints and TorchScript archives (`data.pkl`, `constants.pkl`)
//! are re-packed with [`crate::write::rewrite_zip_to`] (every other record
//! copied as it is); legacy files get pickle #4 rewritten and everything
//! else copied. `.pt2` archives are refused (their devices live in JSON).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::rc::Rc;

use crate::error::TorchError;
use crate::read::checkpoint::Checkpoint;
use crate::read::detect::Format;
use crate::write::pickle_edit::{
    Item, StrFamily, analyze, apply_edits, bad, encode_index, encode_str,
};
use crate::write::{WriteOptions, rewrite_zip_to, write_atomic};

/// Which location tags become which (exact string match, like a `dict`
/// `map_location`), or every tag to one device (like a `str` one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocationMap {
    /// Every tag becomes this one (`--to cpu`).
    pub to: Option<String>,
    /// `from -> to` pairs, exact (`--map cuda:1=cuda:0`); used when `to` is `None`.
    pub pairs: Vec<(String, String)>,
}

impl LocationMap {
    /// Every tag to `device`.
    pub fn to(device: &str) -> Self {
        LocationMap {
            to: Some(device.to_owned()),
            pairs: Vec::new(),
        }
    }

    /// Parse `from=to` pairs.
    pub fn parse_pairs<S: AsRef<str>>(pairs: &[S]) -> Result<Self, TorchError> {
        let mut out = Vec::new();
        for p in pairs {
            let p = p.as_ref();
            let (a, b) = p.split_once('=').ok_or_else(|| {
                TorchError::refused(format!("'{p}' is not FROM=TO (e.g. cuda:1=cuda:0)"))
            })?;
            out.push((a.trim().to_owned(), b.trim().to_owned()));
        }
        let map = LocationMap {
            to: None,
            pairs: out,
        };
        map.validate()?;
        Ok(map)
    }

    /// Check that every target is a plausible tag (non-empty, ASCII, no
    /// whitespace or quotes).
    pub fn validate(&self) -> Result<(), TorchError> {
        let check = |t: &str| {
            if t.is_empty()
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'_' || b == b'-')
            {
                Err(TorchError::refused(format!(
                    "'{t}' is not a device tag (expected e.g. cpu, cuda:0)"
                )))
            } else {
                Ok(())
            }
        };
        if let Some(t) = &self.to {
            check(t)?;
        }
        for (a, b) in &self.pairs {
            check(a)?;
            check(b)?;
        }
        if self.to.is_none() && self.pairs.is_empty() {
            return Err(TorchError::refused("no location mapping given"));
        }
        Ok(())
    }

    /// The new tag for `tag`, if it changes.
    pub fn apply(&self, tag: &str) -> Option<String> {
        let new = match &self.to {
            Some(t) => Some(t.clone()),
            None => self
                .pairs
                .iter()
                .find(|(a, _)| a == tag)
                .map(|(_, b)| b.clone()),
        }?;
        (new != tag).then_some(new)
    }
}

/// Settings of [`relocate_file`].
#[derive(Debug, Clone, Default)]
pub struct RelocateOptions {
    /// The tag mapping.
    pub map: LocationMap,
    /// Also rewrite `torch.device(...)` objects (not storage tags).
    pub all_devices: bool,
    /// Where and how the output is written (in-place refusal).
    pub write: WriteOptions,
}

/// One `from -> to` line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagChange {
    /// The tag as written.
    pub from: String,
    /// The new tag (`== from` for tags the map leaves alone).
    pub to: String,
    /// Distinct storages (pickle, key) carrying it.
    pub storages: usize,
}

/// A `torch.device` object found in a pickle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRef {
    /// The pickle record.
    pub pickle: String,
    /// Offset of its REDUCE in that pickle.
    pub offset: u64,
    /// The device as a tag (`cuda:0`, `cuda`).
    pub device: String,
    /// What it was rewritten to (only with `all_devices`).
    pub rewritten: Option<String>,
}

/// What [`relocate_file`] / [`relocate_pickle`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelocateReport {
    /// Storage tags, changed ones first then kept ones, by tag.
    pub changes: Vec<TagChange>,
    /// Device objects found.
    pub devices: Vec<DeviceRef>,
    /// Pickles whose bytes changed.
    pub pickles_rewritten: Vec<String>,
    /// Memoized strings that were shared with non-storage uses and so were
    /// un-shared (count of inlined fetches).
    pub unshared_uses: usize,
    /// Bytes of the output file (0 for [`relocate_pickle`]).
    pub bytes_written: u64,
}

impl RelocateReport {
    /// Storages whose tag changed.
    pub fn storages_changed(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.from != c.to)
            .map(|c| c.storages)
            .sum()
    }

    /// Human-readable lines: `9 storages: cuda:0 -> cpu`.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.changes {
            let s = if c.storages == 1 { "" } else { "s" };
            if c.from != c.to {
                out.push(format!("{} storage{s}: {} -> {}", c.storages, c.from, c.to));
            } else {
                out.push(format!("{} storage{s}: {} (kept)", c.storages, c.from));
            }
        }
        if self.storages_changed() == 0 {
            out.push("nothing to rewrite: no storage tag matched the mapping".into());
        }
        for d in &self.devices {
            match &d.rewritten {
                Some(n) => out.push(format!(
                    "device object torch.device('{}') in {} (byte {}) -> '{n}'",
                    d.device, d.pickle, d.offset
                )),
                None => out.push(format!(
                    "device object torch.device('{}') in {} (byte {}) left as is (not a storage tag; rewritten only when all devices are asked for)",
                    d.device, d.pickle, d.offset
                )),
            }
        }
        if self.unshared_uses > 0 {
            out.push(format!(
                "{} non-storage use(s) of a memoized tag string were given their own copy",
                self.unshared_uses
            ));
        }
        out
    }
}

/// Relocate one pickle: returns the new bytes (`None` if nothing changed)
/// and adds to `report`.
pub fn relocate_pickle(
    data: &[u8],
    pickle: &str,
    map: &LocationMap,
    all_devices: bool,
    report: &mut RelocateReport,
) -> Result<Option<Vec<u8>>, TorchError> {
    let a = analyze(data, pickle)?;
    // site -> demanded value; site -> family (for inlining).
    let mut demand: HashMap<u64, String> = HashMap::new();
    let mut int_edits: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut defs: HashMap<u64, (Rc<str>, StrFamily)> = HashMap::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for pid in &a.pids {
        let Some(loc) = pid.location() else {
            continue;
        };
        let new = map.apply(&loc.value);
        let target = new.clone().unwrap_or_else(|| loc.value.to_string());
        if new.is_some() {
            demand.insert(loc.site, target.clone());
            defs.insert(loc.def, (loc.value.clone(), loc.family));
        }
        // Count distinct storages by key (a storage referenced by several
        // tensors has one pid per reference in Python pickles).
        let key = pid.key().unwrap_or("");
        if seen.insert(key) {
            *counts.entry((loc.value.to_string(), target)).or_default() += 1;
        }
    }
    for d in &a.devices {
        let tag = d.tag();
        let new = if all_devices { map.apply(&tag) } else { None };
        if let Some(n) = &new {
            let (ty, idx) = match n.split_once(':') {
                Some((t, i)) => (t.to_owned(), i.parse::<u32>().ok()),
                None => (n.clone(), None),
            };
            match &d.index {
                // torch.device('cuda:0'): one string.
                None => {
                    demand.insert(d.ty.site, n.clone());
                }
                Some(index) => {
                    if n.split_once(':').is_some() && idx.is_none() {
                        return Err(TorchError::refused(format!(
                            "device '{n}' has a non-numeric index"
                        )));
                    }
                    demand.insert(d.ty.site, ty);
                    let changed_site = match index {
                        Item::Int(old, site) if Some(*old) != idx.map(i64::from) => Some(*site),
                        Item::None(site) if idx.is_some() => Some(*site),
                        _ => None,
                    };
                    if let Some(site) = changed_site {
                        int_edits.insert(site, encode_index(idx));
                    }
                }
            }
            defs.insert(d.ty.def, (d.ty.value.clone(), d.ty.family));
        }
        report.devices.push(DeviceRef {
            pickle: pickle.to_owned(),
            offset: d.reduce,
            device: tag,
            rewritten: new,
        });
    }
    let mut edits = int_edits;
    for (def, (old, family)) in &defs {
        let def_value = demand.get(def).map(String::as_str).unwrap_or(old);
        let mut changed = false;
        if def_value != &**old {
            edits.insert(*def, encode_str(*family, def_value));
            changed = true;
        }
        for site in a.sites.get(def).into_iter().flatten() {
            if site == def {
                continue;
            }
            let want = demand.get(site).map(String::as_str).unwrap_or(old);
            if want != def_value {
                edits.insert(*site, encode_str(*family, want));
                changed = true;
                if !demand.contains_key(site) {
                    report.unshared_uses += 1;
                }
            }
        }
        if changed && a.rememoized.contains(def) {
            return Err(bad(
                pickle,
                *def,
                "a location string is memoized under two indices; this layout is not rewritten",
            ));
        }
    }
    for ((from, to), n) in counts {
        match report
            .changes
            .iter_mut()
            .find(|c| c.from == from && c.to == to)
        {
            Some(c) => c.storages += n,
            None => report.changes.push(TagChange {
                from,
                to,
                storages: n,
            }),
        }
    }
    report
        .changes
        .sort_by_key(|c| (c.from == c.to, c.from.clone(), c.to.clone()));
    if edits.is_empty() {
        return Ok(None);
    }
    let mut out = apply_edits(data, pickle, &edits)?;
    out.extend_from_slice(&data[(a.end as usize).min(data.len())..]);
    report.pickles_rewritten.push(pickle.to_owned());
    Ok(Some(out))
}

/// Relocate a whole file: read `input`, write `output` atomically.
pub fn relocate_file(
    input: &Path,
    output: &Path,
    options: &RelocateOptions,
) -> Result<RelocateReport, TorchError> {
    options.map.validate()?;
    let mut wopts = options.write.clone();
    wopts.input = Some(input.to_owned());
    wopts.check_paths(output)?;
    // Only the pickles are rewritten: no object per tensor is built.
    let ckpt = Checkpoint::open_pickles(input)?;
    relocate_checkpoint(&ckpt, output, options, &wopts)
}

/// Relocate an opened checkpoint into `output`.
pub fn relocate_checkpoint(
    ckpt: &Checkpoint,
    output: &Path,
    options: &RelocateOptions,
    wopts: &WriteOptions,
) -> Result<RelocateReport, TorchError> {
    let mut report = RelocateReport::default();
    let data = ckpt.bytes();
    match ckpt.format() {
        Format::Zip | Format::TorchScript => {
            let zip = crate::read::zip::ZipArchive::parse(data)?;
            let mut replacements = HashMap::new();
            for p in ckpt.pickles() {
                if p.name != "data.pkl" && p.name != "constants.pkl" {
                    continue;
                }
                let bytes = ckpt.pickle_bytes(p)?;
                if let Some(new) = relocate_pickle(
                    &bytes,
                    &p.name,
                    &options.map,
                    options.all_devices,
                    &mut report,
                )? {
                    replacements.insert(p.name.clone(), new);
                }
            }
            report.bytes_written = write_atomic(output, wopts, |w| {
                rewrite_zip_to(w, data, &zip, &replacements, None)?;
                Ok(())
            })?;
        }
        Format::Legacy => {
            let p4 = ckpt
                .pickles()
                .iter()
                .find(|p| p.name == "legacy pickle #4")
                .ok_or_else(|| TorchError::refused("legacy file without pickle #4"))?;
            let r = p4.byte_range.start as usize..p4.byte_range.end as usize;
            let new = relocate_pickle(
                &data[r.clone()],
                &p4.name,
                &options.map,
                options.all_devices,
                &mut report,
            )?;
            report.bytes_written = write_atomic(output, wopts, |w| {
                w.write_all(&data[..r.start])?;
                match &new {
                    Some(n) => w.write_all(n)?,
                    None => w.write_all(&data[r.clone()])?,
                }
                crate::write::copy_chunked(w, &data[r.end..])?;
                Ok(())
            })?;
        }
        other => {
            return Err(TorchError::Unsupported {
                what: format!("map-location of a {} file", other.name()),
                reason: "only zip checkpoints, legacy files and TorchScript archives carry storage location tags in pickles".into(),
            });
        }
    }
    Ok(report)
}

//! Compares the tensors of two files, each a PyTorch checkpoint or a
//! safetensors file ([`TensorFile`]): names only in one, dtype and shape
//! mismatches, and for tensors in both whether they are bit-identical or how
//! far apart their values are.
//!
//! Values are compared in `f64` (each tensor converted with
//! `netport_tensor::convert`, exact for every dtype it converts): tensors of
//! the same dtype and shape whose bytes are equal are `equal` without
//! conversion. Two NaNs at the same place are equal; NaN counts are
//! reported. Infinities equal when they have the same sign; an element
//! where only one side is infinite (or the signs differ) is counted in
//! `inf_mismatch` and left out of `max_abs_diff`/`max_rel_diff`, which cover
//! finite pairs. The relative difference of a pair is
//! `|a - b| / max(|a|, |b|)` (0 when both are 0): symmetric, at most 2.
//!
//! Safetensors aliases recorded by `save_model`/`convert.py` (`__metadata__`
//! `removed -> kept`) count as tensors under their removed name.
//!
//! Memory: one pair of tensors at a time, as `f64` when values are compared.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use netport_io::Sniffed;

use netport_tensor::DType;
use serde::Serialize;

use netport_safetensors::SafetensorsFile;
use netport_torch::{Checkpoint, Edits};

use crate::ConvertError;

/// A file whose tensors can be compared.
#[derive(Debug)]
pub enum TensorFile {
    /// A PyTorch checkpoint (any format [`Checkpoint`] reads).
    Checkpoint(Box<Checkpoint>),
    /// A safetensors file.
    Safetensors(SafetensorsFile),
}

#[derive(Debug, Clone, Copy)]
enum Src {
    Ckpt(usize),
    Sf(usize),
}

#[derive(Debug, Clone)]
struct Item {
    name: String,
    dtype: DType,
    shape: Vec<u64>,
    src: Src,
}

impl TensorFile {
    /// Opens a file, choosing the reader from its bytes
    /// ([`netport_io::sniff`]: safetensors, cut short or not, is read as
    /// safetensors, which explains what is wrong; anything else as a
    /// checkpoint).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ConvertError> {
        let path = path.as_ref();
        match netport_io::sniff_file(path)? {
            Sniffed::Safetensors { .. } | Sniffed::TruncatedSafetensors { .. } => {
                Ok(TensorFile::Safetensors(SafetensorsFile::open(path)?))
            }
            _ => Ok(TensorFile::Checkpoint(Box::new(Checkpoint::open(path)?))),
        }
    }

    /// `safetensors`, or the checkpoint format (`zip`, `legacy`, ...).
    pub fn format_name(&self) -> String {
        match self {
            TensorFile::Checkpoint(c) => c.format().name().to_owned(),
            TensorFile::Safetensors(_) => "safetensors".to_owned(),
        }
    }

    fn items(&self) -> Vec<Item> {
        match self {
            TensorFile::Checkpoint(c) => {
                let mut seen = std::collections::HashSet::new();
                c.tensors()
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| seen.insert(t.path.as_str()))
                    .map(|(i, t)| Item {
                        name: t.path.clone(),
                        dtype: t.dtype,
                        shape: t.shape.clone(),
                        src: Src::Ckpt(i),
                    })
                    .collect()
            }
            TensorFile::Safetensors(f) => {
                let mut items: Vec<Item> = f
                    .tensors()
                    .iter()
                    .enumerate()
                    .map(|(i, t)| Item {
                        name: t.name.clone(),
                        dtype: t.dtype,
                        shape: t.shape.clone(),
                        src: Src::Sf(i),
                    })
                    .collect();
                for (alias, kept) in f.aliases() {
                    if let Some(k) = items.iter().find(|i| i.name == kept).cloned() {
                        items.push(Item { name: alias, ..k });
                    }
                }
                items.sort_by(|a, b| a.name.cmp(&b.name));
                items
            }
        }
    }

    fn bytes(&self, src: Src) -> Result<Cow<'_, [u8]>, ConvertError> {
        match (self, src) {
            (TensorFile::Checkpoint(c), Src::Ckpt(i)) => Ok(c.tensor_bytes(&c.tensors()[i])?),
            (TensorFile::Safetensors(f), Src::Sf(i)) => {
                Ok(Cow::Borrowed(f.tensor_bytes(&f.tensors()[i])))
            }
            _ => unreachable!("source of another file"),
        }
    }

    fn f64s(&self, src: Src) -> Result<Vec<f64>, ConvertError> {
        let bytes = match (self, src) {
            (TensorFile::Checkpoint(c), Src::Ckpt(i)) => {
                c.tensor_converted(&c.tensors()[i], DType::Float64)?
            }
            (TensorFile::Safetensors(f), Src::Sf(i)) => {
                f.tensor_converted(&f.tensors()[i], DType::Float64)?
            }
            _ => unreachable!("source of another file"),
        };
        Ok(bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }
}

/// Options of [`diff`].
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Edits applied to the names of both files before matching (key,
    /// strip_prefixes, filter, exclude, renames; `dtype` is ignored).
    pub edits: Edits,
}

/// The outcome for one tensor name present in both files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Same dtype, same shape, identical bytes.
    Equal,
    /// Same shape, every value equal in f64, but the dtypes or bytes differ
    /// (`-0.0` vs `0.0`, NaN payloads, float32 vs float64 holding the same values).
    EqualValues,
    /// Same shape, some values differ.
    Different,
    /// The shapes differ: values are not compared.
    ShapeMismatch,
    /// The bytes differ and the values cannot be compared (a dtype without
    /// f64 conversion, such as complex or float8, or a tensor that cannot
    /// be read: see `note`).
    Incomparable,
}

/// One tensor present in both files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorDiff {
    /// The name (after the edits).
    pub name: String,
    /// The outcome.
    pub status: Status,
    /// Torch dtype name in A (`float32`).
    pub dtype_a: String,
    /// Torch dtype name in B.
    pub dtype_b: String,
    /// Shape in A.
    pub shape_a: Vec<u64>,
    /// Shape in B.
    pub shape_b: Vec<u64>,
    /// Elements (of A).
    pub elements: u64,
    /// Elements whose values differ (null when values were not compared).
    pub differing: Option<u64>,
    /// Largest `|a - b|` over finite pairs (null when not compared).
    pub max_abs_diff: Option<f64>,
    /// Largest `|a - b| / max(|a|, |b|)` over finite pairs (null when not compared).
    pub max_rel_diff: Option<f64>,
    /// NaNs in A.
    pub nan_a: u64,
    /// NaNs in B.
    pub nan_b: u64,
    /// Places where exactly one side is NaN.
    pub nan_mismatch: u64,
    /// Places where one side is infinite and the other is not the same infinity.
    pub inf_mismatch: u64,
    /// Why values were not compared, when they were not.
    pub note: Option<String>,
}

/// Counts of a [`DiffReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Tensor names in A (after the edits; aliases included).
    pub tensors_a: usize,
    /// Tensor names in B.
    pub tensors_b: usize,
    /// Names in both.
    pub common: usize,
    /// Status counts over the common names.
    pub equal: usize,
    /// See [`Status::EqualValues`].
    pub equal_values: usize,
    /// See [`Status::Different`].
    pub different: usize,
    /// See [`Status::ShapeMismatch`].
    pub shape_mismatch: usize,
    /// See [`Status::Incomparable`].
    pub incomparable: usize,
    /// Common names whose dtypes differ (any status).
    pub dtype_mismatch: usize,
    /// Names only in A.
    pub only_in_a: usize,
    /// Names only in B.
    pub only_in_b: usize,
}

/// The result of [`diff`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffReport {
    /// Format of A (`zip`, `legacy`, `torchscript`, `pt2`, `safetensors`).
    pub format_a: String,
    /// Format of B.
    pub format_b: String,
    /// True when both files have the same names and every tensor is `equal`.
    pub identical: bool,
    /// Counts.
    pub summary: Summary,
    /// Names only in A, in A's order.
    pub only_in_a: Vec<String>,
    /// Names only in B, in B's order.
    pub only_in_b: Vec<String>,
    /// Every common name, in A's order.
    pub tensors: Vec<TensorDiff>,
}

fn edited(items: Vec<Item>, edits: &Edits) -> Result<Vec<Item>, ConvertError> {
    let plan = edits.plan(items.iter().map(|i| (i.name.as_str(), i.dtype)))?;
    Ok(plan
        .into_iter()
        .map(|p| Item {
            name: p.name,
            ..items[p.index].clone()
        })
        .collect())
}

/// Compares two files (see the module docs).
pub fn diff(
    a: &TensorFile,
    b: &TensorFile,
    options: &DiffOptions,
) -> Result<DiffReport, ConvertError> {
    let edits = Edits {
        dtype: None,
        ..options.edits.clone()
    };
    let ia = edited(a.items(), &edits)?;
    let ib = edited(b.items(), &edits)?;
    let by_name_b: HashMap<&str, &Item> = ib.iter().map(|i| (i.name.as_str(), i)).collect();
    let names_a: std::collections::HashSet<&str> = ia.iter().map(|i| i.name.as_str()).collect();
    let mut report = DiffReport {
        format_a: a.format_name(),
        format_b: b.format_name(),
        identical: false,
        summary: Summary {
            tensors_a: ia.len(),
            tensors_b: ib.len(),
            ..Summary::default()
        },
        only_in_a: Vec::new(),
        only_in_b: ib
            .iter()
            .filter(|i| !names_a.contains(i.name.as_str()))
            .map(|i| i.name.clone())
            .collect(),
        tensors: Vec::new(),
    };
    for x in &ia {
        let Some(y) = by_name_b.get(x.name.as_str()) else {
            report.only_in_a.push(x.name.clone());
            continue;
        };
        let d = compare(a, x, b, y);
        let s = &mut report.summary;
        s.common += 1;
        if x.dtype != y.dtype {
            s.dtype_mismatch += 1;
        }
        match d.status {
            Status::Equal => s.equal += 1,
            Status::EqualValues => s.equal_values += 1,
            Status::Different => s.different += 1,
            Status::ShapeMismatch => s.shape_mismatch += 1,
            Status::Incomparable => s.incomparable += 1,
        }
        report.tensors.push(d);
    }
    report.summary.only_in_a = report.only_in_a.len();
    report.summary.only_in_b = report.only_in_b.len();
    report.identical = report.only_in_a.is_empty()
        && report.only_in_b.is_empty()
        && report.tensors.iter().all(|t| t.status == Status::Equal);
    Ok(report)
}

fn compare(a: &TensorFile, x: &Item, b: &TensorFile, y: &Item) -> TensorDiff {
    let mut d = TensorDiff {
        name: x.name.clone(),
        status: Status::Incomparable,
        dtype_a: x.dtype.torch_name().to_owned(),
        dtype_b: y.dtype.torch_name().to_owned(),
        shape_a: x.shape.clone(),
        shape_b: y.shape.clone(),
        elements: x.shape.iter().product(),
        differing: None,
        max_abs_diff: None,
        max_rel_diff: None,
        nan_a: 0,
        nan_b: 0,
        nan_mismatch: 0,
        inf_mismatch: 0,
        note: None,
    };
    if x.shape != y.shape {
        d.status = Status::ShapeMismatch;
        return d;
    }
    if x.dtype == y.dtype {
        match (a.bytes(x.src), b.bytes(y.src)) {
            (Ok(p), Ok(q)) if p == q => {
                d.status = Status::Equal;
                d.differing = Some(0);
                d.max_abs_diff = Some(0.0);
                d.max_rel_diff = Some(0.0);
                if x.dtype.is_floating_point()
                    && let Ok(v) = a.f64s(x.src)
                {
                    d.nan_a = v.iter().filter(|f| f.is_nan()).count() as u64;
                    d.nan_b = d.nan_a;
                }
                return d;
            }
            (Err(e), _) | (_, Err(e)) => {
                d.note = Some(e.to_string());
                return d;
            }
            _ => {}
        }
    }
    let (va, vb) = match (a.f64s(x.src), b.f64s(y.src)) {
        (Ok(p), Ok(q)) => (p, q),
        (Err(e), _) | (_, Err(e)) => {
            d.note = Some(e.to_string());
            return d;
        }
    };
    let mut differing = 0u64;
    let (mut max_abs, mut max_rel) = (0f64, 0f64);
    for (&p, &q) in va.iter().zip(&vb) {
        let (np, nq) = (p.is_nan(), q.is_nan());
        d.nan_a += np as u64;
        d.nan_b += nq as u64;
        if np || nq {
            if np != nq {
                d.nan_mismatch += 1;
                differing += 1;
            }
            continue;
        }
        if p == q {
            continue;
        }
        differing += 1;
        if p.is_infinite() || q.is_infinite() {
            d.inf_mismatch += 1;
            continue;
        }
        let abs = (p - q).abs();
        max_abs = max_abs.max(abs);
        let m = p.abs().max(q.abs());
        if m > 0.0 {
            max_rel = max_rel.max(abs / m);
        }
    }
    d.differing = Some(differing);
    d.max_abs_diff = Some(max_abs);
    d.max_rel_diff = Some(max_rel);
    d.status = if differing == 0 {
        Status::EqualValues
    } else {
        Status::Different
    };
    d
}

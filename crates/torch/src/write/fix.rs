//! `fix`: make a checkpoint load under `torch.load(weights_only=True)`, the
//! default since torch 2.6, without Python. The pickles torch.load reads are
//! re-encoded as protocol 2 (torch's restricted unpickler refuses the FRAME
//! opcode of protocols 4 and 5), `argparse.Namespace` objects become plain
//! dicts of their attributes, and numpy scalars become Python numbers. Every
//! change is reported. If anything else stands in the way (a class that is
//! not allowlisted, a numpy array, a dangerous global), nothing is written and
//! the error names it. Tensor bytes are copied as they are.

use std::collections::HashMap;
use std::path::Path;

use netport_pickle::{
    Arena, GlobalClass, Limits, Machine, Value, ValueId, classify, scan as scan_pickle,
};

use crate::error::TorchError;
use crate::objects::{Leaf, PidStyle, Reader, Taken};
use crate::read::checkpoint::Checkpoint;
use crate::read::detect::Format;
use crate::write::{WriteOptions, rewrite_zip_file, write_atomic};

/// One change `fix` made.
#[derive(Debug, Clone, PartialEq)]
pub enum FixChange {
    /// A pickle was re-encoded from this protocol to protocol 2.
    Protocol {
        /// The pickle (`data.pkl`, `legacy pickle #4`).
        pickle: String,
        /// Its protocol before.
        from: u8,
    },
    /// An `argparse.Namespace` became a dict with these keys.
    Namespace {
        /// The pickle.
        pickle: String,
        /// Its attribute names.
        keys: Vec<String>,
    },
    /// A numpy scalar became a Python number.
    NumpyScalar {
        /// The pickle.
        pickle: String,
        /// The numpy type (`float64`).
        dtype: String,
        /// The value, as Python would print it.
        value: String,
    },
}

impl std::fmt::Display for FixChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FixChange::Protocol { pickle, from } => {
                write!(f, "{pickle}: pickle protocol {from} -> 2")
            }
            FixChange::Namespace { pickle, keys } => write!(
                f,
                "{pickle}: argparse.Namespace({}) -> dict",
                keys.join(", ")
            ),
            FixChange::NumpyScalar {
                pickle,
                dtype,
                value,
            } => write!(f, "{pickle}: numpy {dtype} scalar -> {value}"),
        }
    }
}

/// What `fix` did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FixReport {
    /// The changes, in file order; empty when the file already loads.
    pub changes: Vec<FixChange>,
    /// Size of the written file.
    pub bytes_written: u64,
}

fn global_of(arena: &Arena, id: ValueId) -> Option<(&str, &str)> {
    match arena.get(id)? {
        Value::Global { module, name } => Some((module, name)),
        _ => None,
    }
}

/// The class an object node was made from (`NewObj` or `Reduce`).
fn class_of(arena: &Arena, id: ValueId) -> Option<(&str, &str)> {
    match arena.get(id)? {
        Value::NewObj { cls, .. } => global_of(arena, *cls),
        Value::Reduce { callable, .. } => global_of(arena, *callable),
        _ => None,
    }
}

fn is_numpy_scalar(module: &str, name: &str) -> bool {
    name == "scalar" && matches!(module, "numpy.core.multiarray" | "numpy._core.multiarray")
}

/// Rewrites Namespace objects and numpy scalars in place; returns the
/// changes. Nodes are rewritten where they are, so every reference to them
/// (memo sharing) sees the new value.
fn transform(arena: &mut Arena, pickle: &str) -> Vec<FixChange> {
    let mut changes = Vec::new();
    let mut replacements: Vec<(ValueId, Value)> = Vec::new();
    {
        let arena_ref: &Arena = arena;
        let taken = Taken::default();
        let walker = Reader::new(arena_ref, &taken, pickle.into(), PidStyle::Zip, 200);
        for (i, value) in arena_ref.values().enumerate() {
            let id = ValueId(i as u32);
            match value {
                Value::Build { obj, state }
                    if class_of(arena_ref, *obj) == Some(("argparse", "Namespace")) =>
                {
                    if let Some(Value::Dict(pairs)) = arena_ref.get(*state) {
                        let keys = pairs
                            .iter()
                            .filter_map(|(k, _)| match arena_ref.get(*k) {
                                Some(Value::Str(s)) => Some(s.to_string()),
                                _ => None,
                            })
                            .collect();
                        changes.push(FixChange::Namespace {
                            pickle: pickle.to_owned(),
                            keys,
                        });
                        replacements.push((id, Value::Dict(pairs.clone())));
                    }
                }
                Value::NewObj { cls, .. }
                    if global_of(arena_ref, *cls) == Some(("argparse", "Namespace")) =>
                {
                    // A Namespace without attributes (no BUILD follows).
                    let built = arena_ref
                        .values()
                        .any(|v| matches!(v, Value::Build { obj, .. } if *obj == id));
                    if !built {
                        changes.push(FixChange::Namespace {
                            pickle: pickle.to_owned(),
                            keys: Vec::new(),
                        });
                        replacements.push((id, Value::Dict(Vec::new())));
                    }
                }
                Value::Reduce { callable, args } => {
                    let Some((m, n)) = global_of(arena_ref, *callable) else {
                        continue;
                    };
                    if !is_numpy_scalar(m, n) {
                        continue;
                    }
                    let Some(Value::Tuple(items)) = arena_ref.get(*args) else {
                        continue;
                    };
                    let Some((leaf, dtype)) = walker.numpy_scalar(items) else {
                        continue;
                    };
                    let (new, text) = match leaf {
                        Leaf::Int(v) => (Value::Int(v), v.to_string()),
                        Leaf::Float(v) => (Value::Float(v), format!("{v:?}")),
                        Leaf::Bool(v) => {
                            (Value::Bool(v), if v { "True" } else { "False" }.to_owned())
                        }
                        _ => continue,
                    };
                    changes.push(FixChange::NumpyScalar {
                        pickle: pickle.to_owned(),
                        dtype,
                        value: text,
                    });
                    replacements.push((id, new));
                }
                _ => {}
            }
        }
    }
    for (id, value) in replacements {
        if let Some(slot) = arena.get_mut(id) {
            *slot = value;
        }
    }
    changes
}

/// Re-encodes one pickle if it needs it; `None` when it can stay as it is.
fn fix_pickle(
    bytes: &[u8],
    name: &str,
    changes: &mut Vec<FixChange>,
) -> Result<Option<Vec<u8>>, TorchError> {
    let perr = |source| TorchError::Repickle {
        pickle: name.to_owned(),
        source,
    };
    let mut pickle = Machine::new(Limits::default())
        .load(bytes, 0)
        .map_err(perr)?;
    let mut local = transform(&mut pickle.arena, name);
    let protocol = pickle.protocol.unwrap_or(0);
    if local.is_empty() && protocol <= 2 {
        return Ok(None);
    }
    if protocol > 2 {
        local.insert(
            0,
            FixChange::Protocol {
                pickle: name.to_owned(),
                from: protocol,
            },
        );
    }
    let out = netport_pickle::writer::write(&pickle.arena, pickle.root).map_err(perr)?;
    changes.extend(local);
    Ok(Some(out))
}

/// Checks that `torch.load(weights_only=True)` would accept the pickle;
/// otherwise names what cannot be made safe.
fn check_loads(bytes: &[u8], name: &str) -> Result<(), TorchError> {
    let scan = scan_pickle(bytes, 0, &Limits::default());
    let mut blockers: Vec<String> = scan
        .globals
        .iter()
        .filter(|g| g.class != GlobalClass::Allowed)
        .map(|g| {
            let class = match g.resolved.as_ref() {
                Some((m, n)) => classify(m, n).class,
                None => g.class,
            };
            format!("{} ({class:?}, at byte {})", g.full_name(), g.offset)
        })
        .collect();
    if blockers.is_empty()
        && let Some(b) = scan.weights_only.first_blocker()
    {
        blockers.push(format!("{} (at byte {})", b.reason, b.offset));
    }
    if blockers.is_empty() && !scan.weights_only.loads {
        blockers.push("the pickle does not end properly".into());
    }
    if blockers.is_empty() {
        Ok(())
    } else {
        Err(TorchError::refused(format!(
            "{name} cannot be made to load with weights_only=True: {}; nothing was written",
            blockers.join("; ")
        )))
    }
}

/// Makes the checkpoint at `input` load under `torch.load(weights_only=True)`
/// and writes it to `output` (atomically). Zip and legacy checkpoints are
/// supported; the container and every tensor byte are kept.
pub fn fix_file(
    input: &Path,
    output: &Path,
    options: &WriteOptions,
) -> Result<FixReport, TorchError> {
    let ckpt = Checkpoint::open(input)?;
    fix_checkpoint(&ckpt, output, options, |_, _| Ok(None))
}

/// [`fix_file`] on an opened checkpoint, with a first step: `prepare` gets
/// each pickle torch.load reads (its name and bytes) and may return new
/// bytes, which are then fixed in the same pass (e.g.
/// [`crate::relocate::relocate_pickle`], for map-location and fix in one
/// output).
pub fn fix_checkpoint(
    ckpt: &Checkpoint,
    output: &Path,
    options: &WriteOptions,
    mut prepare: impl FnMut(&str, &[u8]) -> Result<Option<Vec<u8>>, TorchError>,
) -> Result<FixReport, TorchError> {
    let data = ckpt.bytes();
    let mut changes = Vec::new();
    match ckpt.format() {
        Format::Zip => {
            let record = ckpt
                .pickles()
                .iter()
                .find(|p| p.name == "data.pkl")
                .ok_or_else(|| TorchError::refused("the archive has no data.pkl"))?;
            let bytes = ckpt.pickle_bytes(record)?;
            let prepared = prepare("data.pkl", &bytes)?;
            let fixed = fix_pickle(
                prepared.as_deref().unwrap_or(&bytes),
                "data.pkl",
                &mut changes,
            )?;
            let new = fixed.or(prepared);
            check_loads(new.as_deref().unwrap_or(&bytes), "data.pkl")?;
            let mut replacements = HashMap::new();
            if let Some(new) = new {
                replacements.insert("data.pkl".to_owned(), new);
            }
            let bytes_written = rewrite_zip_file(output, ckpt, &replacements, options)?;
            Ok(FixReport {
                changes,
                bytes_written,
            })
        }
        Format::Legacy => {
            // Five stacked pickles, then the raw storage area: re-encode the
            // pickles, keep the storage bytes.
            let mut pieces: Vec<std::borrow::Cow<'_, [u8]>> = Vec::new();
            let mut end = 0u64;
            for record in ckpt.pickles() {
                let range = record.byte_range.clone();
                let bytes = &data[range.start as usize..range.end as usize];
                let prepared = prepare(&record.name, bytes)?;
                let fixed = fix_pickle(
                    prepared.as_deref().unwrap_or(bytes),
                    &record.name,
                    &mut changes,
                )?;
                let new = fixed.or(prepared);
                check_loads(new.as_deref().unwrap_or(bytes), &record.name)?;
                pieces.push(match new {
                    Some(v) => v.into(),
                    None => bytes.into(),
                });
                end = range.end;
            }
            let rest = &data[end as usize..];
            let bytes_written = write_atomic(output, options, |w| {
                use std::io::Write;
                for p in &pieces {
                    w.write_all(p)?;
                }
                crate::write::copy_chunked(w, rest)?;
                Ok(())
            })?;
            Ok(FixReport {
                changes,
                bytes_written,
            })
        }
        other => Err(TorchError::Unsupported {
            what: format!("a {other}"),
            reason: "torch.load(weights_only=True) does not read this format at all".into(),
        }),
    }
}

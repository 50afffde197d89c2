//! Checkpoint -> checkpoint with edits (`netport convert IN.pt OUT.pt
//! --strip-prefix module.`): the tensors of a checkpoint, selected, renamed
//! and optionally converted by [`Edits`], written as a new `torch.save`
//! checkpoint holding one state dict.
//!
//! # What is written
//!
//! A protocol-2 pickle of a `collections.OrderedDict` mapping the new names
//! (in the source's order) to plain tensors (`torch._utils._rebuild_tensor_v2`,
//! or `_v3` with an `UntypedStorage` for dtypes without a typed storage
//! class), `requires_grad=False`, on `cpu`: what `module.state_dict()` holds
//! and `torch.load(weights_only=True)` / `mmap=True` accept. The output
//! holds only tensors: every non-tensor value (an epoch, an optimizer's
//! hyper-parameters, `argparse.Namespace` fields) is dropped and listed in
//! [`ConvertReport::dropped_values`] (under `--key`, only the values under
//! the key are counted), as for a safetensors conversion. `nn.Parameter`s
//! and tensor subclasses become plain tensors; quantized, meta and
//! unmaterialisable tensors are refused (leave them out with `exclude`).
//!
//! # Storages
//!
//! Tensor bytes are copied as they are, a whole storage at a time, from the
//! source's memory map: kept tensors that view one storage still view one
//! storage, with their offsets and strides (tied weights, slices,
//! transposes, expanded views survive). A storage kept for a single small
//! view is still copied whole. A tensor is instead written as its own
//! contiguous storage (listed in [`ConvertReport::copies`] when it shared
//! its storage with another kept tensor) when `Edits::dtype` converts it,
//! when it carries the conj/neg bit (its values are resolved), or when the
//! source is big-endian (its bytes are swapped; the output is always
//! little-endian).
//!
//! Output is streamed: storages are written one at a time (a converted
//! tensor is held in memory only while it is written), into a temporary
//! file renamed into place ([`crate::write::write_atomic`]); the input is
//! never opened for writing and nothing is left on error.
//!
//! # Layouts
//!
//! [`Layout::Zip`] is torch.save's zip format (torch >= 1.6);
//! [`Layout::Legacy`] the pre-1.6 stacked pickles (for consumers pinned to
//! old torch), which refuses dtypes without a typed storage class (uint16,
//! float8, bits, ...), as torch's legacy loader needs one.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use netport_tensor::{ByteOrder, DType};

use crate::error::TorchError;
use crate::read::checkpoint::{Checkpoint, Record};
use crate::write::edit::Edits;
use crate::write::edit::{check_writable, left_out, refuse};
use crate::write::report::{ConvertReport, dropped_values, nbytes};
use crate::write::{
    StateDictPickle, StorageRecord, WriteOptions, archive_name_for, convert_pids, write_atomic,
    write_legacy_records, write_zip_records,
};

/// The container format of the output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// `torch.save`'s zip format (the default since torch 1.6).
    #[default]
    Zip,
    /// The legacy stacked-pickles format (`_use_new_zipfile_serialization=False`).
    Legacy,
}

/// Where an output storage's bytes come from.
enum Source {
    /// A source storage, copied whole and as it is.
    Storage(usize),
    /// One tensor's logical elements (index into `ckpt.tensors()`), in `dtype`.
    Tensor(usize, DType),
}

struct OutStorage {
    source: Source,
    dtype: DType,
    nbytes: u64,
}

/// Writes `ckpt`'s tensors, edited, to `out` as a state-dict checkpoint in
/// `layout` (see the module docs). `input` is the source path, which `out`
/// must not be. Returns what was written; `left_out` lists the source names
/// the edits dropped, `dropped_values` the non-tensor values.
pub fn rewrite_checkpoint(
    ckpt: &Checkpoint,
    input: Option<&Path>,
    out: &Path,
    edits: &Edits,
    layout: Layout,
) -> Result<ConvertReport, TorchError> {
    let all = ckpt.tensors();
    let planned = edits.plan(all.iter().map(|t| (t.path.as_str(), t.dtype)))?;
    let mut report = ConvertReport {
        left_out: left_out(all, &planned),
        dropped_values: dropped_values(ckpt, edits),
        ..ConvertReport::default()
    };
    if planned.is_empty() {
        return Err(refuse(format!(
            "the edits leave no tensor to write (of {})",
            all.len()
        )));
    }
    check_writable(
        all,
        &planned,
        "a state dict",
        "not written by a rewrite yet",
        |_, p| {
            (layout == Layout::Legacy && p.dtype.storage_class().is_none()).then(|| {
                format!(
                    "{} has no typed storage class, which the legacy format needs (zip only)",
                    p.dtype
                )
            })
        },
    )?;

    let big = ckpt.info().byteorder == Some(ByteOrder::Big);
    let storages = ckpt.storages();
    // How many kept tensors use each source storage.
    let mut users: HashMap<usize, usize> = HashMap::new();
    for p in &planned {
        *users
            .entry(all[p.index].storage.expect("checked"))
            .or_default() += 1;
    }
    let mut outs: Vec<OutStorage> = Vec::new();
    let mut shared: HashMap<(usize, DType), usize> = HashMap::new();
    let mut pickle = StateDictPickle(b"\x80\x02".to_vec());
    pickle.empty_ordered_dict();
    pickle.0.push(b'(');
    for p in &planned {
        let t = &all[p.index];
        let si = t.storage.expect("checked");
        let s = &storages[si];
        let size = t.dtype.size_in_bytes() as u64;
        let s_bytes = s.byte_range.end - s.byte_range.start;
        let in_place = !big
            && p.dtype == t.dtype
            && !t.conj
            && !t.neg
            && !s.compressed
            && s_bytes.is_multiple_of(size);
        if p.dtype != t.dtype {
            report.dtype_changed += 1;
            report.dtype_bytes_before += nbytes(t.dtype, &t.shape, &t.path)?;
            report.dtype_bytes_after += nbytes(p.dtype, &t.shape, &t.path)?;
        }
        if in_place {
            let next = outs.len();
            let k = *shared.entry((si, t.dtype)).or_insert(next);
            if k == next {
                outs.push(OutStorage {
                    source: Source::Storage(si),
                    dtype: t.dtype,
                    nbytes: s_bytes,
                });
            }
            pickle.tensor_view(
                &p.name,
                t.dtype,
                &t.shape,
                &t.strides,
                t.storage_offset,
                &k.to_string(),
                s_bytes,
            );
        } else {
            if users[&si] > 1 {
                report.copies.push(p.name.clone());
            }
            let n = nbytes(p.dtype, &t.shape, &t.path)?;
            let k = outs.len();
            outs.push(OutStorage {
                source: Source::Tensor(p.index, p.dtype),
                dtype: p.dtype,
                nbytes: n,
            });
            let strides = netport_tensor::contiguous_strides(&t.shape).map_err(|source| {
                TorchError::Tensor {
                    path: t.path.clone(),
                    source,
                }
            })?;
            pickle.tensor_view(&p.name, p.dtype, &t.shape, &strides, 0, &k.to_string(), n);
        }
    }
    pickle.0.extend_from_slice(b"u.");
    report.tensors = planned.len();
    report.data_bytes = outs.iter().map(|o| o.nbytes).sum();

    let data = ckpt.bytes();
    // The source's stored records by name: a storage copied whole keeps
    // its record's CRC-32 and is not read (write_zip_records), unless the
    // source has no CRCs.
    let stored: HashMap<&str, &Record> = ckpt
        .info()
        .records
        .iter()
        .filter(|r| r.method == 0)
        .map(|r| (r.name.as_str(), r))
        .collect();
    let fetch = |i: usize| -> Result<StorageRecord<'_>, TorchError> {
        let o = &outs[i];
        let (bytes, copied) = match o.source {
            Source::Storage(si) => {
                let s = &storages[si];
                let r = &s.byte_range;
                let bytes = data
                    .get(r.start as usize..r.end as usize)
                    .ok_or_else(|| refuse(format!("storage '{}' is outside the file", s.key)))?;
                let copied = s
                    .record
                    .as_deref()
                    .and_then(|name| stored.get(name))
                    // A source written without CRCs (torch's option) has 0s.
                    .filter(|record| record.byte_range == *r && record.crc32 != 0)
                    .map(|record| (record.crc32, r.start));
                (Cow::Borrowed(bytes), copied)
            }
            Source::Tensor(ti, dtype) => {
                let t = &all[ti];
                let bytes = if dtype == t.dtype {
                    ckpt.tensor_bytes(t)?
                } else {
                    Cow::Owned(ckpt.tensor_converted(t, dtype)?)
                };
                (bytes, None)
            }
        };
        if bytes.len() as u64 != o.nbytes {
            return Err(refuse(format!(
                "storage {i}: read {} bytes, expected {}",
                bytes.len(),
                o.nbytes
            )));
        }
        Ok(StorageRecord { bytes, copied })
    };
    let options = WriteOptions {
        input: input.map(Path::to_owned),
        in_place: false,
    };
    let keys: Vec<String> = (0..outs.len()).map(|k| k.to_string()).collect();
    report.file_bytes = match layout {
        Layout::Zip => {
            let name = archive_name_for(out);
            let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            write_atomic(out, &options, |w| {
                write_zip_records(w, &name, &pickle.0, "little", None, &key_refs, fetch)?;
                Ok(())
            })?
        }
        Layout::Legacy => {
            let object = convert_pids(&pickle.0, "data.pkl", true)?;
            let list: Vec<(&str, u64)> = keys
                .iter()
                .zip(&outs)
                .map(|(k, o)| (k.as_str(), o.nbytes / o.dtype.size_in_bytes() as u64))
                .collect();
            write_atomic(out, &options, |w| {
                write_legacy_records(w, &object, &list, |i| fetch(i).map(|r| r.bytes))?;
                Ok(())
            })?
        }
    };
    Ok(report)
}

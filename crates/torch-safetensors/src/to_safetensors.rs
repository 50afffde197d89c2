//! Checkpoint -> safetensors: the plan (edits, refusals, aliases of tied
//! weights, copies of other views) and the streamed write.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use netport_safetensors::OutTensor;
use netport_safetensors::write::{hf_metadata, layout, write_finished};
use netport_tensor::DType;
use netport_torch::edit::{Edits, Planned, check_writable, left_out};
use netport_torch::write::report::{dropped_values, nbytes};
use netport_torch::{Checkpoint, ConvertReport};

use crate::ConvertError;

struct Plan {
    tensors: Vec<OutTensor>,
    metadata: BTreeMap<String, String>,
    report: ConvertReport,
}

fn plan_checkpoint(ckpt: &Checkpoint, edits: &Edits) -> Result<Plan, ConvertError> {
    let all = ckpt.tensors();
    let planned: Vec<Planned> = edits.plan(all.iter().map(|t| (t.path.as_str(), t.dtype)))?;
    let mut report = ConvertReport {
        left_out: left_out(all, &planned),
        dropped_values: dropped_values(ckpt, edits),
        ..ConvertReport::default()
    };
    check_writable(
        all,
        &planned,
        "safetensors",
        "safetensors has no quantized types",
        |_, p| {
            p.dtype
                .safetensors()
                .is_none()
                .then(|| format!("no safetensors dtype for {}", p.dtype))
        },
    )?;

    // Identical views of one storage -> one tensor plus aliases.
    type ViewKey<'a> = (usize, &'a [u64], &'a [u64], u64, DType, bool, bool);
    let mut groups: HashMap<ViewKey<'_>, Vec<usize>> = HashMap::new();
    let mut per_storage: HashMap<usize, HashSet<ViewKey<'_>>> = HashMap::new();
    for (i, p) in planned.iter().enumerate() {
        let t = &all[p.index];
        let s = t.storage.expect("checked above");
        let key = (
            s,
            &t.shape[..],
            &t.strides[..],
            t.storage_offset,
            t.dtype,
            t.conj,
            t.neg,
        );
        groups.entry(key).or_default().push(i);
        per_storage.entry(s).or_default().insert(key);
    }
    let mut skip = vec![false; planned.len()];
    let mut aliases = Vec::new();
    for members in groups.values().filter(|m| m.len() > 1) {
        let keep = *members
            .iter()
            .min_by(|&&a, &&b| planned[a].name.cmp(&planned[b].name))
            .expect("non-empty");
        for &m in members {
            if m != keep {
                skip[m] = true;
                aliases.push((planned[m].name.clone(), planned[keep].name.clone()));
            }
        }
    }
    aliases.sort();
    let metadata = hf_metadata(&aliases);
    report.aliases = aliases;

    let mut out = Vec::new();
    for (i, p) in planned.iter().enumerate() {
        if skip[i] {
            continue;
        }
        let t = &all[p.index];
        if per_storage[&t.storage.expect("checked")].len() > 1 {
            report.copies.push(p.name.clone());
        }
        let n = nbytes(p.dtype, &t.shape, &t.path)?;
        if p.dtype != p.source_dtype {
            report.dtype_changed += 1;
            report.dtype_bytes_before += nbytes(p.source_dtype, &t.shape, &t.path)?;
            report.dtype_bytes_after += n;
        }
        out.push(OutTensor {
            name: p.name.clone(),
            dtype: p.dtype,
            shape: t.shape.clone(),
            nbytes: n,
            source: p.index,
        });
    }
    Ok(Plan {
        tensors: out,
        metadata,
        report,
    })
}

fn fetch_from<'c>(
    ckpt: &'c Checkpoint,
) -> impl FnMut(&OutTensor) -> Result<Cow<'c, [u8]>, ConvertError> {
    move |o| {
        let t = &ckpt.tensors()[o.source];
        if o.dtype == t.dtype {
            Ok(ckpt.tensor_bytes(t)?)
        } else {
            Ok(ckpt.tensor_converted(t, o.dtype).map(Cow::Owned)?)
        }
    }
}

pub(crate) fn convert_to_temp(
    ckpt: &Checkpoint,
    out: &Path,
    edits: &Edits,
) -> Result<(netport_io::Finished, ConvertReport, Vec<String>), ConvertError> {
    let plan = plan_checkpoint(ckpt, edits)?;
    let (header, tensors) = layout(plan.tensors, &plan.metadata)?;
    let names = tensors.iter().map(|t| t.name.clone()).collect();
    let mut report = plan.report;
    let (tmp, total) = write_finished(out, &header, &tensors, fetch_from(ckpt))?;
    report.tensors = tensors.len();
    report.data_bytes = total - header.len() as u64;
    report.file_bytes = total;
    Ok((tmp, report, names))
}

/// Writes the checkpoint's tensors, edited, to `out` as safetensors (see the
/// module docs). `out` is replaced atomically; on error nothing is left.
pub fn checkpoint_to_safetensors(
    ckpt: &Checkpoint,
    out: &Path,
    edits: &Edits,
) -> Result<ConvertReport, ConvertError> {
    let (tmp, report, _) = convert_to_temp(ckpt, out, edits)?;
    tmp.commit()?;
    Ok(report)
}

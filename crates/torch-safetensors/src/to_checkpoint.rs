//! safetensors -> `torch.save` checkpoint (zip or legacy): one state dict.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use netport_safetensors::SafetensorsFile;
use netport_tensor::DType;
use netport_torch::write::report::nbytes;
use netport_torch::write::{
    LegacyCheckpoint, StorageBytes, WriteOptions, ZipCheckpoint, convert_pids, write_legacy_file,
    write_zip_file,
};
use netport_torch::{ConvertReport, Edits, StateDictPickle};

use crate::ConvertError;

/// Writes the safetensors file's tensors, edited, as a `torch.save` zip
/// checkpoint holding one state dict (an `OrderedDict`, names in sorted
/// order), loadable with `torch.load(weights_only=True)`. Aliases recorded
/// in `__metadata__` (`removed -> kept`) become tensors sharing the kept
/// tensor's storage again. Storage bytes are copied from the source map;
/// tensors converted by `edits.dtype` are held in memory until written.
/// Atomic (see [`netport_torch::write::write_atomic`]); refuses to overwrite the input.
pub fn safetensors_to_checkpoint(
    sf: &SafetensorsFile,
    input: Option<&Path>,
    out: &Path,
    edits: &Edits,
) -> Result<ConvertReport, ConvertError> {
    safetensors_to_checkpoint_as(sf, input, out, edits, false)
}

/// [`safetensors_to_checkpoint`], writing the legacy (pre-1.6) format when
/// `legacy` (see [`safetensors_to_legacy_checkpoint`]).
fn safetensors_to_checkpoint_as(
    sf: &SafetensorsFile,
    input: Option<&Path>,
    out: &Path,
    edits: &Edits,
    legacy: bool,
) -> Result<ConvertReport, ConvertError> {
    // Names: tensors, then aliases (as the tensor they alias).
    let mut items: Vec<(String, usize)> = sf
        .tensors()
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let aliases = sf.aliases();
    for (alias, kept) in &aliases {
        if let Some(i) = sf.tensors().iter().position(|t| &t.name == kept) {
            items.push((alias.clone(), i));
        }
    }
    items.sort();
    let planned = edits.plan(
        items
            .iter()
            .map(|(n, i)| (n.as_str(), sf.tensors()[*i].dtype)),
    )?;
    let mut report = ConvertReport::default();
    let kept: HashSet<usize> = planned.iter().map(|p| p.index).collect();
    report.left_out = items
        .iter()
        .enumerate()
        .filter(|(i, _)| !kept.contains(i))
        .map(|(_, (n, _))| n.clone())
        .collect();
    // One storage per (source tensor, output dtype).
    let mut keys: HashMap<(usize, DType), usize> = HashMap::new();
    let mut converted: Vec<Vec<u8>> = Vec::new();
    let mut storage_src: Vec<(usize, DType)> = Vec::new();
    let mut pickle = StateDictPickle(Vec::new());
    pickle.0.extend_from_slice(b"\x80\x02");
    pickle.empty_ordered_dict();
    pickle.0.push(b'(');
    let mut first_name: HashMap<usize, String> = HashMap::new();
    for p in &planned {
        let src = items[p.index].1;
        let t = &sf.tensors()[src];
        let next = keys.len();
        let k = *keys.entry((src, p.dtype)).or_insert(next);
        if k == next {
            storage_src.push((src, p.dtype));
            report.tensors += 1;
            let n = nbytes(p.dtype, &t.shape, &t.name)?;
            report.data_bytes += n;
            if p.dtype != t.dtype {
                report.dtype_changed += 1;
                report.dtype_bytes_before += t.data_offsets.1 - t.data_offsets.0;
                report.dtype_bytes_after += n;
            }
            first_name.insert(k, p.name.clone());
        } else {
            report
                .aliases
                .push((p.name.clone(), first_name[&k].clone()));
        }
        let n = nbytes(p.dtype, &t.shape, &t.name)?;
        pickle.tensor(&p.name, p.dtype, &t.shape, &k.to_string(), n);
    }
    pickle.0.extend_from_slice(b"u.");
    for &(src, dtype) in &storage_src {
        let t = &sf.tensors()[src];
        if dtype != t.dtype {
            converted.push(sf.tensor_converted(t, dtype)?);
        }
    }
    let mut conv = converted.iter();
    let storages: Vec<StorageBytes<'_>> = storage_src
        .iter()
        .enumerate()
        .map(|(k, &(src, dtype))| {
            let t = &sf.tensors()[src];
            let bytes: &[u8] = if dtype != t.dtype {
                conv.next().expect("converted in order")
            } else {
                sf.tensor_bytes(t)
            };
            StorageBytes {
                key: k.to_string(),
                numel: bytes.len() as u64 / dtype.size_in_bytes() as u64,
                bytes,
            }
        })
        .collect();
    let options = WriteOptions {
        input: input.map(Path::to_owned),
        in_place: false,
    };
    report.file_bytes = if legacy {
        let ckpt = LegacyCheckpoint {
            object_pickle: Cow::Owned(convert_pids(&pickle.0, "data.pkl", true)?),
            storages,
        };
        write_legacy_file(out, &ckpt, &options)?
    } else {
        let ckpt = ZipCheckpoint {
            data_pkl: Cow::Owned(pickle.0),
            storages,
            byteorder: "little".into(),
            serialization_name_hash: None,
        };
        write_zip_file(out, &ckpt, &options)?
    };
    Ok(report)
}

/// [`safetensors_to_checkpoint`] in the legacy (pre-1.6) format.
pub fn safetensors_to_legacy_checkpoint(
    sf: &SafetensorsFile,
    input: Option<&Path>,
    out: &Path,
    edits: &Edits,
) -> Result<ConvertReport, ConvertError> {
    safetensors_to_checkpoint_as(sf, input, out, edits, true)
}

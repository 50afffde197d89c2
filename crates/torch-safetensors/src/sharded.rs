//! Sharded checkpoints: every shard converted, the index rewritten.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use netport_safetensors::index::{index_outputs, map_to_shard, shard_output};
use netport_safetensors::{SafetensorsFile, ShardIndex};
use netport_tensor::DType;
use netport_torch::{Checkpoint, ConvertReport, Edits};

use crate::ConvertError;
use crate::to_checkpoint::safetensors_to_checkpoint;
use crate::to_safetensors::convert_to_temp;

/// What a sharded conversion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedReport {
    /// The index written.
    pub index: PathBuf,
    /// `(input shard, output shard, its report)`, in shard order.
    pub shards: Vec<(PathBuf, PathBuf, ConvertReport)>,
    /// `metadata.total_size` written: the data bytes of all shards.
    pub total_size: u64,
}

/// Converts a sharded checkpoint (`pytorch_model.bin.index.json` and its
/// shards) to `model-0000N-of-0000M.safetensors` shards (one per input
/// shard, in sorted order of the input names) and
/// `model.safetensors.index.json`. `out` is the index path to write
/// (ending in `.json`; shards go next to it) or a directory (created if
/// missing). Every weight_map entry must be in its shard and every shard
/// tensor in the weight_map. Shards are written to temporary files and
/// renamed into place only when all succeeded; the index is renamed last.
pub fn index_to_safetensors(
    index_path: &Path,
    out: &Path,
    edits: &Edits,
) -> Result<ShardedReport, ConvertError> {
    let index = ShardIndex::read(index_path)?;
    let in_dir = netport_io::parent_dir(index_path);
    let (out_dir, out_index) = index_outputs(out, "model.safetensors.index.json")?;
    let shards = index.shards();
    let m = shards.len();
    let mut temps = Vec::new();
    let mut weight_map = BTreeMap::new();
    let mut total_size = 0u64;
    for (i, shard) in shards.iter().enumerate() {
        let in_path = in_dir.join(shard);
        let ckpt = Checkpoint::open(&in_path)?;
        let present: HashSet<&str> = ckpt.tensors().iter().map(|t| t.path.as_str()).collect();
        index.check_shard(
            shard,
            &present,
            ckpt.tensors().iter().map(|t| t.path.as_str()),
        )?;
        let name = format!("model-{:05}-of-{m:05}.safetensors", i + 1);
        let out_path = shard_output(&out_dir, &name, &in_path)?;
        let (tmp, report, names) = convert_to_temp(&ckpt, &out_path, edits)?;
        map_to_shard(&mut weight_map, names, &name)?;
        total_size += report.data_bytes;
        temps.push((tmp, in_path, out_path, report));
    }
    let idx_tmp = index.write_finished(&weight_map, total_size, &out_index)?;
    let mut shards_out = Vec::new();
    for (tmp, in_path, out_path, report) in temps {
        tmp.commit()?;
        shards_out.push((in_path, out_path, report));
    }
    idx_tmp.commit()?;
    Ok(ShardedReport {
        index: out_index,
        shards: shards_out,
        total_size,
    })
}

/// Converts a sharded safetensors checkpoint (`model.safetensors.index.json`
/// and its shards) back to `pytorch_model-0000N-of-0000M.bin` zip
/// checkpoints (one per input shard, in sorted order) and
/// `pytorch_model.bin.index.json`. `out` as in [`index_to_safetensors`].
/// Each shard is written atomically; if one fails, the shards already
/// written by this call are removed and no index is written.
pub fn index_to_checkpoints(
    index_path: &Path,
    out: &Path,
    edits: &Edits,
) -> Result<ShardedReport, ConvertError> {
    let index = ShardIndex::read(index_path)?;
    let in_dir = netport_io::parent_dir(index_path);
    let (out_dir, out_index) = index_outputs(out, "pytorch_model.bin.index.json")?;
    let shards = index.shards();
    let m = shards.len();
    let mut written: Vec<(PathBuf, PathBuf, ConvertReport)> = Vec::new();
    let mut weight_map = BTreeMap::new();
    let mut total_size = 0u64;
    let result = (|| {
        for (i, shard) in shards.iter().enumerate() {
            let in_path = in_dir.join(shard);
            let sf = SafetensorsFile::open(&in_path)?;
            let mut present: HashSet<String> =
                sf.tensors().iter().map(|t| t.name.clone()).collect();
            present.extend(sf.aliases().into_iter().map(|(a, _)| a));
            let present_ref: HashSet<&str> = present.iter().map(String::as_str).collect();
            index.check_shard(
                shard,
                &present_ref,
                sf.tensors().iter().map(|t| t.name.as_str()),
            )?;
            let name = format!("pytorch_model-{:05}-of-{m:05}.bin", i + 1);
            let out_path = shard_output(&out_dir, &name, &in_path)?;
            let report = safetensors_to_checkpoint(&sf, Some(&in_path), &out_path, edits)?;
            let planned = edits.plan(present.iter().map(|n| (n.as_str(), DType::Float32)))?;
            map_to_shard(&mut weight_map, planned.into_iter().map(|p| p.name), &name)?;
            total_size += report.data_bytes;
            written.push((in_path, out_path, report));
        }
        let tmp = index.write_finished(&weight_map, total_size, &out_index)?;
        tmp.commit()?;
        Ok(())
    })();
    if let Err(e) = result {
        for (_, o, _) in &written {
            let _ = std::fs::remove_file(o);
        }
        return Err(e);
    }
    Ok(ShardedReport {
        index: out_index,
        shards: written,
        total_size,
    })
}

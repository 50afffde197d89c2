//! Sharded checkpoints: the `*.index.json` next to the shards
//! (`model.safetensors.index.json`, `pytorch_model.bin.index.json`), and
//! the rules every sharded conversion follows (shard names plain files next
//! to the index, each tensor in exactly one shard, no output that is an
//! input).

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::error::{SafetensorsError, bad, io, refuse};

fn out_dir(out: &Path) -> PathBuf {
    netport_io::parent_dir(out).to_owned()
}

/// A parsed `*.index.json` (`pytorch_model.bin.index.json`,
/// `model.safetensors.index.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct ShardIndex {
    /// `metadata` as written (`total_size`, ...); empty when absent.
    pub metadata: Map<String, Value>,
    /// Tensor name -> shard file name, in file order of the JSON (sorted).
    pub weight_map: BTreeMap<String, String>,
}

impl ShardIndex {
    /// Reads and checks an index: a JSON object with a `weight_map` of
    /// strings; shard names are plain file names (no directories, no `..`).
    pub fn read(path: &Path) -> Result<Self, SafetensorsError> {
        let bytes = std::fs::read(path).map_err(io(path))?;
        Self::parse(&bytes)
    }

    /// Parses an index from bytes (see [`ShardIndex::read`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, SafetensorsError> {
        let e = |r: String| bad(None, format!("index: {r}"));
        let v: Value =
            serde_json::from_slice(bytes).map_err(|x| e(format!("not valid JSON: {x}")))?;
        let Value::Object(mut obj) = v else {
            return Err(e("not a JSON object".into()));
        };
        let metadata = match obj.remove("metadata") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(e("'metadata' is not an object".into())),
        };
        let Some(Value::Object(wm)) = obj.remove("weight_map") else {
            return Err(e("'weight_map' is missing or not an object".into()));
        };
        let mut weight_map = BTreeMap::new();
        for (k, v) in wm {
            let Value::String(f) = v else {
                return Err(e(format!("weight_map['{k}'] is not a string")));
            };
            if f.is_empty() || f.contains(['/', '\\']) || f == "." || f == ".." {
                return Err(e(format!(
                    "weight_map['{k}'] = '{f}' is not a plain file name next to the index"
                )));
            }
            weight_map.insert(k, f);
        }
        Ok(ShardIndex {
            metadata,
            weight_map,
        })
    }

    /// The shard file names, sorted, each once.
    pub fn shards(&self) -> Vec<String> {
        let mut s: Vec<String> = self.weight_map.values().cloned().collect();
        s.sort();
        s.dedup();
        s
    }
}

/// The output folder and index path of a sharded conversion: `out` is the
/// index to write (`*.json`, shards next to it) or a folder (created if
/// missing) that gets `default_index`.
pub fn index_outputs(
    out: &Path,
    default_index: &str,
) -> Result<(PathBuf, PathBuf), SafetensorsError> {
    if out.extension().is_some_and(|e| e == "json") {
        Ok((out_dir(out), out.to_owned()))
    } else {
        std::fs::create_dir_all(out).map_err(io(out))?;
        Ok((out.to_owned(), out.join(default_index)))
    }
}

/// The path of an output shard, refused when it is one of the inputs.
pub fn shard_output(out_dir: &Path, name: &str, input: &Path) -> Result<PathBuf, SafetensorsError> {
    let path = out_dir.join(name);
    if netport_io::same_file(&path, input) {
        return Err(refuse(format!("output '{}' is an input", path.display())));
    }
    Ok(path)
}

/// Records that `names` go to shard `shard`; a name in two shards is refused.
pub fn map_to_shard(
    weight_map: &mut BTreeMap<String, String>,
    names: impl IntoIterator<Item = String>,
    shard: &str,
) -> Result<(), SafetensorsError> {
    for n in names {
        if let Some(prev) = weight_map.insert(n.clone(), shard.to_owned()) {
            return Err(refuse(format!(
                "tensor '{n}' would be in both '{prev}' and '{shard}'"
            )));
        }
    }
    Ok(())
}

impl ShardIndex {
    /// Checks that the shard file `shard` holds exactly what the index maps
    /// to it: every mapped name is `present`, and every tensor it `holds` is
    /// mapped to it.
    pub fn check_shard<'a>(
        &self,
        shard: &str,
        present: &HashSet<&str>,
        holds: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), SafetensorsError> {
        if let Some((k, _)) = self
            .weight_map
            .iter()
            .find(|(k, f)| *f == shard && !present.contains(k.as_str()))
        {
            return Err(refuse(format!(
                "index maps '{k}' to '{shard}', but that shard has no such tensor"
            )));
        }
        if let Some(k) = holds
            .into_iter()
            .find(|k| self.weight_map.get(*k).map(String::as_str) != Some(shard))
        {
            return Err(refuse(format!(
                "shard '{shard}' holds '{k}', which the index does not map to it"
            )));
        }
        Ok(())
    }

    /// Writes the output index (this index's metadata with `total_size`, and
    /// `weight_map`) to a finished atomic output, for renaming to
    /// `out_index` once every shard is in place.
    pub fn write_finished(
        &self,
        weight_map: &BTreeMap<String, String>,
        total_size: u64,
        out_index: &Path,
    ) -> Result<netport_io::Finished, SafetensorsError> {
        let mut meta = self.metadata.clone();
        meta.insert("total_size".into(), json!(total_size));
        let doc = json!({ "metadata": meta, "weight_map": weight_map });
        let mut text = serde_json::to_vec_pretty(&doc).expect("JSON");
        text.push(b'\n');
        let mut tmp = netport_io::AtomicFile::create(out_index)?;
        tmp.write_all(&text).map_err(io(out_index))?;
        Ok(tmp.finish()?)
    }
}

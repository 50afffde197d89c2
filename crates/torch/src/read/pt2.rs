//! `torch.export` `.pt2` archives (docs/formats/pytorch.md, '.pt2 export archives'): weights and
//! constants named by the `*_weights_config.json` / `*_constants_config.json`
//! payload configs, and the torch/schema versions from `models/*.json`.
//!
//! Each config entry is `{fqn: {path_name, is_param, use_pickle, tensor_meta:
//! {dtype, sizes, strides, storage_offset, requires_grad, device, layout}}}`;
//! `path_name` is a raw record (a whole untyped storage) in the config's
//! directory, shared by every FQN that views it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::Value as Json;

use netport_tensor::{DType, required_bytes};

use crate::error::TorchError;
use crate::objects::{Collected, Leaf, Storage, Tensor, TensorKind, ValueEntry};
use crate::read::checkpoint::{Info, Options};
use crate::read::zip::ZipArchive;

/// torch `ScalarType` codes of the export schema.
fn scalar_type(code: i64) -> Option<DType> {
    Some(match code {
        1 => DType::UInt8,
        2 => DType::Int8,
        3 => DType::Int16,
        4 => DType::Int32,
        5 => DType::Int64,
        6 => DType::Float16,
        7 => DType::Float32,
        8 => DType::Float64,
        9 => DType::Complex32,
        10 => DType::Complex64,
        11 => DType::Complex128,
        12 => DType::Bool,
        13 => DType::BFloat16,
        28 => DType::UInt16,
        29 => DType::Float8E4M3Fn,
        30 => DType::Float8E5M2,
        31 => DType::Float8E4M3Fnuz,
        32 => DType::Float8E5M2Fnuz,
        33 => DType::Float8E8M0Fnu,
        34 => DType::UInt32,
        35 => DType::UInt64,
        _ => return None,
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(
    data: &[u8],
    zip: &ZipArchive,
    name: &str,
    options: &Options,
) -> Result<T, TorchError> {
    let err = |reason: String| TorchError::Pt2 {
        record: name.to_owned(),
        reason,
    };
    let e = zip.find(name).ok_or_else(|| err("missing".into()))?;
    if e.size > options.max_json_bytes {
        return Err(err(format!(
            "{} bytes is more than the JSON limit of {}",
            e.size, options.max_json_bytes
        )));
    }
    if !e.is_stored() {
        return Err(err("the record is compressed".into()));
    }
    let bytes = data
        .get(e.data_offset as usize..(e.data_offset + e.compressed_size) as usize)
        .unwrap_or(&[]);
    serde_json::from_slice(bytes).map_err(|e| err(format!("invalid JSON: {e}")))
}

/// A JSON object's entries in file order (`serde_json`'s map sorts keys
/// unless a workspace-wide feature is enabled; the config order is the
/// export's signature order, which users expect).
struct Ordered(Vec<(String, Json)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Json>()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `PayloadConfig`: `{"config": {fqn: entry, ...}}`.
#[derive(Deserialize)]
struct PayloadConfig {
    config: Ordered,
}

fn sym_int(v: &Json) -> Option<u64> {
    v.get("as_int")?.as_u64()
}

fn ints(v: Option<&Json>) -> Option<Vec<u64>> {
    v?.as_array()?.iter().map(sym_int).collect()
}

/// Read the configs and model JSON of a `.pt2` archive into `out`.
pub(crate) fn read(
    data: &[u8],
    zip: &ZipArchive,
    prefix: &str,
    options: &Options,
    info: &mut Info,
    out: &mut Collected,
) -> Result<(), TorchError> {
    let names: Vec<String> = zip
        .entries()
        .iter()
        .map(|e| e.name[prefix.len() + 1..].to_owned())
        .collect();
    for rel in &names {
        let full = format!("{prefix}/{rel}");
        if rel.starts_with("models/") && rel.ends_with(".json") && info.torch_version.is_none() {
            let j: Json = parse_json(data, zip, &full, options)?;
            info.torch_version = j
                .get("torch_version")
                .and_then(Json::as_str)
                .map(str::to_owned);
            if let Some(s) = j.get("schema_version") {
                let major = s.get("major").and_then(Json::as_i64).unwrap_or(-1);
                let minor = s.get("minor").and_then(Json::as_i64).unwrap_or(-1);
                info.pt2_schema_version = Some(format!("{major}.{minor}"));
            }
        }
    }
    // The storage of each record, found by name (not a search per tensor).
    let mut by_record: HashMap<String, usize> = HashMap::new();
    for i in 0..out.storages.len() {
        if let Some(r) = out
            .storage_ref(i)
            .and_then(|s| s.record().map(str::to_owned))
        {
            by_record.entry(r).or_insert(i);
        }
    }
    for rel in &names {
        let dir = if rel.starts_with("data/weights/") && rel.ends_with("_weights_config.json") {
            "data/weights"
        } else if rel.starts_with("data/constants/") && rel.ends_with("_constants_config.json") {
            "data/constants"
        } else {
            continue;
        };
        let full = format!("{prefix}/{rel}");
        let j: PayloadConfig = parse_json(data, zip, &full, options)?;
        for (fqn, entry) in &j.config.0 {
            let err = |reason: String| TorchError::Pt2 {
                record: rel.clone(),
                reason: format!("entry '{fqn}': {reason}"),
            };
            let path_name = entry
                .get("path_name")
                .and_then(Json::as_str)
                .ok_or_else(|| err("no path_name".into()))?;
            let use_pickle = entry
                .get("use_pickle")
                .and_then(Json::as_bool)
                .unwrap_or(false);
            let meta = entry.get("tensor_meta").filter(|m| !m.is_null());
            let record = format!("{dir}/{path_name}");
            let Some(meta) = meta else {
                out.values.push(ValueEntry {
                    path: fqn.clone(),
                    source: rel.as_str().into(),
                    leaf: Leaf::Other,
                    repr: format!("<non-tensor constant in {record}>"),
                });
                continue;
            };
            let code = meta.get("dtype").and_then(Json::as_i64).unwrap_or(-1);
            let dtype =
                scalar_type(code).ok_or_else(|| err(format!("unknown ScalarType {code}")))?;
            let shape =
                ints(meta.get("sizes")).ok_or_else(|| err("sizes are not concrete ints".into()))?;
            let strides = ints(meta.get("strides"))
                .ok_or_else(|| err("strides are not concrete ints".into()))?;
            let offset = meta.get("storage_offset").and_then(sym_int).unwrap_or(0);
            let device = match meta.get("device") {
                Some(d) => {
                    let ty = d.get("type").and_then(Json::as_str).unwrap_or("cpu");
                    match d.get("index").and_then(Json::as_i64) {
                        Some(i) => format!("{ty}:{i}"),
                        None => ty.to_owned(),
                    }
                }
                None => "cpu".into(),
            };
            let layout = meta.get("layout").and_then(Json::as_i64).unwrap_or(7);
            let is_param = entry
                .get("is_param")
                .and_then(Json::as_bool)
                .unwrap_or(false);
            let e = zip.find(&format!("{prefix}/{record}")).ok_or_else(|| {
                TorchError::MissingRecord {
                    record: record.clone(),
                    archive: prefix.to_owned(),
                    why: format!("it holds the data of '{fqn}' ({rel})"),
                }
            })?;
            let unsupported = if use_pickle {
                Some("a pickled tensor (use_pickle) in a nested torch.save archive")
            } else if layout != 7 {
                Some("a non-strided layout")
            } else {
                None
            };
            let kind = match unsupported {
                Some(what) => TensorKind::Unsupported {
                    function: what.to_owned(),
                },
                None if is_param => TensorKind::Parameter,
                None => TensorKind::Dense,
            };
            let key: Arc<str> = record.as_str().into();
            let mut t = Tensor {
                path: fqn.clone(),
                source: rel.as_str().into(),
                dtype,
                shape,
                strides,
                storage_offset: offset,
                device: out.intern(&device),
                storage: None,
                storage_key: Some(Arc::clone(&key)),
                byte_range: Some(e.data_range()),
                kind,
                requires_grad: meta
                    .get("requires_grad")
                    .and_then(Json::as_bool)
                    .unwrap_or(false),
                conj: false,
                neg: false,
            };
            if unsupported.is_none() {
                let needed = required_bytes(dtype, &t.shape, &t.strides, offset)
                    .map_err(|e| err(e.to_string()))?;
                if needed > e.size {
                    return Err(TorchError::TensorOutOfBounds(Box::new(
                        crate::error::OutOfBounds {
                            pickle: rel.clone(),
                            path: fqn.clone(),
                            shape: t.shape.clone(),
                            strides: t.strides.clone(),
                            offset,
                            dtype: dtype.to_string(),
                            key: record.clone(),
                            needed,
                            available: e.size,
                        },
                    )));
                }
                let index = match by_record.get(record.as_str()) {
                    Some(&i) => i,
                    None => {
                        let storage_type = out.intern("raw");
                        let location = out.intern(&device);
                        let index = out.storages.push(Storage {
                            key,
                            record: Some(record.clone()),
                            source: rel.as_str().into(),
                            storage_type,
                            dtype: DType::UInt8,
                            numel: e.size,
                            location,
                            byte_range: 0..0,
                            compressed: false,
                            tensors: Vec::new(),
                        });
                        by_record.insert(record.clone(), index);
                        index
                    }
                };
                out.add_user(index, fqn);
                t.storage = Some(index);
            }
            out.push_tensor(t);
        }
    }
    Ok(())
}

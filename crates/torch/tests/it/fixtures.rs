//! Every committed fixture made by real torch (`testdata/torch/*.pt*`,
//! `testdata/make_torch_fixtures.py`), compared with its
//! `<name>.expected.json`: format, archive name, records, pickle protocol,
//! legacy layout, every tensor (path, kind, dtype, shape, stride, offset,
//! device, storage key/type/numel/nbytes, requires_grad, conj/neg,
//! quantization) and the sha256 of its logical little-endian bytes, plus the
//! plain values the JSON lists.

use std::path::{Path, PathBuf};

use netport_torch::{Checkpoint, Format, Leaf, Quantization, Tensor, TensorKind};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

fn torch_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/torch")
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn load(name: &str) -> (Checkpoint, Json) {
    let dir = torch_dir();
    let json: Json = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.expected.json"))).expect("expected json"),
    )
    .expect("valid json");
    let file = json["file"].as_str().expect("file");
    let ckpt = Checkpoint::open(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    (ckpt, json)
}

fn u64s(v: &Json) -> Vec<u64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("u64"))
        .collect()
}

fn check_tensor(ckpt: &Checkpoint, t: &Tensor, e: &Json) {
    let p = &t.path;
    assert_eq!(p, e["path"].as_str().unwrap());
    assert_eq!(
        t.dtype.to_string(),
        e["dtype"].as_str().unwrap(),
        "{p} dtype"
    );
    assert_eq!(t.shape, u64s(&e["shape"]), "{p} shape");
    assert_eq!(t.strides, u64s(&e["stride"]), "{p} stride");
    assert_eq!(
        t.storage_offset,
        e["storage_offset"].as_u64().unwrap(),
        "{p} offset"
    );
    assert_eq!(&*t.device, e["device"].as_str().unwrap(), "{p} device");
    assert_eq!(
        t.requires_grad,
        e["requires_grad"].as_bool().unwrap(),
        "{p} requires_grad"
    );
    assert_eq!(
        t.storage_key.as_deref(),
        e["storage_key"].as_str(),
        "{p} storage key"
    );
    let s = &ckpt.storages()[t.storage.expect("storage")];
    assert_eq!(
        &*s.storage_type,
        e["storage_type"].as_str().unwrap(),
        "{p} storage type"
    );
    assert_eq!(
        s.numel,
        e["storage_numel"].as_u64().unwrap(),
        "{p} storage numel"
    );
    assert_eq!(
        s.nbytes(),
        e["storage_nbytes"].as_u64(),
        "{p} storage nbytes"
    );
    assert_eq!(
        s.byte_range.end - s.byte_range.start,
        s.nbytes().unwrap(),
        "{p} range"
    );
    assert_eq!(
        t.byte_range.as_ref(),
        Some(&s.byte_range),
        "{p} tensor byte range"
    );
    assert!(s.tensors.contains(p), "{p} listed by its storage");
    let kind = match &t.kind {
        TensorKind::Dense => "tensor",
        TensorKind::Parameter => "parameter",
        TensorKind::Quantized(_) => "qtensor",
        other => panic!("{p}: unexpected kind {other:?}"),
    };
    assert_eq!(kind, e["kind"].as_str().unwrap(), "{p} kind");
    assert_eq!(
        t.conj,
        e.get("conj").and_then(Json::as_bool).unwrap_or(false),
        "{p} conj"
    );
    assert_eq!(
        t.neg,
        e.get("neg").and_then(Json::as_bool).unwrap_or(false),
        "{p} neg"
    );
    if let TensorKind::Quantized(q) = &t.kind {
        assert_eq!(
            e["qscheme"].as_str().unwrap(),
            match &**q {
                Quantization::PerTensor { qscheme, .. }
                | Quantization::PerChannel { qscheme, .. } => qscheme.as_str(),
            }
        );
        match &**q {
            Quantization::PerTensor {
                scale, zero_point, ..
            } => {
                assert_eq!(*scale, e["q_scale"].as_f64().unwrap(), "{p} scale");
                assert_eq!(
                    *zero_point,
                    e["q_zero_point"].as_i64().unwrap(),
                    "{p} zero point"
                );
            }
            Quantization::PerChannel {
                scales,
                zero_points,
                axis,
                ..
            } => {
                assert_eq!(*axis, e["q_per_channel_axis"].as_i64().unwrap());
                let sc = ckpt.tensor_bytes(scales).unwrap();
                let sc: Vec<f64> = sc
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                let want: Vec<f64> = e["q_per_channel_scales"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect();
                assert_eq!(sc, want, "{p} scales");
                let zp = ckpt.tensor_bytes(zero_points).unwrap();
                let zp: Vec<i64> = zp
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                let want: Vec<i64> = e["q_per_channel_zero_points"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap())
                    .collect();
                assert_eq!(zp, want, "{p} zero points");
            }
        }
    }
    let bytes = ckpt
        .tensor_bytes(t)
        .unwrap_or_else(|err| panic!("{p}: {err}"));
    assert_eq!(
        bytes.len() as u64,
        e["nbytes"].as_u64().unwrap(),
        "{p} nbytes"
    );
    assert_eq!(hex(&bytes), e["sha256"].as_str().unwrap(), "{p} sha256");
}

fn check_tensors(ckpt: &Checkpoint, tensors: &[&Tensor], expected: &Json) {
    let expected = expected.as_array().expect("tensors");
    let got: Vec<&str> = tensors.iter().map(|t| t.path.as_str()).collect();
    let want: Vec<&str> = expected
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(got, want, "tensor paths in order");
    for (t, e) in tensors.iter().zip(expected) {
        check_tensor(ckpt, t, e);
    }
}

fn check_common(ckpt: &Checkpoint, json: &Json) {
    let info = ckpt.info();
    let format = match ckpt.format() {
        Format::Zip => "zip",
        Format::Legacy => "legacy",
        Format::TorchScript => "torchscript",
        Format::Pt2 => "pt2",
        Format::LegacyTar => "legacy-tar",
    };
    assert_eq!(format, json["format"].as_str().unwrap());
    if let Some(name) = json.get("archive_name").and_then(Json::as_str) {
        assert_eq!(info.archive_name.as_deref(), Some(name));
        let entries: Vec<String> = info
            .records
            .iter()
            .map(|r| format!("{name}/{}", r.name))
            .collect();
        let want: Vec<String> = json["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(entries, want, "zip entries");
        let records = &json["records"];
        let text = |r: &str| records[r].as_str().map(str::to_owned);
        assert_eq!(info.byteorder_record, text("byteorder"));
        assert_eq!(info.format_version, text(".format_version"));
        assert_eq!(info.storage_alignment, text(".storage_alignment"));
        assert_eq!(info.serialization_id, text(".data/serialization_id"));
        let version = text(".data/version")
            .or_else(|| text("version"))
            .map(|v| v.trim().to_owned());
        assert_eq!(info.version, version);
        assert!(info.zip64, "torch always writes ZIP64 end records");
        // Record ranges lie in the file and match the data.
        for r in &info.records {
            assert!(r.byte_range.end <= ckpt.bytes().len() as u64);
        }
    }
    if let Some(p) = json.get("pickle_protocol").and_then(Json::as_u64) {
        let main = ckpt
            .pickles()
            .iter()
            .find(|x| x.name == "data.pkl" || x.name == "legacy pickle #4")
            .expect("main pickle");
        assert_eq!(main.protocol.map(u64::from), Some(p), "pickle protocol");
    }
    for pk in ckpt.pickles() {
        if !pk.compressed {
            let bytes = &ckpt.bytes()[pk.byte_range.start as usize..pk.byte_range.end as usize];
            assert!(!bytes.is_empty());
        }
    }
}

fn check_zip_fixture(name: &str) {
    let (ckpt, json) = load(name);
    check_common(&ckpt, &json);
    let tensors: Vec<&Tensor> = ckpt.tensors().iter().collect();
    check_tensors(&ckpt, &tensors, &json["tensors"]);
}

#[test]
fn dtypes() {
    check_zip_fixture("dtypes");
}

#[test]
fn protocol2_state_dict() {
    check_zip_fixture("protocol2");
}

#[test]
fn protocol4_state_dict() {
    check_zip_fixture("protocol4");
}

#[test]
fn dataparallel_and_compiled_prefixes() {
    check_zip_fixture("dataparallel");
    check_zip_fixture("compiled");
}

#[test]
fn cuda_tagged() {
    check_zip_fixture("cuda_tagged");
    check_zip_fixture("cuda_tagged_reference");
    check_zip_fixture("cuda_tagged_legacy");
    // Same bytes as the reference, only the location differs.
    let (a, _) = load("cuda_tagged");
    let (b, _) = load("cuda_tagged_reference");
    for (x, y) in a.tensors().iter().zip(b.tensors()) {
        assert_eq!(a.tensor_bytes(x).unwrap(), b.tensor_bytes(y).unwrap());
    }
}

#[test]
fn big_endian_swaps_by_tensor_dtype() {
    check_zip_fixture("big_endian");
    let (ckpt, json) = load("big_endian");
    assert_eq!(ckpt.info().byteorder, Some(netport_tensor::ByteOrder::Big));
    let u16s = ckpt.tensor("u16").unwrap();
    let b = ckpt.tensor_bytes(u16s).unwrap();
    let values: Vec<u64> = b
        .chunks_exact(2)
        .map(|c| u64::from(u16::from_le_bytes([c[0], c[1]])))
        .collect();
    let e = json["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "u16")
        .unwrap();
    assert_eq!(values, u64s(&e["true_values"]));
    // Conversion reads the big-endian storage correctly too.
    let f = ckpt.tensor("f32").unwrap();
    let le = ckpt.tensor_bytes(f).unwrap();
    let conv = ckpt
        .tensor_converted(f, netport_tensor::DType::Float32)
        .unwrap();
    assert_eq!(&conv[..], &le[..]);
}

fn leaf_json(ckpt: &Checkpoint, path: &str) -> Option<Json> {
    let v = ckpt.values().iter().find(|v| v.path == path)?;
    Some(match &v.leaf {
        Leaf::None => Json::Null,
        Leaf::Bool(b) => Json::from(*b),
        Leaf::Int(i) => Json::from(*i),
        Leaf::Float(f) => Json::from(*f),
        Leaf::Str(s) => Json::from(s.clone()),
        other => Json::from(format!("{other:?}")),
    })
}

/// Compare an expected JSON value at `path` with the values (scalars at the
/// path; dicts and lists by their children).
fn check_value(ckpt: &Checkpoint, path: &str, want: &Json) {
    match want {
        Json::Object(map) => {
            for (k, v) in map {
                check_value(ckpt, &format!("{path}.{k}"), v);
            }
        }
        Json::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_value(ckpt, &format!("{path}.{i}"), v);
            }
        }
        _ => {
            let got = leaf_json(ckpt, path).unwrap_or_else(|| panic!("no value at {path}"));
            match (want.as_f64(), got.as_f64()) {
                (Some(a), Some(b)) => assert_eq!(a, b, "{path}"),
                _ => assert_eq!(&got, want, "{path}"),
            }
        }
    }
}

#[test]
fn training_checkpoint() {
    let (ckpt, json) = load("training");
    check_common(&ckpt, &json);
    let tensors: Vec<&Tensor> = ckpt.tensors().iter().collect();
    check_tensors(&ckpt, &tensors, &json["tensors"]);
    for (k, v) in json["values"].as_object().unwrap() {
        if k.ends_with("_type") || k == "optimizer.state_keys" {
            continue;
        }
        check_value(&ckpt, k, v);
    }
    // numpy scalars keep their type in the repr.
    let repr = |p: &str| {
        ckpt.values()
            .iter()
            .find(|v| v.path == p)
            .unwrap()
            .repr
            .clone()
    };
    assert_eq!(repr("best_acc"), "np.float64(0.93)");
    assert_eq!(repr("step"), "np.int64(1000)");
    assert_eq!(repr("epoch"), "7");
    let args = repr("args");
    assert!(
        args.starts_with("argparse.Namespace(") && args.contains("lr=0.001"),
        "{args}"
    );
    assert_eq!(repr("optimizer.param_groups.0.betas.1"), "0.999");
    // The optimizer state keys are ints, printed as str(key).
    let keys = json["values"]["optimizer.state_keys"].as_array().unwrap();
    for k in keys {
        assert!(
            ckpt.tensor(&format!("optimizer.state.{k}.exp_avg"))
                .is_some()
        );
    }
}

#[test]
fn legacy_stacked_pickles() {
    let (ckpt, json) = load("legacy");
    check_common(&ckpt, &json);
    let tensors: Vec<&Tensor> = ckpt.tensors().iter().collect();
    check_tensors(&ckpt, &tensors, &json["tensors"]);
    let layout = &json["legacy"];
    let ends: Vec<u64> = ckpt.pickles().iter().map(|p| p.byte_range.end).collect();
    assert_eq!(ends, u64s(&layout["pickle_ends"]));
    let protos: Vec<u64> = ckpt
        .pickles()
        .iter()
        .map(|p| u64::from(p.protocol.unwrap()))
        .collect();
    assert_eq!(protos, u64s(&layout["pickle_protocols"]));
    // Storages in key order, each after its 8-byte count, back to back.
    let mut cursor = ckpt.pickles()[4].byte_range.end;
    for key in layout["storage_keys"].as_array().unwrap() {
        let s = ckpt
            .storages()
            .iter()
            .find(|s| *s.key == *key.as_str().unwrap())
            .unwrap();
        assert_eq!(s.byte_range.start, cursor + 8);
        cursor = s.byte_range.end;
    }
    assert_eq!(cursor, ckpt.bytes().len() as u64);
    assert_eq!(ckpt.info().legacy_protocol_version, Some(1001));
    let sys = ckpt.info().legacy_sys_info.as_deref().unwrap();
    assert!(sys.contains("'little_endian': True"), "{sys}");
    for (k, v) in json["values"].as_object().unwrap() {
        check_value(&ckpt, k, v);
    }
}

fn check_torchscript(name: &str) {
    let (ckpt, json) = load(name);
    check_common(&ckpt, &json);
    let data: Vec<&Tensor> = ckpt
        .tensors()
        .iter()
        .filter(|t| &*t.source == "data.pkl")
        .collect();
    check_tensors(&ckpt, &data, &json["tensors"]);
    let consts: Vec<&Tensor> = ckpt
        .tensors()
        .iter()
        .filter(|t| &*t.source == "constants.pkl")
        .collect();
    check_tensors(&ckpt, &consts, &json["constants"]);
    for p in json["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .chain(json["buffers"].as_array().unwrap())
    {
        assert!(ckpt.tensor(p.as_str().unwrap()).is_some(), "{p}");
    }
    let root = json["root_class"].as_str().unwrap();
    let classes = &ckpt.info().module_classes;
    let (path, class) = classes.first().expect("root module class");
    assert_eq!(path, "");
    assert!(
        class.starts_with("__torch__.") && class.ends_with(&format!(".{root}")),
        "{class}"
    );
    // The code records are deflated; their debug pickles are listed as compressed.
    for (rec, meta) in json["code_records"].as_object().unwrap() {
        let rel = rec.split_once('/').unwrap().1;
        let r = ckpt.info().records.iter().find(|r| r.name == rel).unwrap();
        assert_eq!(u64::from(r.method), meta["compress_type"].as_u64().unwrap());
        assert_eq!(r.size, meta["file_size"].as_u64().unwrap());
        if rel.ends_with(".debug_pkl") {
            let p = ckpt.pickles().iter().find(|p| p.name == rel).unwrap();
            assert!(p.compressed);
            let bytes = ckpt.pickle_bytes(p).unwrap();
            assert_eq!(bytes.len() as u64, r.size);
            assert_eq!(bytes[0], 0x80);
        }
    }
}

#[test]
fn torchscript() {
    check_torchscript("torchscript");
}

#[test]
fn torchscript_frozen_constants() {
    check_torchscript("torchscript_frozen");
}

#[test]
fn export_pt2() {
    let (ckpt, json) = load("export");
    check_common(&ckpt, &json);
    let tensors: Vec<&Tensor> = ckpt.tensors().iter().collect();
    check_tensors(&ckpt, &tensors, &json["tensors"]);
    let sv = &json["schema_version"];
    assert_eq!(
        ckpt.info().pt2_schema_version,
        Some(format!("{}.{}", sv["major"], sv["minor"]))
    );
    assert_eq!(
        ckpt.info().torch_version.as_deref(),
        json["torch_version"].as_str()
    );
    // The nested sample-inputs archive's pickle is listed for scanners.
    assert!(
        ckpt.pickles()
            .iter()
            .any(|p| p.name.starts_with("data/sample_inputs/"))
    );
}

/// Two weights of a `.pt2` that name the same record (tied parameters) are
/// views of one storage: export.pt2 with `bn.weight` pointed at
/// `conv.bias`'s record (same dtype and shape), written by netport's zip
/// rewriter.
#[test]
fn export_pt2_tied_weights_share_one_storage() {
    use std::collections::HashMap;
    let bytes = std::fs::read(torch_dir().join("export.pt2")).unwrap();
    let zip = netport_torch::ZipArchive::parse(&bytes).unwrap();
    let name = "data/weights/model_weights_config.json";
    let r = zip.find(&format!("export/{name}")).unwrap().data_range();
    let mut config: Json =
        serde_json::from_slice(&bytes[r.start as usize..r.end as usize]).unwrap();
    assert_eq!(config["config"]["conv.bias"]["path_name"], "weight_1");
    config["config"]["bn.weight"]["path_name"] = "weight_1".into();
    let replacements = HashMap::from([(name.to_owned(), serde_json::to_vec(&config).unwrap())]);
    let (tied, _) =
        netport_torch::write::rewrite_zip_to(Vec::new(), &bytes, &zip, &replacements, None)
            .unwrap();
    let ckpt = Checkpoint::from_bytes(tied, &Default::default()).unwrap();
    let storage = |path: &str| {
        ckpt.tensors()
            .iter()
            .find(|t| &*t.path == path)
            .and_then(|t| t.storage)
            .unwrap()
    };
    assert_eq!(storage("conv.bias"), storage("bn.weight"));
    assert_ne!(storage("conv.bias"), storage("bn.bias"));
    // weight_2 is no one's record now: 8 storages for 9 tensors.
    assert_eq!(ckpt.tensors().len(), 9);
    assert_eq!(ckpt.storage_refs().len(), 8);
}

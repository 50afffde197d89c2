//! Checkpoint -> safetensors -> checkpoint on the committed fixtures, read
//! back by our reader and by the reference `safetensors` crate; edits;
//! refusals; sharded indexes; hostile safetensors headers.

use std::path::{Path, PathBuf};

use netport_safetensors::{SafetensorsError, SafetensorsFile, ShardIndex};
use netport_tensor::DType;
use netport_torch::{Checkpoint, ConvertReport, Edits, Format, TensorKind, TorchError};
use netport_torch_safetensors::{
    ConvertError, TensorFile, checkpoint_to_safetensors, index_to_checkpoints,
    index_to_safetensors, safetensors_to_checkpoint, safetensors_to_legacy_checkpoint,
};

fn torch_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/torch")
}

const FIXTURES: &[&str] = &[
    "protocol2.pt",
    "protocol4.pt",
    "legacy.pt",
    "dtypes.pt",
    "training.pt",
    "dataparallel.pt",
    "compiled.pt",
    "cuda_tagged.pt",
    "cuda_tagged_legacy.pt",
    "cuda_tagged_reference.pt",
    "big_endian.pt",
    "torchscript.pt",
    "torchscript_frozen.pt",
    "export.pt2",
];

/// An `--exclude` pattern for the tensors safetensors cannot hold.
fn unwritable(ckpt: &Checkpoint) -> Option<regex::Regex> {
    let names: Vec<String> = ckpt
        .tensors()
        .iter()
        .filter(|t| {
            t.dtype.safetensors().is_none()
                || matches!(
                    t.kind,
                    TensorKind::Quantized(_) | TensorKind::Meta | TensorKind::Unsupported { .. }
                )
        })
        .map(|t| regex::escape(&t.path))
        .collect();
    (!names.is_empty()).then(|| Edits::regex(&format!("^({})$", names.join("|"))).unwrap())
}

/// Every tensor of `ckpt` not left out is in `out` (directly or as an
/// alias) with the bytes `tensor_bytes` gives; the reference crate accepts
/// the file and agrees.
fn check_output(ckpt: &Checkpoint, out: &Path, report: &ConvertReport, edits: &Edits) {
    let sf = SafetensorsFile::open(out).unwrap();
    let raw = std::fs::read(out).unwrap();
    let reference = safetensors::SafeTensors::deserialize(&raw).expect("reference reader");
    assert_eq!(reference.len(), sf.tensors().len());
    assert_eq!(sf.metadata().get("format").map(String::as_str), Some("pt"));
    assert_eq!(report.tensors, sf.tensors().len());
    let aliases = sf.aliases();
    for t in ckpt.tensors() {
        let Some(name) = edits.rename(&t.path) else {
            continue;
        };
        let target = aliases
            .iter()
            .find(|(a, _)| *a == name)
            .map(|(_, k)| k.clone())
            .unwrap_or(name.clone());
        let st = sf
            .tensor(&target)
            .unwrap_or_else(|| panic!("{}: '{name}' missing", out.display()));
        assert_eq!(st.shape, t.shape, "{name}");
        let r = reference.tensor(&target).unwrap();
        assert_eq!(r.data(), sf.tensor_bytes(st), "{name}: reference bytes");
        assert_eq!(
            r.shape().iter().map(|&d| d as u64).collect::<Vec<_>>(),
            st.shape
        );
        let expected = match edits.target_dtype(t.dtype) {
            d if d == t.dtype => ckpt.tensor_bytes(t).unwrap().into_owned(),
            d => ckpt.tensor_converted(t, d).unwrap(),
        };
        assert_eq!(sf.tensor_bytes(st), &expected[..], "{name}: bytes");
        // Aligned to the element size, as the reference writer does.
        assert_eq!(st.data_offsets.0 % st.dtype.size_in_bytes() as u64, 0);
    }
}

#[test]
fn every_fixture_converts_with_identical_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let ckpt = Checkpoint::open(torch_dir().join(name)).unwrap();
        let edits = Edits {
            exclude: unwritable(&ckpt),
            ..Edits::default()
        };
        let out = tmp.path().join(format!("{name}.safetensors"));
        let report = checkpoint_to_safetensors(&ckpt, &out, &edits)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        check_output(&ckpt, &out, &report, &edits);
    }
    // Only the outputs: no temporary file left behind.
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        FIXTURES.len()
    );
}

#[test]
fn unwritable_dtypes_are_refused_by_name_and_nothing_is_left() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = Checkpoint::open(torch_dir().join("dtypes.pt")).unwrap();
    let out = tmp.path().join("out.safetensors");
    let err = checkpoint_to_safetensors(&ckpt, &out, &Edits::default()).unwrap_err();
    assert!(
        matches!(
            &err,
            ConvertError::Torch(TorchError::TensorsRefused { target, tensors })
                if target == "safetensors" && tensors.len() == 14
        ),
        "{err}"
    );
    let err = err.to_string();
    for needle in ["'qint8'", "quantized", "'complex128'", "'float4_e2m1fn_x2'"] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    // Flag names are the CLI's to add.
    assert!(!err.contains("--"), "{err}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn shared_storage_views_are_separate_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = Checkpoint::open(torch_dir().join("legacy.pt")).unwrap();
    let out = tmp.path().join("legacy.safetensors");
    let report = checkpoint_to_safetensors(&ckpt, &out, &Edits::default()).unwrap();
    assert!(report.aliases.is_empty());
    let mut copies = report.copies.clone();
    copies.sort();
    assert_eq!(copies, ["ints", "ints_tail", "row2", "weight", "weight_t"]);
    // The legacy int value is dropped with a note.
    assert!(!report.dropped_values.is_empty());
}

/// A checkpoint with tied weights (the same tensor at two names) written by
/// our zip writer from a safetensors file whose metadata records the alias,
/// then converted back: one tensor written, the alias recorded as
/// `save_model` does.
#[test]
fn tied_weights_become_aliases_and_back() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Checkpoint::open(torch_dir().join("protocol2.pt")).unwrap();
    let sf_path = tmp.path().join("a.safetensors");
    checkpoint_to_safetensors(&src, &sf_path, &Edits::default()).unwrap();
    // Add an alias the Hugging Face way: rewrite the header with
    // "head.weight": "fc.weight" in __metadata__.
    let raw = std::fs::read(&sf_path).unwrap();
    let n = u64::from_le_bytes(raw[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&raw[8..8 + n]).unwrap();
    header["__metadata__"]["head.weight"] = "fc.weight".into();
    let mut h = serde_json::to_vec(&header).unwrap();
    h.resize(h.len().next_multiple_of(8), b' ');
    let mut tied = (h.len() as u64).to_le_bytes().to_vec();
    tied.extend_from_slice(&h);
    tied.extend_from_slice(&raw[8 + n..]);
    let tied_path = tmp.path().join("tied.safetensors");
    std::fs::write(&tied_path, tied).unwrap();

    let sf = SafetensorsFile::open(&tied_path).unwrap();
    let pt = tmp.path().join("tied.pt");
    let report = safetensors_to_checkpoint(&sf, Some(&tied_path), &pt, &Edits::default()).unwrap();
    assert_eq!(
        report.aliases,
        [("head.weight".to_owned(), "fc.weight".to_owned())]
    );
    let ckpt = Checkpoint::open(&pt).unwrap();
    assert_eq!(ckpt.tensors().len(), 10);
    let a = ckpt.tensor("fc.weight").unwrap();
    let b = ckpt.tensor("head.weight").unwrap();
    assert_eq!(a.storage, b.storage, "tied again");
    for t in src.tensors() {
        let back = ckpt.tensor(&t.path).unwrap();
        assert_eq!(back.dtype, t.dtype);
        assert_eq!(back.shape, t.shape);
        assert_eq!(
            ckpt.tensor_bytes(back).unwrap(),
            src.tensor_bytes(t).unwrap()
        );
    }

    // And to safetensors again: written once, alias recorded.
    let again = tmp.path().join("again.safetensors");
    let report = checkpoint_to_safetensors(&ckpt, &again, &Edits::default()).unwrap();
    assert_eq!(
        report.aliases,
        [("head.weight".to_owned(), "fc.weight".to_owned())]
    );
    let sf2 = SafetensorsFile::open(&again).unwrap();
    assert!(sf2.tensor("head.weight").is_none());
    assert_eq!(
        sf2.metadata().get("head.weight").map(String::as_str),
        Some("fc.weight")
    );
    check_output(&ckpt, &again, &report, &Edits::default());
}

#[test]
fn every_fixture_round_trips_through_safetensors_to_pt() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "protocol2.pt",
        "legacy.pt",
        "dtypes.pt",
        "big_endian.pt",
        "export.pt2",
    ] {
        let ckpt = Checkpoint::open(torch_dir().join(name)).unwrap();
        let edits = Edits {
            exclude: unwritable(&ckpt),
            ..Edits::default()
        };
        let sf_path = tmp.path().join(format!("{name}.safetensors"));
        checkpoint_to_safetensors(&ckpt, &sf_path, &edits).unwrap();
        let sf = SafetensorsFile::open(&sf_path).unwrap();
        let pt = tmp.path().join(format!("{name}.back.pt"));
        safetensors_to_checkpoint(&sf, Some(&sf_path), &pt, &Edits::default()).unwrap();
        let back = Checkpoint::open(&pt).unwrap();
        assert_eq!(back.tensors().len(), sf.tensors().len(), "{name}");
        for t in sf.tensors() {
            let b = back.tensor(&t.name).unwrap();
            assert_eq!(
                (b.dtype, &b.shape),
                (t.dtype, &t.shape),
                "{name}: {}",
                t.name
            );
            assert_eq!(
                &back.tensor_bytes(b).unwrap()[..],
                sf.tensor_bytes(t),
                "{name}: {}",
                t.name
            );
        }
    }
}

#[test]
fn key_selects_the_model_of_a_training_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = Checkpoint::open(torch_dir().join("training.pt")).unwrap();
    let edits = Edits {
        key: Some("model".into()),
        ..Edits::default()
    };
    let out = tmp.path().join("model.safetensors");
    let report = checkpoint_to_safetensors(&ckpt, &out, &edits).unwrap();
    let sf = SafetensorsFile::open(&out).unwrap();
    let mut names: Vec<&str> = sf.tensors().iter().map(|t| t.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bn.bias",
            "bn.num_batches_tracked",
            "bn.running_mean",
            "bn.running_var",
            "bn.weight",
            "conv.bias",
            "conv.weight",
            "fc.bias",
            "fc.weight"
        ]
    );
    assert_eq!(report.left_out.len(), 18, "the optimizer state");
    check_output(&ckpt, &out, &report, &edits);

    let bad = Edits {
        key: Some("state_dict".into()),
        ..Edits::default()
    };
    let err = checkpoint_to_safetensors(&ckpt, &out, &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model, optimizer"), "{err}");
}

#[test]
fn strip_prefix_gives_plain_state_dict_names() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = Checkpoint::open(torch_dir().join("protocol2.pt")).unwrap();
    let edits = Edits {
        strip_prefixes: vec!["module.".into(), "_orig_mod.".into()],
        ..Edits::default()
    };
    for name in ["dataparallel.pt", "compiled.pt"] {
        let ckpt = Checkpoint::open(torch_dir().join(name)).unwrap();
        let out = tmp.path().join(format!("{name}.safetensors"));
        let report = checkpoint_to_safetensors(&ckpt, &out, &edits).unwrap();
        check_output(&ckpt, &out, &report, &edits);
        let sf = SafetensorsFile::open(&out).unwrap();
        for t in plain.tensors() {
            let st = sf
                .tensor(&t.path)
                .unwrap_or_else(|| panic!("{name}: {}", t.path));
            assert_eq!(sf.tensor_bytes(st), &plain.tensor_bytes(t).unwrap()[..]);
        }
    }
}

#[test]
fn filter_exclude_rename() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = Checkpoint::open(torch_dir().join("protocol2.pt")).unwrap();
    let edits = Edits {
        filter: Some(Edits::regex(r"^(bn|fc)\.").unwrap()),
        exclude: Some(Edits::regex("num_batches").unwrap()),
        renames: vec![Edits::parse_rename(r"^fc\.(.*)=head.$1").unwrap()],
        ..Edits::default()
    };
    let out = tmp.path().join("o.safetensors");
    let report = checkpoint_to_safetensors(&ckpt, &out, &edits).unwrap();
    let sf = SafetensorsFile::open(&out).unwrap();
    let mut names: Vec<&str> = sf.tensors().iter().map(|t| t.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bn.bias",
            "bn.running_mean",
            "bn.running_var",
            "bn.weight",
            "head.bias",
            "head.weight"
        ]
    );
    check_output(&ckpt, &out, &report, &edits);
}

#[test]
fn dtype_bf16_halves_the_float_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = Checkpoint::open(torch_dir().join("protocol2.pt")).unwrap();
    let edits = Edits {
        dtype: Some(DType::BFloat16),
        ..Edits::default()
    };
    let out = tmp.path().join("bf16.safetensors");
    let report = checkpoint_to_safetensors(&ckpt, &out, &edits).unwrap();
    assert_eq!(
        report.dtype_changed, 8,
        "every float32 tensor, not the int64 counter"
    );
    assert_eq!(report.dtype_bytes_before, 2 * report.dtype_bytes_after);
    assert_eq!(report.bytes_saved(), report.dtype_bytes_after as i64);
    let sf = SafetensorsFile::open(&out).unwrap();
    assert_eq!(sf.tensor("conv.weight").unwrap().dtype, DType::BFloat16);
    assert_eq!(
        sf.tensor("bn.num_batches_tracked").unwrap().dtype,
        DType::Int64
    );
    check_output(&ckpt, &out, &report, &edits);
}

#[test]
fn input_is_never_the_output_and_never_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = torch_dir().join("protocol2.pt");
    let before = std::fs::read(&src).unwrap();
    let ckpt = Checkpoint::open(&src).unwrap();
    let sf_path = tmp.path().join("x.safetensors");
    checkpoint_to_safetensors(&ckpt, &sf_path, &Edits::default()).unwrap();
    let sf = SafetensorsFile::open(&sf_path).unwrap();
    let err = safetensors_to_checkpoint(&sf, Some(&sf_path), &sf_path, &Edits::default());
    assert!(err.is_err());
    assert!(SafetensorsFile::open(&sf_path).is_ok());
    assert_eq!(std::fs::read(&src).unwrap(), before);
}

#[test]
fn sharded_index_converts_shard_by_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    // Two shards with disjoint names: protocol2.pt and legacy.pt.
    std::fs::copy(
        torch_dir().join("protocol2.pt"),
        dir.join("pytorch_model-00001-of-00002.bin"),
    )
    .unwrap();
    std::fs::copy(
        torch_dir().join("legacy.pt"),
        dir.join("pytorch_model-00002-of-00002.bin"),
    )
    .unwrap();
    let mut weight_map = serde_json::Map::new();
    for (file, shard) in [
        ("protocol2.pt", "pytorch_model-00001-of-00002.bin"),
        ("legacy.pt", "pytorch_model-00002-of-00002.bin"),
    ] {
        for t in Checkpoint::open(torch_dir().join(file)).unwrap().tensors() {
            weight_map.insert(t.path.clone(), shard.into());
        }
    }
    let index = serde_json::json!({"metadata": {"total_size": 1}, "weight_map": weight_map});
    let index_path = dir.join("pytorch_model.bin.index.json");
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();

    let out = tmp.path().join("out");
    let report = index_to_safetensors(&index_path, &out, &Edits::default()).unwrap();
    assert_eq!(report.index, out.join("model.safetensors.index.json"));
    let written = ShardIndex::read(&report.index).unwrap();
    assert_eq!(
        written.shards(),
        [
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors"
        ]
    );
    assert_eq!(written.weight_map.len(), 21);
    assert_eq!(
        written.weight_map["fc.weight"],
        "model-00001-of-00002.safetensors"
    );
    assert_eq!(
        written.weight_map["weight_t"],
        "model-00002-of-00002.safetensors"
    );
    let total: u64 = report.shards.iter().map(|s| s.2.data_bytes).sum();
    assert_eq!(written.metadata["total_size"], total);
    for (inp, outp, r) in &report.shards {
        check_output(&Checkpoint::open(inp).unwrap(), outp, r, &Edits::default());
    }
    // Three files: two shards and the index.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 3);

    // And back: pytorch_model-0000N-of-00002.bin + pytorch_model.bin.index.json.
    let back = tmp.path().join("back");
    let r = index_to_checkpoints(&report.index, &back, &Edits::default()).unwrap();
    assert_eq!(r.index, back.join("pytorch_model.bin.index.json"));
    let idx = ShardIndex::read(&r.index).unwrap();
    assert_eq!(idx.weight_map.len(), 21);
    assert_eq!(
        idx.weight_map["fc.weight"],
        "pytorch_model-00001-of-00002.bin"
    );
    for (i, src) in ["protocol2.pt", "legacy.pt"].iter().enumerate() {
        let a = TensorFile::open(torch_dir().join(src)).unwrap();
        let b = TensorFile::open(back.join(format!("pytorch_model-0000{}-of-00002.bin", i + 1)))
            .unwrap();
        let d = netport_torch_safetensors::diff(&a, &b, &Default::default()).unwrap();
        assert!(d.identical, "{src}: {d:#?}");
    }

    // An index naming a tensor its shard lacks is refused, nothing written.
    let mut bad = index.clone();
    bad["weight_map"]["ghost"] = "pytorch_model-00001-of-00002.bin".into();
    std::fs::write(&index_path, serde_json::to_vec(&bad).unwrap()).unwrap();
    let out2 = tmp.path().join("out2");
    let err = index_to_safetensors(&index_path, &out2, &Edits::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("'ghost'"), "{err}");
    assert_eq!(std::fs::read_dir(&out2).unwrap().count(), 0);
    // A shard name that leaves the directory is refused.
    let mut escape = index.clone();
    escape["weight_map"]["fc.bias"] = "../x.bin".into();
    assert!(ShardIndex::parse(&serde_json::to_vec(&escape).unwrap()).is_err());
}

// ---------------------------------------------------------------------------
// Hostile headers.

fn with_header(len: u64, header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut v = len.to_le_bytes().to_vec();
    v.extend_from_slice(header);
    v.extend_from_slice(data);
    v
}

fn refused(bytes: Vec<u8>) -> String {
    match SafetensorsFile::from_bytes(bytes) {
        Ok(_) => panic!("accepted"),
        Err(e @ SafetensorsError::Format { .. }) => e.to_string(),
        Err(e) => panic!("wrong error kind: {e}"),
    }
}

#[test]
fn hostile_headers_are_refused() {
    let ok = br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let good = with_header(ok.len() as u64, ok, &[0; 8]);
    assert!(SafetensorsFile::from_bytes(good.clone()).is_ok());
    assert!(safetensors::SafeTensors::deserialize(&good).is_ok());

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("short file", vec![1, 2, 3], "8-byte header length"),
        (
            "lying length",
            with_header(1 << 20, ok, &[0; 8]),
            "beyond the end of the file",
        ),
        (
            "huge length",
            with_header(u64::MAX, ok, &[0; 8]),
            "larger than the limit",
        ),
        ("not json", with_header(4, b"{abc", &[]), "not valid JSON"),
        (
            "not an object",
            with_header(3, b"[1]", &[]),
            "start with '{'",
        ),
        (
            "offsets beyond the file",
            {
                let h = br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
                with_header(h.len() as u64, h, &[0; 4])
            },
            "beyond the data section",
        ),
        (
            "size mismatch",
            {
                let h = br#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
                with_header(h.len() as u64, h, &[0; 8])
            },
            "needs 12 bytes",
        ),
        (
            "shape overflow",
            {
                let h = br#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#;
                with_header(h.len() as u64, h, &[0; 8])
            },
            "more than 2^64",
        ),
        (
            "overlap",
            {
                let h = br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
                with_header(h.len() as u64, h, &[0; 8])
            },
            "overlapping",
        ),
        (
            "hole",
            {
                let h = br#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
                with_header(h.len() as u64, h, &[0; 8])
            },
            "hole",
        ),
        (
            "trailing bytes",
            {
                let h = br#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
                with_header(h.len() as u64, h, &[0; 8])
            },
            "data section has 8 bytes",
        ),
        (
            "reversed offsets",
            {
                let h = br#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#;
                with_header(h.len() as u64, h, &[0; 8])
            },
            "end before they begin",
        ),
        (
            "unknown dtype",
            {
                let h = br#"{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}"#;
                with_header(h.len() as u64, h, &[0; 1])
            },
            "dtype 'F4' is not supported",
        ),
        (
            "negative shape",
            {
                let h = br#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#;
                with_header(h.len() as u64, h, &[0; 4])
            },
            "'shape'",
        ),
        (
            "metadata not strings",
            {
                let h = br#"{"__metadata__":{"x":1}}"#;
                with_header(h.len() as u64, h, &[])
            },
            "not a string",
        ),
    ];
    for (what, bytes, needle) in cases {
        let err = refused(bytes.clone());
        assert!(err.contains(needle), "{what}: '{needle}' not in '{err}'");
        // The reference implementation refuses them too (it has no F4 check
        // in this form, so skip that one).
        if what != "unknown dtype" {
            assert!(
                safetensors::SafeTensors::deserialize(&bytes).is_err(),
                "{what}: the reference accepts it"
            );
        }
    }
}

/// Same logical bytes for each `(source path, output path)` pair.
fn assert_same_bytes(src: &Checkpoint, out: &Checkpoint, pairs: &[(String, String)]) {
    for (a, b) in pairs {
        let x = src.tensor(a).unwrap();
        let y = out.tensor(b).unwrap_or_else(|| panic!("{b} missing"));
        assert_eq!(
            src.tensor_bytes(x).unwrap(),
            out.tensor_bytes(y).unwrap(),
            "{a} -> {b}"
        );
    }
}

#[test]
fn safetensors_to_legacy() {
    let dir = tempfile::tempdir().unwrap();
    let src = Checkpoint::open(torch_dir().join("protocol2.pt")).unwrap();
    let st = dir.path().join("m.safetensors");
    checkpoint_to_safetensors(&src, &st, &Edits::default()).unwrap();
    let sf = SafetensorsFile::open(&st).unwrap();
    let out = dir.path().join("m.pt");
    let r = safetensors_to_legacy_checkpoint(&sf, Some(&st), &out, &Edits::default()).unwrap();
    assert_eq!(r.tensors, src.tensors().len());
    let got = Checkpoint::open(&out).unwrap();
    assert_eq!(got.format(), Format::Legacy);
    let pairs: Vec<(String, String)> = src
        .tensors()
        .iter()
        .map(|t| (t.path.clone(), t.path.clone()))
        .collect();
    assert_same_bytes(&src, &got, &pairs);
}

/// The safetensors writer: outputs have the mode a plain create gives, and
/// a failed write (the rename over a folder fails after the data was
/// written; an encoder-side refusal) leaves no temporary file.
#[test]
fn safetensors_outputs_are_created_like_a_plain_create_and_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let src = Checkpoint::open(torch_dir().join("protocol2.pt")).unwrap();
    let st = dir.path().join("model.safetensors");
    checkpoint_to_safetensors(&src, &st, &Edits::default()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let probe = dir.path().join("probe");
        std::fs::File::create(&probe).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&st), mode(&probe));
        std::fs::remove_file(&probe).unwrap();
    }
    let blocked = dir.path().join("blocked.safetensors");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("keep"), b"x").unwrap();
    let e = checkpoint_to_safetensors(&src, &blocked, &Edits::default()).unwrap_err();
    assert!(e.names_file(), "{e}");
    assert!(e.to_string().contains("blocked.safetensors"), "{e}");
    let e = checkpoint_to_safetensors(
        &src,
        &dir.path().join("no/such/m.safetensors"),
        &Edits::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("no/such"), "{e}");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["blocked.safetensors", "model.safetensors"]);
}

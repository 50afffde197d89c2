//! `diff` across formats on the committed fixtures and on small
//! safetensors files written here (NaN, infinities, shapes, aliases).

use std::path::{Path, PathBuf};

use netport_tensor::DType;
use netport_torch::{Checkpoint, Edits};
use netport_torch_safetensors::diff::Status;
use netport_torch_safetensors::{
    DiffOptions, DiffReport, TensorFile, checkpoint_to_safetensors, diff,
};

fn torch_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/torch")
}

fn run(a: &Path, b: &Path, edits: Edits) -> DiffReport {
    let a = TensorFile::open(a).unwrap();
    let b = TensorFile::open(b).unwrap();
    diff(&a, &b, &DiffOptions { edits }).unwrap()
}

#[test]
fn every_fixture_is_identical_to_itself() {
    for name in [
        "protocol2.pt",
        "legacy.pt",
        "dtypes.pt",
        "training.pt",
        "big_endian.pt",
        "export.pt2",
        "torchscript.pt",
    ] {
        let p = torch_dir().join(name);
        let r = run(&p, &p, Edits::default());
        assert!(r.identical, "{name}: {r:?}");
        assert!(r.summary.common > 0);
        assert_eq!(r.summary.equal, r.summary.common, "{name}");
    }
}

#[test]
fn checkpoint_and_its_safetensors_conversion_are_identical() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "protocol2.pt",
        "legacy.pt",
        "cuda_tagged.pt",
        "torchscript.pt",
    ] {
        let p = torch_dir().join(name);
        let out = tmp.path().join(format!("{name}.safetensors"));
        let ckpt = Checkpoint::open(&p).unwrap();
        checkpoint_to_safetensors(&ckpt, &out, &Edits::default()).unwrap();
        let r = run(&p, &out, Edits::default());
        assert!(r.identical, "{name}: {r:#?}");
        assert_eq!(r.format_a, ckpt.format().name());
        assert_eq!(r.format_b, "safetensors");
    }
}

#[test]
fn bf16_conversion_differs_by_bf16_rounding() {
    let tmp = tempfile::tempdir().unwrap();
    let p = torch_dir().join("protocol2.pt");
    let out = tmp.path().join("bf16.safetensors");
    let edits = Edits {
        dtype: Some(DType::BFloat16),
        ..Edits::default()
    };
    checkpoint_to_safetensors(&Checkpoint::open(&p).unwrap(), &out, &edits).unwrap();
    let r = run(&p, &out, Edits::default());
    assert!(!r.identical);
    assert_eq!(r.summary.common, 9);
    assert_eq!(r.summary.dtype_mismatch, 8);
    assert_eq!(r.summary.equal, 1, "the int64 counter");
    for t in &r.tensors {
        if t.name == "bn.num_batches_tracked" {
            assert_eq!(t.status, Status::Equal);
            continue;
        }
        assert_eq!(
            (t.dtype_a.as_str(), t.dtype_b.as_str()),
            ("float32", "bfloat16")
        );
        assert!(matches!(t.status, Status::Different | Status::EqualValues));
        // Round to nearest bf16 (8 significant bits): relative error <= 2^-9
        // of the exact value, so <= 2^-8 of max(|a|, |b|).
        let rel = t.max_rel_diff.unwrap();
        assert!(rel > 0.0 && rel <= 1.0 / 256.0, "{}: {rel}", t.name);
        let abs = t.max_abs_diff.unwrap();
        assert!(abs > 0.0 && abs < 0.01, "{}: {abs}", t.name);
        assert_eq!(t.nan_a + t.nan_b + t.nan_mismatch + t.inf_mismatch, 0);
    }
}

#[test]
fn prefixes_and_missing_keys() {
    let dp = torch_dir().join("dataparallel.pt");
    let plain = torch_dir().join("protocol2.pt");
    let r = run(&dp, &plain, Edits::default());
    assert!(!r.identical);
    assert_eq!(
        (r.only_in_a.len(), r.only_in_b.len(), r.summary.common),
        (9, 9, 0)
    );
    assert_eq!(r.only_in_a[0], "module.conv.weight");
    let r = run(
        &dp,
        &plain,
        Edits {
            strip_prefixes: vec!["module.".into()],
            ..Edits::default()
        },
    );
    assert!(r.identical, "{r:#?}");
    // training.pt's model (trained two steps) against the plain state dict:
    // same names and shapes, the optimizer only in A.
    let tr = torch_dir().join("training.pt");
    let r = run(
        &tr,
        &plain,
        Edits {
            strip_prefixes: vec!["model.".into()],
            ..Edits::default()
        },
    );
    assert_eq!(r.summary.common, 9);
    assert_eq!(r.summary.shape_mismatch + r.summary.dtype_mismatch, 0);
    assert_eq!(r.only_in_a.len(), 18);
    assert!(!r.identical);
}

fn safetensors(path: &Path, tensors: &[(&str, &str, &[u64], Vec<u8>)], metadata: &[(&str, &str)]) {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let m: serde_json::Map<String, serde_json::Value> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), (*v).into()))
            .collect();
        header.insert("__metadata__".into(), m.into());
    }
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let b = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [b, data.len()]}),
        );
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    std::fs::write(path, out).unwrap();
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn nans_infinities_shapes_and_aliases() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.safetensors");
    let b = tmp.path().join("b.safetensors");
    let inf = f32::INFINITY;
    safetensors(
        &a,
        &[
            ("same_nan", "F32", &[3], f32s(&[f32::NAN, 1.0, inf])),
            ("one_nan", "F32", &[2], f32s(&[f32::NAN, 1.0])),
            ("inf", "F32", &[2], f32s(&[inf, 4.0])),
            ("shape", "F32", &[2], f32s(&[1.0, 2.0])),
            ("zero", "F32", &[1], f32s(&[0.0])),
            ("wide", "F32", &[2], f32s(&[1.5, -2.0])),
            ("tied", "F32", &[1], f32s(&[7.0])),
        ],
        &[("format", "pt")],
    );
    safetensors(
        &b,
        &[
            ("same_nan", "F32", &[3], f32s(&[f32::NAN, 1.0, inf])),
            ("one_nan", "F32", &[2], f32s(&[3.0, 1.0])),
            ("inf", "F32", &[2], f32s(&[-inf, 5.0])),
            ("shape", "F32", &[1, 2], f32s(&[1.0, 2.0])),
            ("zero", "F32", &[1], f32s(&[-0.0])),
            (
                "wide",
                "F64",
                &[2],
                [1.5f64, -2.0]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
            ),
            ("kept", "F32", &[1], f32s(&[7.0])),
            ("extra", "I64", &[0], Vec::new()),
        ],
        &[("format", "pt"), ("tied", "kept")],
    );
    let r = run(&a, &b, Edits::default());
    let get = |n: &str| r.tensors.iter().find(|t| t.name == n).unwrap();
    assert_eq!(get("same_nan").status, Status::Equal);
    assert_eq!((get("same_nan").nan_a, get("same_nan").nan_b), (1, 1));
    let one = get("one_nan");
    assert_eq!(
        (one.status, one.nan_mismatch, one.differing),
        (Status::Different, 1, Some(1))
    );
    let i = get("inf");
    assert_eq!(
        (i.inf_mismatch, i.differing, i.max_abs_diff),
        (1, Some(2), Some(1.0))
    );
    assert_eq!(i.max_rel_diff, Some(0.2));
    assert_eq!(get("shape").status, Status::ShapeMismatch);
    assert_eq!(
        get("zero").status,
        Status::EqualValues,
        "-0.0 == 0.0 but not bitwise"
    );
    assert_eq!(get("wide").status, Status::EqualValues);
    assert_eq!(
        get("tied").status,
        Status::Equal,
        "alias resolved through __metadata__"
    );
    assert_eq!(r.only_in_b, ["extra", "kept"]);
    assert!(r.only_in_a.is_empty());
    assert_eq!(r.summary.dtype_mismatch, 1);
    assert!(!r.identical);
    // JSON field names are stable.
    let v = serde_json::to_value(&r).unwrap();
    for f in [
        "format_a",
        "format_b",
        "identical",
        "summary",
        "only_in_a",
        "only_in_b",
        "tensors",
    ] {
        assert!(v.get(f).is_some(), "{f}");
    }
    let statuses: Vec<&str> = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "different",
            "different",
            "equal",
            "shape_mismatch",
            "equal",
            "equal_values",
            "equal_values"
        ]
    );
    assert_eq!(v["tensors"][0]["name"], "inf");
}

//! Interop with the real torch, torchvision and onnxruntime (ignored; env
//! `NETPORT_PYTHON`, and `NETPORT_CAFFE2_PYTHON` for torch 1.4): torch
//! builds each variant with random weights and randomised BatchNorm
//! statistics, saves its state_dict and computes the eval output; our export
//! of that file, run in onnxruntime, must equal it (rtol 1e-4, atol 1e-5) and
//! pass `onnx.checker.check_model(full_check=True)` and our checker with
//! shape inference, at opset 17 and 9.

use std::path::{Path, PathBuf};

use crate::common::{export_checked, heavy, peer, python};
use netport_torch_onnx::ExportOptions;

/// One model: a name for its files, the torchvision builder, classes, H, W.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub arch: &'static str,
    pub classes: u64,
    pub h: u64,
    pub w: u64,
}

const fn case(name: &'static str, arch: &'static str, classes: u64, h: u64, w: u64) -> Case {
    Case {
        name,
        arch,
        classes,
        h,
        w,
    }
}

fn spec(c: &Case) -> String {
    format!("{}:{}:{}:{}:{}", c.name, c.arch, c.classes, c.h, c.w)
}

/// Makes the cases with `python` in `dir`, exports each at every opset, and
/// checks onnxruntime's output against torch's.
fn roundtrip_in(
    dir: &Path,
    python: &Path,
    make_args: &[&str],
    family: &str,
    cases: &[Case],
    opsets: &[i64],
) {
    let specs: Vec<String> = cases.iter().map(spec).collect();
    let mut args = vec!["make", dir.to_str().expect("utf-8 temp dir")];
    args.extend(make_args);
    args.extend(specs.iter().map(String::as_str));
    peer(python, &args);
    export_and_verify(dir, family, cases, opsets);
}

fn roundtrip(family: &str, cases: &[Case]) {
    let dir = tempfile::tempdir().expect("temp dir");
    roundtrip_in(dir.path(), &python(), &[], family, cases, &[17, 9]);
}

/// [`roundtrip`] with op types allowed on one side only.
fn roundtrip_ops(family: &str, cases: &[Case], ours_only: &[&str], torch_only: &[&str]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let specs: Vec<String> = cases.iter().map(spec).collect();
    let mut args = vec!["make", dir.path().to_str().expect("utf-8 temp dir")];
    args.extend(specs.iter().map(String::as_str));
    peer(&python(), &args);
    export_and_verify_ops(dir.path(), family, cases, &[17, 9], ours_only, torch_only);
}

#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn resnet_family_matches_torch() {
    roundtrip(
        "resnet",
        &[
            case("r18_2", "resnet18", 2, 64, 64),
            case("r18_1000", "resnet18", 1000, 64, 64),
            case("r34_10", "resnet34", 10, 64, 64),
            case("r50_10", "resnet50", 10, 64, 64),
            case("r101_2", "resnet101", 2, 32, 32),
            case("rx50", "resnext50_32x4d", 10, 64, 64),
            case("wr50", "wide_resnet50_2", 2, 32, 32),
        ],
    );
}

#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn resnet_big_variants_match_torch() {
    let _disk = heavy();
    roundtrip(
        "resnet",
        &[
            case("r152", "resnet152", 1000, 32, 32),
            case("rx101_32", "resnext101_32x8d", 2, 32, 32),
        ],
    );
}

/// The seed's file: resnet18 with a 2-class head, saved by torch 1.4 in the
/// legacy format with pickle protocol 4 and every storage tagged cuda:0.
#[test]
#[ignore = "needs NETPORT_CAFFE2_PYTHON (torch 1.4) and NETPORT_PYTHON (onnxruntime)"]
fn seed_resnet18_from_torch_1_4_legacy_cuda_file() {
    let old = PathBuf::from(
        std::env::var_os("NETPORT_CAFFE2_PYTHON").expect("NETPORT_CAFFE2_PYTHON is not set"),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let c = case("seed", "resnet18", 2, 224, 224);
    let made = peer(
        &old,
        &["make", dir.path().to_str().unwrap(), "--legacy", &spec(&c)],
    );
    assert!(
        made[0]["torch"].as_str().unwrap().starts_with("1.4"),
        "{made:?}"
    );
    let ckpt = netport_torch::Checkpoint::open(dir.path().join("seed.pt")).expect("open");
    assert_eq!(ckpt.format().name(), "legacy");
    assert!(ckpt.tensors().iter().all(|t| &*t.device == "cuda:0"));
    let protocols: Vec<Option<u8>> = ckpt.pickles().iter().map(|p| p.protocol).collect();
    assert!(protocols.iter().all(|&p| p == Some(4)), "{protocols:?}");
    drop(ckpt);
    export_and_verify(dir.path(), "resnet", &[c], &[17, 9]);
}

/// Exports cases whose files are made, each at every opset, and checks
/// onnxruntime's output against torch's.
fn export_and_verify(dir: &Path, family: &str, cases: &[Case], opsets: &[i64]) {
    export_and_verify_ops(dir, family, cases, opsets, &[], &[]);
}

/// [`export_and_verify`], with op types allowed on one side only (see
/// [`matches_torch`]).
fn export_and_verify_ops(
    dir: &Path,
    family: &str,
    cases: &[Case],
    opsets: &[i64],
    ours_only: &[&str],
    torch_only: &[&str],
) {
    let mut pairs = Vec::new();
    for c in cases {
        for &opset in opsets {
            let out = dir.join(format!("{}.opset{opset}.onnx", c.name));
            // `ARCH+aux`: built with auxiliary heads; `ARCH+ti`: with
            // transform_input=True, which the exporter is told.
            let settings = if c.arch.contains("+ti") {
                vec![("transform_input".to_string(), "true".to_string())]
            } else {
                Vec::new()
            };
            let options = ExportOptions {
                opset,
                input_size: Some((c.h, c.w)),
                settings,
                ..ExportOptions::default()
            };
            let r = export_checked(&dir.join(format!("{}.pt", c.name)), &out, &options);
            let arch = c.arch.split('+').next().unwrap_or_default();
            assert_eq!(r.family, family, "{c:?}");
            assert_eq!(r.variant, arch, "{c:?}");
            assert_eq!(r.classes, c.classes, "{c:?}");
            assert_eq!(r.opset, opset);
            assert_eq!(r.output_shape, ["batch".to_string(), c.classes.to_string()]);
            pairs.push(format!(
                "{}:{}:{}:{}",
                out.display(),
                c.name,
                c.arch,
                c.classes
            ));
        }
    }
    let mut args = vec!["verify", dir.to_str().expect("utf-8 temp dir")];
    args.extend(pairs.iter().map(String::as_str));
    let results = peer(&python(), &args);
    assert_eq!(results.len(), pairs.len(), "{results:#?}");
    let failed: Vec<&serde_json::Value> = results
        .iter()
        .filter(|r| !matches_torch(r, ours_only, torch_only))
        .collect();
    for r in &results {
        println!("{}", table_row(r));
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Op types only our graph has: BatchNormalization, which torch's exporter
/// folds into the Conv before it (into new, unnamed weights) while ours keeps
/// the state_dict's tensors; Constant, which torch folds into initializers.
const OURS_ONLY: &[&str] = &["BatchNormalization", "Constant"];
/// Op types only torch's graph has: Identity (what its exporter leaves of an
/// eval-mode Dropout), Constant, and the explicit Pad its opset-9 pooling
/// writes where ours puts the padding in the pool's `pads`.
const TORCH_ONLY: &[&str] = &["Identity", "Constant", "Pad"];

/// Our model passes the checker, has torch's op types (every op of ours is
/// in torch's graph but for [`OURS_ONLY`] and `ours_only`, every op of
/// torch's is in ours but for [`TORCH_ONLY`] and `torch_only`), and equals
/// torch's output: within rtol 1e-4, atol 1e-5, or -- for deep nets where
/// float32 sums in a different order drift further -- no farther from torch
/// than torch's own export of the same model is (x2).
fn matches_torch(r: &serde_json::Value, ours_only: &[&str], torch_only: &[&str]) -> bool {
    let ops = |k: &str| -> std::collections::BTreeSet<String> {
        r[k].as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let (ours, theirs) = (ops("ops"), ops("torch_ops"));
    let ours_fit = ours.iter().all(|o| {
        theirs.contains(o) || OURS_ONLY.contains(&o.as_str()) || ours_only.contains(&o.as_str())
    });
    let theirs_fit = theirs.iter().all(|o| {
        ours.contains(o) || TORCH_ONLY.contains(&o.as_str()) || torch_only.contains(&o.as_str())
    });
    if !r["torch_export"].is_null() {
        // torch's exporter cannot write this model at this opset (ViT at 9):
        // nothing to compare the ops with; the output must be within the
        // tolerance.
        return r["checker"] == "ok" && r["allclose"] == true;
    }
    let close = r["allclose"] == true
        || matches!(
            (r["max_abs_diff"].as_f64(), r["torch_max_abs_diff"].as_f64()),
            (Some(ours), Some(theirs)) if ours <= 2.0 * theirs
        );
    r["checker"] == "ok" && close && ours_fit && theirs_fit
}

/// `| case | opset | our nodes | torch nodes | max diff | torch's max diff |`.
fn table_row(r: &serde_json::Value) -> String {
    format!(
        "| {} | {} | {} | {} | {:.2e} | {:.2e} |",
        r["case"].as_str().unwrap_or("?"),
        r["opset"],
        r["nodes"],
        r["torch_nodes"],
        r["max_abs_diff"].as_f64().unwrap_or(f64::NAN),
        r["torch_max_abs_diff"].as_f64().unwrap_or(f64::NAN),
    )
}

#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn vgg_family_matches_torch() {
    let _disk = heavy();
    // ~0.5 GB per model and file: one model per temporary folder.
    for c in [
        case("vgg11", "vgg11", 10, 224, 224),
        case("vgg13_bn", "vgg13_bn", 2, 224, 224),
        case("vgg16_bn", "vgg16_bn", 1000, 224, 224),
        case("vgg19", "vgg19", 2, 224, 224),
    ] {
        roundtrip("vgg", &[c]);
    }
}

#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn alexnet_and_squeezenet_match_torch() {
    roundtrip("alexnet", &[case("alexnet", "alexnet", 10, 224, 224)]);
    roundtrip(
        "squeezenet",
        &[
            case("sq1_0", "squeezenet1_0", 10, 64, 64),
            case("sq1_1", "squeezenet1_1", 1000, 64, 64),
        ],
    );
}

#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn densenet_family_matches_torch() {
    roundtrip(
        "densenet",
        &[
            case("d121", "densenet121", 10, 64, 64),
            case("d161", "densenet161", 2, 32, 32),
            case("d169", "densenet169", 1000, 32, 32),
            case("d201", "densenet201", 2, 32, 32),
        ],
    );
}

#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn mobilenets_match_torch() {
    roundtrip(
        "mobilenet_v2",
        &[
            case("mv2_10", "mobilenet_v2", 10, 64, 64),
            case("mv2_2", "mobilenet_v2", 2, 32, 32),
        ],
    );
    roundtrip(
        "mobilenet_v3",
        &[
            case("mv3l", "mobilenet_v3_large", 10, 64, 64),
            case("mv3s", "mobilenet_v3_small", 2, 64, 64),
            case("mv3s_1000", "mobilenet_v3_small", 1000, 32, 32),
        ],
    );
}

#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn efficientnets_match_torch() {
    roundtrip(
        "efficientnet",
        &[
            case("b0", "efficientnet_b0", 10, 64, 64),
            case("b1", "efficientnet_b1", 2, 32, 32),
            case("b3", "efficientnet_b3", 1000, 32, 32),
            case("b5", "efficientnet_b5", 2, 32, 32),
            case("v2_s", "efficientnet_v2_s", 10, 64, 64),
        ],
    );
}

#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn efficientnet_big_variants_match_torch() {
    let _disk = heavy();
    roundtrip(
        "efficientnet",
        &[
            case("b2", "efficientnet_b2", 2, 32, 32),
            case("b4", "efficientnet_b4", 2, 32, 32),
            case("b6", "efficientnet_b6", 2, 32, 32),
            case("b7", "efficientnet_b7", 2, 32, 32),
            case("v2_m", "efficientnet_v2_m", 2, 32, 32),
            case("v2_l", "efficientnet_v2_l", 2, 32, 32),
        ],
    );
}

/// torch's exporter writes channel_shuffle's views and `chunk` with shape
/// arithmetic on the traced sizes (Shape, Gather, Div, Slice, ...); ours
/// writes constant shapes and a `Split`.
#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn shufflenet_matches_torch() {
    let cases = [
        case("x0_5", "shufflenet_v2_x0_5", 10, 64, 64),
        case("x1_0", "shufflenet_v2_x1_0", 2, 64, 64),
        case("x1_5", "shufflenet_v2_x1_5", 1000, 32, 32),
        case("x2_0", "shufflenet_v2_x2_0", 2, 32, 32),
    ];
    let shape_ops = [
        "Shape",
        "Gather",
        "Unsqueeze",
        "Cast",
        "Div",
        "Mul",
        "Add",
        "Slice",
    ];
    roundtrip_ops("shufflenet_v2", &cases, &["Split"], &shape_ops);
}

#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn mnasnet_matches_torch() {
    roundtrip(
        "mnasnet",
        &[
            case("m0_5", "mnasnet0_5", 10, 64, 64),
            case("m0_75", "mnasnet0_75", 2, 32, 32),
            case("m1_0", "mnasnet1_0", 1000, 32, 32),
            case("m1_3", "mnasnet1_3", 2, 32, 32),
        ],
    );
}

#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn googlenet_and_inception_v3_match_torch() {
    // transform_input: torch slices the channels out (Gather, Unsqueeze)
    // and concatenates them; ours scales all three with one Mul and Add.
    let slicing = ["Gather", "Unsqueeze"];
    roundtrip_ops(
        "googlenet",
        &[
            case("g", "googlenet", 10, 64, 64),
            case("g_aux", "googlenet+aux", 2, 64, 64),
            case("g_ti", "googlenet+ti", 1000, 64, 64),
        ],
        &[],
        &slicing,
    );
    roundtrip_ops(
        "inception_v3",
        &[
            case("i3", "inception_v3", 10, 96, 96),
            case("i3_aux_ti", "inception_v3+aux+ti", 2, 96, 96),
        ],
        &[],
        &slicing,
    );
}

#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn regnets_match_torch() {
    roundtrip(
        "regnet",
        &[
            case("x400", "regnet_x_400mf", 10, 64, 64),
            case("y400", "regnet_y_400mf", 2, 64, 64),
            case("x1_6", "regnet_x_1_6gf", 1000, 32, 32),
            case("y1_6", "regnet_y_1_6gf", 2, 32, 32),
            case("x8", "regnet_x_8gf", 2, 32, 32),
            case("y8", "regnet_y_8gf", 2, 32, 32),
        ],
    );
}

#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn convnext_matches_torch() {
    let _disk = heavy();
    for c in [
        case("tiny", "convnext_tiny", 10, 64, 64),
        case("small", "convnext_small", 2, 32, 32),
        case("base", "convnext_base", 1000, 32, 32),
        case("large", "convnext_large", 2, 32, 32),
    ] {
        roundtrip("convnext", &[c]);
    }
}

/// torch writes `scaled_dot_product_attention` and the class token's expand
/// with shape arithmetic (Shape, Slice, Where, ...); ours with constant
/// shapes. torch cannot export ViT at opset 9 (`aten::unflatten`); ours
/// there is compared with torch's output only.
#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn vit_matches_torch() {
    let sdpa = [
        "Sqrt",
        "Squeeze",
        "Slice",
        "Mod",
        "Where",
        "Unsqueeze",
        "Cast",
        "Equal",
        "ConstantOfShape",
        "Shape",
        "Gather",
        "Expand",
        "Concat",
        "Reshape",
    ];
    for c in [
        case("b16", "vit_b_16", 10, 64, 64),
        case("b32", "vit_b_32", 2, 64, 64),
        case("l16", "vit_l_16", 1000, 32, 32),
        case("l32", "vit_l_32", 2, 64, 64),
    ] {
        roundtrip_ops("vit", &[c], &[], &sdpa);
    }
}

/// vit_h_14: 632 M parameters, 2.5 GB of weights, above the 2 GiB a
/// protobuf holds: the weights go to `OUT.onnx.data`. Opset 17 only, and
/// compared with torch's output without torch's own export (about 5 GB of
/// temporary files: the checkpoint and ours).
#[test]
#[ignore = "needs NETPORT_PYTHON and ~5 GB of disk"]
fn vit_h_14_goes_to_external_data() {
    let _disk = heavy();
    let dir = tempfile::tempdir().expect("temp dir");
    let c = case("h14", "vit_h_14", 2, 28, 28);
    peer(
        &python(),
        &["make", dir.path().to_str().unwrap(), &spec(&c)],
    );
    let out = dir.path().join("h14.onnx");
    let options = ExportOptions {
        input_size: Some((28, 28)),
        ..ExportOptions::default()
    };
    let r = export_checked(&dir.path().join("h14.pt"), &out, &options);
    assert_eq!(r.variant, "vit_h_14");
    assert_eq!(r.external_data.as_deref(), Some("h14.onnx.data"));
    assert!(std::fs::metadata(&out).unwrap().len() < 16 << 20);
    let item = format!("{}:h14:vit_h_14:2", out.display());
    let results = peer(
        &python(),
        &[
            "verify",
            "--no-torch-export",
            dir.path().to_str().unwrap(),
            &item,
        ],
    );
    assert!(results[0]["torch_nodes"].is_null(), "{results:?}");
    assert_eq!(results[0]["checker"], "ok", "{results:?}");
    assert_eq!(results[0]["allclose"], true, "{results:?}");
}

/// One real resnet18 state_dict in the other forms `netport export` reads:
/// safetensors, names under `model.module.` (a training checkpoint of a
/// DataParallel model), and broken: truncated (layer4 left out), a head that
/// fits nothing; the last two are refused naming resnet18 and the keys.
#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn resnet18_in_other_forms_and_broken() {
    use netport_torch::{Checkpoint, Edits, Layout, rewrite_checkpoint};
    use netport_torch_onnx::{ExportError, export};
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let c = case("r18", "resnet18", 2, 64, 64);
    let bad = case("bad", "resnet18+badhead", 2, 64, 64);
    peer(
        &python(),
        &["make", d.to_str().unwrap(), &spec(&c), &spec(&bad)],
    );
    let ckpt = Checkpoint::open(d.join("r18.pt")).expect("open");
    netport_torch_safetensors::checkpoint_to_safetensors(
        &ckpt,
        &d.join("r18.safetensors"),
        &Edits::default(),
    )
    .expect("to safetensors");
    let nested = Edits {
        renames: vec![(Edits::regex("^").unwrap(), "model.module.".into())],
        ..Edits::default()
    };
    rewrite_checkpoint(&ckpt, None, &d.join("nested.pt"), &nested, Layout::Zip).expect("nested");
    let truncated = Edits {
        exclude: Some(Edits::regex("^layer4\\.").unwrap()),
        ..Edits::default()
    };
    rewrite_checkpoint(
        &ckpt,
        None,
        &d.join("truncated.pt"),
        &truncated,
        Layout::Zip,
    )
    .expect("cut");
    let options = ExportOptions {
        input_size: Some((64, 64)),
        ..ExportOptions::default()
    };
    let mut items = Vec::new();
    for (file, key) in [("r18.safetensors", None), ("nested.pt", Some("model"))] {
        let out = d.join(format!("{file}.onnx"));
        let r = export_checked(&d.join(file), &out, &options);
        assert_eq!((r.variant.as_str(), r.classes), ("resnet18", 2), "{file}");
        assert_eq!(r.key.as_deref(), key, "{file}");
        items.push(format!("{}:r18:resnet18:2", out.display()));
    }
    let mut args = vec!["verify", d.to_str().unwrap()];
    args.extend(items.iter().map(String::as_str));
    let results = peer(&python(), &args);
    assert!(
        results
            .iter()
            .all(|r| r["allclose"] == true && r["checker"] == "ok"),
        "{results:#?}"
    );

    let e = export(&d.join("truncated.pt"), &d.join("t.onnx"), &options).expect_err("truncated");
    let ExportError::NotRecognised { closest } = &e else {
        panic!("{e}")
    };
    assert_eq!(closest.variant, "resnet18", "{e}");
    assert!(
        closest.missing.iter().any(|k| k == "layer4.0.conv1.weight"),
        "{e}"
    );
    assert!(closest.unexpected.is_empty(), "{e}");
    let e = export(&d.join("bad.pt"), &d.join("b.onnx"), &options).expect_err("bad head");
    let ExportError::NotRecognised { closest } = &e else {
        panic!("{e}")
    };
    assert_eq!(closest.variant, "resnet18", "{e}");
    assert_eq!(closest.size_mismatch.len(), 1, "{e}");
    assert!(e.to_string().contains("size mismatch for fc.weight: copying a param with shape [2, 500] from checkpoint, the shape in current model is [2, 512]"), "{e}");
    assert!(!d.join("t.onnx").exists() && !d.join("b.onnx").exists());
}

/// The newer opsets: ReduceMean's axes input (18), Gelu (20), 21 and 23.
/// Where torch's exporter cannot write the opset, ours is compared with
/// torch's output only.
#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn newer_opsets_match_torch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        case("mv3s", "mobilenet_v3_small", 10, 32, 32),
        case("cnt", "convnext_tiny", 10, 32, 32),
        case("sh", "shufflenet_v2_x0_5", 10, 32, 32),
    ];
    let specs: Vec<String> = cases.iter().map(spec).collect();
    let mut args = vec!["make", dir.path().to_str().unwrap()];
    args.extend(specs.iter().map(String::as_str));
    peer(&python(), &args);
    let shape_ops = [
        "Shape",
        "Gather",
        "Unsqueeze",
        "Cast",
        "Div",
        "Mul",
        "Add",
        "Slice",
    ];
    for (c, family) in cases
        .iter()
        .zip(["mobilenet_v3", "convnext", "shufflenet_v2"])
    {
        export_and_verify_ops(
            dir.path(),
            family,
            &[*c],
            &[18, 20, 21, 23],
            &["Split"],
            &shape_ops,
        );
    }
}

/// Swin v1 and v2: at 72x72 the stage maps are 18, 9, 5 and 3 (padded to
/// the window, shifted in the first two stages, an odd PatchMerging), at
/// 224x224 56, 28, 14 and 7 (torchvision's size: no padding). Ours writes
/// PatchMerging's four strided slices and concat as one reshape and
/// transpose, sizes as constants (see [`SWIN_TORCH_ONLY`]).
#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn swin_matches_torch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        case("swin_t72", "swin_t", 10, 72, 72),
        case("swin_t224", "swin_t", 2, 224, 224),
        case("swin_v2_t72", "swin_v2_t", 2, 72, 72),
        case("swin_v2_t224", "swin_v2_t", 1000, 224, 224),
    ];
    let specs: Vec<String> = cases.iter().map(spec).collect();
    let mut args = vec!["make", dir.path().to_str().unwrap()];
    args.extend(specs.iter().map(String::as_str));
    peer(&python(), &args);
    export_and_verify_ops(dir.path(), "swin", &cases, &[17, 18], &[], SWIN_TORCH_ONLY);
}

/// Op types only torch's Swin graph has: the shape arithmetic of the traced
/// sizes, the shifted-window mask built in the graph (`Range`, `Equal`,
/// `Where`, `ScatterND` for `attn_mask[h, w] = count`), v2's in-place zeroing
/// of the key bias (`ScatterND`), `Pow` for `head_dim ** -0.5`; ours has the
/// mask and the bias's zeros as constants.
const SWIN_TORCH_ONLY: &[&str] = &[
    "Shape",
    "Unsqueeze",
    "Cast",
    "Mod",
    "Sub",
    "Pow",
    "Expand",
    "ConstantOfShape",
    "Range",
    "Equal",
    "Not",
    "Where",
    "ScatterND",
];

/// maxvit_t at 224x224 (its grid attention is built for the input size;
/// every block input a multiple of 7 needs 224): torch writes the two
/// einsums as `Einsum` and `chunk` as `Slice`s on traced sizes, ours
/// `MatMul` and one `Split`.
#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn maxvit_matches_torch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [case("maxvit_t", "maxvit_t", 10, 224, 224)];
    let specs: Vec<String> = cases.iter().map(spec).collect();
    let mut args = vec!["make", dir.path().to_str().unwrap()];
    args.extend(specs.iter().map(String::as_str));
    peer(&python(), &args);
    export_and_verify_ops(
        dir.path(),
        "maxvit",
        &cases,
        &[17, 18],
        &["Split"],
        MAXVIT_TORCH_ONLY,
    );
}

/// Op types only torch's MaxViT graph has (see [`maxvit_matches_torch`]).
const MAXVIT_TORCH_ONLY: &[&str] = &["Einsum", "Shape", "Cast", "Unsqueeze", "Slice", "Concat"];

/// swin_s, swin_b, swin_v2_s, swin_v2_b: torch builds each (random
/// weights) and saves its state_dict; ours recognises the variant and the
/// classes, and equals torch in onnxruntime at opset 17, on a 32x32 input
/// (patch 4, so one 7x7-window stage of 8x8 then 4x4, 2x2, 1x1 maps: every
/// block and merge of the 18-block models at a small cost).
#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn swin_big_variants_match_torch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        case("swin_s", "swin_s", 2, 32, 32),
        case("swin_b", "swin_b", 1000, 32, 32),
        case("swin_v2_s", "swin_v2_s", 10, 32, 32),
        case("swin_v2_b", "swin_v2_b", 2, 32, 32),
    ];
    let specs: Vec<String> = cases.iter().map(spec).collect();
    let mut args = vec!["make", dir.path().to_str().unwrap()];
    args.extend(specs.iter().map(String::as_str));
    peer(&python(), &args);
    // At 32x32 v2's first map (8x8) equals its window (8): no stage is
    // shifted, so ours has no roll (Slice + Concat) while torch still
    // concatenates traced shapes.
    let torch_only: Vec<&str> = SWIN_TORCH_ONLY.iter().copied().chain(["Concat"]).collect();
    export_and_verify_ops(dir.path(), "swin", &cases, &[17], &[], &torch_only);
}

/// Swin v1 and v2 on a rectangular 300x200 input (maps 75x50, 38x25,
/// 19x13, 10x7: a shift in one dim only in the last stage, odd merges), and
/// Swin and MaxViT at opset 9 (Slice and Pad attributes, ReduceL2 and
/// LayerNorm decomposed).
#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision, onnxruntime)"]
fn swin_rectangular_and_opset_9_match_torch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let swin = [
        case("swin_t_r", "swin_t", 10, 300, 200),
        case("swin_v2_t_r", "swin_v2_t", 2, 300, 200),
    ];
    let maxvit = [case("maxvit_t9", "maxvit_t", 2, 224, 224)];
    let specs: Vec<String> = swin.iter().chain(&maxvit).map(spec).collect();
    let mut args = vec!["make", dir.path().to_str().unwrap()];
    args.extend(specs.iter().map(String::as_str));
    peer(&python(), &args);
    export_and_verify_ops(dir.path(), "swin", &swin, &[9], &[], SWIN_TORCH_ONLY);
    export_and_verify_ops(
        dir.path(),
        "maxvit",
        &maxvit,
        &[9],
        &["Split"],
        MAXVIT_TORCH_ONLY,
    );
}

//! Interop with the real Caffe2 (torch 1.4.0's `caffe2.python`, Python 3.7):
//! our nets against the ones `Caffe2Backend.onnx_graph_to_caffe2_net` makes,
//! and our nets run in the Caffe2 workspace against torch's outputs. Needs
//! NETPORT_CAFFE2_PYTHON and NETPORT_CAFFE2_REFS (`cargo xtask caffe2-venv`,
//! `cargo xtask caffe2-refs`); today's exports also NETPORT_PEERS.

use crate::common::{need_env, root};
use netport_onnx_caffe2::{ToCaffe2Options, ToOnnxOptions, caffe2_to_onnx, onnx_to_caffe2};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The torchvision families the references must hold (the full run adds vgg).
const FAMILIES: &[&str] = &[
    "resnet18_2class",
    "resnet50",
    "alexnet",
    "squeezenet1_1",
    "mobilenet_v2",
    "densenet121",
    "shufflenet_v2",
    "mnasnet1_0",
    "googlenet",
];

pub(crate) fn script(name: &str) -> PathBuf {
    root().join("testdata/peers/caffe2").join(name)
}

/// Runs a script in the Caffe2 venv; returns (exit code, stdout as JSON).
pub(crate) fn run_python(args: &[&std::ffi::OsStr]) -> (i32, serde_json::Value) {
    run_in(&need_env("NETPORT_CAFFE2_PYTHON"), args)
}

/// Runs a script with `python`; returns (exit code, stdout as JSON).
pub(crate) fn run_in(python: &Path, args: &[&std::ffi::OsStr]) -> (i32, serde_json::Value) {
    let out = Command::new(python)
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("CUDA_VISIBLE_DEVICES", "")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{args:?}: no JSON on stdout ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

fn manifest(refs: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(refs.join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Converts `model` into `out` with our converter, as `netport convert`
/// does (the init net streamed), checking that the in-memory pair encodes
/// to the same bytes.
pub(crate) fn convert(model: &Path, out: &Path) {
    let m = netport_onnx::load_model(model).unwrap();
    let options = ToCaffe2Options {
        resolver: Some(netport_onnx::ExternalDataResolver::for_model(model)),
        ..Default::default()
    };
    netport_onnx_caffe2::write_caffe2_dir(&m, &options, out, false)
        .unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let pair = onnx_to_caffe2(&m, &options).unwrap();
    let init = std::fs::read(out.join("init_net.pb")).unwrap();
    assert!(
        init == netport_caffe2::encode_netdef(&pair.init_net).unwrap(),
        "{}: the streamed init net differs from the encoded one",
        model.display()
    );
}

/// Converts `dir/model.onnx` into `ours` and compares the pair with
/// Caffe2Backend's in `dir/ref` op for op (compare_nets.py); a difference
/// is added to `failures`. Returns the comparison.
pub(crate) fn convert_and_compare(
    dir: &Path,
    ours: &Path,
    name: &str,
    failures: &mut Vec<String>,
) -> serde_json::Value {
    convert(&dir.join("model.onnx"), ours);
    let (code, cmp) = run_python(&[
        script("compare_nets.py").as_os_str(),
        ours.as_os_str(),
        dir.join("ref").as_os_str(),
    ]);
    if code != 0 || cmp["equal"] != true {
        failures.push(format!("{name}: nets differ: {cmp}"));
    }
    cmp
}

/// Runs our pair in the Caffe2 workspace, feeding `input`; compares the
/// first output with `expected` (rtol 1e-4, atol 1e-5).
fn run_and_compare(
    dir: &Path,
    input_name: &str,
    input: &Path,
    expected: &Path,
) -> serde_json::Value {
    let feed = format!("{input_name}={}", input.display());
    let (code, report) = run_python(&[
        script("run_caffe2.py").as_os_str(),
        dir.join("init_net.pb").as_os_str(),
        dir.join("predict_net.pb").as_os_str(),
        "--feed".as_ref(),
        feed.as_ref(),
        "--expect".as_ref(),
        expected.as_os_str(),
        "--rtol".as_ref(),
        "1e-4".as_ref(),
        "--atol".as_ref(),
        "1e-5".as_ref(),
    ]);
    assert_eq!(code, 0, "{report}");
    report
}

#[test]
#[ignore = "interop: needs NETPORT_CAFFE2_PYTHON and NETPORT_CAFFE2_REFS"]
fn opset9_exports_equal_caffe2_backend_op_for_op_and_run_equal_to_torch() {
    let refs = need_env("NETPORT_CAFFE2_REFS");
    let manifest = manifest(&refs);
    let models = manifest["models"].as_object().expect("models");
    for family in FAMILIES {
        assert!(models.contains_key(*family), "the references lack {family}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, info) in models {
        if info["kind"] != "onnx" {
            continue;
        }
        let dir = refs.join(name);
        let ours = tmp.path().join(name);
        let cmp = convert_and_compare(&dir, &ours, name, &mut failures);
        // The predict net is byte for byte Caffe2Backend's where its order
        // does not come from a hash (only the init net's external_output,
        // and interface inputs of Constant nodes, do).
        let input = info["input"].as_str().unwrap();
        let run = run_and_compare(
            &ours,
            input,
            &dir.join("input.npy"),
            &dir.join("torch_output.npy"),
        );
        if run["allclose"] != true {
            failures.push(format!(
                "{name}: Caffe2 run of our nets differs from torch: {run}"
            ));
        }
        eprintln!(
            "{name}: equal={} byte_identical={} vs torch max_abs_diff={}",
            cmp["equal"], cmp["byte_identical"], run["max_abs_diff"]
        );
        checked += 1;
    }
    assert!(checked >= FAMILIES.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "interop: needs NETPORT_CAFFE2_PYTHON and NETPORT_PEERS"]
fn todays_exports_run_in_caffe2_equal_to_the_recorded_output() {
    let peers = need_env("NETPORT_PEERS");
    let resnet = peers.join("resnet18");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(resnet.join("meta.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for exporter in ["torchscript", "dynamo"] {
        let export = &meta["exports"][exporter];
        let model = resnet.join(export["file"].as_str().unwrap());
        let out = tmp.path().join(exporter);
        convert(&model, &out);
        let run = run_and_compare(
            &out,
            export["input"].as_str().unwrap(),
            &resnet.join("input.npy"),
            &resnet.join("output.npy"),
        );
        assert_eq!(run["allclose"], true, "{exporter}: {run}");
        eprintln!("resnet18 {exporter}: max_abs_diff {}", run["max_abs_diff"]);
    }
}

/// Converts the pair in `dir` to ONNX at `opset` and runs it in onnxruntime
/// (the peer venv), after onnx.checker's full check, against `expected`.
fn pair_to_onnx_and_run(
    dir: &Path,
    input: &str,
    shape: &[i64],
    opset: i64,
    feed: &Path,
    expected: &Path,
    out: &Path,
) -> serde_json::Value {
    let pair = netport_caffe2::Caffe2Model::load_dir(dir).unwrap();
    let options = ToOnnxOptions {
        opset,
        input_shapes: vec![(input.to_string(), shape.to_vec())],
        ..Default::default()
    };
    let model =
        caffe2_to_onnx(&pair, &options).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let errors: Vec<String> = netport_onnx::check::check_model(&model, &Default::default())
        .into_iter()
        .filter(|d| d.is_error())
        .map(|d| d.message)
        .collect();
    assert!(errors.is_empty(), "{}: {errors:?}", dir.display());
    netport_onnx::save_model(&model, out, &Default::default(), None).unwrap();
    let feed = format!("{input}={}", feed.display());
    let (code, report) = run_in(
        &need_env("NETPORT_PYTHON"),
        &[
            script("run_onnxruntime.py").as_os_str(),
            out.as_os_str(),
            "--feed".as_ref(),
            feed.as_ref(),
            "--expect".as_ref(),
            expected.as_os_str(),
        ],
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["checker"], "ok", "{}: {report}", dir.display());
    report
}

#[test]
#[ignore = "interop: needs NETPORT_CAFFE2_REFS and NETPORT_PYTHON"]
fn native_caffe2_nets_convert_to_onnx_and_run_in_onnxruntime_as_in_caffe2() {
    let refs = need_env("NETPORT_CAFFE2_REFS");
    let manifest = manifest(&refs);
    let tmp = tempfile::tempdir().unwrap();
    for name in ["native_resnet50", "native_shufflenet"] {
        let info = &manifest["models"][name];
        assert_eq!(info["kind"], "native", "the references lack {name}");
        let dir = refs.join(name);
        let shape: Vec<i64> = info["input_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_i64().unwrap())
            .collect();
        for opset in [9, 13, 18] {
            let report = pair_to_onnx_and_run(
                &dir,
                "data",
                &shape,
                opset,
                &dir.join("input.npy"),
                &dir.join("caffe2_output.npy"),
                &tmp.path().join(format!("{name}-{opset}.onnx")),
            );
            assert_eq!(report["allclose"], true, "{name} opset {opset}: {report}");
            eprintln!(
                "{name} opset {opset}: max_abs_diff {}",
                report["max_abs_diff"]
            );
        }
    }
}

#[test]
#[ignore = "interop: needs NETPORT_CAFFE2_REFS and NETPORT_PYTHON"]
fn caffe2backend_nets_convert_back_to_onnx_equal_to_torch() {
    // The nets the real Caffe2Backend wrote (not ours) back to ONNX.
    let refs = need_env("NETPORT_CAFFE2_REFS");
    let manifest = manifest(&refs);
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (name, info) in manifest["models"].as_object().unwrap() {
        if info["kind"] != "onnx" {
            continue;
        }
        let dir = refs.join(name);
        let input = info["input"].as_str().unwrap();
        let shape: Vec<i64> = info["input_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_i64().unwrap())
            .collect();
        let report = pair_to_onnx_and_run(
            &dir.join("ref"),
            input,
            &shape,
            9,
            &dir.join("input.npy"),
            &dir.join("torch_output.npy"),
            &tmp.path().join(format!("{name}.onnx")),
        );
        assert_eq!(report["allclose"], true, "{name}: {report}");
        eprintln!(
            "{name}: back to ONNX, max_abs_diff {}",
            report["max_abs_diff"]
        );
        checked += 1;
    }
    assert!(checked >= FAMILIES.len());
}

#[test]
#[ignore = "interop: needs NETPORT_CAFFE2_PYTHON and NETPORT_CAFFE2_REFS"]
fn todays_exports_of_every_family_run_in_caffe2_equal_to_torch() {
    // torch 2.x exports (TorchScript exporter at opset 17, dynamo at 18) of
    // the same families, made by make_today_exports.py into refs/today.
    let today = need_env("NETPORT_CAFFE2_REFS").join("today");
    let manifest = manifest(&today);
    let models = manifest["models"].as_object().expect("models");
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut runs = 0;
    for family in FAMILIES {
        let entry = models
            .get(*family)
            .unwrap_or_else(|| panic!("today's exports lack {family}"));
        let dir = today.join(family);
        for exporter in ["torchscript", "dynamo"] {
            let Some(export) = entry.get(exporter) else {
                eprintln!(
                    "{family} {exporter}: not exported: {}",
                    entry[format!("{exporter}_error")]
                );
                continue;
            };
            let model = dir.join(export["file"].as_str().unwrap());
            let out = tmp.path().join(format!("{family}-{exporter}"));
            let m = netport_onnx::load_model(&model).unwrap();
            let options = ToCaffe2Options {
                resolver: Some(netport_onnx::ExternalDataResolver::for_model(&model)),
                ..Default::default()
            };
            match onnx_to_caffe2(&m, &options) {
                Ok(pair) => pair.save_dir(&out).unwrap(),
                Err(e) => {
                    failures.push(format!("{family} {exporter}: {e}"));
                    continue;
                }
            }
            let run = run_and_compare(
                &out,
                export["input"].as_str().unwrap(),
                &dir.join("input.npy"),
                &dir.join("torch_output.npy"),
            );
            eprintln!("{family} {exporter}: max_abs_diff {}", run["max_abs_diff"]);
            if run["allclose"] != true {
                failures.push(format!("{family} {exporter}: {run}"));
            }
            runs += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(runs >= FAMILIES.len(), "only {runs} exports ran");
}

//! `netport run` and `netport verify` on the committed tiny CNN (made by
//! torch 2.15's exporter) and on deliberately broken copies of it; with the
//! peers, on resnet18 and on a Caffe2Backend conversion made by the real
//! Caffe2.

use crate::common::{netport, testdata};
use netport_onnx::proto::ModelProto;
use std::path::{Path, PathBuf};

fn tiny() -> PathBuf {
    testdata("onnx/tiny_cnn.onnx")
}

fn random_args() -> Vec<String> {
    [
        "--random",
        "--seed",
        "7",
        "--input-shape",
        "input=2,3,32,32",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Saves an edited copy of the tiny CNN.
fn edited(dir: &Path, name: &str, edit: impl FnOnce(&mut ModelProto)) -> PathBuf {
    let mut m = netport_onnx::load_model(&tiny()).unwrap();
    edit(&mut m);
    let path = dir.join(name);
    netport_onnx::save_model(&m, &path, &Default::default(), None).unwrap();
    path
}

#[test]
fn run_writes_each_output_as_npy_and_summarizes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "run".to_string(),
        tiny().display().to_string(),
        "--json".into(),
        "-o".into(),
    ];
    args.push(dir.path().display().to_string());
    args.extend(random_args());
    let out = netport(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json(&out);
    assert_eq!(j["format"], "onnx");
    let o = &j["outputs"][0];
    assert_eq!(o["name"], "output");
    assert_eq!(o["dtype"], "float32");
    assert_eq!(o["shape"], serde_json::json!([2, 2]));
    let bytes = std::fs::read(dir.path().join("output.npy")).unwrap();
    let t = netport_exec::Tensor::from_npy(&bytes).unwrap();
    assert_eq!(t.shape, vec![2, 2]);
    let first: Vec<f64> = o["first"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(first, t.data.to_f64_vec());
    // The same seed gives the same numbers; another seed other ones.
    let again = json(&netport(&args));
    assert_eq!(again["outputs"][0]["first"], o["first"]);
    let mut other = args.clone();
    let seed = other.iter().position(|a| a == "7").unwrap();
    other[seed] = "8".into();
    assert_ne!(json(&netport(&other))["outputs"][0]["first"], o["first"]);
}

#[test]
fn run_needs_a_shape_for_a_symbolic_dim() {
    let out = netport(["run", tiny().to_str().unwrap(), "--random"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("symbolic dim \"batch\"") && err.contains("--input-shape"),
        "{err}"
    );
}

#[test]
fn an_unsupported_op_is_refused_at_load_naming_node_op_and_opset() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited(dir.path(), "foo.onnx", |m| {
        let g = m.graph.as_mut().unwrap();
        let n = g.node.iter_mut().find(|n| n.op_type() == "Relu").unwrap();
        n.op_type = Some("Frobnicate".into());
    });
    let mut args = vec!["run".to_string(), path.display().to_string()];
    args.extend(random_args());
    let out = netport(&args);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Frobnicate") && err.contains("opset 20") && err.contains("not supported"),
        "{err}"
    );
}

fn verify(a: &Path, b: &Path) -> std::process::Output {
    let mut args = vec![
        "verify".to_string(),
        a.display().to_string(),
        b.display().to_string(),
        "--json".into(),
    ];
    args.extend(random_args());
    netport(&args)
}

#[test]
fn verify_a_model_against_itself_agrees() {
    let out = verify(&tiny(), &tiny());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json(&out);
    assert_eq!(j["agree"], true);
    assert_eq!(j["pairs"][0]["max_abs_diff"], 0.0);
}

#[test]
fn verify_finds_a_swapped_weight() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited(dir.path(), "swapped.onnx", |m| {
        let g = m.graph.as_mut().unwrap();
        let w = g
            .initializer
            .iter_mut()
            .find(|t| t.name() == "conv.weight")
            .unwrap();
        let mut raw = w.raw_data.clone().unwrap().to_vec();
        // Swap the first two output channels' filters (27 floats each).
        let (a, b) = raw.split_at_mut(27 * 4);
        a.swap_with_slice(&mut b[..27 * 4]);
        w.raw_data = Some(raw.into());
    });
    let out = verify(&tiny(), &path);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json(&out);
    assert_eq!(j["agree"], false);
    assert!(j["pairs"][0]["max_abs_diff"].as_f64().unwrap() > 1e-3);
}

#[test]
fn verify_finds_a_wrong_pad() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited(dir.path(), "pad.onnx", |m| {
        let g = m.graph.as_mut().unwrap();
        let n = g.node.iter_mut().find(|n| n.op_type() == "Conv").unwrap();
        let pads = n.attribute.iter_mut().find(|a| a.name() == "pads").unwrap();
        // Same output size, shifted window: pad 2 at the top and left, 0 at
        // the bottom and right.
        let total: i64 = pads.ints.iter().sum();
        assert_eq!(total, 4, "the fixture's conv pads are 1 on every side");
        pads.ints = vec![2, 2, 0, 0];
    });
    let out = verify(&tiny(), &path);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["agree"], false);
}

#[test]
fn verify_against_a_reference_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "run".to_string(),
        tiny().display().to_string(),
        "-o".into(),
        dir.path().display().to_string(),
    ];
    args.extend(random_args());
    assert!(netport(&args).status.success());
    let reference = dir.path().join("output.npy");
    let mut v = vec![
        "verify".to_string(),
        tiny().display().to_string(),
        "--reference".into(),
        format!("output={}", reference.display()),
    ];
    v.extend(random_args());
    assert_eq!(netport(&v).status.code(), Some(0));
    // Another seed: other inputs, so the recorded outputs no longer match.
    let seed = v.iter().position(|a| a == "7").unwrap();
    v[seed] = "9".into();
    assert_eq!(netport(&v).status.code(), Some(1));
}

/// The cases `netport-exec`'s tests make with the real Caffe2 (see
/// crates/exec/tests/make_caffe2_cases.py), made here when missing.
fn caffe2_case(name: &str) -> PathBuf {
    crate::exec_cases::caffe2_cases().join(name)
}

/// A torchvision family's exports that `netport-exec`'s tests make with the
/// peer venv (see crates/exec/tests/make_model_cases.py), made here when
/// missing.
fn model_case(family: &str) -> PathBuf {
    crate::exec_cases::model_case(family)
}

#[test]
#[ignore = "needs the whole-model cases of netport-exec (NETPORT_PYTHON)"]
fn verify_two_different_models_with_the_same_interface_differ() {
    // resnet50 and densenet121, both [1, 3, 64, 64] -> [1, 10] with random
    // weights, exported by torch's TorchScript exporter.
    let (a, b) = (model_case("resnet50"), model_case("densenet121"));
    let input = format!("input={}", a.join("input.npy").display());
    let run = |x: &Path, y: &Path, json: bool| {
        let mut args = vec![
            "verify".to_string(),
            x.display().to_string(),
            y.display().to_string(),
            "--input".into(),
            input.clone(),
        ];
        if json {
            args.push("--json".into());
        }
        netport(&args)
    };
    let out = run(
        &a.join("torchscript.onnx"),
        &b.join("torchscript.onnx"),
        true,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json(&out);
    assert_eq!(j["agree"], false);
    assert_eq!(j["pairs"].as_array().unwrap().len(), 1);
    let p = &j["pairs"][0];
    assert_eq!(
        (&p["name_a"], &p["name_b"]),
        (&"output".into(), &"output".into())
    );
    assert_eq!(p["equal"], false);
    assert_eq!(p["shape"], serde_json::json!([1, 10]));
    // The text report names the differing output.
    let out = run(
        &a.join("torchscript.onnx"),
        &b.join("torchscript.onnx"),
        false,
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.contains("output: DIFFERENT")) && text.contains("outputs differ"),
        "{text}"
    );
    // The same model from the two exporters agrees.
    let out = run(&a.join("torchscript.onnx"), &a.join("dynamo.onnx"), true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
#[ignore = "needs the Caffe2 cases of netport-exec (NETPORT_CAFFE2_PYTHON)"]
fn verify_an_onnx_model_and_its_caffe2backend_conversion() {
    let case = caffe2_case("resnet18_onnx");
    let onnx = case.join("model.onnx");
    let run = |b: &Path| {
        netport([
            "verify",
            onnx.to_str().unwrap(),
            b.to_str().unwrap(),
            "--random",
            "--json",
            "--rtol",
            "1e-4",
            "--atol",
            "1e-4",
        ])
    };
    let out = run(&case);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A wrong conversion: two 3x3 conv weights of the same shape swapped in
    // the init net, or a conv's pads changed in the predict net.
    let model = netport_caffe2::Caffe2Model::load_dir(&case).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut swapped = model.clone();
    let fills: Vec<usize> = swapped
        .init_net
        .op
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            o.arg
                .iter()
                .any(|a| a.name() == "shape" && a.ints == [64, 64, 3, 3])
        })
        .map(|(i, _)| i)
        .collect();
    assert!(fills.len() >= 2);
    let (i, j) = (fills[0], fills[1]);
    let oi = swapped.init_net.op[i].output.clone();
    swapped.init_net.op[i].output = swapped.init_net.op[j].output.clone();
    swapped.init_net.op[j].output = oi;
    swapped.save_dir(dir.path().join("swapped")).unwrap();
    assert_eq!(run(&dir.path().join("swapped")).status.code(), Some(1));
    let mut padded = model.clone();
    let conv = padded
        .predict_net
        .op
        .iter_mut()
        .find(|o| {
            o.r#type() == "Conv"
                && o.arg
                    .iter()
                    .any(|a| a.name() == "pads" && a.ints == [1, 1, 1, 1])
        })
        .unwrap();
    let pads = conv.arg.iter_mut().find(|a| a.name() == "pads").unwrap();
    pads.ints = vec![2, 2, 0, 0];
    padded.save_dir(dir.path().join("padded")).unwrap();
    assert_eq!(run(&dir.path().join("padded")).status.code(), Some(1));
}

#[test]
#[ignore = "needs the peer corpus (NETPORT_PEERS)"]
fn run_resnet18_writes_torchs_output() {
    let peers = crate::common::peer_dir().join("resnet18");
    let dir = tempfile::tempdir().unwrap();
    let model = peers.join("dynamo/resnet18.onnx");
    let out = netport([
        "run",
        model.to_str().unwrap(),
        "--input",
        &format!("x={}", peers.join("input.npy").display()),
        "-o",
        dir.path().to_str().unwrap(),
        "--time",
        "2",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["timing"]["runs"], 2);
    let verify = netport([
        "verify",
        model.to_str().unwrap(),
        "--input",
        peers.join("input.npy").to_str().unwrap(),
        "--reference",
        peers.join("output.npy").to_str().unwrap(),
        "--rtol",
        "1e-4",
    ]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let ours =
        netport_exec::Tensor::from_npy(&std::fs::read(dir.path().join("linear.npy")).unwrap())
            .unwrap();
    let torch =
        netport_exec::Tensor::from_npy(&std::fs::read(peers.join("output.npy")).unwrap()).unwrap();
    assert!(netport_exec::compare(&ours, &torch, 1e-4, 1e-5).equal);
}

/// The If/Loop models of `testdata/peers/caffe2/make_control_refs.py` (made
/// in the Caffe2 venv with the nets Caffe2Backend writes and runs): each
/// converts and runs as a Caffe2 pair in our executor equal to the expected
/// outputs and to the real Caffe2's run of the backend's nets; `verify`
/// passes the ONNX model against its pair where the ONNX model is valid (the
/// Loop models type the iteration number int32, as caffe2's own test does,
/// which ONNX and our ONNX executor refuse), and fails a pair whose If
/// branches are swapped.
#[test]
#[ignore = "interop: needs NETPORT_CAFFE2_PYTHON"]
fn converted_if_and_loop_pairs_run_as_caffe2_and_verify_against_onnx() {
    let python = std::env::var_os("NETPORT_CAFFE2_PYTHON")
        .expect("NETPORT_CAFFE2_PYTHON must name the Python of the Caffe2 venv");
    let tmp = tempfile::tempdir().unwrap();
    let refs = tmp.path().join("refs");
    let manifest = crate::control_refs::make_control_refs(Path::new(&python), &refs);
    let npy = |p: &Path| netport_exec::Tensor::from_npy(&std::fs::read(p).unwrap()).unwrap();
    let mut ran = 0;
    for (name, info) in manifest.as_object().unwrap() {
        let dir = refs.join(name);
        let model = dir.join("model.onnx");
        let pair = tmp.path().join("pairs").join(name);
        let out = netport([
            "convert",
            model.to_str().unwrap(),
            pair.to_str().unwrap(),
            "--to",
            "caffe2",
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let inputs: Vec<String> = info["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(k, n)| {
                format!(
                    "{}={}",
                    n.as_str().unwrap(),
                    dir.join(format!("input_{k}.npy")).display()
                )
            })
            .collect();
        let outdir = tmp.path().join("out").join(name);
        let mut args = vec![
            "run".to_string(),
            pair.display().to_string(),
            "--output-dir".into(),
            outdir.display().to_string(),
        ];
        for i in &inputs {
            args.extend(["--input".to_string(), i.clone()]);
        }
        let out = netport(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (k, o) in info["outputs"].as_array().unwrap().iter().enumerate() {
            let got = npy(&outdir.join(format!("{}.npy", o.as_str().unwrap())));
            for want in [
                dir.join(format!("expected_{k}.npy")),
                dir.join("ref").join(format!("caffe2_output_{k}.npy")),
            ] {
                let c = netport_exec::compare(&got, &npy(&want), 1e-5, 1e-6);
                assert!(c.equal, "{name} {o} vs {}: {c:?}", want.display());
            }
        }
        ran += 1;
        if name.starts_with("loop") {
            continue;
        }
        let verify = |b: &Path| {
            let mut args = vec![
                "verify".to_string(),
                model.display().to_string(),
                b.display().to_string(),
            ];
            for i in &inputs {
                args.extend(["--input".to_string(), i.clone()]);
            }
            netport(&args)
        };
        let out = verify(&pair);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        // The branches swapped: a wrong conversion, which verify must catch
        // (if_const takes the then branch, if_data_cond the else branch).
        let mut wrong = netport_caffe2::Caffe2Model::load_dir(&pair).unwrap();
        for a in &mut wrong.predict_net.op[0].arg {
            match a.name() {
                "then_net" => a.name = Some("else_net".into()),
                "else_net" => a.name = Some("then_net".into()),
                _ => {}
            }
        }
        let wrong_dir = tmp.path().join("wrong").join(name);
        wrong.save_dir(&wrong_dir).unwrap();
        assert_eq!(verify(&wrong_dir).status.code(), Some(1), "{name}");
    }
    assert_eq!(ran, manifest.as_object().unwrap().len());
}

//! Interop of the LSTM/GRU/RNN conversion with the real Caffe2: torch 1.4's
//! opset-9 exports of nn.LSTM / nn.GRU / nn.RNN (made by
//! `testdata/peers/caffe2/make_rnn_refs.py` into `<refs>/rnn`), converted by
//! us, equal Caffe2Backend's nets op for op and run in the Caffe2 workspace
//! equal to torch (every output); GRUs rewritten to linear_before_reset=0
//! (which torch cannot compute) and LSTMs, GRUs and RNNs (forward and
//! bidirectional) given a sequence_lens input equal to onnxruntime instead (the peer
//! venv, NETPORT_PYTHON). Needs NETPORT_CAFFE2_PYTHON, NETPORT_CAFFE2_REFS
//! and NETPORT_PYTHON.

use crate::common::need_env;
use crate::interop::{convert_and_compare, run_in, run_python, script};
use netport_onnx_caffe2::{ConvertError, ToCaffe2Options, onnx_to_caffe2};
use std::path::Path;

/// The variants the references must hold.
const MODELS: &[&str] = &[
    "lstm_1l",
    "lstm_2l",
    "lstm_bi_1l",
    "lstm_bi_2l",
    "gru_1l",
    "gru_2l",
    "gru_bi_1l",
    "gru_bi_2l",
    "rnn_tanh_1l",
    "rnn_relu_2l",
    "rnn_tanh_bi_1l",
    "rnn_relu_bi_2l",
    "gru_lbr0_1l",
    "gru_lbr0_bi_2l",
    "lstm_seq_1l",
    "lstm_seq_2l",
    "lstm_seq_bi_1l",
    "lstm_seq_bi_2l",
    "gru_seq_1l",
    "gru_seq_2l",
    "gru_seq_bi_2l",
    "gru_lbr0_seq_bi_2l",
    "rnn_tanh_seq_1l",
    "rnn_relu_seq_2l",
    "rnn_tanh_seq_bi_1l",
    "rnn_relu_seq_bi_2l",
];

/// `--feed NAME=FILE` for the extra inputs a reference lists (`feeds`:
/// the sequence lengths), files in `dir`.
fn extra_feeds(dir: &Path, info: &serde_json::Value) -> Vec<std::ffi::OsString> {
    let mut args = Vec::new();
    for (name, file) in info["feeds"].as_object().into_iter().flatten() {
        args.push("--feed".into());
        args.push(format!("{name}={}", dir.join(file.as_str().unwrap()).display()).into());
    }
    args
}

#[test]
#[ignore = "interop: needs NETPORT_CAFFE2_PYTHON and NETPORT_CAFFE2_REFS"]
fn rnn_exports_equal_caffe2_backend_op_for_op_and_run_equal_to_torch() {
    let refs = need_env("NETPORT_CAFFE2_REFS").join("rnn");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(refs.join("manifest.json")).unwrap())
            .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for name in MODELS {
        let info = &manifest["models"][*name];
        assert!(info.is_object(), "the references lack {name}");
        let dir = refs.join(name);
        let ours = tmp.path().join(name);
        let cmp = convert_and_compare(&dir, &ours, name, &mut failures);
        let input = info["input"].as_str().unwrap();
        let run = if info["expected"] == "onnxruntime" {
            // linear_before_reset=0 or sequence lengths (torch does not
            // compute these): every output of our nets in Caffe2 against
            // onnxruntime's run of the model.
            let saved = tmp.path().join(format!("{name}-y.npy"));
            let run = run_all_outputs(
                &ours,
                input,
                &dir.join("ref"),
                "caffe2_output",
                info,
                Some(&saved),
            );
            let feed = format!("{input}={}", dir.join("input.npy").display());
            let mut args: Vec<std::ffi::OsString> = vec![
                script("run_onnxruntime.py").into(),
                dir.join("model.onnx").into(),
                "--feed".into(),
                feed.into(),
                "--expect".into(),
                saved.clone().into(),
            ];
            args.extend(extra_feeds(&dir, info));
            // Every output: Y and the last states.
            for i in 1..info["outputs"].as_u64().unwrap() {
                args.push("--expect-next".into());
                args.push(tmp.path().join(format!("{name}-y_{i}.npy")).into());
            }
            let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
            let (code, ort) = run_in(&need_env("NETPORT_PYTHON"), &args);
            eprintln!(
                "{name}: onnxruntime vs our nets in Caffe2: max_abs_diff {}",
                ort["max_abs_diff"]
            );
            if code != 0 || ort["allclose"] != true {
                failures.push(format!(
                    "{name}: onnxruntime differs from our nets in Caffe2: {ort}"
                ));
            }
            run
        } else {
            run_all_outputs(&ours, input, &dir, "torch_output", info, None)
        };
        if run["allclose"] != true {
            failures.push(format!(
                "{name}: Caffe2 run of our nets differs from torch: {run}"
            ));
        }
        eprintln!(
            "{name}: equal={} byte_identical={} vs expected max_abs_diff={}",
            cmp["equal"], cmp["byte_identical"], run["max_abs_diff"]
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs our pair in `ours` in the Caffe2 workspace on `input.npy` of the
/// model's folder; every output compared with `dir/<prefix>[_i].npy`
/// (rtol 1e-4, atol 1e-5); the first saved to `save` if given.
fn run_all_outputs(
    ours: &Path,
    input: &str,
    dir: &Path,
    prefix: &str,
    info: &serde_json::Value,
    save: Option<&Path>,
) -> serde_json::Value {
    let model_dir = if dir.ends_with("ref") {
        dir.parent().unwrap()
    } else {
        dir
    };
    let feed = format!("{input}={}", model_dir.join("input.npy").display());
    let mut args: Vec<std::ffi::OsString> = vec![
        script("run_caffe2.py").into(),
        ours.join("init_net.pb").into(),
        ours.join("predict_net.pb").into(),
        "--feed".into(),
        feed.into(),
        "--expect".into(),
        dir.join(format!("{prefix}.npy")).into(),
        "--rtol".into(),
        "1e-4".into(),
        "--atol".into(),
        "1e-5".into(),
    ];
    args.extend(extra_feeds(model_dir, info));
    let outputs = info["outputs"].as_u64().unwrap();
    assert!(outputs >= 2, "{}: {info}", dir.display());
    for i in 1..outputs {
        args.push("--expect-next".into());
        args.push(dir.join(format!("{prefix}_{i}.npy")).into());
    }
    if let Some(save) = save {
        args.push("--save".into());
        args.push(save.into());
        args.push("--save-next".into());
    }
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let (code, run) = run_python(&args);
    assert_eq!(code, 0, "{run}");
    let n = run["outputs"].as_array().map_or(0, Vec::len) as u64;
    assert_eq!(n, outputs, "{}: {run}", dir.display());
    run
}

/// torch 2.x's exports of the same layers (TorchScript exporter at opset
/// 17, dynamo at 18; `make_today_exports.py` into `<refs>/today/rnn_*`),
/// which Caffe2Backend could not read: converted, and run in the Caffe2
/// workspace equal to torch on every output.
#[test]
#[ignore = "interop: needs NETPORT_CAFFE2_PYTHON and NETPORT_CAFFE2_REFS"]
fn todays_rnn_exports_run_in_caffe2_equal_to_torch() {
    let today = need_env("NETPORT_CAFFE2_REFS").join("today");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(today.join("manifest.json")).unwrap())
            .unwrap();
    let models = manifest["models"].as_object().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut runs = 0;
    for (name, entry) in models.iter().filter(|(n, _)| n.starts_with("rnn_")) {
        let dir = today.join(name);
        for exporter in ["torchscript", "dynamo"] {
            let Some(export) = entry.get(exporter) else {
                failures.push(format!("{name} {exporter}: not exported: {entry}"));
                continue;
            };
            let model = dir.join(export["file"].as_str().unwrap());
            let out = tmp.path().join(format!("{name}-{exporter}"));
            let m = netport_onnx::load_model(&model).unwrap();
            let options = ToCaffe2Options {
                resolver: Some(netport_onnx::ExternalDataResolver::for_model(&model)),
                ..Default::default()
            };
            let recurrent = m
                .graph
                .as_ref()
                .unwrap()
                .node
                .iter()
                .any(|n| matches!(n.op_type(), "LSTM" | "GRU" | "RNN"));
            match onnx_to_caffe2(&m, &options) {
                Ok(pair) => pair.save_dir(&out).unwrap(),
                // The dynamo exporter unrolls a relu RNN into per-step ops
                // with a reversing Slice (step -1), which Caffe2's Slice
                // cannot do: refused, and said so.
                Err(ConvertError::Unsupported { nodes, .. })
                    if !recurrent && nodes.iter().all(|n| n.reason.contains("steps")) =>
                {
                    eprintln!("{name} {exporter}: unrolled by the exporter, refused: {nodes:?}");
                    continue;
                }
                Err(e) => {
                    failures.push(format!("{name} {exporter}: {e}"));
                    continue;
                }
            }
            let run = run_all_outputs(
                &out,
                export["input"].as_str().unwrap(),
                &dir,
                "torch_output",
                entry,
                None,
            );
            eprintln!("{name} {exporter}: max_abs_diff {}", run["max_abs_diff"]);
            if run["allclose"] != true {
                failures.push(format!("{name} {exporter}: {run}"));
            }
            runs += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(runs >= 11, "only {runs} exports ran");
}

/// A bidirectional LSTM whose Y is a graph output: the backend's Y has
/// another layout than ONNX's, so the node is refused with the reason.
#[test]
#[ignore = "interop: needs NETPORT_CAFFE2_REFS"]
fn bidirectional_y_read_directly_is_refused() {
    let refs = need_env("NETPORT_CAFFE2_REFS").join("rnn");
    let mut m = netport_onnx::load_model(&refs.join("lstm_bi_1l/model.onnx")).unwrap();
    let graph = m.graph.as_mut().unwrap();
    let lstm = graph
        .node
        .iter()
        .find(|n| n.op_type() == "LSTM")
        .unwrap()
        .clone();
    let mut y = graph.output[0].clone();
    y.name = Some(lstm.output[0].clone());
    y.r#type = None;
    graph.output.push(y);
    let err = onnx_to_caffe2(&m, &ToCaffe2Options::default()).unwrap_err();
    let ConvertError::Unsupported { nodes, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(nodes.len(), 1, "{err}");
    assert_eq!(nodes[0].op, "LSTM");
    assert!(nodes[0].reason.contains("layout"), "{err}");
}

/// A hidden_size that disagrees with W's shape (or overflows) is broken
/// input: an error naming the shapes, nothing converted.
#[test]
#[ignore = "interop: needs NETPORT_CAFFE2_REFS"]
fn hidden_size_disagreeing_with_w_is_invalid() {
    let refs = need_env("NETPORT_CAFFE2_REFS").join("rnn");
    for hidden in [5, 1 << 62] {
        let mut m = netport_onnx::load_model(&refs.join("lstm_1l/model.onnx")).unwrap();
        let graph = m.graph.as_mut().unwrap();
        let lstm = graph
            .node
            .iter_mut()
            .find(|n| n.op_type() == "LSTM")
            .unwrap();
        let attr = lstm
            .attribute
            .iter_mut()
            .find(|a| a.name() == "hidden_size")
            .unwrap();
        attr.i = Some(hidden);
        let err = onnx_to_caffe2(&m, &ToCaffe2Options::default()).unwrap_err();
        assert!(matches!(err, ConvertError::Invalid(_)), "{hidden}: {err}");
        assert!(err.to_string().contains("hidden_size"), "{err}");
    }
}

//! Interop of the LSTM/GRU/RNN conversion with the real Caffe2: torch 1.4's
//! opset-9 exports of nn.LSTM / nn.GRU / nn.RNN (made by
//! `testdata/peers/caffe2/make_rnn_refs.py` into `<refs>/rnn`), converted by
//! us, equal Caffe2Backend's nets op for op and run in the Caffe2 workspace
//! equal to torch (every output). Needs NETPORT_CAFFE2_PYTHON and
//! NETPORT_CAFFE2_REFS.

use crate::common::need_env;
use crate::interop::{convert, run_python, script};
use netport_onnx_caffe2::{ConvertError, ToCaffe2Options, onnx_to_caffe2};

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
];

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
        convert(&dir.join("model.onnx"), &ours);
        let (code, cmp) = run_python(&[
            script("compare_nets.py").as_os_str(),
            ours.as_os_str(),
            dir.join("ref").as_os_str(),
        ]);
        if code != 0 || cmp["equal"] != true {
            failures.push(format!("{name}: nets differ: {cmp}"));
        }
        let feed = format!(
            "{}={}",
            info["input"].as_str().unwrap(),
            dir.join("input.npy").display()
        );
        let mut args: Vec<std::ffi::OsString> = vec![
            script("run_caffe2.py").into(),
            ours.join("init_net.pb").into(),
            ours.join("predict_net.pb").into(),
            "--feed".into(),
            feed.into(),
            "--expect".into(),
            dir.join("torch_output.npy").into(),
            "--rtol".into(),
            "1e-4".into(),
            "--atol".into(),
            "1e-5".into(),
        ];
        let outputs = info["outputs"].as_u64().unwrap();
        assert!(outputs >= 2, "{name}: {info}");
        for i in 1..outputs {
            args.push("--expect-next".into());
            args.push(dir.join(format!("torch_output_{i}.npy")).into());
        }
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let (code, run) = run_python(&args);
        if code != 0 || run["allclose"] != true {
            failures.push(format!(
                "{name}: Caffe2 run of our nets differs from torch: {run}"
            ));
        }
        eprintln!(
            "{name}: equal={} byte_identical={} vs torch max_abs_diff={}",
            cmp["equal"], cmp["byte_identical"], run["max_abs_diff"]
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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

//! The Caffe2 front end on recurrent nets: Caffe2Backend's init/predict
//! pairs for torch 1.4's opset-9 exports of nn.LSTM / nn.GRU / nn.RNN (the
//! references' `rnn/`, made by `testdata/peers/caffe2/make_rnn_refs.py`;
//! netport's converter writes the same nets op for op, checked by the
//! netport-onnx-caffe2 interop tests) run here equal, on every output, to
//! the real Caffe2 workspace's run of the same nets and to torch. Needs
//! NETPORT_CAFFE2_REFS.

use crate::common::npy;
use netport_exec::{Tensor, compare};
use std::path::PathBuf;

fn refs() -> PathBuf {
    let dir = std::env::var_os("NETPORT_CAFFE2_REFS")
        .map(PathBuf::from)
        .expect("NETPORT_CAFFE2_REFS is not set (run `cargo xtask caffe2-refs`)");
    dir.join("rnn")
}

#[test]
#[ignore = "interop: needs NETPORT_CAFFE2_REFS"]
fn caffe2_backend_rnn_nets_equal_caffe2_and_torch() {
    let root = refs();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("manifest.json")).unwrap())
            .unwrap();
    let models = manifest["models"].as_object().unwrap();
    assert!(models.len() >= 12, "{} rnn references", models.len());
    let mut bad = Vec::new();
    for (name, info) in models {
        let dir = root.join(name);
        let (plan, _) = netport_exec::load_model(&dir.join("ref"), None)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut feeds = vec![(
            info["input"].as_str().unwrap().to_string(),
            npy(&dir.join("input.npy")),
        )];
        // The sequence lengths of the models given a sequence_lens input.
        for (name, file) in info["feeds"].as_object().into_iter().flatten() {
            feeds.push((name.clone(), npy(&dir.join(file.as_str().unwrap()))));
        }
        let outs = plan.run(&feeds).unwrap_or_else(|e| panic!("{name}: {e}"));
        let n = info["outputs"].as_u64().unwrap() as usize;
        assert_eq!(outs.len(), n, "{name}");
        for (i, (out, got)) in outs.iter().enumerate() {
            let suffix = if i == 0 {
                String::new()
            } else {
                format!("_{i}")
            };
            let mut wants: Vec<(&str, Tensor, f64, f64)> = vec![(
                "Caffe2",
                npy(&dir.join(format!("ref/caffe2_output{suffix}.npy"))),
                1e-5,
                1e-6,
            )];
            // GRUs rewritten to linear_before_reset=0 and LSTMs given
            // sequence lengths (every kind) have no torch output.
            if info["expected"] != "onnxruntime" {
                wants.push((
                    "torch",
                    npy(&dir.join(format!("torch_output{suffix}.npy"))),
                    1e-4,
                    1e-5,
                ));
            }
            for (what, want, rtol, atol) in &wants {
                let (rtol, atol) = (*rtol, *atol);
                let c = compare(got, want, rtol, atol);
                if !c.equal {
                    bad.push(format!("{name} output {i} ({out}) vs {what}: {c:?}"));
                }
            }
        }
        eprintln!("{name}: {n} outputs checked");
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

//! Third-party ONNX files of the peer corpus (`third-party/`, made by
//! `make_peers.py`'s third-party step): the six models of the pinned
//! silero-vad wheel, each run on netport-exec on every recorded input set (a
//! 16 kHz step from a random state, the next step on the state onnxruntime
//! returned, an 8 kHz step where the model takes `sr`). Every output, by
//! position and name, has onnxruntime's dtype and shape and equals its
//! values within the node tests' tolerance (rtol 1e-3, atol 1e-7; `peer_models`
//! also allows the export tests' whole-model tolerance, which these small
//! nets do not need); a refusal or run error fails.

use crate::common::{npy, peer_dir};
use netport_exec::{Tensor, compare, onnx};
use std::path::PathBuf;

/// The node tests' tolerance (onnx backend tests' defaults).
const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-7;

/// The models this file tests; the manifest must list exactly these.
const MODELS: &[&str] = &[
    "silero-vad/silero_vad",
    "silero-vad/silero_vad_16k_op15",
    "silero-vad/silero_vad_16k_sequence",
    "silero-vad/silero_vad_half",
    "silero-vad/silero_vad_op18_ifless",
    "silero-vad/silero_vad_openvino_16k",
];

/// `third-party/` of the peer corpus and its manifest, or a panic saying
/// how to build it.
fn manifest() -> (PathBuf, serde_json::Value) {
    let dir = peer_dir().join("third-party");
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: this peer corpus has no third-party models (built by an older \
             testdata/peers/make_peers.py); run `cargo xtask peers` and set NETPORT_PEERS \
             to the folder it prints",
            path.display()
        )
    });
    let m = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (dir, m)
}

/// Runs every input set of `model` and compares each output with
/// onnxruntime's.
fn check(model: &str) {
    let (dir, manifest) = manifest();
    let entry = &manifest["models"][model];
    assert!(
        entry.is_object(),
        "{model}: not in {}",
        dir.join("manifest.json").display()
    );
    let plan = onnx::load(&dir.join(entry["file"].as_str().unwrap()))
        .unwrap_or_else(|e| panic!("{model}: refused: {e}"));
    let sets = entry["sets"].as_array().unwrap();
    assert!(!sets.is_empty(), "{model}: no input sets");
    let mut bad = Vec::new();
    for (k, set) in sets.iter().enumerate() {
        let inputs: Vec<(String, Tensor)> = set["inputs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, file)| (name.clone(), npy(&dir.join(file.as_str().unwrap()))))
            .collect();
        let outs = match plan.run(&inputs) {
            Ok(o) => o,
            Err(e) => {
                bad.push(format!("{model} set_{k}: run: {e}"));
                continue;
            }
        };
        let wanted = set["outputs"].as_array().unwrap();
        assert_eq!(outs.len(), wanted.len(), "{model} set_{k}: output count");
        for ((name, got), w) in outs.iter().zip(wanted) {
            let want_name = w[0].as_str().unwrap();
            let want = npy(&dir.join(w[1].as_str().unwrap()));
            let c = compare(got, &want, RTOL, ATOL);
            eprintln!(
                "{model} set_{k} {name} {:?}: max abs {:.3e}, max rel {:.3e} vs onnxruntime{}",
                got.shape,
                c.max_abs,
                c.max_rel,
                if c.equal { "" } else { " (NOT EQUAL)" }
            );
            if name != want_name || got.dtype() != want.dtype() || !c.equal {
                bad.push(format!(
                    "{model} set_{k} {name} (onnxruntime: {want_name}, {} vs {}): {c:?}",
                    got.dtype(),
                    want.dtype()
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
#[ignore = "needs the peer corpus (NETPORT_PEERS)"]
fn manifest_lists_the_tested_models() {
    let (_, manifest) = manifest();
    let listed: Vec<&str> = manifest["models"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(listed, MODELS, "third-party models without a test here");
}

macro_rules! models {
    ($($f:ident),* $(,)?) => {
        $(
            #[test]
            #[ignore = "needs the peer corpus (NETPORT_PEERS)"]
            fn $f() {
                check(&format!("silero-vad/{}", stringify!($f)));
            }
        )*
    };
}

mod third_party_equals_onnxruntime {
    use super::check;
    models!(
        silero_vad,
        silero_vad_16k_op15,
        silero_vad_16k_sequence,
        silero_vad_half,
        silero_vad_op18_ifless,
        silero_vad_openvino_16k,
    );
}

//! resnet18 from both torch exporters (peer corpus) equals the output torch
//! recorded for the same input, on one thread and on several (bit for bit
//! the same output).

use crate::common::{npy, peer_dir};
use netport_exec::{compare, onnx};

fn check(export: &str) {
    let dir = peer_dir().join("resnet18");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    let file = meta["exports"][export]["file"].as_str().unwrap();
    let input = meta["exports"][export]["input"].as_str().unwrap();
    let mut plan = onnx::load(&dir.join(file)).unwrap();
    let x = npy(&dir.join("input.npy"));
    let want = npy(&dir.join("output.npy"));
    plan.set_threads(1);
    let inputs = [(input.to_string(), x)];
    let out = plan.run(&inputs).unwrap();
    assert_eq!(out.len(), 1);
    let c = compare(&out[0].1, &want, 1e-4, 1e-5);
    assert!(c.equal, "{export}: {c:?}");
    assert_eq!(out[0].1.shape, vec![1, 1000]);
    // Intra-op threads cut the products into blocks but sum every element
    // in the same order: the same bits.
    plan.set_threads(3);
    let threaded = plan.run(&inputs).unwrap();
    assert_eq!(threaded[0].1.data, out[0].1.data, "{export}: --threads 3");
}

#[test]
#[ignore = "needs the peer corpus (NETPORT_PEERS)"]
fn resnet18_torchscript_export_equals_torch() {
    check("torchscript");
}

#[test]
#[ignore = "needs the peer corpus (NETPORT_PEERS)"]
fn resnet18_dynamo_export_equals_torch() {
    check("dynamo");
}

//! Hermetic checks on committed fixtures: the tiny CNN against
//! onnxruntime's output, small Caffe2 cases against the real Caffe2's
//! (testdata/exec, see make_exec_fixtures.py there), and refusals.

use crate::common::npy;
use netport_exec::{ExecError, Tensor, compare};
use std::path::{Path, PathBuf};

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

#[test]
fn tiny_cnn_equals_onnxruntime() {
    let plan = netport_exec::onnx::load(&testdata("onnx/tiny_cnn.onnx")).unwrap();
    let x = npy(&testdata("exec/tiny_cnn_input.npy"));
    let want = npy(&testdata("exec/tiny_cnn_output.npy"));
    let out = plan.run(&[("input".into(), x)]).unwrap();
    assert_eq!(out[0].0, "output");
    let c = compare(&out[0].1, &want, 1e-4, 1e-5);
    assert!(c.equal, "{c:?}");
}

#[test]
fn small_caffe2_nets_equal_caffe2() {
    let root = testdata("exec/caffe2");
    let mut n = 0;
    for e in std::fs::read_dir(&root).unwrap() {
        let dir = e.unwrap().path();
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
        let (plan, _) = netport_exec::load_model(&dir, None).unwrap();
        let inputs: Vec<(String, Tensor)> = meta["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, name)| {
                (
                    name.as_str().unwrap().to_string(),
                    npy(&dir.join(format!("input_{i}.npy"))),
                )
            })
            .collect();
        let outs = plan.run(&inputs).unwrap();
        for (i, (name, got)) in outs.iter().enumerate() {
            let want = npy(&dir.join(format!("output_{i}.npy")));
            assert_eq!(got.dtype(), want.dtype(), "{} {name}", dir.display());
            let c = compare(got, &want, 1e-4, 1e-5);
            assert!(c.equal, "{} {name}: {c:?}", dir.display());
        }
        n += 1;
    }
    assert!(n >= 10, "{n} cases");
}

#[test]
fn an_unknown_op_is_refused_at_load_with_node_op_and_opset() {
    let mut m = netport_onnx::load_model(&testdata("onnx/tiny_cnn.onnx")).unwrap();
    let g = m.graph.as_mut().unwrap();
    let node = g
        .node
        .iter_mut()
        .find(|n| n.op_type() == "MaxPool")
        .unwrap();
    node.op_type = Some("MaxUnpoolish".into());
    let name = node.name().to_string();
    match netport_exec::onnx::build(&m, None) {
        Err(ExecError::Unsupported {
            node, op, opset, ..
        }) => {
            assert_eq!(
                (node.as_str(), op.as_str(), opset),
                (name.as_str(), "MaxUnpoolish", 20)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_wrong_input_dtype_or_shape_is_an_error() {
    let plan = netport_exec::onnx::load(&testdata("onnx/tiny_cnn.onnx")).unwrap();
    let x = npy(&testdata("exec/tiny_cnn_input.npy"));
    let as_f64 = x.cast(netport_tensor::DType::Float64).unwrap();
    assert!(matches!(
        plan.run(&[("input".into(), as_f64)]),
        Err(ExecError::Input { .. })
    ));
    let wrong = Tensor::f32(vec![2, 3, 16, 16], vec![0.0; 2 * 3 * 256]).unwrap();
    let e = plan
        .run(&[("input".into(), wrong)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("declares 32 at dim 2"), "{e}");
}

#[test]
fn caffe2_spatialbn_in_training_mode_is_refused() {
    let dir = testdata("exec/caffe2/op_spatialbn");
    let mut model = netport_caffe2::Caffe2Model::load_dir(&dir).unwrap();
    let op = &mut model.predict_net.op[0];
    op.arg.iter_mut().find(|a| a.name() == "is_test").unwrap().i = Some(0);
    let e = netport_exec::caffe2::build(&model).unwrap_err().to_string();
    assert!(e.contains("SpatialBN") && e.contains("is_test = 0"), "{e}");
}

#[test]
fn an_unknown_caffe2_op_is_refused_naming_the_operator_and_its_type() {
    let dir = testdata("exec/caffe2/op_spatialbn");
    let mut model = netport_caffe2::Caffe2Model::load_dir(&dir).unwrap();
    let op = &mut model.predict_net.op[0];
    op.r#type = Some("Frobnicate".into());
    let name = if op.name().is_empty() {
        op.output[0].clone()
    } else {
        op.name().to_string()
    };
    let e = netport_exec::caffe2::build(&model).unwrap_err();
    assert!(
        matches!(&e, ExecError::UnsupportedCaffe2 { op, name: n, .. } if op == "Frobnicate" && *n == name),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "Caffe2 operator {name:?} (type Frobnicate): not supported"
        )) && !msg.contains("opset"),
        "{msg}"
    );
}

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

/// A Caffe2 `If` on `c` reading `x`, its branches writing `then_out` /
/// `else_out` (the op writes `y`), and an `ONNXWhile` over it.
fn caffe2_control(
    then_out: &str,
    extra: Vec<netport_caffe2::proto::Argument>,
) -> netport_caffe2::Caffe2Model {
    use netport_caffe2::proto::{Argument, NetDef, OperatorDef};
    let op = |ty: &str, i: &[&str], o: &[&str]| OperatorDef {
        r#type: Some(ty.into()),
        input: i.iter().map(|s| s.to_string()).collect(),
        output: o.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let net = |ops: Vec<OperatorDef>, ins: &[&str], outs: &[&str]| NetDef {
        op: ops,
        external_input: ins.iter().map(|s| s.to_string()).collect(),
        external_output: outs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let arg_net = |name: &str, n: NetDef| Argument {
        name: Some(name.into()),
        n: Some(n),
        ..Default::default()
    };
    let mut if_op = op("If", &["c"], &["y"]);
    if_op.arg = vec![
        arg_net(
            "then_net",
            net(vec![op("Relu", &["x"], &[then_out])], &["x"], &[then_out]),
        ),
        arg_net(
            "else_net",
            net(vec![op("Negative", &["x"], &["y"])], &["x"], &["y"]),
        ),
    ];
    let mut while_op = op("ONNXWhile", &["n", "go", "y"], &["z"]);
    while_op.arg = vec![arg_net(
        "body",
        net(
            vec![
                op("Relu", &["a"], &["a_out"]),
                op("Copy", &["cond"], &["cond_out"]),
            ],
            &["i", "cond", "a"],
            &["cond_out", "a_out"],
        ),
    )];
    for (name, i) in [
        ("has_trip_count", 1),
        ("has_cond", 1),
        ("disable_scopes", 1),
    ] {
        while_op.arg.push(Argument {
            name: Some(name.into()),
            i: Some(i),
            ..Default::default()
        });
    }
    while_op.arg.extend(extra);
    netport_caffe2::Caffe2Model {
        init_net: NetDef::default(),
        predict_net: net(vec![if_op, while_op], &["c", "x", "n", "go"], &["z"]),
    }
}

#[test]
fn caffe2_if_and_onnxwhile_load_and_what_caffe2_computes_otherwise_is_refused() {
    use netport_caffe2::proto::Argument;
    let plan = netport_exec::caffe2::build(&caffe2_control("y", vec![])).unwrap();
    assert_eq!(plan.op_types(), ["If", "ONNXWhile"]);
    let names: Vec<&str> = plan.inputs().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["c", "x", "n", "go"]);
    // Caffe2's If copies no output: a branch writing another name.
    let e = netport_exec::caffe2::build(&caffe2_control("t", vec![]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("type If") && e.contains("copies nothing"), "{e}");
    // has_cond=0 makes ONNXWhile ignore the body's condition.
    let has_cond_0 = Argument {
        name: Some("has_cond".into()),
        i: Some(0),
        ..Default::default()
    };
    let mut m = caffe2_control("y", vec![]);
    for a in &mut m.predict_net.op[1].arg {
        if a.name() == "has_cond" {
            *a = has_cond_0.clone();
        }
    }
    let e = netport_exec::caffe2::build(&m).unwrap_err().to_string();
    assert!(
        e.contains("type ONNXWhile") && e.contains("has_cond=0"),
        "{e}"
    );
    // A body writing a blob of the outer net (x), which Caffe2's shared
    // workspace would overwrite.
    let mut m = caffe2_control("y", vec![]);
    let body = m.predict_net.op[1].arg[0].n.as_mut().unwrap();
    body.op[0].output = vec!["x".into()];
    body.external_output[1] = "x".into();
    let e = netport_exec::caffe2::build(&m).unwrap_err().to_string();
    assert!(e.contains("writes blob \"x\""), "{e}");
}

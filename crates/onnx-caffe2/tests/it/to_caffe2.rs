//! ONNX -> Caffe2 on the committed torch export and on small graphs: the
//! init/predict split, fills bit for bit, names, device options, external
//! lists, and the op table's special cases.

use crate::common::*;
use netport_onnx_caffe2::{ConvertError, ToCaffe2Options, onnx_to_caffe2};

fn convert(m: &netport_onnx::proto::ModelProto) -> netport_caffe2::Caffe2Model {
    onnx_to_caffe2(m, &ToCaffe2Options::default()).unwrap()
}

#[test]
fn the_committed_torch_export_converts_with_fills_bit_for_bit() {
    let path = root().join("testdata/onnx/tiny_cnn.onnx");
    let model = netport_onnx::load_model(&path).unwrap();
    let pair = convert(&model);
    let (init, pred) = (&pair.init_net, &pair.predict_net);
    assert_eq!(init.name(), "main_graph_init");
    assert_eq!(pred.name(), "main_graph_predict");
    for net in [init, pred] {
        let d = net.device_option.as_ref().unwrap();
        assert_eq!((d.device_type, d.device_id), (Some(0), Some(0)));
        assert!(net.op.iter().all(|o| o.device_option.is_none()));
    }
    assert_eq!(
        types(pred),
        ["Conv", "SpatialBN", "Relu", "MaxPool", "Flatten", "FC"]
    );
    assert_eq!(arg(&pred.op[1], "is_test").unwrap().i, Some(1));
    // One fill per initializer, in initializer order, values then shape.
    let graph = model.graph.as_ref().unwrap();
    assert_eq!(init.op.len(), graph.initializer.len());
    for (op, t) in init.op.iter().zip(&graph.initializer) {
        assert_eq!(op.r#type(), "GivenTensorFill");
        assert_eq!(op.output, [t.name().to_string()]);
        assert!(op.name.is_none() && op.input.is_empty());
        assert_eq!(op.arg[0].name(), "values");
        assert_eq!(op.arg[1].name(), "shape");
        assert_eq!(op.arg[1].ints, t.dims);
        let raw = netport_onnx::tensor_data(t, None).unwrap();
        let ours: Vec<u8> = op.arg[0]
            .floats
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        assert_eq!(ours, raw.to_vec(), "{}", t.name());
    }
    // Every op keeps the node's name, even an empty one.
    for (op, node) in pred.op.iter().zip(&graph.node) {
        assert_eq!(op.name(), node.name());
    }
    let mut expected_in = vec!["input".to_string()];
    expected_in.extend(graph.initializer.iter().map(|t| t.name().to_string()));
    assert_eq!(pred.external_input, expected_in);
    assert_eq!(pred.external_output, ["output"]);
    assert_eq!(init.external_output, expected_in[1..]);
}

#[test]
fn legacy_pads_are_doubled_and_global_pools_flagged() {
    let m = model(
        9,
        vec![value("x", &[1, 1, 4, 4])],
        vec![value("z", &[1, 1, 1, 1])],
        vec![floats("w", &[1, 1, 3, 3], &[1.0; 9])],
        vec![
            node(
                "Conv",
                &["x", "w"],
                &["y"],
                vec![
                    attr_ints("kernel_shape", &[3, 3]),
                    attr_ints("pads", &[1, 1]),
                ],
            ),
            node("GlobalAveragePool", &["y"], &["z"], vec![]),
        ],
    );
    let pair = convert(&m);
    let conv = &pair.predict_net.op[0];
    assert_eq!(arg(conv, "pads").unwrap().ints, [1, 1, 1, 1]);
    assert_eq!(arg(conv, "kernels").unwrap().ints, [3, 3]);
    assert!(arg(conv, "kernel_shape").is_none());
    let pool = &pair.predict_net.op[1];
    assert_eq!(pool.r#type(), "AveragePool");
    assert_eq!(arg(pool, "global_pooling").unwrap().i, Some(1));
}

#[test]
fn gemm_becomes_fc_scale_or_matmul_add() {
    let gemm = |attrs, bias_dims: &[i64]| {
        let n = bias_dims.iter().product::<i64>() as usize;
        model(
            9,
            vec![value("a", &[2, 3])],
            vec![value("y", &[2, 4])],
            vec![
                floats("b", &[4, 3], &[0.5; 12]),
                floats("c", bias_dims, &vec![1.0; n]),
            ],
            vec![node("Gemm", &["a", "b", "c"], &["y"], attrs)],
        )
    };
    let fc = convert(&gemm(vec![attr_i("transB", 1)], &[4]));
    assert_eq!(types(&fc.predict_net), ["FC"]);
    assert!(fc.predict_net.op[0].arg.is_empty());
    let scaled = convert(&gemm(vec![attr_i("transB", 1), attr_f("alpha", 2.0)], &[4]));
    assert_eq!(types(&scaled.predict_net), ["Scale", "FC"]);
    assert_eq!(scaled.predict_net.op[0].output, ["OC2_DUMMY_0"]);
    assert_eq!(scaled.predict_net.op[1].input[0], "OC2_DUMMY_0");
    // A 2-D bias is no FC bias: MatMul then Add.
    let general = convert(&gemm(vec![attr_i("transB", 1)], &[2, 4]));
    assert_eq!(types(&general.predict_net), ["MatMul", "Add"]);
    assert_eq!(
        arg(&general.predict_net.op[0], "trans_b").unwrap().i,
        Some(1)
    );
}

#[test]
fn dummy_names_skip_names_the_graph_uses() {
    let m = model(
        9,
        vec![value("OC2_DUMMY_0", &[2, 3])],
        vec![value("y", &[6])],
        vec![int64s("s", &[1], &[6])],
        vec![node("Reshape", &["OC2_DUMMY_0", "s"], &["y"], vec![])],
    );
    let pair = convert(&m);
    assert_eq!(pair.predict_net.op[0].output, ["y", "OC2_DUMMY_1"]);
    // The shape initializer stays an input, created by the init net.
    assert_eq!(pair.predict_net.external_input, ["OC2_DUMMY_0", "s"]);
    assert_eq!(pair.init_net.external_output, ["s"]);
    assert_eq!(pair.init_net.op[0].r#type(), "GivenTensorInt64Fill");
}

#[test]
fn constant_inputs_of_newer_opsets_become_arguments() {
    let m = model(
        18,
        vec![value("x", &[1, 3, 1, 5])],
        vec![value("r", &[1, 1])],
        vec![
            int64s("axes", &[1], &[2]),
            floats("lo", &[], &[0.0]),
            floats("hi", &[], &[6.0]),
            int64s("raxes", &[1], &[-1]),
        ],
        vec![
            node("Squeeze", &["x", "axes"], &["s"], vec![]),
            node("Clip", &["s", "lo", "hi"], &["c"], vec![]),
            node(
                "ReduceMean",
                &["c", "raxes"],
                &["r"],
                vec![attr_i("keepdims", 1)],
            ),
        ],
    );
    let pair = convert(&m);
    let p = &pair.predict_net;
    assert_eq!(types(p), ["Squeeze", "Clip", "ReduceMean"]);
    assert_eq!(p.op[0].input, ["x"]);
    assert_eq!(arg(&p.op[0], "dims").unwrap().ints, [2]);
    assert_eq!(p.op[1].input, ["s"]);
    assert_eq!(arg(&p.op[1], "min").unwrap().f, Some(0.0));
    assert_eq!(arg(&p.op[1], "max").unwrap().f, Some(6.0));
    assert_eq!(arg(&p.op[2], "axes").unwrap().ints, [2]);
    // The constants read into arguments are still created by the init net
    // (one fill per initializer), but the predict net no longer reads them.
    assert_eq!(pair.init_net.op.len(), 4);
    assert_eq!(p.external_input, ["x"]);
    assert!(pair.init_net.external_output.is_empty());
}

#[test]
fn constant_nodes_go_to_the_init_net() {
    let mut shape = int64s("", &[2], &[1, -1]);
    shape.name = None;
    let mut c = node("Constant", &[], &["k"], vec![]);
    c.attribute.push(netport_onnx::proto::AttributeProto {
        name: Some("value".into()),
        r#type: Some(netport_onnx::proto::attribute_proto::AttributeType::Tensor as i32),
        t: Some(shape),
        ..Default::default()
    });
    let m = model(
        9,
        vec![value("x", &[2, 3])],
        vec![value("y", &[1, 6])],
        vec![],
        vec![c, node("Reshape", &["x", "k"], &["y"], vec![])],
    );
    let pair = convert(&m);
    assert_eq!(types(&pair.init_net), ["GivenTensorInt64Fill"]);
    assert_eq!(pair.init_net.op[0].arg[0].ints, [1, -1]);
    assert_eq!(pair.init_net.external_output, ["k"]);
    assert_eq!(pair.predict_net.external_input, ["x", "k"]);
}

#[test]
fn shape_subgraphs_fold_into_reshape_arguments() {
    // y = x.reshape(x.shape[0], -1): Shape -> Gather -> Unsqueeze -> Concat.
    let m = model(
        13,
        vec![value("x", &[2, 3, 4])],
        vec![value("y", &[2, 12])],
        vec![
            int64s("zero", &[], &[0]),
            int64s("ax0", &[1], &[0]),
            int64s("minus1", &[1], &[-1]),
        ],
        vec![
            node("Shape", &["x"], &["s"], vec![]),
            node("Gather", &["s", "zero"], &["n"], vec![attr_i("axis", 0)]),
            node("Unsqueeze", &["n", "ax0"], &["n1"], vec![]),
            node(
                "Concat",
                &["n1", "minus1"],
                &["shape"],
                vec![attr_i("axis", 0)],
            ),
            node("Reshape", &["x", "shape"], &["y"], vec![]),
        ],
    );
    let pair = convert(&m);
    assert_eq!(types(&pair.predict_net), ["Reshape"]);
    let r = &pair.predict_net.op[0];
    assert_eq!(r.input, ["x"]);
    assert_eq!(arg(r, "shape").unwrap().ints, [2, -1]);
    assert_eq!(pair.predict_net.external_input, ["x"]);
}

#[test]
fn every_unsupported_node_is_listed_at_once() {
    let mut n1 = node("Einsum", &["x", "x"], &["a"], vec![]);
    n1.name = Some("first".into());
    let mut n2 = node("GridSample", &["a", "x"], &["y"], vec![]);
    n2.name = Some("second".into());
    let m = model(
        17,
        vec![value("x", &[2, 2])],
        vec![value("y", &[2, 2])],
        vec![],
        vec![n1, n2],
    );
    let e = onnx_to_caffe2(&m, &ToCaffe2Options::default()).unwrap_err();
    assert!(e.is_unsupported(), "{e}");
    let ConvertError::Unsupported { nodes, .. } = &e else {
        unreachable!()
    };
    let listed: Vec<(&str, &str, i64)> = nodes
        .iter()
        .map(|n| (n.name.as_str(), n.op.as_str(), n.opset))
        .collect();
    assert_eq!(
        listed,
        [("first", "Einsum", 17), ("second", "GridSample", 17)]
    );
    let text = e.to_string();
    assert!(
        text.starts_with("2 node(s) cannot be converted to Caffe2:"),
        "{text}"
    );
    assert!(text.contains("first: Einsum (opset 17)"), "{text}");
}

#[test]
fn opsets_outside_the_table_are_refused() {
    let m = model(
        6,
        vec![value("x", &[1])],
        vec![value("y", &[1])],
        vec![],
        vec![node("Relu", &["x"], &["y"], vec![])],
    );
    let e = onnx_to_caffe2(&m, &ToCaffe2Options::default()).unwrap_err();
    assert!(e.is_unsupported());
    assert!(
        e.to_string().contains("opset 6 is outside the 7..=28"),
        "{e}"
    );
}

#[test]
fn softmax_13_converts_only_over_the_last_axis() {
    let sm = |axis| {
        model(
            13,
            vec![value("x", &[2, 3, 4])],
            vec![value("y", &[2, 3, 4])],
            vec![],
            vec![node("Softmax", &["x"], &["y"], vec![attr_i("axis", axis)])],
        )
    };
    let pair = convert(&sm(-1));
    assert_eq!(arg(&pair.predict_net.op[0], "axis").unwrap().i, Some(2));
    let e = onnx_to_caffe2(&sm(1), &ToCaffe2Options::default()).unwrap_err();
    assert!(
        e.is_unsupported() && e.to_string().contains("not the last"),
        "{e}"
    );
}

#[test]
fn nop_pads_and_transposes_are_removed_as_the_backend_optimizer_does() {
    let m = model(
        9,
        vec![value("x", &[1, 1, 2, 2])],
        vec![value("y", &[1, 1, 2, 2])],
        vec![],
        vec![
            node("Pad", &["x"], &["p"], vec![attr_ints("pads", &[0; 8])]),
            node(
                "Transpose",
                &["p"],
                &["t"],
                vec![attr_ints("perm", &[0, 1, 2, 3])],
            ),
            node("Relu", &["t"], &["y"], vec![]),
        ],
    );
    let pair = convert(&m);
    assert_eq!(types(&pair.predict_net), ["Relu"]);
    assert_eq!(pair.predict_net.op[0].input, ["x"]);
}

#[test]
fn the_streamed_init_net_equals_the_encoded_one_and_failures_write_nothing() {
    let path = root().join("testdata/onnx/tiny_cnn.onnx");
    let model = netport_onnx::load_model(&path).unwrap();
    let pair = convert(&model);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("streamed");
    let w = netport_onnx_caffe2::write_caffe2_dir(&model, &ToCaffe2Options::default(), &out, false)
        .unwrap();
    assert_eq!(w.init_ops, pair.init_net.op.len());
    assert_eq!(w.data_inputs, ["input"]);
    assert_eq!(
        std::fs::read(out.join("init_net.pb")).unwrap(),
        netport_caffe2::encode_netdef(&pair.init_net).unwrap()
    );
    assert_eq!(
        std::fs::read(out.join("predict_net.pb")).unwrap(),
        netport_caffe2::encode_netdef(&pair.predict_net).unwrap()
    );
    // The last initializer lies about its size: the stream stops there and
    // neither file (nor the folder) is left behind.
    let mut broken = model.clone();
    let g = broken.graph.as_mut().unwrap();
    let last = g.initializer.last_mut().unwrap();
    last.dims = vec![1000];
    let bad = tmp.path().join("bad");
    let e =
        netport_onnx_caffe2::write_caffe2_dir(&broken, &ToCaffe2Options::default(), &bad, false)
            .unwrap_err();
    assert!(e.to_string().contains("need 4000 bytes of data"), "{e}");
    assert!(!bad.exists());
}

/// A graph attribute.
fn attr_g(name: &str, g: netport_onnx::proto::GraphProto) -> netport_onnx::proto::AttributeProto {
    netport_onnx::proto::AttributeProto {
        name: Some(name.into()),
        r#type: Some(netport_onnx::proto::attribute_proto::AttributeType::Graph as i32),
        g: Some(g),
        ..Default::default()
    }
}

fn graph(
    name: &str,
    inputs: Vec<netport_onnx::proto::ValueInfoProto>,
    outputs: Vec<netport_onnx::proto::ValueInfoProto>,
    nodes: Vec<netport_onnx::proto::NodeProto>,
) -> netport_onnx::proto::GraphProto {
    netport_onnx::proto::GraphProto {
        name: Some(name.into()),
        input: inputs,
        output: outputs,
        node: nodes,
        ..Default::default()
    }
}

fn unsupported_reason(m: &netport_onnx::proto::ModelProto) -> String {
    match onnx_to_caffe2(m, &ToCaffe2Options::default()) {
        Err(ConvertError::Unsupported { nodes, .. }) => nodes
            .iter()
            .map(|n| n.reason.clone())
            .collect::<Vec<_>>()
            .join("; "),
        other => panic!("not refused: {other:?}"),
    }
}

/// An If on `c` whose branches write `then_out`/`else_out` (both reading x).
fn if_model(then_out: &str, else_out: &str) -> netport_onnx::proto::ModelProto {
    let then_g = graph(
        "then",
        vec![],
        vec![value(then_out, &[2])],
        vec![node("Relu", &["x"], &[then_out], vec![])],
    );
    let else_g = graph(
        "else",
        vec![],
        vec![value(else_out, &[2])],
        vec![node("Neg", &["x"], &[else_out], vec![])],
    );
    let mut cond = value("c", &[]);
    if let Some(netport_onnx::proto::type_proto::Value::TensorType(t)) =
        cond.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.elem_type = Some(9);
    }
    model(
        11,
        vec![cond, value("x", &[2])],
        vec![value("y", &[2])],
        vec![],
        vec![node(
            "If",
            &["c"],
            &["y"],
            vec![attr_g("then_branch", then_g), attr_g("else_branch", else_g)],
        )],
    )
}

#[test]
fn if_becomes_caffe2_if_with_sub_nets_and_control_inputs() {
    let pair = convert(&if_model("y", "y"));
    let p = &pair.predict_net;
    assert_eq!(types(p), ["If"]);
    let op = &p.op[0];
    assert_eq!(op.control_input, ["x"]);
    let names: Vec<&str> = op.arg.iter().map(|a| a.name()).collect();
    assert_eq!(names, ["then_net", "else_net", "__control_inputs"]);
    let then_net = op.arg[0].n.as_ref().unwrap();
    assert_eq!(types(then_net), ["Relu"]);
    assert_eq!(then_net.external_input, ["x"]);
    assert_eq!(then_net.external_output, ["y"]);
    assert!(then_net.name.is_none() && then_net.device_option.is_none());
    assert_eq!(
        types(op.arg[1].n.as_ref().unwrap()),
        ["Negative"],
        "the else branch uses the op table"
    );
    // x is read only through the branches, and still declared.
    assert_eq!(p.external_input, ["c", "x"]);
}

#[test]
fn control_flow_that_caffe2_computes_otherwise_is_refused_with_the_reason() {
    // Branch outputs named otherwise than the node's: Caffe2 copies nothing.
    let r = unsupported_reason(&if_model("t", "y"));
    assert!(r.contains("not named as the node's output"), "{r}");
    // A Loop with scan outputs, and one without a trip count.
    let body = |outs: &[&str]| {
        graph(
            "body",
            vec![value("i", &[]), value("cond", &[]), value("a", &[2])],
            outs.iter().map(|o| value(o, &[2])).collect(),
            vec![
                node("Identity", &["cond"], &["cond_out"], vec![]),
                node("Relu", &["a"], &["a_out"], vec![]),
                node("Neg", &["a"], &["s"], vec![]),
            ],
        )
    };
    let lp = |inputs: &[&str], outputs: &[&str], body| {
        model(
            11,
            vec![value("n", &[1]), value("go", &[1]), value("x", &[2])],
            outputs.iter().map(|o| value(o, &[2])).collect(),
            vec![],
            vec![node("Loop", inputs, outputs, vec![attr_g("body", body)])],
        )
    };
    let r = unsupported_reason(&lp(
        &["n", "go", "x"],
        &["y", "scan"],
        body(&["cond_out", "a_out", "s"]),
    ));
    assert!(r.contains("scan outputs"), "{r}");
    let r = unsupported_reason(&lp(&["", "go", "x"], &["y"], body(&["cond_out", "a_out"])));
    assert!(r.contains("trip count"), "{r}");
    // The same loop with both inputs converts.
    let pair = convert(&lp(&["n", "go", "x"], &["y"], body(&["cond_out", "a_out"])));
    let op = &pair.predict_net.op[0];
    assert_eq!(op.r#type(), "ONNXWhile");
    assert_eq!(arg(op, "num_loop_carried_deps").unwrap().i, Some(1));
    assert!(op.control_input.is_empty());
}

#[test]
fn a_subgraph_reading_an_undefined_name_is_broken_input() {
    let mut m = if_model("y", "y");
    let g = m.graph.as_mut().unwrap();
    g.node[0].attribute[0].g.as_mut().unwrap().node[0].input[0] = "nowhere".into();
    let e = onnx_to_caffe2(&m, &ToCaffe2Options::default()).unwrap_err();
    assert!(matches!(e, ConvertError::Invalid(_)), "{e}");
    assert!(e.to_string().contains("nowhere"), "{e}");
}

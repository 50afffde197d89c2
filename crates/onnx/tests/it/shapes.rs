//! Shape inference on committed models, against what
//! `onnx.shape_inference.infer_shapes(strict_mode=True, data_prop=True)`
//! answered for them (written down below), and on hand-built graphs.

use netport_onnx::load_model;
use netport_onnx::proto::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto};
use netport_onnx::shapes::{Dim, TensorType, infer_shapes};

fn p(s: &str) -> Dim {
    Dim::Param(s.to_string())
}

fn f(n: i64) -> Dim {
    Dim::Fixed(n)
}

#[test]
fn tiny_cnn_shapes_equal_onnx_answer() {
    let model = load_model("../../testdata/onnx/tiny_cnn.onnx".as_ref()).unwrap();
    let inferred = infer_shapes(&model);
    assert!(
        inferred.unsupported.is_empty(),
        "{:?}",
        inferred.unsupported
    );
    assert!(
        inferred.diagnostics.is_empty(),
        "{:?}",
        inferred.diagnostics
    );
    // onnx 1.23.2, strict_mode=True, data_prop=True
    let expected = [
        ("input", vec![p("batch"), f(3), f(32), f(32)]),
        ("/conv/Conv_output_0", vec![p("batch"), f(8), f(32), f(32)]),
        (
            "/bn/BatchNormalization_output_0",
            vec![p("batch"), f(8), f(32), f(32)],
        ),
        ("/relu/Relu_output_0", vec![p("batch"), f(8), f(32), f(32)]),
        ("/pool/MaxPool_output_0", vec![p("batch"), f(8), f(8), f(8)]),
        ("/flatten/Flatten_output_0", vec![p("batch"), f(512)]),
        ("output", vec![p("batch"), f(2)]),
    ];
    for (name, dims) in expected {
        assert_eq!(
            inferred.values.get(name),
            Some(&TensorType::new(1, dims)),
            "{name}"
        );
    }
}

fn int_attr(name: &str, i: i64) -> netport_onnx::proto::AttributeProto {
    netport_onnx::proto::AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(2),
        i: Some(i),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.to_string()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn model_with(graph: GraphProto, opset: i64) -> ModelProto {
    ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(graph),
        ..Default::default()
    }
}

/// The input of tiny_cnn ([batch, 3, 32, 32] float), reused as a typed input.
fn batch_input() -> netport_onnx::proto::ValueInfoProto {
    let model = load_model("../../testdata/onnx/tiny_cnn.onnx".as_ref()).unwrap();
    model.graph.unwrap().input[0].clone()
}

#[test]
fn shape_subgraph_propagates_the_batch_symbol_into_reshape() {
    // x[batch,3,32,32] -> Shape -> Gather(0) -> Unsqueeze(0) -> Concat(.., [-1])
    // -> Reshape: [batch, ?] (onnx 1.23.2 answers [batch, unk__0] for this graph)
    let x = batch_input();
    let name = x.name().to_string();
    let mut gather = node("Gather", &["shape", "zero"], &["n"]);
    gather.attribute.push(int_attr("axis", 0));
    let mut concat = node("Concat", &["n1", "minus_one"], &["target"]);
    concat.attribute.push(int_attr("axis", 0));
    let int64 = |n: &str, dims: Vec<i64>, v: Vec<i64>| netport_onnx::proto::TensorProto {
        name: Some(n.to_string()),
        data_type: Some(7),
        dims,
        int64_data: v,
        ..Default::default()
    };
    let graph = GraphProto {
        name: Some("g".to_string()),
        input: vec![x],
        initializer: vec![
            int64("zero", vec![], vec![0]),
            int64("axes", vec![1], vec![0]),
            int64("minus_one", vec![1], vec![-1]),
        ],
        node: vec![
            node("Shape", &[&name], &["shape"]),
            gather,
            node("Unsqueeze", &["n", "axes"], &["n1"]),
            concat,
            node("Reshape", &[&name, "target"], &["y"]),
            node("NoSuchOp", &["y"], &["z"]),
        ],
        ..Default::default()
    };
    let inferred = infer_shapes(&model_with(graph, 17));
    assert_eq!(inferred.data["target"], vec![p("batch"), f(-1)]);
    assert_eq!(
        inferred.values["y"],
        TensorType::new(1, vec![p("batch"), Dim::Unknown])
    );
    assert!(!inferred.values.contains_key("z"));
    assert_eq!(
        inferred.unsupported.iter().collect::<Vec<_>>(),
        ["NoSuchOp"]
    );
    assert!(inferred.diagnostics.is_empty());
}

#[test]
fn contradicting_declared_shape_is_a_diagnostic() {
    let mut model = load_model("../../testdata/onnx/tiny_cnn.onnx".as_ref()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    // declare the conv output with 7 channels where the weight gives 8; onnx
    // rejects it: "Inferred shape and existing shape differ in dimension 1:
    // (8) vs (7)" (and then also flags BatchNormalization, whose input
    // checks we do not have)
    let mut vi = graph.input[0].clone();
    vi.name = Some("/conv/Conv_output_0".to_string());
    if let Some(netport_onnx::proto::type_proto::Value::TensorType(t)) =
        vi.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.shape.as_mut().unwrap().dim[1].value =
            Some(netport_onnx::proto::tensor_shape_proto::dimension::Value::DimValue(7));
    }
    graph.value_info.push(vi);
    let inferred = infer_shapes(&model);
    assert_eq!(inferred.diagnostics.len(), 1, "{:?}", inferred.diagnostics);
    let d = &inferred.diagnostics[0];
    assert_eq!(d.rule.id(), "inference-shape-clash");
    assert_eq!(d.op_type.as_deref(), Some("Conv"));
    assert!(
        d.message.contains("inferred 8 but declared 7"),
        "{}",
        d.message
    );
}

#[test]
fn unsqueeze_axes_move_from_attribute_to_input_at_opset_13() {
    let x = batch_input();
    let name = x.name().to_string();
    let axes = netport_onnx::proto::TensorProto {
        name: Some("axes".to_string()),
        data_type: Some(7),
        dims: vec![1],
        int64_data: vec![1],
        ..Default::default()
    };
    // opset 11: axes is an attribute
    let mut n11 = node("Unsqueeze", &[&name], &["y"]);
    n11.attribute.push(netport_onnx::proto::AttributeProto {
        name: Some("axes".to_string()),
        r#type: Some(7),
        ints: vec![1],
        ..Default::default()
    });
    // opset 13: axes is the second input
    let n13 = node("Unsqueeze", &[&name, "axes"], &["y"]);
    let want = TensorType::new(1, vec![p("batch"), f(1), f(3), f(32), f(32)]);
    for (opset, n) in [(11, n11), (13, n13)] {
        let graph = GraphProto {
            name: Some("g".to_string()),
            input: vec![x.clone()],
            initializer: vec![axes.clone()],
            node: vec![n],
            ..Default::default()
        };
        let inferred = infer_shapes(&model_with(graph, opset));
        assert_eq!(inferred.values.get("y"), Some(&want), "opset {opset}");
    }
}

#[test]
fn mixed_input_types_break_the_type_constraint_and_a_declared_type_clash_too() {
    // onnx 1.23.2 infer_shapes(strict_mode=True) infers Add(float, int64)
    // as float (the type of input 0); check_model(full_check=True), whose
    // inference also checks type constraints, rejects it ("B has
    // inconsistent type tensor(int64)"), and a declared INT64 y clashes too
    // ("Inferred elem type differs from existing elem type").
    let x = batch_input();
    let name = x.name().to_string();
    let mut y = x.clone();
    y.name = Some("y".to_string());
    let graph = |outputs| GraphProto {
        name: Some("g".to_string()),
        input: vec![x.clone()],
        output: outputs,
        initializer: vec![netport_onnx::proto::TensorProto {
            name: Some("one".to_string()),
            data_type: Some(7),
            int64_data: vec![1],
            ..Default::default()
        }],
        node: vec![node("Add", &[&name, "one"], &["y"])],
        ..Default::default()
    };
    let inferred = infer_shapes(&model_with(graph(vec![]), 17));
    let rules: Vec<(&str, Option<usize>)> = inferred
        .diagnostics
        .iter()
        .map(|d| (d.rule.id(), d.node_index))
        .collect();
    assert_eq!(rules, [("inference-type-constraint", Some(0))]);
    assert!(
        inferred.diagnostics[0].message.contains("tensor(int64)"),
        "{}",
        inferred.diagnostics[0].message
    );
    assert_eq!(
        inferred.values["y"],
        TensorType::new(1, vec![p("batch"), f(3), f(32), f(32)])
    );
    if let Some(netport_onnx::proto::type_proto::Value::TensorType(t)) =
        y.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.elem_type = Some(7);
    }
    let inferred = infer_shapes(&model_with(graph(vec![y]), 17));
    let rules: Vec<(&str, Option<usize>)> = inferred
        .diagnostics
        .iter()
        .map(|d| (d.rule.id(), d.node_index))
        .collect();
    assert_eq!(
        rules,
        [
            ("inference-type-constraint", Some(0)),
            ("inference-type-clash", Some(0))
        ]
    );
}

#[test]
fn reshape_before_opset_5_infers_the_element_type_only() {
    // onnx 1.23.2 answers elem_type 1 and no shape for Reshape-1 with
    // shape=[0, -1] on [batch, 3, 32, 32]
    let x = batch_input();
    let name = x.name().to_string();
    let mut n = node("Reshape", &[&name], &["y"]);
    n.attribute.push(netport_onnx::proto::AttributeProto {
        name: Some("shape".to_string()),
        r#type: Some(7),
        ints: vec![0, -1],
        ..Default::default()
    });
    let graph = GraphProto {
        name: Some("g".to_string()),
        input: vec![x],
        node: vec![n],
        ..Default::default()
    };
    let inferred = infer_shapes(&model_with(graph, 4));
    assert!(inferred.unsupported.is_empty());
    assert_eq!(inferred.values["y"], TensorType::unranked(1));
}

#[test]
fn hostile_attributes_and_dims_do_not_panic() {
    let base = load_model("../../testdata/onnx/tiny_cnn.onnx".as_ref()).unwrap();
    let extremes = [i64::MIN, -5, -1, 0, i64::MAX];
    for &v in &extremes {
        let mut model = base.clone();
        let graph = model.graph.as_mut().unwrap();
        for n in &mut graph.node {
            for a in &mut n.attribute {
                a.i = Some(v);
                for x in &mut a.ints {
                    *x = v;
                }
            }
        }
        if let Some(netport_onnx::proto::type_proto::Value::TensorType(t)) = graph.input[0]
            .r#type
            .as_mut()
            .and_then(|t| t.value.as_mut())
        {
            for d in &mut t.shape.as_mut().unwrap().dim {
                d.value =
                    Some(netport_onnx::proto::tensor_shape_proto::dimension::Value::DimValue(v));
            }
        }
        // any answer will do, as long as there is one
        let inferred = infer_shapes(&model);
        assert!(inferred.unsupported.is_empty());
    }
}

#[test]
fn opset_6_ops_follow_onnx() {
    // onnx 1.23.2 answers, IR 3, x: [batch,3,8,8], s: [3], a: [batch,4], c: [5]:
    // BatchNormalization-6 y [batch,3,8,8]; Gemm-6 (transB) y [batch,5];
    // Dropout-6 y [batch,3,8,8] and for the mask only the float element
    // type its type constraint binds (check_type=True); Mul-6 with
    // broadcast=1 of (c, a) gives c's [5].
    let vi = |name: &str, dims: Vec<Dim>| {
        use netport_onnx::proto::tensor_shape_proto::{Dimension, dimension::Value as V};
        let dim = dims
            .into_iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Dim::Fixed(n) => V::DimValue(n),
                    Dim::Param(p) => V::DimParam(p),
                    Dim::Unknown => V::DimParam(String::new()),
                }),
                ..Default::default()
            })
            .collect();
        netport_onnx::proto::ValueInfoProto {
            name: Some(name.to_string()),
            r#type: Some(netport_onnx::proto::TypeProto {
                value: Some(netport_onnx::proto::type_proto::Value::TensorType(
                    netport_onnx::proto::type_proto::Tensor {
                        elem_type: Some(1),
                        shape: Some(netport_onnx::proto::TensorShapeProto { dim }),
                    },
                )),
                ..Default::default()
            }),
            ..Default::default()
        }
    };
    let mut bn = node("BatchNormalization", &["x", "s", "s", "s", "s"], &["bn"]);
    bn.attribute.push(int_attr("is_test", 1));
    let mut gemm = node("Gemm", &["a", "b", "c"], &["gemm"]);
    gemm.attribute.push(int_attr("transB", 1));
    let mut dropout = node("Dropout", &["x"], &["drop", "mask"]);
    dropout.attribute.push(int_attr("is_test", 1));
    let mut mul = node("Mul", &["c", "a"], &["mul"]);
    mul.attribute.push(int_attr("broadcast", 1));
    let graph = GraphProto {
        name: Some("g".to_string()),
        input: vec![
            vi("x", vec![p("batch"), f(3), f(8), f(8)]),
            vi("s", vec![f(3)]),
            vi("a", vec![p("batch"), f(4)]),
            vi("b", vec![f(5), f(4)]),
            vi("c", vec![f(5)]),
        ],
        node: vec![bn, gemm, dropout, mul],
        ..Default::default()
    };
    let inferred = infer_shapes(&model_with(graph, 6));
    assert!(
        inferred.unsupported.is_empty(),
        "{:?}",
        inferred.unsupported
    );
    assert!(
        inferred.diagnostics.is_empty(),
        "{:?}",
        inferred.diagnostics
    );
    let image = TensorType::new(1, vec![p("batch"), f(3), f(8), f(8)]);
    assert_eq!(inferred.values["bn"], image);
    assert_eq!(inferred.values["drop"], image);
    assert_eq!(inferred.values["mask"], TensorType::unranked(1));
    assert_eq!(
        inferred.values["gemm"],
        TensorType::new(1, vec![p("batch"), f(5)])
    );
    assert_eq!(inferred.values["mul"], TensorType::new(1, vec![f(5)]));
}

#[test]
fn if_branches_read_outer_values_and_many_ifs_stay_linear() {
    // x [batch,3,32,32] -> Relu -> r0 -> If(then: Identity(r_k), else:
    // Relu(r_k)) -> r_{k+1}, 5,000 times: each body reads the value just
    // before its If in the outer scope (without copying the scope, which
    // would make this quadratic), and the union of the branches keeps every
    // dim.
    let x = batch_input();
    let name = x.name().to_string();
    let graph_attr = |attr: &str, g: GraphProto| netport_onnx::proto::AttributeProto {
        name: Some(attr.to_string()),
        r#type: Some(5),
        g: Some(g),
        ..Default::default()
    };
    let branch = |op: &str, input: &str, out: &str| GraphProto {
        name: Some(format!("{op}_{out}")),
        node: vec![node(op, &[input], &[out])],
        output: vec![netport_onnx::proto::ValueInfoProto {
            name: Some(out.to_string()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let n = 5_000;
    let mut nodes = vec![
        node("Relu", &[&name], &["r0"]),
        node("Constant", &[], &["cond"]),
    ];
    nodes[1]
        .attribute
        .push(netport_onnx::proto::AttributeProto {
            name: Some("value".to_string()),
            r#type: Some(4),
            t: Some(netport_onnx::proto::TensorProto {
                data_type: Some(9),
                int32_data: vec![1],
                ..Default::default()
            }),
            ..Default::default()
        });
    for k in 0..n {
        let (input, output) = (format!("r{k}"), format!("r{}", k + 1));
        let mut node = node("If", &["cond"], &[&output]);
        node.attribute.push(graph_attr(
            "then_branch",
            branch("Identity", &input, &format!("t{k}")),
        ));
        node.attribute.push(graph_attr(
            "else_branch",
            branch("Relu", &input, &format!("e{k}")),
        ));
        nodes.push(node);
    }
    let graph = GraphProto {
        name: Some("g".to_string()),
        input: vec![x],
        node: nodes,
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let inferred = infer_shapes(&model_with(graph, 13));
    assert!(
        inferred.unsupported.is_empty(),
        "{:?}",
        inferred.unsupported
    );
    assert!(
        inferred.diagnostics.is_empty(),
        "{:?}",
        inferred.diagnostics
    );
    let image = TensorType::new(1, vec![p("batch"), f(3), f(32), f(32)]);
    assert_eq!(inferred.values["r1"], image);
    assert_eq!(inferred.values[&format!("r{n}")], image);
    // generous: linear work is well under a second even in a debug build
    assert!(start.elapsed().as_secs() < 60, "{:?}", start.elapsed());
}

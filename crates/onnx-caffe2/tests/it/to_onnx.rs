//! Caffe2 -> ONNX on small nets and on a round trip of the committed torch
//! export: fills to initializers bit for bit, SSA renames of in-place ops,
//! the legacy argument forms, fake input fills, and the checker's verdict.

use crate::common::*;
use netport_onnx_caffe2::{
    ConvertError, ToCaffe2Options, ToOnnxOptions, caffe2_to_onnx, onnx_to_caffe2,
};

fn options(shapes: &[(&str, &[i64])]) -> ToOnnxOptions {
    ToOnnxOptions {
        input_shapes: shapes
            .iter()
            .map(|(n, d)| (n.to_string(), d.to_vec()))
            .collect(),
        ..Default::default()
    }
}

#[test]
fn the_torch_export_round_trips_through_caffe2() {
    let path = root().join("testdata/onnx/tiny_cnn.onnx");
    let original = netport_onnx::load_model(&path).unwrap();
    let pair = onnx_to_caffe2(&original, &ToCaffe2Options::default()).unwrap();
    let g = original.graph.as_ref().unwrap();
    let dims: Vec<i64> = match &g.input[0].r#type.as_ref().unwrap().value {
        Some(netport_onnx::proto::type_proto::Value::TensorType(t)) => t
            .shape
            .as_ref()
            .unwrap()
            .dim
            .iter()
            .map(|d| netport_onnx::Dim::from_proto(d).value().unwrap_or(1))
            .collect(),
        _ => unreachable!(),
    };
    for opset in [9, 13, 18] {
        let back = caffe2_to_onnx(
            &pair,
            &ToOnnxOptions {
                opset,
                ..options(&[("input", &dims)])
            },
        )
        .unwrap();
        assert_eq!(check_errors(&back), Vec::<String>::new(), "opset {opset}");
        assert_eq!(
            onnx_types(&back),
            [
                "Conv",
                "BatchNormalization",
                "Relu",
                "MaxPool",
                "Flatten",
                "Gemm"
            ]
        );
        let bg = back.graph.as_ref().unwrap();
        for t in &g.initializer {
            let ours = bg
                .initializer
                .iter()
                .find(|x| x.name() == t.name())
                .unwrap();
            assert_eq!(ours.dims, t.dims);
            assert_eq!(
                netport_onnx::tensor_data(ours, None).unwrap(),
                netport_onnx::tensor_data(t, None).unwrap()
            );
        }
        // Initializers are graph inputs up to opset 9, as the frontend wrote.
        assert_eq!(bg.input.len(), if opset <= 9 { 9 } else { 1 });
        assert_eq!(bg.output[0].name(), "output");
    }
}

#[test]
fn in_place_ops_are_renamed_into_ssa_form() {
    let pair = c2pair(
        vec![c2fill("data", &[1, 1], &[0.0])],
        vec![
            c2op("Relu", &["data"], &["data"], vec![]),
            c2op("Sum", &["data", "data"], &["data"], vec![]),
            c2op("Sigmoid", &["data"], &["out"], vec![]),
        ],
        &["data"],
        &["out"],
    );
    // The [1, 1] fill of "data" is mobile_exporter's fake input: typing the
    // input drops it.
    let m = caffe2_to_onnx(&pair, &options(&[("data", &[2, 3])])).unwrap();
    let g = m.graph.as_ref().unwrap();
    assert!(g.initializer.is_empty());
    let io: Vec<(Vec<&str>, Vec<&str>)> = g
        .node
        .iter()
        .map(|n| {
            (
                n.input.iter().map(String::as_str).collect(),
                n.output.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        io,
        [
            (vec!["data"], vec!["data_1"]),
            (vec!["data_1", "data_1"], vec!["data_2"]),
            (vec!["data_2"], vec!["out"]),
        ]
    );
    assert_eq!(onnx_types(&m), ["Relu", "Add", "Sigmoid"]);
    assert!(check_errors(&m).is_empty(), "{:?}", check_errors(&m));
}

#[test]
fn legacy_conv_and_pool_arguments_are_folded() {
    let pair = c2pair(
        vec![c2fill("w", &[2, 1, 3, 3], &[0.5; 18])],
        vec![
            c2op(
                "Conv",
                &["x", "w"],
                &["c"],
                vec![c2i("kernel", 3), c2i("stride", 2), c2i("pad", 1)],
            ),
            // CAFFE_LEGACY_POOLING on 3x3, k=2, s=2: ceil -> 2x2 out; the tail pad
            // is out*stride - pad_begin - 1 + kernel - in = 2.
            c2op(
                "MaxPool",
                &["c"],
                &["p"],
                vec![c2i("kernel", 2), c2i("stride", 2), c2i("legacy_pad", 3)],
            ),
            c2op(
                "AveragePool",
                &["p"],
                &["y"],
                vec![c2i("global_pooling", 1)],
            ),
        ],
        &["x", "w"],
        &["y"],
    );
    let m = caffe2_to_onnx(&pair, &options(&[("x", &[1, 1, 6, 6])])).unwrap();
    assert_eq!(onnx_types(&m), ["Conv", "MaxPool", "GlobalAveragePool"]);
    let g = m.graph.as_ref().unwrap();
    let attr = |n: usize, name: &str| {
        g.node[n]
            .attribute
            .iter()
            .find(|a| a.name() == name)
            .map(|a| a.ints.clone())
    };
    assert_eq!(attr(0, "kernel_shape"), Some(vec![3, 3]));
    assert_eq!(attr(0, "strides"), Some(vec![2, 2]));
    assert_eq!(attr(0, "pads"), Some(vec![1, 1, 1, 1]));
    assert_eq!(attr(1, "pads"), Some(vec![0, 0, 2, 2]));
    assert!(check_errors(&m).is_empty(), "{:?}", check_errors(&m));
    // The output's shape is inferred: [1, 2, 1, 1].
    let out = netport_onnx::shapes::tensor_type_of(g.output[0].r#type.as_ref().unwrap()).unwrap();
    assert_eq!(out.shape.unwrap().len(), 4);
}

#[test]
fn channel_shuffle_and_concat_split_info() {
    let pair = c2pair(
        vec![],
        vec![
            c2op("ChannelShuffle", &["x"], &["s"], vec![c2i("group", 2)]),
            c2op("Concat", &["s", "x"], &["c", "info"], vec![]),
            c2op("Cast", &["info"], &["y"], vec![c2i("to", 1)]),
        ],
        &["x"],
        &["c", "info"],
    );
    let e = caffe2_to_onnx(&pair, &options(&[("x", &[1, 4, 2, 2])])).unwrap_err();
    // Cast is not in the table: listed, nothing else.
    assert!(e.is_unsupported() && e.to_string().contains("Cast"), "{e}");
    let mut pair = pair;
    pair.predict_net.op.pop();
    let m = caffe2_to_onnx(&pair, &options(&[("x", &[1, 4, 2, 2])])).unwrap();
    assert_eq!(
        onnx_types(&m),
        ["Reshape", "Transpose", "Reshape", "Constant", "Concat"]
    );
    assert!(check_errors(&m).is_empty(), "{:?}", check_errors(&m));
}

#[test]
fn broken_nets_are_refused_with_what_is_wrong() {
    let invalid = |pair: &netport_caffe2::Caffe2Model, shapes: &[(&str, &[i64])]| {
        let e = caffe2_to_onnx(pair, &options(shapes)).unwrap_err();
        assert!(matches!(e, ConvertError::Invalid(_)), "{e:?}");
        e.to_string()
    };
    // Values disagreeing with the shape.
    let p = c2pair(
        vec![c2fill("w", &[2, 3], &[1.0, 2.0])],
        vec![c2op("Add", &["x", "w"], &["y"], vec![])],
        &["x", "w"],
        &["y"],
    );
    assert!(invalid(&p, &[("x", &[2, 3])]).contains("shape [2, 3] needs 6 values, the op holds 2"));
    // A 2 GiB fill claimed by its shape, with one value.
    let p = c2pair(
        vec![c2fill("w", &[1 << 31], &[1.0])],
        vec![c2op("Add", &["x", "w"], &["y"], vec![])],
        &["x", "w"],
        &["y"],
    );
    assert!(invalid(&p, &[("x", &[1])]).contains("needs 2147483648 values"));
    // A blob created twice by the init net.
    let p = c2pair(
        vec![c2fill("w", &[1], &[1.0]), c2fill("w", &[1], &[2.0])],
        vec![c2op("Add", &["x", "w"], &["y"], vec![])],
        &["x", "w"],
        &["y"],
    );
    assert!(invalid(&p, &[("x", &[1])]).contains("blob 'w' is created twice"));
    // An input nothing produces (a cycle through in-place ops reads ahead).
    let p = c2pair(
        vec![],
        vec![
            c2op("Relu", &["b"], &["a"], vec![]),
            c2op("Relu", &["a"], &["b"], vec![]),
        ],
        &["x"],
        &["b"],
    );
    assert!(invalid(&p, &[("x", &[1])]).contains("input 'b' is never produced"));
    // Data inputs without a shape or type.
    let p = c2pair(
        vec![],
        vec![c2op("Relu", &["x"], &["y"], vec![])],
        &["x"],
        &["y"],
    );
    assert!(invalid(&p, &[]).contains("no shape or type for the data input(s) x"));
    // Unknown ops: all listed.
    let p = c2pair(
        vec![],
        vec![
            c2op("Foo", &["x"], &["a"], vec![]),
            c2op("Bar", &["a"], &["y"], vec![]),
        ],
        &["x"],
        &["y"],
    );
    let e = caffe2_to_onnx(&p, &options(&[("x", &[1])])).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("2 node(s) cannot be converted to ONNX"),
        "{text}"
    );
    assert!(
        text.contains(": Foo: ") && text.contains(": Bar: "),
        "{text}"
    );
}

//! What the adapters put in a picture (boxes, initializer lines,
//! attributes, edges, clusters, labels) for committed ONNX models and Caffe2
//! nets and for hostile ones, and that the SVG of each passes `check_svg`.

use crate::common::{check_svg, load_onnx, testdata};
use netport_caffe2::Caffe2Model;
use netport_caffe2::proto::{Argument, NetDef, OperatorDef};
use netport_graph::onnx::{Options, picture};
use netport_graph::{Family, NodeKind, Picture, to_dot, to_svg};
use netport_onnx::proto::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto, ValueInfoProto};

fn op<'a>(p: &'a Picture, title: &str) -> &'a netport_graph::Node {
    p.nodes
        .iter()
        .find(|n| n.kind == NodeKind::Op && n.title == title)
        .unwrap_or_else(|| panic!("no {title} box"))
}

fn edge_values(p: &Picture) -> Vec<(String, String, String)> {
    p.edges
        .iter()
        .map(|e| {
            (
                p.nodes[e.from].title.clone(),
                p.nodes[e.to].title.clone(),
                e.value.clone(),
            )
        })
        .collect()
}

#[test]
fn onnx_boxes_hold_type_name_initializers_and_attributes() {
    let model = load_onnx("onnx/tiny_cnn.onnx");
    let p = picture(&model, &Options::default());
    assert_eq!(p.op_count(), 6);
    let conv = op(&p, "Conv");
    assert_eq!(conv.subtitle, "/conv/Conv");
    assert_eq!(conv.family, Family::Layer);
    assert_eq!(conv.initializers, ["W ⟨8×3×3×3⟩", "B ⟨8⟩"]);
    assert!(
        conv.attributes
            .contains(&("kernel_shape".into(), "[3, 3]".into()))
    );
    assert!(conv.attributes.contains(&("group".into(), "1".into())));
    let bn = op(&p, "BatchNormalization");
    assert_eq!(bn.initializers.len(), 4);
    assert_eq!(bn.family, Family::Normalization);
    assert_eq!(op(&p, "Relu").family, Family::Activation);
    assert_eq!(op(&p, "MaxPool").family, Family::Pool);
    // Inputs and outputs are boxes; initializers are not.
    let inputs: Vec<&str> = p
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Input)
        .map(|n| n.title.as_str())
        .collect();
    assert_eq!(inputs, ["input"]);
    let input = p.nodes.iter().find(|n| n.title == "input").unwrap();
    assert_eq!(input.subtitle, "float32 ⟨batch×3×32×32⟩");
    // One chain: input -> Conv -> ... -> Gemm -> output.
    let titles: Vec<(String, String, String)> = edge_values(&p);
    assert_eq!(titles.len(), 7);
    assert_eq!(titles[0].0, "input");
    assert_eq!(titles[0].1, "Conv");
    assert_eq!(titles[6].1, "output");
    check_svg(&to_svg(&p), &p);
}

#[test]
fn edge_labels_are_declared_types_or_inferred_ones() {
    let model = load_onnx("onnx/tiny_cnn.onnx");
    let declared = picture(&model, &Options::default());
    let labelled: Vec<&str> = declared
        .edges
        .iter()
        .filter(|e| e.label.is_some())
        .map(|e| e.value.as_str())
        .collect();
    // tiny_cnn declares the types of its input and output only.
    assert_eq!(labelled, ["input", "output"]);
    let inferred = picture(&model, &Options { shapes: true });
    assert!(inferred.edges.iter().all(|e| e.label.is_some()));
    let conv_out = inferred
        .edges
        .iter()
        .find(|e| e.value == "/conv/Conv_output_0")
        .unwrap();
    assert_eq!(conv_out.label.as_deref(), Some("float32 ⟨batch×8×32×32⟩"));
    let flat = inferred
        .edges
        .iter()
        .find(|e| e.value == "/flatten/Flatten_output_0")
        .unwrap();
    assert_eq!(flat.label.as_deref(), Some("float32 ⟨batch×512⟩"));
}

#[test]
fn subgraphs_are_clusters_and_no_edge_crosses_a_frame() {
    let model = load_onnx("onnx/check/if__valid.onnx");
    let p = picture(&model, &Options::default());
    let if_id = p.nodes.iter().position(|n| n.title == "If").unwrap();
    assert_eq!(p.clusters.len(), 2);
    let labels: Vec<&str> = p.clusters.iter().map(|c| c.label.as_str()).collect();
    assert!(labels.contains(&"then_branch") && labels.contains(&"else_branch"));
    assert!(p.clusters.iter().all(|c| c.owner == if_id));
    for e in &p.edges {
        assert_eq!(p.nodes[e.from].cluster, p.nodes[e.to].cluster, "{e:?}");
    }
    // A branch reading a value of the main graph shows it as an input box
    // in its cluster, fed through the If box.
    let captured: Vec<&netport_graph::Node> = p
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Input && n.cluster.is_some())
        .collect();
    assert!(!captured.is_empty());
    for c in &captured {
        assert!(
            p.edges.iter().any(|e| e.to == if_id && e.value == c.title),
            "{} does not reach the If box",
            c.title
        );
    }
    check_svg(&to_svg(&p), &p);
}

#[test]
fn nodes_out_of_order_still_get_their_edges() {
    let ordered = picture(
        &load_onnx("onnx/check/cnn__valid.onnx"),
        &Options::default(),
    );
    let shuffled = picture(
        &load_onnx("onnx/check/cnn__nodes_out_of_order.onnx"),
        &Options::default(),
    );
    let mut a = edge_values(&ordered);
    let mut b = edge_values(&shuffled);
    a.sort();
    b.sort();
    assert_eq!(a, b);
    check_svg(&to_svg(&shuffled), &shuffled);
}

#[test]
fn caffe2_pair_shows_weights_with_their_shapes() {
    let model = Caffe2Model::load_dir(testdata("caffe2/tiny")).unwrap();
    let p = netport_graph::caffe2::picture(&model.predict_net, Some(&model.init_net));
    assert_eq!(
        op(&p, "Conv").initializers,
        ["filter ⟨8×3×3×3⟩", "bias ⟨8⟩"]
    );
    assert_eq!(
        op(&p, "SpatialBN").initializers,
        ["scale ⟨8⟩", "bias ⟨8⟩", "mean ⟨8⟩", "var ⟨8⟩"]
    );
    assert_eq!(op(&p, "FC").initializers, ["W ⟨2×512⟩", "b ⟨2⟩"]);
    assert!(
        op(&p, "Conv")
            .attributes
            .contains(&("kernels".into(), "[3, 3]".into()))
    );
    let boxes: Vec<(&NodeKind, &str)> = p
        .nodes
        .iter()
        .filter(|n| n.kind != NodeKind::Op)
        .map(|n| (&n.kind, n.title.as_str()))
        .collect();
    assert_eq!(
        boxes,
        [(&NodeKind::Input, "input"), (&NodeKind::Output, "output")]
    );
    assert_eq!(p.edges.len(), 7);
    check_svg(&to_svg(&p), &p);
    // Without the init net, the weights are told apart by where ops read
    // them: the same boxes and edges.
    let alone = netport_graph::caffe2::picture(&model.predict_net, None);
    assert_eq!(edge_values(&alone), edge_values(&p));
    assert_eq!(
        op(&alone, "Conv").initializers,
        ["conv.weight", "conv.bias"]
    );
}

fn c2op(ty: &str, inputs: &[&str], outputs: &[&str]) -> OperatorDef {
    OperatorDef {
        r#type: Some(ty.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn caffe2_in_place_ops_and_nested_nets() {
    let body = NetDef {
        op: vec![c2op("Sigmoid", &["X", "Z"], &["W"])],
        external_output: vec!["W".into()],
        ..Default::default()
    };
    let mut cond = c2op("If", &["C"], &["Z"]);
    cond.arg.push(Argument {
        name: Some("then_net".into()),
        n: Some(body),
        ..Default::default()
    });
    let net = NetDef {
        name: Some("in_place".into()),
        op: vec![
            c2op("Relu", &["X"], &["X"]),
            c2op("Tanh", &["X"], &["Y"]),
            cond,
        ],
        external_input: vec!["X".into(), "C".into()],
        external_output: vec!["Y".into()],
        ..Default::default()
    };
    let p = netport_graph::caffe2::picture(&net, None);
    let edges = edge_values(&p);
    // Tanh reads the X that Relu wrote, not the net's input.
    assert!(edges.contains(&("X".into(), "Relu".into(), "X".into())));
    assert!(edges.contains(&("Relu".into(), "Tanh".into(), "X".into())));
    assert!(!edges.contains(&("X".into(), "Tanh".into(), "X".into())));
    // The nested net is a cluster of the If box; the X it reads comes
    // from Relu through the If box, Z (written by If itself, read before)
    // is an input of the body.
    assert_eq!(p.clusters.len(), 1);
    assert_eq!(p.nodes[p.clusters[0].owner].title, "If");
    assert!(edges.contains(&("Relu".into(), "If".into(), "X".into())));
    for e in &p.edges {
        assert_eq!(p.nodes[e.from].cluster, p.nodes[e.to].cluster);
    }
    check_svg(&to_svg(&p), &p);
}

fn vi(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        ..Default::default()
    }
}

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn model(nodes: Vec<NodeProto>, inputs: &[&str], outputs: &[&str]) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some("g <\"&'>".into()),
            node: nodes,
            input: inputs.iter().map(|n| vi(n)).collect(),
            output: outputs.iter().map(|n| vi(n)).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn hostile_names_stay_valid_xml_and_dot() {
    let weird = "a<b>&\"c'\u{1}\u{7f}]]>\\\n";
    let m = model(
        vec![
            node("Relu", weird, &[weird], &["y]]>"]),
            node("<script>", "x\u{fffe}", &["y]]>"], &["z"]),
        ],
        &[weird],
        &["z"],
    );
    let p = picture(&m, &Options::default());
    let svg = to_svg(&p);
    check_svg(&svg, &p);
    assert!(!svg.contains("<script>"));
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let title = doc
        .descendants()
        .find(|n| n.has_tag_name("g") && n.attribute("id") == Some("n1"))
        .unwrap()
        .first_child()
        .unwrap();
    assert_eq!(title.text(), Some("a<b>&\"c'\u{fffd}\u{7f}]]>\\ "));
    let dot = to_dot(&p);
    assert!(!dot.contains("<script>"));
    assert!(dot.contains("tooltip=\"a<b>&\\\"c'  ]]>\\\\ \""), "{dot}");
}

#[test]
fn a_cycle_is_drawn_with_every_edge() {
    // Not a valid model: two nodes reading each other's output.
    let m = model(
        vec![
            node("Add", "a", &["x", "q"], &["p"]),
            node("Relu", "b", &["p"], &["q"]),
        ],
        &["x"],
        &["q"],
    );
    let p = picture(&m, &Options::default());
    assert_eq!(p.edges.len(), 4);
    check_svg(&to_svg(&p), &p);
    let l = netport_graph::layout(&p);
    assert!(l.edges.iter().all(|pts| pts.len() >= 2));
}

#[test]
fn an_empty_model_is_an_empty_picture() {
    let p = picture(&ModelProto::default(), &Options::default());
    assert!(p.nodes.is_empty());
    check_svg(&to_svg(&p), &p);
    assert!(to_dot(&p).starts_with("digraph \"\" {"));
}

#[test]
fn the_same_model_gives_the_same_bytes() {
    // Each picture is made with fresh hash maps (new random seeds), so an
    // output that followed hash order would differ.
    let a = load_onnx("onnx/check/if__valid.onnx");
    let b = load_onnx("onnx/check/if__valid.onnx");
    let pa = picture(&a, &Options { shapes: true });
    let pb = picture(&b, &Options { shapes: true });
    assert_eq!(to_svg(&pa), to_svg(&pb));
    assert_eq!(to_dot(&pa), to_dot(&pb));
    let m = crate::common::residual_model(40);
    assert_eq!(
        to_svg(&picture(&m, &Options::default())),
        to_svg(&picture(&m.clone(), &Options::default()))
    );
}

#[test]
fn every_node_and_edge_of_the_model_is_in_the_svg_once() {
    for rel in [
        "onnx/tiny_cnn.onnx",
        "onnx/check/cnn__valid.onnx",
        "onnx/check/mlp__valid.onnx",
        "onnx/check/cnn__nodes_out_of_order.onnx",
    ] {
        let model = load_onnx(rel);
        for shapes in [false, true] {
            let svg = to_svg(&picture(&model, &Options { shapes }));
            crate::common::assert_svg_shows_model(&svg, &model);
        }
    }
}

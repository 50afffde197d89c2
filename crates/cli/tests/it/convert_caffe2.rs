//! `netport convert` between ONNX and Caffe2: what is written, the exit
//! codes (1 for nodes with no equivalent, 2 for broken input) and that
//! nothing is written when the conversion stops.

use crate::common::{netport, testdata};
use std::fs;
use std::path::Path;

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn onnx_to_caffe2_and_back_on_the_torch_export() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c2");
    let input = testdata("onnx/tiny_cnn.onnx");
    let before = fs::read(&input).unwrap();
    let o = netport([
        "convert".as_ref(),
        input.as_os_str(),
        out.as_os_str(),
        "--to".as_ref(),
        "caffe2".as_ref(),
        "--text".as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        listing(&out),
        [
            "init_net.pb",
            "init_net.pbtxt",
            "predict_net.pb",
            "predict_net.pbtxt"
        ]
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["predict_ops"], 6);
    assert_eq!(doc["init_ops"], 8);
    assert_eq!(doc["external_output"][0], "output");
    let pair = netport_caffe2::Caffe2Model::load_dir(&out).unwrap();
    let text = netport_caffe2::load_netdef(out.join("predict_net.pbtxt")).unwrap();
    assert_eq!(text, pair.predict_net);
    let text = netport_caffe2::load_netdef(out.join("init_net.pbtxt")).unwrap();
    assert_eq!(text, pair.init_net);
    assert_eq!(
        fs::read(&input).unwrap(),
        before,
        "the input is never modified"
    );

    // And back: the folder, typed by --input-shape, to ONNX.
    let back = tmp.path().join("back.onnx");
    let o = netport([
        "convert".as_ref(),
        out.as_os_str(),
        back.as_os_str(),
        "--input-shape".as_ref(),
        "input=1,3,8,8".as_ref(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.starts_with(&format!(
            "wrote {}: onnx (opset 9), 6 nodes, 8 initializers",
            back.display()
        )),
        "{text}"
    );
    let o = netport(["check".as_ref(), back.as_os_str()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // The predict net with --init, at opset 17.
    let back17 = tmp.path().join("back17.onnx");
    let o = netport([
        "convert".as_ref(),
        out.join("predict_net.pb").as_os_str(),
        back17.as_os_str(),
        "--init".as_ref(),
        out.join("init_net.pb").as_os_str(),
        "--opset".as_ref(),
        "17".as_ref(),
        "--input-shape".as_ref(),
        "input=1,3,8,8".as_ref(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let m = netport_onnx::load_model(&back17).unwrap();
    assert_eq!(m.opset_import[0].version(), 17);
}

/// An ONNX model file from prost structs.
fn write_model(path: &Path, op: &str, extra_init_bytes: bool) {
    use netport_onnx::proto::*;
    let vi = |name: &str| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto {
                    dim: vec![netport_onnx::Dim::Fixed(2).to_proto()],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let w = TensorProto {
        name: Some("w".into()),
        dims: vec![if extra_init_bytes { 3 } else { 2 }],
        data_type: Some(1),
        raw_data: Some(vec![0u8; 8].into()),
        ..Default::default()
    };
    let node = |op: &str, i: &str, o: &str, name: &str| NodeProto {
        op_type: Some(op.into()),
        input: vec![i.into(), "w".into()],
        output: vec![o.into()],
        name: Some(name.into()),
        ..Default::default()
    };
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: vec![node(op, "x", "a", "first"), node(op, "a", "y", "second")],
            initializer: vec![w],
            input: vec![vi("x")],
            output: vec![vi("y")],
            ..Default::default()
        }),
        ..Default::default()
    };
    netport_onnx::save_model(&m, path, &Default::default(), None).unwrap();
}

#[test]
fn unsupported_nodes_exit_1_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("m.onnx");
    write_model(&model, "Einsum", false);
    let out = tmp.path().join("out");
    let o = netport([
        "convert".as_ref(),
        model.as_os_str(),
        out.as_os_str(),
        "--to".as_ref(),
        "caffe2".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("2 node(s) cannot be converted to Caffe2:"),
        "{err}"
    );
    assert!(
        err.contains("first: Einsum (opset 17)") && err.contains("second: Einsum (opset 17)"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn broken_input_exits_2_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("m.onnx");
    // 3 floats claimed, 8 bytes stored.
    write_model(&model, "Add", true);
    let out = tmp.path().join("out");
    let o = netport([
        "convert".as_ref(),
        model.as_os_str(),
        out.as_os_str(),
        "--to".as_ref(),
        "caffe2".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tensor 'w': dims [3]") && err.contains("found 8"),
        "{err}"
    );
    assert!(
        listing(&out).is_empty(),
        "nothing is written: {:?}",
        listing(&out)
    );

    // A Caffe2 pair whose data input has no shape: exit 2, no output.
    let good = tmp.path().join("good.onnx");
    write_model(&good, "Add", false);
    let pair = tmp.path().join("pair");
    let o = netport([
        "convert".as_ref(),
        good.as_os_str(),
        pair.as_os_str(),
        "--to".as_ref(),
        "caffe2".as_ref(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let back = tmp.path().join("back.onnx");
    let o = netport(["convert".as_ref(), pair.as_os_str(), back.as_os_str()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no shape or type for the data input(s) x")
    );
    assert!(!back.exists());
}

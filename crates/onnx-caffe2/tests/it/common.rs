//! Shared helpers: small ONNX graphs built from prost structs, the
//! committed fixtures, and the environment of the interop tests.

use netport_onnx::proto::attribute_proto::AttributeType;
use netport_onnx::proto::tensor_proto::DataType;
use netport_onnx::proto::tensor_shape_proto::Dimension;
use netport_onnx::proto::tensor_shape_proto::dimension::Value as DimValue;
use netport_onnx::proto::type_proto::{Tensor, Value};
use netport_onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use std::path::PathBuf;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A float tensor input or output of `dims`.
pub fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(Value::TensorType(Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(DimValue::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A float initializer stored in `raw_data`.
pub fn floats(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(
            values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        ),
        ..Default::default()
    }
}

/// An int64 initializer in `int64_data`.
pub fn int64s(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Int64 as i32),
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

/// A node of the default domain.
pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

/// An INT attribute.
pub fn attr_i(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(i),
        ..Default::default()
    }
}

/// An INTS attribute.
pub fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: ints.to_vec(),
        ..Default::default()
    }
}

/// A FLOAT attribute.
pub fn attr_f(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(f),
        ..Default::default()
    }
}

/// A model of one graph at `opset`.
pub fn model(
    opset: i64,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    initializers: Vec<TensorProto>,
    nodes: Vec<NodeProto>,
) -> ModelProto {
    ModelProto {
        ir_version: Some(if opset <= 9 { 4 } else { 8 }),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: nodes,
            initializer: initializers,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The type of a Caffe2 op, for short assertions.
pub fn types(net: &netport_caffe2::proto::NetDef) -> Vec<&str> {
    net.op.iter().map(|o| o.r#type()).collect()
}

/// The argument `name` of `op`.
pub fn arg<'a>(
    op: &'a netport_caffe2::proto::OperatorDef,
    name: &str,
) -> Option<&'a netport_caffe2::proto::Argument> {
    op.arg.iter().find(|a| a.name() == name)
}

/// An environment variable that an interop test needs, or a panic saying so.
pub fn need_env(name: &str) -> PathBuf {
    match std::env::var_os(name) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => panic!(
            "{name} is not set: the interop tests need the Caffe2 venv and its reference \
             files (`cargo xtask caffe2-venv`, `cargo xtask caffe2-refs`; `cargo xtask ci` \
             sets NETPORT_CAFFE2_PYTHON and NETPORT_CAFFE2_REFS)"
        ),
    }
}

/// A Caffe2 op.
pub fn c2op(
    ty: &str,
    inputs: &[&str],
    outputs: &[&str],
    args: Vec<netport_caffe2::proto::Argument>,
) -> netport_caffe2::proto::OperatorDef {
    netport_caffe2::proto::OperatorDef {
        r#type: Some(ty.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: Some(String::new()),
        arg: args,
        ..Default::default()
    }
}

/// A Caffe2 integer argument.
pub fn c2i(name: &str, i: i64) -> netport_caffe2::proto::Argument {
    netport_caffe2::proto::Argument {
        name: Some(name.into()),
        i: Some(i),
        ..Default::default()
    }
}

/// A Caffe2 ints argument.
pub fn c2ints(name: &str, ints: &[i64]) -> netport_caffe2::proto::Argument {
    netport_caffe2::proto::Argument {
        name: Some(name.into()),
        ints: ints.to_vec(),
        ..Default::default()
    }
}

/// A `GivenTensorFill` of `shape` with `values`.
pub fn c2fill(out: &str, shape: &[i64], values: &[f32]) -> netport_caffe2::proto::OperatorDef {
    let mut op = c2op("GivenTensorFill", &[], &[out], vec![]);
    op.arg.push(netport_caffe2::proto::Argument {
        name: Some("values".into()),
        floats: values.to_vec(),
        ..Default::default()
    });
    op.arg.push(c2ints("shape", shape));
    op
}

/// A Caffe2 pair from its two op lists and external lists.
pub fn c2pair(
    init: Vec<netport_caffe2::proto::OperatorDef>,
    predict: Vec<netport_caffe2::proto::OperatorDef>,
    inputs: &[&str],
    outputs: &[&str],
) -> netport_caffe2::Caffe2Model {
    use netport_caffe2::proto::NetDef;
    netport_caffe2::Caffe2Model {
        init_net: NetDef {
            name: Some("n_init".into()),
            op: init,
            ..Default::default()
        },
        predict_net: NetDef {
            name: Some("n".into()),
            op: predict,
            external_input: inputs.iter().map(|s| s.to_string()).collect(),
            external_output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
    }
}

/// The op types of an ONNX graph.
pub fn onnx_types(m: &netport_onnx::proto::ModelProto) -> Vec<&str> {
    m.graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type())
        .collect()
}

/// Errors of netport's ONNX checker.
pub fn check_errors(m: &netport_onnx::proto::ModelProto) -> Vec<String> {
    netport_onnx::check::check_model(m, &Default::default())
        .into_iter()
        .filter(|d| d.is_error())
        .map(|d| d.message)
        .collect()
}

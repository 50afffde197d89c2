//! Helpers shared by the corpus tests: checks one `.pb` / `.pbtxt` against the
//! `expected.json` written next to it by the Python peers
//! (`testdata/peers/netdef_pb.py` `net_summary`, `make_peers.py` `op_summary`),
//! rebuilding the same JSON from our decoded `NetDef` with the same rules.

#![allow(dead_code)] // each test binary uses a part

use bytes::Bytes;
use netport_caffe2::proto::{Argument, NetDef, OperatorDef, TensorProto};
use netport_caffe2::{NetSummary, decode_netdef, netdef_to_text, parse_netdef_text};
use prost::Message;
use serde_json::{Map, Value, json};
use std::path::Path;

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Decodes `path`, checks that encoding gives back the same bytes, and
/// returns the net.
pub fn decode_and_reencode(path: &Path) -> NetDef {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let net = decode_netdef(Bytes::from(bytes.clone()), &path.display().to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let again = net.encode_to_vec();
    if again != bytes {
        let at = again
            .iter()
            .zip(&bytes)
            .position(|(a, b)| a != b)
            .unwrap_or(again.len().min(bytes.len()));
        panic!(
            "{}: re-encoding differs at byte {at} (ours {} bytes, file {} bytes)",
            path.display(),
            again.len(),
            bytes.len()
        );
    }
    net
}

/// Parses a `.pbtxt`, checks it is the binary `net`, and that printing
/// `net` as text gives the file's bytes (Python's `text_format` output).
pub fn check_text(path: &Path, net: &NetDef) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let parsed =
        parse_netdef_text(&text, &path.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&parsed, net, "{}: text and binary differ", path.display());
    assert_eq!(
        parsed.encode_to_vec(),
        net.encode_to_vec(),
        "{}",
        path.display()
    );
    let printed = netdef_to_text(net).unwrap();
    if printed != text {
        let line = printed
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .map_or(printed.lines().count().min(text.lines().count()), |i| i);
        panic!(
            "{}: our text differs from Python's at line {}: ours {:?}, file {:?}",
            path.display(),
            line + 1,
            printed.lines().nth(line),
            text.lines().nth(line)
        );
    }
}

/// Compares `net` (from a file of `size` bytes) with its `expected.json`
/// entry, field by field so that a failure names the field.
pub fn check_expected(what: &str, net: &NetDef, size: usize, expected: &Value) {
    let expected = expected
        .as_object()
        .unwrap_or_else(|| panic!("{what}: expected entry is not an object"));
    let mut ours = net_summary(net);
    ours.insert("ops".into(), Value::Array(ops_json(net)));
    ours.insert("size_bytes".into(), json!(size));
    for (key, want) in expected {
        let got = ours.get(key).unwrap_or(&Value::Null);
        assert_eq!(got, want, "{what}: `{key}` differs");
    }
    for key in ours.keys() {
        assert!(
            expected.contains_key(key),
            "{what}: expected.json has no `{key}`"
        );
    }
    check_fill_sizes(what, net);
}

/// Where the fill has as many values as its shape has elements (every real
/// fill), our byte count is the Python one (values times element size).
fn check_fill_sizes(what: &str, net: &NetDef) {
    for fill in NetSummary::of(net).fills {
        if let (Some(n), Some(values)) = (fill.element_count, fill.value_count)
            && n == values
        {
            let size = fill.tensor_dtype().map(|d| d.size_in_bytes() as u64);
            assert_eq!(
                fill.byte_count,
                size.map(|s| s * values),
                "{what}: bytes of fill {}",
                fill.output
            );
        }
    }
}

/// `netdef_pb.net_summary`, with the fills computed by our [`NetSummary`].
fn net_summary(net: &NetDef) -> Map<String, Value> {
    let mut s = Map::new();
    s.insert("name".into(), json!(net.name.clone().unwrap_or_default()));
    s.insert(
        "op_types".into(),
        json!(
            net.op
                .iter()
                .map(|o| o.r#type.clone().unwrap_or_default())
                .collect::<Vec<_>>()
        ),
    );
    s.insert("external_input".into(), json!(net.external_input));
    s.insert("external_output".into(), json!(net.external_output));
    s.insert("fills".into(), Value::Array(fills_json(net)));
    if let Some(d) = &net.device_option {
        s.insert(
            "device_option".into(),
            json!({
                "device_type": d.device_type.unwrap_or(0),
                "device_id": d.device_id.unwrap_or(0),
            }),
        );
    }
    s
}

/// `netdef_pb.fill_summary` for the ops whose type starts with "Given",
/// from our summary: the dtype by its torch name, and the byte count as
/// Python computes it (value count times element size).
fn fills_json(net: &NetDef) -> Vec<Value> {
    NetSummary::of(net)
        .fills
        .iter()
        .filter(|f| f.op_type.starts_with("Given"))
        .map(|f| {
            let dtype = f.tensor_dtype();
            let values = f.value_count.unwrap_or(0);
            json!({
                "output": f.output,
                "type": f.op_type,
                "shape": f.shape,
                "dtype": dtype.map(|d| d.torch_name()),
                "value_count": values,
                "byte_count": dtype.map_or(0, |d| d.size_in_bytes() as u64 * values),
            })
        })
        .collect()
}

/// `make_peers.op_summary` for the ops `make_peers.caffe2` lists.
fn ops_json(net: &NetDef) -> Vec<Value> {
    net.op
        .iter()
        .filter(|o| {
            let t = o.r#type.as_deref().unwrap_or("");
            !t.starts_with("GivenTensor")
                || o.arg
                    .iter()
                    .any(|a| !matches!(a.name.as_deref(), Some("values" | "shape")))
        })
        .map(op_json)
        .collect()
}

fn op_json(o: &OperatorDef) -> Value {
    let mut s = Map::new();
    s.insert("type".into(), json!(o.r#type.clone().unwrap_or_default()));
    s.insert("input".into(), json!(o.input));
    s.insert("output".into(), json!(o.output));
    s.insert(
        "args".into(),
        Value::Array(o.arg.iter().map(arg_json).collect()),
    );
    if let Some(name) = &o.name {
        s.insert("name".into(), json!(name));
    }
    if let Some(engine) = &o.engine {
        s.insert("engine".into(), json!(engine));
    }
    if let Some(d) = &o.device_option {
        s.insert(
            "device_option".into(),
            json!({
                "device_type": d.device_type.unwrap_or(0),
                "device_id": d.device_id.unwrap_or(0),
            }),
        );
    }
    Value::Object(s)
}

fn bytes_json(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => json!({ "utf8": s }),
        Err(_) => json!({ "hex": hex(b) }),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn tensor_json(t: &TensorProto) -> Value {
    let mut s = Map::new();
    s.insert("name".into(), json!(t.name.clone().unwrap_or_default()));
    s.insert("dims".into(), json!(t.dims));
    s.insert("data_type".into(), json!(t.data_type.unwrap_or(1)));
    if !t.float_data.is_empty() {
        let v: Vec<f64> = t.float_data.iter().map(|&x| f64::from(x)).collect();
        s.insert("float_data".into(), json!(v));
    }
    if !t.int32_data.is_empty() {
        s.insert("int32_data".into(), json!(t.int32_data));
    }
    if !t.int64_data.is_empty() {
        s.insert("int64_data".into(), json!(t.int64_data));
    }
    if !t.double_data.is_empty() {
        s.insert("double_data".into(), json!(t.double_data));
    }
    if let Some(raw) = &t.raw_data {
        s.insert("raw_data_hex".into(), json!(hex(raw)));
    }
    Value::Object(s)
}

fn arg_json(a: &Argument) -> Value {
    let mut s = Map::new();
    s.insert("name".into(), json!(a.name.clone().unwrap_or_default()));
    if let Some(f) = a.f {
        s.insert("f".into(), json!(f64::from(f)));
    }
    if let Some(i) = a.i {
        s.insert("i".into(), json!(i));
    }
    if let Some(v) = &a.s {
        s.insert("s".into(), bytes_json(v));
    }
    if let Some(t) = &a.t {
        s.insert("t".into(), tensor_json(t));
    }
    if let Some(n) = &a.n {
        s.insert("n".into(), Value::Object(net_summary(n)));
    }
    if !a.floats.is_empty() {
        let v: Vec<f64> = a.floats.iter().map(|&x| f64::from(x)).collect();
        s.insert("floats".into(), json!(v));
    }
    if !a.ints.is_empty() {
        s.insert("ints".into(), json!(a.ints));
    }
    if !a.strings.is_empty() {
        s.insert(
            "strings".into(),
            Value::Array(a.strings.iter().map(|b| bytes_json(b)).collect()),
        );
    }
    if !a.tensors.is_empty() {
        s.insert(
            "tensors".into(),
            Value::Array(a.tensors.iter().map(tensor_json).collect()),
        );
    }
    if !a.nets.is_empty() {
        s.insert(
            "nets".into(),
            Value::Array(
                a.nets
                    .iter()
                    .map(|n| Value::Object(net_summary(n)))
                    .collect(),
            ),
        );
    }
    Value::Object(s)
}

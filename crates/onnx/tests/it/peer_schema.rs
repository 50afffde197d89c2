//! Interop: our `proto/onnx.proto` and `proto/onnx-data.proto` declare the same
//! wire schema as the `.proto` files shipped in the installed onnx wheel
//! (`onnx-ml.proto`, which `onnx-data.proto` imports; in 1.23 it differs from
//! `onnx.proto` only in a comment).
//! Compares every message, field (name, number, type, label, packed, type
//! name, oneof) and enum value, after compiling both with protox.

use prost_types::{FieldDescriptorProto, FileDescriptorSet, field_descriptor_proto::Type};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Flattens a descriptor set into "Message.field" -> description lines.
fn schema_lines(fds: &FileDescriptorSet, files: &[&str]) -> BTreeMap<String, String> {
    fn field_line(f: &FieldDescriptorProto, oneof: Option<&str>) -> String {
        let packed = f.options.as_ref().and_then(|o| o.packed);
        format!(
            "#{} {:?} {:?} type_name={} packed={:?} oneof={:?} default={:?}",
            f.number(),
            f.label(),
            f.r#type(),
            if matches!(f.r#type(), Type::Message | Type::Enum) {
                f.type_name().trim_start_matches('.')
            } else {
                ""
            },
            packed,
            oneof,
            f.default_value
        )
    }
    fn walk(prefix: &str, msg: &prost_types::DescriptorProto, out: &mut BTreeMap<String, String>) {
        let name = format!("{prefix}{}", msg.name());
        for f in &msg.field {
            let oneof = f
                .oneof_index
                .filter(|_| !f.proto3_optional())
                .map(|i| msg.oneof_decl[i as usize].name());
            out.insert(format!("{name}.{}", f.name()), field_line(f, oneof));
        }
        for e in &msg.enum_type {
            for v in &e.value {
                out.insert(
                    format!("{name}.{}::{}", e.name(), v.name()),
                    v.number().to_string(),
                );
            }
        }
        for nested in &msg.nested_type {
            walk(&format!("{name}."), nested, out);
        }
    }
    let mut out = BTreeMap::new();
    for file in fds.file.iter().filter(|f| files.contains(&f.name())) {
        for m in &file.message_type {
            walk("", m, &mut out);
        }
        for e in &file.enum_type {
            for v in &e.value {
                out.insert(
                    format!("{}::{}", e.name(), v.name()),
                    v.number().to_string(),
                );
            }
        }
    }
    out
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn onnx_schema_matches_the_installed_onnx_wheel() {
    let python = crate::common::peer_python();
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            "import onnx, os; print(os.path.dirname(os.path.dirname(onnx.__file__)))",
        ])
        .output()
        .expect("run the venv python");
    assert!(out.status.success(), "python could not import onnx");
    let site = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());

    let upstream = protox::compile(["onnx/onnx-ml.proto", "onnx/onnx-data.proto"], [&site])
        .expect("compile the wheel's onnx.proto");
    let ours_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let ours = protox::compile(["onnx.proto", "onnx-data.proto"], [&ours_dir])
        .expect("compile proto/onnx.proto");

    let theirs = schema_lines(&upstream, &["onnx/onnx-ml.proto", "onnx/onnx-data.proto"]);
    let mine = schema_lines(&ours, &["onnx.proto", "onnx-data.proto"]);
    let mut problems = Vec::new();
    for (k, v) in &theirs {
        match mine.get(k) {
            None => problems.push(format!("missing in ours: {k} {v}")),
            Some(m) if m != v => problems.push(format!("differs: {k}: upstream {v}, ours {m}")),
            _ => {}
        }
    }
    for k in mine.keys().filter(|k| !theirs.contains_key(*k)) {
        problems.push(format!("only in ours: {k}"));
    }
    assert!(theirs.len() > 150, "suspiciously small upstream schema");
    assert!(
        problems.is_empty(),
        "schema differences:\n{}",
        problems.join("\n")
    );
}

//! Interop: the committed operator schema table says what the onnx package
//! of the peer venv says, for every (domain, op, since_version): arity,
//! formal parameters, type constraints, attributes with their types and
//! defaults, and the domains' opset ranges. The Python side here is written
//! independently of `cargo xtask schemas`' dump script, so a wrong generator
//! is caught.

use netport_onnx::schema::{self, AttrValue, OpSchema};
use std::collections::BTreeMap;

/// One line per schema, one per domain, in the format `line` below writes.
const LIST_SCHEMAS: &str = r#"
import struct, onnx, onnx.defs
A = onnx.AttributeProto
def f32(x):
    return str(struct.unpack("<I", struct.pack("<f", x))[0])
def default(a):
    d = a.default_value
    if d.type == 0: return "-"
    if d.type == A.FLOAT: return "f" + f32(d.f)
    if d.type == A.INT: return "i" + str(d.i)
    if d.type == A.STRING: return "s" + d.s.decode()
    if d.type == A.FLOATS: return "F" + "/".join(f32(x) for x in d.floats)
    if d.type == A.INTS: return "I" + "/".join(str(x) for x in d.ints)
    if d.type == A.STRINGS: return "S" + "/".join(x.decode() for x in d.strings)
    return "?" + str(d.type)
def params(ps):
    return ",".join(f"{p.name}:{p.option.name.lower()}:{p.min_arity}:{int(p.is_homogeneous)}:{p.type_str}" for p in ps)
for s in onnx.defs.get_all_schemas_with_history():
    print("\t".join([
        "schema", s.domain, s.name, str(s.since_version), str(int(s.deprecated)),
        s.support_level.name.lower(),
        f"{s.min_input}-{s.max_input}", f"{s.min_output}-{s.max_output}",
        params(s.inputs), params(s.outputs),
        ";".join(f"{c.type_param_str}=" + ",".join(c.allowed_type_strs) for c in s.type_constraints),
        ",".join(f"{n}:{int(a.type)}:{int(a.required)}:{default(a)}" for n, a in sorted(s.attributes.items())),
    ]))
for d, (lo, hi) in onnx.defs.C.schema_version_map().items():
    print(f"domain\t{d}\t{lo}\t{hi}")
"#;

fn line(s: &OpSchema) -> String {
    let params = |ps: &[schema::FormalParameter]| {
        ps.iter()
            .map(|p| {
                format!(
                    "{}:{}:{}:{}:{}",
                    p.name,
                    p.option.name(),
                    p.min_arity,
                    u8::from(p.is_homogeneous),
                    p.type_str
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let join = |parts: Vec<String>, sep: &str| parts.join(sep);
    let default = |d: &Option<AttrValue>| match d {
        None => "-".to_string(),
        Some(AttrValue::Float(x)) => format!("f{}", x.to_bits()),
        Some(AttrValue::Int(x)) => format!("i{x}"),
        Some(AttrValue::String(x)) => format!("s{x}"),
        Some(AttrValue::Floats(x)) => format!(
            "F{}",
            join(x.iter().map(|v| v.to_bits().to_string()).collect(), "/")
        ),
        Some(AttrValue::Ints(x)) => {
            format!("I{}", join(x.iter().map(|v| v.to_string()).collect(), "/"))
        }
        Some(AttrValue::Strings(x)) => format!("S{}", x.join("/")),
    };
    [
        "schema".to_string(),
        s.domain.to_string(),
        s.name.to_string(),
        s.since_version.to_string(),
        u8::from(s.deprecated).to_string(),
        s.support_level.name().to_string(),
        format!("{}-{}", s.min_input, s.max_input),
        format!("{}-{}", s.min_output, s.max_output),
        params(s.inputs),
        params(s.outputs),
        join(
            s.type_constraints
                .iter()
                .map(|c| format!("{}={}", c.name, c.allowed_types.join(",")))
                .collect(),
            ";",
        ),
        join(
            s.attributes
                .iter()
                .map(|a| {
                    format!(
                        "{}:{}:{}:{}",
                        a.name,
                        a.attr_type.as_i32(),
                        u8::from(a.required),
                        default(&a.default)
                    )
                })
                .collect(),
            ",",
        ),
    ]
    .join("\t")
}

/// Lines keyed by their first four fields (kind, domain, name, version).
fn keyed<'a>(lines: impl Iterator<Item = &'a str>) -> BTreeMap<String, String> {
    lines
        .map(|l| {
            let key = l.split('\t').take(4).collect::<Vec<_>>().join("\t");
            (key, l.to_string())
        })
        .collect()
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn the_table_matches_the_onnx_package() {
    let python = crate::common::peer_python();
    let out = std::process::Command::new(&python)
        .args(["-c", LIST_SCHEMAS])
        .output()
        .expect("run the peer python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let theirs = keyed(text.lines());

    let mut ours_text: Vec<String> = schema::all().iter().map(line).collect();
    for d in schema::domains() {
        ours_text.push(format!(
            "domain\t{}\t{}\t{}",
            d.name, d.min_version, d.max_version
        ));
    }
    let ours = keyed(ours_text.iter().map(String::as_str));

    let schemas = theirs.keys().filter(|k| k.starts_with("schema")).count();
    assert!(schemas > 600, "onnx lists only {schemas} schemas");
    let missing: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    let extra: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    let differ: Vec<_> = theirs
        .iter()
        .filter_map(|(k, v)| ours.get(k).filter(|o| *o != v).map(|o| (v, o)))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "not in our table: {missing:?}");
    assert!(extra.is_empty(), "not in onnx: {extra:?}");
    assert!(
        differ.is_empty(),
        "differ (onnx, ours):\n{}",
        differ
            .iter()
            .map(|(a, b)| format!("{a}\n{b}\n"))
            .collect::<String>()
    );
    assert_eq!(ours.len(), theirs.len());
}

//! `cargo xtask schemas [--check]`: dumps every operator schema the onnx
//! package of the peer venv registers (`dump_schemas.py`, embedded here, run
//! with the venv's Python) and writes them as the static Rust table
//! `crates/onnx/src/schema/generated.rs`, formatted by rustfmt. The table is
//! committed, so builds never need Python; `--check` regenerates it in memory
//! and fails when the committed file is stale.

use crate::util;
use crate::venv;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The committed table.
pub const TABLE: &str = "crates/onnx/src/schema/generated.rs";

/// The dump script: prints one JSON document of every schema on stdout.
const DUMP_SCRIPT: &str = include_str!("dump_schemas.py");

/// The Python that has the pinned onnx: `$NETPORT_PYTHON` when set (the peer
/// venv CI and the interop tests use), else the venv `cargo xtask venv` makes.
fn python(root: &Path) -> Result<PathBuf> {
    match std::env::var_os(crate::ci::PYTHON_ENV).filter(|v| !v.is_empty()) {
        Some(p) => Ok(PathBuf::from(p)),
        None => Ok(venv::ensure(root)?.python()),
    }
}

/// Runs the dump script and parses its JSON.
fn dump(root: &Path) -> Result<Value> {
    let python = python(root)?;
    let text = util::output(
        util::python_env(&mut Command::new(&python))
            .current_dir(root)
            .args(["-c", DUMP_SCRIPT]),
        &format!(
            "dumping the onnx operator schemas with {} (xtask/src/dump_schemas.py)",
            python.display()
        ),
    )?;
    serde_json::from_str(&text).context("parsing the JSON of xtask/src/dump_schemas.py")
}

fn field<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a Value> {
    v.get(key)
        .with_context(|| format!("{what}: no field `{key}` in the dump"))
}

fn str_field<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a str> {
    field(v, key, what)?
        .as_str()
        .with_context(|| format!("{what}: `{key}` is not a string"))
}

fn int_field(v: &Value, key: &str, what: &str) -> Result<i64> {
    field(v, key, what)?
        .as_i64()
        .with_context(|| format!("{what}: `{key}` is not an integer"))
}

fn bool_field(v: &Value, key: &str, what: &str) -> Result<bool> {
    field(v, key, what)?
        .as_bool()
        .with_context(|| format!("{what}: `{key}` is not a boolean"))
}

fn array_field<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a Vec<Value>> {
    field(v, key, what)?
        .as_array()
        .with_context(|| format!("{what}: `{key}` is not an array"))
}

/// A Rust string literal.
fn lit(s: &str) -> String {
    format!("{s:?}")
}

/// An `f32` literal for a float onnx stores as `f32`; the JSON double must be
/// exactly that `f32`, or the dump is not what we think it is.
fn f32_lit(v: &Value, what: &str) -> Result<String> {
    let x = v
        .as_f64()
        .with_context(|| format!("{what}: {v} is not a number"))?;
    let f = x as f32;
    if !f.is_finite() || f as f64 != x {
        bail!("{what}: {x} is not a finite f32");
    }
    // Debug prints the shortest text that reads back as the same f32.
    let text = format!("{f:?}");
    Ok(if text.contains(['.', 'e']) {
        text
    } else {
        format!("{text}.0")
    })
}

fn option_variant(name: &str, what: &str) -> Result<&'static str> {
    Ok(match name {
        "single" => "Single",
        "optional" => "Optional",
        "variadic" => "Variadic",
        other => bail!("{what}: unknown formal parameter option {other:?}"),
    })
}

fn attr_type_variant(name: &str, what: &str) -> Result<&'static str> {
    Ok(match name {
        "UNDEFINED" => "AttrType::Undefined",
        "FLOAT" => "AttrType::Float",
        "INT" => "AttrType::Int",
        "STRING" => "AttrType::String",
        "TENSOR" => "AttrType::Tensor",
        "GRAPH" => "AttrType::Graph",
        "FLOATS" => "AttrType::Floats",
        "INTS" => "AttrType::Ints",
        "STRINGS" => "AttrType::Strings",
        "TENSORS" => "AttrType::Tensors",
        "GRAPHS" => "AttrType::Graphs",
        "SPARSE_TENSOR" => "AttrType::SparseTensor",
        "SPARSE_TENSORS" => "AttrType::SparseTensors",
        "TYPE_PROTO" => "AttrType::TypeProto",
        "TYPE_PROTOS" => "AttrType::TypeProtos",
        other => bail!("{what}: unknown attribute type {other:?}"),
    })
}

fn default_value(d: &Value, what: &str) -> Result<String> {
    if d.is_null() {
        return Ok("None".into());
    }
    let kind = str_field(d, "type", what)?;
    let value = field(d, "value", what)?;
    let items = || {
        value
            .as_array()
            .with_context(|| format!("{what}: default {value} is not a list"))
    };
    let join = |parts: Vec<String>| parts.join(", ");
    let rust = match kind {
        "FLOAT" => format!("AttrValue::Float({})", f32_lit(value, what)?),
        "INT" => format!(
            "AttrValue::Int({})",
            value
                .as_i64()
                .with_context(|| format!("{what}: default {value} is not an integer"))?
        ),
        "STRING" => format!(
            "AttrValue::String({})",
            lit(value
                .as_str()
                .with_context(|| format!("{what}: default {value} is not a string"))?)
        ),
        "FLOATS" => format!(
            "AttrValue::Floats(&[{}])",
            join(
                items()?
                    .iter()
                    .map(|x| f32_lit(x, what))
                    .collect::<Result<_>>()?
            )
        ),
        "INTS" => format!(
            "AttrValue::Ints(&[{}])",
            join(
                items()?
                    .iter()
                    .map(|x| {
                        x.as_i64()
                            .map(|i| i.to_string())
                            .with_context(|| format!("{what}: {x} is not an integer"))
                    })
                    .collect::<Result<_>>()?
            )
        ),
        "STRINGS" => format!(
            "AttrValue::Strings(&[{}])",
            join(
                items()?
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(lit)
                            .with_context(|| format!("{what}: {x} is not a string"))
                    })
                    .collect::<Result<_>>()?
            )
        ),
        other => bail!("{what}: a default of type {other} has no AttrValue variant"),
    };
    Ok(format!("Some({rust})"))
}

fn parameters(
    list: &[Value],
    what: &str,
    used: &mut BTreeSet<&'static str>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for p in list {
        let name = str_field(p, "name", what)?;
        let what = format!("{what} parameter {name}");
        let what = what.as_str();
        let option = option_variant(str_field(p, "option", what)?, what)?;
        used.insert(option);
        out.push(format!(
            "param({}, {}, {}, {}, {})",
            lit(name),
            option,
            bool_field(p, "is_homogeneous", what)?,
            usize::try_from(int_field(p, "min_arity", what)?)
                .with_context(|| format!("{what}: negative min_arity"))?,
            lit(str_field(p, "type_str", what)?),
        ));
    }
    Ok(out)
}

/// `    {field}: &[...],` on one line when it fits in 100 columns, else one
/// item per line.
fn list_field(out: &mut String, field: &str, items: &[String]) {
    let one_line = format!("        {field}: &[{}],", items.join(", "));
    if one_line.len() <= 100 {
        out.push_str(&one_line);
        out.push('\n');
        return;
    }
    let _ = writeln!(out, "        {field}: &[");
    for item in items {
        let _ = writeln!(out, "            {item},");
    }
    out.push_str("        ],\n");
}

/// Renders the dump as Rust (not yet formatted).
fn render(dump: &Value) -> Result<String> {
    let onnx_version = str_field(dump, "onnx_version", "the dump")?;
    let mut body = String::new();
    let _ = writeln!(
        body,
        "// @generated by `cargo xtask schemas` from onnx {onnx_version} \
         (`onnx.defs.get_all_schemas_with_history()`, xtask/src/dump_schemas.py). \
         Do not edit: run `cargo xtask schemas`."
    );
    // The imports, filled in once the table says which names it uses.
    body.push_str("\n{IMPORTS}\n");
    let _ = writeln!(
        body,
        "/// The onnx version the table was generated from.\n\
         pub(super) const ONNX_VERSION: &str = {};\n",
        lit(onnx_version)
    );

    body.push_str("/// Every domain onnx registers, sorted by name.\n");
    body.push_str("pub(super) static DOMAINS: &[DomainInfo] = &[\n");
    let mut domains: Vec<(String, i64, i64)> = Vec::new();
    for d in array_field(dump, "domains", "the dump")? {
        let name = str_field(d, "domain", "a domain")?;
        let what = format!("domain {name:?}");
        domains.push((
            name.to_string(),
            int_field(d, "min_version", &what)?,
            int_field(d, "max_version", &what)?,
        ));
    }
    domains.sort();
    for (name, min, max) in &domains {
        let _ = writeln!(
            body,
            "DomainInfo {{ name: {}, min_version: {min}, max_version: {max} }},",
            lit(name)
        );
    }
    body.push_str("];\n\n");

    // Lists of allowed types repeat across schemas: each distinct list is one
    // constant, numbered in order of first use.
    let mut used: BTreeSet<&'static str> = BTreeSet::from(["DomainInfo", "OpSchema", "param"]);
    let mut type_lists: Vec<String> = Vec::new();
    let mut type_list_ids: HashMap<String, usize> = HashMap::new();
    let mut schemas = String::new();
    let mut keys = Vec::new();
    let list = array_field(dump, "schemas", "the dump")?;
    let mut sorted: Vec<&Value> = list.iter().collect();
    let key_of = |s: &Value| -> Result<(String, String, i64)> {
        Ok((
            str_field(s, "domain", "a schema")?.to_string(),
            str_field(s, "name", "a schema")?.to_string(),
            int_field(s, "since_version", "a schema")?,
        ))
    };
    for s in &sorted {
        keys.push(key_of(s)?);
    }
    let mut order: Vec<usize> = (0..sorted.len()).collect();
    order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
    sorted = order.iter().map(|i| sorted[*i]).collect();
    for pair in order.windows(2) {
        if keys[pair[0]] == keys[pair[1]] {
            bail!("the dump has two schemas {:?}", keys[pair[0]]);
        }
    }
    for s in sorted {
        let (domain, name, since) = key_of(s)?;
        let what = format!("{domain}::{name}-{since}");
        let what = what.as_str();
        let support = match str_field(s, "support_level", what)? {
            "common" => "Common",
            "experimental" => "Experimental",
            other => bail!("{what}: unknown support level {other:?}"),
        };
        used.insert(support);
        let count = |key: &str| -> Result<usize> {
            usize::try_from(int_field(s, key, what)?)
                .with_context(|| format!("{what}: negative {key}"))
        };
        let mut constraints = Vec::new();
        for c in array_field(s, "type_constraints", what)? {
            let types = array_field(c, "allowed_types", what)?
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(lit)
                        .with_context(|| format!("{what}: allowed type {t} is not a string"))
                })
                .collect::<Result<Vec<_>>>()?
                .join(", ");
            let next = type_lists.len();
            let id = *type_list_ids.entry(types.clone()).or_insert_with(|| {
                type_lists.push(types);
                next
            });
            used.insert("constraint");
            constraints.push(format!(
                "constraint({}, TYPES_{id})",
                lit(str_field(c, "name", what)?)
            ));
        }
        let mut attributes = Vec::new();
        for a in array_field(s, "attributes", what)? {
            let attr = str_field(a, "name", what)?;
            let what = format!("{what} attribute {attr}");
            let what = what.as_str();
            let default = default_value(field(a, "default", what)?, what)?;
            used.extend(["attr", "AttrType"]);
            if default != "None" {
                used.insert("AttrValue");
            }
            attributes.push(format!(
                "attr({}, {}, {}, {})",
                lit(attr),
                attr_type_variant(str_field(a, "type", what)?, what)?,
                bool_field(a, "required", what)?,
                default,
            ));
        }
        let _ = writeln!(
            schemas,
            "    OpSchema {{\n        \
             name: {}, domain: {}, since_version: {since}, deprecated: {}, support_level: {support},\n        \
             min_input: {}, max_input: {}, min_output: {}, max_output: {},",
            lit(&name),
            lit(&domain),
            bool_field(s, "deprecated", what)?,
            count("min_input")?,
            count("max_input")?,
            count("min_output")?,
            count("max_output")?,
        );
        list_field(
            &mut schemas,
            "inputs",
            &parameters(array_field(s, "inputs", what)?, what, &mut used)?,
        );
        list_field(
            &mut schemas,
            "outputs",
            &parameters(array_field(s, "outputs", what)?, what, &mut used)?,
        );
        list_field(&mut schemas, "type_constraints", &constraints);
        list_field(&mut schemas, "attributes", &attributes);
        schemas.push_str("    },\n");
    }

    // rustfmt would give every field of every item its own line (~37,000
    // lines); the table keeps one line per item instead.
    body.push_str(
        "/// Every schema version, sorted by domain, name and since_version.\n\
         #[rustfmt::skip]\n\
         pub(super) static SCHEMAS: &[OpSchema] = &[\n",
    );
    body.push_str(&schemas);
    body.push_str("];\n");
    for (id, types) in type_lists.iter().enumerate() {
        let _ = writeln!(body, "\nconst TYPES_{id}: &[&str] = &[{types}];");
    }
    let imports = |from: &str, names: &[&str]| {
        let names: Vec<&str> = names.iter().copied().filter(|n| used.contains(n)).collect();
        match names.as_slice() {
            [] => String::new(),
            [one] => format!("use {from}::{one};\n"),
            _ => format!("use {from}::{{{}}};\n", names.join(", ")),
        }
    };
    let imports = [
        imports(
            "super::FormalParameterOption",
            &["Optional", "Single", "Variadic"],
        ),
        imports("super::SupportLevel", &["Common", "Experimental"]),
        imports(
            "super",
            &[
                "AttrType",
                "AttrValue",
                "DomainInfo",
                "OpSchema",
                "attr",
                "constraint",
                "param",
            ],
        ),
    ]
    .concat();
    Ok(body.replacen("{IMPORTS}", &imports, 1))
}

/// Formats Rust source with rustfmt (edition 2024 style, as `cargo fmt`).
fn rustfmt(source: &str) -> Result<String> {
    let program = std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into());
    let mut child = Command::new(&program)
        .args(["--edition", "2024", "--emit", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", program.to_string_lossy()))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let source = source.to_owned();
    // Written from a thread: rustfmt may fill its stdout before reading all.
    let writer = std::thread::spawn(move || stdin.write_all(source.as_bytes()));
    let out = child.wait_with_output().context("waiting for rustfmt")?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("the thread writing to rustfmt panicked"))?
        .context("writing to rustfmt")?;
    if !out.status.success() {
        bail!("rustfmt failed on the generated table ({})", out.status);
    }
    String::from_utf8(out.stdout).context("rustfmt printed non-UTF-8")
}

/// The table's path and its expected contents.
fn generate(root: &Path) -> Result<(PathBuf, Vec<u8>)> {
    let dump = dump(root)?;
    let rust = rustfmt(&render(&dump)?)?;
    Ok((root.join(TABLE), rust.into_bytes()))
}

pub fn run(root: &Path, check: bool) -> Result<()> {
    let output = generate(root)?;
    util::sync_generated(
        root,
        &[output],
        check,
        "the onnx operator schema table",
        "cargo xtask schemas",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(name: &str, since: i64, attributes: Value) -> Value {
        json!({
            "name": name, "domain": "", "since_version": since, "deprecated": false,
            "support_level": "common", "min_input": 1, "max_input": 2,
            "min_output": 1, "max_output": 1,
            "inputs": [
                {"name": "X", "option": "single", "is_homogeneous": true, "min_arity": 1, "type_str": "T"},
                {"name": "B", "option": "optional", "is_homogeneous": true, "min_arity": 1, "type_str": "tensor(int64)"}
            ],
            "outputs": [{"name": "Y", "option": "single", "is_homogeneous": true, "min_arity": 1, "type_str": "T"}],
            "type_constraints": [{"name": "T", "allowed_types": ["tensor(float)", "tensor(double)"]}],
            "attributes": attributes,
        })
    }

    fn dump(schemas: Vec<Value>) -> Value {
        json!({
            "onnx_version": "9.9.9",
            "domains": [{"domain": "", "min_version": 1, "max_version": 3}],
            "schemas": schemas,
        })
    }

    #[test]
    fn floats_are_written_exactly_or_refused() {
        assert_eq!(f32_lit(&json!(1e-5f32 as f64), "t").unwrap(), "1e-5");
        assert_eq!(f32_lit(&json!(1.0), "t").unwrap(), "1.0");
        assert_eq!(f32_lit(&json!(-0.75), "t").unwrap(), "-0.75");
        assert_eq!(
            f32_lit(&json!(f32::MAX as f64), "t").unwrap(),
            "3.4028235e38"
        );
        // 0.1 as a double is no f32: the dump would not be what onnx stores.
        assert!(f32_lit(&json!(0.1), "t").is_err());
        assert!(f32_lit(&json!("1"), "t").is_err());
    }

    #[test]
    fn the_table_is_sorted_with_only_the_imports_it_uses() {
        let attrs = json!([
            {"name": "mode", "type": "STRING", "required": false,
             "default": {"type": "STRING", "value": "nearest"}},
            {"name": "scales", "type": "FLOATS", "required": false,
             "default": {"type": "FLOATS", "value": [0.5, 2.0]}},
            {"name": "to", "type": "INT", "required": true, "default": null}
        ]);
        let rust = render(&dump(vec![
            schema("Op", 3, attrs),
            schema("Op", 1, json!([])),
        ]))
        .unwrap();
        assert!(rust.starts_with("// @generated by `cargo xtask schemas` from onnx 9.9.9"));
        let v1 = rust.find("since_version: 1,").unwrap();
        let v3 = rust.find("since_version: 3,").unwrap();
        assert!(v1 < v3, "{rust}");
        assert!(rust.contains(
            r#"inputs: &[param("X", Single, true, 1, "T"), param("B", Optional, true, 1, "tensor(int64)")],"#
        ), "{rust}");
        assert!(rust.contains(
            r#"attr("mode", AttrType::String, false, Some(AttrValue::String("nearest"))),"#
        ));
        assert!(rust.contains(
            r#"attr("scales", AttrType::Floats, false, Some(AttrValue::Floats(&[0.5, 2.0]))),"#
        ));
        assert!(rust.contains(r#"attr("to", AttrType::Int, true, None),"#));
        // One list of allowed types for both versions.
        assert_eq!(rust.matches("const TYPES_").count(), 1, "{rust}");
        assert!(rust.contains("use super::FormalParameterOption::{Optional, Single};\n"));
        assert!(rust.contains("use super::SupportLevel::Common;\n"));
        assert!(!rust.contains("Variadic") && !rust.contains("Experimental"));
    }

    #[test]
    fn broken_dumps_are_refused_with_what_is_wrong() {
        let twice = render(&dump(vec![
            schema("Op", 1, json!([])),
            schema("Op", 1, json!([])),
        ]));
        assert!(format!("{:#}", twice.unwrap_err()).contains("two schemas"));
        let tensor_default = json!([{"name": "value", "type": "TENSOR", "required": false,
            "default": {"type": "TENSOR", "value": null}}]);
        let err = render(&dump(vec![schema("Op", 1, tensor_default)])).unwrap_err();
        assert!(
            format!("{err:#}").contains("::Op-1 attribute value: a default of type TENSOR"),
            "{err:#}"
        );
        let mut bad = schema("Op", 1, json!([]));
        bad["inputs"][0]["option"] = json!("sometimes");
        let err = render(&dump(vec![bad])).unwrap_err();
        assert!(format!("{err:#}").contains("\"sometimes\""), "{err:#}");
    }
}

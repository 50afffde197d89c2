//! The committed operator schema table (`netport_onnx::schema`): facts of the
//! ONNX spec looked up through the API, and invariants of the whole table.

use netport_onnx::schema::{
    self, AttrType, AttrValue, FormalParameterOption, OpSchema, SupportLevel, UNBOUNDED,
};

fn names(list: &[impl AsRef<str>]) -> Vec<&str> {
    list.iter().map(AsRef::as_ref).collect()
}

fn param_names(schema: &OpSchema, inputs: bool) -> Vec<&'static str> {
    let params = if inputs {
        schema.inputs
    } else {
        schema.outputs
    };
    params.iter().map(|p| p.name).collect()
}

#[test]
fn conv_at_opset_11() {
    let conv = schema::lookup("", "Conv", 11).expect("Conv at opset 11");
    assert_eq!(
        (conv.name, conv.domain, conv.since_version),
        ("Conv", "", 11)
    );
    assert!(!conv.deprecated);
    assert_eq!(conv.support_level, SupportLevel::Common);
    assert_eq!(param_names(conv, true), ["X", "W", "B"]);
    let options: Vec<_> = conv.inputs.iter().map(|p| p.option).collect();
    assert_eq!(
        options,
        [
            FormalParameterOption::Single,
            FormalParameterOption::Single,
            FormalParameterOption::Optional
        ]
    );
    assert!(conv.inputs.iter().all(|p| p.type_str == "T"));
    assert_eq!(param_names(conv, false), ["Y"]);
    assert_eq!(
        (
            conv.min_input,
            conv.max_input,
            conv.min_output,
            conv.max_output
        ),
        (2, 3, 1, 1)
    );
    let t = conv.type_constraint("T").expect("constraint T");
    assert_eq!(
        names(t.allowed_types),
        ["tensor(float16)", "tensor(float)", "tensor(double)"]
    );
    let attrs: Vec<_> = conv
        .attributes
        .iter()
        .map(|a| (a.name, a.attr_type, a.required, a.default))
        .collect();
    assert_eq!(
        attrs,
        [
            (
                "auto_pad",
                AttrType::String,
                false,
                Some(AttrValue::String("NOTSET"))
            ),
            ("dilations", AttrType::Ints, false, None),
            ("group", AttrType::Int, false, Some(AttrValue::Int(1))),
            ("kernel_shape", AttrType::Ints, false, None),
            ("pads", AttrType::Ints, false, None),
            ("strides", AttrType::Ints, false, None),
        ]
    );
    assert_eq!(
        conv.attribute("group").map(|a| a.attr_type),
        Some(AttrType::Int)
    );
    assert!(conv.attribute("groups").is_none());
    // Opsets 11 to 21 all resolve to the version 11 schema; 22 changed it.
    assert_eq!(schema::lookup("", "Conv", 21), Some(conv));
    assert_eq!(schema::lookup("", "Conv", 22).unwrap().since_version, 22);
    assert_eq!(schema::lookup("", "Conv", 10).unwrap().since_version, 1);
}

#[test]
fn ops_are_found_only_from_the_opset_that_introduced_them() {
    assert!(schema::lookup("", "Gelu", 19).is_none());
    assert_eq!(schema::lookup("", "Gelu", 20).unwrap().since_version, 20);
    assert!(schema::lookup("", "LayerNormalization", 16).is_none());
    let ln = schema::lookup("", "LayerNormalization", 17).unwrap();
    assert_eq!(ln.since_version, 17);
    assert_eq!(
        ln.attribute("epsilon").and_then(|a| a.default),
        Some(AttrValue::Float(1e-5))
    );
    assert!(schema::lookup("", "NoSuchOp", 28).is_none());
    // The registry matches domains exactly, as onnx's does.
    assert!(schema::lookup("ai.onnx", "Conv", 11).is_none());
    assert!(schema::lookup("ai.onnx.ml", "Conv", 5).is_none());
    assert_eq!(
        schema::lookup("ai.onnx.ml", "LinearRegressor", 1).map(|s| s.domain),
        Some("ai.onnx.ml")
    );
}

#[test]
fn resize_history() {
    let versions: Vec<i64> = schema::history("", "Resize")
        .iter()
        .map(|s| s.since_version)
        .collect();
    assert_eq!(versions, [10, 11, 13, 18, 19]);
    for opset in 10..=28 {
        let s = schema::lookup("", "Resize", opset).unwrap();
        let expected = versions.iter().rev().find(|v| **v <= opset).unwrap();
        assert_eq!(s.since_version, *expected, "Resize at opset {opset}");
    }
    // Resize-11 added roi and sizes to the scales of Resize-10.
    assert_eq!(
        param_names(schema::lookup("", "Resize", 10).unwrap(), true),
        ["X", "scales"]
    );
    assert_eq!(
        param_names(schema::lookup("", "Resize", 11).unwrap(), true),
        ["X", "roi", "scales", "sizes"]
    );
    assert!(schema::history("", "NoSuchOp").is_empty());
}

#[test]
fn deprecated_schemas_are_returned_and_marked() {
    let upsample = schema::lookup("", "Upsample", 13).unwrap();
    assert_eq!(upsample.since_version, 10);
    assert!(upsample.deprecated);
    assert!(!schema::lookup("", "Upsample", 9).unwrap().deprecated);
}

#[test]
fn variadic_parameters_and_unbounded_counts() {
    let sum = schema::lookup("", "Sum", 13).unwrap();
    assert_eq!(sum.inputs.len(), 1);
    assert_eq!(sum.inputs[0].option, FormalParameterOption::Variadic);
    assert_eq!(sum.inputs[0].min_arity, 1);
    assert_eq!((sum.min_input, sum.max_input), (1, UNBOUNDED));
    let lp = schema::lookup("", "Loop", 21).unwrap();
    let v = lp.inputs.last().unwrap();
    assert_eq!(
        (v.name, v.option, v.min_arity, v.is_homogeneous),
        ("v_initial", FormalParameterOption::Variadic, 0, false)
    );
    let body = lp.attribute("body").unwrap();
    assert_eq!((body.attr_type, body.required), (AttrType::Graph, true));
}

#[test]
fn every_schema_is_within_its_domains_opsets_and_consistent() {
    assert_eq!(schema::ONNX_VERSION, "1.23.2");
    let default = schema::domain("").expect("the ai.onnx domain");
    assert_eq!(default.max_version, 28);
    assert!(schema::domain("ai.onnx.preview.training").is_some());
    assert!(schema::all().len() > 600, "{}", schema::all().len());
    for s in schema::all() {
        let what = format!("{}::{}-{}", s.domain, s.name, s.since_version);
        let d = schema::domain(s.domain).unwrap_or_else(|| panic!("{what}: unknown domain"));
        assert!(
            (d.min_version..=d.max_version).contains(&s.since_version),
            "{what}: outside opsets {}..={}",
            d.min_version,
            d.max_version
        );
        assert!(
            s.min_input <= s.max_input && s.min_output <= s.max_output,
            "{what}"
        );
        for p in s.inputs.iter().chain(s.outputs) {
            assert!(
                !s.allowed_types(p).is_empty(),
                "{what}: {} has no types",
                p.name
            );
        }
        for a in s.attributes {
            if let Some(d) = a.default {
                assert_eq!(d.attr_type(), a.attr_type, "{what}: default of {}", a.name);
                assert!(!a.required, "{what}: required {} has a default", a.name);
            }
        }
    }
    for d in schema::domains() {
        for op in schema::ops(d.name) {
            assert!(!schema::history(d.name, op).is_empty(), "{op}");
        }
    }
    let ml: Vec<_> = schema::ops("ai.onnx.ml").collect();
    assert!(ml.contains(&"TreeEnsembleClassifier"), "{ml:?}");
    let mut sorted = ml.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ml, sorted);
    assert_eq!(schema::ops("no.such.domain").count(), 0);
}

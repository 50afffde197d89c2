//! The checker against onnx.checker: every case of the mutation corpus in
//! testdata/onnx/check/ (written by testdata/onnx/make_check_cases.py with
//! onnx 1.23.2) gets the verdict onnx gave it, and for each invalid case one
//! of the rules we report is the one onnx's message names.

use netport_onnx::check::{CheckOptions, Diagnostic, Rule, check_model};
use netport_onnx::load_model;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// For each rule id, substrings of the onnx.checker messages that mean it.
const ONNX_MESSAGES: &[(&str, &[&str])] = &[
    ("ir-version-missing", &["does not have an ir_version set"]),
    ("ir-version-unknown", &["is higher than the checker's"]),
    (
        "metadata-duplicate-key",
        &["duplicate keys in metadata_props"],
    ),
    ("opset-import-missing", &["must specify opset_import"]),
    (
        "opset-import-forbidden",
        &["cannot have opset_import specified"],
    ),
    ("graph-name-empty", &["Field 'name' of 'graph'"]),
    (
        "value-info-type-missing",
        &[
            "Field 'type' of 'value_info'",
            "Field 'shape' of 'type'",
            "Field 'elem_type' of 'type'",
        ],
    ),
    (
        "graph-input-duplicate",
        &["used as graph input names multiple times"],
    ),
    (
        "initializer-name-empty",
        &["initializers must have a non-empty name"],
    ),
    (
        "initializer-duplicate",
        &[
            "initializer name is not unique",
            "sparse initializer name is not unique",
        ],
    ),
    (
        "initializer-not-input",
        &["in initializer but not in graph input"],
    ),
    (
        "node-input-undefined",
        &[
            "Nodes in a graph must be topologically sorted",
            "Nodes in a function must be topologically sorted",
        ],
    ),
    (
        "ssa-violation",
        &["has been used as output names multiple times"],
    ),
    (
        "graph-output-undefined",
        &["is not an output of any node in graph"],
    ),
    ("node-no-io", &["has zero input and zero output"]),
    ("domain-not-imported", &["No opset import for domain"]),
    ("op-unknown", &["No Op registered for"]),
    ("op-deprecated", &["is deprecated in domain_version"]),
    (
        "arity",
        &[
            "not in range [min=",
            "is marked single but has an empty string",
            "than declared",
        ],
    ),
    ("attribute-duplicate", &["appeared multiple times"]),
    (
        "attribute-malformed",
        &[
            "type field and data field mismatch",
            "should not contain more than one value field",
            "Field 'type' of 'attr'",
        ],
    ),
    ("attribute-unknown", &["Unrecognized attribute"]),
    ("attribute-type", &["Mismatched attribute type"]),
    ("attribute-required", &["Required attribute"]),
    ("tensor-data-type", &["to UNDEFINED is not allowed"]),
    ("tensor-dims", &["Negative dimension value"]),
    (
        "tensor-value-fields",
        &[
            "one and only one value field",
            "is 0-element but contains data",
        ],
    ),
    (
        "tensor-field",
        &[
            "should be stored in field",
            "should not be stored in raw_data field",
        ],
    ),
    ("tensor-size", &["is too small for the declared shape"]),
    (
        "external-data",
        &[
            "is stored externally",
            "should be a relative path",
            "should be file inside",
            "but it is not regular file",
            "resolves outside model directory",
        ],
    ),
    (
        "function-malformed",
        &["Field 'domain' of 'function'", "Field 'name' of 'function'"],
    ),
    (
        "function-duplicate",
        &["multiple local functions with the same implementation id"],
    ),
    (
        "function-recursive",
        &["Cycle detected in model-local function references"],
    ),
    (
        "function-opset-incompatible",
        &["is not compatible with the version imported by model"],
    ),
    ("sparse-tensor", &["Sparse tensor"]),
];

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/onnx/check")
}

fn check_file(path: &Path) -> Vec<Diagnostic> {
    let model = load_model(path).unwrap_or_else(|e| panic!("{e}"));
    check_model(&model, &CheckOptions::for_model(path))
}

fn describe(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_rule_id_in_the_table_exists() {
    for (id, _) in ONNX_MESSAGES.iter().chain(ONNX_FULL_MESSAGES) {
        assert!(Rule::from_id(id).is_some(), "unknown rule id {id}");
    }
    for rule in Rule::ALL {
        assert_eq!(Rule::from_id(rule.id()), Some(*rule));
    }
}

#[test]
fn mutation_corpus_verdicts_and_rules_match_onnx_checker() {
    let dir = corpus_dir();
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut kinds = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for case in cases {
        let file = case["file"].as_str().unwrap();
        kinds.insert(case["kind"].as_str().unwrap());
        let onnx_valid = case["onnx_valid"].as_bool().unwrap();
        let diagnostics = check_file(&dir.join(file));
        let errors: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.is_error()).collect();
        if errors.is_empty() != onnx_valid {
            failures.push(format!(
                "{file}: onnx says {}, we say {}:\n{}",
                if onnx_valid { "valid" } else { "invalid" },
                if errors.is_empty() {
                    "valid"
                } else {
                    "invalid"
                },
                describe(&diagnostics)
            ));
            continue;
        }
        if onnx_valid {
            continue;
        }
        let message = case["onnx_message"].as_str().unwrap();
        let named = errors.iter().any(|d| {
            ONNX_MESSAGES
                .iter()
                .filter(|(id, _)| *id == d.rule.id())
                .any(|(_, needles)| needles.iter().any(|n| message.contains(n)))
        });
        if !named {
            failures.push(format!(
                "{file}: onnx says {message:?}; none of our rules matches it:\n{}",
                describe(&diagnostics)
            ));
        }
    }
    assert!(kinds.len() >= 20, "only {} kinds of breakage", kinds.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with onnx.checker:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_problem_is_reported_in_a_stable_order() {
    // Two independent breakages in one model: onnx stops at the first, we
    // report both, with the node they are about.
    let path = corpus_dir().join("mlp__valid.onnx");
    let mut model = load_model(&path).unwrap();
    let graph = model.graph.as_mut().unwrap();
    graph.node[1].input[0] = "nowhere".into();
    graph.node[3].op_type = Some("NoSuchOp".into());
    let options = CheckOptions::for_model(&path);
    let first = check_model(&model, &options);
    assert_eq!(first, check_model(&model, &options));
    let rules: Vec<(&str, Option<usize>)> =
        first.iter().map(|d| (d.rule.id(), d.node_index)).collect();
    assert!(
        rules.contains(&("node-input-undefined", Some(1))),
        "{rules:?}"
    );
    assert!(rules.contains(&("op-unknown", Some(3))), "{rules:?}");
    let unknown = first.iter().find(|d| d.rule == Rule::OpUnknown).unwrap();
    assert_eq!(unknown.node_name.as_deref(), Some("softmax"));
    assert_eq!(unknown.op_type.as_deref(), Some("NoSuchOp"));
}

#[test]
fn accepted_oddities_are_warnings() {
    let dir = corpus_dir();
    for (file, rule) in [
        (
            "mlp__ir_version_too_old_for_opset.onnx",
            Rule::IrVersionTooOld,
        ),
        (
            "cnn__duplicate_opset_import.onnx",
            Rule::OpsetImportDuplicate,
        ),
        (
            "if__external_past_end_of_file.onnx",
            Rule::ExternalDataRange,
        ),
        ("mlp__experimental_op.onnx", Rule::OpExperimental),
    ] {
        let diagnostics = check_file(&dir.join(file));
        assert!(
            diagnostics.iter().any(|d| d.rule == rule && !d.is_error()),
            "{file}: no {} warning:\n{}",
            rule.id(),
            describe(&diagnostics)
        );
        assert!(diagnostics.iter().all(|d| !d.is_error()), "{file}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// Whatever a corrupted model decodes to, checking it reports problems
    /// and never panics.
    #[test]
    fn corrupted_models_never_panic(
        flips in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..8),
        base in 0usize..3,
    ) {
        let file = ["mlp__valid.onnx", "cnn__valid.onnx", "if__valid.onnx"][base];
        let path = corpus_dir().join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        for (at, value) in flips {
            let n = bytes.len();
            bytes[at % n] = value;
        }
        if let Ok(model) = netport_onnx::decode_model(bytes.into(), file) {
            let _ = check_model(&model, &CheckOptions::for_model(&path));
        }
    }
}

#[test]
fn committed_fixtures_are_valid() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/onnx");
    for rel in ["tiny_cnn.onnx", "tiny_cnn_external/tiny_cnn.onnx"] {
        let diagnostics = check_file(&root.join(rel));
        assert!(diagnostics.is_empty(), "{rel}:\n{}", describe(&diagnostics));
    }
}

/// For each inference rule id, substrings of the messages
/// `onnx.checker.check_model(path, full_check=True)` gives for the breakages
/// only strict inference finds.
const ONNX_FULL_MESSAGES: &[(&str, &[&str])] = &[
    (
        "inference-type-constraint",
        &["has inconsistent type", "has unsupported type"],
    ),
    (
        "inference-shape-clash",
        &["Inferred shape and existing shape differ"],
    ),
    (
        "inference-type-clash",
        &[
            "Inferred elem type differs from existing elem type",
            "Invalid tensor data type",
            "Mismatched tensor element type",
        ],
    ),
];

/// Cases where `check --shapes` and onnx's `full_check=True` disagree, with
/// the reason; their count is recorded in docs/formats/onnx.md.
const FULL_CHECK_KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

#[test]
fn mutation_corpus_verdicts_match_onnx_full_check() {
    let dir = corpus_dir();
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let cases = expected["cases"].as_array().unwrap();
    let full_only = cases
        .iter()
        .filter(|c| c["onnx_valid"] == true && c["onnx_full_valid"] == false)
        .count();
    assert!(full_only >= 10, "only {full_only} full_check-only cases");
    let mut failures = Vec::new();
    let mut known = 0;
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let full_valid = case["onnx_full_valid"].as_bool().unwrap();
        let path = dir.join(file);
        let model = load_model(&path).unwrap();
        let mut diagnostics = check_model(&model, &CheckOptions::for_model(&path));
        diagnostics.extend(netport_onnx::shapes::infer_shapes(&model).diagnostics);
        let errors: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.is_error()).collect();
        let mut problem = None;
        if errors.is_empty() != full_valid {
            problem = Some(format!(
                "{file}: onnx full_check says {}, we say {}:\n{}",
                if full_valid { "valid" } else { "invalid" },
                if errors.is_empty() {
                    "valid"
                } else {
                    "invalid"
                },
                describe(&diagnostics)
            ));
        } else if !full_valid && case["onnx_valid"] == true {
            let message = case["onnx_full_message"].as_str().unwrap();
            let named = errors.iter().any(|d| {
                ONNX_FULL_MESSAGES
                    .iter()
                    .filter(|(id, _)| *id == d.rule.id())
                    .any(|(_, needles)| needles.iter().any(|n| message.contains(n)))
            });
            if !named {
                problem = Some(format!(
                    "{file}: onnx full_check says {message:?}; none of our rules matches it:\n{}",
                    describe(&diagnostics)
                ));
            }
        }
        let listed = FULL_CHECK_KNOWN_DIFFERENCES.iter().any(|(f, _)| *f == file);
        match (problem, listed) {
            (Some(_), true) => known += 1,
            (Some(p), false) => failures.push(p),
            (None, true) => failures.push(format!(
                "{file} is listed as a known difference but agrees with onnx now"
            )),
            (None, false) => {}
        }
    }
    assert_eq!(known, FULL_CHECK_KNOWN_DIFFERENCES.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with onnx.checker(full_check=True):\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

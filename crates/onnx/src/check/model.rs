//! Model-level rules: IR version, metadata keys, opset imports, and the IR
//! version each ai.onnx / ai.onnx.ml opset needs (onnx's `VERSION_TABLE`).

use super::{At, Checker, Rule, canonical_domain};
use crate::proto::ModelProto;
use std::collections::{HashMap, HashSet};

/// The newest IR version this checker knows (onnx 1.23.2's `IR_VERSION`).
pub const LATEST_IR_VERSION: i64 = 14;

/// The first IR version of an onnx release that shipped `version` of
/// `domain` (`""`/`ai.onnx` or `ai.onnx.ml`), from onnx's release table;
/// `None` for other domains and for versions newer than the table.
pub fn min_ir_version_for_opset(domain: &str, version: i64) -> Option<i64> {
    match canonical_domain(domain) {
        "" => Some(match version {
            ..=8 => 3,
            9 => 4,
            10 => 5,
            11 => 6,
            12..=14 => 7,
            15..=18 => 8,
            19..=20 => 9,
            21..=22 => 10,
            23 => 11,
            24 => 12,
            25..=27 => 13,
            28 => 14,
            _ => return None,
        }),
        "ai.onnx.ml" => Some(match version {
            ..=1 => 3,
            2 => 6,
            3 => 8,
            4 => 9,
            5 => 10,
            _ => return None,
        }),
        _ => None,
    }
}

pub(super) fn check(cx: &mut Checker, model: &ModelProto) {
    let at = At::graph("model");
    let mut ir = model.ir_version();
    if ir == 0 {
        cx.report(
            &at,
            Rule::IrVersionMissing,
            "the model does not have an ir_version set",
        );
        // Go on as if the model were current, so the other rules still run.
        ir = LATEST_IR_VERSION;
    } else if ir > LATEST_IR_VERSION {
        cx.report(
            &at,
            Rule::IrVersionUnknown,
            format!("ir_version {ir} is higher than the newest known ({LATEST_IR_VERSION})"),
        );
    }
    cx.ir_version = ir;

    let mut keys = HashSet::new();
    for entry in &model.metadata_props {
        if !keys.insert(entry.key()) {
            cx.report(
                &at,
                Rule::MetadataDuplicateKey,
                format!(
                    "metadata_props has the key '{}' more than once",
                    entry.key()
                ),
            );
        }
    }

    let mut opsets = HashMap::new();
    if ir >= 3 && model.opset_import.is_empty() {
        cx.report(
            &at,
            Rule::OpsetImportMissing,
            format!("a model with IR version {ir} (>= 3) must specify opset_import"),
        );
    }
    if ir < 3 && !model.opset_import.is_empty() {
        cx.report(
            &at,
            Rule::OpsetImportForbidden,
            format!("a model with IR version {ir} (< 3) cannot have opset_import specified"),
        );
    }
    for import in &model.opset_import {
        let domain = import.domain().to_string();
        let version = import.version();
        if i32::try_from(version).is_err() {
            cx.report(
                &at,
                Rule::OpsetVersionRange,
                format!(
                    "opset import version {version} of domain '{}' is out of the supported range",
                    import.domain()
                ),
            );
        }
        if let Some(previous) = opsets.insert(domain, version) {
            cx.report(
                &at,
                Rule::OpsetImportDuplicate,
                format!(
                    "domain '{}' is imported more than once (versions {previous} and {version}; the last one is used)",
                    import.domain()
                ),
            );
        }
    }
    if ir < 3 {
        opsets = HashMap::from([(String::new(), 1)]);
    } else if let Some(&v) = opsets.get("ai.onnx") {
        // onnx files an `ai.onnx` import under the default domain "" too.
        opsets.insert(String::new(), v);
    }
    let mut sorted: Vec<(&String, &i64)> = opsets.iter().collect();
    sorted.sort();
    for (domain, &version) in sorted {
        if domain == "ai.onnx" {
            continue;
        }
        if let Some(min) = min_ir_version_for_opset(domain, version)
            && model.ir_version() != 0
            && ir < min
        {
            let shown = if domain.is_empty() { "ai.onnx" } else { domain };
            cx.report(
                &at,
                Rule::IrVersionTooOld,
                format!(
                    "ir_version {ir} is older than opset {shown} {version} (first released with IR {min}); onnx accepts it, but older runtimes may not"
                ),
            );
        }
    }
    cx.opsets = opsets;

    match &model.graph {
        Some(graph) => super::graph::check_main(cx, graph),
        None => cx.report(&at, Rule::GraphMissing, "the model has no graph"),
    }
    if ir >= 8 {
        super::function::check_functions(cx, model);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_ir_versions_follow_onnx_releases() {
        // onnx's find_min_ir_version_for: opset 20 -> IR 9, opset 28 -> IR 14.
        assert_eq!(min_ir_version_for_opset("", 20), Some(9));
        assert_eq!(min_ir_version_for_opset("ai.onnx", 28), Some(14));
        assert_eq!(min_ir_version_for_opset("", 21), Some(10));
        assert_eq!(min_ir_version_for_opset("", 8), Some(3));
        assert_eq!(min_ir_version_for_opset("", 29), None);
        assert_eq!(min_ir_version_for_opset("ai.onnx.ml", 5), Some(10));
        assert_eq!(min_ir_version_for_opset("com.example", 1), None);
    }
}

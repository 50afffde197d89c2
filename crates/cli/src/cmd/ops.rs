//! `netport ops [OP] [--opset N] [--domain D]`: what the committed ONNX
//! operator schema table (`netport_onnx::schema`) says. Without OP, the
//! operators of a domain at an opset; with OP, its schema at that opset and
//! its version history. Exit code 0, 2 for an unknown domain or operator.

use crate::exit::Outcome;
use crate::global::Global;
use crate::output::{emit, note};
use anyhow::bail;
use netport_onnx::schema::{
    self, AttrValue, AttributeSchema, DomainInfo, FormalParameter, OpSchema, UNBOUNDED,
};
use serde::Serialize;
use std::fmt::Write as _;

/// Show the ONNX operator schemas netport knows (those of onnx, every version).
///
/// Without OP: the operators of the domain at the opset, each with the opset
/// that introduced the version in force. With OP: its schema at the opset
/// (inputs and outputs with their option and type constraint, the allowed
/// types, attributes with type, required and default) and its version
/// history. Exit code 0, 2 when the domain or the operator is unknown (the
/// message says which opsets have the operator, if any).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The operator (`op_type`, case-sensitive: Conv, Resize, ...).
    #[arg(value_name = "OP")]
    pub op: Option<String>,
    /// The opset version of the domain [default: the newest onnx knows].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub opset: Option<i64>,
    /// The operator set domain: ai.onnx (or ""), ai.onnx.ml,
    /// ai.onnx.preview, ai.onnx.preview.training.
    #[arg(long, value_name = "D", default_value = "ai.onnx")]
    pub domain: String,
    /// Print one JSON document (field names documented in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

/// How people write a domain: `ai.onnx` for the default `""`.
fn display_domain(domain: &str) -> &str {
    if domain.is_empty() { "ai.onnx" } else { domain }
}

/// The list of `netport ops` without an operator.
#[derive(Serialize)]
struct ListJson<'a> {
    domain: &'static str,
    opset: i64,
    onnx_version: &'static str,
    operators: &'a [OpEntryJson],
}

#[derive(Serialize)]
struct OpEntryJson {
    name: &'static str,
    since_version: i64,
    deprecated: bool,
}

/// The schema of one operator at one opset, and its history.
#[derive(Serialize)]
struct OpJson<'a> {
    domain: &'static str,
    opset: i64,
    onnx_version: &'static str,
    schema: SchemaJson,
    history: &'a [VersionJson],
}

#[derive(Serialize)]
struct SchemaJson {
    name: &'static str,
    domain: &'static str,
    since_version: i64,
    deprecated: bool,
    support_level: &'static str,
    min_input: usize,
    /// `null` when unbounded (a variadic input).
    max_input: Option<usize>,
    min_output: usize,
    /// `null` when unbounded (a variadic output).
    max_output: Option<usize>,
    inputs: Vec<ParamJson>,
    outputs: Vec<ParamJson>,
    type_constraints: Vec<ConstraintJson>,
    attributes: Vec<AttributeJson>,
}

#[derive(Serialize)]
struct ParamJson {
    name: &'static str,
    option: &'static str,
    type_str: &'static str,
    is_homogeneous: bool,
    min_arity: usize,
}

#[derive(Serialize)]
struct ConstraintJson {
    name: &'static str,
    allowed_types: &'static [&'static str],
}

#[derive(Serialize)]
struct AttributeJson {
    name: &'static str,
    #[serde(rename = "type")]
    attr_type: &'static str,
    required: bool,
    default: Option<DefaultJson>,
}

/// A default as its JSON value: a number, a string or a list of them.
#[derive(Serialize)]
#[serde(untagged)]
enum DefaultJson {
    Float(f32),
    Int(i64),
    String(&'static str),
    Floats(&'static [f32]),
    Ints(&'static [i64]),
    Strings(&'static [&'static str]),
}

#[derive(Serialize)]
struct VersionJson {
    since_version: i64,
    deprecated: bool,
    /// What this version changed from the one before (`["introduced"]` for
    /// the first).
    changes: Vec<String>,
}

fn bound(n: usize) -> Option<usize> {
    (n != UNBOUNDED).then_some(n)
}

fn param_json(p: &FormalParameter) -> ParamJson {
    ParamJson {
        name: p.name,
        option: p.option.name(),
        type_str: p.type_str,
        is_homogeneous: p.is_homogeneous,
        min_arity: p.min_arity,
    }
}

fn default_json(v: AttrValue) -> DefaultJson {
    match v {
        AttrValue::Float(x) => DefaultJson::Float(x),
        AttrValue::Int(x) => DefaultJson::Int(x),
        AttrValue::String(x) => DefaultJson::String(x),
        AttrValue::Floats(x) => DefaultJson::Floats(x),
        AttrValue::Ints(x) => DefaultJson::Ints(x),
        AttrValue::Strings(x) => DefaultJson::Strings(x),
    }
}

fn schema_json(s: &OpSchema) -> SchemaJson {
    SchemaJson {
        name: s.name,
        domain: s.domain,
        since_version: s.since_version,
        deprecated: s.deprecated,
        support_level: s.support_level.name(),
        min_input: s.min_input,
        max_input: bound(s.max_input),
        min_output: s.min_output,
        max_output: bound(s.max_output),
        inputs: s.inputs.iter().map(param_json).collect(),
        outputs: s.outputs.iter().map(param_json).collect(),
        type_constraints: s
            .type_constraints
            .iter()
            .map(|c| ConstraintJson {
                name: c.name,
                allowed_types: c.allowed_types,
            })
            .collect(),
        attributes: s
            .attributes
            .iter()
            .map(|a| AttributeJson {
                name: a.name,
                attr_type: a.attr_type.name(),
                required: a.required,
                default: a.default.map(default_json),
            })
            .collect(),
    }
}

/// `[a, b]` added / removed between two name lists, as change lines.
fn list_changes(out: &mut Vec<String>, what: &str, old: &[&'static str], new: &[&'static str]) {
    let added: Vec<_> = new.iter().filter(|n| !old.contains(n)).copied().collect();
    let removed: Vec<_> = old.iter().filter(|n| !new.contains(n)).copied().collect();
    if !added.is_empty() {
        out.push(format!("{what} added: {}", added.join(", ")));
    }
    if !removed.is_empty() {
        out.push(format!("{what} removed: {}", removed.join(", ")));
    }
}

fn param_line(p: &FormalParameter) -> String {
    format!("{} ({}, {})", p.name, p.option.name(), p.type_str)
}

fn attr_line(a: &AttributeSchema) -> String {
    let mut s = format!(
        "{} {}{}",
        a.name,
        a.attr_type,
        if a.required { " required" } else { "" }
    );
    if let Some(d) = a.default {
        let _ = write!(s, " = {d}");
    }
    s
}

/// What `new` changed from `old`: formal parameters, attributes, types.
fn changes(old: Option<&OpSchema>, new: &OpSchema) -> Vec<String> {
    let Some(old) = old else {
        return vec!["introduced".into()];
    };
    let mut out = Vec::new();
    if new.deprecated && !old.deprecated {
        out.push("deprecated".into());
    }
    for (what, a, b) in [
        ("inputs", old.inputs, new.inputs),
        ("outputs", old.outputs, new.outputs),
    ] {
        let names = |ps: &[FormalParameter]| ps.iter().map(|p| p.name).collect::<Vec<_>>();
        list_changes(&mut out, what, &names(a), &names(b));
        for p in b {
            if let Some(q) = a.iter().find(|q| q.name == p.name)
                && (q.option, q.type_str, q.min_arity, q.is_homogeneous)
                    != (p.option, p.type_str, p.min_arity, p.is_homogeneous)
            {
                out.push(format!("{what}: {} -> {}", param_line(q), param_line(p)));
            }
        }
    }
    let names = |s: &OpSchema| s.attributes.iter().map(|a| a.name).collect::<Vec<_>>();
    list_changes(&mut out, "attributes", &names(old), &names(new));
    for a in new.attributes {
        if let Some(b) = old.attribute(a.name)
            && b != a
        {
            out.push(format!("attribute: {} -> {}", attr_line(b), attr_line(a)));
        }
    }
    for c in new.type_constraints {
        let before = old
            .type_constraint(c.name)
            .map_or(&[][..], |b| b.allowed_types);
        let added: Vec<_> = c
            .allowed_types
            .iter()
            .filter(|t| !before.contains(t))
            .copied()
            .collect();
        let removed: Vec<_> = before
            .iter()
            .filter(|t| !c.allowed_types.contains(t))
            .copied()
            .collect();
        if !added.is_empty() {
            out.push(format!("{} allows {}", c.name, added.join(", ")));
        }
        if !removed.is_empty() {
            out.push(format!(
                "{} no longer allows {}",
                c.name,
                removed.join(", ")
            ));
        }
    }
    for c in old.type_constraints {
        if new.type_constraint(c.name).is_none() {
            out.push(format!("type constraint {} removed", c.name));
        }
    }
    if out.is_empty() {
        // onnx bumps versions for changes outside the signature too.
        out.push("same signature (documentation, inference or function body)".into());
    }
    out
}

fn history_json(history: &[OpSchema]) -> Vec<VersionJson> {
    history
        .iter()
        .enumerate()
        .map(|(i, s)| VersionJson {
            since_version: s.since_version,
            deprecated: s.deprecated,
            changes: changes(i.checked_sub(1).map(|j| &history[j]), s),
        })
        .collect()
}

fn versions(history: &[OpSchema]) -> String {
    history
        .iter()
        .map(|s| s.since_version.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The error for an operator that has no schema at the opset.
fn unknown_op(op: &str, domain: &DomainInfo, opset: i64) -> anyhow::Error {
    let here = display_domain(domain.name);
    let history = schema::history(domain.name, op);
    if let Some(first) = history.first() {
        return anyhow::anyhow!(
            "operator {op} is not in {here} at opset {opset}: it was introduced in opset {} \
             (versions: {})",
            first.since_version,
            versions(history)
        );
    }
    let elsewhere: Vec<String> = schema::domains()
        .iter()
        .filter(|d| d.name != domain.name)
        .filter_map(|d| {
            let h = schema::history(d.name, op);
            (!h.is_empty()).then(|| {
                format!(
                    "domain {0} from opset {1} (versions: {2}; use --domain {0})",
                    display_domain(d.name),
                    h[0].since_version,
                    versions(h)
                )
            })
        })
        .collect();
    let mut message = format!("unknown operator {op} in domain {here}");
    if !elsewhere.is_empty() {
        let _ = write!(message, "; it is in {}", elsewhere.join(", "));
    } else {
        let similar: Vec<&str> = schema::ops(domain.name)
            .filter(|name| name.eq_ignore_ascii_case(op))
            .collect();
        if !similar.is_empty() {
            let _ = write!(message, " (did you mean {}?)", similar.join(", "));
        }
    }
    anyhow::anyhow!(message)
}

fn bound_text(n: usize) -> String {
    if n == UNBOUNDED {
        "unbounded".into()
    } else {
        n.to_string()
    }
}

fn schema_text(s: &OpSchema, opset: i64, history: &[VersionJson]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{} ({}) at opset {opset}: version {}{}{}",
        s.name,
        display_domain(s.domain),
        s.since_version,
        if s.deprecated { ", DEPRECATED" } else { "" },
        if s.support_level == schema::SupportLevel::Experimental {
            ", experimental"
        } else {
            ""
        }
    );
    for (what, params, min, max) in [
        ("inputs", s.inputs, s.min_input, s.max_input),
        ("outputs", s.outputs, s.min_output, s.max_output),
    ] {
        if min == max {
            let _ = writeln!(t, "{what} ({min}):");
        } else {
            let _ = writeln!(t, "{what} ({min} to {}):", bound_text(max));
        }
        let width = params.iter().map(|p| p.name.len()).max().unwrap_or(0);
        for p in params {
            let mut extra = String::new();
            if p.option == schema::FormalParameterOption::Variadic {
                let _ = write!(
                    extra,
                    " (at least {}{})",
                    p.min_arity,
                    if p.is_homogeneous {
                        ""
                    } else {
                        ", types may differ"
                    }
                );
            }
            let _ = writeln!(
                t,
                "  {:<width$}  {:<8}  {}{extra}",
                p.name,
                p.option.name(),
                p.type_str
            );
        }
    }
    if !s.type_constraints.is_empty() {
        let _ = writeln!(t, "type constraints:");
        for c in s.type_constraints {
            let _ = writeln!(t, "  {}: {}", c.name, c.allowed_types.join(", "));
        }
    }
    if s.attributes.is_empty() {
        let _ = writeln!(t, "attributes: none");
    } else {
        let _ = writeln!(t, "attributes:");
        let width = s.attributes.iter().map(|a| a.name.len()).max().unwrap_or(0);
        for a in s.attributes {
            let _ = writeln!(
                t,
                "  {:<width$}  {:<13}  {}{}",
                a.name,
                a.attr_type.name(),
                if a.required { "required" } else { "optional" },
                a.default
                    .map(|d| format!(", default {d}"))
                    .unwrap_or_default()
            );
        }
    }
    let _ = writeln!(t, "history:");
    for v in history {
        let _ = writeln!(
            t,
            "  opset {:>2}{}: {}",
            v.since_version,
            if v.since_version == s.since_version {
                " *"
            } else {
                "  "
            },
            v.changes.join("; ")
        );
    }
    t
}

fn list_text(domain: &DomainInfo, opset: i64, operators: &[OpEntryJson]) -> String {
    let mut t = format!(
        "{} opset {opset}: {} operators (onnx {})\n",
        display_domain(domain.name),
        operators.len(),
        schema::ONNX_VERSION
    );
    let width = operators.iter().map(|o| o.name.len()).max().unwrap_or(0);
    for o in operators {
        let _ = writeln!(
            t,
            "  {:<width$}  since {}{}",
            o.name,
            o.since_version,
            if o.deprecated { " (deprecated)" } else { "" }
        );
    }
    t
}

/// Runs `netport ops`.
pub fn run(args: &Args, _global: &Global) -> anyhow::Result<Outcome> {
    let wanted = if args.domain == "ai.onnx" {
        ""
    } else {
        args.domain.as_str()
    };
    let Some(domain) = schema::domain(wanted) else {
        let known: Vec<&str> = schema::domains()
            .iter()
            .map(|d| display_domain(d.name))
            .collect();
        bail!(
            "unknown operator set domain {:?}; onnx {} registers {}",
            args.domain,
            schema::ONNX_VERSION,
            known.join(", ")
        );
    };
    let opset = args.opset.unwrap_or(domain.max_version);
    if opset > domain.max_version {
        note(&format!(
            "opset {opset} of {} is newer than the newest onnx {} knows ({}); \
             showing the schemas in force at {}",
            display_domain(domain.name),
            schema::ONNX_VERSION,
            domain.max_version,
            domain.max_version
        ));
    }
    let Some(op) = &args.op else {
        let operators: Vec<OpEntryJson> = schema::ops(domain.name)
            .filter_map(|name| schema::lookup(domain.name, name, opset))
            .map(|s| OpEntryJson {
                name: s.name,
                since_version: s.since_version,
                deprecated: s.deprecated,
            })
            .collect();
        emit(
            args.json,
            || ListJson {
                domain: domain.name,
                opset,
                onnx_version: schema::ONNX_VERSION,
                operators: &operators,
            },
            || list_text(domain, opset, &operators),
        )?;
        return Ok(Outcome::Ok);
    };
    let Some(s) = schema::lookup(domain.name, op, opset) else {
        return Err(unknown_op(op, domain, opset));
    };
    let history = history_json(schema::history(domain.name, op));
    if s.deprecated {
        note(&format!(
            "{} is deprecated in {} from opset {} on",
            s.name,
            display_domain(s.domain),
            s.since_version
        ));
    }
    emit(
        args.json,
        || OpJson {
            domain: domain.name,
            opset,
            onnx_version: schema::ONNX_VERSION,
            schema: schema_json(s),
            history: &history,
        },
        || schema_text(s, opset, &history),
    )?;
    Ok(Outcome::Ok)
}

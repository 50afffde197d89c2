//! The type-constraint check of onnx's strict inference
//! (`OpSchema::CheckInputOutputType`): each input's element type must be one
//! its schema's type constraint allows, and inputs bound to one constraint
//! name must share a type.

use crate::schema::{self, FormalParameter, FormalParameterOption, OpSchema};

/// onnx's type string of a tensor element type code: `tensor(float)`.
pub(crate) fn tensor_type_str(code: i32) -> Option<String> {
    crate::dtype::name(code).map(|n| format!("tensor({})", n.to_ascii_lowercase()))
}

/// The formal parameter that input `i` binds to (the last one when it is
/// variadic), or `None` beyond the schema's inputs.
fn formal(schema: &OpSchema, i: usize) -> Option<&'static FormalParameter> {
    match schema.inputs.get(i) {
        Some(p) => Some(p),
        None => schema
            .inputs
            .last()
            .filter(|p| p.option == FormalParameterOption::Variadic),
    }
}

/// Checks the known element types of a node's inputs (`elems[i]`, 0 when
/// unknown) against the schema of `op` in `domain` at `version`; one message
/// per violation, as onnx words it.
pub(crate) fn check_inputs(
    domain: &str,
    op: &str,
    version: i64,
    node_name: &str,
    elems: &[i32],
) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(schema) = schema::lookup(domain, op, version) else {
        return problems;
    };
    if schema.deprecated {
        return problems;
    }
    let mut bound: Vec<(&str, String, usize)> = Vec::new();
    for (i, &code) in elems.iter().enumerate() {
        if code == 0 {
            continue;
        }
        let (Some(param), Some(ty)) = (formal(schema, i), tensor_type_str(code)) else {
            continue;
        };
        let constraint = schema
            .type_constraints
            .iter()
            .find(|c| c.name == param.type_str);
        match constraint {
            None => {
                if param.type_str != ty {
                    problems.push(format!(
                        "input {i} ('{}'): type {ty} is not the {} that {op} requires",
                        param.name, param.type_str
                    ));
                }
            }
            Some(c) => {
                if !c.allowed_types.contains(&ty.as_str()) {
                    problems.push(format!(
                        "input {i} ('{}') of {op} in node '{node_name}': type {ty} is not \
                         allowed by constraint {} (allowed: {})",
                        param.name,
                        c.name,
                        c.allowed_types.join(", ")
                    ));
                    continue;
                }
                let homogeneous =
                    param.option != FormalParameterOption::Variadic || param.is_homogeneous;
                if !homogeneous {
                    continue;
                }
                match bound.iter().find(|(name, _, _)| *name == c.name) {
                    Some((_, first, at)) if *first != ty => problems.push(format!(
                        "input {i} ('{}') of {op} in node '{node_name}': type parameter {} \
                         is bound to {first} by input {at} and to {ty} here",
                        param.name, c.name
                    )),
                    Some(_) => {}
                    None => bound.push((c.name, ty, i)),
                }
            }
        }
    }
    problems
}

/// The element type code of onnx's type string `tensor(float)`.
fn code_of(type_str: &str) -> Option<i32> {
    (1..=64).find(|&c| tensor_type_str(c).as_deref() == Some(type_str))
}

/// The types a formal parameter allows: its constraint's, or the one
/// literal type it names.
fn allowed(schema: &OpSchema, param: &FormalParameter) -> Vec<&'static str> {
    match schema
        .type_constraints
        .iter()
        .find(|c| c.name == param.type_str)
    {
        Some(c) => c.allowed_types.to_vec(),
        None => vec![param.type_str],
    }
}

/// The output half of onnx's `CheckInputOutputType`, run after a node's
/// rule: an output the rule left without an element type takes the one
/// type its parameter allows or the type its constraint is bound to by the
/// inputs; then each output's type must be allowed and agree with the
/// binding. `outputs[i]` is what the rule inferred; one message per
/// violation.
pub(crate) fn infer_outputs(
    domain: &str,
    op: &str,
    version: i64,
    elems: &[i32],
    outputs: &mut [Option<super::TensorType>],
) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(schema) = schema::lookup(domain, op, version) else {
        return problems;
    };
    if schema.deprecated {
        return problems;
    }
    let mut bound: Vec<(&str, String)> = Vec::new();
    for (i, &code) in elems.iter().enumerate() {
        if code == 0 {
            continue;
        }
        let (Some(param), Some(ty)) = (formal(schema, i), tensor_type_str(code)) else {
            continue;
        };
        let homogeneous = param.option != FormalParameterOption::Variadic || param.is_homogeneous;
        if homogeneous && !bound.iter().any(|(n, _)| *n == param.type_str) {
            bound.push((param.type_str, ty));
        }
    }
    for (i, out) in outputs.iter_mut().enumerate() {
        let param = match schema.outputs.get(i) {
            Some(p) => p,
            None => match schema
                .outputs
                .last()
                .filter(|p| p.option == FormalParameterOption::Variadic)
            {
                Some(p) => p,
                None => continue,
            },
        };
        let all = allowed(schema, param);
        let current = out.as_ref().map_or(0, |t| t.elem_type);
        let code = if current != 0 {
            current
        } else {
            let found = if all.len() == 1 {
                code_of(all[0])
            } else {
                bound
                    .iter()
                    .find(|(n, _)| *n == param.type_str)
                    .and_then(|(_, t)| code_of(t))
            };
            let Some(code) = found else {
                continue;
            };
            match out {
                Some(t) => t.elem_type = code,
                None => *out = Some(super::TensorType::unranked(code)),
            }
            code
        };
        let Some(ty) = tensor_type_str(code) else {
            continue;
        };
        if !all.contains(&ty.as_str()) {
            problems.push(format!(
                "output {i} ('{}') of {op}: has unsupported type {ty} (allowed: {})",
                param.name,
                all.join(", ")
            ));
            continue;
        }
        let homogeneous = param.option != FormalParameterOption::Variadic || param.is_homogeneous;
        if !homogeneous {
            continue;
        }
        match bound.iter().find(|(n, _)| *n == param.type_str) {
            Some((_, first)) if *first != ty => problems.push(format!(
                "output {i} ('{}') of {op}: has inconsistent type {ty}, type parameter {} is \
                 bound to {first}",
                param.name, param.type_str
            )),
            Some(_) => {}
            None => bound.push((param.type_str, ty)),
        }
    }
    problems
}

//! Caffe2 control flow: `If` (`then_net`/`else_net`) and `ONNXWhile`
//! (`body`), as the ONNX -> Caffe2 conversion writes them, run by the ONNX
//! front end's kernels ([`crate::control::If`], [`crate::control::Loop`]):
//! each sub-net becomes a sub-plan whose reads from the enclosing nets are
//! fed by name.
//!
//! Caffe2 runs sub-nets in the outer workspace (`If` always, `ONNXWhile`
//! with `disable_scopes`); a sub-plan sees only what it reads and returns
//! only its external outputs. So that this changes no number, what would
//! behave otherwise is refused when the plan is built: an `If` whose branch
//! outputs are not named as the op's outputs (Caffe2 copies nothing) or
//! without `else_net`, a sub-net that writes a blob of the enclosing nets
//! other than the op's outputs, `ONNXWhile` with `has_cond=0` (it ignores
//! the body's condition) or with scan outputs (it does not stack them as
//! ONNX does), and a `num_loop_carried_deps` that disagrees with the inputs.

use crate::caffe2::{build_net, unsupported};
use crate::control::{If, Loop, Sub, implicit_union};
use crate::error::ExecError;
use crate::kernels::{KResult, Kernel};
use crate::tensor::Tensor;
use netport_caffe2::proto::{NetDef, OperatorDef};
use netport_tensor::DType;
use std::collections::HashSet;

/// The Caffe2 ops run here.
pub(crate) fn is_control(op: &str) -> bool {
    matches!(op, "If" | "ONNXWhile")
}

fn refuse(op: &OperatorDef, reason: impl Into<String>) -> ExecError {
    unsupported(op, reason.into())
}

fn net_arg<'a>(op: &'a OperatorDef, name: &str) -> Option<&'a NetDef> {
    op.arg
        .iter()
        .find(|a| a.name() == name)
        .and_then(|a| a.n.as_ref())
}

fn int_arg(op: &OperatorDef, name: &str, default: i64) -> i64 {
    op.arg
        .iter()
        .find(|a| a.name() == name)
        .and_then(|a| a.i)
        .unwrap_or(default)
}

/// Every blob a net's ops write, nested sub-nets included (an `ONNXWhile`
/// body also creates its formal inputs and its condition output).
fn written(net: &NetDef, out: &mut HashSet<String>) {
    for op in &net.op {
        out.extend(op.output.iter().cloned());
        for a in &op.arg {
            if let Some(n) = &a.n {
                written(n, out);
                if op.r#type() == "ONNXWhile" {
                    let lcds = usize::try_from(int_arg(op, "num_loop_carried_deps", -1))
                        .unwrap_or(op.input.len().saturating_sub(2));
                    out.extend(n.external_input.iter().take(2 + lcds).cloned());
                    out.extend(n.external_output.first().cloned());
                }
            }
        }
    }
}

/// Refuses a sub-net that would overwrite a blob of the enclosing nets.
fn check_writes(
    op: &OperatorDef,
    net: &NetDef,
    extra: &[String],
    scope: &HashSet<String>,
) -> Result<(), ExecError> {
    let mut w = HashSet::new();
    written(net, &mut w);
    w.extend(extra.iter().cloned());
    let mut clash: Vec<&String> = w
        .iter()
        .filter(|b| scope.contains(*b) && !op.output.contains(b))
        .collect();
    clash.sort();
    if let Some(b) = clash.first() {
        return Err(refuse(
            op,
            format!(
                "a sub-net writes blob {b:?} of the enclosing net, which Caffe2's shared \
                 workspace would overwrite"
            ),
        ));
    }
    Ok(())
}

/// The kernel of an `If` or `ONNXWhile` op and the blobs of the enclosing
/// nets its sub-nets read (fed after the op's own inputs). `scope`: the
/// blobs the enclosing nets hold at this op.
pub(crate) fn kernel(
    op: &OperatorDef,
    scope: &HashSet<String>,
) -> Result<(Box<dyn Kernel>, Vec<String>), ExecError> {
    let sub = |net: &NetDef, formal: &[String]| -> Result<Sub, ExecError> {
        let (plan, implicit) = build_net(net, formal, scope)?;
        Ok(Sub { plan, implicit })
    };
    if op.r#type() == "If" {
        let then_net = net_arg(op, "then_net").ok_or_else(|| refuse(op, "no then_net"))?;
        let else_net = net_arg(op, "else_net").ok_or_else(|| {
            refuse(
                op,
                "no else_net (a false condition would leave the outputs unset)",
            )
        })?;
        if op.input.len() != 1 {
            return Err(refuse(
                op,
                format!("{} inputs (one condition)", op.input.len()),
            ));
        }
        for (which, net) in [("then_net", then_net), ("else_net", else_net)] {
            if net.external_output != op.output {
                return Err(refuse(
                    op,
                    format!(
                        "{which} outputs {:?} are not the op's outputs {:?}: Caffe2's If \
                         copies nothing",
                        net.external_output, op.output
                    ),
                ));
            }
            check_writes(op, net, &[], scope)?;
        }
        let (t, e) = (sub(then_net, &[])?, sub(else_net, &[])?);
        let implicit = implicit_union(&[&t, &e]);
        return Ok((
            Box::new(If {
                then_branch: t,
                else_branch: e,
                implicit: implicit.clone(),
            }),
            implicit,
        ));
    }
    let body = net_arg(op, "body").ok_or_else(|| refuse(op, "no body"))?;
    if int_arg(op, "has_cond", 0) != 1 {
        return Err(refuse(
            op,
            "has_cond=0 (ONNXWhile then ignores the body's condition output)",
        ));
    }
    if op.input.len() < 2 {
        return Err(refuse(op, "fewer than 2 inputs (trip count, condition)"));
    }
    let lcds = op.input.len() - 2;
    let declared = int_arg(op, "num_loop_carried_deps", -1);
    if declared != -1 && declared != lcds as i64 {
        return Err(refuse(
            op,
            format!("num_loop_carried_deps {declared} with {lcds} loop-carried inputs"),
        ));
    }
    if op.output.len() != lcds || body.external_output.len() != lcds + 1 {
        return Err(refuse(
            op,
            "scan outputs (ONNXWhile does not stack them as ONNX Loop does) or outputs that \
             do not match the loop-carried values",
        ));
    }
    if body.external_input.len() < lcds + 2 {
        return Err(refuse(
            op,
            format!(
                "the body has {} external inputs for {lcds} loop-carried values",
                body.external_input.len()
            ),
        ));
    }
    let formal = body.external_input[..lcds + 2].to_vec();
    check_writes(op, body, &formal, scope)?;
    let body = sub(body, &formal)?;
    let implicit = body.implicit.clone();
    Ok((
        Box::new(OnnxWhile {
            inner: Loop {
                body,
                explicit: op.input.len(),
            },
            has_trip_count: int_arg(op, "has_trip_count", 0) != 0,
        }),
        implicit,
    ))
}

/// `ONNXWhile`: [`Loop`], with the trip count read only under
/// `has_trip_count` and, as Caffe2 reads it, as int64.
#[derive(Debug)]
struct OnnxWhile {
    inner: Loop,
    has_trip_count: bool,
}

impl Kernel for OnnxWhile {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let mut inputs = inputs.to_vec();
        match inputs.first_mut() {
            Some(first) if !self.has_trip_count => *first = None,
            Some(Some(t)) if t.dtype() != DType::Int64 => {
                return Err(format!("trip count of type {} (int64 expected)", t.dtype()));
            }
            _ => {}
        }
        self.inner.run(&inputs)
    }
}

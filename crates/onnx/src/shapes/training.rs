//! The optimizers of ai.onnx.preview.training (Adagrad, Momentum, Adam):
//! each updated tensor and its state keep the type and shape of the input
//! they replace.

use super::{NodeCx, RuleResult};

/// Copies input `from` (type and shape) to output `to`.
fn pass(cx: &mut NodeCx<'_>, from: usize, to: usize) {
    if let Some(t) = cx.input(from).cloned() {
        cx.set(to, t);
    }
}

/// Adagrad and Momentum (R, T, X..., G..., H or V...): X_new... then
/// H_new or V_new...; Adam (R, T, X..., G..., V..., H...): X_new...,
/// V_new..., H_new....
pub fn optimizer(cx: &mut NodeCx<'_>) -> RuleResult {
    let op = cx.node.op_type();
    let adjustable = cx.input_count().saturating_sub(2);
    let groups = if op == "Adam" { 4 } else { 3 };
    if op != "Adagrad" && !adjustable.is_multiple_of(groups) {
        return Err(format!(
            "{op} takes R, T and then {groups} tensors per optimized tensor, not {adjustable}"
        ));
    }
    let n = adjustable / groups;
    for i in 0..n {
        pass(cx, 2 + i, i);
        pass(cx, 2 + 2 * n + i, n + i);
        if op == "Adam" {
            pass(cx, 2 + 3 * n + i, 2 * n + i);
        }
    }
    Ok(())
}

//! Normalization: BatchNormalization, InstanceNormalization,
//! LayerNormalization and LRN; output 0 has the input's type and shape.

use super::{Dim, NodeCx, RuleResult, TensorType};

/// Output 0 is input 0; BatchNormalization's running stats have the
/// scale's shape, LayerNormalization's Mean/InvStdDev keep the leading dims.
pub fn first_like_input(cx: &mut NodeCx<'_>) -> RuleResult {
    let Some(x) = cx.input(0).cloned() else {
        return Ok(());
    };
    match cx.node.op_type() {
        "BatchNormalization" if cx.version >= 14 => {
            if let Some(s) = cx.input(3).cloned() {
                cx.set(1, s.clone());
                cx.set(2, s);
            }
        }
        "LayerNormalization" => {
            if let Some(shape) = &x.shape {
                let rank = shape.len();
                let a = super::axis(cx.attr_i("axis", -1), rank)?;
                let mut dims = shape[..a].to_vec();
                dims.extend(std::iter::repeat_n(Dim::Fixed(1), rank - a));
                let stash = cx.attr_i("stash_type", 1) as i32;
                cx.set(1, TensorType::new(stash, dims.clone()));
                cx.set(2, TensorType::new(stash, dims));
            }
        }
        _ => {}
    }
    cx.set(0, x);
    Ok(())
}

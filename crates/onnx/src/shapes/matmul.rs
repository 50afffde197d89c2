//! MatMul (numpy semantics, batch dims broadcast) and Gemm.

use super::elementwise::broadcast;
use super::{Dim, NodeCx, RuleResult, TensorType};

/// MatMul: 1-d operands are promoted and the added dim dropped.
pub fn matmul(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let (Some(a), Some(b)) = (cx.shape(0), cx.shape(1)) else {
        if elem != 0 {
            cx.set(0, TensorType::unranked(elem));
        }
        return Ok(());
    };
    if a.is_empty() || b.is_empty() {
        return Err("MatMul of a scalar".to_string());
    }
    let a2: Vec<Dim> = if a.len() == 1 {
        vec![Dim::Fixed(1), a[0].clone()]
    } else {
        a.to_vec()
    };
    let b2: Vec<Dim> = if b.len() == 1 {
        vec![b[0].clone(), Dim::Fixed(1)]
    } else {
        b.to_vec()
    };
    let (k1, k2) = (&a2[a2.len() - 1], &b2[b2.len() - 2]);
    if let (Dim::Fixed(x), Dim::Fixed(y)) = (k1, k2)
        && x != y
    {
        return Err(format!("incompatible inner dimensions {x} and {y}"));
    }
    let mut dims = broadcast(&[&a2[..a2.len() - 2], &b2[..b2.len() - 2]])?;
    if a.len() != 1 {
        dims.push(a2[a2.len() - 2].clone());
    }
    if b.len() != 1 {
        dims.push(b2[b2.len() - 1].clone());
    }
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// Gemm: [M, N] from A and B after the transposes.
pub fn gemm(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let (Some(a), Some(b)) = (cx.shape(0), cx.shape(1)) else {
        if elem != 0 {
            cx.set(0, TensorType::unranked(elem));
        }
        return Ok(());
    };
    if a.len() != 2 || b.len() != 2 {
        return Err(format!("Gemm of ranks {} and {}", a.len(), b.len()));
    }
    let ta = cx.attr_i("transA", 0) != 0;
    let tb = cx.attr_i("transB", 0) != 0;
    let m = a[usize::from(ta)].clone();
    let n = b[usize::from(!tb)].clone();
    cx.set(0, TensorType::new(elem, vec![m, n]));
    Ok(())
}

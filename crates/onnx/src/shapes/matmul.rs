//! MatMul (numpy semantics, batch dims broadcast) with MatMulInteger and
//! QLinearMatMul, Gemm, Det and Einsum.

use super::elementwise::broadcast;
use super::{Dim, NodeCx, RuleResult, TensorType};
use crate::proto::tensor_proto::DataType;
use std::collections::{BTreeMap, HashSet};

/// MatMul: 1-d operands are promoted and the added dim dropped.
pub fn matmul(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    matmul_of(cx, 0, 1, elem)
}

/// MatMulInteger: MatMul's shape in int32.
pub fn matmul_integer(cx: &mut NodeCx<'_>) -> RuleResult {
    matmul_of(cx, 0, 1, DataType::Int32 as i32)
}

/// QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp): the
/// MatMul of inputs 0 and 3 in y_zero_point's type.
pub fn qlinear_matmul(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(7);
    matmul_of(cx, 0, 3, elem)
}

/// Output 0 of element type `elem` with the MatMul shape of inputs `i` and
/// `j` (onnx's `MatMulShapeInference`).
fn matmul_of(cx: &mut NodeCx<'_>, i: usize, j: usize, elem: i32) -> RuleResult {
    let (Some(a), Some(b)) = (cx.shape(i), cx.shape(j)) else {
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

/// Det: the input's dims but the last two (which must agree when fixed).
pub fn det(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let Some(x) = cx.shape(0) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    let r = x.len();
    if r < 2 {
        return Err(format!("input rank must be >= 2, not {r}"));
    }
    if let (Dim::Fixed(h), Dim::Fixed(w)) = (&x[r - 2], &x[r - 1])
        && h != w
    {
        return Err(format!("the inner-most 2 dimensions differ: {h} and {w}"));
    }
    let dims = x[..r - 2].to_vec();
    cx.set(0, TensorType::new(elem, dims));
    Ok(())
}

/// Einsum: the output dims from the equation's labels as onnx's
/// `einsumShapeInference` reads them (explicit right-hand side, or the
/// labels seen once in alphabetical order after the ellipsis dims).
pub fn einsum(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    cx.set(0, TensorType::unranked(elem));
    let equation: String = cx
        .attr_s("equation", "")
        .chars()
        .filter(|&c| c != ' ')
        .collect();
    let n = cx.input_count();
    if equation.is_empty() || n < 1 || (0..n).any(|i| cx.shape(i).is_none()) {
        return Ok(());
    }
    let (left, right) = match equation.find("->") {
        Some(m) => (&equation[..m], Some(&equation[m + 2..])),
        None => (equation.as_str(), None),
    };
    let mut labels: BTreeMap<u8, usize> = BTreeMap::new();
    let mut repeated: HashSet<u8> = HashSet::new();
    let mut dims_value: Vec<Dim> = Vec::new();
    let mut ellipsis_dims_value: Vec<Dim> = Vec::new();
    let mut ellipsis_seen = false;
    let mut n_ellipsis_indices = 0usize;
    let mut operands = 0usize;
    for term in left.split(',') {
        if operands >= n {
            return Err(
                "number of input tensors does not match the operands in the equation".into(),
            );
        }
        let shape = cx.shape(operands).unwrap_or_default().to_vec();
        let rank = shape.len();
        let term = term.as_bytes();
        let term_size = term.iter().filter(|c| c.is_ascii_alphabetic()).count();
        let ellipsis_at = term.windows(3).position(|w| w == b"...");
        let mut ellipsis_dims = 0usize;
        if ellipsis_at.is_some() {
            if rank < term_size {
                return Err(format!(
                    "ellipsis represents incompatible dimensions for input {operands}: rank {rank} < {term_size}"
                ));
            }
            if !ellipsis_seen {
                n_ellipsis_indices = rank - term_size;
            } else if n_ellipsis_indices != rank - term_size {
                return Err(format!(
                    "ellipsis for input {operands} represents {} dimensions, not {n_ellipsis_indices}",
                    rank - term_size
                ));
            }
        } else if rank != term_size {
            return Err(format!(
                "rank of input {operands} ({rank}) does not match the equation indices ({term_size})"
            ));
        }
        let mut illegal = 0usize;
        let mut index = 0usize;
        while index < term.len() {
            if Some(index) == ellipsis_at {
                ellipsis_dims = rank - term_size;
                let at = |i: usize| {
                    shape
                        .get(index + i - illegal)
                        .cloned()
                        .unwrap_or(Dim::Unknown)
                };
                if !ellipsis_seen {
                    ellipsis_seen = true;
                    ellipsis_dims_value = (0..ellipsis_dims).map(at).collect();
                } else {
                    for i in 0..ellipsis_dims {
                        if let (Dim::Fixed(s), Some(cur)) = (at(i), ellipsis_dims_value.get_mut(i))
                            && *cur == Dim::Fixed(1)
                            && s > 1
                        {
                            *cur = Dim::Fixed(s);
                        }
                    }
                }
                index += 3;
                illegal += 3;
                continue;
            }
            let c = term[index];
            if !c.is_ascii_alphabetic() {
                illegal += 1;
                index += 1;
                continue;
            }
            if let std::collections::btree_map::Entry::Vacant(e) = labels.entry(c) {
                e.insert(dims_value.len());
                let d = shape
                    .get(index + ellipsis_dims - illegal)
                    .cloned()
                    .unwrap_or(Dim::Unknown);
                dims_value.push(d);
            } else {
                repeated.insert(c);
            }
            index += 1;
        }
        operands += 1;
    }
    if operands != n {
        return Err("number of input tensors does not match the operands in the equation".into());
    }
    let mut out = Vec::new();
    match right {
        Some(right) => {
            let r = right.as_bytes();
            let ellipsis_at = r.windows(3).position(|w| w == b"...");
            let mut index = 0;
            while index < r.len() {
                if Some(index) == ellipsis_at {
                    out.extend(ellipsis_dims_value.iter().take(n_ellipsis_indices).cloned());
                    index += 3;
                    continue;
                }
                if r[index].is_ascii_alphabetic() {
                    let Some(&k) = labels.get(&r[index]) else {
                        return Err(
                            "equation output contains a label missing from the inputs".into()
                        );
                    };
                    out.push(dims_value[k].clone());
                }
                index += 1;
            }
        }
        None => {
            out.extend(ellipsis_dims_value.iter().take(n_ellipsis_indices).cloned());
            for (c, &k) in &labels {
                if !repeated.contains(c) {
                    out.push(dims_value[k].clone());
                }
            }
        }
    }
    cx.set(0, TensorType::new(elem, out));
    Ok(())
}

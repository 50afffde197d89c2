//! Elementwise ops with multidirectional (numpy) broadcasting: arithmetic,
//! comparisons and logic, variadic Max/Min/Sum/Mean and Where.

use super::{Dim, NodeCx, RuleResult, TensorType};
use crate::proto::tensor_proto::DataType;

/// Broadcasts shapes as onnx's `multidirectionalBroadcastShapeInference`.
pub fn broadcast(shapes: &[&[Dim]]) -> Result<Vec<Dim>, String> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let mut value = 1i64;
        let mut symbolic: Option<&Dim> = None;
        let mut n_symbolic = 0;
        for s in shapes {
            if i < rank - s.len() {
                continue;
            }
            let d = &s[i - (rank - s.len())];
            match d {
                Dim::Fixed(v) => {
                    if *v != 1 {
                        if value != *v && value != 1 {
                            return Err(format!(
                                "incompatible dimensions {value} and {v} in broadcasting"
                            ));
                        }
                        value = *v;
                    }
                }
                _ => {
                    let name = |d: &Dim| match d {
                        Dim::Param(p) => p.clone(),
                        _ => String::new(),
                    };
                    match symbolic {
                        None => {
                            symbolic = Some(d);
                            n_symbolic += 1;
                        }
                        Some(s) if name(s) != name(d) => n_symbolic += 1,
                        Some(_) => {}
                    }
                }
            }
        }
        out.push(if value != 1 || n_symbolic == 0 {
            Dim::Fixed(value)
        } else if n_symbolic == 1 {
            symbolic.cloned().unwrap_or(Dim::Unknown)
        } else {
            Dim::Unknown
        });
    }
    Ok(out)
}

fn broadcast_inputs(
    cx: &NodeCx<'_>,
    inputs: std::ops::Range<usize>,
) -> Result<Option<Vec<Dim>>, String> {
    let mut shapes = Vec::new();
    for i in inputs {
        match cx.shape(i) {
            Some(s) => shapes.push(s),
            None => return Ok(None),
        }
    }
    broadcast(&shapes).map(Some)
}

/// The element type of the first input that has one. Like onnx's
/// `infer_shapes`, mixed input types are not an error here (the type
/// constraint is the checker's business): the output takes the first.
fn first_elem(cx: &NodeCx<'_>, inputs: std::ops::Range<usize>) -> i32 {
    inputs.map(|i| cx.elem(i)).find(|&e| e != 0).unwrap_or(0)
}

/// Two inputs of one type; the output has that type (Pow may mix types).
pub fn binary_same(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let shape = broadcast_inputs(cx, 0..2)?;
    propagate(cx, shape.as_deref());
    if elem != 0 || shape.is_some() {
        cx.set(
            0,
            TensorType {
                elem_type: elem,
                shape,
            },
        );
    }
    Ok(())
}

/// Data propagation of Add, Sub and Mul over shape vectors (rank <= 1);
/// Div gives entries of unknown value, as onnx does.
fn propagate(cx: &mut NodeCx<'_>, shape: Option<&[Dim]>) {
    let op = cx.node.op_type();
    if !matches!(op, "Add" | "Sub" | "Mul" | "Div") {
        return;
    }
    let len = match shape {
        Some([]) => 1,
        Some([Dim::Fixed(n)]) if super::unknown_dims(*n).is_some() => *n as usize,
        _ => return,
    };
    if op == "Div" {
        if cx.data(0).is_some() && cx.data(1).is_some() {
            cx.set_data(0, vec![Dim::Unknown; len]);
        }
        return;
    }
    let (Some(a), Some(b)) = (cx.data(0), cx.data(1)) else {
        return;
    };
    let (a, b) = (a.to_vec(), b.to_vec());
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        let r = match (pick(&a, i), pick(&b, i)) {
            (Some(Dim::Fixed(x)), Some(Dim::Fixed(y))) => match op {
                "Add" => x.checked_add(*y),
                "Sub" => x.checked_sub(*y),
                _ => x.checked_mul(*y),
            }
            .map_or(Dim::Unknown, Dim::Fixed),
            (Some(_), Some(_)) => Dim::Unknown,
            _ => return,
        };
        out.push(r);
    }
    cx.set_data(0, out);
}

/// Comparisons and logic: a bool output.
pub fn binary_bool(cx: &mut NodeCx<'_>) -> RuleResult {
    let shape = broadcast_inputs(cx, 0..2)?;
    cx.set(
        0,
        TensorType {
            elem_type: DataType::Bool as i32,
            shape,
        },
    );
    Ok(())
}

/// Max/Min/Sum/Mean: any number of inputs of one type.
pub fn variadic(cx: &mut NodeCx<'_>) -> RuleResult {
    let n = cx.input_count();
    let elem = first_elem(cx, 0..n);
    let shape = broadcast_inputs(cx, 0..n)?;
    if elem != 0 || shape.is_some() {
        cx.set(
            0,
            TensorType {
                elem_type: elem,
                shape,
            },
        );
    }
    Ok(())
}

/// Where(cond, x, y): the type of x, the three shapes broadcast.
pub fn where_(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = first_elem(cx, 1..3);
    let shape = broadcast_inputs(cx, 0..3)?;
    if elem != 0 || shape.is_some() {
        cx.set(
            0,
            TensorType {
                elem_type: elem,
                shape,
            },
        );
    }
    Ok(())
}

fn pick(v: &[Dim], i: usize) -> Option<&Dim> {
    if v.len() == 1 { v.first() } else { v.get(i) }
}

/// SwiGLU(A, B): A's type; the two shapes must agree (no broadcasting) and
/// are merged.
pub fn swiglu(cx: &mut NodeCx<'_>) -> RuleResult {
    let elem = cx.elem(0);
    let (Some(a), Some(b)) = (cx.input(0).cloned(), cx.input(1)) else {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    };
    if a.shape.is_none() || b.shape.is_none() {
        cx.set(0, TensorType::unranked(elem));
        return Ok(());
    }
    let b = TensorType {
        elem_type: 0,
        shape: b.shape.clone(),
    };
    let a = TensorType {
        elem_type: elem,
        shape: a.shape,
    };
    let merged = super::merge(&b, &a).map_err(|(_, m)| m)?;
    cx.set(0, merged);
    Ok(())
}

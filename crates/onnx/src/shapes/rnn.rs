//! Recurrent ops: RNN, GRU and LSTM (Y, Y_h and LSTM's Y_c from the input's
//! sequence and batch dims, `direction` and `hidden_size`; `layout` from
//! opset 14; before opset 7 only with `output_sequence`, as onnx).

use super::{Dim, NodeCx, RuleResult, TensorType};

/// RNN, GRU, LSTM.
pub fn rnn(cx: &mut NodeCx<'_>) -> RuleResult {
    let directions = match cx.attr_s("direction", "forward").as_str() {
        "forward" | "reverse" => Dim::Fixed(1),
        "bidirectional" => Dim::Fixed(2),
        _ => Dim::Unknown,
    };
    let hidden = match cx.attr_i("hidden_size", -1) {
        h if h > 0 => Dim::Fixed(h),
        _ => Dim::Unknown,
    };
    let layout = if cx.version >= 14 {
        cx.attr_i("layout", 0)
    } else {
        0
    };
    let (mut seq, mut batch) = (Dim::Unknown, Dim::Unknown);
    if let Some(x) = cx.shape(0) {
        if x.len() != 3 {
            return Err(format!(
                "first input tensor must have rank 3, not {}",
                x.len()
            ));
        }
        (seq, batch) = if layout == 0 {
            (x[0].clone(), x[1].clone())
        } else {
            (x[1].clone(), x[0].clone())
        };
    }
    let elem = cx.elem(0);
    let n = cx.output_count().min(3);
    let shapes_known = cx.version >= 7 || cx.attr_i("output_sequence", 0) != 0;
    for i in 0..n {
        let shape = shapes_known.then(|| {
            let mut dims = match (i, layout) {
                (0, 0) => vec![seq.clone(), directions.clone(), batch.clone()],
                (0, _) => vec![batch.clone(), seq.clone(), directions.clone()],
                (_, 0) => vec![directions.clone(), batch.clone()],
                _ => vec![batch.clone(), directions.clone()],
            };
            dims.push(hidden.clone());
            dims
        });
        cx.set(
            i,
            TensorType {
                elem_type: elem,
                shape,
            },
        );
    }
    Ok(())
}

//! Attention (opset 23 on, onnx's `AttentionPropagateElemTypeFromInputToOutput`
//! with the extra checks of opset 25) and RotaryEmbedding.
//!
//! onnx reads some dims with `dim_value()`, which is 0 for a symbolic or
//! unknown dim; the rule does the same so that its answers stay equal.

use super::{Dim, NodeCx, RuleResult, TensorType};

/// A dim's value as protobuf's `dim_value()` reads it: 0 when not fixed.
fn dim_value(d: &Dim) -> i64 {
    d.value().unwrap_or(0)
}

/// Whether output `i` is given (named).
fn has_output(cx: &NodeCx<'_>, i: usize) -> bool {
    cx.node.output.get(i).is_some_and(|n| !n.is_empty())
}

/// Attention(Q, K, V, attn_mask, past_key, past_value, nonpad_kv_seqlen):
/// Y from Q's batch and sequence dims and V's head size, the optional
/// present key/value with past + new sequence length, and the optional
/// qk_matmul_output.
pub fn attention(cx: &mut NodeCx<'_>) -> RuleResult {
    if cx.version >= 25 {
        attention_25_checks(cx)?;
    }
    let elem = cx.elem(0);
    let mut kv_sequence_length: i64 = -1;
    let mut out: Vec<Dim> = Vec::new();
    let mut qk: Vec<Dim> = Vec::new();
    let mut y_shape = None;
    if let Some(q) = cx.shape(0).map(<[_]>::to_vec) {
        if q.len() != 3 && q.len() != 4 {
            return Err("inputs 0 (query) shall be 3 or 4 dimensions".to_string());
        }
        let heads = (cx.attr("q_num_heads"), cx.attr("kv_num_heads"));
        if q.len() == 3 && (heads.0.is_none() || heads.1.is_none()) {
            return Err("3D inputs expected to have q_num_heads attribute".to_string());
        }
        out.push(q[0].clone());
        out.push(q[1].clone());
        qk.push(q[0].clone());
        if let Some(k) = cx.shape(1)
            && k.len() != 3
            && k.len() != 4
        {
            return Err("inputs 1 (key) shall be 3 or 4 dimensions".to_string());
        }
        if let Some(v) = cx.shape(2).map(<[_]>::to_vec) {
            if v.len() != 3 && v.len() != 4 {
                return Err("inputs 2 (value) shall be 3 or 4 dimensions".to_string());
            }
            if v.len() == 4 && q.len() == 4 {
                kv_sequence_length = dim_value(&v[2]);
                out.push(q[2].clone());
                out.push(v[3].clone());
                y_shape = Some(out.clone());
                qk.push(q[1].clone());
                qk.push(q[2].clone());
                qk.push(Dim::Fixed(kv_sequence_length));
            }
            if v.len() == 3 && q.len() == 3 {
                kv_sequence_length = dim_value(&v[1]);
                let q_heads = cx.attr_i("q_num_heads", 0);
                let kv_heads = cx.attr_i("kv_num_heads", 0);
                if q_heads <= 0 || kv_heads <= 0 {
                    return Err("q_num_heads and kv_num_heads must be positive".to_string());
                }
                let v_head_size = dim_value(&v[2]) / kv_heads;
                let hidden = v_head_size
                    .checked_mul(q_heads)
                    .ok_or_else(|| format!("{v_head_size} * {q_heads} overflows"))?;
                out.push(Dim::Fixed(hidden));
                y_shape = Some(out.clone());
                qk.push(Dim::Fixed(q_heads));
                qk.push(q[1].clone());
                qk.push(Dim::Fixed(kv_sequence_length));
            }
        }
    }
    cx.set(
        0,
        TensorType {
            elem_type: elem,
            shape: y_shape,
        },
    );
    let mut qk_type = has_output(cx, 3).then(|| TensorType::new(elem, qk.clone()));
    if has_output(cx, 1) && has_output(cx, 2) && cx.has_input(4) && cx.has_input(5) {
        let (ek, ev) = (cx.elem(4), cx.elem(5));
        let mut present = (TensorType::unranked(ek), TensorType::unranked(ev));
        if let (Some(pk), Some(pv)) = (
            cx.shape(4).map(<[_]>::to_vec),
            cx.shape(5).map(<[_]>::to_vec),
        ) {
            if pk.len() != 4 {
                return Err("the past_key input shall be 4 dimensions".to_string());
            }
            if pv.len() != 4 {
                return Err("the past_value input shall be 4 dimensions".to_string());
            }
            if kv_sequence_length > 0
                && let Dim::Fixed(past) = pk[2]
            {
                let total = kv_sequence_length
                    .checked_add(past)
                    .ok_or_else(|| format!("{kv_sequence_length} + {past} overflows"))?;
                if let Some(t) = qk_type.as_mut()
                    && let Some(s) = t.shape.as_mut()
                    && s.len() > 3
                {
                    s[3] = Dim::Fixed(total);
                }
                let (mut k, mut v) = (pk, pv);
                k[2] = Dim::Fixed(total);
                v[2] = Dim::Fixed(total);
                present = (TensorType::new(ek, k), TensorType::new(ev, v));
            }
        }
        cx.set(1, present.0);
        cx.set(2, present.1);
    }
    if let Some(t) = qk_type {
        cx.set(3, t);
    }
    Ok(())
}

/// The attribute and input checks Attention adds at opset 25.
fn attention_25_checks(cx: &NodeCx<'_>) -> RuleResult {
    for name in ["left_window_size", "right_window_size"] {
        let w = cx.attr_i(name, -1);
        if w < -1 {
            return Err(format!("{name} must be -1 or nonnegative, got {w}"));
        }
    }
    let rank = cx.shape(0).map(<[_]>::len);
    let (qh, kvh) = (cx.attr("q_num_heads"), cx.attr("kv_num_heads"));
    if rank == Some(3)
        && let (Some(q), Some(kv)) = (qh, kvh)
        && (q.i() <= 0 || kv.i() <= 0)
    {
        return Err("q_num_heads and kv_num_heads must be positive for 3D inputs".to_string());
    }
    if cx.has_input(4) != cx.has_input(5) {
        return Err("past_key and past_value must be provided together".to_string());
    }
    if has_output(cx, 1) != has_output(cx, 2) {
        return Err("present_key and present_value must be requested together".to_string());
    }
    if cx.has_input(6) && (cx.has_input(4) || has_output(cx, 1)) {
        return Err(
            "nonpad_kv_seqlen cannot be combined with past or present cache tensors".to_string(),
        );
    }
    if rank == Some(4) && (qh.is_some() || kvh.is_some()) {
        return Err("q_num_heads and kv_num_heads must not be specified for 4D inputs".to_string());
    }
    Ok(())
}

/// RotaryEmbedding: the type and shape of input 0, which must have rank 3
/// (with `num_heads`) or 4.
pub fn rotary_embedding(cx: &mut NodeCx<'_>) -> RuleResult {
    let Some(t) = cx.input(0).cloned() else {
        return Ok(());
    };
    if let Some(r) = t.rank() {
        if !(3..=4).contains(&r) {
            return Err(format!(
                "input tensor must have at least 3 and at most 4 dimensions, not {r}"
            ));
        }
        if r == 3 && cx.attr("num_heads").is_none() {
            return Err("input shape is 3D, num_heads attribute must be provided".to_string());
        }
    }
    cx.set(0, t);
    Ok(())
}

/// LinearAttention (opset 27): checks of the head counts and of the
/// `update_rule`'s inputs, then Y [B, T, q_num_heads * Dv] and present_state
/// [B, kv_num_heads, Dk, Dv] with the dims unified across the inputs.
pub fn linear_attention(cx: &mut NodeCx<'_>) -> RuleResult {
    let q = cx.attr("q_num_heads").map_or(0, |a| a.i());
    let kv = cx.attr("kv_num_heads").map_or(0, |a| a.i());
    if q <= 0 {
        return Err(format!("q_num_heads must be > 0, got {q}"));
    }
    if kv <= 0 {
        return Err(format!("kv_num_heads must be > 0, got {kv}"));
    }
    if q % kv != 0 {
        return Err(format!(
            "q_num_heads ({q}) must be a multiple of kv_num_heads ({kv})"
        ));
    }
    let rule = cx.attr_s("update_rule", "gated_delta");
    let (past, decay, beta) = (cx.has_input(3), cx.has_input(4), cx.has_input(5));
    let (needs_decay, needs_beta) = match rule.as_str() {
        "linear" => (false, false),
        "gated" => (true, false),
        "delta" => (false, true),
        "gated_delta" => (true, true),
        _ => {
            return Err(
                "update_rule must be one of: 'linear', 'gated', 'delta', 'gated_delta'".into(),
            );
        }
    };
    if decay != needs_decay {
        return Err(format!(
            "update_rule '{rule}' {} decay input",
            if needs_decay { "requires" } else { "forbids" }
        ));
    }
    if beta != needs_beta {
        return Err(format!(
            "update_rule '{rule}' {} beta input",
            if needs_beta { "requires" } else { "forbids" }
        ));
    }
    let elem = cx.elem(0);
    let state_elem = if past && cx.input(3).is_some() {
        cx.elem(3)
    } else {
        elem
    };
    cx.set(0, TensorType::unranked(elem));
    cx.set(1, TensorType::unranked(state_elem));
    const B: usize = 0;
    const T: usize = 1;
    const QP: usize = 2;
    const KP: usize = 3;
    const VP: usize = 4;
    const HKV: usize = 5;
    const DK: usize = 6;
    const DV: usize = 7;
    const SPARE: usize = 8;
    let mut d = vec![Dim::Unknown; 9];
    d[HKV] = Dim::Fixed(kv);
    super::unify_input_shape(cx, 0, &mut d, &[B, T, QP])?;
    super::unify_input_shape(cx, 1, &mut d, &[B, T, KP])?;
    super::unify_input_shape(cx, 2, &mut d, &[B, T, VP])?;
    if past {
        super::unify_input_shape(cx, 3, &mut d, &[B, HKV, DK, DV])?;
    }
    if decay {
        d[SPARE] = Dim::Unknown;
        super::unify_input_shape(cx, 4, &mut d, &[B, T, SPARE])?;
    }
    if beta {
        d[SPARE] = Dim::Unknown;
        super::unify_input_shape(cx, 5, &mut d, &[B, T, SPARE])?;
    }
    for (pack, heads, into, what) in [
        (QP, q, DK, "query"),
        (KP, kv, DK, "key"),
        (VP, kv, DV, "value"),
    ] {
        if let Dim::Fixed(p) = d[pack] {
            if p % heads != 0 {
                return Err(format!(
                    "packed {what} last dim ({p}) must be divisible by its head count ({heads})"
                ));
            }
            super::unify_dim(&Dim::Fixed(p / heads), &mut d[into])?;
        }
    }
    if decay && let Some([_, _, Dim::Fixed(last)]) = cx.shape(4) {
        let last = *last;
        match d[DK] {
            Dim::Fixed(dk) => {
                let kv_dk = kv.saturating_mul(dk);
                if last != kv && last != kv_dk {
                    return Err(format!(
                        "decay last dim ({last}) must be kv_num_heads ({kv}) or kv_num_heads * \
                         d_k ({kv_dk})"
                    ));
                }
            }
            _ if last != kv && last % kv != 0 => {
                return Err(format!(
                    "decay last dim ({last}) must be kv_num_heads ({kv}) or a multiple of it"
                ));
            }
            _ => {}
        }
    }
    if beta
        && let Some([_, _, Dim::Fixed(last)]) = cx.shape(5)
        && *last != 1
        && *last != kv
    {
        return Err(format!(
            "beta last dim ({last}) must be 1 or kv_num_heads ({kv})"
        ));
    }
    let out_last = match d[DV] {
        Dim::Fixed(dv) => super::fixed(i128::from(q) * i128::from(dv)),
        _ => Dim::Unknown,
    };
    cx.set(
        0,
        TensorType::new(elem, vec![d[B].clone(), d[T].clone(), out_last]),
    );
    cx.set(
        1,
        TensorType::new(
            state_elem,
            vec![d[B].clone(), d[HKV].clone(), d[DK].clone(), d[DV].clone()],
        ),
    );
    Ok(())
}

/// ai.onnx.preview FlexAttention: [B, Hq, L, Dv] from Q (B, Hq, L, Dqk),
/// K (B, Hkv, S, Dqk) and V (B, Hkv, S, Dv), after onnx's checks of the
/// shared dims; the batch dim unified across the three.
pub fn flex_attention(cx: &mut NodeCx<'_>) -> RuleResult {
    if cx.input_count() < 3 {
        return Err("FlexAttention requires query, key, and value inputs".into());
    }
    let (Some(q), Some(k), Some(v)) = (cx.input(0), cx.input(1), cx.input(2)) else {
        return Ok(());
    };
    let elem = q.elem_type;
    if k.elem_type != elem || v.elem_type != elem {
        return Err("inputs query, key, and value must have the same element type".into());
    }
    let empty = Vec::new();
    let (qs, ks, vs) = (
        q.shape.clone().unwrap_or_default(),
        k.shape.as_ref().unwrap_or(&empty).clone(),
        v.shape.as_ref().unwrap_or(&empty).clone(),
    );
    cx.set(0, TensorType::unranked(elem));
    if qs.len() != 4 || ks.len() != 4 || vs.len() != 4 {
        return Err("FlexAttention requires rank-4 inputs".into());
    }
    let differ = |a: &Dim, b: &Dim| matches!((a, b), (Dim::Fixed(x), Dim::Fixed(y)) if x != y);
    if differ(&ks[1], &vs[1]) {
        return Err("key and value must share the same head dimension".into());
    }
    if differ(&ks[2], &vs[2]) {
        return Err("key and value must share the same sequence length".into());
    }
    if differ(&qs[3], &ks[3]) {
        return Err("query and key must share the same embedding dimension".into());
    }
    if let (Dim::Fixed(hq), Dim::Fixed(hkv)) = (&qs[1], &ks[1])
        && hq != hkv
        && (*hkv <= 0 || hq % hkv != 0)
    {
        return Err("q_num_heads must be a multiple of kv_num_heads when they differ".into());
    }
    let mut out = vec![qs[0].clone(), qs[1].clone(), qs[2].clone(), vs[3].clone()];
    super::unify_dim(&ks[0], &mut out[0])?;
    super::unify_dim(&vs[0], &mut out[0])?;
    if let (Dim::Fixed(a), Dim::Fixed(b)) = (&qs[1], &ks[1])
        && a == b
    {
        super::unify_dim(&ks[1], &mut out[1])?;
    }
    let float_like = [1, 10, 11, 16].contains(&elem);
    if !float_like && cx.attr("softmax_precision").is_none() {
        return Err(
            "softmax_precision must be specified when inputs are not float/float16/bfloat16/double"
                .into(),
        );
    }
    cx.set(0, TensorType::new(elem, out));
    Ok(())
}

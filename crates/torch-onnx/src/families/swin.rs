//! torchvision's Swin Transformer v1 and v2
//! (`torchvision.models.swin_transformer`): swin_t, swin_s, swin_b,
//! swin_v2_t, swin_v2_s, swin_v2_b.
//!
//! Everything but the input size is in the weights: patch size and embedding
//! width from `features.0.0`, blocks per stage from the indices under
//! `features.1`, `features.3`, ..., heads per stage from the relative
//! position bias table (v1) or `logit_scale` (v2), the window from the
//! table's rows (v1, `(2w - 1)^2`) or the relative coordinates table (v2),
//! the MLP width from `mlp.0`, the classes from `head`. v2 is told from v1 by
//! its `logit_scale` and continuous position bias MLP (`cpb_mlp`).
//!
//! The forward is torchvision's `shifted_window_attention` with the sizes
//! known when the graph is written: the feature map is padded to a multiple
//! of the window, the window is shifted by half a window in every other
//! block unless the window covers the padded map (torchvision's rule), the
//! shifted-window attention mask (-100 between regions) is a constant, and
//! PatchMerging pads odd sizes. v2 zeroes the key part of the qkv bias,
//! uses cosine attention scaled by `exp(min(logit_scale, ln 100))` and
//! `16 * sigmoid` of the MLP's bias, and puts the norms after attention and
//! MLP (PatchMergingV2: the norm after the reduction). Stochastic depth and
//! dropout are gone in eval.

use super::read::{count, dim, has_under};
use super::{Family, Model, Settings};
use crate::emit::{Conv, Emit, conv_out, join};
use crate::error::ExportError;
use crate::source::StateDict;

/// The family entry of the registry.
pub const FAMILY: Family = Family {
    name: "swin",
    variants: &[
        "swin_t",
        "swin_s",
        "swin_b",
        "swin_v2_t",
        "swin_v2_s",
        "swin_v2_b",
    ],
    settings: &[],
    guess,
};

/// One builder's configuration.
struct Row {
    name: &'static str,
    v2: bool,
    embed: u64,
    depths: [usize; 4],
    heads: [u64; 4],
    window: u64,
}

const fn row(
    name: &'static str,
    v2: bool,
    embed: u64,
    depths: [usize; 4],
    heads: [u64; 4],
    window: u64,
) -> Row {
    Row {
        name,
        v2,
        embed,
        depths,
        heads,
        window,
    }
}

const TABLE: [Row; 6] = [
    row("swin_t", false, 96, [2, 2, 6, 2], [3, 6, 12, 24], 7),
    row("swin_s", false, 96, [2, 2, 18, 2], [3, 6, 12, 24], 7),
    row("swin_b", false, 128, [2, 2, 18, 2], [4, 8, 16, 32], 7),
    row("swin_v2_t", true, 96, [2, 2, 6, 2], [3, 6, 12, 24], 8),
    row("swin_v2_s", true, 96, [2, 2, 18, 2], [3, 6, 12, 24], 8),
    row("swin_v2_b", true, 128, [2, 2, 18, 2], [4, 8, 16, 32], 8),
];

/// torchvision's builders: patch 4, MLP ratio 4.
const PATCH: u64 = 4;
const MLP_RATIO: u64 = 4;
/// The hidden width of v2's continuous position bias MLP.
const CPB_HIDDEN: u64 = 512;
/// LayerNorm's epsilon (`partial(nn.LayerNorm, eps=1e-5)`).
const EPS: f32 = 1e-5;
/// The value torchvision's shifted-window mask puts between regions.
const MASKED: f32 = -100.0;
/// The most elements a shifted-window mask constant may have (1 GiB of
/// float32): a larger input size is refused rather than allocated.
const MAX_MASK: u64 = 1 << 28;

/// A Swin Transformer with its hyper-parameters.
#[derive(Debug, Clone)]
pub struct Swin {
    v2: bool,
    patch: (u64, u64),
    embed: u64,
    depths: Vec<usize>,
    heads: Vec<u64>,
    window: u64,
    /// MLP hidden width over the block width (torchvision: 4).
    mlp_ratio: u64,
    classes: u64,
}

fn guess(
    sd: &StateDict,
    variant: Option<&str>,
    _: &Settings,
) -> Result<Box<dyn Model>, ExportError> {
    let classes = dim(sd, "head.weight", 0).unwrap_or(1000);
    if let Some(r) = variant.and_then(|v| TABLE.iter().find(|t| t.name == v)) {
        return Ok(Box::new(Swin {
            v2: r.v2,
            patch: (PATCH, PATCH),
            embed: r.embed,
            depths: r.depths.to_vec(),
            heads: r.heads.to_vec(),
            window: r.window,
            mlp_ratio: MLP_RATIO,
            classes,
        }));
    }
    let v2 = sd.has("features.1.0.attn.logit_scale") || has_under(sd, "features.1.0.attn.cpb_mlp");
    let embed = dim(sd, "features.0.0.weight", 0).unwrap_or(96);
    let patch = (
        dim(sd, "features.0.0.weight", 2).unwrap_or(PATCH),
        dim(sd, "features.0.0.weight", 3).unwrap_or(PATCH),
    );
    let mut depths = Vec::new();
    while has_under(sd, &format!("features.{}", 2 * depths.len() + 1)) {
        depths.push(count(sd, &format!("features.{}.", 2 * depths.len() + 1), 0));
    }
    if depths.is_empty() {
        depths = TABLE[0].depths.to_vec();
    }
    let heads = (0..depths.len())
        .map(|i| {
            let at = format!("features.{}.0.attn", 2 * i + 1);
            let h = if v2 {
                dim(sd, &join(&at, "logit_scale"), 0)
            } else {
                dim(sd, &join(&at, "relative_position_bias_table"), 1)
            };
            h.unwrap_or(1)
        })
        .collect();
    let window = if v2 {
        // relative_coords_table: [1, 2w - 1, 2w - 1, 2]
        dim(sd, "features.1.0.attn.relative_coords_table", 1).map(|n| n.div_ceil(2))
    } else {
        // relative_position_bias_table: [(2w - 1)^2, heads]
        dim(sd, "features.1.0.attn.relative_position_bias_table", 0)
            .map(|n| ((n as f64).sqrt().round() as u64).div_ceil(2))
    }
    .unwrap_or(if v2 { 8 } else { 7 });
    let mlp_ratio = dim(sd, "features.1.0.mlp.0.weight", 0)
        .map(|m| m / embed.max(1))
        .unwrap_or(MLP_RATIO);
    Ok(Box::new(Swin {
        v2,
        patch,
        embed,
        depths,
        heads,
        window,
        mlp_ratio,
        classes,
    }))
}

/// The rows or columns `start..end` of a dim of `len` in Python's slice
/// notation (`None` is the end; negative counts from the end).
fn py_range(start: i64, end: Option<i64>, len: i64) -> std::ops::Range<i64> {
    let at = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    at(start)..end.map_or(len, at)
}

/// torchvision's shifted-window attention mask for a padded map of `ph` x
/// `pw` (window `win`, shift `sh`, `sw`), as [1, windows, 1, N, N]: 0 within
/// a region, -100 across.
fn window_mask(ph: u64, pw: u64, win: u64, sh: u64, sw: u64) -> Vec<f32> {
    let (ph, pw, w) = (ph as i64, pw as i64, win as i64);
    let (sh, sw) = (sh as i64, sw as i64);
    let mut label = vec![0f32; (ph * pw) as usize];
    let hs = [(0, Some(-w)), (-w, Some(-sh)), (-sh, None)];
    let ws = [(0, Some(-w)), (-w, Some(-sw)), (-sw, None)];
    let mut n = 0f32;
    for h in hs {
        for c in ws {
            for r in py_range(h.0, h.1, ph) {
                for q in py_range(c.0, c.1, pw) {
                    label[(r * pw + q) as usize] = n;
                }
            }
            n += 1.0;
        }
    }
    let (nh, nw, tokens) = (ph / w, pw / w, w * w);
    let mut mask = Vec::with_capacity((nh * nw * tokens * tokens) as usize);
    for wi in 0..nh {
        for wj in 0..nw {
            let at = |t: i64| label[((wi * w + t / w) * pw + wj * w + t % w) as usize];
            for i in 0..tokens {
                for j in 0..tokens {
                    mask.push(if at(j) - at(i) != 0.0 { MASKED } else { 0.0 });
                }
            }
        }
    }
    mask
}

impl Swin {
    fn mlp_width(&self, c: u64) -> u64 {
        c * self.mlp_ratio
    }

    /// `ShiftedWindowAttention(V2)` at `at` on `x` [B, h, w, c], shifted by
    /// half a window when `shifted`.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        e: &mut Emit<'_>,
        at: &str,
        x: &str,
        (h, w): (u64, u64),
        c: u64,
        heads: u64,
        shifted: bool,
    ) -> Result<String, ExportError> {
        let win = self.window.max(1);
        let nh = heads.max(1);
        let d = c / nh;
        let (ph, pw) = (h.div_ceil(win) * win, w.div_ceil(win) * win);
        let (pad_b, pad_r) = (ph - h, pw - w);
        // torchvision: no shift where the window covers the padded map.
        let half = if shifted { win / 2 } else { 0 };
        let sh = if win >= ph { 0 } else { half };
        let sw = if win >= pw { 0 } else { half };
        let tokens = (win * win) as i64;
        let windows = (ph / win) * (pw / win);
        let (c_, win_, nh_) = (c as i64, win as i64, nh as i64);

        let mut y = x.to_string();
        if pad_b > 0 || pad_r > 0 {
            y = e.pad_zeros(at, &y, &[0, 0, 0, 0, 0, pad_b as i64, pad_r as i64, 0])?;
        }
        if sh + sw > 0 {
            y = e.roll(at, &y, -(sh as i64), 1, ph)?;
            y = e.roll(at, &y, -(sw as i64), 2, pw)?;
        }
        // partition windows: [B * windows, N, c]
        let y = e.reshape(
            at,
            &y,
            &[-1, ph as i64 / win_, win_, pw as i64 / win_, win_, c_],
        )?;
        let y = e.transpose(at, &y, &[0, 1, 3, 2, 4, 5])?;
        let y = e.reshape(at, &y, &[-1, tokens, c_])?;

        // qkv; v2 zeroes the key part of the bias
        let qkv_at = join(at, "qkv");
        let qkv = if self.v2 {
            let z = e.linear_nd_no_bias(&qkv_at, &y, c, 3 * c)?;
            let b = e.param(&join(&qkv_at, "bias"), &[3 * c])?;
            let keep: Vec<f32> = (0..3 * c)
                .map(|i| if (c..2 * c).contains(&i) { 0.0 } else { 1.0 })
                .collect();
            let keep = e.const_f32s(at, &keep, &[3 * c])?;
            let b = e.mul(at, &b, &keep)?;
            e.add(&qkv_at, &z, &b)?
        } else {
            e.linear_nd(&qkv_at, &y, c, 3 * c)?
        };
        let qkv = e.reshape(at, &qkv, &[0, tokens, 3, nh_, d as i64])?;
        let qkv = e.transpose(at, &qkv, &[2, 0, 3, 1, 4])?;
        let q = e.gather(at, &qkv, 0, 0)?;
        let k = e.gather(at, &qkv, 1, 0)?;
        let v = e.gather(at, &qkv, 2, 0)?;
        let attn = if self.v2 {
            let q = e.normalize_last(at, &q)?;
            let k = e.normalize_last(at, &k)?;
            let kt = e.transpose(at, &k, &[0, 1, 3, 2])?;
            let a = e.matmul(at, &q, &kt)?;
            let s = e.param(&join(at, "logit_scale"), &[nh, 1, 1])?;
            let s = e.clip(at, &s, f32::NEG_INFINITY, 100f32.ln())?;
            let s = e.op(at, "Exp", &[&s], vec![])?;
            e.mul(at, &a, &s)?
        } else {
            let scale = e.const_f32(at, (d as f32).powf(-0.5))?;
            let q = e.mul(at, &q, &scale)?;
            let kt = e.transpose(at, &k, &[0, 1, 3, 2])?;
            e.matmul(at, &q, &kt)?
        };
        let bias = self.position_bias(e, at, nh)?;
        let mut attn = e.add(at, &attn, &bias)?;
        if sh + sw > 0 {
            let elements = windows * (tokens * tokens) as u64;
            if elements > MAX_MASK {
                return Err(ExportError::Option(format!(
                    "'{at}': a {ph}x{pw} feature map needs a shifted-window mask of {elements} elements (at most {MAX_MASK}); choose a smaller --input-size"
                )));
            }
            let mask = window_mask(ph, pw, win, sh, sw);
            let mask = e.const_f32s(at, &mask, &[1, windows, 1, tokens as u64, tokens as u64])?;
            let a = e.reshape(at, &attn, &[-1, windows as i64, nh_, tokens, tokens])?;
            let a = e.add(at, &a, &mask)?;
            attn = e.reshape(at, &a, &[-1, nh_, tokens, tokens])?;
        }
        let p = e.softmax_last(at, &attn)?;
        let o = e.matmul(at, &p, &v)?;
        let o = e.transpose(at, &o, &[0, 2, 1, 3])?;
        let o = e.reshape(at, &o, &[0, tokens, c_])?;
        let o = e.linear_nd(&join(at, "proj"), &o, c, c)?;
        // reverse windows, shift and padding
        let o = e.reshape(
            at,
            &o,
            &[-1, ph as i64 / win_, pw as i64 / win_, win_, win_, c_],
        )?;
        let o = e.transpose(at, &o, &[0, 1, 3, 2, 4, 5])?;
        let mut o = e.reshape(at, &o, &[-1, ph as i64, pw as i64, c_])?;
        if sh + sw > 0 {
            o = e.roll(at, &o, sh as i64, 1, ph)?;
            o = e.roll(at, &o, sw as i64, 2, pw)?;
        }
        if pad_b > 0 || pad_r > 0 {
            o = e.slice(at, &o, &[0, 0], &[h as i64, w as i64], &[1, 2])?;
        }
        Ok(o)
    }

    /// The relative position bias [heads, N, N] of the attention at `at`:
    /// the table indexed by `relative_position_index` (v1), or
    /// `16 * sigmoid` of the continuous position bias MLP on
    /// `relative_coords_table`, indexed so (v2).
    fn position_bias(&self, e: &mut Emit<'_>, at: &str, nh: u64) -> Result<String, ExportError> {
        let win = self.window.max(1);
        let side = 2 * win - 1;
        let tokens = (win * win) as i64;
        let table = if self.v2 {
            let coords = e.buffer(&join(at, "relative_coords_table"), &[1, side, side, 2])?;
            let t = e.linear_nd(&join(at, "cpb_mlp.0"), &coords, 2, CPB_HIDDEN)?;
            let t = e.relu(&join(at, "cpb_mlp.1"), &t)?;
            let t = e.linear_nd_no_bias(&join(at, "cpb_mlp.2"), &t, CPB_HIDDEN, nh)?;
            e.reshape(at, &t, &[-1, nh as i64])?
        } else {
            e.param(
                &join(at, "relative_position_bias_table"),
                &[side * side, nh],
            )?
        };
        let index = e.index_buffer(
            &join(at, "relative_position_index"),
            &[(tokens * tokens) as u64],
            side * side,
        )?;
        let b = e.gather_rows(at, &table, &index)?;
        let b = e.reshape(at, &b, &[tokens, tokens, -1])?;
        let b = e.transpose(at, &b, &[2, 0, 1])?;
        if !self.v2 {
            return Ok(b);
        }
        let b = e.sigmoid(at, &b)?;
        let k = e.const_f32(at, 16.0)?;
        e.mul(at, &b, &k)
    }

    /// `PatchMerging` (v1: norm then reduction) or `PatchMergingV2`
    /// (reduction then norm) at `at` on [B, h, w, c]: odd sizes padded, the
    /// four interleaved sub-grids concatenated (x[0::2, 0::2], x[1::2,
    /// 0::2], x[0::2, 1::2], x[1::2, 1::2]), written as one reshape and
    /// transpose.
    fn merge(
        &self,
        e: &mut Emit<'_>,
        at: &str,
        x: &str,
        (h, w): (u64, u64),
        c: u64,
    ) -> Result<String, ExportError> {
        let mut y = x.to_string();
        if h % 2 == 1 || w % 2 == 1 {
            y = e.pad_zeros(at, &y, &[0, 0, 0, 0, 0, (h % 2) as i64, (w % 2) as i64, 0])?;
        }
        let (h2, w2) = (h.div_ceil(2) as i64, w.div_ceil(2) as i64);
        let y = e.reshape(at, &y, &[-1, h2, 2, w2, 2, c as i64])?;
        let y = e.transpose(at, &y, &[0, 1, 3, 4, 2, 5])?;
        let y = e.reshape(at, &y, &[-1, h2, w2, 4 * c as i64])?;
        if self.v2 {
            let y = e.linear_nd_no_bias(&join(at, "reduction"), &y, 4 * c, 2 * c)?;
            e.layer_norm(&join(at, "norm"), &y, 2 * c, EPS)
        } else {
            let y = e.layer_norm(&join(at, "norm"), &y, 4 * c, EPS)?;
            e.linear_nd_no_bias(&join(at, "reduction"), &y, 4 * c, 2 * c)
        }
    }
}

impl Model for Swin {
    fn family(&self) -> &'static str {
        "swin"
    }

    fn variant(&self) -> String {
        let named = TABLE.iter().find(|t| {
            t.v2 == self.v2
                && t.embed == self.embed
                && t.depths.as_slice() == self.depths
                && t.heads.as_slice() == self.heads
                && t.window == self.window
                && self.patch == (PATCH, PATCH)
                && self.mlp_ratio == MLP_RATIO
        });
        match named {
            Some(t) => t.name.to_string(),
            None => format!(
                "swin{} (patch {}x{}, embed {}, depths {:?}, heads {:?}, window {}, mlp ratio {})",
                if self.v2 { " v2" } else { "" },
                self.patch.0,
                self.patch.1,
                self.embed,
                self.depths,
                self.heads,
                self.window,
                self.mlp_ratio
            ),
        }
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, input: (u64, u64)) -> Result<String, ExportError> {
        let (p0, p1) = (self.patch.0.max(1), self.patch.1.max(1));
        if input.0 < p0 || input.1 < p1 {
            return Err(ExportError::Option(format!(
                "a {}x{} input is smaller than the {p0}x{p1} patch",
                input.0, input.1
            )));
        }
        if p0 != p1 {
            return Err(ExportError::Option(format!(
                "a {p0}x{p1} patch is not square; torchvision's Swin builders use 4x4"
            )));
        }
        let mut c = self.embed;
        let conv = Conv::new(3, c, p0, p0, 0).bias();
        let y = e.conv2d("features.0.0", x, conv)?;
        let mut size = (
            conv_out(input.0, p0, p0, 0, 1),
            conv_out(input.1, p1, p1, 0, 1),
        );
        let y = e.transpose("features.0.1", &y, &[0, 2, 3, 1])?;
        let mut y = e.layer_norm("features.0.2", &y, c, EPS)?;
        let stages = self.depths.len();
        for (i, &depth) in self.depths.iter().enumerate() {
            let heads = self.heads.get(i).copied().unwrap_or(1);
            for b in 0..depth {
                let at = format!("features.{}.{b}", 2 * i + 1);
                let attn_at = join(&at, "attn");
                let shifted = b % 2 == 1;
                let hidden = self.mlp_width(c);
                if self.v2 {
                    let z = self.attention(e, &attn_at, &y, size, c, heads, shifted)?;
                    let z = e.layer_norm(&join(&at, "norm1"), &z, c, EPS)?;
                    let x1 = e.add(&at, &y, &z)?;
                    let z = e.linear_nd(&join(&at, "mlp.0"), &x1, c, hidden)?;
                    let z = e.gelu(&join(&at, "mlp.1"), &z)?;
                    let z = e.linear_nd(&join(&at, "mlp.3"), &z, hidden, c)?;
                    let z = e.layer_norm(&join(&at, "norm2"), &z, c, EPS)?;
                    y = e.add(&at, &x1, &z)?;
                } else {
                    let z = e.layer_norm(&join(&at, "norm1"), &y, c, EPS)?;
                    let z = self.attention(e, &attn_at, &z, size, c, heads, shifted)?;
                    let x1 = e.add(&at, &y, &z)?;
                    let z = e.layer_norm(&join(&at, "norm2"), &x1, c, EPS)?;
                    let z = e.linear_nd(&join(&at, "mlp.0"), &z, c, hidden)?;
                    let z = e.gelu(&join(&at, "mlp.1"), &z)?;
                    let z = e.linear_nd(&join(&at, "mlp.3"), &z, hidden, c)?;
                    y = e.add(&at, &x1, &z)?;
                }
            }
            if i + 1 < stages {
                y = self.merge(e, &format!("features.{}", 2 * i + 2), &y, size, c)?;
                size = (size.0.div_ceil(2), size.1.div_ceil(2));
                c *= 2;
            }
        }
        let y = e.layer_norm("norm", &y, c, EPS)?;
        let y = e.transpose("", &y, &[0, 3, 1, 2])?;
        let y = e.global_avg_pool("avgpool", &y)?;
        let y = e.flatten("", &y)?;
        e.linear("head", &y, c, self.classes)
    }
}

#[cfg(test)]
mod tests {
    use super::{py_range, window_mask};

    #[test]
    fn python_slices() {
        assert_eq!(py_range(0, Some(-7), 14), 0..7);
        assert_eq!(py_range(-7, Some(-3), 14), 7..11);
        assert_eq!(py_range(-3, None, 14), 11..14);
        // A shift of 0 in one dim: `x[-0:]` is all of it, `x[-w:-0]` nothing.
        assert_eq!(py_range(-7, Some(0), 7), 0..0);
        assert_eq!(py_range(0, None, 7), 0..7);
    }

    #[test]
    fn the_mask_separates_the_regions_a_shift_brings_together() {
        // 14x14, window 7, shift 3: four windows; the first holds one region
        // (no -100), the bottom-right one four (labels 4, 5, 7, 8).
        let m = window_mask(14, 14, 7, 3, 3);
        assert_eq!(m.len(), 4 * 49 * 49);
        assert!(m[..49 * 49].iter().all(|&v| v == 0.0));
        let last = &m[3 * 49 * 49..];
        // token 0 (row 0, col 0: label 4) and token 48 (row 6, col 6: label 8)
        assert_eq!(last[48], -100.0);
        // tokens 0 and 1 (row 0, cols 0, 1: both label 4)
        assert_eq!(last[1], 0.0);
        assert!(m.iter().all(|&v| v == 0.0 || v == -100.0));
    }
}

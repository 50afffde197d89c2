//! torchvision's MaxViT (`torchvision.models.maxvit`): maxvit_t.
//!
//! Read from the weights: the stem width (`stem.0.0`), the blocks' widths
//! and layers (`blocks.N.layers.M`), the partition size from the relative
//! position bias table's rows (`(2p - 1)^2`), the heads from its columns
//! (head_dim = width / heads), the MBConv expansion and squeeze widths, the
//! MLP width, the classes from `classifier.5`.
//!
//! The input size is not in the weights but is part of the model: the grid
//! attention's partition count is `feature size / partition size` of the
//! size the model was built for (`maxvit_t(input_size=...)`, 224 by
//! default), and every block's input must be a multiple of the partition
//! size, as torchvision's constructor requires. `--input-size` is the size
//! the model was built for.
//!
//! Each layer is an MBConv (pre-norm BatchNorm, 1x1 expansion, depthwise
//! 3x3 with the layer's stride, squeeze-excitation with SiLU, 1x1
//! projection; the shortcut average-pools and projects when the stride is
//! 2) followed by window then grid partition attention (LayerNorm,
//! relative-position multi-head attention, LayerNorm, MLP, each residual).
//! BatchNorm epsilon 1e-3; stochastic depth and dropout are gone in eval.

use super::blocks::{Act, conv_norm_act, squeeze_excitation};
use super::read::{count, dim};
use super::{Family, Model, Settings};
use crate::emit::{Conv, Emit, conv_out, join};
use crate::error::ExportError;
use crate::source::StateDict;

/// The family entry of the registry.
pub const FAMILY: Family = Family {
    name: "maxvit",
    variants: &["maxvit_t"],
    settings: &[],
    guess,
};

/// maxvit_t: stem, block widths, layers per block, head dim, partition.
const MAXVIT_T: (u64, [u64; 4], [usize; 4], u64, u64) =
    (64, [64, 128, 256, 512], [2, 2, 5, 2], 32, 7);

/// BatchNorm2d(eps=1e-3) of the MBConvs and the stem.
const BN_EPS: f32 = 1e-3;
/// nn.LayerNorm's default.
const LN_EPS: f32 = 1e-5;

/// A MaxViT with its hyper-parameters.
#[derive(Debug, Clone)]
pub struct MaxVit {
    stem: u64,
    widths: Vec<u64>,
    layers: Vec<usize>,
    head_dim: u64,
    partition: u64,
    /// MBConv expansion (torchvision: 4) and squeeze (0.25) as widths over
    /// the output width, in quarters.
    expansion_q: u64,
    squeeze_q: u64,
    mlp_ratio: u64,
    classes: u64,
}

fn guess(
    sd: &StateDict,
    variant: Option<&str>,
    _: &Settings,
) -> Result<Box<dyn Model>, ExportError> {
    let classes = dim(sd, "classifier.5.weight", 0).unwrap_or(1000);
    let (stem, widths, layers, head_dim, partition) = MAXVIT_T;
    let t = MaxVit {
        stem,
        widths: widths.to_vec(),
        layers: layers.to_vec(),
        head_dim,
        partition,
        expansion_q: 16,
        squeeze_q: 1,
        mlp_ratio: 4,
        classes,
    };
    if variant == Some("maxvit_t") {
        return Ok(Box::new(t));
    }
    let mut widths = Vec::new();
    let mut layers = Vec::new();
    loop {
        let at = format!("blocks.{}.layers.", widths.len());
        let n = count(sd, &at, 0);
        let w = dim(sd, &format!("{at}0.layers.MBconv.layers.conv_c.weight"), 0);
        match (n, w) {
            (n, Some(w)) if n > 0 => {
                widths.push(w);
                layers.push(n);
            }
            _ => break,
        }
    }
    if widths.is_empty() {
        return Ok(Box::new(t));
    }
    let l0 = "blocks.0.layers.0.layers";
    let table = format!("{l0}.window_attention.attn_layer.1.relative_position_bias_table");
    let partition = dim(sd, &table, 0)
        .map(|n| ((n as f64).sqrt().round() as u64).div_ceil(2))
        .unwrap_or(partition);
    let heads = dim(sd, &table, 1).unwrap_or(widths[0] / head_dim);
    let quarters = |key: &str, default: u64| {
        dim(sd, &format!("{l0}.{key}"), 0).map_or(default, |n| 4 * n / widths[0].max(1))
    };
    Ok(Box::new(MaxVit {
        stem: dim(sd, "stem.0.0.weight", 0).unwrap_or(stem),
        head_dim: widths[0] / heads.max(1),
        partition,
        expansion_q: quarters("MBconv.layers.conv_a.0.weight", 16),
        squeeze_q: quarters("MBconv.layers.squeeze_excitation.fc1.weight", 1),
        mlp_ratio: dim(sd, &format!("{l0}.window_attention.mlp_layer.1.weight"), 0)
            .map_or(4, |n| n / widths[0].max(1)),
        widths,
        layers,
        classes,
    }))
}

/// torchvision's `_get_conv_output_shape(size, 3, 2, 1)`.
fn halve(n: u64) -> u64 {
    conv_out(n, 3, 2, 1, 1)
}

impl MaxVit {
    /// `MBConv` at `at` on an NCHW map.
    #[allow(clippy::too_many_arguments)]
    fn mbconv(
        &self,
        e: &mut Emit<'_>,
        at: &str,
        x: &str,
        cin: u64,
        cout: u64,
        stride: u64,
    ) -> Result<String, ExportError> {
        let mid = cout * self.expansion_q / 4;
        let sqz = cout * self.squeeze_q / 4;
        let res = if stride != 1 || cin != cout {
            let p = join(at, "proj");
            let (mut y, conv_at) = (x.to_string(), if stride == 2 { "1" } else { "0" });
            if stride == 2 {
                y = e.avg_pool(&join(&p, "0"), &y, 3, stride, 1)?;
            }
            e.conv2d(&join(&p, conv_at), &y, Conv::new(cin, cout, 1, 1, 0).bias())?
        } else {
            x.to_string()
        };
        let l = join(at, "layers");
        let y = e.batch_norm(&join(&l, "pre_norm"), x, cin, BN_EPS)?;
        let y = conv_norm_act(
            e,
            &join(&l, "conv_a"),
            &y,
            cin,
            mid,
            1,
            1,
            1,
            BN_EPS,
            Act::Gelu,
        )?;
        let y = conv_norm_act(
            e,
            &join(&l, "conv_b"),
            &y,
            mid,
            mid,
            3,
            stride,
            mid,
            BN_EPS,
            Act::Gelu,
        )?;
        let y = squeeze_excitation(
            e,
            &join(&l, "squeeze_excitation"),
            &y,
            mid,
            sqz,
            Act::Silu,
            false,
        )?;
        let y = e.conv2d(
            &join(&l, "conv_c"),
            &y,
            Conv::new(mid, cout, 1, 1, 0).bias(),
        )?;
        e.add(at, &res, &y)
    }

    /// `RelativePositionalMultiHeadAttention` at `at` on [B, G, P, c].
    fn attention(
        &self,
        e: &mut Emit<'_>,
        at: &str,
        x: &str,
        groups: u64,
        c: u64,
    ) -> Result<String, ExportError> {
        let nh = (c / self.head_dim.max(1)).max(1);
        let dh = self.head_dim as i64;
        let p = self.partition.max(1);
        let tokens = p * p;
        let side = 2 * p - 1;
        let qkv = e.linear_nd(&join(at, "to_qkv"), x, c, 3 * nh * self.head_dim)?;
        let parts = e.split(at, &qkv, &[(nh * self.head_dim) as i64; 3], -1)?;
        let shape = [0, groups as i64, tokens as i64, nh as i64, dh];
        let mut qkv = Vec::new();
        for part in &parts {
            let t = e.reshape(at, part, &shape)?;
            qkv.push(e.transpose(at, &t, &[0, 1, 3, 2, 4])?);
        }
        let scale = e.const_f32(at, (c as f32).powf(-0.5))?;
        let k = e.mul(at, &qkv[1], &scale)?;
        let kt = e.transpose(at, &k, &[0, 1, 2, 4, 3])?;
        let dot = e.matmul(at, &qkv[0], &kt)?;
        // get_relative_positional_bias: table[index] -> [heads, P, P]
        let table = e.param(
            &join(at, "relative_position_bias_table"),
            &[side * side, nh],
        )?;
        let index = e.index_buffer(
            &join(at, "relative_position_index"),
            &[tokens, tokens],
            side * side,
        )?;
        let b = e.gather_rows(at, &table, &index)?;
        let b = e.transpose(at, &b, &[2, 0, 1])?;
        let dot = e.add(at, &dot, &b)?;
        let dot = e.softmax_last(at, &dot)?;
        let o = e.matmul(at, &dot, &qkv[2])?;
        let o = e.transpose(at, &o, &[0, 1, 3, 2, 4])?;
        let o = e.reshape(at, &o, &[0, groups as i64, tokens as i64, c as i64])?;
        e.linear_nd(&join(at, "merge"), &o, nh * self.head_dim, c)
    }

    /// `PartitionAttentionLayer` at `at` on an NCHW map of `grid` (the size
    /// the model was built for), `grid_type` for grid partitioning.
    fn partition_attention(
        &self,
        e: &mut Emit<'_>,
        at: &str,
        x: &str,
        c: u64,
        grid: (u64, u64),
        grid_type: bool,
    ) -> Result<String, ExportError> {
        let size = self.partition.max(1);
        let n_partitions = grid.0 / size;
        let p = if grid_type { n_partitions } else { size }.max(1);
        if !grid.0.is_multiple_of(p) || !grid.1.is_multiple_of(p) {
            return Err(ExportError::Option(format!(
                "'{at}': a {}x{} grid is not divisible by the partition size {p}",
                grid.0, grid.1
            )));
        }
        let (gh, gw) = (grid.0 / p, grid.1 / p);
        let (pi, ci) = (p as i64, c as i64);
        // WindowPartition: [B, C, H, W] -> [B, gh * gw, p * p, C]
        let y = e.reshape(at, x, &[-1, ci, gh as i64, pi, gw as i64, pi])?;
        let y = e.transpose(at, &y, &[0, 2, 4, 3, 5, 1])?;
        let mut y = e.reshape(at, &y, &[-1, (gh * gw) as i64, pi * pi, ci])?;
        let mut groups = gh * gw;
        if grid_type {
            y = e.transpose(&join(at, "partition_swap"), &y, &[0, 2, 1, 3])?;
            groups = p * p;
        }
        let a = join(at, "attn_layer");
        let z = e.layer_norm(&join(&a, "0"), &y, c, LN_EPS)?;
        let z = self.attention(e, &join(&a, "1"), &z, groups, c)?;
        let y = e.add(at, &y, &z)?;
        let m = join(at, "mlp_layer");
        let hidden = c * self.mlp_ratio;
        let z = e.layer_norm(&join(&m, "0"), &y, c, LN_EPS)?;
        let z = e.linear_nd(&join(&m, "1"), &z, c, hidden)?;
        let z = e.gelu(&join(&m, "2"), &z)?;
        let z = e.linear_nd(&join(&m, "3"), &z, hidden, c)?;
        let mut y = e.add(at, &y, &z)?;
        if grid_type {
            y = e.transpose(&join(at, "departition_swap"), &y, &[0, 2, 1, 3])?;
        }
        // WindowDepartition: -> [B, C, gh * p, gw * p]
        let y = e.reshape(at, &y, &[-1, gh as i64, gw as i64, pi, pi, ci])?;
        let y = e.transpose(at, &y, &[0, 5, 1, 3, 2, 4])?;
        e.reshape(at, &y, &[-1, ci, (gh * p) as i64, (gw * p) as i64])
    }
}

impl Model for MaxVit {
    fn family(&self) -> &'static str {
        "maxvit"
    }

    fn variant(&self) -> String {
        let (stem, widths, layers, head_dim, partition) = MAXVIT_T;
        if self.stem == stem
            && self.widths == widths
            && self.layers == layers
            && self.head_dim == head_dim
            && self.partition == partition
            && (self.expansion_q, self.squeeze_q, self.mlp_ratio) == (16, 1, 4)
        {
            return "maxvit_t".into();
        }
        format!(
            "maxvit (stem {}, widths {:?}, layers {:?}, head dim {}, partition {})",
            self.stem, self.widths, self.layers, self.head_dim, self.partition
        )
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, input: (u64, u64)) -> Result<String, ExportError> {
        // torchvision's constructor check: every block's input a multiple of
        // the partition size.
        let p = self.partition.max(1);
        let mut grid = (halve(input.0), halve(input.1));
        let mut sizes = Vec::new();
        for _ in &self.widths {
            grid = (halve(grid.0), halve(grid.1));
            sizes.push(grid);
        }
        if let Some((i, s)) = sizes
            .iter()
            .enumerate()
            .find(|(_, s)| !s.0.is_multiple_of(p) || !s.1.is_multiple_of(p))
        {
            return Err(ExportError::Option(format!(
                "a {}x{} input gives block {i} a {}x{} input, not divisible by the partition size {p}; block inputs: {sizes:?} (224x224 fits maxvit_t)",
                input.0, input.1, s.0, s.1
            )));
        }
        let y = conv_norm_act(e, "stem.0", x, 3, self.stem, 3, 2, 1, BN_EPS, Act::Gelu)?;
        let mut y = e.conv2d(
            "stem.1.0",
            &y,
            Conv::new(self.stem, self.stem, 3, 1, 1).bias(),
        )?;
        let mut cin = self.stem;
        for (i, (&cout, &n)) in self.widths.iter().zip(&self.layers).enumerate() {
            for j in 0..n {
                let at = format!("blocks.{i}.layers.{j}.layers");
                let stride = if j == 0 { 2 } else { 1 };
                let c0 = if j == 0 { cin } else { cout };
                y = self.mbconv(e, &join(&at, "MBconv"), &y, c0, cout, stride)?;
                y = self.partition_attention(
                    e,
                    &join(&at, "window_attention"),
                    &y,
                    cout,
                    sizes[i],
                    false,
                )?;
                y = self.partition_attention(
                    e,
                    &join(&at, "grid_attention"),
                    &y,
                    cout,
                    sizes[i],
                    true,
                )?;
            }
            cin = cout;
        }
        let c = cin;
        let y = e.global_avg_pool("classifier.0", &y)?;
        let y = e.flatten("classifier.1", &y)?;
        let y = e.layer_norm("classifier.2", &y, c, LN_EPS)?;
        let y = e.linear("classifier.3", &y, c, c)?;
        let y = e.op("classifier.4", "Tanh", &[&y], vec![])?;
        e.linear_nd_no_bias("classifier.5", &y, c, self.classes)
    }
}
